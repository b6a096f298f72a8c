"""PDF: the text layer of every page, read with pypdf (BSD licence).

Pages are joined by a blank line and recorded as spans, so a citation knows its page; a page
whose sentence goes on on the next page (it ends without a full stop, the next one starts
in lower case) is joined to it by a line break only, so that sentence stays whole. Running
headers and footers (a line at the top or bottom of most pages, page numbers aside) and
bare page numbers are dropped, so they are never quoted nor glued to a sentence; a table's
row has its cells joined by " | " (where its pieces are drawn in columns); a word
hyphenated at a line break is joined again (`infor-` / `mation`), unless the document
writes it with its hyphen elsewhere. A heading is told by its place (a short line after a
sentence's end) and by its size (set larger than the body text). An encrypted PDF and a
scanned PDF with no text layer are refused with a clear reason (qa does no OCR).
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, NamedTuple

from qa.loaders.base import BadDocument, Extracted, clean_extracted, short_title

REVISION = 7  # 3: running headers, footers and page numbers dropped; words and sentences
# broken across lines and pages joined; a wrapped line is no heading; ligatures as letters;
# a line break inside a sentence a space; 4: a line ending in "and", "of"... or as wide
# as its column is no heading; a heading after a list item is one; a converter's file name
# is no title; three heading-like lines in a row are a table's rows
# 5: a line set larger than the body text is a heading among such lines too
# 6: a table's row has its cells apart (" | "), where the layout draws them in columns, on
# one line where its cells are drawn one after the other; columns of prose drawn line by
# line across the page are read one after the other
# 7: a word drawn in pieces a little apart is one word, not "custo mers"
PAGE_BREAK = "\n\n"
PAGE_CONTINUES = "\n"  # between two pages that one sentence runs across
EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be running heads
MAX_PAGES = 5000
HEADING_CHARS = 80
TABLE_ROWS = 3  # short lines in a row that are a table's rows, not headings
LARGER = 1.0  # points over the body text's size: a line this much larger is a heading


def _ends_sentence(line: str) -> bool:
    return line.rstrip().endswith((".", "!", "?", ":", "”", '"'))


# words a heading does not end with, though a line of a sentence broken by the layout may:
# "The north pier was rebuilt between November 2024 and" / "March 2025 at a cost of..."
_OPEN_WORDS = frozenset("and or but nor the a an of to in at by with from between than its their "
                        "his her our your whose which that".split())
_LAST_WORD = re.compile(r"(?:^|\W)([^\W\d_]+)$")


def _open_end(text: str) -> bool:
    """Does `text` end with a word no heading ends with ("and", "of", "the", "a"...)?"""
    last = _LAST_WORD.search(text[-20:])
    return last is not None and last.group(1) in _OPEN_WORDS  # "Appendix A" is a heading
_LIST_LINE = re.compile(r"\s*(?:[-*•‣◦▪–]|\d{1,3}[.)])\s")
WIDE = 0.9  # of the page's longest line: a line as wide as the column is wrapped text


def _is_heading(line: str, after_break: bool, following: str = "", width: int = 0) -> bool:
    """A short line that opens with a capital or digit, ends without punctuation and follows
    the end of a sentence (or starts the page): a title or heading, not wrapped text. Not
    when the line after it goes on (in lower case, or after a word no heading ends with),
    nor when it fills the column (`width`: the page's longest line) and text follows it:
    that is the first line of a paragraph (in a narrow column, as short as a heading)."""
    text = line.strip()
    wrapped = bool(following.strip()) and len(text.split()) >= 6 and len(text) >= WIDE * width
    return (after_break and 0 < len(text) <= HEADING_CHARS and (text[0].isupper()
            or text[0].isdigit()) and not text.endswith((".", ",", ";", ":", "!", "?", "-"))
            and not following.lstrip()[:1].islower() and not _open_end(text)
            and not wrapped)


def _key(line: str) -> str:
    """A line as its letters, to match a line of the text with the same line as drawn."""
    return "".join(clean_extracted(line).split())


def page_paragraphs(text: str, large: frozenset[str] = frozenset()) -> str:
    """A page's text with headings set apart by blank lines, so that a heading never becomes
    the start of the sentence under it (pypdf gives lines, not paragraphs). Three or more
    such lines in a row are no headings but the rows of a table (or a block of an address, a
    title page): they stay lines of one paragraph, which can be quoted; but a line set
    larger than the body text (`large`: their `_key`s) is a heading, in such a run too (a
    title over its subtitle, a heading over a table). A table's rows with their cells apart
    ("Model | Tank", `_cells`) are a block of their own, and no headings."""
    after_break = True
    lines = text.split("\n")
    width = max(len(line.strip()) for line in lines)
    headings = []
    rows = [ROW_JOIN in line for line in lines]
    for n, line in enumerate(lines):
        headings.append(not rows[n] and _is_heading(
            line, after_break, lines[n + 1] if n + 1 < len(lines) else "", width))
        # a list's item ends where its line does (unless it ends mid-phrase: "with")
        after_break = headings[-1] or rows[n] or _ends_sentence(line) or not line.strip() or (
            _LIST_LINE.match(line) is not None and not _open_end(line))
    run = 0
    for n in range(len(lines) + 1):
        if n < len(lines) and headings[n] and _key(lines[n]) not in large:
            run += 1
            continue
        if run >= TABLE_ROWS:
            headings[n - run:n] = [False] * run
            if n - run > 0 and lines[n - run - 1].strip():  # a block of its own
                lines[n - run] = "\n" + lines[n - run]
            if n < len(lines) and lines[n].strip():
                lines[n] = "\n" + lines[n]
        run = 0
    out: list[str] = []
    for n, (line, heading) in enumerate(zip(lines, headings, strict=True)):
        # a table's rows are a block of their own, as a heading is
        opens = heading or rows[n] and (n == 0 or not rows[n - 1])
        if opens and out and out[-1] != "":
            out.append("")
        out.append(line)
        if heading or rows[n] and n + 1 < len(lines) and not rows[n + 1]:
            out.append("")
    return "\n".join(out).strip()


_PAGE_NUMBER = re.compile(r"^\W*(?:page\s*)?\d{1,5}(?:\s*(?:of|/)\s*\d{1,5})?\W*$",
                          re.IGNORECASE)
_BROKEN_WORD = re.compile(r"(\w+)[-\u00ad]\n([^\W\d_A-Z]\w*)")


def _shape(line: str) -> str:
    """A line as running heads repeat it: case and spacing aside, any number as `#`."""
    return re.sub(r"\d+", "#", " ".join(line.split()).lower())


def _edges(lines: list[str]) -> list[int]:
    """The indices of the first and last EDGE_LINES non-blank lines of a page."""
    full = [i for i, line in enumerate(lines) if line.strip()]
    return sorted(set(full[:EDGE_LINES] + full[-EDGE_LINES:]))


def drop_furniture(pages: list[str]) -> list[str]:
    """The pages without their running headers and footers: a line among the first or last
    EDGE_LINES of a page that (numbers aside) is at the top or bottom of at least half the
    pages (two at least), and a line that is only a page number ("7", "Page 7 of 9")."""
    lines = [page.split("\n") for page in pages]
    seen: Counter[str] = Counter()
    for page in lines:
        seen.update({_shape(page[i]) for i in _edges(page)})
    need = max(2, math.ceil(len(pages) / 2))
    kept = []
    for page in lines:
        drop = {i for i in _edges(page)
                if _PAGE_NUMBER.match(page[i]) or seen[_shape(page[i])] >= need}
        kept.append("\n".join(line for i, line in enumerate(page) if i not in drop).strip())
    return kept


def join_broken_words(text: str, document: str) -> str:
    """`text` with each word hyphenated at a line break joined (`infor-\nmation`), unless
    `document` writes it with the hyphen (`well-known`), which then stays, on one line."""
    def join(m: re.Match[str]) -> str:
        hyphenated = f"{m.group(1)}-{m.group(2)}"
        return hyphenated if hyphenated in document else m.group(1) + m.group(2)

    return _BROKEN_WORD.sub(join, text)


# a line break inside a sentence: after a line that does not end one (nor a clause a list
# may follow), before a line that goes on in lower case
_WRAPPED = re.compile(r"""(?<=[^\s.!?…:;"”’)\]])\n(?=[^\W\d_A-Z])""")


# ... or after a word no line of a layout ends with but one that wraps ("between November
# 2024 and\nMarch 2025"), before a word or a number
_WRAPPED_AFTER = re.compile(r"(?<=[^\W\d_])\n(?=\w)")


def join_wrapped_lines(text: str) -> str:
    """`text` with each line break inside a sentence a space (`debated at\nlength` is
    `debated at length`; `rebuilt between November 2024 and\nMarch 2025`), so that a quote
    reads as the sentence it is; the other line breaks a page's layout means (before a
    capital, a number, a list mark) stay."""
    def row_at(at: int) -> bool:  # is a line on either side of this break a table's row?
        return ROW_JOIN in text[text.rfind("\n", 0, at) + 1:text.find("\n", at + 1) % (
            len(text) + 1)]

    text = _WRAPPED.sub(lambda m: "\n" if row_at(m.start()) else " ", text)
    return _WRAPPED_AFTER.sub(
        lambda m: " " if _open_end(text[max(0, m.start() - 20):m.start()])
        and not row_at(m.start()) else "\n", text)


# A title a PDF converter puts in the metadata for want of one: the source file's name
# ("Microsoft Word - report.docx", "C:\\work\\draft3.doc", "slides.pptx") or a placeholder
_MADE_UP_TITLE = re.compile(
    r"^(?:microsoft (?:word|powerpoint|excel) - .*|.*\.(?:docx?|pdf|pptx?|xlsx?|odt|rtf|txt|"
    r"indd|tex|dvi|qxp|pages|key|html?)|untitled(?: document)?\d*|document\d*|title|"
    r"no title|\(?anonymous\)?)$", re.IGNORECASE)


ALIGNED = 2.0  # points: cells of two lines drawn this close in x start the same column
CELL_GAP = 1.0  # ems of blank between a piece's end and the next piece: a cell's edge
ROW_JOIN = " | "  # between a table row's cells, as the Word and HTML loaders write them
AVERAGE_WIDTH = 0.5  # ems a character is wide, where the font does not tell


class _Piece(NamedTuple):
    text: str
    x: float  # where the text was last moved to (pieces after a font change run on from it)
    gap: float  # blank between the end of the text before it and `x`, in ems (0: ran on)


_WORD = re.compile(r"\w")
NEAR = 8  # lines: a row's cells line up with those of a row at most this far away


# what a line's first cell is when it is no cell: a list's mark drawn apart from its item
# ("•", "3.", "b)"), or a label drawn apart from its value ("Date:")
_NO_CELL = re.compile(r"\s*(?:[-*•‣◦▪–·]|\(?(?:\d{1,3}|[a-zA-Z]|[ivxlc]{1,6})[.)]|.*:)\s*")


def _starts(line: list[_Piece]) -> list[float]:
    """Where the cells of a line may start: pieces drawn an em or more past the text before
    them, with a word in them (a run of dots, a contents page's leader, opens none), but
    not the text after a list's mark or a label."""
    at = [n for n, p in enumerate(line) if p.gap >= CELL_GAP and _WORD.search(p.text)]
    if at and _NO_CELL.fullmatch("".join(p.text for p in line[:at[0]])):
        at = at[1:]
    return [line[n].x for n in at]


def _cells(lines: list[str], placed: list[list[_Piece]]) -> list[str]:
    """The page's lines (`placed`: the pieces of each, and where each is drawn) with each of
    its tables' rows on one line, its cells joined by " | ". A cell starts at a piece drawn
    an em or more past the end of the text before it, at an x where a cell of another row
    near it starts too: the columns of a table. A word spaced out in a justified line, a
    list's text beside its bullet, and the pieces of a line in a change of font are no
    cells. A row whose cells are drawn one after the other on lines of their own (a cell
    of two lines, the others centred on it) is one line again, its cells in column order;
    the lines of two columns of prose, drawn across the page line by line, are each
    column's lines in turn."""
    starts = [_starts(line) for line in placed]

    def lined_up(x: float, n: int) -> bool:
        return any(abs(x - other) <= ALIGNED for m in range(max(0, n - NEAR), n + NEAR + 1)
                   if m != n and m < len(starts) for other in starts[m])

    rows = [n for n in range(len(placed)) if any(lined_up(x, n) for x in starts[n])]
    if not rows:
        return lines
    out: list[str | None] = list(lines)
    first = 0
    while first < len(rows):  # each table: rows no more than NEAR lines apart, sharing a column
        last = first
        while last + 1 < len(rows) and rows[last + 1] - rows[last] <= NEAR and any(
                abs(x - other) <= ALIGNED for x in starts[rows[last + 1]]
                for n in rows[first:last + 1] for other in starts[n]):
            last += 1
        table = rows[first:last + 1]
        _table(out, placed, table, sorted({placed[n][0].x for n in table}
                                          | {x for n in table for x in starts[n]}))
        first = last + 1
    return [line for line in out if line is not None]


def _table(out: list[str | None], placed: list[list[_Piece]], rows: list[int],
           xs: list[float]) -> None:
    """Write the table whose cells start at `xs`, its rows with cells lined up drawn on the
    lines `rows`, into `out`: each row on the first of its lines, the others None. The
    lines between and after those (up to NEAR) that start at a column are of the row before
    them while they go on to the columns on its right, else of a row of their own."""
    columns: list[float] = []
    for x in xs:  # x positions this close are one column
        if not columns or x - columns[-1] > ALIGNED:
            columns.append(x)

    def column(x: float) -> int | None:
        return next((c for c, at in enumerate(columns) if abs(x - at) <= ALIGNED), None)

    lined = set(rows)
    groups: list[tuple[list[int], dict[int, list[str]]]] = []  # each row: lines, cells
    last = len(columns)  # the column the row being read has reached
    for n in range(rows[0], min(len(placed), rows[-1] + NEAR + 1)):
        pieces = placed[n]
        if not pieces:
            continue
        at = column(pieces[0].x)
        if at is None:
            if n > rows[-1]:
                break  # text under the table
            last = len(columns)
            continue
        cells: dict[int, list[str]] = {}
        for piece in pieces:
            moved = column(piece.x) if piece.gap > 0 else None
            at = moved if moved is not None else at
            cells.setdefault(at, []).append(piece.text)
        lead = min(cells)
        if lead < last or n in lined and lead == 0 or not groups:
            groups.append(([], {}))
        groups[-1][0].append(n)
        for c, texts in cells.items():
            groups[-1][1].setdefault(c, []).append("".join(texts))
        last = max(cells)

    def written(of: list[tuple[list[int], dict[int, list[str]]]]) -> list[list[str]]:
        return [[" ".join(" ".join(cells.get(c, [])).split()) for c in range(len(columns))]
                for _, cells in of]

    wide = [n for n, (_, cells) in enumerate(groups) if len(cells) > 1]
    if not wide:
        return
    if _prose_columns(written([groups[n] for n in wide])):
        # two columns of text drawn across the page line by line: each column in turn, with
        # the lines of one column after them that go on with its text
        end = wide[-1] + 1
        while end < len(groups) and _goes_on(written(groups[:end]), groups[end][1]):
            end += 1
        rows_text = written(groups[wide[0]:end])
        for lines, _ in groups[wide[0]:end]:
            for n in lines:
                out[n] = None
        out[groups[wide[0]][0][0]] = "\n".join(
            row[c] for c in range(len(columns)) for row in rows_text if row[c])
        return
    for (lines, _), row in zip([groups[n] for n in wide], written([groups[n] for n in wide]),
                               strict=True):
        for n in lines:
            out[n] = None
        out[lines[0]] = ROW_JOIN.join(row).strip()


def _goes_on(table: list[list[str]], cells: dict[int, list[str]]) -> bool:
    """Does a line of one column (`cells`) go on with the text of that column above it?"""
    if len(cells) != 1:
        return False
    (c, texts), = cells.items()
    above = [row[c] for row in table if row[c]]
    return bool(above) and (not _ends_sentence(above[-1]) or "".join(texts).lstrip()[:1]
                            .islower())


def _prose_columns(table: list[list[str]]) -> bool:
    """Are the 'rows' lines of columns of prose: in each column, most lines go on with the
    sentence of the line above (in lower case)?"""
    if len(table) < TABLE_ROWS:
        return False
    for c in range(len(table[0])):
        cells = [row[c] for row in table if row[c]]
        going_on = sum(cell[:1].islower() for cell in cells[1:])
        if len(cells) < TABLE_ROWS or 2 * going_on < len(cells) - 1:
            return False
    return True


def _estimate(text: str) -> float:
    """The width of a text in ems where its font does not tell: an average per character."""
    return AVERAGE_WIDTH * len(text)


def _width_of(font: Any) -> Callable[[str], float]:
    """A function giving the width of a text in `font` in ems (the font's own widths where
    pypdf reads them, else `_estimate`)."""
    try:
        from pypdf.generic._font import Font

        widths = Font.from_font_resource(font)
        widths.get_text_width("a")
    except Exception:  # noqa: BLE001 - an odd font or another pypdf: estimate
        return _estimate

    def width(text: str) -> float:
        try:
            return float(widths.get_text_width(text)) / 1000
        except Exception:  # noqa: BLE001 - a width table pypdf cannot read: estimate
            return _estimate(text)

    return width


# pypdf puts a space before a piece of text drawn half its font's space or more past the end
# of the text before it; a word drawn in pieces (kerned, its syllables placed one by one) a
# little apart read "custo mers". Words are drawn about a space apart, but a justified line
# set tight draws them as close as half a space: the gap alone cannot tell (`_join_pieces`).
PYPDF_SPACE = 0.45  # of the font's space: a gap this wide or more may have had pypdf's space
WORD_SPACE = 0.75  # ... and one narrower than this may be inside a word
_MAYBE_SPACE = "\ue010"  # marks such a space in a page's text until the document's words tell
_WORDS = re.compile(r"[^\W_]+")


def _drawn_lines(page: Any, fonts: dict[object, Callable[[str], float]] | None = None,
                 ) -> tuple[str, list[tuple[str, float]]]:
    """The page's text, its tables' rows on lines of their own with their cells apart
    (`_cells`), and each line as drawn: its `_key` and the font size most of its letters
    are set in (the font's size times the text and page scales)."""
    lines: list[tuple[str, float]] = []
    line: list[tuple[str, float]] = []
    placed: list[list[_Piece]] = [[]]  # each line of the text: its pieces, where drawn
    drawn: list[str] = []  # what pypdf wrote, piece by piece
    joined: list[str] = []  # ... less the spaces it put inside words (`WORD_SPACE`)
    fonts = {} if fonts is None else fonts  # by the font's object number: once a document
    # where the text was last moved to, where it has got to since, and the width of a space
    # in its font (0: not known)
    run = [0.0, 0.0, 0.0]

    def end_line() -> None:
        if line:
            sizes: Counter[float] = Counter()
            for piece, size in line:
                sizes[size] += len(piece.strip())
            lines.append((_key("".join(piece for piece, _ in line)), sizes.most_common(1)[0][0]))
            line.clear()

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        drawn.append(text)
        scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
        em = float(size) * (scale or 1.0)
        x = float(tm[4] * cm[0] + tm[5] * cm[2] + cm[4])
        ref = getattr(font, "indirect_reference", None)
        key = (ref.idnum, ref.generation) if ref is not None else id(font)
        if key not in fonts:
            fonts[key] = _width_of(font)
        width = fonts[key]
        kept = []
        for n, piece in enumerate(text.split("\n")):
            if n:
                end_line()
                placed.append([])
            if piece.strip():
                pieces = placed[-1]
                line.append((piece, round(em, 1)))
                moved = bool(pieces) and abs(x - run[0]) > 0.5
                gap = (x - run[1]) / em if moved and em else 0.0
                space = width(" ") if width is not _estimate else 0.0
                if moved and _inside_word(piece, pieces[-1].text, gap,
                                          min(space, run[2]) if run[2] else space):
                    piece = _MAYBE_SPACE + piece[1:]  # pypdf's, inside a word?
                if moved or not pieces:
                    run[0] = run[1] = x
                    piece_text = piece.lstrip()  # a space pypdf puts for the move
                else:
                    piece_text = piece
                run[1] += width(piece_text) * em
                run[2] = space
                pieces.append(_Piece(piece, x, max(gap, 0.0) if moved else 0.0))
            kept.append(piece)
        joined.append("\n".join(kept))

    text = page.extract_text(visitor_text=visit) or ""
    end_line()
    if "".join(drawn) == text:  # each line of the text is known by where it is drawn
        text = "\n".join(_cells("".join(joined).split("\n"), placed))
    return text, lines


def join_pieces(texts: list[str]) -> list[str]:
    """The pages' texts with each space marked as maybe inside a word (`_MAYBE_SPACE`) gone
    where the document itself writes the word whole elsewhere and never writes its pieces
    as words ("custo mers": "customers" is a word of it, "custo" and "mers" are not), else
    a space: "the packages" stays, and so does "in to" though "into" is a word of it."""
    if not any(_MAYBE_SPACE in text for text in texts):
        return texts
    marked = re.compile(f"\\S*{_MAYBE_SPACE}\\S*")
    words = Counter(w.lower() for text in texts for w in _WORDS.findall(marked.sub(" ", text)))

    def join(token: re.Match[str]) -> str:
        parts = token.group().split(_MAYBE_SPACE)
        cores = ["".join(_WORDS.findall(part)).lower() for part in parts]
        whole = "".join(cores)
        if words[whole] and not any(words[core] for core in cores):
            return "".join(parts)
        return " ".join(parts)

    return [marked.sub(join, text) for text in texts]


def _inside_word(piece: str, before: str, gap: float, space: float) -> bool:
    """Is the space that opens `piece`, drawn `gap` ems past the end of the text `before` it
    on its line, one pypdf put between two pieces of one word: the gap is wide enough for
    pypdf to put one (`PYPDF_SPACE`; a narrower one opens with a space character of the
    text) but narrower than words are drawn apart (`WORD_SPACE`) in the fonts on either
    side (`space`: the narrower one's space, in ems; 0 where a font's widths are not
    known), between letters or digits?"""
    if not space or not piece.startswith(" ") or piece[1:2].isspace() or not before:
        return False
    return (PYPDF_SPACE * space <= gap < WORD_SPACE * space
            and before[-1].isalnum() and piece[1:2].isalnum())


def large_lines(pages: list[list[tuple[str, float]]]) -> frozenset[str]:
    """The `_key`s of the lines set larger than the body text (the size most letters of the
    document are set in): the document's titles and headings."""
    sizes: Counter[float] = Counter()
    for page in pages:
        for key, size in page:
            sizes[size] += len(key)
    if not sizes:
        return frozenset()
    body = sizes.most_common(1)[0][0]
    return frozenset(key for page in pages for key, size in page if size >= body + LARGER)


def _continues(before: str, after: str) -> bool:
    """Does the sentence at the end of one page go on at the start of the next?"""
    return bool(before.strip()) and not _ends_sentence(before) and after[:1].islower()


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
            fonts: dict[object, Callable[[str], float]] = {}
            drawn = [_drawn_lines(page, fonts) for page in reader.pages]
            raw_texts = join_pieces([clean_extracted(text).strip() for text, _ in drawn])
            large = large_lines([lines for _, lines in drawn])
            meta_title = (reader.metadata.title if reader.metadata else None) or ""
        except BadDocument:
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                RecursionError, OSError) as exc:
            raise BadDocument(f"{name}: the PDF is corrupt or unreadable "
                              f"({type(exc).__name__})") from None
        if not raw_texts:
            raise BadDocument(f"{name}: the PDF has no pages")
        if not any(raw_texts):
            raise BadDocument(f"{name}: scanned PDF with no text layer (qa does not do OCR)")
        kept = drop_furniture(raw_texts)
        if not any(kept):  # nothing but what looked like running heads: keep it all
            kept = raw_texts
        whole = "\n".join(kept)
        texts = [join_wrapped_lines(page_paragraphs(join_broken_words(text, whole), large))
                 for text in kept]
        pieces: list[str] = []
        pages: list[tuple[int, int]] = []
        pos = 0
        for n, text in enumerate(texts):
            if n:
                joint = PAGE_CONTINUES if _continues(texts[n - 1], text) else PAGE_BREAK
                pieces.append(joint)
                pos += len(joint)
            pages.append((pos, pos + len(text)))
            pieces.append(text)
            pos += len(text)
        full = "".join(pieces)
        title = clean_extracted(str(meta_title)).strip()
        if _MADE_UP_TITLE.search(title):  # what a converter wrote, not the document's title
            title = ""
        if not title:
            title = next(line.strip() for t in texts if t for line in t.splitlines()
                         if line.strip())
        return Extracted(text=full, title=short_title(title), pages=tuple(pages))


def _opens_without_password(reader: Any) -> bool:
    """An encrypted PDF with an empty user password (only an owner password restricts
    printing or copying) opens like any other: every reader shows it without asking."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - a cipher pypdf cannot run here: treat as locked
        return False
