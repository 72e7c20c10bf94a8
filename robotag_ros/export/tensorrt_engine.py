"""TensorRT engines: built from the ONNX file on the target machine, cached, never committed.

Written against TensorRT 10's documented Python API (``tensorrt.Builder``, ``OnnxParser``,
``IBuilderConfig.set_memory_pool_limit``, ``build_serialized_network``); the plan is run by
:mod:`robotag_ros.inference.backends.tensorrt_backend`. Without TensorRT, what does not need it
(cache keys, the missing-TensorRT error) is tested. The engine file is a plain TensorRT plan: no
metadata is prepended, so trtexec and DeepStream read it too.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from robotag_ros.atomic_io import atomic_write_bytes
from robotag_ros.cache_dir import cache_dir
from robotag_ros.inference.backends.tensorrt_backend import TensorRTUnavailable, require_tensorrt


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
