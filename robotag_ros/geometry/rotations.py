"""Rotation parameterisations the network predicts, and distances between rotations."""
import torch
import torch.nn.functional as F


def rotation_6d_to_matrix(rot_6d: torch.Tensor) -> torch.Tensor:
    """Map the continuous 6D representation (Zhou et al., CVPR 2019) to a rotation matrix.

    The 6 numbers are the first two columns of the matrix, ``[c0, c1]``; Gram-Schmidt makes them
    orthonormal and the third column is their cross product. Unlike quaternions or Euler angles
    this map is continuous, which is why a regression head can learn it. (..., 6) -> (..., 3, 3).
    """
    a1, a2 = rot_6d[..., 0:3], rot_6d[..., 3:6]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def matrix_to_rotation_6d(rotation: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rotation_6d_to_matrix` for proper rotations: (..., 3, 3) -> (..., 6)."""
    return torch.cat((rotation[..., :, 0], rotation[..., :, 1]), dim=-1)


def geodesic_angle(rotation_a: torch.Tensor, rotation_b: torch.Tensor) -> torch.Tensor:
    """Angle (rad) of the rotation from ``rotation_b`` to ``rotation_a``: (..., 3, 3) -> (...)."""
    relative = rotation_a @ rotation_b.transpose(-1, -2)
    cos = (relative.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    # Clamping keeps acos (and its gradient) finite when round-off pushes |cos| past 1.
    return torch.acos(cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7))
