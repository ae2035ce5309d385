"""Load: many threads and async calls sharing one engine for a bounded time.

Every concurrent result must be *bitwise* identical to the same call run
sequentially beforehand: forward passes are serialised by the model's lock and
a call's batches are cut from its own texts only, so interleaving must not
change a single bit (fp32 on CPU is deterministic for identical inputs).
Deadlocks show up as a worker that does not finish within the time budget plus
a generous grace; memory must not grow across a load run.

Set ``INBEDDER_RELIABILITY_COUNTS`` to a JSON file to collect the numbers
(calls, durations, RSS) under its ``"load"`` key.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import faulthandler
import gc
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psutil
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.cache import text_sha256
from inbedder_integrations.langchain import InBedderEmbeddings
from inbedder_integrations.llama_index import InBedderEmbedding
from tests.conftest import FLOAT32, record_numbers

T = TypeVar("T")

TOPIC = "What is the topic of this text?"
FEELING = "How does the writer feel?"
LENGTH = "Is this text short or long?"
INSTRUCTIONS = (TOPIC, FEELING, LENGTH)

# Different lengths on purpose: batches of mixed texts need left padding.
TEXTS = (
    "Goal!",
    "Rain again.",
    "The central bank raised interest rates by half a point on Tuesday.",
    "The striker scored twice and the home side won the cup final.",
    "I could not stop smiling all day: my sister's wedding was perfect.",
    "The new phone's battery lasts two days, but the camera is poor in low light.",
    "Stocks fell sharply.",
    "The museum's new wing shows seventeenth-century paintings and a few sculptures.",
)

THREADS = 16
WARM_UP_SECONDS = 3.0
"""A concurrent round before memory is measured: it grows glibc's per-thread malloc arenas."""
LOAD_SECONDS = 10.0
"""How long the 16 threads hammer the uncached engine."""
CACHED_LOAD_SECONDS = 5.0
"""Cache hits cost no forward pass, so a shorter run already makes many calls."""
ASYNC_CALLS = 100
GRACE_SECONDS = 90.0
"""On top of a budget before a worker counts as deadlocked: the slowest honest call is ~1 s here."""
RSS_GROWTH_LIMIT = 100 * 2**20
HEAP_GROWTH_LIMIT = 8 * 2**20
OBJECT_GROWTH_LIMIT = 1000
"""Allowed growth over a load run, see test_memory_is_stable_under_load."""


# --------------------------------------------------------------------------- calls and their results


@dataclass(frozen=True)
class Call:
    """One engine call: ``embed`` (one instruction), ``embed_many`` (several) or ``answer``."""

    kind: str
    texts: tuple[str, ...]
    instructions: tuple[str, ...]
    batch_size: int | None = None

    def run(self, engine: InBedder, *, normalize: bool = True) -> dict[str, Any]:
        """{instruction: result}: a (len(texts), dim) float32 array, or a list of answers."""
        if self.kind == "embed":
            (instruction,) = self.instructions
            vectors = engine.embed(self.texts, instruction, normalize=normalize, batch_size=self.batch_size)
            return {instruction: vectors}
        if self.kind == "embed_many":
            return engine.embed_many(
                self.texts, self.instructions, normalize=normalize, batch_size=self.batch_size
            )
        (instruction,) = self.instructions
        return {instruction: engine.answer(self.texts, instruction, max_new_tokens=4)}


def differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What differs between two results of the same call (empty: bitwise identical)."""
    if got.keys() != expected.keys():
        return [f"instructions {sorted(got)} != {sorted(expected)}"]
    found = []
    for instruction, value in expected.items():
        other = got[instruction]
        if isinstance(value, list):
            if other != value:
                found.append(f"{instruction!r}: answers {other} != {value}")
        elif other.dtype != value.dtype or other.shape != value.shape:
            found.append(f"{instruction!r}: {other.dtype}{other.shape} != {value.dtype}{value.shape}")
        elif not np.array_equal(other, value):
            found.append(f"{instruction!r}: max |diff| {float(np.abs(other - value).max()):.3g}")
    return found


# --------------------------------------------------------------------------- running things with a deadline


def in_daemon_thread(target: Callable[[], T], name: str) -> Future[T]:
    """Run ``target`` in a daemon thread; its outcome lands in the returned future.

    Not a ThreadPoolExecutor: its workers are joined at interpreter exit, so a
    deadlocked worker would hang the test run instead of failing the test.
    """
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(target())
        except BaseException as exc:  # handed to the test through the future
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def results_by(futures: Sequence[Future[T]], deadline: float, what: str) -> list[T]:
    """Every future's result, failing the test (with all stacks dumped) if one misses ``deadline``."""
    results = []
    for index, future in enumerate(futures):
        try:
            results.append(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except TimeoutError:  # the deadline passed, or wait_for inside gave up
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            pytest.fail(f"{what} #{index} did not finish in time: deadlock or livelock (stacks on stderr)")
    return results


def run_async_bounded(make: Callable[[], Coroutine[Any, Any, T]], timeout: float, what: str) -> T:
    """``asyncio.run(wait_for(make(), timeout))`` in a daemon thread, failing the test on a hang.

    ``wait_for`` bounds the calls; the outer deadline also catches a loop that
    cannot shut down because an executor thread is stuck.
    """
    future = in_daemon_thread(lambda: asyncio.run(asyncio.wait_for(make(), timeout)), what)
    (result,) = results_by([future], time.monotonic() + timeout + GRACE_SECONDS, what)
    return result


# --------------------------------------------------------------------------- measuring


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost",
        )
    ]  # fmt: skip


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name and sys.platform.startswith("linux") else None


@dataclass(frozen=True)
class Memory:
    rss: int
    """Resident set size, after a full GC and ``malloc_trim``."""
    heap: int | None
    """Bytes malloc has handed out and not got back (every arena + mmapped chunks); None off glibc."""
    objects: int
    """Objects tracked by Python's GC."""


def settled_memory() -> Memory:
    """Memory after a full GC, with freed heap handed back to the OS where glibc allows."""
    gc.collect()
    libc, heap = _libc(), None
    if libc is not None:
        libc.malloc_trim(0)
        if hasattr(libc, "mallinfo2"):  # glibc >= 2.33
            libc.mallinfo2.restype = _MallInfo2
            info = libc.mallinfo2()
            heap = int(info.uordblks + info.hblkhd)
    return Memory(int(psutil.Process().memory_info().rss), heap, len(gc.get_objects()))


def record(name: str, numbers: dict[str, Any]) -> None:
    record_numbers("load", name, numbers)


# --------------------------------------------------------------------------- threads on one engine


@dataclass
class Worker:
    """What one thread did: how many calls, and any result that was not the sequential one."""

    calls: int = 0
    mismatches: list[str] = field(default_factory=list)


def hammer(
    engine: InBedder,
    calls: Sequence[Call],
    expected: dict[Call, dict[str, Any]],
    barrier: threading.Barrier,
    seconds: float,
    stop: threading.Event,
    min_calls: int,
) -> Worker:
    """Cycle through ``calls`` from the common start: ``min_calls``, then on until ``seconds`` are up."""
    worker = Worker()
    barrier.wait(timeout=60)
    deadline = time.monotonic() + seconds
    while worker.calls < min_calls or (time.monotonic() < deadline and not stop.is_set()):
        call = calls[worker.calls % len(calls)]
        try:
            found = differences(call.run(engine), expected[call])
        except BaseException:
            stop.set()  # the others stop too: the test fails with this error
            raise
        if found:
            worker.mismatches.append(f"{call}: {found}")
            stop.set()
        worker.calls += 1
    return worker


def run_threads(
    engine: InBedder,
    plan: Sequence[Sequence[Call]],
    expected: dict[Call, dict[str, Any]],
    seconds: float,
    min_calls: int = 0,
) -> tuple[list[Worker], float]:
    """One thread per entry of ``plan``, started together; (workers, wall seconds)."""
    barrier, stop = threading.Barrier(len(plan)), threading.Event()
    started = time.monotonic()
    futures = [
        in_daemon_thread(
            lambda calls=calls: hammer(engine, calls, expected, barrier, seconds, stop, min_calls),
            name=f"load-{i}",
        )
        for i, calls in enumerate(plan)
    ]
    workers = results_by(futures, started + seconds + GRACE_SECONDS, "load thread")
    return workers, time.monotonic() - started


def thread_plan() -> list[list[Call]]:
    """Per thread a mix of batch contents and sizes: embed, embed_many with 2 instructions, answer.

    Eight mixes (each sequential result costs a forward pass up front); threads
    ``k`` and ``k + 8`` run the same mix from opposite ends, so no two threads
    go in lockstep.
    """
    mixes = []
    for index in range(THREADS // 2):
        size = 1 + index % 4
        texts = tuple(TEXTS[(index + k) % len(TEXTS)] for k in range(size))
        pair = (INSTRUCTIONS[index % 3], INSTRUCTIONS[(index + 1) % 3])
        others = tuple(TEXTS[(index + 5 + k) % len(TEXTS)] for k in range(1 + index % 2))
        mix = [
            Call("embed", texts, pair[:1], batch_size=2 if size > 2 else None),  # >2 texts: two batches
            Call("embed_many", others, pair),
        ]
        if index % 4 == 3:  # generation takes the same lock in its own pattern
            mix.append(Call("answer", texts[:1], pair[1:]))
        mixes.append(mix)
    return mixes + [mix[::-1] for mix in mixes]


@dataclass
class LoadRun:
    workers: list[Worker]
    seconds: float
    warm_up_calls: int
    before: Memory
    after: Memory


@pytest.fixture(scope="module")
def thread_load(engine: InBedder) -> LoadRun:
    """Sequential results, a concurrent warm-up round, then the timed 16-thread run.

    Memory is taken after the warm-up (which also checks its results) and
    after the run.
    """
    plan = thread_plan()
    expected = {call: call.run(engine) for calls in plan for call in calls}
    warm_up, _ = run_threads(engine, plan, expected, WARM_UP_SECONDS, min_calls=1)
    assert not [m for worker in warm_up for m in worker.mismatches], "the warm-up round already differs"
    before = settled_memory()
    workers, seconds = run_threads(engine, plan, expected, LOAD_SECONDS)
    after = settled_memory()
    return LoadRun(workers, seconds, sum(worker.calls for worker in warm_up), before, after)


@pytest.mark.slow
def test_sixteen_threads_get_the_sequential_vectors(thread_load: LoadRun):
    calls = [worker.calls for worker in thread_load.workers]
    record(
        "threads",
        {
            "threads": THREADS,
            "budget_s": LOAD_SECONDS,
            "wall_s": round(thread_load.seconds, 2),
            "warm_up_calls": thread_load.warm_up_calls,
            "calls": sum(calls),
            "calls_per_thread_min": min(calls),
            "calls_per_thread_max": max(calls),
            "mismatches": sum(len(worker.mismatches) for worker in thread_load.workers),
        },
    )
    mismatches = [m for worker in thread_load.workers for m in worker.mismatches]
    assert not mismatches, "concurrent results differ from sequential ones:\n" + "\n".join(mismatches)
    assert min(calls) >= 1, f"a thread was starved for the whole run: {calls}"


@pytest.mark.slow
def test_memory_is_stable_under_load(thread_load: LoadRun):
    """No leak: live heap and Python objects flat, RSS within 100 MB of the post-warm-up value.

    The live malloc heap (``mallinfo2``: bytes handed out, all arenas and
    mmapped chunks) holds every tensor and array; it was flat to 0.01 MB
    across load rounds here, so 8 MB is noise-proof yet far below a leak of
    activations (an embed_many's KV cache alone is ~1 MB and the run makes
    dozens of calls).  RSS also counts freed memory that glibc keeps in its
    per-thread arenas (up to 16 on 2 cores): with ``MALLOC_ARENA_MAX=1`` it
    was flat to 0.1 MB, with the default it still grew ~45 MB over the first
    load round after a short warm-up and ~10 MB a round after.  100 MB (~10%
    of the process) bounds that allocator caching; a real leak also shows in
    the heap figure.
    """
    before, after = thread_load.before, thread_load.after
    calls = sum(worker.calls for worker in thread_load.workers)
    rss_growth, objects_growth = after.rss - before.rss, after.objects - before.objects
    heap_growth = None if before.heap is None or after.heap is None else after.heap - before.heap
    record(
        "memory",
        {
            "calls": calls,
            "rss_before_mb": round(before.rss / 2**20, 1),
            "rss_after_mb": round(after.rss / 2**20, 1),
            "rss_growth_mb": round(rss_growth / 2**20, 2),
            "heap_before_mb": None if before.heap is None else round(before.heap / 2**20, 2),
            "heap_growth_mb": None if heap_growth is None else round(heap_growth / 2**20, 3),
            "gc_objects_growth": objects_growth,
            "rss_limit_mb": RSS_GROWTH_LIMIT // 2**20,
            "heap_limit_mb": HEAP_GROWTH_LIMIT // 2**20,
        },
    )
    assert rss_growth < RSS_GROWTH_LIMIT, f"RSS grew by {rss_growth / 2**20:.1f} MB over {calls} calls"
    if heap_growth is not None:
        assert heap_growth < HEAP_GROWTH_LIMIT, f"live heap grew by {heap_growth / 2**20:.1f} MB"
    assert objects_growth < OBJECT_GROWTH_LIMIT, f"{objects_growth} more Python objects after {calls} calls"


# --------------------------------------------------------------------------- the on-disk cache under threads


def cached_plan() -> list[list[Call]]:
    """Unique texts per call, so every cache row is written from one batch composition only.

    Then a vector served from the cache is bitwise the one computed without it.
    Pairs of threads share an ``embed`` call: both may miss, compute and write
    the same rows at once.  Each ``embed_many`` belongs to one thread: it
    stores one instruction's rows after the other, and a second caller looking
    up in between would compute the missing instruction alone, which differs
    from the shared-prefix result in the last bits (~5e-7), a cache property
    rather than a concurrency one.
    """
    plan = []
    for index in range(THREADS):
        group = index // 2
        shared = Call(
            "embed",
            tuple(f"{TEXTS[(group + k) % len(TEXTS)]} [shared {group}]" for k in range(1 + group % 2)),
            (INSTRUCTIONS[group % 3],),
        )
        if index % 2:
            plan.append([shared])
        else:
            own = Call("embed_many", (f"{TEXTS[index % len(TEXTS)]} [own {index}]",), (TOPIC, FEELING))
            plan.append([own, shared])
    return plan


@pytest.mark.slow
def test_threads_through_the_cache_get_the_sequential_vectors(engine: InBedder, tmp_path: Path):
    plan = cached_plan()
    calls = {call for thread_calls in plan for call in thread_calls}
    expected = {call: call.run(engine) for call in calls}  # the uncached engine
    raw = {call: call.run(engine, normalize=False) for call in calls}
    cached = InBedder.from_pretrained("default", dtype="float32", cache=tmp_path / "c.sqlite")
    assert cached.cache is not None and cached.fingerprint == engine.fingerprint
    try:
        # At least one call beyond its list per thread: every thread reads back what it wrote.
        workers, seconds = run_threads(cached, plan, expected, CACHED_LOAD_SECONDS, min_calls=3)
        mismatches = [m for worker in workers for m in worker.mismatches]
        counts = [worker.calls for worker in workers]
        expected_rows = {
            (instruction, text_sha256(text)): vector
            for call in calls
            for instruction, matrix in raw[call].items()
            for text, vector in zip(call.texts, matrix, strict=True)
        }
        with contextlib.closing(sqlite3.connect(cached.cache.path)) as connection:  # a second reader
            rows = connection.execute("SELECT fingerprint, instruction, text_sha256 FROM vectors").fetchall()
        record(
            "cached_threads",
            {
                "threads": THREADS,
                "budget_s": CACHED_LOAD_SECONDS,
                "wall_s": round(seconds, 2),
                "calls": sum(counts),
                "calls_per_thread_min": min(counts),
                "mismatches": len(mismatches),
                "cache_rows": len(rows),
                "expected_rows": len(expected_rows),
            },
        )
        assert not mismatches, "results through the cache differ:\n" + "\n".join(mismatches)
        assert sorted(rows) == sorted((cached.cache_key, q, h) for q, h in expected_rows)
        for (instruction, text_hash), vector in expected_rows.items():
            text = next(t for call in calls for t in call.texts if text_sha256(t) == text_hash)
            (stored,) = cached.cache.get_many(cached.cache_key, instruction, [text])
            assert stored is not None and stored.tobytes() == vector.tobytes(), (instruction, text)
    finally:
        cached.cache.close()


# --------------------------------------------------------------------------- 100 concurrent async calls


SHORT = ["Goal!", "Rain again.", "Stocks fell sharply.", "A quiet day.", "Prices rose."]
DOCUMENT_BATCHES = [SHORT[:1], SHORT[1:3], SHORT[2:5], SHORT[3:4], [SHORT[4], SHORT[0]]]
QUERIES = ["football", "interest rates", "a happy day"]


def async_plan(calls: int) -> list[tuple[str, Any]]:
    """Documents and queries interleaved: ("documents", [texts]) or ("query", text)."""
    return [
        ("query", QUERIES[i % len(QUERIES)])
        if i % 3 == 2
        else ("documents", DOCUMENT_BATCHES[i % len(DOCUMENT_BATCHES)])
        for i in range(calls)
    ]


async def gather_calls(
    plan: list[tuple[str, Any]],
    documents: Callable[[list[str]], Coroutine[Any, Any, list[list[float]]]],
    query: Callable[[str], Coroutine[Any, Any, list[float]]],
) -> tuple[list[Any], float]:
    """All calls of ``plan`` at once on one event loop; (results in order, wall seconds)."""
    started = time.monotonic()
    pending = [documents(arg) if kind == "documents" else query(arg) for kind, arg in plan]
    results = await asyncio.gather(*pending)
    return results, time.monotonic() - started


def run_async_plan(
    name: str,
    sequential: Callable[[str, Any], Any],
    documents: Callable[[list[str]], Coroutine[Any, Any, list[list[float]]]],
    query: Callable[[str], Coroutine[Any, Any, list[float]]],
) -> None:
    """Sequential results first, then 100 concurrent calls, each equal to its sequential result."""
    plan = async_plan(ASYNC_CALLS)
    expected: dict[tuple[str, str], Any] = {}
    for kind, arg in plan:  # each distinct call once
        if (kind, json.dumps(arg)) not in expected:
            expected[kind, json.dumps(arg)] = np.asarray(sequential(kind, arg))
    results, seconds = run_async_bounded(lambda: gather_calls(plan, documents, query), 120, name)
    wrong = [
        index
        for index, ((kind, arg), got) in enumerate(zip(plan, results, strict=True))
        if not np.array_equal(np.asarray(got), expected[kind, json.dumps(arg)])
    ]
    record(name, {"calls": len(results), "wall_s": round(seconds, 2), "mismatches": len(wrong)})
    assert len(results) == ASYNC_CALLS
    assert not wrong, f"async calls {wrong} differ from the sequential results"


@pytest.mark.slow
def test_hundred_async_langchain_calls_get_the_sequential_vectors(engine: InBedder):
    embeddings = InBedderEmbeddings(instruction=TOPIC, query_instruction=FEELING, model_kwargs=FLOAT32)
    assert embeddings.fingerprint == engine.fingerprint

    def sequential(kind: str, arg: Any) -> Any:
        return embeddings.embed_documents(arg) if kind == "documents" else embeddings.embed_query(arg)

    run_async_plan("async_langchain", sequential, embeddings.aembed_documents, embeddings.aembed_query)


@pytest.mark.slow
def test_hundred_async_llama_index_calls_get_the_sequential_vectors(engine: InBedder):
    model = InBedderEmbedding(
        instruction=TOPIC, query_instruction=FEELING, model_kwargs=FLOAT32, embed_batch_size=2
    )
    assert model.fingerprint == engine.fingerprint

    def sequential(kind: str, arg: Any) -> Any:
        return model.get_text_embedding_batch(arg) if kind == "documents" else model.get_query_embedding(arg)

    # Batches of 3 are split into 2 + 1 by LlamaIndex and gathered concurrently as well.
    run_async_plan(
        "async_llama_index", sequential, model.aget_text_embedding_batch, model.aget_query_embedding
    )
