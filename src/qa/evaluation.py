"""Evaluation step: a question-answer test set in, metrics and predictions out.

In: JSON lines `{"id", "question", "answers": [...], "history": [...]?}` (`answers` empty
means the documents cannot answer it). Out: a flat dict of metrics keyed by name
(retrieval hit@k/MRR, sentence hit@1, exact match/F1/contains, citation exactness and
support, SQuAD2-style abstention, warm latency), one prediction per question, and an
optional Markdown/HTML report. Answers are compared after SQuAD normalization.

`--baseline` runs the same harness on a plain dense-only pipeline (same model, passages
ranked by cosine alone, no BM25, no sentence selection, never abstains), so the gain of
each part of qa is measured, not claimed.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import string
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.atomic import write_text_atomic
from qa.config import Settings
from qa.errors import QAError
from qa.pipeline import Pipeline
from qa.retrieval import Query, search
from qa.schema import answer_json, short_answer
from qa.types import Answer, Citation, Span, Turn

# -- SQuAD metrics ---------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, no punctuation (Unicode too), no articles, one space."""
    text = text.lower()
    text = "".join(
        ch for ch in text
        if ch not in string.punctuation and not unicodedata.category(ch).startswith("P")
    )
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, golds: list[str]) -> float:
    """1.0 if the prediction equals a gold answer after normalization; no-answer vs none."""
    if not golds:
        return float(normalize_answer(prediction) == "")
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: list[str]) -> float:
    """Best token-overlap F1 against the golds (duplicates counted, as in SQuAD)."""
    if not golds:
        return float(normalize_answer(prediction) == "")
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref:
            best = max(best, float(pred == ref))
        elif common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_gold(text: str, golds: list[str]) -> bool:
    """Does `text` contain one of the gold answers (both normalized)?"""
    norm = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(g)} " in norm for g in golds if normalize_answer(g))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# -- test set --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answers: list[str]
    history: list[str]


def parse_items(lines: Iterable[str]) -> tuple[list[Item], list[str]]:
    """Items of a JSONL test set, and one message per malformed line (with its number)."""
    items, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            question, answers = row.get("question"), row.get("answers")
            history = row.get("history") or []
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise ValueError("'answers' must be a list of strings")
            if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
                raise ValueError("'history' must be a list of strings")
            items.append(Item(str(row.get("id", f"line-{number}")), question, answers, history))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    return items, problems


def load_items(path: Path) -> tuple[list[Item], list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QAError(f"test set {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"cannot read test set {str(path)!r}: {exc}") from None
    return parse_items(text.splitlines())


# -- running ---------------------------------------------------------------------------------

Asker = Callable[[str, list[str], int], Answer]


def baseline_asker(pipeline: Pipeline) -> Asker:
    """Dense-only: rank passages by cosine alone and quote the top passage; never abstain."""
    from qa.retrieval import Weights

    dense_only = Weights(dense=1.0, lexical=0.0, sentence=0.0, sentence_lexical=0.0)

    def ask(question: str, history: list[str], k: int) -> Answer:
        index = pipeline.index
        vector = pipeline.embedder.embed([question])[0]
        hits, _ = search(index, vector, Query(question), k, dense_only)
        # No sentence selection: each hit's "sentence" is just the passage's first sentence.
        hits = [
            type(h)(h.rank, h.chunk, h.dense_score, h.chunk.sentences[0], h.dense_score,
                    h.dense_score)
            for h in hits
        ]
        top = hits[0].chunk
        citation = Citation(1, top.doc_id, top.id, Span(top.start, top.end, top.text),
                            Span(top.start, top.end, top.text))
        return Answer(question, f"{top.text} [1]", False, hits[0].dense_score, (citation,),
                      tuple(hits))

    return ask


def evaluate(
    pipeline: Pipeline, items: list[Item], k: int = 5, asker: Asker | None = None
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Ask every item (warm process) and score the answers; returns (metrics, predictions)."""
    ask: Asker = asker or (lambda q, h, kk: pipeline.ask(q, [Turn(x) for x in h], kk))
    index = pipeline.index
    ask("warm-up question about the documents", [], k)  # model and caches warm before timing

    predictions: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for item in items:
        started = time.perf_counter()
        answer = ask(item.question, item.history, k)
        latency = (time.perf_counter() - started) * 1000
        prediction = {"id": item.id, "question": item.question, **answer_json(answer),
                      "latency_ms": round(latency, 3)}
        predictions.append(prediction)
        short = short_answer(answer)
        exact_citations = [
            index.source(c.doc_id)[c.passage.start : c.passage.end] == c.passage.text
            and index.source(c.doc_id)[c.quote.start : c.quote.end] == c.quote.text
            for c in answer.citations
        ]
        ranks = [h.rank for h in answer.passages if contains_gold(h.chunk.text, item.answers)]
        rows.append({
            "item": item, "answer": answer, "short": short, "latency": latency,
            "first_rank": min(ranks) if ranks else None, "exact_citations": exact_citations,
        })
    return _metrics(rows), predictions


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 4) if values else 0.0


def _metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    has = [r for r in rows if r["item"].answers]
    no = [r for r in rows if not r["item"].answers]
    answered_has = [r for r in has if not r["answer"].abstained]
    abstained_no = sum(r["answer"].abstained for r in no)
    abstained_all = sum(r["answer"].abstained for r in rows)
    precision = abstained_no / abstained_all if abstained_all else 0.0
    recall = abstained_no / len(no) if no else 0.0
    citations = [ok for r in rows for ok in r["exact_citations"]]
    latencies = [r["latency"] for r in rows]

    def hit(r: dict[str, Any], n: int) -> float:
        return float(r["first_rank"] is not None and r["first_rank"] <= n)

    def f1(r: dict[str, Any]) -> float:
        return token_f1(r["short"], r["item"].answers)

    return {
        "questions": len(rows),
        "answerable": len(has),
        "unanswerable": len(no),
        "hit@1": _mean([hit(r, 1) for r in has]),
        "hit@3": _mean([hit(r, 3) for r in has]),
        "hit@5": _mean([hit(r, 5) for r in has]),
        "mrr": _mean([1 / r["first_rank"] if r["first_rank"] else 0.0 for r in has]),
        "sentence_hit@1": _mean([
            float(bool(r["answer"].passages)
                  and contains_gold(r["answer"].passages[0].sentence.text, r["item"].answers))
            for r in has
        ]),
        "exact_match": _mean([exact_match(r["short"], r["item"].answers) for r in has]),
        "f1": _mean([f1(r) for r in has]),
        "answer_contains_gold": _mean(
            [float(contains_gold(r["answer"].text, r["item"].answers)) for r in has]),
        "citation_exact": _mean([float(ok) for ok in citations]) if citations else 1.0,
        "citation_supports_gold": _mean([
            float(contains_gold(" ".join(c.quote.text for c in r["answer"].citations),
                                r["item"].answers))
            for r in answered_has
        ]),
        "abstained_unanswerable": round(recall, 4),
        "wrongly_abstained": _mean([float(r["answer"].abstained) for r in has]),
        "abstention_precision": round(precision, 4),
        "abstention_f1": round(2 * precision * recall / (precision + recall), 4)
        if precision + recall else 0.0,
        "overall_f1": _mean([f1(r) for r in rows]),
        "latency_p50_ms": round(percentile(latencies, 50), 2),
        "latency_p95_ms": round(percentile(latencies, 95), 2),
        "latency_max_ms": round(max(latencies, default=0.0), 2),
    }


# -- output ----------------------------------------------------------------------------------


def format_table(metrics: dict[str, float]) -> str:
    width = max(len(k) for k in metrics)
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
    for name, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) and not name.endswith("_ms") else value
        lines.append(f"{name:<{width}}  {shown}")
    return "\n".join(lines)


def _latency_plot(latencies: list[float], path: Path) -> bool:
    """A histogram PNG beside the report; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(latencies, bins=30, color="#3b6ea5")
    ax.set_xlabel("ask latency (ms, warm)")
    ax.set_ylabel("questions")
    ax.set_title("Latency per question")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _text_histogram(latencies: list[float], bins: int = 8) -> list[str]:
    if not latencies:
        return []
    lo, hi = min(latencies), max(latencies)
    step = (hi - lo) / bins or 1.0
    counts = Counter(min(int((v - lo) / step), bins - 1) for v in latencies)
    return [f"{lo + i * step:7.1f}-{lo + (i + 1) * step:7.1f} ms | {'#' * counts[i]} {counts[i]}"
            for i in range(bins)]


def write_report(path: Path, metrics: dict[str, float], predictions: list[dict[str, Any]],
                 items: list[Item], title: str) -> None:
    """A Markdown or HTML report: metrics, latency histogram, and every miss."""
    latencies = [p["latency_ms"] for p in predictions]
    image = path.with_suffix(".latency.png")
    has_plot = _latency_plot(latencies, image)
    misses = []
    for item, pred in zip(items, predictions, strict=True):
        if item.answers:
            ok = not pred["abstained"] and contains_gold(pred["answer"], item.answers)
        else:
            ok = pred["abstained"]
        if not ok:
            top = pred["passages"][0]["text"] if pred["passages"] else ""
            answer = "(abstained)" if pred["abstained"] else pred["answer"]
            misses.append((item, answer, top))

    if path.suffix.lower() in (".html", ".htm"):
        e = html.escape
        rows = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in metrics.items())
        miss_rows = "".join(
            f"<tr><td>{e(i.id)}</td><td>{e(i.question)}</td>"
            f"<td>{e(' | '.join(i.answers) or '(unanswerable)')}</td><td>{e(a)}</td>"
            f"<td>{e(t[:300])}</td></tr>" for i, a, t in misses)
        plot = (f'<img src="{e(image.name)}" alt="latency histogram">' if has_plot
                else "<pre>" + e("\n".join(_text_histogram(latencies))) + "</pre>")
        body = (f"<h1>{e(title)}</h1><h2>Metrics</h2><table border=1>{rows}</table>"
                f"<h2>Latency</h2>{plot}<h2>Misses ({len(misses)})</h2><table border=1>"
                "<tr><th>id</th><th>question</th><th>gold</th><th>answer</th>"
                f"<th>top passage</th></tr>{miss_rows}</table>")
        head = f"<!doctype html><meta charset=utf-8><title>{e(title)}</title>"
        write_text_atomic(path, head + body)
        return

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# {title}", "", "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    lines += ["", "## Latency (warm `ask`, per question)", ""]
    lines += ([f"![latency histogram]({image.name})", ""] if has_plot else [])
    lines += ["```", *_text_histogram(latencies), "```", "",
              f"## Misses ({len(misses)} of {len(items)})", "",
              "A miss is an answerable question whose answer lacks the gold answer (or was "
              "refused), or an unanswerable question that was answered.", "",
              "| id | question | gold | answer | top passage |", "|---|---|---|---|---|"]
    for item, answer, top in misses:
        gold = " / ".join(item.answers) or "(unanswerable)"
        lines.append(f"| {cell(item.id)} | {cell(item.question)} | {cell(gold)} | "
                     f"{cell(answer[:300])} | {cell(top[:200])} |")
    write_text_atomic(path, "\n".join(lines) + "\n")


def run_eval_command(args: argparse.Namespace, settings: Settings) -> int:
    """`qa eval FILE.jsonl [--out] [--report] [--json] [--strict] [--baseline] [-k N]`."""
    path = Path(args.file)
    items, problems = load_items(path)
    for problem in problems:
        print(f"qa: eval: {path}: {problem}" + ("" if args.strict else " (skipped)"),
              file=sys.stderr)
    if problems and args.strict:
        raise QAError(f"{len(problems)} malformed line(s) in {str(path)!r} (--strict)")
    if not items:
        raise QAError(f"test set {str(path)!r} holds no questions")
    started = time.perf_counter()
    pipeline = Pipeline(settings)
    asker = baseline_asker(pipeline) if args.baseline else None
    metrics, predictions = evaluate(pipeline, items, settings.k, asker)
    metrics["total_seconds"] = round(time.perf_counter() - started, 2)
    if args.out:
        write_text_atomic(Path(args.out), "".join(
            json.dumps(p, ensure_ascii=False) + "\n" for p in predictions))
    if args.report:
        name = "dense-only baseline" if args.baseline else "qa"
        write_report(Path(args.report), metrics, predictions, items,
                     f"Evaluation of {name} on {path.name}")
    print(json.dumps(metrics, indent=2) if args.json else format_table(metrics))
    return 0
