"""The console-script shell every node of the package shares: init, spin, clean shutdown."""
from __future__ import annotations

import sys
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException


def spin_node(make_node: Callable[[], object], program: str,
              startup_errors: tuple[type[BaseException], ...], args=None) -> int:
    """Spin the node ``make_node()`` builds until Ctrl-C or shutdown; 2 on a bad configuration.

    ``rclpy.init()`` + try/finally rather than ``with rclpy.init()``, which breaks on Jazzy.
    A configuration error in ``startup_errors`` prints one line naming the cause instead of a
    traceback.
    """
    rclpy.init(args=args)
    node = None
    status = 0
    try:
        node = make_node()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except startup_errors as error:
        print(f'{program}: cannot start: {error}', file=sys.stderr)
        status = 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status
