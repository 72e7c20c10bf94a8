"""The estimator node's two optional online fine-tuning hooks, kept out of the node itself.

``record_buffer_dir``: every n-th frame the node processes goes into a :class:`FrameBuffer`.
``models_dir``: the node serves the model store's ``current`` artifact (importing its
``model_path`` as the first one) through a :class:`SwappableEstimator`, and a
:class:`CandidateWatcher` swaps in a candidate written by ``robotag-finetune --online`` only when
it scores better on the buffer's held-out frames.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from robotag_ros.finetune.buffer import FrameBuffer, FrameRecorder
from robotag_ros.finetune.model_store import ModelStore
from robotag_ros.finetune.swap import CandidateWatcher, SwappableEstimator

MAX_HOLDOUT_FRAMES = 32


def serving_model_path(models_dir: str, model_path: str) -> str:
    """The artifact to serve: the store's current one (the given one imported on first use)."""
    if not models_dir:
        return model_path
    store = ModelStore(models_dir)
    if store.current() is None:
        if not model_path:
            raise ValueError('models_dir is empty and no model_path was given to start from')
        store.set_current(store.import_artifact(model_path, tag='initial'))
    return str(store.current())


class OnlineHooks:
    """Frame recording and guarded model swapping for one node; both optional."""

    def __init__(self, estimator, record_buffer_dir: str = '', record_every_n: int = 10,
                 buffer_capacity: int = 500, models_dir: str = '',
                 loader: Callable[[Path], object] | None = None, poll_s: float = 10.0,
                 min_improvement: Optional[float] = None,
                 log: Callable[[str], None] = print):
        self.recorder = None
        self.watcher = None
        self.estimator = estimator
        buffer = None
        if record_buffer_dir:
            buffer = FrameBuffer(record_buffer_dir, capacity=buffer_capacity)
            self.recorder = FrameRecorder(buffer, record_every_n, asynchronous=True)
        if models_dir:
            if buffer is None or loader is None:
                raise ValueError('models_dir needs record_buffer_dir (its held-out frames judge '
                                 'candidates) and a model loader')
            self.estimator = SwappableEstimator(estimator)

            def holdout_frames():
                held_out = buffer.split()[1][-MAX_HOLDOUT_FRAMES:]
                frames = []
                for frame in held_out:
                    try:
                        frames.append(frame.load())
                    except (OSError, ValueError, KeyError):
                        continue   # evicted meanwhile
                return frames

            self.watcher = CandidateWatcher(self.estimator, ModelStore(models_dir), loader,
                                            holdout_frames, poll_s, min_improvement, log).start()

    def record(self, image_rgb, K, stamp_ns: int = 0) -> None:
        if self.recorder is not None:
            self.recorder.maybe_record(image_rgb, K, stamp_ns)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.recorder is not None:
            self.recorder.close()
