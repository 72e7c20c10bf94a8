"""Homogeneous rigid transforms (4x4), named ``T_target_source``, lengths in metres."""
import torch


def make_transform(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Build (..., 4, 4) transforms from rotations (..., 3, 3) and translations (..., 3)."""
    batch_shape = rotation.shape[:-2]
    transform = torch.zeros(*batch_shape, 4, 4, dtype=rotation.dtype, device=rotation.device)
    transform[..., :3, :3] = rotation
    transform[..., :3, 3] = translation
    transform[..., 3, 3] = 1.0
    return transform


def invert_transform(transform: torch.Tensor) -> torch.Tensor:
    """Invert rigid transforms without a general matrix inverse: (..., 4, 4) -> (..., 4, 4)."""
    rotation_t = transform[..., :3, :3].transpose(-1, -2)
    translation = -(rotation_t @ transform[..., :3, 3:4]).squeeze(-1)
    return make_transform(rotation_t, translation)


def transform_points(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply ``T_target_source`` (B, 4, 4) to source-frame points (B, N, 3) -> (B, N, 3)."""
    return points @ transform[..., :3, :3].transpose(-1, -2) + transform[..., None, :3, 3]
