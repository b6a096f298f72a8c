"""Test sets for `qa eval`: a JSON-lines, CSV/TSV or SQuAD 2.0/1.1 file in, questions out.

In: a path. Out: a `TestSet`: the questions (`Item`s), one `Problem` per bad question (its
line number or its place in the SQuAD file, and why), and for SQuAD the articles, which
become the documents the questions are asked against.

JSON lines: `{"id", "question", "answers": [...], "history": [...]?, "kind"?}` per line;
`answers` empty means the documents cannot answer it; `history` lists the earlier turns,
oldest first: questions (the run asks them in turn), or `{"question", "answer"}` objects
whose answer is used as given (as the HTTP API takes them). SQuAD: an object whose `data` lists
articles with `paragraphs` of `context` and `qas`; gold answers are `answers[].text`
(deduplicated) and `is_impossible` questions are the unanswerable ones. A `.jsonl` file is
JSON lines; another is SQuAD when its JSON is SQuAD-shaped (`is_squad`: an article with
`paragraphs`), and a `.json` file must be SQuAD unless it is JSON lines (`_one_json_value`).
Neither is read whole: JSON lines a line at a time, SQuAD an article at a time
(`_squad_stream`). A bad question is a `Problem` (the run
skips and counts it); a file
of the wrong shape is a one-line `QAError` naming the place, e.g. `data[3].paragraphs[2]`.
A SQuAD gold answer its paragraph does not hold is a note (`TestSet.notes`): kept and scored.
JSON lines whose first question carries its paragraph (`context`) and `answers` as
{"text": [...]} are SQuAD as Hugging Face's datasets write it, one question a line
(`parse_squad_rows`): read as the SQuAD file they stand for, each title's paragraphs an
article.
A `.json` file that is one JSON array (pandas' `to_json(orient="records")`) holds the same
question objects, read one at a time as the JSON lines they stand for (`_records`).
A `.csv` or `.tsv` file is a spreadsheet's export (`csv_lines`): a header row naming its
columns, then a question a row, read a row at a time as the JSON lines it stands for.

`build_corpus` writes each article as one document (its title, then its paragraphs
separated by blank lines) and builds its index under `cache_dir/eval/<sha256 of the file>`:
built in a temporary folder and renamed, so the cache never holds half a build; a second run
reuses it and a changed file gets a new folder.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import stat
import sys
import time
import unicodedata
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, BinaryIO

from qa.atomic import file_sha256
from qa.config import MAX_HISTORY, MAX_TURN_ANSWER_CHARS, Settings
from qa.errors import BadQuestion, QAError
from qa.metrics import normalize_loose
from qa.schema import clean_question, earlier_answer
from qa.types import Turn

MAX_TESTSET_BYTES = 512 * 1024 * 1024  # JSON lines, read a line at a time; SQuAD too
# A SQuAD file is read an article at a time; one article is parsed whole, at several times its
# size (the largest of the SQuAD 2.0 train file, the largest published, is under 1 MB)
MAX_ARTICLE_CHARS = 64 * 1024 * 1024
TOO_DEEP = "nested too deeply"  # json.loads raises RecursionError, not ValueError
CORPUS_VERSION = 2  # how the corpus is built (2: its own data folder); a change rebuilds it


@dataclass(frozen=True, slots=True)  # slots: a test set may hold a million of them
class Item:
    """One question of a test set; `answers` empty means it is unanswerable."""

    id: str
    question: str
    answers: tuple[str, ...]
    history: tuple[str | Turn, ...] = ()  # a Turn carries the answer the test set gives
    kind: str | None = None
    where: str = ""  # "line 12" or "data[0].paragraphs[3].qas[1]"


@dataclass(frozen=True)
class Problem:
    """A question that cannot be asked, and why (reported, skipped and counted)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Article:
    """One SQuAD article: the document its questions are asked against (with all others)."""

    doc_id: str
    title: str
    paragraphs: tuple[str, ...]

    def text(self) -> str:
        return "\n\n".join((self.title, *self.paragraphs)) + "\n"


@dataclass(frozen=True)
class TestSet:
    format: str  # "jsonl" | "csv" | "squad"
    items: list[Item]
    problems: list[Problem]
    articles: list[Article]  # SQuAD only
    sha256: str
    notes: tuple[Problem, ...] = ()  # questions kept but worth a word (a gold not in the text)


def _question(record: dict[str, Any]) -> str:
    """The record's question as every `ask` cleans it (`clean_question`), or ValueError
    naming what is wrong with it, in the words the run would use."""
    if "question" not in record:
        raise ValueError("missing 'question'")
    value = record["question"]
    if not isinstance(value, str):
        raise ValueError("'question' must be a string")
    try:
        return clean_question(value)
    except BadQuestion as exc:
        raise ValueError(str(exc)) from None


_SURROGATE = re.compile(r"[\ud800-\udfff]")  # JSON "\ud800": no file can hold it as UTF-8
_NOT_DOCUMENT_TEXT = re.compile(r"[\ud800-\udfff\x00]")  # and a NUL makes it "binary data"


def _check_texts(texts: Iterable[str], what: str) -> None:
    """ValueError if a text holds a lone surrogate (writing it to --out would fail)."""
    if any(_SURROGATE.search(t) for t in texts):
        raise ValueError(f"{what} is not valid text (a lone surrogate)")


def _unique(texts: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(texts))


_YES, _NO = ("true", "yes", "1"), ("false", "no", "0")


def _flag(record: dict[str, Any], field: str) -> bool | None:
    """A yes-or-no field of a question (`is_impossible`, `answerable`): a JSON boolean, 0 or
    1 (a table's export), or the text true/false, yes/no or 1/0 in any case (a spreadsheet's
    TRUE, a script that writes every value as a string); None when absent or null.
    ValueError naming the field and the value for anything else."""
    value = record.get(field)
    if value is None or isinstance(value, bool):
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _YES + _NO:
        return value.strip().lower() in _YES
    shown = repr(value[:40]) if isinstance(value, str) else json.dumps(value)[:40]
    raise ValueError(f"{field!r} must be true or false (or yes or no, 1 or 0), got {shown}")


def _check_flags(record: dict[str, Any], answers: list[str]) -> None:
    """ValueError if the question's `is_impossible` or `answerable` (when given) is not a
    yes or no, or contradicts its `answers` (empty: unanswerable) or each other."""
    impossible, answerable = _flag(record, "is_impossible"), _flag(record, "answerable")
    if impossible is not None and answerable is not None and impossible == answerable:
        raise ValueError("'is_impossible' and 'answerable' disagree")
    if impossible or answerable is False:
        if answers:  # SQuAD 2.0 keeps an impossible question's candidates in plausible_answers
            field = "'is_impossible' is true" if impossible else "'answerable' is false"
            raise ValueError(f"{field} but 'answers' is not empty (plausible answers are not "
                             "gold answers)")
    elif (impossible is False or answerable) and not answers:
        field = "'is_impossible' is false" if impossible is False else "'answerable' is true"
        raise ValueError(f"{field} but 'answers' is empty")


# -- JSON lines ------------------------------------------------------------------------------


_LINE_END = re.compile(r"\r\n|\r|\n")
_HISTORY = "'history' must be a list of questions or {\"question\", \"answer\"} objects"


def _history(value: Any) -> list[str | Turn]:
    """The earlier turns of a JSON-lines question: a string is a question the run asks; an
    object gives the answer shown for it too (null: unknown, so asked), as the HTTP API
    takes it. ValueError naming what is wrong."""
    if not isinstance(value, list):
        raise ValueError(_HISTORY)
    if len(value) > MAX_HISTORY:  # each turn is asked in turn: a long one costs an ask each
        raise ValueError(f"'history' has {len(value):,} turns; at most {MAX_HISTORY} (as the "
                         "HTTP API takes)")
    turns: list[str | Turn] = []
    for n, turn in enumerate(value, start=1):
        if isinstance(turn, str):
            turns.append(turn)
            continue
        if (not isinstance(turn, dict) or not isinstance(turn.get("question"), str)
                or set(turn) - {"question", "answer"}):
            raise ValueError(f"{_HISTORY} (turn {n} is not)")
        answer = turn.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise ValueError(f"'history' turn {n}: 'answer' must be a string or null")
        if answer is not None and len(answer) > MAX_TURN_ANSWER_CHARS:
            raise ValueError(f"'history' turn {n}: 'answer' is too long ({len(answer):,} "
                             f"characters; at most {MAX_TURN_ANSWER_CHARS:,})")
        _check_texts([answer or ""], f"'history' turn {n}: 'answer'")
        answer = earlier_answer(answer)  # a placeholder ("", "..."): unknown, so asked
        turns.append(Turn(turn["question"], answer) if answer is not None else turn["question"])
    return turns


def jsonl_lines(text: str) -> Iterator[str]:
    """The lines of a JSON-lines text, split at line feeds and carriage returns only: JSON
    allows U+2028, U+2029 and U+0085 raw inside a string (`json.dumps(ensure_ascii=False)`
    writes them so), and `str.splitlines` would cut such a line in two."""
    start = 0
    for end in _LINE_END.finditer(text):
        yield text[start:end.start()]
        start = end.end()
    if start < len(text):
        yield text[start:]


JSONL_FIELDS = ("id", "question", "answers", "history", "kind", "is_impossible", "answerable")
MAX_NOTED = 10  # distinct unknown fields noted
# What one run keeps, about 0.9 KB a question with its outcome: 1,000,000 is about 0.9 GB
# (and some 14 hours of asking); more is asked in parts with --limit. A file of many more
# bad lines than that is not a test set.
MAX_QUESTIONS = 1_000_000
MAX_PROBLEMS = 100_000


class TooMuch(QAError):
    """A test set past what one run keeps (MAX_QUESTIONS, MAX_PROBLEMS)."""


def parse_jsonl(lines: Iterable[str], notes: list[Problem] | None = None,
                limit: int | None = None, unit: str = "line") -> tuple[list[Item], list[Problem]]:
    """Items of a JSON-lines test set, and one problem per bad line (with its number).
    With `limit`, only the first `limit` good items are kept (every line is still checked).
    QAError past MAX_QUESTIONS kept or MAX_PROBLEMS bad lines: what a run holds is bounded.
    `notes` (if given) gets one note per field qa does not read, at its first line: extra
    fields are allowed, but a misspelt "histroy" would silently ask without the history.
    `unit` names what a number counts: "line", or "record" for a JSON array's (`_records`)."""
    items: list[Item] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    unknown: dict[str, list[int]] = {}  # field -> [first line, lines]; at most MAX_NOTED
    for number, line in enumerate(lines, start=1):
        line = line.removeprefix("\ufeff")  # a byte order mark opens each file `cat` joined
        if not line.strip():
            continue
        where = f"{unit} {number}"
        try:
            row = _json_object(line)
            if CSV_PROBLEM in row:
                raise ValueError(row[CSV_PROBLEM])
            if is_squad(row):  # else "missing 'question'", which says nothing of why
                raise ValueError(f"this {unit} is a whole SQuAD file (a 'data' list of "
                                 "articles), not a question: a .jsonl file is read as JSON "
                                 "lines, one question a line; name a SQuAD file .json")
            for key in row:
                if key in unknown:
                    unknown[key][1] += 1
                elif key not in JSONL_FIELDS and len(unknown) < MAX_NOTED:
                    unknown[key] = [number, 1]
            question = _question(row)
            answers, history = row.get("answers"), row.get("history") or []
            if "answers" not in row:
                raise ValueError("missing 'answers' (the gold answers; [] when the documents "
                                 "cannot answer)")
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise ValueError("'answers' must be a list of strings")
            if any(not a.strip() for a in answers):
                raise ValueError("'answers' holds a blank answer (a question the documents "
                                 "cannot answer has \"answers\": [])")
            history = _history(history)
            _check_flags(row, answers)
            _check_texts(answers, "'answers'")
            raw_id, kind = row.get("id", f"{unit}-{number}"), row.get("kind")
            if (not isinstance(raw_id, str | int) or isinstance(raw_id, bool)
                    or not str(raw_id).strip()):
                raise ValueError("'id' must be a non-empty string")
            if kind is not None and not isinstance(kind, str):
                raise ValueError("'kind' must be a string")
            _check_texts([str(raw_id), kind or ""], "'id' or 'kind'")
            if str(raw_id) in seen:
                raise ValueError(f"duplicate id {str(raw_id)!r}")
            seen.add(str(raw_id))
            if limit is not None and len(items) >= limit:
                continue
            if len(items) >= MAX_QUESTIONS:
                raise TooMuch(f"it holds more than {MAX_QUESTIONS:,} questions, more than one "
                              "run keeps: ask it in parts (--limit N)")
            items.append(Item(str(raw_id), question, _unique(answers), tuple(history),
                              sys.intern(kind) if kind else None, where))
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            if len(problems) > MAX_PROBLEMS:
                raise TooMuch(f"it has more than {MAX_PROBLEMS:,} bad lines (the first: "
                              f"{problems[0]}): is it a JSON-lines test set?") from None
    if notes is not None:
        for key, (first, count) in unknown.items():
            notes.append(Problem(f"{unit} {first}", (
                f"field {key[:40]!r} ({count:,} {unit}(s)) is not one qa reads (it reads "
                f"{', '.join(JSONL_FIELDS)}): ignored")))
    return items, problems


# -- CSV and TSV: a spreadsheet's export ------------------------------------------------------

# A spreadsheet of questions, exported: a header row, then one question a row. Its columns,
# by name in any case: "question" (needed), "answers" or "answer" (the golds, several split
# by "|"; empty for a question the documents cannot answer), "id" and "kind". A `.csv` file's
# cells are separated by commas, or by semicolons where its header says so (`_delimiter`).
CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}
WORKBOOKS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")  # what they export is read
CSV_COLUMNS = {"question": "question", "answers": "answers", "answer": "answers",
               "id": "id", "kind": "kind", "is_impossible": "is_impossible",
               "answerable": "answerable"}
ANSWER_SEPARATOR = "|"
MAX_HEADER_CHARS = 64 * 1024  # of the first line, read to tell its separator
# The key of what `csv_lines` yields for a row that is no question (`parse_jsonl` says why)
CSV_PROBLEM = "\x00qa: a bad CSV row"


def _column_names(line: str, delimiter: str) -> list[str | None]:
    try:
        header = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a quoted cell the first line does not close
        return []
    return [CSV_COLUMNS.get(h.strip().lower()) for h in header]


_SEP_LINE = re.compile(r"sep=(.)\r?\n?", re.DOTALL)  # Excel's line naming the separator
_BLANK_ROW = " \t\r\n,;"  # a row of empty cells, as a sheet exports the rows above a table


def _delimiter(fh: IO[str], delimiter: str) -> tuple[str, bool]:
    """The separator of a CSV file's cells, and whether a first line names it (`sep=;`, as
    Excel writes and reads it: the header row is then the second line). Else "," unless
    the header row names a question column only when split at ";", as Excel saves "CSV"
    where the decimal mark is a comma (German, French...). `fh` is left at its start."""
    first = fh.readline(MAX_HEADER_CHARS)
    if named := _SEP_LINE.fullmatch(first):
        fh.seek(0)
        return named.group(1), True
    read = len(first)  # blank rows above the header (",,,", ";;;"): the header tells
    while first and not first.strip(_BLANK_ROW) and read < MAX_HEADER_CHARS:
        first = fh.readline(MAX_HEADER_CHARS)
        read += len(first)
    fh.seek(0)
    if delimiter != ",":
        return delimiter, False
    if "question" not in _column_names(first, ",") and "question" in _column_names(first, ";"):
        return ";", False
    return delimiter, False


def csv_lines(path: Path, delimiter: str, notes: list[Problem]) -> Iterator[str]:
    """The questions of a CSV or TSV test set as the JSON lines `parse_jsonl` reads, a row at
    a time, each on the line number its row ends on (a cell may hold line breaks); a column
    qa does not read is noted once. QAError: no header, no "question" column, not UTF-8, or
    a row the csv module cannot read (named by its line)."""
    where = f"test set {str(path)!r}"
    started = 1  # the line the row being read starts on
    encoding = "utf-16" if _is_utf16(path) else "utf-8-sig"  # either reads its mark
    try:
        with path.open(encoding=encoding, newline="") as fh:
            delimiter, named = _delimiter(fh, delimiter)
            # strict: a quote never closed swallowed the rest of the file into one cell
            rows = csv.reader(fh, delimiter=delimiter, strict=True)
            if named:
                next(rows)  # `sep=;`: not a row of cells
                yield ""  # (its line)
            started = rows.line_num + 1
            header = next(rows, None)
            while header is not None and not any(cell.strip(_BLANK_ROW) for cell in header):
                started = rows.line_num + 1  # a blank row above the header: skipped
                header = next(rows, None)
            if header is None:
                raise QAError(f"{where} is empty: expected a header row naming its columns "
                              "(question, answers, id, kind)")
            names = [CSV_COLUMNS.get(h.strip().lower()) for h in header]
            if "question" not in names:
                shown = ", ".join(repr(h[:40]) for h in header[:8])
                raise QAError(f"{where} has no 'question' column (its header: {shown}); "
                              "the columns qa reads are question, answers (several split by "
                              f"'{ANSWER_SEPARATOR}'), id and kind")
            for h, name in zip(header, names, strict=True):
                if name is None and h.strip():
                    notes.append(Problem(f"line {rows.line_num}", f"column "
                                         f"{h.strip()[:40]!r} is not one qa "
                                         "reads (question, answers, id, kind): ignored"))
            line = 1 if named else 0  # the lines yielded
            while line < rows.line_num:  # the header's line, and blank ones above it
                yield ""
                line += 1
            while True:
                started = rows.line_num + 1
                if (row := next(rows, None)) is None:
                    break
                while line < rows.line_num - 1:  # blank lines, a cell's line breaks
                    yield ""
                    line += 1
                line += 1
                if not any(cell.strip() for cell in row):
                    yield ""
                    continue
                if any(cell.strip() for cell in row[len(names):]):  # else dropped unseen
                    yield json.dumps({CSV_PROBLEM: (
                        f"the row has {len(row)} cells where the header names {len(names)} "
                        f"columns: a cell holding the separator {delimiter!r} must be quoted")})
                    continue
                record: dict[str, Any] = {"answers": []}
                for name, cell in zip(names, row, strict=False):
                    if name == "answers":
                        record["answers"] = [a.strip() for a in cell.split(ANSWER_SEPARATOR)
                                             if a.strip()]
                    elif name is not None and cell.strip():
                        record[name] = cell.strip()
                record.setdefault("question", "")
                record.setdefault("id", f"line-{rows.line_num}")
                yield json.dumps(record, ensure_ascii=False)
    except UnicodeDecodeError:
        raise QAError(f"{where} is not {'UTF-16' if encoding == 'utf-16' else 'UTF-8'} text"
                      ) from None
    except csv.Error as exc:
        raise QAError(f"{where}: line {started}: {_csv_error(str(exc), delimiter)}") from None


def _csv_error(message: str, delimiter: str) -> str:
    """The csv module's complaint about a cell, for a person."""
    twice = "a quote inside a cell is written twice (\"\")"
    if message == "unexpected end of data":
        return f"a quoted cell is never closed (it runs to the end of the file); {twice}"
    if message.endswith("expected after '\"'"):
        return (f"a quoted cell is followed by more text before its separator "
                f"{delimiter!r}; {twice}")
    return message


# -- SQuAD -----------------------------------------------------------------------------------


def is_squad(data: Any) -> bool:
    """SQuAD-shaped: an object whose `data` lists articles with `paragraphs` (a JSON-lines
    question that happens to have a "data" key is not)."""
    return (isinstance(data, dict) and isinstance(data.get("data"), list)
            and any(isinstance(a, dict) and isinstance(a.get("paragraphs"), list)
                    for a in data["data"]))


def _doc_id(title: str, taken: set[str], number: int,
            tried: dict[str, int] | None = None) -> str:
    """A file-name-safe, unique id for an article's document ("Beyoncé" -> "Beyonce").
    `tried` keeps the last number each name was tried with: a file of thousands of articles
    with one title numbers each in one step, not by trying every number before it."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_title).strip("._-")[:80] or f"article-{number}"
    tried = {} if tried is None else tried
    doc_id, n = base, tried.get(base.lower(), 1) + 1
    while doc_id.lower() in taken:
        doc_id, n = f"{base}-{n}", n + 1
    tried[base.lower()] = n - 1
    taken.add(doc_id.lower())
    return doc_id


def _squad_question(qa: Any, where: str, seen: set[str]) -> Item:
    """One question; ValueError saying what is wrong with it."""
    if not isinstance(qa, dict):
        raise ValueError("a question must be a JSON object")
    qid = qa.get("id")
    if isinstance(qid, bool) or not isinstance(qid, str | int) or not str(qid).strip():
        raise ValueError("the question has no 'id'")
    qid = str(qid)
    _check_texts([qid], "'id'")
    if qid in seen:
        raise ValueError(f"duplicate id {qid!r}")
    question = _question(qa)
    impossible = bool(_flag(qa, "is_impossible"))
    answers = qa.get("answers", [] if impossible else None)
    if not isinstance(answers, list):
        raise ValueError("'answers' must be a list")
    texts = []
    for j, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise ValueError(f"answers[{j}] must be an object with a 'text' string")
        texts.append(answer["text"])
    _check_texts(texts, "'answers'")
    if impossible and texts:  # the official script would score it as answerable
        raise ValueError("'is_impossible' is true but 'answers' is not empty")
    seen.add(qid)
    return Item(qid, question, () if impossible else _unique(texts), (), None, where)


def _missing_golds(item: Item, context: str) -> list[Problem]:
    """A note per gold answer that its paragraph (`normalize_loose`d) does not hold, e.g. a
    typo: no answer can match it, and the figures alone would not show why."""
    return [Problem(f"{item.where} (id {item.id!r})",
                    f"gold answer {gold!r} is not in its paragraph (scored as given)")
            for gold in item.answers if normalize_loose(gold) not in context]


class SquadShape(QAError):
    """A SQuAD file of the wrong shape (says where in it); `load_testset` names the file."""


class _SquadParts:
    """What the articles of a SQuAD file add up to, one article at a time (`add`)."""

    def __init__(self, notes: list[Problem] | None = None, limit: int | None = None) -> None:
        self.limit = limit  # questions kept (every one is checked); None: all
        self.articles: list[Article] = []
        self.items: list[Item] = []
        self.problems: list[Problem] = []
        self.notes = notes
        self.taken: set[str] = set()
        self.tried: dict[str, int] = {}  # `_doc_id`
        self.seen: set[str] = set()
        self.count = 0  # articles read

    def add(self, article: Any) -> None:
        """The next article (`data[count]`): its document, questions and bad questions;
        QAError for a wrong shape."""
        a, items, notes = self.count, self.items, self.notes
        self.count += 1
        place = f"data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise SquadShape(f"{place}: an article must be an object with a 'paragraphs' "
                             "list")
        title = article.get("title")
        if title is not None and not isinstance(title, str):
            raise SquadShape(f"{place}.title: must be a string")
        title = (title or "").replace("_", " ").strip() or f"Article {a + 1}"
        if _NOT_DOCUMENT_TEXT.search(title):
            raise SquadShape(f"{place}.title: not valid text (a lone surrogate or a NUL "
                             "character)")
        contexts = []
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"{place}.paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise SquadShape(f"{where}: a paragraph must be an object with a 'context' "
                                 "string")
            qas = paragraph.get("qas", [])
            if not isinstance(qas, list):
                raise SquadShape(f"{where}.qas: must be a list")
            if _NOT_DOCUMENT_TEXT.search(paragraph["context"]):  # the article could not be
                raise SquadShape(f"{where}.context: not valid text (a lone surrogate or a "
                                 "NUL character)")  # written, or would be skipped as binary data
            if paragraph["context"].strip():
                contexts.append(paragraph["context"].strip())
            normalized: str | None = None
            for q, qa in enumerate(qas):
                try:
                    item = _squad_question(qa, f"{where}.qas[{q}]", self.seen)
                except ValueError as exc:
                    qid = qa.get("id") if isinstance(qa, dict) else None
                    label = f" (id {qid!r})" if isinstance(qid, str) and qid else ""
                    self.problems.append(Problem(f"{where}.qas[{q}]{label}", str(exc)))
                    if len(self.problems) > MAX_PROBLEMS:
                        raise TooMuch(f"it has more than {MAX_PROBLEMS:,} bad questions (the "
                                      f"first: {self.problems[0]})") from None
                    continue
                if notes is not None and item.answers:
                    if normalized is None:
                        normalized = normalize_loose(paragraph["context"])
                    notes += _missing_golds(item, normalized)
                if self.limit is not None and len(items) >= self.limit:
                    continue  # checked, not kept
                if len(items) >= MAX_QUESTIONS:
                    raise TooMuch(f"it holds more than {MAX_QUESTIONS:,} questions, more than "
                                  "one run keeps: ask it in parts (--limit N)")
                items.append(item)
        if contexts:
            self.articles.append(Article(_doc_id(title, self.taken, a + 1, self.tried), title,
                                         tuple(contexts)))

    def result(self) -> tuple[list[Article], list[Item], list[Problem]]:
        if not self.articles:
            raise SquadShape("the SQuAD file holds no paragraphs of text")
        return self.articles, self.items, self.problems


def parse_squad(data: Any, notes: list[Problem] | None = None
                ) -> tuple[list[Article], list[Item], list[Problem]]:
    """Articles, questions and bad questions of a SQuAD file; QAError for a wrong shape.
    `notes` (if given) collects the gold answers their paragraph does not hold."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise QAError("not a SQuAD file: expected a JSON object with a 'data' list of articles")
    parts = _SquadParts(notes)
    for article in data["data"]:
        parts.add(article)
    return parts.result()


# -- SQuAD as Hugging Face's datasets write it: one question a line ------------------------------


def is_squad_row(line: str) -> bool:
    """A JSON line of Hugging Face's SQuAD (`Dataset.to_json`): an object with the question's
    paragraph, `context`, beside `question` and `answers` as {"text": [...]} (a JSON-lines
    question with a `context` of its own and `answers` as a list stays one: its documents
    are the folder's)."""
    try:
        row = json.loads(line.removeprefix("\ufeff"))
    except (ValueError, RecursionError):
        return False
    return (isinstance(row, dict) and isinstance(row.get("context"), str)
            and "question" in row and isinstance(row.get("answers"), dict)
            and "text" in row["answers"])


_SQUAD_ROW_ANSWERS = ("'answers' must be {\"text\": [...]} (Hugging Face's SQuAD rows) or a "
                      "list of strings")


def parse_squad_rows(lines: Iterable[str], notes: list[Problem] | None = None,
                     limit: int | None = None, unit: str = "line"
                     ) -> tuple[list[Article], list[Item], list[Problem]]:
    """Articles, questions and bad questions of SQuAD rows, one question a line (`{"id",
    "title", "context", "question", "answers": {"text": [...], "answer_start": [...]}}`): the
    SQuAD file they stand for, each title's distinct paragraphs an article (in the order
    first met). Answers as a list of strings are read too; none is unanswerable. A bad line is
    a problem named by its number, as in JSON lines; `notes` gets the gold answers their
    paragraph does not hold. Memory holds the paragraphs once, as for a SQuAD file."""
    contexts: dict[str, dict[str, None]] = {}  # title -> its paragraphs, in order
    items: list[Item] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    normalized: tuple[str, str] = ("", "")  # the last paragraph, normalised once
    for number, line in enumerate(lines, start=1):
        line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        where = label = f"{unit} {number}"
        try:
            row = _json_object(line)
            if isinstance(row.get("id"), str) and row["id"]:
                label = f"{where} (id {row['id']!r})"
            context, title = row.get("context"), row.get("title", "")
            if not isinstance(context, str) or not context.strip():
                raise ValueError("missing 'context' (the paragraph the question is asked of)")
            if _NOT_DOCUMENT_TEXT.search(context):
                raise ValueError("'context' is not valid text (a lone surrogate or a NUL)")
            if not isinstance(title, str) or _NOT_DOCUMENT_TEXT.search(title):
                raise ValueError("'title' must be text")
            answers = row.get("answers")
            if isinstance(answers, dict):
                answers = answers.get("text")
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise ValueError(_SQUAD_ROW_ANSWERS)
            qa = {"id": row.get("id"), "question": row.get("question"),
                  "answers": [{"text": a} for a in answers], "is_impossible": not answers}
            item = _squad_question(qa, where, seen)
        except ValueError as exc:
            problems.append(Problem(label, str(exc)))
            if len(problems) > MAX_PROBLEMS:
                raise TooMuch(f"it has more than {MAX_PROBLEMS:,} bad lines (the first: "
                              f"{problems[0]})") from None
            continue
        context = context.strip()
        contexts.setdefault(title.replace("_", " ").strip(), {})[context] = None
        if notes is not None and item.answers:
            if normalized[0] != context:
                normalized = (context, normalize_loose(context))
            notes += _missing_golds(item, normalized[1])
        if limit is not None and len(items) >= limit:
            continue  # checked, not kept
        if len(items) >= MAX_QUESTIONS:
            raise TooMuch(f"it holds more than {MAX_QUESTIONS:,} questions, more than one run "
                          "keeps: ask it in parts (--limit N)")
        items.append(item)
    taken: set[str] = set()
    tried: dict[str, int] = {}
    articles = [Article(_doc_id(title or f"Article {n}", taken, n, tried),
                        title or f"Article {n}", tuple(paragraphs))
                for n, (title, paragraphs) in enumerate(contexts.items(), start=1)]
    return articles, items, problems


# -- reading ---------------------------------------------------------------------------------


def _is_utf16(path: Path) -> bool:
    """Does the file open with a UTF-16 byte order mark (as Windows PowerShell 5 and
    Notepad's "Unicode" save text)? A UTF-32 one is not (it starts with the same bytes)."""
    with path.open("rb") as fh:
        start = fh.read(4)
    return start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and \
        start != codecs.BOM_UTF32_LE


class _Utf16AsUtf8(io.RawIOBase):
    """A UTF-16 file (with its byte order mark) as the UTF-8 bytes of its text, recoded a
    block at a time: the readers of a test set read UTF-8, and memory holds a block."""

    BLOCK = 1 << 16

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._fh = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-16")()  # reads the mark
        self._out = memoryview(b"")
        self._read = 0  # bytes of the file read so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._out:
            raw = self._fh.read(self.BLOCK)
            at = self._read - len(self._decoder.getstate()[0])
            self._read += len(raw)
            try:
                text = self._decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                raise QAError(f"test set {str(self._path)!r} is not UTF-16 text (bad bytes at "
                              f"offset {at + exc.start})") from None
            if not raw and not text:
                return 0
            self._out = memoryview(text.encode("utf-8"))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _open_bytes(path: Path) -> BinaryIO:
    """The file's text as UTF-8 bytes: the file itself, or a UTF-16 one recoded as read."""
    if _is_utf16(path):
        return io.BufferedReader(_Utf16AsUtf8(path))
    return path.open("rb")


class _Reader:
    """The bytes of a test set, read once in blocks: the SHA-256 of the whole file (the key of
    a SQuAD corpus) is taken as they pass, so no copy of the file is kept."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.offset = 0  # of the next byte in the file

    def _bad_text(self, exc: UnicodeDecodeError, at: int) -> QAError:
        return QAError(f"test set {str(self.path)!r} is not UTF-8 text "
                       f"(bad byte at offset {at + exc.start})")

    def lines(self) -> Generator[str, None, None]:
        """The lines of a JSON-lines file, split as `jsonl_lines` splits them, one at a time.
        A line longer than MAX_LINE_BYTES is yielded as LONG_LINE (a problem, not a question)
        and never held whole."""
        with _open_bytes(self.path) as fh:
            first = True
            while True:
                raw = fh.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    break
                at = self.offset
                self.digest.update(raw)
                self.offset += len(raw)
                if first and raw.startswith(codecs.BOM_UTF8):
                    raw, at = raw[3:], at + 3
                first = False
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                        raw = fh.readline(1 << 20)
                        self.digest.update(raw)
                        self.offset += len(raw)
                    yield LONG_LINE
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise self._bad_text(exc, at) from None
                text = text.removesuffix("\n").removesuffix("\r")
                yield from text.split("\r")

    def sha256(self) -> str:
        return self.digest.hexdigest()


class NotJson(ValueError):
    """The file is not valid JSON; the message is json's, with the place in the file."""


class NotSquad(Exception):
    """Valid so far, but not SQuAD-shaped (no object with a 'data' list at the top)."""


_JSON = json.JSONDecoder()
_SPACE = " \t\n\r"
_TOKEN = 16  # a JSON token cut off at the end of a block fails this close to the end


class _JsonStream:
    """One JSON document read a block at a time, decoded a value at a time
    (`json.JSONDecoder.raw_decode`): memory holds the value being decoded, not the file.
    Errors are `NotJson` with json's message and the place in the whole file."""

    BLOCK = 1 << 20

    def __init__(self, reader: _Reader, fh: BinaryIO) -> None:
        self.reader, self.fh = reader, fh
        self.text = ""  # decoded, not yet consumed from `pos` on
        self.pos = 0
        self.dropped = 0  # characters consumed and dropped before `text`
        self.lines = 0  # newlines among them
        self.column0 = 0  # characters after the last of them
        self.eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._first = True

    def _fill(self, wanted: int = 0) -> bool:
        """Read at least a block (or `wanted` bytes) more; False at the end of the file."""
        if self.eof:
            return False
        if self.pos > len(self.text) // 2:  # drop what was consumed
            gone = self.text[:self.pos]
            newlines = gone.count("\n")
            self.column0 = (len(gone) - 1 - gone.rindex("\n") if newlines
                            else self.column0 + len(gone))
            self.lines += newlines
            self.dropped += len(gone)
            self.text, self.pos = self.text[self.pos:], 0
        raw = self.fh.read(max(self.BLOCK, wanted))
        at = self.reader.offset
        self.reader.digest.update(raw)
        self.reader.offset += len(raw)
        if self._first and raw.startswith(codecs.BOM_UTF8):
            raw, at = raw[3:], at + 3
        self._first = False
        pending = len(self._decoder.getstate()[0])
        try:
            self.text += self._decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise self.reader._bad_text(exc, at - pending) from None
        self.eof = not raw
        return True

    def error(self, message: str, pos: int | None = None) -> NotJson:
        """json's message at `pos` of `text` (default: here): line, column and character
        counted from the start of the file."""
        pos = self.pos if pos is None else pos
        before = self.text[:pos]
        newlines = before.count("\n")
        line = self.lines + newlines + 1
        column = (pos - before.rindex("\n") if newlines else self.column0 + pos + 1)
        return NotJson(f"{message}: line {line} column {column} (char {self.dropped + pos})")

    def peek(self) -> str:
        """The next character that is not white space ("" at the end of the file)."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
                self.pos += 1
            if self.pos < len(self.text) or not self._fill():
                return self.text[self.pos:self.pos + 1]

    def take(self, char: str, expected: str) -> None:
        """Consume `char` (after white space), else NotJson "Expecting `expected`"."""
        if self.peek() != char:
            raise self.error(f"Expecting {expected}")
        self.pos += 1

    def value(self, cap: int, what: str) -> Any:
        """The next JSON value, decoded whole; QAError if it is over `cap` characters."""
        self.peek()
        while True:
            try:
                value, end = _JSON.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or \
                    exc.pos >= len(self.text) - _TOKEN
                if self.eof or not cut:
                    raise self.error(exc.msg, exc.pos) from None
            except RecursionError:
                raise NotJson(TOO_DEEP) from None
            else:
                if end < len(self.text) or self.eof:  # a number may go on in the next block
                    self.pos = end
                    return value
            if len(self.text) - self.pos > cap:
                raise QAError(f"test set {str(self.reader.path)!r}: {what} is larger than "
                              f"{cap:,} characters of JSON; split it")
            self._fill(len(self.text) - self.pos)  # doubles: linear in the value's size


def _squad_stream(reader: _Reader, fh: BinaryIO, parts: _SquadParts, strict: bool) -> None:
    """Read a SQuAD file from `fh` into `parts`, an article at a time: memory holds one
    article's JSON, not the file's. NotJson for invalid JSON, NotSquad when it is not
    SQuAD-shaped (with `strict`, a `.json` file: a QAError saying so), QAError for an article
    of the wrong shape or over MAX_ARTICLE_CHARS."""
    stream = _JsonStream(reader, fh)
    if stream.peek() != "{":
        raise NotSquad
    stream.pos += 1
    seen_data = comma = False
    while stream.peek() != "}" or comma:  # `{}` is an object, `{"a": 1,}` is not
        if stream.peek() != '"':
            raise stream.error("Expecting property name enclosed in double quotes")
        key = stream.value(MAX_ARTICLE_CHARS, "a key")
        stream.take(":", "':' delimiter")
        if key != "data":
            stream.value(MAX_ARTICLE_CHARS, f"the value of {key!r:.40}")
        elif seen_data and parts.count:
            raise QAError(f"test set {str(reader.path)!r} has a second 'data' list of "
                          "articles: merge them into one")
        elif seen_data or stream.peek() != "[":
            stream.value(MAX_ARTICLE_CHARS, "the value of 'data'")  # valid JSON at least?
            raise NotSquad
        else:
            seen_data = True
            stream.pos += 1
            # Until an article has paragraphs, a file that need not be SQuAD (not `strict`)
            # may be JSON lines: its articles are not added (nor held: only the first)
            sure, first = strict, None
            if stream.peek() == "]":
                stream.pos += 1
            else:
                while True:
                    article = stream.value(MAX_ARTICLE_CHARS, f"data[{parts.count}]")
                    if sure:
                        parts.add(article)
                    elif isinstance(article, dict) and isinstance(
                            article.get("paragraphs"), list):
                        if first is not None:
                            parts.add(first)  # SQuAD after all: data[0] is a wrong shape
                        sure = True
                        parts.add(article)
                    elif first is None:
                        first = article
                    del article
                    if stream.peek() == "]":
                        stream.pos += 1
                        break
                    stream.take(",", "',' delimiter")
            if not sure:
                raise NotSquad  # no article has paragraphs: JSON lines, perhaps
        comma = stream.peek() != "}"
        if comma:
            stream.take(",", "',' delimiter")
    stream.pos += 1
    if not seen_data:
        raise NotSquad
    if stream.peek():
        raise stream.error("Extra data")


MAX_LINE_BYTES = 4 * 1024 * 1024  # one JSON-lines question; a question is a few KB at most
LONG_LINE = "\x00long line"  # a line no question fits in (JSON text cannot start with NUL)


def _table_suffix(line: str) -> str:
    """".tsv" or ".csv" if `line` is a table's header naming a question column (Excel's
    "Unicode Text" export is a tab-separated table named .txt), else ""."""
    if line.lstrip().startswith(("{", "[")):
        return ""
    for delimiter in ("\t", ",", ";"):
        if delimiter in line and "question" in _column_names(line, delimiter):
            return ".tsv" if delimiter == "\t" else ".csv"
    return ""


def _json_object(line: str) -> dict[str, Any]:
    """One line of JSON lines as its object; ValueError says why it is none (too long, not
    JSON, nested too deep, or another JSON value)."""
    if line == LONG_LINE:
        raise ValueError(f"the line is longer than {MAX_LINE_BYTES:,} bytes")
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc.args[0].split(':')[0]})") from None
    except RecursionError:
        raise ValueError(f"not valid JSON ({TOO_DEEP})") from None
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    return row


def _one_json_value(path: Path, suffix: str) -> bool:
    """Might the file be one JSON value (a SQuAD file) rather than JSON lines? Only the start
    is read: a file whose first line is a JSON value of its own, followed by more lines, is
    JSON lines (as one value it would be invalid JSON), even a `.json` file: Hugging Face's
    `Dataset.to_json` writes JSON lines whatever the name. Another `.json` file is one value."""
    if suffix == ".jsonl":
        return False
    text = _head(path)
    if not text:  # no question at all, whatever the name ("holds no questions")
        return False
    if not text.startswith("{"):
        return suffix == ".json"
    return _not_a_line_of_many(text)


def _json_array(path: Path, suffix: str) -> bool:
    """Is the `.json` file one JSON array (pandas' `to_json(orient="records")`), not JSON
    lines? It opens with "[", and its first line is not a JSON value of its own followed by
    more. (Another name is told as before: JSON lines unless SQuAD-shaped.)"""
    if suffix != ".json":
        return False
    text = _head(path)
    return text.startswith("[") and _not_a_line_of_many(text)


def _head(path: Path) -> str:
    """The file's first MiB as text, without a byte order mark or leading blanks."""
    with _open_bytes(path) as fh:
        head = fh.read(1 << 20)
    return head.removeprefix(codecs.BOM_UTF8).decode("utf-8", "replace").lstrip()


def _not_a_line_of_many(text: str) -> bool:
    """Is `text` (the start of a file) not a JSON value on its first line followed by more
    lines, as JSON lines are? Then it may be one JSON value spread over lines."""
    first, sep, rest = text.partition("\n")
    if not sep or not rest.strip():
        return True
    try:
        json.loads(first)
    except (ValueError, RecursionError):
        return True
    return False


def _records(reader: _Reader, fh: BinaryIO) -> Iterator[str]:
    """The elements of a JSON array, one at a time, each as the JSON line it stands for:
    memory holds one record, not the file. NotJson where the file is not valid JSON."""
    stream = _JsonStream(reader, fh)
    stream.take("[", "'['")
    if stream.peek() == "]":
        stream.pos += 1
    else:
        number = 1
        while True:
            record = stream.value(MAX_LINE_BYTES, f"record {number}")
            yield json.dumps(record, ensure_ascii=False)
            if stream.peek() == "]":
                stream.pos += 1
                break
            stream.take(",", "',' delimiter")
            number += 1
    if stream.peek():
        raise stream.error("Extra data")


def _load_records(path: Path, limit: int | None) -> TestSet:
    """A JSON array of question objects (pandas' `to_json(orient="records")`) as the JSON
    lines it stands for, each named "record N"; of Hugging Face SQuAD rows, as SQuAD."""
    reader = _Reader(path)
    notes: list[Problem] = []
    try:
        with _open_bytes(path) as fh:
            records = _records(reader, fh)
            first = next(records, "")
            if first and not first.startswith("{"):  # [1, 2]: no test set of any kind
                raise QAError(f"{str(path)!r} is not a SQuAD file or a JSON array of question "
                              "objects (its first element is not a JSON object)")
            lines = itertools.chain([first], records)
            if is_squad_row(first):
                articles, items, problems = parse_squad_rows(lines, notes, limit, "record")
                if not articles:
                    raise QAError(f"test set {str(path)!r} holds no paragraphs of text")
                return TestSet("squad", items, problems, articles, reader.sha256(),
                               tuple(notes))
            items, problems = parse_jsonl(lines, notes, limit, "record")
    except NotJson as exc:
        raise QAError(f"{str(path)!r} is not valid JSON ({exc})") from None
    except TooMuch as exc:
        raise QAError(f"test set {str(path)!r}: {exc}") from None
    return TestSet("jsonl", items, problems, [], reader.sha256(), tuple(notes))


def load_testset(path: Path, limit: int | None = None) -> TestSet:
    """Read a test set: a `.jsonl` file as JSON lines; another as SQuAD when it is
    SQuAD-shaped (a `.json` file must be), else as JSON lines. With `limit`, only the first
    `limit` good questions are kept (every question is still checked).

    Neither is held whole: JSON lines are read a line at a time, a SQuAD file an article at
    a time (`_squad_stream`), so memory holds the questions and the articles' text, and
    while reading one article's JSON (at most MAX_ARTICLE_CHARS), not the file's.

    Its text is UTF-8 (a byte order mark or none) or UTF-16 with a byte order mark (as
    Windows PowerShell 5 and Notepad's "Unicode" save it), recoded as it is read; the
    `sha256` is of the file's bytes either way."""
    try:
        st = path.stat()
        size = st.st_size
        if stat.S_ISFIFO(st.st_mode):  # `qa eval <(jq ...)`, `qa eval /dev/stdin`
            raise QAError(f"test set {str(path)!r} is a pipe, not a file: qa eval reads a test "
                          "set more than once; save it to a file first")
        if not path.is_file():
            raise QAError(f"test set {str(path)!r} is not a file")
        if size > MAX_TESTSET_BYTES:
            raise QAError(f"test set {str(path)!r} is too large ({size:,} bytes; "
                          f"at most {MAX_TESTSET_BYTES:,})")
        with path.open("rb") as fh:
            start = fh.read(4096)
        if start.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            raise QAError(f"test set {str(path)!r} is UTF-32 text: save it as UTF-8")
        if _is_utf16(path):
            testset = _load(path, limit)
            return replace(testset, sha256=file_sha256(path))
        if b"\x00" in start and path.suffix.lower() not in WORKBOOKS:  # (said in `_load`)
            # else questions of NUL characters, or "no 'question' column (its header: 'q')"
            halves = (start[0::2].count(0), start[1::2].count(0))
            raise QAError(f"test set {str(path)!r} is not UTF-8 text (it holds NUL bytes" + (
                ": UTF-16 without a byte order mark?): save it as UTF-8"
                if max(halves) > len(start) // 4 else ")"))
        return _load(path, limit)
    except FileNotFoundError:
        stdin = " (qa eval does not read standard input: save the test set to a file first)"
        raise QAError(f"test set {str(path)!r} does not exist"
                      + (stdin if str(path) == "-" else "")) from None
    except OSError as exc:
        raise QAError(f"cannot read test set {str(path)!r}: {exc.strerror}") from None


def _load(path: Path, limit: int | None) -> TestSet:
    """`load_testset` once the file is known to be one to read (OSError passes through)."""
    suffix = path.suffix.lower()
    if suffix in WORKBOOKS:  # not text: read as JSON lines, it was "not UTF-8 text"
        raise QAError(f"test set {str(path)!r} is a spreadsheet workbook: qa reads its CSV "
                      "export (File > Save As > CSV UTF-8), a header row naming the "
                      "columns question, answers, id, kind")
    if suffix in CSV_DELIMITERS:
        notes_csv: list[Problem] = []
        try:
            items, problems = parse_jsonl(
                csv_lines(path, CSV_DELIMITERS[suffix], notes_csv), None, limit)
        except TooMuch as exc:
            raise QAError(f"test set {str(path)!r}: {exc}") from None
        return TestSet("csv", items, problems, [], file_sha256(path), tuple(notes_csv))
    if _json_array(path, suffix):
        return _load_records(path, limit)
    if _one_json_value(path, suffix):
        reader = _Reader(path)
        notes: list[Problem] = []
        parts = _SquadParts(notes, limit)
        try:
            with _open_bytes(path) as fh:
                _squad_stream(reader, fh, parts, strict=suffix == ".json")
            articles, items, problems = parts.result()
            return TestSet("squad", items, problems, articles, reader.sha256(), tuple(notes))
        except (TooMuch, SquadShape) as exc:
            raise QAError(f"test set {str(path)!r}: {exc}") from None
        except NotJson as exc:
            if suffix == ".json":  # a .json file of one value must be SQuAD
                raise QAError(f"{str(path)!r} is not valid JSON ({exc})") from None
        except NotSquad:
            if suffix == ".json":
                raise QAError(f"{str(path)!r} is not a SQuAD file: expected a JSON object "
                              "with a 'data' list of articles (or JSON lines, one "
                              "question per line, or a JSON array of them)") from None
        del parts  # not SQuAD-shaped: read as JSON lines
    reader = _Reader(path)
    notes = []
    try:
        lines = reader.lines()
        first = next((line for line in lines if line.strip()), "")
        lines.close()  # (its file)
        if suffix != ".jsonl" and (table := _table_suffix(first)):
            raise QAError(f"test set {str(path)!r} is a table (its first line is a header "
                          "naming a question column), not JSON lines: name it "
                          f"{table} to read it as one")
        if is_squad_row(first):  # Hugging Face's SQuAD: its paragraphs are the documents
            reader = _Reader(path)  # read again, from the start
            articles, items, problems = parse_squad_rows(reader.lines(), notes, limit)
            if not articles:
                raise QAError(f"test set {str(path)!r} holds no paragraphs of text")
            return TestSet("squad", items, problems, articles, reader.sha256(),
                           tuple(notes))
        reader = _Reader(path)
        items, problems = parse_jsonl(reader.lines(), notes, limit)
    except TooMuch as exc:
        raise QAError(f"test set {str(path)!r}: {exc}") from None
    return TestSet("jsonl", items, problems, [], reader.sha256(), tuple(notes))


# -- the SQuAD documents and their index, cached ---------------------------------------------


def _write_documents(folder: Path, articles: list[Article]) -> None:
    folder.mkdir(parents=True)
    for article in articles:
        (folder / f"{article.doc_id}.txt").write_text(article.text(), encoding="utf-8")


def _clean_stale_builds(root: Path, max_age_s: float = 3600.0) -> None:
    """Remove temporary build folders left by killed runs (older than an hour)."""
    for path in root.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)


def corpus_settings(settings: Settings, testset: TestSet) -> tuple[Settings, bool]:
    """Settings pointing at the cached documents of `testset`, and whether they exist yet."""
    folder = settings.cache_dir / "eval" / testset.sha256
    ready = (folder / "corpus.json").is_file() and (folder / "docs").is_dir()
    if ready:
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
            ready = isinstance(meta, dict) and meta.get("version") == CORPUS_VERSION
    # its own (empty) data folder: the user's uploaded library (QA_DATA) is not the SQuAD corpus
    return settings.with_overrides(seeds_dir=folder / "docs", index_dir=folder / "index",
                                   data_dir=folder / "data"), ready


def build_corpus(settings: Settings, testset: TestSet, build_index: Any) -> Settings:
    """Write the documents, build their index with `build_index(settings)`, then publish.

    Everything is written under a temporary folder which is renamed into place at the end;
    a failure removes it. If another run published the same key meanwhile, its copy is kept.
    """
    final_settings, ready = corpus_settings(settings, testset)
    final = final_settings.seeds_dir.parent
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QAError(f"cannot create the eval cache {str(root)!r}: {exc.strerror}") from None
    _clean_stale_builds(root)
    tmp = root / f".{testset.sha256}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _write_documents(tmp / "docs", testset.articles)
        build_index(settings.with_overrides(seeds_dir=tmp / "docs", index_dir=tmp / "index",
                                            data_dir=tmp / "data"))
        meta = {"version": CORPUS_VERSION, "sha256": testset.sha256,
                "documents": [a.doc_id for a in testset.articles],
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (tmp / "corpus.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if final.exists() and not ready:
            shutil.rmtree(final, ignore_errors=True)  # an old layout or a damaged copy
        try:
            os.rename(tmp, final)
        except OSError:  # another run published it first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final_settings
