"""What stage 1 learns in a CPU-sized budget, on an easy domain, for a few model variants.

The bundled model's joints are at chance (the mean predictor's error). This benchmark asks
whether that is the budget or the recipe: it renders config/synth/dr_easy.yaml (camera in a
narrow cone in front of the robot, plain backgrounds; joints as in the default domain), trains
each variant for the same epochs with the same seed, evaluates each on held-out frames of that
domain, and compares with the error of always answering the training set's mean joint angles.
Prints a table and writes benchmarks/results/learnability.json.

    PYTHONPATH=. python benchmarks/learnability.py [--train 4000] [--epochs 6] \
        [--variants mean keypoints keypoints_no_loops]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_name, write_results  # noqa: E402

# Model overrides per variant (robotag_ros.model.config.ModelConfig fields).
VARIANTS = {
    'mean': {},
    'keypoints': {'joint_features': 'keypoints'},
    'keypoints_no_loops': {'joint_features': 'keypoints',
                           'loops_off': ['keypoints', 'joints', 'point_cloud']},
}
METRICS = ('mean_joint_error_deg', 'add_auc', 'pck_auc', 'camera_translation_error_mm',
           'camera_rotation_error_deg')


def render(folder: Path, frames: int, seed: int, size: int) -> None:
    if (folder / f'{frames - 1:06d}.json').exists():
        return
    subprocess.run([sys.executable, '-m', 'robotag_ros.data.cli', '--robot', 'panda',
                    '--out', str(folder), '--num', str(frames), '--seed', str(seed),
                    '--size', f'{size}x{size}', '--config',
                    str(ROOT / 'config' / 'synth' / 'dr_easy.yaml'), '--no-progress'],
                   check=True, cwd=ROOT)


def joint_labels(folder: Path, robot) -> np.ndarray:
    from robotag_ros.data.dream.dataset import DreamDataset
    # The index scan already parsed every label: no need to decode the images.
    return np.stack([record['joint_angles'] for record in DreamDataset(str(folder), robot).frames])


def train_variant(name: str, overrides: dict, train: Path, val: Path, run_dir: Path,
                  args) -> tuple[str, float, int]:
    from robotag_ros.training.config import load_config
    from robotag_ros.training.trainer import Trainer
    config = load_config(str(ROOT / 'config' / 'train' / 'panda_stage1.yaml'), [
        f'data.train=[{train}]', f'data.val=[{val}]',
        f'data.image_size=[{args.size},{args.size}]', 'data.num_workers=1',
        f'optim.batch_size={args.batch}', f'optim.epochs={args.epochs}',
        'optim.lr_decay_per_epoch=0.95', 'optim.warmup_steps=100',
        f'run_dir={run_dir / name}', f'artifact_out={run_dir / name / "model"}',
        f'device={args.device}',
        # What this study measured: the earlier from-scratch small model on whole frames.
        'model=config/model/small.yaml', 'data.cache_trunk=false', 'data.robot_crop=false'])
    config.model = str(ROOT / config.model)
    config.model_overrides = dict(overrides)
    started = time.time()
    trainer = Trainer(config)
    try:
        trainer.train()
        steps = trainer.step
    finally:
        trainer.close()
    return config.artifact_out, (time.time() - started) / 60.0, steps * args.batch


def main(argv=None) -> int:
    from robotag_ros.robot import load_robot
    from robotag_ros.training.evaluate import evaluate_artifact
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--train', type=int, default=4000, help='training frames')
    parser.add_argument('--val', type=int, default=200, help='held-out frames')
    parser.add_argument('--size', type=int, default=128, help='square image size, pixels')
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--data', default=str(ROOT / 'data' / 'learnability'))
    parser.add_argument('--runs', default=str(ROOT / 'runs' / 'learnability'))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' /
                                             'learnability.json'))
    args = parser.parse_args(argv)
    train, val = Path(args.data) / f'easy_train_{args.train}', Path(args.data) / 'easy_val'
    render(train, args.train, 12, args.size)
    render(val, args.val, 11, args.size)

    robot = load_robot('panda')
    val_joints = joint_labels(val, robot)
    errors = np.degrees(np.abs(val_joints - joint_labels(train, robot).mean(0))).mean(0)
    results = {'machine': machine_name(), 'domain': 'dr_easy', 'train_frames': args.train,
               'val_frames': args.val, 'image_size_px': args.size, 'epochs': args.epochs,
               'batch_size': args.batch, 'device': args.device,
               'mean_predictor_mean_joint_error_deg': float(errors.mean())}
    for joint, error in zip(robot.joint_names, errors):
        results[f'mean_predictor_{joint}_error_deg'] = float(error)
    for name in args.variants:
        artifact, minutes, samples = train_variant(name, VARIANTS[name], train, val,
                                                   Path(args.runs), args)
        metrics = evaluate_artifact(artifact, str(val), device=args.device, print_table=False)
        results[f'{name}_train_minutes'] = minutes
        results[f'{name}_samples_seen'] = samples
        for key in METRICS:
            results[f'{name}_{key}'] = metrics[key]
        for joint, error in metrics['per_joint_error_deg'].items():
            results[f'{name}_{joint}_error_deg'] = error

    rows = ['mean_predictor'] + args.variants
    joints = ''.join(f'{"j" + str(i + 1):>6s}' for i in range(robot.num_joints))
    print(f"\n{'variant':22s}{'mean':>7s}{joints}{'ADD AUC':>9s}{'PCK AUC':>9s}{'cam mm':>8s}"
          f"{'cam deg':>8s}  (joint errors, deg)")
    for row in rows:
        line = f"{row:22s}{results[f'{row}_mean_joint_error_deg']:7.1f}" + ''.join(
            f"{results[f'{row}_{joint}_error_deg']:6.1f}" for joint in robot.joint_names)
        if row != 'mean_predictor':
            line += ''.join(f"{results[f'{row}_{key}']:{w}.1f}" for key, w in
                            (('add_auc', 9), ('pck_auc', 9), ('camera_translation_error_mm', 8),
                             ('camera_rotation_error_deg', 8)))
        print(line)
    write_results(args.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
