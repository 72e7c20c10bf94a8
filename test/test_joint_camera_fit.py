"""One fixed camera fitted to every frame's keypoints at once (calibration/joint_camera_fit.py)."""
import math

import numpy as np
import pytest
import torch

from robotag_ros.calibration import aggregate_transforms
from robotag_ros.calibration.estimates_io import EstimateSeries
from robotag_ros.calibration.hand_eye import EYE_IN_HAND
from robotag_ros.calibration.joint_camera_fit import fit_fixed_camera, keypoints_in_reference
from robotag_ros.calibration.live import CalibrationSettings, calibrate_series
from robotag_ros.calibration.synthetic import transform_error
from robotag_ros.data.synthetic.camera_sampling import look_at
from robotag_ros.inference.fitting import camera_from_joints_pnp, interchangeable_order

K = np.array([[615.0, 0.0, 320.0], [0.0, 615.0, 240.0], [0.0, 0.0, 1.0]])
FRAMES = 80


def _project(T_cam_reference: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (..., 2) and depths (...) of reference-frame points (..., 3)."""
    points_cam = points @ T_cam_reference[:3, :3].T + T_cam_reference[:3, 3]
    pixels = points_cam @ K.T
    return pixels[..., :2] / pixels[..., 2:], points_cam[..., 2]


def _static_camera():
    return np.linalg.inv(look_at(np.array([1.4, 0.6, 0.8]), np.array([0.0, 0.0, 0.4])))


def _detections(robot, T_cam_reference, effector=None, seed=0, noise_px=1.5, bias_px=4.0,
                shrink=0.0, outlier_fraction=0.0):
    """Random joints; their keypoints as a detector sees them: Gaussian noise, an error that
    depends smoothly on the arm's pose (the same for similar poses, as the model's are), the
    keypoints drawn together by ``shrink`` about their centre (the arm looks farther than it
    is: each frame's own camera errs in depth, as the model's per-frame cameras do), and
    optionally gross outliers (confident but anywhere in the image)."""
    rng = np.random.default_rng(seed)
    joints = robot.sample_joint_angles(FRAMES, torch.Generator().manual_seed(seed)) \
        .double().numpy()
    points = keypoints_in_reference(robot, joints, effector)
    pixels, depth = _project(T_cam_reference, points)
    count = points.shape[1]
    frequency = rng.normal(0.0, 1.0, (count, 2, joints.shape[1]))
    phase = rng.uniform(0.0, 2 * math.pi, (count, 2))
    pixels = pixels + bias_px * np.sin(np.einsum('kcn,fn->fkc', frequency, joints) + phase) \
        + rng.normal(0.0, noise_px, pixels.shape)
    confidence = rng.uniform(0.5, 1.0, pixels.shape[:2])
    confidence[depth < 0.1] = 0.0            # behind (or at) the camera: not detected
    centre = (pixels * confidence[..., None]).sum(1, keepdims=True) \
        / confidence.sum(1)[:, None, None]
    pixels = centre + (1.0 - shrink) * (pixels - centre)
    outliers = rng.random(pixels.shape[:2]) < outlier_fraction
    pixels[outliers] = rng.uniform([0.0, 0.0], [640.0, 480.0], (int(outliers.sum()), 2))
    return joints, points, pixels, confidence


def _per_frame_aggregate(robot, joints, pixels, confidence) -> np.ndarray:
    """What the calibration did before: each frame's own PnP camera, robustly averaged."""
    per_frame = camera_from_joints_pnp(
        robot, torch.from_numpy(joints), torch.from_numpy(pixels),
        torch.from_numpy(confidence), torch.from_numpy(np.repeat(K[None], FRAMES, axis=0)),
        min_weight=0.1).numpy()
    return aggregate_transforms(per_frame[np.isfinite(per_frame).all((1, 2))]).T


def test_joint_fit_beats_per_frame_aggregation(panda):
    T_true = _static_camera()
    joints, points, pixels, confidence = _detections(panda, T_true, shrink=0.03)
    aggregate_mm, _ = transform_error(
        _per_frame_aggregate(panda, joints, pixels, confidence), T_true)
    fit = fit_fixed_camera(points, pixels, confidence, K)
    fit_mm, fit_deg = transform_error(fit.T, T_true)
    # a 3 % shrink: ~47 mm per-frame depth bias, which the points of all frames about halve
    # (measured on 5 seeds: ratios 0.52-0.58; a 1 % shrink: 13-17 mm -> 7.5-10 mm)
    assert aggregate_mm > 35.0
    assert fit_mm < 0.7 * aggregate_mm and fit_deg < 0.3
    moving = points.std(0).max(-1) >= 1e-3           # the base's points are left out
    assert fit.frames_used == FRAMES and fit.points_used == (confidence[:, moving] > 0.1).sum()
    assert fit.rms_px < 6.0 and fit.inlier_fraction > 0.95


def test_joint_fit_tolerates_outliers_and_a_bad_start(panda):
    T_true = _static_camera()
    _, points, pixels, confidence = _detections(panda, T_true, seed=1, outlier_fraction=0.2)
    T_bad = T_true.copy()
    T_bad[:3, 3] += [0.1, -0.05, 0.2]        # 23 cm off: SQPnP's start wins
    fit = fit_fixed_camera(points, pixels, confidence, K, T_start=T_bad)
    fit_mm, fit_deg = transform_error(fit.T, T_true)
    assert fit_mm < 5.0 and fit_deg < 0.3
    assert 0.7 < fit.inlier_fraction < 0.9    # the 20 % outliers are found as such


def test_joint_fit_matches_look_alike_keypoints(panda):
    """Fingertip detections swapped on half the frames (the heatmaps do not tell the fingers
    apart): matched to the nearer projection, they fit as well as unswapped ones; taken as
    labelled, they pull the camera off."""
    T_true = _static_camera()
    joints, points, pixels, confidence = _detections(panda, T_true, seed=3, bias_px=0.0)
    pairs = panda.description.interchangeable_keypoints
    assert pairs
    i, j = pairs[0]
    confidence[:, [i, j]] = 1.0               # sure of both, as the detector is
    swapped = pixels.copy()
    swapped[::2, [i, j]] = pixels[::2, [j, i]]
    clean_mm, _ = transform_error(fit_fixed_camera(points, pixels, confidence, K).T, T_true)
    labelled = fit_fixed_camera(points, swapped, confidence, K)
    matched = fit_fixed_camera(points, swapped, confidence, K, interchangeable=pairs)
    matched_mm, matched_deg = transform_error(matched.T, T_true)
    assert matched_mm < clean_mm + 0.5 and matched_deg < 0.2
    assert matched.rms_px < 0.8 * labelled.rms_px


def test_joint_fit_leaves_out_points_fixed_in_the_reference_frame(panda):
    """The base keypoints are one 3D point each on every frame of a static camera, so a detector
    bias on them repeats instead of averaging out: the fit leaves them out by default (it keeps
    them when the arm did not move, as then nothing else is left)."""
    T_true = _static_camera()
    joints, points, pixels, confidence = _detections(panda, T_true, seed=4, bias_px=0.0,
                                                     noise_px=0.5)
    static = points.std(0).max(-1) < 1e-3
    assert 2 <= static.sum() < len(static) - 6       # the base's keypoints
    biased = pixels.copy()
    biased[:, static] += [0.0, 12.0]                 # every frame, the same 12 px low
    plain_mm, _ = transform_error(fit_fixed_camera(points, biased, confidence, K,
                                                   static_weight=1.0).T, T_true)
    fit = fit_fixed_camera(points, biased, confidence, K)
    fit_mm, fit_deg = transform_error(fit.T, T_true)
    assert fit_mm < 2.0 and fit_deg < 0.2 and plain_mm > 2.0 * fit_mm
    assert fit.points_used == (confidence[:, ~static] > 0.1).sum()
    # One pose repeated: every point is static, and all of them are used.
    still = fit_fixed_camera(np.repeat(points[:1], 5, 0), np.repeat(pixels[:1], 5, 0),
                             np.repeat(confidence[:1], 5, 0), K)
    assert still.points_used == 5 * (confidence[0] > 0.1).sum()


def test_interchangeable_order_takes_the_cheaper_match():
    detected = np.array([[[0.0, 0.0], [10.0, 0.0], [50.0, 0.0]]])
    projected = np.array([[[0.0, 0.0], [50.0, 1.0], [10.0, 1.0]]])   # 1 and 2 crossed
    weights = np.ones((1, 3))
    order = interchangeable_order(detected, projected, weights, [(1, 2)], 8.0)
    assert order.tolist() == [[0, 2, 1]]
    assert interchangeable_order(projected, projected, weights, [(1, 2)], 8.0).tolist() \
        == [[0, 1, 2]]


def test_joint_fit_with_different_intrinsics_per_frame(panda):
    T_true = _static_camera()
    _, points, pixels, confidence = _detections(panda, T_true, seed=2, noise_px=0.0,
                                                bias_px=0.0)
    # half the frames come at half resolution: their pixels and K halve, the camera stays
    intrinsics = np.repeat(K[None], FRAMES, axis=0)
    intrinsics[::2, :2] *= 0.5
    pixels[::2] *= 0.5
    fit = fit_fixed_camera(points, pixels, confidence, intrinsics)
    assert transform_error(fit.T, T_true)[0] < 1e-3


def _series(robot, joints, pixels, confidence) -> EstimateSeries:
    """Per-frame estimates as --images gives them: a PnP camera and the detected keypoints."""
    frames = len(joints)
    per_frame = camera_from_joints_pnp(
        robot, torch.from_numpy(joints), torch.from_numpy(pixels), torch.from_numpy(confidence),
        torch.from_numpy(np.repeat(K[None], frames, axis=0)), min_weight=0.1).numpy()
    keep = np.isfinite(per_frame).all((1, 2))
    return EstimateSeries(
        np.arange(frames, dtype=np.int64)[keep] * 10**8, per_frame[keep],
        np.full(int(keep.sum()), 0.9), joints[keep], list(robot.joint_names),
        keypoints_2d_px=pixels[keep], keypoint_confidence=confidence[keep],
        intrinsics=np.repeat(K[None], int(keep.sum()), axis=0))


def test_calibration_uses_the_joint_fit_when_it_has_keypoints(panda):
    T_true = _static_camera()
    joints, _, pixels, confidence = _detections(panda, T_true, seed=3)
    series = _series(panda, joints, pixels, confidence)
    result, calibration = calibrate_series(series, CalibrationSettings(), panda)
    assert result.extra['joint_fit'].T is calibration.T_cam_reference
    joint_mm, _ = transform_error(calibration.T_cam_reference, T_true)
    assert joint_mm < 3.0 and joint_mm < transform_error(result.T, T_true)[0]
    # switched off, or without a robot: the per-frame average, as before
    for settings, robot in ((CalibrationSettings(joint_camera_fit=False), panda),
                            (CalibrationSettings(), None)):
        result, calibration = calibrate_series(series, settings, robot)
        assert 'joint_fit' not in result.extra
        np.testing.assert_array_equal(calibration.T_cam_reference, result.T)


def test_eye_in_hand_joint_fit(panda):
    """A camera on the hand, looking back at the arm: T_cam_ee fixed, the keypoints moved into
    the hand frame by each frame's FK."""
    T_ee_cam = look_at(np.array([0.0, 0.05, 0.1]), np.array([0.0, 0.3, -0.4]))
    T_true = np.linalg.inv(T_ee_cam)               # T_cam_ee
    joints, points_ee, pixels, confidence = _detections(panda, T_true, effector='panda_hand',
                                                        seed=4, bias_px=2.0)
    fit = fit_fixed_camera(points_ee, pixels, confidence, K)
    fit_mm, fit_deg = transform_error(fit.T, T_true)
    assert fit_mm < 3.0 and fit_deg < 0.3
    # through the calibration: per-frame T_cam_base = T_cam_ee T_ee_base(q)
    settings = CalibrationSettings(calibration_type=EYE_IN_HAND, check_camera_motion=False)
    series = _series_eye_in_hand(panda, T_true, joints, pixels, confidence)
    result, calibration = calibrate_series(series, settings, panda)
    assert 'joint_fit' in result.extra
    assert transform_error(calibration.T_cam_reference, T_true)[0] < 3.0


def _series_eye_in_hand(robot, T_cam_ee, joints, pixels, confidence) -> EstimateSeries:
    from robotag_ros.calibration.hand_eye import robot_forward_kinematics

    T_base_ee = robot_forward_kinematics(robot, 'panda_hand')(joints)
    T_cam_base = T_cam_ee @ np.linalg.inv(T_base_ee)   # the exact per-frame cameras
    return EstimateSeries(np.arange(FRAMES, dtype=np.int64) * 10**8, T_cam_base,
                          np.full(FRAMES, 0.9), joints, list(robot.joint_names),
                          keypoints_2d_px=pixels, keypoint_confidence=confidence,
                          intrinsics=np.repeat(K[None], FRAMES, axis=0))


def test_too_few_points_is_one_line():
    points = np.zeros((1, 5, 3))
    with pytest.raises(ValueError, match=r'needs at least 6 keypoints with confidence above '
                                         r'0\.1; 5 of 5 are$'):
        fit_fixed_camera(points, np.zeros((1, 5, 2)), np.ones((1, 5)), K)


def test_a_jump_stands_only_when_one_camera_per_side_confirms_it(panda):
    """A real bump (the camera moved 6 cm halfway): found, and calibrated from the frames after
    it. A jump the per-frame poses suggest on a camera that held still (as a stretch of similar
    arm poses can): the one-camera fit each side finds the same camera, so it does not stand."""
    from robotag_ros.calibration.camera_motion import JUMP, CameraMotion
    from robotag_ros.calibration.live import _confirm_jump

    T_first = _static_camera()
    T_second = T_first.copy()
    T_second[:3, 3] += [0.06, 0.0, 0.0]
    halves = [_detections(panda, T, seed=5 + i, bias_px=1.0) for i, T in
              enumerate((T_first, T_second))]
    joints, _, pixels, confidence = (np.concatenate(parts) for parts in zip(*halves))
    bumped = _series(panda, joints, pixels, confidence)
    result, calibration = calibrate_series(bumped, CalibrationSettings(), panda)
    motion = result.extra['camera_motion']
    assert motion.moved and motion.kind == JUMP
    assert abs(motion.translation_mm - 60.0) < 10.0
    assert transform_error(calibration.T_cam_reference, T_second)[0] < 5.0

    joints, _, pixels, confidence = _detections(panda, T_first, seed=7, bias_px=1.0)
    still = _series(panda, joints, pixels, confidence)
    suggested = CameraMotion(True, JUMP, 40.0, 1.0, 9.0, frame_index=40,
                             stamp_ns=int(still.stamps_ns[40]), frames=len(still))
    checked = _confirm_jump(suggested, still, np.arange(len(still)), still.stamps_ns,
                            still.T_cam_base, CalibrationSettings(), panda)
    assert not checked.moved and checked.kind != JUMP and checked.translation_mm < 10.0
