"""Calibration benchmark, straight from a recording: ``robotag-calibrate --images`` on a rosbag2.

Renders a held-out static-camera recording (robotag_ros.data.synthetic.sample_sequence: one fixed
camera, smooth arm motion, 640x480, a seed never used for training), writes it as a rosbag2 the
way a robot records one (JPEG CompressedImage + CameraInfo + ``/joint_states``,
robotag_ros.data.bags.sample_bag), runs the one command a user runs on it, and compares the
``.calib`` it writes with the camera the recording was rendered from. Keys
``calibration_images_*`` (units in the names); target <= 10 mm / 1 deg at 200 frames. Then the
same recording with the tripod knocked halfway (``--bump-mm``, ``--bump-deg``; keys
``calibration_images_bump_*``): is the move reported, and is the .calib the camera after it?
``calibration_images_per_frame_aggregate_*``: the robust average of the per-frame cameras the
command computes on the way (its result before the joint fit; ``--no-joint-fit``).
``--extra-seeds``: more recordings (static camera only; keys
``calibration_images_seed_<S>_*``), since one recording's error says little about the next
one's. Writes benchmarks/results/calibration_images.json and prints a table.

    PYTHONPATH=. nice -n 10 python benchmarks/calibration_images.py [--frames 200]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.calibration import MODEL_SEED_BASE, RESULTS_DIR  # noqa: E402
from benchmarks.machine import machine_name, write_results  # noqa: E402

RESULTS = RESULTS_DIR / 'calibration_images.json'
TARGET_TRANSLATION_MM, TARGET_ROTATION_DEG = 10.0, 1.0


def calibrate_recording(model: str, frames: int, seed: int, backend: str, **render_options):
    """Render and record one recording, run the command on it. Returns (T_cam_base at the
    start and at the end of the recording; the written .calib's; the summary JSON; seconds of
    the command; seconds of rendering)."""
    import torch

    from robotag_ros.calibration import read_calib
    from robotag_ros.calibration.cli import main as calibrate
    from robotag_ros.data.bags.sample_bag import render_sample_bag
    from robotag_ros.model.artifact import load_sidecar
    from robotag_ros.robot import load_robot

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        bag, output, summary_path = (Path(tmp) / 'recording', Path(tmp) / 'robotag.calib',
                                     Path(tmp) / 'summary.json')
        started = time.perf_counter()
        recorded = render_sample_bag(bag, load_robot(load_sidecar(model).robot), seed, frames,
                                     joint_states_topic='/joint_states', **render_options)
        rendered_s = time.perf_counter() - started
        T_first, T_last = recorded[0].T_cam_base, recorded[-1].T_cam_base
        del recorded
        started = time.perf_counter()
        code = calibrate(['--images', str(bag), '--model', model, '--backend', backend,
                          '--output', str(output), '--summary-json', str(summary_path)])
        command_s = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f'robotag-calibrate --images failed (exit code {code})')
        return (T_first, T_last, read_calib(output).T_cam_reference,
                json.loads(summary_path.read_text()), command_s, rendered_s)


def aggregate_errors(summary: dict, T_true: np.ndarray, prefix: str) -> dict:
    """Errors of the per-frame average (in the summary when the joint fit was the result)."""
    from robotag_ros.calibration.synthetic import transform_error
    from robotag_ros.geometry.poses import transform_from_quaternion

    fields = 'per_frame_aggregate_T_cam_reference'
    if f'{fields}_x_m' not in summary:
        return {}
    T = transform_from_quaternion([summary[f'{fields}_{a}_m'] for a in 'xyz'],
                                  [summary[f'{fields}_q{a}'] for a in 'xyzw'])
    translation_mm, rotation_deg = transform_error(T, T_true)
    return {f'{prefix}per_frame_aggregate_translation_error_mm': translation_mm,
            f'{prefix}per_frame_aggregate_rotation_error_deg': rotation_deg}


def measure_seed(model: str, frames: int, seed: int, backend: str, prefix: str) -> dict:
    """Another static-camera recording: its errors, keys ``<prefix>*``."""
    from robotag_ros.calibration.synthetic import transform_error

    _, T_true, T_found, summary, _, _ = calibrate_recording(model, frames, seed, backend)
    translation_mm, rotation_deg = transform_error(T_found, T_true)
    return {f'{prefix}recording_seed': seed,
            f'{prefix}translation_error_mm': translation_mm,
            f'{prefix}rotation_error_deg': rotation_deg,
            **aggregate_errors(summary, T_true, prefix),
            f'{prefix}frames_used': summary['frames_used'],
            f'{prefix}method': summary['calibration_method']}


def measure(model: str, frames: int, seed: int, backend: str) -> dict:
    """A static camera: the flat ``calibration_images_*`` results."""
    from robotag_ros.calibration.synthetic import base_yaw_error_deg, transform_error

    _, T_true, T_found, summary, command_s, rendered_s = calibrate_recording(
        model, frames, seed, backend)
    translation_mm, rotation_deg = transform_error(T_found, T_true)
    return {
        'calibration_images_method': summary['calibration_method'],
        'calibration_images_translation_error_mm': translation_mm,
        'calibration_images_rotation_error_deg': rotation_deg,
        'calibration_images_rotation_error_about_base_z_deg': base_yaw_error_deg(T_found, T_true),
        'calibration_images_frames': frames,
        'calibration_images_frames_estimated': summary['recording_frames_estimated'],
        **aggregate_errors(summary, T_true, 'calibration_images_'),
        'calibration_images_frames_used': summary['frames_used'],
        'calibration_images_joint_fit_points_used': summary.get('joint_fit_points_used', 0),
        'calibration_images_joint_fit_rms_px': summary.get('joint_fit_rms_px', float('nan')),
        'calibration_images_translation_spread_mm': summary['translation_spread_mm'],
        'calibration_images_rotation_spread_deg': summary['rotation_spread_deg'],
        'calibration_images_camera_moved': summary['camera_moved'],
        'calibration_images_camera_motion_translation_mm': summary[
            'camera_motion_translation_mm'],
        'calibration_images_camera_motion_rotation_deg': summary['camera_motion_rotation_deg'],
        'calibration_images_command_seconds': command_s,
        'calibration_images_seconds_per_frame': command_s / frames,
        'calibration_images_render_seconds': rendered_s,
        'calibration_images_meets_target': bool(translation_mm <= TARGET_TRANSLATION_MM
                                                and rotation_deg <= TARGET_ROTATION_DEG),
    }


def measure_bump(model: str, frames: int, seed: int, backend: str, bump_mm: float,
                 bump_deg: float) -> dict:
    """The same recording with the tripod knocked halfway (``bump_mm`` along the camera's x,
    ``bump_deg`` about its y): is it reported, where, and how far is the .calib from the camera
    as it is after the bump? Keys ``calibration_images_bump_*``."""
    from scipy.spatial.transform import Rotation

    from robotag_ros.calibration.synthetic import transform_error

    bump = np.eye(4)
    bump[:3, :3] = Rotation.from_euler('y', bump_deg, degrees=True).as_matrix()
    bump[0, 3] = bump_mm / 1000.0
    T_before, T_after, T_found, summary, _, _ = calibrate_recording(
        model, frames, seed, backend, camera_bump=(frames // 2, bump))
    translation_mm, rotation_deg = transform_error(T_found, T_after)
    # the knock as the check sees it: the change of T_cam_base (the base seen from the camera)
    change_mm, change_deg = transform_error(T_after, T_before)
    return {
        'calibration_images_bump_translation_mm': bump_mm,
        'calibration_images_bump_rotation_deg': bump_deg,
        'calibration_images_bump_T_cam_base_change_mm': change_mm,
        'calibration_images_bump_T_cam_base_change_deg': change_deg,
        'calibration_images_bump_at_frame': frames // 2,
        'calibration_images_bump_reported': summary['camera_moved'],
        'calibration_images_bump_reported_kind': summary['camera_motion_kind'],
        'calibration_images_bump_reported_translation_mm': summary[
            'camera_motion_translation_mm'],
        'calibration_images_bump_reported_rotation_deg': summary['camera_motion_rotation_deg'],
        'calibration_images_bump_reported_at_stamp_ns': summary['camera_motion_at_stamp_ns'],
        'calibration_images_bump_frames_used': summary['frames_used'],
        'calibration_images_bump_translation_error_mm': translation_mm,
        'calibration_images_bump_rotation_error_deg': rotation_deg,
    }


def format_table(results: dict) -> str:
    rows = [(key.removeprefix('calibration_images_'), value) for key, value in results.items()
            if key.startswith('calibration_images_')]
    width = max(len(name) for name, _ in rows)
    return '\n'.join(f'{name:<{width}}  {value:.3f}' if isinstance(value, float)
                     else f'{name:<{width}}  {value}' for name, value in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default=None, help='artifact (default: the bundled model)')
    parser.add_argument('--frames', type=int, default=200)
    parser.add_argument('--seed', type=int, default=0,
                        help=f'recording seed, offset by {MODEL_SEED_BASE} (held out)')
    parser.add_argument('--backend', default='onnxruntime')
    parser.add_argument('--bump-mm', type=float, default=30.0,
                        help='also a recording whose camera is knocked halfway by this much '
                             '(0: none)')
    parser.add_argument('--bump-deg', type=float, default=1.5)
    parser.add_argument('--extra-seeds', type=int, nargs='*', default=[1, 2, 3, 4],
                        help='more static-camera recordings (seeds offset as --seed)')
    parser.add_argument('--output', type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from robotag_ros.bundled import default_model_path

    model = str(args.model or default_model_path())
    seed = MODEL_SEED_BASE + args.seed
    results = measure(model, args.frames, seed, args.backend)
    if args.bump_mm > 0 or args.bump_deg > 0:
        results.update(measure_bump(model, args.frames, seed, args.backend, args.bump_mm,
                                    args.bump_deg))
    for extra in args.extra_seeds:
        results.update(measure_seed(model, args.frames, MODEL_SEED_BASE + extra, args.backend,
                                    f'calibration_images_seed_{extra}_'))
    extra_keys = [f'calibration_images_seed_{extra}_' for extra in args.extra_seeds]
    if extra_keys:   # the mean over every recording, this one included
        for name in ('translation_error_mm', 'rotation_error_deg',
                     'per_frame_aggregate_translation_error_mm',
                     'per_frame_aggregate_rotation_error_deg'):
            values = [results.get(f'{prefix}{name}') for prefix in
                      ['calibration_images_'] + extra_keys]
            if all(v is not None for v in values):
                results[f'calibration_images_all_recordings_mean_{name}'] = float(np.mean(values))
                results[f'calibration_images_all_recordings_max_{name}'] = float(np.max(values))
    print(format_table(results))
    write_results(args.output, {
        'source': 'robotag-calibrate --images on a rendered held-out static-camera recording '
                  '(sample_sequence: one fixed camera, 640x480, smooth arm motion; JPEG '
                  'CompressedImage + CameraInfo + /joint_states in an MCAP rosbag2), eye-on-base, '
                  'default settings (the result: one camera fitted to all kept frames\' detected '
                  'keypoints, joint_camera_fit.py; per_frame_aggregate_*: the robust average of '
                  'the per-frame cameras it starts from); errors of the written .calib against '
                  'the rendered camera (seed_<S>_*: more recordings, static camera) '
                  '(calibration_images_bump_*: the same recording with the camera knocked '
                  'halfway, errors against the camera after the knock)',
        'model': model, 'backend': args.backend, 'recording_seed': seed,
        'target_translation_error_mm': TARGET_TRANSLATION_MM,
        'target_rotation_error_deg': TARGET_ROTATION_DEG,
        'machine': machine_name(),
        **results,
    })
    return 0


if __name__ == '__main__':
    sys.exit(main())
