"""Prompt construction and tokenisation.

The contract: the token ids of a prompt are exactly the tokenisation of the
formatted template string (so the vectors match a plain ``tokenizer(prompt)``
forward pass), except that

* special tokens typed inside a text or an instruction are tokenised as text,
  so a user writing ``</s>`` or ``<mask>`` cannot move the pooled position;
* when a prompt is too long only the *input text* is shortened (its end is
  cut), never the template or the instruction.

The ``text_pair`` layout (KomeijiForce/inbedder-roberta-large's recipe) has no
template: the text and ``instruction + masks`` go in as a tokenizer pair
(``<s> text </s></s> instruction <mask>... </s>`` for RoBERTa), under the same contract.

``validate_texts``, ``validate_instruction``, ``validate_instructions`` and ``validate_unicode``
live in :mod:`inbedder_integrations.validation`; their names here are aliases kept for one release.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, NamedTuple

from ..errors import InvalidArgumentError, InvalidTypeError
from ..validation import validate_instruction, validate_instructions, validate_texts, validate_unicode

__all__ = [
    "DEFAULT_TEMPLATE",
    "EncodedPrompts",
    "PromptSize",
    "PromptTokenizer",
    "validate_instruction",
    "validate_instructions",
    "validate_template",
    "validate_texts",
    "validate_unicode",
]


#: The InBedder prompt, exactly as in the paper: input first, no trailing space.
DEFAULT_TEMPLATE = "### Input:\n{input}\n\n### Instruction:\n{instruction}\n\n### Response:"


def validate_template(template: str) -> str:
    if not isinstance(template, str):
        raise InvalidTypeError(f"template must be a string, got {type(template).__name__}")
    validate_unicode(template, "template")
    for field in ("{input}", "{instruction}"):
        if template.count(field) != 1:
            raise InvalidArgumentError(f"template must contain {field} exactly once: {template!r}")
    return template


#: Characters per token assumed at most when reading only a prefix of a long text.
_CHARS_PER_TOKEN_BOUND = 64
#: Tokens a cut can merge away at a prefix's end (a word cut in two tokenises differently).
_CUT_SLACK = 16


class PromptSize(NamedTuple):
    """One prompt as embedded: its length in tokens, and whether the input text was cut to fit."""

    tokens: int
    truncated: bool


@dataclass(frozen=True, eq=False)
class EncodedPrompts:
    """Texts already tokenised as prompts under one instruction, by one engine's tokenizer.

    A server tokenises each request once, on arrival: the ids give its usage, its
    truncation check and its batch budget, and go to :meth:`InBedder.embed_encoded`
    as they are.  Only the engine whose :meth:`InBedder.encode_prompts` made them
    takes them (another tokenizer's ids would embed the wrong text).
    """

    texts: tuple[str, ...]
    instruction: str
    ids: tuple[tuple[int, ...], ...]
    """One prompt's token ids per text, as embedded (after any cut)."""
    truncated: tuple[bool, ...]
    """Per text: whether its end was cut to fit ``max_length``."""
    encoder: PromptTokenizer = dataclass_field(repr=False)
    """What made the ids; :meth:`InBedder.embed_encoded` checks it is its own."""

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def tokens(self) -> int:
        """Prompt tokens of all texts: a request's usage and its share of a batch budget."""
        return sum(len(ids) for ids in self.ids)

    @property
    def sizes(self) -> list[PromptSize]:
        return [PromptSize(len(ids), cut) for ids, cut in zip(self.ids, self.truncated, strict=True)]

    def part(self, start: int, stop: int) -> EncodedPrompts:
        """Texts ``start:stop``, still bound to the same encoder (a batch is cut into slices)."""
        return EncodedPrompts(
            self.texts[start:stop],
            self.instruction,
            self.ids[start:stop],
            self.truncated[start:stop],
            self.encoder,
        )


@dataclass
class PromptTokenizer:
    """Builds the token ids of InBedder prompts for one tokenizer and template (or the pair layout)."""

    tokenizer: Any
    template: str
    max_length: int
    mask_count: int = 0
    """Masked LMs: mask tokens after the prompt (the settings' ``answer_tokens``); 0 for causal."""
    layout: str = "template"
    """``template``, or ``text_pair``: (text, instruction + masks) as a tokenizer pair."""

    def __post_init__(self) -> None:
        validate_template(self.template)
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise InvalidArgumentError(f"max_length must be an int >= 8, got {self.max_length!r}")
        self._prefix_ids, self._suffix_ids = self._special_framing()
        if self.mask_count:
            if self.tokenizer.mask_token_id is None:
                raise InvalidArgumentError("a masked LM needs a tokenizer with a mask token")
            self._answer_ids = [self.tokenizer.mask_token_id] * self.mask_count
        else:
            # A causal LM must see the prompt end right before the answer: no EOS after it.
            self._suffix_ids, self._answer_ids = [], []
        self._budget = self.max_length - len(self._prefix_ids) - len(self._suffix_ids) - len(self._answer_ids)
        if self.layout == "text_pair":
            self._prefix_ids, self._middle_ids, self._suffix_ids = self._pair_framing()

    def _special_framing(self) -> tuple[list[int], list[int]]:
        """The special ids the tokenizer puts before and after any text (BOS, CLS, SEP...)."""
        plain = self._encode("a")
        framed = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        for start in range(len(framed) - len(plain) + 1):
            if framed[start : start + len(plain)] == plain:
                return list(framed[:start]), list(framed[start + len(plain) :])
        return [], []

    def _pair_framing(self) -> tuple[list[int], list[int], list[int]]:
        """The special ids before, between and after a pair (RoBERTa: ``<s>``, ``</s></s>``, ``</s>``)."""
        first, second = self._encode("a"), self._encode("b")
        framed = list(self.tokenizer("a", "b", add_special_tokens=True)["input_ids"])
        for start in range(len(framed)):
            if framed[start : start + len(first)] != first:
                continue
            rest = framed[start + len(first) :]
            for middle in range(len(rest) - len(second) + 1):
                if rest[middle : middle + len(second)] == second:
                    return framed[:start], rest[:middle], rest[middle + len(second) :]
        raise InvalidArgumentError("input_layout='text_pair' needs a tokenizer that encodes text pairs")

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def format(self, text: str, instruction: str) -> str:
        # str.replace, not str.format: braces in user text must stay literal.
        start, rest = self.template.split("{input}")
        return start + text + rest.replace("{instruction}", instruction)

    @property
    def answer_length(self) -> int:
        """Number of answer placeholder positions after the prompt (masks), 0 for causal."""
        return len(self._answer_ids)

    @property
    def suffix_length(self) -> int:
        """Special tokens after the answer placeholders (e.g. RoBERTa's ``</s>``)."""
        return len(self._suffix_ids)

    def encode(self, text: str, instruction: str) -> list[int]:
        """Ids of one prompt, the input text shortened if the whole exceeds ``max_length``.

        A huge text is never tokenised whole: once a bounded prefix of it is
        already too long, it is cut from that prefix (the same ids as cutting it
        after tokenising everything, at a cost that does not grow with its length).
        """
        return self.encode_and_tell(text, instruction)[0]

    def encode_all(self, texts: Sequence[str], instruction: str) -> EncodedPrompts:
        """Every text's prompt ids under ``instruction`` (texts and instruction already valid)."""
        encoded = [self.encode_and_tell(text, instruction) for text in texts]
        return EncodedPrompts(
            tuple(texts),
            instruction,
            tuple(tuple(ids) for ids, _ in encoded),
            tuple(cut for _, cut in encoded),
            self,
        )

    def encode_and_tell(self, text: str, instruction: str) -> tuple[list[int], bool]:
        """:meth:`encode`'s ids, and whether the input text had to be cut to fit."""
        if self.layout == "text_pair":
            return self._encode_pair(text, instruction)
        if self._surely_too_long(text):
            return self._framed(self._truncate(text, instruction)), True
        body = self._encode(self.format(text, instruction))
        if len(body) > self._budget:
            return self._framed(self._truncate(text, instruction)), True
        return self._framed(body), False

    def _encode_pair(self, text: str, instruction: str) -> tuple[list[int], bool]:
        """The pair layout: the text's ids are cut at their end to fit, as the tokenizer's
        own truncation would cut the longer member."""
        tail = self._encode(instruction) + self._answer_ids
        framing = len(self._prefix_ids) + len(self._middle_ids) + len(self._suffix_ids)
        room = self.max_length - framing - len(tail)
        if room <= 0:
            raise InvalidArgumentError(
                f"the instruction alone takes {len(tail)} tokens with its masks, more than "
                f"max_length={self.max_length} allows; shorten the instruction or raise max_length"
            )
        window = text[: room * _CHARS_PER_TOKEN_BOUND]  # a token covers at most 64 characters
        ids = self._encode(window)
        truncated = len(ids) > room or len(window) < len(text)
        ids = self._prefix_ids + ids[:room] + self._middle_ids + tail + self._suffix_ids
        return ids, truncated

    def display(self, text: str, instruction: str) -> str:
        """The prompt as a string: the filled template, or the pair layout's decoded ids."""
        if self.layout == "text_pair":
            return str(self.tokenizer.decode(self.encode(text, instruction)))
        return self.format(text, instruction)

    def _framed(self, body: list[int]) -> list[int]:
        return self._prefix_ids + body + self._answer_ids + self._suffix_ids

    def _surely_too_long(self, text: str) -> bool:
        """Whether ``text`` alone takes more tokens than a prompt holds, from prefixes only.

        Prefixes of ``64 x budget`` characters (the window :meth:`_truncate` reads),
        growing 4x while they still fit: text made of unusually long tokens is read
        further, ordinary text is decided by the first one.  A prefix may tokenise
        differently from the whole at its cut, which the slack covers.
        """
        window = self._budget * _CHARS_PER_TOKEN_BOUND
        while window < len(text):
            if len(self._encode(text[:window])) > self._budget + _CUT_SLACK:
                return True
            window *= 4
        return False

    def _truncate(self, text: str, instruction: str) -> list[int]:
        fixed = len(self._encode(self.format("", instruction)))
        room = self._budget - fixed
        if room <= 0:
            raise InvalidArgumentError(
                f"the instruction and template alone take {fixed} tokens, more than "
                f"max_length={self.max_length} allows; shorten the instruction or raise max_length"
            )
        # Tokenise only a generous prefix of huge texts: a token covers at most 64 characters.
        window = text[: room * _CHARS_PER_TOKEN_BOUND]
        offsets = self.tokenizer(
            window, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True
        )["offset_mapping"]
        keep = min(room, len(offsets))
        while True:
            cut = offsets[keep - 1][1] if keep > 0 else 0
            body = self._encode(self.format(text[:cut], instruction))
            if len(body) <= self._budget:
                return body
            keep -= 1  # merges across the cut can add a token; step back until it fits

    def prompt_end_id(self, instruction: str) -> int | None:
        """The id a causal prompt must end with (``:`` of ``Response:``): the pooling check."""
        tail = self.template.split("{instruction}")[1]
        if not tail:
            return None
        return self._encode(self.format("", instruction))[-1]
