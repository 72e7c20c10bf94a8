"""How the benchmarks name the machine they ran on (every results JSON carries it)."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str:
    """The first GPU's name ('' without one): from torch when it is loaded, else nvidia-smi."""
    torch = sys.modules.get('torch')
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    if shutil.which('nvidia-smi'):
        query = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'],
                               capture_output=True, text=True)
        if query.returncode == 0 and query.stdout.strip():
            return query.stdout.strip().splitlines()[0]
    return ''


def machine_name() -> str:
    """Host, CPU model, core count, Python (and torch when loaded), and the GPU if there is one."""
    text = f'{platform.node()}: {cpu_model()}, {os.cpu_count()} cpus, python ' \
           f'{platform.python_version()}'
    torch = sys.modules.get('torch')
    if torch is not None:
        text += f', torch {torch.__version__}'
    gpu = gpu_name()
    return text + (f', GPU {gpu}' if gpu else '')


def write_results(path, results: dict) -> Path:
    """Write a benchmark's flat results dict as JSON, atomically (a killed run leaves the old
    file whole), and say where."""
    from robotag_ros.atomic_io import atomic_write_json
    path = atomic_write_json(path, results, indent=2)
    print(f'wrote {path}')
    return path
