"""What `qa eval` writes: streamed predictions, the report, and the comparison of two runs.

In: prediction records as they come, then the metric object and the per-question outcomes.
Out: `--out` (JSON lines) and `--csv` (the same, one row per question), both streamed to a
temporary file beside the target and renamed at the end; `--report` (Markdown or HTML: the
metric table, a per-kind breakdown, a latency histogram, a confidence reliability table and
plot, every miss), built from the streamed file; `--metrics-out` (the metric object as JSON).
Every path is checked (and its temporary file created) before the first question is asked.

`--compare A.json B.json` prints two metric objects side by side with the change, and with
`--fail-on-drop METRIC=DELTA` exits 1 when B is worse than A by more than DELTA: lower for
scores, higher for the few metrics where lower is better (latency, wrongly_abstained,
skipped, total_seconds). A gate that cannot be checked (its metric missing from one run,
undefined (null) in either, or not a finite number in either) fails. An undefined metric is
shown as "n/a" in the reports and the comparison.
"""

from __future__ import annotations

import contextlib
import csv as csv_lib
import html
import itertools
import json
import math
import os
import sys
import tempfile
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from qa.atomic import write_text_atomic, write_texts_atomic
from qa.errors import BadSetting, QAError, describe_os_error
from qa.metrics import percentile, reliability_bins
from qa.schema import markdown_text
from qa.testset import WORKBOOKS

if TYPE_CHECKING:
    from qa.evaluation import Outcome

REPORT_SUFFIXES = (".md", ".markdown", ".html", ".htm")
CSV_FIELDS = ("id", "question", "kind", "gold", "answerable", "prediction", "answer", "text",
              "lead", "abstained", "tentative", "confidence", "no_answer_probability", "read_as",
              "citations", "passages", "latency_ms")


# -- output files ----------------------------------------------------------------------------


def _check_path(flag: str, value: str, made: list[Path]) -> Path:
    """The file an output flag names, checked: an output is written beside it and renamed
    over it, so a link is followed to its file (the rename would replace the link) and
    what is not a plain file is refused (/dev/stdout, a named pipe: the rename would put a
    file in its place and nothing would reach its reader). The folders it makes for it are
    added to `made`, the deepest first (a failed run removes them)."""
    path = Path(value)
    if path.is_dir():
        raise BadSetting(f"{flag} {value!r} is a folder, not a file")
    if path.exists() and not path.is_file():
        raise BadSetting(f"{flag} {value!r} is not a plain file (a device, a pipe...): name a "
                         "file (the metrics go to standard output with --json)")
    if path.is_symlink():
        path = path.resolve()
    missing = list(itertools.takewhile(lambda p: not p.exists(), path.parents))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadSetting(f"{flag}: cannot create the folder of {value!r}: {exc.strerror}") from None
    made[:0] = missing
    if path.exists() and not os.access(path, os.W_OK):
        raise BadSetting(f"{flag} {value!r} is not writable")
    return path


def _temp_beside(flag: str, path: Path, newline: str | None = None,
                 encoding: str = "utf-8") -> tuple[Path, IO[str]]:
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise BadSetting(f"{flag}: cannot write in the folder of {str(path)!r}: "
                         f"{exc.strerror}") from None
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(name, 0o666 & ~mask)  # an ordinary file once renamed, not mkstemp's 0600
    return Path(name), os.fdopen(fd, "w", encoding=encoding, newline=newline)


@dataclass
class Outputs:
    """The output files of one run: checked and opened before it starts, committed at the end."""

    out: Path | None = None
    csv: Path | None = None
    report: Path | None = None
    metrics: Path | None = None
    _files: dict[str, tuple[Path, IO[str]]] = field(default_factory=dict)
    _csv: Any = None
    _made: list[Path] = field(default_factory=list)  # folders made for the outputs

    @classmethod
    def open(cls, out: str | None, csv: str | None, report: str | None, metrics: str | None,
             inputs: Sequence[Path] = (), folders: Mapping[str, Path] | None = None) -> Outputs:
        """`folders`: what qa reads (the seeds, data and index folders, by name), where no
        output may go: it would replace a document, or be indexed as one."""
        made: list[Path] = []
        try:
            return cls._open(out, csv, report, metrics, inputs, folders, made)
        except BaseException:
            _remove_empty(made)
            raise

    @classmethod
    def _open(cls, out: str | None, csv: str | None, report: str | None, metrics: str | None,
              inputs: Sequence[Path], folders: Mapping[str, Path] | None,
              made: list[Path]) -> Outputs:
        given = {"--out": out, "--csv": csv, "--report": report, "--metrics-out": metrics}
        paths = {flag: _check_path(flag, v, made) for flag, v in given.items() if v}
        for flag, path in paths.items():
            for name, folder in (folders or {}).items():
                if path.resolve().is_relative_to(folder.resolve()):
                    raise BadSetting(f"{flag}: {str(path)!r} is inside the {name} folder "
                                     f"{str(folder)!r}, which qa reads; write it elsewhere")
        resolved = [p.resolve() for p in paths.values()]
        if len(set(resolved)) != len(resolved):
            raise BadSetting("two output flags name the same file")
        for path in inputs:
            if path.resolve() in resolved:
                raise BadSetting(f"an output flag names the test set {str(path)!r} itself")
        report_path = paths.get("--report")
        if report_path and report_path.suffix.lower() not in REPORT_SUFFIXES:
            raise BadSetting(f"--report must end in .md or .html, got {str(report_path)!r}")
        csv_path = paths.get("--csv")
        if csv_path and csv_path.suffix.lower() in WORKBOOKS:  # Excel would not open it
            raise BadSetting(f"--csv writes CSV text, not a workbook: name it .csv (a "
                             f"spreadsheet opens it), got {str(csv_path)!r}")
        self = cls(paths.get("--out"), paths.get("--csv"), report_path, paths.get("--metrics-out"),
                   _made=made)
        try:
            stream = self.out or self.report  # the report is built from the streamed predictions
            if stream is not None:
                self._files["jsonl"] = _temp_beside("--out" if self.out else "--report", stream)
            if self.csv:
                # with a byte order mark, as Excel's "CSV UTF-8": without one, Excel reads
                # it in the ANSI code page (a curly quote shows as "â€œ")
                self._files["csv"] = _temp_beside("--csv", self.csv, newline="",
                                                  encoding="utf-8-sig")
                self._csv = csv_lib.writer(self._files["csv"][1])
                self._csv.writerow(CSV_FIELDS)
            for flag, target in (("--report", self.report), ("--metrics-out", self.metrics)):
                if target:  # can a file be created there? (written atomically at the end)
                    probe, fh = _temp_beside(flag, target)
                    fh.close()
                    probe.unlink()
        except BaseException:
            self.discard()
            raise
        return self

    def write(self, record: dict[str, Any]) -> None:
        """Stream one prediction out (JSON lines and CSV)."""
        if "jsonl" in self._files:
            self._files["jsonl"][1].write(json.dumps(record, ensure_ascii=False) + "\n")
        if self._csv is not None:
            self._csv.writerow(csv_row(record))

    def finish(self, metrics: Mapping[str, float | None], outcomes: Sequence[Outcome],
               title: str) -> None:
        """Close the streams, write the report and the metrics, then rename into place. A
        write that fails (a full disk, the folder removed meanwhile) is one line naming the
        file, and the temporary files are removed."""
        try:
            self._finish(metrics, outcomes, title)
        except OSError as exc:
            self.discard()
            raise QAError(describe_os_error(exc)) from None

    def _finish(self, metrics: Mapping[str, float | None], outcomes: Sequence[Outcome],
                title: str) -> None:
        for _tmp, fh in self._files.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        if self.report:
            write_report(self.report, metrics, outcomes, self._files["jsonl"][0], title)
        if self.metrics:
            write_text_atomic(self.metrics, json.dumps(metrics, indent=2) + "\n")
        if self.out:
            os.replace(self._files.pop("jsonl")[0], self.out)
        if self.csv:
            os.replace(self._files.pop("csv")[0], self.csv)
        self.discard()  # the report's private copy of the predictions, if any

    def discard(self) -> None:
        """Remove the temporary files, and the folders made for the outputs that are still
        empty (a failed or interrupted run leaves nothing behind)."""
        for tmp, fh in self._files.values():
            with contextlib.suppress(OSError):
                fh.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._files.clear()
        _remove_empty(self._made)


def _remove_empty(folders: Sequence[Path]) -> None:
    """Remove each of `folders` (the deepest first) that is empty; keep the rest."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()



# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): a
# document sentence or a question "=HYPERLINK(...)" must stay text, so it gets a leading "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def csv_row(record: dict[str, Any]) -> list[Any]:
    """The CSV row of a prediction: the lead's text; gold, citations (each its quote span) and
    passages (each its place and score, not its text) as JSON text; the rest as is, except
    that a text starting with = + - @ or a tab gets a leading ' (a spreadsheet would run it)."""
    lead = record.get("lead")
    citations = [{"n": c["n"], "doc_id": c["doc_id"], **c["quote"]} for c in record["citations"]]
    passages = [{k: v for k, v in p.items() if k != "text"} for p in record["passages"]]
    values = {
        **record,
        "kind": record.get("kind", ""),
        "gold": json.dumps(record["gold"], ensure_ascii=False),
        "lead": lead["text"] if lead else "",
        "citations": json.dumps(citations, ensure_ascii=False),
        "passages": json.dumps(passages, ensure_ascii=False),
    }
    return [_csv_cell(values.get(name, "")) for name in CSV_FIELDS]


def read_predictions(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


# -- the report ------------------------------------------------------------------------------


def _save_plot(path: Path, draw: Any) -> bool:
    """Draw with matplotlib into a PNG (atomically); False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.4))
    try:
        draw(ax)
        fig.tight_layout()
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
    return True


def _latency_plot(latencies: Sequence[float], path: Path) -> bool:
    def draw(ax: Any) -> None:
        ax.hist(latencies, bins=30, color="#3b6ea5")
        ax.set_xlabel("ask latency (ms, warm)")
        ax.set_ylabel("questions")
        ax.set_title("Latency per question")

    return _save_plot(path, draw)


def _reliability_plot(table: list[tuple[float, float, int, float, float]], path: Path) -> bool:
    def draw(ax: Any) -> None:
        used = [row for row in table if row[2]]
        ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", label="perfect calibration")
        ax.plot([r[3] for r in used], [r[4] for r in used], marker="o", color="#3b6ea5",
                label="qa")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (mean of the bin)")
        ax.set_ylabel("observed accuracy")
        ax.set_title("Confidence reliability")
        ax.legend(loc="upper left")

    return _save_plot(path, draw)


def _text_histogram(latencies: Sequence[float], bins: int = 8) -> list[str]:
    """Bars over [min, p99]; the slowest 1% (often a cold cache or a long answer) in one row."""
    if not latencies:
        return []
    lo, hi = min(latencies), percentile(latencies, 99)
    step = (hi - lo) / bins or 1.0
    counts = Counter(min(int((v - lo) / step), bins - 1) for v in latencies if v <= hi)
    over = sum(v > hi for v in latencies)
    top = max([*counts.values(), over])
    rows = [f"{lo + i * step:8.1f}-{lo + (i + 1) * step:8.1f} ms | "
            f"{'#' * math.ceil(50 * counts[i] / top)} {counts[i]}" for i in range(bins)]
    if over:
        label = f"> {hi:.1f}"
        rows.append(f"{label:>17} ms | {'#' * math.ceil(50 * over / top)} {over}")
    return rows


def _shown(value: Any) -> str:
    """A metric as reports print it; None (undefined: nothing to measure it on) is "n/a"."""
    if value is None:
        return NOT_DEFINED
    return f"{value:.4f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


NOT_DEFINED = "n/a"


def _breakdown(outcomes: Iterable[Outcome]) -> list[list[str]]:
    """A row per kind of question, from a few sums per kind (one pass, nothing per question)."""
    groups: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0, 0, 0, 0])
    for o in outcomes:
        g = groups[o.group]  # questions, exact, f1, right, abstained, answerable, hit@1
        g[0] += 1
        g[1] += o.squad.exact
        g[2] += o.squad.f1
        g[3] += o.right
        g[4] += o.abstained
        g[5] += o.has_answer
        g[6] += o.has_answer and o.first_rank == 1  # hit@1 is over these, as in metrics
    rows = []
    for name, (n, exact, f1, right, abstained, answerable, hit) in sorted(groups.items()):
        rows.append([
            name, str(int(n)), f"{100 * exact / n:.1f}", f"{100 * f1 / n:.1f}",
            f"{right / n:.3f}", f"{abstained / n:.3f}",
            f"{hit / answerable:.3f}" if answerable else NOT_DEFINED,
        ])
    return rows


BREAKDOWN_HEAD = ["kind", "questions", "exact", "f1", "right", "abstained", "hit@1"]
RELIABILITY_HEAD = ["confidence", "questions", "mean confidence", "observed accuracy"]
MISS_HEAD = ["id", "question", "gold", "answer", "top passage"]


def _misses(outcomes: Sequence[Outcome], predictions: Path) -> Iterator[list[str]]:
    for outcome, pred in zip(outcomes, read_predictions(predictions), strict=True):
        if outcome.right:
            continue
        top = pred["passages"][0]["text"] if pred["passages"] else ""
        yield [pred["id"], pred["question"], " / ".join(pred["gold"]) or "(unanswerable)",
               "(abstained)" if pred["abstained"] else pred["answer"][:300], top[:200]]


def write_report(path: Path, metrics: Mapping[str, float | None], outcomes: Sequence[Outcome],
                 predictions: Path, title: str) -> None:
    """A Markdown or HTML report: metrics, breakdown, latency, reliability, every miss. The
    misses are read from the streamed predictions and written as they are read (atomically):
    a long run's report is never held whole in memory."""
    latencies = array("d", (o.latency_ms for o in outcomes))  # 8 bytes a question
    reliability = reliability_bins((o.confidence, o.sentence_right) for o in outcomes)
    # linked by a relative URL, quoted: a report named "run #2 (50%).html" keeps its plots
    latency_png = path.with_suffix(".latency.png")
    reliability_png = path.with_suffix(".reliability.png")
    has_latency = _latency_plot(latencies, latency_png)
    has_reliability = _reliability_plot(reliability, reliability_png)
    metric_rows = [[k, _shown(v)] for k, v in metrics.items()]
    breakdown = _breakdown(outcomes)
    reliability_rows = [[f"{lo:.1f}-{hi:.1f}", str(n), f"{c:.3f}" if n else "-",
                         f"{acc:.3f}" if n else "-"] for lo, hi, n, c, acc in reliability]
    misses = _misses(outcomes, predictions)
    missed = sum(not o.right for o in outcomes)  # what _misses yields
    skipped = f"{int(metrics.get('skipped') or 0)}, failed: {int(metrics.get('errors') or 0)}"
    miss_note = ("A miss is an answerable question whose answer lacks the gold answer (or was "
                 "refused), or an unanswerable question that was answered. Reliability: "
                 "questions binned by confidence; accuracy is the share whose quoted "
                 "sentence (for an abstention, the closest one it cites) holds a gold "
                 "answer, which is what confidence estimates.")
    if path.suffix.lower() in (".html", ".htm"):
        e = html.escape

        def table(head: list[str], rows: Iterable[list[str]]) -> Iterator[str]:
            cells = "".join(f"<th>{e(h)}</th>" for h in head)
            yield f"<table border=1><tr>{cells}</tr>"
            for row in rows:
                yield "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
            yield "</table>"

        def image(png: Path, ok: bool, alt: str) -> str:
            return f'<p><img src="{e(quote(png.name))}" alt="{e(alt)}"></p>' if ok else ""

        def page() -> Iterator[str]:
            yield (f"<!doctype html><meta charset=utf-8><title>{e(title)}</title>"
                   f"<h1>{e(title)}</h1><h2>Metrics</h2>")
            yield from table(["metric", "value"], metric_rows)
            yield "<h2>By kind</h2>"
            yield from table(BREAKDOWN_HEAD, breakdown)
            yield (f"<h2>Latency (warm ask, per question)</h2>"
                   f"{image(latency_png, has_latency, 'latency histogram')}"
                   f"<pre>{e(chr(10).join(_text_histogram(latencies)))}</pre>"
                   f"<h2>Confidence reliability</h2>"
                   f"{image(reliability_png, has_reliability, 'reliability plot')}")
            yield from table(RELIABILITY_HEAD, reliability_rows)
            yield (f"<h2>Misses ({missed} of {len(outcomes)})</h2><p>{e(miss_note)}</p>"
                   f"<p>Skipped bad questions: {skipped}</p>")
            yield from table(MISS_HEAD, misses)
            yield "\n"

        write_texts_atomic(path, _batched(page()))
        return

    def cell(text: str) -> str:
        return html.escape(text.replace("\n", " "), quote=False).replace("|", "\\|")

    def text_cell(text: str) -> str:
        # the test set's and the documents' text: Markdown's own syntax escaped too
        # (emphasis, links, code), so "[x](javascript:...)" or "**Bob**" shows as written
        return markdown_text(html.escape(text, quote=False))

    def md_table(head: list[str], rows: Iterable[list[str]],
                 shown: Callable[[str], str] = cell) -> Iterator[str]:
        yield "| " + " | ".join(head) + " |"
        yield "|" + "---|" * len(head)
        for row in rows:
            yield "| " + " | ".join(shown(c) for c in row) + " |"
        yield ""

    def lines() -> Iterator[str]:
        yield from [f"# {cell(title)}", "", "## Metrics", ""]
        yield from md_table(["metric", "value"], metric_rows)
        yield from ["## By kind", ""]
        yield from md_table(BREAKDOWN_HEAD, breakdown)
        yield from ["## Latency (warm `ask`, per question)", ""]
        if has_latency:
            yield from [f"![latency histogram]({quote(latency_png.name)})", ""]
        yield from ["```", *_text_histogram(latencies), "```", "", "## Confidence reliability", ""]
        if has_reliability:
            yield from [f"![reliability plot]({quote(reliability_png.name)})", ""]
        yield from md_table(RELIABILITY_HEAD, reliability_rows)
        yield from [f"## Misses ({missed} of {len(outcomes)})", "", miss_note, "",
                    f"Skipped bad questions: {skipped}", ""]
        yield from md_table(MISS_HEAD, misses, text_cell)

    def joined() -> Iterator[str]:  # "\n".join(lines()), a line at a time
        for n, line in enumerate(lines()):
            yield line if n == 0 else "\n" + line

    write_texts_atomic(path, _batched(joined()))


def _batched(texts: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """The texts in pieces of about `size` characters (fewer, larger writes)."""
    pending: list[str] = []
    length = 0
    for text in texts:
        pending.append(text)
        length += len(text)
        if length >= size:
            yield "".join(pending)
            pending, length = [], 0
    if pending:
        yield "".join(pending)


# -- comparing two runs ----------------------------------------------------------------------

LOWER_IS_BETTER = ("wrongly_abstained", "answer_words_max", "skipped", "errors",
                   "total_seconds")


def lower_is_better(name: str) -> bool:
    return name.endswith("_ms") or name in LOWER_IS_BETTER


MAX_METRICS_BYTES = 16 * 1024 * 1024  # a metric object is a few KB


def load_metrics(path: Path) -> dict[str, float | None]:
    """A metric object from `qa eval --json`/`--metrics-out` (or an object holding one under
    "metrics"); only its numbers and its nulls (undefined metrics) are kept."""
    try:
        size = path.stat().st_size
        if size > MAX_METRICS_BYTES:  # e.g. the predictions file named by mistake
            raise QAError(f"metrics file {str(path)!r} is too large for a metric object "
                          f"({size:,} bytes; at most {MAX_METRICS_BYTES:,})")
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as test sets allow
    except FileNotFoundError:
        raise QAError(f"metrics file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"cannot read metrics file {str(path)!r}: {exc}") from None
    except ValueError as exc:
        raise QAError(f"metrics file {str(path)!r} is not valid JSON ({exc})") from None
    except RecursionError:  # json.loads on deep nesting
        raise QAError(f"metrics file {str(path)!r} is not valid JSON (nested too deeply)"
                      ) from None
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    numbers: dict[str, float | None] = {}
    for name, value in data.items() if isinstance(data, dict) else ():
        if value is None:
            numbers[name] = None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                numbers[name] = float(value)
            except OverflowError:  # a JSON integer beyond a float: not finite (the gate fails)
                numbers[name] = math.inf if value > 0 else -math.inf
    if not any(v is not None for v in numbers.values()):
        raise QAError(f"{str(path)!r} holds no metric object (write one with "
                      "`qa eval FILE --json` or `--metrics-out`)")
    return numbers


def parse_gate(text: str) -> tuple[str, float]:
    name, sep, delta = text.partition("=")
    try:
        value = float(delta)
    except ValueError:
        value = math.nan
    if not sep or not name.strip() or not math.isfinite(value) or value < 0:
        raise BadSetting(f"--fail-on-drop wants METRIC=DELTA with DELTA >= 0, got {text!r}")
    return name.strip(), value


def compare(a: Mapping[str, float | None], b: Mapping[str, float | None], gates: Sequence[str]
            ) -> tuple[list[str], list[str]]:
    """The side-by-side table and one line per gate that failed. A gated metric undefined
    (null) in either run fails its gate: there is nothing to compare."""
    parsed = [parse_gate(g) for g in gates]
    for name, _ in parsed:
        missing = [label for label, m in (("A", a), ("B", b)) if name not in m]
        if len(missing) == 2:
            known = ", ".join(sorted(set(a) & set(b)))
            raise BadSetting(f"--fail-on-drop: unknown metric {name!r} (not in A or B; "
                             f"known: {known})")
        if missing:  # a gate that cannot be checked fails
            raise QAError(f"--fail-on-drop: metric {name!r} is missing from {missing[0]}; "
                          "the gate fails")
        for label, m in (("A", a), ("B", b)):
            value = m[name]
            if value is None:
                raise QAError(f"--fail-on-drop: metric {name!r} is undefined (null) in {label}: "
                              "that run had nothing to measure it on; the gate fails")
            if not math.isfinite(value):
                raise QAError(f"--fail-on-drop: metric {name!r} is not a finite number in "
                              f"{label} ({m[name]}); the gate fails")
    names = list(a) + [k for k in b if k not in a]
    width = max(len(n) for n in names)
    lines = [f"{'metric':<{width}}  {'A':>12}  {'B':>12}  {'B - A':>12}",
             f"{'-' * width}  {'-' * 12}  {'-' * 12}  {'-' * 12}"]
    def num(value: float | None, sign: str = "", missing: str = "-") -> str:
        if value is None:
            return f"{missing:>12}"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):{sign}12d}"
        return f"{value:{sign}12.4f}"

    for name in names:
        va, vb = a.get(name), b.get(name)
        diff = num(vb - va, "+") if va is not None and vb is not None else num(None)
        lines.append(f"{name:<{width}}  {num(va, missing=_absent(a, name))}  "
                     f"{num(vb, missing=_absent(b, name))}  {diff}")
    failures = []
    for name, delta in parsed:
        va, vb = a[name], b[name]
        assert va is not None and vb is not None  # checked above
        worse = va - vb if not lower_is_better(name) else vb - va
        if worse > delta + 1e-12:
            failures.append(f"{name} went from {_shown(a[name])} to {_shown(b[name])} "
                            f"({'up' if lower_is_better(name) else 'down'} "
                            f"{_shown(round(worse, 6))}, more than {_shown(delta)})")
    return lines, failures


def _absent(metrics: Mapping[str, float | None], name: str) -> str:
    """How the table shows a value that is not a number: n/a when undefined, - when absent."""
    return NOT_DEFINED if name in metrics else "-"


def run_compare(paths: Sequence[str], gates: Sequence[str]) -> int:
    for gate in gates:
        parse_gate(gate)  # a malformed gate is a usage error before any file is read
    a, b = (load_metrics(Path(p)) for p in paths)
    lines, failures = compare(a, b, gates)
    print(f"A: {paths[0]}\nB: {paths[1]}")
    print("\n".join(lines))
    for failure in failures:
        print(f"qa: eval: regression: {failure}", file=sys.stderr)
    return 1 if failures else 0
