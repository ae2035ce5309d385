"""LangChain: ``InBedderEmbeddings``, a drop-in ``Embeddings`` with instructions."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .arguments import adapter_arguments
from .errors import missing_extra
from .instructed import build_embedder
from .local import InstructedEmbedder

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("langchain", "langchain-core") from exc

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_classic.embeddings import CacheBackedEmbeddings
    from langchain_core.stores import ByteStore

    from .corpus import InstructedCorpus
    from .remote import RemoteEmbedder

__all__ = [
    "InBedderEmbeddings",
    "InstructedRetriever",
    "corpus_store",
    "llm_chooser",
]


#: LangChain's names for our fields (langchain-huggingface's ``HuggingFaceEmbeddings`` uses ``model_name``).
_ALIASES = {"model_name": "model"}


class InBedderEmbeddings(BaseModel, Embeddings):
    """InBedder embeddings for LangChain.

    Example:
        .. code-block:: python

            from inbedder_integrations.langchain import InBedderEmbeddings

            embeddings = InBedderEmbeddings(instruction="What is the topic of this text?")
            vectors = embeddings.embed_documents(["Our team won the cup!"])

    ``model_name`` is an alias of ``model`` (langchain-huggingface's name); an unknown argument
    raises :class:`~inbedder_integrations.arguments.UnknownArgumentError` naming the closest
    known one, before any model loads.
    """

    model: str = Field(default="default", alias="model_name")
    """``"default"``, a hub id, a local model folder or a ``.gguf`` file (alias: ``model_name``)."""
    instruction: str | None = Field(default=None, strict=True)
    """The question asked of every document, e.g. ``"What is the topic?"`` (required unless
    ``server_url`` is given: then the server's)."""
    query_instruction: str | None = Field(default=None, strict=True)
    """The question asked of queries; defaults to ``instruction`` (InBedder asks both the same)."""
    batch_size: int = Field(default=16, gt=0)
    """Texts per forward pass."""
    normalize: bool = True
    """L2-normalise the vectors (cosine similarity = dot product)."""
    show_progress: bool = False
    """Show a progress bar while embedding documents."""
    device: str | None = None
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"auto"`` (the default: a GPU when there is
    one); goes into ``model_kwargs["device"]``.  A device this machine lacks is an error."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Passed to ``InBedder.from_pretrained`` (``dtype``, ``device``, ``adapter``, ``pooling``...)."""
    server_url: str | None = None
    """An ``inbedder serve`` URL to embed with instead of a local model (see :meth:`from_server`)."""
    served_name: str | None = None
    """The served name: documents go under it, queries under ``<name>:query``."""
    api_key: SecretStr | None = None
    """The server's bearer key."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)

    _embedder: InstructedEmbedder | RemoteEmbedder = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        """Aliases renamed, ``device`` merged and checked, unknown names refused, all as
        :class:`~inbedder_integrations.errors.InBedderError` s that pydantic does not wrap."""
        fields = type(self).model_fields
        super().__init__(**adapter_arguments(type(self).__name__, data, fields, _ALIASES))

    def model_post_init(self, context: Any, /) -> None:
        self._embedder = build_embedder(
            server_url=self.server_url,
            served_name=self.served_name,
            api_key=self.api_key.get_secret_value() if self.api_key else None,
            model=self.model,
            instruction=self.instruction,
            query_instruction=self.query_instruction,
            model_kwargs=self.model_kwargs,
            batch_size=self.batch_size,
            normalize=self.normalize,
            show_progress=self.show_progress,
        )
        self.instruction = self._embedder.instruction
        self.query_instruction = self._embedder.query_instruction

    @classmethod
    def from_server(
        cls, base_url: str, name: str, api_key: str | None = None, **fields: Any
    ) -> InBedderEmbeddings:
        """Embeddings from a running ``inbedder serve``: documents under ``name``, queries under
        ``name:query`` (which plain OpenAI clients cannot ask for); ``base_url`` with or
        without ``/v1``.  The instructions, fingerprint and cache keys are the server's."""
        key = SecretStr(api_key) if api_key is not None else None
        return cls(server_url=base_url, served_name=name, api_key=key, **fields)

    @classmethod
    def from_corpus(cls, corpus: InstructedCorpus, instruction: str, **fields: Any) -> InBedderEmbeddings:
        """Embeddings for the collection of ``corpus`` under ``instruction``: the corpus's model
        and load options, the collection's persisted instructions (its query question too)."""
        return cls(**corpus.embedder_settings(instruction), **fields)

    def close(self) -> None:
        """Release this object's engine (its model too, if no other live engine uses it)."""
        self._embedder.close()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._embedder.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._embedder.aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await self._embedder.aembed_query(text)

    @property
    def fingerprint(self) -> str:
        """The engine fingerprint: changes whenever the vectors would."""
        return self._embedder.fingerprint

    @property
    def cache_namespace(self) -> str:
        """Pass as ``namespace`` to ``CacheBackedEmbeddings.from_bytes_store``.

        That cache keys on the text alone; this namespace holds the engine's cache
        key (fingerprint, dtype, device type), both instructions and ``normalize``, so
        no vector from another instruction, model, dtype or normalisation is served.  To cache queries too,
        use :meth:`cache_backed`: with ``query_embedding_cache=True``, that class keeps
        queries and documents under one key, which is wrong when their instructions differ.
        """
        return self._embedder.cache_namespace

    @property
    def query_cache_namespace(self) -> str:
        """The namespace of cached query vectors (``cache_namespace`` when both instructions agree)."""
        return self._embedder.query_cache_namespace

    def cache_backed(
        self, store: ByteStore, *, query_cache: bool = False, batch_size: int | None = None
    ) -> CacheBackedEmbeddings:
        """These embeddings behind LangChain's ``CacheBackedEmbeddings``, keyed safely.

        Documents are cached in ``store`` under :attr:`cache_namespace`; with
        ``query_cache=True`` queries too, under :attr:`query_cache_namespace`, so a
        query vector is never served for a document of the same text (or the reverse).
        """
        try:
            from langchain_classic.embeddings import CacheBackedEmbeddings
        except ImportError as exc:
            raise missing_extra("langchain", "langchain-classic") from exc

        documents = CacheBackedEmbeddings.from_bytes_store(
            self, store, namespace=self.cache_namespace, batch_size=batch_size, key_encoder="sha256"
        )
        if not query_cache:
            return documents
        queries = CacheBackedEmbeddings.from_bytes_store(
            self, store, namespace=self.query_cache_namespace, key_encoder="sha256"
        )
        return CacheBackedEmbeddings(
            self,
            documents.document_embedding_store,
            batch_size=batch_size,
            query_embedding_store=queries.document_embedding_store,
        )


class InstructedRetriever(BaseRetriever):
    """Retrieves from the collection of an :class:`~inbedder_integrations.corpus.InstructedCorpus`
    whose instruction fits the question (see :mod:`inbedder_integrations.routing`).

    Each document's metadata names the instruction it was found under
    (``inbedder_instruction``), with its ``score``.

    Example:
        .. code-block:: python

            retriever = InstructedRetriever(corpus=corpus, descriptions={
                "What is the topic?": "the subject: sport, business, politics...",
                "How does the writer feel?": "the writer's mood: happy, angry, sad...",
            })
            documents = retriever.invoke("Which articles sound furious?")
    """

    corpus: Any
    """The :class:`~inbedder_integrations.corpus.InstructedCorpus` to search."""
    k: int = Field(default=4, gt=0)
    """Documents returned (``invoke(question, k=2)`` overrides it per call)."""
    descriptions: dict[str, str] | None = None
    """Instruction -> what its answers are about (default: every indexed instruction, by its text)."""
    top: int = Field(default=1, gt=0)
    """Search the ``top`` best-fitting instructions and merge by score."""
    llm: Any = None
    """A LangChain chat model or LLM that picks the instruction instead (see :func:`llm_chooser`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        from .routing import routed_search

        choose = llm_chooser(self.llm) if self.llm is not None else None
        _, hits = routed_search(
            self.corpus, query, k=k or self.k, descriptions=self.descriptions, top=self.top, choose=choose
        )
        return [
            Document(page_content=hit.text, metadata={**hit.metadata, "score": hit.score}, id=hit.id)
            for hit in hits
        ]


def corpus_store(corpus: InstructedCorpus, instruction: str) -> Chroma:
    """A ``langchain_chroma.Chroma`` vector store over the collection of ``corpus`` under
    ``instruction``, embedding with :meth:`InBedderEmbeddings.from_corpus`."""
    from langchain_chroma import Chroma

    return Chroma(
        client=corpus.client,
        collection_name=corpus.collection_name(instruction),
        embedding_function=InBedderEmbeddings.from_corpus(corpus, instruction),
    )


def llm_chooser(llm: Any) -> Callable[[str, Mapping[str, str]], str]:
    """A routing choice made by ``llm``: it is shown the numbered descriptions and the question,
    and the first number in its answer picks the instruction (the first, if it names none)."""

    def choose(question: str, routes: Mapping[str, str]) -> str:
        instructions = list(routes)
        listed = "\n".join(f"{n}. {description}" for n, description in enumerate(routes.values(), start=1))
        prompt = (
            f"Which of these collections answers the question best?\n{listed}\n\n"
            f"Question: {question}\nAnswer with the collection's number only."
        )
        reply = llm.invoke(prompt)
        text = reply if isinstance(reply, str) else str(getattr(reply, "content", reply))
        number = next((int(token) for token in re.findall(r"\d+", text)), 1)
        return instructions[number - 1] if 1 <= number <= len(instructions) else instructions[0]

    return choose
