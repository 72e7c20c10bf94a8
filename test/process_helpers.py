"""Stopping the node processes the ROS tests start, the way ros2 launch does (SIGINT)."""
import signal
import subprocess

import pytest

# Generous: a loaded CI machine has been seen to need more than 10 s to tear DDS down.
STOP_TIMEOUT_S = 30.0


def stop_process(process: subprocess.Popen, timeout: float = STOP_TIMEOUT_S) -> str:
    """Ctrl-C ``process`` and return what it printed (piped stdout); fail if it does not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=timeout)[0] or ''
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0] or ''
        pytest.fail(f'{" ".join(map(str, process.args[:4]))} did not stop within {timeout} s '
                    f'of SIGINT:\n{output[-3000:]}')
