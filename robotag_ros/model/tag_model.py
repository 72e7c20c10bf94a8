"""TAGModel: the two-branch network of RoboTAG (paper Sec. 3.2) returning every node state."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robotag_ros.geometry import resize_intrinsics, unproject_depth
from robotag_ros.model.backbones import build_backbone_2d, build_backbone_3d
from robotag_ros.model.config import ModelConfig
from robotag_ros.model.heads import (DepthRegulatorHead, Head3DEncoder, JointHead,
                                     Keypoint2DHead, Keypoint3DHead2D, Keypoint3DHead3D, MaskHead,
                                     RotationHead, TranslationHead, focal_depth_scale,
                                     keypoint_pooled_features)
from robotag_ros.model.outputs import TAGOutputs
from robotag_ros.model.prior_states import prior_states
from robotag_ros.robot import RobotModel
from robotag_ros.tag.graph import TAGGraph

# ImageNet statistics: what the transformers backbones' pretrained weights expect.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

# The tensors forward_network returns, in this order (export names).
NETWORK_OUTPUT_NAMES = (
    'features_2d', 'depth_relative', 'depth_regulator', 'depth_metric', 'robot_mask',
    'joint_angles_2d', 'rotation', 'translation', 'keypoints_2d', 'keypoints_2d_heatmaps',
    'keypoints_3d_2d', 'joint_angles_3d', 'keypoints_3d_3d')


class TAGModel(nn.Module):
    """2D branch (image -> f -> p², R, T, κ2², κ3², λ) and 3D branch (image -> D -> D' -> p³, κ3³,
    pts_unproj³), tied by the robot prior. Module attribute names are those the graph's forward
    edges name (robotag_ros.tag.graph.FORWARD_EDGES).
    """

    def __init__(self, robot: RobotModel, config: ModelConfig | None = None):
        super().__init__()
        self.config = config = config or ModelConfig()
        self.robot = robot
        self.graph = TAGGraph(config.loops_off)  # the loops this model's losses use
        n, k = robot.num_joints, robot.num_keypoints
        limits = robot.joint_limits.detach().cpu().float()
        self.register_buffer('image_mean', torch.tensor(IMAGE_MEAN)[None, :, None, None],
                             persistent=False)
        self.register_buffer('image_std', torch.tensor(IMAGE_STD)[None, :, None, None],
                             persistent=False)

        self.backbone_2d = build_backbone_2d(config)
        self.backbone_3d = build_backbone_3d(config)
        c2d, w, hidden = self.backbone_2d.out_channels, config.head_width, 4 * config.head_width
        steps = _upsample_steps(self.backbone_2d.stride, config.heatmap_stride)
        self.depth_regulator_head = DepthRegulatorHead(c2d, hidden)
        joint_in = c2d * (1 + k) if config.joint_features == 'keypoints' else c2d
        self.joint_head_2d = JointHead(joint_in, hidden, limits)
        self.rotation_head = RotationHead(c2d, hidden)
        self.translation_head = TranslationHead(c2d, hidden)
        self.keypoint_2d_head = Keypoint2DHead(c2d, w, steps, k)
        self.keypoint_3d_head_2d = Keypoint3DHead2D(c2d, w, steps, k, hidden)
        self.mask_head = MaskHead(self.backbone_3d.feature_channels, w // 2)
        self.head_3d_encoder = Head3DEncoder(w)
        self.joint_head_3d = JointHead(w, hidden, limits)
        self.keypoint_3d_head_3d = Keypoint3DHead3D(w, hidden, k)
        self.num_joints, self.num_keypoints = n, k
        # Heatmap and depth cells must tile the image exactly, or pixel coordinates drift.
        self.input_multiple = max(self.backbone_2d.stride, config.depth_stride)

    def depth_grid_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Size (h, w) of D, D' and the mask for an input of ``image_hw`` pixels."""
        stride = self.config.depth_stride
        return max(1, image_hw[0] // stride), max(1, image_hw[1] // stride)

    def forward_network(self, image: torch.Tensor,
                        intrinsics: torch.Tensor) -> dict[str, torch.Tensor]:
        """The learned part only: (B, 3, H, W) in [0, 1], K (B, 3, 3) -> NETWORK_OUTPUT_NAMES."""
        image_hw = (int(image.shape[-2]), int(image.shape[-1]))
        depth_hw = self.depth_grid_hw(image_hw)
        normalised = (image - self.image_mean) / self.image_std
        scale_m = focal_depth_scale(intrinsics, image_hw, self.config.reference_area_m2)

        features = self.backbone_2d(normalised)
        pooled = features.mean((2, 3))
        regulator = self.depth_regulator_head(pooled, scale_m)
        keypoints_2d, heatmaps = self.keypoint_2d_head(features, image_hw)
        joint_input = pooled
        if self.config.joint_features == 'keypoints':
            joint_input = torch.cat([pooled, keypoint_pooled_features(features, heatmaps)], 1)

        depth_raw, depth_features = self.backbone_3d(normalised)
        depth_raw = F.interpolate(depth_raw, size=depth_hw, mode='bilinear', align_corners=False)
        depth_features = F.interpolate(depth_features, size=depth_hw, mode='bilinear',
                                       align_corners=False)
        # D is scale-free (unit mean per image); λ carries the metric scale (eq. 10).
        depth_relative = depth_raw / depth_raw.mean((2, 3), keepdim=True)
        depth_metric = regulator[:, None, None, None] * depth_relative
        mask = self.mask_head(depth_features, depth_relative)

        xyz_map = unproject_depth(depth_metric[:, 0], resize_intrinsics(
            intrinsics, image_hw, depth_hw)).permute(0, 3, 1, 2)
        features_3d = self.head_3d_encoder(xyz_map, depth_metric)
        return {
            'features_2d': features,
            'depth_relative': depth_relative,
            'depth_regulator': regulator,
            'depth_metric': depth_metric,
            'robot_mask': mask,
            'joint_angles_2d': self.joint_head_2d(joint_input),
            'rotation': self.rotation_head(pooled),
            'translation': self.translation_head(pooled, intrinsics, scale_m, image_hw),
            'keypoints_2d': keypoints_2d,
            'keypoints_2d_heatmaps': heatmaps,
            'keypoints_3d_2d': self.keypoint_3d_head_2d(features, pooled, intrinsics, scale_m,
                                                        image_hw),
            'joint_angles_3d': self.joint_head_3d(features_3d.mean((2, 3))),
            'keypoints_3d_3d': self.keypoint_3d_head_3d(features_3d, xyz_map),
        }

    def assemble(self, network: dict[str, torch.Tensor], intrinsics: torch.Tensor,
                 image_hw: tuple[int, int]) -> TAGOutputs:
        """Network tensors + robot prior -> every node state."""
        states = prior_states(network, self.robot, intrinsics, image_hw,
                              self.config.num_unproj_points, self.config.mask_threshold)
        return TAGOutputs(**network, **states, image_hw=image_hw)

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor) -> TAGOutputs:
        """Image (B, 3, H, W) RGB in [0, 1] and K (B, 3, 3) pixels -> TAGOutputs."""
        _check_inputs(image, intrinsics, self.input_multiple)
        image_hw = (int(image.shape[-2]), int(image.shape[-1]))
        network = self.forward_network(image, intrinsics)
        # The robot prior (FK, projection, unprojection) runs in float32 even under mixed
        # precision: bf16 FK errs by centimetres at a metre's reach.
        with torch.autocast(image.device.type, enabled=False):
            network = {k: v.float() for k, v in network.items()}
            return self.assemble(network, intrinsics.float(), image_hw)


def build_model(robot: RobotModel, config: ModelConfig | dict | None = None) -> TAGModel:
    """TAGModel from a ModelConfig or its dict form (an artifact sidecar's ``model_config``)."""
    if isinstance(config, dict):
        from robotag_ros.model.config import model_config_from_dict
        config = model_config_from_dict(config)
    return TAGModel(robot, config)


def _upsample_steps(feature_stride: int, heatmap_stride: int) -> int:
    if feature_stride % heatmap_stride or feature_stride < heatmap_stride:
        raise ValueError(f'heatmap_stride {heatmap_stride} must divide the backbone stride '
                         f'{feature_stride}')
    ratio = feature_stride // heatmap_stride
    steps = ratio.bit_length() - 1
    if 2 ** steps != ratio:
        raise ValueError(f'backbone stride / heatmap_stride = {ratio} is not a power of two')
    return steps


def _check_inputs(image: torch.Tensor, intrinsics: torch.Tensor, multiple: int) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f'image must be (B, 3, H, W), got {tuple(image.shape)}')
    if image.shape[-2] % multiple or image.shape[-1] % multiple:
        raise ValueError(f'image height and width must be multiples of {multiple} pixels for '
                         f'this backbone, got {tuple(image.shape[-2:])}; resize or letterbox')
    if intrinsics.shape != (image.shape[0], 3, 3):
        raise ValueError(f'K must be (B, 3, 3) with B = {image.shape[0]}, '
                         f'got {tuple(intrinsics.shape)}')
