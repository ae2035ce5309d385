"""e6's weight scale: the shipped adapter's answer KL to the untuned base on 48 seeded wide rows.

Printed 2026-12-07 16:15 UTC: shipped vs base on 48 wide rows: answer KL mean 12.370, CE mean 0.859

After e6 (`python docs/results/dev/plans/e6-kl0.py runs/e6-kl`, 18:40 UTC, the same rows):
runs/e6-kl vs base on 48 wide rows: answer KL mean 3.784, CE mean 0.774
"""

import gzip
import json
import random
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from inbedder_integrations import DEFAULT_TEMPLATE, InBedder
from inbedder_integrations.engine.loading import DEFAULT_ADAPTER_DIR
from inbedder_integrations.training.base_kl import answer_kl
from inbedder_integrations.training.train import ExampleEncoder, answer_end_id

torch.set_num_threads(1)
adapter = sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_ADAPTER_DIR)
name = "shipped" if len(sys.argv) == 1 else adapter
source = InBedder.from_pretrained("default", dtype="float32").info()["source"]
with gzip.open("data/inbedder-qa-v2.jsonl.gz", "rt") as handle:
    rows = [json.loads(line) for line in handle]
random.Random(0).shuffle(rows)
base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
model = PeftModel.from_pretrained(base, adapter).eval()
encoder = ExampleEncoder(
    AutoTokenizer.from_pretrained(source), DEFAULT_TEMPLATE, 128, masked=False, eos_id=answer_end_id(base)
)
kls, ces = [], []
with torch.no_grad():
    for row in rows[:48]:
        example = encoder.encode(row)
        ids, labels = torch.tensor([example["input_ids"]]), torch.tensor([example["labels"]])
        tuned = model(input_ids=ids, labels=labels)
        with model.disable_adapter():
            untuned = model(input_ids=ids).logits
        kls.append(answer_kl(tuned.logits, untuned, labels, causal=True).item())
        ces.append(tuned.loss.item())
mean_kl, mean_ce = sum(kls) / len(kls), sum(ces) / len(ces)
print(f"{name} vs base on 48 wide rows: answer KL mean {mean_kl:.3f}, CE mean {mean_ce:.3f}")
