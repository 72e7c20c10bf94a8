"""The exported file a runtime backend loads, for an artifact: made on first use, then cached.

The ONNX export lands in the cache (robotag_ros/cache_dir.py) under a name keyed by everything
it is made from; a TensorRT plan is built from it on this machine
(:func:`robotag_ros.export.tensorrt_engine.cached_engine`). The runtime (inference/) only loads
the files named here.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from robotag_ros.cache_dir import cache_dir
from robotag_ros.export.onnx_export import DEFAULT_OPSET, export_cached_onnx
from robotag_ros.model.artifact import artifact_paths, load_model, load_sidecar
from robotag_ros.model.inference_network import INPUT_CONVENTION


def onnx_cache_path(artifact: str | os.PathLike) -> Path:
    """Where the ONNX export of an artifact is cached: keyed by the weights, the sidecar (its
    input size and preprocessing fix the graph's input), the opset and the graph's input
    convention, so a changed artifact or exporter exports again."""
    weights, sidecar = artifact_paths(artifact)
    hasher = hashlib.sha256(weights.read_bytes())
    hasher.update(sidecar.read_bytes())
    hasher.update(f'opset{DEFAULT_OPSET} {INPUT_CONVENTION}'.encode())
    digest = hasher.hexdigest()[:16]
    return cache_dir('onnx') / f'{weights.stem}_{digest}.onnx'


def cached_onnx(artifact: str | os.PathLike, robot=None) -> Path:
    """The artifact's ONNX export, exported into the cache when missing or damaged."""
    input_hw = tuple(int(v) for v in load_sidecar(artifact).input_size)
    return export_cached_onnx(lambda: load_model(artifact, robot=robot)[0], input_hw,
                              onnx_cache_path(artifact))


def runtime_files(artifact: str | os.PathLike, backend: str, precision: str = 'fp32',
                  onnx_path: Optional[str | os.PathLike] = None,
                  force_engine_rebuild: bool = False, robot=None) -> dict[str, Path]:
    """The ``Estimator.from_artifact`` keywords naming the files ``backend`` (resolved, not
    'auto') runs: {} for 'torch', ``onnx_path`` for 'onnxruntime' (the given one, else the
    cached export), ``engine_path`` for 'tensorrt' (fp16 unless ``precision`` is fp32)."""
    if backend == 'torch':
        return {}
    onnx_file = Path(onnx_path) if onnx_path else cached_onnx(artifact, robot)
    if backend == 'onnxruntime':
        return {'onnx_path': onnx_file}
    from robotag_ros.export.tensorrt_engine import cached_engine
    return {'engine_path': cached_engine(onnx_file, fp16=precision != 'fp32',
                                         force_rebuild=force_engine_rebuild)}
