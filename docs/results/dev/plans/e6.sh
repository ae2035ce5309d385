#!/bin/bash
# issue 35, run e6 (plan: e6.plan.md): d2's recipe with a KL term towards the untuned base (--kl-to-base 0.05).
# The weight's scale: the shipped adapter's answer KL to the base, 12.37 nats per answer position on 48
# seeded wide rows, against an answer cross-entropy of 0.86 (measured 16:15 UTC before the plan).
set -e
cd /work/main
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
.venv/bin/inbedder train --data data/inbedder-qa-v2.jsonl.gz --replay runs/narrow-clean.jsonl.gz \
  --replay-fraction 0.5 --init-adapter default --lora-layers 10 --kl-to-base 0.05 --output runs/e6-kl \
  --max-length 128 --batch-size 8 --lr 1e-4 --max-steps 500 --save-steps 100 --logging-steps 20 \
  --save-dtype bfloat16 --seed 0
echo "$(date -u +%T) evaluating runs/e6-kl"
.venv/bin/inbedder eval --split dev --dtype float32 --adapter runs/e6-kl --no-cache --output runs/e6-kl/dev-eval
echo "$(date -u +%T) done"
