"""What a server serves and how hard it may be pushed: one frozen object, from flags or a file.

Each named instruction is served as a *model name*, so an unmodified OpenAI
client picks its collection's instruction with ``model="topic"``; ``topic:query``
names the same entry's query instruction.  Limits have safe defaults: a server
binds 127.0.0.1, bounds its queue, its request bodies and its batches.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from ..embedder import QUERY_SUFFIX
from ..errors import InvalidArgumentError, InvalidTypeError, positive_int
from ..trust import API_KEY_ENV
from ..validation import validate_instruction

__all__ = [
    "API_KEY_ENV",
    "QUERY_SUFFIX",
    "RESERVED_NAMES",
    "ROUTE_PATHS",
    "ServeConfig",
    "ServedInstruction",
    "check_route_names",
    "default_of",
    "load_config_file",
    "parse_named_instructions",
    "read_api_key",
]

#: The environment variable a server reads its bearer key from when no key file is given.
#: Every path the app serves (FastAPI's docs included); :func:`create_app` checks that these
#: are exactly its routes, so a new route cannot silently take a name clients serve under.
ROUTE_PATHS = (
    *("/v1/embeddings", "/v1/models", "/embed", "/", "/{name}/embed", "/{name}"),
    *("/health", "/info", "/metrics", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"),
    *(
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/favicon.png",
        "/redoc/redoc.standalone.js",
    ),
)
#: Names that are paths of the server's own endpoints (``POST /<name>/embed`` serves a name).
RESERVED_NAMES = tuple(sorted({path.split("/")[1] for path in ROUTE_PATHS} - {"", "{name}"}))


def check_route_names(paths: Iterable[str]) -> None:
    """Refuse an app whose routes differ from :data:`ROUTE_PATHS` (a route added in one place only)."""
    served = set(paths)
    if served != set(ROUTE_PATHS):
        raise RuntimeError(
            f"the app's routes and ROUTE_PATHS differ: {sorted(served ^ set(ROUTE_PATHS))}; "
            "add the route to ROUTE_PATHS so that its name is reserved"
        )


@dataclass(frozen=True)
class ServedInstruction:
    """One model name a client can ask for: documents under ``instruction``, queries under
    ``query_instruction`` (the same question unless told otherwise)."""

    name: str
    instruction: str
    query_instruction: str | None = None
    """None: the same question as ``instruction``."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InvalidArgumentError(
                f"instruction name {self.name!r} must be letters, digits, '-', '_' or '.'"
            )
        if self.name in RESERVED_NAMES:
            raise InvalidArgumentError(
                f"instruction name {self.name!r} is taken by an endpoint: {RESERVED_NAMES}"
            )
        validate_instruction(self.instruction, f"instruction {self.name!r}")
        validate_instruction(self.query, f"query instruction {self.name!r}")

    @property
    def query(self) -> str:
        """The query instruction, resolved."""
        return self.query_instruction or self.instruction


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``inbedder serve`` needs; every limit is checked before the model loads."""

    instructions: tuple[ServedInstruction, ...]
    """The model names served (at least one); the first is ``/embed``'s default."""
    model: str = "default"
    """What :meth:`InBedder.from_pretrained` loads."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Engine settings (dtype, device, pooling, max_length, adapter...)."""
    cache: str | bool = True
    """The on-disk embedding cache: True (the default file), a path, or False."""
    host: str = "127.0.0.1"
    port: int = 8080
    """0: a free port the system picks (for servers started from Python)."""
    api_key: str | None = field(default=None, repr=False)
    """Bearer key every request but ``/health`` must carry; None: no key (local use)."""
    allow_instruction_field: bool = True
    """Whether a request may carry its own ``instruction`` instead of a served name."""
    auto_truncate: bool = False
    """``/embed`` without ``truncate``: cut long texts (True) or refuse them with 413 (False, TEI's
    default).  ``/v1/embeddings`` always cuts the text's end to fit, as the engine does."""
    max_batch_texts: int = 64
    """Texts embedded together at most (across requests and instructions)."""
    max_batch_tokens: int | None = None
    """Prompt tokens embedded together at most, counted after tokenising (None: the engine's
    own budget, 4096).  One budget: the engine runs its forward passes under it too."""
    max_wait_ms: float = 5.0
    """How long the first request of a batch waits for others to join it."""
    max_queue: int = 1024
    """Texts waiting at most; past it requests get 503 with ``Retry-After`` (an idle server
    takes any one request, however many texts ``max_inputs`` lets it hold)."""
    max_inputs: int = 2048
    """Texts in one request at most (413 past it)."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Request body size at most (413 past it)."""
    max_connections: int = 256
    """Open connections (and requests in progress) at most; past it a new one gets uvicorn's 503."""
    header_timeout_s: float = 10.0
    """Seconds a connection may take to send a request's head, from opening or from the previous
    response; a connection that sends nothing, or its headers too slowly, is closed."""
    body_timeout_s: float = 30.0
    """Seconds a request may take to send its body after its head (408 past it)."""
    keep_alive_s: float = 5.0
    """Seconds an idle keep-alive connection stays open after a response."""
    shutdown_grace_s: float = 30.0
    """After SIGTERM: requests still queued at half of it get 503; the process exits within it."""
    allowed_hosts: tuple[str, ...] = ()
    """Host names a key-less server answers besides its bound address, ``localhost`` and IP
    literals: a page rebinding its own domain to 127.0.0.1 cannot name it (see docs/serving.md)."""

    def __post_init__(self) -> None:
        if not self.instructions:
            raise InvalidArgumentError("serve needs at least one instruction: --instruction NAME=QUESTION")
        names = [served.name for served in self.instructions]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise InvalidArgumentError(f"instruction name {name!r} is given twice")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise InvalidArgumentError(f"port must be an int from 0 to 65535, got {self.port!r}")
        if self.max_batch_tokens is not None:
            positive_int("max_batch_tokens", self.max_batch_tokens)
        for limit in (
            "max_batch_texts",
            "max_queue",
            "max_inputs",
            "max_body_bytes",
            "max_connections",
        ):
            positive_int(limit, getattr(self, limit))
        _number_in("max_wait_ms", self.max_wait_ms, 0, 1000)
        for timeout in ("header_timeout_s", "body_timeout_s", "keep_alive_s", "shutdown_grace_s"):
            _number_in(timeout, getattr(self, timeout), 0.1, 3600)
        if isinstance(self.allowed_hosts, str) or not all(isinstance(h, str) for h in self.allowed_hosts):
            raise InvalidTypeError(f"allowed_hosts must be a list of host names, got {self.allowed_hosts!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise InvalidArgumentError("the API key is empty")

    def served(self, name: str) -> str | None:
        """The instruction a model name stands for (``name`` or ``name:query``), or None."""
        base, query = (name[: -len(QUERY_SUFFIX)], True) if name.endswith(QUERY_SUFFIX) else (name, False)
        for served in self.instructions:
            if served.name == base:
                return served.query if query else served.instruction
        return None

    def served_names(self) -> list[str]:
        """Every name :meth:`served` answers: each name, and its ``:query`` name even where the
        query instruction is the same."""
        return [name for served in self.instructions for name in (served.name, served.name + QUERY_SUFFIX)]

    def model_names(self) -> list[tuple[str, str]]:
        """Every name a client can ask for, with its instruction (query names where they differ)."""
        names = []
        for served in self.instructions:
            names.append((served.name, served.instruction))
            if served.query != served.instruction:
                names.append((served.name + QUERY_SUFFIX, served.query))
        return names

    def engine_kwargs(self) -> dict[str, Any]:
        """What :meth:`InBedder.from_pretrained` takes besides the model and the cache."""
        if self.max_batch_tokens is None:
            return dict(self.model_kwargs)
        return {**self.model_kwargs, "max_batch_tokens": self.max_batch_tokens}

    def replace(self, **changes: Any) -> ServeConfig:
        return dataclasses.replace(self, **changes)


def default_of(name: str) -> Any:
    """:class:`ServeConfig`'s default for field ``name``: the one place serve defaults live."""
    for option in dataclasses.fields(ServeConfig):
        if option.name == name:
            if option.default is not dataclasses.MISSING:
                return option.default
            if option.default_factory is not dataclasses.MISSING:
                return option.default_factory()
    raise KeyError(name)


def _number_in(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTypeError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be from {low:g} to {high:g}, got {value}")


def parse_named_instructions(
    documents: list[str] | dict[str, str], queries: list[str] | dict[str, str] | None = None
) -> tuple[ServedInstruction, ...]:
    """``["topic=What is the topic?"]`` (flags) or ``{"topic": "..."}`` (a file) as served entries."""
    named = _named(documents, "--instruction")
    query_named = _named(queries or {}, "--query-instruction")
    for name in query_named:
        if name not in named:
            raise InvalidArgumentError(f"--query-instruction {name}=... names no --instruction {name}=...")
    return tuple(ServedInstruction(name, question, query_named.get(name)) for name, question in named.items())


def _named(values: list[str] | dict[str, str], flag: str) -> dict[str, str]:
    if isinstance(values, dict):
        pairs = list(values.items())
    else:
        pairs = []
        for value in values:
            name, sep, question = value.partition("=")
            if not sep:
                raise InvalidArgumentError(f"{flag} must be NAME=QUESTION, got {value!r}")
            pairs.append((name.strip(), question))
    named: dict[str, str] = {}
    for name, question in pairs:
        if not isinstance(question, str):
            raise InvalidTypeError(f"{flag} {name}: the question must be a string, got {question!r}")
        if name in named:
            raise InvalidArgumentError(f"{flag} {name} is given twice")
        named[name] = question
    return named


#: Config-file keys that map onto :class:`ServeConfig` fields as they are.
_FILE_KEYS = {f.name for f in dataclasses.fields(ServeConfig)} - {"instructions", "api_key"}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML (``.toml``) or YAML (``.yaml``/``.yml``) server config as :class:`ServeConfig`
    keyword arguments; ``instructions``/``query_instructions`` are tables of name = question,
    and ``api_key_file`` names the key's file (a key itself never belongs in a config file)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        data = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        raise InvalidArgumentError(f"{path}: a server config is a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise InvalidTypeError(f"{path}: expected a table of settings at the top")
    unknown = set(data) - _FILE_KEYS - {"instructions", "query_instructions", "api_key_file"}
    if unknown:
        raise InvalidArgumentError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(_FILE_KEYS)}")
    settings = {key: value for key, value in data.items() if key in _FILE_KEYS}
    if isinstance(settings.get("allowed_hosts"), list):
        settings["allowed_hosts"] = tuple(settings["allowed_hosts"])
    if "instructions" in data:
        for key in ("instructions", "query_instructions"):
            if not isinstance(data.get(key, {}), dict):
                raise InvalidTypeError(f"{path}: {key} must be a table of name = question")
        settings["instructions"] = parse_named_instructions(
            data["instructions"], data.get("query_instructions")
        )
    if "api_key_file" in data:
        settings["api_key"] = read_api_key(Path(path.parent, data["api_key_file"]))
    return settings


def read_api_key(key_file: str | Path | None) -> str | None:
    """The bearer key from ``key_file``, else from ``$INBEDDER_API_KEY``, else None; surrounding
    whitespace (a file's or a shell's trailing newline) is dropped from either.  A source that is
    given but holds no key is refused: a server must not start open by accident.  Never logged."""
    if key_file is not None:
        key = Path(key_file).read_text(encoding="utf-8").strip()
        if not key:
            raise InvalidArgumentError(f"the API key file {key_file} is empty")
        return key
    if API_KEY_ENV not in os.environ:
        return None
    key = os.environ[API_KEY_ENV].strip()
    if not key:
        raise InvalidArgumentError(f"${API_KEY_ENV} is set but empty; unset it to serve without a key")
    return key
