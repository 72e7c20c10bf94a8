"""Atomic file writes: fill a temporary file beside the target, fsync, rename it over the target.

A process killed mid-write leaves the previous file whole, never a half-written one; readers
(the node, a resumed training, easy_handeye2) see the old file or the new one. Used for every
file the package writes that someone else reads: artifacts, checkpoints, data frames,
calibrations, buffers, pointers, drawings.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable


def _shared_mode() -> int:
    """The usual mode for new files (mkstemp makes them owner-only; these are meant to be read
    by others: a node running as another user, a data set on a shared disk)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it onto ``path``.

    The temporary name ends in the target's suffix, so writers that pick a format from the
    extension (OpenCV, matplotlib) still do.
    """
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp' + path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, 'rb') as stream:
            os.fsync(stream.fileno())
        os.chmod(tmp, _shared_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_json(path: str | os.PathLike, data, indent: int | None = 1) -> Path:
    """JSON with a trailing newline; keys in the order given (deterministic bytes)."""
    return atomic_write_text(path, json.dumps(data, indent=indent) + '\n')


def atomic_write_image(path: str | os.PathLike, image_rgb) -> Path:
    """An RGB uint8 array as an image file whose format the suffix names (PNG, JPEG)."""
    import cv2   # the core's only image codec; imported here so atomic_io stays light

    def write(tmp: str) -> None:
        try:
            written = cv2.imwrite(tmp, image_rgb[..., ::-1])
        except cv2.error as error:   # e.g. no encoder for the suffix
            raise OSError(f'cannot write image {path}: {error.err}') from None
        if not written:
            raise OSError(f'cannot write image {path}')
    return atomic_write(path, write)
