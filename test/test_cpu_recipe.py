"""The CPU recipe's parts: pretrained backbone, peak decoding, heatmap loss, robot crops, trunk
cache (training from cached trunk outputs equals training from images), two-pass boxes."""
import numpy as np
import pytest
import torch

from robotag_ros.data.synthetic.dr_config import DRConfig
from robotag_ros.data.dream.dataset import DreamDataset, RobotCrop
from robotag_ros.data.synthetic.set_generator import generate_set
from robotag_ros.geometry.letterbox import plan_crop, warp_image
from robotag_ros.inference.preprocess import preprocess_crop
from robotag_ros.model.preprocessing import ImagePreprocessing
from robotag_ros.inference.two_pass import CropPolicy, robot_box
from robotag_ros.losses.supervised import heatmap_cross_entropy
from robotag_ros.model import build_model, load_model_config
from robotag_ros.model.efficientnet_backbone import EfficientNetLiteBackbone, bundled_weights_path
from robotag_ros.model.heads import peak_soft_argmax_px
from robotag_ros.model.weights import read_state_dict


@pytest.fixture(scope='module')
def synth_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('synth') / 'panda_synth'
    assert generate_set('panda', out, 4, 7, DRConfig(), 120, 160, progress=False) == 4
    return out


@pytest.fixture(scope='module')
def default_model(panda):
    torch.manual_seed(0)
    return build_model(panda, load_model_config('default')).eval()


def test_bundled_imagenet_weights_fill_the_whole_trunk():
    backbone = EfficientNetLiteBackbone('efficientnet_lite0', 16, pretrained='bundled')
    state = read_state_dict(bundled_weights_path('efficientnet_lite0'))
    own = backbone.trunk.state_dict()
    assert own and all(torch.equal(own[k], state[k]) for k in own)   # every trunk tensor loaded
    features, pooled = backbone(torch.rand(2, 3, 64, 96))
    assert features.shape == (2, 16, 16, 24) and pooled.shape == (2, backbone.pooled_channels)


def test_context_blocks_start_as_the_identity_and_learn():
    torch.manual_seed(0)
    plain = EfficientNetLiteBackbone('efficientnet_lite0', 16, pretrained=None).train()
    torch.manual_seed(0)
    context = EfficientNetLiteBackbone('efficientnet_lite0', 16, pretrained=None,
                                       context_blocks=4).train()
    missing = set(context.state_dict()) - set(plain.state_dict())
    assert missing and all(k.startswith('context.') for k in missing)
    context.load_state_dict(plain.state_dict(), strict=False)   # a trained neck, blocks added
    image = torch.rand(2, 3, 64, 64)
    features, _ = context(image)
    torch.testing.assert_close(features, plain(image)[0])
    features.square().mean().backward()
    last_norms = [block.body[-1].weight.grad for block in context.context]
    assert all(grad is not None and grad.abs().sum() > 0 for grad in last_norms)


@pytest.mark.parametrize('stages', [1, 2])
def test_last_trunk_stages_train_on_the_cached_tap_below_them(stages):
    torch.manual_seed(0)
    backbone = EfficientNetLiteBackbone('efficientnet_lite0', 16, pretrained=None)
    backbone.freeze_trunk(stages)
    trainable = {name for name, p in backbone.trunk.named_parameters() if p.requires_grad}
    first = backbone.tap_blocks[3 - stages] + 1     # stride 32: after the stride-16 tap
    trained = {f'_blocks.{i}' for i in range(first, backbone.tap_blocks[3] + 1)}
    assert trainable and all(any(name.startswith(block + '.') for block in trained)
                             for name in trainable)
    assert all(any(n.startswith(f'_blocks.{i}.') for n in trainable) for i in range(
        first, backbone.tap_blocks[3] + 1) if list(backbone.trunk._blocks[i].parameters()))
    assert all(not p.requires_grad for p in backbone.trunk._blocks[first - 1].parameters())
    backbone.train()
    assert not backbone.trunk.training   # fixed BatchNorm statistics, the trained stages' too
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        cached = [tap.clone() for tap in backbone.trunk_features(image)]
    # The trained stages' taps are recomputed: stale values there change nothing.
    stale = [*cached[:4 - stages], *(torch.zeros_like(t) for t in cached[4 - stages:])]
    features, _ = backbone.neck_from_cache(stale)
    torch.testing.assert_close(features, backbone(image)[0])
    features.square().mean().backward()
    first_block = backbone.trunk._blocks[first]
    grads = [p.grad for p in (*first_block.parameters(), *backbone.stage_blocks(stages)[-1]
                              .parameters())]
    assert all(grad is not None and grad.abs().sum() > 0 for grad in grads)
    assert all(p.grad is None for p in backbone.trunk._blocks[0].parameters())


def test_a_fully_frozen_trunk_uses_its_cached_taps_as_they_are():
    plain = EfficientNetLiteBackbone('efficientnet_lite0', 16, pretrained=None)
    plain.freeze_trunk()
    assert not any(p.requires_grad for p in plain.trunk.parameters())
    with torch.no_grad():
        cached = plain.trunk_features(torch.rand(1, 3, 64, 64))
        stale = [*cached[:3], torch.zeros_like(cached[3])]
        changed = plain.neck_from_cache(stale)[0]
    assert not torch.allclose(changed, plain.neck(cached)[0])
    with pytest.raises(ValueError, match='0..3'):
        plain.freeze_trunk(4)


def test_a_trunk_with_fixed_batchnorm_learns_every_weight_and_keeps_its_statistics():
    torch.manual_seed(0)
    backbone = EfficientNetLiteBackbone('efficientnet_lite0', 16, pretrained=None)
    backbone.fix_trunk_batchnorm()
    backbone.train()
    assert backbone.lateral.training and not backbone.trunk.training
    means = {name: buffer.clone() for name, buffer in backbone.trunk.named_buffers()
             if name.endswith('running_mean')}
    features, _ = backbone(torch.rand(2, 3, 64, 64) * 5)
    features.square().mean().backward()
    assert all(torch.equal(means[name], buffer) for name, buffer in
               backbone.trunk.named_buffers() if name in means)
    assert all(p.requires_grad for p in backbone.trunk.parameters())
    stem = backbone.trunk._conv_stem.weight.grad
    assert stem is not None and stem.abs().sum() > 0
    plain = EfficientNetLiteBackbone('efficientnet_lite0', 16, pretrained=None).train()
    assert plain.trunk.training   # without the switch the trunk uses batch statistics


def test_inference_copy_gives_the_same_trunk_outputs():
    backbone = EfficientNetLiteBackbone('efficientnet_lite0', 16).eval()
    image = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = backbone.trunk_features(image)
        fused = backbone.inference_copy().trunk_features(
            image.contiguous(memory_format=torch.channels_last))
    for a, b in zip(expected, fused):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_peak_soft_argmax_finds_the_subcell_peak_and_ignores_a_far_blob():
    logits = torch.full((1, 2, 16, 16), -20.0)
    logits[0, 0, 5, 7] = logits[0, 0, 5, 8] = 5.0      # peak between cells 7 and 8 of row 5
    logits[0, 1, 2, 2] = 5.0
    logits[0, 1, 13, 13] = 4.9                         # a far second blob, almost as strong
    peaks, mass = peak_soft_argmax_px(logits, (64, 64), radius_cells=2)
    torch.testing.assert_close(peaks[0, 0], torch.tensor([8.0 * 4, 5.5 * 4]))
    torch.testing.assert_close(peaks[0, 1], torch.tensor([2.5 * 4, 2.5 * 4]), atol=1e-3,
                               rtol=0)
    assert mass[0, 0] > 0.99 and 0.4 < mass[0, 1] < 0.6   # the blob's share is not in the window


def test_heatmap_cross_entropy_is_lowest_at_the_label_and_skips_invalid_keypoints():
    keypoints = torch.tensor([[[20.0, 12.0], [300.0, 10.0]]])     # the second is outside
    height, width = 16, 16
    u = (torch.arange(width) + 0.5) * 4
    v = (torch.arange(height) + 0.5) * 4
    right = -((u[None, :] - 20.0) ** 2 + (v[:, None] - 12.0) ** 2) / 8.0
    wrong = -((u[None, :] - 44.0) ** 2 + (v[:, None] - 40.0) ** 2) / 8.0
    at_label = heatmap_cross_entropy(torch.stack([right, wrong])[None], keypoints, (64, 64))
    elsewhere = heatmap_cross_entropy(torch.stack([wrong, right])[None], keypoints, (64, 64))
    assert float(at_label) < float(elsewhere)
    none_valid = heatmap_cross_entropy(torch.stack([right, wrong])[None], keypoints, (64, 64),
                                       valid=torch.zeros(1, 2))
    assert float(none_valid) == 0.0


def test_crop_plans_map_pixels_and_intrinsics_exactly():
    image = np.zeros((120, 160, 3), np.uint8)
    image[70, 100] = 255                          # pixel centre (100.5, 70.5)
    K = np.array([[150.0, 0.0, 80.0], [0.0, 150.0, 60.0], [0.0, 0.0, 1.0]])
    lite = ImagePreprocessing((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    tensor, K_crop, plan = preprocess_crop(image, K, (95.0, 65.0), 40.0, (64, 64), lite)
    mapped = plan.to_target_px(np.array([100.5, 70.5]))
    row, col = np.unravel_index(tensor[0, 0].argmax(), (64, 64))
    assert abs(col + 0.5 - mapped[0]) <= 1.0 and abs(row + 0.5 - mapped[1]) <= 1.0
    point = np.array([0.1, -0.05, 1.2])          # projects consistently in both frames
    source, crop = K @ point, K_crop[0] @ point
    np.testing.assert_allclose(plan.to_target_px(source[:2] / source[2]), crop[:2] / crop[2],
                               atol=1e-4)
    corner = plan_crop(image.shape[:2], (0.0, 0.0), 50.0, (32, 32))   # reaches past the corner
    outside = warp_image(image, corner)
    assert outside.shape == (32, 32, 3) and outside[:10, :10].max() == 0


def test_robot_crops_keep_labels_and_intrinsics_consistent(panda, synth_set):
    dataset = DreamDataset(synth_set, panda, image_size=(64, 64), augment=True, seed=3,
                           robot_crop=RobotCrop(full_frame_prob=0.0, min_size_px=1.0))
    for index in range(len(dataset)):
        sample = dataset[index]
        valid = sample['keypoints_valid']
        uvw = sample['keypoints_3d'][valid] @ sample['K'].T
        torch.testing.assert_close(uvw[:, :2] / uvw[:, 2:], sample['keypoints_2d'][valid],
                                   atol=0.05, rtol=0)
        # The robot fills the crop: keypoints span a good part of it, none far outside.
        span = sample['keypoints_2d'].max(0).values - sample['keypoints_2d'].min(0).values
        assert float(span.max()) > 64 / 1.6 / 1.3
        assert float(sample['keypoints_2d'].abs().max()) < 96


def test_training_on_cached_trunk_outputs_equals_training_on_images(
        panda, default_model, synth_set, tmp_path):
    from robotag_ros.training.feature_cache import build_trunk_cache
    dataset = DreamDataset(synth_set, panda, image_size=(64, 64))
    cache = build_trunk_cache(default_model, dataset, tmp_path / 'cache', 1, (64, 64),
                              torch.device('cpu'), batch_size=2, num_workers=0)
    assert len(cache) == len(dataset)
    sample, cached = dataset[1], cache[1]
    torch.testing.assert_close(cached['keypoints_2d'], sample['keypoints_2d'])
    with torch.no_grad():
        from_image = default_model(sample['image'][None], sample['K'][None])
        trunk = [cached[f'trunk_{level}'][None] for level in range(4)]
        from_cache = default_model(None, cached['K'][None], trunk_features=trunk,
                                   image_hw=(64, 64))
    # fp16 cache: the heads see the trunk to ~1e-3.
    torch.testing.assert_close(from_cache.keypoints_2d, from_image.keypoints_2d, atol=0.05,
                               rtol=0)
    torch.testing.assert_close(from_cache.joint_angles_2d, from_image.joint_angles_2d,
                               atol=1e-2, rtol=0)
    # A finished cache is reused, not rebuilt.
    mtime = (tmp_path / 'cache' / 'trunk_0.npy').stat().st_mtime_ns
    build_trunk_cache(default_model, dataset, tmp_path / 'cache', 1, (64, 64),
                      torch.device('cpu'), num_workers=0)
    assert (tmp_path / 'cache' / 'trunk_0.npy').stat().st_mtime_ns == mtime


def test_robot_box_skips_unsure_keypoints_and_keeps_a_minimum_size():
    keypoints = np.array([[100.0, 100.0], [140.0, 180.0], [120.0, 150.0], [600.0, 20.0]])
    confidence = np.array([0.9, 0.8, 0.7, 0.01])           # the far one is a false peak
    box = robot_box(keypoints, confidence, CropPolicy(margin=1.5))
    assert box.centre_px == (120.0, 140.0) and box.size_px == pytest.approx(120.0)
    tiny = robot_box(keypoints[:3] * 0.01 + 50, None, CropPolicy(min_size_px=64.0))
    assert tiny.size_px == 64.0


def test_keypoint_phase_on_the_cache_moves_the_last_trunk_stage_only(synth_set, tmp_path):
    from robotag_ros.training.config import load_config
    from robotag_ros.training.trainer import Trainer
    config = load_config(None, [
        'robot=panda', f'data.train=[{synth_set}]', 'data.val=[]', 'data.image_size=[64, 64]',
        'data.cache_trunk=true', 'data.cache_views_per_frame=1', f'data.cache_dir={tmp_path}',
        'data.num_workers=0', 'heads=keypoints', 'trained_trunk_stages=1',
        'optim.batch_size=2', 'optim.epochs=1', 'optim.warmup_steps=0', 'optim.lr=1e-2',
        f'run_dir={tmp_path / "run"}', 'device=cpu'])
    trainer = Trainer(config)
    try:
        before = {k: v.clone() for k, v in trainer.model.backbone_2d.trunk.state_dict().items()}
        trainer.train()
        after = trainer.model.backbone_2d.trunk.state_dict()
    finally:
        trainer.close()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    last = tuple(f'_blocks.{i}.' for i in range(trainer.model.backbone_2d.tap_blocks[2] + 1,
                                                trainer.model.backbone_2d.tap_blocks[3] + 1))
    assert changed and all(k.startswith(last) for k in changed), changed
    # BatchNorm statistics stay ImageNet's, in the trained stage too.
    assert not any(k.endswith(('running_mean', 'running_var')) for k in changed)


def test_a_single_camera_folder_gives_no_view_labels(panda, synth_set):
    """data.single_camera: the folder's frames keep their pose but do not train the view head."""
    from robotag_ros.training.config import load_config
    from robotag_ros.training.datasets import dream_dataset
    config = load_config(None, ['data.image_size=[64,64]'])
    assert bool(dream_dataset(str(synth_set), panda, config, augment=False)[0]['has_view'])
    config.data.single_camera = [str(synth_set) + '/']
    sample = dream_dataset(str(synth_set), panda, config, augment=False)[0]
    assert bool(sample['has_T_cam_base']) and not bool(sample['has_view'])
