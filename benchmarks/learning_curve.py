"""Learning curve of the CPU recipe: error against samples seen and against wall minutes.

Reads the per-epoch checkpoints of a training run (``keep_epoch_checkpoints: true``, or
``checkpoint_epochNNN.pt`` files), evaluates each on held-out 640x480 frames through the
estimator as the node runs it (two passes; the direct heads and the fit), and writes one row per
checkpoint to benchmarks/results/learning_curve.json (flat keys: ``epochN_<metric>``).

    PYTHONPATH=. python benchmarks/learning_curve.py --run runs/panda_stage1 \
        runs/panda_stage1_keypoints [--frames 100]

Several runs (a recipe's phases, each started from the one before) make one curve: epochs are
numbered on across them, samples and minutes are totals (``total_*`` of the checkpoints).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.default_model import SETS, eval_set_folder  # noqa: E402
from benchmarks.machine import machine_name, write_results  # noqa: E402

KEYS = ('add_auc', 'mean_joint_error_j1_6_deg', 'keypoint_2d_median_error_px',
        'detected_keypoint_2d_median_error_px', 'camera_translation_error_mm')


def main(argv=None) -> int:
    import torch
    from robotag_ros.inference.estimator import Estimator
    from robotag_ros.model import build_model, load_model_config
    from robotag_ros.robot import load_robot
    from robotag_ros.training.checkpoint import load_checkpoint
    from robotag_ros.training.evaluate import evaluate_estimator
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', required=True, nargs='+', help='run folders, in training order')
    parser.add_argument('--frames', type=int, default=100)
    parser.add_argument('--fit-only', action='store_true',
                        help='skip the direct-heads rows (the detected 2D keypoints are the '
                             "same in both; halves the time)")
    parser.add_argument('--data', default=str(ROOT / 'data' / 'benchmark'))
    parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' /
                                             'learning_curve.json'))
    args = parser.parse_args(argv)
    checkpoints = []
    for run in args.run:
        found = sorted(Path(run).glob('checkpoint_epoch*.pt'))
        if not found:
            parser.error(f'{run} has no checkpoint_epochNNN.pt (train with '
                         'keep_epoch_checkpoints=true)')
        checkpoints += found
    name, seed, config = SETS[0]
    folder = eval_set_folder(args.data, name, seed, config, args.frames)
    results = {'run': '+'.join(Path(run).name for run in args.run), 'machine': machine_name(),
               'frames': args.frames}
    print('epoch | samples | wall min | ' + ' | '.join(f'{k} (direct/fit)' for k in KEYS))
    for epoch, path in enumerate(checkpoints, 1):
        checkpoint = load_checkpoint(path)
        train_config = checkpoint['config']
        robot = load_robot(train_config['robot'])
        model_config = load_model_config(train_config['model'],
                                         dict(train_config.get('model_overrides') or {},
                                              pretrained_2d=None))
        model = build_model(robot, model_config)
        model.load_state_dict(checkpoint['model'])
        model.eval()
        extra = checkpoint.get('extra') or {}
        samples = extra.get('samples_seen',
                            checkpoint['step'] * train_config['optim']['batch_size'])
        row = {'samples_seen': extra.get('total_samples_seen', samples),
               'wall_minutes': extra.get('total_wall_minutes',
                                         extra.get('wall_minutes', float('nan'))),
               'heads': train_config.get('heads', 'all')}
        for fit in (True,) if args.fit_only else (False, True):
            estimator = Estimator.from_model(model, tuple(train_config['data']['image_size']),
                                             fit=fit)
            with torch.inference_mode():
                metrics = evaluate_estimator(estimator, str(folder), print_table=False)
            for key in KEYS:
                row[f'{"fit" if fit else "direct"}_{key}'] = metrics.get(key, float('nan'))
        for key, value in row.items():
            results[f'epoch{epoch}_{key}'] = value
        print(f"{epoch} | {row['samples_seen']:.0f} | {row['wall_minutes']:.1f} | " + ' | '.join(
            f"{row.get(f'direct_{k}', float('nan')):.1f}/{row[f'fit_{k}']:.1f}" for k in KEYS))
    write_results(args.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
