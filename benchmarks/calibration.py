"""Calibration benchmark: error of the aggregated camera<->base transform vs the number of frames.

Synthetic sequences with a known ground truth and noisy per-frame estimates (the noise/outlier
model of robotag_ros.calibration.synthetic), aggregated with and without outlier rejection, for 10,
50 and 200 frames, over several random trials. Prints a table and writes
benchmarks/results/calibration.json. The estimates are SIMULATED, not the model's:
``estimates_source`` in the JSON says so. To measure the real model, pass an ``EstimateSource``
returning its per-frame estimates to :func:`run_benchmark`.

    PYTHONPATH=. python benchmarks/calibration.py [--trials 50] [--outlier-fraction 0.2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robotag_ros.calibration import aggregate_transforms  # noqa: E402
from robotag_ros.calibration.synthetic import (  # noqa: E402
    NoiseModel, random_transform, simulate_estimates, transform_error,
)

RESULTS = Path(__file__).resolve().parent / 'results' / 'calibration.json'

# (T_true (4, 4), num_frames, rng) -> (T_cam_base estimates (N, 4, 4), consistency (N,))
EstimateSource = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def simulated_source(noise: NoiseModel) -> EstimateSource:
    def source(T_true, num_frames, rng):
        sim = simulate_estimates(T_true, num_frames, noise, rng)
        return sim.T, sim.consistency
    return source


def machine() -> str:
    return (f'{platform.node()} {platform.machine()} {platform.processor() or ""} '
            f'{os.cpu_count()} cpus, python {platform.python_version()}').replace('  ', ' ')


def run_benchmark(source: EstimateSource, frame_counts=(10, 50, 200), trials: int = 50,
                  min_consistency: float = 0.0, seed: int = 0) -> dict:
    """Mean and 95th-percentile errors per frame count, with and without outlier rejection."""
    rng = np.random.default_rng(seed)
    results: dict = {}
    for num_frames in frame_counts:
        errors = {True: [], False: []}
        used = []
        for _ in range(trials):
            T_true = random_transform(rng)
            T_true[:3, 3] = rng.uniform([-0.3, -0.3, 0.8], [0.3, 0.3, 2.0])  # base in view
            estimates, consistency = source(T_true, num_frames, rng)
            for reject in (True, False):
                result = aggregate_transforms(
                    estimates, consistency if reject else None,
                    min_consistency=min_consistency if reject else 0.0, reject_outliers=reject)
                errors[reject].append(transform_error(result.T, T_true))
                if reject:
                    used.append(result.frames_used / num_frames)
        for reject, tag in ((True, ''), (False, '_no_rejection')):
            translation_mm, rotation_deg = np.asarray(errors[reject]).T
            prefix = f'frames_{num_frames}{tag}'
            results[f'{prefix}_translation_error_mm'] = float(translation_mm.mean())
            results[f'{prefix}_rotation_error_deg'] = float(rotation_deg.mean())
            results[f'{prefix}_translation_error_p95_mm'] = float(np.percentile(translation_mm,
                                                                                95))
            results[f'{prefix}_rotation_error_p95_deg'] = float(np.percentile(rotation_deg, 95))
        results[f'frames_{num_frames}_frames_used_percent'] = float(100.0 * np.mean(used))
    return results


def format_table(results: dict, frame_counts) -> str:
    header = (f'{"frames":>6} | {"rejection":>9} | {"transl. mm":>10} | {"p95 mm":>8} | '
              f'{"rot. deg":>8} | {"p95 deg":>8}')
    lines = [header, '-' * len(header)]
    for num_frames in frame_counts:
        for tag, label in (('', 'yes'), ('_no_rejection', 'no')):
            p = f'frames_{num_frames}{tag}'
            lines.append(f'{num_frames:>6} | {label:>9} | '
                         f'{results[p + "_translation_error_mm"]:>10.3f} | '
                         f'{results[p + "_translation_error_p95_mm"]:>8.3f} | '
                         f'{results[p + "_rotation_error_deg"]:>8.4f} | '
                         f'{results[p + "_rotation_error_p95_deg"]:>8.4f}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, nargs='+', default=[10, 50, 200])
    parser.add_argument('--trials', type=int, default=50)
    parser.add_argument('--translation-sigma-mm', type=float, default=5.0)
    parser.add_argument('--rotation-sigma-deg', type=float, default=0.5)
    parser.add_argument('--outlier-fraction', type=float, default=0.2)
    parser.add_argument('--min-consistency', type=float, default=0.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--output', type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    noise = NoiseModel(translation_sigma_m=args.translation_sigma_mm / 1000.0,
                       rotation_sigma_deg=args.rotation_sigma_deg,
                       outlier_fraction=args.outlier_fraction)
    results = run_benchmark(simulated_source(noise), args.frames, args.trials,
                            args.min_consistency, args.seed)
    print(format_table(results, args.frames))
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
        'trials_per_frame_count': args.trials,
        'min_consistency': args.min_consistency,
        'outlier_rejection': 'median + 3 * 1.4826 * MAD on translation and geodesic rotation '
                             'distance, iterated; rotations averaged by Rotation.mean (chordal)',
        'no_rejection': 'plain mean of all frames (translation mean, chordal rotation mean)',
        'machine': machine(),
        **results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(report, indent=2) + '\n')
    os.replace(tmp, args.output)
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
