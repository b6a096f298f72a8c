"""Chunk step: `Document` → `Chunk`s made of whole sentences, with exact offsets.

In: documents (their paragraph spans). Out: chunks whose `start:end` slice the document's
original text exactly, each listing its sentences with their own exact offsets.

Sentences are found by a small rule-based splitter written for scraped news text: it keeps
`U.S.`, initials and numbers like `2,500` inside a sentence, treats closing quotes after the
full stop as part of the sentence, and folds stray quote marks into their neighbour; a list
item or a row of a table is a sentence of its own, so a quote is the row that answers; a
fenced code block of Markdown is one paragraph and one sentence. Passages
are then packed from whole sentences, one paragraph at a time, so a passage never cuts a
sentence and rarely spans a topic change. LangChain's splitters recover offsets with
`str.find` on stripped text; packing our own spans keeps `source[start:end] == text` by
construction instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from qa.types import Chunk, Document, Sentence, Span

_ABBREVIATIONS = frozenset(
    """u.s u.k u.n u.s.a e.u e.g i.e mr mrs ms dr prof gen maj col lt sgt capt cmdr adm sen rep
    gov pres st jr sr inc ltd co corp vs no nos fig jan feb mar apr jun jul aug sep sept oct nov
    dec a.m p.m approx dept est ca fl cf""".split()
)

# A full stop (or ! ? …) with any closing quotes/brackets or Markdown emphasis, then space,
# then what can open a sentence: opening quotes or emphasis and a capital letter or a digit
# ("**How do I rent a bike?**" and the answer on the next line are two sentences).
_BOUNDARY = re.compile(r"""[.!?…]+["”’')\]*_]*(?=\s+["“‘'(\[*_]*[A-Z0-9])""")
_LIST_ITEM = re.compile(r"\n[ \t]*(?:[-*+•]|#{1,6}|\d{1,3}[.)])\s")  # not "\n1990. It closed"
_LIST_MARK = re.compile(r"(?:[-*+•]|\d+[.)])\s")  # a list item, not a heading
_NUMBER_MARK = re.compile(r"(\d{1,3})[.)]\s")
# What numbers an item or a section where a sentence opens: "4", "2.1", "IV", "b".
_MARKER = re.compile(r"\d{1,3}(?:\.\d{1,3})*|[IVXLC]{1,6}|[a-z]")
# A row of a table: a line opening with "|" (Markdown), or with two or more cells split by
# " | " (rows as the Word and HTML loaders write them) or by tabs.
_TABLE_ROW = re.compile(r"[ \t]*\|.*|[^\n]*\s\|\s[^\n]*\s\|\s[^\n]*|[^\n\t]*\t[^\n\t]*\t[^\n]*")
_CELLS = re.compile(r"\s\|\s|\t")  # cells of a table row
_HAS_WORD = re.compile(r"\w")
_CLOSING_QUOTES = frozenset("\"”’'")
_OPENING_QUOTES = frozenset("\"“‘'")
SPEECH_TAG_WORDS = 3


# A fenced code block of Markdown (CommonMark): a line of three or more ` or ~ opens it, and
# a line of at least as many of the same closes it.
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}(?=[^`]*$)|~{3,})")


def fences(lines: list[str]) -> dict[int, int]:
    """The fenced code blocks among `lines`: the number of each one's opening line and of
    its closing line. A fence never closed is none (its lines are read as text)."""
    found: dict[int, int] = {}
    opened: tuple[int, str] | None = None
    for n, line in enumerate(lines):
        mark = _FENCE.match(line.rstrip("\r\n"))
        if mark is None:
            continue
        if opened is None:
            opened = (n, mark.group(1))
        elif (mark.group(1)[0] == opened[1][0] and len(mark.group(1)) >= len(opened[1])
              and not line[mark.end():].strip()):
            found[opened[0]] = n
            opened = None
    return found


def _is_abbreviation(text: str, dot: int) -> bool:
    """Does the full stop at `dot` end an abbreviation or an initial rather than a sentence?"""
    start = dot
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    word = text[start:dot].lower().strip(".")
    if not word:
        return False
    if len(word) == 1 and text[start].isupper():  # an initial: "John F. Kennedy"
        return True
    if len(word) == 1 and (start == 0 or not text[start - 1].isalnum()):
        return True  # a lone small letter: "(r. 1368–1398)", "(c. 605)", "Roe v. Wade"
    return word in _ABBREVIATIONS


def _split_points(text: str) -> Iterator[int]:
    """Offsets in `text` where one sentence ends (exclusive)."""
    last = 0
    for m in _BOUNDARY.finditer(text):
        first_stop = m.start()
        if text[first_stop] == "." and m.group().count(".") == 1:
            if _is_abbreviation(text, first_stop):
                continue
            opened = max(last, text.rfind("\n", 0, first_stop) + 1)
            if _MARKER.fullmatch(text[opened:first_stop].strip()):
                continue  # "4. How to apply", "2.1. Scope", "IV. Results": a number, not an end
        last = m.end()
        yield last
    for m in _LIST_ITEM.finditer(text):
        yield m.start()
    lines = text.split("\n")
    rows = [bool(_TABLE_ROW.fullmatch(line)) for line in lines]
    cells = [bool(_CELLS.search(line)) for line in lines]
    if sum(cells) > 1:  # two columns: "People Team | people@..." under "Contact | Email"
        rows = [row or has_cells for row, has_cells in zip(rows, cells, strict=True)]
    end = 0
    for n, line in enumerate(lines[:-1]):
        end += len(line)
        if rows[n] or rows[n + 1]:  # each row of a table is a sentence of its own
            yield end
        end += 1


def split_sentences(text: str, offset: int = 0) -> list[Span]:
    """Sentence spans of `text` (a paragraph), trimmed, offsets shifted by `offset`."""
    cuts = sorted(set(_split_points(text)) | {len(text)})
    spans: list[Span] = []
    begin = 0
    for cut in cuts:
        piece = text[begin:cut]
        lead = len(piece) - len(piece.lstrip())
        s, e = begin + lead, begin + len(piece.rstrip())
        begin = cut
        if s >= e:
            continue
        if spans and (not _HAS_WORD.search(text[s:e]) or _speech_tag(spans[-1].text, text[s:e])):
            prev = spans.pop()  # a stray quote mark, or "Ilse asked.": part of the one before
            s = prev.start - offset
        spans.append(Span(offset + s, offset + e, text[s:e]))
    # A leading fragment with no words joins the sentence after it; alone ("***", a table's
    # "|---|---|" rule as a paragraph of its own) it is no sentence: it says nothing.
    if spans and not _HAS_WORD.search(spans[0].text):
        if len(spans) == 1:
            return []
        first, second = spans[0], spans[1]
        merged_text = text[first.start - offset : second.end - offset]
        spans[:2] = [Span(first.start, second.end, merged_text)]
    return spans


def _speech_tag(before: str, fragment: str) -> bool:
    """Is `fragment` the few words that attribute a quotation ending `before`: the
    “Ilse asked.” of “"And the numbers?" Ilse asked.”? Alone it answers nothing."""
    return (before[-1:] in _CLOSING_QUOTES and len(fragment.split()) <= SPEECH_TAG_WORDS
            and fragment[0] not in _OPENING_QUOTES)


def _hard_wrap(span: Span, limit: int) -> list[Span]:
    """Split an overlong sentence at whitespace into pieces of at most ~`limit` chars."""
    pieces: list[Span] = []
    text, base, begin = span.text, span.start, 0
    while len(text) - begin > limit:
        cut = text.rfind(" ", begin + 1, begin + limit)
        cut = cut if cut > begin else begin + limit
        pieces.append(Span(base + begin, base + cut, text[begin:cut]))
        begin = cut
        while begin < len(text) and text[begin].isspace():
            begin += 1
    pieces.append(Span(base + begin, base + len(text), text[begin:]))
    return pieces


def document_sentences(doc: Document, chunk_chars: int) -> list[list[Span]]:
    """The sentences of each paragraph of `doc` (overlong ones wrapped to fit a passage)."""
    paragraphs = []
    for para in doc.paragraphs:
        spans: list[Span] = []
        code = is_code(para.text)  # one unit: its "# comments" and ". " are not sentences
        for sent in [para] if code else split_sentences(para.text, para.start):
            spans.extend(_hard_wrap(sent, chunk_chars) if len(sent.text) > chunk_chars else [sent])
        paragraphs.append(spans)
    return paragraphs


def _pack(paragraphs: Iterable[list[Span]], chunk_chars: int, min_chunk_chars: int) -> Iterator[
    list[Span]
]:
    """Group sentences into passages: whole sentences, paragraph breaks respected."""
    current: list[Span] = []
    for sentences in paragraphs:
        if current and current[-1].end - current[0].start >= min_chunk_chars:
            yield current
            current = []
        for sent in sentences:
            if current and sent.end - current[0].start > chunk_chars:
                yield current
                current = []
            current.append(sent)
    if current:
        yield current


def is_code(text: str) -> bool:
    """Is `text` (a paragraph, or a sentence) a fenced code block, fences and all?"""
    lines = text.split("\n")
    return fences(lines).get(0) == len(lines) - 1 > 0


def chunk_documents(
    docs: Iterable[Document], chunk_chars: int = 600, min_chunk_chars: int = 120
) -> list[Chunk]:
    """All passages of `docs`, numbered in order; ids are `"{doc_id}_{n}"`."""
    chunks: list[Chunk] = []
    n_sentences = 0
    for doc in docs:
        for n, group in enumerate(
            _pack(document_sentences(doc, chunk_chars), chunk_chars, min_chunk_chars)
        ):
            sentences = []
            for span in group:
                sentences.append(Sentence(doc.id, n_sentences, span.start, span.end, span.text))
                n_sentences += 1
            start, end = group[0].start, group[-1].end
            chunks.append(
                Chunk(
                    doc_id=doc.id,
                    id=f"{doc.id}_{n}",
                    index=len(chunks),
                    start=start,
                    end=end,
                    text=doc.text[start:end],
                    sentences=tuple(sentences),
                )
            )
    return chunks


HEADING_WORDS = 8
QUESTION_WORDS = 20  # a question that is a paragraph alone: a FAQ's heading
_MARKDOWN_HEADING = re.compile(r"#{1,6}[ \t]")
_INTRODUCES = re.compile(r":[ \t]*\n[ \t]*\S")  # a line ending in a colon, and lines under it
_ENDS_SENTENCE = re.compile(r"""[.!?…:;]["”’')\]]*$""")
_BLANK_BEFORE = re.compile(r"(?:^|\n[ \t]*\n)$")  # the passage's start, or a blank line
_BLANK_AFTER = re.compile(r"^(?:$|\n[ \t]*\n)")


def is_heading(sentence: Sentence, chunk: Chunk) -> bool:
    """Is this "sentence" a title or heading ("Warranty and Service", "## Programs"): a few
    words alone on their line with no closing punctuation, or the first row of a table
    ("Fruit | Tons harvested | Main buyer", rows as the Word and HTML loaders write them)?
    A numbered line that is a paragraph of its own ("4. How to apply") is a section heading,
    and so is a question that is the first line of one ("How do I descale the machine?", a
    FAQ's, its answer under it) or a line marked as a Markdown heading ("## Why use
    Rivet?"), whatever their punctuation. A fenced code block is taken for one too: it is
    code, not prose that answers (it is quoted only if no prose answers).
    It names a topic or columns but answers nothing, though it shares the question's words;
    a list item or a table's later row ("Pears | 85 | Riverside Cannery") is not one."""
    # a Windows file's line ends (a .txt or .md keeps its bytes) are line ends
    text = sentence.text.replace("\r\n", "\n")
    before = chunk.text[: sentence.start - chunk.start].replace("\r\n", "\n").rstrip(" \t")
    after = chunk.text[sentence.end - chunk.start :].replace("\r\n", "\n").lstrip(" \t")
    if not ((not before or before.endswith("\n")) and (not after or after.startswith("\n"))):
        return False  # not alone on its line
    if is_code(text):  # a fenced code block is code, not prose that answers
        return True
    if _CELLS.search(text):  # the first row of a table: a row under it, none above it
        above = re.split(r"\n[ \t]*\n", before.rstrip())[-1].split("\n")
        following = after.lstrip().partition("\n")[0]
        return _is_row(following) and not any(_is_row(line) for line in above)
    if _MARKDOWN_HEADING.match(text):  # "## Why use Rivet?": marked as one
        return True
        return True
    if before.endswith("\n") and _is_row(before[:-1].rpartition("\n")[2]):
        return False  # a row of a table with one cell filled ("IT Helpdesk")
    if _INTRODUCES.search(text):  # "Find us at:\n12 Mill Lane\nHolt": what a colon introduces
        return False
    if _BLANK_BEFORE.search(before) is not None and text.rstrip("*_").endswith("?") \
            and len(text.split()) <= QUESTION_WORDS:
        return True  # a FAQ's question ("How do I descale the machine?") asks, not answers
    numbered_section = _numbered_section(text, before, after)
    return not (len(text.split()) > HEADING_WORDS or _ENDS_SENTENCE.search(text)
                or (_LIST_MARK.match(text) and not numbered_section))


def _is_row(line: str) -> bool:
    """Is `line` a row of a table, its Markdown rule ("|---|---|") included?"""
    return bool(_CELLS.search(line) or _TABLE_ROW.fullmatch(line.strip()))


def _numbered_section(text: str, before: str, after: str) -> bool:
    """Is this numbered line a paragraph alone ("4. How to apply"), not an item of a loose
    list, whose items are paragraphs numbered one after another ("1. Install it\n\n2. Run
    it")? A bulleted line ("- Bikes travel free") never numbers a section."""
    number = _NUMBER_MARK.match(text)
    if number is None or _BLANK_BEFORE.search(before) is None \
            or _BLANK_AFTER.match(after) is None:
        return False
    n = int(number.group(1))
    previous = before.rstrip().rpartition("\n\n")[2].strip()
    following = _NUMBER_MARK.match(after.lstrip())
    previous_number = _NUMBER_MARK.match(previous)
    return not ((following is not None and int(following.group(1)) == n + 1)
                or (previous_number is not None and "\n" not in previous
                    and int(previous_number.group(1)) == n - 1))
