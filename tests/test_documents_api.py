"""The document routes, the router alone (no Gradio), the fake embedder: uploads of every good
and bad kind, list, show, delete, token, in-process through FastAPI's TestClient (fast); the
size cap enforced while the body streams, on a real uvicorn server on loopback (slow)."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa.config import Settings
from qa.documents_api import router
from qa.errors import WriteError
from qa.pipeline import Pipeline
from scripts.make_test_documents import corrupt_docx_bytes, zip_bomb
from tests.conftest import SEEDS, HashingEmbedder
from tests.conftest_web import free_port

DOCS = Path(__file__).resolve().parent / "data" / "docs"
LIMIT = 256 * 1024


def _app(tmp_path: Path) -> tuple[FastAPI, Pipeline]:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                        index_dir=tmp_path / "index", max_upload_bytes=LIMIT, spacy="none")
    pipeline = Pipeline(settings, HashingEmbedder())
    app = FastAPI()
    app.state.pipeline = pipeline
    app.include_router(router)
    return app, pipeline


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Pipeline]]:
    """One app for the module (tests use distinct document names), called in-process."""
    app, pipeline = _app(tmp_path_factory.mktemp("api"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, pipeline


@contextmanager
def served(app: FastAPI, qa_config: bool = False) -> Iterator[str]:
    """`app` on a real uvicorn server on a free loopback port: its URL. With `qa_config`,
    configured as `qa serve` configures it (`qa.api.server_config`)."""
    import uvicorn

    from qa.api import server_config

    port = free_port()
    config = server_config(app, "127.0.0.1", port) if qa_config else \
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


def _reply(sock: Any) -> bytes:
    """A raw HTTP reply read from `sock` until its JSON body has closed (or the peer has)."""
    reply = b""
    while b"}" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def _upload(client: httpx.Client, name: str, data: bytes, **kw: object) -> httpx.Response:
    return client.post("/api/documents", files={"file": (name, data)}, **kw)


def test_upload_list_show_delete(api: tuple[TestClient, Pipeline]) -> None:
    client, pipeline = api
    response = _upload(client, "water-report.pdf", (DOCS / "water-report.pdf").read_bytes())
    assert response.status_code == 201, response.text
    (doc,) = response.json()["documents"]
    assert doc["id"] == "water-report" and doc["kind"] == "pdf" and doc["pages"] == 3
    response = client.post("/api/documents", files=[
        ("file", ("orchard summary.docx", (DOCS / "orchard-summary.docx").read_bytes())),
        ("file", ("kestrel.htm", (DOCS / "kestrel-lighthouse.html").read_bytes()))])
    assert response.status_code == 201, response.text
    assert [d["id"] for d in response.json()["documents"]] == ["orchard-summary", "kestrel"]
    listing = client.get("/api/documents").json()
    assert {d["id"] for d in listing["documents"]} >= {
        "politico-us-iraq-advisory-transition", "water-report", "orchard-summary", "kestrel"}
    shown = client.get("/api/documents/water-report").json()
    stored = pipeline.settings.documents_dir / "water-report" / "text.txt"
    assert shown["text"] == stored.read_text("utf-8")
    assert [p["page"] for p in shown["page_spans"]] == [1, 2, 3]
    assert client.get("/api/documents/nope").status_code == 404
    long = "a" * 5000  # an unknown id is named, not echoed whole
    for r in (client.get(f"/api/documents/{long}"), client.delete(f"/api/documents/{long}")):
        assert r.status_code == 404 and len(r.json()["detail"]) < 160, r.json()
        assert "'aaaa" in r.json()["detail"]
    asked = client.post("/api/ask", json={"question": "Who met?", "doc_ids": [long]})
    assert asked.status_code == 404 and len(asked.json()["detail"]) < 160
    assert client.delete("/api/documents/water-report").json() == {
        "removed": ["water-report"]}
    assert client.get("/api/documents/water-report").status_code == 404
    seed = client.delete("/api/documents/politico-us-iraq-advisory-transition")
    assert seed.status_code == 409 and "seed" in seed.json()["detail"]
    again = _upload(client, "copy.html", (DOCS / "kestrel-lighthouse.html").read_bytes())
    assert again.status_code == 409 and again.json() == {"detail": (
        "copy.html: the same text as the document 'kestrel'; not added again")}
    assert not (pipeline.settings.documents_dir / "copy").exists()


def test_a_lock_file_that_is_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A `.lock` folder where the data folder's lock file goes made every upload and
    removal 'qa: internal error: IsADirectoryError' (a plain 500 over HTTP): it is a
    WriteError naming the path and what to do, and nothing is added."""
    app, pipeline = _app(tmp_path)
    lock = pipeline.settings.documents_dir / ".lock"
    lock.mkdir(parents=True)
    message = (f"the lock file {str(lock)!r} is a folder: qa keeps its lock there; "
               "remove or rename it")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = _upload(client, "kestrel.html", (DOCS / "kestrel-lighthouse.html").read_bytes())
        assert response.status_code == 500 and response.json() == {"detail": message}
    with pytest.raises(WriteError, match=re.escape(message)):
        pipeline.add_documents([DOCS / "kestrel-lighthouse.html"])
    assert [p.name for p in lock.parent.iterdir()] == [".lock"]  # nothing was added


def test_a_folder_qa_did_not_store_cannot_be_deleted(api: tuple[TestClient, Pipeline]) -> None:
    """DELETE /api/documents/NAME deleted any folder of the data folder with an id's name
    (an empty one, a user's own): it is refused with a 409 naming it, and left as it was."""
    client, pipeline = api
    folder = pipeline.settings.documents_dir / "someone-elses"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    response = client.delete("/api/documents/someone-elses")
    assert response.status_code == 409, response.text
    assert "not a document qa stored" in response.json()["detail"]
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("encrypted.pdf", (DOCS / "encrypted.pdf").read_bytes(), 422, "encrypted"),
        ("scan.pdf", (DOCS / "scanned.pdf").read_bytes(), 422, "no text layer"),
        ("broken.pdf", (DOCS / "truncated.pdf").read_bytes(), 422, "corrupt"),
        ("broken.docx", corrupt_docx_bytes(), 422, "corrupt"),
        ("empty.txt", b"", 422, "empty"),
        ("virus.exe", b"MZ\x90\x00\x03", 415, "unsupported file type"),
        ("fake.pdf", b"<html><body>hi</body></html>", 415, "not PDF"),
        ("latin.txt", b"caf\xe9\n", 422, "not UTF-8"),
    ],
)
def test_bad_uploads_get_a_one_line_4xx_and_change_nothing(
        api: tuple[TestClient, Pipeline], name: str, data: bytes, status: int, words: str) -> None:
    client, pipeline = api
    before = client.get("/api/documents").json()["documents"]
    response = _upload(client, name, data)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail and "Traceback" not in detail
    assert client.get("/api/documents").json()["documents"] == before
    names = {p.name for p in pipeline.settings.documents_dir.iterdir()}
    assert not {n for n in names if n.startswith(".upload-")}
    assert not names & {Path(name).stem, Path(name).stem.lower()}


def test_zip_bomb_upload(api: tuple[TestClient, Pipeline], tmp_path: Path) -> None:
    client, _ = api
    zip_bomb(tmp_path / "bomb.docx")
    response = _upload(client, "report.docx", (tmp_path / "bomb.docx").read_bytes())
    assert response.status_code == 413 and "zip bomb" in response.json()["detail"]


def test_a_name_in_another_script_keeps_its_letters(api: tuple[TestClient, Pipeline]) -> None:
    client, _ = api
    response = _upload(client, "日本語.txt", "灯台の記録\n\n灯台は1871年に建てられた。\n".encode())
    assert response.status_code == 201, response.text
    (doc,) = response.json()["documents"]
    assert doc["id"] == "日本語" and doc["name"] == "日本語.txt"  # not "document"
    assert client.get("/api/documents/日本語").json()["title"] == "灯台の記録"
    assert client.delete("/api/documents/日本語").json() == {"removed": ["日本語"]}


@pytest.mark.parametrize(("chars", "form"), [(5_000, "filename"), (40_000, "filename*")])
def test_a_file_name_too_long_is_named_as_such(api: tuple[TestClient, Pipeline], chars: int,
                                               form: str) -> None:
    """A 5,000-character file name was refused 422 'the multipart body is malformed:
    Maximum header size exceeded' (python-multipart's limit on a part's header): nothing
    said it was the name. A name (with any path a client sends) is read up to 4,096 bytes,
    as long as a path may be; a longer one is refused 422 saying the name is too long,
    whether it fits the parser's header limit or not, and nothing is stored."""
    client, pipeline = api
    name = "n" * (chars - 4) + ".txt"
    value = f'filename="{name}"' if form == "filename" else f"filename*=UTF-8''{name}"
    body = (f'--b\r\nContent-Disposition: form-data; name="file"; {value}\r\n'
            "Content-Type: text/plain\r\n\r\nNotes\n\nThe pier opens at six.\n\r\n--b--\r\n")
    before = set(pipeline.index.documents)
    response = client.post("/api/documents", content=body.encode(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("the file name is too long") and "4,096 bytes" in detail, detail
    assert "\n" not in detail and len(detail) < 200
    assert set(pipeline.index.documents) == before
    long_path = "C:\\Users\\" + "folder\\" * 450 + "pier-notes.txt"  # 3,620 bytes: read
    response = _upload(client, long_path, b"Pier notes\n\nThe pier opens at six.\n")
    assert response.status_code == 201, response.text
    (doc,) = response.json()["documents"]
    assert doc["id"].startswith("pier-notes")
    assert client.delete(f"/api/documents/{doc['id']}").status_code == 200


def test_an_upload_keeps_its_original_name_for_display(tmp_path: Path) -> None:
    """The id and the stored file come from a sanitised name; the name the file was uploaded
    as is kept beside them (cleaned for display, never a path) and listed."""
    app, pipeline = _app(tmp_path)
    pdf = (DOCS / "water-report.pdf").read_bytes()
    hostile = "..\\..\\tmp/Min\x1b[31mutes\u202eTXT.exe  (draft).txt"
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.post("/api/documents", files=[
            ("file", ("Annual Report (final).pdf", pdf)),
            ("file", (hostile, b"Minutes\n\nThe board met on Tuesday.\n"))])
        assert response.status_code == 201, response.text
        report, minutes = response.json()["documents"]
        assert report["id"] == "annual-report-final"
        assert report["name"] == "annual-report-final.pdf"
        assert report["original_name"] == "Annual Report (final).pdf"
        assert minutes["original_name"] == "Min[31mutesTXT.exe (draft).txt"
        listed = {d["id"]: d for d in client.get("/api/documents").json()["documents"]}
        assert listed["annual-report-final"]["original_name"] == "Annual Report (final).pdf"
        assert listed[minutes["id"]]["original_name"] == minutes["original_name"]
        seed = listed["politico-us-iraq-advisory-transition"]
        assert seed["original_name"] == seed["name"]  # a seed is its file
        shown = client.get("/api/documents/annual-report-final").json()
        assert shown["original_name"] == "Annual Report (final).pdf"
    data = pipeline.settings.documents_dir
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == [
        "annual-report-final", minutes["id"]]
    assert sorted(p.name for p in (data / "annual-report-final").iterdir()) == [
        "meta.json", "original.pdf", "text.txt"]
    assert not list(tmp_path.rglob("*Annual*")) and not list(tmp_path.rglob("*(draft)*"))


@pytest.mark.parametrize(("name", "doc_id"), [
    ("Café Report.pdf", "cafe-report"), ("straße.md", "straße"),
    ("My_File (2).docx", "my_file-2"), ("../../etc/passwd", "passwd"), ("ＡＢＣ.txt", "abc"),
    ("Ünïcödé—名前 v2.txt", "unicode-名前-v2"), ("!!!.txt", "document"),
    ("e\u0301clair.txt", "eclair"),
])
def test_safe_id(name: str, doc_id: str) -> None:
    from qa.loaders.library import safe_id

    assert safe_id(name) == doc_id


@pytest.mark.slow  # a real uvicorn server: what TestClient cannot show
def test_size_cap_is_enforced_while_streaming(tmp_path: Path) -> None:
    """Over real HTTP: an upload round trip, and the 413 arrives while most of the declared
    body has not even been sent."""
    import socket

    app, pipeline = _app(tmp_path)
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        ok = _upload(client, "Kestrel (2024).html",
                     (DOCS / "kestrel-lighthouse.html").read_bytes())
        assert ok.status_code == 201, ok.text
        listing = client.get("/api/documents").json()["documents"]
        assert {d["id"]: d["original_name"] for d in listing}["kestrel-2024"] == \
            "Kestrel (2024).html"
        host, port = url.removeprefix("http://").split(":")
        head = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
                b"Content-Type: text/plain\r\n\r\n")
        declared = 4_000_000  # under the Content-Length guard, far over the 256 KB file cap
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /api/documents HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: " + str(declared).encode() + b"\r\n\r\n" + head)
            sock.sendall(b"word " * (2 * LIMIT // 5))  # twice the cap: 512 KB of 4 MB
            reply = _reply(sock)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
        assert b"too large" in reply
        assert not any(p.name.startswith(".upload-") for p in
                       pipeline.settings.documents_dir.iterdir())  # temporary parts cleaned up
        with socket.create_connection((host, int(port)), timeout=10) as sock:  # declared size
            sock.sendall(b"POST /api/documents HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: 10000000000"
                         b"\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 413")


def test_writes_need_the_token_when_one_is_set(api: tuple[TestClient, Pipeline],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    client, pipeline = api
    monkeypatch.setattr(pipeline, "settings", replace(pipeline.settings, api_token="s3cret"))
    html = (DOCS / "kestrel-lighthouse.html").read_bytes().replace(b"1871", b"1870")
    assert _upload(client, "k.html", html).status_code == 401
    assert _upload(client, "k.html", html, headers={"Authorization": "Bearer wrong"}
                   ).status_code == 401
    ok = _upload(client, "k.html", html, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201
    doc_id = ok.json()["documents"][0]["id"]
    assert client.delete(f"/api/documents/{doc_id}").status_code == 401
    assert client.delete(f"/api/documents/{doc_id}",
                        headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/api/documents").status_code == 200  # reads stay open


def test_routes_are_in_the_openapi_schema(api: tuple[TestClient, Pipeline]) -> None:
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/documents"]) == {"get", "post"}
    assert set(paths["/api/documents/{doc_id}"]) == {"get", "delete"}
    body = paths["/api/documents"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body


def _bell_and_a_seed(client: TestClient, pipeline: Pipeline) -> Path:
    """Upload 'bell' and write a seed file of other text, whose copy over the upload's
    original makes the next build skip the upload; the seed file's path."""
    seed = pipeline.settings.seeds_dir / "bell-seed.txt"
    seed.write_bytes(b"The harbor is quiet at night.\n")
    assert _upload(client, "bell.txt", b"The harbor bell rings at noon every day.\n"
                   ).status_code == 201
    return seed


def test_an_upload_the_index_skipped_can_be_deleted(tmp_path: Path) -> None:
    """DELETE answered 404 'no document has the id' for an upload that is stored but not
    indexed (its original replaced by hand with a seed file's text): listed under problems,
    never removable over HTTP."""
    app, pipeline = _app(tmp_path)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        seed = _bell_and_a_seed(client, pipeline)
        shutil.copy(seed, pipeline.settings.documents_dir / "bell" / "original.txt")
        pipeline.rebuild()
        problems = client.get("/api/documents").json()["problems"]
        assert [p["file"] for p in problems] == [str(pipeline.settings.documents_dir / "bell")]
        r = client.delete("/api/documents/bell")
        assert r.status_code == 200, r.text
        assert r.json() == {"removed": ["bell"]}
        assert client.get("/api/documents").json()["problems"] == []
        assert not (pipeline.settings.documents_dir / "bell").exists()
        r = client.delete("/api/documents/bell")
        assert r.status_code == 404 and r.json() == {
            "detail": "no uploaded document has the id 'bell'"}


def test_the_list_and_its_problems_come_from_one_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /api/documents (and qa list, the web chat's list) read the documents from the
    index, then the problems from the index again: an upload or removal swapping it in
    between listed a document both as indexed and as skipped (or as neither)."""
    app, pipeline = _app(tmp_path)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        seed = _bell_and_a_seed(client, pipeline)
        before = pipeline.index
        shutil.copy(seed, pipeline.settings.documents_dir / "bell" / "original.txt")
        after = pipeline.rebuild()  # bell is now a copy of the seed: skipped
        assert "bell" not in after.documents and after.manifest_record.problems
        swaps = iter([before, after, after])
        monkeypatch.setattr(Pipeline, "index", property(lambda self: next(swaps)))
        listing = client.get("/api/documents").json()
    assert "bell" in [d["id"] for d in listing["documents"]]
    assert listing["problems"] == []  # both from the index it began with


class _ShutdownMidBuild(HashingEmbedder):
    """Stops the pipeline's builds (as Ctrl-C on `qa serve` does) while a build embeds."""

    def __init__(self) -> None:
        self.pipeline: Pipeline | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.pipeline is not None and len(texts) > 1:
            self.pipeline.stop_indexing()
        return super().embed(texts)


def _index_files(pipeline: Pipeline) -> dict[str, bytes]:
    folder = pipeline.settings.index_dir
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b""
            for p in sorted(folder.rglob("*")) if p.name != ".lock"}


def test_shutdown_while_an_upload_is_indexed_answers_503_and_changes_nothing(
        tmp_path: Path) -> None:
    """Ctrl-C while an upload is embedded: a one-line JSON 503, not a plain 500; the index
    on disk is the one from before (no new build, no temporary folder), the upload is not
    in the data folder, and a new pipeline opens the old index as it was."""
    app, pipeline = _app(tmp_path)
    embedder = _ShutdownMidBuild()
    pipeline.embedder = embedder
    before_ids = list(pipeline.index.documents)
    before = _index_files(pipeline)
    embedder.pipeline = pipeline
    text = "The harbour master rang the bell at noon. " * 200
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = _upload(client, "harbour.txt", text.encode())
        assert response.status_code == 503, response.text
        assert response.json() == {
            "detail": "the server is shutting down; the document was not added"}
        later = _upload(client, "harbour.txt", text.encode())  # none starts any more
        assert later.status_code == 503
        removal = client.delete("/api/documents/politico-us-iraq-advisory-transition")
        assert removal.status_code in (409, 503)
    assert _index_files(pipeline) == before
    assert not (pipeline.settings.documents_dir / "harbour").exists()
    reopened = Pipeline(pipeline.settings, HashingEmbedder())
    assert list(reopened.index.documents) == before_ids
    assert reopened.index.manifest == pipeline.index.manifest


def test_a_signal_to_the_server_stops_the_builds_first() -> None:
    """`qa serve`'s uvicorn server stops the pipeline's builds on the signal itself, before
    its few seconds of grace for open requests begin (then it cancels them: a plain 500)."""
    import signal

    import uvicorn

    from qa.api import _server_class

    stopped: list[bool] = []

    class Recorder:
        def stop_indexing(self) -> None:
            stopped.append(True)

    server = _server_class()(uvicorn.Config(FastAPI()), Recorder())
    server.handle_exit(signal.SIGINT, None)
    assert stopped == [True] and server.should_exit


class _Counting(HashingEmbedder):
    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return super().embed(texts)


def test_a_file_over_the_size_cap_is_named_as_it_was_sent(
        api: tuple[TestClient, Pipeline]) -> None:
    """Every refusal names the file as it was sent ('notes.txt: the file is empty'), but
    one over the size cap was named by the id it would have had ('annual-report: the file
    is too large'), not the file's name."""
    client, _ = api
    response = _upload(client, "Annual Report (draft).txt", b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["detail"] == ("Annual Report (draft).txt: the file is too large "
                                         f"(at most {LIMIT:,} bytes)")


def test_an_upload_over_the_character_cap_is_413_at_once(tmp_path: Path) -> None:
    """Bytes under the cap can still be hours of indexing (30 MB of text): the text's length
    is capped too, refused before any model work, naming the cap and its setting."""
    app, pipeline = _app(tmp_path)
    pipeline.settings = replace(pipeline.settings, max_upload_chars=5000)
    pipeline.index  # noqa: B018 - built before counting
    embedder = _Counting()
    pipeline.embedder = embedder
    with TestClient(app, base_url="http://127.0.0.1") as client:
        long = _upload(client, "long.txt", ("The tide rose at dawn. " * 300).encode())
        assert long.status_code == 413, long.text
        assert long.json() == {"detail": "long.txt: the text is too long to index here "
                                         "(6,900 characters; at most 5,000, QA_MAX_UPLOAD_CHARS)"}
        assert embedder.calls == 0 and not (pipeline.settings.documents_dir / "long").exists()
        short = _upload(client, "short.txt", ("The tide rose at dawn. " * 200).encode())
        assert short.status_code == 201, short.text


def test_shutdown_waits_for_the_first_build_to_stop(tmp_path: Path) -> None:
    """A server stopped while it builds its index: `wait_idle` returns once the build has
    stopped at its next batch (the process may exit), leaving no index and no build folder."""
    _, pipeline = _app(tmp_path)
    embedder = _ShutdownMidBuild()
    pipeline.embedder = embedder
    embedder.pipeline = pipeline
    errors: list[BaseException] = []

    def build() -> None:
        try:
            pipeline.index  # noqa: B018 - the first build
        except BaseException as exc:  # noqa: BLE001 - examined below
            errors.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    assert pipeline.wait_idle(30)
    builder.join(timeout=30)
    assert not pipeline.busy()
    assert [type(e).__name__ for e in errors] == ["ShuttingDown"]
    index = pipeline.settings.index_dir
    assert not (index / "manifest.json").exists()
    assert not [p for p in index.iterdir() if p.name.startswith(".build-")]


def test_a_chat_upload_stopped_by_shutdown_says_it_was_not_added(tmp_path: Path) -> None:
    """The web chat's upload goes the same way: a one-line status, nothing added."""
    from qa.ui import add_files

    _, pipeline = _app(tmp_path)
    pipeline.index  # noqa: B018 - built before the upload
    embedder = _ShutdownMidBuild()
    pipeline.embedder = embedder
    embedder.pipeline = pipeline
    upload = tmp_path / "harbour.txt"
    upload.write_text("The harbour master rang the bell at noon. " * 200, encoding="utf-8")
    status = add_files(pipeline, [str(upload)])
    assert "the server is shutting down; the document was not added" in status
    assert "qa-ok" not in status and "harbour" not in pipeline.index.documents


def test_the_character_cap_is_for_all_the_files_of_one_upload(tmp_path: Path) -> None:
    """Twenty files just under the cap would be twenty times the indexing the cap allows:
    the cap is on the upload's text in all; the request is refused whole, nothing stored."""
    app, pipeline = _app(tmp_path)
    pipeline.settings = replace(pipeline.settings, max_upload_chars=5000)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.post("/api/documents", files=[
            ("file", ("dawn.txt", ("The tide rose at dawn. " * 150).encode())),
            ("file", ("dusk.txt", ("The tide fell at dusk. " * 150).encode()))])
        assert response.status_code == 413, response.text
        assert response.json() == {"detail": (
            "dusk.txt: too much text for one upload (3,450 characters after 3,450 in the "
            "files before it; at most 5,000, QA_MAX_UPLOAD_CHARS): send it on its own")}
        assert not {"dawn", "dusk"} & set(pipeline.index.documents)
        assert _upload(client, "dusk.txt", ("The tide fell at dusk. " * 150).encode()
                       ).status_code == 201


def test_an_upload_sweeps_what_a_killed_server_left(tmp_path: Path) -> None:
    """A server killed (SIGKILL, out of memory, power) while an upload streamed left its
    parts (up to 20 files of QA_MAX_UPLOAD_BYTES) in the data folder for good; one killed
    while storing a document left an `.incoming-` folder, and one killed while removing a
    document its `.removed-` folder. The next upload removes them; an upload still
    streaming (another server on the same folder) is left alone."""
    import os

    app, pipeline = _app(tmp_path)
    pipeline.index  # noqa: B018 - built first
    data = pipeline.settings.documents_dir
    data.mkdir(exist_ok=True)
    stale, fresh, incoming, removed = (data / ".upload-stale", data / ".upload-fresh",
                                       data / ".incoming-0123", data / ".removed-tides-0123")
    for folder in (stale, fresh, incoming, removed):
        folder.mkdir()
        (folder / "part-0").write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    for path in (stale / "part-0", stale):
        os.utime(path, (two_hours_ago, two_hours_ago))
    # a mark killed while it was written (it names its index: `settle`)
    marks = [data / "..pending-tides.a1b2.tmp", data / "..removed-tides-0123.index.c3.tmp"]
    for mark in marks:
        mark.write_text("/half")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert _upload(client, "tides.txt", ("The tide rose at dawn. " * 20).encode()
                       ).status_code == 201
    assert not stale.exists() and not incoming.exists() and not removed.exists()
    assert (fresh / "part-0").exists()
    assert not any(mark.exists() for mark in marks)


@pytest.mark.slow  # a real uvicorn server (and Gradio): what TestClient cannot show
def test_an_upload_still_streaming_at_shutdown_gets_503_at_once(tmp_path: Path) -> None:
    """Ctrl-C while an upload's body is still arriving (or stalled): a JSON 503 within a
    moment, its parts removed, instead of uvicorn cancelling the request after its grace
    (a plain 500, a logged traceback, the parts left in the data folder). The app's
    hardening (`qa.api.Hardening`) does it for every body: the chat's upload route too."""
    import socket

    from qa.api import create_app

    _, pipeline = _app(tmp_path)
    pipeline.index  # noqa: B018 - built first
    data = pipeline.settings.documents_dir

    def stalled(sock: socket.socket, path: bytes, field: bytes) -> None:
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n"
                     b'--b\r\nContent-Disposition: form-data; name="' + field +
                     b'"; filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
                     + b"word " * 2000)

    with served(create_app(pipeline)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            stalled(sock, b"/api/documents", b"file")
            _wait_for(lambda: data.is_dir() and any(
                p.name.startswith(".upload-") for p in data.iterdir()))
            started = time.monotonic()
            pipeline.stop_indexing()  # what the signal handler of `qa serve` does first
            replies = [_reply(sock)]
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            stalled(sock, b"/gradio_api/upload?upload_id=x", b"files")
            replies.append(_reply(sock))
        assert time.monotonic() - started < 3
    for reply in replies:
        assert reply.startswith(b"HTTP/1.1 503"), reply[:200]
        assert reply.endswith(
            b'{"detail":"the server is shutting down; the document was not added"}')
    assert not any(p.name.startswith(".upload-") for p in data.iterdir())


def _wait_for(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_full_disk_is_a_507_naming_it_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data folder on a full disk: an upload whose parts could not be streamed to disk was
    a 422 'the multipart body is malformed (OSError)', and one whose stored copy could not be
    written a bare 500 'internal error'. Both are a 507 saying which folder is full."""
    import errno
    import os

    from qa.documents_api import _Upload

    app, pipeline = _app(tmp_path)
    before = set(pipeline.index.documents)
    data = pipeline.settings.documents_dir

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        for patched in ((_Upload, "_data"), (os, "fsync")):  # streaming it; storing it
            with monkeypatch.context() as patch:
                patch.setattr(*patched, full)
                response = _upload(client, "notes.txt", b"The mill stood by the river.\n")
            assert response.status_code == 507, response.text
            detail = response.json()["detail"]
            assert detail.startswith(f"cannot write '{data}/")
            assert detail.endswith(": No space left on device")
            assert [p.name for p in data.iterdir() if p.name != ".lock"] == []
    assert set(pipeline.index.documents) == before


EXTENDED_NAMES = [  # (Content-Disposition parameters after name="file", the name kept)
    ("filename*=UTF-8''%E2%80%A6.txt", "….txt"),
    ("filename*=utf-8'en'Caf%C3%A9%20notes.txt", "Café notes.txt"),
    ("filename=\"plain.txt\"; filename*=UTF-8''Ta%C3%9Fe.txt", "Taße.txt"),
    ("filename*=ISO-8859-1''Se%F1or.txt", "Señor.txt"),
    ("filename=\"fallback.txt\"; filename*=UTF-8''%FF%FE.txt", "fallback.txt"),
]


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_an_rfc_5987_file_name_is_read_on_a_real_server(tmp_path: Path) -> None:
    """A part naming its file only as `filename*=UTF-8''%E2%80%A6.txt` (RFC 6266's form,
    which python-multipart ignores) got 422 "no file"; the name is decoded, preferred to
    a plain `filename`, which stands when `filename*` cannot be decoded."""
    app, _ = _app(tmp_path)
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as web:
        for n, (params, kept) in enumerate(EXTENDED_NAMES):
            body = (b'--XYZ\r\nContent-Disposition: form-data; name="file"; '
                    + params.encode("ascii") + b"\r\nContent-Type: text/plain\r\n\r\n"
                    + f"Reservoir {n} held {n + 40} days of water.\n".encode()
                    + b"\r\n--XYZ--\r\n")
            r = web.post("/api/documents", content=body,
                         headers={"content-type": "multipart/form-data; boundary=XYZ"})
            assert r.status_code == 201, (params, r.text)
            [document] = r.json()["documents"]
            assert document["original_name"] == kept, (params, document)


def test_a_multipart_content_type_without_its_boundary_says_so(
        api: tuple[TestClient, Pipeline]) -> None:
    """`Content-Type: multipart/form-data` set by hand (a `fetch` or `requests` call that
    sets the header itself drops the boundary the client would have added) was told to
    "send the file as multipart/form-data", which it had. It is told what is missing."""
    client, _ = api
    body = (b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            b"\r\nThe pier closes at dusk.\r\n--XYZ--\r\n")
    r = client.post("/api/documents", content=body,
                    headers={"content-type": "multipart/form-data"})
    assert r.status_code == 415
    assert r.json() == {"detail": "the Content-Type multipart/form-data names no boundary: "
                                  "let the HTTP client set that header (do not set it by "
                                  "hand)"}
    r = client.post("/api/documents", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert r.json() == {"detail": "send the file as multipart/form-data in a field named 'file'"}
