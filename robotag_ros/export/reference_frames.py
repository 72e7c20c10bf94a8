"""Real frames (RGB + intrinsics) for export parity checks and benchmarks.

Parity on random noise can hide a broken export (saturated activations, a mask that is empty on
noise), so the checks run on robot images: a DREAM-format folder, an image file with its
intrinsics, or, when neither is given, frames rendered by the synthetic-data renderer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from robotag_ros.data.dream.dataset import DreamDataset


@dataclass
class ReferenceFrame:
    """One original camera frame: HxWx3 uint8 RGB and its 3x3 intrinsics (pixels)."""

    image_rgb: np.ndarray
    K: np.ndarray
    source: str


def parse_intrinsics(text: str) -> np.ndarray:
    """'fx,fy,cx,cy' (pixels) -> 3x3 K."""
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(','))
    except ValueError as error:
        raise ValueError(f"intrinsics must be 'fx,fy,cx,cy' in pixels, got {text!r}") from error
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def frames_from_dream(folder: str | os.PathLike, robot, count: int = 2) -> list[ReferenceFrame]:
    """The first ``count`` original frames of a DREAM-format folder."""
    dataset = DreamDataset(str(folder), robot, image_size=None, augment=False)
    if len(dataset) == 0:
        raise ValueError(f'{folder}: no DREAM frames found')
    frames = []
    for index in range(min(count, len(dataset))):
        raw = dataset.raw_frame(index)
        frames.append(ReferenceFrame(raw['image_rgb'], np.asarray(raw['K'], dtype=np.float64),
                                     f"{folder}/{raw['frame']}"))
    return frames


def frame_from_image(path: str | os.PathLike, K: np.ndarray) -> ReferenceFrame:
    """An image file (any format OpenCV reads; converted to RGB) with its intrinsics."""
    import cv2
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f'{path}: not an image OpenCV can read')
    return ReferenceFrame(np.ascontiguousarray(bgr[..., ::-1]), np.asarray(K, np.float64),
                          str(path))


def rendered_frames(robot, count: int = 2, height: int = 480, width: int = 640,
                    seed: int = 0) -> list[ReferenceFrame]:
    """Frames of the robot rendered with the default domain randomisation (MuJoCo, EGL)."""
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator
    generator = SyntheticFrameGenerator(robot, load_dr_config(), height, width)
    try:
        return [ReferenceFrame(frame.rgb, frame.K, f'rendered seed {seed} frame {index}')
                for index, frame in ((i, generator.generate(seed, i)) for i in range(count))]
    finally:
        generator.close()


def reference_frames(robot, dream: Optional[str] = None, image: Optional[str] = None,
                     intrinsics: Optional[np.ndarray] = None, count: int = 2,
                     render_hw: Sequence[int] = (480, 640)) -> list[ReferenceFrame]:
    """Frames for a check, from the first source given: DREAM folder, image + K, or a render."""
    if dream:
        return frames_from_dream(dream, robot, count)
    if image:
        if intrinsics is None:
            raise ValueError(f'{image}: an image needs its intrinsics (fx,fy,cx,cy)')
        return [frame_from_image(image, intrinsics)]
    return rendered_frames(robot, count, *render_hw)
