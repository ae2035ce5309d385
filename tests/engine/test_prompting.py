"""Prompt construction on the real default tokenizer: truncation and special-token safety."""

from __future__ import annotations

import numpy as np
import pytest

from inbedder_integrations import DEFAULT_TEMPLATE, InBedder
from inbedder_integrations.engine.prompting import PromptTokenizer

INSTRUCTION = "Which sport is this about?"


def test_template_is_the_papers_exactly():
    assert DEFAULT_TEMPLATE == "### Input:\n{input}\n\n### Instruction:\n{instruction}\n\n### Response:"


def test_prompt_ids_equal_plain_tokenization(engine):
    prompts = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, 512)
    for text in ["Hello world", "trailing space ", "  leading", "", "tabs\tand\nnewlines\n"]:
        expected = engine.tokenizer(DEFAULT_TEMPLATE.format(input=text, instruction=INSTRUCTION))["input_ids"]
        assert prompts.encode(text, INSTRUCTION) == list(expected)


@pytest.mark.parametrize(
    ("text", "instruction"),
    [
        ("a {instruction} b", INSTRUCTION),
        ("{input}", INSTRUCTION),
        ("{} {0} {name} {{", INSTRUCTION),
        ("a {instruction} b", "What is {input} about? {}"),
    ],
)
def test_braces_in_text_stay_literal(engine, text, instruction):
    prompts = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, 512)
    expected = "### Input:\n" + text + "\n\n### Instruction:\n" + instruction + "\n\n### Response:"
    assert prompts.format(text, instruction) == expected
    assert prompts.encode(text, instruction) == list(engine.tokenizer(expected)["input_ids"])


@pytest.mark.parametrize("max_length", [40, 64, 128])
def test_truncation_cuts_only_the_input(engine, max_length):
    prompts = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, max_length)
    document = "The referee blew the whistle and the crowd roared. " * 20000  # ~1 MB
    assert len(document) > 1_000_000
    ids = prompts.encode(document, INSTRUCTION)
    assert len(ids) <= max_length
    decoded = engine.tokenizer.decode(ids)
    assert decoded.endswith(f"\n\n### Instruction:\n{INSTRUCTION}\n\n### Response:")
    kept = decoded.removeprefix("### Input:\n").split("\n\n### Instruction:")[0]
    assert kept and document.startswith(kept)
    assert len(ids) >= max_length - 3, "truncation should use the room it has"


def test_huge_document_embeds_under_its_instruction(engine):
    short_engine = InBedder.from_pretrained("default", dtype="float32", max_length=96)
    document = "Shares fell sharply as investors worried about inflation. " * 18000
    topic, feeling = (
        short_engine.embed([document], q) for q in ("What is the topic?", "How does the writer feel?")
    )
    assert np.isfinite(topic).all()
    assert float((topic @ feeling.T)[0, 0]) < 0.999, "the instruction must survive truncation"
    # Equal to embedding the truncated text directly: truncation happened before the model.
    prompts = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, 96)
    kept = engine.tokenizer.decode(prompts.encode(document, "What is the topic?"))
    kept_text = kept.removeprefix("### Input:\n").split("\n\n### Instruction:")[0]
    np.testing.assert_allclose(short_engine.embed([kept_text], "What is the topic?"), topic, atol=1e-5)


def test_instruction_too_long_for_max_length_is_a_clear_error(engine):
    short = InBedder.from_pretrained("default", dtype="float32", max_length=16)
    with pytest.raises(ValueError, match="instruction and template alone take"):
        short.embed(["text " * 100], "Please tell me, in as much detail as you can, what this text is about?")


@pytest.mark.parametrize(
    "typed",
    ["<|im_end|>", "<|im_start|>", "<|endoftext|>", "</s>", "<mask>", "### Response:", "\n\n### Response:"],
)
def test_user_typed_special_tokens_are_text(engine, typed):
    prompts = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, 512)
    ids = prompts.encode(f"before {typed} after", f"Is {typed} here?")
    assert not set(ids) & set(engine.tokenizer.all_special_ids)
    assert ids[-1] == prompts.prompt_end_id(INSTRUCTION)
    # Typed markers must not change where the engine pools: still the last prompt token.
    vector = engine.embed([f"before {typed} after"], INSTRUCTION)
    assert np.isfinite(vector).all()


def test_typed_response_marker_changes_only_the_text_part(engine):
    plain, marked = engine.embed(
        ["The game was great.", "The game was great.\n\n### Response: sport"], INSTRUCTION
    )
    assert 0.5 < float(plain @ marked) < 0.9999


def whole_then_cut(prompts: PromptTokenizer, text: str, instruction: str) -> list[int]:
    """The reference: tokenise the whole prompt, and cut only if it does not fit."""
    body = prompts._encode(prompts.format(text, instruction))
    if len(body) > prompts._budget:
        body = prompts._truncate(text, instruction)
    return prompts._framed(body)


@pytest.mark.parametrize(
    "unit",
    ["The referee blew the whistle. ", "=", " ", "a", "👍🏽 שלום ", "\n\n", "x" * 70 + " "],
    ids=["prose", "equals", "spaces", "one-word", "multi-token chars", "newlines", "long words"],
)
def test_bounded_tokenising_gives_the_whole_texts_ids(engine, unit):
    """Around the prefix window (64 x budget characters) and far past it: the same ids as
    tokenising the whole text, for ordinary text and for units that make long or many tokens."""
    prompts = PromptTokenizer(engine.tokenizer, DEFAULT_TEMPLATE, 40)
    window = prompts._budget * 64
    for size in (window // 2, window - 1, window, window + 1, 2 * window, 9 * window):
        text = (unit * (size // len(unit) + 1))[:size]
        assert prompts.encode(text, INSTRUCTION) == whole_then_cut(prompts, text, INSTRUCTION), size


class CountingTokenizer:
    """The real tokenizer, recording the longest text it was asked to tokenise."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.longest = tokenizer, 0

    def __call__(self, text, **kwargs):
        self.longest = max(self.longest, len(text))
        return self.tokenizer(text, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_a_huge_text_is_never_tokenised_whole(engine):
    counting = CountingTokenizer(engine.tokenizer)
    prompts = PromptTokenizer(counting, DEFAULT_TEMPLATE, 512)
    document = "Shares fell sharply as investors worried about inflation. " * 700_000  # 40 MB
    ids = prompts.encode(document, INSTRUCTION)
    assert len(ids) <= 512
    assert counting.longest <= 64 * 512 + 200, f"tokenised {counting.longest:,} characters at once"
