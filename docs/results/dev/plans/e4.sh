#!/bin/bash
# issue 35, run e4 (plan: e4.plan.md): the top 10 blocks trained afresh on the wide set, the lower 20 kept.
set -e
cd /work/main
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
[ -d runs/top-zero ] || .venv/bin/python recipes/scale_adapter.py \
  inbedder_integrations/assets/smollm2-135m-inbedder 0 runs/top-zero --layers 20:30
.venv/bin/inbedder train --data data/inbedder-qa-v2.jsonl.gz --replay runs/narrow-clean.jsonl.gz \
  --replay-fraction 0.5 --init-adapter runs/top-zero --lora-layers 10 --output runs/e4-top-fresh \
  --max-length 128 --batch-size 8 --lr 2e-4 --max-steps 300 --save-steps 50 --logging-steps 20 \
  --save-dtype bfloat16 --seed 0
ckpt=$(ls -d runs/e4-top-fresh/checkpoints/checkpoint-* | sort -t- -k2 -n | tail -1)
echo "$(date -u +%T) evaluating $ckpt"
.venv/bin/inbedder eval --split dev --dtype float32 --adapter "$ckpt" --no-cache --output runs/e4-top-fresh/dev-eval
