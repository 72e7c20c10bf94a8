"""What a plain `pip install .` (no extras) must run: the node's module and the bundled model's
estimator, with the extras' packages hidden by an import hook (as if not installed)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Top-level modules of the extras' packages (setup.py's EXTRAS_*), minus the test tools.
EXTRA_MODULES = ('mujoco', 'tensorboard', 'transformers', 'pydot')


def test_extras_are_not_in_install_requires():
    setup = (REPO / 'setup.py').read_text()
    required = setup[setup.index('install_requires=['):setup.index('extras_require=')]
    for package in ('mujoco', 'tensorboard', 'transformers', 'pydot'):
        assert not re.search(rf"'{package}[>=<]", required), package
        assert re.search(rf"'{package}>=", setup), f'{package} is in no extra'


def test_node_estimator_runs_without_the_extras():
    pytest.importorskip('rclpy', reason='rclpy not installed: run scripts/install_ros.sh')
    code = f'''
import sys
HIDDEN = {EXTRA_MODULES!r}
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in HIDDEN:
            raise ModuleNotFoundError('not installed: ' + name, name=name)
sys.meta_path.insert(0, Hide())
import numpy as np
from robotag_ros.bundled import default_model_path
from robotag_ros.inference.factory import build_estimator, load_factory
estimator = build_estimator(load_factory(''), str(default_model_path()), 'torch', 'cpu', '')
K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
estimate = estimator.estimate(np.full((480, 640, 3), 90, np.uint8), K)
assert estimate.joint_angles_rad.shape == (7,)
assert not [m for m in sys.modules if m.split('.')[0] in HIDDEN]
print('estimated without the extras')
'''
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'estimated without the extras' in result.stdout
