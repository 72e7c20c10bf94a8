"""Where derived files are cached (ONNX exports, TensorRT engines, converted meshes): one policy.

$ROBOTAG_CACHE/<kind>, else ~/.cache/robotag_ros/<kind>; the temp dir where neither can be
written (a node running as a user without a home, a read-only container). Every cached file is
named by a hash of what it was made from, so a stale one is never reused, only left behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """The (created, writable) cache folder for one kind of file, e.g. 'onnx'."""
    root = Path(os.environ.get('ROBOTAG_CACHE') or Path.home() / '.cache' / 'robotag_ros')
    for candidate in (root / kind, Path(tempfile.gettempdir()) / 'robotag_ros_cache' / kind):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise OSError(f'no writable cache folder for {kind}: set ROBOTAG_CACHE to one')
