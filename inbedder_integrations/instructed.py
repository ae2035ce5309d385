"""What an adapter embeds with: an engine's embedder or a server's, picked by :func:`build_embedder`.

This is all the LangChain, LlamaIndex and Chroma adapters share: each one is a thin
translation of its framework's calls into an embedder that :func:`build_embedder` returns,
an :class:`~inbedder_integrations.local.InstructedEmbedder` (a local engine) or a
:class:`~inbedder_integrations.remote.RemoteEmbedder` (an ``inbedder serve`` URL).

Aliases kept for one release (each name's home is given): ``InstructedEmbedder``
(:mod:`.local`), ``QUERY_SUFFIX`` and ``cache_namespace`` (:mod:`.embedder`),
``missing_extra`` (:mod:`.errors`).
"""

from __future__ import annotations

from typing import Any

from .embedder import QUERY_SUFFIX, cache_namespace
from .errors import missing_extra
from .local import InstructedEmbedder
from .remote import RemoteEmbedder
from .spec import EmbedderSpec

__all__ = ["QUERY_SUFFIX", "InstructedEmbedder", "build_embedder", "cache_namespace", "missing_extra"]


def build_embedder(
    *,
    server_url: str | None,
    served_name: str | None,
    api_key: str | None,
    model: str,
    instruction: str | None,
    query_instruction: str | None,
    model_kwargs: dict[str, Any] | None,
    batch_size: int | None,
    normalize: bool,
    show_progress: bool = False,
) -> InstructedEmbedder | RemoteEmbedder:
    """What an adapter embeds with: a local engine, or an ``inbedder serve`` URL (``server_url``
    and ``served_name``), whose instructions must agree with any given here.  The arguments make
    an :class:`~inbedder_integrations.spec.EmbedderSpec`, which builds it."""
    spec = EmbedderSpec(
        model=model,
        instruction=instruction,
        query_instruction=query_instruction,
        model_kwargs=model_kwargs or {},
        batch_size=batch_size,
        normalize=normalize,
        server_url=server_url,
        served_name=served_name,
        api_key=api_key,
    )
    return spec.build(show_progress=show_progress)
