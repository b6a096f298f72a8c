"""The OpenAI-compatible endpoint: the real `openai` client against a real `qa serve` (real
model, real article), plus fast checks of the conversation and error mapping."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa.mcp_server import mcp_router
from qa.openai_api import ChatMessage, conversation, openai_router
from qa.pipeline import Pipeline
from qa.schema import markdown_text
from qa.sources import SOURCES_HEADING, without_sources
from qa.types import Turn
from tests.conftest import ARTICLE

if TYPE_CHECKING:
    import openai

    from tests.conftest_web import Server

pytest_plugins = ["tests.conftest_web"]

KADHIMI = "What did Kadhimi tell the Washington Post?"
FOLLOW_UP = "What does he say Iraq will still need?"
OFF_TOPIC = "What is the capital of France?"


def source_text() -> str:
    """The article as it is on disk: citations must point into this, not into the index."""
    return ARTICLE.read_bytes().decode("utf-8-sig")


def client(server: Server) -> openai.OpenAI:
    import openai  # here, not at the top: 1 s of imports the fast tier does not need

    return openai.OpenAI(base_url=server.url + "v1", api_key="unused", max_retries=0,
                         timeout=60)


def extra(obj: Any, name: str) -> Any:
    """A field the OpenAI models do not declare (qa's citations): kept as a pydantic extra."""
    return (obj.model_extra or {})[name]


def check_citations(citations: list[dict[str, Any]], content: str) -> None:
    assert citations, "a cited answer"
    text = source_text()
    for c in citations:
        assert c["doc_id"] == ARTICLE.stem
        assert text[c["quote"]["start"]:c["quote"]["end"]] == c["quote"]["text"]
        assert text[c["start"]:c["end"]] == c["text"]
        assert f"[{c['n']}]" in content
        assert markdown_text(c["quote"]["text"]) in content  # quoted in the Sources list
        assert c["title"] and markdown_text(c["title"]) in content


# -- the real server, through the real client ------------------------------------------------


@pytest.mark.slow
def test_models_lists_qa(server: Server) -> None:
    models = client(server).models.list()
    assert [m.id for m in models.data] == ["qa"]
    assert client(server).models.retrieve("qa").id == "qa"
    import openai

    with pytest.raises(openai.NotFoundError):
        client(server).models.retrieve("gpt-4o")


@pytest.mark.slow
def test_plain_completion_is_the_cited_answer(server: Server, real_pipeline: Pipeline) -> None:
    completion = client(server).chat.completions.create(
        model="qa", messages=[{"role": "user", "content": KADHIMI}],
        temperature=0.2, max_tokens=50, n=1, user="tester",  # accepted and ignored
    )
    assert completion.object == "chat.completion" and completion.model == "qa"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content or ""
    answer = real_pipeline.ask(KADHIMI)
    assert content.startswith(f"**{markdown_text(answer.lead.span.text)}**" if answer.lead
                              else markdown_text(answer.text[:20]))
    assert f"\n\n{SOURCES_HEADING}\n" in content
    check_citations(extra(choice.message, "citations"), content)
    whole = extra(completion, "qa")
    assert whole["abstained"] is False and whole["text"] == answer.text
    assert completion.usage is not None and completion.usage.completion_tokens > 0


@pytest.mark.slow
def test_streaming_sends_the_same_content_in_chunks(server: Server) -> None:
    plain = client(server).chat.completions.create(
        model="qa", messages=[{"role": "user", "content": KADHIMI}])
    stream = client(server).chat.completions.create(
        model="qa", messages=[{"role": "user", "content": KADHIMI}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].role == "assistant"
    pieces = [d.content for d in deltas if d.content]
    assert len(pieces) > 3, "streamed in pieces"
    assert "".join(pieces) == plain.choices[0].message.content
    last = [c for c in chunks if c.choices][-1]
    assert last.choices[0].finish_reason == "stop"
    assert extra(last.choices[0].delta, "citations") == extra(plain.choices[0].message,
                                                              "citations")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


@pytest.mark.slow
def test_stream_ends_with_done(server: Server) -> None:
    body = {"model": "qa", "messages": [{"role": "user", "content": KADHIMI}], "stream": True}
    with httpx.stream("POST", server.url + "v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events)
    assert events[-1] == "data: [DONE]"


@pytest.mark.slow
def test_follow_up_uses_the_conversation(server: Server, real_pipeline: Pipeline) -> None:
    first = client(server).chat.completions.create(
        model="qa", messages=[{"role": "user", "content": KADHIMI}])
    reply = first.choices[0].message.content or ""
    follow = client(server).chat.completions.create(model="qa", messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": KADHIMI},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]},
    ])
    want = real_pipeline.ask(FOLLOW_UP, [Turn(KADHIMI, without_sources(reply))])
    got = extra(follow, "qa")
    assert got["text"] == want.text
    assert [c["quote"]["start"] for c in got["citations"]] == [
        c.quote.start for c in want.citations]
    check_citations(extra(follow.choices[0].message, "citations"),
                    follow.choices[0].message.content or "")
    alone = real_pipeline.ask(FOLLOW_UP)
    assert got["text"] != alone.text, "the conversation changed the answer"


@pytest.mark.slow
def test_a_placeholder_assistant_turn_is_not_taken_for_qa_s_answer(
        real_pipeline: Pipeline) -> None:
    """A client that puts a placeholder where the assistant's reply was ("...", "ok")
    had it read as qa's earlier answer, whose quotes tell a follow-up what was already
    said: "What does he say Iraq will still need?" after "What did Kadhimi tell the
    Washington Post?" was answered "Iraq no longer needs US combat troops", the earlier
    answer again. A reply with no citation marker is not one of qa's: the earlier answer
    is taken as unknown, as for an empty reply, and qa answers the earlier question itself."""
    said = real_pipeline.ask(FOLLOW_UP, [Turn(KADHIMI, real_pipeline.ask(KADHIMI).text)])
    assert "no longer needs" not in said.text
    with TestClient(edge_app(real_pipeline)) as http:
        for placeholder in ("...", "ok", "(answer)"):
            r = http.post("/v1/chat/completions", json={"model": "qa", "messages": [
                {"role": "user", "content": KADHIMI},
                {"role": "assistant", "content": placeholder},
                {"role": "user", "content": FOLLOW_UP}]})
            assert r.status_code == 200, r.text
            assert r.json()["qa"]["text"] == said.text, placeholder


@pytest.mark.slow
def test_abstention_is_a_normal_reply(server: Server) -> None:
    completion = client(server).chat.completions.create(
        model="qa", messages=[{"role": "user", "content": OFF_TOPIC}])
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert "doesn't say" in html.unescape(choice.message.content or "")  # rendered Markdown
    assert SOURCES_HEADING not in (choice.message.content or "")
    assert len(extra(choice.message, "citations")) <= 1  # the closest passage, if any
    assert extra(completion, "qa")["abstained"] is True


@pytest.mark.slow
@pytest.mark.parametrize(("kwargs", "error", "param"), [
    ({"messages": []}, "BadRequestError", "messages"),
    ({"messages": [{"role": "user", "content": "   "}]}, "BadRequestError",
     "messages[0].content"),
    ({"messages": [{"role": "user", "content": "x" * 2001}]}, "BadRequestError",
     "messages[0].content"),
    ({"messages": [{"role": "user", "content": KADHIMI}, {"role": "assistant", "content": "x"}]},
     "BadRequestError", "messages[1].role"),
    ({"messages": [{"role": "wizard", "content": KADHIMI}]}, "BadRequestError",
     "messages[0].role"),
    ({"messages": [{"role": "user", "content": KADHIMI}], "model": "gpt-4o"},
     "NotFoundError", "model"),
])
def test_bad_requests_get_the_openai_error_object(
    server: Server, kwargs: dict[str, Any], error: str, param: str
) -> None:
    import openai

    kwargs = {"model": "qa", **kwargs}
    expected: type[openai.APIStatusError] = getattr(openai, error)  # named: no import to collect
    with pytest.raises(expected) as raised:
        client(server).chat.completions.create(**kwargs)
    assert 400 <= raised.value.status_code < 500
    body = raised.value.body
    assert isinstance(body, dict)  # the client unwraps {"error": {...}}
    assert set(body) == {"message", "type", "param", "code"}
    assert body["param"] == param and body["message"] and "\n" not in body["message"]


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"messages": "hi"}'])
def test_malformed_bodies_are_400_error_objects(server: Server, content: bytes) -> None:
    r = httpx.post(server.url + "v1/chat/completions", content=content, timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


# -- fast: no model --------------------------------------------------------------------------


def msg(role: str, content: Any) -> ChatMessage:
    return ChatMessage(role=role, content=content)


def test_conversation_pairs_questions_with_replies() -> None:
    question, turns = conversation([
        msg("system", "Be brief."),
        msg("user", "First?"),
        msg("assistant", f"One [1]\n\n{SOURCES_HEADING}\n\n- [1] Doc: “One”"),
        msg("user", "   "),  # blank: left out with its reply
        msg("assistant", "ignored"),
        msg("user", "Second?"),
        msg("user", [{"type": "text", "text": "Third?"}, {"type": "image_url"}]),
    ])
    assert question == "Third?"
    assert turns == [Turn("First?", "One [1]"), Turn("Second?")]


def test_a_question_of_parts_without_text_says_which_parts_it_has() -> None:
    """A last message of an image alone (a front end sending a pasted picture) was "the
    question is empty", which it was not to the person who sent it. It says qa reads the
    text parts and names the parts it got; a text part of blanks is still empty."""
    from qa.openai_api import _BadRequest

    with pytest.raises(_BadRequest) as info:
        conversation([msg("user", "First?"), msg("assistant", "One [1]"), msg("user", [
            {"type": "image_url", "image_url": {"url": "data:,"}}, {"type": "input_audio"}])])
    assert str(info.value) == ("the question has no text: qa answers a question in words (its "
                               "'text' parts), and this message has 'image_url', "
                               "'input_audio' parts only")
    assert info.value.param == "messages[2].content"
    assert conversation([msg("user", [{"type": "text", "text": " "}])])[0] == " "


def test_an_earlier_turn_the_question_check_refuses_is_left_out() -> None:
    """Earlier turns were screened by `strip()` and length alone: a turn of zero-width
    characters passed as a question, and control characters stayed in it. The turns are
    cleaned by the check every question gets (`clean_question`)."""
    question, turns = conversation([
        msg("user", "\u200b\ufeff"),  # nothing visible: left out with its reply
        msg("assistant", "ignored"),
        msg("user", "\x1b[31mFirst?\x07 "),
        msg("assistant", "One. [1]"),
        msg("user", "Second?"),
    ])
    assert question == "Second?" and turns == [Turn("First?", "One. [1]")]


def test_conversation_keeps_the_last_turns_only() -> None:
    messages = [msg("user", f"Question {i}?") for i in range(30)]
    _, turns = conversation(messages)
    assert len(turns) == 20 and turns[-1].question == "Question 28?"


def test_a_reply_without_a_citation_marker_is_an_unknown_answer() -> None:
    """qa's replies carry `[n]` markers (its quotes, or the closest passage); a reply without
    one is not qa's answer (a placeholder, another model's words): unknown, so qa answers
    the earlier question itself, as for an empty reply."""
    for reply in ("...", "ok", "", "Sure, see above [x]."):
        _, turns = conversation([msg("user", "First?"), msg("assistant", reply),
                                 msg("user", "Second?")])
        assert turns == [Turn("First?")], reply
    _, turns = conversation([msg("user", "First?"), msg("assistant", "One. [12]"),
                             msg("user", "Second?")])
    assert turns == [Turn("First?", "One. [12]")]


def test_without_sources_keeps_plain_replies() -> None:
    assert without_sources("Just text.") == "Just text."


def edge_app(pipeline: Pipeline) -> FastAPI:
    """Just the /v1 and /mcp routers (no web chat: fast); the real mount is tested above."""
    app = FastAPI()
    app.include_router(openai_router(pipeline))
    app.include_router(mcp_router(pipeline))
    return app


def test_token_is_required_when_set(fake_pipeline: Pipeline,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_API_TOKEN", "s3cret")
    body = {"model": "qa", "messages": [{"role": "user", "content": KADHIMI}]}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    with TestClient(edge_app(fake_pipeline), base_url="http://127.0.0.1:7860") as web:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = web.post("/v1/chat/completions", json=body, headers=headers)
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "invalid_api_key"
            assert web.post("/mcp", json=initialize, headers={**accept, **headers}
                            ).status_code == 401
        assert web.get("/v1/models").status_code == 401
        token = {"Authorization": "Bearer s3cret"}
        ok = web.post("/v1/chat/completions", json=body, headers=token)
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"]
        mcp = web.post("/mcp", json=initialize, headers={**accept, **token})
        assert mcp.status_code == 200, mcp.text
        assert mcp.json()["result"]["serverInfo"]["name"] == "qa"


def test_unavailable_index_is_503_error_object(tmp_path: Path) -> None:
    from qa.config import Settings
    from tests.conftest import HashingEmbedder

    unusable = tmp_path / "seeds"
    unusable.write_text("a file, not a folder")
    pipeline = Pipeline(Settings(model="fake-hashing", seeds_dir=unusable,
                                 index_dir=tmp_path / "index", spacy="none"), HashingEmbedder())
    r = TestClient(edge_app(pipeline)).post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Who?"}]})
    assert r.status_code == 503, r.text
    assert r.json()["error"]["type"] == "service_unavailable"


EVIL_TITLE = ("Evil <img src=x onerror=alert(1)> **bold** [x](javascript:alert(1)) "
              "https://evil.example/t www.evil.example")
EVIL_QUOTE = "The keeper of the lamp was [a link](javascript:alert(3)) named <b>Ada</b> `Vance`."


def evil_pipeline(pipeline: Pipeline) -> Pipeline:
    """`pipeline` with a document whose title and text are markup."""
    (pipeline.settings.seeds_dir / "evil.txt").write_text(
        f"{EVIL_TITLE}\n\n{EVIL_QUOTE}\n", encoding="utf-8")
    return pipeline


def gfm(content: str) -> str | None:
    """`content` rendered by GitHub's cmark-gfm with its autolink extension, as a GFM front
    end renders it (raw HTML allowed); None where the dev extra `cmarkgfm` is missing."""
    try:
        import cmarkgfm
        from cmarkgfm.cmark import Options
    except ImportError:
        return None
    return str(cmarkgfm.github_flavored_markdown_to_html(content, Options.CMARK_OPT_UNSAFE))


def rendered(content: str) -> str:
    """`content` as a chat front end shows it: rendered by a CommonMark renderer (raw HTML
    allowed, as CommonMark does), then read as text; rendered by a GFM one too, which must
    make no link of a URL in it."""
    from markdown_it import MarkdownIt

    page = MarkdownIt("commonmark").render(content)
    for tag in ("<img", "<a ", "<b>", "<code", "<script", "<ol", "<h1", "<blockquote"):
        assert tag not in page, (tag, page)  # document text made no element of its own
    github = gfm(content)
    assert github is None or "<a " not in github, github
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.mark.parametrize("text", [
    "- The dash vault colour is teal.", "2) The numbered vault is pink.", "+ plus", "10. ten",
    "# a heading", "> a quote", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "**bold** and `code`", "back\\slash \\- kept", "3.5 metres, a - b + c 2) d",
    "https://evil.example/x?a=1&b_c=2#d", "(www.example.com)", "ada.l+x@mail.example.co.uk",
    "https\\://kept www\\.kept a\\@b.c", "Note: at 10:45, @mention user@localhost",
])
def test_markdown_text_renders_as_written(text: str) -> None:
    from markdown_it import MarkdownIt

    from qa.schema import markdown_plain

    escaped = markdown_text(text)
    page = MarkdownIt("commonmark").render(escaped)
    assert page.startswith("<p>") and page.count("<") == 2, page  # one paragraph, no markup
    assert html.unescape(page[3:-5]) == text
    assert markdown_plain(escaped) == text


GFM_AUTOLINKS: list[tuple[str, str]] = [
    ("See https://evil.example/x now.", "See https\\://evil.example/x now."),
    ("HTTP://A.EXAMPLE and ftp://f.example/y", "HTTP\\://A.EXAMPLE and ftp\\://f.example/y"),
    ("visit www.example.com.", "visit www\\.example.com."),
    ("(https://www.example.com/a)", "(https\\://www\\.example.com/a)"),
    ("x~www.example.com", "x\\~www\\.example.com"),
]


@pytest.mark.parametrize(("text", "escaped"), [
    *GFM_AUTOLINKS,
    ("mail ada@example.com", "mail ada\\@example.com"),
    ("Note: at 10:45, @mention user@localhost", "Note: at 10:45, @mention user@localhost"),
])
def test_markdown_text_escapes_what_gfm_would_autolink(text: str, escaped: str) -> None:
    """GitHub-Flavored Markdown makes a link of a bare `https://…`, `www.…` or e-mail
    address in text: a URL quoted from a document was a link in the reply. The `:`, `.`
    or `@` that completes the pattern is escaped; the rest reads as it did."""
    from qa.schema import markdown_plain

    assert markdown_text(text) == escaped
    assert markdown_plain(escaped) == text


@pytest.mark.parametrize(("text", "escaped"), GFM_AUTOLINKS)
def test_gfm_makes_no_link_of_a_quoted_url(text: str, escaped: str) -> None:
    """Rendered by cmark-gfm (GitHub's own), the escaped text is no link and reads as
    written; the raw text is a link (the renderer autolinks)."""
    page, raw = gfm(markdown_text(text)), gfm(text)
    if page is None or raw is None:
        pytest.skip("cmarkgfm (the dev extra) is not installed")
    assert "<a " in raw and "<a " not in page, page
    assert html.unescape(re.sub(r"<[^>]+>", "", page)).strip() == text


def assert_inert(content: str) -> None:
    shown = rendered(content)
    assert "**bold**" in shown or EVIL_TITLE not in content  # shown as written, not bold


def test_document_markup_is_inert_in_the_reply(fake_pipeline: Pipeline) -> None:
    pipeline = evil_pipeline(fake_pipeline)
    body = {"messages": [{"role": "user", "content": "Who was the keeper of the lamp?"}]}
    r = TestClient(edge_app(pipeline)).post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    message = r.json()["choices"][0]["message"]
    content = message["content"]
    assert_inert(content)
    shown = rendered(content)
    assert EVIL_TITLE in shown and EVIL_QUOTE in shown  # rendered, it reads as written
    assert "doesn't" in content or "doesn" not in content  # plain text stays plain
    assert EVIL_QUOTE in without_sources(content)  # a follow-up reads the reply's own text
    [cited] = [c for c in message["citations"] if c["doc_id"] == "evil"]
    text = pipeline.index.documents["evil"].text
    assert cited["quote"]["text"] == EVIL_QUOTE  # the structured fields are the raw text
    assert text[cited["quote"]["start"]:cited["quote"]["end"]] == EVIL_QUOTE
    assert cited["title"] == EVIL_TITLE
    assert f"[{cited['n']}]" in content  # the markers stay Markdown-plain


@pytest.mark.parametrize(("param", "value"), [
    ("stream", "yes"), ("stream", 1), ("stream", "true"),  # a lax reading streamed these
    ("max_tokens", -5), ("max_tokens", 0), ("max_tokens", "10"), ("max_completion_tokens", 0),
    ("temperature", -1), ("temperature", 2.5), ("top_p", 1.5),
    ("n", 2), ("n", 0), ("n", "1"),  # `n: 2` was answered with one choice
    ("response_format", {"type": "json_object"}),  # answered with text all the same
    ("response_format", {"type": "json_schema", "json_schema": {}}),
])
def test_values_openai_refuses_are_refused(fake_pipeline: Pipeline, param: str,
                                           value: Any) -> None:
    body = {"messages": [{"role": "user", "content": KADHIMI}], param: value}
    with TestClient(edge_app(fake_pipeline)) as web:
        r = web.post("/v1/chat/completions", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == param
        # NaN is not JSON; Python's json writes it, and it is refused all the same
        nan = web.post("/v1/chat/completions", content=b'{"messages": [{"role": "user", '
                       b'"content": "Who?"}], "temperature": NaN}',
                       headers={"content-type": "application/json"})
        assert nan.status_code == 400, nan.text
        if param == "response_format" and value["type"] == "json_object":
            assert r.json()["error"]["message"] == (
                "response_format: qa answers in text (quotes and their Sources): the type "
                "must be 'text', got 'json_object'")
        if param == "n" and value == 2:
            assert r.json()["error"]["message"] == (
                "n: qa gives one answer to a question: n must be 1, got 2")
        fine = {**body, param: {"stream": False, "max_tokens": 16, "max_completion_tokens": 16,
                                "temperature": 0.2, "top_p": 1, "n": 1,
                                "response_format": {"type": "text"}}[param]}
        assert web.post("/v1/chat/completions", json=fine).status_code == 200


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_a_client_that_hangs_up_mid_stream_leaves_no_warnings(
        fake_pipeline: Pipeline, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A streamed answer was written without letting the event loop run: when a client
    hung up after its first chunks (`curl ... | head -c 300`), every later chunk met the
    closed socket and asyncio logged 'socket.send() raised exception.' for each past the
    fifth: dozens of lines a request, for anyone to cause. `qa serve`'s own protocol."""
    import json
    import socket
    import time

    from qa.api import create_api
    from tests.test_documents_api import served

    monkeypatch.setattr("qa.openai_api.WORDS_PER_CHUNK", 1)  # a chunk a word: many writes
    body = json.dumps({"model": "qa", "stream": True, "messages": [
        {"role": "user", "content": "Who keeps the lamp?"}]}).encode()
    with served(create_api(fake_pipeline), qa_config=True) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                assert sock.recv(300)  # the first chunks, then gone
        time.sleep(0.5)
    sent = [r.getMessage() for r in caplog.records if "socket.send()" in r.getMessage()]
    assert sent == []
