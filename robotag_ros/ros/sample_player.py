"""Play a sample bag into the estimator node: Image (rgb8) + CameraInfo with the original stamps.

    python -m robotag_ros.ros.sample_player BAG [--stride N] [--pace answer|rate] [--result F]

The bag's JPEG frames are decoded and published as ``sensor_msgs/Image`` (what a camera driver
publishes; the node subscribes to raw images), each after its CameraInfo. ``--pace answer``
(default) publishes the next frame only when the node's /diagnostics answer for this one arrived
(or a timeout passed), so every frame is inferred whatever the machine's speed; ``--pace rate``
plays at ``--rate-hz`` like a live camera, and the node drops what it cannot keep up with.
The caller keeps DDS local (robotag_ros.harness.local_dds.local_ros_env).
"""
from __future__ import annotations

import argparse
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from robotag_ros.atomic_io import atomic_write_json
from robotag_ros.data.bags.sample_bag import read_sample_bag
from robotag_ros.ros.conversions import K_to_camera_info, rgb_to_image
from robotag_ros.ros.messages import ESTIMATOR_DIAGNOSTIC_NAME
from robotag_ros.stamps import ns_to_sec_nanosec, stamp_key, stamp_to_ns


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('bag', help='sample rosbag2 folder (robotag_ros.data.bags.sample_bag)')
    parser.add_argument('--image-topic', default='/camera/color/image_raw')
    parser.add_argument('--camera-info-topic', default='/camera/color/camera_info')
    parser.add_argument('--stride', type=int, default=1, help='play every N-th frame')
    parser.add_argument('--max-frames', type=int, default=0, help='0 = all')
    parser.add_argument('--pace', choices=('answer', 'rate'), default='answer')
    parser.add_argument('--rate-hz', type=float, default=15.0, help='for --pace rate')
    parser.add_argument('--answer-timeout-s', type=float, default=30.0,
                        help='for --pace answer: wait this long for the node before resending')
    parser.add_argument('--attempts', type=int, default=2,
                        help='for --pace answer: sends per frame before giving up on it')
    parser.add_argument('--discovery-timeout-s', type=float, default=60.0)
    parser.add_argument('--result', help='write per-frame answers here (JSON)')
    return parser.parse_args(argv)


def play(args) -> list[dict]:
    """Publish the bag's frames; return one record per frame (stamp, answer, round trip)."""
    frames = read_sample_bag(args.bag)[::max(1, args.stride)]
    if args.max_frames > 0:
        frames = frames[:args.max_frames]
    node = rclpy.create_node('robotag_sample_player')
    try:
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = node.create_publisher(Image, args.image_topic, qos)
        info_pub = node.create_publisher(CameraInfo, args.camera_info_topic, qos)
        answers: dict[str, dict] = {}

        def on_diagnostics(msg: DiagnosticArray):
            for status in msg.status:
                if status.name == ESTIMATOR_DIAGNOSTIC_NAME:
                    answers[stamp_key(stamp_to_ns(msg.header.stamp))] = {
                        'level': int.from_bytes(status.level, 'little'),
                        'message': status.message,
                        'values': {kv.key: kv.value for kv in status.values},
                        'received_s': time.monotonic()}
        node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 50)

        deadline = time.monotonic() + args.discovery_timeout_s
        while (image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0
               or (args.pace == 'answer' and node.count_publishers('/diagnostics') == 0)):
            rclpy.spin_once(node, timeout_sec=0.05)
            if time.monotonic() > deadline:
                raise TimeoutError(f'no subscriber on {args.image_topic} within '
                                   f'{args.discovery_timeout_s} s: is the node running?')

        records = []
        period_s = 1.0 / args.rate_hz
        next_send = time.monotonic()
        for index, frame in enumerate(frames):
            header = Header(frame_id=frame.frame_id)
            header.stamp.sec, header.stamp.nanosec = ns_to_sec_nanosec(frame.stamp_ns)
            key = stamp_key(frame.stamp_ns)
            info = K_to_camera_info(frame.K, frame.image_rgb.shape[1], frame.image_rgb.shape[0],
                                    header)
            image = rgb_to_image(frame.image_rgb, header)
            sent_s, attempt = None, 0
            for attempt in range(1, (args.attempts if args.pace == 'answer' else 1) + 1):
                if args.pace == 'rate':
                    while time.monotonic() < next_send:
                        rclpy.spin_once(node, timeout_sec=max(0.0, next_send - time.monotonic()))
                    next_send += period_s
                info_pub.publish(info)
                if index == 0 or attempt > 1:   # let the first CameraInfo arrive first
                    end = time.monotonic() + 0.1
                    while time.monotonic() < end:
                        rclpy.spin_once(node, timeout_sec=0.02)
                sent_s = time.monotonic()
                image_pub.publish(image)
                if args.pace == 'rate':
                    break
                end = sent_s + args.answer_timeout_s
                while key not in answers and time.monotonic() < end:
                    rclpy.spin_once(node, timeout_sec=0.01)
                if key in answers:
                    break
            records.append({'index': index, 'stamp': key, 'sent_s': sent_s, 'attempts': attempt})
        end = time.monotonic() + (args.answer_timeout_s if args.pace == 'rate' else 0.5)
        while time.monotonic() < end and not all(r['stamp'] in answers for r in records):
            rclpy.spin_once(node, timeout_sec=0.02)
        for record in records:
            answer = answers.get(record['stamp'])
            record['answer'] = answer
            record['round_trip_ms'] = (None if answer is None
                                       else (answer['received_s'] - record['sent_s']) * 1e3)
        return records
    finally:
        node.destroy_node()


def main(argv=None) -> int:
    """Play the bag; exit 1 when some frame got no answer."""
    args = parse_args(argv)
    rclpy.init()
    try:
        records = play(args)
    except (TimeoutError, FileNotFoundError) as error:
        print(f'sample_player: {error}', file=sys.stderr)
        return 1
    finally:
        rclpy.try_shutdown()
    if args.result:
        atomic_write_json(args.result, {'frames': records})
    answered = sum(r['answer'] is not None for r in records)
    print(f'sample_player: {answered}/{len(records)} frames answered by the node')
    return 0 if answered == len(records) else 1


if __name__ == '__main__':
    sys.exit(main())
