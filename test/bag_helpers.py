"""Test helper: a rosbag2 written message by message with rosbags (no ROS install needed)."""
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore


def write_messages_bag(path, messages):
    """A bag from (topic, msgtype, stamp_ns, message) tuples; returns ``path``."""
    typestore = get_typestore(Stores.ROS2_JAZZY)
    with Writer(path, version=8) as writer:
        connections = {}
        for topic, msgtype, stamp, message in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
            writer.write(connections[topic], stamp, typestore.serialize_cdr(message, msgtype))
    return path
