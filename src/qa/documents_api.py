"""The document routes of the HTTP API (no Gradio needed): upload, list, show, delete.

    POST   /api/documents        multipart/form-data, one or more `file` parts -> 201
                                 {"documents": [...]}; the file is checked by content,
                                 stored in the data folder and indexed
    GET    /api/documents        {"documents": [...], "problems": [{"file", "reason"}]}
    GET    /api/documents/{id}   one document's metadata and its text (what citations index)
    DELETE /api/documents/{id}   remove an uploaded document -> {"removed": [id]}

Writes need the API token when one is set (`qa.security.require_token`). An upload is
parsed while it streams, to temporary files in the data folder (never held in memory): a
part over `QA_MAX_UPLOAD_BYTES` is refused (413) the moment it passes the limit, never read
whole, and so is a body over `upload_cap` (MAX_FILES such files and their framing).
Bad files get 4xx with a one-line `detail` (413 too large or zip bomb, 415 wrong type, 422
empty, corrupt, encrypted or scanned, or a file name over 4,096 bytes, 409 the same text as
a document already there) and change nothing that is already indexed.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import urllib.parse
import uuid
from pathlib import Path
from typing import IO, Any, cast

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from qa.atomic import open_lock_file
from qa.config import Settings
from qa.errors import ShuttingDown, WriteError, quoted
from qa.loaders import BadDocument
from qa.loaders import library as lib
from qa.pipeline import Pipeline
from qa.schema import document_json, documents_json
from qa.security import require_token

MAX_FILES = 20  # files per upload request
MULTIPART_OVERHEAD = 16 * 1024  # bytes of part headers and boundaries allowed per file
MAX_NAME_BYTES = 4096  # of a part's file name, any path a client sends with it included
# a part's header line: the longest name, percent-encoded (`filename*`), and the rest
MAX_PART_HEADER = 3 * MAX_NAME_BYTES + 1024


def name_too_long(size: str) -> str:
    """Why a part's file name is refused: its `size` ("5,000 bytes"), and the limit."""
    return f"the file name is too long ({size}; a name may have at most {MAX_NAME_BYTES:,} bytes)"

FIELD_NAMES = (b"file", b"files")
INCOMPLETE = ("the multipart body is incomplete: it ends before its closing boundary (the "
              "upload was cut short?)")

router = APIRouter(prefix="/api/documents", tags=["documents"])


def upload_cap(settings: Settings) -> int:
    """The most bytes one upload request may carry: MAX_FILES files of the file limit, each
    with its multipart framing (the server's body cap for this route, `qa.api.Hardening`)."""
    return MAX_FILES * (settings.max_upload_bytes + MULTIPART_OVERHEAD)

_UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {
            "type": "array", "items": {"type": "string", "format": "binary"},
            "description": ".txt .md .html .htm .pdf .docx; checked by content",
        }},
    }}},
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "a token is set and the request lacks it"},
    404: {"description": "no such document"},
    409: {"description": "the upload's text is already a document's; or a seed document "
                         "cannot be removed"},
    413: {"description": "the file is too large, or a zip bomb"},
    415: {"description": "not a supported type, or the content does not match the name"},
    422: {"description": "empty, corrupt, encrypted, or a scan without a text layer; a file "
                         f"name over {MAX_NAME_BYTES:,} bytes"},
    503: {"description": "the server is shutting down: the change was not made"},
    429: {"description": "too many wrong tokens from this client lately (see Retry-After)"},
}


def _pipeline(request: Request) -> Pipeline:
    pipeline = request.app.state.pipeline
    assert isinstance(pipeline, Pipeline)
    return pipeline


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status)


# RFC 5987/8187 `filename*=charset'language'percent-encoded`, as RFC 6266 lets a
# Content-Disposition name a file; python-multipart ignores it (RFC 7578 keeps it out of
# forms), but clients built on HTTP libraries send it, some without a plain `filename`.
_EXTENDED_FILENAME = re.compile(rb"""(?:^|;)[ \t]*filename\*[ \t]*=[ \t]*"?([^";]*)"?""",
                                re.IGNORECASE)
_CHARSETS = ("utf-8", "iso-8859-1")


def part_filename(disposition: bytes, options: dict[bytes, bytes]) -> str | None:
    """The file name a multipart part's Content-Disposition gives (None: not a file):
    `filename*` decoded when its charset is UTF-8 or ISO-8859-1 and its bytes are, else
    `filename` (UTF-8, as browsers send it)."""
    found = _EXTENDED_FILENAME.search(disposition)
    if found is not None:
        charset, _, rest = found[1].decode("latin-1").partition("'")
        _, _, encoded = rest.partition("'")
        if charset.strip().lower() in _CHARSETS:
            try:
                return urllib.parse.unquote_to_bytes(encoded).decode(charset.strip().lower())
            except UnicodeDecodeError:
                pass  # the plain name, if any, stands
    plain = options.get(b"filename")
    if plain is None:
        return "" if found is not None else None  # a file whose name cannot be read
    return plain.decode("utf-8", "replace")


class _Upload:
    """Streams multipart parts into files under `folder`, refusing any part over `limit`."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.files: list[tuple[Path, str]] = []
        self.error: tuple[int, str] | None = None
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._out: Any = None
        self._size = 0
        self._name = ""
        self.alive: IO[str] | None = None  # the folder's STREAMING lock, held while in use

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin, "on_part_data": self._data,
            "on_part_end": self._end, "on_header_field": self._field,
            "on_header_value": self._value, "on_header_end": lambda: None,
            "on_headers_finished": self._headers_done,
        }

    def _begin(self) -> None:
        self._headers, self._header_field, self._out, self._size = {}, b"", None, 0

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field = data[start:end].lower()

    def _value(self, data: bytes, start: int, end: int) -> None:
        key = self._header_field
        self._headers[key] = self._headers.get(key, b"") + data[start:end]

    def _headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        disposition = self._headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = part_filename(disposition, options)
        if options.get(b"name") not in FIELD_NAMES or name is None:
            return  # other fields are ignored
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            size = len(name.encode("utf-8", "surrogateescape"))
            self.error = self.error or (422, name_too_long(f"{size:,} bytes"))
            return
        if len(self.files) >= MAX_FILES:
            self.error = self.error or (413, f"at most {MAX_FILES} files per upload")
            return
        self._name = name or "upload"
        path = self.folder / f"part-{len(self.files)}"
        self._out = path.open("wb")
        self.files.append((path, self._name))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._out is None or self.error:
            return
        self._size += end - start
        if self._size > self.limit:
            shown = lib.display_name(self._name) or "upload"  # (cleaned, as other refusals)
            self.error = (413, f"{shown}: the file is too large (at most {self.limit:,} bytes)")
            return
        self._out.write(data[start:end])

    def _end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def close(self) -> None:
        self._end()

    def end(self) -> None:
        """Let go of the folder (removed by then): its lock no longer says it is in use."""
        if self.alive is not None:
            self.alive.close()
            self.alive = None


async def _receive(request: Request, pipeline: Pipeline) -> tuple[Path, _Upload]:
    """Parse the multipart body as it streams; the temporary folder and what it holds."""
    from python_multipart.multipart import (
        MultipartParser,
        MultipartState,
        parse_options_header,
    )

    settings = pipeline.settings
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise BadDocument("send the file as multipart/form-data in a field named 'file'", 415)
    if not options.get(b"boundary"):  # the header set by hand, as `fetch` callers often do
        raise BadDocument("the Content-Type multipart/form-data names no boundary: let the "
                          "HTTP client set that header (do not set it by hand)", 415)
    limit, cap = settings.max_upload_bytes, upload_cap(settings)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise BadDocument(f"the body is over {cap:,} bytes", 413)
    data = lib.check_data_dir(settings)
    folder = data / f"{lib.UPLOAD_PREFIX}{uuid.uuid4().hex}"
    try:
        folder.mkdir()
    except OSError as exc:
        raise WriteError.of(exc, folder) from None
    upload = _Upload(folder, limit)
    try:  # held until the folder is removed: a sweep tells a killed server's folder by it
        upload.alive = open_lock_file(folder / lib.STREAMING)
        fcntl.flock(upload.alive, fcntl.LOCK_EX)
    except (OSError, WriteError) as exc:
        upload.end()
        shutil.rmtree(folder, ignore_errors=True)
        raise exc if isinstance(exc, WriteError) else WriteError.of(exc, folder) from None
    parser = MultipartParser(options[b"boundary"], cast(Any, upload.callbacks()),
                             max_header_size=MAX_PART_HEADER)
    try:
        async for chunk in request.stream():  # `qa.api.Hardening` ends it at shutdown: 503
            parser.write(chunk)
            if upload.error:
                break
        else:
            parser.finalize()
            if parser.state != MultipartState.END:  # finalize does not check it: the part
                upload.error = (422, INCOMPLETE)  # that had arrived was stored as the file
    except BaseException as exc:
        upload.close()
        shutil.rmtree(folder, ignore_errors=True)
        upload.end()
        if isinstance(exc, HTTPException) or not isinstance(exc, Exception):
            raise  # the server's body cap (413), answered as it is; a cancelled request
        if isinstance(exc, OSError):  # the part could not be stored: a full disk (507)
            raise WriteError.of(exc, folder) from None
        if "header size" in str(exc):  # python-multipart's limit (MAX_PART_HEADER)
            raise BadDocument(name_too_long(f"its part's header is over {MAX_PART_HEADER:,} "
                                            "bytes")) from None
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise BadDocument(f"the multipart body is malformed: {reason}") from None
    upload.close()
    return folder, upload


@router.post("", status_code=201, dependencies=[Depends(require_token)], responses=_ERRORS,
             openapi_extra={"requestBody": _UPLOAD_BODY})
async def upload_documents(request: Request) -> JSONResponse:
    """Add documents: each is checked by content, stored in the data folder, then indexed."""
    pipeline = _pipeline(request)
    try:
        folder, upload = await _receive(request, pipeline)
    except (BadDocument, WriteError) as exc:
        return _error(exc.status, str(exc))
    try:
        if upload.error:
            return _error(*upload.error)
        if not upload.files:
            return _error(422, "no file: send it in a multipart field named 'file'")
        paths = [p for p, _ in upload.files]
        names = [n for _, n in upload.files]
        documents = await run_in_threadpool(pipeline.add_documents, paths, names)
        entries = [lib.entry(pipeline.settings, d) for d in documents]
        return JSONResponse({"documents": [document_json(e) for e in entries]}, 201)
    except (BadDocument, lib.UnknownDocument, WriteError, ShuttingDown) as exc:
        return _error(exc.status, str(exc))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        upload.end()


@router.get("", responses=_ERRORS)
def list_documents(request: Request) -> dict[str, Any]:
    """Every indexed document (seeds and uploads) and the files that were skipped, with why."""
    pipeline = _pipeline(request)
    return documents_json(*pipeline.library())


@router.get("/{doc_id}", responses=_ERRORS)
def get_document(doc_id: str, request: Request) -> JSONResponse:
    """One document's metadata and text: every citation's offsets point into `text`."""
    pipeline = _pipeline(request)
    index = pipeline.index  # once: an upload or removal may swap it meanwhile
    document = index.documents.get(doc_id)
    if document is None:
        return _error(404, f"no document has the id {quoted(doc_id)}")
    return JSONResponse(document_json(lib.entry(pipeline.settings, document,
                                                index.listed(doc_id)), text=document))


@router.delete("/{doc_id}", dependencies=[Depends(require_token)], responses=_ERRORS)
def delete_document(doc_id: str, request: Request) -> JSONResponse:
    """Remove an uploaded document and update the index (seed documents stay). An upload
    the index skipped (listed under `problems`: a copy of another document's text) can be
    removed too."""
    pipeline = _pipeline(request)
    try:
        removed = pipeline.remove_documents([doc_id])
    except (BadDocument, lib.UnknownDocument, ShuttingDown, WriteError) as exc:
        return _error(exc.status, str(exc))
    # any other QAError is the app's handler's, as on an upload (the model or index cannot
    # be loaded: 503)
    return JSONResponse({"removed": removed})
