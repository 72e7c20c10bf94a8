"""robotag-finetune end to end on a tiny bag written here, from a tiny artifact; bad bags refused.

The tiny model starts from random weights (its mask head biased to "all robot"), so its 2D and
3D branches disagree a lot: a few alignment-only steps must lower L_align measured on the same
batch, model in eval mode.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from robotag_ros.data.bags.bag_images import BagImageDataset, write_image_bag
from robotag_ros.model.artifact import Sidecar, artifact_paths, load_model, save_artifact
from robotag_ros.model import ModelConfig, build_model
from robotag_ros.model.preprocessing import ImagePreprocessing
from robotag_ros.training.cli import finetune_main
from robotag_ros.training.datasets import collate
from robotag_ros.training.finetune import alignment_loss

SAMPLE = Path(__file__).parent / 'data' / 'dream_panda_sample'
K_SAMPLE = np.array([[79.9316, 0.0, 63.9792], [0.0, 79.8992, 48.812], [0.0, 0.0, 1.0]])
TINY = dict(width_2d=8, width_3d=8, head_width=16, num_unproj_points=64)
TOPIC = '/camera/color/image_raw'
# Statistics of the artifact's own: fine-tuning must train with them and hand them on.
NOT_THE_BACKBONES = ImagePreprocessing(mean=(0.45, 0.45, 0.45), std=(0.3, 0.3, 0.3))


@pytest.fixture(scope='module')
def tiny_artifact(tmp_path_factory, panda):
    torch.manual_seed(0)
    model = build_model(panda, ModelConfig(**TINY))
    with torch.no_grad():
        # Random weights would mark no pixel as robot: no unprojected points, and the Chamfer
        # term sits at its no-points constant. Start with every pixel marked instead.
        model.mask_head.net[2].bias.fill_(3.0)
    path = tmp_path_factory.mktemp('artifact') / 'tiny'
    save_artifact(path, model.state_dict(), Sidecar(
        robot='panda', joint_names=list(panda.joint_names),
        keypoint_names=list(panda.keypoint_names), input_size=[64, 64],
        model_config=model.config.to_dict(), training={'stage': 1},
        preprocessing=NOT_THE_BACKBONES))
    return path


@pytest.fixture(scope='module')
def rendered_frames():
    """The sample set's three rendered 128x96 frames."""
    paths = sorted(SAMPLE.glob('*.rgb.jpg'))
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


@pytest.fixture(scope='module')
def bag(tmp_path_factory, rendered_frames):
    frames = rendered_frames + [np.ascontiguousarray(f[:, ::-1]) for f in rendered_frames]
    return write_image_bag(tmp_path_factory.mktemp('bags') / 'unlabelled', frames, K_SAMPLE,
                           topic=TOPIC)


def _run(*args):
    return finetune_main([str(a) for a in args])


def test_finetune_end_to_end_lowers_the_alignment_loss(tiny_artifact, bag, tmp_path, panda):
    out = tmp_path / 'finetuned'
    status = _run('--model', tiny_artifact, '--bag', bag, '--topic', TOPIC, '--out', out,
                  'optim.epochs=4', 'optim.batch_size=3', 'optim.lr=3.0e-3', 'device=cpu',
                  'seed=0')
    assert status == 0
    assert all(p.is_file() for p in artifact_paths(out))
    run_dir = tmp_path / 'finetuned_run'
    assert (run_dir / 'checkpoint_last.pt').is_file()
    assert list((run_dir / 'tensorboard').glob('events.out.tfevents.*'))

    before, _ = load_model(tiny_artifact, robot=panda)
    after, sidecar = load_model(out, robot=panda)
    assert sidecar.training['stage'] == 2
    assert sidecar.preprocessing == NOT_THE_BACKBONES == after.preprocessing
    dataset = BagImageDataset(bag, TOPIC, (64, 64), panda.num_joints, panda.num_keypoints)
    batch = collate([dataset[i] for i in range(len(dataset))])
    loss_before, loss_after = alignment_loss(before, batch), alignment_loss(after, batch)
    print(f"L_align before {loss_before:.4f}, after {loss_after:.4f}")
    assert loss_after < 0.95 * loss_before, (loss_before, loss_after)


def test_corrupt_bag_is_refused_and_nothing_is_written(tiny_artifact, rendered_frames, tmp_path,
                                                       capsys):
    broken = write_image_bag(tmp_path / 'broken', rendered_frames, K_SAMPLE, topic=TOPIC)
    for storage_file in broken.glob('*.db3'):
        storage_file.write_bytes(b'this is not an sqlite database' * 10)
    out = tmp_path / 'never'
    assert _run('--model', tiny_artifact, '--bag', broken, '--topic', TOPIC, '--out', out) == 2
    error = capsys.readouterr().err
    assert 'robotag-finetune: error' in error and str(broken) in error
    assert not any(p.exists() for p in artifact_paths(out))


def test_bag_without_the_topic_names_the_topics_it_has(tiny_artifact, bag, tmp_path, capsys):
    assert _run('--model', tiny_artifact, '--bag', bag, '--topic', '/other/image',
                '--out', tmp_path / 'never') == 2
    error = capsys.readouterr().err
    assert "'/other/image' is not in" in error and TOPIC in error


def test_existing_output_is_not_overwritten(tiny_artifact, bag, tmp_path, capsys):
    out = tmp_path / 'existing'
    artifact_paths(out)[0].write_bytes(b'previous weights')
    assert _run('--model', tiny_artifact, '--bag', bag, '--topic', TOPIC, '--out', out) == 2
    assert 'refusing to overwrite' in capsys.readouterr().err
    assert artifact_paths(out)[0].read_bytes() == b'previous weights'
    assert _run('--model', tiny_artifact, '--bag', bag, '--topic', TOPIC,
                '--out', tiny_artifact) == 2


@pytest.mark.parametrize('max_residual_px, trusted', [(1.0e6, 1.0), (0.0, 0.0)])
def test_stage2_fit_keypoints_anchor_the_heatmaps_on_trusted_frames(
        tiny_artifact, bag, tmp_path, max_residual_px, trusted):
    from robotag_ros.training.finetune import finetune_config
    from robotag_ros.training.trainer import Trainer
    config = finetune_config(tiny_artifact, tmp_path / 'out', bags=[str(bag)], image_topic=TOPIC,
                             overrides=['optim.batch_size=3', 'device=cpu',
                                        'fit_keypoints_weight=1.0',
                                        f'fit_keypoints_max_residual_px={max_residual_px}'])
    trainer = Trainer(config)
    try:
        batch = next(iter(trainer.loader))
        losses = trainer.train_step(batch)
        # The anchor alone: its gradient reaches the heatmap head only from trusted frames.
        outputs = trainer.model(batch['image'], batch['K'])
        anchor_only = trainer._with_fit_keypoints({'total': torch.zeros(())}, outputs, batch)
        trainer.model.zero_grad(set_to_none=True)
        anchor_only['total'].backward()
        grad = trainer.model.keypoint_2d_head.heatmaps.weight.grad
    finally:
        trainer.close()
    assert float(losses['fit_keypoints_trusted']) == trusted
    anchor = float(losses['fit_keypoints'])
    assert np.isfinite(anchor) and (anchor > 0) == bool(trusted)
    assert (grad is not None and float(grad.abs().sum()) > 0) == bool(trusted)
