"""The OpenAI-compatible edge: chat front ends and the `openai` client talk to qa unchanged.

In: OpenAI chat-completion requests. Out: OpenAI chat-completion responses whose content is
the cited answer followed by its Sources, plus the structured citations in fields standard
clients ignore (`choices[0].message.citations`, and the whole `qa ask --json` object as `qa`).

    POST /v1/chat/completions  {"model": "qa", "messages": [...], "stream"?: bool}
    GET  /v1/models            the one model, `qa`
    GET  /v1/models/{id}

The last message must be the user's: it is the question. Earlier user messages, each with the
assistant reply after it, are the conversation (`Turn`s), so follow-ups work as in the web
chat; a reply that cites nothing is not qa's and its answer is unknown (`conversation`).
`stream: true` sends the same content as server-sent `chat.completion.chunk` events
ending with `data: [DONE]`. Parameters qa has no use for (temperature, tools, n, ...) are
accepted and ignored. Every error is OpenAI's shape, `{"error": {"message", "type", "param",
"code"}}`, with a 4xx status for the client's mistakes (400 malformed, 401 token, 404 model) and
503 while the index cannot be loaded; the server's hardening (`qa.api.Hardening`: 400 host,
403 cross-site, 404 path, 405 method, 413 body, 415 compressed body) answers `/v1` in the
same shape.
Usage counts are words, not tokens: qa has no tokenizer of its own output.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import Annotated, Any, Literal

import anyio.lowlevel
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException

from qa.config import MAX_HISTORY
from qa.errors import (
    BadQuestion,
    IndexCorrupt,
    IndexMissing,
    IndexStale,
    ModelError,
    QAError,
    SeedError,
    ShuttingDown,
    quoted,
)
from qa.log import log
from qa.pipeline import Pipeline
from qa.schema import NOT_JSON, clean_question, earlier_question, not_json_type, unparsable
from qa.security import require_token
from qa.sources import answer_with_sources, cited_answer_json, without_sources
from qa.types import Answer, Document, Turn

MODEL_ID = "qa"
PREFIX = "/v1"
MAX_MESSAGES = 1000  # a long conversation is fine; only the last MAX_HISTORY turns are used
MAX_CONTENT_CHARS = 100_000  # one message (earlier replies carry their Sources lists)
WORDS_PER_CHUNK = 3  # streamed content pieces

_UNAVAILABLE = (IndexMissing, IndexCorrupt, IndexStale, ModelError, SeedError, ShuttingDown)


# -- requests --------------------------------------------------------------------------------


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are read."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: Annotated[str, Field(max_length=MAX_CONTENT_CHARS)] | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted, ignored

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: (Annotated[str, Field(max_length=MAX_CONTENT_CHARS)]
              | Annotated[list[ContentPart], Field(max_length=100)] | None) = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


class ChatRequest(BaseModel):
    """OpenAI's chat-completion request; fields qa does not use are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{
            "model": MODEL_ID,
            "messages": [
                {"role": "user", "content": "Who runs onboarding for new hires?"},
                {"role": "assistant", "content": "…"},
                {"role": "user", "content": "When do they get their laptop?"},
            ],
        }]},
    )

    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: StrictBool | None = False  # "yes" is refused, not read as true
    stream_options: StreamOptions | None = None
    # Sampling settings mean nothing to a quoting answerer and are ignored, but a value
    # OpenAI would refuse (-5 tokens, a temperature of NaN) is refused here too.
    max_tokens: StrictInt | None = Field(None, ge=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    # qa gives one answer to a question: `n: 2` was accepted and answered with one choice
    n: StrictInt | None = Field(None, description="how many choices: 1 (qa gives one answer)")

    # qa answers in text (quotes and their Sources): a client asking for JSON was sent text
    response_format: dict[str, Any] | None = Field(
        None, description='{"type": "text"} (qa answers in text), or left out')

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, wanted: dict[str, Any] | None) -> dict[str, Any] | None:
        kind = (wanted or {}).get("type", "text")
        if kind != "text":
            raise PydanticCustomError(
                "text_only", "qa answers in text (quotes and their Sources): the type must "
                "be 'text', got {kind}", {"kind": repr(kind)[:40]})
        return wanted

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n is not None and n != 1:
            raise PydanticCustomError(
                "one_choice", "qa gives one answer to a question: n must be 1, got {n}",
                {"n": n})
        return n


# -- errors ----------------------------------------------------------------------------------


def error_json(status: int, message: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object, for a response of `status`."""
    kind = ("invalid_request_error" if status < 500 else
            "service_unavailable" if status == 503 else "server_error")
    if status == 401:
        kind = "authentication_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(status: int, message: str, param: str | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error object as a response."""
    return JSONResponse(error_json(status, message, param, code), status, headers=headers)


def _param(loc: tuple[int | str, ...]) -> str | None:
    """The field an error is about, written as OpenAI does (`messages[0].content`); pydantic's
    union-branch tags in the location (`str`, `list[ContentPart]`, ...) are dropped."""
    out = ""
    for part in loc:
        if part in ("body", "query", "path"):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out:
            out = part
        elif not part.startswith(("str", "list[", "function-", "constrained-", "none")):
            out += f".{part}"
    return out or None


def _invalid(exc: RequestValidationError, content_type: str | None) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    param = _param(tuple(first.get("loc", ())))
    if not_json_type(errors, content_type):
        message = NOT_JSON
    elif first.get("type") == "json_invalid":
        message, param = "the body is not valid JSON", None
    elif param is None and first.get("type") == "missing":
        message = 'a JSON body is required, e.g. {"model": "qa", "messages": [...]}'
    else:
        message = f"{param or 'body'}: {first.get('msg', 'invalid')}"
    more = len({_param(tuple(e.get("loc", ()))) for e in errors}) - 1
    if more > 0:
        message += f" (and {more} more)"
    return error_response(400, message, param, "invalid_value")


def _status(exc: QAError) -> int:
    if isinstance(exc, BadQuestion):
        return 400
    return 503 if isinstance(exc, _UNAVAILABLE) else 500


class OpenAIRoute(APIRoute):
    """A route whose every failure, validation and token checks included, is OpenAI's error
    object (the app's own handlers answer `{"detail": ...}`, which OpenAI clients cannot read)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _invalid(exc, request.headers.get("content-type"))
            except HTTPException as exc:
                if exc.status_code == 400 and exc.__cause__ is not None:  # body unparsable
                    return error_response(400, unparsable(exc.__cause__), None, "invalid_value")
                code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(exc.status_code)
                return error_response(exc.status_code, str(exc.detail), None, code,
                                      dict(exc.headers or {}))
            except QAError as exc:
                return error_response(_status(exc), str(exc),
                                      "messages" if isinstance(exc, BadQuestion) else None)
            except Exception as exc:  # noqa: BLE001 - a bug: logged, never a traceback to clients
                log(f"internal error in {request.url.path}: {type(exc).__name__}: {exc}")
                return error_response(500, "internal error")

        return guarded


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


# -- conversation ----------------------------------------------------------------------------


def message_text(message: ChatMessage) -> str:
    """The text of a message: a string, or its text parts joined (images etc. are skipped)."""
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if p.type == "text" and p.text)


_CITATION_MARKER = re.compile(r"\[\d+\]")


def conversation(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last message, the user's) and the earlier turns, oldest first.

    An earlier user message that cannot be a question (`earlier_question`: blank, too long)
    is left out with its reply, as the web chat does; system, developer and tool messages
    are not part of it. A reply is the turn's answer when it is one of qa's (it cites,
    `[n]`); any other (empty, a placeholder, another model's words) is an unknown answer,
    which qa finds again by answering the earlier question itself.
    """
    last = messages[-1]
    if last.role != "user":
        raise _BadRequest(f"the last message must be the user's question, got role "
                          f"{last.role!r}", f"messages[{len(messages) - 1}].role")
    turns: list[Turn] = []
    pending: str | None = None
    for message in messages[:-1]:
        if message.role == "user":
            if pending is not None:
                turns.append(Turn(pending))
            pending = earlier_question(message_text(message))
        elif message.role == "assistant" and pending is not None:
            said = without_sources(message_text(message))
            # qa's replies cite ([n]); one that does not is no answer of qa's ("...", a
            # placeholder): its quotes would tell the follow-up nothing was said yet
            turns.append(Turn(pending, said if _CITATION_MARKER.search(said) else None))
            pending = None
    if pending is not None:
        turns.append(Turn(pending))
    if isinstance(last.content, list) and last.content and not any(
            p.type == "text" and p.text is not None for p in last.content):
        kinds = ", ".join(repr(p.type[:40]) for p in last.content[:5])  # an image alone
        raise _BadRequest(f"the question has no text: qa answers a question in words (its "
                          f"'text' parts), and this message has {kinds} parts only",
                          f"messages[{len(messages) - 1}].content")
    return message_text(last), turns[-MAX_HISTORY:]


# -- responses -------------------------------------------------------------------------------


def _usage(question: str, content: str) -> dict[str, int]:
    prompt, completion = len(question.split()), len(content.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _pieces(content: str) -> Iterator[str]:
    """The content in small pieces (a few words each, whitespace kept) for streaming."""
    words = content.split(" ")
    for i in range(0, len(words), WORDS_PER_CHUNK):
        piece = " ".join(words[i:i + WORDS_PER_CHUNK])
        yield piece if i + WORDS_PER_CHUNK >= len(words) else piece + " "


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


class Completion:
    """One answered request, rendered as a whole response or as a stream of chunks."""

    def __init__(self, question: str, answer: Answer, documents: Mapping[str, Document]
                 ) -> None:
        self.question = question
        self.content = answer_with_sources(answer, documents)
        self.answer = cited_answer_json(answer, documents)
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": MODEL_ID}

    def response(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": self.content, "refusal": None,
                   "citations": self.answer["citations"]}
        return {
            **self._head("chat.completion"),
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": _usage(self.question, self.content),
            "qa": self.answer,
        }

    def chunks(self, include_usage: bool) -> Iterator[str]:
        head = self._head("chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return _sse({**head, "choices": [choice], **extra})

        yield chunk({"role": "assistant", "content": ""})
        for piece in _pieces(self.content):
            yield chunk({"content": piece})
        yield chunk({"citations": self.answer["citations"]}, "stop", qa=self.answer)
        if include_usage:
            yield _sse({**head, "choices": [], "usage": _usage(self.question, self.content)})
        yield "data: [DONE]\n\n"


async def _async(events: Iterator[str]) -> AsyncIterator[str]:
    """`events` from the event loop (the answer is ready: no threadpool hop per chunk),
    letting the loop run between them: written without a pause, the chunks after a client
    hung up mid-stream each met the closed socket, and asyncio logged 'socket.send() raised
    exception.' for each past the fifth (dozens of lines a request, for anyone to cause);
    now the server sees the hang-up at the first and stops."""
    for event in events:
        yield event
        await anyio.lowlevel.checkpoint()


def _model(created: int) -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "qa"}


# -- the router ------------------------------------------------------------------------------


def openai_router(pipeline: Pipeline) -> APIRouter:
    """`/v1/chat/completions` and `/v1/models` over `pipeline`, behind the optional token."""
    router = APIRouter(prefix=PREFIX, tags=["openai"], route_class=OpenAIRoute,
                       dependencies=[Depends(require_token)])
    started = int(time.time())

    @router.post("/chat/completions", response_model=None)
    def chat_completions(request: ChatRequest) -> dict[str, Any] | Response:
        """A cited answer to the last user message, as an OpenAI chat completion."""
        try:
            if request.model != MODEL_ID:
                raise _BadRequest(f"the model {quoted(request.model)} does not exist; use "
                                  f"{MODEL_ID!r}",
                                  "model", 404, "model_not_found")
            text, history = conversation(request.messages)
            question = clean_question(text)
        except _BadRequest as exc:
            return error_response(exc.status, str(exc), exc.param, exc.code)
        except BadQuestion as exc:
            return error_response(400, str(exc), f"messages[{len(request.messages) - 1}].content")
        answer, index = pipeline.ask_with_index(question, history)
        done = Completion(question, answer, index.documents)
        if not request.stream:
            return done.response()
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return StreamingResponse(_async(done.chunks(include_usage)),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.get("/models")
    def models() -> dict[str, Any]:
        """The models this server answers with: `qa`."""
        return {"object": "list", "data": [_model(started)]}

    @router.get("/models/{model_id}", response_model=None)
    def model(model_id: str) -> dict[str, Any] | Response:
        """One model, or OpenAI's 404."""
        if model_id != MODEL_ID:
            return error_response(404, f"the model {quoted(model_id)} does not exist; use "
                                       f"{MODEL_ID!r}", "model", "model_not_found")
        return _model(started)

    return router
