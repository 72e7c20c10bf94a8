#!/usr/bin/env bash
# Reproduce the bundled default Panda model (models/panda_default) from its recipe,
# config/recipe/panda_default.yaml: every phase renders its frames, trains from the previous
# phase's artifact and resumes where it stopped; the last phase's artifact is installed into
# models/ with the phase list in its sidecar. Measure it afterwards with
#   PYTHONPATH=. .venv/bin/python benchmarks/default_model.py
#
#   bash scripts/train_default_model.sh                 # this project's CPU recipe (2 cores)
#   DEVICE=cuda bash scripts/train_default_model.sh     # a GPU: each phase's cuda_overrides
#   FROM_PHASE=room INIT=models/panda_default bash scripts/train_default_model.sh
#                                                       # only the last phase, from the bundle
# Knobs (environment): DEVICE, WORKERS, FROM_PHASE, INIT, RESUME (1: continue stopped runs).
# Extra arguments are training overrides (key.sub=value) for every phase.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-.venv/bin/python}"
args=(config/recipe/panda_default.yaml --device "${DEVICE:-cpu}" --workers "${WORKERS:-$(nproc)}")
if [ -n "${FROM_PHASE:-}" ]; then args+=(--from-phase "$FROM_PHASE"); fi
if [ -n "${INIT:-}" ]; then args+=(--init "$INIT"); fi
if [ "${RESUME:-0}" = 1 ]; then args+=(--resume); fi
exec "$PY" -m robotag_ros.training.recipe "${args[@]}" "$@"
