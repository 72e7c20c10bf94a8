"""Can a network see which side of the robot the camera is on? A probe per scene variant.

Mirrored arms (the camera's yaw about the base traded for joint 1) are the estimator's main
error. Before training hours go into a scene design, this asks what the rendered images let a
network learn at all: it renders each domain-randomisation variant, crops the robot from the
labels (256x256, as training does), runs the frozen ImageNet EfficientNet-Lite0 trunk (the
model's own backbone) once, and trains a small conv head on its stride-16/32 outputs with
cross-entropy on the camera's azimuth (8 sectors) for a fixed number of epochs: about the base
(from its x axis), and about the arm (minus joint 1: which side of the arm the camera sees, the
side a mirrored fit gets wrong).
Reported on held-out frames of the same variant: front/back accuracy (chance 50 %), sector
accuracy (chance 12.5 %) and the share of sector guesses >= 135 deg off (mirrors).
``--model ARTIFACT`` probes a trained model's own features instead (the neck's output f, which
its view head reads, on crops at its input size; keys ``<variant>_model_features_about_*``) and
scores that model's view head on the same held-out frames (``<variant>_model_view_head_*``):
whether the trained features hold the side that a better head could read, or not.
Prints a table and writes benchmarks/results/view_probe.json (``--model``:
view_probe_model.json).

    PYTHONPATH=. python benchmarks/view_probe.py [--frames 1000] [--variants collage default]
    PYTHONPATH=. python benchmarks/view_probe.py --variants default --model models/panda_default
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_name, write_results  # noqa: E402

SECTORS = 8
# Variant -> (base DR config, overrides merged on top).
VARIANTS = {
    'collage': ('config/synth/dr_collage.yaml', {}),
    'default': ('config/synth/dr_default.yaml', {}),
    'room_no_shadows': ('config/synth/dr_default.yaml', {'lights': {'shadows': False}}),
    'room_random_colours': ('config/synth/dr_default.yaml', {'colours': {'own_prob': 0.0}}),
    'room_only': ('config/synth/dr_default.yaml', {'room': {'weights': [0.5, 0.5, 0.0]}}),
    # Closer to a photo of a lab: always a room, plain or gently graded surfaces (no noise or
    # stripes), the robot mostly in its own colours, fewer distractors, one or two lights with a
    # low ambient term so that the key light's shading and shadows carry.
    'photo_room': ('config/synth/dr_default.yaml', {
        'room': {'weights': [0.5, 0.5, 0.0], 'textures': {
            'kinds': ['noise', 'gradient', 'checkerboard', 'shapes', 'flat'],
            'weights': [0.2, 1.0, 0.4, 0.0, 2.0], 'value': [0.3, 0.9]}},
        'colours': {'own_prob': 0.7},
        'lights': {'count': [1, 2], 'ambient': [0.05, 0.25], 'diffuse': [0.5, 0.9]},
        'distractors': {'count': [0, 3]},
        'image': {'noise_prob': 0.2, 'blur_prob': 0.1}}),
}


def render(folder: Path, config: Path, frames: int, seed: int, workers: int) -> None:
    if (folder / f'{frames - 1:06d}.json').exists():
        return
    subprocess.run([sys.executable, '-m', 'robotag_ros.data.cli', '--robot', 'panda',
                    '--out', str(folder), '--num', str(frames), '--seed', str(seed),
                    '--size', '640x480', '--config', str(config), '--workers', str(workers),
                    '--no-progress'], check=True, cwd=ROOT)


def variant_config(name: str, folder: Path) -> Path:
    """The variant's DR config as a file (base config with the overrides merged in)."""
    base, overrides = VARIANTS[name]
    if not overrides:
        return ROOT / base
    merged = yaml.safe_load((ROOT / base).read_text())
    for section, values in overrides.items():
        merged.setdefault(section, {}).update(values)
    merged['name'] = f'view_probe_{name}'
    path = folder / f'{name}.yaml'
    path.write_text(yaml.safe_dump(merged))
    return path


def sector_of(azimuth_rad: torch.Tensor) -> torch.Tensor:
    return ((azimuth_rad + np.pi) / (2 * np.pi) * SECTORS).long().clamp(0, SECTORS - 1)


@torch.no_grad()
def crop_features(folder: Path, robot, image_size: tuple[int, int], features_of
                  ) -> tuple[list, torch.Tensor, torch.Tensor]:
    """``features_of(image batch in [0, 1])`` on label-centred crops of every frame, in order,
    with the camera azimuths about the base and about the arm (minus joint 1: the side of the
    arm it sees)."""
    from robotag_ros.data.dream.dataset import DreamDataset, RobotCrop
    dataset = DreamDataset(folder, robot, image_size=image_size, augment=False, seed=0,
                           robot_crop=RobotCrop(shift=0.0, full_frame_prob=0.0))
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, num_workers=1)
    outputs, azimuths = [], []
    for batch in loader:
        outputs.append(features_of(batch['image']))
        azimuths.append(camera_azimuths(batch))
    about_base, about_arm = torch.cat(azimuths).unbind(1)
    return outputs, about_base, about_arm


def camera_azimuths(batch: dict) -> torch.Tensor:
    """(B, 2): the camera's azimuth about the base and about the arm (minus joint 1)."""
    from robotag_ros.geometry.view import camera_azimuth_elevation
    about_base = camera_azimuth_elevation(batch['T_cam_base'].double())[0].float()
    about_arm = torch.remainder(about_base - batch['joint_angles'][:, 0].float() + np.pi,
                                2 * np.pi) - np.pi
    return torch.stack([about_base, about_arm], dim=1)


def lite0_normalisation() -> tuple[torch.Tensor, torch.Tensor]:
    """The ImageNet trunk's input mean and std, (1, 3, 1, 1) each."""
    from robotag_ros.model.preprocessing import backbone_preprocessing
    preprocessing = backbone_preprocessing('efficientnet_lite0')
    return (torch.tensor(preprocessing.mean).view(1, 3, 1, 1),
            torch.tensor(preprocessing.std).view(1, 3, 1, 1))


def sector_centres() -> torch.Tensor:
    from robotag_ros.geometry.view import azimuth_bin_centres
    return azimuth_bin_centres(SECTORS, torch.zeros(()))


def trunk_features(folder: Path, robot, backbone) -> tuple[torch.Tensor, torch.Tensor,
                                                           torch.Tensor]:
    """Frozen stride-16 and stride-32 outputs of label-centred crops (256x256) and the azimuths
    of :func:`crop_features`. Cached next to the folder."""
    cached = folder.with_name(folder.name + '_probe_features.pt')
    if cached.is_file():
        return tuple(torch.load(cached, weights_only=True))
    mean, std = lite0_normalisation()

    def features_of(image):
        taps = backbone.trunk_features((image - mean) / std)
        return torch.cat([nn.functional.avg_pool2d(taps[2], 2), taps[3]], dim=1)
    features, azimuth, about_arm = crop_features(folder, robot, (256, 256), features_of)
    result = (torch.cat(features), azimuth, about_arm)
    torch.save(result, cached)
    return result


def model_features(folder: Path, robot, artifact: str) -> tuple[torch.Tensor, ...]:
    """A trained model's neck output f (2x2-pooled) on label-centred crops at its input size,
    its view head's logits, the azimuths of :func:`crop_features` and its azimuth bin count.
    Not cached (the model changes)."""
    from robotag_ros.model.artifact import load_model
    model, sidecar = load_model(artifact, robot)
    if model.view_head is None:
        raise SystemExit(f'{artifact}: the model has no view head to compare with')

    def features_of(image):
        f, pooled = model._image_features(model.normalise(image))
        return nn.functional.avg_pool2d(f, 2), model.view_head(f, pooled)
    outputs, azimuth, about_arm = crop_features(folder, robot, tuple(sidecar.input_size),
                                                features_of)
    features, logits = (torch.cat(part) for part in zip(*outputs))
    return features, logits, azimuth, about_arm, model.view_bins[0]


def side_scores(guess: torch.Tensor, truth: torch.Tensor) -> dict:
    """Azimuth guesses against the truth (radians): front/back accuracy and the share of
    guesses >= 135 deg off (the mirror), in percent."""
    offset = torch.remainder(guess - truth + np.pi, 2 * np.pi) - np.pi
    return {'front_back_accuracy_percent': 100.0 * float(
                ((guess.abs() < np.pi / 2) == (truth.abs() < np.pi / 2)).float().mean()),
            'opposite_sector_percent': 100.0 * float(
                (offset.abs() >= np.deg2rad(135)).float().mean())}


def view_head_scores(logits: torch.Tensor, azimuth_bins: int, about_base: torch.Tensor,
                     about_arm: torch.Tensor) -> dict:
    """The model's own view head on frames: :func:`side_scores` of its likeliest sector's
    centre, about the base and about the arm."""
    from robotag_ros.geometry.view import azimuth_bin_centres, split_view_logits
    log_base, log_arm, _ = split_view_logits(logits, azimuth_bins)
    scores = {}
    for frame, log_probs, truth in (('base', log_base, about_base), ('arm', log_arm, about_arm)):
        guess = azimuth_bin_centres(azimuth_bins, truth)[log_probs.argmax(1)]
        scores.update({f'about_{frame}_{key}': value
                       for key, value in side_scores(guess, truth).items()})
    return scores


def probe_head(channels: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels, 128, 1), nn.BatchNorm2d(128), nn.ReLU(),
                         nn.Conv2d(128, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, SECTORS))


def train_and_test(features, azimuths, train_count: int, epochs: int) -> dict:
    torch.manual_seed(0)
    labels = sector_of(azimuths)
    head = probe_head(features.shape[1])
    optimiser = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-3)
    x_train, y_train = features[:train_count], labels[:train_count]
    for _ in range(epochs):
        head.train()
        for index in torch.randperm(train_count).split(64):
            loss = nn.functional.cross_entropy(head(x_train[index]), y_train[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    head.eval()
    with torch.no_grad():
        fitted = head(features[:train_count]).argmax(1)
        predicted = head(features[train_count:]).argmax(1)
    truth = labels[train_count:]
    return {
        **side_scores(sector_centres()[predicted], azimuths[train_count:]),
        'sector_accuracy_percent': 100.0 * float((predicted == truth).float().mean()),
        # on the frames it trained on: near 100 % with chance on the others is memorising
        'train_sector_accuracy_percent': 100.0 * float((fitted == y_train).float().mean()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--variants', nargs='+', default=['collage', 'default'],
                        choices=sorted(VARIANTS))
    parser.add_argument('--frames', type=int, default=1000)
    parser.add_argument('--test-frames', type=int, default=250)
    parser.add_argument('--epochs', type=int, default=15)
    parser.add_argument('--seed', type=int, default=3001)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--data', default=str(ROOT / 'data' / 'view_probe'))
    parser.add_argument('--model', default=None,
                        help="probe this artifact's own features (and score its view head)")
    parser.add_argument('--out', default=None, help='default: benchmarks/results/'
                        'view_probe.json, with --model view_probe_model.json')
    args = parser.parse_args(argv)
    args.out = args.out or str(ROOT / 'benchmarks' / 'results' / (
        'view_probe_model.json' if args.model else 'view_probe.json'))
    if not 0 < args.test_frames < args.frames:
        parser.error('--test-frames must be between 0 and --frames')
    from robotag_ros.model.efficientnet_backbone import EfficientNetLiteBackbone
    from robotag_ros.robot.model import load_robot
    torch.set_num_threads(2)
    robot = load_robot('panda')
    backbone = EfficientNetLiteBackbone('efficientnet_lite0', width=32).eval()
    results = {'machine': machine_name(), 'frames_per_variant': args.frames,
               **({'model': args.model} if args.model else {}),
               'test_frames_per_variant': args.test_frames, 'epochs': args.epochs,
               'chance_front_back_percent': 50.0, 'chance_sector_percent': 100.0 / SECTORS}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.variants:
            started = time.perf_counter()
            folder = Path(args.data) / name
            render(folder, variant_config(name, Path(scratch)), args.frames, args.seed,
                   args.workers)
            train_count = args.frames - args.test_frames
            source = name
            if args.model:
                features, logits, about_base, about_arm, bins = model_features(
                    folder, robot, args.model)
                source = f'{name}_model_features'
                head = view_head_scores(logits[train_count:], bins, about_base[train_count:],
                                        about_arm[train_count:])
                results.update({f'{name}_model_view_head_{key}': value
                                for key, value in head.items()})
                print(f'{name}: the model\'s own view head: {head}', flush=True)
            else:
                features, about_base, about_arm = trunk_features(folder, robot, backbone)
            for frame, azimuths in (('base', about_base), ('arm', about_arm)):
                scores = train_and_test(features, azimuths, train_count, args.epochs)
                scores['cpu_minutes'] = (time.perf_counter() - started) / 60.0
                results.update({f'{source}_about_{frame}_{key}': value
                                for key, value in scores.items()})
                rows.append((source, frame, scores))
                print(f'{source} about the {frame}: {scores}', flush=True)
    print('\n| variant | azimuth about | front/back % | 8 sectors % | opposite sector % | '
          'minutes |')
    print('|---|---|---|---|---|---|')
    for name, frame, scores in rows:
        print(f"| {name} | {frame} | {scores['front_back_accuracy_percent']:.1f} | "
              f"{scores['sector_accuracy_percent']:.1f} | "
              f"{scores['opposite_sector_percent']:.1f} | {scores['cpu_minutes']:.1f} |")
    # Variants not run this time keep their rows (each row names its variant).
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    kept = {key: value for key, value in previous.items()
            if key.split('_about_')[0] in VARIANTS and key.split('_about_')[0] not in args.variants
            and '_about_' in key and previous.get('frames_per_variant') == args.frames}
    write_results(Path(args.out), {**results, **kept})
    return 0


if __name__ == '__main__':
    sys.exit(main())
