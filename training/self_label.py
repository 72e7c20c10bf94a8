"""Self-labelling fine-tuning: a user's recording -> calibrated labels -> a better candidate model.

The library behind ``robotag-finetune --self-label BAG``. The recording (images, CameraInfo,
``/joint_states``) is estimated frame by frame as ``robotag-calibrate --images`` does; the camera
is calibrated from it (or read from a given ``.calib``); every frame is labelled by forward
kinematics and the calibrated camera (robotag_ros.finetune.self_label); frames whose labels the
network disagrees with beyond a robust bound are dropped, and so are the frames before a camera
jump. The last part of the recording (in time) is held out, after a gap; the earlier frames become
a DREAM-format set that the model is fine-tuned on (supervised, training/finetune.py's
SELF_LABEL_DEFAULTS recipe). The candidate then goes to the swap gate (robotag_ros.finetune.swap):
both models are scored on the held-out frames (the gate's own label-free score), and the held-out
labels give a second figure, the median distance (pixels) of the detected keypoints to the labelled
ones. One recording is one camera and one background, which a network can learn by heart; so
rendered frames of the default domain randomisation are mixed into the training set
(``replay_frames``: it keeps seeing other views and rooms) and a few more judge whether the
candidate still sees robots in general (``generic_check_frames``). The candidate is accepted only
if all three hold (the generic figure may not get worse by more than ``generic_tolerance``); with a
model store it then becomes the store's ``candidate``, for the node's gate to judge again on its
own frames. Several recordings (``--self-label A B C``: the camera moved between them) are each
labelled this way with their own calibration and held-out part, and one model learns them all:
one camera's recording teaches its own view, several teach the arm from several sides.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from robotag_ros.calibration.calib_file import read_calib, write_calib
from robotag_ros.calibration.camera_motion import JUMP
from robotag_ros.calibration.hand_eye import EYE_IN_HAND
from robotag_ros.calibration.live import CalibrationSettings, calibrate_series
from robotag_ros.calibration.recording import estimate_recording_file
from robotag_ros.data.bags.bag_images import iter_bag_images
from robotag_ros.finetune.self_label import (
    RobotMasks, agreeing_frames, label_disagreement_px, label_frames, write_labelled_set,
)
from robotag_ros.finetune.swap import accept_candidate, score_of_estimates


@dataclass
class SelfLabelOptions:
    """How to calibrate, label, filter and hold out (the training recipe is the config's)."""

    calib: str | None = None                 # a .calib to label with instead of calibrating
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    mad_k: float = 3.0                       # disagreement bound, robust standard deviations
    floor_px: float = 2.0                    # ... never tighter than this (pixels)
    holdout_fraction: float = 0.2            # the recording's last part judges the candidate
    holdout_gap_frames: int = 15             # ... after this many frames used by neither
    backend: str = 'auto'
    device: str = 'cpu'
    estimator_factory: str = ''
    image_topic: str | None = None
    camera_info_topic: str | None = None
    joint_states_topic: str | None = None
    tolerance_s: float = 0.05
    replay_frames: int = 300                 # rendered default-DR frames mixed into training
    generic_check_frames: int = 40           # ... and rendered frames that judge (0: off)
    generic_tolerance: float = 0.1           # the generic label error may grow this much
    replay_seed: int = 90210
    robot_masks: bool = True                 # render each labelled frame's robot silhouette
    # Replay through the recording's K, distance and elevation (every side) rather than the
    # default DR's cameras: measured worse on another camera
    # (self_label_shift_matched_replay.json).
    replay_matches_camera: bool = False


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


def time_block_holdout(kept: np.ndarray, fraction: float, gap: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Kept frame indices (time order) -> (train, held out): the last ``fraction`` of them,
    and ``gap`` frames before those go to neither. Neighbouring frames of a recording are near
    copies, so frames interleaved with the training ones would judge memory, not whether the
    candidate still sees the arm in poses it was not trained on."""
    if not 0.0 < fraction < 1.0 or gap < 0:
        raise ValueError(f'holdout fraction must be in (0, 1) and the gap >= 0, got {fraction}, '
                         f'{gap}')
    held = max(1, int(round(fraction * len(kept))))
    return kept[:max(0, len(kept) - held - gap)], kept[len(kept) - held:]


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
    train, holdout = time_block_holdout(kept, options.holdout_fraction,
                                        options.holdout_gap_frames)
    if len(train) < 2 or len(holdout) < 2:
        raise ValueError(f'{len(train)} frames to fine-tune on and {len(holdout)} to judge the '
                         f'result: too few ({len(kept)} of {len(series)} frames have labels the '
                         f'network agrees with; {options.holdout_gap_frames} between the two '
                         'parts are used by neither); record a longer recording')
    masks = RobotMasks(estimator.robot) if options.robot_masks else None
    try:
        written = write_labelled_set(labelled_dir, estimator.robot, recording.plan,
                                     series.stamps_ns[train], labels.select(train), masks=masks)
    finally:
        if masks is not None:
            masks.close()
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
        'frames_dropped_holdout_gap': len(kept) - len(train) - len(holdout),
        # The held-out block runs from here to the recording's end (a benchmark that has the
        # recording's true labels measures the candidate there: the same camera, unseen frames).
        'holdout_from_stamp_ns': int(series.stamps_ns[holdout[0]]),
        'label_disagreement_median_px': float(np.median(disagreement[usable])),
        'label_disagreement_bound_px': float(disagreement[keep].max()),
        'calibration_source': options.calib or 'calibrated from the recording',
        **motion,
    }
    heldout = {'images': [images[i] for i in holdout],
               'intrinsics': [recording.intrinsics[i] for i in holdout],
               'joints': [series.joint_angles_rad[i] for i in holdout],
               'keypoints_2d_px': labels.keypoints_2d_px[holdout]}
    return {'report': report, 'heldout': heldout, 'estimator': estimator,
            'calibration': calibration}


def replay_dr_config(calibration, K: np.ndarray):
    """The default domain randomisation seen through the user's camera: its intrinsics, and
    (eye-on-base) its distance and elevation about the base within 15 % and 10 deg, from every
    side. The replay frames then show robots as large and as steeply seen as the recording does,
    in rooms and colours it does not have."""
    from dataclasses import replace

    from robotag_ros.bundled import default_dr_config_path
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.geometry.view import camera_placement

    config = load_dr_config(default_dr_config_path())
    camera = replace(config.camera, intrinsics_px=[float(K[0, 0]), float(K[1, 1]),
                                                   float(K[0, 2]), float(K[1, 2])])
    if calibration.calibration_type != EYE_IN_HAND:
        distance, elevation_deg = camera_placement(
            np.asarray(calibration.T_cam_reference, dtype=np.float64))
        camera = replace(camera, distance_m=[0.85 * distance, 1.15 * distance],
                         elevation_deg=[elevation_deg - 10.0, elevation_deg + 10.0])
    return replace(config, camera=camera)


def render_generic_frames(robot_name: str, folder: Path, count: int, seed: int,
                          height: int, width: int, config=None) -> Path:
    """``count`` labelled frames of ``config`` (a DRConfig; default: the default domain
    randomisation) in ``folder``."""
    from robotag_ros.bundled import default_dr_config_path
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.data.synthetic.set_generator import generate_set
    generate_set(robot_name, folder, count, seed,
                 config or load_dr_config(default_dr_config_path()), height, width,
                 progress=False)
    return folder


def generic_check_set(folder: Path, robot) -> dict:
    """A rendered folder as judge() reads it (no measured joints: any robot, any camera)."""
    from robotag_ros.data.dream.dataset import DreamDataset
    dataset = DreamDataset(folder, robot)
    frames = [dataset.raw_frame(i) for i in range(len(dataset))]
    return {'images': [f['image_rgb'] for f in frames], 'intrinsics': [f['K'] for f in frames],
            'joints': None,
            'keypoints_2d_px': np.stack([f['ground_truth'].keypoints_2d_px for f in frames])}


def _label_error_px(estimator, frames: dict) -> tuple[float, list]:
    estimates = _holdout_estimates(estimator, frames['images'], frames['intrinsics'],
                                   frames['joints'])
    return float(np.median(label_disagreement_px(frames['keypoints_2d_px'], estimates))), \
        estimates


def judge(current, candidate, heldout: dict, generic: dict | None = None,
          generic_tolerance: float = 0.1) -> dict:
    """The swap gate on the held-out frames, plus the label error of each model there and,
    with ``generic`` (rendered labelled frames), on robots in general."""
    judged = {}
    for name, estimator in (('before', current), ('after', candidate)):
        judged[f'holdout_label_error_px_{name}'], estimates = _label_error_px(estimator,
                                                                              heldout)
        judged[f'holdout_gate_score_{name}'] = score_of_estimates(estimates)
        if generic is not None:
            judged[f'generic_label_error_px_{name}'] = _label_error_px(estimator, generic)[0]
    judged['swap_gate_accepts'] = accept_candidate(judged['holdout_gate_score_after'],
                                                   judged['holdout_gate_score_before'])
    # Here the held-out frames carry labels: a candidate must also detect them better, since
    # the gate's label-free score can improve while the keypoints move off the labels; and it
    # must not have traded robots in general for this one recording.
    judged['generic_ok'] = generic is None or bool(
        judged['generic_label_error_px_after']
        <= (1.0 + generic_tolerance) * judged['generic_label_error_px_before'])
    judged['accepted'] = bool(judged['swap_gate_accepts'] and judged['generic_ok'] and (
        judged['holdout_label_error_px_after'] < judged['holdout_label_error_px_before']))
    return judged


# Counts that add up over several recordings (the other report fields are per recording).
_COUNTS = ('frames_recorded', 'frames_estimated', 'frames_dropped_disagreeing',
           'frames_dropped_camera_moved', 'frames_trained', 'frames_held_out',
           'frames_dropped_holdout_gap')


def _merged(labelled: list[dict]) -> tuple[dict, dict]:
    """Several recordings' (report, held-out frames) as one: counts summed, the worst
    disagreement, the first recording's held-out start (its time block), held-out frames of
    all cameras together."""
    reports = [item['report'] for item in labelled]
    if len(reports) == 1:
        return reports[0], labelled[0]['heldout']
    report = {key: sum(r[key] for r in reports) for key in _COUNTS}
    report.update(
        recordings=len(reports),
        label_disagreement_median_px=max(r['label_disagreement_median_px'] for r in reports),
        label_disagreement_bound_px=max(r['label_disagreement_bound_px'] for r in reports),
        calibration_source=reports[0]['calibration_source'],
        holdout_from_stamp_ns=reports[0]['holdout_from_stamp_ns'],
        camera_moved=any(bool(r.get('camera_moved', False)) for r in reports))
    heldout = {key: [frame for item in labelled for frame in item['heldout'][key]]
               for key in ('images', 'intrinsics', 'joints')}
    heldout['keypoints_2d_px'] = np.concatenate([item['heldout']['keypoints_2d_px']
                                                 for item in labelled])
    return report, heldout


def run_self_label(bags: str | os.PathLike | Sequence[str | os.PathLike], model: str,
                   out: str | os.PathLike, options: SelfLabelOptions,
                   overrides: Sequence[str] = (), config_path: str | None = None,
                   models_dir: str | None = None) -> dict:
    """The whole path: label, fine-tune into ``out`` (or a fresh artifact in ``models_dir``),
    judge; returns the report (frames used and dropped, minutes, the gate's verdict).
    ``bags``: one recording, or several (the camera moved between them: each is calibrated
    from its own frames, its last part held out; one model learns them all)."""
    from robotag_ros.finetune.model_store import ModelStore
    from robotag_ros.estimator_factory import load_estimator
    from robotag_ros.training.finetune import finetune_config, run_finetune

    bags = [bags] if isinstance(bags, (str, os.PathLike)) else list(bags)
    if not bags:
        raise ValueError('no recording to self-label')
    if options.calib and len(bags) > 1:
        raise ValueError('a .calib labels one camera; with several recordings each is '
                         'calibrated from its own frames (leave out --calib)')
    store = ModelStore(models_dir) if models_dir else None
    out = Path(store.new_artifact_path('selflabel') if store else out)
    run_dir = out.parent / f'{out.name}_run'
    started = time.perf_counter()
    suffixes = [''] if len(bags) == 1 else [f'_{i + 1}' for i in range(len(bags))]
    labelled_dirs = [str(run_dir / f'self_labelled{suffix}') for suffix in suffixes]
    labelled = [self_label(bag, model, folder, options)
                for bag, folder in zip(bags, labelled_dirs)]
    calib_paths = [write_calib(run_dir / f'labels{suffix}.calib', item['calibration'])
                   for item, suffix in zip(labelled, suffixes)]
    labelled_report, heldout = _merged(labelled)
    robot = labelled[0]['estimator'].robot
    height, width = heldout['images'][0].shape[:2]
    train_dirs, generic = list(labelled_dirs), None
    if options.replay_frames > 0:
        matched = replay_dr_config(labelled[0]['calibration'], heldout['intrinsics'][0]) \
            if options.replay_matches_camera else None
        train_dirs.append(str(render_generic_frames(
            robot.name, run_dir / 'replay', options.replay_frames, options.replay_seed,
            height, width, matched)))
    if options.generic_check_frames > 0:
        generic = generic_check_set(render_generic_frames(
            robot.name, run_dir / 'generic_check', options.generic_check_frames,
            options.replay_seed + 1, height, width), robot)
    labelled_minutes = (time.perf_counter() - started) / 60.0
    # Eye-on-base, every labelled frame of a recording shows the robot from its one camera.
    single_camera = [folder for folder, item in zip(labelled_dirs, labelled)
                     if item['calibration'].calibration_type != EYE_IN_HAND]
    config = finetune_config(model, out, labelled_dirs=train_dirs,
                             config_path=config_path,
                             overrides=[f'run_dir={run_dir}',
                                        f'data.single_camera={json.dumps(single_camera)}',
                                        *overrides])
    started = time.perf_counter()
    trained = run_finetune(config)
    finetune_minutes = (time.perf_counter() - started) / 60.0
    candidate = load_estimator(out, backend=options.backend, device=options.device)
    report = {**labelled_report, 'artifact': str(out), 'run_dir': str(run_dir),
              'labels_calib': str(calib_paths[0]),
              'steps': trained['steps'], 'label_minutes': labelled_minutes,
              'finetune_minutes': finetune_minutes,
              'frames_replayed': options.replay_frames,
              **judge(labelled[0]['estimator'], candidate, heldout, generic,
                      options.generic_tolerance)}
    if store is not None and report['accepted']:
        store.set_candidate(out)     # the node's gate judges it again on its own frames
        report['model_store_candidate'] = str(out)
    return report
