"""The CPU recipe's data path: the frozen trunk runs once per training view, not once per step.

With an ImageNet-pretrained trunk kept frozen, a training step only needs the trunk's outputs
for its crop. ``build_trunk_cache`` draws ``views_per_frame`` augmented views of every frame
(robot crops with random size/offset, colour jitter; see ``DreamDataset``), runs the trunk on
them in inference mode and keeps the outputs (fp16) and labels as numpy files under
``cache_dir``; training then reads them as a Dataset. On a two-core CPU the trunk is ~80% of a
full forward-backward, so a step over cached views is several times cheaper, and a
killed run resumes with its cache (the folder is keyed by the data, views and model).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from robotag_ros.atomic_io import atomic_write_text
from robotag_ros.training.datasets import collate

# Labels a cached view keeps (the sample keys of DreamDataset, minus the image).
LABEL_KEYS = ('K', 'keypoints_2d', 'keypoints_valid', 'keypoints_3d', 'joint_angles',
              'T_cam_base', 'has_keypoints_2d', 'has_keypoints_3d', 'has_joint_angles',
              'has_T_cam_base', 'has_view', 'has_mask', 'has_depth')
DONE_FILE = 'cache.json'


class TrunkCache(Dataset):
    """Cached trunk outputs (``trunk_0..3``), labels and depth-grid mask/depth, as samples."""

    def __init__(self, folder: Path):
        meta = json.loads((folder / DONE_FILE).read_text())
        self.image_hw = tuple(meta['image_hw'])
        self.arrays = {name: np.load(folder / f'{name}.npy', mmap_mode='r')
                       for name in meta['arrays']}
        self.length = int(meta['length'])

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        sample = {}
        for name, array in self.arrays.items():
            value = torch.from_numpy(np.array(array[index]))
            sample[name] = value.float() if value.dtype == torch.float16 else value
        return sample


def cache_key(dataset_fingerprint: str, views_per_frame: int, image_hw, model_config: dict,
              seed: int, keypoint_names) -> str:
    """The cache folder's name: everything that changes its contents (the labels follow the
    robot's keypoint list)."""
    text = json.dumps([dataset_fingerprint, views_per_frame, list(image_hw),
                       model_config.get('backbone_2d'), model_config.get('pretrained_2d'),
                       model_config.get('depth_stride'), seed, list(keypoint_names)],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@torch.inference_mode()
def build_trunk_cache(model, dataset, folder: Path, views_per_frame: int, image_hw,
                      device: torch.device, batch_size: int = 32,
                      num_workers: int = 2) -> TrunkCache:
    """Fill ``folder`` with the trunk's outputs for ``views_per_frame`` views of each frame
    (a finished folder is reused as it is)."""
    folder = Path(folder)
    if (folder / DONE_FILE).is_file():
        return TrunkCache(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backbone = model.backbone_2d.inference_copy()
    total = len(dataset) * views_per_frame
    depth_hw = model.depth_grid_hw(tuple(image_hw))
    arrays: dict[str, np.lib.format.open_memmap] = {}

    def store(name: str, values: torch.Tensor, start: int) -> None:
        values = values.cpu().contiguous()
        if values.is_floating_point() and values.dim() >= 4:
            values = values.half()     # feature maps and dense labels: fp16 halves the RAM
        if name not in arrays:
            arrays[name] = np.lib.format.open_memmap(
                folder / f'{name}.npy', mode='w+', dtype=values.numpy().dtype,
                shape=(total,) + tuple(values.shape[1:]))
        arrays[name][start:start + len(values)] = values.numpy()

    position = 0
    with tqdm(total=total, desc='trunk cache', dynamic_ncols=True) as bar:
        for view in range(views_per_frame):
            if hasattr(dataset, 'set_epoch'):
                dataset.set_epoch(view)
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                num_workers=num_workers, collate_fn=collate)
            for batch in loader:
                image = batch['image'].to(device)
                taps = backbone.trunk_features(model.normalise(image).contiguous(
                    memory_format=torch.channels_last))
                for level, tap in enumerate(taps):
                    store(f'trunk_{level}', tap, position)
                for key in LABEL_KEYS:
                    store(key, batch[key], position)
                # Mask and depth on the depth grid, as the losses compare them.
                store('mask', F.adaptive_avg_pool2d(batch['mask'], depth_hw), position)
                store('depth', F.interpolate(batch['depth'], size=depth_hw, mode='nearest'),
                      position)
                position += len(image)
                bar.update(len(image))
    for array in arrays.values():
        array.flush()
    atomic_write_text(folder / DONE_FILE, json.dumps(
        {'length': position, 'image_hw': list(image_hw), 'arrays': sorted(arrays)}))
    return TrunkCache(folder)
