"""Per-frame latency of the Estimator per backend: preprocess, inference, decode, total.

Batch 1, one realistic 640x480 RGB frame (rendered by the synthetic-data renderer, or --image),
warm-up then N timed frames; p50 and p95 of each stage and the total, and the speed-up over
PyTorch eager on the same device in the same run. Prints a table and writes
benchmarks/results/latency.json (flat keys, milliseconds, the machine named).

    PYTHONPATH=. python benchmarks/latency.py [--model models/panda_default] [--frames 50]
    PYTHONPATH=. python benchmarks/latency.py --device cuda \
        --out benchmarks/results/latency_gpu.json

CPU backends: torch eager, onnxruntime. With --device cuda: torch fp32 eager, fp16 and bf16
autocast, fp16 + torch.compile(mode='reduce-overhead') (CUDA graphs), ONNX Runtime's CUDA and
TensorRT execution providers and the TensorRT backend where installed (skipped with the reason
otherwise). Weights do not change latency, so without the model a randomly initialised
artifact of the default config stands in (said so in the output and the JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robotag_ros.atomic_io import atomic_write_json  # noqa: E402
from robotag_ros.model.artifact import artifact_paths, load_sidecar  # noqa: E402
from benchmarks.machine import machine_name  # noqa: E402

RESULTS = Path(__file__).resolve().parent / 'results' / 'latency.json'
DEFAULT_MODEL = 'models/panda_default'
STAGES = ('preprocess', 'inference', 'decode', 'total')


def standin_artifact(folder: Path, input_hw=(256, 256)) -> Path:
    """A randomly initialised artifact of the default model config (latency only)."""
    from robotag_ros.model.artifact import Sidecar, save_artifact
    from robotag_ros.model import build_model, load_model_config
    from robotag_ros.robot import load_robot
    robot = load_robot('panda')
    config = load_model_config('default')
    model = build_model(robot, config)
    sidecar = Sidecar(robot='panda', joint_names=list(robot.joint_names),
                      keypoint_names=list(robot.keypoint_names), input_size=list(input_hw),
                      model_config=config.to_dict(),
                      training={'note': 'random init, latency benchmark stand-in'})
    save_artifact(folder / 'panda_standin', model.state_dict(), sidecar)
    return folder / 'panda_standin'


def benchmark_frame(args, robot):
    from robotag_ros.export.reference_frames import (frame_from_image, parse_intrinsics,
                                                     rendered_frames)
    if args.image:
        return frame_from_image(args.image, parse_intrinsics(args.intrinsics))
    return rendered_frames(robot, count=1, height=480, width=640, seed=7)[0]


def variants(device: str) -> list[tuple[str, dict]]:
    """(result name, load_estimator options); the first one per device is eager."""
    if device == 'cpu':
        return [('torch_cpu', dict(backend='torch', device='cpu')),
                ('onnxruntime_cpu', dict(backend='onnxruntime', device='cpu'))]
    return [('torch_cuda_fp32', dict(backend='torch', device='cuda')),
            ('torch_cuda_fp16', dict(backend='torch', device='cuda', precision='fp16')),
            ('torch_cuda_bf16', dict(backend='torch', device='cuda', precision='bf16')),
            ('torch_cuda_fp16_graphs', dict(backend='torch', device='cuda', precision='fp16',
                                            compile_mode='reduce-overhead')),
            ('onnxruntime_cuda', dict(backend='onnxruntime', device='cuda')),
            ('onnxruntime_trt_ep', dict(backend='onnxruntime', device='tensorrt')),
            ('tensorrt_fp16', dict(backend='tensorrt', device='cuda', precision='fp16'))]


def time_estimator(estimator, frame, warmup: int, frames: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        estimator.estimate(frame.image_rgb, frame.K, with_points=False)
    samples = {stage: [] for stage in STAGES}
    for _ in range(frames):
        timings = estimator.estimate(frame.image_rgb, frame.K, with_points=False).timings_ms
        for stage in STAGES:
            samples[stage].append(timings[f'{stage}_ms'])
    return samples


def run_worker(args, name: str, artifact: str, frame_file: str) -> int:
    """Child process: time one variant and write its samples (or why it cannot run) as JSON."""
    from robotag_ros.export.reference_frames import ReferenceFrame
    from robotag_ros.estimator_factory import load_estimator
    options = dict(variants(args.device))[name]
    if options['backend'] == 'onnxruntime':
        options = dict(options, threads=args.threads if args.device == 'cpu' else 0)
    stored = np.load(frame_file)
    frame = ReferenceFrame(stored['image_rgb'], stored['K'], 'benchmark frame')
    try:
        estimator = load_estimator(artifact, **options)
        result = {'samples': time_estimator(estimator, frame, args.warmup, args.frames)}
    except Exception as error:  # noqa: BLE001 - a backend that cannot run is reported
        result = {'skipped': (str(error).splitlines() or [type(error).__name__])[0][:300]}
    atomic_write_json(args.out, result)
    return 0


def run_in_subprocess(args, name: str, artifact, frame_file: Path, workdir: Path,
                      frames: int):
    """(samples, None) or (None, reason)."""
    import subprocess
    out = workdir / f'{name}.json'
    out.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), '--device', args.device,
               '--frames', str(frames), '--warmup', str(args.warmup),
               '--threads', str(args.threads), '--out', str(out),
               '--worker', name, str(artifact), str(frame_file)]
    completed = subprocess.run(command, capture_output=True, text=True)
    if not out.is_file():
        tail = (completed.stderr.strip().splitlines() or ['no output'])[-1]
        return None, f'worker failed (exit {completed.returncode}): {tail[:300]}'
    result = json.loads(out.read_text())
    return result.get('samples'), result.get('skipped')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', default=DEFAULT_MODEL)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--frames', type=int, default=50, help='timed frames per backend')
    parser.add_argument('--warmup', type=int, default=10, help='warm-up frames per round')
    parser.add_argument('--rounds', type=int, default=3,
                        help='backends take turns this many times (a fresh process each), the '
                             'timed frames split between rounds, so load drift on a shared '
                             'machine hits every backend alike')
    parser.add_argument('--threads', type=int, default=2,
                        help='CPU threads for PyTorch and ONNX Runtime (this machine: 2 cores)')
    parser.add_argument('--image', help='an image file instead of a rendered frame')
    parser.add_argument('--intrinsics', help="the image's 'fx,fy,cx,cy' (pixels)")
    parser.add_argument('--only', nargs='*', help='result names to run (default: all)')
    parser.add_argument('--out', default=str(RESULTS))
    parser.add_argument('--worker', nargs=3, metavar=('NAME', 'ARTIFACT', 'FRAME_NPZ'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from robotag_ros.robot import load_robot
    if args.worker:
        return run_worker(args, *args.worker)

    workdir = Path(tempfile.mkdtemp(prefix='robotag_latency_'))
    os.environ.setdefault('ROBOTAG_CACHE', str(workdir / 'cache'))
    artifact, artifact_note = args.model, args.model
    if not artifact_paths(args.model)[0].is_file():
        print(f'[latency] {args.model}: no such artifact; timing a randomly initialised '
              'stand-in of config/model/default.yaml at 256x256 instead (weights do not change '
              'latency). Pass --model to time a real one.')
        artifact = standin_artifact(workdir)
        artifact_note = f'random-init stand-in for {args.model} (default config)'
    sidecar = load_sidecar(artifact)
    robot = load_robot(sidecar.robot)
    frame = benchmark_frame(args, robot)
    load_start = os.getloadavg()[0]

    results = {'machine': machine_name(), 'device': args.device,
               'torch_version': torch.__version__, 'python_version': platform.python_version(),
               'artifact': str(artifact_note),
               'artifact_training_epochs': sidecar.training.get('epochs', 'n/a'),
               'artifact_training_steps': sidecar.training.get('steps', 'n/a'),
               'model_input_height_px': int(sidecar.input_size[0]),
               'model_input_width_px': int(sidecar.input_size[1]),
               'backbones': f"{sidecar.model_config.get('backbone_2d')}/"
                            f"{sidecar.model_config.get('backbone_3d')}",
               'frame_height_px': int(frame.image_rgb.shape[0]),
               'frame_width_px': int(frame.image_rgb.shape[1]), 'frame_source': frame.source,
               'batch': 1, 'threads': args.threads,
               'frames_timed': max(1, args.frames // max(1, args.rounds)) * max(1, args.rounds),
               'rounds': max(1, args.rounds), 'warmup_frames_per_round': args.warmup}
    try:
        import onnxruntime
        results['onnxruntime_version'] = onnxruntime.__version__
    except ImportError:
        results['onnxruntime_version'] = 'not installed'
    frame_file = workdir / 'frame.npz'
    np.savez(frame_file, image_rgb=frame.image_rgb, K=frame.K)
    names = [name for name, _ in variants(args.device) if not args.only or name in args.only]
    collected = {name: {stage: [] for stage in STAGES} for name in names}
    per_round = max(1, args.frames // max(1, args.rounds))
    for _ in range(max(1, args.rounds)):
        for name in list(collected):
            # One process per backend, as deployed: thread pools of one runtime (PyTorch's
            # OpenMP, ONNX Runtime's) left over from another would otherwise slow it down.
            samples, reason = run_in_subprocess(args, name, artifact, frame_file, workdir,
                                                per_round)
            if samples is None:
                print(f'[latency] {name}: skipped: {reason}')
                results[f'{name}_skipped'] = reason
                del collected[name]
                continue
            for stage in STAGES:
                collected[name][stage] += samples[stage]
    rows = []
    eager = variants(args.device)[0][0]
    eager_total = None
    if eager in collected:
        eager_total = float(np.percentile(collected[eager]['total'], 50))
    for name, samples in collected.items():
        for stage in STAGES:
            p50, p95 = np.percentile(samples[stage], [50, 95])
            results[f'{name}_{stage}_p50_ms'] = round(float(p50), 3)
            results[f'{name}_{stage}_p95_ms'] = round(float(p95), 3)
        results[f'{name}_p50_ms'] = results[f'{name}_total_p50_ms']
        results[f'{name}_p95_ms'] = results[f'{name}_total_p95_ms']
        if eager_total is not None:  # same device, same run
            results[f'{name}_speedup_vs_torch_eager'] = round(
                eager_total / float(np.percentile(samples['total'], 50)), 3)
        rows.append(name)
    results['load_average_1min_start'] = round(load_start, 2)
    results['load_average_1min_end'] = round(os.getloadavg()[0], 2)

    header = (f"{'backend':26s}" + ''.join(f'{s + " p50/p95 ms":>24s}' for s in STAGES)
              + f"{'vs eager':>10s}")
    print(f"\nlatency per frame, batch 1, {results['frame_width_px']}x"
          f"{results['frame_height_px']} frame -> {results['model_input_width_px']}x"
          f"{results['model_input_height_px']} input; {results['machine']}")
    print(header)
    for name in rows:
        cells = ''.join(f"{results[f'{name}_{s}_p50_ms']:>13.2f} /"
                        f"{results[f'{name}_{s}_p95_ms']:>8.2f}" for s in STAGES)
        ratio = results.get(f'{name}_speedup_vs_torch_eager')
        print(f'{name:26s}{cells}' + (f'{ratio:>9.2f}x' if ratio else f"{'-':>10s}"))
    print(f"load average (1 min) {results['load_average_1min_start']} -> "
          f"{results['load_average_1min_end']} on {os.cpu_count()} cpus")

    out = atomic_write_json(args.out, results, indent=2)
    print(f'[latency] wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
