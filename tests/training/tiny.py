"""The tiny real QA set the training tests run on: two questions, eight texts each."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_rows() -> list[dict[str, str]]:
    topic, feeling = "What is the topic?", "How does the writer feel?"
    rows = [{"instruction": topic, "input": f"Match report {i}: the striker scored.", "output": "football"}
            for i in range(8)]  # fmt: skip
    rows += [{"instruction": feeling, "input": f"I lost my keys again ({i}).", "output": "annoyed"}
             for i in range(8)]  # fmt: skip
    return rows


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
