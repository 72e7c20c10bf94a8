"""Robust aggregation of many noisy per-frame rigid transforms into one, with its uncertainty.

Frames are first filtered by the estimator's consistency score, then by robust statistics:
distances (translation, metres; rotation, geodesic radians) to a robust centre, rejected above
``median + k * 1.4826 * MAD``, repeated until the inlier set stops changing. Rotations are averaged
on SO(3) with the chordal L2 mean (Markley's quaternion eigenvector method, via
``scipy.spatial.transform.Rotation.mean``), never by averaging matrices or Euler angles.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

# Scales the median absolute deviation to a standard deviation for Gaussian data.
MAD_TO_SIGMA = 1.4826


@dataclass
class AggregateResult:
    """One transform aggregated from many frames, with how far the frames spread around it."""

    T: np.ndarray                            # (4, 4) the aggregated transform, metres
    inliers: np.ndarray                      # (N,) bool, frames used
    rejected_consistency: np.ndarray         # (N,) bool, below the consistency threshold
    rejected_outlier: np.ndarray             # (N,) bool, rejected by the robust statistics
    translation_std_mm: np.ndarray           # (3,) per-axis sample std of the inliers
    translation_spread_mm: float             # RMS distance of inlier translations to the mean
    rotation_spread_deg: float               # RMS geodesic angle of inlier rotations to the mean
    translation_sem_mm: float                # standard error of the mean translation (norm)
    rotation_sem_deg: float                  # standard error of the mean rotation
    iterations: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def frames_total(self) -> int:
        return int(self.inliers.size)

    @property
    def frames_used(self) -> int:
        return int(self.inliers.sum())

    def summary(self) -> dict:
        """Flat, JSON-ready numbers with units in the keys."""
        return {
            'frames_total': self.frames_total,
            'frames_used': self.frames_used,
            'frames_rejected_consistency': int(self.rejected_consistency.sum()),
            'frames_rejected_outlier': int(self.rejected_outlier.sum()),
            'translation_std_x_mm': float(self.translation_std_mm[0]),
            'translation_std_y_mm': float(self.translation_std_mm[1]),
            'translation_std_z_mm': float(self.translation_std_mm[2]),
            'translation_spread_mm': self.translation_spread_mm,
            'rotation_spread_deg': self.rotation_spread_deg,
            'translation_sem_mm': self.translation_sem_mm,
            'rotation_sem_deg': self.rotation_sem_deg,
        }


def geodesic_distance_rad(rotations: Rotation, centre: Rotation) -> np.ndarray:
    """Angle (radians, 0..pi) of the relative rotation between each rotation and the centre."""
    return (centre.inv() * rotations).magnitude()


def rotation_medoid(rotations: Rotation) -> Rotation:
    """The sample rotation with the smallest median geodesic distance to all others.

    A robust starting centre: unlike the mean it is not pulled by gross outliers, and as a member
    of the set it has no wrap-around problem near angles of pi.
    """
    quats = rotations.as_quat()
    # |<q_i, q_j>| = cos(theta_ij / 2); q and -q are the same rotation.
    cos_half = np.clip(np.abs(quats @ quats.T), 0.0, 1.0)
    distance = 2.0 * np.arccos(cos_half)
    return rotations[int(np.argmin(np.median(distance, axis=1)))]


def _robust_keep(distance: np.ndarray, k: float, floor: float) -> np.ndarray:
    """Keep distances <= ``median + k * sigma``, sigma from the MAD (never below ``floor``)."""
    median = np.median(distance)
    sigma = MAD_TO_SIGMA * np.median(np.abs(distance - median))
    return distance <= median + k * max(sigma, floor)


def aggregate_transforms(T_list: np.ndarray, consistency: np.ndarray | None = None,
                         min_consistency: float = 0.0, reject_outliers: bool = True,
                         mad_k: float = 3.0, max_iterations: int = 20,
                         translation_floor_m: float = 1e-4, rotation_floor_rad: float = 1e-4,
                         min_frames: int = 3) -> AggregateResult:
    """Aggregate (N, 4, 4) transforms of the same rigid relation into one.

    consistency: (N,) scores in 0..1 (None: all kept); frames below ``min_consistency`` are dropped
    before the statistics. ``mad_k``: rejection threshold in robust standard deviations;
    the floors stop noise-free inputs (MAD = 0) from rejecting frames that differ by rounding.
    Raises ValueError when fewer than ``min_frames`` frames survive, naming how many were dropped
    by which rule.
    """
    T_all = np.asarray(T_list, dtype=np.float64)
    if T_all.ndim != 3 or T_all.shape[1:] != (4, 4):
        raise ValueError(f'expected transforms of shape (N, 4, 4); got {T_all.shape}')
    num = T_all.shape[0]
    finite = np.isfinite(T_all).all(axis=(1, 2))
    scores = (np.ones(num) if consistency is None
              else np.asarray(consistency, dtype=np.float64).reshape(-1))
    if scores.shape[0] != num:
        raise ValueError(f'{scores.shape[0]} consistency scores for {num} transforms')
    rejected_consistency = ~(scores >= min_consistency) | ~finite
    candidates = ~rejected_consistency
    if candidates.sum() < min_frames:
        raise ValueError(
            f'only {int(candidates.sum())} of {num} frames pass the consistency threshold '
            f'{min_consistency} (and are finite); need at least {min_frames}')

    translations = T_all[:, :3, 3]
    rotations = Rotation.from_matrix(np.where(finite[:, None, None], T_all[:, :3, :3], np.eye(3)))
    cand_index = np.flatnonzero(candidates)

    # Robust centre: coordinate-wise median translation, medoid rotation.
    centre_t = np.median(translations[cand_index], axis=0)
    centre_R = rotation_medoid(rotations[cand_index])
    keep = candidates.copy()
    iterations = 0
    if reject_outliers:
        for iterations in range(1, max_iterations + 1):
            d_t = np.linalg.norm(translations[cand_index] - centre_t, axis=1)
            d_r = geodesic_distance_rad(rotations[cand_index], centre_R)
            keep_c = (_robust_keep(d_t, mad_k, translation_floor_m)
                      & _robust_keep(d_r, mad_k, rotation_floor_rad))
            new_keep = np.zeros(num, dtype=bool)
            new_keep[cand_index[keep_c]] = True
            if new_keep.sum() < min_frames:
                raise ValueError(f'outlier rejection left {int(new_keep.sum())} of {num} frames; '
                                 f'need at least {min_frames}')
            centre_t = translations[new_keep].mean(axis=0)
            centre_R = rotations[new_keep].mean()
            if iterations > 1 and np.array_equal(new_keep, keep):
                break
            keep = new_keep
    else:
        centre_t = translations[keep].mean(axis=0)
        centre_R = rotations[keep].mean()

    inlier_t = translations[keep]
    inlier_R = rotations[keep]
    n_used = int(keep.sum())
    mean_t = inlier_t.mean(axis=0)
    mean_R = inlier_R.mean()
    T = np.eye(4)
    T[:3, :3] = mean_R.as_matrix()
    T[:3, 3] = mean_t
    ddof = 1 if n_used > 1 else 0
    residual_t = np.linalg.norm(inlier_t - mean_t, axis=1)
    residual_r = geodesic_distance_rad(inlier_R, mean_R)
    spread_t = float(np.sqrt(np.mean(residual_t ** 2)))
    spread_r = float(np.degrees(np.sqrt(np.mean(residual_r ** 2))))
    return AggregateResult(
        T=T, inliers=keep, rejected_consistency=rejected_consistency,
        rejected_outlier=candidates & ~keep,
        translation_std_mm=1000.0 * inlier_t.std(axis=0, ddof=ddof),
        translation_spread_mm=1000.0 * spread_t, rotation_spread_deg=spread_r,
        translation_sem_mm=1000.0 * spread_t / np.sqrt(n_used),
        rotation_sem_deg=spread_r / np.sqrt(n_used), iterations=iterations)
