"""LlamaIndex: ``InBedderEmbedding``, a ``BaseEmbedding`` with instructions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .arguments import adapter_arguments
from .errors import missing_extra
from .instructed import build_embedder
from .local import InstructedEmbedder
from .validation import validate_texts

try:
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    from pydantic import Field, PrivateAttr, SecretStr, model_validator
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("llama-index", "llama-index-core") from exc

if TYPE_CHECKING:
    from llama_index.core import VectorStoreIndex

    from .corpus import InstructedCorpus
    from .remote import RemoteEmbedder
    from .routing import Chooser

__all__ = [
    "InBedderEmbedding",
    "InstructedRetriever",
    "corpus_index",
]


#: Our names and llama-index's ``HuggingFaceEmbedding``'s for the same fields.
_ALIASES = {"model": "model_name", "text_instruction": "instruction", "batch_size": "embed_batch_size"}


class InBedderEmbedding(BaseEmbedding):
    """InBedder embeddings for LlamaIndex.

    ``get_text_embedding_batch`` (and its async twin) validate the whole batch
    first, then hand the engine chunks of ``embed_batch_size`` texts.

    Aliases: ``model`` for ``model_name``, ``text_instruction`` (``HuggingFaceEmbedding``'s name)
    for ``instruction``, ``batch_size`` for ``embed_batch_size``.  An unknown argument raises
    :class:`~inbedder_integrations.arguments.UnknownArgumentError` naming the closest known one.
    """

    model_name: str = Field(default="default", description="'default', a hub id, a folder or a .gguf file.")
    instruction: str | None = Field(
        default=None, strict=True, description="The question asked of every document (a server's: its own)."
    )
    query_instruction: str | None = Field(
        default=None, strict=True, description="The question asked of queries; defaults to `instruction`."
    )
    embed_batch_size: int = Field(default=16, gt=0, le=2048, description="Texts per forward pass.")
    normalize: bool = Field(default=True, description="L2-normalise the vectors.")
    show_progress: bool = Field(default=False, description="Show the engine's progress bar while embedding.")
    device: str | None = Field(
        default=None,
        description="'cpu', 'cuda', 'mps' or 'auto' (default); goes into model_kwargs['device'].",
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Passed to InBedder.from_pretrained (dtype, device, adapter...)."
    )

    server_url: str | None = Field(default=None, description="An `inbedder serve` URL (see from_server).")
    served_name: str | None = Field(default=None, description="Documents under it, queries as <name>:query")
    api_key: SecretStr | None = Field(default=None, description="The server's bearer key.")

    _embedder: InstructedEmbedder | RemoteEmbedder = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        """Aliases renamed, ``device`` merged and checked, unknown names refused (LlamaIndex
        would ignore them), all as :class:`~inbedder_integrations.errors.InBedderError` s."""
        fields = type(self).model_fields
        super().__init__(**adapter_arguments(type(self).__name__, data, fields, _ALIASES))

    @model_validator(mode="after")
    def _build_embedder(self) -> InBedderEmbedding:
        self._embedder = build_embedder(
            server_url=self.server_url,
            served_name=self.served_name,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            model=self.model_name,
            instruction=self.instruction,
            query_instruction=self.query_instruction,
            model_kwargs=self.model_kwargs,
            batch_size=self.embed_batch_size,
            normalize=self.normalize,
            show_progress=self.show_progress,
        )
        self.instruction = self._embedder.instruction
        self.query_instruction = self._embedder.query_instruction
        if self.embeddings_cache is not None and self._embedder.query_instruction != self.instruction:
            raise ValueError(
                "embeddings_cache keys on the text alone and shares one collection between queries "
                "and documents, so it cannot tell a query vector from a document vector of the same "
                "text when query_instruction differs from instruction. Use one instruction, or no cache."
            )
        return self

    @classmethod
    def from_server(
        cls, base_url: str, name: str, api_key: str | None = None, **fields: Any
    ) -> InBedderEmbedding:
        """Embeddings from a running ``inbedder serve``: documents under ``name``, queries under
        ``name:query`` (LlamaIndex's OpenAI-like and TEI classes send one name for both)."""
        key = SecretStr(api_key) if api_key is not None else None
        return cls(server_url=base_url, served_name=name, api_key=key, **fields)

    @classmethod
    def from_corpus(cls, corpus: InstructedCorpus, instruction: str, **fields: Any) -> InBedderEmbedding:
        """Embeddings for the collection of ``corpus`` under ``instruction``: the corpus's model
        and load options, the collection's persisted instructions (its query question too)."""
        return cls(**corpus.embedder_settings(instruction), **fields)

    @classmethod
    def class_name(cls) -> str:
        return "InBedderEmbedding"

    @property
    def fingerprint(self) -> str:
        return self._embedder.fingerprint

    @property
    def cache_namespace(self) -> str:
        """Name a dedicated ``embeddings_cache`` store after this: cache key + instructions."""
        return self._embedder.cache_namespace

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        """Checks the whole batch first: LlamaIndex cuts it into ``embed_batch_size`` chunks, so a
        bad item would otherwise be named by its index within its chunk, after earlier chunks ran."""
        validate_texts(texts)
        return super().get_text_embedding_batch(texts, show_progress, **kwargs)

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        validate_texts(texts)
        return await super().aget_text_embedding_batch(texts, show_progress, **kwargs)

    def close(self) -> None:
        """Release this object's engine (its model too, if no other live engine uses it)."""
        self._embedder.close()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await self._embedder.aembed_query(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0]

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._embedder.aembed_documents([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await self._embedder.aembed_documents(texts)


class InstructedRetriever(BaseRetriever):
    """Retrieves from the collection of an :class:`~inbedder_integrations.corpus.InstructedCorpus`
    whose instruction fits the question (see :mod:`inbedder_integrations.routing`); each node's
    metadata names the instruction it was found under (``inbedder_instruction``)."""

    def __init__(
        self,
        corpus: InstructedCorpus,
        *,
        similarity_top_k: int = 4,
        descriptions: dict[str, str] | None = None,
        top: int = 1,
        choose: Chooser | None = None,
    ) -> None:
        """``descriptions``: instruction -> what its answers are about; ``top``: search that many
        of the best-fitting instructions and merge by score; ``choose``: pick another way."""
        self.corpus, self.similarity_top_k = corpus, similarity_top_k
        self.descriptions, self.top, self.choose = descriptions, top, choose
        super().__init__()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        from .routing import routed_search

        _, hits = routed_search(
            self.corpus, query_bundle.query_str, k=self.similarity_top_k,
            descriptions=self.descriptions, top=self.top, choose=self.choose,
        )  # fmt: skip
        return [
            NodeWithScore(node=TextNode(text=hit.text, id_=hit.id, metadata=hit.metadata), score=hit.score)
            for hit in hits
        ]


def corpus_index(corpus: InstructedCorpus, instruction: str) -> VectorStoreIndex:
    """A LlamaIndex ``VectorStoreIndex`` over the collection of ``corpus`` under ``instruction``,
    embedding with :meth:`InBedderEmbedding.from_corpus`."""
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    store = ChromaVectorStore(chroma_collection=corpus.collection(instruction))
    return VectorStoreIndex.from_vector_store(
        store, embed_model=InBedderEmbedding.from_corpus(corpus, instruction)
    )
