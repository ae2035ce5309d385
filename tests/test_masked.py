"""The masked-LM path on a tiny *randomly initialised* RoBERTa (no MLM weights exist offline).

Random weights say nothing about embedding quality; these tests check the
mechanics: three mask tokens after the prompt, pooling over exactly those.
"""

from __future__ import annotations

import numpy as np
import torch

from inbedder_integrations import InBedder
from inbedder_integrations.engine.prompting import NUM_MASK_TOKENS

INSTRUCTION = "What is the topic?"
TEXTS = ["A short one.", "A much longer text about football, goals, referees and a very noisy crowd.", ""]


def test_masked_model_is_detected_and_pools_mask_mean(tiny_masked_model_dir):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    assert engine.kind == "masked"
    assert engine.pooling == "mask_mean"
    assert engine.dim == 32


def test_prompt_ends_with_three_masks_then_sep(tiny_masked_model_dir):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    tokenizer = engine.tokenizer
    ids = engine._prompts.encode("Some text [MASK] typed by a user", INSTRUCTION)
    assert ids[0] == tokenizer.cls_token_id
    assert ids[-1] == tokenizer.sep_token_id
    assert ids[-1 - NUM_MASK_TOKENS : -1] == [tokenizer.mask_token_id] * NUM_MASK_TOKENS
    assert ids.count(tokenizer.mask_token_id) == NUM_MASK_TOKENS, "typed [MASK] must be plain text"


def test_pooled_positions_are_exactly_the_mask_tokens(tiny_masked_model_dir):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    vectors = engine.embed(TEXTS, INSTRUCTION, normalize=False, batch_size=len(TEXTS))
    model = engine.model
    for text, vector in zip(TEXTS, vectors, strict=True):
        ids = torch.tensor([engine._prompts.encode(text, INSTRUCTION)])
        with torch.no_grad():
            hidden = model.roberta(input_ids=ids).last_hidden_state[0]
        at_masks = ids[0] == engine.tokenizer.mask_token_id
        assert int(at_masks.sum()) == NUM_MASK_TOKENS
        np.testing.assert_allclose(vector, hidden[at_masks].mean(0).numpy(), atol=1e-5)
        # Any other choice of positions gives a different vector.
        assert not np.allclose(vector, hidden[~at_masks].mean(0).numpy(), atol=1e-3)


def test_masked_answers_decode_the_mask_predictions(tiny_masked_model_dir):
    engine = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    answers = engine.answer(TEXTS, INSTRUCTION)
    assert len(answers) == len(TEXTS)
    assert answers == engine.answer(TEXTS, INSTRUCTION)
