"""Query expansion: question words the documents never use → document words that mean
nearly the same, so BM25 can match a paraphrase ("journalist" → "columnist").

In: the question's content words, a table of word vectors, and the vectors of the index's
own vocabulary. Out: extra weighted BM25 terms. The word table embeds, once per model, every
whole word of the model's tokenizer vocabulary (about 21,000 for MiniLM) and is cached on
disk (FAISS + JSON), so a question costs a dictionary lookup and a small matrix product, not
another pass through the model. Words outside the table are simply not expanded. An
embedder without a tokenizer vocabulary (a test fake) turns this stage into a no-op.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.atomic import write_bytes_atomic, write_text_atomic
from qa.config import check_writable_dir
from qa.embedding import Embedder
from qa.errors import QAError
from qa.lexical import STOPWORDS, spelled_like, tokenize
from qa.log import log

MIN_SIMILARITY = 0.45  # measured on the dev set (0.45-0.6 swept); below it, noise creeps in
PER_WORD = 3  # at most this many document words stand in for one question word
_WORD = re.compile(r"[a-z]{3,}")


@dataclass(frozen=True)
class WordVectors:
    """Unit vectors of single words, for looking up words the index does not contain."""

    words: list[str]
    vectors: np.ndarray
    position: dict[str, int]

    @classmethod
    def of(cls, words: list[str], vectors: np.ndarray) -> WordVectors:
        return cls(words, vectors, {w: i for i, w in enumerate(words)})

    def vector(self, word: str) -> np.ndarray | None:
        """The vector of `word` or of a plain inflection of it ("lawmakers" → "lawmaker")."""
        word = word.lower()
        for form in (word, word[:-1] if word.endswith("s") else None,
                     word[:-2] if word.endswith("es") else None,
                     word[:-3] + "y" if word.endswith("ies") else None):
            if form and form in self.position:
                return self.vectors[self.position[form]]
        return None


def _vocabulary(embedder: Embedder) -> list[str]:
    vocab = getattr(embedder, "vocabulary", None)
    if vocab is None:
        return []
    return sorted({w for w in (t.lstrip("▁Ġ").lower() for t in vocab()) if _WORD.fullmatch(w)}
                  - STOPWORDS)


def _cache_paths(cache_dir: Path, model: str) -> tuple[Path, Path]:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("_")[-80:]
    return cache_dir / f"words-{slug}.faiss", cache_dir / f"words-{slug}.json"


def _read_cache(place: Path, model: str, words: list[str]) -> WordVectors | None:
    vec_path, words_path = _cache_paths(place, model)
    try:
        cached = json.loads(words_path.read_text(encoding="utf-8"))
        index = faiss.read_index(str(vec_path))
    except (OSError, ValueError, RuntimeError):
        return None  # missing or damaged cache: embed again
    if cached != words or index.ntotal != len(words):
        return None
    return WordVectors.of(words, index.reconstruct_n(0, index.ntotal))


def _write_cache(place: Path, model: str, words: list[str], vectors: np.ndarray) -> None:
    """Both files atomically, through Python's own writes, so a full disk is a `WriteError`
    naming the file (FAISS's own writer reports it as a C++ assertion)."""
    vec_path, words_path = _cache_paths(place, model)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    write_bytes_atomic(vec_path, faiss.serialize_index(flat).tobytes())
    write_text_atomic(words_path, json.dumps(words))


def _writable_place(places: list[Path]) -> tuple[Path | None, str]:
    """The first folder of `places` that can be written, and why the ones before cannot."""
    reasons: list[str] = []
    for place in places:
        try:
            check_writable_dir(place, "cache folder")
            return place, "; ".join(reasons)
        except QAError as exc:
            reasons.append(str(exc))
    return None, "; ".join(reasons)


def load_word_vectors(embedder: Embedder, cache_dir: Path,
                      fallback_dir: Path | None = None) -> WordVectors | None:
    """The word table for this embedder's model: from the cache folder (or `fallback_dir`,
    where an unwritable cache folder sent it), else embedded now and cached in the first of
    them that can be written, else kept in memory, saying so once."""
    words = _vocabulary(embedder)
    if not words:
        return None
    places = [Path(cache_dir)] + ([Path(fallback_dir)] if fallback_dir is not None else [])
    for place in places:
        table = _read_cache(place, embedder.name, words)
        if table is not None:
            return table
    target, why_not = _writable_place(places)
    if target is None:
        log(f"warning: {why_not}; the word table stays in memory, so every new process "
            f"embeds its {len(words)} words again")
    elif why_not:
        log(f"warning: {why_not}; caching the word table in {str(target)!r} instead")
    log(f"embedding the model's vocabulary ({len(words)} words) for query expansion"
        + (" (once: it is cached)" if target is not None else ""))
    vectors = embedder.embed(words)
    if target is not None:
        try:
            _write_cache(target, embedder.name, words, vectors)
        except QAError as exc:  # full disk or lost permission: the answer does not need it
            log(f"warning: {exc}; the word table stays in memory")
    return WordVectors.of(words, vectors)


def term_vectors(terms: list[str], surfaces: dict[str, str], table: WordVectors | None,
                 embedder: Embedder) -> np.ndarray:
    """Vectors of the index's terms (stems), via their surface words; unknown ones embedded
    (a word once, however many terms it is the surface of: "african-american")."""
    if table is None:
        return _embed_once([surfaces.get(t, t) for t in terms], embedder) if terms \
            else np.zeros((0, 1))
    out = np.zeros((len(terms), table.vectors.shape[1]), dtype=np.float32)
    missing = []
    for i, term in enumerate(terms):
        vec = table.vector(surfaces.get(term, term))
        if vec is None:
            missing.append(i)
        else:
            out[i] = vec
    if missing:
        out[missing] = _embed_once([surfaces.get(terms[i], terms[i]) for i in missing], embedder)
    return out


def _embed_once(words: list[str], embedder: Embedder) -> np.ndarray:
    """`embedder.embed(words)`, each distinct word embedded once."""
    distinct = list(dict.fromkeys(words))
    row = {word: i for i, word in enumerate(distinct)}
    return np.asarray(embedder.embed(distinct))[[row[word] for word in words]]


SURFACE_TERMS = 3  # a run of text without spaces holding more terms is no word ...
SURFACE_CHARS = 40  # ... nor one longer than this: a list of values, a path, a blob
_PIECE = re.compile(r"[^\W_]+")


def surface_forms(texts: list[str]) -> dict[str, str]:
    """For each BM25 term (a stem), the first word of the texts that produced it ("e-mail"
    for "mail"); where a run of text without spaces is no word ("item0,item1,...", a line
    of a CSV file or a log), the piece of it that produced the term ("item1"): the run
    whole, for each of its terms, made the build embed thousands of long strings."""
    forms: dict[str, str] = {}
    seen: set[str] = set()
    for text in texts:
        for word in text.split():
            if word in seen:  # a repeated word yields the same terms: tokenize it once
                continue
            seen.add(word)
            terms = tokenize(word)
            if len(terms) <= SURFACE_TERMS and len(word) <= SURFACE_CHARS:
                for term in terms:
                    forms.setdefault(term, word.strip(".,;:!?\"“”‘’'()[]").lower() or term)
                continue
            for piece in _PIECE.findall(word):
                for term in tokenize(piece):
                    forms.setdefault(term, piece[:SURFACE_CHARS].lower())
    return forms


# A typo of a document word stands in for it ("Halvorson": "Halvorsen"); a stand-in this close
# is the same word, as a name too (`evidence`: it is mentioned).
TYPO_SIMILARITY = 0.9


def expand(question: str, known: Container[str], table: WordVectors | None, terms: list[str],
           vectors: np.ndarray) -> dict[str, list[tuple[str, float]]]:
    """For each question term the documents never use: [(document term, similarity)]; a typo
    of a document term stands for it."""
    if table is None or not terms:
        return {}
    out: dict[str, list[tuple[str, float]]] = {}
    for word in re.findall(r"[A-Za-z][A-Za-z-]*", question):
        tokens = tokenize(word)
        if not tokens:
            continue
        term = tokens[0]
        if term in known or term in out:
            continue
        vec = table.vector(word)
        if vec is None:  # no English word: perhaps a typo of a document's ("Kaddafi"), but
            # "taught" is no typo of "caught"
            if typos := spelled_like(term, known.__contains__):
                out[term] = [(typo, TYPO_SIMILARITY) for typo in typos[:PER_WORD]]
            continue
        sims = vectors @ vec
        # A word sharing a long prefix is a relative, not a synonym: "officials" is not an
        # "office", "leading" not a "leader". Relatives are already what stemming would catch.
        close = [j for j in np.argsort(-sims)[: PER_WORD + 5]
                 if sims[j] >= MIN_SIMILARITY and terms[j][:4] != term[:4]]
        out[term] = [(terms[j], float(sims[j])) for j in close[:PER_WORD]]
    return out
