"""Section 4: how index build and query latency grow with the corpus, on synthetic data.

Vectors: not embeddings of real text (embedding 100k passages would take longer than the
whole benchmark may), but unit vectors drawn around random cluster centres, so that, like
sentence embeddings, neighbours are far closer than strangers. Uniform random unit vectors
have no such structure and are the adversarial case for any graph index; one size of those
is measured too, to show the difference. Texts: words drawn from a Zipf-distributed
vocabulary of pseudo-words, so BM25 postings have a realistic long tail.

Measured at each size: exact search (faiss IndexFlatIP), approximate search (faiss
IndexHNSWFlat, M=32, inner product, efSearch swept and the smallest reaching recall@10
≥ 0.95 kept), qa's BM25 build and scoring, and qa's own `search()` (dense + BM25 over
passages and sentences + fusion, the question's embedding excluded) on a synthetic `Index`.
"""

from __future__ import annotations

import contextlib
import cProfile
import ctypes
import gc
import json
import os
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
import psutil
from scipy import sparse

from benchmarks.common import Goal, Section, at_most, mib, ms, p50, p95, secs
from qa.lexical import BM25, SparseBM25, bm25_weights, term_counts
from qa.retrieval import Query, search
from qa.store import Index, Manifest
from qa.vectors import HNSW_ABOVE, FaissVectors

DIM = 384
HNSW_M = 32
EF_SEARCH = (16, 32, 64, 128, 256)
RECALL_TARGET = 0.95
VOCAB = 20_000
WORDS_PER_SENTENCE = 7
BUDGET_SECONDS = 120.0  # skip a step at the next size when it would take longer than this


@dataclass
class SizeResult:
    """Everything measured at one corpus size (seconds; None where skipped)."""

    n: int
    flat_build: float = 0.0
    flat_p50: float = 0.0
    flat_p95: float = 0.0
    flat1_p50: float = 0.0  # with one OpenMP thread
    hnsw_build: float = 0.0
    hnsw_ef: int = 0
    hnsw_recall: float = 0.0
    hnsw_p50: float = 0.0
    hnsw_p95: float = 0.0
    sweep: list[tuple[int, float, float]] = field(default_factory=list)  # ef, recall, p50
    bm25_build: float | None = None
    bm25_p50: float | None = None
    bm25_json: float | None = None  # to_json → JSON text → from_json, what a save + load costs
    qa_search_p50: float | None = None
    qa_search_p95: float | None = None
    index_rss: int | None = None  # RSS growth while building the synthetic qa Index
    qa_search_kind: str = ""  # the dense search qa chose at this size (flat or hnsw)
    qa_exact_p50: float | None = None  # qa search() forced to exact dense search
    profile: list[tuple[str, float]] = field(default_factory=list)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, n: int, centres: np.ndarray, noise: float = 0.6) -> (
    np.ndarray
):
    """Unit vectors near random centres: cosine ≈ 0.7 within a cluster, ≈ 0 across."""
    picks = rng.integers(0, len(centres), n)
    return unit(centres[picks] + noise * unit(rng.standard_normal((n, DIM), dtype=np.float32)))


class Words:
    """Pseudo-words with Zipf(1) frequencies, for texts and queries."""

    def __init__(self, rng: np.random.Generator) -> None:
        letters = np.array(list("bcdfghjklmnprstvwz"))
        vowels = np.array(list("aeiou"))
        self.rng = rng
        self.vocab = [
            "".join(c + v for c, v in zip(rng.choice(letters, k), rng.choice(vowels, k),
                                          strict=True))
            for k in rng.integers(2, 5, VOCAB)
        ]
        weights = 1.0 / np.arange(1, VOCAB + 1)
        self.p = weights / weights.sum()

    def sentences(self, n: int, words: int = WORDS_PER_SENTENCE) -> list[str]:
        ids = self.rng.choice(VOCAB, size=(n, words), p=self.p)
        return [" ".join(self.vocab[i] for i in row) + "." for row in ids]


def synthetic_corpus(rng: np.random.Generator, n: int, n_queries: int) -> tuple[
        np.ndarray, np.ndarray, Words, list[str], list[str]]:
    """n two-sentence passages and n_queries query vectors near the same cluster centres:
    (passage vectors, query vectors, the word source, the 2n sentences, the n passages)."""
    centres = unit(rng.standard_normal((max(10, n // 100), DIM), dtype=np.float32))
    vectors, queries = clustered(rng, n, centres), clustered(rng, n_queries, centres)
    words = Words(rng)
    sentences = words.sentences(2 * n)
    chunks = [f"{a} {b}" for a, b in zip(sentences[::2], sentences[1::2], strict=True)]
    return vectors, queries, words, sentences, chunks


def _latencies(fn: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def timed_search(index: Index, queries: np.ndarray, texts: list[Query], n: int) -> list[float]:
    """Seconds of qa's `search()` (k=5) for each of the first `n` (vector, words) pairs,
    after five warm-up calls."""
    for i in range(5):
        search(index, queries[i], texts[i], 5)
    return _latencies(lambda i: search(index, queries[i], texts[i], 5), n)


def _recall(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth,
                                                                             strict=True)]))


def measure_ann(vectors: np.ndarray, queries: np.ndarray, result: SizeResult) -> None:
    """Flat and HNSW: build time, one-query-at-a-time latency, HNSW recall@10 vs flat."""
    started = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    result.flat_build = time.perf_counter() - started
    _, truth = flat.search(queries, 10)
    # qa's index load sets FAISS to 1 thread; compare it with all cores explicitly.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        lat = _latencies(lambda i: flat.search(queries[i:i + 1], 10), len(queries))
        result.flat_p50, result.flat_p95 = p50(lat), p95(lat)
        faiss.omp_set_num_threads(1)
        lat = _latencies(lambda i: flat.search(queries[i:i + 1], 10), len(queries))
    finally:
        faiss.omp_set_num_threads(threads)
    result.flat1_p50 = p50(lat)

    started = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(vectors)
    result.hnsw_build = time.perf_counter() - started
    chosen = None
    for ef in EF_SEARCH:
        hnsw.hnsw.efSearch = ef
        found = np.empty_like(truth)

        def one(i: int) -> None:
            found[i] = hnsw.search(queries[i:i + 1], 10)[1][0]  # noqa: B023 - used at once

        lat = _latencies(one, len(queries))
        recall = _recall(found, truth)
        result.sweep.append((ef, recall, p50(lat)))
        if chosen is None and recall >= RECALL_TARGET:
            chosen = (ef, recall, p50(lat), p95(lat))
    if chosen is None:  # never reached the target: report the most accurate setting
        ef, recall, lat50 = result.sweep[-1]
        chosen = (ef, recall, lat50, lat50)
    result.hnsw_ef, result.hnsw_recall, result.hnsw_p50, result.hnsw_p95 = chosen


def synthetic_index(
    rng: np.random.Generator, chunk_vectors: np.ndarray, chunk_bm25: BM25 | None,
    chunk_texts: list[str], sentence_texts: list[str], hnsw_above: int = HNSW_ABOVE,
) -> Index:
    """A qa `Index` of n two-sentence passages, from the same arrays a build writes."""
    n = len(chunk_texts)
    doc_text = " ".join(chunk_texts)
    raw = doc_text.encode("utf-8")
    first_len = np.array([len(t) for t in sentence_texts[::2]], dtype=np.int64)
    chunk_len = np.array([len(t) for t in chunk_texts], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(chunk_len + 1)[:-1]])
    chunk_table = np.stack([np.zeros(n, np.int64), starts, starts + chunk_len,
                            np.arange(n)], axis=1)
    sentence_table = np.zeros((2 * n, 3), dtype=np.int64)
    sentence_table[:, 0] = np.repeat(np.arange(n), 2)
    sentence_table[0::2, 1], sentence_table[0::2, 2] = starts, starts + first_len
    sentence_table[1::2, 1], sentence_table[1::2, 2] = starts + first_len + 1, starts + chunk_len
    sentence_vectors = unit(np.repeat(chunk_vectors, 2, axis=0)
                            + 0.5 * unit(rng.standard_normal((2 * n, DIM), dtype=np.float32)))
    vocabulary: dict[str, int] = {}
    counts = term_counts(sentence_texts, vocabulary)
    membership = sparse.csr_matrix((np.ones(2 * n, np.int32), (sentence_table[:, 0],
                                                                np.arange(2 * n))),
                                   shape=(n, 2 * n))
    chunk_counts = (membership @ counts).tocsr()
    manifest = Manifest(format=3, model="synthetic", dimension=DIM, chunking={},
                        documents=[], counts={"documents": 1, "chunks": n,
                                              "sentences": 2 * n},
                        data="build-synthetic", files={})
    meta = [{"id": "synthetic", "title": "synthetic", "path": "", "sha256": "", "pages": [],
             "byte_start": 0, "byte_end": len(raw)}]
    return Index(manifest, Path("."), meta, np.frombuffer(raw, dtype=np.uint8), chunk_table,
                 sentence_table, FaissVectors(chunk_vectors, hnsw_above=hnsw_above),
                 sentence_vectors, SparseBM25.of(bm25_weights(chunk_counts), vocabulary),
                 SparseBM25.of(bm25_weights(counts), vocabulary), [],
                 np.zeros((0, DIM), dtype=np.float32))


def _settled_rss() -> int:
    """This process's RSS after collecting garbage and handing freed heap back to the OS,
    so that a difference of two readings is what was allocated in between."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return int(psutil.Process().memory_info().rss)


def _profile(fn: Callable[[], object]) -> list[tuple[str, float]]:
    """Share of total time per function (tottime), top entries, for the slow-spot report."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(row[2] for row in stats.stats.values())
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])
    out = []
    for (path, line, name), row in rows[:6]:
        where = f"{Path(path).name}:{line}({name})" if line else name
        out.append((where, row[2] / total if total else 0.0))
    return out


def measure_size(n: int, n_queries: int, previous: SizeResult | None, seed: int = 0) -> (
    SizeResult
):
    """All measurements at corpus size n."""
    rng = np.random.default_rng(seed + n)
    result = SizeResult(n)
    centres = unit(rng.standard_normal((max(10, n // 100), DIM), dtype=np.float32))
    vectors = clustered(rng, n, centres)
    queries = clustered(rng, n_queries, centres)
    measure_ann(vectors, queries, result)

    growth = n / previous.n if previous else 1.0
    if previous and previous.bm25_build is None:
        return result
    if previous and previous.bm25_build and previous.bm25_build * growth * 3 > BUDGET_SECONDS:
        return result  # the passage and sentence BM25 builds would blow the time budget
    rss_before = _settled_rss()
    words = Words(rng)
    sentence_texts = words.sentences(2 * n)
    chunk_texts = [f"{a} {b}" for a, b in zip(sentence_texts[::2], sentence_texts[1::2],
                                              strict=True)]
    started = time.perf_counter()
    bm25 = BM25.build(chunk_texts)
    result.bm25_build = time.perf_counter() - started
    started = time.perf_counter()
    BM25.from_json(json.loads(json.dumps(bm25.to_json())))
    result.bm25_json = time.perf_counter() - started
    query_texts = [" ".join(s.rstrip(".").split()[:4]) for s in words.sentences(n_queries)]
    queries_q = [Query.of(text) for text in query_texts]
    lat = _latencies(lambda i: bm25.scores(queries_q[i].terms, queries_q[i].terms),
                     min(n_queries, 50))
    result.bm25_p50 = p50(lat)

    index = synthetic_index(rng, vectors, bm25, chunk_texts, sentence_texts)
    result.index_rss = _settled_rss() - rss_before
    count = min(n_queries, 30)
    lat = _latencies(lambda i: search(index, queries[i], queries_q[i], 5), count)
    result.qa_search_p50, result.qa_search_p95 = p50(lat), p95(lat)
    result.qa_search_kind = index.vectors.kind
    if index.vectors.kind != "flat":
        exact = synthetic_index(rng, vectors, None, chunk_texts, sentence_texts, n + 1)
        result.qa_exact_p50 = p50(_latencies(
            lambda i: search(exact, queries[i], queries_q[i], 5), count))
    result.profile = _profile(
        lambda: [search(index, queries[i], queries_q[i], 5) for i in range(min(count, 10))])
    return result


def run(quick: bool = False, floor: float | None = None, plot_dir: Path | None = None) -> (
    Section
):
    """Measure every size, add the uniform-random worst case, plot, judge the 100k goal."""
    section = Section("4. Scale (synthetic corpora)")
    sizes = (1_000, 5_000) if quick else (1_000, 10_000, 100_000)
    n_queries = 50 if quick else 200
    results: list[SizeResult] = []
    for n in sizes:
        results.append(measure_size(n, n_queries, results[-1] if results else None))

    for r in results:
        label = f"{r.n:,} chunks"
        section.add(f"{label}: flat build / p50 / p95",
                    f"{secs(r.flat_build)} / {ms(r.flat_p50)} / {ms(r.flat_p95)}",
                    f"exact, {os.cpu_count()} OpenMP threads; with 1 thread (qa's setting): "
                    f"p50 {ms(r.flat1_p50)}")
        section.add(f"{label}: HNSW build / p50 / p95",
                    f"{secs(r.hnsw_build)} / {ms(r.hnsw_p50)} / {ms(r.hnsw_p95)}",
                    f"efSearch {r.hnsw_ef}, recall@10 {r.hnsw_recall:.3f}")
        if r.bm25_build is not None and r.bm25_p50 is not None:
            section.add(f"{label}: qa BM25 build / scores p50",
                        f"{secs(r.bm25_build)} / {ms(r.bm25_p50)}",
                        f"{r.n:,} texts of {2 * WORDS_PER_SENTENCE} words")
            section.add(f"{label}: qa BM25 JSON save + load", secs(r.bm25_json or 0.0),
                        "to_json → text → from_json; every process start parses this for "
                        "passages and (twice as many) sentences")
        else:
            section.add(f"{label}: qa BM25", "skipped", "projected over the time budget")
        if r.qa_search_p50 is not None and r.qa_search_p95 is not None:
            section.add(f"{label}: qa search() p50 / p95",
                        f"{ms(r.qa_search_p50)} / {ms(r.qa_search_p95)}",
                        f"{r.qa_search_kind} dense + sparse BM25 (passages, candidate "
                        "sentences) + fusion; embedding excluded"
                        + (f"; exact dense instead: p50 {ms(r.qa_exact_p50)}"
                           if r.qa_exact_p50 is not None else ""))
        if r.index_rss is not None:
            per = (r.index_rss + r.n * DIM * 4) / r.n
            section.add(f"{label}: qa Index in memory", f"≈ {per / 1024:.1f} KiB per passage",
                        f"RSS growth {mib(r.index_rss)} building it (2 sentences per passage: "
                        "objects, BM25 postings, sentence vectors, FAISS copy) + the passage "
                        "vectors")

    worst_n = 5_000 if quick else 10_000
    worst = _uniform_worst_case(worst_n, 50 if quick else 100)
    section.add(f"{worst_n:,} uniform random vectors: HNSW recall@10",
                ", ".join(f"ef {ef}: {rec:.2f}" for ef, rec, _ in worst),
                "no cluster structure: the adversarial case, not what embeddings look like")

    section.markdown.append(_sweep_table(results))
    profiled = [r for r in results if r.profile]
    if profiled:
        last = profiled[-1]
        lines = [f"Profile of qa `search()` at {last.n:,} passages (share of time, tottime):",
                 "", "| function | share |", "|---|---|"]
        lines += [f"| `{name}` | {share:.0%} |" for name, share in last.profile]
        section.markdown.append("\n".join(lines))
    if plot_dir is not None:
        section.markdown.append(_plot(results, floor, plot_dir))

    biggest = results[-1]
    section.values.update({f"flat_p50_{r.n}": r.flat_p50 for r in results})
    section.values.update({f"flat1_p50_{r.n}": r.flat1_p50 for r in results})
    section.values.update({f"hnsw_p50_{r.n}": r.hnsw_p50 for r in results})
    section.values.update({f"hnsw_build_{r.n}": r.hnsw_build for r in results})
    section.values.update({f"index_rss_{r.n}": r.index_rss for r in results
                           if r.index_rss is not None})
    section.values.update({f"qa_search_p50_{r.n}": r.qa_search_p50 for r in results
                           if r.qa_search_p50 is not None})
    if biggest.n >= 100_000:
        met, margin = at_most(biggest.hnsw_p50 * 1000, 20.0, "ms")
        ok = met and biggest.hnsw_recall >= RECALL_TARGET
        if met and not ok:
            margin = f"latency met but recall@10 {biggest.hnsw_recall:.3f} < {RECALL_TARGET}"
        section.goals.append(Goal(
            "100k-chunk query p50, approximate index", "≤ 20 ms at recall@10 ≥ 0.95",
            f"{ms(biggest.hnsw_p50)} at recall@10 {biggest.hnsw_recall:.3f} "
            f"(efSearch {biggest.hnsw_ef})", ok, margin,
        ))
    else:
        section.goals.append(Goal("100k-chunk query p50, approximate index",
                                  "≤ 20 ms at recall@10 ≥ 0.95", "not run (--quick)", None,
                                  "n/a"))
    return section


def _uniform_worst_case(n: int, n_queries: int) -> list[tuple[int, float, float]]:
    rng = np.random.default_rng(1)
    result = SizeResult(n)
    measure_ann(unit(rng.standard_normal((n, DIM), dtype=np.float32)),
                unit(rng.standard_normal((n_queries, DIM), dtype=np.float32)), result)
    return result.sweep


def _sweep_table(results: list[SizeResult]) -> str:
    lines = ["HNSW (M=32, efConstruction 40) efSearch sweep, clustered vectors, one query at a "
             "time, recall@10 against exact search:", "",
             "| chunks | efSearch | recall@10 | p50 |", "|---|---|---|---|"]
    for r in results:
        lines += [f"| {r.n:,} | {ef} | {rec:.3f} | {ms(lat)} |" for ef, rec, lat in r.sweep]
    return "\n".join(lines)


def _plot(results: list[SizeResult], floor: float | None, plot_dir: Path) -> str:
    """Two PNGs: query latency and build time against corpus size (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r.n for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(sizes, [r.flat_p50 * 1000 for r in results], "o-", label="exact (IndexFlatIP)")
    ax.plot(sizes, [r.flat1_p50 * 1000 for r in results], "o--", color="C0", alpha=0.6,
            label="exact, 1 OpenMP thread")
    ax.plot(sizes, [r.hnsw_p50 * 1000 for r in results], "s-",
            label="HNSW M=32 (recall@10 ≥ 0.95)")
    with_bm25 = [r for r in results if r.bm25_p50 is not None]
    if with_bm25:
        ax.plot([r.n for r in with_bm25], [(r.bm25_p50 or 0) * 1000 for r in with_bm25], "^-",
                label="qa BM25.scores (passages)")
    with_qa = [r for r in results if r.qa_search_p50 is not None]
    if with_qa:
        ax.plot([r.n for r in with_qa], [(r.qa_search_p50 or 0) * 1000 for r in with_qa], "d-",
                label="qa search(), embedding excluded")
    if floor:
        ax.axhline(floor * 1000, color="grey", linestyle="--",
                   label=f"embedding the question ({floor * 1000:.0f} ms)")
    ax.axhline(20, color="red", linestyle=":", label="goal: 20 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size (chunks)")
    ax.set_ylabel("query latency p50 (ms, one query at a time)")
    ax.set_title(f"Query latency against corpus size ({os.cpu_count()} CPU cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    latency_png = plot_dir / "scale_latency.png"
    fig.savefig(latency_png, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(sizes, [r.flat_build for r in results], "o-", label="exact (IndexFlatIP) add")
    ax.plot(sizes, [r.hnsw_build for r in results], "s-", label="HNSW M=32 add")
    if with_bm25:
        ax.plot([r.n for r in with_bm25], [r.bm25_build or 0 for r in with_bm25], "^-",
                label="qa BM25.build (passages)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size (chunks)")
    ax.set_ylabel("build time (s)")
    ax.set_title("Index build time against corpus size (vectors given; no embedding)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    build_png = plot_dir / "scale_build.png"
    fig.savefig(build_png, dpi=100)
    plt.close(fig)
    return (f"![query latency against corpus size]({latency_png.name})\n\n"
            f"![build time against corpus size]({build_png.name})")
