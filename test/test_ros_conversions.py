"""Image/CameraInfo conversions and output message builders, with the real message types."""
import numpy as np
import pytest

pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')

from scipy.spatial.transform import Rotation  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from robotag_ros.ros import messages  # noqa: E402
from robotag_ros.ros.conversions import (  # noqa: E402
    CameraInfoError, ImageConversionError, K_to_camera_info, camera_info_to_K, image_to_rgb,
    rgb_to_image)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8'])
def test_colour_encodings_round_trip_exactly(encoding):
    msg = rgb_to_image(RGB, encoding=encoding)
    assert msg.encoding == encoding and msg.step == msg.width * (4 if 'a' in encoding else 3)
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


def test_bgr8_bytes_are_really_reordered():
    msg = rgb_to_image(RGB, encoding='bgr8')
    first_pixel = bytes(msg.data)[:3]
    assert tuple(first_pixel) == tuple(RGB[0, 0, ::-1])


def test_mono8_becomes_grey_rgb():
    msg = Image(height=2, width=3, encoding='mono8', step=3, data=bytes(range(6)))
    rgb = image_to_rgb(msg)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_row_padding_is_skipped():
    padded = np.zeros((2, 3 * 3 + 4), np.uint8)
    padded[:, :9] = np.arange(18).reshape(2, 9)
    msg = Image(height=2, width=3, encoding='rgb8', step=13, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg).reshape(2, 9), padded[:, :9])


@pytest.mark.parametrize('encoding', ['16UC1', 'mono16', '32FC1', 'yuv422', 'bayer_rggb8', ''])
def test_other_encodings_are_refused_by_name(encoding):
    msg = Image(height=2, width=2, encoding=encoding, step=8, data=bytes(16))
    with pytest.raises(ImageConversionError, match='unsupported image encoding'):
        image_to_rgb(msg)


def test_short_data_is_refused():
    msg = rgb_to_image(RGB)
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(ImageConversionError, match='shorter than height x step'):
        image_to_rgb(msg)


def test_step_shorter_than_a_row_is_refused():
    msg = Image(height=2, width=4, encoding='rgb8', step=6, data=bytes(24))
    with pytest.raises(ImageConversionError, match='step 6 bytes'):
        image_to_rgb(msg)


def test_empty_image_is_refused():
    with pytest.raises(ImageConversionError, match='empty image'):
        image_to_rgb(Image(height=0, width=4, encoding='rgb8', step=12))


def test_camera_info_round_trip_and_refusals():
    K = np.array([[500.0, 0, 320], [0, 510.0, 240], [0, 0, 1]])
    info = K_to_camera_info(K, 640, 480)
    assert (info.width, info.height) == (640, 480)
    np.testing.assert_array_equal(camera_info_to_K(info), K)
    with pytest.raises(CameraInfoError, match='all zeros'):
        camera_info_to_K(CameraInfo())
    bad = K.copy()
    bad[0, 2] = np.nan
    with pytest.raises(CameraInfoError, match='NaN'):
        camera_info_to_K(K_to_camera_info(bad, 640, 480))
    bad = K.copy()
    bad[1, 1] = -1.0
    with pytest.raises(CameraInfoError, match=r'fy = K\[1\]\[1\] = -1 is not positive'):
        camera_info_to_K(K_to_camera_info(bad, 640, 480))


@pytest.mark.parametrize('changes, kind, named', [
    ({(0, 0): 1e-9, (1, 1): 1e-9}, 'focal', r'fx = K\[0\]\[0\] = 1e-09 px gives a 180 deg'),
    ({(1, 1): 1e9}, 'focal', r'fy = K\[1\]\[1\] = 1e\+09 px'),
    ({(2, 2): 0.0}, 'not_pinhole', r'K\[2\]\[2\] = 0, not 1'),
    ({(2, 0): 0.5}, 'not_pinhole', r'K\[2\]\[0\] = 0.5, not 0'),
    ({(0, 2): 900.0}, 'principal_point', r'cx = K\[0\]\[2\] = 900 lies outside'),
    ({(1, 0): np.inf}, 'non_finite', r'K\[1\]\[0\] = inf'),
])
def test_implausible_camera_info_is_refused_naming_the_field(changes, kind, named):
    K = np.array([[500.0, 0, 320], [0, 510.0, 240], [0, 0, 1]])
    for (row, col), value in changes.items():
        K[row, col] = value
    with pytest.raises(CameraInfoError, match=named) as caught:
        camera_info_to_K(K_to_camera_info(K, 640, 480))
    assert caught.value.kind == kind


def _random_transform():
    T = np.eye(4)
    T[:3, :3] = Rotation.random(random_state=3).as_matrix()
    T[:3, 3] = [0.1, -0.2, 1.3]
    return T


def test_transform_stamped_carries_T_parent_child():
    T = _random_transform()
    msg = messages.transform_stamped(T, stamp=messages.Header().stamp,
                                     parent_frame='cam', child_frame='base')
    assert (msg.header.frame_id, msg.child_frame_id) == ('cam', 'base')
    q = msg.transform.rotation
    R = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    np.testing.assert_allclose(R, T[:3, :3], atol=1e-12)
    t = msg.transform.translation
    np.testing.assert_allclose([t.x, t.y, t.z], T[:3, 3])


def test_pose_joint_state_markers_cloud_and_diagnostics():
    stamp = messages.Header().stamp
    stamp.sec = 7
    T = _random_transform()
    pose = messages.pose_stamped(T, stamp, 'base')
    assert pose.header.frame_id == 'base' and pose.header.stamp.sec == 7
    np.testing.assert_allclose([pose.pose.position.x, pose.pose.position.y,
                                pose.pose.position.z], T[:3, 3])

    joints = messages.joint_state(['a', 'b'], np.array([0.5, -1.0]), stamp)
    assert list(joints.name) == ['a', 'b'] and list(joints.position) == [0.5, -1.0]

    points = RNG.normal(size=(4, 3))
    markers = messages.keypoint_markers(points, stamp, 'cam', [(0, 1), (1, 2)])
    assert len(markers.markers[0].points) == 4
    assert len(markers.markers[1].points) == 4   # two edges, two end points each
    assert markers.markers[0].header.frame_id == 'cam'

    cloud = messages.point_cloud(points, stamp, 'cam')
    assert (cloud.width, cloud.point_step) == (4, 12)
    np.testing.assert_allclose(messages.point_cloud_to_numpy(cloud), points.astype(np.float32))

    from diagnostic_msgs.msg import DiagnosticStatus
    diagnostics = messages.diagnostic_array(stamp, 'robotag_ros: estimator', 'hw',
                                            DiagnosticStatus.WARN, 'slow', {'latency_ms': 12.5,
                                                                            'frames': 3})
    status = diagnostics.status[0]
    assert status.level == DiagnosticStatus.WARN and status.message == 'slow'
    assert {kv.key: kv.value for kv in status.values} == {'latency_ms': '12.5', 'frames': '3'}


def test_locally_built_tf_message_has_jazzys_type_hash():
    pytest.importorskip('tf2_msgs.msg', reason='tf2_msgs not built: run scripts/install_ros.sh')
    import json
    import os
    import sys

    os.environ.setdefault('AMENT_PREFIX_PATH', sys.prefix)   # where the pip wheels install
    from ament_index_python.packages import get_package_share_directory
    description = os.path.join(get_package_share_directory('tf2_msgs'), 'msg', 'TFMessage.json')
    with open(description) as f:
        hashes = {h['type_name']: h['hash_string'] for h in json.load(f)['type_hashes']}
    # The hash ROS 2 Jazzy's own tf2_msgs reports (e.g. `ros2 topic info -v /tf`).
    assert hashes['tf2_msgs/msg/TFMessage'] == (
        'RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087')
