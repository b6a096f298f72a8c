"""`qa eval`: metric functions by hand, malformed input, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.evaluation import (
    contains_gold,
    exact_match,
    normalize_answer,
    parse_items,
    percentile,
    token_f1,
)

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_normalize_answer() -> None:
    assert normalize_answer("The  U.S. Army’s “advisory” role!") == "us armys advisory role"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_exact_match() -> None:
    assert exact_match("The Pentagon", ["Pentagon"]) == 1.0
    assert exact_match("Pentagon spokesman", ["Pentagon"]) == 0.0
    assert exact_match("", []) == 1.0  # no answer to an unanswerable question
    assert exact_match("Paris", []) == 0.0


def test_token_f1_by_hand() -> None:
    # pred "around 2500 troops" vs gold "2500": precision 1/3, recall 1 -> F1 0.5
    assert token_f1("around 2,500 troops", ["2,500"]) == pytest.approx(0.5)
    # duplicates count once per occurrence: pred "the the cat" -> tokens [cat] after articles
    assert token_f1("cat cat dog", ["cat dog dog"]) == pytest.approx(2 / 3)
    assert token_f1("nothing shared", ["other words"]) == 0.0
    assert token_f1("x", ["nope", "x"]) == 1.0  # best of the golds
    assert token_f1("", []) == 1.0 and token_f1("anything", []) == 0.0


def test_contains_gold_respects_word_boundaries() -> None:
    assert contains_gold("There are around 2,500 American troops.", ["2,500"])
    assert not contains_gold("In 2019 it fell.", ["201"])
    assert not contains_gold("anything", [])


def test_percentile() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) == 0.0


def test_malformed_lines_are_reported_with_numbers() -> None:
    lines = [
        '{"id": "a", "question": "Q?", "answers": ["x"]}',
        "not json",
        '{"id": "b", "question": "", "answers": []}',
        '{"id": "c", "question": "Q2?", "answers": "x"}',
        "",
        '{"id": "d", "question": "Q3?", "answers": [], "history": ["h"], "extra": 1}',
        "[1, 2]",
    ]
    items, problems = parse_items(lines)
    assert [i.id for i in items] == ["a", "d"]
    assert items[1].history == ["h"]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 7"]


KNOWN_SET = [
    {"id": "1", "question": "How many American troops are in Iraq today?",
     "answers": ["around 2,500"]},
    {"id": "2", "question": "Who is the Pentagon spokesman?", "answers": ["John Kirby"]},
    {"id": "3", "question": "In what year was ISIS’s caliphate defeated?", "answers": ["2019"]},
    {"id": "4", "question": "What is the capital of France?", "answers": []},
    {"id": "5", "question": "What was his rank?", "answers": ["Major General"],
     "history": ["Who was assassinated in Baghdad on January 3?"]},
]


def _run_eval(tmp_path: Path, lines: list[str], *flags: str) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "set.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", "eval", str(data), "--seeds",
         str(Path(__file__).resolve().parents[1] / "seeds"), "--index", str(tmp_path / "index"),
         *flags],
        capture_output=True, text=True, env=ENV, timeout=300, check=False,
    )


@pytest.mark.slow
def test_known_five_question_set_end_to_end(tmp_path: Path) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in KNOWN_SET] + ["{broken"]
    out, report = tmp_path / "preds.jsonl", tmp_path / "report.md"
    proc = _run_eval(tmp_path, lines, "--json", "--out", str(out), "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "line 6" in proc.stderr and "Traceback" not in proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["questions"] == 5 and metrics["answerable"] == 4
    assert metrics["hit@1"] == 1.0 and metrics["sentence_hit@1"] == 1.0
    assert metrics["answer_contains_gold"] == 1.0
    assert metrics["citation_exact"] == 1.0
    assert metrics["abstained_unanswerable"] == 1.0 and metrics["wrongly_abstained"] == 0.0
    assert metrics["exact_match"] >= 0.5  # "around 2,500" and "2019" lead their answers
    predictions = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [p["id"] for p in predictions] == ["1", "2", "3", "4", "5"]
    for p in predictions:
        assert {"id", "question", "answer", "abstained", "confidence", "citations", "passages",
                "latency_ms"} <= set(p)
    text = report.read_text(encoding="utf-8")
    assert "| hit@1 | 1.0 |" in text and "Misses (0 of 5)" in text

    strict = _run_eval(tmp_path, lines, "--strict")
    assert strict.returncode == 1 and "--strict" in strict.stderr
    assert "Traceback" not in strict.stderr


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "qa.cli", "eval", str(tmp_path / "no.jsonl")],
                          capture_output=True, text=True, env=ENV, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("qa: error:") and "Traceback" not in proc.stderr
