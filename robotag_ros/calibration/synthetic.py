"""Simulated per-frame transform estimates around a known truth, for calibration tests/benchmarks.

The noise model: inliers get Gaussian translation noise (metres, per axis) and a rotation by a
Gaussian rotation vector (radians, per component); a fraction of frames are gross outliers with a
uniformly random rotation and a translation offset of uniform direction and length in a range.
Consistency scores are drawn uniformly from separate ranges for inliers and outliers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass
class NoiseModel:
    """How simulated estimates scatter around the truth (metres, degrees, scores in 0..1)."""

    translation_sigma_m: float = 0.005
    rotation_sigma_deg: float = 0.5
    outlier_fraction: float = 0.2
    outlier_translation_range_m: tuple[float, float] = (0.05, 0.5)
    inlier_consistency_range: tuple[float, float] = (0.6, 1.0)
    outlier_consistency_range: tuple[float, float] = (0.3, 1.0)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SimulatedEstimates:
    T: np.ndarray             # (N, 4, 4) noisy estimates
    is_outlier: np.ndarray    # (N,) bool
    consistency: np.ndarray   # (N,) scores


def random_transform(rng: np.random.Generator, translation_scale_m: float = 1.0) -> np.ndarray:
    """A uniformly random rotation with a uniform translation in [-scale, scale]^3 metres."""
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=rng).as_matrix()
    T[:3, 3] = rng.uniform(-translation_scale_m, translation_scale_m, 3)
    return T


def simulate_estimates(T_true: np.ndarray, num_frames: int, noise: NoiseModel,
                       rng: np.random.Generator) -> SimulatedEstimates:
    """``num_frames`` noisy copies of ``T_true`` (4, 4) under ``noise`` (see the module doc)."""
    T_true = np.asarray(T_true, dtype=np.float64)
    rotation_noise = Rotation.from_rotvec(
        rng.normal(0.0, np.radians(noise.rotation_sigma_deg), (num_frames, 3)))
    rotations = rotation_noise * Rotation.from_matrix(T_true[:3, :3])
    translations = T_true[:3, 3] + rng.normal(0.0, noise.translation_sigma_m, (num_frames, 3))

    num_outliers = int(round(noise.outlier_fraction * num_frames))
    is_outlier = np.zeros(num_frames, dtype=bool)
    is_outlier[rng.choice(num_frames, num_outliers, replace=False)] = True
    if num_outliers:
        direction = rng.normal(size=(num_outliers, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        length = rng.uniform(*noise.outlier_translation_range_m, (num_outliers, 1))
        translations[is_outlier] = T_true[:3, 3] + direction * length
        quats = rotations.as_quat()
        quats[is_outlier] = Rotation.random(num_outliers, random_state=rng).as_quat()
        rotations = Rotation.from_quat(quats)

    T = np.tile(np.eye(4), (num_frames, 1, 1))
    T[:, :3, :3] = rotations.as_matrix()
    T[:, :3, 3] = translations
    consistency = np.where(is_outlier,
                           rng.uniform(*noise.outlier_consistency_range, num_frames),
                           rng.uniform(*noise.inlier_consistency_range, num_frames))
    return SimulatedEstimates(T=T, is_outlier=is_outlier, consistency=consistency)


def transform_error(T_estimate: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """(translation error in mm, geodesic rotation error in degrees) between two transforms."""
    translation_mm = 1000.0 * float(np.linalg.norm(T_estimate[:3, 3] - T_true[:3, 3]))
    relative = Rotation.from_matrix(T_estimate[:3, :3].T @ T_true[:3, :3])
    return translation_mm, float(np.degrees(relative.magnitude()))


def base_yaw_error_deg(T_cam_base_estimate: np.ndarray, T_cam_base_true: np.ndarray) -> float:
    """|twist| (degrees) about the base's z axis of a camera<->base rotation error.

    Joint 1 of an arm turns about that axis, so an image-only estimate can trade the camera's
    yaw for joint 1; only the base's own keypoints tell them apart. The rest of the error
    (the swing) tilts the camera.
    """
    error_in_base = Rotation.from_matrix(T_cam_base_true[:3, :3].T @ T_cam_base_estimate[:3, :3])
    _, _, z, w = error_in_base.as_quat()
    # q and -q are one rotation: with w >= 0 the twist angle lies in [0, 180] degrees.
    return float(np.degrees(2.0 * np.arctan2(abs(z), abs(w))))
