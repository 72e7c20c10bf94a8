"""export_onnx(): the TAG network to ONNX, checked by the ONNX checker and against PyTorch."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from robotag_ros.inference.backends import INPUT_NAMES, InferenceNetwork
from robotag_ros.inference.decode import INFERENCE_OUTPUT_NAMES

DEFAULT_OPSET = 18


class ExportMismatch(AssertionError):
    """ONNX Runtime disagrees with PyTorch beyond the tolerance."""


def example_inputs(input_hw: Sequence[int], batch: int = 1, seed: int = 0):
    """A realistic input pair: a random image and a plausible camera for that size."""
    generator = torch.Generator().manual_seed(seed)
    height, width = int(input_hw[0]), int(input_hw[1])
    image = torch.rand(batch, 3, height, width, generator=generator)
    focal = 1.2 * max(height, width)
    K = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    return image, K.expand(batch, 3, 3).contiguous()


def export_onnx(model: torch.nn.Module, input_hw: Sequence[int], onnx_path: str | os.PathLike,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = False) -> Path:
    """Export the network part of a TAGModel (eval mode, no grad, dry run first).

    Returns the ONNX path. The weights are embedded in one file where they fit (protobuf's
    2 GB limit); torch's exporter otherwise writes ``<name>.onnx.data`` beside it, which ONNX
    Runtime and TensorRT's parser pick up by themselves.
    """
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    network = InferenceNetwork(model).eval()
    image, K = example_inputs(input_hw)
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
        small = sum(p.numel() * p.element_size() for p in network.parameters()) < (1 << 30)
        program.save(str(onnx_path), external_data=not small)
    check_onnx_model(onnx_path)
    return onnx_path


def check_onnx_model(onnx_path: str | os.PathLike) -> None:
    """``onnx.checker.check_model(full_check=True)`` on the file (external data resolved)."""
    import onnx
    onnx.checker.check_model(str(onnx_path), full_check=True)


def compare_with_torch(model: torch.nn.Module, onnx_path: str | os.PathLike,
                       inputs: Optional[tuple] = None, input_hw: Optional[Sequence[int]] = None,
                       atol: float = 1e-3, rtol: float = 1e-3, verbose: bool = True) -> dict:
    """Run ONNX Runtime and PyTorch on the same inputs; the largest difference per output.

    Raises ExportMismatch if any output differs by more than ``atol + rtol * |torch|``.
    """
    import onnxruntime as ort
    if inputs is None:
        inputs = example_inputs(input_hw)
    image, K = inputs
    with torch.no_grad():
        expected = InferenceNetwork(model).eval()(image, K)
    session = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    actual = session.run(None, {'image': image.numpy(), 'intrinsics': K.numpy()})
    report, failures = {}, []
    for name, ref, out in zip(INFERENCE_OUTPUT_NAMES, expected, actual):
        ref = ref.numpy()
        difference = float(np.abs(ref - out).max()) if ref.size else 0.0
        report[name] = difference
        tolerance_ok = np.allclose(out, ref, atol=atol, rtol=rtol)
        if verbose:
            print(f"  {name:20s} max |onnx - torch| = {difference:.3e}"
                  f"{'' if tolerance_ok else '  <-- over tolerance'}")
        if not tolerance_ok:
            failures.append(name)
    if failures:
        raise ExportMismatch(f'ONNX Runtime differs from PyTorch beyond atol={atol}, '
                             f'rtol={rtol} on {failures}: {report}')
    return report
