"""What an embedder is, as a value: a model with its load options, or a server and a served name.

An :class:`EmbedderSpec` is what the adapters, the Chroma embedding function, the corpus and
routing hand around instead of "model + model_kwargs" and a handful of server arguments:

- :meth:`~EmbedderSpec.to_config` is its JSON form (what Chroma persists), never with a key;
- :meth:`~EmbedderSpec.from_config` reads one written by another party: it is the one place
  that applies :mod:`.trust`'s rules (no guarded load option, no untrusted server, never the
  key variable the config names) before anything loads or is sent;
- :meth:`~EmbedderSpec.build` makes the :class:`~inbedder_integrations.embedder.Embedder` it
  describes: an engine's (:mod:`.local`) or a server's (:mod:`.remote`).

Importing this module imports only the ground floor (errors, trust); :meth:`~EmbedderSpec.build`
imports the embedder it builds, so no torch loads until a local one is asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgumentError, InvalidTypeError
from .trust import API_KEY_ENV, check_persisted_options, check_persisted_server

if TYPE_CHECKING:
    from .cache import EmbeddingCache
    from .engine import InBedder
    from .local import InstructedEmbedder
    from .remote import RemoteEmbedder

__all__ = ["CONFIG_KEYS", "SERVER_CONFIG_KEYS", "EmbedderSpec", "api_key_from", "check_config_shape"]

logger = logging.getLogger(__name__)

#: The keys of every spec's config, in the order Chroma has always persisted them.
CONFIG_KEYS = ("model", "instruction", "query_instruction", "model_kwargs")
#: The keys a served spec's config adds.
SERVER_CONFIG_KEYS = ("server_url", "served_name", "api_key_env_var")
_JSON_SCALARS = (str, int, float, bool, type(None))


def api_key_from(variable: str | None) -> str | None:
    """The key held in ``$variable`` (None when no variable is named), read where it is used:
    what is persisted or passed around is the variable's name, never the key."""
    if variable is None:
        return None
    key = os.environ.get(variable)
    if key is None:
        raise InvalidArgumentError(f"${variable} is not set: it holds the server's key")
    return key


@dataclass(frozen=True)
class EmbedderSpec:
    """Either ``model`` with its load options (``model_kwargs``) and both instructions, or a
    server (``server_url``) and the name it serves them under (``served_name``).

    ``query_instruction=None``: the document instruction (local) or the server's own (served).
    A served spec's key is ``api_key`` or, where that is None, ``$api_key_env_var``; only the
    variable's name is ever persisted.
    """

    model: str = "default"
    instruction: str | None = None
    query_instruction: str | None = None
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    normalize: bool = True
    server_url: str | None = None
    served_name: str | None = None
    api_key: str | None = field(default=None, repr=False, compare=False)
    api_key_env_var: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model_kwargs, Mapping):
            raise InvalidTypeError(f"model_kwargs must be a mapping, got {self.model_kwargs!r}")
        object.__setattr__(self, "model_kwargs", MappingProxyType(dict(self.model_kwargs)))

    @property
    def served(self) -> bool:
        """Whether a server computes the vectors."""
        return self.server_url is not None

    # ------------------------------------------------------------------ config

    def to_config(self) -> dict[str, Any]:
        """The JSON form: ``model``, both instructions and ``model_kwargs``, and for a served spec
        the server, the served name and the key's variable (never the key)."""
        for key, value in self.model_kwargs.items():
            if not isinstance(value, _JSON_SCALARS):
                raise InvalidTypeError(f"model_kwargs[{key!r}] must be a JSON scalar to persist")
        config: dict[str, Any] = {
            "model": self.model,
            "instruction": self.instruction,
            "query_instruction": self.query_instruction,
            "model_kwargs": dict(self.model_kwargs),
        }
        if self.served:
            config.update(server_url=self.server_url, served_name=self.served_name)
            config["api_key_env_var"] = self.api_key_env_var
        return config

    @classmethod
    def from_config(cls, config: Any, *, collection: str = "the collection") -> EmbedderSpec:
        """The spec an *untrusted* config describes, under :mod:`.trust`'s rules: guarded load
        options only where ``$INBEDDER_TRUST_PERSISTED`` allows them, a server only where
        ``$INBEDDER_TRUSTED_SERVERS`` lists it, and its key from ``$INBEDDER_API_KEY`` whatever
        variable the config names.  Refused with an error before anything loads or is sent."""
        check_config_shape(config)
        if config.get("server_url") is None:
            options = check_persisted_options(config["model_kwargs"], collection=collection)
            return cls(
                config["model"], config["instruction"], config["query_instruction"], model_kwargs=options
            )
        server_url = check_persisted_server(config["server_url"], collection=collection)
        if config.get("api_key_env_var") not in (None, API_KEY_ENV):
            logger.info(
                "the collection names $%s for the key of %s; a persisted config never chooses the "
                "variable, so $%s is read instead",
                *(config["api_key_env_var"], server_url, API_KEY_ENV),
            )
        return cls(
            instruction=config["instruction"],
            query_instruction=config["query_instruction"],
            server_url=server_url,
            served_name=config["served_name"],
            api_key_env_var=API_KEY_ENV if API_KEY_ENV in os.environ else None,
        )

    # ------------------------------------------------------------------ building

    def resolved_api_key(self) -> str | None:
        """``api_key``, or the value of ``$api_key_env_var`` (which must then be set)."""
        if self.api_key is not None:
            return self.api_key
        return api_key_from(self.api_key_env_var)

    def load_engine(self, *, cache: EmbeddingCache | str | Path | bool | None = None) -> InBedder:
        """The engine of a local spec (on the process's shared model), caching where ``cache`` says
        (None: the engine's default)."""
        from .local import load_engine

        return load_engine(self.model, self._engine_options(cache))

    def _engine_options(self, cache: EmbeddingCache | str | Path | bool | None) -> dict[str, Any]:
        """``model_kwargs``, with ``cache`` where it is given and they name none."""
        return {**({} if cache is None else {"cache": cache}), **self.model_kwargs}

    def build(
        self, *, show_progress: bool = False, cache: EmbeddingCache | str | Path | bool | None = None
    ) -> InstructedEmbedder | RemoteEmbedder:
        """The embedder this spec describes.  A served one's instructions, where given, must be
        the server's; ``cache`` (local only) is where the engine keeps vectors."""
        api_key = self.resolved_api_key()
        if not self.served:
            if self.served_name is not None or api_key is not None:
                raise InvalidArgumentError("served_name and api_key need server_url (see from_server)")
            if self.instruction is None:
                raise InvalidArgumentError("instruction is required: the question asked of every document")
            from .local import InstructedEmbedder

            return InstructedEmbedder.create(
                model=self.model,
                instruction=self.instruction,
                query_instruction=self.query_instruction,
                model_kwargs=self._engine_options(cache),
                batch_size=self.batch_size,
                normalize=self.normalize,
                show_progress=show_progress,
            )
        return self._build_remote(api_key)

    def _build_remote(self, api_key: str | None) -> RemoteEmbedder:
        from .remote import RemoteEmbedder

        assert self.server_url is not None
        if self.served_name is None:
            raise InvalidArgumentError("server_url needs served_name: the name the server serves")
        chunk = self.batch_size or RemoteEmbedder.batch_size
        remote = RemoteEmbedder(
            self.server_url, self.served_name, api_key, batch_size=chunk, normalize=self.normalize
        )
        for name, given, served in (
            ("instruction", self.instruction, remote.instruction),
            ("query_instruction", self.query_instruction, remote.query_instruction),
        ):
            if given is not None and given != served:
                raise InvalidArgumentError(
                    f"{name}={given!r}, but {self.server_url} serves {self.served_name!r} with "
                    f"{name}={served!r}"
                )
        return remote


def check_config_shape(config: Any) -> None:
    """That ``config`` has a spec's fields with the right types (what it may *do* is
    :meth:`EmbedderSpec.from_config`'s question)."""
    if not isinstance(config, Mapping):
        raise InvalidTypeError(f"an inbedder config must be an object, got {type(config).__name__}")
    missing = set(CONFIG_KEYS) - set(config)
    if missing:
        raise InvalidArgumentError(f"inbedder embedding-function config lacks {sorted(missing)}")
    for key in ("model", "instruction", "query_instruction"):
        if not isinstance(config[key], str) or not config[key]:
            raise InvalidArgumentError(
                f"inbedder config {key!r} must be a non-empty string, got {config[key]!r}"
            )
    if not isinstance(config["model_kwargs"], dict):
        kwargs = config["model_kwargs"]
        raise InvalidArgumentError(f"inbedder config 'model_kwargs' must be an object, got {kwargs!r}")
    if config.get("server_url") is not None and not isinstance(config.get("served_name"), str):
        served = config.get("served_name")
        raise InvalidArgumentError(f"inbedder config 'served_name' must be a string, got {served!r}")
