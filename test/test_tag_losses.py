"""Losses: loop terms and gradients (eq. 19), label-dropped supervised terms (eq. 20), overfit."""
import pytest
import torch

from robotag_ros.geometry import make_transform, project_points, transform_points
from robotag_ros.losses import TAGLoss, align_term_per_item
from robotag_ros.model import ModelConfig, TAGModel
from robotag_ros.tag import ALIGN_TERMS, TAGGraph
from robotag_ros.tag.graph import ALIGN_TERM_BY_NAME

TINY = dict(width_2d=8, width_3d=8, head_width=16, num_unproj_points=64)
LABELS = ('joint_angles', 'T_cam_base', 'keypoints_3d', 'keypoints_2d', 'mask', 'depth')


@pytest.fixture(scope='module')
def robot(panda):  # conftest's session-wide Panda
    return panda


def make_loss(robot, **overrides):
    config = ModelConfig(**dict(TINY, **overrides))
    return TAGLoss(TAGGraph(config.loops_off), config, robot=robot)


def tiny_model(robot, **overrides):
    torch.manual_seed(0)
    model = TAGModel(robot, ModelConfig(**dict(TINY, **overrides)))
    # Every unprojected point counts as robot, so the point-cloud terms are non-trivial.
    torch.nn.init.constant_(model.mask_head.net[-1].bias, 5.0)
    return model


def synthetic_batch(robot, batch, seed, height=64, width=64, labelled=True):
    generator = torch.Generator().manual_seed(seed)
    q = robot.sample_joint_angles(batch, generator=generator)
    rotation = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    noise = torch.randn(batch, 3, generator=generator)
    translation = torch.tensor([0.0, 0.3, 1.6]) + 0.05 * noise
    T = make_transform(rotation.expand(batch, 3, 3), translation)
    K = torch.tensor([[80.0, 0, width / 2], [0, 80.0, height / 2], [0, 0, 1]]).expand(
        batch, 3, 3).clone()
    keypoints_3d = transform_points(T, robot.keypoints(q))
    flags = torch.full((batch,), labelled)
    out = dict(image=torch.rand(batch, 3, height, width, generator=generator), K=K,
               joint_angles=q, T_cam_base=T, keypoints_3d=keypoints_3d,
               keypoints_2d=project_points(keypoints_3d, K),
               mask=(torch.rand(batch, 1, height, width, generator=generator) > 0.7).float(),
               depth=1.5 + torch.rand(batch, 1, height, width, generator=generator))
    out.update({f'has_{label}': flags.clone() for label in LABELS})
    return out


def module_grad(model, name):
    grads = [p.grad.abs().sum() for p in getattr(model, name).parameters() if p.grad is not None]
    return float(sum(grads)) if grads else 0.0


@pytest.mark.parametrize('term', [t.name for t in ALIGN_TERMS])
def test_each_loop_term_trains_every_network_on_its_loop(robot, term):
    model = tiny_model(robot)
    batch = synthetic_batch(robot, 2, seed=1)
    outputs = model(batch['image'], batch['K'])
    assert bool(outputs.points_unproj_valid.all())
    value = align_term_per_item(ALIGN_TERM_BY_NAME[term], outputs).mean()
    assert torch.isfinite(value) and value > 0
    value.backward()
    graph = TAGGraph()
    loop = graph.loop_for_term(term)
    spec = ALIGN_TERM_BY_NAME[term]
    reached = graph.upstream_modules(spec.node_a) | graph.upstream_modules(spec.node_b)
    assert set(loop.modules) <= reached
    for module in reached:
        assert module_grad(model, module) > 0, f'{term}: no gradient reaches {module}'
    # And nothing off the loop's dependency cone moves (the loss is local to the loop).
    for module in {'mask_head'} - reached:
        assert module_grad(model, module) == 0


def test_switching_a_kind_off_drops_exactly_its_terms_from_the_loss(robot):
    model = tiny_model(robot).eval()
    batch = synthetic_batch(robot, 2, seed=2)
    with torch.no_grad():
        outputs = model(batch['image'], batch['K'])
    full = make_loss(robot)(outputs, batch)
    ablated = make_loss(robot, loops_off=['keypoints'])(outputs, batch)
    dropped = {'align_keypoints_3d', 'align_keypoints_3d_fk', 'align_keypoints_2d'}
    assert set(full) - set(ablated) == dropped
    assert torch.allclose(ablated['align'],
                          full['align'] - sum(full[name] for name in dropped))
    assert torch.allclose(ablated['total'], ablated['align'] + ablated['supervised'])


def test_without_labels_align_is_finite_and_backpropagates(robot):
    model = tiny_model(robot)
    batch = synthetic_batch(robot, 2, seed=3, labelled=False)
    outputs = model(batch['image'], batch['K'])
    terms = make_loss(robot)(outputs, batch)
    assert not any(name.startswith(('sup_', 'extra_')) for name in terms)
    assert float(terms['supervised']) == 0.0
    assert torch.isfinite(terms['total']) and terms['total'] > 0
    terms['total'].backward()
    for name in ('backbone_2d', 'backbone_3d', 'depth_regulator_head', 'joint_head_3d'):
        assert module_grad(model, name) > 0, name


def test_a_missing_label_drops_the_term_per_item(robot):
    model = tiny_model(robot).eval()
    batch = synthetic_batch(robot, 2, seed=4)
    batch['has_joint_angles'] = torch.tensor([True, False])
    batch['has_depth'] = torch.tensor([False, False])
    with torch.no_grad():
        outputs = model(batch['image'], batch['K'])
    loss = make_loss(robot)
    terms = loss(outputs, batch)
    assert 'extra_depth' not in terms and 'sup_joints_3d' in terms
    expected = (outputs.joint_angles_3d[0] - batch['joint_angles'][0]).square().mean()
    assert torch.allclose(terms['sup_joints_3d'], expected)
    assert 'sup_points_unproj' in terms  # needs joints and pose on the same item: item 0


def test_supervised_loss_decreases_when_overfitting(robot):
    torch.manual_seed(0)
    model = tiny_model(robot).train()
    loss = make_loss(robot)
    batches = [synthetic_batch(robot, 2, seed=10 + i) for i in range(3)]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(8):
        epoch = []
        for batch in batches:
            terms = loss(model(batch['image'], batch['K']), batch)
            optimiser.zero_grad()
            terms['total'].backward()
            optimiser.step()
            epoch.append(float(terms['supervised'].detach()))
        history.append(sum(epoch) / len(epoch))
    assert all(torch.isfinite(torch.tensor(history)))
    assert history[-1] < 0.6 * history[0], history


def test_stage_two_and_missing_robot(robot):
    model = tiny_model(robot).eval()
    batch = synthetic_batch(robot, 2, seed=5)
    with torch.no_grad():
        outputs = model(batch['image'], batch['K'])
    config = ModelConfig(**TINY)
    stage2 = TAGLoss(model.graph, config)(outputs, batch, supervised=False)
    assert set(stage2) == {t.name for t in ALIGN_TERMS} | {'align', 'supervised', 'total'}
    with pytest.raises(ValueError, match='need the robot'):
        TAGLoss(model.graph, config)(outputs, batch)
    with pytest.raises(TypeError, match='TAGGraph'):
        TAGLoss(robot, config)
    as_float = outputs.float()
    assert as_float.rotation.dtype == torch.float32 and as_float.points_unproj_valid.dtype == \
        torch.bool
