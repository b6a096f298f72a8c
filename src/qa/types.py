"""The records that pass between the steps of qa, in one place.

Every span (`start`, `end`) is a character offset into the *original* text of its
document, so `document.text[start:end] == text` holds for every record here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """An exact slice of a document: `source[start:end] == text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Document:
    """One file of `seeds/`: its raw text and the spans of it worth indexing."""

    id: str
    title: str
    path: str
    text: str
    sha256: str
    paragraphs: tuple[Span, ...]


@dataclass(frozen=True)
class Sentence:
    """A sentence of a chunk, with offsets into its document."""

    doc_id: str
    index: int  # position among all sentences of the index
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A passage: consecutive sentences of one document, never crossing documents."""

    doc_id: str
    id: str  # "{doc_id}_{n}"
    index: int  # position in the index
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...]


@dataclass(frozen=True)
class Hit:
    """One retrieved passage, with its best-matching sentence."""

    rank: int
    chunk: Chunk
    score: float  # fused score (higher is better)
    sentence: Sentence
    sentence_score: float  # similarity of the question to `sentence`, in [-1, 1]
    dense_score: float  # cosine of the question to the whole passage


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer: the passage and the sentence quoted from it."""

    n: int
    doc_id: str
    chunk_id: str
    passage: Span
    quote: Span


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation; `answer` may be unknown."""

    question: str
    answer: str | None = None


@dataclass(frozen=True)
class Answer:
    """What `ask` returns: the answer text, its citations, and the passages it looked at."""

    question: str
    text: str
    abstained: bool
    confidence: float
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = field(default=())
    lead: str | None = None  # the short phrase the answer leads with, if any
