"""Train the keypoint lifter (robotag_ros/model/lifter.py) on forward kinematics alone.

Each batch is drawn fresh: joints uniform within the limits, cameras as the domain
randomisation places them (0.9-2.0 m, all around, -10..60 deg elevation, +-15 deg roll, 40-65 deg
field of view at 640x480), keypoints projected, then corrupted as a detector corrupts them
(Gaussian noise, far outliers, missing points, random confidences). Winner-takes-all loss over
the hypotheses (plus a little of the mean so that no head starves). Minutes on a CPU.

    python -m robotag_ros.training.lifter --artifact runs/panda_stage1/panda_default \
        [--minutes 8] [--hypotheses 8]

writes the lifter into the artifact (weights and ``model_config.lifting_hypotheses``).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from robotag_ros.geometry import project_points, transform_points
from robotag_ros.inference.fitting import keypoint_kinematics
from robotag_ros.model.artifact import load_sidecar, load_weights, save_artifact
from robotag_ros.model.lifter import KeypointLifter
from robotag_ros.robot import load_robot


def random_views(robot, batch: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(joints (B, n), keypoints (B, K, 2) px, K (B, 3, 3)) of random robots and cameras."""
    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand(*(shape or (batch,)), generator=generator)

    joints = robot.sample_joint_angles(batch, generator=generator)
    # The fit's keypoint kinematics: keypoints only (robot.keypoints also moves 2k mesh points).
    keypoints_base = torch.from_numpy(keypoint_kinematics(robot)(joints.double().numpy())[0]
                                      ).float()
    azimuth, elevation = uniform(-math.pi, math.pi), uniform(math.radians(-10), math.radians(60))
    distance, roll = uniform(0.9, 2.0), uniform(math.radians(-15), math.radians(15))
    target = torch.stack((uniform(-0.15, 0.15), uniform(-0.15, 0.15), uniform(0.2, 0.6)), -1)
    eye = target + distance[:, None] * torch.stack((
        elevation.cos() * azimuth.cos(), elevation.cos() * azimuth.sin(), elevation.sin()), -1)
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    up = torch.tensor([0.0, 0.0, 1.0]).expand_as(forward)
    right = torch.nn.functional.normalize(torch.cross(forward, up, dim=-1), dim=-1)
    down = torch.cross(forward, right, dim=-1)
    cos, sin = roll.cos()[:, None], roll.sin()[:, None]
    right, down = cos * right + sin * down, -sin * right + cos * down
    rotation = torch.stack((right, down, forward), 1)                  # rows: camera axes
    T = torch.eye(4).repeat(batch, 1, 1)
    T[:, :3, :3] = rotation
    T[:, :3, 3] = -(rotation @ eye[..., None])[..., 0]
    focal = 240.0 / torch.tan(uniform(math.radians(40), math.radians(65)) / 2)
    K = torch.zeros(batch, 3, 3)
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = focal, focal, 1.0
    K[:, 0, 2], K[:, 1, 2] = uniform(300.0, 340.0), uniform(220.0, 260.0)
    return joints, project_points(transform_points(T, keypoints_base), K), K


def corrupt(keypoints: torch.Tensor, generator: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """A detector's view: noise of 0-6 px, 8% far outliers, 8% missing, confidences in 0.2-1."""
    batch, count = keypoints.shape[:2]
    sigma = 6.0 * torch.rand(batch, 1, 1, generator=generator)
    noisy = keypoints + sigma * torch.randn(keypoints.shape, generator=generator)
    outlier = torch.rand(batch, count, generator=generator) < 0.08
    jump = 30.0 + 150.0 * torch.rand(batch, count, 1, generator=generator)
    angle = 2 * math.pi * torch.rand(batch, count, generator=generator)
    noisy = noisy + outlier[..., None] * jump * torch.stack((angle.cos(), angle.sin()), -1)
    weights = 0.2 + 0.8 * torch.rand(batch, count, generator=generator)
    weights = torch.where(torch.rand(batch, count, generator=generator) < 0.08,
                          torch.zeros_like(weights), weights)
    return noisy, weights


def train_lifter(robot, minutes: float = 8.0, hypotheses: int = 8, batch: int = 512,
                 seed: int = 0, log=print, output_limits=None) -> KeypointLifter:
    """``output_limits`` (n, 2): the ranges the lifter's outputs span (an artifact's
    ``model_config.joint_limits``); default the robot's. Training joints are the robot's."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    limits = robot.joint_limits.detach().cpu() if output_limits is None else \
        torch.as_tensor(output_limits, dtype=torch.float32)
    lifter = KeypointLifter(robot.num_keypoints, limits, hypotheses)
    optimizer = torch.optim.AdamW(lifter.parameters(), lr=1e-3, weight_decay=1e-5)
    started, step = time.time(), 0
    budget_s = 60.0 * minutes
    while time.time() - started < budget_s:
        progress = (time.time() - started) / budget_s
        for group in optimizer.param_groups:       # cosine decay over the time budget
            group['lr'] = 1e-3 * 0.5 * (1 + math.cos(math.pi * progress))
        with torch.no_grad():
            joints, keypoints, K = random_views(robot, batch, generator)
            noisy, weights = corrupt(keypoints, generator)
        predicted = lifter(noisy, weights, K)                           # (B, M, n)
        error = (predicted - joints[:, None]).abs().mean(-1)            # (B, M)
        loss = 0.95 * error.min(1).values.mean() + 0.05 * error.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 200 == 0:
            best = math.degrees(float(error.min(1).values.median()))
            log(f'[lifter] step {step} ({time.time() - started:.0f} s): best-hypothesis '
                f'median joint error {best:.1f} deg')
    lifter.trained_steps, lifter.trained_samples = step, step * batch
    return lifter


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--artifact', required=True, help='model artifact to add the lifter to')
    parser.add_argument('--minutes', type=float, default=8.0)
    parser.add_argument('--hypotheses', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    try:
        sidecar = load_sidecar(args.artifact)
        state = load_weights(args.artifact)
    except (OSError, ValueError) as error:
        print(f'robotag lifter: error: {error}', file=sys.stderr)
        return 2
    robot = load_robot(sidecar.robot)
    lifter = train_lifter(robot, args.minutes, args.hypotheses, seed=args.seed,
                          output_limits=sidecar.model_config.get('joint_limits'))
    state = {k: v for k, v in state.items() if not k.startswith('keypoint_lifter.')}
    state.update({f'keypoint_lifter.{k}': v for k, v in lifter.state_dict().items()})
    sidecar.model_config['lifting_hypotheses'] = args.hypotheses
    sidecar.training['lifter_minutes'] = args.minutes
    sidecar.training['lifter_samples'] = lifter.trained_samples
    save_artifact(args.artifact, state, sidecar)
    print(f'[lifter] wrote the lifter ({lifter.trained_steps} steps) into {args.artifact}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
