"""Write the untuned base model's consistent short answers to open questions as a training file
(issue 35: keep what the base model already answers; see ``training/selfdistill.py``).

    python recipes/self_distill.py --texts-from data/inbedder-qa-v2.jsonl.gz --limit 400 \\
        --output data/inbedder-self.jsonl.gz

Then train on it beside the labelled families, e.g. ``inbedder train --data data/inbedder-qa-v2.jsonl.gz
--replay data/inbedder-self.jsonl.gz --replay-fraction 0.3 ...``.  A provenance file is written next to
the output (the command, the base model's fingerprint, rows kept per question, the sha256).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

from inbedder_integrations import InBedder
from inbedder_integrations.training.selfdistill import distill_rows, source_texts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--texts-from", type=Path, required=True, help="a training file whose inputs are asked"
    )
    parser.add_argument(
        "--limit", type=int, default=400, help="texts asked (each is asked every question twice)"
    )
    parser.add_argument("--output", type=Path, required=True, help="the .jsonl.gz to write")
    parser.add_argument("--dtype", default="auto", help="the base model's dtype (auto: bf16 where native)")
    parser.add_argument("--seed", type=int, default=0, help="which texts are taken")
    args = parser.parse_args()
    engine = InBedder.from_pretrained("default", adapter=None, dtype=args.dtype)
    texts = source_texts(args.texts_from, args.limit, seed=args.seed)
    rows = list(distill_rows(engine, texts))
    with gzip.open(args.output, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    provenance = {
        "rows": len(rows), "texts": len(texts), "sha256": digest,
        "command": " ".join(["python", *sys.argv]), "base_model_fingerprint": engine.fingerprint,
        "dtype": str(engine.dtype), "kept_per_question": Counter(row["instruction"] for row in rows),
    }  # fmt: skip
    Path(f"{args.output}.provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")


if __name__ == "__main__":
    main()
