"""The paper's Table 3 at a CPU's scale: the same training with loop kinds switched on one
by one (none, + keypoints, + joints, + point cloud), each evaluated on the same held-out sets."""
from __future__ import annotations

import argparse
import copy
import platform
import sys
from pathlib import Path

from robotag_ros.atomic_io import atomic_write_json
from robotag_ros.training.config import load_config
from robotag_ros.training.evaluate import evaluate_artifact
from robotag_ros.training.trainer import Trainer

# Rows of Table 3: the loop kinds that are OFF in each row.
ABLATION_ROWS = (
    ('baseline (no loops)', ['keypoints', 'joints', 'point_cloud']),
    ('+ keypoints', ['joints', 'point_cloud']),
    ('+ joints', ['point_cloud']),
    ('+ point cloud (full TAG)', []),
)


def run_ablation(config, eval_folders: list[str], out_json: str,
                 max_eval_frames: int = 0) -> dict:

    results = {}
    for label, loops_off in ABLATION_ROWS:
        row_config = copy.deepcopy(config)
        row_config.model_overrides = dict(row_config.model_overrides, loops_off=loops_off)
        slug = label.split('(')[0].strip().replace('+ ', 'plus_').replace(' ', '_')
        row_config.run_dir = str(Path(config.run_dir) / slug)
        row_config.artifact_out = str(Path(row_config.run_dir) / 'model')
        trainer = Trainer(row_config)
        try:
            trainer.train()
        finally:
            trainer.close()
        for folder in eval_folders:
            metrics = evaluate_artifact(row_config.artifact_out, folder, device=config.device,
                                        max_frames=max_eval_frames, print_table=False)
            name = Path(folder).name
            results[f'{slug}_{name}_add_auc'] = metrics['add_auc']
            results[f'{slug}_{name}_mean_joint_error_deg'] = metrics['mean_joint_error_deg']
    results['machine'] = f'{platform.node()} ({platform.processor() or platform.machine()})'
    results['epochs'] = config.optim.epochs
    results['train_sets'] = ','.join(config.data.train)
    atomic_write_json(out_json, results, indent=2)
    print_table(results, eval_folders)
    return results


def print_table(results: dict, eval_folders: list[str]) -> None:
    names = [Path(f).name for f in eval_folders]
    header = f"{'loops':28s}" + ''.join(
        f'{n + " AUC":>22s}{n + " joint deg":>22s}' for n in names)
    print(header)
    for label, _ in ABLATION_ROWS:
        slug = label.split('(')[0].strip().replace('+ ', 'plus_').replace(' ', '_')
        row = f'{label:28s}'
        for name in names:
            row += f"{results[f'{slug}_{name}_add_auc']:22.2f}"
            row += f"{results[f'{slug}_{name}_mean_joint_error_deg']:22.2f}"
        print(row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m robotag_ros.training.ablation',
                                     description=__doc__)
    parser.add_argument('--config', required=True)
    parser.add_argument('--eval', action='append', required=True, help='DREAM folder to score')
    parser.add_argument('--json', default='benchmarks/results/ablation.json')
    parser.add_argument('--max-eval-frames', type=int, default=0)
    parser.add_argument('overrides', nargs='*')
    args = parser.parse_args(argv)
    run_ablation(load_config(args.config, args.overrides), args.eval, args.json,
                 args.max_eval_frames)
    return 0


if __name__ == '__main__':
    sys.exit(main())
