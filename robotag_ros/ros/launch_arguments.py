"""Launch arguments that override a node's parameters file only when the user gives them.

``ros2 launch`` hands every declared argument to the launch file, given or not, and parameters
listed after a node's params file win over it: an argument with a real default would silently
replace what the user wrote in ``config/*.yaml``. So the launch files declare these arguments
with the default ``''`` ("not given") and pass on only the given ones, typed like the parameter.
Used by launch/estimator.launch.py and launch/calibrate.launch.py (imports no launch package,
so it is tested where launch is not installed).
"""
from __future__ import annotations

NOT_GIVEN = ''
_TRUE = ('true', '1', 'yes', 'on')
_FALSE = ('false', '0', 'no', 'off')


def _typed(name: str, text: str, kind: type):
    if kind is bool:
        lowered = text.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise ValueError(f"launch argument for '{name}': expected true or false, got {text!r}")
        return lowered in _TRUE
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"launch argument for '{name}': expected {kind.__name__}, "
                         f'got {text!r}') from None


def given_overrides(values: dict[str, str], parameters: dict[str, tuple[str, type]]) -> dict:
    """{parameter: typed value} for the arguments in ``values`` (argument -> performed text)
    that were given; ``parameters`` maps each argument to (parameter name, type)."""
    overrides = {}
    for argument, text in values.items():
        if text == NOT_GIVEN:
            continue
        name, kind = parameters[argument]
        overrides[name] = _typed(name, text, kind)
    return overrides


def launch_overrides(context, parameters: dict[str, tuple[str, type]]) -> dict:
    """The given overrides as launch_ros parameters, read from a launch context (strings wrapped
    so launch does not YAML-parse them: a model path '0001' stays a string)."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.parameter_descriptions import ParameterValue

    values = {argument: LaunchConfiguration(argument).perform(context) for argument in parameters}
    return {name: ParameterValue(value, value_type=str) if isinstance(value, str) else value
            for name, value in given_overrides(values, parameters).items()}
