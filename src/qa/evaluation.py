"""Evaluation step: a test set in, a flat metric object and predictions out.

In: a JSON-lines test set or a SQuAD 2.0/1.1 file (`qa.testset`). Out: a flat dict of metrics
keyed by name: the official SQuAD v2 object (`exact`, `f1`, `total`, `HasAns_*`, `NoAns_*`,
`best_*`, in percent, `qa.metrics`), beside qa's own retrieval and citation measures (hit@k,
MRR, gold in the best sentence, answer contains gold, citation exactness re-checked against
the document files, support, abstention precision/recall, warm latency percentiles) and the
number of skipped bad questions. Predictions are streamed to `--out`/`--csv` as they come
(`qa.eval_report`), so memory holds only a few numbers per question (`Outcomes`).

The SQuAD prediction is `schema.short_answer` (the lead span; the quotes where there is no
lead; "" for an abstention) and its no-answer probability is `1 - confidence`.

`--baseline` runs the same harness on a plain dense-only pipeline (same model, passages
ranked by cosine alone, no BM25, no sentence selection, never abstains), so the gain of each
part of qa is measured, not claimed.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import re
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, overload

from qa.config import Settings
from qa.errors import BadQuestion, BadSetting, QAError
from qa.loaders import BadDocument, decode_text
from qa.metrics import (  # noqa: F401 - exact_match, token_f1: used by scripts/benchmarks
    Scored,
    contains_gold,
    exact_match,
    normalize_loose,
    percentile,
    squad_scores,
    squad_v2_metrics,
    token_f1,
)
from qa.nlp import Analyzer, make_analyzer
from qa.pipeline import Pipeline, check_question
from qa.progress import Progress
from qa.retrieval import Query, search
from qa.schema import answer_json, answer_plain, clean_turn, short_answer, turn_name
from qa.store import Index, claimed_index
from qa.testset import (
    Item,
    Problem,
    TestSet,
    build_corpus,
    corpus_settings,
    load_testset,
    parse_jsonl,
)
from qa.types import Answer, Citation, Span, Turn

Asker = Callable[[str, list[str | Turn], int], Answer]  # question, earlier turns, k


def baseline_asker(pipeline: Pipeline) -> Asker:
    """Dense-only: rank passages by cosine alone and quote the top passage; never abstain."""
    from qa.retrieval import Weights

    dense_only = Weights(dense=1.0, lexical=0.0, sentence=0.0, sentence_lexical=0.0)

    def ask(question: str, history: list[str | Turn], k: int) -> Answer:
        # the check qa's own ask makes (BadQuestion: skipped), so both score the same set
        check_turns(question, history, pipeline.analyzer)
        index = pipeline.index
        vector = pipeline.embedder.embed([question])[0]
        hits, _ = search(index, vector, Query(question), k, dense_only)
        # No sentence selection: each hit's "sentence" is just the passage's first sentence.
        hits = [
            type(h)(h.rank, h.chunk, h.dense_score, h.chunk.sentences[0], h.dense_score,
                    h.dense_score)
            for h in hits
        ]
        top = hits[0].chunk
        citation = Citation(1, top.doc_id, top.id, Span(top.start, top.end, top.text),
                            Span(top.start, top.end, top.text))
        return Answer(question, f"{top.text} [1]", False, hits[0].dense_score, (citation,),
                      tuple(hits))

    return ask


def parse_items(lines: Iterable[str]) -> tuple[list[Item], list[str]]:
    """Items of JSON lines and one "line N: why" per bad line (for scripts and benchmarks)."""
    items, problems = parse_jsonl(lines)
    return items, [str(p) for p in problems]


def load_items(path: Path) -> tuple[list[Item], list[str]]:
    """A JSON-lines test set read whole (for scripts and benchmarks; `qa eval` uses
    `qa.testset.load_testset`, which also reads SQuAD files)."""
    testset = load_testset(path)
    if testset.format == "squad":
        raise QAError(f"{str(path)!r} is a SQuAD file, not JSON lines")
    return testset.items, [str(p) for p in testset.problems]


# -- one question ----------------------------------------------------------------------------


class SourceTexts:
    """Document texts read again from their files, to check cited offsets independently of
    the copy the answer was cut from (formats with extracted text fall back to the index)."""

    def __init__(self, index: Index, seeds_dir: Path | None = None) -> None:
        self.index = index
        self.seeds_dir = seeds_dir  # where the files are now (an index may have moved)
        self._texts: dict[str, str | None] = {}

    def get(self, doc_id: str) -> str | None:
        if doc_id not in self._texts:
            doc = self.index.documents.get(doc_id)
            text: str | None = None
            if doc is not None:
                text = doc.text
                if getattr(doc, "kind", "txt") in ("txt", "md"):
                    path = Path(doc.path)
                    if self.seeds_dir is not None and not path.exists():
                        path = self.seeds_dir / path.name
                    try:  # decoded as the loader decodes it (UTF-16 too), no more
                        text = decode_text(path.read_bytes(), path.name)
                    except (OSError, BadDocument):
                        text = None
            self._texts[doc_id] = text
        return self._texts[doc_id]


def _span_ok(source: str | None, span: dict[str, Any]) -> bool:
    start, end, text = span.get("start"), span.get("end"), span.get("text")
    return (source is not None and isinstance(start, int) and isinstance(end, int)
            and 0 <= start <= end <= len(source) and source[start:end] == text)


def check_spans(prediction: dict[str, Any], sources: SourceTexts) -> tuple[int, int]:
    """(spans checked, spans exact): every cited passage, quote and the lead, as written in
    the prediction, against the document text read from its file."""
    checked = exact = 0
    for c in prediction["citations"]:
        source = sources.get(c["doc_id"])
        for span in (c, c["quote"]):
            checked += 1
            exact += _span_ok(source, span)
    lead = prediction.get("lead")
    if lead:
        checked += 1
        exact += _span_ok(sources.get(lead["doc_id"]), lead)
    return checked, exact


def prediction_record(item: Item, answer: Answer, latency_ms: float) -> dict[str, Any]:
    """One line of `--out`: the question, its gold, the answer (wire format) and timing."""
    record: dict[str, Any] = {"id": item.id, "question": item.question}
    if item.kind:
        record["kind"] = item.kind
    record.update(gold=list(item.answers), answerable=bool(item.answers),
                  prediction=short_answer(answer), **answer_json(answer))
    record["no_answer_probability"] = round(1.0 - answer.confidence, 6)
    record["latency_ms"] = round(latency_ms, 3)
    return record


LEAD_RIGHT_F1 = 0.5  # a lead counts as right from this SQuAD token F1 against a gold


@dataclass(frozen=True, slots=True)  # slots: one per question, kept for the whole run
class Outcome:
    """The few numbers kept per question (the predictions themselves are streamed out)."""

    kind: str | None
    has_answer: bool
    abstained: bool
    confidence: float
    latency_ms: float
    first_rank: int | None  # rank of the first retrieved passage holding a gold answer
    sentence_hit: bool  # the top passage's best sentence holds a gold answer
    contains: bool  # the answer text holds a gold answer
    supports: bool  # the quoted sentences hold a gold answer
    squad: Scored
    spans: int
    spans_exact: int
    lead: bool = False  # the answer showed a lead (a bold short answer)
    lead_right: bool = False  # ... with SQuAD token F1 >= 0.5 against a gold answer
    words: int = 0  # words of the answer as shown (`schema.answer_plain`, split at spaces)

    @property
    def right(self) -> bool:
        """Answerable: answered and the answer holds the gold; unanswerable: abstained."""
        return (not self.abstained and self.contains) if self.has_answer else self.abstained

    @property
    def sentence_right(self) -> bool:
        """What `confidence` estimates: the sentence quoted first (for an abstention, the
        closest one it cites) holds a gold answer, whether or not it was given as the answer.
        A right abstention is not a right answer at its low confidence."""
        return self.has_answer and self.supports

    @property
    def group(self) -> str:
        return self.kind or ("answerable" if self.has_answer else "unanswerable")


_FLAGS = ("has_answer", "abstained", "sentence_hit", "contains", "supports", "lead",
          "lead_right", "answered")  # Outcome's booleans and Scored.answered, one bit each


class Outcomes(Sequence[Outcome]):
    """A run's outcomes, kept column by column in arrays (about 60 bytes a question, and no
    object per question): a list of `Outcome`s took about 300 bytes a question, and a run
    may ask a million. Read back as `Outcome`s, one at a time."""

    def __init__(self, outcomes: Iterable[Outcome] = ()) -> None:
        self._kinds: dict[str | None, int] = {}
        self._kind_names: list[str | None] = []
        self._kind = array("I")
        self._flags = array("H")
        self._first_rank = array("i")  # 0: none
        self._spans = array("I")
        self._spans_exact = array("I")
        self._words = array("I")
        self._reals = {name: array("d") for name in
                       ("confidence", "latency_ms", "exact", "f1", "na_prob")}
        for outcome in outcomes:
            self.append(outcome)

    def append(self, o: Outcome) -> None:
        kind = self._kinds.setdefault(o.kind, len(self._kind_names))
        if kind == len(self._kind_names):
            self._kind_names.append(o.kind)
        self._kind.append(kind)
        values = (o.has_answer, o.abstained, o.sentence_hit, o.contains, o.supports, o.lead,
                  o.lead_right, o.squad.answered)
        self._flags.append(sum(1 << bit for bit, on in enumerate(values) if on))
        self._first_rank.append(o.first_rank or 0)
        self._spans.append(o.spans)
        self._spans_exact.append(o.spans_exact)
        self._words.append(o.words)
        for name, value in (("confidence", o.confidence), ("latency_ms", o.latency_ms),
                            ("exact", o.squad.exact), ("f1", o.squad.f1),
                            ("na_prob", o.squad.na_prob)):
            self._reals[name].append(value)

    def __len__(self) -> int:
        return len(self._kind)

    @overload
    def __getitem__(self, i: int) -> Outcome: ...

    @overload
    def __getitem__(self, i: slice) -> list[Outcome]: ...

    def __getitem__(self, i: int | slice) -> Outcome | list[Outcome]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        flags = self._flags[i]
        on = {name: bool(flags >> bit & 1) for bit, name in enumerate(_FLAGS)}
        reals = {name: column[i] for name, column in self._reals.items()}
        exact = reals["exact"]
        return Outcome(
            kind=self._kind_names[self._kind[i]], has_answer=on["has_answer"],
            abstained=on["abstained"], confidence=reals["confidence"],
            latency_ms=reals["latency_ms"], first_rank=self._first_rank[i] or None,
            sentence_hit=on["sentence_hit"], contains=on["contains"], supports=on["supports"],
            squad=Scored(on["has_answer"], on["answered"],
                         int(exact) if exact.is_integer() else exact, reals["f1"],
                         reals["na_prob"]),
            spans=self._spans[i], spans_exact=self._spans_exact[i], lead=on["lead"],
            lead_right=on["lead_right"], words=self._words[i])


def score(item: Item, answer: Answer, record: dict[str, Any], sources: SourceTexts) -> Outcome:
    golds = list(item.answers)
    prediction = record["prediction"]
    exact, f1 = squad_scores(prediction, golds)
    ranks = [h.rank for h in answer.passages if contains_gold(h.chunk.text, golds)]
    spans, spans_exact = check_spans(record, sources)
    return Outcome(
        kind=item.kind, has_answer=bool(golds), abstained=answer.abstained,
        confidence=answer.confidence, latency_ms=record["latency_ms"],
        first_rank=min(ranks) if ranks else None,
        sentence_hit=bool(answer.passages)
        and contains_gold(answer.passages[0].sentence.text, golds),
        contains=contains_gold(answer.text, golds) or contains_gold(prediction, golds),
        supports=contains_gold(" ".join(c.quote.text for c in answer.citations), golds),
        squad=Scored(bool(golds), bool(prediction), exact, f1,
                     record["no_answer_probability"]),
        spans=spans, spans_exact=spans_exact, lead=answer.lead is not None,
        lead_right=answer.lead is not None and lead_correct(answer.lead.span.text, golds),
        words=len(answer_plain(answer).split()),
    )


def lead_correct(lead: str, golds: Sequence[str]) -> bool:
    """A lead is right when its official SQuAD token F1 (`squad_scores`, the reported `f1`'s
    own rule: ASCII punctuation only, the best gold, golds that normalise to nothing dropped)
    reaches LEAD_RIGHT_F1; a lead on an unanswerable question is wrong."""
    return bool(golds) and squad_scores(lead, golds)[1] >= LEAD_RIGHT_F1


# -- the run ---------------------------------------------------------------------------------


Asked = tuple[str, tuple[Turn, ...], int]  # a question, the turns before it, k
MAX_REMEMBERED = 10_000  # answers kept for reuse as earlier turns (their text only)


class Answered:
    """The answers a run has given, by what was asked (the question, the turns before it with
    their answers, k): an earlier turn of a follow-up that the run already asked, as a
    question of the set or as another follow-up's turn, is not asked again. `ask` is a pure
    function of these, so the reused answer is the one a new ask would give. Bounded: at most
    MAX_REMEMBERED answers, the oldest forgotten first."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self.limit = limit
        self._texts: dict[Asked, str] = {}
        self.reused = 0

    def get(self, key: Asked) -> str | None:
        text = self._texts.get(key)
        self.reused += text is not None
        return text

    def put(self, key: Asked, text: str) -> None:
        self._texts[key] = text
        if len(self._texts) > self.limit:
            del self._texts[next(iter(self._texts))]


def replay(pipeline: Pipeline, history: Sequence[str | Turn], k: int,
           answered: Answered | None = None) -> list[Turn]:
    """The conversation as a user had it: each earlier question answered in turn, so a
    follow-up sees the answers that were shown (as in the web chat). A turn that carries its
    answer (the test set gives it), or one `answered` already holds, is not asked again."""
    turns: list[Turn] = []
    for n, turn in enumerate(history, start=1):
        given = turn.answer if isinstance(turn, Turn) else None
        text = clean_turn(turn.question if isinstance(turn, Turn) else turn, n)
        key = (text, tuple(turns), k)
        shown = given if given is not None else (
            answered.get(key) if answered is not None else None)
        if shown is None:
            try:
                shown = pipeline.ask(text, turns, k).text
            except BadQuestion as exc:
                raise BadQuestion(f"{turn_name(n)}: {exc}") from None
            if answered is not None:
                answered.put(key, shown)
        turns.append(Turn(text, shown))
    return turns


def _where(item: Item) -> str:
    return f"{item.where} (id {item.id!r})" if item.where else f"id {item.id!r}"


def screen(items: Sequence[Item], analyzer: Analyzer) -> list[Problem]:
    """The questions a run would skip (`BadQuestion`), found before it: each history turn,
    then the question, through `check_question`, the check every `ask` makes."""
    problems: list[Problem] = []
    for item in items:
        try:
            check_turns(item.question, item.history, analyzer)
        except BadQuestion as exc:
            problems.append(Problem(_where(item), str(exc)))
    return problems


MAX_GOLD_SCAN = 2_000_000_000  # characters searched for golds, in all (~3 s)
MAX_GOLD_PROBES = 20_000_000  # places of words tried for golds, in all (~5 s)
_WORD = re.compile(r"\S+")
_OFFSET = (1 << 40) - 1  # a place: document number << 40 | offset in its normalised text


@dataclass
class _Corpus:
    """The documents normalised for `missing_golds`, their words, where the words that golds
    need stand (document number << 40 | offset), and what may still be read (characters
    searched, places tried)."""

    texts: list[str]
    words: set[str]
    lexicon: str  # every word once, each between line feeds
    ordered: list[str]  # the words, sorted
    places: dict[str, array[int]]
    scan: int
    probes: int

    def search(self, wanted: str, within: Sequence[str]) -> bool | None:
        """Is `wanted` in one of the texts `within`? None: over budget."""
        if self.scan < sum(map(len, within)):
            return None
        for text in within:
            at = text.find(wanted)
            self.scan -= len(text) if at < 0 else at + len(wanted)
            if at >= 0:
                return True
        return False

    def tried_at(self, wanted: str, word: str, shift: int) -> bool | None:
        """Does `wanted` start `shift` characters before a place of `word`? None: over budget."""
        found = self.places.get(word, ())
        if len(found) > self.probes:
            return None
        self.probes -= len(found)
        return any(self.texts[at >> 40].startswith(wanted, (at & _OFFSET) - shift)
                   for at in found if at & _OFFSET >= shift)


def _with_prefix(ordered: list[str], prefix: str) -> list[str]:
    start = bisect.bisect_left(ordered, prefix)
    end = bisect.bisect_left(ordered, prefix + "\U0010ffff")
    return ordered[start:end]


def _gold_in(corpus: _Corpus, wanted: str, tokens: list[str]) -> bool | None:
    """Is `wanted` (normalised, split into `tokens`) a substring of the corpus text? None when
    the budget is spent. A gold's inner words are whole words wherever it stands, its first
    word ends one and its last begins one; so one word is in a word of the lexicon, two words
    stand where a word beginning with the second does, and more stand where their rarest inner
    word does. Where the places would cost too much, the text is searched."""
    if any(t not in corpus.words for t in tokens[1:-1]):
        return False
    if len(tokens) == 1:
        return True if wanted in corpus.words else corpus.search(wanted, [corpus.lexicon])
    decided: bool | None = None
    if len(tokens) == 2:
        after = _with_prefix(corpus.ordered, tokens[1])
        if sum(len(corpus.places[w]) for w in after) <= corpus.probes:
            shift = len(tokens[0]) + 1
            decided = any(corpus.tried_at(tokens[0] + " ", w, shift) for w in after)
    else:
        i = min(range(1, len(tokens) - 1), key=lambda j: len(corpus.places[tokens[j]]))
        decided = corpus.tried_at(wanted, tokens[i], sum(len(t) + 1 for t in tokens[:i]))
    return decided if decided is not None else corpus.search(wanted, corpus.texts)


def missing_golds(items: Sequence[Item], index: Index, budget: int | None = None,
                  probes: int | None = None) -> list[Problem]:
    """A note per gold answer that no indexed document holds (both `normalize_loose`d), e.g.
    a typo or a gold from another document: no answer can match it, and the figures alone
    would not show why. (A SQuAD file's golds are checked against their paragraph.)
    `gold_presence` decides; golds it left unchecked (over its budget) get one note."""
    return gold_notes(items, *gold_presence(items, index, budget, probes))


def gold_presence(items: Sequence[Item], index: Index, budget: int | None = None,
                  probes: int | None = None) -> tuple[dict[str, bool | None], int]:
    """Whether each distinct gold answer (`normalize_loose`d) is in an indexed document (None:
    not looked for, over the budget), and the characters of the documents.

    The documents are normalised once (`_Corpus`) and each distinct gold is decided once
    (`_gold_in`), mostly from the words and where they stand, not by searching the text once
    per gold and document. Searches read at most `budget` characters in all (MAX_GOLD_SCAN)
    and at most `probes` places are tried (MAX_GOLD_PROBES): golds left over are None."""
    golds = {w: w.split() for item in items for g in item.answers if (w := normalize_loose(g))}
    words: set[str] = set()
    parts = []
    for doc_id in index.documents:
        text = normalize_loose(index.source(doc_id))
        words.update(text.split())
        parts.append(text)
    ordered = sorted(words)
    needed = set()
    for tokens in golds.values():
        if len(tokens) == 2:
            needed.update(_with_prefix(ordered, tokens[1]))
        else:
            needed.update(t for t in tokens[1:-1] if t in words)
    places: dict[str, array[int]] = {w: array("q") for w in needed}
    for number, text in enumerate(parts if needed else ()):
        for match in _WORD.finditer(text):
            if (found := places.get(match.group())) is not None:
                found.append(number << 40 | match.start())
    corpus = _Corpus(parts, words, "\n" + "\n".join(ordered) + "\n", ordered, places,
                     MAX_GOLD_SCAN if budget is None else budget,
                     MAX_GOLD_PROBES if probes is None else probes)
    return {w: _gold_in(corpus, w, tokens) for w, tokens in golds.items()}, sum(map(len, parts))


def gold_notes(items: Sequence[Item], there: dict[str, bool | None], chars: int
               ) -> list[Problem]:
    """The notes of `missing_golds` from `gold_presence`'s decisions."""
    notes = [Problem(_where(item), f"gold answer {gold!r} is in none of the documents "
                                   "(scored as given)")
             for item in items for gold in item.answers
             if (w := normalize_loose(gold)) and there[w] is False]
    unchecked = sum(v is None for v in there.values())  # over the budget
    if unchecked:
        notes.append(Problem("gold answers", (
            f"{unchecked:,} of {len(there):,} distinct gold answer(s) were not looked for in "
            f"the documents ({chars:,} characters: too long to search for each)")))
    return notes


def check_turns(question: str, history: Sequence[str | Turn], analyzer: Analyzer) -> None:
    """The checks `ask` makes: each history turn cleaned (`clean_turn`: blank, too long),
    then `check_question` on the question. An earlier turn that asked nothing ("?", "👍")
    is no reason to skip a line: `ask` reads the question on its own after it."""
    for n, turn in enumerate(history, start=1):
        clean_turn(turn.question if isinstance(turn, Turn) else turn, n)
    check_question(question, analyzer)


def evaluate(
    pipeline: Pipeline,
    items: Sequence[Item],
    k: int = 5,
    asker: Asker | None = None,
    sink: Callable[[dict[str, Any]], None] | None = None,
    on_problem: Callable[[Problem], None] | None = None,
) -> tuple[Metrics, Outcomes]:
    """Ask every item (warm process), hand each prediction to `sink`, return the metrics.

    A question the pipeline refuses (`BadQuestion`) is reported to `on_problem`, skipped and
    counted in `skipped`; one on which it fails is reported and counted in `errors` (set
    QA_DEBUG=1 to stop with the traceback instead).
    """
    replayed: list[float] = []  # when the conversation was replayed: the timed ask starts

    answered = Answered()

    def qa_ask(question: str, history: list[str | Turn], kk: int) -> Answer:
        turns = replay(pipeline, history, kk, answered)
        replayed.append(time.perf_counter())
        answer = pipeline.ask(question, turns, kk)
        answered.put((question, tuple(turns), kk), answer.text)
        return answer

    ask: Asker = asker or qa_ask
    sources = SourceTexts(pipeline.index, pipeline.settings.seeds_dir)
    ask("warm-up question about the documents", [], k)  # model and caches warm before timing
    outcomes = Outcomes()
    skipped = errors = 0
    with Progress("eval", total=len(items), unit="questions") as bar:
        for item in items:
            started = time.perf_counter()
            replayed.clear()
            try:
                answer = ask(item.question, list(item.history), k)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - one failing question must not lose the run
                if os.environ.get("QA_DEBUG"):
                    raise
                if isinstance(exc, BadQuestion):
                    skipped += 1
                    message = str(exc)
                else:
                    errors += 1
                    message = f"internal error: {type(exc).__name__}: {exc}"
                if on_problem:
                    with bar.above():  # not run on from the end of a live progress line
                        on_problem(Problem(_where(item), message))
                bar.update()
                continue
            # the question's own ask, not the earlier turns replayed before it
            started = replayed[-1] if replayed else started
            record = prediction_record(item, answer, (time.perf_counter() - started) * 1000)
            outcomes.append(score(item, answer, record, sources))
            if sink:
                sink(record)
            bar.update()
    metrics = aggregate(outcomes, k)
    metrics["skipped"] = skipped
    metrics["errors"] = errors
    return metrics, outcomes


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


Metrics = dict[str, float | None]  # None where undefined (a share of no questions)


def aggregate(outcomes: Sequence[Outcome], k: int | None = None) -> Metrics:
    """The flat metric object: SQuAD v2 (percent) first, then qa's own (fractions, ms). A
    share over no questions (hit@1 without answerable questions, abstention precision with
    no abstention, lead_correct with no lead) is None: undefined, not 0; so is hit@n when
    only `k` < n passages were retrieved. One pass of counts and sums: of each question, only
    its latency (for the percentiles) and the SQuAD columns are read again."""
    count: Counter[str] = Counter()
    ranks: Counter[int] = Counter()  # answerable questions by the rank of the first gold
    latencies = array("d")
    spans = spans_exact = words = 0
    for o in outcomes:
        latencies.append(o.latency_ms)
        words = max(words, o.words)
        spans += o.spans
        spans_exact += o.spans_exact
        count["abstained_all"] += o.abstained
        if not o.abstained:
            count["answered"] += 1
            count["lead"] += o.lead
        if o.lead:
            count["leads"] += 1
            count["lead_right"] += o.lead_right
        if not o.has_answer:
            count["no"] += 1
            count["abstained_no"] += o.abstained
            continue
        count["has"] += 1
        ranks[o.first_rank or 0] += 1
        count["sentence_hit"] += o.sentence_hit
        count["contains"] += o.contains and not o.abstained
        count["wrongly_abstained"] += o.abstained
        if not o.abstained:
            count["answered_has"] += 1
            count["supports"] += o.supports
    has, no = count["has"], count["no"]
    precision = _ratio(count["abstained_no"], count["abstained_all"])
    recall = _ratio(count["abstained_no"], no)
    f1: float | None = None
    if precision is not None and recall is not None:
        f1 = round(2 * precision * recall / (precision + recall), 4) if precision + recall \
            else 0.0

    def share(part: float, whole: int) -> float | None:  # a mean of 0/1 values
        return round(part / whole, 4) if whole else None

    def hits(n: int) -> float | None:
        if k is not None and n > k:
            return None
        return share(sum(c for r, c in ranks.items() if 0 < r <= n), has)

    # fmean's sum is math.fsum: exact whatever the order, so the same from the counts
    reciprocal = math.fsum(x for r, c in ranks.items() if r for x in repeat(1 / r, c))
    metrics: Metrics = {"questions": len(latencies), "answerable": has, "unanswerable": no}
    metrics.update(squad_v2_metrics(_SquadView(outcomes)))
    metrics.update({
        "hit@1": hits(1),
        "hit@3": hits(3),
        "hit@5": hits(5),
        "mrr": share(reciprocal, has),
        "sentence_hit@1": share(count["sentence_hit"], has),
        "answer_contains_gold": share(count["contains"], has),
        "citation_exact": _ratio(spans_exact, spans),
        "citation_supports_gold": share(count["supports"], count["answered_has"]),
        "abstained_unanswerable": recall,
        "wrongly_abstained": share(count["wrongly_abstained"], has),
        "abstention_precision": precision,
        "abstention_f1": f1,
        "lead_shown": share(count["lead"], count["answered"]),
        "lead_correct": share(count["lead_right"], count["leads"]),
        "answer_words_max": words,
        "latency_p50_ms": round(percentile(latencies, 50), 2),
        "latency_p95_ms": round(percentile(latencies, 95), 2),
        "latency_max_ms": round(max(latencies, default=0.0), 2),
    })
    return metrics


class _SquadView(Sequence[Scored]):
    """The `Scored` of each outcome, read as the SQuAD aggregate needs it (no list of them)."""

    def __init__(self, outcomes: Sequence[Outcome]) -> None:
        self.outcomes = outcomes

    def __len__(self) -> int:
        return len(self.outcomes)

    def __getitem__(self, i: Any) -> Any:
        return self.outcomes[i].squad


# -- the command -----------------------------------------------------------------------------


def format_table(metrics: Metrics) -> str:
    width = max(len(k) for k in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    for name, value in metrics.items():
        shown: Any = value
        if value is None:
            shown = "n/a"  # undefined: nothing to measure it on
        elif isinstance(value, float) and not name.endswith("_ms"):
            shown = f"{value:.4f}"
        lines.append(f"{name:<{width}}  {shown}")
    return "\n".join(lines)


MAX_SHOWN_PROBLEMS = 50  # bad questions (and notes) listed one a line; the rest counted
MAX_PROBLEM_KINDS = 1000  # distinct messages counted (beyond: counted, not named)


class _Listing:
    """Says bad questions (or notes) on stderr, the first MAX_SHOWN_PROBLEMS one a line: a
    test set of another shape (every line bad), or one run over a folder lacking some of its
    documents (a note per gold), printed thousands of lines. `flush` says how many more there
    were, for bad questions naming the most common problems (a note names its gold: no two
    alike)."""

    def __init__(self, path: Path, suffix: str = "", noun: str = "bad question(s)",
                 name_common: bool = True) -> None:
        self.path, self.suffix, self.noun, self.name_common = path, suffix, noun, name_common
        self.most = MAX_SHOWN_PROBLEMS
        self.listed = self.unlisted = 0
        self.kinds: Counter[str] = Counter()

    def __call__(self, problem: Problem) -> None:
        if self.listed < self.most:
            self.listed += 1
            print(f"qa: eval: {self.path}: {problem}{self.suffix}", file=sys.stderr)
            return
        self.unlisted += 1
        if self.name_common and (problem.message in self.kinds
                                 or len(self.kinds) < MAX_PROBLEM_KINDS):
            self.kinds[problem.message] += 1

    def flush(self) -> None:
        if not self.unlisted:
            return
        said = f"qa: eval: {self.path}: {self.unlisted:,} more {self.noun} not listed"
        if self.name_common:
            common = self.kinds.most_common(3)
            rest = ", ..." if sum(count for _, count in common) < self.unlisted else ""
            said += ": " + ", ".join(f"{message} ({count:,})" for message, count in common) + rest
        print(said, file=sys.stderr)
        self.unlisted = 0
        self.kinds.clear()


def _pipeline_for(testset: TestSet, settings: Settings) -> Pipeline:
    """The pipeline over the test set's documents: `seeds/` for JSON lines, the cached
    articles for SQuAD (written and indexed on the first run of that file)."""
    if testset.format != "squad":
        return Pipeline(settings)
    corpus, ready = corpus_settings(settings, testset)
    if ready:
        return Pipeline(corpus)
    built: list[Pipeline] = []

    def build(at: Settings) -> None:
        built.append(Pipeline(at))
        index = built[0].rebuild()
        # an article the loader skipped (logged above) would leave its questions unanswerable
        missing = [a for a in testset.articles if a.doc_id not in index.documents]
        if missing:
            raise QAError(f"{len(missing)} article(s) could not be indexed (first: "
                          f"{missing[0].title!r}; see above)")

    corpus = build_corpus(settings, testset, build)
    return Pipeline(corpus, embedder=built[0].embedder)


def run_eval_command(args: argparse.Namespace, settings: Settings) -> int:
    """`qa eval FILE [--out] [--csv] [--report] [--json] [--metrics-out] [--strict]
    [--baseline] [-k N]`, or `qa eval --compare A.json B.json [--fail-on-drop M=D ...]`.
    Exit 1 when a question failed (`errors`), after the outputs are written."""
    from qa import eval_report

    if args.compare:
        if args.file:
            raise BadSetting("give either a test set or --compare A.json B.json, not both")
        return eval_report.run_compare(args.compare, args.fail_on_drop or [])
    if args.fail_on_drop:
        raise BadSetting("--fail-on-drop needs --compare A.json B.json")
    if not args.file:
        raise BadSetting("give a test set (FILE.jsonl or a SQuAD .json) or --compare A B")
    path = Path(args.file)
    outputs = eval_report.Outputs.open(
        out=args.out, csv=args.csv, report=args.report, metrics=args.metrics_out, inputs=[path],
        folders={"seeds": settings.seeds_dir, "data": settings.documents_dir,
                 "index": settings.index_dir})
    stack = contextlib.ExitStack()
    try:
        testset = load_testset(path, args.limit)
        report_problem = _Listing(path, "" if args.strict else " (skipped)")
        report_note = _Listing(path, noun="note(s)", name_common=False)
        problems = list(testset.problems)
        if args.strict:
            analyzer = make_analyzer(settings.spacy)
            try:
                problems += screen(testset.items, analyzer)
            finally:
                analyzer.close()
        for problem in problems:
            report_problem(problem)
        report_problem.flush()
        for note in testset.notes:
            report_note(note)
        report_note.flush()
        if problems and args.strict:
            raise QAError(f"{len(problems)} bad question(s) in {str(path)!r} "
                          f"(first: {problems[0]}) (--strict)")
        if testset.format == "squad" and (args.seeds or args.index):
            print("qa: eval: a SQuAD file brings its own documents; --seeds and --index are "
                  "not used", file=sys.stderr)
        if not testset.items:
            raise QAError(f"test set {str(path)!r} holds no questions")
        started = time.perf_counter()
        if testset.format != "squad":  # the index folder is the user's: refused while
            stack.enter_context(claimed_index(settings))  # another uses it from elsewhere
        pipeline = _pipeline_for(testset, settings)
        index = pipeline.index
        if pipeline.stale:  # answers would leave out the documents that changed
            raise QAError(f"the index in {str(settings.index_dir)!r} is stale and cannot be "
                          f"rebuilt ({pipeline.stale}): an evaluation needs it to hold the "
                          "documents as they are")
        if not index.documents:  # every answer would be "no documents": all zeros
            raise QAError(f"the library is empty (no document in {str(settings.seeds_dir)!r} "
                          f"or {str(settings.documents_dir)!r}): nothing to evaluate against")
        if testset.format != "squad":  # JSON lines, CSV: golds the documents should hold
            there, chars = gold_presence(testset.items, pipeline.index)
            if there and all(v is False for v in there.values()):
                # the wrong documents, or free-form reference answers (scored by token F1):
                # one line, not a note per gold
                print(f"qa: eval: {path}: none of the {len(there):,} distinct gold answers is "
                      f"in the documents (those of {str(settings.seeds_dir)!r} and "
                      f"{str(settings.documents_dir)!r}): are they the test set's? (--seeds, "
                      "--data)", file=sys.stderr)
            else:
                for note in gold_notes(testset.items, there, chars):
                    report_note(note)
        report_note.flush()
        asker = baseline_asker(pipeline) if args.baseline else None
        metrics, outcomes = evaluate(pipeline, testset.items, settings.k, asker,
                                     sink=outputs.write, on_problem=report_problem)
        report_problem.flush()
        metrics["skipped"] = (metrics["skipped"] or 0) + len(testset.problems)
        if not outcomes:  # nothing scored: all zeros would pass for a result
            raise QAError(f"no question of {str(path)!r} could be asked "
                          f"({int(metrics['skipped'] or 0)} skipped, {int(metrics['errors'] or 0)} "
                          "failed: see above)")
        metrics["total_seconds"] = round(time.perf_counter() - started, 2)
        name = "dense-only baseline" if args.baseline else "qa"
        outputs.finish(metrics, outcomes, f"Evaluation of {name} on {path.name}")
    except BaseException:
        outputs.discard()
        raise
    finally:
        stack.close()
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(metrics, indent=2) if args.json else format_table(metrics))
    failed = int(metrics["errors"] or 0)
    if failed:  # written and shown, but a run in which qa failed is no clean pass to a script
        print(f"qa: error: {failed:,} of {len(testset.items):,} question(s) failed (see above); "
              "the metrics leave them out", file=sys.stderr)
        return 1
    return 0
