#!/bin/bash
# issue 35, e2 (plan: e2.plan.md): the shipped update halved in the top 10 blocks only, then in the lower
# 20 only; each on the dev split, fp32, core 1.
set -e
cd /work/main
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
shipped=inbedder_integrations/assets/smollm2-135m-inbedder
[ -d runs/wise-top-0.5 ] || .venv/bin/python recipes/scale_adapter.py $shipped 0.5 runs/wise-top-0.5 --layers 20:30
[ -d runs/wise-low-0.5 ] || .venv/bin/python recipes/scale_adapter.py $shipped 0.5 runs/wise-low-0.5 --layers 0:20
for run in wise-top-0.5 wise-low-0.5; do
  echo "$(date -u +%T) evaluating $run"
  taskset -c 1 .venv/bin/inbedder eval --split dev --dtype float32 --adapter runs/$run \
    --no-cache --output runs/$run/dev-eval
done
echo "$(date -u +%T) done"
