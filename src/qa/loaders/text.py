"""Plain text and Markdown: the decoded file is the document's text, unchanged. A Markdown
file's title is its front matter's `title:`, else its first line after the front matter."""

from __future__ import annotations

import re

from qa.loaders.base import BadDocument, Extracted, decode_text, first_line_title, looks_like_text

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
MARKDOWN_REVISION = 3  # 2: the title is the front matter's, not its "---"
#                       3: ... also in a file with CRLF line ends; no title is a comment;
#                          else the first "# " heading, without markup
# An HTML comment as Markdown reads one (CommonMark's HTML block): from "<!--" at a line's
# start to the end of the line that closes it
_COMMENT = re.compile(r"^[ \t]{0,3}<!--.*?-->[^\n]*", re.DOTALL | re.MULTILINE)


def hidden_spans(text: str) -> list[tuple[int, int]]:
    """What a Markdown file holds that a reader never sees, as (start, end) offsets: its
    YAML front matter (data about the file: its title, tags, a date) and its HTML comments
    (notes to its authors, "<!-- TODO ... -->"), those in code fences aside."""
    from qa.chunking import fences

    front = _FRONT_MATTER.match(text)
    hidden = [(0, front.end())] if front is not None else []
    if "<!--" not in text:
        return hidden
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    code = sorted((starts[o], starts[c + 1]) for o, c in fences(lines).items())
    n = 0
    for comment in _COMMENT.finditer(text, hidden[0][1] if hidden else 0):
        while n < len(code) and code[n][1] <= comment.start():
            n += 1  # the fences before it
        if n == len(code) or not code[n][0] <= comment.start():
            hidden.append(comment.span())
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
            return Extracted(text=text, title=title.group(2).strip()[:200])
        shown, at = [], 0  # the title is what a reader sees
        for start, end in hidden_spans(text):
            shown.append(text[at:start])
            at = max(at, end)
        shown.append(text[at:])
        return Extracted(text=text, title=markdown_title("\n\n".join(shown))
                         or extracted.title)


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
            return found[:200]
    for line in text.splitlines():
        found = plain(line)
        if re.search(r"\w", found):
            return found[:200]
    return ""
