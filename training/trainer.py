"""The training loop for both of the paper's stages, single-process or under torchrun (DDP).

Stage 1: supervised (eq. 20) + alignment (eq. 19) losses on labelled synthetic frames.
Stage 2: alignment losses only, on unlabelled images (rosbag2 files or image folders).
"""
from __future__ import annotations

import gc
import logging
import math
import random
import shutil
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from robotag_ros.geometry import make_transform
from robotag_ros.inference.loop_closing import LoopClosingConfig, close_loops
from robotag_ros.losses import TAGLoss
from robotag_ros.losses.supervised import heatmap_cross_entropy, keypoint_head_losses, masked_mean
from robotag_ros.model import build_model, load_model_config
from robotag_ros.model.artifact import (Sidecar, artifact_paths, load_sidecar,
                                        load_weights, save_artifact)
from robotag_ros.robot import load_robot
from robotag_ros.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from robotag_ros.training.config import (TrainConfig, config_hash, config_to_dict,
                                         write_run_metadata)
from robotag_ros.training.datasets import build_train_dataset, build_val_datasets, collate
from robotag_ros.training.distributed import (DistInfo, all_reduce_mean, init_distributed,
                                              shutdown_distributed)
from robotag_ros.training.evaluate import best_joint_source, evaluate_model
from robotag_ros.training.feature_cache import build_trunk_cache, cache_key
from robotag_ros.training.overlays import overlay_grid

log = logging.getLogger(__name__)
LAST_CHECKPOINT = 'checkpoint_last.pt'


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batch_to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


def grow_into(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]
              ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``source`` weights fitted to a model with more keypoints: where a tensor of ``target``
    is larger than its ``source`` namesake along some axes (heatmap channels, per-keypoint
    features: keypoints are appended at the end of the robot's list), the source fills the
    leading block and the rest keeps the target's initialisation. Returns the state to load
    and the names grown; a tensor smaller than its source is an error (another model)."""
    merged, grown = dict(source), []
    for name, value in source.items():
        wanted = target.get(name)
        if wanted is None or wanted.shape == value.shape:
            continue
        smaller = any(w < v for w, v in zip(wanted.shape, value.shape))
        if wanted.dim() != value.dim() or smaller:
            raise CheckpointError(f'init_from: {name} has shape {tuple(value.shape)}, this model '
                                  f'{tuple(wanted.shape)}: another model config?')
        block = wanted.clone()
        block[tuple(slice(0, size) for size in value.shape)] = value
        merged[name] = block
        grown.append(name)
    return merged, grown


def _training_totals(record: dict) -> dict[str, float]:
    """Wall minutes and samples that a checkpoint's or sidecar's training record accounts for:
    its ``total_*`` when it started from other weights, else its own."""
    return {key: float(record.get(f'total_{key}', record.get(key, 0.0)) or 0.0)
            for key in ('wall_minutes', 'samples_seen')}


class Trainer:
    """Builds the robot, model, data and optimiser from a TrainConfig and runs the epochs."""

    def __init__(self, config: TrainConfig, resume: bool = False,
                 dist_info: Optional[DistInfo] = None):

        self.config = config
        self.started = time.time()   # wall time from here (trunk cache included) to the artifact
        self.info = dist_info or init_distributed(config.device)
        self.run_dir = Path(config.run_dir)
        seed_everything(config.seed + self.info.rank)

        self.robot = load_robot(config.robot)
        self.model_config = load_model_config(config.model, config.model_overrides)
        self.model = build_model(self.robot, self.model_config).to(self.info.device)
        self.criterion = TAGLoss(self.model.graph, self.model_config, robot=self.robot)
        self.supervised = config.stage == 1

        if config.freeze_trunk and hasattr(self.model.backbone_2d, 'freeze_trunk'):
            self.model.backbone_2d.freeze_trunk(config.trained_trunk_stages)
        elif config.fix_trunk_batchnorm and hasattr(self.model.backbone_2d,
                                                    'fix_trunk_batchnorm'):
            self.model.backbone_2d.fix_trunk_batchnorm()
        if self.info.device.type == 'cpu':
            # oneDNN's depthwise convolutions want NHWC weights: a whole-trunk keypoint step
            # (256x256, batch 32) takes 3.4 s instead of 6.1 on 2 cores (docs/model-history.md).
            self.model.to(memory_format=torch.channels_last)
        self.train_set, fingerprint = build_train_dataset(config, self.robot)
        self.image_hw = tuple(config.data.image_size)
        if config.data.cache_trunk:
            self.train_set = self._trunk_cache(fingerprint)
        self.val_sets = build_val_datasets(config, self.robot) if self.info.is_main else {}
        self.sampler = DistributedSampler(self.train_set, num_replicas=self.info.world_size,
                                          rank=self.info.rank, shuffle=True, seed=config.seed,
                                          drop_last=True) if self.info.distributed else None
        self.loader = DataLoader(
            self.train_set, batch_size=config.optim.batch_size, sampler=self.sampler,
            shuffle=self.sampler is None, drop_last=True, collate_fn=collate,
            num_workers=config.data.num_workers, pin_memory=self.info.device.type == 'cuda',
            persistent_workers=config.data.num_workers > 0)
        if len(self.loader) == 0:
            raise ValueError(f'the training set has {len(self.train_set)} frames, fewer than one '
                             f'batch of {config.optim.batch_size} per process')

        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=config.optim.lr,
                                           weight_decay=config.optim.weight_decay)
        self.start_epoch, self.epoch, self.step = 0, 0, 0
        # Training that made the starting weights (init_from), counted into the totals.
        self.inherited = _training_totals({})
        # Which branch's joints the starting artifact reports: kept when no held-out set
        # measures it anew (fine-tuning on unlabelled or self-labelled frames).
        self.inherited_joint_source = None
        if resume and (self.run_dir / LAST_CHECKPOINT).is_file():
            self._resume(self.run_dir / LAST_CHECKPOINT)
        elif config.init_from:
            self._init_weights(config.init_from)

        self.network = self.model
        if self.info.distributed:
            self.network = DistributedDataParallel(
                self.model, device_ids=[self.info.device.index]
                if self.info.device.type == 'cuda' else None)
        self.use_amp = config.optim.amp and self.info.device.type == 'cuda'
        self.writer = None
        if self.info.is_main:
            write_run_metadata(config, self.run_dir, fingerprint)
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.run_dir / 'tensorboard'))

    def _trunk_cache(self, fingerprint: str):
        """The frozen trunk's outputs for every training view, built once (feature_cache.py)."""
        backbone = self.model.backbone_2d
        if not hasattr(backbone, 'trunk_features') or self.model_config.backbone_3d != 'shared':
            raise ValueError('data.cache_trunk needs an EfficientNet backbone_2d and '
                             'backbone_3d: shared (the cache holds the only image features)')
        backbone.freeze_trunk(self.config.trained_trunk_stages)
        key = cache_key(f'{fingerprint}:{len(self.train_set)}',
                        self.config.data.cache_views_per_frame, self.image_hw,
                        self.model_config.to_dict(), self.config.seed,
                        self.robot.keypoint_names)
        folder = Path(self.config.data.cache_dir) / key
        if self.info.is_main:
            print(f'[train] trunk cache: {folder}')
        return build_trunk_cache(self.model, self.train_set, folder,
                                 self.config.data.cache_views_per_frame, self.image_hw,
                                 self.info.device, batch_size=self.config.optim.batch_size,
                                 num_workers=self.config.data.num_workers)

    # -- weights ------------------------------------------------------------------------------
    def _resume(self, path: Path) -> None:
        checkpoint = load_checkpoint(path, map_location=self.info.device)
        self.model.load_state_dict(checkpoint['model'])
        self.optimizer.load_state_dict(checkpoint['optimizer'])
        self.start_epoch, self.step = checkpoint['epoch'] + 1, checkpoint['step']
        # Wall time continues across resumes (a run resumed several times reports its total).
        extra = checkpoint.get('extra') or {}
        self.started -= 60.0 * float(extra.get('wall_minutes', 0.0))
        # This run's own part of the totals is counted again as it continues.
        self.inherited = {key: value - float(extra.get(key, 0.0) or 0.0)
                          for key, value in _training_totals(extra).items()}
        if self.info.is_main:
            print(f'[train] resumed from {path} at epoch {self.start_epoch}, step {self.step}')

    def _init_weights(self, source: str) -> None:
        """Start from an inference artifact or a training checkpoint (e.g. stage 1 -> stage 2)."""
        if artifact_paths(source)[0].is_file():
            state = load_weights(source)
            sidecar = load_sidecar(source)
            record = sidecar.training
            # Its weights go with its input statistics: trained on, and recorded, as they were.
            self.model.set_preprocessing(sidecar.preprocessing)
        else:
            try:
                checkpoint = load_checkpoint(source, map_location='cpu')
            except CheckpointError as error:
                raise CheckpointError(f'init_from={source}: neither an artifact nor a '
                                      f'checkpoint: {error}') from error
            state, record = checkpoint['model'], checkpoint.get('extra') or {}
        # The training that made the starting weights counts toward the artifact's totals.
        self.inherited = _training_totals(record)
        self.inherited_joint_source = record.get('joint_source')
        state, grown = grow_into(self.model.state_dict(), state)
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if unexpected:
            raise CheckpointError(f'init_from={source}: weights this model does not have '
                                  f'({", ".join(unexpected[:4])}, ...): another model config?')
        if self.info.is_main:
            # Modules the source lacks (a neck block added to a trained model) start fresh.
            fresh = sorted({key.rsplit('.', 2)[0] for key in missing})
            print(f'[train] initialised weights from {source}'
                  + (f'; new, from their initialisation: {", ".join(fresh)}' if fresh else '')
                  + (f'; grown (keypoints added): {", ".join(grown)}' if grown else ''))

    # -- loop ---------------------------------------------------------------------------------
    def learning_rate(self) -> float:
        """Linear warm-up over the first steps, then the paper's constant decay per epoch."""
        optim = self.config.optim
        warmup = min(1.0, (self.step + 1) / optim.warmup_steps) if optim.warmup_steps > 0 else 1.0
        return optim.lr * optim.lr_decay_per_epoch ** self.epoch * warmup

    def train_step(self, batch: dict) -> dict:
        batch = batch_to_device(batch, self.info.device)
        for group in self.optimizer.param_groups:
            group['lr'] = self.learning_rate()
        trunk = [batch[f'trunk_{level}'] for level in range(4)] if 'trunk_0' in batch \
            else None   # cached trunk outputs (data.cache_trunk)
        if self.config.heads == 'keypoints':
            return self._optimise(self._keypoint_losses(batch, trunk))
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=self.use_amp):
            if trunk is not None:
                outputs = self.network(None, batch['K'], trunk_features=trunk,
                                       image_hw=self.image_hw)
            else:
                outputs = self.network(batch['image'], batch['K'])
        # Losses in fp32: Chamfer and FK terms lose too much in bf16.
        losses = self.criterion(outputs, batch, supervised=self.supervised)
        if not self.supervised and self.config.fit_keypoints_weight > 0:
            losses = self._with_fit_keypoints(losses, outputs, batch)
        losses = self._optimise(losses)
        if self.info.is_main and self.step % self.config.overlay_every_steps == 0 \
                and 'image' in batch:   # cached-trunk batches hold no image to draw on
            self._log_overlay(batch, outputs)
        return losses

    def _keypoint_losses(self, batch: dict, trunk) -> dict:
        """heads=keypoints: the heatmap cross-entropy, and the view and keypoint depth heads'
        terms where the model has them, on the neck and those heads alone."""
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=self.use_amp):
            outputs = self.model.keypoint_outputs(batch.get('image'), trunk)
        config = self.model_config
        return keypoint_head_losses(outputs, batch, self.robot, config.loss.extra, self.image_hw,
                                    config.view_azimuth_bins, config.keypoint_depth_head)

    def _with_fit_keypoints(self, losses: dict, outputs, batch: dict) -> dict:
        """Stage 2's anchor for the heatmaps: the loop closed at inference as their target.

        The robot prior is fitted to the network's own keypoints (what the estimator reports);
        where the fit explains them well (mean residual under fit_keypoints_max_residual_px) its
        projected keypoints, a whole consistent robot, become the heatmaps' cross-entropy
        target. The alignment losses alone move the neck the heatmaps read with nothing that
        keeps the keypoints right.
        """
        with torch.no_grad():
            states = {name: getattr(outputs, name).detach().float() for name in (
                'keypoints_2d_peak', 'keypoints_2d_confidence', 'joint_angles_2d',
                'joint_angles_3d')}
            states['joint_angles'] = states['joint_angles_2d']
            states['T_cam_base'] = make_transform(outputs.rotation.detach().float(),
                                                  outputs.translation.detach().float())
            fitted = close_loops(states, self.robot, batch['K'].float(), LoopClosingConfig(),
                                 lifter=self.model.keypoint_lifter)
            trusted = fitted['fit_residual_px'] < self.config.fit_keypoints_max_residual_px
        per_frame = heatmap_cross_entropy(outputs.keypoints_2d_heatmaps,
                                          fitted['keypoints_2d_final'], self.image_hw)
        anchor = masked_mean(per_frame, trusted.float())
        losses = dict(losses, fit_keypoints=anchor,
                      fit_keypoints_trusted=trusted.float().mean())
        losses['total'] = losses['total'] + self.config.fit_keypoints_weight * anchor
        return losses

    def _optimise(self, losses: dict) -> dict:
        """One optimiser step on ``losses['total']``; the detached losses and gradient norm."""
        total = losses['total']
        if not torch.isfinite(total):
            raise FloatingPointError(f'non-finite loss at step {self.step}: '
                                     f'{ {k: float(v) for k, v in losses.items()} }')
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.info.distributed and self.config.heads == 'keypoints':
            # The heatmap-only forward bypasses DDP's wrapper: average its gradients here.
            for parameter in self.model.parameters():
                if parameter.grad is not None:
                    torch.distributed.all_reduce(parameter.grad)
                    parameter.grad /= self.info.world_size
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                   self.config.optim.grad_clip_norm)
        self.optimizer.step()
        self.step += 1
        losses = {k: v.detach() for k, v in losses.items()}
        losses['grad_norm'] = grad_norm.detach()
        return losses

    def _log_overlay(self, batch: dict, outputs) -> None:
        image = overlay_grid(batch, outputs, self.robot, max_images=4)
        self.writer.add_image('train/overlay', image, self.step, dataformats='HWC')

    def _out_of_time(self, started: float) -> bool:
        budget = self.config.time_budget_minutes
        out = budget > 0 and (time.time() - started) / 60.0 >= budget
        if self.info.distributed:  # every rank must stop at the same epoch
            flag = torch.tensor(float(out), device=self.info.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out = bool(flag.item())
        return out

    def train(self) -> dict:
        config = self.config
        history, run_started = {}, time.time()
        self.last_metrics = {}
        for epoch in range(self.start_epoch, config.optim.epochs):
            self.epoch = epoch
            self.model.train()
            if self.sampler is not None:
                self.sampler.set_epoch(epoch)
            bar = tqdm(self.loader, desc=f'epoch {epoch + 1}/{config.optim.epochs}',
                       disable=not self.info.is_main, dynamic_ncols=True)
            sums, count, started = {}, 0, time.time()
            for index, batch in enumerate(bar):
                if config.max_steps_per_epoch and index >= config.max_steps_per_epoch:
                    break
                losses = self.train_step(batch)
                count += 1
                for key, value in losses.items():
                    sums[key] = sums.get(key, 0.0) + float(value)
                if self.info.is_main and self.step % config.log_every_steps == 0:
                    for key, value in losses.items():
                        self.writer.add_scalar(f'train/{key}', float(value), self.step)
                    self.writer.add_scalar('train/lr', self.optimizer.param_groups[0]['lr'],
                                           self.step)
                bar.set_postfix(loss=f"{float(losses['total']):.4f}")
            means = {k: float(all_reduce_mean(torch.tensor(v / max(count, 1)), self.info))
                     for k, v in sums.items()}
            history[epoch] = means
            if self.info.is_main:
                print(f"[train] epoch {epoch + 1}: loss {means.get('total', math.nan):.5f} "
                      f'({count} steps, {time.time() - started:.1f} s)')
                self._save_checkpoint(epoch)
                if self.val_sets and (epoch + 1) % config.eval_every_epochs == 0:
                    self.last_metrics = self._evaluate(epoch)
            if self.info.distributed:
                torch.distributed.barrier()
            if self._out_of_time(run_started):
                if self.info.is_main:
                    print(f'[train] time budget of {config.time_budget_minutes} min reached '
                          f'after epoch {epoch + 1}')
                break
        self.ranks_agree = self._check_ranks_agree()
        if self.info.is_main:
            if self.val_sets and not self.last_metrics:
                self.last_metrics = self._evaluate(config.optim.epochs - 1)
            self.export_artifact()
        if self.info.distributed:  # leave together: no rank tears down while rank 0 still writes
            torch.distributed.barrier()
        return history

    def weights_digest(self) -> torch.Tensor:
        """Two float64 sums over every parameter: equal on all ranks unless DDP desynced."""
        flat = torch.cat([p.detach().double().flatten() for p in self.model.parameters()])
        weights = torch.arange(flat.numel(), device=flat.device, dtype=torch.float64) % 7 + 1
        return torch.stack((flat.sum(), (flat * weights).sum()))

    def _check_ranks_agree(self) -> bool:
        """After training every rank must hold the same weights; say so, and fail loudly if not."""
        digest = self.weights_digest()
        if not self.info.distributed:
            return True
        gathered = [torch.zeros_like(digest) for _ in range(self.info.world_size)]
        torch.distributed.all_gather(gathered, digest)
        agree = all(torch.allclose(g, gathered[0], rtol=1e-9, atol=1e-9) for g in gathered)
        if self.info.is_main:
            print(f'[train] weights on all {self.info.world_size} ranks agree: {agree} '
                  f'(digest {gathered[0].tolist()})')
        if not agree:
            raise RuntimeError(
                f'DDP ranks hold different weights: {[g.tolist() for g in gathered]}')
        return agree

    @property
    def wall_minutes(self) -> float:
        return (time.time() - self.started) / 60.0

    @property
    def samples_seen(self) -> int:
        return self.step * self.config.optim.batch_size * self.info.world_size

    def progress(self) -> dict:
        """This run's wall time and samples, and the totals with the training it started from."""
        own = {'wall_minutes': self.wall_minutes, 'samples_seen': self.samples_seen}
        return dict(own, **{f'total_{key}': value + self.inherited[key]
                            for key, value in own.items()})

    def _save_checkpoint(self, epoch: int) -> None:
        progress = self.progress()
        save_checkpoint(self.run_dir / LAST_CHECKPOINT, model_state=self.model.state_dict(),
                        optimizer_state=self.optimizer.state_dict(), epoch=epoch,
                        step=self.step, config=config_to_dict(self.config), extra=progress)
        if self.config.keep_epoch_checkpoints:  # the learning curve's points
            shutil.copyfile(self.run_dir / LAST_CHECKPOINT,
                            self.run_dir / f'checkpoint_epoch{epoch + 1:03d}.pt')

    def _evaluate(self, epoch: int) -> dict:
        results = {}
        for name, dataset in self.val_sets.items():
            metrics = evaluate_model(self.model, self.robot, dataset,
                                     tuple(self.config.data.image_size),
                                     batch_size=self.config.optim.batch_size,
                                     max_frames=self.config.max_eval_frames)
            results[name] = metrics
            for key in ('add_auc', 'mean_joint_error_deg', 'camera_translation_error_mm',
                        'camera_rotation_error_deg'):
                if key in metrics:
                    self.writer.add_scalar(f'val_{name}/{key}', metrics[key], self.step)
            print(f"[eval] {name}: ADD AUC {metrics.get('add_auc', math.nan):.1f}, joint error "
                  f"{metrics.get('mean_joint_error_deg', math.nan):.2f} deg")
        self.model.train()
        return results

    def export_artifact(self) -> Path:
        """Write the inference artifact (weights + sidecar) for the node and the exporters."""
        target = self.config.artifact_out or str(self.run_dir / f'{self.robot.name}_tag')
        config_dict = config_to_dict(self.config)
        # Which branch's joints the estimator reports is measured on the first held-out set.
        first_val = next(iter(self.last_metrics.values()), None)
        joint_source = (best_joint_source(first_val) if first_val
                        else self.inherited_joint_source or '2d')
        metrics = {name: {k: v for k, v in m.items() if isinstance(v, (int, float, str))}
                   for name, m in self.last_metrics.items()}
        sidecar = Sidecar(
            robot=self.config.robot, joint_names=list(self.robot.joint_names),
            keypoint_names=list(self.robot.keypoint_names),
            input_size=list(self.config.data.image_size),
            model_config=dict(self.model_config.to_dict(), joint_limits=[
                [float(v) for v in row] for row in self.model.joint_head_2d.joint_limits]),
            preprocessing=self.model.preprocessing,   # what training normalised with
            config_hash=config_hash(config_dict),
            training={'stage': self.config.stage, 'epochs': self.config.optim.epochs,
                      'steps': self.step, 'run_dir': str(self.run_dir),
                      'joint_source': joint_source, 'device': str(self.info.device),
                      **{key: round(value, 1) if 'minutes' in key else int(value)
                         for key, value in self.progress().items()},
                      'train_frames': len(self.train_set)}, metrics=metrics)
        path = save_artifact(target, self.model.state_dict(), sidecar)
        print(f'[train] wrote artifact {path}')
        return path

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        # DDP's reducer holds the process group; drop it and collect now, so the gloo/NCCL
        # worker threads end here and not during interpreter teardown (a SIGABRT seen on CI).
        self.network = self.model
        gc.collect()
        shutdown_distributed()
