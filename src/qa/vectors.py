"""Dense side of the index: passage vectors and nearest-neighbour search over them.

In: unit vectors (one row per passage, row number = passage number). Out: the `k` rows of
highest inner product with a query vector, and any rows' vectors on request.

`VectorIndex` is the seam; `FaissVectors` the embedded default. Below `HNSW_ABOVE` rows an
exact scan is cheaper than any graph and exact by definition; above it a FAISS HNSW graph
answers in well under a millisecond where the scan grows linearly. Above `IVF_ABOVE` rows an
HNSW graph takes many minutes to build on two cores, so an IVF index (k-means lists,
trained in seconds) takes its place, with the number of lists it scans chosen at build time
to reach `IVF_RECALL` against exact search (measured recall@10 is in `docs/scaling.md`).
Its lists hold the vectors as 8-bit codes (a quarter of the bytes to scan, and of the
memory); the best `RERANK` x k rows it finds are re-scored exactly from the vectors, so the
scores it returns are exact and only which rows it looks at is approximate. (IVF-flat
indexes written before keep loading and searching as they were.)
The vectors themselves stay in a plain `.npy` file, memory-mapped, so exact rescoring and
incremental builds read them directly.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

HNSW_ABOVE = 20_000  # rows; below this an exact scan costs a couple of milliseconds
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96  # measured: recall@10 >= 0.95 on clustered vectors up to 1M rows
IVF_ABOVE = 200_000  # rows; an HNSW graph of 1M rows took 11 minutes here, IVF-flat 28 s
IVF_RECALL = 0.96  # recall@10 against exact search the build asks of its nprobe
RERANK = 2  # an 8-bit IVF index finds RERANK x k rows (at least RERANK_MIN); the best k of
RERANK_MIN = 50  # them by exact inner product are returned
QUERY_COSINE = 0.7  # how close a stand-in question is to its passage (real ones: 0.5-0.8)
PROBES = 200  # stand-in questions that choose nprobe
MATRIX = "chunk_vectors.npy"
GRAPH = "chunk_vectors.hnsw.faiss"  # the approximate index, HNSW or IVF (name kept for old builds)


class VectorIndex(Protocol):
    """Nearest neighbours by inner product over numbered unit vectors."""

    @property
    def kind(self) -> str: ...

    def __len__(self) -> int: ...

    def add(self, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def vectors(self, ids: np.ndarray) -> np.ndarray: ...

    def save(self, folder: Path) -> list[str]: ...


_NPY_HEADER = threading.Lock()


def load_array(path: Path, mmap: bool = True) -> np.ndarray:
    """A `.npy` array, memory-mapped, never unpickled.

    numpy parses the header with `ast.literal_eval`, which CPython 3.11 cannot run in two
    threads at once (SystemError "AST constructor recursion depth mismatch", met by a
    reader loading while a build thread writes); one lock around it costs nothing.
    """
    with _NPY_HEADER:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the `k` highest scores, best first, ties in position order.

    The same as `np.argsort(-scores, kind="stable")[:k]` without sorting everything.
    """
    n = len(scores)
    if k >= n:
        return np.argsort(-scores, kind="stable")
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(scores, n - k)[n - k]  # the k-th largest value
    above = np.flatnonzero(scores > kth)
    ties = np.flatnonzero(scores == kth)[: k - len(above)]
    chosen = np.concatenate([above, ties])
    return chosen[np.lexsort((chosen, -scores[chosen]))]


class FaissVectors:
    """Exact scan below `hnsw_above` rows, a FAISS HNSW graph above it, 8-bit IVF above
    `ivf_above`."""

    def __init__(self, matrix: np.ndarray, graph: Any = None,
                 hnsw_above: int = HNSW_ABOVE, build: bool = True,
                 ivf_above: int = IVF_ABOVE, probes: np.ndarray | None = None) -> None:
        self.matrix = np.asarray(matrix)  # a memory map stays one, minus np.memmap's overhead
        self.hnsw_above = hnsw_above
        self.ivf_above = ivf_above
        self.graph = graph
        if build and self.graph is None and len(matrix) >= hnsw_above:
            self.graph = _build_graph(np.asarray(matrix, dtype=np.float32), ivf_above, probes)

    @property
    def kind(self) -> str:
        return ann_kind(self.graph)

    def __len__(self) -> int:
        return len(self.matrix)

    def add(self, vectors: np.ndarray) -> None:
        self.matrix = np.concatenate([np.asarray(self.matrix), vectors]).astype(np.float32)
        if self.graph is not None:
            self.graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
        elif len(self.matrix) >= self.hnsw_above:
            self.graph = _build_graph(self.matrix, self.ivf_above)

    def remove(self, ids: np.ndarray) -> None:
        """Drop rows (later rows move up). A graph cannot forget nodes: it is rebuilt."""
        keep = np.ones(len(self.matrix), dtype=bool)
        keep[np.asarray(ids, dtype=np.int64)] = False
        self.matrix = np.ascontiguousarray(np.asarray(self.matrix)[keep])
        self.graph = (_build_graph(self.matrix, self.ivf_above)
                      if len(self.matrix) >= self.hnsw_above else None)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers of the `k` nearest rows, best first."""
        k = min(k, len(self.matrix))
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        query = np.ascontiguousarray(vector, dtype=np.float32)[None, :]
        if self.graph is not None:
            if isinstance(self.graph, faiss.IndexHNSW):
                self.graph.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
            if quantized(self.graph):
                scores, ids = _reranked(self.graph, np.asarray(self.matrix), query, k)
            else:
                scores, ids = self.graph.search(query, k)  # an IVF index keeps its nprobe
            keep = ids[0] >= 0
            return scores[0][keep], ids[0][keep].astype(np.int64)
        scores, ids = faiss.knn(query, np.asarray(self.matrix), k,
                                metric=faiss.METRIC_INNER_PRODUCT)  # SIMD scan, no copy
        return scores[0], ids[0].astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[np.asarray(ids, dtype=np.int64)], dtype=np.float32)

    def save(self, folder: Path) -> list[str]:
        np.save(folder / MATRIX, np.asarray(self.matrix, dtype=np.float32), allow_pickle=False)
        if self.graph is None:
            return [MATRIX]
        faiss.write_index(self.graph, str(folder / GRAPH))
        return [MATRIX, GRAPH]

    @classmethod
    def load(cls, folder: Path, hnsw_above: int = HNSW_ABOVE,
             ivf_above: int = IVF_ABOVE) -> FaissVectors:
        matrix = load_array(folder / MATRIX)
        graph = None
        if (folder / GRAPH).is_file():
            graph = faiss.read_index(str(folder / GRAPH))
            if graph.ntotal != len(matrix):
                raise ValueError("the approximate index and the vectors disagree")
        # loading never builds a graph
        return cls(matrix, graph, hnsw_above, build=False, ivf_above=ivf_above)


def ann_kind(graph: Any) -> str:
    """"flat" (no approximate index), "hnsw" or "ivf"."""
    if graph is None:
        return "flat"
    return "ivf" if isinstance(graph, faiss.IndexIVF) else "hnsw"


def quantized(graph: Any) -> bool:
    """Does the approximate index hold its vectors as codes (its scores are not exact)?"""
    return isinstance(graph, faiss.IndexIVFScalarQuantizer)


def _reranked(graph: Any, matrix: np.ndarray, queries: np.ndarray,
              k: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS-shaped (scores, ids) of the `k` best rows for each query: the graph's best
    `RERANK` x k (at least `RERANK_MIN`) re-scored by exact inner product with `matrix`,
    best first, ties in row order; -1 ids where fewer were found."""
    fetch = min(max(RERANK * k, RERANK_MIN), graph.ntotal)
    _, found = graph.search(queries, fetch)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    ids = np.full((len(queries), k), -1, dtype=np.int64)
    for q, row in enumerate(found):
        row = np.sort(row[row >= 0])  # in order: a memory map reads ahead
        exact = matrix[row] @ queries[q]
        best = np.argsort(-exact, kind="stable")[:k]
        scores[q, : len(best)], ids[q, : len(best)] = exact[best], row[best]
    return scores, ids


def _build_graph(matrix: np.ndarray, ivf_above: int = IVF_ABOVE,
                 probes: np.ndarray | None = None) -> Any:
    """An HNSW graph over `matrix` (8-bit IVF from `ivf_above` rows, its nprobe tuned on
    `probes`), built with every core (queries use one)."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        if len(matrix) >= ivf_above:
            return _build_ivf(matrix, probes)
        graph = faiss.IndexHNSWFlat(matrix.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        graph.add(matrix)
        return graph
    finally:
        faiss.omp_set_num_threads(threads)


def _build_ivf(matrix: np.ndarray, probes: np.ndarray | None = None) -> Any:
    """IVF with √n lists, k-means on a sample, its vectors as 8-bit codes (each dimension's
    range learnt from the same sample) re-scored exactly on search (`_reranked`). nprobe is
    the smallest (on a ladder of 1.5x steps) whose recall@10 against exact search, re-scoring
    included, reaches IVF_RECALL for stand-in
    questions: `probes` (a sample of the index's sentence vectors: real text, each near its
    own passage) or, without them, sampled rows moved off themselves by random noise to
    cosine QUERY_COSINE (harder than real questions: the noise leaves the texts' subspace).
    FAISS saves nprobe with the index, so a loaded index searches the same way."""
    n, dim = matrix.shape
    nlist = max(1, int(np.sqrt(n)))
    rng = np.random.default_rng(0)  # a build is reproducible from its vectors
    sample = matrix[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))]
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist,
                                        faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    ivf.train(sample)
    ivf.add(matrix)
    if probes is not None and len(probes):
        picked = np.sort(rng.choice(len(probes), min(len(probes), PROBES), replace=False))
        queries = np.ascontiguousarray(probes[picked], dtype=np.float32)
    else:
        noise = rng.standard_normal((min(n, PROBES), dim)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        rows = matrix[rng.choice(n, len(noise), replace=False)]
        queries = QUERY_COSINE * rows + np.sqrt(1 - QUERY_COSINE**2) * noise
        queries = np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True),
                                       dtype=np.float32)
    _, exact = faiss.knn(queries, matrix, 10, metric=faiss.METRIC_INNER_PRODUCT)
    for nprobe in _ladder(nlist):
        ivf.nprobe = nprobe
        _, found = _reranked(ivf, matrix, queries, 10)
        hits = sum(len(set(e) & set(f)) for e, f in zip(exact, found, strict=True))
        if hits / exact.size >= IVF_RECALL:
            break
    return ivf


def _ladder(top: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, ...: steps of about 1.5x, up to `top`."""
    steps, power = {top}, 1
    while power < top:
        steps |= {s for s in (power, power * 3 // 2) if s < top}
        power *= 2
    return sorted(steps)


def vector_index(matrix: np.ndarray, hnsw_above: int = HNSW_ABOVE,
                 ivf_above: int = IVF_ABOVE) -> VectorIndex:
    """The embedded default for these vectors (exact, HNSW or IVF, by size)."""
    return FaissVectors(matrix, hnsw_above=hnsw_above, ivf_above=ivf_above)
