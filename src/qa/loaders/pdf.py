"""PDF: the text layer of every page, read with pypdf (BSD licence).

Pages are joined by a blank line and recorded as spans, so a citation knows its page. An
encrypted PDF and a scanned PDF with no text layer are refused with a clear reason (qa does
no OCR).
"""

from __future__ import annotations

import io
from importlib.metadata import version
from typing import Any

from qa.loaders.base import BadDocument, Extracted, clean_extracted

REVISION = 2
PAGE_BREAK = "\n\n"
MAX_PAGES = 5000
HEADING_CHARS = 80


def _ends_sentence(line: str) -> bool:
    return line.rstrip().endswith((".", "!", "?", ":", "”", '"'))


def _is_heading(line: str, after_break: bool) -> bool:
    """A short line that opens with a capital or digit, ends without punctuation and follows
    the end of a sentence (or starts the page): a title or heading, not wrapped text."""
    text = line.strip()
    return (after_break and 0 < len(text) <= HEADING_CHARS and (text[0].isupper()
            or text[0].isdigit()) and not text.endswith((".", ",", ";", ":", "!", "?", "-")))


def page_paragraphs(text: str) -> str:
    """A page's text with headings set apart by blank lines, so that a heading never becomes
    the start of the sentence under it (pypdf gives lines, not paragraphs)."""
    out: list[str] = []
    after_break = True
    for line in text.split("\n"):
        heading = _is_heading(line, after_break)
        if heading and out and out[-1] != "":
            out.append("")
        out.append(line)
        if heading:
            out.append("")
        after_break = heading or _ends_sentence(line) or not line.strip()
    return "\n".join(out).strip()


class PdfLoader:
    kind: str = "pdf"
    suffixes: tuple[str, ...] = (".pdf",)

    @property
    def extractor(self) -> str:
        return f"pypdf-{version('pypdf')}/{REVISION}"

    def sniff(self, raw: bytes) -> bool:
        return b"%PDF-" in raw[:1024]

    def extract(self, raw: bytes, name: str) -> Extracted:
        import logging

        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are not ours to show
        try:
            reader = PdfReader(io.BytesIO(raw))
            if reader.is_encrypted and not _opens_without_password(reader):
                raise BadDocument(f"{name}: the PDF is encrypted (password-protected); "
                                  "upload an unprotected copy")
            if len(reader.pages) > MAX_PAGES:
                raise BadDocument(f"{name}: the PDF has {len(reader.pages)} pages "
                                  f"(at most {MAX_PAGES})", status=413)
            texts = [page_paragraphs(clean_extracted(page.extract_text() or "").strip())
                     for page in reader.pages]
            meta_title = (reader.metadata.title if reader.metadata else None) or ""
        except BadDocument:
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                RecursionError, OSError) as exc:
            raise BadDocument(f"{name}: the PDF is corrupt or unreadable "
                              f"({type(exc).__name__})") from None
        if not texts:
            raise BadDocument(f"{name}: the PDF has no pages")
        if not any(texts):
            raise BadDocument(f"{name}: scanned PDF with no text layer (qa does not do OCR)")
        pieces, pages, pos = [], [], 0
        for text in texts:
            pages.append((pos, pos + len(text)))
            pieces.append(text)
            pos += len(text) + len(PAGE_BREAK)
        full = PAGE_BREAK.join(pieces)
        title = clean_extracted(str(meta_title)).strip()
        if not title:
            title = next(line.strip() for t in texts if t for line in t.splitlines()
                         if line.strip())
        return Extracted(text=full, title=title[:200], pages=tuple(pages))


def _opens_without_password(reader: Any) -> bool:
    """An encrypted PDF with an empty user password (only an owner password restricts
    printing or copying) opens like any other: every reader shows it without asking."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - a cipher pypdf cannot run here: treat as locked
        return False
