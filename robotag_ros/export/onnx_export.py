"""export_onnx(): the TAG network to ONNX, checked by the ONNX checker and against PyTorch.

The graph takes the image already normalised by the artifact's preprocessing; each file records
that, and the preprocessing, in its metadata, which the ONNX Runtime backend checks.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from robotag_ros.atomic_io import atomic_write_text
from robotag_ros.inference.preprocess import preprocess
from robotag_ros.model.inference_network import (INFERENCE_OUTPUT_NAMES, INPUT_NAMES,
                                                 InferenceNetwork, export_metadata)
from robotag_ros.model.preprocessing import ImagePreprocessing

DEFAULT_OPSET = 18


class ExportMismatch(AssertionError):
    """ONNX Runtime disagrees with PyTorch beyond the tolerance."""


def example_inputs(input_hw: Sequence[int], batch: int = 1, seed: int = 0):
    """A random (normalised) image and a plausible camera for that size."""
    generator = torch.Generator().manual_seed(seed)
    height, width = int(input_hw[0]), int(input_hw[1])
    image = torch.rand(batch, 3, height, width, generator=generator)
    focal = 1.2 * max(height, width)
    K = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    return image, K.expand(batch, 3, 3).contiguous()


def external_data_path(onnx_path: str | os.PathLike) -> Path:
    """The side file torch's exporter writes the weights to: ``<name>.onnx.data``."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + '.data')


def export_onnx(model: torch.nn.Module, input_hw: Sequence[int], onnx_path: str | os.PathLike,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = False,
                external_data: Optional[bool] = None) -> Path:
    """Export the network part of a TAGModel (eval mode, no grad, dry run first); returns the path.

    ``external_data``: None embeds the weights where they fit protobuf's 2 GB limit (one file)
    and otherwise writes ``<name>.onnx.data`` beside the model; True/False force either. The
    side file's name is recorded inside the model, so both files are written into a temporary
    folder under their final names and moved into place (data first): a crash leaves no half
    model, and ONNX Runtime and TensorRT's parser find the data next to the model by itself.
    The result passes ``onnx.checker.check_model(full_check=True)`` and carries
    :func:`~robotag_ros.model.inference_network.export_metadata` of the model's preprocessing.
    """
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    network = InferenceNetwork(model).eval()
    image, K = example_inputs(input_hw)
    if external_data is None:
        size = sum(p.numel() * p.element_size() for p in network.parameters())
        external_data = size >= (1 << 30)
    with torch.no_grad():
        network(image, K)  # dry run: shape errors surface here, not inside the exporter
        dynamic_shapes = None
        if dynamic_batch:
            batch = torch.export.Dim('batch', min=1, max=64)
            dynamic_shapes = {'image': {0: batch}, 'intrinsics': {0: batch}}
        program = torch.onnx.export(network, (image, K), dynamo=True, opset_version=opset,
                                    input_names=list(INPUT_NAMES),
                                    output_names=list(INFERENCE_OUTPUT_NAMES),
                                    dynamic_shapes=dynamic_shapes, verbose=False)
        program.optimize()
        program.model.metadata_props.update(export_metadata(model.preprocessing))
        with tempfile.TemporaryDirectory(prefix=f'.{onnx_path.name}.',
                                         dir=onnx_path.parent) as staging:
            staged = Path(staging) / onnx_path.name
            program.save(str(staged), external_data=external_data)
            check_onnx_model(staged)
            staged_data = external_data_path(staged)
            if staged_data.is_file():
                os.replace(staged_data, external_data_path(onnx_path))
            else:  # a stale side file of an earlier export must not shadow embedded weights
                external_data_path(onnx_path).unlink(missing_ok=True)
            os.replace(staged, onnx_path)
    return onnx_path


def check_onnx_model(onnx_path: str | os.PathLike) -> None:
    """``onnx.checker.check_model(full_check=True)`` on the file; external data is resolved
    from the model's folder, so a missing ``.onnx.data`` file is reported here."""
    import onnx
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f'ONNX model not found: {onnx_path}')
    try:
        # A path (not a loaded proto) lets the checker handle models over 2 GB and external data.
        onnx.checker.check_model(str(onnx_path), full_check=True)
    except Exception as error:  # noqa: BLE001 - checker, protobuf and shape inference errors
        raise ValueError(f'{onnx_path}: fails onnx.checker.check_model(full_check=True): '
                         f'{error}') from error


def _digest_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + '.sha256')


def _onnx_files_digest(onnx_path: Path) -> str:
    import hashlib
    hasher = hashlib.sha256()
    for path in (onnx_path, external_data_path(onnx_path)):
        if path.is_file():
            with open(path, 'rb') as stream:
                for block in iter(lambda: stream.read(1 << 20), b''):
                    hasher.update(block)
    return hasher.hexdigest()


def export_cached_onnx(load_model: Callable[[], torch.nn.Module], input_hw: Sequence[int],
                       onnx_path: str | os.PathLike, log=None) -> Path:
    """``onnx_path`` as a cache of ``export_onnx``: reused while it is what was exported, and
    exported again (``load_model()`` called only then) when absent or damaged since (a digest
    of its bytes, ``<name>.sha256``, is kept beside it; a cache file without one is kept if it
    passes the ONNX checker)."""
    import logging
    onnx_path = Path(onnx_path)
    log = log or logging.getLogger(__name__).warning
    digest_file = _digest_path(onnx_path)
    if onnx_path.is_file():
        if digest_file.is_file():
            if digest_file.read_text().strip() == _onnx_files_digest(onnx_path):
                return onnx_path
            log(f'cached ONNX export {onnx_path} changed since it was written (damaged?): '
                'exporting it again')
        else:
            try:
                check_onnx_model(onnx_path)
                atomic_write_text(digest_file, _onnx_files_digest(onnx_path) + '\n')
                return onnx_path
            except ValueError as error:
                log(f'cached ONNX export is unusable, exporting it again: {error}')
    export_onnx(load_model(), input_hw, onnx_path)
    atomic_write_text(digest_file, _onnx_files_digest(onnx_path) + '\n')
    return onnx_path


def compare_with_torch(model: torch.nn.Module, onnx_path: str | os.PathLike,
                       inputs: Optional[tuple] = None, input_hw: Optional[Sequence[int]] = None,
                       atol: float = 1e-3, rtol: float = 1e-3, verbose: bool = True) -> dict:
    """Run ONNX Runtime and PyTorch on the same inputs; the largest difference per output.

    ``inputs``: (image (B, 3, H, W) normalised, K (B, 3, 3)) as the network sees them, e.g.
    :func:`network_inputs` of real frames; run one frame at a time, as exported (batch 1).
    Without it, a random image of ``input_hw`` (a smoke test only). Prints and returns
    {output name: max |onnx - torch|}; raises ExportMismatch if any element differs by more
    than ``atol + rtol * |torch|`` (or is not finite in one of them).
    """
    import onnxruntime as ort
    if inputs is None:
        inputs = example_inputs(input_hw)
    image, K = inputs
    network = InferenceNetwork(model).eval()
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    report = {name: 0.0 for name in INFERENCE_OUTPUT_NAMES}
    failures = set()
    for index in range(image.shape[0]):
        frame_image, frame_K = image[index:index + 1], K[index:index + 1]
        with torch.no_grad():
            expected = network(frame_image, frame_K)
        actual = session.run(list(INFERENCE_OUTPUT_NAMES),
                             {'image': frame_image.numpy(), 'intrinsics': frame_K.numpy()})
        for name, ref, out in zip(INFERENCE_OUTPUT_NAMES, expected, actual):
            ref = ref.numpy()
            difference = float(np.abs(ref - out).max()) if ref.size else 0.0
            report[name] = max(report[name], difference) if np.isfinite(difference) \
                else float('nan')
            if ref.shape != out.shape or not np.allclose(out, ref, atol=atol, rtol=rtol):
                failures.add(name)
    if verbose:
        print(f'ONNX Runtime vs PyTorch on {image.shape[0]} frame(s), '
              f'tolerance atol={atol:g} + rtol={rtol:g} * |torch|:')
        for name, difference in report.items():
            print(f"  {name:20s} max |onnx - torch| = {difference:.3e}"
                  f"{'  <-- over tolerance' if name in failures else ''}")
    if failures:
        raise ExportMismatch(f'ONNX Runtime differs from PyTorch beyond atol={atol}, '
                             f'rtol={rtol} on {sorted(failures)}: {report}')
    return report


def network_inputs(frames, input_hw: Sequence[int], preprocessing: ImagePreprocessing
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Original frames (``.image_rgb``, ``.K``) -> the batch the network sees: letterboxed to
    the artifact's input size with matching intrinsics, normalised (the estimator's own
    preprocessing)."""
    prepared = [preprocess(frame.image_rgb, frame.K, input_hw, preprocessing)
                for frame in frames]
    return (torch.from_numpy(np.concatenate([p[0] for p in prepared])),
            torch.from_numpy(np.concatenate([p[1] for p in prepared])))
