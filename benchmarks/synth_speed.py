"""Synthetic-data speed: frames/s per core at 400x400 for Panda, split by stage.

Stages timed per frame: randomisation (joint/camera/light/colour/distractor sampling + FK),
render (MuJoCo rgb + segmentation + depth passes), background + compositing + photometric
augmentation, JPEG encode, and the writer (mask/depth PNG, JSON, atomic renames).
One process, llvmpipe limited to one thread (LP_NUM_THREADS=1) and torch to one thread, so the
figure is per core. Prints a table and writes benchmarks/results/synth_speed.json.

    PYTHONPATH=. python benchmarks/synth_speed.py [--frames 60] [--size 400x400]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault('LP_NUM_THREADS', '1')  # llvmpipe's render threads: one core
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mujoco  # noqa: E402
import torch  # noqa: E402

from robotag_ros.atomic_io import atomic_write_json  # noqa: E402
from robotag_ros.data.synthetic import frame_generator as synth_module  # noqa: E402
from robotag_ros.data.synthetic.dr_config import DRConfig  # noqa: E402
from robotag_ros.data.dream.writer import write_frame  # noqa: E402
from robotag_ros.data.synthetic.frame_generator import (  # noqa: E402
    SyntheticFrameGenerator, encode_jpeg)
from robotag_ros.robot import load_robot  # noqa: E402
from benchmarks.machine import machine_name  # noqa: E402


class StageTimer:
    """Wraps generator internals to accumulate time per stage (seconds)."""

    def __init__(self, generator):
        self.totals = {'randomise': 0.0, 'render': 0.0, 'composite_aug': 0.0}
        renderer = generator.renderer
        original_render = renderer.render
        original_background = synth_module.random_background
        original_aug = synth_module.augment_photometric

        def timed(name, function):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.totals[name] += time.perf_counter() - start
            return wrapper

        renderer.render = timed('render', original_render)
        synth_module.random_background = timed('composite_aug', original_background)
        synth_module.augment_photometric = timed('composite_aug', original_aug)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--size', default='400x400', help='WIDTHxHEIGHT')
    parser.add_argument('--out', default=str(Path(__file__).parent / 'results' /
                                             'synth_speed.json'))
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split('x'))
    torch.set_num_threads(1)
    robot = load_robot('panda')
    config = DRConfig()
    generator = SyntheticFrameGenerator(robot, config, height, width)
    timer = StageTimer(generator)
    for index in range(3):  # warm-up: GL context, shader compilation, first FK
        generator.generate(0, 10_000 + index)
    timer.totals = dict.fromkeys(timer.totals, 0.0)
    jpeg_s = write_s = 0.0
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        for index in range(args.frames):
            frame = generator.generate(0, index)
            t0 = time.perf_counter()
            jpeg = encode_jpeg(frame.rgb, config.image.jpeg_quality)
            t1 = time.perf_counter()
            write_frame(out_dir, index, robot, frame, jpeg, config.save_mask, config.save_depth)
            t2 = time.perf_counter()
            jpeg_s += t1 - t0
            write_s += t2 - t1
        total_s = time.perf_counter() - start
    generator.close()
    generate_s = total_s - jpeg_s - write_s
    stages_ms = {
        'randomise_fk_ms': (generate_s - timer.totals['render'] - timer.totals['composite_aug']),
        'render_rgb_seg_depth_ms': timer.totals['render'],
        'background_composite_aug_ms': timer.totals['composite_aug'],
        'jpeg_encode_ms': jpeg_s,
        'write_mask_depth_json_ms': write_s,
    }
    stages_ms = {k: 1000.0 * v / args.frames for k, v in stages_ms.items()}
    result = {
        'machine': machine_name(),
        'renderer': f'MuJoCo {mujoco.__version__} EGL ({os.environ.get("MUJOCO_GL", "")})',
        'robot': 'panda', 'width_px': width, 'height_px': height, 'frames': args.frames,
        'llvmpipe_threads': int(os.environ['LP_NUM_THREADS']), 'torch_threads': 1,
        'frames_per_s_per_core': args.frames / total_s,
        'total_ms_per_frame': 1000.0 * total_s / args.frames,
        **{k: round(v, 3) for k, v in stages_ms.items()},
    }
    print(f'robotag-synth speed, Panda {width}x{height}, one core ({args.frames} frames)')
    print(f'{"stage":34s} {"ms/frame":>9s} {"share":>7s}')
    for key, value in stages_ms.items():
        print(f'{key:34s} {value:9.2f} {100 * value / result["total_ms_per_frame"]:6.1f}%')
    print(f'{"total":34s} {result["total_ms_per_frame"]:9.2f}')
    print(f'frames/s per core: {result["frames_per_s_per_core"]:.1f}')
    atomic_write_json(args.out, result)
    return 0


if __name__ == '__main__':
    sys.exit(main())
