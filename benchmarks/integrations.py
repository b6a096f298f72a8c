"""Section 6: what the OpenAI-compatible endpoint and the MCP server add over `/api/ask`.

One `qa serve` child on loopback answers the same questions through four paths, interleaved
question by question (the order rotated each time) so machine noise falls on all alike:

    /api/ask                       httpx, JSON
    /v1/chat/completions           httpx, JSON (stream: false)
    /v1/chat/completions stream    httpx, read to `data: [DONE]`
    MCP ask over HTTP (/mcp)       the SDK's client, one connection, `call_tool("ask")`

Reported: p50 of each path and the p50 of the paired difference to `/api/ask` (same question,
same round), which is the added latency. The MCP figure includes the SDK client's own work
(JSON-RPC, result validation), as an agent would pay it. Standalone:
`python -m benchmarks.integrations [--quick]`, or `python -m benchmarks --sections
integrations`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx

from benchmarks.common import QA, SEEDS, TEST_SET, Section, last_line, ms, p50, run_process
from benchmarks.server import Server, first_answer

PATHS = ("/api/ask", "/v1/chat/completions", "/v1 stream", "MCP ask (HTTP)")


def questions(limit: int) -> list[str]:
    """The test set's questions (answerable and not), first `limit` distinct ones."""
    seen: list[str] = []
    for line in TEST_SET.read_text(encoding="utf-8").splitlines():
        if line.strip():
            question = json.loads(line)["question"]
            if question not in seen:
                seen.append(question)
    return seen[:limit]


async def _measure(url: str, asked: list[str], rounds: int) -> dict[str, list[float]]:
    from mcp import Client

    times: dict[str, list[float]] = {p: [] for p in PATHS}
    async with httpx.AsyncClient(timeout=60) as http, Client(f"{url}/mcp") as agent:

        async def api(q: str) -> None:
            r = await http.post(f"{url}/api/ask", json={"question": q})
            r.raise_for_status()

        async def chat(q: str) -> None:
            body = {"model": "qa", "messages": [{"role": "user", "content": q}]}
            r = await http.post(f"{url}/v1/chat/completions", json=body)
            r.raise_for_status()

        async def stream(q: str) -> None:
            body = {"model": "qa", "messages": [{"role": "user", "content": q}], "stream": True}
            async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                r.raise_for_status()
                last = ""
                async for line in r.aiter_lines():
                    last = line or last
            if last != "data: [DONE]":
                raise RuntimeError(f"stream ended with {last[:80]!r}")

        async def mcp(q: str) -> None:
            result = await agent.call_tool("ask", {"question": q})
            if result.is_error:
                raise RuntimeError(f"MCP ask failed: {result.content}")

        calls: dict[str, Callable[[str], Awaitable[None]]] = dict(
            zip(PATHS, (api, chat, stream, mcp), strict=True))
        for q in asked[:2]:  # warm every path (first-call costs are not the steady state)
            for call in calls.values():
                await call(q)
        turn = 0
        for _ in range(rounds):
            for q in asked:
                order = PATHS[turn % len(PATHS):] + PATHS[:turn % len(PATHS)]
                turn += 1
                for path in order:
                    started = time.perf_counter()
                    await calls[path](q)
                    times[path].append(time.perf_counter() - started)
    return times


def run(index_dir: Path, quick: bool = False) -> Section:
    """Start `qa serve` over `index_dir` (built if missing) and time the four paths."""
    section = Section("6. Integrations: OpenAI-compatible and MCP over /api/ask")
    asked = questions(6 if quick else 20)
    rounds = 1 if quick else 3
    if not (index_dir / "manifest.json").exists():
        build = run_process([str(QA), "index", "--index", str(index_dir), "--seeds", str(SEEDS)],
                            timeout=300)
        if build.returncode != 0:
            section.add("integrations", "n/a", f"qa index failed: {last_line(build.stderr)}")
            return section
    with Server(index_dir) as server:
        started = server.start()
        if started.ready_seconds is None:
            section.add("integrations", "n/a", f"qa serve: {started.reason}")
            return section
        seconds, why = first_answer(server.url, asked[0])
        if seconds is None:
            section.add("integrations", "n/a", f"warm-up request failed: {why}")
            return section
        times = anyio.run(_measure, server.url, asked, rounds)
    base = times[PATHS[0]]
    section.add(f"{PATHS[0]} p50", ms(p50(base)), f"{len(base)} calls")
    section.values["api_ask_p50"] = p50(base)
    for path in PATHS[1:]:
        added = statistics.median(t - b for t, b in zip(times[path], base, strict=True))
        section.add(f"{path} p50", ms(p50(times[path])),
                    f"added over /api/ask: {'+' if added >= 0 else '−'}{ms(abs(added))} "
                    f"(median of paired differences, {len(times[path])} calls)")
        section.values[f"added_{path}"] = added
    section.markdown.append(
        f"{len(asked)} questions of the test set × {rounds} round(s), the four paths "
        "interleaved per question with the order rotated; two warm-up questions first. "
        "Client and server share this machine's 2 cores, which other jobs were using too: "
        "differences of a few milliseconds are within the noise."
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.integrations",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="6 questions, 1 round")
    args = parser.parse_args(argv)
    from benchmarks.report import format_table

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="qa-bench-index-") as tmp:
        section = run(Path(tmp) / "index", args.quick)
    section.seconds = time.perf_counter() - started
    print(format_table([section]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
