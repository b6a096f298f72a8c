"""Shared fixtures: the real model and index (loaded once), a fast fake embedder, and a
network guard that fails any test reaching beyond loopback."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
ARTICLE = SEEDS / "politico-us-iraq-advisory-transition.txt"
DEV_SET = ROOT / "tests" / "data" / "dev_questions.jsonl"


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond this machine is a test failure (models must be local)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not (
            str(host).startswith("127.") or host in ("::1", "localhost")
        ):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


# What the fast tier (`-m "not slow and not browser"`) never imports: the model stack, spaCy's
# pipeline, and Gradio (seconds of imports each). A test that needs one is marked slow.
HEAVY_MODULES = ("torch", "transformers", "sentence_transformers", "spacy", "gradio")


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_stays_light(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the session (at its last teardown) if a run without slow tests imported one of
    HEAVY_MODULES: keeps `make test-fast` fast as tests are added."""
    yield
    if any(item.get_closest_marker("slow") or item.get_closest_marker("browser")
           for item in request.session.items):
        return
    loaded = [name for name in HEAVY_MODULES if name in sys.modules]
    if loaded:
        pytest.fail(f"the fast tier imported {', '.join(loaded)}: mark the test that needs "
                    "it @pytest.mark.slow (python -X importtime finds the importer)")


class HashingEmbedder:
    """Deterministic bag-of-words vectors: fast plumbing tests, no model."""

    name = "fake-hashing"
    dimension = 64

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, _bucket(word, self.dimension)] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


@functools.lru_cache(maxsize=1 << 16)
def _bucket(word: str, dimension: int) -> int:
    """The word's slot (md5, stable across runs); cached: the same words recur in every build."""
    return int(hashlib.md5(word.encode()).hexdigest(), 16) % dimension


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "seeds"
    shutil.copytree(SEEDS, dest)
    return dest


@pytest.fixture
def fake_pipeline(seeds_copy: Path, tmp_path: Path) -> Pipeline:
    settings = Settings(model="fake-hashing", seeds_dir=seeds_copy, index_dir=tmp_path / "index",
                        spacy="none")
    return Pipeline(settings, HashingEmbedder())


@pytest.fixture(scope="session")
def real_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The real model and the real article, indexed once per test session."""
    base = tmp_path_factory.mktemp("real")
    shutil.copytree(SEEDS, base / "seeds")
    pipeline = Pipeline(Settings(seeds_dir=base / "seeds", index_dir=base / "index"))
    pipeline.index  # noqa: B018 - build now, outside any timed test
    return pipeline


def load_questions(path: Path = DEV_SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI runs (`cli.main`) on the fake embedder, without spaCy: no model."""
    monkeypatch.setenv("QA_SPACY", "none")
    real = Pipeline.__init__

    def init(self: Pipeline, settings: Settings | None = None, embedder: object = None) -> None:
        real(self, settings, HashingEmbedder())

    monkeypatch.setattr(Pipeline, "__init__", init)


def cli_argv(settings: Settings, *args: str) -> list[str]:
    """`args` plus the folders of `settings` and the fake model's name (see `fake_cli`)."""
    return [*args, "--seeds", str(settings.seeds_dir), "--index", str(settings.index_dir),
            "--model", "fake-hashing"]
