"""The one interface every inference backend implements, and what they share.

A backend takes the preprocessed batch (image (B, 3, H, W) float32, normalised by the
artifact's preprocessing; K (B, 3, 3) float32) and returns the network tensors named in
``INFERENCE_OUTPUT_NAMES``; decoding is shared (:mod:`robotag_ros.inference.decode`). Backends
only load what the exporter wrote (an ONNX file, a TensorRT plan); a backend whose runtime is
missing says what to install.
"""
from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

import numpy as np

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')
# What users may ask for: a backend, or 'auto' (the fastest measured one for the device).
BACKEND_CHOICES = ('auto',) + BACKENDS


@runtime_checkable
class Backend(Protocol):
    """Runs the network: ``name`` is one of BACKENDS."""

    name: str

    def run(self, image: np.ndarray, intrinsics: np.ndarray) -> Mapping[str, object]:
        """(B, 3, H, W) normalised image, (B, 3, 3) K -> {output name: array or tensor}."""


def resolve_backend(backend: str, device: str) -> str:
    """'auto' -> ONNX Runtime on CPU (25.7 vs 36.9 ms p50 for PyTorch on two cores, see
    benchmarks/results/latency.json), PyTorch on CUDA (no onnxruntime-gpu needed). Others pass."""
    if backend != 'auto':
        return backend
    return 'onnxruntime' if str(device).startswith('cpu') else 'torch'


class BackendUnavailable(RuntimeError):
    """The runtime a backend needs is not installed or has no device."""


def run_in_static_batches(run, image: np.ndarray, intrinsics: np.ndarray,
                          exported_batch) -> dict[str, np.ndarray]:
    """Call ``run(image, K)`` on chunks of the exported (static) batch size and concatenate.

    The exported graph has batch 1 unless exported with a dynamic batch (a string or -1 for
    the dimension here); evaluation sends several frames per call.
    """
    if not isinstance(exported_batch, int) or exported_batch <= 0 \
            or image.shape[0] == exported_batch:
        return run(image, intrinsics)
    if image.shape[0] % exported_batch:
        raise ValueError(f'batch of {image.shape[0]} frames is not a multiple of the exported '
                         f'batch {exported_batch}')
    chunks = [run(image[i:i + exported_batch], intrinsics[i:i + exported_batch])
              for i in range(0, image.shape[0], exported_batch)]
    return {name: np.concatenate([np.asarray(c[name]) for c in chunks])
            for name in chunks[0]}
