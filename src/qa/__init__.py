"""qa: question answering over documents, every answer cited to the exact passage.

    from qa import retrieve, ask
    hits = retrieve("Who runs onboarding for new hires?", k=5)
    answer = ask("When do they get their laptop?", history=["Who runs onboarding?"])

Importing qa is cheap: the embedding model loads on the first question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qa.config import Settings, load_settings
from qa.errors import (
    BadQuestion,
    BadSetting,
    IndexCorrupt,
    IndexMissing,
    IndexStale,
    ModelError,
    QAError,
    SeedError,
)
from qa.pipeline import Pipeline, default_pipeline
from qa.types import Answer, Chunk, Citation, Document, Hit, Lead, Sentence, Span, Turn

if TYPE_CHECKING:
    from qa.langchain_retriever import QARetriever

__all__ = [
    "Answer", "BadQuestion", "BadSetting", "Chunk", "Citation", "Document", "Hit",
    "IndexCorrupt", "IndexMissing", "IndexStale", "Lead", "ModelError", "Pipeline", "QAError",
    "QARetriever", "SeedError", "Sentence", "Settings", "Span", "Turn", "ask",
    "default_pipeline", "load_settings", "retrieve",
]


def retrieve(question: str, k: int = 5) -> list[Hit]:
    """The top `k` passages for `question` from the default index (built if needed)."""
    return default_pipeline().retrieve(question, k)


def ask(question: str, history: Sequence[str | Turn] = (), k: int = 5) -> Answer:
    """A cited answer (or an abstention) for `question`, given earlier turns `history`."""
    return default_pipeline().ask(question, history, k)


def __getattr__(name: str) -> Any:
    if name == "QARetriever":  # imported on demand: LangChain is not needed to ask questions
        from qa.langchain_retriever import QARetriever

        return QARetriever
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
