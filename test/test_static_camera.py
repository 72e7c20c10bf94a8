"""A static camera is one camera (robotag_ros/calibration/static_camera.py): the running
estimate, the joints-only fit with the camera fixed, the .calib camera, a rendered recording."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from robotag_ros.calibration.calib_file import HandEyeCalibration, write_calib
from robotag_ros.calibration.static_camera import (GIVEN, STABLE, RunningCamera,
                                                   StaticCameraSettings, StaticCameraTracker,
                                                   camera_from_calib)
from robotag_ros.calibration.synthetic import NoiseModel, simulate_estimates, transform_error
from robotag_ros.harness.fake_estimator import FAKE_T_CAM_BASE, FakeEstimator
from robotag_ros.inference.estimate import RobotTracker
from robotag_ros.inference.fitting import FitConfig, fit_robot_pose
from robotag_ros.inference.loop_closing import close_loops
from test_fitting import _perturbed_start, _scenes
from test_loop_closing import _states

T_TRUE = np.eye(4)
T_TRUE[:3, :3] = Rotation.from_rotvec([0.3, -2.0, 0.5]).as_matrix()
T_TRUE[:3, 3] = [0.1, -0.2, 1.4]
NOISE = NoiseModel(translation_sigma_m=0.01, rotation_sigma_deg=2.0, outlier_fraction=0.0)


def _mirrored(T_cam_base):
    """The camera on the other side of the robot: turned half a turn about the base's z."""
    T = np.array(T_cam_base, dtype=np.float64)
    return T @ np.diag([-1.0, -1.0, 1.0, 1.0])


def _feed(camera, poses):
    return [camera.add(T) for T in poses]


def test_the_running_estimate_converges_and_then_is_stable():
    estimates = simulate_estimates(T_TRUE, 60, NOISE, np.random.default_rng(0)).T
    camera = RunningCamera()
    stable = _feed(camera, estimates)
    settings = StaticCameraSettings()
    assert not any(stable[:settings.min_frames - 1]) and camera.T_cam_base is not None
    assert camera.stable and camera.state == STABLE
    first = stable.index(True)
    translation_mm, rotation_deg = transform_error(camera.T_cam_base, T_TRUE)
    # The mean of n frames of 10 mm / 2 deg (per axis) noise: a few mm and under a degree.
    assert translation_mm < 3.0 * 17.0 / math.sqrt(first + 1)
    assert rotation_deg < 3.0 * 3.5 / math.sqrt(first + 1)
    summary = camera.summary()
    assert summary['static_camera_state'] == 'stable'
    assert summary['static_camera_translation_sem_mm'] <= settings.stable_translation_mm
    assert summary['static_camera_rotation_sem_deg'] <= settings.stable_rotation_deg


def test_mirrored_and_gross_outliers_do_not_move_the_estimate():
    rng = np.random.default_rng(1)
    estimates = list(simulate_estimates(T_TRUE, 40, NOISE, rng).T)
    for index in range(0, 40, 4):                 # a quarter of the frames seen mirrored
        estimates[index] = _mirrored(estimates[index])
    estimates[5][:3, 3] += [0.0, 0.0, 3.0]        # one 3 m off
    estimates[7][:3, 3] = np.nan                  # one failed frame: ignored
    camera = RunningCamera(StaticCameraSettings(stable_translation_mm=0.0))   # never frozen
    _feed(camera, estimates)
    translation_mm, rotation_deg = transform_error(camera.T_cam_base, T_TRUE)
    assert translation_mm < 10.0 and rotation_deg < 2.0
    assert camera.result.frames_used <= 29        # the mirrored and far frames left out
    # Without rejection the one far frame alone moves the mean by 3 m / 39 frames.
    from robotag_ros.calibration.aggregate import aggregate_transforms
    finite = [T for T in estimates if np.isfinite(T).all()]
    assert transform_error(aggregate_transforms(np.stack(finite), reject_outliers=False).T,
                           T_TRUE)[0] > 50.0


def test_a_split_vote_is_never_stable():
    """Half the frames mirrored: no side wins, so the camera is never fixed."""
    estimates = list(simulate_estimates(T_TRUE, 80, NOISE, np.random.default_rng(2)).T)
    estimates = [_mirrored(T) if index % 2 else T for index, T in enumerate(estimates)]
    camera = RunningCamera()
    assert not any(_feed(camera, estimates))


def test_an_unsettled_camera_is_aggregated_every_few_frames(monkeypatch):
    """Frames 20, 25, 30, ... are aggregated, not every frame: the node's hot path."""
    from robotag_ros.calibration import static_camera

    calls = []
    aggregate = static_camera.aggregate_transforms
    monkeypatch.setattr(static_camera, 'aggregate_transforms',
                        lambda poses, *args, **kwargs: calls.append(len(poses)) or aggregate(
                            poses, *args, **kwargs))
    estimates = list(simulate_estimates(T_TRUE, 40, NOISE, np.random.default_rng(2)).T)
    estimates = [_mirrored(T) if index % 2 else T for index, T in enumerate(estimates)]
    assert not any(_feed(RunningCamera(), estimates))
    assert calls == [20, 25, 30, 35, 40]


def test_the_estimate_is_frozen_once_stable_and_reset_starts_over():
    estimates = simulate_estimates(T_TRUE, 40, NOISE, np.random.default_rng(3)).T
    camera = RunningCamera()
    _feed(camera, estimates)
    frozen = camera.T_cam_base
    used = camera.result.frames_used
    _feed(camera, [_mirrored(T_TRUE)] * 50)       # the camera knocked: nothing changes
    np.testing.assert_array_equal(camera.T_cam_base, frozen)
    assert camera.result.frames_used == used and camera.stable
    camera.reset()
    assert camera.T_cam_base is None and not camera.stable


def test_a_given_camera_is_stable_from_the_start(tmp_path):
    path = write_calib(tmp_path / 'cam.calib', HandEyeCalibration(
        name='cam', calibration_type='eye_on_base', T_cam_reference=T_TRUE,
        robot_base_frame='panda_link0', robot_effector_frame='panda_hand',
        tracking_base_frame='camera_color_optical_frame'))
    T = camera_from_calib(path, 'panda_link0')
    np.testing.assert_allclose(T, T_TRUE, atol=1e-9)
    camera = RunningCamera(T_cam_base=T)
    assert camera.stable and camera.state == GIVEN
    camera.add(_mirrored(T_TRUE))
    camera.reset()
    np.testing.assert_allclose(camera.T_cam_base, T_TRUE, atol=1e-9)
    with pytest.raises(ValueError, match="base frame 'panda_link0'.* in 'world'"):
        camera_from_calib(path, 'world')
    hand = write_calib(tmp_path / 'hand.calib', HandEyeCalibration(
        name='hand', calibration_type='eye_in_hand', T_cam_reference=T_TRUE,
        robot_base_frame='panda_link0', robot_effector_frame='panda_hand',
        tracking_base_frame='camera_color_optical_frame'))
    with pytest.raises(ValueError, match='eye_in_hand calibration'):
        camera_from_calib(hand)
    with pytest.raises(FileNotFoundError):
        camera_from_calib(tmp_path / 'none.calib')


def test_the_fit_without_the_camera_block_keeps_the_camera_exactly(panda):
    joints, T_cam_base, intrinsics, keypoints_px, _ = _scenes(panda, 6, seed=41)
    start_joints, _ = _perturbed_start(panda, joints, T_cam_base, seed=42)
    fit = fit_robot_pose(panda, keypoints_px, torch.ones(6, panda.num_keypoints), intrinsics,
                         start_joints, T_cam_base[:, None], FitConfig(fit_camera=False))
    assert torch.equal(fit.T_cam_base, T_cam_base)
    assert float((fit.joint_angles - joints).abs().rad2deg()[:, :6].median()) < 0.5


def test_a_known_camera_fits_the_joints_better_than_the_free_fit(panda):
    """Noisy keypoints with outliers: with the true camera held fixed the joints come out
    closer to the truth than when joints and camera are fitted together."""
    joints, T_cam_base, intrinsics, keypoints_px, _ = _scenes(panda, 24, seed=51)
    states = _states(panda, joints, T_cam_base, keypoints_px, seed=52)
    rng = np.random.default_rng(53)
    noisy = states['keypoints_2d_peak'] + torch.from_numpy(
        rng.normal(0.0, 4.0, tuple(keypoints_px.shape))).float()
    noisy[:, 3] += 40.0
    states['keypoints_2d_peak'] = noisy
    free = close_loops(dict(states), panda, intrinsics.float())
    fixed = close_loops(dict(states), panda, intrinsics.float(), known_camera=T_cam_base.float())
    torch.testing.assert_close(fixed['T_cam_base'], T_cam_base.float())

    def error_deg(fitted):
        return float((fitted['joint_angles'].double() - joints).abs().rad2deg()[:, :6].mean())
    assert error_deg(fixed) < 0.8 * error_deg(free)
    with pytest.raises(ValueError, match='nothing to fit'):
        close_loops(dict(states), panda, intrinsics.float(), known_joints=joints.float(),
                    known_camera=T_cam_base.float())


def test_the_tracker_fixes_the_camera_once_the_running_estimate_is_stable():
    estimator = FakeEstimator()
    seen = []
    original = estimator.estimate
    estimator.estimate = lambda image, K, **options: seen.append(options) or original(
        image, K, **options)
    camera = RunningCamera(StaticCameraSettings(min_frames=5))
    tracker = StaticCameraTracker(RobotTracker(estimator), camera)
    image, K = np.zeros((48, 64, 3), np.uint8), np.array([[80.0, 0, 32], [0, 80.0, 24],
                                                          [0, 0, 1]])
    for _ in range(7):
        estimate = tracker.estimate(image, K)
    # The fake's camera never moves: stable at the fifth frame, fixed from the sixth on.
    assert ['T_cam_base' in options for options in seen] == [False] * 5 + [True] * 2
    np.testing.assert_allclose(seen[-1]['T_cam_base'], FAKE_T_CAM_BASE, atol=1e-9)
    np.testing.assert_allclose(estimate.T_cam_base, FAKE_T_CAM_BASE, atol=1e-9)
    with pytest.raises(ValueError, match='nothing to estimate'):
        tracker.estimate(image, K, joint_angles_rad=np.zeros(7))


@pytest.fixture(scope='module')
def bundled_estimator():
    from robotag_ros.bundled import default_model_path, has_default_model
    if not has_default_model():
        pytest.skip(f'bundled model {default_model_path()} is absent')
    from robotag_ros.estimator_factory import load_estimator
    return load_estimator(str(default_model_path()), backend='auto')


def _joint_error_deg(estimates, frames) -> float:
    """Mean joints 1-6 error (degrees) of estimates against the rendered truth."""
    from robotag_ros.metrics import pose_metrics
    return float(pose_metrics.joint_errors_deg(
        np.stack([e.joint_angles_rad for e in estimates]),
        np.stack([f.joint_angles_rad for f in frames]))[:, :6].mean())


def test_a_rendered_static_recording_through_the_nodes_path(bundled_estimator, panda):
    """A held-out static-camera recording (rooms, one camera, the arm moving) estimated as the
    node does with static_camera on: the running estimate becomes stable, from then on the
    estimator gets it as the known camera and reports it; the joints are no worse than the free
    fit's on those frames, and the true camera given from a .calib does better than the free
    fit (benchmarks/results/static_camera.json measures five such recordings)."""
    from robotag_ros.calibration.static_camera import estimate_static_recording
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator
    from robotag_ros.metrics import pose_metrics
    generator = SyntheticFrameGenerator(panda, load_dr_config(
        Path(__file__).parents[1] / 'config' / 'synth' / 'dr_default.yaml'), 480, 640)
    try:
        frames = generator.generate_sequence(8004, 40)   # a seed no training set uses
    finally:
        generator.close()
    images = [(frame.rgb, frame.K) for frame in frames]
    free, _ = estimate_static_recording(bundled_estimator, images, None)
    camera = RunningCamera()
    static, fixed_from = estimate_static_recording(bundled_estimator, images, camera)
    assert fixed_from is not None and fixed_from <= 30
    for estimate in static[fixed_from:]:   # float32 in the decoder
        np.testing.assert_allclose(estimate.T_cam_base, camera.T_cam_base, atol=1e-6)
    T_true = frames[0].T_cam_base
    translation_mm, rotation_deg = transform_error(camera.T_cam_base, T_true)
    assert translation_mm < 80.0 and rotation_deg < 8.0
    after = slice(fixed_from, None)
    assert _joint_error_deg(static[after], frames[after]) <= \
        _joint_error_deg(free[after], frames[after]) + 1.0
    errors = pose_metrics.joint_errors_deg(
        np.stack([e.joint_angles_rad for e in static[after]]),
        np.stack([f.joint_angles_rad for f in frames[after]]))
    assert (errors[:, 0] < 90.0).all()   # no mirrored arm
    given, fixed_from = estimate_static_recording(bundled_estimator, images,
                                                  RunningCamera(T_cam_base=T_true))
    assert fixed_from == 0
    assert _joint_error_deg(given, frames) < _joint_error_deg(free, frames)
