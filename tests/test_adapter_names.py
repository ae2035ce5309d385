"""The adapters speak their ecosystem's names (issue 37, item 3), with real LangChain, LlamaIndex
and Chroma objects and the real default model in fp32.

"Another model than the default" is the default's own GGUF file passed as a path: offline, and
without the shipped adapter (which only ``"default"`` gets), so its vectors and fingerprint
differ: an alias that were dropped would silently embed with the default and fail here.
"""

from __future__ import annotations

import chromadb
import numpy as np
import pytest
import torch
from llama_index.core.embeddings import BaseEmbedding

from inbedder_integrations.arguments import (
    ConflictingArgumentError,
    DeviceUnavailableError,
    UnknownArgumentError,
)
from inbedder_integrations.chroma import InBedderEmbeddingFunction
from inbedder_integrations.engine.loading import default_gguf_path
from inbedder_integrations.errors import InBedderError, InvalidArgumentError
from inbedder_integrations.langchain import InBedderEmbeddings
from inbedder_integrations.llama_index import InBedderEmbedding
from tests.conftest import FLOAT32

TOPIC = "What is the topic of this text?"
FEELING = "How does the writer feel?"
TEXTS = ["The striker scored twice in the cup final.", "Shares fell after the bank cut its forecast."]
OTHER_MODEL = str(default_gguf_path())
CPU32 = {**FLOAT32, "device": "cpu"}


def _close(a: object, b: object) -> None:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def _far(a: object, b: object) -> None:
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-3


@pytest.mark.slow
def test_langchain_model_name_and_device_are_honoured():
    by_alias = InBedderEmbeddings(
        model_name=OTHER_MODEL, instruction=TOPIC, device="cpu", model_kwargs=FLOAT32
    )
    canonical = InBedderEmbeddings(model=OTHER_MODEL, instruction=TOPIC, model_kwargs=CPU32)
    default = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    assert by_alias.model == OTHER_MODEL and by_alias.device == "cpu"
    assert by_alias.model_kwargs == CPU32
    assert by_alias._embedder.engine.device == "cpu"  # type: ignore[union-attr]
    assert by_alias.fingerprint == canonical.fingerprint != default.fingerprint
    _close(by_alias.embed_documents(TEXTS), canonical.embed_documents(TEXTS))
    _close(by_alias.embed_query(TEXTS[0]), canonical.embed_query(TEXTS[0]))
    _far(by_alias.embed_documents(TEXTS), default.embed_documents(TEXTS))
    # pydantic's own path (model_validate) knows the alias too, as langchain-huggingface's class does
    validated = InBedderEmbeddings.model_validate(
        {"model_name": OTHER_MODEL, "instruction": TOPIC, "model_kwargs": FLOAT32}
    )
    assert validated.model == OTHER_MODEL


@pytest.mark.slow
def test_llama_index_aliases_give_the_canonical_vectors():
    by_alias = InBedderEmbedding(
        model=OTHER_MODEL, text_instruction=FEELING, query_instruction=TOPIC,
        batch_size=2, device="cpu", model_kwargs=FLOAT32,
    )  # fmt: skip
    canonical = InBedderEmbedding(
        model_name=OTHER_MODEL, instruction=FEELING, query_instruction=TOPIC,
        embed_batch_size=2, model_kwargs=CPU32,
    )  # fmt: skip
    default = InBedderEmbedding(instruction=FEELING, query_instruction=TOPIC, model_kwargs=FLOAT32)
    assert isinstance(by_alias, BaseEmbedding)
    assert (by_alias.model_name, by_alias.instruction, by_alias.embed_batch_size) == (OTHER_MODEL, FEELING, 2)
    assert by_alias._embedder.engine.device == "cpu"  # type: ignore[union-attr]
    _close(by_alias.get_text_embedding_batch(TEXTS), canonical.get_text_embedding_batch(TEXTS))
    _close(by_alias.get_query_embedding(TEXTS[0]), canonical.get_query_embedding(TEXTS[0]))
    _far(by_alias.get_text_embedding_batch(TEXTS), default.get_text_embedding_batch(TEXTS))
    # LlamaIndex's own round trip (to_dict / from_dict) still builds the same embedder
    assert InBedderEmbedding.from_dict(by_alias.to_dict()).fingerprint == canonical.fingerprint


@pytest.mark.slow
def test_chroma_function_takes_chromas_names_and_reopens(tmp_path):
    by_alias = InBedderEmbeddingFunction(
        TOPIC, model_name=OTHER_MODEL, device="cpu", normalize_embeddings=True, model_kwargs=FLOAT32
    )
    canonical = InBedderEmbeddingFunction(TOPIC, None, OTHER_MODEL, CPU32)  # today's positional names
    assert by_alias.get_config() == canonical.get_config()
    assert by_alias.get_config()["model_kwargs"] == CPU32  # the device is persisted as a load option
    _close(by_alias(TEXTS), canonical(TEXTS))
    client = chromadb.PersistentClient(path=str(tmp_path))
    client.create_collection("news", embedding_function=by_alias)  # type: ignore[arg-type]
    client.get_collection("news").add(ids=["a", "b"], documents=TEXTS)
    # Reopened without a function: Chroma rebuilds it from the persisted config, under the trust
    # rules (device is a load option a config may set), and it answers queries.
    found = client.get_collection("news").query(query_texts=["football"], n_results=1)
    assert found["documents"] == [[TEXTS[0]]]


def test_unknown_arguments_are_refused_with_a_hint_before_anything_loads():
    # The example: today it embeds with the default model on the CPU without a word.
    # The hub id is not reachable offline: reaching the hub would raise another error.
    with pytest.raises(UnknownArgumentError, match="unknown argument 'typo_field'") as error:
        InBedderEmbedding(model="BrandonZYW/opt-1.3b-InBedder", device="cuda", typo_field=1)
    assert isinstance(error.value, InBedderError) and isinstance(error.value, TypeError)
    cases = [
        (lambda: InBedderEmbeddings(instruction=TOPIC, model_nme="x"), "did you mean 'model_name'"),
        (lambda: InBedderEmbeddings(instruction=TOPIC, instruciton=TOPIC), "did you mean 'instruction'"),
        (lambda: InBedderEmbedding(text_instuction=TOPIC), "did you mean 'text_instruction'"),
        (lambda: InBedderEmbedding(instruction=TOPIC, embed_batchsize=2), "did you mean 'embed_batch_size'"),
        (
            lambda: InBedderEmbeddingFunction(TOPIC, normalise_embeddings=True),
            "did you mean 'normalize_embeddings'",
        ),
        (lambda: InBedderEmbeddingFunction(TOPIC, devices="cpu"), "did you mean 'device'"),
    ]
    for build, hint in cases:
        with pytest.raises(UnknownArgumentError, match=hint):
            build()


def test_one_setting_given_twice_is_an_error_naming_both():
    with pytest.raises(ConflictingArgumentError, match=r"device='cpu' and model_kwargs\['device'\]='meta'"):
        InBedderEmbeddings(instruction=TOPIC, device="cpu", model_kwargs={"device": "meta"})
    with pytest.raises(ConflictingArgumentError, match=r"device='cpu' and model_kwargs\['device'\]='meta'"):
        InBedderEmbedding(instruction=TOPIC, device="cpu", model_kwargs={"device": "meta"})
    with pytest.raises(ConflictingArgumentError, match=r"device='cpu' and model_kwargs\['device'\]='meta'"):
        InBedderEmbeddingFunction(TOPIC, device="cpu", model_kwargs={"device": "meta"})
    with pytest.raises(ConflictingArgumentError, match="model='a' and model_name='b'"):
        InBedderEmbeddings(instruction=TOPIC, model="a", model_name="b")
    with pytest.raises(ConflictingArgumentError, match="instruction='a' and text_instruction='b'"):
        InBedderEmbedding(instruction="a", text_instruction="b")
    with pytest.raises(ConflictingArgumentError, match="embed_batch_size=4 and batch_size=8"):
        InBedderEmbedding(instruction=TOPIC, embed_batch_size=4, batch_size=8)
    with pytest.raises(ConflictingArgumentError, match="model='a' and model_name='b'"):
        InBedderEmbeddingFunction(TOPIC, model="a", model_name="b")


def test_a_device_this_machine_lacks_is_an_error_not_the_cpu():
    builds = [
        lambda device: InBedderEmbeddings(instruction=TOPIC, device=device, model_kwargs=FLOAT32),
        lambda device: InBedderEmbedding(instruction=TOPIC, device=device, model_kwargs=FLOAT32),
        lambda device: InBedderEmbeddingFunction(TOPIC, device=device, model_kwargs=FLOAT32),
        lambda device: InBedderEmbeddings(instruction=TOPIC, model_kwargs={**FLOAT32, "device": device}),
    ]
    for build in builds:
        with pytest.raises(InvalidArgumentError, match="'cdua' is not a torch device; did you mean 'cuda'"):
            build("cdua")
        if torch.cuda.is_available():  # a GPU machine: the model must really be there
            assert build("cuda")._embedder.engine.device.startswith("cuda")  # type: ignore[union-attr]
        else:
            with pytest.raises(DeviceUnavailableError, match=r"device='cuda'.*no CUDA GPU.*use device='cpu'"):
                build("cuda")


def test_device_with_a_server_and_unnormalised_chroma_vectors_are_refused():
    with pytest.raises(InvalidArgumentError, match="the server embeds on its own device"):
        InBedderEmbeddings(server_url="http://127.0.0.1:9", served_name="topic", device="cpu")
    with pytest.raises(InvalidArgumentError, match="the server embeds on its own device"):
        InBedderEmbeddingFunction(server_url="http://127.0.0.1:9", served_name="topic", device="cpu")
    with pytest.raises(InvalidArgumentError, match=r"normalize \(normalize_embeddings\)=False"):
        InBedderEmbeddingFunction(TOPIC, normalize_embeddings=False)
