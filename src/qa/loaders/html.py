"""HTML: the page's main text, found by trafilatura (navigation, scripts, footers and other
boilerplate dropped); selectolax is the fallback for short pages where trafilatura finds
much less text than the page's blocks hold (or none).

The extracted text has one paragraph per block, separated by blank lines, so paragraphs and
sentences never run across blocks, and inline elements (b, i, a, span, code, sup...) stay
inside the sentence they are part of. trafilatura's own rescue for short pages (its
"baseline", which joins every text node of the body with a line break, so `with <b>bold</b>
words` became three paragraphs) is turned off; the fallback takes its place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from qa.loaders.base import (
    BadDocument,
    Extracted,
    cell_text,
    clean_extracted,
    decode_text,
    looks_like_text,
    short_title,
)

REVISION = 12  # 2: inline elements and <br> no longer split sentences into paragraphs
#              3: a list's items are lines of one paragraph, each marked "- "; a short
#                 page is read without the blocks it names as furniture; a table's rows
#                 are lines of one paragraph; so are a definition list's term and its
#                 definitions, and a line ending in a colon and the short lines under it;
#                 a <div> of text is read as the paragraph it is
#              4: an accordion's question, held in a <button>, is a heading; a <pre>
#                 block is a fenced block of its own; a cell's lines are joined by "; ";
#                 a figure's caption is read; a table's caption is no row; the lines
#                 of a <br> block are lines of one paragraph
#              5: a table that lays the page out (one row, a table in it, role
#                 presentation) is read as blocks, a cell of links in it dropped
#              6: an ordered list's items are numbered ("4. "), as a browser shows them
#              7: a table's cell that reads like a share button ("Email", "PDF") is kept
#              8: the headings of a page with no main part named are read
#              9: a text that reads like a share button is kept unless it is a link's
#              10: the fallback writes a table's rows as lines, not a paragraph per cell
#              11: footnote and citation marks ([1], a linked superscript) are left out
#              12: a <template> is never text
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title)\b",
                         re.IGNORECASE | re.DOTALL)
_DROP = "script, style, noscript, nav, header, footer, aside, form, iframe, svg, template, button"
# Elements whose start and end separate paragraphs (any other element is inline)
_BLOCKS = ("address, article, aside, blockquote, br, dd, details, dialog, div, dl, dt, "
           "fieldset, figcaption, figure, h1, h2, h3, h4, h5, h6, hr, li, main, ol, p, pre, "
           "section, summary, table, td, th, tr, ul")
_MENUS = "div, ul, ol, p, li, section, table, tr, td, dl"
MAX_MENU_CHECKS = 2000
# class or id names (a whole word of them) that sites give their furniture
_FURNITURE = re.compile(
    r"(?:^|[\s_-])(?:cookies?|consent|gdpr|banner|footer|navbar|nav|menu|share|sharing|social|"
    r"related|newsletter|subscribe|comments?|sidebar|advert|ads?|promo|breadcrumbs?|"
    r"skip-link)(?=$|[\s_-])", re.IGNORECASE)
# ... of which these never hold a page's text, on any page: consent and cookie banners
_BANNERS = re.compile(r"(?:^|[\s_-])(?:cookies?|consent|gdpr)(?=$|[\s_-])", re.IGNORECASE)
_BREAK = "\ue000"  # a private-use character marking a block boundary in the fallback's text
_ITEM, _END = "\ue001", "\ue002"  # ... and the start and end of a list item
_EMPTY_ITEM = re.compile(f"{_ITEM}[\\s{_BREAK}]*{_END}")
_ITEM_START = re.compile(f"{_ITEM}[\\s{_BREAK}{_ITEM}]*")
_LIST_ITEM = re.compile(r"[-*•] ")  # as trafilatura writes a list item
# marks an ordered list's item with its number (`_item_numbers`): a word, as
# trafilatura keeps it ("- QAITEMNUMBER4QAITEMNUMBER Print a test page.")
_NUMBER = "QAITEMNUMBER"
_NUMBERED = re.compile(f"(?:[-*•] )?{_NUMBER}(-?\\w+){_NUMBER} *")
# an item as `_paragraph_text` writes it ("4. ", "IV. "), or as its list wrote it ("2.1. ")
_NUMBERED_ITEM = re.compile(r"(?:-?\d+(?:\.\d+)*|[a-zA-Z]+)[.)] ")
# an item that writes its own number ("1. Install", "2.1. Network", "b) Drum", "Step 3:")
_OWN_NUMBER = re.compile(r"(?:\d+(?:\.\d+)*|[a-zA-Z]|[ivxlcdm]+|[IVXLCDM]+)[.)]\s|[Ss]tep \d+\b")
_NO_MARKS = re.compile(r"list-style(?:-type)?\s*:\s*none", re.IGNORECASE)


def _item_label(n: int, style: str) -> str:
    """The label of the `n`th item of an ordered list of `type` `style`, as a browser draws
    it: 4, d, D, iv, IV (a number where the style cannot write `n`)."""
    if style in ("a", "A") and n > 0:
        letters = ""
        while n:
            n, rest = divmod(n - 1, 26)
            letters = chr(ord("a") + rest) + letters
        return letters.upper() if style == "A" else letters
    if style in ("i", "I") and 0 < n < 4000:
        roman = ""
        for value, numeral in ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"),
                               (90, "xc"), (50, "l"), (40, "xl"), (10, "x"), (9, "ix"),
                               (5, "v"), (4, "iv"), (1, "i")):
            count, n = divmod(n, value)
            roman += numeral * count
        return roman.upper() if style == "I" else roman
    return str(n)


def _integer(value: str | None) -> int | None:
    try:
        return int((value or "").strip())
    except ValueError:
        return None


def _item_numbers(start: str | None, reverse: bool, style: str | None,
                  values: list[str | None]) -> list[str]:
    """The labels of an ordered list's items (`values`: each item's `value` attribute), as a
    browser counts them: from `start` (1, or the number of items when `reversed`), up or
    down by one, an item's `value` setting its number and the count after it."""
    step = -1 if reverse else 1
    first = _integer(start)
    n = (len(values) if reverse else 1) if first is None else first
    labels = []
    for value in values:
        given = _integer(value)
        n = n if given is None else given
        labels.append(f"{_NUMBER}{_item_label(n, (style or '1').strip())}{_NUMBER} ")
        n += step
    return labels
SHORT = 250  # characters: below this, trafilatura's text may have missed the page's text


_ENDS_SENTENCE = re.compile(r"""[.!?…]["'”’)\]]*$""")


def _ends_sentence(text: str) -> bool:
    """Does `text` end a sentence? Only its end is read: a paragraph that grows line by
    line was searched whole at each line, minutes for a page of short lines."""
    return bool(_ENDS_SENTENCE.search(text[-16:]))


def is_html_page(raw: bytes) -> bool:
    """Do the bytes open as an HTML page does (a doctype, <html>, <head>...), comments
    aside? Not merely hold a tag, as Markdown may."""
    return bool(_HTML_START.match(raw[:4096].lstrip(b"\xef\xbb\xbf")))


def _run_of(line: str) -> str:
    """What kind of run of lines `line` belongs to: "item" (of a list), "row" (of a table, as
    trafilatura writes it: "| a | b |"), or "" (a paragraph of its own)."""
    item = _LIST_ITEM.match(line) or _NUMBERED_ITEM.match(line)
    return "item" if item else "row" if line.startswith("|") else ""


@dataclass(frozen=True)
class _Blocks:
    """Texts of the page's blocks that trafilatura's lines do not tell apart: the terms and
    definitions of definition lists (<dt>, <dd>: written as list items, "- The red light
    blinks"), and headings (h1-h6, and a <details> block's <summary>)."""

    terms: frozenset[str] = frozenset()
    definitions: frozenset[str] = frozenset()
    headings: frozenset[str] = frozenset()


def _blocks(html: str) -> _Blocks:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    return _Blocks(*(frozenset(" ".join(n.text(separator=" ").split()) for n in tree.css(tags))
                     for tags in ("dt", "dd", "h1, h2, h3, h4, h5, h6, summary")))


def _in_main(html: str) -> str | None:
    """The page with what its <body> holds inside a <main>, for a page that names no main
    part (no <main>, <article> or role="main"); None for one that does, or none to read."""
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return None
    body = tree.find("body") if tree.tag == "html" else None
    if body is None or len(body) == 0 or tree.xpath("//main | //article | //*[@role='main']"):
        return None
    main = lxml.html.Element("main")
    main.text, body.text = body.text, None
    main.extend(list(body))
    body.append(main)
    return str(lxml.html.tostring(tree, encoding="unicode"))


def _only_adds_headings(text: str, fuller: str, blocks: _Blocks) -> bool:
    """Does `fuller` hold every line of `text`, in order, and more, each line it adds a
    heading of the page?"""
    have = [line for line in text.splitlines() if line.strip()]
    n = 0
    for line in (line for line in fuller.splitlines() if line.strip()):
        if n < len(have) and line == have[n]:
            n += 1
        elif " ".join(line.split()) not in blocks.headings:
            return False
    return n == len(have) and fuller.count("\n") > text.count("\n")


ITEM_WORDS = 8  # a line under "Opening hours:" this short is one of what it introduces
_CODE_FENCE = re.compile(r"`{3,}")


# marks a break inside a table's cell: a word, as trafilatura drops private-use and
# invisible characters (any left where no row splits it is a space)
_CELL_BREAK = "QACELLBREAK"
_LINE_BREAK = "QALINEBREAK"  # ... and a <br> elsewhere, the same way
_KEEP = "QAKEEPTEXT"  # ... and the start of a table cell's text trafilatura would drop
_CELL_BLOCKS = ("br", "p", "div", "li")


def _layout_tables_as_blocks(tree: Any) -> bool:
    """Make each table of the page's tree that lays the page out, rather than holding data,
    blocks (<div>s) that trafilatura reads as the page's text: a table of one row (a menu
    in one cell, the page's text in the next), one that holds a table, or one marked as
    presentation. Read as a table, its cells were one row, one 'sentence' of the menu's
    links and every paragraph of the page ('| Home; Hire | Village Hall hire; The main
    hall seats 120 ...'). A cell of it that is mostly links (a menu) goes. Were any?"""
    changed = False
    for table in list(tree.iter("table")):
        rows = table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr")
        if not (len(rows) == 1 or (table.get("role") or "").lower() in ("presentation", "none")
                or table.xpath(".//td//table | .//th//table")):
            continue
        for part in [table, *table.xpath("./thead | ./tbody | ./tfoot | ./caption"), *rows]:
            part.tag = "div"
        for row in rows:
            for cell in row.xpath("./td | ./th"):
                if cell.text_content().strip() and not _text_panel(cell)[0]:
                    cell.drop_tree()  # a cell of links: the site's menu
                else:
                    cell.tag = "div"
        changed = True
    return changed


_CONTROLS = frozenset(("a", "button", "nav", "header", "footer", "aside", "form"))


def _texts_kept(tree: Any) -> bool:
    """Mark (`_KEEP`) each text trafilatura would take for a share button or a print link
    (its own `RE_FILTER`: "Email", "PDF", "Print", "Google"...) and drop, where it is the
    page's text: in a table's cell it is data ("Support | | Email", "Format | PDF"), and
    elsewhere it is text unless it is a link's or a button's, or in the page's furniture
    (a share bar's "Twitter", "Email"), which still go. A table that lays the page out is
    blocks by then (`_layout_tables_as_blocks`). Were there any?"""
    try:
        from trafilatura.utils import RE_FILTER
    except ImportError:  # another trafilatura: nothing known to mark
        return False

    def dropped(text: str | None) -> bool:
        return text is not None and any(RE_FILTER.match(line) for line in text.splitlines())

    def kept(holder: Any) -> bool:  # is the text of `holder` (its own, not a tail) content?
        tags = [holder.tag, *(a.tag for a in holder.iterancestors())]
        return any(tag in ("td", "th") for tag in tags) or not _CONTROLS.intersection(tags)

    changed = False
    for node in tree.iter():
        if not isinstance(node.tag, str):
            continue
        if dropped(node.text) and kept(node):
            node.text = _KEEP + node.text
            changed = True
        if dropped(node.tail) and node.getparent() is not None and kept(node.getparent()):
            node.tail = _KEEP + node.tail
            changed = True
    return changed


def _marks_for_trafilatura(html: str) -> bool:
    """Might the page have anything `_marked_for_trafilatura` marks?"""
    lower = html.lower()
    return any(tag in lower for tag in ("<pre", "<td", "<th", "<figcaption", "<caption", "<br",
                                        "<ol"))


def _numbered_items(tree: Any) -> bool:
    """Each ordered list's items marked with their numbers (`_item_numbers`): trafilatura
    writes them "- " as it writes a <ul>'s. Were there any?"""
    changed = False
    for ol in tree.iter("ol"):
        if _NO_MARKS.search(ol.get("style") or ""):
            continue  # drawn without numbers
        items = [child for child in ol if child.tag == "li"]
        labels = _item_numbers(ol.get("start"), ol.get("reversed") is not None, ol.get("type"),
                               [item.get("value") for item in items])
        for item, label in zip(items, labels, strict=True):
            item.text = label + (item.text or "")
            changed = True
    return changed


def _marked_for_trafilatura(tree: Any) -> bool:
    """Marks in the page's tree of what trafilatura's text would lose; whether it made any.
    Each <pre> block's text is put between Markdown fences ("```" lines): trafilatura writes
    a code block as bare lines, which ran into the sentence before them ("Install the tool
    from PyPI: pip install orbit-cli orbit --version"); fenced, it is one paragraph, which
    the chunker knows for code. A break inside a table's cell (<br>, or its second <p>) is
    marked (`_CELL_BREAK`): trafilatura runs a cell's paragraphs together ("Parallel deploy
    workers Raise it for large projects"), which `_row_of_cells` joins as the Word loader
    does; a <br> elsewhere is marked too (`_LINE_BREAK`), as trafilatura writes its lines as
    it writes paragraphs: the lines after one are lines of its paragraph ("Write to us
    at<br>12 Mill Lane<br>Holt" is one block, each line alone read as a heading). A figure's
    caption ("Figure 1: the deploy pipeline has three stages") is a paragraph: trafilatura
    drops figures, their captions with them. So is a table's <caption>, which trafilatura
    writes as the table's first row, so its column names were taken for data."""
    changed = _numbered_items(tree)
    changed = _layout_tables_as_blocks(tree) or changed
    for cell in (c for c in tree.iter("td", "th") if c.text_content().strip()):
        for block in cell.iter(*_CELL_BLOCKS):
            if block.tag == "br":
                block.tail = _CELL_BREAK + (block.tail or "")
            else:
                block.text = _CELL_BREAK + (block.text or "")
            changed = True
    for br in tree.iter("br"):
        if not any(a.tag in ("td", "th", "pre") for a in br.iterancestors()):
            br.tail = _LINE_BREAK + (br.tail or "")
            changed = True
    for caption in list(tree.iter("caption")):  # a table's caption is no row of it
        table = caption.getparent()
        if table is not None and caption.text_content().strip():
            caption.tag = "p"
            caption.tail = None
            table.addprevious(caption)
            changed = True
    for caption in tree.iter("figcaption"):  # trafilatura drops a figure, its caption too
        if caption.text_content().strip():
            caption.tag = "p"
            figure = caption.getparent()
            if figure is not None and figure.tag == "figure":
                figure.tag = "div"
            changed = True
    for pre in tree.iter("pre"):
        code = pre.text_content()
        if not code.strip():
            continue
        ticks = max((len(run) for run in re.findall(r"`+", code)), default=0)
        fence = "`" * max(3, ticks + 1)
        pre.text = f"{fence}\n{pre.text or ''}"
        end = "" if code.endswith("\n") else "\n"
        if len(pre):
            pre[-1].tail = f"{pre[-1].tail or ''}{end}{fence}"
        else:
            pre.text = f"{pre.text}{end}{fence}"
        changed = True
    return changed


def _prepared(html: str) -> tuple[str, str]:
    """The page with an accordion's questions as headings (`_disclosures`), and that page
    marked for trafilatura (`_marked_for_trafilatura`) with its divs of text as paragraphs
    (`_text_divs_as_paragraphs`), parsed once: the three edits are made in turn in one lxml
    tree, written out after the first (the blocks and the fallback read that page) and
    after the last. Each is the page as it is if lxml cannot parse it or nothing changed.

    The text is what three parses (each pass writing the page out for the next to read
    again) gave. Only the page trafilatura is given can differ, where the first edit puts
    a heading where HTML has none: an accordion's button with its panel inline in a <p>
    becomes an <h3> inside that <p>; read again, libxml2 closes the <p> before the <h3>,
    which the one tree does not, but trafilatura reads the page it is given the same way."""
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return html, html
    shown = html
    headed = _has_disclosures(html) and _headed_disclosures(tree, len(html))
    templates = list(tree.iter("template"))  # markup a script copies in: never shown
    for template in templates:
        template.drop_tree()
    if ("<sup" in html.lower() and _without_note_marks(tree)) or headed or templates:
        shown = lxml.html.tostring(tree, encoding="unicode")
    marked = _marks_for_trafilatura(shown) and _marked_for_trafilatura(tree)
    marked = _texts_kept(tree) or marked  # (after the layout tables are blocks)
    if _text_divs_as_paragraphs(tree) or marked:
        return shown, lxml.html.tostring(tree, encoding="unicode")
    return shown, shown


NOTE_MARK_CHARS = 8  # a note's mark ("[12]", "a", "†") is this short


def _without_note_marks(tree: Any) -> bool:
    """The page without the marks of its footnotes and citations: a superscript that only
    links to a note of the page (Wikipedia's <sup><a href="#cite_note-1">[1]</a></sup>, a
    Markdown converter's <sup><a href="#fn:2">2</a></sup>), or such a link that only holds
    a superscript (pandoc's <a href="#fn3"><sup>3</sup></a>). Run into the text they read
    'opened in 1911[1] and was rebuilt in 1950.2': a year read as 1950.2, and a '[1]' in a
    quote like qa's own citation marks. A superscript of the text (mc<sup>2</sup>) stays.
    Were there any?"""
    marks = []
    for sup in tree.iter("sup"):
        text = sup.text_content().strip()
        if not text or len(text) > NOTE_MARK_CHARS:
            continue
        links = [a for a in sup.iter("a") if (a.get("href") or "").startswith("#")]
        parent = sup.getparent()
        if links and all(a.text_content().strip() for a in links) and "".join(
                a.text_content() for a in links).strip() == text:
            marks.append(sup)
        elif (parent is not None and parent.tag == "a"
              and (parent.get("href") or "").startswith("#")
              and parent.text_content().strip() == text):
            marks.append(parent)
    for mark in marks:
        if mark.getparent() is not None:
            mark.drop_tree()  # its tail (the text after it) stays
    return bool(marks)


def _rewritten(html: str, edit: Callable[[Any], bool]) -> str:
    """The page after `edit` (given the page's lxml tree, it says whether it changed it),
    written out again; the page as it is if lxml cannot parse it or nothing changed."""
    import lxml.html
    from lxml import etree

    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return html
    return lxml.html.tostring(tree, encoding="unicode") if edit(tree) else html


def _paragraph_text(lines: list[str], blocks: _Blocks = _Blocks()) -> str:
    """One paragraph per line, but a line that goes on in lower case after a line with no
    full stop (a <br> inside a sentence) is joined to it, and the items of a list ("- ...")
    and the rows of a table are lines of one paragraph, as in Markdown: a short item alone
    ("Bikes travel free") read as a heading, and a table's first row did not (nor was its
    first data row told from one). A term of a definition list and its definitions are
    lines of one paragraph, without list marks: the term says what they answer. So are a
    line ending in a colon and the short lines under it ("Opening hours:", "Saturday 8am to
    2pm", one per <br>), which alone read as headings; a heading of the page stays apart."""
    kept: list[str] = []
    defined = False  # the last line is a term or a definition
    introduced = False  # the last line ends in a colon, or is one of the lines under one
    fence = ""  # the fence of the code block being read (`_marked_for_trafilatura`)
    label = ""  # the number of an ordered list's item whose text is still to come
    for raw in lines:
        if fence:  # a code block's lines as they are, one paragraph with its fences
            kept[-1] = f"{kept[-1]}\n{raw.rstrip()}"
            fence = "" if raw.strip() == fence else fence
            continue
        line = " ".join(raw.split())
        if _CODE_FENCE.fullmatch(line):
            kept.append(line)
            fence, defined, introduced = line, False, False
            continue
        mark = _NUMBERED.match(line)
        if mark is not None:  # an ordered list's item: "4. Print a test page."
            label, line = f"{mark.group(1)}. ", line[mark.end():]
        numbered = bool(label and line)
        if numbered:  # (an item opening with a block: its number alone on a line)
            line = line[2:] if _LIST_ITEM.match(line) else line
            own = _OWN_NUMBER.match(line)  # (a list that writes its own: no number again)
            line, label = (line if own else label + line), ""
        broken = line.startswith(_LINE_BREAK)  # the line after a <br>: of its paragraph
        line = line[len(_LINE_BREAK):].lstrip() if broken else line
        if not line or line in "-*•":
            continue
        if broken and kept and not fence:
            lower = line[0].islower() and not _ends_sentence(kept[-1])
            kept[-1] = f"{kept[-1]}{' ' if lower else chr(10)}{line}"  # "approved<br>the new"
            introduced = kept[-1].endswith(":") or introduced
            continue
        if line.startswith("|") and _CELL_BREAK in line:
            line = _row_of_cells(line)
        bare = line[2:] if _LIST_ITEM.match(line) else line
        if bare in blocks.terms:  # a <dt> opens a paragraph, its <dd>s are its next lines:
            kept.append(bare)  # "The red light blinks three times\nThe tank is empty."
            defined, introduced = True, False
            continue
        if defined and bare in blocks.definitions:
            kept[-1] = f"{kept[-1]}\n{bare}"
            continue
        defined = False
        if kept and line[0].islower() and not _ends_sentence(kept[-1]) and not (
                numbered and _NUMBERED_ITEM.match(line)):  # "a. Tray" goes on no sentence
            kept[-1] = f"{kept[-1]} {line}"
        elif kept and _run_of(line) and _run_of(line) == _run_of(kept[-1].rpartition("\n")[2]):
            kept[-1] = f"{kept[-1]}\n{line}"
        elif (introduced and not _run_of(line) and line not in blocks.headings
              and len(line.split()) <= ITEM_WORDS and not _ENDS_SENTENCE.search(line)
              and not line.endswith(":")):
            kept[-1] = f"{kept[-1]}\n{line}"
            continue
        else:
            kept.append(line)
        introduced = kept[-1].endswith(":") and line not in blocks.headings
    text = re.sub(f" *(?:{_LINE_BREAK} *)+", _line_break, "\n\n".join(kept))  # inside a line
    text = text.replace(_KEEP, "")
    if _NUMBER in text:  # an item's number inside a line (a list in a table's cell)
        text = re.sub(_NUMBERED.pattern.removeprefix("(?:[-*•] )?"), r"\1. ", text)
    return re.sub(f" *(?:{_CELL_BREAK} *)+", lambda m: " " if m.start() and m.end() < len(text)
                  and "\n" not in text[m.start() - 1:m.end() + 1] else "", text)


def _line_break(mark: re.Match[str]) -> str:
    """A <br> marked inside a line: a line break, or a space inside a sentence (before a
    word in lower case, after no full stop: "approved<br>the new timetable")."""
    text, start, end = mark.string, mark.start(), mark.end()
    if not start or end == len(text) or text[start - 1] == "\n" or text[end] == "\n":
        return ""
    inside = text[end].islower() and not _ends_sentence(text[max(0, start - 16):start])
    return " " if inside else "\n"


def _row_of_cells(line: str) -> str:
    """A table's row as trafilatura writes it, with the breaks inside its cells marked
    ("| workers | 4 | Parallel deploy workers<break>Raise it for large projects |"), each
    cell's parts joined as the Word loader joins a cell's paragraphs (`cell_text`)."""
    cells = [cell_text([part.strip() for part in cell.split(_CELL_BREAK)])
             for cell in line.strip().strip("|").split("|")]
    return "| " + " | ".join(cells) + " |"


def _drop_furniture(root: Any, furniture: re.Pattern[str] = _FURNITURE) -> bool:
    """Drop the blocks under `root` the site itself names as furniture (a cookie banner, a
    share bar, a sidebar), unless one holds half the page (a wrapper: `layout-with-sidebar`);
    each costs its text, so a page of thousands of them is not checked. Did it drop any?"""
    named = root.css("[class], [id]")
    total = len(root.text())
    budget = PANEL_TEXT_FACTOR * total  # nested blocks are not read again and again
    dropped = False
    for node in named if len(named) <= MAX_MENU_CHECKS else ():
        names = f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        if furniture.search(names) and node.mem_id != root.mem_id and node.parent is not None:
            size = len(node.text())
            budget -= size
            if budget < 0:
                break
            if 2 * size < total:
                node.decompose()
                dropped = True
    return dropped


# elements that hold blocks: a <div> holding none of them holds only a paragraph's text
_BLOCK_TAGS = frozenset(_BLOCKS.replace(" ", "").split(",")) - {"br"} | {
    "nav", "header", "footer", "form", "main", "section", "aside", "button", "script",
    "style", "noscript", "template", "svg", "iframe"}


def _text_divs_as_paragraphs(tree: Any) -> bool:
    """Each <div> of the page's tree that holds text but no block (`<div class="faq-a">We
    refund unused months.</div>`) made a <p>: trafilatura drops the text of such divs when
    the page has paragraphs besides, so a site that writes its text in divs lost it.
    trafilatura still judges them as paragraphs (link density, boilerplate). Any made?"""
    changed = False
    for div in list(tree.iter("div")):
        if any(isinstance(child.tag, str) and child.tag in _BLOCK_TAGS for child in div):
            if any(child.tag == "table" for child in div):
                changed = _loose_text_as_paragraphs(div) or changed
            continue
        if div.text_content().strip():
            div.tag = "p"
            changed = True
    return changed


def _loose_text_as_paragraphs(div: Any) -> bool:
    """The text of a <div> that holds a table, between its blocks, put in <p>s: beside
    loose text trafilatura reads the table as a line of its cells' words ('Room Seats Main
    hall 120 Small room 20'). Any put?"""
    import lxml.html

    changed = False
    run: list[Any] = []  # the inline elements since the last block
    text, div.text = div.text, None
    at = 0  # where the run starts among the div's children

    def flush(before: int) -> int:
        nonlocal changed
        if (text or "").strip() or any(
                (e.text_content() if isinstance(e.tag, str) else "").strip()
                or (e.tail or "").strip() for e in run):
            p = lxml.html.Element("p")
            p.text = text
            div.insert(before, p)
            for element in run:
                p.append(element)  # with its tail
            changed = True
            return before + 1
        if before == 0:
            div.text = text
        else:
            div[before - 1].tail = text
        return before + len(run)

    for child in list(div):
        if isinstance(child.tag, str) and child.tag in _BLOCK_TAGS:
            at = flush(at) + 1
            run, text, child.tail = [], child.tail, None
        else:
            run.append(child)
    flush(at)
    return changed


_HEADING_TAGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
PANEL_TEXT_FACTOR = 4  # accordion panels measured: at most this many times the page's size
# class names (a whole word of them) that sites give the button heading a panel that opens
_DISCLOSURE = re.compile(r"(?:^|[\s_-])(?:accordion|collapsible|collapse|expander|"
                         r"disclosure|toggle|faq)(?=$|[\s_-])", re.IGNORECASE)


class _Panels:
    """The panels a page's buttons and controls open: found by id, each measured and shown
    open once, and no more text measured than a few times the page's (a page of nested
    panels, each named by a button, would be read again and again)."""

    def __init__(self, tree: Any, budget: int) -> None:
        self.ids = {node.get("id"): node for node in tree.iter()
                    if isinstance(node.tag, str) and node.get("id")}
        self.judged: dict[int, bool] = {}  # by id() of the panel
        self.opened: set[int] = set()
        self.budget = budget  # characters still to measure

    def of(self, button: Any) -> Any:
        """The panel a button opens: the element its aria-controls names, else the one
        right after it (or after the heading it is in); None if there is none, or it is
        not text but links (a menu) or the button's own container."""
        named = (button.get("aria-controls") or "").split()
        panel = self.ids.get(named[0]) if named else None
        if panel is None:
            holder = button
            while holder.getnext() is None and holder.getparent() is not None \
                    and holder.getparent().tag in _HEADING_TAGS:
                holder = holder.getparent()
            panel = holder.getnext()
        if panel is None or not isinstance(panel.tag, str) or panel.tag in ("nav", "button") \
                or any(a is panel for a in button.iterancestors()):
            return None
        if id(panel) not in self.judged:  # many buttons may name one panel
            ok, size = _text_panel(panel) if self.budget > 0 else (False, 0)
            self.judged[id(panel)], self.budget = ok, self.budget - size
        return panel if self.judged[id(panel)] else None

    def show(self, panel: Any) -> None:
        """The panel, and what it holds, as the reader sees it open (`_shown`), once."""
        if id(panel) not in self.opened:
            self.opened.add(id(panel))
            _shown(panel)


def _text_panel(panel: Any) -> tuple[bool, int]:
    """Does the panel hold text that is not mostly links (a menu's)? And its size."""
    content = panel.text_content()
    text = len("".join(content.split()))
    links = sum(len("".join(a.text_content().split())) for a in panel.iter("a"))
    return bool(text) and links * 2 < text, len(content)


# what makes an accordion's header, panel and their holder a widget to trafilatura
_CONTROL_ATTRIBUTES = ("class", "role", "aria-controls", "aria-expanded", "aria-selected",
                       "aria-labelledby", "tabindex")
_HIDING_CLASS = re.compile(r"^(?:is-)?hid(?:e|den)$|^collapsed?$", re.IGNORECASE)
_NO_DISPLAY = re.compile(r"display\s*:\s*none\s*;?", re.IGNORECASE)


def _shown(panel: Any) -> None:
    """The panel a button opens, and what it holds, as the reader sees it open: a closed
    panel is marked hidden (aria-hidden="true", hidden, display: none, a class such as
    hidden or collapse), which trafilatura takes for text never shown and drops, the
    answers of an accordion with it."""
    for node in panel.iter():
        if not isinstance(node.tag, str):
            continue
        for attribute in ("hidden", "aria-hidden"):
            node.attrib.pop(attribute, None)
        if "style" in node.attrib:
            node.set("style", _NO_DISPLAY.sub("", node.get("style") or ""))
        if "class" in node.attrib:
            node.set("class", " ".join(c for c in (node.get("class") or "").split()
                                       if not _HIDING_CLASS.match(c)))


def _disclosures(html: str) -> str:
    """The page with the question of each accordion or FAQ item kept as a heading: sites write it
    in a <button> that opens its answer (`<h3><button aria-expanded="false">How do I reset
    my password?</button></h3><div hidden>Go to Settings...</div>`, or `<button
    class="accordion">Returns</button><div class="panel">...`), and buttons are dropped as
    controls, answers kept and questions lost. A button is such a heading when it is in a
    heading (h1-h6, the WAI-ARIA accordion), or when its text asks ("...?") or it says it
    opens a panel (aria-expanded, aria-controls, a class such as accordion or toggle) and
    that panel, right after it or named, holds text that is not mostly links (the button's
    text without what it hides from screen readers: an icon's "+"); the heading goes where
    the button was, or before its panel if that is elsewhere (a tab's name heads its panel,
    not a row of names), and the panel is read as shown open (`_shown`). Other buttons
    ("Menu", "Accept", "Subscribe", a chat widget's "Need help?") are still dropped. The
    page as it is if lxml cannot parse it or it has no such button."""
    if not _has_disclosures(html):
        return html
    return _rewritten(html, lambda tree: _headed_disclosures(tree, len(html)))


def _has_disclosures(html: str) -> bool:
    """Might the page have a button or control that `_disclosures` reads?"""
    return "<button" in html.lower() or "aria-controls" in html.lower()


def _headed_disclosures(tree: Any, chars: int) -> bool:
    """`_disclosures`' headings, made in `tree` (of a page of `chars` characters); whether
    it made any."""
    import lxml.html

    changed = False
    panels = _Panels(tree, PANEL_TEXT_FACTOR * chars)
    # each costs its panel's text, so a page of thousands of them is not read so
    buttons = list(tree.iter("button"))
    controls = tree.xpath("//*[@aria-controls and not(self::button)]")
    if len(buttons) + len(controls) > MAX_MENU_CHECKS:
        return False
    for button in buttons:
        for icon in button.xpath(".//*[@aria-hidden='true']"):  # "+", a chevron: no words
            icon.drop_tree()
        text = " ".join(button.text_content().split())
        if not text:
            continue
        if any(a.tag in _HEADING_TAGS for a in button.iterancestors()):
            panel = panels.of(button)
            if panel is not None:
                panels.show(panel)
            button.drop_tag()  # the heading's text is the button's
            changed = True
            continue
        opens = (text.endswith("?") or button.get("aria-expanded") is not None
                 or button.get("aria-controls") or _DISCLOSURE.search(button.get("class") or ""))
        panel = panels.of(button) if opens else None
        if panel is None:
            continue
        panels.show(panel)
        heading = lxml.html.Element("h3")
        heading.text = text
        if button.getnext() is panel:
            heading.tail = button.tail
            button.getparent().replace(button, heading)
        else:  # a tab, its panel elsewhere: its name heads the panel
            panel.addprevious(heading)
            button.drop_tree()  # its tail stays
        changed = True
    for control in controls:
        # an accordion's header that is no button (jQuery UI: <h3 role="tab"
        # aria-controls="ui-id-4" class="ui-accordion-header">Question</h3>), whose names
        # trafilatura takes for furniture ("header", "widget"): plain, as its panel
        panel = panels.of(control)
        if panel is None or not control.text_content().strip():
            continue
        panels.show(panel)
        for node in (control, panel, control.getparent()):
            if node is not None and (node is not control.getparent()
                                     or any(d is panel for d in node.iterdescendants())):
                for attribute in _CONTROL_ATTRIBUTES:
                    node.attrib.pop(attribute, None)
        if control.tag not in _HEADING_TAGS and not any(
                a.tag in _HEADING_TAGS for a in control.iterancestors()):
            control.tag = "h3"
        changed = True
    return changed


def _without_furniture(html: str, furniture: re.Pattern[str] = _FURNITURE) -> str | None:
    """The page without the blocks it names as furniture (`_drop_furniture`), for
    trafilatura to read; None if it names none."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    if tree.body is None or not _drop_furniture(tree.body, furniture):
        return None
    return str(tree.html or "")


def _fallback(html: str, blocks: _Blocks = _Blocks()) -> str:
    """Text of the page without the parts that are never content: a paragraph per block
    element (the text of inline elements stays in its block's sentence)."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html.replace(_BREAK, "").replace(_ITEM, "").replace(_END, "")
                      .replace(_NUMBER, "").replace(_KEEP, ""))
    for node in tree.css(_DROP):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body
    if root is None:
        return ""
    _drop_furniture(root)
    menus = root.css(_MENUS)
    # a block mostly of link text (a menu, a list of links) goes; each costs its text, so a
    # page of thousands of nested blocks (a fallback for what trafilatura could not parse)
    # is not checked
    budget = PANEL_TEXT_FACTOR * len(html)  # ... nor, nested, read again and again
    for node in menus if len(menus) <= MAX_MENU_CHECKS else ():
        content = node.text()
        budget -= len(content)
        if budget < 0:
            break
        text = len("".join(content.split()))
        links = sum(len("".join(a.text().split())) for a in node.css("a"))
        if text and links * 2 >= text and node.parent is not None:
            node.decompose()
    _rows_of_tables(root)
    for sup in root.css("sup"):  # a note's mark, as `_without_note_marks` finds it
        mark = sup.text().strip()
        notes = [a for a in sup.css("a") if (a.attributes.get("href") or "").startswith("#")]
        outer = sup.parent
        if not mark or len(mark) > NOTE_MARK_CHARS:
            continue
        if notes and "".join(a.text() for a in notes).strip() == mark:
            sup.decompose()
        elif (outer is not None and outer.tag == "a" and outer.text().strip() == mark
              and (outer.attributes.get("href") or "").startswith("#")):
            outer.decompose()
    for node in root.css(_BLOCKS):  # no recursion: a deeply nested page cannot overflow
        if node.tag == "br":  # a line of its block (`_line_break`)
            node.insert_after(_LINE_BREAK)
            continue
        node.insert_before(_BREAK)
        if node.tag == "li":
            node.insert_before(_ITEM)
        node.insert_after(_BREAK)
        if node.tag == "li":
            node.insert_after(_END)
    for ol in root.css("ol"):  # after the item marks: a number follows its item's mark
        if _NO_MARKS.search(ol.attributes.get("style") or ""):
            continue
        items = [child for child in ol.iter() if child.tag == "li"]
        labels = _item_numbers(ol.attributes.get("start"), "reversed" in ol.attributes,
                               ol.attributes.get("type"),
                               [item.attributes.get("value") for item in items])
        for item, label in zip(items, labels, strict=True):
            item.insert_before(label)
    marked = _EMPTY_ITEM.sub("", root.text(separator="")).replace(_END, "")
    return _paragraph_text(_ITEM_START.sub(f"{_BREAK}- ", marked).split(_BREAK), blocks)


_CELL_PARTS = frozenset(("p", "div", "li", "br", "ul", "ol", "dl", "dt", "dd", "pre"))


def _rows_of_tables(root: Any) -> None:
    """In the fallback's tree, each table of data (two rows or more, no table in it, not
    marked as presentation) replaced by its rows, a line each ("| Child | 2 pounds; free
    under 5 |", as trafilatura writes them), so that a cell stays on its row; a cell's
    blocks are joined as a Word cell's paragraphs are (`cell_text`)."""
    for table in root.css("table"):
        rows = table.css("tr")
        if len(rows) < 2 or table.css("td table, th table") or (
                table.attributes.get("role") or "").lower() in ("presentation", "none"):
            continue
        lines = []
        for row in rows:
            cells = [_cell_of(cell) for cell in row.iter() if cell.tag in ("td", "th")]
            if any(cells):
                lines.append("| " + " | ".join(cells) + " |")
        if lines:
            table.replace_with(_BREAK + _BREAK.join(lines) + _BREAK)


def _cell_of(cell: Any) -> str:
    """A table cell's text, its blocks (paragraphs, lines, items) joined by `cell_text`."""
    parts: list[str] = []
    inline = ""
    for child in cell.iter(include_text=True):
        if child.tag in _CELL_PARTS:
            parts += [inline, child.text(separator=" ")]
            inline = ""
        else:
            inline += child.text(separator=" ") if child.tag != "-text" else (child.text() or "")
    parts.append(inline)
    return cell_text([" ".join(part.split()) for part in parts])


def _navigation_only(text: str, html: str) -> bool:
    """Is every paragraph of `text` the text of the page's <nav> (what trafilatura gives for
    a page with nothing else: its menu)?"""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    if not text:
        return False
    menus = " ".join(" ".join(n.text(separator=" ").split())
                     for n in HTMLParser(html).css("nav"))
    return bool(menus) and all(
        paragraph in menus for paragraph in text.split("\n\n"))


_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""",
                      re.IGNORECASE)


def _decode(raw: bytes, name: str) -> str:
    """The page as text: UTF-8 (or a byte-order mark's encoding), else the encoding its
    <meta charset> declares in its first 4 KB (a saved page of an older site: ISO-8859-1,
    windows-1252), read strictly. A page that is not what it declares stays refused."""
    try:
        return decode_text(raw, name)
    except BadDocument:
        declared = _CHARSET.search(raw[:4096])
        if declared is None:
            raise
        encoding = declared.group(1).decode("ascii").lower()
        if encoding in ("iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"):
            encoding = "windows-1252"  # what browsers read these labels as (WHATWG)
        try:
            return raw.decode(encoding)
        except LookupError:
            raise BadDocument(f"{name}: not UTF-8, and its <meta charset> names an unknown "
                              f"encoding {encoding!r}; save it as UTF-8") from None
        except UnicodeDecodeError as exc:
            raise BadDocument(f"{name}: not valid {encoding} text, as its <meta charset> says "
                              f"(bad byte at offset {exc.start}); save it as UTF-8") from None


def _main_text(html: str) -> str:
    """trafilatura's main text of the page, without its body-dump rescue ("" if none)."""
    import trafilatura
    from trafilatura.settings import use_config

    config = use_config()
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "0")  # never the baseline (see above)
    try:
        return trafilatura.extract(html, include_comments=False, include_tables=True,
                                   include_images=False, favor_recall=True,
                                   config=config) or ""
    except Exception:  # noqa: BLE001 - a page trafilatura cannot parse goes to the fallback
        return ""


def _title(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node is not None and node.text(strip=True):
            return short_title(node.text())
    return ""


class HtmlLoader:
    kind: str = "html"
    suffixes: tuple[str, ...] = (".html", ".htm")

    @property
    def extractor(self) -> str:
        return (f"trafilatura-{version('trafilatura')}+selectolax-{version('selectolax')}"
                f"/{REVISION}")

    def sniff(self, raw: bytes) -> bool:
        if not looks_like_text(raw):
            return False
        head = raw[:4096].lstrip(b"\xef\xbb\xbf")
        return bool(_HTML_START.match(head)) or b"<body" in head.lower() or b"<p" in head.lower()

    def extract(self, raw: bytes, name: str) -> Extracted:
        html = _decode(raw, name)
        if not html.strip():
            raise BadDocument(f"{name}: the file is empty: it holds no text to index")
        title = _title(html)
        # trafilatura keeps a cookie banner held in a plain div as the page's first
        # paragraph; it never is the page's text
        html, divided = _prepared(html)
        page = _without_furniture(divided, _BANNERS) or divided
        blocks = _blocks(html)
        text = _paragraph_text(_main_text(page).splitlines(), blocks)
        if blocks.headings and not all(h in text for h in blocks.headings):
            # trafilatura reads a page whose text is straight in <body> without its
            # headings (and <summary>s): read it as if its main part were named
            page_in_main = _in_main(page)
            if page_in_main is not None:
                fuller = _paragraph_text(_main_text(page_in_main).splitlines(), blocks)
                if _only_adds_headings(text, fuller, blocks):
                    text = fuller
        if len(text) < SHORT:
            # on a short page it keeps a sidebar, an ad or a promotion too: read the page
            # again without all the site names as furniture (on a normal page such a name
            # may hold text: `related-facts`, `promo-article`, left to trafilatura)
            cleaned = _without_furniture(divided)
            if cleaned is not None:
                text = _paragraph_text(_main_text(cleaned).splitlines(), blocks)
        if len(text) < SHORT:  # as trafilatura's rescue did: the page's text if much more
            if _navigation_only(text, html):
                text = ""
            fallback = _fallback(html, blocks)
            if len(fallback) >= 2 * len(text):
                text = fallback
        text = clean_extracted(text)
        if not text.strip():
            raise BadDocument(f"{name}: the HTML page holds no main text to index")
        title = title or short_title(text.splitlines()[0])
        return Extracted(text=text, title=clean_extracted(title))
