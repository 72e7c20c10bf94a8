"""Accumulate live per-frame estimates and calibrate from them (ROS-free core of the live node).

:class:`LiveCalibrator` collects camera<->base estimates, consistency scores and measured joint
states as they arrive (in any order, matched by stamp), and turns them into an
:class:`~robotag_ros.calibration.estimates_io.EstimateSeries`; :func:`calibrate_series` is the one
calibration path shared by the live node and ``robotag-calibrate``.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from robotag_ros.calibration.aggregate import AggregateResult, aggregate_transforms
from robotag_ros.calibration.calib_file import HandEyeCalibration
from robotag_ros.calibration.camera_motion import (
    JUMP, NONE, CameraMotion, detect_camera_motion,
)
from robotag_ros.calibration.estimates_io import EstimateSeries, _nearest
from robotag_ros.calibration.hand_eye import (
    CALIBRATION_TYPES, EYE_IN_HAND, hand_camera_transforms, robot_forward_kinematics,
)
from robotag_ros.calibration.joint_camera_fit import (
    fit_fixed_camera, keypoints_in_reference, median_reprojection_error_px,
)
from robotag_ros.calibration.synthetic import transform_error
from robotag_ros.stamps import NS_PER_S


@dataclass
class CalibrationSettings:
    """What and how to calibrate; frames name the easy_handeye2 .calib fields."""

    name: str = 'robotag'
    calibration_type: str = 'eye_on_base'
    base_frame: str = 'panda_link0'
    camera_frame: str = 'camera_color_optical_frame'
    effector_frame: str = 'panda_hand'
    min_consistency: float = 0.0
    reject_outliers: bool = True
    mad_k: float = 3.0
    # Did the camera move (camera_motion.py)? A jump: calibrate from the frames after it.
    check_camera_motion: bool = True
    camera_motion_threshold_mm: float = 20.0
    camera_motion_threshold_deg: float = 2.0
    # With measured joints and the frames' detected keypoints: the result is one camera fitted
    # to every frame's keypoints at once (joint_camera_fit.py), not the per-frame average.
    joint_camera_fit: bool = True
    joint_fit_robust_scale_px: float = 4.0
    # ... each keypoint fixed in the camera's reference frame (the base's, eye-on-base) weighs
    # this much: its detector bias repeats on every frame (fit_fixed_camera's static_weight).
    joint_fit_static_weight: float = 0.0
    # ... and then a jump stands only when each side's keypoints fit the other side's camera
    # this many times worse than their own (_confirm_jump).
    jump_residual_ratio: float = 1.5

    def __post_init__(self):
        if self.calibration_type not in CALIBRATION_TYPES:
            raise ValueError(f'calibration_type must be one of {CALIBRATION_TYPES}, '
                             f'got {self.calibration_type!r}')


def calibrate_series(series: EstimateSeries, settings: CalibrationSettings, robot=None
                     ) -> tuple[AggregateResult, HandEyeCalibration]:
    """Aggregate a series into one calibration (eye-in-hand needs ``robot`` and joint angles).

    With ``settings.check_camera_motion`` the per-frame transforms are first searched for a
    jump or a trend over time; the finding is ``result.extra['camera_motion']`` (a
    :class:`~robotag_ros.calibration.camera_motion.CameraMotion`), and after a jump only the
    frames after it are aggregated (the camera as it is now).

    When the series carries the detected keypoints and measured joints and ``robot`` is given
    (``settings.joint_camera_fit``), the calibration is the one camera fitted to all those
    frames' keypoints (``result.extra['joint_fit']``, a
    :class:`~robotag_ros.calibration.joint_camera_fit.JointCameraFit`), started from the
    per-frame aggregate ``result.T``, whose spread stays the reported scatter; without them
    (or with too few usable keypoints: ``result.extra['joint_fit_skipped']`` says why) it is
    the aggregate.
    """
    options = dict(min_consistency=settings.min_consistency,
                   reject_outliers=settings.reject_outliers, mad_k=settings.mad_k)
    consistency = series.consistency
    if consistency is not None:
        # A frame without a known score is judged by the robust statistics alone.
        consistency = np.where(np.isnan(consistency), 1.0, consistency)
    else:
        consistency = np.ones(len(series))
    stamps_ns = series.stamps_ns
    rows = np.arange(len(series))   # the series frames behind per_frame
    if settings.calibration_type == EYE_IN_HAND:
        if robot is None:
            raise ValueError('eye_in_hand needs the robot model for forward kinematics')
        if series.joint_angles_rad is None:
            raise ValueError('eye_in_hand needs joint angles (measured /joint_states)')
        have_joints = np.isfinite(series.joint_angles_rad).all(axis=1)
        if not have_joints.any():
            raise ValueError('no estimate has a joint state within the stamp tolerance')
        forward_kinematics = robot_forward_kinematics(robot, settings.effector_frame)
        per_frame = hand_camera_transforms(
            series.T_cam_base[have_joints],
            forward_kinematics(series.joint_angles_rad[have_joints]))
        consistency, stamps_ns = consistency[have_joints], stamps_ns[have_joints]
        rows = rows[have_joints]
    else:
        per_frame = series.T_cam_base
    motion = None
    if settings.check_camera_motion:
        candidates = (consistency >= settings.min_consistency) \
            & np.isfinite(per_frame).all(axis=(1, 2))
        motion = detect_camera_motion(stamps_ns[candidates], per_frame[candidates],
                                      settings.camera_motion_threshold_mm,
                                      settings.camera_motion_threshold_deg)
        if motion.kind == JUMP and settings.joint_camera_fit:
            motion = _confirm_jump(motion, series, rows, stamps_ns, per_frame, settings, robot)
        if motion.kind == JUMP:
            after = stamps_ns >= motion.stamp_ns
            per_frame, consistency, rows = per_frame[after], consistency[after], rows[after]
    result = aggregate_transforms(per_frame, consistency, **options)
    if motion is not None:
        result.extra['camera_motion'] = motion
    T_cam_reference = result.T
    if settings.joint_camera_fit:
        # Frames below the consistency threshold stay out; outlier frames are left to the
        # fit's robust loss (measured: dropping them first changes the result by < 1 mm).
        try:
            fitted = _joint_camera_fit(series, rows[~result.rejected_consistency], settings,
                                       robot, result.T)
        except ValueError as err:
            result.extra['joint_fit_skipped'] = str(err)
        else:
            if fitted is not None:
                result.extra['joint_fit'] = fitted[0]
                T_cam_reference = fitted[0].T
    calibration = HandEyeCalibration(
        name=settings.name, calibration_type=settings.calibration_type,
        T_cam_reference=T_cam_reference,
        robot_base_frame=settings.base_frame, robot_effector_frame=settings.effector_frame,
        tracking_base_frame=settings.camera_frame,
        tracking_marker_frame=(settings.base_frame if settings.calibration_type == EYE_IN_HAND
                               else settings.effector_frame))
    return result, calibration


def _confirm_jump(motion: CameraMotion, series: EstimateSeries, rows: np.ndarray,
                  stamps_ns: np.ndarray, per_frame: np.ndarray, settings: CalibrationSettings,
                  robot) -> CameraMotion:
    """A jump found in the per-frame poses, checked by fitting one camera to each side's
    keypoints. Per-frame poses err with the arm's pose, so a stretch of similar poses can look
    like a step, and a fit to that stretch alone errs the same way; but its keypoints then fit
    the other side's camera almost as well as their own. A moved camera does not: each side's
    keypoints reproject far worse through the other side's camera. The jump stands when the
    two cameras differ by more than the thresholds and, on both sides, the other camera's
    median reprojection error exceeds the own one's ``jump_residual_ratio`` times (measured on
    rendered recordings: moved 30 mm / 1.5 deg, ratios 7.3 and 7.5; two false jumps, 1.11 and
    1.21). Without keypoints or joints the per-frame finding stands."""
    sides = []
    for side in (stamps_ns < motion.stamp_ns, stamps_ns >= motion.stamp_ns):
        start = aggregate_transforms(per_frame[side]).T
        try:
            fitted = _joint_camera_fit(series, rows[side], settings, robot, start)
        except ValueError:
            fitted = None
        if fitted is None:
            return motion
        sides.append(fitted)
    (before, data_before), (after, data_after) = sides
    translation_mm, rotation_deg = transform_error(after.T, before.T)
    ratios = [median_reprojection_error_px(other.T, *data)
              / max(median_reprojection_error_px(own.T, *data), 1e-9)
              for own, other, data in ((before, after, data_before),
                                       (after, before, data_after))]
    confirmed = (translation_mm > settings.camera_motion_threshold_mm
                 or rotation_deg > settings.camera_motion_threshold_deg) \
        and min(ratios) > settings.jump_residual_ratio
    return replace(motion, moved=confirmed, kind=JUMP if confirmed else NONE,
                   translation_mm=translation_mm, rotation_deg=rotation_deg,
                   frame_index=motion.frame_index if confirmed else -1,
                   stamp_ns=motion.stamp_ns if confirmed else -1)


def _joint_camera_fit(series: EstimateSeries, rows: np.ndarray, settings: CalibrationSettings,
                      robot, T_start: np.ndarray):
    """One camera fitted to the keypoints of the series frames ``rows`` and what it was fitted
    to, as (fit, (points, keypoints, confidence, intrinsics)); None when the series lacks
    keypoints or joints, or there is no robot."""
    if (series.keypoints_2d_px is None or series.keypoint_confidence is None
            or series.intrinsics is None or series.joint_angles_rad is None or robot is None):
        return None
    joints = series.joint_angles_rad[rows]
    rows = rows[np.isfinite(joints).all(axis=1)]
    effector = settings.effector_frame if settings.calibration_type == EYE_IN_HAND else None
    points = keypoints_in_reference(robot, series.joint_angles_rad[rows], effector)
    if points.shape[1] != series.keypoints_2d_px.shape[1]:
        raise ValueError(f'{series.keypoints_2d_px.shape[1]} detected keypoints per frame but '
                         f'the robot has {points.shape[1]}')
    data = (points, series.keypoints_2d_px[rows], series.keypoint_confidence[rows],
            series.intrinsics[rows])
    return fit_fixed_camera(*data, T_start, robust_scale_px=settings.joint_fit_robust_scale_px,
                            interchangeable=robot.description.interchangeable_keypoints,
                            static_weight=settings.joint_fit_static_weight), data


class LiveCalibrator:
    """Thread-safe accumulator of streamed estimates (bounded: the newest ``max_frames`` kept).

    Consistency and joint states are matched to each estimate by the nearest stamp within
    ``tolerance_s`` when the series is built, so their arrival order does not matter.
    """

    def __init__(self, max_frames: int = 2000, joint_names: list[str] | None = None,
                 tolerance_s: float = 0.05):
        if max_frames < 1:
            raise ValueError(f'max_frames must be >= 1, got {max_frames}')
        self.joint_names = list(joint_names) if joint_names else None
        self.tolerance_ns = int(tolerance_s * NS_PER_S)
        self._lock = threading.Lock()
        self._poses: deque = deque(maxlen=max_frames)
        self._scores: deque = deque(maxlen=4 * max_frames)
        self._joints: deque = deque(maxlen=4 * max_frames)

    def __len__(self) -> int:
        with self._lock:
            return len(self._poses)

    def add_estimate(self, stamp_ns: int, T_cam_base: np.ndarray) -> None:
        """One frame's T_cam_base (4x4, metres)."""
        T = np.asarray(T_cam_base, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise ValueError(f'T_cam_base must be a finite 4x4 matrix, got shape {T.shape}')
        with self._lock:
            self._poses.append((int(stamp_ns), T))

    def add_consistency(self, stamp_ns: int, score: float) -> None:
        with self._lock:
            self._scores.append((int(stamp_ns), float(score)))

    def add_joint_state(self, stamp_ns: int, names, positions_rad) -> bool:
        """Keep a measured joint state if it holds every calibrated joint; says if kept."""
        if not self.joint_names:
            return False
        positions = dict(zip(names, positions_rad))
        if not all(name in positions for name in self.joint_names):
            return False   # another publisher's partial state (e.g. the gripper)
        with self._lock:
            self._joints.append((int(stamp_ns),
                                 np.array([positions[n] for n in self.joint_names], float)))
        return True

    def clear(self) -> None:
        with self._lock:
            self._poses.clear()
            self._scores.clear()
            self._joints.clear()

    def series(self) -> EstimateSeries:
        """The accumulated frames in stamp order, with matched scores and joint angles."""
        with self._lock:
            poses, scores, joints = list(self._poses), list(self._scores), list(self._joints)
        if not poses:
            raise ValueError('no estimates received yet')
        poses.sort(key=lambda item: item[0])
        stamps = np.array([s for s, _ in poses], dtype=np.int64)
        T_cam_base = np.stack([T for _, T in poses])
        consistency = None
        if scores:
            scores.sort(key=lambda item: item[0])
            score_stamps = np.array([s for s, _ in scores], dtype=np.int64)
            index = _nearest(score_stamps, stamps, self.tolerance_ns)
            values = np.array([v for _, v in scores])
            consistency = np.where(index >= 0, values[index], np.nan)
        joint_angles = None
        if self.joint_names:
            joint_angles = np.full((len(stamps), len(self.joint_names)), np.nan)
            if joints:
                joints.sort(key=lambda item: item[0])
                joint_stamps = np.array([s for s, _ in joints], dtype=np.int64)
                index = _nearest(joint_stamps, stamps, self.tolerance_ns)
                values = np.stack([v for _, v in joints])
                joint_angles = np.where((index >= 0)[:, None], values[index], np.nan)
        return EstimateSeries(stamps, T_cam_base, consistency, joint_angles, self.joint_names)
