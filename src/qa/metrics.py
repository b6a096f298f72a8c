"""Metric functions of `qa eval`: the official SQuAD v2 scores, and qa's own helpers.

In: prediction strings, gold answer lists, no-answer probabilities. Out: numbers.

The SQuAD part reproduces the official `evaluate-v2.0.py` (Rajpurkar et al., 2018) rule for
rule, so a figure printed by `qa eval` can be put beside a published one: ASCII
`string.punctuation` only, articles `a|an|the`, F1 over whitespace tokens with duplicates
counted, an empty gold scored 1 only against an empty prediction, golds that normalise to
nothing dropped, the no-answer threshold search with its initial score of "abstain on
everything" and its tie handling (a stable sort by probability, the threshold moved only on a
strict improvement). Scores are percentages (0-100), as the official script prints them.

qa's own contains-gold check (`contains_gold`) normalises Unicode punctuation too, because it
asks a different question: does the answer text hold the gold phrase? There a mark splits
words (a possessive, a footnote mark, a dash), but not the separators inside a number.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# -- the official SQuAD v2 rules -------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, drop ASCII punctuation, drop articles, collapse whitespace (official)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def get_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def compute_exact(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold: str, prediction: str) -> float:
    """Token F1; if either side has no tokens, 1 when both have none, else 0 (official)."""
    gold_toks, pred_toks = get_tokens(gold), get_tokens(prediction)
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    same = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def squad_scores(prediction: str, golds: Sequence[str]) -> tuple[int, float]:
    """(exact, f1) of one prediction, the max over the golds; no usable gold means ""."""
    usable = [g for g in golds if normalize_answer(g)] or [""]
    return (max(compute_exact(g, prediction) for g in usable),
            max(compute_f1(g, prediction) for g in usable))


@dataclass(frozen=True, slots=True)
class Scored:
    """What the SQuAD v2 aggregate needs of one question (kept for every question: small)."""

    has_answer: bool  # the question has gold answers
    answered: bool  # the prediction string is non-empty
    exact: float
    f1: float
    na_prob: float  # 1 - confidence


def find_best_thresh(scored: Sequence[Scored], scores: Sequence[float]) -> tuple[float, float]:
    """The official threshold search: (best score in percent, its no-answer threshold).

    Start from "abstain on every question" (score = number of no-answer questions), walk the
    questions by rising no-answer probability (stable sort: ties keep their input order), and
    let each answered question add its score (answerable) or cost 1 (unanswerable, answered).
    """
    if not scored:
        return 0.0, 0.0
    current = best = float(sum(not s.has_answer for s in scored))
    best_thresh = 0.0
    for i in sorted(range(len(scored)), key=lambda j: scored[j].na_prob):
        s = scored[i]
        if s.has_answer:
            current += scores[i]
        elif s.answered:
            current -= 1
        if current > best:
            best, best_thresh = current, s.na_prob
    return 100.0 * best / len(scored), best_thresh


def squad_v2_metrics(scored: Sequence[Scored], na_prob_thresh: float = 1.0) -> dict[str, float]:
    """The official metric object: exact, f1, total, HasAns_*, NoAns_*, best_* (percent).

    `na_prob_thresh` is the official script's `--na-prob-thresh` (default 1.0): a question
    whose no-answer probability exceeds it counts as abstained. Sums are taken in one pass, in
    the order given (the official script's order), so `scored` may be a lazy view over a
    long run's columns: nothing per question is built beside it but the threshold search's
    order.
    """
    if not scored:
        return {"exact": 0.0, "f1": 0.0, "total": 0}
    exact = f1 = 0.0
    groups = {True: [0.0, 0.0, 0], False: [0.0, 0.0, 0]}  # exact, f1, questions
    for s in scored:  # running sums in the order given, as the official sums add them
        cut = s.na_prob > na_prob_thresh
        e = float(not s.has_answer) if cut else s.exact
        f = float(not s.has_answer) if cut else s.f1
        exact += e
        f1 += f
        group = groups[s.has_answer]
        group[0] += e
        group[1] += f
        group[2] += 1
    total = len(scored)
    out: dict[str, float] = {"exact": 100.0 * exact / total, "f1": 100.0 * f1 / total,
                             "total": total}
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        g_exact, g_f1, count = groups[wanted]
        if count:
            out[f"{prefix}_exact"] = 100.0 * g_exact / count
            out[f"{prefix}_f1"] = 100.0 * g_f1 / count
            out[f"{prefix}_total"] = int(count)
    best_exact, exact_thresh = find_best_thresh(scored, _Field(scored, "exact"))
    best_f1, f1_thresh = find_best_thresh(scored, _Field(scored, "f1"))
    out.update(best_exact=best_exact, best_exact_thresh=exact_thresh,
               best_f1=best_f1, best_f1_thresh=f1_thresh)
    return out


class _Field(Sequence[float]):
    """One field of each `Scored`, read as it is needed (no list of them)."""

    def __init__(self, scored: Sequence[Scored], name: str) -> None:
        self.scored, self.name = scored, name

    def __len__(self) -> int:
        return len(self.scored)

    def __getitem__(self, i: Any) -> Any:
        return getattr(self.scored[i], self.name)


# -- qa's own measures -----------------------------------------------------------------------


class _LooseDrops(dict[int, int | None]):
    """What `normalize_loose` drops, as a `str.translate` table filled as characters are met:
    ASCII punctuation and every Unicode punctuation mark (category P*) map to None."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.category(chr(code)).startswith("P") else code
        self[code] = kept
        return kept


_LOOSE_DROPS = _LooseDrops(dict.fromkeys(map(ord, _PUNCTUATION)))


def normalize_loose(text: str) -> str:
    """SQuAD-like normalisation that also drops Unicode punctuation (curly quotes, dashes)."""
    text = text.lower().translate(_LOOSE_DROPS)  # a document of MBs: C speed, not per char
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the prediction equals a gold answer (loose normalisation); "" vs no golds."""
    if not golds:
        return float(normalize_loose(prediction) == "")
    return float(any(normalize_loose(prediction) == normalize_loose(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Best token F1 against the golds with the loose normalisation (qa's own scripts use it
    to fit the answer step; the reported SQuAD figures use `squad_scores`)."""
    if not golds:
        return float(normalize_loose(prediction) == "")
    pred = normalize_loose(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_loose(gold).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref:
            best = max(best, float(pred == ref))
        elif common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


_DIGIT_SEPARATOR = re.compile(r"(?<=\d)[.,](?=\d)")


def _words(text: str) -> str:
    """Lower-cased words with every punctuation mark or symbol (ASCII or not) read as a space
    and the articles dropped: "Swift's" -> "swift s", "$24 million.[note" -> "24 million note";
    a separator inside a number is dropped ("2,500" -> "2500": "500" is not in it)."""
    text = _DIGIT_SEPARATOR.sub("", text.lower()).translate(_MARKS)
    return " ".join(_ARTICLES.sub(" ", text).split())


class _Marks(dict[int, str]):
    """`str.translate`'s table for `_words`: a punctuation mark or symbol to a space, any
    other character to itself, each looked up once (a loop over every character in Python
    made scoring most of `qa eval`'s time)."""

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        value = " " if ch in _PUNCTUATION or unicodedata.category(ch)[0] in "PS" else ch
        if len(self) < _MAX_MARKS:  # text of every script still fits; no more is kept
            self[code] = value
        return value


_MAX_MARKS = 1 << 16
_MARKS = _Marks()


def contains_gold(text: str, golds: Sequence[str]) -> bool:
    """Does `text` contain one of the gold answers as whole words (both normalised)?

    A mark splits words rather than vanishing (as in `normalize_loose`), so a gold is found
    beside a possessive, a footnote mark or a dash: "Taylor Swift" in "Taylor Swift's".
    """
    norm = f" {_words(text)} "
    return any(f" {g} " in norm for g in map(_words, golds) if g)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def reliability_bins(pairs: Iterable[tuple[float, bool]], bins: int = 10
                     ) -> list[tuple[float, float, int, float, float]]:
    """Calibration table: (low, high, count, mean confidence, observed accuracy) per bin.
    One pass with a few sums per bin: `pairs` may be a generator over a long run."""
    counts, confidences, rights = [0] * bins, [0.0] * bins, [0] * bins
    for c, ok in pairs:
        if c != c:  # NaN: in no bin
            continue
        b = 0 if c < 0 else bins - 1 if c >= 1 else min(int(c * bins), bins - 1)
        while b > 0 and c < b / bins:  # the comparisons decide, not the rounded product
            b -= 1
        while b < bins - 1 and c >= (b + 1) / bins:
            b += 1
        counts[b] += 1
        confidences[b] += c
        rights[b] += ok
    table = []
    for b, n in enumerate(counts):
        lo, hi = b / bins, (b + 1) / bins
        table.append((lo, hi, n, confidences[b] / n, rights[b] / n) if n
                     else (lo, hi, 0, 0.0, 0.0))
    return table
