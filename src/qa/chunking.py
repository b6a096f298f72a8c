"""Chunk step: `Document` → `Chunk`s made of whole sentences, with exact offsets.

In: documents (their paragraph spans). Out: chunks whose `start:end` slice the document's
original text exactly, each listing its sentences with their own exact offsets.

Sentences are found by a small rule-based splitter written for scraped news text: it keeps
`U.S.`, initials and numbers like `2,500` inside a sentence, treats closing quotes after the
full stop as part of the sentence, and folds stray quote marks into their neighbour; a list
item or a row of a table is a sentence of its own, so a quote is the row that answers, and
so is each line of a record ("Date: 4 March" / "Venue: Riverside Hall") and a numbered
heading on the line over its prose ("3. Water supply"); a fenced code block of Markdown is
one paragraph and one sentence. Passages
are then packed from whole sentences, one paragraph at a time, so a passage never cuts a
sentence and rarely spans a topic change. LangChain's splitters recover offsets with
`str.find` on stripped text; packing our own spans keeps `source[start:end] == text` by
construction instead.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace

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
# not "\n1990. It closed"; a clause "\n4.2 The Supplier shall" (not "\n2.5 litres")
_LIST_ITEM = re.compile(r"\n[ \t]*(?:[-*+•]|#{1,6}|\d{1,3}[.)]|\d{1,3}(?:\.\d{1,3})+[.)]?"
                        r"(?=[ \t]+[A-Z(]))\s")
_LIST_MARK = re.compile(r"(?:[-*+•]|\d+[.)])\s")  # a list item, not a heading
_NUMBER_MARK = re.compile(r"(\d{1,3})[.)]\s")
# What numbers an item or a section where a sentence opens: "4", "2.1", "IV", "b".
_MARKER = re.compile(r"\d{1,3}(?:\.\d{1,3})*|[IVXLC]{1,6}|[a-z]")
# A row of a table: a line opening with "|" (Markdown), or with two or more cells split by
# " | " (rows as the Word and HTML loaders write them) or by tabs.
_TABLE_ROW = re.compile(r"[ \t]*\|.*|[^\n]*\s\|\s[^\n]*\s\|\s[^\n]*|[^\n\t]*\t[^\n\t]*\t[^\n]*")
_CELLS = re.compile(r"\s\|\s|\t")  # cells of a table row
# A cell no header holds: a long number (a phone number, an amount), an email address, a link.
_DATA_CELL = re.compile(r"(?:^|\||\t)\s*(?:[+(£$€]?\d[\d ().,-]{4,}\d|\S+@\S+\.\w+|"
                        r"(?:https?://|www\.)\S+)\s*(?:$|\||\t)")
_HAS_WORD = re.compile(r"\w")
_QUOTE_MARKS = re.compile(r"(?:>[ \t]*)+")  # a block quote's marks (Markdown, e-mail)
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


def code_blocks(text: str) -> tuple[tuple[int, int], ...]:
    """The fenced code blocks of `text` as (start, end) offsets, fences included, in order."""
    if "```" not in text and "~~~" not in text:
        return ()
    lines = text.splitlines(keepends=True)
    found = fences(lines)
    if not found:
        return ()
    closing = set(found.values())
    blocks, pos = [], 0
    opened = 0
    for n, line in enumerate(lines):
        if n in found:
            opened = pos
        pos += len(line)
        if n in closing:
            blocks.append((opened, pos - len(line) + len(line.rstrip("\r\n"))))
    return tuple(blocks)


def overlapping(blocks: tuple[tuple[int, int], ...], start: int, end: int,
                ) -> tuple[tuple[int, int], ...]:
    """Those of `blocks` (in order, apart) that overlap `start:end`."""
    first = bisect.bisect_right(blocks, (start, end)) - 1
    first = max(first, 0)
    last = bisect.bisect_left(blocks, (end, end))
    return tuple(b for b in blocks[first:last] if b[0] < end and b[1] > start)


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
    rows = [bool(_TABLE_ROW.fullmatch(line.rstrip("\r"))) for line in lines]
    cells = [bool(_CELLS.search(line)) for line in lines]
    if sum(cells) > 1:  # two columns: "People Team | people@..." under "Contact | Email"
        rows = [row or has_cells for row, has_cells in zip(rows, cells, strict=True)]
    if sum(rows) > 1:  # a line under a table's rows is one more (a cell's next paragraph)
        first = rows.index(True)
        rows[first:] = [True] * (len(rows) - first)
    records = _records(lines)
    if len(lines) > 1 and _heads(lines[0], lines[1]):
        yield len(lines[0])  # "3. Water supply" over the prose of its section
    end = 0
    for n, line in enumerate(lines[:-1]):
        end += len(line)
        if rows[n] or rows[n + 1] or records[n] or records[n + 1]:
            yield end  # each row of a table, each line of a record, is a sentence
        end += 1


# "Venue: Riverside Hall": a line of a record (minutes, a form), a label and what it gives;
# in Markdown its label is often in bold or italics ("**Instructor:** Dr. Ines Albrecht")
EMPHASIS = r"(?:\*{1,2}|_{1,2})?"
_LABEL = re.compile(rf"[ \t]*{EMPHASIS}[A-Z][\w'’&/-]*(?:[ \t]+[\w'’&/()-]+){{0,2}}{EMPHASIS}:"
                    rf"{EMPHASIS}[ \t]+\S")
_PROSE_END = re.compile(r"""[.!?…]["”’')\]]*(?:\s|$)""")  # a sentence ends in the line


def _records(lines: list[str]) -> list[bool]:
    """Which of `lines` are lines of a record: two or more "Label: value" lines in a row
    ("Date: Tuesday 4 March" / "Venue: Riverside Hall" / "Apologies: T. Hughes")."""
    label = [bool(_LABEL.match(line)) for line in lines]
    return [is_label and ((n > 0 and label[n - 1]) or (n + 1 < len(label) and label[n + 1]))
            for n, is_label in enumerate(label)]


# The number of a clause under a numbered heading ("3. Rent" / "3.1 The rent is …", "(a)").
_CLAUSE_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)+\.?|\(?[a-z]\)|\(\d{1,2}\))\s+")


def _heads(line: str, following: str) -> bool:
    """Is `line`, the first of a paragraph, the heading of the prose on the lines under it
    ("3. Water supply" / "The water will be turned on on 1 April.", a plain-text file's
    section; "## Usage" / "Run it with..."): a numbered or marked line of a few words with
    no closing punctuation, over a line that opens with a capital and ends a sentence or is
    longer than a heading. (An unnumbered line over prose may be a term over its
    definition, which is quoted with it.)"""
    line, following = line.strip(), _CLAUSE_NUMBER.sub("", following.strip())
    return (0 < len(line.split()) <= HEADING_WORDS and not _ENDS_SENTENCE.search(line)
            and bool(_NUMBER_MARK.match(line) or _MARKDOWN_HEADING.match(line))
            and not _CELLS.search(line) and not _TABLE_ROW.fullmatch(line)
            and following[:1].isupper() and not _CELLS.search(following)
            and (len(following.split()) > HEADING_WORDS or bool(_PROSE_END.search(following))))


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
        marks = _QUOTE_MARKS.match(text, s, e)  # "> Note: ...": the quote starts after "> "
        if marks and (s == 0 or text[s - 1] == "\n") and _HAS_WORD.search(text, marks.end(), e):
            s = marks.end()
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


def _hard_wrap(span: Span, limit: int, lines: bool = False) -> list[Span]:
    """Split an overlong sentence at whitespace into pieces of at most ~`limit` chars (code:
    at a line's end where it can)."""
    pieces: list[Span] = []
    text, base, begin = span.text, span.start, 0
    while len(text) - begin > limit:
        cut = text.rfind("\n", begin + 1, begin + limit) if lines else -1
        cut = cut if cut > begin else text.rfind(" ", begin + 1, begin + limit)
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
            spans.extend(_hard_wrap(sent, chunk_chars, code) if len(sent.text) > chunk_chars
                         else [sent])
        paragraphs.append(spans)
    return paragraphs


def _pack(paragraphs: Iterable[list[Span]], chunk_chars: int, min_chunk_chars: int,
          text: str = "", code: tuple[tuple[int, int], ...] | None = None,
          ) -> Iterator[list[Span]]:
    """Group sentences into passages: whole sentences, paragraph breaks respected. A passage
    never spans text of `text` that is in no paragraph (a line of page furniture, a
    Markdown comment): a passage's text is the slice from its first sentence to its last.
    Headings (paragraphs of their own) that would end a passage open the next one."""
    current: list[Span] = []
    for sentences in paragraphs:
        if current and (current[-1].end - current[0].start >= min_chunk_chars or (
                sentences and text[current[-1].end:sentences[0].start].strip())):
            # headings that end the passage head the next: "How do I reset my password?"
            # goes with its answer, not after the answer before it
            keep = len(current)
            if sentences and not text[current[-1].end:sentences[0].start].strip():
                while keep > 1 and (_heads_next(current[:keep], text, code)
                                    or introduces(current[keep - 1])):
                    keep -= 1
            yield current[:keep]
            current = current[keep:]
        # a code block wrapped into pieces stays in one passage (up to CODE_CHARS), where
        # `is_heading` sees its fences around each piece
        whole = (len(sentences) > 1 and sentences[-1].end - sentences[0].start <= CODE_CHARS
                 and is_code(text[sentences[0].start:sentences[-1].end]))
        for n, sent in enumerate(sentences):
            if current and sent.end - current[0].start > chunk_chars and not (whole and n):
                keep = len(current) - 1 if len(current) > 1 and introduces(current[-1]) \
                    else len(current)
                yield current[:keep]
                current = current[keep:]
            current.append(sent)
    if current:
        yield current


def introduces(sentence: Span | Sentence) -> bool:
    """Does the sentence end in a colon ("Invoices come in these formats:")? It goes with
    what it introduces, in one passage and in one answer: one is half an answer without
    the other."""
    return sentence.text.rstrip().endswith(":")


def _heads_next(current: list[Span], text: str,
                code: tuple[tuple[int, int], ...] | None = None) -> bool:
    """Is the last sentence of `current` a paragraph of its own that is a heading?"""
    last, before = current[-1], current[-2]
    if "\n" not in text[before.end:last.start] or not _BLANK_BEFORE.search(
            text[current[0].start:last.start]):
        return False
    start = current[0].start
    chunk = Chunk("", "", 0, start, last.end, text[start:last.end], (),
                  None if code is None else overlapping(code, start, last.end))
    return is_heading(Sentence("", 0, last.start, last.end, last.text), chunk)


CODE_CHARS = 4000  # a code block up to this long is one passage, however it is wrapped;
# a longer one is several passages, each knowing it is code (`Chunk.code`)


def is_code(text: str) -> bool:
    """Is `text` (a paragraph, or a sentence) a fenced code block, fences and all?"""
    lines = text.split("\n")
    return fences(lines).get(0) == len(lines) - 1 > 0


def _in_code(sentence: Sentence, chunk: Chunk) -> bool:
    """Is the sentence a fenced code block, or a piece of one, of its passage (or of its
    document, where the passage knows the document's code blocks)?"""
    if chunk.code is not None:
        return any(start <= sentence.start < end for start, end in chunk.code)
    if "```" not in chunk.text and "~~~" not in chunk.text:
        return False
    lines = chunk.text.split("\n")
    at = chunk.text.count("\n", 0, sentence.start - chunk.start)
    return any(opened <= at <= closed for opened, closed in fences(lines).items())


def chunk_documents(
    docs: Iterable[Document], chunk_chars: int = 600, min_chunk_chars: int = 120
) -> list[Chunk]:
    """All passages of `docs`, numbered in order; ids are `"{doc_id}_{n}"`."""
    chunks: list[Chunk] = []
    n_sentences = 0
    for doc in docs:
        code = code_blocks(doc.text)
        for n, group in enumerate(
            _pack(document_sentences(doc, chunk_chars), chunk_chars, min_chunk_chars, doc.text,
                  code)
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
                    code=overlapping(code, start, end),
                )
            )
    return chunks


HEADING_WORDS = 8
QUESTION_WORDS = 20  # a question that is a paragraph alone: a FAQ's heading
_MARKDOWN_HEADING = re.compile(r"#{1,6}[ \t]")
_NUMBERED_MARK = re.compile(r"[ \t]*#{1,6}[ \t]+\d+(?:\.\d+)*\.?")  # "## 2." of "## 2. Rent"
_SETEXT = re.compile(r"=+|-+")  # the line under a Markdown heading ("Deploy guide\n=====")
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
    if _NUMBERED_MARK.fullmatch(before.rpartition("\n")[2]) \
            and (not after or after.startswith("\n")):
        return True  # "## 2. Rent": the sentence "Rent" after the number a heading carries
    if not ((not before or before.endswith("\n")) and (not after or after.startswith("\n"))):
        return False  # not alone on its line
    if _in_code(sentence, chunk):  # a fenced code block is code, not prose that answers
        return True
    if _CELLS.search(text):  # the first row of a table: a row under it, none above it
        above = re.split(r"\n[ \t]*\n", before.rstrip())[-1].split("\n")
        following = after.lstrip().partition("\n")[0]
        return _is_row(following) and not any(_is_row(line) for line in above) \
            and not _DATA_CELL.search(text)  # "Harbour office | 01632 960001": data
    if _MARKDOWN_HEADING.match(text):  # "## Why use Rivet?": marked as one
        return True
    above = [] if _BLANK_BEFORE.search(before) else \
        re.split(r"\n[ \t]*\n", before.rstrip())[-1].split("\n")
    if any(_is_row(line) for line in above):
        return False  # a row of a table with one cell filled ("IT Helpdesk"), a cell's line
    previous_line = above[-1] if above else ""
    next_line = "" if _BLANK_AFTER.match(after) else after.lstrip("\n").partition("\n")[0]
    if _LABEL.match(text) and any(_LABEL.match(line) for line in (
            previous_line, next_line, before.rstrip().rpartition("\n")[2],
            after.strip().partition("\n")[0])):
        return False  # "Venue: Riverside Hall" under "Date: 4 March": a record's line, or
        # its paragraph (a web page's "<p><b>Venue:</b> Riverside Hall</p>")
    if _INTRODUCES.search(text):  # "Find us at:\n12 Mill Lane\nHolt": what a colon introduces
        return False
    lines = text.split("\n")
    if len(lines) > 1 and not _SETEXT.fullmatch(lines[-1].strip()):
        return False  # lines of a block ("Write to us at\n12 Mill Lane\nHolt"), not a title
    if _BLANK_BEFORE.search(before) is not None and text.rstrip("*_").endswith("?") \
            and len(text.split()) <= QUESTION_WORDS:
        return True  # a FAQ's question ("How do I descale the machine?") asks, not answers
    numbered_section = _numbered_section(text, before, after)
    # A numbered section's heading may run longer than a title ("1. What Felorin is and what
    # it is used for", as leaflets and guides head theirs): its number says what it is.
    words = QUESTION_WORDS if numbered_section else HEADING_WORDS
    return not (len(text.split()) > words or _ENDS_SENTENCE.search(text)
                or (_LIST_MARK.match(text) and not numbered_section))


def table_header(sentence: Sentence, chunk: Chunk) -> Sentence | None:
    """The header row of the table of which `sentence` is a later row ("| Ticket | Single |
    Return |" over "| Adult | £8.50 | £14.00 |"), its first line alone (not a Markdown rule
    under it); None when the sentence is no row of a table, or its first."""
    if "\n" in sentence.text.strip() or not _CELLS.search(sentence.text):
        return None
    above = [s for s in chunk.sentences if s.index < sentence.index]
    header, after = None, sentence
    for s in reversed(above):
        between = chunk.text[s.end - chunk.start:after.start - chunk.start]
        if between.strip() or between.count("\n") != 1 \
                or not all(_is_row(line) for line in s.text.split("\n")):
            break
        header, after = s, s
    if header is None:
        return None
    first = header.text.split("\n", 1)[0].rstrip()
    return replace(header, end=header.start + len(first), text=first)


def _is_row(line: str) -> bool:
    """Is `line` a row of a table, its Markdown rule ("|---|---|") included?"""
    return bool(_CELLS.search(line) or _TABLE_ROW.fullmatch(line.strip()))


def _numbered_section(text: str, before: str, after: str) -> bool:
    """Is this numbered line a paragraph alone ("4. How to apply"), not an item of a loose
    list, whose items are paragraphs numbered one after another ("1. Install it\n\n2. Run
    it")? A bulleted line ("- Bikes travel free") never numbers a section."""
    number = _NUMBER_MARK.match(text)
    alone = _BLANK_AFTER.match(after) is not None
    if number is None or _BLANK_BEFORE.search(before) is None or not (
            alone or _heads(text, after.lstrip("\n").partition("\n")[0])):
        return False  # neither a paragraph alone nor the heading over a section's prose
    n = int(number.group(1))
    previous = before.rstrip().rpartition("\n\n")[2].strip()
    following = _NUMBER_MARK.match(after.lstrip())
    previous_number = _NUMBER_MARK.match(previous)
    return not ((following is not None and int(following.group(1)) == n + 1)
                or (previous_number is not None and "\n" not in previous
                    and int(previous_number.group(1)) == n - 1))
