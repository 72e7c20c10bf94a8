"""robotag-export: a model artifact -> a checked ONNX file (and optionally a TensorRT plan).

    robotag-export --model models/panda_default --onnx out/panda.onnx [--engine out/panda.plan
                   --fp16] [--opset 18] [--atol 1e-3] [--dream FOLDER | --image F --intrinsics ..]

Every export is checked: ``onnx.checker.check_model(full_check=True)``, then ONNX Runtime vs
PyTorch on real frames letterboxed by the artifact's sidecar, printing the largest difference
per output and failing above the tolerance; only a model that passed both replaces the --onnx
file. Exit status: 0 ok, 1 mismatch, 2 bad input or a missing runtime.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch

DEFAULT_MODEL = 'models/panda_default'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='robotag-export', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default=DEFAULT_MODEL,
                        help='artifact: weights + sidecar pair, without or with a suffix '
                             f'(default {DEFAULT_MODEL})')
    parser.add_argument('--onnx', required=True, help='ONNX file to write (OUT.onnx)')
    parser.add_argument('--opset', type=int, default=None, help='ONNX opset (default: '
                        'robotag_ros.export.onnx_export.DEFAULT_OPSET)')
    parser.add_argument('--external-data', choices=('auto', 'yes', 'no'), default='auto',
                        help="weights in OUT.onnx.data beside the model: 'auto' only past "
                             "protobuf's 2 GB limit")
    parser.add_argument('--atol', type=float, default=1e-3,
                        help='parity tolerance: |onnx - torch| <= atol + rtol * |torch|')
    parser.add_argument('--rtol', type=float, default=1e-3)
    parser.add_argument('--dream', help='DREAM-format folder whose first frames check parity')
    parser.add_argument('--image', help='an image file to check parity on (with --intrinsics)')
    parser.add_argument('--intrinsics', help="the image's 'fx,fy,cx,cy' in pixels")
    parser.add_argument('--frames', type=int, default=2,
                        help='frames to check (default 2; rendered when no --dream/--image)')
    parser.add_argument('--engine', help='also build a TensorRT plan here (needs TensorRT and a '
                                         'CUDA GPU; the plan is for this GPU and TensorRT only)')
    parser.add_argument('--fp16', action='store_true', help='FP16 TensorRT engine')
    return parser


# Opsets the exporter writes as asked: torch's dynamo exporter builds opset 18 graphs and
# converts them up; a request below 18 fails its converter and silently falls back to 18.
MIN_OPSET = 18


def checked_opset(requested: Optional[int], default: int) -> int:
    """The opset to export (``default`` when none is asked for), within what is supported."""
    import onnx
    highest = onnx.defs.onnx_opset_version()
    opset = default if requested is None else requested
    if not MIN_OPSET <= opset <= highest:
        raise ValueError(f'--opset {opset}: the exporter writes opsets {MIN_OPSET} to {highest}')
    return opset


def checked_onnx_path(text: str) -> Path:
    """--onnx names a file to write, not a folder, in a folder (or a place one can be made)."""
    path = Path(text)
    if path.is_dir():
        raise ValueError(f'--onnx {text} is a folder; name the .onnx file to write')
    existing = next((parent for parent in path.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f'--onnx {text}: {existing} is a file, not a folder')
    return path


def written_opset(onnx_path: Path) -> int:
    """The default-domain opset the file really holds."""
    import onnx
    proto = onnx.load(str(onnx_path), load_external_data=False)
    return next(entry.version for entry in proto.opset_import if entry.domain in ('', 'ai.onnx'))


def move_into_place(staged: Path, onnx_path: Path) -> None:
    """The checked export (and its weights side file, first) replaces ``onnx_path``."""
    from robotag_ros.export.onnx_export import external_data_path
    if external_data_path(staged).is_file():
        os.replace(external_data_path(staged), external_data_path(onnx_path))
    else:   # a stale side file of an earlier export must not shadow embedded weights
        external_data_path(onnx_path).unlink(missing_ok=True)
    os.replace(staged, onnx_path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    from robotag_ros.export.onnx_export import (DEFAULT_OPSET, ExportMismatch, compare_with_torch,
                                                export_onnx, external_data_path, network_inputs)
    from robotag_ros.export.reference_frames import parse_intrinsics, reference_frames
    from robotag_ros.model.artifact import ArtifactError, load_model

    if args.engine:
        # Fail before the export when TensorRT is missing: the user asked for both.
        from robotag_ros.export.tensorrt_engine import TensorRTUnavailable, require_tensorrt
        try:
            require_tensorrt()
        except TensorRTUnavailable as error:
            print(f'robotag-export: error: --engine {args.engine}: {error}', file=sys.stderr)
            return 2
    # Every argument and parity frame is checked before a file is written.
    try:
        opset = checked_opset(args.opset, DEFAULT_OPSET)
        onnx_path = checked_onnx_path(args.onnx)
        if args.frames < 1:
            raise ValueError(f'--frames must be at least 1, got {args.frames}')
        model, sidecar = load_model(args.model)
        input_hw = tuple(int(v) for v in sidecar.input_size)
        intrinsics = parse_intrinsics(args.intrinsics) if args.intrinsics else None
        frames = reference_frames(model.robot, dream=args.dream, image=args.image,
                                  intrinsics=intrinsics, count=args.frames)
        # An image too thin to letterbox fails here, before anything is exported.
        inputs = network_inputs(frames, input_hw, sidecar.preprocessing)
    except (ArtifactError, ValueError, FileNotFoundError) as error:
        print(f'robotag-export: error: {error}', file=sys.stderr)
        return 2
    external = {'auto': None, 'yes': True, 'no': False}[args.external_data]
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    # Exported and checked in a staging folder beside the target: only a checked model (and
    # its side file) replaces what --onnx named.
    with tempfile.TemporaryDirectory(prefix=f'.{onnx_path.name}.',
                                     dir=onnx_path.parent) as staging:
        staged = export_onnx(model, input_hw, Path(staging) / onnx_path.name, opset=opset,
                             external_data=external)
        opset = written_opset(staged)
        data = external_data_path(staged)
        print(f'robotag-export: exported {onnx_path.name}'
              + (f' + {data.name}' if data.is_file() else '')
              + f' (opset {opset}, input {input_hw[0]}x{input_hw[1]}, robot {sidecar.robot}); '
              'onnx.checker full_check passed')
        print('parity frames: ' + ', '.join(frame.source for frame in frames))
        try:
            compare_with_torch(model, staged, inputs=inputs, atol=args.atol, rtol=args.rtol)
        except ExportMismatch as error:
            print(f'robotag-export: FAILED parity: {error} ({onnx_path} not written)',
                  file=sys.stderr)
            return 1
        move_into_place(staged, onnx_path)
    print(f'robotag-export: wrote {onnx_path} (opset {opset}); ONNX Runtime matches PyTorch '
          'within tolerance')
    if args.engine:
        from robotag_ros.export.tensorrt_engine import build_engine
        engine = build_engine(onnx_path, args.engine, fp16=args.fp16)
        print(f'robotag-export: wrote TensorRT plan {engine} ({"fp16" if args.fp16 else "fp32"})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
