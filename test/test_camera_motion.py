"""A camera that moved during the recording is reported, not averaged (camera_motion.py)."""
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robotag_ros.calibration.calib_file import read_calib
from robotag_ros.calibration.camera_motion import JUMP, TREND, detect_camera_motion
from robotag_ros.calibration.cli import main
from robotag_ros.calibration.estimates_io import EstimateSeries, save_estimates_json
from robotag_ros.calibration.live import CalibrationSettings, calibrate_series
from robotag_ros.calibration.synthetic import NoiseModel, simulate_estimates, transform_error

T_BEFORE = np.eye(4)
T_BEFORE[:3, :3] = Rotation.from_euler('xyz', [-120, 5, 30], degrees=True).as_matrix()
T_BEFORE[:3, 3] = [0.05, 0.3, 1.2]
# the camera bumped: 30 mm along x and 1.5 deg about the optical axis
T_AFTER = T_BEFORE.copy()
T_AFTER[:3, 3] += [0.03, 0.0, 0.0]
T_AFTER[:3, :3] = Rotation.from_euler('z', 1.5, degrees=True).as_matrix() @ T_BEFORE[:3, :3]
NOISE = NoiseModel(translation_sigma_m=0.005, rotation_sigma_deg=0.5, outlier_fraction=0.2)
PERIOD_NS = 100_000_000


def jumping_series(frames: int, seed: int) -> EstimateSeries:
    """Per-frame estimates (20 % gross outliers) of a camera that jumps halfway."""
    rng = np.random.default_rng(seed)
    before = simulate_estimates(T_BEFORE, frames // 2, NOISE, rng)
    after = simulate_estimates(T_AFTER, frames - frames // 2, NOISE, rng)
    return EstimateSeries(np.arange(frames, dtype=np.int64) * PERIOD_NS,
                          np.concatenate([before.T, after.T]),
                          np.concatenate([before.consistency, after.consistency]))


@pytest.mark.parametrize('seed', range(3))
def test_a_jump_halfway_is_reported_and_only_the_later_pose_calibrated(seed):
    series = jumping_series(200, seed)
    result, calibration = calibrate_series(series, CalibrationSettings())
    motion = result.extra['camera_motion']
    assert motion.moved and motion.kind == JUMP
    assert abs(motion.frame_index - 100) <= 3
    assert 25.0 < motion.translation_mm < 35.0 and 1.0 < motion.rotation_deg < 2.0
    assert result.frames_total == 200 - motion.frame_index
    translation_mm, rotation_deg = transform_error(calibration.T_cam_reference, T_AFTER)
    assert translation_mm < 3.0 and rotation_deg < 0.3
    # averaging both would have landed between the two poses
    _, averaged = calibrate_series(series, CalibrationSettings(check_camera_motion=False))
    assert transform_error(averaged.T_cam_reference, T_AFTER)[0] > 10.0


@pytest.mark.parametrize('seed', range(5))
def test_a_still_camera_with_outliers_is_not_reported(seed):
    rng = np.random.default_rng(100 + seed)
    for frames in (20, 200):
        still = simulate_estimates(T_BEFORE, frames, NOISE, rng)
        motion = detect_camera_motion(np.arange(frames) * PERIOD_NS, still.T)
        assert not motion.moved and motion.kind == 'none', motion


def test_a_slow_drift_is_reported_as_a_trend():
    rng = np.random.default_rng(7)
    still = simulate_estimates(T_BEFORE, 200, NOISE, rng)
    drifting = still.T.copy()
    drifting[:, 2, 3] += np.linspace(0.0, 0.06, 200)      # 60 mm away over the recording
    motion = detect_camera_motion(np.arange(200) * PERIOD_NS, drifting)
    assert motion.moved and motion.kind == TREND and 50.0 < motion.translation_mm < 70.0
    assert 'drifts' in motion.warning()


def test_the_cli_warns_in_one_line_and_says_so_in_the_summary(tmp_path, capsys):
    estimates = save_estimates_json(tmp_path / 'estimates.json', jumping_series(120, 11))
    summary_path, output = tmp_path / 'summary.json', tmp_path / 'robotag.calib'
    assert main(['--estimates', str(estimates), '--output', str(output),
                 '--summary-json', str(summary_path)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if 'WARNING' in line]
    assert len(warnings) == 1 and 'the camera moved during the recording' in warnings[0]
    assert 'calibrated from the frames after the jump only' in warnings[0]
    summary = json.loads(summary_path.read_text())
    assert summary['camera_moved'] is True and summary['camera_motion_kind'] == JUMP
    assert abs(summary['camera_motion_at_stamp_ns'] - 60 * PERIOD_NS) <= 3 * PERIOD_NS
    assert transform_error(read_calib(output).T_cam_reference, T_AFTER)[0] < 3.0
    assert main(['--estimates', str(estimates), '--output', str(output),
                 '--summary-json', str(summary_path), '--no-camera-motion-check']) == 0
    assert 'WARNING' not in capsys.readouterr().err
    assert 'camera_moved' not in json.loads(summary_path.read_text())


def pose_dependent_estimates(T_true: np.ndarray, frames: int, seed: int) -> np.ndarray:
    """(frames, 4, 4) estimates as a real estimator gives them on a smoothly moving arm.

    Per axis 15 mm / 2 deg (26 mm / 3.5 deg per frame), heavy-tailed (Student t, 3 degrees of
    freedom), serially correlated (lag-one 0.8: the error follows the arm's pose, which changes
    little from one frame to the next), and 10 % gross outliers."""
    rng = np.random.default_rng(seed)
    estimates = simulate_estimates(T_true, frames, NoiseModel(0.0, 0.0, 0.1), rng)
    rho, dof = 0.8, 3
    shocks = rng.standard_t(dof, (frames, 6)) / np.sqrt(dof / (dof - 2))
    errors = np.empty_like(shocks)
    errors[0] = shocks[0]
    for i in range(1, frames):
        errors[i] = rho * errors[i - 1] + np.sqrt(1.0 - rho ** 2) * shocks[i]
    errors *= np.repeat([0.015, np.radians(2.0)], 3)
    T, inliers = estimates.T.copy(), ~estimates.is_outlier
    T[inliers, :3, 3] += errors[inliers, :3]
    T[inliers, :3, :3] = (Rotation.from_rotvec(errors[inliers, 3:])
                          * Rotation.from_matrix(T[inliers, :3, :3])).as_matrix()
    return T


@pytest.mark.parametrize('seed', range(5))
def test_a_still_camera_with_pose_dependent_noise_keeps_every_frame(seed):
    # neighbouring frames err alike, so a stretch of them can look like a step of 20-30 mm:
    # counted as independent frames, it was "significant" and the calibration kept 10 % of them
    series = EstimateSeries(np.arange(200, dtype=np.int64) * PERIOD_NS,
                            pose_dependent_estimates(T_BEFORE, 200, 200 + seed))
    result, calibration = calibrate_series(series, CalibrationSettings())
    motion = result.extra['camera_motion']
    assert not motion.moved and motion.kind == 'none', motion
    assert result.frames_total == 200
    assert transform_error(calibration.T_cam_reference, T_BEFORE)[0] < 10.0


def test_a_slow_drift_under_pose_dependent_noise_is_reported_as_a_trend():
    drifting = pose_dependent_estimates(T_BEFORE, 200, 300)
    drifting[:, 2, 3] += np.linspace(0.0, 0.15, 200)     # 150 mm away over the recording
    motion = detect_camera_motion(np.arange(200) * PERIOD_NS, drifting)
    assert motion.moved and motion.kind == TREND and 120.0 < motion.translation_mm < 180.0


def test_a_knock_under_pose_dependent_noise_is_found_where_it_happened():
    # the benchmark's knock: 30 mm along the camera's x and 1.5 deg about its y
    knock = np.eye(4)
    knock[:3, :3] = Rotation.from_euler('y', 1.5, degrees=True).as_matrix()
    knock[0, 3] = 0.03
    T = np.concatenate([pose_dependent_estimates(T_BEFORE, 100, 400),
                        pose_dependent_estimates(np.linalg.inv(knock) @ T_BEFORE, 100, 401)])
    motion = detect_camera_motion(np.arange(200) * PERIOD_NS, T)
    assert motion.moved and motion.kind == JUMP and abs(motion.frame_index - 100) <= 5, motion
