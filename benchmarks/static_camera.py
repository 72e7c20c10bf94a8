"""A static camera is one camera: the free fit vs the running camera estimate vs a .calib.

Renders held-out static-camera recordings (SyntheticFrameGenerator.generate_sequence in
config/synth/dr_default.yaml's look: one room, one camera and K, the arm moving smoothly; seeds
never used for training) and estimates every frame with the bundled model three ways, in order,
as the estimator node does:

- ``free``: every frame fits joints and camera (RobotTracker; the node's default);
- ``static``: ``static_camera`` on: the running estimate (calibration/static_camera.py) from the
  free fits until it is stable, then the joints alone with that camera fixed;
- ``calib``: ``camera_calibration_file``: the joints alone from the first frame, the camera read
  from a .calib; once the rendered camera itself (``calib_true``) and once that camera off by
  what robotag-calibrate --images reaches on such recordings (``calib_off``: 5 mm and 1 deg,
  benchmarks/results/calibration_images.json).

Reports per mode joints 1-6 mean error (degrees) and the mirrored-frame rate (joint 1 or the
camera's azimuth about the base off by more than 90 deg), over all frames and over the frames
after the running estimate became stable; and the running estimate's own error.
Writes benchmarks/results/static_camera.json and prints a table.

    PYTHONPATH=. nice -n 10 python benchmarks/static_camera.py [--frames 80] [--seeds 8001 8002]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_name, write_results  # noqa: E402

RESULTS = REPO / 'benchmarks' / 'results' / 'static_camera.json'
CALIB_OFF_MM, CALIB_OFF_DEG = 5.0, 1.0
MODES = ('free', 'static', 'calib_true', 'calib_off')


def render(robot, seed: int, frames: int, width: int, height: int):
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.data.synthetic.frame_generator import SyntheticFrameGenerator
    generator = SyntheticFrameGenerator(
        robot, load_dr_config(REPO / 'config' / 'synth' / 'dr_default.yaml'), height, width)
    try:
        return generator.generate_sequence(seed, frames)
    finally:
        generator.close()


def off_camera(T_cam_base: np.ndarray, seed: int) -> np.ndarray:
    """The camera moved by CALIB_OFF_MM along and turned by CALIB_OFF_DEG about random axes."""
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(seed)
    axis, direction = rng.normal(size=3), rng.normal(size=3)
    T_off = np.eye(4)
    T_off[:3, :3] = Rotation.from_rotvec(np.radians(CALIB_OFF_DEG) * axis
                                         / np.linalg.norm(axis)).as_matrix()
    T_off[:3, 3] = CALIB_OFF_MM / 1000.0 * direction / np.linalg.norm(direction)
    return T_off @ T_cam_base


def calib_file(T_cam_base: np.ndarray, robot, folder: Path, name: str) -> Path:
    from robotag_ros.calibration.calib_file import HandEyeCalibration, write_calib
    return write_calib(folder / f'{name}.calib', HandEyeCalibration(
        name=name, calibration_type='eye_on_base', T_cam_reference=T_cam_base,
        robot_base_frame=robot.base_frame, robot_effector_frame='panda_hand',
        tracking_base_frame='camera_color_optical_frame'))


def run_mode(estimator, frames, camera):
    """Estimates of every frame in order, as the node does (``camera`` None: the free fit), and
    the index of the first frame fitted with the camera fixed."""
    from robotag_ros.calibration.static_camera import estimate_static_recording
    return estimate_static_recording(estimator, ((f.rgb, f.K) for f in frames), camera)


def scores(estimates, frames) -> dict:
    from robotag_ros.metrics import pose_metrics
    if not frames:
        return {'frames': 0}
    q_pred = np.stack([e.joint_angles_rad for e in estimates])
    q_true = np.stack([f.joint_angles_rad for f in frames])
    errors = pose_metrics.joint_errors_deg(q_pred, q_true)
    azimuth = pose_metrics.camera_azimuth_error_deg(np.stack([e.T_cam_base for e in estimates]),
                                                    np.stack([f.T_cam_base for f in frames]))
    return {'frames': len(frames),
            'joint_error_j1_6_deg': float(errors[:, :6].mean()),
            'median_frame_joint_error_j1_6_deg': float(np.median(errors[:, :6].mean(1))),
            'mirrored_frames_percent': pose_metrics.mirrored_frames_percent(errors, azimuth)}


def measure_recording(estimator, robot, seed: int, frames_count: int, width: int,
                      height: int) -> dict:
    from robotag_ros.calibration.static_camera import RunningCamera, camera_from_calib
    from robotag_ros.calibration.synthetic import transform_error

    started = time.perf_counter()
    frames = render(robot, seed, frames_count, width, height)
    result = {'seed': seed, 'render_seconds': time.perf_counter() - started}
    T_true = frames[0].T_cam_base
    with tempfile.TemporaryDirectory() as folder:
        cameras = {'free': None, 'static': RunningCamera(),
                   'calib_true': RunningCamera(T_cam_base=camera_from_calib(
                       calib_file(T_true, robot, Path(folder), 'true'), robot.base_frame)),
                   'calib_off': RunningCamera(T_cam_base=camera_from_calib(
                       calib_file(off_camera(T_true, seed), robot, Path(folder), 'off'),
                       robot.base_frame))}
        runs = {}
        for mode in MODES:
            started = time.perf_counter()
            runs[mode] = run_mode(estimator, frames, cameras[mode])
            result[f'{mode}_seconds_per_frame'] = (time.perf_counter() - started) / len(frames)
    stable_from = runs['static'][1]
    result['static_stable_from_frame'] = stable_from
    running = cameras['static']
    if running.T_cam_base is not None:
        translation_mm, rotation_deg = transform_error(running.T_cam_base, T_true)
        result['static_running_translation_error_mm'] = translation_mm
        result['static_running_rotation_error_deg'] = rotation_deg
        result.update({k: v for k, v in running.summary().items() if k != 'static_camera_state'})
    after = slice(stable_from if stable_from is not None else len(frames), None)
    for mode, (estimates, _) in runs.items():
        for name, value in scores(estimates, frames).items():
            result[f'{mode}_all_{name}'] = value
        for name, value in scores(estimates[after], frames[after]).items():
            result[f'{mode}_after_stable_{name}'] = value
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default=str(REPO / 'models' / 'panda_default'))
    parser.add_argument('--backend', default='auto')
    parser.add_argument('--frames', type=int, default=80)
    parser.add_argument('--seeds', type=int, nargs='+', default=[8001, 8002, 8003])
    parser.add_argument('--size', default='640x480', help='WIDTHxHEIGHT, pixels')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--json', default=str(RESULTS))
    args = parser.parse_args(argv)

    import torch

    from robotag_ros.estimator_factory import load_estimator
    from robotag_ros.model.artifact import load_sidecar
    from robotag_ros.robot import load_robot

    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split('x'))
    robot = load_robot(load_sidecar(args.model).robot)
    estimator = load_estimator(args.model, backend=args.backend)
    recordings = [measure_recording(estimator, robot, seed, args.frames, width, height)
                  for seed in args.seeds]
    result = {
        'source': __doc__.split('\n\n')[0], 'machine': machine_name(), 'model': args.model,
        'backend': estimator.backend_name, 'image_width_px': width, 'image_height_px': height,
        'frames_per_recording': args.frames, 'calib_off_mm': CALIB_OFF_MM,
        'calib_off_deg': CALIB_OFF_DEG, 'recordings': recordings}
    # Frame-weighted over the recordings (each has the same number of frames).
    for mode in MODES:
        for part in ('all', 'after_stable'):
            for name in ('joint_error_j1_6_deg', 'mirrored_frames_percent'):
                key = f'{mode}_{part}_{name}'
                weights = [r[f'{mode}_{part}_frames'] for r in recordings]
                values = [r.get(key, np.nan) for r in recordings]
                result[key] = (float(np.average(values, weights=weights)) if sum(weights)
                               else float('nan'))
    write_results(Path(args.json), result)
    width_key = max(len(k) for k in result if isinstance(result[k], float))
    for key, value in result.items():
        if isinstance(value, float):
            print(f'{key:<{width_key}}  {value:8.2f}')
    for recording in recordings:
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in recording.items()})
    return 0


if __name__ == '__main__':
    sys.exit(main())
