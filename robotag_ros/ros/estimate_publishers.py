"""The estimator node's outputs: one estimate as JointState, /tf, the camera pose, diagnostics,
and, only while someone subscribes, keypoint markers, the robot cloud and the overlay."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState, PointCloud2
from visualization_msgs.msg import MarkerArray

from robotag_ros.ros import messages
from robotag_ros.ros.conversions import rgb_to_image
from robotag_ros.ros.tf_sender import transform_sender
from robotag_ros.visualization import draw_estimate


class EstimatePublishers:
    """The publishers of one estimator node, each output stamped with the image's stamp."""

    def __init__(self, node):
        self._node = node
        self._joint_pub = node.create_publisher(JointState, 'joint_states', 10)
        self._pose_pub = node.create_publisher(PoseStamped, '~/camera_pose', 10)
        self._debug_pub = node.create_publisher(Image, '~/debug_image', 1)
        self._markers_pub = node.create_publisher(MarkerArray, '~/keypoints', 1)
        self._points_pub = node.create_publisher(PointCloud2, '~/points', 1)
        self._diag_pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._send_transform = transform_sender(node)

    def publish(self, estimate, stamp, camera_frame: str, base_frame: str, joints: bool,
                tf_parent: str | None) -> None:
        """JointState (when ``joints``), /tf with ``tf_parent`` ('camera' or 'base'; None: no
        /tf) as the parent frame, and the camera pose in the base frame."""
        if joints:
            self._joint_pub.publish(
                messages.joint_state(estimate.joint_names, estimate.joint_angles_rad, stamp))
        if tf_parent is not None and self._send_transform is not None:
            if tf_parent == 'camera':
                self._send_transform(messages.transform_stamped(
                    estimate.T_cam_base, stamp, camera_frame, base_frame))
            else:
                self._send_transform(messages.transform_stamped(
                    estimate.T_base_cam, stamp, base_frame, camera_frame))
        self._pose_pub.publish(messages.pose_stamped(estimate.T_base_cam, stamp, base_frame))

    def publish_listened(self, estimate, image_rgb, K, header, camera_frame: str,
                         axis_length_m: float) -> None:
        """Markers, cloud and overlay, each only while someone listens (they cost time)."""
        if self._markers_pub.get_subscription_count() > 0:
            count = len(estimate.keypoints_3d_m)
            self._markers_pub.publish(messages.keypoint_markers(
                estimate.keypoints_3d_m, header.stamp, camera_frame,
                [(i, i + 1) for i in range(count - 1)]))
        if self._points_pub.get_subscription_count() > 0 and estimate.points_3d_m is not None:
            self._points_pub.publish(messages.point_cloud(estimate.points_3d_m, header.stamp,
                                                          camera_frame))
        if self._debug_pub.get_subscription_count() > 0:
            overlay = draw_estimate(image_rgb, estimate, K, axis_length_m=axis_length_m)
            self._debug_pub.publish(rgb_to_image(overlay, header))

    def diagnostics(self, stamp, level, message: str, values: dict[str, object]) -> None:
        """One status of this node on /diagnostics."""
        self._diag_pub.publish(messages.diagnostic_array(
            stamp, messages.ESTIMATOR_DIAGNOSTIC_NAME, self._node.get_fully_qualified_name(),
            level, message, values))
