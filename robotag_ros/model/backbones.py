"""The two backbones: image -> features f (2D branch) and image -> relative depth D (3D branch).

Small defaults are plain PyTorch (train on a CPU); the large ones are built from `transformers`
configurations (ResNet, Depth Anything) so nothing is downloaded; weights load from local paths.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robotag_ros.model.config import ModelConfig
from robotag_ros.model.efficientnet_backbone import EfficientNetLiteBackbone
from robotag_ros.model.efficientnet_backbone import SharedDepthDecoder
from robotag_ros.model.weights import load_pretrained


def conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """A ResNet basic block (two 3x3 convs and a projected shortcut when the shape changes)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True), nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_ch))
        self.shortcut = nn.Identity() if stride == 1 and in_ch == out_ch else nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet-ish 2D backbone, output stride 16."""

    def __init__(self, width: int):
        super().__init__()
        widths = (width, 2 * width, 4 * width, 6 * width)
        self.stem = conv_bn_relu(3, width, stride=2)
        self.stages = nn.Sequential(
            ResidualBlock(width, widths[0], 1), ResidualBlock(widths[0], widths[1], 2),
            ResidualBlock(widths[1], widths[2], 2), ResidualBlock(widths[2], widths[3], 2))
        self.out_channels = widths[3]
        self.stride = 16

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(image))


class TransformersResNet(nn.Module):
    """ResNet from a `transformers` ResNetConfig (ResNet-18 or -50 sizes), output stride 32."""

    SIZES = {
        'resnet18': dict(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                         layer_type='basic'),
        'resnet50': dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048],
                         depths=[3, 4, 6, 3], layer_type='bottleneck'),
    }

    def __init__(self, name: str, overrides: dict, pretrained: str | None):
        super().__init__()
        from transformers import ResNetBackbone, ResNetConfig
        values = dict(self.SIZES[name], out_features=['stage4'])
        values.update(overrides)
        self.net = load_pretrained(ResNetBackbone, ResNetConfig(**values), pretrained,
                                   'backbone_2d')
        self.out_channels = self.net.channels[-1]
        self.stride = 32

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=image).feature_maps[-1]


class SmallDepthUNet(nn.Module):
    """Encoder-decoder depth net: image -> (positive relative depth (B,1,H/4,W/4), features)."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.enc1 = conv_bn_relu(3, w, 2)            # /2
        self.enc2 = ResidualBlock(w, 2 * w, 2)       # /4
        self.enc3 = ResidualBlock(2 * w, 4 * w, 2)   # /8
        self.enc4 = ResidualBlock(4 * w, 6 * w, 2)   # /16
        self.dec3 = conv_bn_relu(6 * w + 4 * w, 4 * w)
        self.dec2 = conv_bn_relu(4 * w + 2 * w, 2 * w)
        self.depth_out = nn.Conv2d(2 * w, 1, 3, 1, 1)
        self.feature_channels = 2 * w

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e1 = self.enc1(image)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        d3 = self.dec3(torch.cat([F.interpolate(e4, size=e3.shape[-2:], mode='bilinear',
                                                align_corners=False), e3], 1))
        d2 = self.dec2(torch.cat([F.interpolate(d3, size=e2.shape[-2:], mode='bilinear',
                                                align_corners=False), e2], 1))
        return F.softplus(self.depth_out(d2)) + 1e-3, d2


class DepthAnythingBackbone(nn.Module):
    """Depth Anything (V2 architecture) from a `transformers` DepthAnythingConfig.

    Depth Anything predicts relative inverse depth (disparity, >= 0); its inverse is returned as
    positive relative depth, with the finest fused neck features (for the mask head). TAGModel
    resizes both to its depth grid and fixes the scale (unit mean, then λ).
    """

    def __init__(self, overrides: dict, input_size: int, pretrained: str | None):
        super().__init__()
        from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
        overrides = dict(overrides)
        backbone_overrides = overrides.pop('backbone_config', None)
        if backbone_overrides is not None:
            values = dict(out_features=['stage1', 'stage2', 'stage3', 'stage4'],
                          reshape_hidden_states=False)
            values.update(backbone_overrides)
            overrides['backbone_config'] = Dinov2Config(**values)
        config = DepthAnythingConfig(**overrides)
        self.net = load_pretrained(DepthAnythingForDepthEstimation, config, pretrained,
                                   'backbone_3d')
        self.input_size = input_size
        self.patch_size = self.net.config.patch_size
        self.feature_channels = self.net.config.fusion_hidden_size

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(image, size=(self.input_size, self.input_size), mode='bilinear',
                          align_corners=False)
        patches = self.input_size // self.patch_size
        feature_maps = self.net.backbone.forward_with_filtered_kwargs(x).feature_maps
        fused = self.net.neck(feature_maps, patches, patches)
        disparity = self.net.head(fused, patches, patches)
        return 1.0 / (disparity[:, None] + 1e-2), fused[-1]


def build_backbone_2d(config: ModelConfig) -> nn.Module:
    """The configured image backbone (attributes ``out_channels`` and ``stride``)."""
    if config.backbone_2d.startswith('efficientnet'):
        return EfficientNetLiteBackbone(config.backbone_2d, config.head_width,
                                        config.pretrained_2d, config.neck_context_blocks)
    if config.backbone_2d == 'small':
        net = SmallResNet(config.width_2d)
        if config.pretrained_2d:
            load_pretrained(None, None, config.pretrained_2d, 'backbone_2d', module=net)
        return net
    return TransformersResNet(config.backbone_2d, config.resnet_config, config.pretrained_2d)


def build_backbone_3d(config: ModelConfig, features_2d_channels: int) -> nn.Module:
    """The configured depth backbone (attribute ``feature_channels``); 'shared' reads f."""
    if config.backbone_3d == 'shared':
        return SharedDepthDecoder(features_2d_channels, config.width_3d)
    if config.backbone_3d == 'small':
        net = SmallDepthUNet(config.width_3d)
        if config.pretrained_3d:
            load_pretrained(None, None, config.pretrained_3d, 'backbone_3d', module=net)
        return net
    return DepthAnythingBackbone(config.depth_anything_config, config.depth_anything_input_size,
                                 config.pretrained_3d)
