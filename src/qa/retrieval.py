"""Retrieve step: question → ranked `Hit`s, each with its best-matching sentence.

In: an `Index`, an embedder and a query. Out: up to k hits, best first. Three signals of
each candidate passage are fused by a weighted sum of scores on a common 0-1-ish scale:

* dense: cosine of the question to the passage (candidates from the index's vector search,
  exact or HNSW, then rescored exactly);
* lexical: BM25 of the question's content words over passages, divided by the best score;
* sentence: the best sentence of the passage, scored by its own cosine to the question plus
  a share of its (normalized) BM25 score, so one sharp sentence can lift a mixed passage.

Scores rather than ranks are fused (reciprocal rank fusion was measured and lost): over a
short list, RRF flattens a decisive lexical match (a name, a number) into a near-tie.

The question is embedded once; everything else is arithmetic on stored vectors and sparse
BM25 columns, through the `Index` methods only, so a warm `retrieve` costs little more than
embedding the question, and sentences are scored only for the candidate passages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qa.chunking import is_heading
from qa.embedding import Embedder
from qa.expansion import WordVectors, expand
from qa.lexical import tokenize
from qa.store import Index
from qa.types import Chunk, Hit
from qa.vectors import top_k


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
            expansions = expand(question, index.vocabulary, words, index.terms,
                                index.term_vectors)
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


def unit_max(scores: np.ndarray) -> np.ndarray:
    """Scores divided by the largest, so the best lexical match counts 1 (all zero stays 0)."""
    top = float(scores.max()) if len(scores) else 0.0
    return scores / top if top > 0 else scores


def search(
    index: Index, vector: np.ndarray, query: Query, k: int, weights: Weights = Weights(),
    doc_ids: frozenset[str] | None = None,
) -> tuple[list[Hit], Scored]:
    """Rank passages for an embedded query; return the top `k` hits and sentence scores.

    `doc_ids` limits the search to those documents (searched exactly: the passages of a few
    documents are few); unknown ids match nothing.
    """
    empty = Scored(np.array([], np.int64), np.array([]), np.array([]))
    allowed = index.chunks_of(doc_ids) if doc_ids is not None else None
    n_chunks = len(index.chunks) if allowed is None else len(allowed)
    if n_chunks == 0:
        return [], empty
    pool = min(n_chunks, max(50, 10 * k))
    if allowed is None:
        dense_ids = index.search_chunks(vector, pool)[1]
        lexical_top = index.chunk_top(query.terms, pool)
    else:
        dense_ids = allowed[top_k(index.chunk_vectors(allowed) @ vector, pool)]
        lexical_top = allowed[top_k(index.chunk_scores(query.terms, allowed, pool), pool)]
    candidates = np.unique(np.concatenate([dense_ids[dense_ids >= 0], lexical_top]))

    dense = index.chunk_vectors(candidates) @ vector
    lexical = index.chunk_scores(query.terms, candidates)

    sentence_ids = index.sentences_of(candidates)  # grouped by passage, in candidate order
    cosines = index.sentence_vectors(sentence_ids) @ vector
    sentence_lexical = index.sentence_scores(query.terms, sentence_ids)
    combined = cosines + weights.sentence_lexical * unit_max(sentence_lexical)

    # the best sentence of each candidate (the first one on ties)
    sizes = index.sentence_counts(candidates)
    owner = np.repeat(np.arange(len(candidates)), sizes)
    best = np.maximum.reduceat(combined, np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    is_best = np.flatnonzero(combined == best[owner])
    best_sentence = is_best[np.unique(owner[is_best], return_index=True)[1]]

    fused = weights.dense * dense + weights.lexical * unit_max(lexical) + weights.sentence * best
    order = np.argsort(-fused, kind="stable")[:k]
    hits = []
    for rank, pos in enumerate(order, start=1):
        spos = int(best_sentence[pos])
        chunk = index.chunks[int(candidates[pos])]
        if is_heading(index.sentences[int(sentence_ids[spos])], chunk):
            spos = _best_prose(index, chunk, sentence_ids, owner == pos, combined, spos)
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


def _best_prose(index: Index, chunk: Chunk, sentence_ids: np.ndarray, mine: np.ndarray,
                combined: np.ndarray, heading: int) -> int:
    """The passage's best sentence that is not a heading (a title shares the question's
    words but answers nothing); the heading itself if the passage has nothing else."""
    for spos in sorted(np.flatnonzero(mine), key=lambda p: -combined[p]):
        if not is_heading(index.sentences[int(sentence_ids[spos])], chunk):
            return int(spos)
    return heading


def retrieve(
    index: Index, embedder: Embedder, query: Query, k: int = 5, weights: Weights = Weights(),
    doc_ids: frozenset[str] | None = None,
) -> list[Hit]:
    """Embed the query once and return its top `k` hits (within `doc_ids`, if given)."""
    vector = embedder.embed([query.text])[0]
    return search(index, vector, query, k, weights, doc_ids)[0]
