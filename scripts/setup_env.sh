#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment at .venv/: torch first, then the package
# with its test extra, then ROS 2 Jazzy from pip where no system ROS 2 is sourced.
# Idempotent: a warm run whose inputs did not change only checks a stamp and returns.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROBOTAG_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
cd "$ROOT"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

# torch first and alone: every later pip call passes the constraints file that pins it, or a
# dependency pulls a newer CUDA build (on a GPU machine the same pin gives the CUDA wheel).
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" \
        2>/dev/null; then
    echo "[setup] installing torch==2.13.0"
    "${PIP[@]}" "torch==2.13.0"
fi

stamp="$VENV/.robotag_stamp"
inputs="$(for f in setup.py setup.cfg package.xml constraints.txt scripts/setup_env.sh \
              scripts/install_ros.sh; do if [ -f "$f" ]; then cat "$f"; fi; done | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
    echo "[setup] environment up to date ($VENV)"
    exit 0
fi

echo "[setup] installing robotag_ros[all] (editable: the node, renderer, training, tests)"
"${PIP[@]}" -c constraints.txt -e ".[all]"

if [ -z "${ROS_DISTRO:-}" ]; then
    if [ -f scripts/install_ros.sh ]; then
        echo "[setup] no sourced ROS 2: installing ROS 2 Jazzy from pip into $VENV"
        bash scripts/install_ros.sh "$VENV"
    fi
else
    echo "[setup] using the sourced ROS 2 $ROS_DISTRO"
fi
echo "$inputs" > "$stamp"
echo "[setup] done"
