"""TAGModel: every node state with the right shape and units; backbones; pretrained loading."""
import dataclasses

import pytest
import torch

from robotag_ros.model import (NETWORK_OUTPUT_NAMES, ModelConfig, PretrainedWeightsError,
                               TAGModel, TAGOutputs)
from robotag_ros.tag import FORWARD_EDGES, NODES

TINY = dict(width_2d=8, width_3d=8, head_width=16, num_unproj_points=64, view_azimuth_bins=8,
            keypoint_depth_head=True)


@pytest.fixture(scope='module')
def robot(panda):  # conftest's session-wide Panda
    return panda


@pytest.fixture(scope='module')
def model(robot):
    torch.manual_seed(0)
    return TAGModel(robot, ModelConfig(**TINY)).eval()


def camera(batch, height, width):
    K = torch.tensor([[1.2 * width, 0.0, width / 2], [0.0, 1.2 * width, height / 2],
                      [0.0, 0.0, 1.0]])
    return K.expand(batch, 3, 3).clone()


@pytest.mark.parametrize('batch', [1, 4])
@pytest.mark.parametrize('height,width', [(64, 64), (96, 128)])
def test_shapes_and_units(model, robot, batch, height, width):
    torch.manual_seed(1)
    image, K = torch.rand(batch, 3, height, width), camera(batch, height, width)
    with torch.no_grad():
        out = model(image, K)
    n, k, N = robot.num_joints, robot.num_keypoints, robot.num_points
    hd, wd = height // 4, width // 4
    expected = {
        'depth_relative': (batch, 1, hd, wd), 'depth_metric': (batch, 1, hd, wd),
        'robot_mask': (batch, 1, hd, wd), 'depth_regulator': (batch,),
        'joint_angles_2d': (batch, n), 'joint_angles_3d': (batch, n),
        'rotation': (batch, 3, 3), 'translation': (batch, 3),
        'keypoints_2d': (batch, k, 2), 'keypoints_2d_heatmaps': (batch, k, hd, wd),
        'keypoints_3d_2d': (batch, k, 3), 'keypoints_3d_3d': (batch, k, 3),
        'keypoints_3d_fk_2d': (batch, k, 3), 'keypoints_3d_fk_3d': (batch, k, 3),
        'keypoints_2d_proj_2d': (batch, k, 2), 'keypoints_2d_proj_3d': (batch, k, 2),
        'points_fk_2d': (batch, N, 3), 'points_fk_3d': (batch, N, 3),
        'points_unproj_3d': (batch, 64, 3), 'points_unproj_valid': (batch, 64),
    }
    for name, shape in expected.items():
        assert tuple(getattr(out, name).shape) == shape, name
    assert out.features_2d.shape[:1] == (batch,) and out.image_hw == (height, width)
    for name, value in out.tensors():
        assert torch.isfinite(value.float()).all(), name
    limits = robot.joint_limits
    for joints in (out.joint_angles_2d, out.joint_angles_3d):  # radians within the URDF limits
        assert (joints >= limits[:, 0]).all() and (joints <= limits[:, 1]).all()
    eye = torch.eye(3).expand(batch, 3, 3)
    assert torch.allclose(out.rotation @ out.rotation.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(out.rotation), torch.ones(batch), atol=1e-5)
    # Metres: λ starts at k = sqrt(fx fy A_real / A_img) (A_real = 1 m², fx = fy = 1.2 W).
    k_m = 1.2 * width / (height * width) ** 0.5
    assert torch.allclose(out.depth_regulator, torch.full((batch,), k_m), atol=1e-4)
    assert (out.depth_metric > 0).all() and (out.translation[:, 2] > 0).all()
    assert torch.allclose(out.depth_relative.mean((1, 2, 3)), torch.ones(batch), atol=1e-4)
    assert torch.allclose(out.depth_metric,
                          out.depth_regulator[:, None, None, None] * out.depth_relative)
    assert (out.keypoints_3d_2d[..., 2] > 0).all()
    # Pixels: soft-argmax keypoints lie inside the image.
    uv = out.keypoints_2d
    assert (uv >= 0).all() and (uv[..., 0] <= width).all() and (uv[..., 1] <= height).all()
    assert out.T_cam_base.shape == (batch, 4, 4)


def test_outputs_hold_every_graph_node_and_modules_exist(model):
    fields = {f.name for f in dataclasses.fields(TAGOutputs)}
    assert {n.name for n in NODES} - {'image'} <= fields
    for edge in FORWARD_EDGES:   # the fixture's model has every optional head
        for module in edge.modules:
            assert isinstance(getattr(model, module), torch.nn.Module), module


def test_network_forward_is_tensors_only_and_assembles_to_forward(model):
    image, K = torch.rand(2, 3, 64, 64), camera(2, 64, 64)
    with torch.no_grad():
        network = model.forward_network(image, K)
        assert tuple(network) == NETWORK_OUTPUT_NAMES
        assert all(isinstance(v, torch.Tensor) for v in network.values())
        assembled = model.assemble(network, K, (64, 64))
        direct = model(image, K)
    for name, value in direct.tensors():
        assert torch.equal(value, getattr(assembled, name)), name


def test_bad_inputs_are_named(model):
    with pytest.raises(ValueError, match='image'):
        model(torch.rand(3, 64, 64), camera(1, 64, 64))
    with pytest.raises(ValueError, match='K must be'):
        model(torch.rand(2, 3, 64, 64), camera(1, 64, 64))
    with pytest.raises(ValueError, match='multiples of 16'):
        model(torch.rand(1, 3, 64, 72), camera(1, 64, 72))


def test_transformers_backbones_build_and_run(robot):
    config = ModelConfig(
        backbone_2d='resnet18', backbone_3d='depth_anything', head_width=16,
        num_unproj_points=32, depth_anything_input_size=56,
        resnet_config=dict(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1]),
        depth_anything_config=dict(
            backbone_config=dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                 intermediate_size=64),
            reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
            fusion_hidden_size=16, head_hidden_size=8))
    model = TAGModel(robot, config).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64), camera(1, 64, 64))
    assert out.features_2d.shape == (1, 32, 2, 2)
    assert out.depth_metric.shape == (1, 1, 16, 16) and (out.depth_metric > 0).all()


def test_pretrained_small_backbone_loads_and_mismatch_is_clear(robot, tmp_path):
    source = TAGModel(robot, ModelConfig(**TINY))
    path = tmp_path / 'backbone_2d.pt'
    torch.save(source.backbone_2d.state_dict(), path)
    loaded = TAGModel(robot, ModelConfig(**TINY, pretrained_2d=str(path)))
    for name, value in source.backbone_2d.state_dict().items():
        assert torch.equal(value, loaded.backbone_2d.state_dict()[name]), name
    wider = dict(TINY, width_2d=16)
    with pytest.raises(PretrainedWeightsError, match='backbone_2d.*do not match'):
        TAGModel(robot, ModelConfig(**wider, pretrained_2d=str(path)))
    with pytest.raises(FileNotFoundError, match='backbone_3d'):
        TAGModel(robot, ModelConfig(**TINY, pretrained_3d=str(tmp_path / 'none.pt')))


def test_pretrained_transformers_dir_loads_and_mismatch_is_clear(robot, tmp_path):
    from transformers import ResNetBackbone, ResNetConfig
    small = dict(embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                 layer_type='basic', out_features=['stage4'])
    ResNetBackbone(ResNetConfig(**small)).save_pretrained(tmp_path / 'resnet')
    config = ModelConfig(backbone_2d='resnet18', pretrained_2d=str(tmp_path / 'resnet'),
                         **dict(TINY, width_2d=8))
    model = TAGModel(robot, config)
    assert model.backbone_2d.out_channels == 32
    from robotag_ros.model.weights import load_pretrained
    torch.save({'not': torch.zeros(1)}, tmp_path / 'other.pt')
    with pytest.raises(PretrainedWeightsError, match='1 unexpected'):
        load_pretrained(ResNetBackbone, ResNetConfig(**small), str(tmp_path / 'other.pt'),
                        'backbone_2d')


def test_model_config_yaml_round_trip_and_errors(tmp_path):
    from robotag_ros.model import load_model_config, save_model_config
    assert load_model_config('large').backbone_3d == 'depth_anything'
    # ModelConfig's defaults are the small from-scratch model (older artifacts' sidecars rely on
    # them); the bundled default config is the pretrained EfficientNet one.
    assert load_model_config('small') == ModelConfig()
    assert load_model_config('default').backbone_2d == 'efficientnet_lite0'
    config = ModelConfig(loops_off=['keypoints'], num_unproj_points=128)
    config.loss.alpha['alpha3'] = 0.25
    save_model_config(config, tmp_path / 'model.yaml')
    assert load_model_config(tmp_path / 'model.yaml') == config
    (tmp_path / 'bad.yaml').write_text('model:\n  backbone_2d: small\n  widht_2d: 8\n')
    with pytest.raises(ValueError, match='widht_2d'):
        load_model_config(tmp_path / 'bad.yaml')
    (tmp_path / 'bad_weight.yaml').write_text('model:\n  loss:\n    alpha: {alpha7: 1.0}\n')
    with pytest.raises(ValueError, match='alpha7'):
        load_model_config(tmp_path / 'bad_weight.yaml')


def test_network_forward_exports_with_torch_export(model):
    """Static shapes and no data-dependent control flow: torch.export traces forward_network."""
    class TensorOnly(torch.nn.Module):
        def __init__(self, tag_model):
            super().__init__()
            self.tag_model = tag_model

        def forward(self, image, intrinsics):
            network = self.tag_model.forward_network(image, intrinsics)
            return tuple(network[name] for name in NETWORK_OUTPUT_NAMES)

    image, K = torch.rand(1, 3, 64, 64), camera(1, 64, 64)
    wrapper = TensorOnly(model).eval()
    exported = torch.export.export(wrapper, (image, K), strict=False)
    with torch.no_grad():
        expected = wrapper(image, K)
        produced = exported.module()(image, K)
    for name, a, b in zip(NETWORK_OUTPUT_NAMES, expected, produced):
        assert torch.allclose(a, b, atol=1e-5), name


def test_build_model_from_sidecar_dict_and_overrides(robot):
    from robotag_ros.model import build_model, load_model_config
    config = load_model_config('default', dict(TINY, loops_off=['joints'],
                                               loss={'alpha': {'alpha1': 0.5}}))
    assert config.width_2d == 8 and config.loss.alpha['alpha1'] == 0.5
    assert config.loss.alpha['alpha2'] == 1.0  # nested override keeps the other weights
    model = build_model(robot, config.to_dict())
    assert model.config == config
    assert 'align_joints' not in model.graph.active_terms()


def test_keypoint_pooled_features_read_f_under_each_heatmap():
    from robotag_ros.model.heads import keypoint_pooled_features
    features = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    logits = torch.full((2, 2, 16, 16), -1e4)        # heatmaps 4x finer than f
    logits[:, 0, 5, 9] = 0.0                          # keypoint 0 in f's cell (1, 2)
    logits[:, 1, 12:16, 0:4] = 0.0                    # keypoint 1 spread over f's cell (3, 0)
    pooled = keypoint_pooled_features(features, logits.requires_grad_())
    assert pooled.shape == (2, 2 * 3)
    assert torch.allclose(pooled[:, :3], features[:, :, 1, 2])
    assert torch.allclose(pooled[:, 3:], features[:, :, 3, 0])
    assert not pooled.requires_grad  # f carries no grad here; the heatmaps' weights never do


def test_joint_features_option_builds_and_rejects_unknown(robot):
    model = TAGModel(robot, ModelConfig(**TINY, joint_features='keypoints')).eval()
    out = model(torch.rand(2, 3, 64, 64), camera(2, 64, 64))
    assert out.joint_angles_2d.shape == (2, robot.num_joints)
    limits = robot.joint_limits
    inside = (out.joint_angles_2d >= limits[:, 0]) & (out.joint_angles_2d <= limits[:, 1])
    assert bool(inside.all())
    with pytest.raises(ValueError, match='joint_features'):
        ModelConfig(joint_features='attention')
