#!/usr/bin/env bash
# Reproduce the bundled default Panda model: render the synthetic sets, train stage 1, evaluate
# on a held-out split and on a shifted domain. Knobs are environment variables (defaults: the
# run that produced models/panda_default, see README). Runs on CPU or GPU; on a GPU use
# DEVICE=cuda. Extra arguments are training overrides (key.sub=value).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
DATA="${DATA_DIR:-data}"
RUN="${RUN_DIR:-runs/default_model}"
WORKERS="${WORKERS:-$(nproc)}"
SEEDS_AND_SETS=(
  # name                       frames                         seed size     DR config
  "panda_synth_train          ${NUM_TRAIN_SQUARE:-20000}      1    256x256  config/synth/dr_default.yaml"
  "panda_synth_train_43       ${NUM_TRAIN_43:-10000}          3    320x240  config/synth/dr_default.yaml"
  "panda_synth_val            ${NUM_VAL:-1000}                2    320x240  config/synth/dr_default.yaml"
  "panda_synth_shifted_val    ${NUM_VAL:-1000}                4    320x240  config/synth/dr_shifted.yaml"
)
for row in "${SEEDS_AND_SETS[@]}"; do
  read -r name frames seed size config <<<"$row"
  "$PY" -m robotag_ros.data.synth_cli --robot panda --out "$DATA/$name" --num "$frames" \
      --seed "$seed" --size "$size" --config "$config" --workers "$WORKERS" --no-progress
done
"$PY" -m robotag_ros.training.cli train --config config/train/panda_stage1.yaml \
    "data.train=[$DATA/panda_synth_train,$DATA/panda_synth_train_43]" \
    "data.val=[$DATA/panda_synth_val]" "run_dir=$RUN" "artifact_out=$RUN/panda_default" \
    "device=${DEVICE:-auto}" "time_budget_minutes=${MINUTES:-0}" "$@"
for name in panda_synth_val panda_synth_shifted_val; do
  "$PY" -m robotag_ros.training.cli eval --model "$RUN/panda_default" --data "$DATA/$name" \
      --json "$RUN/eval_$name.json" --device "${DEVICE:-auto}"
done
