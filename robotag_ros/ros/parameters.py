"""Declare a node's parameters from its schema (robotag_ros.parameters) and validate every value
set, at start-up and at run time, with the schema's rules."""
from __future__ import annotations

from typing import Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node

from robotag_ros.parameters.schema import Parameter, parameter_problem


def descriptor(parameter: Parameter) -> ParameterDescriptor:
    """The ROS descriptor: description, read-only flag and the numeric range."""
    ranges = {}
    if parameter.value_range is not None:
        low, high = parameter.value_range
        if parameter.kind is int:
            ranges['integer_range'] = [IntegerRange(from_value=int(low), to_value=int(high),
                                                    step=1)]
        else:
            ranges['floating_point_range'] = [FloatingPointRange(
                from_value=float(low), to_value=float(high), step=0.0)]
    return ParameterDescriptor(description=parameter.description,
                               read_only=parameter.read_only, **ranges)


def declare_parameters(node: Node, schema: Sequence[Parameter]) -> None:
    """Declare every parameter of ``schema`` on ``node``, each value checked against it (the
    check is installed first, so a bad value given at start-up is refused too)."""
    by_name = {parameter.name: parameter for parameter in schema}

    def on_set(parameters) -> SetParametersResult:
        for item in parameters:
            if item.name in by_name:
                reason = parameter_problem(by_name[item.name], item.value)
                if reason is not None:
                    return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    for parameter in schema:
        node.declare_parameter(parameter.name, parameter.default, descriptor(parameter))
