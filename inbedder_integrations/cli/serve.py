"""``inbedder serve``: the embedding server (OpenAI- and TEI-compatible), locally or on Ray Serve.

Configured as TEI and infinity deployments are: every option also comes from an
environment variable named after it (``--max-batch-tokens``: ``INBEDDER_MAX_BATCH_TOKENS``),
and the order is the command line, then the environment, then ``--config``'s file, then
:class:`~inbedder_integrations.serving.ServeConfig`'s defaults (the one place they live).
Every option defaults to None, "not given", so a value equal to a default still wins.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgumentError
from ..serving.config import default_of
from .options import (
    Commands,
    add_command,
    add_model_options,
    cache_given,
    cache_setting,
    model_kwargs,
    model_name,
    port_number,
    positive,
)

__all__ = ["ENV_PREFIX", "add_serve_command", "cmd_serve", "environment_name", "serve_config"]

ENV_PREFIX = "INBEDDER_"
#: Options that are not settings of the server (they steer the command itself).
_NOT_FROM_ENVIRONMENT = frozenset({"help", "verbose"})
#: Serve options that set the :class:`ServeConfig` field of the same name as they are.
_FIELDS = (
    *("host", "port", "auto_truncate", "max_batch_texts", "max_batch_tokens", "max_wait_ms"),
    *("max_queue", "max_inputs", "max_body_bytes", "max_connections", "header_timeout_s"),
    *("body_timeout_s", "keep_alive_s", "shutdown_grace_s"),
)
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
#: Where the rule would take a name the package already reads with another meaning
#: (``$INBEDDER_CACHE`` is the cache folder): the flag's ``--no-`` form, and the library's own
#: variable for the cache file.
_RENAMED = {"cache": "INBEDDER_NO_CACHE", "cache_path": "INBEDDER_EMBEDDING_CACHE"}
#: Flags whose variable is named after their ``--no-`` form: true turns them off.
_NAMED_BY_NEGATION = frozenset({"cache"})


def add_serve_command(commands: Commands) -> None:
    serve = add_command(
        commands,
        "serve",
        cmd_serve,
        help="serve embeddings over HTTP: OpenAI /v1/embeddings and TEI /embed",
        description="Each --instruction NAME=QUESTION is served as the model NAME "
        "(NAME:query: its --query-instruction). Binds 127.0.0.1 unless --host says otherwise. "
        "Every option also comes from the environment variable in its help (a list option's: "
        "a JSON list); the command line wins over it, and it over --config's file.",
    )
    serve.add_argument(
        "--instruction", action="append", default=None, metavar="NAME=QUESTION",
        help="an instruction served as model NAME (repeat for several)",
    )  # fmt: skip
    serve.add_argument(
        "--query-instruction", action="append", default=None, metavar="NAME=QUESTION",
        help="the query instruction of NAME, served as NAME:query (default: NAME's own)",
    )  # fmt: skip
    serve.add_argument("--config", default=None, help="a .toml or .yaml file of these settings")
    serve.add_argument(
        "--host", default=None, help=f"address to bind (default {default_of('host')}: this machine only)"
    )
    serve.add_argument("--port", type=port_number, default=None, help=f"default {default_of('port')}")
    serve.add_argument(
        "--api-key-file", default=None,
        help="require 'Authorization: Bearer <key>', the key read from this file"
        " (default: $INBEDDER_API_KEY if set, else no key)",
    )  # fmt: skip
    serve.add_argument(
        "--allowed-host", action="append", default=None, metavar="NAME",
        help="a Host name a key-less server answers besides its address, localhost and IP literals",
    )  # fmt: skip
    _add_limits(serve)
    _add_timeouts(serve)
    ray = serve.add_argument_group("Ray Serve")
    ray.add_argument(
        "--ray", action=argparse.BooleanOptionalAction, default=None, help="run as a Ray Serve deployment"
    )
    ray.add_argument("--replicas", type=positive, default=None, help="replicas, each with its own engine (1)")
    ray.add_argument("--address", default=None, help="a Ray cluster ('auto'); default: a local one")
    ray.add_argument("--gpus-per-replica", type=float, default=None, help="GPUs each replica reserves (0)")
    add_model_options(serve)
    _name_environment_variables(serve)


def _add_limits(serve: argparse.ArgumentParser) -> None:
    limits = serve.add_argument_group("limits")
    for flag, what in (
        ("--max-batch-texts", "texts per batch"),
        ("--max-queue", "texts waiting before 503"),
        ("--max-inputs", "texts per request"),
        ("--max-body-bytes", "request body size in bytes"),
        ("--max-connections", "open connections at most; past it uvicorn answers 503"),
    ):
        field = flag.removeprefix("--").replace("-", "_")
        limits.add_argument(flag, type=positive, default=None, help=f"{what} ({default_of(field)})")
    limits.add_argument(
        "--max-batch-tokens", type=positive, default=None,
        help="prompt tokens embedded together, real counts (default: the engine's, 4096)",
    )  # fmt: skip
    limits.add_argument(
        "--max-wait-ms", type=float, default=None,
        help=f"wait for a batch to fill ({default_of('max_wait_ms'):g} ms)",
    )  # fmt: skip
    limits.add_argument(
        "--auto-truncate", action=argparse.BooleanOptionalAction, default=None,
        help="/embed cuts long texts unless told truncate=false (default: refuses them, as TEI does)",
    )  # fmt: skip
    limits.add_argument(
        "--instruction-field", action=argparse.BooleanOptionalAction, default=None,
        help="take requests that carry their own 'instruction' (default: yes; --no-instruction-field"
        " serves only the named ones)",
    )  # fmt: skip


def _add_timeouts(serve: argparse.ArgumentParser) -> None:
    timeouts = serve.add_argument_group("timeouts (seconds)")
    for flag, field, what in (
        ("--header-timeout", "header_timeout_s", "for a request's head, from connecting or the last answer"),
        ("--body-timeout", "body_timeout_s", "for a request's body after its head; 408 past it"),
        ("--keep-alive", "keep_alive_s", "idle connections stay open"),
        ("--shutdown-grace", "shutdown_grace_s", "after SIGTERM to answer what is in flight (503 at half)"),
    ):
        timeouts.add_argument(
            flag, dest=field, type=float, default=None, help=f"{what} ({default_of(field):g})"
        )


def environment_name(action: argparse.Action) -> str:
    """``--max-batch-tokens`` -> ``INBEDDER_MAX_BATCH_TOKENS`` (a ``--x/--no-x`` flag: ``INBEDDER_X``)."""
    if action.dest in _RENAMED:
        return _RENAMED[action.dest]
    return ENV_PREFIX + action.option_strings[0].lstrip("-").replace("-", "_").upper()


def _name_environment_variables(parser: argparse.ArgumentParser) -> None:
    """Name each option's variable in its help, and keep the options for :func:`serve_config`."""
    options = [a for a in parser._actions if a.option_strings and a.dest not in _NOT_FROM_ENVIRONMENT]
    for action in options:
        action.help = f"{action.help or ''} [env: {environment_name(action)}]".strip()
    parser.set_defaults(environment_options=tuple(options))


def apply_environment(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Fill every option not given on the command line from its environment variable."""
    for action in getattr(args, "environment_options", ()):
        name = environment_name(action)
        if getattr(args, action.dest) is not None or name not in environ:
            continue
        try:
            value = _from_environment(action, environ[name])
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise InvalidArgumentError(f"${name}={environ[name]!r}: {exc}") from None
        setattr(args, action.dest, value)


def _from_environment(action: argparse.Action, raw: str) -> Any:
    if action.nargs == 0:  # a flag: --x / --no-x
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError("must be true or false (1/0, yes/no, on/off)")
        return (word in _TRUE) != (action.dest in _NAMED_BY_NEGATION)  # INBEDDER_NO_CACHE=1: no cache
    if isinstance(action, argparse._AppendAction):
        items = json.loads(raw) if raw.lstrip().startswith("[") else [raw]
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("must be a JSON list of strings")
        return [_converted(action, item) for item in items]
    return _converted(action, raw)


def _converted(action: argparse.Action, raw: str) -> Any:
    value = action.type(raw) if callable(action.type) else raw
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"must be one of {sorted(action.choices)}")
    return value


def serve_config(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Any:
    """The :class:`ServeConfig` of the command line over the environment over ``--config``'s
    file over the defaults (``environ``: ``os.environ`` unless given)."""
    from ..serving import ServeConfig, load_config_file, parse_named_instructions, read_api_key

    apply_environment(args, os.environ if environ is None else environ)
    settings: dict[str, Any] = load_config_file(args.config) if args.config else {}
    if args.instruction or args.query_instruction:
        settings["instructions"] = parse_named_instructions(args.instruction or [], args.query_instruction)
    if args.model is not None or "model" not in settings:
        settings["model"] = model_name(args)
    settings["model_kwargs"] = {**settings.get("model_kwargs", {}), **model_kwargs(args)}
    if cache_given(args) or "cache" not in settings:
        settings["cache"] = cache_setting(args)
    settings.update({field: getattr(args, field) for field in _FIELDS if getattr(args, field) is not None})
    if args.allowed_host:
        settings["allowed_hosts"] = tuple(args.allowed_host)
    if args.instruction_field is not None:
        settings["allow_instruction_field"] = args.instruction_field
    if args.api_key_file is not None or "api_key" not in settings:
        settings["api_key"] = read_api_key(args.api_key_file)
    settings.setdefault("instructions", ())
    return ServeConfig(**settings)


def cmd_serve(args: argparse.Namespace) -> None:
    from ..serving import run_ray_server, run_server

    config = serve_config(args)
    _log_to_stderr(args.verbose)
    if args.ray:
        run_ray_server(
            config,
            replicas=args.replicas or 1,
            address=args.address,
            gpus_per_replica=args.gpus_per_replica or 0,
        )
    else:
        run_server(config, log_level="debug" if args.verbose else "info")


def _log_to_stderr(verbose: bool) -> None:
    """The server's own log lines (the start-up line, shutdown) go where uvicorn's go."""
    package = logging.getLogger("inbedder_integrations")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    package.addHandler(handler)
    package.setLevel(logging.DEBUG if verbose else logging.INFO)
