"""Robot-prior and transformation states from the network outputs (eqs. 11-13), a pure function.

Kept outside the network forward so the exported network holds only learned layers; inference
and training call this same function on the network's tensors.
"""
from __future__ import annotations

import torch

from robotag_ros.geometry import (make_transform, project_points, resize_intrinsics,
                                  transform_points, unproject_depth)
from robotag_ros.robot import RobotModel


def unproject_robot_points(depth_metric: torch.Tensor, mask_logits: torch.Tensor,
                           intrinsics_depth: torch.Tensor, num_points: int,
                           mask_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """pts_unproj³: D' unprojected on the ``num_points`` most robot-like pixels.

    (B, 1, h, w) metres, logits, K of the depth grid -> points (B, P, 3), valid (B, P) bool. A
    top-k keeps the shape static; the selection is an index, so no gradient reaches the mask
    through it (the mask learns from its own supervision).
    """
    batch = depth_metric.shape[0]
    xyz = unproject_depth(depth_metric[:, 0], intrinsics_depth).reshape(batch, -1, 3)
    prob = torch.sigmoid(mask_logits).reshape(batch, -1)
    count = min(num_points, prob.shape[1])
    top_prob, index = torch.topk(prob, count, dim=1)
    points = torch.gather(xyz, 1, index[..., None].expand(-1, -1, 3))
    return points, top_prob > mask_threshold


def prior_states(network: dict[str, torch.Tensor], robot: RobotModel, intrinsics: torch.Tensor,
                 image_hw: tuple[int, int], num_points: int,
                 mask_threshold: float) -> dict[str, torch.Tensor]:
    """The non-learned nodes: FK keypoints/points in both branches, projections, pts_unproj³."""
    T_cam_base = make_transform(network['rotation'], network['translation'])
    states = {}
    for branch in ('2d', '3d'):
        keypoints_base, points_base = robot.keypoints_and_points(network[f'joint_angles_{branch}'])
        states[f'keypoints_3d_fk_{branch}'] = transform_points(T_cam_base, keypoints_base)
        states[f'points_fk_{branch}'] = transform_points(T_cam_base, points_base)
        states[f'keypoints_2d_proj_{branch}'] = project_points(
            network[f'keypoints_3d_{branch}'], intrinsics)
    depth_hw = tuple(network['depth_metric'].shape[-2:])
    states['points_unproj_3d'], states['points_unproj_valid'] = unproject_robot_points(
        network['depth_metric'], network['robot_mask'],
        resize_intrinsics(intrinsics, image_hw, depth_hw), num_points, mask_threshold)
    return states
