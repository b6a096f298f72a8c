"""LangChain adapter: qa's hybrid retrieval as a `BaseRetriever`.

In: a question (through `invoke`). Out: LangChain `Document`s, best first, whose
`page_content` is the passage and whose metadata carries doc id, chunk id, exact offsets,
score, rank and the best sentence, so a chain can cite exactly what it used.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator

from qa.config import MAX_K
from qa.pipeline import Pipeline, default_pipeline


class QARetriever(BaseRetriever):
    """`QARetriever(pipeline=..., k=5).invoke("question")` → list of LangChain Documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any = None  # a qa Pipeline; the process-wide default when None
    k: int = Field(default=5, ge=1, le=MAX_K, strict=True)  # checked when made, not per query

    @field_validator("pipeline")
    @classmethod
    def _a_pipeline(cls, value: Any) -> Any:
        """Checked when made too: anything else failed at the first query, with an
        AttributeError ('str' object has no attribute 'pinned')."""
        if value is not None and not isinstance(value, Pipeline):
            raise ValueError(f"pipeline must be a qa Pipeline (or None for the default), "
                             f"got {type(value).__name__}")
        return value

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        pipeline: Pipeline = self.pipeline or default_pipeline()
        with pipeline.pinned() as index:  # the titles from the index the hits came from
            hits = pipeline.retrieve(query, self.k)
        return [
            LCDocument(
                page_content=hit.chunk.text,
                metadata={
                    "doc_id": hit.chunk.doc_id,
                    "title": index.documents[hit.chunk.doc_id].title,
                    "chunk_id": hit.chunk.id,
                    "start": hit.chunk.start,
                    "end": hit.chunk.end,
                    "score": hit.score,
                    "rank": hit.rank,
                    "sentence": {"text": hit.sentence.text, "start": hit.sentence.start,
                                 "end": hit.sentence.end},
                },
            )
            for hit in hits
        ]
