"""The published InBedder checkpoints, each as the recipe its vectors need.

A checkpoint is more than weights: the original code fixes the prompt layout,
the pooled positions and layer, the number of masks and any post-processing.
Each entry here says all of that, so ``from_pretrained("BrandonZYW/opt-1.3b-InBedder")``,
a local copy with ``checkpoint="BrandonZYW/opt-1.3b-InBedder"``, and a Hugging Face
cache snapshot of it all give the original's vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import InvalidArgumentError
from .settings import EmbeddingSettings

__all__ = ["KNOWN_CHECKPOINTS", "CheckpointSpec", "hub_snapshot", "resolve_checkpoint"]

ModelKind = Literal["causal", "masked"]


@dataclass(frozen=True)
class CheckpointSpec:
    """What shapes a published checkpoint's vectors, as its original inference code computes them."""

    kind: ModelKind
    recipe: EmbeddingSettings
    """Template, pooling, layer (None: the last), masks (``answer_tokens``), input layout,
    transform and post-processing; an argument given to ``from_pretrained`` overrides a field."""
    dim: int
    """Width of the published checkpoint's vectors (opt-350m's last layer is projected to 512)."""
    weights: str
    """The weight files its hub page lists: what loading it does depends on them."""
    source: str
    """The original code the recipe follows."""

    @property
    def pooling(self) -> str | None:
        return self.recipe.pooling


_ORIGINAL_CAUSAL = "lm_encoders_hf/causallm_encoder_hf.py, fst_gen at the last layer"
_ORIGINAL_MASKED = "lm_encoders_hf/maskedlm_encoder_hf.py, avg_gen over 3 masks at the last layer"


def _causal(dim: int, weights: str = "not checked here") -> CheckpointSpec:
    return CheckpointSpec(
        "causal", EmbeddingSettings(pooling="last_prompt_token"), dim, weights, _ORIGINAL_CAUSAL
    )


#: Published InBedder checkpoints, by hub id.
KNOWN_CHECKPOINTS: dict[str, CheckpointSpec] = {
    "BrandonZYW/roberta-large-InBedder": CheckpointSpec(
        "masked",
        EmbeddingSettings(pooling="mask_mean", answer_tokens=3),
        1024,
        "not checked here",
        _ORIGINAL_MASKED,
    ),
    "BrandonZYW/opt-350m-InBedder": _causal(512),
    "BrandonZYW/opt-1.3b-InBedder": _causal(2048),
    "BrandonZYW/opt-2.7b-InBedder": _causal(2560),
    "BrandonZYW/llama-2-7b-InBedder": _causal(4096, "pickle only (pytorch_model.bin)"),
    "KomeijiForce/inbedder-roberta-large": CheckpointSpec(
        "masked",
        EmbeddingSettings(
            pooling="mask_mean",
            answer_tokens=3,
            input_layout="text_pair",
            transform="lm_head_transform",
            postprocess="zscore",
        ),
        1024,
        "pickle only (pytorch_model.bin)",
        "UseCase.ipynb (the model card's notebook)",
    ),
}


def hub_snapshot(path: Path) -> tuple[str, str] | None:
    """``(repo id, commit)`` when ``path`` is a Hugging Face cache snapshot
    (``.../models--Org--Name/snapshots/<commit>``), else None."""
    parts = path.resolve().parts if path.exists() else path.parts
    for index in range(len(parts) - 2):
        name, snapshots, commit = parts[index : index + 3]
        if name.startswith("models--") and snapshots == "snapshots":
            return name.removeprefix("models--").replace("--", "/"), commit
    return None


def resolve_checkpoint(model: str, checkpoint: str | None) -> str | None:
    """The known checkpoint whose recipe applies to ``model``: the one named by
    ``checkpoint=``, else ``model`` itself or the repo of a hub cache snapshot."""
    if checkpoint is not None:
        if checkpoint not in KNOWN_CHECKPOINTS:
            raise InvalidArgumentError(
                f"checkpoint must be one of {sorted(KNOWN_CHECKPOINTS)}, got {checkpoint!r}"
            )
        return checkpoint
    if model in KNOWN_CHECKPOINTS:
        return model
    snapshot = hub_snapshot(Path(model).expanduser())
    if snapshot is not None and snapshot[0] in KNOWN_CHECKPOINTS:
        return snapshot[0]
    return None
