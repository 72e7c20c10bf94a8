"""The demo: the sample bag through the real estimator node; estimates next to the ground truth.

    bash scripts/demo.sh [--model models/panda_default] [--out out/demo] [--stride 1]
    python -m robotag_ros.harness.demo --help

Starts the node (console script ``estimator`` with config/estimator.yaml), an output listener and
the sample player as separate processes on a private, machine-local DDS domain (shared memory
only), plays test/data/panda_sample_bag frame by frame (each after the node answered the previous
one), prints per frame the joint angles and the camera pose next to the ground truth with their
errors, then a summary (mean/median errors, latency). Writes under --out: ``overlays/`` (the
node's ~/debug_image per frame, with the true keypoints added in green), ``overlays.png`` (a
strip of them), ``overlays.mp4`` (when OpenCV can write MP4), ``frames.json`` and
``summary.json``. Does not import rclpy itself.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from robotag_ros.atomic_io import atomic_write_image, atomic_write_json
from robotag_ros.bundled import default_model_path, sample_bag_path
from robotag_ros.data.bags.bag_images import BagReadError
from robotag_ros.data.bags.sample_bag import read_sample_bag
from robotag_ros.harness.sample_run import FrameScore, NodeSession, score_frames, summarize
from robotag_ros.model.artifact import load_sidecar
from robotag_ros.robot import load_robot
from robotag_ros.stamps import stamp_key

TRUTH_RGB = (60, 230, 60)
STRIP_TILES = 8
STRIP_TILE_WIDTH_PX = 320


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default='',
                        help='model artifact (path without suffix); default: the bundled '
                             f'{default_model_path()}')
    parser.add_argument('--bag', type=Path, default=sample_bag_path(), help='sample rosbag2')
    parser.add_argument('--out', type=Path, default=Path('out/demo'), help='output folder')
    parser.add_argument('--backend', default='auto',
                        help='auto (onnxruntime on cpu, torch on cuda) | torch | onnxruntime '
                        '| tensorrt')
    parser.add_argument('--device', default='cpu', help='cpu | cuda | cuda:N')
    parser.add_argument('--stride', type=int, default=1, help='play every N-th frame')
    parser.add_argument('--max-frames', type=int, default=0, help='0 = all')
    parser.add_argument('--domain-id', type=int, default=60 + os.getpid() % 30,
                        help='ROS_DOMAIN_ID of this run (0..101)')
    parser.add_argument('--no-video', action='store_true', help='skip overlays.mp4')
    return parser.parse_args(argv)


def _fmt(values, width=7, precision=1) -> str:
    return ''.join(f'{v:{width}.{precision}f}' for v in values)


def _camera_text(T_base_cam: np.ndarray) -> str:
    xyz = T_base_cam[:3, 3]
    rpy = Rotation.from_matrix(T_base_cam[:3, :3]).as_euler('xyz', degrees=True)
    return f'xyz m ({xyz[0]:6.3f} {xyz[1]:6.3f} {xyz[2]:6.3f})  rpy deg ({_fmt(rpy, 7, 1)} )'


def print_frame(score: FrameScore, t0_stamp: float) -> None:
    """Per-frame block: joints (deg) estimate / truth / error, camera pose in the base frame."""
    seconds = float(score.stamp) - t0_stamp
    head = f'frame {score.index:3d}  t={seconds:+.3f} s'
    if not score.published:
        print(f'{head}  NOT PUBLISHED: {score.diagnostics_message}')
        return
    print(f'{head}  consistency {score.consistency:.3f}  '
          f'receive->publish {score.latency_receive_to_publish_ms:.1f} ms')
    names = ''.join(f'{name.replace("panda_joint", "j"):>7}' for name in score.joint_names)
    print(f'  joints deg {names}')
    print(f'    estimate {_fmt(np.degrees(score.joint_angles_rad))}')
    print(f'    truth    {_fmt(np.degrees(score.joint_angles_gt_rad))}')
    errors = score.joint_errors_deg
    print(f'    |error|  {_fmt(errors)}   mean {errors.mean():.1f}')
    print(f'  camera in base  estimate {_camera_text(score.T_base_cam)}')
    print(f'                  truth    {_camera_text(score.T_base_cam_gt)}')
    print(f'                  error    translation {score.camera_translation_error_mm:.0f} mm'
          f', rotation {score.camera_rotation_error_deg:.1f} deg (camera position '
          f'{score.camera_position_error_mm:.0f} mm)')


def print_summary(summary: dict) -> None:
    """The summary table."""
    print(f"\nsummary: {summary['frames_published']}/{summary['frames_played']} frames published")
    rows = [('joint angle error', 'joint_error', 'deg'),
            ('camera translation error', 'camera_translation_error', 'mm'),
            ('camera rotation error', 'camera_rotation_error', 'deg'),
            ('camera position error', 'camera_position_error', 'mm')]
    print(f"  {'':<32}{'mean':>10}{'median':>10}")
    for label, key, unit in rows:
        if f'{key}_mean_{unit}' in summary:
            print(f"  {label + ' (' + unit + ')':<32}{summary[f'{key}_mean_{unit}']:>10.1f}"
                  f"{summary[f'{key}_median_{unit}']:>10.1f}")
    print('  (translation: of T_cam_base, as robotag-eval; position: of the camera in the base)')
    print(f"  {'':<32}{'p50':>10}{'p95':>10}")
    for label, key in (('receive->publish (ms)', 'latency_receive_to_publish'),
                       ('inference (ms)', 'inference')):
        if f'{key}_p50_ms' in summary:
            print(f"  {label:<32}{summary[f'{key}_p50_ms']:>10.1f}"
                  f"{summary[f'{key}_p95_ms']:>10.1f}")


def draw_truth(image_rgb: np.ndarray, keypoints_px: np.ndarray) -> np.ndarray:
    """Add the true keypoints (green rings joined in order) to an overlay."""
    canvas = image_rgb.copy()
    points = [tuple(int(round(c)) for c in p) for p in keypoints_px]
    for a, b in zip(points[:-1], points[1:]):
        cv2.line(canvas, a, b, TRUTH_RGB, 1, cv2.LINE_AA)
    for p in points:
        cv2.circle(canvas, p, 6, TRUTH_RGB, 2, cv2.LINE_AA)
    return canvas


def true_keypoints_px(robot, sample_frames) -> dict[int, np.ndarray]:
    """Pixels (K, 2) of the robot's keypoints under each frame's true joints and camera."""
    import torch
    q = torch.as_tensor(np.stack([f.joint_angles_rad for f in sample_frames]),
                        dtype=torch.float64)
    with torch.no_grad():
        keypoints_base = robot.keypoints(q).double().numpy()
    result = {}
    for index, (frame, points) in enumerate(zip(sample_frames, keypoints_base)):
        cam = points @ frame.T_cam_base[:3, :3].T + frame.T_cam_base[:3, 3]
        uvw = cam @ frame.K.T
        result[frame.stamp_ns] = uvw[:, :2] / uvw[:, 2:3]
    return result


def _label(tile: np.ndarray, lines: list[str]) -> np.ndarray:
    """Write lines of text in the tile's bottom-left corner (the node's text is at the top)."""
    for row, text in enumerate(lines):
        origin = (6, tile.shape[0] - 8 - 18 * (len(lines) - 1 - row))
        cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 2,
                    cv2.LINE_AA)
        cv2.putText(tile, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return tile


def write_overlays(out: Path, scores, sample_frames, robot, video: bool) -> list[Path]:
    """Overlays with the truth added, a PNG strip and (optionally) an MP4; returns the files."""
    overlay_dir = out / 'overlays'
    truth = true_keypoints_px(robot, sample_frames)
    stamp_ns = {stamp_key(f.stamp_ns): f.stamp_ns for f in sample_frames}
    images = []
    for score in scores:
        if score.overlay_file is None or not score.published:
            continue
        path = overlay_dir / score.overlay_file
        overlay = cv2.imread(str(path))
        if overlay is None:
            continue
        overlay = draw_truth(overlay[..., ::-1], truth[stamp_ns[score.stamp]])
        atomic_write_image(path, overlay)
        images.append((score, overlay))
    written = []
    if not images:
        return written
    picks = np.unique(np.linspace(0, len(images) - 1, min(STRIP_TILES, len(images))).round()
                      .astype(int))
    tiles = []
    for i in picks:
        score, overlay = images[i]
        height = round(overlay.shape[0] * STRIP_TILE_WIDTH_PX / overlay.shape[1])
        tile = cv2.resize(overlay, (STRIP_TILE_WIDTH_PX, height), interpolation=cv2.INTER_AREA)
        tiles.append(_label(tile, [
            f'frame {score.index}',
            f'joint error {score.joint_errors_deg.mean():.1f} deg',
            f'camera error {score.camera_translation_error_mm:.0f} mm, '
            f'{score.camera_rotation_error_deg:.1f} deg']))
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[r:r + 4], axis=1) for r in range(0, len(tiles), 4)]
    strip = np.concatenate(rows, axis=0)
    legend = np.full((24, strip.shape[1], 3), 255, np.uint8)
    cv2.putText(legend, 'estimate: red keypoints, cyan skeleton, base axes   '
                'truth: green rings', (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    strip_path = out / 'overlays.png'
    atomic_write_image(strip_path, np.concatenate([legend, strip], axis=0))
    written.append(strip_path)
    if video:
        video_path = _write_video(out / 'overlays.mp4', [overlay for _, overlay in images])
        if video_path is not None:
            written.append(video_path)
    return written


def _write_video(path: Path, frames_rgb: list[np.ndarray], fps: float = 5.0) -> Path | None:
    tmp = path.with_name(f'.{path.stem}.tmp.mp4')
    height, width = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        print('  (this OpenCV cannot write MP4: no overlays.mp4)')
        return None
    for frame in frames_rgb:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    os.replace(tmp, path)
    return path


def _json_ready(score: FrameScore) -> dict:
    def plain(value):
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, tuple):
            return list(value)
        return value
    return {key: plain(value) for key, value in vars(score).items()}


def main(argv=None) -> int:
    """Run the demo; exit 1 when the node published nothing."""
    args = parse_args(argv)

    model = Path(args.model) if args.model else default_model_path()
    if not model.with_suffix('.yaml').is_file():
        print(f'demo: error: no model artifact at {model}.{{safetensors,yaml}}; pass --model PATH',
              file=sys.stderr)
        return 2
    try:
        sample_frames = read_sample_bag(args.bag)
        if not sample_frames:
            raise BagReadError(f'{args.bag} holds no image frames')
    except (FileNotFoundError, BagReadError) as error:
        print(f'demo: error: {error}', file=sys.stderr)
        return 2
    played_frames = sample_frames[::max(1, args.stride)]
    if args.max_frames > 0:
        played_frames = played_frames[:args.max_frames]
    height, width = sample_frames[0].image_rgb.shape[:2]
    print(f'robotag_ros demo: {args.bag} ({len(played_frames)} of {len(sample_frames)} frames, '
          f'{width}x{height}) through the estimator node')
    print(f'  model {model}  backend {args.backend}  device {args.device}  '
          f'ROS_DOMAIN_ID {args.domain_id} (shared-memory DDS, nothing leaves this machine)')
    args.out.mkdir(parents=True, exist_ok=True)
    overlay_dir = args.out / 'overlays'
    if overlay_dir.exists():
        for old in overlay_dir.glob('*.png'):
            old.unlink()
    parameters = {'model_path': str(model), 'backend': args.backend, 'device': args.device}
    with tempfile.TemporaryDirectory(prefix='robotag_demo_') as work:
        session = NodeSession(work, args.domain_id, parameters=parameters,
                              overlay_dir=overlay_dir.resolve())
        print('  starting the node (loading the model) ...', flush=True)
        with session:
            print(f'  node up: {" ".join(session.command[:1])}; playing ...', flush=True)
            played = session.play(args.bag, stride=args.stride, max_frames=args.max_frames)
            listened = session.stop()
        (args.out / 'node.log').write_text(session.node_log())
    scores = score_frames(sample_frames, played, listened, tf_parent='camera')
    print()
    t0 = float(scores[0].stamp) if scores else 0.0
    for score in scores:
        print_frame(score, t0)
    summary = summarize(scores)
    summary.update({'model': str(model), 'bag': str(args.bag), 'backend': args.backend,
                    'device': args.device})
    print_summary(summary)

    robot = load_robot(load_sidecar(model).robot)
    files = write_overlays(args.out, scores, sample_frames, robot, video=not args.no_video)
    for name, data in (('summary.json', summary),
                       ('frames.json', [_json_ready(s) for s in scores])):
        atomic_write_json(args.out / name, data)
    print(f'\nwrote {args.out}/: overlays/ ({len(list(overlay_dir.glob("*.png")))} PNG), '
          + ', '.join(p.name for p in files) + ', frames.json, summary.json, node.log')
    return 0 if summary['frames_published'] > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
