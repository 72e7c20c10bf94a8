"""Self-labelling fine-tuning: a user's recording -> calibrated labels -> a better candidate model.

The library behind ``robotag-finetune --self-label BAG``. The recording (images, CameraInfo,
``/joint_states``) is estimated frame by frame as ``robotag-calibrate --images`` does; the camera
is calibrated from it (or read from a given ``.calib``); every frame is labelled by forward
kinematics and the calibrated camera (robotag_ros.finetune.self_label); frames whose labels the
network disagrees with beyond a robust bound are dropped, and so are the frames before a camera
jump. Every ``holdout_every``-th kept frame is held out; the rest become a DREAM-format set that
the model is fine-tuned on (supervised, training/finetune.py's SELF_LABEL_DEFAULTS recipe). The
candidate then goes to the swap gate (robotag_ros.finetune.swap): both models are scored on the
held-out frames (the gate's own label-free score), and the held-out labels give a second figure,
the median distance (pixels) of the detected keypoints to the labelled ones. The candidate is
accepted only if both improve; with a model store it then becomes the store's ``candidate``, for
the node's gate to judge again on its own frames.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from robotag_ros.calibration.calib_file import read_calib
from robotag_ros.calibration.camera_motion import JUMP
from robotag_ros.calibration.live import CalibrationSettings, calibrate_series
from robotag_ros.calibration.recording import estimate_recording_file
from robotag_ros.data.bags.bag_images import iter_bag_images
from robotag_ros.finetune.self_label import (
    agreeing_frames, label_disagreement_px, label_frames, write_labelled_set,
)
from robotag_ros.finetune.swap import accept_candidate, score_of_estimates


@dataclass
class SelfLabelOptions:
    """How to calibrate, label, filter and hold out (the training recipe is the config's)."""

    calib: str | None = None                 # a .calib to label with instead of calibrating
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    mad_k: float = 3.0                       # disagreement bound, robust standard deviations
    floor_px: float = 2.0                    # ... never tighter than this (pixels)
    holdout_every: int = 5                   # every Nth kept frame judges the candidate
    backend: str = 'auto'
    device: str = 'cpu'
    estimator_factory: str = ''
    image_topic: str | None = None
    camera_info_topic: str | None = None
    joint_states_topic: str | None = None
    tolerance_s: float = 0.05


def _calibration(recording, estimator, options: SelfLabelOptions):
    """(HandEyeCalibration, frames to label (bool, series order), camera-motion summary)."""
    series = recording.series
    usable = np.ones(len(series), dtype=bool)
    if options.calib:
        return read_calib(options.calib), usable, {}
    result, calibration = calibrate_series(series, options.calibration, estimator.robot)
    motion = result.extra.get('camera_motion')
    if motion is not None and motion.kind == JUMP:
        usable = series.stamps_ns >= motion.stamp_ns    # labels before the jump would be wrong
    return calibration, usable, {} if motion is None else motion.summary()


def _holdout_estimates(estimator, images, intrinsics, joints) -> list:
    """The held-out frames estimated as the swap gate does (no tracking), measured joints
    given as the calibration does."""
    return estimator.estimate_batch(images, intrinsics, with_points=False,
                                    joint_angles_rad=joints)


def self_label(bag: str | os.PathLike, model: str, labelled_dir: str | os.PathLike,
               options: SelfLabelOptions) -> dict:
    """Estimate, calibrate, label, filter; write the training frames to ``labelled_dir``.
    Returns the report so far and the held-out frames (images, K, joints, labels)."""
    recording, estimator = estimate_recording_file(
        bag, model, options.estimator_factory, options.backend, options.device,
        options.image_topic, options.camera_info_topic, options.joint_states_topic,
        options.tolerance_s)
    series = recording.series
    calibration, usable, motion = _calibration(recording, estimator, options)
    labels = label_frames(estimator.robot, calibration, series.joint_angles_rad,
                          np.stack(recording.intrinsics))
    disagreement = label_disagreement_px(labels.keypoints_2d_px, recording.estimates)
    keep = usable & agreeing_frames(np.where(usable, disagreement, np.nan), options.mad_k,
                                    options.floor_px)
    kept = np.flatnonzero(keep)
    if len(kept) < 2 * options.holdout_every:
        raise ValueError(f'only {len(kept)} of {len(series)} frames have labels the network '
                         'agrees with; too few to fine-tune on and judge the result')
    holdout = kept[options.holdout_every - 1::options.holdout_every]
    train = np.setdiff1d(kept, holdout)
    written = write_labelled_set(labelled_dir, estimator.robot, recording.plan,
                                 series.stamps_ns[train], labels.select(train))
    holdout_stamps = {int(series.stamps_ns[i]): i for i in holdout}
    images = {}
    for frame in iter_bag_images(recording.plan.bag_path, recording.plan.topics.image,
                                 recording.plan.topics.camera_info):
        if int(frame.stamp_ns) in holdout_stamps:
            images[holdout_stamps[int(frame.stamp_ns)]] = frame.image_rgb
    report = {
        'frames_recorded': recording.counts.images, 'frames_estimated': len(series),
        'frames_dropped_disagreeing': int((usable & ~keep).sum()),
        'frames_dropped_camera_moved': int((~usable).sum()),
        'frames_trained': written, 'frames_held_out': len(holdout),
        'label_disagreement_median_px': float(np.median(disagreement[usable])),
        'label_disagreement_bound_px': float(disagreement[keep].max()),
        'calibration_source': options.calib or 'calibrated from the recording',
        **motion,
    }
    heldout = {'images': [images[i] for i in holdout],
               'intrinsics': [recording.intrinsics[i] for i in holdout],
               'joints': [series.joint_angles_rad[i] for i in holdout],
               'keypoints_2d_px': labels.keypoints_2d_px[holdout]}
    return {'report': report, 'heldout': heldout, 'estimator': estimator}


def judge(current, candidate, heldout: dict) -> dict:
    """The swap gate on the held-out frames, plus the label error of each model."""
    judged = {}
    for name, estimator in (('before', current), ('after', candidate)):
        estimates = _holdout_estimates(estimator, heldout['images'], heldout['intrinsics'],
                                       heldout['joints'])
        judged[f'holdout_gate_score_{name}'] = score_of_estimates(estimates)
        judged[f'holdout_label_error_px_{name}'] = float(np.median(
            label_disagreement_px(heldout['keypoints_2d_px'], estimates)))
    judged['swap_gate_accepts'] = accept_candidate(judged['holdout_gate_score_after'],
                                                   judged['holdout_gate_score_before'])
    # Here the held-out frames carry labels: a candidate must also detect them better, since
    # the gate's label-free score can improve while the keypoints move off the labels.
    judged['accepted'] = bool(judged['swap_gate_accepts'] and (
        judged['holdout_label_error_px_after'] < judged['holdout_label_error_px_before']))
    return judged


def run_self_label(bag: str | os.PathLike, model: str, out: str | os.PathLike,
                   options: SelfLabelOptions, overrides: Sequence[str] = (),
                   config_path: str | None = None, models_dir: str | None = None) -> dict:
    """The whole path: label, fine-tune into ``out`` (or a fresh artifact in ``models_dir``),
    judge; returns the report (frames used and dropped, minutes, the gate's verdict)."""
    from robotag_ros.finetune.model_store import ModelStore
    from robotag_ros.estimator_factory import load_estimator
    from robotag_ros.training.finetune import finetune_config, run_finetune

    store = ModelStore(models_dir) if models_dir else None
    out = Path(store.new_artifact_path('selflabel') if store else out)
    run_dir = out.parent / f'{out.name}_run'
    started = time.perf_counter()
    labelled = self_label(bag, model, run_dir / 'self_labelled', options)
    labelled_minutes = (time.perf_counter() - started) / 60.0
    config = finetune_config(model, out, labelled_dirs=[str(run_dir / 'self_labelled')],
                             config_path=config_path,
                             overrides=[f'run_dir={run_dir}', *overrides])
    started = time.perf_counter()
    trained = run_finetune(config)
    finetune_minutes = (time.perf_counter() - started) / 60.0
    candidate = load_estimator(out, backend=options.backend, device=options.device)
    report = {**labelled['report'], 'artifact': str(out), 'run_dir': str(run_dir),
              'steps': trained['steps'], 'label_minutes': labelled_minutes,
              'finetune_minutes': finetune_minutes,
              **judge(labelled['estimator'], candidate, labelled['heldout'])}
    if store is not None and report['accepted']:
        store.set_candidate(out)     # the node's gate judges it again on its own frames
        report['model_store_candidate'] = str(out)
    return report
