"""The `qa` command: errors in-process through `cli.main(argv)` (fast, no model), the real
model end to end and a few smoke tests of a real process's exit code and stderr (slow)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qa import cli
from qa.config import load_settings
from qa.pipeline import Pipeline
from tests.conftest import DEV_SET, SEEDS

QA = [sys.executable, "-m", "qa.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QA, *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout, check=False)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> None:
    assert_one_line((proc.returncode, proc.stdout, proc.stderr), code)


class _NoModel:
    """Stands in for a model (the embedder, spaCy): any use of it fails the test (errors are
    found before a model loads)."""

    failure = None  # metadata, as the name is: it never failed to load (it never loads)

    def __init__(self, what: str, name: str) -> None:
        self.what, self.name = what, name  # the name is metadata (manifests), not the model

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the {self.what} was used ({attr}) before the error was found")

    def close(self) -> None:
        """Stopping what was never started is no use of the model."""


@pytest.fixture
def qa_main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
            capsys: pytest.CaptureFixture[str]) -> Any:
    """`qa ARGS` in this process, from a folder holding a copy of the seeds (the defaults
    `seeds` and `index` resolve there): (exit code, stdout, stderr)."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("QA_")]:
        monkeypatch.delenv(name)
    real_init = Pipeline.__init__

    def init(self: Pipeline, settings: Any = None, embedder: Any = None,
             analyzer: Any = None) -> None:
        settings = settings or load_settings()
        real_init(self, settings, embedder or _NoModel("embedding model", settings.model),
                  analyzer or _NoModel("spaCy pipeline", settings.spacy))

    monkeypatch.setattr(Pipeline, "__init__", init)

    def main(*args: str) -> tuple[int, str, str]:
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return main


def assert_one_line(result: tuple[int, str, str], code: int) -> str:
    got, out, err = result
    assert got == code, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("qa: error")]) == 1, err
    assert out == ""
    return err


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("cli")
    shutil.copytree(SEEDS, base / "seeds")
    proc = run("index", "--seeds", str(base / "seeds"), "--index", str(base / "index"))
    assert proc.returncode == 0, proc.stderr
    assert "indexed 1 document(s)" in proc.stdout
    return base / "seeds", base / "index"


def _flags(built: tuple[Path, Path]) -> list[str]:
    return ["--seeds", str(built[0]), "--index", str(built[1])]


@pytest.mark.slow  # a second process: kept out of the fast tier
def test_python_dash_m_qa_runs_the_command_line() -> None:
    """'python -m qa ask ...' (how a Python user runs a package) said "No module named
    qa.__main__; 'qa' is a package and cannot be directly executed". It runs the command
    line, as the qa script and 'python -m qa.cli' do."""
    proc = subprocess.run([sys.executable, "-m", "qa", "--version"], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("qa "), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "qa", "no-such-command"], capture_output=True,
                          text=True, env=ENV, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("qa: error: ")


@pytest.mark.slow
def test_retrieve_json(built: tuple[Path, Path]) -> None:
    proc = run("retrieve", "How many American troops are in Iraq today?", "-k", "3", "--json",
               *_flags(built))
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    source = (built[0] / "politico-us-iraq-advisory-transition.txt").read_text(encoding="utf-8")
    for hit in hits:
        assert set(hit) == {"rank", "doc_id", "chunk_id", "text", "start", "end", "score",
                            "sentence"}
        assert source[hit["start"] : hit["end"]] == hit["text"]
        s = hit["sentence"]
        assert source[s["start"] : s["end"]] == s["text"]
    assert "2,500" in hits[0]["sentence"]["text"]


@pytest.mark.slow
def test_ask_json_and_text(built: tuple[Path, Path]) -> None:
    first = run("ask", "What did Kadhimi tell the Washington Post?", "--json", *_flags(built))
    proc = run("ask", "What does he say Iraq still needs?", "--history",
               "What did Kadhimi tell the Washington Post?", "--history-answer",
               json.loads(first.stdout)["text"], "--json", *_flags(built))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"answer", "text", "lead", "abstained", "confidence", "read_as",
                        "tentative", "citations", "passages"}
    assert out["read_as"] is None  # "he": searched with the conversation, not rewritten
    assert not out["abstained"] and "intelligence support" in out["answer"]
    if out["lead"] is not None:
        lead = out["lead"]
        assert out["answer"].startswith(f"**{lead['text']}** — ")
        source = (built[0] / f"{lead['doc_id']}.txt").read_text(encoding="utf-8")
        assert source[lead["start"] : lead["end"]] == lead["text"]
    source = (built[0] / "politico-us-iraq-advisory-transition.txt").read_text(encoding="utf-8")
    for c in out["citations"]:
        assert set(c) == {"n", "doc_id", "chunk_id", "text", "start", "end", "quote"}
        assert source[c["start"] : c["end"]] == c["text"]
        assert source[c["quote"]["start"] : c["quote"]["end"]] == c["quote"]["text"]
        assert f"[{c['n']}]" in out["answer"]
    assert set(out["passages"][0]) == {"rank", "doc_id", "chunk_id", "text", "start", "end",
                                       "score"}

    text = run("ask", "What is the capital of France?", *_flags(built))
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("The document doesn't say")
    assert "(not an answer)" in text.stdout and "**" not in text.stdout


@pytest.mark.slow
def test_a_cold_ask_imports_no_torch(built: tuple[Path, Path]) -> None:
    """The question path of a cold `qa ask` (ONNX Runtime, graph cached by the build; the
    small spaCy pipeline) needs no torch: importing it was ~2 s of every cold start."""
    pytest.importorskip("onnxruntime")
    code = ("import sys; from qa.cli import main; rc = main(sys.argv[1:]); "
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') "
            "if m in sys.modules]; assert not heavy, heavy; "
            "assert 'spacy' in sys.modules; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "ask", "How many American troops are "
                           "in Iraq today?", *_flags(built)], capture_output=True, text=True,
                          env=ENV, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "2,500" in proc.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["retrieve", ""], 2),
        (["retrieve", "   "], 2),
        (["ask", "x" * 100_000], 2),
        (["retrieve", "question", "--bogus"], 2),
        (["retrieve", "question", "-k", "0"], 2),
        (["retrieve", "question", "-k", "many"], 2),
        (["frobnicate"], 2),
        ([], 2),
    ],
)
def test_usage_errors(qa_main: Any, args: list[str], code: int) -> None:
    assert_one_line(qa_main(*args), code)
    assert not Path("index").exists()  # rejected before anything was built


@pytest.mark.parametrize(("args", "flag"), [
    (["list", "--index", ""], "--index"),
    (["index", "--seeds", " "], "--seeds"),
    (["ask", "Who?", "--data", ""], "--data"),
    (["eval", "set.jsonl", "--out", ""], "--out"),
    (["eval", "set.jsonl", "--csv", ""], "--csv"),
    (["eval", "set.jsonl", "--report", ""], "--report"),
    (["eval", "set.jsonl", "--metrics-out", ""], "--metrics-out"),
])
def test_an_empty_path_is_a_usage_error_not_the_current_folder(
        qa_main: Any, args: list[str], flag: str) -> None:
    """`qa eval set.jsonl --index "$IDX" --out "$OUT"` with the variables unset: an empty
    --index built the index in the current folder (a manifest and build folders among the
    user's files), and an empty --out, --csv, --report or --metrics-out wrote nothing and
    exited 0, as if it had. Each is a usage error naming the flag."""
    Path("set.jsonl").write_text('{"id": "1", "question": "Who?", "answers": []}\n')
    before = sorted(p.name for p in Path().iterdir())
    err = assert_one_line(qa_main(*args), 2)
    assert f"argument {flag}: " in err and "empty" in err, err
    assert sorted(p.name for p in Path().iterdir()) == before


@pytest.mark.parametrize("command", [["index"], ["list"], ["ask", "Who?"]])
@pytest.mark.parametrize("index", ["seeds", "seeds/index"])
def test_an_index_folder_in_the_seeds_folder_is_refused(qa_main: Any, command: list[str],
                                                        index: str) -> None:
    """`--index seeds` (or a folder in it) was accepted: the build wrote its files among the
    documents, the manifest was then listed in every `qa list` and /healthz as a skipped
    document ('manifest.json: unsupported file type'), and with `--index seeds/index` the
    data folder beside it fell inside the seeds folder, so every upload was refused. `qa
    serve` checks it before it listens (`preflight`)."""
    from qa.api import preflight
    from qa.errors import BadSetting

    err = assert_one_line(qa_main(*command, "--index", index), 2)
    message = f"the index folder {index!r} must not be the seeds folder or inside it"
    assert message in err
    with pytest.raises(BadSetting, match=re.escape(message)):
        preflight(load_settings(index_dir=index), "127.0.0.1")
    assert sorted(p.name for p in Path("seeds").iterdir()) == sorted(
        p.name for p in SEEDS.iterdir())  # nothing written among the documents


@pytest.mark.parametrize("command", [["index"], ["ask", "Who?"], ["retrieve", "Who?"],
                                     ["add", "seeds/politico-us-iraq-advisory-transition.txt"],
                                     ["eval", str(DEV_SET)]])
def test_a_missing_spacy_pipeline_is_found_before_any_model_loads(
        qa_main: Any, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    """`QA_SPACY=en_core_nonexistent qa index` embedded every passage, then said the pipeline
    was not installed. It is checked with the other settings, before any model loads (the
    `_NoModel` stand-ins fail the test if one is used); `qa serve` checks it too."""
    from qa.api import preflight
    from qa.errors import ModelError

    monkeypatch.setenv("QA_SPACY", "en_core_nonexistent")
    message = "spaCy pipeline 'en_core_nonexistent' is not installed"
    assert message in assert_one_line(qa_main(*command), 1)
    with pytest.raises(ModelError, match=re.escape(message)):
        preflight(load_settings(), "127.0.0.1")
    monkeypatch.setenv("QA_SPACY", str(Path("seeds").resolve()))  # a folder, but no pipeline
    with pytest.raises(ModelError, match="not a spaCy pipeline folder"):
        preflight(load_settings(), "127.0.0.1")
    (Path("seeds") / "config.cfg").write_text("[nlp]\n")  # one spacy.load would read
    preflight(load_settings(), "127.0.0.1")


def test_remove_refuses_a_folder_qa_did_not_store(qa_main: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa remove emptydir` printed 'removed emptydir' and deleted a folder qa never wrote
    (with `--data ~/papers`, a user's own): one line, exit 1, the folder left as it was."""
    from qa.nlp import NullAnalyzer
    from tests.conftest import HashingEmbedder

    init = Pipeline.__init__
    monkeypatch.setattr(Pipeline, "__init__", lambda self, settings: init(
        self, settings, HashingEmbedder(), NullAnalyzer()))
    data = tmp_path / "papers"
    (data / "emptydir").mkdir(parents=True)
    err = assert_one_line(qa_main("remove", "emptydir", "--data", str(data)), 1)
    assert "not a document qa stored" in err
    assert (data / "emptydir").is_dir()


@pytest.mark.parametrize("command", [["list"], ["ask", "Who?"], ["add", "seeds/x.txt"]])
def test_a_data_folder_that_is_a_file_is_refused(qa_main: Any, command: list[str]) -> None:
    """`qa list --data /etc/passwd` listed the library, exit 0, with 'skipped
    /etc/passwd/.retired-ids.json: unreadable record of removed document ids'."""
    Path("notes").write_text("mine")
    err = assert_one_line(qa_main(*command, "--data", "notes"), 2)
    assert "the data folder 'notes' is not a folder" in err
    assert Path("notes").read_text() == "mine"


def test_version(qa_main: Any) -> None:
    """`qa --version` said "error: the following arguments are required: command"."""
    from importlib.metadata import version

    assert qa_main("--version") == (0, f"qa {version('qa')}\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--history", ""], "history turn 1 is empty"),
        (["--history", "Who?", "--history", "\u200b"], "history turn 2 is empty"),
        (["--history", "x" * 3000], "history turn 1 is too long (3000 characters"),
        (["--history-answer", "around 2,500"], "--history-answer"),
        (["--history", "Who?", "--history-answer", "A", "--history-answer", "B"],
         "--history-answer"),
    ],
)
def test_bad_history_is_named_as_such(qa_main: Any, args: list[str], message: str) -> None:
    err = assert_one_line(qa_main("ask", "Who is the Pentagon spokesman?", *args), 2)
    assert message in err and "the question" not in err
    assert not Path("index").exists()  # rejected before anything was built


@pytest.mark.parametrize("command", ["index", "retrieve", "ask", "add", "remove", "list",
                                     "eval", "serve", "mcp"])
def test_seeds_help_names_every_format(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--seeds DIR folder of documents (.txt .md .html .pdf .docx" in text
    assert ".txt/.md" not in text


def test_bad_environment_setting(qa_main: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_K", "lots")
    assert "QA_K" in assert_one_line(qa_main("retrieve", "q"), 2)


@pytest.mark.parametrize(("name", "value", "said"), [
    ("QA_K", "0", "QA_K: k must be between 1 and 20, got 0"),
    ("QA_MAX_UPLOAD_BYTES", "-1", "QA_MAX_UPLOAD_BYTES: max_upload_bytes must be at least "
                                  "1024, got -1"),
    ("QA_CHUNK_CHARS", "10", "QA_CHUNK_CHARS: chunk_chars must be at least 50, got 10"),
    ("QA_BACKEND", "foo", "QA_BACKEND: backend must be 'embedded' or 'milvus', got 'foo'"),
])
def test_a_bad_environment_value_is_named_by_its_variable(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str) -> None:
    """`QA_MAX_UPLOAD_BYTES=-1 qa serve` said "max_upload_bytes must be at least 1024":
    the name of a field the user never typed. The variable that set it is named first."""
    from qa.errors import BadSetting

    monkeypatch.setenv(name, value)
    with pytest.raises(BadSetting) as info:
        load_settings()
    assert str(info.value) == said


def test_bad_seeds(qa_main: Any, tmp_path: Path) -> None:
    """`qa index` that indexes nothing is an error naming why (no model is loaded), and so
    is a library whose files are all unreadable; asking an empty one is not (it says so)."""
    index = str(tmp_path / "index")
    err = assert_one_line(qa_main("index", "--seeds", str(tmp_path / "missing"), "--index",
                                  index), 1)
    assert "no documents to index" in err and "missing: the seeds folder does not exist" in err
    (tmp_path / "empty").mkdir()
    assert_one_line(qa_main("index", "--seeds", str(tmp_path / "empty"), "--index", index), 1)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "latin1.txt").write_bytes(b"Caf\xe9 au lait\n")
    err = assert_one_line(qa_main("retrieve", "coffee", "--seeds", str(tmp_path / "bad"),
                                  "--index", index), 1)  # one broken file never empties it
    assert "not UTF-8" in err
    (tmp_path / "none").mkdir()  # no file at all: an empty library, which says so
    code, out, err = qa_main("retrieve", "coffee", "--seeds", str(tmp_path / "none"),
                             "--index", str(tmp_path / "index2"))
    assert code == 0 and out == "" and "the library is empty" in err
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "blank.md").write_text("\n \n", encoding="utf-8")
    assert_one_line(qa_main("index", "--seeds", str(tmp_path / "blank"), "--index", index), 1)


@pytest.mark.slow  # real processes: about a second each
def test_a_real_process_exits_with_one_line_and_its_code(tmp_path: Path) -> None:
    """What the in-process tests cannot see: the exit status and stderr of `python -m qa.cli`
    (no traceback from the interpreter, nothing on stdout)."""
    assert_one_line_error(run(), 2)
    assert_one_line_error(run("retrieve", "question", "-k", "0"), 2)
    assert_one_line_error(run("retrieve", "   "), 2)
    proc = subprocess.run([*QA, "retrieve", "q"], capture_output=True, text=True,
                          env={**ENV, "QA_K": "lots"}, check=False, timeout=60)
    assert_one_line_error(proc, 2)
    assert "QA_K" in proc.stderr
    assert_one_line_error(run("index", "--seeds", str(tmp_path / "missing"), "--index",
                              str(tmp_path / "index")), 1)


@pytest.mark.slow
def test_failed_rebuild_keeps_the_built_index(built: tuple[Path, Path], tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(built[0], seeds)
    index = tmp_path / "index"
    shutil.copytree(built[1], index)
    manifest = (index / "manifest.json").read_text()
    # An unreadable file is skipped (and reported); with nothing readable left, the rebuild
    # fails and the built index stays.
    article = next(p for p in sorted(seeds.glob("*.txt")) if not p.name.startswith("."))
    original = article.read_bytes()
    article.write_bytes(b"\xff\xfe broken")
    assert_one_line_error(run("index", "--seeds", str(seeds), "--index", str(index)), 1)
    assert (index / "manifest.json").read_text() == manifest
    article.write_bytes(original)
    ok = run("retrieve", "Who is the Pentagon spokesman?", "--json", "--seeds", str(seeds),
             "--index", str(index))
    assert ok.returncode == 0 and "rebuild" not in ok.stderr, ok.stderr


@pytest.mark.usefixtures("fake_cli")
def test_progress_lines_are_qa_lines_each_said_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A build's progress (what `qa serve` and `qa index` print while embedding and
    annotating) read "indexing 1 document(s), 192 passages: 396/396 texts (…)" with no
    `qa: ` prefix, unlike every other line qa writes on stderr, and in a log (no terminal)
    its last line was written twice: by the last update and again on close."""
    from qa.progress import Progress

    init = Progress.__init__.__defaults__
    assert init is not None
    monkeypatch.setattr(Progress.__init__, "__defaults__", (*init[:-2], 0.0, 0.0))  # always
    shutil.copytree(SEEDS, tmp_path / "seeds")
    argv = ["index", "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index"),
            "--model", "fake-hashing"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().err.splitlines()
    progress = [line for line in lines if " texts (" in line or " sentences (" in line]
    assert progress, lines
    assert all(line.startswith("qa: ") for line in lines), lines
    counts = [line.rsplit(" (", 1)[0] for line in progress]  # without the rate and time
    assert len(counts) == len(set(counts)), lines


@pytest.mark.usefixtures("fake_cli")
def test_a_question_read_from_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`qa ask -` and `qa retrieve -` read the question from standard input (a script's
    question need not survive the shell's quoting: `$`, quotes, backticks), as `-` means
    for most commands; it was asked as the question "-" ("'-' is not a question")."""
    import io

    shutil.copytree(SEEDS, tmp_path / "seeds")
    flags = ["--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index"),
             "--model", "fake-hashing", "--json"]

    def given(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))

    question = "Who is the Pentagon's \"spokesman\" ($ `x`)?"
    for command in ("ask", "retrieve"):
        assert cli.main([command, question, *flags]) == 0
        expected = json.loads(capsys.readouterr().out)
        given(f"  {question}\r\n".encode())
        assert cli.main([command, "-", *flags]) == 0
        assert json.loads(capsys.readouterr().out) == expected
    for data, message in [(b"\xff\xfe bad\n", "standard input is not UTF-8 text"),
                          (b"\n", "the question is empty"),
                          ("é".encode() * 5000, "the question is too long")]:
        given(data)
        assert cli.main(["ask", "-", *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("qa: error: ") and message in err, err


def test_a_line_said_during_a_live_progress_bar_starts_a_line_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the progress line is redrawn in place, without a newline; a bad
    question reported meanwhile (`qa eval` skips it) was written after it on the same line,
    "qa: eval: 40/120 questions (…)qa: eval: set.jsonl: line 41: …". What is said within
    `bar.above()` clears the bar's line first, and the bar is drawn again after it."""
    import io

    from qa.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    import itertools

    clock = itertools.count()  # a second a reading: every update is drawn
    monkeypatch.setattr("qa.progress.time.monotonic", lambda: float(next(clock)))
    screen = Terminal()
    with Progress("eval", total=3, unit="questions", stream=screen, delay=0.0) as bar:
        bar.update()
        with bar.above():
            screen.write("qa: eval: set.jsonl: line 2: the question is empty (skipped)\n")
        bar.update(2)
    shown = re.sub(r"\r\x1b\[K", "\r", screen.getvalue())  # what a terminal keeps per line
    lines = [line.rsplit("\r", 1)[-1] for line in shown.split("\n")]
    assert lines[0] == "qa: eval: set.jsonl: line 2: the question is empty (skipped)"
    assert lines[1].startswith("qa: eval: 3/3 questions")


def test_serve_on_a_port_in_use_is_exit_1_before_anything_loads(
        qa_main: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa serve` on a port another server holds exited 2, the usage-error code, though the
    command line was right (the README: 2 for usage errors, 1 for anything else); and it
    said so only after building the web app. Now: exit 1, one line, before the app is built;
    a port no machine has (0, 70000) is still a usage error."""
    import errno
    import socket

    import qa.api
    from qa.errors import BadSetting, QAError

    built: list[object] = []
    monkeypatch.setattr(qa.api, "create_app", lambda *a: built.append(a) or pytest.fail("built"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        err = assert_one_line(qa_main("serve", "--port", str(port)), 1)
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in err
    assert built == []
    assert "port must be from 1 to 65535" in assert_one_line(qa_main("serve", "--port",
                                                                     "70000"), 2)

    class Refused(socket.socket):  # as a user without privileges is refused a low port
        def bind(self, address: Any) -> None:
            raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(qa.api.socket, "socket", Refused)
    for low, hint in ((80, " (ports below 1024 need privileges)"), (8080, "")):
        with pytest.raises(QAError) as info:
            qa.api._check_port("127.0.0.1", low)
        assert not isinstance(info.value, BadSetting)
        assert str(info.value) == f"cannot listen on 127.0.0.1:{low}: Permission denied{hint}"


def test_every_argument_of_every_command_says_what_it_is(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`qa serve --help` listed `--host HOST` and `--port PORT` with no word (not the
    defaults, nor that beyond loopback a token is needed), and `qa remove --help` a bare
    `ID`. Every argument of every command has its help line."""
    import argparse

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bare = [f"{name} {action.dest}" for name, sub in commands.choices.items()
            for action in sub._actions if not action.help]
    assert bare == []
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: 127.0.0.1" in text and "QA_API_TOKEN" in text and "default: 7860" in text


def _closed_pipe_run(*args: str) -> subprocess.CompletedProcess[str]:
    """`qa ARGS | head -1` where the reader has already gone: stdout is a pipe whose read end
    is closed, with Python's usual block buffering (not PYTHONUNBUFFERED, which some images
    set and users do not)."""
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in ENV.items() if k != "PYTHONUNBUFFERED"}
    try:
        return subprocess.run([*QA, *args], stdout=write, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=120, check=False)
    finally:
        os.close(write)


@pytest.mark.slow  # a second process: kept out of the fast tier
def test_output_into_a_closed_pipe_exits_quietly() -> None:
    """`qa --help | head -1` said "Exception ignored in: <_io.TextIOWrapper name='<stdout>'>
    BrokenPipeError" and exited 120 (Python's flush at exit). Like a Unix tool killed by
    SIGPIPE: nothing on stderr, exit 141 (128 + SIGPIPE). (A real process: the flush at
    exit is the interpreter's; the commands' own output is tested in-process below.)"""
    proc = _closed_pipe_run("--help")
    assert (proc.returncode, proc.stderr) == (141, "")


@pytest.mark.usefixtures("fake_cli")
def test_a_command_whose_reader_goes_away_exits_quietly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`qa list --json | head -1`: the reader gone while a command writes (or when its
    output is flushed at the end) is exit 141 and no message, not exit 1; a command that
    failed keeps its own exit code."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_MODEL", "fake-hashing")
    assert cli.main(["index"]) == 0
    capsys.readouterr()

    class Gone:
        """A standard output whose reader has gone: every write and flush fails."""

        def __init__(self, writes: bool) -> None:
            self.writes = writes

        def write(self, text: str) -> int:
            if not self.writes:
                raise BrokenPipeError(32, "Broken pipe")
            return len(text)

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self) -> int:
            raise OSError("no descriptor in this test")

    for writes in (False, True):  # gone at the first write; gone by the final flush
        monkeypatch.setattr(sys, "stdout", Gone(writes))
        assert cli.main(["list", "--json"]) == 141
        assert capsys.readouterr().err == ""
        assert cli.main(["remove", "no-such-document"]) == 1  # failed: said, and exit 1
        assert capsys.readouterr().err.startswith("qa: error: ")
    monkeypatch.setattr(sys, "stdout", None)  # started with stdout closed: `qa list >&-`
    assert cli.main(["list", "--json"]) == 0
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.usefixtures("fake_cli")
@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp437"])
def test_a_terminal_that_is_not_utf8_gets_every_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], encoding: str) -> None:
    """On a terminal whose encoding is not UTF-8 (a Windows console's cp437 or cp1252, a
    Latin-1 locale, PYTHONIOENCODING=ascii) `qa ask` printed "qa: internal error:
    UnicodeEncodeError: 'ascii' codec can't encode character '\\u2014'" and exit 1. A
    character the terminal cannot show is written as its escape (`\\u2014`); JSON is
    written with JSON's escapes, so it parses to the very same text and offsets."""
    import io

    shutil.copytree(SEEDS, tmp_path / "seeds")
    flags = ["--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index"),
             "--model", "fake-hashing"]
    question = "Who is the Pentagon spokesman?"
    expected = {}
    for command in ("ask", "retrieve", "list"):
        args = [command, *([question] if command != "list" else []), *flags, "--json"]
        assert cli.main(args) == 0
        expected[command] = json.loads(capsys.readouterr().out)
    assert any(ord(ch) > 127 for ch in json.dumps(expected, ensure_ascii=False))
    for command in ("ask", "retrieve", "list"):
        for as_json in (True, False):
            out = io.BytesIO()
            monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, encoding=encoding))
            args = [command, *([question] if command != "list" else []), *flags]
            code = cli.main(args + ["--json"] * as_json)
            sys.stdout.flush()
            err = capsys.readouterr().err
            assert code == 0, err
            text = out.getvalue().decode(encoding)
            if as_json:
                assert json.loads(text) == expected[command]
            else:
                assert text.strip()


@pytest.mark.usefixtures("fake_cli")
def test_sigterm_mid_eval_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`timeout 600 qa eval ... --out p.jsonl` (a CI job's limit, `kill`) stopped by SIGTERM
    left `.p.jsonl.<random>.tmp` beside each output: Python's default for SIGTERM ends the
    process at once, with no clean-up. SIGTERM now stops a command as Ctrl-C does: its
    clean-up runs (no temporary file, the index as it was), one line says so, exit 143
    (128 + SIGTERM); the handler is the caller's again once `main` returns."""
    import signal

    shutil.copytree(SEEDS, tmp_path / "seeds")
    rows = [{"id": str(n), "question": f"Who is the Pentagon spokesman {n}?", "answers": []}
            for n in range(6)]
    testset = tmp_path / "set.jsonl"
    testset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    real_ask = Pipeline.ask
    asked = []

    def ask(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        asked.append(args[0])
        if len(asked) == 4:  # the warm-up and two questions asked: terminated mid-run
            os.kill(os.getpid(), signal.SIGTERM)
        return real_ask(self, *args, **kwargs)

    class Unhandled(BaseException):
        """SIGTERM reached the test's own handler: qa had none (Python's default would
        end the test run itself)."""

    def caller(signum: int, frame: Any) -> None:
        raise Unhandled

    monkeypatch.setattr(Pipeline, "ask", ask)
    before = signal.signal(signal.SIGTERM, caller)
    try:
        code = cli.main(["eval", str(testset), "--seeds", str(tmp_path / "seeds"), "--index",
                         str(tmp_path / "index"), "--model", "fake-hashing",
                         "--out", str(out / "p.jsonl"), "--csv", str(out / "p.csv"),
                         "--metrics-out", str(out / "m.json")])
        assert signal.getsignal(signal.SIGTERM) is caller
    except Unhandled:
        pytest.fail("qa did not handle SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, before)
    err = capsys.readouterr().err
    assert code == 143, err
    assert err.splitlines()[-1] == "qa: terminated"
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.usefixtures("fake_cli")
def test_notices_never_reach_stdout_when_stderr_is_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Started with stderr closed (`qa ask ... --json 2>&-`, a launcher that closes it),
    Python has no sys.stderr and `print(..., file=None)` writes to stdout: "qa: no index
    yet ...; building it" went into the `--json` output, which no longer parsed (and into
    `qa mcp`'s protocol stream). Notices go nowhere instead; stdout is the output alone."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.setattr(sys, "stderr", None)
    code = cli.main(["ask", "Who is the Pentagon spokesman?", "--json", "--seeds",
                     str(tmp_path / "seeds"), "--index", str(tmp_path / "index"),
                     "--model", "fake-hashing"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out)["citations"]
