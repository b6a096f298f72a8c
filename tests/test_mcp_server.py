"""The MCP server through the SDK's own client: `qa mcp` over stdio (a subprocess) and the same
tools over streamable HTTP on the real `qa serve`, both with the real model and article; plus
fast in-process checks of argument validation with a fake embedder."""

from __future__ import annotations

import html
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from qa.mcp_server import build_server
from qa.pipeline import Pipeline
from qa.schema import answer_json, markdown_text
from qa.sources import SOURCES_HEADING
from qa.types import Turn
from tests.conftest import ARTICLE, ROOT
from tests.test_openai_api import EVIL_QUOTE, EVIL_TITLE, assert_inert, evil_pipeline, rendered

if TYPE_CHECKING:
    from tests.conftest_web import Server

pytest_plugins = ["tests.conftest_web"]

KADHIMI = "What did Kadhimi tell the Washington Post?"
FOLLOW_UP = "What does he say Iraq will still need?"
OFF_TOPIC = "What is the capital of France?"
BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("ask", {"question": "   "}, "the question is empty"),
    ("ask", {}, "question"),
    ("ask", {"question": 42}, "question"),
    ("ask", {"question": "x" * 2001}, "too long"),
    ("ask", {"question": KADHIMI, "history": "not a list"}, "history"),
    ("ask", {"question": KADHIMI, "history": [" "]}, "history"),
    ("retrieve", {"question": KADHIMI, "k": 0}, "k"),
    ("retrieve", {"question": KADHIMI, "k": 21}, "k"),
    ("retrieve", {"question": KADHIMI, "k": "five"}, "k"),
    ("retrieve", {"question": KADHIMI, "top_k": 3}, "unknown argument 'top_k'"),
    ("ask", {"question": KADHIMI, "histroy": [], "x": 1}, "unknown arguments 'histroy', 'x'"),
    ("list_documents", {"all": True}, "unknown argument 'all'; it takes none"),
    ("ask", {"question": KADHIMI, "doc_ids": ["nope"]}, "unknown document id 'nope'"),
    ("ask", {"question": KADHIMI, "doc_ids": []}, "doc_ids is empty"),
    ("ask", {"question": KADHIMI, "doc_ids": "nope"}, "doc_ids"),
    ("retrieve", {"question": KADHIMI, "doc_ids": ["nope"]}, "unknown document id 'nope'"),
]


def source_text() -> str:
    return ARTICLE.read_bytes().decode("utf-8-sig")


def text_of(result: CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def exercise(client: Client, pipeline: Pipeline) -> None:
    """Every tool once, a follow-up, an abstention and the bad inputs, checked against the
    article on disk and the in-process pipeline."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"ask", "retrieve", "list_documents"}
    assert tools["ask"].input_schema["required"] == ["question"]
    assert tools["retrieve"].input_schema["properties"]["k"]["anyOf"][0]["maximum"] == 20

    source = source_text()
    result = await client.call_tool("ask", {"question": KADHIMI})
    assert not result.is_error, text_of(result)
    answer = result.structured_content or {}
    assert answer["text"] == pipeline.ask(KADHIMI).text
    assert answer["citations"] and not answer["abstained"]
    for c in answer["citations"]:
        assert source[c["quote"]["start"]:c["quote"]["end"]] == c["quote"]["text"]
        assert c["title"] and markdown_text(c["quote"]["text"]) in text_of(result)
    assert SOURCES_HEADING in text_of(result) and "[1]" in text_of(result)

    follow = await client.call_tool("ask", {"question": FOLLOW_UP, "history": [KADHIMI]})
    assert not follow.is_error, text_of(follow)
    assert (follow.structured_content or {})["text"] == pipeline.ask(FOLLOW_UP, [KADHIMI]).text
    with_answer = await client.call_tool("ask", {"question": FOLLOW_UP, "history": [
        {"question": KADHIMI, "answer": answer["text"]}]})
    want = answer_json(pipeline.ask(FOLLOW_UP, [Turn(KADHIMI, answer["text"])]))
    assert (with_answer.structured_content or {})["text"] == want["text"]

    off = await client.call_tool("ask", {"question": OFF_TOPIC})
    assert not off.is_error and (off.structured_content or {})["abstained"] is True
    assert "doesn't say" in html.unescape(text_of(off))  # rendered Markdown

    hits = (await client.call_tool("retrieve", {"question": KADHIMI, "k": 2})).structured_content
    assert hits is not None and [h["rank"] for h in hits["hits"]] == [1, 2]
    for h in hits["hits"]:
        assert source[h["start"]:h["end"]] == h["text"]
        assert source[h["sentence"]["start"]:h["sentence"]["end"]] == h["sentence"]["text"]

    listed = (await client.call_tool("list_documents", {})).structured_content
    assert listed is not None
    [doc] = listed["documents"]
    assert doc["id"] == ARTICLE.stem and doc["chars"] == len(source)
    assert doc["kind"] == "txt" and doc["title"]

    for name, arguments, expected in BAD_CALLS:
        bad = await client.call_tool(name, arguments)
        message = text_of(bad)
        assert bad.is_error, (name, arguments)
        assert expected in message and "\n" not in message, message


def run(client: Client, check: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with client:
            await check(client)

    anyio.run(main)


# -- the real model --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_stdio_server(real_pipeline: Pipeline, tmp_path: Path) -> None:
    settings = real_pipeline.settings
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa.cli", "mcp", "--seeds", str(settings.seeds_dir),
              "--index", str(settings.index_dir)],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
             "QA_CACHE_DIR": str(settings.cache_dir)},
        cwd=ROOT,
    )
    with (tmp_path / "stderr.log").open("w") as errlog:
        from mcp.client.stdio import stdio_client

        async def main() -> None:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                await exercise(client, real_pipeline)

        anyio.run(main)


@pytest.mark.slow
def test_ask_with_a_placeholder_earlier_answer_follows_up_what_qa_would_say(
        real_pipeline: Pipeline) -> None:
    """The ask tool took {"question", "answer": "..."} as given: the follow-up was searched
    with the placeholder for what was said. Such a turn has no answer, as when it is left
    out: the same reply."""
    expected = answer_json(real_pipeline.ask(FOLLOW_UP, [KADHIMI]))
    got = []

    async def check(client: Client) -> None:
        for said in ("", "..."):
            result = await client.call_tool("ask", {
                "question": FOLLOW_UP, "history": [{"question": KADHIMI, "answer": said}]})
            assert not result.is_error and result.structured_content is not None
            got.append(result.structured_content)

    run(Client(build_server(real_pipeline)), check)
    assert [g["text"] for g in got] == [expected["text"]] * 2
    assert [[c["quote"] for c in g["citations"]] for g in got] == [
        [c["quote"] for c in expected["citations"]]] * 2


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_stdio_answers_a_call_piped_in_before_stdin_ends(real_pipeline: Pipeline) -> None:
    """`printf '<initialize>\\n<initialized>\\n<tools/call ask>\\n' | qa mcp` printed the
    reply to initialize and nothing for the call: the SDK cancelled it at the end of stdin."""
    import json
    import subprocess

    settings = real_pipeline.settings
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "ask", "arguments": {"question": KADHIMI}}}
    done = subprocess.run(
        [sys.executable, "-m", "qa.cli", "mcp", "--seeds", str(settings.seeds_dir),
         "--index", str(settings.index_dir)],
        input="".join(_stdio_lines(call)), capture_output=True, text=True, timeout=200,
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                       "QA_CACHE_DIR": str(settings.cache_dir)})
    assert done.returncode == 0, done.stderr
    replies = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert sorted(replies) == [1, 2], done.stdout
    answer = replies[2]["result"]["structuredContent"]
    assert answer["text"] == real_pipeline.ask(KADHIMI).text and answer["citations"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_streamable_http_on_the_running_server(server: Server, real_pipeline: Pipeline) -> None:
    run(Client(server.url + "mcp"), lambda c: exercise(c, real_pipeline))


@pytest.mark.slow
def test_http_endpoint_refuses_foreign_hosts(server: Server) -> None:
    # DNS rebinding: a page on another name that resolves to 127.0.0.1 must not reach tools.
    r = httpx.post(server.url + "mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                   headers={"Host": "evil.example:80", "Accept": "application/json"}, timeout=10)
    assert r.status_code >= 400


# -- fast: in process, fake embedder ---------------------------------------------------------


def test_bad_inputs_are_one_line_tool_errors(fake_pipeline: Pipeline) -> None:
    async def check(client: Client) -> None:
        for name, arguments, expected in BAD_CALLS:
            result = await client.call_tool(name, arguments)
            assert result.is_error, (name, arguments)
            assert expected in text_of(result) and "\n" not in text_of(result)
        fine = await client.call_tool("retrieve", {"question": "troops", "k": 3})
        assert not fine.is_error and len((fine.structured_content or {})["hits"]) == 3

    run(Client(build_server(fake_pipeline)), check)


def test_k_of_the_wrong_type_is_refused_as_the_http_api_refuses_it(
        fake_pipeline: Pipeline) -> None:
    """The retrieve tool took `"k": true` as k=1 (pydantic reads true as 1), searching one
    passage where POST /api/retrieve and the Python API refuse it: a tool error naming k.
    The same number written otherwise ("3", 3.0, as some models write arguments) is read."""
    async def check(client: Client) -> None:
        for k in (True, False, 2.5):
            result = await client.call_tool("retrieve", {"question": "troops", "k": k})
            assert result.is_error and "k:" in text_of(result), (k, text_of(result))
        result = await client.call_tool("retrieve", {"question": "troops", "k": True})
        assert text_of(result) == ("invalid arguments for retrieve: k: k is a number of "
                                   "passages, 1 to 20, not true")
        for k in ("3", 3.0):
            fine = await client.call_tool("retrieve", {"question": "troops", "k": k})
            assert not fine.is_error and len((fine.structured_content or {})["hits"]) == 3

    run(Client(build_server(fake_pipeline)), check)


BAD_HISTORIES: list[list[Any]] = [
    ["Who?", "   "],
    [{"question": "\u200b"}],
    ["Who?", {"question": "Who?", "answer": "A."}, "x" * 2001],
]


def test_a_bad_history_turn_reads_the_same_over_http_and_mcp(fake_pipeline: Pipeline) -> None:
    """The HTTP API said "history[1]: the question is empty" (pydantic's place, from 0)
    where MCP said "history: the question is empty": both now name the turn through
    `clean_turn`, and MCP puts the tool's name first, as for every tool error."""
    from fastapi.testclient import TestClient

    from qa.api import create_api

    expected = ["history turn 2 is empty", "history turn 1 is empty",
                "history turn 3 is too long (2001 characters; at most 2000)"]
    web = TestClient(create_api(fake_pipeline), base_url="http://127.0.0.1:7860")
    http = []
    for history in BAD_HISTORIES:
        r = web.post("/api/ask", json={"question": KADHIMI, "history": history})
        assert r.status_code == 422, r.text
        http.append(r.json()["detail"])
    assert http == expected
    tool: list[str] = []

    async def check(client: Client) -> None:
        for history in BAD_HISTORIES:
            result = await client.call_tool("ask", {"question": KADHIMI, "history": history})
            assert result.is_error
            tool.append(text_of(result))

    run(Client(build_server(fake_pipeline)), check)
    assert tool == [f"ask: {message}" for message in expected]


def test_document_markup_is_inert_in_the_answer_text(fake_pipeline: Pipeline) -> None:
    pipeline = evil_pipeline(fake_pipeline)

    async def check(client: Client) -> None:
        result = await client.call_tool("ask", {"question": "Who was the keeper of the lamp?"})
        assert not result.is_error, text_of(result)
        assert_inert(text_of(result))
        assert EVIL_TITLE in rendered(text_of(result))
        citations = (result.structured_content or {})["citations"]
        [cited] = [c for c in citations if c["doc_id"] == "evil"]
        assert cited["quote"]["text"] == EVIL_QUOTE and cited["title"] == EVIL_TITLE

    run(Client(build_server(pipeline)), check)


def test_mcp_subcommand_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from qa import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["mcp", "--bogus"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        cli.main(["mcp", "--help"])
    assert exited.value.code == 0 and "--index" in capsys.readouterr().out



@pytest.mark.timeout(30)  # a GET used to open an event stream that never ended
def test_http_endpoint_answers_post_only(fake_pipeline: Pipeline) -> None:
    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from qa.api import create_api

    app = create_api(fake_pipeline)
    app.mount("/", PlainTextResponse("not found", 404))  # the chat's mount, as in `qa serve`
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    with TestClient(app, base_url="http://127.0.0.1:7860") as web:
        for method in ("GET", "DELETE"):  # stateless: no event stream, no session to end
            r = web.request(method, "/mcp", headers=accept)
            assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
        r = web.post("/mcp", json=initialize, headers=accept)
        assert r.status_code == 200 and r.json()["result"]["serverInfo"]["name"] == "qa"


def test_list_documents_names_the_uploaded_file(fake_pipeline: Pipeline, tmp_path: Path) -> None:
    upload = tmp_path / "part-0"  # stored under a temporary name, as the HTTP upload does
    upload.write_text("Quarterly Water Report\n\nThe reservoir held 40 days of water.\n",
                      encoding="utf-8")
    fake_pipeline.add_documents([upload], ["Water Report Q3.txt"])

    async def check(client: Client) -> None:
        listed = (await client.call_tool("list_documents", {})).structured_content
        assert listed is not None
        documents = {d["id"]: d for d in listed["documents"]}
        [uploaded] = [d for d in documents.values() if d["source"] == "upload"]
        assert uploaded["name"] == "water-report-q3.txt"  # as /api/documents names it
        assert uploaded["original_name"] == "Water Report Q3.txt"
        assert uploaded["title"] == "Quarterly Water Report"
        assert uploaded["size"] == upload.stat().st_size
        seed = documents[ARTICLE.stem]
        assert seed["name"] == ARTICLE.name and seed["source"] == "seed"
        assert all("paragraphs" not in d for d in documents.values())  # never a true count

    run(Client(build_server(fake_pipeline)), check)


def test_list_documents_and_ask_speak_the_http_api_s_wire_format(
        fake_pipeline: Pipeline, tmp_path: Path) -> None:
    """MCP's list_documents had a shape of its own (`file`, `characters`, `pages: null`, no
    `added_at`, no skipped files) where GET /api/documents and `qa list --json` share
    `schema.documents_json`; and its `ask` could not be limited to some documents, as
    `doc_ids` (HTTP) and `--doc` (CLI) can."""
    from fastapi.testclient import TestClient

    from qa.api import create_api

    upload = tmp_path / "part-0"
    upload.write_text("Quarterly Water Report\n\nThe reservoir held 40 days of water.\n",
                      encoding="utf-8")
    (fake_pipeline.settings.seeds_dir / "broken.txt").write_bytes(b"caf\xe9\n")
    fake_pipeline.add_documents([upload], ["Water Report Q3.txt"])
    with TestClient(create_api(fake_pipeline), base_url="http://127.0.0.1:7860") as web:
        over_http = web.get("/api/documents").json()

    async def check(client: Client) -> None:
        listed = await client.call_tool("list_documents", {})
        assert listed.structured_content == over_http
        assert json.loads(text_of(listed)) == over_http
        assert [p["file"] for p in over_http["problems"]] == [
            str(fake_pipeline.settings.seeds_dir / "broken.txt")]
        for tool in ("ask", "retrieve"):
            only = await client.call_tool(tool, {"question": "How long did the water last?",
                                                 "doc_ids": ["water-report-q3"]})
            assert not only.is_error, text_of(only)
            found = only.structured_content or {}
            cited = [c["doc_id"] for c in found.get("citations", found.get("hits", []))]
            assert cited and set(cited) == {"water-report-q3"}, found

    run(Client(build_server(fake_pipeline)), check)


def test_stdio_answers_a_line_that_is_not_json_rpc(fake_pipeline: Pipeline) -> None:
    import io
    import json

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}
    # a valid id in a message that is no request: its reply has that id (JSON-RPC 2.0 says
    # null only when the id cannot be detected); it was null, which no client can match
    invalid = [{"jsonrpc": "2.0", "id": 12, "method": "tools/call", "params": "str"},
               {"jsonrpc": "1.0", "id": "x-13", "method": "tools/list"}]
    lines = [json.dumps(initialize), "this is not JSON", "", '{"hello": 1}',
             *map(json.dumps, invalid),
             json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})]
    stdout = io.StringIO()

    async def stdin() -> AsyncIterator[str]:  # open until the replies are in, as a client's is
        for line in lines:
            yield line + "\n"
        with anyio.move_on_after(10):
            while stdout.getvalue().count("\n") < 6:
                await anyio.sleep(0.01)

    server = build_server(fake_pipeline)
    anyio.run(lambda: server.run_stdio_async(stdin(), anyio.wrap_file(stdout)))
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]  # in any order
    assert sorted(str(r["id"]) for r in replies) == [
        "1", "12", "2", "None", "None", "x-13"]  # blank: none
    assert [r["error"] for r in replies if r["id"] is None] == [
        {"code": -32700, "message": "Parse error"},
        {"code": -32600, "message": "Invalid Request"}]
    assert [r["error"] for r in replies if r["id"] in (12, "x-13")] == [
        {"code": -32600, "message": "Invalid Request"}] * 2
    [tools] = [r["result"]["tools"] for r in replies if r["id"] == 2]
    assert {t["name"] for t in tools} == {"ask", "retrieve", "list_documents"}


def test_unknown_prompts_and_bodies_that_are_not_messages_are_one_line_errors(
        fake_pipeline: Pipeline, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """`prompts/get` of a prompt qa does not have raised a ValueError that the SDK logged
    with a traceback and answered with error code 0; a JSON body that is not one JSON-RPC
    message (a batch, null, jsonrpc 1.0) got -32602 and pydantic's report of every union
    branch, a dozen lines echoing the input."""
    import json

    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from qa.api import create_api

    app = create_api(fake_pipeline)
    app.mount("/", PlainTextResponse("not found", 404))
    accept = {"Accept": "application/json, text/event-stream",
              "Content-Type": "application/json"}
    with TestClient(app, base_url="http://127.0.0.1:7860") as web:
        r = web.post("/mcp", headers=accept, json={
            "jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": {"name": "x"}})
        assert r.status_code == 200, r.text
        assert r.json()["id"] == 7 and r.json()["error"]["code"] == -32602
        assert r.json()["error"]["message"].startswith("unknown prompt 'x'")
        tool_list = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        for body in ([tool_list, tool_list], None, {**tool_list, "jsonrpc": "1.0"}, []):
            r = web.post("/mcp", headers=accept, content=json.dumps(body))
            assert r.status_code == 400, r.text
            assert int(r.headers["content-length"]) == len(r.content)
            error = r.json()["error"]
            assert error["code"] == -32600 and "\n" not in error["message"], r.text
            assert error["message"].startswith("Invalid Request: ")
            # JSON-RPC 2.0: id null only when it cannot be detected; "jsonrpc": "1.0" is
            # not a 2.0 request, but its id (1) is plain to read, and is its reply's id
            assert r.json()["id"] == (1 if isinstance(body, dict) else None), r.text
        for found in (12, "call-12"):  # a valid id, an envelope that is not a request
            r = web.post("/mcp", headers=accept, json={
                "jsonrpc": "2.0", "id": found, "method": "tools/call", "params": "str"})
            assert r.status_code == 400 and r.json()["id"] == found, r.text
            assert r.json()["error"]["code"] == -32600
        r = web.post("/mcp", headers=accept, content=b"{")  # kept: already one line
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    logged = capsys.readouterr().err + caplog.text
    assert "Traceback" not in logged and "raised" not in logged, logged


BAD_IDS: list[Any] = [{"a": 1}, [1], 1.5, 1.0, True, None]


def test_a_request_with_an_id_mcp_does_not_allow_is_invalid_on_a_real_server(
        fake_pipeline: Pipeline) -> None:
    """An id that is an object, an array, a number with a fraction, a boolean or null: the
    SDK read the request as a notification (its RequestId is a strict int or a str; the
    rest fell through to JSONRPCNotification, modelcontextprotocol/python-sdk#2057) and
    answered 202 with no body, so the client waited for ever. JSON-RPC wants -32600 with id
    null; good ids and real notifications are served as before."""
    import json

    from qa.api import create_api
    from tests.test_documents_api import served

    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    with served(create_api(fake_pipeline)) as url, httpx.Client(base_url=url,
                                                                timeout=30) as web:
        for bad in BAD_IDS:
            r = web.post("/mcp", headers=headers, content=json.dumps(
                {"jsonrpc": "2.0", "id": bad, "method": "tools/list"}))
            assert r.status_code == 400, (bad, r.status_code, r.text)
            assert r.json()["id"] is None and r.json()["error"]["code"] == -32600, r.text
            assert r.json()["error"]["message"].startswith(
                "Invalid Request: the id must be a string or an integer")
            assert r.headers["x-content-type-options"] == "nosniff"  # Hardening's headers
        for good in (7, "seven", -1, 2**70, ""):
            r = web.post("/mcp", headers=headers, content=json.dumps(
                {"jsonrpc": "2.0", "id": good, "method": "tools/list"}))
            assert r.status_code == 200 and r.json()["id"] == good, r.text
            assert {t["name"] for t in r.json()["result"]["tools"]} >= {"ask", "retrieve"}
        r = web.post("/mcp", headers=headers, content=json.dumps(
            {"jsonrpc": "2.0", "method": "notifications/initialized"}))
        assert r.status_code == 202 and not r.content  # a notification: no reply


def test_stdio_answers_a_request_with_a_bad_id(fake_pipeline: Pipeline) -> None:
    """Over stdio the SDK dropped such a request without a word; it gets -32600, id null,
    in order with the replies to the lines around it."""
    import io
    import json

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}
    lines = [json.dumps(initialize),
             *(json.dumps({"jsonrpc": "2.0", "id": bad, "method": "tools/list"})
               for bad in BAD_IDS),
             json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})]
    stdout = io.StringIO()

    async def stdin() -> AsyncIterator[str]:  # open until the replies are in
        for line in lines:
            yield line + "\n"
        with anyio.move_on_after(10):
            while stdout.getvalue().count("\n") < 2 + len(BAD_IDS):
                await anyio.sleep(0.01)

    anyio.run(lambda: build_server(fake_pipeline).run_stdio_async(
        stdin(), anyio.wrap_file(stdout)))
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert sorted(str(r["id"]) for r in replies) == ["1", "2", *["None"] * len(BAD_IDS)]
    for reply in replies:
        if reply["id"] is None:
            assert reply["error"]["code"] == -32600, reply
            assert "must be a string or an integer" in reply["error"]["message"]


def test_a_body_not_sent_as_json_is_a_json_rpc_415(fake_pipeline: Pipeline) -> None:
    """The SDK's transport security answered a POST whose Content-Type is not JSON with a
    plain-text 400 "Invalid Content-Type header", which a JSON-RPC client cannot read:
    it is 415 with a JSON-RPC error (-32600, id null) in one line."""
    import json

    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from qa.api import create_api

    app = create_api(fake_pipeline)
    app.mount("/", PlainTextResponse("not found", 404))
    message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    with TestClient(app, base_url="http://127.0.0.1:7860") as web:
        for kind in ("text/plain", "application/x-www-form-urlencoded", ""):
            r = web.post("/mcp", content=message, headers={
                "Accept": "application/json, text/event-stream", "Content-Type": kind})
            assert r.status_code == 415, (kind, r.text)
            assert r.json() == {"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": "Unsupported Media Type: send the JSON-RPC "
                "message with the header Content-Type: application/json"}}
        r = web.post("/mcp", content=message, headers={
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json; charset=utf-8"})
        assert r.status_code == 200 and r.json()["id"] == 1, r.text


def test_a_json_content_type_in_capitals_is_json_at_mcp_too(fake_pipeline: Pipeline) -> None:
    """Media types are case-insensitive (RFC 9110): `/api` and `/v1` read a body sent as
    `Application/JSON`, but `/mcp` answered it 415 "Content-Type must be
    application/json" (the SDK compares it as written). It is read there too."""
    import json

    from fastapi.testclient import TestClient

    from qa.api import create_api

    message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    with TestClient(create_api(fake_pipeline), base_url="http://127.0.0.1:7860") as web:
        for kind in ("APPLICATION/JSON", "Application/Json; Charset=UTF-8"):
            r = web.post("/mcp", content=message, headers={
                "Accept": "application/json, text/event-stream", "Content-Type": kind})
            assert r.status_code == 200 and r.json()["id"] == 1, (kind, r.text)
            r = web.post("/api/retrieve", content=json.dumps({"question": "Iraq?"}),
                         headers={"Content-Type": kind})
            assert r.status_code == 200, (kind, r.text)


@pytest.mark.parametrize("base", ["http://[::1]", "http://localhost", "http://[::1]:7860"])
def test_every_loopback_name_reaches_mcp(fake_pipeline: Pipeline, base: str) -> None:
    """The server serves every loopback name (Host [::1], localhost, 127.0.0.1, with or
    without a port), but the SDK's own Host check listed [::1] only with a port: a
    loopback server on port 80 reached as http://[::1]/mcp got a plain-text 421 "Invalid
    Host header", which no JSON-RPC client reads. The page's own Origin passes too."""
    import json

    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from qa.api import create_api

    app = create_api(fake_pipeline)
    app.mount("/", PlainTextResponse("not found", 404))
    with TestClient(app, base_url=base) as web:
        r = web.post("/mcp", content=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), headers={
            "content-type": "application/json", "origin": base,
            "accept": "application/json, text/event-stream"})
        assert r.status_code == 200 and r.json()["id"] == 1, r.text


def _stdio_lines(*messages: dict[str, Any]) -> list[str]:
    import json

    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    return [json.dumps(m) + "\n" for m in (initialize, initialized, *messages)]


def _stdio_replies(pipeline: Pipeline, lines: list[str]) -> tuple[dict[Any, Any], str]:
    """Serve `lines` on stdio, stdin ending at once after them (as a pipe from printf does):
    the replies by id, and stdout as written."""
    import io
    import json

    stdout = io.StringIO()

    async def stdin() -> AsyncIterator[str]:
        for line in lines:
            yield line

    anyio.run(lambda: build_server(pipeline).run_stdio_async(stdin(), anyio.wrap_file(stdout)))
    return {r["id"]: r for r in map(json.loads, stdout.getvalue().splitlines())}, \
        stdout.getvalue()


def test_stdio_answers_every_request_read_before_stdin_ends(fake_pipeline: Pipeline) -> None:
    """`printf '<initialize>\\n<initialized>\\n<tools/call>\\n' | qa mcp` printed the reply
    to initialize only: at the end of stdin the SDK cancelled the calls still running and
    the process ended without a word for them. Every request read is answered first."""
    import time

    slow = fake_pipeline.list_documents

    def slowly() -> Any:
        time.sleep(0.2)  # still running when stdin ends
        return slow()

    fake_pipeline.list_documents = slowly  # type: ignore[method-assign]
    calls = [{"jsonrpc": "2.0", "id": n, "method": "tools/call",
              "params": {"name": name, "arguments": arguments}}
             for n, name, arguments in ((2, "list_documents", {}),
                                        (3, "retrieve", {"question": "troops", "k": 2}),
                                        (4, "ask", {"question": "   "}))]
    replies, written = _stdio_replies(fake_pipeline, _stdio_lines(*calls))
    assert sorted(replies) == [1, 2, 3, 4], written
    assert replies[2]["result"]["structuredContent"]["documents"]
    assert len(replies[3]["result"]["structuredContent"]["hits"]) == 2
    assert replies[4]["result"]["isError"] is True


def _initialize(version: object, **params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}, **params}}


BAD_INITIALIZE: list[tuple[dict[str, Any], str]] = [
    ({"jsonrpc": "2.0", "id": 1, "method": "initialize"}, "params: Field required"),
    ({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
     "params.protocolVersion: Field required"),
    (_initialize(20250618), "params.protocolVersion: Input should be a valid string"),
]


def test_an_unknown_protocol_version_is_negotiated_on_a_real_http_server(
        fake_pipeline: Pipeline) -> None:
    """A client stamping its MCP-Protocol-Version header on `initialize` (as it does on
    every request) with a version qa does not speak got 400 and -32602 "params._meta must
    be an object carrying the required 'io.modelcontextprotocol/protocolVersion' and ...":
    MCP's lifecycle says the server answers with a version it supports. Any other request
    with such a header is 400 naming the versions spoken; a malformed `initialize` is
    -32602 naming the field, where the SDK said only "Invalid request parameters"."""
    import json

    from qa.api import create_api
    from tests.test_documents_api import served

    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    with served(create_api(fake_pipeline)) as url, httpx.Client(base_url=url,
                                                                timeout=30) as web:
        for version, header in (("1999-01-01", "1999-01-01"), ("2099-12-31", "2099-12-31"),
                                ("1999-01-01", None), ("2026-07-28", "2026-07-28"),
                                ("2025-06-18", "2025-06-18")):
            extra = {"MCP-Protocol-Version": header} if header else {}
            r = web.post("/mcp", headers={**headers, **extra},
                         content=json.dumps(_initialize(version)))
            assert r.status_code == 200, (version, r.text)
            want = version if version == "2025-06-18" else "2025-11-25"
            assert r.json()["result"]["protocolVersion"] == want, r.text
        r = web.post("/mcp", headers={**headers, "MCP-Protocol-Version": "1999-01-01"},
                     content=json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}))
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert r.json()["id"] == 5 and error["code"] == -32600
        assert "unsupported protocol version '1999-01-01'" in error["message"]
        assert "_meta" not in error["message"] and "2025-11-25" in error["message"]
        assert error["data"]["requested"] == "1999-01-01"
        for body, expected in BAD_INITIALIZE:
            r = web.post("/mcp", headers=headers, content=json.dumps(body))
            error = r.json()["error"]
            assert error["code"] == -32602 and expected in error["message"], r.text
            assert error["message"].startswith("Invalid params for initialize: ")


def test_an_unknown_protocol_version_is_negotiated_over_stdio(fake_pipeline: Pipeline) -> None:
    """Over stdio too: an unknown version is answered with one qa speaks, a malformed
    `initialize` names the field, and a request before `initialize` says so (the SDK said
    "Invalid request parameters" to all three)."""
    import json

    lines = [json.dumps(m) + "\n" for m in (
        {"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
        *(dict(body, id=10 + n) for n, (body, _) in enumerate(BAD_INITIALIZE)),
        _initialize("1999-01-01"))]
    replies, _ = _stdio_replies(fake_pipeline, lines)
    assert replies[1]["result"]["protocolVersion"] == "2025-11-25", replies
    assert "not initialized; send initialize" in replies[9]["error"]["message"]
    for n, (_, expected) in enumerate(BAD_INITIALIZE):
        assert replies[10 + n]["error"]["code"] == -32602
        assert expected in replies[10 + n]["error"]["message"], replies[10 + n]


def test_stdio_skips_a_line_over_the_size_limit_without_holding_it(
        fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa mcp` read each line whole, however long: a 300 MB line without a newline held
    840 MB. A line over QA_MAX_BODY_BYTES is read in pieces of at most that, skipped, and
    answered -32600; the next message is served as usual."""
    import io
    import json
    import types

    limit = 4096
    fed: list[int] = []

    class Spy(io.BytesIO):
        def readline(self, size: int | None = -1) -> bytes:
            line = super().readline(size)
            fed.append(len(line))
            return line

    body = b"".join(line.encode() for line in _stdio_lines(
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
    first, rest = body.split(b"\n", 1)
    stdin = Spy(first + b"\n" + b"x" * (10 * limit) + b"\n" + rest)
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=stdin))
    server = build_server(fake_pipeline)
    server.max_line_bytes = limit
    stdout = io.StringIO()
    anyio.run(lambda: server.run_stdio_async(None, anyio.wrap_file(stdout)))
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert sorted(str(r["id"]) for r in replies) == ["1", "2", "None"], replies
    [error] = [r["error"] for r in replies if r["id"] is None]
    assert error["code"] == -32600 and "size limit" in error["message"]
    assert max(fed) <= limit + 1


def test_stdio_answers_a_line_that_is_not_utf8_with_a_parse_error(
        fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line of `qa mcp`'s stdin that is not UTF-8 (a client that wrote Latin-1) was decoded
    with replacement characters: a call whose question held "café" in Latin-1 was answered,
    as the question "caf\ufffd". JSON is UTF-8 (RFC 8259): such a line is JSON-RPC's parse
    error (-32700, id null, one line saying why), and the server goes on serving."""
    import io
    import json
    import types

    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "ask", "arguments": {"question": "Who is the café's owner?"}}}
    latin1 = json.dumps(call, ensure_ascii=False).encode("latin-1") + b"\n"
    lines = _stdio_lines(call, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    body = (lines[0] + lines[1]).encode() + b"\xff\xfe\x00garbage\n" + latin1 + lines[3].encode()
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(buffer=io.BytesIO(body)))
    stdout = io.StringIO()
    anyio.run(lambda: build_server(fake_pipeline).run_stdio_async(None, anyio.wrap_file(stdout)))
    replies = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert sorted(str(r["id"]) for r in replies) == ["1", "2", "None", "None"], replies
    assert [r["error"] for r in replies if r["id"] is None] == [
        {"code": -32700, "message": "Parse error: the message is not UTF-8 text"}] * 2
    [tools] = [r["result"]["tools"] for r in replies if r["id"] == 2]
    assert {t["name"] for t in tools} == {"ask", "retrieve", "list_documents"}


def test_a_byte_order_mark_before_the_json_is_ignored(fake_pipeline: Pipeline) -> None:
    """A UTF-8 byte order mark before the message (an editor's or a Windows tool's) was a
    parse error over stdio and HTTP, where /api/ask and /v1 ignore it as JSON allows."""
    import json

    from fastapi.testclient import TestClient
    from starlette.responses import PlainTextResponse

    from qa.api import create_api

    app = create_api(fake_pipeline)
    app.mount("/", PlainTextResponse("not found", 404))
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    with TestClient(app, base_url="http://127.0.0.1:7860") as web:
        r = web.post("/mcp", content=b"\xef\xbb\xbf" + json.dumps(message).encode(), headers={
            "Accept": "application/json, text/event-stream", "Content-Type": "application/json"})
        assert r.status_code == 200 and r.json()["id"] == 1, r.text
    lines = _stdio_lines({**message, "id": 2})
    lines[0] = "\ufeff" + lines[0]
    replies, _ = _stdio_replies(fake_pipeline, lines)
    assert sorted(replies) == [1, 2] and "result" in replies[2], replies


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_qa_mcp_follows_documents_added_meanwhile(
        fake_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa mcp` answered from the index it loaded for as long as it ran: a document added
    meanwhile by `qa add` (another process) was neither listed nor quoted until a restart,
    where `qa serve` follows its files. It watches them as the server does."""
    import dataclasses
    import io
    import json
    import time

    from qa.mcp_server import QAServer, run_stdio

    settings = dataclasses.replace(fake_pipeline.settings, refresh_seconds=0.05)
    served = Pipeline(settings, fake_pipeline.embedder)
    served.index  # noqa: B018 - built, as `qa index` left it
    note = tmp_path / "tides.txt"
    note.write_text("Tide notes\n\nThe harbour master rang the tide bell at noon.\n",
                    encoding="utf-8")
    listing = {"jsonrpc": "2.0", "method": "tools/call",
               "params": {"name": "list_documents", "arguments": {}}}
    lines = _stdio_lines({**listing, "id": 2})
    stdout = io.StringIO()

    async def stdin() -> AsyncIterator[str]:
        for line in lines:
            yield line
        while stdout.getvalue().count("\n") < 2:
            await anyio.sleep(0.01)
        other = Pipeline(settings, fake_pipeline.embedder)  # `qa add`, another process
        await anyio.to_thread.run_sync(other.add_documents, [note])
        await anyio.sleep(0.5)
        yield json.dumps({**listing, "id": 3}) + "\n"

    def run(self: QAServer, transport: str) -> None:  # the real loop, on these streams
        anyio.run(lambda: self.run_stdio_async(stdin(), anyio.wrap_file(stdout)))

    monkeypatch.setattr(QAServer, "run", run)
    monkeypatch.setattr("qa.mcp_server.Pipeline", lambda _: served)  # the fake embedder
    started = time.monotonic()
    run_stdio(settings)
    replies = {r["id"]: r for r in map(json.loads, stdout.getvalue().splitlines())}
    ids = [[d["id"] for d in replies[n]["result"]["structuredContent"]["documents"]]
           for n in (2, 3)]
    assert "tides" not in ids[0] and "tides" in ids[1], ids
    assert time.monotonic() - started < 30
