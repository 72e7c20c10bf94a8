"""Markerless hand-eye calibration: per-frame camera<->base estimates -> one calibrated transform.

Eye-on-base (static camera): the calibrated quantity is ``T_cam_base`` itself. Eye-in-hand (camera
on the arm): each frame's ``T_cam_base`` composed with the forward kinematics ``T_base_ee`` of the
measured joint states gives ``T_cam_ee = T_cam_base @ T_base_ee``, which is constant over frames.
Both are aggregated robustly by :func:`~robotag_ros.calibration.aggregate.aggregate_transforms`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from robotag_ros.calibration.aggregate import AggregateResult, aggregate_transforms

EYE_ON_BASE = 'eye_on_base'
EYE_IN_HAND = 'eye_in_hand'
CALIBRATION_TYPES = (EYE_ON_BASE, EYE_IN_HAND)

# joint angles (N, n) radians -> T_base_ee (N, 4, 4) metres
ForwardKinematics = Callable[[np.ndarray], np.ndarray]


def calibrate_eye_on_base(T_cam_base: np.ndarray, consistency: np.ndarray | None = None,
                          **aggregate_options) -> AggregateResult:
    """Aggregate per-frame ``T_cam_base`` (N, 4, 4) of a static camera; ``.T`` is T_cam_base."""
    return aggregate_transforms(T_cam_base, consistency, **aggregate_options)


def hand_camera_transforms(T_cam_base: np.ndarray, T_base_ee: np.ndarray) -> np.ndarray:
    """Per-frame ``T_cam_ee = T_cam_base @ T_base_ee`` (N, 4, 4): the hand seen from the camera."""
    T_cam_base = np.asarray(T_cam_base, dtype=np.float64)
    T_base_ee = np.asarray(T_base_ee, dtype=np.float64)
    if T_cam_base.shape != T_base_ee.shape:
        raise ValueError(f'{T_cam_base.shape} camera estimates but {T_base_ee.shape} FK poses')
    return T_cam_base @ T_base_ee


def calibrate_eye_in_hand(T_cam_base: np.ndarray, joint_angles_rad: np.ndarray,
                          forward_kinematics: ForwardKinematics,
                          consistency: np.ndarray | None = None,
                          **aggregate_options) -> AggregateResult:
    """Aggregate the hand-camera transform; result ``.T`` is ``T_cam_ee`` (constant per frame).

    joint_angles_rad: (N, n) measured joint states (from ``/joint_states``, not the estimate);
    forward_kinematics: joint angles -> ``T_base_ee`` (N, 4, 4),
    e.g. :func:`robot_forward_kinematics`.
    """
    joint_angles_rad = np.asarray(joint_angles_rad, dtype=np.float64)
    T_base_ee = np.asarray(forward_kinematics(joint_angles_rad), dtype=np.float64)
    return aggregate_transforms(hand_camera_transforms(T_cam_base, T_base_ee), consistency,
                                **aggregate_options)


def robot_forward_kinematics(robot, effector_link: str) -> ForwardKinematics:
    """Wrap ``RobotModel.link_poses`` (torch, batched) as a numpy FK callable for one link."""
    import torch  # only this adaptor needs torch; the maths above is numpy

    def forward_kinematics(joint_angles_rad: np.ndarray) -> np.ndarray:
        # The robot model runs in float32; its FK error (~1e-7 m) is far below calibration noise.
        q = torch.as_tensor(np.asarray(joint_angles_rad), dtype=torch.float32)
        with torch.no_grad():
            poses = robot.link_poses(q)
        if effector_link not in poses:
            raise KeyError(f'link {effector_link!r} not in the robot; links: {sorted(poses)}')
        return poses[effector_link].double().cpu().numpy()

    return forward_kinematics
