#!/bin/bash
# issue 35, run e5 (plan: e5.plan.md): e4's recipe for 1200 steps; dev eval of checkpoints 600, 900, 1200.
set -e
cd /work/main
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
[ -d runs/top-zero ] || .venv/bin/python recipes/scale_adapter.py \
  inbedder_integrations/assets/smollm2-135m-inbedder 0 runs/top-zero --layers 20:30
# Trainer keeps only the newest 2 checkpoints: copy each committed one (its manifest written) aside.
mkdir -p runs/e5-top-long/kept
( while :; do
    for c in runs/e5-top-long/checkpoints/checkpoint-*; do
      [ -f "$c/inbedder_checkpoint.json" ] && [ ! -d "runs/e5-top-long/kept/${c##*/}" ] && cp -r "$c" runs/e5-top-long/kept/
    done; sleep 20
  done ) & watcher=$!
.venv/bin/inbedder train --data data/inbedder-qa-v2.jsonl.gz --replay runs/narrow-clean.jsonl.gz \
  --replay-fraction 0.5 --init-adapter runs/top-zero --lora-layers 10 --output runs/e5-top-long \
  --max-length 128 --batch-size 8 --lr 2e-4 --max-steps 1200 --save-steps 300 --logging-steps 20 \
  --save-dtype bfloat16 --seed 0
sleep 25; kill $watcher
for step in 1200 900 600; do
  ckpt=runs/e5-top-long/kept/checkpoint-$step
  echo "$(date -u +%T) evaluating $ckpt"
  [ -f runs/e5-top-long/dev-eval-$step/report.json ] || .venv/bin/inbedder eval --split dev --dtype float32 \
    --adapter "$ckpt" --no-cache --output runs/e5-top-long/dev-eval-$step
done
echo "$(date -u +%T) done"
