"""Lexical side of the index: a tokenizer and an Okapi BM25 index that saves to JSON.

In: texts (passages or sentences). Out: BM25 scores of a query against each of them. It
catches what embeddings blur: names, numbers and rare words shared by question and text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves according also another
    said say says tell told article text document""".split()
)

_TOKEN = re.compile(r"[a-z0-9]+")
_US = re.compile(r"\bU\.S\.(?:A\.)?", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_POSSESSIVE = re.compile(r"['’]s\b", re.IGNORECASE)


def stem(word: str) -> str:
    """A deliberately light suffix stripper: plural and -ing/-ed forms meet their stem."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "sis")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # "planned" -> "plann" -> "plan"
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]  # "announce" and "announced" both -> "announc"
    return word


def tokenize(text: str, keep_stopwords: bool = False) -> list[str]:
    """Lower-cased, stemmed content words; `U.S.` -> `us`, `2,500` -> `2500`."""
    text = _POSSESSIVE.sub("", _THOUSANDS.sub("", _US.sub("US", text))).lower()
    words = (w for w in _TOKEN.findall(text))
    return [stem(w) for w in words if keep_stopwords or w not in STOPWORDS]


@dataclass(frozen=True)
class BM25:
    """Okapi BM25 over a fixed list of texts, stored as plain postings."""

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
