"""Load step: `seeds/*.txt|*.md` → `Document`s.

In: a folder. Out: one `Document` per file (id = file stem, title = first non-empty line)
holding the file's decoded text unchanged and the spans of its paragraphs, less scraped
boilerplate lines ("Source link", "Back to top button", ...). Offsets always refer to the
original text, so every later citation can be checked against the file itself.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from qa.errors import SeedError
from qa.types import Document, Span

SEED_SUFFIXES = (".txt", ".md")

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


def _paragraphs(text: str) -> tuple[Span, ...]:
    """Blocks of non-blank, non-boilerplate lines, trimmed, with exact offsets."""
    spans: list[Span] = []
    block_start: int | None = None
    block_end = 0
    pos = 0
    for line in text.splitlines(keepends=True):
        content = line.strip()
        if content and not is_boilerplate(content):
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


def load_document(path: Path) -> Document:
    """Read one seed file; a file that is not UTF-8 or holds no text is an error."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SeedError(f"cannot read seed file {str(path)!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeedError(
            f"seed file {str(path)!r} is not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    paragraphs = _paragraphs(text)
    if not paragraphs:
        raise SeedError(f"seed file {str(path)!r} is empty: it holds no text to index")
    title = paragraphs[0].text.splitlines()[0].lstrip("#").strip()
    return Document(
        id=path.stem,
        title=title,
        path=str(path),
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
        paragraphs=paragraphs,
    )


def seed_files(seeds_dir: Path) -> list[Path]:
    """The seed files of a folder, sorted so that every build sees them in one order."""
    if not seeds_dir.is_dir():
        raise SeedError(f"seeds folder {str(seeds_dir)!r} does not exist")
    files = sorted(
        p for p in seeds_dir.iterdir() if p.is_file() and p.suffix.lower() in SEED_SUFFIXES
    )
    if not files:
        raise SeedError(f"seeds folder {str(seeds_dir)!r} holds no .txt or .md files")
    stems = [p.stem for p in files]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise SeedError(f"two seed files share the id {duplicates[0]!r}; rename one")
    return files


def load_documents(seeds_dir: Path) -> list[Document]:
    """Every document of `seeds_dir`, in file-name order."""
    return [load_document(p) for p in seed_files(seeds_dir)]
