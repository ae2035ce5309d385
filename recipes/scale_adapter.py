"""Move a LoRA adapter part of the way back to its base model (issue 35: "regularise the adapter
towards the base model"), as WiSE-FT interpolates weights: W = W0 + s * dW.

A LoRA update is dW = (lora_alpha / r) * B @ A, so scaling ``lora_alpha`` by ``s`` scales the whole
update and nothing else; the weights are copied byte for byte.

    python recipes/scale_adapter.py inbedder_integrations/assets/smollm2-135m-inbedder 0.5 runs/wise-0.5

``--layers 20:30`` scales only those blocks' updates (Python range: from 20 up to, not including,
30), by multiplying their ``lora_B`` weights; the other blocks keep theirs, so that which blocks
hold what the adapter learnt can be measured (issue 35's run e2, docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path
from typing import Any

_LAYER = re.compile(r"\.layers\.(\d+)\.")


def scale_adapter(source: Path, scale: float, output: Path, layers: range | None = None) -> Path:
    """Copy ``source`` to ``output`` with its update scaled by ``scale`` (0: the base model, 1: as is),
    in every block or only in ``layers``."""
    if not 0.0 <= scale <= 1.0:
        raise SystemExit(f"scale must be within [0, 1], got {scale}")
    if output.exists():
        raise SystemExit(f"{output} exists: choose a new folder")
    if layers is not None:
        weights = _scaled_weights(source, scale, layers)  # refused before anything is written
        shutil.copytree(source, output)
        _save(weights, output / "adapter_model.safetensors")
        return output
    config = json.loads((source / "adapter_config.json").read_text())
    if config.get("alpha_pattern"):
        raise SystemExit("per-module alpha_pattern is not supported: scale each entry by hand")
    config["lora_alpha"] = config["lora_alpha"] * scale
    shutil.copytree(source, output)
    (output / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return output


def _scaled_weights(folder: Path, scale: float, layers: range) -> dict[str, Any]:
    """The adapter's weights with the ``lora_B`` of the blocks in ``layers`` times ``scale``
    (dW = B @ A scales with B)."""
    from safetensors.torch import load_file

    weights = load_file(str(folder / "adapter_model.safetensors"))
    scaled = 0
    for name, tensor in weights.items():
        found = _LAYER.search(name)
        if "lora_B" in name and found and int(found.group(1)) in layers:
            weights[name] = (tensor.float() * scale).to(tensor.dtype)
            scaled += 1
    if not scaled:
        raise SystemExit(f"no lora_B weights in blocks {layers.start}:{layers.stop} of {folder}")
    return weights


def _save(weights: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    save_file(weights, str(path), metadata={"format": "pt"})


def _layer_range(text: str) -> range:
    start, _, stop = text.partition(":")
    try:
        return range(int(start), int(stop))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers takes START:STOP, such as 20:30, not {text!r}") from None


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("source", type=Path, help="a PEFT LoRA adapter folder")
    parser.add_argument("scale", type=float, help="the share of the update kept, in [0, 1]")
    parser.add_argument("output", type=Path, help="a new folder for the scaled adapter")
    parser.add_argument("--layers", type=_layer_range, default=None, help="START:STOP, the blocks to scale")
    args = parser.parse_args()
    scale_adapter(args.source, args.scale, args.output, args.layers)


if __name__ == "__main__":
    main()
