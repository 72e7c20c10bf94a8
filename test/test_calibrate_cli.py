"""robotag-calibrate end to end: estimates from JSON/CSV and from rosbag2s of the node's output."""
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from robotag_ros.calibration import EYE_IN_HAND, read_calib
from robotag_ros.calibration.cli import main
from robotag_ros.calibration.estimates_io import (
    EstimateSeries, load_estimates_csv, read_estimates_bag, save_estimates_json,
)
from robotag_ros.calibration.synthetic import NoiseModel, simulate_estimates, transform_error
from bag_helpers import damage_mcap_mid_file, write_messages_bag

T_CAM_BASE = np.eye(4)
T_CAM_BASE[:3, :3] = Rotation.from_euler('xyz', [-120, 5, 30], degrees=True).as_matrix()
T_CAM_BASE[:3, 3] = [0.05, 0.3, 1.2]


def _node_bag(path, T_cam_base, consistency, use_tf=False, storage='sqlite3'):
    """What the estimator node publishes: camera pose (or /tf camera->base) + /diagnostics."""
    from rosbags.typesys import Stores, get_typestore

    types = get_typestore(Stores.ROS2_JAZZY).types
    Time, Header = types['builtin_interfaces/msg/Time'], types['std_msgs/msg/Header']
    Point, Quat = types['geometry_msgs/msg/Point'], types['geometry_msgs/msg/Quaternion']
    Vector3 = types['geometry_msgs/msg/Vector3']
    messages = []
    for i, (T, score) in enumerate(zip(T_cam_base, consistency)):
        stamp = 1_000_000_000 + i * 100_000_000
        header = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9),
                        frame_id='camera_color_optical_frame' if use_tf else 'panda_link0')
        if use_tf:
            qx, qy, qz, qw = Rotation.from_matrix(T[:3, :3]).as_quat()
            transform = types['geometry_msgs/msg/Transform'](
                translation=Vector3(x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                rotation=Quat(x=qx, y=qy, z=qz, w=qw))
            stamped = types['geometry_msgs/msg/TransformStamped'](
                header=header, child_frame_id='panda_link0', transform=transform)
            messages.append(('/tf', 'tf2_msgs/msg/TFMessage', stamp,
                             types['tf2_msgs/msg/TFMessage'](transforms=[stamped])))
        else:
            T_base_cam = np.linalg.inv(T)
            qx, qy, qz, qw = Rotation.from_matrix(T_base_cam[:3, :3]).as_quat()
            pose = types['geometry_msgs/msg/Pose'](
                position=Point(x=T_base_cam[0, 3], y=T_base_cam[1, 3], z=T_base_cam[2, 3]),
                orientation=Quat(x=qx, y=qy, z=qz, w=qw))
            messages.append(('/estimator/camera_pose', 'geometry_msgs/msg/PoseStamped', stamp,
                             types['geometry_msgs/msg/PoseStamped'](header=header, pose=pose)))
        status = types['diagnostic_msgs/msg/DiagnosticStatus'](
            level=0, name='estimator', message='ok', hardware_id='',
            values=[types['diagnostic_msgs/msg/KeyValue'](key='consistency', value=str(score))])
        diagnostics = types['diagnostic_msgs/msg/DiagnosticArray'](header=header, status=[status])
        messages.append(('/diagnostics', 'diagnostic_msgs/msg/DiagnosticArray', stamp + 1000,
                         diagnostics))
    write_messages_bag(path, messages, storage=storage)
    return path


def test_calibrate_from_json_estimates(tmp_path, capsys):
    sim = simulate_estimates(T_CAM_BASE, 80, NoiseModel(0.002, 0.2, 0.2),
                             np.random.default_rng(0))
    estimates = save_estimates_json(tmp_path / 'estimates.json', EstimateSeries(
        np.arange(80), sim.T, sim.consistency))
    output = tmp_path / 'out' / 'robotag.calib'
    assert main(['--estimates', str(estimates), '--output', str(output),
                 '--summary-json', str(tmp_path / 'summary.json')]) == 0
    calibration = read_calib(output)
    translation_mm, rotation_deg = transform_error(calibration.T_cam_reference, T_CAM_BASE)
    assert translation_mm < 1.5 and rotation_deg < 0.15
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['frames_rejected_outlier'] >= 16 and summary['frames_total'] == 80
    assert 'frames_used' in capsys.readouterr().out


def test_calibrate_from_a_node_bag_with_consistency(tmp_path):
    sim = simulate_estimates(T_CAM_BASE, 40, NoiseModel(0.002, 0.2, 0.0),
                             np.random.default_rng(1))
    low = np.arange(40) % 4 == 0
    sim.T[low, :3, 3] += [0.01, 0.0, 0.0]       # biased frames the node itself doubted
    scores = np.where(low, 0.1, 0.9)
    bag = _node_bag(tmp_path / 'bag', sim.T, scores)
    series = read_estimates_bag(bag, base_frame='panda_link0')
    np.testing.assert_allclose(series.consistency, scores)
    np.testing.assert_allclose(series.T_cam_base, sim.T, atol=1e-9)
    output = tmp_path / 'robotag.calib'
    summary_path = tmp_path / 's.json'
    assert main(['--bag', str(bag), '--output', str(output), '--min-consistency', '0.5',
                 '--no-outlier-rejection', '--summary-json', str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())
    assert summary['frames_rejected_consistency'] == int(low.sum())
    assert transform_error(read_calib(output).T_cam_reference, T_CAM_BASE)[0] < 1.5


def test_tf_bag_needs_the_camera_frame(tmp_path, capsys):
    sim = simulate_estimates(T_CAM_BASE, 10, NoiseModel(0.001, 0.1, 0.0),
                             np.random.default_rng(2))
    bag = _node_bag(tmp_path / 'bag', sim.T, np.ones(10), use_tf=True)
    assert main(['--bag', str(bag), '--output', str(tmp_path / 'x.calib')]) == 2
    assert 'camera_color_optical_frame->panda_link0' in capsys.readouterr().err
    assert not (tmp_path / 'x.calib').exists()
    series = read_estimates_bag(bag, 'panda_link0', camera_frame='camera_color_optical_frame')
    np.testing.assert_allclose(series.T_cam_base, sim.T, atol=1e-9)


def test_a_bag_damaged_mid_file_is_refused_unless_accepted(tmp_path, capsys):
    """The bag reads short without an error (58 of 120 messages in the report that found it):
    the counts in its metadata show it. Refused, nothing written; accepted, said loudly."""
    sim = simulate_estimates(T_CAM_BASE, 30, NoiseModel(0.002, 0.2, 0.0),
                             np.random.default_rng(4))
    bag = _node_bag(tmp_path / 'bag', sim.T, np.full(30, 0.9), storage='mcap')
    hidden = damage_mcap_mid_file(bag, fraction=0.5)
    assert hidden == 30
    output, summary = tmp_path / 'robotag.calib', tmp_path / 'summary.json'
    output.write_text('an earlier calibration\n')
    summary.write_text('{"earlier": true}\n')
    argv = ['--bag', str(bag), '--output', str(output), '--summary-json', str(summary)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert f'rosbag2 {bag} is damaged: read ' in err and 'of the 30 messages' in err
    assert '--accept-damaged-bag' in err
    assert output.read_text() == 'an earlier calibration\n'
    assert summary.read_text() == '{"earlier": true}\n'
    assert main(argv + ['--accept-damaged-bag']) == 0
    err = capsys.readouterr().err
    assert 'WARNING' in err and 'is damaged' in err
    assert 'is damaged' in json.loads(summary.read_text())['input_damaged']
    assert json.loads(summary.read_text())['frames_total'] < 30
    assert transform_error(read_calib(output).T_cam_reference, T_CAM_BASE)[0] < 5.0


def test_missing_inputs_give_clear_errors(tmp_path, capsys):
    assert main(['--bag', str(tmp_path / 'nope')]) == 2
    assert 'nope' in capsys.readouterr().err
    bad = tmp_path / 'bad.csv'
    bad.write_text('stamp_ns,tx,ty\n1,0,0\n')
    with pytest.raises(ValueError, match=r"missing CSV columns \['tz'"):
        load_estimates_csv(bad)


def test_eye_in_hand_with_the_panda_kinematics(tmp_path, panda):
    import torch

    from robotag_ros.calibration import robot_forward_kinematics

    rng = np.random.default_rng(3)
    T_cam_ee = np.eye(4)
    T_cam_ee[:3, :3] = Rotation.from_euler('z', 90, degrees=True).as_matrix()
    T_cam_ee[:3, 3] = [0.0, -0.05, 0.04]
    q = panda.sample_joint_angles(30, generator=torch.Generator().manual_seed(0)).numpy()
    T_base_ee = robot_forward_kinematics(panda, 'panda_hand')(q)
    noise = simulate_estimates(np.eye(4), 30, NoiseModel(0.001, 0.1, 0.0), rng)
    T_cam_base = noise.T @ T_cam_ee @ np.linalg.inv(T_base_ee)
    rows = ['stamp_ns,tx,ty,tz,qx,qy,qz,qw,' + ','.join(panda.joint_names)]
    for i in range(30):
        quat = Rotation.from_matrix(T_cam_base[i, :3, :3]).as_quat()
        rows.append(','.join(str(v) for v in [i, *T_cam_base[i, :3, 3], *quat, *q[i]]))
    (tmp_path / 'e.csv').write_text('\n'.join(rows) + '\n')
    output = tmp_path / 'hand.calib'
    assert main(['--estimates', str(tmp_path / 'e.csv'), '--type', 'eye_in_hand',
                 '--output', str(output)]) == 0
    calibration = read_calib(output)
    assert calibration.calibration_type == EYE_IN_HAND
    assert calibration.parent_frame == 'panda_hand'
    translation_mm, rotation_deg = transform_error(calibration.T_cam_reference, T_cam_ee)
    assert translation_mm < 1.0 and rotation_deg < 0.1
