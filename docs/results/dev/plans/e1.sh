#!/bin/bash
# issue 35, run e1 (plan: e1.plan.md, fixed before any number of it was read): the shipped adapter's
# update halved (WiSE-style), then trained again on the set the shipped adapter was trained on, less the
# held-out wordings. Pinned to core 0, one thread.
set -e
cd /work/main
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
[ -d runs/wise-0.5 ] || .venv/bin/python recipes/scale_adapter.py \
  inbedder_integrations/assets/smollm2-135m-inbedder 0.5 runs/wise-0.5
[ -f runs/narrow-clean.jsonl.gz ] || .venv/bin/python - <<'PY'
import gzip, json
from inbedder_integrations.evaluation.heldout_families import forbidden_instruction
kept = dropped = 0
with gzip.open("data/inbedder-qa.jsonl.gz", "rt") as src, gzip.open("runs/narrow-clean.jsonl.gz", "wt") as out:
    for line in src:
        if forbidden_instruction(json.loads(line)["instruction"]) is None:
            out.write(line); kept += 1
        else:
            dropped += 1
print(f"kept {kept}, dropped {dropped} rows with a held-out wording")
PY
exec taskset -c 0 .venv/bin/inbedder train --data runs/narrow-clean.jsonl.gz --init-adapter runs/wise-0.5 \
  --lora-layers 10 --output runs/e1-wise-narrow --max-length 128 --batch-size 8 --lr 2e-4 \
  --max-steps 600 --save-steps 100 --logging-steps 20 --save-dtype bfloat16 --seed 0
