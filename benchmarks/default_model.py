"""Accuracy of the bundled default model on a held-out synthetic split and on a shifted domain.

Renders the two evaluation sets with `robotag-synth` (the seeds scripts/train_default_model.sh
holds out: 2 for the default domain, 4 for config/synth/dr_shifted.yaml) unless they exist,
evaluates the artifact through the Estimator (as the node runs it), prints the tables and writes
benchmarks/results/default_model.json (flat keys, units in the names, the machine named).

    PYTHONPATH=. python benchmarks/default_model.py [--model models/panda_default] [--frames 200]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_name, write_results  # noqa: E402

SETS = (('heldout', 2, 'config/synth/dr_default.yaml'),
        ('shifted', 4, 'config/synth/dr_shifted.yaml'))
KEYS = ('add_auc', 'add_mean_mm', 'mean_joint_error_deg', 'camera_translation_error_mm',
        'camera_rotation_error_deg', 'pck_auc', 'mean_consistency',
        'joint_source_2d_mean_joint_error_deg', 'joint_source_3d_mean_joint_error_deg',
        'joint_source_mean_mean_joint_error_deg', 'num_frames')


def main(argv=None) -> int:
    from robotag_ros.training.evaluate import evaluate_artifact
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default=str(ROOT / 'models' / 'panda_default'))
    parser.add_argument('--frames', type=int, default=200)
    parser.add_argument('--data', default=str(ROOT / 'data' / 'benchmark'))
    parser.add_argument('--device', default='auto')
    parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' /
                                             'default_model.json'))
    args = parser.parse_args(argv)
    results = {'model': str(Path(args.model).name),
               'machine': machine_name()}
    for name, seed, config in SETS:
        folder = Path(args.data) / f'panda_{name}_{args.frames}'
        if not (folder / f'{args.frames - 1:06d}.json').exists():
            subprocess.run([sys.executable, '-m', 'robotag_ros.data.synth_cli', '--robot',
                            'panda', '--out', str(folder), '--num', str(args.frames), '--seed',
                            str(seed), '--size', '320x240', '--config', str(ROOT / config),
                            '--no-progress'], check=True, cwd=ROOT)
        metrics = evaluate_artifact(args.model, str(folder), device=args.device,
                                    print_table=True)
        for key in KEYS:
            results[f'{name}_{key}'] = metrics[key]
        for joint, error in metrics['per_joint_error_deg'].items():
            results[f'{name}_{joint}_error_deg'] = error
    write_results(args.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
