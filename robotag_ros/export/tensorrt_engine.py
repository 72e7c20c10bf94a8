"""TensorRT engines: built from the ONNX file on the target machine, cached, never committed.

Written against TensorRT 10's documented Python API (``tensorrt.Builder``, ``OnnxParser``,
``IBuilderConfig.set_memory_pool_limit``, ``build_serialized_network``; ``Runtime``,
``ICudaEngine.get_tensor_name``/``get_tensor_mode``, ``IExecutionContext.set_tensor_address`` and
``execute_async_v3``). TensorRT cannot be installed on the machines this project is developed
and tested on, so this path has NOT been run there; what does not need TensorRT (cache keys,
shape handling, the missing-TensorRT error) is tested. The engine file is a plain TensorRT plan:
no metadata is prepended, so trtexec and DeepStream read it too.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from robotag_ros.atomic_io import atomic_write_bytes
from robotag_ros.cache_dir import cache_dir

INSTALL_HINT = ('TensorRT is not installed. On a machine with an NVIDIA GPU, install it with '
                "`pip install tensorrt` (NVIDIA's wheels, matching your CUDA), or use the "
                "'onnxruntime' or 'torch' backend.")


class TensorRTUnavailable(ImportError):
    """TensorRT (or a CUDA device for it) is missing."""


def require_tensorrt():
    """Import TensorRT or explain what to install."""
    try:
        import tensorrt
    except ImportError as error:
        raise TensorRTUnavailable(INSTALL_HINT) from error
    return tensorrt


def onnx_model_hash(onnx_path: str | os.PathLike) -> str:
    """Hash of the ONNX graph and its external-data file, if any (torch 2.13 writes one)."""
    onnx_path = Path(onnx_path)
    digest = hashlib.sha256()
    for path in (onnx_path, onnx_path.with_name(onnx_path.name + '.data')):
        if path.is_file():
            with open(path, 'rb') as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b''):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def engine_cache_key(onnx_path: str | os.PathLike, tensorrt_version: str, gpu_name: str,
                     fp16: bool) -> str:
    """Name an engine by everything that makes it invalid when changed: TensorRT version, GPU
    model, network and precision (a plan is not portable across any of them)."""
    gpu = ''.join(c if c.isalnum() else '-' for c in gpu_name).strip('-').lower()
    precision = 'fp16' if fp16 else 'fp32'
    return (f'{Path(onnx_path).stem}_{onnx_model_hash(onnx_path)}_trt{tensorrt_version}_'
            f'{gpu}_{precision}.plan')


def default_cache_dir() -> Path:
    return cache_dir('engines')


def _gpu_name() -> str:
    import torch
    if not torch.cuda.is_available():
        raise TensorRTUnavailable('TensorRT engines need a CUDA device; none is available')
    return torch.cuda.get_device_name()


def build_engine(onnx_path: str | os.PathLike, engine_path: str | os.PathLike,
                 fp16: bool = True, workspace_bytes: int = 2 << 30) -> Path:
    """Parse the ONNX file and serialise a TensorRT plan to ``engine_path`` (atomically)."""
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    # parse_from_file resolves the .onnx.data external weights next to the model.
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f'TensorRT could not parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16 and builder.platform_has_fast_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f'TensorRT failed to build an engine from {onnx_path}')
    return atomic_write_bytes(engine_path, bytes(plan))


def cached_engine(onnx_path: str | os.PathLike, fp16: bool = True,
                  cache_dir: Optional[str | os.PathLike] = None,
                  force_rebuild: bool = False) -> Path:
    """The engine for this ONNX file on this GPU and TensorRT, built on first use."""
    trt = require_tensorrt()
    key = engine_cache_key(onnx_path, trt.__version__, _gpu_name(), fp16)
    engine_path = Path(cache_dir or default_cache_dir()) / key
    if force_rebuild or not engine_path.is_file():
        build_engine(onnx_path, engine_path, fp16=fp16)
    return engine_path


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


class TensorRTRunner:
    """Runs a plan with torch CUDA tensors as I/O buffers (no pycuda needed)."""

    def __init__(self, engine_path: str | os.PathLike):
        import torch
        trt = require_tensorrt()
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
        self._dtypes = {n: _torch_dtype(torch, self.engine.get_tensor_dtype(n)) for n in names}
        self.input_shapes = {n: tuple(self.engine.get_tensor_shape(n)) for n in self.input_names}
        self.stream = torch.cuda.Stream()

    def run(self, inputs: dict) -> dict:
        """numpy inputs by name -> numpy outputs by name."""
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


def _torch_dtype(torch, trt_dtype):
    import tensorrt as trt
    return {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
            trt.int64: torch.int64, trt.bool: torch.bool}[trt_dtype]
