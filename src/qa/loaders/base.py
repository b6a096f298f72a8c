"""What every loader shares: the `Loader` interface, the `Extracted` result, the error a bad
file raises, text decoding (UTF-8, by byte-order mark, or UTF-16 without one), and paragraph
spans with exact offsets.

A loader turns a file's bytes into text (`Extracted.text`); every later offset points into
that text. For plain text it is the decoded file; for PDF, DOCX and HTML it is the extracted
text, which the data folder and the index keep, so a citation never depends on re-running an
extraction library.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from qa.chunking import fences
from qa.errors import QAError
from qa.types import Span


class BadDocument(QAError):
    """A file that cannot become a document: empty, corrupt, encrypted, too large, wrong type.

    `status` is the HTTP status the API answers with (422 unless said otherwise).
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Extracted:
    """The text of a file and what is known about its layout."""

    text: str
    title: str
    pages: tuple[tuple[int, int], ...] = ()  # PDF pages as (start, end) offsets into `text`


class Loader(Protocol):
    """One file format: which suffixes it claims, how to recognise its bytes, how to read them."""

    kind: str  # txt | md | html | pdf | docx
    suffixes: tuple[str, ...]

    @property
    def extractor(self) -> str:
        """Library name and version (and our revision): a change means re-extracting."""

    def sniff(self, raw: bytes) -> bool:
        """Do these bytes look like this format (by content, never by name)?"""

    def extract(self, raw: bytes, name: str) -> Extracted:
        """The text of the file; raise `BadDocument` with a one-line reason if there is none."""


# -- decoding --------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(raw: bytes, name: str) -> str:
    """Bytes as text: UTF-8, or UTF-8/16/32 as a byte-order mark says (the mark dropped).

    UTF-16 without a mark is read when its bytes can be nothing else (`_unmarked_utf16`).
    Anything else (Latin-1, binary) is refused with the offset of the first bad byte:
    guessing an encoding would put wrong characters into quoted answers.
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise BadDocument(f"{name}: not valid {encoding.upper()} text (bad byte at "
                                  f"offset {exc.start + len(bom)})") from None
    if b"\x00" in raw[:8192]:
        wide = _unmarked_utf16(raw)
        if wide is None:
            raise BadDocument(f"{name}: not a text file (it holds NUL bytes: binary data)",
                              status=415)
        return wide
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadDocument(f"{name}: not UTF-8 text (bad byte at offset {exc.start}); save it "
                          "as UTF-8") from None


def looks_like_text(raw: bytes) -> bool:
    head = raw[:4096]
    if any(head.startswith(bom) for bom, _ in _BOMS):
        return True
    return b"\x00" not in head or _unmarked_utf16(raw) is not None


# what no text holds: control characters (but tab, line ends, form feed), surrogates,
# private-use and unassigned code points
_NOT_TEXT = frozenset(("Cc", "Cs", "Co", "Cn"))
_TEXT_CONTROLS = frozenset("\t\n\r\f")


def _unmarked_utf16(raw: bytes) -> str | None:
    """`raw` decoded as UTF-16 without a byte-order mark (some Windows tools save
    "Unicode" text so), or None if it is not. The byte order is where its NUL bytes are:
    the high byte of the ASCII characters (spaces, line ends, digits) every text holds, so
    in one half of the byte pairs and (nearly) never in the other. The bytes must decode
    strictly to characters text holds: binary data that has NULs in the pattern (an image,
    an executable) holds pairs that are no such characters (NUL itself, controls,
    surrogates, unassigned code points), so it is refused. So is UTF-8 text with a stray
    NUL, which would decode as CJK: few NULs, and UTF-8 once they are gone."""
    if len(raw) % 2:
        return None
    head = raw[:8192]
    high_first = head[0::2].count(0)  # NULs in the first byte of a pair: big-endian
    high_last = head[1::2].count(0)
    if max(high_first, high_last) < 4 * min(high_first, high_last) + 1:
        return None
    if 10 * (high_first + high_last) < len(head) and _utf8_but_nuls(head):
        return None  # UTF-8 text with a stray NUL or two (it would decode as CJK)
    try:
        text = raw.decode("utf-16-be" if high_first > high_last else "utf-16-le")
    except UnicodeDecodeError:
        return None
    if any(unicodedata.category(c) in _NOT_TEXT and c not in _TEXT_CONTROLS
           for c in set(text)):
        return None
    return text


def _utf8_but_nuls(head: bytes) -> bool:
    """Is `head` (the start of a file) UTF-8 once its NUL bytes are gone? Text in UTF-16
    with few NULs (mostly CJK) almost never is: its other bytes are no UTF-8 sequences."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head.replace(b"\x00", b""))
    except UnicodeDecodeError:
        return False
    return True


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b\ufeff]")


# Typographic ligatures (PDFs typeset by TeX or InDesign): `ﬁrst` is "rst" to search
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
                            "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"})


def clean_extracted(text: str) -> str:
    """Extracted text without control characters (terminal escapes, NULs, form feeds) and
    soft hyphens (invisible, yet they cut a word in two for search: `infor\u00admation`), with
    ligatures as their letters (`ﬁ` → `fi`), NFC-composed characters and Unix line ends. Only
    for extracted text: plain text keeps its bytes, so that offsets can be checked against
    the file itself."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text).translate(_LIGATURES)


# -- table cells -----------------------------------------------------------------------------

CELL_JOIN = "; "  # between the paragraphs of a table's cell that no punctuation ends
_PUNCTUATED = re.compile(r"""[.!?…:;,]["'”’)\]]*$""")


def cell_text(parts: list[str]) -> str:
    """The paragraphs (or <br> lines) of one table cell as one line of its row: run together
    they read as one ("Annual leave 25 days", "25 days Unused days lapse"), and on lines of
    their own a cell stacking a label over its value ("Hire costs" / "£20 an hour") is cut
    from it, and its row from its other cells. A paragraph no punctuation ends is followed
    by "; ", one that ends a sentence or clause by a space."""
    out = ""
    for part in (p for p in parts if p):
        out += (" " if _PUNCTUATED.search(out) else CELL_JOIN) + part if out else part
    return out


# -- paragraphs ------------------------------------------------------------------------------

# Whole lines that scrapers leave behind: navigation, sharing widgets, ads.
_BOILERPLATE = re.compile(
    r"""^\W*(
        source\ link | back\ to\ top(\ button)? | advertisement | skip\ to\ (main\ )?content
      | share\ (this\ )?(article|story|on\ \w+) | (click|tap)\ here.* | read\ more\W*
      | related\ (articles|stories|posts)? | sign\ up\ for\ .*newsletter.* | print\ this\ page
      | (facebook|twitter|linkedin|whatsapp|email|reddit)
        (\W+(facebook|twitter|linkedin|whatsapp|email|reddit))*
    )\W*$""",
    re.IGNORECASE | re.VERBOSE,
)


def is_boilerplate(line: str) -> bool:
    """True for a line that is page furniture rather than content."""
    return bool(_BOILERPLATE.match(line.strip()))


def paragraphs(text: str) -> tuple[Span, ...]:
    """Blocks of non-blank, non-boilerplate lines, trimmed, with exact offsets. A fenced
    code block is a block of its own, its blank lines and all: split at a blank line, half
    a program is a paragraph."""
    spans: list[Span] = []
    block_start: int | None = None
    block_end = 0
    pos = 0
    lines = text.splitlines(keepends=True)
    code = fences(lines)
    closing, fence_start = -1, 0  # the line that closes the fence being read, its start
    for n, line in enumerate(lines):
        content = line.strip()
        if n in code:
            if block_start is not None:
                spans.append(Span(block_start, block_end, text[block_start:block_end]))
                block_start = None
            fence_start, closing = pos + len(line) - len(line.lstrip()), code[n]
        elif n == closing:
            end = pos + len(line.rstrip())
            spans.append(Span(fence_start, end, text[fence_start:end]))
        elif n < closing:
            pass
        elif content and not is_boilerplate(content):
            lead = len(line) - len(line.lstrip())
            if block_start is None:
                block_start = pos + lead
            block_end = pos + len(line.rstrip())
        elif block_start is not None:
            spans.append(Span(block_start, block_end, text[block_start:block_end]))
            block_start = None
        pos += len(line)
    if block_start is not None:
        spans.append(Span(block_start, block_end, text[block_start:block_end]))
    return tuple(spans)


MAX_TITLE_CHARS = 200


def short_title(text: str) -> str:
    """A title of at most MAX_TITLE_CHARS, cut at a word with "…" when longer (a logbook's
    first line, a page's long heading), its runs of whitespace made one space."""
    text = " ".join(text.split())
    if len(text) <= MAX_TITLE_CHARS:
        return text
    cut = text[:MAX_TITLE_CHARS - 1]
    if " " in cut[MAX_TITLE_CHARS // 2:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-–—") + "…"


def first_line_title(text: str) -> str:
    """The first content line with a word in it (not a "-----" or "*****" rule), without
    Markdown heading marks (`short_title`)."""
    for block in paragraphs(text):
        for line in block.text.splitlines():
            line = line.lstrip("#").strip()
            if re.search(r"\w", line):
                return short_title(line)
    return ""
