"""The records that pass between the steps of qa, in one place.

Every span (`start`, `end`) is a character offset into the *original* text of its
document, so `document.text[start:end] == text` holds for every record here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class Span:
    """An exact slice of a document: `source[start:end] == text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Document:
    """One document: the text every offset points into, and the spans of it worth indexing.

    For plain text and Markdown `text` is the file's decoded text; for formats whose text is
    extracted (HTML, PDF, DOCX) it is the extracted text, which the index stores.
    """

    id: str
    title: str
    path: str
    text: str
    sha256: str  # of the file's bytes
    paragraphs: tuple[Span, ...]
    kind: str = "txt"  # txt | md | html | pdf | docx
    pages: tuple[Span, ...] = ()  # PDF pages (or sections) as spans of `text`, in order

    @cached_property
    def text_sha256(self) -> str:
        """Hash of `text`: a changed extraction (library upgrade) means re-indexing."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()

    def page_of(self, offset: int) -> int | None:
        """The 1-based page holding `offset`, if the document has pages."""
        for number, page in enumerate(self.pages, start=1):
            if page.start <= offset < page.end:
                return number
        return None


@dataclass(frozen=True)
class DocumentInfo:
    """What a document list shows of a document, without its text: the index records it
    at build time, so listing a library decodes no text."""

    id: str
    title: str
    path: str
    kind: str
    sha256: str  # of the file's bytes
    text_sha256: str
    chars: int  # characters of `Document.text`
    pages: int  # how many `Document.pages` (0: none)

    @classmethod
    def of(cls, document: Document) -> DocumentInfo:
        return cls(document.id, document.title, document.path, document.kind,
                   document.sha256, document.text_sha256, len(document.text),
                   len(document.pages))


@dataclass(frozen=True)
class Sentence:
    """A sentence of a chunk, with offsets into its document."""

    doc_id: str
    index: int  # position among all sentences of the index
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Mention:
    """A typed span found by the linguistic layer: a named entity (spaCy label: PERSON, DATE,
    CARDINAL, ...) or a noun chunk (label "NP"); `head` is the lemma of its head word."""

    label: str
    start: int
    end: int
    text: str
    head: str = ""


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
    # the fenced code blocks of its document that it overlaps, as (start, end): a piece of
    # a block longer than a passage is code, though no fence is in the passage's text
    # (None: not known, its text tells)
    code: tuple[tuple[int, int], ...] | None = None


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
class Lead:
    """The short answer an answer opens with: a span of the sentence quoted by citation `n`."""

    n: int
    doc_id: str
    span: Span


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation; `answer` may be unknown."""

    question: str
    answer: str | None = None


@dataclass(frozen=True)
class Answer:
    """What `ask` returns: the answer as data (quotes with `[n]` markers, the lead span, the
    citations, the passages looked at). No markup: the edges render it (`qa.schema`)."""

    question: str
    text: str  # the quoted sentences, each followed by its `[n]`; or why there is no answer
    abstained: bool
    confidence: float  # probability that the answer is right
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = field(default=())
    lead: Lead | None = None  # the short answer (a span of a quote), if one was found
    # A follow-up answered in its standalone form ("How long does the Porridge program
    # take?" for "How long does it take?"), shown so the reader can check the reading.
    read_as: str | None = None
    # Answered, but more likely wrong than right (`answering.TENTATIVE_BELOW`): the text
    # says so before the quotes.
    tentative: bool = False
