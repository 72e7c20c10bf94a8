"""Keypoint lifter: 2D keypoints (+ confidence) -> several joint-angle hypotheses.

The start the inference-time fit needs. A fit from one start lands in the nearest minimum (an
elbow flipped, a wrist half a turn off); the network's direct joint heads are the paper's start,
but they learn slowly. The lifter reads only the keypoints, so it trains on forward kinematics
alone (no rendering, ``training/lifter.py``), with the noise, outliers and missing points a
detector makes. 2D -> joints is ambiguous (mirror poses project alike), so it proposes
``hypotheses`` answers and is trained winner-takes-all: every mode gets a head, and the fit
starts from each.
"""
from __future__ import annotations

import torch
from torch import nn

from robotag_ros.model.heads import bounded


def normalised_keypoints(keypoints_px: torch.Tensor, weights: torch.Tensor,
                         intrinsics: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) pixels, (B, K) weights, (B, 3, 3) K -> (B, 3K) inputs: normalised camera
    coordinates with the weighted centroid removed and the spread scaled to 1 (distance and
    position in the image do not matter; perspective does), zero where the weight is 0."""
    x = (keypoints_px[..., 0] - intrinsics[:, None, 0, 2]) / intrinsics[:, None, 0, 0]
    y = (keypoints_px[..., 1] - intrinsics[:, None, 1, 2]) / intrinsics[:, None, 1, 1]
    points = torch.stack((x, y), -1)
    w = weights.clamp(0.0, 1.0)
    total = w.sum(1, keepdim=True).clamp(min=1e-6)
    centre = (points * w[..., None]).sum(1, keepdim=True) / total[..., None]
    spread = ((points - centre).square().sum(-1) * w).sum(1, keepdim=True) / total
    points = (points - centre) / spread.clamp(min=1e-12).sqrt()[..., None]
    points = torch.where(w[..., None] > 0, points, torch.zeros_like(points))
    return torch.cat([points.flatten(1), w], 1)


class KeypointLifter(nn.Module):
    """An MLP from normalised 2D keypoints to ``hypotheses`` joint vectors within the limits."""

    def __init__(self, num_keypoints: int, joint_limits: torch.Tensor, hypotheses: int = 8,
                 hidden: int = 512):
        super().__init__()
        self.hypotheses, self.num_joints = hypotheses, joint_limits.shape[0]
        self.net = nn.Sequential(
            nn.Linear(3 * num_keypoints, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hypotheses * self.num_joints))
        self.register_buffer('joint_limits', joint_limits.clone().float(), persistent=False)

    def forward(self, keypoints_px: torch.Tensor, weights: torch.Tensor,
                intrinsics: torch.Tensor) -> torch.Tensor:
        """-> (B, hypotheses, n) radians."""
        inputs = normalised_keypoints(keypoints_px.float(), weights.float(), intrinsics.float())
        raw = self.net(inputs).reshape(-1, self.hypotheses, self.num_joints)
        return bounded(raw, self.joint_limits)
