#!/bin/bash
# issue 35, run e3 (plan: e3.plan.md): yes/no answered in balance, from the shipped adapter. Core 1 (e1 holds core 0).
set -e
cd /work/main
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
[ -f runs/e3-yesno.jsonl.gz ] || .venv/bin/python - <<'PY'
import collections, gzip, json, random
from inbedder_integrations.evaluation.heldout_families import forbidden_instruction

def rows(path):
    with gzip.open(path, "rt") as handle:
        for line in handle:
            row = json.loads(line)
            if forbidden_instruction(row["instruction"]) is None:
                yield row

narrow = list(rows("data/inbedder-qa.jsonl.gz"))
by_question = collections.defaultdict(lambda: collections.defaultdict(list))
for row in narrow:
    if row["family"] == "yes/no":
        by_question[row["instruction"]][row["output"].strip().lower()].append(row)
rng = random.Random(0)
balanced = []
for question, answers in sorted(by_question.items()):
    yes, no = answers.get("yes", []), answers.get("no", [])
    n = min(len(yes), len(no))
    balanced += rng.sample(yes, n) + rng.sample(no, n)
wide = [row for row in rows("data/inbedder-qa-v2.jsonl.gz")
        if row["output"].strip().lower() in {"yes", "no"} and row["family"] not in {"yes/no", "sentiment"}]
train = balanced + wide
replay = [row for row in narrow if row["family"] != "yes/no"]
for path, chosen in (("runs/e3-yesno.jsonl.gz", train), ("runs/e3-replay.jsonl.gz", replay)):
    with gzip.open(path, "wt") as out:
        for row in chosen:
            out.write(json.dumps(row) + "\n")
counts = collections.Counter(row["output"].strip().lower() for row in train)
print(f"e3 rows: {len(balanced)} old yes/no (balanced) + {len(wide)} wide = {len(train)}, answers {dict(counts)}; "
      f"replay {len(replay)}")
PY
exec taskset -c 1 .venv/bin/inbedder train --data runs/e3-yesno.jsonl.gz --replay runs/e3-replay.jsonl.gz \
  --replay-fraction 0.5 --init-adapter default --lora-layers 10 --output runs/e3-yesno --max-length 128 \
  --batch-size 8 --lr 1e-4 --max-steps 500 --save-steps 100 --logging-steps 20 --save-dtype bfloat16 --seed 0
