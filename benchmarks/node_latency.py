"""Receive-to-publish latency of the estimator node, driven with real ROS 2 messages.

Starts the node (robotag_ros.ros.estimator_node) as its own process, publishes Image +
CameraInfo frames one at a time (each after the previous one was answered, so no frame is
skipped), and reads back the node's /diagnostics: its own receive-to-publish latency and inference
time per frame, plus the driver's round trip (publish -> diagnostics received, DDS both ways).
DDS stays on this machine (shared memory only) on a private ROS_DOMAIN_ID.

    PYTHONPATH=. python benchmarks/node_latency.py                       # fake estimator
    PYTHONPATH=. python benchmarks/node_latency.py --factory '' --model models/x --device cuda

Prints a table and writes benchmarks/results/node_latency.json (flat keys, units in names).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from robotag_ros.ros.local_dds import local_ros_env  # noqa: E402

FAKE = 'robotag_ros.ros.fake_estimator:make_fake_estimator'


def machine_name() -> str:
    """Host, CPU model, core count and GPU (if nvidia-smi answers)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    gpu = ''
    if shutil.which('nvidia-smi'):
        query = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'],
                               capture_output=True, text=True)
        gpu = query.stdout.strip().splitlines()[0] if query.returncode == 0 else ''
    return f'{platform.node()}: {cpu}, {os.cpu_count()} cores' + (f', {gpu}' if gpu else '')


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=60, help='measured frames')
    parser.add_argument('--warmup', type=int, default=5, help='unmeasured first frames')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--factory', default=FAKE,
                        help="estimator_factory parameter ('' = the real load_estimator)")
    parser.add_argument('--model', default='', help='model_path parameter')
    parser.add_argument('--backend', default='torch')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--fake-delay-ms', type=float, default=0.0,
                        help='simulated inference time of the fake estimator')
    parser.add_argument('--rate-hz', type=float, default=0.0,
                        help='publish open loop at this rate (0 = each frame after the '
                             'previous answer); slower inference then skips frames')
    parser.add_argument('--debug-image', action='store_true',
                        help='also subscribe to ~/debug_image (the overlay is then drawn)')
    parser.add_argument('--domain-id', type=int, default=90 + os.getpid() % 10)
    parser.add_argument('--output', type=Path,
                        default=REPO / 'benchmarks' / 'results' / 'node_latency.json')
    return parser.parse_args(argv)


def percentiles(values, prefix: str) -> dict[str, float]:
    """p50, p95 and max of milliseconds, as flat keys."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {f'{prefix}_p50_ms': float('nan'), f'{prefix}_p95_ms': float('nan')}
    return {f'{prefix}_p50_ms': float(np.percentile(values, 50)),
            f'{prefix}_p95_ms': float(np.percentile(values, 95)),
            f'{prefix}_max_ms': float(values.max())}


def run(args) -> dict:
    """Start the node, drive it, return the flat result dict."""
    env = local_ros_env(args.domain_id, pythonpath=str(REPO))
    env['ROBOTAG_FAKE_DELAY_MS'] = str(args.fake_delay_ms)
    os.environ.update({k: env[k] for k in ('FASTDDS_BUILTIN_TRANSPORTS', 'ROS_DOMAIN_ID',
                                           'RMW_IMPLEMENTATION', 'AMENT_PREFIX_PATH')})
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from robotag_ros.ros.conversions import K_to_camera_info, rgb_to_image

    log = tempfile.NamedTemporaryFile('w+', suffix='_estimator.log', delete=False)
    node = subprocess.Popen(
        [sys.executable, '-m', 'robotag_ros.ros.estimator_node', '--ros-args',
         '--params-file', str(REPO / 'config' / 'estimator.yaml'),
         # Values are YAML: quote them so '' and paths stay strings.
         '-p', f'estimator_factory:={json.dumps(args.factory)}',
         '-p', f'model_path:={json.dumps(args.model)}',
         '-p', f'backend:={json.dumps(args.backend)}', '-p', f'device:={json.dumps(args.device)}'],
        env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    rclpy.init()
    driver = rclpy.create_node('robotag_latency_driver')
    try:
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        image_pub = driver.create_publisher(Image, '/image', qos)
        info_pub = driver.create_publisher(CameraInfo, '/camera_info', qos)
        if args.debug_image:
            driver.create_subscription(Image, '/estimator/debug_image', lambda m: None, 1)
        answers = {}

        def on_diagnostics(msg):
            status = msg.status[0]
            answers[msg.header.stamp.sec] = (time.perf_counter(), status.level,
                                             {kv.key: kv.value for kv in status.values})
        driver.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 50)

        deadline = time.monotonic() + 60
        while image_pub.get_subscription_count() == 0 or info_pub.get_subscription_count() == 0:
            rclpy.spin_once(driver, timeout_sec=0.05)
            if node.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f'the estimator node did not come up:\n{log.read()}')

        rgb = np.random.default_rng(0).integers(0, 255, (args.height, args.width, 3), np.uint8)
        K = np.array([[args.width, 0, args.width / 2], [0, args.width, args.height / 2],
                      [0, 0, 1]], dtype=np.float64)
        header = Header(frame_id='camera_optical_frame')
        info = K_to_camera_info(K, args.width, args.height, header)
        rows, unanswered, sent_at = [], 0, {}
        period_s = 1.0 / args.rate_hz if args.rate_hz > 0 else 0.0
        next_send = time.perf_counter()
        for index in range(args.warmup + args.frames):
            header.stamp.sec = index + 1
            info.header = header
            info_pub.publish(info)
            image = rgb_to_image(rgb, header)
            if period_s:   # open loop: a camera does not wait for the node
                while time.perf_counter() < next_send:
                    rclpy.spin_once(driver, timeout_sec=max(0.0, next_send - time.perf_counter()))
                next_send += period_s
            sent_at[header.stamp.sec] = time.perf_counter()
            image_pub.publish(image)
            if period_s:
                continue
            end = time.monotonic() + 10
            while header.stamp.sec not in answers and time.monotonic() < end:
                rclpy.spin_once(driver, timeout_sec=0.01)
            unanswered = 0 if header.stamp.sec in answers else unanswered + 1
            if unanswered >= 3:
                raise RuntimeError('three frames in a row got no answer from the node')
        end = time.monotonic() + 2.0   # the last answers
        while time.monotonic() < end and (args.warmup + args.frames) not in answers:
            rclpy.spin_once(driver, timeout_sec=0.01)
        for sec, (received, level, values) in sorted(answers.items()):
            if sec > args.warmup and sec in sent_at:
                rows.append(dict(values, round_trip_ms=(received - sent_at[sec]) * 1000.0,
                                 level=int.from_bytes(level, 'little')))
    finally:
        driver.destroy_node()
        rclpy.try_shutdown()
        node.terminate()
        node.wait(timeout=10)

    published = [r for r in rows if 'latency_receive_to_publish_ms' in r]
    result = {
        'machine': machine_name(),
        'estimator_factory': args.factory or 'robotag_ros.inference:load_estimator',
        'model_path': args.model, 'backend': args.backend, 'device': args.device,
        'image_width_px': args.width, 'image_height_px': args.height,
        'fake_delay_ms': args.fake_delay_ms if args.factory == FAKE else None,
        'debug_image_subscribed': bool(args.debug_image),
        'publish_rate_hz': args.rate_hz,
        'frames_sent': args.frames, 'frames_published': len(published),
        'frames_skipped_by_node': max([int(r.get('frames_skipped_newer_arrived', 0))
                                       for r in rows] + [0]),
    }
    result.update(percentiles([float(r['latency_receive_to_publish_ms']) for r in published],
                              'receive_to_publish'))
    result.update(percentiles([float(r['inference_ms']) for r in published], 'inference'))
    result.update(percentiles([r['round_trip_ms'] for r in rows], 'driver_round_trip'))
    return result


def main(argv=None) -> int:
    """Run, print the table, write the JSON atomically."""
    args = parse_args(argv)
    result = run(args)
    print(f"node latency on {result['machine']}")
    print(f"  {result['image_width_px']}x{result['image_height_px']} rgb8, "
          f"{result['frames_published']}/{result['frames_sent']} frames published, "
          f"estimator {result['estimator_factory']} ({result['device']})")
    print(f"  {'measure':<22}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for prefix in ('receive_to_publish', 'inference', 'driver_round_trip'):
        print(f"  {prefix:<22}" + ''.join(f"{result.get(f'{prefix}_{q}_ms', float('nan')):>10.2f}"
                                          for q in ('p50', 'p95', 'max')))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix('.json.tmp')
    tmp.write_text(json.dumps(result, indent=2) + '\n')
    os.replace(tmp, args.output)
    print(f'wrote {args.output}')
    if args.rate_hz > 0:
        print(f"  open loop at {args.rate_hz:g} Hz: {result['frames_skipped_by_node']} frames "
              'skipped by the node (newest-frame-only)')
        return 0 if result['frames_published'] > 0 else 1
    return 0 if result['frames_published'] == result['frames_sent'] else 1


if __name__ == '__main__':
    sys.exit(main())
