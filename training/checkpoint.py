"""Training checkpoints: written atomically, read with ``weights_only=True``, refused clearly."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from robotag_ros.atomic_io import atomic_write

CHECKPOINT_FORMAT = 'robotag_ros.checkpoint/1'


class CheckpointError(RuntimeError):
    """A checkpoint that is truncated, corrupt or not one of ours."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename: a run killed mid-write leaves the
    previous checkpoint intact, never a half-written one."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_checkpoint(path: str | os.PathLike, *, model_state: dict, optimizer_state: dict,
                    epoch: int, step: int, config: dict, extra: dict | None = None) -> None:
    """Everything ``--resume`` needs: weights, optimiser, epoch, step (the learning rate is a
    function of those) and config."""
    atomic_torch_save({'format': CHECKPOINT_FORMAT, 'model': model_state,
                       'optimizer': optimizer_state,
                       'epoch': epoch, 'step': step, 'config': config,
                       'extra': extra or {}}, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = 'cpu') -> dict:
    """Load a checkpoint safely (no pickle code execution); explain what is wrong otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for broken files
        raise CheckpointError(f'{path} is truncated, corrupt or not a PyTorch checkpoint '
                              f'({type(error).__name__}: {error})') from error
    if not isinstance(data, dict) or data.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'{path} is not a robotag_ros training checkpoint '
                              f"(expected format '{CHECKPOINT_FORMAT}')")
    return data
