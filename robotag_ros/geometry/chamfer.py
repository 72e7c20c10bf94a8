"""Chamfer distances between point clouds, the point-cloud terms of the paper's eqs. (19)-(20)."""
from typing import Optional

import torch


def _masked_mean(values: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    if mask is None:
        return values.mean(-1)
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def chamfer_distance(points_a: torch.Tensor, points_b: torch.Tensor, bidirectional: bool = True,
                     mask_a: Optional[torch.Tensor] = None,
                     mask_b: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean squared nearest-neighbour distance (m^2) per batch item: (B, N, 3), (B, M, 3) -> (B,).

    Unidirectional (``bidirectional=False``) measures only a -> b: every point of ``a`` must lie
    near ``b``, not the reverse. That is the right term when ``a`` sees only part of the robot (the
    unprojected depth covers visible surfaces only) while ``b`` covers all of it. ``mask_a`` (B, N)
    and ``mask_b`` (B, M) mark the valid points; invalid ones neither count nor attract.
    """
    squared = torch.cdist(points_a, points_b).square()
    if mask_b is not None:
        # An invalid target point must never be the nearest one.
        squared = squared + (~mask_b.bool())[:, None, :].to(squared.dtype) * 1e6
    a_to_b = _masked_mean(squared.min(dim=2).values, mask_a)
    if not bidirectional:
        return a_to_b
    if mask_a is not None:
        squared = squared + (~mask_a.bool())[:, :, None].to(squared.dtype) * 1e6
    b_to_a = _masked_mean(squared.min(dim=1).values, mask_b)
    return a_to_b + b_to_a
