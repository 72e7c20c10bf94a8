"""Render the params files and the docs' parameter table from the schemas.

    python -m robotag_ros.parameters            # say which files differ from their schema
    python -m robotag_ros.parameters --write    # rewrite them

Run from a source checkout after changing a schema (robotag_ros/parameters/*.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robotag_ros.atomic_io import atomic_write_text
from robotag_ros.parameters.calibrator import CALIBRATOR_PARAMETERS
from robotag_ros.parameters.estimator import ESTIMATOR_PARAMETERS
from robotag_ros.parameters.schema import render_docs_table, render_params_file

SOURCE_ROOT = Path(__file__).resolve().parents[2]
TABLE_BEGIN = ('<!-- the table below is generated from robotag_ros/parameters/estimator.py: '
               'python -m robotag_ros.parameters --write -->')
TABLE_END = '<!-- end of the generated table -->'


def _header(node_file: str) -> str:
    return (f'Parameters of the {node_file} node, generated from its schema in '
            'robotag_ros/parameters/\n(python -m robotag_ros.parameters --write); '
            '`ros2 param describe` shows the same descriptions.')


def _with_table(document: str, table: str, where: Path) -> str:
    """``document`` with the text between the table markers replaced by ``table``."""
    if TABLE_BEGIN not in document or TABLE_END not in document:
        raise ValueError(f'{where}: the generated-table markers are missing')
    before, rest = document.split(TABLE_BEGIN, 1)
    _, after = rest.split(TABLE_END, 1)
    return f'{before}{TABLE_BEGIN}\n{table}{TABLE_END}{after}'


def rendered_files(root: Path = SOURCE_ROOT) -> dict[Path, str]:
    """{path: the content its schema gives} for every generated file under ``root``."""
    node_doc = root / 'docs' / 'node.md'
    return {
        root / 'config' / 'estimator.yaml': render_params_file(
            'estimator', ESTIMATOR_PARAMETERS, _header('estimator')),
        root / 'config' / 'calibrator.yaml': render_params_file(
            'calibrator', CALIBRATOR_PARAMETERS, _header('calibrator') + '\n'
            'launch/calibrate.launch.py loads this file, then the arguments given to it.'),
        node_doc: _with_table(node_doc.read_text(), render_docs_table(ESTIMATOR_PARAMETERS),
                              node_doc),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m robotag_ros.parameters',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--write', action='store_true', help='rewrite the files that differ')
    args = parser.parse_args(argv)
    try:
        stale = [(path, text) for path, text in rendered_files().items()
                 if not path.is_file() or path.read_text() != text]
    except (OSError, ValueError) as error:
        print(f'robotag_ros.parameters: error: {error}', file=sys.stderr)
        return 2
    for path, text in stale:
        if args.write:
            atomic_write_text(path, text)
        print(f'{"rewrote" if args.write else "differs from its schema:"} {path}')
    return 1 if stale and not args.write else 0


if __name__ == '__main__':
    sys.exit(main())
