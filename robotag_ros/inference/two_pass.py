"""Where to look: the robot's box in the frame, from a first pass or from the previous frame.

A whole 640x480 frame letterboxed to 256x256 shrinks the robot 2.5x; the second pass runs the
same network on a square box around the robot, so it is seen near native resolution (Holistic
Robot Pose, RoboPEPP and RoboPose all crop; here the box never comes from ground truth).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CropPolicy:
    """Box side = extent of the confident keypoints x ``margin`` (training draws 1.15-1.6 times
    the labelled extent, see ``RobotCrop``), at least ``min_size_px`` source pixels."""

    margin: float = 1.35
    min_size_px: float = 64.0
    min_confidence: float = 0.05
    min_keypoints: int = 3


@dataclass(frozen=True)
class RobotBox:
    """A square region of the source image: centre (u, v) and side, pixels; from a tracked
    frame also the robot found there (joints, radians; T_cam_base, metres), which the next
    frame's fit starts from."""

    centre_px: tuple[float, float]
    size_px: float
    joint_angles_rad: np.ndarray | None = field(default=None, compare=False)
    T_cam_base: np.ndarray | None = field(default=None, compare=False)


def robot_box(keypoints_px: np.ndarray, confidence: np.ndarray | None = None,
              policy: CropPolicy = CropPolicy()) -> RobotBox:
    """The box around keypoints (K, 2) in source pixels; low-confidence ones are left out
    unless fewer than ``policy.min_keypoints`` remain."""
    points = np.asarray(keypoints_px, dtype=np.float64)
    if confidence is not None:
        confident = np.asarray(confidence) >= policy.min_confidence
        if confident.sum() >= policy.min_keypoints:
            points = points[confident]
    points = points[np.isfinite(points).all(1)]
    if len(points) == 0:
        raise ValueError('no finite keypoint to place the robot box on')
    low, high = points.min(0), points.max(0)
    size = max(float((high - low).max()) * policy.margin, policy.min_size_px)
    centre = (low + high) / 2.0
    return RobotBox((float(centre[0]), float(centre[1])), size)
