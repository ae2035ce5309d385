"""Running prompt batches through the model: hidden states, pooled vectors, greedy answers.

:class:`~inbedder_integrations.engine.engine.InBedder` validates, caches and
orders the work; this module turns token ids into tensors and tensors into
vectors, for one loaded model under one set of resolved settings.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

from ..errors import InvalidArgumentError
from .batching import PrefixBatch, PromptBatch, common_prefix_length, length_batches, pad
from .pooling import answer_positions, mask_positions, mean_at_positions
from .prompting import PromptTokenizer
from .registry import LoadedModel
from .settings import EmbeddingSettings

__all__ = ["ModelRunner"]


class ModelRunner:
    """One loaded model plus resolved settings: the part of an engine that touches tensors.

    Callers hold ``loaded.lock`` around every method that runs the model; the runner
    holds ``loaded.tokenizer_lock`` itself while it tokenises.
    """

    def __init__(self, loaded: LoadedModel, settings: EmbeddingSettings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.prompts = PromptTokenizer(
            loaded.tokenizer,
            settings.template,
            settings.max_length,
            mask_count=settings.answer_tokens if loaded.kind == "masked" else 0,
            layout=settings.input_layout or "template",
        )
        self._transform = _state_transform(loaded.model, settings.transform or "none")
        self._encoder = loaded.model.base_model
        self._pad_id = _pad_token_id(loaded.tokenizer)
        parameters = inspect.signature(self._encoder.forward).parameters
        self._takes_position_ids = "position_ids" in parameters
        # transformers 5 renamed ``past_key_values`` to ``cache``.
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    def encode(self, texts: Sequence[str], instruction: str) -> list[Sequence[int]]:
        with self.loaded.tokenizer_lock:
            return [self.prompts.encode(text, instruction) for text in texts]

    def batches(
        self,
        texts: list[str],
        instruction: str,
        max_rows: int,
        max_tokens: int,
        encoded: Sequence[Sequence[int]] | None = None,
    ) -> Iterator[PromptBatch]:
        """Length-sorted batches with dynamic padding (left for causal, right for masked);
        ``encoded``: the texts' prompt ids, already made by :attr:`prompts`."""
        if encoded is None:
            encoded = self.encode(texts, instruction)
        end_id = None
        if self.loaded.kind == "causal":
            with self.loaded.tokenizer_lock:
                end_id = self.prompts.prompt_end_id(instruction)
        for indices in length_batches([len(ids) for ids in encoded], max_rows, max_tokens):
            rows = [encoded[i] for i in indices]
            input_ids, attention_mask = pad(rows, self._pad_id, left=self.loaded.kind == "causal")
            if end_id is not None and not bool((input_ids[:, -1] == end_id).all()):
                raise RuntimeError(
                    "internal error: a causal prompt does not end with the template's last token; "
                    "the pooled position would be wrong"
                )
            device = self.loaded.device
            yield PromptBatch(
                indices, input_ids.to(device), attention_mask.to(device), [len(r) for r in rows]
            )

    @property
    def shares_prefix(self) -> bool:
        """Whether instructions can reuse a text's prefix cache (causal LM, input before instruction)."""
        return (
            self.loaded.kind == "causal"
            and self.settings.pooling == "last_prompt_token"
            and self.settings.template.index("{input}") < self.settings.template.index("{instruction}")
        )

    def prefix_batches(
        self,
        texts: list[str],
        instructions: list[str],
        max_rows: int,
        max_tokens: int,
        encoded: Mapping[str, Sequence[Sequence[int]]] | None = None,
    ) -> Iterator[PrefixBatch]:
        """Batches of texts, each prompt split into the prefix all instructions share and suffixes.

        The shared prefix is the longest common run of *token ids* of a text's
        prompts, so tokenisation (and truncation, which depends on the
        instruction's length) is exactly that of ``InBedder.embed``.  At least one token
        stays in every suffix: the pooled state comes from the suffix pass.
        """
        if encoded is None:
            encoded = {q: self.encode(texts, q) for q in instructions}
        prompts = [[encoded[q][i] for q in instructions] for i in range(len(texts))]
        shared = [common_prefix_length(rows, cap=min(len(ids) for ids in rows) - 1) for rows in prompts]
        longest = [max(len(ids) for ids in rows) for rows in prompts]
        device = self.loaded.device
        for indices in length_batches(longest, max_rows, max_tokens):
            prefixes = [prompts[i][0][: shared[i]] for i in indices]
            prefix_ids, prefix_mask = pad(prefixes, self._pad_id, left=True)
            suffixes = []
            for k in range(len(instructions)):
                ids, mask = pad([prompts[i][k][shared[i] :] for i in indices], self._pad_id, left=False)
                suffixes.append((ids.to(device), mask.to(device)))
            yield PrefixBatch(indices, prefix_ids.to(device), prefix_mask.to(device), suffixes)

    def embed_prefix_batch(self, batch: PrefixBatch) -> list[torch.Tensor]:
        """One pass over the prefixes, then one short pass per instruction on top of their cache."""
        from transformers import DynamicCache

        cache = DynamicCache()
        prefix_width = batch.prefix_ids.shape[1]
        prefix_lengths = batch.prefix_mask.sum(dim=1, keepdim=True)
        with_cache = {self._cache_argument: cache, "use_cache": True}
        if prefix_width:
            self._encoder(
                input_ids=batch.prefix_ids,
                attention_mask=batch.prefix_mask,
                position_ids=(batch.prefix_mask.cumsum(-1) - 1).clamp(min=0),
                **with_cache,
            )
        vectors = []
        for suffix_ids, suffix_mask in batch.suffixes:
            width = suffix_ids.shape[1]
            outputs = self._encoder(
                input_ids=suffix_ids,
                attention_mask=torch.cat([batch.prefix_mask, suffix_mask], dim=1),
                position_ids=prefix_lengths + torch.arange(width, device=suffix_ids.device),
                **with_cache,
                output_hidden_states=self.settings.layer != self._num_layers,
            )
            hidden = (
                outputs.last_hidden_state
                if self.settings.layer == self._num_layers
                else outputs.hidden_states[self.settings.layer]
            )
            last = suffix_mask.sum(dim=1) - 1  # suffixes are right-padded: each row's final real token
            vectors.append(self._postprocess(hidden[torch.arange(len(last)), last].to(torch.float32)))
            cache.crop(-width)  # back to the prefix for the next instruction
        return vectors

    def _hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One forward pass of the base model (no LM head); the chosen layer's states."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.loaded.kind == "causal" and self._takes_position_ids:
            # Left padding: count positions from each row's first real token.
            kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        if self.settings.layer == self._num_layers:
            return self._encoder(**kwargs, use_cache=False).last_hidden_state
        return self._encoder(**kwargs, use_cache=False, output_hidden_states=True).hidden_states[
            self.settings.layer
        ]

    @property
    def _num_layers(self) -> int:
        return int(self.loaded.model.config.num_hidden_layers)

    @functools.cached_property
    def vector_width(self) -> int:
        """The width of this runner's vectors, read off one token's pass: the pooled layer's
        width, which is not always ``hidden_size`` (OPT-350m projects its last layer to 512).
        Read once per model, layer and transform: engines are built often, models rarely."""
        key = (self.settings.layer, self.settings.transform)
        if key not in self.loaded.widths:
            ids = torch.tensor([[self._pad_id]], device=self.loaded.device)
            with torch.inference_mode(), self.loaded.lock:
                width = int(self._transform(self._hidden_states(ids, torch.ones_like(ids))).shape[-1])
            self.loaded.widths[key] = width
        return self.loaded.widths[key]

    def embed_batch(self, batch: PromptBatch) -> torch.Tensor:
        return self._postprocess(self._pooled(batch))

    def _pooled(self, batch: PromptBatch) -> torch.Tensor:
        if self.settings.pooling == "mean_answer_tokens":
            return self._embed_mean_answer(batch)
        hidden = self._hidden_states(batch.input_ids, batch.attention_mask)
        if self.settings.pooling == "last_prompt_token":
            return hidden[:, -1, :].to(torch.float32)
        answer, suffix = self.prompts.answer_length, self.prompts.suffix_length
        width = batch.input_ids.shape[1]
        positions = mask_positions(batch.lengths, width, answer, suffix, device=hidden.device)
        at_masks = self._transform(hidden[positions].view(len(batch.lengths), answer, -1))
        return at_masks.to(torch.float32).mean(dim=1)

    def _postprocess(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.settings.postprocess == "zscore":
            return (vectors - vectors.mean(dim=1, keepdim=True)) / vectors.std(dim=1, keepdim=True)
        return vectors

    def generate(self, batch: PromptBatch, max_new_tokens: int) -> torch.Tensor:
        """Greedy answer token ids, (batch, max_new_tokens), padded after the end.

        An answer ends at the first special token, not only at EOS: a short
        answer never contains one, and adapters trained where the tokenizer named
        another EOS (transformers 5.17 converted SmolLM2's GGUF tokenizer with
        ``<|im_start|>`` as EOS) end their answers with that token instead.
        """
        # transformers types generate() against a protocol PreTrainedModel does not declare.
        model: Any = self.loaded.model
        sequences = model.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=sorted(set(self.loaded.tokenizer.all_special_ids)),
            pad_token_id=self._pad_id,
            temperature=None,
            top_p=None,
            top_k=None,
        )
        return sequences[:, batch.input_ids.shape[1] :]

    def masked_answer_ids(self, batch: PromptBatch) -> torch.Tensor:
        logits = self.loaded.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        answer, suffix = self.prompts.answer_length, self.prompts.suffix_length
        positions = mask_positions(batch.lengths, logits.shape[1], answer, suffix, device=logits.device)
        return logits[positions].view(len(batch.lengths), answer, -1).argmax(-1)

    def _embed_mean_answer(self, batch: PromptBatch) -> torch.Tensor:
        """The paper's avg_gen: mean of the states that produced each answer token.

        Generates greedily, then runs one forward pass over prompt + answer and
        averages the states at the positions that predicted a non-special token
        (the first, the last prompt token, always counts).
        """
        generated = self.generate(batch, self.settings.answer_tokens)
        full_ids = torch.cat([batch.input_ids, generated[:, :-1]], dim=1)
        full_mask = torch.cat([batch.attention_mask, torch.ones_like(generated[:, :-1])], dim=1)
        hidden = self._hidden_states(full_ids, full_mask)
        positions = answer_positions(
            generated, self.loaded.tokenizer.all_special_ids, batch.input_ids.shape[1]
        )
        return mean_at_positions(hidden, positions)


def _state_transform(model: Any, transform: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``lm_head_transform``: the masked-LM head up to its vocabulary decoder (dense, gelu,
    layer norm), as KomeijiForce's recipe applies it to each mask state."""
    if transform == "none":
        return lambda states: states
    head = getattr(model, "lm_head", None)
    dense, norm = getattr(head, "dense", None), getattr(head, "layer_norm", None)
    if not isinstance(dense, torch.nn.Module) or not isinstance(norm, torch.nn.Module):
        raise InvalidArgumentError(
            f"transform={transform!r} needs a RoBERTa-style masked-LM head (lm_head.dense and "
            f"lm_head.layer_norm); {type(model).__name__} has none"
        )
    return lambda states: norm(torch.nn.functional.gelu(dense(states)))


def _pad_token_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
