"""What each inference stage adds: direct heads vs the loops closed by the fit, one pass vs two.

The same artifact and held-out frames (the 640x480 sets of benchmarks/default_model.py) through
estimator variants: the network's direct heads (p², R, T) on the letterboxed whole frame; the
same on the robot box the first pass found; the fit on the whole frame; the fit on the box (the
default, what the node runs). Prints a table, writes benchmarks/results/fitting_ablation.json.

Two diagnostic rows let ground truth into the fit (never into any other figure) to say which
half bounds the estimate: ``oracle_keypoints`` fits to the true 2D keypoints from the usual
starts (what the starts and the fit can do with perfect keypoints), ``oracle_start`` fits the
network's keypoints from the true pose alone (what these keypoints allow at best).

    PYTHONPATH=. python benchmarks/fitting_ablation.py [--model models/panda_default] \
        [--frames 200]
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.default_model import SETS, eval_set_folder, eval_set_parser  # noqa: E402
from benchmarks.machine import machine_name, write_results  # noqa: E402

VARIANTS = (('direct_one_pass', False, False), ('direct_two_pass', True, False),
            ('fit_one_pass', False, True), ('fit_two_pass', True, True))
ORACLES = ('oracle_keypoints', 'oracle_start')
KEYS = ('add_auc', 'mean_joint_error_j1_6_deg', 'mean_joint_error_deg',
        'camera_translation_error_mm', 'camera_rotation_error_deg',
        'keypoint_2d_median_error_px', 'detected_keypoint_2d_median_error_px')


class OracleLoops:
    """A loop closer (Estimator's ``loop_closer``) that lets the current batch's labels in."""

    def __init__(self, kind: str):
        self.kind, self.truths = kind, []

    def __call__(self, states, robot, intrinsics, config, lifter=None):
        import numpy as np
        import torch
        from robotag_ros.geometry import project_points
        from robotag_ros.inference.loop_closing import close_loops

        def as_tensor(name: str) -> torch.Tensor:
            return torch.as_tensor(np.stack([getattr(t, name) for t in self.truths])
                                   ).to(intrinsics)
        if self.kind == 'oracle_keypoints':
            confidence = states['keypoints_2d_confidence']
            states = dict(states, keypoints_2d_confidence=torch.ones_like(confidence),
                          keypoints_2d_peak=project_points(as_tensor('keypoints_3d_m'),
                                                           intrinsics).to(confidence))
            return close_loops(states, robot, intrinsics, config, lifter)
        starts = (as_tensor('joint_angles_rad')[:, None], as_tensor('T_cam_base')[:, None])
        return close_loops(states, robot, intrinsics, config, lifter, starts=starts)


def oracle_metrics(estimator, folder: str) -> dict:
    """Every metric with the estimator's OracleLoops closer, handed each batch's labels first."""
    from robotag_ros.training.evaluate import open_eval_folder, predict_folder, score_estimates
    closer = estimator.loop_closer
    estimates, truths = predict_folder(
        estimator, open_eval_folder(folder, estimator.robot), progress=False,
        before_batch=lambda truths: setattr(closer, 'truths', truths))
    return score_estimates(estimates, truths, estimator.robot, estimator.joint_source)


def main(argv=None) -> int:
    from robotag_ros.inference.estimator import Estimator
    from robotag_ros.training.evaluate import evaluate_estimator
    args = eval_set_parser(__doc__, 'fitting_ablation.json').parse_args(argv)
    name, seed, config = SETS[0]
    folder = eval_set_folder(args.data, name, seed, config, args.frames)
    results = {'model': Path(args.model).name, 'machine': machine_name(),
               'frames': args.frames, 'set': folder.name}
    rows = []
    for variant, two_pass, fit in VARIANTS + tuple((kind, True, True) for kind in ORACLES):
        oracle = {'loop_closer': OracleLoops(variant)} if variant in ORACLES else {}
        estimator = Estimator.from_artifact(args.model, backend='torch', two_pass=two_pass,
                                            fit=fit, **oracle)
        metrics = oracle_metrics(estimator, str(folder)) if oracle \
            else evaluate_estimator(estimator, str(folder), print_table=False)
        rows.append((variant, [metrics.get(key, float('nan')) for key in KEYS]))
        for key in KEYS:
            results[f'{variant}_{key}'] = metrics.get(key, float('nan'))
    header = ['variant', 'ADD AUC', 'j1-6 deg', 'j1-7 deg', 'cam mm', 'cam deg', '2D px',
              'peaks px']
    print(' | '.join(header))
    for variant, values in rows:
        print(' | '.join([variant] + [f'{v:.1f}' for v in values]))
    write_results(args.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
