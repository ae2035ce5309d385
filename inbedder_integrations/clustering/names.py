"""Naming clusters: the answer the members agree on and the words that set the cluster apart (c-TF-IDF).

Why two halves: the answer says what the model thinks a cluster is about (the
paper's interpretability result), the words what its texts share and the other
clusters' texts lack; either alone misleads (docs/recipes.md).  Why agreement:
eight members' eight different answers say nothing about their cluster, so then
the model is asked once about the cluster itself.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from .answers import Advance, CachedAnswers

if TYPE_CHECKING:
    from scipy import sparse

    from ..engine import InBedder
    from ..engine.engine import Progress

__all__ = [
    "KEPT_WORDS",
    "MIN_AGREEING",
    "MIN_AGREEING_SHARE",
    "MIN_LIFT",
    "NAME_SEPARATOR",
    "NAME_WORDS",
    "NO_ANSWER",
    "TITLES",
    "TOKEN_PATTERN",
    "Cluster",
    "agreed_answer",
    "answer_group_labels",
    "answer_groups",
    "class_tfidf",
    "cluster_name",
    "cluster_prompt",
    "distinctive_words",
    "name_clusters",
    "words_of",
]

logger = logging.getLogger(__name__)

NO_ANSWER = "(no answer)"
NAME_SEPARATOR = " · "
NAME_WORDS = 3
"""c-TF-IDF words shown in a name after the top answer."""
KEPT_WORDS = 5
"""c-TF-IDF words kept per cluster in :attr:`Cluster.words` and shown in the reports."""
TOKEN_PATTERN = r"(?u)\w+(?:['\u2019]\w+)*"
"""Whole words, apostrophes inside them kept ("don't" is one word, never "don" and "t").  Of these,
only words of two or more letters are counted (:func:`words_of`): numbers ("000", "2004") and words
with digits name nothing a reader recognises, and contractions ("don't", "we'll") are stop words."""
TITLES = frozenset({"mr", "mrs", "ms", "dr"})
"""Stop words beside sklearn's English list: titles come before names and name no subject."""
MIN_LIFT = 2.0
"""How many times more frequent (relatively) in its cluster than elsewhere a word must be to be named."""
MIN_AGREEING = 2
"""Members that must give one answer (after grouping) for it to name their cluster."""
MIN_AGREEING_SHARE = 0.3
"""... and the least share of the members that answered."""
CLUSTER_PROMPT_WORDS = 40
"""Words of each central member shown when the model is asked about a whole cluster."""
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+")


@dataclass(frozen=True)
class Cluster:
    """One cluster as a reader sees it: its name, what its members answered, and examples."""

    id: int
    size: int
    name: str
    """``"<top answer> · <word>, <word>, <word>"``: see :func:`cluster_name`."""
    answers: list[tuple[str, int]]
    """Up to five answers (those that mean the same grouped) with how many members gave each, most first."""
    examples: list[str]
    """The members nearest the centroid (at most three)."""
    words: list[str] = field(default_factory=list)
    """Up to five words that set this cluster apart from the others (c-TF-IDF), best first."""
    answer_source: str = "none"
    """How the answer half of the name was chosen: ``agreement`` (members agree on it),
    ``cluster`` (they did not: the model was asked about the cluster as a whole) or ``none``."""
    note: str = ""
    """Why this cluster's answer half is shared with other clusters of the same clustering, if it is."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------- the words (c-TF-IDF)


def words_of(text: str) -> list[str]:
    """The whole words of ``text`` that can name something: lowercase, letters only, two or more.

    Why whole words: sklearn's default pattern cut "don't" into "don" and "t" and
    "we'll" into "we" and "ll", and "don" and "ll" then named clusters.  A possessive
    counts as its word ("customer's" is "customer"); other contractions, stop words,
    titles and words holding digits are dropped.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    kept = []
    for token in re.findall(TOKEN_PATTERN, text.lower().replace("\u2019", "'")):
        word = token[:-2] if token.endswith("'s") else token
        if len(word) >= 2 and word.isalpha() and word not in ENGLISH_STOP_WORDS and word not in TITLES:
            kept.append(word)
    return kept


def _word_counts(texts_by_class: Sequence[Sequence[str]]) -> tuple[list[str], sparse.csr_matrix]:
    """Word counts per class (rows) over the vocabulary (columns), the classes' texts joined."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer

    documents = [" ".join(texts) for texts in texts_by_class]
    vectorizer = CountVectorizer(analyzer=words_of)  # pyright: ignore[reportArgumentType]  # sklearn's stubs say str; it takes a callable
    try:
        counts = vectorizer.fit_transform(documents)
    except ValueError:  # no word left at all: every text is stop words, numbers or blank
        return [], sparse.csr_matrix((len(documents), 0), dtype=np.float64)
    return list(vectorizer.get_feature_names_out()), sparse.csr_matrix(counts, dtype=np.float64)


def _idf(counts: sparse.csr_matrix) -> np.ndarray:
    """``log(1 + A / f)`` per word: see :func:`class_tfidf`."""
    average = counts.sum() / max(_rows(counts), 1)
    return np.log1p(average / np.maximum(np.asarray(counts.sum(axis=0)).ravel(), 1.0))


def _rows(matrix: sparse.csr_matrix) -> int:
    # scipy's stubs type ``shape`` as optional; a csr_matrix always has one.
    return int(matrix.get_shape()[0])


def class_tfidf(texts_by_class: Sequence[Sequence[str]]) -> tuple[list[str], sparse.csr_matrix]:
    """Class-based TF-IDF (BERTopic's c-TF-IDF): one row per class, one column per word.

    Why: a cluster's most frequent words are frequent in every cluster and tell
    a reader nothing; c-TF-IDF weighs them against the other clusters.  Each
    class's member texts are joined into one document; ``score = tf * log(1 +
    A / f)`` where ``tf`` is the word's share of the class's words (L1-normalised
    counts, as BERTopic does), ``A`` the average number of words per class and
    ``f`` the word's count across all classes.  Lowercase, English stop words
    and titles ("mr") removed, words of two or more letters.
    """
    from scipy import sparse

    vocabulary, counts = _word_counts(texts_by_class)
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    tf = sparse.diags(1.0 / np.maximum(words_per_class, 1.0)) @ counts
    return vocabulary, sparse.csr_matrix(tf @ sparse.diags(_idf(counts)))


def _over_represented(inside: np.ndarray, totals: np.ndarray, words: float, min_lift: float) -> np.ndarray:
    """Is each word's share of one class ``min_lift`` times its share of the other classes?

    ``inside``: the words' counts in the class, which holds ``words`` words in all;
    ``totals``: the same words' counts over all classes.
    """
    outside, words_outside = totals - inside, totals.sum() - words
    # inside / words >= min_lift * outside / words_outside, without dividing by zero.
    return inside * words_outside >= min_lift * outside * words


def distinctive_words(
    texts_by_class: Sequence[Sequence[str]], top: int = KEPT_WORDS, min_lift: float = MIN_LIFT
) -> list[list[str]]:
    """Each class's ``top`` words by c-TF-IDF, best first, ties broken alphabetically.

    Why the lift filter: with few clusters, c-TF-IDF only halves the score of a
    word that is everywhere, so on news "said" (1 word in 100 in every cluster)
    outranks the words that set a cluster apart.  A word is only named when its
    share of the cluster's words is ``min_lift`` times its share of the other
    clusters' words.  Why alphabetical ties: the same clusters get the same
    names on every run and platform.
    """
    vocabulary, counts = _word_counts(texts_by_class)
    idf: np.ndarray = _idf(counts)
    totals: np.ndarray = np.asarray(counts.sum(axis=0)).ravel()
    ranked = []
    indptr, indices, data = (np.asarray(part) for part in (counts.indptr, counts.indices, counts.data))
    for row in range(_rows(counts)):
        start, end = indptr[row], indptr[row + 1]
        columns, found = indices[start:end].astype(np.intp), data[start:end].astype(np.float64)
        scores = found / max(found.sum(), 1.0) * idf[columns]
        keep = _over_represented(found, totals[columns], found.sum(), min_lift)
        # Rounding makes scores that differ only by float noise tie, so the word decides.
        order = sorted(
            zip(columns[keep].tolist(), scores[keep].tolist(), strict=True),
            key=lambda pair: (-round(pair[1], 12), vocabulary[pair[0]]),
        )
        ranked.append([vocabulary[column] for column, _ in order][:top])
    return ranked


# ---------------------------------------------------------------------- the answers and the name


def _normalise_answer(answer: str) -> str:
    """Lowercase first line without trailing punctuation or a leading article.

    Why: "The economy.", "economy" and "Economy!" are one answer to a reader, so
    they must count as one when the members vote on a name.
    """
    first_line = answer.strip().splitlines()[0] if answer.strip() else ""
    stripped = re.sub(r"[\s.!?,;:\"']+$", "", first_line.lower()).strip()
    return _LEADING_ARTICLE.sub("", stripped).strip() or NO_ANSWER


def cluster_name(answer: str | None, words: Sequence[str], *, fallback: str, top: int = NAME_WORDS) -> str:
    """``"<top answer> · <word>, <word>, <word>"``, or whichever half exists.

    Why both halves: the answer says what the model thinks the cluster is about
    (often one article's view, "chelsea"); the c-TF-IDF words say what its texts
    share and the others lack.  Words already in the answer are skipped, so a
    name never reads "labour · labour, blair, ...".
    """
    said = set(re.findall(r"\w+", answer)) if answer else set()
    shown = [word for word in words if word not in said][:top]
    return NAME_SEPARATOR.join(part for part in (answer, ", ".join(shown)) if part) or fallback


def _answer_key(answer: str) -> str:
    """What two answers must share to count as one: plural and singular ("sports", "sport") are one."""
    return " ".join(
        word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word
        for word in answer.split()
    )


def answer_groups(given_answers: Sequence[str]) -> list[tuple[str, int]]:
    """Answers that mean the same thing counted together, most first; ties in the order first seen.

    Why: eight members rarely use one string, but "sport", "Sports." and "football
    match" / "football" agree.  An answer whose words hold another answer's words
    joins it (the shorter, more general one).  A group is shown by its most common
    form, plurals as singulars (:func:`_group_label`); the order of ``answers`` (the
    members nearest the centroid first) decides remaining ties, never the spelling.
    """
    answers = [_normalise_answer(answer) for answer in given_answers]
    given = [answer for answer in answers if answer != NO_ANSWER]
    members = _members(given)
    groups = [(_group_label(forms), len(forms)) for forms in members.values()]
    blank = len(answers) - len(given)
    groups.sort(key=lambda group: -group[1])  # stable: first seen first among equals
    return groups + ([(NO_ANSWER, blank)] if blank else [])


def _members(given: Sequence[str]) -> dict[str, list[str]]:
    """Normalised answers by group (the key of its most general member), in order first seen."""
    keys = list(dict.fromkeys(_answer_key(answer) for answer in given))
    parent = {key: key for key in keys}
    for key in sorted(keys, key=lambda k: (len(k.split()), keys.index(k))):
        general = next((k for k in keys if k != key and len(k.split()) < len(key.split())
                        and set(k.split()) <= set(key.split())), None)  # fmt: skip
        if general is not None:
            parent[key] = parent[general]
    members: dict[str, list[str]] = {}
    for answer in given:
        members.setdefault(parent[_answer_key(answer)], []).append(answer)
    return members


def answer_group_labels(given_answers: Sequence[str]) -> list[str | None]:
    """Each answer's group label (as :func:`answer_groups` counts them), None for a blank answer.

    Why: choosing k (:mod:`.kchoice`) treats the groups as the model's own labelling of the texts.
    """
    answers = [_normalise_answer(answer) for answer in given_answers]
    members = _members([answer for answer in answers if answer != NO_ANSWER])
    label_of = {form: _group_label(forms) for forms in members.values() for form in forms}
    return [label_of.get(answer) for answer in answers]


def _group_label(forms: Sequence[str]) -> str:
    """A group's label: its most common form, plural and singular counted as one (ties: the shortest,
    then the first seen), written as the singular when a member wrote that.

    Why: "Sports", "sport" and "sports." are three votes for "sport", not two for
    "sports"; but three "Wales" stay "wales" (nobody wrote "wale").
    """
    keys = [_answer_key(form) for form in forms]
    counts = Counter(keys)
    key = min(counts, key=lambda k: (-counts[k], len(k), keys.index(k)))
    if key in forms:
        return key
    return Counter(form for form in forms if _answer_key(form) == key).most_common(1)[0][0]  # first of ties


def agreed_answer(groups: Sequence[tuple[str, int]]) -> str | None:
    """The answer members agree on, or None.

    Agreement: at least ``MIN_AGREEING`` members and ``MIN_AGREEING_SHARE`` of those
    that answered give it, and no other answer is given as often (a tie is no agreement).
    """
    answered = [(answer, count) for answer, count in groups if answer != NO_ANSWER]
    if not answered:
        return None
    top, count = answered[0]
    runner_up = answered[1][1] if len(answered) > 1 else 0
    total = sum(number for _, number in answered)
    if count >= MIN_AGREEING and count >= MIN_AGREEING_SHARE * total and count > runner_up:
        return top
    return None


def cluster_prompt(examples: Sequence[str], words: Sequence[str]) -> str:
    """One text that stands for a cluster: its most central members, cut short, and its distinctive words.

    Why: when the members disagree, the model is asked once about the cluster
    itself, under the same instruction, rather than one member speaking for all.
    """
    lines = [
        f"{number}. {' '.join(text.split()[:CLUSTER_PROMPT_WORDS])}"
        for number, text in enumerate(examples, 1)
    ]
    if words:
        lines.append(f"Key words: {', '.join(words)}")
    return "\n".join(lines)


def _nearest_members(
    vectors: np.ndarray, assignments: np.ndarray, count: int, askable: Sequence[int] | None = None
) -> dict[int, list[int]]:
    """Each cluster's ``count`` askable members nearest its centroid, nearest first: the ones asked.

    The centroid is the mean of all members; ``askable`` (None: every text) limits who is asked.
    """
    allowed = None
    if askable is not None:
        allowed = np.zeros(len(assignments), dtype=bool)
        allowed[list(askable)] = True
    nearest = {}
    for cluster_id in sorted(set(assignments.tolist())):
        members = np.flatnonzero(assignments == cluster_id)
        centroid = vectors[members].mean(axis=0)
        if allowed is not None:
            members = members[allowed[members]]
        order = np.argsort(-(vectors[members] @ centroid), kind="stable")
        nearest[cluster_id] = members[order[:count]].tolist()
    return nearest


def _examples(vectors: np.ndarray, assignments: np.ndarray) -> dict[int, list[int]]:
    return _nearest_members(vectors, assignments, 3)


def name_clusters(
    engine: InBedder | None,
    texts: Sequence[str],
    vectors: np.ndarray,
    assignments: np.ndarray,
    instruction: str,
    *,
    members_asked: int = 8,
    max_new_tokens: int = 8,
    progress: Progress | Advance = False,
    answers: CachedAnswers | None = None,
    askable: Sequence[int] | None = None,
) -> list[Cluster]:
    """Name each cluster by the answer its members agree on and the words that set it apart.

    Only the ``members_asked`` members nearest the centroid are asked (of ``askable``,
    when given: :func:`.core.cluster_corpus` passes the texts already answered to
    choose k, so naming asks no member twice), which keeps naming cheap on large
    corpora; the c-TF-IDF words come from every member's text.  Where the members
    do not agree (:func:`agreed_answer`), the model is asked once about the cluster
    itself (:func:`cluster_prompt`; one batched call for all such clusters).  With
    ``engine=None`` the name is the words alone.  Answers go through ``answers``
    (the engine's cache; a new :class:`.answers.CachedAnswers` when None).  The
    three members nearest the centroid are the examples.  ``progress``: a bar
    (or a callback taking a step count) that each answer advances; its total is
    the caller's.  Names are unique within the clustering (:func:`_unique_names`).
    """
    nearest = _nearest_members(vectors, assignments, members_asked, askable)
    asked = [index for indices in nearest.values() for index in indices]
    if engine is not None and answers is None:
        answers = CachedAnswers(engine, max_new_tokens=max_new_tokens)
    advance = _advance_of(progress)
    answer_of = {} if answers is None else _ask(answers, texts, asked, instruction, advance)
    members = {cluster_id: np.flatnonzero(assignments == cluster_id) for cluster_id in nearest}
    words = distinctive_words([[texts[int(i)] for i in members[cluster_id]] for cluster_id in nearest])
    groups = {
        cluster_id: answer_groups([answer_of[i] for i in indices if i in answer_of])
        for cluster_id, indices in nearest.items()
    }
    chosen = {cluster_id: agreed_answer(found) for cluster_id, found in groups.items()}
    examples = _examples(vectors, assignments)
    undecided = {
        cluster_id: cluster_prompt([texts[i] for i in examples[cluster_id]], cluster_words)
        for cluster_id, cluster_words in zip(nearest, words, strict=True)
        if chosen[cluster_id] is None
    }
    about = {} if answers is None else _ask_about_clusters(answers, undecided, instruction, advance)
    named = [
        _named_cluster(cluster_id, cluster_words, chosen[cluster_id], about.get(cluster_id), instruction)
        for cluster_id, cluster_words in zip(nearest, words, strict=True)
    ]
    return _unique_names([
        Cluster(id=cluster_id, size=len(members[cluster_id]), name=name, answers=groups[cluster_id][:5],
                examples=[texts[i] for i in examples[cluster_id]], words=cluster_words, answer_source=source)
        for cluster_id, cluster_words, name, source in named
    ])  # fmt: skip


def _named_cluster(
    cluster_id: int, cluster_words: list[str], agreed: str | None, about: str | None, instruction: str
) -> tuple[int, list[str], str, str]:
    """One cluster's name and where its answer came from (the members' agreement, or the question
    about the cluster as a whole)."""
    answer, source = _answer_half(agreed, about)
    name = cluster_name(answer, cluster_words, fallback=f"cluster {cluster_id}")
    logger.debug("cluster %d under %r: %r (%s)", cluster_id, instruction, name, source)
    return cluster_id, cluster_words, name, source


def _advance_of(progress: Progress | Advance) -> Advance | None:
    """A step callback from a bar (its ``update``), a callback, or nothing."""
    if isinstance(progress, tqdm):
        bar = progress

        def advance(steps: int) -> None:
            bar.update(steps)

        return advance
    if callable(progress):
        return progress
    return None


def _ask(
    answers: CachedAnswers,
    texts: Sequence[str],
    indices: Sequence[int],
    instruction: str,
    advance: Advance | None,
) -> dict[int, str]:
    """The normalised answer of each text asked, by its index (one batched call for those not cached)."""
    given = answers.answer([texts[i] for i in indices], instruction, advance)
    return dict(zip(indices, (_normalise_answer(answer) for answer in given), strict=True))


def _answer_part(cluster: Cluster) -> str | None:
    return None if cluster.answer_source == "none" else cluster.name.split(NAME_SEPARATOR)[0]


def _unique_names(clusters: list[Cluster]) -> list[Cluster]:
    """No two clusters of one clustering share a name, and each that shares an answer says why.

    Why: under "Which country is this news about?" three of five BBC clusters were
    all named "united kingdom": the model answers the same for all three, and the
    vectors split them by something else (the topic).  Such clusters keep the
    answer, show the words that none of the others sharing it shows, and a note
    says so; identical names left after that are numbered.
    """
    by_answer: dict[str, list[int]] = {}
    for position, cluster in enumerate(clusters):
        answer = _answer_part(cluster)
        if answer is not None:
            by_answer.setdefault(answer, []).append(position)
    renamed = list(clusters)
    for answer, positions in by_answer.items():
        if len(positions) < 2:
            continue
        note = (
            f"{len(positions)} clusters share the answer {answer!r}: the model answers the same for "
            "their texts, and their vectors part them by something else; their words tell them apart"
        )
        for position in positions:
            others = {w for p in positions if p != position for w in clusters[p].words[:NAME_WORDS]}
            own = [w for w in clusters[position].words if w not in others] or clusters[position].words
            name = cluster_name(answer, own, fallback=f"cluster {clusters[position].id}")
            renamed[position] = replace(clusters[position], name=name, note=note)
    seen: Counter[str] = Counter(cluster.name for cluster in renamed)
    numbered: Counter[str] = Counter()
    for position, cluster in enumerate(renamed):
        if seen[cluster.name] > 1:
            numbered[cluster.name] += 1
            note = cluster.note or f"{seen[cluster.name]} clusters got this name: numbered to tell them apart"
            renamed[position] = replace(cluster, name=f"{cluster.name} ({numbered[cluster.name]})", note=note)
    return renamed


def _answer_half(agreed: str | None, about_cluster: str | None) -> tuple[str | None, str]:
    """The answer half of a name and where it came from (see :attr:`Cluster.answer_source`)."""
    if agreed is not None:
        return agreed, "agreement"
    if about_cluster is not None and about_cluster != NO_ANSWER:
        return about_cluster, "cluster"
    return None, "none"


def _ask_about_clusters(
    answers: CachedAnswers, prompts: dict[int, str], instruction: str, advance: Advance | None
) -> dict[int, str]:
    """The model's normalised answer about each undecided cluster, by cluster id (one batched call)."""
    if not prompts:
        return {}
    ids = list(prompts)
    given = _ask(answers, [prompts[c] for c in ids], list(range(len(ids))), instruction, advance)
    return {cluster_id: given[number] for number, cluster_id in enumerate(ids)}
