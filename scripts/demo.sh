#!/usr/bin/env bash
# The README's demo command: set up .venv (as scripts/test.sh does), then play the bundled sample
# bag (test/data/panda_sample_bag) through the real estimator node with the bundled default model
# (models/panda_default) and print its joint angles and camera pose next to the ground truth.
# Outputs go to out/demo/. Arguments pass through: bash scripts/demo.sh --model PATH --stride 2
# Every ROS process keeps DDS on this machine (shared memory only, a private ROS_DOMAIN_ID).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/local_env.sh"
exec "$VENV/bin/python" -m robotag_ros.harness.demo "$@"
