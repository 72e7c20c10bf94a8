"""RobotModel: the robot prior of the TAG, batched and differentiable in PyTorch.

Joint angles -> link poses (forward kinematics, pytorch-kinematics on the URDF) -> 3D keypoints and
a robot point cloud (points sampled once on the visual meshes and carried by the link poses), all
in the robot base frame. Gradients flow from every output back to the joint angles.
"""
from __future__ import annotations

import contextlib
import os
from typing import Optional

import numpy as np
import pytorch_kinematics as pk
import torch
from torch import nn

from robotag_ros.robot.description import RobotDescription, load_description
from robotag_ros.robot.meshes import LinkMesh, load_link_meshes, sample_link_points


class RobotModel(nn.Module):
    """Forward kinematics, keypoints and mesh points of one robot; lengths in metres."""

    def __init__(self, description: RobotDescription):
        super().__init__()
        self.description = description
        self.name = description.name
        self.joint_names = description.joint_names
        self.keypoint_names = description.keypoint_names
        self.keypoint_links = [k.link for k in description.keypoints]
        self.base_frame = description.base_frame
        self._chain = _build_chain(description)
        self._chain_key = (torch.float32, torch.device('cpu'))

        # Map the estimated joints (and the fixed ones) into pytorch-kinematics' full joint vector.
        chain_joints = self._chain.get_joint_parameter_names()
        missing = [j for j in self.joint_names if j not in chain_joints]
        if missing:  # a joint that is movable in the URDF but outside the kinematic tree
            raise ValueError(f'joints {missing} are not on the kinematic chain of {self.name}')
        self.register_buffer('_estimated_index', torch.tensor(
            [chain_joints.index(j) for j in self.joint_names]), persistent=False)
        defaults = torch.zeros(len(chain_joints))
        for name, value in description.fixed_joint_positions.items():
            if name in chain_joints:
                defaults[chain_joints.index(name)] = value
        self.register_buffer('_full_defaults', defaults, persistent=False)
        self.register_buffer('joint_limits', torch.tensor(
            [[j.lower, j.upper] for j in description.joints], dtype=torch.float32),
            persistent=False)

        self.first_joint_turns_base = _first_joint_turns_base(description)
        # Keypoints on links other than the base: the ones a support surface must stay below.
        self.keypoints_off_base = np.array([k.link != self.base_frame
                                            for k in description.keypoints])
        self.visual_meshes: list[LinkMesh] = load_link_meshes(description)
        points, link_index = sample_link_points(
            self.visual_meshes, description.mesh_points_total, description.mesh_points_seed)
        self.mesh_links = [lm.link for lm in self.visual_meshes]
        self.register_buffer('_points_local', torch.from_numpy(points), persistent=False)
        self.register_buffer('_points_link_index', torch.from_numpy(link_index), persistent=False)
        self.register_buffer('_keypoint_offsets', torch.tensor(
            [k.offset_m for k in description.keypoints], dtype=torch.float32), persistent=False)

        # Links whose poses the keypoints and point cloud need, in one fixed order.
        self._pose_links = list(dict.fromkeys(self.keypoint_links + self.mesh_links))
        self.register_buffer('_keypoint_pose_index', torch.tensor(
            [self._pose_links.index(link) for link in self.keypoint_links]), persistent=False)
        self.register_buffer('_mesh_pose_index', torch.tensor(
            [self._pose_links.index(link) for link in self.mesh_links]), persistent=False)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def num_points(self) -> int:
        return int(self._points_local.shape[0])

    def _chain_for(self, reference: torch.Tensor) -> pk.Chain:
        key = (reference.dtype, reference.device)
        if key != self._chain_key:  # the chain is no nn.Module, so it moves lazily with its input
            self._chain = self._chain.to(dtype=reference.dtype, device=reference.device)
            self._chain_key = key
        return self._chain

    def full_joint_vector(self, joint_angles: torch.Tensor) -> torch.Tensor:
        """(B, n) estimated joints -> (B, n_chain) with the fixed joints at their set values."""
        full = self._full_defaults.to(joint_angles.dtype).expand(joint_angles.shape[0], -1).clone()
        full[:, self._estimated_index] = joint_angles
        return full

    def link_poses(self, joint_angles: torch.Tensor,
                   links: Optional[list[str]] = None) -> dict[str, torch.Tensor]:
        """Forward kinematics: (B, n) radians -> {link: T_base_link (B, 4, 4)}, metres."""
        chain = self._chain_for(joint_angles)
        frames = chain.forward_kinematics(self.full_joint_vector(joint_angles))
        T_root_base = frames[self.base_frame].get_matrix()
        T_base_root = torch.linalg.inv(T_root_base) if self._base_is_not_root else None
        names = links if links is not None else list(frames)
        poses = {}
        for name in names:
            T_root_link = frames[name].get_matrix()
            poses[name] = T_root_link if T_base_root is None else T_base_root @ T_root_link
        return poses

    @property
    def _base_is_not_root(self) -> bool:
        return self.base_frame != self._chain._root.name

    def _stacked_poses(self, joint_angles: torch.Tensor) -> torch.Tensor:
        poses = self.link_poses(joint_angles, self._pose_links)
        return torch.stack([poses[link] for link in self._pose_links], dim=1)  # (B, L, 4, 4)

    def keypoints(self, joint_angles: torch.Tensor) -> torch.Tensor:
        """3D keypoints in the base frame: (B, n) -> (B, K, 3), metres."""
        return self.keypoints_and_points(joint_angles)[0]

    def point_cloud(self, joint_angles: torch.Tensor) -> torch.Tensor:
        """Mesh points in the base frame: (B, n) -> (B, N, 3), metres."""
        return self.keypoints_and_points(joint_angles)[1]

    def keypoints_and_points(self, joint_angles: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both robot-prior outputs from one forward-kinematics pass (the model needs both)."""
        stacked = self._stacked_poses(joint_angles)
        keypoint_poses = stacked[:, self._keypoint_pose_index]              # (B, K, 4, 4)
        offsets = self._keypoint_offsets.to(stacked.dtype)
        keypoints = (keypoint_poses[..., :3, :3] @ offsets[None, :, :, None]).squeeze(-1) \
            + keypoint_poses[..., :3, 3]
        point_poses = stacked[:, self._mesh_pose_index][:, self._points_link_index]  # (B, N, 4, 4)
        local = self._points_local.to(stacked.dtype)
        points = (point_poses[..., :3, :3] @ local[None, :, :, None]).squeeze(-1) \
            + point_poses[..., :3, 3]
        return keypoints, points

    def sample_joint_angles(self, batch: int,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Joint angles drawn uniformly within the joint limits: (B, n) radians."""
        unit = torch.rand(batch, self.num_joints, generator=generator)
        lower, upper = self.joint_limits[:, 0].cpu(), self.joint_limits[:, 1].cpu()
        return (lower + unit * (upper - lower)).to(self.joint_limits.device)

    def clamp_to_limits(self, joint_angles: torch.Tensor) -> torch.Tensor:
        """Clamp joint angles (B, n) into the joint limits (the URDF's or the YAML's)."""
        return torch.maximum(torch.minimum(joint_angles, self.joint_limits[:, 1]),
                             self.joint_limits[:, 0])


def _first_joint_turns_base(description: RobotDescription) -> float | None:
    """+1 or -1 when the first estimated joint is a revolute joint on the base link that turns
    about the base's +z or -z axis through the base origin (as an arm's first joint does), else
    None: then camera yaw and joint 1 are not interchangeable, and no arm azimuth exists."""
    joint = next((j for j in description.urdf.robot.joints
                  if j.name == description.joint_names[0]), None)
    if joint is None or joint.parent != description.base_frame \
            or joint.type not in ('revolute', 'continuous'):
        return None
    origin = np.eye(4) if joint.origin is None else np.asarray(joint.origin, dtype=float)
    axis = origin[:3, :3] @ np.asarray(joint.axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    if abs(abs(axis[2]) - 1.0) > 1e-6 or np.abs(origin[:2, 3]).max() > 1e-6:
        return None
    return float(np.sign(axis[2]))


def _build_chain(description: RobotDescription) -> pk.Chain:
    urdf_xml = description.urdf_path.read_bytes()
    # pytorch-kinematics prints "Unknown tag" for harmless URDF extras; keep stdout clean.
    with open(os.devnull, 'w') as devnull, contextlib.redirect_stdout(devnull), \
            contextlib.redirect_stderr(devnull):
        return pk.build_chain_from_urdf(urdf_xml)


def load_robot(robot: str | os.PathLike) -> RobotModel:
    """Load a bundled robot by name (``panda``, ``kuka_iiwa``) or from a robot YAML path."""
    return RobotModel(load_description(robot))


def as_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Detach to a CPU numpy array (the CLI and tests print these)."""
    return tensor.detach().cpu().numpy()
