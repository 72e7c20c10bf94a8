"""The data tools' command lines.

    robotag-synth --robot panda --out DIR --num N --seed S [--workers K] [--shard i/n]
                  [--config dr.yaml] [--size 400x400]
    robotag-contact-sheet DIR OUT.png [--n 16] [--tile 200]

`python -m robotag_ros.data.cli ...` is robotag-synth. The set generation itself (seeds, shards,
resuming, one K per set) is robotag_ros/data/synthetic/set_generator.py.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from robotag_ros.atomic_io import atomic_write_bytes
from robotag_ros.data.dream.contact_sheet import make_contact_sheet
from robotag_ros.data.synthetic.dr_config import load_dr_config
from robotag_ros.data.synthetic.set_generator import generate_set, set_intrinsics


# Image sides robotag-synth renders (pixels): the GL offscreen buffer fails far above this, and a
# network input needs more than a few pixels.
SIZE_RANGE_PX = (16, 4096)


def parse_size(text: str) -> tuple[int, int]:
    """'WIDTHxHEIGHT' -> (height, width) pixels, each side within SIZE_RANGE_PX."""
    try:
        width, height = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'--size {text!r}: expected WIDTHxHEIGHT, e.g. 400x400') from None
    low, high = SIZE_RANGE_PX
    if not (low <= width <= high and low <= height <= high):
        raise ValueError(f'--size {text!r}: each side must be {low} to {high} pixels')
    return height, width


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'--shard {text!r}: expected i/n, e.g. 0/4')
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f'--shard {text!r}: need 0 <= i < n')
    return index, count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='robotag-synth', description='Make a domain-randomised '
                                     'synthetic DREAM-format data set of one robot.')
    parser.add_argument('--robot', required=True, help="bundled robot name or robot YAML path")
    parser.add_argument('--out', required=True, help='output folder (DREAM format)')
    parser.add_argument('--num', type=int, required=True, help='frames in the whole set')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=1, help='processes (one GL context each)')
    parser.add_argument('--shard', type=parse_shard, default=(0, 1), help='i/n: this part')
    parser.add_argument('--config', default=None, help='DR config YAML (default: built-in)')
    low, high = SIZE_RANGE_PX
    parser.add_argument('--size', default='400x400',
                        help=f'WIDTHxHEIGHT, each side {low} to {high} px')
    parser.add_argument('--no-progress', action='store_true')
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.num < 0:
            raise ValueError(f'--num must be 0 or more, got {args.num}')
        height, width = parse_size(args.size)
        config = load_dr_config(args.config)
        set_intrinsics(config, height, width, args.seed)   # refuse a bad K before any file
        written = generate_set(args.robot, args.out, args.num, args.seed, config, height, width,
                               workers=args.workers, shard=args.shard,
                               progress=not args.no_progress)
    except (ValueError, OSError) as error:
        print(f'robotag-synth: error: {error}', file=sys.stderr)
        return 2
    print(f'robotag-synth: wrote {written} frames to {args.out}')
    return 0


def contact_sheet_main(argv=None) -> int:
    """robotag-contact-sheet DIR OUT.png [--n 16] [--tile 200]."""
    parser = argparse.ArgumentParser(prog='robotag-contact-sheet', description='A PNG grid of '
                                     'DREAM frames with their labels drawn.')
    parser.add_argument('folder', help='DREAM-format folder')
    parser.add_argument('out', help='output PNG')
    parser.add_argument('--n', type=int, default=16, help='number of frames')
    parser.add_argument('--tile', type=int, default=200, help='tile width in pixels')
    args = parser.parse_args(argv)
    sheet = make_contact_sheet(args.folder, args.n, args.tile)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode('.png', sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise SystemExit('PNG encoding failed')
    atomic_write_bytes(out, png.tobytes())
    print(f'robotag-contact-sheet: {len(sheet)}x{sheet.shape[1]} px sheet written to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
