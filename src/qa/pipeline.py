"""The pipeline the edges share: settings + embedder + index, loaded once, on first use.

In: a question (and, for `ask`, the conversation so far). Out: `Hit`s or an `Answer`.
The CLI, the HTTP API, the web chat and the evaluation harness all go through here, so
they give the same answer to the same question.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.config import MAX_K, MAX_QUESTION_CHARS, Settings, load_settings
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.errors import BadQuestion
from qa.expansion import WordVectors, load_word_vectors
from qa.retrieval import Query, Weights, retrieve
from qa.store import Index, open_index
from qa.types import Answer, Document, Hit, Turn

if TYPE_CHECKING:
    from qa.loaders import BadDocument
    from qa.loaders.library import Entry, Problem


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
        self._docs_lock = threading.Lock()

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

    def retrieve(self, question: str, k: int | None = None,
                 doc_ids: Iterable[str] | None = None) -> list[Hit]:
        """The top `k` passages for `question`, each with its best sentence (only from the
        documents `doc_ids`, if given and not empty)."""
        text = clean_question(question)
        k = check_k(k or self.settings.k)
        index = self.index
        scope = self._scope(index, doc_ids)
        query = Query.of(text, index=index, words=self.words())
        return retrieve(index, self.embedder, query, k, self.weights, scope)

    def ask(
        self, question: str, history: Sequence[str | Turn] = (), k: int | None = None,
        doc_ids: Iterable[str] | None = None,
    ) -> Answer:
        """A cited answer to `question`, or an honest abstention (from `doc_ids` only, if
        given and not empty)."""
        from qa.answering import answer
        from qa.retrieval import search_scope

        text = clean_question(question)
        turns = [Turn(h) if isinstance(h, str) else h for h in history]
        scope = self._scope(self.index, doc_ids)
        token = search_scope.set(scope)
        try:
            return answer(self, text, turns, check_k(k or self.settings.k))
        finally:
            search_scope.reset(token)

    @staticmethod
    def _scope(index: Index, doc_ids: Iterable[str] | None) -> frozenset[str] | None:
        if doc_ids is None:
            return None
        if isinstance(doc_ids, str):
            doc_ids = [doc_ids]
        wanted = frozenset(doc_ids)
        unknown = sorted(wanted - set(index.documents))
        if unknown:
            raise BadQuestion(f"unknown document id {unknown[0]!r}")
        return wanted or None

    # -- documents (the data folder; see qa.loaders.library) ---------------------------------

    def _reload(self) -> Index:
        """The index after a change of documents: open_index sees the change and updates it."""
        with self._lock:
            self._index = open_index(self.settings, self.embedder, words=self.words)
            return self._index

    def add_documents(
        self, paths: Sequence[str | Path], names: Sequence[str] | None = None,
        on_error: Callable[[str, BadDocument], None] | None = None,
    ) -> list[Document]:
        """Check, store (atomically, in the data folder) and index new documents.

        A bad file raises `BadDocument` before anything is written, unless `on_error` is
        given: then it is reported there and the others are added. If the index update
        fails, the new files are removed again and the index is as before.
        """
        from qa.loaders import BadDocument
        from qa.loaders import library as lib

        prepared = []
        for i, path in enumerate(paths):
            name = names[i] if names is not None else None
            try:
                prepared.append(lib.prepare(Path(path), name, self.settings.max_upload_bytes))
            except BadDocument as exc:
                if on_error is None:
                    raise
                on_error(str(name or path), exc)
        if not prepared:
            return []
        with self._docs_lock:
            data = lib.check_data_dir(self.settings)
            with lib.data_lock(data):
                taken = lib.seed_ids(self.settings.seeds_dir)
                ids = lib.commit(self.settings, prepared, taken)
                try:
                    index = self._reload()
                except BaseException:
                    lib.discard(self.settings, ids)
                    raise
        return [index.documents[i] for i in ids if i in index.documents]

    def remove_documents(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove uploaded documents and update the index; seeds cannot be removed. If the
        update fails, the documents are put back."""
        from qa.loaders import BadDocument
        from qa.loaders import library as lib

        wanted = list(dict.fromkeys(doc_ids))
        with self._docs_lock:
            index = self.index
            for doc_id in wanted:
                if doc_id in index.documents and doc_id in lib.seed_ids(self.settings.seeds_dir):
                    raise lib.UnknownDocument(
                        f"{doc_id!r} is a shipped seed document: it cannot be removed", 409)
            if not set(index.documents) - set(wanted):
                raise BadDocument("cannot remove every document: the index would be empty", 409)
            data = lib.check_data_dir(self.settings)
            with lib.data_lock(data):
                moves = lib.withdraw(self.settings, wanted)
                try:
                    self._reload()
                except BaseException:
                    lib.undo(moves)
                    raise
                lib.finish(moves)
        return wanted

    def list_documents(self) -> list[Entry]:
        """Every indexed document with its metadata (seeds and uploads), in index order."""
        from qa.loaders import library as lib

        return [lib.entry(self.settings, d) for d in self.index.documents.values()]

    def problems(self) -> list[Problem]:
        """Files the corpus skipped when it was last read, with the reason."""
        from qa.loaders import library as lib

        return lib.problems_of(self.settings)


_default: Pipeline | None = None
_default_lock = threading.Lock()


def default_pipeline() -> Pipeline:
    """The process-wide pipeline built from the environment's settings."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline()
        return _default
