"""What one training step costs on this machine when the whole trunk learns, by memory layout.

The CPU recipe cached the trunk and trained only its last stages because a whole-trunk step
looked unaffordable on 2 cores. This times the keypoint phase's step (the bundled model's
heatmap, view and keypoint depth heads, every weight learning, random 256x256 crops, AdamW) in
PyTorch's default NCHW layout, with channels-last weights (what the trainer uses on a CPU), and
with channels-last weights and input. Prints a table and writes
benchmarks/results/train_step_speed.json.

    PYTHONPATH=. python benchmarks/train_step_speed.py [--batch-size 32] [--steps 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine_name, write_results  # noqa: E402

LAYOUTS = ('nchw', 'channels_last_weights', 'channels_last_weights_and_input')


def seconds_per_step(model, layout: str, batch_size: int, size: int, steps: int) -> float:
    model.train()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    image = torch.rand(batch_size, 3, size, size)
    if layout != 'nchw':
        model.to(memory_format=torch.channels_last)
    if layout == 'channels_last_weights_and_input':
        image = image.contiguous(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for step in range(steps + 1):   # the first step warms oneDNN's kernels up, untimed
        if step == 1:
            started = time.perf_counter()
        outputs = model.keypoint_outputs(image)
        loss = sum(value.float().square().mean() for value in outputs.values())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return (time.perf_counter() - started) / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default=str(ROOT / 'models' / 'panda_default'))
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results' /
                                             'train_step_speed.json'))
    args = parser.parse_args(argv)
    from robotag_ros.model.artifact import load_model
    from robotag_ros.robot.model import load_robot
    torch.set_num_threads(args.threads)
    robot = load_robot('panda')
    results = {'machine': machine_name(), 'threads': args.threads, 'model': args.model,
               'batch_size': args.batch_size, 'timed_steps': args.steps}
    print('| layout | s / step | samples / s |\n|---|---|---|')
    for layout in LAYOUTS:
        model, sidecar = load_model(args.model, robot)
        seconds = seconds_per_step(model, layout, args.batch_size, sidecar.input_size[0],
                                   args.steps)
        results[f'whole_trunk_{layout}_seconds_per_step'] = seconds
        print(f'| {layout} | {seconds:.2f} | {args.batch_size / seconds:.1f} |', flush=True)
    write_results(Path(args.out), results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
