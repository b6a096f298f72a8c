"""Warm question latency at 1M passages (issue 12, figure "warm ask at 1M ≤ 2× embedding").

`python -m benchmarks.million [--n 1000000] [--dense qa | --dense ivf --nlist 1024 |
--dense hnsw --m 16 --ef-construction 40]`

A synthetic qa `Index` of n two-sentence passages (clustered unit vectors, Zipf words, as in
`benchmarks.scale`). Its dense side: by default qa's own `FaissVectors`, which picks IVF-flat
above `IVF_ABOVE` rows with its nprobe chosen at build time; or an IVF-flat index (k-means
on a sample, nprobe chosen as the smallest reaching recall@10 0.95 on these queries) behind
qa's `VectorIndex` interface, or a FAISS HNSW graph built cheaper than qa's default (M,
efConstruction given) searched by qa's own `FaissVectors.search` (efSearch 96). Measured,
one question at a time after a warm-up:

* recall@10 of the dense index against exact search, on clustered query vectors;
* `search()` p50/p95 (dense + BM25 + sentences + fusion; the embedding excluded), with
  four pseudo-words of another vocabulary (few occur in the corpus) and, as
  `search_corpus_words`, with four words of a sampled sentence of the corpus (common words
  included: long BM25 postings);
* the real model embedding a question alone (the runtime `QA_EMBED_RUNTIME` picks), and
  `retrieve()` (embedding + search), p50/p95, interleaved so load from other processes hits
  both alike. Answer composition is not included (it is ≈ 1 ms on the article; synthetic
  pseudo-words give it nothing meaningful to parse).

Sentence vectors (2n × 384 float32) live in a memory-mapped scratch file so the process holds
about the passage vectors and the graph.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from scipy import sparse

from benchmarks.scale import DIM, Words, clustered, timed_search, unit
from qa.lexical import SparseBM25, bm25_weights, term_counts
from qa.retrieval import Query, retrieve
from qa.store import Index, Manifest
from qa.vectors import FaissVectors

QUESTIONS = [
    "How many American troops are in Iraq today?", "When will the mission end?",
    "Who announced the transition?", "What did the minister say about the agreement?",
    "Where are the advisers based?", "Why is the coalition changing its role?",
    "What is the capital of the region?", "Which year did the war begin?",
]


def _peak_mib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


class IvfVectors(FaissVectors):
    """qa's `FaissVectors` with an IVF-flat index for the candidates (nprobe lists scanned):
    the same `VectorIndex` interface, so `search()` runs unchanged on top of it."""

    def __init__(self, matrix: np.ndarray, ivf: Any, nprobe: int) -> None:
        super().__init__(matrix, graph=None, build=False)
        self.ivf = ivf
        self.nprobe = nprobe

    @property
    def kind(self) -> str:
        return "ivf"

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.ivf.nprobe = self.nprobe
        query = np.ascontiguousarray(vector, dtype=np.float32)[None, :]
        scores, ids = self.ivf.search(query, min(k, len(self.matrix)))
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep].astype(np.int64)


def _dense(vectors: np.ndarray, args: argparse.Namespace, rng: np.random.Generator,
           scratch: Path) -> FaissVectors:
    if args.dense == "qa":  # what a qa build picks at this size (IVF-flat above IVF_ABOVE)
        dense = FaissVectors(vectors, probes=np.load(scratch / "sentences.npy", mmap_mode="r"))
        faiss.omp_set_num_threads(1)
        return dense
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        if args.dense == "hnsw":
            graph = faiss.IndexHNSWFlat(DIM, args.m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = args.ef_construction
            graph.add(vectors)
            return FaissVectors(vectors, graph=graph, build=False)
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, args.nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), 40 * args.nlist),
                                    replace=False)]
        ivf.train(sample)
        ivf.add(vectors)
        return IvfVectors(vectors, ivf, nprobe=1)
    finally:
        faiss.omp_set_num_threads(1)  # as a loaded qa index: one small search per question


def build(n: int, args: argparse.Namespace, scratch: Path,
          rng: np.random.Generator) -> tuple[Index, np.ndarray, dict[str, float]]:
    timings: dict[str, float] = {}
    centres = unit(rng.standard_normal((max(10, n // 100), DIM), dtype=np.float32))
    started = time.perf_counter()
    vectors = np.concatenate([clustered(rng, min(100_000, n - i), centres)
                              for i in range(0, n, 100_000)])
    sentence_vectors = np.lib.format.open_memmap(scratch / "sentences.npy", mode="w+",
                                                 dtype=np.float32, shape=(2 * n, DIM))
    for i in range(0, n, 100_000):
        part = vectors[i:i + 100_000]
        noise = unit(rng.standard_normal((2 * len(part), DIM), dtype=np.float32))
        sentence_vectors[2 * i:2 * i + 2 * len(part)] = unit(np.repeat(part, 2, axis=0)
                                                             + 0.5 * noise)
    sentence_vectors.flush()
    timings["vectors_s"] = time.perf_counter() - started

    started = time.perf_counter()
    dense = _dense(vectors, args, rng, scratch)
    timings[f"{args.dense}_build_s"] = time.perf_counter() - started

    started = time.perf_counter()
    words = Words(rng)
    sentences = words.sentences(2 * n)
    chunk_texts = [f"{a} {b}" for a, b in zip(sentences[::2], sentences[1::2], strict=True)]
    raw = " ".join(chunk_texts).encode("utf-8")
    first_len = np.array([len(t) for t in sentences[::2]], dtype=np.int64)
    chunk_len = np.array([len(t) for t in chunk_texts], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(chunk_len + 1)[:-1]])
    chunk_table = np.stack([np.zeros(n, np.int64), starts, starts + chunk_len,
                            np.arange(n)], axis=1)
    sentence_table = np.zeros((2 * n, 3), dtype=np.int64)
    sentence_table[:, 0] = np.repeat(np.arange(n), 2)
    sentence_table[0::2, 1], sentence_table[0::2, 2] = starts, starts + first_len
    sentence_table[1::2, 1], sentence_table[1::2, 2] = starts + first_len + 1, starts + chunk_len
    vocabulary: dict[str, int] = {}
    counts = term_counts(sentences, vocabulary)
    del sentences, chunk_texts
    membership = sparse.csr_matrix((np.ones(2 * n, np.int32), (sentence_table[:, 0],
                                                                np.arange(2 * n))),
                                   shape=(n, 2 * n))
    chunk_counts = (membership @ counts).tocsr()
    manifest = Manifest(format=3, model="synthetic", dimension=DIM, chunking={},
                        documents=[], counts={"documents": 1, "chunks": n, "sentences": 2 * n},
                        data="build-synthetic", files={})
    meta = [{"id": "synthetic", "title": "synthetic", "path": "", "sha256": "", "pages": [],
             "byte_start": 0, "byte_end": len(raw)}]
    index = Index(manifest, Path("."), meta, np.frombuffer(raw, dtype=np.uint8), chunk_table,
                  sentence_table, dense,
                  sentence_vectors, SparseBM25.of(bm25_weights(chunk_counts), vocabulary),
                  SparseBM25.of(bm25_weights(counts), vocabulary), [],
                  np.zeros((0, DIM), dtype=np.float32))
    timings["lexical_s"] = time.perf_counter() - started
    queries = clustered(rng, 200, centres)
    return index, queries, timings


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(values, 50)) * 1000, 2),
            "p95_ms": round(float(np.percentile(values, 95)) * 1000, 2)}


def _timed_search(index: Index, queries: np.ndarray, texts: list[Query],
                  questions: int) -> dict[str, float]:
    """`search()` p50/p95 over the first `questions` (vector, words) pairs, after five
    warm-up calls."""
    return _percentiles(timed_search(index, queries, texts, questions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dense", choices=("qa", "ivf", "hnsw"), default="qa")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--questions", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    out: dict[str, object] = {"n": args.n, "dense": args.dense}
    if args.dense != "qa":
        out.update({"M": args.m, "efConstruction": args.ef_construction}
                   if args.dense == "hnsw" else {"nlist": args.nlist})
    with tempfile.TemporaryDirectory() as tmp:
        index, queries, timings = build(args.n, args, Path(tmp), rng)
        out["build"] = {k: round(v, 1) for k, v in timings.items()}
        out["loadavg_after_build"] = [round(x, 2) for x in os.getloadavg()]
        vectors = index.vectors
        assert isinstance(vectors, FaissVectors)
        truth = faiss.knn(queries[:100], np.asarray(vectors.matrix), 10,
                          metric=faiss.METRIC_INNER_PRODUCT)[1]

        def recall() -> float:
            found = [vectors.search(q, 10)[1] for q in queries[:100]]
            return float(np.mean([len(set(f) & set(t)) / 10
                                  for f, t in zip(found, truth, strict=True)]))

        if isinstance(vectors, IvfVectors):  # the smallest nprobe reaching recall 0.95
            sweep = {}
            for nprobe in (4, 8, 16, 32, 64, 128):
                vectors.nprobe = nprobe
                sweep[nprobe] = recall()
                if sweep[nprobe] >= 0.95:
                    break
            out["recall@10_by_nprobe"] = sweep
            out["nprobe"] = vectors.nprobe
        elif vectors.kind == "ivf":
            out.update(kind="ivf", nlist=vectors.graph.nlist, nprobe=vectors.graph.nprobe)
        else:
            out["kind"] = vectors.kind
        out["recall@10"] = recall()
        words = Words(np.random.default_rng(1))
        texts = [Query.of(" ".join(s.rstrip(".").split()[:4]))
                 for s in words.sentences(len(queries))]
        out["search"] = _timed_search(index, queries, texts, args.questions)
        # the pseudo-words above come from another vocabulary and rarely occur in the
        # corpus; questions of its own words (four of a sampled sentence, Zipf-common ones
        # included) make BM25 sum long postings
        pick = np.random.default_rng(1).integers(0, len(index.sentences), len(queries))
        own = [Query.of(" ".join(index.sentences[int(j)].text.rstrip(".").split()[:4]))
               for j in pick]
        out["search_corpus_words"] = _timed_search(index, queries, own, args.questions)

        from qa.config import load_settings
        from qa.embedding import make_embedder

        embedder = make_embedder(load_settings())
        embedder.embed(["warm up"])
        out["runtime"] = embedder.runtime_used
        embed_lat, retrieve_lat = [], []
        for i in range(args.questions):
            question = QUESTIONS[i % len(QUESTIONS)] + f" ({i})"
            started = time.perf_counter()
            embedder.embed([question])
            embed_lat.append(time.perf_counter() - started)
            started = time.perf_counter()
            retrieve(index, embedder, Query.of(question), 5)
            retrieve_lat.append(time.perf_counter() - started)
        out["embed_question"] = _percentiles(embed_lat)
        out["retrieve"] = _percentiles(retrieve_lat)
        out["retrieve_over_embed_p50"] = round(
            float(np.percentile(retrieve_lat, 50) / np.percentile(embed_lat, 50)), 2)
        out["peak_rss_mib"] = _peak_mib()
        out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
