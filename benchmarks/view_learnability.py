"""Can a network learn which side of the robot the camera is on when its whole trunk trains?

`view_probe.py` found the side at chance for a frozen ImageNet trunk and for the bundled model's
own features. That leaves two readings: the images do not show the side (a data problem), or
only a trunk that learns can read it (a compute problem: the CPU recipe trains at most the
trunk's last stages). This trains the whole EfficientNet-Lite0 trunk (ImageNet start) and the
probe's head end to end on label-centred, augmented crops of default-DR frames, for a wall-clock
budget, and measures held-out front/back and sector accuracy of the camera's azimuth about the
base and about the arm every few minutes: a learning curve (accuracy vs samples vs CPU minutes)
that says which reading holds and how far a run must go.

Checkpointed every evaluation (atomic); ``--resume`` continues a stopped run. Prints a table and
writes benchmarks/results/view_learnability.json (the curve as lists under flat keys).

    PYTHONPATH=. python benchmarks/view_learnability.py --minutes 60
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_name, write_results  # noqa: E402
from benchmarks.view_probe import (SECTORS, camera_azimuths, crop_features,  # noqa: E402
                                   lite0_normalisation, probe_head, render, sector_centres,
                                   sector_of, side_scores)

FRAMES = ('base', 'arm')


class SideNet(nn.Module):
    """The ImageNet Lite0 trunk, all of it learning, and the probe's head with one 8-sector
    output per azimuth (about the base, about the arm)."""

    def __init__(self):
        super().__init__()
        from robotag_ros.model.efficientnet_backbone import EfficientNetLiteBackbone
        self.backbone = EfficientNetLiteBackbone('efficientnet_lite0', width=32)
        mean, std = lite0_normalisation()
        self.register_buffer('mean', mean)
        self.register_buffer('std', std)
        taps = self.backbone.trunk_features(torch.zeros(1, 3, 64, 64))
        self.head = probe_head(taps[2].shape[1] + taps[3].shape[1])
        self.head[-1] = nn.Linear(128, SECTORS * len(FRAMES))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # channels-last: oneDNN's depthwise convolutions want NHWC (training 2-6x faster here)
        image = ((image - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        taps = self.backbone.trunk_features(image)
        pooled = nn.functional.avg_pool2d(taps[2], 2, ceil_mode=True)
        return self.head(torch.cat([pooled, taps[3]], dim=1)).view(-1, len(FRAMES), SECTORS)


def train_set(folders: list[Path], robot, size: int):
    """Augmented label-centred crops of every folder, as training draws them."""
    from robotag_ros.data.dream.dataset import DreamDataset, RobotCrop
    return torch.utils.data.ConcatDataset([
        DreamDataset(folder, robot, image_size=(size, size), augment=True,
                     robot_crop=RobotCrop(full_frame_prob=0.0)) for folder in folders])


def test_crops(folder: Path, robot, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every frame's label-centred crop (uint8) and its (base, arm) azimuths."""
    images, about_base, about_arm = crop_features(
        folder, robot, (size, size), lambda image: (image * 255).round().to(torch.uint8))
    return torch.cat(images), torch.stack([about_base, about_arm], dim=1)


@torch.no_grad()
def evaluate(net: SideNet, images: torch.Tensor, azimuths: torch.Tensor) -> dict:
    net.eval()
    logits = torch.cat([net(chunk.float() / 255) for chunk in images.split(50)])
    net.train()
    centres = sector_centres()
    scores = {}
    for index, frame in enumerate(FRAMES):
        predicted = logits[:, index].argmax(1)
        truth = azimuths[:, index]
        scores.update({f'about_{frame}_{key}': value
                       for key, value in side_scores(centres[predicted], truth).items()})
        scores[f'about_{frame}_sector_accuracy_percent'] = 100.0 * float(
            (predicted == sector_of(truth)).float().mean())
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--train-frames', type=int, default=6000)
    parser.add_argument('--train-seed', type=int, default=3101)
    parser.add_argument('--train-sets', type=int, default=1,
                        help='sets of --train-frames each (seeds --train-seed, +1, ...): the '
                        'same compute over more distinct frames')
    parser.add_argument('--test-seed', type=int, default=3001,
                        help="the frozen probe's frames (view_probe.py), all of them held out")
    parser.add_argument('--test-frames', type=int, default=1000)
    parser.add_argument('--size', type=int, default=192, help='crop side, pixels')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--minutes', type=float, default=60.0, help='training wall clock')
    parser.add_argument('--eval-every-minutes', type=float, default=6.0)
    parser.add_argument('--data', default=str(ROOT / 'data'))
    parser.add_argument('--checkpoint', default=str(ROOT / 'runs' / 'view_learnability.pt'))
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' /
                                             'view_learnability.json'))
    args = parser.parse_args(argv)
    from robotag_ros.robot.model import load_robot
    from training.checkpoint import atomic_torch_save
    torch.set_num_threads(2)
    torch.manual_seed(0)
    robot = load_robot('panda')
    config = ROOT / 'config' / 'synth' / 'dr_default.yaml'
    train_folders = [Path(args.data) / 'view_e2e' / ('train' + (f'_{index}' if index else ''))
                     for index in range(args.train_sets)]
    test_folder = Path(args.data) / 'view_probe' / 'default'
    for index, folder in enumerate(train_folders):
        render(folder, config, args.train_frames, args.train_seed + index, 2)
    render(test_folder, config, args.test_frames, args.test_seed, 2)
    images, azimuths = test_crops(test_folder, robot, args.size)

    net = SideNet().to(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    curve = {'samples': [], 'cpu_minutes': [], 'train_loss': []}
    spent_minutes, samples = 0.0, 0
    checkpoint = Path(args.checkpoint)
    if args.resume and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True)
        net.load_state_dict(state['net'])
        optimiser.load_state_dict(state['optimiser'])
        curve, spent_minutes, samples = state['curve'], state['minutes'], state['samples']
    if not curve['samples']:
        curve.update({'samples': [0], 'cpu_minutes': [0.0], 'train_loss': [float('nan')]})
        for key, value in evaluate(net, images, azimuths).items():
            curve.setdefault(key, []).append(value)

    loader = torch.utils.data.DataLoader(train_set(train_folders, robot, args.size),
                                         batch_size=args.batch_size, shuffle=True,
                                         num_workers=1, drop_last=True, persistent_workers=True)
    started, next_eval = time.perf_counter() - spent_minutes * 60, spent_minutes
    losses = []
    while spent_minutes < args.minutes:
        for batch in loader:
            logits = net(batch['image'])
            labels = sector_of(camera_azimuths(batch))
            loss = sum(nn.functional.cross_entropy(logits[:, index], labels[:, index])
                       for index in range(len(FRAMES)))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
            samples += len(labels)
            spent_minutes = (time.perf_counter() - started) / 60
            if spent_minutes >= next_eval + args.eval_every_minutes or \
                    spent_minutes >= args.minutes:
                next_eval = spent_minutes
                curve['samples'].append(samples)
                curve['cpu_minutes'].append(spent_minutes)
                curve['train_loss'].append(float(np.mean(losses)))
                losses = []
                for key, value in evaluate(net, images, azimuths).items():
                    curve[key].append(value)
                print(f"{samples:6d} samples {spent_minutes:5.1f} min loss "
                      f"{curve['train_loss'][-1]:.3f} front/back base "
                      f"{curve['about_base_front_back_accuracy_percent'][-1]:.1f} arm "
                      f"{curve['about_arm_front_back_accuracy_percent'][-1]:.1f} %", flush=True)
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                atomic_torch_save({'net': net.state_dict(), 'optimiser': optimiser.state_dict(),
                                   'curve': curve, 'minutes': spent_minutes,
                                   'samples': samples}, checkpoint)
            if spent_minutes >= args.minutes:
                break

    print('\n| samples | CPU minutes | train loss | front/back base % | sectors base % | '
          'front/back arm % | sectors arm % |')
    print('|---|---|---|---|---|---|---|')
    for index, count in enumerate(curve['samples']):
        print(f"| {count} | {curve['cpu_minutes'][index]:.1f} | "
              f"{curve['train_loss'][index]:.3f} | "
              f"{curve['about_base_front_back_accuracy_percent'][index]:.1f} | "
              f"{curve['about_base_sector_accuracy_percent'][index]:.1f} | "
              f"{curve['about_arm_front_back_accuracy_percent'][index]:.1f} | "
              f"{curve['about_arm_sector_accuracy_percent'][index]:.1f} |")
    results = {'machine': machine_name(), 'train_frames': args.train_frames * args.train_sets,
               'train_seed': args.train_seed, 'test_frames': args.test_frames,
               'test_seed': args.test_seed, 'crop_size_px': args.size,
               'batch_size': args.batch_size, 'lr': args.lr,
               'chance_front_back_percent': 50.0, 'chance_sector_percent': 100.0 / SECTORS,
               **{f'final_{key}': values[-1] for key, values in curve.items()},
               **{f'curve_{key}': values for key, values in curve.items()}}
    write_results(Path(args.out), results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
