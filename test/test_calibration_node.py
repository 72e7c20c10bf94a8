"""The live calibration node in its own process, fed PoseStamped estimates by another process.

Checks that it writes a .calib that recovers the true camera pose despite outliers, and that the
result is published on /tf_static with transient-local QoS: the listener subscribes only after
the .calib exists (a late joiner) and still receives it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')
pytest.importorskip('tf2_msgs.msg', reason='tf2_msgs not built: run scripts/install_ros.sh')

from scipy.spatial.transform import Rotation  # noqa: E402

from robotag_ros.calibration import read_calib  # noqa: E402
from process_helpers import stop_process  # noqa: E402
from robotag_ros.harness.local_dds import local_ros_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NUM_FRAMES = 30
CAMERA_FRAME = 'test_camera_optical_frame'


def _T_base_cam_true():
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler('xyz', [-120, 5, 30], degrees=True).as_matrix()
    T[:3, 3] = [1.2, -0.3, 0.6]
    return T


def _scenario(calib_path: Path) -> dict:
    rng = np.random.default_rng(0)
    T_true = _T_base_cam_true()
    poses, scores = [], []
    for index in range(NUM_FRAMES):
        T = T_true.copy()
        T[:3, :3] = (Rotation.from_rotvec(rng.normal(0, np.radians(0.5), 3)).as_matrix()
                     @ T[:3, :3])
        T[:3, 3] += rng.normal(0, 0.003, 3)
        score = 0.9
        if index % 10 == 3:     # gross outliers the robust statistics must drop
            T[:3, 3] += [0.4, 0.0, -0.3]
        if index % 10 == 7:     # a bad frame the consistency threshold must drop
            T[:3, 3] += [-0.5, 0.2, 0.0]
            score = 0.1
        poses.append(T.tolist())
        scores.append(score)
    return {'T_base_cam': poses, 'consistency': scores, 'base_frame': 'panda_link0',
            'calib_path': str(calib_path)}


def test_live_node_writes_calib_and_latches_tf_static(tmp_path):
    calib_path = tmp_path / 'live.calib'
    scenario = tmp_path / 'scenario.json'
    scenario.write_text(json.dumps(_scenario(calib_path)))
    result_path = tmp_path / 'result.json'
    env = local_ros_env(40 + os.getpid() % 50, pythonpath=str(REPO))
    node = subprocess.Popen(
        [sys.executable, '-m', 'robotag_ros.ros.calibration_node', '--ros-args',
         '-r', 'camera_pose:=/estimator/camera_pose',
         '-p', f'output:={calib_path}', '-p', f'frames_to_calibrate:={NUM_FRAMES}',
         '-p', f'camera_frame:={CAMERA_FRAME}', '-p', 'min_consistency:=0.5'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        driver = subprocess.run(
            [sys.executable, str(REPO / 'test' / 'calibration_harness.py'), str(scenario),
             str(result_path)], env=env, capture_output=True, text=True, timeout=90)
        assert driver.returncode == 0, driver.stderr[-2000:]
    finally:
        node_log = stop_process(node)
    result = json.loads(result_path.read_text())
    assert result['calib_written'], node_log[-2000:]

    calibration = read_calib(calib_path)
    T_true = _T_base_cam_true()
    assert calibration.parent_frame == 'panda_link0'
    assert calibration.tracking_base_frame == CAMERA_FRAME
    assert np.linalg.norm(calibration.T_reference_cam[:3, 3] - T_true[:3, 3]) < 0.005
    angle = Rotation.from_matrix(calibration.T_reference_cam[:3, :3].T @ T_true[:3, :3])
    assert np.degrees(angle.magnitude()) < 0.5

    assert result['received'], f'late joiner got nothing on /tf_static; node log:\n{node_log}'
    latched = result['received'][-1]
    assert (latched['parent'], latched['child']) == ('panda_link0', CAMERA_FRAME)
    np.testing.assert_allclose(latched['translation'], calibration.T_reference_cam[:3, 3],
                               atol=1e-6)


def test_calibrate_cli_publish_static_latches_the_result(tmp_path):
    """robotag-calibrate --publish-static: a listener that joins after it published gets it."""
    import queue
    import threading

    from robotag_ros.calibration import EstimateSeries, save_estimates_json

    rng = np.random.default_rng(1)
    T_cam_base = np.linalg.inv(_T_base_cam_true())
    transforms = np.repeat(T_cam_base[None], 20, axis=0)
    transforms[:, :3, 3] += rng.normal(0, 0.002, (20, 3))
    estimates = tmp_path / 'estimates.json'
    save_estimates_json(estimates, EstimateSeries(np.arange(20, dtype=np.int64) * 10**8,
                                                  transforms))
    calib_path = tmp_path / 'cli.calib'
    env = local_ros_env(40 + (os.getpid() + 7) % 50, pythonpath=str(REPO))
    cli = subprocess.Popen(
        [sys.executable, '-m', 'robotag_ros.calibration.cli', '--estimates', str(estimates),
         '--output', str(calib_path), '--camera-frame', CAMERA_FRAME, '--publish-static'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in cli.stdout],
                     daemon=True).start()
    log = []
    try:
        while not any('publishing' in line for line in log):
            log.append(lines.get(timeout=60))   # raises queue.Empty if it never publishes
        listener = subprocess.run(
            [sys.executable, str(REPO / 'test' / 'calibration_harness.py'), '--listen-static',
             str(tmp_path / 'listened.json')], env=env, capture_output=True, text=True,
            timeout=60)
        assert listener.returncode == 0, listener.stderr[-2000:]
    finally:
        stop_process(cli)
    received = json.loads((tmp_path / 'listened.json').read_text())['received']
    assert received, ''.join(log)
    assert (received[-1]['parent'], received[-1]['child']) == ('panda_link0', CAMERA_FRAME)
    np.testing.assert_allclose(received[-1]['translation'],
                               read_calib(calib_path).T_reference_cam[:3, 3], atol=1e-6)


@pytest.mark.parametrize('parameter, reason', [
    ('min_consistency:=2.0', 'min_consistency out of range'),
    ('calibration_type:=sideways', "calibration_type must be one of ('eye_on_base', "
                                   "'eye_in_hand'), got 'sideways'")])
def test_a_bad_parameter_is_one_line_and_exit_2(tmp_path, parameter, reason):
    """The calibrator's parameters are checked by its schema (robotag_ros/parameters)."""
    env = local_ros_env(domain_id=20 + (os.getpid() + 17) % 80, pythonpath=str(REPO))
    command = [sys.executable, '-m', 'robotag_ros.ros.calibration_node', '--ros-args',
               '-p', parameter, '-p', f'output:={tmp_path / "c.calib"}']
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith('calibrator: cannot start: ') and reason in line
    assert not (tmp_path / 'c.calib').exists()
