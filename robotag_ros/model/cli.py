"""robotag-graph: list the TAG's closed loops and draw the graph (PNG + DOT)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from robotag_ros.tag.graph import TAGGraph


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='robotag-graph', description='List the closed loops of the Topological Alignment '
        'Graph and draw it, for the default model config or --config FILE.')
    parser.add_argument('--config', help='model config YAML (e.g. with loops_off: [joints]) '
                        'or a bundled name (default, large)')
    parser.add_argument('--list', action='store_true',
                        help='one line per closed loop: kind, alignment edge, forward edges')
    parser.add_argument('--all', action='store_true',
                        help='with --list, also the loops that are switched off')
    parser.add_argument('--draw', metavar='FILE.png',
                        help='draw the graph to FILE.png and write FILE.dot beside it')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.list or args.draw):
        build_parser().print_usage(sys.stderr)
        print('robotag-graph: give --list and/or --draw FILE.png', file=sys.stderr)
        return 2
    # Imported here so --help stays fast; the config module pulls in torch.
    from robotag_ros.model.config import load_model_config
    try:
        config = load_model_config(args.config)
    except (FileNotFoundError, ValueError) as error:
        print(f'robotag-graph: {error}', file=sys.stderr)
        return 2
    tag = TAGGraph(config.loops_off)
    if args.list:
        loops = tag.all_loops() if args.all else tag.loops()
        for loop in loops:
            state = '' if loop.kind not in tag.disabled_kinds else '[off] '
            print(state + tag.describe_loop(loop))
        print(f'# {len(tag.loops())} enabled loops of {len(tag.all_loops())}; eq. (19) terms: '
              f'{", ".join(tag.active_terms()) or "none"}; switched off: '
              f'{", ".join(sorted(tag.disabled_kinds)) or "none"}')
    if args.draw:
        from robotag_ros.tag.draw import draw_png, write_dot
        png = Path(args.draw)
        if png.suffix.lower() != '.png':
            print(f'robotag-graph: --draw wants a .png path, got {png}', file=sys.stderr)
            return 2
        if not png.parent.exists():
            print(f'robotag-graph: folder {png.parent} does not exist', file=sys.stderr)
            return 2
        draw_png(tag, png)
        write_dot(tag, png.with_suffix('.dot'))
        print(f'wrote {png} and {png.with_suffix(".dot")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
