"""The settings that shape a vector: one frozen object, and the fingerprint derived from it.

Every on-disk cache entry and every Chroma collection is keyed by the engine's
fingerprint, so a setting that changes the vectors must change the fingerprint.
Keeping those settings in one frozen object, and hashing that object, means
there is no second list to forget a field in and no attribute to reassign after
the fingerprint was taken.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError, InvalidTypeError, positive_int
from .pooling import POOLING_MODES, PoolingMode, resolve_pooling
from .prompting import DEFAULT_TEMPLATE, validate_template

__all__ = ["FINGERPRINT_FORMAT", "MIN_MAX_LENGTH", "EmbeddingSettings", "fingerprint"]

#: Bumped when the meaning of the hashed fields changes, so old cache entries stop matching.
FINGERPRINT_FORMAT = 1
#: The shortest prompt budget that leaves room for a template and a few tokens of text.
MIN_MAX_LENGTH = 8


@dataclass(frozen=True)
class EmbeddingSettings:
    """How a text becomes a vector, validated before any model loads.

    ``pooling=None`` and ``layer=None`` mean "the model's default"; an engine
    holds the :meth:`resolved` copy, where both are concrete.
    """

    pooling: PoolingMode | None = None
    """``last_prompt_token`` (causal default), ``mask_mean`` (masked default) or ``mean_answer_tokens``."""
    layer: int | None = None
    """Hidden-state layer to pool (0 = embeddings, negative counts from the end); None: the last."""
    template: str = DEFAULT_TEMPLATE
    """The prompt, with ``{input}`` and ``{instruction}`` exactly once each."""
    max_length: int = 512
    """Prompt tokens at most; only the input text is cut to fit."""
    answer_tokens: int = 3
    """Answer tokens averaged by ``mean_answer_tokens`` pooling (ignored by the others)."""

    def __post_init__(self) -> None:
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise InvalidArgumentError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.layer is not None and (isinstance(self.layer, bool) or not isinstance(self.layer, int)):
            raise InvalidTypeError(f"layer must be an int or None, got {self.layer!r}")
        validate_template(self.template)
        positive_int("max_length", self.max_length)
        if self.max_length < MIN_MAX_LENGTH:
            raise InvalidArgumentError(
                f"max_length must be an int >= {MIN_MAX_LENGTH}, got {self.max_length!r}"
            )
        positive_int("answer_tokens", self.answer_tokens)

    def resolved(self, kind: str, num_layers: int) -> EmbeddingSettings:
        """A copy with the pooling and layer a model of this kind and depth actually uses."""
        return dataclasses.replace(
            self, pooling=resolve_pooling(self.pooling, kind), layer=resolve_layer(self.layer, num_layers)
        )

    def fingerprint_fields(self) -> dict[str, Any]:
        """The fields that shape a vector, as hashed (answer_tokens only where it is used)."""
        fields = dataclasses.asdict(self)
        if self.pooling != "mean_answer_tokens":
            fields["answer_tokens"] = None
        return fields


def resolve_layer(layer: int | None, num_layers: int) -> int:
    """Index into (embeddings, layer 1, ..., layer N); None means the last layer."""
    if layer is None:
        return num_layers
    if not -(num_layers + 1) <= layer <= num_layers:
        raise InvalidArgumentError(
            f"layer must be an int in [{-(num_layers + 1)}, {num_layers}], got {layer!r}"
        )
    return layer % (num_layers + 1)


def fingerprint(display_name: str, model_facts: dict[str, Any], settings: EmbeddingSettings) -> str:
    """A stable id of everything that shapes the vectors: ``<model>@<hash>``.

    ``model_facts`` are the loaded model's (weights and adapter digests, kind,
    dtype); ``settings`` must be resolved, so that "the default pooling" and
    the pooling it resolves to give one fingerprint.
    """
    fields = {"format": FINGERPRINT_FORMAT, **model_facts, **settings.fingerprint_fields()}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f"{display_name}@{hashlib.sha256(canonical.encode()).hexdigest()[:20]}"
