"""LangChain adapter: qa's hybrid retrieval as a `BaseRetriever`.

In: a question (through `invoke`), and per call, as LangChain's own vector-store retriever
takes them, `k` and `doc_ids` (else the retriever's own). Out: LangChain `Document`s, best
first, whose `page_content` is the passage and whose metadata carries doc id, chunk id, exact
offsets, score, rank and the best sentence (and a PDF's page), so a chain can cite exactly
what it used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, field_validator

from qa.config import MAX_K
from qa.pipeline import Pipeline, default_pipeline
from qa.types import Document, Hit


class QARetriever(BaseRetriever):
    """`QARetriever(pipeline=..., k=5).invoke("question")` → list of LangChain Documents;
    `invoke("question", k=2, doc_ids=["handbook"])` for one call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any = None  # a qa Pipeline; the process-wide default when None
    k: int = Field(default=5, ge=1, le=MAX_K, strict=True)  # checked when made, not per query
    doc_ids: list[str] | None = None  # only these documents; None: all of them

    @field_validator("pipeline")
    @classmethod
    def _a_pipeline(cls, value: Any) -> Any:
        """Checked when made too: anything else failed at the first query, with an
        AttributeError ('str' object has no attribute 'pinned')."""
        if value is not None and not isinstance(value, Pipeline):
            raise ValueError(f"pipeline must be a qa Pipeline (or None for the default), "
                             f"got {type(value).__name__}")
        return value

    # Named keywords, not **kwargs: LangChain passes a retriever only the keywords its
    # `_get_relevant_documents` names (none: `invoke(q, k=2)` was silently ignored), and a
    # keyword not named here is a TypeError, not ignored.
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None, doc_ids: Sequence[str] | None = None,
    ) -> list[LCDocument]:
        return self._documents(query, k, doc_ids)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None, doc_ids: Sequence[str] | None = None,
    ) -> list[LCDocument]:
        return await run_in_executor(None, self._documents, query, k, doc_ids)

    def _documents(self, query: str, k: int | None,
                   doc_ids: Sequence[str] | None) -> list[LCDocument]:
        pipeline: Pipeline = self.pipeline or default_pipeline()
        with pipeline.pinned() as index:  # the titles from the index the hits came from
            hits = pipeline.retrieve(query, self.k if k is None else k,
                                     self.doc_ids if doc_ids is None else doc_ids)
        return [_document(hit, index.documents[hit.chunk.doc_id]) for hit in hits]


def _document(hit: Hit, document: Document) -> LCDocument:
    """A hit as a LangChain Document; a passage of a document with pages (PDF) says its page
    (1-based, of its start and of its best sentence's), as LangChain's PDF loaders do."""
    sentence: dict[str, Any] = {"text": hit.sentence.text, "start": hit.sentence.start,
                                "end": hit.sentence.end}
    metadata: dict[str, Any] = {
        "doc_id": hit.chunk.doc_id, "title": document.title, "chunk_id": hit.chunk.id,
        "start": hit.chunk.start, "end": hit.chunk.end, "score": hit.score, "rank": hit.rank,
        "sentence": sentence,
    }
    if document.pages:
        metadata["page"] = document.page_of(hit.chunk.start)
        sentence["page"] = document.page_of(hit.sentence.start)
    return LCDocument(page_content=hit.chunk.text, metadata=metadata)
