"""Move a LoRA adapter part of the way back to its base model (issue 35: "regularise the adapter
towards the base model"), as WiSE-FT interpolates weights: W = W0 + s * dW.

A LoRA update is dW = (lora_alpha / r) * B @ A, so scaling ``lora_alpha`` by ``s`` scales the whole
update and nothing else; the weights are copied byte for byte.

    python recipes/scale_adapter.py inbedder_integrations/assets/smollm2-135m-inbedder 0.5 runs/wise-0.5
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def scale_adapter(source: Path, scale: float, output: Path) -> Path:
    """Copy ``source`` to ``output`` with its update scaled by ``scale`` (0: the base model, 1: as is)."""
    if not 0.0 <= scale <= 1.0:
        raise SystemExit(f"scale must be within [0, 1], got {scale}")
    if output.exists():
        raise SystemExit(f"{output} exists: choose a new folder")
    shutil.copytree(source, output)
    config_path = output / "adapter_config.json"
    config = json.loads(config_path.read_text())
    if config.get("alpha_pattern"):
        raise SystemExit("per-module alpha_pattern is not supported: scale each entry by hand")
    config["lora_alpha"] = config["lora_alpha"] * scale
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    return output


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("source", type=Path, help="a PEFT LoRA adapter folder")
    parser.add_argument("scale", type=float, help="the share of the update kept, in [0, 1]")
    parser.add_argument("output", type=Path, help="a new folder for the scaled adapter")
    args = parser.parse_args()
    scale_adapter(args.source, args.scale, args.output)


if __name__ == "__main__":
    main()
