"""Evaluation with the field's metrics (ADD AUC, joint errors, camera errors, PCK).

Frames go through the same path as the node: the original image and intrinsics into the
Estimator (letterbox to the artifact's input size, network, shared decoding). No ground truth is
used to crop: the numbers are what a deployed estimator gets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from robotag_ros.data.dream.dataset import DreamDataset
from robotag_ros.finetune.swap import score_of_estimates
from robotag_ros.inference.decode import JOINT_SOURCES
from robotag_ros.estimator_factory import load_estimator
from robotag_ros.inference.estimator import Estimator
from robotag_ros.metrics import evaluate, format_table
from robotag_ros.metrics.pose_metrics import keypoint_2d_median_error_px
from robotag_ros.training.distributed import resolve_device


def _keypoints_base_fn(robot):
    def keypoints_base(joint_angles: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = torch.as_tensor(joint_angles, dtype=torch.float32,
                                device=robot.joint_limits.device)
            return robot.keypoints(q).double().cpu().numpy()
    return keypoints_base


def predict_folder(estimator, dataset, batch_size: int = 16, max_frames: int = 0,
                   progress: bool = True, before_batch=None) -> tuple[list, list]:
    """Run the estimator over a DREAM folder's original frames -> (estimates, ground truths).
    ``before_batch(truths)``, if given, sees each batch's labels first (diagnostics only)."""
    count = len(dataset) if not max_frames else min(max_frames, len(dataset))
    estimates, truths = [], []
    indices = list(range(count))
    for start in tqdm(range(0, count, batch_size), desc=f'eval {Path(dataset.root).name}',
                      disable=not progress, dynamic_ncols=True):
        frames = [dataset.raw_frame(i) for i in indices[start:start + batch_size]]
        if before_batch is not None:
            before_batch([f['ground_truth'] for f in frames])
        estimates += estimator.estimate_batch([f['image_rgb'] for f in frames],
                                              [f['K'] for f in frames], with_points=False)
        truths += [f['ground_truth'] for f in frames]
    return estimates, truths


def metrics_for(estimates, truths, robot, joint_source: Optional[str] = None) -> dict:
    """Metrics of a list of estimates; ``joint_source`` re-picks the branch whose joints count."""
    if joint_source is not None:
        estimates = [_with_joints(e, joint_source) for e in estimates]
    return evaluate(estimates, truths, robot.joint_names,
                    keypoints_base_fn=_keypoints_base_fn(robot),
                    add_keypoints=robot.description.dream.get('num_keypoints'))


def _with_joints(estimate, joint_source):
    from dataclasses import replace
    branch = {k: np.asarray(v) for k, v in estimate.branch_joint_angles_rad.items()}
    branch['mean'] = 0.5 * (branch['2d'] + branch['3d'])
    return replace(estimate, joint_angles_rad=branch[joint_source])


def score_estimates(estimates, truths, robot, joint_source: str) -> dict:
    """Every metric, plus each branch's joint error and ADD AUC, so which branch's joints the
    estimator reports is measured, not guessed (see ``best_joint_source``)."""
    metrics = metrics_for(estimates, truths, robot)
    for source in JOINT_SOURCES:
        branch = metrics_for(estimates, truths, robot, joint_source=source)
        metrics[f'joint_source_{source}_mean_joint_error_deg'] = branch['mean_joint_error_deg']
        metrics[f'joint_source_{source}_add_auc'] = branch['add_auc']
    metrics['joint_source'] = joint_source
    metrics['mean_consistency'] = float(np.mean([e.consistency for e in estimates]))
    metrics['holdout_score'] = score_of_estimates(estimates)   # what the swap gate compares
    # The network's own 2D keypoints (heatmap peaks), before the fit re-projects the robot.
    detected = [e for e in estimates if e.keypoints_2d_detected_px is not None]
    if len(detected) == len(estimates) and estimates:
        metrics['detected_keypoint_2d_median_error_px'] = keypoint_2d_median_error_px(
            np.stack([e.keypoints_2d_detected_px for e in estimates]),
            np.stack([t.keypoints_2d_px for t in truths]),
            np.stack([t.image_size_hw for t in truths]))
    return metrics


def best_joint_source(metrics: dict) -> str:
    """The branch (2d, 3d or their mean) with the lowest mean joint error on held-out data."""
    errors = {s: metrics[f'joint_source_{s}_mean_joint_error_deg'] for s in JOINT_SOURCES}
    finite = {s: e for s, e in errors.items() if np.isfinite(e)}
    return min(finite, key=finite.get) if finite else '2d'


def open_eval_folder(folder: str, robot):
    """The DreamDataset of an evaluation folder; one without labelled frames (empty, or no DREAM
    folder at all, e.g. a rosbag2) is refused: its metrics would all be NaN."""
    dataset = DreamDataset(folder, robot, image_size=None, augment=False)
    if len(dataset) == 0:
        raise ValueError(f'{folder}: no DREAM frames (NNNNNN.json + NNNNNN.rgb.jpg) to evaluate'
                         + (' (it is a rosbag2; robotag-eval needs labelled DREAM folders)'
                            if (Path(folder) / 'metadata.yaml').is_file() else ''))
    return dataset


def evaluate_estimator(estimator, folder: str, batch_size: int = 16, max_frames: int = 0,
                       print_table: bool = True, dataset=None) -> dict:
    """Every metric on one DREAM-format folder, through the estimator (as the node runs).
    ``dataset``: the folder's dataset from :func:`open_eval_folder`, if already opened."""
    if dataset is None:
        dataset = open_eval_folder(folder, estimator.robot)
    estimates, truths = predict_folder(estimator, dataset, batch_size, max_frames)
    metrics = score_estimates(estimates, truths, estimator.robot, estimator.joint_source)
    metrics['skipped_frames'] = dataset.num_skipped
    metrics['crop'] = ('two passes: whole frame letterboxed, then a box around the robot found '
                       'there, as the node' if estimator.two_pass else
                       'full image (letterboxed), as the node')
    metrics['fit'] = bool(estimator.fit)
    if print_table:
        print(format_table(metrics, title=f'{Path(folder).name} ({len(estimates)} frames)'))
    return metrics


def evaluate_artifact(artifact: str, folder: str, device: str = 'auto', batch_size: int = 16,
                      max_frames: int = 0, print_table: bool = True,
                      backend: str = 'torch') -> dict:
    estimator = load_estimator(artifact, backend=backend, device=str(resolve_device(device)))
    return evaluate_estimator(estimator, folder, batch_size, max_frames, print_table)


def evaluate_model(model, robot, dataset, input_hw, batch_size: int = 16,
                   max_frames: int = 0) -> dict:
    """During training: the in-memory model through the estimator path (both passes, the direct
    heads: the fit is measured on the artifact), on the original frames of a DreamDataset
    built with ``image_size=None``."""
    estimator = Estimator.from_model(model, input_hw=input_hw, fit=False)
    estimates, truths = predict_folder(estimator, dataset, batch_size, max_frames,
                                       progress=False)
    return score_estimates(estimates, truths, robot, estimator.joint_source)
