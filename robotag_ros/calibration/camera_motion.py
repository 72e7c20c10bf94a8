"""Did the camera move during the recording? A jump or a trend in the per-frame calibrated poses.

A calibration averages per-frame transforms that should all be one rigid relation. When the camera
was bumped (two clusters, one before and one after a moment) or slides (a trend over time), the
average is a pose the camera never had. Each frame's pose becomes six numbers (translation, mm;
rotation vector relative to the medoid, degrees) and three models are fitted to them over time,
all by least absolute deviations so that gross outliers do not decide: a constant, a step at the
best split (medians each side), and a line (Theil-Sen slopes). The camera moved when the better of
step and line changes the pose by more than a threshold (mm or degrees) that the frames' own
scatter cannot explain (``significance`` standard errors, the scatter being the MAD of that model's
residuals, which includes the estimator's pose-dependent errors). Those errors follow the arm's
smooth motion, so neighbouring frames err alike and a stretch of them can look like a step; the
standard errors count the frames as the fewer independent ones they are worth
(:func:`_serial_correlation_factor`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from robotag_ros.calibration.aggregate import MAD_TO_SIGMA, rotation_medoid
from robotag_ros.stamps import NS_PER_S

JUMP, TREND, NONE = 'jump', 'trend', 'none'
_MAX_SPLITS = 200          # candidate split points tried (evenly spaced) on long recordings
_MAX_TREND_POINTS = 400    # Theil-Sen is quadratic in the points: subsample beyond this
_SCALE_FLOOR = (1e-3, 1e-4)   # mm, deg: noise-free poses must not divide by zero
# 1 - rho is floored: errors that never change from frame to frame say nothing about motion
_MIN_ONE_MINUS_RHO = 0.01


@dataclass
class CameraMotion:
    """What the per-frame poses say about the camera over the recording.

    translation_mm / rotation_deg: the step across the jump, or the trend's change from the first
    to the last frame, of the calibrated transform (``T_cam_base``: the base's position and
    orientation seen from the camera; eye-in-hand the hand's), not of the camera's position in
    the room: a camera turned by 1 degree sees a base 1.7 m away move by 30 mm;
    frame_index / stamp_ns: the first frame after the jump (jumps only);
    significance: the change in standard errors of the frames' scatter (frames whose errors go
    together counted as the fewer independent ones they are worth).
    """

    moved: bool
    kind: str
    translation_mm: float
    rotation_deg: float
    significance: float
    frame_index: int = -1
    stamp_ns: int = -1
    frames: int = 0

    def summary(self) -> dict:
        """Flat, JSON-ready fields (units in the keys)."""
        return {'camera_moved': self.moved, 'camera_motion_kind': self.kind,
                'camera_motion_translation_mm': self.translation_mm,
                'camera_motion_rotation_deg': self.rotation_deg,
                'camera_motion_significance': self.significance,
                'camera_motion_at_stamp_ns': self.stamp_ns}

    def warning(self) -> str:
        """One line for a user (empty when the camera held still)."""
        if not self.moved:
            return ''
        size = (f'{self.translation_mm:.1f} mm / {self.rotation_deg:.2f} deg (the robot as seen '
                'from the camera)')
        if self.kind == JUMP:
            return (f'the camera moved during the recording: the per-frame calibrations jump by '
                    f'{size} at frame {self.frame_index} of {self.frames} (stamp '
                    f'{self.stamp_ns / NS_PER_S:.3f} s); calibrated from the frames after the '
                    'jump only')
        return (f'the camera pose drifts during the recording: the per-frame calibrations move '
                f'by {size} from the first frame to the last; the calibration averages a moving '
                'camera: record again with the camera fixed')


def pose_features(T: np.ndarray) -> np.ndarray:
    """(N, 6): translation (mm) and rotation vector (deg) relative to the medoid rotation."""
    T = np.asarray(T, dtype=np.float64)
    rotations = Rotation.from_matrix(T[:, :3, :3])
    relative = rotation_medoid(rotations).inv() * rotations
    return np.concatenate([1000.0 * T[:, :3, 3], np.degrees(relative.as_rotvec())], axis=1)


def _l1_cost(residuals: np.ndarray, scale: np.ndarray) -> float:
    return float(np.abs(residuals / scale).sum())


def _robust_scale(residuals: np.ndarray) -> np.ndarray:
    """Per-column sigma from the MAD of residuals, floored (translation, then rotation)."""
    sigma = MAD_TO_SIGMA * np.median(np.abs(residuals - np.median(residuals, axis=0)), axis=0)
    floor = np.repeat(_SCALE_FLOOR, 3)
    return np.maximum(sigma, floor)


def _best_step(features: np.ndarray, min_segment: int):
    """(split index, residuals, step (6,)) minimising the L1 cost of a step at the split."""
    count = len(features)
    scale = _robust_scale(features)
    splits = np.arange(min_segment, count - min_segment + 1)
    if len(splits) > _MAX_SPLITS:
        splits = np.unique(np.linspace(min_segment, count - min_segment, _MAX_SPLITS).astype(int))
    best = None
    for split in splits:
        before = np.median(features[:split], axis=0)
        after = np.median(features[split:], axis=0)
        residuals = features - np.where(np.arange(count)[:, None] < split, before, after)
        cost = _l1_cost(residuals, scale)
        if best is None or cost < best[0]:
            best = (cost, int(split), residuals, after - before)
    return best[1], best[2], best[3]


def _trend(features: np.ndarray, times_s: np.ndarray):
    """(residuals, change (6,) from the first frame to the last) of Theil-Sen lines."""
    from scipy.stats import theilslopes

    pick = np.unique(np.linspace(0, len(features) - 1,
                                 min(len(features), _MAX_TREND_POINTS)).astype(int))
    residuals, change = np.empty_like(features), np.empty(features.shape[1])
    for column in range(features.shape[1]):
        slope, intercept, _, _ = theilslopes(features[pick, column], times_s[pick])
        residuals[:, column] = features[:, column] - (intercept + slope * times_s)
        change[column] = slope * (times_s[-1] - times_s[0])
    return residuals, change


def _serial_correlation_factor(residuals: np.ndarray) -> np.ndarray:
    """(6,) factor >= 1 by which serially correlated residuals widen a standard error.

    A frame's error depends on the arm's pose, which moves smoothly, so neighbouring frames err
    alike: under a lag-one correlation rho (AR(1)), N frames weigh as N (1 - rho) / (1 + rho)
    independent ones. rho comes robustly from the scatter of frame-to-frame differences,
    var(difference) = 2 (1 - rho) var(residual), which a single jump or outlier barely moves.
    """
    ratio = _robust_scale(np.diff(residuals, axis=0)) / _robust_scale(residuals)
    one_minus_rho = np.clip(ratio ** 2 / 2.0, _MIN_ONE_MINUS_RHO, 1.0)
    return np.sqrt((2.0 - one_minus_rho) / one_minus_rho)


def _size(change: np.ndarray) -> tuple[float, float]:
    return float(np.linalg.norm(change[:3])), float(np.linalg.norm(change[3:]))


def detect_camera_motion(stamps_ns: np.ndarray, T: np.ndarray, threshold_mm: float = 20.0,
                         threshold_deg: float = 2.0, significance: float = 5.0,
                         min_segment: int = 10, min_segment_fraction: float = 0.1
                         ) -> CameraMotion:
    """Look for a jump or a trend in per-frame transforms (N, 4, 4) of one rigid relation.

    ``stamps_ns`` (N,) orders the frames. Moved when the change exceeds ``threshold_mm`` or
    ``threshold_deg`` and ``significance`` standard errors. A jump leaves at least
    ``min_segment`` frames and ``min_segment_fraction`` of them on each side (a few frames at an
    end could be outliers by chance); fewer than twice that: never moved (too few to tell).
    """
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    order = np.argsort(stamps_ns, kind='stable')
    stamps_ns, T = stamps_ns[order], np.asarray(T, dtype=np.float64)[order]
    count = len(stamps_ns)
    min_segment = max(int(min_segment), int(np.ceil(min_segment_fraction * count)))
    if count < 2 * min_segment:
        return CameraMotion(False, NONE, 0.0, 0.0, 0.0, frames=count)
    features = pose_features(T)
    constant = features - np.median(features, axis=0)
    split, step_residuals, step = _best_step(features, min_segment)
    times_s = (stamps_ns - stamps_ns[0]) / NS_PER_S
    trend_residuals, trend_change = _trend(features, times_s)
    scale = _robust_scale(constant)
    is_jump = _l1_cost(step_residuals, scale) <= _l1_cost(trend_residuals, scale)
    if is_jump:
        change, residuals = step, step_residuals
        # the standard error of a difference of two segment means
        standard_error = np.sqrt(1.0 / split + 1.0 / (count - split))
    else:
        change, residuals = trend_change, trend_residuals
        # the standard error of a least-squares line's change over evenly spread frames
        standard_error = np.sqrt(12.0 / count)
    sigma = _robust_scale(residuals) * _serial_correlation_factor(residuals)
    z = float(np.max(np.abs(change) / (sigma * standard_error)))
    translation_mm, rotation_deg = _size(change)
    moved = (translation_mm > threshold_mm or rotation_deg > threshold_deg) and z > significance
    if not moved:
        return CameraMotion(False, NONE, translation_mm, rotation_deg, z, frames=count)
    if is_jump:
        return CameraMotion(True, JUMP, translation_mm, rotation_deg, z,
                            frame_index=int(order[split]), stamp_ns=int(stamps_ns[split]),
                            frames=count)
    return CameraMotion(True, TREND, translation_mm, rotation_deg, z, frames=count)
