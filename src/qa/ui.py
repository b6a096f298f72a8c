"""The web chat: a Gradio 6 Blocks app over the pipeline.

In: a question typed by a person and the conversation so far (Gradio's messages format, a
list of `{"role", "content"}` dicts). Out, streamed: the conversation with the new answer
(HTML with `[n]` citation markers and, under it, each cited passage with its quote marked)
and a document panel that shows the whole cited document with the quoted spans marked
(`<mark data-cite="n">`). Abstentions are styled apart and list the closest passages as
"not an answer, but related".

`respond` is the chat function, a plain generator that can be tested without a server;
`build_ui` wires it into Blocks. Everything that comes from a document or a person goes
through `text_html` (HTML-escaped, Markdown-inert), so a question such as
`<script>alert(1)</script>` shows as text. Building the UI loads no model: the pipeline
loads on the first question (or when the server warms it).

Adding and removing documents write, so when a token is set (QA_API_TOKEN, required to
listen beyond loopback) the documents panel has an *Access token* field and the handlers
(`add_files`, `remove_document`) refuse without it, checked as the HTTP API checks it: Gradio
runs any event for any client that calls its queue, whatever the page shows. Typing the
token also sets the `qa_token` cookie (`TOKEN_COOKIE_JS`), which Gradio's upload route
wants before it stores a file (`qa.api`); an upload before it is refused there (401), and
the file component shows Gradio's error with the server's one-line reason. Wrong tokens
count against the client's address as they do over HTTP (`qa.security.authorize`, the
server's one `TokenThrottle`): too many, and its writes are refused for a while.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.config import MAX_HISTORY
from qa.errors import QAError, TooManyAttempts
from qa.schema import earlier_question, text_html, without_controls
from qa.security import TOKEN_COOKIE, TokenThrottle, authorize
from qa.types import Answer, Citation, Turn

if TYPE_CHECKING:
    import gradio as gr

    from qa.loaders.library import Entry, Problem
    from qa.pipeline import Pipeline
    from qa.store import Index

Message = dict[str, Any]

# The example questions the first page offers come with the documents, not the code: the
# seeds folder's `.examples.txt` (a dot file, so never indexed), one question a line, blank
# lines and `#` comments skipped, a `# label: …` line naming them. No file, no examples.
EXAMPLES_FILE = ".examples.txt"
MAX_EXAMPLES = 10
MAX_EXAMPLES_BYTES = 64 * 1024
STREAM_DELAY = 0.015  # seconds between streamed pieces: fast, but visibly streaming
MAX_STREAM_STEPS = 40  # longer answers stream several words per step
STREAM_MESSAGES = 2000  # messages sent back over one answer's steps (a long chat: fewer steps)
UI_CONCURRENCY = 16  # chats answered at once; each is ~20 ms of work plus the streaming
QUEUE_SIZE = 256  # chat events waiting at most (Gradio's queue), beyond those answered
MAX_RELATED = 3
CLEAR_SETTLE_MS = 250  # after Clear, when a streamed step already on its way has arrived

DOC_PLACEHOLDER = (
    '<div class="qa-doc qa-doc-empty"><p>Ask a question: the document behind the answer '
    "appears here, with the cited sentences highlighted.</p></div>"
)

_TOKEN = re.compile(r"\[(?P<cite>\d+)\]|(?P<space>\s+)|(?P<word>[^\s\[]+|.)")


def message_text(content: Any, unescape: bool = True) -> str:
    """The text of a chat message, whatever shape Gradio gave it (str or parts); with
    `unescape=False`, its HTML as it is."""
    if isinstance(content, str):
        return html.unescape(content) if unescape else content
    if isinstance(content, dict):
        return message_text(content.get("text", ""), unescape)
    if isinstance(content, Sequence):
        return " ".join(message_text(part, unescape) for part in content
                        if isinstance(part, (str, dict)))
    return ""


def examples(seeds_dir: Path) -> tuple[list[str], str]:
    """The example questions of the seeds folder's EXAMPLES_FILE (its first
    MAX_EXAMPLES_BYTES) and their label; none (and the plain label) when there is no such
    file or it cannot be read as UTF-8."""
    label, questions = "Examples", []
    try:
        with (seeds_dir / EXAMPLES_FILE).open("rb") as file:
            raw = file.read(MAX_EXAMPLES_BYTES + 1)
    except OSError:
        return [], label
    if len(raw) > MAX_EXAMPLES_BYTES:  # cut after the last whole line: a cut inside a
        raw = raw[:MAX_EXAMPLES_BYTES]  # character (or a question) lost every example
        raw = raw[:raw.rfind(b"\n") + 1]
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark (Notepad) is not the first line's
    except UnicodeDecodeError:
        return [], label
    for line in text.splitlines():
        line = line.strip()
        if line.lower().startswith("# label:"):
            label = line[len("# label:"):].strip() or label
        elif line and not line.startswith("#") and earlier_question(line) is not None:
            questions.append(line)
    return questions[:MAX_EXAMPLES], label


def earlier_turns(history: Sequence[Message]) -> list[Turn]:
    """The usable turns of a conversation (the last MAX_HISTORY, oldest first), as the
    pipeline's `history`: each question with the text of the answer shown for it. A turn
    that was rejected (`earlier_question`: too long, blank) is left out."""
    turns: list[Turn] = []
    for message in history:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "user":
            text = earlier_question(message_text(message.get("content", "")))
            if text is not None:
                turns.append(Turn(text))
        elif message.get("role") == "assistant" and turns and turns[-1].answer is None:
            shown = message_text(message.get("content", ""), unescape=False)
            if _ERROR_REPLY.search(shown):  # refused ("… is not a question"): no turn at all,
                turns.pop()  # or the refusal's words would be searched as the conversation
                continue
            shown = _TAGS.sub(" ", _LABELS.sub(" ", shown))
            turns[-1] = Turn(turns[-1].question, " ".join(html.unescape(shown).split()))
    return turns[-MAX_HISTORY:]


_TAGS = re.compile(r"<[^>]*>")
# What the chat shows around an answer, not part of what qa said: how a follow-up was read,
# and the badge of one withheld (`answer_html`). Left in, "The document doesn't say" was no
# longer how the earlier answer opened (`answering.found_nothing`).
_LABELS = re.compile(r'<span class="qa-(?:read-as|badge)">[^<]*</span>')
_ERROR_REPLY = re.compile(r'^\s*<div class="qa-answer qa-error">')  # error_html's




# -- rendering -------------------------------------------------------------------------------


def _cite_html(n: int, turn: int) -> str:
    # Classes, not data- attributes: Gradio's chat sanitizer keeps only the former.
    return (f'<sup class="qa-cite qa-cite-{n} qa-turn-{turn}" '
            f'title="Show source {n} in the document">&#91;{n}&#93;</sup>')


def answer_pieces(answer: Answer, turn: int) -> list[str]:
    """The answer text as HTML pieces (words, spaces, `[n]` markers) to stream; the lead
    phrase the answer opens with (`answer.lead`) is one bold piece."""
    cited = {c.n for c in answer.citations}
    pieces: list[str] = []
    text = answer.text
    if answer.lead is not None:
        pieces += [f"<strong>{text_html(answer.lead.span.text)}</strong>", " ", "—", " "]
    for m in _TOKEN.finditer(text):
        if m["cite"] is not None and int(m["cite"]) in cited:
            pieces.append(_cite_html(int(m["cite"]), turn))
        elif m["space"] is not None:
            pieces.append(" ")
        else:
            pieces.append(text_html(m.group()))
    return pieces


def _title(index: Index, doc_id: str) -> str:
    document = index.documents.get(doc_id)
    return document.title if document is not None else doc_id


def _title_html(index: Index, doc_id: str) -> str:
    title = text_html(_title(index, doc_id))
    return f'<span class="qa-title" title="{title}">{title}</span>'


def _marked(text: str, start: int, end: int) -> str:
    """`text` escaped, with `text[start:end]` wrapped in <mark> (if it lies inside)."""
    if not 0 <= start < end <= len(text):
        return text_html(text)
    return (f"{text_html(text[:start])}<mark>{text_html(text[start:end])}</mark>"
            f"{text_html(text[end:])}")


def page_label(index: Index, doc_id: str, offset: int) -> str:
    """"page N · " for a document with pages (PDF), else ""."""
    document = index.documents.get(doc_id)
    page = document.page_of(offset) if document is not None else None
    return f"page {page} · " if page is not None else ""


def _source_html(index: Index, citation: Citation, turn: int) -> str:
    passage, quote = citation.passage, citation.quote
    body = _marked(passage.text, quote.start - passage.start, quote.end - passage.start)
    where = page_label(index, citation.doc_id, quote.start)
    return (f'<li class="qa-source"><div class="qa-source-head">{_cite_html(citation.n, turn)}'
            f"{_title_html(index, citation.doc_id)}"
            f'<span class="qa-where">{where}chars {quote.start}–{quote.end}</span></div>'
            f'<div class="qa-passage">{body}</div></li>')


def sources_html(index: Index, answer: Answer, turn: int) -> str:
    """What goes under an answer: its cited passages, or the closest ones if it abstained."""
    if answer.citations:
        items = "".join(_source_html(index, c, turn) for c in answer.citations)
        if answer.abstained:  # the closest passage, cited so the reader can check
            return (f'<div class="qa-sources qa-related"><p class="qa-label">Not an answer, '
                    f'but related</p><ol>{items}</ol></div>')
        return f'<div class="qa-sources"><p class="qa-label">Sources</p><ol>{items}</ol></div>'
    if not answer.passages:
        return ""
    items = "".join(
        f'<li class="qa-source"><div class="qa-source-head">{_title_html(index, h.chunk.doc_id)}'
        f'<span class="qa-where">chars {h.sentence.start}–{h.sentence.end}</span></div>'
        f'<div class="qa-passage">{text_html(h.sentence.text)}</div></li>'
        for h in answer.passages[:MAX_RELATED]
    )
    return (f'<div class="qa-sources qa-related"><p class="qa-label">Not an answer, but related'
            f'</p><ul>{items}</ul></div>')


def answer_html(index: Index, answer: Answer, turn: int, pieces: Sequence[str] | None = None,
                done: bool = True) -> str:
    """One assistant message: the (partial) answer text, then its sources once complete."""
    body = "".join(answer_pieces(answer, turn) if pieces is None else pieces)
    if answer.read_as:  # a follow-up answered in its standalone form: say which
        body = (f'<span class="qa-read-as">Read as “{text_html(answer.read_as)}”</span> '
                + body)
    if answer.abstained:
        head = '<span class="qa-badge">No answer in the documents</span> '
        return (f'<div class="qa-answer qa-abstained"><p class="qa-text">{head}{body}</p>'
                f'{sources_html(index, answer, turn) if done else ""}</div>')
    return (f'<div class="qa-answer"><p class="qa-text">{body}</p>'
            f'{sources_html(index, answer, turn) if done else ""}</div>')


def error_html(message: str) -> str:
    return (f'<div class="qa-answer qa-error"><p class="qa-text">'
            f'<span class="qa-badge">Cannot answer</span> {text_html(message)}</p></div>')


def highlight(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """`text` HTML-escaped (newlines kept; control characters and bidirectional overrides,
    which would reverse what follows them, left out), each `(start, end, attributes)` span
    wrapped in `<mark attributes>`.

    Spans are applied in document order; the part of a span that overlaps an earlier one is
    left out, so the marks never nest.
    """
    def escaped(part: str) -> str:  # control characters and bidi overrides not shown
        return html.escape(without_controls(part))

    out, cursor = [], 0
    for start, end, attributes in sorted(spans):
        start = max(start, cursor)
        if not 0 <= start < end <= len(text):
            continue
        out.append(escaped(text[cursor:start]))
        out.append(f"<mark {attributes}>{escaped(text[start:end])}</mark>")
        cursor = end
    out.append(escaped(text[cursor:]))
    return "".join(out)


def document_html(index: Index, answer: Answer, turn: int) -> str:
    """The document panel: each cited (or, for an abstention, nearest) document in full."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    if answer.citations:
        for c in answer.citations:
            page = page_label(index, c.doc_id, c.quote.start).removesuffix(" · ")
            label = f' data-page="{page}" title="{page}"' if page else ""
            spans.setdefault(c.doc_id, []).append(
                (c.quote.start, c.quote.end, f'data-cite="{c.n}" class="qa-quote"{label}'))
        note = ("No answer: the highlighted sentences are the closest the documents come; "
                "the numbers match the answer's." if answer.abstained else
                "The sentences the latest answer quotes are highlighted; the numbers match its "
                "citations.")
    elif answer.passages:
        for h in answer.passages[:MAX_RELATED]:
            spans.setdefault(h.chunk.doc_id, []).append(
                (h.sentence.start, h.sentence.end, 'class="qa-near"'))
        note = "No answer: the shaded sentences are the closest the documents come."
    else:
        return DOC_PLACEHOLDER
    parts = []
    for doc_id, marks in spans.items():
        document = index.documents.get(doc_id)
        if document is None:
            continue
        pages = [(c.n, document.page_of(c.quote.start)) for c in answer.citations
                 if c.doc_id == doc_id and document.pages]
        where = ", ".join(f"[{n}] page {page}" for n, page in pages if page is not None)
        where_html = f'<p class="qa-doc-pages">Cited on {where}</p>' if where else ""
        parts.append(
            f'<article class="qa-doc-body" data-doc="{html.escape(doc_id, quote=True)}">'
            f"<h3>{text_html(document.title)}</h3>{where_html}"
            f'<div class="qa-doc-text">{highlight(document.text, marks)}</div></article>'
        )
    return (f'<div class="qa-doc" data-turn="{turn}"><p class="qa-doc-note">{note}</p>'
            f'{"".join(parts)}</div>')


# -- the chat function -----------------------------------------------------------------------


def _steps(pieces: Sequence[str], most: int = MAX_STREAM_STEPS) -> Iterator[int]:
    """How many pieces to show at each streamed step: word by word, at most `most` steps."""
    ends = [i + 1 for i, piece in enumerate(pieces) if piece != " "]
    stride = max(1, -(-len(ends) // max(1, most)))
    steps = ends[stride - 1::stride]
    if not steps or steps[-1] != len(pieces):
        steps.append(len(pieces))
    yield from steps


def respond(
    message: str,
    history: Sequence[Message],
    pipeline: Pipeline | None = None,
    delay: float = STREAM_DELAY,
    doc_ids: Sequence[str] | None = None,
) -> Iterator[tuple[list[Message], str]]:
    """Answer `message` given the conversation `history`, streaming.

    Yields `(messages, document_panel_html)`: `messages` is `history` plus the question and
    the answer so far, so the last yield is the finished turn. Earlier user turns are the
    pipeline's follow-up context. A blank message yields the history unchanged. `doc_ids`
    (if not empty) limits the answer to those documents.
    """
    if pipeline is None:
        from qa.pipeline import default_pipeline

        pipeline = default_pipeline()
    messages = list(history)
    if not isinstance(message, str) or not message.strip():
        yield messages, DOC_PLACEHOLDER
        return
    turn = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "user") + 1
    messages.append({"role": "user", "content": text_html(without_controls(message).strip())})
    try:
        gone = sorted(set(doc_ids or ()) - set(pipeline.index.documents))
        if gone:  # removed (in another tab, over HTTP) since this page listed them
            raise QAError(f"No longer in the library (removed since this page listed it): "
                          f"{', '.join(gone)}. Pick again under “Limit questions to”, or "
                          "leave it empty to ask all documents.")
        # the index the answer came from: an upload or removal meanwhile swaps `index`
        answer, index = pipeline.ask_with_index(message, earlier_turns(history),
                                                doc_ids=doc_ids or None)
    except QAError as exc:
        yield [*messages, {"role": "assistant", "content": error_html(str(exc))}], DOC_PLACEHOLDER
        return
    panel = document_html(index, answer, turn)
    pieces = answer_pieces(answer, turn)
    # Each step sends the whole conversation again (Gradio's /call/ API sends it whole): a
    # long one streams in fewer steps, so 8,000 messages (an 840 KB request) are not sent
    # 40 times over (18 MB and 10 s of work); at most STREAM_MESSAGES messages in all.
    most = min(MAX_STREAM_STEPS, STREAM_MESSAGES // max(1, len(messages)))
    for i, shown in enumerate(_steps(pieces, most) if most > 1 else ()):
        if i and delay:
            time.sleep(delay)
        partial = answer_html(index, answer, turn, pieces[:shown], done=False)
        yield [*messages, {"role": "assistant", "content": partial}], panel
    done = answer_html(index, answer, turn, pieces)
    yield [*messages, {"role": "assistant", "content": done}], panel


# -- the Blocks app --------------------------------------------------------------------------

CSS = """
.qa-answer .qa-text { margin: 0 0 .4em; line-height: 1.5; }
.qa-read-as { display: block; font-size: .85em; opacity: .75; margin-bottom: .2em; }
.qa-cite { color: var(--color-accent); cursor: pointer; font-weight: 600; padding: 0 .1em; }
.qa-sources { border-top: 1px solid var(--border-color-primary); margin-top: .5em;
  padding-top: .4em; font-size: .88em; }
.qa-sources ol, .qa-sources ul { margin: .2em 0 0; padding-left: 1.1em; }
.qa-source { margin-bottom: .5em; list-style: none; }
.qa-label { font-weight: 600; margin: 0; text-transform: uppercase; font-size: .8em;
  letter-spacing: .04em; opacity: .75; }
.qa-source-head { display: flex; align-items: baseline; gap: .4em; }
.qa-title { font-style: italic; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  min-width: 0; }
.qa-where { opacity: .6; font-size: .85em; white-space: nowrap; }
.qa-passage { margin: .2em 0 0; padding-left: .6em; border-left: 3px solid
  var(--border-color-primary); }
.qa-answer mark, .qa-doc mark.qa-quote { background: #fde68a; color: inherit;
  padding: 0 .1em; border-radius: 2px; }
.qa-abstained .qa-text { font-style: italic; opacity: .85; }
.qa-abstained .qa-sources { border-top-style: dashed; }
.qa-badge { display: inline-block; font-style: normal; font-size: .75em; font-weight: 600;
  padding: .05em .5em; border-radius: 999px; background: #e5e7eb; color: #374151;
  margin-right: .3em; }
.qa-error .qa-badge { background: #fee2e2; color: #991b1b; }
.qa-doc { max-height: 72vh; overflow-y: auto; padding: .4em .8em;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); }
.qa-doc-note { font-size: .85em; opacity: .7; margin: .2em 0 .6em; }
.qa-doc-text { white-space: pre-wrap; line-height: 1.55; font-size: .95em; }
.qa-doc mark.qa-quote::after { content: attr(data-cite); font-size: .7em; font-weight: 700;
  vertical-align: super; margin-left: .15em; color: var(--color-accent); }
.qa-doc mark.qa-near { background: #e5e7eb; color: inherit; }
.qa-doc mark.qa-flash, .qa-source.qa-flash { outline: 2px solid var(--color-accent); }
.qa-doc-pages { font-size: .85em; font-weight: 600; margin: 0 0 .4em; }
.qa-docs table { width: 100%; font-size: .85em; border-collapse: collapse; }
.qa-docs th, .qa-docs td { text-align: left; padding: .15em .4em;
  border-bottom: 1px solid var(--border-color-primary); }
.qa-docs td.qa-doc-title { max-width: 16em; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.qa-upload-status .qa-ok { color: #166534; }
.qa-upload-status .qa-bad { color: #991b1b; }
"""

# Clicking a citation marker scrolls the document panel to the sentence it quotes (only for
# the latest answer, whose document is the one shown); a new answer scrolls to its first quote.
HEAD = r"""
<script>
window.qaScrollTo = function (mark) {
  const panel = document.querySelector("#qa-document .qa-doc");
  if (!panel || !mark) return;
  panel.scrollTop += mark.getBoundingClientRect().top - panel.getBoundingClientRect().top
    - panel.clientHeight / 3;
  mark.classList.add("qa-flash");
  setTimeout(() => mark.classList.remove("qa-flash"), 1500);
};
window.qaShowCite = function (cite) {
  const doc = document.querySelector("#qa-document .qa-doc");
  if (!cite) return;
  const n = cite.className.match(/qa-cite-(\d+)/), turn = cite.className.match(/qa-turn-(\d+)/);
  if (!n || !turn) return;
  if (doc && doc.dataset.turn === turn[1]) {
    window.qaScrollTo(doc.querySelector(`mark[data-cite="${n[1]}"]`));
    return;
  }
  // An earlier answer's [n]: the panel shows the latest answer's documents, so point at the
  // passage listed under that answer instead.
  const source = [...document.querySelectorAll(`.qa-source sup.qa-cite-${n[1]}.qa-turn-${turn[1]}`)]
    .map((sup) => sup.closest(".qa-source")).find((li) => li && li !== cite.closest(".qa-source"))
    || cite.closest(".qa-source");
  if (!source) return;
  source.scrollIntoView({block: "nearest"});
  source.classList.add("qa-flash");
  setTimeout(() => source.classList.remove("qa-flash"), 1500);
};
const qaCite = (event) => event.target.closest ? event.target.closest("sup.qa-cite") : null;
document.addEventListener("click", (event) => window.qaShowCite(qaCite(event)));
// The chat's sanitizer keeps only classes, so the markers are made reachable by keyboard
// here: Tab to a [n], Enter or Space shows its sentence.
document.addEventListener("keydown", (event) => {
  const cite = qaCite(event);
  if (!cite || (event.key !== "Enter" && event.key !== " ")) return;
  event.preventDefault();
  window.qaShowCite(cite);
});
new MutationObserver(() => {
  for (const cite of document.querySelectorAll("sup.qa-cite:not([tabindex])")) {
    cite.tabIndex = 0;
    cite.setAttribute("role", "button");
  }
}).observe(document.documentElement, {subtree: true, childList: true});
</script>
"""
SCROLL_JS = "() => { window.qaScrollTo?.(document.querySelector('#qa-document mark')); }"


# -- documents: upload, list, remove, select ------------------------------------------------

UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".docx"]
# Gradio keeps every file sent to its upload route until the server stops; every 10
# minutes, those over an hour old go. They are never indexed unless the upload handler is
# given the token.
UPLOAD_SWEEP = (600, 3600)

# A browser's upload to Gradio's route carries no header of ours, so when a token is set the
# server wants it in a cookie (`qa.security.TOKEN_COOKIE`, checked by `qa.api.Hardening`):
# the Access token field writes it as it is typed. SameSite=Strict: no other site's page can
# make the browser send it; Secure on https; for this browser session only; gone when the
# field is emptied.
TOKEN_COOKIE_JS = f"""(token) => {{
  const value = (typeof token === "string" ? token : "").trim();
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "{TOKEN_COOKIE}=" + encodeURIComponent(value) + "; Path=/; SameSite=Strict"
    + secure + (value ? "" : "; Max-Age=0");
}}"""


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MB"


def _tooltip(entry: Entry) -> str:
    title, name = entry.document.title, entry.original_name
    return f"{title} · {name}" if name and name != title else title


def documents_html(entries: Sequence[Entry], problems: Sequence[Problem] = ()) -> str:
    """The document list: title (its tooltip: the whole title and the file's original
    name), type, size, pages, when added (all escaped); an empty library says so."""
    rows = "".join(
        f'<tr data-doc="{html.escape(e.document.id, quote=True)}">'
        f'<td class="qa-doc-title" title="{text_html(_tooltip(e))}">'
        f"{text_html(e.document.title)}</td><td>{text_html(e.document.kind.upper())}</td>"
        f"<td>{_size(e.size)}</td><td>{e.document.pages or '–'}</td>"
        f"<td>{text_html(e.added_at[:16].replace('T', ' '))}</td>"
        f"<td>{'shipped' if e.source == 'seed' else 'uploaded'}</td></tr>"
        for e in entries
    ) or ('<tr class="qa-docs-empty"><td colspan="6">No documents yet: upload one to ask '
          "about it.</td></tr>")
    skipped = "".join(f"<li>{text_html(Path(p.file).name)}: {text_html(p.reason)}</li>"
                      for p in problems)
    skipped_html = (f'<p class="qa-label">Skipped files</p><ul class="qa-skipped">{skipped}'
                    "</ul>") if skipped else ""
    return (f'<div class="qa-docs"><table><thead><tr><th>Title</th><th>Type</th><th>Size</th>'
            f"<th>Pages</th><th>Added (UTC)</th><th></th></tr></thead><tbody>{rows}</tbody>"
            f"</table>{skipped_html}</div>")


def status_html(text: str, ok: bool) -> str:
    """One line of the documents panel's status: done (`ok`) or refused."""
    return (f'<ul class="qa-upload-status"><li class="{"qa-ok" if ok else "qa-bad"}">'
            f"{text_html(text)}</li></ul>")


def token_refusal(pipeline: Pipeline, token: object, action: str, nothing: str,
                  throttle: TokenThrottle | None = None, client: str | None = None
                  ) -> str | None:
    """The status refusing a write (`action`: "Adding documents") without the right token,
    checked as the HTTP API checks it (`qa.security.authorize`, wrong tokens counted
    against `client`, the address, in `throttle`; None: not counted); None when it may go
    ahead, always so when no token is set."""
    try:
        if authorize(pipeline.settings, token,
                     throttle if throttle is not None else TokenThrottle(), client):
            return None
    except TooManyAttempts as exc:
        return status_html(f"Too many wrong access tokens from this address: try again in "
                           f"{exc.retry_after} s. {nothing}", ok=False)
    if isinstance(token, str) and token.strip():
        return status_html(f"The access token is not right. {nothing}", ok=False)
    return status_html(f"{action} needs the access token: type it in “Access token”. "
                       f"{nothing}", ok=False)


# A browser writes `"`, CR and LF in a file's name as %22, %0D and %0A when it sends the file
# (WHATWG's multipart/form-data encoding: it escapes nothing else, `%` included), and
# Gradio's upload route saves the file under the name as sent.
_FORM_ESCAPED = re.compile(r"%(22|0D|0A)")


def uploaded_name(path: str) -> str:
    """The name a file had on the person's machine, from the path Gradio saved it at."""
    return _FORM_ESCAPED.sub(lambda m: chr(int(m[1], 16)), Path(path).name)


def add_files(pipeline: Pipeline, files: Sequence[str], progress: Any = None,
              token: str | None = None, throttle: TokenThrottle | None = None,
              client: str | None = None) -> str:
    """Add uploaded files (paths Gradio saved, original names kept); an HTML status line per
    file. `progress(fraction, desc=...)` is Gradio's progress bar. When the server has a
    token, nothing is read or added unless `token` is it (`token_refusal`)."""
    def step(fraction: float, desc: str) -> None:
        if progress is not None:
            progress(fraction, desc=desc)

    lines: list[str] = []

    def refused(name: str, exc: QAError) -> None:
        lines.append(f'<li class="qa-bad">{text_html(str(exc))}</li>')

    paths = [str(f) for f in files or []]
    if not paths:
        return ""
    refusal = token_refusal(pipeline, token, "Adding documents", "Nothing was added.",
                            throttle, client)
    if refusal is not None:
        return refusal
    step(0.1, f"Reading {len(paths)} file(s)…")
    names = [uploaded_name(f) for f in paths]
    step(0.3, "Indexing…")
    try:
        added = pipeline.add_documents(paths, names, on_error=refused)
    except QAError as exc:
        lines.append(f'<li class="qa-bad">{text_html(str(exc))}</li>')
        added = []
    step(1.0, "Done")
    lines[:0] = [  # first what was added, in the order the files came
        f'<li class="qa-ok">Added “{text_html(doc.title)}” ({text_html(doc.kind.upper())}'
        + (f", {len(doc.pages)} pages" if doc.pages else "") + ")</li>"
        for doc in added]
    return f'<ul class="qa-upload-status">{"".join(lines)}</ul>'


def remove_document(pipeline: Pipeline, doc_id: str, token: str | None = None,
                    throttle: TokenThrottle | None = None, client: str | None = None) -> str:
    """Remove an uploaded document; an HTML status line. When the server has a token,
    nothing is removed unless `token` is it (`token_refusal`)."""
    refusal = token_refusal(pipeline, token, "Removing documents", "Nothing was removed.",
                            throttle, client)
    if refusal is not None:
        return refusal
    try:
        pipeline.remove_documents([doc_id])
    except QAError as exc:
        return status_html(str(exc), ok=False)
    return status_html(f"Removed {doc_id}", ok=True)


def _address(request: gr.Request | None) -> str | None:
    """The client's address, when Gradio passed the request and knows it."""
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return host if isinstance(host, str) else None


def _session(request: gr.Request | None) -> str | None:
    """The browser tab's Gradio session, when Gradio passed the request."""
    session = getattr(request, "session_hash", None)
    return session if isinstance(session, str) else None


class Clears:
    """How many times each session (browser tab) cleared its conversation, for the newest
    MAX_SESSIONS sessions: an answer still streaming when its conversation is cleared stops,
    instead of putting the conversation back with its next step."""

    MAX_SESSIONS = 10_000

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, session: str | None) -> None:
        if session is None:
            return
        with self._lock:
            self._counts[session] = self._counts.pop(session, 0) + 1
            while len(self._counts) > self.MAX_SESSIONS:
                del self._counts[next(iter(self._counts))]

    def count(self, session: str | None) -> int:
        with self._lock:
            return self._counts.get(session, 0) if session is not None else 0


def _resolved(fn: Any, gr: Any) -> None:
    """`fn` with its annotations evaluated: Gradio passes the request to a parameter typed
    `gr.Request`, found by `typing.get_type_hints`, which cannot see this module's lazily
    imported `gr` (and then finds no hints at all)."""
    import typing

    fn.__annotations__ = typing.get_type_hints(fn, localns={"gr": gr})


def build_ui(pipeline: Pipeline | None = None,
             throttle: TokenThrottle | None = None) -> gr.Blocks:
    """The chat app (not launched). Cheap: nothing is loaded until the first question.
    `throttle` counts wrong tokens per client; the server shares its own with the chat."""
    import gradio as gr

    throttle = throttle if throttle is not None else TokenThrottle()

    def shared() -> Pipeline:
        from qa.pipeline import default_pipeline

        return pipeline if pipeline is not None else default_pipeline()

    clears = Clears()

    def submit(message: str, history: list[Message], selected: list[str] | None = None,
               request: gr.Request | None = None) -> Iterator[tuple[Any, Any, Any]]:
        if not isinstance(message, str) or not message.strip():
            yield gr.skip(), gr.skip(), gr.skip()
            return
        if isinstance(selected, str):  # one id, from a caller of the /chat API
            selected = [selected]
        if selected is not None and not (isinstance(selected, list)
                                         and all(isinstance(s, str) for s in selected)):
            raise gr.Error("The documents to ask must be a list of document ids.")
        session = _session(request)
        asked_after = clears.count(session)
        # The box is emptied once, as the question is taken (and the question shown at
        # once): emptying it on every streamed step would wipe what the person types next
        # while the answer is worked out and arrives.
        yield "", [*history, {"role": "user", "content": text_html(message.strip())}], gr.skip()
        for messages, panel in respond(message, history, pipeline, doc_ids=selected):
            if clears.count(session) != asked_after:
                return  # cleared meanwhile: the next step would put the conversation back
            yield gr.skip(), messages, panel

    def listing(selected: list[str] | None = None,
                doomed: str | None = None) -> tuple[Any, Any, Any]:
        """The document list and the choices of the selector and the remove control (still
        on `doomed`, if that document is still there to remove)."""
        from qa.loaders.library import qa_stored

        try:
            entries, problems = shared().library()
        except QAError as exc:
            return error_html(str(exc)), gr.update(), gr.update()
        choices = [(f"{e.document.title} ({e.document.kind})", e.document.id)
                   for e in entries]
        removable = [c for c, e in zip(choices, entries, strict=True) if e.source == "upload"]
        stored = shared().settings.documents_dir  # uploads the build skipped: removable too
        removable += [(f"{Path(p.file).name} (not indexed)", Path(p.file).name)
                      for p in problems if Path(p.file).parent == stored
                      and qa_stored(Path(p.file))]  # not another folder (refused, 409)
        keep = [d for d in selected or [] if d in {e.document.id for e in entries}]
        pick = doomed if doomed in {doc_id for _, doc_id in removable} else None
        return (documents_html(entries, problems), gr.update(choices=choices, value=keep),
                gr.update(choices=removable, value=pick))

    # Writes check the token themselves (add_files, remove_document): Gradio's queue runs
    # any event for any client, "private" ones included, whatever the page shows. Progress
    # and the request come before the token: Gradio inserts them at their positions among
    # the inputs.
    def upload(files: list[str] | None, selected: list[str] | None,
               progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio injects it
               request: gr.Request | None = None,
               token: str | None = None) -> tuple[Any, ...]:
        status = add_files(shared(), files or [], progress, token, throttle, _address(request))
        return (status, None, *listing(selected))

    def remove(doc_id: str | None, selected: list[str] | None,
               request: gr.Request | None = None,
               token: str | None = None) -> tuple[Any, ...]:
        if not doc_id:  # said, not silently ignored (it also wiped the last status)
            return (status_html("Pick the uploaded document to remove first, under “Remove "
                                "an uploaded document”.", ok=False), *listing(selected))
        # A refused removal (no or wrong token) keeps the pick: type the token, click again.
        return (remove_document(shared(), doc_id, token, throttle, _address(request)),
                *listing(selected, doc_id))

    _resolved(upload, gr)
    _resolved(remove, gr)

    def clear(request: gr.Request | None = None) -> tuple[str, list[Message], str]:
        clears.add(_session(request))
        return "", [], DOC_PLACEHOLDER

    def cleared(request: gr.Request | None = None) -> str:  # the chat's own trash button
        clears.add(_session(request))
        return DOC_PLACEHOLDER

    for fn in (submit, clear, cleared):
        _resolved(fn, gr)

    guarded = bool(shared().settings.api_token)  # a token is set: writes need it
    with gr.Blocks(title="qa: cited answers", analytics_enabled=False,
                   delete_cache=UPLOAD_SWEEP) as demo:
        gr.Markdown(
            "## Ask the documents\n"
            "Every answer quotes the documents and cites them: click a `[n]` to see the "
            "sentence in context. Follow-up questions use the conversation."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation", elem_id="qa-chat", height=560,
                    latex_delimiters=[], feedback_options=None, buttons=[],
                    placeholder="Ask a question about the documents, or pick an example below.",
                )
                with gr.Row():
                    box = gr.Textbox(
                        show_label=False, placeholder="Ask a question…", elem_id="qa-question",
                        scale=8, autofocus=True, container=False,  # no max_length: the
                        # browser would cut a long paste silently; the server says it is long
                    )
                    ask = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                    reset = gr.Button("Clear", scale=1, elem_id="qa-clear")
                # Its choices are filled in per page (`listing`): a caller of the /chat API
                # names documents the page was not built with, so any value is taken, and
                # one not in the library is answered as such (`respond`).
                selector = gr.Dropdown(
                    label="Limit questions to (none selected: all documents)", choices=[],
                    multiselect=True, elem_id="qa-select", value=[], allow_custom_value=True)
                offered, label = examples(shared().settings.seeds_dir)
                if offered:
                    gr.Examples(examples=[[q] for q in offered], inputs=[box], label=label)
            with gr.Column(scale=2):
                gr.Markdown("### Document")
                panel = gr.HTML(DOC_PLACEHOLDER, elem_id="qa-document", js_on_load=None)
                with gr.Accordion("Documents", open=True, elem_id="qa-documents"):
                    secret = [gr.Textbox(
                        label="Access token", type="password", elem_id="qa-token",
                        info="Adding or removing documents needs the server's "
                             "QA_API_TOKEN: type it before you add files.",
                        max_length=1000,
                    )] if guarded else []
                    files = gr.File(
                        label="Add documents: drop files here or click to pick "
                              "(.txt .md .html .pdf .docx)",
                        file_count="multiple", file_types=UPLOAD_TYPES, type="filepath",
                        elem_id="qa-upload", height=110)
                    status = gr.HTML("", elem_id="qa-upload-status")
                    table = gr.HTML("", elem_id="qa-doc-list")
                    with gr.Row():
                        doomed = gr.Dropdown(label="Remove an uploaded document", choices=[],
                                             elem_id="qa-remove-choice", scale=3)
                        drop = gr.Button("Remove", variant="stop", elem_id="qa-remove",
                                         scale=1)
        for field in secret:  # Gradio's upload route wants the token too (as a cookie)
            field.change(None, [field], None, js=TOKEN_COOKIE_JS, queue=False,
                         api_visibility="private")
        files.upload(upload, [files, selector, *secret],
                     [status, files, table, selector, doomed],
                     show_progress="full", api_visibility="private",
                     concurrency_limit=1)
        drop.click(remove, [doomed, selector, *secret], [status, table, selector, doomed],
                   api_visibility="private", concurrency_limit=1)
        demo.load(listing, [selector], [table, selector, doomed], api_visibility="private")
        event = gr.on(
            [box.submit, ask.click], submit, [box, chatbot, selector], [box, chatbot, panel],
            api_name="chat", show_progress="minimal", concurrency_limit=UI_CONCURRENCY,
        )
        event.then(None, js=SCROLL_JS, api_visibility="private")
        # The library may have changed since the page listed it (another tab, the HTTP API).
        event.then(listing, [selector], [table, selector, doomed], api_visibility="private")
        # Clearing stops an answer on its way (`Clears`); a step it sent just before can
        # still arrive after the clear, so the conversation is emptied again a moment later.
        def settle(event: Any) -> None:
            event.then(None, js=f"() => new Promise(r => setTimeout(r, {CLEAR_SETTLE_MS}))",
                       queue=False, api_visibility="private").then(
                lambda: ([], DOC_PLACEHOLDER), None, [chatbot, panel], queue=False,
                api_visibility="private")

        settle(reset.click(clear, None, [box, chatbot, panel], queue=False,
                           api_visibility="private"))
        settle(chatbot.clear(cleared, None, panel, queue=False, api_visibility="private"))
    # Gradio's queue is unbounded by default, and its REST routes (/run/<api>, /api/<api>)
    # run a queued event directly, past the queue and its concurrency limits: a client
    # looping on /queue/join grew the server's memory without end. Full, the queue answers
    # Gradio's own "queue_full" (the page says the app is busy).
    demo.queue(max_size=QUEUE_SIZE, api_open=False)
    return demo
