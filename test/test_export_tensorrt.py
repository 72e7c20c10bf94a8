"""TensorRT path without TensorRT: cache keys, shape checks and the errors when it is missing,
in the exporter (building plans) and the runtime backend (running them)."""
import numpy as np
import pytest

from robotag_ros.export import tensorrt_engine as trt_engine
from robotag_ros.export.tensorrt_engine import engine_cache_key
from robotag_ros.inference.backends import BackendUnavailable, TensorRTBackend
from robotag_ros.inference.backends.tensorrt_backend import (INSTALL_HINT, TensorRTUnavailable,
                                                             check_input_shapes)


def _tensorrt_installed() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


needs_no_tensorrt = pytest.mark.skipif(_tensorrt_installed(), reason='TensorRT is installed')


@pytest.fixture
def onnx_pair(tmp_path):
    model = tmp_path / 'model.onnx'
    model.write_bytes(b'graph-v1')
    return model


def test_cache_key_changes_with_everything_that_invalidates_a_plan(onnx_pair):
    base = engine_cache_key(onnx_pair, '10.3.0', 'NVIDIA H100 80GB HBM3', fp16=True)
    assert base.endswith('.plan') and base.startswith('model_')
    assert 'trt10.3.0' in base and 'nvidia-h100-80gb-hbm3' in base and 'fp16' in base
    assert engine_cache_key(onnx_pair, '10.3.0', 'NVIDIA H100 80GB HBM3', fp16=True) == base
    others = {
        engine_cache_key(onnx_pair, '10.4.0', 'NVIDIA H100 80GB HBM3', fp16=True),
        engine_cache_key(onnx_pair, '10.3.0', 'NVIDIA H200', fp16=True),
        engine_cache_key(onnx_pair, '10.3.0', 'NVIDIA H100 80GB HBM3', fp16=False),
    }
    assert base not in others and len(others) == 3
    onnx_pair.write_bytes(b'graph-v2')  # re-exported model, same file name
    retrained = engine_cache_key(onnx_pair, '10.3.0', 'NVIDIA H100 80GB HBM3', fp16=True)
    assert retrained != base
    # New weights in the .onnx.data side file alone must change the key too.
    data = onnx_pair.with_name('model.onnx.data')
    data.write_bytes(b'weights-a')
    with_data = engine_cache_key(onnx_pair, '10.3.0', 'NVIDIA H100 80GB HBM3', fp16=True)
    data.write_bytes(b'weights-b')
    assert engine_cache_key(onnx_pair, '10.3.0', 'NVIDIA H100 80GB HBM3', fp16=True) \
        not in (with_data, retrained)


def test_input_shape_check_names_the_tensor():
    engine_shapes = {'image': (1, 3, 96, 96), 'intrinsics': (1, 3, 3)}
    check_input_shapes(engine_shapes, {'image': np.zeros((1, 3, 96, 96)),
                                       'intrinsics': np.zeros((1, 3, 3))})
    check_input_shapes({'image': (-1, 3, 96, 96)}, {'image': np.zeros((4, 3, 96, 96))})
    with pytest.raises(ValueError, match=r"input 'image' is built for shape \(1, 3, 96, 96\), "
                                         r"got \(1, 3, 128, 128\)"):
        check_input_shapes(engine_shapes, {'image': np.zeros((1, 3, 128, 128)),
                                           'intrinsics': np.zeros((1, 3, 3))})
    with pytest.raises(ValueError, match=r"inputs \['intrinsics'\] not given"):
        check_input_shapes(engine_shapes, {'image': np.zeros((1, 3, 96, 96))})


@needs_no_tensorrt
def test_missing_tensorrt_says_what_to_install(tmp_path, onnx_pair):
    with pytest.raises(TensorRTUnavailable, match='pip install tensorrt') as caught:
        trt_engine.require_tensorrt()
    assert str(caught.value) == INSTALL_HINT and "'onnxruntime'" in INSTALL_HINT
    with pytest.raises(TensorRTUnavailable, match='TensorRT is not installed'):
        trt_engine.build_engine(onnx_pair, tmp_path / 'model.plan')
    assert not (tmp_path / 'model.plan').exists()
    with pytest.raises(TensorRTUnavailable):
        trt_engine.cached_engine(onnx_pair, cache_dir=tmp_path)


@needs_no_tensorrt
def test_tensorrt_backend_is_unavailable_with_the_install_hint(tmp_path):
    with pytest.raises(BackendUnavailable, match='TensorRT is not installed.*pip install'):
        TensorRTBackend(tmp_path / 'model.plan')


@needs_no_tensorrt
def test_factory_refuses_tensorrt_before_exporting(tmp_path, monkeypatch, panda):
    from inference_fixtures import make_tiny_artifact
    from robotag_ros.estimator_factory import load_estimator
    monkeypatch.setenv('ROBOTAG_CACHE', str(tmp_path / 'cache'))
    artifact = make_tiny_artifact(tmp_path / 'tiny', panda)
    with pytest.raises(BackendUnavailable, match='TensorRT is not installed'):
        load_estimator(artifact, backend='tensorrt', device='cuda')
    assert not (tmp_path / 'cache' / 'onnx').exists() \
        or not list((tmp_path / 'cache' / 'onnx').iterdir())
