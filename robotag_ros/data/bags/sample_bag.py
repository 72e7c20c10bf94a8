"""The sample rosbag2: JPEG frames + CameraInfo + ground truth, written and read with rosbags.

Topics (all stamped with the frame's stamp; the bag's log time is the same stamp):

- ``/camera/color/image_raw/compressed`` ``sensor_msgs/CompressedImage``, JPEG (what
  ``compressed_image_transport`` records; keeps the bag small), frame_id the optical frame;
- ``/camera/color/camera_info`` ``sensor_msgs/CameraInfo``, distortion-free pinhole;
- ``/ground_truth/joint_states`` ``sensor_msgs/JointState``, radians;
- ``/ground_truth/camera_pose`` ``geometry_msgs/PoseStamped``: the camera optical frame's pose in
  the robot base frame (T_base_cam, metres), frame_id the base frame.

No ROS install is needed: both sides use ``rosbags`` (Jazzy typestore). Writing is
deterministic (same frames, same bytes) and atomic (a temporary folder renamed when complete).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from robotag_ros.data.bags.bag_images import camera_info_message, staged_bag_writer
from robotag_ros.data.bags.bag_images import BagReadError, bag_messages, open_bag
from robotag_ros.geometry.poses import transform_from_pose_msg
from robotag_ros.stamps import ns_to_sec_nanosec, stamp_to_ns

IMAGE_TOPIC = '/camera/color/image_raw/compressed'
CAMERA_INFO_TOPIC = '/camera/color/camera_info'
JOINT_STATES_TOPIC = '/ground_truth/joint_states'
CAMERA_POSE_TOPIC = '/ground_truth/camera_pose'
JPEG_FORMAT = 'rgb8; jpeg compressed bgr8'   # compressed_image_transport's format string


@dataclass
class SampleFrame:
    """One frame of a sample bag with its ground truth.

    image_rgb (H, W, 3) uint8; K (3, 3) pixels; joint_angles_rad (n,) in ``joint_names`` order;
    T_cam_base (4, 4) metres; stamp_ns the image header stamp, nanoseconds.
    """

    stamp_ns: int
    frame_id: str
    image_rgb: np.ndarray
    K: np.ndarray
    joint_names: list[str]
    joint_angles_rad: np.ndarray
    T_cam_base: np.ndarray
    base_frame: str


def _time(typestore, stamp_ns: int):
    Time = typestore.types['builtin_interfaces/msg/Time']
    sec, nanosec = ns_to_sec_nanosec(stamp_ns)
    return Time(sec=sec, nanosec=nanosec)


def write_sample_bag(path: str | os.PathLike, frames: Sequence, joint_names: Sequence[str],
                     base_frame: str, frame_id: str, jpeg_quality: int = 90,
                     storage: str = 'mcap', joint_states_topic: str = JOINT_STATES_TOPIC) -> Path:
    """Write frames (with ``rgb``, ``K``, ``joint_angles_rad``, ``T_cam_base``, ``stamp_ns``).

    storage: 'mcap' (rosbag2's default since Iron) or 'sqlite3'. joint_states_topic: e.g.
    ``/joint_states`` for a recording as a robot publishes it (the sample bag's are ground truth,
    and :func:`read_sample_bag` reads them only from the default). An existing ``path`` is
    refused.
    """
    with staged_bag_writer(path, storage) as (writer, store):
        types = store.types
        Header = types['std_msgs/msg/Header']
        CompressedImage = types['sensor_msgs/msg/CompressedImage']
        JointState = types['sensor_msgs/msg/JointState']
        PoseStamped = types['geometry_msgs/msg/PoseStamped']
        Pose = types['geometry_msgs/msg/Pose']
        Point = types['geometry_msgs/msg/Point']
        Quaternion = types['geometry_msgs/msg/Quaternion']
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=store)
            for topic, msgtype in ((IMAGE_TOPIC, CompressedImage.__msgtype__),
                                   (CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo'),
                                   (joint_states_topic, JointState.__msgtype__),
                                   (CAMERA_POSE_TOPIC, PoseStamped.__msgtype__))}

        def write(topic, message, stamp_ns):
            writer.write(connections[topic], int(stamp_ns),
                         store.serialize_cdr(message, message.__msgtype__))

        for frame in frames:
            rgb = np.ascontiguousarray(frame.rgb, dtype=np.uint8)
            height, width = rgb.shape[:2]
            ok, jpeg = cv2.imencode('.jpg', rgb[..., ::-1],
                                    [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if not ok:
                raise RuntimeError(f'JPEG encoding failed for the frame at {frame.stamp_ns}')
            camera_header = Header(stamp=_time(store, frame.stamp_ns), frame_id=frame_id)
            base_header = Header(stamp=_time(store, frame.stamp_ns), frame_id=base_frame)
            write(CAMERA_INFO_TOPIC, camera_info_message(store, camera_header, frame.K, width,
                                                         height), frame.stamp_ns)
            write(IMAGE_TOPIC, CompressedImage(header=camera_header, format=JPEG_FORMAT,
                                               data=jpeg.reshape(-1)), frame.stamp_ns)
            write(joint_states_topic, JointState(
                header=base_header, name=list(joint_names),
                position=np.asarray(frame.joint_angles_rad, dtype=np.float64),
                velocity=np.zeros(0), effort=np.zeros(0)), frame.stamp_ns)
            T_base_cam = np.linalg.inv(np.asarray(frame.T_cam_base, dtype=np.float64))
            x, y, z, w = Rotation.from_matrix(T_base_cam[:3, :3]).as_quat()
            t = T_base_cam[:3, 3]
            write(CAMERA_POSE_TOPIC, PoseStamped(header=base_header, pose=Pose(
                position=Point(x=float(t[0]), y=float(t[1]), z=float(t[2])),
                orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)))),
                frame.stamp_ns)
    return Path(path)


def render_sample_bag(path: str | os.PathLike, robot, seed: int, num_frames: int,
                      jpeg_quality: int = 90, storage: str = 'mcap',
                      joint_states_topic: str = JOINT_STATES_TOPIC, **render_options) -> list:
    """Render a held-out recording (data/synthetic/sample_sequence: one fixed camera, smooth arm
    motion, everything from ``seed``; ``render_options`` go to ``SequenceRenderer.render``) and
    write it with :func:`write_sample_bag`. Returns the rendered frames (``SequenceFrame``:
    images and ground truth)."""
    from robotag_ros.data.synthetic.sample_sequence import SAMPLE_FRAME_ID, SequenceRenderer

    renderer = SequenceRenderer(robot)
    try:
        frames = renderer.render(seed=seed, num_frames=num_frames, **render_options)
    finally:
        renderer.close()
    write_sample_bag(path, frames, robot.joint_names, robot.base_frame, SAMPLE_FRAME_ID,
                     jpeg_quality=jpeg_quality, storage=storage,
                     joint_states_topic=joint_states_topic)
    return frames


def read_sample_bag(path: str | os.PathLike) -> list[SampleFrame]:
    """Every image of a sample bag with its CameraInfo and ground truth (same stamp), in order.

    Raises FileNotFoundError / BagReadError (robotag_ros.data.bags.bag_images) for a missing or
    unreadable bag, and BagReadError naming the topic and stamp when a frame lacks a message.
    """
    from rosbags.image import message_to_cvimage

    path = Path(path)
    reader = open_bag(path)
    by_topic: dict[str, dict[int, object]] = {}
    try:
        missing = {IMAGE_TOPIC, CAMERA_INFO_TOPIC, JOINT_STATES_TOPIC,
                   CAMERA_POSE_TOPIC} - set(reader.topics)
        if missing:
            raise BagReadError(f'{path} is not a sample bag: it lacks {sorted(missing)}')
        for connection, _, raw in bag_messages(reader, reader.connections, path):
            message = reader.deserialize(raw, connection.msgtype)
            by_topic.setdefault(connection.topic, {})[
                stamp_to_ns(message.header.stamp)] = message
    finally:
        reader.close()
    frames = []
    for stamp_ns, image in sorted(by_topic[IMAGE_TOPIC].items()):
        parts = {}
        for topic in (CAMERA_INFO_TOPIC, JOINT_STATES_TOPIC, CAMERA_POSE_TOPIC):
            if stamp_ns not in by_topic.get(topic, {}):
                raise BagReadError(f'{path}: no {topic} message for the image at {stamp_ns} ns')
            parts[topic] = by_topic[topic][stamp_ns]
        info, joints, pose = (parts[CAMERA_INFO_TOPIC], parts[JOINT_STATES_TOPIC],
                              parts[CAMERA_POSE_TOPIC])
        rgb = np.ascontiguousarray(message_to_cvimage(image, 'rgb8'))
        frames.append(SampleFrame(
            stamp_ns=stamp_ns, frame_id=str(image.header.frame_id), image_rgb=rgb,
            K=np.asarray(info.k, dtype=np.float64).reshape(3, 3),
            joint_names=list(joints.name),
            joint_angles_rad=np.asarray(joints.position, dtype=np.float64),
            T_cam_base=np.linalg.inv(transform_from_pose_msg(pose.pose)),
            base_frame=str(pose.header.frame_id)))
    return frames
