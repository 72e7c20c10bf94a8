#!/usr/bin/env bash
# What a GPU adds to the CPU recipe, measured in one short, time-boxed run: render fresh frames,
# measure the bundled (CPU-trained) model, fine-tune it END TO END (trunk included, no trunk
# cache: config/train/panda_keypoints.yaml with data.cache_trunk=false, as the recipe's GPU
# branch) for the time left, measure again. Writes two default_model.py results:
#   benchmarks/results/gpu_finetune_before.json   the bundled model on these frames
#   benchmarks/results/gpu_finetune_after.json    after the fine-tuning
# and leaves the fine-tuned artifact at $RUNS/gpu_finetune/panda_default.
#
#   bash benchmarks/gpu_finetune.sh          # END_S=545 s in all; EVAL_N=100 frames per set
#
# The evaluation sets are the benchmark's own seeds, rendered here (100 frames, not the 200 of
# default_model.json), so the before/after pair is on identical frames. A machine with no package
# registry (this project's lent GPUs) sources BOOTSTRAP=file first: it puts the
# wheels the image lacks on PYTHONPATH and sets PY.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
log() { echo "[gpu_finetune $(elapsed)s] $*"; }
END_S=${END_S:-545}
EVAL_N=${EVAL_N:-100}
DATA=${DATA:-data}
RUNS=${RUNS:-runs}
RESULTS=${RESULTS:-benchmarks/results}
PY=${PYTHON:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-$(nproc)}
BOOTSTRAP=${BOOTSTRAP:-}
# shellcheck disable=SC1090
if [ -n "$BOOTSTRAP" ]; then source "$BOOTSTRAP" || exit 3; fi
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
synth() {   # $1 out, $2 frames, $3 seed, $4 DR config name
  "$PY" -m robotag_ros.data.cli --robot panda --out "$1" --num "$2" --seed "$3" \
      --size 640x480 --config "config/synth/$4.yaml" --workers "$WORKERS" --no-progress
}
evaluate() {   # $1 artifact, $2 results file
  PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}." "$PY" benchmarks/default_model.py --model "$1" \
      --data "$DATA/benchmark" --frames "$EVAL_N" --device "$DEVICE" --out "$2"
}
log "evaluation and validation sets"
synth "$DATA/panda_val" "$EVAL_N" 1001 dr_default || { log "rendering failed"; exit 4; }
synth "$DATA/benchmark/panda_heldout_s2002_640x480_$EVAL_N" "$EVAL_N" 2002 dr_default
synth "$DATA/benchmark/panda_shifted_s2004_640x480_$EVAL_N" "$EVAL_N" 2004 dr_shifted
evaluate models/panda_default "$RESULTS/gpu_finetune_before.json" > "$RUNS.before.log" 2>&1 &
before=$!
# Fresh training frames (seeds 17-32: never rendered by the CPU recipe) until RENDER_END s.
folders=()
for i in $(seq 0 15); do
  [ "$(elapsed)" -ge "${RENDER_END:-200}" ] && break
  synth "$DATA/gpu_fresh_$i" "${FRAMES_PER_FOLDER:-2000}" $((17 + i)) dr_default || break
  folders+=("$DATA/gpu_fresh_$i")
done
log "training frames: ${#folders[@]} folders of ${FRAMES_PER_FOLDER:-2000}"
if [ "${#folders[@]}" = 0 ]; then log "no training frames rendered by RENDER_END"; exit 5; fi
wait "$before"; tail -n 3 "$RUNS.before.log"
minutes=$("$PY" -c "print(round(max($END_S - $(elapsed) - 90, 60) / 60.0, 2))")
log "fine-tuning end to end for ~$minutes min"
"$PY" -m robotag_ros.training.cli train --config config/train/panda_keypoints.yaml \
    "data.train=[$(IFS=,; echo "${folders[*]}")]" "data.val=[$DATA/panda_val]" \
    "run_dir=$RUNS/gpu_finetune" init_from=models/panda_default \
    "artifact_out=$RUNS/gpu_finetune/panda_default" "device=$DEVICE" data.cache_trunk=false \
    "optim.batch_size=${BATCH:-64}" "data.num_workers=$((WORKERS - 2))" optim.epochs=40 \
    optim.lr=5.0e-4 optim.lr_decay_per_epoch=0.9 max_steps_per_epoch=100 \
    eval_every_epochs=1000 max_eval_frames=20 "time_budget_minutes=$minutes"
evaluate "$RUNS/gpu_finetune/panda_default" "$RESULTS/gpu_finetune_after.json"
log "done"
