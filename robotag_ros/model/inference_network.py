"""The network as the runtimes and the exporter see it: tensors in, a fixed tuple of tensors out.

Shared by inference/ (PyTorch backend, output decoding) and export/ (ONNX graphs, parity checks),
so neither imports the other for it.
"""
from __future__ import annotations

import torch
from torch import nn

INPUT_NAMES = ('image', 'intrinsics')
# The network outputs decoding needs, in the order the exported graph returns them.
INFERENCE_OUTPUT_NAMES = (
    'depth_regulator', 'depth_metric', 'robot_mask', 'joint_angles_2d', 'rotation', 'translation',
    'keypoints_2d', 'keypoints_2d_peak', 'keypoints_2d_confidence', 'keypoints_3d_2d',
    'joint_angles_3d', 'keypoints_3d_3d', 'view_logits', 'keypoint_relative_depth')


class InferenceNetwork(nn.Module):
    """Tensor-only wrapper of the TAG network for tracing/export: (image, K) -> tuple of tensors
    in ``INFERENCE_OUTPUT_NAMES`` order (what detectron2 calls a TracingAdapter)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor):
        outputs = self.model.forward_network(image, intrinsics)
        return tuple(outputs[name] for name in INFERENCE_OUTPUT_NAMES)
