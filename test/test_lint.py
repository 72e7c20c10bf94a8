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
