"""The HTTP edge: one FastAPI app with the JSON API and, at `/`, the web chat (`qa.ui`).

In: JSON requests. Out: the JSON shapes of `qa ask --json` and `qa retrieve --json`
(`qa.schema`), so every edge answers alike.

    POST /api/ask       {"question": str, "history"?: [str], "k"?: int}  -> an answer
    POST /api/retrieve  {"question": str, "k"?: int}                     -> a list of hits
                        (both take "doc_ids"?: [str] to search only those documents;
                        citations of paged documents carry "page")
    /api/documents      upload, list, show and delete documents (`qa.documents_api`)
    GET  /healthz       200 {"status": "ok" | "reindexing", "build", counts, "withheld",
                        "reindexing"} from the current state; 503 {"status": "loading" |
                        "error" | "stale"} when it cannot answer from every document
    HEAD /healthz       the same status and headers, no body
    GET  /docs          the OpenAPI documentation (Swagger UI served locally, no CDN; no
                        /redoc, whose script only a CDN serves)
    /                   the Gradio chat

Every error is JSON `{"detail": "one line"}` (under `/v1`, OpenAI's error object): 422 for
bad input (with `errors`, the per-field list, for validation errors; also a body that is
not UTF-8 JSON or is nested too deeply), 400 for a Host header not on the allow-list, 403
for a write from another site's page (`Origin`), 401 for a missing token on a write, 429
(with `Retry-After`) for a client that sent too many wrong tokens lately, 404 for an
unknown route, 405 for a wrong method, 413 for a body over the cap, 415 for a compressed
body (any Content-Encoding but identity), 503 when the model or index cannot be loaded, 500
otherwise. One pipeline serves every request from FastAPI's threadpool; it is warmed in a
background thread at startup, so the server answers `/healthz` at once, and it follows its
files (`Pipeline.watch`): a new build or a changed seed is picked up without a restart, and
a changed document is never quoted meanwhile.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import json
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Host, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.asgi import read_body, replaying
from qa.config import (
    LOOPBACK_HOSTS,
    MAX_HISTORY,
    MAX_K,
    MAX_QUESTION_CHARS,
    MAX_TURN_ANSWER_CHARS,
    Settings,
)
from qa.documents_api import part_filename, upload_cap
from qa.documents_api import router as documents_router
from qa.errors import (
    BadQuestion,
    BadSetting,
    IndexCorrupt,
    IndexMissing,
    IndexStale,
    ModelError,
    QAError,
    SeedError,
    ShuttingDown,
    TooManyAttempts,
    WriteError,
    clipped,
    quoted,
)
from qa.log import log, quiet_client_input_warnings
from qa.openai_api import PREFIX as OPENAI_PREFIX
from qa.openai_api import error_json, openai_router
from qa.pipeline import Pipeline, default_pipeline
from qa.pipeline import preflight as check_settings
from qa.schema import (
    NOT_JSON,
    answer_json,
    clean_question,
    clean_turn,
    hit_json,
    hits_with_pages,
    not_json_type,
    problem_json,
    unparsable,
    with_pages,
)
from qa.security import (
    TokenThrottle,
    authorize,
    check_exposure,
    given_token,
    is_loopback,
    reached_beyond_loopback,
    throttle_of,
)
from qa.store import claim_index, claimed_index, release_index
from qa.types import Turn
from qa.ui import CSS, HEAD, build_ui

if TYPE_CHECKING:
    import uvicorn

WARM_QUESTION = "What is this document about?"  # first call pays for lazy tables and torch

_UNAVAILABLE = (IndexMissing, IndexCorrupt, IndexStale, ModelError, SeedError, ShuttingDown)


# -- requests --------------------------------------------------------------------------------


def _checked_question(value: str) -> str:
    try:
        return clean_question(value)
    except BadQuestion as exc:
        raise PydanticCustomError("bad_question", str(exc)) from None


_QUESTION_FIELD = Field(description=f"1 to {MAX_QUESTION_CHARS:,} characters after trimming",
                        json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION_CHARS})
Question = Annotated[StrictStr, AfterValidator(_checked_question), _QUESTION_FIELD]
TurnQuestion = Annotated[StrictStr, _QUESTION_FIELD]  # checked with its turn's number
BAD_TURN = "bad_turn"  # a validation error whose message names its place (`clean_turn`)
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"passages to consider, 1 to {MAX_K}")]


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    k: K | None = None
    doc_ids: list[StrictStr] | None = Field(
        default=None, max_length=1000,
        description="only search these documents (ids from GET /api/documents); leave it out "
                    "(or null) to search them all: an empty list is refused (422)")


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: TurnQuestion
    answer: StrictStr | None = Field(
        default=None, max_length=MAX_TURN_ANSWER_CHARS,
        description="the answer text given for it (its quotes guide the follow-up); null, "
                    "or one that says nothing (\"\", \"...\"), is unknown: qa answers that "
                    "question again")


class AskRequest(RetrieveRequest):
    history: list[TurnQuestion | HistoryTurn] = Field(
        default_factory=list, max_length=MAX_HISTORY,
        description=("earlier turns of the conversation, oldest first (at most "
                     f"{MAX_HISTORY}): questions, or {{question, answer}} objects"),
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{  # generic: users bring their own documents
            "question": "When do they get their laptop?",
            "history": ["Who runs onboarding for new hires?"],
            "doc_ids": ["onboarding-handbook"],
        }]},
    )

    @field_validator("history")
    @classmethod
    def _clean_turns(cls, history: list[str | HistoryTurn]) -> list[str | HistoryTurn]:
        """Each turn cleaned as a question, a bad one named as MCP and the CLI name it
        ("history turn 2 is empty"), not by pydantic's place ("history[1]")."""
        cleaned: list[str | HistoryTurn] = []
        for n, turn in enumerate(history, start=1):
            try:
                if isinstance(turn, str):
                    cleaned.append(clean_turn(turn, n))
                else:
                    cleaned.append(turn.model_copy(
                        update={"question": clean_turn(turn.question, n)}))
            except BadQuestion as exc:
                raise PydanticCustomError(BAD_TURN, str(exc)) from None
        return cleaned


class ErrorBody(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None  # validation errors only: pydantic's, per field


ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "bad input: the question, history or k"},
    503: {"model": ErrorBody, "description": "the model or index cannot be loaded"},
}


# -- errors ----------------------------------------------------------------------------------


def status_of(exc: QAError) -> int:
    """The HTTP status for a library error: the client's fault, the server's state, or a bug."""
    if isinstance(exc, BadQuestion):
        return 422
    if isinstance(exc, _UNAVAILABLE):
        return 503
    if isinstance(exc, WriteError):
        return exc.status  # 507: the disk is full
    return 500


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# pydantic names the branch of a union in an error's location (`history.0.function-after[
# _checked_question(), str]`, `history.0.HistoryTurn`): not for people.
_BRANCH = re.compile(r"(function-\w+|list|dict|tuple|set)\[.*\]|str|int|float|bool|none|"
                     r"constrained-\w+")
_MODELS = frozenset({"HistoryTurn"})


def _is_branch(part: int | str) -> bool:
    return isinstance(part, str) and (part in _MODELS or _BRANCH.fullmatch(part) is not None)


def _plain(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`errors` as a person reads them: union branches out of the locations, and of a value
    that no branch accepted, only what its own branch says (a blank question is 'the
    question is empty', not also 'not an object'); a value of no branch's type gets one
    error naming the types allowed."""
    out: list[dict[str, Any]] = []
    mismatches: dict[tuple[int | str, ...], list[str]] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))
        plain = tuple(p for p in loc if not _is_branch(p))
        if len(plain) == len(loc):
            out.append(error)
        elif _is_branch(loc[-1]) and str(error.get("type", "")).endswith("_type"):
            mismatches.setdefault(plain, []).append(str(error.get("msg", "")))  # wrong branch
        else:
            out.append({**error, "loc": list(plain)})
    for item, messages in mismatches.items():
        if not any(tuple(e.get("loc", ()))[:len(item)] == item for e in out):
            wanted = " or ".join(m.removeprefix("Input should be ") for m in messages)
            out.append({"loc": list(item), "msg": f"Input should be {wanted}", "type": "union"})
    return out


def validation_detail(errors: list[dict[str, Any]], content_type: str | None = None) -> str:
    """One line for a person from pydantic's error list, e.g. `k: Input should be ...`; a
    body that is not an object, sent without a JSON `content_type`, is told to be JSON."""
    errors = _plain(errors)
    if not_json_type(errors, content_type):
        return NOT_JSON
    lines = []
    for error in errors[:3]:
        where = _where(tuple(error.get("loc", ())))
        if error.get("type") == "json_invalid":
            lines.append("the body is not valid JSON")
        elif error.get("type") == BAD_TURN:  # "history turn 2: ...": its place is in it
            lines.append(str(error.get("msg", "invalid")))
        elif not where and error.get("type") == "missing":
            lines.append('a JSON body is required, e.g. {"question": "..."}')
        elif not where:
            lines.append(f"body: {error.get('msg', 'invalid')}")
        else:
            lines.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(lines) + more


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        detail = validation_detail(errors, request.headers.get("content-type"))
        return JSONResponse({"detail": detail, "errors": errors}, 422)

    @app.exception_handler(QAError)
    async def library_error(request: Request, exc: QAError) -> JSONResponse:
        status = status_of(exc)
        return JSONResponse(error_body(request.url.path, status, str(exc)), status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI: body unparsable
            return JSONResponse({"detail": unparsable(exc.__cause__)}, 422)
        return JSONResponse(error_body(request.url.path, exc.status_code, str(exc.detail)),
                            exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log(f"internal error: {type(exc).__name__}: {exc}")
        return JSONResponse(error_body(request.url.path, 500, "internal error"), 500)


# -- warm-up ---------------------------------------------------------------------------------


@dataclass
class Readiness:
    """What `/healthz` reports: loading, ready (with the index's counts) or failed."""

    status: str = "loading"
    detail: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    url: str = ""


def warm(pipeline: Pipeline, readiness: Readiness) -> None:
    """Load the model and index and answer one question, reporting progress on stderr (and
    the files the index skipped: a reused index's build said them in another process)."""
    from qa.loaders.library import report

    started = time.perf_counter()
    try:
        log("loading model…")
        warm_up = getattr(pipeline.embedder, "warm_up", None)
        if callable(warm_up):
            warm_up()
        log("loading index…")
        index = pipeline.index
        report(pipeline.problems())  # a mistyped --seeds, said on every start
        pipeline.ask(WARM_QUESTION)
        counts = dict(index.manifest.get("counts", {}))
    except Exception as exc:  # noqa: BLE001 - reported by /healthz and on stderr
        readiness.detail = str(exc) if isinstance(exc, QAError) else f"{type(exc).__name__}: {exc}"
        readiness.status = "error"
        if not isinstance(exc, ShuttingDown):  # Ctrl-C during the first build: no error
            log(f"error: {readiness.detail}")
        return
    readiness.counts = {"model": pipeline.settings.model, **counts}
    readiness.status = "ok"
    summary = ", ".join(f"{k}: {v}" for k, v in counts.items())
    where = f" at {readiness.url}" if readiness.url else ""
    log(f"ready{where} ({summary}; {time.perf_counter() - started:.1f} s)")


# -- the app ---------------------------------------------------------------------------------


def create_app(pipeline: Pipeline | None = None) -> FastAPI:
    """The API and the chat over `pipeline` (default: from the environment). Loads nothing:
    the pipeline is warmed in a background thread when the server starts."""
    import gradio as gr

    app = create_api(pipeline)
    shared: Pipeline = app.state.pipeline
    chat = build_ui(shared, app.state.token_throttle)  # one count of wrong tokens per client
    # Gradio checks that a file an event names was uploaded (it is in the upload folder)
    # only in an app it launched (`processing_utils._check_allowed`); mounting never sets
    # `has_launched`, so a crafted queue event naming any file the server can read
    # (/home/x/notes.md) had it copied in, indexed, and its whole text served by
    # GET /api/documents/{id}.
    chat.has_launched = True
    app = gr.mount_gradio_app(app, chat, path="/", css=CSS, head=HEAD,
                              max_file_size=shared.settings.max_upload_bytes)
    from gradio.route_utils import FnIndexInferError

    for route in app.router.routes:
        if isinstance(route, Mount) and isinstance(route.app, FastAPI):
            route.app.add_exception_handler(KeyError, _unknown_event)
            route.app.add_exception_handler(FnIndexInferError, _unknown_event)
            route.app.add_exception_handler(TypeError, _bad_call_arguments)
    _one_line_chat_errors()
    _chat_upload_reads_extended_names()
    return app


def _chat_upload_reads_extended_names() -> None:
    """Gradio's upload route reads a part's file name from `filename` only: a part naming
    its file as `filename*=UTF-8''%E2%80%A6.txt` (RFC 6266, as HTTP libraries send it) was
    read as a plain field, and the route answered a plain-text 500. Its name is read as
    /api/documents reads it (`part_filename`) and handed to Gradio as a plain `filename`."""
    from gradio.route_utils import GradioMultiPartParser

    read = GradioMultiPartParser.on_headers_finished
    if getattr(read, "extended_names", False):
        return

    def on_headers_finished(self: Any) -> None:
        from python_multipart.multipart import parse_options_header

        part = self._current_part
        disposition = part.content_disposition or b""
        kind, options = parse_options_header(disposition)
        name = part_filename(disposition, options)
        if name is not None and name != options.get(b"filename", b"").decode("utf-8",
                                                                            "replace"):
            field = options.get(b"name", b"")
            part.content_disposition = b"".join((
                kind, b'; name="', _quoted_param(field), b'"; filename="',
                _quoted_param(name.encode("utf-8")), b'"'))
        read(self)

    setattr(on_headers_finished, "extended_names", True)  # noqa: B010 - a mark
    GradioMultiPartParser.on_headers_finished = on_headers_finished  # type: ignore[method-assign]


def _quoted_param(value: bytes) -> bytes:
    """`value` for a quoted parameter of a header (python-multipart's unquoting undone)."""
    return value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


class _OneLineTraceback:
    """The `traceback` module as Gradio's queue sees it, but `print_exc` logs one line."""

    def __getattr__(self, name: str) -> Any:
        return getattr(traceback, name)

    @staticmethod
    def print_exc(*_: Any, **__: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None:
            log(f"chat event failed: {_one_line(exc)}")


def _one_line_chat_errors() -> None:
    """Gradio's queue prints the whole traceback of every error an event raises
    (`queueing.process_events`: `traceback.print_exc()`), a client's bad input included: a
    POST to /gradio_api/call/chat with one value instead of three, or a chat history that is
    not a list, wrote ~20 lines to the log each time. The client is told by Gradio's error
    event as before; the log gets one line naming the error and where it was raised.

    The client was sent the error's whole text, too (`utils.error_payload`, as the mount's
    `show_error` asks): for a history of 20,000 bad turns, pydantic's report of each, 3.5 MB
    in answer to a 600 KB request. It gets one line (`_one_line_error`); Gradio's own
    messages for people (`gr.Error`) are sent as they are."""
    import gradio.queueing
    import gradio.utils
    from gradio.exceptions import Error

    if not isinstance(gradio.queueing.traceback, _OneLineTraceback):
        gradio.queueing.traceback = _OneLineTraceback()  # type: ignore[assignment]
    sent = gradio.utils.error_payload
    if getattr(sent, "one_line", False):
        return

    def one_line(error: BaseException | None, show_error: bool) -> dict[str, Any]:
        payload: dict[str, Any] = dict(sent(error, show_error))
        if isinstance(payload.get("error"), str) and not isinstance(error, Error):
            payload["error"] = _one_line_error(error)
        return payload

    setattr(one_line, "one_line", True)  # noqa: B010 - a mark on a function
    gradio.utils.error_payload = one_line
    gradio.queueing.error_payload = one_line


def _one_line_error(error: BaseException | None) -> str:
    """An event's error for the client, in one line: a validation error's count and first
    complaint, else its text, at most 300 characters."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        found = error.errors()
        where = ".".join(str(part) for part in found[0]["loc"]) if found else ""
        message = found[0]["msg"] if found else "invalid"
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return (f"invalid input for {error.title}: {where + ': ' if where else ''}"
                f"{message}{more}")[:300]
    return " ".join(str(error).split())[:300]


async def _unknown_event(request: Request, exc: Exception) -> JSONResponse:
    """422 for a chat request naming an event the chat does not have (`fn_index`): Gradio
    looks it up unchecked (`route_utils.get_fn`), and the KeyError was a 500 with a
    traceback. 404 for an API name it does not have: /gradio_api/call/<name>, run/<name>
    and api/<name> raised FnIndexInferError, /gradio_api/call/v2/<name> a KeyError, each a
    plain-text 500. Any other KeyError is a bug, raised on (`Hardening` logs it in one
    line)."""
    frames = traceback.extract_tb(exc.__traceback__)
    name = request.path_params.get("api_name")
    from gradio.route_utils import FnIndexInferError

    if isinstance(exc, FnIndexInferError) or (
            isinstance(exc, KeyError) and name is not None and exc.args == (f"/{name}",)):
        return JSONResponse({"detail": f"the chat has no API endpoint {quoted(name)} (its "
                                       "endpoints: GET /gradio_api/info)"}, 404)
    if not frames or frames[-1].name != "get_fn":
        raise exc
    return JSONResponse({"detail": f"the chat has no event {quoted(exc.args[0])} (fn_index)"}, 422)


_VIEW_API = re.compile(r"\s*Please click on 'view API'.*$")


async def _bad_call_arguments(_: Request, exc: Exception) -> JSONResponse:
    """422 for a /gradio_api/call/v2/<name> request whose arguments do not fit the
    endpoint (one missing, one it does not take): `construct_args` raised a TypeError,
    answered with a plain-text 500. 400 for an upload to the chat with a part named
    `files` that is not a file (`upload_fn`: a plain-text 500 too). Any other TypeError is
    a bug, raised on."""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and frames[-1].name == "upload_fn":  # a `files` part that is not a file
        return JSONResponse({"detail": "every part named 'files' must be a file (its "
                                       "Content-Disposition names a filename)"}, 400)
    if not frames or frames[-1].name != "construct_args":
        raise exc
    message = _VIEW_API.sub("", str(exc)).rstrip(". ")
    return JSONResponse({"detail": f"{message} (its arguments: GET /gradio_api/info)"}, 422)


def create_api(pipeline: Pipeline | None = None) -> FastAPI:
    """`create_app` without the chat (no Gradio): the JSON API, `/v1`, `/mcp`, `/docs` and
    the hardening in front of them."""
    shared = pipeline or default_pipeline()
    settings = shared.settings
    quiet_client_input_warnings()  # a malformed upload is the client's to hear about
    readiness = Readiness()
    uploads = _upload_folder()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        shared.watch()
        threading.Thread(target=warm, args=(shared, readiness), name="qa-warm-up",
                         daemon=True).start()
        try:
            yield
        finally:
            shared.stop_indexing()  # under `uvicorn app:app`, whose signal handler is not ours
            shared.unwatch()
            if uploads is not None:  # what Gradio stored for uploads is ours to remove
                shutil.rmtree(uploads, ignore_errors=True)

    app = FastAPI(
        title="qa",
        summary="Answers questions about documents, every answer cited to the exact passage.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served below from local files
        redoc_url=None,  # ReDoc would load its script from a CDN, and no package ships it
    )
    app.state.pipeline = shared
    app.state.readiness = readiness
    app.state.allowed_hosts = allowed_hosts(settings)
    app.state.token_throttle = TokenThrottle()  # wrong tokens per client (`qa.security`)
    _install_error_handlers(app)
    _install_docs(app)
    app.include_router(documents_router)

    @app.post("/api/ask", tags=["qa"], responses=ERRORS)
    def ask(request: AskRequest) -> dict[str, Any]:
        """A cited answer to `question` (or an abstention), given the earlier questions."""
        history = [h if isinstance(h, str) else Turn(h.question, h.answer)
                   for h in request.history]
        answer, index = shared.ask_with_index(request.question, history, request.k,
                                              request.doc_ids)
        return with_pages(answer_json(answer), index.documents)

    @app.post("/api/retrieve", tags=["qa"], responses=ERRORS)
    def retrieve(request: RetrieveRequest) -> list[dict[str, Any]]:
        """The passages that best match `question`, best first, each with its best sentence."""
        hits, index = shared.retrieve_with_index(request.question, request.k, request.doc_ids)
        return hits_with_pages([hit_json(hit) for hit in hits], index.documents)

    unready: dict[int | str, dict[str, Any]] = {
        503: {"description": "loading, failed, or serving a stale index"}}

    @app.get("/healthz", tags=["ops"], responses=unready)
    def healthz() -> JSONResponse:
        """200 while every document can be answered from (re-checked on each call); 503
        while loading, after a failure, or when changed documents cannot be re-indexed."""
        body: dict[str, Any] = {"status": readiness.status}
        if readiness.status != "ok":
            if readiness.detail:
                body["detail"] = readiness.detail
            return JSONResponse(body, 503)
        problems = shared.problems()
        if problems:  # files skipped from the corpus, with why
            body["problems"] = [problem_json(p) for p in problems]
        shared.refresh()
        body.update({"model": settings.model, **shared.freshness()})
        if body["withheld"]:
            body["status"] = "reindexing" if body["reindexing"] else "stale"
        return JSONResponse(body, 503 if body["status"] == "stale" else 200)

    # A route of its own: one route for both methods gave both the same operation id
    # (FastAPI warns "Duplicate Operation ID" when it builds the OpenAPI schema).
    @app.head("/healthz", tags=["ops"], responses=unready)
    def healthz_head() -> Response:
        """`GET /healthz`'s status and headers, without its body."""
        full = healthz()
        return Response(status_code=full.status_code, headers=dict(full.headers))

    from qa.mcp_server import mcp_router  # OpenAI-compatible /v1 and MCP /mcp (issue 13)

    app.include_router(openai_router(shared))
    app.include_router(mcp_router(shared, MCP_PATH))
    app.add_middleware(Hardening, owner=app)
    return app


# -- hardening -------------------------------------------------------------------------------

SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)
UPLOAD_OVERHEAD = 1 << 20  # multipart framing around one file of a Gradio upload
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
HEADER_SECONDS = 10.0  # a request's line and headers must arrive within this (slowloris)
# A body must arrive within BODY_SECONDS, plus a second for every BODY_MIN_RATE bytes that
# came (Apache's mod_reqtimeout default, body=20,MinRate=500): a slow link uploads at its
# pace, a client trickling a byte now and then no longer holds a connection for ever.
BODY_SECONDS = 20.0
BODY_MIN_RATE = 500  # bytes per second
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")  # named in `Allow`


def allowed_hosts(settings: Settings, bound: str | None = None) -> frozenset[str] | None:
    """Host header names served (None: any). Default: loopback names and the bound address,
    so a page on another site cannot reach this server through DNS rebinding."""
    if "*" in settings.allowed_hosts:
        return None
    names = set(settings.allowed_hosts or LOOPBACK_HOSTS)
    if bound and bound not in ("", "0.0.0.0", "::") and not settings.allowed_hosts:
        names.add(bound.strip("[]").lower())
    return frozenset(names)


def _host_name(raw: str) -> str:
    raw = raw.strip().lower()
    if raw.startswith("["):  # [::1]:7860
        return raw[1:raw.find("]")] if "]" in raw else raw
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


def _is_openai(scope: Scope) -> bool:
    return scope["path"] == OPENAI_PREFIX or scope["path"].startswith(OPENAI_PREFIX + "/")


MCP_PATH = "/mcp"


def error_body(path: str, status: int, message: str) -> dict[str, Any]:
    """An error of the server (not of a route's own handling) in the shape of the route's
    other errors: OpenAI's error object under `/v1`; at `/mcp` a JSON-RPC error with id
    null, as the MCP SDK answers its own (an MCP client reads only that from a non-2xx
    reply: `{"detail": ...}` reached the agent as 'Server returned an error response');
    `{"detail": ...}` elsewhere."""
    if path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/"):
        return error_json(status, message)
    if path == MCP_PATH:
        code = -32600 if status < 500 else -32603  # JSON-RPC: invalid request, internal
        return {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return {"detail": message}


async def _refuse(scope: Scope, send: Send, status: int, message: str,
                  headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """An error answered by the middleware, in the shape of the route's other errors
    (`error_body`)."""
    body = error_body(scope["path"], status, message)
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        *SECURITY_HEADERS, *headers]})
    await send({"type": "http.response.body", "body": payload})


class Hardening:
    """Pure ASGI middleware in front of everything (API, docs and the mounted chat): the
    Host allow-list (400), a write from another site's page (403, `_foreign_origin`), 405
    for a wrong method on an API route (Gradio's mount at `/` would otherwise answer 404),
    404 for an unknown `/v1` path, the token for Gradio's upload route when one is set
    (401, 429: `_chat_upload_refusal`) and its folder's quota (507), 415 for a compressed
    body (`_content_coding`), the body cap from Content-Length and while streaming (413,
    never reading more than the cap), a deadline for the body (408, BODY_SECONDS), a JSON
    body in the charset its Content-Type names (`_as_utf8`; 400 if not valid in it), and the
    security headers on every response. Its errors are in the route's shape (`error_body`)."""

    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner
        self.chat_streams = 0  # open now (`_is_chat_stream`); only the event loop counts

    def _limit(self, scope: Scope) -> int:
        settings: Settings = self.owner.state.pipeline.settings
        if scope["path"] == documents_router.prefix and scope["method"] == "POST":
            return upload_cap(settings)  # up to MAX_FILES files, streamed to disk
        if _is_chat_upload(scope):  # one file (Gradio's upload route)
            return settings.max_upload_bytes + UPLOAD_OVERHEAD
        # Any other route takes JSON, read whole into memory: a multipart Content-Type once
        # raised its cap to the file limit, so /mcp held 45 MB of a 'multipart' body.
        return settings.max_body_bytes

    def _match(self, scope: Scope) -> set[Match]:
        """How the API's routes, those of included routers too, match `scope` (mounts left
        out: Gradio's at `/` matches every path)."""
        return {route.matches(scope)[0] for route in self.owner.router.routes
                if not isinstance(route, Mount | Host)}

    def _allowed_methods(self, scope: Scope) -> set[str] | None:
        """The methods of the API routes at this path, if the method asked is not one (HEAD
        wherever GET is: `_head_as_get`)."""
        found = self._match(scope)
        if Match.FULL in found or Match.PARTIAL not in found:
            return None
        methods = {method for method in METHODS
                   if Match.FULL in self._match({**scope, "method": method})}
        if "GET" in methods:
            methods.add("HEAD")
        return methods - {scope["method"]} or None

    def _head_as_get(self, scope: Scope) -> Scope:
        """A HEAD request to an API route that has GET only, as that GET: FastAPI's routes
        answered 405 to HEAD /api/documents, /v1/models and /docs, where HTTP wants every
        GET resource to take HEAD (RFC 9110, 9.3.2). The server still sends no body: it
        answers by the request line it read, not by this scope."""
        if scope["method"] != "HEAD" or Match.FULL in self._match(scope):
            return scope
        as_get = {**scope, "method": "GET"}
        return as_get if Match.FULL in self._match(as_get) else scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        settings: Settings = self.owner.state.pipeline.settings
        beyond = reached_beyond_loopback(scope.get("server"))
        if beyond is not None and not settings.api_token:  # a launcher other than `run`
            if scope["type"] == "http":  # (uvicorn app:app --host 0.0.0.0) skipped its check
                await _refuse(scope, send, 403, f"this server was reached at {beyond}, beyond "
                              "this machine, without QA_API_TOKEN set: it serves only loopback "
                              "until a token is set")
            return
        hosts: frozenset[str] | None = self.owner.state.allowed_hosts
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if hosts is not None and _host_name(host) not in hosts:
            if scope["type"] == "http":
                await _refuse(scope, send, 400, f"host {quoted(host)} is not served here "
                              "(set QA_ALLOWED_HOSTS to allow it)")
            return
        foreign = _foreign_origin(scope, host, settings.allowed_hosts)
        if foreign is not None:
            if scope["type"] == "http":
                await _refuse(scope, send, 403, f"cross-site request refused: Origin "
                              f"{foreign!r} is not this server (a page of another site "
                              "may not write here)")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        scope = self._head_as_get(scope)
        allowed = self._allowed_methods(scope)
        if allowed is not None:
            await _refuse(scope, send, 405, f"method {scope['method']} is not allowed here; "
                          f"use {', '.join(sorted(allowed))}",
                          ((b"allow", ", ".join(sorted(allowed)).encode()),))
            return
        if _is_openai(scope) and not self._match(scope) - {Match.NONE}:  # not the chat's 404
            await _refuse(scope, send, 404, f"there is no {clipped(scope['path'])}; qa serves POST "
                          f"{OPENAI_PREFIX}/chat/completions and GET {OPENAI_PREFIX}/models")
            return
        if scope["path"].endswith(UNUSED_CHAT_ROUTES):
            await _refuse(scope, send, 404, f"there is no {clipped(scope['path'])} here")
            return
        encoding = _content_coding(scope)
        if encoding is not None:  # nothing of ours or Gradio's decodes a body
            await _refuse(scope, send, 415, f"Content-Encoding {encoding!r} is not supported; "
                          "send the body uncompressed",
                          ((b"accept-encoding", b"identity"), (b"connection", b"close")))
            return
        limit = self._limit(scope)
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if _is_chat_upload(scope):
            refusal = _chat_upload_refusal(scope, self.owner)
            if refusal is not None:
                await _refuse(scope, send, *refusal)
                return
            incoming = int(length) if length is not None and length.isdigit() else limit
            full = _chat_uploads_full(incoming, self.owner.state.pipeline.settings)
            if full is not None:
                await _refuse(scope, send, 507, full, ((b"connection", b"close"),))
                return
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _refuse(scope, send, 413, f"the body is over {limit:,} bytes",
                          ((b"connection", b"close"),))
            return
        received = 0
        body_done = False
        pipeline: Pipeline = self.owner.state.pipeline
        stopped = (SHUTTING_DOWN if _is_chat_upload(scope) or scope["path"].startswith(
            "/api/documents") else "the server is shutting down; try again later")
        started_at = time.monotonic()

        async def capped_receive() -> Message:
            nonlocal received, body_done
            deadline = started_at + BODY_SECONDS + received / BODY_MIN_RATE
            message = await (receive() if body_done
                             else _body_or_stop(receive, pipeline, stopped, deadline))
            received += len(message.get("body", b""))
            if received > limit:
                raise StarletteHTTPException(413, f"the body is over {limit:,} bytes")
            body_done = body_done or not message.get("more_body", False)
            return message

        body_receive: Receive = capped_receive
        charset = _declared_charset(scope)
        if charset is not None:
            try:
                scope, body_receive = await _as_utf8(scope, capped_receive, charset)
            except StarletteHTTPException as exc:  # 400, or the cap's 413, 408, 503
                await _refuse(scope, send, exc.status_code, exc.detail, tuple(
                    (k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()))
                return
        started = finished = False
        stream = _is_chat_stream(scope)
        if stream:
            most = self.owner.state.pipeline.settings.max_chat_streams
            if self.chat_streams >= most:
                await _refuse(scope, send, 503, f"the chat is busy ({most} streams open); "
                              "try again in a moment",
                              ((b"retry-after", str(CHAT_BUSY_RETRY_SECONDS).encode()),
                               (b"connection", b"close")))  # its place goes back at once
                return
            self.chat_streams += 1

        async def with_headers(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in SECURITY_HEADERS if h[0] not in present)]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, body_receive, with_headers)
        except Exception as exc:  # noqa: BLE001 - answered here, one line in the log
            if not started:
                log(f"internal error: {_one_line(exc)}")
                await _refuse(scope, send, 500, "internal error")
                return
            if not _stream_told(exc, scope):
                log(f"internal error after the reply began ({clipped(scope['path'])}): "
                    f"{_one_line(exc)}")
            if not finished:  # end the reply cleanly: its status and part are sent
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if stream:
                self.chat_streams -= 1


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _foreign_origin(scope: Scope, host: str, configured: tuple[str, ...]) -> str | None:
    """The `Origin` of a request that a page of another site made a browser send (None:
    none, or this server's own). Without a token (the default, on loopback) every write is
    open to whoever can reach the server, and a browser is such a client for any page it
    shows: a form on any web site could POST a file to /api/documents (multipart is a
    "simple" request, sent without asking), and qa then quoted it. Browsers name the page's
    origin on every such request; same origin is `Origin` naming the `Host` the request
    was sent to, or a name of QA_ALLOWED_HOSTS (behind a proxy that rewrites `Host`). A
    websocket is checked whatever its method; "null" (a sandboxed frame) is foreign."""
    if scope["type"] == "http" and scope["method"] not in UNSAFE_METHODS:
        return None
    origin = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"), None)
    if origin is None:
        return None  # not a browser: curl, the openai and MCP clients
    try:
        parsed = urllib.parse.urlsplit(origin.strip())
        name = (parsed.hostname or "").lower()
    except ValueError:
        return origin[:100]
    if parsed.scheme in ("http", "https") and name:
        if parsed.netloc.lower() == host.strip().lower() or name in configured:
            return None
    return origin[:100]


def _content_coding(scope: Scope) -> str | None:
    """The request's Content-Encoding when it names a coding other than `identity` (gzip,
    br, ...; None: none). No route decodes one, so a gzip body was read as it came: a JSON
    route answered 422 "not UTF-8 text", a chat event worse. RFC 9110 (15.5.16) wants 415,
    with `Accept-Encoding` saying what would do."""
    codings = [c.strip() for k, v in scope["headers"] if k == b"content-encoding"
               for c in v.decode("latin-1").split(",")]
    named = [c for c in codings if c and c.lower() != "identity"]
    return ", ".join(named)[:100] if named else None


def _declared_charset(scope: Scope) -> str | None:
    """The charset a JSON body's Content-Type names when it is a text encoding other than
    UTF-8 (latin-1, windows-1252, UTF-16...): the body is read in it (`_as_utf8`). None for
    UTF-8 or ASCII, for no charset, for one no codec has, and for a body that is not JSON
    (multipart uploads are read by their parser)."""
    value = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), "")
    media, *params = value.split(";")
    media = media.strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        return None
    for param in params:
        key, _, name = param.partition("=")
        if key.strip().lower() != "charset":
            continue
        try:
            info = codecs.lookup(name.strip().strip('"').strip())
        except LookupError:
            return None  # read as UTF-8, as before
        if info.name in ("utf-8", "ascii") or not getattr(info, "_is_text_encoding", True):
            return None
        return name.strip().strip('"').strip()
    return None


async def _as_utf8(scope: Scope, receive: Receive, charset: str) -> tuple[Scope, Receive]:
    """The request with its whole body (capped as it is read, by `receive`) decoded from
    `charset` and sent on as UTF-8, its headers saying so: JSON routes read UTF-8 only
    (RFC 8259), so `charset=latin-1` was read as UTF-8 ("not UTF-8 text", or misread).
    StarletteHTTPException 400 if the body is not valid text in `charset`."""
    raw = await read_body(receive)
    if raw is None:  # the client went away: the route sees it
        return scope, receive
    try:
        body = raw.decode(charset).encode("utf-8")
    except UnicodeError:
        raise StarletteHTTPException(400, f"the body is not valid {charset!r} text, the "
                                          "charset its Content-Type names") from None
    media = next(v for k, v in scope["headers"] if k == b"content-type").split(b";")[0]
    headers = [(k, v) for k, v in scope["headers"]
               if k not in (b"content-type", b"content-length")]
    headers += [(b"content-type", media.strip() + b"; charset=utf-8"),
                (b"content-length", str(len(body)).encode())]
    return {**scope, "headers": headers}, replaying(body, receive)


def _one_line(exc: BaseException) -> str:
    """`Type: message (file:line)` of where `exc` was raised: enough to find a bug, no
    traceback (Starlette re-raises every unhandled error, and uvicorn prints it)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {message}{where}"


# Gradio's event streams: the chat's queue, and the stream of a `/call/<api>` request.
STREAM_PATHS = ("/gradio_api/queue/data", "/gradio_api/call/")
# What a client may hold open as long as it likes: those streams and Gradio's heartbeat.
CHAT_STREAM_PATHS = (*STREAM_PATHS, "/gradio_api/heartbeat/")
CHAT_BUSY_RETRY_SECONDS = 5


def _is_chat_stream(scope: Scope) -> bool:
    return scope["method"] == "GET" and any(part in scope["path"] for part in CHAT_STREAM_PATHS)


def _stream_told(exc: BaseException, scope: Scope) -> bool:
    """Whether `exc` is the HTTP error a Gradio event stream raises after it already told
    the client so in the stream, then re-raises into a reply already begun
    (gradio-app/gradio#9169): an unknown or expired `session_hash` of the queue (its
    message `{"msg": "unexpected_error", "session_not_found": true}` is Gradio's own
    contract, which its page acts on), an unknown event id of `/call/<api>/<id>`."""
    if scope["method"] != "GET" or not any(part in scope["path"] for part in STREAM_PATHS):
        return False
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StarletteHTTPException):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


STOP_CHECK_SECONDS = 0.25  # how often a body still arriving looks whether the server stops
SHUTTING_DOWN = "the server is shutting down; the document was not added"


async def _body_or_stop(receive: Receive, pipeline: Pipeline, stopped: str,
                        deadline: float) -> Message:
    """The next message of a request's body; 503 (StarletteHTTPException, detail `stopped`)
    once the server is stopping, even while the client sends nothing. Else a Ctrl-C during
    an upload waited out uvicorn's grace, then the request was cancelled: a plain 500 and a
    traceback. 408 once the time.monotonic() `deadline` passes (BODY_SECONDS): uvicorn
    has no deadline for a body, so a client sending a byte every few seconds held its
    connection, one of QA_MAX_CONNECTIONS, for as long as it liked."""
    pending = asyncio.ensure_future(receive())
    while True:
        wait = min(STOP_CHECK_SECONDS, deadline - time.monotonic())
        done, _ = await asyncio.wait({pending}, timeout=max(wait, 0))
        if done:
            return pending.result()
        if pipeline.stopping:
            pending.cancel()
            raise StarletteHTTPException(503, stopped, {"connection": "close"})
        if time.monotonic() >= deadline:
            pending.cancel()
            raise StarletteHTTPException(
                408, f"the body came too slowly (at least {BODY_MIN_RATE} bytes a second "
                     "are needed); nothing was done", {"connection": "close"})


CHAT_UPLOAD_PATH = "/gradio_api/upload"
# Gradio routes the chat never uses that would take a file from anyone: a recording is
# written to disk and handed to ffmpeg (qa has no audio or video component); and the event
# stream of Gradio's reload mode (`gradio app.py`), which the chat never runs in: anyone
# could hold it open for ever (a place under QA_MAX_CONNECTIONS, woken 20 times a second).
UNUSED_CHAT_ROUTES = ("/gradio_api/process_recording", "/gradio_api/dev/reload")
CHAT_UPLOAD_FILES = 20  # the chat's upload folder holds at most this many files' worth


def _is_chat_upload(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"].endswith(CHAT_UPLOAD_PATH)


# Short: the chat shows them in a toast of two lines, after Gradio's "HTTP 401: {"detail": ".
# A program is told by `WWW-Authenticate: Bearer`.
UPLOAD_NEEDS_TOKEN = "uploads need the access token: type it in 'Access token' first"
UPLOAD_WRONG_TOKEN = "the access token is not right: nothing was uploaded"


def _chat_upload_refusal(scope: Scope, owner: FastAPI
                         ) -> tuple[int, str, tuple[tuple[bytes, bytes], ...]] | None:
    """Why an upload to the chat's route is refused before its body is read (status,
    detail, headers), when a token is set and the request does not carry it: in the
    `qa_token` cookie the chat's *Access token* field sets, or as a Bearer header
    (`given_token`). Checked as every write is (`authorize`): wrong tokens count against
    the client, and while it is throttled even the right one gets 429."""
    settings: Settings = owner.state.pipeline.settings
    if not settings.api_token:
        return None
    bearer = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"),
                  "")
    cookies = "; ".join(v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie")
    given = given_token(bearer, cookies)
    client = scope.get("client")
    close = ((b"connection", b"close"),)  # the body was not read
    try:
        if authorize(settings, given, throttle_of(owner), client[0] if client else None):
            return None
    except TooManyAttempts as exc:
        return 429, str(exc), ((b"retry-after", str(exc.retry_after).encode()), *close)
    message = UPLOAD_WRONG_TOKEN if given and given.strip() else UPLOAD_NEEDS_TOKEN
    return 401, message, ((b"www-authenticate", b"Bearer"), *close)


def _chat_uploads_full(incoming: int, settings: Settings) -> str | None:
    """Why an upload to the chat's route is refused, if the upload folder would then hold
    more than CHAT_UPLOAD_FILES files of the size limit (without a token, on loopback,
    anyone there may upload); files leave it after an hour (`qa.ui`)."""
    folder = _upload_folder()
    if folder is None:
        return None
    quota = CHAT_UPLOAD_FILES * settings.max_upload_bytes
    used = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):  # the sweep may take a file meanwhile
            used += path.lstat().st_size if path.is_file() else 0
    if used + incoming <= quota:
        return None
    return (f"the chat's upload folder is full ({used:,} of {quota:,} bytes); files are "
            "removed an hour after they arrive, try again later")


def _install_docs(app: FastAPI) -> None:
    """`/docs` from the Swagger UI files of the `swagger-ui-bundle` package: no CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="qa – API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _upload_folder() -> Path | None:
    """Gradio's upload folder when this process made it (`private_upload_folder`)."""
    import os

    folder = os.environ.get("GRADIO_TEMP_DIR", "")
    return Path(folder) if folder and Path(folder).name.startswith(UPLOAD_PREFIX) else None


UPLOAD_PREFIX = "qa-uploads-"


def private_upload_folder() -> Path:
    """Entry points call this before building the app: Gradio stores uploads in a fresh
    folder of this process (unless GRADIO_TEMP_DIR is set), removed when the server stops."""
    import os

    if os.environ.get("GRADIO_TEMP_DIR"):
        return Path(os.environ["GRADIO_TEMP_DIR"])
    folder = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX))
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


BUSY_RETRY_SECONDS = 5
BUSY_LOG_SECONDS = 60.0  # the log says the server refuses connections at most this often
_busy_logged = [float("-inf")]


def _busy_reply() -> bytes:
    """The whole HTTP reply to a request past QA_MAX_CONNECTIONS: JSON, Retry-After and
    the security headers, where uvicorn's own was a plain-text "Service Unavailable" with
    none of them, and a log warning for every request refused."""
    body = json.dumps({"detail": "the server is busy (QA_MAX_CONNECTIONS connections are "
                                 "open); try again in a moment"}).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()),
               (b"retry-after", str(BUSY_RETRY_SECONDS).encode()), (b"connection", b"close"),
               *SECURITY_HEADERS]
    head = b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return b"HTTP/1.1 503 Service Unavailable\r\n" + head + b"\r\n" + body


def _header_timeout_protocol() -> type:
    """uvicorn's h11 protocol, plus a deadline for the request line and headers: h11 has
    none, and uvicorn's keep-alive timer is reset by every byte, so a client sending one
    header byte at a time (slowloris) would hold a connection for ever. A request past the
    connection cap is answered `_busy_reply` (uvicorn's test, made first)."""

    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(HEADER_SECONDS, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def _busy(self) -> bool:
            limit = self.limit_concurrency  # uvicorn's own test at a request's start
            return limit is not None and (len(self.connections) >= limit
                                          or len(self.tasks) >= limit)

        def data_received(self, data: bytes) -> None:
            if (self.conn.their_state is h11.IDLE and self._busy()
                    and (self.cycle is None or self.cycle.response_complete)):
                self._disarm()
                self.transport.write(_busy_reply())
                self.transport.close()
                now = time.monotonic()
                if now - _busy_logged[0] >= BUSY_LOG_SECONDS:
                    _busy_logged[0] = now
                    log(f"busy: {self.limit_concurrency} connections are open "
                        "(QA_MAX_CONNECTIONS); refusing more with 503")
                return
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutH11


def display_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise BadSetting(f"port must be from 1 to 65535, got {port!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            where = f"cannot listen on {host}:{port}"
            if exc.errno == errno.EADDRINUSE:  # the command was right: the machine is not
                raise QAError(f"{where}: the port is in use (another server?): stop it or "
                              "choose another with --port") from None
            if exc.errno == errno.EACCES:
                hint = " (ports below 1024 need privileges)" if port < 1024 else ""
                raise QAError(f"{where}: {exc.strerror}{hint}") from None
            raise BadSetting(f"{where}: {exc.strerror}") from None  # a --host not here


def bind_address(host: str) -> str:
    """`--host` as a socket takes it: an IPv6 address as URLs write it ("[::1]", which is
    loopback to `is_loopback`) without its brackets; the socket refused it ("cannot listen
    on [::1]:7860: Name or service not known")."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def run(app: FastAPI, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve `app` with uvicorn until interrupted, printing where. Refuses (BadSetting)
    to listen beyond loopback without a token, or when the index folder cannot be written
    and a build will be needed, before any model loads."""
    settings: Settings = app.state.pipeline.settings
    preflight(settings, host)
    host = bind_address(host)
    _check_port(host, port)
    app.state.allowed_hosts = allowed_hosts(settings, None if is_loopback(host) else host)
    url = display_url(host, port)
    readiness = getattr(app.state, "readiness", None)
    if isinstance(readiness, Readiness):
        readiness.url = url
    log(f"serving at {url} (API docs at {url}docs); the model loads in the background")
    with claimed_index(settings):  # another server on the index reads the same folders
        server = _server_class()(server_config(app, host, port), app.state.pipeline)
        server.run()
    if server.interrupted:  # Ctrl-C ends as Ctrl-C (exit 130), though uvicorn's re-raised
        raise KeyboardInterrupt  # signal can be lost in asyncio's runner (a task that ends)


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn's configuration for serving `app` (tests serve with it too)."""
    import uvicorn

    settings: Settings = app.state.pipeline.settings
    return uvicorn.Config(app, host=host, port=port, log_level="warning",
                          timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                          http=_header_timeout_protocol(),
                          limit_concurrency=settings.max_connections)


STOP_SECONDS = 120.0  # at shutdown, the longest wait for an upload's build to stop


def _server_class() -> type:
    """uvicorn's server, stopping the pipeline's builds as soon as a signal (Ctrl-C,
    SIGTERM) arrives: an upload being indexed gets its 503 ("the document was not added")
    at the build's next batch, before uvicorn's short grace for open requests begins (it
    would cancel the request, answered with a plain 500 and a traceback)."""
    from types import FrameType

    import uvicorn

    class Server(uvicorn.Server):
        def __init__(self, config: uvicorn.Config, pipeline: Pipeline) -> None:
            super().__init__(config)
            self.pipeline = pipeline
            self.interrupted = False

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.interrupted = self.interrupted or sig == signal.SIGINT
            self.pipeline.stop_indexing()
            super().handle_exit(sig, frame)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:  # no new requests while the upload stops
                server.close()
            if not self.force_exit and self.pipeline.busy():
                log("stopping: the index being built is left as it was…")
                deadline = time.monotonic() + STOP_SECONDS
                while (self.pipeline.busy() and not self.force_exit  # a second Ctrl-C
                       and time.monotonic() < deadline):
                    await asyncio.sleep(0.05)
            await super().shutdown(sockets)
            # uvicorn raises a SIGTERM again once it has shut down, and the process ends by
            # it before `run` could give up its claim: given up here
            release_index(self.pipeline.settings)

    return Server


def preflight(settings: Settings, host: str) -> None:
    """What must hold before anything loads: a token beyond loopback, a writable index
    folder if the index will have to be built, an installed spaCy pipeline."""
    check_exposure(host, settings)
    check_settings(settings)
    claim_index(settings)  # refused before anything loads; held until `run` ends


def serve(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 7860) -> None:
    """`qa serve`: the chat and the API over one pipeline built from `settings`."""
    pipeline = Pipeline(settings)
    preflight(pipeline.settings, host)
    _check_port(bind_address(host), port)  # before the app is built (`run` checks it too)
    private_upload_folder()
    run(create_app(pipeline), host, port)
