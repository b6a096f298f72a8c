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
import os
import re
import tempfile
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from qa.atomic import write_text_atomic
from qa.embedding import Embedder
from qa.lexical import STOPWORDS, tokenize
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


def load_word_vectors(embedder: Embedder, cache_dir: Path) -> WordVectors | None:
    """The word table for this embedder's model, from the cache or embedded now (and cached)."""
    words = _vocabulary(embedder)
    if not words:
        return None
    vec_path, words_path = _cache_paths(cache_dir, embedder.name)
    try:
        cached = json.loads(words_path.read_text(encoding="utf-8"))
        index = faiss.read_index(str(vec_path))
        if cached == words and index.ntotal == len(words):
            return WordVectors.of(words, index.reconstruct_n(0, index.ntotal))
    except (OSError, ValueError, RuntimeError):
        pass  # missing or damaged cache: embed again
    log(f"embedding the model's vocabulary ({len(words)} words) for query expansion, once")
    vectors = embedder.embed(words)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".faiss.tmp")
        os.close(fd)
        faiss.write_index(flat, tmp)
        os.replace(tmp, vec_path)
        write_text_atomic(words_path, json.dumps(words))
    except OSError as exc:
        log(f"cannot cache the word table in {str(cache_dir)!r} ({exc.strerror}); going on")
    return WordVectors.of(words, vectors)


def term_vectors(terms: list[str], surfaces: dict[str, str], table: WordVectors | None,
                 embedder: Embedder) -> np.ndarray:
    """Vectors of the index's terms (stems), via their surface words; unknown ones embedded."""
    if table is None:
        return embedder.embed([surfaces.get(t, t) for t in terms]) if terms else np.zeros((0, 1))
    out = np.zeros((len(terms), table.vectors.shape[1]), dtype=np.float32)
    missing = []
    for i, term in enumerate(terms):
        vec = table.vector(surfaces.get(term, term))
        if vec is None:
            missing.append(i)
        else:
            out[i] = vec
    if missing:
        out[missing] = embedder.embed([surfaces.get(terms[i], terms[i]) for i in missing])
    return out


def surface_forms(texts: list[str]) -> dict[str, str]:
    """For each BM25 term (a stem), the first word of the texts that produced it."""
    forms: dict[str, str] = {}
    seen: set[str] = set()
    for text in texts:
        for word in text.split():
            if word in seen:  # a repeated word yields the same terms: tokenize it once
                continue
            seen.add(word)
            for term in tokenize(word):
                forms.setdefault(term, word.strip(".,;:!?\"“”‘’'()[]").lower() or term)
    return forms


def expand(question: str, known: Container[str], table: WordVectors | None, terms: list[str],
           vectors: np.ndarray) -> dict[str, list[tuple[str, float]]]:
    """For each question term the documents never use: [(document term, similarity)]."""
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
        if vec is None:
            continue
        sims = vectors @ vec
        # A word sharing a long prefix is a relative, not a synonym: "officials" is not an
        # "office", "leading" not a "leader". Relatives are already what stemming would catch.
        close = [j for j in np.argsort(-sims)[: PER_WORD + 5]
                 if sims[j] >= MIN_SIMILARITY and terms[j][:4] != term[:4]]
        out[term] = [(terms[j], float(sims[j])) for j in close[:PER_WORD]]
    return out
