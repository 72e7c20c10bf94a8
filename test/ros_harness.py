"""Frame driving processes for the node tests (robotag_ros.ros.frame_driver does the sending).

    python test/ros_harness.py drive  SCENARIO.json RESULT.json
    python test/ros_harness.py infos  TOPIC SECONDS RESULT.json

`drive` publishes each scenario frame (camera_info first when given, then the image: a test
pattern, or one broken on purpose) and waits for the node's /diagnostics answer carrying that
frame's stamp before the next one, so every frame is really processed (the node keeps only the
newest frame). `infos` publishes a valid CameraInfo on TOPIC at 5 Hz for SECONDS and no image
(what a node sees when frames are lost on the way) and records the /diagnostics statuses
meanwhile. What the node publishes is recorded by robotag_ros.ros.output_listener (the tests
start node and listener with robotag_ros.harness.sample_run.NodeSession). The caller keeps DDS
local and on a ROS_DOMAIN_ID of its own.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from robotag_ros.atomic_io import atomic_write_json
from robotag_ros.ros.conversions import K_to_camera_info, rgb_to_image
from robotag_ros.ros.frame_driver import RESEND_SETTLE_S, DriverFrame, FrameDriver


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


def scenario_frames(scenario: dict) -> list[DriverFrame]:
    """The scenario's frames as messages: stamps 1000+index s, each CameraInfo (where a frame
    has one) given RESEND_SETTLE_S to arrive before its image."""
    frames = []
    for frame in scenario['frames']:
        header = Header(frame_id=frame.get('frame_id', scenario.get('frame_id', 'camera')))
        header.stamp.sec, header.stamp.nanosec = 1000 + frame['index'], 250
        info = frame.get('camera_info')
        frames.append(DriverFrame(
            make_image(frame, header), None if info is None else K_to_camera_info(
                np.array(info['K']), info['width'], info['height'], header),
            settle_s=0.0 if info is None else RESEND_SETTLE_S))
    return frames


def drive(scenario_path: str, result_path: str) -> int:
    """Publish the scenario's frames one by one; write each frame's diagnostics answer."""
    with open(scenario_path) as f:
        scenario = json.load(f)
    frames = scenario_frames(scenario)
    rclpy.init()
    node = rclpy.create_node('robotag_test_driver')
    try:
        driver = FrameDriver(node, scenario.get('image_topic', '/image'),
                             scenario.get('camera_info_topic', '/camera_info'))
        try:
            driver.wait_for_node(scenario.get('discovery_timeout_s', 20.0))
        except TimeoutError:
            print('driver: the node never appeared', file=sys.stderr)
            return 1

        def lost_camera_info(frame: DriverFrame, answer: dict) -> bool:
            # A CameraInfo sent while discovery still matches the node's subscription can be
            # lost although the image arrives: send the pair again.
            return frame.camera_info is not None and 'no valid camera_info' in answer['message']
        records = driver.play(frames, 'answer', answer_timeout_s=scenario.get(
            'answer_timeout_s', 3.0), attempts=scenario.get('attempts', 3),
            resend=lost_camera_info)
        for record, frame in zip(records, scenario['frames']):
            record['index'] = frame['index']
        atomic_write_json(result_path, {'frames': records})
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
    sys.exit({'drive': drive, 'infos': infos}[mode](*arguments))
