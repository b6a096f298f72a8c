"""The running server the web tests share: `qa serve` in a subprocess on a free port.

It serves the index `real_pipeline` built (so the test process and the server answer from the
same files) and is started once per session, waited for on /healthz, and stopped at the end.
Test modules use it with `pytest_plugins = ["tests.conftest_web"]`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from qa.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 120.0  # seconds: loading the model on a slow machine


@dataclass(frozen=True)
class Server:
    url: str  # ends with "/"
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"qa serve exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"qa serve not ready after {READY_TIMEOUT:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def serving(env: dict[str, str], log: Path, host: str = "127.0.0.1") -> Iterator[Server]:
    """`qa serve` on a free port with `env`, ready (/healthz 200), then stopped. It listens
    on `host` (e.g. 0.0.0.0, beyond loopback) and is reached over 127.0.0.1 either way."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "serve", "--host", host, "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    running = Server(f"http://127.0.0.1:{port}/", process, log)
    try:
        _wait_ready(running)
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def server(real_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`qa serve` over the session's real index, ready (/healthz is 200)."""
    settings = real_pipeline.settings
    env = {
        **os.environ,
        "QA_SEEDS": str(settings.seeds_dir),
        "QA_INDEX": str(settings.index_dir),
        "QA_MODEL": settings.model,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    cache_dir = getattr(settings, "cache_dir", None)
    if cache_dir is not None:
        env["QA_CACHE_DIR"] = str(cache_dir)
    with serving(env, tmp_path_factory.mktemp("server") / "serve.log") as running:
        yield running
