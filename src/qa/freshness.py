"""Keeping a long-running server true to its files: which documents of the loaded index
still match their source files, whether a newer build is on disk, and the index to serve
meanwhile.

In: a loaded `Index` and the settings' folders. Out: `Freshness.check()` says whether the
index must be reloaded (a new build id in the manifest, a seed added, changed or removed);
`Freshness.view(index)` is the index less every document whose file no longer holds the
text it was indexed from, so nothing cites text that is gone. Checks are cheap: a `stat`
per file, and a hash only when size or modification time moved.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from qa.lexical import BM25
from qa.store import MANIFEST, Index
from qa.types import Chunk, Sentence

StatKey = tuple[int, int, int]  # (inode, size, mtime in ns)


def manifest_path(index_dir: Path) -> Path:
    return index_dir / MANIFEST


def stat_key(path: Path) -> StatKey | None:
    """What a cheap check compares; None when the file is gone or cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _subset_bm25(bm25: BM25, rows: np.ndarray) -> BM25:
    new_of = {int(old): new for new, old in enumerate(rows)}
    postings = {}
    for term, posting in bm25.postings.items():
        kept = [(new_of[i], tf) for i, tf in posting if i in new_of]
        if kept:
            postings[term] = kept
    return BM25(postings=postings, lengths=[bm25.lengths[int(i)] for i in rows],
                k1=bm25.k1, b=bm25.b)


def without_documents(index: Index, doc_ids: frozenset[str]) -> Index:
    """`index` as if `doc_ids` had never been indexed (passages, vectors and BM25 renumbered)."""
    keep = [c for c in index.chunks if c.doc_id not in doc_ids]
    chunk_rows = np.array([c.index for c in keep], dtype=np.int64)
    sentence_rows: list[int] = []
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for new_index, chunk in enumerate(keep):
        own = []
        for s in chunk.sentences:
            sentence_rows.append(s.index)
            own.append(replace(s, index=len(sentences)))
            sentences.append(own[-1])
        chunks.append(replace(chunk, index=new_index, sentences=tuple(own)))
    rows = np.array(sentence_rows, dtype=np.int64)
    chunk_vectors = np.ascontiguousarray(index.chunk_vectors[chunk_rows], dtype=np.float32)
    search = faiss.IndexFlatIP(index.chunk_vectors.shape[1])
    if len(chunk_vectors):
        search.add(chunk_vectors)
    documents = {k: d for k, d in index.documents.items() if k not in doc_ids}
    manifest = {
        **index.manifest,
        "counts": {"documents": len(documents), "chunks": len(chunks),
                   "sentences": len(sentences)},
        "withheld": sorted(doc_ids),
    }
    return replace(
        index,
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        sentence_chunk=np.array([c.index for c in chunks for _ in c.sentences], dtype=np.int64),
        sentence_at={(s.doc_id, s.start): s.index for s in sentences},
        chunk_vectors=chunk_vectors,
        sentence_vectors=np.ascontiguousarray(index.sentence_vectors[rows], dtype=np.float32),
        chunk_search=search,
        chunk_bm25=_subset_bm25(index.chunk_bm25, chunk_rows),
        sentence_bm25=_subset_bm25(index.sentence_bm25, rows),
        mentions=[index.mentions[int(i)] for i in rows],
        manifest=manifest,
    )


@dataclass
class _Seen:
    """One document's file as last verified: its stat, and whether it held the indexed bytes."""

    path: Path
    key: StatKey | None
    ok: bool


class Freshness:
    """Per loaded index: the verified state of its files and the view to serve."""

    def __init__(self, seeds_dir: Path, index_dir: Path) -> None:
        self.seeds_dir = seeds_dir
        self.index_dir = index_dir
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._view: Index | None = None
        self._seen: dict[str, _Seen] = {}
        self._manifest_key: StatKey | None = None
        self._seeds_key: StatKey | None = None

    @property
    def withheld(self) -> frozenset[str]:
        return frozenset(k for k, s in self._seen.items() if not s.ok)

    def install(self, index: Index) -> bool:
        """Verify every document of a newly loaded `index` by hash; True if one no longer
        matches its file or a newer build is already on disk (so reload again)."""
        seen = {}
        for doc in index.documents.values():
            path = Path(doc.path)
            key = stat_key(path)
            seen[doc.id] = _Seen(path, key, key is not None and file_sha256(path) == doc.sha256)
        with self._lock:
            self._index = index
            self._seen = seen
            self._manifest_key = stat_key(manifest_path(self.index_dir))
            self._seeds_key = stat_key(self.seeds_dir)
            self._view = self._make_view(index)
        newer = _build_id(self.index_dir) not in (None, index.manifest.get("data"))
        return bool(self.withheld) or newer

    def _make_view(self, index: Index) -> Index | None:
        withheld = self.withheld
        return without_documents(index, withheld) if withheld else None

    def view(self, index: Index) -> Index:
        """What to serve for `index`: itself, or itself less the documents that changed."""
        with self._lock:
            if index is self._index and self._view is not None:
                return self._view
        return index

    def is_current(self, doc_ids: set[str]) -> bool:
        """Cheap: do these documents' files still hold what was indexed (stat only)? False
        for a document withheld meanwhile: an answer begun before still quoted it."""
        seen = self._seen
        return all(doc_id not in seen or (seen[doc_id].ok and stat_key(seen[doc_id].path)
                                          == seen[doc_id].key) for doc_id in doc_ids)

    def check(self, reloading: bool = False) -> bool:
        """Look at the files; True when the index should be reloaded. Documents whose file
        changed or vanished are withheld from `view` at once. While `reloading`, a new
        manifest is left for `install` to compare (it is most likely the reload's own)."""
        index = self._index
        if index is None:
            return False
        reload = False
        key = stat_key(manifest_path(self.index_dir))
        if key != self._manifest_key and not reloading:
            self._manifest_key = key
            reload |= _build_id(self.index_dir) not in (None, index.manifest.get("data"))
        key = stat_key(self.seeds_dir)
        if key != self._seeds_key:
            self._seeds_key = key
            reload = True  # a file added, removed or renamed
        seen_now = dict(self._seen)
        changed = False
        for doc_id, seen in seen_now.items():
            key = stat_key(seen.path)
            if key == seen.key:
                continue
            ok = key is not None and file_sha256(seen.path) == index.documents[doc_id].sha256
            seen_now[doc_id] = _Seen(seen.path, key, ok)
            changed |= ok != seen.ok
            reload |= not ok
        with self._lock:
            if self._index is index:  # not replaced by a reload meanwhile
                self._seen = seen_now
                if changed:
                    self._view = self._make_view(index)
        return reload


def _build_id(index_dir: Path) -> str | None:
    try:
        data = json.loads(manifest_path(index_dir).read_text(encoding="utf-8")).get("data")
    except (OSError, ValueError, AttributeError):
        return None
    return str(data) if data is not None else None
