"""Draw an Estimate onto its image: skeleton, 2D keypoints and the robot base axes (OpenCV).

ROS-free; the node publishes the result as ``~/debug_image`` and tools save it as PNG.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from robotag_ros.inference.estimate import Estimate

# RGB colours.
KEYPOINT_RGB = (255, 60, 60)
SKELETON_RGB = (0, 220, 255)
AXIS_RGB = ((255, 0, 0), (0, 200, 0), (0, 90, 255))   # base x, y, z


def chain_edges(num_keypoints: int) -> list[tuple[int, int]]:
    """Skeleton edges joining keypoints in order (DREAM's Panda keypoints form one chain)."""
    return [(i, i + 1) for i in range(num_keypoints - 1)]


def project_base_axes(T_cam_base: np.ndarray, K: np.ndarray,
                      axis_length_m: float) -> np.ndarray | None:
    """Pixels (4, 2) of the base origin and its x, y, z axis tips; None if behind the camera."""
    axes_base = np.vstack([np.zeros(3), np.eye(3) * axis_length_m])
    axes_cam = axes_base @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
    if np.any(axes_cam[:, 2] <= 1e-6):
        return None
    pixels = axes_cam @ np.asarray(K, dtype=np.float64).T
    return pixels[:, :2] / pixels[:, 2:3]


def _pixel(p) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))


def draw_skeleton(canvas: np.ndarray, keypoints_px: np.ndarray,
                  skeleton_edges: Sequence[tuple[int, int]] | None = None,
                  line_rgb=SKELETON_RGB, point_rgb=KEYPOINT_RGB, scale: int = 1) -> np.ndarray:
    """Draw keypoints (K, 2) and the edges between them onto ``canvas`` in place."""
    keypoints = np.asarray(keypoints_px, dtype=np.float64)
    if skeleton_edges is None:
        skeleton_edges = chain_edges(len(keypoints))
    finite = np.isfinite(keypoints).all(axis=1)
    for i, j in skeleton_edges:
        if finite[i] and finite[j]:
            cv2.line(canvas, _pixel(keypoints[i]), _pixel(keypoints[j]), line_rgb, scale,
                     cv2.LINE_AA)
    for point in keypoints[finite]:
        cv2.circle(canvas, _pixel(point), 2 * scale + 1, point_rgb, -1, cv2.LINE_AA)
    return canvas


def draw_estimate(image_rgb: np.ndarray, estimate: Estimate, K: np.ndarray,
                  skeleton_edges: Sequence[tuple[int, int]] | None = None,
                  axis_length_m: float = 0.15) -> np.ndarray:
    """Return a copy of the HxWx3 uint8 RGB image with the estimate drawn on it."""
    canvas = np.ascontiguousarray(image_rgb, dtype=np.uint8).copy()
    scale = max(1, round(max(canvas.shape[:2]) / 320))
    draw_skeleton(canvas, estimate.keypoints_2d_px, skeleton_edges, scale=scale)
    if np.isfinite(estimate.T_cam_base).all():
        axes_px = project_base_axes(estimate.T_cam_base, K, axis_length_m)
        if axes_px is not None and np.isfinite(axes_px).all():
            origin = _pixel(axes_px[0])
            for tip, colour in zip(axes_px[1:], AXIS_RGB):
                cv2.line(canvas, origin, _pixel(tip), colour, 2 * scale, cv2.LINE_AA)
    cv2.putText(canvas, f'consistency {estimate.consistency:.2f}', (5 * scale, 12 * scale),
                cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (255, 255, 255), scale, cv2.LINE_AA)
    return canvas
