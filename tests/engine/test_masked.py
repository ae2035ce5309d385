"""The masked-LM path on a tiny *randomly initialised* RoBERTa (no MLM weights exist offline).

Random weights say nothing about embedding quality; these tests check the
mechanics: three mask tokens after the prompt, pooling over exactly those.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inbedder_integrations import InBedder
from inbedder_integrations.engine.prompting import PromptTokenizer

MASKS = 3  # the paper's setting, written out rather than read from the package
INSTRUCTION = "What is the topic?"
TEXTS = ["A short one.", "A much longer text about football, goals, referees and a very noisy crowd.", ""]


def test_masked_model_is_detected_and_pools_mask_mean(tiny_masked_model_dir):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    assert engine.kind == "masked"
    assert engine.pooling == "mask_mean"
    assert engine.dim == 32


@pytest.fixture(scope="module")
def original(tiny_masked_model_dir):
    """The same tiny model and tokenizer loaded with plain transformers, apart from the engine."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_masked_model_dir)
    model = AutoModelForMaskedLM.from_pretrained(tiny_masked_model_dir, dtype=torch.float32)
    return model.eval(), tokenizer


def original_features(tokenizer, text: str, instruction: str):
    """The original InBedder code for masked LMs (lm_encoders_hf/maskedlm_encoder_hf.py): the filled
    template, then ``tokenizer.mask_token * mask_length`` appended, through a plain tokenizer call
    that adds the special tokens ([CLS] ... [SEP])."""
    prompt = "### Input:\n" + text + "\n\n### Instruction:\n" + instruction + "\n\n### Response:"
    return tokenizer(prompt + tokenizer.mask_token * MASKS, return_tensors="pt")


def test_prompt_ids_are_the_originals_with_typed_masks_as_text(tiny_masked_model_dir, original):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    tokenizer = original[1]
    prompts = PromptTokenizer(engine.tokenizer, engine.template, engine.max_length, mask_count=MASKS)
    for text in TEXTS:
        assert (
            prompts.encode(text, INSTRUCTION)
            == original_features(tokenizer, text, INSTRUCTION)["input_ids"][0].tolist()
        )
    ids = prompts.encode("Some text [MASK] typed by a user", INSTRUCTION)
    assert ids[0] == tokenizer.cls_token_id
    assert ids[-1] == tokenizer.sep_token_id
    assert ids[-1 - MASKS : -1] == [tokenizer.mask_token_id] * MASKS
    assert ids.count(tokenizer.mask_token_id) == MASKS, "typed [MASK] must be plain text"


def test_pooled_positions_are_exactly_the_mask_tokens(tiny_masked_model_dir, original):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    vectors = engine.embed(TEXTS, INSTRUCTION, normalize=False, batch_size=len(TEXTS))
    model, tokenizer = original
    for text, vector in zip(TEXTS, vectors, strict=True):
        features = original_features(tokenizer, text, INSTRUCTION)
        ids = features["input_ids"][0]
        with torch.no_grad():
            hidden = model(**features, output_hidden_states=True).hidden_states[-1][0]
        at_masks = ids == tokenizer.mask_token_id
        assert int(at_masks.sum()) == MASKS
        # The paper's avg_gen for MLMs: the mean of the last layer's states at the masks.
        np.testing.assert_allclose(vector, hidden[at_masks].mean(0).numpy(), atol=1e-5)
        # Any other choice of positions gives a different vector.
        assert not np.allclose(vector, hidden[~at_masks].mean(0).numpy(), atol=1e-3)
        shifted = torch.roll(at_masks, 1)  # the two last masks and the [SEP]
        assert not np.allclose(vector, hidden[shifted].mean(0).numpy(), atol=1e-3)


def test_masked_answers_decode_the_mask_predictions(tiny_masked_model_dir, original):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    answers = engine.answer(TEXTS, INSTRUCTION)
    model, tokenizer = original
    expected = []
    for text in TEXTS:
        features = original_features(tokenizer, text, INSTRUCTION)
        with torch.no_grad():
            logits = model(**features).logits[0]
        at_masks = features["input_ids"][0] == tokenizer.mask_token_id
        predicted = logits[at_masks].argmax(-1)
        assert len(predicted) == MASKS
        expected.append(tokenizer.decode(predicted, skip_special_tokens=True).strip())
    assert answers == expected
    assert any(expected), "the random model must predict some visible text, or the check is empty"
