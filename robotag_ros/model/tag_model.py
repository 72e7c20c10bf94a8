"""TAGModel: the two-branch network of RoboTAG (paper Sec. 3.2) returning every node state."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robotag_ros.geometry import resize_intrinsics, unproject_depth
from robotag_ros.geometry.view import view_logit_count
from robotag_ros.model.backbones import build_backbone_2d, build_backbone_3d
from robotag_ros.model.config import ModelConfig
from robotag_ros.model.config import model_config_from_dict
from robotag_ros.model.heads import (DepthRegulatorHead, Head3DEncoder, JointHead,
                                     Keypoint2DHead, Keypoint3DHead2D, Keypoint3DHead3D,
                                     KeypointDepthHead, MaskHead, RotationHead, TranslationHead,
                                     ViewHead, focal_depth_scale, keypoint_pooled_features,
                                     peak_soft_argmax_px)
from robotag_ros.model.lifter import KeypointLifter
from robotag_ros.model.outputs import TAGOutputs
from robotag_ros.model.preprocessing import ImagePreprocessing, backbone_preprocessing
from robotag_ros.model.prior_states import prior_states
from robotag_ros.robot import RobotModel
from robotag_ros.tag.graph import TAGGraph

# The tensors forward_network returns, in this order (export names).
NETWORK_OUTPUT_NAMES = (
    'features_2d', 'depth_relative', 'depth_regulator', 'depth_metric', 'robot_mask',
    'joint_angles_2d', 'rotation', 'translation', 'keypoints_2d', 'keypoints_2d_heatmaps',
    'keypoints_2d_peak', 'keypoints_2d_confidence', 'keypoints_3d_2d', 'joint_angles_3d',
    'keypoints_3d_3d', 'view_logits', 'keypoint_relative_depth')


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
        # The joint heads map a sigmoid onto these ranges: an artifact keeps the ones it was
        # trained with (model_config.joint_limits), so a robot YAML that later narrows its
        # limits does not shift what the trained heads mean.
        limits = robot.joint_limits.detach().cpu().float() if config.joint_limits is None \
            else torch.tensor(config.joint_limits, dtype=torch.float32)
        if limits.shape != (n, 2):
            raise ValueError(f'model_config.joint_limits has shape {tuple(limits.shape)}, the '
                             f'robot has {n} joints')
        self.backbone_2d = build_backbone_2d(config)
        # Input statistics (set_preprocessing): buffers so they follow the model's device.
        self.register_buffer('image_mean', torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer('image_std', torch.ones(1, 3, 1, 1), persistent=False)
        self.set_preprocessing(backbone_preprocessing(config.backbone_2d))
        c2d, w, hidden = self.backbone_2d.out_channels, config.head_width, 4 * config.head_width
        # The global heads read a pooled vector: the mean of f, or the backbone's own (wider) one.
        c_pool = getattr(self.backbone_2d, 'pooled_channels', c2d)
        self.backbone_3d = build_backbone_3d(config, c2d)
        steps = _upsample_steps(self.backbone_2d.stride, config.heatmap_stride)
        self.depth_regulator_head = DepthRegulatorHead(c_pool, hidden)
        joint_in = c_pool + c2d * k if config.joint_features == 'keypoints' else c_pool
        self.joint_head_2d = JointHead(joint_in, hidden, limits)
        self.rotation_head = RotationHead(c_pool, hidden)
        self.translation_head = TranslationHead(c_pool, hidden)
        self.keypoint_2d_head = Keypoint2DHead(c2d, w, steps, k)
        self.keypoint_3d_head_2d = Keypoint3DHead2D(c2d, w, steps, k, hidden, c_pool)
        self.mask_head = MaskHead(self.backbone_3d.feature_channels, w // 2)
        self.head_3d_encoder = Head3DEncoder(w)
        self.joint_head_3d = JointHead(w, hidden, limits)
        self.keypoint_3d_head_3d = Keypoint3DHead3D(w, hidden, k)
        self.num_joints, self.num_keypoints = n, k
        # Optional heads (older artifacts have neither): without them the network reports
        # uniform view logits and zero depths, and the fit, which reads the model config,
        # leaves out the terms they would feed.
        self.view_bins = (config.view_azimuth_bins, config.view_elevation_bins)
        self.view_head = ViewHead(c2d, c_pool, hidden, *self.view_bins) \
            if config.view_azimuth_bins else None
        self.keypoint_depth_head = KeypointDepthHead(c_pool + c2d * k, hidden, k) \
            if config.keypoint_depth_head else None
        # Not part of forward_network (nor of the exported graph): the decoder runs it on the
        # decoded keypoints to start the fit (inference/loop_closing.py).
        self.keypoint_lifter = KeypointLifter(k, limits, config.lifting_hypotheses) \
            if config.lifting_hypotheses else None
        # Heatmap and depth cells must tile the image exactly, or pixel coordinates drift.
        self.input_multiple = max(self.backbone_2d.stride, config.depth_stride,
                                  getattr(self.backbone_2d, 'input_multiple', 1))

    def depth_grid_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
        """Size (h, w) of D, D' and the mask for an input of ``image_hw`` pixels."""
        stride = self.config.depth_stride
        return max(1, image_hw[0] // stride), max(1, image_hw[1] // stride)

    def set_preprocessing(self, preprocessing: ImagePreprocessing) -> None:
        """The normalisation :meth:`normalise` applies (an artifact's sidecar sets its own)."""
        self.preprocessing = preprocessing
        device = self.image_mean.device
        # Assigned, not copied into: the buffers may be inference tensors.
        self.image_mean = torch.tensor(preprocessing.mean, device=device)[None, :, None, None]
        self.image_std = torch.tensor(preprocessing.std, device=device)[None, :, None, None]

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the network's input statistics."""
        return (image - self.image_mean) / self.image_std

    def forward_network(self, image: torch.Tensor,
                        intrinsics: torch.Tensor) -> dict[str, torch.Tensor]:
        """The learned part only: (B, 3, H, W) in [0, 1], K (B, 3, 3) -> NETWORK_OUTPUT_NAMES."""
        return self.forward_normalised(self.normalise(image), intrinsics)

    def forward_normalised(self, normalised: torch.Tensor,
                           intrinsics: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`forward_network` on an already normalised image: what the runtimes run, the
        normalisation being the sidecar's preprocessing."""
        image_hw = (int(normalised.shape[-2]), int(normalised.shape[-1]))
        features, pooled = self._image_features(normalised)
        depth_input = features if self.config.backbone_3d == 'shared' else normalised
        return self._heads(features, pooled, self.backbone_3d(depth_input), intrinsics,
                           image_hw)

    def forward_from_trunk(self, trunk_features: list[torch.Tensor], intrinsics: torch.Tensor,
                           image_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        """The network tensors from a frozen trunk's cached outputs (``backbone_3d: shared``
        only): the cached-feature training recipe runs the neck and every head, not the trunk."""
        features, pooled = self.backbone_2d.neck_from_cache(trunk_features)
        return self._heads(features, pooled, self.backbone_3d(features), intrinsics, image_hw)

    def view_and_depth(self, features: torch.Tensor, pooled: torch.Tensor,
                       heatmaps: torch.Tensor) -> dict[str, torch.Tensor]:
        """The view logits (B, A + E) and relative keypoint depths (B, K); see __init__."""
        batch = features.shape[0]
        if self.view_head is not None:
            view = self.view_head(features, pooled)
        else:
            count = view_logit_count(max(1, self.view_bins[0]), self.view_bins[1])
            view = pooled.new_zeros(batch, count)
        if self.keypoint_depth_head is not None:
            depth = self.keypoint_depth_head(
                torch.cat([pooled, keypoint_pooled_features(features, heatmaps)], 1))
        else:
            depth = pooled.new_zeros(batch, self.num_keypoints)
        return {'view_logits': view, 'keypoint_relative_depth': depth}

    def keypoint_outputs(self, image: torch.Tensor | None = None,
                         trunk_features: list[torch.Tensor] | None = None
                         ) -> dict[str, torch.Tensor]:
        """Heatmap logits, view logits and relative keypoint depths alone, from an image in
        [0, 1] or cached trunk outputs: what the keypoint training phases run."""
        if trunk_features is not None:
            features, pooled = self.backbone_2d.neck_from_cache(trunk_features)
        else:
            features, pooled = self._image_features(self.normalise(image))
        heatmaps = self.keypoint_2d_head.logits(features)
        return {'keypoints_2d_heatmaps': heatmaps,
                **self.view_and_depth(features, pooled, heatmaps)}

    def _image_features(self, normalised: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised image -> (f, the pooled vector: the backbone's own or the mean of f)."""
        features = self.backbone_2d(normalised)
        return features if isinstance(features, tuple) else (features, features.mean((2, 3)))

    def _heads(self, features, pooled, depth_backbone_out, intrinsics, image_hw):
        depth_hw = self.depth_grid_hw(image_hw)
        scale_m = focal_depth_scale(intrinsics, image_hw, self.config.reference_area_m2)
        regulator = self.depth_regulator_head(pooled, scale_m)
        keypoints_2d, heatmaps = self.keypoint_2d_head(features, image_hw)
        peaks, confidence = peak_soft_argmax_px(heatmaps, image_hw,
                                                self.config.peak_window_cells)
        joint_input = pooled
        if self.config.joint_features == 'keypoints':
            joint_input = torch.cat([pooled, keypoint_pooled_features(features, heatmaps)], 1)

        depth_raw, depth_features = depth_backbone_out
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
            'keypoints_2d_peak': peaks,
            'keypoints_2d_confidence': confidence,
            'keypoints_3d_2d': self.keypoint_3d_head_2d(features, pooled, intrinsics, scale_m,
                                                        image_hw),
            'joint_angles_3d': self.joint_head_3d(features_3d.mean((2, 3))),
            'keypoints_3d_3d': self.keypoint_3d_head_3d(features_3d, xyz_map),
            **self.view_and_depth(features, pooled, heatmaps),
        }

    def assemble(self, network: dict[str, torch.Tensor], intrinsics: torch.Tensor,
                 image_hw: tuple[int, int]) -> TAGOutputs:
        """Network tensors + robot prior -> every node state."""
        states = prior_states(network, self.robot, intrinsics, image_hw,
                              self.config.num_unproj_points, self.config.mask_threshold)
        return TAGOutputs(**network, **states, image_hw=image_hw)

    def forward(self, image: torch.Tensor | None, intrinsics: torch.Tensor,
                trunk_features: list[torch.Tensor] | None = None,
                image_hw: tuple[int, int] | None = None) -> TAGOutputs:
        """Image (B, 3, H, W) RGB in [0, 1] and K (B, 3, 3) pixels -> TAGOutputs.

        Training over cached trunk outputs passes ``trunk_features`` and ``image_hw`` instead of
        the image (through forward, so DistributedDataParallel sees the call).
        """
        if trunk_features is not None:
            network = self.forward_from_trunk(trunk_features, intrinsics, image_hw)
        else:
            _check_inputs(image, intrinsics, self.input_multiple)
            image_hw = (int(image.shape[-2]), int(image.shape[-1]))
            network = self.forward_network(image, intrinsics)
        # The robot prior (FK, projection, unprojection) runs in float32 even under mixed
        # precision: bf16 FK errs by centimetres at a metre's reach.
        with torch.autocast(intrinsics.device.type, enabled=False):
            network = {k: v.float() for k, v in network.items()}
            return self.assemble(network, intrinsics.float(), image_hw)


def build_model(robot: RobotModel, config: ModelConfig | dict | None = None) -> TAGModel:
    """TAGModel from a ModelConfig or its dict form (an artifact sidecar's ``model_config``)."""
    if isinstance(config, dict):
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
