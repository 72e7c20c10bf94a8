# Sourced by scripts/test.sh and scripts/demo.sh: set up .venv, then the run-time environment
# every process here needs. DDS stays on this machine: Fast DDS shared memory only, with explicit
# limits (plain SHM silently drops messages over 512 KB): messages up to 32 MB (4K rgb8 is
# 24.9 MB; larger frames are lost), a 128 MB segment; the same as robotag_ros/ros/local_dds.py,
# see docs/node.md "Message size". And a domain id of its own (valid 0..101 on Linux).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup_env.sh
VENV="${ROBOTAG_VENV:-$ROOT/.venv}"
export FASTDDS_BUILTIN_TRANSPORTS='SHM?max_msg_size=32MB&sockets_size=128MB'
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 90) + 10 ))}"
export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:-$VENV}"
export GLOO_SOCKET_IFNAME=lo        # torchrun's gloo backend on loopback only
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYTHONUNBUFFERED=1
