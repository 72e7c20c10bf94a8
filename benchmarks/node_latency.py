"""Receive-to-publish latency of the estimator node, driven with real ROS 2 messages.

Starts the node (robotag_ros.ros.estimator_node) as its own process (robotag_ros.harness.
sample_run.NodeSession), publishes the sample bag's 640x480 frames (test/data/panda_sample_bag,
cycled) as Image + CameraInfo one at a time with robotag_ros.ros.frame_driver (each after the
previous one was answered, so no frame is skipped), and reads back the node's
/diagnostics: its own receive-to-publish latency and inference time per frame, plus the driver's
round trip (publish -> diagnostics received, DDS both ways). DDS stays on this machine (shared
memory only) on a private ROS_DOMAIN_ID.

    PYTHONPATH=. python benchmarks/node_latency.py                  # real model, then the fake
    PYTHONPATH=. python benchmarks/node_latency.py --estimator real --model models/x --device cuda

Prints a table per estimator and writes benchmarks/results/node_latency.json (flat keys, units
in names): the real estimator (the bundled model unless --model) without prefix, the fake
estimator (the ROS plumbing alone) under ``fake_estimator_``; keys of an estimator not run this
time are kept from the previous file.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from robotag_ros.atomic_io import atomic_write_json  # noqa: E402
from robotag_ros.bundled import default_model_path, sample_bag_path  # noqa: E402
from benchmarks.machine import machine_name  # noqa: E402

FAKE = 'robotag_ros.harness.fake_estimator:make_fake_estimator'
FAKE_PREFIX = 'fake_estimator_'


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--frames', type=int, default=60, help='measured frames')
    parser.add_argument('--warmup', type=int, default=5, help='unmeasured first frames')
    parser.add_argument('--estimator', choices=('real', 'fake', 'both'), default='both',
                        help='real: load_estimator with --model; fake: the stand-in estimator')
    parser.add_argument('--bag', type=Path, default=None,
                        help='sample bag whose frames are published (default: the bundled one)')
    parser.add_argument('--model', default='',
                        help="model_path parameter ('' = the bundled default model)")
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


def _relative(path) -> str:
    """A path inside the repository relative to it (the JSON is committed), others as given."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _model_facts(model: str | None) -> dict:
    """Which weights were measured: input size and backbones from the artifact's sidecar."""
    if model is None:
        return {}
    from robotag_ros.model.artifact import load_sidecar
    sidecar = load_sidecar(model or default_model_path())
    return {'model_input_height_px': int(sidecar.input_size[0]),
            'model_input_width_px': int(sidecar.input_size[1]),
            'model_backbone_2d': str(sidecar.model_config.get('backbone_2d')),
            'model_backbone_3d': str(sidecar.model_config.get('backbone_3d')),
            'model_config_hash': sidecar.config_hash}


def drive(args, session, frames: list) -> list[dict]:
    """Publish the frames into the session's node; the frame driver's records."""
    import rclpy
    from sensor_msgs.msg import Image

    from robotag_ros.ros.frame_driver import FrameDriver
    rclpy.init()
    node = rclpy.create_node('robotag_latency_driver')
    try:
        driver = FrameDriver(node, f'{session.camera_namespace}/image_raw',
                             f'{session.camera_namespace}/camera_info')
        if args.debug_image:   # the node draws the overlay only for a subscriber
            node.create_subscription(Image, '/estimator/debug_image', lambda m: None, 1)
        try:
            driver.wait_for_node(180.0, alive=lambda: session.node.poll() is None)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f'the estimator node did not come up ({error}):\n'
                               f'{session.node_log()}') from None
        if args.rate_hz > 0:   # open loop: a camera does not wait for the node
            return driver.play(frames, 'rate', args.rate_hz, drain_s=2.0)
        return driver.play(frames, 'answer', answer_timeout_s=60.0, attempts=1,
                           give_up_after=3)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def latency_frames(bag, count: int) -> list:
    """``count`` frames of the sample bag, cycled, stamped 1, 2, ... s (every stamp its own)."""
    from robotag_ros.data.bags.sample_bag import read_sample_bag
    from robotag_ros.ros.sample_player import driver_frames
    bag_frames = read_sample_bag(bag)
    return driver_frames([bag_frames[index % len(bag_frames)] for index in range(count)],
                         stamps_ns=[(index + 1) * 10 ** 9 for index in range(count)])


def run(args, factory: str) -> dict:
    """Start the node with ``factory``, drive it, return the flat result dict."""
    from robotag_ros.harness.sample_run import NodeSession
    frames = latency_frames(args.bag or sample_bag_path(), args.warmup + args.frames)
    with tempfile.TemporaryDirectory(prefix='robotag_node_latency_') as work_dir:
        session = NodeSession(work_dir, args.domain_id, listen=False, parameters={
            'estimator_factory': factory, 'model_path': args.model, 'backend': args.backend,
            'device': args.device}, extra_env={'ROBOTAG_FAKE_DELAY_MS': str(args.fake_delay_ms)})
        with session:
            # This process drives the node: the same local DDS settings as the session's.
            os.environ.update({k: session.env[k] for k in (
                'FASTDDS_BUILTIN_TRANSPORTS', 'ROS_DOMAIN_ID', 'RMW_IMPLEMENTATION',
                'AMENT_PREFIX_PATH')})
            records = drive(args, session, frames)
    answered = [r for r in records[args.warmup:] if r['answer'] is not None]
    rows = [dict(r['answer']['values'], round_trip_ms=r['round_trip_ms'],
                 level=r['answer']['level']) for r in answered]
    height, width = frames[0].image.height, frames[0].image.width
    published = [r for r in rows if 'latency_receive_to_publish_ms' in r]
    result = {
        'machine': machine_name(),
        'estimator_factory': factory or 'robotag_ros.estimator_factory:load_estimator',
        'model_path': '' if factory == FAKE else _relative(args.model or default_model_path()),
        'backend': args.backend, 'device': args.device,
        **_model_facts(args.model if factory != FAKE else None),
        'image_width_px': width, 'image_height_px': height,
        'fake_delay_ms': args.fake_delay_ms if factory == FAKE else None,
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


def print_table(result: dict, label: str) -> None:
    """One estimator's table."""
    print(f"node latency, {label}, on {result['machine']}")
    print(f"  {result['image_width_px']}x{result['image_height_px']} rgb8, "
          f"{result['frames_published']}/{result['frames_sent']} frames published, "
          f"estimator {result['estimator_factory']} ({result['device']})")
    print(f"  {'measure':<22}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for prefix in ('receive_to_publish', 'inference', 'driver_round_trip'):
        print(f"  {prefix:<22}" + ''.join(f"{result.get(f'{prefix}_{q}_ms', float('nan')):>10.2f}"
                                          for q in ('p50', 'p95', 'max')))
    if result['publish_rate_hz'] > 0:
        print(f"  open loop at {result['publish_rate_hz']:g} Hz: "
              f"{result['frames_skipped_by_node']} frames skipped by the node "
              '(newest-frame-only)')


def main(argv=None) -> int:
    """Run the chosen estimators, print their tables, merge into the JSON (written atomically)."""
    args = parse_args(argv)
    merged = json.loads(args.output.read_text()) if args.output.is_file() else {}
    ok = True
    runs = {'real': ('', ''), 'fake': (FAKE, FAKE_PREFIX)}
    for name in (('real', 'fake') if args.estimator == 'both' else (args.estimator,)):
        factory, prefix = runs[name]
        result = run(args, factory)
        print_table(result, f'{name} estimator')
        # Replace this estimator's keys only; the other's stay from an earlier run.
        merged = {k: v for k, v in merged.items()
                  if k.startswith(FAKE_PREFIX) != (name == 'fake')}
        merged.update({prefix + key: value for key, value in result.items()})
        expected = result['frames_sent'] if args.rate_hz <= 0 else 1
        ok = ok and result['frames_published'] >= expected
    atomic_write_json(args.output, dict(sorted(merged.items())), indent=2)
    print(f'wrote {args.output}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
