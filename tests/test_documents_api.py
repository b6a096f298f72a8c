"""The document routes over HTTP: a real uvicorn server on loopback, the router alone (no
Gradio), the fake embedder. Uploads of every good and bad kind, list, show, delete, token,
the size cap enforced while the body streams."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from qa.config import Settings
from qa.documents_api import router
from qa.pipeline import Pipeline
from scripts.make_test_documents import corrupt_docx_bytes, zip_bomb
from tests.conftest import SEEDS, HashingEmbedder
from tests.conftest_web import free_port

DOCS = Path(__file__).resolve().parent / "data" / "docs"
LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Pipeline]]:
    """One server for the module (tests use distinct document names)."""
    import uvicorn

    tmp_path = tmp_path_factory.mktemp("api")
    shutil.copytree(SEEDS, tmp_path / "seeds")
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                        index_dir=tmp_path / "index", max_upload_bytes=LIMIT, spacy="none")
    pipeline = Pipeline(settings, HashingEmbedder())
    app = FastAPI()
    app.state.pipeline = pipeline
    app.include_router(router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield url, pipeline
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@functools.cache
def _http() -> httpx.Client:
    """One client for the module (a new client per request costs ~0.1 s of TLS setup)."""
    return httpx.Client(timeout=30)


def _upload(url: str, name: str, data: bytes, **kw: object) -> httpx.Response:
    return _http().post(f"{url}/api/documents", files={"file": (name, data)}, timeout=30, **kw)


def test_upload_list_show_delete(api: tuple[str, Pipeline]) -> None:
    url, pipeline = api
    response = _upload(url, "water-report.pdf", (DOCS / "water-report.pdf").read_bytes())
    assert response.status_code == 201, response.text
    (doc,) = response.json()["documents"]
    assert doc["id"] == "water-report" and doc["kind"] == "pdf" and doc["pages"] == 3
    response = _http().post(f"{url}/api/documents", timeout=30, files=[
        ("file", ("orchard summary.docx", (DOCS / "orchard-summary.docx").read_bytes())),
        ("file", ("kestrel.htm", (DOCS / "kestrel-lighthouse.html").read_bytes()))])
    assert response.status_code == 201, response.text
    assert [d["id"] for d in response.json()["documents"]] == ["orchard-summary", "kestrel"]
    listing = _http().get(f"{url}/api/documents").json()
    assert {d["id"] for d in listing["documents"]} >= {
        "politico-us-iraq-advisory-transition", "water-report", "orchard-summary", "kestrel"}
    shown = _http().get(f"{url}/api/documents/water-report").json()
    stored = pipeline.settings.documents_dir / "water-report" / "text.txt"
    assert shown["text"] == stored.read_text("utf-8")
    assert [p["page"] for p in shown["page_spans"]] == [1, 2, 3]
    assert _http().get(f"{url}/api/documents/nope").status_code == 404
    assert _http().delete(f"{url}/api/documents/water-report").json() == {
        "removed": ["water-report"]}
    assert _http().get(f"{url}/api/documents/water-report").status_code == 404
    seed = _http().delete(f"{url}/api/documents/politico-us-iraq-advisory-transition")
    assert seed.status_code == 409 and "seed" in seed.json()["detail"]


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
        api: tuple[str, Pipeline], name: str, data: bytes, status: int, words: str) -> None:
    url, pipeline = api
    before = _http().get(f"{url}/api/documents").json()["documents"]
    response = _upload(url, name, data)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in detail and "\n" not in detail and "Traceback" not in detail
    assert _http().get(f"{url}/api/documents").json()["documents"] == before
    names = {p.name for p in pipeline.settings.documents_dir.iterdir()}
    assert not {n for n in names if n.startswith(".upload-")}
    assert not names & {Path(name).stem, Path(name).stem.lower()}


def test_zip_bomb_upload(api: tuple[str, Pipeline], tmp_path: Path) -> None:
    url, _ = api
    zip_bomb(tmp_path / "bomb.docx")
    response = _upload(url, "report.docx", (tmp_path / "bomb.docx").read_bytes())
    assert response.status_code == 413 and "zip bomb" in response.json()["detail"]


def test_size_cap_is_enforced_while_streaming(api: tuple[str, Pipeline]) -> None:
    """The 413 arrives while most of the declared body has not even been sent."""
    import socket

    url, pipeline = api
    host, port = url.removeprefix("http://").split(":")
    head = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n")
    declared = 4_000_000  # under the Content-Length guard, far over the 256 KB per-file cap
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/documents HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: " + str(declared).encode() + b"\r\n\r\n" + head)
        sock.sendall(b"word " * (2 * LIMIT // 5))  # twice the cap: 512 KB of 4 MB
        reply = b""
        while b"}" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"too large" in reply
    assert not any(p.name.startswith(".upload-") for p in
                   pipeline.settings.documents_dir.iterdir())  # temporary parts cleaned up
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # declared size
        sock.sendall(b"POST /api/documents HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000"
                     b"\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")


def test_writes_need_the_token_when_one_is_set(api: tuple[str, Pipeline],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url, pipeline = api
    monkeypatch.setattr(pipeline, "settings", replace(pipeline.settings, api_token="s3cret"))
    html = (DOCS / "kestrel-lighthouse.html").read_bytes()
    assert _upload(url, "k.html", html).status_code == 401
    assert _upload(url, "k.html", html, headers={"Authorization": "Bearer wrong"}
                   ).status_code == 401
    ok = _upload(url, "k.html", html, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201
    doc_id = ok.json()["documents"][0]["id"]
    assert _http().delete(f"{url}/api/documents/{doc_id}").status_code == 401
    assert _http().delete(f"{url}/api/documents/{doc_id}",
                        headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert _http().get(f"{url}/api/documents").status_code == 200  # reads stay open


def test_routes_are_in_the_openapi_schema(api: tuple[str, Pipeline]) -> None:
    url, _ = api
    paths = _http().get(f"{url}/openapi.json").json()["paths"]
    assert set(paths["/api/documents"]) == {"get", "post"}
    assert set(paths["/api/documents/{doc_id}"]) == {"get", "delete"}
    body = paths["/api/documents"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
