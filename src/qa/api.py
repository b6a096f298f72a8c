"""The HTTP edge: one FastAPI app with the JSON API and, at `/`, the web chat (`qa.ui`).

In: JSON requests. Out: the JSON shapes of `qa ask --json` and `qa retrieve --json`
(`qa.schema`), so every edge answers alike.

    POST /api/ask       {"question": str, "history"?: [str], "k"?: int}  -> an answer
    POST /api/retrieve  {"question": str, "k"?: int}                     -> a list of hits
                        (both take "doc_ids"?: [str] to search only those documents;
                        citations of paged documents carry "page")
    /api/documents      upload, list, show and delete documents (`qa.documents_api`)
    GET  /healthz       200 {"status": "ok", counts...} once the model and index are
                        loaded; 503 {"status": "loading" | "error"} before
    GET  /docs          the OpenAPI documentation
    /                   the Gradio chat

Every error is JSON `{"detail": "one line"}`: 422 for bad input (with `errors`, the
per-field list, for validation errors), 404 for an unknown route, 503 when the model or index
cannot be loaded, 500 otherwise. One pipeline serves every request from FastAPI's threadpool;
it is warmed in a background thread at startup, so the server answers `/healthz` at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic_core import PydanticCustomError
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa.config import MAX_HISTORY, MAX_K, MAX_QUESTION_CHARS, Settings
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
)
from qa.log import log
from qa.pipeline import Pipeline, clean_question, default_pipeline
from qa.schema import answer_json, hit_json, problem_json, with_pages
from qa.ui import CSS, HEAD, build_ui

WARM_QUESTION = "What is this document about?"  # first call pays for lazy tables and torch

_UNAVAILABLE = (IndexMissing, IndexCorrupt, IndexStale, ModelError, SeedError)


# -- requests --------------------------------------------------------------------------------


def _checked_question(value: str) -> str:
    try:
        return clean_question(value)
    except BadQuestion as exc:
        raise PydanticCustomError("bad_question", str(exc)) from None


Question = Annotated[
    StrictStr,
    AfterValidator(_checked_question),
    Field(description=f"1 to {MAX_QUESTION_CHARS:,} characters after trimming",
          json_schema_extra={"minLength": 1, "maxLength": MAX_QUESTION_CHARS}),
]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"passages to consider, 1 to {MAX_K}")]


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    k: K | None = None
    doc_ids: list[StrictStr] | None = Field(
        default=None, max_length=1000,
        description="only search these documents (ids from GET /api/documents)")


class AskRequest(RetrieveRequest):
    history: list[Question] = Field(
        default_factory=list, max_length=MAX_HISTORY,
        description=f"earlier questions of the conversation, oldest first (at most {MAX_HISTORY})",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "question": "What does he say Iraq will still need?",
            "history": ["What did Kadhimi tell the Washington Post?"],
        }]},
    )


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
    return 500


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_detail(errors: list[dict[str, Any]]) -> str:
    """One line for a person from pydantic's error list, e.g. `k: Input should be ...`."""
    lines = []
    for error in errors[:3]:
        where = _where(tuple(error.get("loc", ())))
        if error.get("type") == "json_invalid":
            lines.append("the body is not valid JSON")
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
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": validation_detail(errors), "errors": errors}, 422)

    @app.exception_handler(QAError)
    async def library_error(_: Request, exc: QAError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log(f"internal error: {type(exc).__name__}: {exc}")
        return JSONResponse({"detail": "internal error"}, 500)


# -- warm-up ---------------------------------------------------------------------------------


@dataclass
class Readiness:
    """What `/healthz` reports: loading, ready (with the index's counts) or failed."""

    status: str = "loading"
    detail: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    url: str = ""


def warm(pipeline: Pipeline, readiness: Readiness) -> None:
    """Load the model and index and answer one question, reporting progress on stderr."""
    started = time.perf_counter()
    try:
        log("loading model…")
        warm_up = getattr(pipeline.embedder, "warm_up", None)
        if callable(warm_up):
            warm_up()
        log("loading index…")
        index = pipeline.index
        pipeline.ask(WARM_QUESTION)
        counts = dict(index.manifest.get("counts", {}))
    except Exception as exc:  # noqa: BLE001 - reported by /healthz and on stderr
        readiness.detail = str(exc) if isinstance(exc, QAError) else f"{type(exc).__name__}: {exc}"
        readiness.status = "error"
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

    shared = pipeline or default_pipeline()
    readiness = Readiness()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=warm, args=(shared, readiness), name="qa-warm-up",
                         daemon=True).start()
        yield

    app = FastAPI(
        title="qa",
        summary="Answers questions about documents, every answer cited to the exact passage.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.pipeline = shared
    app.state.readiness = readiness
    _install_error_handlers(app)
    app.include_router(documents_router)

    @app.post("/api/ask", tags=["qa"], responses=ERRORS)
    def ask(request: AskRequest) -> dict[str, Any]:
        """A cited answer to `question` (or an abstention), given the earlier questions."""
        answer = shared.ask(request.question, request.history, request.k, request.doc_ids)
        return with_pages(answer_json(answer), shared.index.documents)

    @app.post("/api/retrieve", tags=["qa"], responses=ERRORS)
    def retrieve(request: RetrieveRequest) -> list[dict[str, Any]]:
        """The passages that best match `question`, best first, each with its best sentence."""
        hits = shared.retrieve(request.question, request.k, request.doc_ids)
        return [hit_json(hit) for hit in hits]

    @app.get("/healthz", tags=["ops"], responses={503: {"description": "loading or failed"}})
    def healthz() -> JSONResponse:
        """200 once the model and index are loaded; 503 while loading or after a failure."""
        body: dict[str, Any] = {"status": readiness.status}
        if readiness.status == "ok":
            body.update(readiness.counts)
        elif readiness.detail:
            body["detail"] = readiness.detail
        problems = shared.problems()
        if problems:  # files skipped from the corpus, with why
            body["problems"] = [problem_json(p) for p in problems]
        return JSONResponse(body, 200 if readiness.status == "ok" else 503)

    return gr.mount_gradio_app(app, build_ui(shared), path="/", css=CSS, head=HEAD)


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
            raise BadSetting(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def run(app: FastAPI, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve `app` with uvicorn until interrupted, printing where."""
    import uvicorn

    _check_port(host, port)
    url = display_url(host, port)
    readiness = getattr(app.state, "readiness", None)
    if isinstance(readiness, Readiness):
        readiness.url = url
    log(f"serving at {url} (API docs at {url}docs); the model loads in the background")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)


def serve(settings: Settings | None = None, host: str = "127.0.0.1", port: int = 7860) -> None:
    """`qa serve`: the chat and the API over one pipeline built from `settings`."""
    run(create_app(Pipeline(settings)), host, port)
