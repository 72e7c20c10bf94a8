"""Per-frame camera<->base estimates for calibration: from JSON/CSV files or from a rosbag2.

The bag holds what the estimator node publishes: ``~/camera_pose`` (``geometry_msgs/PoseStamped``,
the camera pose in the base frame) or ``/tf`` (camera <-> base, either direction), ``/diagnostics``
(key ``consistency`` per frame, stamped with the image stamp) and, for eye-in-hand, the robot's own
``/joint_states``. Everything is matched to the pose stamps; the bag is read with ``rosbags``.
"""
from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robotag_ros.atomic_io import atomic_write_text
from robotag_ros.data.bags.bag_images import bag_messages, open_bag
from robotag_ros.geometry.poses import transform_from_pose_msg, transform_from_quaternion
from robotag_ros.stamps import NS_PER_S, stamp_to_ns

POSE_STAMPED = 'geometry_msgs/msg/PoseStamped'
TF_MESSAGE = 'tf2_msgs/msg/TFMessage'
DIAGNOSTIC_ARRAY = 'diagnostic_msgs/msg/DiagnosticArray'
JOINT_STATE = 'sensor_msgs/msg/JointState'
CSV_POSE_COLUMNS = ('tx', 'ty', 'tz', 'qx', 'qy', 'qz', 'qw')


@dataclass
class EstimateSeries:
    """Per-frame estimates in time order (metres, radians)."""

    stamps_ns: np.ndarray                    # (N,) int64
    T_cam_base: np.ndarray                   # (N, 4, 4)
    consistency: np.ndarray | None = None    # (N,) 0..1, NaN where unknown
    joint_angles_rad: np.ndarray | None = None  # (N, n) measured joint states, NaN where unknown
    joint_names: list[str] | None = None
    read_problems: list[str] = field(default_factory=list)  # e.g. a damaged bag read short
    # The detected 2D keypoints (N, K, 2) pixels, their confidence (N, K) 0..1 and each
    # frame's intrinsics (N, 3, 3): present when the frames were estimated here (--images);
    # with measured joints they let the calibration fit one camera to every frame at once.
    keypoints_2d_px: np.ndarray | None = None
    keypoint_confidence: np.ndarray | None = None
    intrinsics: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.stamps_ns)


def _invert(T: np.ndarray) -> np.ndarray:
    T_inv = np.eye(4)
    T_inv[:3, :3] = T[:3, :3].T
    T_inv[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return T_inv


# ---------------------------------------------------------------------------------------------
# JSON / CSV

def load_estimates_json(path: str | os.PathLike) -> EstimateSeries:
    """Read ``[{"stamp_ns", "T_cam_base" | ("translation_m", "quaternion_xyzw"), "consistency"?,
    "joint_angles_rad"? ({name: rad} or a list with top-level "joint_names")}, ...]`` or
    ``{"joint_names": [...], "estimates": [...]}``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f'estimates file not found: {path}') from None
    except json.JSONDecodeError as err:
        raise ValueError(f'{path}: not valid JSON ({err})') from None
    joint_names = data.get('joint_names') if isinstance(data, dict) else None
    items = data.get('estimates') if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ValueError(f'{path}: expected a non-empty list of estimates')
    stamps, transforms, scores, joints = [], [], [], []
    for index, item in enumerate(items):
        try:
            if 'T_cam_base' in item:
                T = np.asarray(item['T_cam_base'], dtype=np.float64).reshape(4, 4)
            else:
                T = transform_from_quaternion(item['translation_m'], item['quaternion_xyzw'])
            stamps.append(int(item.get('stamp_ns', index)))
            scores.append(float(item.get('consistency', np.nan)))
            q = item.get('joint_angles_rad')
            if isinstance(q, dict):
                joint_names = joint_names or list(q)
                q = [q[name] for name in joint_names]
            joints.append(None if q is None else np.asarray(q, dtype=np.float64))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f'{path}: estimate {index} is malformed ({err!r})') from None
        transforms.append(T)
    return _series(stamps, transforms, scores, joints, joint_names, str(path))


def load_estimates_csv(path: str | os.PathLike) -> EstimateSeries:
    """Read CSV with columns ``stamp_ns, tx, ty, tz, qx, qy, qz, qw`` (T_cam_base, metres),
    optional ``consistency``, and any further columns taken as joint angles (radians) by name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'estimates file not found: {path}')
    with path.open(newline='') as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in CSV_POSE_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f'{path}: missing CSV columns {missing}; has {columns}')
        joint_names = [c for c in columns
                       if c not in CSV_POSE_COLUMNS + ('stamp_ns', 'consistency')] or None
        stamps, transforms, scores, joints = [], [], [], []
        for row_number, row in enumerate(reader, start=2):
            try:
                transforms.append(transform_from_quaternion(
                    [float(row[c]) for c in CSV_POSE_COLUMNS[:3]],
                    [float(row[c]) for c in CSV_POSE_COLUMNS[3:]]))
                stamps.append(int(row.get('stamp_ns') or row_number))
                scores.append(float(row['consistency']) if row.get('consistency') else np.nan)
                joints.append(np.array([float(row[c]) for c in joint_names])
                              if joint_names else None)
            except (TypeError, ValueError) as err:
                raise ValueError(f'{path}: line {row_number} is malformed ({err})') from None
    return _series(stamps, transforms, scores, joints, joint_names, str(path))


def save_estimates_json(path: str | os.PathLike, series: EstimateSeries) -> Path:
    """Write estimates in the layout :func:`load_estimates_json` reads, atomically."""

    items = []
    for i in range(len(series)):
        item = {'stamp_ns': int(series.stamps_ns[i]), 'T_cam_base': series.T_cam_base[i].tolist()}
        if series.consistency is not None and np.isfinite(series.consistency[i]):
            item['consistency'] = float(series.consistency[i])
        if series.joint_angles_rad is not None:
            item['joint_angles_rad'] = series.joint_angles_rad[i].tolist()
        items.append(item)
    return atomic_write_text(path, json.dumps({'joint_names': series.joint_names,
                                               'estimates': items}, indent=1))


def load_estimates_file(path: str | os.PathLike) -> EstimateSeries:
    """JSON or CSV, by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == '.json':
        return load_estimates_json(path)
    if suffix == '.csv':
        return load_estimates_csv(path)
    raise ValueError(f'{path}: estimates must be a .json or .csv file')


def _series(stamps, transforms, scores, joints, joint_names, source) -> EstimateSeries:
    scores = np.asarray(scores, dtype=np.float64)
    joint_angles = None
    if any(q is not None for q in joints):
        if any(q is None for q in joints) or len({q.shape for q in joints}) != 1:
            raise ValueError(f'{source}: joint angles present for some estimates only, '
                             'or of different lengths')
        joint_angles = np.stack(joints)
    return EstimateSeries(np.asarray(stamps, dtype=np.int64), np.stack(transforms),
                          None if np.isnan(scores).all() else scores, joint_angles,
                          list(joint_names) if joint_names else None)


# ---------------------------------------------------------------------------------------------
# rosbag2

def _nearest(sorted_stamps: np.ndarray, stamps: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Index of the nearest entry of ``sorted_stamps`` for each stamp; -1 beyond the tolerance."""
    if sorted_stamps.size == 0:
        return np.full(len(stamps), -1)
    right = np.clip(np.searchsorted(sorted_stamps, stamps), 1, len(sorted_stamps) - 1)
    left = right - 1
    if len(sorted_stamps) == 1:
        left = right = np.zeros(len(stamps), dtype=int)
    pick = np.where(np.abs(sorted_stamps[left] - stamps) <= np.abs(sorted_stamps[right] - stamps),
                    left, right)
    return np.where(np.abs(sorted_stamps[pick] - stamps) <= tolerance_ns, pick, -1)


def _pose_topic(reader, requested: str | None) -> str:
    topics = {name: info.msgtype for name, info in reader.topics.items()}
    listing = ', '.join(f'{n} ({t})' for n, t in sorted(topics.items()))
    if requested:
        if requested not in topics:
            raise ValueError(f'pose topic {requested!r} is not in the bag; it has: {listing}')
        if topics[requested] not in (POSE_STAMPED, TF_MESSAGE):
            raise ValueError(f'topic {requested!r} holds {topics[requested]}, not '
                             f'{POSE_STAMPED} or {TF_MESSAGE}')
        return requested
    poses = [n for n, t in topics.items() if t == POSE_STAMPED and n.endswith('camera_pose')]
    if len(poses) == 1:
        return poses[0]
    if '/tf' in topics and topics['/tf'] == TF_MESSAGE:
        return '/tf'
    raise ValueError(f'no unique camera pose topic (a PoseStamped ending in camera_pose, or /tf) '
                     f'in the bag; pass one. It has: {listing}')


def read_estimates_bag(bag_path: str | os.PathLike, base_frame: str,
                       camera_frame: str | None = None, pose_topic: str | None = None,
                       diagnostics_topic: str = '/diagnostics',
                       joint_states_topic: str | None = None,
                       joint_names: Sequence[str] | None = None,
                       tolerance_s: float = 0.05, allow_damaged: bool = False) -> EstimateSeries:
    """Per-frame T_cam_base from a rosbag2 of the node's outputs, with consistency and joints.

    PoseStamped: with ``header.frame_id == base_frame`` the pose is the camera's pose in the base
    (inverted here); with the camera frame it is the base's pose in the camera. /tf: the transform
    between ``camera_frame`` (required) and ``base_frame``, either direction. Consistency is the
    ``consistency`` value of the /diagnostics message with the same stamp (NaN if none within
    ``tolerance_s``); joint states (``joint_names`` order) likewise from ``joint_states_topic``.
    A bag that reads short of the message counts in its metadata (damaged) raises BagReadError,
    unless ``allow_damaged``: then the shortfall is in the series' ``read_problems``.
    """

    bag_path = Path(bag_path)
    reader = open_bag(bag_path)
    problems: list[str] = []

    def messages(topic_name):
        return bag_messages(reader, [c for c in reader.connections if c.topic == topic_name],
                            bag_path, allow_damaged, problems)
    try:
        topic = _pose_topic(reader, pose_topic)
        msgtype = reader.topics[topic].msgtype
        stamps, transforms, seen_pairs = [], [], set()
        for connection, _, raw in messages(topic):
            message = reader.deserialize(raw, connection.msgtype)
            if msgtype == POSE_STAMPED:
                T = transform_from_pose_msg(message.pose)
                parent = message.header.frame_id
                if parent == base_frame:
                    T = _invert(T)
                elif camera_frame and parent != camera_frame:
                    raise ValueError(f'{topic}: pose in frame {parent!r}, neither the base '
                                     f'{base_frame!r} nor the camera {camera_frame!r}')
                stamps.append(stamp_to_ns(message.header.stamp))
                transforms.append(T)
                continue
            for stamped in message.transforms:
                parent, child = stamped.header.frame_id, stamped.child_frame_id
                seen_pairs.add((parent, child))
                if {parent, child} != {base_frame, camera_frame}:
                    continue
                tr, rot = stamped.transform.translation, stamped.transform.rotation
                T = transform_from_quaternion([tr.x, tr.y, tr.z], [rot.x, rot.y, rot.z, rot.w])
                stamps.append(stamp_to_ns(stamped.header.stamp))
                transforms.append(T if parent == camera_frame else _invert(T))
        if not transforms:
            pairs = ', '.join(f'{p}->{c}' for p, c in sorted(seen_pairs)
                              if base_frame in (p, c)) or 'none'
            raise ValueError(f'{bag_path}: no {camera_frame!r} <-> {base_frame!r} estimates on '
                             f'{topic}; transforms with the base there: {pairs}')
        order = np.argsort(stamps, kind='stable')
        stamps_ns = np.asarray(stamps, dtype=np.int64)[order]
        T_cam_base = np.stack(transforms)[order]
        tolerance_ns = int(tolerance_s * NS_PER_S)

        consistency = None
        if diagnostics_topic in reader.topics:
            diag_stamps, diag_values = _read_consistency(reader, messages(diagnostics_topic))
            if diag_stamps.size:
                index = _nearest(diag_stamps, stamps_ns, tolerance_ns)
                consistency = np.where(index >= 0, diag_values[index], np.nan)

        joint_angles = None
        if joint_states_topic:
            if joint_states_topic not in reader.topics:
                raise ValueError(f'joint states topic {joint_states_topic!r} is not in '
                                 f'{bag_path}; it has: {sorted(reader.topics)}')
            if not joint_names:
                raise ValueError('joint_names are needed to order the joint states')
            joint_stamps, joint_values = _read_joint_states(
                reader, joint_states_topic, messages(joint_states_topic), list(joint_names))
            index = _nearest(joint_stamps, stamps_ns, tolerance_ns)
            joint_angles = np.where((index >= 0)[:, None], joint_values[index], np.nan)
    finally:
        reader.close()
    return EstimateSeries(stamps_ns, T_cam_base, consistency, joint_angles,
                          list(joint_names) if joint_names else None, read_problems=problems)


def _read_consistency(reader, messages) -> tuple[np.ndarray, np.ndarray]:
    stamps, values = [], []
    for connection, _, raw in messages:
        message = reader.deserialize(raw, connection.msgtype)
        for status in message.status:
            for key_value in status.values:
                if key_value.key == 'consistency':
                    try:
                        values.append(float(key_value.value))
                    except ValueError:
                        continue
                    stamps.append(stamp_to_ns(message.header.stamp))
    order = np.argsort(stamps, kind='stable')
    return np.asarray(stamps, dtype=np.int64)[order], np.asarray(values)[order]


def _read_joint_states(reader, topic: str, messages, joint_names: list[str]):
    stamps, values = [], []
    for connection, _, raw in messages:
        message = reader.deserialize(raw, connection.msgtype)
        positions = dict(zip(message.name, message.position))
        if not all(name in positions for name in joint_names):
            continue  # another publisher's partial state (e.g. the gripper)
        stamps.append(stamp_to_ns(message.header.stamp))
        values.append([positions[name] for name in joint_names])
    if not values:
        raise ValueError(f'{topic}: no JointState holds all of {joint_names}')
    order = np.argsort(stamps, kind='stable')
    return (np.asarray(stamps, dtype=np.int64)[order],
            np.asarray(values, dtype=np.float64)[order])
