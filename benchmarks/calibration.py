"""Calibration benchmark: error of the aggregated camera<->base transform vs the number of frames.

Per-frame camera<->base estimates with a known ground truth, aggregated with and without outlier
rejection, for 10, 50 and 200 frames, over several trials. Two sources of estimates:

- ``--model ARTIFACT``: the model's own estimates. Each trial renders a held-out synthetic
  recording (robotag_ros.data.synthetic.sample_sequence: one fixed camera, smooth arm motion, a
  seed never used for training) and runs the Estimator on every frame, once from the image alone
  and once with the recording's joint angles as measured (a hand-eye calibration reads the
  encoders; only the camera is fitted then: keys ``frames_N_measured_joints_*``). Writes
  benchmarks/results/calibration_model.json.
- otherwise SIMULATED estimates (the noise/outlier model of robotag_ros.calibration.synthetic),
  which measure the aggregation alone. Writes benchmarks/results/calibration.json.

``estimates_source`` in the JSON says which. Prints a table either way.

    PYTHONPATH=. python benchmarks/calibration.py [--trials 50] [--outlier-fraction 0.2]
    PYTHONPATH=. python benchmarks/calibration.py --model models/panda_default --trials 5
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_name  # noqa: E402
from robotag_ros.atomic_io import atomic_write_text  # noqa: E402
from robotag_ros.calibration import aggregate_transforms  # noqa: E402
from robotag_ros.calibration.synthetic import (  # noqa: E402
    NoiseModel, base_yaw_error_deg, random_transform, simulate_estimates, transform_error,
)

RESULTS_DIR = Path(__file__).resolve().parent / 'results'
RESULTS = RESULTS_DIR / 'calibration.json'
MODEL_RESULTS = RESULTS_DIR / 'calibration_model.json'
# Trial seeds for the rendered recordings: far from the training seeds (1..4) and the sample bag's.
MODEL_SEED_BASE = 7_000_000

# (num_frames, rng) -> (T_true (4, 4), {variant: (T_cam_base estimates (N, 4, 4),
# consistency (N,))}); the variant ('' or e.g. '_measured_joints') goes into the result keys.
EstimateSource = Callable[[int, np.random.Generator],
                          tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]]
MEASURED_JOINTS = '_measured_joints'


def simulated_source(noise: NoiseModel) -> EstimateSource:
    def source(num_frames, rng):
        T_true = random_transform(rng)
        T_true[:3, 3] = rng.uniform([-0.3, -0.3, 0.8], [0.3, 0.3, 2.0])  # base in view
        sim = simulate_estimates(T_true, num_frames, noise, rng)
        return T_true, {'': (sim.T, sim.consistency)}
    return source


def model_source(artifact: str, backend: str = 'onnxruntime', stats: dict | None = None
                 ) -> EstimateSource:
    """The Estimator's estimates on freshly rendered held-out recordings (one camera each):
    from the image alone, and with the recording's joint angles given as measured (the
    encoders a hand-eye calibration reads; only the camera is fitted then)."""
    from robotag_ros.data.synthetic.sample_sequence import SequenceRenderer
    from robotag_ros.inference.estimate import estimate_recording
    from robotag_ros.estimator_factory import load_estimator

    estimator = load_estimator(artifact, backend=backend)
    renderer = SequenceRenderer(estimator.robot)
    stats = {} if stats is None else stats

    def source(num_frames, rng):
        seed = MODEL_SEED_BASE + int(rng.integers(1_000_000))
        frames = renderer.render(seed=seed, num_frames=num_frames)
        # Frame by frame as the node runs them (track_robot: each looks where the previous
        # trusted one found the robot).
        images, Ks = [f.rgb for f in frames], [f.K for f in frames]
        estimates = estimate_recording(estimator, images, Ks, with_points=False)
        measured = estimate_recording(estimator, images, Ks, with_points=False,
                                      joint_angles_rad=[f.joint_angles_rad for f in frames])
        stats.setdefault('consistency', []).extend(e.consistency for e in estimates)
        stats.setdefault('joint_error_deg', []).extend(
            np.degrees(np.abs(e.joint_angles_rad - f.joint_angles_rad)).mean()
            for e, f in zip(estimates, frames))
        return frames[0].T_cam_base, {
            variant: (np.stack([e.T_cam_base for e in found]),
                      np.array([e.consistency for e in found]))
            for variant, found in (('', estimates), (MEASURED_JOINTS, measured))}
    return source


def run_benchmark(source: EstimateSource, frame_counts=(10, 50, 200), trials: int = 50,
                  min_consistency: float = 0.0, seed: int = 0) -> dict:
    """Mean and 95th-percentile errors per frame count and estimate variant, with and without
    outlier rejection."""
    rng = np.random.default_rng(seed)
    results: dict = {}
    for num_frames in frame_counts:
        errors: dict = {}
        used: dict = {}
        for _ in range(trials):
            T_true, variants = source(num_frames, rng)
            for variant, (estimates, consistency) in variants.items():
                for reject in (True, False):
                    result = aggregate_transforms(
                        estimates, consistency if reject else None,
                        min_consistency=min_consistency if reject else 0.0,
                        reject_outliers=reject)
                    errors.setdefault((variant, reject), []).append(
                        (*transform_error(result.T, T_true), base_yaw_error_deg(result.T, T_true)))
                    if reject:
                        used.setdefault(variant, []).append(result.frames_used / num_frames)
        for (variant, reject), found in errors.items():
            translation_mm, rotation_deg, yaw_deg = np.asarray(found).T
            prefix = f'frames_{num_frames}{variant}{"" if reject else "_no_rejection"}'
            results[f'{prefix}_translation_error_mm'] = float(translation_mm.mean())
            results[f'{prefix}_rotation_error_deg'] = float(rotation_deg.mean())
            results[f'{prefix}_translation_error_p95_mm'] = float(np.percentile(translation_mm,
                                                                                95))
            results[f'{prefix}_rotation_error_p95_deg'] = float(np.percentile(rotation_deg, 95))
            # The part of the rotation error about the base's z axis (joint 1's axis).
            results[f'{prefix}_rotation_error_about_base_z_deg'] = float(yaw_deg.mean())
        for variant, fractions in used.items():
            results[f'frames_{num_frames}{variant}_frames_used_percent'] = float(
                100.0 * np.mean(fractions))
    return results


def format_table(results: dict, frame_counts) -> str:
    header = (f'{"frames":>6} | {"joints":>9} | {"rejection":>9} | {"transl. mm":>10} | '
              f'{"p95 mm":>8} | {"rot. deg":>8} | {"p95 deg":>8} | {"yaw deg":>8}')
    lines = [header, '-' * len(header)]
    for num_frames in frame_counts:
        for variant, joints in (('', 'estimated'), (MEASURED_JOINTS, 'measured')):
            for tag, label in (('', 'yes'), ('_no_rejection', 'no')):
                p = f'frames_{num_frames}{variant}{tag}'
                if p + '_translation_error_mm' not in results:
                    continue
                lines.append(f'{num_frames:>6} | {joints:>9} | {label:>9} | '
                             f'{results[p + "_translation_error_mm"]:>10.3f} | '
                             f'{results[p + "_translation_error_p95_mm"]:>8.3f} | '
                             f'{results[p + "_rotation_error_deg"]:>8.4f} | '
                             f'{results[p + "_rotation_error_p95_deg"]:>8.4f} | '
                             f'{results[p + "_rotation_error_about_base_z_deg"]:>8.4f}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, nargs='+', default=[10, 50, 200])
    parser.add_argument('--trials', type=int, default=None,
                        help='trials per frame count (default 50 simulated, 5 with --model)')
    parser.add_argument('--model', default=None,
                        help='measure this artifact\'s own estimates on rendered recordings')
    parser.add_argument('--backend', default='onnxruntime', help='Estimator backend (--model)')
    parser.add_argument('--translation-sigma-mm', type=float, default=5.0)
    parser.add_argument('--rotation-sigma-deg', type=float, default=0.5)
    parser.add_argument('--outlier-fraction', type=float, default=0.2)
    parser.add_argument('--min-consistency', type=float, default=0.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--output', type=Path, default=None)
    args = parser.parse_args(argv)

    if args.model:
        trials = args.trials or 5
        stats: dict = {}
        results = run_benchmark(model_source(args.model, args.backend, stats), args.frames,
                                trials, args.min_consistency, args.seed)
        report = {
            'estimates_source': f'the model\'s own estimates ({args.model}, {args.backend}) on '
                                'rendered held-out recordings (sample_sequence: one fixed camera '
                                'per trial, 640x480, smooth arm motion), frame by frame as the '
                                'node runs them (each looks where the previous trusted one found '
                                'the robot); frames_N_*: joints '
                                'estimated from the image too; frames_N_measured_joints_*: the '
                                'recording\'s joint angles given as measured (encoders), only '
                                'the camera fitted to the model\'s keypoints',
            'model': str(args.model),
            'mean_per_frame_joint_error_deg': float(np.mean(stats['joint_error_deg'])),
            'mean_per_frame_consistency': float(np.mean(stats['consistency'])),
        }
        output = args.output or MODEL_RESULTS
    else:
        trials = args.trials or 50
        noise = NoiseModel(translation_sigma_m=args.translation_sigma_mm / 1000.0,
                           rotation_sigma_deg=args.rotation_sigma_deg,
                           outlier_fraction=args.outlier_fraction)
        results = run_benchmark(simulated_source(noise), args.frames, trials,
                                args.min_consistency, args.seed)
        report = {
            'estimates_source': 'simulated (robotag_ros.calibration.synthetic), NOT the model\'s '
                                'estimates',
            'noise_translation_sigma_mm': 1000.0 * noise.translation_sigma_m,
            'noise_rotation_sigma_deg': noise.rotation_sigma_deg,
            'noise_outlier_fraction': noise.outlier_fraction,
            'noise_outlier_translation_min_mm': 1000.0 * noise.outlier_translation_range_m[0],
            'noise_outlier_translation_max_mm': 1000.0 * noise.outlier_translation_range_m[1],
            'noise_outlier_rotation': 'uniformly random',
            'noise_inlier_consistency_range': list(noise.inlier_consistency_range),
            'noise_outlier_consistency_range': list(noise.outlier_consistency_range),
        }
        output = args.output or RESULTS
    print(format_table(results, args.frames))
    report.update({
        'trials_per_frame_count': trials,
        'min_consistency': args.min_consistency,
        'outlier_rejection': 'median + 3 * 1.4826 * MAD on translation and geodesic rotation '
                             'distance, iterated; rotations averaged by Rotation.mean (chordal)',
        'no_rejection': 'plain mean of all frames (translation mean, chordal rotation mean)',
        'machine': machine_name(),
        **results,
    })
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, json.dumps(report, indent=2) + '\n')
    print(f'wrote {output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
