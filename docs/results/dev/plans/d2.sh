#!/bin/bash
# issue 35, run d2 (fixed 2026-12-07 04:17 UTC, before any number of it was read): the wide set with
# half replay of the committed set, continued from the shipped adapter at half d1's learning rate,
# LoRA on the top 10 blocks. Pinned to core 0, one thread, so the session's other work cannot starve it.
cd /work/main
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec taskset -c 0 .venv/bin/inbedder train --data data/inbedder-qa-v2.jsonl.gz \
  --replay data/inbedder-qa.jsonl.gz --replay-fraction 0.5 --init-adapter default --lora-layers 10 \
  --output runs/d2-wide-replay50 --max-length 128 --batch-size 8 --lr 1e-4 --max-steps 800 \
  --save-steps 100 --logging-steps 20 --save-dtype bfloat16 --seed 0
