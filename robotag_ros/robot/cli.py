"""robotag-robot: check a robot description against its URDF, and print forward kinematics."""
from __future__ import annotations

import argparse
import json
import math
import sys

import torch

from robotag_ros.robot.description import RobotDescriptionError
from robotag_ros.robot.model import RobotModel, as_numpy, load_robot


def _check(robot: RobotModel) -> None:
    desc = robot.description
    print(f'robot {robot.name}: {desc.yaml_path}')
    print(f'  urdf       {desc.urdf_path}')
    print(f'  base frame {robot.base_frame}')
    print(f'  joints ({robot.num_joints}):')
    for joint in desc.joints:
        print(f'    {joint.name:24s} [{joint.lower:+.4f}, {joint.upper:+.4f}]  '
              f'(limits from the {joint.limits_from.upper()})')
    print(f'  keypoints ({robot.num_keypoints}):')
    for keypoint in desc.keypoints:
        print(f'    {keypoint.name:24s} on {keypoint.link}')
    counts = torch.bincount(robot._points_link_index, minlength=len(robot.mesh_links))
    print(f'  mesh points ({robot.num_points}):')
    for link_mesh, count in zip(robot.visual_meshes, counts.tolist()):
        print(f'    {link_mesh.link:24s} {count:5d} points  ({len(link_mesh.mesh.faces)} faces)')
    print('OK')


def _parse_joint_vector(text: str, robot: RobotModel) -> list[float]:
    try:
        values = [float(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise ValueError(f'--joints {text!r}: expected comma-separated numbers') from None
    if len(values) != robot.num_joints:
        raise ValueError(f'--joints has {len(values)} values; {robot.name} has '
                         f'{robot.num_joints} joints {robot.joint_names}')
    return values


def _fk(robot: RobotModel, joint_vectors: list[list[float]], as_json: bool,
        from_file: bool) -> None:
    for vector in joint_vectors:
        if len(vector) != robot.num_joints:
            raise ValueError(f'a joint vector has {len(vector)} values; {robot.name} has '
                             f'{robot.num_joints}')
        # bool is an int to Python, and NaN or inf give NaN keypoints: neither is an angle.
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v) for v in vector):
            raise ValueError(f'joint angles must be finite numbers (radians), got {vector}')
    with torch.no_grad():
        keypoints = as_numpy(robot.keypoints(torch.tensor(joint_vectors, dtype=torch.float32)))
    results = [{'keypoints': {name: [float(v) for v in point]
                              for name, point in zip(robot.keypoint_names, frame)}}
               for frame in keypoints]
    if as_json:
        print(json.dumps(results if from_file else results[0], indent=2))
        return
    for index, result in enumerate(results):
        if from_file:
            print(f'# configuration {index}')
        print(f"{'keypoint':24s} {'x [m]':>10s} {'y [m]':>10s} {'z [m]':>10s}")
        for name, (x, y, z) in result['keypoints'].items():
            print(f'{name:24s} {x:10.5f} {y:10.5f} {z:10.5f}')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='robotag-robot', description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    check = commands.add_parser('check', help='validate a robot description against its URDF')
    check.add_argument('robot', help="bundled robot name (e.g. 'panda') or path to a robot YAML")
    fk = commands.add_parser('fk', help='keypoint positions (base frame, metres) for joint angles')
    fk.add_argument('robot', help="bundled robot name (e.g. 'panda') or path to a robot YAML")
    source = fk.add_mutually_exclusive_group(required=True)
    source.add_argument('--joints', help='comma-separated joint angles in radians, URDF order')
    source.add_argument('--joints-file', help='JSON file holding a list of joint vectors')
    fk.add_argument('--json', action='store_true', help='print JSON instead of a table')
    args = parser.parse_args(argv)

    try:
        robot = load_robot(args.robot)
        if args.command == 'check':
            _check(robot)
        elif args.joints is not None:
            _fk(robot, [_parse_joint_vector(args.joints, robot)], args.json, from_file=False)
        else:
            with open(args.joints_file) as stream:
                vectors = json.load(stream)
            if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
                raise ValueError(f'{args.joints_file}: expected a JSON list of joint vectors')
            _fk(robot, vectors, args.json, from_file=True)
    except (RobotDescriptionError, ValueError, OSError) as error:
        print(f'robotag-robot: error: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
