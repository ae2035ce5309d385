"""The model card of a training run: what was trained, on what, how fast, and how well.

Why a separate file: :mod:`.train` runs the training; this writes down, for a
reader and for the tests, everything the run depended on (``inbedder_card.json``
and ``README.md`` in the output folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..engine.digests import file_digest, folder_digest
from .lora import init_adapter_folder

if TYPE_CHECKING:
    from .config import TrainConfig, TrainResult

__all__ = ["add_evaluation_to_card", "card_markdown", "run_record", "write_model_card"]


def _file_sha256(data: str) -> str | None:
    """sha256 of a local data file (None for a hub dataset id)."""
    path = Path(data)
    return file_digest(path) if path.is_file() else None


def _adapter_record(init_adapter: str) -> dict[str, Any]:
    """Where a continued run started: the folder, its weights' sha256, and the LoRA shape that won."""
    folder = init_adapter_folder(init_adapter)
    adapter = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    weights = next(
        (
            folder / name
            for name in ("adapter_model.safetensors", "adapter_model.bin")
            if (folder / name).is_file()
        ),
        None,
    )
    modules = adapter.get("target_modules")
    return {
        "path": str(folder),
        "weights_sha256": file_digest(weights) if weights else None,
        "r": adapter.get("r"),
        "lora_alpha": adapter.get("lora_alpha"),
        "target_modules": sorted(modules) if isinstance(modules, list) else modules,
    }


def run_record(
    config: TrainConfig, row_counts: dict[str, int], use_bf16: bool, result: TrainResult, trainable: int
) -> dict[str, Any]:
    """What the card adds about this run: files and rows, the init adapter, bf16, speed."""
    run: dict[str, Any] = {
        "rows_by_file": row_counts,
        "data_file_sha256": _file_sha256(config.data),
        "lora_layers": config.lora_layers,
        "trainable_parameters": trainable,
        "bf16": use_bf16,
        "examples_per_second": result.examples_per_second,
    }
    if config.replay is not None:
        run["replay"] = {
            "path": config.replay,
            "file_sha256": _file_sha256(config.replay),
            "rows": row_counts.get(f"replay:{config.replay}", 0),
            "fraction": config.replay_fraction,
        }
    if config.init_adapter:
        run["init_adapter"] = _adapter_record(config.init_adapter)
        run["init_adapter_digest"] = folder_digest(init_adapter_folder(config.init_adapter))
    return run


def write_model_card(
    output_dir: Path,
    config: TrainConfig,
    base_name: str,
    base_digest: str,
    result: TrainResult,
    rows: list[dict[str, str]],
    run: dict[str, Any] | None = None,
) -> None:
    """``inbedder_card.json`` and ``README.md``: what was trained, on what, how, and how well."""
    data_hash = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
    card = {
        "base_model": base_name,
        "base_weights": base_digest,
        "kind": "lora-adapter" if config.lora else "full-model",
        "data": config.data,
        "data_rows": len(rows),
        "data_sha256": data_hash,
        "config": dataclasses.asdict(config),
        "seed": config.seed,
        **(run or {}),
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "first_losses": result.losses[:3],
        "last_losses": result.losses[-3:],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "evaluation": {},  # filled in by `inbedder eval --card <folder>`
    }
    if result.kl_to_base:
        card.update(first_kl_to_base=result.kl_to_base[:3], last_kl_to_base=result.kl_to_base[-3:])
    (output_dir / "inbedder_card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (output_dir / "README.md").write_text(card_markdown(card), encoding="utf-8")


def add_evaluation_to_card(folder: Path, evaluation: dict[str, Any]) -> None:
    """Record an ``inbedder eval`` report in an existing model card (JSON and markdown)."""
    path = folder / "inbedder_card.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --card must name a folder written by `inbedder train`")
    card = json.loads(path.read_text(encoding="utf-8"))
    card["evaluation"] = evaluation
    path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(card_markdown(card), encoding="utf-8")


def card_markdown(card: dict[str, Any]) -> str:
    config = card["config"]
    lines = [
        f"# InBedder {card['kind']} for {card['base_model']}",
        "",
        f"Trained with `{config['command'] or 'inbedder train'}`.",
        "",
        f"- base weights: `{card['base_weights']}`",
        f"- data: `{card['data']}`, {card['data_rows']} rows, sha256 `{card['data_sha256'][:16]}`",
        f"- steps: {card['steps']}, seed {card['seed']}, {card['train_seconds']} s on {card['machine']}",
        f"- loss: {card['first_losses']} -> {card['last_losses']}",
        *_run_lines(card),
    ]
    evaluation = card.get("evaluation") or {}
    if "markdown" in evaluation:
        lines += ["", "## Evaluation", "", evaluation["markdown"]]
    elif evaluation:
        lines += ["", "## Evaluation", "", "```json", json.dumps(evaluation, indent=2), "```"]
    return "\n".join(lines) + "\n"


def _run_lines(card: dict[str, Any]) -> list[str]:
    """The card's lines on continued training, replay and speed (absent from older cards)."""
    lines = []
    if card.get("init_adapter"):
        adapter = card["init_adapter"]
        sha = (adapter["weights_sha256"] or "")[:16]
        lines.append(f"- continued from `{adapter['path']}` (weights sha256 `{sha}`, r {adapter['r']})")
    if card.get("lora_layers"):
        lines.append(f"- LoRA trained on the top {card['lora_layers']} blocks only")
    if card.get("replay"):
        replay = card["replay"]
        sha = (replay["file_sha256"] or "")[:16]
        lines.append(f"- replay: `{replay['path']}`, {replay['rows']} rows, sha256 `{sha}`")
    if card.get("last_kl_to_base"):
        lines.append(f"- answer KL to the base: {card['first_kl_to_base']} -> {card['last_kl_to_base']}")
    if "bf16" in card:
        speed = card.get("examples_per_second")
        lines.append(f"- bf16 autocast {'on' if card['bf16'] else 'off'}, {speed} examples/s")
    return lines
