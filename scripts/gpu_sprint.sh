#!/usr/bin/env bash
# The recipe's last phase (config/recipe/panda_default.yaml, `whole_trunk`) as one time-boxed GPU
# run: the same training config, frames and runner as the CPU recipe, with the phase's
# cuda_overrides (the whole trunk trained end to end, no trunk cache, batch 64) and as many
# room frames as the GPU machine's CPU cores render before RENDER_END s. It starts from INIT
# (the bundled CPU-trained model) and leaves the artifact at $RUNS/whole_trunk/model; measure
# it with benchmarks/default_model.py like any other.
#
#   bash scripts/gpu_sprint.sh                # END_S=520 s in all, rendering until RENDER_END=150
#
# Frames: the phase's own room folders first (its `seeds:` in the recipe), then fresh seeds
# after its first seed (28, 32, 33, ...), FRAMES_PER_FOLDER each; the benchmarks' held-out
# seeds (1001+, 2002+) are never rendered here. The keypoint lifter is kept from INIT (it
# learns from forward kinematics alone: the images change nothing for it). A machine without
# a package registry (the lent GPUs) sources BOOTSTRAP=file first, which puts the wheels its
# image lacks on PYTHONPATH and sets PYTHON. SMOKE=1 renders and trains a few steps only
# (checks the set-up).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
log() { echo "[gpu_sprint $(elapsed)s] $*"; }
END_S=${END_S:-520}
RENDER_END=${RENDER_END:-150}
FRAMES_PER_FOLDER=${FRAMES_PER_FOLDER:-1000}
INIT=${INIT:-models/panda_default}
DATA=${DATA:-data}
RUNS=${RUNS:-runs/gpu_sprint}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-$(nproc)}
BOOTSTRAP=${BOOTSTRAP:-}
# shellcheck disable=SC1090
if [ -n "$BOOTSTRAP" ]; then source "$BOOTSTRAP" || exit 3; fi
PY=${PYTHON:-.venv/bin/python}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
RECIPE=config/recipe/panda_default.yaml
PHASE=whole_trunk
# The phase's render spec from the recipe: folder prefix, first seed, DR config, and the seeds
# to render in order (the phase's, then 30 fresh ones past them).
read -r PREFIX FIRST_SEED SYNTH_CONFIG SEEDS < <("$PY" -c "
from robotag_ros.training.recipe import load_recipe
phases = load_recipe('$RECIPE').phases
spec = {phase.name: phase for phase in phases}['$PHASE'].render
own = spec.folder_seeds()
fresh = [s for s in range(spec.first_seed, spec.first_seed + len(own) + 30) if s not in own]
print(spec.prefix, spec.first_seed, spec.config, ','.join(map(str, own + fresh)))") \
  || { echo "[gpu_sprint] cannot read phase $PHASE of $RECIPE"; exit 3; }
synth() {   # $1 folder, $2 frames, $3 seed
  "$PY" -m robotag_ros.data.cli --robot panda --out "$1" --num "$2" --seed "$3" \
      --size 640x480 --config "$SYNTH_CONFIG" --workers "$WORKERS" --no-progress
}
recipe() {   # the recipe runner on the last phase; extra arguments are training overrides
  "$PY" -m robotag_ros.training.recipe "$RECIPE" --device "$DEVICE" \
      --workers "$WORKERS" --from-phase "$PHASE" --init "$INIT" --runs-dir "$RUNS" \
      --data-dir "$DATA" --no-train-render --no-install --no-lifter \
      "data.num_workers=$((WORKERS - 2))" "model_overrides.pretrained_2d=null" "$@"
}

if [ "${SMOKE:-0}" = 1 ]; then
  log "smoke: 32 frames, 5 steps"
  synth "$DATA/smoke" 32 7 || { log "rendering failed"; exit 4; }
  "$PY" -m robotag_ros.training.cli train --config config/train/panda_room.yaml \
      "data.train=[$DATA/smoke]" "data.val=[$DATA/smoke]" "run_dir=$RUNS/smoke" --force \
      "init_from=$INIT" "device=$DEVICE" data.cache_trunk=false trained_trunk_stages=0 \
      optim.batch_size=8 data.num_workers=2 optim.epochs=1 max_steps_per_epoch=5 \
      max_eval_frames=4 "model_overrides.pretrained_2d=null" || { log "training failed"; exit 5; }
  log "smoke passed"; exit 0
fi

# folder = prefix_{seed - first seed}, as the recipe names them.
IFS=, read -r -a seeds <<< "$SEEDS"
folders=()
for seed in "${seeds[@]}"; do
  [ "$(elapsed)" -ge "$RENDER_END" ] && break
  folder="$DATA/${PREFIX}_$((seed - FIRST_SEED))"
  synth "$folder" "$FRAMES_PER_FOLDER" "$seed" || { log "rendering seed $seed failed"; break; }
  folders+=("$folder")
  log "rendered $folder"
done
if [ "${#folders[@]}" -lt 4 ]; then log "only ${#folders[@]} folders by RENDER_END"; exit 6; fi
# The runner renders only the phase's validation set (into $DATA): the training frames are
# the folders above, however many were rendered by RENDER_END.
minutes=$("$PY" -c "print(round(max($END_S - $(elapsed) - 60, 60) / 60.0, 2))")
log "training on ${#folders[@]} folders for ~$minutes min"
recipe "data.train=[$(IFS=,; echo "${folders[*]}")]" "time_budget_minutes=$minutes" \
    optim.epochs=200 max_steps_per_epoch=100 eval_every_epochs=1000 max_eval_frames=50 \
    optim.lr=5.0e-4 optim.lr_decay_per_epoch=0.93 keep_epoch_checkpoints=false \
    || { log "training failed"; exit 7; }
log "done"
