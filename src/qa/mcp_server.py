"""The MCP edge: qa's tools for AI agents, over stdio (`qa mcp`) and streamable HTTP (`/mcp`).

In: MCP tool calls. Out: tool results whose text is what a person reads (the cited answer
with its Sources, or JSON) and whose structured content is what a program reads (citations
with document ids, offsets, titles and pages).

    ask(question, history?, doc_ids?)   a cited answer, or an honest abstention
    retrieve(question, k?, doc_ids?)    the best passages, with offsets into their documents
    list_documents()                    what the index holds (as GET /api/documents says it)

Built on the official SDK (`mcp.server.mcpserver.MCPServer`). Bad input (a blank question, k
out of range, a wrong type) comes back as a tool error with a one-line message, never a
crash; a message that is not JSON-RPC, or a request whose id is not a string or an integer,
gets JSON-RPC's one-line error reply on both transports, never silence: with the message's
id when it has one that MCP allows, else id null.
An `initialize` naming a protocol version qa does not speak is answered with one it does
(MCP's version negotiation), over HTTP whatever its MCP-Protocol-Version header says; a
malformed one is -32602 naming the field.
Over HTTP the endpoint is stateless JSON (no sessions to keep: POST only, 405 to GET and
DELETE), sits behind the same optional bearer token as the rest of the API, and checks
Host/Origin against loopback unless a token is set (a token is required beyond loopback, and
then it is the protection). The server's own refusals there (401, 405, 413, ...) are JSON-RPC
errors with id null, as the SDK's are (`qa.api.error_body`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

import anyio
import pydantic_core
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import SessionMessage
from mcp.types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    CallToolResult,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    TextContent,
    jsonrpc_message_adapter,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.asgi import read_body, replaying
from qa.config import MAX_BODY_BYTES, MAX_HISTORY, MAX_K, MAX_QUESTION_CHARS, Settings
from qa.errors import QAError, clipped, quoted
from qa.log import log, one_line_handler
from qa.pipeline import Pipeline, check_k
from qa.schema import clean_question, clean_turn, documents_json
from qa.security import require_token
from qa.sources import answer_with_sources, cited_answer_json, hits_json
from qa.store import claim_index, release_index
from qa.types import Turn

INSTRUCTIONS = (
    "qa answers questions about a fixed set of documents by quoting them verbatim. Every "
    "quote carries a [n] marker and a citation (document id, character offsets, title, page). "
    "When the documents do not hold the answer, `ask` says so (abstained: true) instead of "
    "guessing: report that rather than answering from memory. Use `retrieve` to read the "
    "passages around a topic and `list_documents` to see what can be asked about."
)


class EarlierTurn(BaseModel):
    """An earlier exchange: the question and, if known, the answer that was given (one that
    says nothing, "" or "...", is not known: qa answers that question again)."""

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str | None = None


Question = Annotated[str, Field(description=f"the question, 1 to {MAX_QUESTION_CHARS} characters")]
History = Annotated[
    list[str | EarlierTurn] | None,
    Field(description="earlier turns of the conversation, oldest first: questions, or "
                      "{question, answer} objects; a follow-up such as 'what did he say "
                      f"next?' is read in their light (at most {MAX_HISTORY} are used)",
          max_length=200),
]


def _not_a_boolean(value: Any) -> Any:
    """pydantic reads true as 1: `"k": true` searched one passage, silently."""
    if isinstance(value, bool):
        raise ValueError(f"k is a number of passages, 1 to {MAX_K}, not {str(value).lower()}")
    return value


# The bounds on the number itself, so the published schema says them ("maximum": 20)
K = Annotated[Annotated[int, Field(ge=1, le=MAX_K)] | None, BeforeValidator(_not_a_boolean),
              Field(description=f"how many passages, 1 to {MAX_K} (default 5)")]
DocIds = Annotated[
    list[StrictStr] | None,
    Field(description="only these documents (ids from list_documents); leave it out to use "
                      "them all: an empty list or an unknown id is an error",
          max_length=1000),
]


def _result(text: str, structured: Mapping[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=dict(structured))


@contextmanager
def _as_tool_errors() -> Iterator[None]:
    """qa's own errors become tool errors: one line, for the model to read and correct."""
    try:
        yield
    except QAError as exc:
        raise ToolError(str(exc)) from None


def _turns(history: list[str | EarlierTurn] | None) -> list[Turn]:
    """The earlier turns, each checked as the HTTP API checks it (`clean_turn`)."""
    turns = []
    for n, item in enumerate(history or [], start=1):
        turn = Turn(item) if isinstance(item, str) else Turn(item.question, item.answer)
        turns.append(Turn(clean_turn(turn.question, n), turn.answer))
    return turns[-MAX_HISTORY:]


def _one_line(error: ValidationError) -> str:
    """pydantic's report in one line, one clause per argument (union branches merged)."""
    found: dict[str, list[str]] = {}
    for e in error.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if not str(p).startswith(
            ("str", "list[", "EarlierTurn", "int", "none")))
        messages = found.setdefault(where or "arguments", [])
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")  # qa's own
        if message not in messages:
            messages.append(message)
    return "; ".join(f"{where}: {' or '.join(msgs)}" for where, msgs in list(found.items())[:3])


class QAServer(MCPServer):
    """MCPServer whose tool errors read `ask: the question is empty`, whose argument
    errors are one line (the SDK passes on pydantic's multi-line report) and name unknown
    arguments (the SDK ignores them), whose malformed requests (an `initialize` without a
    string protocolVersion, a request before `initialize`) are told what is wrong
    (`_clear_request_errors`), and whose stdio loop answers a line that is not JSON-RPC."""

    max_line_bytes = MAX_BODY_BYTES  # one message over stdio, as one HTTP body

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        before = list(logging.root.handlers)
        super().__init__(*args, **kwargs)
        self._lowlevel_server.middleware.append(_clear_request_errors)
        added = [h for h in logging.root.handlers if h not in before]
        if added:  # the SDK's `logging.basicConfig`: a RichHandler that wraps each record
            for handler in added:  # over lines (any library's warning, in every process
                logging.root.removeHandler(handler)  # that built a server)
            logging.root.addHandler(one_line_handler())

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Any = None) -> Any:
        tools = await self.list_tools()
        tool = next((t for t in tools if t.name == name), None)
        if tool is None:  # the SDK's "Unknown tool: <name>" echoed a name of any length
            raise ToolError(f"unknown tool {quoted(name)}; qa's tools are "
                            f"{', '.join(t.name for t in tools)}")
        known = tool.input_schema.get("properties") or {}
        unknown = sorted(set(arguments or {}) - set(known))
        if unknown:  # the SDK would drop them: a misspelt `k` must not pass unnoticed
            raise ToolError(f"invalid arguments for {name}: unknown "
                            f"{'argument' if len(unknown) == 1 else 'arguments'} "
                            f"{', '.join(map(repr, unknown))}; it takes "
                            f"{', '.join(known) or 'none'}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"invalid arguments for {name}: "
                                f"{_one_line(exc.__cause__)}") from None
            prefix = f"Error executing tool {name}: "
            if isinstance(exc, UnexpectedToolError) or not str(exc).startswith(prefix):
                raise
            raise ToolError(f"{name}: {str(exc).removeprefix(prefix)}") from None

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None,
                         context: Any = None) -> Any:
        """qa has no prompts: `prompts/get` is INVALID_PARAMS naming the prompt, where the
        SDK raised a ValueError that its dispatcher logged with a traceback and answered with
        error code 0."""
        if not any(p.name == name for p in await self.list_prompts()):
            raise MCPError(INVALID_PARAMS, f"unknown prompt {quoted(name)}: qa offers no prompts; "
                                           "its tools are ask, retrieve and list_documents")
        return await super().get_prompt(name, arguments, context)

    async def run_stdio_async(self, stdin: Any = None, stdout: Any = None) -> None:
        """The SDK's stdio loop (over `stdin`/`stdout` if given: anyio text files), but a
        line that is not a JSON-RPC message gets JSON-RPC's error reply (-32700 parse error,
        -32600 invalid request, id null), where the SDK would drop it and leave the client
        waiting; so does a request whose id is not a string or an integer (`bad_id`),
        which the SDK read as a notification and never answered. At the end of stdin every
        request read is answered before the loop ends (for at most DRAIN_SECONDS): the SDK
        cancelled the calls still running, so `printf '<initialize>...<tools/call>' | qa
        mcp` printed no reply to the call."""
        lines = _screened_lines(stdin if stdin is not None
                                else _stdin_lines(self.max_line_bytes))
        # The SDK types `stdin` as an anyio file; it only iterates its lines.
        async with stdio_server(lines, stdout) as (  # type: ignore[arg-type]
                read_stream, write_stream):
            forward, messages = anyio.create_memory_object_stream[SessionMessage | Exception]()
            replies, outgoing = anyio.create_memory_object_stream[SessionMessage]()
            waiting = _Unanswered()

            async def screen() -> None:
                async with forward:
                    async for item in read_stream:
                        if isinstance(item, Exception):
                            if (reply := _rejection(item)) is not None:
                                await write_stream.send(SessionMessage(reply))
                        else:
                            waiting.read(item.message)
                            await forward.send(item)
                    with anyio.move_on_after(DRAIN_SECONDS):
                        await waiting.answered()

            async def relay() -> None:
                async with outgoing:
                    async for item in outgoing:
                        waiting.replied(item.message)
                        await write_stream.send(item)

            try:
                async with anyio.create_task_group() as sending:
                    sending.start_soon(relay)
                    async with anyio.create_task_group() as reading:
                        reading.start_soon(screen)
                        lowlevel = self._lowlevel_server
                        await lowlevel.run(messages, replies,
                                           lowlevel.create_initialization_options())
                        reading.cancel_scope.cancel()
            finally:
                await write_stream.aclose()


DRAIN_SECONDS = 120.0  # at the end of stdin, the longest wait for the replies still due


class _Unanswered:
    """The requests read over stdio that have no reply yet, by id."""

    def __init__(self) -> None:
        self._due: dict[tuple[str, object], int] = {}
        self._changed = anyio.Event()

    @staticmethod
    def _key(request_id: object) -> tuple[str, object]:
        return type(request_id).__name__, request_id  # 1 and "1" are two ids

    def read(self, message: object) -> None:
        if isinstance(message, JSONRPCRequest):
            key = self._key(message.id)
            self._due[key] = self._due.get(key, 0) + 1
        elif isinstance(message, JSONRPCNotification) and message.method == (
                "notifications/cancelled"):  # the SDK never answers a cancelled request
            self._settle((message.params or {}).get("requestId"))

    def replied(self, message: object) -> None:
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            self._settle(message.id)

    def _settle(self, request_id: object) -> None:
        key = self._key(request_id)
        if key in self._due:
            self._due[key] -= 1
            if not self._due[key]:
                del self._due[key]
            self._changed.set()

    async def answered(self) -> None:
        """Return once every request read has its reply."""
        while self._due:
            self._changed = anyio.Event()
            await self._changed.wait()


MAX_ERROR_CHARS = 300  # an error's message; what it quotes of the request, 100 of them
NOT_INITIALIZED = ("Invalid request parameters: the connection is not initialized; send "
                   "initialize, then notifications/initialized, first")


async def _clear_request_errors(ctx: ServerRequestContext[Any, Any],
                                call_next: CallNext) -> HandlerResult:
    """The SDK's errors for malformed requests, told what is wrong (same codes): it
    answered an `initialize` whose params were missing or mistyped, and any request
    before `initialize` over stdio, with -32602 "Invalid request parameters" and nothing
    more (MCP's lifecycle: `initialize` needs protocolVersion, capabilities and
    clientInfo). An `initialize` naming a version the server does not speak is not an
    error: the SDK answers with the newest version it speaks, as the spec asks."""
    try:
        return await call_next(ctx)
    except ValidationError as exc:
        raise MCPError(INVALID_PARAMS, f"Invalid params for {ctx.method}: "
                                       f"{_one_line(exc)}") from None
    except MCPError as exc:
        error = exc.error
        if (error.code == INVALID_PARAMS and error.message == "Invalid request "
                "parameters" and not error.data and ctx.method != "initialize"):
            raise MCPError(INVALID_PARAMS, NOT_INITIALIZED) from None
        data = error.data
        if isinstance(data, dict):
            data = {k: clipped(v) if isinstance(v, str) else v for k, v in data.items()}
        elif isinstance(data, str):
            data = clipped(data)
        if data != error.data or len(error.message) > MAX_ERROR_CHARS:
            # what the SDK echoes of a request (a method, a resource's uri), not all of it
            raise MCPError(error.code, clipped(error.message, MAX_ERROR_CHARS), data) from None
        raise


BAD_ID = ("Invalid Request: the id must be a string or an integer (in MCP null, 1.5, 1.0, "
          "true, an object or an array is no id)")


def bad_id(message: object) -> bool:
    """Whether `message` (parsed JSON) is a request whose `id` MCP does not allow: not a
    string or an integer (JSON-RPC 2.0 allows null and discourages fractions; MCP allows
    neither, and the SDK's `RequestId` is a strict int or a str). The SDK then read it as
    a notification, the id dropped (modelcontextprotocol/python-sdk#2057): over HTTP a 202
    and no reply, over stdio nothing at all. JSON-RPC wants -32600 with id null."""
    if not isinstance(message, dict) or "method" not in message or "id" not in message:
        return False
    found = message["id"]
    return not isinstance(found, str) and (not isinstance(found, int) or isinstance(found, bool))


def request_id(message: object) -> str | int | None:
    """The id of `message` (parsed JSON) when it has one MCP allows, else None: the id of a
    reply to a message that is no valid request. JSON-RPC 2.0 answers with id null only
    when the id cannot be detected; `{"jsonrpc": "2.0", "id": 12, "params": "str", ...}`
    (or `"jsonrpc": "1.0"`) was answered with id null, which its client cannot match."""
    found = message.get("id") if isinstance(message, dict) else None
    return found if isinstance(found, str | int) and not isinstance(found, bool) else None


def bad_id_reply() -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=None,
                        error=ErrorData(code=INVALID_REQUEST, message=BAD_ID))


async def _stdin_lines(limit: int) -> AsyncIterator[str]:
    """The process's stdin as UTF-8 lines (what the SDK reads when given none), each read
    in at most `limit` bytes: a longer one is skipped as it arrives and replaced by
    _TOO_LONG_LINE (the SDK read any line whole: a 300 MB one held 840 MB); one that is not
    UTF-8 by _NOT_UTF8_LINE (JSON is UTF-8: decoded with replacement characters, a Latin-1
    "café" was asked as "caf\ufffd")."""
    source = sys.stdin.buffer
    while line := await anyio.to_thread.run_sync(source.readline, limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := await anyio.to_thread.run_sync(source.readline, limit)) and (
                    not rest.endswith(b"\n")):
                pass
            yield _TOO_LONG_LINE + "\n"
        else:
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError:
                yield _NOT_UTF8_LINE + "\n"


# What `_screened_lines` hands the SDK for a request with a bad id: not JSON, so the SDK
# passes on its parse error, which `_rejection` answers in turn, in order with the rest.
_BAD_ID_LINE = "qa: a request with a bad id"
_TOO_LONG_LINE = "qa: a message over the size limit"  # likewise, from `_stdin_lines`
_NOT_UTF8_LINE = "qa: a message that is not UTF-8"  # likewise
NOT_UTF8 = "Parse error: the message is not UTF-8 text"
# ...and for a message with a good id that is no valid message: the id follows, as JSON
_INVALID_LINE = "qa: an invalid message with the id "
TOO_LONG = ("Invalid Request: the message is over the size limit (QA_MAX_BODY_BYTES); it "
            "was not read")


async def _screened_lines(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """`lines`, a request with a bad id (`bad_id`) replaced by _BAD_ID_LINE, a message
    with a good id that is no valid message by _INVALID_LINE and its id (the SDK's error
    does not say it), and a byte order mark before the first left out (a parse error,
    where /api/ask and /v1 ignore it, as JSON allows)."""
    first = True
    async for line in lines:
        if first:
            line, first = line.removeprefix("\ufeff"), False
        try:
            message = pydantic_core.from_json(line)
        except ValueError:
            message = None  # the SDK answers it (parse error)
        if bad_id(message):
            yield _BAD_ID_LINE + "\n"
            continue
        if (found := request_id(message)) is not None:
            try:
                jsonrpc_message_adapter.validate_json(line, by_name=False)  # as the SDK does
            except ValidationError:
                yield _INVALID_LINE + json.dumps(found) + "\n"
                continue
        yield line


def _rejection(error: Exception) -> JSONRPCError | None:
    """JSON-RPC's reply to a line that is not valid JSON (-32700) or not a message (-32600);
    None for a blank line (nothing was sent)."""
    found = error.errors() if isinstance(error, ValidationError) else []
    if any(str(e.get("input", "")).strip() == _BAD_ID_LINE for e in found):
        return bad_id_reply()
    marked = next((str(e["input"]).strip() for e in found if str(e.get("input", "")).strip(
        ).startswith(_INVALID_LINE)), None)
    if marked is not None:
        return JSONRPCError(jsonrpc="2.0", id=json.loads(marked.removeprefix(_INVALID_LINE)),
                            error=ErrorData(code=INVALID_REQUEST, message="Invalid Request"))
    if any(str(e.get("input", "")).strip() == _TOO_LONG_LINE for e in found):
        return JSONRPCError(jsonrpc="2.0", id=None,
                            error=ErrorData(code=INVALID_REQUEST, message=TOO_LONG))
    if any(str(e.get("input", "")).strip() == _NOT_UTF8_LINE for e in found):
        return JSONRPCError(jsonrpc="2.0", id=None,
                            error=ErrorData(code=PARSE_ERROR, message=NOT_UTF8))
    if any(e["type"] == "json_invalid" for e in found):
        if all(isinstance(e.get("input"), str) and not e["input"].strip() for e in found):
            return None
        return JSONRPCError(jsonrpc="2.0", id=None,
                            error=ErrorData(code=PARSE_ERROR, message="Parse error"))
    return JSONRPCError(jsonrpc="2.0", id=None,
                        error=ErrorData(code=INVALID_REQUEST, message="Invalid Request"))


def build_server(pipeline: Pipeline) -> QAServer:
    """The MCP server with qa's three tools over `pipeline`."""
    server = QAServer("qa", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING")
    server.max_line_bytes = pipeline.settings.max_body_bytes

    @server.tool(title="Ask the documents")
    def ask(question: Question, history: History = None,
            doc_ids: DocIds = None) -> CallToolResult:
        """Answer a question from the documents (or only those in doc_ids), quoting them with
        [n] citations, or say plainly that they do not hold the answer. The text is the
        answer followed by its Sources; the structured result has each citation's document
        id, offsets and quote."""
        with _as_tool_errors():
            text = clean_question(question)
            answer, index = pipeline.ask_with_index(text, _turns(history), doc_ids=doc_ids)
            documents = index.documents
        return _result(answer_with_sources(answer, documents),
                       cited_answer_json(answer, documents))

    @server.tool(title="Retrieve passages")
    def retrieve(question: Question, k: K = None, doc_ids: DocIds = None) -> CallToolResult:
        """The passages that best match a question (in the documents of doc_ids, if given),
        best first, each with its document id, character offsets
        (document.text[start:end] == text), title, page and best sentence."""
        with _as_tool_errors():
            hits, index = pipeline.retrieve_with_index(clean_question(question),
                                                       None if k is None else check_k(k),
                                                       doc_ids)
            found = hits_json(hits, index.documents)
        return _result(json.dumps(found, ensure_ascii=False), {"hits": found})

    @server.tool(title="List documents")
    def list_documents() -> CallToolResult:
        """The documents qa can answer from, as GET /api/documents and `qa list --json` list
        them: id, title, kind, source (seed or upload), name (the name it was added under),
        size in bytes, pages (0: none), chars, added_at; and the files skipped, with why."""
        with _as_tool_errors():
            listed = documents_json(*pipeline.library())
        return _result(json.dumps(listed, ensure_ascii=False), listed)

    return server


# -- stdio -----------------------------------------------------------------------------------


def warm(pipeline: Pipeline) -> None:
    """Load (or build) the index now, and say the files it skipped: a reused index's build
    said them in another process (a mistyped --seeds served an empty library unsaid)."""
    from qa.loaders.library import report

    try:
        pipeline.index  # noqa: B018 - load (or build) now
        report(pipeline.problems())
        log("mcp: ready")
    except Exception as exc:  # noqa: BLE001 - the tools report it on their first call
        log(f"mcp: {exc}")


def run_stdio(settings: Settings) -> None:
    """`qa mcp`: serve the tools over stdin/stdout until the client closes them. The model and
    index load in the background at once, so the first call waits less. The files are
    followed as `qa serve` follows them (`Pipeline.watch`): a document added by `qa add` or
    the HTTP API is listed and quoted, and a changed one is never quoted, without a restart
    (the server answered from the index it had loaded for as long as it ran)."""
    claim_index(settings)  # another process on the index folder reads the same folders
    pipeline = Pipeline(settings)
    server = build_server(pipeline)
    pipeline.watch()
    threading.Thread(target=warm, args=(pipeline,), name="qa-mcp-warm-up", daemon=True).start()
    try:
        server.run("stdio")
    finally:
        pipeline.stop_indexing()
        pipeline.unwatch()
        release_index(settings)


# -- streamable HTTP, mounted on the API server ----------------------------------------------


class _Forward(Response):
    """A response that hands the request over to an ASGI app (the SDK's HTTP transport), so
    the route keeps FastAPI's dependencies (the token) in front of it. A body that is JSON
    but not a JSON-RPC message (an array, null, a wrong `jsonrpc`) is answered as stdio
    answers it (`_rejection`: -32600 Invalid Request, one line): the SDK's reply was
    -32602 with pydantic's report of every union branch, a dozen lines echoing the input.
    A request whose id MCP does not allow (`bad_id`) is answered here, before the SDK sees
    it: -32600, id null, where the SDK answered 202 and nothing; so is a body that is not
    sent as JSON (415, where the SDK answered a plain-text 400). An MCP-Protocol-Version
    header naming a version the SDK does not negotiate is dropped from an `initialize`
    (the handshake decides the version) and answered 400 `_unsupported_version` on any
    other request without the 2026 envelope. The body is read whole first
    (`qa.api.Hardening` caps it) and handed on as it came."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__()
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive)  # capped by `qa.api.Hardening`
        if raw is None:
            return  # the client left
        body = raw.removeprefix(b"\xef\xbb\xbf")  # a BOM, as /api/ask ignores it
        kind = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
        if not kind.lower().startswith(b"application/json"):  # as the SDK decides it
            await _reply(send, 415, JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(
                code=INVALID_REQUEST, message=NOT_JSON_RPC_TYPE)))
            return
        media, sep, params = kind.partition(b";")  # case-insensitive (RFC 9110); the SDK's
        if media != media.lower():  # check is not: `Application/JSON` was a 415 there
            scope = {**scope, "headers": [
                (k, media.strip().lower() + sep + params if k == b"content-type" else v)
                for k, v in scope["headers"]]}
        try:
            parsed = pydantic_core.from_json(body)
        except ValueError:
            parsed = None  # the SDK answers it (parse error)
        if bad_id(parsed):
            await _reply(send, 400, bad_id_reply())
            return
        version = next((v.decode("latin-1") for k, v in scope["headers"]
                        if k == _VERSION_HEADER), None)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            if _is_initialize(parsed):  # the handshake negotiates; no header decides it
                scope = {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                              if k != _VERSION_HEADER]}
            elif version not in MODERN_PROTOCOL_VERSIONS and not _has_envelope(parsed):
                await _reply(send, 400, _unsupported_version(version, parsed))
                return
        held: list[Message] = []

        async def screened(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                held.append(message)  # small: an error object; decided with its body
                return
            if held and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body"):
                    return
                start, *parts = held
                held.clear()
                body = b"".join(part.get("body", b"") for part in parts)
                body = _one_line_rejection(body, request_id(parsed))
                headers = [(k, v) for k, v in start.get("headers", [])
                           if k.lower() != b"content-length"]
                await send({**start, "headers": [
                    *headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, replaying(body, receive), screened)


_VERSION_HEADER = MCP_PROTOCOL_VERSION_HEADER.encode("ascii")


def _is_initialize(message: object) -> bool:
    return isinstance(message, dict) and message.get("method") == "initialize" and (
        "id" in message)


def _has_envelope(message: object) -> bool:
    """Whether `message` carries the per-request `params._meta` of MCP 2026-07-28 (the
    SDK judges its version itself, answering -32022 with the versions it serves)."""
    params = message.get("params") if isinstance(message, dict) else None
    return isinstance(params, dict) and isinstance(params.get("_meta"), dict)


def _unsupported_version(version: str, message: object) -> JSONRPCError:
    """MCP's answer to an MCP-Protocol-Version header naming a version the server does not
    speak (a 400, as the transport spec asks), in words: the SDK's was -32602 "params._meta
    must be an object carrying the required 'io.modelcontextprotocol/protocolVersion' and
    ..." for any request without the 2026 envelope, `initialize` included."""
    supported = [*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS]
    found = message.get("id") if isinstance(message, dict) else None
    error = ErrorData(code=INVALID_REQUEST, data={"supported": supported,
                                                  "requested": version[:100]},
                      message=(f"Bad Request: unsupported protocol version {quoted(version)} "
                               "in the MCP-Protocol-Version header; this server speaks "
                               f"{', '.join(HANDSHAKE_PROTOCOL_VERSIONS)} (agreed by "
                               f"initialize) and {', '.join(MODERN_PROTOCOL_VERSIONS)}"))
    return JSONRPCError(jsonrpc="2.0", id=found if isinstance(found, str | int) else None,
                        error=error)


_NOT_A_MESSAGE = "Validation error:"  # how the SDK's transport begins that reply
# The SDK's transport security answered a body of another type with a plain-text 400
# "Invalid Content-Type header", which no JSON-RPC client can read.
NOT_JSON_RPC_TYPE = ("Unsupported Media Type: send the JSON-RPC message with the header "
                     "Content-Type: application/json")


async def _reply(send: Send, status: int, error: JSONRPCError) -> None:
    body = error.model_dump_json(by_alias=True, exclude_unset=True).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _one_line_rejection(body: bytes, found: str | int | None = None) -> bytes:
    """The SDK's 400 reply, but for a body that is not a JSON-RPC message: -32600
    Invalid Request in one line, with the body's id `found` (`request_id`; null if it has
    none). Any other reply is kept as it is."""
    try:
        reply = json.loads(body)
        message = reply["error"]["message"]
    except (ValueError, TypeError, KeyError):
        return body
    if not isinstance(message, str) or not message.startswith(_NOT_A_MESSAGE):
        return body
    error = ErrorData(code=INVALID_REQUEST, message=(
        "Invalid Request: the body must be one JSON-RPC 2.0 message, an object with "
        '"jsonrpc": "2.0" and a "method" (batches are not supported)'))
    return JSONRPCError(jsonrpc="2.0", id=found, error=error).model_dump_json(
        by_alias=True, exclude_unset=True).encode()


def _transport_security() -> TransportSecuritySettings:
    # Host/Origin checks stop DNS rebinding against an open loopback server; with a token
    # (required beyond loopback) the token is the check, and any Host name must work.
    if os.environ.get("QA_API_TOKEN"):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        # each with any port and without one (port 80): "[::1]" alone was refused, a
        # plain-text 421 "Invalid Host header" that no JSON-RPC client reads
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost",
                       "[::1]"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*",
                         "http://127.0.0.1", "http://localhost", "http://[::1]"],
    )


def mcp_router(pipeline: Pipeline, path: str = "/mcp") -> APIRouter:
    """The tools over streamable HTTP at `path`, for `app.include_router`; the router's
    lifespan runs the SDK's session manager."""
    server = build_server(pipeline)
    transport = server.streamable_http_app(
        streamable_http_path=path, stateless_http=True, json_response=True,
        transport_security=_transport_security(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    router = APIRouter(lifespan=lifespan, dependencies=[Depends(require_token)])

    # POST only: stateless, the server has no stream to offer on GET (the spec's answer is 405;
    # the SDK's stateless transport would hold an empty event stream open) and no session to
    # end on DELETE.
    @router.api_route(path, methods=["POST"], tags=["mcp"],
                      response_model=None, include_in_schema=False)
    async def mcp(_: Request) -> Response:
        """The MCP streamable HTTP endpoint."""
        return _Forward(transport)

    return router
