"""Why the estimate mirrors the arm: a wrong basin the fit could have left, or keypoints that
prefer the mirror?

Runs the bundled model over the held-out rooms frames as the node does (the set of
benchmarks/default_model.py, seed 2006) and, per frame, compares two reprojection residuals against
the network's own detected keypoints (median over keypoints with confidence > 0.3): the reported
robot's and the true robot's (the labels' projected keypoints). Where the truth reprojects worse
than the estimate, no search over starts or ranking by reprojection can recover it: the detected
keypoints themselves favour the mirror, and only better keypoints or another cue (view, depth,
time) can. Mirrors are split by kind (joint 1 and the camera's yaw about the base both off by more
than 90 deg: the arm turned with the camera; joint 1 alone: the arm folded the other way; the yaw
alone), and the frames are grouped by the camera's elevation and distance. Prints a table and
writes benchmarks/results/mirror_diagnosis.json.

    PYTHONPATH=. python benchmarks/mirror_diagnosis.py [--model models/panda_default]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.default_model import SETS, eval_set_folder, eval_set_parser  # noqa: E402
from benchmarks.machine import machine_name, write_results  # noqa: E402

CONFIDENT = 0.3
MIRROR_BOUND_DEG = 90.0


def median_residual_px(detected: np.ndarray, projected: np.ndarray,
                       confidence: np.ndarray) -> float:
    """Median distance (pixels) of the confident detected keypoints to projected ones."""
    confident = confidence > CONFIDENT
    if not confident.any():
        return float('nan')
    return float(np.median(np.linalg.norm(detected - projected, axis=1)[confident]))


def diagnose(estimates, truths) -> dict:
    """Flat figures (percent of frames, degrees, pixels) of the estimates against the truth."""
    import torch

    from robotag_ros.geometry.view import camera_azimuth_elevation
    from robotag_ros.metrics import pose_metrics

    joint_errors = pose_metrics.joint_errors_deg(
        np.stack([e.joint_angles_rad for e in estimates]),
        np.stack([t.joint_angles_rad for t in truths]))
    T_true = np.stack([t.T_cam_base for t in truths])
    yaw_errors = pose_metrics.camera_azimuth_error_deg(
        np.stack([e.T_cam_base for e in estimates]), T_true)
    residual_estimate = np.array([median_residual_px(
        e.keypoints_2d_detected_px, e.keypoints_2d_px, e.keypoint_confidence)
        for e in estimates])
    residual_truth = np.array([median_residual_px(
        e.keypoints_2d_detected_px, t.keypoints_2d_px, e.keypoint_confidence)
        for e, t in zip(estimates, truths)])
    joint_1 = joint_errors[:, 0] > MIRROR_BOUND_DEG
    yaw = yaw_errors > MIRROR_BOUND_DEG
    mirrored = joint_1 | yaw
    truth_worse = residual_truth > residual_estimate
    per_frame = joint_errors[:, :6].mean(axis=1)
    percent = lambda mask: float(100.0 * np.mean(mask)) if mask.size else float('nan')  # noqa
    results = {
        'frames': len(estimates),
        'mirrored_frames_percent': percent(mirrored),
        'mirrored_joint1_and_yaw_percent': percent(joint_1 & yaw),
        'mirrored_joint1_only_percent': percent(joint_1 & ~yaw),
        'mirrored_yaw_only_percent': percent(yaw & ~joint_1),
        'mean_joint_error_j1_6_deg': float(per_frame.mean()),
        'mean_joint_error_j1_6_deg_not_mirrored': float(per_frame[~mirrored].mean()),
        'mean_joint_error_j1_6_deg_mirrored': float(per_frame[mirrored].mean()),
        'detected_to_truth_median_px': float(np.nanmedian(residual_truth)),
        'detected_to_estimate_median_px': float(np.nanmedian(residual_estimate)),
        # the share of mirrored frames whose truth reprojects worse than the estimate: the
        # keypoints' fault, out of any search's reach
        'mirrored_truth_reprojects_worse_percent': percent(truth_worse[mirrored]),
        'not_mirrored_truth_reprojects_worse_percent': percent(truth_worse[~mirrored]),
    }
    for joint in range(joint_errors.shape[1]):
        results[f'joint{joint + 1}_error_deg_not_mirrored'] = float(
            joint_errors[~mirrored, joint].mean())
        results[f'joint{joint + 1}_error_deg_mirrored'] = float(
            joint_errors[mirrored, joint].mean())
    _, elevation = camera_azimuth_elevation(torch.from_numpy(T_true))
    elevation_deg = np.degrees(elevation.numpy())
    for low, high in ((-90, 10), (10, 30), (30, 50), (50, 90)):
        group = (elevation_deg >= low) & (elevation_deg < high)
        results[f'elevation_{low}_{high}_deg_frames'] = int(group.sum())
        results[f'elevation_{low}_{high}_deg_mirrored_percent'] = percent(mirrored[group])
    distance_m = np.linalg.norm(T_true[:, :3, 3], axis=1)
    for low, high in ((0.0, 1.3), (1.3, 1.7), (1.7, 9.0)):
        group = (distance_m >= low) & (distance_m < high)
        name = f'distance_{low:g}_{high:g}_m'
        results[f'{name}_frames'] = int(group.sum())
        results[f'{name}_mirrored_percent'] = percent(mirrored[group])
        results[f'{name}_detected_to_truth_median_px'] = float(
            np.nanmedian(residual_truth[group])) if group.any() else float('nan')
    return results


def main(argv=None) -> int:
    from robotag_ros.data.dream.dataset import DreamDataset
    from robotag_ros.estimator_factory import load_estimator
    from robotag_ros.metrics import format_table
    from robotag_ros.training.evaluate import predict_folder
    parser = eval_set_parser(__doc__, 'mirror_diagnosis.json')
    parser.add_argument('--backend', default='onnxruntime')
    args = parser.parse_args(argv)
    name, seed, config = SETS[0]
    folder = eval_set_folder(args.data, name, seed, config, args.frames)
    estimator = load_estimator(args.model, backend=args.backend, device='cpu')
    estimates, truths = predict_folder(estimator, DreamDataset(folder, estimator.robot),
                                       progress=False)
    results = {'model': Path(args.model).name, 'machine': machine_name(),
               'set': folder.name, 'backend': args.backend,
               **{f'{name}_{key}': value for key, value in diagnose(estimates, truths).items()}}
    print(format_table(results, title='mirror diagnosis'))
    write_results(args.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
