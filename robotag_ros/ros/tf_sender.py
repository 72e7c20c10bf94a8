"""Send dynamic transforms on /tf the way tf2_ros does, with or without tf2_ros installed."""
from __future__ import annotations

from typing import Callable, Optional

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

try:   # the real TF broadcaster where a ROS 2 install provides it
    from tf2_ros import TransformBroadcaster
except ImportError:
    TransformBroadcaster = None
try:   # else the message type, built locally by scripts/install_ros.sh
    from tf2_msgs.msg import TFMessage
except ImportError:
    TFMessage = None

# tf2_ros' dynamic broadcaster QoS: reliable, volatile, depth 100.
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)


def transform_sender(node) -> Optional[Callable]:
    """A function sending one TransformStamped on /tf, or None (with a warning) when neither
    tf2_ros nor tf2_msgs is importable."""
    if TransformBroadcaster is not None:
        return TransformBroadcaster(node).sendTransform
    if TFMessage is not None:
        publisher = node.create_publisher(TFMessage, '/tf', TF_QOS)
        return lambda transform: publisher.publish(TFMessage(transforms=[transform]))
    node.get_logger().warning('neither tf2_ros nor tf2_msgs is importable: no /tf '
                              '(run scripts/install_ros.sh to build tf2_msgs)')
    return None
