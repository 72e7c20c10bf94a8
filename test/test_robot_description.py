"""Robot YAMLs are checked against their URDFs; bad ones are refused with the item named."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robotag_ros.robot import RobotDescriptionError, bundled_robots, load_description
from robotag_ros.robot.cli import main as robot_cli

PANDA_YAML = Path(__file__).resolve().parents[1] / 'config' / 'robots' / 'panda.yaml'


def _variant(tmp_path, **changes):
    data = yaml.safe_load(PANDA_YAML.read_text())
    data.update(changes)
    path = tmp_path / 'robot.yaml'
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_robots_load():
    assert {'panda', 'kuka_iiwa'} <= set(bundled_robots())
    panda = load_description('panda')
    # DREAM's 7 first (its names and order), then ours, which make every joint observable.
    assert panda.keypoint_names[:7] == ['panda_link0', 'panda_link2', 'panda_link3',
                                        'panda_link4', 'panda_link6', 'panda_link7', 'panda_hand']
    assert len(panda.keypoint_names) == 18 and panda.dream['num_keypoints'] == 7
    assert all(any(k.offset_m) for k in panda.keypoints[7:])
    # Franka's published limits from the YAML, not pybullet's URDF (joint 4 up to 0.0 there).
    assert panda.joints[3].name == 'panda_joint4'
    assert (panda.joints[3].lower, panda.joints[3].upper) == (-3.0718, -0.0698)
    assert all(joint.limits_from == 'yaml' for joint in panda.joints)


def test_yaml_joint_limits_bound_sampling_and_clamping(panda):
    import torch
    limits = panda.joint_limits.double()
    expected = torch.tensor([[-2.8973, 2.8973], [-1.7628, 1.7628], [-2.8973, 2.8973],
                             [-3.0718, -0.0698], [-2.8973, 2.8973], [-0.0175, 3.7525],
                             [-2.8973, 2.8973]], dtype=torch.float64)
    torch.testing.assert_close(limits, expected, atol=1e-6, rtol=0)
    q = panda.sample_joint_angles(4096, generator=torch.Generator().manual_seed(0))
    assert (q >= panda.joint_limits[:, 0]).all() and (q <= panda.joint_limits[:, 1]).all()
    clamped = panda.clamp_to_limits(torch.zeros(1, 7))
    assert float(clamped[0, 3]) == pytest.approx(-0.0698) and float(clamped[0, 5]) == \
        pytest.approx(0.0)


def test_urdf_limits_apply_where_the_yaml_gives_none(tmp_path):
    """A YAML limit replaces the URDF's for that joint only."""
    data = yaml.safe_load(PANDA_YAML.read_text())
    del data['joint_limits']['panda_joint4']
    description = load_description(_variant(tmp_path, joint_limits=data['joint_limits']))
    assert (description.joints[3].upper, description.joints[3].limits_from) == (0.0, 'urdf')
    assert description.joints[0].limits_from == 'yaml'


@pytest.mark.parametrize('changes, named', [
    ({'joints': ['panda_joint1', 'panda_joint99']}, 'panda_joint99'),
    ({'joints': ['panda_joint1', 'panda_joint8']}, 'panda_joint8'),          # fixed joint
    ({'keypoints': [{'name': 'tip', 'link': 'panda_link42'}]}, 'panda_link42'),
    ({'base_frame': 'world'}, 'world'),
    ({'mesh_points': {'links': ['panda_link8']}}, 'panda_link8'),            # link without mesh
    ({'fixed_joint_positions': {'gripper_joint': 0.0}}, 'gripper_joint'),
    ({'urdf': 'missing/robot.urdf'}, 'robot.urdf'),
    ({'joints': ['panda_joint1', 'panda_joint2', 'panda_joint1']},
     r"\['panda_joint1'\] listed more than once"),
    ({'joints': 'panda_joint1'}, 'expected a list of names'),
    ({'fixed_joint_positions': {'panda_joint2': 0.0, 'panda_finger_joint1': 0.04}},
     "'panda_joint2' is both estimated .* and fixed"),
    ({'fixed_joint_positions': {'panda_finger_joint1': float('nan')}},
     "'panda_finger_joint1': nan is not a finite number"),
    ({'fixed_joint_positions': {'panda_finger_joint1': 'open'}},
     "'panda_finger_joint1': 'open' is not a number"),
    ({'joint_limits': {'panda_joint4': [0.5, -0.5]}}, "'panda_joint4': lower 0.5 is not below"),
    ({'joint_limits': {'panda_joint4': [-1.0]}}, r"'panda_joint4': expected \[lower, upper\]"),
    ({'joint_limits': {'panda_joint4': [-1.0, float('inf')]}}, 'not a finite number'),
    ({'joint_limits': {'panda_finger_joint1': [0.0, 0.04]}},
     "'panda_finger_joint1': not one of the estimated joints"),
])
def test_mismatched_yaml_is_refused_naming_the_item(tmp_path, changes, named):
    with pytest.raises(RobotDescriptionError, match=named):
        load_description(_variant(tmp_path, **changes))


BROKEN_URDFS = {
    'truncated': None,   # the Panda's URDF cut in the middle of an element
    'not_xml': 'garbage\n',
    'empty': '',
    'not_a_robot': '<sdf version="1.6"><model name="x"/></sdf>\n',
    'joint_without_child': '<robot name="x"><link name="a"/><joint name="j" type="revolute">'
                           '<parent link="a"/></joint></robot>\n',
    'joint_to_a_missing_link': '<robot name="x"><link name="a"/><joint name="j" type="fixed">'
                               '<parent link="a"/><child link="b"/></joint></robot>\n',
    'limit_not_a_number': '<robot name="x"><link name="a"/><link name="b"/><joint name="j" '
                          'type="revolute"><parent link="a"/><child link="b"/><limit '
                          'lower="low" upper="1"/></joint></robot>\n',
}
BROKEN_URDF_MESSAGES = {
    'truncated': r'not well-formed XML \(.*: line \d+, column \d+\)',
    'not_xml': 'not well-formed XML', 'empty': 'not well-formed XML',
    'not_a_robot': 'root element is <sdf>, not <robot>',
    'joint_without_child': "joint 'j' has no <child link=...>",
    'joint_to_a_missing_link': "joint 'j' names child link 'b', which is not a <link>",
    'limit_not_a_number': "joint 'j' has <limit lower=\"low\">, not a number",
}


@pytest.mark.parametrize('kind', sorted(BROKEN_URDFS))
def test_broken_urdf_is_refused_naming_the_fault(tmp_path, capsys, kind):
    import pybullet_data
    text = BROKEN_URDFS[kind]
    if text is None:
        full = (Path(pybullet_data.getDataPath()) / 'franka_panda' / 'panda.urdf').read_text()
        text = full[:len(full) // 3]
    (tmp_path / 'broken.urdf').write_text(text)
    yaml_path = _variant(tmp_path, urdf='broken.urdf')
    with pytest.raises(RobotDescriptionError, match=BROKEN_URDF_MESSAGES[kind]):
        load_description(yaml_path)
    assert robot_cli(['check', str(yaml_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ''
    (line,) = captured.err.strip().splitlines()
    assert line.startswith('robotag-robot: error: ')
    assert 'broken.urdf' in line and 'NoneType' not in line


def test_cli_check_refuses_contradictory_joints(tmp_path, capsys):
    cases = [({'joints': ['panda_joint1'] * 2}, 'listed more than once'),
             ({'fixed_joint_positions': {'panda_joint7': 0.0}}, 'both estimated'),
             ({'fixed_joint_positions': {'panda_finger_joint1': '.nan'}}, 'not a finite number')]
    for changes, message in cases:
        path = _variant(tmp_path, **changes)
        if changes.get('fixed_joint_positions', {}).get('panda_finger_joint1') == '.nan':
            path.write_text(path.read_text().replace("'.nan'", '.nan'))   # YAML's NaN
        assert robot_cli(['check', str(path)]) == 2
        captured = capsys.readouterr()
        assert 'OK' not in captured.out and message in captured.err, captured


@pytest.mark.parametrize('offset, message', [
    ([float('nan'), 0.0, 0.0], 'is not a finite number'),
    ([0.1, 0.0], 'expected [x, y, z] in metres')])
def test_cli_check_refuses_a_keypoint_offset_that_is_no_point(tmp_path, capsys, offset, message):
    data = yaml.safe_load(PANDA_YAML.read_text())
    data['keypoints'][-1]['offset_m'] = offset
    path = _variant(tmp_path, keypoints=data['keypoints'])
    with pytest.raises(RobotDescriptionError, match=re.escape(message)):
        load_description(path)
    assert robot_cli(['check', str(path)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert captured.out == ''
    assert line.startswith('robotag-robot: error: robot.yaml: keypoint ')
    assert 'offset_m' in line and message in line


@pytest.mark.parametrize('mesh_points, message', [
    ({'total': float('nan')}, 'mesh_points total: expected an integer >= 1, got nan'),
    ({'total': 0}, 'mesh_points total: expected an integer >= 1, got 0'),
    ({'seed': 1.5}, 'mesh_points seed: expected an integer >= 0, got 1.5')])
def test_mesh_point_counts_must_be_whole_numbers(tmp_path, mesh_points, message):
    path = _variant(tmp_path, mesh_points=mesh_points)
    with pytest.raises(RobotDescriptionError, match=re.escape(message)):
        load_description(path)


def test_cli_fk_refuses_joint_angles_that_are_not_finite(tmp_path, capsys):
    import json
    for text in ('nan,0,0,0,0,0,0', '0,0,inf,0,0,0,0', '0,zero,0,0,0,0,0'):
        assert robot_cli(['fk', 'panda', '--joints', text]) == 2, text
        captured = capsys.readouterr()
        assert captured.out == '' and len(captured.err.strip().splitlines()) == 1, captured
        assert captured.err.startswith('robotag-robot: error: ')
    joints_file = tmp_path / 'q.json'
    joints_file.write_text(json.dumps([[0.0] * 7, [float('nan')] + [0.0] * 6]))
    assert robot_cli(['fk', 'panda', '--joints-file', str(joints_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == '' and 'must be finite numbers' in captured.err


def test_unknown_robot_name_lists_the_bundled_ones():
    with pytest.raises(RobotDescriptionError, match='panda'):
        load_description('no_such_robot')


def test_user_robot_yaml_with_relative_urdf(tmp_path):
    import shutil

    import pybullet_data
    shutil.copytree(Path(pybullet_data.getDataPath()) / 'kuka_iiwa', tmp_path / 'iiwa')
    data = yaml.safe_load((PANDA_YAML.parent / 'kuka_iiwa.yaml').read_text())
    data['urdf'] = 'iiwa/model.urdf'
    (tmp_path / 'my_iiwa.yaml').write_text(yaml.safe_dump(data))
    description = load_description(tmp_path / 'my_iiwa.yaml')
    assert description.urdf_path == tmp_path / 'iiwa' / 'model.urdf'


def test_cli_check_exit_codes(tmp_path, capsys):
    assert robot_cli(['check', 'panda']) == 0
    assert 'panda_joint7' in capsys.readouterr().out
    bad = _variant(tmp_path, keypoints=[{'name': 'x', 'link': 'nowhere'}])
    assert robot_cli(['check', str(bad)]) == 2
    assert 'nowhere' in capsys.readouterr().err


def test_cli_fk_json_and_file(tmp_path, capsys):
    import json
    assert robot_cli(['fk', 'panda', '--joints', '0,0,0,0,0,0,0', '--json']) == 0
    result = json.loads(capsys.readouterr().out)
    assert result['keypoints']['panda_link2'] == pytest.approx([0.0, 0.0, 0.333], abs=1e-6)
    joints_file = tmp_path / 'q.json'
    joints_file.write_text(json.dumps([[0.0] * 7, [0.5] * 7]))
    assert robot_cli(['fk', 'panda', '--joints-file', str(joints_file), '--json']) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert robot_cli(['fk', 'panda', '--joints', '0,0']) == 2


def test_core_imports_without_rclpy(tmp_path):
    """The core must import where rclpy cannot: a meta-path hook makes every ROS import fail."""
    script = tmp_path / 'no_ros.py'
    script.write_text(
        'import sys\n'
        'class Block:\n'
        '    def find_spec(self, name, path=None, target=None):\n'
        "        if name.split('.')[0] in ('rclpy', 'tf2_ros', 'cv_bridge') or "
        "name.split('.')[0].endswith('_msgs'):\n"
        "            raise ImportError('ROS blocked for this test: ' + name)\n"
        'sys.meta_path.insert(0, Block())\n'
        'import importlib, pkgutil, robotag_ros, robotag_ros.training as training\n'
        'mods = [m.name for m in pkgutil.walk_packages(robotag_ros.__path__, "robotag_ros.")\n'
        "        if not m.name.startswith('robotag_ros.ros')]\n"
        'mods += [m.name for m in pkgutil.walk_packages(training.__path__, '
        '"robotag_ros.training.")]\n'
        'for m in mods:\n'
        '    importlib.import_module(m)\n'
        "assert not [m for m in sys.modules if m.startswith('rclpy')]\n"
        'print(len(mods), "modules")\n')
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert result.returncode == 0, result.stderr
    assert 'modules' in result.stdout
