"""One frame -> what the network takes: placed by a letterbox or a crop box, then normalised,
both as the artifact's sidecar says (input size, :class:`ImagePreprocessing`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from robotag_ros.geometry.letterbox import (Letterbox, letterbox_image, plan_crop,
                                            plan_letterbox, warp_image)
from robotag_ros.model.preprocessing import ImagePreprocessing

PreparedFrame = tuple[np.ndarray, np.ndarray, Letterbox]


def _check_image(image_rgb: np.ndarray) -> None:
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f'expected an HxWx3 uint8 RGB image, got {image_rgb.shape} '
                         f'{image_rgb.dtype}')


def _prepared(placed_rgb: np.ndarray, K: np.ndarray, plan: Letterbox,
              preprocessing: ImagePreprocessing) -> PreparedFrame:
    return (preprocessing.to_network_input(placed_rgb),
            plan.adjust_intrinsics(K).astype(np.float32)[None], plan)


def preprocess(image_rgb: np.ndarray, K: np.ndarray, input_hw: Sequence[int],
               preprocessing: ImagePreprocessing) -> PreparedFrame:
    """The whole frame letterboxed: (1x3xHxW float32, 1x3x3 float32 K, the Letterbox used)."""
    _check_image(image_rgb)
    plan = plan_letterbox(image_rgb.shape[:2], input_hw)
    placed = letterbox_image(image_rgb, plan, pad_value=preprocessing.pad_value)
    return _prepared(placed, K, plan, preprocessing)


def preprocess_crop(image_rgb: np.ndarray, K: np.ndarray, center_px: Sequence[float],
                    size_px: float, input_hw: Sequence[int],
                    preprocessing: ImagePreprocessing) -> PreparedFrame:
    """The second pass's input: a square box around the robot, scaled to the network's size;
    returns the same triple as :func:`preprocess` (the plan maps keypoints back)."""
    _check_image(image_rgb)
    plan = plan_crop(image_rgb.shape[:2], center_px, size_px, input_hw)
    placed = warp_image(image_rgb, plan, pad_value=preprocessing.pad_value)
    return _prepared(placed, K, plan, preprocessing)
