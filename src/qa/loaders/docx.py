"""Word (.docx): paragraphs and tables in document order, read with python-docx.

A .docx is a zip archive: before anything is unpacked, the sizes its directory declares are
checked, so a zip bomb dressed as a .docx is refused without inflating it (Python's zipfile
never reads more than an entry declares, so the declared sizes bound the work). Each
paragraph and each table row (cells joined by " | ") becomes one paragraph of the text,
read as Word shows it with tracked changes accepted, paragraphs in content controls
included (python-docx's `Paragraph.text` and body children skip both); footnotes and
endnotes follow the body.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

from qa.loaders.base import BadDocument, Extracted, clean_extracted

REVISION = 2  # 2: soft hyphens dropped; content controls, tracked insertions, notes read
MAX_UNZIPPED = 200 * 1024 * 1024  # bytes, all entries together
MAX_RATIO = 200  # uncompressed / compressed, for entries over 1 MB
MAX_ENTRIES = 10_000


def check_zip(raw: bytes, name: str) -> zipfile.ZipFile:
    """The archive, opened, once its directory shows it is a sane Word document."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadDocument(f"{name}: the file is corrupt: not a readable .docx ({exc})") from None
    total = sum(e.file_size for e in entries)
    packed = [e for e in entries
              if e.file_size > 1 << 20 and e.file_size > MAX_RATIO * max(e.compress_size, 1)]
    if len(entries) > MAX_ENTRIES or total > MAX_UNZIPPED or packed:
        why = (f"{len(entries):,} entries" if len(entries) > MAX_ENTRIES
               else f"it would unpack to {total:,} bytes" if total > MAX_UNZIPPED
               else f"{packed[0].filename} is compressed "
                    f"{packed[0].file_size // max(packed[0].compress_size, 1):,}:1")
        raise BadDocument(f"{name}: refused as a likely zip bomb ({why})", status=413)
    if "word/document.xml" not in archive.namelist():
        raise BadDocument(f"{name}: not a Word document (a zip archive without "
                          "word/document.xml)", status=415)
    return archive


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# what wraps paragraphs and tables without being one: content controls, custom XML, a
# tracked insertion of whole paragraphs
_WRAPPERS = frozenset(W + tag for tag in ("sdt", "sdtContent", "customXml", "ins",
                                          "moveTo", "smartTag"))
_TEXT = {W + "t": "", W + "tab": " ", W + "br": " ", W + "cr": " ", W + "noBreakHyphen": "-"}
# text inside these is not the paragraph's: a text box's own paragraphs, deleted text
_NOT_HERE = frozenset(W + tag for tag in ("txbxContent", "del", "moveFrom"))


def blocks_of(body: Any) -> Iterator[Any]:
    """The paragraphs (w:p) and tables (w:tbl) of a body in document order, those inside
    content controls and other wrappers included (no recursion: a deep file cannot
    overflow the stack)."""
    stack = list(reversed(body))
    while stack:
        element = stack.pop()
        if element.tag in (W + "p", W + "tbl"):
            yield element
        elif element.tag in _WRAPPERS:
            stack.extend(reversed(element))


def paragraph_text(paragraph: Any) -> str:
    """A paragraph's text as Word shows it with tracked changes accepted: its runs, those
    in hyperlinks, fields, content controls and tracked insertions included, deleted text
    and the paragraphs of text boxes left out; tabs and line breaks as spaces."""
    parts = []
    for element in paragraph.iter(*_TEXT):
        inside = element.getparent()
        while inside is not None and inside is not paragraph and inside.tag not in _NOT_HERE:
            inside = inside.getparent()
        if inside is not None and inside is not paragraph:
            continue
        parts.append(element.text or "" if element.tag == W + "t" else _TEXT[element.tag])
    return " ".join("".join(parts).split())


def _notes(archive: zipfile.ZipFile) -> Iterator[str]:
    """The paragraphs of the footnotes, then of the endnotes (after the body, as a printed
    page puts them after its text); not the separator lines Word keeps among them."""
    from docx.oxml.parser import parse_xml

    names = set(archive.namelist())
    for part, tag in (("word/footnotes.xml", "footnote"), ("word/endnotes.xml", "endnote")):
        if part not in names:
            continue
        for note in parse_xml(archive.read(part)).iterchildren(W + tag):
            if note.get(W + "type") in (None, "normal"):
                yield from (paragraph_text(p) for p in note.iter(W + "p"))


def _row_text(row: object) -> str:
    cells: list[str] = []
    for cell in row.cells:  # type: ignore[attr-defined]
        text = " ".join(paragraph_text(p) for p in cell._tc.iter(W + "p"))
        text = " ".join(text.split())
        if not cells or text != cells[-1]:  # merged cells repeat their text
            cells.append(text)
    return " | ".join(c for c in cells if c)


class DocxLoader:
    kind: str = "docx"
    suffixes: tuple[str, ...] = (".docx",)

    @property
    def extractor(self) -> str:
        return f"python-docx-{version('python-docx')}/{REVISION}"

    def sniff(self, raw: bytes) -> bool:
        return raw.startswith(b"PK\x03\x04")

    def extract(self, raw: bytes, name: str) -> Extracted:
        import docx
        from docx.table import Table

        archive = check_zip(raw, name)
        try:
            document = docx.Document(io.BytesIO(raw))
            blocks: list[str] = []
            for element in blocks_of(document.element.body):
                if element.tag == W + "p":
                    blocks.append(paragraph_text(element))
                else:
                    blocks.extend(_row_text(r) for r in Table(element, document).rows)
            blocks.extend(_notes(archive))
            title = document.core_properties.title or ""
        except BadDocument:
            raise
        except Exception as exc:  # noqa: BLE001 - lxml/zip/KeyError: all mean a corrupt file
            raise BadDocument(f"{name}: the .docx is corrupt or unreadable "
                              f"({type(exc).__name__})") from None
        text = clean_extracted("\n\n".join(b for b in blocks if b.strip()))
        if not text.strip():
            raise BadDocument(f"{name}: the document is empty: it holds no text to index")
        title = clean_extracted(title).strip() or text.splitlines()[0]
        return Extracted(text=text, title=title[:200])
