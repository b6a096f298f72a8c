"""The sentence ranker: its input rows, the flattened tree evaluator against scikit-learn's
own scores, and the order it gives (fast: no embedding model, no spaCy)."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from qa.chunking import is_heading
from qa.evidence import Candidate, rank
from qa.ranking import SIGNALS, Forest, default_ranker, ranking_matrix
from qa.types import Chunk, Sentence

# Two stumps on feature 0 and one two-level tree on features 1 and 2.
TREES = {"baseline": -0.5, "trees": [
    {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
     "leaf": [False, True, True], "value": [0, -1.0, 1.0]},
    {"feature": [1, 2, 0, 0, 0], "threshold": [0.0, 3.0, 0, 0, 0], "left": [1, 3, 0, 0, 0],
     "right": [2, 4, 0, 0, 0], "leaf": [False, False, True, True, True],
     "value": [0, 0, 0.25, 2.0, -2.0]},
]}


def test_forest_follows_each_tree_to_its_leaf() -> None:
    forest = Forest.of(TREES)
    x = np.array([[0.2, -1.0, 2.0],   # left; left, left: -1 + 2
                  [0.5, -1.0, 3.5],   # at the threshold goes left; left, right: -1 - 2
                  [0.9, 1.0, 0.0]])   # right; right: 1 + 0.25
    assert forest.logits(x).tolist() == pytest.approx([-0.5 + 1.0, -0.5 - 3.0, -0.5 + 1.25])
    p = forest.probability(x)
    assert np.all((p > 0) & (p < 1)) and p[2] > p[0] > p[1]


def test_a_forest_without_trees_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one tree"):
        Forest.of({"baseline": 0.0, "trees": []})


def test_ranking_matrix_holds_signals_distances_and_ranks() -> None:
    signals = [[0.0] * len(SIGNALS), [2.0] * len(SIGNALS), [1.0] * len(SIGNALS)]
    signals[0][0] = 3.0
    m = ranking_matrix(signals)
    n = len(SIGNALS)
    assert m.shape == (3, 3 * n + 1)
    assert m[:, 0].tolist() == [3.0, 2.0, 1.0]
    assert m[:, n].tolist() == [0.0, -1.0, -2.0]  # below the best
    assert m[:, 2 * n].tolist() == [0, 1, 2]  # rank on the first signal
    assert m[:, 2 * n + 1].tolist() == [2, 0, 1]
    assert m[:, -1].tolist() == [3, 3, 3]


def test_the_shipped_ranker_loads_and_reads_its_own_input() -> None:
    data = json.loads(resources.files("qa").joinpath("sentence_ranker.json").read_text())
    width = 3 * len(SIGNALS) + 1
    used = {f for tree in data["trees"] for f, leaf in zip(tree["feature"], tree["leaf"],
                                                          strict=True) if not leaf}
    assert used and max(used) < width
    forest = default_ranker()
    p = forest.probability(ranking_matrix([[0.5] * len(SIGNALS), [0.4] * len(SIGNALS)]))
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_rank_orders_by_the_ranker_and_keeps_headings_last() -> None:
    text = "Title\n\nThe first sentence. The second sentence."
    sentences = (Sentence("d", 0, 0, 5, "Title"), Sentence("d", 1, 7, 26, "The first sentence."),
                 Sentence("d", 2, 27, 47, "The second sentence."))
    assert all(text[s.start:s.end] == s.text for s in sentences)
    chunk = Chunk("d", "d_0", 0, 0, len(text), text, sentences)
    # A one-stump ranker that prefers a lower value of signal 0.
    prefers_low = Forest.of({"baseline": 0.0, "trees": [
        {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, 0, 0],
         "right": [2, 0, 0], "leaf": [False, True, True], "value": [0, 1.0, -1.0]}]})

    def candidate(sentence: Sentence, first: float) -> Candidate:
        signals = [first] + [0.0] * (len(SIGNALS) - 1)
        signals[SIGNALS.index("heading")] = float(is_heading(sentence, chunk))
        return Candidate(sentence, chunk, 1.0, 0.5, (), {}, signals=tuple(signals))

    ranked = rank([candidate(sentences[1], 0.9), candidate(sentences[0], 0.1),
                   candidate(sentences[2], 0.1)], prefers_low)
    assert [c.sentence.index for c in ranked] == [2, 1, 0]  # the heading last despite its score
    assert all(len(c.ranking) == 3 * len(SIGNALS) + 1 for c in ranked)
    assert rank([], prefers_low) == []


def test_a_sentence_that_asks_comes_after_every_statement() -> None:
    """An interview transcript's "TOMAS BRILL: What was wrong with the old bridge?" (a
    speaker's line, no heading) repeats the question's words and was quoted as the answer,
    above the reply that gives it: a sentence that asks answers nothing of its own."""
    text = "BRILL: What was wrong with the old bridge?\n\nVANCE: It had rot in two beams."
    asks, says = Sentence("d", 0, 0, 42, text[:42]), Sentence("d", 1, 44, len(text), text[44:])
    assert asks.text.endswith("?") and says.text.startswith("VANCE")
    chunk = Chunk("d", "d_0", 0, 0, len(text), text, (asks, says))
    prefers_low = Forest.of({"baseline": 0.0, "trees": [
        {"feature": [0, 0, 0], "threshold": [0.5, 0, 0], "left": [1, 0, 0],
         "right": [2, 0, 0], "leaf": [False, True, True], "value": [0, 1.0, -1.0]}]})

    def candidate(sentence: Sentence, first: float) -> Candidate:
        return Candidate(sentence, chunk, 1.0, 0.5, (), {},
                         signals=(first, *[0.0] * (len(SIGNALS) - 1)))

    ranked = rank([candidate(says, 0.9), candidate(asks, 0.1)], prefers_low)
    assert [c.sentence.index for c in ranked] == [1, 0]
