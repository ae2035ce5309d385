"""Chroma: an embedding function that persists its instruction, and safe collection opening.

Chroma stores an embedding function's ``get_config()`` with the collection and
rebuilds it with ``build_from_config`` on every use, but on reopen compares only
``name()``: a different instruction or model would be accepted silently and mix
vectors.  :func:`open_collection` checks the persisted config and refuses.

The fingerprint compared is the vectors' identity, not how they were computed:
a collection built in fp32 on a laptop opens in bf16 on a server or a GPU, and
the reverse; collections written by release 0.1.0 (whose fingerprints also
hashed the dtype) open too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .arguments import adapter_arguments
from .errors import (
    InBedderError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingError,
    missing_extra,
    positive_int,
)
from .instructed import build_embedder
from .local import InstructedEmbedder
from .spec import CONFIG_KEYS, EmbedderSpec, api_key_from, check_config_shape

if TYPE_CHECKING:
    from .remote import RemoteEmbedder

try:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.errors import ChromaError, NotFoundError
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("chroma", "chromadb") from exc

__all__ = [
    "EMBEDDING_FUNCTION_NAME",
    "InBedderEmbeddingFunction",
    "InstructionMismatchError",
    "open_collection",
    "persisted_config",
]


EMBEDDING_FUNCTION_NAME = "inbedder"
_CONFIG_KEYS = {*CONFIG_KEYS, "fingerprint", "dim"}
#: The constructor's arguments that :func:`adapter_arguments` sees, and Chroma's names for them
#: (``SentenceTransformerEmbeddingFunction`` takes ``model_name``, ``device``, ``normalize_embeddings``).
_ARGUMENTS = (
    *("instruction", "query_instruction", "model", "model_kwargs", "batch_size", "server_url"),
    *("served_name", "api_key_env_var", "device", "normalize", "show_progress"),
)
_ALIASES = {"model_name": "model", "normalize_embeddings": "normalize"}
#: What must match between a persisted config and a requested one: anything else would mix vectors.
_GUARDED_FIELDS = ("instruction", "query_instruction", "dim", "fingerprint")


class InstructionMismatchError(InBedderError, ValueError):
    """A collection was opened with another instruction, model or dimension than it was built with."""

    def __init__(self, collection: str, field: str, persisted: Any, requested: Any) -> None:
        super().__init__(
            f"collection {collection!r} was indexed with {field}={persisted!r}, "
            f"but was opened with {field}={requested!r}. Its vectors would not be comparable. "
            f"Open it with {field}={persisted!r} (or instruction=None to use the persisted settings), "
            f"or index the documents into another collection."
        )
        self.collection, self.field, self.persisted, self.requested = collection, field, persisted, requested


@register_embedding_function
class InBedderEmbeddingFunction(EmbeddingFunction[Documents]):
    """InBedder as a Chroma embedding function (registered as ``"inbedder"``).

    Cheap to construct: the model is loaded once per process and shared.
    """

    def __init__(
        self,
        instruction: str | None = None,
        query_instruction: str | None = None,
        model: str = "default",
        model_kwargs: dict[str, Any] | None = None,
        batch_size: int | None = None,
        *,
        server_url: str | None = None,
        served_name: str | None = None,
        api_key_env_var: str | None = None,
        device: str | None = None,
        normalize: bool = True,
        show_progress: bool = False,
        **aliases: Any,
    ) -> None:
        """``server_url`` and ``served_name``: embed with a running ``inbedder serve`` (see
        :meth:`from_server`); its key is read from ``$api_key_env_var``, which is what Chroma
        persists (never the key).  ``device`` goes into ``model_kwargs`` (and so into the
        collection's config).  Chroma's names are aliases: ``model_name`` for ``model``,
        ``normalize_embeddings`` for ``normalize``; any other name is refused with a hint."""
        given: dict[str, Any] = {"model_kwargs": model_kwargs, "server_url": server_url}
        given.update({"model": model} if model != "default" else {})
        given.update({"device": device} if device is not None else {})
        given.update({"normalize": normalize} if normalize is not True else {})
        given.update(aliases)
        args = adapter_arguments(type(self).__name__, given, _ARGUMENTS, _ALIASES)
        if args.get("normalize", True) is not True:
            raise InvalidArgumentError(
                f"normalize (normalize_embeddings)={args['normalize']!r}: a collection's config does not "
                "record normalisation, so this function always writes unit vectors "
                "(what its cosine space compares anyway)"
            )
        self.model = args.get("model", "default")
        self.model_kwargs = dict(args["model_kwargs"] or {})
        for key, value in self.model_kwargs.items():
            if not isinstance(value, (str, int, float, bool, type(None))):
                raise InvalidTypeError(f"model_kwargs[{key!r}] must be a JSON scalar to persist in Chroma")
        self.server_url, self.served_name, self.api_key_env_var = server_url, served_name, api_key_env_var
        api_key = api_key_from(api_key_env_var)
        self.embedder: InstructedEmbedder | RemoteEmbedder = build_embedder(
            server_url=server_url,
            served_name=served_name,
            api_key=api_key,
            model=self.model,
            instruction=instruction,
            query_instruction=query_instruction,
            model_kwargs=self.model_kwargs,
            batch_size=batch_size,
            normalize=True,
            show_progress=show_progress,
        )
        if server_url is not None:
            self.model = self.embedder.model  # type: ignore[union-attr]

    @classmethod
    def from_server(
        cls, base_url: str, name: str, api_key_env_var: str | None = None
    ) -> InBedderEmbeddingFunction:
        """Embed with a running ``inbedder serve``: documents under ``name``, queries under
        ``name:query`` (Chroma's ``OpenAIEmbeddingFunction`` sends one name for both).  The
        collection records the server's instructions and fingerprint, as in-process ones do."""
        return cls(server_url=base_url, served_name=name, api_key_env_var=api_key_env_var)

    def close(self) -> None:
        """Release this object's engine (its model too, if no other live engine uses it)."""
        self.embedder.close()

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed_documents_array(input))

    def embed_query(self, input: Documents) -> Embeddings:
        return list(self.embedder.embed_queries_array(input))

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def is_legacy(self) -> bool:
        """Never: Chroma's own test rebuilds the function from its config (a model load, or
        requests to a server) and would hold this process's own function to a stranger's rules."""
        return False

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    @property
    def fingerprint(self) -> str:
        return self.embedder.fingerprint

    @property
    def dim(self) -> int:
        return self.embedder.dim

    @property
    def spec(self) -> EmbedderSpec:
        """What this function embeds with, as a value: its instructions as its embedder has them
        (a server's own, for a served one) and never its key, only the key's variable."""
        return EmbedderSpec(
            model=self.model,
            instruction=self.embedder.instruction,
            query_instruction=self.embedder.query_instruction,
            model_kwargs=self.model_kwargs,
            batch_size=self.embedder.batch_size,
            server_url=self.server_url,
            served_name=self.served_name,
            api_key_env_var=self.api_key_env_var,
        )

    @classmethod
    def from_spec(cls, spec: EmbedderSpec) -> InBedderEmbeddingFunction:
        """The function that embeds with ``spec``.  Chroma persists where a key comes from, never
        a key: a served spec names its key's variable (``api_key_env_var``), not the key."""
        if spec.api_key is not None:
            raise InvalidArgumentError(
                "a Chroma embedding function never holds a key: give the spec api_key_env_var instead"
            )
        return cls(
            spec.instruction,
            spec.query_instruction,
            spec.model,
            dict(spec.model_kwargs),
            spec.batch_size,
            server_url=spec.server_url,
            served_name=spec.served_name,
            api_key_env_var=spec.api_key_env_var,
        )

    def get_config(self) -> dict[str, Any]:
        """:attr:`spec`'s config with what the vectors are (``fingerprint``, ``dim``), in the
        order Chroma has always persisted it."""
        spec = self.spec.to_config()
        identity = {"fingerprint": self.fingerprint, "dim": self.dim}
        return {**{key: spec.pop(key) for key in CONFIG_KEYS}, **identity, **spec}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> InBedderEmbeddingFunction:
        """The function a persisted config describes, rebuilt under :mod:`~inbedder_integrations.trust`'s
        rules (:meth:`EmbedderSpec.from_config <inbedder_integrations.spec.EmbedderSpec.from_config>`):
        the config is another party's data, so anything that would run code, contact a server or
        read a variable it names is refused (before any model loads or request is sent) unless
        this process allows it."""
        InBedderEmbeddingFunction.validate_config(config)
        function = InBedderEmbeddingFunction.from_spec(EmbedderSpec.from_config(config))
        field = function.mismatched_field(config)
        if field is not None:
            raise InstructionMismatchError(
                "(persisted config)", field, config.get(field), function.get_config()[field]
            )
        return function

    def mismatched_field(self, persisted: dict[str, Any]) -> str | None:
        """The first guarded field in which ``persisted`` differs from this function, or None.

        The fingerprint matches when this engine accepts it (its own, or a release-0.1.0
        one of the same model and settings in any dtype).
        """
        requested = self.get_config()
        for field in _GUARDED_FIELDS:
            if field == "fingerprint":
                if not self.embedder.accepts_fingerprint(persisted.get(field, "")):
                    return field
            elif persisted.get(field) != requested[field]:
                return field
        return None

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        missing = _CONFIG_KEYS - set(config)
        if missing:
            raise InvalidArgumentError(f"inbedder embedding-function config lacks {sorted(missing)}")
        check_config_shape(config)
        if not isinstance(config["fingerprint"], str) or not config["fingerprint"]:
            fingerprint = config["fingerprint"]
            raise InvalidArgumentError(
                f"inbedder config 'fingerprint' must be a non-empty string, got {fingerprint!r}"
            )
        positive_int("inbedder config 'dim'", config["dim"])

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        for field in _GUARDED_FIELDS:
            if field not in new_config or new_config[field] == old_config.get(field):
                continue
            same_vectors = new_config[field] == self.fingerprint and self.embedder.accepts_fingerprint(
                old_config.get(field, "")
            )
            if field == "fingerprint" and same_vectors:
                continue
            raise InstructionMismatchError("(config update)", field, old_config.get(field), new_config[field])


def persisted_config(collection: Collection) -> dict[str, Any] | None:
    """The inbedder config Chroma stored with a collection, or None if it has another function."""
    function = (collection.configuration_json or {}).get("embedding_function") or {}
    if function.get("name") != EMBEDDING_FUNCTION_NAME:
        return None
    return dict(function.get("config") or {})


def open_collection(
    client: ClientAPI,
    name: str,
    *,
    instruction: str | None,
    query_instruction: str | None = None,
    model: str = "default",
    model_kwargs: dict[str, Any] | None = None,
    create: bool = True,
    metadata: dict[str, Any] | None = None,
    batch_size: int | None = None,
    function: InBedderEmbeddingFunction | None = None,
) -> Collection:
    """Open (or create) a collection whose vectors are InBedder vectors under one instruction.

    ``function``: embed with this one (say :meth:`InBedderEmbeddingFunction.from_server`)
    instead of building one from the arguments; its instructions are the ones checked.

    The persisted configuration records instruction, query instruction, model
    fingerprint and dimension.  Reopening with a different instruction, query
    instruction, model or dimension raises :class:`InstructionMismatchError`;
    ``instruction=None`` reopens with the persisted settings.
    """
    if function is not None:
        instruction, query_instruction = function.embedder.instruction, function.embedder.query_instruction

    def build(query: str | None) -> InBedderEmbeddingFunction:
        assert instruction is not None
        return function or InBedderEmbeddingFunction(instruction, query, model, model_kwargs, batch_size)

    # Given a function, Chroma does not rebuild the persisted one (which loads a model).
    existing = _existing(client, name, function)
    if existing is None:
        if not create:
            raise MissingError(f"no collection named {name!r}; pass create=True to create it")
        if instruction is None:
            raise InvalidArgumentError(
                f"collection {name!r} does not exist yet: an instruction is needed to create it"
            )
        function = build(query_instruction)
        try:
            return client.create_collection(
                name,
                embedding_function=function,  # type: ignore[arg-type]
                metadata=metadata,
                configuration={"hnsw": {"space": "cosine"}},
            )
        except ChromaError as exc:  # "already exists": another process won the race
            existing = _existing(client, name, None)
            if existing is None:
                raise exc from None
    function = _checked_function(existing, instruction, query_instruction, build)
    return client.get_collection(name, embedding_function=function)  # type: ignore[arg-type]


def _existing(client: ClientAPI, name: str, function: InBedderEmbeddingFunction | None) -> Collection | None:
    try:
        return client.get_collection(name, embedding_function=function)  # type: ignore[arg-type]
    except (NotFoundError, ValueError):
        return None


def _checked_function(
    existing: Collection,
    instruction: str | None,
    query_instruction: str | None,
    build: Callable[[str | None], InBedderEmbeddingFunction],
) -> InBedderEmbeddingFunction:
    """The function to reopen ``existing`` with: the persisted one (``instruction=None``), or the
    requested one if it matches what the collection was built with."""
    persisted = persisted_config(existing)
    if persisted is None:
        raise InstructionMismatchError(
            existing.name, "embedding function", "(not inbedder)", EMBEDDING_FUNCTION_NAME
        )
    if instruction is None:
        return InBedderEmbeddingFunction.build_from_config(persisted)
    if query_instruction is None:  # unspecified: keep the persisted query instruction
        query_instruction = persisted.get("query_instruction")
    function = build(query_instruction)
    field = function.mismatched_field(persisted)
    if field is not None:
        raise InstructionMismatchError(
            existing.name, field, persisted.get(field), function.get_config()[field]
        )
    return function
