"""The default model's recipe as data: phases in order, each rendering its frames and training
from the one before, resumable, installed into ``models/`` at the end.

A recipe YAML (config/recipe/*.yaml) lists the phases; each names its training config
(config/train/*.yaml), the frames it renders (DR config, folders, frames, first seed), its
overrides (``key.sub=value``, and more of them on a GPU), and whether the keypoint lifter
trains after it. The runner renders what is missing, trains each phase whose artifact is not
there yet (``--resume`` continues a stopped one from its last checkpoint), starts each from the
previous phase's artifact (``init_from``), writes the phase list into the final artifact's
sidecar (``training.recipe``) and copies that artifact to the recipe's ``install_to``.

    python -m robotag_ros.training.recipe config/recipe/panda_default.yaml [--device cuda]
        [--from-phase NAME --init ARTIFACT] [--resume] [--runs-dir DIR] [--no-lifter]
        [--dry-run] [key.sub=value ...]
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from robotag_ros.atomic_io import atomic_write, atomic_write_text


@dataclass
class RenderSpec:
    """The frames a phase renders: ``folders`` DREAM folders (one lens each), ``frames`` in all,
    seeds ``first_seed + i`` (or the listed ``seeds``), with one DR config. A folder is named
    ``{prefix}_{seed - first_seed}``."""

    prefix: str
    frames: int
    first_seed: int
    config: str
    folders: int = 8
    seeds: list | None = None

    def folder_seeds(self) -> list[int]:
        if self.seeds:
            return list(self.seeds)
        return [self.first_seed + i for i in range(self.folders)]


@dataclass
class Phase:
    name: str
    train: str                                  # config/train/*.yaml
    render: RenderSpec | None = None
    val: RenderSpec | None = None
    overrides: list = field(default_factory=list)
    cuda_overrides: list = field(default_factory=list)
    lifter_minutes: float = 0.0                 # > 0: train the keypoint lifter after it
    resume_overrides: list = field(default_factory=list)   # a last partial epoch, say


@dataclass
class Recipe:
    name: str
    robot: str
    install_to: str
    data_dir: str
    runs_dir: str
    phases: list


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe YAML; one-line errors for what is missing or unknown."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f'{path}: {" ".join(str(error).split())}') from None
    if not isinstance(data, dict) or not data.get('phases'):
        raise ValueError(f'{path}: a recipe needs a list of phases')
    phases = []
    for entry in data['phases']:
        entry = dict(entry)
        try:
            for key in ('render', 'val'):
                if entry.get(key):
                    entry[key] = RenderSpec(**entry[key])
            phases.append(Phase(**entry))
        except TypeError as error:
            raise ValueError(f'{path}: phase {entry.get("name", "?")}: {error}') from None
    names = [phase.name for phase in phases]
    if len(set(names)) != len(names):
        raise ValueError(f'{path}: phase names must be unique, got {names}')
    return Recipe(name=str(data.get('name', path.stem)), robot=str(data.get('robot', 'panda')),
                  install_to=str(data.get('install_to', f'models/{path.stem}')),
                  data_dir=str(data.get('data_dir', 'data')),
                  runs_dir=str(data.get('runs_dir', f'runs/{path.stem}')), phases=phases)


def folders(recipe: Recipe, spec: RenderSpec) -> list[str]:
    return [f'{recipe.data_dir}/{spec.prefix}_{seed - spec.first_seed}'
            for seed in spec.folder_seeds()]


def render_commands(recipe: Recipe, spec: RenderSpec, workers: int) -> list[list[str]]:
    """robotag-synth commands for the folders of ``spec`` that are not complete."""
    commands = []
    seeds = spec.folder_seeds()
    per_folder = spec.frames // len(seeds)
    for seed, folder in zip(seeds, folders(recipe, spec)):
        if (Path(folder) / f'{per_folder - 1:06d}.json').exists():
            continue
        commands.append([sys.executable, '-m', 'robotag_ros.data.cli', '--robot', recipe.robot,
                         '--out', folder, '--num', str(per_folder),
                         '--seed', str(seed), '--size', '640x480',
                         '--config', spec.config, '--workers', str(workers), '--no-progress'])
    return commands


def artifact_of(recipe: Recipe, phase: Phase) -> str:
    return f'{recipe.runs_dir}/{phase.name}/model'


def train_command(recipe: Recipe, phase: Phase, init_from: str | None, device: str,
                  resume: bool, extra: list[str]) -> list[str]:
    overrides = [f'run_dir={recipe.runs_dir}/{phase.name}',
                 f'artifact_out={artifact_of(recipe, phase)}', f'device={device}']
    if phase.render is not None:
        overrides.append(f'data.train=[{",".join(folders(recipe, phase.render))}]')
    if phase.val is not None:
        overrides.append(f'data.val=[{",".join(folders(recipe, phase.val))}]')
    if init_from:
        overrides.append(f'init_from={init_from}')
    overrides += phase.overrides + (phase.cuda_overrides if device != 'cpu' else []) + extra
    return [sys.executable, '-m', 'robotag_ros.training.cli', 'train', '--config', phase.train,
            *(['--resume'] if resume else []), *overrides]


def plan(recipe: Recipe, device: str, workers: int, from_phase: str | None,
         init: str | None, resume: bool, extra: list[str],
         lifter: bool = True, render_train: bool = True) -> list[tuple[str, list[str]]]:
    """(what, command) in order: for each phase still to run, its renders, its training, its
    lifter (unless ``lifter`` is false: the starting artifact's lifter is kept); then the
    installation. ``render_train`` false: the training frames are the caller's (a
    ``data.train`` override), so only the validation sets are rendered."""
    names = [phase.name for phase in recipe.phases]
    start = names.index(from_phase) if from_phase else 0
    steps, previous = [], init
    for phase in recipe.phases[start:]:
        done = Path(artifact_of(recipe, phase) + '.yaml').is_file()
        if not done:
            for spec in (phase.render if render_train else None, phase.val):
                if spec is not None:
                    steps += [(f'{phase.name}: render', c)
                              for c in render_commands(recipe, spec, workers)]
            steps.append((f'{phase.name}: train',
                          train_command(recipe, phase, previous, device, resume, extra)))
            if phase.resume_overrides:
                steps.append((f'{phase.name}: train (last part)', train_command(
                    recipe, phase, previous, device, True, extra + phase.resume_overrides)))
            if lifter and phase.lifter_minutes > 0:
                steps.append((f'{phase.name}: lifter', [
                    sys.executable, '-m', 'robotag_ros.training.lifter', '--artifact',
                    artifact_of(recipe, phase), '--minutes', str(phase.lifter_minutes)]))
        previous = artifact_of(recipe, phase)
    return steps


def install(recipe: Recipe, recipe_path: str, device: str) -> Path:
    """Copy the last phase's artifact to ``install_to`` with the phase list in its sidecar."""
    from robotag_ros.model.artifact import artifact_paths
    source = artifact_of(recipe, recipe.phases[-1])
    weights, sidecar = artifact_paths(source)
    target_weights, target_sidecar = artifact_paths(recipe.install_to)
    record = yaml.safe_load(sidecar.read_text())
    record.setdefault('training', {})['recipe'] = {
        'file': str(recipe_path), 'device': device,
        'phases': [phase.name for phase in recipe.phases]}
    atomic_write(target_weights, lambda tmp: shutil.copyfile(weights, tmp))
    atomic_write_text(target_sidecar, yaml.safe_dump(record, sort_keys=False))
    return target_sidecar


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='robotag-recipe', description=__doc__.splitlines()[0])
    parser.add_argument('recipe')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--workers', type=int, default=2, help='render workers')
    parser.add_argument('--from-phase', help='start at this phase (earlier ones are not run)')
    parser.add_argument('--init', help='with --from-phase: the artifact it starts from')
    parser.add_argument('--resume', action='store_true',
                        help="continue each phase's run from its last checkpoint")
    parser.add_argument('--runs-dir', help="where the phases' runs go (default: the recipe's)")
    parser.add_argument('--no-lifter', action='store_true',
                        help="keep the starting artifact's keypoint lifter (it learns from "
                             'forward kinematics alone, so new images change nothing for it)')
    parser.add_argument('--data-dir', help="where the phases' frames go (default: the recipe's)")
    parser.add_argument('--no-train-render', action='store_true',
                        help="render no training frames: they come as a data.train override "
                             '(the GPU sprint renders its own); validation sets still render')
    parser.add_argument('--no-install', action='store_true')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    parser.add_argument('overrides', nargs='*', help='key.sub=value for every training phase')
    # Intermixed: training overrides may follow the options (scripts/train_default_model.sh "$@").
    args = parser.parse_intermixed_args(argv)
    try:
        recipe = load_recipe(args.recipe)
        names = [phase.name for phase in recipe.phases]
        if args.from_phase and args.from_phase not in names:
            raise ValueError(f'--from-phase: no phase {args.from_phase!r} (phases: {names})')
        if args.init and not args.from_phase:
            raise ValueError('--init needs --from-phase')
    except ValueError as error:
        print(f'robotag-recipe: {error}', file=sys.stderr)
        return 2
    if args.runs_dir:
        recipe.runs_dir = args.runs_dir
    if args.data_dir:
        recipe.data_dir = args.data_dir
    steps = plan(recipe, args.device, args.workers, args.from_phase, args.init, args.resume,
                 args.overrides, lifter=not args.no_lifter,
                 render_train=not args.no_train_render)
    for what, command in steps:
        print(f'[recipe] {what}: {shlex.join(command)}', flush=True)
        if not args.dry_run:
            subprocess.run(command, check=True)
    if not args.dry_run and not args.no_install:
        print(f'[recipe] installed {install(recipe, args.recipe, args.device)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
