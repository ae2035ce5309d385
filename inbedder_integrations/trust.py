"""What a persisted config may make this process do, and what needs the process's own word.

Chroma stores an embedding function's config with the collection and rebuilds the function
from it in every process that opens the collection.  Whoever can write one collection of a
shared database (a team's ``chroma run``, a folder on a network drive, a copy from a
colleague) writes that config.  So a config is data, not permission:

- it may name a model, an adapter and the settings that shape the vectors;
- it may not turn on ``trust_remote_code`` (runs the model's own Python code) or
  ``allow_pickle`` (a full unpickler) unless ``$INBEDDER_TRUST_PERSISTED`` lists them;
- it may not name a server unless ``$INBEDDER_TRUSTED_SERVERS`` lists that server: texts
  and a key would go there;
- it never chooses the environment variable a key is read from: a rebuilt function reads
  ``$INBEDDER_API_KEY``, the caller's own variable.

Anything else is refused with an :class:`~inbedder_integrations.errors.UntrustedConfigError`
before any model loads or any request is sent.  A function passed explicitly (Chroma's
``embedding_function=``, :func:`~inbedder_integrations.chroma.open_collection`'s
``function=``) is the process's own word and needs none of these settings.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidArgumentError, InvalidTypeError, UntrustedConfigError

__all__ = [
    "API_KEY_ENV",
    "GUARDED_OPTIONS",
    "PERSISTED_OPTIONS",
    "TRUSTED_SERVERS_ENV",
    "TRUST_PERSISTED_ENV",
    "check_persisted_options",
    "check_persisted_server",
    "server_origin",
]

#: The variable a rebuilt remote function (and ``inbedder search --server``) reads its key from.
API_KEY_ENV = "INBEDDER_API_KEY"
#: Servers a persisted config may name: URLs separated by commas or spaces.
TRUSTED_SERVERS_ENV = "INBEDDER_TRUSTED_SERVERS"
#: Guarded load options a persisted config may turn on: names separated by commas or spaces.
TRUST_PERSISTED_ENV = "INBEDDER_TRUST_PERSISTED"

#: ``from_pretrained`` options a persisted config may set: they shape the vectors (and the
#: fingerprint checks that they still do) or how they are computed, and run no code.
PERSISTED_OPTIONS = frozenset(
    {
        *("adapter", "pooling", "layer", "dtype", "device", "max_length", "template"),
        *("batch_size", "max_batch_tokens", "answer_tokens", "input_layout", "transform"),
        *("postprocess", "checkpoint", "revision"),
    }
)
#: Options that let a model run code of its own; only this process may turn them on.
GUARDED_OPTIONS = frozenset({"trust_remote_code", "allow_pickle"})


def _listed(variable: str) -> list[str]:
    return [item for item in os.environ.get(variable, "").replace(",", " ").split() if item]


def check_persisted_options(options: Any, *, collection: str = "the collection") -> dict[str, Any]:
    """``options`` (a persisted ``model_kwargs``) if this process lets a config set them; else an
    error naming the option and how to allow it.  Guarded options that are off pass."""
    if not isinstance(options, dict):
        raise InvalidTypeError(f"{collection}'s persisted model_kwargs must be an object, got {options!r}")
    allowed = set(_listed(TRUST_PERSISTED_ENV))
    for key, value in options.items():
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise InvalidTypeError(f"{collection}'s persisted model_kwargs[{key!r}] must be a JSON scalar")
        if key in GUARDED_OPTIONS:
            if value not in (False, None) and key not in allowed:
                raise UntrustedConfigError(
                    f"{collection} asks to load its model with {key}={value!r}, which only this process "
                    f"may allow: set ${TRUST_PERSISTED_ENV}={key} if you trust whoever wrote the "
                    f"collection, or pass the embedding function yourself"
                )
        elif key not in PERSISTED_OPTIONS:
            raise UntrustedConfigError(
                f"{collection} asks for the load option {key!r}, which a persisted config may not set "
                f"(it may set {', '.join(sorted(PERSISTED_OPTIONS))}); pass the embedding function yourself"
            )
    return dict(options)


def server_origin(url: str) -> tuple[str, str, int, str]:
    """``url``'s scheme, host, port (the scheme's default if none) and path, as compared."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"a server must be an http(s) URL, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidArgumentError(f"a server must be an http(s) URL with a valid port: {url!r}") from None
    path = parts.path.rstrip("/").removesuffix("/v1")
    return parts.scheme, parts.hostname.lower(), port, path


def check_persisted_server(url: Any, *, collection: str = "the collection") -> str:
    """``url`` if ``$INBEDDER_TRUSTED_SERVERS`` lists it (same scheme, host, port and path); else an
    error naming the server and how to allow it, before anything is sent there."""
    if not isinstance(url, str):
        raise InvalidTypeError(f"{collection}'s persisted server_url must be a str, got {url!r}")
    wanted = server_origin(url)
    for trusted in _listed(TRUSTED_SERVERS_ENV):
        try:
            if server_origin(trusted) == wanted:
                return url
        except InvalidArgumentError:
            message = f"${TRUSTED_SERVERS_ENV} lists {trusted!r}, not an http(s) URL"
            raise InvalidArgumentError(message) from None
    raise UntrustedConfigError(
        f"{collection} embeds through the server {url!r}, which would receive your texts and "
        f"${API_KEY_ENV}: add it to ${TRUSTED_SERVERS_ENV} if you trust it, or pass the embedding "
        f"function yourself (InBedderEmbeddingFunction.from_server)"
    )
