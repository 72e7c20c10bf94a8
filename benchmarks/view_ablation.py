"""What tells mirrored arms apart: old vs new scenes, the view head off/on, the depth term off/on.

Every row runs the held-out frames of the default domain (rooms; the same set as
benchmarks/default_model.py, seed 2006, rendered there if missing) through the estimator as the
node does, and reports ADD AUC, joints 1-6, the share of mirrored frames (joint 1 or the camera's
azimuth about the base off by more than 90 deg) and the view head's sector accuracy:

- ``collage_model``: the model trained on collage scenes only (no view or depth head, the
  robot's earlier 15 keypoints), e.g. the previous bundled model (``--collage-model``);
- ``room_model_*``: the model trained on rooms (``--model``), with the fit reading the view
  head (ranking and starts) and the keypoint depth head on or off (``fit_overrides``).

Prints a table and writes benchmarks/results/view_ablation.json.

    PYTHONPATH=. python benchmarks/view_ablation.py --collage-model /tmp/collage/panda_default \
        --collage-robot /tmp/collage/panda.yaml [--frames 200]
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.default_model import SETS, eval_set_folder, eval_set_parser  # noqa: E402
from benchmarks.machine import machine_name, write_results  # noqa: E402

KEYS = ('add_auc', 'mean_joint_error_j1_6_deg', 'median_joint_error_j1_6_deg',
        'mirrored_frames_percent', 'view_sector_accuracy_percent',
        'view_front_back_accuracy_percent', 'camera_rotation_error_deg')
# Row -> the fit's loop-closing overrides (robotag_ros/inference/loop_closing.py), explicit
# so that a row means the same whatever the defaults.
VIEW_ON = {'view_weight': 50.0}
VIEW_OFF = {'view_weight': 0.0, 'view_starts': False}
DEPTH_ON = {'keypoint_depth_weight': 1000.0}
DEPTH_OFF = {'keypoint_depth_weight': 0.0}
ROOM_ROWS = {
    'room_model_view_off_depth_off': {**VIEW_OFF, **DEPTH_OFF},
    'room_model_view_on_depth_off': {**VIEW_ON, 'view_starts': False, **DEPTH_OFF},
    'room_model_view_off_depth_on': {**VIEW_OFF, **DEPTH_ON},
    'room_model_view_on_depth_on': {**VIEW_ON, 'view_starts': False, **DEPTH_ON},
    'room_model_view_turned_starts_depth_on': {**VIEW_ON, 'view_starts': True, **DEPTH_ON},
}


def main(argv=None) -> int:
    from robotag_ros.estimator_factory import load_estimator
    from robotag_ros.robot.model import RobotModel
    from robotag_ros.robot.description import load_description
    from robotag_ros.training.evaluate import evaluate_estimator
    parser = eval_set_parser(__doc__, 'view_ablation.json')
    parser.add_argument('--collage-model', help='artifact trained on collage scenes')
    parser.add_argument('--collage-robot', help="robot YAML with that model's keypoints")
    args = parser.parse_args(argv)
    name, seed, config = SETS[0]
    folder = eval_set_folder(args.data, name, seed, config, args.frames)
    results = {'machine': machine_name(), 'model': Path(args.model).name,
               'heldout_seed': seed, 'heldout_frames': args.frames}
    rows = []
    if args.collage_model:
        robot = RobotModel(load_description(args.collage_robot)) if args.collage_robot else None
        estimator = load_estimator(args.collage_model, backend='torch', robot=robot)
        rows.append(('collage_model', evaluate_estimator(estimator, str(folder),
                                                         print_table=False)))
    for row, overrides in ROOM_ROWS.items():
        estimator = load_estimator(args.model, backend='torch',
                                   fit_overrides={'loop_closing': overrides})
        rows.append((row, evaluate_estimator(estimator, str(folder), print_table=False)))
    print('| row | ADD AUC | joints 1-6 mean / median (deg) | mirrored % | view sector % | '
          'camera rot (deg) |')
    print('|---|---|---|---|---|---|')
    for row, metrics in rows:
        results.update({f'{row}_{key}': metrics.get(key, float('nan')) for key in KEYS})
        print(f"| {row} | {metrics['add_auc']:.1f} | "
              f"{metrics['mean_joint_error_j1_6_deg']:.1f} / "
              f"{metrics['median_joint_error_j1_6_deg']:.1f} | "
              f"{metrics['mirrored_frames_percent']:.1f} | "
              f"{metrics['view_sector_accuracy_percent']:.1f} | "
              f"{metrics['camera_rotation_error_deg']:.1f} |", flush=True)
    write_results(args.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
