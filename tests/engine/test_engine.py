"""The engine against independent computations on the real default model."""

from __future__ import annotations

import copy
import random
import threading
from typing import Any

import numpy as np
import pytest
import torch

from inbedder_integrations import DEFAULT_TEMPLATE, InBedder
from inbedder_integrations.engine.loading import DEFAULT_ADAPTER_DIR, default_gguf_path

TOPIC = "What is the topic of the text?"
FEELING = "How does the writer feel?"

# Very different lengths on purpose: one batch needs a lot of left padding.
TEXTS = [
    "Goal!",
    "The central bank raised interest rates by half a point on Tuesday, surprising markets.",
    "I could not stop smiling all day: my sister's wedding was perfect, the food was great "
    "and everyone danced until midnight. " * 6,
    "Rain again.",
    "The new phone's battery lasts two days, but the camera is disappointing in low light.",
]


@pytest.fixture(scope="module")
def reference() -> tuple[Any, Any]:
    """The untuned default model loaded straight from its GGUF file with plain transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def tuned_reference(reference: tuple[Any, Any]) -> tuple[Any, Any]:
    """The GGUF model with the shipped adapter applied by peft, *unmerged* (LoRA branches run apart)."""
    from peft import PeftModel

    base = copy.deepcopy(reference[0])  # peft injects its LoRA layers in place: keep the base untouched
    return PeftModel.from_pretrained(base, str(DEFAULT_ADAPTER_DIR)).eval(), reference[1]


@pytest.fixture(scope="module")
def tuned_reference_bf16(tuned_reference: tuple[Any, Any]) -> tuple[Any, Any]:
    """A plain transformers model in bf16: the LoRA merged into a copy of the fp32 reference, then cast.

    The engine instead loads the converted weights in bf16 and merges there: different roundings.
    """
    model = copy.deepcopy(tuned_reference[0]).merge_and_unload().to(torch.bfloat16)
    return model.eval(), tuned_reference[1]


def reference_prompt(text: str, instruction: str) -> str:
    """The paper's template filled by concatenation: braces in a text or instruction are plain text."""
    return "### Input:\n" + text + "\n\n### Instruction:\n" + instruction + "\n\n### Response:"


def truncated_text(tokenizer: Any, text: str, instruction: str, max_length: int) -> str:
    """docs/engine.md: only the input text is shortened, its beginning kept and its end cut, using
    the room there is: the longest prefix of the text, ending where one of its tokens ends, whose
    whole prompt fits in ``max_length`` tokens."""
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for end in sorted({end for _, end in offsets}, reverse=True):
        if len(tokenizer(reference_prompt(text[:end], instruction))["input_ids"]) <= max_length:
            return text[:end]
    return ""


def straightforward(
    reference: tuple[Any, Any], text: str, instruction: str, layer: int = -1, max_length: int | None = None
) -> np.ndarray:
    """The paper's definition, one text at a time: last prompt token, full forward."""
    model, tokenizer = reference
    if max_length is not None:
        text = truncated_text(tokenizer, text, instruction, max_length)
    encoded = tokenizer(reference_prompt(text, instruction), return_tensors="pt")
    with torch.no_grad():
        states = model(**encoded, output_hidden_states=True).hidden_states
    vector = states[layer][0, -1].float().numpy()
    return vector / np.linalg.norm(vector)


# Texts that type the template's own fields, or format() braces, must be embedded as typed.
BRACES = ["{input}", "I typed {instruction} and {} here.", "Set {0} to {name}; {input}{instruction}"]
BRACED_INSTRUCTION = "What is {input} about? {}"


@pytest.mark.slow
def test_golden_embedding_matches_straightforward_forward_pass(engine, tuned_reference):
    """The default is the base model with the shipped adapter merged in at load time."""
    assert engine.info()["adapter"] == str(DEFAULT_ADAPTER_DIR)
    texts = TEXTS + BRACES
    vectors = engine.embed(texts, TOPIC, batch_size=len(texts))
    expected = np.stack([straightforward(tuned_reference, text, TOPIC) for text in texts])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    braced = engine.embed(BRACES[1:], BRACED_INSTRUCTION)
    expected = np.stack([straightforward(tuned_reference, text, BRACED_INSTRUCTION) for text in BRACES[1:]])
    np.testing.assert_allclose(braced, expected, atol=1e-5)


@pytest.mark.slow
def test_golden_embedding_of_texts_longer_than_max_length(tuned_reference):
    max_length = 44  # cuts the long text mid-sentence; TEXTS[1] fits whole
    short = InBedder.from_pretrained("default", dtype="float32", max_length=max_length)
    texts = [TEXTS[2], TEXTS[1], TEXTS[2].replace("wedding", "{input} wedding {}")]
    tokenizer = tuned_reference[1]
    cut = [truncated_text(tokenizer, text, TOPIC, max_length) for text in texts]
    assert len(cut[0]) < len(texts[0]) // 5 and cut[1] == texts[1], "one long text, one that fits"
    assert "{input} wedding {}" in cut[2]
    vectors = short.embed(texts, TOPIC, batch_size=len(texts))
    expected = np.stack(
        [straightforward(tuned_reference, text, TOPIC, max_length=max_length) for text in texts]
    )
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


@pytest.mark.slow
def test_golden_embedding_in_bf16(engine, engine_bf16, tuned_reference_bf16):
    """bf16 against a plain transformers bf16 forward pass, to cosine >= 0.999.

    Measured on this CPU: 0.9996-0.9998 (bf16 keeps 8 significant bits; the engine merges the LoRA
    in bf16, the reference in fp32 before the cast).  Pooling the token before the last gives
    0.07-0.2, another instruction 0.24-0.43: the threshold separates right from wrong by far.
    bf16 is emulated on AVX2 (seconds a text here): two short texts, one batch with left padding.
    """
    texts = ["Goal!", BRACES[1]]
    assert next(engine_bf16.model.parameters()).dtype == torch.bfloat16
    vectors = engine_bf16.embed(texts, TOPIC, batch_size=len(texts))
    expected = np.stack([straightforward(tuned_reference_bf16, text, TOPIC) for text in texts])
    assert (vectors * expected).sum(axis=1).min() >= 0.999
    # It really ran in bf16: fp32 differs by more than fp32's own noise (measured 0.9998).
    assert (vectors * engine.embed(texts, TOPIC)).sum(axis=1).max() < 0.99999


@pytest.mark.slow
def test_untuned_base_matches_plain_transformers_at_any_layer(engine, reference):
    untuned = InBedder.from_pretrained("default", adapter=None, dtype="float32")
    assert untuned.info()["adapter"] is None and untuned.fingerprint != engine.fingerprint
    vectors = untuned.embed(TEXTS, TOPIC, batch_size=len(TEXTS))
    expected = np.stack([straightforward(reference, text, TOPIC) for text in TEXTS])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    layer_12 = InBedder.from_pretrained("default", adapter=None, dtype="float32", layer=12)
    vectors = layer_12.embed(TEXTS[:2], FEELING)
    expected = np.stack([straightforward(reference, text, FEELING, layer=12) for text in TEXTS[:2]])
    np.testing.assert_allclose(vectors, expected, atol=1e-5)


def test_output_type_shape_and_norm(engine):
    vectors = engine.embed(TEXTS, TOPIC)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), engine.dim) == (len(TEXTS), 576)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    raw = engine.embed(TEXTS, TOPIC, normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), vectors, atol=1e-6)


def test_instruction_changes_the_vector(engine):
    topic, feeling = engine.embed(TEXTS, TOPIC), engine.embed(TEXTS, FEELING)
    cosines = (topic * feeling).sum(axis=1)
    assert np.all(cosines < 0.999)


def test_order_invariance_across_batch_sizes(engine):
    reference_vectors = engine.embed(TEXTS, TOPIC, batch_size=1)
    permutation = list(range(len(TEXTS)))
    random.Random(7).shuffle(permutation)
    shuffled = [TEXTS[i] for i in permutation]
    for batch_size in (2, 3, 16):
        vectors = engine.embed(shuffled, TOPIC, batch_size=batch_size)
        np.testing.assert_allclose(vectors, reference_vectors[permutation], atol=1e-5)


def test_embedding_is_deterministic(engine):
    np.testing.assert_array_equal(engine.embed(TEXTS, TOPIC), engine.embed(TEXTS, TOPIC))


def test_empty_and_whitespace_texts_embed_deterministically(engine):
    texts = ["", "   ", "\n\t", ""]
    first, second = engine.embed(texts, TOPIC), engine.embed(texts, TOPIC)
    np.testing.assert_array_equal(first, second)
    assert np.isfinite(first).all()
    np.testing.assert_allclose(first[0], first[3], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)


def test_empty_list_gives_empty_array(engine):
    vectors = engine.embed([], TOPIC)
    assert vectors.shape == (0, engine.dim) and vectors.dtype == np.float32


@pytest.mark.slow
def test_bf16_close_to_fp32(engine, engine_bf16):
    assert engine_bf16.dtype == "bfloat16"
    cosines = (engine.embed(TEXTS, TOPIC) * engine_bf16.embed(TEXTS, TOPIC)).sum(axis=1)
    assert cosines.min() > 0.999


def test_concurrent_threads_match_sequential(engine):
    instructions = [TOPIC, FEELING]
    sequential = {instruction: engine.embed(TEXTS, instruction) for instruction in instructions}
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            results[worker] = engine.embed(TEXTS, instructions[worker % 2])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    assert len(results) == 8
    for worker, vectors in results.items():
        np.testing.assert_array_equal(vectors, sequential[instructions[worker % 2]])


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        (None, TypeError, "texts must be a list of strings, got NoneType"),
        ("a bare string", TypeError, "wrap it in a list"),
        (["fine", None], TypeError, r"texts\[1\] must be a str, got NoneType"),
        (["fine", "ok", 3], TypeError, r"texts\[2\] must be a str, got int"),
        ([b"bytes"], TypeError, r"texts\[0\] must be a str, got bytes"),
        ([["nested"]], TypeError, r"texts\[0\] must be a str, got list"),
        (42, TypeError, "texts must be a list of strings, got int"),
    ],
)
def test_bad_texts_raise_clear_errors(engine, texts, error, message):
    with pytest.raises(error, match=message):
        engine.embed(texts, TOPIC)
    with pytest.raises(error, match=message):
        engine.answer(texts, TOPIC)


@pytest.mark.parametrize(
    ("instruction", "error", "message"),
    [
        ("", ValueError, "instruction must be a non-empty question"),
        ("   \n", ValueError, "instruction must be a non-empty question"),
        (None, TypeError, "instruction must be a str, got NoneType"),
        (["What?"], TypeError, "instruction must be a str, got list"),
    ],
)
def test_bad_instruction_raises_clear_errors(engine, instruction, error, message):
    with pytest.raises(error, match=message):
        engine.embed(["text"], instruction)


def test_bad_constructor_arguments(engine):
    with pytest.raises(ValueError, match="pooling must be one of"):
        InBedder.from_pretrained("default", dtype="float32", pooling="cls")
    with pytest.raises(ValueError, match="does not apply to a causal LM"):
        InBedder.from_pretrained("default", dtype="float32", pooling="mask_mean")
    with pytest.raises(ValueError, match="layer must be an int"):
        InBedder.from_pretrained("default", dtype="float32", layer=99)
    with pytest.raises(ValueError, match="dtype must be 'auto' or one of"):
        InBedder.from_pretrained("default", dtype="float8")
    with pytest.raises(ValueError, match=r"must contain \{instruction\} exactly once"):
        InBedder.from_pretrained("default", dtype="float32", template="{input} only")
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        InBedder.from_pretrained("/nonexistent/model.gguf")


def test_answer_is_greedy_short_and_deterministic(engine):
    texts = ["The striker scored twice and the home team won the cup final.", ""]
    first = engine.answer(texts, TOPIC, max_new_tokens=8)
    assert first == engine.answer(texts, TOPIC, max_new_tokens=8)
    assert all(isinstance(answer, str) for answer in first)
    assert first[0]
    assert len(engine.tokenizer(first[0])["input_ids"]) <= 8


def test_an_answer_ends_at_the_first_special_token(engine):
    """The shipped adapter ends answers with <|im_start|> (trained where the tokenizer named it EOS):
    generation stops there too, instead of running on into chat-template role names."""
    answers = engine.answer(["I loved every minute of this wonderful film."], "How does the writer feel?")
    ids = engine.tokenizer(answers[0], add_special_tokens=False)["input_ids"]
    assert answers[0] and len(ids) <= 4 and "assistant" not in answers[0]


def test_mean_answer_tokens_with_one_token_equals_last_prompt_token(engine):
    one_token = InBedder.from_pretrained(
        "default", dtype="float32", pooling="mean_answer_tokens", answer_tokens=1
    )
    np.testing.assert_allclose(one_token.embed(TEXTS, TOPIC), engine.embed(TEXTS, TOPIC), atol=1e-5)


def test_mean_answer_tokens_averages_the_answer_states(engine):
    avg_gen = InBedder.from_pretrained(
        "default", dtype="float32", pooling="mean_answer_tokens", answer_tokens=4
    )
    text = TEXTS[1]
    # Independent: generate with plain transformers, then average the states that produced tokens.
    model, tokenizer = engine.model, engine.tokenizer
    encoded = tokenizer(engine.format_prompt(text, TOPIC), return_tensors="pt")
    with torch.no_grad():
        out = model.generate(
            **encoded,
            max_new_tokens=4,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
            output_hidden_states=True,
            return_dict_in_generate=True,
        )
    produced = out.sequences[0, encoded["input_ids"].shape[1] :].tolist()
    states = [out.hidden_states[0][-1][0, -1]] + [step[-1][0, -1] for step in out.hidden_states[1:]]
    kept = [states[0]]
    for token, state in zip(produced[1:], states[1:], strict=False):
        if token in tokenizer.all_special_ids:
            break
        kept.append(state)
    expected = torch.stack(kept).mean(0).numpy()
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(avg_gen.embed([text], TOPIC)[0], expected, atol=1e-4)
    assert avg_gen.fingerprint != engine.fingerprint


def test_registry_shares_one_model_per_configuration(engine):
    again = InBedder.from_pretrained("default", dtype="float32", pooling="last_prompt_token")
    assert again._loaded is engine._loaded
    assert again.fingerprint == engine.fingerprint


def test_fingerprint_changes_with_everything_that_changes_vectors(engine):
    variants = [
        InBedder.from_pretrained("default", dtype="float32", adapter=None),
        InBedder.from_pretrained("default", dtype="float32", layer=10),
        InBedder.from_pretrained("default", dtype="float32", max_length=256),
        InBedder.from_pretrained("default", dtype="float32", pooling="mean_answer_tokens"),
        InBedder.from_pretrained(
            "default", dtype="float32", template=DEFAULT_TEMPLATE.replace("### Response:", "### Answer:")
        ),
    ]
    fingerprints = {engine.fingerprint} | {variant.fingerprint for variant in variants}
    assert len(fingerprints) == len(variants) + 1
    same_layer = InBedder.from_pretrained("default", dtype="float32", layer=-1)
    assert same_layer.fingerprint == engine.fingerprint
    # The dtype changes how a vector is computed, not what it means: one fingerprint, two cache keys.
    bf16 = InBedder.from_pretrained("default", dtype="bfloat16")
    assert bf16.fingerprint == engine.fingerprint and bf16.cache_key != engine.cache_key


def test_progress_bar_on_request(engine, capsys):
    engine.embed(TEXTS, TOPIC, show_progress=True)
    assert "embed" in capsys.readouterr().err
    engine.embed(TEXTS, TOPIC)
    assert capsys.readouterr().err == ""
