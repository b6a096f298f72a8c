"""Section 5: `/api/ask` throughput and latency under 1, 4 and 16 concurrent clients; and,
run alone (`make soak`, `python -m benchmarks.load`), issue 14's figures: 1, 16 and 64
clients for a fixed time each, then a soak at 8 clients, with peak and per-minute RSS and a
check that every response equals the one the server gave to that question alone.

One `qa serve` child on loopback; clients are asyncio tasks in this process sharing one
HTTP/1.1 connection pool, each sending the next question as soon as its last one
answered (closed loop). Every level is bounded in requests, in seconds and per request, so
a slow or wedged server costs at most a minute per level, never the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.common import (
    QA,
    SEEDS,
    TEST_SET,
    Section,
    last_line,
    load_average,
    mib,
    ms,
    offline_env,
    p50,
    p95,
    run_process,
    tree_rss,
)
from benchmarks.server import ASK_PATH, Server, ask_payload, first_answer
from qa.evaluation import load_items


@dataclass
class Level:
    """One concurrency level's outcome."""

    clients: int
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    wrong: int = 0  # 200s whose body differs from the expected answer to that question

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def _level(url: str, questions: list[str], clients: int, requests: int,
                 deadline: float, timeout: float,
                 expected: dict[str, object] | None = None) -> Level:
    level = Level(clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def worker() -> None:
            while level.sent < requests and time.perf_counter() - started < deadline:
                question = questions[level.sent % len(questions)]
                level.sent += 1
                sent = time.perf_counter()
                try:
                    response = await client.post(f"{url}{ASK_PATH}", json=ask_payload(question))
                except httpx.TimeoutException:
                    level.errors["timeout"] += 1
                    continue
                except httpx.HTTPError as exc:
                    level.errors[type(exc).__name__] += 1
                    continue
                if response.status_code == 200:
                    level.latencies.append(time.perf_counter() - sent)
                    if expected is not None and response.json() != expected.get(question):
                        level.wrong += 1
                else:
                    level.errors[f"HTTP {response.status_code}"] += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
    level.seconds = time.perf_counter() - started
    return level


def run(index_dir: Path, quick: bool = False) -> Section:
    """Start `qa serve`, warm it, then run each concurrency level in turn."""
    section = Section("5. Load on /api/ask")
    levels = (1, 4) if quick else (1, 4, 16)
    requests = 10 if quick else 100
    deadline = 20.0 if quick else 60.0
    if not (index_dir / "manifest.json").exists():
        build = run_process([str(QA), "index", "--index", str(index_dir), "--seeds", str(SEEDS)],
                            timeout=300)
        if build.returncode != 0:
            section.add("/api/ask load", "n/a", f"qa index failed: {last_line(build.stderr)}")
            return section
    items, _ = load_items(TEST_SET)
    questions = [i.question for i in items]  # answerable and not, as users would ask
    with Server(index_dir) as server:
        started = server.start()
        if started.ready_seconds is None:
            section.add("/api/ask load", "n/a", f"qa serve: {started.reason}")
            return section
        for question in questions[:3]:
            seconds, why = first_answer(server.url, question)
            if seconds is None:
                section.add("/api/ask load", "n/a", f"warm-up request failed: {why}")
                return section
        results = [asyncio.run(_level(server.url, questions, clients, requests, deadline, 30.0))
                   for clients in levels]
        rss = server.peak_rss
    for level in results:
        errors = ", ".join(f"{n} {kind}" for kind, n in level.errors.items()) or "no errors"
        section.add(
            f"{level.clients} client(s): req/s, p50 / p95",
            f"{level.throughput:.1f} req/s, {ms(p50(level.latencies))} / "
            f"{ms(p95(level.latencies))}",
            f"{len(level.latencies)}/{level.sent} ok in {level.seconds:.1f} s; {errors}",
        )
        section.values[f"rps_{level.clients}"] = level.throughput
        section.values[f"p50_{level.clients}"] = p50(level.latencies)
    section.add("qa serve peak RSS under load", mib(rss), "process tree, polled")
    section.markdown.append(
        f"Closed loop: each client sends its next request when the last one answers; at most "
        f"{requests} requests or {deadline:.0f} s per level, 30 s per request. Questions cycle "
        "through the whole test set (answerable and not). Client and server share the same "
        "2 cores, so the client's own CPU use is in the numbers."
    )
    return section


# -- issue 14: load levels and a soak, run alone ---------------------------------------------


class RSSTrace:
    """The server's process-tree RSS every `interval` seconds (peak, and the trace)."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.samples: list[tuple[float, int]] = []
        self._proc = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._started = time.perf_counter()

    def __enter__(self) -> RSSTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._started, tree_rss(self._proc)))
            self._stop.wait(self._interval)

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)

    def per_minute(self, since: int = 0) -> list[int]:
        """Peak RSS of each whole or partial minute of the trace from sample `since` on."""
        out: dict[int, int] = {}
        start = self.samples[since][0] if since < len(self.samples) else 0.0
        for t, rss in self.samples[since:]:
            minute = int((t - start) // 60)
            out[minute] = max(out.get(minute, 0), rss)
        return [out[m] for m in sorted(out)]


def _row(name: str, level: Level) -> str:
    errors = ", ".join(f"{n} {kind}" for kind, n in level.errors.items()) or "0"
    return (f"| {name} | {level.throughput:.1f} | {ms(p50(level.latencies))} | "
            f"{ms(p95(level.latencies))} | {len(level.latencies)} | {errors} | {level.wrong} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=(
        "issue 14's load figures: levels of concurrent clients, then a soak"))
    parser.add_argument("--levels", default="1,16,64", help="comma list of client counts")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per level")
    parser.add_argument("--soak", type=float, default=300.0, help="soak seconds (0: none)")
    parser.add_argument("--soak-clients", type=int, default=8)
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    levels = [int(n) for n in args.levels.split(",") if n.strip()]

    work = Path(tempfile.mkdtemp(prefix="qa-soak-"))
    try:
        index_dir = work / "index"
        build = subprocess.run([sys.executable, "-m", "qa.cli", "index", "--index",
                                str(index_dir), "--seeds", str(SEEDS)], env=offline_env(),
                               capture_output=True, text=True, timeout=600)
        if build.returncode != 0:
            print(f"qa index failed: {last_line(build.stderr)}", file=sys.stderr)
            return 1
        items, _ = load_items(TEST_SET)
        questions = [i.question for i in items]
        lines = [f"load average at start: {load_average()}", "",
                 "| clients | req/s | p50 | p95 | answers | errors | wrong |",
                 "|---|---|---|---|---|---|---|"]
        # This interpreter, not the venv's `qa` script: the code under test is this checkout.
        with Server(index_dir, python_flags=("-u",)) as server:
            started = server.start()
            if started.ready_seconds is None:
                print(f"qa serve: {started.reason}", file=sys.stderr)
                return 1
            assert server.proc is not None
            expected = {}
            for question in questions:  # what the server says to each question alone
                r = httpx.post(f"{server.url}{ASK_PATH}", json=ask_payload(question),
                               timeout=60)
                expected[question] = r.json()
            with RSSTrace(server.proc.pid) as rss:
                for clients in levels:
                    level = asyncio.run(_level(server.url, questions, clients, 10**9,
                                               args.seconds, 60.0, expected))
                    lines.append(_row(str(clients), level))
                    print(lines[-1], flush=True)
                levels_peak = rss.peak
                mark = len(rss.samples)
                if args.soak > 0:
                    level = asyncio.run(_level(server.url, questions, args.soak_clients, 10**9,
                                               args.soak, 60.0, expected))
                    lines.append(_row(f"{args.soak_clients} (soak {args.soak:.0f} s)", level))
                    print(lines[-1], flush=True)
            lines += ["", f"peak RSS over the levels: {mib(levels_peak)}; overall: "
                      f"{mib(rss.peak)} (qa serve process tree, sampled every second)"]
            if args.soak > 0:
                lines.append("soak RSS per minute (peak): "
                             + ", ".join(mib(v) for v in rss.per_minute(mark)))
            lines.append(f"load average at end: {load_average()}")
        text = "\n".join(lines) + "\n"
        print(text)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
