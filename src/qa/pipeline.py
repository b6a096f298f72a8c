"""The pipeline the edges share: settings + embedder + index, loaded once, on first use.

In: a question (and, for `ask`, the conversation so far). Out: `Hit`s or an `Answer`.
The CLI, the HTTP API, the web chat and the evaluation harness all go through here, so
they give the same answer to the same question.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import numpy as np

from qa.answering import compose
from qa.config import MAX_K, MAX_QUESTION_CHARS, Settings, load_settings
from qa.embedding import Embedder, SentenceTransformerEmbedder
from qa.errors import BadQuestion
from qa.evidence import Evidence, follow_up_sentence, gather_evidence, quoted_sentences
from qa.expansion import WordVectors, load_word_vectors
from qa.lexical import tokenize
from qa.nlp import Analyzer, QuestionInfo, make_analyzer, similarity_typer
from qa.retrieval import Query, Weights, retrieve, search
from qa.store import Index, open_index
from qa.types import Answer, Hit, Turn

CONTEXT_WEIGHT = 0.5  # weight of the previous turn in a follow-up's query
WH_WORD = re.compile(r"\b(?:what|which|who|whom|whose|when|where|why|how)\b", re.IGNORECASE)


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

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 analyzer: Analyzer | None = None) -> None:
        self.settings = settings or load_settings()
        self.embedder = embedder or SentenceTransformerEmbedder(self.settings.model)
        self.analyzer = analyzer or make_analyzer(self.settings.spacy, similarity_typer(
            lambda word: (table.vector(word) if (table := self.words()) else None)))
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
                self._index = open_index(self.settings, self.embedder, words=self.words,
                                         analyzer=self.analyzer)
            return self._index

    def rebuild(self) -> Index:
        """Build the index from the seeds now, whatever is on disk."""
        with self._lock:
            self._index = open_index(self.settings, self.embedder, rebuild=True,
                                     words=self.words, analyzer=self.analyzer)
            return self._index

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """The top `k` passages for `question`, each with its best sentence."""
        text = clean_question(question)
        k = check_k(k or self.settings.k)
        index = self.index
        query = Query.of(text, index=index, words=self.words())
        return retrieve(index, self.embedder, query, k, self.weights)

    def analyze(self, question: str) -> QuestionInfo:
        """The question's expected answer type, entities and negation (spaCy)."""
        return self.analyzer.question(question)

    def evidence(
        self, question: str, history: Sequence[str | Turn] = (), k: int | None = None
    ) -> Evidence | None:
        """Search for `question` (with the previous turn when it needs it) and check what
        was found against it; None when nothing was found. Costs one embedding call."""
        text = clean_question(question)
        k = check_k(k or self.settings.k)
        turns = [Turn(h) if isinstance(h, str) else h for h in history]
        info = self.analyze(text)
        if not info.has_subject and not tokenize(text) and not WH_WORD.search(text):
            raise BadQuestion(f"{text!r} is not a question: ask about the documents in words")
        index = self.index
        follow_up = bool(turns) and (info.refers_back or not info.has_subject)
        context = ""
        if follow_up:
            last = turns[-1]
            context = f"{last.question} {last.answer or ''}".strip()
        query = Query.of(text, context, CONTEXT_WEIGHT, index=index, words=self.words())
        if context:  # one batch: the question, and the earlier turn at a lower weight
            vectors = self.embedder.embed([text, context])
            vector = vectors[0] + CONTEXT_WEIGHT * vectors[1]
            vector = vector / np.linalg.norm(vector)
        else:
            vector = self.embedder.embed([text])[0]
        hits, scored = search(index, vector, query, k, self.weights)
        if not hits:
            return None
        first = None
        if context:
            quoted = quoted_sentences(index, hits, turns[-1].answer)
            first = follow_up_sentence(index, hits, vectors[0], tokenize(text), quoted,
                                       self.weights.sentence_lexical)
        return gather_evidence(index, info, hits, scored, query.expansions, follow_up, first)

    def ask(
        self, question: str, history: Sequence[str | Turn] = (), k: int | None = None
    ) -> Answer:
        """A cited answer to `question`, or an honest abstention.

        `history` holds the earlier turns, oldest first: questions, or `Turn`s with the
        answers given (a follow-up is searched with the previous question and answer)."""
        evidence = self.evidence(question, history, k)
        if evidence is None:
            text = clean_question(question)
            return Answer(text, "The documents hold nothing to search.", True, 0.0)
        return compose(evidence)


_default: Pipeline | None = None
_default_lock = threading.Lock()


def default_pipeline() -> Pipeline:
    """The process-wide pipeline built from the environment's settings."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline()
        return _default
