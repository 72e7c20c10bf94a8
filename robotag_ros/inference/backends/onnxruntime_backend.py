"""The ONNX Runtime backend: an exported ONNX file, checked against the metadata the exporter
wrote into it (outputs, input convention, input size, preprocessing)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from robotag_ros.inference.backends.interface import BackendUnavailable, run_in_static_batches
from robotag_ros.model.inference_network import (INFERENCE_OUTPUT_NAMES, INPUT_CONVENTION,
                                                 INPUT_CONVENTION_KEY, PREPROCESSING_KEY)
from robotag_ros.model.preprocessing import ImagePreprocessing

REEXPORT_HINT = 're-export it with robotag-export (or delete it from the cache)'


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


def check_export_metadata(onnx_path, metadata: dict, preprocessing) -> None:
    """Refuse an ONNX file whose input is not what the estimator feeds it: one exported before
    the normalisation left the graph, or for other preprocessing than the artifact's."""
    if metadata.get(INPUT_CONVENTION_KEY) != INPUT_CONVENTION:
        raise ValueError(f'{onnx_path}: its image input is not the normalised image this '
                         f'version feeds (metadata {INPUT_CONVENTION_KEY}='
                         f'{metadata.get(INPUT_CONVENTION_KEY)!r}); {REEXPORT_HINT}')
    if preprocessing is None:
        return
    exported = ImagePreprocessing(**json.loads(metadata[PREPROCESSING_KEY]))
    if exported != preprocessing:
        raise ValueError(f'{onnx_path}: exported for preprocessing {exported}, the artifact '
                         f'says {preprocessing}; {REEXPORT_HINT}')


class OnnxRuntimeBackend:
    """ONNX Runtime on the CPU, or with the CUDA / TensorRT execution providers where present."""

    name = 'onnxruntime'

    def __init__(self, onnx_path: str | Path, device: str = 'cpu', threads: int = 0,
                 input_hw: Optional[tuple[int, int]] = None,
                 preprocessing: Optional[ImagePreprocessing] = None):
        """``input_hw`` and ``preprocessing``: what the artifact says; an export made for
        other ones is refused."""
        providers = onnxruntime_providers(device)
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # Idle ORT threads otherwise spin for a while after each run and starve the PyTorch
        # decoding that follows (decode 10 ms -> 100+ ms on two busy cores).
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
        check_export_metadata(onnx_path, self.session.get_modelmeta().custom_metadata_map,
                              preprocessing)

    def run(self, image: np.ndarray, intrinsics: np.ndarray) -> dict[str, np.ndarray]:
        image = np.ascontiguousarray(image, np.float32)
        intrinsics = np.ascontiguousarray(intrinsics, np.float32)
        return run_in_static_batches(
            lambda i, k: dict(zip(INFERENCE_OUTPUT_NAMES, self.session.run(
                None, {'image': i, 'intrinsics': k}))),
            image, intrinsics, self.session.get_inputs()[0].shape[0])
