"""A static camera is one camera: its pose estimated once from many frames, then held fixed.

A camera on a tripod sees the robot from one pose for the whole recording, but a free fit
estimates that pose anew in every frame, and now and then lands in the mirrored arm (the camera on
the other side of the robot, joints 1 and 2 flipped). :class:`RunningCamera` keeps a robust
running estimate of ``T_cam_base`` from the per-frame estimates (the calibration's aggregation,
:func:`~robotag_ros.calibration.aggregate.aggregate_transforms`: median/MAD outlier rejection and
the chordal mean on SO(3)); once its standard error is small it is *stable* and frozen.
:class:`StaticCameraTracker` then hands it to the estimator as a known camera, so the fit moves
the joints alone and a mirrored arm is out of its reach. A camera known from a ``.calib``
(:func:`camera_from_calib`) is stable from the first frame.

The ROS-free core of the estimator node's ``static_camera`` and ``camera_calibration_file``
parameters (robotag_ros/ros/estimator_node.py).
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from robotag_ros.calibration.aggregate import AggregateResult, aggregate_transforms
from robotag_ros.calibration.calib_file import read_calib
from robotag_ros.calibration.hand_eye import EYE_ON_BASE
from robotag_ros.inference.estimate import Estimate, RobotTracker

ESTIMATING, STABLE, GIVEN = 'estimating', 'stable', 'given'


@dataclass(frozen=True)
class StaticCameraSettings:
    """When the running estimate is trusted: enough frames, most of them agreeing, and the
    standard error of the mean (the spread over the square root of the frames used) below both
    bounds. The bounds are on ``T_cam_base``, the base seen from the camera.

    The standard error bounds the noise only: with the bundled model the per-frame cameras
    scatter by ~10 deg, mostly a turn about the base's z axis (it trades against joint 1, fixed
    only by the few keypoints on the base), and their mean can be off by as much
    (benchmarks/results/static_camera.json). Tighter bounds wait longer for no gain; a
    ``.calib`` from robotag-calibrate with the measured joints is the better camera.
    """

    min_frames: int = 20               # frames agreeing before the estimate can be stable
    max_frames: int = 200              # newest frames aggregated while not yet stable
    # The bundled model's consistency does not rank its cameras (Spearman 0.0-0.3 with their
    # rotation error on rendered static recordings): every frame counts, outliers go by MAD.
    min_consistency: float = 0.0
    mad_k: float = 3.0                 # outlier threshold, robust standard deviations
    min_inlier_share: float = 0.6      # of the frames kept: a split vote is not stable
    stable_translation_mm: float = 10.0
    stable_rotation_deg: float = 2.0
    # Past min_frames the frames are aggregated again every this many frames, not every frame:
    # a camera that never settles would otherwise cost the node ~5 ms a frame (200 poses).
    aggregate_every: int = 5

    def __post_init__(self):
        if not 3 <= self.min_frames <= self.max_frames:
            raise ValueError(f'need 3 <= min_frames <= max_frames, got {self.min_frames} and '
                             f'{self.max_frames}')
        if self.aggregate_every < 1:
            raise ValueError(f'aggregate_every must be >= 1, got {self.aggregate_every}')


class RunningCamera:
    """A robust running estimate of one static camera's ``T_cam_base`` (4x4, metres).

    :meth:`add` each frame's estimate until :attr:`stable`; from then on the estimate is frozen
    and further frames are ignored (:meth:`reset` starts over, e.g. after the camera was moved).
    """

    def __init__(self, settings: StaticCameraSettings = StaticCameraSettings(),
                 T_cam_base: Optional[np.ndarray] = None):
        """``T_cam_base``: a camera known already (a ``.calib``): stable from the start."""
        self.settings = settings
        self._poses: deque[np.ndarray] = deque(maxlen=settings.max_frames)
        self._scores: deque[float] = deque(maxlen=settings.max_frames)
        self._given = T_cam_base is not None
        self._T: Optional[np.ndarray] = None
        self._result: Optional[AggregateResult] = None
        self._stable = False
        self._added = 0                      # frames added since the last reset
        if T_cam_base is not None:
            T = np.asarray(T_cam_base, dtype=np.float64)
            if T.shape != (4, 4) or not np.isfinite(T).all():
                raise ValueError(f'T_cam_base must be a finite 4x4 matrix, got shape {T.shape}')
            self._T, self._stable = T.copy(), True

    @property
    def T_cam_base(self) -> Optional[np.ndarray]:
        """The current estimate (a copy), or None before ``min_frames`` frames came."""
        return None if self._T is None else self._T.copy()

    @property
    def stable(self) -> bool:
        """True once the estimate is trusted (and frozen), or when it was given."""
        return self._stable

    @property
    def state(self) -> str:
        """'given', 'stable' or 'estimating'."""
        return GIVEN if self._given else STABLE if self._stable else ESTIMATING

    @property
    def result(self) -> Optional[AggregateResult]:
        """The last aggregation (frames used, spreads, standard errors), or None."""
        return self._result

    def add(self, T_cam_base: np.ndarray, consistency: float = 1.0) -> bool:
        """One frame's estimate; returns :attr:`stable`. Ignored once stable, and when not
        finite (a frame the estimator failed on says nothing about the camera)."""
        if self._stable:
            return True
        T = np.asarray(T_cam_base, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all() or not np.isfinite(consistency):
            return False
        self._poses.append(T.copy())
        self._scores.append(float(consistency))
        self._added += 1
        settings = self.settings
        if len(self._poses) < settings.min_frames \
                or (self._added - settings.min_frames) % settings.aggregate_every:
            return False
        try:
            result = aggregate_transforms(np.stack(self._poses), np.array(self._scores),
                                          min_consistency=settings.min_consistency,
                                          mad_k=settings.mad_k)
        except ValueError:   # too few frames pass the consistency bound or the outlier test
            return False
        self._T, self._result = result.T, result
        self._stable = (result.frames_used >= settings.min_frames
                        and result.frames_used >= settings.min_inlier_share * len(self._poses)
                        and result.translation_sem_mm <= settings.stable_translation_mm
                        and result.rotation_sem_deg <= settings.stable_rotation_deg)
        return self._stable

    def reset(self) -> None:
        """Forget every frame and start estimating anew (a given camera stays given)."""
        self._poses.clear()
        self._scores.clear()
        self._added = 0
        self._result = None
        if not self._given:
            self._T, self._stable = None, False

    def summary(self) -> dict:
        """Flat numbers for diagnostics (units in the keys)."""
        values: dict = {'static_camera_state': self.state,
                        'static_camera_frames': len(self._poses)}
        if self._result is not None:
            values.update({'static_camera_frames_used': self._result.frames_used,
                           'static_camera_translation_sem_mm': self._result.translation_sem_mm,
                           'static_camera_rotation_sem_deg': self._result.rotation_sem_deg})
        return values


def camera_from_calib(path: str | os.PathLike, base_frame: str = '') -> np.ndarray:
    """``T_cam_base`` (4x4, metres) of an eye-on-base ``.calib`` (robotag-calibrate's or
    easy_handeye2's). ``base_frame``: the robot base frame the estimates are in; a calibration
    to another frame is refused, as is an eye-in-hand one (that camera moves with the hand)."""
    calibration = read_calib(path)
    if calibration.calibration_type != EYE_ON_BASE:
        raise ValueError(f'{path}: a {calibration.calibration_type} calibration; a static '
                         f'camera needs {EYE_ON_BASE} (the camera fixed to the robot base)')
    if base_frame and calibration.robot_base_frame != base_frame:
        raise ValueError(f'{path}: calibrated to base frame {calibration.robot_base_frame!r}, '
                         f'but the estimates are in {base_frame!r}')
    return calibration.T_cam_reference.copy()


class StaticCameraTracker:
    """One static camera's frames in order: a :class:`RobotTracker` whose estimator gets the
    :class:`RunningCamera` as a known camera once it is stable (only the joints are fitted),
    and whose estimates feed the running estimate until then."""

    def __init__(self, tracker: RobotTracker, camera: RunningCamera):
        self.tracker, self.camera = tracker, camera

    def estimate(self, image_rgb: np.ndarray, K: np.ndarray, track: bool = True,
                 **options) -> Estimate:
        """``tracker.estimate`` of this frame, with the camera fixed once it is stable."""
        if 'joint_angles_rad' in options:
            raise ValueError('measured joints and a static camera together leave nothing to '
                             'estimate')
        if self.camera.stable:
            options['T_cam_base'] = self.camera.T_cam_base
        estimate = self.tracker.estimate(image_rgb, K, track=track, **options)
        if not self.camera.stable and estimate.is_finite():
            self.camera.add(estimate.T_cam_base, estimate.consistency)
        return estimate


def estimate_static_recording(estimator, frames: Iterable[tuple[np.ndarray, np.ndarray]],
                              camera: Optional[RunningCamera], track: bool = True
                              ) -> tuple[list[Estimate], Optional[int]]:
    """One static camera's frames ``(image_rgb, K)`` in order, as the node estimates them:
    ``camera`` None is the free fit (static_camera off), else a :class:`StaticCameraTracker`
    over it. Returns the estimates and the index of the first frame fitted with the camera
    fixed (0 for a given camera; None if the running estimate never became stable)."""
    tracker: RobotTracker | StaticCameraTracker = RobotTracker(estimator)
    if camera is not None:
        tracker = StaticCameraTracker(tracker, camera)
    estimates, fixed_from = [], None
    for index, (image_rgb, K) in enumerate(frames):
        if camera is not None and camera.stable and fixed_from is None:
            fixed_from = index
        estimates.append(tracker.estimate(image_rgb, K, track=track))
    return estimates, fixed_from
