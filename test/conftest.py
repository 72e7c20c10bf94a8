"""Shared fixtures: robots are loaded once per session (mesh loading takes ~2 s)."""
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope='session')
def panda():
    from robotag_ros.robot import load_robot
    return load_robot('panda')


@pytest.fixture(scope='session')
def kuka():
    from robotag_ros.robot import load_robot
    return load_robot('kuka_iiwa')
