"""The loops closed at inference: decoded states -> the fit's joints, camera and keypoints."""
import math

import pytest
import torch

from robotag_ros.geometry import make_transform
from robotag_ros.inference.loop_closing import close_loops
from test_fitting import _perturbed_start, _scenes


def _states(robot, joints, T_cam_base, keypoints_px, seed):
    """What decode_states hands over, from a network whose heatmaps are right but whose direct
    heads are off by 15 deg per joint and 5 deg / 10 cm on the camera."""
    start_joints, start_T = _perturbed_start(robot, joints, T_cam_base, seed)
    q = start_joints[:, 0].float()
    T = start_T[:, 0].float()
    count = len(joints)
    return {
        'joint_angles_2d': q, 'joint_angles_3d': q.flip(0), 'joint_angles': q,
        'T_cam_base': make_transform(T[:, :3, :3], T[:, :3, 3]),
        'keypoints_2d_peak': keypoints_px.float(),
        'keypoints_2d_confidence': torch.ones(count, robot.num_keypoints),
        'keypoints_3d': torch.zeros(count, robot.num_keypoints, 3),
        'keypoints_2d_final': torch.zeros(count, robot.num_keypoints, 2),
    }


def test_close_loops_recovers_every_joint_from_good_keypoints(panda):
    joints, T_cam_base, intrinsics, keypoints_px, _ = _scenes(panda, 16, seed=11)
    states = _states(panda, joints, T_cam_base, keypoints_px, seed=12)
    fitted = close_loops(states, panda, intrinsics.float())
    error_deg = (fitted['joint_angles'].double() - joints).abs().rad2deg()
    # With the base keypoint joint 1 is observable too (without it, it trades off against the
    # camera's yaw); the direct heads started 15 deg off on every joint.
    assert float(error_deg[:, :6].median()) < 0.5
    assert float(error_deg[:, :6].quantile(0.9)) < 2.0
    assert float(fitted['fit_residual_px'].median()) < 0.5
    reprojection = (fitted['keypoints_2d_final'].double() - keypoints_px).norm(dim=-1)
    assert float(reprojection.median()) < 0.5
    # The reported camera is the fit's and agrees with the truth.
    translation_mm = (fitted['T_cam_base'][:, :3, 3].double() - T_cam_base[:, :3, 3]).norm(
        dim=-1) * 1000
    assert float(translation_mm.median()) < 5.0
    assert fitted['joint_angles'].shape == states['joint_angles'].shape
    assert not math.isnan(float(fitted['fit_residual_px'].sum()))


def test_known_joints_are_reported_and_only_the_camera_is_fitted(panda):
    joints, T_cam_base, intrinsics, keypoints_px, _ = _scenes(panda, 16, seed=21)
    states = _states(panda, joints, T_cam_base, keypoints_px, seed=22)
    # Two keypoints per frame far off (outliers): the robust fit must keep the camera anyway.
    noisy = states['keypoints_2d_peak'].clone()
    noisy[:, 2] += 60.0
    noisy[:, 9] -= 45.0
    states['keypoints_2d_peak'] = noisy
    fitted = close_loops(states, panda, intrinsics.float(), known_joints=joints.float())
    assert torch.equal(fitted['joint_angles'], joints.float())
    translation_mm = (fitted['T_cam_base'][:, :3, 3].double() - T_cam_base[:, :3, 3]).norm(
        dim=-1) * 1000
    relative = fitted['T_cam_base'][:, :3, :3].double().transpose(1, 2) @ T_cam_base[:, :3, :3]
    rotation_deg = torch.rad2deg(torch.acos(((relative.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2)
                                            .clamp(-1, 1)))
    assert float(translation_mm.max()) < 5.0
    assert float(rotation_deg.max()) < 0.5
    # The same frames without the joints: the outliers and the 15 deg start cost accuracy.
    free = close_loops(states, panda, intrinsics.float())
    free_error = (free['joint_angles'].double() - joints).abs().max()
    assert float(free_error) > 1e-3


def test_known_joints_must_be_finite(panda):
    joints, T_cam_base, intrinsics, keypoints_px, _ = _scenes(panda, 2, seed=23)
    states = _states(panda, joints, T_cam_base, keypoints_px, seed=24)
    joints = joints.clone()
    joints[0, 3] = float('nan')
    with pytest.raises(ValueError, match='finite'):
        close_loops(states, panda, intrinsics.float(), known_joints=joints.float())


def test_the_view_prior_ranks_candidates_and_the_depth_term_is_read(panda):
    """With view logits that put the camera 120 deg round the base and a weight that outbids
    the keypoints, the fit lands there (camera and joint 1 turned together); with the view off
    it stays at the truth. A keypoint depth head's relative depths enter as a term of their own."""
    from robotag_ros.geometry.view import camera_azimuth_elevation, soft_view_targets
    from robotag_ros.inference.loop_closing import LoopClosingConfig
    joints, T_cam_base, intrinsics, keypoints_px, _ = _scenes(panda, 4, seed=31)
    states = _states(panda, joints, T_cam_base, keypoints_px, seed=32)
    azimuth, _ = camera_azimuth_elevation(T_cam_base)
    turned = T_cam_base.clone()
    angle = torch.tensor(2.0 * math.pi / 3)
    rotation = torch.eye(4, dtype=T_cam_base.dtype)
    rotation[:2, :2] = torch.tensor([[torch.cos(angle), torch.sin(angle)],
                                     [-torch.sin(angle), torch.cos(angle)]])
    turned = T_cam_base @ rotation                       # the camera 120 deg further round
    base, arm, elevation = soft_view_targets(turned.float(), 12, 6)
    states['view_logits'] = 20.0 * torch.cat([base, torch.zeros_like(base), elevation], -1)
    states['keypoint_relative_depth'] = torch.zeros(4, panda.num_keypoints)
    honest = close_loops(dict(states), panda, intrinsics.float(),
                         LoopClosingConfig(view_weight=0.0, keypoint_depth_weight=0.0),
                         view_azimuth_bins=12, keypoint_depths=True)
    swayed = close_loops(dict(states), panda, intrinsics.float(),
                         LoopClosingConfig(view_weight=1.0e5, view_starts=True,
                                           keypoint_depth_weight=0.0),
                         view_azimuth_bins=12, keypoint_depths=True)
    wrap = lambda a: torch.remainder(a + math.pi, 2 * math.pi) - math.pi  # noqa: E731
    honest_azimuth, _ = camera_azimuth_elevation(honest['T_cam_base'].double())
    swayed_azimuth, _ = camera_azimuth_elevation(swayed['T_cam_base'].double())
    assert float(wrap(honest_azimuth - azimuth).abs().median()) < math.radians(3)
    assert float(wrap(swayed_azimuth - azimuth - angle).abs().median()) < math.radians(20)
    # Relative depths all zero (a flat robot facing the camera) cost a fit that reads them.
    deep = close_loops(dict(states), panda, intrinsics.float(),
                       LoopClosingConfig(view_weight=0.0, keypoint_depth_weight=1.0e4),
                       view_azimuth_bins=12, keypoint_depths=True)
    assert float(deep['fit_residual_px'].median()) > float(honest['fit_residual_px'].median())


def test_a_tracked_frame_starts_from_the_previous_robot(panda, monkeypatch):
    """Tracking hands the previous frame's robot over: one more start, fewer spread ones, and
    it finds the arm where the network's direct guesses and the spread would not."""
    from robotag_ros.inference import loop_closing
    from robotag_ros.inference.loop_closing import LoopClosingConfig

    joints, T_cam_base, intrinsics, keypoints_px, _ = _scenes(panda, 8, seed=31)
    states = _states(panda, joints, T_cam_base, keypoints_px, seed=32)
    folded = torch.zeros_like(states['joint_angles_2d'])
    folded[:, 3] = -1.5                        # direct heads: one folded pose for every frame
    states['joint_angles_2d'] = states['joint_angles_3d'] = folded
    moved = joints.float() + 0.03              # the arm moved ~2 deg per joint since
    previous = (moved, T_cam_base.float())
    counts = []
    screen = loop_closing._screen
    monkeypatch.setattr(loop_closing, '_screen', lambda states, robot, intrinsics, joints,
                        *rest: counts.append(joints.shape[1]) or screen(
                            states, robot, intrinsics, joints, *rest))
    config = LoopClosingConfig(random_starts=8, tracked_random_starts=0)
    warm = close_loops(states, panda, intrinsics.float(), config, previous=previous)
    close_loops(states, panda, intrinsics.float(), config)
    # p² with the regressed camera, p², p³ (with PnP cameras), and the previous robot; cold:
    # the 8 spread starts instead of the previous robot
    assert counts == [4, 11]
    error_deg = (warm['joint_angles'].double() - joints).abs().rad2deg()
    assert float(error_deg[:, :6].max()) < 0.5
