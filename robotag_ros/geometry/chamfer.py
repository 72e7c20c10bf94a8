"""Chamfer distances between point clouds, the point-cloud terms of the paper's eqs. (19)-(20).

The nearest neighbours are searched without autograd (a k-d tree on the CPU, one batched matrix
product on a GPU), then the distances of the chosen pairs are recomputed with autograd: the same
value and gradient as autograd through ``min`` over the full distance matrix, whose backward
alone was two thirds of a training step.
"""
from typing import Optional

import numpy as np
import torch
from scipy.spatial import cKDTree

# Added to the squared distance of an invalid point so that it is never the nearest one.
INVALID_PENALTY = 1e6


def _masked_mean(values: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    if mask is None:
        return values.mean(-1)
    mask = mask.to(values.dtype)
    return (values * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)


def _nearest_index_kdtree(queries: torch.Tensor, targets: torch.Tensor,
                          valid: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, N) index of each query's nearest valid target; 4-5x faster than the matrix on a CPU."""
    queries_np = queries.detach().double().numpy()  # cKDTree works in float64 anyway
    targets_np = targets.detach().double().numpy()
    valid_np = None if valid is None else valid.numpy()
    index = np.empty(queries.shape[:2], np.int64)
    for item in range(queries.shape[0]):
        candidates = np.arange(targets.shape[1])
        if valid_np is not None and valid_np[item].any():  # none valid: all equally penalised
            candidates = candidates[valid_np[item]]
        _, nearest = cKDTree(targets_np[item, candidates]).query(queries_np[item], k=1)
        index[item] = candidates[nearest]
    return torch.from_numpy(index)


def _nearest_index_matrix(queries: torch.Tensor, targets: torch.Tensor,
                          penalty: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, N) index of the nearest target by |t|^2 - 2 q.t + penalty (|q|^2: same in a row)."""
    target_cost = targets.square().sum(-1)
    if penalty is not None:
        target_cost = target_cost + penalty
    scores = torch.baddbmm(target_cost[:, None, :], queries, targets.transpose(1, 2), alpha=-2.0)
    return scores.argmin(dim=2)


def _nearest_squared(queries: torch.Tensor, targets: torch.Tensor,
                     valid: Optional[torch.Tensor]) -> torch.Tensor:
    """Squared distance (+ penalty) from each query (B, N, 3) to its nearest valid target."""
    penalty = None if valid is None else (~valid).to(targets.dtype) * INVALID_PENALTY
    with torch.no_grad():
        if queries.device.type == 'cpu':
            index = _nearest_index_kdtree(queries, targets, valid)
        else:
            index = _nearest_index_matrix(queries.detach(), targets.detach(), penalty)
    nearest = torch.gather(targets, 1, index[..., None].expand(-1, -1, targets.shape[-1]))
    distance = (queries - nearest).square().sum(-1)
    if penalty is not None:
        distance = distance + torch.gather(penalty, 1, index)
    return distance


def chamfer_distance(points_a: torch.Tensor, points_b: torch.Tensor, bidirectional: bool = True,
                     mask_a: Optional[torch.Tensor] = None,
                     mask_b: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean squared nearest-neighbour distance (m^2) per batch item: (B, N, 3), (B, M, 3) -> (B,).

    Unidirectional (``bidirectional=False``) measures only a -> b: every point of ``a`` must lie
    near ``b``, not the reverse. That is the right term when ``a`` sees only part of the robot (the
    unprojected depth covers visible surfaces only) while ``b`` covers all of it. ``mask_a`` (B, N)
    and ``mask_b`` (B, M) mark the valid points; invalid ones neither count nor attract.
    """
    valid_a = None if mask_a is None else mask_a.bool()
    valid_b = None if mask_b is None else mask_b.bool()
    a_to_b = _masked_mean(_nearest_squared(points_a, points_b, valid_b), mask_a)
    if not bidirectional:
        return a_to_b
    return a_to_b + _masked_mean(_nearest_squared(points_b, points_a, valid_a), mask_b)
