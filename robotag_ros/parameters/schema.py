"""One description of a node's parameters: names, types, defaults, ranges, meanings and checks.

The ROS layer declares and validates the parameters from it (robotag_ros/ros/parameters.py);
the same schema renders the node's ``config/*.yaml`` and its table in the docs, so the three
never drift apart (test_node_parameters.py compares the committed files with the renders).
"""
from __future__ import annotations

import json
import math
import textwrap
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

Value = Union[bool, int, float, str, list]


@dataclass(frozen=True)
class Parameter:
    """One parameter. ``value_range``: inclusive bounds of an int or float; ``choices``: the
    strings allowed; ``check``: a further rule, value -> why it is invalid, or None."""

    name: str
    default: Value
    description: str
    read_only: bool = False
    value_range: Optional[tuple[float, float]] = None
    choices: Optional[tuple[str, ...]] = None
    check: Optional[Callable[[Value], Optional[str]]] = None

    @property
    def kind(self) -> type:
        return type(self.default)


def _type_problem(parameter: Parameter, value) -> Optional[str]:
    kind = parameter.kind
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return None   # ROS hands an integer literal to a double parameter as an int
    if kind is list:   # rclpy hands double arrays over as array.array('d')
        if not isinstance(value, (str, bytes)) and hasattr(value, '__iter__') and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return None
        return f'{parameter.name} must be a list of numbers, got {value!r}'
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return f'{parameter.name} must be {kind.__name__}, got {value!r}'
    return None


def parameter_problem(parameter: Parameter, value) -> Optional[str]:
    """Why ``value`` is invalid for ``parameter``, or None if it is valid."""
    problem = _type_problem(parameter, value)
    if problem is not None:
        return problem
    if parameter.value_range is not None:
        low, high = parameter.value_range
        if not (math.isfinite(value) and low <= value <= high):
            return f'{parameter.name} must be within {low}..{high}, got {value!r}'
    if parameter.choices is not None and value not in parameter.choices:
        return f'{parameter.name} must be one of {parameter.choices}, got {value!r}'
    return parameter.check(value) if parameter.check is not None else None


def _literal(value: Value) -> str:
    """A value as YAML (JSON is YAML: strings quoted, so '' and 'true' stay strings)."""
    return json.dumps(value)


def render_params_file(node_name: str, schema: Sequence[Parameter], header: str) -> str:
    """``config/<node>.yaml``: every parameter at its default, its description as a comment."""
    lines = [f'# {line}' for line in header.splitlines()]
    lines += [f'{node_name}:', '  ros__parameters:']
    for parameter in schema:
        lines += textwrap.wrap(parameter.description, 99, initial_indent='    # ',
                               subsequent_indent='    # ')
        lines.append(f'    {parameter.name}: {_literal(parameter.default)}')
    return '\n'.join(lines) + '\n'


def _cell(value: Value) -> str:
    return "`''`" if value == '' else f'`{_literal(value).strip(chr(34))}`'


def render_docs_table(schema: Sequence[Parameter]) -> str:
    """The Markdown table of the parameters (docs/node.md)."""
    lines = ['| parameter | default | changeable at run time | meaning |', '|---|---|---|---|']
    for parameter in schema:
        meaning = parameter.description
        if parameter.value_range is not None:
            low, high = (_literal(parameter.kind(bound)) for bound in parameter.value_range)
            meaning += f' Range {low}..{high}.'
        lines.append(f'| `{parameter.name}` | {_cell(parameter.default)} | '
                     f'{"no" if parameter.read_only else "yes"} | {meaning} |')
    return '\n'.join(lines) + '\n'
