"""The serving benchmark: what dynamic batching buys, and what HTTP costs.

    python benchmarks/serving.py           # writes docs/serving.json, re-renders the docs blocks
    python benchmarks/serving.py --quick   # tiny sizes into a temporary file: checks it runs

1. Throughput: ``--clients`` concurrent clients (64), each sending one text per
   request back to back for ``--seconds``, against a server with dynamic batching
   and against the same server taking one request at a time
   (``max_batch_texts=1``, no wait).  Target: batching at least 3x.
   Beside it, what bounds that ratio: in-process, one ``embed`` of 64 single texts
   against 64 calls of one text each (the engine's own gain from batching here).
2. Overhead: one ``POST /v1/embeddings`` of a batch (1 text, and 64) against
   in-process :meth:`InBedder.embed` of the same batch, run alternately 5 times
   after a warm-up each: the median of the 5 paired ratios.  Target: at most 15%.
   Measured for this tree and, in a subprocess on a git worktree, for commit
   ``BEFORE_TOKENISE_ONCE`` (whose server tokenised every text twice and estimated
   tokens from length), so both figures come from the same run.

Both servers are real uvicorn servers on 127.0.0.1, in this process, sharing one
fp32 engine without the on-disk cache (a repeat must cost a forward pass).
Every answer is compared with the engine's own vector (max abs difference
1e-5): wrong, failed and lost answers are counted, not assumed away.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from inbedder_integrations import InBedder
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import render_docs  # noqa: E402
from run import _cpu_name, short_texts  # noqa: E402

INSTRUCTIONS = {"topic": "What is the topic of this text?", "mood": "How does the writer feel?"}
TOLERANCE = 1e-5
#: The last commit whose server validated each text three times and tokenised it twice.
BEFORE_TOKENISE_ONCE = "e37ae1e"


@dataclass
class LoadResult:
    """What ``clients`` concurrent clients got in ``seconds``."""

    clients: int
    seconds: float
    sent: int = 0
    answered: int = 0
    wrong: int = 0
    failed: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Requests sent that got neither an answer nor an HTTP error."""
        return self.sent - self.answered - sum(self.failed.values())

    @property
    def throughput(self) -> float:
        return self.answered / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients, "seconds": round(self.seconds, 2), "sent": self.sent,
            "answered": self.answered, "wrong": self.wrong, "lost": self.lost, "failed": self.failed,
            "texts/s": round(self.throughput, 2), "p50 s": round(self.percentile(50), 3),
            "p99 s": round(self.percentile(99), 3),
        }  # fmt: skip


def make_pool(texts: list[str]) -> list[tuple[str, str]]:
    """(model name, text) pairs: every text under every served name."""
    return [(name, text) for text in texts for name in INSTRUCTIONS]


def expected_vectors(engine: InBedder, pool: list[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
    texts = sorted({text for _, text in pool})
    vectors = engine.embed_many(texts, list(INSTRUCTIONS.values()))
    by_instruction = {name: dict(zip(texts, vectors[q], strict=True)) for name, q in INSTRUCTIONS.items()}
    return {(name, text): by_instruction[name][text] for name, text in pool}


def run_load(
    base_url: str,
    pool: list[tuple[str, str]],
    expected: dict[tuple[str, str], np.ndarray],
    *,
    clients: int = 64,
    seconds: float = 10.0,
    api_key: str | None = None,
) -> LoadResult:
    """``clients`` clients send single texts (client c's k-th request: pool item c + k*clients)
    until ``seconds`` have passed; a request sent before then is waited for."""
    result = LoadResult(clients, seconds)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def client(http: httpx.AsyncClient, index: int, deadline: float) -> None:
        step = index
        while time.monotonic() < deadline:
            name, text = pool[step % len(pool)]
            step += clients
            result.sent += 1
            started = time.perf_counter()
            body = {"model": name, "input": text, "encoding_format": "float"}
            response = await http.post(f"{base_url}/v1/embeddings", json=body, headers=headers)
            result.latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                result.failed[response.status_code] = result.failed.get(response.status_code, 0) + 1
                continue
            vector = np.asarray(response.json()["data"][0]["embedding"], dtype=np.float32)
            result.answered += 1
            result.wrong += int(np.abs(vector - expected[(name, text)]).max() > TOLERANCE)

    async def all_clients() -> None:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(limits=limits, timeout=600) as http:
            started = time.monotonic()
            await asyncio.gather(*(client(http, i, started + seconds) for i in range(clients)))
            result.seconds = time.monotonic() - started

    asyncio.run(all_clients())
    return result


def served(**limits: Any) -> ServeConfig:
    instructions = tuple(ServedInstruction(name, q) for name, q in INSTRUCTIONS.items())
    return ServeConfig(instructions, port=0, cache=False, **limits)


def measure_overhead(engine: InBedder, texts: list[str], repeats: int = 5) -> dict[str, Any]:
    """One POST of ``texts`` against in-process ``engine.embed`` of them: wall-time medians of
    ``repeats`` runs each after a warm-up, the two interleaved so that drift in the machine's
    speed falls on both alike."""
    instruction = INSTRUCTIONS["topic"]
    with serve_in_background(served(), engine) as server, httpx.Client(timeout=600) as http:

        def post() -> None:
            response = http.post(f"{server.url}/v1/embeddings", json={"model": "topic", "input": texts})
            response.raise_for_status()

        def in_process() -> None:
            engine.embed(texts, instruction)

        times: dict[str, list[float]] = {"http": [], "in-process": []}
        post(), in_process()
        for _ in range(repeats):
            for name, run in (("http", post), ("in-process", in_process)):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    over_http, in_proc = statistics.median(times["http"]), statistics.median(times["in-process"])
    # Each HTTP run against the in-process run right after it: the machine's drift cancels.
    paired = sorted(h / i - 1 for h, i in zip(times["http"], times["in-process"], strict=True))
    return {
        "texts": len(texts), "repeats": repeats, "in-process s": round(in_proc, 4),
        "over HTTP s": round(over_http, 4), "overhead": round(statistics.median(paired), 4),
        "overhead range": [round(paired[0], 4), round(paired[-1], 4)],
    }  # fmt: skip


def overheads(engine: InBedder, sizes: list[int], repeats: int) -> dict[str, Any]:
    return {str(n): measure_overhead(engine, short_texts(n), repeats) for n in sizes}


def overheads_at_commit(commit: str, sizes: list[int], repeats: int) -> dict[str, Any]:
    """:func:`overheads` of ``commit``'s package and benchmark, in a subprocess on a worktree."""
    with tempfile.TemporaryDirectory(prefix="inbedder-before-") as folder:
        tree = Path(folder) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), commit], check=True
        )
        try:
            code = (
                "import json, sys; import inbedder_integrations as p; import serving; "
                "from inbedder_integrations import InBedder; "
                "e = InBedder.from_pretrained('default', dtype='float32', cache=False); "
                f"print(json.dumps({{'package': p.__file__, 'overheads': {{str(n): serving.measure_overhead("
                f"e, serving.short_texts(n), {repeats}) for n in {sizes!r}}}}}))"
            )
            path = os.pathsep.join([str(tree), str(tree / "benchmarks")])
            result = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True,
                env={**os.environ, "PYTHONPATH": path}, cwd=tree,
            )  # fmt: skip
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["package"].startswith(str(tree)), f"measured the wrong package: {measured['package']}"
    return measured["overheads"]


def engine_batching_bound(engine: InBedder, texts: list[str], repeats: int = 3) -> dict[str, Any]:
    """In-process: ``texts`` in one call against one call per text, medians of ``repeats``."""
    instruction = INSTRUCTIONS["topic"]

    def together() -> None:
        engine.embed(texts, instruction)

    def one_by_one() -> None:
        for text in texts:
            engine.embed([text], instruction)

    times: dict[str, list[float]] = {"together": [], "one by one": []}
    together(), one_by_one()
    for _ in range(repeats):
        for name, run in (("together", together), ("one by one", one_by_one)):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    joint, single = statistics.median(times["together"]), statistics.median(times["one by one"])
    return {
        "texts": len(texts), "one call s": round(joint, 3), "one call per text s": round(single, 3),
        "speed-up": round(single / joint, 2),
    }  # fmt: skip


def _auto_dtype_bound(engine: InBedder, clients: int) -> dict[str, Any] | None:
    """The same bound for ``dtype="auto"`` where it is not fp32 (bf16 on a CPU that runs it natively)."""
    auto = InBedder.from_pretrained("default", cache=False)
    if auto.dtype == engine.dtype:
        return None
    return {"dtype": auto.dtype, **engine_batching_bound(auto, short_texts(clients))}


def run_benchmark(
    engine: InBedder, *, clients: int, seconds: float, texts: int, overhead_texts: int, before: bool = True
) -> dict[str, Any]:
    pool = make_pool(short_texts(texts))
    expected = expected_vectors(engine, pool)
    loads = {}
    for mode, limits in (
        ("dynamic batching", {}),
        ("one request at a time", {"max_batch_texts": 1, "max_wait_ms": 0}),
    ):
        with serve_in_background(served(**limits), engine) as server:
            loads[mode] = run_load(server.url, pool, expected, clients=clients, seconds=seconds).summary()
    batched, single = loads["dynamic batching"]["texts/s"], loads["one request at a time"]["texts/s"]
    return {
        "command": "python benchmarks/serving.py", "clients": clients, "seconds per mode": seconds,
        "cpu": _cpu_name(), "torch threads": torch.get_num_threads(), "dtype": engine.dtype,
        "model": engine.model_name,
        "load": loads, "batching speed-up": round(batched / single, 2) if single else None,
        "engine batching": engine_batching_bound(engine, short_texts(clients)),
        "engine batching, dtype auto": _auto_dtype_bound(engine, clients),
        "overhead": overheads(engine, [1, overhead_texts], 5),
        "overhead before tokenising once": (
            overheads_at_commit(BEFORE_TOKENISE_ONCE, [1, overhead_texts], 5) if before else None
        ),
        "before commit": BEFORE_TOKENISE_ONCE,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs, not speed")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=None, help="per mode (default 30; --quick 3)")
    parser.add_argument(
        "--output", default=None, help="default: docs/serving.json (--quick: a temporary file)"
    )
    parser.add_argument(
        "--no-before", action="store_true", help=f"skip commit {BEFORE_TOKENISE_ONCE}'s overhead"
    )
    args = parser.parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 30.0)
    engine = InBedder.from_pretrained("default", dtype="float32", cache=False)
    started = time.perf_counter()
    results = run_benchmark(
        engine, clients=args.clients, seconds=seconds, texts=64 if args.quick else 512,
        overhead_texts=8 if args.quick else 64, before=not args.no_before,
    )  # fmt: skip
    results["command"] += " --quick" if args.quick else ""
    results["total seconds"] = round(time.perf_counter() - started, 1)
    if args.output is None and args.quick:
        args.output = str(Path(tempfile.mkdtemp(prefix="inbedder-serving-")) / "serving.json")
    output = Path(args.output) if args.output else ROOT / "docs" / "serving.json"
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.output is None:
        render_docs.write(ROOT)
    print(json.dumps(results, indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
