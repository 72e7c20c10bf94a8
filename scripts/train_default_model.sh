#!/usr/bin/env bash
# Reproduce the bundled default Panda model (models/panda_default): render the synthetic sets,
# train stage 1, evaluate. One command, resumable: rendering skips finished frames, the trunk
# cache is reused, and training resumes from its last checkpoint when RESUME=1.
#
#   bash scripts/train_default_model.sh                 # this project's CPU recipe (2 cores:
#                                                       # ~0.75 min render per 1,000 frames,
#                                                       # ~0.6 min trunk cache per 1,000 views,
#                                                       # ~9 min per epoch of 16k views)
#   DEVICE=cuda bash scripts/train_default_model.sh     # the GPU recipe: more frames, the whole
#                                                       # network fine-tuned (no trunk cache)
# Four phases: every head on the TAG loss (EPOCHS, MINUTES); then the keypoint heatmaps alone
# (config/train/panda_keypoints.yaml; KP_MINUTES) from the first phase's artifact; then the same
# keypoint training on 3x the frames (MORE_TRAIN; the second phase levels off memorising its
# views, so the third renders more frames rather than taking more steps); then once more on as
# many fresh frames with the trunk's last stage trained too; then on as many fresh frames again
# with its last two stages trained.
# Knobs (environment): DEVICE, NUM_TRAIN, MORE_TRAIN, NUM_VAL, EPOCHS, MINUTES, KP_MINUTES,
# WORKERS, DATA_DIR, RUN_DIR, KP_RUN_DIR, MORE_RUN_DIR, FRESH_RUN_DIR, STAGES_RUN_DIR, RESUME.
# Extra arguments
# are training overrides (key.sub=value).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-.venv/bin/python}"
DATA="${DATA_DIR:-data}"
RUN="${RUN_DIR:-runs/panda_stage1}"
WORKERS="${WORKERS:-$(nproc)}"
DEVICE="${DEVICE:-cpu}"
if [ "$DEVICE" = cpu ]; then
  NUM_TRAIN="${NUM_TRAIN:-8000}"
  RECIPE=("optim.epochs=${EPOCHS:-3}" "optim.lr_decay_per_epoch=0.6")
else
  # An H100's 30 minutes: 5x the frames, the trunk fine-tuned end to end (no cache).
  NUM_TRAIN="${NUM_TRAIN:-40000}"
  RECIPE=("data.cache_trunk=false" "optim.batch_size=64" "optim.epochs=${EPOCHS:-8}"
          "optim.lr=1.0e-3" "optim.lr_decay_per_epoch=0.8" "data.num_workers=${WORKERS}")
fi
# One lens per DREAM folder (its _camera_settings.json K holds for every frame), so the training
# frames are rendered as FOLDERS folders with their own seeds (and lenses).
FOLDERS="${FOLDERS:-8}"
render_train() {   # $1 prefix, $2 frames in all, $3 first seed (default 1); a frame depends on
                   # (seed, index) alone, and the benchmarks' sets use seeds 1001 and up
  for ((i = 0; i < FOLDERS; i++)); do
    "$PY" -m robotag_ros.data.cli --robot panda --out "$DATA/$1_$i" \
        --num $(($2 / FOLDERS)) --seed $((${3:-1} + i)) --size 640x480 \
        --config config/synth/dr_default.yaml --workers "$WORKERS" --no-progress
  done
}
folders() {   # $1 prefix -> the FOLDERS folders, comma-separated (a data.train list)
  local out=()
  for ((i = 0; i < FOLDERS; i++)); do out+=("$DATA/$1_$i"); done
  (IFS=,; echo "${out[*]}")
}
render_train panda_train "$NUM_TRAIN"
"$PY" -m robotag_ros.data.cli --robot panda --out "$DATA/panda_val" --num "${NUM_VAL:-200}" \
    --seed 1001 --size 640x480 --config config/synth/dr_default.yaml --workers "$WORKERS" \
    --no-progress
resume=()
if [ "${RESUME:-0}" = 1 ]; then resume=(--resume); fi
"$PY" -m robotag_ros.training.cli train --config config/train/panda_stage1.yaml "${resume[@]}" \
    "data.train=[$(folders panda_train)]" "data.val=[$DATA/panda_val]" "run_dir=$RUN" \
    "artifact_out=$RUN/panda_default" "device=$DEVICE" "time_budget_minutes=${MINUTES:-0}" \
    "keep_epoch_checkpoints=true" "${RECIPE[@]}" "$@"
# The keypoint lifter that starts the fit trains on forward kinematics alone (no images).
"$PY" -m robotag_ros.training.lifter --artifact "$RUN/panda_default" --minutes "${LIFTER_MINUTES:-6}"
# Second phase: the keypoint heatmaps alone (what the fit reads), with context blocks in the neck.
KP_RUN="${KP_RUN_DIR:-${RUN}_keypoints}"
KP_RECIPE=()
if [ "$DEVICE" != cpu ]; then KP_RECIPE=("data.cache_trunk=false" "optim.batch_size=64"); fi
"$PY" -m robotag_ros.training.cli train --config config/train/panda_keypoints.yaml "${resume[@]}" \
    "data.train=[$(folders panda_train)]" "data.val=[$DATA/panda_val]" "run_dir=$KP_RUN" \
    "init_from=$RUN/panda_default" "artifact_out=$KP_RUN/panda_default" "device=$DEVICE" \
    "time_budget_minutes=${KP_MINUTES:-0}" "${KP_RECIPE[@]}" "$@"
# Third phase: 3x the frames (the same seeds, so the first NUM_TRAIN are among them; own folders,
# so the earlier phases' data stay as they were), fewer epochs, a lower rate.
render_train panda_more "${MORE_TRAIN:-$((3 * NUM_TRAIN))}"
MORE_RUN="${MORE_RUN_DIR:-${RUN}_more_frames}"
"$PY" -m robotag_ros.training.cli train --config config/train/panda_keypoints.yaml "${resume[@]}" \
    "data.train=[$(folders panda_more)]" "data.val=[$DATA/panda_val]" "run_dir=$MORE_RUN" \
    "init_from=$KP_RUN/panda_default" "artifact_out=$MORE_RUN/panda_default" "device=$DEVICE" \
    "optim.epochs=3" "optim.lr=5.0e-4" "optim.lr_decay_per_epoch=0.7" "${KP_RECIPE[@]}" "$@"
# Fourth phase: as many fresh frames again (seeds 9-16), one cached view each, and the trunk's
# stride-32 stage trains too (trained_trunk_stages=1: the frozen ImageNet features are what
# tells look-alike links apart; on a GPU the whole trunk trains anyway).
render_train panda_fresh "${MORE_TRAIN:-$((3 * NUM_TRAIN))}" $((1 + FOLDERS))
FRESH_RUN="${FRESH_RUN_DIR:-${RUN}_last_stage}"
LAST_RECIPE=("data.cache_views_per_frame=1" "trained_trunk_stages=1")
if [ "$DEVICE" != cpu ]; then LAST_RECIPE=("${KP_RECIPE[@]}"); fi
"$PY" -m robotag_ros.training.cli train --config config/train/panda_keypoints.yaml "${resume[@]}" \
    "data.train=[$(folders panda_fresh)]" "data.val=[$DATA/panda_val]" "run_dir=$FRESH_RUN" \
    "init_from=$MORE_RUN/panda_default" "artifact_out=$FRESH_RUN/panda_default" "device=$DEVICE" \
    "optim.epochs=3" "optim.lr=3.0e-4" "optim.lr_decay_per_epoch=0.7" "${LAST_RECIPE[@]}" "$@"
# Fifth phase: fresh frames once more (seeds 17-24), the trunk's stride-16 stage trains too
# (trained_trunk_stages=2, rerun on the cached stride-8 outputs; ~2.4 s a step of 32 here).
render_train panda_fresh2 "${MORE_TRAIN:-$((3 * NUM_TRAIN))}" $((1 + 2 * FOLDERS))
STAGES_RUN="${STAGES_RUN_DIR:-${RUN}_two_stages}"
STAGES_RECIPE=("data.cache_views_per_frame=1" "trained_trunk_stages=2")
if [ "$DEVICE" != cpu ]; then STAGES_RECIPE=("${KP_RECIPE[@]}"); fi
"$PY" -m robotag_ros.training.cli train --config config/train/panda_keypoints.yaml "${resume[@]}" \
    "data.train=[$(folders panda_fresh2)]" "data.val=[$DATA/panda_val]" "run_dir=$STAGES_RUN" \
    "init_from=$FRESH_RUN/panda_default" "artifact_out=$STAGES_RUN/panda_default" \
    "device=$DEVICE" "optim.epochs=2" "optim.lr=3.0e-4" "optim.lr_decay_per_epoch=0.7" \
    "${STAGES_RECIPE[@]}" "$@"
# ...and 350 steps of a third epoch (what the 8-hour limit left), resumed from the second's end.
"$PY" -m robotag_ros.training.cli train --config config/train/panda_keypoints.yaml --resume \
    "data.train=[$(folders panda_fresh2)]" "data.val=[$DATA/panda_val]" "run_dir=$STAGES_RUN" \
    "init_from=$FRESH_RUN/panda_default" "artifact_out=$STAGES_RUN/panda_default" \
    "device=$DEVICE" "optim.epochs=3" "optim.lr=3.0e-4" "optim.lr_decay_per_epoch=0.7" \
    "max_steps_per_epoch=${STAGES_LAST_STEPS:-350}" "eval_every_epochs=99" \
    "${STAGES_RECIPE[@]}" "$@"
echo "[train_default_model] artifact: $STAGES_RUN/panda_default; measure it with"
echo "  PYTHONPATH=. $PY benchmarks/default_model.py --model $STAGES_RUN/panda_default"
