"""robotag-train and robotag-eval refuse bad input with one line and exit 2, and a failing run
changes no file that existed before it."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inference_fixtures import make_tiny_artifact
from robotag_ros.training.cli import eval_main, finetune_main, train_main

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / 'test' / 'data' / 'dream_panda_sample'
TINY_MODEL = {'width_2d': 8, 'width_3d': 8, 'head_width': 16, 'num_unproj_points': 64}


@pytest.fixture(scope='module')
def artifact(tmp_path_factory, panda):
    return make_tiny_artifact(tmp_path_factory.mktemp('artifact') / 'tiny', panda)


def _snapshot(*paths):
    return {Path(p): Path(p).read_bytes() for p in paths}


def _assert_unchanged(snapshot):
    for path, content in snapshot.items():
        assert path.read_bytes() == content, f'{path} changed'


def _one_error_line(capsys, program):
    err = capsys.readouterr().err
    assert 'Traceback' not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'{program}: error: '), err
    return lines[0]


# ------------------------------------------------------------------------------ robotag-eval

def _broken_artifacts(folder: Path, artifact: Path) -> dict[str, tuple[Path, str]]:
    """name -> (artifact path, text the refusal must hold)."""
    weights, sidecar = artifact.with_suffix('.safetensors'), artifact.with_suffix('.yaml')
    cases = {}

    def make(name, weights_bytes, sidecar_text):
        (folder / f'{name}.safetensors').write_bytes(weights_bytes)
        (folder / f'{name}.yaml').write_text(sidecar_text)
        return folder / name

    good_weights, good_sidecar = weights.read_bytes(), sidecar.read_text()
    cases['missing'] = (folder / 'no_such_model', 'no_such_model.yaml')
    cases['truncated'] = (make('truncated', good_weights[:len(good_weights) // 3], good_sidecar),
                          'truncated.safetensors is truncated or corrupt')
    random_bytes = bytes((i * 7919 + 13) % 251 for i in range(20000))
    cases['random'] = (make('random', random_bytes, good_sidecar),
                       'random.safetensors is truncated or corrupt')
    data = yaml.safe_load(good_sidecar)
    data['robot'] = 'kuka_iiwa'
    cases['other_robot'] = (make('other_robot', good_weights, yaml.safe_dump(data)),
                            "(robot 'kuka_iiwa')")
    cases['garbage_yaml'] = (make('garbage_yaml', good_weights, 'robot: [\n  - x: {'),
                             'garbage_yaml.yaml: not valid YAML')
    return cases


@pytest.mark.parametrize('case', ['missing', 'truncated', 'random', 'other_robot',
                                  'garbage_yaml'])
def test_eval_refuses_a_bad_model_with_one_line(tmp_path, capsys, artifact, case):
    model, expected = _broken_artifacts(tmp_path, artifact)[case]
    result = tmp_path / 'metrics.json'
    result.write_text('{"earlier": "result"}')
    before = _snapshot(result)
    assert eval_main(['--model', str(model), '--data', str(SAMPLE), '--json', str(result)]) == 2
    assert expected in _one_error_line(capsys, 'robotag-eval')
    _assert_unchanged(before)


def test_eval_refuses_folders_without_frames_and_keeps_the_json(tmp_path, capsys, artifact):
    result = tmp_path / 'metrics.json'
    result.write_text('{"earlier": "result"}')
    before = _snapshot(result)
    (tmp_path / 'empty').mkdir()
    bag = REPO / 'test' / 'data' / 'panda_sample_bag'
    for folders, expected in (
            ([tmp_path / 'empty'], 'empty: no DREAM frames'),
            ([SAMPLE, tmp_path / 'empty'], 'empty: no DREAM frames'),   # none evaluated
            ([tmp_path / 'missing'], 'missing does not exist'),
            ([bag], 'it is a rosbag2'),
            ([SAMPLE, SAMPLE], 'given more than once')):
        argv = ['--model', str(artifact), '--json', str(result)]
        for folder in folders:
            argv += ['--data', str(folder)]
        assert eval_main(argv) == 2, folders
        assert expected in _one_error_line(capsys, 'robotag-eval')
        _assert_unchanged(before)


@pytest.mark.parametrize('option, value, expected', [
    ('--max-frames', '-3', '--max-frames must be 0 (all) or more, got -3'),
    ('--batch-size', '0', '--batch-size must be at least 1, got 0')])
def test_eval_refuses_negative_counts_and_keeps_the_json(tmp_path, capsys, artifact,
                                                         option, value, expected):
    result = tmp_path / 'keep.json'
    result.write_text('{"earlier": "result"}')
    before = _snapshot(result)
    assert eval_main(['--model', str(artifact), '--data', str(SAMPLE), '--json', str(result),
                      option, value]) == 2
    assert _one_error_line(capsys, 'robotag-eval') == f'robotag-eval: error: {expected}'
    _assert_unchanged(before)


def test_eval_leaves_unlabelled_frames_out_of_the_joint_error(tmp_path, artifact, panda):
    """A set where one frame has no joint labels keeps a joint error over the others."""
    folder = tmp_path / 'partly_labelled'
    shutil.copytree(SAMPLE, folder)
    for index in (0, 2):   # frame 1 stays without joint labels
        path = folder / f'{index:06d}.json'
        frame = json.loads(path.read_text())
        frame['sim_state'] = {'joints': [{'name': name, 'position': 0.1 * index}
                                         for name in panda.joint_names]}
        path.write_text(json.dumps(frame))
    result = tmp_path / 'metrics.json'
    assert eval_main(['--model', str(artifact), '--data', str(folder), '--json',
                      str(result)]) == 0
    metrics = json.loads(result.read_text())
    assert metrics['num_frames'] == 3 and metrics['joint_num_frames'] == 2
    assert 0.0 <= metrics['mean_joint_error_deg'] < 360.0   # a number, not NaN


def test_eval_keys_results_of_folders_with_one_name_apart(tmp_path, artifact):
    for parent in ('a', 'b'):
        shutil.copytree(SAMPLE, tmp_path / parent / 'val')
    result = tmp_path / 'metrics.json'
    assert eval_main(['--model', str(artifact), '--data', str(tmp_path / 'a' / 'val'),
                      '--data', str(tmp_path / 'b' / 'val'), '--json', str(result)]) == 0
    metrics = json.loads(result.read_text())
    assert sorted(metrics) == sorted([str(tmp_path / 'a' / 'val'), str(tmp_path / 'b' / 'val')])
    assert all(m['num_frames'] == 3 for m in metrics.values())


def test_eval_console_script_prints_no_traceback(tmp_path):
    """The installed entry point, in its own process."""
    result = subprocess.run([str(Path(sys.executable).with_name('robotag-eval')), '--model',
                             str(tmp_path / 'nothing'), '--data', str(SAMPLE)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == (f'robotag-eval: error: artifact sidecar not found: '
                                     f'{tmp_path / "nothing.yaml"}')


# ----------------------------------------------------------------------------- robotag-train

def _experiment(tmp_path, train_folders, **extra) -> Path:
    """An experiment YAML of its own (a new file each call) for a tiny CPU run."""
    (tmp_path / 'tiny_model.yaml').write_text(yaml.safe_dump(TINY_MODEL))
    config = {'stage': 1, 'robot': 'panda', 'model': str(tmp_path / 'tiny_model.yaml'),
              'data': {'train': [str(f) for f in train_folders], 'val': [],
                       'image_size': [48, 64], 'augment': False, 'num_workers': 0},
              'optim': {'epochs': 1, 'batch_size': 2, 'warmup_steps': 0},
              'run_dir': str(tmp_path / 'run'), 'device': 'cpu', 'overlay_every_steps': 1000}
    config.update(extra)
    path = tmp_path / f'experiment_{len(list(tmp_path.glob("experiment_*.yaml")))}.yaml'
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_refuses_an_existing_run_unless_resume_or_force(tmp_path, capsys):
    experiment = _experiment(tmp_path, [SAMPLE])
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'checkpoint_last.pt').write_bytes(b'an earlier run\'s checkpoint')
    (run / 'panda_tag.safetensors').write_bytes(b'an earlier run\'s model')
    before = _snapshot(run / 'checkpoint_last.pt', run / 'panda_tag.safetensors')
    assert train_main(['--config', str(experiment)]) == 2
    line = _one_error_line(capsys, 'robotag-train')
    assert 'checkpoint_last.pt' in line and '--resume' in line and '--force' in line
    _assert_unchanged(before)
    # --resume reads that checkpoint: a broken one is refused, and stays as it was.
    assert train_main(['--config', str(experiment), '--resume']) == 2
    assert 'checkpoint_last.pt is truncated, corrupt' in _one_error_line(capsys,
                                                                         'robotag-train')
    _assert_unchanged(before)
    # --force starts afresh and overwrites.
    assert train_main(['--config', str(experiment), '--force']) == 0
    assert (run / 'checkpoint_last.pt').read_bytes() != before[run / 'checkpoint_last.pt']


def test_train_refuses_bad_configs_and_empty_sets_with_one_line(tmp_path, capsys):
    (tmp_path / 'empty').mkdir()
    garbage = tmp_path / 'garbage.yaml'
    garbage.write_text('optim: [\n  - lr: {')
    cases = [
        (['--config', str(garbage)], 'garbage.yaml: not valid YAML'),
        (['--config', str(tmp_path / 'missing.yaml')], 'missing.yaml'),
        (['--config', str(_experiment(tmp_path, [tmp_path / 'empty']))],
         'empty: no training frames'),
        (['--config', str(_experiment(tmp_path, [tmp_path / 'nowhere']))],
         'nowhere does not exist'),
        (['--config', str(_experiment(tmp_path, [SAMPLE])), 'optim.nope=1'],
         "unknown key 'nope'"),
        (['--config', str(_experiment(tmp_path, [SAMPLE], robot='no_such_robot'))],
         "unknown robot 'no_such_robot'"),
        (['--config', str(_experiment(tmp_path, [SAMPLE], init_from=str(tmp_path / 'x')))],
         'init_from='),
    ]
    for argv, expected in cases:
        assert train_main(argv) == 2, argv
        assert expected in _one_error_line(capsys, 'robotag-train'), argv
    assert not (tmp_path / 'run' / 'checkpoint_last.pt').exists()


@pytest.mark.parametrize('override, expected', [
    ('optim.epochs=abc', "optim.epochs: expects an integer, got 'abc'"),
    ('optim.amp=3', 'optim.amp: expects true or false, got 3'),
    ('optim.lr=fast', "optim.lr: expects a number, got 'fast'")])
def test_train_and_finetune_type_check_settings_before_any_folder(tmp_path, capsys, artifact,
                                                                  override, expected):
    assert train_main(['--config', str(_experiment(tmp_path, [SAMPLE])), override]) == 2
    assert expected in _one_error_line(capsys, 'robotag-train')
    assert not (tmp_path / 'run').exists()
    out = tmp_path / 'tuned' / 'panda_site'
    assert finetune_main(['--model', str(artifact), '--bag', str(REPO / 'test' / 'data' /
                          'panda_sample_bag'), '--topic', '/camera/color/image_raw/compressed',
                          '--out', str(out), override]) == 2
    assert expected in _one_error_line(capsys, 'robotag-finetune')
    assert not (tmp_path / 'tuned').exists()
