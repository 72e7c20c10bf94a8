"""The recipe as data: the bundled model's phases load, plan in order from the previous phase's
artifact, skip what is done, and a model with more keypoints grows from one with fewer."""
from pathlib import Path

import pytest
import torch

from robotag_ros.training.recipe import load_recipe, main, plan
from robotag_ros.training.trainer import grow_into

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / 'config' / 'recipe' / 'panda_default.yaml'


def test_the_bundled_recipe_chains_its_phases(tmp_path):
    recipe = load_recipe(RECIPE)
    recipe.data_dir, recipe.runs_dir = str(tmp_path / 'data'), str(tmp_path / 'runs')
    for phase in recipe.phases:   # every training config it names exists
        assert (ROOT / phase.train).is_file(), phase.train
    steps = plan(recipe, 'cpu', 2, None, None, False, [])
    trains = [command for what, command in steps if what.endswith(': train')]
    assert len(trains) == len(recipe.phases)
    assert not any(arg.startswith('init_from=') for arg in trains[0])
    for earlier, later in zip(recipe.phases, trains[1:]):
        assert f'init_from={recipe.runs_dir}/{earlier.name}/model' in later
    # The last phase alone, from a given artifact; a finished phase is not planned again.
    steps = plan(recipe, 'cuda', 2, 'room', 'models/panda_default', False, [])
    train = next(command for what, command in steps if what == 'room: train')
    assert 'init_from=models/panda_default' in train and 'data.cache_trunk=false' in train
    done = Path(recipe.runs_dir) / 'room' / 'model.yaml'
    done.parent.mkdir(parents=True)
    done.write_text('{}')
    assert not [what for what, _ in plan(recipe, 'cpu', 2, 'room', 'x', False, [])
                if what.startswith('room')]


def test_the_runner_keeps_the_lifter_and_takes_overrides_after_its_options(tmp_path, capsys):
    recipe = load_recipe(RECIPE)
    recipe.runs_dir = str(tmp_path / 'runs')
    steps = plan(recipe, 'cpu', 2, 'room', 'models/panda_default', False, [], lifter=False)
    assert [what for what, _ in steps if what.endswith('lifter')] == []
    assert [what for what, _ in plan(recipe, 'cpu', 2, 'room', 'models/panda_default', False,
                                     []) if what.endswith('lifter')] == ['room: lifter']
    # Overrides after the options, and another runs folder (the GPU sprint's call).
    assert main([str(RECIPE), '--from-phase', 'room', '--init', 'models/panda_default',
                 '--runs-dir', str(tmp_path / 'sprint'), '--no-lifter', '--dry-run',
                 'optim.lr=1e-4']) == 0
    printed = capsys.readouterr().out
    assert f'run_dir={tmp_path / "sprint"}/room' in printed and 'optim.lr=1e-4' in printed
    assert 'lifter' not in printed
    # The sprint's frames are its own: no training frames rendered, the val set in its folder.
    assert main([str(RECIPE), '--from-phase', 'whole_trunk', '--init', 'models/panda_default',
                 '--data-dir', str(tmp_path / 'frames'), '--no-train-render', '--dry-run']) == 0
    renders = [line for line in capsys.readouterr().out.splitlines() if ': render:' in line]
    assert renders and all('room_val_0' in line and str(tmp_path / 'frames') in line
                           for line in renders)


def test_the_candidate_recipe_continues_from_the_bundled_phase():
    recipe = load_recipe(ROOT / 'config' / 'recipe' / 'panda_room_more.yaml')
    assert [phase.name for phase in recipe.phases] == ['room_more']
    assert all((ROOT / phase.train).is_file() for phase in recipe.phases)


def test_recipe_refuses_an_unknown_phase(capsys):
    assert main([str(RECIPE), '--from-phase', 'nope', '--dry-run']) == 2
    assert 'no phase' in capsys.readouterr().err


def test_grow_into_keeps_the_old_keypoints_and_refuses_a_smaller_model():
    target = {'heatmaps.weight': torch.zeros(17, 8, 1, 1), 'same': torch.zeros(3)}
    source = {'heatmaps.weight': torch.ones(15, 8, 1, 1), 'same': torch.ones(3)}
    merged, grown = grow_into(target, source)
    assert grown == ['heatmaps.weight']
    weight = merged['heatmaps.weight']
    assert weight[:15].eq(1).all() and weight[15:].eq(0).all()
    from robotag_ros.training.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match='another model'):
        grow_into({'heatmaps.weight': torch.zeros(10, 8, 1, 1)}, source)
