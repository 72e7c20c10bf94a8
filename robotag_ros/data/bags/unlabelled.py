"""Unlabelled training samples (stage 2): an image and its intrinsics, letterboxed exactly as the
estimator preprocesses them, with every label absent; and a folder-of-images source."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from robotag_ros.geometry.letterbox import letterbox_image, plan_letterbox

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def letterbox_frame(image_rgb: np.ndarray, K: np.ndarray,
                    image_size_hw: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(HxWx3 uint8, 3x3 K) -> the network-size image and its intrinsics (as the estimator)."""
    plan = plan_letterbox(image_rgb.shape[:2], image_size_hw)
    return letterbox_image(image_rgb, plan), plan.adjust_intrinsics(K).astype(np.float32)


def unlabelled_sample(image_rgb: np.ndarray, K: np.ndarray, num_joints: int,
                      num_keypoints: int) -> dict:
    """The training batch dict for an already letterboxed image: labels zero, has_* False."""
    height, width = image_rgb.shape[:2]
    absent = torch.tensor(False)
    return {
        'image': torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).float() / 255,
        'K': torch.as_tensor(K, dtype=torch.float32),
        'joint_angles': torch.zeros(num_joints), 'T_cam_base': torch.zeros(4, 4),
        'keypoints_3d': torch.zeros(num_keypoints, 3),
        'keypoints_2d': torch.zeros(num_keypoints, 2),
        'mask': torch.zeros(1, height, width), 'depth': torch.zeros(1, height, width),
        'has_joint_angles': absent, 'has_T_cam_base': absent, 'has_view': absent,
        'has_keypoints_3d': absent, 'has_keypoints_2d': absent, 'has_mask': absent,
        'has_depth': absent,
    }


class ImageFolderDataset(torch.utils.data.Dataset):
    """Every image in a folder (sorted), one camera K for all, as unlabelled samples."""

    def __init__(self, folder: str | os.PathLike, K, image_size_hw: Sequence[int],
                 num_joints: int, num_keypoints: int):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f'image folder not found: {self.folder}')
        if K is None:
            raise ValueError(f'{self.folder}: an image folder needs intrinsics (data.intrinsics)')
        self.K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        self.image_size_hw = tuple(int(v) for v in image_size_hw)
        self.num_joints, self.num_keypoints = num_joints, num_keypoints
        self.paths = sorted(p for p in self.folder.iterdir()
                            if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise ValueError(f'{self.folder}: no images ({", ".join(IMAGE_SUFFIXES)})')
        self.unreadable: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        for attempt in range(min(16, len(self.paths))):
            path = self.paths[(index + attempt) % len(self.paths)]
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is not None:
                image, K = letterbox_frame(bgr[..., ::-1], self.K, self.image_size_hw)
                return unlabelled_sample(image, K, self.num_joints, self.num_keypoints)
            self.unreadable.append(str(path))   # skipped and counted, never stops an epoch
        raise RuntimeError(f'{self.folder}: 16 images in a row are unreadable')
