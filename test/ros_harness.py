"""Processes for the node tests and the latency benchmark: a frame driver and an output listener.

    python test/ros_harness.py drive  SCENARIO.json RESULT.json
    python test/ros_harness.py listen RESULT.json STOP_FILE READY_FILE
    python test/ros_harness.py infos  TOPIC SECONDS RESULT.json

`drive` publishes each scenario frame (camera_info first when given, then the image) and waits
for the node's /diagnostics answer carrying that frame's stamp before the next one, so every frame
is really processed (the node keeps only the newest frame). `listen` records joint_states, /tf,
~/camera_pose, ~/debug_image, ~/keypoints, ~/points and /diagnostics until STOP_FILE exists.
`infos` publishes a valid CameraInfo on TOPIC at 5 Hz for SECONDS and no image (what a node
sees when frames are lost on the way) and records the /diagnostics statuses meanwhile.
The caller sets FASTDDS_BUILTIN_TRANSPORTS=SHM and a ROS_DOMAIN_ID of its own.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from robotag_ros.atomic_io import atomic_write_json
from robotag_ros.ros.conversions import K_to_camera_info, rgb_to_image
from robotag_ros.ros.messages import ESTIMATOR_DIAGNOSTIC_NAME, point_cloud_to_numpy
from robotag_ros.stamps import stamp_key as frame_key, stamp_to_ns

NODE = '/estimator'


def stamp_key(stamp) -> str:
    """A message stamp's frame key (robotag_ros.stamps)."""
    return frame_key(stamp_to_ns(stamp))


def make_image(frame: dict, header: Header) -> Image:
    """Image message for one scenario frame: a test pattern, optionally broken on purpose."""
    height, width = frame.get('height', 48), frame.get('width', 64)
    rng = np.random.default_rng(frame['index'])
    rgb = rng.integers(0, 200, size=(height, width, 3), dtype=np.uint8)
    if 'top_left_rgb' in frame:
        rgb[0, 0] = frame['top_left_rgb']
    encoding = frame.get('encoding', 'rgb8')
    if encoding in ('16UC1', 'mono16'):
        msg = Image(header=header, height=height, width=width, encoding=encoding, step=2 * width,
                    data=bytes(2 * width * height))
    elif encoding in ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'):
        msg = rgb_to_image(rgb, header, encoding)
    else:   # an encoding the node does not know, with plausible 2-byte pixels
        msg = Image(header=header, height=height, width=width, encoding=encoding,
                    step=2 * width, data=bytes(2 * width * height))
    if frame.get('truncate_bytes'):
        msg.data = bytes(msg.data)[:-frame['truncate_bytes']]
    return msg


def drive(scenario_path: str, result_path: str) -> int:
    """Publish the scenario's frames one by one; write each frame's diagnostics answer."""
    with open(scenario_path) as f:
        scenario = json.load(f)
    rclpy.init()
    node = rclpy.create_node('robotag_test_driver')
    try:
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = node.create_publisher(Image, scenario.get('image_topic', '/image'), qos)
        info_pub = node.create_publisher(CameraInfo,
                                         scenario.get('camera_info_topic', '/camera_info'), qos)
        answers: dict[str, dict] = {}

        def on_diagnostics(msg: DiagnosticArray):
            for status in msg.status:
                if status.name == ESTIMATOR_DIAGNOSTIC_NAME:
                    answers[stamp_key(msg.header.stamp)] = {
                        'level': int.from_bytes(status.level, 'little'),
                        'message': status.message,
                        'values': {kv.key: kv.value for kv in status.values},
                        'received_s': time.monotonic()}
        node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 50)

        deadline = time.monotonic() + scenario.get('discovery_timeout_s', 20.0)
        while (image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0
               or node.count_publishers('/diagnostics') == 0):
            rclpy.spin_once(node, timeout_sec=0.05)
            if time.monotonic() > deadline:
                print('driver: the node never appeared', file=sys.stderr)
                return 1
        results = []
        for frame in scenario['frames']:
            header = Header(frame_id=frame.get('frame_id', scenario.get('frame_id', 'camera')))
            header.stamp.sec, header.stamp.nanosec = 1000 + frame['index'], 250
            key = stamp_key(header.stamp)
            answer, sent_s = None, None
            for attempt in range(1, scenario.get('attempts', 3) + 1):
                if frame.get('camera_info') is not None:
                    info = frame['camera_info']
                    info_pub.publish(K_to_camera_info(np.array(info['K']), info['width'],
                                                      info['height'], header))
                    end = time.monotonic() + 0.1   # let it arrive before the image
                    while time.monotonic() < end:
                        rclpy.spin_once(node, timeout_sec=0.02)
                sent_s = time.monotonic()
                image_pub.publish(make_image(frame, header))
                end = sent_s + scenario.get('answer_timeout_s', 3.0)
                while key not in answers and time.monotonic() < end:
                    rclpy.spin_once(node, timeout_sec=0.02)
                if key in answers:
                    answer = answers[key]
                    # A CameraInfo sent while discovery is still matching the node's subscription
                    # can be lost although the image arrives: send the pair again.
                    lost_info = (frame.get('camera_info') is not None
                                 and 'no valid camera_info' in answer['message'])
                    if lost_info and attempt < scenario.get('attempts', 3):
                        del answers[key]
                        continue
                    break
            results.append({'index': frame['index'], 'stamp': key, 'answer': answer,
                            'attempts': attempt,
                            'round_trip_ms': None if answer is None
                            else (answer['received_s'] - sent_s) * 1000.0})
        atomic_write_json(result_path, {'frames': results})
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def listen(result_path: str, stop_file: str, ready_file: str) -> int:
    """Record the node's outputs until stop_file exists; write them as JSON."""
    rclpy.init()
    node = rclpy.create_node('robotag_test_listener')
    record: dict[str, list] = {k: [] for k in ('joint_states', 'tf', 'camera_pose', 'debug_image',
                                               'keypoints', 'points', 'diagnostics')}
    try:
        from tf2_msgs.msg import TFMessage

        def tf(m):
            return [{'stamp': stamp_key(t.header.stamp), 'parent': t.header.frame_id,
                     'child': t.child_frame_id,
                     'translation': [t.transform.translation.x, t.transform.translation.y,
                                     t.transform.translation.z],
                     'rotation_xyzw': [t.transform.rotation.x, t.transform.rotation.y,
                                       t.transform.rotation.z, t.transform.rotation.w]}
                    for t in m.transforms]

        def joint_states(m):
            return [{'stamp': stamp_key(m.header.stamp), 'name': list(m.name),
                     'position': list(m.position)}]

        def camera_pose(m):
            p = m.pose.position
            return [{'stamp': stamp_key(m.header.stamp), 'frame_id': m.header.frame_id,
                     'position': [p.x, p.y, p.z]}]

        def debug_image(m):
            return [{'stamp': stamp_key(m.header.stamp), 'width': m.width, 'height': m.height,
                     'encoding': m.encoding}]

        def keypoints(m):
            spheres = m.markers[0]
            return [{'stamp': stamp_key(spheres.header.stamp),
                     'frame_id': spheres.header.frame_id, 'num_points': len(spheres.points),
                     'sphere_list': spheres.type == Marker.SPHERE_LIST}]

        def points(m):
            return [{'stamp': stamp_key(m.header.stamp),
                     'num_points': int(point_cloud_to_numpy(m).shape[0])}]

        def diagnostics(m):
            return [{'stamp': stamp_key(m.header.stamp),
                     'values': {kv.key: kv.value for kv in m.status[0].values}}]

        tf_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        topics = {'tf': (TFMessage, '/tf', tf_qos, tf),
                  'joint_states': (JointState, '/joint_states', 50, joint_states),
                  'camera_pose': (PoseStamped, f'{NODE}/camera_pose', 50, camera_pose),
                  'debug_image': (Image, f'{NODE}/debug_image', 10, debug_image),
                  'keypoints': (MarkerArray, f'{NODE}/keypoints', 10, keypoints),
                  'points': (PointCloud2, f'{NODE}/points', 10, points),
                  'diagnostics': (DiagnosticArray, '/diagnostics', 50, diagnostics)}
        for key, (msg_type, topic, qos, convert) in topics.items():
            node.create_subscription(
                msg_type, topic, lambda m, key=key, convert=convert: record[key].extend(
                    convert(m)), qos)
        ready = False
        while not os.path.exists(stop_file):
            rclpy.spin_once(node, timeout_sec=0.05)
            if not ready and node.count_publishers('/joint_states') > 0 \
                    and node.count_publishers(f'{NODE}/debug_image') > 0:
                ready = True
                atomic_write_json(ready_file, {'ready': True})
        end = time.monotonic() + 0.3   # drain what is in flight
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
        atomic_write_json(result_path, record)
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def infos(topic: str, seconds: str, result_path: str) -> int:
    """Publish CameraInfo only; write the node's /diagnostics statuses seen meanwhile."""
    rclpy.init()
    node = rclpy.create_node('robotag_test_infos')
    statuses = []
    try:
        publisher = node.create_publisher(CameraInfo, topic, 5)
        node.create_subscription(
            DiagnosticArray, '/diagnostics', lambda m: statuses.extend(
                {'level': int.from_bytes(s.level, 'little'), 'message': s.message,
                 'values': {kv.key: kv.value for kv in s.values}} for s in m.status), 50)
        deadline = time.monotonic() + 20.0
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        K = np.array([[80.0, 0.0, 32.0], [0.0, 80.0, 24.0], [0.0, 0.0, 1.0]])
        end = time.monotonic() + float(seconds)
        while time.monotonic() < end:
            header = Header(frame_id='camera')
            header.stamp = node.get_clock().now().to_msg()
            publisher.publish(K_to_camera_info(K, 64, 48, header))
            pause = time.monotonic() + 0.2
            while time.monotonic() < pause:
                rclpy.spin_once(node, timeout_sec=0.02)
        atomic_write_json(result_path, {'statuses': statuses})
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    mode, *arguments = sys.argv[1:]
    sys.exit({'drive': drive, 'listen': listen, 'infos': infos}[mode](*arguments))
