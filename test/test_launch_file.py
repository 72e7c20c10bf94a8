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


@pytest.mark.parametrize('node', ['estimator', 'calibrator'])
def test_params_file_keys_are_the_nodes_parameters(node):
    from robotag_ros.parameters.schema import parameter_problem
    schema = {p.name: p for p in _schema(node)}
    params = yaml.safe_load((REPO / 'config' / f'{node}.yaml').read_text())
    values = params[node]['ros__parameters']
    assert list(values) == list(schema)
    for name, value in values.items():
        assert type(value) is schema[name].kind, (name, value)
        assert parameter_problem(schema[name], value) is None, name


def _schema(node):
    from robotag_ros.parameters.calibrator import CALIBRATOR_PARAMETERS
    from robotag_ros.parameters.estimator import ESTIMATOR_PARAMETERS
    return {'estimator': ESTIMATOR_PARAMETERS, 'calibrator': CALIBRATOR_PARAMETERS}[node]


def _overrides(tree, name):
    """{launch argument: parameter} of a module-level ``NAME = {'arg': ('param', type)}``."""
    (assign,) = [node for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], 'id', None) == name]
    return {ast.literal_eval(key): ast.literal_eval(value.elts[0])
            for key, value in zip(assign.value.keys, assign.value.values)}


def _declared_defaults(tree):
    return {ast.literal_eval(c.args[0]): c.keywords[0].value for c in
            _calls(tree, 'DeclareLaunchArgument') if c.keywords[0].arg == 'default_value'}


def test_launch_overrides_are_declared_parameters_given_only(launch_tree):
    overrides = _overrides(launch_tree, 'PARAMETER_OVERRIDES')
    declared = {parameter.name for parameter in _schema('estimator')}
    assert overrides and set(overrides.values()) <= declared, set(overrides.values()) - declared
    # Each override argument defaults to '' (not given): the params file keeps its values.
    defaults = _declared_defaults(launch_tree)
    assert {argument: ast.literal_eval(defaults[argument]) for argument in overrides} == \
        dict.fromkeys(overrides, '')


def test_calibrate_launch_includes_the_estimator_launch():
    tree = ast.parse((REPO / 'launch' / 'calibrate.launch.py').read_text())
    assert [ast.literal_eval(_keyword(c, 'executable')) for c in _calls(tree, 'Node')] == \
        ['calibrator']
    assert 'estimator.launch.py' in ast.unparse(_calls(tree, 'IncludeLaunchDescription')[0])
    (passed,) = [node for node in tree.body if isinstance(node, ast.Assign)
                 and node.targets[0].id == 'ESTIMATOR_ARGUMENTS']
    estimator_arguments = set(_declared_defaults(ast.parse(LAUNCH.read_text())))
    assert set(ast.literal_eval(passed.value)) <= estimator_arguments
    declared = {parameter.name for parameter in _schema('calibrator')}
    overrides = _overrides(tree, 'CALIBRATOR_OVERRIDES')
    assert overrides and set(overrides.values()) <= declared
    defaults = _declared_defaults(tree)
    assert all(ast.literal_eval(defaults[argument]) == '' for argument in overrides)


def test_given_overrides_skip_what_was_not_given_and_type_the_rest():
    from robotag_ros.ros.launch_arguments import given_overrides
    parameters = {'model': ('model_path', str), 'frames': ('frames_to_calibrate', int),
                  'tf': ('publish_tf', bool), 'k': ('min_consistency', float)}
    assert given_overrides({'model': '', 'frames': '', 'tf': '', 'k': ''}, parameters) == {}
    assert given_overrides({'model': '0001', 'frames': '50', 'tf': 'False', 'k': '0.5'},
                           parameters) == {'model_path': '0001', 'frames_to_calibrate': 50,
                                           'publish_tf': False, 'min_consistency': 0.5}
    with pytest.raises(ValueError, match='publish_tf'):
        given_overrides({'tf': 'maybe'}, parameters)
    with pytest.raises(ValueError, match='frames_to_calibrate'):
        given_overrides({'frames': 'many'}, parameters)


def test_remapped_topics_are_the_nodes_subscriptions(node_call):
    remapped = {ast.literal_eval(pair.elts[0]) for pair in _keyword(node_call, 'remappings').elts}
    node_tree = ast.parse(NODE_SOURCE.read_text())
    calls = _calls(node_tree, 'create_subscription')
    subscribed = {ast.literal_eval(call.args[1]) for call in calls
                  if isinstance(call.args[1], ast.Constant)}
    assert remapped - {'joint_states'} == subscribed == {'image', 'camera_info'}
    # joint_states, the one remapped publication (calibrate.launch.py moves it aside).
    publishers = (REPO / 'robotag_ros' / 'ros' / 'estimate_publishers.py').read_text()
    assert re.search(r"create_publisher\(JointState, 'joint_states'", publishers)
    # The one subscription whose topic is a parameter (not a remapping): measured joints.
    by_parameter = [ast.unparse(call.args[1]) for call in calls
                    if not isinstance(call.args[1], ast.Constant)]
    assert by_parameter == ["p('measured_joint_states_topic')"]


def test_every_launch_configuration_is_declared(launch_tree):
    declared = {ast.literal_eval(c.args[0]) for c in _calls(launch_tree, 'DeclareLaunchArgument')}
    used = {ast.literal_eval(c.args[0]) for c in _calls(launch_tree, 'LaunchConfiguration')
            if isinstance(c.args[0], ast.Constant)}
    assert {'model', 'backend', 'robot', 'camera', 'params_file'} <= declared
    assert used <= declared, used - declared


def test_calibrate_launch_holds_a_static_camera_by_default():
    """The calibration's camera is on a tripod: the included estimator gets static_camera
    true unless the argument says otherwise (estimator.launch.py passes it on when given)."""
    tree = ast.parse((REPO / 'launch' / 'calibrate.launch.py').read_text())
    assert ast.literal_eval(_declared_defaults(tree)['static_camera']) == 'true'
    estimator_overrides = _overrides(ast.parse(LAUNCH.read_text()), 'PARAMETER_OVERRIDES')
    assert estimator_overrides['static_camera'] == 'static_camera'
    assert estimator_overrides['camera_calibration_file'] == 'camera_calibration_file'
