"""Decoding, shared by every backend: network tensors -> robot-prior states -> Estimate.

Kept outside the network graph (as Isaac ROS DOPE keeps its decoder outside TensorRT): forward
kinematics, projection, the pick of final outputs and the consistency score are the same code
whether the tensors came from PyTorch, ONNX Runtime or TensorRT.

It runs on every frame, so it computes only what the Estimate and its score need (one
forward-kinematics pass for both branches, the one point cloud the score compares, no gradients)
rather than every training state of :func:`robotag_ros.model.prior_states`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from robotag_ros.geometry import make_transform, project_points, resize_intrinsics
from robotag_ros.geometry.letterbox import Letterbox
from robotag_ros.inference.estimate import Estimate
from robotag_ros.model.prior_states import unproject_robot_points

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
    fit_residual_px: float = 5.0


def point_cloud_residual_m(points_unproj: torch.Tensor, points_fk: torch.Tensor,
                           valid: torch.Tensor) -> torch.Tensor:
    """Root of the unidirectional Chamfer distance pts_unproj³ -> pts_fk² (metres, (B,)).

    The same quantity as ``geometry.chamfer_distance(..., bidirectional=False, mask_a=valid)``
    (tested), computed with ``amin``, which skips the argmin that ``min`` also returns (a
    ~25x cheaper reduction on the CPU for 512 x 2048 distances). No valid point gives 0.
    """
    nearest_sq = torch.cdist(points_unproj, points_fk).amin(dim=-1).square()  # (B, P) m²
    weights = valid.to(nearest_sq.dtype)
    mean_sq = (nearest_sq * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)
    return mean_sq.clamp(min=0).sqrt()


def consistency_terms(states: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-frame residuals of the alignment edges of eqs. (14)-(17): (B,) each, SI units."""
    terms = {
        'joints_rad': (states['joint_angles_2d'] - states['joint_angles_3d']).abs().mean(-1),
        'keypoints_3d_m': (states['keypoints_3d_2d'] - states['keypoints_3d_3d'])
        .norm(dim=-1).mean(-1),
        'keypoints_3d_fk_m': (states['keypoints_3d_3d'] - states['keypoints_3d_fk_2d'])
        .norm(dim=-1).mean(-1),
        'reprojection_px': (states['keypoints_2d_proj_2d'] - states['keypoints_2d'])
        .norm(dim=-1).mean(-1),
        'point_cloud_m': point_cloud_residual_m(states['points_unproj_3d'],
                                                states['points_fk_2d'],
                                                states['points_unproj_valid']),
    }
    if 'fit_residual_px' in states:  # the loops closed at inference (inference/loop_closing.py)
        terms['fit_residual_px'] = states['fit_residual_px']
    return terms


def consistency_score(terms: dict[str, torch.Tensor],
                      scales: ConsistencyScales = ConsistencyScales()) -> torch.Tensor:
    """Map the residuals to one score in (0, 1] per frame (1 = perfect agreement)."""
    scale_of = {'joints_rad': scales.joints_rad, 'keypoints_3d_m': scales.keypoints_3d_m,
                'keypoints_3d_fk_m': scales.keypoints_3d_m,
                'reprojection_px': scales.reprojection_px,
                'point_cloud_m': scales.point_cloud_m,
                'fit_residual_px': scales.fit_residual_px}
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
                  image_hw: tuple[int, int], model_config, joint_source: str = '2d'
                  ) -> dict[str, torch.Tensor]:
    """Network tensors (any backend) + the robot prior -> the node states the Estimate needs.

    Adds to ``network``: ``T_cam_base``; ``keypoints_3d_fk_{2d,3d}`` and ``points_fk_2d``
    (camera frame, metres); ``keypoints_2d_proj_2d`` (network pixels); ``points_unproj_3d`` and
    its ``points_unproj_valid`` mask; and the reported ``joint_angles`` (radians),
    ``keypoints_3d`` (camera frame) and ``keypoints_2d`` projections of them
    (``keypoints_2d_final``, network pixels).
    """
    if joint_source not in JOINT_SOURCES:
        raise ValueError(f'joint_source must be one of {JOINT_SOURCES}, not {joint_source!r}')
    states = dict(network)
    batch = network['joint_angles_2d'].shape[0]
    T_cam_base = make_transform(network['rotation'], network['translation'])
    joint_angles = final_joint_angles(network, joint_source)
    # One FK pass for every joint vector needed: pytorch-kinematics' cost is mostly per call.
    joint_sets = [network['joint_angles_2d'], network['joint_angles_3d']]
    if joint_source == 'mean':
        joint_sets.append(joint_angles)
    keypoints_base, points_base = robot.keypoints_and_points(torch.cat(joint_sets))
    rotation_t = T_cam_base[:, :3, :3].transpose(1, 2)
    translation = T_cam_base[:, None, :3, 3]

    def to_camera(points: torch.Tensor) -> torch.Tensor:
        return points @ rotation_t + translation

    keypoints_fk = to_camera(keypoints_base.reshape(len(joint_sets), batch, -1, 3))
    states['T_cam_base'] = T_cam_base
    states['keypoints_3d_fk_2d'] = keypoints_fk[0]
    states['keypoints_3d_fk_3d'] = keypoints_fk[1]
    states['points_fk_2d'] = to_camera(points_base[:batch])
    states['keypoints_2d_proj_2d'] = project_points(network['keypoints_3d_2d'], intrinsics)
    depth_hw = tuple(network['depth_metric'].shape[-2:])
    states['points_unproj_3d'], states['points_unproj_valid'] = unproject_robot_points(
        network['depth_metric'], network['robot_mask'],
        resize_intrinsics(intrinsics, image_hw, depth_hw), model_config.num_unproj_points,
        model_config.mask_threshold)
    # The reported keypoints follow the reported joints and camera pose, so what the node
    # publishes is one self-consistent robot.
    states['joint_angles'] = joint_angles
    states['keypoints_3d'] = keypoints_fk[JOINT_SOURCES.index(joint_source)]
    states['keypoints_2d_final'] = project_points(states['keypoints_3d'], intrinsics)
    return states


def to_estimates(states: dict[str, torch.Tensor], robot, letterboxes: list[Letterbox],
                 with_points: bool = True,
                 scales: ConsistencyScales = ConsistencyScales(),
                 view_azimuth_bins: int = 0) -> list[Estimate]:
    """Batch of decoded states (network-input pixels) -> one Estimate per original image,
    scored with ``scales`` (``view_azimuth_bins``: the model's view head, 0 = none)."""
    terms = consistency_terms(states)
    scores = consistency_score(terms, scales)
    # One device->host copy per tensor for the whole batch, then numpy per frame.
    host = {name: states[name].detach().double().cpu().numpy() for name in (
        'joint_angles', 'T_cam_base', 'keypoints_2d_final', 'keypoints_3d', 'joint_angles_2d',
        'joint_angles_3d', 'keypoints_2d_peak', 'keypoints_2d_confidence')}
    terms_host = {k: v.double().cpu().numpy() for k, v in terms.items()}
    scores_host = scores.double().cpu().numpy()
    view = None
    if view_azimuth_bins and 'view_logits' in states:
        view = torch.softmax(states['view_logits'][:, :view_azimuth_bins].double(), -1) \
            .cpu().numpy()
    if with_points:
        points_all = states['points_unproj_3d'].double().cpu().numpy()
        valid_all = states['points_unproj_valid'].cpu().numpy()
    estimates = []
    for b, letterbox in enumerate(letterboxes):
        estimates.append(Estimate(
            joint_names=list(robot.joint_names),
            joint_angles_rad=host['joint_angles'][b],
            T_cam_base=host['T_cam_base'][b],
            keypoint_names=list(robot.keypoint_names),
            keypoints_2d_px=letterbox.to_source_px(host['keypoints_2d_final'][b]),
            keypoints_3d_m=host['keypoints_3d'][b],
            consistency=float(scores_host[b]),
            consistency_terms={k: float(v[b]) for k, v in terms_host.items()},
            points_3d_m=points_all[b][valid_all[b]] if with_points else None,
            branch_joint_angles_rad={'2d': host['joint_angles_2d'][b],
                                     '3d': host['joint_angles_3d'][b]},
            keypoints_2d_detected_px=letterbox.to_source_px(host['keypoints_2d_peak'][b]),
            keypoint_confidence=host['keypoints_2d_confidence'][b],
            view_azimuth_probs=None if view is None else view[b]))
    return estimates


def as_tensors(outputs: dict, device: torch.device | str = 'cpu') -> dict[str, torch.Tensor]:
    """numpy or torch outputs of a backend -> float32 tensors on ``device``."""
    return {k: (v if torch.is_tensor(v) else torch.from_numpy(np.asarray(v)))
            .to(device=device, dtype=torch.float32) for k, v in outputs.items()}
