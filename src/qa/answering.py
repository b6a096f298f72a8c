"""Answer step: question (+ conversation) → `Answer` with exact citations, or an abstention.

In: a pipeline (index + embedder), a cleaned question, earlier turns and k. Out: an
`Answer` whose text quotes the supporting sentence(s) verbatim, each followed by `[n]`;
for who/when/where/how-many questions it leads with the phrase of that sentence that
answers it (in bold). No language model is involved, so nothing is invented: every word of
an answer except the lead-in frame is a slice of a document.

Follow-ups ("What does he say Iraq still needs?") are detected from pronouns, ellipsis and
missing content words; such a question is searched together with the previous turn.

Abstention is a logistic model over a few measurable features of the best evidence (its
cosine to the question, how much of the question's vocabulary it covers, how much of the
question the documents do not know at all, whether the expected kind of answer is there).
Its weights and threshold are fitted on the development set by `scripts/fit_abstention.py`
and shipped as `abstention.json`, not picked by hand.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.lexical import tokenize
from qa.retrieval import Query, Scored, search, unit_max
from qa.types import Answer, Citation, Hit, Lead, Sentence, Span, Turn

if TYPE_CHECKING:
    from qa.pipeline import Pipeline
    from qa.store import Index

# -- what kind of answer does the question want? ----------------------------------------------

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November"
          r"|December)")
_DATE = re.compile(
    rf"""(?:(?:early|mid|late|the\ (?:summer|winter|spring|fall|autumn)\ of)\ )?
         (?:{_MONTH}(?:\ \d{{1,2}}\b)?(?:,?\ \d{{4}})?|\d{{1,2}}\ {_MONTH}(?:\ \d{{4}})?)
       | (?:the\ )?(?:summer|winter|spring|fall|autumn)\ of\ \d{{4}}
       | (?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)
       | (?:(?:next|last|this)\ (?:week|month|year)|year-end|(?:two|three|\d+)\ days\ later)
       | \b(?:1[89]|20)\d{{2}}\b""",
    re.VERBOSE,
)
_NUMBER_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|"
                 r"hundreds?|thousands?|a\ third|half")
_NUMBER = re.compile(
    rf"""(?:(?:around|about|nearly|almost|more\ than|less\ than|fewer\ than|over|some|roughly|
              at\ least|up\ to)\ )?
         (?:\d[\d,.]*(?:\ (?:million|billion|thousand|hundred))?
          |(?:{_NUMBER_WORDS})(?:\ of\ (?:{_NUMBER_WORDS}))?)\b""",
    re.VERBOSE | re.IGNORECASE,
)
# Runs of capitalized words (names, places, organizations), allowing "of"/"al-" inside.
_NAME = re.compile(r"[A-Z][\w’'-]*(?:\s+(?:of\s+|al-)?[A-Z][\w’'-]*)*")
_PLACE = re.compile(
    rf"\b(?:in|at|from|to|near)\s+(?!{_MONTH}\b|(?:Monday|Tuesday|Wednesday|Thursday|Friday|"
    rf"Saturday|Sunday)\b)((?:the\s+)?[A-Z][\w’'-]*(?:\s+[A-Z][\w’'-]*)*)"
)


_NOT_NAMES = re.compile(
    rf"^(?:{_MONTH}|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|[A-Z]{{1,3}}|"
    r"U\.S\.?|[A-Z][a-z]+(?:ian|ese|ish)|Iraqi|Israeli|Saudi|Pakistani|Afghan|American|"
    r"African|Korean|Mexican|European|In|The|But|And|Yet|While|That|This|At|On|By|For|"
    r"From|As|If|When|After|Next|Last|According)$"
)


def _name_spans(sentence: str) -> list[tuple[int, int]]:
    """Spans that look like names of people or bodies: runs of capitalized words, minus
    leading function words, months, acronyms and demonyms ("Iraqi"); a run of two or more
    words beats a lone word, which is kept only where no run exists."""
    runs, singles = [], []
    for m in _NAME.finditer(sentence):
        start, words = m.start(), m.group().split()
        while words and _NOT_NAMES.match(words[0]) and len(words) > 1:
            start += len(words[0]) + 1
            words = words[1:]
        if len(words) >= 2:
            runs.append((start, m.end()))
        elif words and not _NOT_NAMES.match(words[0]) and start > 0:
            singles.append((start, m.end()))
    return runs or singles


@dataclass(frozen=True)
class QuestionKind:
    """The answer type a question asks for, and for "how many X" the counted noun X."""

    kind: str  # when | count | who | where | other
    heads: tuple[str, ...] = ()  # "how many US troops" -> ("us", "troop")


def question_kind(question: str) -> QuestionKind:
    q = question.strip().lower()
    if re.match(r"^(?:and\s+)?(?:when|since when|until when|what (?:year|date|day|month)|"
                r"(?:in|on|by) what (?:year|date|day|month)|which (?:year|date|day|month)|"
                r"how long ago)\b", q):
        return QuestionKind("when")
    m = re.match(r"^(?:and\s+)?(?:roughly\s+|about\s+)?how many\s+((?:[\w’'-]+\s*){0,3})", q)
    if m:
        return QuestionKind("count", tuple(tokenize(m.group(1))[:3]))
    if re.match(r"^(?:and\s+)?how much\b|^(?:what|which) (?:number|figure|share|percentage)\b",
                q):
        return QuestionKind("count")
    if re.match(r"^(?:and\s+)?(?:who|whom|whose|which (?:person|official|journalist|"
                r"columnist|spokesman|leader|general|president)|what(?:’s|'s| is| was) the name)"
                r"\b", q):
        return QuestionKind("who")
    if re.match(r"^(?:and\s+)?(?:where|in which (?:city|country|place)|which (?:city|country|"
                r"place))\b", q):
        return QuestionKind("where")
    return QuestionKind("other")


def _candidates(sentence: str, kind: QuestionKind) -> list[tuple[int, int]]:
    """Spans (relative to `sentence`) of phrases that could answer a question of `kind`."""
    if kind.kind == "when":
        return [m.span() for m in _DATE.finditer(sentence)]
    if kind.kind == "count":
        spans = [m.span() for m in _NUMBER.finditer(sentence) if not _DATE.fullmatch(m.group())]
        if kind.heads:  # "how many troops": keep numbers followed closely by "troops"
            return [
                (s, e) for s, e in spans
                if set(kind.heads) & set(tokenize(sentence[e : e + 40], keep_stopwords=True)[:3])
            ]
        return spans
    if kind.kind == "who":
        return _name_spans(sentence)
    if kind.kind == "where":
        return [m.span(1) for m in _PLACE.finditer(sentence)]
    return []


def lead_phrase(sentence: Sentence, question: str, kind: QuestionKind) -> Span | None:
    """The phrase of `sentence` that answers the question, if one stands out.

    Among the candidates of the wanted type, the one nearest the question's words in the
    sentence wins; candidates that merely repeat the question are skipped.
    """
    spans = _candidates(sentence.text, kind)
    q_terms = set(tokenize(question))
    text = sentence.text
    anchors = [m.start() for m in re.finditer(r"\w+", text) if tokenize(m.group()) and
               tokenize(m.group())[0] in q_terms]
    best: tuple[float, tuple[int, int]] | None = None
    for s, e in spans:
        if set(tokenize(text[s:e])) <= q_terms and tokenize(text[s:e]):
            continue
        distance = min((abs(a - s) for a in anchors), default=0)
        if best is None or distance < best[0]:
            best = (distance, (s, e))
    if best is None:
        return None
    s, e = best[1]
    return Span(sentence.start + s, sentence.start + e, text[s:e])


# -- follow-ups ------------------------------------------------------------------------------

_PRONOUNS = frozenset(
    "he she him her his hers they them their theirs it its this that these those there then "
    "such latter former one ones".split()
)
_ELLIPSIS = re.compile(r"^(?:and|but|also|so|what about|how about|what else|why|why not|"
                       r"and then)\b", re.IGNORECASE)


def is_follow_up(question: str) -> bool:
    """Does the question lean on an earlier turn (a pronoun, "And in Syria?", too few words)?"""
    words = re.findall(r"[\w’']+", question.lower())
    if _ELLIPSIS.match(question.strip()):
        return True
    if any(w in _PRONOUNS for w in words[1:] if w != "that" or words.index(w) > 1):
        return True
    return len(tokenize(question)) < 3


# -- abstention ------------------------------------------------------------------------------


@cache
def _abstention_model() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("qa").joinpath("abstention.json").read_text(encoding="utf-8")
    )
    return data


FEATURES = ("cosine", "passage_cosine", "coverage", "unknown", "type_found", "bias")


def evidence_features(
    index: Index, question: str, kind: QuestionKind, sentence: Sentence, sentence_cosine: float,
    passage_cosine: float, expansions: dict[str, list[tuple[str, float]]] | None = None,
) -> dict[str, float]:
    """Measurable signs that `sentence` answers `question` (inputs to the abstention model).

    `coverage`: IDF-weighted share of the question's words found in the sentence (a word the
    documents lack counts by its closest stand-in there, at that stand-in's similarity);
    `unknown`: the share the documents lack with no close stand-in anywhere.
    """
    expansions = expansions or {}
    q_terms = set(tokenize(question))
    weights = {t: max(index.idf(t), 0.1) for t in q_terms}
    total = sum(weights.values()) or 1.0
    s_terms = set(tokenize(sentence.text))
    covered = unknown = 0.0
    for term, weight in weights.items():
        if term in s_terms:
            covered += weight
            continue
        stand_ins = expansions.get(term, [])
        covered += weight * max((sim for t, sim in stand_ins if t in s_terms), default=0.0)
        if not index.knows(term):
            unknown += weight * (1.0 - max((sim for _, sim in stand_ins), default=0.0))
    wants_type = kind.kind != "other"
    found = bool(_candidates(sentence.text, kind)) if wants_type else True
    return {
        "cosine": sentence_cosine,
        "passage_cosine": passage_cosine,
        "coverage": covered / total,
        "unknown": unknown / total,
        "type_found": 1.0 if found else 0.0,
        "bias": 1.0,
    }


def answer_probability(features: dict[str, float]) -> float:
    """P(the evidence answers the question) under the fitted logistic model."""
    model = _abstention_model()
    z = sum(model["weights"][name] * features[name] for name in FEATURES)
    return 1.0 / (1.0 + math.exp(-z))


# -- composing -------------------------------------------------------------------------------

SECOND_SENTENCE_MARGIN = 0.04  # a second sentence is quoted when it scores this close
CONTEXT_WEIGHT = 0.5  # weight of the previous turn in a follow-up's query
FOLLOW_UP_PASSAGES = 2  # a follow-up's sentence is chosen from this many top passages
REPEAT_PENALTY = 0.05
NEXT_SENTENCE_BONUS = 0.2  # measured on the dev follow-ups (0.05-0.2 swept)


def _context(pipeline: Pipeline, history: list[Turn], k: int) -> tuple[str, set[int]]:
    """Text of the previous turn (its question and the sentences that answered it), and the
    index numbers of those sentences."""
    last = history[-1]
    earlier = history[:-1]
    previous = answer(pipeline, last.question, earlier, k, resolve_context=len(earlier) < 3)
    index = pipeline.index
    quoted = {sid for c in previous.citations
              if (sid := index.sentence_at(c.doc_id, c.quote.start)) is not None}
    sentences = [c.quote.text for c in previous.citations]
    context = " ".join([last.question, *sentences])
    if last.answer and not sentences:
        context = f"{last.question} {last.answer}"
    return context, quoted


def _follow_up_sentence(
    index: Index, hits: list[Hit], vector: np.ndarray, question: str, quoted: set[int],
    lexical_share: float,
) -> tuple[Sentence, float]:
    """In a follow-up the conversation finds the passage, the new question the sentence.

    Sentences of the top passages are scored against the question alone; a sentence next to
    the one quoted last gets a small bonus (conversations move along the text) and one
    already quoted a small penalty (a follow-up rarely wants the same sentence again).
    """
    sentences = [s for h in hits[:FOLLOW_UP_PASSAGES] for s in h.chunk.sentences]
    ids = np.array([s.index for s in sentences])
    cosines = index.sentence_vectors(ids) @ vector
    lexical = index.sentence_scores(tokenize(question), ids)
    scores = cosines + lexical_share * unit_max(lexical)
    for i, s in enumerate(sentences):
        if s.index in quoted:
            scores[i] -= REPEAT_PENALTY
        elif any(abs(s.index - q) == 1 for q in quoted):
            scores[i] += NEXT_SENTENCE_BONUS
    best = int(np.argmax(scores))
    return sentences[best], float(cosines[best])


@dataclass(frozen=True)
class Evidence:
    """What the answer is decided from: the hits, the best sentence and its features."""

    hits: list[Hit]
    scored: Scored
    kind: QuestionKind
    top: tuple[Sentence, float]
    features: dict[str, float]


def gather(
    pipeline: Pipeline, question: str, history: list[Turn], k: int, resolve_context: bool = True
) -> Evidence | None:
    """Search for `question` (with the conversation if it is a follow-up); None if no hits."""
    index = pipeline.index
    context, quoted = "", set[int]()
    if history and resolve_context and is_follow_up(question):
        context, quoted = _context(pipeline, history, k)
    query = Query.of(question, context, CONTEXT_WEIGHT, index=index, words=pipeline.words())
    if context:  # one batch: the question, and the earlier turn at a lower weight
        vectors = pipeline.embedder.embed([question, context])
        vector = vectors[0] + CONTEXT_WEIGHT * vectors[1]
        vector = vector / np.linalg.norm(vector)
    else:
        vector = pipeline.embedder.embed([question])[0]
    hits, scored = search(index, vector, query, k, pipeline.weights)
    if not hits:
        return None
    kind = question_kind(question)
    top = (hits[0].sentence, hits[0].sentence_score)
    if context:
        top = _follow_up_sentence(index, hits, vectors[0], question, quoted,
                                  pipeline.weights.sentence_lexical)
    features = evidence_features(index, question, kind, top[0], top[1], hits[0].dense_score,
                                 query.expansions)
    return Evidence(hits, scored, kind, top, features)


def answer(
    pipeline: Pipeline, question: str, history: list[Turn], k: int, resolve_context: bool = True
) -> Answer:
    """Compose the answer to `question` given earlier `history` (oldest first)."""
    evidence = gather(pipeline, question, history, k, resolve_context)
    if evidence is None:
        return _abstain(question, [], 0.0)
    confidence = answer_probability(evidence.features)
    if confidence < _abstention_model()["threshold"]:
        return _abstain(question, evidence.hits, confidence)

    index = pipeline.index
    kind, top, hits = evidence.kind, evidence.top, evidence.hits
    chosen = [top]
    runner_up = _runner_up(index, evidence.scored, top, hits)
    if runner_up is not None:
        chosen.append(runner_up)
        chosen.sort(key=lambda pair: pair[0].start)  # quote in document order

    lead = None
    for n, (sentence, _) in enumerate(chosen, start=1):
        span = lead_phrase(sentence, question, kind) if kind.kind != "other" else None
        if span:
            lead = Lead(n, sentence.doc_id, span)
            break
    citations = []
    parts = []
    for n, (sentence, _) in enumerate(chosen, start=1):
        chunk = index.chunks[index.chunk_of(sentence.index)]
        citations.append(
            Citation(
                n=n, doc_id=chunk.doc_id, chunk_id=chunk.id,
                passage=Span(chunk.start, chunk.end, chunk.text),
                quote=Span(sentence.start, sentence.end, sentence.text),
            )
        )
        parts.append(f"{sentence.text} [{n}]")
    body = " ".join(parts)
    return Answer(question=question, text=body, abstained=False, confidence=confidence,
                  citations=tuple(citations), passages=tuple(hits), lead=lead)


def _runner_up(
    index: Index, scored: Scored, top: tuple[Sentence, float], hits: list[Hit]
) -> tuple[Sentence, float] | None:
    """A second sentence worth quoting: scored nearly as high, from the top passages."""
    in_hits = {s.index for h in hits[:3] for s in h.chunk.sentences}
    position = {int(sid): pos for pos, sid in enumerate(scored.sentence_ids)}
    top_score = scored.sentence_scores[position[top[0].index]]
    order = np.argsort(-scored.sentence_scores, kind="stable")
    for pos in order[:3]:
        sid = int(scored.sentence_ids[pos])
        sentence = index.sentences[sid]
        if sid == top[0].index or sid not in in_hits:
            continue
        if scored.sentence_scores[pos] >= top_score - SECOND_SENTENCE_MARGIN:
            return sentence, float(scored.sentence_cosines[pos])
        return None
    return None


def _abstain(question: str, hits: list[Hit], confidence: float) -> Answer:
    topic = question.rstrip("?!. ")
    text = (f"The document doesn't say. I found nothing that answers “{topic}”; the closest "
            "passages are listed below, but they are not an answer.")
    return Answer(question=question, text=text, abstained=True, confidence=confidence,
                  citations=(), passages=tuple(hits))
