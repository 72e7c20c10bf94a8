"""One fixed camera from every frame at once: a single robust PnP over all frames' keypoints.

With measured joints, the forward-kinematics keypoints of every frame are known 3D points in
the frame the camera is fixed to: the base for a static camera (eye-on-base), the hand for a
camera on the arm (eye-in-hand: each frame's base keypoints moved into the hand frame by the
inverse FK of the hand). Whatever the arm's configuration, the same camera sees them all, so the
calibration is one perspective-n-point problem over N frames x K keypoints instead of N small
ones averaged. The arm sweeping through many configurations spreads the points far wider than
any one frame's, which pins the depth, and the detector's pose-dependent errors average in image
space rather than through each frame's unstable depth.

The solve: the better (robust cost) of a given start (the per-frame aggregate) and SQPnP on all
confident points, refined by iteratively reweighted Gauss-Newton/Levenberg-Marquardt on the
reprojection error with a Cauchy loss, each point weighted by its heatmap confidence. The
update is the fit's left-multiplied camera step (``X <- exp(dw) X + dt``,
:mod:`robotag_ros.inference.fitting`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robotag_ros.calibration.hand_eye import robot_forward_kinematics
from robotag_ros.inference.fitting import (interchangeable_order, keypoint_kinematics,
                                           projection_jacobian, skew, so3_exp)

# Below this many usable points the six unknowns are not worth solving for.
MIN_POINTS = 6


@dataclass
class JointCameraFit:
    """The fixed camera fitted to all frames' keypoints (``T``: reference frame -> camera)."""

    T: np.ndarray                 # (4, 4) T_cam_reference, metres
    points_used: int              # keypoints with weight above the threshold
    frames_used: int              # frames contributing at least one of them
    rms_px: float                 # weighted RMS reprojection error of the points within 3 scales
    median_px: float              # median reprojection error of all points used
    inlier_fraction: float        # share of the points used within 3 robust scales
    start: str                    # 'given' or 'sqpnp': the start the refinement began from
    iterations: int

    def summary(self) -> dict:
        """Flat, JSON-ready numbers (units in the keys)."""
        return {'joint_fit_points_used': self.points_used,
                'joint_fit_frames_used': self.frames_used,
                'joint_fit_rms_px': self.rms_px, 'joint_fit_median_px': self.median_px,
                'joint_fit_inlier_fraction': self.inlier_fraction,
                'joint_fit_start': self.start, 'joint_fit_iterations': self.iterations}


def points_in_hand_frame(keypoints_base_m: np.ndarray, T_base_ee: np.ndarray) -> np.ndarray:
    """Base-frame keypoints (N, K, 3) of each frame moved into its hand frame (eye-in-hand)."""
    T_base_ee = np.asarray(T_base_ee, dtype=np.float64)
    rotation, translation = T_base_ee[:, :3, :3], T_base_ee[:, :3, 3]
    # p_ee = R' (p_base - t)
    return (keypoints_base_m - translation[:, None]) @ rotation


def _common_pixels(keypoints_2d_px: np.ndarray, intrinsics: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Image points re-expressed for one camera matrix (the first frame's), so frames whose
    CameraInfo differ still share one projection; unchanged when all are equal."""
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    if intrinsics.ndim == 2:
        return keypoints_2d_px, intrinsics
    reference = intrinsics[0]
    if np.allclose(intrinsics, reference):
        return keypoints_2d_px, reference
    homogeneous = np.concatenate((keypoints_2d_px, np.ones_like(keypoints_2d_px[..., :1])), -1)
    rays = homogeneous @ np.linalg.inv(intrinsics).transpose(0, 2, 1)
    pixels = rays @ reference.T
    return pixels[..., :2] / pixels[..., 2:], reference


def _project(camera: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
             points: np.ndarray, min_depth_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (..., 2) and camera-frame points (..., 3) of reference-frame points (..., 3)."""
    points_cam = points @ rotation.T + translation
    depth = np.maximum(points_cam[..., 2:], min_depth_m)
    return points_cam[..., :2] / depth * camera[(0, 1), (0, 1)] + camera[(0, 1), (2, 2)], \
        points_cam


def _residuals(camera: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
               points: np.ndarray, pixels: np.ndarray, min_depth_m: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Reprojection residuals (P, 2) pixels and camera-frame points (P, 3)."""
    projected, points_cam = _project(camera, rotation, translation, points, min_depth_m)
    return projected - pixels, points_cam


def _robust_cost(residuals: np.ndarray, weights: np.ndarray, scale_px: float) -> float:
    """Cauchy cost c² log(1 + r²/c²), weighted (the fit's loss)."""
    squared = (residuals ** 2).sum(-1)
    return float(scale_px ** 2 * (weights * np.log1p(squared / scale_px ** 2)).sum())


def _refine(camera: np.ndarray, T_start: np.ndarray, points: np.ndarray, pixels: np.ndarray,
            weights: np.ndarray, scale_px: float, iterations: int, min_depth_m: float
            ) -> tuple[np.ndarray, float, int]:
    """IRLS Levenberg-Marquardt of one camera pose over all points -> (T, cost, iterations)."""
    rotation, translation = T_start[:3, :3].copy(), T_start[:3, 3].copy()
    focal = camera[(0, 1), (0, 1)]
    residuals, points_cam = _residuals(camera, rotation, translation, points, pixels,
                                       min_depth_m)
    cost = _robust_cost(residuals, weights, scale_px)
    damping, done = 1e-3, 0
    for done in range(1, iterations + 1):
        in_front = points_cam[:, 2:] > min_depth_m
        inv_depth = 1.0 / np.maximum(points_cam[:, 2:], min_depth_m)
        normalised = points_cam[:, :2] * inv_depth
        # d camera point / d (dw, dt): rows dw_i x X (row i of skew(X)) and e_i, as in the fit.
        d_points = np.concatenate((skew(points_cam),
                                   np.broadcast_to(np.eye(3), (len(points_cam), 3, 3))), 1)
        d_pixels = projection_jacobian(d_points, normalised, in_front, focal,
                                       inv_depth)                             # (P, 6, 2)
        irls = weights / (1.0 + (residuals ** 2).sum(-1) / scale_px ** 2)
        weighted = d_pixels * irls[:, None, None]
        hessian = np.einsum('pik,pjk->ij', weighted, d_pixels)
        gradient = np.einsum('pik,pk->i', weighted, residuals)
        improved = False
        while not improved and damping < 1e9:
            damped = hessian + np.diag(np.diag(hessian) * damping + 1e-12)
            step = -np.linalg.solve(damped, gradient)
            update = so3_exp(step[None, :3])[0]
            new_rotation = update @ rotation
            new_translation = update @ translation + step[3:]
            new_residuals, new_points_cam = _residuals(camera, new_rotation, new_translation,
                                                       points, pixels, min_depth_m)
            new_cost = _robust_cost(new_residuals, weights, scale_px)
            improved = new_cost < cost
            damping = damping * 0.3 if improved else damping * 10.0
        if not improved:
            break
        rotation, translation, residuals, points_cam = (new_rotation, new_translation,
                                                        new_residuals, new_points_cam)
        gain, cost = cost - new_cost, new_cost
        if np.abs(step).max() < 1e-9 or gain < 1e-10 * cost:
            break
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation, translation
    return T, cost, done


def fit_fixed_camera(points_m: np.ndarray, keypoints_2d_px: np.ndarray, weights: np.ndarray,
                     intrinsics: np.ndarray, T_start: np.ndarray | None = None,
                     robust_scale_px: float = 8.0, min_weight: float = 0.1,
                     iterations: int = 100, min_depth_m: float = 0.02,
                     min_points: int = MIN_POINTS, interchangeable=(),
                     matching_rounds: int = 3, static_weight: float = 0.0,
                     static_tolerance_m: float = 1e-3) -> JointCameraFit:
    """The one camera that sees every frame's keypoints: T_cam_reference (see the module doc).

    points_m (N, K, 3): each frame's keypoints in the reference frame (metres, from the FK of
    the measured joints); keypoints_2d_px (N, K, 2): the detected keypoints (pixels); weights
    (N, K): their confidence in 0..1 (points at or below ``min_weight``, or not finite, are
    left out); intrinsics (3, 3) or (N, 3, 3); T_start (4, 4): an optional start (e.g. the
    per-frame aggregate). ``robust_scale_px``: the Cauchy scale of the reprojection error.
    ``interchangeable``: (i, j) pairs of look-alike keypoints (two fingertips) whose detections
    are matched, frame by frame, to whichever of the pair's projections is nearer, then the
    camera refined again (up to ``matching_rounds`` times, until no match changes).
    ``static_weight``: the weight factor of keypoints that stay within ``static_tolerance_m``
    in the reference frame over all frames (the base's, eye-on-base): such a point is one 3D
    point seen N times, so the detector's bias on it does not average out over the frames as
    the moving points' does, yet it would weigh like N points (five rendered recordings: mean
    8.4 -> 5.0 mm, worst 23.6 -> 8.2 mm with 0, rotation 0.47 -> 0.53 deg). They keep their
    weight when too few moving points are left (an arm that did not move).
    Raises ValueError when fewer than ``min_points`` points are usable.
    """
    points_m = np.asarray(points_m, dtype=np.float64)
    detected, camera = _common_pixels(np.asarray(keypoints_2d_px, dtype=np.float64), intrinsics)
    detected_weights = np.asarray(weights, dtype=np.float64)
    usable = (detected_weights > min_weight) & np.isfinite(detected).all(-1) \
        & np.isfinite(points_m).all(-1)
    if usable.sum() < min_points:
        raise ValueError(f'the joint camera fit needs at least {min_points} keypoints with '
                         f'confidence above {min_weight}; {int(usable.sum())} of '
                         f'{usable.size} are')

    moving = np.nanmax(np.nanstd(points_m, axis=0), axis=-1) >= static_tolerance_m    # (K,)
    if static_weight != 1.0 and usable[:, moving].sum() >= min_points:
        detected_weights = np.where(moving, detected_weights, detected_weights * static_weight)
        usable &= detected_weights > min_weight

    def matched(order: np.ndarray):
        """(points, pixels, weights) of the usable points with the detections in ``order``."""
        pixels_all = np.take_along_axis(detected, order[..., None], 1)
        weights_all = np.take_along_axis(detected_weights, order, 1)
        use = (weights_all > min_weight) & np.isfinite(pixels_all).all(-1) \
            & np.isfinite(points_m).all(-1)
        return points_m[use], pixels_all[use], np.clip(weights_all[use], 0.0, 1.0)

    identity = np.broadcast_to(np.arange(points_m.shape[1]), points_m.shape[:2])
    as_detected = matched(identity)
    points, pixels, _ = as_detected
    starts = {}
    if T_start is not None and np.isfinite(T_start).all():
        starts['given'] = np.asarray(T_start, dtype=np.float64)
    try:
        ok, rvec, tvec = cv2.solvePnP(points, pixels, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if ok:
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
            starts['sqpnp'] = T
    except cv2.error:
        pass
    if not starts:
        raise ValueError('the joint camera fit found no start: SQPnP failed and none was given')
    best = None
    for name, T in starts.items():
        order = identity
        T, cost, done = _refine(camera, T, *as_detected, robust_scale_px, iterations,
                                min_depth_m)
        for _ in range(matching_rounds if interchangeable else 0):
            projected, _ = _project(camera, T[:3, :3], T[:3, 3], points_m, min_depth_m)
            new_order = interchangeable_order(detected, projected, detected_weights,
                                              interchangeable, robust_scale_px)
            if (new_order == order).all():
                break
            order = new_order
            T, cost, steps = _refine(camera, T, *matched(order), robust_scale_px, iterations,
                                     min_depth_m)
            done += steps
        if best is None or cost < best[2]:
            best = (name, T, cost, done, order)
    name, T, _, done, order = best
    points, pixels, point_weights = matched(order)
    residuals, _ = _residuals(camera, T[:3, :3], T[:3, 3], points, pixels, min_depth_m)
    error_px = np.linalg.norm(residuals, axis=-1)
    inlier = error_px <= 3.0 * robust_scale_px
    rms = float(np.sqrt((point_weights * error_px ** 2)[inlier].sum()
                        / max(point_weights[inlier].sum(), 1e-12)))
    return JointCameraFit(T=T, points_used=int(usable.sum()),
                          frames_used=int(usable.any(-1).sum()), rms_px=rms,
                          median_px=float(np.median(error_px)),
                          inlier_fraction=float(inlier.mean()), start=name, iterations=done)


def median_reprojection_error_px(T_cam_reference: np.ndarray, points_m: np.ndarray,
                                 keypoints_2d_px: np.ndarray, weights: np.ndarray,
                                 intrinsics: np.ndarray, min_weight: float = 0.1,
                                 min_depth_m: float = 0.02) -> float:
    """Median distance (pixels) between the detected keypoints and the points projected by
    one camera, over the confident ones as labelled (same arguments as
    :func:`fit_fixed_camera`, which also leaves out points fixed in the reference frame and
    matches look-alike pairs; this check keeps them all, as when it was measured)."""
    points_m = np.asarray(points_m, dtype=np.float64)
    pixels, camera = _common_pixels(np.asarray(keypoints_2d_px, dtype=np.float64), intrinsics)
    usable = (np.asarray(weights) > min_weight) & np.isfinite(pixels).all(-1) \
        & np.isfinite(points_m).all(-1)
    T = np.asarray(T_cam_reference, dtype=np.float64)
    residuals, _ = _residuals(camera, T[:3, :3], T[:3, 3], points_m[usable], pixels[usable],
                              min_depth_m)
    return float(np.median(np.linalg.norm(residuals, axis=-1))) if usable.any() else np.nan


def keypoints_in_reference(robot, joint_angles_rad: np.ndarray,
                           effector_link: str | None = None) -> np.ndarray:
    """FK keypoints (N, K, 3) metres of joint angles (N, n) radians in the frame the camera is
    fixed to: the base (``effector_link`` None, eye-on-base) or that link (eye-in-hand)."""
    joint_angles_rad = np.asarray(joint_angles_rad, dtype=np.float64)
    points = keypoint_kinematics(robot)(joint_angles_rad)[0]
    if effector_link is None:
        return points
    T_base_ee = robot_forward_kinematics(robot, effector_link)(joint_angles_rad)
    return points_in_hand_frame(points, T_base_ee)
