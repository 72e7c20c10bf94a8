#!/usr/bin/env bash
# The README's test command: set up .venv (cold ~5 min, warm seconds) and run the test suite.
# Every rclpy process it starts keeps DDS on this machine (scripts/local_env.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local_env.sh"
exec "$VENV/bin/python" -m pytest test -q -p no:cacheprovider "$@"
