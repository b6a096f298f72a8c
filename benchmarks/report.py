"""Output: the machine the numbers came from, the table on stdout, and `results.md`.

Timings mean little without the machine and its load, so both are recorded next to them;
this machine is shared, and the load average before and after each run is part of the record.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata

import psutil

from benchmarks.common import ROOT, Goal, Section, load_average, mib

PACKAGES = ("torch", "sentence-transformers", "transformers", "faiss-cpu", "numpy",
            "langchain-core", "langchain-huggingface", "fastapi",
            "uvicorn")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}" if head else "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, str]:
    """What the numbers were measured on (read without importing torch)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "CPU": f"{os.cpu_count()} logical cores ({affinity} usable), {_cpu_model()}",
        "memory": f"{mib(psutil.virtual_memory().total)} total",
        "OS": platform.platform(),
        "python": platform.python_version(),
        **{name: _version(name) for name in PACKAGES},
        "qa commit": _git_commit(),
        "load average at start (1/5/15 min)": load_average(),
    }


def _status(goal: Goal) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[goal.met]


def format_table(sections: list[Section]) -> str:
    """The plain-text table printed at the end of a run."""
    rows = [(s.title, r.metric, r.value, r.note) for s in sections for r in s.rows]
    width_m = max((len(r[1]) for r in rows), default=10)
    width_v = max((len(r[2]) for r in rows), default=10)
    out = []
    for section in sections:
        out += ["", f"== {section.title} ({section.seconds:.0f} s)"]
        for row in section.rows:
            note = f"  ({row.note})" if row.note else ""
            out.append(f"  {row.metric:<{width_m}}  {row.value:<{width_v}}{note}")
    goals = [g for s in sections for g in s.goals]
    if goals:
        out += ["", "== Goals"]
        for goal in goals:
            out.append(f"  [{_status(goal):>6}] {goal.name}: {goal.measured} "
                       f"(target {goal.target}) — {goal.margin}")
    return "\n".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(sections: list[Section], env: dict[str, str], total: float,
                    command: str) -> str:
    """`results.md`: machine, goals, then each section's table and notes."""
    lines = ["# qa benchmarks (issue 6)", "",
             f"Produced by `{command}` in {total / 60:.1f} min. Every timing is wall clock on "
             "the machine below; p50/p95 are over individual calls.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in env.items()]
    lines += ["", "## Goals", "", "| goal | target | measured | status | margin |",
              "|---|---|---|---|---|"]
    for goal in (g for s in sections for g in s.goals):
        lines.append(f"| {_cell(goal.name)} | {_cell(goal.target)} | {_cell(goal.measured)} | "
                     f"**{_status(goal)}** | {_cell(goal.margin)} |")
    for section in sections:
        lines += ["", f"## {section.title}", "", f"_{section.seconds:.0f} s_", "",
                  "| metric | value | note |", "|---|---|---|"]
        lines += [f"| {_cell(r.metric)} | {_cell(r.value)} | {_cell(r.note)} |"
                  for r in section.rows]
        for block in section.markdown:
            lines += ["", block]
    return "\n".join(lines) + "\n"
