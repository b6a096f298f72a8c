"""The pipeline the edges share: settings + embedder + index, loaded once, on first use.

In: a question (and, for `ask`, the conversation so far). Out: `Hit`s or an `Answer`.
The CLI, the HTTP API, the web chat and the evaluation harness all go through here, so
they give the same answer to the same question.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from qa.config import MAX_K, MAX_QUESTION_CHARS, Settings, load_settings
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.errors import BadQuestion
from qa.expansion import WordVectors, load_word_vectors
from qa.retrieval import Query, Weights, retrieve
from qa.store import Index, open_index
from qa.types import Answer, Hit, Turn


def clean_question(question: str) -> str:
    """The question trimmed; reject what cannot be a question with a one-line reason."""
    if not isinstance(question, str):
        raise BadQuestion("the question must be text")
    text = question.strip()
    if not text:
        raise BadQuestion("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadQuestion(
            f"the question is too long ({len(text)} characters; at most {MAX_QUESTION_CHARS})"
        )
    return text


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise BadQuestion(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


class Pipeline:
    """One loaded model and index, safe to share between threads."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or load_settings()
        self.embedder = embedder or SentenceTransformerEmbedder(self.settings.model)
        self.weights = Weights()
        self._index: Index | None = None
        self._words: WordVectors | None = None
        self._words_loaded = False
        self._lock = threading.Lock()
        self._words_lock = threading.Lock()

    def words(self) -> WordVectors | None:
        """The model's word table for query expansion (None for embedders without one)."""
        with self._words_lock:
            if not self._words_loaded:
                self._words = load_word_vectors(self.embedder, self.settings.cache_dir)
                self._words_loaded = True
            return self._words

    @property
    def index(self) -> Index:
        """The index, loaded (or built, if missing or stale) on first access."""
        with self._lock:
            if self._index is None:
                self._index = open_index(self.settings, self.embedder, words=self.words)
            return self._index

    def rebuild(self) -> Index:
        """Build the index from the seeds now, whatever is on disk."""
        with self._lock:
            self._index = open_index(self.settings, self.embedder, rebuild=True,
                                     words=self.words)
            return self._index

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """The top `k` passages for `question`, each with its best sentence."""
        text = clean_question(question)
        k = check_k(k or self.settings.k)
        index = self.index
        query = Query.of(text, index=index, words=self.words())
        return retrieve(index, self.embedder, query, k, self.weights)

    def ask(
        self, question: str, history: Sequence[str | Turn] = (), k: int | None = None
    ) -> Answer:
        """A cited answer to `question`, or an honest abstention."""
        from qa.answering import answer

        text = clean_question(question)
        turns = [Turn(h) if isinstance(h, str) else h for h in history]
        return answer(self, text, turns, check_k(k or self.settings.k))


_default: Pipeline | None = None
_default_lock = threading.Lock()


def default_pipeline() -> Pipeline:
    """The process-wide pipeline built from the environment's settings."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline()
        return _default
