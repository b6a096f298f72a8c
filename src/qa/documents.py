"""Compatibility shim: the load step now lives in `qa.loaders` (one module per format).

`load_document(path)` reads one file (any supported format) and raises `SeedError` if it
cannot; `load_documents(folder)` reads every readable file of a folder, skipping and
reporting the rest, and raises `SeedError` only when none is readable.
"""

from __future__ import annotations

from pathlib import Path

from qa.errors import SeedError
from qa.loaders import SUFFIXES, BadDocument, is_boilerplate, load
from qa.loaders.library import load_seeds, report
from qa.types import Document

__all__ = ["SEED_SUFFIXES", "is_boilerplate", "load_document", "load_documents"]

SEED_SUFFIXES = tuple(sorted(SUFFIXES))
_MAX_BYTES = 1 << 30


def load_document(path: Path) -> Document:
    """One file as a `Document`; a file that cannot be read is a `SeedError`."""
    try:
        return load(path, max_bytes=_MAX_BYTES)
    except BadDocument as exc:
        raise SeedError(f"seed file {str(path)!r}: {str(exc).removeprefix(path.name + ': ')}"
                        ) from None


def load_documents(seeds_dir: Path) -> list[Document]:
    """Every readable document of `seeds_dir`, in file-name order."""
    if not seeds_dir.is_dir():
        raise SeedError(f"seeds folder {str(seeds_dir)!r} does not exist")
    documents, problems = load_seeds(seeds_dir, _MAX_BYTES)
    report(problems)
    if not documents:
        raise SeedError(f"seeds folder {str(seeds_dir)!r} holds no readable documents")
    return documents
