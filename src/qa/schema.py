"""The wire format: how hits and answers look as JSON and as text, shared by every edge.

In: `Hit`s and `Answer`s. Out: plain dicts (JSON-ready) and rendered text. The CLI, the HTTP
API, the OpenAI/MCP endpoints and `qa eval` all call these, so a question gets the same
shape wherever it is asked. Records carry spans; markup (Markdown bold, terminal styling)
is added here, never in the answer step. Text that comes from a document or a person is
made inert wherever it is shown to be rendered: `text_html` for the web chat's HTML,
`markdown_text` for the Markdown of the OpenAI endpoint and MCP. Questions coming in are
checked here too (`clean_question`, and `clean_turn` for an earlier turn), so a bad one reads
the same from every edge, from `qa eval`'s test-set parser and from its run.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qa.config import MAX_QUESTION_CHARS
from qa.errors import BadQuestion
from qa.types import Answer, Document, Hit, Sentence, Span

if TYPE_CHECKING:
    from qa.loaders.library import Entry, Problem


# -- questions -------------------------------------------------------------------------------

# Bidirectional embeddings, overrides and isolates (U+202A-E, U+2066-9): never shown, as
# one left open reverses what follows it. Text in the natural order needs none of them.
BIDI_CONTROLS = "".join(map(chr, (*range(0x202A, 0x202F), *range(0x2066, 0x206A))))
# Control characters other than tab and line breaks, and the bidirectional overrides that
# would make an echoed question read differently from what it holds.
_DROPPED = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
# A terminal's escape sequence (ECMA-48), whole: CSI ("ESC[1;31m"), OSC ("ESC]0;title BEL"),
# and the two-character ones ("ESC c")
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_a-z])")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _blank(ch: str) -> bool:
    """Whitespace, or a format character that shows nothing (zero-width space, BOM, ...)."""
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def clean_question(question: str, what: str = "the question") -> str:
    """The question without control characters and trimmed; reject what cannot be a
    question (not text, no visible character, too long) with a one-line reason that calls
    it `what` (`turn_name` for an earlier turn)."""
    if not isinstance(question, str):
        raise BadQuestion(f"{what} must be text")
    if _SURROGATE.search(question):  # JSON "\ud800", or argv bytes that were not UTF-8
        raise BadQuestion(f"{what} is not valid text (a lone surrogate or a byte that "
                          "is not UTF-8)")
    text = without_controls(question).strip()
    if len(text) > MAX_QUESTION_CHARS:
        raise BadQuestion(
            f"{what} is too long ({len(text)} characters; at most {MAX_QUESTION_CHARS})"
        )
    start, end = 0, len(text)
    while start < end and _blank(text[start]):
        start += 1
    while end > start and _blank(text[end - 1]):
        end -= 1
    if start == end:
        raise BadQuestion(f"{what} is empty")
    return text[start:end]


def without_controls(text: str) -> str:
    """`text` less the characters a question drops: terminal escape sequences (whole),
    control characters and bidirectional overrides, which would show a question other than
    the one answered ("who\u202e is")."""
    return _DROPPED.sub("", _ESCAPE.sub("", text) if "\x1b" in text else text)


def turn_name(n: int) -> str:
    """How an error names earlier turn `n` (from 1), in the CLI, the HTTP API, MCP and
    `qa eval` alike: "history turn 2" (not pydantic's "history[1]")."""
    return f"history turn {n}"


def clean_turn(question: str, n: int) -> str:
    """Earlier turn `n` (from 1) cleaned as a question is; a bad one is named, e.g.
    "history turn 2 is empty", the one wording of every edge."""
    return clean_question(question, turn_name(n))


# A word of an answer: a digit ("5"), or two letters in a row ("N/A" and "…" have none)
_A_WORD = re.compile(r"\d|[^\W\d_]{2}")


def earlier_answer(answer: str | None) -> str | None:
    """An earlier turn's answer as qa reads it (every edge, `qa eval` too): None, unknown,
    when it says nothing: a placeholder a client sends for a reply it did not keep ("",
    "...", "…", "—", "N/A": no digit, no two letters in a row). qa then answers that
    question again to follow it up, where a placeholder taken as what was said would be
    searched as the conversation."""
    return answer if answer is not None and _A_WORD.search(answer) else None


def earlier_question(text: str) -> str | None:
    """An earlier question of a chat transcript (the web chat's, an OpenAI client's),
    cleaned; None where it cannot be one: such a turn is left out, not refused, since the
    front end keeps it in the transcript it sends."""
    try:
        return clean_question(text)
    except BadQuestion:
        return None


# -- bodies ----------------------------------------------------------------------------------


def unparsable(cause: BaseException) -> str:
    """Why a request body could not be read as JSON, for a person (every HTTP edge)."""
    if isinstance(cause, UnicodeDecodeError):
        return ("the body is not valid JSON: it is not UTF-8 text (send UTF-8, or name its "
                "charset: Content-Type: application/json; charset=...)")
    if isinstance(cause, RecursionError):
        return "the body is not valid JSON: it is nested too deeply"
    return "the body is not valid JSON"


NOT_JSON = "send the body as JSON, with the header Content-Type: application/json"


def not_json_type(errors: Sequence[Mapping[str, Any]], content_type: str | None) -> bool:
    """True when validation failed because the body was not read as JSON: it is not an
    object as a whole, and was sent as text/plain or with no content type (FastAPI reads
    such a body as bytes)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return False
    return any(list(e.get("loc", ())) == ["body"] and str(e.get("type", "")).endswith("_type")
               for e in errors)


def span_json(span: Span | Sentence) -> dict[str, Any]:
    return {"text": span.text, "start": span.start, "end": span.end}


def hit_json(hit: Hit) -> dict[str, Any]:
    """One hit (`qa retrieve --json`, `POST /api/retrieve`)."""
    return {
        "rank": hit.rank,
        "doc_id": hit.chunk.doc_id,
        "chunk_id": hit.chunk.id,
        "text": hit.chunk.text,
        "start": hit.chunk.start,
        "end": hit.chunk.end,
        "score": round(hit.score, 6),
        "sentence": span_json(hit.sentence),
    }


# One pass: HTML's special characters as entities, and the characters Markdown would act on
# as numeric entities, which display as themselves and are never syntax. `html.unescape`
# turns the result back into the text exactly (newlines aside: they become spaces; and
# bidirectional controls, left out below).
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
# A document's bidirectional controls (BIDI_CONTROLS) are not shown: one left open (an RLO
# in a quote) reversed the rest of the line it was rendered in, our [n] markers and the next
# quotes included, so an answer read as other than it is.
_BIDI_CONTROLS = {ord(c): None for c in BIDI_CONTROLS}
_INERT = str.maketrans(
    {**{ord(c): f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~$:"},
     **{ord(c): entity for c, entity in _HTML_ENTITIES.items()}, **_BIDI_CONTROLS}
)
_NEWLINES = re.compile(r"\s*\n\s*")
_MARKER = re.compile(r"\[(\d+)\]")
# Markdown for people and programs alike (the OpenAI endpoint, MCP): a backslash before each
# character that could open a link, an image, an HTML tag, code, emphasis or a table, so it
# renders as written and still reads as plain text ("doesn't", "2.5", "U.S." unchanged).
_MARKDOWN = r"\\`*_\[\]<>#|~"
_MARKDOWN_SPECIAL = re.compile(f"([{_MARKDOWN}])")
_MARKDOWN_ESCAPED = re.compile(f"\\\\([{_MARKDOWN}+\\-.):@])")  # and _LIST_START's, _AUTOLINK's
# A list marker at the start ("- item", "+ item", "2) item", "2. item") would make a list.
_LIST_START = re.compile(r"^(\s*)(?:([-+])|(\d{1,9})([.)]))(?=\s|$)")
# GitHub-Flavored Markdown links bare `https://…`, `http://…`, `ftp://…`, `www.…` and e-mail
# addresses in text (its extended autolinks). A backslash before that `:`, `.` or `@` breaks
# the pattern GFM parsers look for (cmark-gfm, marked, micromark, markdown-it's linkify) and
# renders as written in CommonMark. No escape stops an autolinker that reads the text after
# parsing (remark-gfm; cmark-gfm for e-mail addresses): those still make a link, of the
# text as written.
_AUTOLINK = re.compile(r"(?:(?<=https)|(?<=http)|(?<=ftp))(?=://)|(?<=www)(?=\.)"
                       r"|(?<=[A-Za-z0-9._+-])(?=@[A-Za-z0-9_-]+\.)", re.IGNORECASE)


def text_html(text: str) -> str:
    """`text` as inert HTML or Markdown: escaped, Markdown syntax disarmed, newlines as
    spaces, so a renderer shows it as written (`<img onerror=...>`, `[x](javascript:...)`)."""
    return _NEWLINES.sub(" ", text).translate(_INERT)


def markdown_text(text: str) -> str:
    """`text` as inert Markdown that still reads as plain text: its special characters
    backslash-escaped, and the `:` of `https://`, the `.` of `www.` and the `@` of an e-mail
    address, so that a GFM front end makes no link of them; newlines as spaces
    (`markdown_plain` undoes it)."""
    text = _NEWLINES.sub(" ", text).translate(_BIDI_CONTROLS)
    escaped = _AUTOLINK.sub(r"\\", _MARKDOWN_SPECIAL.sub(r"\\\1", text))
    return _LIST_START.sub(lambda m: m.group(1) + (
        f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"), escaped)


def markdown_plain(text: str) -> str:
    """The text `markdown_text` escaped."""
    return _MARKDOWN_ESCAPED.sub(r"\1", text)


def _inert_answer_text(answer: Answer) -> str:
    """`answer.text` made inert, its `[n]` citation markers kept as they are."""
    cited = {str(c.n) for c in answer.citations}
    parts = _MARKER.split(answer.text)  # text, n, text, n, ..., text
    out = [markdown_text(parts[0])]
    for n, text in zip(parts[1::2], parts[2::2], strict=True):
        out += [f"[{n}]" if n in cited else markdown_text(f"[{n}]"), markdown_text(text)]
    return "".join(out)


def answer_markdown(answer: Answer, inert: bool = False) -> str:
    """The answer as Markdown: the lead in bold, then the quotes with their `[n]` markers.
    With `inert`, for a front end that renders it, the document's text is escaped
    (`markdown_text`) and only the bold and the markers are Markdown."""
    text = _inert_answer_text(answer) if inert else answer.text
    if answer.lead is None:
        return text
    lead = markdown_text(answer.lead.span.text) if inert else answer.lead.span.text
    return f"**{lead}** — {text}"


def answer_plain(answer: Answer) -> str:
    """The answer as plain text (no markup), for terminals and logs."""
    if answer.lead is None:
        return answer.text
    return f"{answer.lead.span.text} — {answer.text}"


def short_answer(answer: Answer) -> str:
    """The SQuAD-style short answer: the lead; else the quotes; "" for an abstention."""
    if answer.abstained:
        return ""
    if answer.lead is not None:
        return answer.lead.span.text
    return " ".join(c.quote.text for c in answer.citations)


def answer_json(answer: Answer) -> dict[str, Any]:
    """One answer (`qa ask --json`, `POST /api/ask`, eval predictions)."""
    lead = answer.lead
    return {
        "answer": answer_markdown(answer),
        "text": answer.text,
        "lead": None if lead is None else {"n": lead.n, "doc_id": lead.doc_id,
                                           **span_json(lead.span)},
        "abstained": answer.abstained,
        "confidence": round(answer.confidence, 4),
        "read_as": answer.read_as,
        "tentative": answer.tentative,
        "citations": [
            {
                "n": c.n, "doc_id": c.doc_id, "chunk_id": c.chunk_id,
                "text": c.passage.text, "start": c.passage.start, "end": c.passage.end,
                "quote": span_json(c.quote),
            }
            for c in answer.citations
        ],
        "passages": [
            {k: v for k, v in hit_json(h).items() if k != "sentence"} for h in answer.passages
        ],
    }


# -- documents (issue 11) --------------------------------------------------------------------


def document_json(entry: Entry, text: Document | None = None) -> dict[str, Any]:
    """One document of the list (`qa list --json`, `GET /api/documents`); with the
    document's `text` (`GET /api/documents/{id}`), its text and page spans too."""
    doc = entry.document
    out: dict[str, Any] = {
        "id": doc.id,
        "title": doc.title,
        "kind": doc.kind,
        "source": entry.source,
        "name": entry.name,
        "original_name": entry.original_name,  # display only; null for older uploads
        "size": entry.size,
        "pages": doc.pages,
        "chars": doc.chars,
        "added_at": entry.added_at,
        "sha256": doc.sha256,
        "text_sha256": doc.text_sha256,
        "extractor": entry.extractor,
    }
    if text is not None:
        out["text"] = text.text
        out["page_spans"] = [{"page": n, "start": p.start, "end": p.end}
                             for n, p in enumerate(text.pages, start=1)]
    return out


def problem_json(problem: Problem) -> dict[str, str]:
    return {"file": problem.file, "reason": problem.reason}


def documents_json(entries: Sequence[Entry], problems: Sequence[Problem]) -> dict[str, Any]:
    """The document list and the files that were skipped, with why."""
    return {"documents": [document_json(e) for e in entries],
            "problems": [problem_json(p) for p in problems]}


def hits_with_pages(hits: list[dict[str, Any]], documents: Mapping[str, Document]
                    ) -> list[dict[str, Any]]:
    """`hit_json` records with `page` (1-based) on each passage of a document that has pages
    (PDF), of its start, and on its sentence, of the sentence's; other documents' shapes
    are unchanged (`with_pages` for an answer)."""
    for record in hits:
        document = documents.get(record["doc_id"])
        if document is not None and document.pages:
            record["page"] = document.page_of(record["start"])
            record["sentence"]["page"] = document.page_of(record["sentence"]["start"])
    return hits


def with_pages(answer: dict[str, Any], documents: Mapping[str, Document]) -> dict[str, Any]:
    """`answer_json` output with `page` (1-based) on the lead and every citation of a
    document that has pages (PDF); other documents' shapes are unchanged."""
    def add_page(record: dict[str, Any], start: int) -> None:
        document = documents.get(record["doc_id"])
        if document is not None and document.pages:
            record["page"] = document.page_of(start)

    for citation in answer.get("citations", []):
        add_page(citation, citation["quote"]["start"])
    if answer.get("lead"):
        add_page(answer["lead"], answer["lead"]["start"])
    return answer
