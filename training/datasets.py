"""Datasets a training run reads: labelled DREAM-format folders (stage 1), unlabelled rosbag2
files and image folders (stage 2), and the collate function that batches them."""
from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from robotag_ros.data.bags.bag_images import BagImageDataset
from robotag_ros.data.bags.unlabelled import ImageFolderDataset
from robotag_ros.data.dream.dataset import DreamDataset, RobotCrop
from robotag_ros.data.synthetic.backgrounds import random_background
from robotag_ros.data.synthetic.dr_config import BackgroundConfig
from robotag_ros.finetune.buffer import BufferDataset, FrameBuffer
from robotag_ros.training.config import TrainConfig


def collate(samples: list[dict]) -> dict:
    """Stack a list of sample dicts; non-tensor fields (names, paths) become lists."""
    batch = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        batch[key] = torch.stack(values) if torch.is_tensor(values[0]) else values
    return batch


def _cap(dataset: Dataset, max_frames: int) -> Dataset:
    return Subset(dataset, range(min(max_frames, len(dataset)))) if max_frames else dataset


def dream_dataset(folder: str, robot, config: TrainConfig, augment: bool) -> Dataset:
    crop = RobotCrop() if config.data.robot_crop and augment else None
    # A seeded dataset draws the same views for the same (epoch, index): the trunk cache's
    # views are reproducible and a resumed run sees what the killed one would have.
    seed = config.seed if config.data.cache_trunk else None
    single_camera = {Path(path).resolve() for path in config.data.single_camera}
    return _cap(DreamDataset(folder, robot, image_size=tuple(config.data.image_size),
                             augment=augment, robot_crop=crop, seed=seed,
                             background_replace_prob=config.data.background_replace_prob,
                             backgrounds=partial(random_background, config=BackgroundConfig()),
                             view_labels=Path(folder).resolve() not in single_camera,
                             resolution_jitter_prob=config.data.resolution_jitter_prob,
                             resolution_min_scale=config.data.resolution_min_scale),
                config.data.max_frames)


def buffer_dataset(folder: str, image_size_hw: tuple, sizes: tuple) -> Dataset:
    """The training (not held-out) frames of an online frame buffer, read-only."""
    if not Path(folder).is_dir():
        raise FileNotFoundError(f'frame buffer not found: {folder}')
    training_frames, _ = FrameBuffer(folder).split()
    return BufferDataset(training_frames, image_size_hw, *sizes)


def fingerprint_folders(paths: list[str]) -> str:
    """A cheap fingerprint of the data a run read: file names, sizes and mtimes."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        root = Path(path)
        files = sorted(root.rglob('*')) if root.is_dir() else [root]
        for file in files:
            try:
                stat = file.stat() if file.is_file() else None
            except FileNotFoundError:   # a frame buffer evicts files while we read
                stat = None
            if stat is not None:
                digest.update(f'{file.relative_to(root.parent)}:{stat.st_size}:'
                              f'{int(stat.st_mtime)}'.encode())
    return digest.hexdigest()[:16]


def build_train_dataset(config: TrainConfig, robot) -> tuple[Dataset, str]:
    """Stage 1: the labelled folders; stage 2: images from bags and image folders."""
    data = config.data
    if config.stage == 1:
        if not data.train:
            raise ValueError('stage 1 needs data.train: one or more DREAM-format folders')
        parts = [dream_dataset(folder, robot, config, augment=data.augment)
                 for folder in data.train]
        sources = list(data.train)
    else:
        sizes = (robot.num_joints, robot.num_keypoints)
        K = None if data.intrinsics is None else np.asarray(data.intrinsics, dtype=np.float64)
        parts = [BagImageDataset(bag, data.image_topic, tuple(data.image_size), *sizes,
                                 camera_info_topic=data.camera_info_topic, K=K,
                                 max_frames=data.max_frames or None) for bag in data.bags]
        parts += [_cap(ImageFolderDataset(folder, K, tuple(data.image_size), *sizes),
                       data.max_frames) for folder in data.image_dirs]
        parts += [_cap(buffer_dataset(folder, tuple(data.image_size), sizes), data.max_frames)
                  for folder in data.buffer_dirs]
        # Stage 2 may also read DREAM folders, labels ignored (has_* set False by the loss).
        parts += [dream_dataset(folder, robot, config, augment=data.augment)
                  for folder in data.train]
        sources = list(data.bags) + list(data.image_dirs) + list(data.buffer_dirs) \
            + list(data.train)
        if not parts:
            raise ValueError('stage 2 needs data.bags, data.image_dirs, data.buffer_dirs or '
                             'data.train')
    for part, source in zip(parts, sources):
        if len(part) == 0:   # checked here: an empty sampler fails inside the DataLoader
            raise ValueError(f'{source}: no training frames in it (the training set would be '
                             'empty)')
    dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    return dataset, fingerprint_folders(sources)


def build_val_datasets(config: TrainConfig, robot) -> dict[str, Dataset]:
    """Held-out folders at their original size: evaluation letterboxes frames itself, as the
    node does (``max_eval_frames`` caps how many are scored)."""
    return {Path(folder).name: DreamDataset(folder, robot, image_size=None, augment=False)
            for folder in config.data.val}
