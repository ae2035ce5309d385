"""The settings that shape a vector: one frozen object, and the fingerprint derived from it.

The fingerprint is a vector's *identity*: what it means (weights, adapter, kind
and these settings).  Collections, served model names and stores compare it, so
a collection built in fp32 on one machine opens in bf16 or on a GPU on another.
*How* a vector was computed (dtype, device) changes its last bits only; that
matters to the on-disk cache alone, which keys on :func:`cache_key`.  Keeping the
settings in one frozen object, and hashing that object, means there is no second
list to forget a field in and no attribute to reassign after the fingerprint was taken.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..errors import InvalidArgumentError, InvalidTypeError, positive_int
from .prompting import DEFAULT_TEMPLATE, validate_template

#: How a prompt's hidden states become one vector (computed in :mod:`.pooling`).
PoolingMode = Literal["last_prompt_token", "mask_mean", "mean_answer_tokens"]
POOLING_MODES: tuple[str, ...] = get_args(PoolingMode)
DEFAULT_POOLING: dict[str, PoolingMode] = {"causal": "last_prompt_token", "masked": "mask_mean"}
_SUPPORTED: dict[str, set[str]] = {
    "causal": {"last_prompt_token", "mean_answer_tokens"},
    "masked": {"mask_mean"},
}


def resolve_pooling(pooling: str | None, kind: str) -> PoolingMode:
    """The pooling for a model kind, or a clear error when the pair makes no sense."""
    if pooling is None:
        return DEFAULT_POOLING[kind]
    if pooling not in POOLING_MODES:
        raise InvalidArgumentError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
    if pooling not in _SUPPORTED[kind]:
        raise InvalidArgumentError(
            f"pooling {pooling!r} does not apply to a {kind} LM; use one of {sorted(_SUPPORTED[kind])}"
        )
    return pooling  # type: ignore[return-value]


__all__ = [
    "DEFAULT_POOLING",
    "FINGERPRINT_FORMAT",
    "INPUT_LAYOUTS",
    "MIN_MAX_LENGTH",
    "POOLING_MODES",
    "POSTPROCESSES",
    "TRANSFORMS",
    "EmbeddingSettings",
    "PoolingMode",
    "cache_key",
    "fingerprint",
    "legacy_fingerprints",
    "resolve_pooling",
]

#: Bumped when the meaning of the hashed fields changes.  Format 1 (release 0.1.0) also
#: hashed the dtype; :func:`legacy_fingerprints` still recognises its fingerprints.
FINGERPRINT_FORMAT = 2

InputLayout = Literal["template", "text_pair"]
Transform = Literal["none", "lm_head_transform"]
Postprocess = Literal["none", "zscore"]
INPUT_LAYOUTS: tuple[str, ...] = get_args(InputLayout)
TRANSFORMS: tuple[str, ...] = get_args(Transform)
POSTPROCESSES: tuple[str, ...] = get_args(Postprocess)
#: Where None means "the model's default" (a known checkpoint's recipe, else the plain InBedder one).
_RECIPE_DEFAULTS = {"input_layout": "template", "transform": "none", "postprocess": "none"}
#: The shortest prompt budget that leaves room for a template and a few tokens of text.
MIN_MAX_LENGTH = 8


@dataclass(frozen=True)
class EmbeddingSettings:
    """How a text becomes a vector, validated before any model loads.

    ``None`` means "the model's default" (for a known checkpoint, its recipe's
    value); an engine holds the :meth:`resolved` copy, where every field is concrete.
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
    """Answer positions averaged: the masks appended for a masked LM (``mask_mean``), or the
    tokens ``mean_answer_tokens`` generates (ignored by ``last_prompt_token``)."""
    input_layout: InputLayout | None = None
    """``template`` (the InBedder prompt), or ``text_pair``: the text and ``instruction + masks``
    as a tokenizer pair, no template (KomeijiForce/inbedder-roberta-large; masked LMs only)."""
    transform: Transform | None = None
    """``none``, or ``lm_head_transform``: each mask state passes through the masked-LM head's
    dense layer, gelu and layer norm (not its vocabulary decoder) before averaging."""
    postprocess: Postprocess | None = None
    """``none``, or ``zscore``: each vector minus its mean, divided by its (unbiased) std."""

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
        for name, allowed in (
            ("input_layout", INPUT_LAYOUTS),
            ("transform", TRANSFORMS),
            ("postprocess", POSTPROCESSES),
        ):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise InvalidArgumentError(f"{name} must be one of {allowed}, got {value!r}")

    def resolved(
        self, kind: str, num_layers: int, recipe: EmbeddingSettings | None = None
    ) -> EmbeddingSettings:
        """A copy where every field is concrete: unset ones from ``recipe`` (a known
        checkpoint's), then the kind's defaults; a combination that cannot work is refused."""
        unset = {
            name: getattr(recipe, name)
            for name in ("pooling", "layer", *_RECIPE_DEFAULTS)
            if recipe is not None and getattr(self, name) is None
        }
        merged = dataclasses.replace(self, **unset)
        concrete = {name: getattr(merged, name) or default for name, default in _RECIPE_DEFAULTS.items()}
        if kind != "masked":
            for name in ("input_layout", "transform"):
                if concrete[name] != _RECIPE_DEFAULTS[name]:
                    raise InvalidArgumentError(f"{name}={concrete[name]!r} applies to masked LMs only")
        return dataclasses.replace(
            merged,
            pooling=resolve_pooling(merged.pooling, kind),
            layer=resolve_layer(merged.layer, num_layers),
            **concrete,
        )

    def fingerprint_fields(self) -> dict[str, Any]:
        """The fields that shape a vector, as hashed (each only where it is used)."""
        fields = dataclasses.asdict(self)
        if self.pooling == "last_prompt_token":
            fields["answer_tokens"] = None
        if self.input_layout == "text_pair":
            fields["template"] = None
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
    """A stable id of what the vectors mean: ``<model>@<hash>``.

    ``model_facts`` are the loaded model's (weights and adapter digests, kind),
    not its dtype or device; ``settings`` must be resolved, so that "the default
    pooling" and the pooling it resolves to give one fingerprint.
    """
    return _hashed(
        display_name, {"format": FINGERPRINT_FORMAT, **model_facts, **settings.fingerprint_fields()}
    )


def cache_key(fingerprint: str, dtype: str, device_type: str) -> str:
    """The on-disk cache's key: the identity plus how the vector was computed, so an fp32
    vector is never served to a bf16 engine (or a CPU one to a GPU engine), nor the reverse."""
    return f"{fingerprint}|{dtype}|{device_type}"


#: The dtypes a format-1 fingerprint may have been taken in.
_LEGACY_DTYPES = ("float32", "bfloat16", "float16")


def legacy_fingerprints(
    display_name: str, model_facts: dict[str, Any], settings: EmbeddingSettings
) -> set[str]:
    """The format-1 fingerprints (release 0.1.0) of these vectors, one per dtype they may have
    been computed in: collections written then still open.  Empty for settings that release
    could not express (the text_pair layout, a transform, post-processing, other mask counts)."""
    if (settings.input_layout, settings.transform, settings.postprocess) != ("template", "none", "none"):
        return set()
    if settings.pooling == "mask_mean" and settings.answer_tokens != 3:
        return set()
    old_settings = {
        "pooling": settings.pooling,
        "layer": settings.layer,
        "template": settings.template,
        "max_length": settings.max_length,
        "answer_tokens": settings.answer_tokens if settings.pooling == "mean_answer_tokens" else None,
    }
    return {
        _hashed(display_name, {"format": 1, **model_facts, "dtype": dtype, **old_settings})
        for dtype in _LEGACY_DTYPES
    }


def _hashed(display_name: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f"{display_name}@{hashlib.sha256(canonical.encode()).hexdigest()[:20]}"
