"""The estimator node in real processes: start-up on a device or backend this machine lacks is
one line and exit 2."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')
pytest.importorskip('tf2_msgs.msg', reason='tf2_msgs not built: run scripts/install_ros.sh')

from inference_fixtures import make_tiny_artifact  # noqa: E402
from robotag_ros.ros.local_dds import local_ros_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def _ort_has(provider: str) -> bool:
    import onnxruntime
    return provider in onnxruntime.get_available_providers()


def _tensorrt_installed() -> bool:
    try:
        import tensorrt  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.fixture(scope='module')
def artifact(tmp_path_factory, panda):
    return make_tiny_artifact(tmp_path_factory.mktemp('artifact') / 'tiny', panda)


@pytest.mark.parametrize('parameters, expected, unavailable', [
    (['device:=cuda'], "device=cuda asked for, but torch sees no CUDA device",
     lambda: not _cuda_available()),
    (['backend:=tensorrt'], 'TensorRT is not installed', lambda: not _tensorrt_installed()),
    (['backend:=onnxruntime', 'device:=cuda'], 'ONNX Runtime has no CUDAExecutionProvider',
     lambda: not _ort_has('CUDAExecutionProvider')),
], ids=['cuda', 'tensorrt', 'onnxruntime_cuda'])
def test_unavailable_device_or_backend_is_one_line_and_exit_2(tmp_path, artifact, parameters,
                                                              expected, unavailable):
    if not unavailable():
        pytest.skip('this machine has it')
    env = local_ros_env(domain_id=20 + (os.getpid() + 11) % 80, pythonpath=str(REPO))
    env['ROBOTAG_CACHE'] = str(tmp_path / 'cache')
    command = [sys.executable, '-m', 'robotag_ros.ros.estimator_node', '--ros-args',
               '-p', f'model_path:={artifact}']
    for parameter in parameters:
        command += ['-p', parameter]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr + result.stdout, result.stderr
    assert f'estimator: cannot start: {expected}' in result.stderr, result.stderr
    assert not (tmp_path / 'cache' / 'onnx').exists() or not list(
        (tmp_path / 'cache' / 'onnx').glob('*.onnx')), 'exported before refusing'
