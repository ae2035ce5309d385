#!/bin/bash
# issue 35, run f1 (plan: f1.plan.md): a fresh adapter on all 30 blocks, the wide set with 0.3 replay,
# 4,000 steps, run in chunks of at most 80 minutes (rerun this script to resume); the dev eval of
# checkpoints 2000 and 4000 once they exist.
set -e
cd /work/main
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
lscpu | grep -m1 "Model name"; lscpu | grep -o 'avx512_bf16' | head -1 || true
mkdir -p runs/f1-fresh/kept  # before the replay set: a fresh machine has no runs/
[ -f runs/narrow-clean.jsonl.gz ] || .venv/bin/python - <<'PY'
import gzip, json
from inbedder_integrations.evaluation.heldout_families import forbidden_instruction
with gzip.open("data/inbedder-qa.jsonl.gz", "rt") as src, gzip.open("runs/narrow-clean.jsonl.gz", "wt") as out:
    out.writelines(line for line in src if forbidden_instruction(json.loads(line)["instruction"]) is None)
PY
# Trainer keeps only the newest 2 checkpoints: copy the candidates (once committed) aside.
( while :; do
    for step in 2000 4000; do
      c=runs/f1-fresh/checkpoints/checkpoint-$step
      [ -f "$c/inbedder_checkpoint.json" ] && [ ! -d runs/f1-fresh/kept/checkpoint-$step ] && cp -r "$c" runs/f1-fresh/kept/
    done; sleep 20
  done ) & watcher=$!
status=0
timeout --signal=INT --kill-after=120 "${F1_CHUNK:-80m}" .venv/bin/inbedder train \
  --data data/inbedder-qa-v2.jsonl.gz --replay runs/narrow-clean.jsonl.gz --replay-fraction 0.3 \
  --output runs/f1-fresh --max-length 128 --batch-size 8 --lr 2e-4 --max-steps 4000 --save-steps 200 \
  --logging-steps 20 --save-dtype bfloat16 --seed 0 || status=$?
sleep 25; kill $watcher
echo "$(date -u +%T) train exited with $status"
for step in 2000 4000; do
  ckpt=runs/f1-fresh/kept/checkpoint-$step
  [ -d "$ckpt" ] || continue
  [ -f runs/f1-fresh/dev-eval-$step/report.json ] || .venv/bin/inbedder eval --split dev --dtype float32 \
    --adapter "$ckpt" --no-cache --output runs/f1-fresh/dev-eval-$step
done
echo "$(date -u +%T) done"
