"""What can be checked of launch/estimator.launch.py without the ROS 2 launch system.

The launch file is parsed, not run (launch/launch_ros are not installable here): the executable
it starts is a console script, the params file exists with exactly the node's parameters, the
remapped topics are the node's subscriptions and every LaunchConfiguration is declared.
test_launch_estimator.py runs it for real where launch_testing exists.
"""
import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch' / 'estimator.launch.py'
NODE_SOURCE = REPO / 'robotag_ros' / 'ros' / 'estimator_node.py'


def _calls(tree, name):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, 'id', getattr(node.func, 'attr', None)) == name]


def _keyword(call, name):
    return next(k.value for k in call.keywords if k.arg == name)


@pytest.fixture(scope='module')
def launch_tree():
    return ast.parse(LAUNCH.read_text())


@pytest.fixture(scope='module')
def node_call(launch_tree):
    (call,) = _calls(launch_tree, 'Node')
    return call


def test_executable_is_a_console_script_of_this_package(node_call):
    setup = (REPO / 'setup.py').read_text()
    assert ast.literal_eval(_keyword(node_call, 'package')) == \
        re.search(r"package_name = '(\w+)'", setup).group(1)
    executable = ast.literal_eval(_keyword(node_call, 'executable'))
    match = re.search(rf"'{executable} = ([\w.]+):(\w+)'", setup)
    assert match, f'no console script {executable!r} in setup.py'
    assert match.groups() == ('robotag_ros.ros.estimator_node', 'main')
    assert re.search(r'^def main\(', NODE_SOURCE.read_text(), re.M)


def test_launch_and_config_files_are_installed():
    setup = (REPO / 'setup.py').read_text()
    assert "glob('launch/*.launch.py')" in setup and "glob('config/*.yaml')" in setup


def test_params_file_exists_and_names_the_node(launch_tree, node_call):
    params_default = [c for c in _calls(launch_tree, 'DeclareLaunchArgument')
                      if ast.literal_eval(c.args[0]) == 'params_file'][0]
    parts = [ast.literal_eval(e) for e in _keyword(params_default, 'default_value').args[0].elts
             if isinstance(e, ast.Constant)]
    assert parts == ['config', 'estimator.yaml']
    config = yaml.safe_load((REPO / 'config' / 'estimator.yaml').read_text())
    assert list(config) == [ast.literal_eval(_keyword(node_call, 'name'))]
    assert 'ros__parameters' in config['estimator']


def test_params_file_keys_are_the_nodes_parameters():
    pytest.importorskip('rclpy', reason='the node module imports rclpy')
    from robotag_ros.ros.estimator_node import PARAMETERS, validate_parameter
    params = yaml.safe_load((REPO / 'config' / 'estimator.yaml').read_text())
    values = params['estimator']['ros__parameters']
    assert set(values) == set(PARAMETERS)
    for name, value in values.items():
        default = PARAMETERS[name][0]
        assert type(value) is type(default), (name, value, default)
        assert validate_parameter(name, value) is None, name


def test_launch_overrides_are_declared_parameters(node_call):
    overrides = [d for d in _keyword(node_call, 'parameters').elts if isinstance(d, ast.Dict)]
    names = {ast.literal_eval(k) for d in overrides for k in d.keys}
    declared = set(re.findall(r"^    '(\w+)': \(", NODE_SOURCE.read_text(), re.M))
    assert names and names <= declared, names - declared


def test_remapped_topics_are_the_nodes_subscriptions(node_call):
    remapped = {ast.literal_eval(pair.elts[0]) for pair in _keyword(node_call, 'remappings').elts}
    node_tree = ast.parse(NODE_SOURCE.read_text())
    calls = _calls(node_tree, 'create_subscription')
    subscribed = {ast.literal_eval(call.args[1]) for call in calls
                  if isinstance(call.args[1], ast.Constant)}
    assert remapped == subscribed == {'image', 'camera_info'}
    # The one subscription whose topic is a parameter (not a remapping): measured joints.
    by_parameter = [ast.unparse(call.args[1]) for call in calls
                    if not isinstance(call.args[1], ast.Constant)]
    assert by_parameter == ["p('measured_joint_states_topic')"]


def test_every_launch_configuration_is_declared(launch_tree):
    declared = {ast.literal_eval(c.args[0]) for c in _calls(launch_tree, 'DeclareLaunchArgument')}
    used = {ast.literal_eval(c.args[0]) for c in _calls(launch_tree, 'LaunchConfiguration')
            if isinstance(c.args[0], ast.Constant)}
    # text(name) wraps LaunchConfiguration(name) for the string overrides.
    used |= {ast.literal_eval(c.args[0]) for c in _calls(launch_tree, 'text')}
    assert {'model', 'backend', 'robot', 'camera', 'params_file'} <= declared
    assert used <= declared, used - declared
