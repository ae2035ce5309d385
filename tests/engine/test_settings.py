"""The settings that shape a vector are one frozen object, checked before loading; engines can be released.

Release and clear are tested on the tiny randomly initialised RoBERTa of
conftest (no masked-LM weights exist offline, and a cheap model keeps the
session's real default model in the registry for the other tests).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations import DEFAULT_TEMPLATE, InBedder, shared
from inbedder_integrations.cache import shared_cache
from inbedder_integrations.engine import EmbeddingSettings, EngineClosedError
from inbedder_integrations.engine import engine as engine_module
from inbedder_integrations.errors import InBedderError
from inbedder_integrations.instructed import InstructedEmbedder

INSTRUCTION = "What is the topic?"


def test_settings_are_frozen_and_engine_settings_read_only(engine: InBedder) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        engine.settings.pooling = "mean_answer_tokens"  # type: ignore[misc]
    for name in ("pooling", "layer", "template", "max_length", "answer_tokens", "fingerprint"):
        with pytest.raises(AttributeError):
            setattr(engine, name, getattr(engine, name))
    assert engine.settings == EmbeddingSettings(
        pooling="last_prompt_token",
        layer=30,
        template=DEFAULT_TEMPLATE,
        max_length=512,
        answer_tokens=3,
        input_layout="template",
        transform="none",
        postprocess="none",
    )


def test_fingerprint_is_derived_from_resolved_settings(engine: InBedder) -> None:
    explicit = InBedder.from_pretrained("default", dtype="float32", pooling="last_prompt_token", layer=-1)
    through_settings = InBedder.from_pretrained(
        "default", dtype="float32", settings=EmbeddingSettings(max_length=512)
    )
    assert explicit.fingerprint == through_settings.fingerprint == engine.fingerprint
    shorter = InBedder.from_pretrained("default", dtype="float32", settings=EmbeddingSettings(max_length=256))
    # A value equal to the default is still given: None alone means "not given".
    with pytest.raises(TypeError, match="pass settings= or max_length, not both"):
        InBedder.from_pretrained("default", max_length=512, settings=EmbeddingSettings(max_length=256))
    assert shorter.fingerprint != engine.fingerprint
    # answer_tokens only shapes mean_answer_tokens vectors, so only there does it count.
    assert (
        InBedder.from_pretrained("default", dtype="float32", answer_tokens=5).fingerprint
        == engine.fingerprint
    )
    averaged = [
        InBedder.from_pretrained("default", dtype="float32", pooling="mean_answer_tokens", answer_tokens=n)
        for n in (2, 3)
    ]
    assert averaged[0].fingerprint != averaged[1].fingerprint
    # What a vector means is not how it was computed: the same on both kinds of CPU.
    auto = InBedder.from_pretrained("default")  # bf16 on a CPU with native bf16, fp32 elsewhere
    assert auto.fingerprint == engine.fingerprint
    assert (auto.cache_key == engine.cache_key) == (auto.dtype == "float32")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"max_batch_tokens": -1}, "max_batch_tokens must be a positive int"),
        ({"layer": "last"}, "layer must be an int or None"),
        ({"pooling": "cls"}, "pooling must be one of"),
        ({"template": "{input} only"}, "template must contain {instruction} exactly once"),
        ({"max_length": 4}, "max_length must be an int >= 8"),
        ({"answer_tokens": 0}, "answer_tokens must be a positive int"),
        ({"settings": EmbeddingSettings(), "pooling": "last_prompt_token"}, "pass settings= or pooling"),
        ({"settings": {"pooling": "last_prompt_token"}}, "settings must be an EmbeddingSettings"),
    ],
)
def test_bad_arguments_fail_before_the_model_loads(monkeypatch, arguments, message) -> None:
    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(engine_module, "get_loaded_model", must_not_load)
    with pytest.raises(InBedderError, match=message):
        InBedder.from_pretrained("default", **arguments)


def test_close_releases_the_model_once_no_engine_uses_it(tiny_masked_model_dir) -> None:
    # bf16: load settings no other test uses, so no engine outside this test shares the model.
    model, options = str(tiny_masked_model_dir), {"dtype": "bfloat16"}
    first, second = (
        InBedder.from_pretrained(model, **options),
        InBedder.from_pretrained(model, max_length=64, **options),
    )
    assert first._loaded is second._loaded  # one copy of the weights
    before = second.embed(["a short text"], INSTRUCTION)
    shared_model = first._loaded
    with first:
        pass
    assert first.closed and not second.closed
    with pytest.raises(EngineClosedError, match="was closed"):
        first.embed(["a short text"], INSTRUCTION)
    first.close()  # closing twice is harmless
    np.testing.assert_array_equal(second.embed(["a short text"], INSTRUCTION), before)
    assert InBedder.from_pretrained(model, **options)._loaded is shared_model, "second still uses it"
    second.close()
    again = InBedder.from_pretrained(model, **options)
    assert again._loaded is not shared_model, "a released model must not be handed out again"
    reloaded = InBedder.from_pretrained(model, max_length=64, **options)
    assert reloaded.fingerprint == second.fingerprint
    np.testing.assert_array_equal(reloaded.embed(["a short text"], INSTRUCTION), before)


def adapter(model: str, **kwargs: object) -> InstructedEmbedder:
    return InstructedEmbedder.create(model=model, instruction=INSTRUCTION, model_kwargs=dict(kwargs))


def test_clear_forgets_every_shared_model_and_cache_and_adapters_keep_working(
    tiny_masked_model_dir, tmp_path
) -> None:
    model = str(tiny_masked_model_dir)
    held, cache = adapter(model), shared_cache(tmp_path / "cache.sqlite")
    loaded = held.engine._loaded
    # Keep what the session holds (the real default model above all) to hand back afterwards.
    saved = [(table, dict(table._items)) for table in shared._REGISTRIES]
    try:
        assert shared.clear() >= 2
        assert all(len(table) == 0 for table in shared._REGISTRIES)
        assert adapter(model).engine._loaded is not loaded, "a new adapter loads the model again"
        assert shared_cache(tmp_path / "cache.sqlite") is not cache
    finally:
        for table, items in saved:
            for key, value in items.items():
                table.put(key, value)
    assert held.embed_documents_array(["still works"]).shape == (1, held.engine.dim)


def test_each_adapter_has_its_own_engine_on_one_shared_model(tiny_masked_model_dir, tmp_path) -> None:
    """Share models, not engines: closing one adapter leaves the other working, and the model
    leaves the registry when its last engine closes."""
    import shutil

    from safetensors.torch import load_file, save_file

    from inbedder_integrations.langchain import InBedderEmbeddings

    # Weights of their own, so that no other test's engine holds this model.
    folder = Path(shutil.copytree(tiny_masked_model_dir, tmp_path / "own"))
    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.01
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    model = str(folder)
    first = InBedderEmbeddings(model=model, instruction=INSTRUCTION, model_kwargs={"max_length": 96})
    second = InBedderEmbeddings(model=model, instruction=INSTRUCTION, model_kwargs={"max_length": 96})
    one, two = first._embedder.engine, second._embedder.engine
    shared_model = two._loaded
    assert one is not two and one._loaded is shared_model, "two engines, one model"
    expected = second.embed_documents(["a text"])
    first.close()
    assert one.closed and not two.closed
    assert second.embed_documents(["a text"]) == expected, "the other adapter is unaffected"
    with pytest.raises(EngineClosedError):
        first.embed_documents(["a text"])
    third = InBedderEmbeddings(model=model, instruction=INSTRUCTION, model_kwargs={"max_length": 96})
    assert third._embedder.engine._loaded is shared_model, "the model stays while an engine uses it"
    second.close()
    third.close()
    again = InBedderEmbeddings(model=model, instruction=INSTRUCTION, model_kwargs={"max_length": 96})
    assert again._embedder.engine._loaded is not shared_model, "released with its last engine"
    np.testing.assert_allclose(again.embed_documents(["a text"]), expected, atol=1e-6)
