"""TAGOutputs: every node state of one forward pass, named as the graph's nodes."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterator

import torch

from robotag_ros.geometry import make_transform


@dataclass
class TAGOutputs:
    """Node states of the TAG (paper symbols in brackets); B = batch, K = keypoints, n = joints.

    Field names equal the node ids of :mod:`robotag_ros.tag.graph`. Frames: camera optical frame
    unless named; lengths metres, angles radians, image coordinates pixels of the input image.
    """

    features_2d: torch.Tensor           # [f] (B, C, h, w)
    depth_relative: torch.Tensor        # [D] (B, 1, hd, wd), positive, unit mean per image
    depth_regulator: torch.Tensor       # [λ] (B,) metres
    depth_metric: torch.Tensor          # [D'] (B, 1, hd, wd) metres, = λ·D
    robot_mask: torch.Tensor            # [M] (B, 1, hd, wd) logits (not a paper node)
    joint_angles_2d: torch.Tensor       # [p²] (B, n) radians
    rotation: torch.Tensor              # [R] (B, 3, 3) R_cam_base
    translation: torch.Tensor           # [T] (B, 3) t_cam_base, metres
    keypoints_2d: torch.Tensor          # [κ2²] (B, K, 2) pixels
    keypoints_2d_heatmaps: torch.Tensor  # logits behind κ2² (B, K, hh, wh)
    keypoints_2d_peak: torch.Tensor     # (B, K, 2) pixels: sub-cell peak of each heatmap
    keypoints_2d_confidence: torch.Tensor  # (B, K) softmax mass around the peak, 0..1
    keypoints_3d_2d: torch.Tensor       # [κ3²] (B, K, 3) metres
    joint_angles_3d: torch.Tensor       # [p³] (B, n) radians
    keypoints_3d_3d: torch.Tensor       # [κ3³] (B, K, 3) metres
    view_logits: torch.Tensor           # (B, 2A + E) azimuth about base, about arm; elevation
    keypoint_relative_depth: torch.Tensor  # (B, K) metres: z_k - z_base (0: no such head)
    keypoints_3d_fk_2d: torch.Tensor    # [κ3,fk²] (B, K, 3) metres
    keypoints_3d_fk_3d: torch.Tensor    # [κ3,fk³] (B, K, 3) metres
    keypoints_2d_proj_2d: torch.Tensor  # [κ2,proj²] (B, K, 2) pixels
    keypoints_2d_proj_3d: torch.Tensor  # [κ2,proj³] (B, K, 2) pixels
    points_fk_2d: torch.Tensor          # [pts_fk²] (B, N, 3) metres
    points_fk_3d: torch.Tensor          # [pts_fk³] (B, N, 3) metres
    points_unproj_3d: torch.Tensor      # [pts_unproj³] (B, P, 3) metres
    points_unproj_valid: torch.Tensor   # (B, P) bool: mask probability above the threshold
    image_hw: tuple[int, int]           # input image size (height, width), pixels

    @property
    def T_cam_base(self) -> torch.Tensor:
        """(B, 4, 4) from the 2D branch's R and T."""
        return make_transform(self.rotation, self.translation)

    def float(self) -> 'TAGOutputs':
        """A copy with floating-point tensors in float32 (losses after bf16 autocast)."""
        return replace(self, **{name: value.float() for name, value in self.tensors()
                                if value.is_floating_point()})

    def tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, tensor) for every tensor field (for logging and debugging)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                yield f.name, value
