"""Faults injected into real processes: nothing indexed is lost, nothing is duplicated.

``kill -9`` of a real ``inbedder index`` subprocess, a real ``chroma run`` server
killed and restarted while indexing, two processes indexing one collection at
once.  Every test ends by checking the collection holds exactly the corpus.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import chromadb
import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.corpus import (
    TEXT_HASH_KEY,
    ChromaUnavailableError,
    CorpusDocument,
    InstructedCorpus,
    RetryPolicy,
    collection_name,
    connect,
    to_documents,
)
from tests.conftest import FLOAT32, free_port, start_chroma_server, stop_process

pytestmark = pytest.mark.slow

TOPIC = "What is the topic?"
FEELING = "How does the writer feel?"
SUBJECTS = ["The striker", "The central bank", "A new phone", "The minister", "The band", "A storm"]
EVENTS = ["scored late", "raised rates", "sold out", "resigned", "went on tour", "closed roads"]
PLACES = ["in Leeds", "in Paris", "in Lagos", "in Osaka", "in Lima", "in Oslo"]


def make_corpus(size: int) -> list[CorpusDocument]:
    """``size`` distinct short news-like sentences (short: the tests are about faults, not speed)."""
    texts = [
        f"{SUBJECTS[i % 6]} {EVENTS[(i // 6) % 6]} {PLACES[(i // 36) % 6]} on day {i}." for i in range(size)
    ]
    return to_documents(texts)


def assert_holds_exactly(collection: chromadb.Collection, corpus: list[CorpusDocument]) -> None:
    stored = collection.get(include=["documents", "metadatas"])
    assert len(stored["ids"]) == len(set(stored["ids"])), "duplicate ids"
    assert collection.count() == len(corpus)
    assert set(stored["ids"]) == {d.id for d in corpus}, "ids missing or extra"
    by_id = {d.id: d for d in corpus}
    for id_, text, metadata in zip(stored["ids"], stored["documents"], stored["metadatas"], strict=True):
        assert text == by_id[id_].text
        assert metadata[TEXT_HASH_KEY] == by_id[id_].text_hash


def assert_vectors_match(
    collection: chromadb.Collection, corpus: list[CorpusDocument], engine: InBedder, instruction: str
) -> None:
    """Stored vectors equal a fresh single-process embedding of the same texts."""
    stored = collection.get(ids=[d.id for d in corpus], include=["embeddings"])
    by_id = dict(zip(stored["ids"], np.asarray(stored["embeddings"]), strict=True))
    expected = engine.embed([d.text for d in corpus], instruction)
    actual = np.stack([by_id[d.id] for d in corpus])
    assert np.min(np.sum(actual * expected, axis=1)) >= 0.9999


def write_jsonl(path: Path, corpus: list[CorpusDocument]) -> Path:
    path.write_text("".join(json.dumps({"text": d.text, "id": d.id}) + "\n" for d in corpus))
    return path


def inbedder(*args: str) -> list[str]:
    return [sys.executable, "-m", "inbedder_integrations.cli", *args]


PROGRESS = re.compile(r"(\d+)/(\d+) \[")


def run_and_kill_partway(command: list[str], *, at_least: int) -> int:
    """Start ``command``, SIGKILL it once its progress bar passes ``at_least``; return that count."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    buffer = b""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        chunk = process.stderr.read1(4096)
        if not chunk:
            break
        buffer += chunk
        counts = [(int(n), int(total)) for n, total in PROGRESS.findall(buffer.decode(errors="replace"))]
        if counts and at_least <= counts[-1][0] < counts[-1][1]:
            process.kill()
            process.wait()
            return counts[-1][0]
    process.kill()
    process.wait()
    raise AssertionError(f"never saw progress >= {at_least} before the end: {buffer.decode()[-2000:]}")


def test_kill_9_mid_index_then_rerun_holds_exactly_the_corpus(tmp_path: Path, engine: InBedder) -> None:
    corpus = make_corpus(64)
    docs = write_jsonl(tmp_path / "docs.jsonl", corpus)
    store = tmp_path / "chroma"
    command = inbedder(
        "index", str(docs), "--name", "news", "--instruction", TOPIC, "--instruction", FEELING,
        "--path", str(store), "--batch-size", "8", "--dtype", "float32",
    )  # fmt: skip
    killed_at = [run_and_kill_partway(command, at_least=8), run_and_kill_partway(command, at_least=32)]

    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    already_there = [int(n) for n in re.findall(r"(\d+) already there", finished.stdout)]
    assert len(already_there) == 2 and min(already_there) >= killed_at[1], (finished.stdout, killed_at)

    client = chromadb.PersistentClient(path=str(store))
    for instruction in (TOPIC, FEELING):
        collection = client.get_collection(collection_name("news", instruction))
        assert_holds_exactly(collection, corpus)
        assert_vectors_match(collection, corpus, engine, instruction)


class ChromaProcess:
    """A `chroma run` server that a test can crash and bring back on the same port and data."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process = start_chroma_server(folder, self.port)

    def crash(self) -> None:
        stop_process(self.process, kill=True)

    def restart(self) -> None:
        self.process = start_chroma_server(self.folder, self.port)

    def client(self) -> chromadb.api.ClientAPI:
        return chromadb.HttpClient(host="127.0.0.1", port=self.port)


@pytest.fixture
def chroma_process(tmp_path: Path):
    server = ChromaProcess(tmp_path / "server")
    yield server
    stop_process(server.process)


def index_in_thread(
    server: ChromaProcess, documents: list[CorpusDocument], retry: RetryPolicy
) -> tuple[str, threading.Thread, dict[str, object]]:
    """Index ``documents`` under TOPIC into ``server`` from a thread (batches of 8).

    Returns the collection name, the thread and its outcome (``written`` or ``error``).
    """
    corpus = InstructedCorpus(server.client(), "news", model_kwargs=FLOAT32, cache=False, retry=retry)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["written"] = corpus.index(documents, [TOPIC], batch_size=8)
        except Exception as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return corpus.collection_name(TOPIC), thread, outcome


def wait_for_rows(server: ChromaProcess, name: str, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            count = server.client().get_collection(name).count()
            if count >= at_least:
                return count
        except Exception:
            pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {at_least} rows")


def test_server_crash_and_restart_during_indexing_is_retried(
    chroma_process: ChromaProcess, engine: InBedder, caplog: pytest.LogCaptureFixture
) -> None:
    documents = make_corpus(64)
    retry = RetryPolicy(attempts=10, first_delay=0.2, max_delay=2.0)
    name, thread, outcome = index_in_thread(chroma_process, documents, retry)
    stored_before_crash = wait_for_rows(chroma_process, name, at_least=8)
    chroma_process.crash()
    time.sleep(1.0)  # the indexer meets a dead server at least once
    chroma_process.restart()
    thread.join(timeout=300)

    assert not thread.is_alive() and "error" not in outcome, outcome
    assert "did not answer" in caplog.text  # it really retried
    assert stored_before_crash < len(documents)
    collection = chroma_process.client().get_collection(name)
    assert_holds_exactly(collection, documents)
    assert_vectors_match(collection, documents, engine, TOPIC)


def test_server_that_stays_down_gives_a_clear_error_and_a_rerun_completes(
    chroma_process: ChromaProcess, engine: InBedder
) -> None:
    documents = make_corpus(64)
    retry = RetryPolicy(attempts=3, first_delay=0.1, max_delay=0.2)
    name, thread, outcome = index_in_thread(chroma_process, documents, retry)
    wait_for_rows(chroma_process, name, at_least=8)
    chroma_process.crash()
    thread.join(timeout=120)

    error = outcome.get("error")
    assert isinstance(error, ChromaUnavailableError), outcome
    assert "after 3 attempts" in str(error) and "rerun" in str(error) and "Stopped at document" in str(error)

    chroma_process.restart()
    stored = chroma_process.client().get_collection(name).count()
    rerun = InstructedCorpus(chroma_process.client(), "news", model_kwargs=FLOAT32, cache=False)
    written = rerun.index(documents, [TOPIC], batch_size=8)
    assert written[TOPIC] == len(documents) - stored  # only what was missing
    collection = chroma_process.client().get_collection(name)
    assert_holds_exactly(collection, documents)
    assert_vectors_match(collection, documents, engine, TOPIC)


def test_two_processes_indexing_one_collection_end_consistent(
    chroma_process: ChromaProcess, tmp_path: Path, engine: InBedder
) -> None:
    """Overlapping halves, both instructions, started together against one server."""
    documents = make_corpus(48)
    first = write_jsonl(tmp_path / "first.jsonl", documents[:30])
    second = write_jsonl(tmp_path / "second.jsonl", documents[18:])
    common = ["--name", "news", "--instruction", TOPIC, "--instruction", FEELING, "--batch-size", "8"]
    server = ["--host", "127.0.0.1", "--port", str(chroma_process.port), "--dtype", "float32", "--no-cache"]
    processes = [
        subprocess.Popen(inbedder("index", str(part), *common, *server), stdout=subprocess.PIPE, text=True)
        for part in (first, second)
    ]
    for process in processes:
        process.wait(timeout=600)
        assert process.returncode == 0

    client = chroma_process.client()
    for instruction in (TOPIC, FEELING):
        collection = client.get_collection(collection_name("news", instruction))
        assert_holds_exactly(collection, documents)
        assert_vectors_match(collection, documents, engine, instruction)


def test_an_unreachable_chroma_server_is_one_line_naming_its_address(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(ChromaUnavailableError, match=f"http://127.0.0.1:{port}"):
        connect(host="127.0.0.1", port=port)
    (tmp_path / "docs.txt").write_text("one text\nanother text\n", encoding="utf-8")
    executable = str(Path(sys.executable).parent / "inbedder")
    for command in (
        ["collections", "--host", "127.0.0.1", "--port", str(port)],
        ["index", str(tmp_path / "docs.txt"), "--name", "news", "--instruction", "What is the topic?",
         "--host", "127.0.0.1", "--port", str(port)],
    ):  # fmt: skip
        run = subprocess.run([executable, *command], capture_output=True, text=True, timeout=300)
        assert run.returncode == 1, (command, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert f"no Chroma server answers at http://127.0.0.1:{port}" in lines[0], lines
