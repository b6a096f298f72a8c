"""Answer step: evidence → `Answer`. Pure: no I/O, no search, no pipeline.

In: an `Evidence` record (candidate sentences, checked against the question) and the fitted
answer model. Out: an `Answer` that quotes the best sentence verbatim (and a second one when
it scores nearly as well), each followed by `[n]`, with a `Lead` (the short answer: a span
of the expected type inside the quote) when one is found and the lead model trusts it; or,
when the evidence does not cover the question, an abstention that says what is missing and
cites the closest passage.

The two models are logistic regressions fitted by `scripts/fit_answer_model.py` on a pool of
documents of several kinds (weights in `answer_model.json`): `answer` gives the probability
that the quoted sentence answers the question (the answer's `confidence`), `lead` the
probability that the lead span is the answer. Their thresholds were chosen out of fold.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from qa.chunking import EMPHASIS, introduces, is_heading, table_header
from qa.evidence import (
    ASKS,
    CURRENCY_WORDS,
    DEFINES,
    DURATION,
    HOW_MEASURE,
    NAMED,
    OPENS_WITH_PRONOUN,
    OWNS,
    POSSESSIVE,
    UNIT_NAMES,
    Candidate,
    Evidence,
    answer_spans,
    defined_term,
    yes_no_subject,
)
from qa.lexical import tokenize
from qa.nlp import CONTACT, TITLES, QuestionInfo
from qa.types import Answer, Chunk, Citation, Lead, Mention, Sentence, Span

MAX_ANSWER_WORDS = 60  # an answer (lead plus quotes) never runs longer
SECOND_SENTENCE_MARGIN = 0.3  # measured on the pool: gold in the answer 0.675 -> 0.746
# The second quote is the first of the next two candidates that fits beside the best one; a
# sentence holding the type asked for, when the best holds none, may score this much lower.
# Tuning SQuAD articles: gold in the answer 0.800 -> 0.808 (F1 of the quotes 18.1 -> 17.7).
SECOND_CANDIDATES = 2
TYPED_SECOND_MARGIN = 1.0
# When neither fits whole beside the best sentence, the first that would is quoted in part
# (its window that says the question's words), given this many words of room. Tuning SQuAD
# articles: gold in the answer 0.800 -> 0.810 (26 more, none lost); the other sets 4 more.
# (The runner-up cut before a third that fits whole: 9 more on SQuAD, 2 lost elsewhere.)
MIN_SECOND_WORDS = 12
LEAD_LABELS = ("DATE", "CARDINAL", "PERSON", "GPE", "ORG", "MONEY", "PERCENT", "QUANTITY", "NP")
# A lead states the answer in bold: not when the sentence itself is more likely wrong than
# right (a price from the wrong row, at confidence 0.15). Held out, no lead was shown below 0.3.
LEAD_MIN_CONFIDENCE = 0.5
# Below this confidence an answer is given as the closest the documents come, and says so:
# on the tuning sets fewer than half of such answers hold the gold (SQuAD 41% of 210, the
# article's dev set 31% of 16; from 0.3 to 0.5, 62% and 67%).
TENTATIVE_BELOW = 0.3
MEASURES = frozenset(("DATE", "TIME", "CARDINAL", "MONEY", "PERCENT", "QUANTITY"))
# The lead model also sees the answer model's probability that the sentence is right (a lead
# can only be right in a right sentence) and whether the sentence holds just one span of the
# wanted type: one date in a right sentence is nearly always the date asked for.
LEAD_FEATURES = ("cosine", "passage_cosine", "coverage", "context_coverage", "margin",
                 "missing_rare", "entities_missing", "label_rank", "distance", "candidates",
                 "focus_match", "words", *(f"wants_{label}" for label in LEAD_LABELS),
                 "single", "measure", "specific", "answer_p", "answer_p_single",
                 "answer_p_single_measure")


@dataclass(frozen=True)
class Logistic:
    """A fitted logistic model: standardised features, weights, bias and a threshold."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float

    def probability(self, values: dict[str, float]) -> float:
        z = self.bias + sum(
            w * (values[f] - m) / s
            for f, m, s, w in zip(self.features, self.mean, self.scale, self.weights, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    @classmethod
    def of(cls, data: dict[str, Any]) -> Logistic:
        return cls(tuple(data["features"]), tuple(data["mean"]), tuple(data["scale"]),
                   tuple(data["weights"]), float(data["bias"]), float(data["threshold"]))


@dataclass(frozen=True)
class AnswerModel:
    answer: Logistic
    lead: Logistic


@cache
def default_model() -> AnswerModel:
    """The models shipped with qa (`qa/answer_model.json`)."""
    data = json.loads(resources.files("qa").joinpath("answer_model.json").read_text("utf-8"))
    return AnswerModel(Logistic.of(data["answer"]), Logistic.of(data["lead"]))


# -- the short answer ------------------------------------------------------------------------


def lead_options(candidate: Candidate, evidence: Evidence) -> list[tuple[Span, dict[str, float]]]:
    """Spans of the expected type in the sentence, best first, with the lead model's features.

    The span nearest the question's words in the sentence comes first; a span of a less
    likely label (an organisation for "who") is pushed back.
    """
    info = evidence.question
    spans = answer_spans(candidate.sentence, candidate.mentions, info, evidence.question_terms)
    if info.wants[:1] == ("PERSON",):  # "Who took over when Elias retired?": not "Elias
        # Marrow", the person the question names (the sentence is no less about him)
        named = {t for m in info.entities if m.label == "PERSON" for t in tokenize(m.text)}
        spans = [m for m in spans if m.label != "PERSON" or not set(tokenize(m.text)) & named]
        spans = [m for m in spans if not _modifier(m, candidate.mentions)]
    if info.focus == "year":  # "What year did she leave?": not "the age of 20", a date to
        spans = [m for m in spans if _YEAR_WRITTEN.search(m.text)]  # the entity model
    text, start = candidate.sentence.text, candidate.sentence.start
    if not spans:
        return []
    anchors = [(m.start() + start, m.end() + start) for m in re.finditer(r"[\w’'-]+", text)
               if set(tokenize(m.group())) & evidence.question_terms]
    # What the question says of the names it gives ("closed" of "When was the University of
    # Oslo closed?") picks the clause: every clause of the sentence may be about the name.
    named = {t for m in info.entities if m.label in NAMED for t in tokenize(m.text)}
    said = [(m.start() + start, m.end() + start) for m in re.finditer(r"[\w’'-]+", text)
            if set(tokenize(m.group())) & (evidence.question_terms - named)] if named else []
    options = []
    wanted = info.wants[0] if info.wants else "NP"
    term = defined_term(info.text)
    for mention in spans:
        distance = min((abs(a - mention.start) for a, _ in anchors), default=200)
        rank = info.wants.index(mention.label) if mention.label in info.wants else 0
        features = {
            **{name: candidate.features[name] for name in LEAD_FEATURES
               if name in candidate.features},
            "label_rank": float(rank),
            "distance": min(distance, 200) / 100,
            "candidates": float(min(len(spans), 6)),
            "focus_match": 1.0 if info.focus and info.focus in mention.text.lower() else 0.0,
            "words": len(mention.text.split()) / 5,
            **{f"wants_{label}": float(wanted == label) for label in LEAD_LABELS},
            "single": float(len(spans) == 1),
            "measure": float(wanted in MEASURES),
            "specific": float(_specific(mention, candidate.sentence.start)),
        }
        order = _clause_distance(mention, said or anchors, text, start) + 60 * rank \
            + CROSSED_ORDER * _other_name_clause(mention, candidate, named)
        if _defined_as(mention, candidate, term):
            order -= 2000  # 'Northgate Properties Ltd ("the Landlord")': who the landlord is
        if wanted == "PERSON":
            if info.passive and _AGENT.search(text[:mention.start - start]):
                continue  # "Who was given the title?": not "Altan Khan" of "… by Altan Khan"
            asked = _asked_agent(candidate.sentence, mention, evidence)
            if asked is False:
                continue  # "appointed by the Board of Trade" did not chair it
            if asked:  # "designed and sculpted by Clésinger", "repaired by Harlow Paving"
                order -= 1000
            elif mention.label == "PERSON" and _AFTER_PLACE_WORD.search(
                    text[:mention.start - start]):
                order += 500  # "The plant on Mill Road" (labelled a person)
            if not _WHO_IS.match(info.text) and _holds_role_asked_of(mention, text, start,
                                                                     info):
                order += 500  # "Who will succeed the chair?": not "Our chair, Miriam …"
        order += _figure_order(mention, candidate, evidence.question_terms)
        if mention.label in _FIGURES and _part_of_total(mention, text, start,
                                                         evidence.question_terms):
            order += PART_ORDER
        # "In what year …?": the lead is "2014" of "the first half of 2014" (judged whole)
        shown = _year_of(mention) if info.focus == "year" else mention
        shown = _not_half_a_phrase(shown, candidate.mentions)
        shown = _with_times(_length_alone(shown), text, start)
        shown = _whole_range(shown, candidate.mentions, text, start)
        shown = _clock_alone(shown)
        options.append((order, _whole_words(shown, text, start), features))
    options.sort(key=lambda o: o[0])
    return [(span, features) for _, span, features in options]


# Words that open a part of a total just given ("27 reports of overheating, including 4
# reports of minor burns"; "of whom 12 were injured"): closed class of English.
_PART_OF = re.compile(r"\b(?:including|includes|included|of\s+(?:which|whom)|among\s+(?:them|"
                      r"which|whom))\s+(?:\w+\s+)?$", re.IGNORECASE)
_PHRASE_END = re.compile(r"[,;:.!?()]")
PART_ORDER = 300  # a part of a total, behind the total (order: characters)


def _part_of_total(mention: Mention, text: str, start: int, asked: frozenset[str]) -> bool:
    """Is the figure a part of a total the sentence gave before it ("4" of "received 27
    reports of the base overheating, including 4 reports of minor burns"), and the question
    says nothing that sets the part apart (it asks of "reports of overheating", not of
    "minor burns")? The total is then the answer."""
    before = text[:mention.start - start]
    part = _PART_OF.search(before)
    if part is None or not any(ch.isdigit() for ch in before[:part.start()]):
        return False
    rest = text[mention.end - start:]
    end = _PHRASE_END.search(rest)
    own = set(tokenize(rest[:end.start() if end else len(rest)])) & asked
    return own <= set(tokenize(before[:part.start()])) & asked


# Words that join two clauses ("Ana will print the flyers and Ben will make the posters"), and
# a semicolon: a span on the far side of one says what the other clause says.
_CLAUSE_JOIN = re.compile(r"\b(?:and|but|or|while|whilst|whereas|although|though)\b|;",
                          re.IGNORECASE)
CROSSED_ORDER = 100  # a question word across a join counts as this much further (characters)


def _clause_distance(mention: Mention, anchors: list[tuple[int, int]], text: str,
                     start: int) -> int:
    """How far the span is from the nearest of the question's words in the sentence
    (`anchors`, their offsets), one across a clause join (`_CLAUSE_JOIN`) counting
    `CROSSED_ORDER` further: "Who will print the flyers?" is led by "Ana Duarte" of "Ana
    Duarte will print the flyers and Ben Kowalski will make the posters", not the name a
    few characters nearer "flyers" that opens the next clause."""
    return min((abs(a - mention.start) + CROSSED_ORDER * bool(_CLAUSE_JOIN.search(
        text[min(b, mention.end) - start:max(a, mention.start) - start])) for a, b in anchors),
        default=200)


def _other_name_clause(mention: Mention, candidate: Candidate, named: set[str]) -> bool:
    """Is the span in a clause (`_CLAUSE_JOIN` parts the sentence) that names another thing
    and not the one the question names (`named`, its terms), which another clause does?
    "How many portions did the Corrowby plant produce?": not "38 million" of "… and the
    Wexham plant 38 million", though nearer "plant" than the "61 million" of Corrowby's."""
    if not named:
        return False
    text, start = candidate.sentence.text, candidate.sentence.start
    cuts = [0, *(m.end() for m in _CLAUSE_JOIN.finditer(text)), len(text)]

    def clause(at: int) -> int:
        return bisect.bisect_right(cuts, at - start) - 1

    names = [(clause(m.start), bool(set(tokenize(m.text)) & named))
             for m in candidate.mentions if m.label in NAMED]
    own = clause(mention.start)
    return any(c == own and not asked for c, asked in names) \
        and not any(c == own and asked for c, asked in names) \
        and any(asked for _, asked in names)


_RANGE_JOIN = re.compile(r"\s*(?:-|–|—|to\b)\s*")  # "£46,500 to £52,000", "12–15"


def _whole_range(span: Mention, mentions: tuple[Mention, ...], text: str,
                 start: int) -> Mention:
    """A figure with the figure of its kind that closes the range it opens ("£46,500 to
    £52,000", which the entity model takes as two amounts): half a range reads as the
    whole answer. Dates and times of day only "between" one and the other ("between 3
    February 2026 and 28 August 2026", whose "between" the entity model may take into the
    first date): "from 10am to 3pm" answers "When does it open?" with its first."""
    if span.label not in _FIGURES and span.label not in ("TIME", "DATE"):
        return span
    ranges = []  # each figure of the span's kind with the one after it, where they make one
    kind = sorted((m for m in mentions if m.label == span.label), key=lambda m: m.start)
    for first, last in zip(kind, kind[1:], strict=False):
        between = _BETWEEN.search(text[:first.start - start]) is not None \
            or _OPENS_BETWEEN.match(first.text) is not None
        own = first.text[:-4] if between and first.text.endswith(" and") else first.text
        joined = text[first.start - start + len(own):last.start - start]
        if (between and _AND.fullmatch(joined)) or (
                span.label not in ("TIME", "DATE") and _RANGE_JOIN.fullmatch(joined)):
            ranges.append((first.start, last.end))
    for a, b in ranges:
        if a <= span.start < b and span.end <= b or span.start == a:
            return replace(span, start=a, end=b, text=text[a - start:b - start])
    return span


# "between 10am and 3pm", "between 40 and 60": both ends are the answer (of times of day
# too, which "10am to 3pm" leaves alone: "When does it open?" wants the first)
_BETWEEN = re.compile(r"\bbetween\s+$", re.IGNORECASE)
_OPENS_BETWEEN = re.compile(r"between\s", re.IGNORECASE)
_AND = re.compile(r"\s*(?:and|-|–)\s*", re.IGNORECASE)


# A time of day and the capitalised words after it ("17:30 Evening" of "**17:30 Evening
# reception**", a programme's line, taken whole by the entity model): the words name what
# happens then. Not a day or a month ("10:30 Monday 9 March"), nor "noon" or "GMT".
_CLOCK_THEN_NAME = re.compile(
    r"(\d{1,2}[:.]\d{2}(?:\s?[ap]\.?m\.?)?)\s+(?!(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|"
    r"May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|[A-Z]{2,5}\b))[A-Z][a-z]")


def _clock_alone(span: Mention) -> Mention:
    """The time of day a span opens with, without the name of what happens then."""
    clock = _CLOCK_THEN_NAME.match(span.text) if span.label in ("TIME", "DATE") else None
    if clock is None:
        return span
    return replace(span, end=span.start + clock.end(1), text=clock.group(1))


# A length of time and what it is of ("28 days of annual leave plus bank holidays", one date
# to the entity model), what it is of holding no figure (not "the week of 25 January").
_LENGTH_OF = re.compile(r"(.+?)\s+of\s+\D+")


def _length_alone(span: Mention) -> Mention:
    """The length of time a span opens with, without what it is of: "28 days"."""
    length = _LENGTH_OF.fullmatch(span.text)
    if length is None or not DURATION.match(length.group(1)):
        return span
    return replace(span, end=span.start + length.end(1), text=length.group(1))


# How many times, right before a span that says in what period ("once a year", "three times a
# day"): the entity model takes the period alone.
_TIMES_BEFORE = re.compile(r"\b(?:once|twice|thrice|[\w-]+\s+times)\s+$", re.IGNORECASE)
_PERIOD = re.compile(r"(?:a|an|per|every|each)\b", re.IGNORECASE)


def _with_times(span: Mention, text: str, start: int) -> Mention:
    """The span with how many times it says before it: "once a year", not "a year"."""
    times = _TIMES_BEFORE.search(text[:span.start - start])
    if times is None or not _PERIOD.match(span.text):
        return span
    return replace(span, start=start + times.start(), text=text[times.start():span.end - start])


_DANGLING = re.compile(r"(?:\s+(?:of|for|in|on|at|to|by|with|from|and|or|the|a|an))+\s*$",
                       re.IGNORECASE)


# A year as people write one: three or four digits ("AD 800", "1830"), or two after an
# apostrophe ("'98"); an age or a day of the month ("20") is none.
_YEAR_WRITTEN = re.compile(r"(?<![\d.,])\d{3,4}(?![\d.,]\d)|['’]\d\d\b")
def _modifier(span: Mention, mentions: tuple[Mention, ...]) -> bool:
    """Does the span only describe the noun phrase it sits in ("Canadian" of "the Canadian
    sound engineer Dara Holt", "Mongol" of "the Mongol princes")? It names what kind the doer
    is, not who: the phrase goes on past it. A possessor ("Britain's forces") is no mere
    description. A name the entity model took for a person describes only when a common
    noun follows it ("the Yarlung rulers"): "Tai Situ" of "Tai Situ Changchub" is half a name."""
    return any(m.label == "NP" and m.start <= span.start and span.end < m.end
               and not POSSESSIVE.match(rest := m.text[span.end - m.start:])
               and not OWNS.search(span.text)  # "Lady Gaga's", as the entity model has it
               and (span.label != "PERSON" or _COMMON_NEXT.match(rest)) for m in mentions)


_COMMON_NEXT = re.compile(r"\s+[a-z]")


def _not_half_a_phrase(span: Mention, mentions: tuple[Mention, ...]) -> Mention:
    """The span without the start of a noun phrase it cuts: the entity model takes "25 days
    of annual" out of "25 days of annual leave"; the lead is "25 days"."""
    cut = min((m.start for m in mentions if m.label == "NP"
               and span.start < m.start < span.end < m.end), default=None)
    if cut is None:
        return span
    kept = _DANGLING.sub("", span.text[:cut - span.start].rstrip())
    if not kept.strip():
        return span
    return replace(span, end=span.start + len(kept), text=kept)


def _whole_words(span: Span | Mention, text: str, start: int) -> Span:
    """The span grown to whole words: a lead never cuts one ("US$143,000", of which the
    entity model takes "$143,000"). `text` is the sentence, from offset `start`."""
    a, b = span.start - start, span.end - start
    while a > 0 and text[a - 1].isalnum():
        a -= 1
    while b < len(text) and text[b].isalnum():
        b += 1
    return Span(start + a, start + b, text[a:b])


def _asked_agent(sentence: Sentence, span: Span | Mention, evidence: Evidence) -> bool | None:
    """Is the span the doer of the question's own verb ("Who sculpted it?": "designed and
    sculpted by Clésinger"): True; of another verb ("appointed by the Board of Trade" for
    "Who chaired it?"): False; None when it follows no "<verb> by", or owns what follows it
    ("by Harriet's brother")."""
    text, start = sentence.text, sentence.start
    agent = _AGENT.search(text[:span.start - start])
    if agent is None or POSSESSIVE.match(text[span.end - start:]):
        return None
    return bool(set(tokenize(agent.group(1))) & evidence.question_terms)


# "<verb> [adverb] by [the] [title] NAME": the verb, which the question must use ("Who
# sculpted …?"), not "directed by Gaspare Spontini" elsewhere in the sentence. The words
# between "by" and the name describe the doer ("by the architect") or give its title ("by
# Professor Tom Brennan", "by Dr. Okafor": the entity model leaves it out of the name); they
# never place it elsewhere ("inspired by her role in Dreamgirls": no doer).
_AGENT = re.compile(r"\b([A-Za-z]+)\s+(?:[a-z]+ly\s+)?by\s+(?:(?:the|a|an|his|her|their|its)\s+)?"
                    r"(?:(?!(?:in|of|at|on|for|with|from|to|as)\s)[a-z]+\s+){0,2}"
                    rf"(?:(?i:{'|'.join(sorted(TITLES))})\.?\s+)?$")
_AFTER_PLACE_WORD = re.compile(r"\b(?:in|at|on|near|between|along|via)\s+(?:the\s+)?$",
                               re.IGNORECASE)


# A figure restated in brackets after another ("305 square miles (790 km2)", "$300
# (equivalent to $5,766 in 2016)", "184 people (consisting of 12 …)"): a few words may open
# the brackets.
_RESTATES = re.compile(r"\s*\(\s*(?:[\w.$]+\s+){0,3}$")
_FIGURES = frozenset(("CARDINAL", "QUANTITY", "MONEY", "PERCENT"))
def _units(text: str) -> set[str]:
    """The words of a figure's unit, with the names of its symbols ("790 km2": "km2",
    "kilometr"); "square" or "million" alone names no unit."""
    words = {t for t in tokenize(text) if not t.isdigit()} - _NOT_UNITS
    return words | {name for w in words for name in UNIT_NAMES.get(w, ())}


_NOT_UNITS = frozenset(("squar", "cubic", "sq", "million", "billion", "thousand", "per"))


def _figure_order(mention: Mention, candidate: Candidate, asked: frozenset[str]) -> int:
    """How far back a figure goes among the lead options: one in a unit the question names
    comes before those in another ("in degrees Celsius": the "0.3 °C" of "32.6 °F (0.3 °C)");
    else a figure restated in brackets after another ("305 square miles (790 km2)", "$300
    (equivalent to $5,766 in 2016)") comes after it."""
    if mention.label not in _FIGURES:
        return 0
    named = {u for m in candidate.mentions if m.label in _FIGURES for u in _units(m.text)}
    if named & asked:
        return 0 if _units(mention.text) & asked else RESTATED_ORDER
    text, start = candidate.sentence.text, candidate.sentence.start
    restated = any(m.label in _FIGURES and m.end <= mention.start
                   and _RESTATES.fullmatch(text[m.end - start:mention.start - start])
                   for m in candidate.mentions)
    return RESTATED_ORDER if restated else 0


RESTATED_ORDER = 400  # behind a span further from the question's words (order: characters)


# A year of four digits, not part of a longer number, an amount or a decade ("the 1960s").
_YEAR = re.compile(r"(?<![\d,.$£€])(?:1\d|20)\d\d(?![\d,]|[’']?s\b)")


def _year_of(mention: Mention) -> Mention:
    """The one year a date names, as its own span ("July 3, 2007" → "2007"); a span naming
    no year or several ("1870 to 1930") stays whole."""
    years = list(_YEAR.finditer(mention.text))
    if len(years) != 1 or years[0].group() == mention.text:
        return mention
    year = years[0]
    return replace(mention, start=mention.start + year.start(),
                   end=mention.start + year.end(), text=year.group())


def _specific(mention: Mention, sentence_start: int) -> bool:
    """Does the span name something (a capitalised word not opening the sentence, or a
    digit)? "a newly recorded track" only describes what "what track" asks for; "Nuclear"
    names it."""
    return any(w.group()[0].isupper() and mention.start + w.start() != sentence_start
               or any(ch.isdigit() for ch in w.group())
               for w in re.finditer(r"\S+", mention.text))


def with_answer_p(features: dict[str, float], answer_p: float) -> dict[str, float]:
    """A lead option's features with the answer model's probability for its sentence."""
    return {**features, "answer_p": answer_p, "answer_p_single": answer_p * features["single"],
            "answer_p_single_measure": answer_p * features["single"] * features["measure"]}


# -- composing -------------------------------------------------------------------------------


def _introduced(top: Candidate, then: Candidate | None = None) -> Sentence | None:
    """What a quoted sentence ending in a colon introduces, next in its passage ("Install it
    with Cargo:" and the command under it; "Invoices come in these formats:" and the list
    under it, its lines as one span): one is half an answer without the other."""
    run_in = _run_in(top)
    # a heading quoted first heads what answers: "### Fixed" over the list of fixes (not a
    # table's first row, nor code, which `is_heading` counts too)
    heads = is_heading(top.sentence, top.chunk) and not _NOT_A_TITLE.search(top.sentence.text) \
        and not ASKS.search(top.sentence.text) \
        and not _prose_under(top, then)  # (a FAQ's question heads its answer already)
    if not introduces(top.sentence) and not run_in and not heads:
        return None
    sentences = top.chunk.sentences
    at = next((i for i, s in enumerate(sentences) if s.index == top.sentence.index), None)
    if at is None or at + 1 >= len(sentences):
        return None
    if run_in:  # the sentence after it on its line, if any
        following = sentences[at + 1]
        return None if "\n" in _between(top.chunk, top.sentence, following) else following
    first = last = sentences[at + 1]  # (under a heading, it may head a block of its own:
    # "## [3.1.1] - 2026-08-30" over "### Fixed" and its list, which are quoted together)
    for following in sentences[at + 2:at + 1 + MAX_INTRODUCED]:  # the block's next lines
        if _BLANK_LINE.search(_between(top.chunk, last, following)) \
                or is_heading(following, top.chunk):
            break
        last = following
    if last is first:
        return first
    start, end = first.start - top.chunk.start, last.end - top.chunk.start
    return replace(first, end=last.end, text=top.chunk.text[start:end])


def _prose_under(top: Candidate, then: Candidate | None) -> bool:
    """Is the next candidate a sentence of prose later in the heading's passage? It is the
    one the heading was chosen for ("Import of GPX tracks." under "## [2.0.0] - 2025-06-20",
    which dates it), and is quoted after it, not the whole block."""
    return then is not None and then.sentence.doc_id == top.sentence.doc_id \
        and then.chunk.index == top.chunk.index and then.sentence.index > top.sentence.index \
        and not is_heading(then.sentence, then.chunk)


MAX_INTRODUCED = 12  # lines of a list a colon introduces, quoted with it
_NOT_A_TITLE = re.compile(r"[|\t]|```|~~~")  # a table's row, a code fence
# A run-in heading: a noun phrase of one to four words that opens its line and ends in a full
# stop, the paragraph going on after it ("Statistics. Activity was analysed in R."), as papers
# and reports head their paragraphs.
_LABEL = re.compile(r"[A-Z][\w’'-]*(?:[ \t]+[\w’'-]+){0,3}\.")


def _run_in(top: Candidate) -> bool:
    """Is the quoted sentence a run-in heading (`_LABEL`, one noun phrase), at the start of
    a line?"""
    sentence, chunk = top.sentence, top.chunk
    before = chunk.text[:sentence.start - chunk.start].rstrip(" \t")
    if _LABEL.fullmatch(sentence.text) is None or (before and not before.endswith("\n")):
        return False
    end = sentence.end - 1  # a noun phrase, the whole of it: not "Construction began in 1871."
    return any(m.label == "NP" and m.start == sentence.start and m.end == end
               for m in top.mentions)

_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _between(chunk: Chunk, a: Sentence, b: Sentence) -> str:
    return chunk.text[a.end - chunk.start:b.start - chunk.start]


def _words(text: str) -> int:
    return len(text.split())


def _lead_words(lead: Span | None) -> int:
    """The words a lead adds to what is shown: its own, and the dash after it."""
    return _words(lead.text) + 1 if lead is not None else 0


_BULLET = re.compile(r"[-*+•][ \t]+(?=\S)")


# A plain-text file's heading on the line over the sentence it is joined to ("Diet" /
# "Marsh harrier larks feed mainly on beetles …"): a few words, no figure, no closing mark.
_HEADING_LINE = re.compile(r"[ \t]*([^\W\d_][^\d\n.!?:;,]{0,40}?)[ \t]*\n[ \t]*(?=[A-Z\"“])")
HEADING_LINE_WORDS = 4
MIN_BODY_WORDS = 4  # what is left after it is a sentence of its own


def _body(sentence: Sentence, terms: frozenset[str] = frozenset(),
          lead: Span | None = None) -> Span:
    """The sentence without a list item's bullet ("- Bikes travel free" quotes "Bikes travel
    free": after a lead, "£300 — - A home office allowance" read as a stray dash), and
    without the heading of a plain-text file on the line over it, which the splitter joins
    to it ("Diet\nMarsh harrier larks feed …" read as "Diet Marsh harrier larks feed …"),
    unless the heading says a word of the question (`terms`): a glossary's term over its
    definition ("Attenuation\nThe loss of …" for "What is attenuation?") is quoted whole,
    and so is a heading that holds the `lead`."""
    text, start = sentence.text, sentence.start
    heading = _HEADING_LINE.match(text)
    if heading is not None and len(heading.group(1).split()) <= HEADING_LINE_WORDS \
            and _words(text[heading.end():]) >= MIN_BODY_WORDS \
            and not set(tokenize(heading.group(1))) & terms \
            and (lead is None or lead.start >= start + heading.end()):
        start, text = start + heading.end(), text[heading.end():]
    mark = _BULLET.match(text)
    if mark is None:
        return Span(start, sentence.end, text)
    return Span(start + mark.end(), sentence.end, text[mark.end():])


def _quote_span(sentence: Span, budget: int, around: Span | None,
                terms: frozenset[str] = frozenset()) -> Span:
    """The sentence (its `_body`), or (when longer than `budget` words) the window of it
    around `around`; without one, the window centred on the question's words (`terms`) where
    it says most of them, or its start: still an exact slice of the document. A long sentence names
    what was asked where it answers it (tuning SQuAD articles: 8 more golds in the answer,
    none lost)."""
    if _words(sentence.text) <= budget:
        return Span(sentence.start, sentence.end, sentence.text)
    words = list(re.finditer(r"\S+", sentence.text))
    centre = 0
    if around is not None:
        centre = next((i for i, w in enumerate(words)
                       if sentence.start + w.end() > around.start), 0)
    first = max(0, min(centre - budget // 3, len(words) - budget))
    if around is None and terms:
        said = np.array([bool(terms.intersection(tokenize(w.group()))) for w in words], int)
        windows = np.convolve(said, np.ones(budget, int), "valid")  # words said, per window
        best = int(np.argmax(windows))  # the first of the best (the start when none says any)
        inside = np.flatnonzero(said[best:best + budget])
        if len(inside):  # centred on those words: what answers is said around them
            middle = best + (int(inside[0]) + int(inside[-1])) // 2
            first = max(0, min(middle - budget // 2, len(words) - budget))
    chosen = words[first : first + budget]
    a, b = sentence.start + chosen[0].start(), sentence.start + chosen[-1].end()
    return Span(a, b, sentence.text[a - sentence.start : b - sentence.start])


def _second(evidence: Evidence, shown: int) -> Candidate | None:
    """The sentence quoted after the best one: the first of the next `SECOND_CANDIDATES`
    that scores nearly as well, or that holds a span of the type asked for when the best one
    holds none ("When did it open?": the best sentence names the café, the next dates it),
    and fits in the answer beside it (`shown`: the words of the lead and a hedge); when none
    fits whole, the first with `MIN_SECOND_WORDS` of room beside it, to be quoted in part."""
    top = evidence.candidates[0]
    typed: bool | None = None  # the best holds no span of the type asked (looked at once)
    subject = yes_no_subject(evidence.question)  # "Do dogs travel free?": not "Children
    if subject and subject not in tokenize(top.sentence.text):  # under 5 travel free."
        subject = ""  # beside the dogs
    room = MAX_ANSWER_WORDS - _words(top.sentence.text) - 2 - shown
    in_part: Candidate | None = None
    for second in evidence.candidates[1:1 + SECOND_CANDIDATES]:
        if (second.score < top.score - TYPED_SECOND_MARGIN
                or second.sentence.index == top.sentence.index
                or ASKS.search(second.sentence.text)  # "Also, how many desks …?"
                or _says_nothing(second.sentence.text)  # "## 4.", a heading's number
                or (subject and subject not in tokenize(second.sentence.text)
                    and not OPENS_WITH_PRONOUN.match(second.sentence.text))
                or (second.sentence.doc_id != top.sentence.doc_id
                    and OPENS_WITH_PRONOUN.match(second.sentence.text))):
            continue
        whole = _words(second.sentence.text) <= room
        if not whole and (room < MIN_SECOND_WORDS or in_part is not None):
            continue
        if second.score < top.score - SECOND_SENTENCE_MARGIN:
            if typed is None:
                typed = bool(evidence.question.wants) and not lead_options(top, evidence)
            if not (typed and lead_options(second, evidence)):
                continue
        if not _repeats(second.sentence.text, top.sentence.text):  # the same words, twice
            if whole:
                return second
            in_part = second
    return in_part


# A word of two letters or more: a "sentence" without one, nor a table's cells ("## 4.", the
# number that the heading "## 4. Exclusions" opens with), says nothing quoted alone.
_SAYS_A_WORD = re.compile(r"[^\W\d_]{2}")


def _says_nothing(text: str) -> bool:
    return "|" not in text and _SAYS_A_WORD.search(text) is None


REPEATS = 0.9  # two sentences this alike (difflib's ratio) say the same thing


def _repeats(text: str, other: str) -> bool:
    """Does `text` say what `other` says, word for word but for a few characters (the same
    sentence in two documents; "Subject: Re: Office move …" under "Subject: Office move …")?
    Quoted beside it, it adds nothing, in place of a sentence that might."""
    if text == other:
        return True
    matcher = SequenceMatcher(None, text, other)  # the cheap upper bounds first
    return matcher.real_quick_ratio() >= REPEATS and matcher.quick_ratio() >= REPEATS \
        and matcher.ratio() >= REPEATS


def _owns_role(question: str, name: str) -> bool:
    """Is `name` what the role asked about is of ("of Halden's", "of the brig Swallow")? Only
    then does a sentence that never names it answer of another holder: a name said otherwise
    ("the English general who met …", "now NYC") may be paraphrased ("British", "New York
    City") by the sentence that answers."""
    return re.search(r"\bof\s+(?:[a-z]+\s+){0,2}" + re.escape(name), question) is not None


# "Who is/was the <role> …?", "Who is Kellerton's <role>?": asks who holds a role, which a
# sentence names by title.
_WHO_IS = re.compile(r"^\s*who\s+(?:is|was|are|were)\s+(?:the|a|an|(?:the\s+)?[\w-]+[’']s)\s",
                     re.IGNORECASE)
_TITLE_BEFORE = re.compile(r"([\w’'-]+)(?:\s*,)?\s+$")


def _titled(span: Span, top: Candidate, evidence: Evidence) -> bool:
    """Is the lead a person named right after the role the question asks about ("Who is
    the harbour master?": "The harbour master, Ewan Tait, …"; "The stationmaster at
    Dundee, James Smith, …")? The sentence says in so many words who holds it."""
    if not _WHO_IS.match(evidence.question.text) or not _labelled(span, top, ("PERSON",)):
        return False
    before = top.sentence.text[:span.start - top.sentence.start]
    title = _TITLE_BEFORE.search(before)
    return bool(title and set(tokenize(title.group(1))) & evidence.question_terms)


def _holds_role_asked_of(span: Span | Mention, text: str, start: int,
                         info: QuestionInfo) -> bool:
    """Is the span a name right after a role that one of the question's noun phrases is
    headed by ("Our chair, Miriam Adebayo" for "Who will succeed the chair?")? It names
    the one the question asks about, not the answer (unless it asks who holds the role:
    `_WHO_IS`)."""
    title = _TITLE_BEFORE.search(text[:span.start - start])
    roles = {t for m in info.nouns if m.label == "NP" and m.head for t in tokenize(m.head)}
    return bool(title and set(tokenize(title.group(1))) & roles)


def _defined_as(span: Span | Mention, top: Candidate, term: set[str] | None) -> bool:
    """Is the lead the name the defined term the question asks after stands for (`term`,
    of `defined_term`: "Who is the landlord?": 'Northgate Properties Ltd ("the
    Landlord")')?"""
    if term is None:
        return False
    after = DEFINES.match(top.sentence.text[span.end - top.sentence.start:].lstrip())
    return after is not None and set(tokenize(after.group(1))) == term


def _agent(span: Span, top: Candidate, evidence: Evidence) -> bool:
    """Is the lead the person or body who did what the question asks about, by the
    question's own verb ("Who designed it?": "It was designed by Maria Lopez"; "Who repaired
    the footpath?": "repaired by Harlow Paving")?"""
    return (evidence.question.wants[:1] == ("PERSON",)
            and _labelled(span, top, ("PERSON", "ORG"))
            and _asked_agent(top.sentence, span, evidence) is True)


# "Venue: Riverside Hall", "Power cord length: 1.1 metres.": a label of one to four words, a
# colon, and what it gives (a line of minutes or a form, an item of a specification).
_RECORD = re.compile(rf"{EMPHASIS}([A-Z][\w’'&/-]*(?:[ \t]+[\w’'&/()-]+){{0,3}}){EMPHASIS}:"
                     rf"{EMPHASIS}[ \t]+(\S(?:.*\S)?)")  # ("**Venue:** Riverside Hall")
MAX_RECORD_WORDS = 12  # a longer value is prose, quoted, not led


def _record_value(top: Candidate, evidence: Evidence) -> Span | None:
    """The value of a "Label: value" sentence whose label the question names ("Who is the
    clerk?": "Clerk: Peter Haines"; "What was the venue?": "Venue: Riverside Hall"): the
    document states the answer in so many words. A question for a measure needs one there."""
    sentence = top.sentence
    record = _RECORD.fullmatch(sentence.text)
    if record is None:
        return None
    label = set(tokenize(record.group(1)))
    value = record.group(2).rstrip(" .;,")
    if not label or not label <= evidence.question_terms or not value \
            or _words(value) > MAX_RECORD_WORDS or set(tokenize(value)) <= label:
        return None
    start = sentence.start + record.start(2)
    wants = evidence.question.wants
    if wants and set(wants) <= MEASURES and not any(
            m.label in wants and start <= m.start for m in top.mentions) \
            and not any(ch.isdigit() for ch in value):
        return None  # "How many apologies?" is not answered by the names sent
    if wants and set(wants) <= MEASURES:  # "Hours: 37 hours per week, Monday to Friday":
        # of a value that lists more, the one part with a figure that says the question's
        # words ("37 hours per week" for "How many hours a week?")
        parts = [p for p in _PART.finditer(value)
                 if any(ch.isdigit() for ch in p.group()) and p.group().strip()
                 and set(tokenize(p.group())) & evidence.question_terms]
        if len(parts) == 1 and parts[0].group().strip() != value:
            part = parts[0]
            at = start + part.start() + len(part.group()) - len(part.group().lstrip())
            text = part.group().strip()
            return Span(at, at + len(text), text)
    return Span(start, start + len(value), value)


_PART = re.compile(r"[^,;]+")  # the parts of a record's value that commas or semicolons part


_CELL = re.compile(r"[^|\t]+")


def _cells(sentence: Sentence) -> list[Span]:
    """The cells of a table row, as spans of the document, empty ones left out."""
    out = []
    for cell in _CELL.finditer(sentence.text):
        text = cell.group().strip()
        if text:
            start = sentence.start + cell.start() + cell.group().index(text)
            out.append(Span(start, start + len(text), text))
    return out


def _cell_asked(top: Candidate, header: Sentence, evidence: Evidence) -> Span | None:
    """The lead of a table row the question names by its first cell, under the one column
    it names by its header ("How much is an adult return ticket?": "£14.00" of "| Adult |
    £8.50 | £14.00 |" under "| Ticket | Single | Return |"): the table says in so many
    words which cell answers."""
    row, columns = _cells(top.sentence), _cells(header)
    terms = evidence.question_terms
    if len(row) != len(columns) or len(row) < 2:
        return None
    kind = set(tokenize(evidence.question.kind))
    if kind and kind == set(tokenize(columns[0].text)) and not set(tokenize(row[0].text)) \
            & terms and _words(row[0].text) <= MAX_CELL_WORDS:
        return row[0]  # "Which lake has the greatest depth?": "Tarn Heskel" of "| Tarn
        # Heskel | 61 | 45 |" under "| Lake | Depth (m) | Area (ha) |"
    if not set(tokenize(row[0].text)) & terms:
        return None
    if len(row) == 2 and set(tokenize(row[0].text)) == set(tokenize(evidence.question.focus)) \
            and _words(row[1].text) <= MAX_RECORD_WORDS:
        return row[1]  # "What colour is it?": "| Colour | Graphite grey |", a record
    named = [i for i, column in enumerate(columns[1:], start=1)
             if set(tokenize(column.text)) & terms]
    if len(named) != 1:
        return None
    cell = row[named[0]]
    span = next((span for span, _ in lead_options(top, evidence)
                 if cell.start <= span.start and span.end <= cell.end), None)
    if span is not None and _words(cell.text) <= MAX_CELL_WORDS:
        return cell  # "30 April 2027", of which the entity model dates "April 2027"
    return span


MAX_CELL_WORDS = 4  # a cell this short that holds the lead is the lead; a longer one is prose


# A role in brackets right after a name: one to four words, no figures ("(Chair)", "(Head of
# Finance)"); not an aside ("Suga Mama (also the name of a song …)") nor a year ("(1991)").
_BRACKETED = re.compile(r"\s*\(([A-Za-z][A-Za-z’'&-]*(?:\s+[A-Za-z’'&-]+){0,3})\)")


def _role_in_brackets(top: Candidate, evidence: Evidence) -> Span | None:
    """The one person of the sentence whose role, in brackets right after the name, the
    question names ("Who chaired the meeting?", "Who is the secretary?": "Present: Joan
    Ferris (Chair), Malik Osei (Treasurer), Priya Nandakumar (Secretary)"), as minutes and
    programmes list people. Every word of the role is the question's."""
    if evidence.question.wants[:1] != ("PERSON",):
        return None
    text, start = top.sentence.text, top.sentence.start
    named = [m for m in top.mentions if m.label == "PERSON"
             and (role := _BRACKETED.match(text, m.end - start)) is not None
             and (terms := set(tokenize(role.group(1))))
             and terms <= evidence.question_terms]
    if len(named) != 1:
        return None
    return _whole_words(named[0], text, start)


def _term_defined_for(top: Candidate, evidence: Evidence) -> Span | None:
    """The name that the term a "who/what is the X?" question asks after is defined for in
    the sentence ('Halvorsen Lettings Ltd ("the Landlord")' for "Who is the landlord?"), as
    the lead options give it: a contract's opening sentence names the parties and the
    property, and is trusted less than its words say."""
    term = defined_term(evidence.question.text)
    if term is None:
        return None
    return next((span for span, _ in lead_options(top, evidence)
                 if _defined_as(span, top, term)), None)


def _labelled(span: Span, top: Candidate, labels: tuple[str, ...]) -> bool:
    """Is the span a name the entity model labels one of `labels` ("PERSON", "ORG")?"""
    return any(m.label in labels and (m.start, m.end) == (span.start, span.end)
               for m in top.mentions)


def _asks_contact(evidence: Evidence) -> bool:
    wants = set(evidence.question.wants)
    return bool(wants) and wants <= set(CONTACT)


# An amount asked for: "how much", "what is the price of": not "what costs will it lower?"
_AMOUNT_ASKED = re.compile(r"\bhow\s+much\b|\bwhat(?:[’']s|\s+(?:is|was|are|were|will\s+be))"
                           r"\s+the\s+(?:\w+\s+)?(?:price|cost|fee|charge|fare|rent)\b",
                           re.IGNORECASE)


def _none_given(evidence: Evidence) -> bool:
    """An amount of money, a date or a contact detail, asked for and in no candidate
    sentence: these are found so reliably (an amount or a date by the entity model or in
    words, a contact detail by its form) that none means the documents do not give it: "How
    much does the WS-40 cost?" of a manual without prices, "In what year was the CR-20
    launched?" of one that never dates it, "What is the fax number?" of one without a fax,
    "How deep is the main pool?" of a page that gives only its temperature."""
    money = evidence.question.wants == ("MONEY",) and bool(
        _AMOUNT_ASKED.search(evidence.question.text))
    dated = evidence.question.wants[:1] == ("DATE",)  # when, what year, how old, how long
    # a measure of one dimension ("How deep is the pool?"), in figures of its units
    measured = HOW_MEASURE.search(evidence.question.text) is not None
    if not (money or dated or measured or _asks_contact(evidence)):
        return False
    return not any(c.features["type_found"] or (money and CURRENCY_WORDS.search(c.sentence.text))
                   for c in evidence.candidates)


def _no_amount(evidence: Evidence, top: Candidate) -> bool:
    """Is an amount of money asked for ("How much will the bridge cost?") and the sentence
    quoted first holds none? It does not say how much: the answer is only the closest
    ("We're designing a cycle bridge at Milbury", beside another bridge's £2.1 million)."""
    return evidence.question.wants == ("MONEY",) and bool(
        _AMOUNT_ASKED.search(evidence.question.text)) and not top.features["type_found"] \
        and not CURRENCY_WORDS.search(top.sentence.text)


# "Who is/was the <role> [of …]?": the role, up to what it is of.
_ROLE = re.compile(r"^\s*who\s+(?:is|was|are|were)\s+(?:the|a|an)\s+(.+?)"
                   r"(?:\s+(?:of|for|at|in|on|to)\s+.*)?\s*\?*\s*$", re.IGNORECASE)


# Words that say which holder of a role is meant, not which role (closed class of English
# adjectives of time): "the current headteacher" is the headteacher.
_WHICH_HOLDER = frozenset(tokenize("current present new incumbent existing actual sitting"))


def _role_unknown(evidence: Evidence) -> tuple[str, ...]:
    """The words of a role the question asks the holder of ("Who is the captain of the
    Tarrow ferry?") that the documents never use, nor one close to them
    (`Evidence.unknown_words`); or the word that says which of a role the documents name
    ("deputy" of "Who is the deputy headteacher?", right before the role's last word),
    when they never use it, close words or not: "secretary" is another role. Then they
    cannot say who holds it, whoever the sentence found names. Empty when they can."""
    role = _ROLE.match(evidence.question.text)
    if role is None:
        return ()
    words = set(tokenize(role.group(1))) - _WHICH_HOLDER
    unknown = tuple(w for w in evidence.unknown_words if set(tokenize(w)) & words)
    if unknown:
        return unknown
    said = role.group(1).split()
    unused = {t for w in evidence.unused_words for t in tokenize(w)}
    if len(said) < 2 or not (head := set(tokenize(said[-1]))) or head & unused:
        return ()
    which = set(tokenize(said[-2])) - _WHICH_HOLDER
    return tuple(w for w in evidence.unused_words if which and set(tokenize(w)) <= which)


def compose(evidence: Evidence, model: AnswerModel | None = None) -> Answer:
    """The answer for `evidence`: quotes and a lead, or an abstention that says why."""
    model = model or default_model()
    question = evidence.question.text
    if not evidence.candidates:
        return _abstain(evidence, None, 0.0)
    top = evidence.candidates[0]
    confidence = model.answer.probability(top.features)
    if confidence < model.answer.threshold or top.never or _none_given(evidence) \
            or top.numbers_missing or _role_unknown(evidence):  # "in 2004" asked, of 2005
        return _abstain(evidence, top, confidence)  # (top.never: a name no document mentions)
    owners = tuple(name for name in top.unnamed if _owns_role(question, name))
    if _WHO_IS.match(question) and evidence.question.wants[:1] == ("PERSON",) \
            and owners:  # "Who is the chief executive of Halden's?": not the report's own
        return _abstain(evidence, replace(top, missing=owners), confidence)
    opposite = opposite_event(evidence.question.verb, top.sentence.text, question) \
        or reversed_route(question, top.sentence.text)
    if opposite is not None:
        return _abstain(evidence, top, confidence, opposite)

    lead_span = None
    unresolved = _unresolved(evidence, top) or _other_kind(evidence, top) \
        or _no_reason(evidence, top)
    options = lead_options(top, evidence) \
        if confidence >= LEAD_MIN_CONFIDENCE and not unresolved else []
    # "What mark is needed to pass?": not "an overall mark" of "an overall mark of at least
    # 40%". A phrase of the kind asked for leads only when it names one (`_specific`, or a
    # name opening the sentence: "Iraqi special forces are …").
    options = [o for o in options if not o[1]["wants_NP"] or o[1]["specific"]
               or any(m.label in NAMED and m.start < o[0].end and o[0].start < m.end
                      for m in top.mentions)]
    if options:
        span, features = options[0]
        if model.lead.probability(with_answer_p(features, confidence)) >= model.lead.threshold \
                or (_asks_contact(evidence) and features["single"]) \
                or _titled(span, top, evidence) or _agent(span, top, evidence) \
                or _defined_as(span, top, defined_term(question)):
            lead_span = span  # (also: the one email address or phone number of a right
            # sentence, and the holder of the role asked about, named by its title)
    if confidence >= TENTATIVE_BELOW and not unresolved:
        lead_span = _role_in_brackets(top, evidence) or _term_defined_for(top, evidence) \
            or lead_span  # it says who, in so many words: "Joan Ferris (Chair)" for "Who
        # chaired the meeting?", 'Northgate Properties Ltd ("the Landlord")'
    header = table_header(top.sentence, top.chunk)
    if header is not None and confidence >= TENTATIVE_BELOW and not unresolved:
        lead_span = _cell_asked(top, header, evidence) or lead_span  # the table says which
    elif lead_span is None and confidence >= TENTATIVE_BELOW and not unresolved:
        lead_span = _record_value(top, evidence)

    hedge = unresolved or (
        _hedge(evidence) if confidence < TENTATIVE_BELOW or _no_amount(evidence, top) else "")
    chosen = [top]
    introduced = _introduced(top, evidence.candidates[1] if len(evidence.candidates) > 1
                             else None)
    if header is not None and _words(top.sentence.text) + _words(header.text) + 2 \
            + _lead_words(lead_span) + _words(hedge) <= MAX_ANSWER_WORDS:
        chosen.insert(0, replace(top, sentence=header))  # which column is which
    elif introduced is not None and _words(top.sentence.text) + _words(introduced.text) + 2 \
            + _lead_words(lead_span) + _words(hedge) <= MAX_ANSWER_WORDS:
        chosen.append(replace(top, sentence=introduced))
    elif (second := _second(evidence, _lead_words(lead_span) + _words(hedge))) is not None:
        chosen.append(second)
        if (second.sentence.index == top.sentence.index - 1
                and second.sentence.doc_id == top.sentence.doc_id):
            chosen.reverse()  # the sentence just before the best one: read them in order
        above = table_header(second.sentence, second.chunk)
        if above is not None and sum(_words(c.sentence.text) for c in chosen) \
                + _words(above.text) + 3 + _lead_words(lead_span) + _words(hedge) \
                <= MAX_ANSWER_WORDS:  # a table's row second: which column is which
            chosen.insert(chosen.index(second), replace(second, sentence=above))

    # Every word shown counts, as a reader (or `str.split`) counts them: the lead and its dash,
    # a hedge, the quotes, and each quote's `[n]` marker (a cut quote's "…" joins its word).
    # The best sentence is cut first (to the budget), whichever is read first.
    budget = MAX_ANSWER_WORDS - _lead_words(lead_span) - _words(hedge) - len(chosen)
    terms = evidence.question_terms
    quotes: dict[int, Span] = {}
    for at in sorted(range(len(chosen)), key=lambda i: chosen[i] is not top):
        around = lead_span if chosen[at] is top else None
        quotes[at] = _quote_span(_body(chosen[at].sentence, terms, around), budget, around,
                                 evidence.question_terms)
        budget -= _words(quotes[at].text)
    citations, parts = [], []
    lead = None
    for n, candidate in enumerate(chosen, start=1):
        whole = _body(candidate.sentence, terms, lead_span if candidate is top else None)
        quote = quotes[n - 1]
        chunk = candidate.chunk
        citations.append(Citation(n, chunk.doc_id, chunk.id,
                                  Span(chunk.start, chunk.end, chunk.text), quote))
        cut_before = quote.start > whole.start
        cut_after = quote.end < whole.end
        parts.append(("…" if cut_before else "") + quote.text + ("…" if cut_after else "")
                     + f" [{n}]")
        if candidate is top and lead_span is not None \
                and quote.start <= lead_span.start and lead_span.end <= quote.end:
            lead = Lead(n, candidate.sentence.doc_id, lead_span)
    return Answer(question=question, text=hedge + " ".join(parts), abstained=False,
                  confidence=confidence, citations=tuple(citations),
                  passages=evidence.hits, lead=lead, tentative=bool(hedge))


# Events that come in opposite pairs, each verb with its forms (its lemma first): a state's
# beginning and its end, a move's or an exchange's two directions, a change up or down. A
# sentence that tells of one ("1893 – The lifeboat station opens.") answers no question of
# the other ("When did the lifeboat station close?"), though it says every other word of it
# and its date is of the type asked. Closed: the few verbs English pairs this way. Not the
# two sides of one exchange ("won"/"lost", "bought"/"sold"): "the award was won by Beck"
# says to whom Beyoncé lost it.
_OPPOSITES = (
    (("open opens opened opening",),
     ("close closes closed closing", "shut shuts shutting")),
    (("arrive arrives arrived arriving",),
     ("depart departs departed departing", "leave leaves left leaving")),
    (("begin begins began begun beginning", "start starts started starting"),
     ("end ends ended ending", "finish finishes finished finishing")),
    (("join joins joined joining",), ("leave leaves left leaving", "quit quits quitting")),
    (("bear born",), ("die dies died dying",)),
    (("rise rises rose risen rising", "increase increases increased increasing"),
     ("fall falls fell fallen falling", "decrease decreases decreased decreasing")),
    (("enter enters entered entering",), ("exit exits exited exiting",)),
)


def _verbs(side: tuple[str, ...]) -> list[list[str]]:
    return [forms.split() for forms in side]


def opposite_event(verb: str, text: str, question: str = "") -> tuple[str, str] | None:
    """The word of `text` that tells of the event opposite to the question's main `verb`
    (`QuestionInfo.verb`, a lemma), with the verb as the `question` writes it, when `text`
    tells of it in no form of its own: "opens" for "close". Only an inflected form counts
    ("opens", "opened", not "open": "is open until 5pm" says when it closes). Not of a
    sentence of two clauses (`_CLAUSE_JOIN`): the other may tell of the event asked in words
    the table lacks ("The coach leaves at 13:00 and reaches Glasgow at about 17:00")."""
    if not verb or _CLAUSE_JOIN.search(text):
        return None
    asked_words = re.findall(r"[a-z]+", question.lower())
    words = re.findall(r"[a-z]+", text.lower())
    for first, second in _OPPOSITES:
        for asked, other in ((first, second), (second, first)):
            own = [forms for forms in _verbs(asked) if forms[0] == verb]
            if not own:
                continue
            if set(words) & {f for forms in _verbs(asked) for f in forms}:
                return None  # it tells of the event asked too ("began … and ended …")
            told = next((w for w in words for forms in _verbs(other)
                         if w in forms[1:]), None)
            if told is not None:
                said = next((w for w in asked_words for forms in own if w in forms), verb)
                return told, said
    return None


# "from X [back] to Y": a route's two ends, each one to three words after "from" and "to"
_ROUTE = re.compile(r"\bfrom\s+(?:the\s+)?((?:[\w’'-]+\s+){0,2}?[\w’'-]+)\s+"
                    r"(?:(?:and\s+)?back\s+)?to\s+(?:the\s+)?((?:[\w’'-]+\s+){0,2}?[\w’'-]+)\b",
                    re.IGNORECASE)


def reversed_route(question: str, text: str) -> tuple[str, str] | None:
    """The route `text` gives ("from Mallaig to Armadale") when the question asks of the
    same two ends the other way round ("the ferry from Armadale back to Mallaig"), with the
    question's: a time or a fare of one direction is not the other's."""
    asked = _ROUTE.search(question)
    if asked is None:
        return None
    start, end = set(tokenize(asked.group(1))), set(tokenize(asked.group(2)))
    if not start or not end or start & end:
        return None
    for route in _ROUTE.finditer(text):
        there, back = set(tokenize(route.group(1))), set(tokenize(route.group(2)))
        if there & start or back & end:
            return None  # the way asked
        if there & end and back & start:
            told = route.group()
            return told, asked.group()
    return None


_PRONOUN = re.compile(r"\b(he|she|him|his|her|hers|it|its|they|them|their|theirs)\b",
                      re.IGNORECASE)
_PERSONAL = frozenset("he she him his her hers".split())


def _unresolved(evidence: Evidence, top: Candidate) -> str:
    """The hedge of a question asked by pronoun alone, outside a conversation ("What did he
    say next?"): the documents are searched for it, but nothing says who "he" is."""
    info = evidence.question
    pronoun = _PRONOUN.search(info.text)
    if not info.refers_back or info.has_subject or top.features.get("follow_up") \
            or pronoun is None:
        return ""
    word = pronoun.group(1)
    if word.lower() in _PERSONAL:
        return f"Not sure who “{word}” is. Closest: "
    return f"Not sure what “{word}” refers to. Closest: "


def _other_kind(evidence: Evidence, top: Candidate) -> str:
    """The hedge of a sentence about another kind of what was asked ("When does the
    Marketing team move?": "… will move the Sales team on 14 May"), when no document uses
    the kind asked for (`Candidate.other_kind`): a paraphrase ("the perfume line" of "the
    fragrance line") reads the same, so the quote is given, as the closest."""
    if not top.other_kind:
        return ""
    subject = "The document never mentions" if evidence.documents <= 1 else \
        "The documents never mention"
    return f"{subject} {_list(top.other_kind)}. Closest: "


# A question for a cause or a purpose ("Why …?", "For what reason …?", "How come …?") ...
_ASKS_WHY = re.compile(r"^\s*(?:(?:and|but|so)\s+)?(?:why|for\s+what\s+reasons?|how\s+come)\b",
                       re.IGNORECASE)
# ... and the closed class of words that give one: conjunctions and prepositions of cause and
# purpose ("because", "as", "so that", "to" of "to save money", "due to", "for lack of",
# "after", "from", "by", "through", "given"), and the nouns and verbs that name one.
_GIVES_REASON = re.compile(
    r"\b(?:because|since|as|so|to|for|due|owing|thanks|after|following|from|by|through|"
    r"given|why|therefore|thus|hence|consequently|reasons?|causes?|caused|result(?:ed|s)?|"
    r"purpose|aims?|aimed|order)\b", re.IGNORECASE)


def _no_reason(evidence: Evidence, top: Candidate) -> str:
    """The hedge of a why-question whose best sentence holds no word that gives a cause or
    a purpose (`_GIVES_REASON`): "A public consultation on the route closes on 31 March
    2026." says every word of "Why does the consultation close?" but when, not why."""
    if not _ASKS_WHY.match(evidence.question.text) or _GIVES_REASON.search(top.sentence.text):
        return ""
    return _hedge(evidence)


# How an answer opens that the documents did not give (`_abstain`, `_hedge`, `_other_kind`)
_FOUND_NOTHING = re.compile(r"(?:The documents? (?:doesn't|don't) say\b|Not sure the documents? "
                            r"answers? this\b|The documents? never mentions?\b)")


def found_nothing(answer: str) -> bool:
    """Does an earlier answer's text say the documents do not answer its question (withheld,
    or only the closest sentences, hedged)? What it quotes is then not what the conversation
    is about: the thing asked of is not in the documents."""
    return _FOUND_NOTHING.match(answer.lstrip()) is not None


def _hedge(evidence: Evidence) -> str:
    """What a tentative answer opens with: the quotes are the closest the documents come."""
    if evidence.documents <= 1:
        return "Not sure the document answers this. Closest: "
    return "Not sure the documents answer this. Closest: "


_KIND = {"EMAIL": "email address", "URL": "web address", "PHONE": "phone number",
         "DATE": "date", "TIME": "time", "CARDINAL": "number", "QUANTITY": "quantity",
         "MONEY": "amount of money", "PERCENT": "percentage", "PERSON": "name",
         "GPE": "place", "LOC": "place", "FAC": "place", "ORG": "name"}


def _kind(wants: tuple[str, ...]) -> str:
    """What the question asks for, in words: "date", "date or time"; "figure" when it could
    be many kinds of measure ("how long": a date, a time, a length or a number); "" when
    none has a plain name (a nationality, an event)."""
    kinds = list(dict.fromkeys(_KIND[label] for label in wants if label in _KIND))
    return " or ".join(kinds) if len(kinds) <= 2 else "figure"


MAX_NAMED_CHARS = 40  # a word or phrase named in an abstention is cut to this ("xxxx…")


def _phrase(text: str) -> str:
    text = re.sub(r"^(?:the|a|an)\s+", "", text.strip(), flags=re.IGNORECASE)
    return text if len(text) <= MAX_NAMED_CHARS else text[:MAX_NAMED_CHARS - 1] + "…"


def _abstain(evidence: Evidence, closest: Candidate | None, confidence: float,
             opposite: tuple[str, str] | None = None) -> Answer:
    """"The document doesn't say", and why: what it never mentions, what the closest
    passage lacks, or the opposite event it tells of (`opposite`: its word and the
    question's); the closest passage is cited so the reader can check."""
    subject = "The document doesn't say." if evidence.documents <= 1 else \
        "The documents don't say."
    pronoun = "It" if evidence.documents <= 1 else "They"
    if closest is None:
        return Answer(evidence.question.text, f"{subject} I found nothing related to the "
                      "question.", True, confidence, (), evidence.hits)
    why = ""
    # What no document mentions; else what the passage lacks of the date or figure given
    # (the abstention's own cause, before words the documents never use).
    given = tuple(t.capitalize() if t.isalpha() else t for t in closest.numbers_missing)
    never = closest.never or (() if given else evidence.unknown_words or _role_unknown(evidence))
    if opposite is not None:
        why = f" The closest passage says “{opposite[0]}”, not “{opposite[1]}”"
    elif never:
        why = f" {pronoun} never mention{'s' if pronoun == 'It' else ''} {_list(never)}"
    elif closest.missing or given:
        why = " The closest passage does not mention " + _list(closest.missing or given)
    elif (kind := _kind(evidence.question.wants)) and not closest.features["type_found"]:
        why = f" The closest passage gives no {kind} that answers it"
    else:
        why = " The closest passage does not answer it"
    named = [m.text for m in closest.mentions if m.label in NAMED and not m.text.islower()][:2]
    about = f"; the closest passage mentions {_list(tuple(named))}" if named and never else ""
    text = f"{subject}{why}{about} [1]."
    chunk, sentence = closest.chunk, closest.sentence
    citation = Citation(1, chunk.doc_id, chunk.id, Span(chunk.start, chunk.end, chunk.text),
                        Span(sentence.start, sentence.end, sentence.text))
    return Answer(evidence.question.text, text, True, confidence, (citation,), evidence.hits)


def _list(items: tuple[str, ...]) -> str:
    shown = list(dict.fromkeys(f"“{_phrase(i)}”" for i in items))[:3]  # "the X" is "X"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
