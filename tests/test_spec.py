"""The ground floor's value and protocol (issue 36): an :class:`EmbedderSpec` is frozen, its
config is JSON and never holds a key, ``from_config`` is where a stranger's config meets
issue 34's rules, ``build`` makes what the adapters build, and both embedders are
:class:`Embedder`s (``pyright tests/test_spec.py`` checks the same statically)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator

import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.chroma import InBedderEmbeddingFunction
from inbedder_integrations.embedder import Embedder
from inbedder_integrations.errors import InvalidArgumentError, InvalidTypeError, UntrustedConfigError
from inbedder_integrations.instructed import build_embedder
from inbedder_integrations.local import InstructedEmbedder
from inbedder_integrations.remote import RemoteEmbedder
from inbedder_integrations.retry import Backoff
from inbedder_integrations.spec import EmbedderSpec
from tests.conftest import FLOAT32
from tests.fake_server import DIM, FINGERPRINT, INSTRUCTION, FakeServer

TOPIC = "What is the topic of this text?"
QUERY = "Which topic is this question asking about?"
DOCS = ["The striker scored twice in the final.", "The bank raised interest rates."]


def as_embedder(embedder: InstructedEmbedder | RemoteEmbedder) -> Embedder:
    """Both siblings satisfy the protocol: pyright checks this assignment, isinstance the rest."""
    return embedder


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from FakeServer().serve()


def test_a_spec_is_a_frozen_value() -> None:
    options = {"dtype": "float32"}
    spec = EmbedderSpec("default", TOPIC, QUERY, options, batch_size=8)
    options["dtype"] = "bfloat16"
    assert spec.model_kwargs == {"dtype": "float32"}, "a copy, not the caller's dict"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.model = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.model_kwargs["dtype"] = "bfloat16"  # type: ignore[index]
    assert spec == EmbedderSpec("default", TOPIC, QUERY, {"dtype": "float32"}, batch_size=8)
    with pytest.raises(InvalidTypeError, match="model_kwargs must be a mapping"):
        EmbedderSpec(model_kwargs=["dtype"])  # type: ignore[arg-type]


def test_the_config_is_json_and_never_holds_the_key() -> None:
    local = EmbedderSpec("default", TOPIC, QUERY, FLOAT32)
    assert json.loads(json.dumps(local.to_config())) == {
        "model": "default", "instruction": TOPIC, "query_instruction": QUERY, "model_kwargs": FLOAT32,
    }  # fmt: skip
    served = EmbedderSpec(
        instruction=TOPIC, server_url="http://127.0.0.1:1", served_name="topic", api_key="sk-secret-1"
    )
    config = served.to_config()
    assert "sk-secret-1" not in json.dumps(config) and "sk-secret-1" not in repr(served)
    assert config["server_url"] == "http://127.0.0.1:1" and config["api_key_env_var"] is None
    with pytest.raises(InvalidTypeError, match=r"model_kwargs\['cache'\] must be a JSON scalar"):
        EmbedderSpec(instruction=TOPIC, model_kwargs={"cache": object()}).to_config()


def test_from_config_applies_the_trust_rules(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"model": "default", "instruction": TOPIC, "query_instruction": TOPIC}
    with pytest.raises(UntrustedConfigError, match="trust_remote_code"):
        EmbedderSpec.from_config({**base, "model_kwargs": {"trust_remote_code": True}})
    with pytest.raises(UntrustedConfigError, match="'pickle_module'"):
        EmbedderSpec.from_config({**base, "model_kwargs": {"pickle_module": "os"}})
    assert EmbedderSpec.from_config({**base, "model_kwargs": FLOAT32}) == EmbedderSpec(
        "default", TOPIC, TOPIC, FLOAT32
    )
    served = {**base, "model_kwargs": {}, "server_url": fake.url, "served_name": "topic"}
    with pytest.raises(UntrustedConfigError, match="INBEDDER_TRUSTED_SERVERS"):
        EmbedderSpec.from_config({**served, "api_key_env_var": "AWS_SECRET_ACCESS_KEY"})
    assert fake.requests == [], "refused before anything is sent"
    monkeypatch.setenv("INBEDDER_TRUSTED_SERVERS", fake.url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-this-server")
    monkeypatch.setenv("INBEDDER_API_KEY", "the-process-key")
    spec = EmbedderSpec.from_config({**served, "api_key_env_var": "AWS_SECRET_ACCESS_KEY"})
    assert spec.api_key_env_var == "INBEDDER_API_KEY", "never the variable the config names"
    remote = spec.build()
    assert isinstance(remote, RemoteEmbedder) and remote.api_key == "the-process-key"
    assert {request.headers.get("Authorization") for request in fake.requests} == {"Bearer the-process-key"}
    with pytest.raises(InvalidArgumentError, match="lacks"):
        EmbedderSpec.from_config({"model": "default"})


def test_build_makes_what_build_embedder_makes_and_both_are_embedders(
    engine: InBedder, fake: FakeServer
) -> None:
    spec = EmbedderSpec("default", TOPIC, QUERY, FLOAT32)
    built = spec.build()
    adapter = build_embedder(
        server_url=None, served_name=None, api_key=None, model="default", instruction=TOPIC,
        query_instruction=QUERY, model_kwargs=FLOAT32, batch_size=None, normalize=True,
    )  # fmt: skip
    assert isinstance(built, InstructedEmbedder) and isinstance(built, Embedder)
    assert np.array_equal(built.embed_documents_array(DOCS), adapter.embed_documents_array(DOCS))
    assert np.array_equal(built.embed_queries_array(DOCS), engine.embed(DOCS, QUERY))
    assert np.array_equal(asyncio.run(built.aembed_documents_array(DOCS)), engine.embed(DOCS, TOPIC))
    assert np.array_equal(asyncio.run(built.aembed_queries_array(DOCS)), engine.embed(DOCS, QUERY))
    assert (built.fingerprint, built.dim) == (engine.fingerprint, engine.dim)

    remote = as_embedder(EmbedderSpec(server_url=fake.url, served_name="topic").build())
    assert isinstance(remote, Embedder) and (remote.fingerprint, remote.dim) == (FINGERPRINT, DIM)
    assert asyncio.run(remote.aembed_documents_array(DOCS)).shape == (2, DIM)
    assert not isinstance(engine, Embedder), "an engine embeds under any instruction: not bound to one"
    with pytest.raises(InvalidArgumentError, match="serves 'topic' with instruction="):
        EmbedderSpec(instruction="Another question?", server_url=fake.url, served_name="topic").build()
    with pytest.raises(InvalidArgumentError, match="instruction is required"):
        EmbedderSpec().build()
    with pytest.raises(InvalidArgumentError, match="server_url needs served_name"):
        EmbedderSpec(server_url=fake.url).build()
    assert remote.instruction == INSTRUCTION


def test_chroma_persists_the_spec_in_its_old_form(engine: InBedder) -> None:
    """The persisted config keeps its keys and their order: existing collections open unchanged."""
    function = InBedderEmbeddingFunction(TOPIC, QUERY, model_kwargs=FLOAT32)
    config = function.get_config()
    assert list(config) == [
        "model", "instruction", "query_instruction", "model_kwargs", "fingerprint", "dim",
    ]  # fmt: skip
    assert config == {**function.spec.to_config(), "fingerprint": engine.fingerprint, "dim": engine.dim}
    rebuilt = InBedderEmbeddingFunction.build_from_config(config)
    assert rebuilt.get_config() == config and rebuilt.spec == function.spec
    with pytest.raises(InvalidArgumentError, match="never holds a key"):
        InBedderEmbeddingFunction.from_spec(
            EmbedderSpec(server_url="http://127.0.0.1:1", served_name="topic", api_key="k")
        )


def test_one_backoff_schedule() -> None:
    assert [delay for _, delay in Backoff().tries()] == [0.5, 1, 2, 4, 8, 8, 8, 0]
    assert sum(delay for _, delay in Backoff().tries()) == 31.5, "RetryPolicy's documented budget"
    assert list(Backoff(3, 0.1, 0.15).tries()) == [(1, 0.1), (2, 0.15), (3, 0.0)]
    with pytest.raises(InvalidArgumentError, match="first_delay"):
        Backoff(first_delay=-1)


def test_a_corpus_takes_a_spec_of_its_model(tmp_path) -> None:
    from inbedder_integrations.corpus import InstructedCorpus, connect

    client = connect(tmp_path)
    corpus = InstructedCorpus(client, "specced", model=EmbedderSpec("default", TOPIC, model_kwargs=FLOAT32))
    assert (corpus.model, corpus.model_kwargs) == ("default", FLOAT32)
    assert corpus.spec == EmbedderSpec("default", model_kwargs=FLOAT32), (
        "no instruction: each collection has its own"
    )
    assert corpus.embedder_spec(TOPIC, QUERY) == EmbedderSpec("default", TOPIC, QUERY, FLOAT32)
    with pytest.raises(InvalidArgumentError, match="local model"):
        InstructedCorpus(
            client, "served", model=EmbedderSpec(server_url="http://127.0.0.1:1", served_name="t")
        )
    with pytest.raises(InvalidArgumentError, match="no model_kwargs= besides"):
        InstructedCorpus(client, "twice", model=EmbedderSpec(), model_kwargs=FLOAT32)
