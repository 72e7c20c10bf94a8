"""What each inference stage adds: direct heads vs the loops closed by the fit, one pass vs two.

The same artifact and held-out frames (the 640x480 sets of benchmarks/default_model.py) through
estimator variants: the network's direct heads (p², R, T) on the letterboxed whole frame; the
same on the robot box the first pass found; the fit on the whole frame; the fit on the box (the
default, what the node runs). Prints a table, writes benchmarks/results/fitting_ablation.json.

    PYTHONPATH=. python benchmarks/fitting_ablation.py [--model models/panda_default] \
        [--frames 200]
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.default_model import SETS, eval_set_parser, render_eval_set  # noqa: E402
from benchmarks.machine import machine_name, write_results  # noqa: E402

VARIANTS = (('direct_one_pass', False, False), ('direct_two_pass', True, False),
            ('fit_one_pass', False, True), ('fit_two_pass', True, True))
KEYS = ('add_auc', 'mean_joint_error_j1_6_deg', 'mean_joint_error_deg',
        'camera_translation_error_mm', 'camera_rotation_error_deg',
        'keypoint_2d_median_error_px', 'detected_keypoint_2d_median_error_px')


def main(argv=None) -> int:
    from robotag_ros.inference.estimator import Estimator
    from robotag_ros.training.evaluate import evaluate_estimator
    args = eval_set_parser(__doc__, 'fitting_ablation.json').parse_args(argv)
    name, seed, config = SETS[0]
    folder = Path(args.data) / f'panda_{name}_640x480_{args.frames}'
    render_eval_set(folder, args.frames, seed, config)
    results = {'model': Path(args.model).name, 'machine': machine_name(),
               'frames': args.frames, 'set': folder.name}
    rows = []
    for variant, two_pass, fit in VARIANTS:
        estimator = Estimator.from_artifact(args.model, backend='torch', two_pass=two_pass,
                                            fit=fit)
        metrics = evaluate_estimator(estimator, str(folder), print_table=False)
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
