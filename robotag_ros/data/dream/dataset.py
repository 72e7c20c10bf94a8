"""A torch Dataset over one DREAM-format folder: DREAM's synthetic and real sets, and our own.

Returns the training sample dict, unbatched (image, K, joint_angles, T_cam_base, keypoints_3d,
keypoints_2d, mask, depth, has_*), letterboxed to ``image_size`` exactly as the estimator
preprocesses frames (uniform scale + padding, K adjusted), with optional
photometric and crop/scale augmentation (geometry changes update K and keypoints).

Quirks handled:
- Units. ``location_unit='auto'`` (default) decides cm vs m per folder from the robot itself:
  keypoint pairs whose distance forward kinematics keeps (nearly) constant over the joint range
  (e.g. Panda link0-link2, 0.333 m) are measured in the files; the unit that makes the measured
  distances match is taken. Only a robot with no such pair falls back to the folder-name rule
  ('synth' in the path -> cm, else m), with a warning. The decision is logged; ``'cm'``/``'m'``
  override it. A folder whose distances fit neither unit is refused, naming it.
- Names: keypoints and joints are matched by name, never by position (Baxter's arm order differs
  between readers); ``iiwa7_``/``iiwa_``/``lbr_iiwa_`` prefixes are normalised; ``sim_state`` names
  keep ``name.split('/')[-1]``. Extra name maps can be passed.
- Real sets have no ``quaternion_xyzw`` (has_T_cam_base False) and may lack ``sim_state``
  (has_joint_angles False). Intrinsics: ``camera_data.intrinsics`` of the frame if present (our
  per-frame K), else ``_camera_settings.json``.
- A corrupt frame (bad JSON, missing/truncated image, keypoint names that do not match the robot)
  is skipped at the index scan with a warning naming the file and counted in ``skipped``; a frame
  that fails when loaded is replaced by the next good one and counted in ``failed_at_load``.
"""
from __future__ import annotations

import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from robotag_ros.data.dream.format import (CAMERA_SETTINGS_FILE, DEPTH_SUFFIX, FRAME_NAME_RE,
                                           IMAGE_SUFFIXES, MASK_SUFFIX, R_NORMAL_UE, extra_path)
from robotag_ros.data.image_aug import colour_jitter, gaussian_noise, lower_resolution
from robotag_ros.geometry.letterbox import (letterbox_image, plan_crop, plan_letterbox,
                                            warp_image)
from robotag_ros.metrics import GroundTruthFrame

LOG = logging.getLogger(__name__)
_PREFIX_RE = re.compile(r'^(lbr_iiwa_|iiwa7_|iiwa_)')
_UNIT_SCALE_TO_M = {'cm': 0.01, 'm': 1.0}


def normalise_name(name: str) -> str:
    """Name used for matching: last '/' part, robot-family prefixes unified (iiwa7_ -> iiwa_)."""
    return _PREFIX_RE.sub('iiwa_', name.split('/')[-1])


class DreamFrameError(ValueError):
    """A frame that cannot be used; the message names the file."""


def _quat_xyzw_to_matrix(quat) -> np.ndarray:
    x, y, z, w = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _jpeg_is_complete(path: Path) -> bool:
    """Cheap truncation check: a JPEG ends with the EOI marker FF D9."""
    with open(path, 'rb') as stream:
        stream.seek(0, 2)
        if stream.tell() < 4:
            return False
        stream.seek(-2, 2)
        return stream.read(2) == b'\xff\xd9'


def rigid_keypoint_pairs(robot, samples: int = 256, tolerance: float = 0.02,
                         min_distance_m: float = 0.05) -> list[tuple[int, int, float]]:
    """Keypoint pairs (i, j, distance m) whose distance FK keeps within `tolerance` (relative)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        keypoints = robot.keypoints(robot.sample_joint_angles(samples, generator=generator))
    distances = torch.cdist(keypoints, keypoints)  # (S, K, K)
    low, high = distances.min(0).values, distances.max(0).values
    pairs = []
    for i in range(robot.num_keypoints):
        for j in range(i + 1, robot.num_keypoints):
            if low[i, j] > min_distance_m and (high[i, j] - low[i, j]) / low[i, j] < tolerance:
                pairs.append((i, j, float((low[i, j] + high[i, j]) / 2)))
    return pairs


# Pixels kept around the robot's mask when its background is replaced: a mask rendered from
# calibrated labels may sit a few pixels off the robot in the image.
BACKGROUND_MASK_MARGIN_PX = 4


def replace_background(image: np.ndarray, robot_mask: np.ndarray,
                       background: np.ndarray) -> np.ndarray:
    """The robot (HxW bool mask, widened by BACKGROUND_MASK_MARGIN_PX) pasted on another
    background (HxWx3): a recording of one room then teaches the robot's look, not the
    room's."""
    size = 2 * BACKGROUND_MASK_MARGIN_PX + 1
    keep = cv2.dilate(robot_mask.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    return np.where(keep[..., None], image, background)


class DreamDataset(Dataset):
    """One DREAM-format folder as a Dataset of unbatched sample dicts (see module docstring).

    Args:
        root: the folder. robot: a RobotModel (names, joint order, keypoint order, FK for units).
        image_size: (H, W) output size, or None to keep each image's own size.
        location_unit: 'auto' | 'cm' | 'm'.
        augment: photometric jitter + noise + random crop/scale (geometry-consistent).
        keypoint_name_map / joint_name_map: extra {file name: robot name} renames.
        seed: None (default) draws each augmentation from torch's RNG, so it differs every epoch
            and follows torch.manual_seed / DataLoader worker seeding; an int makes it a function
            of (seed, epoch, index), with ``set_epoch`` choosing the epoch.

    Counters (``skipped``, ``failed_at_load``) live in the process that loads the frame: with
    DataLoader workers, load-time failures are counted (and warned about) in the workers.
    """

    def __init__(self, root, robot, image_size=None, location_unit: str = 'auto',
                 augment: bool = False, keypoint_name_map: dict | None = None,
                 joint_name_map: dict | None = None, seed: int | None = None,
                 max_scale_jitter: float = 0.15, robot_crop: 'RobotCrop | None' = None,
                 background_replace_prob: float = 0.0, backgrounds=None,
                 view_labels: bool = True, resolution_jitter_prob: float = 0.0,
                 resolution_min_scale: float = 0.5):
        self.root = Path(root)
        # False for a set seen by one fixed camera: its poses are true, but all show one side
        # (``has_view``; the view head's loss skips such frames).
        self.view_labels = bool(view_labels)
        if not self.root.is_dir():
            raise FileNotFoundError(f'DREAM folder {self.root} does not exist')
        if location_unit not in ('auto', 'cm', 'm'):
            raise ValueError(f"location_unit must be 'auto', 'cm' or 'm', got {location_unit!r}")
        self.robot = robot
        self.image_size = tuple(image_size) if image_size is not None else None
        self.augment, self.seed, self.max_scale_jitter = augment, seed, max_scale_jitter
        self.robot_crop = robot_crop
        # backgrounds(rng, height, width) -> HxWx3 uint8: what the robot is pasted on (with
        # augment, where a frame has a mask) in background_replace_prob of the frames.
        if not 0.0 <= background_replace_prob <= 1.0:
            raise ValueError(f'background_replace_prob must be in [0, 1], got '
                             f'{background_replace_prob}')
        if background_replace_prob > 0 and backgrounds is None:
            raise ValueError('background_replace_prob needs backgrounds (a generator)')
        self.background_replace_prob, self.backgrounds = background_replace_prob, backgrounds
        # With augment, this fraction of samples is shrunk by U(resolution_min_scale, 1) and
        # enlarged back: the robot as a farther camera resolves it (a recording from one
        # camera shows it at one resolution only). Geometry and labels stay as they are.
        if not 0.0 <= resolution_jitter_prob <= 1.0 or not 0.0 < resolution_min_scale <= 1.0:
            raise ValueError('resolution_jitter_prob must be in [0, 1] and resolution_min_scale '
                             f'in (0, 1], got {resolution_jitter_prob}, {resolution_min_scale}')
        self.resolution_jitter_prob = resolution_jitter_prob
        self.resolution_min_scale = resolution_min_scale
        self.epoch = 0
        self._keypoint_map = {normalise_name(k): normalise_name(v)
                              for k, v in (keypoint_name_map or {}).items()}
        self._joint_map = {normalise_name(k): normalise_name(v)
                           for k, v in (joint_name_map or {}).items()}
        self._robot_keypoints = [normalise_name(n) for n in robot.keypoint_names]
        self._robot_joints = [normalise_name(n) for n in robot.joint_names]
        dream_count = robot.description.dream.get('num_keypoints')
        self._extra_keypoints = self._robot_keypoints[dream_count:] if dream_count else []
        self.set_K = self._read_camera_settings()
        self.skipped: list[tuple[str, str]] = []   # (file, reason) found by the index scan
        self.failed_at_load: list[tuple[str, str]] = []  # (file, reason) found by __getitem__
        self.frames = self._scan()
        self.location_unit = self._decide_unit(location_unit)
        self.scale_to_m = _UNIT_SCALE_TO_M[self.location_unit]
        self._fill_missing_keypoints()

    # ----------------------------------------------------------------------------- index scan
    def _read_camera_settings(self) -> np.ndarray | None:
        path = self.root / CAMERA_SETTINGS_FILE
        if not path.exists():
            return None
        try:
            intrinsics = json.loads(path.read_text())['camera_settings'][0]['intrinsic_settings']
            return np.array([[intrinsics['fx'], 0.0, intrinsics['cx']],
                             [0.0, intrinsics['fy'], intrinsics['cy']], [0.0, 0.0, 1.0]])
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise DreamFrameError(f'{path}: unreadable camera settings ({error!r})') from error

    def _skip(self, path: Path, reason: str) -> None:
        warnings.warn(f'DREAM frame skipped: {path}: {reason}', stacklevel=3)
        self.skipped.append((str(path), reason))

    def _image_path(self, json_path: Path) -> Path | None:
        stem = json_path.name[:-len('.json')]
        for suffix in IMAGE_SUFFIXES:
            candidate = json_path.with_name(stem + suffix)
            if candidate.exists():
                return candidate
        return None

    def _scan(self) -> list[dict]:
        frames = []
        for json_path in sorted(self.root.iterdir()):
            if not FRAME_NAME_RE.match(json_path.name):
                continue
            try:
                annotation = json.loads(json_path.read_text())
                record = self._parse(json_path, annotation)
            except (ValueError, KeyError, IndexError, TypeError, OSError) as error:
                self._skip(json_path, str(error))
                continue
            image_path = self._image_path(json_path)
            if image_path is None or image_path.stat().st_size == 0:
                self._skip(json_path, 'image missing or empty')
                continue
            if image_path.suffix == '.jpg' and not _jpeg_is_complete(image_path):
                self._skip(image_path, 'truncated JPEG')
                continue
            record['image_path'] = image_path
            frames.append(record)
        if self.skipped and not frames:
            file, reason = self.skipped[0]
            raise DreamFrameError(f'{self.root}: none of its {len(self.skipped)} frames is usable '
                                  f'for {self.robot.name} (first: {file}: {reason})')
        if self.skipped:
            LOG.warning('%s: skipped %d corrupt frame(s)', self.root, len(self.skipped))
        return frames

    def _parse(self, json_path: Path, annotation: dict) -> dict:
        """Raw labels of one frame in file units (the unit is decided after the scan)."""
        objects = annotation['objects']
        if not objects:
            raise DreamFrameError('no objects')
        obj = objects[0]
        by_name = {}
        for keypoint in obj['keypoints']:
            name = normalise_name(keypoint['name'])
            by_name[self._keypoint_map.get(name, name)] = keypoint
        missing = [n for n in self._robot_keypoints if n not in by_name]
        if any(n not in self._extra_keypoints for n in missing):
            # Only our extra keypoints may be absent (DREAM's own sets lack them): they are
            # filled from forward kinematics where the frame has joints and camera pose.
            raise DreamFrameError(f'{len(obj["keypoints"])} keypoints, missing {missing} of '
                                  f'{self.robot.name}')
        absent = {'location': [np.nan] * 3, 'projected_location': [np.nan] * 2}
        locations = np.array([by_name.get(n, absent)['location']
                              for n in self._robot_keypoints], float)
        pixels = np.array([by_name.get(n, absent)['projected_location']
                           for n in self._robot_keypoints], float)
        if locations.shape != (len(self._robot_keypoints), 3) or pixels.shape[1] != 2:
            raise DreamFrameError(f'keypoint arrays of shape {locations.shape}/{pixels.shape}')
        record = {'json_path': json_path, 'keypoints_file': locations, 'keypoints_2d': pixels,
                  'location_file': np.array(obj['location'], float)}
        if 'quaternion_xyzw' in obj:
            record['R_cam_base'] = _quat_xyzw_to_matrix(obj['quaternion_xyzw']) @ R_NORMAL_UE
        joints = (annotation.get('sim_state') or {}).get('joints') or []
        positions = {}
        for joint in joints:
            name = normalise_name(joint['name'])
            positions[self._joint_map.get(name, name)] = float(joint['position'])
        if positions and all(n in positions for n in self._robot_joints):
            record['joint_angles'] = np.array([positions[n] for n in self._robot_joints])
        intrinsics = (annotation.get('camera_data') or {}).get('intrinsics')
        if intrinsics:
            record['K'] = np.array([[intrinsics['fx'], 0.0, intrinsics['cx']],
                                    [0.0, intrinsics['fy'], intrinsics['cy']], [0, 0, 1.0]])
        elif self.set_K is not None:
            record['K'] = self.set_K
        else:
            raise DreamFrameError(f'no intrinsics: neither camera_data.intrinsics nor '
                                  f'{CAMERA_SETTINGS_FILE} in {self.root}')
        return record

    def _decide_unit(self, requested: str) -> str:
        if requested != 'auto':
            LOG.info('%s: keypoint locations in %s (set by the caller)', self.root, requested)
            return requested
        if not self.frames:
            return 'cm'
        pairs = rigid_keypoint_pairs(self.robot)
        if not pairs:
            unit = 'cm' if 'synth' in str(self.root).lower() else 'm'
            warnings.warn(f'{self.root}: {self.robot.name} has no rigid keypoint pair to measure '
                          f'units by; folder-name rule says {unit}. Pass location_unit to be '
                          'sure.')
            return unit
        ratios = []
        for record in self.frames[:20]:
            points = record['keypoints_file']
            for i, j, distance_m in pairs:
                ratios.append(np.linalg.norm(points[i] - points[j]) / distance_m)
        ratio = float(np.nanmedian(ratios))
        for unit, per_m in (('m', 1.0), ('cm', 100.0)):
            if 0.8 * per_m <= ratio <= 1.25 * per_m:
                LOG.info('%s: keypoint locations in %s (measured %.3f file units per metre on '
                         '%d rigid keypoint pairs)', self.root, unit, ratio, len(pairs))
                return unit
        raise DreamFrameError(f'{self.root}: keypoint distances are {ratio:.3g}x those of '
                              f'{self.robot.name}: neither metres nor centimetres; pass '
                              'location_unit if the robot is right')

    def _T_cam_base(self, record: dict) -> np.ndarray | None:
        """A frame's labelled camera pose (4x4, metres), None for a set without poses."""
        if 'R_cam_base' not in record:
            return None
        T = np.eye(4)
        T[:3, :3] = record['R_cam_base']
        T[:3, 3] = record['location_file'] * self.scale_to_m
        return T

    def _fill_missing_keypoints(self) -> None:
        """Keypoints a file lacks (our extra ones, in DREAM's sets) from forward kinematics where
        the frame has joints and camera pose; otherwise they stay NaN (``keypoints_valid``)."""
        todo = [r for r in self.frames if np.isnan(r['keypoints_2d']).any()
                and 'joint_angles' in r and 'R_cam_base' in r]
        if not todo:
            return
        with torch.no_grad():
            base = self.robot.keypoints(torch.as_tensor(
                np.stack([r['joint_angles'] for r in todo]), dtype=torch.float32)).double().numpy()
        for record, keypoints_base in zip(todo, base):
            T = self._T_cam_base(record)
            camera = keypoints_base @ T[:3, :3].T + T[:3, 3]
            pixels = camera @ record['K'].T
            pixels = pixels[:, :2] / pixels[:, 2:3]
            missing = np.isnan(record['keypoints_2d']).any(1)
            record['keypoints_2d'][missing] = pixels[missing]
            record['keypoints_file'][missing] = camera[missing] / self.scale_to_m

    # -------------------------------------------------------------------------------- loading
    def set_epoch(self, epoch: int) -> None:
        """Epoch used in the augmentation seed when ``seed`` is an int."""
        self.epoch = int(epoch)

    def _augmentation_rng(self, index: int) -> np.random.Generator | None:
        if not self.augment:
            return None
        if self.seed is None:
            return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        return np.random.default_rng([self.seed, self.epoch, index])

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def num_skipped(self) -> int:
        """Corrupt frames found so far (index scan + load time)."""
        return len(self.skipped) + len(self.failed_at_load)

    def __getitem__(self, index: int) -> dict:
        for attempt in range(min(len(self.frames), 16)):
            record = self.frames[(index + attempt) % len(self.frames)]
            try:
                return self._load(record, index)
            except (DreamFrameError, OSError, ValueError, cv2.error) as error:
                warnings.warn(f'DREAM frame replaced: {record["image_path"]}: {error}')
                self.failed_at_load.append((str(record['image_path']), str(error)))
        raise RuntimeError(f'{self.root}: 16 frames in a row failed to load')

    def _read_extra(self, record, suffix, flags):
        path = extra_path(record['json_path'], suffix)   # robotag_extras/, or beside (older)
        if path is None:
            return None
        data = cv2.imread(str(path), flags)
        if data is None:
            raise DreamFrameError(f'{path}: unreadable')
        return data

    def raw_frame(self, index: int) -> dict:
        """The original image (HxWx3 uint8 RGB), its K and the labels in metric units, for
        evaluation through the estimator (no resizing, no augmentation)."""
        record = self.frames[index]
        bgr = cv2.imread(str(record['image_path']), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DreamFrameError(f'{record["image_path"]}: image unreadable')
        truth = GroundTruthFrame(
            joint_angles_rad=record.get('joint_angles'), T_cam_base=self._T_cam_base(record),
            keypoints_3d_m=record['keypoints_file'] * self.scale_to_m,
            keypoints_2d_px=record['keypoints_2d'], image_size_hw=tuple(bgr.shape[:2]))
        return {'image_rgb': np.ascontiguousarray(bgr[..., ::-1]), 'K': record['K'],
                'ground_truth': truth, 'frame': record['json_path'].name}

    def _load(self, record: dict, index: int) -> dict:
        bgr = cv2.imread(str(record['image_path']), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DreamFrameError('image unreadable')
        image = bgr[..., ::-1]
        height, width = image.shape[:2]
        mask = self._read_extra(record, MASK_SUFFIX, cv2.IMREAD_GRAYSCALE)
        depth_mm = self._read_extra(record, DEPTH_SUFFIX, cv2.IMREAD_UNCHANGED)
        for name, extra in (('mask', mask), ('depth', depth_mm)):
            if extra is not None and extra.shape[:2] != (height, width):
                raise DreamFrameError(f'{name} size {extra.shape[:2]} != image {(height, width)}')
        K = torch.as_tensor(record['K'], dtype=torch.float32)
        keypoints_2d = torch.as_tensor(record['keypoints_2d'], dtype=torch.float32)
        rng = self._augmentation_rng(index)
        if rng is not None and mask is not None and self.background_replace_prob > 0 \
                and rng.uniform() < self.background_replace_prob:
            image = replace_background(image, mask > 127, self.backgrounds(
                rng, image.shape[0], image.shape[1]))

        if rng is not None and self.robot_crop is not None and self.image_size is not None \
                and rng.uniform() >= self.robot_crop.full_frame_prob:
            return self._load_robot_crop(record, image, mask, depth_mm, rng)
        # Crop box (geometry augmentation), then letterbox to image_size; K and keypoints follow.
        left, top, crop_w, crop_h = 0, 0, width, height
        if rng is not None and self.max_scale_jitter > 0:
            scale = 1.0 - rng.uniform(0.0, self.max_scale_jitter)
            crop_w, crop_h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
            left = int(rng.integers(0, width - crop_w + 1))
            top = int(rng.integers(0, height - crop_h + 1))
        out_h, out_w = self.image_size if self.image_size is not None else (crop_h, crop_w)
        plan = plan_letterbox((crop_h, crop_w), (out_h, out_w))
        K_cropped = K.clone().double().numpy()
        K_cropped[0, 2] -= left
        K_cropped[1, 2] -= top
        K_new = torch.as_tensor(plan.adjust_intrinsics(K_cropped), dtype=torch.float32)
        keypoints_2d = torch.as_tensor(plan.to_target_px(
            keypoints_2d.double().numpy() - np.array([left, top])), dtype=torch.float32)

        def warp(array, interpolation=None):
            return letterbox_image(np.ascontiguousarray(array[top:top + crop_h,
                                                              left:left + crop_w]),
                                   plan, interpolation=interpolation)

        return self._sample(record, warp(image), warp(mask, cv2.INTER_NEAREST)
                            if mask is not None else None,
                            warp(depth_mm, cv2.INTER_NEAREST) if depth_mm is not None else None,
                            K_new, keypoints_2d, rng)

    def _load_robot_crop(self, record, image, mask, depth_mm, rng) -> dict:
        """The second pass's view in training: a square box around the labelled keypoints with
        random size and offset (inference boxes come from the first pass, never from labels)."""
        crop = self.robot_crop
        keypoints = record['keypoints_2d']
        low, high = np.nanmin(keypoints, 0), np.nanmax(keypoints, 0)
        size = max(float((high - low).max()), crop.min_size_px) * rng.uniform(*crop.scale)
        centre = (low + high) / 2 + rng.uniform(-crop.shift, crop.shift, 2) * size
        plan = plan_crop(image.shape[:2], centre, size, self.image_size)
        K_new = torch.as_tensor(plan.adjust_intrinsics(record['K']), dtype=torch.float32)
        keypoints_2d = torch.as_tensor(plan.to_target_px(keypoints), dtype=torch.float32)
        return self._sample(record, warp_image(np.ascontiguousarray(image), plan),
                            warp_image(mask, plan, nearest=True) if mask is not None else None,
                            warp_image(depth_mm, plan, nearest=True)
                            if depth_mm is not None else None, K_new, keypoints_2d, rng)

    def _sample(self, record, image, mask, depth_mm, K_new, keypoints_2d, rng) -> dict:
        """The sample dict from an image (and mask, depth) already placed in the output frame."""
        out_h, out_w = image.shape[:2]
        if rng is not None and self.resolution_jitter_prob > 0 \
                and rng.uniform() < self.resolution_jitter_prob:
            image = lower_resolution(image, rng.uniform(self.resolution_min_scale, 1.0))
        if rng is not None:
            image = colour_jitter(image, rng, (0.7, 1.3), (0.7, 1.3), (0.7, 1.3), (-10.0, 10.0))
            if rng.uniform() < 0.5:
                image = gaussian_noise(image, rng, rng.uniform(0.0, 0.03))
        valid = torch.as_tensor(np.isfinite(record['keypoints_2d']).all(1))
        keypoints_3d = np.nan_to_num(record['keypoints_file'] * self.scale_to_m)
        sample = {
            'image': torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255,
            'K': K_new,
            'keypoints_2d': torch.nan_to_num(keypoints_2d),
            'keypoints_valid': valid,
            'keypoints_3d': torch.as_tensor(keypoints_3d, dtype=torch.float32),
            'joint_angles': torch.zeros(self.robot.num_joints),
            'T_cam_base': torch.zeros(4, 4),
            'mask': torch.zeros(1, out_h, out_w),
            'depth': torch.zeros(1, out_h, out_w),
            'has_keypoints_2d': torch.tensor(True), 'has_keypoints_3d': torch.tensor(True),
            'has_joint_angles': torch.tensor('joint_angles' in record),
            'has_T_cam_base': torch.tensor('R_cam_base' in record),
            'has_view': torch.tensor(self.view_labels and 'R_cam_base' in record),
            'has_mask': torch.tensor(mask is not None),
            'has_depth': torch.tensor(depth_mm is not None),
            'frame': record['json_path'].name,
        }
        if 'joint_angles' in record:
            sample['joint_angles'] = torch.as_tensor(record['joint_angles'], dtype=torch.float32)
        if 'R_cam_base' in record:
            sample['T_cam_base'] = torch.as_tensor(self._T_cam_base(record), dtype=torch.float32)
        if mask is not None:
            sample['mask'][0] = torch.from_numpy(mask > 127).float()
        if depth_mm is not None:
            sample['depth'][0] = torch.from_numpy(depth_mm.astype(np.float32) / 1000.0)
        return sample


@dataclass(frozen=True)
class RobotCrop:
    """How training draws robot-centred crops: box side = the keypoints' extent (at least
    ``min_size_px``) times U(``scale``), centre shifted by U(±``shift``) box sides; a fraction
    ``full_frame_prob`` of samples stays whole (letterboxed), as the first pass sees frames."""

    scale: tuple[float, float] = (1.15, 1.6)
    shift: float = 0.08
    min_size_px: float = 64.0
    full_frame_prob: float = 0.2
