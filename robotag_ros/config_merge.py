"""Mappings (YAML files, ``key.sub=value`` overrides) onto config dataclasses: one rule for the
model, training and domain-randomisation configs, one error type.

A merge returns a copy: nested dataclasses merge key by key; a dict field whose default lists
keys (the loss weight groups) takes those keys only and keeps the others; a dict field with an
empty default (free-form extras such as ``model_overrides``) merges whatever it is given; any
other field is replaced. A float field accepts '1e-3', which YAML 1.1 reads as text; a bool, int
or float field (or an Optional one) refuses any other type here, before a run directory is made
on a setting that would fail later (``epochs=abc``).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A mapping that does not fit its config dataclass: unknown key, wrong shape or value."""


def _default(instance: Any, name: str):
    field = next(f for f in dataclasses.fields(instance) if f.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _scalar_kind(instance: Any, name: str) -> type | None:
    """bool, int or float when field ``name`` holds one (``Optional`` too), else None."""
    try:
        hint = typing.get_type_hints(type(instance)).get(name)
    except (NameError, TypeError):   # an annotation that does not resolve: no check
        return None
    options = [hint]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
    return options[0] if len(options) == 1 and options[0] in (bool, int, float) else None


def _checked_scalar(kind: type, value, where: str):
    """``value`` as a ``kind`` setting (None passes: Optional fields and their defaults)."""
    if value is None or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    expected = {bool: 'true or false', int: 'an integer', float: 'a number'}[kind]
    raise ConfigError(f'{where}: expects {expected}, got {value!r}')


def merge_dicts(current: dict, updates: dict, where: str, fixed_keys=None) -> dict:
    """``current`` with ``updates`` merged in, recursively for nested mappings; with
    ``fixed_keys`` any other key is an error."""
    if not isinstance(updates, dict):
        raise ConfigError(f'{where}: expected a mapping, got {type(updates).__name__}')
    unknown = sorted(set(updates) - set(fixed_keys)) if fixed_keys else []
    if unknown:
        raise ConfigError(f'{where}: unknown keys {unknown} (known: {sorted(fixed_keys)})')
    merged = dict(current)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = merge_dicts(merged[key], value, f'{where}.{key}')
        merged[key] = value
    return merged


def merge_into(instance: Any, updates: dict, where: str) -> Any:
    """A copy of dataclass ``instance`` with ``updates`` applied (the module's rule above)."""
    if not isinstance(updates, dict):
        raise ConfigError(f'{where}: expected a mapping, got {type(updates).__name__}')
    known = {f.name for f in dataclasses.fields(instance)}
    changes = {}
    for key, value in updates.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {sorted(known)})")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            changes[key] = merge_into(current, value, f'{where}.{key}')
        elif isinstance(current, dict):
            changes[key] = merge_dicts(current, value, f'{where}.{key}',
                                       fixed_keys=list(_default(instance, key) or {}))
        elif _scalar_kind(instance, key) is not None:
            changes[key] = _checked_scalar(_scalar_kind(instance, key), value, f'{where}.{key}')
        else:
            changes[key] = value
    try:
        return dataclasses.replace(instance, **changes)
    except ConfigError:
        raise
    except (TypeError, ValueError) as error:   # a dataclass's own checks (__post_init__)
        raise ConfigError(f'{where}: {error}') from None
