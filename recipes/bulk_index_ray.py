"""Bulk indexing on Ray into a Chroma server, end to end.

Writes a BBC News corpus to JSONL (or takes yours), embeds it on a Ray actor
pool under several instructions at once, upserts into one collection per
instruction on a `chroma run` server, and shows one query's hits under each.
Without ``--host`` it starts a local server in ``--workdir`` and stops it after.

    python recipes/bulk_index_ray.py                                  # 2 actors, local Ray and server
    python recipes/bulk_index_ray.py --actors 1 --cpus-per-actor 2    # one actor with both cores
    python recipes/bulk_index_ray.py --docs corpus.parquet --address auto --host chroma.internal \\
        --actors 8 --gpus-per-actor 1                                 # a cluster with GPUs

Rerun it and nothing is re-embedded: stored ids are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from inbedder_integrations.corpus import InstructedCorpus, connect
from inbedder_integrations.distributed import index_with_ray
from inbedder_integrations.evaluation.loaders import load_bbc

INSTRUCTIONS = ["What is the topic of this news?", "Which country is this news about?"]
QUERY = "elections and a new prime minister"


def write_bbc(path: Path, limit: int) -> Path:
    """The first ``limit`` BBC articles (a fixed sample across the 5 topics) as JSONL."""
    texts, labels = load_bbc(per_topic=limit // 5 + 1, seed=0)
    rows = [{"text": text, "metadata": {"topic": label}} for text, label in zip(texts, labels, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[:limit]), encoding="utf-8")
    return path


@contextlib.contextmanager
def local_chroma_server(folder: Path) -> Iterator[tuple[str, int]]:
    """A `chroma run` on 127.0.0.1 and a free port, storing into ``folder``; stopped on exit."""
    executable = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if executable is None:
        raise SystemExit("the `chroma` command is missing: pip install chromadb")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "server.log").open("a") as log:
        server = subprocess.Popen(
            [executable, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connect(host="127.0.0.1", port=port).heartbeat()
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"chroma run did not start; see {folder / 'server.log'}") from None
                time.sleep(0.3)
        print(f"started chroma run on 127.0.0.1:{port} (data in {folder})")
        yield "127.0.0.1", port
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", default=None, help="JSONL, parquet or a folder of .txt (default: BBC News)")
    parser.add_argument("--limit", type=int, default=400, help="BBC articles when --docs is not given")
    parser.add_argument("--name", default="bbc-ray", help="corpus name")
    parser.add_argument(
        "--instruction", action="append", default=None, help="repeat; default: topic, country"
    )
    parser.add_argument("--workdir", default="ray-output", help="where the corpus and a local server live")
    parser.add_argument("--host", default=None, help="a running Chroma server (default: start a local one)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--cpus-per-actor", type=float, default=1)
    parser.add_argument("--gpus-per-actor", type=float, default=0)
    parser.add_argument("--batch-size", type=int, default=32, help="documents per actor call")
    parser.add_argument("--model", default="default", help="'default' or any InBedder hub id / folder")
    parser.add_argument("--no-cache", action="store_true", help="embed everything, even texts seen before")
    args = parser.parse_args(argv)

    instructions = args.instruction or INSTRUCTIONS
    workdir = Path(args.workdir)
    docs = Path(args.docs) if args.docs else write_bbc(workdir / "bbc.jsonl", args.limit)
    with contextlib.ExitStack() as stack:
        if args.host is None:
            host, port = stack.enter_context(local_chroma_server(workdir / "chroma"))
        else:
            host, port = args.host, args.port
        result = index_with_ray(
            docs, args.name, instructions, host=host, port=port, model=args.model,
            address=args.address, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
            gpus_per_actor=args.gpus_per_actor, batch_size=args.batch_size, cache=not args.no_cache,
        )  # fmt: skip
        rate = result.documents / result.seconds
        print(
            f"\n{result.documents} documents x {len(instructions)} instructions in {result.seconds:.1f} s "
            f"on {result.actors} actor(s): {rate:.1f} documents/s, {rate * len(instructions):.1f} vectors/s"
        )
        corpus = InstructedCorpus(connect(host=host, port=port), args.name, model=args.model)
        for instruction in instructions:
            print(f"\n{instruction}  ({result.written[instruction]} written this run)")
            for hit in corpus.search(QUERY, instruction, k=3):
                print(f"  {hit.score:.3f}  {hit.metadata.get('topic', '')[:10]:<10}  {hit.text[:80]}")


if __name__ == "__main__":
    main()
