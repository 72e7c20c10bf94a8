"""The estimator node in its own process, driven and observed by two other rclpy processes
(robotag_ros.harness.sample_run.NodeSession: the node and the output listener).

A fake estimator (robotag_ros.harness.fake_estimator) stands in for the model, so the published
values are known exactly. Every kind of bad input is fed; the node must survive each and still
answer the next good frame.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')
pytest.importorskip('tf2_msgs.msg', reason='tf2_msgs not built: run scripts/install_ros.sh')

from scipy.spatial.transform import Rotation  # noqa: E402

from robotag_ros.harness import fake_estimator as fake  # noqa: E402
from robotag_ros.harness.sample_run import NodeSession  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / 'test' / 'ros_harness.py'
FAKE_FACTORY = 'robotag_ros.harness.fake_estimator:make_fake_estimator'
CAMERA_FRAME = 'test_camera_optical_frame'
K = [[80.0, 0.0, 32.0], [0.0, 80.0, 24.0], [0.0, 0.0, 1.0]]
GOOD_INFO = {'K': K, 'width': 64, 'height': 48}
K_4K = [[2000.0, 0.0, 1920.0], [0.0, 2000.0, 1080.0], [0.0, 0.0, 1.0]]


def _info_with(changes):
    """GOOD_INFO with some entries of K changed: {(row, col): value}."""
    K_changed = [list(row) for row in K]
    for (row, col), value in changes.items():
        K_changed[row][col] = value
    return {'K': K_changed, 'width': 64, 'height': 48}


# (name, frame fields, expected: 'ok' or the node's drop cause)
SCENARIO = [
    ('image before any camera_info', {}, 'no_camera_info'),
    ('camera_info with K all zeros', {'camera_info': {'K': [[0.0] * 3] * 3, 'width': 64,
                                                      'height': 48}}, 'no_camera_info'),
    ('good rgb8', {'camera_info': GOOD_INFO}, 'ok'),
    ('good bgr8', {'encoding': 'bgr8'}, 'ok'),
    ('good rgba8', {'encoding': 'rgba8'}, 'ok'),
    ('good bgra8', {'encoding': 'bgra8'}, 'ok'),
    ('good mono8', {'encoding': 'mono8'}, 'ok'),
    ('16-bit depth', {'encoding': '16UC1'}, 'bad_image'),
    ('unknown encoding', {'encoding': 'yuv422'}, 'bad_image'),
    ('data shorter than height x step', {'truncate_bytes': 100}, 'bad_image'),
    ('camera_info for another image size', {'camera_info': {'K': K, 'width': 640,
                                                            'height': 480}},
     'camera_info_mismatch'),
    ('good 640x480 frame (over the default shared-memory segment)',
     {'camera_info': {'K': K, 'width': 640, 'height': 480}, 'width': 640, 'height': 480}, 'ok'),
    ('good again', {'camera_info': GOOD_INFO}, 'ok'),
    # Implausible CameraInfo is ignored (the last good K stays), each kind warned about.
    ('camera_info with fx = fy = 1e-9',
     {'camera_info': _info_with({(0, 0): 1e-9, (1, 1): 1e-9})}, 'ok'),
    ('camera_info with K[2][2] = 0', {'camera_info': _info_with({(2, 2): 0.0})}, 'ok'),
    ('camera_info with NaN in K', {'camera_info': _info_with({(0, 2): float('nan')})}, 'ok'),
    ('camera_info with skew K[0][1] = 1e6', {'camera_info': _info_with({(0, 1): 1e6})}, 'ok'),
    ('1x4000 image', {'camera_info': {'K': K, 'width': 0, 'height': 0}, 'width': 4000,
                      'height': 1}, 'bad_image'),
    ('4000x1 image', {'width': 1, 'height': 4000}, 'bad_image'),
    # A camera_info of unknown size (0x0) is checked against the image it comes with.
    ('camera_info 0x0 with a 1x1 image', {'camera_info': {'K': K, 'width': 0, 'height': 0},
                                          'width': 1, 'height': 1}, 'implausible_intrinsics'),
    ('4K rgb8 frame (within the shared-memory transport limit)',
     {'camera_info': {'K': K_4K, 'width': 3840, 'height': 2160}, 'width': 3840,
      'height': 2160}, 'ok'),
    ('good once more', {'camera_info': GOOD_INFO}, 'ok'),
    ('NaN from the model', {'top_left_rgb': list(fake.NAN_PIXEL_RGB)}, 'non_finite_estimate'),
    ('exception in inference', {'top_left_rgb': list(fake.RAISE_PIXEL_RGB)}, 'inference_error'),
    ('next good frame', {}, 'ok'),
]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Start node + listener (every optional output subscribed), drive the scenario, stop;
    return what the driver got, what the listener recorded and the node's log."""
    tmp = tmp_path_factory.mktemp('ros_node')
    scenario = {'frame_id': CAMERA_FRAME, 'image_topic': '/camera/image_raw',
                'camera_info_topic': '/camera/camera_info', 'answer_timeout_s': 8.0,
                'frames': [dict(index=i, **fields) for i, (_, fields, _) in enumerate(SCENARIO)]}
    (tmp / 'scenario.json').write_text(json.dumps(scenario))
    with NodeSession(tmp, domain_id=20 + os.getpid() % 80, camera_namespace='/camera',
                     parameters={'estimator_factory': FAKE_FACTORY}, ready_timeout_s=30.0,
                     all_outputs=True) as session:
        session.run([sys.executable, str(HARNESS), 'drive', str(tmp / 'scenario.json'),
                     str(tmp / 'driven.json')], timeout_s=90).check_returncode()
        node_alive = session.node.poll() is None
        listened = session.stop()
        node_log = session.node_log()
    return {'driven': json.loads((tmp / 'driven.json').read_text())['frames'],
            'listened': listened, 'node_alive': node_alive, 'node_log': node_log}


def _stamps(run, outcome):
    return [frame['stamp'] for frame, (_, _, expected) in zip(run['driven'], SCENARIO)
            if (expected == 'ok') == (outcome == 'ok')]


def test_node_answers_every_frame_with_the_expected_outcome(run):
    assert run['node_alive'], run['node_log']
    for frame, (name, _, expected) in zip(run['driven'], SCENARIO):
        answer = frame['answer']
        assert answer is not None, f'no diagnostics for frame {name!r}\n{run["node_log"]}'
        if expected == 'ok':
            assert answer['level'] == 0 and answer['message'] == 'estimate published', name
            assert float(answer['values']['latency_receive_to_publish_ms']) > 0, name
        else:
            assert answer['level'] == 1, name
            assert answer['values']['drop_cause'] == expected, (name, answer['message'])


def test_drops_name_their_cause_in_diagnostics_and_throttled_warnings(run):
    messages = {name: frame['answer']['message']
                for frame, (name, _, _) in zip(run['driven'], SCENARIO)}
    assert '16UC1' in messages['16-bit depth']
    assert 'yuv422' in messages['unknown encoding']
    assert 'shorter than height x step' in messages['data shorter than height x step']
    assert 'RuntimeError' in messages['exception in inference']
    assert 'a 4000x1 image (width x height) cannot be used' in messages['1x4000 image']
    assert 'a 1x4000 image (width x height) cannot be used' in messages['4000x1 image']
    assert messages['camera_info 0x0 with a 1x1 image'] == (
        'frame dropped: implausible_intrinsics: camera_info for a 1x1 image: principal point '
        'cx = K[0][2] = 32 lies outside the image (0..1 px)')
    # One warning per cause per throttle period: the second bad_image frame within it is quiet.
    log = run['node_log']
    for text in ('16UC1', 'K is all zeros', 'no valid camera_info', 'NaN', 'RuntimeError',
                 '640x480'):
        assert text in log, f'no warning naming {text!r} in the node log:\n{log}'
    assert 'yuv422' not in log
    # Each kind of CameraInfo refusal warns on its own (within one throttle period), naming the
    # field; the counts are in the diagnostics.
    for text in ('ignoring camera_info: camera_info K is all zeros',
                 'ignoring camera_info: camera_info focal length fx = K[0][0] = 1e-09 px',
                 'ignoring camera_info: camera_info K[2][2] = 0, not 1',
                 'ignoring camera_info: camera_info K holds NaN or infinite values (K[0][2] = '
                 'nan)',
                 'ignoring camera_info: camera_info skew K[0][1] = 1e+06 is over 0.01 of fx = '
                 '80'):
        assert text in log, f'no warning {text!r} in the node log:\n{log}'
    values = next(frame['answer']['values'] for frame, (name, _, _) in
                  zip(run['driven'], SCENARIO) if name == 'camera_info with skew K[0][1] = 1e6')
    assert (values['camera_info_refused_focal'], values['camera_info_refused_not_pinhole'],
            values['camera_info_refused_non_finite'],
            values['camera_info_refused_skew']) == ('1', '1', '1', '1')


def test_joint_states_match_the_estimate_and_only_good_frames(run):
    joint_states = {m['stamp']: m for m in run['listened']['joint_states']}
    assert sorted(joint_states) == sorted(_stamps(run, 'ok'))
    for message in joint_states.values():
        assert message['name'] == fake.PANDA_JOINT_NAMES
        np.testing.assert_allclose(message['position'], fake.FAKE_JOINT_ANGLES_RAD, atol=1e-12)


def test_tf_carries_T_cam_base_between_the_image_frame_and_the_base(run):
    transforms = {m['stamp']: m for m in run['listened']['tf']}
    assert sorted(transforms) == sorted(_stamps(run, 'ok'))
    for transform in transforms.values():
        assert (transform['parent'], transform['child']) == (CAMERA_FRAME, 'panda_link0')
        T = np.eye(4)
        T[:3, :3] = Rotation.from_quat(transform['rotation_xyzw']).as_matrix()
        T[:3, 3] = transform['translation']
        np.testing.assert_allclose(T, fake.FAKE_T_CAM_BASE, atol=1e-9)


def test_camera_pose_is_the_camera_in_the_base_frame(run):
    poses = {m['stamp']: m for m in run['listened']['camera_pose']}
    assert sorted(poses) == sorted(_stamps(run, 'ok'))
    T_base_cam = np.linalg.inv(fake.FAKE_T_CAM_BASE)
    for pose in poses.values():
        assert pose['frame_id'] == 'panda_link0'
        np.testing.assert_allclose(pose['position'], T_base_cam[:3, 3], atol=1e-9)


def test_subscribed_extras_are_published_for_good_frames(run):
    listened, good = run['listened'], set(_stamps(run, 'ok'))
    # The listener subscribes late relative to the first frames: require most, not all.
    for topic in ('debug_image', 'keypoints', 'points'):
        stamps = {m['stamp'] for m in listened[topic]}
        assert stamps and stamps <= good, topic
    sizes = {frame['stamp']: (fields.get('width', 64), fields.get('height', 48))
             for frame, (_, fields, _) in zip(run['driven'], SCENARIO)}
    assert all((m['width'], m['height']) == sizes[m['stamp']] and m['encoding'] == 'rgb8'
               for m in listened['debug_image'])
    assert all(m['num_points'] == len(fake.PANDA_KEYPOINT_NAMES) for m in listened['keypoints'])
    assert all(m['frame_id'] == CAMERA_FRAME for m in listened['keypoints'])
    assert all(m['num_points'] == len(fake.PANDA_KEYPOINT_NAMES) for m in listened['points'])
