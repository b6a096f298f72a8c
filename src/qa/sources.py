"""Citations for people and for programs, with the document's title and page attached.

In: an `Answer` (or `Hit`s) and the index's documents. Out: a "Sources" list in Markdown and
JSON-ready citation records. The OpenAI-compatible endpoint and the MCP server
both render answers through here, so a chat front end and an agent see the same sources.
`qa.schema` has the base shapes; this adds what only the document knows (title, page).
The Markdown is for front ends that render it: every piece of document text in it (titles,
ids, quotes) is inert (`qa.schema.markdown_text`), so a title such as `<img onerror=...>` or a
quote holding `[x](javascript:...)` shows as written; the JSON records carry the text as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qa.schema import answer_json, answer_markdown, hit_json, markdown_plain, markdown_text
from qa.types import Answer, Document, Hit

SOURCES_HEADING = "**Sources**"  # opens the list appended to an answer (and stripped again)
CLOSEST_HEADING = "**Closest passage (not an answer)**"  # the same, under an abstention


def _where(documents: Mapping[str, Document], doc_id: str, offset: int) -> dict[str, Any]:
    document = documents.get(doc_id)
    if document is None:
        return {"title": doc_id, "page": None}
    return {"title": document.title or doc_id, "page": document.page_of(offset)}


def citations_json(answer: Answer, documents: Mapping[str, Document]) -> list[dict[str, Any]]:
    """`answer_json`'s citations, each with its document's title and the quote's page."""
    return [
        {**c, **_where(documents, c["doc_id"], c["quote"]["start"])}
        for c in answer_json(answer)["citations"]
    ]


def cited_answer_json(answer: Answer, documents: Mapping[str, Document]) -> dict[str, Any]:
    """The whole answer (`answer_json`) with titles and pages on its citations."""
    return {**answer_json(answer), "citations": citations_json(answer, documents)}


def hits_json(hits: list[Hit], documents: Mapping[str, Document]) -> list[dict[str, Any]]:
    """`hit_json` for each hit, with the title and the page its passage starts on."""
    return [{**hit_json(h), **_where(documents, h.chunk.doc_id, h.chunk.start)} for h in hits]


def sources_markdown(answer: Answer, documents: Mapping[str, Document]) -> str:
    """The "Sources" list: one line per citation, `[n] title, p. N: “quoted sentence”`."""
    if not answer.citations:
        return ""
    lines = [CLOSEST_HEADING if answer.abstained else SOURCES_HEADING, ""]
    for c in answer.citations:
        where = _where(documents, c.doc_id, c.quote.start)
        page = f", p. {where['page']}" if where["page"] is not None else ""
        lines.append(f"- [{c.n}] {markdown_text(where['title'])}{page}: "
                     f"“{markdown_text(c.quote.text)}”")
    return "\n".join(lines)


def answer_with_sources(answer: Answer, documents: Mapping[str, Document]) -> str:
    """The answer as Markdown (`[n]` markers kept) followed by its Sources list, if any."""
    sources = sources_markdown(answer, documents)
    text = answer_markdown(answer, inert=True)
    return f"{text}\n\n{sources}" if sources else text


def without_sources(content: str) -> str:
    """An earlier reply with the Sources list removed and its text unescaped: what the
    answer itself said."""
    for heading in (SOURCES_HEADING, CLOSEST_HEADING):
        content = content.partition(f"\n\n{heading}\n")[0]
    return markdown_plain(content).strip()
