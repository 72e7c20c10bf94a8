"""Rotations, transforms, projection/unprojection and Chamfer distances."""
import math

import pytest
import torch

from robotag_ros.geometry import (chamfer_distance, crop_intrinsics, geodesic_angle,
                                  invert_transform, make_transform, matrix_to_rotation_6d,
                                  project_points, resize_intrinsics, rotation_6d_to_matrix,
                                  transform_points, unproject_depth, unproject_pixels)


def _random_rotations(n, seed=0):
    return rotation_6d_to_matrix(torch.randn(n, 6, generator=torch.Generator().manual_seed(seed),
                                             dtype=torch.float64))


def _intrinsics(batch=1):
    K = torch.tensor([[320.0, 0, 160.0], [0, 300.0, 120.0], [0, 0, 1]], dtype=torch.float64)
    return K.expand(batch, 3, 3).clone()


def test_6d_gives_proper_rotations_and_round_trips():
    R = _random_rotations(100)
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    assert torch.allclose(R @ R.transpose(-1, -2), eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(R), torch.ones(100, dtype=R.dtype), atol=1e-10)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=1e-10)


def test_geodesic_angle_of_known_rotation():
    angle = 0.7
    Rz = torch.tensor([[math.cos(angle), -math.sin(angle), 0],
                       [math.sin(angle), math.cos(angle), 0],
                       [0, 0, 1]], dtype=torch.float64)
    assert abs(geodesic_angle(Rz, torch.eye(3, dtype=torch.float64)).item() - angle) < 1e-6


def test_invert_transform_and_transform_points():
    T = make_transform(_random_rotations(4, seed=1), torch.randn(4, 3, dtype=torch.float64))
    points = torch.randn(4, 10, 3, dtype=torch.float64)
    back = transform_points(invert_transform(T), transform_points(T, points))
    assert torch.allclose(back, points, atol=1e-10)
    assert torch.allclose(invert_transform(T), torch.linalg.inv(T), atol=1e-10)


def test_projection_unprojection_round_trip():
    K = _intrinsics(2)
    points = torch.rand(2, 50, 3, dtype=torch.float64) * torch.tensor([1.0, 1.0, 2.0]) \
        + torch.tensor([-0.5, -0.5, 0.5])
    pixels = project_points(points, K)
    assert torch.allclose(unproject_pixels(pixels, points[..., 2], K), points, atol=1e-10)
    # A point on the optical axis lands on the principal point.
    centre = project_points(torch.tensor([[[0.0, 0.0, 2.0]]], dtype=torch.float64), K[:1])
    assert torch.allclose(centre, K[:1, :2, 2][:, None], atol=1e-12)


def test_unproject_depth_map_reprojects_to_pixel_centres():
    K = _intrinsics(1)
    depth = torch.full((1, 4, 5), 2.0, dtype=torch.float64)
    points = unproject_depth(depth, K)
    pixels = project_points(points.reshape(1, -1, 3), K).reshape(1, 4, 5, 2)
    assert torch.allclose(pixels[0, 2, 3], torch.tensor([3.5, 2.5], dtype=torch.float64))
    assert torch.allclose(points[..., 2], depth)


def test_resized_and_cropped_intrinsics_project_consistently():
    K = _intrinsics(1)
    points = torch.tensor([[[0.1, -0.2, 1.5], [0.3, 0.1, 2.0]]], dtype=torch.float64)
    pixels = project_points(points, K)
    half = resize_intrinsics(K, (240, 320), (120, 160))
    assert torch.allclose(project_points(points, half), pixels * 0.5, atol=1e-10)
    cropped = crop_intrinsics(K, 10.0, 20.0)
    assert torch.allclose(project_points(points, cropped),
                          pixels - torch.tensor([10.0, 20.0], dtype=torch.float64), atol=1e-10)


def test_chamfer_distance_known_values_and_masks():
    a = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]])
    b = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]]])
    assert torch.allclose(chamfer_distance(a, b, bidirectional=False), torch.tensor([0.0]))
    # b -> a: 0, 0 and 4^2 -> mean 16/3.
    assert torch.allclose(chamfer_distance(a, b), torch.tensor([16.0 / 3.0]))
    mask_b = torch.tensor([[True, True, False]])
    assert torch.allclose(chamfer_distance(a, b, mask_b=mask_b), torch.tensor([0.0]))
    mask_a = torch.tensor([[True, False]])
    assert torch.allclose(chamfer_distance(a, b[:, :2], bidirectional=True, mask_a=mask_a),
                          torch.tensor([0.5]))


def _chamfer_through_full_matrix(a, b, bidirectional, mask_a, mask_b):
    """The textbook form: autograd through min over the whole distance matrix."""
    def mean(values, mask):
        return values.mean(-1) if mask is None else (
            (values * mask.to(values.dtype)).sum(-1) / mask.to(values.dtype).sum(-1))
    squared = torch.cdist(a, b).square()
    if mask_b is not None:
        squared = squared + (~mask_b)[:, None, :].to(a.dtype) * 1e6
    a_to_b = mean(squared.min(2).values, mask_a)
    if not bidirectional:
        return a_to_b
    if mask_a is not None:
        squared = squared + (~mask_a)[:, :, None].to(a.dtype) * 1e6
    return a_to_b + mean(squared.min(1).values, mask_b)


@pytest.mark.parametrize('bidirectional', [True, False])
@pytest.mark.parametrize('masked', [True, False])
def test_chamfer_distance_values_and_gradients_equal_the_full_matrix_form(bidirectional, masked):
    # The nearest pairs are searched without autograd; value and gradient must not change.
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(3, 40, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(3, 60, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    mask_a = torch.rand(3, 40, generator=generator) > 0.3 if masked else None
    mask_b = torch.rand(3, 60, generator=generator) > 0.3 if masked else None
    fast = chamfer_distance(a, b, bidirectional, mask_a, mask_b)
    fast_grads = torch.autograd.grad(fast.sum(), (a, b))
    full = _chamfer_through_full_matrix(a, b, bidirectional, mask_a, mask_b)
    full_grads = torch.autograd.grad(full.sum(), (a, b))
    assert torch.allclose(fast, full, atol=1e-12)
    for fast_grad, full_grad in zip(fast_grads, full_grads):
        assert fast_grad.abs().sum() > 0
        assert torch.allclose(fast_grad, full_grad, atol=1e-12)


def test_camera_pose_gradients_flow():
    rot_6d = torch.randn(2, 6, requires_grad=True)
    translation = torch.tensor([[0.0, 0.0, 1.5], [0.1, 0.0, 2.0]], requires_grad=True)
    T = make_transform(rotation_6d_to_matrix(rot_6d), translation)
    pixels = project_points(transform_points(T, torch.rand(2, 5, 3) * 0.2), _intrinsics(2).float())
    pixels.sum().backward()
    assert (rot_6d.grad.abs() > 0).any() and (translation.grad.abs() > 0).all()


def test_chamfer_nearest_search_paths_agree_with_masks():
    # The k-d tree (CPU) and the matrix search (GPU) pick the same neighbours, invalid targets
    # never, and an item without any valid target falls back to its geometric nearest one.
    from robotag_ros.geometry.chamfer import (INVALID_PENALTY, _nearest_index_kdtree,
                                              _nearest_index_matrix)
    generator = torch.Generator().manual_seed(5)
    queries = torch.randn(3, 30, 3, dtype=torch.float64, generator=generator)
    targets = torch.randn(3, 50, 3, dtype=torch.float64, generator=generator)
    valid = torch.rand(3, 50, generator=generator) > 0.5
    valid[2] = False
    penalty = (~valid).to(targets.dtype) * INVALID_PENALTY
    by_tree = _nearest_index_kdtree(queries, targets, valid)
    by_matrix = _nearest_index_matrix(queries, targets, penalty)
    assert torch.equal(by_tree, by_matrix)
    assert bool(valid[0][by_tree[0]].all()) and bool(valid[1][by_tree[1]].all())
    assert torch.equal(by_tree[2], torch.cdist(queries[2], targets[2]).argmin(1))
