"""Index scale figures of issue 12, in one script (no model needed except `--embed-one`).

`python -m benchmarks.index_scale [--sizes 10000,100000] [--big-mb 20] [--small-docs 1000]`

* search: qa's `search()` (embedding excluded) over synthetic corpora of n two-sentence
  passages (clustered unit vectors, Zipf words), with exact and HNSW dense search, p50/p95,
  and HNSW recall@10 against exact search;
* small docs: a build of N small documents (SQuAD paragraphs), then adding one document:
  wall time and what was embedded (a hashing embedder stands in for the model, so the
  figure is everything but the model; the model's own time for that document is printed
  with `--embed-one`);
* big text: a build of a `--big-mb` MB text (SQuAD articles repeated) with the hashing
  embedder (time and peak RSS apart from the model), then a cold load in a fresh process;
  with `--real-model`, what `qa index` does instead: the real model and the spaCy annotation
  of every sentence, model loads included (e.g. `--sizes "" --small-docs 0 --big-mb 2
  --real-model`: a 2 MB slice of the same text).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.scale import DIM, synthetic_corpus, synthetic_index, timed_search
from qa.config import Settings
from qa.embedding import Embedder
from qa.retrieval import Query, search
from qa.store import build_index, load_index
from tests.conftest import HashingEmbedder

SQUAD = Path("/work/shared/data/squad2-train-10-articles.json")


class Hashing384(HashingEmbedder):
    name = "hashing-384"
    dimension = DIM


def _memory_kib(pid: str) -> dict[str, int]:
    """VmHWM (peak) and VmRSS (now) of a process from /proc, in KiB; {} when unreadable."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines)
            if k in ("VmHWM", "VmRSS")}


def peak_mib() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it is not inherited across exec)."""
    if hwm := _memory_kib("self").get("VmHWM"):
        return hwm // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


class ChildrenPeak(threading.Thread):
    """Peak RSS of this process's children (VmHWM, the largest child) and of this process and
    its children together (VmRSS summed), polled each second while it runs (ru_maxrss of
    children is useless here: a fork counts the parent's pages)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.total_kib = 0
        self._done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.wait(1.0):
            total = _memory_kib("self").get("VmRSS", 0)
            for task in Path("/proc/self/task").iterdir():
                for pid in (task / "children").read_text().split():
                    status = _memory_kib(pid)
                    self.peak_kib = max(self.peak_kib, status.get("VmHWM", 0))
                    total += status.get("VmRSS", 0)
            self.total_kib = max(self.total_kib, total)

    def stop(self) -> tuple[int, int]:
        """(largest child's peak, peak of all together), MiB."""
        self._done.set()
        self.join()
        return self.peak_kib // 1024, self.total_kib // 1024


def _paragraphs() -> list[str]:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    return [p["context"] for a in data["data"] for p in a["paragraphs"]]


def bench_search(n: int, n_queries: int = 100) -> dict[str, float | str]:
    rng = np.random.default_rng(n)
    vectors, queries, words, sentences, chunks = synthetic_corpus(rng, n, n_queries)
    started = time.perf_counter()
    approx = synthetic_index(rng, vectors, None, chunks, sentences, hnsw_above=1)
    build = time.perf_counter() - started
    exact = synthetic_index(rng, vectors, None, chunks, sentences, hnsw_above=n + 1)
    texts = [Query.of(" ".join(s.rstrip(".").split()[:4])) for s in words.sentences(n_queries)]
    recall = float(np.mean([
        len(set(approx.search_chunks(q, 10)[1]) & set(exact.search_chunks(q, 10)[1])) / 10
        for q in queries]))
    out: dict[str, float | str] = {"n": n, "hnsw_build_s": round(build, 1),
                                   "recall@10": recall}
    for name, index in (("hnsw", approx), ("exact", exact)):
        lat = timed_search(index, queries, texts, n_queries)
        out[f"{name}_p50_ms"] = round(float(np.percentile(lat, 50)) * 1000, 2)
        out[f"{name}_p95_ms"] = round(float(np.percentile(lat, 95)) * 1000, 2)
    return out


def bench_small_docs(n_docs: int, embed_one: bool) -> dict[str, object]:
    paras = _paragraphs()
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        for i in range(n_docs):
            (seeds / f"doc{i:04d}.txt").write_text(
                f"Document {i}\n\n{paras[i % len(paras)]}\n", encoding="utf-8")
        settings = Settings(model=Hashing384.name, seeds_dir=seeds, index_dir=Path(tmp) / "ix")
        t = time.perf_counter()
        build_index(settings, Hashing384())
        full = time.perf_counter() - t
        (seeds / "zzz-new.txt").write_text(f"New\n\n{paras[3]}\n", encoding="utf-8")
        t = time.perf_counter()
        index = build_index(settings, Hashing384())
        add = time.perf_counter() - t
        out: dict[str, object] = {"docs": n_docs, "full_build_s": round(full, 2),
                                  "add_one_s": round(add, 2),
                                  "embedded": index.manifest["embedded"]}
        if embed_one:
            from qa.embedding import SentenceTransformerEmbedder

            texts = [s.text for c in index.chunks if c.doc_id == "zzz-new"
                     for s in c.sentences]
            model = SentenceTransformerEmbedder()
            model.embed(["warm up"])
            t = time.perf_counter()
            model.embed(texts)
            out["model_embeds_that_document_s"] = round(time.perf_counter() - t, 2)
    return out


def bench_big(mb: float, workdir: Path, real: bool = False) -> dict[str, object]:
    text = "\n\n".join(_paragraphs())
    seeds = workdir / "seeds"
    shutil.rmtree(workdir, ignore_errors=True)
    seeds.mkdir(parents=True)
    body = "\n\n".join([text] * (int(mb * 1_000_000) // len(text) + 1))
    body = body[: max(int(mb * 1_000_000), len(text))]  # a slice of the 20 MB text
    (seeds / "library.txt").write_text("Library\n\n" + body, encoding="utf-8")
    children = ChildrenPeak() if real else None  # spaCy helpers run only with the model
    t = time.perf_counter()
    if real:  # what `qa index` does: the real model (QA_EMBED_RUNTIME), spaCy annotation
        from qa.config import load_settings
        from qa.pipeline import Pipeline

        pipeline = Pipeline(load_settings(seeds_dir=seeds, index_dir=workdir / "index"))
        embedder: Embedder = pipeline.embedder
        index = pipeline.index
    else:
        settings = Settings(model=Hashing384.name, seeds_dir=seeds, index_dir=workdir / "index")
        embedder = Hashing384()
        index = build_index(settings, embedder)
    which = "with_model" if real else "without_model"
    out: dict[str, object] = {
        "mb": round((seeds / "library.txt").stat().st_size / 1e6, 2),
        f"build_s_{which}": round(time.perf_counter() - t, 1),
        f"peak_rss_mib_{which}": peak_mib(),  # run --sizes "" for a clean figure
        "counts": index.manifest["counts"], "vectors": index.manifest["vectors"],
        "runtime": getattr(embedder, "runtime_used", None),
        "document_precision": index.manifest.get("document_precision"),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    if children is not None:  # spaCy helper processes (QA_SPACY_PROCESSES) ran beside it
        out["helper_peak_rss_mib"], out["peak_rss_mib_with_helpers"] = children.stop()
        return out  # the cold load below uses the hashing embedder's settings
    probe = "import sys; from benchmarks.index_scale import cold_load; cold_load(sys.argv[1])"
    cold = subprocess.run([sys.executable, "-c", probe, str(workdir)], capture_output=True,
                          text=True, check=True)
    out.update(json.loads(cold.stdout.strip().splitlines()[-1]))
    return out


def cold_load(workdir: str) -> None:
    """In a fresh process: load the big index and answer one search (no model)."""
    started = time.perf_counter()
    base = Path(workdir)
    settings = Settings(model=Hashing384.name, seeds_dir=base / "seeds",
                        index_dir=base / "index")
    index = load_index(settings)
    loaded = time.perf_counter() - started
    question = "When did Beyonce start becoming popular?"
    search(index, Hashing384().embed([question])[0], Query.of(question), 5)
    print(json.dumps({
        "cold_load_s": round(loaded, 2),
        "cold_load_and_first_search_s": round(time.perf_counter() - started, 2),
        "cold_peak_rss_mib_without_model": peak_mib(),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--small-docs", type=int, default=1000)
    parser.add_argument("--big-mb", type=float, default=20)
    parser.add_argument("--real-model", action="store_true",
                        help="build the big text with the real model (time and peak RSS)")
    parser.add_argument("--embed-one", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "qa-big")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)  # as qa's loaded index does: one small search per question
    for n in (int(x) for x in args.sizes.split(",") if x):
        print(json.dumps({"search": bench_search(n)}), flush=True)
    if args.small_docs:
        print(json.dumps({"small_docs": bench_small_docs(args.small_docs, args.embed_one)}),
              flush=True)
    if args.big_mb:
        big = bench_big(args.big_mb, args.workdir, args.real_model)
        print(json.dumps({"big_text": big}), flush=True)


if __name__ == "__main__":
    main()
