"""`inbedder serve` with the real clients of each API, against a real server on 127.0.0.1.

The server runs in this process (uvicorn in a thread, see ``serve_in_background``)
and shares the session's fp32 engine, so each client's vectors are compared with
the engine's under the same instruction to 1e-5.  Every client is the real
library a LangChain, LlamaIndex or Chroma user installs; none is patched.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import socket
import sys
from pathlib import Path
from types import ModuleType

import httpx
import numpy as np
import pytest

from inbedder_integrations import InBedder

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background

TOPIC = "What is the topic of this text?"
TOPIC_QUERY = "Which topic is this question asking about?"
MOOD = "How does the writer feel?"
KEY = "test-key-0123456789"
TEXTS = [
    "The striker scored twice and the home side won the cup final.",
    "Shares fell sharply after the bank reported a quarterly loss.",
    "I am so happy with this phone, it works perfectly!",
]
TOLERANCE = 1e-5


def config(**changes: object) -> ServeConfig:
    instructions = (ServedInstruction("topic", TOPIC, TOPIC_QUERY), ServedInstruction("mood", MOOD, MOOD))
    settings = {"port": 0, "api_key": KEY, "cache": False, "max_inputs": 100}
    return ServeConfig(instructions, **{**settings, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server_engine(engine: InBedder) -> InBedder:
    """The session's fp32 weights without the on-disk cache: every request runs the model."""
    return InBedder.from_pretrained("default", dtype="float32", cache=False)


@pytest.fixture(scope="module")
def server(server_engine: InBedder):
    with serve_in_background(config(max_body_bytes=64 * 1024), server_engine) as running:
        yield running.url


def close(vectors: object, expected: np.ndarray) -> bool:
    return bool(np.abs(np.asarray(vectors, dtype=np.float32) - expected).max() <= TOLERANCE)


# --------------------------------------------------------------------------- OpenAI API clients


def test_openai_client_gets_the_engines_vectors_for_each_model_name(server: str, engine: InBedder) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key=KEY)
    expected = engine.embed_many(TEXTS, [TOPIC, MOOD])
    # The client's default asks for base64 and decodes it; float is the other encoding.
    for name, instruction in (("topic", TOPIC), ("mood", MOOD)):
        response = client.embeddings.create(model=name, input=TEXTS)
        assert [item.index for item in response.data] == [0, 1, 2]
        assert close([item.embedding for item in response.data], expected[instruction])
        assert response.model == name
    floats = client.embeddings.create(model="mood", input=TEXTS, encoding_format="float")
    assert close([item.embedding for item in floats.data], expected[MOOD])
    explicit = client.embeddings.create(model="mood", input=TEXTS, encoding_format="base64")
    decoded = [np.frombuffer(base64.b64decode(str(item.embedding)), "<f4") for item in explicit.data]
    assert close(decoded, expected[MOOD])
    # The query name embeds under the query instruction; an ad-hoc instruction rides in extra_body.
    query = client.embeddings.create(model="topic:query", input=TEXTS[0])
    assert close([query.data[0].embedding], engine.embed(TEXTS[:1], TOPIC_QUERY))
    adhoc = "Which country is this about?"
    extra = client.embeddings.create(model="topic", input=TEXTS[1:], extra_body={"instruction": adhoc})
    assert close([item.embedding for item in extra.data], engine.embed(TEXTS[1:], adhoc))
    # Usage counts the prompt tokens, counted here with the tokenizer itself.
    tokens = sum(len(engine.tokenizer(engine.format_prompt(t, TOPIC))["input_ids"]) for t in TEXTS)
    usage = client.embeddings.create(model="topic", input=TEXTS).usage
    assert usage.prompt_tokens == usage.total_tokens == tokens


def test_models_lists_each_name_with_its_instruction_dim_and_fingerprint(
    server: str, engine: InBedder
) -> None:
    from openai import OpenAI

    models = {m.id: m for m in OpenAI(base_url=f"{server}/v1", api_key=KEY).models.list()}
    assert set(models) == {"topic", "topic:query", "mood"}
    topic = models["topic"].model_dump()
    assert (topic["instruction"], topic["dim"]) == (TOPIC, engine.dim)
    assert models["topic:query"].model_dump()["instruction"] == TOPIC_QUERY
    assert topic["fingerprint"] == engine.fingerprint


def test_langchain_openai_embeddings(server: str, engine: InBedder) -> None:
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        base_url=f"{server}/v1",
        api_key=KEY,
        model="mood",
        check_embedding_ctx_length=False,  # type: ignore[arg-type]
    )
    assert close(embeddings.embed_documents(TEXTS), engine.embed(TEXTS, MOOD))
    assert close([embeddings.embed_query(TEXTS[2])], engine.embed(TEXTS[2:], MOOD))
    assert close(asyncio.run(embeddings.aembed_documents(TEXTS)), engine.embed(TEXTS, MOOD))


def test_langchain_openai_token_ids_are_refused_with_the_fix(server: str) -> None:
    """langchain-openai's default sends tiktoken ids: another tokenizer's, so 400, saying what to set."""
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key=KEY)
    for ids in ([1820, 3492], [[1820, 3492], [40, 1097]]):
        with pytest.raises(BadRequestError, match="check_embedding_ctx_length=False") as raised:
            client.embeddings.create(model="topic", input=ids)
        assert raised.value.code == "token_ids_not_supported"


def test_llama_index_openai_like_embedding(server: str, engine: InBedder) -> None:
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    embedding = OpenAILikeEmbedding(
        model_name="topic", api_base=f"{server}/v1", api_key=KEY, embed_batch_size=2
    )
    assert close(embedding.get_text_embedding_batch(TEXTS), engine.embed(TEXTS, TOPIC))
    assert close([embedding.get_query_embedding(TEXTS[0])], engine.embed(TEXTS[:1], TOPIC))


def test_chroma_openai_embedding_function_in_a_collection(server: str, engine: InBedder) -> None:
    import chromadb
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    function = OpenAIEmbeddingFunction(api_key=KEY, model_name="topic", api_base=f"{server}/v1")
    assert close(function(TEXTS), engine.embed(TEXTS, TOPIC))
    collection = chromadb.EphemeralClient().create_collection(
        "served", embedding_function=function, configuration={"hnsw": {"space": "cosine"}}
    )
    collection.add(ids=["sport", "finance", "phone"], documents=TEXTS)
    hits = collection.query(query_texts=["Who won the football match?"], n_results=1)
    assert hits["ids"] == [["sport"]]


# --------------------------------------------------------------------------- TEI clients


def test_huggingface_inference_client_and_langchain_endpoint_embeddings(
    server: str, engine: InBedder
) -> None:
    """huggingface_hub's InferenceClient posts to the URL itself (TEI serves / too); LangChain's
    HuggingFaceEndpointEmbeddings runs on that client.  langchain-huggingface 1.x refuses a URL as
    ``model``, so its client is pointed at the server after construction (docs/serving.md)."""
    from huggingface_hub import AsyncInferenceClient, InferenceClient
    from langchain_huggingface import HuggingFaceEndpointEmbeddings

    client = InferenceClient(model=server, token=KEY)
    assert close(client.feature_extraction(TEXTS[0], prompt_name="mood"), engine.embed(TEXTS[:1], MOOD))
    raw = client.feature_extraction(TEXTS, normalize=False)  # no prompt_name: the first name, topic
    expected_raw = engine.embed(TEXTS, TOPIC, normalize=False)
    assert np.allclose(raw, expected_raw, rtol=1e-5, atol=1e-4)

    embeddings = HuggingFaceEndpointEmbeddings(model="inbedder/mood", huggingfacehub_api_token=KEY)
    embeddings.client = InferenceClient(model=f"{server}/mood", token=KEY)
    embeddings.async_client = AsyncInferenceClient(model=f"{server}/mood", token=KEY)
    assert close(embeddings.embed_documents(TEXTS), engine.embed(TEXTS, MOOD))
    assert close(asyncio.run(embeddings.aembed_documents(TEXTS)), engine.embed(TEXTS, MOOD))


def test_llama_index_text_embeddings_inference(server: str, engine: InBedder) -> None:
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    for base, instruction in ((server, TOPIC), (f"{server}/mood", MOOD)):  # the path names the instruction
        embedding = TextEmbeddingsInference(model_name="inbedder", base_url=base, auth_token=KEY)
        assert close(embedding.get_text_embedding_batch(TEXTS), engine.embed(TEXTS, instruction))
        assert close(
            [asyncio.run(embedding.aget_query_embedding(TEXTS[1]))], engine.embed(TEXTS[1:2], instruction)
        )


def test_tei_truncate_false_refuses_a_long_text_and_names_it(server: str, engine: InBedder) -> None:
    long_text = "word " * (engine.max_length + 50)
    headers = {"Authorization": f"Bearer {KEY}"}
    refused = httpx.post(f"{server}/embed", json={"inputs": ["short", long_text]}, headers=headers)
    assert refused.status_code == 413
    assert "inputs[1]" in refused.json()["error"] and refused.json()["error_type"] == "Validation"
    cut = httpx.post(f"{server}/embed", json={"inputs": [long_text], "truncate": True}, headers=headers)
    assert cut.status_code == 200 and close(cut.json(), engine.embed([long_text], TOPIC))


# --------------------------------------------------------------------------- health, info, metrics


def test_health_is_open_info_and_metrics_need_the_key(server: str, engine: InBedder) -> None:
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server}/info").status_code == 401
    info = httpx.get(f"{server}/info", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert info["fingerprint"] == engine.fingerprint and info["instructions"]["topic:query"] == TOPIC_QUERY
    metrics = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    for name in ("inbedder_requests_total", "inbedder_texts_total", "inbedder_batch_texts_bucket",
                 "inbedder_queue_texts", "inbedder_request_seconds_bucket"):  # fmt: skip
        assert name in metrics


# --------------------------------------------------------------------------- bad input and faults


def post(url: str, body: object, *, key: str | None = KEY, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={**headers, "Content-Type": "application/json"}, **kwargs)  # type: ignore[arg-type]


def metric(url: str, name: str, key: str | None = None) -> float:
    """The sum of ``name``'s samples (over every label) on ``url``'s /metrics."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    text = httpx.get(f"{url}/metrics", headers=headers).text
    return sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith((name + " ", name + "{"))
    )


def texts_embedded(url: str) -> float:
    return metric(url, "inbedder_texts_total", KEY)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "topic", "input": ["fine", 5]}, 422, "input[1] must be a str"),
        ({"model": "topic", "input": ["fine", None]}, 422, "input[1] must be a str"),
        ({"model": "topic", "input": 5}, 422, "input must be a list of strings"),
        ({"model": "topic"}, 422, "input is required"),
        ({"model": "topic", "input": []}, 400, "must not be empty"),
        ({"model": "topic", "input": ["ok", "bad \ud800 text"]}, 400, "input[1] is not valid Unicode"),
        ({"model": "weather", "input": ["x"]}, 404, "'weather' is not served"),
        ({"model": 7, "input": ["x"]}, 422, "model must be a string"),
        ({"model": "topic", "input": ["x"], "encoding_format": "int8"}, 422, "encoding_format"),
        ({"model": "topic", "input": ["x"], "dimensions": 12}, 422, "576 dimensions"),
        ({"model": "topic", "input": ["x"] * 101}, 413, "at most 100"),
        (
            {"model": "topic", "input": ["x"], "instruction": "Why? " * 600},
            400,
            "the instruction and template alone",
        ),
        ({"model": "topic", "input": ["x"], "instruction": "  "}, 400, "non-empty question"),
        ([1, 2], 422, "must be a JSON object"),
        (b'{"model": "topic", "input": [', 400, "not valid JSON"),
        (b'{"model": "topic", "input": ["\xff"]}', 400, "not valid JSON"),
    ],
)
def test_bad_requests_get_openai_errors_naming_the_item_and_embed_nothing(
    server: str, body: object, status: int, says: str
) -> None:
    before = texts_embedded(server)
    response = post(f"{server}/v1/embeddings", body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert says in error["message"] and error["type"]
    assert texts_embedded(server) == before, "nothing of a refused request is embedded"


def test_keys_bodies_and_disconnects(server: str, engine: InBedder) -> None:
    body = {"model": "topic", "input": TEXTS[:1]}
    assert post(f"{server}/v1/embeddings", body, key=None).status_code == 401
    wrong = post(f"{server}/v1/embeddings", body, key="test-key-0123456780")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert post(f"{server}/embed", {"inputs": "x"}, key="nope").json()["error_type"] == "Unauthorized"

    oversized = {"model": "topic", "input": ["x" * 70_000]}
    assert post(f"{server}/v1/embeddings", oversized).status_code == 413  # Content-Length past the limit

    def chunks():  # no Content-Length: counted as it arrives, cut off at the limit
        yield b'{"model": "topic", "input": ["'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"]}'

    chunked = httpx.post(
        f"{server}/v1/embeddings",
        content=chunks(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert chunked.status_code == 413

    # A client that sends a request and goes away before the answer.
    host, port = server.removeprefix("http://").split(":")
    payload = json.dumps({"model": "mood", "input": ["left before the answer"] * 20}).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
    # ...and the server still answers the next one, correctly.
    after = post(f"{server}/v1/embeddings", {"model": "mood", "input": TEXTS})
    assert after.status_code == 200
    assert close([item["embedding"] for item in after.json()["data"]], engine.embed(TEXTS, MOOD))


def test_a_burst_past_the_queue_gets_503_and_the_server_serves_on(
    server_engine: InBedder, engine: InBedder
) -> None:
    """max_queue=4 texts: of 24 concurrent single-text requests, the ones past the bound get 503
    with Retry-After; all others are correct, and the server answers afterwards."""
    texts = [f"Burst message number {i} about the weather." for i in range(24)]
    expected = engine.embed(texts, TOPIC)
    with serve_in_background(config(max_queue=4, max_batch_texts=2, api_key=None), server_engine) as running:
        url = running.url

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=300) as client:
                return await asyncio.gather(
                    *(client.post(f"{url}/v1/embeddings", json={"model": "topic", "input": t}) for t in texts)
                )

        responses = asyncio.run(burst())
        refused = [r for r in responses if r.status_code == 503]
        assert refused and all(r.headers["Retry-After"] == "1" for r in refused)
        assert refused[0].json()["error"]["type"] == "server_overloaded"
        served = [(i, r) for i, r in enumerate(responses) if r.status_code == 200]
        assert len(served) + len(refused) == len(texts) and served
        for index, response in served:
            assert close([response.json()["data"][0]["embedding"]], expected[index : index + 1])
        # Idle again: even a request of more texts than max_queue is taken.
        again = httpx.post(f"{url}/v1/embeddings", json={"model": "topic", "input": texts[:6]}, timeout=300)
        assert again.status_code == 200
        assert close([item["embedding"] for item in again.json()["data"]], expected[:6])


# --------------------------------------------------------------------------- batching


def test_requests_that_arrive_together_are_one_batch_across_clients_and_instructions(
    server_engine: InBedder, engine: InBedder
) -> None:
    """8 clients (4 texts, each under both names) inside one 300 ms window: one batch of 8
    requests; each text under both instructions goes through embed_many, and every answer is
    still the engine's own vector for its instruction."""
    texts = [*TEXTS, "A fourth, calmer text about gardening."]
    with serve_in_background(config(max_wait_ms=300, api_key=None), server_engine) as running:
        url = running.url
        before = metric(url, "inbedder_batch_requests_count"), metric(url, "inbedder_batch_requests_sum")

        async def together() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=300) as client:
                return await asyncio.gather(
                    *(
                        client.post(f"{url}/v1/embeddings", json={"model": name, "input": text})
                        for text in texts
                        for name in ("topic", "mood")
                    )
                )

        responses = asyncio.run(together())
        after = metric(url, "inbedder_batch_requests_count"), metric(url, "inbedder_batch_requests_sum")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 8), "one batch held all 8 requests"
    expected = engine.embed_many(texts, [TOPIC, MOOD])
    for index, response in enumerate(responses):
        instruction = (TOPIC, MOOD)[index % 2]
        got = response.json()["data"][0]["embedding"]
        assert close([got], expected[instruction][index // 2 : index // 2 + 1])


# --------------------------------------------------------------------------- load


def serving_benchmark() -> ModuleType:
    """benchmarks/serving.py as a module: the load test runs the benchmark's own clients."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "serving.py"
    spec = importlib.util.spec_from_file_location("inbedder_serving_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_sixty_four_concurrent_clients_get_correct_answers_and_none_is_lost(
    server_engine: InBedder, engine: InBedder
) -> None:
    from tests.conftest import record_numbers

    serving = serving_benchmark()
    pool = serving.make_pool([f"{text} (load {i})" for i, text in enumerate(TEXTS * 11)])
    expected = serving.expected_vectors(engine, pool)
    with serve_in_background(serving.served(), server_engine) as running:
        result = serving.run_load(running.url, pool, expected, clients=64, seconds=4.0)
    summary = result.summary()
    record_numbers("serving", "64 clients, single texts", summary)
    assert result.answered >= 64 and result.wrong == 0 and result.lost == 0 and not result.failed, summary
