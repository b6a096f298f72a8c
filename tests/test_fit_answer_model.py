"""The fitting script's cut of a question's candidates to fewer (`--candidates`): the ranker
must be fitted on the rows the evidence step would compute for that many."""

from __future__ import annotations

import numpy as np

from qa.ranking import SIGNALS, ranking_matrix
from scripts.fit_answer_model import _cut

HEADING = SIGNALS.index("heading")


def _candidate(retrieval: float, score: float, heading: float = 0.0) -> dict:
    signals = [0.0] * len(SIGNALS)
    signals[0], signals[HEADING] = retrieval, heading
    signals[SIGNALS.index("first_in_passage")] = 1.0  # a tie on every candidate
    return {"score": score, "ranking": signals + [9.0] * (2 * len(SIGNALS) + 1)}


def test_candidates_within_the_cut_keep_their_rows_as_collected() -> None:
    cands = [_candidate(0.5, 0.6), _candidate(0.9, 0.9)]
    assert _cut(cands, 2) is cands


def test_a_cut_keeps_the_best_retrieved_and_ranks_them_as_the_evidence_step_does() -> None:
    # In the dump, candidates are in the shipped ranker's order; the evidence step computes
    # the rows before ranking, prose first then by score, and ties in rank go by that order.
    cands = [_candidate(0.2, 0.3), _candidate(0.9, 0.9, heading=1.0), _candidate(0.1, 0.1),
             _candidate(0.5, 0.8)]
    kept = _cut(cands, 3)
    assert [c["ranking"][0] for c in kept] == [0.5, 0.2, 0.9]  # 0.1 cut; the heading last
    expected = ranking_matrix([cands[i]["ranking"][:len(SIGNALS)] for i in (3, 0, 1)])
    assert np.array_equal(np.array([c["ranking"] for c in kept]), expected)
    assert kept[0]["ranking"][-1] == 3  # the count of candidates it was ranked among
