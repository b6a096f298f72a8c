"""HTML: the page's main text, found by trafilatura (navigation, scripts, footers and other
boilerplate dropped); selectolax is the fallback for pages too short for trafilatura.

The extracted text has one paragraph per block, separated by blank lines, so paragraphs and
sentences never run across blocks.
"""

from __future__ import annotations

import re
from importlib.metadata import version

from qa.loaders.base import BadDocument, Extracted, clean_extracted, decode_text, looks_like_text

REVISION = 1
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title)\b",
                         re.IGNORECASE | re.DOTALL)
_DROP = "script, style, noscript, nav, header, footer, aside, form, iframe, svg, template, button"
_BLOCKS = "h1, h2, h3, h4, h5, h6, p, li, pre, blockquote, td, th, dt, dd, figcaption"


def _paragraph_text(lines: list[str]) -> str:
    kept = [" ".join(line.split()) for line in lines]
    return "\n\n".join(line for line in kept if line)


def _fallback(html: str) -> str:
    """Text of the page's block elements, without the parts that are never content."""
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    for node in tree.css(_DROP):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body
    if root is None:
        return ""
    blocks = [n.text(separator=" ") for n in root.css(_BLOCKS)
              if n.css_first(_BLOCKS) is None]
    if not blocks:
        blocks = [root.text(separator=" ")]
    return _paragraph_text(blocks)


def _title(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(html)
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node is not None and node.text(strip=True):
            return " ".join(node.text().split())[:200]
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
        import trafilatura

        html = decode_text(raw, name)
        if not html.strip():
            raise BadDocument(f"{name}: the file is empty: it holds no text to index")
        try:
            main = trafilatura.extract(html, include_comments=False, include_tables=True,
                                       include_images=False, favor_recall=True) or ""
        except Exception:  # noqa: BLE001 - a page trafilatura cannot parse goes to the fallback
            main = ""
        text = _paragraph_text(main.splitlines()) if main.strip() else _fallback(html)
        text = clean_extracted(text)
        if not text.strip():
            raise BadDocument(f"{name}: the HTML page holds no main text to index")
        title = _title(html) or text.splitlines()[0][:200]
        return Extracted(text=text, title=clean_extracted(title))
