"""Section 5: `/api/ask` throughput and latency under 1, 4 and 16 concurrent clients.

One `qa serve` child on loopback; clients are asyncio tasks in this process sharing one
HTTP/1.1 connection pool, each sending the next question as soon as its last one
answered (closed loop). Every level is bounded in requests, in seconds and per request, so
a slow or wedged server costs at most a minute per level, never the whole run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.common import (
    QA,
    SEEDS,
    TEST_SET,
    Section,
    last_line,
    mib,
    ms,
    p50,
    p95,
    run_process,
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

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def _level(url: str, questions: list[str], clients: int, requests: int,
                 deadline: float, timeout: float) -> Level:
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
