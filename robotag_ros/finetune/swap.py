"""Swap a fine-tuned model into a running estimator, only when it scores better, without stalling.

:class:`SwappableEstimator` is what the node calls: ``estimate()`` reads the current estimator
reference under a lock held only for that read, so inference never waits on a swap. A
:class:`CandidateWatcher` thread polls the model store's ``candidate`` pointer, loads the candidate
(in its own thread, while the old model keeps serving), scores both models on the held-out frames
of the buffer (:func:`holdout_score`, no labels) and swaps the reference only if
:func:`accept_candidate` says so. The previous artifact stays in the store.
"""
from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

LOGGER = logging.getLogger(__name__)


def holdout_score(estimator, frames: Sequence[tuple[np.ndarray, np.ndarray]],
                  batch_size: int = 8) -> float:
    """The swap gate's score of ``estimator`` on (HxWx3 uint8 RGB, 3x3 K) frames, higher is
    better: minus the mean fit residual (pixels: how far the network's keypoints are from the
    nearest pose of the robot) where the estimator closes the loops, else the mean consistency
    score. Not the consistency score where there is a fit: its branch-agreement terms are what
    stage 2's alignment losses minimise, and they rise while the estimates get worse (shifted
    domain, benchmarks/results/finetune_shift.json: consistency 0.009 -> 0.029 while ADD AUC
    fell 17.6 -> 5.1; the fit residual rose 8.1 -> 13.0 px)."""
    if not frames:
        raise ValueError('no frames to score on')
    # Any PoseEstimator can be scored (its estimate()); the project's Estimator batches.
    estimate_batch = getattr(estimator, 'estimate_batch', None)
    estimates = []
    for start in range(0, len(frames), batch_size):
        chunk = frames[start:start + batch_size]
        if estimate_batch is None:
            estimates += [estimator.estimate(image_rgb, K) for image_rgb, K in chunk]
        else:
            estimates += estimate_batch([f[0] for f in chunk], [f[1] for f in chunk],
                                        with_points=False)
    return score_of_estimates(estimates)


def score_of_estimates(estimates: Sequence) -> float:
    """:func:`holdout_score` of estimates already made (evaluation reports it too)."""
    residuals = [e.consistency_terms.get('fit_residual_px') for e in estimates]
    if all(r is not None for r in residuals):
        return -float(np.mean([float(r) for r in residuals]))
    return float(np.mean([float(e.consistency) for e in estimates]))


def accept_candidate(candidate_score: float, current_score: float,
                     min_improvement: float = 0.0) -> bool:
    """Swap only for a finite score strictly better than the current one by the margin."""
    return (math.isfinite(candidate_score)
            and (not math.isfinite(current_score)
                 or candidate_score > current_score + min_improvement))


class SwappableEstimator:
    """An estimator whose model can be replaced while other threads keep calling it."""

    def __init__(self, estimator):
        self._lock = threading.Lock()
        self._estimator = estimator
        self.generation = 0

    @property
    def current(self):
        with self._lock:
            return self._estimator

    def swap(self, estimator):
        """Serve ``estimator`` from the next call on; returns the one it replaces."""
        with self._lock:
            previous, self._estimator = self._estimator, estimator
            self.generation += 1
        return previous

    def estimate(self, image_rgb, K, **options):
        # The lock covers only the reference read: a call in flight finishes on the old model.
        return self.current.estimate(image_rgb, K, **options)

    def __getattr__(self, name):
        # robot, robot_name, base_frame, estimate_batch (where it has one)... of whichever
        # model serves now.
        if name.startswith('_'):
            raise AttributeError(name)
        return getattr(self.current, name)


class CandidateWatcher:
    """Background thread: candidate in the store -> score on held-out frames -> swap or reject."""

    def __init__(self, swappable: SwappableEstimator, store, loader: Callable[[Path], object],
                 holdout_frames: Callable[[], list], poll_s: float = 10.0,
                 min_improvement: Optional[float] = None,
                 log: Callable[[str], None] = LOGGER.info):
        """``min_improvement``: the score margin a candidate must beat the current model by;
        None takes the serving model's ``fit_settings.swap_min_improvement`` (its sidecar's
        judgement of what its residual means), else 0."""
        self.swappable, self.store, self.loader = swappable, store, loader
        self.holdout_frames = holdout_frames
        self.poll_s, self.min_improvement, self.log = poll_s, min_improvement, log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _min_improvement(self) -> float:
        if self.min_improvement is not None:
            return self.min_improvement
        settings = getattr(self.swappable.current, 'fit_settings', None)
        return settings.swap_min_improvement if settings is not None else 0.0

    def start(self) -> 'CandidateWatcher':
        self._thread = threading.Thread(target=self._run, name='candidate_watcher', daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check_once()
            except Exception as error:   # noqa: BLE001 - the watcher must outlive a bad candidate
                self.log(f'candidate check failed: {type(error).__name__}: {error}')

    def _scoring_copy_of_current(self):
        # A fresh copy of the served model, so scoring never shares a backend (CUDA graphs,
        # compiled modules) with the inference thread; the served one if it has no artifact.
        current = self.store.current()
        if current is not None:
            try:
                return self.loader(current)
            except Exception as error:   # noqa: BLE001 - fall back to the served instance
                self.log(f'could not load a scoring copy of {current.name}: {error}')
        return self.swappable.current

    def check_once(self) -> dict | None:
        """Judge the pending candidate, if any; returns the recorded decision."""
        candidate = self.store.candidate()
        if candidate is None:
            return None
        frames = self.holdout_frames()
        if not frames:
            return None   # nothing to judge on yet; keep the candidate pending
        decision = {'candidate': candidate.name,
                    'current': getattr(self.store.current(), 'name', None)}
        try:
            candidate_estimator = self.loader(candidate)
            candidate_score = holdout_score(candidate_estimator, frames)
        except Exception as error:   # noqa: BLE001 - a broken candidate is rejected, not fatal
            decision.update(accepted=False, reason=f'{type(error).__name__}: {error}')
            candidate_estimator, candidate_score = None, float('nan')
        current_score = holdout_score(self._scoring_copy_of_current(), frames)
        decision.update(candidate_score=candidate_score, current_score=current_score,
                        holdout_frames=len(frames))
        if candidate_estimator is not None:
            accepted = accept_candidate(candidate_score, current_score,
                                        self._min_improvement())
            decision['accepted'] = accepted
            if accepted:
                self.swappable.swap(candidate_estimator)
                self.store.set_current(candidate)
        if self.store.candidate() == candidate:   # a newer candidate stays pending
            self.store.set_candidate(None)
        self.store.record_decision(**decision)
        verdict = 'accepted' if decision['accepted'] else 'rejected'
        self.log(f'candidate {candidate.name}: {verdict}'
                 f' (held-out score {candidate_score:.4f} vs current {current_score:.4f}: minus '
                 'the mean fit residual in px, or the consistency without a fit)')
        return decision
