#!/usr/bin/env bash
# The README's test command: set up .venv (cold ~5 min, warm seconds) and run the test suite.
# Every rclpy process it starts keeps DDS on this machine (shared memory only, own domain id).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_env.sh
VENV="${ROBOTAG_VENV:-$ROOT/.venv}"
# Shared memory only, with a segment large enough for camera images (plain SHM silently drops
# messages over 512 KB); a domain id of its own (valid 0..101 on Linux).
export FASTDDS_BUILTIN_TRANSPORTS='SHM?max_msg_size=8MB&sockets_size=16MB'
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 90) + 10 ))}"
export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:-$VENV}"
export GLOO_SOCKET_IFNAME=lo
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYTHONUNBUFFERED=1
exec "$VENV/bin/python" -m pytest test -q -p no:cacheprovider "$@"
