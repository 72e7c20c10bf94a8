"""Build the node's output messages (TF, pose, joint states, markers, cloud, diagnostics).

Pure functions from numpy values to ROS messages; no node state. Lengths in metres, angles in
radians. ``T_target_source`` is 4x4 and maps points from the source frame into the target frame.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseStamped, Quaternion, TransformStamped, Vector3
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState, PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

try:
    from sensor_msgs_py import point_cloud2 as _point_cloud2
except ImportError:   # not on the registries: build the cloud from numpy below
    _point_cloud2 = None


def _quaternion(R: np.ndarray) -> Quaternion:
    x, y, z, w = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat()
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def transform_stamped(T_parent_child: np.ndarray, stamp, parent_frame: str,
                      child_frame: str) -> TransformStamped:
    """TF transform giving the child frame's pose in the parent frame (= T_parent_child)."""
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent_frame
    msg.child_frame_id = child_frame
    t = T_parent_child[:3, 3]
    msg.transform.translation = Vector3(x=float(t[0]), y=float(t[1]), z=float(t[2]))
    msg.transform.rotation = _quaternion(T_parent_child[:3, :3])
    return msg


def pose_stamped(T_frame_object: np.ndarray, stamp, frame_id: str) -> PoseStamped:
    """The object's pose expressed in ``frame_id`` (e.g. T_base_cam: the camera in the base)."""
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    t = T_frame_object[:3, 3]
    msg.pose = Pose(position=Point(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                    orientation=_quaternion(T_frame_object[:3, :3]))
    return msg


def joint_state(joint_names: Sequence[str], joint_angles_rad: np.ndarray, stamp) -> JointState:
    """JointState with positions in radians (no velocities or efforts are estimated)."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(joint_names)
    msg.position = [float(a) for a in np.asarray(joint_angles_rad, dtype=np.float64)]
    return msg


def keypoint_markers(keypoints_m: np.ndarray, stamp, frame_id: str,
                     skeleton_edges: Sequence[tuple[int, int]] = (),
                     namespace: str = 'robotag_keypoints',
                     sphere_diameter_m: float = 0.02) -> MarkerArray:
    """Keypoints as a SPHERE_LIST and the skeleton as a LINE_LIST, for RViz."""
    header = Header(stamp=stamp, frame_id=frame_id)
    points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in keypoints_m]
    spheres = Marker(header=header, ns=namespace, id=0, type=Marker.SPHERE_LIST,
                     action=Marker.ADD, points=points,
                     scale=Vector3(x=sphere_diameter_m, y=sphere_diameter_m,
                                   z=sphere_diameter_m),
                     color=ColorRGBA(r=1.0, g=0.2, b=0.2, a=1.0))
    spheres.pose.orientation.w = 1.0
    lines = Marker(header=header, ns=namespace, id=1, type=Marker.LINE_LIST, action=Marker.ADD,
                   points=[points[i] for edge in skeleton_edges for i in edge],
                   scale=Vector3(x=sphere_diameter_m / 3), color=ColorRGBA(g=1.0, b=1.0, a=1.0))
    lines.pose.orientation.w = 1.0
    return MarkerArray(markers=[spheres, lines])


def point_cloud(points_m: np.ndarray, stamp, frame_id: str) -> PointCloud2:
    """An unorganised x, y, z float32 PointCloud2 (metres) from an (N, 3) array."""
    points = np.ascontiguousarray(np.asarray(points_m, dtype=np.float32).reshape(-1, 3))
    header = Header(stamp=stamp, frame_id=frame_id)
    if _point_cloud2 is not None:
        return _point_cloud2.create_cloud_xyz32(header, points)
    fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, name in enumerate('xyz')]
    return PointCloud2(header=header, height=1, width=len(points), fields=fields,
                       is_bigendian=False, point_step=12, row_step=12 * len(points),
                       data=points.tobytes(), is_dense=bool(np.isfinite(points).all()))


def point_cloud_to_numpy(msg: PointCloud2) -> np.ndarray:
    """(N, 3) float32 x, y, z of a cloud whose first three fields are float32 x, y, z."""
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(-1, msg.point_step)
    return raw[:, :12].copy().view(np.float32).reshape(-1, 3)


# The estimator node's DiagnosticStatus name: the calibration node reads consistency from it only.
ESTIMATOR_DIAGNOSTIC_NAME = 'robotag_ros: estimator'


def estimate_diagnostic_values(estimate, inference_ms: float, joints: str) -> dict[str, object]:
    """The estimator node's per-frame diagnostic values: consistency and its terms, timings,
    and whether the joints were ``estimated`` or ``measured``."""
    values: dict[str, object] = {'consistency': float(estimate.consistency),
                                 'inference_ms': inference_ms, 'joints': joints}
    values.update({f'consistency_{k}': float(v) for k, v in estimate.consistency_terms.items()})
    values.update({f'timing_{k}' if k.endswith('_ms') else f'timing_{k}_ms': float(v)
                   for k, v in estimate.timings_ms.items()})
    return values


def diagnostic_array(stamp, name: str, hardware_id: str, level, message: str,
                     values: dict[str, object]) -> DiagnosticArray:
    """One DiagnosticStatus in a DiagnosticArray; values are written with str() (floats %.6g)."""
    def text(value):
        return f'{value:.6g}' if isinstance(value, float) else str(value)

    level = level if isinstance(level, bytes) else bytes([level])   # the msg field is a byte
    status = DiagnosticStatus(level=level, name=name, hardware_id=hardware_id, message=message,
                              values=[KeyValue(key=k, value=text(v)) for k, v in values.items()])
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
