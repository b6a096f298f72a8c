"""Sentence ranking: which candidate sentence most likely holds the answer.

In: the candidate sentences of the evidence step (best retrieval score first), each with its
measured signals. Out: the probability that each holds the answer, from a small ensemble of
gradient-boosted trees fitted by `scripts/fit_answer_model.py` on the answerable questions of
the fitting pool (weights in `sentence_ranker.json`).

A fixed sum of retrieval score and hand-set bonuses cannot weigh a signal by what the others
say (coverage matters more when the cosines are close; a heading's cosine means little); the
trees can. Each candidate is described by its own signals, by how far each falls below the
best candidate's, and by its rank on each, so the model compares candidates of one question
rather than questions. Evaluated with numpy over all trees at once: well under a millisecond.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

# The signals of one candidate, in the order of the model's first columns.
SIGNALS = ("retrieval", "cosine", "lexical", "hit_score", "hit_rank", "hit_dense", "coverage",
           "context_coverage", "type_found", "negation_mismatch", "entities_missing",
           "heading", "first_in_passage", "words", "overlap", "bonus")


def ranking_matrix(signals: Sequence[Sequence[float]]) -> np.ndarray:
    """Each candidate's signals, their distance below the best candidate's, their rank (0 =
    highest; ties in candidate order) and the number of candidates: the model's input."""
    values = np.asarray(signals, dtype=np.float64).reshape(len(signals), len(SIGNALS))
    below = values - values.max(axis=0)
    ranks = np.argsort(np.argsort(-values, axis=0, kind="stable"), axis=0, kind="stable")
    return np.hstack([values, below, ranks, np.full((len(values), 1), len(values))])


@dataclass(frozen=True)
class Forest:
    """Binary gradient-boosted trees, flattened: node arrays of every tree, and their roots.

    A row goes left at a node when its feature is at most the node's threshold (the rule of
    scikit-learn's HistGradientBoosting, whose fitted trees these are)."""

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    baseline: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        node = np.repeat(self.roots[:, None], len(x), axis=1)  # (trees, rows)
        rows = np.arange(len(x))[None, :]
        while True:
            inner = ~self.leaf[node]
            if not inner.any():
                break
            go_left = x[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.baseline + self.value[node].sum(axis=0)

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(x), -40.0, 40.0)))

    @classmethod
    def of(cls, data: dict[str, Any]) -> Forest:
        feature: list[int] = []
        left: list[int] = []
        right: list[int] = []
        roots: list[int] = []
        threshold: list[float] = []
        value: list[float] = []
        leaf: list[bool] = []
        for tree in data["trees"]:
            offset = len(feature)
            roots.append(offset)
            feature += tree["feature"]
            threshold += tree["threshold"]
            left += [offset + n for n in tree["left"]]
            right += [offset + n for n in tree["right"]]
            leaf += tree["leaf"]
            value += tree["value"]
        if not data["trees"]:
            raise ValueError("a sentence ranker needs at least one tree")
        return cls(np.array(roots, np.int64), np.array(feature, np.int64),
                   np.array(threshold, np.float64), np.array(left, np.int64),
                   np.array(right, np.int64), np.array(leaf, bool),
                   np.array(value, np.float64), float(data["baseline"]))


@cache
def default_ranker() -> Forest:
    """The ranker shipped with qa (`qa/sentence_ranker.json`)."""
    text = resources.files("qa").joinpath("sentence_ranker.json").read_text("utf-8")
    return Forest.of(json.loads(text))
