"""Prediction heads of both branches (the neural-network forward edges after the backbones).

Every head is static in shape and free of data-dependent Python control flow, so the network
exports to ONNX as one graph.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from robotag_ros.geometry import rotation_6d_to_matrix, unproject_pixels
from robotag_ros.geometry.view import view_logit_count
from robotag_ros.model.backbones import conv_bn_relu

# softplus(SOFTPLUS_ONE) == 1: depth corrections start at Holistic Robot Pose's k.
SOFTPLUS_ONE = math.log(math.e - 1.0)


def focal_depth_scale(intrinsics: torch.Tensor, image_hw: tuple[int, int],
                      reference_area_m2: float) -> torch.Tensor:
    """Holistic Robot Pose / RootNet's k = sqrt(fx * fy * A_real / A_img), metres, (B,).

    The depth at which ``reference_area_m2`` would fill the image; heads predict a factor
    around 1 on top, so depth follows the focal length instead of being memorised.
    """
    image_area_px = float(image_hw[0] * image_hw[1])
    return torch.sqrt(intrinsics[:, 0, 0] * intrinsics[:, 1, 1] * reference_area_m2
                      / image_area_px)


def soft_argmax_px(heatmap_logits: torch.Tensor, image_hw: tuple[int, int]) -> torch.Tensor:
    """Expected pixel position under a spatial softmax: (B, K, h, w) -> (B, K, 2) as (u, v).

    Cell (i, j) covers input pixels [j*s, (j+1)*s); its centre is (j + 0.5) * s in the
    pixel-centre-at-0.5 convention of robotag_ros.geometry.
    """
    batch, joints, height, width = heatmap_logits.shape
    prob = torch.softmax(heatmap_logits.reshape(batch, joints, -1), dim=-1)
    prob = prob.reshape(batch, joints, height, width)
    u = (torch.arange(width, dtype=prob.dtype, device=prob.device) + 0.5) * image_hw[1] / width
    v = (torch.arange(height, dtype=prob.dtype, device=prob.device) + 0.5) * image_hw[0] / height
    return torch.stack(((prob.sum(2) * u).sum(-1), (prob.sum(3) * v).sum(-1)), dim=-1)


def peak_soft_argmax_px(heatmap_logits: torch.Tensor, image_hw: tuple[int, int],
                        radius_cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-cell keypoints from each heatmap's highest cell: the softmax-weighted mean position
    inside a (2r+1)² window around the argmax, and the softmax mass in that window (B, K).

    Unlike the global soft-argmax (the differentiable κ2² the losses use), a second blob far away
    (the other finger, a look-alike link) does not drag the point between the two, and the mass
    says how sure the heatmap is: the fit weights keypoints by it. Static shapes (exportable).
    """
    batch, joints, height, width = heatmap_logits.shape
    prob = torch.softmax(heatmap_logits.reshape(batch, joints, -1).float(), dim=-1)
    peak = prob.argmax(-1)                                                   # (B, K)
    peak_row, peak_col = peak // width, peak % width
    rows = torch.arange(height, device=prob.device)
    cols = torch.arange(width, device=prob.device)
    in_rows = (rows[None, None, :] - peak_row[..., None]).abs() <= radius_cells    # (B, K, h)
    in_cols = (cols[None, None, :] - peak_col[..., None]).abs() <= radius_cells    # (B, K, w)
    window = (in_rows[..., :, None] & in_cols[..., None, :]).reshape(batch, joints, -1)
    weights = prob * window.to(prob.dtype)
    mass = weights.sum(-1)
    weights = weights / mass.clamp(min=1e-12)[..., None]
    u = ((cols.to(prob.dtype) + 0.5) * image_hw[1] / width).repeat(height)
    v = ((rows.to(prob.dtype) + 0.5) * image_hw[0] / height).repeat_interleave(width)
    return torch.stack(((weights * u).sum(-1), (weights * v).sum(-1)), dim=-1), mass


def bounded(raw: torch.Tensor, limits: torch.Tensor) -> torch.Tensor:
    """Map unbounded outputs (B, n) into [lower, upper] (n, 2) with a sigmoid."""
    return limits[:, 0] + torch.sigmoid(raw) * (limits[:, 1] - limits[:, 0])


class Upsampler(nn.Sequential):
    """``steps`` x (bilinear 2x upsample + 3x3 conv): feature stride s -> s / 2**steps."""

    def __init__(self, in_ch: int, width: int, steps: int):
        layers = []
        for i in range(steps):
            layers += [nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
                       conv_bn_relu(in_ch if i == 0 else width, width)]
        if steps == 0:
            layers.append(conv_bn_relu(in_ch, width))
        super().__init__(*layers)


def mlp(in_ch: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_ch, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))


class JointHead(nn.Module):
    """Pooled features -> joint angles (B, n) within the URDF limits (radians)."""

    def __init__(self, in_ch: int, hidden: int, joint_limits: torch.Tensor):
        super().__init__()
        self.mlp = mlp(in_ch, hidden, joint_limits.shape[0])
        self.register_buffer('joint_limits', joint_limits.clone(), persistent=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return bounded(self.mlp(pooled), self.joint_limits)


def keypoint_pooled_features(features: torch.Tensor,
                             heatmap_logits: torch.Tensor) -> torch.Tensor:
    """f (B, C, h, w) averaged under each keypoint's heatmap (B, K, H, W) -> (B, K * C).

    The heatmap's softmax, summed onto f's coarser grid, weights f: a descriptor of the image
    around each keypoint. The weights are detached: the joint loss reads the heatmaps, it does
    not train them (the keypoint losses do).
    """
    batch = heatmap_logits.shape[0]
    prob = torch.softmax(heatmap_logits.detach().flatten(2), dim=-1).reshape(heatmap_logits.shape)
    ratio = heatmap_logits.shape[-1] // features.shape[-1]  # heatmap cells per cell of f
    prob = F.avg_pool2d(prob, ratio) * ratio ** 2            # summed onto f's grid: sums to 1
    return torch.einsum('bkhw,bchw->bkc', prob, features).reshape(batch, -1)


class RotationHead(nn.Module):
    """Pooled features -> R_cam_base (B, 3, 3) via the continuous 6D representation."""

    def __init__(self, in_ch: int, hidden: int):
        super().__init__()
        self.mlp = mlp(in_ch, hidden, 6)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return rotation_6d_to_matrix(self.mlp(pooled))


class TranslationHead(nn.Module):
    """Pooled features -> t_cam_base (B, 3) metres, Holistic-Robot-Pose style.

    The base's pixel (u, v) is regressed inside the image and its depth is k times a positive
    correction; the 3D point is the back-projection of (u, v) at that depth.
    """

    def __init__(self, in_ch: int, hidden: int):
        super().__init__()
        self.mlp = mlp(in_ch, hidden, 3)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.constant_(self.mlp[-1].bias, 0.0)
        self.mlp[-1].bias.data[2] = SOFTPLUS_ONE

    def forward(self, pooled, intrinsics, depth_scale_m, image_hw) -> torch.Tensor:
        raw = self.mlp(pooled)
        size = torch.tensor([image_hw[1], image_hw[0]], dtype=raw.dtype, device=raw.device)
        pixel = torch.sigmoid(raw[:, None, :2]) * size
        depth = F.softplus(raw[:, 2:3]) * depth_scale_m[:, None]
        return unproject_pixels(pixel, depth, intrinsics)[:, 0]


class DepthRegulatorHead(nn.Module):
    """Pooled features -> λ (B,) metres: k times a positive correction (paper eq. 10, ref. [1])."""

    def __init__(self, in_ch: int, hidden: int):
        super().__init__()
        self.mlp = mlp(in_ch, hidden, 1)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.constant_(self.mlp[-1].bias, SOFTPLUS_ONE)

    def forward(self, pooled: torch.Tensor, depth_scale_m: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.mlp(pooled)[:, 0]) * depth_scale_m


class Keypoint2DHead(nn.Module):
    """f -> heatmaps -> soft-argmax 2D keypoints (B, K, 2) pixels.

    Heatmaps with a soft-argmax keep the spatial structure of f (better than regressing
    coordinates from a pooled vector), are differentiable end to end, as the loops need, and
    give sub-cell precision without a decoding step outside the network.
    """

    def __init__(self, in_ch: int, width: int, steps: int, num_keypoints: int):
        super().__init__()
        self.decoder = Upsampler(in_ch, width, steps)
        self.heatmaps = nn.Conv2d(width, num_keypoints, 1)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.heatmaps(self.decoder(features))

    def forward(self, features, image_hw) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(features)
        return soft_argmax_px(logits, image_hw), logits


class Keypoint3DHead2D(nn.Module):
    """f -> camera-frame 3D keypoints κ3² (B, K, 3) metres.

    As Holistic Robot Pose: an own heatmap gives each keypoint's pixel, a pooled regression gives
    its depth as k times a positive correction, and the two back-project through K.
    """

    def __init__(self, in_ch: int, width: int, steps: int, num_keypoints: int, hidden: int,
                 pooled_ch: int | None = None):
        super().__init__()
        self.decoder = Upsampler(in_ch, width, steps)
        self.heatmaps = nn.Conv2d(width, num_keypoints, 1)
        self.depth = mlp(pooled_ch or in_ch, hidden, num_keypoints)
        nn.init.zeros_(self.depth[-1].weight)
        nn.init.constant_(self.depth[-1].bias, SOFTPLUS_ONE)

    def forward(self, features, pooled, intrinsics, depth_scale_m, image_hw) -> torch.Tensor:
        pixels = soft_argmax_px(self.heatmaps(self.decoder(features)), image_hw)
        depth = F.softplus(self.depth(pooled)) * depth_scale_m[:, None]
        return unproject_pixels(pixels, depth, intrinsics)


class MaskHead(nn.Module):
    """3D-backbone features + log D -> robot mask logits (B, 1, h, w)."""

    def __init__(self, in_ch: int, width: int):
        super().__init__()
        self.net = nn.Sequential(conv_bn_relu(in_ch + 1, width), conv_bn_relu(width, width),
                                 nn.Conv2d(width, 1, 1))

    def forward(self, features: torch.Tensor, depth_relative: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([features, torch.log(depth_relative)], 1))


class Head3DEncoder(nn.Module):
    """D' as an xyz map (camera frame, metres) + D' -> features at 1/4 of the depth grid."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(conv_bn_relu(4, width // 2), conv_bn_relu(width // 2, width, 2),
                                 conv_bn_relu(width, width, 2), conv_bn_relu(width, width))

    def forward(self, xyz_map: torch.Tensor, depth_metric: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([xyz_map, depth_metric], 1))


class Keypoint3DHead3D(nn.Module):
    """3D-head features -> κ3³ (B, K, 3): a soft selection of D''s points plus an offset.

    Each keypoint is a softmax-weighted mean of the unprojected points (so it lies on the
    observed surface and moves with D'), plus a small learned offset for keypoints inside links.
    """

    def __init__(self, width: int, hidden: int, num_keypoints: int):
        super().__init__()
        self.heatmaps = nn.Conv2d(width, num_keypoints, 1)
        self.offset = mlp(width, hidden, 3 * num_keypoints)
        nn.init.zeros_(self.offset[-1].weight)
        nn.init.zeros_(self.offset[-1].bias)

    def forward(self, features: torch.Tensor, xyz_map: torch.Tensor) -> torch.Tensor:
        batch = xyz_map.shape[0]
        logits = F.interpolate(self.heatmaps(features), size=xyz_map.shape[-2:],
                               mode='bilinear', align_corners=False)
        weights = torch.softmax(logits.flatten(2), dim=-1)                  # (B, K, h*w)
        surface = weights @ xyz_map.flatten(2).transpose(1, 2)              # (B, K, 3)
        offset = self.offset(features.mean((2, 3))).reshape(batch, -1, 3)
        return surface + 0.1 * torch.tanh(offset)  # keypoints sit within ~10 cm of the surface


class ViewHead(nn.Module):
    """f and the pooled vector -> (B, 2A + E) logits: the camera's azimuth about the base over A
    sectors, about the arm over A sectors, then its elevation over E bins (geometry/view.py).
    Strided convolutions keep where things are in the image (the floor, shadows, which links
    occlude which), which a pooled vector alone loses."""

    def __init__(self, in_ch: int, pooled_ch: int, hidden: int, azimuth_bins: int,
                 elevation_bins: int):
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(in_ch, 64, 2), conv_bn_relu(64, 96, 2),
                                  conv_bn_relu(96, 128, 2))
        self.mlp = mlp(128 + pooled_ch, hidden, view_logit_count(azimuth_bins, elevation_bins))

    def forward(self, features: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.conv(features).mean((2, 3)), pooled], 1))


class KeypointDepthHead(nn.Module):
    """f pooled under each keypoint's heatmap + the pooled vector -> (B, K) each keypoint's
    camera-frame depth minus the base keypoint's, metres (scale-free in the image: the robot's
    own size sets it)."""

    def __init__(self, in_ch: int, hidden: int, num_keypoints: int):
        super().__init__()
        self.mlp = mlp(in_ch, hidden, num_keypoints)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, joint_input: torch.Tensor) -> torch.Tensor:
        return self.mlp(joint_input)
