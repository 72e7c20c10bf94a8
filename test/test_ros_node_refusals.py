"""The estimator node in real processes: start-up on a device or backend this machine lacks is
one line and exit 2; camera_info arriving without images is reported; the shared-memory
transport's message size limit is explicit and the same everywhere."""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')
pytest.importorskip('tf2_msgs.msg', reason='tf2_msgs not built: run scripts/install_ros.sh')

from inference_fixtures import artifact_with_sidecar_changes, make_tiny_artifact  # noqa: E402
from robotag_ros.harness.local_dds import (LOCAL_TRANSPORTS, MAX_MESSAGE_BYTES,  # noqa: E402
                                           local_ros_env)
from robotag_ros.harness.sample_run import NodeSession  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / 'test' / 'ros_harness.py'
FAKE_FACTORY = 'robotag_ros.harness.fake_estimator:make_fake_estimator'


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


def test_a_sidecar_without_a_usable_input_size_is_one_line_and_exit_2(tmp_path, artifact):
    artifact_with_sidecar_changes(artifact, tmp_path / 'zero', input_size=[0, 0])
    env = local_ros_env(domain_id=20 + (os.getpid() + 13) % 80, pythonpath=str(REPO))
    result = subprocess.run([sys.executable, '-m', 'robotag_ros.ros.estimator_node', '--ros-args',
                             '-p', f'model_path:={tmp_path / "zero"}'], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f'estimator: cannot start: {tmp_path / "zero.yaml"}: input_size must be [height, width], '
        'each an integer from 32 to 4096 pixels, got [0, 0]'], result.stderr


def test_camera_info_without_images_is_reported(tmp_path):
    """What a node sees when frames are lost on the way (over the transport's message size, or
    a wrong image topic): camera_info keeps arriving, images do not."""
    with NodeSession(tmp_path / 'session', domain_id=20 + (os.getpid() + 23) % 80,
                     params_file=None, camera_namespace='/camera', listen=False,
                     parameters={'estimator_factory': FAKE_FACTORY}) as session:
        deadline = time.monotonic() + 60
        while 'estimator ready' not in session.node_log():
            assert session.node.poll() is None, session.node_log()
            assert time.monotonic() < deadline, 'the node never got ready'
            time.sleep(0.1)
        session.run([sys.executable, str(HARNESS), 'infos', '/camera/camera_info', '7',
                     str(tmp_path / 'infos.json')], timeout_s=120).check_returncode()
    text = session.node_log()
    assert re.search(r'\d+ camera_info messages but no image on /camera/image_raw for \d+ s: '
                     r'check the image topic, and that frames fit the DDS transport', text), text
    assert f'FASTDDS_BUILTIN_TRANSPORTS={LOCAL_TRANSPORTS}' in text
    statuses = json.loads((tmp_path / 'infos.json').read_text())['statuses']
    warnings = [s for s in statuses if s['message'].startswith('no images: ')]
    assert warnings and warnings[0]['level'] == 1, statuses
    assert int(warnings[0]['values']['camera_infos_without_image']) >= 3


def test_transport_limit_is_explicit_fits_4k_rgb_and_is_the_same_everywhere():
    assert MAX_MESSAGE_BYTES >= 3840 * 2160 * 3 + 1024       # a 4K rgb8 Image with its header
    match = re.fullmatch(r'SHM\?max_msg_size=(\d+)MB&sockets_size=(\d+)MB', LOCAL_TRANSPORTS)
    assert match and int(match.group(1)) * 1024 * 1024 == MAX_MESSAGE_BYTES
    assert int(match.group(2)) >= 2 * int(match.group(1))    # a segment holds several
    assert f"FASTDDS_BUILTIN_TRANSPORTS='{LOCAL_TRANSPORTS}'" in (
        REPO / 'scripts' / 'local_env.sh').read_text()
    assert LOCAL_TRANSPORTS in (REPO / 'docs' / 'node.md').read_text()


def test_an_estimator_factory_must_return_a_pose_estimator():
    """The node states what it needs (PoseEstimator) and names what a factory's object lacks."""
    from robotag_ros.inference.estimate import PoseEstimator
    from robotag_ros.inference.factory import build_estimator
    from robotag_ros.harness.fake_estimator import make_fake_estimator
    assert isinstance(build_estimator(make_fake_estimator, '', 'torch', 'cpu', ''), PoseEstimator)
    with pytest.raises(ValueError, match=r"without \['robot_name', 'base_frame'"):
        build_estimator(lambda model_path, backend, device: object(), '', 'torch', 'cpu', '')

    def panda_only(model_path, backend, device):   # a factory that takes no robot
        return make_fake_estimator()

    with pytest.raises(ValueError, match="robot='kuka_iiwa' but the model is for 'panda'"):
        build_estimator(panda_only, '', 'torch', 'cpu', 'kuka_iiwa')
