"""robotag-calibrate --images: from a recording (images, CameraInfo, /joint_states) to a .calib.

The estimator is a fake (robotag_ros.harness.fake_estimator: a known camera<->base transform for
every frame), so these tests check the path a recording takes, not the model's accuracy
(benchmarks/calibration.py --images measures that).
"""
import json

import numpy as np
import pytest

from robotag_ros.calibration import EYE_IN_HAND, read_calib
from robotag_ros.calibration.cli import main
from robotag_ros.calibration.recording import estimate_recording_bag, plan_recording
from robotag_ros.calibration.synthetic import transform_error
from robotag_ros.data.bags.bag_images import camera_info_message
from robotag_ros.harness.fake_estimator import FAKE_T_CAM_BASE, PANDA_JOINT_NAMES
from robotag_ros.stamps import ns_to_sec_nanosec
from bag_helpers import write_messages_bag

FAKE = ['--estimator-factory', 'robotag_ros.harness.fake_estimator:make_fake_estimator']
START_NS, PERIOD_NS = 1_700_000_000_000_000_000, 100_000_000
K = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])


def joint_angles(index: int) -> np.ndarray:
    """A slow, distinct Panda motion (radians), one configuration per frame."""
    return np.array([0.1, -0.4, 0.05, -2.0, 0.02, 1.7, 0.8]) + 0.01 * index


def recording_messages(frames: int = 12, joint_offset_ns: int = 0, joints: bool = True,
                       image_topics=('/camera/color/image_raw',), compressed: bool = False):
    """(topic, msgtype, stamp, message) of a recording: images + CameraInfo (+ joint states
    stamped ``joint_offset_ns`` after each image, with a gripper joint the estimator ignores)."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types = store.types
    messages = []
    for index in range(frames):
        stamp = START_NS + index * PERIOD_NS
        sec, nanosec = ns_to_sec_nanosec(stamp)
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
            frame_id='camera_color_optical_frame')
        rgb = np.full((24, 32, 3), 40 + index, np.uint8)
        for topic in image_topics:
            if compressed:
                import cv2
                jpeg = cv2.imencode('.jpg', rgb)[1].reshape(-1)
                image = types['sensor_msgs/msg/CompressedImage'](header=header, format='jpeg',
                                                                 data=jpeg)
            else:
                image = types['sensor_msgs/msg/Image'](
                    header=header, height=24, width=32, encoding='rgb8', is_bigendian=0,
                    step=96, data=rgb.reshape(-1))
            messages.append((topic, image.__msgtype__, stamp, image))
            info_topic = topic.rsplit('/', 1)[0] + '/camera_info'
            messages.append((info_topic, 'sensor_msgs/msg/CameraInfo', stamp,
                             camera_info_message(store, header, K, 32, 24)))
        if joints:
            joint_stamp = stamp + joint_offset_ns
            sec, nanosec = ns_to_sec_nanosec(joint_stamp)
            joint_header = types['std_msgs/msg/Header'](
                stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
                frame_id='')
            messages.append(('/joint_states', 'sensor_msgs/msg/JointState', joint_stamp,
                             types['sensor_msgs/msg/JointState'](
                                 header=joint_header,
                                 name=['panda_finger_joint1'] + PANDA_JOINT_NAMES[::-1],
                                 position=np.concatenate([[0.04], joint_angles(index)[::-1]]),
                                 velocity=np.zeros(0), effort=np.zeros(0))))
    return messages


def calibrate(tmp_path, bag, *extra):
    output, summary = tmp_path / 'out' / 'robotag.calib', tmp_path / 'out' / 'summary.json'
    code = main(['--images', str(bag), '--output', str(output), '--summary-json', str(summary),
                 *FAKE, *extra])
    return code, output, summary


@pytest.mark.parametrize('storage,compressed', [('sqlite3', False), ('mcap', True)])
def test_a_recording_calibrates_in_one_command(tmp_path, capsys, storage, compressed):
    bag = write_messages_bag(tmp_path / 'bag', recording_messages(compressed=compressed),
                             storage=storage)
    code, output, summary = calibrate(tmp_path, bag)
    assert code == 0, capsys.readouterr().err
    translation_mm, rotation_deg = transform_error(read_calib(output).T_cam_reference,
                                                   FAKE_T_CAM_BASE)
    assert translation_mm < 1e-6 and rotation_deg < 1e-6
    found = json.loads(summary.read_text())
    assert found['image_topic'] == '/camera/color/image_raw'
    assert found['camera_info_topic'] == '/camera/color/camera_info'
    assert found['joint_states_topic'] == '/joint_states'
    assert found['recording_frames_estimated'] == found['frames_total'] == 12
    assert found['camera_moved'] is False
    assert 'spread over 12 of 12 frames: 0.0 mm / 0.00 deg' in capsys.readouterr().out


def test_each_frame_gets_its_measured_joints_by_stamp_and_the_previous_box(tmp_path, panda):
    """Joint states 30 ms after each image (in another order, with a gripper joint): each image
    is estimated with its own; a frame whose joint state is beyond the tolerance is skipped."""
    messages = recording_messages(joint_offset_ns=30_000_000)
    # the joint state of frame 5 goes missing: its nearest one is 70 ms away
    messages = [m for m in messages if not (m[0] == '/joint_states'
                                            and m[2] == START_NS + 5 * PERIOD_NS + 30_000_000)]
    bag = write_messages_bag(tmp_path / 'bag', messages)

    class Recorder:
        joint_names = PANDA_JOINT_NAMES

        def __init__(self):
            from robotag_ros.harness.fake_estimator import FakeEstimator
            self.fake, self.calls = FakeEstimator(), []

        def estimate(self, image_rgb, K, box=None, joint_angles_rad=None):
            self.calls.append((int(image_rgb[0, 0, 0]) - 40, box, joint_angles_rad))
            return self.fake.estimate(image_rgb, K, joint_angles_rad=joint_angles_rad)

        def next_box(self, estimate):
            return len(self.calls)

    plan = plan_recording(bag, PANDA_JOINT_NAMES, tolerance_s=0.05)
    assert plan.frames_matched == 11
    recorder = Recorder()
    recording = estimate_recording_bag(plan, recorder, progress=False)
    series, counts = recording.series, recording.counts
    frames = [frame for frame, _, _ in recorder.calls]
    assert frames == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    assert [box for _, box, _ in recorder.calls] == [None] + list(range(1, 11))
    for frame, _, measured in recorder.calls:
        np.testing.assert_allclose(measured, joint_angles(frame))
    np.testing.assert_allclose(series.joint_angles_rad[5], joint_angles(6))
    assert counts.without_joint_state == 1 and counts.estimated == len(series) == 11


def test_eye_in_hand_from_a_recording(tmp_path, capsys):
    from recording_fakes import T_CAM_EE

    bag = write_messages_bag(tmp_path / 'bag', recording_messages(frames=20))
    output = tmp_path / 'hand.calib'
    assert main(['--images', str(bag), '--type', 'eye_in_hand', '--output', str(output),
                 '--estimator-factory', 'recording_fakes:make_hand_camera_estimator']) == 0, \
        capsys.readouterr().err
    calibration = read_calib(output)
    assert calibration.calibration_type == EYE_IN_HAND
    translation_mm, rotation_deg = transform_error(calibration.T_cam_reference, T_CAM_EE)
    assert translation_mm < 2.0 and rotation_deg < 0.2


def test_topics_are_named_when_the_bag_is_ambiguous(tmp_path, capsys):
    bag = write_messages_bag(tmp_path / 'bag', recording_messages(
        image_topics=('/left/image_raw', '/right/image_raw')))
    code, output, _ = calibrate(tmp_path, bag)
    assert code == 2 and not output.exists()
    assert ('several image topics (/left/image_raw, /right/image_raw); name one with '
            '--image-topic') in capsys.readouterr().err
    code, output, summary = calibrate(tmp_path, bag, '--image-topic', '/right/image_raw')
    assert code == 0
    assert json.loads(summary.read_text())['camera_info_topic'] == '/right/camera_info'


# --- bad inputs: one line on stderr, exit code 2, nothing written, nothing overwritten ---------

def _corrupted(tmp_path):
    bag = write_messages_bag(tmp_path / 'bag', recording_messages(), storage='mcap')
    data = next(bag.glob('*.mcap'))
    data.write_bytes(b'\x89MCAP0\r\n' + bytes(range(256)) * 8)
    return bag


def _empty(tmp_path):
    return write_messages_bag(tmp_path / 'bag', [])


def _topic_less(tmp_path):
    from rosbags.typesys import Stores, get_typestore
    String = get_typestore(Stores.ROS2_JAZZY).types['std_msgs/msg/String']
    return write_messages_bag(tmp_path / 'bag', [('/chatter', 'std_msgs/msg/String', 1,
                                                  String(data='hello'))])


def _no_joint_states(tmp_path):
    return write_messages_bag(tmp_path / 'bag', recording_messages(joints=False))


def _mismatched_stamps(tmp_path):
    return write_messages_bag(tmp_path / 'bag', recording_messages(joint_offset_ns=10**10))


@pytest.mark.parametrize('make_bag,message', [
    (_corrupted, 'cannot read rosbag2'),
    (_empty, 'has no image topic (sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage); '
             'it has: no topics at all'),
    (_topic_less, 'has no image topic (sensor_msgs/msg/Image or '
                  'sensor_msgs/msg/CompressedImage); it has: /chatter (std_msgs/msg/String)'),
    (_no_joint_states, 'has no joint states topic (sensor_msgs/msg/JointState)'),
    (_mismatched_stamps, 'no image on /camera/color/image_raw (12, stamped '
                         '1700000000.000..1700000001.100 s) is within 0.05 s of a joint state'),
    (lambda tmp_path: tmp_path / 'no_such_bag', 'rosbag2 not found'),
])
def test_a_bad_recording_is_refused_in_one_line(tmp_path, capsys, make_bag, message):
    bag = make_bag(tmp_path)
    output, summary = tmp_path / 'out' / 'robotag.calib', tmp_path / 'out' / 'summary.json'
    output.parent.mkdir()
    output.write_text('an earlier calibration\n')
    code, _, _ = calibrate(tmp_path, bag)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    assert err.startswith('robotag-calibrate: error: ') and message in err, err
    assert output.read_text() == 'an earlier calibration\n'
    assert not summary.exists()
    assert sorted(p.name for p in output.parent.iterdir()) == ['robotag.calib']
