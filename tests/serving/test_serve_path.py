"""The server path runs one way: each request is tokenised once, each batch goes to the engine
once, and the engine normalises.

A real server on 127.0.0.1 with its own fp32 engine.  Nothing is mocked: the engine's own
methods, and its prompt tokenizer's, are wrapped to count the calls that pass through them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from inbedder_integrations import InBedder

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background

TOPIC = "What is the topic of this text?"
TEXTS = [f"Message {i}: the parcel came {'very ' * i}late, and the box was torn." for i in range(10)]


class Calls:
    """What reached the engine: prompts tokenised, and each ``embed_encoded`` call's size and
    ``normalize``."""

    def __init__(self) -> None:
        self.tokenised: list[str] = []
        self.encode_prompts = 0
        self.batches: list[tuple[int, bool]] = []

    def clear(self) -> None:
        self.tokenised.clear()
        self.batches.clear()
        self.encode_prompts = 0


@pytest.fixture(scope="module")
def counted() -> Iterator[tuple[InBedder, Calls]]:
    """A real engine whose tokenising and embedding entry points count their calls."""
    engine = InBedder.from_pretrained("default", dtype="float32", cache=False)
    calls = Calls()
    prompts = engine._live_runner.prompts
    tell, encode, embed = prompts.encode_and_tell, engine.encode_prompts, engine.embed_encoded

    def counting_tell(text: str, instruction: str) -> Any:
        calls.tokenised.append(text)
        return tell(text, instruction)

    def counting_encode(*args: Any, **kwargs: Any) -> Any:
        calls.encode_prompts += 1
        return encode(*args, **kwargs)

    def counting_embed(parts: Any, *, normalize: bool = True) -> Any:
        calls.batches.append((sum(len(part) for part in parts), normalize))
        return embed(parts, normalize=normalize)

    prompts.encode_and_tell = counting_tell  # type: ignore[method-assign]
    engine.encode_prompts = counting_encode  # type: ignore[method-assign]
    engine.embed_encoded = counting_embed  # type: ignore[method-assign]
    try:
        yield engine, calls
    finally:
        del prompts.encode_and_tell
        engine.close()


@pytest.fixture(scope="module")
def server(counted: tuple[InBedder, Calls]) -> Iterator[str]:
    settings: dict[str, Any] = {"port": 0, "cache": False, "max_batch_texts": 4, "max_wait_ms": 1}
    with serve_in_background(
        ServeConfig((ServedInstruction("topic", TOPIC),), **settings), counted[0]
    ) as running:
        yield running.url


def test_each_request_is_tokenised_once_and_each_batch_reaches_the_engine_once(
    server: str, counted: tuple[InBedder, Calls]
) -> None:
    _, calls = counted
    calls.clear()
    response = httpx.post(f"{server}/v1/embeddings", json={"model": "topic", "input": TEXTS}, timeout=300)
    assert response.status_code == 200
    assert calls.encode_prompts == 1
    assert sorted(calls.tokenised) == sorted(TEXTS), "each text's prompt made once"
    # 10 texts under max_batch_texts=4: three batches, each handed to the engine once, which
    # normalises them (the batcher does not).
    assert calls.batches == [(4, True), (4, True), (2, True)]
    calls.clear()
    raw = httpx.post(f"{server}/embed", json={"inputs": TEXTS[:3], "normalize": False}, timeout=300)
    assert raw.status_code == 200
    assert (calls.encode_prompts, sorted(calls.tokenised)) == (1, sorted(TEXTS[:3]))
    assert calls.batches == [(3, False)]


def test_normalised_answers_are_the_raw_answers_divided_by_their_norm(server: str) -> None:
    """A TEI ``normalize=true`` answer (and OpenAI's) is, bit for bit, the ``normalize=false``
    answer divided by its norm: never left raw.  (A second division would not show here: the
    norm of these float32 unit vectors rounds to 1.0, so the first test holds where it happens.)"""
    body = {"inputs": TEXTS}
    raw = np.asarray(httpx.post(f"{server}/embed", json={**body, "normalize": False}, timeout=300).json())
    unit = np.asarray(httpx.post(f"{server}/embed", json=body, timeout=300).json())
    raw, unit = raw.astype(np.float32), unit.astype(np.float32)
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).min() > 0.1, "raw vectors are not unit already"
    once = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
    assert np.array_equal(unit, once)
    openai = httpx.post(f"{server}/v1/embeddings", json={"model": "topic", "input": TEXTS}, timeout=300)
    vectors = np.asarray([item["embedding"] for item in openai.json()["data"]], dtype=np.float32)
    assert np.array_equal(vectors, once)
