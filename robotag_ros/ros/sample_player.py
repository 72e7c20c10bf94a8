"""Play a sample bag into the estimator node: Image (rgb8) + CameraInfo with the original stamps.

    python -m robotag_ros.ros.sample_player BAG [--stride N] [--pace answer|rate] [--result F]

The bag's JPEG frames are decoded and published as ``sensor_msgs/Image`` (what a camera driver
publishes; the node subscribes to raw images), each after its CameraInfo. ``--pace answer``
(default) publishes the next frame only when the node's /diagnostics answer for this one arrived
(or a timeout passed), so every frame is inferred whatever the machine's speed; ``--pace rate``
plays at ``--rate-hz`` like a live camera, and the node drops what it cannot keep up with
(robotag_ros.ros.frame_driver does the sending). The caller keeps DDS local
(robotag_ros.harness.local_dds.local_ros_env).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import rclpy
from std_msgs.msg import Header

from robotag_ros.atomic_io import atomic_write_json
from robotag_ros.data.bags.sample_bag import SampleFrame, read_sample_bag
from robotag_ros.ros.conversions import K_to_camera_info, rgb_to_image
from robotag_ros.ros.frame_driver import PACES, RESEND_SETTLE_S, DriverFrame, FrameDriver
from robotag_ros.stamps import ns_to_sec_nanosec


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('bag', help='sample rosbag2 folder (robotag_ros.data.bags.sample_bag)')
    parser.add_argument('--image-topic', default='/camera/color/image_raw')
    parser.add_argument('--camera-info-topic', default='/camera/color/camera_info')
    parser.add_argument('--stride', type=int, default=1, help='play every N-th frame')
    parser.add_argument('--max-frames', type=int, default=0, help='0 = all')
    parser.add_argument('--pace', choices=PACES, default='answer')
    parser.add_argument('--rate-hz', type=float, default=15.0, help='for --pace rate')
    parser.add_argument('--answer-timeout-s', type=float, default=30.0,
                        help='for --pace answer: wait this long for the node before resending')
    parser.add_argument('--attempts', type=int, default=2,
                        help='for --pace answer: sends per frame before giving up on it')
    parser.add_argument('--discovery-timeout-s', type=float, default=60.0)
    parser.add_argument('--result', help='write per-frame answers here (JSON)')
    return parser.parse_args(argv)


def driver_frames(sample_frames: Sequence[SampleFrame],
                  stamps_ns: Optional[Sequence[int]] = None) -> list[DriverFrame]:
    """Sample-bag frames as Image (rgb8) + CameraInfo messages, stamped with their recorded
    stamps or ``stamps_ns``; the first CameraInfo gets a moment to arrive before its image."""
    messages = []
    for index, frame in enumerate(sample_frames):
        header = Header(frame_id=frame.frame_id)
        header.stamp.sec, header.stamp.nanosec = ns_to_sec_nanosec(
            frame.stamp_ns if stamps_ns is None else stamps_ns[index])
        height, width = frame.image_rgb.shape[:2]
        messages.append(DriverFrame(rgb_to_image(frame.image_rgb, header),
                                    K_to_camera_info(frame.K, width, height, header),
                                    settle_s=RESEND_SETTLE_S if index == 0 else 0.0))
    return messages


def bag_frames(bag: str, stride: int = 1, max_frames: int = 0) -> list[DriverFrame]:
    """Every ``stride``-th frame of the bag (at most ``max_frames``; 0 = all) as messages."""
    frames = read_sample_bag(bag)[::max(1, stride)]
    return driver_frames(frames[:max_frames] if max_frames > 0 else frames)


def play(args) -> list[dict]:
    """Publish the bag's frames; return one record per frame (stamp, answer, round trip)."""
    frames = bag_frames(args.bag, args.stride, args.max_frames)
    node = rclpy.create_node('robotag_sample_player')
    try:
        driver = FrameDriver(node, args.image_topic, args.camera_info_topic)
        driver.wait_for_node(args.discovery_timeout_s, need_answers=args.pace == 'answer')
        return driver.play(frames, args.pace, args.rate_hz, args.answer_timeout_s,
                           args.attempts, drain_s=args.answer_timeout_s
                           if args.pace == 'rate' else 0.5)
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
