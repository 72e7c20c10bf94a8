"""Image geometry shared by training data, inference and export: letterbox + intrinsics.

The network always sees an undistorted image: the input is scaled uniformly to fit the network's
size and padded, never squashed, so a 640x480 camera and a 400x400 render look alike to it. The
intrinsics follow the same scale and shift, so geometry stays exact; ``Letterbox`` maps network
pixels back to the original image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """How an image of ``source_hw`` was placed into the network input of ``target_hw``."""

    source_hw: tuple[int, int]
    target_hw: tuple[int, int]
    scale: float            # network pixels per source pixel
    pad_left_px: float
    pad_top_px: float

    def to_source_px(self, pixels: np.ndarray) -> np.ndarray:
        """Network-input pixels (..., 2) -> pixels of the original image."""
        offset = np.array([self.pad_left_px, self.pad_top_px])
        return (np.asarray(pixels, dtype=np.float64) - offset) / self.scale

    def to_target_px(self, pixels: np.ndarray) -> np.ndarray:
        """Original-image pixels (..., 2) -> network-input pixels."""
        offset = np.array([self.pad_left_px, self.pad_top_px])
        return np.asarray(pixels, dtype=np.float64) * self.scale + offset

    def adjust_intrinsics(self, K: np.ndarray) -> np.ndarray:
        """Intrinsics of the original image -> intrinsics of the network input (continuous
        pixel coordinates from the corner, so scaling multiplies and padding shifts)."""
        K = np.asarray(K, dtype=np.float64)
        adjusted = K.copy()
        adjusted[:2, :] *= self.scale
        adjusted[0, 2] += self.pad_left_px
        adjusted[1, 2] += self.pad_top_px
        return adjusted


def plan_letterbox(source_hw: Sequence[int], target_hw: Sequence[int]) -> Letterbox:
    """Uniform scale that fits ``source_hw`` inside ``target_hw``, centred, padding the rest."""
    source_h, source_w = int(source_hw[0]), int(source_hw[1])
    target_h, target_w = int(target_hw[0]), int(target_hw[1])
    if min(source_h, source_w, target_h, target_w) <= 0:
        raise ValueError(f'image sizes must be positive: {source_hw} -> {target_hw}')
    scale = min(target_h / source_h, target_w / source_w)
    resized_h, resized_w = round(source_h * scale), round(source_w * scale)
    if min(resized_h, resized_w) < 1:
        raise ValueError(f'a {source_w}x{source_h} image (width x height) cannot be used: '
                         f'letterboxed into the {target_w}x{target_h} network input it would be '
                         f'{resized_w}x{resized_h} pixels')
    return Letterbox((source_h, source_w), (target_h, target_w), scale,
                     (target_w - resized_w) // 2, (target_h - resized_h) // 2)


def plan_crop(source_hw: Sequence[int], center_px: Sequence[float], size_px: float,
              target_hw: Sequence[int]) -> Letterbox:
    """A square box of ``size_px`` pixels of a ``source_hw`` image centred at ``center_px``
    (u, v), scaled to fill ``target_hw``: the robot-centred view of the second pass. The box
    may reach past the image's borders (:func:`warp_image` pads)."""
    target_h, target_w = int(target_hw[0]), int(target_hw[1])
    scale = min(target_h, target_w) / max(float(size_px), 1.0)
    return Letterbox((int(source_hw[0]), int(source_hw[1])), (target_h, target_w), scale,
                     target_w / 2.0 - float(center_px[0]) * scale,
                     target_h / 2.0 - float(center_px[1]) * scale)


def warp_image(image: np.ndarray, plan: Letterbox, pad_value: int = 0,
               nearest: bool = False) -> np.ndarray:
    """Any uniform scale + shift ``plan`` (a crop box or a letterbox) applied to an image.

    Shrinking goes through an area filter first (as :func:`letterbox_image`), then one affine
    warp at the exact residual scale places the region, padding whatever lies outside.
    """
    source_h, source_w = image.shape[:2]
    target_h, target_w = plan.target_hw
    scale_x = scale_y = 1.0
    if plan.scale < 1.0 and not nearest:
        small_w = max(1, round(source_w * plan.scale))
        small_h = max(1, round(source_h * plan.scale))
        image = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        scale_x, scale_y = small_w / source_w, small_h / source_h
    # Continuous coordinates (pixel centres at +0.5) -> OpenCV's (centres at integers).
    sx, sy = plan.scale / scale_x, plan.scale / scale_y
    matrix = np.array([[sx, 0.0, plan.pad_left_px + 0.5 * sx - 0.5],
                       [0.0, sy, plan.pad_top_px + 0.5 * sy - 0.5]])
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    border = (pad_value,) * (image.shape[2] if image.ndim == 3 else 1)
    return cv2.warpAffine(image, matrix, (target_w, target_h), flags=flags,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def letterbox_image(image: np.ndarray, plan: Letterbox, pad_value: int = 0,
                    interpolation: int | None = None) -> np.ndarray:
    """Resize (area filter when shrinking, unless ``interpolation`` is given: nearest for masks
    and depth) and pad an HxW or HxWxC image per ``plan``."""
    if image.shape[:2] != plan.source_hw:
        raise ValueError(f'image is {image.shape[:2]}, the plan expects {plan.source_hw}')
    target_h, target_w = plan.target_hw
    resized_w = round(plan.source_hw[1] * plan.scale)
    resized_h = round(plan.source_hw[0] * plan.scale)
    if interpolation is None:
        interpolation = cv2.INTER_AREA if plan.scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (resized_w, resized_h), interpolation=interpolation)
    if resized.ndim == 2:
        resized = resized[..., None]
    out = np.full((target_h, target_w, image.shape[2] if image.ndim == 3 else 1), pad_value,
                  dtype=image.dtype)
    top, left = int(plan.pad_top_px), int(plan.pad_left_px)
    out[top:top + resized_h, left:left + resized_w] = resized
    return out if image.ndim == 3 else out[..., 0]


def crop(image: np.ndarray, K: np.ndarray,
         box_xywh: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """A region of interest (x, y, width, height in pixels) and its intrinsics: the focal lengths
    stay, the principal point moves by the box's corner. For a caller that crops before
    estimating (e.g. a camera's ROI); the estimator itself never crops."""
    x, y, width, height = (int(v) for v in box_xywh)
    if x < 0 or y < 0 or width <= 0 or height <= 0 or x + width > image.shape[1] \
            or y + height > image.shape[0]:
        raise ValueError(f'crop box {tuple(box_xywh)} (x, y, w, h) is not inside the '
                         f'{image.shape[1]}x{image.shape[0]} image')
    cropped_K = np.asarray(K, dtype=np.float64).copy()
    cropped_K[0, 2] -= x
    cropped_K[1, 2] -= y
    return np.ascontiguousarray(image[y:y + height, x:x + width]), cropped_K
