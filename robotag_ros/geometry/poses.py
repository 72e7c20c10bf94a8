"""4x4 transforms (numpy, float64) from translation + quaternion and from pose messages.

Pose messages are duck-typed (``.position.x/y/z``, ``.orientation.x/y/z/w``), so the same code
reads geometry_msgs/Pose from rclpy and from rosbags without importing either.
"""
import numpy as np
from scipy.spatial.transform import Rotation


def transform_from_quaternion(translation, quaternion_xyzw) -> np.ndarray:
    """Translation (3,) in metres + unit quaternion (x, y, z, w) -> 4x4 transform."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(np.asarray(quaternion_xyzw, dtype=np.float64)).as_matrix()
    T[:3, 3] = np.asarray(translation, dtype=np.float64)
    return T


def transform_from_pose_msg(pose) -> np.ndarray:
    """A geometry_msgs/Pose (rclpy or rosbags) -> 4x4 transform."""
    p, q = pose.position, pose.orientation
    return transform_from_quaternion([p.x, p.y, p.z], [q.x, q.y, q.z, q.w])
