"""Inference backends, one per file behind :class:`~.interface.Backend`: PyTorch, ONNX Runtime,
TensorRT (its runtime is imported only when a TensorRT backend is made)."""
from robotag_ros.inference.backends.interface import (BACKEND_CHOICES, BACKENDS, Backend,
                                                      BackendUnavailable, resolve_backend,
                                                      run_in_static_batches)
from robotag_ros.inference.backends.onnxruntime_backend import (OnnxRuntimeBackend,
                                                                onnxruntime_providers)
from robotag_ros.inference.backends.tensorrt_backend import TensorRTBackend, require_tensorrt
from robotag_ros.inference.backends.torch_backend import TorchBackend

__all__ = ['BACKENDS', 'BACKEND_CHOICES', 'Backend', 'BackendUnavailable', 'OnnxRuntimeBackend',
           'TensorRTBackend', 'TorchBackend', 'onnxruntime_providers', 'require_backend',
           'require_tensorrt',
           'resolve_backend', 'run_in_static_batches']


def require_backend(backend: str, device: str) -> None:
    """Raise BackendUnavailable, saying what to install, when ``backend`` (resolved, not 'auto')
    cannot run on ``device`` here: checked before anything slow (loading, exporting) starts."""
    if backend == 'tensorrt':
        require_tensorrt()
    elif backend == 'onnxruntime':
        onnxruntime_providers(device)
