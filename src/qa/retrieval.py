"""Retrieve step: question → ranked `Hit`s, each with its best-matching sentence.

In: an `Index`, an embedder and a query. Out: up to k hits, best first. Three signals of
each candidate passage are fused by a weighted sum of scores on a common 0-1-ish scale:

* dense: cosine of the question to the passage (FAISS, inner product on unit vectors);
* lexical: BM25 of the question's content words over passages, divided by the best score;
* sentence: the best sentence of the passage, scored by its own cosine to the question plus
  a share of its (normalized) BM25 score, so one sharp sentence can lift a mixed passage.

Scores rather than ranks are fused (reciprocal rank fusion was measured and lost): over a
short list, RRF flattens a decisive lexical match (a name, a number) into a near-tie.

The question is embedded once; everything else is arithmetic on stored vectors, so a warm
`retrieve` costs little more than embedding the question.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np

from qa.embedding import Embedder
from qa.expansion import WordVectors, expand
from qa.lexical import tokenize
from qa.store import Index
from qa.types import Hit


@dataclass(frozen=True)
class Query:
    """What retrieval searches with: text to embed and weighted lexical terms."""

    text: str
    terms: dict[str, float] = field(default_factory=dict)
    # question terms the documents never use -> the document terms standing in for them
    expansions: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    @classmethod
    def of(cls, question: str, context: str = "", context_weight: float = 0.5,
           index: Index | None = None, words: WordVectors | None = None) -> Query:
        """A query for `question`; `context` (earlier turns) is weighted lower. With an index
        and a word table, words the documents never use are expanded to close ones."""
        terms = {t: context_weight for t in tokenize(context)} if context else {}
        terms.update({t: 1.0 for t in tokenize(question)})
        expansions: dict[str, list[tuple[str, float]]] = {}
        if index is not None and words is not None:
            known = set(index.sentence_bm25.postings)
            expansions = expand(question, known, words, index.terms, index.term_vectors)
            for alternatives in expansions.values():
                for term, similarity in alternatives:
                    terms[term] = max(terms.get(term, 0.0), similarity)
        text = f"{context} {question}".strip() if context else question
        return cls(text=text, terms=terms, expansions=expansions)


@dataclass(frozen=True)
class Weights:
    """Fusion weights and the lexical share of a sentence's score (tuned on the dev set)."""

    dense: float = 1.0
    lexical: float = 0.25
    sentence: float = 1.0
    sentence_lexical: float = 0.5  # share of normalized BM25 added to a sentence's cosine


@dataclass(frozen=True)
class Scored:
    """Scores of every sentence considered, kept for answer composition."""

    sentence_ids: np.ndarray
    sentence_scores: np.ndarray  # combined (cosine + lexical share)
    sentence_cosines: np.ndarray


# The documents a search is limited to when its caller does not say (set by `Pipeline.ask`
# until answering passes `doc_ids` itself; issue 12 replaces this with a real filter).
search_scope: ContextVar[frozenset[str] | None] = ContextVar("search_scope", default=None)


def unit_max(scores: np.ndarray) -> np.ndarray:
    """Scores divided by the largest, so the best lexical match counts 1 (all zero stays 0)."""
    top = float(scores.max()) if len(scores) else 0.0
    return scores / top if top > 0 else scores


def search(
    index: Index, vector: np.ndarray, query: Query, k: int, weights: Weights = Weights(),
    doc_ids: frozenset[str] | None = None,
) -> tuple[list[Hit], Scored]:
    """Rank passages for an embedded query; return the top `k` hits and sentence scores.
    With `doc_ids`, only passages of those documents are candidates."""
    n_chunks = len(index.chunks)
    doc_ids = search_scope.get() if doc_ids is None else doc_ids
    if n_chunks == 0:
        return [], Scored(np.array([], np.int64), np.array([]), np.array([]))
    pool = min(n_chunks, max(50, 10 * k))
    dense_scores, dense_ids = index.chunk_search.search(vector[None, :], pool)
    lexical_all = index.chunk_bm25.scores(query.terms, query.terms)
    lexical_top = np.argsort(-lexical_all, kind="stable")[:pool]
    candidates = np.unique(np.concatenate([dense_ids[0][dense_ids[0] >= 0], lexical_top]))
    if doc_ids is not None:  # post-filter; small selections take all their passages
        allowed = np.array([c.index for c in index.chunks if c.doc_id in doc_ids], np.int64)
        candidates = allowed if len(allowed) <= 4 * pool else np.intersect1d(candidates, allowed)
        if len(candidates) == 0:
            return [], Scored(np.array([], np.int64), np.array([]), np.array([]))

    dense = index.chunk_vectors[candidates] @ vector
    lexical = lexical_all[candidates]

    sentence_ids = np.flatnonzero(np.isin(index.sentence_chunk, candidates))
    cosines = index.sentence_vectors[sentence_ids] @ vector
    sentence_lexical = index.sentence_bm25.scores(query.terms, query.terms)[sentence_ids]
    combined = cosines + weights.sentence_lexical * unit_max(sentence_lexical)

    best_sentence: dict[int, int] = {}
    for pos, sid in enumerate(sentence_ids):
        owner = int(index.sentence_chunk[sid])
        if owner not in best_sentence or combined[pos] > combined[best_sentence[owner]]:
            best_sentence[owner] = pos
    best = np.array([combined[best_sentence[int(c)]] for c in candidates])

    fused = weights.dense * dense + weights.lexical * unit_max(lexical) + weights.sentence * best
    order = np.argsort(-fused, kind="stable")[:k]
    hits = []
    for rank, pos in enumerate(order, start=1):
        chunk = index.chunks[int(candidates[pos])]
        spos = best_sentence[int(candidates[pos])]
        hits.append(
            Hit(
                rank=rank,
                chunk=chunk,
                score=float(fused[pos]),
                sentence=index.sentences[int(sentence_ids[spos])],
                sentence_score=float(cosines[spos]),
                dense_score=float(dense[pos]),
            )
        )
    return hits, Scored(sentence_ids, combined, cosines)


def retrieve(
    index: Index, embedder: Embedder, query: Query, k: int = 5, weights: Weights = Weights(),
    doc_ids: frozenset[str] | None = None,
) -> list[Hit]:
    """Embed the query once and return its top `k` hits (of `doc_ids` only, if given)."""
    vector = embedder.embed([query.text])[0]
    return search(index, vector, query, k, weights, doc_ids)[0]
