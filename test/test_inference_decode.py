"""Shared decoding: the consistency score on hand-made states, and the decoded robot states."""
import math

import pytest
import torch

from robotag_ros.geometry import chamfer_distance, make_transform, project_points
from robotag_ros.inference.decode import (ConsistencyScales, consistency_score,
                                          consistency_terms, decode_states, final_joint_angles,
                                          point_cloud_residual_m)
from robotag_ros.model.config import ModelConfig

K = torch.tensor([[[300.0, 0.0, 128.0], [0.0, 300.0, 128.0], [0.0, 0.0, 1.0]]])


def _pose():
    angle = 0.4
    rotation = torch.tensor([[[math.cos(angle), -math.sin(angle), 0.0],
                              [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]])
    return rotation, torch.tensor([[0.05, -0.1, 1.4]])


@pytest.fixture(scope='module')
def consistent_states(panda):
    """Node states of a robot both branches see identically (what a perfect TAG predicts)."""
    generator = torch.Generator().manual_seed(3)
    joints = panda.sample_joint_angles(1, generator=generator)
    rotation, translation = _pose()
    T_cam_base = make_transform(rotation, translation)
    keypoints_base, points_base = panda.keypoints_and_points(joints)
    keypoints_cam = keypoints_base @ rotation.transpose(1, 2) + translation[:, None]
    points_cam = points_base @ rotation.transpose(1, 2) + translation[:, None]
    return {
        'joint_angles_2d': joints.clone(), 'joint_angles_3d': joints.clone(),
        'keypoints_3d_2d': keypoints_cam.clone(), 'keypoints_3d_3d': keypoints_cam.clone(),
        'keypoints_3d_fk_2d': keypoints_cam.clone(),
        'keypoints_2d': project_points(keypoints_cam, K),
        'keypoints_2d_proj_2d': project_points(keypoints_cam, K),
        'points_fk_2d': points_cam,
        # The visible surface: a subset of the FK cloud, plus masked-out junk far away.
        'points_unproj_3d': torch.cat([points_cam[:, ::7], torch.full((1, 20, 3), 5.0)], 1),
        'points_unproj_valid': torch.cat([torch.ones(1, points_cam[:, ::7].shape[1], dtype=bool),
                                          torch.zeros(1, 20, dtype=bool)], 1),
        'T_cam_base': T_cam_base,
    }


def test_perfectly_consistent_states_score_one(consistent_states):
    terms = consistency_terms(consistent_states)
    assert set(terms) == {'joints_rad', 'keypoints_3d_m', 'keypoints_3d_fk_m',
                          'reprojection_px', 'point_cloud_m'}
    for name, value in terms.items():
        assert float(value) == pytest.approx(0.0, abs=1e-3), name
    assert float(consistency_score(terms)) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize('edge,term', [
    ('joint_angles_3d', 'joints_rad'), ('keypoints_3d_3d', 'keypoints_3d_m'),
    ('keypoints_2d', 'reprojection_px'), ('points_unproj_3d', 'point_cloud_m')])
def test_score_falls_as_the_branches_disagree(consistent_states, edge, term):
    scores, residuals = [], []
    for offset in (0.0, 0.01, 0.05, 0.2):
        states = dict(consistent_states)
        scale = 100.0 if edge == 'keypoints_2d' else 1.0  # pixels vs metres/radians
        states[edge] = states[edge] + offset * scale
        terms = consistency_terms(states)
        residuals.append(float(terms[term]))
        scores.append(float(consistency_score(terms)))
    assert residuals == sorted(residuals) and residuals[-1] > residuals[0] + 1e-3
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert 0.0 < scores[-1] < 0.9


def test_every_edge_off_by_its_scale_scores_exp_minus_one():
    scales = ConsistencyScales()
    terms = {'joints_rad': torch.tensor([scales.joints_rad]),
             'keypoints_3d_m': torch.tensor([scales.keypoints_3d_m]),
             'keypoints_3d_fk_m': torch.tensor([scales.keypoints_3d_m]),
             'reprojection_px': torch.tensor([scales.reprojection_px]),
             'point_cloud_m': torch.tensor([scales.point_cloud_m])}
    assert float(consistency_score(terms)) == pytest.approx(math.exp(-1.0), rel=1e-6)


def test_point_cloud_residual_matches_the_geometry_chamfer():
    generator = torch.Generator().manual_seed(0)
    unproj, fk = torch.rand(2, 50, 3, generator=generator), torch.rand(2, 300, 3,
                                                                       generator=generator)
    valid = torch.rand(2, 50, generator=generator) > 0.3
    expected = chamfer_distance(unproj, fk, bidirectional=False, mask_a=valid).sqrt()
    torch.testing.assert_close(point_cloud_residual_m(unproj, fk, valid), expected)
    assert float(point_cloud_residual_m(unproj, fk, torch.zeros(2, 50, dtype=bool))[0]) == 0.0


@pytest.mark.parametrize('joint_source', ['2d', '3d', 'mean'])
def test_decoded_keypoints_follow_the_reported_joints(panda, consistent_states, joint_source):
    rotation, translation = _pose()
    generator = torch.Generator().manual_seed(5)
    network = {
        'joint_angles_2d': panda.sample_joint_angles(1, generator=generator),
        'joint_angles_3d': panda.sample_joint_angles(1, generator=generator),
        'rotation': rotation, 'translation': translation,
        'keypoints_2d': torch.rand(1, panda.num_keypoints, 2) * 256,
        'keypoints_3d_2d': consistent_states['keypoints_3d_2d'],
        'keypoints_3d_3d': consistent_states['keypoints_3d_3d'],
        'depth_regulator': torch.tensor([1.4]), 'depth_metric': torch.full((1, 1, 16, 16), 1.4),
        'robot_mask': torch.randn(1, 1, 16, 16, generator=generator),
    }
    config = ModelConfig(num_unproj_points=32)
    states = decode_states(network, panda, K, (64, 64), config, joint_source)
    joints = final_joint_angles(network, joint_source)
    torch.testing.assert_close(states['joint_angles'], joints)
    expected = panda.keypoints(joints) @ rotation.transpose(1, 2) + translation[:, None]
    torch.testing.assert_close(states['keypoints_3d'], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(states['keypoints_2d_final'], project_points(expected, K))
    for branch in ('2d', '3d'):
        fk = panda.keypoints(network[f'joint_angles_{branch}']) @ rotation.transpose(1, 2) \
            + translation[:, None]
        torch.testing.assert_close(states[f'keypoints_3d_fk_{branch}'], fk, atol=1e-5,
                                   rtol=1e-5)
    assert states['points_unproj_3d'].shape == (1, 32, 3)
    assert states['points_fk_2d'].shape == (1, panda.num_points, 3)
    with pytest.raises(ValueError, match="joint_source must be one of"):
        decode_states(network, panda, K, (64, 64), config, 'fused')
