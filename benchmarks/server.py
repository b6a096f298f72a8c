"""A `qa serve` child process, timed from spawn until `GET /healthz` answers 200.

`qa serve` may not exist (the HTTP API is being built alongside); then `Server.start`
reports why it never became ready instead of raising, and callers record "n/a".
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.common import QA, ROOT, SEEDS, PeakRSS, free_port, last_line, offline_env


@dataclass
class Started:
    """How a start went: seconds to ready (None if never), peak RSS until then, why not."""

    ready_seconds: float | None
    peak_rss: int
    reason: str = ""


class Server:
    """`qa serve --port <free> --index DIR --seeds seeds`, stopped on exit of the `with`."""

    def __init__(self, index_dir: Path, timeout: float = 90.0,
                 python_flags: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.index_dir = index_dir
        self.timeout = timeout
        self.python_flags = python_flags  # e.g. ("-X", "importtime"): run via the interpreter
        self.proc: subprocess.Popen[bytes] | None = None
        self._rss: PeakRSS | None = None
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Started:
        """Spawn the server and poll `/healthz` every 50 ms until 200, exit or timeout."""
        command = [sys.executable, *self.python_flags, "-m", "qa.cli"] if self.python_flags \
            else [str(QA)]
        args = [*command, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--index", str(self.index_dir), "--seeds", str(SEEDS)]
        started = time.perf_counter()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=offline_env(), stdout=self._log,
                                     stderr=subprocess.STDOUT)
        self._rss = PeakRSS(self.proc.pid).start()
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() - started < self.timeout:
                if self.proc.poll() is not None:
                    return Started(None, self.peak_rss,
                                   f"exited with code {self.proc.returncode}: {self.output()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return Started(time.perf_counter() - started, self.peak_rss)
                time.sleep(0.05)
        return Started(None, self.peak_rss, f"no 200 from /healthz within {self.timeout:.0f} s")

    @property
    def peak_rss(self) -> int:
        return self._rss.peak if self._rss else 0

    def output(self) -> str:
        """The last line the server printed (why it failed, usually)."""
        return last_line(self.log())

    def log(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        """Ctrl-C first (a clean shutdown), then SIGTERM, then SIGKILL; only our own child."""
        if self._rss is not None:
            self._rss.stop()
        if self.proc is not None and self.proc.poll() is None:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()


ASK_PATH = "/api/ask"


def ask_payload(question: str) -> dict[str, object]:
    """The body of `POST /api/ask` (the question alone; history and k take their defaults)."""
    return {"question": question}


def first_answer(url: str, question: str, timeout: float = 60.0) -> tuple[float | None, str]:
    """Seconds for one `POST /api/ask` to answer 200, or None and why not."""
    started = time.perf_counter()
    try:
        response = httpx.post(f"{url}{ASK_PATH}", json=ask_payload(question), timeout=timeout)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}: {response.text[:160]}"
    return time.perf_counter() - started, ""
