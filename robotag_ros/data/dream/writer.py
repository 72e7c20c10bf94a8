"""Writes labelled frames as a DREAM (NDDS) data set, field for field as DREAM's readers load it.

Per set: ``_camera_settings.json`` and ``_object_settings.json``. Per frame: ``NNNNNN.rgb.jpg``
(the folder's only image of the frame, so DREAM's extension count finds it), our extras
(``robotag_extras/NNNNNN.robot_mask.png``, ``robotag_extras/NNNNNN.depth_mm.png``) and, written
last, ``NNNNNN.json``:
a frame is finished when its JSON exists. Lengths are written in centimetres, as in DREAM's
synthetic sets. Every frame of a folder must project with the K of ``_camera_settings.json``
(DREAM's and Holistic's readers take it for every frame); ``camera_data.intrinsics`` repeats it
per frame (our reader prefers it, so folders of older robotag-synth versions, made with a K per
frame, still load right).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from robotag_ros.atomic_io import atomic_write_bytes, atomic_write_json
from robotag_ros.data.dream.format import (CAMERA_SETTINGS_FILE, CM_PER_M, DEPTH_SUFFIX,
                                           EXTRAS_DIR, MASK_SUFFIX, OBJECT_SETTINGS_FILE,
                                           R_NORMAL_UE, RGB_SUFFIX, frame_stem)

_DECIMALS = 6  # JSON floats rounded: stable bytes, far below label noise (1e-6 cm, 1e-6 px)


def _round(values) -> list:
    return np.round(np.asarray(values, dtype=np.float64), _DECIMALS).tolist()


def dream_names(robot) -> tuple[str, str]:
    """(class name, joint prefix) for DREAM files: from the robot YAML's `dream:` block."""
    dream = getattr(getattr(robot, 'description', None), 'dream', None) or {}
    return str(dream.get('class_name', robot.name)), str(dream.get('joint_prefix', robot.name))


def dream_joint_names(robot) -> list[str]:
    """Joint names as the robot's DREAM sets spell them: the robot YAML's optional
    `dream.joint_names` list (e.g. iiwa7_joint_1.. for Kuka), else the URDF joint names."""
    dream = getattr(getattr(robot, 'description', None), 'dream', None) or {}
    names = list(dream.get('joint_names') or robot.joint_names)
    if len(names) != len(robot.joint_names):
        raise ValueError(f'{robot.name}: dream.joint_names has {len(names)} names for '
                         f'{len(robot.joint_names)} joints')
    return names


def camera_settings(K: np.ndarray, height: int, width: int, name: str = 'robotag_synth') -> dict:
    """`_camera_settings.json` content for one set-wide K (3, 3) pixels."""
    fov_x = 2.0 * np.degrees(np.arctan2(width / 2.0, K[0, 0]))
    return {'camera_settings': [{
        'name': name,
        'horizontal_fov': round(float(fov_x), _DECIMALS),
        'intrinsic_settings': {'resX': int(width), 'resY': int(height),
                               'fx': round(float(K[0, 0]), _DECIMALS),
                               'fy': round(float(K[1, 1]), _DECIMALS),
                               'cx': round(float(K[0, 2]), _DECIMALS),
                               'cy': round(float(K[1, 2]), _DECIMALS), 's': 0},
        'captured_image_size': {'width': int(width), 'height': int(height)},
    }]}


def object_settings(robot) -> dict:
    """`_object_settings.json` content (read by no known reader; written for completeness)."""
    class_name, _ = dream_names(robot)
    return {'exported_object_classes': [class_name],
            'exported_objects': [{'class': class_name, 'segmentation_class_id': 255,
                                  'segmentation_instance_id': 255,
                                  'fixed_model_transform': np.eye(4).tolist(),
                                  'cuboid_dimensions': [0, 0, 0]}]}


def write_set_files(out_dir: str | Path, robot, K: np.ndarray, height: int, width: int) -> None:
    """Write the per-set settings files (idempotent: same content each time)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / CAMERA_SETTINGS_FILE, camera_settings(K, height, width))
    atomic_write_json(out_dir / OBJECT_SETTINGS_FILE, object_settings(robot))


def frame_annotation(robot, joint_angles_rad, T_cam_base, T_base_cam, K, keypoints_3d_m,
                     keypoints_2d_px, height: int, width: int) -> dict:
    """The per-frame JSON dict (DREAM synthetic layout, centimetres)."""
    class_name, joint_prefix = dream_names(robot)
    # Readers recover R_cam_base = R_file @ R_NORMAL_UE.
    R_file = T_cam_base[:3, :3] @ R_NORMAL_UE.T
    location_cm = T_cam_base[:3, 3] * CM_PER_M
    # NDDS pose_transform, as CtRNet reads it: transposed (translation in the last row, cm) and
    # in a camera frame with x and y flipped: P.T = [[F R_cam_base F', F t], [0, 1]] with
    # F = diag(-1, -1, 1), F' = diag(1, -1, 1).
    flip_xy, flip_y = np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, -1.0, 1.0])
    pose_column_layout = np.eye(4)
    pose_column_layout[:3, :3] = flip_xy @ T_cam_base[:3, :3] @ flip_y
    pose_column_layout[:3, 3] = flip_xy @ location_cm
    pose_transform = pose_column_layout.T
    keypoints_2d = np.asarray(keypoints_2d_px)
    inside = ((keypoints_2d[:, 0] >= 0) & (keypoints_2d[:, 0] < width)
              & (keypoints_2d[:, 1] >= 0) & (keypoints_2d[:, 1] < height))
    box_points = keypoints_2d[inside] if inside.any() else keypoints_2d
    return {
        'camera_data': {
            'location_worldframe': _round(T_base_cam[:3, 3] * CM_PER_M),
            # World = robot base; the same Unreal-axes convention as the object's quaternion.
            'quaternion_xyzw_worldframe': _round(
                Rotation.from_matrix(T_base_cam[:3, :3] @ R_NORMAL_UE.T).as_quat()),
            'intrinsics': {'fx': round(float(K[0, 0]), _DECIMALS),
                           'fy': round(float(K[1, 1]), _DECIMALS),
                           'cx': round(float(K[0, 2]), _DECIMALS),
                           'cy': round(float(K[1, 2]), _DECIMALS)},
            'width': int(width), 'height': int(height),
        },
        'objects': [{
            'class': class_name,
            'name': f'{class_name}_00',
            'visibility': 1,
            'location': _round(location_cm),
            'quaternion_xyzw': _round(Rotation.from_matrix(R_file).as_quat()),
            'pose_transform': _round(pose_transform),
            'keypoints': [{'name': name, 'location': _round(point * CM_PER_M),
                           'projected_location': _round(pixel)}
                          for name, point, pixel in zip(robot.keypoint_names, keypoints_3d_m,
                                                        keypoints_2d)],
            'bounding_box': {'min': _round(box_points.min(axis=0)),
                             'max': _round(box_points.max(axis=0))},
        }],
        'sim_state': {'joints': [{'name': f'{joint_prefix}/{joint}', 'position': round(
            float(angle), _DECIMALS + 3)} for joint, angle in zip(dream_joint_names(robot),
                                                                  joint_angles_rad)]},
    }


def write_frame(out_dir: str | Path, frame_index: int, robot, frame, jpeg_bytes: bytes,
                save_mask: bool = True, save_depth: bool = True) -> Path:
    """Write one SynthFrame; the JSON goes last so its presence marks a finished frame."""
    out_dir = Path(out_dir)
    stem = frame_stem(frame_index)
    atomic_write_bytes(out_dir / f'{stem}{RGB_SUFFIX}', jpeg_bytes)
    if save_mask:
        ok, png = cv2.imencode('.png', frame.robot_mask.astype(np.uint8) * 255,
                               [cv2.IMWRITE_PNG_COMPRESSION, 1])
        atomic_write_bytes(out_dir / EXTRAS_DIR / f'{stem}{MASK_SUFFIX}', png.tobytes())
    if save_depth and frame.depth_m is not None:
        depth_mm = np.clip(np.round(frame.depth_m * 1000.0), 0, 65535).astype(np.uint16)
        ok, png = cv2.imencode('.png', depth_mm, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        atomic_write_bytes(out_dir / EXTRAS_DIR / f'{stem}{DEPTH_SUFFIX}', png.tobytes())
    height, width = frame.rgb.shape[:2]
    annotation = frame_annotation(robot, frame.joint_angles_rad, frame.T_cam_base,
                                  frame.T_base_cam, frame.K, frame.keypoints_3d_m,
                                  frame.keypoints_2d_px, height, width)
    json_path = out_dir / f'{stem}.json'
    atomic_write_json(json_path, annotation)
    return json_path
