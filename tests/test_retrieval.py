"""Retrieval with the real model on the real article: quality floors, shapes, LangChain."""

from __future__ import annotations

import pytest

from qa.errors import BadQuestion
from qa.evaluation import contains_gold
from qa.pipeline import Pipeline
from tests.conftest import load_questions

pytestmark = pytest.mark.slow


def _standalone_answerable() -> list[dict]:
    return [q for q in load_questions() if q["answers"] and not q.get("history")]


def test_question_set_is_big_enough() -> None:
    rows = _standalone_answerable()
    assert len(rows) >= 30
    assert sum(r["kind"] == "paraphrase" for r in rows) >= 10


def test_retrieval_quality_on_dev_questions(real_pipeline: Pipeline) -> None:
    rows = _standalone_answerable()
    sentence_top1 = passage_top3 = factual_top1 = factual = 0
    for row in rows:
        hits = real_pipeline.retrieve(row["question"], 5)
        sentence_ok = contains_gold(hits[0].sentence.text, row["answers"])
        sentence_top1 += sentence_ok
        passage_top3 += any(contains_gold(h.chunk.text, row["answers"]) for h in hits[:3])
        if row["kind"] == "factual":
            factual += 1
            factual_top1 += sentence_ok
    n = len(rows)
    print(f"sentence@1 {sentence_top1 / n:.3f}  passage@3 {passage_top3 / n:.3f}  "
          f"factual sentence@1 {factual_top1 / factual:.3f}  (n={n})")
    # Floors at the measured level (see the closing note of issue 2 for the goals).
    assert factual_top1 / factual >= 0.95
    assert sentence_top1 / n >= 0.80
    assert passage_top3 / n >= 0.93


def test_hits_are_exact_and_ranked(real_pipeline: Pipeline) -> None:
    hits = real_pipeline.retrieve("Who is the Pentagon spokesman?", 5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "John Kirby" in hits[0].sentence.text
    for hit in hits:
        source = real_pipeline.index.source(hit.chunk.doc_id)
        assert source[hit.chunk.start : hit.chunk.end] == hit.chunk.text
        assert source[hit.sentence.start : hit.sentence.end] == hit.sentence.text
        assert hit.chunk.start <= hit.sentence.start < hit.sentence.end <= hit.chunk.end


@pytest.mark.parametrize("bad", ["", "   \n\t", "x" * 100_000])
def test_bad_questions_are_refused(real_pipeline: Pipeline, bad: str) -> None:
    with pytest.raises(BadQuestion):
        real_pipeline.retrieve(bad)


def test_langchain_retriever_in_a_runnable_chain(real_pipeline: Pipeline) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from qa import QARetriever

    retriever = QARetriever(pipeline=real_pipeline, k=3)
    docs = retriever.invoke("How many American troops are in Iraq today?")
    assert len(docs) == 3
    meta = docs[0].metadata
    assert {"doc_id", "chunk_id", "start", "end", "score", "rank", "sentence"} <= set(meta)
    source = real_pipeline.index.source(meta["doc_id"])
    assert source[meta["start"] : meta["end"]] == docs[0].page_content
    assert "2,500" in meta["sentence"]["text"]

    seen_prompts: list[str] = []

    def format_docs(documents: list) -> str:
        return "\n\n".join(f"[{d.metadata['chunk_id']}] {d.page_content}" for d in documents)

    def record(prompt: object) -> object:
        seen_prompts.append(str(prompt))
        return prompt

    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    model = FakeListChatModel(responses=["There are around 2,500 American troops."])
    chain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(record)
        | model
        | StrOutputParser()
    )
    assert chain.invoke("How many American troops are in Iraq today?").startswith("There are")
    assert "around 2,500 American troops in Iraq today" in seen_prompts[0]
    assert meta["chunk_id"] in seen_prompts[0]


def test_fast_bert_encoder_matches_sentence_transformers() -> None:
    """qa.bert (used for fast starts) must give sentence-transformers' vectors exactly."""
    import numpy as np

    from qa.embedding import SentenceTransformerEmbedder
    from tests.conftest import ARTICLE

    texts = ARTICLE.read_text(encoding="utf-8").split("\n\n") + [
        "How many American troops are in Iraq today?", "x", "", "word " * 400]
    fast, reference = SentenceTransformerEmbedder(), SentenceTransformerEmbedder(fast=False)
    a, b = fast.embed(texts), reference.embed(texts)
    assert type(fast._backend).__name__ == "_BertBackend"
    assert type(reference._backend).__name__ == "_SentenceTransformersBackend"
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert set(fast.vocabulary()) == set(reference.vocabulary())


def test_search_limited_to_documents(real_pipeline: Pipeline) -> None:
    from qa.retrieval import Query, search

    index = real_pipeline.index
    doc_id = next(iter(index.documents))
    question = "How many American troops are in Iraq today?"
    vector = real_pipeline.embedder.embed([question])[0]
    query = Query.of(question)
    everywhere, _ = search(index, vector, query, 5)
    limited, _ = search(index, vector, query, 5, doc_ids=frozenset({doc_id}))
    assert [h.chunk.id for h in limited] == [h.chunk.id for h in everywhere]
    assert search(index, vector, query, 5, doc_ids=frozenset({"no-such-doc"}))[0] == []
    assert search(index, vector, query, 5, doc_ids=frozenset())[0] == []
