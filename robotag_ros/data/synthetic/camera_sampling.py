"""Camera placement and intrinsics sampling for synthetic frames (pure numpy, metres, pixels).

The camera is the optical frame (x right, y down, z forward); poses are T_base_cam (camera pose in
the robot base frame, whose z axis points up).
"""
from __future__ import annotations

import numpy as np


def look_at(camera_pos_m: np.ndarray, target_m: np.ndarray, roll_rad: float = 0.0,
            up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """T_base_cam of an optical camera at `camera_pos_m` looking at `target_m`, rolled about z."""
    forward = np.asarray(target_m, float) - np.asarray(camera_pos_m, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    if np.linalg.norm(right) < 1e-6:  # looking straight up or down: any right vector will do
        right = np.cross(forward, np.array([1.0, 0.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cos_roll, sin_roll = np.cos(roll_rad), np.sin(roll_rad)
    right, down = cos_roll * right + sin_roll * down, -sin_roll * right + cos_roll * down
    T_base_cam = np.eye(4)
    T_base_cam[:3, :3] = np.stack([right, down, forward], axis=1)
    T_base_cam[:3, 3] = camera_pos_m
    return T_base_cam


def sample_intrinsics(rng: np.random.Generator, height: int, width: int,
                      camera_config) -> np.ndarray:
    """K (3, 3) pixels: vertical field of view, aspect jitter and principal-point jitter."""
    if camera_config.intrinsics_px is not None:
        fx, fy, cx, cy = (float(v) for v in camera_config.intrinsics_px)
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    fov_y = np.deg2rad(rng.uniform(*camera_config.fov_y_deg))
    fy = (height / 2.0) / np.tan(fov_y / 2.0)
    fx = fy * rng.uniform(*camera_config.aspect_jitter)
    jitter = camera_config.principal_jitter_frac
    cx = width / 2.0 + rng.uniform(-jitter, jitter) * width
    cy = height / 2.0 + rng.uniform(-jitter, jitter) * height
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def sample_camera_pose(rng: np.random.Generator, keypoints_base_m: np.ndarray,
                       camera_config) -> np.ndarray:
    """T_base_cam on a sphere around a jittered look-at point on the robot."""
    target = np.array([0.0, 0.0, rng.uniform(*camera_config.look_at_height_m)])
    if rng.uniform() < 0.5:
        target = keypoints_base_m[int(rng.integers(0, len(keypoints_base_m)))].copy()
    target += rng.uniform(-1.0, 1.0, size=3) * camera_config.look_at_jitter_m
    distance = rng.uniform(*camera_config.distance_m)
    azimuth = np.deg2rad(rng.uniform(*camera_config.azimuth_deg))
    elevation = np.deg2rad(rng.uniform(*camera_config.elevation_deg))
    offset = distance * np.array([np.cos(elevation) * np.cos(azimuth),
                                  np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    roll = np.deg2rad(rng.uniform(*camera_config.roll_deg))
    return look_at(target + offset, target, roll)


def project(points_cam_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points -> (N, 2) pixels (points must be in front, z > 0)."""
    uvw = points_cam_m @ K.T
    return uvw[:, :2] / uvw[:, 2:3]


def in_image(points_cam_m: np.ndarray, keypoints_2d_px: np.ndarray, height: int,
             width: int) -> np.ndarray:
    """(N,) bool: in front of the camera and inside the image (pixel (0, 0) covers [0, 1)^2)."""
    u, v = keypoints_2d_px[:, 0], keypoints_2d_px[:, 1]
    return (points_cam_m[:, 2] > 1e-3) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
