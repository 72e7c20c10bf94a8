"""Decoding, shared by every backend: network tensors -> robot-prior states -> Estimate.

Kept outside the network graph (as Isaac ROS DOPE keeps its decoder outside TensorRT): forward
kinematics, projection, the pick of final outputs and the consistency score are the same code
whether the tensors came from PyTorch, ONNX Runtime or TensorRT.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robotag_ros.geometry import chamfer_distance, make_transform, project_points
from robotag_ros.inference.estimate import Estimate
from robotag_ros.inference.preprocess import Letterbox

# The network outputs decoding needs, in the order the exported graph returns them.
INFERENCE_OUTPUT_NAMES = (
    'depth_regulator', 'depth_metric', 'robot_mask', 'joint_angles_2d', 'rotation', 'translation',
    'keypoints_2d', 'keypoints_3d_2d', 'joint_angles_3d', 'keypoints_3d_3d')

JOINT_SOURCES = ('2d', '3d', 'mean')


@dataclass(frozen=True)
class ConsistencyScales:
    """Residual sizes that count as "clearly inconsistent" for each alignment edge.

    The score is ``exp(-mean_i(residual_i / scale_i))``: 1 when the 2D and 3D branches agree,
    ~0.37 when every edge is off by its scale.
    """

    joints_rad: float = math.radians(10.0)
    keypoints_3d_m: float = 0.05
    reprojection_px: float = 10.0
    point_cloud_m: float = 0.03


def consistency_terms(states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-frame residuals of the alignment edges of eqs. (14)-(17): (B,) each, SI units."""
    valid = states['points_unproj_valid']
    return {
        'joints_rad': (states['joint_angles_2d'] - states['joint_angles_3d']).abs().mean(-1),
        'keypoints_3d_m': (states['keypoints_3d_2d'] - states['keypoints_3d_3d'])
        .norm(dim=-1).mean(-1),
        'keypoints_3d_fk_m': (states['keypoints_3d_3d'] - states['keypoints_3d_fk_2d'])
        .norm(dim=-1).mean(-1),
        'reprojection_px': (states['keypoints_2d_proj_2d'] - states['keypoints_2d'])
        .norm(dim=-1).mean(-1),
        # Root of the unidirectional Chamfer term: a distance, comparable to its scale.
        'point_cloud_m': chamfer_distance(states['points_unproj_3d'], states['points_fk_2d'],
                                          bidirectional=False, mask_a=valid).clamp(min=0).sqrt(),
    }


def consistency_score(terms: dict[str, torch.Tensor],
                      scales: ConsistencyScales = ConsistencyScales()) -> torch.Tensor:
    """Map the residuals to one score in (0, 1] per frame (1 = perfect agreement)."""
    scale_of = {'joints_rad': scales.joints_rad, 'keypoints_3d_m': scales.keypoints_3d_m,
                'keypoints_3d_fk_m': scales.keypoints_3d_m,
                'reprojection_px': scales.reprojection_px,
                'point_cloud_m': scales.point_cloud_m}
    normalised = torch.stack([terms[k] / scale_of[k] for k in terms], dim=-1)
    return torch.exp(-normalised.mean(-1))


def final_joint_angles(states: dict[str, torch.Tensor], joint_source: str) -> torch.Tensor:
    """The joint angles the estimator reports: the 2D branch's, the 3D branch's, or their mean."""
    if joint_source == '2d':
        return states['joint_angles_2d']
    if joint_source == '3d':
        return states['joint_angles_3d']
    if joint_source == 'mean':
        return 0.5 * (states['joint_angles_2d'] + states['joint_angles_3d'])
    raise ValueError(f'joint_source must be one of {JOINT_SOURCES}, not {joint_source!r}')


def decode_states(network: dict[str, torch.Tensor], robot, intrinsics: torch.Tensor,
                  image_hw: tuple[int, int], model_config) -> dict[str, torch.Tensor]:
    """Network tensors (any backend) + the robot prior -> every node state the Estimate needs."""
    from robotag_ros.model import prior_states
    states = dict(network)
    states.update(prior_states(network, robot, intrinsics, image_hw,
                               model_config.num_unproj_points, model_config.mask_threshold))
    return states


def to_estimates(states: dict[str, torch.Tensor], intrinsics: torch.Tensor, robot,
                 letterboxes: list[Letterbox], joint_source: str,
                 with_points: bool = True) -> list[Estimate]:
    """Batch of node states (network-input pixels) -> one Estimate per original image."""
    joint_angles = final_joint_angles(states, joint_source)
    terms = consistency_terms(states)
    scores = consistency_score(terms)
    # The reported 3D keypoints and 2D keypoints follow the reported joints and camera pose, so
    # what the node publishes is one self-consistent robot.
    T_cam_base = make_transform(states['rotation'], states['translation'])
    keypoints_base = robot.keypoints(joint_angles)
    keypoints_cam = keypoints_base @ T_cam_base[:, :3, :3].transpose(1, 2) \
        + T_cam_base[:, None, :3, 3]
    keypoints_px = project_points(keypoints_cam, intrinsics)
    estimates = []
    for b, letterbox in enumerate(letterboxes):
        points = None
        if with_points:
            valid = states['points_unproj_valid'][b]
            points = states['points_unproj_3d'][b][valid].double().cpu().numpy()
        estimates.append(Estimate(
            joint_names=list(robot.joint_names),
            joint_angles_rad=joint_angles[b].double().cpu().numpy(),
            T_cam_base=T_cam_base[b].double().cpu().numpy(),
            keypoint_names=list(robot.keypoint_names),
            keypoints_2d_px=letterbox.to_source_px(keypoints_px[b].double().cpu().numpy()),
            keypoints_3d_m=keypoints_cam[b].double().cpu().numpy(),
            consistency=float(scores[b]),
            consistency_terms={k: float(v[b]) for k, v in terms.items()},
            points_3d_m=points,
            branch_joint_angles_rad={
                branch: states[f'joint_angles_{branch}'][b].double().cpu().numpy()
                for branch in ('2d', '3d')}))
    return estimates


def as_tensors(outputs: dict, device: torch.device | str = 'cpu') -> dict[str, torch.Tensor]:
    """numpy or torch outputs of a backend -> float32 tensors on ``device``."""
    return {k: (v if torch.is_tensor(v) else torch.from_numpy(np.asarray(v)))
            .to(device=device, dtype=torch.float32) for k, v in outputs.items()}
