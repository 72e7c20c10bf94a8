"""The estimator node in-process (executor + spin_once): parameters and their validation.

Covers what the multi-process test does not: intrinsics from parameters instead of camera_info,
run-time parameter changes (min_consistency, tf_parent) and refused values.
"""
import os
import time

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')
pytest.importorskip('tf2_msgs.msg', reason='tf2_msgs not built: run scripts/install_ros.sh')

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from robotag_ros.ros.conversions import rgb_to_image  # noqa: E402
from robotag_ros.ros.estimator_node import EstimatorNode  # noqa: E402
from robotag_ros.harness.fake_estimator import FakeEstimator  # noqa: E402
from robotag_ros.harness.local_dds import LOCAL_TRANSPORTS  # noqa: E402


@pytest.fixture
def ros(monkeypatch, request, tmp_path):
    """A private rclpy context on shared memory only, the node under test and a peer node
    (indirect parameter: tmp_path -> more parameter overrides of the node)."""
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', LOCAL_TRANSPORTS)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=20 + (os.getpid() + 40) % 80)
    more = request.param(tmp_path) if hasattr(request, 'param') else []
    node = EstimatorNode(estimator=FakeEstimator(), context=context, parameter_overrides=[
        Parameter('intrinsics', value=[80.0, 80.0, 32.0, 24.0])] + more)
    peer = rclpy.create_node('peer', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(peer)
    received = {'joint_states': [], 'tf': [], 'diagnostics': []}
    peer.create_subscription(JointState, '/joint_states', received['joint_states'].append, 10)
    peer.create_subscription(TFMessage, '/tf', received['tf'].append, 10)
    peer.create_subscription(DiagnosticArray, '/diagnostics', received['diagnostics'].append, 10)
    image_pub = peer.create_publisher(Image, '/image', 10)

    def send_and_wait(sec):
        """Publish one frame stamped ``sec``; spin until the node's diagnostics answer it."""
        image = rgb_to_image(np.zeros((48, 64, 3), np.uint8))
        image.header.frame_id = 'cam'
        image.header.stamp.sec = sec
        end = time.monotonic() + 10
        while image_pub.get_subscription_count() == 0 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        image_pub.publish(image)
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
            if any(d.header.stamp.sec == sec for d in received['diagnostics']):
                break
        executor.spin_once(timeout_sec=0.05)   # the outputs published just before
        return [d for d in received['diagnostics'] if d.header.stamp.sec == sec]

    yield node, received, send_and_wait
    executor.shutdown()
    node.destroy_node()
    peer.destroy_node()
    rclpy.shutdown(context=context)


def test_intrinsics_parameter_replaces_missing_camera_info(ros):
    node, received, send_and_wait = ros
    (answer,) = send_and_wait(1)
    assert answer.status[0].message == 'estimate published'
    assert [m.header.stamp.sec for m in received['joint_states']] == [1]


def test_min_consistency_gates_publishing_at_run_time(ros):
    node, received, send_and_wait = ros
    assert node.set_parameters([Parameter('min_consistency', value=0.95)])[0].successful
    (answer,) = send_and_wait(2)
    assert 'below min_consistency' in answer.status[0].message   # the fake scores 0.9
    assert received['joint_states'] == [] and received['tf'] == []


def test_tf_parent_base_publishes_the_camera_under_the_base(ros):
    node, received, send_and_wait = ros
    assert node.set_parameters([Parameter('tf_parent', value='base')])[0].successful
    send_and_wait(3)
    (transform,) = received['tf'][0].transforms
    assert (transform.header.frame_id, transform.child_frame_id) == ('panda_link0', 'cam')


CALIBRATED_T_CAM_BASE = np.array([[0.0, -1.0, 0.0, 0.1], [0.0, 0.0, -1.0, 0.4],
                                  [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 1.0]])


def _calibrated_camera(tmp_path):
    from robotag_ros.calibration.calib_file import HandEyeCalibration, write_calib
    path = write_calib(tmp_path / 'camera.calib', HandEyeCalibration(
        name='camera', calibration_type='eye_on_base', T_cam_reference=CALIBRATED_T_CAM_BASE,
        robot_base_frame='panda_link0', robot_effector_frame='panda_hand',
        tracking_base_frame='cam'))
    return [Parameter('camera_calibration_file', value=str(path))]


@pytest.mark.parametrize('ros', [_calibrated_camera], indirect=True)
def test_a_calibrated_camera_is_fixed_from_the_first_frame(ros):
    """camera_calibration_file: the estimator gets the .calib's camera and the node publishes
    it (the fake reports a known camera as given), with the state in the diagnostics."""
    node, received, send_and_wait = ros
    (answer,) = send_and_wait(4)
    values = {v.key: v.value for v in answer.status[0].values}
    assert values['static_camera_state'] == 'given'
    (transform,) = received['tf'][0].transforms
    assert (transform.header.frame_id, transform.child_frame_id) == ('cam', 'panda_link0')
    translation = transform.transform.translation
    np.testing.assert_allclose([translation.x, translation.y, translation.z],
                               CALIBRATED_T_CAM_BASE[:3, 3], atol=1e-9)


def test_a_calibrated_camera_and_measured_joints_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', LOCAL_TRANSPORTS)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=20 + (os.getpid() + 42) % 80)
    try:
        with pytest.raises(ValueError, match='nothing to estimate'):
            EstimatorNode(estimator=FakeEstimator(), context=context, parameter_overrides=[
                Parameter('measured_joint_states_topic', value='/joint_states'),
                *_calibrated_camera(tmp_path)])
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize('name, value, reason', [
    ('tf_parent', 'sideways', 'tf_parent must be one of'),
    ('min_consistency', 1.5, ''),
    ('intrinsics', [1.0, 2.0], 'intrinsics must be 4 finite numbers'),
    ('intrinsics', [-80.0, 80.0, 32.0, 24.0], 'focal lengths must be positive'),
    ('intrinsics', [1e-9, 1e-9, 32.0, 24.0], 'fx = K[0][0] = 1e-09 px is below 1 px'),
    ('backend', 'onnxruntime', 'read-only'),
])
def test_bad_or_read_only_values_are_refused(ros, name, value, reason):
    node, _, _ = ros
    before = node.get_parameter(name).value
    (result,) = node.set_parameters([Parameter(name, value=value)])
    assert not result.successful
    assert reason.lower() in result.reason.lower()
    assert list(np.atleast_1d(node.get_parameter(name).value)) == list(np.atleast_1d(before))


def test_measured_joint_states_are_used_and_not_republished(monkeypatch):
    """With measured_joint_states_topic the estimator gets the driver's joints (matched by name
    and stamp), the node publishes no JointState, and a frame with no joint state near its stamp
    is dropped with its cause."""
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', LOCAL_TRANSPORTS)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=20 + (os.getpid() + 41) % 80)
    estimator = FakeEstimator()
    seen = []
    original = estimator.estimate
    estimator.estimate = lambda image, K, **options: seen.append(options) or original(
        image, K, **options)
    node = EstimatorNode(estimator=estimator, context=context, parameter_overrides=[
        Parameter('intrinsics', value=[80.0, 80.0, 32.0, 24.0]),
        Parameter('measured_joint_states_topic', value='/robot/joint_states')])
    peer = rclpy.create_node('peer', context=context)
    executor = SingleThreadedExecutor(context=context)
    for member in (node, peer):
        executor.add_node(member)
    published, diagnostics = [], []
    peer.create_subscription(JointState, '/joint_states', published.append, 10)
    peer.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    joints_pub = peer.create_publisher(JointState, '/robot/joint_states', 10)
    image_pub = peer.create_publisher(Image, '/image', 10)
    try:
        end = time.monotonic() + 10
        while (image_pub.get_subscription_count() == 0
               or joints_pub.get_subscription_count() == 0) and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        names = list(reversed(estimator.joint_names)) + ['panda_finger_joint1']
        measured = JointState(name=names, position=[0.1 * i for i in range(len(names))])
        measured.header.stamp.sec = 5
        joints_pub.publish(measured)
        for sec in (5, 9):   # 9: four seconds from the only joint state
            image = rgb_to_image(np.zeros((48, 64, 3), np.uint8))
            image.header.frame_id = 'cam'
            image.header.stamp.sec = sec
            executor.spin_once(timeout_sec=0.2)
            image_pub.publish(image)
            while time.monotonic() < end and not any(
                    d.header.stamp.sec == sec for d in diagnostics):
                executor.spin_once(timeout_sec=0.05)
        executor.spin_once(timeout_sec=0.2)
    finally:
        executor.shutdown()
        node.destroy_node()
        peer.destroy_node()
        rclpy.shutdown(context=context)
    by_name = dict(zip(names, measured.position))
    (options,) = seen
    np.testing.assert_allclose(options['joint_angles_rad'],
                               [by_name[name] for name in estimator.joint_names])
    assert published == []
    answers = {d.header.stamp.sec: d.status[0] for d in diagnostics}
    assert answers[5].message == 'estimate published'
    assert {v.key: v.value for v in answers[5].values}['joints'] == 'measured'
    assert 'no_measured_joints' in answers[9].message
