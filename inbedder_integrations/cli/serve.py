"""``inbedder serve``: the embedding server (OpenAI- and TEI-compatible), locally or on Ray Serve."""

from __future__ import annotations

import argparse
from typing import Any

from .options import (
    Commands,
    add_command,
    add_model_options,
    cache_setting,
    model_kwargs,
    port_number,
    positive,
)

__all__ = ["add_serve_command", "cmd_serve", "serve_config"]

#: Serve flags whose argparse default is None, so that a config file's value stands unless given.
_LIMIT_FLAGS = (
    "max_batch_texts",
    "max_batch_tokens",
    "max_wait_ms",
    "max_queue",
    "max_inputs",
    "max_body_bytes",
    "max_connections",
    "header_timeout_s",
    "body_timeout_s",
    "keep_alive_s",
    "shutdown_grace_s",
)


def add_serve_command(commands: Commands) -> None:
    serve = add_command(
        commands,
        "serve",
        cmd_serve,
        help="serve embeddings over HTTP: OpenAI /v1/embeddings and TEI /embed",
        description="Each --instruction NAME=QUESTION is served as the model NAME "
        "(NAME:query: its --query-instruction). Binds 127.0.0.1 unless --host says otherwise.",
    )
    serve.add_argument(
        "--instruction", action="append", default=[], metavar="NAME=QUESTION",
        help="an instruction served as model NAME (repeat for several)",
    )  # fmt: skip
    serve.add_argument(
        "--query-instruction", action="append", default=[], metavar="NAME=QUESTION",
        help="the query instruction of NAME, served as NAME:query (default: NAME's own)",
    )  # fmt: skip
    serve.add_argument("--config", default=None, help="a .toml or .yaml file of these settings")
    serve.add_argument("--host", default=None, help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=port_number, default=None, help="default 8080")
    serve.add_argument(
        "--api-key-file", default=None,
        help="require 'Authorization: Bearer <key>', the key read from this file"
        " (default: $INBEDDER_API_KEY if set, else no key)",
    )  # fmt: skip
    limits = serve.add_argument_group("limits")
    limits.add_argument("--max-batch-texts", type=positive, default=None, help="texts per batch (64)")
    limits.add_argument(
        "--max-batch-tokens", type=positive, default=None, help="prompt tokens per batch (16384)"
    )
    limits.add_argument("--max-wait-ms", type=float, default=None, help="wait for a batch to fill (5 ms)")
    limits.add_argument("--max-queue", type=positive, default=None, help="texts waiting before 503 (1024)")
    limits.add_argument("--max-inputs", type=positive, default=None, help="texts per request (2048)")
    limits.add_argument("--max-body-bytes", type=positive, default=None, help="request body size (4 MiB)")
    limits.add_argument(
        "--max-connections", type=positive, default=None,
        help="open connections at most; past it uvicorn answers 503 (256)",
    )  # fmt: skip
    timeouts = serve.add_argument_group("timeouts (seconds)")
    timeouts.add_argument(
        "--header-timeout", dest="header_timeout_s", type=float, default=None,
        help="for a request's head to arrive, from connecting or the last answer (10)",
    )  # fmt: skip
    timeouts.add_argument(
        "--body-timeout", dest="body_timeout_s", type=float, default=None,
        help="for a request's body to arrive after its head; 408 past it (30)",
    )  # fmt: skip
    timeouts.add_argument(
        "--keep-alive", dest="keep_alive_s", type=float, default=None, help="idle connections stay open (5)"
    )
    timeouts.add_argument(
        "--shutdown-grace", dest="shutdown_grace_s", type=float, default=None,
        help="after SIGTERM, to answer what is in flight; queued requests get 503 at half of it (30)",
    )  # fmt: skip
    serve.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="a Host name a key-less server answers besides its address, localhost and IP literals",
    )  # fmt: skip
    limits.add_argument(
        "--auto-truncate", action="store_true", default=None,
        help="/embed cuts long texts unless told truncate=false (default: refuses them, as TEI does)",
    )  # fmt: skip
    limits.add_argument(
        "--no-instruction-field", action="store_true",
        help="refuse requests that carry their own 'instruction' (serve only the named ones)",
    )  # fmt: skip
    ray = serve.add_argument_group("Ray Serve")
    ray.add_argument("--ray", action="store_true", help="run as a Ray Serve deployment")
    ray.add_argument("--replicas", type=positive, default=1, help="replicas, each with its own engine")
    ray.add_argument("--address", default=None, help="a Ray cluster ('auto'); default: a local one")
    ray.add_argument("--gpus-per-replica", type=float, default=0, help="GPUs each replica reserves")
    add_model_options(serve)


def serve_config(args: argparse.Namespace) -> Any:
    """The :class:`ServeConfig` of a config file (if any) with the given flags on top."""
    from ..serving import ServeConfig, load_config_file, parse_named_instructions, read_api_key

    settings: dict[str, Any] = load_config_file(args.config) if args.config else {}
    if args.instruction or args.query_instruction:
        settings["instructions"] = parse_named_instructions(args.instruction, args.query_instruction)
    if args.model != "default" or "model" not in settings:
        settings["model"] = args.model
    settings["model_kwargs"] = {**settings.get("model_kwargs", {}), **model_kwargs(args)}
    if args.no_cache or args.cache_path or "cache" not in settings:
        settings["cache"] = cache_setting(args)
    for flag in ("host", "port", "auto_truncate", *_LIMIT_FLAGS):
        if getattr(args, flag) is not None:
            settings[flag] = getattr(args, flag)
    if args.allowed_host:
        settings["allowed_hosts"] = tuple(args.allowed_host)
    if args.no_instruction_field:
        settings["allow_instruction_field"] = False
    if args.api_key_file is not None or "api_key" not in settings:
        settings["api_key"] = read_api_key(args.api_key_file)
    settings.setdefault("instructions", ())
    return ServeConfig(**settings)


def cmd_serve(args: argparse.Namespace) -> None:
    from ..serving import run_ray_server, run_server

    config = serve_config(args)
    if args.ray:
        run_ray_server(
            config, replicas=args.replicas, address=args.address, gpus_per_replica=args.gpus_per_replica
        )
    else:
        run_server(config, log_level="debug" if args.verbose else "info")
