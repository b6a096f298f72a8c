"""Load step: a file → `Document`, one loader per format behind one interface.

In: a path (or bytes and a name). Out: a `Document` whose `text` every offset points into:
the decoded file for `.txt`/`.md`, the extracted text for `.html`, `.pdf` and `.docx`, with
PDF pages as spans. The format is checked by content (magic bytes, sniffing): a file whose
name and content disagree, or that no loader claims, is refused with a one-line reason.
A new format is one new module with a `Loader` and one line in `LOADERS`.

`qa.loaders.library` keeps uploaded documents in the data folder; `qa.loaders.corpus` reads
seeds and uploads together, reporting (not raising on) the files it has to skip.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path

from qa.loaders.base import (
    BadDocument,
    Extracted,
    Loader,
    decode_text,
    is_boilerplate,
    paragraphs,
)
from qa.loaders.docx import DocxLoader
from qa.loaders.html import HtmlLoader, is_html_page
from qa.loaders.pdf import PdfLoader
from qa.loaders.text import MarkdownLoader, TextLoader, hidden_spans
from qa.types import Document, Span

__all__ = [
    "BadDocument", "Extracted", "Loader", "LOADERS", "SUFFIXES", "decode_text", "document_of",
    "extract", "extractor_for", "extractor_for_name", "is_boilerplate", "load", "loader_for",
    "paragraphs", "read_capped",
]

LOADERS: tuple[Loader, ...] = (TextLoader(), MarkdownLoader(), HtmlLoader(), PdfLoader(),
                               DocxLoader())
SUFFIXES: dict[str, Loader] = {s: loader for loader in LOADERS for s in loader.suffixes}
EXTRACTED_KINDS = frozenset({"html", "pdf", "docx"})


def extractor_for(kind: str) -> str:
    """The extractor (library, version, revision) now used for a kind of document; the
    index records it, so an upgrade that may change extracted text triggers re-indexing."""
    return next((loader.extractor for loader in LOADERS if loader.kind == kind), "")


def extractor_for_name(name: str) -> str:
    """The extractor that would read a file called `name` ("" for a type qa cannot read):
    what the index records for a file it skipped, so an upgrade that might read it now
    makes it try again."""
    loader = SUFFIXES.get(Path(name).suffix.lower())
    return loader.extractor if loader is not None else ""

_BINARY_KINDS = ("pdf", "docx")
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE2 compound file: .doc, .xls, .ppt
OLD_OFFICE = "an old Office file (.doc, .xls, .ppt)"
_SAVE_AS = {".doc": ".docx", ".rtf": ".docx", ".odt": ".docx"}  # what to save it as


def _content_kind(raw: bytes) -> str:
    """What the bytes are, as far as qa can tell: pdf, docx (any zip), ole, text or
    binary."""
    for loader in LOADERS:
        if loader.kind in _BINARY_KINDS and loader.sniff(raw):
            return loader.kind
    if raw.startswith(_OLE):
        return "ole"
    return "text" if SUFFIXES[".txt"].sniff(raw) else "binary"


def _what(found: str, raw: bytes) -> str:
    """What a file `_content_kind` found to be `found` is, in words."""
    if found == "docx" and b"word/" not in raw:  # (names in its zip directory; a refusal)
        return "a zip archive"
    return {"text": "text", "binary": "binary data", "ole": OLD_OFFICE}.get(
        found, f"a {found.upper()} file")


def loader_for(name: str, raw: bytes) -> Loader:
    """The loader for a file called `name` holding `raw`: the name proposes, the content
    decides. Raise `BadDocument` (415) for an unknown type or a name that lies."""
    suffix = Path(name).suffix.lower()
    loader = SUFFIXES.get(suffix)
    if not raw:
        raise BadDocument(f"{name}: the file is empty")
    if loader is None:
        known = " ".join(sorted(SUFFIXES))
        instead = f"save it as {_SAVE_AS[suffix]}; " if suffix in _SAVE_AS else ""
        raise BadDocument(f"{name}: unsupported file type {suffix or '(no suffix)'!r} "
                          f"({instead}supported: {known})", status=415)
    found = _content_kind(raw)
    if loader.kind in _BINARY_KINDS:
        ok = found == loader.kind
    else:
        ok = found == "text"
    if not ok:
        advice = ": save it as .docx" if found == "ole" and loader.kind == "docx" else ""
        raise BadDocument(f"{name}: the content does not match the name: it is "
                          f"{_what(found, raw)}, not {loader.kind.upper()}{advice}", status=415)
    if loader.kind in ("txt", "md") and is_html_page(raw):  # read as text: tags and all
        raise BadDocument(f"{name}: the content does not match the name: it is an HTML page, "
                          f"not {loader.kind.upper()} (save it as .html)", status=415)
    return loader


def read_capped(path: Path, max_bytes: int, setting: str = "") -> bytes:
    """The bytes of `path`, refusing (413) a file over `max_bytes` before reading it; the
    refusal names `setting`, the setting that sets the cap, if given."""
    cap = f"{max_bytes:,}, {setting}" if setting else f"{max_bytes:,}"
    try:
        st = path.stat()
        size = st.st_size
        if stat.S_ISDIR(st.st_mode):
            raise BadDocument(f"{path.name}: a folder, not a file: add its files (qa add "
                              "takes a folder)")
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever
            raise BadDocument(f"{path.name}: not a regular file")
        if size > max_bytes:
            raise BadDocument(f"{path.name}: the file is too large ({size:,} bytes; at most "
                              f"{cap})", status=413)
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise BadDocument(f"{path.name}: cannot read the file: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise BadDocument(f"{path.name}: the file is too large (at most {cap} bytes)",
                          status=413)
    return raw


def extract(raw: bytes, name: str) -> tuple[Loader, Extracted]:
    """The loader for these bytes and what it extracts from them."""
    loader = loader_for(name, raw)
    return loader, loader.extract(raw, name)


def document_of(doc_id: str, path: str, kind: str, extracted: Extracted,
                file_sha256: str) -> Document:
    """The `Document` for extracted text. Its `sha256` names the bytes its offsets point
    into: the file for plain text, the extracted text for extracted formats, so a changed
    extraction makes the index stale instead of shifting citations silently. A Markdown
    file's front matter, HTML comments and blocks of HTML tags alone are in its text
    (offsets are the file's) but in no paragraph: never shown, they are never a passage nor
    quoted (`text.hidden_spans`)."""
    text = extracted.text
    sha = file_sha256
    if kind in EXTRACTED_KINDS:
        sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    blocks = paragraphs(text)
    if kind == MarkdownLoader.kind:
        blocks = _without(blocks, hidden_spans(text), text)
    return Document(
        id=doc_id, title=extracted.title, path=path, text=text, sha256=sha,
        paragraphs=blocks, kind=kind,
        pages=tuple(Span(s, e, text[s:e]) for s, e in extracted.pages),
    )


def _without(blocks: tuple[Span, ...], hidden: list[tuple[int, int]],
             text: str) -> tuple[Span, ...]:
    """The paragraphs less the `hidden` spans: what is left of each, trimmed, is one."""
    if not hidden:
        return blocks
    kept: list[Span] = []
    n = 0  # both in text order: the hidden spans before this block are passed
    for block in blocks:
        while n < len(hidden) and hidden[n][1] <= block.start:
            n += 1
        pieces = []
        at = block.start  # what is before `at` is hidden or kept already: one sweep, as a
        for start, end in _from(hidden, n):  # block of many hidden tags was quadratic
            if start >= block.end:
                break
            if start > at:
                pieces.append((at, start))
            at = max(at, end)
        if at < block.end:
            pieces.append((at, block.end))
        for s, e in pieces:
            piece = text[s:e]
            s, e = s + len(piece) - len(piece.lstrip()), s + len(piece.rstrip())
            if s < e:
                kept.append(Span(s, e, text[s:e]))
    return tuple(kept)


def _from(items: list[tuple[int, int]], n: int) -> Iterator[tuple[int, int]]:
    """`items[n:]`, without copying them."""
    for i in range(n, len(items)):
        yield items[i]


DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def load(path: Path, doc_id: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """One file as a `Document` (id: the file's stem unless given)."""
    raw = read_capped(path, max_bytes)
    loader, extracted = extract(raw, path.name)
    return document_of(doc_id or path.stem, str(path), loader.kind, extracted,
                       hashlib.sha256(raw).hexdigest())
