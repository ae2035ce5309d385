"""Reference embeddings written from the ORIGINAL InBedder code's semantics.

This module deliberately imports nothing from ``inbedder_integrations``: it is
an independent re-statement, in plain transformers/torch, of what the public
code in ``zhang-yu-wei/InBedder`` computes, so tests can compare the package
against it on the tiny fixtures in ``tests/data/checkpoints/``.

Sources it follows (read, not copied):

* ``lm_encoders_hf/causallm_encoder_hf.py`` -- ``CausalLMEncoder.encode`` and
  ``_aggregate_embeddings`` (``fst_gen_layer_*``, ``avg_gen_layer_*``);
* ``lm_encoders_hf/maskedlm_encoder_hf.py`` -- ``MaskededLMEncoder.encode``
  (``avg_gen_layer_*``);
* ``UseCase.ipynb`` -- ``InBedder.encode`` for ``KomeijiForce/inbedder-roberta-large``;
* ``alpaca_train/train.py`` -- ``QA_PROMPT_DICT["prompt_input"]``, the prompt
  template (filled here with ``str.replace``).

Every function takes an already loaded ``(model, tokenizer)`` (float32, eval
mode), loads nothing, runs one batch, and returns an unnormalised float32
numpy array of shape ``(len(texts), dim)``.  Tokenizer settings the original
fixed at load time (padding/truncation side, a missing pad token) are set for
the call and restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

TEMPLATE = "### Input:\n{input}\n\n### Instruction:\n{instruction}\n\n### Response:"
MAX_INPUT_LENGTH = 512  # CausalLMEncoder / MaskededLMEncoder default max_input_length


def build_prompt(text: str, instruction: str) -> str:
    return TEMPLATE.replace("{input}", text).replace("{instruction}", instruction)


@contextmanager
def _tokenizer_state(
    tokenizer, *, padding_side: str, truncation_side: str, pad_to_eos: bool
) -> Iterator[None]:
    saved = (tokenizer.padding_side, tokenizer.truncation_side, tokenizer.pad_token)
    tokenizer.padding_side = padding_side
    tokenizer.truncation_side = truncation_side
    if pad_to_eos and tokenizer.pad_token_id is None:
        # both original encoders: `if self.tokenizer.pad_token_id == None: pad = eos`
        tokenizer.pad_token = tokenizer.eos_token
    try:
        yield
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = saved[0], saved[1]
        if saved[2] is None:
            tokenizer.pad_token = None


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to(dtype=torch.float32, device="cpu").numpy()


def _causal_generate(
    model,
    tokenizer,
    texts: Sequence[str],
    instruction: str,
    max_new_tokens: int,
    max_length: int = MAX_INPUT_LENGTH,
):
    prompts = [build_prompt(t, instruction) for t in texts]
    features = tokenizer(prompts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    features = {k: v.to(model.device) for k, v in features.items()}
    outputs = model.generate(
        **features,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=tokenizer.pad_token_id,
        return_dict_in_generate=True,
        output_hidden_states=True,
    )
    return features, outputs


@torch.inference_mode()
def causal_fst_gen(
    model, tokenizer, texts, instruction, layer=-1, max_new_tokens=1, max_length=MAX_INPUT_LENGTH
) -> np.ndarray:
    """``fst_gen_layer_<layer>``: the state at the last prompt position of the
    first generation step (the one that predicts the first new token).

    ``layer`` indexes ``(embeddings, layer_1, ..., layer_L)``; -1 is the last.
    The original generates with the encoder's generation configs; only the
    first step matters here, so one new token is enough by default.
    """
    texts = list(texts)
    with _tokenizer_state(tokenizer, padding_side="left", truncation_side="left", pad_to_eos=True):
        _, outputs = _causal_generate(model, tokenizer, texts, instruction, max_new_tokens, max_length)
    prompt_states = outputs.hidden_states[0]  # tuple over layers: (batch, prompt_len, dim)
    # left padding: position -1 is the last real prompt token of every row
    return _numpy(prompt_states[layer][:, -1, :])


@torch.inference_mode()
def causal_avg_gen(model, tokenizer, texts, instruction, layer=-1, max_new_tokens=3) -> np.ndarray:
    """``avg_gen_layer_<layer>`` as ``CausalLMEncoder._aggregate_embeddings`` writes it,
    with greedy decoding.

    Per row: the special-token mask is taken over ``decoded_ids[1:]`` and zipped
    with ``hidden_states[1:]`` (so the flag of decoded token k+1 decides whether
    the step-(k+1) state -- the state *of* decoded token k -- is kept); kept
    states are concatenated; if every flag is set, ``hidden_states[1]`` is used
    instead; the last prompt state is prepended and everything is averaged.
    """
    texts = list(texts)
    with _tokenizer_state(tokenizer, padding_side="left", truncation_side="left", pad_to_eos=True):
        features, outputs = _causal_generate(model, tokenizer, texts, instruction, max_new_tokens)
        special_ids = set(int(i) for i in tokenizer.all_special_ids)
    hidden_states = outputs.hidden_states
    prompt_len = features["input_ids"].shape[1]
    decoded_ids = outputs.sequences[:, prompt_len:]
    attention_mask = features["attention_mask"]

    rows = []
    for b in range(len(texts)):
        # get_special_tokens_mask(ids, already_has_special_tokens=True): 1 where the id is special
        flags = [1 if int(t) in special_ids else 0 for t in decoded_ids[b][1:].tolist()]
        prompt_b = hidden_states[0][layer][b, attention_mask[b].bool(), :]
        if sum(flags) < len(flags):
            gen = torch.cat(
                [step[layer][b] for step, flag in zip(hidden_states[1:], flags, strict=False) if not flag],
                dim=0,
            )
        else:
            if len(hidden_states) < 2:
                raise IndexError(
                    "avg_gen needs at least two generation steps: the original falls back to "
                    "hidden_states[1], which does not exist here (max_new_tokens=1 or generation "
                    "stopped after the first token)"
                )
            gen = hidden_states[1][layer][b]  # shape (1, dim)
        rows.append(torch.cat([prompt_b[-1:, :], gen], dim=0).mean(0))
    return _numpy(torch.stack(rows, dim=0))


@torch.inference_mode()
def masked_avg_gen(model, tokenizer, texts, instruction, layer=-1, mask_length=3) -> np.ndarray:
    """``MaskededLMEncoder`` ``avg_gen_layer_<layer>``: prompt followed by
    ``mask_length`` mask tokens, right padding (left truncation), mean of the
    ``hidden_states[layer]`` rows at the mask positions."""
    texts = list(texts)
    with _tokenizer_state(tokenizer, padding_side="right", truncation_side="left", pad_to_eos=True):
        sentences = [build_prompt(t, instruction) + tokenizer.mask_token * mask_length for t in texts]
        features = tokenizer(
            sentences, padding=True, truncation=True, max_length=MAX_INPUT_LENGTH, return_tensors="pt"
        )
        mask_id = tokenizer.mask_token_id
    features = {k: v.to(model.device) for k, v in features.items()}
    outputs = model(**features, return_dict=True, output_hidden_states=True)
    states = outputs.hidden_states[layer]
    rows = [states[b][features["input_ids"][b] == mask_id, :].mean(0) for b in range(len(texts))]
    return _numpy(torch.stack(rows, dim=0))


@torch.inference_mode()
def komeiji_recipe(model, tokenizer, texts, instruction, n_mask=3) -> np.ndarray:
    """``UseCase.ipynb`` ``InBedder.encode`` (KomeijiForce/inbedder-roberta-large).

    Text/prompt pairs ``(text, instruction + <mask>*n_mask)`` go through the bare
    encoder (``model.roberta``); the last hidden states at the masks go through
    ``lm_head.dense -> gelu -> lm_head.layer_norm`` (not the vocabulary decoder),
    are averaged over the masks of each row, then standardised per row with the
    unbiased (torch default) standard deviation.
    """
    texts = list(texts)
    if isinstance(instruction, str):
        prompts = [instruction + tokenizer.mask_token * n_mask for _ in texts]
    else:
        prompts = [inst + tokenizer.mask_token * n_mask for inst in instruction]
    # the notebook uses the tokenizer as loaded: right padding, right truncation
    with _tokenizer_state(tokenizer, padding_side="right", truncation_side="right", pad_to_eos=False):
        inputs = tokenizer(texts, prompts, padding=True, truncation=True, return_tensors="pt")
        mask_id = tokenizer.mask_token_id
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    mask = inputs["input_ids"].eq(mask_id)
    hidden = model.roberta(**inputs).last_hidden_state[mask]
    x = model.lm_head.layer_norm(F.gelu(model.lm_head.dense(hidden)))
    x = x.reshape(len(texts), n_mask, -1).mean(1)
    x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)
    return _numpy(x)
