"""The online fine-tuning process: periodically fine-tune on the node's frame buffer.

Each round fine-tunes (stage 2, alignment only) the model store's ``current`` artifact on the
buffer's training frames (never its held-out ones), writes a new timestamped artifact into the
store and points ``candidate`` at it. The node (its ``models_dir`` hook) judges the candidate on
the held-out frames and swaps it in only if it scores better; this process never changes
``current``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from robotag_ros.finetune.buffer import FrameBuffer
from robotag_ros.finetune.model_store import ModelStore
from robotag_ros.training.finetune import finetune_config, run_finetune


def online_round(buffer_dir: str, models_dir: str, overrides: Sequence[str] = (),
                 min_train_frames: int = 16, config_path: str | None = None) -> Path | None:
    """One fine-tuning round; returns the candidate written, or None if too few frames."""
    store = ModelStore(models_dir)
    current = store.current()
    if current is None:
        raise ValueError(f'{models_dir}: no current model (start the node with models_dir set, '
                         'or pass --model to seed the store)')
    if not Path(buffer_dir).is_dir():
        raise FileNotFoundError(f'frame buffer not found: {buffer_dir}')
    training, _ = FrameBuffer(buffer_dir).split()
    if len(training) < min_train_frames:
        return None
    candidate = store.new_artifact_path('finetuned')
    config = finetune_config(current, candidate, buffer_dirs=[buffer_dir],
                             config_path=config_path,
                             overrides=[f'run_dir={Path(models_dir) / "runs" / candidate.name}',
                                        *overrides])
    run_finetune(config)
    store.set_candidate(candidate)
    print(f'[online] candidate {candidate.name} written; the node judges it on held-out frames')
    return candidate


def run_online(buffer_dir: str, models_dir: str, overrides: Sequence[str] = (),
               interval_s: float = 300.0, min_new_frames: int = 50, min_train_frames: int = 16,
               max_rounds: int = 0, config_path: str | None = None) -> int:
    """Fine-tune whenever ``min_new_frames`` new frames arrived; returns the rounds run."""
    last_seq, rounds, last_status = -1, 0, None
    while True:
        frames = FrameBuffer(buffer_dir).frames() if Path(buffer_dir).is_dir() else []
        new = sum(1 for frame in frames if frame.seq > last_seq)
        candidate = None
        if new >= min_new_frames:
            newest = frames[-1].seq
            candidate = online_round(buffer_dir, models_dir, overrides, min_train_frames,
                                     config_path)
            if candidate is not None:
                last_seq = newest
                rounds += 1
        if max_rounds and rounds >= max_rounds:
            return rounds
        status = (f'[online] {len(frames)} buffered frames, {new} new; waiting for '
                  f'{min_new_frames} new and {min_train_frames} training frames')
        if candidate is None and status != last_status:   # say it once, not every interval
            print(status)
            last_status = status
        time.sleep(interval_s)
