"""Deprecated alias of :mod:`inbedder_integrations.labellers` (kept for one release): the
labellers moved below both training and evaluation, which each read them."""

from __future__ import annotations

from ..labellers import (
    ENTITY_LABELS,
    PLACE_ALIASES,
    SENTIMENT_THRESHOLD,
    SHORT_TEXT_TOKENS,
    SPACY_DISTRIBUTION,
    SPACY_MODEL,
    entity_labels,
    entity_labels_of,
    entity_pipeline,
    sentiment_scorer,
    vader_sentiment,
)

__all__ = [
    "ENTITY_LABELS",
    "PLACE_ALIASES",
    "SENTIMENT_THRESHOLD",
    "SHORT_TEXT_TOKENS",
    "SPACY_DISTRIBUTION",
    "SPACY_MODEL",
    "entity_labels",
    "entity_labels_of",
    "entity_pipeline",
    "sentiment_scorer",
    "vader_sentiment",
]
