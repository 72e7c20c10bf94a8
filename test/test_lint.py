"""Lint like ament_flake8: the package, training code, tests, benchmarks and launch files."""
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('flake8', reason='flake8 is in the test extra: pip install -e .[test]')

REPO = Path(__file__).resolve().parents[1]


def test_flake8_at_99_columns():
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', '--max-line-length', '99', 'robotag_ros', 'training',
         'test', 'benchmarks', 'scripts', 'launch', 'setup.py'],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _folder_imports() -> dict[str, set[str]]:
    """{top-level folder of robotag_ros: folders it imports}, function-level imports included
    (training/ installs as robotag_ros.training and counts as the folder 'training')."""
    import ast
    graph: dict[str, set[str]] = {}
    sources = [(path, path.relative_to(REPO / 'robotag_ros').parts[0].removesuffix('.py'))
               for path in (REPO / 'robotag_ros').rglob('*.py')]
    sources += [(path, 'training') for path in (REPO / 'training').rglob('*.py')]
    for path, folder in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split('.')
                if parts[0] == 'robotag_ros' and len(parts) > 1 and parts[1] != folder:
                    graph.setdefault(folder, set()).add(parts[1])
    return graph


def test_top_level_folders_import_one_way():
    """Layers: no two folders of the package import each other, directly or round a cycle."""
    import networkx as nx
    graph = nx.DiGraph([(a, b) for a, targets in _folder_imports().items() for b in targets])
    assert graph.number_of_edges() > 10   # the walk found the imports
    assert list(nx.simple_cycles(graph)) == []


def test_runtime_imports_nothing_from_the_exporter():
    """inference/ only loads exported files; making them (export/) is a layer above it."""
    imports = _folder_imports()
    assert 'export' in imports and 'inference' in imports['export']   # the walk saw both
    assert 'export' not in imports['inference']
