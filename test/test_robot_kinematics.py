"""Forward kinematics of the robot prior against PyBullet's own, independent kinematics."""
import numpy as np
import pybullet
import pytest
import torch


def _pybullet_link_positions(robot, joint_vectors):
    """Link-frame origins (base frame) from PyBullet for each configuration: (B, L, 3)."""
    client = pybullet.connect(pybullet.DIRECT)
    try:
        body = pybullet.loadURDF(str(robot.description.urdf_path), useFixedBase=True,
                                 physicsClientId=client)
        joint_index, link_index = {}, {}
        for i in range(pybullet.getNumJoints(body, physicsClientId=client)):
            info = pybullet.getJointInfo(body, i, physicsClientId=client)
            joint_index[info[1].decode()] = i
            link_index[info[12].decode()] = i
        chain_joints = robot._chain.get_joint_parameter_names()
        links = [k for k in robot.keypoint_links if k != robot.base_frame]
        out = np.zeros((len(joint_vectors), len(links), 3))
        for b, q in enumerate(joint_vectors):
            full = robot.full_joint_vector(torch.as_tensor(q[None], dtype=torch.float32))[0]
            for name, value in zip(chain_joints, full.tolist()):
                pybullet.resetJointState(body, joint_index[name], value, physicsClientId=client)
            for k, link in enumerate(links):
                state = pybullet.getLinkState(body, link_index[link],
                                              computeForwardKinematics=True,
                                              physicsClientId=client)
                out[b, k] = state[4]  # worldLinkFramePosition: the URDF link frame, not the COM
        return links, out
    finally:
        pybullet.disconnect(client)


@pytest.mark.parametrize('robot_fixture', ['panda', 'kuka'])
def test_fk_matches_pybullet_on_random_configurations(robot_fixture, request):
    robot = request.getfixturevalue(robot_fixture)
    generator = torch.Generator().manual_seed(0)
    joint_angles = robot.sample_joint_angles(300, generator=generator).double()
    links, expected = _pybullet_link_positions(robot, joint_angles.numpy())
    poses = robot.link_poses(joint_angles, links)
    ours = torch.stack([poses[link][:, :3, 3] for link in links], dim=1).numpy()
    assert np.abs(ours - expected).max() < 1e-5


def test_keypoints_are_link_origins_and_points_follow_links(panda):
    joint_angles = panda.sample_joint_angles(3, generator=torch.Generator().manual_seed(1))
    keypoints, points = panda.keypoints_and_points(joint_angles)
    poses = panda.link_poses(joint_angles)
    for k, (link, spec) in enumerate(zip(panda.keypoint_links, panda.description.keypoints)):
        # DREAM's keypoints are link origins; the extra ones sit at an offset in the link frame.
        offset = torch.tensor(spec.offset_m, dtype=keypoints.dtype)
        expected = poses[link][:, :3, :3] @ offset + poses[link][:, :3, 3]
        assert torch.allclose(keypoints[:, k], expected, atol=1e-6)
        if k < 7:
            assert not any(spec.offset_m)
    assert points.shape == (3, panda.num_points, 3)
    # Moving only the last joint leaves every point on links before it where it was.
    moved = joint_angles.clone()
    moved[:, 6] += 0.5
    points_moved = panda.point_cloud(moved)
    before_wrist = torch.isin(panda._points_link_index, torch.tensor(
        [panda.mesh_links.index(f'panda_link{i}') for i in range(7)]))
    assert torch.allclose(points[:, before_wrist], points_moved[:, before_wrist], atol=1e-6)
    assert not torch.allclose(points[:, ~before_wrist], points_moved[:, ~before_wrist], atol=1e-3)


def test_panda_reach_is_physical(panda):
    """The hand never lies further from the base than the arm can reach (~1.2 m incl. hand)."""
    keypoints = panda.keypoints(panda.sample_joint_angles(500))
    hand = panda.keypoint_names.index('panda_hand')
    assert keypoints[:, hand].norm(dim=-1).max() < 1.25
    assert torch.allclose(keypoints[:, 1], torch.tensor([0.0, 0.0, 0.333]).expand(500, 3),
                          atol=1e-6)


def test_gradients_reach_joint_angles(panda):
    joint_angles = panda.sample_joint_angles(2).requires_grad_()
    keypoints, points = panda.keypoints_and_points(joint_angles)
    (keypoints.square().sum() + points.square().sum()).backward()
    assert torch.isfinite(joint_angles.grad).all()
    # Every estimated joint moves some point, so every joint gets gradient.
    assert (joint_angles.grad.abs() > 0).all()


def test_sampled_joint_angles_respect_limits(kuka):
    joint_angles = kuka.sample_joint_angles(1000)
    assert (joint_angles >= kuka.joint_limits[:, 0]).all()
    assert (joint_angles <= kuka.joint_limits[:, 1]).all()
    clamped = kuka.clamp_to_limits(joint_angles * 3)
    assert (clamped <= kuka.joint_limits[:, 1]).all()
    assert (clamped >= kuka.joint_limits[:, 0]).all()
