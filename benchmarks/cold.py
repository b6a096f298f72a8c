"""Section 3: cold start of `qa ask` and `qa serve`, where it goes, and what gets imported.

Every run is a fresh child process against an index already built in a temp folder, so the
time is what a user waits for: interpreter start, imports, model load, index load, answer.
`-X importtime` and a `sys.modules` dump after a real `ask` say which imports cost the most
and whether anything heavy that `ask` does not need (gradio, LangChain, FastAPI) sneaks in.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    QA,
    SEEDS,
    Goal,
    Run,
    Section,
    at_most,
    last_line,
    mib,
    p50,
    run_process,
    secs,
    word_cache_state,
)
from benchmarks.server import Server, first_answer

QUESTION = "How many American troops are in Iraq today?"
# Imports that must not be on the `qa ask` path, and ones worth knowing about.
FORBIDDEN = ("gradio", "langchain", "langchain_core", "langchain_community", "fastapi",
             "uvicorn", "starlette")
WATCHED = ("torch", "transformers", "sentence_transformers", "faiss", "sklearn", "scipy",
           "pandas", "matplotlib", "PIL", "pydantic", "httpx", "requests", "huggingface_hub")

_DUMP_MODULES = """
import json, sys
from qa.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""

# The CLI's path, step by step: where a cold `qa ask` spends its time.
_PHASES = """
import json, sys, time
t = [time.perf_counter()]
from qa.cli import main
from qa.config import load_settings
from qa.pipeline import Pipeline
t.append(time.perf_counter())
import torch
t.append(time.perf_counter())
p = Pipeline(load_settings(index_dir=sys.argv[2], seeds_dir=sys.argv[3]))
p.index
t.append(time.perf_counter())
p.embedder.warm_up()
t.append(time.perf_counter())
p.ask(sys.argv[4])
t.append(time.perf_counter())
p.ask(sys.argv[4])
t.append(time.perf_counter())
names = ["import qa", "import torch", "load + verify index", "load model", "first ask",
         "second ask (warm)"]
with open(sys.argv[1], "w") as fh:
    json.dump(dict(zip(names, [b - a for a, b in zip(t, t[1:])])), fh)
"""

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


@dataclass(frozen=True)
class Imported:
    name: str
    self_us: int
    cumulative_us: int
    depth: int


def parse_importtime(stderr: str) -> list[Imported]:
    """The `-X importtime` lines, in printed order (a module's imports come before it)."""
    rows = []
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if m:
            rows.append(Imported(m.group(4), int(m.group(1)), int(m.group(2)),
                                 len(m.group(3)) // 2))
    return rows


def _parent(rows: list[Imported], i: int) -> int | None:
    """The row that imported rows[i]: the next printed row one level up (post-order)."""
    for j in range(i + 1, len(rows)):
        if rows[j].depth < rows[i].depth:
            return j
    return None


def _importer(rows: list[Imported], i: int) -> str:
    """The first module outside rows[i]'s package on the way up, i.e. who pulled it in."""
    package = rows[i].name.split(".")[0]
    j: int | None = i
    while j is not None and rows[j].name.split(".")[0] == package:
        j = _parent(rows, j)
    return rows[j].name if j is not None else "(top level: the command or a lazy import)"


def import_breakdown(rows: list[Imported]) -> tuple[list[tuple[str, float, str]], float]:
    """Self time summed per top-level package (no double counting), with who pulled each in."""
    per_package: dict[str, float] = defaultdict(float)
    pulled_by: dict[str, str] = {}
    for i, row in enumerate(rows):
        package = row.name.split(".")[0]
        per_package[package] += row.self_us / 1e6
        if package not in pulled_by:
            pulled_by[package] = _importer(rows, i)
    total = sum(per_package.values())
    ordered = sorted(per_package.items(), key=lambda kv: -kv[1])
    return [(name, seconds, pulled_by[name]) for name, seconds in ordered], total


def _cli_args(index_dir: Path) -> list[str]:
    return ["ask", QUESTION, "--index", str(index_dir), "--seeds", str(SEEDS)]


def run(index_dir: Path, quick: bool = False, runs: int | None = None) -> Section:
    """Build the index in `index_dir` with a cold `qa index`, then time cold starts on it."""
    section = Section("3. Cold start")
    runs = runs or (1 if quick else 3)
    cache = word_cache_state()
    build = run_process([str(QA), "index", "--index", str(index_dir), "--seeds", str(SEEDS)],
                        timeout=600)
    if build.returncode != 0:
        section.add("qa index", "failed", last_line(build.stderr))
        return section
    section.add("qa index (cold process, builds the index)", secs(build.seconds),
                f"peak RSS {mib(build.peak_rss)}; includes model load; before it: {cache}")
    _ask_cold(section, index_dir, runs)
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        if not quick:
            _phases(section, index_dir, Path(tmp))
        _imports(section, index_dir, Path(tmp))
    _serve_cold(section, index_dir, 1 if quick else 2)
    if not quick:
        _serve_imports(section, index_dir)
    return section


def _ask_cold(section: Section, index_dir: Path, runs: int) -> None:
    results: list[Run] = [run_process([str(QA), *_cli_args(index_dir)]) for _ in range(runs)]
    failed = [r for r in results if r.returncode != 0]
    if failed:
        section.add("qa ask cold start", "failed", last_line(failed[0].stderr))
        section.goals.append(Goal("`qa ask` cold start", "≤ 5 s", "failed", None, "n/a"))
        return
    answered = [r.first_output if r.first_output is not None else r.seconds for r in results]
    cold = p50(answered)
    section.add("qa ask cold start p50 (spawn → answer printed)", secs(cold),
                f"{runs} runs: {', '.join(f'{s:.2f}' for s in answered)} s")
    section.add("qa ask spawn → exit p50", secs(p50([r.seconds for r in results])),
                "the rest is interpreter teardown after the answer")
    section.add("qa ask peak RSS", mib(max(r.peak_rss for r in results)), "process tree, polled")
    section.values.update(ask_cold=cold, ask_exit=p50([r.seconds for r in results]),
                          ask_rss=max(r.peak_rss for r in results))
    met, margin = at_most(cold, 5.0)
    section.goals.append(Goal("`qa ask` cold start (spawn → answer)", "≤ 5 s", secs(cold), met,
                              margin))


def _phases(section: Section, index_dir: Path, tmp: Path) -> None:
    out = tmp / "phases.json"
    result = run_process([sys.executable, "-c", _PHASES, str(out), str(index_dir), str(SEEDS),
                          QUESTION])
    if result.returncode != 0:
        section.add("cold start phases", "failed", last_line(result.stderr))
        return
    phases = json.loads(out.read_text())
    lines = ["Where a cold `qa ask` spends its time (one instrumented child process, the "
             "CLI's steps made explicit):", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in phases.items()]
    lines.append(f"| total in Python (interpreter start excluded) | {sum(phases.values()):.2f} |")
    section.markdown.append("\n".join(lines))
    section.add("  of which importing torch", secs(phases["import torch"]),
                "see the phase table")
    section.add("  of which model load / first ask",
                f"{secs(phases['load model'])} / {secs(phases['first ask'])}")


def _imports(section: Section, index_dir: Path, tmp: Path) -> None:
    out = tmp / "modules.json"
    result = run_process([sys.executable, "-X", "importtime", "-c", _DUMP_MODULES, str(out),
                          *_cli_args(index_dir)])
    dumped = json.loads(out.read_text()) if out.exists() else {"code": None}
    if result.returncode != 0 or dumped["code"] != 0:
        section.add("import breakdown", "failed", last_line(result.stderr))
        return
    modules = set(dumped["modules"])
    roots = {m.split(".")[0] for m in modules}
    forbidden = sorted(r for r in roots if r in FORBIDDEN or r.startswith("langchain"))
    watched = [w for w in WATCHED if w in roots]
    section.add("heavy modules loaded after `qa ask`", ", ".join(watched) or "none")
    section.add("gradio / langchain / fastapi on the ask path", ", ".join(forbidden) or "none")
    section.goals.append(Goal(
        "no gradio/LangChain/FastAPI imported by `qa ask`", "none", ", ".join(forbidden) or "none",
        not forbidden, "met" if not forbidden else f"missed: {', '.join(forbidden)} imported",
    ))

    rows = parse_importtime(result.stderr)
    packages, total = import_breakdown(rows)
    section.add("import time, all modules (-X importtime)", secs(total),
                f"{len(rows)} modules; importtime itself inflates this")
    top = ", ".join(f"{name} {seconds:.1f}s" for name, seconds, _ in packages[:5])
    section.add("top import offenders (self time per package)", top)
    lines = ["Import time of a `qa ask` by top-level package (`-X importtime`, self time "
             "summed per package, so nothing is counted twice), and the module that first "
             "imported it:", "", "| package | seconds | first imported by |", "|---|---|---|"]
    lines += [f"| {name} | {seconds:.2f} | {by} |" for name, seconds, by in packages[:12]]
    lines.append(f"| all {len(packages)} packages | {total:.2f} | |")
    section.markdown.append("\n".join(lines))


def _serve_cold(section: Section, index_dir: Path, runs: int) -> None:
    ready: list[float] = []
    first: list[float] = []
    rss: list[int] = []
    reason = ""
    for _ in range(runs):
        with Server(index_dir) as server:
            started = server.start()
            if started.ready_seconds is None:
                reason = started.reason
                break
            ready.append(started.ready_seconds)
            seconds, why = first_answer(server.url, QUESTION)
            if seconds is None:
                reason = f"/api/ask: {why}"
            else:
                first.append(seconds)
            rss.append(server.peak_rss)
    if not ready:
        section.add("qa serve start → /healthz 200", "n/a", reason)
        section.goals.append(Goal("`qa serve` ready", "≤ 10 s", "n/a", None,
                                  f"not measurable: {reason}"))
        return
    value = p50(ready)
    section.add("qa serve start → /healthz 200, p50", secs(value),
                f"{len(ready)} runs: {', '.join(f'{s:.2f}' for s in ready)} s")
    section.add("qa serve ready → first /api/ask answer",
                secs(p50(first)) if first else "n/a",
                "includes any lazy model load" if first else reason)
    section.add("qa serve peak RSS (through first answer)", mib(max(rss)))
    section.values.update(serve_ready=value, serve_rss=max(rss))
    met, margin = at_most(value, 10.0)
    section.goals.append(Goal("`qa serve` ready", "≤ 10 s", secs(value), met, margin))


def _serve_imports(section: Section, index_dir: Path) -> None:
    """`-X importtime` of a `qa serve` from spawn until ready: what its start-up imports."""
    with Server(index_dir, python_flags=("-X", "importtime")) as server:
        started = server.start()
        log = server.log()
    if started.ready_seconds is None:
        return
    rows = parse_importtime(log)
    packages, total = import_breakdown(rows)
    top = ", ".join(f"{name} {seconds:.1f}s" for name, seconds, _ in packages[:6])
    section.add("qa serve: top import offenders until ready", top,
                f"{len(rows)} modules, {total:.1f} s of imports under -X importtime")
    lines = ["Import time of `qa serve` until `/healthz` is 200, by top-level package:", "",
             "| package | seconds | first imported by |", "|---|---|---|"]
    lines += [f"| {name} | {seconds:.2f} | {by} |" for name, seconds, by in packages[:12]]
    lines.append(f"| all {len(packages)} packages | {total:.2f} | |")
    section.markdown.append("\n".join(lines))
