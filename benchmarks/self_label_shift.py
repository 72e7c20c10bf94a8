"""Benchmark: does self-labelling fine-tuning on one recording of a shifted domain help on another?

Renders two static-camera recordings in config/synth/dr_shifted.yaml's look
(SyntheticFrameGenerator.generate_sequence: one camera and one scene each, another camera each,
the arm moving; one set of intrinsics, as one CameraInfo; ``--shared-scene``: one cell seen by
the two cameras, the user's robot and room with the camera moved): the first as a rosbag2 the way a
robot records one (JPEG CompressedImage + CameraInfo + /joint_states), the second as a labelled
DREAM folder that is never trained on. Evaluates the model on the second, runs
``robotag-finetune --self-label``'s code path on the first (calibrate from the recording, label
by forward kinematics, drop disagreeing frames, fine-tune, swap gate), evaluates the candidate on
the second. Beside it, the same before/after on the first recording's own held-out block (its
last frames, never trained on: the camera the user kept; ``self_label_same_camera_*``), and
both models on the second camera's very views rendered again in the default look (its camera
and motion, not the domain: ``self_label_other_camera_default_look_*``; how much of that
camera's error the domain makes, which is all one recording can teach), with the two cameras'
distance and elevation about the base. Keys
``self_label_*`` (ADD AUC in percent, joints 1-6 in degrees, minutes, frames used and dropped);
writes benchmarks/results/self_label_shift.json and prints the table.

    PYTHONPATH=. nice -n 10 python benchmarks/self_label_shift.py --frames 300 --minutes 30
    # (the fine-tuning recipe is the product's; --epochs/--lr/--override change it;
    # --extra-recordings 2: two more recordings of the cell, other cameras, learnt together;
    # --other-seed S: another second camera)
    # the pipeline only, in about a minute (numbers meaningless, marked so in the JSON):
    PYTHONPATH=. python benchmarks/self_label_shift.py --model TINY_ARTIFACT --smoke-test
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.finetune_shift import fixed_camera_config  # noqa: E402
from benchmarks.machine import machine_name, write_results  # noqa: E402

RESULT = REPO / 'benchmarks' / 'results' / 'self_label_shift.json'
TRAIN_SEED, TEST_SEED = 3001, 4002          # two recordings, two cameras; no training set's
SCENE_SEED = 5003                           # --shared-scene: the one cell both cameras see
# --smoke-test's 20 frames leave room for a held-out part only with a short gap before it.
SMOKE_SELF_LABEL = dict(holdout_gap_frames=2, replay_frames=8, generic_check_frames=4)
START_NS, PERIOD_NS = 1_795_478_400_000_000_000, 66_666_667    # 15 Hz


def write_labelled(folder: Path, robot, frames, height: int, width: int, first: int = 0) -> None:
    """``frames[first:]`` as a labelled DREAM folder (the benchmark's truth; never trained on)."""
    from robotag_ros.data.dream.writer import write_frame, write_set_files
    from robotag_ros.data.synthetic.frame_generator import encode_jpeg
    write_set_files(folder, robot, frames[0].K, height, width)
    for index, frame in enumerate(frames[first:]):
        write_frame(folder, index, robot, frame, encode_jpeg(frame.rgb, 90), save_mask=False,
                    save_depth=False)


def render_labelled_recording(robot, config_path: Path, seed: int, frames: int, width: int,
                              height: int, folder: Path, shared_scene: bool = False,
                              first: int = 0) -> None:
    """Recording ``seed``'s frames from ``first`` on, rendered (again: the generator is
    deterministic in its seeds) with ``config_path``'s look as a labelled DREAM folder."""
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator

    generator = SyntheticFrameGenerator(robot, load_dr_config(config_path), height, width)
    try:
        recorded = generator.generate_sequence(
            seed, frames, scene_seed=SCENE_SEED if shared_scene else None)
    finally:
        generator.close()
    write_labelled(folder, robot, recorded, height, width, first)


def write_recording_bag(generator, robot, seed: int, frames: int, bag: Path,
                        scene_seed: int | None) -> np.ndarray:
    """One static-camera recording as a robot records it (JPEG images, CameraInfo,
    /joint_states); returns its camera's T_cam_base."""
    from robotag_ros.data.bags.sample_bag import write_sample_bag
    from robotag_ros.data.synthetic.sample_sequence import SAMPLE_FRAME_ID

    recorded = generator.generate_sequence(seed, frames, scene_seed=scene_seed)
    stamped = [SimpleNamespace(rgb=f.rgb, K=f.K, joint_angles_rad=f.joint_angles_rad,
                               T_cam_base=f.T_cam_base, stamp_ns=START_NS + i * PERIOD_NS)
               for i, f in enumerate(recorded)]
    write_sample_bag(bag, stamped, robot.joint_names, robot.base_frame, SAMPLE_FRAME_ID,
                     joint_states_topic='/joint_states')
    return recorded[0].T_cam_base


def extra_bag(work: Path, index: int) -> Path:
    """Where ``--extra-recordings`` puts recording ``index`` (2, 3, ...) of the first camera's
    cell, each through another camera."""
    return work / f'recording_bag_{index}'


def default_look_config(shifted_config: Path) -> Path:
    """The default domain randomisation's look (robot colours, lights, backgrounds, clutter,
    image effects) with ``shifted_config``'s cameras and intrinsics, and no rooms: the
    generator then draws the same camera and motion from a seed as ``shifted_config`` does (a
    room's floor would move both), so a recording rendered again with it shows the same views
    without the domain shift."""
    from robotag_ros.bundled import default_dr_config_path

    config = yaml.safe_load(Path(default_dr_config_path()).read_text())
    config.pop('room', None)
    config['name'] = 'dr_default_look_fixed_camera'
    config['camera'] = yaml.safe_load(shifted_config.read_text())['camera']
    path = shifted_config.with_name('dr_default_look_fixed_camera.yaml')
    path.write_text(yaml.safe_dump(config))
    return path


def render_recordings(robot, config_path: Path, frames: int, width: int, height: int,
                      bag: Path, heldout: Path, shared_scene: bool = False,
                      extra_bags: tuple[Path, ...] = (), other_seed: int = TEST_SEED) -> None:
    """The first recording as a rosbag2, the second as a labelled DREAM folder; with
    ``shared_scene`` both show one cell (robot colours, lights, background, clutter, image
    effects) through their two cameras, else each its own. ``extra_bags``: more recordings to
    learn from, each through yet another camera."""
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator

    generator = SyntheticFrameGenerator(robot, load_dr_config(config_path), height, width)
    try:
        scene_seed = SCENE_SEED if shared_scene else None
        np.save(bag.with_name('recording_T_cam_base.npy'), write_recording_bag(
            generator, robot, TRAIN_SEED, frames, bag, scene_seed))
        for index, extra in enumerate(extra_bags, start=1):
            write_recording_bag(generator, robot, TRAIN_SEED + 10 * index, frames, extra,
                                scene_seed)
        write_labelled(heldout, robot, generator.generate_sequence(
            other_seed, frames, scene_seed=scene_seed), height, width)
    finally:
        generator.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default=str(REPO / 'models' / 'panda_default'))
    parser.add_argument('--robot', default='panda')
    parser.add_argument('--frames', type=int, default=300, help='frames per recording')
    parser.add_argument('--size', default='640x480', help='WIDTHxHEIGHT, pixels')
    parser.add_argument('--fov-y-deg', type=float, default=42.0)
    parser.add_argument('--minutes', type=float, default=30.0, help='fine-tuning time budget')
    # None: the product's own recipe (training/finetune.py SELF_LABEL_DEFAULTS).
    parser.add_argument('--epochs', type=int, default=None)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument('--lr', type=float, default=None)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--backend', default='auto', help='estimator backend for labelling')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--smoke-test', action='store_true',
                        help='tiny sizes: proves the pipeline runs; the numbers mean nothing')
    parser.add_argument('--shared-scene', action='store_true',
                        help='both recordings show one cell (robot, lights, background, '
                             'clutter) through their two cameras: a user recording their '
                             'robot, then moving the camera')
    parser.add_argument('--replay-matched-camera', action='store_true',
                        help="replay rendered through the recording's camera (SelfLabelOptions)")
    parser.add_argument('--extra-recordings', type=int, default=0,
                        help='more recordings of the same cell to learn from, each through '
                             'another camera (the camera moved between them); the second '
                             'camera stays unseen')
    parser.add_argument('--other-seed', type=int, default=TEST_SEED,
                        help="the second recording's seed (its camera and motion)")
    parser.add_argument('--no-default-look', action='store_true',
                        help="skip the second camera's views rendered again in the default "
                             "look (how much of its error is the domain, ~3 minutes)")
    parser.add_argument('--override', action='append', default=[], metavar='KEY=VALUE')
    parser.add_argument('--variant', default='', help='what this run changes, for the JSON')
    parser.add_argument('--json', default=str(RESULT))
    args = parser.parse_args(argv)

    import torch

    from robotag_ros.metrics import format_table
    from robotag_ros.robot import load_robot
    from robotag_ros.training.evaluate import evaluate_artifact
    from robotag_ros.training.self_label import SelfLabelOptions, run_self_label

    torch.set_num_threads(args.threads)
    if args.smoke_test:
        args.frames, args.size, args.epochs, args.batch_size = min(args.frames, 20), \
            '160x120', 1, 4
    width, height = (int(v) for v in args.size.lower().split('x'))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='self_label_shift_'))
    work.mkdir(parents=True, exist_ok=True)
    robot = load_robot(args.robot)

    started = time.perf_counter()
    bag, heldout = work / 'recording_bag', work / 'heldout_recording'
    extras = tuple(extra_bag(work, index) for index in range(2, 2 + args.extra_recordings))
    render_minutes = None                   # None: the work dir's recordings were reused
    other_seed_file = work / 'other_recording_seed.txt'
    if not bag.exists():
        render_recordings(robot, fixed_camera_config(work, width, height, args.fov_y_deg),
                          args.frames, width, height, bag, heldout, args.shared_scene, extras,
                          args.other_seed)
        other_seed_file.write_text(f'{args.other_seed}\n')
        render_minutes = (time.perf_counter() - started) / 60.0
    elif other_seed_file.exists() and int(other_seed_file.read_text()) != args.other_seed:
        raise SystemExit(f'{work} holds a second recording of seed '
                         f'{other_seed_file.read_text().strip()}, not {args.other_seed}; use '
                         'another --work-dir')
    elif not all(extra.exists() for extra in extras):
        raise SystemExit(f'{work} holds recordings rendered without --extra-recordings '
                         f'{args.extra_recordings}; use another --work-dir')

    from robotag_ros.data.dream.dataset import DreamDataset
    from robotag_ros.geometry.view import camera_placement
    first_distance, first_elevation = camera_placement(np.load(work / 'recording_T_cam_base.npy'))
    other_distance, other_elevation = camera_placement(DreamDataset(
        heldout, robot, image_size=None, augment=False).raw_frame(0)['ground_truth'].T_cam_base)
    before = evaluate_artifact(args.model, str(heldout), device=args.device, print_table=False)
    recipe = [f'optim.{key}={value!r}' for key, value in (
        ('epochs', args.epochs), ('batch_size', args.batch_size), ('lr', args.lr))
        if value is not None] + list(args.override)
    report = run_self_label(
        [bag, *extras], args.model, work / 'self_labelled', SelfLabelOptions(
            backend=args.backend, replay_matches_camera=args.replay_matched_camera,
            **(SMOKE_SELF_LABEL if args.smoke_test else {})),
        overrides=[f'device={args.device}', f'time_budget_minutes={args.minutes}', *recipe])
    after = evaluate_artifact(report['artifact'], str(heldout), device=args.device,
                              print_table=False)
    # The same camera: the first recording's held-out block (its last frames, never trained
    # on), what a user who keeps the camera where it was gets.
    first = int(round((report['holdout_from_stamp_ns'] - START_NS) / PERIOD_NS))
    same_camera = work / f'first_recording_from_{first:06d}'
    if not same_camera.exists():
        render_labelled_recording(
            robot, fixed_camera_config(work, width, height, args.fov_y_deg), TRAIN_SEED,
            args.frames, width, height, same_camera, args.shared_scene, first)
    same_before, same_after = (evaluate_artifact(model, str(same_camera), device=args.device,
                                                 print_table=False)
                               for model in (args.model, report['artifact']))
    # The second camera's views without the domain shift: what of its error the domain (which
    # self-labelling can teach) makes, and what the view itself does.
    default_look = {}
    if not args.no_default_look:
        other_default = work / 'heldout_recording_default_look'
        if not other_default.exists():
            render_labelled_recording(robot, default_look_config(fixed_camera_config(
                work, width, height, args.fov_y_deg)), args.other_seed, args.frames, width,
                height, other_default, args.shared_scene)
        for name, model in (('before', args.model), ('after', report['artifact'])):
            scores = evaluate_artifact(model, str(other_default), device=args.device,
                                       print_table=False)
            default_look[f'self_label_other_camera_default_look_add_auc_{name}'] = \
                scores['add_auc']
            default_look[f'self_label_other_camera_default_look_joint_error_j1_6_deg_{name}'] = \
                scores['mean_joint_error_j1_6_deg']
    from robotag_ros.calibration.calib_file import read_calib
    from robotag_ros.calibration.synthetic import transform_error
    label_mm, label_deg = transform_error(read_calib(report['labels_calib']).T_cam_reference,
                                          np.load(work / 'recording_T_cam_base.npy'))

    result = {
        'machine': machine_name(), 'device': args.device, 'model': str(args.model),
        'smoke_test_numbers_meaningless': bool(args.smoke_test),
        'domain': 'config/synth/dr_shifted.yaml look, static camera per recording, one set of '
                  'intrinsics; trained on one recording, measured on another (never trained on)'
                  + ('; one scene (cell) seen by both cameras' if args.shared_scene
                     else '; each recording its own scene'),
        'self_label_shared_scene': bool(args.shared_scene),
        'self_label_other_recording_seed': args.other_seed,
        'image_width_px': width, 'image_height_px': height,
        'self_label_overrides': ' '.join(recipe),
        'self_label_variant': args.variant,
        'self_label_frames_per_recording': args.frames,
        'self_label_recordings_trained_on': 1 + args.extra_recordings,
        'self_label_frames_used': report['frames_trained'],
        'self_label_frames_held_out': report['frames_held_out'],
        'self_label_frames_dropped': report['frames_dropped_disagreeing']
        + report['frames_dropped_camera_moved'],
        'self_label_finetune_minutes': report['finetune_minutes'],
        'self_label_label_minutes': report['label_minutes'],
        'self_label_render_minutes': render_minutes,
        'self_label_steps': report['steps'],
        'self_label_frames_replayed': report['frames_replayed'],
        'self_label_replay_matches_camera': bool(args.replay_matched_camera),
        'self_label_labels_camera_error_mm': label_mm,
        'self_label_labels_camera_error_deg': label_deg,
        'self_label_generic_label_error_px_before': report.get('generic_label_error_px_before'),
        'self_label_generic_label_error_px_after': report.get('generic_label_error_px_after'),
        'self_label_holdout_label_error_px_before': report['holdout_label_error_px_before'],
        'self_label_holdout_label_error_px_after': report['holdout_label_error_px_after'],
        'self_label_add_auc_before': before['add_auc'],
        'self_label_add_auc_after': after['add_auc'],
        'self_label_joint_error_j1_6_deg_before': before['mean_joint_error_j1_6_deg'],
        'self_label_joint_error_j1_6_deg_after': after['mean_joint_error_j1_6_deg'],
        'self_label_same_camera_frames': args.frames - first,
        'self_label_same_camera_add_auc_before': same_before['add_auc'],
        'self_label_same_camera_add_auc_after': same_after['add_auc'],
        'self_label_same_camera_joint_error_j1_6_deg_before':
            same_before['mean_joint_error_j1_6_deg'],
        'self_label_same_camera_joint_error_j1_6_deg_after':
            same_after['mean_joint_error_j1_6_deg'],
        **default_look,
        'self_label_first_camera_distance_m': first_distance,
        'self_label_first_camera_elevation_deg': first_elevation,
        'self_label_other_camera_distance_m': other_distance,
        'self_label_other_camera_elevation_deg': other_elevation,
        'self_label_swap_gate_accepts': report['swap_gate_accepts'],
        'self_label_accepted': report['accepted'],
        'self_label_camera_moved': report.get('camera_moved'),
    }
    if args.smoke_test:
        result['note'] = ('smoke test: tiny sizes and one epoch prove the pipeline runs; these '
                          'numbers say nothing about self-labelling')
    print(format_table(result, title='self_label_shift: before vs after, on another recording'))
    write_results(args.json, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
