"""A server that documents itself: schemas in /openapi.json, one tokenisation per request,
batches cut by real token counts, one ``max_batch_tokens``, routes declared once.

Real servers on 127.0.0.1 sharing the session's fp32 weights, and a real batcher.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import numpy as np
import pytest

from inbedder_integrations import InBedder

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.engine import engine as engine_module
from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.serving import (
    DynamicBatcher,
    EmbedRequest,
    ServeConfig,
    ServedInstruction,
    create_app,
    serve_in_background,
)
from inbedder_integrations.serving.config import RESERVED_NAMES, ROUTE_PATHS, check_route_names

TOPIC = "What is the topic of this text?"
TEXTS = ["The striker scored twice.", "Shares fell after the loss.", "I love this phone!"]


def config(**changes: object) -> ServeConfig:
    settings = {"port": 0, "cache": False}
    return ServeConfig((ServedInstruction("topic", TOPIC),), **{**settings, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server_engine(engine: InBedder) -> InBedder:
    return InBedder.from_pretrained("default", dtype="float32", cache=False)


@pytest.fixture(scope="module")
def server(server_engine: InBedder):
    with serve_in_background(config(), server_engine) as running:
        yield running.url


def test_openapi_shows_every_routes_request_and_response_schema(server: str) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    embeddings = spec["paths"]["/v1/embeddings"]["post"]
    request = embeddings["requestBody"]["content"]["application/json"]["schema"]
    assert {"input", "model", "instruction", "encoding_format", "dimensions"} <= set(request["properties"])
    assert request["required"] == ["input"]
    answer = embeddings["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/OpenAIEmbeddingResponse"}
    schemas = spec["components"]["schemas"]
    assert {"data", "model", "usage"} <= set(schemas["OpenAIEmbeddingResponse"]["properties"])
    assert "OpenAIError" in schemas and "TEIError" in schemas
    tei = spec["paths"]["/embed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"inputs", "prompt_name", "normalize", "truncate"} <= set(tei["properties"])
    for path in ("/v1/models", "/info", "/health"):
        operation = spec["paths"][path]["get"]
        assert "$ref" in operation["responses"]["200"]["content"]["application/json"]["schema"], path
    assert {"max_batch_tokens", "fingerprint", "instructions"} <= set(schemas["InfoResponse"]["properties"])


def test_a_wrong_field_gets_a_422_in_each_apis_shape(server: str) -> None:
    openai = httpx.post(f"{server}/v1/embeddings", json={"input": "x", "model": "topic", "dimensions": "9"})
    assert openai.status_code == 422
    assert (
        openai.json()["error"]["param"] == "dimensions" and "an integer" in openai.json()["error"]["message"]
    )
    tei = httpx.post(f"{server}/embed", json={"inputs": "x", "normalize": "yes"})
    assert tei.status_code == 422
    assert (
        tei.json()["error_type"] == "Validation" and "normalize must be true or false" in tei.json()["error"]
    )


def test_usage_counts_the_real_prompt_tokens(server: str, engine: InBedder) -> None:
    response = httpx.post(f"{server}/v1/embeddings", json={"model": "topic", "input": TEXTS})
    tokens = sum(size.tokens for size in engine.prompt_sizes(TEXTS, TOPIC))
    assert response.json()["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_each_text_is_checked_and_tokenised_once_on_its_way_to_the_model(
    server: str, server_engine: InBedder, engine: InBedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = server_engine._live_runner.prompts
    calls = {"tokenised": 0, "checked": 0}
    encode, check = prompts.encode_and_tell, engine_module.validate_texts

    def counting_encode(text: str, instruction: str) -> tuple[list[int], bool]:
        calls["tokenised"] += 1
        return encode(text, instruction)

    def counting_check(*args: object, **kwargs: object) -> list[str]:
        calls["checked"] += 1
        return check(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prompts, "encode_and_tell", counting_encode)
    monkeypatch.setattr(engine_module, "validate_texts", counting_check)
    texts = [f"{text} (once)" for text in TEXTS]
    response = httpx.post(f"{server}/v1/embeddings", json={"model": "topic", "input": texts})
    vectors = np.asarray([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    assert calls == {"tokenised": len(texts), "checked": 1}
    monkeypatch.undo()
    assert np.abs(vectors - engine.embed(texts, TOPIC)).max() <= 1e-5


def test_info_reports_the_one_token_budget_the_engine_runs_under(
    server: str, server_engine: InBedder
) -> None:
    assert httpx.get(f"{server}/info").json()["max_batch_tokens"] == server_engine.max_batch_tokens == 4096
    with pytest.raises(InvalidArgumentError, match="max_batch_tokens=1000 differs"):
        create_app(config(max_batch_tokens=1000), server_engine)
    own = InBedder.from_pretrained("default", dtype="float32", cache=False, max_batch_tokens=1000)
    with serve_in_background(config(max_batch_tokens=1000), own) as running:
        assert httpx.get(f"{running.url}/info").json()["max_batch_tokens"] == 1000


def test_batches_are_cut_by_real_token_counts(engine: InBedder) -> None:
    """Four requests of one text whose prompt is long in tokens but short in characters (CJK):
    a budget of two prompts takes two requests per batch.  A characters/3 estimate counted
    each as a fifth of its real size and would have taken all four at once."""
    text = "数据科学家们在研究机器学习。" * 12
    tokens = engine.prompt_sizes([text], TOPIC)[0].tokens
    assert len(text) // 3 < tokens / 2, "the text must be one a character estimate gets wrong"
    budget = InBedder.from_pretrained(
        "default", dtype="float32", cache=False, max_batch_tokens=2 * tokens + 10
    )
    batches: list[int] = []
    batcher = DynamicBatcher(
        budget, max_batch_texts=64, max_batch_tokens=budget.max_batch_tokens, max_wait_s=0.3, max_queue=100,
        on_batch=lambda requests, texts: batches.append(requests),
    )  # fmt: skip

    async def four() -> list[np.ndarray]:
        requests = [EmbedRequest(budget.encode_prompts([f"{i} {text}"], TOPIC)) for i in range(4)]
        results = await asyncio.gather(*(batcher.embed(request) for request in requests))
        return [result.vectors for result in results]

    batcher.start()
    try:
        vectors = asyncio.run(four())
    finally:
        batcher.close()
    assert batches == [2, 2]
    expected = engine.embed([f"{i} {text}" for i in range(4)], TOPIC)
    assert np.abs(np.concatenate(vectors) - expected).max() <= 1e-5


def test_route_names_and_metrics_labels_come_from_the_routes(server: str, server_engine: InBedder) -> None:
    assert set(RESERVED_NAMES) == {
        "v1",
        "embed",
        "health",
        "info",
        "metrics",
        "docs",
        "openapi.json",
        "redoc",
    }
    with pytest.raises(InvalidArgumentError, match="taken by an endpoint"):
        ServedInstruction("openapi.json", TOPIC)
    with pytest.raises(RuntimeError, match=r"\['/v1/rerank'\]"):
        check_route_names([*ROUTE_PATHS, "/v1/rerank"])
    app = create_app(config(), server_engine)
    assert {route.path for route in app.routes} == set(ROUTE_PATHS)  # type: ignore[attr-defined]
    httpx.post(f"{server}/topic", json={"inputs": "x"})
    httpx.post(f"{server}/a/b/c", json={"inputs": "x"})
    text = httpx.get(f"{server}/metrics").text
    assert 'endpoint="/{name}",status="200"' in text and 'endpoint="other",status="404"' in text


def test_tokenising_does_not_wait_for_a_running_batch(server_engine: InBedder) -> None:
    """The request side tokenises under the tokenizer's lock, not the model's: while a
    forward pass holds the model, a new request's prompts are still made."""
    done = threading.Event()
    with server_engine._loaded.lock:  # a batch "running"
        worker = threading.Thread(
            target=lambda: (server_engine.encode_prompts(TEXTS, TOPIC), done.set()), daemon=True
        )
        worker.start()
        assert done.wait(10), "encode_prompts waited for the model's lock"
