"""Training: overfitting a few frames, torchrun DDP on CPU, resume after a kill,
checkpoint safety, configuration merging."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from robotag_ros.config_merge import ConfigError
from robotag_ros.training.checkpoint import CheckpointError, atomic_torch_save, load_checkpoint
from robotag_ros.training.config import load_config

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = {'model': {'width_2d': 8, 'width_3d': 8, 'head_width': 16,
                        'num_unproj_points': 64}}


@pytest.fixture(scope='module')
def frames(tmp_path_factory):
    """Twelve labelled synthetic frames at 64x64 (rendered, DREAM format)."""
    out = tmp_path_factory.mktemp('train_data') / 'set'
    subprocess.run([sys.executable, '-m', 'robotag_ros.data.cli', '--robot', 'panda',
                    '--out', str(out), '--num', '12', '--seed', '7', '--size', '64x64',
                    '--no-progress'], check=True, cwd=REPO, timeout=300)
    return out


def _experiment(tmp_path, frames, **overrides) -> Path:
    model = tmp_path / 'tiny_model.yaml'
    model.write_text(yaml.safe_dump(TINY_MODEL))
    config = {'stage': 1, 'robot': 'panda', 'model': str(model),
              'data': {'train': [str(frames)], 'val': [], 'image_size': [64, 64],
                       'augment': False, 'num_workers': 0},
              'optim': {'lr': 3.0e-3, 'epochs': 2, 'batch_size': 4, 'warmup_steps': 0,
                        'lr_decay_per_epoch': 1.0},
              'run_dir': str(tmp_path / 'run'), 'device': 'cpu', 'log_every_steps': 1}
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split('__')
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = tmp_path / 'experiment.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def test_loss_falls_when_overfitting_eight_frames(tmp_path, frames):
    from robotag_ros.training.trainer import Trainer
    config = load_config(str(_experiment(tmp_path, frames, optim__epochs=12,
                                         data__max_frames=8)))
    trainer = Trainer(config)
    try:
        history = trainer.train()
    finally:
        trainer.close()
    first, last = history[0]['total'], history[max(history)]['total']
    assert last < 0.7 * first, history
    assert (Path(config.run_dir) / 'checkpoint_last.pt').is_file()
    assert (Path(config.run_dir) / 'panda_tag.safetensors').is_file()
    meta = yaml.safe_load((Path(config.run_dir) / 'config.yaml').read_text())
    assert meta['config']['optim']['epochs'] == 12 and meta['data_fingerprint']


def _env():
    env = dict(os.environ, GLOO_SOCKET_IFNAME='lo', OMP_NUM_THREADS='1',
               PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(p for p in (str(REPO), env.get('PYTHONPATH')) if p)
    return env


@pytest.mark.parametrize('heads', ['all', 'keypoints'])
def test_torchrun_two_cpu_processes_agree_on_the_weights(tmp_path, frames, heads):
    # heads=keypoints bypasses the DDP wrapper's forward and averages its gradients by hand.
    experiment = _experiment(tmp_path, frames, optim__epochs=2, max_steps_per_epoch=2,
                             heads=heads)
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
         '-m', 'robotag_ros.training.cli', 'train', '--config', str(experiment)],
        capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'weights on all 2 ranks agree: True' in result.stdout, result.stdout[-3000:]
    checkpoint = load_checkpoint(tmp_path / 'run' / 'checkpoint_last.pt')
    # DistributedSampler gives each rank 6 of the 12 frames: one batch of 4 per epoch.
    assert checkpoint['epoch'] == 1 and checkpoint['step'] == 2


def test_resume_after_a_kill_continues_from_the_last_checkpoint(tmp_path, frames):
    experiment = _experiment(tmp_path, frames, optim__epochs=30)
    command = [sys.executable, '-m', 'robotag_ros.training.cli', 'train', '--config',
               str(experiment)]
    checkpoint_path = tmp_path / 'run' / 'checkpoint_last.pt'
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=_env(), cwd=REPO)
    try:
        deadline = time.time() + 300
        while not checkpoint_path.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert checkpoint_path.exists(), 'no checkpoint was written'
        process.send_signal(signal.SIGKILL)   # no chance to clean up: like a lost machine
    finally:
        process.wait(timeout=60)
    killed_at = load_checkpoint(checkpoint_path)['epoch']
    assert killed_at < 29
    result = subprocess.run(command + ['--resume', 'optim.epochs=' + str(killed_at + 3)],
                            capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'resumed from {checkpoint_path} at epoch {killed_at + 1}' in result.stdout
    assert load_checkpoint(checkpoint_path)['epoch'] == killed_at + 2


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path):
    good = tmp_path / 'good.pt'
    atomic_torch_save({'format': 'robotag_ros.checkpoint/1', 'model': {}, 'epoch': 0}, good)
    assert load_checkpoint(good)['epoch'] == 0
    truncated = tmp_path / 'truncated.pt'
    truncated.write_bytes(good.read_bytes()[:50])
    with pytest.raises(CheckpointError, match='truncated, corrupt'):
        load_checkpoint(truncated)
    foreign = tmp_path / 'foreign.pt'
    torch.save({'state_dict': {}}, foreign)
    with pytest.raises(CheckpointError, match='not a robotag_ros training checkpoint'):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(tmp_path / 'missing.pt')


def test_config_layers_and_refusals(tmp_path):
    path = tmp_path / 'e.yaml'
    path.write_text(yaml.safe_dump({'optim': {'lr': 0.5, 'epochs': 3}, 'stage': 2}))
    config = load_config(str(path), ['optim.lr=1e-4', 'data.image_size=[128, 96]'])
    assert config.optim.lr == pytest.approx(1e-4) and config.optim.epochs == 3
    assert config.stage == 2 and config.data.image_size == [128, 96]
    assert config.optim.batch_size == 16              # dataclass default kept
    with pytest.raises(ConfigError, match="unknown key 'learning_rate'"):
        load_config(str(path), ['optim.learning_rate=1'])
    with pytest.raises(ConfigError, match='expects a number'):
        load_config(str(path), ['optim.lr=fast'])
    # A free-form mapping merges key by key: an override adds to the file's model_overrides.
    path.write_text(yaml.safe_dump({'model_overrides': {'neck_context_blocks': 4}}))
    config = load_config(str(path), ['model_overrides.lifting_hypotheses=8'])
    assert config.model_overrides == {'neck_context_blocks': 4, 'lifting_hypotheses': 8}


def test_one_merge_rule_for_the_three_configs(tmp_path):
    from robotag_ros.data.synthetic.dr_config import load_dr_config
    from robotag_ros.model.config import load_model_config
    bad = tmp_path / 'bad.yaml'
    for loader, text, message in (
            (load_dr_config, 'camera: {nope: 1}', "camera: unknown key 'nope'"),
            (load_model_config, 'model: {loss: {alpha: {alpha9: 1.0}}}', 'alpha9'),
            (lambda p: load_config(str(p)), 'optim: {nope: 1}', "optim: unknown key 'nope'")):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            loader(bad)
    # Loss weight groups keep the weights an override does not name.
    good = tmp_path / 'good.yaml'
    good.write_text('model: {loss: {alpha: {alpha2: 0.5}}}')
    assert load_model_config(good).loss.alpha == dict(
        alpha1=1.0, alpha2=0.5, alpha3=1.0, alpha4=1.0, alpha5=1.0, alpha6=1.0)


def test_keypoint_phase_trains_the_heatmaps_alone_and_counts_the_training_before_it(
        tmp_path, frames):
    from robotag_ros.model.artifact import load_sidecar, load_weights
    from robotag_ros.training.trainer import Trainer
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    first = load_config(str(_experiment(tmp_path / 'a', frames, optim__epochs=1,
                                        data__max_frames=8)))
    trainer = Trainer(first)
    try:
        trainer.train()
    finally:
        trainer.close()
    start = str(Path(first.run_dir) / 'panda_tag')
    before, record = load_weights(start), load_sidecar(start).training
    config = load_config(str(_experiment(tmp_path / 'b', frames, optim__epochs=10,
                                         data__max_frames=8)),
                         ['heads=keypoints', f'init_from={start}'])
    trainer = Trainer(config)
    try:
        history = trainer.train()
    finally:
        trainer.close()
    assert set(history[0]) == {'extra_heatmap', 'total', 'grad_norm'}
    assert history[9]['extra_heatmap'] < 0.8 * history[0]['extra_heatmap'], history
    after = load_weights(str(Path(config.run_dir) / 'panda_tag'))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith('keypoint_2d_head.') for k in changed)
    # Only what the heatmaps run through moves (BatchNorm statistics included).
    assert all(k.startswith(('keypoint_2d_head.', 'backbone_2d.')) for k in changed), changed
    totals = load_sidecar(str(Path(config.run_dir) / 'panda_tag')).training
    assert totals['total_samples_seen'] == record['samples_seen'] + totals['samples_seen']
    assert totals['total_wall_minutes'] >= record['wall_minutes']
    with pytest.raises(ValueError, match='heads must be one of'):
        load_config(None, ['heads=joints'])
    with pytest.raises(ValueError, match='needs a frozen trunk'):
        load_config(None, ['trained_trunk_stages=1'])
    assert load_config(None, ['trained_trunk_stages=2',
                              'data.cache_trunk=true']).trained_trunk_stages == 2
    with pytest.raises(ValueError, match='trained_trunk_stages must be 0..3'):
        load_config(None, ['trained_trunk_stages=4', 'data.cache_trunk=true'])
