"""What every section shares: paths, the result records, timing and process helpers.

A section returns a `Section`: rows for the table, goals judged met/missed, and free Markdown
(notes, extra tables) for `results.md`. Numbers are kept as numbers until formatted, so the
goals and the scaling doc read the same values the table shows.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from qa.evaluation import percentile

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
TEST_SET = ROOT / "eval" / "article_qa.jsonl"
# The venv's own scripts: never resolve the interpreter symlink, or we leave the venv.
BIN = Path(sys.executable).parent
QA = BIN / "qa"


def offline_env() -> dict[str, str]:
    """The environment for child processes: ours, but never reaching the Hugging Face hub."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    metric: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class Goal:
    """A target from issue 6 and how the measurement compares (met None: could not measure)."""

    name: str
    target: str
    measured: str
    met: bool | None
    margin: str


@dataclass
class Section:
    """What one section measured."""

    title: str
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)  # notes and extra tables, in order
    values: dict[str, float] = field(default_factory=dict)  # raw numbers other sections reuse
    seconds: float = 0.0

    def add(self, metric: str, value: str, note: str = "") -> None:
        self.rows.append(Row(metric, value, note))


def ms(seconds: float) -> str:
    """Milliseconds with the precision the magnitude deserves (seconds past 10 s)."""
    if seconds >= 10:
        return f"{seconds:.1f} s"
    value = seconds * 1000
    digits = 3 if value < 1 else 2 if value < 10 else 1
    return f"{value:.{digits}f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.0f} MiB"


def p50(values: Sequence[float]) -> float:
    return percentile(list(values), 50)


def p95(values: Sequence[float]) -> float:
    return percentile(list(values), 95)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` took (perf_counter, wall clock)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def at_most(measured: float, limit: float, unit: str = "s") -> tuple[bool, str]:
    """Met/missed for 'measured ≤ limit', and by how much, in words."""
    sep = "" if unit == "×" else " "
    ratio = measured / limit
    if measured <= limit:
        return True, f"met with {limit - measured:.3g}{sep}{unit} to spare ({ratio:.2f}×)"
    return False, f"missed by {measured - limit:.3g}{sep}{unit} ({ratio:.2f}× the target)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and its children, in bytes (0 once it is gone)."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakRSS:
    """Polls a process tree's RSS in a background thread; `peak` is the largest seen.

    Polling (every 20 ms) can miss a short spike, so the figure is a lower bound; for the
    processes measured here memory only grows until the first answer, so it is close.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.peak = 0
        self._proc = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakRSS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> PeakRSS:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self._proc))
            self._stop.wait(self._interval)


@dataclass(frozen=True)
class Run:
    """One finished child process: seconds from spawn to its first output and to its exit,
    peak RSS, and what it printed."""

    seconds: float
    first_output: float | None
    peak_rss: int
    returncode: int
    stdout: str
    stderr: str


def run_process(args: Sequence[str], timeout: float = 120.0) -> Run:
    """Run a command to completion, timing it from spawn and polling its memory."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(args), cwd=ROOT, env=offline_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first: list[float] = []
    output: dict[str, list[bytes]] = {"out": [], "err": []}

    def pump(stream: io.BufferedReader, key: str) -> None:
        for data in iter(lambda: stream.read1(1 << 16), b""):
            if key == "out" and not first:
                first.append(time.perf_counter() - started)
            output[key].append(data)

    pumps = [threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True),
             threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True)]
    for thread in pumps:
        thread.start()
    with PeakRSS(proc.pid) as rss:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    seconds = time.perf_counter() - started
    for thread in pumps:
        thread.join()
    text = {k: b"".join(v).decode("utf-8", "replace") for k, v in output.items()}
    return Run(seconds, first[0] if first else None, rss.peak, proc.returncode, text["out"],
               text["err"])


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def word_cache_state() -> str:
    """Whether qa's per-model word table (query expansion) is cached already: a cold cache
    makes the first index build embed the whole tokenizer vocabulary."""
    from qa.config import load_settings

    cache_dir = getattr(load_settings(), "cache_dir", None)
    if cache_dir is None:
        return "no word table in this version of qa"
    cached = any(Path(cache_dir).glob("words-*.json"))
    return f"word table {'cached' if cached else 'NOT cached'} in {cache_dir}"
