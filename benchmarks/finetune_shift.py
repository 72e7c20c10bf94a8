"""Benchmark: does stage-2 fine-tuning on unlabelled frames of a shifted domain help there?

Renders, with config/synth/dr_shifted.yaml (farther, more top-down cameras, longer lenses, pale
robots, distractors, blur and noise) at 640x480 and one set of camera intrinsics (one CameraInfo
serves the bag; camera poses stay randomised), an UNLABELLED set written as a rosbag2 and a
LABELLED held-out set (other seeds). Evaluates the stage-1 artifact on the held-out set,
fine-tunes it on the bag (robotag-finetune's code path: alignment losses only, no labels; add
--override for variants), evaluates the new artifact, and says whether the online swap gate
(robotag_ros/finetune/swap.py, same score, same frames) would serve it. Prints the table and writes
benchmarks/results/finetune_shift.json (flat keys, units in the names, the machine named).

    PYTHONPATH=. python benchmarks/finetune_shift.py --model models/panda_default \
        --unlabelled 400 --heldout 100 --epochs 5
    # smoke test of the pipeline only (numbers meaningless, marked so in the JSON):
    PYTHONPATH=. python benchmarks/finetune_shift.py --model /tmp/x/run/panda_tag --smoke-test
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.machine import machine_name, write_results  # noqa: E402

SHIFTED = REPO / 'config' / 'synth' / 'dr_shifted.yaml'
RESULT = REPO / 'benchmarks' / 'results' / 'finetune_shift.json'
TOPIC = '/camera/color/image_raw'
# evaluate_artifact's key -> the JSON's (units in the name; ADD AUC is in percent, 0..100).
METRICS = {'add_auc': 'add_auc_percent', 'add_mean_mm': 'add_mean_mm',
           'mean_joint_error_deg': 'mean_joint_error_deg',
           'camera_translation_error_mm': 'camera_translation_error_mm',
           'camera_rotation_error_deg': 'camera_rotation_error_deg',
           'mean_consistency': 'mean_consistency_score',
           'holdout_score': 'swap_gate_score'}


def fixed_camera_config(work_dir: Path, width: int, height: int, fov_y_deg: float) -> Path:
    """dr_shifted.yaml with one fixed pinhole camera (so one CameraInfo serves the whole bag)."""
    config = yaml.safe_load(SHIFTED.read_text())
    focal_px = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    config.setdefault('camera', {})['intrinsics_px'] = [focal_px, focal_px, width / 2,
                                                        height / 2]
    path = work_dir / 'dr_shifted_fixed_camera.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def render(robot: str, out: Path, num: int, seed: int, config: Path, width: int, height: int):
    from robotag_ros.data.cli import main as synth_main
    if synth_main(['--robot', robot, '--out', str(out), '--num', str(num), '--seed', str(seed),
                   '--config', str(config), '--size', f'{width}x{height}',
                   '--no-progress']) != 0:
        raise RuntimeError(f'rendering {out} failed')


def folder_to_bag(folder: Path, bag: Path, robot_name: str) -> int:
    """Write a DREAM folder's images (labels dropped) as an Image + CameraInfo rosbag2."""
    from robotag_ros.data.bags.bag_images import write_image_bag
    from robotag_ros.data.dream.dataset import DreamDataset
    from robotag_ros.robot import load_robot
    dataset = DreamDataset(folder, load_robot(robot_name), image_size=None, augment=False)
    frames = [dataset.raw_frame(i) for i in range(len(dataset))]
    write_image_bag(bag, [f['image_rgb'] for f in frames], frames[0]['K'], topic=TOPIC)
    return len(frames)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default=str(REPO / 'models' / 'panda_default'),
                        help='the stage-1 artifact')
    parser.add_argument('--robot', default='panda')
    parser.add_argument('--unlabelled', type=int, default=400, help='frames in the bag')
    parser.add_argument('--heldout', type=int, default=100, help='labelled held-out frames')
    parser.add_argument('--size', default='640x480', help='rendered WIDTHxHEIGHT, pixels')
    parser.add_argument('--fov-y-deg', type=float, default=42.0,
                        help='the fixed camera (inside dr_shifted\'s 35..50 deg)')
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=16)
    parser.add_argument('--lr', type=float, default=1e-5)
    parser.add_argument('--max-steps-per-epoch', type=int, default=0)
    parser.add_argument('--device', default='auto')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads for torch')
    parser.add_argument('--work-dir', default=None, help='keep the data and runs here')
    parser.add_argument('--smoke-test', action='store_true',
                        help='tiny sizes: proves the pipeline runs; the numbers mean nothing')
    parser.add_argument('--override', action='append', default=[], metavar='KEY=VALUE',
                        help='a stage-2 training override, e.g. fit_keypoints_weight=1.0 '
                             '(repeatable)')
    parser.add_argument('--json', default=str(RESULT))
    args = parser.parse_args(argv)

    import torch

    from robotag_ros.finetune.swap import accept_candidate
    from robotag_ros.metrics import format_table
    from robotag_ros.training.evaluate import evaluate_artifact
    from robotag_ros.training.finetune import finetune_config, run_finetune

    torch.set_num_threads(args.threads)
    if args.smoke_test:
        args.unlabelled, args.heldout, args.size = min(args.unlabelled, 12), \
            min(args.heldout, 6), '128x96'
        args.epochs, args.batch_size, args.lr = 2, 4, 1e-4
    width, height = (int(v) for v in args.size.lower().split('x'))
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='finetune_shift_'))
    work.mkdir(parents=True, exist_ok=True)
    config = fixed_camera_config(work, width, height, args.fov_y_deg)

    started = time.perf_counter()
    render(args.robot, work / 'unlabelled', args.unlabelled, 1001, config, width, height)
    render(args.robot, work / 'heldout', args.heldout, 2002, config, width, height)
    bag = work / 'unlabelled_bag'
    if not bag.exists():
        folder_to_bag(work / 'unlabelled', bag, args.robot)
    render_s = time.perf_counter() - started

    before = evaluate_artifact(args.model, str(work / 'heldout'), device=args.device,
                               print_table=False)
    out = work / 'finetuned'
    overrides = [f'optim.epochs={args.epochs}', f'optim.batch_size={args.batch_size}',
                 f'optim.lr={args.lr!r}', f'device={args.device}',
                 f'max_steps_per_epoch={args.max_steps_per_epoch}', *args.override]
    started = time.perf_counter()
    report = run_finetune(finetune_config(args.model, out, bags=[str(bag)], image_topic=TOPIC,
                                          overrides=overrides))
    finetune_s = time.perf_counter() - started
    after = evaluate_artifact(str(out), str(work / 'heldout'), device=args.device,
                              print_table=False)

    result = {
        'machine': machine_name(),
        'device': args.device,
        'model': str(args.model),
        'smoke_test_numbers_meaningless': bool(args.smoke_test),
        'domain': 'config/synth/dr_shifted.yaml, one set of intrinsics (camera poses randomised)',
        'camera_fov_y_deg': args.fov_y_deg,
        'image_width_px': width, 'image_height_px': height,
        'unlabelled_frames': report['frames_used'], 'heldout_frames': args.heldout,
        'finetune_epochs': args.epochs, 'finetune_steps': report['steps'],
        'finetune_batch_size': args.batch_size, 'finetune_lr': args.lr,
        'finetune_time_s': round(finetune_s, 1), 'render_time_s': round(render_s, 1),
        'finetune_overrides': ' '.join(args.override),
    }
    for key, name in METRICS.items():
        if key in before and key in after:
            result[f'stage1_{name}'] = before[key]
            result[f'finetuned_{name}'] = after[key]
            result[f'change_{name}'] = after[key] - before[key]
    # The online swap gate's verdict on this candidate (the same score, on held-out frames).
    result['swap_gate_accepts_finetuned'] = accept_candidate(after['holdout_score'],
                                                             before['holdout_score'])
    if args.smoke_test:
        result['note'] = ('smoke test: a tiny model, a dozen frames and two epochs prove the '
                          'pipeline runs; these numbers say nothing about fine-tuning')
    print(format_table(result, title='finetune_shift: stage 1 vs stage 2 on the shifted domain'))
    write_results(args.json, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
