"""Test-time fitting of joints and camera to 2D keypoints (robotag_ros.inference.fitting)."""
import math

import numpy as np
import pytest
import torch

from robotag_ros.data.synthetic.camera_sampling import look_at
from robotag_ros.geometry import geodesic_angle, project_points, transform_points
from robotag_ros.inference.fitting import (FitConfig, camera_from_joints_pnp, fit_robot_pose,
                                           keypoint_kinematics)

INTRINSICS = torch.tensor([[615.0, 0.0, 320.0], [0.0, 615.0, 240.0], [0.0, 0.0, 1.0]],
                          dtype=torch.float64)


def _rotation(axis_angle: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(axis_angle)
    k = axis_angle / angle
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def _scenes(robot, count, seed):
    """Random joints within limits, cameras 1-2 m away looking at the robot, exact keypoints."""
    rng = np.random.default_rng(seed)
    joints = robot.sample_joint_angles(count, torch.Generator().manual_seed(seed)).double()
    T_cam_base = np.empty((count, 4, 4))
    for i in range(count):
        azimuth, elevation = rng.uniform(0, 2 * math.pi), rng.uniform(-0.1, 0.6)
        target = np.array([0.0, 0.0, rng.uniform(0.2, 0.6)])
        eye = target + rng.uniform(1.0, 2.0) * np.array([
            math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation)])
        T_cam_base[i] = np.linalg.inv(look_at(eye, target, roll_rad=rng.uniform(-0.2, 0.2)))
    T_cam_base = torch.from_numpy(T_cam_base)
    intrinsics = INTRINSICS.expand(count, 3, 3)
    points_cam = transform_points(T_cam_base, robot.keypoints(joints))
    return joints, T_cam_base, intrinsics, project_points(points_cam, intrinsics), points_cam


def _perturbed_start(robot, joints, T_cam_base, seed, joint_deg=15.0, camera_deg=5.0,
                     camera_m=0.1):
    """Starts (B, 1, ...) off by joint_deg on every joint and camera_deg / camera_m."""
    rng = np.random.default_rng(seed)
    signs = torch.from_numpy(rng.choice([-1.0, 1.0], size=tuple(joints.shape)))
    start_joints = robot.clamp_to_limits(joints + math.radians(joint_deg) * signs)
    start_T = T_cam_base.clone()
    for i in range(len(joints)):
        axis, direction = rng.normal(size=3), rng.normal(size=3)
        rotation = _rotation(axis / np.linalg.norm(axis) * math.radians(camera_deg))
        start_T[i, :3, :3] = torch.from_numpy(rotation) @ start_T[i, :3, :3]
        start_T[i, :3, 3] += torch.from_numpy(direction / np.linalg.norm(direction) * camera_m)
    return start_joints[:, None], start_T[:, None]


def _joint_error_deg(fit, joints):
    return (fit.joint_angles - joints).abs().rad2deg()


def _link1_error(robot, fit, joints, T_cam_base):
    """Camera pose relative to link 1 (rotation deg, translation m): the observable part.

    Joint 1 and the camera's rotation about the base z axis are one unknown here: every keypoint
    but the base origin (on joint 1's axis) turns with joint 1.
    """
    def T_cam_link1(q, T):
        return T @ robot.link_poses(q, ['panda_link1'])['panda_link1']
    truth, ours = T_cam_link1(joints, T_cam_base), T_cam_link1(fit.joint_angles, fit.T_cam_base)
    angle = geodesic_angle(ours[:, :3, :3], truth[:, :3, :3]).rad2deg()
    return angle, (ours[:, :3, 3] - truth[:, :3, 3]).norm(dim=-1)


@pytest.mark.parametrize('robot_fixture', ['panda', 'kuka'])
def test_fast_kinematics_equals_the_robot_model(robot_fixture, request):
    robot = request.getfixturevalue(robot_fixture)
    kinematics = keypoint_kinematics(robot)
    joints = robot.sample_joint_angles(200, torch.Generator().manual_seed(0)).double()
    keypoints, axes, origins = kinematics(joints.numpy())
    reference = robot.keypoints(joints)
    assert np.abs(keypoints - reference.numpy()).max() < 1e-6
    # The analytic joint Jacobian against finite differences of the model itself.
    jacobian = kinematics.jacobian(keypoints, axes, origins)                    # (M, n, K, 3)
    for joint in range(robot.num_joints):
        moved = joints.clone()
        moved[:, joint] += 1e-6
        numeric = (robot.keypoints(moved) - reference) / 1e-6
        assert np.abs(jacobian[:, joint] - numeric.numpy()).max() < 1e-5


@pytest.mark.parametrize('with_depths', [False, True])
def test_fit_recovers_joints_and_keypoints_from_a_perturbed_start(panda, with_depths):
    joints, T_cam_base, intrinsics, keypoints_2d, points_cam = _scenes(panda, 48, seed=1)
    start_joints, start_T = _perturbed_start(panda, joints, T_cam_base, seed=2)
    weights = torch.ones(keypoints_2d.shape[:2], dtype=torch.float64)
    depths = points_cam[..., 2] if with_depths else None
    fit = fit_robot_pose(panda, keypoints_2d, weights, intrinsics, start_joints, start_T,
                         keypoint_depths_m=depths)
    error = _joint_error_deg(fit, joints)
    worst_2_to_6 = error[:, 1:6].amax(dim=1)
    link1_deg, link1_m = _link1_error(panda, fit, joints, T_cam_base)
    worst_px = fit.residual_px.amax(dim=1)
    print('q90: joints 2-6', worst_2_to_6.quantile(0.9).item(), 'deg;',
          worst_px.quantile(0.9).item(), 'px; link 1', link1_deg.quantile(0.9).item(), 'deg',
          link1_m.quantile(0.9).item(), 'm')
    # Joint 1 itself is not observable (see _link1_error): its observable part is checked.
    assert worst_2_to_6.quantile(0.9) < 1.0
    assert worst_px.quantile(0.9) < 0.5
    assert link1_deg.quantile(0.9) < 0.5 and link1_m.quantile(0.9) < 0.005
    assert error[:, 6].median() < 1.0
    assert torch.isfinite(fit.cost).all() and (fit.start_index == 0).all()


def test_robust_loss_rejects_outliers_that_least_squares_follows(panda):
    joints, T_cam_base, intrinsics, keypoints_2d, _ = _scenes(panda, 48, seed=3)
    start_joints, start_T = _perturbed_start(panda, joints, T_cam_base, seed=4)
    generator = torch.Generator().manual_seed(5)
    noise = 2.0 * torch.randn(keypoints_2d.shape, generator=generator, dtype=torch.float64)
    noisy = keypoints_2d + noise
    for frame in range(len(noisy)):  # two keypoints per frame 150 px off, in any direction
        chosen = torch.randperm(noisy.shape[1], generator=generator)[:2]
        angle = 2 * math.pi * torch.rand(2, generator=generator, dtype=torch.float64)
        noisy[frame, chosen] += 150.0 * torch.stack((angle.cos(), angle.sin()), dim=-1)
    weights = torch.ones(noisy.shape[:2], dtype=torch.float64)

    def median_error(keypoints, config=FitConfig()):
        fit = fit_robot_pose(panda, keypoints, weights, intrinsics, start_joints, start_T, config)
        return _joint_error_deg(fit, joints)[:, 1:6].median().item()

    noise_only = median_error(keypoints_2d + noise)  # the floor that 2 px of noise sets
    robust = median_error(noisy)
    least_squares = median_error(noisy, FitConfig(robust_scale_px=1e5))
    print('noise only', noise_only, 'robust', robust, 'least squares', least_squares)
    assert robust < 1.5 * noise_only   # two keypoints of 15 lost cost some precision
    assert least_squares > 4.0 * robust


def test_zero_weight_keypoints_are_ignored(panda):
    joints, T_cam_base, intrinsics, keypoints_2d, _ = _scenes(panda, 16, seed=6)
    start_joints, start_T = _perturbed_start(panda, joints, T_cam_base, seed=7)
    weights = torch.ones(keypoints_2d.shape[:2], dtype=torch.float64)
    weights[:, [2, 9, 12]] = 0.0
    garbage = keypoints_2d.clone()
    garbage[:, [2, 9]] += 300.0
    garbage[:, 12] = math.nan
    clean = fit_robot_pose(panda, keypoints_2d, weights, intrinsics, start_joints, start_T)
    fit = fit_robot_pose(panda, garbage, weights, intrinsics, start_joints, start_T)
    assert torch.allclose(fit.joint_angles, clean.joint_angles, atol=1e-9)
    assert torch.allclose(fit.T_cam_base, clean.T_cam_base, atol=1e-9)
    assert torch.allclose(fit.cost, clean.cost, atol=1e-9)
    assert _joint_error_deg(fit, joints)[:, 1:6].amax(dim=1).median() < 1.0


def test_starts_behind_the_camera_or_past_the_limits_stay_finite_and_within_limits(panda):
    joints, T_cam_base, intrinsics, keypoints_2d, _ = _scenes(panda, 16, seed=8)
    limits = panda.joint_limits.double()
    start_joints = torch.where(torch.arange(16)[:, None] % 2 == 0, limits[:, 1] + 1.0,
                               limits[:, 0] - 1.0)[:, None]
    start_T = T_cam_base.clone()[:, None]
    start_T[:, 0, :3, :3] = torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64)) \
        @ start_T[:, 0, :3, :3]  # turned 180 deg about its y axis: the robot is behind it
    start_T[:, 0, :3, 3] *= torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64)
    points_z = transform_points(start_T[:, 0], panda.keypoints(panda.clamp_to_limits(
        start_joints[:, 0])))[..., 2]
    assert (points_z < 0).all()
    weights = torch.ones(keypoints_2d.shape[:2], dtype=torch.float64)
    fit = fit_robot_pose(panda, keypoints_2d, weights, intrinsics, start_joints, start_T)
    for value in (fit.joint_angles, fit.T_cam_base, fit.residual_px, fit.cost):
        assert torch.isfinite(value).all()
    assert (fit.joint_angles >= limits[:, 0]).all() and (fit.joint_angles <= limits[:, 1]).all()


def test_the_best_of_several_starts_wins(panda):
    joints, T_cam_base, intrinsics, keypoints_2d, _ = _scenes(panda, 24, seed=9)
    good_joints, good_T = _perturbed_start(panda, joints, T_cam_base, seed=10)
    far_joints = panda.sample_joint_angles(24, torch.Generator().manual_seed(11)).double()
    far_joints, far_T = _perturbed_start(panda, far_joints, T_cam_base, seed=12,
                                         camera_deg=90.0, camera_m=0.5)
    weights = torch.ones(keypoints_2d.shape[:2], dtype=torch.float64)

    def fit(start_joints, start_T):
        return fit_robot_pose(panda, keypoints_2d, weights, intrinsics, start_joints, start_T)

    good, far = fit(good_joints, good_T), fit(far_joints, far_T)
    both = fit(torch.cat((far_joints, good_joints), 1), torch.cat((far_T, good_T), 1))
    # Every frame keeps its lower-cost start, with the same result as that start alone.
    assert torch.equal(both.start_index, (good.cost < far.cost).long())
    assert torch.allclose(both.cost, torch.minimum(good.cost, far.cost), rtol=1e-6, atol=1e-9)
    winner = both.start_index[:, None] == 1
    assert torch.allclose(both.joint_angles,
                          torch.where(winner, good.joint_angles, far.joint_angles), atol=1e-6)
    # The far start alone mostly fails; there the good one wins, and the pair does as well.
    far_fails = far.residual_px.amax(dim=1) > 5.0
    assert far_fails.float().mean() > 0.5
    assert (both.start_index[far_fails] == 1).all()
    assert _joint_error_deg(both, joints)[:, 1:6].amax(dim=1).quantile(0.9) < 1.0
    # A start that is not finite (a failed PnP) never wins.
    nan_T = torch.full_like(good_T, math.nan)
    with_nan = fit(torch.cat((good_joints, good_joints), 1), torch.cat((nan_T, good_T), 1))
    assert (with_nan.start_index == 1).all()
    assert torch.allclose(with_nan.joint_angles, good.joint_angles, atol=1e-9)


def test_camera_from_joints_pnp_recovers_the_camera(panda):
    joints, T_cam_base, intrinsics, keypoints_2d, _ = _scenes(panda, 16, seed=13)
    weights = torch.ones(keypoints_2d.shape[:2], dtype=torch.float64)
    weights[0, 3:] = 0.0  # 3 usable keypoints: too few
    weights[1, :4] = 0.2  # below min_weight: ignored, 10 left
    T = camera_from_joints_pnp(panda, joints, keypoints_2d, weights, intrinsics)
    assert torch.isnan(T[0]).all()
    angle = geodesic_angle(T[1:, :3, :3], T_cam_base[1:, :3, :3]).rad2deg()
    assert angle.max() < 0.05
    assert (T[1:, :3, 3] - T_cam_base[1:, :3, 3]).norm(dim=-1).max() < 1e-3
    assert torch.equal(T[1:, 3], T_cam_base[1:, 3])


def test_swapped_look_alike_keypoints_are_matched_when_asked(panda):
    """The fingertips swapped on every other frame: with ``reassign_every`` the fit matches each
    to the nearer projection and reprojects every keypoint; as labelled it cannot on many of
    them (a swap is no pose of the arm; joint 7 half a turn mimics it only from some views)."""
    joints, T_cam_base, intrinsics, keypoints_2d, _ = _scenes(panda, 24, seed=5)
    start_joints, start_T = _perturbed_start(panda, joints, T_cam_base, seed=6, joint_deg=5.0,
                                             camera_deg=2.0, camera_m=0.03)
    (i, j), = panda.description.interchangeable_keypoints
    swapped = keypoints_2d.clone()
    swapped[::2, [i, j]] = keypoints_2d[::2, [j, i]]
    weights = torch.ones(keypoints_2d.shape[:2], dtype=torch.float64)
    matched = fit_robot_pose(panda, swapped, weights, intrinsics, start_joints, start_T,
                             FitConfig(reassign_every=5))
    labelled = fit_robot_pose(panda, swapped, weights, intrinsics, start_joints, start_T,
                              FitConfig(reassign_every=0))
    assert matched.residual_px.amax(dim=1).quantile(0.9) < 0.5
    assert _joint_error_deg(matched, joints)[:, 1:6].amax(dim=1).quantile(0.9) < 1.0
    assert labelled.residual_px[::2, [i, j]].amax(dim=1).quantile(0.75) > 5.0
