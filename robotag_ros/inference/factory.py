"""Build a PoseEstimator from a ``module:callable`` factory name: the node's and the tools' way
to pick the project's Estimator (the default), a test's fake, or a user's own."""
from __future__ import annotations

import importlib
import inspect

from robotag_ros.inference.estimate import missing_pose_estimator_members

DEFAULT_FACTORY = 'robotag_ros.estimator_factory:load_estimator'


def load_factory(spec: str):
    """The estimator factory named by 'module:callable', or the project's default."""
    module_name, attribute = (spec or DEFAULT_FACTORY).split(':')
    return getattr(importlib.import_module(module_name), attribute)


def build_estimator(factory, model_path: str, backend: str, device: str, robot: str):
    """Call the factory; pass ``robot`` only to factories that take it."""
    kwargs = dict(model_path=model_path, backend=backend, device=device)
    if 'robot' in inspect.signature(factory).parameters:
        kwargs['robot'] = robot
    estimator = factory(**kwargs)
    missing = missing_pose_estimator_members(estimator)
    if missing:
        raise ValueError(f'the estimator factory returned a {type(estimator).__name__} without '
                         f'{missing} (see robotag_ros.inference.estimate.PoseEstimator)')
    if robot and '/' not in robot and estimator.robot_name != robot:
        raise ValueError(f'parameter robot={robot!r} but the model is for '
                         f'{estimator.robot_name!r}')
    return estimator
