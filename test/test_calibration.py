"""Hand-eye calibration core: robust aggregation, eye-in-hand, .calib files."""
import numpy as np
import pytest
import yaml
from scipy.spatial.transform import Rotation

from robotag_ros.calibration import (
    EYE_IN_HAND, EYE_ON_BASE, HandEyeCalibration, aggregate_transforms, calibrate_eye_in_hand,
    calibrate_eye_on_base, read_calib, write_calib,
)
from robotag_ros.calibration.synthetic import (
    NoiseModel, base_yaw_error_deg, random_transform, simulate_estimates, transform_error,
)


def _transform(rotvec, translation):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = translation
    return T


T_TRUE = _transform([0.3, -2.0, 0.5], [0.1, -0.2, 1.4])


def test_recovers_known_transform_despite_20_percent_gross_outliers():
    rng = np.random.default_rng(0)
    noise = NoiseModel(translation_sigma_m=0.003, rotation_sigma_deg=0.3, outlier_fraction=0.2)
    sim = simulate_estimates(T_TRUE, 200, noise, rng)
    result = calibrate_eye_on_base(sim.T, sim.consistency)
    translation_mm, rotation_deg = transform_error(result.T, T_TRUE)
    assert translation_mm < 1.0 and rotation_deg < 0.1
    assert not (result.inliers & sim.is_outlier).any()          # every gross outlier rejected
    assert result.frames_used >= 150                            # few inliers lost
    assert 2.0 < result.translation_std_mm.mean() < 4.0         # reports the simulated 3 mm noise
    # Without rejection the same data is badly off: the rejection is what makes it work.
    naive = aggregate_transforms(sim.T, reject_outliers=False)
    assert transform_error(naive.T, T_TRUE)[0] > 10.0


@pytest.mark.parametrize('yaw_deg', [5.0, -30.0, 170.0, -179.0])
def test_base_yaw_error_is_the_twist_about_the_base_z_axis(yaw_deg):
    # The camera turned about the base's z axis (what a joint-1 error trades for), then tilted.
    yawed = T_TRUE.copy()
    yawed[:3, :3] = T_TRUE[:3, :3] @ Rotation.from_euler('z', yaw_deg, degrees=True).as_matrix()
    assert base_yaw_error_deg(yawed, T_TRUE) == pytest.approx(abs(yaw_deg), abs=1e-9)
    tilted = yawed.copy()
    tilted[:3, :3] = yawed[:3, :3] @ Rotation.from_euler('x', 2.0, degrees=True).as_matrix()
    assert base_yaw_error_deg(tilted, T_TRUE) == pytest.approx(abs(yaw_deg), abs=0.2)
    assert transform_error(tilted, T_TRUE)[1] > transform_error(yawed, T_TRUE)[1]
    # A tilt alone is no yaw; the camera's own z axis is not the base's.
    tilt_only = T_TRUE.copy()
    tilt_only[:3, :3] = T_TRUE[:3, :3] @ Rotation.from_euler('y', 3.0, degrees=True).as_matrix()
    assert base_yaw_error_deg(tilt_only, T_TRUE) == pytest.approx(0.0, abs=1e-9)
    camera_roll = T_TRUE.copy()
    camera_roll[:3, :3] = Rotation.from_euler('z', 4.0, degrees=True).as_matrix() @ T_TRUE[:3, :3]
    assert base_yaw_error_deg(camera_roll, T_TRUE) < 3.9


def test_rotation_average_across_the_pi_wraparound():
    rng = np.random.default_rng(1)
    T_true = _transform(np.array([0.0, 0.0, 1.0]) * np.radians(179.9), [0.0, 0.0, 1.0])
    sim = simulate_estimates(T_true, 100, NoiseModel(0.001, 0.5, 0.0), rng)
    angles = Rotation.from_matrix(sim.T[:, :3, :3]).magnitude()
    # rotvec flips direction past pi: both sides of the wrap are present in the samples.
    assert (Rotation.from_matrix(sim.T[:, :3, :3]).as_rotvec()[:, 2] < 0).any()
    assert angles.max() > np.radians(179.5)
    result = aggregate_transforms(sim.T)
    assert transform_error(result.T, T_true)[1] < 0.2
    assert result.frames_used >= 95


def test_eye_in_hand_recovers_the_hand_camera_transform():
    rng = np.random.default_rng(2)
    T_cam_ee_true = _transform([0.1, 0.2, -0.3], [0.02, -0.05, 0.08])

    def forward_kinematics(joint_angles):
        # A toy "robot": the first three joints are a rotation vector, the last three a position.
        return np.stack([_transform(q[:3], q[3:]) for q in joint_angles])

    joint_angles = np.concatenate([rng.uniform(-1, 1, (60, 3)), rng.uniform(-0.5, 0.5, (60, 3))],
                                  axis=1)
    T_base_ee = forward_kinematics(joint_angles)
    noise = simulate_estimates(np.eye(4), 60, NoiseModel(0.002, 0.2, 0.1), rng)
    # Each estimate: the true T_cam_base at that pose, perturbed in the camera frame.
    T_cam_base = noise.T @ T_cam_ee_true @ np.linalg.inv(T_base_ee)
    result = calibrate_eye_in_hand(T_cam_base, joint_angles, forward_kinematics)
    translation_mm, rotation_deg = transform_error(result.T, T_cam_ee_true)
    assert translation_mm < 1.5 and rotation_deg < 0.15
    # The per-frame T_cam_base varies wildly; only the hand-camera transform is constant.
    assert calibrate_eye_on_base(T_cam_base, reject_outliers=False).translation_spread_mm > 100


def test_consistency_threshold_rejects_low_score_frames():
    rng = np.random.default_rng(3)
    sim = simulate_estimates(T_TRUE, 50, NoiseModel(0.001, 0.1, 0.0), rng)
    low = np.arange(50) % 3 == 0
    sim.T[low, :3, 3] += [0.02, 0.0, 0.0]          # a consistent 2 cm bias on the doubtful frames
    scores = np.where(low, 0.2, 0.9)
    result = aggregate_transforms(sim.T, scores, min_consistency=0.5, reject_outliers=False)
    np.testing.assert_array_equal(result.rejected_consistency, low)
    assert result.frames_used == int((~low).sum())
    assert transform_error(result.T, T_TRUE)[0] < 1.0
    with pytest.raises(ValueError, match='consistency threshold'):
        aggregate_transforms(sim.T, scores, min_consistency=0.95)


def test_noise_free_estimates_are_all_kept():
    T = np.tile(T_TRUE, (5, 1, 1))
    result = aggregate_transforms(T)
    assert result.frames_used == 5
    np.testing.assert_allclose(result.T, T_TRUE, atol=1e-12)


def test_bad_input_is_refused_by_name():
    with pytest.raises(ValueError, match=r'\(N, 4, 4\)'):
        aggregate_transforms(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match='consistency scores'):
        aggregate_transforms(np.tile(np.eye(4), (4, 1, 1)), np.ones(3))


@pytest.mark.parametrize('calibration_type', [EYE_ON_BASE, EYE_IN_HAND])
def test_calib_file_round_trips_and_stores_easy_handeye2_direction(tmp_path, calibration_type):
    rng = np.random.default_rng(4)
    T_cam_reference = random_transform(rng)
    calibration = HandEyeCalibration(
        name='robotag', calibration_type=calibration_type, T_cam_reference=T_cam_reference,
        robot_base_frame='panda_link0', robot_effector_frame='panda_hand',
        tracking_base_frame='camera_color_optical_frame')
    path = write_calib(tmp_path / 'robotag.calib', calibration)
    assert not list(tmp_path.glob('.*.tmp'))                  # no temporary file left behind
    back = read_calib(path)
    np.testing.assert_allclose(back.T_cam_reference, T_cam_reference, atol=1e-12)
    assert back.calibration_type == calibration_type and back.name == 'robotag'
    assert back.robot_effector_frame == 'panda_hand'
    # easy_handeye2 stores the camera's pose in the parent frame: the inverse of ours.
    raw = yaml.safe_load(path.read_text())
    stored_t = [raw['transform']['translation'][k] for k in 'xyz']
    np.testing.assert_allclose(stored_t, np.linalg.inv(T_cam_reference)[:3, 3], atol=1e-12)
    assert set(raw['parameters']) >= {'name', 'calibration_type', 'robot_base_frame',
                                      'robot_effector_frame', 'tracking_base_frame',
                                      'tracking_marker_frame', 'freehand_robot_movement'}
    assert calibration.parent_frame == ('panda_hand' if calibration_type == EYE_IN_HAND
                                        else 'panda_link0')


def test_calib_file_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.calib'):
        read_calib(tmp_path / 'missing.calib')
    broken = tmp_path / 'broken.calib'
    broken.write_text('parameters: {name: x}\n')
    with pytest.raises(ValueError, match='broken.calib.*missing'):
        read_calib(broken)
    with pytest.raises(ValueError, match='calibration_type'):
        HandEyeCalibration('x', 'eye_on_table', np.eye(4), 'a', 'b', 'c')


def test_calibration_metrics_and_bag_modules_import_without_ros():
    import subprocess
    import sys

    code = ('import sys, robotag_ros.calibration.cli, robotag_ros.metrics, '
            'robotag_ros.data.bags.bag_images; '
            'bad = [m for m in sys.modules if m.startswith("rclpy") or m.endswith("_msgs")]; '
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True)
