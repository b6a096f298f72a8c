"""The corpus: shipped seeds plus uploaded documents kept in the data folder.

In: settings (seeds folder, data folder). Out: `Corpus(documents, problems)`, where a file
that cannot be read is a `Problem(file, reason)`, reported once on stderr and skipped, so
one bad document never blocks the rest.

The data folder holds one sub-folder per uploaded document, named by its id:

    data/<id>/original.<ext>   the uploaded file, unchanged
    data/<id>/text.txt         the text every citation of it points into
    data/<id>/meta.json        id, title, kind, name, original_name, size, pages, added_at,
                               file_sha256, extractor (library + version), text_sha256

`name` is the sanitised name the id comes from (`annual-report-final.pdf`); `original_name`
the name it was uploaded as (`Annual Report (final).pdf`), cleaned for display only
(`display_name`) and never used as a path. Uploads stored before it was kept have none.

A document is re-extracted when its file or the extractor version changes; if the text
changes too, its `Document.sha256` changes and the index re-indexes it. A `text.txt` that no
longer matches its `text_sha256` (edited by hand) is restored from the original: the
original is the truth, and citations index the text extracted from it. A new document is
written to a hidden temporary folder and renamed into place, so a crash never leaves half
of one.
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
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from qa.atomic import open_lock_file, write_chunks_atomic, write_text_atomic
from qa.config import Settings
from qa.errors import BadSetting, NothingToIndex, QAError, SeedError, WriteError, quoted
from qa.loaders import (
    SUFFIXES,
    BadDocument,
    Extracted,
    document_of,
    extract,
    read_capped,
)
from qa.log import log
from qa.types import Document, DocumentInfo

SEEDS_MISSING = "the seeds folder does not exist"  # a build's problem (see `_load_seeds`)
SUB_FOLDER = ("a folder: qa reads only the files in the seeds folder itself (move its files "
              "there, or add them with 'qa add')")
META = "meta.json"
UPLOAD_CAP = "QA_MAX_UPLOAD_BYTES"  # the setting of `settings.max_upload_bytes`
TEXT = "text.txt"
MAX_ID = 80
MAX_NAME = 255  # characters of an original file name kept for display
_ID_CHARS = re.compile(r"[^\w.-]+")  # not a letter or digit (any script), nor `._-`
_STORED_ID = re.compile(r"^[^\W_A-Z](?:[^\WA-Z]|[.-]){0,79}$")


@dataclass(frozen=True)
class Problem:
    """A file the corpus skipped, and why (one line)."""

    file: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    problems: list[Problem] = field(default_factory=list)
    uploaded: frozenset[str] = frozenset()  # ids of documents in the data folder


class UnknownDocument(QAError):
    """No document has this id (or it is a shipped seed, which cannot be removed)."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


_reported: set[Problem] = set()


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters (terminal escapes) shown as `\\xNN`, for logs."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def reported() -> frozenset[Problem]:
    """The problems `report` has logged in this process so far."""
    return frozenset(_reported)


def report(problems: Sequence[Problem]) -> None:
    """Log each problem on stderr once per process (control characters escaped)."""
    for problem in problems:
        if problem not in _reported:
            _reported.add(problem)
            log(printable(f"skipped {problem.file}: {problem.reason}"))


def _id_char(char: str) -> str:
    """One character of a name as it is in an id: its ASCII letters where it has them
    (é → e), else itself if it is a letter or digit (日 stays), else nothing (a mark)
    or a separator."""
    folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    if folded:
        return folded
    if unicodedata.category(char).startswith("M"):
        return ""
    return char if char.isalnum() else "-"


def safe_id(name: str) -> str:
    """A document id from an uploaded file name: lower-case letters and digits (accents
    folded to ASCII, other scripts kept, so `日本語.txt` is `日本語`), `.-_`, no folders,
    no leading dot; never empty."""
    base = PurePosixPath(name.replace("\\", "/")).name
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    letters = "".join(map(_id_char, unicodedata.normalize("NFC", stem)))
    cleaned = _ID_CHARS.sub("-", letters.lower()).strip("-._")[:MAX_ID].strip("-._")
    return cleaned or "document"


# Not shown: control characters, lone surrogates (a file name that is not UTF-8), zero-width
# characters and bidirectional controls (which make `gpj.exe` read as `exe.jpg`).
_UNSHOWN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u200b-\u200f\u202a-\u202e"
                      r"\u2060-\u2069\ufeff]")


def display_name(name: str) -> str:
    """An uploaded file's name as people may see it, never a path: its last part (either
    slash), NFC, without characters that hide or disguise text, runs of spaces as one, at
    most MAX_NAME characters (the stem cut); "" when nothing is left."""
    base = PurePosixPath(name.replace("\\", "/")).name
    shown = " ".join(_UNSHOWN.sub("", unicodedata.normalize("NFC", base)).split())
    if len(shown) > MAX_NAME:  # cut the stem, keep the type
        suffix = Path(shown).suffix[:16]
        shown = shown[:MAX_NAME - len(suffix) - 1].rstrip() + "…" + suffix
    return shown


def unique_id(wanted: str, taken: set[str] | frozenset[str]) -> str:
    """`wanted`, or `wanted-2`, `wanted-3`... whichever is first not in `taken`."""
    if wanted not in taken:
        return wanted
    for n in range(2, 100_000):
        candidate = f"{wanted[: MAX_ID - 6]}-{n}"
        if candidate not in taken:
            return candidate
    raise QAError("too many documents share one name")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_sha256(text: str) -> str:
    """The hash of a document's text (`Document.text_sha256`)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# -- reading ---------------------------------------------------------------------------------


def _entry_problem(path: Path) -> str | None:
    """Why a folder entry cannot be read as a file (dangling link, loop, not a file)."""
    try:
        if path.is_symlink():
            path.resolve(strict=True)
        if not path.is_file():
            return None if path.is_dir() else "not a regular file"
    except RuntimeError:
        return "symbolic link loop"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT:
            return "dangling symbolic link (its target does not exist)"
        return f"cannot read: {exc.strerror}"
    return ""


def _utf8(name: str) -> bool:
    """Is a file name valid UTF-8 (no byte decoded as a lone surrogate)?"""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(path: Path) -> str:
    """`path` as text, a byte of its name that is not UTF-8 shown as `\\xNN`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class PreviousIds:
    """The ids the last build gave (from its manifest): each seed file's, by file name, and
    the uploads' ones, which a new seed file must not take."""

    seeds: Mapping[str, str] = field(default_factory=dict)
    uploads: frozenset[str] = frozenset()
    legacy: bool = False  # it read uploads from `settings.legacy_documents_dir` (or said so)
    # what it indexed (not skipped), as (id, text SHA-256): of two documents with one text,
    # the one that had it in the last build stays (`_without_copies`)
    indexed: frozenset[tuple[str, str]] = frozenset()
    # ids of removed uploads (`retired_ids`), which no new file may take
    retired: frozenset[str] = frozenset()


def previous_ids(settings: Settings, entries: Iterable[tuple[str, str]],
                 problem_files: Iterable[str] = (),
                 indexed: Iterable[tuple[str, str]] = ()) -> PreviousIds:
    """Split the last build's (id, path) pairs into seeds (a file of the seeds folder) and
    uploads (a file of a folder in the data folder); folders are compared resolved, once each,
    so a relative and an absolute seeds path name the same files. `legacy`: it read uploads
    from `settings.legacy_documents_dir`, or named that folder among its problems
    (`legacy_problem`), which keeps saying so build after build. `indexed`: the documents it
    indexed, as (id, text SHA-256). `retired`: the data folder's removed ids, read now."""
    resolved: dict[str, Path] = {}

    def where(folder: Path) -> Path:
        key = str(folder)
        if key not in resolved:
            resolved[key] = folder.resolve()
        return resolved[key]

    seeds_dir, data_dir = where(settings.seeds_dir), where(settings.documents_dir)
    legacy_dir = settings.legacy_documents_dir
    old_dir = where(legacy_dir) if legacy_dir is not None else None
    seeds: dict[str, str] = {}
    uploads: set[str] = set()
    legacy = False
    for doc_id, path in entries:
        file = Path(path)
        if where(file.parent) == seeds_dir:
            seeds[file.name] = doc_id
        elif where(file.parent.parent) == data_dir:
            uploads.add(doc_id)
        elif where(file.parent.parent) == old_dir:
            legacy = True
    if old_dir is not None and any(where(Path(f)) == old_dir for f in problem_files):
        legacy = True
    return PreviousIds(seeds, frozenset(uploads), legacy, frozenset(indexed),
                       retired_ids(settings.documents_dir))


def seed_files(seeds_dir: Path, previous: PreviousIds | None = None
               ) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """The files of the seeds folder that may be documents, each with its id, in file-name
    order, and the entries that cannot be (with why).

    Ids are sticky, so that citations and links by id keep working: a file the last build
    named (`previous`) keeps its id while it is there. A new file gets its stem when no
    other file keeps it and no upload had it, else `stem-suffix` (numbered if need be), in
    file-name order; a new file never takes the id of a removed upload (`previous.retired`),
    so a citation saved before the removal never points into it. Without `previous` (a fresh
    index) that rule alone names every file:
    `x.md` and `x.txt` are `x` and `x-txt`, readable or not, so loading and the cheap
    staleness check (`corpus_files`), given the same `previous`, always name a file alike."""
    paths: list[Path] = []
    problems: list[Problem] = []
    for path in sorted(seeds_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if not _utf8(path.name):  # a path no manifest, log or JSON reply can hold as it is
            problems.append(Problem(_shown(path), "its name is not UTF-8 (written in another "
                                                  "encoding?): rename it to index it"))
            continue
        trouble = _entry_problem(path)
        if trouble is None:  # a sub-folder: its documents would be missing without a word
            problems.append(Problem(str(path), SUB_FOLDER))
            continue
        if trouble:
            problems.append(Problem(str(path), trouble))
            continue
        if path.suffix.lower() not in SUFFIXES:
            problems.append(Problem(str(path), f"unsupported file type {path.suffix!r}"))
            continue
        paths.append(path)
    previous = previous or PreviousIds()
    taken = set(previous.uploads)
    ids: dict[Path, str] = {}
    for path in paths:
        kept = previous.seeds.get(path.name)
        if kept is not None and kept not in taken:
            ids[path] = kept
            taken.add(kept)
    taken |= previous.retired  # a kept id is never retired; a new one must not be one
    for path in paths:
        if path not in ids:
            doc_id = path.stem
            if doc_id in taken:
                doc_id = unique_id(f"{path.stem}-{path.suffix.lstrip('.').lower()}", taken)
            ids[path] = doc_id
            taken.add(doc_id)
    return [(ids[path], path) for path in paths], problems


def load_seeds(seeds_dir: Path, max_bytes: int) -> tuple[list[Document], list[Problem]]:
    """Every readable document of the seeds folder, in file-name order, and the problems
    (ids by the fresh-index rule of `seed_files`)."""
    _, documents, problems = _load_seeds(seeds_dir, max_bytes)
    return documents, problems


def _load_seeds(seeds_dir: Path, max_bytes: int, previous: PreviousIds | None = None,
                setting: str = "") -> tuple[list[tuple[str, Path]], list[Document], list[Problem]]:
    """`load_seeds`, with the seed files it tried (`seed_files`), readable or not; a file
    over `max_bytes` is a problem naming `setting` (the setting of the cap), if given."""
    if not seeds_dir.is_dir():
        return [], [], [Problem(str(seeds_dir), SEEDS_MISSING)]
    documents: list[Document] = []
    files, problems = seed_files(seeds_dir, previous)
    for doc_id, path in files:
        try:
            raw = read_capped(path, max_bytes, setting)
            loader, extracted = extract(raw, path.name)
        except BadDocument as exc:
            problems.append(Problem(str(path), str(exc).removeprefix(f"{path.name}: ")))
            continue
        if doc_id != path.stem:
            log(f"{path.name} is {doc_id!r}: another document had the id {path.stem!r} "
                "when it was first indexed")
        documents.append(document_of(doc_id, str(path), loader.kind, extracted, _sha256(raw)))
    return files, documents, problems


def _stored_original(folder: Path, meta: dict[str, Any]) -> Path:
    name = str(meta.get("file", ""))
    if "/" in name or not name.startswith("original.") or f".{name.split('.', 1)[1]}" \
            not in SUFFIXES:
        raise BadDocument(f"metadata names an unexpected file {name!r}")
    return folder / name


def _load_stored(folder: Path, max_bytes: int) -> Document:
    """One uploaded document: its stored text when still valid, else a fresh extraction."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("id") != folder.name:
            raise ValueError("the metadata does not match its folder")
    except (OSError, ValueError) as exc:
        raise BadDocument(f"unreadable metadata ({exc})") from None
    original = _stored_original(folder, meta)
    raw = read_capped(original, max(max_bytes, int(meta.get("size", 0))))
    file_sha = _sha256(raw)
    loader = SUFFIXES[original.suffix.lower()]
    text: str | None = None
    if meta.get("file_sha256") != file_sha:
        why = "its original file changed"
    elif meta.get("extractor") != loader.extractor:
        why = f"the extractor changed ({meta.get('extractor')} -> {loader.extractor})"
    else:
        why = ""
        with contextlib.suppress(OSError, UnicodeDecodeError):
            stored = (folder / TEXT).read_bytes().decode("utf-8")  # no newline translation
            if text_sha256(stored) == meta.get("text_sha256"):
                text = stored
    if text is not None:
        pages = tuple((int(s), int(e)) for s, e in meta.get("pages", []))
        extracted = Extracted(text=text, title=str(meta.get("title", folder.name)), pages=pages)
        return document_of(folder.name, str(original), str(meta["kind"]), extracted, file_sha)
    loader, extracted = extract(raw, str(meta.get("name", original.name)))
    changed = text_sha256(extracted.text) != meta.get("text_sha256")
    if not why:  # the original is the truth: a hand-edited copy of its text is replaced
        log(f"{folder.name}: its {TEXT} no longer held the text extracted from its original "
            "(edited by hand?); extracting it again"
            + ("; the text changed: it will be re-indexed" if changed else ""))
    elif changed:
        log(f"{folder.name}: {why}, and so did its text; it will be re-indexed")
    fresh = _meta(folder.name, str(meta.get("name", original.name)), len(raw), file_sha,
                  loader.kind, loader.extractor, extracted, added_at=str(meta.get("added_at", "")),
                  original_name=_original_name(meta))
    try:  # best effort: a read-only data folder still serves the fresh extraction
        write_text_atomic(folder / TEXT, extracted.text)
        write_text_atomic(folder / META, json.dumps(fresh, ensure_ascii=False, indent=1))
    except (OSError, WriteError) as exc:
        log(f"cannot update {str(folder)!r}: {exc}")
    return document_of(folder.name, str(original), loader.kind, extracted, file_sha)


def stored_folders(data_dir: Path, hide: frozenset[str] = frozenset()) -> list[Path]:
    """The document folders of the data folder, by name, less those named in `hide`."""
    if not data_dir.is_dir():
        return []
    return sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.is_symlink()
                  and _STORED_ID.match(p.name) and p.name not in hide)


def legacy_problem(settings: Settings, previous: PreviousIds | None) -> Problem | None:
    """When this index's builds read uploads from the folder every index in a folder used
    to share (`data` beside it) and that folder still holds uploads: a problem naming it,
    saying that they are no longer read and how to keep them. Recorded with the build's
    skipped files, it is on stderr at the upgrade and stays in `qa list`, `/healthz` and the
    web chat's skipped files (and in every later build) until the uploads are moved or
    named with QA_DATA. Moves nothing; None for a new index, whatever that folder holds."""
    legacy, data = settings.legacy_documents_dir, settings.documents_dir
    if legacy is None or previous is None or not previous.legacy or not stored_folders(legacy):
        return None
    return Problem(str(legacy), f"its uploads are no longer read with the index "
                                f"{str(settings.index_dir)!r} (its data folder is now "
                                f"{str(data)!r}); to keep using them, set QA_DATA (or --data) "
                                f"to {str(legacy)!r}")


def corpus_files(settings: Settings, previous: PreviousIds | None = None,
                 hide: frozenset[str] = frozenset()) -> dict[str, Path]:
    """Cheap: each id a document may have and the file it would come from (seeds named as
    `seed_files` names them; uploads by their stored metadata), without reading or
    extracting anything, for staleness checks. Every document `load_corpus` yields (given
    the same `previous`) is here under the same id; a file here that it skipped (empty,
    corrupt) is one the build records as skipped. A missing seeds folder holds no files (the
    uploads are the library; loading reports it as a problem); a seeds path that is a file
    fails at once. Uploads in `hide` (an add in progress: `pending_ids`) are left out."""
    files: dict[str, Path] = {}
    if settings.seeds_dir.is_dir():
        files.update(seed_files(settings.seeds_dir, previous)[0])
    elif settings.seeds_dir.exists():
        raise SeedError(f"seeds folder {str(settings.seeds_dir)!r} is not a folder")
    for folder in stored_folders(settings.documents_dir, hide):
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
            original = _stored_original(folder, meta)
        except (OSError, ValueError, AttributeError, BadDocument):
            continue
        if original.is_file():
            files.setdefault(folder.name, original)
    return files


def load_corpus(settings: Settings, previous: PreviousIds | None = None,
                empty_ok: bool = False, hide: frozenset[str] = frozenset()) -> Corpus:
    """Seeds and uploaded documents, with the problems found (reported once on stderr);
    seed ids as `seed_files` gives them after the build `previous` describes. No file at
    all is an empty library (nothing added yet, every upload removed, no seeds folder), not
    an error; files of which none can be read raise `NothingToIndex` naming why (a build
    then keeps the index it has: one broken file must not empty a library), unless
    `empty_ok` (the user removed the last readable document). Uploads in `hide` (another
    writer's add in progress) are left out, as if not stored yet."""
    seeds, documents, problems = _load_seeds(settings.seeds_dir, settings.max_upload_bytes,
                                             previous, UPLOAD_CAP)
    # a seed skipped as unreadable still holds its id against uploads, as in `corpus_files`
    taken = {doc_id for doc_id, _ in seeds}
    uploaded = set()
    folders = stored_folders(settings.documents_dir, hide)
    for folder in folders:
        try:
            document = _load_stored(folder, settings.max_upload_bytes)
        except BadDocument as exc:
            problems.append(Problem(str(folder), str(exc)))
            continue
        if document.id in taken:
            problems.append(Problem(str(folder), f"a seed file has the id {document.id!r}"))
            continue
        taken.add(document.id)
        uploaded.add(document.id)
        documents.append(document)
    documents = _without_copies(documents, uploaded, problems,
                                previous.indexed if previous is not None else frozenset())
    legacy = legacy_problem(settings, previous)
    if legacy is not None:
        problems.append(legacy)
    report(problems)
    if not documents and (seeds or folders) and not empty_ok:
        reasons = "; ".join(f"{Path(p.file).name}: {p.reason}" for p in problems[:3])
        raise NothingToIndex(f"no documents to index in {str(settings.seeds_dir)!r}"
                             + (f" ({reasons})" if reasons else ""))
    return Corpus(documents, problems, frozenset(uploaded))


def _without_copies(documents: list[Document], uploaded: set[str],
                    problems: list[Problem],
                    indexed: frozenset[tuple[str, str]] = frozenset()) -> list[Document]:
    """`documents` (in their order) less any whose text another one has, each named in
    `problems` with the document it copies: a second copy would only have answers quote the
    same sentence twice. The one kept is the earlier or the explicit one: one the last build
    indexed with this text (`indexed`), so no id cited so far goes; then an upload (the user
    added it; a seed file added, or edited, later to its text is the copy); then of seed
    files the one whose name comes first in stem order, so a name comes before its longer
    copies (`report.txt` before `report-copy.txt` and `report (1).txt`; but also `copy.txt`
    before `report.txt`). Uploads are refused as copies on the way in
    (`copies`); two seed files, or a seed file added later with an upload's text, are found
    here. A copy is indexed again once its text (or the original's) changes."""
    def rank(i: int) -> tuple[bool, bool, str, str, int]:
        document = documents[i]
        path = Path(document.path)
        return ((document.id, document.text_sha256) not in indexed,
                document.id not in uploaded, path.stem, path.name, i)

    first: dict[str, Document] = {}
    for i in sorted(range(len(documents)), key=rank):
        first.setdefault(documents[i].text_sha256, documents[i])
    kept = []
    for document in documents:
        original = first[document.text_sha256]
        if original is document:
            kept.append(document)
            continue
        upload = document.id in uploaded
        where = str(Path(document.path).parent) if upload else document.path
        named = "" if original.id in uploaded else f" ({Path(original.path).name})"
        problems.append(Problem(where, f"the same text as the document {original.id!r}"
                                       f"{named}; not indexed twice"))
        uploaded.discard(document.id)
    return kept


# -- writing ---------------------------------------------------------------------------------


def _original_name(meta: Mapping[str, Any]) -> str | None:
    """The upload's original name from its metadata; None for one stored before it was kept
    (or a value that is not a name)."""
    value = meta.get("original_name")
    return (display_name(value) or None) if isinstance(value, str) else None


def _meta(doc_id: str, name: str, size: int, file_sha256: str, kind: str, extractor: str,
          extracted: Extracted, added_at: str = "",
          original_name: str | None = None) -> dict[str, Any]:
    suffix = Path(name).suffix.lower()
    kept = {"original_name": original_name} if original_name else {}
    return {
        "id": doc_id,
        "title": extracted.title,
        "kind": kind,
        "name": name,
        **kept,
        "file": f"original{suffix}",
        "size": size,
        "pages": [list(p) for p in extracted.pages],
        "chars": len(extracted.text),
        "added_at": added_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "file_sha256": file_sha256,
        "extractor": extractor,
        "text_sha256": text_sha256(extracted.text),
    }


def read_meta(settings: Settings, doc_id: str) -> dict[str, Any] | None:
    """The metadata record of an uploaded document, or None."""
    if not _STORED_ID.match(doc_id):
        return None
    try:
        meta = json.loads((settings.documents_dir / doc_id / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


@dataclass(frozen=True)
class Prepared:
    """A checked file, ready to be written into the data folder."""

    name: str  # the sanitised original file name, the id's source
    source: Path  # the file, read again (and checked against `sha256`) when it is stored
    size: int
    sha256: str  # of the bytes `extracted` came from
    kind: str
    extractor: str
    extracted: Extracted
    original_name: str = ""  # the name it came with, for display only (`display_name`)
    label: str = ""  # the path given (`qa add`), or "" for an upload: its name is `name`

    @property
    def called(self) -> str:
        """What refusals call it: `qa add a/x.txt b/x.txt` adds two x.txt."""
        return self.label or self.name


def prepare(path: Path, name: str | None, max_bytes: int,
            max_chars: int | None = None, setting: str = "") -> Prepared:
    """Read and extract one file, raising `BadDocument` with a one-line reason: 413 for
    more than `max_bytes` bytes (naming `setting`, the setting of that cap, if given), or
    (if given) more than `max_chars` characters of text."""
    shown = PurePosixPath((name or path.name).replace("\\", "/")).name or "upload"
    # a local file is named by the path given: `qa add a/x.txt b/x.txt` has two x.txt
    label = "" if name is not None else str(path)
    try:
        raw = read_capped(path, max_bytes, setting)
        loader, extracted = extract(raw, shown)
    except BadDocument as exc:
        if not label:
            raise
        said = str(exc)
        for prefix in (f"{path.name}: ", f"{shown}: "):
            said = said.removeprefix(prefix)
        raise BadDocument(f"{label}: {said}", exc.status) from None
    if max_chars is not None and len(extracted.text) > max_chars:
        raise BadDocument(
            f"{label or shown}: the text is too long to index here ({len(extracted.text):,} "
            f"characters; at most {max_chars:,}, QA_MAX_UPLOAD_CHARS)", status=413)
    clean = safe_id(shown) + Path(shown).suffix.lower()
    # the bytes are not kept: an upload of many large files holds their text, not them
    return Prepared(clean, path, len(raw), _sha256(raw), loader.kind, loader.extractor,
                    extracted, display_name(name or path.name), label)


def check_total(item: Prepared, before: int, max_chars: int) -> None:
    """Refuse (413) `item` if its text and the `before` characters of the files before it
    in the same upload are over `max_chars`: the cap bounds one upload's indexing time."""
    chars = len(item.extracted.text)
    if before + chars > max_chars:
        raise BadDocument(
            f"{item.called}: too much text for one upload ({chars:,} characters after "
            f"{before:,} in the files before it; at most {max_chars:,}, QA_MAX_UPLOAD_CHARS): "
            "send it on its own", status=413)


def copies(settings: Settings, prepared: Sequence[Prepared],
           indexed: Mapping[str, str]) -> list[BadDocument | None]:
    """For each prepared file, a 409 naming the document that already has its text, or
    None: a second copy would only have answers quote the same sentence twice. Compared
    with `indexed` (text SHA-256 -> document id), the uploads in the data folder (another
    process may have added one) and the files before it in `prepared`. The one content
    check of `qa add`, the web chat and `POST /api/documents`; call it under `data_lock`."""
    known = {sha: f"the document {doc_id!r}" for sha, doc_id in indexed.items()}
    for folder in stored_folders(settings.documents_dir):
        meta = read_meta(settings, folder.name)
        if meta is not None and isinstance(meta.get("text_sha256"), str):
            known.setdefault(meta["text_sha256"], f"the document {folder.name!r}")
    labels = [item.called for item in prepared]
    refusals: list[BadDocument | None] = []
    for i, item in enumerate(prepared):
        sha = text_sha256(item.extracted.text)
        where = known.get(sha)
        refusals.append(None if where is None else BadDocument(
            f"{labels[i]}: the same text as {where}; not added again", status=409))
        # two uploads of one name are told apart by their place in the upload
        place = f" (file {i + 1} of {len(prepared)})" if labels.count(labels[i]) > 1 else ""
        known.setdefault(sha, f"{labels[i]}{place}, also being added")
    return refusals


def check_data_placement(settings: Settings) -> None:
    """BadSetting if the data folder is (in) the seeds folder, or the index folder is (in)
    the data folder. Checked before any command reads or builds anything (`preflight`): an
    add built an index reading the seeds folder as the uploads, or the index folder as an
    upload, before it refused, and a read never refused."""
    data = settings.documents_dir
    seeds = settings.seeds_dir.resolve()
    resolved = data.resolve()
    if resolved == seeds or seeds in resolved.parents:
        raise BadSetting(f"the data folder {str(data)!r} must not be inside the seeds folder")
    index = settings.index_dir.resolve()
    if resolved == index or resolved in index.parents:
        # one folder's lock would be both the index's and the data's (an add waited forever);
        # an index inside the data folder looks like an upload (`qa remove` could take it)
        raise BadSetting(f"the index folder {str(settings.index_dir)!r} must not be the data "
                         f"folder {str(data)!r} (QA_DATA) nor inside it")


def check_data_dir(settings: Settings) -> Path:
    check_data_placement(settings)
    data = settings.documents_dir
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QAError(f"cannot create data folder {str(data)!r}: {exc.strerror}") from None
    if not os.access(data, os.W_OK):
        raise QAError(f"data folder {str(data)!r} is not writable")
    return data


_holders: dict[str, int] = {}  # data folder (real path) -> the thread holding its lock here
_holders_lock = threading.Lock()


@contextlib.contextmanager
def data_lock(data: Path, wait: bool = True) -> Iterator[bool]:
    """One writer at a time per data folder (other processes wait). With `wait=False` it
    yields False at once, holding nothing, while another writer (another process, or
    another thread or call of this one) holds it."""
    with open_lock_file(data / ".lock") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        key = os.path.realpath(data)
        with _holders_lock:
            _holders[key] = threading.get_ident()
        try:
            yield True
        finally:
            with _holders_lock:
                _holders.pop(key, None)
            fcntl.flock(fh, fcntl.LOCK_UN)


def held_in_process(data: Path) -> bool:
    """Does any thread of this process hold `data_lock(data)`? While it does, every change
    of the data folder is that writer's (another process waits for the lock)."""
    with _holders_lock:
        return os.path.realpath(data) in _holders


def held_here(data: Path) -> bool:
    """Does this thread hold `data_lock(data)` (a writer rebuilding for its own change)?"""
    with _holders_lock:
        return _holders.get(os.path.realpath(data)) == threading.get_ident()


def pending_ids(data: Path) -> set[str]:
    """The uploads stored by `commit` and not yet `confirm`ed (or settled)."""
    return {p.name[len(PENDING_PREFIX):] for p in unsettled(data)
            if p.name.startswith(PENDING_PREFIX)}


UPLOAD_PREFIX = ".upload-"  # an HTTP upload's parts while they stream (qa.documents_api)
INCOMING_PREFIX = ".incoming-"  # a document being written by `commit`
REMOVED_PREFIX = ".removed-"  # a document set aside by `withdraw` until its removal is done
PENDING_PREFIX = ".pending-"  # beside a document `commit` stored, until its add is `confirm`ed
OWNER_SUFFIX = ".index"  # `.removed-<id>-<hex>.index`: the index whose removal it is
STALE_UPLOAD_SECONDS = 3600  # a streaming upload untouched this long was left by a crash
STREAMING = ".streaming"  # in an `.upload-` folder: locked by the server while it streams


# What decides a killed change: the committed ids (`PreviousIds`, None without a readable
# index) of the index that made it, given that index's folder (None: a mark that names none,
# left by an older qa; the index settling it decides, as it did then).
Judge = Callable[[Path | None], PreviousIds | None]


def owner_mark(settings: Settings) -> str:
    """What a change's mark holds: the folder of the index making it (resolved), so that
    another index sharing the data folder (QA_DATA) settles it by that index's manifest."""
    return str(settings.index_dir.resolve())


def _mark_owner(path: Path) -> Path | None:
    """The index folder a mark names; None for a mark without one (older qa) or unreadable."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = path.read_text(encoding="utf-8").strip()
        if text.startswith("/"):
            return Path(text)
    return None


def sweep(data: Path, committed: Judge) -> None:
    """Remove what a killed process left in the data folder (call under `data_lock`): any
    `.incoming-` folder or mark's temporary file (only a writer holding the lock has one),
    `.upload-` folder whose server is gone (up to 20 files of QA_MAX_UPLOAD_BYTES each:
    nothing holds its STREAMING lock; without one, its newest file is over an hour old); and
    settle the adds and removals a killed process left half done (`settle`)."""
    settle(data, committed)
    now = time.time()
    for path in data.iterdir():
        if path.name.startswith((f".{PENDING_PREFIX}", f".{REMOVED_PREFIX}")) and \
                path.name.endswith(".tmp") and path.is_file():
            path.unlink(missing_ok=True)  # a mark's temporary file (written under the lock)
            continue
        if not path.is_dir() or path.is_symlink():
            continue
        if path.name.startswith(INCOMING_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(UPLOAD_PREFIX):
            with contextlib.suppress(OSError):
                alive = _streaming(path)
                if alive is None:  # no lock yet (just made), or an older qa's: by its age
                    newest = max([path.stat().st_mtime, *(p.stat().st_mtime
                                                          for p in path.iterdir())])
                    alive = now - newest <= STALE_UPLOAD_SECONDS
                if not alive:
                    shutil.rmtree(path, ignore_errors=True)


def _streaming(upload: Path) -> bool | None:
    """Is the server that streams into this `.upload-` folder alive (it holds the lock of
    its STREAMING file)? None if the folder has no such file."""
    try:
        fd = os.open(upload / STREAMING, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False  # its server is gone: nothing holds the lock


def unsettled(data: Path) -> list[Path]:
    """What adds and removals in progress (or killed) have in the data folder: the
    `.pending-<id>` mark of a document stored by `commit`, not yet `confirm`ed, and the
    `.removed-<id>-<hex>` folder of one set aside by `withdraw` (and the mark naming its
    index, left alone when its removal was killed while finishing)."""
    try:
        return sorted(p for p in data.iterdir() if not p.is_symlink() and (
            p.name.startswith(PENDING_PREFIX) and p.is_file()
            or p.name.startswith(REMOVED_PREFIX) and (p.is_dir() or _orphan_mark(p))))
    except OSError:  # no data folder yet
        return []


def settle(data: Path, committed: Judge) -> None:
    """Finish or undo the adds and removals a killed process left half done (call under
    `data_lock`, so none is in progress), by what the index that made each one committed
    (`committed` of the index folder its mark names: its manifest's ids; None: no readable
    index). Its client was never told the outcome; that index decides it, not another one
    sharing the data folder (which may not have been rebuilt since, or at all).

    An add stores the document (`commit`, marked pending), rebuilds the index with it, then
    `confirm`s it: one the committed index indexed stays; any other is deleted, as if it
    never came. A removal sets the document aside (`withdraw`), rebuilds the index without
    it, then deletes it (`finish`): one the committed index still holds (indexed or
    skipped) is moved back; one whose removal was committed is deleted. The ids a build
    kept while another process held the lock (`retire_vanished`) are recorded first."""
    retire(data, ())  # the ids a build kept while another process held the lock
    judged: dict[Path | None, PreviousIds | None] = {}

    def by_owner(mark: Path) -> PreviousIds | None:
        owner = _mark_owner(mark)
        if owner not in judged:
            judged[owner] = committed(owner)
        return judged[owner]

    for path in unsettled(data):
        if path.name.startswith(PENDING_PREFIX):
            doc_id = path.name[len(PENDING_PREFIX):]
            ids = by_owner(path)
            indexed = {i for i, _ in ids.indexed} if ids is not None else set()
            if doc_id not in indexed and _STORED_ID.match(doc_id):
                shutil.rmtree(data / doc_id, ignore_errors=True)
                log(printable(f"{doc_id}: its upload was interrupted before the index was "
                              "updated; it was not added"))
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if path.is_file():  # an orphan mark (`unsettled`)
            path.unlink(missing_ok=True)
            continue
        doc_id = path.name[len(REMOVED_PREFIX):].rpartition("-")[0]
        mark = _owner_file(path)
        ids = by_owner(mark)
        if ids is not None and doc_id not in ids.uploads:
            retire(data, [doc_id])
            shutil.rmtree(path, ignore_errors=True)
            mark.unlink(missing_ok=True)
            continue
        home = data / doc_id
        try:
            if not _STORED_ID.match(doc_id) or home.exists():
                raise FileExistsError(errno.EEXIST, "the name is taken")
            os.replace(path, home)
            mark.unlink(missing_ok=True)
        except OSError as exc:
            log(printable(f"warning: could not put back {path.name}, whose removal was "
                          f"interrupted ({exc.strerror or exc}): it is left as it is"))
            continue
        log(printable(f"{doc_id}: its removal was interrupted before the index was updated; "
                      "it was put back"))


def commit(settings: Settings, prepared: Sequence[Prepared], taken: set[str]) -> list[str]:
    """Write each prepared file into its own folder (temp folder, then rename); their ids.
    Each is pending (`settle`) until `confirm`ed or `discard`ed. If one cannot be written
    (a full disk), none is left."""
    data = check_data_dir(settings)
    taken = set(taken) | {p.name for p in stored_folders(data)} | retired_ids(data)
    ids: list[str] = []
    for item in prepared:
        doc_id = unique_id(safe_id(item.name), taken)
        taken.add(doc_id)
        tmp = data / f"{INCOMING_PREFIX}{uuid.uuid4().hex}"
        try:
            tmp.mkdir()
        except OSError as exc:
            discard(settings, ids)
            raise WriteError.of(exc, data / doc_id) from None
        try:
            meta = _meta(doc_id, item.name, item.size, item.sha256, item.kind, item.extractor,
                         item.extracted, original_name=item.original_name)
            _copy_checked(item, tmp / meta["file"])  # a full disk: WriteError (507)
            write_text_atomic(tmp / TEXT, item.extracted.text)
            write_text_atomic(tmp / META, json.dumps(meta, ensure_ascii=False, indent=1))
            # until `confirm` (see `settle`), naming the index it is for
            write_text_atomic(data / f"{PENDING_PREFIX}{doc_id}", owner_mark(settings))
            os.replace(tmp, data / doc_id)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            (data / f"{PENDING_PREFIX}{doc_id}").unlink(missing_ok=True)
            discard(settings, ids)  # all or none: the ones before it go too
            if isinstance(exc, OSError):
                raise WriteError.of(exc, data / doc_id) from None
            raise
        ids.append(doc_id)
    return ids


def _copy_checked(item: Prepared, target: Path) -> None:
    """Copy the prepared file to `target` (atomically, a block at a time), refusing (409)
    one that is no longer the file its text was extracted from."""
    digest, copied = hashlib.sha256(), 0

    def blocks() -> Iterator[bytes]:
        nonlocal copied
        try:
            with item.source.open("rb") as fh:
                while copied <= item.size and (block := fh.read(1 << 20)):
                    digest.update(block)
                    copied += len(block)
                    yield block
        except OSError as exc:
            raise BadDocument(f"{item.name}: cannot read the file: {exc.strerror}") from None

    write_chunks_atomic(target, blocks())
    if copied != item.size or digest.hexdigest() != item.sha256:
        target.unlink(missing_ok=True)
        raise BadDocument(f"{item.called}: the file changed while it was being added; add "
                          "it again", status=409)


RETIRED = ".retired-ids.json"  # in the data folder: the ids of removed uploads
# Beside it, `.retired-ids-kept-<hex>.json`: ids a build saw vanish while another process
# held the data lock (a build does not wait for it), each written once under its own name
# (no lock needed), read with the record at once and merged into it by the next holder.
KEPT_PREFIX, KEPT_SUFFIX = ".retired-ids-kept-", ".json"


def _read_ids(path: Path) -> frozenset[str]:
    """The ids of a record of removed ids; none for a missing file, and none (reported)
    for an unreadable one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return frozenset()
    except (OSError, ValueError) as exc:
        report([Problem(str(path), f"unreadable record of removed document ids ({exc}); "
                                   "their ids may be given again")])
        return frozenset()
    ids = record.get("retired") if isinstance(record, dict) else None
    return frozenset(i for i in ids if isinstance(i, str)) if isinstance(ids, list) \
        else frozenset()


def _kept_records(data: Path) -> list[Path]:
    """The records of ids kept while another process held the lock (`retire_vanished`)."""
    try:
        return sorted(p for p in data.iterdir() if p.name.startswith(KEPT_PREFIX)
                      and p.name.endswith(KEPT_SUFFIX) and p.is_file() and not p.is_symlink())
    except OSError:  # no data folder yet
        return []


def retired_ids(data: Path) -> frozenset[str]:
    """The ids of the uploads removed from the data folder `data` (`retire`), which no new
    document may take: a citation saved before a removal (an id and offsets) must never
    point into another document. A data folder from before the record was kept has none
    (so its earlier removals are not known); an unreadable record is reported and read as
    none. The ids kept for the next holder of the lock (`retire_vanished`) are retired too."""
    kept = [_read_ids(path) for path in _kept_records(data)]
    return _read_ids(data / RETIRED).union(*kept)


def retire(data: Path, ids: Iterable[str]) -> None:
    """Add `ids`, and the ids kept while another process held the lock, to the data
    folder's record of removed ids (atomically; call under `data_lock`). A record that
    cannot be written is logged: the removal stands (and what was kept stays kept)."""
    kept = _kept_records(data)
    known = _read_ids(data / RETIRED)
    new = set(ids).union(*(_read_ids(path) for path in kept)) - known
    if new:
        record = {"retired": sorted(known | new)}
        try:
            write_text_atomic(data / RETIRED, json.dumps(record, ensure_ascii=False, indent=0))
        except WriteError as exc:
            log(printable(f"warning: cannot record the removed ids {', '.join(sorted(new))}: "
                          f"{exc}; a new document may be given one of them"))
            return
    for path in kept:  # in the record now
        with contextlib.suppress(OSError):
            path.unlink()


def _keep(data: Path, ids: Iterable[str]) -> None:
    """Record `ids` as retired without the lock, under a name of their own: `retired_ids`
    reads them at once, the next holder of the lock merges them into the record."""
    path = data / f"{KEPT_PREFIX}{uuid.uuid4().hex}{KEPT_SUFFIX}"
    write_text_atomic(path, json.dumps({"retired": sorted(ids)}, ensure_ascii=False))


def retire_vanished(settings: Settings, previous: PreviousIds, had: Iterable[str],
                    files: Mapping[str, Path], stored: Iterable[str]) -> None:
    """Retire the ids the last build gave (`had`: its documents and skipped files) that no
    file holds now: a seed file deleted or renamed by hand, the files of a seeds folder this
    index no longer reads, an upload's folder deleted by hand. Like a removed upload's, such
    an id is never given again (a citation saved earlier must not point into another
    document). `files`: the ids the build reads now (`corpus_files`); `stored`: the uploads'
    ids. Call while a build reads the corpus: under `data_lock` if this thread holds it, else
    it is taken without waiting (readers never wait on a build); while a writer holds it
    they are kept in a file of their own (`_keep`), retired at once and merged into the
    record by the next holder (`settle`): the index this build commits no longer names
    them, so no later build would see them go. A missing seeds folder (unmounted,
    mistyped) retires nothing."""
    if not settings.seeds_dir.is_dir():
        return
    gone = set(had) - set(files) - set(stored) - previous.retired
    if not gone:
        return
    data = settings.documents_dir
    if held_here(data):
        retire(data, gone)
        return
    try:
        data.mkdir(parents=True, exist_ok=True)
        with data_lock(data, wait=False) as held:
            if held:
                retire(data, gone)
            else:
                _keep(data, gone)
    except (OSError, WriteError) as exc:
        reason = exc.strerror or exc if isinstance(exc, OSError) else exc
        log(printable(f"warning: cannot record the ids of removed files "
                      f"{', '.join(sorted(gone))} in {str(data)!r}: {reason}; "
                      "a new document may be given one of them"))


def confirm(settings: Settings, ids: Sequence[str]) -> None:
    """The documents `commit` stored are in the committed index: no longer pending."""
    for doc_id in ids:
        (settings.documents_dir / f"{PENDING_PREFIX}{doc_id}").unlink(missing_ok=True)


def _stored_name(name: str) -> bool:
    """A name `commit` writes in a document folder (or `write_text_atomic`'s temporary of one)."""
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:].rsplit(".", 2)[0]
    return name in (META, TEXT) or (name.startswith("original.") and any(
        name.lower() == f"original{suffix}" for suffix in SUFFIXES))


def qa_stored(folder: Path) -> bool:
    """Whether `folder` is laid out as `commit` writes a document: its original file or its
    metadata, and nothing that `commit` does not write. Only such a folder is removed: a
    folder of the data folder that merely has an id's name (an empty one, a user's own in
    `--data ~/papers`) was deleted by `qa remove NAME`."""
    try:
        children = list(folder.iterdir())
    except OSError:
        return False
    return (all(_stored_name(c.name) and c.is_file() and not c.is_symlink() for c in children)
            and any(c.name == META or c.name.startswith("original.") for c in children))


def withdraw(settings: Settings, ids: Sequence[str]) -> list[tuple[Path, Path]]:
    """Move uploaded documents aside (hidden folders); the moves, to finish or undo. Any
    document folder qa stored (`qa_stored`) can be: one whose metadata is lost is listed
    among the problems, and must be removable too. Another folder is refused (409)."""
    data = settings.documents_dir
    moves: list[tuple[Path, Path]] = []
    for doc_id in ids:
        folder = data / doc_id
        if not _STORED_ID.match(doc_id) or not folder.is_dir() or folder.is_symlink():
            undo(moves)
            raise UnknownDocument(f"no uploaded document has the id {quoted(doc_id)}")
        if not qa_stored(folder):
            undo(moves)
            raise UnknownDocument(
                f"{str(folder)!r} is not a document qa stored (it holds other files, or "
                "none): qa removes only its own uploads; move or delete that folder "
                "yourself", 409)
        aside = data / f"{REMOVED_PREFIX}{doc_id}-{uuid.uuid4().hex[:8]}"
        mark = _owner_file(aside)
        try:  # the index it is for, named first; a full disk (removing is the way out of
            # one) removes without it: settled by the next index, as before marks named one
            with contextlib.suppress(WriteError):
                write_text_atomic(mark, owner_mark(settings))
            os.replace(folder, aside)
        except BaseException:
            mark.unlink(missing_ok=True)
            undo(moves)
            raise
        moves.append((folder, aside))
    return moves


def _orphan_mark(path: Path) -> bool:
    """Is `path` the owner mark of a set-aside folder that is gone?"""
    return (path.name.endswith(OWNER_SUFFIX) and path.is_file()
            and not path.with_name(path.name.removesuffix(OWNER_SUFFIX)).exists())


def _owner_file(aside: Path) -> Path:
    """Beside a `.removed-` folder: the index whose removal set it aside (`owner_mark`)."""
    return aside.with_name(aside.name + OWNER_SUFFIX)


def undo(moves: Sequence[tuple[Path, Path]]) -> None:
    for folder, aside in reversed(moves):
        with contextlib.suppress(OSError):
            os.replace(aside, folder)
            _owner_file(aside).unlink(missing_ok=True)


def finish(moves: Sequence[tuple[Path, Path]]) -> None:
    """Delete the documents `withdraw` set aside (their removal is committed), their ids
    retired first (`retire`)."""
    for folder, _ in moves:
        retire(folder.parent, [folder.name])
    for _, aside in moves:
        shutil.rmtree(aside, ignore_errors=True)
        with contextlib.suppress(OSError):
            _owner_file(aside).unlink(missing_ok=True)


def discard(settings: Settings, ids: Sequence[str]) -> None:
    """Delete freshly added documents again (their index update failed)."""
    for doc_id in ids:
        shutil.rmtree(settings.documents_dir / doc_id, ignore_errors=True)
        (settings.documents_dir / f"{PENDING_PREFIX}{doc_id}").unlink(missing_ok=True)




def seed_ids(seeds_dir: Path, previous: PreviousIds | None = None,
             stems: bool = True) -> set[str]:
    """The ids the seeds folder takes (every seed id, readable or not, as the build after
    `previous` names them, and with `stems` every file stem: ids a new upload must not
    take; without, the ids of seed documents only)."""
    with contextlib.suppress(OSError):
        return ({p.stem for p in seeds_dir.iterdir()} if stems else set()) \
            | {i for i, _ in seed_files(seeds_dir, previous)[0]}
    return set()


@dataclass(frozen=True)
class Entry:
    """A document and what the document list shows about it."""

    document: DocumentInfo
    source: str  # "seed" | "upload"
    name: str  # the file name (uploads: as sanitised on upload)
    size: int  # bytes of the file
    added_at: str  # ISO 8601 UTC (seeds: the file's modification time)
    extractor: str
    original_name: str | None = None  # as uploaded (seeds: the file name); None: not kept

    def record(self) -> dict[str, Any]:
        """What a build keeps of it beside the document (`entry` reads it back)."""
        return {"source": self.source, "name": self.name, "size": self.size,
                "added_at": self.added_at, "extractor": self.extractor,
                "original_name": self.original_name}


def entry(settings: Settings, document: Document | DocumentInfo,
          recorded: Mapping[str, Any] | None = None) -> Entry:
    """The list entry of a document: from what its build `recorded` (`Entry.record`), else
    (an index built before it was kept) from its metadata or its file."""
    info = document if isinstance(document, DocumentInfo) else DocumentInfo.of(document)
    if recorded is not None:
        try:
            original = recorded["original_name"]
            return Entry(info, str(recorded["source"]), str(recorded["name"]),
                         int(recorded["size"]), str(recorded["added_at"]),
                         str(recorded["extractor"]),
                         original if isinstance(original, str) else None)
        except (KeyError, TypeError, ValueError):
            pass
    meta = read_meta(settings, info.id)
    if meta is not None and Path(info.path).parent.name == info.id:
        return Entry(info, "upload", str(meta.get("name", "")), int(meta.get("size", 0)),
                     str(meta.get("added_at", "")), str(meta.get("extractor", "")),
                     _original_name(meta))
    path = Path(info.path)
    try:
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime
    except OSError:
        size, mtime = 0, 0.0
    loader = SUFFIXES.get(path.suffix.lower())
    return Entry(info, "seed", path.name, size,
                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)),
                 loader.extractor if loader is not None else "", display_name(path.name))
