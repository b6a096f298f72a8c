"""Lexical side of the index: a tokenizer and Okapi BM25 as sparse arrays.

In: texts (passages or sentences). Out: BM25 scores of a query against each of them, or
the numbers of its `k` best texts. It catches what embeddings blur: names, numbers and rare
words shared by question and text.

`SparseBM25` is what the index uses: a term-frequency matrix turned once into a matrix of
BM25 weights (compressed sparse columns, one column per term), so a query sums a few
columns instead of looping over postings in Python, and scores only the rows it is asked
for; its `top` reads only the query's postings, and for common words only those of its rarer
words when max-score pruning proves the rest cannot change the top `k`. It saves as plain
`.npy` arrays (memory-mapped on load, never pickled). `BM25` is the original pure-Python
implementation, kept as the reference the sparse one is tested against.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy import sparse

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom whose why will with would you your yours yourself yourselves according also
    another
    said say says tell told article text document""".split()
)

_TOKEN = re.compile(r"[a-z0-9]+")
_US = re.compile(r"\bU\.S\.(?:A\.)?", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_POSSESSIVE = re.compile(r"['’]s\b", re.IGNORECASE)
# An "-eed" word whose "-ed" is a past tense: a vowel then a consonant before it ("agreed",
# "guaranteed"), as in Porter's rule; "speed", "need" and "feed" are stems of their own.
_EEDS = re.compile(r".*[aeiou][^aeiou].*eed$")
# Three letters, consonant-vowel-consonant (not w, x, y): what "giving", "making", "noted"
# leave, of a short verb that dropped its "e" ("hopping" leaves "hopp", "fixed" "fix").
_SHORT_CVC = re.compile(r"[^aeiou][aeiou][^aeiouwxy]")


@lru_cache(maxsize=1 << 18)
def stem(word: str) -> str:
    """A deliberately light suffix stripper: plural and -ing/-ed forms meet their stem.

    Cached: a corpus has far fewer distinct words than words, and indexing stems them all."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith(("ies", "ied")) and len(word) > 4:
        return word[:-3] + "y"  # "married", "marries": "marry"
    if word.endswith("ied"):
        return word[:-1]  # "died", "tied": "die", "tie"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "sis")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4 and not word.endswith("eed"):
        word = word[:-2]
    else:
        return _stem_end(word)
    if _SHORT_CVC.fullmatch(word):
        return word + "e"  # "giving" -> "giv" -> "give", as "give" (too short to lose its "e")
    return _stem_end(word)


def _stem_end(word: str) -> str:
    """The last steps of `stem`: a doubled consonant made single, a final "e" dropped."""
    if word.endswith("eed") and _EEDS.match(word):
        word = word[:-1]  # "agreed" -> "agree" (-> "agre"); "speed", "need" stay whole
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "planned" -> "plann" -> "plan"
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]  # "announce" and "announced" both -> "announc"
    return word


# Latin letters that are not a plain letter with marks ("ł" is no "l" with a mark in Unicode).
_LETTERS = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i",
                          "æ": "ae", "œ": "oe", "ß": "ss", "þ": "th"})
_MARKS = re.compile(r"[\u0300-\u036f]")


def fold(text: str) -> str:
    """Lower-cased text with its Latin letters' marks taken off ("Deréon" -> "dereon",
    "Gładkowska" -> "gladkowska"): people type names without them, and a word with one was
    cut in two ("der", "on")."""
    text = text.lower()
    if text.isascii():
        return text
    text = _INVISIBLE.sub("", text)  # "fer\u00adry", "fer\u200bry": one word, "ferry"
    return _MARKS.sub("", unicodedata.normalize("NFKD", text.translate(_LETTERS)))


# Characters that show nothing inside a word: a soft hyphen, zero-width spaces and joiners,
# a byte order mark (PDFs and web pages put them inside words).
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")


def tokenize(text: str, keep_stopwords: bool = False) -> list[str]:
    """Lower-cased, stemmed content words; `U.S.` -> `us`, `2,500` -> `2500`, `é` -> `e`."""
    text = fold(_POSSESSIVE.sub("", _THOUSANDS.sub("", _US.sub("US", text))))
    words = (w for w in _TOKEN.findall(text))
    return [stem(w) for w in words if keep_stopwords or w not in STOPWORDS]


# A word the documents never use, one letter off a word they use, is a typo of it ("Halvorson":
# "Halvorsen", "Manhatten": "Manhattan"). Only of words this long: of shorter ones, one letter
# makes another word or name ("bat", "cat"; "Maria", "Mario").
TYPO_LETTERS = 6
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def spelled_like(term: str, knows: Callable[[str], bool]) -> list[str]:
    """The document terms one edit (a letter dropped, added, changed, or two swapped) from a
    term the documents never use, in a fixed order."""
    if len(term) < TYPO_LETTERS or not term.isalpha() or not term.isascii():
        return []
    cuts = [(term[:i], term[i:]) for i in range(len(term) + 1)]
    edits = {a + b[1:] for a, b in cuts if b} | {a + b[1] + b[0] + b[2:] for a, b in cuts
                                                   if len(b) > 1}
    edits |= {a + c + b[1:] for a, b in cuts if b for c in _ALPHABET}
    edits |= {a + c + b for a, b in cuts for c in _ALPHABET}
    edits.discard(term)
    return sorted(e for e in edits if knows(e))


@dataclass(frozen=True)
class BM25:
    """Okapi BM25 over a fixed list of texts, as plain postings (the reference version)."""

    postings: dict[str, list[tuple[int, int]]]  # term -> [(text index, term count)]
    lengths: list[int]
    k1: float = 1.2
    b: float = 0.75

    @classmethod
    def build(cls, texts: Iterable[str], k1: float = 1.2, b: float = 0.75) -> BM25:
        postings: dict[str, list[tuple[int, int]]] = {}
        lengths = []
        for i, text in enumerate(texts):
            counts = Counter(tokenize(text))
            lengths.append(sum(counts.values()))
            for term, count in counts.items():
                postings.setdefault(term, []).append((i, count))
        return cls(postings=postings, lengths=lengths, k1=k1, b=b)

    def idf(self, term: str) -> float:
        n = len(self.lengths)
        df = len(self.postings.get(term, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query_terms: Iterable[str], weights: dict[str, float] | None = None) -> (
        np.ndarray
    ):
        """BM25 score of every text for the (already tokenized) query terms."""
        out = np.zeros(len(self.lengths), dtype=np.float32)
        if not self.lengths:
            return out
        avg = max(sum(self.lengths) / len(self.lengths), 1e-9)
        for term in set(query_terms):
            posting = self.postings.get(term)
            if not posting:
                continue
            idf = self.idf(term) * (weights.get(term, 1.0) if weights else 1.0)
            for i, tf in posting:
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[i] / avg)
                out[i] += idf * tf * (self.k1 + 1) / norm
        return out

    def to_json(self) -> dict[str, Any]:
        return {"k1": self.k1, "b": self.b, "lengths": self.lengths, "postings": self.postings}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BM25:
        postings = {
            str(term): [(int(i), int(tf)) for i, tf in pairs]
            for term, pairs in data["postings"].items()
        }
        return cls(
            postings=postings,
            lengths=[int(n) for n in data["lengths"]],
            k1=float(data["k1"]),
            b=float(data["b"]),
        )


# -- the sparse implementation the index uses -------------------------------------------------

K1, B = 1.2, 0.75
Terms = Mapping[str, float] | Iterable[str]


def query_weights(terms: Terms) -> dict[str, float]:
    """A query's terms with their weights (a plain list of terms weighs each 1)."""
    if isinstance(terms, Mapping):
        return {str(t): float(w) for t, w in terms.items()}
    return dict.fromkeys(terms, 1.0)


def term_counts(texts: Iterable[str], vocabulary: dict[str, int]) -> sparse.csr_matrix:
    """Term counts of each text (rows) over `vocabulary` (columns), which grows as it goes."""
    rows: list[int] = []
    cols: list[int] = []
    counts: list[int] = []
    n = 0
    for n, text in enumerate(texts, start=1):
        for term, count in Counter(tokenize(text)).items():
            rows.append(n - 1)
            cols.append(vocabulary.setdefault(term, len(vocabulary)))
            counts.append(count)
    matrix = sparse.csr_matrix(
        (np.asarray(counts, np.int32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
        shape=(n, len(vocabulary)),
    )
    matrix.sort_indices()
    return matrix


def bm25_weights(counts: sparse.csr_matrix, k1: float = K1, b: float = B) -> sparse.csc_matrix:
    """BM25 weight of each (text, term) pair, as `BM25.scores` computes it per posting."""
    n, n_terms = counts.shape
    lengths = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    avg = max(float(lengths.sum()) / n, 1e-9) if n else 1.0
    df = np.bincount(counts.indices, minlength=n_terms).astype(np.float64)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    rows = np.repeat(np.arange(n), np.diff(counts.indptr))
    tf = counts.data.astype(np.float64)
    norm = tf + k1 * (1 - b + b * lengths[rows] / avg)
    weights = (idf[counts.indices] * tf * (k1 + 1) / norm).astype(np.float32)
    matrix = sparse.csr_matrix((weights, counts.indices, counts.indptr), shape=counts.shape)
    out = matrix.tocsc()
    out.sort_indices()
    return out


class LexicalIndex(Protocol):
    """Lexical scores of a query over a fixed list of texts (passages or sentences)."""

    def __len__(self) -> int: ...

    def scores(self, terms: Terms, rows: np.ndarray | None = None,
               top: int | None = None) -> np.ndarray: ...

    def top(self, terms: Terms, k: int) -> np.ndarray: ...

    def idf(self, term: str) -> float: ...

    def knows(self, term: str) -> bool: ...


DENSE_SHARE = 32  # postings above 1/32 of the rows: one array of all rows is cheaper (measured)
PRUNE_TRIES = 2  # splits of the terms pruning tries (each more terms) before giving up
PRUNE_EXACT_ROWS = 4_096  # pruning scores at most this many rows over all terms per try
Column = tuple[np.ndarray, np.ndarray, np.float32, str]  # a term's rows, weights, query weight


def _below_kth(bound: float, scores: np.ndarray, k: int) -> bool:
    """Is `bound` below the k-th best of `scores`, by a margin far above float32 rounding?"""
    return bound * (1 + 1e-4) < float(np.partition(scores, len(scores) - k)[len(scores) - k])


def rank_matches(rows: np.ndarray, scores: np.ndarray, k: int, n_rows: int) -> np.ndarray:
    """The `k` best of `n_rows` texts, given the ones that match (`rows`, ascending, with
    their scores; every other text scores 0): best first, ties in row order, then unmatched
    texts in row order, as a stable sort of all `n_rows` scores would give, at the cost of
    the matches only."""
    from qa.vectors import top_k

    k = min(k, n_rows)
    if len(rows) >= k:
        return rows[top_k(scores, k)]
    ranked = rows[np.argsort(-scores, kind="stable")]
    first = np.arange(min(n_rows, k), dtype=np.int64)  # holds k - len(rows) unmatched rows
    unmatched = first[~np.isin(first, rows)][: k - len(rows)]
    return np.concatenate([ranked.astype(np.int64), unmatched])


@dataclass(frozen=True)
class SparseBM25:
    """BM25 over a fixed list of texts as a weight matrix (rows: texts, columns: terms)."""

    vocabulary: Mapping[str, int]  # term -> column (shared by the index's two levels)
    indptr: np.ndarray  # column j's rows are indices[indptr[j]:indptr[j+1]], sorted
    indices: np.ndarray
    data: np.ndarray  # the BM25 weight of each (row, term) pair
    n_rows: int
    _max_weights: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    FILES = ("indptr", "indices", "data")

    @classmethod
    def of(cls, weights: sparse.csc_matrix, vocabulary: Mapping[str, int]) -> SparseBM25:
        return cls(vocabulary, weights.indptr.astype(np.int64), weights.indices.astype(np.int32),
                   weights.data.astype(np.float32), int(weights.shape[0]))

    def __len__(self) -> int:
        return self.n_rows

    def _column(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        j = self.vocabulary.get(term)
        if j is None:
            return self.indices[:0], self.data[:0]
        a, b = int(self.indptr[j]), int(self.indptr[j + 1])
        return self.indices[a:b], self.data[a:b]

    def df(self, term: str) -> int:
        return len(self._column(term)[0])

    def idf(self, term: str) -> float:
        df = self.df(term)
        return math.log(1.0 + (self.n_rows - df + 0.5) / (df + 0.5))

    def knows(self, term: str) -> bool:
        return self.df(term) > 0

    def scores(self, terms: Terms, rows: np.ndarray | None = None,
               top: int | None = None) -> np.ndarray:
        """BM25 score of each text (or of each of `rows`, in their order) for the terms.

        With `rows`, only the postings of those rows are touched: the cost follows the
        query's postings, not the number of texts. `top` is a hint that only the best `top`
        scores will be used (an engine may leave the rest 0); here every score is exact.
        """
        weights = query_weights(terms)
        if rows is None:
            out = np.zeros(self.n_rows, dtype=np.float32)
            for term, weight in weights.items():
                idx, data = self._column(term)
                out[idx] += data * np.float32(weight)
            return out
        unique, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        out = np.zeros(len(unique), dtype=np.float32)
        if not len(unique):
            return out[inverse]
        for term, weight in weights.items():
            idx, data = self._column(term)
            if not len(idx):
                continue
            # look the few rows up in the (sorted) posting, not the posting up in the rows
            at = np.minimum(np.searchsorted(idx, unique), len(idx) - 1)
            hit = idx[at] == unique
            out[hit] += data[at[hit]] * np.float32(weight)
        return out[inverse]

    def top(self, terms: Terms, k: int) -> np.ndarray:
        """Row numbers of the `k` best texts for the terms (see `rank_matches`): the same as
        ranking every row's `scores`, but summed over the query's postings only; when they
        cover a good share of all rows, over the postings of its rarer terms only if the
        common ones cannot lift any other row into the top `k` (`_top_pruned`), else into
        one array of all rows."""
        columns = [(*self._column(term), np.float32(weight), term)
                   for term, weight in query_weights(terms).items()]
        columns = [c for c in columns if len(c[0])]
        total = sum(len(c[0]) for c in columns)
        if total * DENSE_SHARE >= self.n_rows:
            pruned = self._top_pruned(columns, k)
            if pruned is not None:
                return pruned
            out = np.zeros(self.n_rows, dtype=np.float32)
            for idx, data, weight, _ in columns:
                out[idx] += data * weight
            # the k-th best score of one term's rows bounds the k-th best of all from below:
            # only rows reaching it can be among the k (fewer to rank than every match)
            floor = 0.0
            held = [c[0] for c in columns if len(c[0]) >= k > 0]
            if held:
                some = out[min(held, key=len)]
                floor = float(np.partition(some, len(some) - k)[len(some) - k])
            rows = np.flatnonzero(out >= floor) if floor > 0 else np.flatnonzero(out > 0)
            return rank_matches(rows, out[rows], k, self.n_rows)
        if not columns:
            return rank_matches(np.zeros(0, np.int64), np.zeros(0, np.float32), k, self.n_rows)
        rows = np.unique(np.concatenate([c[0] for c in columns]))
        return self._rank_rows(rows, columns, k)

    def _rank_rows(self, rows: np.ndarray, columns: list[Column], k: int) -> np.ndarray:
        """`rank_matches` over `rows` (ascending), scored over `columns`."""
        sums = self._sums(rows, columns)
        keep = sums > 0
        return rank_matches(rows[keep].astype(np.int64), sums[keep], k, self.n_rows)

    @staticmethod
    def _sums(rows: np.ndarray, columns: list[Column]) -> np.ndarray:
        """BM25 of `rows` (ascending), added term by term in float32 as `scores` does."""
        sums = np.zeros(len(rows), dtype=np.float32)
        for idx, data, weight, _ in columns:
            at = np.minimum(np.searchsorted(idx, rows), len(idx) - 1)
            hit = idx[at] == rows
            sums[hit] += data[at[hit]] * weight
        return sums

    def _top_pruned(self, columns: list[Column], k: int) -> np.ndarray | None:
        """The top `k` scored over the rows of the query's highest-weighing terms only, when
        that is provably the top `k` of all rows (max-score pruning, Turtle and Flood 1995):
        a row none of them holds scores at most the sum of the other terms' largest
        weights, and that sum is below the k-th best of their rows' scores over those terms
        alone. None when no split of the terms proves it while touching fewer postings than
        one array of all rows."""
        if k <= 0 or len(columns) < 2 or any(c[2] <= 0 for c in columns):
            return None
        bound = {c[3]: self._max_weight(c[3], c[1]) * float(c[2]) for c in columns}
        ranked = sorted(columns, key=lambda c: -bound[c[3]])
        tries = 0
        for j in range(1, len(ranked)):
            if (sum(len(c[0]) for c in ranked[:j]) * DENSE_SHARE >= self.n_rows
                    or tries == PRUNE_TRIES):
                return None
            rows = np.unique(np.concatenate([c[0] for c in ranked[:j]]))
            if len(rows) < k:
                continue
            tries += 1
            rest = sum(bound[c[3]] for c in ranked[j:])
            # their scores over these terms alone (only short postings read) bound their
            # full scores from below; the full scores (the long postings looked up too)
            # only for a few rows, so that a failed try costs little
            if _below_kth(rest, self._sums(rows, ranked[:j]), k):
                return rank_matches(rows.astype(np.int64), self._sums(rows, columns), k,
                                    self.n_rows)
            if len(rows) <= PRUNE_EXACT_ROWS:
                sums = self._sums(rows, columns)
                if _below_kth(rest, sums, k):
                    return rank_matches(rows.astype(np.int64), sums, k, self.n_rows)
        return None

    def _max_weight(self, term: str, data: np.ndarray) -> float:
        """The largest BM25 weight of a term's column (computed once per term)."""
        found = self._max_weights.get(term)
        if found is None:
            found = self._max_weights[term] = float(data.max())
        return found

    def save(self, folder: Path, prefix: str) -> list[str]:
        names = []
        for name in self.FILES:
            fname = f"{prefix}.{name}.npy"
            np.save(folder / fname, getattr(self, name), allow_pickle=False)
            names.append(fname)
        return names

    @classmethod
    def load(cls, folder: Path, prefix: str, vocabulary: Mapping[str, int],
             n_rows: int) -> SparseBM25:
        from qa.vectors import load_array

        # np.asarray keeps them memory-mapped, minus np.memmap's slow slicing (a question
        # slices a few columns of each: ~0.15 ms of a warm ask)
        arrays = [np.asarray(load_array(folder / f"{prefix}.{name}.npy")) for name in cls.FILES]
        bm25 = cls(vocabulary, arrays[0], arrays[1], arrays[2], n_rows)
        if len(bm25.indptr) != len(vocabulary) + 1 or len(bm25.indices) != len(bm25.data):
            raise ValueError(f"{prefix}: arrays of the wrong shape")
        return bm25
