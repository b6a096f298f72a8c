"""Plain text and Markdown: the decoded file is the document's text, unchanged."""

from __future__ import annotations

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


class MarkdownLoader(TextLoader):
    kind: str = "md"
    suffixes: tuple[str, ...] = (".md", ".markdown")
