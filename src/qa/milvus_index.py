"""Milvus backend: dense search and BM25 over passages and sentences run inside Milvus.

In: an index build (`store.Index`) and the settings (`QA_BACKEND=milvus`, `QA_MILVUS_URI`,
`QA_MILVUS_TOKEN`, `QA_MILVUS_COLLECTION`). Out: the same `Index`, whose `VectorIndex`
(passage search) and `LexicalIndex`es (passage and sentence BM25) query Milvus; retrieval
and answering do not know the difference.

Milvus holds three collections per target (prefix + a tag of model and chunking):

    <prefix>_<tag>_passages   pk "<doc_key>:<n>", doc_key, doc_id, n, start, end, content
    <prefix>_<tag>_sentences  (the raw text, payload), terms (qa's tokens, analyzed by
                              Milvus) -> sparse (Milvus's BM25 function), dense (the vector)
    <prefix>_<tag>_documents  doc_key, doc_id, counts: the commit log of the two above

`doc_key` names a document *and* its text (hash of id + text sha256), so a changed
document is a new key. A sync inserts the rows of every document of a build that Milvus
lacks (passages and sentences first, flushed, then their `documents` rows: a crash leaves
no committed half document), before the build's manifest is swapped in; after the swap, rows
of documents the build no longer has are deleted. A reader maps Milvus hits to its own
build's numbers through `doc_key` and drops keys it does not know, so rows a concurrent
build is inserting are invisible to it.

What stays local, and why: the build's tables (offsets), texts (`source[start:end]`),
vectors for exact rescoring of the few candidates (a local memory map beats a round trip),
the vocabulary (idf, query expansion) and annotations. Milvus answers the two questions
that grow with the corpus: which passages are nearest, and which match the words.

BM25 in Milvus: the analyzed field holds qa's own tokens (lower-cased, stemmed, no
stopwords) joined by spaces, under Milvus's `standard` tokenizer, so both engines count the
same terms (Milvus Lite has no `whitespace` tokenizer). Milvus finds the candidates (the
best BM25 matches, within a filter expression when a request is limited to documents);
qa scores them with the build's corpus-wide BM25 (see `MilvusLexical` for why). Milvus
Lite reports BM25 scores negated (best first, most negative); a Milvus server reports them
positive: BM25 is never negative, so the magnitude is the score (`bm25_score`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.config import MILVUS_COLLECTION
from qa.errors import BadSetting, IndexStale, QAError
from qa.lexical import K1, B, Terms, query_weights, rank_matches, tokenize

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.lexical import LexicalIndex
    from qa.store import Index
    from qa.vectors import VectorIndex

MAX_LIMIT = 16_384  # Milvus's largest `limit` (top-k) for one search
LEXICAL_TOP = 1_024  # BM25 matches fetched for an unrestricted query; the rest score 0
INSERT_BATCH = 1_000  # rows per insert call (bounded request size)
MAX_VARCHAR = 65_535  # bytes, Milvus's VARCHAR limit
PAYLOAD_CHARS = 4_000  # raw text kept as payload per row (the offsets are authoritative)
TIMEOUT = 30.0  # seconds per Milvus call

_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def bm25_score(distance: float) -> float:
    """The BM25 score behind a Milvus hit's `distance`: Milvus Lite returns it negated,
    a Milvus server positive; BM25 is never negative, so the magnitude is the score."""
    return abs(float(distance))


def milvus_uri(settings: Settings) -> str:
    """`QA_MILVUS_URI`, or a Milvus Lite file in the index folder."""
    return settings.milvus_uri or str(settings.index_dir / "milvus.db")


def _shown(uri: str) -> str:
    """The URI without any user:password part (never print a secret)."""
    return re.sub(r"//[^/@]*@", "//", uri)


def _fail(uri: str, exc: Exception) -> QAError:
    """One line for a person: where Milvus was expected and what it said."""
    message = getattr(exc, "message", None) or str(exc)
    first = (str(message).strip().splitlines() or [type(exc).__name__])[0]
    hint = ""
    if "://" not in uri and "open local milvus failed" in first.lower():
        # Milvus Lite 3 keeps a folder; a file there (an older Milvus Lite's, or anything
        # else) fails the same way as a folder another process holds
        hint = (" (it is a file, not a Milvus Lite folder: move it away and the index is "
                "copied into a new one)" if Path(uri).is_file()
                else " (a Milvus Lite file serves one process at a time)")
    return QAError(f"cannot use Milvus at {_shown(uri)!r}: {first}{hint}")


def client(settings: Settings) -> Any:
    """One `MilvusClient` per URI and token in this process (Milvus Lite starts a server
    per file: opening it twice would cost a second start, or fail on the file lock)."""
    uri = milvus_uri(settings)
    key = (uri, settings.milvus_token or "")
    with _clients_lock:
        found = _clients.get(key)
        if found is not None:
            return found
        try:
            import logging

            from pymilvus import MilvusClient

            # pymilvus logs every failed call with a traceback, and Milvus Lite a file another
            # process holds ("Failed to start MilvusLite server"): qa reports each as one line
            for name in ("pymilvus", "milvus_lite"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        except ImportError:
            raise QAError("the Milvus backend needs the package pymilvus "
                          "(pip install pymilvus milvus-lite)") from None
        try:
            if "://" not in uri:
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            made = MilvusClient(uri=uri, token=settings.milvus_token or "", timeout=TIMEOUT)
            made.list_collections()  # a connection that cannot answer fails here, not later
        except Exception as exc:  # noqa: BLE001 - pymilvus raises many kinds; all mean "no"
            raise _fail(uri, exc) from None
        _clients[key] = made
        return made


def close_clients() -> None:
    """Close every client this process opened (a Milvus Lite server, which runs as threads
    of this process, stays up until exit and is reused by the next client)."""
    with _clients_lock:
        for made in _clients.values():
            try:
                made.close()
            except Exception:  # noqa: BLE001, S110 - closing is best effort
                pass
        _clients.clear()


def doc_key(doc_id: str, text_sha256: str) -> str:
    """A document and its text as a short hex key (safe in a filter expression)."""
    return hashlib.sha256(f"{doc_id}\0{text_sha256}".encode()).hexdigest()[:32]


def _quoted(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"  # hex keys: nothing to escape


def _fit(text: str, limit: int = MAX_VARCHAR) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (at a character boundary)."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore")


class Target:
    """Where a build lives in Milvus: a client and three collection names."""

    def __init__(self, settings: Settings, manifest: Mapping[str, Any]) -> None:
        prefix = settings.milvus_collection
        if not MILVUS_COLLECTION.match(prefix):
            raise BadSetting("QA_MILVUS_COLLECTION must be a letter or _ then letters, digits "
                             f"or _ (at most 41), got {prefix!r}")
        what = repr((manifest["model"], manifest["dimension"], sorted(manifest["chunking"].items()),
                     manifest.get("passage_vectors")))
        tag = hashlib.sha256(what.encode()).hexdigest()[:10]
        self.uri = milvus_uri(settings)
        self.dim = int(manifest["dimension"])
        self.passages = f"{prefix}_{tag}_passages"
        self.sentences = f"{prefix}_{tag}_sentences"
        self.documents = f"{prefix}_{tag}_documents"
        self.client = client(settings)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A client call whose failure is one line naming the URI."""
        try:
            return getattr(self.client, method)(*args, timeout=TIMEOUT, **kwargs)
        except Exception as exc:  # noqa: BLE001 - see `client`
            raise _fail(self.uri, exc) from None

    # -- collections --------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the collections that do not exist yet."""
        from pymilvus import DataType, Function, FunctionType

        have = set(self.call("list_collections"))
        for name in (self.passages, self.sentences):
            if name in have:
                continue
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=80)
            schema.add_field("doc_key", DataType.VARCHAR, max_length=40)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
            schema.add_field("n", DataType.INT64)  # number within the document
            schema.add_field("start", DataType.INT64)
            schema.add_field("end", DataType.INT64)
            schema.add_field("content", DataType.VARCHAR, max_length=MAX_VARCHAR)
            schema.add_field("terms", DataType.VARCHAR, max_length=MAX_VARCHAR,
                             enable_analyzer=True, analyzer_params={"tokenizer": "standard"})
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_function(Function(name=f"{name}_bm25", function_type=FunctionType.BM25,
                                         input_field_names=["terms"],
                                         output_field_names=["sparse"]))
            params = self.client.prepare_index_params()
            params.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
            params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                             params={"bm25_k1": K1, "bm25_b": B})  # qa's own
            params.add_index("doc_key", index_type="INVERTED")
            self.call("create_collection", name, schema=schema, index_params=params)
        if self.documents not in have:
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("doc_key", DataType.VARCHAR, is_primary=True, max_length=40)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
            schema.add_field("passages", DataType.INT64)
            schema.add_field("sentences", DataType.INT64)
            schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs a vector
            params = self.client.prepare_index_params()
            params.add_index("unused", index_type="FLAT", metric_type="L2")
            self.call("create_collection", self.documents, schema=schema, index_params=params)
        self.load()

    def load(self) -> None:
        """Load the collections for search and query (a restarted Milvus has them released)."""
        for name in (self.passages, self.sentences, self.documents):
            self.call("load_collection", name)

    def committed(self, keys: list[str]) -> set[str]:
        """Which of `keys` Milvus holds completely (their `documents` row exists)."""
        found: set[str] = set()
        for begin in range(0, len(keys), INSERT_BATCH):  # a filter of bounded length
            batch = keys[begin : begin + INSERT_BATCH]
            rows = self.call("query", self.documents, filter=f"doc_key in {_quoted(batch)}",
                             output_fields=["doc_key"], limit=len(batch))
            found.update(str(r["doc_key"]) for r in rows)
        return found

    # -- writing ------------------------------------------------------------------------

    def sync(self, index: Index, sentences: bool = True) -> int:
        """Insert every document of `index` that Milvus lacks; return how many.
        `sentences=False` copies passages only (for benchmarks of passage search: qa itself
        searches sentences in Milvus only for requests of more than `LEXICAL_TOP` rows)."""
        self.ensure()
        layout = Layout.of(index)
        present = self.committed(layout.keys)
        missing = [k for k in layout.keys if k not in present]
        if not missing:
            return 0
        from qa.progress import Progress

        total = sum(layout.chunk_count(k) + sentences * layout.sentence_count(k)
                    for k in missing)
        with Progress(f"copying {len(missing)} document(s) to Milvus", total=total,
                      unit="rows") as bar:
            for key in missing:
                self._insert_document(index, layout, key, bar, sentences)
        self.call("flush", self.passages)
        self.call("flush", self.sentences)
        for begin in range(0, len(missing), INSERT_BATCH):  # the commit: rows exist first
            self.call("insert", self.documents, [{
                "doc_key": key, "doc_id": _fit(layout.doc_ids[layout.position[key]], 1024),
                "passages": layout.chunk_count(key), "sentences": layout.sentence_count(key),
                "unused": [0.0, 0.0]} for key in missing[begin : begin + INSERT_BATCH]])
        self.call("flush", self.documents)
        return len(missing)

    def _insert_document(self, index: Index, layout: Layout, key: str, bar: Any,
                         sentences: bool = True) -> None:
        d = layout.position[key]
        doc_id = layout.doc_ids[d]
        text = index.source(doc_id)
        for name in (self.passages, self.sentences):  # leftovers of a killed sync
            self.call("delete", name, filter=f'doc_key == "{key}"')
        c0, c1 = int(layout.first_chunk[d]), int(layout.first_chunk[d + 1])
        s0, s1 = int(layout.first_sentence[c0]), int(layout.first_sentence[c1])
        chunk_rows = [(i - c0, index._chunk_table[i, 1], index._chunk_table[i, 2])
                      for i in range(c0, c1)]
        sentence_rows = [(i - s0, index._sentence_table[i, 1], index._sentence_table[i, 2])
                         for i in range(s0, s1 if sentences else s0)]
        for name, rows, first, vectors in (
                (self.passages, chunk_rows, c0, index.chunk_vectors),
                (self.sentences, sentence_rows, s0, index.sentence_vectors)):
            for begin in range(0, len(rows), INSERT_BATCH):
                batch = rows[begin : begin + INSERT_BATCH]
                dense = vectors(np.arange(first + begin, first + begin + len(batch)))
                self.call("insert", name, [
                    {"pk": f"{key}:{n}", "doc_key": key, "doc_id": _fit(doc_id, 1024), "n": n,
                     "start": int(s), "end": int(e),
                     "content": _fit(text[int(s) : int(e)][:PAYLOAD_CHARS]),
                     "terms": _fit(" ".join(tokenize(text[int(s) : int(e)]))),
                     "dense": vec.tolist()}
                    for (n, s, e), vec in zip(batch, dense, strict=True)])
                bar.update(len(batch))

    def prune(self, index: Index) -> None:
        """Delete the rows of documents `index` does not hold (removed or changed ones)."""
        keys = Layout.of(index).keys
        keep = f"doc_key not in {_quoted(keys)}" if keys else 'doc_key != ""'
        for name in (self.documents, self.passages, self.sentences):
            self.call("delete", name, filter=keep)


class Layout:
    """A build's documents as Milvus keys, and where each one's rows start."""

    def __init__(self, doc_ids: list[str], keys: list[str], first_chunk: np.ndarray,
                 first_sentence: np.ndarray) -> None:
        self.doc_ids = doc_ids
        self.keys = keys
        self.position = {k: i for i, k in enumerate(keys)}
        self.first_chunk = first_chunk
        self.first_sentence = first_sentence
        self.chunk_doc = np.searchsorted(first_chunk, np.arange(first_chunk[-1]),
                                         side="right") - 1
        n_sentences = int(first_sentence[first_chunk[-1]]) if len(first_chunk) else 0
        self.sentence_doc = np.searchsorted(first_sentence[first_chunk], np.arange(n_sentences),
                                            side="right") - 1

    @classmethod
    def of(cls, index: Index) -> Layout:
        meta = index._doc_meta
        return cls([str(m["id"]) for m in meta],
                   [doc_key(str(m["id"]), str(m["text_sha256"])) for m in meta],
                   np.asarray(index._first_chunk), np.asarray(index._first_sentence))

    def chunk_count(self, key: str) -> int:
        d = self.position[key]
        return int(self.first_chunk[d + 1] - self.first_chunk[d])

    def sentence_count(self, key: str) -> int:
        d = self.position[key]
        return int(self.first_sentence[self.first_chunk[d + 1]]
                   - self.first_sentence[self.first_chunk[d]])

    def first_row(self, level: str, d: int) -> int:
        c = int(self.first_chunk[d])
        return c if level == "passages" else int(self.first_sentence[c])

    def rows(self, level: str, hits: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers of this build for Milvus hits (`doc_key`, `n`), and the hits' positions;
        hits of documents this build does not hold are dropped."""
        rows, kept = [], []
        for j, hit in enumerate(hits):
            entity = hit.get("entity", hit)
            d = self.position.get(str(entity["doc_key"]))
            if d is None:
                continue
            rows.append(self.first_row(level, d) + int(entity["n"]))
            kept.append(j)
        return np.asarray(rows, dtype=np.int64), np.asarray(kept, dtype=np.int64)

    def expression(self, level: str, rows: np.ndarray) -> str:
        """A Milvus filter selecting exactly `rows`: whole documents by `doc_key`, the rest by
        primary key."""
        owner = self.chunk_doc if level == "passages" else self.sentence_doc
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        whole: list[str] = []
        single: list[str] = []
        for d in np.unique(owner[rows]):
            d = int(d)
            first = self.first_row(level, d)
            last = self.first_row(level, d + 1)
            mine = rows[(rows >= first) & (rows < last)]
            if len(mine) == last - first:
                whole.append(self.keys[d])
            else:
                single.extend(f"{self.keys[d]}:{int(r) - first}" for r in mine)
        parts = ([f"doc_key in {_quoted(whole)}"] if whole else []) + (
            [f"pk in {_quoted(single)}"] if single else [])
        return " or ".join(parts)


class MilvusVectors:
    """`VectorIndex` whose search runs in Milvus; vectors of given rows are read locally
    (the build's memory map) for exact rescoring."""

    def __init__(self, target: Target, layout: Layout, local: VectorIndex) -> None:
        self.target, self.layout, self.local = target, layout, local

    @property
    def kind(self) -> str:
        return "milvus"

    def __len__(self) -> int:
        return len(self.local)

    def add(self, vectors: np.ndarray) -> None:
        raise QAError("the Milvus index changes only through a build (qa index / add / remove)")

    def remove(self, ids: np.ndarray) -> None:
        raise QAError("the Milvus index changes only through a build (qa index / add / remove)")

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self.local), MAX_LIMIT)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        result = self.target.call("search", self.target.passages,
                                  data=[np.asarray(vector, dtype=np.float32).tolist()],
                                  anns_field="dense", limit=k, output_fields=["doc_key", "n"],
                                  search_params={"metric_type": "IP"})
        hits = list(result[0]) if result else []
        rows, kept = self.layout.rows("passages", hits)
        scores = np.array([float(hits[j]["distance"]) for j in kept], dtype=np.float32)
        return scores, rows

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return self.local.vectors(ids)

    def save(self, folder: Path) -> list[str]:
        return self.local.save(folder)


class MilvusLexical:
    """`LexicalIndex` whose BM25 *candidates* come from Milvus's BM25 function and whose
    scores are the build's own BM25 over those candidates.

    Why not Milvus's scores: Milvus Lite computes BM25 statistics (idf, average length) per
    flushed segment, so a document added later is scored against its own segment's
    statistics (measured: the same five texts ranked differently when flushed in one
    segment or two). Milvus decides which rows are looked at, as HNSW does for the dense
    side; qa scores them with corpus-wide statistics, so the ranking does not depend on
    how the collection was written. idf and the vocabulary stay local too.
    """

    def __init__(self, target: Target, layout: Layout, level: str, local: LexicalIndex) -> None:
        self.target, self.layout, self.level, self.local = target, layout, level, local
        self.collection = target.passages if level == "passages" else target.sentences

    def __len__(self) -> int:
        return len(self.local)

    def idf(self, term: str) -> float:
        return self.local.idf(term)

    def knows(self, term: str) -> bool:
        return self.local.knows(term)

    def milvus_scores(self, terms: Terms, limit: int | None = None,
                      rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Milvus's own BM25 matches of the terms (within `rows`): row numbers and scores,
        best first, at most `limit`. Query weights are ignored (Milvus weighs query terms
        by their count only)."""
        text = " ".join(sorted(t for t, w in query_weights(terms).items()
                               if w > 0 and self.local.knows(t)))
        limit = min(LEXICAL_TOP if limit is None else limit, MAX_LIMIT,
                    len(self.local) if rows is None else len(rows))
        if not text or limit <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        expression = "" if rows is None else self.layout.expression(self.level, rows)
        result = self.target.call("search", self.collection, data=[text], anns_field="sparse",
                                  limit=limit, filter=expression,
                                  output_fields=["doc_key", "n"],
                                  search_params={"metric_type": "BM25"})
        hits = list(result[0]) if result else []
        found, kept = self.layout.rows(self.level, hits)
        return found, np.array([bm25_score(hits[j]["distance"]) for j in kept], np.float32)

    def top(self, terms: Terms, k: int) -> np.ndarray:
        """The `k` best rows: Milvus's best `k` matches, ranked by the build's own BM25."""
        rows = np.unique(self.milvus_scores(terms, k)[0])
        scores = self.local.scores(terms, rows)
        keep = scores > 0
        return rank_matches(rows[keep], scores[keep], k, len(self.local))

    def scores(self, terms: Terms, rows: np.ndarray | None = None,
               top: int | None = None) -> np.ndarray:
        """BM25 of each row (or of each of `rows`, in their order). Up to `LEXICAL_TOP` rows
        are scored directly; beyond that, Milvus's best `top` (default `LEXICAL_TOP`)
        matches are scored and the rest count 0 (retrieval asks for its pool, 50 to 200)."""
        if rows is not None and len(rows) <= LEXICAL_TOP:
            return self.local.scores(terms, rows)
        if rows is None:
            found = self.milvus_scores(terms, top)[0]
            out = np.zeros(len(self.local), dtype=np.float32)
            out[found] = self.local.scores(terms, found)
            return out
        unique, where = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        found = self.milvus_scores(terms, top, unique)[0]  # a Milvus filter on the rows
        out = np.zeros(len(unique), dtype=np.float32)
        out[np.searchsorted(unique, found)] = self.local.scores(terms, found)
        return out[where]


def sync(index: Index, settings: Settings, sentences: bool = True) -> None:
    """Make Milvus hold every document of this build (called before its manifest swap)."""
    Target(settings, index.manifest).sync(index, sentences)


def prune(index: Index, settings: Settings) -> None:
    """Delete from Milvus the documents this build no longer holds (after the swap)."""
    Target(settings, index.manifest).prune(index)


def attach(index: Index, settings: Settings) -> Index:
    """The build with its passage search and BM25 answered by Milvus; IndexStale if
    Milvus lacks some of its documents (the caller then rebuilds, which syncs)."""
    target = Target(settings, index.manifest)
    layout = Layout.of(index)
    have = set(target.call("list_collections"))
    if not {target.passages, target.sentences, target.documents} <= have:
        raise IndexStale(f"Milvus at {_shown(target.uri)!r} has no collections for this index")
    target.load()
    missing = len(layout.keys) - len(target.committed(layout.keys))
    if missing:
        raise IndexStale(f"Milvus at {_shown(target.uri)!r} lacks {missing} document(s) of "
                         "this index")
    index.vectors = MilvusVectors(target, layout, index.vectors)
    index.chunk_lexical = MilvusLexical(target, layout, "passages", index.chunk_lexical)
    index.sentence_lexical = MilvusLexical(target, layout, "sentences", index.sentence_lexical)
    return index
