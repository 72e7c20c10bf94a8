"""The typed per-frame result: the one currency between the core, the ROS layer and the tools."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass
class Estimate:
    """What the estimator says about one image.

    Frames follow ``T_target_source``: ``T_cam_base`` maps base-frame points (metres) into the
    camera's optical frame (x right, y down, z forward). Angles are radians.
    """

    joint_names: list[str]
    joint_angles_rad: np.ndarray          # (n,)
    T_cam_base: np.ndarray                # (4, 4) float64, metres
    keypoint_names: list[str]
    keypoints_2d_px: np.ndarray           # (K, 2) pixels in the input image
    keypoints_3d_m: np.ndarray            # (K, 3) camera frame, metres
    consistency: float                    # 0..1, 1 = the 2D and 3D branches agree perfectly
    consistency_terms: dict[str, float] = field(default_factory=dict)
    points_3d_m: np.ndarray | None = None  # (N, 3) the 3D branch's robot cloud, camera frame
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Each branch's own joint angles ('2d': p², '3d': p³), before the pick of the reported ones.
    branch_joint_angles_rad: dict[str, np.ndarray] = field(default_factory=dict)
    # The network's own 2D keypoints (heatmap peaks, source pixels) and their confidence (0..1),
    # before the fit: ``keypoints_2d_px`` are the projections of the reported robot.
    keypoints_2d_detected_px: np.ndarray | None = None
    keypoint_confidence: np.ndarray | None = None
    # The view head's probabilities of the camera's azimuth sectors about the base (A,), from
    # -180 deg; None for a model without a view head.
    view_azimuth_probs: np.ndarray | None = None
    # The box of the source image the network looked at (two-pass estimation), or None.
    robot_box: object | None = None

    @property
    def T_base_cam(self) -> np.ndarray:
        """The camera pose in the robot base frame (inverse of ``T_cam_base``)."""
        R, t = self.T_cam_base[:3, :3], self.T_cam_base[:3, 3]
        T = np.eye(4)
        T[:3, :3] = R.T
        T[:3, 3] = -R.T @ t
        return T

    def is_finite(self) -> bool:
        """False when any number the node would publish is NaN or infinite."""
        return bool(np.isfinite(self.joint_angles_rad).all() and np.isfinite(self.T_cam_base).all()
                    and np.isfinite(self.keypoints_2d_px).all() and np.isfinite(self.consistency))


@runtime_checkable
class PoseEstimator(Protocol):
    """What the ROS node needs from an estimator: the project's Estimator, the tests' fake,
    or a user's own (``estimator_factory``). ``next_box`` may always answer None (no tracking)."""

    robot_name: str
    base_frame: str                           # the robot description's base frame
    joint_names: Sequence[str]
    input_hw: Optional[tuple[int, int]]       # network input (images must letterbox to it)
    backend_name: str

    def estimate(self, image_rgb: np.ndarray, K: np.ndarray, *, box: Any = None,
                 joint_angles_rad: Optional[np.ndarray] = None,
                 T_cam_base: Optional[np.ndarray] = None) -> Estimate:
        """One HxWx3 uint8 RGB image and its 3x3 intrinsics (pixels) -> Estimate.
        ``joint_angles_rad`` (measured joints) and ``T_cam_base`` (a known camera, 4x4 metres)
        are reported as given; each is passed only when the node has one (an estimator that
        never gets a known camera need not take it)."""

    def next_box(self, estimate: Estimate) -> Any:
        """Where to look in the next frame of the same camera, or None."""


class RobotTracker:
    """One camera's frames estimated in order: with ``track`` each frame is looked at where the
    previous one found the robot (its ``next_box``), the estimator then skipping its
    whole-frame first pass. A box is kept only for images of the same size, and only when the
    frame gave one (an untrustworthy estimate, or a failed one, starts over on the whole frame).
    """

    def __init__(self, estimator: PoseEstimator):
        self.estimator = estimator
        self._box, self._box_image_hw = None, None

    def estimate(self, image_rgb: np.ndarray, K: np.ndarray, track: bool = True,
                 **options) -> Estimate:
        """``estimator.estimate`` of this frame (``options`` passed on), tracked or not."""
        image_hw = tuple(image_rgb.shape[:2])
        box = self._box if self._box_image_hw == image_hw else None
        self._box = None
        if not track:
            return self.estimator.estimate(image_rgb, K, **options)
        estimate = self.estimator.estimate(image_rgb, K, box=box, **options)
        self._box, self._box_image_hw = self.estimator.next_box(estimate), image_hw
        return estimate


def iter_recording_estimates(estimator: PoseEstimator,
                             frames: Iterable[tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]],
                             track: bool = True, **options) -> Iterator[Estimate]:
    """One camera's frames ``(image_rgb, K, measured joint angles or None)`` in order, estimated
    as the node does (a :class:`RobotTracker`; ``track`` is the node's ``track_robot``). Lazy,
    so a long recording never sits in memory; ``options`` go to every ``estimate`` call."""
    tracker = RobotTracker(estimator)
    for image_rgb, K, joint_angles_rad in frames:
        if joint_angles_rad is not None:
            options['joint_angles_rad'] = joint_angles_rad
        yield tracker.estimate(image_rgb, K, track=track, **options)


def estimate_recording(estimator: PoseEstimator, images_rgb: Sequence[np.ndarray],
                       intrinsics: Sequence[np.ndarray],
                       joint_angles_rad: Optional[Sequence[np.ndarray]] = None,
                       track: bool = True, **options) -> list[Estimate]:
    """:func:`iter_recording_estimates` over lists: ``joint_angles_rad`` the measured joints of
    each frame, or None."""
    joints = joint_angles_rad if joint_angles_rad is not None else [None] * len(images_rgb)
    return list(iter_recording_estimates(estimator, zip(images_rgb, intrinsics, joints),
                                         track, **options))


def missing_pose_estimator_members(candidate) -> list[str]:
    """The PoseEstimator members ``candidate`` lacks, in the Protocol's order (none: it is one)."""
    members = list(PoseEstimator.__annotations__) + [
        name for name, value in vars(PoseEstimator).items()
        if callable(value) and not name.startswith('_')]
    return [name for name in members if not hasattr(candidate, name)]
