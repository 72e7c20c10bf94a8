"""The field's pose-estimation metrics as pure numpy functions (definitions: docs/metrics.md).

ADD AUC, ADD shares under fixed thresholds, joint angle errors, camera pose errors and 2D PCK AUC,
computed exactly as Holistic Robot Pose / RoboPose / RoboPEPP compute them, so our numbers sit next
to the paper's Tables 1-2. Lengths are metres in, angles radians in; results carry their unit in
the name.
"""
from __future__ import annotations

import numpy as np

# The field's curve grids: thresholds from 0, one step short of the maximum (np.arange).
ADD_AUC_MAX_M = 0.1
ADD_AUC_STEP_M = 1e-5
PCK_AUC_MAX_PX = 20.0
PCK_AUC_STEP_PX = 0.01
ADD_SHARE_THRESHOLDS_MM = (1, 5, 10, 20, 40, 60, 80, 100)
# Shares of frames whose mean error over joints 1-6 is within these bounds (degrees).
JOINT_SHARE_THRESHOLDS_DEG = (5, 10, 20)


def add_per_image(keypoints_pred_m: np.ndarray, keypoints_gt_m: np.ndarray) -> np.ndarray:
    """ADD of each image: mean over all K keypoints of the 3D distance, metres.

    keypoints_pred_m, keypoints_gt_m: (N, K, 3) camera-frame keypoints in metres.
    Returns (N,) metres.
    """
    pred = np.asarray(keypoints_pred_m, dtype=np.float64)
    gt = np.asarray(keypoints_gt_m, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f'keypoints must both be (N, K, 3); got {pred.shape} and {gt.shape}')
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)


def _curve_auc(errors: np.ndarray, max_value: float, step: float) -> float:
    """Area under the accuracy-vs-threshold curve, normalised to [0, 1].

    Accuracy at threshold v is the share of ALL entries with error <= v (a NaN error never counts
    as correct but stays in the denominator), integrated with the trapezoid rule.
    """
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        return float('nan')
    thresholds = np.arange(0.0, max_value, step)
    # A NaN compares False, so a failed image counts as a miss at every threshold.
    accuracy = (errors[None, :] <= thresholds[:, None]).mean(axis=1)
    return float(np.trapezoid(accuracy, dx=step) / max_value)


def add_auc_percent(add_m: np.ndarray) -> float:
    """ADD AUC, percent: thresholds 0..0.1 m (step 1e-5 m), non-strict, over all images."""
    return 100.0 * _curve_auc(add_m, ADD_AUC_MAX_M, ADD_AUC_STEP_M)


def add_share_under_percent(add_m: np.ndarray,
                            thresholds_mm=ADD_SHARE_THRESHOLDS_MM) -> dict[str, float]:
    """Share of images (percent) with ADD <= each threshold, keyed ``add_under_<X>mm_percent``."""
    add_mm = np.asarray(add_m, dtype=np.float64).reshape(-1) * 1000.0
    if add_mm.size == 0:
        return {f'add_under_{t}mm_percent': float('nan') for t in thresholds_mm}
    return {f'add_under_{t}mm_percent': float(100.0 * np.mean(add_mm <= t)) for t in thresholds_mm}


def joint_errors_deg(joint_angles_pred_rad: np.ndarray,
                     joint_angles_gt_rad: np.ndarray) -> np.ndarray:
    """Absolute joint angle errors, degrees, (N, n).

    Plain ``|q_gt - q_pred|`` as the field computes it (no wrap to [-pi, pi]: the estimated joints
    are revolute joints with limits inside one turn).
    """
    pred = np.asarray(joint_angles_pred_rad, dtype=np.float64)
    gt = np.asarray(joint_angles_gt_rad, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f'joint angles must both be (N, n); got {pred.shape} and {gt.shape}')
    return np.degrees(np.abs(gt - pred))


def rotation_error_deg(R_pred: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotations, degrees: (..., 3, 3) pairs -> (...)."""
    R_pred = np.asarray(R_pred, dtype=np.float64)
    R_gt = np.asarray(R_gt, dtype=np.float64)
    trace = np.einsum('...ij,...ij->...', R_pred, R_gt)  # = trace(R_pred^T R_gt)
    return np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))


def camera_pose_errors(T_cam_base_pred: np.ndarray,
                       T_cam_base_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image camera errors: (translation error in mm, geodesic rotation error in degrees).

    T_cam_base_*: (N, 4, 4) metres. Translation error is the distance between the translation
    columns, i.e. between the base origins seen from the camera.
    """
    pred = np.asarray(T_cam_base_pred, dtype=np.float64)
    gt = np.asarray(T_cam_base_gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[-2:] != (4, 4):
        raise ValueError(f'transforms must both be (N, 4, 4); got {pred.shape} and {gt.shape}')
    translation_mm = 1000.0 * np.linalg.norm(pred[..., :3, 3] - gt[..., :3, 3], axis=-1)
    return translation_mm, rotation_error_deg(pred[..., :3, :3], gt[..., :3, :3])


def keypoint_2d_error_px(keypoints_pred_px: np.ndarray, keypoints_gt_px: np.ndarray,
                         image_size_hw) -> np.ndarray:
    """Per-image mean pixel error over the ground-truth keypoints inside the image.

    Inside means 0 <= u <= W and 0 <= v <= H (Holistic's rule). keypoints_*: (N, K, 2) pixels;
    image_size_hw: (H, W) for all images or (N, 2). An image with no keypoint inside gets NaN.
    """
    pred = np.asarray(keypoints_pred_px, dtype=np.float64)
    gt = np.asarray(keypoints_gt_px, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f'2D keypoints must both be (N, K, 2); got {pred.shape} and {gt.shape}')
    size_hw = np.broadcast_to(np.asarray(image_size_hw, dtype=np.float64), (gt.shape[0], 2))
    height, width = size_hw[:, 0:1], size_hw[:, 1:2]
    inside = ((gt[..., 0] >= 0) & (gt[..., 0] <= width) & (gt[..., 1] >= 0)
              & (gt[..., 1] <= height))
    distance = np.linalg.norm(pred - gt, axis=-1)
    count = inside.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, (distance * inside).sum(axis=1) / count, np.nan)


def keypoint_2d_median_error_px(keypoints_pred_px: np.ndarray, keypoints_gt_px: np.ndarray,
                                image_size_hw) -> float:
    """Median pixel error over every ground-truth keypoint inside its image (all images)."""
    pred = np.asarray(keypoints_pred_px, dtype=np.float64)
    gt = np.asarray(keypoints_gt_px, dtype=np.float64)
    size_hw = np.broadcast_to(np.asarray(image_size_hw, dtype=np.float64), (gt.shape[0], 2))
    inside = ((gt[..., 0] >= 0) & (gt[..., 0] <= size_hw[:, 1:2]) & (gt[..., 1] >= 0)
              & (gt[..., 1] <= size_hw[:, 0:1]))
    distance = np.linalg.norm(pred - gt, axis=-1)[inside]
    return float(np.median(distance)) if distance.size else float('nan')


def pck_auc_percent(errors_px: np.ndarray) -> float:
    """2D PCK AUC in percent over images with a defined error (thresholds 0..20 px, step 0.01).

    Images without any ground-truth keypoint inside the image (NaN error) are left out.
    """
    errors = np.asarray(errors_px, dtype=np.float64).reshape(-1)
    return 100.0 * _curve_auc(errors[np.isfinite(errors)], PCK_AUC_MAX_PX, PCK_AUC_STEP_PX)


def camera_azimuth_deg(T_cam_base: np.ndarray) -> np.ndarray:
    """The camera centre's azimuth about the base's z axis, from its x axis, degrees, (N,)."""
    T = np.asarray(T_cam_base, dtype=np.float64)
    centre = -np.einsum('nji,nj->ni', T[:, :3, :3], T[:, :3, 3])
    return np.degrees(np.arctan2(centre[:, 1], centre[:, 0]))


def camera_azimuth_error_deg(T_cam_base_pred: np.ndarray,
                             T_cam_base_gt: np.ndarray) -> np.ndarray:
    """|azimuth difference| of the camera about the base, wrapped to [0, 180] degrees, (N,)."""
    difference = camera_azimuth_deg(T_cam_base_pred) - camera_azimuth_deg(T_cam_base_gt)
    return np.abs((difference + 180.0) % 360.0 - 180.0)


def mirrored_frames_percent(joint_errors: np.ndarray, azimuth_errors_deg: np.ndarray,
                            bound_deg: float = 90.0) -> float:
    """Share of frames seen from the wrong side: joint 1 off by more than ``bound_deg``, or the
    camera's azimuth about the base off by more than it. joint_errors (N, n) degrees."""
    mirrored = (np.asarray(joint_errors)[:, 0] > bound_deg) | (
        np.asarray(azimuth_errors_deg) > bound_deg)
    return float(100.0 * mirrored.mean()) if len(mirrored) else float('nan')
