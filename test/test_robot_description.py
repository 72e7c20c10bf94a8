"""Robot YAMLs are checked against their URDFs; bad ones are refused with the item named."""
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
    assert len(panda.keypoint_names) == 15 and panda.dream['num_keypoints'] == 7
    assert all(any(k.offset_m) for k in panda.keypoints[7:])
    assert panda.joints[3].name == 'panda_joint4' and panda.joints[3].upper == 0.0


@pytest.mark.parametrize('changes, named', [
    ({'joints': ['panda_joint1', 'panda_joint99']}, 'panda_joint99'),
    ({'joints': ['panda_joint1', 'panda_joint8']}, 'panda_joint8'),          # fixed joint
    ({'keypoints': [{'name': 'tip', 'link': 'panda_link42'}]}, 'panda_link42'),
    ({'base_frame': 'world'}, 'world'),
    ({'mesh_points': {'links': ['panda_link8']}}, 'panda_link8'),            # link without mesh
    ({'fixed_joint_positions': {'gripper_joint': 0.0}}, 'gripper_joint'),
    ({'urdf': 'missing/robot.urdf'}, 'robot.urdf'),
])
def test_mismatched_yaml_is_refused_naming_the_item(tmp_path, changes, named):
    with pytest.raises(RobotDescriptionError, match=named):
        load_description(_variant(tmp_path, **changes))


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
    assert robot_cli(['check', str(bad)]) == 1
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
    assert robot_cli(['fk', 'panda', '--joints', '0,0']) == 1


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
