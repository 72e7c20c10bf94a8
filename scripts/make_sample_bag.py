#!/usr/bin/env python3
"""Render the project's sample sequence and write it as a rosbag2 (the demo's and the POL test's).

    python scripts/make_sample_bag.py                 # (re)writes test/data/panda_sample_bag
    python scripts/make_sample_bag.py --check         # regenerate elsewhere, compare byte for byte

The same seed on the same renderer (MuJoCo EGL, Mesa llvmpipe here) gives the same bytes; another
GL driver may round a few pixels differently, which --check reports.
"""
from __future__ import annotations

import argparse
import filecmp
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_OUT = REPO / 'test' / 'data' / 'panda_sample_bag'


def parse_args(argv=None):
    """Command-line options."""
    from robotag_ros.data.synthetic import sample_sequence as seq
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT, help='bag folder to write')
    parser.add_argument('--robot', default='panda')
    parser.add_argument('--seed', type=int, default=seq.SAMPLE_SEED)
    parser.add_argument('--frames', type=int, default=seq.SAMPLE_NUM_FRAMES)
    parser.add_argument('--jpeg-quality', type=int, default=90)
    parser.add_argument('--force', action='store_true', help='replace an existing --out')
    parser.add_argument('--check', action='store_true',
                        help='write to a temporary folder and compare with --out, byte for byte')
    return parser.parse_args(argv)


def make(out: Path, robot_name: str, seed: int, frames: int, jpeg_quality: int) -> Path:
    """Render and write one sample bag to ``out``."""
    import torch

    from robotag_ros.data.bags.sample_bag import render_sample_bag
    from robotag_ros.robot import load_robot

    torch.set_num_threads(2)
    render_sample_bag(out, load_robot(robot_name), seed, frames, jpeg_quality)
    return out


def folder_digest(folder: Path) -> str:
    """sha256 over the folder's file names and contents."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob('*') if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def main(argv=None) -> int:
    """Write (or check) the sample bag."""
    args = parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = make(Path(tmp) / args.out.name, args.robot, args.seed, args.frames,
                         args.jpeg_quality)
            same = folder_digest(fresh) == folder_digest(args.out)
            if not same:
                diff = filecmp.dircmp(fresh, args.out)
                print(f'{args.out} differs from a fresh render: {diff.diff_files} differ, '
                      f'{diff.left_only + diff.right_only} only on one side')
                return 1
        print(f'{args.out} is reproduced byte for byte (sha256 {folder_digest(args.out)[:16]})')
        return 0
    if args.out.exists():
        if not args.force:
            print(f'{args.out} exists; pass --force to replace it', file=sys.stderr)
            return 2
        shutil.rmtree(args.out)
    make(args.out, args.robot, args.seed, args.frames, args.jpeg_quality)
    size = sum(p.stat().st_size for p in args.out.rglob('*') if p.is_file())
    print(f'wrote {args.out} ({args.frames} frames, {size / 1e6:.2f} MB, '
          f'sha256 {folder_digest(args.out)[:16]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
