"""Milvus Lite rows of the issue-12 benchmark: qa's `search()` through the Milvus backend.

`python -m benchmarks.milvus_scale [--sizes 10000,100000] [--queries 100]`

For each size: the synthetic corpus of `benchmarks.scale` (n two-sentence passages,
clustered unit vectors, Zipf words), copied into a Milvus Lite file (passages and
sentences, dense vectors, the BM25 function), then warm `search()` p50/p95 (embedding
excluded) through Milvus and through the embedded default (exact and HNSW) on the same
queries, the overlap of the top 10 passages Milvus's dense search returns with exact
search (recall@10), and the top-5 hits agreeing with the embedded exact search.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.scale import synthetic_corpus, synthetic_index
from qa import milvus_index
from qa.config import Settings
from qa.retrieval import Query, search


def _timed(index: object, queries: np.ndarray, texts: list[Query]) -> tuple[list[float], list]:
    for i in range(5):
        search(index, queries[i], texts[i], 5)  # type: ignore[arg-type]
    lat, tops = [], []
    for q, text in zip(queries, texts, strict=True):
        t = time.perf_counter()
        hits = search(index, q, text, 5)[0]  # type: ignore[arg-type]
        lat.append(time.perf_counter() - t)
        tops.append([h.chunk.index for h in hits])
    return lat, tops


def bench(n: int, n_queries: int, workdir: Path,
          copy_sentences: bool = True) -> dict[str, object]:
    rng = np.random.default_rng(n)
    vectors, queries, words, sentences, chunks = synthetic_corpus(rng, n, n_queries)
    texts = [Query.of(" ".join(s.rstrip(".").split()[:4])) for s in words.sentences(n_queries)]
    exact = synthetic_index(np.random.default_rng(1), vectors, None, chunks, sentences,
                            hnsw_above=n + 1)
    hnsw = synthetic_index(np.random.default_rng(1), vectors, None, chunks, sentences,
                           hnsw_above=1)
    remote = synthetic_index(np.random.default_rng(1), vectors, None, chunks, sentences,
                             hnsw_above=n + 1)
    remote._doc_meta[0]["text_sha256"] = f"synthetic-{n}"
    settings = Settings(index_dir=workdir / f"milvus-{n}", backend="milvus")
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    milvus_index.sync(remote, settings, copy_sentences)
    copy_s = time.perf_counter() - started
    milvus_index.attach(remote, settings)
    recall = float(np.mean([
        len(set(remote.search_chunks(q, 10)[1]) & set(exact.search_chunks(q, 10)[1])) / 10
        for q in queries]))
    out: dict[str, object] = {"n": n, "sentences_copied": copy_sentences,
                              "milvus_copy_s": round(copy_s, 1),
                              "milvus_dense_recall@10": recall}
    reference: list = []
    for name, index in (("exact", exact), ("hnsw", hnsw), ("milvus", remote)):
        lat, tops = _timed(index, queries, texts)
        out[f"{name}_p50_ms"] = round(float(np.percentile(lat, 50)) * 1000, 2)
        out[f"{name}_p95_ms"] = round(float(np.percentile(lat, 95)) * 1000, 2)
        if name == "exact":
            reference = tops
        else:
            out[f"{name}_same_top5"] = round(float(np.mean(
                [a == b for a, b in zip(tops, reference, strict=True)])), 3)
    db = settings.index_dir / "milvus.db"
    out["milvus_db_mib"] = round(sum(p.stat().st_size for p in db.rglob("*") if p.is_file())
                                 / 2**20 if db.is_dir() else db.stat().st_size / 2**20, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--passages-only", action="store_true",
                        help="copy passages only (Milvus Lite 3.2.2 failed copying 300k rows)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "qa-milvus-bench")
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)  # as qa's loaded index does
    for n in (int(x) for x in args.sizes.split(",") if x):
        print(json.dumps({"milvus_search": bench(n, args.queries, args.workdir,
                                                        not args.passages_only)}), flush=True)
    milvus_index.close_clients()


if __name__ == "__main__":
    main()
