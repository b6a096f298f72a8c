"""Evidence step: retrieved passages → the sentences that could answer, each checked.

In: the index, the analysed question, the hits and sentence scores of retrieval. Out: an
`Evidence` record: candidate sentences, best first, each with measured features of how well
it covers the question (the inputs of the fitted answer model) and what it lacks:

* coverage: IDF-weighted share of the question's words found in the sentence, and in its
  passage (a word the documents lack counts by its closest stand-in, at its similarity);
* entities: the question's names, numbers and dates, each matched in the passage by its
  normalised words; one that no document mentions at all is named in the abstention;
* type: whether a span of the expected answer type (a date for "when") is in the sentence,
  outside the question's own words;
* negation: the question is negated and the sentence is not, or the reverse.

Each candidate's score is its retrieval score plus a bonus for holding the expected type (so
"when" prefers the sentence with a date in it) and one for saying the question's words
beyond its names, which the passage around the sentence often supplies. The candidates are
then ordered by the sentence ranker (`qa.ranking`), which weighs these signals together.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher

import numpy as np

from qa.chunking import is_heading, table_header
from qa.expansion import TYPO_SIMILARITY
from qa.lexical import stem, tokenize
from qa.nlp import CONTACT, CONTACT_WORDS, NAME, PLACE, PROHIBITS, TIME_UNITS, QuestionInfo
from qa.ranking import SIGNALS, Forest, default_ranker, ranking_matrix
from qa.retrieval import Scored, unit_max
from qa.store import Index
from qa.types import Chunk, Hit, Mention, Sentence

CANDIDATE_PASSAGES = 3  # candidate sentences come from this many top passages
CANDIDATES = 6
TYPE_BONUS = 0.08  # re-ranking bonus for a sentence holding the expected answer type
STAND_IN = 0.5  # a word this close to a question word stands in for it
# Re-ranking bonus for a sentence saying the question's words beyond its names, by their
# IDF-weighted share (swept 0.05-0.5 on the tuning sets; 0.2 best, 0.5 loses answers).
PREDICATE_BONUS = 0.2
ENTITY_BONUS = 0.0  # measured: names are often paraphrased ("US" / "American"); no gain
NAMED = frozenset("PERSON NORP FAC ORG GPE LOC PRODUCT EVENT WORK_OF_ART LAW LANGUAGE".split())
_MONTH = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b",
                    re.IGNORECASE)
_MONTHS = re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|"
                     r"October|November|December)\b")  # a month named in full, capitalised
_SPAN = re.compile(r"\d\s*[-–—/]\s*\d")  # "2013-14", "1837–47", "2/21/2016"
_NEGATION = re.compile(r"\b(?:not|cannot|never|no|none|nor|neither|without|"
                       rf"{'|'.join(sorted(PROHIBITS))})\b|n[’']t\b", re.IGNORECASE)

FEATURES = (
    "cosine", "passage_cosine", "coverage", "context_coverage", "unknown", "missing_rare",
    "entities_missing", "entity_never", "wants_type", "type_found", "negation_mismatch",
    "margin", "question_terms", "follow_up",
)


_HEADING = SIGNALS.index("heading")
ASKS = re.compile(r"\?[\s\"”’')\]]*$")  # a sentence that asks ("… the old bridge?")


@dataclass(frozen=True)
class Candidate:
    """One sentence that could answer, with its passage, mentions and features."""

    sentence: Sentence
    chunk: Chunk
    score: float  # retrieval score of the sentence plus the re-ranking bonuses
    cosine: float
    mentions: tuple[Mention, ...]
    features: dict[str, float]
    missing: tuple[str, ...] = ()  # question phrases the passage does not mention
    never: tuple[str, ...] = ()  # question phrases no document mentions
    numbers_missing: tuple[str, ...] = ()  # numbers the question gives, not in the passage
    # question phrases of a kind no document names, of which the sentence names another
    # ("the Marketing team" asked, "the Sales team" said: `_kinds_asked`)
    other_kind: tuple[str, ...] = ()
    # the question's names that neither the sentence, its passage before it, nor its
    # document's title says ("Halden's" of "the chief executive of Halden's", beside "The
    # chief executive, Paul Lindqvist, …" in a report of Kestrel Foods)
    unnamed: tuple[str, ...] = ()
    signals: tuple[float, ...] = ()  # what the sentence ranker sees (`ranking.SIGNALS`)
    ranking: tuple[float, ...] = ()  # the ranker's input row, among its question's candidates

    @property
    def heading(self) -> bool:
        """A title or heading (`chunking.is_heading`), as measured among its signals."""
        return bool(self.signals[_HEADING])

    @property
    def aside(self) -> bool:
        """Quoted only after every sentence of prose: a heading, or a sentence that asks
        (an interviewer's or an email's question, under a speaker's name or a greeting, no
        heading): it names what is asked about, with the question's words, and answers
        nothing of its own."""
        return self.heading or ASKS.search(self.sentence.text) is not None


@dataclass(frozen=True)
class Evidence:
    """Everything the answer step decides from; no further search is needed."""

    question: QuestionInfo
    hits: tuple[Hit, ...]
    candidates: tuple[Candidate, ...]  # best first
    documents: int  # documents in the index (for wording: "the document" or "the documents")
    question_terms: frozenset[str] = field(default_factory=frozenset)
    # The question's words that no document uses, nor any close stand-in of them ("tallest",
    # "mountain" asked of a news article): an abstention names them.
    unknown_words: tuple[str, ...] = ()
    # The question's words that no document uses, close stand-ins or not ("deputy", close to
    # "secretary"): a role is said in its own words.
    unused_words: tuple[str, ...] = ()


def _terms_of(text: str) -> set[str]:
    return set(tokenize(text))


def _unnamed(names: Sequence[Mention], said: set[str], passage: set[str],
             before: Callable[[], set[str]]) -> tuple[str, ...]:
    """The `names` that neither the sentence nor its title says (`said`), nor the passage
    before the sentence (`before`, tokenized only when a name is in the passage at all: most
    candidates need none of it)."""
    rest = [m for m in names if not _terms_of(m.text) <= said]
    if any(_terms_of(m.text) <= passage | said for m in rest):
        said = said | before()
    return tuple(m.text for m in rest if not _terms_of(m.text) <= said)


def in_question(span_text: str, question_terms: set[str] | frozenset[str]) -> bool:
    """Does a span only repeat the question's words ("Iraq" when asked about Iraq)?"""
    terms = _terms_of(span_text)
    return bool(terms) and terms <= question_terms


def gather_evidence(
    index: Index, info: QuestionInfo, hits: list[Hit], scored: Scored,
    expansions: dict[str, list[tuple[str, float]]], follow_up: bool = False,
    first: tuple[Sentence, float] | None = None,
) -> Evidence:
    """Candidate sentences of the top passages, checked against the question, best first.

    `first`, when given (a follow-up's sentence chosen by the new question), is kept first.
    """
    q_terms = _terms_of(info.text)
    # "many" of "how many", "long" of "how long": the question's own form, not what it is
    # about, and light verbs ("take" of "How long does shipping take?"). A sentence that uses
    # the word covers it ("3 km long"); one that does not is not the less an answer ("2,500
    # troops" answers "How many troops …?", "ships within three days" how long it takes).
    asking = set(tokenize(" ".join(_HOW_WORD.findall(info.text)))) | (_LIGHT_VERBS & q_terms)
    # So is the kind a "which/what" names: "in Rust" answers "What language is it written in?"
    asking |= set(tokenize(info.kind)) & q_terms
    # And a superlative of size or amount, when a table found says it by its figures ("the
    # largest capacity": the row of 4,800 beside 3,100 and 2,250); not otherwise ("the maximum
    # temperature" of a manual that gives none is another thing than a temperature).
    extreme = _extreme_row(info, hits)
    if extreme is not None:
        asking |= set(tokenize(" ".join(_MOST.findall(info.text) + _LEAST.findall(info.text))))
    if _ASKS_MEANING.match(info.text):  # "mean" of "What does attenuation mean?": its form
        asking |= set(tokenize("mean")) & q_terms
    # Looked up once (each is a column of the index), in a fixed order: sums over a set's
    # order (which differs per process) differ in their last bit, and a coverage of
    # 0.9999999999999999 beside 1.0 reordered tied candidates from one run to the next.
    idf = {t: index.idf(t) for t in sorted(q_terms)}
    weights = {t: max(value, 0.1) for t, value in idf.items()}
    n = max(int(index.manifest.get("counts", {}).get("sentences", 1)), 1)
    max_idf = math.log(1.0 + (n - 0.5) / 1.5)  # the idf of a word used once
    known: dict[str, bool] = {}

    def knows(term: str) -> bool:
        if term not in known:
            known[term] = index.knows(term)
        return known[term]

    def used(term: str) -> bool:  # the term, a form of it stemming does not join, or the
        # symbol of the unit it names ("Fahrenheit": "90 °F")
        return knows(term) or _relative_known(index.terms, knows, term) \
            or any(knows(symbol) for symbol in _SYMBOLS.get(term, ())) \
            or max((sim for _, sim in expansions.get(term, [])), default=0.0) \
            >= TYPO_SIMILARITY  # a typo of a document word ("Halvorson": "Halvorsen")

    # The question's entities, and whether any document mentions each at all.
    entity_terms = [(m.text, _terms_of(m.text)) for m in info.entities]
    entity_terms = [(text, terms) for text, terms in entity_terms if terms]
    # A person's full name is matched by the surname alone ("Thomas Bouch": "Bouch's
    # health"), which stands for the whole name in coverage too.
    surnames: dict[str, set[str]] = {}
    for m in info.entities:
        words = tokenize(m.text)
        if m.label == "PERSON" and len(words) > 1:
            surnames[words[-1]] = set(words)
    # A name none of whose words any document uses, nor a form of them (typos and spelling
    # variants of a known name share some words with it, so they are not counted).
    # So is a number of at most four digits that no document uses ("ferry number 99" of a
    # library that has ferries 9 and 10; "What happened in 1887?"): the question is about
    # something else. Longer ones are often written otherwise ("100,000,000": "100 million").
    # An acronym the passages found spell out ("NYC": "New York City") is mentioned, and so is
    # a group the documents name by a close word ("Caucasian": "white", "Polish": "Poland").
    passages_found = [h.chunk.text for h in hits]

    def spelled_out(name: str) -> bool:
        titles = {index.documents[h.chunk.doc_id].title for h in hits} \
            if _ACRONYM.search(name) else set()
        return _spelled_out(name, [*passages_found, *titles])

    def as_name(word: str) -> bool:  # written as a name, not only as a common word
        return _written_as_name(index, word, passages_found)

    never = tuple(m.text for m in info.entities if m.label in NAMED
                  and (terms := _terms_of(m.text))
                  and not any(used(t) for t in terms)
                  and not (m.label == "NORP" and any(
                      max((sim for _, sim in expansions.get(t, [])), default=0.0) >= STAND_IN
                      for t in terms))
                  and not spelled_out(m.text)) + tuple(
        m.text for m in info.entities if m.label in NAMED and " " not in m.text.strip()
        and m.text[:1].isupper() and not as_name(m.text.strip())) + tuple(
        m.text for m in info.entities if m.label not in NAMED and not _DECADE.search(m.text)
        and (digits := [t for t in _terms_of(m.text) if t.isdigit() and len(t) <= 4])
        and not any(knows(t) for t in digits))
    # So is a place in a series that no document uses, as a word or in digits ("the fifth
    # floor" of an email on the third and fourth): it names one thing as a number does.
    never += tuple(m.text for m in info.entities if m.label == "ORDINAL"
                   and (forms := _ordinal_forms(m.text)) and not any(knows(f) for f in forms))
    # And a name each of whose words the documents use, but never together ("Radar
    # Princess" of a page on "Twilight Princess" and the magazine "Games Radar").
    never += tuple(m.text for m in info.names if not any(n in m.text for n in never)
                   and _written_apart(index, m.text, knows, passages_found))
    # And a name one of whose capitalised words no document uses, nor spells otherwise in a
    # passage found ("the Røst Reef" of a life of a scientist who surveyed the Sula Reef, "the
    # Royal Society of London" of one elected to that of Edinburgh): another of its kind.
    never += tuple(m.text for m in info.names
                   if not any(n in m.text or m.text in n for n in never)
                   and _foreign_word(m.text, used, passages_found))

    # And a name of code that the documents never write ("tidepool.plot", "max_gap" of an
    # API reference with no such function or parameter): the question is about another one.
    never += tuple(code for code in _code_names(info.text)
                   if not _code_written(index, code, used, passages_found))

    kinds = _kinds_asked(info, lambda t: t not in asking and not used(t))

    # The date the question gives ("in 2004", "on 12 April"): its year, and its day with a
    # month, which the passage quoted must hold. Not a decade or a span of years ("the
    # 1970s", "2013-14": the passage may say "1973" or "2013–2014"), nor an age or a length
    # of time ("age 7", "20 years"), often written in words. So must the figures of a sum of
    # money or a share it gives ("$929.3 million", "85%"), precise as a date is.
    given = sorted({t for m in info.entities if m.label == "DATE"
                    and not _DECADE.search(m.text) and not _SPAN.search(m.text)
                    for t in _terms_of(m.text) if t.isdigit() and (
                        len(t) == 4 or len(t) <= 2 and _MONTH.search(m.text))} | {
        t for m in info.entities if m.label in ("MONEY", "PERCENT")
        and not _SPAN.search(m.text) for t in _terms_of(m.text) if t.isdigit() and len(t) >= 2} | {
        t for m in info.entities if m.label == "DATE" and not _SPAN.search(m.text)
        for w in _MONTHS.findall(m.text) for t in _terms_of(w)})
    # And so must a number with a point in it, a version or a decimal ("3.0", "4.2.0"), as
    # written: its words ("3", "0") are in any other ("4.1.0").
    dotted = tuple(dict.fromkeys(_DOTTED.findall(info.text)))
    wants_place = bool(set(info.wants) & set(PLACE))
    wants_person = info.wants[:1] == ("PERSON",)
    wants_number = bool(set(info.wants) & _NUMBERS)
    contact = bool(set(info.wants) & set(CONTACT))
    # The question's words beyond its names ("chief executive" of "the chief executive of
    # the Greenfield Water Company"): the passage may hold the name, the sentence must say
    # the rest.
    named = set().union(*(terms for _, terms in entity_terms)) if entity_terms else set()
    predicate = [t for t in q_terms if t not in named] if named else []
    names = [m for m in info.entities if m.label in NAMED and _terms_of(m.text)]
    in_hits = {s.index for h in hits[:CANDIDATE_PASSAGES] for s in h.chunk.sentences}
    order = np.argsort(-scored.sentence_scores, kind="stable")
    picked: list[tuple[int, float, float]] = []
    for pos in order:
        sid = int(scored.sentence_ids[pos])
        if sid in in_hits:
            picked.append((sid, float(scored.sentence_scores[pos]),
                           float(scored.sentence_cosines[pos])))
        if len(picked) >= CANDIDATES:
            break
    if first is not None:
        picked = [(first[0].index, max((p[1] for p in picked), default=0.0) + 1.0, first[1])] + [
            p for p in picked if p[0] != first[0].index]

    chunk_cosine = {h.chunk.index: h.dense_score for h in hits}
    hit_of = {h.chunk.index: h for h in hits}
    margin = hits[0].score - hits[1].score if len(hits) > 1 else 1.0
    total = sum(weights.values()) or 1.0
    passage_terms: dict[int, set[str]] = {}  # candidates share passages: tokenized once each
    title_terms: dict[str, set[str]] = {}

    def check(sentence: Sentence, score: float, cosine: float,
              subject: str | None = None) -> Candidate:
        """The candidate `sentence`, its words read with those of the `subject` its opening
        pronoun stands for, when given."""
        chunk = index.chunks[index.chunk_of(sentence.index)]
        mentions = _relabel(index.mentions_of(sentence.index), sentence, wants_place,
                            wants_number, wants_person)
        details = contact_mentions(sentence, info.wants) if contact else ()
        mentions += details
        own = tokenize(sentence.text)  # the sentence's own words (tokenized once)
        s_terms = set(own) if subject is None else set(own) | _terms_of(subject)
        header = table_header(sentence, chunk)
        if header is not None:  # "| 8 | Sea-level change |" says "Week" and "Topic" by its
            s_terms |= _terms_of(header.text)  # header, "| Week | Topic | Reading |"
        if chunk.index not in passage_terms:
            passage_terms[chunk.index] = _with_names(_terms_of(chunk.text), surnames)
        s_terms = _with_names(s_terms, surnames)
        if details:  # "x@y.org" says "email address" without the words
            s_terms |= q_terms & CONTACT_TERMS
        p_terms = passage_terms[chunk.index] | s_terms
        covered = context = unknown = 0.0
        missing_rare = 0.0
        # A "how" word the sentence does not use weighs nothing; one it uses is covered. Used
        # as a word of its own: the "long" of "a long-term partnership" is no length.
        says = s_terms
        if asking & s_terms and "-" in sentence.text:
            free = set(tokenize(_COMPOUND.sub(" ", sentence.text)))
            says = (s_terms - asking) | (free & asking)
        asked = total - sum(weights[t] for t in asking & weights.keys() if t not in says)
        for term, weight in weights.items():
            if term in asking:
                covered += weight * (term in says)
                context += weight * (term in says)
                continue
            stand_ins = expansions.get(term, [])
            if term in s_terms:
                covered += weight
            else:
                covered += weight * max((sim for t, sim in stand_ins if t in s_terms),
                                        default=0.0)
            if term in p_terms:
                context += weight
            else:
                best = max((sim for t, sim in stand_ins if t in p_terms), default=0.0)
                context += weight * best
                if best < STAND_IN:
                    missing_rare = max(missing_rare, idf[term] / max_idf)
            if not knows(term):
                unknown += weight * (1.0 - max((sim for _, sim in stand_ins), default=0.0))
        # A name the document's title gives is in every passage: a CV names its person once,
        # at the top ("# Daniel Mwangi"), and a page on a place names it in its heading.
        if entity_terms and chunk.doc_id not in title_terms:
            title_terms[chunk.doc_id] = _terms_of(index.documents[chunk.doc_id].title)
        missing = tuple(text for text, terms in entity_terms
                        if not terms <= p_terms | title_terms.get(chunk.doc_id, set()))
        unnamed = _unnamed(names, s_terms | title_terms.get(chunk.doc_id, set()), p_terms,
                           lambda: _terms_of(chunk.text[:sentence.start - chunk.start]))
        numbers_missing = tuple(t for t in given if t not in p_terms
                                and t not in title_terms.get(chunk.doc_id, set()))
        if dotted:
            title = index.documents[chunk.doc_id].title
            numbers_missing += tuple(d for d in dotted if not _writes(chunk.text, d)
                                     and not _writes(title, d))
            version = _version_above(index, chunk, sentence)
            numbers_missing += tuple(d for d in dotted if d not in numbers_missing
                                     and version is not None and not _writes(version, d)
                                     and not _writes(sentence.text, d))
        # Another kind, named by the sentence or by its document's title, which names one
        # for every sentence ("Summer Timetable and Fares")
        title = index.documents[chunk.doc_id].title if kinds else ""
        other_kind = tuple(
            phrase for phrase, modifier, head in kinds
            if (_modifiers(sentence.text, head) | _modifiers(title, head)) - {modifier}
            and not _misspelt(phrase.split()[0], f"{sentence.text} {title}"))
        found = answer_spans(sentence, mentions, info, q_terms, counted=False)
        # The ranker reads the spans a lead could be: a number counting what "how many" asks
        # about ("2,500 American troops", not "six drone attacks"). The check does not:
        # "Roughly how many service members …" is still answered by "2,500 troops".
        leads = [m for m in found if counts_asked(m, mentions, info.counted, sentence)] \
            if info.counted else found
        negation = bool(_NEGATION.search(sentence.text))
        features = {
            "cosine": cosine,
            "passage_cosine": chunk_cosine.get(chunk.index, cosine),
            "coverage": round(covered / (asked or 1.0), DIGITS),
            "context_coverage": round(context / (asked or 1.0), DIGITS),
            "unknown": round(unknown / (asked or 1.0), DIGITS),
            "missing_rare": missing_rare,
            "entities_missing": len(missing) / len(entity_terms) if entity_terms else 0.0,
            "entity_never": 1.0 if never else 0.0,
            "wants_type": 1.0 if info.wants_type else 0.0,
            "type_found": 1.0 if (found or not info.wants_type) else 0.0,
            "negation_mismatch": 1.0 if negation != info.negated else 0.0,
            "margin": margin,
            "question_terms": min(len(q_terms), 10) / 10,
            "follow_up": 1.0 if follow_up else 0.0,
        }
        bonus = (TYPE_BONUS * bool(found) if info.wants_type else 0.0) + (
            ENTITY_BONUS * (not missing) if entity_terms else 0.0)
        if predicate and not missing:
            got = sum(weights[t] for t in predicate if t in s_terms)
            bonus += PREDICATE_BONUS * got / sum(weights[t] for t in predicate)
        hit = hit_of.get(chunk.index)
        signals = (score, cosine, score - cosine,
                   hit.score if hit else 0.0, 1.0 / hit.rank if hit else 0.0,
                   hit.dense_score if hit else 0.0,
                   features["coverage"], features["context_coverage"],
                   float(bool(leads)) * features["wants_type"],
                   features["negation_mismatch"], features["entities_missing"],
                   float(is_heading(sentence, chunk)),
                   float(bool(chunk.sentences) and chunk.sentences[0].index == sentence.index),
                   min(len(own), 60) / 60,
                   len(q_terms.intersection(own)) / max(len(q_terms), 1), bonus)
        return Candidate(sentence, chunk, score + bonus, cosine, mentions, features, missing,
                         never, numbers_missing, other_kind, unnamed, signals)

    candidates = [check(index.sentences[sid], score, cosine) for sid, score, cosine in picked]
    if first is None:  # best first; a heading only after every sentence of prose
        candidates.sort(key=lambda c: (c.aside, -c.score))
        candidates = rank(candidates)
        if candidates and info.wants_type:
            candidates = _unconditional(candidates, info)
        if contact:  # found by its form, so a sentence holding one is the one to quote
            candidates.sort(key=lambda c: not c.features["type_found"])
        if dotted:  # the passage that names the version asked ("2.1.0"), before another
            candidates.sort(key=lambda c: any(d in c.numbers_missing for d in dotted))
        if candidates and info.wants_type:
            candidates = _continued(candidates, check)
        elif candidates:
            candidates = _goes_on(candidates, check, q_terms)
        if candidates:
            candidates = _completed(candidates, check, q_terms - asking - named,
                                    info.wants_type)
        if candidates and info.wants_type:
            candidates = _typed_in_section(candidates, check, q_terms)
        if candidates and info.wants[:1] == ("DATE",):
            candidates = _dated_by_heading(candidates, check)
        if candidates and info.wants_type:
            candidates = _heading_answers(candidates)
        defined = _definition(index, info.text, {h.chunk.doc_id for h in hits}, check,
                              lambda s: _retrieved(scored, s.index))
        if defined is not None:  # it says in so many words who or what the term names
            top = candidates[0].score if candidates else 0.0
            candidates = [replace(defined, score=top + CONTINUED_MARGIN), *(
                c for c in candidates if c.sentence.index != defined.sentence.index)]
        holder = _role_holder(index, info, hits, lambda s, of: check(
            s, *_retrieved(scored, s.index), of), candidates[0] if candidates else None)
        if holder is not None:  # it names who holds the role by its title
            top = candidates[0].score if candidates else 0.0
            candidates = [replace(holder, score=top + CONTINUED_MARGIN), *(
                c for c in candidates if c.sentence.index != holder.sentence.index)]
        row = _attribute_row(index, info, hits, lambda s: check(
            s, *_retrieved(scored, s.index))) or _keyed_row(info, hits, lambda s: check(
                s, *_retrieved(scored, s.index))) or (check(
                    extreme, *_retrieved(scored, extreme.index)) if extreme is not None else None)
        if row is not None:  # the table names what was asked in so many words
            top = candidates[0].score if candidates else 0.0
            candidates = [replace(row, score=top + CONTINUED_MARGIN), *(
                c for c in candidates if c.sentence.index != row.sentence.index)]
        subject = yes_no_subject(info)
        if subject and candidates and subject not in tokenize(candidates[0].sentence.text) \
                and not OPENS_WITH_PRONOUN.match(candidates[0].sentence.text):  # ("It …")
            about = next((c for c in candidates[1:]
                          if subject in tokenize(c.sentence.text)), None)
            if about is not None:  # "Do dogs travel free?": not "Children … travel free."
                top = candidates[0].score
                candidates = [replace(about, score=top + CONTINUED_MARGIN),
                              *(c for c in candidates if c is not about)]
    never_used = {t for t in q_terms - asking if not used(t)
                  and max((sim for _, sim in expansions.get(t, [])), default=0.0) < STAND_IN}
    unused = {t for t in q_terms - asking if not used(t)}
    return Evidence(info, tuple(hits), tuple(candidates), len(index.documents),
                    frozenset(q_terms), _surface(info.text, never_used),
                    _surface(info.text, unused))


# Unit symbols and the stems of their names, so that "in degrees Celsius" asks for "°C" and
# "how many kilometres" for "6 km" (closed class: units of measure).
UNIT_NAMES = {"c": ("celsius", "centigrad"), "f": ("fahrenheit",), "km": ("kilometr", "kilomet"),
               "km2": ("kilometr", "kilomet"), "m": ("metr", "meter"), "m2": ("metr", "meter"),
               "mi": ("mile",), "ft": ("feet", "foot"), "ha": ("hectar",), "kg": ("kilogram",),
               "lb": ("pound",), "lbs": ("pound",), "oz": ("ounc",), "l": ("litr", "liter"),
               "gal": ("gallon",), "cm": ("centimetr", "centimet"), "mm": ("millimetr",),
               "g": ("gram",), "mph": ("mile",), "kph": ("kilometr",)}


_SYMBOLS = {name: [symbol for symbol, names in UNIT_NAMES.items() if name in names]
            for names in UNIT_NAMES.values() for name in names}


DIGITS = 9  # a share of the question's weight: equal shares compare equal ("covers it all")


_WORD = re.compile(r"\w[\w’'-]*")
OWNS = re.compile(r"[’']s?$")  # "that institution's spokesman": whose, not which kind


def _kinds_asked(info: QuestionInfo, unused: Callable[[str], bool]) -> list[tuple[str, str, str]]:
    """The question's noun phrases whose word right before the noun names a kind of it that
    no document uses (`unused`): "the Marketing team", "study leave", "a monthly pass". Each
    as (the phrase from that word, the word's term, the noun's term). Not a name ("the party
    whre Chopin" of a page titled "Frédéric Chopin": a first name is no kind)."""
    out = []
    for phrase in info.nouns:
        words = list(_WORD.finditer(phrase.text))
        if len(words) < 2 or phrase.text[words[-2].end():words[-1].start()].strip():
            continue
        modifier, head = tokenize(words[-2].group()), tokenize(words[-1].group())
        if len(modifier) == 1 and len(head) == 1 and modifier[0].isalpha() \
                and words[-1].group().islower() \
                and not OWNS.search(words[-2].group()) and unused(modifier[0]):
            out.append((phrase.text[words[-2].start():], modifier[0], head[0]))
    return out


SPELLING = 0.8  # a word this alike another (difflib's ratio) is a spelling of it


def _misspelt(word: str, text: str) -> bool:
    """Is `word` a spelling of a word of `text` ("colorful" of "colourful", "Nicky" of
    "Nicki", "hteir" of "their"), a typo or a variant, not another kind of a thing?"""
    matcher = SequenceMatcher(None, word.lower())
    for other in {w.group().lower() for w in _WORD.finditer(text)}:
        matcher.set_seq2(other)  # the cheap upper bounds first: most words fail them
        if matcher.real_quick_ratio() >= SPELLING and matcher.quick_ratio() >= SPELLING \
                and matcher.ratio() >= SPELLING:
            return True
    return False


def _modifiers(text: str, head: str) -> set[str]:
    """The terms of the words right before the noun `head` (a term) in `text` ("Sales" of
    "the Sales team"): the kinds of it the text names."""
    if head not in tokenize(text):  # (most sentences: no word of theirs to look at)
        return set()
    words = list(_WORD.finditer(text))
    out = set()
    for before, word in zip(words, words[1:], strict=False):
        if tokenize(word.group()) == [head] and not text[before.end():word.start()].strip():
            term = tokenize(before.group())
            if len(term) == 1 and term[0].isalpha():
                out.add(term[0])
    return out


# Verbs that say little of their own ("How long does shipping take?": "ships within three
# days"): a sentence that uses one covers it, one that does not misses nothing.
_LIGHT_VERBS = frozenset(tokenize("take takes took taken make makes made get gets got go goes "
                                  "went gone come comes came need needs needed use uses used"))
_HOW_WORD = re.compile(r"\bhow\s+(\w+)", re.IGNORECASE)
# A compound of words ("long-term", "much-needed"): its "long" is no length. One with a number
# in it says the measure ("an eighteen-year-old", "a 30-metre-tall mast").
_COMPOUND = re.compile(r"(?<![\w-])(?![\w-]*(?:\d|\b(?:one|two|three|four|five|six|seven|eight|"
                       r"nine|ten|eleven|twelve|\w+teen|twenty|thirty|forty|fifty|sixty|seventy|"
                       r"eighty|ninety|hundred|thousand)\b))\w+(?:-\w+)+", re.IGNORECASE)


def rank(candidates: list[Candidate], ranker: Forest | None = None) -> list[Candidate]:
    """The candidates ordered by the sentence ranker's probability that each holds the
    answer (a heading, or a sentence that asks, still after every sentence of prose:
    `Candidate.aside`), each with its ranker input."""
    if not candidates:
        return candidates
    matrix = ranking_matrix([c.signals for c in candidates])
    p = (ranker or default_ranker()).probability(matrix)
    ranked = [replace(c, ranking=tuple(row)) for c, row in zip(candidates, matrix.tolist(),
                                                                 strict=True)]
    order = sorted(range(len(ranked)), key=lambda i: (ranked[i].aside, -p[i]))
    return [ranked[i] for i in order]


# A sentence that goes on about what its document was just saying (shared with answering:
# out of its document, beside another one's sentence, it reads as about that one).
OPENS_WITH_PRONOUN = re.compile(
    r"^[“\"']?(it|its|he|his|she|her|they|their|this|these)\b", re.IGNORECASE)
# ... or by a pronoun just past its opening phrase ("Established in 1825 in Brooklyn, it is
# …", "In 1987, when it was founded, …").
_REFERS_BACK = re.compile(
    r"^[^.;:!?]{0,120}?(?:,\s+|\b(?:when|where|after|since|before|while|because|although|"
    r"though|once|until|as)\s+)(it|its|he|his|she|her|they|their)\b", re.IGNORECASE)


# A sentence that opens with a condition says what happens in a case ("If it rains, sports day
# moves to Tuesday 23 June."), not what happens; and a question that names a case asks of it
# (closed class: English subordinators of condition).
_CONDITION = r"(?:if|unless|should|in\s+case|in\s+the\s+event|otherwise|failing\s+that)\b"
_OPENS_WITH_CONDITION = re.compile(rf"^\W*{_CONDITION}", re.IGNORECASE)
_NAMES_A_CASE = re.compile(rf"\b{_CONDITION}", re.IGNORECASE)
UNCONDITIONAL_PLACES = 2  # how far below the best one a sentence saying it plainly is looked for


def _unconditional(candidates: list[Candidate], info: QuestionInfo) -> list[Candidate]:
    """When the best sentence opens with a condition ("If it rains, sports day moves to
    Tuesday 23 June.") and one just below it says as much of the question and holds a span
    of the type asked for without one ("Sports day will take place on Friday 19 June."), that
    one comes first: "When is sports day?" asks what happens, not what happens if it rains.
    Not when the question names a case itself ("When is sports day if it rains?")."""
    top = candidates[0]
    if not top.features["type_found"] or not _OPENS_WITH_CONDITION.match(top.sentence.text) \
            or _NAMES_A_CASE.search(info.text):
        return candidates
    plain = next((c for c in candidates[1:1 + UNCONDITIONAL_PLACES]
                  if c.features["type_found"] and not c.aside
                  and c.features["coverage"] >= top.features["coverage"]
                  and not _OPENS_WITH_CONDITION.match(c.sentence.text)), None)
    if plain is None:
        return candidates
    return [replace(plain, score=top.score + CONTINUED_MARGIN),
            *(c for c in candidates if c is not plain)]


def _continued(candidates: list[Candidate],
               check: Callable[[Sentence, float, float, str | None], Candidate]
               ) -> list[Candidate]:
    """When the best sentence names what was asked about but holds no answer of the wanted
    type, and the next sentence goes on about it by pronoun and holds one ("The library of
    Ashford was opened in 1901. It was designed by the architect Mara Quint."; "…
    Established in 1825 on the site of a battery, it is …"), the next
    sentence, read with the best one's words, comes first and the best one right after it,
    so both are quoted in order."""
    top = candidates[0]
    if top.features["type_found"]:
        return candidates
    after = next((s for s in top.chunk.sentences if s.index == top.sentence.index + 1), None)
    opening = (OPENS_WITH_PRONOUN.match(after.text) or _REFERS_BACK.match(after.text)) \
        if after is not None else None
    if after is None or opening is None or opening.group(1).lower() in ("this", "these"):
        return candidates  # "This …" is about the whole sentence before, not its subject
    subject = _subject(top.sentence, top.mentions, opening.group(1).lower())
    if subject is None:
        return candidates
    scored = next((c for c in candidates if c.sentence.index == after.index), None)
    cosine = max(top.cosine, scored.cosine if scored is not None else 0.0)
    continued = check(after, top.score, cosine, subject)
    if not continued.features["type_found"]:
        return candidates
    continued = replace(continued, score=top.score + CONTINUED_MARGIN)
    return [continued, top, *(c for c in candidates[1:] if c.sentence.index != after.index)]


CONTINUED_MARGIN = 0.01  # just above the sentence it continues


def _completed(candidates: list[Candidate],
               check: Callable[[Sentence, float, float, str | None], Candidate],
               q_terms: set[str], typed: bool) -> list[Candidate]:
    """When the sentence right after the best one in its passage says every word of the
    question the best one lacks ("What is the default min_separation for highs?": "Two highs
    closer together than `min_separation` hours are merged into the higher one." and then
    "The default of 6 hours suits semidiurnal tides."), it comes second, to be quoted beside
    the best one: the two say the question together, though the second alone says too
    little of it for retrieval to find it. Not the question's names (`q_terms` holds none:
    the passage supplies them), nor when the question asks for a type (`typed`) that the best
    one holds ("The timer can be set up to 24 hours ahead." needs nothing beside it)."""
    top = candidates[0]
    if typed and top.features["type_found"]:
        return candidates
    lacks = q_terms - set(tokenize(top.sentence.text))
    after = next((s for s in top.chunk.sentences if s.index == top.sentence.index + 1), None)
    if not lacks or after is None or not lacks <= set(tokenize(after.text)) \
            or after.text.rstrip().endswith("?") or is_heading(after, top.chunk):
        return candidates
    if len(candidates) > 1 and candidates[1].sentence.index == after.index:
        return candidates
    scored = next((c for c in candidates if c.sentence.index == after.index), None)
    second = replace(scored if scored is not None else check(after, 0.0, 0.0, None),
                     score=top.score)
    return [top, second, *(c for c in candidates[1:] if c.sentence.index != after.index)]


def _goes_on(candidates: list[Candidate],
             check: Callable[[Sentence, float, float, str | None], Candidate],
             q_terms: set[str]) -> list[Candidate]:
    """Of a question that asks for no type, when the next sentence goes on about the best
    one's subject by pronoun and, read with the subject, says every word of the question the
    best one says and more ("What is Felorin used for?": "Felorin contains the active
    substance ibuprenol. It is used to relieve mild to moderate pain …"), the next sentence,
    read with the best one's words, comes first and the best one right after it, so both
    are quoted in order (as `_continued` does for a sentence holding the type asked for)."""
    top = candidates[0]
    after = next((s for s in top.chunk.sentences if s.index == top.sentence.index + 1), None)
    opening = OPENS_WITH_PRONOUN.match(after.text) if after is not None else None
    if after is None or opening is None or opening.group(1).lower() in ("this", "these"):
        return candidates
    subject = _subject(top.sentence, top.mentions, opening.group(1).lower())
    if subject is None:
        return candidates
    said = q_terms & set(tokenize(top.sentence.text))
    if not said < q_terms & (set(tokenize(after.text)) | _terms_of(subject)):
        return candidates
    scored = next((c for c in candidates if c.sentence.index == after.index), None)
    cosine = max(top.cosine, scored.cosine if scored is not None else 0.0)
    continued = replace(check(after, top.score, cosine, subject),
                        score=top.score + CONTINUED_MARGIN)
    return [continued, top, *(c for c in candidates[1:] if c.sentence.index != after.index)]


def _dated_by_heading(candidates: list[Candidate],
                      check: Callable[[Sentence, float, float, str | None], Candidate]
                      ) -> list[Candidate]:
    """When the best sentence holds no date and the nearest heading above it in its passage
    that holds one ("## [2.0.0] - 2025-06-20" over "### Added" and "- Import of GPX
    tracks.") dates it, as changelogs, minutes and diaries date what they list, the heading,
    read with the sentence's words, comes first and the sentence right after it, so both
    are quoted in order. Not when another sentence says the question's words as fully and
    holds one ("Halvorsen was born on 14 March 1921" beside the title "# Ingrid Halvorsen
    (1921–1998)" over "Ingrid Halvorsen was a marine biologist"): it says so in prose."""
    top = candidates[0]
    if top.features["type_found"] or top.heading or any(
            c.features["type_found"] and not c.heading
            and c.features["coverage"] >= top.features["coverage"] for c in candidates[1:]):
        return candidates
    above = [s for s in top.chunk.sentences if s.index < top.sentence.index]
    for sentence in reversed(above):
        if not is_heading(sentence, top.chunk):
            continue
        heading = check(sentence, top.score, top.cosine, top.sentence.text)
        if heading.features["type_found"]:
            heading = replace(heading, score=top.score + CONTINUED_MARGIN)
            return [heading, top, *(c for c in candidates[1:]
                                    if c.sentence.index != sentence.index)]
    return candidates


def _heading_answers(candidates: list[Candidate]) -> list[Candidate]:
    """When the best sentence of prose holds no span of the type asked for and a heading
    does, and says more of the question's words ("When was version 3.2.0 released?" of a
    changelog: "## [3.2.0] - 2026-10-14", below "All notable changes to Quillmark are
    documented in this file."), the heading comes first: a changelog, a diary or minutes
    give the date of what they list in its heading, and only there."""
    top = candidates[0]
    if top.heading or top.features["type_found"]:
        return candidates
    heading = next((c for c in candidates if c.heading and c.features["type_found"]
                    and c.features["coverage"] > top.features["coverage"]), None)
    if heading is None:
        return candidates
    return [replace(heading, score=top.score + CONTINUED_MARGIN),
            *(c for c in candidates if c is not heading)]


def _typed_in_section(candidates: list[Candidate],
                      check: Callable[[Sentence, float, float, str | None], Candidate],
                      asked: set[str]) -> list[Candidate]:
    """When the best sentence holds no answer of the wanted type and the heading of its
    section says only words of the question (`asked`), the one sentence of that section that
    holds one, read with the heading's words, comes first and the best one right after it
    ("How much is the excess?" of a policy: "3.1 You must pay the first £50 of each claim."
    under "3. Excess", beside "There is no excess for lost keys."): a section's heading
    says what each of its sentences is about."""
    top = candidates[0]
    if top.features["type_found"] or top.heading:
        return candidates
    sentences = top.chunk.sentences
    at = next((i for i, s in enumerate(sentences) if s.index == top.sentence.index), None)
    if at is None:
        return candidates
    head = next((i for i in range(at - 1, -1, -1) if is_heading(sentences[i], top.chunk)), None)
    if head is None:
        return candidates
    named = {t for t in _terms_of(sentences[head].text) if not t.isdigit()}  # ("3" of "3.
    if not named or not named <= asked:  # Excess" numbers it) all its words: it names what
        return candidates  # is asked about
    heading = sentences[head].text
    section = []
    for sentence in sentences[head + 1:]:
        if is_heading(sentence, top.chunk):
            break
        section.append(sentence)
    typed = [c for c in (check(s, top.score, top.cosine, heading) for s in section
                         if s.index != top.sentence.index) if c.features["type_found"]]
    if len(typed) != 1:
        return candidates
    first = replace(typed[0], score=top.score + CONTINUED_MARGIN)
    return [first, top, *(c for c in candidates[1:] if c.sentence.index != first.sentence.index)]


_OF = re.compile(r"^\s+(?:of|in|at|on|for|from|over)\s+$", re.IGNORECASE)


def _subject(sentence: Sentence, mentions: tuple[Mention, ...], pronoun: str) -> str | None:
    """The phrase a sentence opens with, which a pronoun opening the next one stands for
    ("The library of Ashford" of "The library of Ashford was opened in 1901."), or None: when
    the sentence opens otherwise ("After that wreck the merchants …", whose next "Its"
    may mean anything in it), or the pronoun cannot stand for it ("He" for a library)."""
    phrases = sorted((m for m in mentions if m.label == "NP"), key=lambda m: m.start)
    if not phrases or phrases[0].start != sentence.start:
        return None
    end = phrases[0].end
    for nxt in phrases[1:]:  # "of Ashford", "over the Tay"
        if not _OF.match(sentence.text[end - sentence.start:nxt.start - sentence.start]):
            break
        end = nxt.end
    person = any(m.label == "PERSON" and sentence.start <= m.start < end for m in mentions)
    if (pronoun in ("he", "his", "she", "her") and not person
            or pronoun in ("it", "its") and person):
        return None
    return sentence.text[:end - sentence.start]


# "Who is the Landlord?", "What is the Software?": a question after what a defined term names.
_ASKS_WHO_IS = re.compile(r"^\s*(?:who|what)\s+(?:is|are|was|were)\s+(?:the\s+)?(\S.{0,58}?)"
                          r"\s*\?*\s*$", re.IGNORECASE)
# A term defined where it is introduced, as contracts and policies do: 'Northgate Properties
# Ltd ("the Landlord")', 'the program (hereinafter "the Software")'.
DEFINES = re.compile(r"\(\s*(?:hereinafter\s+(?:referred\s+to\s+as\s+|called\s+)?)?(?:the\s+)?"
                     r"[\"“‘']\s*(?:the\s+)?([^\"”’'()]{1,60}?)\s*[\"”’']\s*\)", re.IGNORECASE)


# "What does attenuation mean?": what a term means
_ASKS_MEANING = re.compile(r"^\s*what\s+(?:does|do)\s+(?:the\s+)?(\S.{0,58}?)\s+mean\s*\?*\s*$",
                           re.IGNORECASE)


def defined_term(question: str) -> set[str] | None:
    """The words of the term a "who/what is the X?" (or "what does X mean?") question asks
    after, or None."""
    asked = _ASKS_WHO_IS.match(question) or _ASKS_MEANING.match(question)
    return (set(tokenize(asked.group(1))) or None) if asked else None


def _definition(index: Index, question: str, documents: set[str],
                check: Callable[[Sentence, float, float, str | None], Candidate],
                retrieved: Callable[[Sentence], tuple[float, float]]) -> Candidate | None:
    """The sentence of one of `documents` that defines the term the question asks after
    ('… between Northgate Properties Ltd ("the Landlord") and …' for "Who is the
    landlord?"): such a sentence may be long and hold every party, so retrieval ranks a
    shorter mention of the term above it. Or a glossary's entry for the term (`_ENTRY`,
    with its retrieval scores: `retrieved`), which may rank below an entry that uses it.
    Or, asked what the term means, the first sentence under a heading that says it ("Cause:
    The pump has overheated." under "Error code E4 is shown", read with the heading's
    words), as troubleshooting guides and references explain what they head: a later
    sentence that repeats the term ("If E4 comes back …") says what to do about it."""
    term = defined_term(question)
    if term is None:
        return None
    meaning = _ASKS_MEANING.match(question) is not None
    for i in _passages_using(index, sorted(term)):
        chunk = index.chunks[i]
        if chunk.doc_id not in documents:
            continue
        for match in DEFINES.finditer(chunk.text):
            if set(tokenize(match.group(1))) != term:
                continue
            at = chunk.start + match.start()
            sentence = next((s for s in chunk.sentences if s.start <= at < s.end), None)
            if sentence is not None:
                return check(sentence, 0.0, 0.0, None)
        for sentence in chunk.sentences:  # a glossary's entry: "**Mash tun** — The vessel …"
            entry = _ENTRY.match(sentence.text)
            if entry is not None and set(tokenize(entry.group(1))) == term:
                return check(sentence, *retrieved(sentence), None)
        for heading, first in zip(chunk.sentences, chunk.sentences[1:], strict=False):
            if meaning and is_heading(heading, chunk) and not is_heading(first, chunk) \
                    and term <= set(tokenize(heading.text)):
                return check(first, *retrieved(first), heading.text)
    return None


# A glossary's or a list's entry: the term, alone (bold or not), a dash and what it is
# ("**Mash tun** — The vessel in which …", "IBU – International Bitterness Units"), or a
# bold term and a colon ("**Wort:** the sweet liquid …").
_ENTRY = re.compile(r"(?:[-*•][ \t]+)?(?:\*\*|__)?([A-Za-z][\w’'-]*(?:[ \t]+[\w’'-]+){0,4})"
                    r"(?:(?:\*\*|__)?[ \t]+[—–-]|\*\*:|:\*\*|__:|:__)[ \t]+\S")


# "Who is the chair [of Kestrel Foods]?", "Who is Kestrel's chief executive?": the role asked
# after, up to what it is of.
_WHO_HOLDS = re.compile(r"^\s*who\s+(?:is|was|are|were)\s+(?:the|a|an|(?:the\s+)?[\w-]+[’']s)\s+"
                        r"(.+?)(?:\s+(?:of|for|at|in|on|to)\s+.*)?\s*\?*\s*$", re.IGNORECASE)
_BEFORE_NAME = re.compile(r"((?:[\w’'-]+\s+){0,3}[\w’'-]+),?\s+$")  # "Our chair, " of a name


def _role_holder(index: Index, info: QuestionInfo, hits: Sequence[Hit],
                 check: Callable[[Sentence, str | None], Candidate],
                 top: Candidate | None) -> Candidate | None:
    """The first sentence of the passages found that names a person right after the role
    the question asks who holds ("Who is the chair of Kestrel Foods?": "Our chair, Miriam
    Adebayo, will step down …"; "The chief executive, Paul Lindqvist, expects …"): it says
    in so many words who holds it, though a sentence that says more of the question's other
    words ("Kestrel Foods plc makes chilled soups …") ranks above it. It is read with the
    question's names that its passage or its document's title gives (what "our" is). None
    when the best sentence (`top`) names the role itself ("Sakya Pandita, leader of the
    Sakya school"): it may say who holds it otherwise."""
    asked = _WHO_HOLDS.match(info.text)
    if info.wants[:1] != ("PERSON",) or asked is None:
        return None
    role = tokenize(asked.group(1))
    if not role or top is not None and set(role) <= set(tokenize(top.sentence.text)):
        return None
    for hit in hits:
        for sentence in hit.chunk.sentences:
            for m in index.mentions_of(sentence.index):
                before = _BEFORE_NAME.search(sentence.text[:m.start - sentence.start]) \
                    if m.label == "PERSON" else None
                if before is not None and tokenize(before.group(1))[-len(role):] == role:
                    around = _terms_of(hit.chunk.text) | _terms_of(
                        index.documents[hit.chunk.doc_id].title)
                    given = [e.text for e in info.entities if e.label in NAMED
                             and (terms := _terms_of(e.text)) and terms <= around]
                    return check(sentence, " ".join(given) or None)
    return None


# A question answered yes or no, by its auxiliary verb first ("Do dogs travel free?").
_YES_NO = re.compile(r"^\s*(?:do|does|did|is|are|was|were|can|could|will|may|must|should|"
                     r"has|have|had)\s", re.IGNORECASE)


_DOING = re.compile(r"\s*([A-Za-z]{3,}ing)\s+(?!(?:the|a|an|my|your|our|their|his|her|its)\b)"
                    r"[a-z]", re.IGNORECASE)  # a doing named by its "-ing" word, opening


def yes_no_subject(info: QuestionInfo) -> str:
    """The term of what a yes/no question is about, the head of its first noun phrase
    ("dog" of "Do dogs travel free?") or the "-ing" word opening it ("smoking" of "Is
    smoking allowed …?"), or "" (another question; a pronoun: "Do I …?"). A
    sentence that says the rest of another subject ("Children under 5 travel free.")
    answers nothing about it."""
    asks = _YES_NO.match(info.text)
    if not asks:
        return ""
    nouns = sorted((m for m in info.nouns if m.label == "NP"), key=lambda m: m.start)
    doing = _DOING.match(info.text, asks.end())
    if doing and not any(m.start == doing.start(1) for m in nouns) \
            and len(did := tokenize(doing.group(1))) == 1:
        return did[0]  # "Is smoking allowed in the flat?": what is asked about is
        # "smoking", which the parser reads as a verb, not "the flat"
    if not nouns:
        return ""
    terms = tokenize(nouns[0].head or nouns[0].text.split()[-1])
    return terms[0] if len(terms) == 1 else ""


def _attribute_row(index: Index, info: QuestionInfo, hits: Sequence[Hit],
                   check: Callable[[Sentence], Candidate]) -> Candidate | None:
    """The row of a table of two columns, in any passage found, whose first cell
    names the attribute the question asks for (its `focus`: "What colour is the kettle?",
    "What is the power of the kettle?": "| Colour | Graphite grey |", "| Power | 3000 W |"),
    when the passage or its document's title names the rest of the question's words (the
    kettle). Such a row is short, and it and its passage often rank below a sentence that only
    uses the word ("the power base"), yet it says in so many words what was asked."""
    asked = set(tokenize(info.focus)) if info.focus else set()
    if not asked:
        return None
    rest = set(tokenize(info.text)) - asked
    for hit in hits:
        chunk = hit.chunk
        if "|" not in chunk.text:
            continue
        around = _terms_of(chunk.text) | _terms_of(index.documents[chunk.doc_id].title)
        if not rest <= around:
            continue
        for sentence in chunk.sentences:
            cells = [c.strip() for c in sentence.text.strip().strip("|").split("|")]
            if len(cells) != 2 or not all(cells) or set(tokenize(cells[0])) != asked \
                    or table_header(sentence, chunk) is None:
                continue
            return check(sentence)
    return None


def _keyed_row(info: QuestionInfo, hits: Sequence[Hit],
               check: Callable[[Sentence], Candidate]) -> Candidate | None:
    """The row of a table, in any passage found, one of whose cells the question gives
    after the name of its column ("week 8" of "What topic is covered in week 8?": the row
    "| 8 | Sea-level change | Chapter 9 |" under "| Week | Topic | Reading |"): it is the
    row asked about, though another ("| 6 | Reading week (no classes) |") says more of the
    question's words."""
    for hit in hits:
        chunk = hit.chunk
        if "|" not in chunk.text:
            continue
        for sentence in chunk.sentences:
            header = table_header(sentence, chunk)
            if header is None:
                continue
            names = [c.strip() for c in header.text.strip().strip("|").split("|")]
            cells = [c.strip() for c in sentence.text.strip().strip("|").split("|")]
            if len(names) != len(cells):
                continue
            if any(name and cell and re.search(
                    rf"(?<!\w){re.escape(name)}\s+{re.escape(cell)}(?!\w)", info.text,
                    re.IGNORECASE) for name, cell in zip(names, cells, strict=True)):
                return check(sentence)
    # Else the one row whose first cell the question gives, under a column it names ("What
    # was the revenue in 2022?": "| 2022 | 148.2 | +3.1% |" under "| Year | Revenue (£m) |
    # Change |"), as financial tables and price lists are read.
    asked = set(tokenize(info.text))
    keyed: dict[int, Sentence] = {}
    for hit in hits:
        for sentence in hit.chunk.sentences:
            header = table_header(sentence, hit.chunk)
            if header is None:
                continue
            names = [c.strip() for c in header.text.strip().strip("|").split("|")]
            cells = [c.strip() for c in sentence.text.strip().strip("|").split("|")]
            if len(names) == len(cells) >= 2 and any(ch.isalnum() for ch in cells[0]) \
                    and re.search(rf"(?<![\w.,]){re.escape(cells[0])}(?![\w]|[.,]\d)",
                                  info.text, re.IGNORECASE) \
                    and any(set(tokenize(name)) & asked for name in names[1:]):
                keyed[sentence.index] = sentence
    return check(next(iter(keyed.values()))) if len(keyed) == 1 else None


# A superlative that asks for the greatest or the least of a measure (closed class: English
# superlatives of size and amount): "Which reservoir has the largest capacity?"
_MOST = re.compile(r"\b(?:most|highest|largest|biggest|greatest|longest|heaviest|maximum)\b",
                   re.IGNORECASE)
_LEAST = re.compile(r"\b(?:least|lowest|smallest|fewest|shortest|lightest|minimum)\b",
                    re.IGNORECASE)
_FIGURE = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _cell_figure(cell: str) -> float | None:
    """The one figure of a table's cell ("4,800", "72%", "£8.50"), or None (text, a range
    "10-12", two figures)."""
    found = _FIGURE.findall(cell)
    if len(found) != 1 or re.search(r"\d\s*[-–]\s*\d", cell):
        return None
    return float(found[0].replace(",", ""))


def _extreme_row(info: QuestionInfo, hits: Sequence[Hit]) -> Sentence | None:
    """The row of a table, in any passage found, that holds the greatest (or least) figure
    of the one column the question names beside a superlative ("Which reservoir has the
    largest capacity?": "| Kellan Ridge | 4,800 | 72% |" under "| Reservoir | Capacity (Ml) |
    Level |"): the table answers, though no row says the question's words. Each row of the
    table must give a figure there, and one row the extreme."""
    most, least = _MOST.search(info.text), _LEAST.search(info.text)
    if bool(most) == bool(least):
        return None
    asked = _terms_of(info.text)
    for hit in hits:
        chunk = hit.chunk
        if "|" not in chunk.text:
            continue
        tables: dict[int, list[tuple[Sentence, list[str]]]] = {}
        names: dict[int, list[str]] = {}
        for sentence in chunk.sentences:
            header = table_header(sentence, chunk)
            if header is None:
                continue
            names[header.index] = [c.strip() for c in header.text.strip().strip("|").split("|")]
            cells = [c.strip() for c in sentence.text.strip().strip("|").split("|")]
            tables.setdefault(header.index, []).append((sentence, cells))
        for at, rows in tables.items():
            named = [i for i, name in enumerate(names[at]) if i > 0 and _terms_of(name) & asked]
            if len(named) != 1 or len(rows) < 2 \
                    or any(len(cells) != len(names[at]) for _, cells in rows):
                continue
            figures = [_cell_figure(cells[named[0]]) for _, cells in rows]
            if any(f is None for f in figures):
                continue
            values = [f for f in figures if f is not None]
            extreme = max(values) if most else min(values)
            if values.count(extreme) == 1:
                return rows[values.index(extreme)][0]
    return None


def _retrieved(scored: Scored, sentence: int) -> tuple[float, float]:
    """The retrieval score and cosine of a sentence, (0, 0) when retrieval scored none."""
    at = np.flatnonzero(scored.sentence_ids == sentence)
    if not len(at):
        return 0.0, 0.0
    return float(scored.sentence_scores[at[0]]), float(scored.sentence_cosines[at[0]])


def _passages_using(index: Index, terms: list[str]) -> list[int]:
    """The NAME_PASSAGES passages that use `terms` most (BM25), best first (at the cost of
    the terms' postings, not of the library's size)."""
    top = index.chunk_top(terms, NAME_PASSAGES)
    return [int(i) for i, score in zip(top, index.chunk_scores(terms, top), strict=True)
            if score > 0]


_ACRONYM = re.compile(r"\b([A-Z]{2,6})s?\b")
_FILLER = r"(?:[\s-]+(?:of|the|and|for|on|in|de|du|des|la|le|&))*[\s-]+"


def _spelled_out(name: str, texts: Sequence[str]) -> bool:
    """Is `name` an acronym ("NYC", "NGOs") that one of `texts` writes out in full, as the
    initials of capitalised words ("New York City", "non-governmental organisations" does
    not count; "United States of America" does)?"""
    acronyms = _ACRONYM.findall(name)
    if not acronyms or _ACRONYM.sub("", name).strip(" '’s"):
        return False  # not an acronym alone ("NYC Marathon": its other words are looked up)
    patterns = [re.compile(r"\b" + _FILLER.join(f"{letter}[\\w’'.]*" for letter in acronym)
                           + r"\b") for acronym in acronyms]
    return all(any(p.search(text) for text in texts) for p in patterns)


NAME_PASSAGES = 20  # the passages searched for a name's words, or a term's definition


def _written_apart(index: Index, name: str, knows: Callable[[str], bool],
                   found: Sequence[str] = ()) -> bool:
    """Does the library use every word of `name` but never write two of its neighbours
    together (in order, at most two words apart: "Nintendo's Wii", "Barack Hussein Obama")
    in the passages `found` for the question, the passages that use its words most, nor in
    their documents' titles? "New York City Hall" is written as "New York City" and "City
    Hall"; "Radar Princess" of a page on "Twilight Princess" and the magazine "Games Radar"
    is written nowhere."""
    words = tokenize(name, keep_stopwords=True)
    terms = tokenize(name)
    # A name with "of" ("Realm of Twilight") is read by the words either side of it, which
    # may be written the other way round ("Twilight Realm").
    across: tuple[str, ...] = ()
    if "of" in words[1:-1]:
        at = words.index("of")
        across = (words[at - 1], words[at + 1])
        words = words[:at] + words[at + 1:]
    if len(words) < 2 or not terms or not all(knows(t) for t in terms):
        return False
    pairs = set(zip(words, words[1:], strict=False))

    def written(tokens: list[str], pair: tuple[str, str]) -> bool:
        return _together(tokens, pair) or pair == across and _together(tokens, pair[::-1])

    for text in found:  # the passages found first: they most often hold the name
        tokens = tokenize(text, keep_stopwords=True)
        pairs -= {pair for pair in pairs if written(tokens, pair)}
        if not pairs:
            return False
    for i in _passages_using(index, terms):
        chunk = index.chunks[i]
        for text in (chunk.text, index.documents[chunk.doc_id].title):
            tokens = tokenize(text, keep_stopwords=True)
            pairs -= {pair for pair in pairs if written(tokens, pair)}
        if not pairs:
            return False
    return True


def _foreign_word(name: str, used: Callable[[str], bool], found: Sequence[str]) -> bool:
    """Does `name` hold a capitalised word that the documents never use (`used`), not even
    as a spelling of a word of the passages `found` ("Beichaun" of "Beichuan", "Tempations"
    of "Temptations": a typo names the same thing)?"""
    for word in _WORD.finditer(name):
        terms = tokenize(word.group())
        if word.group()[:1].isupper() and len(terms) == 1 and not used(terms[0]) \
                and not any(_misspelt(word.group(), text) or _dotted(word.group(), text)
                            for text in found):
            return True
    return False


# A name in code: dotted ("tidepool.plot", "Series.to_csv") or with an underscore
# ("min_separation", "TIDEPOOL_CACHE"); each part opens with a letter, so no version ("2.1")
# nor abbreviation ("e.g.", "U.S.": parts of one letter) is one.
_CODE_NAME = re.compile(r"(?<![\w.])(?:[A-Za-z_]\w+(?:\.[A-Za-z_]\w+)+|[A-Za-z]\w*_\w+|"
                        r"[A-Za-z]{1,3}\d{1,5}[A-Za-z]?|[A-Z]{1,3}-\d{1,5}[A-Za-z]?)(?![\w.]\w)")
# Letters and a number that are not a code of one document's own (closed class): a quarter,
# a half or a fiscal year ("Q3", "H1", "FY2024": written "the third quarter", "2024"), and a
# unit squared or cubed or a formula ("m2": "m²", "CO2": "CO₂"). (A code with a hyphen is
# written in capitals, "KA-1900": "mid-2010", "pre-2007" are words and a year.)
_NOT_CODE = re.compile(r"(?:q[1-4]|h[12]|fy-?\d+|(?:mm|cm|m|km|ft|in)[23]|co2)", re.IGNORECASE)


def _code_names(text: str) -> list[str]:
    """The names of code a question writes ("What does tidepool.plot return?"), and the
    codes of models, grades or classes ("P4", "KA-1900"): one that no document writes
    names another thing than those they describe ("P4 incidents" of an SLA of P1 to P3)."""
    return list(dict.fromkeys(m.group() for m in _CODE_NAME.finditer(text)
                              if not _NOT_CODE.fullmatch(m.group())))


def _code_written(index: Index, code: str, used: Callable[[str], bool],
                  found: Sequence[str]) -> bool:
    """Do the documents write the name of code `code`? A dotted one, when they use the word
    of its last part ("tidepool.highs" of "tidepool.Series.highs()": people shorten the
    path, not the name); one with an underscore, written whole in a passage found or in one
    of those that use its words most."""
    if "." in code:
        last = tokenize(code.rsplit(".", 1)[1])
        return not last or all(used(t) for t in last)
    if re.search(r"\ds$", code):  # a plural ("How many DB10s were made?") of one written
        code = code[:-1]
    written = re.compile(rf"(?<!\w){re.escape(code)}s?(?!\w)", re.IGNORECASE)  # ".to_csv("
    if any(written.search(text) for text in found):
        return True
    return any(written.search(index.chunks[i].text)
               for i in _passages_using(index, tokenize(code)))


def _dotted(word: str, text: str) -> bool:
    """Is `word` an acronym that `text` writes with dots ("DC" of "Washington, D.C.")?"""
    return word.isupper() and len(word) > 1 and re.search(
        r"(?<![\w.])" + r"\.\s?".join(word) + r"\.", text) is not None


def _written_as_name(index: Index, word: str, found: Sequence[str] = ()) -> bool:
    """Do the documents write the one-word name `word` ("Windows") as a name: capitalised,
    or as the question writes it ("python" of "Python")? Its term may be in them only as a
    common word of the same stem ("the Preferences window"), which names nothing. True when
    no word of its term is found written at all (a form stemming does not join): as before."""
    terms = tokenize(word)
    if len(terms) != 1:
        return True
    written = re.compile(rf"(?<![\w’'-]){re.escape(word)}(?![\w’'-])", re.IGNORECASE)
    if any(written.search(text) for text in found):  # as asked, in a passage found: most
        return True  # names of most questions, decided without reading any other passage
    term, seen = terms[0], False

    def texts() -> Iterator[str]:  # the passages found, then those that use the term most
        yield from found
        for i in _passages_using(index, terms):
            chunk = index.chunks[i]
            yield chunk.text
            yield index.documents[chunk.doc_id].title

    for text in texts():
        for w in _WORD.finditer(text):
            if not w.group()[:2].lower() == term[:2] or tokenize(w.group()) != [term]:
                continue
            if w.group()[:1].isupper() or w.group().lower() == word.lower():
                return True
            seen = True
    return not seen


def _together(tokens: list[str], pair: tuple[str, str]) -> bool:
    """Is `pair[1]` at most three tokens after a `pair[0]` in `tokens` ("Mary Shelley" of
    "Mary Wollstonecraft Godwin Shelley")? A word matches a token
    that begins with it or that it begins with, of four letters or more: "Gateway Nation"
    asks after "Gateway National", "State Island" after "Staten Island"."""
    first, second = pair
    return any(_same(token, first) and any(_same(t, second) for t in tokens[i + 1:i + 4])
               for i, token in enumerate(tokens))


def _same(token: str, word: str) -> bool:
    return token == word or min(len(token), len(word)) >= 4 and (
        token.startswith(word) or word.startswith(token))


# Ordinal words, a closed class, in order from "second": "first" is not one of them, as it is
# often said otherwise ("the founding president", "the original").
_ORDINAL_WORDS = ("second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
                  "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
                  "twentieth").split()
_ORDINAL_DIGITS = re.compile(r"(\d+)(?:st|nd|rd|th)")


def _ordinal_forms(text: str) -> set[str]:
    """The index terms of an ordinal of one word from "second" to "twentieth", as a word and
    in digits ("fifth": {"fifth", "5th"}); empty for any other ("first", "21st", "the third
    quarter")."""
    terms = tokenize(text)
    if len(terms) != 1:
        return set()
    term = terms[0]
    words = {stem(w): n for n, w in enumerate(_ORDINAL_WORDS, start=2)}
    digits = _ORDINAL_DIGITS.fullmatch(term)
    n = words.get(term) if digits is None else int(digits.group(1))
    if n is None or not 2 <= n <= len(_ORDINAL_WORDS) + 1:
        return set()
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n // 10 != 1 else 0, "th")
    return {stem(_ORDINAL_WORDS[n - 2]), f"{n}{suffix}"}


def _with_names(terms: set[str], surnames: dict[str, set[str]]) -> set[str]:
    """`terms`, with the whole of each name whose surname they hold."""
    for surname, name in surnames.items():
        if surname in terms:
            terms = terms | name
    return terms


RELATIVE_PREFIX = 5  # a word this long or longer is a form of the words it begins


COMPOUND_PART = 3  # the shortest part of a compound ("bowl" of "superbowl")


def _relative_known(terms: Sequence[str], knows: Callable[[str], bool], term: str) -> bool:
    """Do the documents (their sorted `terms`) use another form of this word, one that
    stemming does not join: "afghan" of "afghanistan" (the word begins a document word),
    "iraqi" of "iraq" (a document word begins it, at most two letters shorter)?"""
    if len(term) >= RELATIVE_PREFIX:
        at = bisect.bisect_left(terms, term)
        if at < len(terms) and terms[at].startswith(term):
            return True
    if any(knows(term[:k]) for k in range(max(4, len(term) - 2), len(term))):
        return True
    # Two document words written as one ("superbowl" of "Super Bowl", "website")
    return any(knows(term[:k]) and knows(stem(term[k:]))
               for k in range(COMPOUND_PART, len(term) - COMPOUND_PART + 1))


def _surface(text: str, terms: set[str]) -> tuple[str, ...]:
    """The words of `text` that the index terms `terms` come from, as typed, once each."""
    if not terms:
        return ()
    words = (m.group() for m in re.finditer(r"\w[\w'’-]*", text))
    return tuple(dict.fromkeys(w for w in words if set(tokenize(w)) & terms))


FOLLOW_UP_PASSAGES = 2  # a follow-up's sentence is chosen from this many top passages
REPEAT_PENALTY = 0.05
NEXT_SENTENCE_BONUS = 0.2  # measured on the dev follow-ups (0.05-0.2 swept)


def follow_up_sentence(
    index: Index, hits: list[Hit], vector: np.ndarray, terms: list[str], quoted: set[int],
    lexical_share: float,
) -> tuple[Sentence, float]:
    """In a follow-up the conversation finds the passage, the new question the sentence.

    Sentences of the top passages are scored against the question alone; a sentence next to
    one quoted in the previous answer gets a bonus (conversations move along the text) and
    one already quoted a small penalty (a follow-up rarely wants the same sentence again).
    A heading (a title, a FAQ's question: `chunking.is_heading`) only when the passages hold
    no other sentence, as in a question asked alone: "Do I need to book?" is not answered
    by the FAQ's own "Do I need to book?". A question with no word of its own (`terms`
    empty: "Why?" after "What did the panel recommend?") asks about what was just quoted,
    which is then no repeat: it gets the bonus in place of the sentences next to it.
    """
    pairs = [(s, h.chunk) for h in hits[:FOLLOW_UP_PASSAGES] for s in h.chunk.sentences]
    sentences = [s for s, _ in pairs]
    ids = np.array([s.index for s in sentences])
    cosines = index.sentence_vectors(ids) @ vector
    scores = cosines + lexical_share * unit_max(index.sentence_scores(terms, ids))
    for i, s in enumerate(sentences):
        if s.index in quoted:
            scores[i] += NEXT_SENTENCE_BONUS if not terms else -REPEAT_PENALTY
        elif terms and any(abs(s.index - q) == 1 for q in quoted):
            scores[i] += NEXT_SENTENCE_BONUS
    best = min(range(len(pairs)), key=lambda i: (is_heading(*pairs[i]), -scores[i]))
    return sentences[best], float(cosines[best])


def quoted_sentences(index: Index, hits: list[Hit], answer: str | None) -> set[int]:
    """The sentences of the top passages that an earlier answer's text quotes, whole or cut
    to fit the answer's length (its first or its last `CUT_QUOTE_CHARS` characters)."""
    if not answer:
        return set()
    return {s.index for h in hits for s in h.chunk.sentences if s.text in answer or (
        len(s.text) > CUT_QUOTE_CHARS and (s.text[:CUT_QUOTE_CHARS] in answer
                                           or s.text[-CUT_QUOTE_CHARS:] in answer))}


CUT_QUOTE_CHARS = 80  # of a long sentence, this much is its own (not said by another)


def type_spans(
    mentions: tuple[Mention, ...], info: QuestionInfo, q_terms: set[str] | frozenset[str]
) -> list[Mention]:
    """Mentions of the expected answer type that are not the question's own words."""
    if info.wants:
        wanted = [m for m in mentions if m.label in info.wants]
    elif info.focus:  # "which strategy": a noun phrase headed by the same noun
        wanted = [m for m in mentions if m.label == "NP" and m.head == info.focus]
    else:
        return []
    return [m for m in wanted if not in_question(m.text, q_terms)
            and not any(_overlaps(m, e.text) for e in info.entities)]


def answer_spans(sentence: Sentence, mentions: tuple[Mention, ...], info: QuestionInfo,
                 q_terms: set[str] | frozenset[str], counted: bool = True) -> list[Mention]:
    """The spans of the sentence that could answer: of the expected type (`type_spans`) and
    of the right kind within it. Both the evidence check ("the type is present") and the
    lead read these, so a sentence whose only date is "October" does not hold the year that
    "In what year …?" asks for."""
    spans = [m for m in type_spans(mentions, info, q_terms)
             if m.label != "CARDINAL" or not _not_a_number(m.text)]
    text, start = sentence.text, sentence.start
    if counted and info.counted:  # "How many troops": not the "six" of "six drone attacks"
        spans = [m for m in spans if counts_asked(m, mentions, info.counted, sentence)]
    if counted and _HOW_MANY.search(info.text) and not _SHARE.search(info.text):
        spans = [m for m in spans if m.label != "PERCENT"]  # "Around 28% of visitors" is
        # a share of them, not how many
        # Nor is a measure ("40 kilometres"), unless its unit is what is counted ("How many
        # kilometres …"): "How many pairs breed in the marshes?" is not asked how far away.
        unit = _dimension(" ".join(_HOW_MANY_WORDS.findall(info.text)[:1]))
        spans = [m for m in spans if m.label != "QUANTITY"
                 or _dimension(m.text) in (None, unit)]
    if info.duration:  # "How long are the loaves proofed?": not "4 a.m.", nor "week 4"
        spans = [m for m in spans if not CLOCK.search(m.text) and not _NUMBERED.match(m.text)]
    if info.age:  # "How old was she?": "seven", "six months", "aged 20"; not "October"
        spans = [m for m in spans if m.label != "DATE" or DURATION.match(m.text)
                 or _AGE.search(m.text)]
    if info.point:  # "When did the Board declare …?": not "two days" (but "within 72 hours")
        spans = [m for m in spans if not DURATION.match(m.text)
                 or _FROM_THEN.search(text[:m.start - start])]
    if _AT_WHAT_TIME.search(info.text):  # "What time does the fair start?": a time of day
        spans = [m for m in spans if m.label != "DATE" or CLOCK.search(m.text)]  # not "11 July"
    if info.negated:  # "Which programs cannot…": not the ones the sentence says can
        spans = [m for m in spans if negated_clause(text, m.start - start, m.end - start)]
    if info.focus == "year":  # "What years did he rule?": not "the Ming dynasty" (a DATE)
        spans = [m for m in spans if any(ch.isdigit() for ch in m.text)]
    how = HOW_MEASURE.search(info.text)
    if how is not None:  # "How deep is the main pool?": not "29°C", a temperature
        wanted = _MEASURED_BY[how.group(1).lower()]
        spans = [m for m in spans if _dimension(m.text) in (None, wanted)]
    return spans


# What a "how <adjective>" asks the measure of (closed class: English adjectives of
# dimension; not "how long", "how high", "how big", which ask of several, nor "how far",
# which asks a time as often: "How far ahead can the timer be set?"), and the units that
# measure each (closed class: units of measure).
_MEASURED_BY = {"deep": "length", "tall": "length", "wide": "length",
                "thick": "length", "heavy": "weight", "hot": "temperature",
                "warm": "temperature", "cold": "temperature"}
HOW_MEASURE = re.compile(rf"\bhow\s+({'|'.join(_MEASURED_BY)})\b", re.IGNORECASE)
_UNITS_OF = {
    "temperature": re.compile(r"°|\bdegrees?\b|(?<=\d)\s?[CF]\b|\b(?:celsius|fahrenheit)\b",
                              re.IGNORECASE),
    "length": re.compile(r"(?<![A-Za-z])(?:mm|cm|m|km|in|inch(?:es)?|ft|feet|foot|yards?|"
                         r"miles?|(?:milli|centi|kilo)?met(?:re|er)s?)(?![A-Za-z])"),
    "weight": re.compile(r"(?<![A-Za-z])(?:mg|g|kg|lbs?|oz|ounces?|tons?|tonnes?|"
                         r"(?:milli|kilo)?grams?|grammes?)(?![A-Za-z])"),
}


def _dimension(text: str) -> str | None:
    """What a figure's unit measures ("29°C": "temperature", "2.5 m": "length"), or None
    (no unit, or one of another measure)."""
    return next((name for name, unit in _UNITS_OF.items() if unit.search(text)), None)


# A word of letters and digits ("1UP.com", "MP3", "B2B"), which the entity model may label a
# number: a name, no count. A number with a suffix or a hyphenated word is one ("10k",
# "1990s", "3rd", "2.5m", "2,500-strong").
_DIGITS_AND_LETTERS = re.compile(r"(?=[^\s]*\d)(?=[^\s]*[A-Za-z])[^\s]+")
_NUMBER_WORD = re.compile(r"[\d.,]+(?:k|m|bn|s|st|nd|rd|th)?(?:-[A-Za-z]+)*\W*", re.IGNORECASE)


def _not_a_number(text: str) -> bool:
    return any(not _NUMBER_WORD.fullmatch(w.group()) for w in _DIGITS_AND_LETTERS.finditer(text))


# A period named by its place in a series ("week 4", "Day 3", "the year 2"): when, not how long.
_NUMBERED = re.compile(rf"^(?:the\s+)?(?:{'|'.join(sorted(TIME_UNITS))})\s+\d+$", re.IGNORECASE)
_HOW_MANY = re.compile(r"\bhow\s+many\b", re.IGNORECASE)
# "What time …", "At what time …" ask a time of day; not "what time of year", nor "by what
# time" (by when: "By what time would the catalog be free of DRM?" "April 2009").
_AT_WHAT_TIME = re.compile(r"(?<!\bby\s)\bwhat\s+time\b(?!\s+(?:of|period|frame|span|zone)\b)",
                           re.IGNORECASE)
_HOW_MANY_WORDS = re.compile(r"\bhow\s+many\s+(\w+(?:\s+\w+)?)", re.IGNORECASE)  # "square feet"
# Words that ask for a share (closed class): "How many per cent …", "What share …", and
# "how many of the buildings" (a part of them: "80% of the buildings")
_SHARE = re.compile(r"%|\bper\s*cent|\bpercent|\b(?:share|proportion|fraction)\b|"
                    r"\bhow\s+many\s+of\b", re.IGNORECASE)
_AGE = re.compile(r"\b(?:old|older|younger|age|aged|ages)\b|-year-", re.IGNORECASE)
_FROM_THEN = re.compile(r"\b(?:within|after|in|by)\s+$", re.IGNORECASE)  # "within 72 hours"


def counts_asked(mention: Mention, mentions: tuple[Mention, ...], counted: str,
                 sentence: Sentence | None = None) -> bool:
    """Could this number be the count that "how many `counted`" asks for? A number inside a
    noun phrase counts the phrase's head, which must be the counted noun: "2,500 American
    troops" counts troops; "six rocket and drone attacks" counts attacks, neither troops nor
    drones, and "the club's 45 volunteers" no trees. A phrase without a known head counts any
    of the words after its number, and a hyphenated compound ("detector-night") is counted
    only by a phrase that says it. A number outside any noun phrase ("a population of 8.4
    million") may be the count, but not one of times (`sentence` read after it: "drawn three
    times" says how often, and "how many times" counts nothing in particular)."""
    if mention.label != "CARDINAL":
        return True
    if sentence is not None and _TIMES.match(sentence.text, mention.end - sentence.start):
        return False
    wanted = set(tokenize(counted))
    compound = tokenize(counted, keep_stopwords=True) if "-" in counted else []
    return all(_says(tokenize(m.text[mention.end - m.start:], keep_stopwords=True), compound)
               if compound else m.head.lower() == counted if m.head
               else set(tokenize(m.text[mention.end - m.start:])) & wanted for m in mentions
               if m.label == "NP" and m.start <= mention.start and mention.end <= m.end
               and not _overlaps(m, mention.text))


_TIMES = re.compile(r"\s+times?\b", re.IGNORECASE)  # "three times", "one time": how often


def _says(words: list[str], phrase: list[str]) -> bool:
    """Do `words` hold `phrase`, its words in a row ("288 detector-nights": "detector",
    "night"; not "12 nights")? A hyphenated compound counts only itself."""
    return any(words[i:i + len(phrase)] == phrase for i in range(len(words) - len(phrase) + 1))


_DOTTED = re.compile(r"(?<![\w.])\d+(?:\.\d+)+(?![\w]|\.\d)")  # "3.0", "4.2.0", "2.5"


VERSION_CHUNKS = 3  # passages looked back through for the heading a sentence is under


def _version_above(index: Index, chunk: Chunk, sentence: Sentence) -> str | None:
    """The nearest heading at or above the sentence that gives a version or other dotted
    number ("## [3.1.1] - 2026-08-30" over "### Fixed"), in its passage or the few before
    it in its document: a changelog's or release notes' entries are of the version that
    heads them, though the passage holds another's too."""
    current, above = chunk, [s for s in chunk.sentences if s.index <= sentence.index]
    for _ in range(VERSION_CHUNKS):
        for candidate in reversed(above):
            if _DOTTED.search(candidate.text) and is_heading(candidate, current):
                return candidate.text
        if current.index == 0 or index.chunks[current.index - 1].doc_id != chunk.doc_id:
            return None
        current = index.chunks[current.index - 1]
        above = list(current.sentences)
    return None


def _writes(text: str, number: str) -> bool:
    """Does `text` write `number` ("3.0") as a number of its own (not "13.0", "3.0.1")?"""
    return re.search(rf"(?<![\w.]){re.escape(number)}(?![\w]|\.\d)", text) is not None


_ISO_DATE = re.compile(r"(?<![\w-])(?:1[5-9]|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
                       r"(?![\w-])")
# A time of day by the clock ("10:10", "9:45am", "14:30"), not a ratio or a verse ("3:16" is
# one too: the entity model decides only where it labels something else there)
_CLOCK_TIME = re.compile(r"(?<![\w:.,])(?:[01]?\d|2[0-3]):[0-5]\d(?:\s?[ap]\.?m\b\.?)?"
                         r"(?![\w:]|[.,]\d)", re.IGNORECASE)
_AT_PLACE = re.compile(r"\b(?:in|at|near)\s+$", re.IGNORECASE)
# "<verb> [particle] by [the]": "written down by", "published by the"
_BY_DOER = re.compile(r"\b[a-z]{2,}(?:\s+(?:down|up|out|off|over))?\s+by\s+(?:the\s+)?$")
# A name of two or more capitalised words ("Ilaria Benvenuti"), not one ("US", "Tarvesa"),
# nor one that goes on with another capitalised word ("by US First Lady Michelle Obama").
_FULL_NAME = re.compile(r"[A-Z][\w’'.-]*(?:\s+[A-Z][\w’'.-]*)+")
_NAME_GOES_ON = re.compile(r"\s+[A-Z]")
POSSESSIVE = re.compile(r"^[’']s\b")  # "Harriet's": the name owns what follows
_DECADE = re.compile(r"\d0[’']?s\b")  # "the 1600s", "the '90s": any year in them
CLOCK = re.compile(r"\d\s*(?:[ap]\.?m\b\.?|o[’']clock\b)|\b\d{1,2}:\d{2}\b", re.IGNORECASE)
_COUNTS = frozenset(("CARDINAL", "QUANTITY"))
# A length of time and nothing else ("two days", "nearly 40 years", "several months"): no
# answer to "when" ("two days later", "in two years", "the 1990s" are not matched).
DURATION = re.compile(
    r"^(?:(?:about|around|almost|nearly|over|some|just|only|more than|less than|at least)\s+)?"
    r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|"
    r"thirty|forty|fifty|sixty|hundred|a few|few|several|many|\d[\d,.]*)(?:[\s-]\w+)?\s+"
    rf"(?:(?:{'|'.join(sorted(TIME_UNITS - {'century'}))})s?|century|centuries)$",
    re.IGNORECASE)


# Contact details by their form (the entity model labels none of them): an address with
# "@", a link that starts with a scheme or "www.", a phone number of 7 to 15 digits in groups.
CONTACT_FORMS = {
    "EMAIL": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}"),
    "URL": re.compile(r"\b(?:https?://|www\.)[^\s<>\"“”']*[^\s<>\"“”'.,;:!?)\]]"),
    "PHONE": re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{2,5}"
                        r"(?:[ .-]\d{2,6}){1,4}(?![\w-])"),
}
_PHONE_DIGITS = (7, 15)
_YEARS = re.compile(r"(?:1[5-9]|20)\d\d\s*[-–.]\s*(?:1[5-9]|20)\d\d")  # "1990-1995"
# The words that ask for a contact detail, which its form says in a sentence ("x@y.org" is
# an email address); not the ones that say which ("fax", "mobile"): the sentence must.
CONTACT_TERMS = frozenset(tokenize(" ".join(sorted(CONTACT_WORDS)) + " e-mail web"))


def contact_mentions(sentence: Sentence, wants: Sequence[str]) -> tuple[Mention, ...]:
    """The sentence's contact details of the kinds `wants` asks for, as mentions."""
    out = []
    for label in wants:
        form = CONTACT_FORMS.get(label)
        for m in form.finditer(sentence.text) if form else ():
            digits = sum(ch.isdigit() for ch in m.group())
            if label == "PHONE" and (not _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]
                                     or _YEARS.fullmatch(m.group())):
                continue
            out.append(Mention(label, sentence.start + m.start(), sentence.start + m.end(),
                               m.group(), m.group().lower()))
    return tuple(out)


_DIALLED = frozenset(("DATE", "TIME", "CARDINAL", "QUANTITY"))
_DIGIT_GROUPS = re.compile(r"\d+")


def _phone_number(text: str) -> bool:
    """Is `text` a phone number ("0800 046 7731", "+44 20 7946 0312", "(01632) 960 431"):
    7 to 15 digits in groups, opening with a country or area code in brackets, or parted by
    spaces into groups other than thousands ("10 000 000" is a count)?"""
    if CONTACT_FORMS["PHONE"].fullmatch(text.strip()) is None:
        return False
    groups = _DIGIT_GROUPS.findall(text)
    if not _PHONE_DIGITS[0] <= sum(len(g) for g in groups) <= _PHONE_DIGITS[1]:
        return False
    return text.lstrip()[:1] in "+(" or (
        re.fullmatch(r"[\d ]+", text.strip()) is not None
        and any(len(g) != 3 for g in groups[1:]))


_CURRENCY = frozenset("$€£¥₹")
# Money named in words ("four pounds and sixty pence"), which the entity model may miss.
CURRENCY_WORDS = re.compile(rf"[{''.join(sorted(_CURRENCY))}]|"
                            r"\b(?:dollars?|euros?|pounds?|cents?|pence|penny|pennies|"
                            r"yen|rupees?|francs?|shillings?|pesos?|yuan|lira|kronor|kronur|"
                            r"krona|krone|kroner|rand|guineas?)\b", re.IGNORECASE)
# A currency named right after a number ("40 euros", "3 million dollars").
_CURRENCY_AFTER = re.compile(
    rf"\s+(?:(?:million|billion|thousand)\s+)?(?:{CURRENCY_WORDS.pattern})", re.IGNORECASE)
_AMOUNT = re.compile(rf"\d|{CURRENCY_WORDS.pattern}|\b(?:billion|million|thousand|hundred)\b",
                     re.IGNORECASE)


# A number and nothing else ("386", "1,050", "2.5"), which the small model may label a name
_BARE_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAMES = frozenset(NAME)


def _relabel(mentions: tuple[Mention, ...], sentence: Sentence, places: bool,
             numbers: bool = True, persons: bool = False) -> tuple[Mention, ...]:
    """Mend mistakes of the small English model. An "amount of money" with no number or
    currency in it ("## Contact") is none; one labelled without the currency sign before
    it ("$15" as "15") gets its sign back, and a number whose currency is named after it
    ("40 euros", labelled a count) is one. A count or
    quantity with a clock time in it ("8 am to 6 pm") is a time, never a number; one in
    pence ("45p a mile") is money, one with its unit ("180C", "85" of "85g") a quantity. A
    list's own number ("1. Heat the oven") and markup ("#") are no numbers, and when a
    number is wanted (`numbers`) those the model missed are counts (`_missed_numbers`). A
    date written year-month-day ("2026-09-18") is a date.
    When a place is wanted (`places`), a name right after "in", "at" or "near" is one
    ("died at Moffat", labelled a person), unless it is a possessive ("at Harriet's house"),
    and so is a path ("~/.config/app.toml"). When a person is wanted (`persons`), a place
    right after a verb and "by" is the doer when it reads as a full name ("written down by
    Ilaria Benvenuti", labelled a place; not "inspired by US First Lady …")."""
    out = []
    text, at = sentence.text, sentence.start
    marker = _LIST_NUMBER.match(text)
    found = (*mentions, *_missed_numbers(mentions, sentence, marker)) if numbers else mentions
    if places:  # "Where are the settings stored?": "in ~/.config/rivet/config.toml"
        found += tuple(Mention("FAC", at + p.start(), at + p.end(), p.group())
                       for p in _PATH.finditer(text))
    dates = [Mention("DATE", at + d.start(), at + d.end(), d.group())
             for d in _ISO_DATE.finditer(text)]  # "2026-09-18", which the model misses
    if dates:
        found = (*(m for m in found if m.label == "NP" or not any(
            d.start < m.end and m.start < d.end for d in dates)), *dates)
    # "at 10:10", a time of day the model may miss (or take in part, "10", for a number):
    # one overlapping no mention but those inside it
    clocks = [Mention("TIME", at + c.start(), at + c.end(), c.group())
              for c in _CLOCK_TIME.finditer(text)]
    clocks = [c for c in clocks if not any(
        m.label != "NP" and m.start < c.end and c.start < m.end
        and not (c.start <= m.start and m.end <= c.end) for m in found)]
    if clocks:
        found = (*(m for m in found if m.label == "NP" or not any(
            c.start <= m.start and m.end <= c.end for c in clocks)), *clocks)
    found = tuple(part for m in found for part in _by_cell(m))
    for m in found:
        if m.label == "MONEY" and not _AMOUNT.search(m.text):
            continue  # "## Contact", labelled an amount of money
        if m.label in _DIALLED and _phone_number(m.text):
            continue  # "0800 046 7731", labelled a date: a phone number, neither date nor count
        if m.label in _NUMBERS and (not any(ch.isalnum() for ch in m.text) or (
                marker is not None and m.start - at == marker.start(1))):
            continue  # "#" of "# Lemon cake"; the "1" of "1. Heat the oven", a list's number
        if m.label in _NAMES and _BARE_NUMBER.fullmatch(m.text):
            m = replace(m, label="CARDINAL")  # "386" of "386 staff", labelled a product
        if m.label in _COUNTS and _IN_PENCE.match(m.text):
            m = replace(m, label="MONEY")  # "45p a mile", labelled a quantity
        elif m.label == "CARDINAL" and (pence := _PENCE.match(text, m.end - at)):
            m = replace(m, label="MONEY", end=m.end + len(pence.group()),
                        text=m.text + pence.group())  # "45p a mile", "99¢"
        elif m.label == "CARDINAL" and (unit := _UNIT_AFTER.match(text, m.end - at)):
            m = replace(m, label="QUANTITY", end=m.end + len(unit.group()),
                        text=m.text + unit.group())  # "85" of "85g"
        elif m.label == "CARDINAL" and _WITH_UNIT.fullmatch(m.text):
            m = replace(m, label="QUANTITY")  # "180C"
        if m.label in ("MONEY", "CARDINAL") and m.start > sentence.start \
                and sentence.text[m.start - sentence.start - 1] in _CURRENCY:
            m = replace(m, label="MONEY", start=m.start - 1,  # "$15", labelled without its "$"
                        text=sentence.text[m.start - sentence.start - 1:m.end - sentence.start])
        if m.label == "CARDINAL":  # "40 euros", labelled a number without its currency
            named = _CURRENCY_AFTER.match(sentence.text, m.end - sentence.start)
            if named:
                m = replace(m, label="MONEY", end=m.end + len(named.group()),
                            text=m.text + named.group())
        if m.label in _COUNTS and CLOCK.search(m.text):
            m = replace(m, label="TIME")
        elif persons and m.label == "GPE" and _BY_DOER.search(text[:m.start - at]) \
                and _FULL_NAME.fullmatch(m.text) and not _NAME_GOES_ON.match(text, m.end - at):
            m = replace(m, label="PERSON")  # "written down by Ilaria Benvenuti"
        elif places and m.label == "PERSON":
            before = sentence.text[:m.start - sentence.start]
            after = sentence.text[m.end - sentence.start:]
            if _AT_PLACE.search(before) and not POSSESSIVE.match(after):
                m = replace(m, label="GPE")
        out.append(m)
    return tuple(out)


_CELL_EDGE = re.compile(r"\s*\|\s*")


def _by_cell(mention: Mention) -> tuple[Mention, ...]:
    """A mention that runs across a table's cells ("9am | 4pm" of "| Sunday | 9am | 4pm |",
    one time to the entity model) as one mention per cell: each cell is its own answer."""
    if mention.label == "NP" or "|" not in mention.text:
        return (mention,)
    parts, at = [], 0
    for edge in [*_CELL_EDGE.finditer(mention.text), None]:
        end = edge.start() if edge is not None else len(mention.text)
        if any(ch.isalnum() for ch in mention.text[at:end]):
            parts.append(replace(mention, start=mention.start + at, end=mention.start + end,
                                 text=mention.text[at:end]))
        if edge is not None:
            at = edge.end()
    return tuple(parts)


def _missed_numbers(mentions: tuple[Mention, ...], sentence: Sentence,
                    marker: re.Match[str] | None) -> list[Mention]:
    """Numbers the entity model missed ("- 4 eggs", "- 225g butter": list items are short of
    context), as counts; `_relabel` makes them quantities or amounts by what follows."""
    text, at = sentence.text, sentence.start
    out = []
    for number in _DIGITS.finditer(text):
        a, b = at + number.start(), at + number.end()
        if any(m.start < b and a < m.end for m in mentions if m.label != "NP") or (
                marker is not None and number.start() == marker.start(1)):
            continue
        if b - at < len(text) and text[b - at].isalnum() \
                and not _UNIT_AFTER.match(text, b - at) and not _PENCE.match(text, b - at):
            continue  # "A1", "3rd", "4x4": no number of anything
        out.append(Mention("CARDINAL", a, b, number.group()))
    return out


# A file's or a folder's path ("~/.config/rivet/config.toml", "/var/log/rivet", "C:\\Rivet"):
# where a program keeps something, as a place is where a thing is.
_PATH = re.compile(r"(?<![\w/.:-])(?:~|\.{1,2})?(?:/[\w.@+-]+){2,}/?|(?<!\w)[A-Z]:\\[^\s`'\"]+")
_NUMBERS = frozenset(("CARDINAL", "QUANTITY", "PERCENT", "ORDINAL", "MONEY"))
# A list item's or a clause's number opening the sentence ("1. Heat the oven", "2) Stir",
# "3.1 The rent is …"): it orders the text, it is no answer.
_LIST_NUMBER = re.compile(r"\s*(?:[-*•]\s+)?(\d+(?:\.\d+)*(?:[.)]\s|(?<=\.\d)\s+(?=[A-Z])|"
                          r"(?<=\.\d\d)\s+(?=[A-Z])))")
_DIGITS = re.compile(r"(?<![\w.,/:#-])\d+(?:[.,]\d+)*[½¼¾]?(?![%/]|[.,]\d)")
_UNIT_AFTER = re.compile(
    r"\s?(?:mg|g|kg|lbs?|oz|ml|cl|dl|l|litres?|liters?|mm|cm|km|m|in|inch(?:es)?|ft|feet|foot|"
    r"yards?|miles?|mph|kph|km/h|m/s|°\s?[CF]|[CF](?=\s|$|[),.;])|kWh|kW|MW|W|V|mAh|Ah|Hz|kHz|"
    r"MHz|GHz|KB|MB|GB|TB|px|hours?|hrs?|minutes?|mins?|seconds?|secs?|(?:milli|centi|kilo)?"
    r"(?:grams?|grammes?|met(?:re|er)s?|lit(?:re|er)s?)|ounces?|inches|watts?|volts?|amps?|"
    r"hertz|degrees?)(?![\w/])")


_PENCE = re.compile(r"(?:p|¢)(?!\w)")  # a sum in pence or cents, written after its number
_IN_PENCE = re.compile(r"[\d.,]*\d(?:p|¢)(?!\w)")
_WITH_UNIT = re.compile(rf"[\d.,]+[½¼¾]?{_UNIT_AFTER.pattern}")


_CLAUSE = re.compile(r"[;:]|,?\s+(?:but|whereas|while|although|though)\s+", re.IGNORECASE)


def negated_clause(text: str, start: int, end: int) -> bool:
    """Is the span text[start:end] in a negated clause of the sentence? Clauses are split
    at semicolons, colons and "but", "whereas", "while", "although", "though"."""
    cuts = [0] + [m.end() for m in _CLAUSE.finditer(text)] + [len(text)]
    for a, b in zip(cuts, cuts[1:], strict=False):
        if a <= start < b or (a < end <= b):
            return bool(_NEGATION.search(text[a:b]))
    return bool(_NEGATION.search(text))


def _overlaps(mention: Mention, entity_text: str) -> bool:
    a, b = mention.text.lower(), entity_text.lower()
    return a == b or (len(b) > 3 and b in a and len(a) - len(b) < 4)
