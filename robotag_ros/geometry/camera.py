"""Pinhole camera maths in the optical frame (x right, y down, z forward); pixels, metres."""
from typing import Sequence

import numpy as np
import torch

# Points this close to the camera plane (metres) are clamped so projection never divides by zero.
MIN_DEPTH_M = 1e-4


def project_points(points_cam: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Project camera-frame points (B, N, 3) with intrinsics K (B, 3, 3) to pixels (B, N, 2)."""
    depth = points_cam[..., 2:3].clamp(min=MIN_DEPTH_M)
    normalised = points_cam[..., :2] / depth
    focal = torch.stack((intrinsics[:, 0, 0], intrinsics[:, 1, 1]), dim=-1)[:, None, :]
    centre = torch.stack((intrinsics[:, 0, 2], intrinsics[:, 1, 2]), dim=-1)[:, None, :]
    return normalised * focal + centre


def unproject_pixels(pixels: torch.Tensor, depth_m: torch.Tensor,
                     intrinsics: torch.Tensor) -> torch.Tensor:
    """Lift pixels (B, N, 2) with depths (B, N) to camera-frame points (B, N, 3)."""
    fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]
    cx, cy = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None]
    x = (pixels[..., 0] - cx) / fx * depth_m
    y = (pixels[..., 1] - cy) / fy * depth_m
    return torch.stack((x, y, depth_m), dim=-1)


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates (H, W, 2) as (u, v); pixel (0, 0) covers [0, 1) x [0, 1)."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype) + 0.5,
                          torch.arange(width, device=device, dtype=dtype) + 0.5, indexing='ij')
    return torch.stack((u, v), dim=-1)


def unproject_depth(depth_m: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Unproject a depth map (B, H, W) in metres to camera-frame points (B, H, W, 3)."""
    batch, height, width = depth_m.shape
    grid = pixel_grid(height, width, depth_m.device, depth_m.dtype).reshape(1, -1, 2)
    points = unproject_pixels(grid.expand(batch, -1, -1), depth_m.reshape(batch, -1), intrinsics)
    return points.reshape(batch, height, width, 3)


def resize_intrinsics(intrinsics: torch.Tensor, src_hw: Sequence[int],
                      dst_hw: Sequence[int]) -> torch.Tensor:
    """Intrinsics (..., 3, 3) of an image resized from ``src_hw`` to ``dst_hw`` (height, width).

    Pixel coordinates here are continuous from the image's top-left corner (pixel (0, 0) covers
    [0, 1) x [0, 1), its centre is at 0.5, as in OpenGL and :func:`pixel_grid`), so a resize scales
    focal lengths and principal point alike: ``c' = c * s``.
    """
    scale_y = dst_hw[0] / src_hw[0]
    scale_x = dst_hw[1] / src_hw[1]
    resized = intrinsics.clone()
    resized[..., 0, :] = resized[..., 0, :] * scale_x
    resized[..., 1, :] = resized[..., 1, :] * scale_y
    return resized


def crop_intrinsics(intrinsics: torch.Tensor, left_px: float, top_px: float) -> torch.Tensor:
    """Intrinsics (..., 3, 3) of a crop whose top-left corner is at (left_px, top_px)."""
    cropped = intrinsics.clone()
    cropped[..., 0, 2] = cropped[..., 0, 2] - left_px
    cropped[..., 1, 2] = cropped[..., 1, 2] - top_px
    return cropped


def intrinsics_to_K(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3x3 K from focal lengths and principal point, all in pixels."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


# A pinhole camera's field of view lies in this range (degrees); focal lengths outside it (fx =
# 1e-9 px, or 1e9 px) are typos or unset fields, not lenses.
PLAUSIBLE_FOV_DEG = (0.5, 179.0)
# Largest |skew| K[0][1] as a share of fx: real sensors' pixel axes are square to a fraction of
# a percent, so more is a wrong field (a 1e6 typed into K[0][1]), not a camera.
MAX_SKEW_FRACTION = 0.01


def pinhole_problem(K, width: int = 0, height: int = 0) -> tuple[str, str] | None:
    """Why a 3x3 intrinsic matrix (pixels, for a ``width`` x ``height`` image; 0 = unknown) is
    not a plausible pinhole camera, as (kind, text naming the field as K[row][col]), or None.

    Kinds: 'all_zero' (an uncalibrated camera), 'non_finite', 'not_pinhole' (bottom row not
    [0, 0, 1] or K[1][0] != 0), 'focal' (not positive, or a field of view outside
    ``PLAUSIBLE_FOV_DEG``), 'skew' (|K[0][1]| above ``MAX_SKEW_FRACTION`` of fx),
    'principal_point' (outside the image).
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if not np.any(K):
        return 'all_zero', 'K is all zeros (an uncalibrated camera)'
    bad = np.argwhere(~np.isfinite(K))
    if len(bad):
        row, col = bad[0]
        return 'non_finite', f'K holds NaN or infinite values (K[{row}][{col}] = {K[row, col]})'
    for (row, col), expected in (((2, 0), 0.0), ((2, 1), 0.0), ((2, 2), 1.0), ((1, 0), 0.0)):
        if abs(K[row, col] - expected) > 1e-9:
            return 'not_pinhole', (f'K[{row}][{col}] = {K[row, col]:g}, not {expected:g}: not a '
                                   'pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]')
    for name, (row, col), size in (('fx', (0, 0), width), ('fy', (1, 1), height)):
        focal = K[row, col]
        if focal <= 0:
            return 'focal', f'focal length {name} = K[{row}][{col}] = {focal:g} is not positive'
        if size <= 0:   # image size unknown: a lens maps a radian to at least a pixel
            if focal < 1.0:
                return 'focal', (f'focal length {name} = K[{row}][{col}] = {focal:g} px is '
                                 'below 1 px')
            continue
        fov_deg = np.degrees(2.0 * np.arctan2(size / 2.0, focal))
        low, high = PLAUSIBLE_FOV_DEG
        if not low <= fov_deg <= high:
            return 'focal', (f'focal length {name} = K[{row}][{col}] = {focal:g} px gives a '
                             f'{fov_deg:.3g} deg field of view over {size} px (plausible: '
                             f'{low:g} to {high:g} deg)')
    if abs(K[0, 1]) > MAX_SKEW_FRACTION * K[0, 0]:
        return 'skew', (f'skew K[0][1] = {K[0, 1]:g} is over {MAX_SKEW_FRACTION:g} of fx = '
                        f'{K[0, 0]:g}: not a camera\'s')
    for name, (row, col), size in (('cx', (0, 2), width), ('cy', (1, 2), height)):
        if size > 0 and not 0.0 <= K[row, col] <= size:
            return 'principal_point', (f'principal point {name} = K[{row}][{col}] = '
                                       f'{K[row, col]:g} lies outside the image (0..{size} px)')
    return None
