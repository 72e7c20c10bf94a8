"""TAG model benchmark: parameters, network forward latency and one training step, per config.

Times the learned part (``TAGModel.forward_network``), the full forward with the robot prior, and
a training step (forward, L_tot with labels, backward) on random inputs, on the CPU (with the
given number of threads) or a CUDA device. Prints a table and writes
benchmarks/results/tag_model.json.

    PYTHONPATH=. python benchmarks/tag_model.py [--configs default large] [--size 256] \
        [--device cuda]

Times are medians over ``--repeats`` runs after two warm-up runs; the machine is shared, so
the 1-minute load averages at start and end are recorded with them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_name, write_results  # noqa: E402
from robotag_ros.geometry import make_transform, project_points, transform_points  # noqa: E402
from robotag_ros.losses import TAGLoss  # noqa: E402
from robotag_ros.model import build_model, load_model_config  # noqa: E402
from robotag_ros.robot import load_robot  # noqa: E402

RESULTS = Path(__file__).resolve().parent / 'results' / 'tag_model.json'


def labelled_batch(robot, batch: int, size: int) -> dict:
    q = robot.sample_joint_angles(batch)
    rotation = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    translation = torch.tensor([0.0, 0.3, 1.6]).expand(batch, 3)
    T = make_transform(rotation.expand(batch, 3, 3), translation)
    K = torch.tensor([[1.2 * size, 0, size / 2], [0, 1.2 * size, size / 2], [0, 0, 1]])
    K = K.expand(batch, 3, 3).clone()
    keypoints = transform_points(T, robot.keypoints(q))
    flags = torch.ones(batch, dtype=torch.bool)
    out = dict(image=torch.rand(batch, 3, size, size), K=K, joint_angles=q, T_cam_base=T,
               keypoints_3d=keypoints, keypoints_2d=project_points(keypoints, K),
               mask=(torch.rand(batch, 1, size, size) > 0.7).float(),
               depth=1.5 + torch.rand(batch, 1, size, size))
    out.update({f'has_{k}': flags for k in ('joint_angles', 'T_cam_base', 'keypoints_3d',
                                            'keypoints_2d', 'mask', 'depth')})
    return out


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def timed(function, repeats: int, device: torch.device) -> float:
    """Median wall time of ``function`` in milliseconds (CUDA work included)."""
    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    for _ in range(2):  # warm-up: allocator and kernel selection
        function()
    times = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        function()
        sync()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def run(config_name: str, robot, size: int, repeats: int, device: torch.device) -> dict:
    config = load_model_config(config_name)
    model = build_model(robot, config).to(device)
    loss = TAGLoss(model.graph, config, robot=robot)
    results = {f'{config_name}_params_M': sum(p.numel() for p in model.parameters()) / 1e6}
    model.eval()
    single = to_device(labelled_batch(robot, 1, size), device)
    with torch.no_grad():
        results[f'{config_name}_network_forward_b1_ms'] = timed(
            lambda: model.forward_network(single['image'], single['K']), repeats, device)
        results[f'{config_name}_full_forward_b1_ms'] = timed(
            lambda: model(single['image'], single['K']), repeats, device)
    model.train()
    train_batch = 8 if config_name == 'default' else 2
    batch = to_device(labelled_batch(robot, train_batch, size), device)

    def step():
        model.zero_grad(set_to_none=True)
        loss(model(batch['image'], batch['K']), batch)['total'].backward()
    key = f'{config_name}_train_step_b{train_batch}_ms'
    results[key] = timed(step, max(1, repeats // 2), device)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=['default', 'large'])
    parser.add_argument('--size', type=int, default=256, help='square input size, pixels')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--device', default='cpu', help='cpu or cuda')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    robot = load_robot('panda').to(device)
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'none'
    results = {'machine': machine_name(), 'device': args.device, 'gpu': gpu,
               'threads': args.threads,
               'input_size_px': args.size, 'load_average_1min_start': os.getloadavg()[0]}
    for name in args.configs:
        results.update(run(name, robot, args.size, args.repeats, device))
    results['load_average_1min_end'] = os.getloadavg()[0]
    width = max(len(k) for k in results)
    for key, value in results.items():
        shown = f'{value:.2f}' if isinstance(value, float) else str(value)
        print(f'{key:<{width}}  {shown}')
    write_results(RESULTS, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
