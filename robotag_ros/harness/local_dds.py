"""Environment for child rclpy processes that keeps DDS traffic on this machine.

Fast DDS with only its shared-memory transport never sends a packet off the host (unlike
ROS_LOCALHOST_ONLY / ROS_AUTOMATIC_DISCOVERY_RANGE, which delivered nothing with the pip wheels).
ROS-free so tests, benchmarks and the demo can call it before importing rclpy.
"""
from __future__ import annotations

import os
import sys

# Shared memory only, with explicit size limits. The default SHM segment (512 KB) silently loses
# larger messages (a 640x480 rgb8 image never arrived, 320x240 did). A message must fit
# max_msg_size whole: larger ones are cut into fragments that are lost together when the segment
# (sockets_size) fills, silently with best effort and as a stall with reliable QoS. Sized for 4K
# rgb8 (3840x2160x3 = 24.9 MB) with room for four of them in flight; scripts/local_env.sh sets
# the same (docs/node.md, "Message size").
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
LOCAL_TRANSPORTS = 'SHM?max_msg_size=32MB&sockets_size=128MB'


def local_ros_env(domain_id: int, pythonpath: str | None = None,
                  base: dict[str, str] | None = None) -> dict[str, str]:
    """Copy of ``base`` (default os.environ) with SHM-only Fast DDS and ``domain_id``."""
    # FASTDDS_BUILTIN_TRANSPORTS is read by every participant the child creates.
    if not 0 <= domain_id <= 101:
        raise ValueError(f'ROS_DOMAIN_ID must be in 0..101, got {domain_id}')
    env = dict(os.environ if base is None else base)
    env['FASTDDS_BUILTIN_TRANSPORTS'] = LOCAL_TRANSPORTS
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
    # ament_index_python looks up packages here (the pip wheels install into the venv prefix).
    env.setdefault('AMENT_PREFIX_PATH', sys.prefix)
    env['PYTHONUNBUFFERED'] = '1'
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(p for p in (pythonpath, env.get('PYTHONPATH')) if p)
    return env
