"""The view head's geometry and its use in the fit: bins, soft targets, the turn about the base
that trades the camera's yaw for joint 1, the view prior's ranking, and the interchangeable
fingertip loss."""
import math

import numpy as np
import pytest
import torch

from robotag_ros.data.synthetic.camera_sampling import look_at
from robotag_ros.geometry import project_points
from robotag_ros.geometry.view import (camera_azimuth_elevation, camera_placement,
                                       soft_view_targets, split_view_logits,
                                       view_cross_entropy, view_log_likelihood)
from robotag_ros.inference.fitting import keypoint_kinematics
from robotag_ros.inference.loop_closing import turned_to_azimuth
from robotag_ros.losses.supervised import heatmap_cross_entropy, relative_depth_l1
from robotag_ros.model import ModelConfig, TAGModel


def camera_at(azimuth_deg: float, elevation_deg: float, distance: float = 1.5) -> torch.Tensor:
    azimuth, elevation = math.radians(azimuth_deg), math.radians(elevation_deg)
    target = np.array([0.0, 0.0, 0.4])
    position = target + distance * np.array([math.cos(elevation) * math.cos(azimuth),
                                             math.cos(elevation) * math.sin(azimuth),
                                             math.sin(elevation)])
    return torch.from_numpy(np.linalg.inv(look_at(position, target)))


def test_azimuth_and_elevation_of_a_camera():
    azimuth, elevation = camera_azimuth_elevation(torch.stack(
        [camera_at(30, 20), camera_at(-150, 45)]))
    # Elevation is the camera centre's, seen from the base origin (the look-at point is 0.4 m up).
    assert azimuth[0] == pytest.approx(math.radians(30), abs=1e-6)
    assert azimuth[1] == pytest.approx(math.radians(-150), abs=1e-6)
    assert 0 < elevation[0] < elevation[1] < math.pi / 2


def test_soft_targets_peak_at_the_true_bin_and_sum_to_one():
    azimuth_targets, arm_targets, elevation_targets = soft_view_targets(
        torch.stack([camera_at(100, 30), camera_at(-170, 5)]), 12, 6,
        first_joint=torch.tensor([math.radians(90.0), 0.0]))
    for targets in (azimuth_targets, arm_targets, elevation_targets):
        assert torch.allclose(targets.sum(-1), torch.ones(2))
    # 100 deg lies in sector 9 of 12 (from -180 deg); -170 deg in sector 0, its neighbour
    # across the wrap (sector 11) gets more than the far side.
    assert azimuth_targets[0].argmax() == 9
    assert azimuth_targets[1].argmax() == 0
    assert azimuth_targets[1, 11] > azimuth_targets[1, 6]
    # About the arm: 100 - 90 = 10 deg, sector 6.
    assert arm_targets[0].argmax() == 6


def test_view_likelihood_prefers_the_side_the_logits_say():
    bins = 8
    T = camera_at(45, 30)[None]
    first_joint = torch.tensor([0.5])
    base, arm, elevation = soft_view_targets(T, bins, 6, first_joint)
    logits = 5 * torch.cat([base, arm, elevation], -1).log()
    log_probs = split_view_logits(logits, bins)
    same = view_log_likelihood(log_probs, T[:, None], first_joint[:, None])
    opposite = view_log_likelihood(log_probs, camera_at(-135, 30)[None, None],
                                   first_joint[:, None])
    other_arm = view_log_likelihood(log_probs, T[:, None], first_joint[:, None] + math.pi)
    assert same.shape == (1, 1) and same > opposite + 5 and same > other_arm + 5
    # Training lowers the cross-entropy toward these logits.
    assert view_cross_entropy(logits, T, bins, first_joint) \
        < view_cross_entropy(torch.zeros(1, 22), T, bins, first_joint)


def test_turning_about_the_base_keeps_the_arm_in_the_image(panda):
    """Camera and joint 1 turned together: every keypoint not on the base projects where it
    did; the camera then sits at the asked azimuth."""
    torch.manual_seed(0)
    limits = panda.joint_limits.double()
    joints = (limits[:, 0] + 0.3 * (limits[:, 1] - limits[:, 0]))[None, None]
    cameras = camera_at(20, 25)[None, None]
    turned_joints, turned_cameras = turned_to_azimuth(panda, joints, cameras,
                                                      torch.tensor([math.radians(60.0)]))
    azimuth, _ = camera_azimuth_elevation(turned_cameras)
    assert azimuth.item() == pytest.approx(math.radians(60.0), abs=1e-6)
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]], dtype=torch.float64)
    kinematics = keypoint_kinematics(panda)

    def pixels(q, T):
        points = torch.from_numpy(kinematics(q[0].numpy())[0])
        camera = points @ T[0, :, :3, :3].transpose(-1, -2) + T[0, :, None, :3, 3]
        return project_points(camera, K)

    on_base = torch.from_numpy(~panda.keypoints_off_base)
    before, after = pixels(joints, cameras), pixels(turned_joints, turned_cameras)
    assert torch.allclose(before[0, ~on_base], after[0, ~on_base], atol=1e-6)
    assert not torch.allclose(before[0, on_base], after[0, on_base], atol=1.0)


def test_fingertip_pair_loss_takes_the_better_assignment():
    logits = torch.full((1, 3, 16, 16), -10.0)
    logits[0, 0, 4, 4] = logits[0, 1, 10, 10] = logits[0, 2, 2, 12] = 10.0
    at = lambda row, col: [(col + 0.5) * 4, (row + 0.5) * 4]  # noqa: E731 (stride-4 cells)
    labels = torch.tensor([[at(4, 4), at(2, 12), at(10, 10)]])    # keypoints 1 and 2 swapped
    plain = heatmap_cross_entropy(logits, labels, (64, 64))
    either = heatmap_cross_entropy(logits, labels, (64, 64), interchangeable=[(1, 2)])
    correct = heatmap_cross_entropy(logits, labels[:, [0, 2, 1]], (64, 64))
    assert either.item() == pytest.approx(correct.item()) and either < plain - 1


def test_relative_depth_is_relative_to_the_base_keypoint():
    keypoints = torch.tensor([[[0.0, 0.0, 2.0], [0.1, 0.0, 2.3], [0.0, 0.1, 1.8]]])
    assert relative_depth_l1(torch.tensor([[0.0, 0.3, -0.2]]), keypoints) \
        == pytest.approx(0.0, abs=1e-6)
    assert relative_depth_l1(torch.tensor([[0.0, 0.0, 0.0]]), keypoints) \
        == pytest.approx(0.5 / 3)


def test_a_model_without_the_heads_reports_no_information(panda):
    model = TAGModel(panda, ModelConfig(width_2d=8, width_3d=8, head_width=16,
                                        num_unproj_points=64)).eval()
    K = torch.tensor([[[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]]])
    with torch.no_grad():
        network = model.forward_network(torch.rand(1, 3, 64, 64), K)
    assert model.view_head is None and model.keypoint_depth_head is None
    assert torch.count_nonzero(network['view_logits']) == 0     # uniform
    assert torch.count_nonzero(network['keypoint_relative_depth']) == 0


def test_a_fixed_camera_teaches_the_arm_azimuth_but_not_the_camera_pose(panda):
    """A self-labelled static recording shows the base from one side only: for its frames
    (has_view False) the view loss ignores the camera terms (base azimuth, elevation) but keeps
    the arm azimuth, which joint 1 turns under the fixed camera."""
    from robotag_ros.losses.supervised import keypoint_head_losses
    bins = 12
    T = torch.stack([camera_at(0.0, 30.0), camera_at(180.0, 30.0)]).float()
    outputs = {'keypoints_2d_heatmaps': torch.zeros(2, panda.num_keypoints, 8, 8),
               'view_logits': torch.zeros(2, 2 * bins + 6)}
    batch = {'keypoints_2d': torch.full((2, panda.num_keypoints, 2), 16.0), 'T_cam_base': T,
             'joint_angles': torch.zeros(2, panda.num_joints),
             'has_joint_angles': torch.ones(2, dtype=torch.bool),
             'has_keypoints_2d': torch.ones(2, dtype=torch.bool),
             'has_T_cam_base': torch.ones(2, dtype=torch.bool)}

    def view_term(logits, has_view):
        return float(keypoint_head_losses(
            dict(outputs, view_logits=logits), dict(batch, has_view=torch.tensor(has_view)),
            panda, {'view': 1.0, 'keypoint_depth': 0.0}, (32, 32),
            view_azimuth_bins=bins)['extra_view'])

    plain = outputs['view_logits']
    camera_part, arm_part = plain.clone(), plain.clone()
    camera_part[1, 0] = camera_part[1, 2 * bins] = 6.0    # frame 1's base azimuth, elevation
    arm_part[1, bins] = 6.0                               # frame 1's arm azimuth
    for has_view, camera_counts in (([True, True], True), ([True, False], False)):
        assert (abs(view_term(camera_part, has_view) - view_term(plain, has_view)) > 0.1) \
            == camera_counts
        assert abs(view_term(arm_part, has_view) - view_term(plain, has_view)) > 0.1


def test_camera_placement_reads_distance_and_elevation():
    # camera 2 m up and 2 m out along x, looking at the base: 2.83 m, 45 deg
    T_cam_base = np.linalg.inv(look_at(np.array([2.0, 0.0, 2.0]), np.zeros(3)))
    distance, elevation = camera_placement(T_cam_base)
    assert abs(distance - np.sqrt(8.0)) < 1e-9
    assert abs(elevation - 45.0) < 1e-9
