"""launch_testing test of launch/estimator.launch.py on a real ROS 2 Jazzy install.

Skipped where launch_testing is absent (this project's pip-only machines); run it with
`launch_test test/test_launch_estimator.py` or pytest after `colcon build` and sourcing.
The fake estimator stands in for the model; the test sends one frame and expects joint_states.
"""
import os
import time
import unittest

import pytest

launch_testing = pytest.importorskip('launch_testing', reason='launch_testing not installed')
pytest.importorskip('launch_ros', reason='launch_ros not installed')

import launch  # noqa: E402
import launch_testing.actions  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402

from robotag_ros.ros.conversions import K_to_camera_info, rgb_to_image  # noqa: E402
from robotag_ros.harness.fake_estimator import FAKE_JOINT_ANGLES_RAD  # noqa: E402

LAUNCH_FILE = os.path.join(os.path.dirname(__file__), '..', 'launch', 'estimator.launch.py')


@pytest.mark.launch_test
def generate_test_description():
    """The estimator from its launch file, with the fake estimator and camera /test_camera."""
    estimator = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(LAUNCH_FILE),
        launch_arguments={'camera': '/test_camera',
                          'estimator_factory':
                          'robotag_ros.harness.fake_estimator:make_fake_estimator'}.items())
    return launch.LaunchDescription([estimator, launch_testing.actions.ReadyToTest()])


class TestEstimatorAnswers(unittest.TestCase):
    """One good frame in, one JointState with the fake estimate out."""

    def test_joint_states_for_one_frame(self):
        rclpy.init()
        node = rclpy.create_node('launch_test_driver')
        try:
            received = []
            node.create_subscription(JointState, '/joint_states', received.append, 10)
            image_pub = node.create_publisher(Image, '/test_camera/image_raw', 10)
            info_pub = node.create_publisher(CameraInfo, '/test_camera/camera_info', 10)
            image = rgb_to_image(np.zeros((48, 64, 3), np.uint8))
            image.header.frame_id = 'camera_optical_frame'
            info = K_to_camera_info(np.array([[80.0, 0, 32], [0, 80.0, 24], [0, 0, 1]]), 64, 48,
                                    image.header)
            end = time.monotonic() + 30
            while not received and time.monotonic() < end:
                info_pub.publish(info)
                image_pub.publish(image)
                rclpy.spin_once(node, timeout_sec=0.5)
            self.assertTrue(received, 'no joint_states from the launched estimator')
            np.testing.assert_allclose(received[0].position, FAKE_JOINT_ANGLES_RAD)
        finally:
            node.destroy_node()
            rclpy.shutdown()


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """The node exits cleanly on SIGINT."""

    def test_exit_code(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
