"""Loading pretrained backbone weights from a local path, strictly: a mismatch is a clear error."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn


class PretrainedWeightsError(ValueError):
    """The weights at a path do not fit the backbone the config describes."""


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch checkpoint (.pt/.pth/.bin)."""
    if path.suffix == '.safetensors':
        from safetensors.torch import load_file
        return load_file(str(path))
    state = torch.load(str(path), map_location='cpu', weights_only=True)
    if isinstance(state, dict) and 'state_dict' in state and isinstance(state['state_dict'], dict):
        state = state['state_dict']
    if not isinstance(state, dict):
        raise PretrainedWeightsError(f'{path}: holds a {type(state).__name__}, not a state dict')
    return state


def _load_strict(module: nn.Module, state: dict, path: Path, what: str) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise PretrainedWeightsError(
            f'{what}: weights at {path} do not match the configured backbone: '
            f'{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected '
            f'(e.g. {unexpected[:3]}), {len(wrong_shape)} with another shape '
            f'(e.g. {wrong_shape[:3]}). Check backbone_* and its config in the model YAML.')
    module.load_state_dict(state, strict=True)


def load_pretrained(model_cls, config, path: Optional[str], what: str,
                    module: Optional[nn.Module] = None) -> nn.Module:
    """Build ``model_cls(config)`` (or take ``module``) and fill it from ``path`` if given.

    ``path`` is a directory saved with ``save_pretrained`` (loaded with ``from_pretrained``, never
    from a hub) or a state-dict file. Missing, unexpected or wrongly shaped weights raise
    :class:`PretrainedWeightsError` naming the backbone and the path.
    """
    if path is None:
        return module if module is not None else model_cls(config)
    weights = Path(path).expanduser()
    if not weights.exists():
        raise FileNotFoundError(f'{what}: pretrained weights {weights} do not exist')
    if weights.is_dir():
        if model_cls is None:
            raise PretrainedWeightsError(
                f'{what}: {weights} is a directory, but the small backbone loads a state-dict '
                'file (.pt/.pth/.safetensors)')
        try:
            net, info = model_cls.from_pretrained(str(weights), local_files_only=True,
                                                  output_loading_info=True)
        except (OSError, RuntimeError, ValueError) as error:
            raise PretrainedWeightsError(f'{what}: cannot load {weights}: {error}') from error
        problems = {k: v for k, v in info.items() if v and k != 'error_msgs'}
        if problems or info.get('error_msgs'):
            raise PretrainedWeightsError(
                f'{what}: weights at {weights} do not match {model_cls.__name__}: {problems}')
        return net
    net = module if module is not None else model_cls(config)
    _load_strict(net, read_state_dict(weights), weights, what)
    return net
