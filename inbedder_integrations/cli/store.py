"""``inbedder index``, ``search`` and ``collections``: a corpus in Chroma, one collection per
instruction.
"""

from __future__ import annotations

import argparse
import json
import os

from ..documents import load_documents
from ..errors import InvalidArgumentError
from ..serving.config import API_KEY_ENV
from .options import (
    Commands,
    add_command,
    add_model_options,
    add_store_options,
    cache_setting,
    chroma_client,
    instructed_corpus,
    model_kwargs,
    model_name,
    positive,
    retry_policy,
)

__all__ = [
    "add_collections_command",
    "add_index_command",
    "add_search_command",
    "cmd_collections",
    "cmd_index",
    "cmd_search",
]


def add_index_command(commands: Commands) -> None:
    index = add_command(
        commands, "index", cmd_index, help="index documents into Chroma, one collection per instruction"
    )
    index.add_argument(
        "docs", help="a folder of .txt/.md files, a .jsonl file ('text', 'id', 'metadata'), or -"
    )
    index.add_argument("--name", required=True, help="the corpus name (collection names derive from it)")
    index.add_argument(
        "--instruction", action="append", required=True, help="repeat for several instructions"
    )
    index.add_argument(
        "--query-instruction", action="append", default=[], metavar="QUESTION",
        help="the question queries are asked, one per --instruction in the same order (repeat "
        "the instruction itself to keep one the same); persisted with the collection",
    )  # fmt: skip
    index.add_argument("--batch-size", type=positive, default=64, help="documents per upsert")
    index.add_argument(
        "--retries",
        type=positive,
        default=8,
        help="attempts per call when a Chroma server stops answering (backoff 0.5 s doubling to 8 s)",
    )
    index.add_argument(
        "--cleanup",
        choices=["incremental", "full"],
        default=None,
        help="after indexing, delete stored documents gone from the source, under every instruction of"
        " the corpus: 'full' any of them, 'incremental' those sharing a 'source' with this input",
    )
    index.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="in a folder, also read links that lead outside it (skipped by default, with a warning)",
    )
    _add_ray_options(index)
    add_store_options(index)
    add_model_options(index)


def _add_ray_options(index: argparse.ArgumentParser) -> None:
    ray = index.add_argument_group("ray (bulk indexing into a Chroma server; the 'distributed' extra)")
    ray.add_argument("--ray", action="store_true", help="embed on a Ray actor pool (docs: also .parquet)")
    ray.add_argument("--address", default=None, help="Ray cluster address; default: start a local one")
    ray.add_argument("--actors", type=positive, default=1, help="actors, each loading the model once")
    ray.add_argument("--cpus-per-actor", type=float, default=1, help="CPUs (torch threads) per actor")
    ray.add_argument("--gpus-per-actor", type=float, default=0, help="GPUs per actor (0: CPU only)")


def cmd_index(args: argparse.Namespace) -> None:
    if args.ray:
        _index_with_ray(args)
        return
    corpus = instructed_corpus(args)  # a bad corpus name or store fails before the documents are read
    documents = load_documents(args.docs, follow_symlinks=args.follow_symlinks)
    result = corpus.sync(
        documents,
        args.instruction,
        batch_size=args.batch_size,
        show_progress=True,
        cleanup=args.cleanup,
        query_instructions=paired_query_instructions(args),
    )
    for instruction, count in result.written.items():
        name = corpus.collection_name(instruction)
        updated = result.updated[instruction]
        print(
            f"{name}: {count} written, {updated} metadata updated, "
            f"{len(documents) - count - updated} already there ({instruction})"
        )
    for instruction, count in result.deleted.items():
        print(f"{corpus.collection_name(instruction)}: {count} deleted, gone from the source ({instruction})")


def paired_query_instructions(args: argparse.Namespace) -> dict[str, str] | None:
    """``--query-instruction`` paired in order with ``--instruction``."""
    if not args.query_instruction:
        return None
    if len(args.query_instruction) != len(args.instruction):
        raise InvalidArgumentError(
            f"{len(args.query_instruction)} --query-instruction for {len(args.instruction)} --instruction: "
            "give one per instruction, in the same order"
        )
    return dict(zip(args.instruction, args.query_instruction, strict=True))


def _index_with_ray(args: argparse.Namespace) -> None:
    from ..distributed import index_with_ray

    if args.host is None:
        raise InvalidArgumentError("--ray writes into a Chroma server: give its --host (and --port)")
    if str(args.docs) == "-":
        raise InvalidArgumentError("--ray reads a file or folder every worker can reach, not stdin")
    if args.cleanup is not None:
        raise InvalidArgumentError("--cleanup runs in one process: index with --ray, then rerun without it")
    result = index_with_ray(
        args.docs,
        args.name,
        args.instruction,
        host=args.host,
        port=args.port,
        model=model_name(args),
        model_kwargs=model_kwargs(args),
        address=args.address,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        batch_size=args.batch_size,
        cache=cache_setting(args),
        retry=retry_policy(args),
        follow_symlinks=args.follow_symlinks,
        query_instructions=paired_query_instructions(args),
    )
    rate = result.documents / result.seconds if result.seconds else 0.0
    print(f"{result.documents} documents in {result.seconds:.1f} s on {result.actors} actors ({rate:.1f}/s)")
    for instruction, count in result.written.items():
        print(f"{count} written under {instruction!r}")


def add_search_command(commands: Commands) -> None:
    search = add_command(commands, "search", cmd_search, help="search a corpus under one instruction")
    search.add_argument("name", help="the corpus name")
    search.add_argument("query", help="the text to search for")
    search.add_argument(
        "--instruction", required=True, help="the question the corpus was indexed under (required)"
    )
    search.add_argument("-k", type=positive, default=5, help="how many hits to show")
    search.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help="embed the query with this running `inbedder serve` instead of loading the model"
        f" (its key: ${API_KEY_ENV} if set); it must serve the instruction",
    )
    add_store_options(search)
    add_model_options(search)


def cmd_search(args: argparse.Namespace) -> None:
    corpus = instructed_corpus(args, existing=True)
    if args.server is not None:
        corpus.query_server = args.server
        corpus.api_key_env_var = API_KEY_ENV if API_KEY_ENV in os.environ else None
    hits = corpus.search(args.query, args.instruction, k=args.k)
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())[:100]
        print(f"{rank:>2}. {hit.score:.4f}  {hit.id}  {snippet}")


def add_collections_command(commands: Commands) -> None:
    collections = add_command(
        commands, "collections", cmd_collections, help="list the inbedder collections of a Chroma store"
    )
    collections.add_argument("--json", action="store_true", help="print JSON instead of one line each")
    add_store_options(collections)


def cmd_collections(args: argparse.Namespace) -> None:
    from ..corpus import list_inbedder_collections

    rows = list_inbedder_collections(chroma_client(args, existing=True))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(
            f"{row['name']}  corpus={row['corpus']}  count={row['count']}  instruction={row['instruction']!r}"
        )
