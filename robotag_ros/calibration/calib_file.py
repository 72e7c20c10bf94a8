"""Read and write easy_handeye2's ``.calib`` YAML, so its own publisher can load our calibration.

easy_handeye2 serialises its ``easy_handeye2_msgs/HandeyeCalibration`` message: ``parameters``
(name, calibration_type 'eye_in_hand' | 'eye_on_base', robot_base_frame, robot_effector_frame,
tracking_base_frame, tracking_marker_frame, freehand_robot_movement, move_group_namespace,
move_group) and ``transform`` (geometry_msgs/Transform: translation x, y, z in metres; rotation
x, y, z, w). Its publisher sends ``transform`` on /tf_static with

- eye_on_base: parent ``robot_base_frame``, child ``tracking_base_frame`` (the camera), so the
  stored transform is ``T_base_cam`` = inverse of our ``T_cam_base``;
- eye_in_hand: parent ``robot_effector_frame``, child ``tracking_base_frame``, so the stored
  transform is ``T_ee_cam`` = inverse of our ``T_cam_ee``.

A TF transform parent->child is the child's pose in the parent frame (maps child points into the
parent). Our tracking_base_frame is the camera's optical frame (x right, y down, z forward); a user
whose tf tree names another camera frame must convert. easy_handeye2 reads these files from
``~/.ros2/easy_handeye2/calibrations/<name>.calib``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from robotag_ros.atomic_io import atomic_write_text
from robotag_ros.calibration.hand_eye import CALIBRATION_TYPES, EYE_IN_HAND, EYE_ON_BASE

DEFAULT_CALIBRATIONS_DIRECTORY = Path('~/.ros2/easy_handeye2/calibrations').expanduser()


@dataclass
class HandEyeCalibration:
    """A calibration in our convention: ``T_cam_reference`` maps reference-frame points (metres)
    into the camera optical frame; the reference is the robot base (eye_on_base) or the
    effector link (eye_in_hand)."""

    name: str
    calibration_type: str
    T_cam_reference: np.ndarray
    robot_base_frame: str
    robot_effector_frame: str
    tracking_base_frame: str
    tracking_marker_frame: str = ''
    freehand_robot_movement: bool = True

    def __post_init__(self):
        if self.calibration_type not in CALIBRATION_TYPES:
            raise ValueError(f'calibration_type {self.calibration_type!r} is not one of '
                             f'{CALIBRATION_TYPES}')
        self.T_cam_reference = np.asarray(self.T_cam_reference, dtype=np.float64)

    @property
    def parent_frame(self) -> str:
        """The frame easy_handeye2 publishes the transform from."""
        return (self.robot_effector_frame if self.calibration_type == EYE_IN_HAND
                else self.robot_base_frame)

    @property
    def T_reference_cam(self) -> np.ndarray:
        """The stored (published) direction: the camera's pose in the reference frame."""
        return _invert(self.T_cam_reference)


def _invert(T: np.ndarray) -> np.ndarray:
    R, t = T[:3, :3], T[:3, 3]
    T_inv = np.eye(4)
    T_inv[:3, :3] = R.T
    T_inv[:3, 3] = -R.T @ t
    return T_inv


def calibration_to_dict(calibration: HandEyeCalibration) -> dict:
    """The ``HandeyeCalibration`` message layout as a plain dict (what easy_handeye2 writes)."""
    T = calibration.T_reference_cam
    qx, qy, qz, qw = (float(v) for v in Rotation.from_matrix(T[:3, :3]).as_quat())
    return {
        'parameters': {
            'name': calibration.name,
            'calibration_type': calibration.calibration_type,
            'robot_base_frame': calibration.robot_base_frame,
            'robot_effector_frame': calibration.robot_effector_frame,
            'tracking_base_frame': calibration.tracking_base_frame,
            'tracking_marker_frame': calibration.tracking_marker_frame,
            'freehand_robot_movement': bool(calibration.freehand_robot_movement),
            'move_group_namespace': '/',
            'move_group': 'manipulator',
        },
        'transform': {
            'translation': {'x': float(T[0, 3]), 'y': float(T[1, 3]), 'z': float(T[2, 3])},
            'rotation': {'x': qx, 'y': qy, 'z': qz, 'w': qw},
        },
    }


def calibration_from_dict(data: dict, source: str = '<dict>') -> HandEyeCalibration:
    """Parse the ``HandeyeCalibration`` layout; errors name the missing field and the source."""
    try:
        parameters = data['parameters']
        translation = data['transform']['translation']
        rotation = data['transform']['rotation']
        t = np.array([translation[k] for k in 'xyz'], dtype=np.float64)
        q = np.array([rotation[k] for k in 'xyzw'], dtype=np.float64)
        calibration_type = parameters['calibration_type']
        robot_base_frame = parameters['robot_base_frame']
        robot_effector_frame = parameters['robot_effector_frame']
        tracking_base_frame = parameters['tracking_base_frame']
    except (KeyError, TypeError) as err:
        raise ValueError(f'{source}: not an easy_handeye2 calibration (missing {err})') from None
    if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-9:
        raise ValueError(f'{source}: invalid rotation quaternion {q.tolist()}')
    T_reference_cam = np.eye(4)
    T_reference_cam[:3, :3] = Rotation.from_quat(q).as_matrix()
    T_reference_cam[:3, 3] = t
    return HandEyeCalibration(
        name=str(parameters.get('name', '')), calibration_type=calibration_type,
        T_cam_reference=_invert(T_reference_cam), robot_base_frame=robot_base_frame,
        robot_effector_frame=robot_effector_frame, tracking_base_frame=tracking_base_frame,
        tracking_marker_frame=str(parameters.get('tracking_marker_frame', '')),
        freehand_robot_movement=bool(parameters.get('freehand_robot_movement', True)))


def write_calib(path: str | os.PathLike, calibration: HandEyeCalibration) -> Path:
    """Write the ``.calib`` YAML atomically."""
    return atomic_write_text(path, yaml.safe_dump(calibration_to_dict(calibration),
                                                  default_flow_style=False, sort_keys=False))


def read_calib(path: str | os.PathLike) -> HandEyeCalibration:
    """Read a ``.calib`` YAML written by easy_handeye2 or by :func:`write_calib`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f'calibration file not found: {path}')
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f'{path}: not valid YAML ({err})') from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: not an easy_handeye2 calibration (top level is not a mapping)')
    return calibration_from_dict(data, str(path))


__all__ = ['DEFAULT_CALIBRATIONS_DIRECTORY', 'EYE_IN_HAND', 'EYE_ON_BASE', 'HandEyeCalibration',
           'calibration_from_dict', 'calibration_to_dict', 'read_calib',
           'write_calib']
