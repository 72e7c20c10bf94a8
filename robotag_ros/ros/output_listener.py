"""Record the estimator node's outputs to JSON (and its debug overlays to PNG) until told to stop.

    python -m robotag_ros.ros.output_listener RESULT.json --stop-file F --ready-file R
        [--overlay-dir DIR] [--all-outputs] [--node /estimator]

Records ``joint_states``, ``/tf``, ``<node>/camera_pose`` and ``/diagnostics``; with
``--overlay-dir`` it also subscribes to ``<node>/debug_image`` (so the node draws it) and writes
each overlay as ``<sec>.<nanosec>.png``; with ``--all-outputs`` it subscribes to every optional
output (``debug_image``, ``keypoints``, ``points``: the node computes them only for a subscriber)
and records what each message holds. Writes READY once the node's publishers are discovered,
and RESULT when STOP exists (after draining what is in flight). Every file is written atomically.
The caller keeps DDS local (robotag_ros.harness.local_dds.local_ros_env).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState, PointCloud2
from visualization_msgs.msg import Marker, MarkerArray

from robotag_ros.atomic_io import atomic_write_image, atomic_write_json
from robotag_ros.ros.conversions import ImageConversionError, image_to_rgb
from robotag_ros.ros.messages import point_cloud_to_numpy
from robotag_ros.stamps import stamp_key, stamp_to_ns

try:
    from tf2_msgs.msg import TFMessage
except ImportError:   # built by scripts/install_ros.sh; without it /tf is not recorded
    TFMessage = None


def _key(stamp) -> str:
    return stamp_key(stamp_to_ns(stamp))


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('result', help='JSON file written when the stop file appears')
    parser.add_argument('--stop-file', required=True)
    parser.add_argument('--ready-file', required=True)
    parser.add_argument('--overlay-dir', help='save ~/debug_image overlays here as PNG')
    parser.add_argument('--all-outputs', action='store_true',
                        help='also subscribe to ~/debug_image, ~/keypoints and ~/points')
    parser.add_argument('--node', default='/estimator', help="the estimator node's name")
    return parser.parse_args(argv)


def listen(args) -> dict:
    """Spin until the stop file exists; return what was recorded."""
    node = rclpy.create_node('robotag_output_listener')
    record: dict[str, list] = {'joint_states': [], 'tf': [], 'camera_pose': [],
                               'diagnostics': [], 'debug_image': [], 'keypoints': [],
                               'points': []}
    overlay_dir = Path(args.overlay_dir) if args.overlay_dir else None

    def on_joint_states(m):
        record['joint_states'].append({'stamp': _key(m.header.stamp), 'name': list(m.name),
                                       'position': list(m.position)})

    def on_tf(m):
        for t in m.transforms:
            record['tf'].append({
                'stamp': _key(t.header.stamp), 'parent': t.header.frame_id,
                'child': t.child_frame_id,
                'translation': [t.transform.translation.x, t.transform.translation.y,
                                t.transform.translation.z],
                'rotation_xyzw': [t.transform.rotation.x, t.transform.rotation.y,
                                  t.transform.rotation.z, t.transform.rotation.w]})

    def on_camera_pose(m):
        p, q = m.pose.position, m.pose.orientation
        record['camera_pose'].append({'stamp': _key(m.header.stamp),
                                      'frame_id': m.header.frame_id,
                                      'position': [p.x, p.y, p.z],
                                      'rotation_xyzw': [q.x, q.y, q.z, q.w]})

    def on_diagnostics(m):
        for status in m.status:
            record['diagnostics'].append({
                'stamp': _key(m.header.stamp), 'name': status.name,
                'level': int.from_bytes(status.level, 'little'), 'message': status.message,
                'values': {kv.key: kv.value for kv in status.values}})

    def on_debug_image(m):
        entry = {'stamp': _key(m.header.stamp), 'width': m.width, 'height': m.height,
                 'encoding': m.encoding, 'frame_id': m.header.frame_id}
        if overlay_dir is not None:
            try:
                rgb = image_to_rgb(m)
            except ImageConversionError as error:
                entry['error'] = str(error)
            else:
                path = atomic_write_image(overlay_dir / f'{entry["stamp"]}.png', rgb)
                entry['file'] = path.name
        record['debug_image'].append(entry)

    def on_keypoints(m):
        spheres = m.markers[0]
        record['keypoints'].append({'stamp': _key(spheres.header.stamp),
                                    'frame_id': spheres.header.frame_id,
                                    'num_points': len(spheres.points),
                                    'sphere_list': spheres.type == Marker.SPHERE_LIST})

    def on_points(m):
        record['points'].append({'stamp': _key(m.header.stamp),
                                 'num_points': int(point_cloud_to_numpy(m).shape[0])})

    node.create_subscription(JointState, '/joint_states', on_joint_states, 50)
    node.create_subscription(PoseStamped, f'{args.node}/camera_pose', on_camera_pose, 50)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 50)
    if TFMessage is not None:
        # tf2_ros' listener QoS: reliable, depth 100.
        node.create_subscription(TFMessage, '/tf', on_tf,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    ready_topics = ['/joint_states', '/diagnostics']
    if overlay_dir is not None:
        overlay_dir.mkdir(parents=True, exist_ok=True)
    optional = {'debug_image': (Image, on_debug_image)} \
        if overlay_dir is not None or args.all_outputs else {}
    if args.all_outputs:
        optional.update(keypoints=(MarkerArray, on_keypoints), points=(PointCloud2, on_points))
    for name, (message_type, callback) in optional.items():
        node.create_subscription(message_type, f'{args.node}/{name}', callback, 10)
        ready_topics.append(f'{args.node}/{name}')
    try:
        ready = False
        while not os.path.exists(args.stop_file):
            rclpy.spin_once(node, timeout_sec=0.05)
            if not ready and all(node.count_publishers(t) > 0 for t in ready_topics):
                ready = True
                atomic_write_json(args.ready_file,
                                  {'ready': True, 'tf_recorded': TFMessage is not None})
        end = time.monotonic() + 0.5   # drain what is in flight
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
    finally:
        node.destroy_node()
    record['tf_recorded'] = TFMessage is not None
    return record


def main(argv=None) -> int:
    """Listen, then write the result file."""
    args = parse_args(argv)
    rclpy.init()
    try:
        record = listen(args)
    finally:
        rclpy.try_shutdown()
    atomic_write_json(args.result, record)
    return 0


if __name__ == '__main__':
    sys.exit(main())
