"""Turn per-frame predictions and labels into the flat metrics dict of ``robotag-eval``; print it.

The dict's keys carry their unit (``add_auc`` is percent, errors end in ``_deg`` / ``_mm``); the
same dict is written as JSON by the evaluation tools.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robotag_ros.metrics import pose_metrics


@dataclass
class GroundTruthFrame:
    """The labels of one image that the metrics use (metres, radians, pixels; camera frame)."""

    joint_angles_rad: np.ndarray | None      # (n,)
    T_cam_base: np.ndarray | None            # (4, 4)
    keypoints_3d_m: np.ndarray | None        # (K, 3) camera frame
    keypoints_2d_px: np.ndarray | None = None  # (K, 2)
    image_size_hw: tuple[int, int] | None = None


def _field(item, name: str):
    """Read ``name`` from a dataclass-like object or a mapping; None when absent."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _stack(items, name: str) -> np.ndarray | None:
    """Stack one field over frames, or None when any frame lacks it."""
    values = [_field(item, name) for item in items]
    if not values or any(v is None for v in values):
        return None
    return np.stack([np.asarray(v, dtype=np.float64) for v in values])


def evaluate(predictions: Sequence, ground_truths: Sequence, joint_names: Sequence[str],
             keypoints_base_fn: Callable[[np.ndarray], np.ndarray] | None = None,
             add_keypoints: int | None = None) -> dict:
    """Compute every metric over a data set; returns the flat dict (NaN where labels are missing).

    predictions: per-frame objects with ``joint_angles_rad``, ``T_cam_base``, ``keypoints_3d_m``,
    ``keypoints_2d_px`` (an :class:`~robotag_ros.inference.estimate.Estimate` or a mapping).
    ground_truths: :class:`GroundTruthFrame` objects or mappings with the same names.
    keypoints_base_fn: forward kinematics, joint angles (N, n) rad -> keypoints (N, K, 3) metres in
    the base frame. When given, the predicted 3D keypoints are FK of the predicted joint angles
    placed with the predicted ``T_cam_base`` (the field's definition); otherwise the predictions'
    own ``keypoints_3d_m`` are used.
    add_keypoints: ADD over the first this many keypoints only (DREAM's set, which the field's
    numbers use; our robot YAMLs list extra keypoints after them). None: all.
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(f'{len(predictions)} predictions but {len(ground_truths)} ground truths')
    nan = float('nan')
    result: dict = {'num_frames': len(predictions)}

    q_pred = _stack(predictions, 'joint_angles_rad')
    T_pred, T_gt = _stack(predictions, 'T_cam_base'), _stack(ground_truths, 'T_cam_base')

    kp3d_gt = _stack(ground_truths, 'keypoints_3d_m')
    if keypoints_base_fn is not None and q_pred is not None and T_pred is not None:
        kp_base = np.asarray(keypoints_base_fn(q_pred), dtype=np.float64)
        kp3d_pred = np.einsum('nij,nkj->nki', T_pred[:, :3, :3], kp_base) + T_pred[:, None, :3, 3]
    else:
        kp3d_pred = _stack(predictions, 'keypoints_3d_m')
    if kp3d_pred is not None and kp3d_gt is not None:
        count = add_keypoints or kp3d_gt.shape[1]
        add_m = pose_metrics.add_per_image(kp3d_pred[:, :count], kp3d_gt[:, :count])
        result['add_num_keypoints'] = int(count)
        result['add_auc'] = pose_metrics.add_auc_percent(add_m)
        result['add_mean_mm'] = float(1000.0 * add_m.mean())
        result.update(pose_metrics.add_share_under_percent(add_m))
    else:
        result['add_auc'] = nan
        result['add_mean_mm'] = nan
        result.update({f'add_under_{t}mm_percent': nan
                       for t in pose_metrics.ADD_SHARE_THRESHOLDS_MM})

    result.update(_joint_metrics(predictions, ground_truths, joint_names))
    result.update(_view_metrics(predictions, ground_truths))

    if T_pred is not None and T_gt is not None:
        translation_mm, rotation_deg = pose_metrics.camera_pose_errors(T_pred, T_gt)
        result['camera_translation_error_mm'] = float(translation_mm.mean())
        result['camera_rotation_error_deg'] = float(rotation_deg.mean())
    else:
        result['camera_translation_error_mm'] = nan
        result['camera_rotation_error_deg'] = nan

    kp2d_pred = _stack(predictions, 'keypoints_2d_px')
    kp2d_gt = _stack(ground_truths, 'keypoints_2d_px')
    sizes = _stack(ground_truths, 'image_size_hw')
    if kp2d_pred is not None and kp2d_gt is not None and sizes is not None:
        errors_px = pose_metrics.keypoint_2d_error_px(kp2d_pred, kp2d_gt, sizes)
        result['pck_auc'] = pose_metrics.pck_auc_percent(errors_px)
        result['pck_num_frames'] = int(np.isfinite(errors_px).sum())
        result['keypoint_2d_median_error_px'] = pose_metrics.keypoint_2d_median_error_px(
            kp2d_pred, kp2d_gt, sizes)
    else:
        result['pck_auc'] = nan
        result['pck_num_frames'] = 0
        result['keypoint_2d_median_error_px'] = nan
    return result


def _view_metrics(predictions: Sequence, ground_truths: Sequence) -> dict:
    """Which side the estimate sees the robot from: the share of mirrored frames (joint 1 or
    the camera's azimuth about the base off by more than 90 deg), and the view head's azimuth
    sector and front/back accuracy where the estimates carry its probabilities."""
    nan = float('nan')
    result = {'mirrored_frames_percent': nan, 'view_sector_accuracy_percent': nan,
              'view_front_back_accuracy_percent': nan}
    labelled = [(p, t) for p, t in zip(predictions, ground_truths)
                if _field(t, 'joint_angles_rad') is not None
                and _field(t, 'T_cam_base') is not None]
    if not labelled:
        return result
    predicted, truths = [p for p, _ in labelled], [t for _, t in labelled]
    T_gt = _stack(truths, 'T_cam_base')
    joint_errors = pose_metrics.joint_errors_deg(_stack(predicted, 'joint_angles_rad'),
                                                 _stack(truths, 'joint_angles_rad'))
    result['mirrored_frames_percent'] = pose_metrics.mirrored_frames_percent(
        joint_errors, pose_metrics.camera_azimuth_error_deg(_stack(predicted, 'T_cam_base'),
                                                            T_gt))
    probs = [_field(p, 'view_azimuth_probs') for p in predicted]
    if all(p is not None for p in probs):
        probs = np.stack(probs)
        bins = probs.shape[1]
        truth_deg = pose_metrics.camera_azimuth_deg(T_gt)
        truth_sector = np.clip(((truth_deg + 180.0) / 360.0 * bins).astype(int), 0, bins - 1)
        guess = probs.argmax(1)
        guess_deg = (guess + 0.5) * 360.0 / bins - 180.0
        result['view_sector_accuracy_percent'] = float(100.0 * np.mean(guess == truth_sector))
        result['view_front_back_accuracy_percent'] = float(100.0 * np.mean(
            (np.abs(guess_deg) < 90.0) == (np.abs(truth_deg) < 90.0)))
    return result


def _joint_metrics(predictions: Sequence, ground_truths: Sequence,
                   joint_names: Sequence[str]) -> dict:
    """Joint-angle errors over the frames that have joint labels (``joint_num_frames`` of them):
    one unlabelled frame (a real image with a tracked camera only) must not void the set's."""
    nan = float('nan')
    labelled = [(p, t) for p, t in zip(predictions, ground_truths)
                if _field(t, 'joint_angles_rad') is not None]
    q_pred = _stack([p for p, _ in labelled], 'joint_angles_rad')
    q_gt = _stack([t for _, t in labelled], 'joint_angles_rad')
    result: dict = {'joint_num_frames': len(labelled)}
    if q_pred is None or q_gt is None:
        result['mean_joint_error_deg'] = nan
        result['per_joint_error_deg'] = {name: nan for name in joint_names}
        return result
    if q_gt.shape[1] != len(joint_names):
        raise ValueError(f'{len(joint_names)} joint names for {q_gt.shape[1]} joint angles')
    errors_deg = pose_metrics.joint_errors_deg(q_pred, q_gt)
    # Per image mean over joints, then over images (equal to the mean of all entries).
    result['mean_joint_error_deg'] = float(errors_deg.mean(axis=1).mean())
    # Joints 1-6: the last joint of an arm often turns a nearly symmetric hand (Panda).
    result['mean_joint_error_j1_6_deg'] = float(errors_deg[:, :6].mean())
    # The mean hides the shape: a fit in a mirrored arm costs ~100 deg on a few joints, so
    # the median frame and the share of frames within a bound say more.
    per_frame = errors_deg[:, :6].mean(axis=1)
    result['median_joint_error_j1_6_deg'] = float(np.median(per_frame))
    result.update({f'joint_error_j1_6_under_{t}deg_percent': float(100.0 * np.mean(
        per_frame <= t)) for t in pose_metrics.JOINT_SHARE_THRESHOLDS_DEG})
    result['per_joint_error_deg'] = {
        name: float(e) for name, e in zip(joint_names, errors_deg.mean(axis=0))}
    return result


def format_table(metrics: Mapping, title: str = 'metrics') -> str:
    """A plain-text two-column table of a metrics dict (per-joint errors get one row each)."""
    rows: list[tuple[str, str]] = []
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            rows.extend((f'{key}[{name}]', _format_value(v)) for name, v in value.items())
        else:
            rows.append((key, _format_value(value)))
    width = max([len(title)] + [len(k) for k, _ in rows])
    value_width = max([5] + [len(v) for _, v in rows])
    rule = '-' * (width + value_width + 3)
    lines = [title, rule] + [f'{k:<{width}}   {v:>{value_width}}' for k, v in rows] + [rule]
    return '\n'.join(lines)


def _format_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f'{float(value):.3f}'
    return str(value)
