"""The TensorRT backend: runs a plan built on this machine (robotag-export --engine, or the
estimator factory's cache), with torch CUDA tensors as its I/O buffers (no pycuda needed).

Written against TensorRT 10's documented Python API (``Runtime``, ``ICudaEngine.get_tensor_name``
/ ``get_tensor_mode``, ``IExecutionContext.set_tensor_address`` and ``execute_async_v3``).
TensorRT is imported only when a backend is made, so everything else runs without it; what does
not need it (shape checks, the missing-TensorRT error) is tested.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robotag_ros.inference.backends.interface import BackendUnavailable, run_in_static_batches

INSTALL_HINT = ('TensorRT is not installed. On a machine with an NVIDIA GPU, install it with '
                "`pip install tensorrt` (NVIDIA's wheels, matching your CUDA), or use the "
                "'onnxruntime' or 'torch' backend.")


class TensorRTUnavailable(BackendUnavailable, ImportError):
    """TensorRT (or a CUDA device for it) is missing."""


def require_tensorrt():
    """Import TensorRT or explain what to install."""
    try:
        import tensorrt
    except ImportError as error:
        raise TensorRTUnavailable(INSTALL_HINT) from error
    return tensorrt


def check_input_shapes(engine_shapes: dict, inputs: dict) -> None:
    """Refuse inputs whose shapes the engine was not built for, naming the tensor.

    ``engine_shapes``: name -> shape as the engine reports it (-1 for a dynamic dimension);
    ``inputs``: name -> array. The exported model has a static shape (the sidecar's input size,
    batch 1), and TensorRT's own error for a mismatch is far less clear.
    """
    missing = sorted(set(engine_shapes) - set(inputs))
    if missing:
        raise ValueError(f'TensorRT engine inputs {missing} not given (have {sorted(inputs)})')
    for name, expected in engine_shapes.items():
        shape = tuple(inputs[name].shape)
        if len(shape) != len(expected) or any(e not in (-1, s) for e, s in zip(expected, shape)):
            raise ValueError(f"TensorRT engine input '{name}' is built for shape "
                             f'{tuple(expected)}, got {shape}; rebuild the engine (and '
                             'export the ONNX) for this input size')


class TensorRTBackend:
    """A TensorRT plan (``engine_path``) run on the current CUDA device."""

    name = 'tensorrt'

    def __init__(self, engine_path: str | os.PathLike):
        import torch
        trt = require_tensorrt()
        if not torch.cuda.is_available():
            raise TensorRTUnavailable('TensorRT engines need a CUDA device; none is available')
        self._torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f'{engine_path}: not a TensorRT plan for this TensorRT/GPU')
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names
                            if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        self._dtypes = {n: _torch_dtype(trt, torch, self.engine.get_tensor_dtype(n))
                        for n in names}
        self.input_shapes = {n: tuple(self.engine.get_tensor_shape(n)) for n in self.input_names}
        self.stream = torch.cuda.Stream()

    def run(self, image: np.ndarray, intrinsics: np.ndarray) -> dict[str, np.ndarray]:
        return run_in_static_batches(
            lambda i, k: self.run_named({'image': i, 'intrinsics': k}), image, intrinsics,
            self.input_shapes['image'][0])

    def run_named(self, inputs: dict) -> dict:
        """numpy inputs by name -> numpy outputs by name (one call of the plan)."""
        torch = self._torch
        check_input_shapes(self.input_shapes, inputs)
        buffers = {}
        for name in self.input_names:
            tensor = torch.as_tensor(inputs[name]).to('cuda', self._dtypes[name]).contiguous()
            self.context.set_input_shape(name, tuple(tensor.shape))
            buffers[name] = tensor
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            buffers[name] = torch.empty(shape, dtype=self._dtypes[name], device='cuda')
        for name, tensor in buffers.items():
            self.context.set_tensor_address(name, tensor.data_ptr())
        # The copies above ran on torch's current stream; TensorRT must not start before them.
        self.stream.wait_stream(torch.cuda.current_stream())
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError('TensorRT execution failed')
        self.stream.synchronize()
        return {n: buffers[n].float().cpu().numpy() for n in self.output_names}


def _torch_dtype(trt, torch, trt_dtype):
    return {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
            trt.int64: torch.int64, trt.bool: torch.bool}[trt_dtype]
