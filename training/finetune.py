"""Stage-2 (alignment-only) fine-tuning of a model artifact on unlabelled images -> a new artifact.

The library behind ``robotag-finetune``: builds the training config from the artifact (robot,
architecture and input size are the artifact's), runs the :class:`Trainer` (tqdm progress,
TensorBoard and atomic checkpoints in ``<out>_run/``), writes the new artifact atomically and
reports how many frames were read and skipped. :func:`alignment_loss` measures L_align on one
batch, for tests and benchmarks.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch

from robotag_ros.losses import TAGLoss
from robotag_ros.model.artifact import artifact_paths, load_sidecar
from robotag_ros.training.config import TrainConfig, load_config
from robotag_ros.training.trainer import Trainer

# Stage-2 settings when no experiment YAML is given: small steps keep stage 1's skills while the
# branches align on the new domain (config/train/panda_stage2.yaml holds the paper's schedule).
FINETUNE_DEFAULTS = ('optim.lr=1.0e-5', 'optim.epochs=5', 'optim.warmup_steps=0',
                     'optim.batch_size=16', 'data.num_workers=0', 'freeze_trunk=true')
# Supervised fine-tuning on self-labelled frames (training/self_label.py): the keypoint heatmaps
# the estimator's fit reads, on robot-centred crops as the two-pass estimator sees them, every
# trunk weight trained at a low rate with the trunk's BatchNorm statistics kept (one recording's
# crops would otherwise replace them). Measured with the bundled model on a rendered recording
# (benchmarks/results/self_label_shift_shared_scene_phase7*.json): the same camera's held-out
# frames ADD AUC 50.2 -> 67.5, joints 11.1 -> 6.5 deg, and the gate accepts; the earlier recipe
# (the last two trunk stages, lr 3e-4) learnt the camera as well (67.8) but drifted on rendered
# robots past the gate's bound, which then turned it down.
SELF_LABEL_DEFAULTS = ('heads=keypoints', 'data.robot_crop=true', 'data.augment=true',
                       'freeze_trunk=false', 'trained_trunk_stages=0',
                       'fix_trunk_batchnorm=true',
                       'optim.lr=1.0e-4', 'optim.epochs=3', 'optim.warmup_steps=0',
                       'optim.batch_size=16', 'data.num_workers=0')


def check_output(model: str | os.PathLike, out: str | os.PathLike, force: bool = False) -> None:
    """Refuse to overwrite the source artifact, or any existing artifact unless ``force``."""
    source, target = artifact_paths(model)[0].resolve(), artifact_paths(out)[0].resolve()
    if source == target:
        raise ValueError(f'--out {out} is the artifact being fine-tuned; write a new one')
    existing = [str(p) for p in artifact_paths(out) if p.exists()]
    if existing and not force:
        raise FileExistsError(f'refusing to overwrite {", ".join(existing)} (pass --force)')


def finetune_config(model: str | os.PathLike, out: str | os.PathLike, *,
                    bags: Sequence[str] = (), image_topic: str | None = None,
                    camera_info_topic: str | None = None, buffer_dirs: Sequence[str] = (),
                    labelled_dirs: Sequence[str] = (), config_path: str | None = None,
                    overrides: Sequence[str] = ()) -> TrainConfig:
    """The TrainConfig starting from ``model`` and writing the artifact ``out``: stage 2 on
    unlabelled bags or frame buffers, or, with ``labelled_dirs`` (DREAM-format sets such as
    the self-labelled ones), stage 1 (supervised) on those."""
    sidecar = load_sidecar(model)
    stage = 1 if labelled_dirs else 2
    base = [f'stage={stage}', f'robot={sidecar.robot}', f'init_from={model}',
            f'artifact_out={out}', f'data.bags={json.dumps([str(b) for b in bags])}',
            f'data.buffer_dirs={json.dumps([str(b) for b in buffer_dirs])}',
            f'data.train={json.dumps([str(d) for d in labelled_dirs])}',
            'data.val=[]', 'data.image_dirs=[]',
            f'data.image_size={json.dumps(list(sidecar.input_size))}',
            f'run_dir={Path(out).parent / (Path(out).name + "_run")}']
    if image_topic:
        base.append(f'data.image_topic={image_topic}')
    if camera_info_topic:
        base.append(f'data.camera_info_topic={camera_info_topic}')
    recipe = SELF_LABEL_DEFAULTS if labelled_dirs else FINETUNE_DEFAULTS
    defaults = [] if config_path else list(recipe)
    config = load_config(config_path, defaults + base + list(overrides))
    config.model = None                          # the architecture is the artifact's, all of it
    config.model_overrides = sidecar.model_config
    return config


def read_stats(dataset) -> dict:
    """Frames read and skipped by every source inside a (Concat/Subset) training dataset."""
    stats = {'frames_used': len(dataset), 'skipped_undecodable': 0, 'skipped_size_mismatch': 0,
             'skipped_unreadable': 0}
    stack = [dataset]
    while stack:
        part = stack.pop()
        stack += list(getattr(part, 'datasets', []))
        if hasattr(part, 'dataset'):
            stack.append(part.dataset)
        bag_stats = getattr(part, 'stats', None)
        if bag_stats is not None:
            stats['skipped_undecodable'] += bag_stats.skipped_undecodable
            stats['skipped_size_mismatch'] += bag_stats.skipped_size_mismatch
        unreadable = getattr(part, 'unreadable', 0)   # a list of names, or a count
        stats['skipped_unreadable'] += (len(unreadable) if isinstance(unreadable, list)
                                        else int(unreadable))
    return stats


def run_finetune(config: TrainConfig) -> dict:
    """Fine-tune as configured; returns the artifact path, frame counts and the loss history."""

    trainer = Trainer(config)
    try:
        stats = read_stats(trainer.train_set)
        print(f"[finetune] {stats['frames_used']} frames; skipped "
              f"{stats['skipped_undecodable']} undecodable, {stats['skipped_size_mismatch']} "
              "not the size of their CameraInfo")
        history = trainer.train()
        stats['skipped_unreadable'] = read_stats(trainer.train_set)['skipped_unreadable']
    finally:
        trainer.close()
    return {'artifact': str(config.artifact_out), 'run_dir': str(config.run_dir),
            'steps': trainer.step, 'history': history, **stats}


def alignment_loss(model, batch: dict) -> float:
    """L_align (eq. 19, the stage-2 objective) of ``model`` on one batch, in eval mode."""

    criterion = TAGLoss(model.graph, model.config, robot=model.robot)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(batch['image'], batch['K'])
            return float(criterion(outputs, batch, supervised=False)['total'])
    finally:
        model.train(was_training)
