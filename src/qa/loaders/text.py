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
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_TITLE = re.compile(r"""^title:[ \t]*(["']?)(.+?)\1[ \t]*$""", re.MULTILINE)
MARKDOWN_REVISION = 2  # 2: the title is the front matter's, not its "---"


def front_matter_end(text: str) -> int:
    """Where a Markdown file's YAML front matter ends (0 if it has none): it is data about
    the file (its title, tags, a date), not text to quote."""
    front = _FRONT_MATTER.match(text)
    return front.end() if front is not None else 0


class MarkdownLoader(TextLoader):
    kind: str = "md"
    suffixes: tuple[str, ...] = (".md", ".markdown")
    extractor = f"qa-text/{REVISION}+md/{MARKDOWN_REVISION}"

    def extract(self, raw: bytes, name: str) -> Extracted:
        extracted = super().extract(raw, name)
        front = _FRONT_MATTER.match(extracted.text)
        if front is None:
            return extracted
        title = _TITLE.search(front.group(1))
        if title is not None and title.group(2).strip():
            return Extracted(text=extracted.text, title=title.group(2).strip()[:200])
        rest = first_line_title(extracted.text[front.end():])
        return Extracted(text=extracted.text, title=rest or extracted.title)
