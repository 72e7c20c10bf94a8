"""Publish transforms on /tf_static the way tf2_ros does: reliable, transient local, depth 1.

Transient-local durability keeps the last message for late-joining subscribers, so a static
transform published once reaches every node that starts later. Uses tf2_ros'
StaticTransformBroadcaster where a ROS 2 install provides it, else a TFMessage publisher with the
same QoS (tf2_msgs built by scripts/install_ros.sh). Also the ``--publish-static`` of
``robotag-calibrate``.
"""
from __future__ import annotations

import sys

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from robotag_ros.calibration.calib_file import read_calib
from robotag_ros.ros import messages

try:
    from tf2_ros import StaticTransformBroadcaster
except ImportError:
    StaticTransformBroadcaster = None
try:
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None

# tf2_ros' static broadcaster profile.
STATIC_TF_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


class StaticTransformPublisher:
    """Latched /tf_static publisher; every call re-sends all transforms sent so far (by child),
    because a transient-local topic keeps only the newest message."""

    def __init__(self, node):
        self._by_child: dict[str, object] = {}
        if StaticTransformBroadcaster is not None:
            self._broadcaster = StaticTransformBroadcaster(node)
            self._publisher = None
        elif TFMessage is not None:
            self._broadcaster = None
            self._publisher = node.create_publisher(TFMessage, '/tf_static', STATIC_TF_QOS)
        else:
            raise ImportError('neither tf2_ros nor tf2_msgs is importable: cannot publish '
                              '/tf_static (run scripts/install_ros.sh to build tf2_msgs)')

    def send(self, transform) -> None:
        """Publish (or replace) the static transform for ``transform.child_frame_id``."""
        if self._broadcaster is not None:
            self._broadcaster.sendTransform(transform)   # tf2_ros keeps its own list
            return
        self._by_child[transform.child_frame_id] = transform
        self._publisher.publish(TFMessage(transforms=list(self._by_child.values())))


def calibration_transform(calibration, stamp):
    """easy_handeye2's published transform: parent = base (eye_on_base) or effector
    (eye_in_hand), child = the camera frame, value T_reference_cam."""
    return messages.transform_stamped(np.asarray(calibration.T_reference_cam), stamp,
                                      calibration.parent_frame, calibration.tracking_base_frame)


def publish_calibration_until_shutdown(calibration, node_name: str = 'robotag_calibration_tf'
                                       ) -> None:
    """Publish one calibration on /tf_static and keep the publisher alive until Ctrl-C."""
    rclpy.init()
    node = None
    try:
        node = rclpy.create_node(node_name)
        publisher = StaticTransformPublisher(node)
        publisher.send(calibration_transform(calibration, node.get_clock().now().to_msg()))
        node.get_logger().info(
            f'publishing {calibration.parent_frame} -> {calibration.tracking_base_frame} on '
            '/tf_static (Ctrl-C to stop)')
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def main(argv=None) -> int:
    """``python -m robotag_ros.ros.static_tf FILE.calib``: latch one easy_handeye2 calibration
    on /tf_static until Ctrl-C (what ``robotag-calibrate --publish-static`` hands over to)."""
    import argparse

    parser = argparse.ArgumentParser(prog='python -m robotag_ros.ros.static_tf',
                                     description=main.__doc__)
    parser.add_argument('calib', help='an easy_handeye2 .calib file')
    args = parser.parse_args(argv)
    try:
        calibration = read_calib(args.calib)
    except (OSError, ValueError, KeyError) as error:
        print(f'robotag_ros.ros.static_tf: error: {error}', file=sys.stderr)
        return 2
    publish_calibration_until_shutdown(calibration)
    return 0


if __name__ == '__main__':
    sys.exit(main())
