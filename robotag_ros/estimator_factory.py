"""The factory the ROS node and the tools use: an Estimator for an artifact on any backend, with
the file that backend runs exported into the cache on first use.

It sits above both layers it joins: the runtime (inference/) only loads exported files, the
exporter (export/) makes them.
"""
from __future__ import annotations

import os
from typing import Optional

from robotag_ros.export.runtime_files import runtime_files
from robotag_ros.inference.backends import BACKEND_CHOICES, require_backend, resolve_backend
from robotag_ros.inference.estimator import Estimator


def load_estimator(model_path: str | os.PathLike, backend: str = 'torch', device: str = 'cpu',
                   precision: str = 'fp32', onnx_path: Optional[str | os.PathLike] = None,
                   force_engine_rebuild: bool = False, **options) -> Estimator:
    """``Estimator.from_artifact`` (same keywords) after exporting what ``backend`` runs:
    the ONNX file for 'onnxruntime' (unless ``onnx_path`` names one), and from it a TensorRT
    plan for 'tensorrt' (``force_engine_rebuild`` builds it again).

    ``robot`` is one of ``options`` (a loaded RobotModel), not a parameter of its own: the node
    passes its ``robot`` parameter, a name, only to factories that declare one."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f'backend must be one of {BACKEND_CHOICES}, not {backend!r}')
    backend = resolve_backend(backend, device)
    require_backend(backend, device)   # before the (slow) export, when it could not run
    files = runtime_files(model_path, backend, precision, onnx_path, force_engine_rebuild,
                          options.get('robot'))
    return Estimator.from_artifact(model_path, backend=backend, device=device,
                                   precision=precision, **files, **options)
