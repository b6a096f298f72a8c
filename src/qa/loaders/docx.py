"""Word (.docx): paragraphs and tables in document order, read with python-docx.

A .docx is a zip archive: before anything is unpacked, the sizes its directory declares are
checked, so a zip bomb dressed as a .docx is refused without inflating it (Python's zipfile
never reads more than an entry declares, so the declared sizes bound the work).

Each paragraph becomes one paragraph of the text, and each table one whose lines are its
rows (cells joined by " | ", a cell's paragraphs by "; " where no punctuation ends them; a
one-column table, a box, as paragraphs). A paragraph is read as Word shows it with
tracked changes accepted, paragraphs in content controls included (python-docx's
`Paragraph.text` and body children skip both); a text box's paragraphs follow the paragraph
that anchors it; footnotes and endnotes follow the body. An item of a bulleted or numbered
list (numbering set on the paragraph or by its style) is written with the mark the chunker
knows, "- " or "3. ", and the items of a list are lines of one paragraph, as in Markdown:
without its mark a short item ("Bikes travel free") read as a heading. A numbered heading
keeps its number ("4. How to apply"). A paragraph ending in a colon and the short
paragraphs under it ("Opening hours:", "Saturday 8am to 2pm") are lines of one paragraph:
alone, each read as a heading. Two or more paragraphs in a row whose columns are set by tab
stops ("Adult<tab>£7.50<tab>£13.00") are a table's rows, cells joined by " | ".
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

from qa.loaders.base import BadDocument, Extracted, cell_text, clean_extracted, short_title

REVISION = 6  # 2: soft hyphens dropped; content controls, tracked insertions, notes read
#              3: list items and numbered headings written with their marks; short
#                 paragraphs under a colon's are lines of its paragraph; text boxes read;
#                 a table is one paragraph
#              4: a cell's paragraphs are joined by "; "; a one-column table's are paragraphs;
#                 a line break is a line break; a clause keeps its number ("4.2 ")
#              5: paragraphs in a row with columns set by tab stops are a table's rows
#              6: a row keeps its empty cells and a cell equal to the one before it
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
_TEXT = {W + "t": "", W + "tab": " ", W + "br": "\n", W + "cr": "\n", W + "noBreakHyphen": "-"}
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


def paragraph_text(paragraph: Any, tabs: bool = False) -> str:
    """A paragraph's text as Word shows it with tracked changes accepted: its runs, those
    in hyperlinks, fields, content controls and tracked insertions included, deleted text
    and the paragraphs of text boxes left out; tabs as spaces (with `tabs`, the tabs
    between two words as one tab: a column), line breaks (Shift+Enter: an address, lines
    under "Opening hours:") as line breaks, page and column breaks as spaces."""
    parts = []
    for element in paragraph.iter(*_TEXT):
        inside = element.getparent()
        while inside is not None and inside is not paragraph and inside.tag not in _NOT_HERE:
            inside = inside.getparent()
        if inside is not None and inside is not paragraph:
            continue
        if element.tag == W + "br" and element.get(W + "type") in ("page", "column"):
            parts.append(" ")  # a break of the page's layout, not of the text's lines
        elif element.tag == W + "tab" and tabs:
            parts.append("\t")
        else:
            parts.append(element.text or "" if element.tag == W + "t" else _TEXT[element.tag])
    lines = ("\t".join(c for c in (" ".join(cell.split()) for cell in line.split("\t")) if c)
             for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


# a first column that is a list's mark typed by hand ("1.<tab>Scope"), not a cell
_MARK_CELL = re.compile(r"(?:\d{1,3}|[A-Za-z]|[ivxlcIVXLC]{1,6})[.)]|[-•*–·▪◦]")
TAB_ROWS = 2  # paragraphs in a row with columns set by tab stops that are a table's rows


def _tab_row(text: str) -> bool:
    """Is the paragraph (as `paragraph_text(..., tabs=True)` gives it) a row of columns set
    by tab stops ("Adult<tab>£7.50<tab>£13.00"), not a list item typed by hand?"""
    return "\t" in text and not any(_MARK_CELL.fullmatch(line.partition("\t")[0])
                                    for line in text.split("\n") if "\t" in line)


_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"


def text_boxes(paragraph: Any) -> Iterator[str]:
    """The paragraphs of the text boxes anchored in `paragraph` (a sidebar, a callout), each
    once: Word writes a box twice, as a drawing and as its VML fallback, of which the
    fallback is skipped."""
    for box in paragraph.iter(W + "txbxContent"):
        inside = box.getparent()
        while inside is not None and inside is not paragraph and inside.tag != _FALLBACK:
            inside = inside.getparent()
        if inside is paragraph:
            yield from (paragraph_text(p) for p in box.iterchildren(W + "p"))


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


_LEVEL_TEXT = re.compile(r"%([1-9])")
ITEM_WORDS = 8  # a paragraph under "Opening hours:" this short is one of what it introduces
_ENDS = re.compile(r"""[.!?…]["'”’)\]]*$""")


class Numbering:
    """The list marks of a document's paragraphs, counted as Word counts them: per list
    (numId) and level, a level's count restarting when a level above it moves on."""

    def __init__(self, document: Any) -> None:
        self.styles: dict[str, Any] = {}
        for style in document.styles.element.iterchildren(W + "style"):
            self.styles[style.get(W + "styleId") or ""] = style
        self.levels: dict[str, dict[int, tuple[str, str, int]]] = {}
        try:
            numbering = document.part.numbering_part.element
        except Exception:  # noqa: BLE001 - none, or unreadable: the text without list marks
            numbering = None
        if numbering is not None:
            abstract = {a.get(W + "abstractNumId"): a
                        for a in numbering.iterchildren(W + "abstractNum")}
            for num in numbering.iterchildren(W + "num"):
                ref = num.find(W + "abstractNumId")
                base = abstract.get(ref.get(W + "val") if ref is not None else None)
                levels = {} if base is None else {
                    _int(lvl.get(W + "ilvl")): _level(lvl) for lvl in base.iter(W + "lvl")}
                for override in num.iterchildren(W + "lvlOverride"):
                    n = _int(override.get(W + "ilvl"))
                    lvl, start = override.find(W + "lvl"), override.find(W + "startOverride")
                    if lvl is not None:
                        levels[n] = _level(lvl)
                    if start is not None and n in levels:
                        levels[n] = (*levels[n][:2], _int(start.get(W + "val"), 1))
                self.levels[num.get(W + "numId") or ""] = levels
        self.counts: dict[str, list[int]] = {}

    def _properties(self, paragraph: Any) -> tuple[Any, str]:
        """The paragraph's numbering properties (its own, else its style's) and style id."""
        ppr = paragraph.find(W + "pPr")
        own = ppr.find(W + "numPr") if ppr is not None else None
        style_ref = ppr.find(W + "pStyle") if ppr is not None else None
        style_id = style_ref.get(W + "val") if style_ref is not None else "Normal"
        seen: set[str] = set()
        sid = style_id
        while own is None and sid in self.styles and sid not in seen:
            seen.add(sid)
            style = self.styles[sid]
            own = style.find(f"{W}pPr/{W}numPr")
            based = style.find(W + "basedOn")
            sid = based.get(W + "val") if based is not None else ""
        return own, style_id or ""

    def heading(self, paragraph: Any) -> bool:
        """Is the paragraph a heading or title (by its style, or an outline level)?"""
        ppr = paragraph.find(W + "pPr")
        if ppr is not None and ppr.find(W + "outlineLvl") is not None:
            return True
        style_ref = ppr.find(W + "pStyle") if ppr is not None else None
        style = self.styles.get(style_ref.get(W + "val") if style_ref is not None else "")
        name = style.find(W + "name") if style is not None else None
        return (name.get(W + "val") or "" if name is not None else "").lower().startswith(
            ("heading", "title"))

    def mark(self, paragraph: Any) -> tuple[str, bool]:
        """The paragraph's list mark ("" if none) and whether it is a list item (not a
        numbered heading)."""
        props, style_id = self._properties(paragraph)
        if props is None:
            return "", False
        num_id = props.find(W + "numId")
        ilvl = props.find(W + "ilvl")
        key = num_id.get(W + "val") if num_id is not None else ""
        level = min(_int(ilvl.get(W + "val")) if ilvl is not None else 0, 8)
        if key in ("", "0"):  # numbering switched off
            return "", False
        formats = self.levels.get(key, {})
        counts = self.counts.setdefault(key, [0] * 9)
        if counts[level] == 0:
            counts[level] = formats.get(level, ("", "", 1))[2]
        else:
            counts[level] += 1
        for deeper in range(level + 1, 9):
            counts[deeper] = 0
        heading = self.heading(paragraph)
        _, text, _ = formats.get(level, ("bullet", "", 1))
        shown = _LEVEL_TEXT.sub(lambda m: str(max(counts[int(m.group(1)) - 1], 1)), text)
        numbered = bool(_LEVEL_TEXT.search(text)) and all(
            formats.get(int(n) - 1, ("",))[0] in ("decimal", "decimalZero")
            for n in _LEVEL_TEXT.findall(text))
        if heading:
            return (f"{shown.strip()} " if numbered else ""), False
        if numbered and re.fullmatch(r"\d+[.)]|\d+(?:\.\d+)+[.)]?", shown.strip()):
            return f"{shown.strip()} ", True  # "3. ", and a clause's "4.2 " or "4.2.1. "
        return "- ", True


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _level(lvl: Any) -> tuple[str, str, int]:
    """A list level's number format ("decimal", "bullet"...), its text ("%1."), its start."""
    fmt, text, start = lvl.find(W + "numFmt"), lvl.find(W + "lvlText"), lvl.find(W + "start")
    return (fmt.get(W + "val") or "" if fmt is not None else "decimal",
            text.get(W + "val") or "" if text is not None else "",
            _int(start.get(W + "val"), 1) if start is not None else 1)


def _cells(row: object) -> list[list[str]]:
    """The paragraphs of each cell of a table's row, up to its last cell with text: a cell
    merged across columns (which python-docx gives once per column) once, an empty cell
    as no paragraphs, so that each cell stays under its column ('Support |  | Email')."""
    cells: list[list[str]] = []
    last = None
    for cell in row.cells:  # type: ignore[attr-defined]
        if cell._tc is last:
            continue
        last = cell._tc
        cells.append([line for p in cell._tc.iter(W + "p")
                      for line in paragraph_text(p).split("\n") if line])
        # (a cell's lines, <w:br/> or paragraphs, are joined by `cell_text`)
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _table_blocks(rows: list[list[list[str]]]) -> list[str]:
    """A table as blocks of text. A table of columns is one paragraph, a line per row, its
    cells joined by " | ", a cell's paragraphs by "; " (`cell_text`). A table with one column
    is a box of paragraphs (a callout, a layout table): each of its paragraphs is a
    paragraph, as a text box's are."""
    if all(sum(1 for texts in cells if texts) <= 1 for cells in rows):
        return [text for cells in rows for texts in cells for text in texts]
    return ["\n".join(" | ".join(cell_text(texts) for texts in cells) for cells in rows if cells)]


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
            numbering = Numbering(document)
            blocks: list[str] = []
            # the last block is a list, to which an item is one more line; or a line ending
            # in a colon, with the short lines under it
            state = {"list": False, "introduced": False}
            rows: list[str] = []  # paragraphs in a row with columns set by tab stops

            def paragraph(text: str, mark: str, item: bool, heading: bool) -> None:
                if item and state["list"]:
                    blocks[-1] += f"\n{mark}{text}"
                elif (state["introduced"] and not item and not heading
                      and not text.endswith(":") and len(text.split()) <= ITEM_WORDS
                      and not _ENDS.search(text)):
                    blocks[-1] += f"\n{text}"  # "Opening hours:" / "Saturday 8am to 2pm"
                    return
                else:
                    blocks.append(mark + text)
                state["list"] = item
                state["introduced"] = text.endswith(":") and not (heading or item)

            def end_rows() -> None:
                if len(rows) >= TAB_ROWS:  # a table: a line per row, cells by " | "
                    blocks.append("\n".join(row.replace("\t", " | ") for row in rows))
                    state["list"] = state["introduced"] = False
                else:
                    for row in rows:
                        paragraph(row.replace("\t", " "), "", False, False)
                rows.clear()

            for element in blocks_of(document.element.body):
                if element.tag == W + "p":
                    text = paragraph_text(element, tabs=True)
                    boxes = [b for b in text_boxes(element) if b]
                    if boxes:  # after the paragraph they are anchored in, each apart
                        end_rows()
                        state["list"] = state["introduced"] = False
                        blocks.extend(([text.replace("\t", " ")] if text else []) + boxes)
                        continue
                    if not text:
                        continue
                    mark, item = numbering.mark(element)
                    heading = numbering.heading(element)
                    if _tab_row(text) and not (item or heading):
                        rows.append(text)
                        continue
                    end_rows()
                    paragraph(text.replace("\t", " "), mark, item, heading)
                else:
                    end_rows()
                    state["list"] = state["introduced"] = False
                    table = [_cells(r) for r in Table(element, document).rows]
                    blocks.extend(_table_blocks(table))
            end_rows()
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
        return Extracted(text=text, title=short_title(title))
