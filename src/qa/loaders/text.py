"""Plain text and Markdown: the decoded file is the document's text, unchanged. A Markdown
file's title is its front matter's `title:`, else its first line after the front matter."""

from __future__ import annotations

import re

from qa.loaders.base import (
    BadDocument,
    Extracted,
    decode_text,
    first_line_title,
    looks_like_text,
    short_title,
)

REVISION = 1  # bump when what this loader produces changes


class TextLoader:
    kind: str = "txt"
    suffixes: tuple[str, ...] = (".txt",)
    extractor = f"qa-text/{REVISION}"

    def sniff(self, raw: bytes) -> bool:
        return looks_like_text(raw)

    def extract(self, raw: bytes, name: str) -> Extracted:
        text = decode_text(raw, name)
        title = first_line_title(text)
        if not title:
            raise BadDocument(f"{name}: the file is empty: it holds no text to index")
        return Extracted(text=text, title=title)


# YAML front matter (Jekyll, Hugo, MkDocs, Obsidian): "---" lines around "key: value" lines
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)",
                           re.DOTALL)
_TITLE = re.compile(r"""^title:[ \t]*(["']?)(.+?)\1[ \t\r]*$""", re.MULTILINE)
MARKDOWN_REVISION = 6  # 2: the title is the front matter's, not its "---"
#                       3: ... also in a file with CRLF line ends; no title is a comment;
#                          else the first "# " heading, without markup
#                       4: a comment inside a line is hidden too, and a line of HTML
#                          tags alone
#                       5: the tags of HTML blocks that open or close a line
#                          (<details>, <summary>, <p>...) are hidden, their text kept
#                       6: ... and those inside a line that opens with one
_LINE_START = re.compile(r"[ \t]{0,3}")


def hidden_spans(text: str) -> list[tuple[int, int]]:
    """What a Markdown file holds that a reader never sees, as (start, end) offsets: its
    YAML front matter (data about the file: its title, tags, a date) and its HTML comments
    (notes to its authors, "<!-- TODO ... -->"), those in code fences and inline code
    spans aside. A comment that opens a line hides, as CommonMark reads an HTML block, up to
    the end of the line that closes it; one inside a line ("a day <!-- was 4 --> and"),
    just itself. A "<!--" never closed is text. So is a block of lines of HTML tags alone
    ('<p align="center">', '<img src="logo.png">', '</p>'; '</details>'): it shows no
    text."""
    from qa.chunking import fences

    front = _FRONT_MATTER.match(text)
    hidden = [(0, front.end())] if front is not None else []
    if "<" not in text and "]:" not in text:
        return hidden
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    code = sorted((starts[o], starts[c + 1]) for o, c in fences(lines).items())
    hidden = sorted(hidden + _link_definitions(lines, starts, code, hidden))
    if "<" not in text:
        return hidden
    hidden = _comments(text, hidden, code)
    tags = _tag_lines(text, lines, starts, code)
    if tags:
        hidden = sorted(hidden + [t for t in tags if not any(s < t[1] and t[0] < e
                                                              for s, e in _around(hidden, t))])
    edges = _block_tag_edges(lines, starts, code)
    if not edges:
        return hidden
    return sorted(hidden + [t for t in edges if not any(s < t[1] and t[0] < e
                                                         for s, e in _around(hidden, t))])


# A link reference definition ("[docs]: https://example.org/docs "The docs""): where a link
# of the text points, which a reader never sees.
_LINK_DEFINITION = re.compile(r" {0,3}\[[^\]\n]+\]:[ \t]*<?[^\s>]+>?"
                              r"(?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^)\n]*\)))?[ \t]*\r?\n?")


def _link_definitions(lines: list[str], starts: list[int], code: list[tuple[int, int]],
                      hidden: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The lines of link reference definitions, outside code fences and front matter, that
    open a block or follow one another (within a paragraph such a line is its text)."""
    out: list[tuple[int, int]] = []
    for n, line in enumerate(lines):
        a, b = starts[n], starts[n + 1]
        if not _LINK_DEFINITION.fullmatch(line) or any(s <= a < e for s, e in code + hidden):
            continue
        if n == 0 or not lines[n - 1].strip() or (out and out[-1][1] == a):
            out.append((a, b))
    return out


_TAGS_ALONE = re.compile(r"[ \t]*(?:</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>\n]*)?/?>[ \t]*)+")


def _tag_lines(text: str, lines: list[str], starts: list[int],
               code: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The blocks (lines between blank lines, outside code fences) of HTML tags alone, as
    (start, end) offsets. A block with text in it (a raw HTML table, '<details>' over its
    '<summary>') is kept whole: hiding its lines of tags alone would cut it in pieces."""
    found = []
    n = 0
    block: list[int] = []  # the lines of the block being read, while all are tags alone
    tags_only = True
    for number, line in enumerate([*lines, ""]):
        body = line.rstrip("\r\n")
        if body.strip():
            start = starts[number]
            while n < len(code) and code[n][1] <= start:
                n += 1
            fenced = n < len(code) and code[n][0] <= start
            block.append(number)
            tags_only = tags_only and not fenced and "<" in body and bool(
                _TAGS_ALONE.fullmatch(body))
            continue
        if block and tags_only:
            last = block[-1]
            found.append((starts[block[0]], starts[last] + len(lines[last].rstrip("\r\n"))))
        block, tags_only = [], True
    return found


# The elements a line of Markdown opens an HTML block with (CommonMark 0.31, HTML block
# start condition 6): their tags lay the text out, and show none of their own.
_BLOCK_TAG_NAMES = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|"
    "details|dialog|dir|div|dl|dt|fieldset|figcaption|figure|footer|form|frame|frameset|"
    "h[1-6]|head|header|hr|html|iframe|legend|li|link|main|menu|menuitem|nav|noframes|ol|"
    "optgroup|option|p|param|search|section|summary|table|tbody|td|tfoot|th|thead|title|"
    "tr|track|ul")
_BLOCK_TAG = f"</?(?:{_BLOCK_TAG_NAMES})(?:\\s[^<>\\n]*)?/?>"
_LEADING_BLOCK_TAGS = re.compile(f"[ ]{{0,3}}(?:{_BLOCK_TAG}[ \\t]*)+", re.IGNORECASE)
_ANY_BLOCK_TAG = re.compile(_BLOCK_TAG, re.IGNORECASE)
_CELL_TAG = re.compile(r"</?(?:td|th|tr)\b", re.IGNORECASE)


def _trailing_block_tags(body: str, after: int) -> int:
    """Where the run of block tags (and blanks) that ends `body` starts, not before
    `after`; `len(body)` if there is none. Read back from the end, tag by tag: a regular
    expression searched for it tried every '<' of a long line."""
    def blank_before(at: int) -> int:
        while at > after and body[at - 1] in " \t":
            at -= 1
        return at

    last = end = blank_before(len(body))
    while end > after and body[end - 1] == ">":
        opened = body.rfind("<", after, end)
        if opened < 0 or not _ANY_BLOCK_TAG.fullmatch(body, opened, end):
            break
        end = blank_before(opened)
    return end if end < last else len(body)


def _block_tag_edges(lines: list[str], starts: list[int],
                     code: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The tags of HTML blocks (`_BLOCK_TAG_NAMES`) that open or close a line outside code,
    as (start, end) offsets: '<details><summary>' and '</summary>' around "Install", '<p
    align="center">' and '</p>' around a sentence, a line of such tags alone among lines
    of text ('<details>' over its '<summary>'), and those inside a line that opens with
    one ('<details><summary>Remove</summary>Run ...'). The text they wrap is what a reader
    sees. A line of a table's cells ('<tr><td>Rows</td><td>10 million</td></tr>'), or with
    such a tag inside a line of text or near code (an inline code span), is left whole;
    a closing run inside an inline code span is code, as is a line indented four spaces or
    more."""
    out: list[tuple[int, int]] = []
    n = 0
    for number, line in enumerate(lines):
        if "<" not in line:
            continue
        start = starts[number]
        while n < len(code) and code[n][1] <= start:
            n += 1
        if n < len(code) and code[n][0] <= start:
            continue  # in a code fence
        body = line.rstrip("\r\n")
        indent = body[:len(body) - len(body.lstrip(" \t"))]
        if len(indent.expandtabs(4)) >= 4:
            continue  # indented as code is (or a fence in a list item, which `fences` misses)
        lead = _LEADING_BLOCK_TAGS.match(body)
        a = lead.end() if lead else 0
        if lead and not body[a:].strip():  # block tags alone
            out.append((start, start + len(body)))
            continue
        b = _trailing_block_tags(body, a)
        if not body[a:b].strip():
            continue
        inside = list(_ANY_BLOCK_TAG.finditer(body, a, b))
        if inside and (not lead or "`" in body or any(
                _CELL_TAG.match(tag.group()) for tag in inside)):
            continue  # a table's row of cells, or tags a line of text or code speaks of
        if lead:
            out.append((start, start + a))
        out += [(start + tag.start(), start + tag.end()) for tag in inside]
        if b < len(body) and body.count("`", 0, b) % 2 == 0:
            out.append((start + b, start + len(body)))
    return out


def _around(spans: list[tuple[int, int]], span: tuple[int, int]) -> list[tuple[int, int]]:
    """Those of `spans` (sorted, apart) that may overlap `span`: the one starting last
    before its end, and the one before that."""
    import bisect

    at = bisect.bisect_left(spans, (span[1], span[1]))
    return spans[max(0, at - 2):at]


def _comments(text: str, hidden: list[tuple[int, int]],
              code: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`hidden` with the HTML comments of `text` outside `code` fences added."""
    hidden = list(hidden)
    if "<!--" not in text:
        return hidden
    n = 0
    at = hidden[0][1] if hidden else 0
    line_start = text.rfind("\n", 0, at) + 1
    ticks, counted = 0, line_start  # backticks of the line so far (odd: in a code span)
    # each step looks only at the text since the last: a long line of comments is linear
    while (opened := text.find("<!--", at)) >= 0:
        closed = text.find("-->", opened + 4)
        if closed < 0:
            break  # nor can a later one close
        while n < len(code) and code[n][1] <= opened:
            n += 1  # the fences before it
        newline = text.rfind("\n", at, opened)
        if newline >= 0:
            line_start = counted = newline + 1
            ticks = 0
        ticks += text.count("`", counted, opened)
        counted = opened
        if n < len(code) and code[n][0] <= opened or ticks % 2:
            at = opened + 4  # in a code fence, or in an inline code span: shown as code
            continue
        end = closed + 3
        if opened - line_start <= 3 and _LINE_START.fullmatch(text, line_start, opened):
            line_end = text.find("\n", end)  # an HTML block: to the end of its last line
            end = len(text) if line_end < 0 else line_end
            opened = line_start
        hidden.append((opened, end))
        at = counted = end
        newline = text.rfind("\n", opened, end)
        if newline >= 0:  # the comment ran on over lines
            line_start = newline + 1
            ticks = 0
    return hidden


class MarkdownLoader(TextLoader):
    kind: str = "md"
    suffixes: tuple[str, ...] = (".md", ".markdown")
    extractor = f"qa-text/{REVISION}+md/{MARKDOWN_REVISION}"

    def extract(self, raw: bytes, name: str) -> Extracted:
        extracted = super().extract(raw, name)
        text = extracted.text
        front = _FRONT_MATTER.match(text)
        title = _TITLE.search(front.group(1)) if front is not None else None
        if title is not None and title.group(2).strip():
            return Extracted(text=text, title=short_title(title.group(2)))
        shown, at = "", 0  # the title is what a reader sees
        for start, end in hidden_spans(text):
            inline = start and text[start - 1] not in "\r\n"
            shown += text[at:start] + (" " if inline else "\n\n")
            at = max(at, end)
        shown += text[at:]
        return Extracted(text=text, title=markdown_title(shown) or extracted.title)


TITLE_LINES = 30  # a level-one heading further down titles a part, not the file
_H1 = re.compile(r"^[ ]{0,3}#[ \t]+(.*?)[ \t#]*$|^(\S.*)\r?\n[ ]{0,3}=+[ \t]*$", re.MULTILINE)
_TAG = re.compile(r"<[^<>\n]*>")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")  # ![alt](src)
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")  # [text](href)


def markdown_title(text: str) -> str:
    """A Markdown file's title as a reader sees it: its first level-one heading ("# Rivet",
    or a line underlined with "===") near its top, else its first line with a word, without
    markup: a README opening with badges ("[![Build](https://...)](https://...)") or an
    HTML banner (<h1 align="center">Rivet</h1>) was titled with the markup."""
    def plain(line: str) -> str:
        line = _LINK.sub(r"\1", _IMAGE.sub("", _TAG.sub("", line)))
        return " ".join(line.replace("**", "").replace("__", "").split()).lstrip("#").strip()

    top = "\n".join(text.lstrip().splitlines()[:TITLE_LINES])
    for heading in _H1.finditer(top):
        found = plain(heading.group(1) or heading.group(2) or "")
        if re.search(r"\w", found):
            return short_title(found)
    for line in text.splitlines():
        found = plain(line)
        if re.search(r"\w", found):
            return short_title(found)
    return ""
