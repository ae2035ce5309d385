"""MTEB: ``InBedderMTEB``, an encoder for MTEB 2.x (``mteb.evaluate``) that asks each task a question.

MTEB hands an encoder a task's metadata with every batch; an InBedder needs one question
(instruction) per text.  :func:`task_instruction` picks it, first match wins:

1. the caller's table, keyed by task name, then by task type (``"Clustering"``); a value
   is one question for both sides or ``{"query": ..., "document": ...}``;
2. the task's own prompt (``TaskMetadata.prompt``), what MTEB gives instruction-tuned
   embedders (unless ``use_task_prompts=False``);
3. a question per task type (:data:`TYPE_QUESTIONS`), else :data:`FALLBACK_QUESTION`.

A side with no question of its own is asked the other side's: InBedder compares a query and
a document answered under the same question.  Instruction-following retrieval tasks
(FollowIR's ``Core17InstructionRetrieval``, ...) carry an instruction per query: by default
it stays in the query's text (MTEB joins them, as every model sees them); with
``per_query_instructions="question"`` it becomes that query's question instead.

The model's :attr:`~mteb.models.ModelMeta.revision` is the engine's fingerprint, so a result
file names exactly what made its vectors (weights, adapter and settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import InvalidArgumentError, InvalidTypeError, missing_extra
from .validation import validate_instruction

try:
    from mteb.models import ModelMeta
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ScoringFunction
    from mteb.types import PromptType
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise missing_extra("mteb", "mteb") from exc

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from torch.utils.data import DataLoader

    from .engine import InBedder

__all__ = [
    "FALLBACK_QUESTION",
    "TYPE_QUESTIONS",
    "InBedderMTEB",
    "task_instruction",
]

#: An InBedder question per MTEB task type, used when neither the table nor the task has one.
TYPE_QUESTIONS: dict[str, str] = {
    "Clustering": "What is the topic of this text?",
    "Classification": "What is the category of this text?",
    "MultilabelClassification": "What are the categories of this text?",
    "PairClassification": "What does this text say?",
    "STS": "What does this sentence mean?",
    "BitextMining": "What does this sentence mean?",
    "Summarization": "What is the main point of this text?",
    "Retrieval": "What is this text about?",
    "Reranking": "What is this text about?",
    "InstructionRetrieval": "What is this text about?",
    "InstructionReranking": "What is this text about?",
}
#: The question for a task type missing from :data:`TYPE_QUESTIONS`.
FALLBACK_QUESTION = "What is this text about?"

_SIDES = ("query", "document")
Instructions = Mapping[str, str | Mapping[str, str]]


def _sides(value: Any, where: str) -> dict[str, str]:
    """``{"query": q, "document": d}`` from a question or a per-side mapping (either side may be
    missing: it is then asked the other side's question)."""
    if isinstance(value, str):
        question = validate_instruction(value, where)
        return {"query": question, "document": question}
    if not isinstance(value, Mapping) or not value:
        raise InvalidTypeError(
            f"{where} must be a question (str) or a mapping with 'query' and/or 'document', got {value!r:.80}"
        )
    unknown = sorted(set(map(str, value)) - set(_SIDES))
    if unknown:
        raise InvalidArgumentError(f"{where} has unknown side(s) {unknown}; use 'query' and/or 'document'")
    given = {
        side: validate_instruction(value[side], f"{where}[{side!r}]") for side in _SIDES if side in value
    }
    return {side: given.get(side) or next(iter(given.values())) for side in _SIDES}


def _check_table(instructions: Instructions | None) -> dict[str, dict[str, str]]:
    if instructions is None:
        return {}
    if not isinstance(instructions, Mapping):
        raise InvalidTypeError(
            "instructions must be a mapping of task name or type -> question, "
            f"got {type(instructions).__name__}"
        )
    return {str(key): _sides(value, f"instructions[{key!r}]") for key, value in instructions.items()}


def _task_prompt(prompt: Any) -> dict[str, str] | None:
    """The task's own prompt as both sides' questions, or None where it has none."""
    if isinstance(prompt, str) and prompt.strip():
        return _sides(prompt, "task prompt")
    if isinstance(prompt, Mapping):
        given = {
            side: prompt[side]
            for side in _SIDES
            if isinstance(prompt.get(side), str) and prompt[side].strip()
        }
        return _sides(given, "task prompt") if given else None
    return None


def task_instruction(
    task_metadata: TaskMetadata,
    prompt_type: PromptType | str | None,
    instructions: Instructions | None = None,
    *,
    use_task_prompts: bool = True,
) -> str:
    """The InBedder question for one side (``"query"``, ``"document"``, or None: a task with
    no sides) of an MTEB task; the order is the module's (table, task prompt, task type)."""
    table = _check_table(instructions)
    side = "query" if prompt_type is None else PromptType(prompt_type).value
    for key in (task_metadata.name, task_metadata.type):
        if key in table:
            return table[key][side]
    if use_task_prompts:
        own = _task_prompt(task_metadata.prompt)
        if own is not None:
            return own[side]
    return TYPE_QUESTIONS.get(str(task_metadata.type), FALLBACK_QUESTION)


class InBedderMTEB(AbsEncoder):
    """An InBedder as an MTEB 2.x encoder (``mteb.EncoderProtocol``).

    Example:
        .. code-block:: python

            import mteb
            from inbedder_integrations.mteb import InBedderMTEB

            model = InBedderMTEB(instructions={"Banking77Classification": "What does the customer want?"})
            results = mteb.evaluate(model, mteb.get_tasks(tasks=["Banking77Classification"]))
    """

    def __init__(
        self,
        model_name: str = "default",
        revision: str | None = None,
        *,
        device: str | None = None,
        instructions: Instructions | None = None,
        use_task_prompts: bool = True,
        per_query_instructions: Literal["text", "question"] = "text",
        engine: InBedder | None = None,
        **model_kwargs: Any,
    ) -> None:
        """``model_name`` and ``model_kwargs`` go to ``InBedder.from_pretrained`` (``revision``
        is the hub revision to load), unless a built ``engine`` is given."""
        if per_query_instructions not in ("text", "question"):
            raise InvalidArgumentError(
                f"per_query_instructions must be 'text' or 'question', got {per_query_instructions!r}"
            )
        self.instructions = _check_table(instructions)
        self.use_task_prompts = use_task_prompts
        self.per_query_instructions = per_query_instructions
        if engine is None:
            from .engine import InBedder  # here: importing this module loads no torch

            if device is not None:
                model_kwargs["device"] = device
            engine = InBedder.from_pretrained(model_name, revision=revision, **model_kwargs)
        self.engine = engine
        self.mteb_model_meta = _model_meta(engine, model_name)

    def instruction_for(self, task_metadata: TaskMetadata, prompt_type: PromptType | None) -> str:
        """The question this model asks for ``task_metadata``'s ``prompt_type`` side."""
        return task_instruction(
            task_metadata, prompt_type, self.instructions, use_task_prompts=self.use_task_prompts
        )

    def encode(
        self,
        inputs: DataLoader[Any],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """One L2-normalised float32 row per input, each text answered under its question."""
        question = self.instruction_for(task_metadata, prompt_type)
        texts: list[str] = []
        questions: list[str] = []
        for batch in inputs:
            batch_texts, batch_questions = self._batch_texts(batch, question)
            texts += batch_texts
            questions += batch_questions
        return self._embed_grouped(texts, questions)

    def _batch_texts(self, batch: Mapping[str, Any], question: str) -> tuple[list[str], list[str]]:
        if "text" not in batch:
            raise InvalidArgumentError(
                f"InBedderMTEB embeds text only; this batch has columns {sorted(batch)}"
            )
        own = batch.get("instruction")
        if self.per_query_instructions == "question" and own is not None and "query" in batch:
            asked = [q if isinstance(q, str) and q.strip() else question for q in own]
            return list(batch["query"]), asked
        return list(batch["text"]), [question] * len(batch["text"])

    def _embed_grouped(self, texts: list[str], questions: list[str]) -> np.ndarray:
        """Embed each text under its question, one engine call per distinct question."""
        out = np.zeros((len(texts), self.engine.dim), dtype=np.float32)
        for question in dict.fromkeys(questions):
            rows = [i for i, asked in enumerate(questions) if asked == question]
            out[rows] = self.engine.embed([texts[i] for i in rows], question)
        return out


def _model_meta(engine: InBedder, model_name: str) -> ModelMeta:
    """MTEB's record of the model: its revision is the fingerprint (what the vectors mean)."""
    name = engine.model_name.replace("/", "__")
    return ModelMeta(
        loader=InBedderMTEB,
        loader_kwargs={"model_name": model_name},
        name=f"inbedder/{name}",
        revision=engine.fingerprint,
        release_date=None,
        languages=["eng-Latn"],
        n_parameters=None,
        memory_usage_mb=None,
        max_tokens=engine.settings.max_length,
        embed_dim=engine.dim,
        license=None,
        open_weights=True,
        public_training_code="https://github.com/zhang-yu-wei/InBedder",
        public_training_data=None,
        framework=["PyTorch", "Transformers"],
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=True,
        training_datasets=None,
        adapted_from=engine.model_name,
    )
