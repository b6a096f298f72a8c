"""Index step: documents → files under `index/`, and back, checked on the way in.

In: documents, an embedder (and optionally a sentence annotator). Out: an `Index` that
retrieval and answering use through its methods only: passages and sentences with exact
offsets, the documents' text, dense search over passages (a `VectorIndex`), BM25 over
passages and sentences (a `LexicalIndex`), and the vocabulary's vectors for query expansion.

On disk (plain `.npy` arrays, memory-mapped on load, a little JSON; never pickle):

    index/manifest.json               what was built, from which files (size, mtime, sha256),
                                      which files it skipped and why, with which settings;
                                      every data file with its sha256
    index/build-<id>/texts.bin        each document's text (UTF-8), the text every offset
                                      points into (for extracted formats the only copy)
    index/build-<id>/documents.json   per document: id, title, path, kind, pages, byte range
    index/build-<id>/chunks.npy       per passage: document, start, end, number in document
    index/build-<id>/sentences.npy    per sentence: passage, start, end
    index/build-<id>/chunk_vectors.npy (+ .hnsw.faiss: HNSW/IVF above a size), sentence_vectors.npy
    index/build-<id>/terms.txt, term_vectors.npy      the sentences' vocabulary and its vectors
    index/build-<id>/{chunk,sentence}_bm25.*.npy      BM25 weights, sparse columns per term
    index/build-<id>/sentence_tf.*.npy                term counts (to reuse in the next build)
    index/build-<id>/annotations.jsonl                optional, one JSON object per sentence

A build writes a fresh `build-<id>/` folder, then replaces `manifest.json` atomically, so a
reader sees either the old complete index or the new one. A reader reads the manifest once;
the previous build folder is kept until the next build, and a reader that finds its build
gone retries once with the new manifest instead of calling the index corrupt.

Builds are incremental: a document whose text (sha256), model and chunking are unchanged
keeps its passages, sentences, vectors, term counts and annotations from the previous
build; only new or changed documents are chunked and embedded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from scipy import sparse

from qa.atomic import file_sha256, open_lock_file, write_text_atomic
from qa.chunking import chunk_documents, code_blocks, overlapping
from qa.config import Settings
from qa.embedding import Embedder
from qa.errors import (
    BadSetting,
    IndexCorrupt,
    IndexMissing,
    IndexStale,
    QAError,
    ShuttingDown,
    WriteError,
)
from qa.expansion import WordVectors, surface_forms, term_vectors
from qa.lexical import LexicalIndex, SparseBM25, Terms, bm25_weights, term_counts
from qa.loaders import EXTRACTED_KINDS, extractor_for, extractor_for_name
from qa.loaders.library import (
    SEEDS_MISSING,
    TEXT,
    Judge,
    PreviousIds,
    corpus_files,
    data_lock,
    entry,
    held_here,
    load_corpus,
    pending_ids,
    previous_ids,
    retire_vanished,
    retired_ids,
    settle,
    stored_folders,
    unsettled,
)
from qa.log import log
from qa.progress import Progress
from qa.types import Chunk, Document, DocumentInfo, Mention, Sentence, Span
from qa.vectors import (
    GRAPH,
    HNSW_ABOVE,
    IVF_ABOVE,
    MATRIX,
    FaissVectors,
    VectorIndex,
    _build_graph,
    ann_kind,
    load_array,
)

FORMAT_VERSION = 13  # 13: "-ied" meets "-y" ("married": "marry"), and "whose" is a stop
# word. 12: a record's line is no heading when its lines are paragraphs.
# 11: a record's label may be in bold or italics ("**Instructor:** Dr.
# Ines Albrecht"), each of its lines a sentence. 10: a short verb's "-ing" and "-ed" forms
# meet it ("giving": "give", no longer "giv"). 9: a numbered section's heading may run to 20
# words ("1. What Felorin is and what it is used for"), and opens the passage of what follows
# it. 8: words lose their
# letters' marks ("Deréon": "dereon", no longer "der" and "on"); chunking: a line with cells
# is a row wherever the paragraph has another; a fenced code block is one paragraph and one
# sentence; a Markdown file's front matter and comments, and furniture lines, are in no
# passage; lines under a table's rows, of a record
# ("Date: ..." / "Venue: ...") and a numbered heading over its prose are sentences; a block
# quote's sentence starts after its marks; a sentence of several lines is no heading; headings
# open the passage of what follows them. 7: each row of a table is a sentence, and "4. How to
# apply" is one. 6: no sentence ends at a lone small letter's stop, "(r. 1368)"
MANIFEST = "manifest.json"
EMBED_BATCH = 512  # texts per embedder call: bounded memory, steady progress
ANNOTATE_BATCH = 512  # sentences per annotator call (spaCy): the same, for the annotation
RACY_SECONDS = 2.0  # a file changed this close to a build or a check is hashed, not trusted by stat

Annotate = Callable[[list[Sentence]], list[dict[str, Any]]]
WordsArg = WordVectors | Callable[[], WordVectors | None] | None


class BuildStop:
    """Tells builds to stop, from another thread (a server shutting down). A build checks it
    before each batch of model work and just before it swaps the manifest; once `set()` has
    returned, no build swaps in any more: each raises `ShuttingDown` and leaves the index on
    disk as it was."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False

    def set(self) -> None:
        """Stop builds from now on (waits only for a manifest swap in progress: ms)."""
        with self._lock:
            self._set = True

    def is_set(self) -> bool:
        return self._set

    def check(self) -> None:
        if self._set:
            raise ShuttingDown("the server is shutting down; the index was not changed")

    @contextlib.contextmanager
    def swapping(self) -> Iterator[None]:
        """Around the swap: `set()` waits for it to end, or it never begins."""
        with self._lock:
            self.check()
            yield


# -- the manifest ------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DocumentEntry(_Strict):
    id: str
    title: str
    path: str
    kind: str = "txt"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of the file's bytes
    text_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # of the text the offsets point into
    size: int
    mtime_ns: int
    extractor: str = ""  # for extracted formats: the library that made `text` (see loaders)
    text_size: int = -1  # uploads: their stored text (data/<id>/text.txt), which a hand edit
    text_mtime_ns: int = -1  # would part from the indexed text: the check looks at it too


class SkippedEntry(_Strict):
    """A file the corpus offers (`corpus_files`) that the build could not load: recorded so
    that the check sees it unchanged instead of new, and re-reads it once it changes or the
    extractor that failed on it does (a newer pypdf may read a PDF an older one could not)."""

    id: str
    path: str
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # None: unreadable
    size: int
    mtime_ns: int
    extractor: str = ""  # the loader's `extractor` for its type; "" (older indexes): unknown


class ProblemEntry(_Strict):
    """A file the build skipped, and why: what `qa list` reports without re-reading."""

    file: str
    reason: str


class FileEntry(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int


class Manifest(_Strict):
    """What `manifest.json` must hold; anything else is a damaged index, rebuilt."""

    format: int
    model: str
    dimension: int
    chunking: dict[str, int]
    documents: list[DocumentEntry]
    skipped: list[SkippedEntry] = Field(default_factory=list)
    problems: list[ProblemEntry] = Field(default_factory=list)
    counts: dict[str, int]
    data: str = Field(pattern=r"^build-[A-Za-z0-9T-]+$")
    files: dict[str, FileEntry]
    vectors: str = "flat"
    passage_vectors: str = "mean"
    annotator: str | None = None
    built_at: str = ""
    built_at_ns: int = 0
    build_seconds: float = 0.0
    embedded: dict[str, int] = Field(default_factory=dict)
    # how this build's new document vectors were embedded (`QA_DOCUMENT_PRECISION`); vectors
    # reused from an earlier build keep theirs. Either suits float32 questions.
    document_precision: str = "float32"
    # the seeds and data folders it was built from (`index_folders`); {} before they were kept
    folders: dict[str, str] = Field(default_factory=dict)


# -- the index in memory -----------------------------------------------------------------------

# Decoded document texts kept in memory (the rest are decoded again from the memory-mapped
# texts.bin on use: ~1 ms per MB): enough for every document one question touches, bounded
# however large the library. Both limits hold; the most recent entry is always kept.
CACHE_DOCUMENTS = 64
CACHE_CHARS = 32_000_000

V = TypeVar("V")


class _Recent(Generic[V]):
    """A thread-safe least-recently-used map, bounded by entries and by characters."""

    def __init__(self, size: Callable[[V], int], entries: int | None = None,
                 chars: int | None = None) -> None:
        self._items: OrderedDict[str, V] = OrderedDict()
        self._size = size
        self._entries = CACHE_DOCUMENTS if entries is None else entries
        self._chars = CACHE_CHARS if chars is None else chars
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        # no lock: each OrderedDict call is atomic, and a hit is the hot path (tens per
        # question); only `put` has steps that must not interleave
        value = self._items.get(key)
        if value is not None:
            with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._held -= self._size(old)
            self._items[key] = value
            self._held += self._size(value)
            while len(self._items) > 1 and (len(self._items) > self._entries
                                            or self._held > self._chars):
                _, dropped = self._items.popitem(last=False)
                self._held -= self._size(dropped)

    def __len__(self) -> int:
        return len(self._items)



R = TypeVar("R")


class _Rows(Sequence[R]):
    """A read-only list of records made on demand from the index's tables (`count` rows,
    `row(i)` the i-th), so a large index never holds them all as objects."""

    def __init__(self, count: Callable[[], int], row: Callable[[int], R]) -> None:
        self._count, self._row = count, row

    def __len__(self) -> int:
        return self._count()

    @overload
    def __getitem__(self, i: int) -> R: ...
    @overload
    def __getitem__(self, i: slice) -> list[R]: ...

    def __getitem__(self, i: int | slice) -> R | list[R]:
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        return self._row(int(i) % n)


class _Documents(Mapping[str, Document]):
    def __init__(self, index: Index) -> None:
        self._index = index

    def __getitem__(self, doc_id: str) -> Document:
        return self._index._document(doc_id)

    def __contains__(self, doc_id: object) -> bool:  # without decoding the document's text
        return doc_id in self._index._doc_pos

    def __iter__(self) -> Iterator[str]:
        return iter(self._index._doc_ids)

    def __len__(self) -> int:
        return len(self._index._doc_ids)


class Index:
    """Everything retrieval and answering need, behind methods (no raw matrices outside).

    Passages and sentences are numbered from 0 in index order; a document's passages, and
    a passage's sentences, are consecutive numbers. Records (`Chunk`, `Sentence`,
    `Document`) are made on access from compact arrays, so a large index loads fast.
    """

    def __init__(
        self,
        manifest: Manifest,
        folder: Path,
        documents: list[dict[str, Any]],
        texts: np.ndarray,
        chunk_table: np.ndarray,
        sentence_table: np.ndarray,
        vectors: VectorIndex,
        sentence_matrix: np.ndarray,
        chunk_lexical: SparseBM25,
        sentence_lexical: SparseBM25,
        terms: list[str],
        term_vectors: np.ndarray,
    ) -> None:
        self.manifest_record = manifest
        self.manifest: dict[str, Any] = manifest.model_dump()
        self.model = manifest.model
        self.folder = folder
        self._doc_meta = documents
        self._doc_ids = [str(d["id"]) for d in documents]
        self._doc_pos = {d: i for i, d in enumerate(self._doc_ids)}
        # np.asarray keeps memory maps mapped but drops np.memmap's slow item access
        self._texts = np.asarray(texts)
        self._chunk_table = np.asarray(chunk_table)
        self._sentence_table = np.asarray(sentence_table)
        self.vectors: VectorIndex = vectors  # another backend may replace these three
        self._sentence_matrix = np.asarray(sentence_matrix)
        self.chunk_lexical: LexicalIndex = chunk_lexical
        self.sentence_lexical: LexicalIndex = sentence_lexical
        self.terms = terms  # the sentences' vocabulary (stems), sorted
        self.term_vectors = term_vectors  # one unit vector per term, for query expansion
        self.vocabulary = sentence_lexical.vocabulary  # term -> number (supports `in`)
        # passage c's sentences are first_sentence[c]:first_sentence[c+1]; likewise documents
        n_c, n_d = len(chunk_table), len(documents)
        owner = sentence_table[:, 0] if len(sentence_table) else np.zeros(0, np.int64)
        self._first_sentence = np.searchsorted(owner, np.arange(n_c + 1)).astype(np.int64)
        doc_of = chunk_table[:, 0] if n_c else np.zeros(0, np.int64)
        self._first_chunk = np.searchsorted(doc_of, np.arange(n_d + 1)).astype(np.int64)
        self._source_cache: _Recent[str] = _Recent(len)
        self._document_cache: _Recent[Document] = _Recent(lambda d: len(d.text))
        # each document's fenced code blocks (`chunking.code_blocks`), as its passages need
        self._code_cache: _Recent[tuple[tuple[int, int], ...]] = _Recent(lambda c: 2 * len(c))
        self.documents: Mapping[str, Document] = _Documents(self)
        self.chunks: Sequence[Chunk] = _Rows(lambda: len(self._chunk_table), self._chunk)
        self.sentences: Sequence[Sentence] = _Rows(lambda: len(self._sentence_table),
                                                   self._sentence)

    # documents and records

    def source(self, doc_id: str) -> str:
        """The text of a document as indexed: every offset in qa points into this."""
        text = self._source_cache.get(doc_id)
        if text is None:
            meta = self._doc_meta[self._doc_pos[doc_id]]
            raw = bytes(self._texts[int(meta["byte_start"]) : int(meta["byte_end"])])
            text = raw.decode("utf-8", "surrogatepass")
            self._source_cache.put(doc_id, text)
        return text

    def info(self, doc_id: str) -> DocumentInfo:
        """What a document list shows of a document, from the build's records: no text is
        decoded (an index built before they were kept counts its characters)."""
        meta = self._doc_meta[self._doc_pos[doc_id]]  # KeyError for an unknown id
        chars = meta.get("chars")
        return DocumentInfo(doc_id, str(meta["title"]), str(meta["path"]),
                            str(meta.get("kind", "txt")), str(meta["sha256"]),
                            str(meta["text_sha256"]),
                            chars if isinstance(chars, int) else len(self.source(doc_id)),
                            len(meta["pages"]))

    def listed(self, doc_id: str) -> dict[str, Any] | None:
        """What the build recorded of a document's list entry (`Entry.record`); None for an
        index built before it was kept."""
        listed = self._doc_meta[self._doc_pos[doc_id]].get("listed")
        return listed if isinstance(listed, dict) else None

    def _document(self, doc_id: str) -> Document:
        doc = self._document_cache.get(doc_id)
        if doc is None:
            meta = self._doc_meta[self._doc_pos[doc_id]]  # KeyError for an unknown id
            text = self.source(doc_id)
            pages = tuple(Span(int(s), int(e), text[int(s) : int(e)]) for s, e in meta["pages"])
            doc = Document(id=doc_id, title=str(meta["title"]), path=str(meta["path"]),
                           text=text, sha256=str(meta["sha256"]), paragraphs=(),
                           kind=str(meta.get("kind", "txt")), pages=pages)
            # the build hashed this text: a listing of an evicted document need not again
            doc.__dict__["text_sha256"] = str(meta["text_sha256"])
            self._document_cache.put(doc_id, doc)
        return doc

    def _sentence(self, sid: int) -> Sentence:
        chunk, start, end = (int(x) for x in self._sentence_table[sid])
        doc_id = self._doc_ids[int(self._chunk_table[chunk, 0])]
        return Sentence(doc_id, sid, start, end, self.source(doc_id)[start:end])

    def _chunk(self, i: int) -> Chunk:
        doc, start, end, n = (int(x) for x in self._chunk_table[i])
        doc_id = self._doc_ids[doc]
        text = self.source(doc_id)
        first, last = int(self._first_sentence[i]), int(self._first_sentence[i + 1])
        sentences = tuple(
            Sentence(doc_id, sid, int(s), int(e), text[int(s) : int(e)])
            for sid, (_, s, e) in zip(range(first, last), self._sentence_table[first:last],
                                      strict=True)
        )
        code = self._code_cache.get(doc_id)
        if code is None:
            code = code_blocks(text)
            self._code_cache.put(doc_id, code)
        return Chunk(doc_id, f"{doc_id}_{n}", i, start, end, text[start:end], sentences,
                     overlapping(code, start, end))

    # structure

    def chunk_of(self, sentence_id: int) -> int:
        """The passage number of a sentence."""
        return int(self._sentence_table[sentence_id, 0])

    def sentences_of(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Sentence numbers of the given passages, passage by passage."""
        ids = np.asarray(chunk_ids, dtype=np.int64)
        if not len(ids):
            return np.zeros(0, np.int64)
        return _ranges(self._first_sentence[ids], self._first_sentence[ids + 1])

    def sentence_counts(self, chunk_ids: np.ndarray) -> np.ndarray:
        """How many sentences each of the given passages has (at least one)."""
        ids = np.asarray(chunk_ids, dtype=np.int64)
        return self._first_sentence[ids + 1] - self._first_sentence[ids]

    def chunks_of(self, doc_ids: frozenset[str] | set[str]) -> np.ndarray:
        """Passage numbers of the given documents (unknown ids hold none), in index order."""
        pos = np.array(sorted(self._doc_pos[d] for d in doc_ids if d in self._doc_pos),
                       dtype=np.int64)
        if not len(pos):
            return np.zeros(0, np.int64)
        return _ranges(self._first_chunk[pos], self._first_chunk[pos + 1])

    def sentence_at(self, doc_id: str, start: int) -> int | None:
        """The sentence of `doc_id` that starts at character `start`, if any."""
        d = self._doc_pos.get(doc_id)
        if d is None:
            return None
        lo = int(self._first_sentence[self._first_chunk[d]])
        hi = int(self._first_sentence[self._first_chunk[d + 1]])
        starts = self._sentence_table[lo:hi, 1]
        at = int(np.searchsorted(starts, start))
        return lo + at if at < len(starts) and int(starts[at]) == start else None

    # dense

    def search_chunks(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and numbers of the `k` passages nearest `vector` (exact or approximate)."""
        return self.vectors.search(vector, k)

    def chunk_vectors(self, ids: np.ndarray) -> np.ndarray:
        return self.vectors.vectors(ids)

    def sentence_vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(self._sentence_matrix[np.asarray(ids, dtype=np.int64)],
                          dtype=np.float32)

    # lexical

    def chunk_scores(self, terms: Terms, ids: np.ndarray | None = None,
                     top: int | None = None) -> np.ndarray:
        """BM25 of every passage (or of passages `ids`) for weighted query terms; with
        `top`, only the best `top` need be right (others may be 0)."""
        return self.chunk_lexical.scores(terms, ids, top)

    def chunk_top(self, terms: Terms, k: int) -> np.ndarray:
        """Numbers of the `k` passages of highest BM25, best first (ties and passages that
        match nothing in passage order)."""
        return self.chunk_lexical.top(terms, k)

    def sentence_scores(self, terms: Terms, ids: np.ndarray | None = None) -> np.ndarray:
        """BM25 of every sentence (or of sentences `ids`) for weighted query terms."""
        return self.sentence_lexical.scores(terms, ids)

    def idf(self, term: str) -> float:
        """Inverse document frequency of a term among the sentences."""
        return self.sentence_lexical.idf(term)

    def knows(self, term: str) -> bool:
        """Does any sentence use this term?"""
        return self.sentence_lexical.knows(term)

    # extra per-sentence data

    @cached_property
    def _annotation_lines(self) -> tuple[np.ndarray, np.ndarray] | None:
        """`annotations.jsonl` memory-mapped, with where each line starts: a question parses
        only the lines of its candidate sentences (a 20 MB document has ~130k lines)."""
        if "annotations.jsonl" not in self.manifest_record.files:
            return None
        path = self.folder / "annotations.jsonl"
        data = np.asarray(np.memmap(path, dtype=np.uint8, mode="r")) if path.stat().st_size \
            else np.zeros(0, np.uint8)
        ends = np.flatnonzero(data == ord("\n")) + 1
        if len(ends) != len(self.sentences):
            raise IndexCorrupt("annotations do not match the sentences")
        return data, np.concatenate([[0], ends]).astype(np.int64)

    def annotation(self, sentence_id: int) -> dict[str, Any] | None:
        """The build's `annotate` output for one sentence, or None if the index has none."""
        lines = self._annotation_lines
        if lines is None:
            return None
        data, starts = lines
        row = json.loads(bytes(data[starts[sentence_id] : starts[sentence_id + 1]]))
        return row if isinstance(row, dict) else {}

    @property
    def annotations(self) -> list[dict[str, Any]] | None:
        """Every sentence's annotation (aligned with `sentences`), or None."""
        if self._annotation_lines is None:
            return None
        return [self.annotation(i) or {} for i in range(len(self.sentences))]

    def mentions_of(self, sentence_id: int) -> tuple[Mention, ...]:
        """The entities and noun chunks of a sentence (from the `qa-mentions` annotations),
        with their text read from the document."""
        row = self.annotation(sentence_id)
        if not row:
            return ()
        sentence = self.sentences[sentence_id]
        text = self.source(sentence.doc_id)
        return tuple(Mention(str(label), int(a), int(b), text[int(a):int(b)], str(head))
                     for label, a, b, head in row.get("m", []))


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of range(s, e) for each pair, vectorised."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return (np.arange(total, dtype=np.int64) + offsets).astype(np.int64)


# -- writing ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder (other processes wait)."""
    with open_lock_file(index_dir / ".lock") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# `.server-<folders' hash>-<pid>-<random>.lock`: one per process that uses the index
# folder, written whole (the folders and the pid) and locked before it appears, locked until
# the claim ends; a file whose lock is free was left by a process that died, and goes
SERVER_PREFIX = ".server-"
_CLAIM_TMP = ".server-tmp-"  # a claim being written (no `.lock` suffix: never read as one)
_claims: dict[str, tuple[Any, Path, bool]] = {}  # key -> (locked handle, its file, made dir)
_claims_lock = threading.Lock()


def index_folders(settings: Settings) -> dict[str, str]:
    """The folders an index is built from (resolved): recorded in its manifest (`folders`)
    and in the claim of each process that uses it (`claim_index`)."""
    return {"seeds": str(settings.seeds_dir.resolve()),
            "data": str(settings.documents_dir.resolve())}


def _claim_key(settings: Settings) -> str:
    """`.server-<hash>` in the index folder: the hash names the folders (a process's claims
    of one index folder from the same folders are one)."""
    folders = json.dumps(index_folders(settings), sort_keys=True).encode()
    return str(settings.index_dir / f"{SERVER_PREFIX}{hashlib.sha256(folders).hexdigest()[:16]}")


def _live_claim(path: Path) -> dict[str, Any] | None:
    """What a live process claims with `path` (the folders, its pid), else None. A claim
    whose lock is free is a dead process's: removed (under the lock: its owner never
    reopens it). A half-written `.server-tmp-` file of a process killed while claiming
    goes once a minute old."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None  # a folder or a FIFO of that name: not a claim
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                found = json.loads(fh.read(1 << 16))
            except ValueError:
                found = None
            return found if isinstance(found, dict) else {}
        except OSError:
            return None
        if not path.name.startswith(_CLAIM_TMP) or time.time() - os.fstat(fd).st_mtime > 60:
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    path.unlink()
        return None


def claim_index(settings: Settings) -> None:
    """Mark the index folder as used from these seeds and data folders until
    `release_index` (or the process ends: the lock goes with it, and the next claim removes
    its file). BadSetting if a live process uses it from other folders: two servers on one
    index folder with different data folders rebuilt it against each other every second,
    each for its own documents. Any number may share it from the same folders. A folder
    that cannot be written is not claimed (it is never rebuilt). A folder that does not
    exist yet is made and claimed (two processes building a new index folder from other
    folders built it against each other), and removed again if it is still empty when the
    claim ends."""
    key = _claim_key(settings)
    index_dir = settings.index_dir
    with _claims_lock:
        if key in _claims:
            return
        made = not index_dir.exists()
        mine = Path(f"{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}.lock")
        tmp = index_dir / f"{_CLAIM_TMP}{uuid.uuid4().hex}"
        for attempt in range(3):  # a process whose command failed may remove the new
            try:  # folder it made (empty) between these two steps: make it again
                index_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                break
            except FileNotFoundError:
                if attempt == 2:
                    return
            except OSError:
                return
        fh = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            fh.write(json.dumps({**index_folders(settings), "pid": os.getpid()}).encode())
            fh.flush()
            os.replace(tmp, mine)  # whole and locked when it appears
        except OSError:
            fh.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        try:
            for other in sorted(index_dir.glob(f"{SERVER_PREFIX}*")):
                if other == mine or (found := _live_claim(other)) is None:
                    continue  # a dead process's: gone now
                if other.name.startswith((Path(key).name, _CLAIM_TMP)):
                    continue  # the same folders, or a claim not made yet (it sees this one)
                mine_now = index_folders(settings)
                pid = f" (process {found['pid']})" if isinstance(found.get("pid"), int) else ""
                raise BadSetting(
                    f"the index folder {str(index_dir)!r} is in use by another qa "
                    f"process{pid} reading the seeds folder {found.get('seeds', '?')!r} and "
                    f"the data folder {found.get('data', '?')!r}, not {mine_now['seeds']!r} "
                    f"and {mine_now['data']!r}: each would rebuild it for its own documents; "
                    "give this one its own index folder (--index) or the same folders")
        except BaseException:
            _end_claim(fh, mine, made)
            raise
        _claims[key] = (fh, mine, made)


def _end_claim(fh: Any, path: Path, made: bool) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
    fh.close()
    if made:  # a folder made for a command that built nothing in it
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def release_index(settings: Settings) -> None:
    """Give up `claim_index`'s claim (a server that stopped; a command that ended)."""
    with _claims_lock:
        held = _claims.pop(_claim_key(settings), None)
    if held is not None:
        _end_claim(*held)


@contextlib.contextmanager
def claimed_index(settings: Settings) -> Iterator[None]:
    """`claim_index` for the duration of a `with` block."""
    claim_index(settings)
    try:
        yield
    finally:
        release_index(settings)


def prepare_index_dir(index_dir: Path) -> None:
    """Create the index folder and make sure it is writable, before any model loads."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        probe = index_dir / f".probe-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise QAError(
            f"cannot write the index folder {str(index_dir)!r}: {exc.strerror or exc}"
        ) from None


@dataclass
class _Part:
    """One document's rows in a build: reused from the previous build, or new."""

    doc: Document
    previous: int | None  # the document's number in the previous build, if reused
    chunks: np.ndarray  # (n, 3): start, end, number in document
    sentences: np.ndarray  # (m, 3): passage number within the document, start, end
    chunk_row: int = 0  # where its rows start in the new build
    sentence_row: int = 0


def _new_part(doc: Document, settings: Settings) -> _Part:
    chunks = chunk_documents([doc], settings.chunk_chars, settings.min_chunk_chars)
    chunk_rows = np.array([(c.start, c.end, n) for n, c in enumerate(chunks)],
                          dtype=np.int64).reshape(-1, 3)
    sentence_rows = np.array([(n, s.start, s.end) for n, c in enumerate(chunks)
                              for s in c.sentences], dtype=np.int64).reshape(-1, 3)
    return _Part(doc, None, chunk_rows, sentence_rows)


def _reused_part(doc: Document, previous: Index, d: int) -> _Part:
    c0, c1 = int(previous._first_chunk[d]), int(previous._first_chunk[d + 1])
    s0, s1 = int(previous._first_sentence[c0]), int(previous._first_sentence[c1])
    chunks = np.array(previous._chunk_table[c0:c1, 1:4], dtype=np.int64)
    sentences = np.array(previous._sentence_table[s0:s1], dtype=np.int64)
    sentences[:, 0] -= c0
    return _Part(doc, d, chunks, sentences)


def _previous_index(settings: Settings, model: str) -> Index | None:
    """The current build, if its pieces can be reused for this one (same model, chunking)."""
    try:
        manifest = _read_manifest(settings.index_dir)
        if (manifest.format != FORMAT_VERSION or manifest.model != model
                or manifest.chunking != settings.chunking()
                or manifest.passage_vectors != settings.passage_vectors):
            return None
        return _open_build(settings.index_dir, manifest)
    except (IndexMissing, IndexCorrupt, OSError):
        return None


def _stat_files(files: Mapping[str, Path]) -> dict[str, os.stat_result]:
    """Size and mtime of each seed file, taken before reading (a later edit is then seen)."""
    return {str(p): p.stat() for p in files.values()}


def _skipped(files: Mapping[str, Path], loaded: set[str],
             stats: Mapping[str, os.stat_result]) -> list[SkippedEntry]:
    """The files of `files` that loading skipped, as the manifest records them. One that
    changed while the build read it is left out: the next check then sees it as new."""
    entries = []
    for doc_id, path in files.items():
        if doc_id in loaded:
            continue
        before = stats[str(path)]
        try:
            st = path.stat()
            if (st.st_size, st.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                continue
            sha: str | None = file_sha256(path)
        except FileNotFoundError:
            continue
        except OSError:
            sha = None
        entries.append(SkippedEntry(id=doc_id, path=str(path), sha256=sha,
                                    size=before.st_size, mtime_ns=before.st_mtime_ns,
                                    extractor=extractor_for_name(path.name)))
    return entries


def _stat_texts(documents: list[Document], uploaded: frozenset[str]
                ) -> dict[str, os.stat_result]:
    """The stat of each upload's stored text, just read (or restored) by loading."""
    texts = {}
    for doc in documents:
        if doc.id in uploaded:
            with contextlib.suppress(OSError):
                texts[doc.id] = (Path(doc.path).parent / TEXT).stat()
    return texts


StatKey = tuple[int, int, int]  # (inode, size, mtime in ns)


def stat_key(path: Path) -> StatKey | None:
    """What a cheap check compares (one committed manifest from the next, a seed file from
    its edit: `qa.freshness`); None when the file is gone or cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class _Read:
    """The corpus as a build read it (`_read_corpus`)."""

    documents: list[Document]
    stats: dict[str, os.stat_result]
    texts: dict[str, os.stat_result]
    skipped: list[SkippedEntry]
    problems: list[ProblemEntry]
    manifest: StatKey | None  # the manifest's `stat_key` before it was read


def _read_corpus(settings: Settings, empty_ok: bool) -> _Read:
    """Read the documents for a build (`load_corpus`), with the ids the committed index
    gave them and each file's stat from before it was read."""
    manifest = stat_key(settings.index_dir / MANIFEST)
    with _reading_corpus(settings) as hide:
        try:
            last = _read_manifest(settings.index_dir)
            ids = sticky_ids(settings, last)
            had = {d.id for d in last.documents} | {f.id for f in last.skipped}
        except (IndexMissing, IndexCorrupt):
            # a fresh index: seeds by their file names, never a removed upload's id
            ids = PreviousIds(retired=retired_ids(settings.documents_dir))
            had = set()
        # but a new seed file never takes an id an upload has (its folder is named by it), nor
        # one an upload stored since the last build has (stored while a seed file came): a
        # seed file x.txt beside an upload x is 'x-txt'. A seed file keeps the id it had.
        stored = {f.name for f in stored_folders(settings.documents_dir, hide)}
        ids = replace(ids, uploads=ids.uploads | (stored - set(ids.seeds.values())))
        files = corpus_files(settings, ids, hide)  # fails at once on a seeds path that is a file
        retire_vanished(settings, ids, had, files, stored)
        stats = _stat_files(files)
        corpus = load_corpus(settings, ids, empty_ok, hide)
        documents = corpus.documents
        skipped = _skipped(files, {d.id for d in documents}, stats)
        texts = _stat_texts(documents, corpus.uploaded)
    return _Read(documents, stats, texts, skipped,
                 [ProblemEntry(file=p.file, reason=p.reason) for p in corpus.problems], manifest)


def _resolve_words(words: WordsArg) -> WordVectors | None:
    return words() if callable(words) else words


def build_index(
    settings: Settings,
    embedder: Embedder,
    words: WordsArg = None,
    annotate: Annotate | None = None,
    annotator: str | None = None,
    empty_ok: bool = False,
    stop: BuildStop | None = None,
) -> Index:
    """Read the seeds, chunk and embed what changed, write a new build; return it loaded.

    `words` (the model's word table, or a function loading it) gives the vocabulary's
    vectors without a model pass; it is called only if the build has new terms. `annotate`
    adds one JSON object per sentence (stored as `annotations.jsonl`); `annotator` names
    it, so that a different annotator re-annotates every sentence. Files of which none can
    be read raise `NothingToIndex` and leave the index as it is, unless `empty_ok`
    (`load_corpus`); no file at all is an empty library. Once `stop` is set the build
    raises `ShuttingDown` at its next batch and leaves the index as it was.
    """
    stop = stop or BuildStop()
    stop.check()
    started = time.perf_counter()
    read = _read_corpus(settings, empty_ok)
    prepare_index_dir(settings.index_dir)
    if settings.backend == "milvus":  # unreachable: say so before embedding anything
        from qa import milvus_index

        milvus_index.client(settings)
    index_dir = settings.index_dir
    if annotate is not None and annotator is None:
        annotator = getattr(annotate, "__qualname__", "annotate")
    with _build_lock(index_dir):
        if stat_key(index_dir / MANIFEST) != read.manifest:
            # another build was committed while this one waited (a writer's, for the upload
            # this read left out as unconfirmed): read again, or this build would drop it
            read = _read_corpus(settings, empty_ok)
        documents, stats, texts, skipped = read.documents, read.stats, read.texts, read.skipped
        problems = read.problems
        _clean_leftovers(index_dir)
        previous = _previous_index(settings, embedder.name)
        name = f"build-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp_dir = index_dir / f".{name}.tmp"
        tmp_dir.mkdir()
        try:
            build = _BuildInputs(settings, embedder, documents, stats, texts, skipped,
                                 problems, previous, words, annotate, annotator, started, stop)
            manifest = _write_build(tmp_dir, name, build)
            stop.check()
            os.replace(tmp_dir, index_dir / name)
        except BaseException as exc:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            if isinstance(exc, OSError) and exc.errno is None and \
                    _SHORT_WRITE.fullmatch(str(exc)):  # numpy's writers on a full disk
                exc = OSError(errno.ENOSPC, "No space left on device (a write was cut short)")
            if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:  # one line, 507
                raise WriteError.of(exc, index_dir, "write the index in") from None
            raise
        try:
            built = _open_build(index_dir, manifest, settings.hnsw_above, settings.ivf_above,
                                verify=False)  # _write_build hashed them for the manifest
            if settings.backend == "milvus":  # Milvus holds every document before the swap
                from qa import milvus_index

                milvus_index.sync(built, settings)
            with stop.swapping():
                write_text_atomic(index_dir / MANIFEST, manifest.model_dump_json(indent=2))
        except ShuttingDown:  # the new build is no one's: the manifest names the old one
            shutil.rmtree(index_dir / name, ignore_errors=True)
            raise
        keep = {name, previous.folder.name} if previous is not None else {name}
        _remove_old_builds(index_dir, keep=keep)
        if settings.backend == "milvus":  # then forgets the documents the build dropped
            milvus_index.prune(built, settings)
    return _with_backend(built, settings)


@contextlib.contextmanager
def _reading_corpus(settings: Settings) -> Iterator[frozenset[str]]:
    """While a build reads the documents: the uploads it must leave out. It holds the data
    lock meanwhile, as writers do, after settling what a killed writer left (`settle`), so a
    writer waits for the read, never for the embedding; a writer's own rebuild (this thread
    holds the lock) reads its new uploads. While another writer holds the lock, its add is
    in progress: its uploads not in the committed index yet (`unconfirmed`) are left out,
    so this build neither waits for that writer's nor indexes what may never be added (that
    writer's build adds them)."""
    data = settings.documents_dir
    if held_here(data) or not data.is_dir():
        yield frozenset()
        return
    with contextlib.ExitStack() as stack:
        try:
            held = stack.enter_context(data_lock(data, wait=False))
        except (OSError, WriteError) as exc:  # a read-only data folder, a folder in place
            held = False  # of its lock file: what is pending cannot be settled; read on
            if isinstance(exc, WriteError):
                log(f"warning: {exc}")
        if held:
            settle(data, committed_by(settings))
        yield frozenset() if held else unconfirmed(settings)


def unconfirmed(settings: Settings) -> frozenset[str]:
    """The uploads of an add in progress (`pending_ids`) that the committed index does not
    hold: another writer's, not to be indexed (nor seen as new files) until it confirms
    them; none while this thread is the writer (its rebuild is for them)."""
    data = settings.documents_dir
    if held_here(data):
        return frozenset()
    pending = pending_ids(data)
    if not pending:
        return frozenset()
    ids = committed(settings)
    return frozenset(pending - ({i for i, _ in ids.indexed} if ids is not None else set()))


def committed(settings: Settings) -> PreviousIds | None:
    """The ids of the committed index (its manifest on disk, `sticky_ids`); None without a
    readable one."""
    try:
        return sticky_ids(settings, _read_manifest(settings.index_dir))
    except (IndexMissing, IndexCorrupt):
        return None


def committed_by(settings: Settings) -> Judge:
    """What settles a killed change (`settle`): the committed ids of the index that made it,
    named by its mark; this index's for a mark that names none. Another index sharing the
    data folder (QA_DATA) is read with its folder and this data folder."""
    own = settings.index_dir.resolve()

    def judge(owner: Path | None) -> PreviousIds | None:
        if owner is None or owner == own:
            return committed(settings)
        return committed(replace(settings, index_dir=owner, data_dir=settings.documents_dir))

    return judge


def settle_data(settings: Settings) -> None:
    """Before the index is checked: finish or undo what an add or a removal killed mid-way
    left in the data folder (`settle`), so that the check neither drops a document whose
    removal never committed nor indexes one whose add never did (as changed or new files):
    its client was never told either. Skipped while a writer holds the data lock: its
    change is in progress, and it settles its own."""
    data = settings.documents_dir
    if not unsettled(data):
        return
    try:
        with data_lock(data, wait=False) as held:
            if held:
                settle(data, committed_by(settings))
    except (OSError, WriteError) as exc:  # a read-only data folder, a folder in place of
        reason = exc.strerror or exc if isinstance(exc, OSError) else exc  # its lock file:
        log(f"warning: cannot settle an interrupted change in {str(data)!r}: "  # as before
            f"{reason}")


def sticky_ids(settings: Settings, manifest: Manifest) -> PreviousIds:
    """The ids `manifest`'s build gave its files (loaded or skipped), which they keep."""
    entries = [(d.id, d.path) for d in manifest.documents]
    entries += [(s.id, s.path) for s in manifest.skipped]
    return previous_ids(settings, entries, [p.file for p in manifest.problems],
                        [(d.id, d.text_sha256) for d in manifest.documents])


def _with_backend(index: Index, settings: Settings) -> Index:
    """The local build, or (`QA_BACKEND=milvus`) the build searched through Milvus."""
    if settings.backend != "milvus":
        return index
    from qa import milvus_index

    return milvus_index.attach(index, settings)


def _layout(documents: list[Document], previous: Index | None,
            settings: Settings) -> list[_Part]:
    """Reused documents in their previous order, then new and changed ones in name order."""
    reusable: dict[str, int] = {}
    if previous is not None:
        for d, meta in enumerate(previous._doc_meta):
            reusable[f"{meta['id']}\0{meta['text_sha256']}"] = d
    reused, new = [], []
    for doc in documents:
        found = reusable.get(f"{doc.id}\0{doc.text_sha256}")
        if found is not None and previous is not None:
            reused.append(_reused_part(doc, previous, found))
        else:
            new.append(doc)
    reused.sort(key=lambda p: p.previous or 0)
    parts = reused + [_new_part(doc, settings) for doc in new]
    chunk_row = sentence_row = 0
    for part in parts:
        part.chunk_row, part.sentence_row = chunk_row, sentence_row
        chunk_row += len(part.chunks)
        sentence_row += len(part.sentences)
    return parts


@dataclass(frozen=True)
class _BuildInputs:
    """What one build is made from, gathered by `build_index` for `_write_build`: the
    corpus as read (and the files' stat from before reading), what to embed and annotate
    it with, and the previous build whose pieces it reuses."""

    settings: Settings
    embedder: Embedder
    documents: list[Document]
    stats: Mapping[str, os.stat_result]  # each file's stat, taken before it was read
    texts: Mapping[str, os.stat_result]  # each upload's stored text, just read
    skipped: list[SkippedEntry]
    problems: list[ProblemEntry]
    previous: Index | None
    words: WordsArg
    annotate: Annotate | None
    annotator: str | None
    started: float  # `time.perf_counter()` when the build began: its manifest's duration
    stop: BuildStop  # checked before each batch of model work


CHANGED = "0" * 64  # the recorded hash of a file that changed or went while it was indexed


def _sha_if_unchanged(path: Path, before: os.stat_result) -> str:
    """The file's hash, if it is still as it was when the build read it (`before`), else
    CHANGED: the hash of newer bytes beside the old text would make the next check call the
    index fresh (and a file deleted meanwhile failed the whole build)."""
    then = (before.st_ino, before.st_size, before.st_mtime_ns)  # its `stat_key` then
    try:
        if stat_key(path) == then:
            sha = file_sha256(path)
            if stat_key(path) == then:
                return sha
    except OSError:
        pass
    return CHANGED


def _new_matrix(path: Path, shape: tuple[int, int]) -> np.memmap:
    """A float32 `.npy` file of `shape`, memory-mapped for writing, its blocks allocated
    first: a page of a sparse file written into on a full disk kills the process (SIGBUS,
    no error to report); allocated, a full disk is an OSError (ENOSPC) here."""
    matrix = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    try:
        with path.open("r+b") as fh:
            os.posix_fallocate(fh.fileno(), 0, path.stat().st_size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            del matrix
            raise
    return matrix


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
# what numpy's `save`/`tofile` raise when the disk fills under them: no errno, only this
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def _write_build(folder: Path, name: str, build: _BuildInputs) -> Manifest:
    """Write build `name`'s files into `folder`; the manifest that describes them."""
    settings, embedder, previous = build.settings, build.embedder, build.previous
    parts = _layout(build.documents, previous, settings)
    n_chunks = sum(len(p.chunks) for p in parts)
    n_sentences = sum(len(p.sentences) for p in parts)
    new_parts = [p for p in parts if p.previous is None]

    # texts and documents
    doc_records, byte_at = [], 0
    with (folder / "texts.bin").open("wb") as fh:
        for part in parts:
            raw = part.doc.text.encode("utf-8", "surrogatepass")
            fh.write(raw)
            doc_records.append({
                "id": part.doc.id, "title": part.doc.title, "path": part.doc.path,
                "kind": part.doc.kind, "sha256": part.doc.sha256,
                "text_sha256": part.doc.text_sha256,
                "pages": [[p.start, p.end] for p in part.doc.pages],
                "byte_start": byte_at, "byte_end": byte_at + len(raw),
                # what a document list shows: listing the library decodes no text
                "chars": len(part.doc.text), "listed": entry(settings, part.doc).record(),
            })
            byte_at += len(raw)
    (folder / "documents.json").write_text(json.dumps(doc_records, ensure_ascii=False),
                                           encoding="utf-8")

    # passages and sentences
    chunk_table = np.zeros((n_chunks, 4), dtype=np.int64)
    sentence_table = np.zeros((n_sentences, 3), dtype=np.int64)
    for d, part in enumerate(parts):
        rows = slice(part.chunk_row, part.chunk_row + len(part.chunks))
        chunk_table[rows, 0] = d
        chunk_table[rows, 1:] = part.chunks
        srows = slice(part.sentence_row, part.sentence_row + len(part.sentences))
        sentence_table[srows] = part.sentences
        sentence_table[srows, 0] += part.chunk_row
    np.save(folder / "chunks.npy", chunk_table, allow_pickle=False)
    np.save(folder / "sentences.npy", sentence_table, allow_pickle=False)

    # vectors: reused rows copied, new texts embedded in length order straight into place
    new_texts: list[str] = []
    targets: list[tuple[int, int]] = []  # (0 passage | 1 sentence, row)
    mean_passages = settings.passage_vectors == "mean"
    for part in new_parts:
        text = part.doc.text
        for i, (s, e, _) in enumerate(part.chunks):
            if not mean_passages:
                new_texts.append(text[s:e])
                targets.append((0, part.chunk_row + i))
        for i, (_, s, e) in enumerate(part.sentences):
            new_texts.append(text[s:e])
            targets.append((1, part.sentence_row + i))
    precision = previous.manifest_record.document_precision if previous else "float32"

    def embed_documents(texts: list[str]) -> np.ndarray:
        """The embedder's way for document texts (`embed_documents`), else `embed`; looked up
        only when something is embedded (an empty build touches no model)."""
        nonlocal precision
        vectors = np.asarray(getattr(embedder, "embed_documents", embedder.embed)(texts))
        precision = getattr(embedder, "document_precision_used", None) or "float32"
        return vectors

    dim = previous.manifest_record.dimension if previous is not None else 0
    # an empty library needs no model (dimension 0 until a document comes); Milvus
    # collections are made with the model's dimension, empty or not
    if not dim and (n_sentences or settings.backend == "milvus"):
        dim = int(embed_documents(["dimension probe"]).shape[1])
    chunk_matrix = _new_matrix(folder / MATRIX, (n_chunks, dim))
    sentence_matrix = _new_matrix(folder / "sentence_vectors.npy", (n_sentences, dim))
    if previous is not None:
        for part in parts:
            if part.previous is None:
                continue
            c0 = int(previous._first_chunk[part.previous])
            s0 = int(previous._first_sentence[c0])
            nc, ns = len(part.chunks), len(part.sentences)
            chunk_matrix[part.chunk_row : part.chunk_row + nc] = previous.chunk_vectors(
                np.arange(c0, c0 + nc))
            sentence_matrix[part.sentence_row : part.sentence_row + ns] = (
                previous._sentence_matrix[s0 : s0 + ns])
    _embed_into(embed_documents, new_texts, targets, (chunk_matrix, sentence_matrix),
                f"indexing {len(new_parts)} document(s), "
                f"{sum(len(p.chunks) for p in new_parts):,} passages", build.stop)
    del new_texts, targets
    if mean_passages:  # a passage's vector: the normalized mean of its sentences' vectors
        for part in new_parts:
            end = part.sentence_row + len(part.sentences)
            owners = sentence_table[part.sentence_row : end, 0] - part.chunk_row
            firsts = np.searchsorted(owners, np.arange(len(part.chunks)))
            sums = np.add.reduceat(sentence_matrix[part.sentence_row : end].astype(np.float64),
                                   firsts, axis=0)  # a passage's sentences are consecutive
            sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
            chunk_matrix[part.chunk_row : part.chunk_row + len(part.chunks)] = sums
    chunk_matrix.flush()
    sentence_matrix.flush()
    vector_kind = "flat"
    if n_chunks >= settings.hnsw_above:
        wanted = "ivf" if n_chunks >= settings.ivf_above else "hnsw"
        graph = _reuse_graph(previous, parts, chunk_matrix, wanted)
        if graph is None:
            graph = _build_graph(np.asarray(chunk_matrix), settings.ivf_above,
                                 probes=sentence_matrix)
        faiss.write_index(graph, str(folder / GRAPH))
        vector_kind = ann_kind(graph)
    del chunk_matrix, sentence_matrix

    # lexical: term counts of sentences, reused or counted; passages sum their sentences
    build.stop.check()
    counts, terms = _term_counts(parts, previous)
    owner = sentence_table[:, 0]
    membership = sparse.csr_matrix(
        (np.ones(n_sentences, np.int32), (owner, np.arange(n_sentences))),
        shape=(n_chunks, n_sentences))
    chunk_counts = (membership @ counts).tocsr()
    chunk_counts.sort_indices()
    vocabulary = {t: i for i, t in enumerate(terms)}
    for prefix, matrix in (("sentence_tf", counts),):
        for part_name in ("indptr", "indices", "data"):
            np.save(folder / f"{prefix}.{part_name}.npy", getattr(matrix, part_name),
                    allow_pickle=False)
    SparseBM25.of(bm25_weights(counts), vocabulary).save(folder, "sentence_bm25")
    SparseBM25.of(bm25_weights(chunk_counts), vocabulary).save(folder, "chunk_bm25")
    (folder / "terms.txt").write_text("\n".join(terms), encoding="utf-8")
    np.save(folder / "term_vectors.npy",
            _term_vectors(terms, parts, previous, build.words, embedder, dim),
            allow_pickle=False)

    # annotations (optional)
    if build.annotate is not None:
        _write_annotations(folder / "annotations.jsonl", parts, sentence_table, previous,
                           build.annotate, build.annotator, build.stop)

    entries = []
    for part in parts:
        st = build.stats.get(part.doc.path)
        # the file's own hash (for extracted formats `doc.sha256` names the extracted text)
        file_sha = part.doc.sha256 if part.doc.kind in ("txt", "md") or st is None \
            else _sha_if_unchanged(Path(part.doc.path), st)
        stored = build.texts.get(part.doc.id)
        entries.append(DocumentEntry(
            id=part.doc.id, title=part.doc.title, path=part.doc.path, kind=part.doc.kind,
            sha256=file_sha, text_sha256=part.doc.text_sha256,
            extractor=extractor_for(part.doc.kind) if part.doc.kind in EXTRACTED_KINDS else "",
            size=st.st_size if st else -1, mtime_ns=st.st_mtime_ns if st else -1,
            text_size=stored.st_size if stored else -1,
            text_mtime_ns=stored.st_mtime_ns if stored else -1))
    files = {
        p.name: FileEntry(sha256=file_sha256(p), bytes=p.stat().st_size)
        for p in sorted(folder.iterdir()) if p.is_file()
    }
    return Manifest(
        format=FORMAT_VERSION, model=embedder.name, dimension=dim,
        chunking=settings.chunking(), documents=entries, skipped=build.skipped,
        problems=build.problems,
        counts={"documents": len(parts), "chunks": n_chunks, "sentences": n_sentences},
        data=name, files=files, vectors=vector_kind, passage_vectors=settings.passage_vectors,
        annotator=build.annotator if build.annotate is not None else None,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        built_at_ns=time.time_ns(),
        build_seconds=round(time.perf_counter() - build.started, 3),
        embedded={"documents": len(new_parts), "texts": sum(
            len(p.chunks) + len(p.sentences) for p in new_parts)},
        document_precision=precision,
        folders=index_folders(settings),
    )


def _embed_into(embed: Callable[[list[str]], np.ndarray], texts: list[str],
                targets: list[tuple[int, int]], outputs: tuple[np.ndarray, np.ndarray],
                label: str, stop: BuildStop | None = None) -> None:
    """Embed `texts` in batches of similar length (less padding) into their target rows."""
    if not texts:
        return
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with Progress(label, total=len(texts), unit="texts") as bar:
        for begin in range(0, len(order), EMBED_BATCH):
            batch = order[begin : begin + EMBED_BATCH]
            if stop is not None:
                stop.check()
            vectors = embed([texts[i] for i in batch])
            for which in (0, 1):
                picked = [(j, targets[i][1]) for j, i in enumerate(batch)
                          if targets[i][0] == which]
                if picked:
                    src, dst = zip(*picked, strict=True)
                    outputs[which][list(dst)] = vectors[list(src)]
            bar.update(len(batch))


def _reuse_graph(previous: Index | None, parts: list[_Part], matrix: np.ndarray,
                 wanted: str) -> faiss.Index | None:
    """The previous approximate index plus the new rows, when the build only appended
    documents and the size still calls for the same kind (HNSW or IVF)."""
    if previous is None or not isinstance(previous.vectors, FaissVectors):
        return None
    graph = previous.vectors.graph
    reused = [p.previous for p in parts if p.previous is not None]
    if (graph is None or ann_kind(graph) != wanted
            or reused != list(range(len(previous._doc_ids)))):
        return None
    old = len(previous.chunks)
    copy = faiss.read_index(str(previous.folder / GRAPH))
    if copy.ntotal != old:
        return None
    copy.add(np.ascontiguousarray(matrix[old:], dtype=np.float32))
    return copy


def _term_counts(parts: list[_Part], previous: Index | None) -> tuple[sparse.csr_matrix,
                                                                      list[str]]:
    """Sentence term counts over a fresh sorted vocabulary: reused rows are relabelled from
    the previous vocabulary, new sentences tokenized."""
    old_terms: list[str] = previous.terms if previous is not None else []
    old_counts = _load_counts(previous) if previous is not None else None
    new_vocab: dict[str, int] = {}
    # blocks of rows with columns in a combined space: old terms, then new ones
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for part in parts:
        if part.previous is not None and previous is not None and old_counts is not None:
            c0 = int(previous._first_chunk[part.previous])
            s0 = int(previous._first_sentence[c0])
            ptr = old_counts.indptr[s0 : s0 + len(part.sentences) + 1]
            a, b = int(ptr[0]), int(ptr[-1])
            blocks.append((old_counts.data[a:b], old_counts.indices[a:b].astype(np.int64), ptr))
        else:
            text = part.doc.text
            counted = term_counts((text[s:e] for _, s, e in part.sentences), new_vocab)
            blocks.append((counted.data, counted.indices.astype(np.int64) + len(old_terms),
                           counted.indptr))
    names = old_terms + sorted(new_vocab, key=new_vocab.__getitem__)
    data = np.concatenate([b[0] for b in blocks] or [np.zeros(0, np.int32)]).astype(np.int32)
    indices = np.concatenate([b[1] for b in blocks] or [np.zeros(0, np.int64)])
    indptr = [np.zeros(1, np.int64)]
    offset = 0
    for _, _, ptr in blocks:
        indptr.append(np.asarray(ptr[1:], dtype=np.int64) - int(ptr[0]) + offset)
        offset += int(ptr[-1]) - int(ptr[0])
    used = np.unique(indices)
    terms = sorted({names[int(j)] for j in used})
    position = {t: i for i, t in enumerate(terms)}
    mapping = np.full(len(names), -1, dtype=np.int64)
    for j in used:
        mapping[int(j)] = position[names[int(j)]]
    counts = sparse.csr_matrix((data, mapping[indices], np.concatenate(indptr)),
                               shape=(len(np.concatenate(indptr)) - 1, len(terms)))
    counts.sum_duplicates()
    counts.sort_indices()
    return counts, terms


def _load_counts(previous: Index) -> sparse.csr_matrix | None:
    try:
        arrays = [load_array(previous.folder / f"sentence_tf.{n}.npy", mmap=False)
                  for n in ("indptr", "indices", "data")]
        return sparse.csr_matrix((arrays[2], arrays[1], arrays[0]),
                                 shape=(len(arrays[0]) - 1, len(previous.terms)))
    except (OSError, ValueError):
        return None


def _term_vectors(terms: list[str], parts: list[_Part], previous: Index | None,
                  words: WordsArg, embedder: Embedder, dim: int) -> np.ndarray:
    """Vectors of the vocabulary: a term the previous build had keeps its vector."""
    out = np.zeros((len(terms), dim), dtype=np.float32)
    old = previous.vocabulary if previous is not None else {}
    missing, kept, source = [], [], []
    for i, term in enumerate(terms):
        j = old.get(term)
        if j is None:
            missing.append(i)
        else:
            kept.append(i)
            source.append(j)
    if kept and previous is not None:
        out[kept] = np.asarray(previous.term_vectors)[source]
    if missing:
        texts = [part.doc.text[s:e] for part in parts if part.previous is None
                 for _, s, e in part.sentences]
        wanted = [terms[i] for i in missing]
        out[missing] = term_vectors(wanted, surface_forms(texts), _resolve_words(words),
                                    embedder)
    return out


def _write_annotations(path: Path, parts: list[_Part], sentence_table: np.ndarray,
                       previous: Index | None, annotate: Annotate,
                       annotator: str | None, stop: BuildStop | None = None) -> None:
    """One JSON line per sentence: reused for unchanged documents, else from `annotate`,
    called on batches of ANNOTATE_BATCH sentences, across documents (a progress line,
    bounded memory: a 20 MB document is ~130k sentences and minutes of spaCy; and batches
    large enough for the analyzer to share them between processes)."""
    old_lines: list[str] | None = None
    if previous is not None and previous.manifest_record.annotator == annotator:
        old_path = previous.folder / "annotations.jsonl"
        if old_path.is_file():
            old_lines = old_path.read_text(encoding="utf-8").splitlines()

    def reused(part: _Part) -> bool:
        return part.previous is not None and previous is not None and old_lines is not None

    fresh = sum(len(part.sentences) for part in parts if not reused(part))
    pending: list[Sentence] = []  # across documents: a library of small ones fills batches too
    with path.open("w", encoding="utf-8") as fh, \
            Progress("annotating", total=fresh, unit="sentences") as bar:

        def flush() -> None:
            if not pending:
                return
            if stop is not None:
                stop.check()
            values = annotate(pending)
            if len(values) != len(pending):
                raise QAError("the annotator returned a different number of sentences")
            fh.writelines(json.dumps(v, ensure_ascii=False) + "\n" for v in values)
            bar.update(len(pending))
            pending.clear()

        for part in parts:
            if reused(part):
                assert previous is not None and old_lines is not None
                flush()  # lines stay in sentence order
                c0 = int(previous._first_chunk[part.previous])
                s0 = int(previous._first_sentence[c0])
                fh.writelines(line + "\n"
                              for line in old_lines[s0 : s0 + len(part.sentences)])
                continue
            text = part.doc.text
            for i, (_, s, e) in enumerate(part.sentences):
                pending.append(Sentence(part.doc.id, part.sentence_row + i, int(s), int(e),
                                        text[int(s) : int(e)]))
                if len(pending) >= ANNOTATE_BATCH:
                    flush()
        flush()


# The folders a build writes (`build_index`: "build-<time>-<hex>", ".<that>.tmp" while it is
# written): the only folders of the index folder qa removes. An index folder may hold the
# user's own ("qa index --index ." in a project): a "build-tools" there is not ours.
_BUILD_FOLDER = re.compile(r"\.?build-\d{8}T\d{6}-[0-9a-f]{8}(?:\.tmp)?")
_LEFTOVER_BUILD = re.compile(r"\.build-\d{8}T\d{6}-[0-9a-f]{8}\.tmp")


def _clean_leftovers(index_dir: Path) -> None:
    """Remove what a killed build or swap left (called under the build lock)."""
    for path in index_dir.iterdir():
        if path.name.startswith(f".{MANIFEST}.") and path.name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                path.unlink()
        elif path.is_dir() and _LEFTOVER_BUILD.fullmatch(path.name):
            shutil.rmtree(path, ignore_errors=True)


def sweep_index(index_dir: Path) -> None:
    """Remove what a killed build left (`_clean_leftovers`: a `.build-*.tmp` folder may hold
    gigabytes of vectors) when no build is running, so that it does not wait for the next
    build. Skipped while one runs, and where the folder cannot be written."""
    try:
        if not any(p.name.startswith(".") and p.name.endswith(".tmp")
                   for p in index_dir.iterdir()):
            return
        with open_lock_file(index_dir / ".lock") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # a build is running: the folder may be its own
            try:
                _clean_leftovers(index_dir)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    except (OSError, WriteError):  # a FIFO in place of the lock file hung the open
        return


def _remove_old_builds(index_dir: Path, keep: set[str]) -> None:
    """Builds other than the new one and the one it replaced (a reader may be opening that)."""
    for path in index_dir.iterdir():
        if path.is_dir() and path.name not in keep and _BUILD_FOLDER.fullmatch(path.name):
            shutil.rmtree(path, ignore_errors=True)


# -- reading ---------------------------------------------------------------------------------


def _read_manifest(index_dir: Path) -> Manifest:
    path = index_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IndexMissing(f"no index in {str(index_dir)!r}") from None
    except OSError as exc:
        raise IndexCorrupt(f"index manifest {str(path)!r} is unreadable ({exc})") from None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "the top level"
        raise IndexCorrupt(
            f"index manifest {str(path)!r} is unreadable ({where}: {first.get('msg')})"
        ) from None


def _check_fresh(manifest: Manifest, settings: Settings, check_seeds: bool = True) -> None:
    """Raise IndexStale unless the seeds and settings are what the index was built from.

    Files are compared cheaply: same size and mtime means unchanged (unless modified within
    seconds of the build); otherwise their bytes are hashed, so a touched file is fine.
    """
    if manifest.format != FORMAT_VERSION:
        raise IndexStale("the index was written by another version of qa")
    if manifest.model != settings.model:
        raise IndexStale(
            f"the index was built with model {manifest.model!r}, not {settings.model!r}"
        )
    if manifest.chunking != settings.chunking():
        raise IndexStale("the chunking settings changed since the index was built")
    if manifest.passage_vectors != settings.passage_vectors:
        raise IndexStale("the passage-vector setting changed since the index was built")
    if not check_seeds:
        return
    built = {d.id: d for d in manifest.documents}
    skipped = {s.id: s for s in manifest.skipped}  # files the build could not load
    # an upload in progress is no change yet: its writer's build adds it (no reader waits)
    hide = unconfirmed(settings) - set(built) - set(skipped)
    now = corpus_files(settings, sticky_ids(settings, manifest), hide)
    changed = sorted((set(built) | set(skipped)) ^ set(now))
    # an upload folder skipped as unreadable (no metadata: not among the files) and since
    # removed: its problem must go
    changed += [Path(p.file).name for p in manifest.problems
                if Path(p.file).parent == settings.documents_dir and not Path(p.file).exists()]
    said_missing = any(p.reason == SEEDS_MISSING for p in manifest.problems)
    if said_missing == settings.seeds_dir.is_dir():  # made or removed since: say it right
        changed.append(str(settings.seeds_dir))
    racy_after = manifest.built_at_ns - int(RACY_SECONDS * 1e9)
    for doc_id in sorted((set(built) | set(skipped)) & set(now)):
        entry: DocumentEntry | SkippedEntry = built.get(doc_id) or skipped[doc_id]
        if (isinstance(entry, DocumentEntry) and entry.kind in EXTRACTED_KINDS
                and entry.extractor != extractor_for(entry.kind)):
            changed.append(doc_id)  # re-extract: the text (and so offsets) may differ
            continue
        if (isinstance(entry, SkippedEntry)
                and entry.extractor != extractor_for_name(now[doc_id].name)):
            changed.append(doc_id)  # another extractor (or an unknown one) may read it now
            continue
        if _file_changed(now[doc_id], entry.size, entry.mtime_ns, entry.sha256, racy_after):
            changed.append(doc_id)
        elif (isinstance(entry, DocumentEntry) and entry.text_size >= 0
              and _file_changed(now[doc_id].parent / TEXT, entry.text_size,
                                entry.text_mtime_ns, entry.text_sha256, racy_after)):
            changed.append(doc_id)  # its text.txt was edited: loading restores it
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5
                                          else "")
        raise IndexStale(f"the documents changed since the index was built ({shown})")


def _file_changed(path: Path, size: int, mtime_ns: int, sha256: str | None,
                  racy_after: int) -> bool:
    """Did the file change since the build? Same size and mtime (not within seconds of the
    build) means no; otherwise its bytes are hashed, so a touched file is unchanged. A file
    unreadable then (`sha256` None) has changed once it can be read."""
    try:
        st = path.stat()
        if (sha256 is not None and st.st_size == size and st.st_mtime_ns == mtime_ns
                and st.st_mtime_ns < racy_after):
            return False
        return st.st_size != size or file_sha256(path) != sha256
    except OSError:
        return sha256 is not None  # gone or unreadable now; unreadable then too: unchanged


VERIFIED = "verified.json"  # in a build folder: the files' stat when last found intact


def _verify_files(folder: Path, manifest: Manifest) -> None:
    """Every file of the build has its manifest size and SHA-256. Hashing a large index
    costs about a second per 400 MB, at every cold start: after a full check the files' stat
    (size, inode, mtime and ctime in ns, which any write changes) is recorded beside them,
    and a later load that finds the same stat for the same hashes skips re-hashing."""
    stamp: dict[str, list[Any]] = {}
    for fname, expected in manifest.files.items():
        path = folder / fname
        try:
            st = path.stat()
        except FileNotFoundError:
            raise IndexCorrupt(f"index file {str(path)!r} is missing") from None
        if st.st_size != expected.bytes:
            raise IndexCorrupt(f"index file {str(path)!r} is truncated or corrupt")
        stamp[fname] = [expected.sha256, st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    try:
        if json.loads((folder / VERIFIED).read_text(encoding="utf-8")) == stamp:
            return
    except (OSError, ValueError):
        pass
    for fname, expected in manifest.files.items():
        if file_sha256(folder / fname) != expected.sha256:
            raise IndexCorrupt(f"index file {str(folder / fname)!r} is truncated or corrupt")
    newest = max(max(v[3], v[4]) for v in stamp.values()) if stamp else 0
    if time.time_ns() - newest < RACY_SECONDS * 1e9:
        return  # a write in the same clock tick could leave the stat unchanged: no stamp yet
    with contextlib.suppress(OSError):  # a read-only index is simply hashed every time
        write_text_atomic(folder / VERIFIED, json.dumps(stamp))


def _open_build(index_dir: Path, manifest: Manifest, hnsw_above: int = HNSW_ABOVE,
                ivf_above: int = IVF_ABOVE, verify: bool = True) -> Index:
    """The build `manifest` names; `verify=False` only for the build that just wrote and
    hashed these files (hashing them again would cost a second per 400 MB)."""
    folder = index_dir / manifest.data
    if verify:
        _verify_files(folder, manifest)
    try:
        documents = json.loads((folder / "documents.json").read_text(encoding="utf-8"))
        texts = np.memmap(folder / "texts.bin", dtype=np.uint8, mode="r") if (
            folder / "texts.bin").stat().st_size else np.zeros(0, np.uint8)
        chunk_table = load_array(folder / "chunks.npy")
        sentence_table = load_array(folder / "sentences.npy")
        vectors = FaissVectors.load(folder, hnsw_above, ivf_above)
        sentence_matrix = load_array(folder / "sentence_vectors.npy")
        terms_text = (folder / "terms.txt").read_text(encoding="utf-8")
        terms = terms_text.split("\n") if terms_text else []
        vocabulary = {t: i for i, t in enumerate(terms)}
        chunk_lexical = SparseBM25.load(folder, "chunk_bm25", vocabulary, len(chunk_table))
        sentence_lexical = SparseBM25.load(folder, "sentence_bm25", vocabulary,
                                           len(sentence_table))
        term_matrix = load_array(folder / "term_vectors.npy")
    except FileNotFoundError as exc:
        raise IndexCorrupt(f"index file {exc.filename!r} is missing") from None
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise IndexCorrupt(f"index in {str(folder)!r} is unreadable ({exc})") from None
    counts = manifest.counts
    if (len(chunk_table) != counts.get("chunks") or len(vectors) != len(chunk_table)
            or len(sentence_table) != counts.get("sentences")
            or len(sentence_matrix) != len(sentence_table)
            or len(documents) != counts.get("documents")
            or len(term_matrix) != len(terms)):
        raise IndexCorrupt("index files disagree on the number of passages")
    # One question is one small search: extra OpenMP threads only add start-up and contention
    # (measured: 11 ms vs 29 ms for 100k passages on 2 cores).
    faiss.omp_set_num_threads(1)
    return Index(manifest, folder, documents, texts, chunk_table, sentence_table, vectors,
                 sentence_matrix, chunk_lexical, sentence_lexical, terms, term_matrix)


def load_index(settings: Settings, check_seeds: bool = True,
               annotator: str | None = None) -> Index:
    """Load and verify the index; raise IndexMissing, IndexStale or IndexCorrupt if unusable.

    The manifest is read once. If its build folder vanished or changed under us because a
    concurrent build swapped in a new one, the new manifest is read and loaded instead (once).
    `check_seeds=False` skips comparing the seed files (the settings are still checked).
    """
    manifest = _read_manifest(settings.index_dir)
    _check_fresh(manifest, settings, check_seeds)
    if annotator is not None and manifest.annotator != annotator:
        raise IndexStale(f"the index was annotated by {manifest.annotator!r}, not {annotator!r}")
    try:
        return _with_backend(_open_build(settings.index_dir, manifest, settings.hnsw_above,
                                         settings.ivf_above),
                             settings)
    except IndexCorrupt:
        try:
            latest = _read_manifest(settings.index_dir)
        except (IndexMissing, IndexCorrupt):
            raise IndexCorrupt(f"the index in {str(settings.index_dir)!r} is damaged") from None
        if latest.data == manifest.data:
            raise
        _check_fresh(latest, settings, check_seeds)
        return _with_backend(_open_build(settings.index_dir, latest, settings.hnsw_above,
                                         settings.ivf_above),
                             settings)


def open_index(
    settings: Settings,
    embedder: Embedder,
    rebuild: bool = False,
    words: WordsArg = None,
    annotate: Annotate | None = None,
    annotator: str | None = None,
    empty_ok: bool = False,
    stop: BuildStop | None = None,
) -> Index:
    """Load the index, or (re)build it when it is missing, stale or damaged, saying why.

    A (re)build reuses what it can of the previous build. `words` is called only if the
    build meets terms it has no vector for: it may load the model's word table. First an
    add or a removal killed mid-way is finished or undone (`settle_data`), and what a
    killed build left is removed (`sweep_index`).
    """
    settle_data(settings)
    sweep_index(settings.index_dir)
    # A model that failed to load was reported once, as it failed (`failure`): the build
    # below fails with it at once (or needs no model), and a server tried it on every
    # request, each time logging 'building it' and never that it failed.
    quiet = getattr(embedder, "failure", None) is not None
    if not rebuild:
        try:
            return load_index(settings, annotator=annotator)
        except IndexMissing:
            if not quiet:
                log(f"no index yet in {str(settings.index_dir)!r}; building it")
        except (IndexStale, IndexCorrupt) as exc:
            if not quiet:
                log(f"{exc}; rebuilding the index")
    started = time.perf_counter()
    index = build_index(settings, embedder, words, annotate, annotator, empty_ok, stop)
    counts, embedded = index.manifest["counts"], index.manifest["embedded"]
    log(
        f"indexed {counts['documents']} document(s), {counts['chunks']} passages, "
        f"{counts['sentences']} sentences in {time.perf_counter() - started:.1f}s "
        f"({embedded.get('documents', 0)} document(s) embedded, the rest reused)"
    )
    return index
