"""Where the camera looks from: its azimuth and elevation about the robot base, and their bins.

The view head classifies the camera's azimuth about the base's z axis (from the base's x axis,
counter-clockwise seen from above) into A sectors, the same azimuth about the arm (minus joint 1,
for robots whose first joint turns about the base's z axis: which side of the arm the camera
sees) into A sectors, and its elevation above the base's xy plane into E bins over
``ELEVATION_RANGE_RAD``; the logits are laid out [base | arm | elevation]. Training turns a
label into soft bin targets (a Gaussian over the bin centres' distance, circular for azimuths),
the fit reads the head's log-probabilities back at a candidate (:func:`view_log_likelihood`): a
mirrored arm puts the camera on the other side of the arm, a camera yaw traded for joint 1 on
another side of the base, where the head says it is unlikely.
"""
from __future__ import annotations

import math

import torch

ELEVATION_RANGE_RAD = (math.radians(-30.0), math.radians(90.0))
AZIMUTH_SIGMA_RAD = math.radians(15.0)
ELEVATION_SIGMA_RAD = math.radians(10.0)


def camera_azimuth_elevation(T_cam_base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 4, 4) -> the camera centre's azimuth in (-pi, pi] and elevation, radians, (...)."""
    rotation, translation = T_cam_base[..., :3, :3], T_cam_base[..., :3, 3]
    centre = -(rotation.transpose(-1, -2) @ translation[..., None])[..., 0]   # base frame
    horizontal = torch.linalg.vector_norm(centre[..., :2], dim=-1)
    return (torch.atan2(centre[..., 1], centre[..., 0]),
            torch.atan2(centre[..., 2], horizontal))


def camera_placement(T_cam_base) -> tuple[float, float]:
    """One 4x4 T_cam_base (array or tensor) -> a static camera's distance from the base origin
    (m) and its elevation above the base's xy plane (degrees)."""
    T = torch.as_tensor(T_cam_base, dtype=torch.float64)
    _, elevation = camera_azimuth_elevation(T)
    # A rotation keeps lengths: the centre's distance is the translation's.
    return float(torch.linalg.vector_norm(T[:3, 3])), math.degrees(float(elevation))


def azimuth_bin_centres(bins: int, like: torch.Tensor) -> torch.Tensor:
    return (torch.arange(bins, dtype=like.dtype, device=like.device) + 0.5) \
        * (2 * math.pi / bins) - math.pi


def elevation_bin_centres(bins: int, like: torch.Tensor) -> torch.Tensor:
    low, high = ELEVATION_RANGE_RAD
    return low + (torch.arange(bins, dtype=like.dtype, device=like.device) + 0.5) \
        * ((high - low) / bins)


def _wrap(angle: torch.Tensor) -> torch.Tensor:
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def _azimuth_targets(azimuth: torch.Tensor, bins: int) -> torch.Tensor:
    offset = _wrap(azimuth_bin_centres(bins, azimuth)[None] - azimuth[:, None])
    return torch.softmax(-0.5 * (offset / AZIMUTH_SIGMA_RAD) ** 2, -1)


def soft_view_targets(T_cam_base: torch.Tensor, azimuth_bins: int, elevation_bins: int,
                      first_joint: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Label poses (B, 4, 4) (and joint 1, (B,) radians, signed along the base's z axis) ->
    soft targets (B, A) about the base, (B, A) about the arm (None without joint 1) and (B, E),
    each summing to 1."""
    azimuth, elevation = camera_azimuth_elevation(T_cam_base.float())
    d_elevation = elevation_bin_centres(elevation_bins, elevation)[None] - elevation[:, None]
    arm = None if first_joint is None else _azimuth_targets(
        _wrap(azimuth - first_joint.float()), azimuth_bins)
    return (_azimuth_targets(azimuth, azimuth_bins), arm,
            torch.softmax(-0.5 * (d_elevation / ELEVATION_SIGMA_RAD) ** 2, -1))


def view_logit_count(azimuth_bins: int, elevation_bins: int) -> int:
    """How many logits the view head gives: [base | arm | elevation]."""
    return 2 * azimuth_bins + elevation_bins


def split_view_logits(logits: torch.Tensor, azimuth_bins: int
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 2A + E) -> log-probabilities (B, A) of the azimuth about the base, (B, A) about the
    arm and (B, E) of the elevation."""
    logits = logits.float()
    return (torch.log_softmax(logits[..., :azimuth_bins], -1),
            torch.log_softmax(logits[..., azimuth_bins:2 * azimuth_bins], -1),
            torch.log_softmax(logits[..., 2 * azimuth_bins:], -1))


def view_cross_entropy(logits: torch.Tensor, T_cam_base: torch.Tensor, azimuth_bins: int,
                       first_joint: torch.Tensor | None = None,
                       camera_varies: torch.Tensor | None = None) -> torch.Tensor:
    """Soft-target cross-entropy of the view logits against labels, summed over the base
    azimuth, the arm azimuth (where joint 1 is given) and the elevation, (B,).
    ``camera_varies`` (B,) bool: False for a frame of a set seen by one fixed camera, whose
    camera terms (base azimuth, elevation) would teach that one pose; its arm term stays, as
    joint 1 turns the arm under the camera."""
    log_base, log_arm, log_elevation = split_view_logits(logits, azimuth_bins)
    base, arm, elevation = soft_view_targets(T_cam_base, azimuth_bins, log_elevation.shape[-1],
                                             first_joint)
    loss = -(base * log_base).sum(-1) - (elevation * log_elevation).sum(-1)
    if camera_varies is not None:
        loss = loss * camera_varies.to(loss.dtype)
    return loss if arm is None else loss - (arm * log_arm).sum(-1)


def _azimuth_log_likelihood(log_azimuth: torch.Tensor, azimuth: torch.Tensor) -> torch.Tensor:
    """(B, A) log-probabilities read at azimuths (B, M), linear between bin centres."""
    bins = log_azimuth.shape[-1]
    position = (azimuth + math.pi) / (2 * math.pi) * bins - 0.5
    low = torch.floor(position)
    fraction = position - low
    low_index = torch.remainder(low.long(), bins)
    high_index = torch.remainder(low_index + 1, bins)
    return (1 - fraction) * log_azimuth.gather(1, low_index) \
        + fraction * log_azimuth.gather(1, high_index)


def view_log_likelihood(log_probs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                        T_cam_base: torch.Tensor, first_joint: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """Log-probability (B, ...) the head gives candidates: their bins' log-probabilities,
    interpolated linearly between bin centres (circularly in azimuth).

    log_probs: split_view_logits' three (B, ·); T_cam_base (B, ..., 4, 4), any number of
    candidates per frame; first_joint (B, ...) their joint 1 (signed along the base's z axis),
    or None to leave the arm azimuth out."""
    log_base, log_arm, log_elevation = log_probs
    azimuth, elevation = camera_azimuth_elevation(T_cam_base)
    lead = azimuth.shape[1:]
    flat = lambda t: t.reshape(t.shape[0], -1)  # noqa: E731
    log_a = _azimuth_log_likelihood(log_base, flat(azimuth))
    if first_joint is not None:
        log_a = log_a + _azimuth_log_likelihood(
            log_arm, _wrap(flat(azimuth) - flat(first_joint.to(azimuth))))
    elevation_bins = log_elevation.shape[-1]
    bottom, top = ELEVATION_RANGE_RAD
    position = ((flat(elevation) - bottom) / (top - bottom) * elevation_bins - 0.5) \
        .clamp(0, elevation_bins - 1)
    low = torch.floor(position).clamp(max=elevation_bins - 2) if elevation_bins > 1 \
        else torch.zeros_like(position)
    fraction = (position - low).clamp(0, 1)
    low_index = low.long()
    high_index = (low_index + 1).clamp(max=elevation_bins - 1)
    log_e = (1 - fraction) * log_elevation.gather(1, low_index) \
        + fraction * log_elevation.gather(1, high_index)
    return (log_a + log_e).reshape(log_base.shape[0], *lead)
