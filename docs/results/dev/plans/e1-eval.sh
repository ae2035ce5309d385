#!/bin/bash
# issue 35, run e1's dev evaluation (plan: e1.plan.md): waits for the training to end, then the newest
# checkpoint on the dev split, fp32, core 0.
cd /work/main
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
while pgrep -f "output runs/e1-wise-narrow" >/dev/null; do sleep 20; done
ckpt=$(ls -d runs/e1-wise-narrow/checkpoints/checkpoint-* | sort -t- -k2 -n | tail -1)
echo "$(date -u +%T) evaluating $ckpt"
exec taskset -c 0 .venv/bin/inbedder eval --split dev --dtype float32 --adapter "$ckpt" \
  --no-cache --output runs/e1-wise-narrow/dev-eval
