"""Inference backends behind one interface: PyTorch, ONNX Runtime, TensorRT.

Each takes the preprocessed batch (image (B, 3, H, W) float32 in [0, 1], K (B, 3, 3) float32) and
returns the network tensors named in ``INFERENCE_OUTPUT_NAMES``; decoding is shared
(:mod:`robotag_ros.inference.decode`). A backend whose runtime is missing says what to install.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from robotag_ros.model.inference_network import INFERENCE_OUTPUT_NAMES, InferenceNetwork

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')
# What users may ask for: a backend, or 'auto' (the fastest measured one for the device).
BACKEND_CHOICES = ('auto',) + BACKENDS


def resolve_backend(backend: str, device: str) -> str:
    """'auto' -> ONNX Runtime on CPU (25.7 vs 36.9 ms p50 for PyTorch on 2 cores, see
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


class TorchBackend:
    """PyTorch eager, or on CUDA with half precision and CUDA graphs (via torch.compile's
    ``reduce-overhead`` mode): the fastest PyTorch path on a GPU."""

    name = 'torch'

    def __init__(self, model: nn.Module, device: str = 'cpu', precision: str = 'fp32',
                 compile_mode: Optional[str] = None):
        self.device = torch.device(device)
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            raise BackendUnavailable('device=cuda asked for, but torch sees no CUDA device')
        self.dtype = {'fp32': torch.float32, 'fp16': torch.float16,
                      'bf16': torch.bfloat16}[precision]
        if self.dtype != torch.float32 and self.device.type != 'cuda':
            raise BackendUnavailable(f'precision {precision} is for CUDA; use fp32 on the CPU')
        self.network = InferenceNetwork(model).to(self.device).eval()
        self._forward = self.network
        # CUDA graphs (reduce-overhead) replay into the same output buffers: each call must
        # open a new step and copy its outputs out before the next replay overwrites them.
        self._cuda_graphs = bool(compile_mode) and 'reduce-overhead' in compile_mode
        if compile_mode:
            self._forward = torch.compile(self.network, mode=compile_mode, dynamic=False)

    @torch.inference_mode()
    def run(self, image: np.ndarray, intrinsics: np.ndarray) -> dict[str, torch.Tensor]:
        image_t = torch.as_tensor(image).to(self.device, non_blocking=True)
        K_t = torch.as_tensor(intrinsics).to(self.device, non_blocking=True)
        if self._cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):
            outputs = self._forward(image_t, K_t)
        return {name: out.float().clone() if self._cuda_graphs else out.float()
                for name, out in zip(INFERENCE_OUTPUT_NAMES, outputs)}


def onnxruntime_providers(device: str) -> list:
    """ONNX Runtime's execution providers for ``device`` (cpu, cuda[:N], tensorrt); raises
    BackendUnavailable naming what to install when this ONNX Runtime lacks them."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        raise BackendUnavailable('ONNX Runtime is not installed: pip install onnxruntime '
                                 '(or onnxruntime-gpu for CUDA)') from error
    available = ort.get_available_providers()
    if device.startswith('cuda'):
        if 'CUDAExecutionProvider' not in available:
            raise BackendUnavailable('ONNX Runtime has no CUDAExecutionProvider here '
                                     f'(available: {available}); pip install onnxruntime-gpu')
        return ['CUDAExecutionProvider', 'CPUExecutionProvider']
    if device == 'tensorrt':
        if 'TensorrtExecutionProvider' not in available:
            raise BackendUnavailable('ONNX Runtime has no TensorrtExecutionProvider here '
                                     f'(available: {available})')
        return [('TensorrtExecutionProvider', {'trt_fp16_enable': True}),
                'CUDAExecutionProvider', 'CPUExecutionProvider']
    return ['CPUExecutionProvider']


class OnnxRuntimeBackend:
    """ONNX Runtime on the CPU, or with the CUDA / TensorRT execution providers where present."""

    name = 'onnxruntime'

    def __init__(self, onnx_path: str | Path, device: str = 'cpu', threads: int = 0,
                 input_hw: Optional[tuple[int, int]] = None):
        providers = onnxruntime_providers(device)
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # Idle ORT threads otherwise spin for a while after each run and starve the PyTorch
        # decoding that follows (measured here: decode 10 ms -> 100+ ms on 2 cores).
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        if not Path(onnx_path).is_file():
            raise FileNotFoundError(f'ONNX model not found: {onnx_path}')
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as error:  # noqa: BLE001 - ORT raises its own exception types
            raise ValueError(f'{onnx_path}: ONNX Runtime cannot load it (corrupt or not an '
                             f'ONNX model?): {error}') from error
        names = [o.name for o in self.session.get_outputs()]
        if tuple(names) != INFERENCE_OUTPUT_NAMES:
            raise ValueError(f'{onnx_path}: outputs {names} are not the estimator\'s '
                             f'{list(INFERENCE_OUTPUT_NAMES)}; re-export with robotag-export')
        image_shape = self.session.get_inputs()[0].shape
        if input_hw is not None and all(isinstance(v, int) for v in image_shape[2:]) \
                and tuple(image_shape[2:]) != tuple(input_hw):
            raise ValueError(f'{onnx_path}: exported for {tuple(image_shape[2:])} inputs, the '
                             f'artifact wants {tuple(input_hw)}; re-export with robotag-export')

    def run(self, image: np.ndarray, intrinsics: np.ndarray) -> dict[str, np.ndarray]:
        image = np.ascontiguousarray(image, np.float32)
        intrinsics = np.ascontiguousarray(intrinsics, np.float32)
        return run_in_static_batches(
            lambda i, k: dict(zip(INFERENCE_OUTPUT_NAMES, self.session.run(
                None, {'image': i, 'intrinsics': k}))),
            image, intrinsics, self.session.get_inputs()[0].shape[0])


class TensorRTBackend:
    """A TensorRT plan built from the ONNX file on this machine (cached; see
    :mod:`robotag_ros.export.tensorrt_engine`). Not run on the project's machines."""

    name = 'tensorrt'

    def __init__(self, onnx_path: str | Path, fp16: bool = True, force_rebuild: bool = False,
                 cache_dir: Optional[str] = None):
        from robotag_ros.export.tensorrt_engine import (
            TensorRTRunner, TensorRTUnavailable, cached_engine)
        try:
            engine = cached_engine(onnx_path, fp16=fp16, cache_dir=cache_dir,
                                   force_rebuild=force_rebuild)
            self.runner = TensorRTRunner(engine)
        except TensorRTUnavailable as error:
            raise BackendUnavailable(str(error)) from error

    def run(self, image: np.ndarray, intrinsics: np.ndarray) -> dict[str, np.ndarray]:
        return run_in_static_batches(
            lambda i, k: self.runner.run({'image': i, 'intrinsics': k}), image, intrinsics,
            self.runner.input_shapes['image'][0])
