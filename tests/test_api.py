"""The HTTP API and the mounted chat, on a real `qa serve` (real model, real article), plus
fast checks of the error mapping that need no model."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.api import create_api, create_app, status_of, validation_detail
from qa.cli import answer_json, hit_json
from qa.config import Settings
from qa.errors import BadQuestion, IndexCorrupt, ModelError, QAError, SeedError
from qa.pipeline import Pipeline
from tests.conftest import SEEDS, HashingEmbedder

if TYPE_CHECKING:
    from tests.conftest_web import Server

pytest_plugins = ["tests.conftest_web"]

LOCAL = "http://127.0.0.1:7860"  # the Host allow-list serves loopback names only


def _gradio_uploads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of this test's own for Gradio's uploads and cache (GRADIO_TEMP_DIR)."""
    uploads = tmp_path / "qa-uploads-test"
    uploads.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    return uploads
KADHIMI = "What did Kadhimi tell the Washington Post?"
FOLLOW_UP = "What does he say Iraq will still need?"
QUESTIONS = [
    "How many American troops are in Iraq today?",
    KADHIMI,
    "Who is the Pentagon spokesman?",
    "When will the US combat mission in Iraq end?",
    "What is the capital of France?",
    "Who was assassinated in Baghdad in January?",
    "How many US troops will remain in Afghanistan?",
    "What did the Iraqi parliament vote for?",
]


def post(server: Server, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.url + path.lstrip("/"), timeout=30, **kwargs)


def same_json(got: Any, want: Any) -> bool:
    """Equal, but for floats (scores): two processes may differ in the last rounded digit."""
    if isinstance(want, float) and isinstance(got, float):
        return got == pytest.approx(want, abs=1e-5)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(same_json(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(map(same_json, got, want))
    return type(got) is type(want) and got == want


# -- the real server -------------------------------------------------------------------------


@pytest.mark.slow
def test_healthz_reports_counts(server: Server) -> None:
    r = httpx.get(server.url + "healthz", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["documents"] >= 1
    counts = {k: body[k] for k in ("documents", "chunks", "sentences")}
    assert all(isinstance(v, int) and v > 0 for v in counts.values())
    assert body["build"].startswith("build-") and body["reindexing"] is False


@pytest.mark.slow
def test_ask_returns_exactly_the_cli_json(server: Server, real_pipeline: Pipeline) -> None:
    r = post(server, "/api/ask", json={"question": KADHIMI})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert same_json(r.json(), answer_json(real_pipeline.ask(KADHIMI)))
    assert r.json()["citations"], "a cited answer"


@pytest.mark.slow
def test_ask_uses_history_and_k(server: Server, real_pipeline: Pipeline) -> None:
    r = post(server, "/api/ask", json={"question": FOLLOW_UP, "history": [KADHIMI], "k": 8})
    assert r.status_code == 200, r.text
    assert same_json(r.json(), answer_json(real_pipeline.ask(FOLLOW_UP, [KADHIMI], 8)))
    assert r.json()["citations"]


@pytest.mark.slow
def test_a_placeholder_earlier_answer_is_no_answer(server: Server,
                                                    real_pipeline: Pipeline) -> None:
    """An earlier turn whose answer is a placeholder ("" or "...", a client that does not
    keep qa's replies) was taken "as given": the follow-up was searched with the earlier
    question and nothing, and quoted "...Iraq no longer needs US combat troops" for "What
    does he say Iraq will still need?". It is answered as when the answer is left out: qa
    answers the earlier question itself and follows that up."""
    expected = answer_json(real_pipeline.ask(FOLLOW_UP, [KADHIMI]))
    for said in ("", "...", "…"):
        r = post(server, "/api/ask", json={"question": FOLLOW_UP,
                                           "history": [{"question": KADHIMI, "answer": said}]})
        assert r.status_code == 200, r.text
        assert same_json(r.json(), expected), said


@pytest.mark.slow
def test_retrieve_returns_hits(server: Server, real_pipeline: Pipeline) -> None:
    r = post(server, "/api/retrieve", json={"question": KADHIMI, "k": 3})
    assert r.status_code == 200, r.text
    hits = r.json()
    assert same_json(hits, [hit_json(h) for h in real_pipeline.retrieve(KADHIMI, 3)])
    assert [h["rank"] for h in hits] == [1, 2, 3]
    source = real_pipeline.index.documents[hits[0]["doc_id"]].text
    assert source[hits[0]["start"]:hits[0]["end"]] == hits[0]["text"]


@pytest.mark.slow
def test_question_is_trimmed_and_2000_characters_allowed(server: Server) -> None:
    assert post(server, "/api/ask", json={"question": f"  {KADHIMI}\n"}).status_code == 200
    long = ("Kadhimi " * 400)[:2000]
    assert post(server, "/api/retrieve", json={"question": long}).status_code == 200


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("/api/ask", {"question": ""}, "question"),
    ("/api/ask", {"question": "   \n "}, "question"),
    ("/api/ask", {"question": "x" * 2001}, "question"),
    ("/api/ask", {"question": "Who?", "k": 0}, "k"),
    ("/api/ask", {"question": "Who?", "k": 21}, "k"),
    ("/api/ask", {"question": "Who?", "k": "5"}, "k"),
    ("/api/ask", {"question": "Who?", "k": True}, "k"),
    ("/api/ask", {"question": 42}, "question"),
    ("/api/ask", {"question": ["Who?"]}, "question"),
    ("/api/ask", {"question": None}, "question"),
    ("/api/ask", {"question": "Who?", "history": "Who?"}, "history"),
    ("/api/ask", {"question": "Who?", "history": ["ok", " "]}, "history turn 2 is empty"),
    ("/api/ask", {"question": "Who?", "history": ["Who?"] * 21}, "history"),
    ("/api/ask", {"question": "Who?", "history": ["x" * 2001]}, "history turn 1 is too long"),
    ("/api/ask", {"question": "Who?", "qestion": "typo"}, "qestion"),
    ("/api/ask", {}, "question"),
    ("/api/ask", [], "body"),
    ("/api/retrieve", {"question": " "}, "question"),
    ("/api/retrieve", {"question": "Who?", "k": 21}, "k"),
    ("/api/retrieve", {"question": "Who?", "history": ["x"]}, "history"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("path", "body", "field"), BAD_BODIES)
def test_bad_input_is_422_with_a_message(server: Server, path: str, body: Any, field: str) -> None:
    r = post(server, path, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail
    assert field in detail


@pytest.mark.slow
@pytest.mark.parametrize("content", [b"", b"{not json", b"question=Who"])
def test_missing_or_malformed_body_is_422(server: Server, content: bytes) -> None:
    r = post(server, "/api/ask", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/no/such/page"), ("POST", "/api/nothing"), ("GET", "/api/ask/extra"),
])
def test_unknown_routes_are_404(server: Server, method: str, path: str) -> None:
    r = httpx.request(method, server.url + path.lstrip("/"), json={}, timeout=10)
    assert r.status_code == 404


@pytest.mark.slow
def test_openapi_docs(server: Server) -> None:
    docs = httpx.get(server.url + "docs", timeout=10)
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    schema = httpx.get(server.url + "openapi.json", timeout=10).json()
    assert {"/api/ask", "/api/retrieve", "/healthz"} <= set(schema["paths"])
    ask = schema["components"]["schemas"]["AskRequest"]
    assert ask["properties"]["question"]["maxLength"] == 2000


@pytest.mark.slow
def test_chat_page_is_served(server: Server) -> None:
    r = httpx.get(server.url, timeout=10)
    assert r.status_code == 200 and "<html" in r.text.lower()


@pytest.mark.slow
def test_gradio_client_chat(server: Server) -> None:
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    job = client.submit(KADHIMI, [], api_name="/chat")
    box, messages, panel = job.result(timeout=60)
    # the box is emptied by the first step and then left alone, so that what is typed
    # while the answer streams is kept
    assert job.outputs()[0][0] == "" and box == {"__type__": "update"}
    assert [m["role"] for m in messages] == ["user", "assistant"]
    content = str(messages[-1]["content"])
    assert "qa-cite" in content and "qa-sources" in content and "<mark>" in content
    assert '<mark data-cite="1"' in panel


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_concurrent_clients_get_their_own_answers(server: Server) -> None:
    # What the server says to each question alone; eight different answers, so a mix-up shows.
    expected = {q: post(server, "/api/ask", json={"question": q}).json() for q in QUESTIONS}
    assert len({json.dumps(a, sort_keys=True) for a in expected.values()}) == len(QUESTIONS)

    def ask(question: str) -> tuple[str, dict[str, Any]]:
        with httpx.Client(timeout=20) as client:
            results = []
            for _ in range(3):
                r = client.post(server.url + "api/ask", json={"question": question})
                assert r.status_code == 200, r.text
                results.append(r.json())
            assert all(result == results[0] for result in results)
            return question, results[0]

    started = time.monotonic()
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        answers = list(pool.map(ask, QUESTIONS))
    assert time.monotonic() - started < 45
    for question, got in answers:
        assert got == expected[question], question


# -- no model: error mapping and readiness ---------------------------------------------------


@pytest.mark.parametrize(("error", "status"), [
    (BadQuestion("x"), 422), (ModelError("x"), 503), (IndexCorrupt("x"), 503),
    (SeedError("x"), 503), (QAError("x"), 500),
])
def test_status_of_library_errors(error: QAError, status: int) -> None:
    assert status_of(error) == status


def test_same_json_tolerates_only_rounding() -> None:
    assert same_json({"a": [1, 0.9790590]}, {"a": [1, 0.979059]})
    assert same_json({"s": 0.97906}, {"s": 0.979059})
    assert not same_json({"s": 0.98}, {"s": 0.979059})
    assert not same_json({"a": 1}, {"a": 1, "b": 2}) and not same_json([1.0], [1])


def test_validation_detail_names_the_field() -> None:
    detail = validation_detail([
        {"loc": ["body", "history", 2], "msg": "the question is empty", "type": "bad_question"},
        {"loc": ["body", "k"], "msg": "Input should be a valid integer", "type": "int_type"},
    ])
    assert detail == "history[2]: the question is empty; k: Input should be a valid integer"


@pytest.mark.slow  # a subprocess or a server: seconds, not a unit test
def test_unloadable_index_is_503_json_and_healthz_says_loading(tmp_path: Path) -> None:
    unusable = tmp_path / "seeds"
    unusable.write_text("a file, not a folder")  # (an empty library loads: it is no error)
    settings = Settings(model="fake-hashing", seeds_dir=unusable, index_dir=tmp_path / "index")
    client = TestClient(create_app(Pipeline(settings, HashingEmbedder())),  # no lifespan
                        base_url=LOCAL)
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "loading"
    r = client.post("/api/ask", json={"question": "Who?"})
    assert r.status_code == 503
    assert set(r.json()) == {"detail"} and r.json()["detail"]


@pytest.mark.slow  # imports Gradio (~4 s of CPU), which the fast tier never does
def test_warm_up_failure_shows_in_healthz(tmp_path: Path) -> None:
    unusable = tmp_path / "seeds"
    unusable.write_text("a file, not a folder")
    settings = Settings(model="fake-hashing", seeds_dir=unusable, index_dir=tmp_path / "index")
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        deadline = time.monotonic() + 10
        while (body := client.get("/healthz").json())["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert body["status"] == "error" and body["detail"]
        assert client.get("/healthz").status_code == 503


# -- issue 14: hardening, on the real server ---------------------------------------------------


def _raw(server: Server, request: bytes, sock: socket.socket | None = None,
         read: bool = True) -> tuple[socket.socket, bytes]:
    """Send raw bytes on a (kept-alive) connection; read one whole response."""
    if sock is None:
        sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1][:-1])),
                                        timeout=30)
    sock.sendall(request)
    if not read:
        return sock, b""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return sock, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), b"0"))
    while len(body) < length:
        body += sock.recv(65536)
    return sock, head + b"\r\n\r\n" + body


def _post_raw(body: bytes, path: str = "/api/retrieve") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.slow
@pytest.mark.parametrize("body", [
    b'{"question": "Who \\ud800 is the Pentagon spokesman?"}',  # JSON escape: lone surrogate
    b'{"question": "Who \xff\xfe is the Pentagon spokesman?"}',  # bytes that are not UTF-8
    b'{"question": "\\u200b\\u200d\\ufeff"}',  # only zero-width characters
    b'{"question": "Who is\\u0000 the Pentagon spokesman?", "k": 0}',
    b"[" * 50_000 + b"]" * 50_000,  # nested too deeply for the JSON parser
])
def test_bad_text_is_422_and_the_connection_lives_on(server: Server, body: bytes) -> None:
    sock, first = _raw(server, _post_raw(body))
    with sock:
        assert first.startswith(b"HTTP/1.1 422"), first[:300]
        detail = json.loads(first.partition(b"\r\n\r\n")[2])["detail"]
        assert isinstance(detail, str) and "\n" not in detail
        _, second = _raw(server, _post_raw(b'{"question": "Who is the Pentagon spokesman?"}'),
                         sock)
        assert second.startswith(b"HTTP/1.1 200"), "the same keep-alive connection answers"
    assert "Traceback" not in server.log_tail(200)


@pytest.mark.slow
def test_control_characters_never_reach_the_answer(server: Server) -> None:
    r = post(server, "/api/ask", json={"question": "What is the capital of\x00 \x1b[2J France?"})
    assert r.status_code == 200
    assert "\x00" not in r.text and "\\u0000" not in r.text and "\\u001b" not in r.text


@pytest.mark.slow
def test_oversize_body_is_refused_before_it_is_read(server: Server) -> None:
    # Announced: 300 MB; only the headers are sent, and the answer comes at once.
    started = time.monotonic()
    sock, response = _raw(server, b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n")
    sock.close()
    assert response.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 5
    assert b"bytes" in response
    # Streamed without a length: cut off once over the cap.
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    r = httpx.post(server.url + "api/ask", content=chunks(),
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "over" in r.json()["detail"]


@pytest.mark.slow
def test_gradio_upload_is_capped(server: Server) -> None:
    # The test server runs with QA_MAX_UPLOAD_BYTES unset: 50 MB; a 51 MB announced body is 413.
    sock, response = _raw(server, b"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: multipart/form-data; boundary=x\r\n"
                          b"Content-Length: 53000000\r\n\r\n")
    sock.close()
    assert response.startswith(b"HTTP/1.1 413")


@pytest.mark.slow
def test_security_headers_everywhere(server: Server) -> None:
    for path in ("healthz", "docs", "", "api/nothing"):
        r = httpx.get(server.url + path, timeout=10)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["referrer-policy"] == "no-referrer", path


@pytest.mark.slow
@pytest.mark.parametrize("host", ["evil.example", "evil.example:7860", "127.0.0.1.nip.io"])
def test_foreign_host_header_is_400(server: Server, host: str) -> None:
    for path in ("healthz", "", "api/ask"):
        r = httpx.get(server.url + path, headers={"host": host}, timeout=10)
        assert r.status_code == 400 and "QA_ALLOWED_HOSTS" in r.json()["detail"]
    assert httpx.get(server.url.replace("127.0.0.1", "localhost") + "healthz",
                     timeout=10).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "allow"), [
    ("GET", "/api/ask", "POST"), ("PUT", "/api/retrieve", "POST"),
    ("DELETE", "/healthz", "GET, HEAD"), ("POST", "/healthz", "GET, HEAD"),
])
def test_wrong_method_is_405(server: Server, method: str, path: str, allow: str) -> None:
    r = httpx.request(method, server.url + path.lstrip("/"), timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == allow
    assert method in r.json()["detail"]


@pytest.mark.slow
def test_head_healthz(server: Server) -> None:
    r = httpx.head(server.url + "healthz", timeout=10)
    assert r.status_code == 200 and r.content == b""


@pytest.mark.slow
def test_healthz_reports_the_build(server: Server, real_pipeline: Pipeline) -> None:
    body = httpx.get(server.url + "healthz", timeout=10).json()
    assert body["build"] == real_pipeline.index.manifest["data"]
    assert body["reindexing"] is False and body["withheld"] == []


@pytest.mark.slow
def test_docs_work_offline(server: Server) -> None:
    html = httpx.get(server.url + "docs", timeout=10).text
    assert "swagger-ui" in html.lower()
    assert "cdn" not in html.lower() and "https://" not in html
    for asset in re.findall(r'(?:href|src)="(/[^"]+)"', html):
        assert httpx.get(server.url + asset.lstrip("/"), timeout=10).status_code == 200, asset


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_idle_and_slow_header_connections_are_closed(server: Server) -> None:
    from qa.api import HEADER_SECONDS, KEEP_ALIVE_SECONDS

    # Idle after a response: closed after the keep-alive timeout.
    sock, response = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    assert sock.recv(10) == b""  # the server closed it
    assert time.monotonic() - started < KEEP_ALIVE_SECONDS + 3
    sock.close()
    # Slowloris: one header byte a second never completes a request; closed after the
    # header deadline even though bytes keep coming.
    sock, _ = _raw(server, b"GET /healthz HTTP/1.1\r\n", read=False)
    started = time.monotonic()
    closed = False
    with sock:
        while time.monotonic() - started < HEADER_SECONDS + 5:
            try:
                sock.sendall(b"X")
                sock.settimeout(1.0)
                if sock.recv(10) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
    assert closed and time.monotonic() - started < HEADER_SECONDS + 3


# -- issue 14: write access ------------------------------------------------------------------


def _token_app(token: str | None, throttle: Any = None,
               client: tuple[str, int] = ("testclient", 50000)) -> TestClient:
    from fastapi import Depends, FastAPI

    from qa.security import require_token

    app = FastAPI()
    app.state.pipeline = Pipeline(Settings(model="fake-hashing", api_token=token),
                                  HashingEmbedder())
    if throttle is not None:
        app.state.token_throttle = throttle

    @app.post("/write", dependencies=[Depends(require_token)])
    def write() -> dict[str, bool]:
        return {"ok": True}

    return TestClient(app, base_url=LOCAL, client=client)


class Clock:
    """A clock the test moves by hand: throttle windows pass without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_require_token() -> None:
    assert _token_app(None).post("/write").status_code == 200  # loopback only: no token set
    client = _token_app("s3cret")
    assert client.post("/write").status_code == 401
    assert client.post("/write", headers={"authorization": "Bearer nope"}).status_code == 401
    assert client.post("/write", headers={"authorization": "Basic s3cret"}).status_code == 401
    r = client.post("/write", headers={"authorization": "Bearer s3cret"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert client.post("/write").headers["www-authenticate"] == "Bearer"


def test_wrong_tokens_are_throttled_per_client_over_http() -> None:
    """After FAILED_TOKENS_ALLOWED wrong tokens within the window, a client gets 429 with
    Retry-After, even with the right token, until the window passes; other clients are not
    affected; a missing token is no guess."""
    from qa.security import FAILED_TOKEN_WINDOW, FAILED_TOKENS_ALLOWED, TokenThrottle

    clock = Clock()
    throttle = TokenThrottle(clock=clock)
    guesser = _token_app("s3cret", throttle, client=("203.0.113.7", 4000))
    right, wrong = {"authorization": "Bearer s3cret"}, {"authorization": "Bearer nope"}
    for _ in range(3):
        assert guesser.post("/write").status_code == 401  # no token: not a guess
    for n in range(FAILED_TOKENS_ALLOWED):
        clock.now += 1
        assert guesser.post("/write", headers=wrong).status_code == 401, n
    wait = FAILED_TOKEN_WINDOW - (FAILED_TOKENS_ALLOWED - 1)  # until the first guess is old
    for headers in (wrong, right, {}):
        r = guesser.post("/write", headers=headers)
        assert r.status_code == 429, r.text
        assert r.headers["retry-after"] == str(int(wait))
        assert r.json()["detail"].startswith("too many wrong tokens from this address")
        assert r.json()["detail"].count("\n") == 0
    # another client, sharing the server's throttle, is not refused, and its success does
    # not free the guesser
    other = _token_app("s3cret", throttle, client=("198.51.100.2", 4000))
    assert other.post("/write", headers=right).status_code == 200
    assert guesser.post("/write", headers=right).status_code == 429
    clock.now += wait - 1
    assert guesser.post("/write", headers=right).headers["retry-after"] == "1"
    clock.now += 1  # the first guess has left the window
    assert guesser.post("/write", headers=right).status_code == 200
    assert guesser.post("/write", headers=wrong).status_code == 401  # back to the limit
    assert guesser.post("/write", headers=right).status_code == 429
    clock.now += FAILED_TOKEN_WINDOW
    assert guesser.post("/write", headers=right).status_code == 200


def test_the_server_throttles_every_route_that_wants_the_token(tmp_path: Path) -> None:
    """`create_api` has one throttle for its routes: wrong tokens sent to `/v1` count
    against a later upload, and `/v1` answers 429 as OpenAI's error object."""
    from qa.security import FAILED_TOKENS_ALLOWED

    client = api_client(tmp_path, api_token="s3cret")
    wrong = {"authorization": "Bearer nope"}
    for _ in range(FAILED_TOKENS_ALLOWED):
        assert client.get("/v1/models", headers=wrong).status_code == 401
    r = client.get("/v1/models", headers={"authorization": "Bearer s3cret"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    r = client.post("/api/documents", files={"file": ("a.txt", b"A\n\nText.\n")},
                    headers={"authorization": "Bearer s3cret"})
    assert r.status_code == 429 and r.headers["retry-after"], r.text
    assert "too many wrong tokens" in r.json()["detail"]


def test_the_throttle_does_nothing_without_a_token() -> None:
    from qa.security import FAILED_TOKENS_ALLOWED, TokenThrottle

    throttle = TokenThrottle(clock=Clock())
    client = _token_app(None, throttle)  # loopback default: no token set
    for _ in range(FAILED_TOKENS_ALLOWED * 2):
        assert client.post("/write", headers={"authorization": "Bearer x"}).status_code == 200
    assert throttle.tracked == 0


def test_an_app_without_a_throttle_gets_one_and_keeps_it() -> None:
    from qa.security import FAILED_TOKENS_ALLOWED, TokenThrottle

    client = _token_app("s3cret")
    wrong = {"authorization": "Bearer nope"}
    codes = [client.post("/write", headers=wrong).status_code
             for _ in range(FAILED_TOKENS_ALLOWED + 1)]
    assert codes == [401] * FAILED_TOKENS_ALLOWED + [429]
    assert isinstance(client.app.state.token_throttle, TokenThrottle)  # type: ignore[attr-defined]
    assert create_api(Pipeline(Settings(model="fake-hashing"), HashingEmbedder())
                      ).state.token_throttle is not None


def test_token_throttle_is_bounded_and_thread_safe() -> None:
    from qa.security import TokenThrottle

    clock = Clock()
    throttle = TokenThrottle(allowed=2, window=10, max_clients=3, clock=clock)
    for client in ("a", "b", "c"):
        assert throttle.attempt(client, wrong=True) == 0.0
    assert throttle.attempt("a", wrong=True) == 0.0  # "a" failed last now: "b" is oldest
    assert throttle.attempt("a", wrong=False) == pytest.approx(10.0)
    clock.now += 4
    assert throttle.attempt("a", wrong=False) == pytest.approx(6.0)
    assert throttle.attempt("d", wrong=True) == 0.0  # a fourth client: "b" is forgotten
    assert throttle.tracked == 3 and throttle.attempt("b", wrong=True) == 0.0  # "c" goes
    assert throttle.attempt("b", wrong=False) == 0.0  # one failure remembered, not two
    assert throttle.attempt("a", wrong=False) > 0  # still refused
    clock.now += 10
    assert throttle.attempt("a", wrong=False) == 0.0
    with pytest.raises(ValueError, match="allowed=0"):
        TokenThrottle(allowed=0)

    many = TokenThrottle(allowed=5, window=60, max_clients=10_000)
    with ThreadPoolExecutor(8) as pool:  # concurrent guesses cannot slip past the count
        waits = list(pool.map(lambda _: many.attempt("x", wrong=True), range(200)))
    assert waits.count(0.0) == 5 and many.tracked == 1


def test_client_keys() -> None:
    from qa.security import SHARED_CLIENT, client_key

    assert client_key(None) == client_key("") == SHARED_CLIENT
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") \
        == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("testclient") == "testclient"


def test_token_accepted_is_the_one_check() -> None:
    from qa.security import token_accepted

    assert token_accepted(Settings(), None) and token_accepted(Settings(), "anything")
    settings = Settings(api_token="s3cret")
    assert token_accepted(settings, "s3cret") and token_accepted(settings, " s3cret\n")
    for given in (None, "", "s3cre", "s3cret2", "S3CRET", "Bearer s3cret", 123, b"s3cret"):
        assert not token_accepted(settings, given), given


def test_given_token_reads_the_bearer_header_else_the_chats_cookie() -> None:
    from qa.security import TOKEN_COOKIE, given_token

    assert given_token("") is None and given_token("", "") is None
    assert given_token("Bearer s3cret") == given_token("bearer s3cret") == "s3cret"
    assert given_token("Basic s3cret") is None
    assert given_token("", f"{TOKEN_COOKIE}=s3cret") == "s3cret"
    assert given_token("", f"other=1; {TOKEN_COOKIE}=s3cret; more=2") == "s3cret"
    # the page writes it with encodeURIComponent: spaces, ';', '=' and '%' survive
    assert given_token("", f"{TOKEN_COOKIE}=a%20b%3Bc%3Dd%25") == "a b;c=d%"
    assert given_token("Bearer header", f"{TOKEN_COOKIE}=cookie") == "header"
    assert given_token("", "qa_token_other=s3cret") is None
    assert given_token("", f"{TOKEN_COOKIE}=") is None


UPLOAD_TOKEN = "s3cret-upload-token"


def _chat_upload(client: TestClient, headers: dict[str, str] | None = None,
                 content: bytes = b"A small file.\n") -> httpx.Response:
    return client.post("/gradio_api/upload", files={"files": ("a.txt", content)},
                       headers=headers or {})


def test_the_chats_upload_route_wants_the_token_before_it_reads(tmp_path: Path) -> None:
    """Gradio's upload route stored a file for anyone even with a token set. Now the
    hardening refuses it first (401, one line, the body unread; the connection closes)
    unless the request carries the token: the `qa_token` cookie the chat's Access token
    field sets, or a Bearer header. Without Gradio mounted, a request let through gets
    FastAPI's 404: the token check is the middleware's, in front of the chat."""
    from qa.api import UPLOAD_NEEDS_TOKEN, UPLOAD_WRONG_TOKEN
    from qa.security import TOKEN_COOKIE

    client = api_client(tmp_path, api_token=UPLOAD_TOKEN)
    r = _chat_upload(client)
    assert r.status_code == 401 and r.json() == {"detail": UPLOAD_NEEDS_TOKEN}
    assert r.headers["www-authenticate"] == "Bearer" and r.headers["connection"] == "close"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "Access token" in UPLOAD_NEEDS_TOKEN and UPLOAD_TOKEN not in r.text
    r = _chat_upload(client, {"cookie": f"{TOKEN_COOKIE}=nope"})
    assert r.status_code == 401 and r.json() == {"detail": UPLOAD_WRONG_TOKEN}
    assert "nope" not in r.text
    for headers in ({"cookie": f"{TOKEN_COOKIE}={UPLOAD_TOKEN}"},
                    {"cookie": f"theme=dark; {TOKEN_COOKIE}={UPLOAD_TOKEN}"},
                    {"authorization": f"Bearer {UPLOAD_TOKEN}"}):
        assert _chat_upload(client, headers).status_code == 404, headers  # let through
    # the cookie is for the chat's upload route only: the JSON API wants the header
    r = client.post("/api/documents", files={"file": ("a.txt", b"A\n\nText.\n")},
                    headers={"cookie": f"{TOKEN_COOKIE}={UPLOAD_TOKEN}"})
    assert r.status_code == 401

    open_client = api_client(tmp_path / "open")  # no token (loopback): nothing changes
    assert _chat_upload(open_client).status_code == 404
    assert _chat_upload(open_client, {"cookie": f"{TOKEN_COOKIE}=nope"}).status_code == 404
    assert open_client.app.state.token_throttle.tracked == 0  # type: ignore[attr-defined]


def test_wrong_upload_tokens_count_in_the_servers_one_throttle(tmp_path: Path) -> None:
    """A wrong cookie on the chat's upload route is a guess like a wrong Bearer header:
    after FAILED_TOKENS_ALLOWED of them, 429 with Retry-After there, even with the right
    token, and on the JSON API too (one throttle per server); a missing one is no guess."""
    from qa.security import FAILED_TOKENS_ALLOWED, TOKEN_COOKIE

    client = api_client(tmp_path, api_token=UPLOAD_TOKEN)
    for _ in range(3):
        assert _chat_upload(client).status_code == 401  # no token: not counted
    wrong = {"cookie": f"{TOKEN_COOKIE}=nope"}
    codes = [_chat_upload(client, wrong).status_code for _ in range(FAILED_TOKENS_ALLOWED)]
    assert codes == [401] * FAILED_TOKENS_ALLOWED
    for headers in (wrong, {"cookie": f"{TOKEN_COOKIE}={UPLOAD_TOKEN}"},
                    {"authorization": f"Bearer {UPLOAD_TOKEN}"}):
        r = _chat_upload(client, headers)
        assert r.status_code == 429, r.text
        assert 0 < int(r.headers["retry-after"]) <= 60
        assert r.json()["detail"].startswith("too many wrong tokens from this address")
    r = client.post("/api/documents", files={"file": ("a.txt", b"A\n\nText.\n")},
                    headers={"authorization": f"Bearer {UPLOAD_TOKEN}"})
    assert r.status_code == 429, r.text


@pytest.mark.slow  # imports Gradio (~4 s of CPU), which the fast tier never does
def test_the_chats_upload_route_stores_only_with_the_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole app (Gradio mounted): without the token, or with a wrong one, 401 and
    nothing in the upload folder; wrong ones are throttled; with the cookie or the Bearer
    header, Gradio stores the file; with no token set, it stores it as before."""
    from qa.security import FAILED_TOKENS_ALLOWED, TOKEN_COOKIE

    uploads = _gradio_uploads(tmp_path, monkeypatch)

    def stored() -> list[Path]:
        return [p for p in uploads.rglob("*") if p.is_file()]

    def app(**extra: Any) -> Any:
        settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                            index_dir=tmp_path / "index", **extra)
        return create_app(Pipeline(settings, HashingEmbedder()))

    with TestClient(app(api_token=UPLOAD_TOKEN), base_url=LOCAL) as client:
        assert _chat_upload(client).status_code == 401
        assert _chat_upload(client, {"cookie": f"{TOKEN_COOKIE}=nope"}).status_code == 401
        assert not stored(), "a refused upload stores nothing"
        for n, headers in enumerate(({"cookie": f"{TOKEN_COOKIE}={UPLOAD_TOKEN}"},
                                     {"authorization": f"Bearer {UPLOAD_TOKEN}"})):
            r = _chat_upload(client, headers, f"File {n}.".encode())  # stored by content
            assert r.status_code == 200, r.text
            path = Path(r.json()[0])
            assert path.is_file() and uploads in path.parents
            assert path.read_bytes() == f"File {n}.".encode()
        assert len(stored()) == 2
        codes = [_chat_upload(client, {"cookie": f"{TOKEN_COOKIE}=nope"}).status_code
                 for _ in range(FAILED_TOKENS_ALLOWED)]
        assert codes == [401] * (FAILED_TOKENS_ALLOWED - 1) + [429]  # one was counted above
        r = _chat_upload(client, {"cookie": f"{TOKEN_COOKIE}={UPLOAD_TOKEN}"})
        assert r.status_code == 429 and r.headers["retry-after"]
        assert len(stored()) == 2

    uploads.mkdir(exist_ok=True)  # the server removed its folder when it stopped
    with TestClient(app(), base_url=LOCAL) as client:  # no token: as before
        r = _chat_upload(client)
        assert r.status_code == 200, r.text
        assert Path(r.json()[0]).is_file()


def test_loopback_names() -> None:
    from qa.security import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.4", "example.com"]))


@pytest.mark.slow  # imports Gradio (~4 s of CPU), which the fast tier never does
def test_fast_hardening_with_the_test_client(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    uploads = _gradio_uploads(tmp_path, monkeypatch)
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index", max_body_bytes=2048,
                        max_upload_bytes=4096)
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        big = {"question": "x" * 3000}
        r = client.post("/api/ask", json=big)
        assert r.status_code == 413 and r.json()["detail"] == "the body is over 2,048 bytes"
        r = client.post("/api/ask", content=iter([b'{"question": "', b"x" * 3000, b'"}']),
                        headers={"content-type": "application/json"})
        assert r.status_code == 413
        r = client.post("/gradio_api/upload", files={"files": ("a.txt", b"x" * 9000)})
        assert r.status_code == 413
        r = client.post("/gradio_api/upload", files={"files": ("a.txt", b"small file")})
        assert r.status_code == 200, r.text
        stored = Path(r.json()[0])
        assert stored.is_file() and uploads in stored.parents
    assert not uploads.exists(), "the server's upload folder is removed on shutdown"


@pytest.mark.slow  # imports Gradio, and waits for its sweep (~2 s)
def test_gradio_uploads_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What anyone may store through Gradio's upload route (no token) does not stay: the
    sweep (every 10 minutes, files over an hour old; here every second) deletes it."""
    import qa.ui

    _gradio_uploads(tmp_path, monkeypatch)
    monkeypatch.setattr(qa.ui, "UPLOAD_SWEEP", (1, 1))
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index", api_token="s3cret")
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        r = client.post("/gradio_api/upload", files={"files": ("a.txt", b"left behind")},
                        headers={"cookie": "qa_token=s3cret"})
        assert r.status_code == 200, r.text
        stored = Path(r.json()[0])
        assert stored.is_file()
        deadline = time.monotonic() + 10
        while stored.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stored.exists()


@pytest.mark.slow  # imports Gradio
def test_the_chats_upload_folder_has_a_quota(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone may store files through Gradio's upload route (a browser's upload carries no
    token), so its folder is bounded: past CHAT_UPLOAD_FILES files of the size limit, 507,
    until files leave it."""
    import qa.api

    uploads = _gradio_uploads(tmp_path, monkeypatch)
    monkeypatch.setattr(qa.api, "CHAT_UPLOAD_FILES", 1)
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index", api_token="s3cret",
                        max_upload_bytes=10_000)
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        def upload(n: int) -> httpx.Response:
            return client.post("/gradio_api/upload",
                               files={"files": (f"f{n}.txt", b"x" * 3_000)},
                               headers={"authorization": "Bearer s3cret"})

        assert [upload(n).status_code for n in range(3)] == [200, 200, 200]
        refused = upload(3)
        assert refused.status_code == 507
        assert "upload folder is full" in refused.json()["detail"]
        for path in uploads.rglob("*"):
            if path.is_file():
                path.unlink()
        assert upload(4).status_code == 200


# -- fast: the whole API but the chat (no Gradio), through its hardening ---------------------


def api_client(tmp_path: Path, **settings: Any) -> TestClient:
    """`create_api` over the seeds and the fake embedder, without its lifespan (no warm-up)."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    pipeline = Pipeline(Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                                 index_dir=tmp_path / "index", spacy="none", **settings),
                        HashingEmbedder())
    return TestClient(create_api(pipeline), base_url=LOCAL)


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_an_upload_may_hold_several_files_of_the_file_limit(tmp_path: Path) -> None:
    from qa.documents_api import MAX_FILES, MULTIPART_OVERHEAD

    limit = 1 << 20
    client = api_client(tmp_path, max_upload_bytes=limit, max_upload_chars=2 * limit)
    files = [("file", (f"part-{i}.txt", (f"Part {i}\n\n" + ("x" * 60_000 + ". ") * 20)
                       .encode()[:limit])) for i in range(2)]
    r = client.post("/api/documents", files=files)  # 2 MiB: over one file's limit + framing
    assert r.status_code == 201, r.text
    assert [d["id"] for d in r.json()["documents"]] == ["part-0", "part-1"]

    cap = MAX_FILES * (limit + MULTIPART_OVERHEAD)
    head = b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\n'
    body = [head, b"x" * cap, b"\r\n--b--\r\n"]  # over the cap, though no file is
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    for content in (b"".join(body), iter(body)):  # with Content-Length, then chunked
        r = client.post("/api/documents", content=content, headers=multipart)
        assert r.status_code == 413, r.text
        assert r.json() == {"detail": f"the body is over {cap:,} bytes"}
    documents = client.app.state.pipeline.settings.documents_dir  # type: ignore[attr-defined]
    assert not [p for p in documents.iterdir() if p.name.startswith(".upload-")]


def test_the_openapi_schema_builds_without_warnings(tmp_path: Path) -> None:
    """GET and HEAD /healthz were one route, so both had one operation id and FastAPI warned
    "Duplicate Operation ID" on every schema build."""
    import warnings

    client = api_client(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the build
        schema = client.app.openapi()  # type: ignore[attr-defined]
    ids = [op["operationId"] for path in schema["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert set(schema["paths"]["/healthz"]) == {"get", "head"}


def test_head_healthz_answers_like_get_without_a_body(tmp_path: Path) -> None:
    client = api_client(tmp_path)
    for status in ("loading", "ok"):
        client.app.state.readiness.status = status  # type: ignore[attr-defined]
        got, head = client.get("/healthz"), client.head("/healthz")
        assert head.status_code == got.status_code == (200 if status == "ok" else 503)
        assert head.content == b"" and got.json()["status"] == status
        assert head.headers["content-type"] == "application/json"
        assert head.headers["content-length"] == str(len(got.content))


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/api/documents", "GET, HEAD, POST"),
    ("PATCH", "/api/documents/x", "DELETE, GET, HEAD"),
    ("PUT", "/api/documents/x", "DELETE, GET, HEAD"), ("GET", "/v1/chat/completions", "POST"),
    ("PUT", "/v1/models", "GET, HEAD"), ("GET", "/api/ask", "POST"),
    ("DELETE", "/healthz", "GET, HEAD"),
])
def test_wrong_method_on_any_api_route_is_405(tmp_path: Path, method: str, path: str,
                                              allow: str) -> None:
    from starlette.responses import PlainTextResponse

    client = api_client(tmp_path)
    # The chat's mount at `/` answers every path the API does not: 404 without the check.
    client.app.mount("/", PlainTextResponse("not found", 404))  # type: ignore[attr-defined]
    r = client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    assert method in r.text and "not allowed" in r.text
    assert client.get("/api/documents").status_code == 200
    assert client.get("/nothing").status_code == 404


def test_every_v1_error_is_the_openai_error_object(tmp_path: Path) -> None:
    from starlette.responses import PlainTextResponse

    client = api_client(tmp_path, max_body_bytes=4096)
    client.app.mount("/", PlainTextResponse("not found", 404))  # type: ignore[attr-defined]
    json_type = {"content-type": "application/json"}
    big = json.dumps({"messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    cases = [
        ("POST", "/v1/chat/completions", {"content": big}, 413, "over 4,096 bytes"),
        ("POST", "/v1/chat/completions", {"content": iter([big[:10], big[10:]])}, 413,
         "over 4,096 bytes"),  # chunked: cut off while it streams
        ("POST", "/v1/chat/completions", {"content": b'{"messages": "\xff"}'}, 400,
         "not UTF-8"),
        ("POST", "/v1/chat/completions", {"content": b"[" * 1500 + b"]" * 1500}, 400,
         "nested too deeply"),
        ("GET", "/v1/chat/completions", {}, 405, "use POST"),
        ("POST", "/v1/embeddings", {"content": b"{}"}, 404, "/v1/chat/completions"),
        ("GET", "/v1/models", {"headers": {"host": "evil.example"}}, 400, "QA_ALLOWED_HOSTS"),
    ]
    for method, path, kwargs, status, words in cases:
        headers = {**json_type, **kwargs.pop("headers", {})}
        r = client.request(method, path, headers=headers, **kwargs)
        assert r.status_code == status, (path, r.text)
        error = r.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, r.text
        assert words in error["message"] and error["type"] == "invalid_request_error", r.text
    assert client.post("/api/ask", content=big, headers=json_type).json() == {
        "detail": "the body is over 4,096 bytes"}  # the JSON API keeps its own shape


@pytest.mark.parametrize(("history", "detail"), [
    (["  "], "history turn 1 is empty"),
    ([{"question": " "}], "history turn 1 is empty"),
    (["Who?", "x" * 2001], "history turn 2 is too long (2001 characters; at most 2000)"),
    ([{"question": "Who?", "answer": 5}], "history[0].answer: Input should be a valid string"),
    ([{"question": "Who?", "x": 1}], "history[0].x: Extra inputs are not permitted"),
    ([5], "history[0]: Input should be a valid string or a valid dictionary or object to "
          "extract fields from"),
])
def test_validation_messages_are_plain(tmp_path: Path, history: list[Any], detail: str) -> None:
    client = api_client(tmp_path)
    r = client.post("/api/ask", json={"question": "Who?", "history": history})
    assert r.status_code == 422 and r.json()["detail"] == detail


def test_json_sent_as_text_is_told_to_be_json(tmp_path: Path) -> None:
    client = api_client(tmp_path)
    ask = json.dumps({"question": "Who?"}).encode()
    chat = json.dumps({"messages": [{"role": "user", "content": "Who?"}]}).encode()
    for headers in ({"content-type": "text/plain"}, {}):
        r = client.post("/api/ask", content=ask, headers=headers)
        assert r.status_code == 422 and "Content-Type: application/json" in r.json()["detail"]
        r = client.post("/v1/chat/completions", content=chat, headers=headers)
        assert r.status_code == 400, r.text
        assert "Content-Type: application/json" in r.json()["error"]["message"]
    r = client.post("/api/ask", content=b"[]", headers={"content-type": "application/json"})
    assert r.json()["detail"] == "body: Input should be a valid dictionary or object to " \
                                 "extract fields from"  # JSON, but not an object


def test_docs_load_nothing_from_a_cdn(tmp_path: Path) -> None:
    client = api_client(tmp_path)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "https://" not in docs.text
    assert client.get("/redoc").status_code == 404  # ReDoc's script is on a CDN only


@pytest.mark.slow  # imports Gradio
def test_gradios_recording_route_is_not_served(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio's /process_recording writes a posted recording to disk and runs ffmpeg on it;
    the chat has no audio or video, so it answers 404 before reading anything."""
    uploads = _gradio_uploads(tmp_path, monkeypatch)
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        r = client.post("/gradio_api/process_recording",
                        files={"video": ("v.webm", b"\x1a\x45\xdf\xa3" + b"0" * 64)},
                        data={"params": "{}"})
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == "there is no /gradio_api/process_recording here"
        assert not any(uploads.rglob("*.webm"))


@pytest.mark.slow  # imports Gradio
@pytest.mark.timeout(60)  # the stream never ended
def test_gradios_reload_stream_is_not_served(tmp_path: Path) -> None:
    """/gradio_api/dev/reload is the event stream of Gradio's reload mode, which the chat
    never runs in: anyone could hold it open for ever, outside the chat streams' share of
    QA_MAX_CONNECTIONS, its loop waking every 50 ms. It answers 404."""
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        r = client.get("/gradio_api/dev/reload")
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == "there is no /gradio_api/dev/reload here"


def test_an_internal_error_is_a_500_and_one_line_in_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug in a route is answered 500 in the route's error shape and logged as one line
    naming where it was raised: Starlette re-raised it after the handler, and uvicorn
    printed the traceback (the test client raised it into the test)."""
    client = api_client(tmp_path)
    pipeline = client.app.state.pipeline  # type: ignore[attr-defined]

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(pipeline, "ask", broken)
    r = client.post("/api/ask", json={"question": "Who is the Pentagon spokesman?"})
    assert r.status_code == 500 and r.json() == {"detail": "internal error"}
    assert r.headers["x-content-type-options"] == "nosniff"
    r = client.post("/v1/chat/completions",
                    json={"messages": [{"role": "user", "content": "Who is it?"}]})
    assert r.status_code == 500 and r.json()["error"]["message"] == "internal error"
    logged = [line for line in capsys.readouterr().err.splitlines() if "internal error" in line]
    assert len(logged) == 2
    assert logged[0].startswith("qa: internal error: RuntimeError: boom second line (test_api.py:")


@pytest.mark.slow
def test_bogus_chat_sessions_and_events_get_gradios_answer_without_a_traceback(
        server: Server) -> None:
    """An unknown session of the chat's queue stream gets Gradio's own answer (an event
    `session_not_found`, which its page acts on), an unknown event id of `/call/` its error
    event, and an unknown `fn_index` 422: each logged a traceback (gradio#9169; a KeyError
    from Gradio's unchecked lookup was a 500)."""
    before = server.log.read_text(encoding="utf-8", errors="replace")
    r = httpx.get(server.url + "gradio_api/queue/data", params={"session_hash": "bogus-1234"},
                  timeout=30)
    assert r.status_code == 200, r.text
    event = json.loads(r.text.strip().removeprefix("data: "))
    assert event["msg"] == "unexpected_error" and event["session_not_found"] is True
    r = httpx.get(server.url + "gradio_api/call/chat/no-such-event", timeout=30)
    assert "event: error" in r.text
    bogus = {"data": [1], "fn_index": 99999, "session_hash": "bogus-1234",
             "event_data": None, "trigger_id": None}
    for path in ("gradio_api/queue/join", "gradio_api/run/predict"):
        r = post(server, path, json=bogus)
        assert r.status_code == 422, (path, r.text)
        assert r.json() == {"detail": "the chat has no event 99999 (fn_index)"}
    time.sleep(0.5)  # the log is written after the reply
    logged = server.log.read_text(encoding="utf-8", errors="replace")[len(before):]
    assert "Traceback" not in logged and "internal error" not in logged, logged


@pytest.mark.slow
def test_a_chat_event_given_bad_input_logs_one_line_not_a_traceback(server: Server) -> None:
    """Gradio's queue printed the whole traceback of each event given bad input (one value
    instead of three, a history that is not a list): ~20 lines a request. The client still
    gets Gradio's error event; the log one line per failure."""
    before = server.log.read_text(encoding="utf-8", errors="replace")
    for data in ([1], ["Who?", "not a list", []]):
        r = post(server, "gradio_api/call/chat", json={"data": data})
        assert r.status_code == 200, r.text
        stream = httpx.get(server.url + f"gradio_api/call/chat/{r.json()['event_id']}",
                           timeout=30)
        assert "event: error" in stream.text, stream.text
    time.sleep(0.5)
    logged = server.log.read_text(encoding="utf-8", errors="replace")[len(before):]
    assert "Traceback" not in logged, logged
    failures = [line for line in logged.splitlines() if "chat event failed" in line]
    assert len(failures) == 2, logged
    assert failures[0].startswith("qa: chat event failed: ValueError: An event handler")


@pytest.mark.slow
def test_the_chat_api_limits_an_answer_to_the_documents_named(server: Server) -> None:
    """The /chat API's third input (the documents to ask) was checked against the choices the
    page was built with, which are none (they are filled in per page): any id was an error
    event ("not in the list of choices"). A known id limits the answer; an unknown one is
    answered as such."""
    def chat(doc_ids: list[str]) -> str:
        r = post(server, "gradio_api/call/chat", json={
            "data": ["What did Kadhimi tell the Washington Post?", [], doc_ids]})
        assert r.status_code == 200, r.text
        return httpx.get(server.url + f"gradio_api/call/chat/{r.json()['event_id']}",
                         timeout=60).text

    limited = chat(["politico-us-iraq-advisory-transition"])
    assert "event: complete" in limited and "not in the list of choices" not in limited
    assert "Iraq" in limited
    unknown = chat(["no-such-document"])
    assert "event: complete" in unknown and "No longer in the library" in unknown, unknown


@pytest.mark.slow  # imports Gradio
def test_the_chats_queue_is_bounded_and_cannot_be_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio's queue was unbounded (a client looping on /queue/join grew the server's
    memory without end) and its REST route /run/chat ran the chat directly, past the queue
    and its concurrency limit. Full, the queue answers Gradio's 503 "queue is full"."""
    import threading

    import qa.ui

    _gradio_uploads(tmp_path, monkeypatch)
    monkeypatch.setattr(qa.ui, "QUEUE_SIZE", 1)
    monkeypatch.setattr(qa.ui, "UI_CONCURRENCY", 1)
    entered, release = threading.Event(), threading.Event()

    def slow_respond(message: str, history: Any, *_: Any, **__: Any) -> Iterator[Any]:
        entered.set()
        release.wait(20)
        yield [*history, {"role": "assistant", "content": "done"}], ""

    monkeypatch.setattr(qa.ui, "respond", slow_respond)
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    chat = {"data": ["Who is the Pentagon spokesman?", [], []]}
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        r = client.post("/gradio_api/run/chat", json=chat)
        assert r.status_code == 404 and "join the queue" in r.json()["detail"], r.text
        try:
            assert client.post("/gradio_api/call/chat", json=chat).status_code == 200
            assert entered.wait(20), "the first chat is being answered"
            assert client.post("/gradio_api/call/chat", json=chat).status_code == 200  # waits
            r = client.post("/gradio_api/call/chat", json=chat)
            assert r.status_code == 503 and "Queue is full" in r.text, r.text
        finally:
            release.set()


def _completed(client: TestClient, event: dict[str, Any]) -> dict[str, Any]:
    """Join the chat's queue with `event` and read its stream to the completion message."""
    assert client.post("/gradio_api/queue/join", json=event).status_code == 200
    with client.stream("GET", "/gradio_api/queue/data",
                       params={"session_hash": event["session_hash"]}) as stream:
        return next(json.loads(line.removeprefix("data: ")) for line in stream.iter_lines()
                    if '"process_completed"' in line)


@pytest.mark.slow  # imports Gradio
def test_a_chat_event_cannot_add_a_file_that_was_not_uploaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chat's events take file paths (the upload's files, files in a chat history);
    Gradio checks that they are uploads only in an app it launched, not one mounted on qa's
    server. A crafted queue event naming any file the server could read had it indexed and
    served by the API, or copied to Gradio's cache and served at /gradio_api/file=."""
    _gradio_uploads(tmp_path, monkeypatch)
    secret = tmp_path / "private" / "notes.txt"
    secret.parent.mkdir()
    secret.write_text("Private notes\n\nThe vault code is 4417.\n", encoding="utf-8")
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    app = create_app(Pipeline(settings, HashingEmbedder()))
    with TestClient(app, base_url=LOCAL) as client:
        config = client.get("/config").json()
        [upload] = [d["id"] for d in config["dependencies"] if d.get("api_name") == "upload"]
        event = {"data": [[{"path": str(secret), "orig_name": "notes.txt",
                            "meta": {"_type": "gradio.FileData"}}], []],
                 "fn_index": upload, "session_hash": "crafted1", "trigger_id": None,
                 "event_data": None}
        done = _completed(client, event)
        assert done["success"] is False and "not uploaded by a user" in done["output"]["error"]
        assert [d["id"] for d in client.get("/api/documents").json()["documents"]] == []
        # The same through the chat (no token needed): a file in the history was copied to
        # Gradio's cache and served to anyone at /gradio_api/file=<its cache path>.
        [chat] = [d["id"] for d in config["dependencies"] if d.get("api_name") == "chat"]
        history = [{"role": "user", "content": [{"type": "file", "file": {
                       "path": str(secret), "meta": {"_type": "gradio.FileData"}}}]},
                   {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}]
        event = {**event, "data": ["Who?", history, []], "fn_index": chat,
                 "session_hash": "crafted2"}
        done = _completed(client, event)
        assert done["success"] is False and "not uploaded by a user" in done["output"]["error"]
        assert "4417" not in json.dumps(done)


def test_a_compressed_body_is_415_on_every_route(tmp_path: Path) -> None:
    """Nothing decodes a Content-Encoding: a gzip body was read as it came, so /api/ask said
    422 "not UTF-8 text" and /v1 400; every route that reads a body answers 415 instead, in
    its own error shape, naming the coding, with `Accept-Encoding: identity` (RFC 9110)."""
    import gzip

    from starlette.responses import PlainTextResponse

    client = api_client(tmp_path)
    client.app.mount("/", PlainTextResponse("the chat", 200))  # type: ignore[attr-defined]
    question = json.dumps({"question": "Who?"}).encode()
    chat = json.dumps({"model": "qa", "messages": [{"role": "user", "content": "Who?"}]})
    rpc = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    headers = {"content-type": "application/json",
               "accept": "application/json, text/event-stream"}
    for path, body in [("/api/ask", question), ("/api/retrieve", question),
                       ("/v1/chat/completions", chat.encode()), ("/mcp", rpc),
                       ("/gradio_api/queue/join", b"{}")]:
        for coding in ("gzip", "br", "identity, gzip", "x-unknown"):
            sent = gzip.compress(body) if coding == "gzip" else body
            r = client.post(path, content=sent, headers={**headers,
                                                         "content-encoding": coding})
            assert r.status_code == 415, (path, coding, r.text)
            assert r.headers["accept-encoding"] == "identity"
            message = (r.json()["error"]["message"] if path.startswith(("/v1", "/mcp"))
                       else r.json()["detail"])  # OpenAI's error object; JSON-RPC's
            assert message.startswith(f"Content-Encoding {coding.split(', ')[-1]!r} is not "
                                      "supported") and "\n" not in message, r.text
    r = client.post("/api/documents", files={"file": ("a.txt", gzip.compress(b"Text."))},
                    headers={"content-encoding": "gzip"})
    assert r.status_code == 415 and "Content-Encoding" in r.json()["detail"], r.text
    for coding in ("identity", "IDENTITY", ""):  # no coding at all: served as ever
        r = client.post("/api/retrieve", content=question, headers={
            **headers, "content-encoding": coding})
        assert r.status_code == 200, (coding, r.text)


@pytest.mark.slow  # waits out a real deadline: the fast tier stays under 15 s
@pytest.mark.timeout(60)
def test_a_body_trickled_in_is_408_and_frees_its_connection(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real server: uvicorn has no deadline for a body, so a client sending a byte now
    and then held its connection (one of QA_MAX_CONNECTIONS) for ever. The body must come
    within BODY_SECONDS plus a second per BODY_MIN_RATE bytes, else 408 in the route's
    error shape and the connection is closed; a body that comes at once is served."""
    import qa.api
    from tests.test_documents_api import served

    monkeypatch.setattr(qa.api, "BODY_SECONDS", 0.5)
    client = api_client(tmp_path)
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nA'
    starts = [("/api/retrieve", "application/json", b"{"),
              ("/v1/chat/completions", "application/json", b"{"),
              ("/mcp", "application/json", b"{"),
              ("/api/documents", "multipart/form-data; boundary=b", part)]
    with served(client.app) as url:  # type: ignore[arg-type]
        port = int(url.rsplit(":", 1)[1])
        started = time.monotonic()
        sockets = []
        for path, kind, start in starts:  # all at once: they wait side by side
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Content-Type: {kind}\r\nAccept: application/json, "
                         "text/event-stream\r\nContent-Length: 1000\r\n\r\n".encode() + start)
        for (path, _, _), sock in zip(starts, sockets, strict=True):
            with sock:
                reply, chunk = b"", b"-"
                while chunk:  # the server answers, then closes the connection
                    chunk = sock.recv(4096)
                    reply += chunk
            assert reply.startswith(b"HTTP/1.1 408"), (path, reply[:300])
            assert b"connection: close" in reply.lower()
            assert b"the body came too slowly" in reply, reply
        assert time.monotonic() - started < 5
        r = httpx.post(url + "/api/retrieve", json={"question": "Who?"}, timeout=10)
        assert r.status_code == 200, r.text


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
@pytest.mark.timeout(60)
def test_the_chats_streams_leave_connections_for_the_api(tmp_path: Path) -> None:
    """On a real server capped at 16 connections (uvicorn's limit_concurrency): Gradio's
    event streams and heartbeats, which a client holds open as long as it likes, shared
    that one pool with the API, so 15 held streams made /api/retrieve and /healthz 503.
    They may hold only `max_chat_streams` (12 of 16 here); the next gets 503 with
    Retry-After, the API is still served, and a stream closed frees its place."""
    import asyncio

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from qa.api import server_config
    from tests.conftest_web import free_port

    client = api_client(tmp_path, max_connections=16)
    app = client.app

    async def held(request: Request) -> StreamingResponse:  # as Gradio's heartbeat holds
        async def beats() -> Any:
            yield b"data: {}\n\n"
            while not await request.is_disconnected():
                await asyncio.sleep(0.05)
        return StreamingResponse(beats(), media_type="text/event-stream")

    # where the chat is mounted
    app.mount("/", Starlette(routes=[Route("/{path:path}", held)]))  # type: ignore[attr-defined]
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    held_open: list[socket.socket] = []
    statuses = []
    try:
        for n in range(14):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            held_open.append(sock)
            path = ("/gradio_api/heartbeat/tab-{n}", "/gradio_api/queue/data?session_hash={n}",
                    "/gradio_api/call/chat/{n}")[n % 3].format(n=n)
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            reply = sock.recv(4096)
            if n >= 12:  # refused: answered whole, then closed, so its place goes back
                while chunk := sock.recv(4096):
                    reply += chunk
            statuses.append(reply)
        assert [r.split(b" ")[1] for r in statuses] == [b"200"] * 12 + [b"503"] * 2, statuses
        assert b"retry-after: 5" in statuses[-1].lower() and b"the chat is busy" in \
            statuses[-1]
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(url + "/healthz", timeout=10).status_code in (200, 503)
        r = httpx.post(url + "/api/retrieve", json={"question": "Who?"}, timeout=10)
        assert r.status_code == 200, r.text
        held_open.pop(0).close()  # a tab closed: its place is free again
        deadline = time.monotonic() + 10
        while True:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /gradio_api/heartbeat/again HTTP/1.1\r\n"
                             b"Host: 127.0.0.1\r\n\r\n")
                if sock.recv(4096).startswith(b"HTTP/1.1 200"):
                    break
            assert time.monotonic() < deadline, "a closed stream never freed its place"
            time.sleep(0.1)
    finally:
        for sock in held_open:
            sock.close()
        server.should_exit = True
        thread.join(timeout=10)


def test_a_write_from_another_sites_page_is_403(tmp_path: Path) -> None:
    """Without a token (the default, on loopback) a page of any web site could make the
    visitor's browser upload a file to /api/documents: a multipart form POST is a "simple"
    request, sent without a CORS preflight, and qa then quoted the planted text. A write
    (POST, PUT, PATCH, DELETE) whose `Origin` is not this server is refused 403 on every
    route, the chat's included; the server's own pages and clients that send no Origin
    (curl, the openai and MCP clients) are served as before."""
    from starlette.responses import PlainTextResponse

    client = api_client(tmp_path)
    client.app.mount("/", PlainTextResponse("the chat", 200))  # type: ignore[attr-defined]
    planted = {"file": ("planted.txt", b"Planted by another site. The code is swordfish.\n")}
    for origin in ("https://evil.example", "null", "http://127.0.0.1:9999",
                   "http://127.0.0.1.evil.example:7860", "file://", "not a url"):
        headers = {"origin": origin}
        r = client.post("/api/documents", files=planted, headers=headers)
        assert r.status_code == 403, (origin, r.text)
        assert r.json()["detail"].startswith("cross-site request refused: Origin ")
        assert client.delete("/api/documents/planted", headers=headers).status_code == 403
        assert client.post("/gradio_api/upload", files=planted,
                           headers=headers).status_code == 403
        r = client.post("/v1/chat/completions", headers=headers, json={
            "messages": [{"role": "user", "content": "Who?"}]})
        assert r.status_code == 403 and "cross-site" in r.json()["error"]["message"]
        assert client.get("/api/documents", headers=headers).status_code == 200  # a read
    assert "planted" not in {d["id"] for d in client.get("/api/documents").json()["documents"]}
    r = client.post("/api/documents", files=planted, headers={"origin": LOCAL})  # its own page
    assert r.status_code == 201, r.text
    assert client.delete("/api/documents/planted").status_code == 200  # no Origin: curl
    r = client.post("/api/retrieve", json={"question": "Who?"},
                    headers={"origin": "http://localhost:7860", "host": "localhost:7860"})
    assert r.status_code == 200, r.text


def test_a_multipart_content_type_does_not_raise_a_json_routes_body_cap(tmp_path: Path) -> None:
    """The body cap was the file limit (50 MB by default) for any request that called
    itself multipart/form-data, so /api/ask, /v1 and /mcp read such a body whole into
    memory before refusing it (/mcp held 45 MB of one). Only the upload routes take files;
    every other route keeps QA_MAX_BODY_BYTES, refused from Content-Length unread."""
    from starlette.responses import PlainTextResponse

    client = api_client(tmp_path, max_body_bytes=4096, max_upload_bytes=1 << 20)
    client.app.mount("/", PlainTextResponse("the chat", 200))  # type: ignore[attr-defined]
    body = b"--b\r\n" + b"x" * 100_000
    headers = {"content-type": "multipart/form-data; boundary=b",
               "accept": "application/json, text/event-stream"}
    for path in ("/api/ask", "/api/retrieve", "/v1/chat/completions", "/mcp",
                 "/gradio_api/queue/join"):
        r = client.post(path, content=body, headers=headers)
        assert r.status_code == 413, (path, r.status_code, r.text)
        message = (r.json()["error"]["message"] if path.startswith(("/v1", "/mcp"))
                   else r.json()["detail"])
        assert message == "the body is over 4,096 bytes", r.text
    r = client.post("/gradio_api/upload", content=body, headers=headers)  # files: its cap
    assert r.status_code != 413, r.text
    r = client.post("/api/documents", files={"file": ("big.txt", b"Big. " * 2_000)})
    assert r.status_code == 201, r.text


@pytest.mark.slow  # imports Gradio
def test_the_chats_api_answers_a_bad_call_with_a_4xx(tmp_path: Path) -> None:
    """Gradio's API routes met a client's mistake with a plain-text 500 "Internal Server
    Error": an endpoint name the chat does not have (/gradio_api/call/<name>, run/<name>,
    api/<name>: FnIndexInferError; call/v2/<name>: KeyError), or call/v2 arguments that do
    not fit (one missing, one unknown: TypeError). Now 404 and 422, one JSON line each;
    a good call is served as before."""
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL,
                    raise_server_exceptions=False) as client:
        for path in ("call/v2/nope", "call/nope", "run/nope", "api/nope"):
            r = client.post(f"/gradio_api/{path}", json={"data": []})
            assert r.status_code == 404, (path, r.text)
            assert r.json() == {"detail": "the chat has no API endpoint 'nope' (its "
                                          "endpoints: GET /gradio_api/info)"}
        for body, words in [({}, "No value provided for required argument: message"),
                            ({"message": "Who?", "bogus": 1},
                             "Parameter `bogus` is not a valid key-word argument")]:
            r = client.post("/gradio_api/call/v2/chat", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["detail"] == f"{words} (its arguments: GET /gradio_api/info)"
        r = client.post("/gradio_api/call/v2/chat", json={"message": "Who?"})
        assert r.status_code == 200 and r.json()["event_id"], r.text


@pytest.mark.slow  # imports Gradio
def test_a_crafted_chat_events_error_is_one_line(tmp_path: Path) -> None:
    """A chat event whose input Gradio cannot take (a history of bad turns) was answered
    with pydantic's report of every one of them: 3.5 MB, many lines, for a 600 KB request
    of 20,000 turns. The client gets one line: the count and the first complaint; Gradio's
    messages for people (gr.Error, here documents to ask that are not ids) are kept."""
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        config = client.get("/config").json()
        [chat] = [d["id"] for d in config["dependencies"] if d.get("api_name") == "chat"]
        event = {"data": ["Who?", [{"role": "user", "content": "a"}] * 2000, []],
                 "fn_index": chat, "session_hash": "crafted3", "trigger_id": None,
                 "event_data": None}
        done = _completed(client, event)
        error = done["output"]["error"]
        assert done["success"] is False and "\n" not in error and len(error) <= 300, error
        assert error.startswith("invalid input for ChatbotDataMessages: 0.content: "), error
        assert error.endswith("(and 1999 more)"), error
        for n, selected in enumerate(([{"id": 1}], 7)):
            event = {**event, "data": ["Who?", [], selected], "session_hash": f"c4-{n}"}
            done = _completed(client, event)  # gr.Error: as Gradio wrote it
            assert done["output"]["error"] == "The documents to ask must be a list of " \
                "document ids.", done
        event = {**event, "data": ["Who?", [], "no-such-document"], "session_hash": "c5"}
        done = _completed(client, event)  # an id the library lacks is answered as such
        assert done["success"] is True and "No longer in the library" in json.dumps(done)


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
@pytest.mark.timeout(60)
def test_a_request_past_the_connection_cap_gets_a_json_503(tmp_path: Path) -> None:
    """Past QA_MAX_CONNECTIONS uvicorn answered a plain-text "Service Unavailable", without
    Retry-After or the security headers, and logged a warning for every request refused.
    The reply is JSON in one line with Retry-After and the headers, the log says so once a
    minute at most, and the server serves again once connections close."""
    import uvicorn

    from qa.api import server_config
    from tests.conftest_web import free_port

    client = api_client(tmp_path, max_connections=16)
    port = free_port()
    server = uvicorn.Server(server_config(client.app, "127.0.0.1", port))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(15)]
    try:
        time.sleep(0.2)  # all 15 accepted and counted
        replies = []
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                reply, chunk = b"", b"-"
                while chunk:
                    chunk = sock.recv(4096)
                    reply += chunk
                replies.append(reply)
        for reply in replies:
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503"), reply
            assert b"retry-after: 5" in head and b"x-content-type-options: nosniff" in head
            assert json.loads(body) == {"detail": "the server is busy (QA_MAX_CONNECTIONS "
                                                  "connections are open); try again in a "
                                                  "moment"}
    finally:
        for sock in idle:
            sock.close()
    try:
        deadline = time.monotonic() + 10
        while httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 503:
            assert time.monotonic() < deadline, "connections never freed"
            time.sleep(0.1)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


MALFORMED_MULTIPART = [  # (body, what python-multipart says of it)
    (b"garbage without a boundary", "Expected boundary character"),
    (b"--XYZ\r\nbad header line\r\n\r\nhello\r\n--XYZ--\r\n", "invalid character"),
]


def _multipart_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("python_multipart")]


def test_a_malformed_upload_is_told_to_the_client_not_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """python-multipart logged a warning for each malformed body it was sent (wrapped over
    two lines by the MCP SDK's log handler): log noise anyone could make at will. The
    client's 422 says what is wrong; the log says nothing."""
    from tests.test_documents_api import served

    client = api_client(tmp_path)
    with served(client.app) as url, httpx.Client(base_url=url, timeout=30) as web:
        for body, reason in MALFORMED_MULTIPART:
            r = web.post("/api/documents", content=body,
                         headers={"content-type": "multipart/form-data; boundary=XYZ"})
            assert r.status_code == 422, r.text
            assert r.json()["detail"].startswith("the multipart body is malformed: ")
            assert reason in r.json()["detail"], r.text
    assert _multipart_records(caplog) == []


@pytest.mark.slow  # imports Gradio
def test_a_malformed_upload_to_the_chat_leaves_no_warning_in_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    _gradio_uploads(tmp_path, monkeypatch)
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL) as client:
        for body, _ in MALFORMED_MULTIPART:
            r = client.post("/gradio_api/upload", content=body,
                            headers={"content-type": "multipart/form-data; boundary=XYZ"})
            assert 400 <= r.status_code < 500, r.text
    assert _multipart_records(caplog) == []


def test_library_warnings_are_one_line_once_an_mcp_server_is_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the MCP server ran the SDK's `logging.basicConfig` with a RichHandler, so
    every library's warning in the process was printed wrapped over several lines."""
    import logging

    from qa.log import OneLine
    from qa.mcp_server import QAServer

    monkeypatch.setattr(logging.root, "handlers", [])  # as in a process of its own
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    QAServer("qa")
    [handler] = logging.root.handlers
    assert isinstance(handler.formatter, OneLine)
    record = logging.LogRecord("somelib", logging.WARNING, __file__, 1,
                               "a warning " * 30 + "\nsecond line", None, None)
    line = handler.format(record)
    assert line.startswith("qa: somelib: warning: a warning a warning"), line
    assert "\n" not in line and line.endswith("second line"), line


@pytest.mark.slow  # imports Gradio
def test_the_chats_upload_reads_an_rfc_5987_file_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio's upload route read a part named only by `filename*=UTF-8''%E2%80%A6.txt` as a
    plain field and answered a plain-text 500 (so did any `files` part without a file
    name): the name is decoded as /api/documents decodes it, and a part that is no file is
    a 400 in one JSON line."""
    _gradio_uploads(tmp_path, monkeypatch)
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "none",
                        index_dir=tmp_path / "index")
    headers = {"content-type": "multipart/form-data; boundary=XYZ"}

    def part(disposition: bytes) -> bytes:
        return (b"--XYZ\r\nContent-Disposition: form-data; name=\"files\"; " + disposition
                + b"\r\nContent-Type: text/plain\r\n\r\nhello there\r\n--XYZ--\r\n")

    with TestClient(create_app(Pipeline(settings, HashingEmbedder())), base_url=LOCAL,
                    raise_server_exceptions=False) as client:
        for disposition, kept in ((b"filename*=UTF-8''%E2%80%A6.txt", "….txt"),
                                  (b'filename="a.txt"; filename*=UTF-8\'\'caf%C3%A9%20notes.txt',
                                   "café notes.txt"),
                                  (b'filename="plain.txt"', "plain.txt")):
            r = client.post("/gradio_api/upload", content=part(disposition), headers=headers)
            assert r.status_code == 200, (disposition, r.text)
            assert Path(r.json()[0]).name == kept
        r = client.post("/gradio_api/upload", content=part(b"x=1"), headers=headers)
        assert r.status_code == 400, r.text
        assert "must be a file" in r.json()["detail"]


def test_an_ipv6_host_in_brackets_is_served(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa serve --host [::1]` (the address as a URL writes it, loopback to the exposure
    check) failed with "cannot listen on [::1]:7860: Name or service not known"."""
    import qa.api
    from tests.conftest_web import free_port

    served: list[tuple[str, int]] = []

    class Recorder:
        interrupted = False

        def __init__(self, config: Any, _: Pipeline) -> None:
            served.append((config.host, config.port))

        def run(self) -> None:
            pass

    monkeypatch.setattr(qa.api, "_server_class", lambda: Recorder)
    port = free_port()
    qa.api.run(api_client(tmp_path).app, host="[::1]", port=port)  # type: ignore[arg-type]
    assert served == [("::1", port)]


def test_ctrl_c_ends_the_server_as_ctrl_c_even_when_uvicorn_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn re-raises the Ctrl-C it caught once it has stopped, but asyncio's runner can
    lose it (the server's task ends first), and `qa serve` then exited 0 after a Ctrl-C, not
    130 ("qa: interrupted"): seen in the full suite, after a first build was interrupted."""
    import qa.api
    from tests.conftest_web import free_port

    class Interrupted:
        interrupted = True

        def __init__(self, config: Any, _: Pipeline) -> None:
            pass

        def run(self) -> None:  # stopped by Ctrl-C, and returned without raising it
            pass

    monkeypatch.setattr(qa.api, "_server_class", lambda: Interrupted)
    with pytest.raises(KeyboardInterrupt):
        qa.api.run(api_client(tmp_path).app, port=free_port())  # type: ignore[arg-type]


def test_what_a_client_sent_is_named_not_echoed_whole(tmp_path: Path) -> None:
    """A 20,000-character path, Host header, model name, prompt, tool name or resource
    uri came back whole in the error (a 40 KB reply to a 20 KB resource request): each is
    named in at most 100 characters, as an unknown document id already was."""
    from tests.test_documents_api import served

    long = "x" * 20_000
    mcp = {"content-type": "application/json",
           "accept": "application/json, text/event-stream"}

    def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}

    with served(api_client(tmp_path).app) as url, httpx.Client(base_url=url,
                                                                 timeout=30) as web:
        replies = [
            web.get(f"/v1/{long}"),
            web.get(f"/v1/models/{long}"),
            web.get("/healthz", headers={"host": long}),
            web.post("/v1/chat/completions", json={"model": long, "messages": [
                {"role": "user", "content": "Who?"}]}),
            web.post("/mcp", headers=mcp, json=rpc("prompts/get", {"name": long})),
            web.post("/mcp", headers=mcp, json=rpc("tools/call", {"name": long,
                                                                  "arguments": {}})),
            web.post("/mcp", headers=mcp, json=rpc("resources/read", {"uri": f"file:///{long}"})),
            web.post("/mcp", headers=mcp, json=rpc(long, {})),
        ]
    for r in replies:
        assert 200 <= r.status_code < 500, r.text[:200]
        assert len(r.content) < 1000, (r.request.url.path[:50], r.text[:300])


def test_a_token_set_with_surrounding_spaces_is_the_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A QA_API_TOKEN with a trailing space (from an env file) refused every write: what a
    client sends was trimmed, the token itself was not. A token of characters a header
    cannot carry (HTTP reads headers as Latin-1) is refused when the server starts."""
    from qa.config import load_settings
    from qa.errors import BadSetting

    client = api_client(tmp_path, api_token="abcdefghijklmnopqrst \n")
    for sent in ("abcdefghijklmnopqrst", "abcdefghijklmnopqrst "):
        r = client.post("/api/documents", files={"file": ("a.txt", b"A\n\nText one.\n")},
                        headers={"authorization": f"Bearer {sent}"})
        assert r.status_code in (201, 409), r.text
    for token in ("pässwörd-1234567890", "tab\tinside-1234567890"):
        with pytest.raises(BadSetting, match="printable ASCII"):
            Settings(api_token=token)
    monkeypatch.setenv("QA_API_TOKEN", "Schlüssel-1234567890")
    with pytest.raises(BadSetting, match="QA_API_TOKEN must be printable ASCII"):
        load_settings()


def test_allowed_hosts_that_could_never_match_are_refused_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """QA_ALLOWED_HOSTS=example.com:8080 (or http://example.com) was taken as it was, but
    the check compares the Host header's name without its port: every request was refused
    400 'host ... is not served here (set QA_ALLOWED_HOSTS to allow it)'. Such a value is
    a BadSetting naming it; an IPv6 address in brackets is the address."""
    from qa import cli
    from qa.errors import BadSetting

    for bad in ("example.com:8080", "http://example.com", "exa mple.com", "a/b"):
        with pytest.raises(BadSetting, match="without a scheme, port or path"):
            Settings(allowed_hosts=(bad,))
    client = api_client(tmp_path, allowed_hosts=("[::1]", "QA.Example"))
    for base in ("http://[::1]:7860", "http://qa.example"):
        client.base_url = base  # type: ignore[assignment]
        assert client.get("/healthz").status_code != 400, base
    monkeypatch.setenv("QA_ALLOWED_HOSTS", "qa.example:443")
    assert cli.main(["serve"]) == 2
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and "'qa.example:443'" in said, said


def test_every_get_route_takes_head(tmp_path: Path) -> None:
    """HEAD /api/documents, /api/documents/{id}, /v1/models and /docs answered 405 (only
    /healthz had a HEAD route), where HTTP wants every GET resource to take HEAD (RFC
    9110): the GET's status and headers, no body. On `qa serve`'s own protocol."""
    from tests.test_documents_api import served

    client = api_client(tmp_path)
    with served(client.app, qa_config=True) as url, httpx.Client(  # type: ignore[arg-type]
            base_url=url, timeout=30) as web:
        doc = next(p for p in sorted(SEEDS.glob("*.txt")) if not p.name.startswith(".")).stem
        deadline = time.monotonic() + 60  # /healthz is 503 until the warm-up is done
        while web.get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        for path in ("/api/documents", f"/api/documents/{doc}", "/v1/models", "/docs",
                     "/healthz", "/openapi.json"):
            got = web.get(path)
            head = web.head(path)
            assert head.status_code == got.status_code == 200, (path, head.status_code)
            assert head.content == b"", path
            assert head.headers["content-type"] == got.headers["content-type"], path
        r = web.head("/api/ask")
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        r = web.head("/api/documents/nope")
        assert r.status_code == 404


def test_the_openapi_examples_are_valid_and_name_no_shipped_document(tmp_path: Path) -> None:
    """The examples /docs offers asked about the seed article ("What does he say Iraq will
    still need?", "What did Kadhimi tell the Washington Post?"): users bring their own
    documents. Each example is valid against its served schema (and its model), and names
    no shipped document: no seed id, no name or place of the seeds."""
    import jsonschema

    from qa.api import AskRequest
    from qa.openai_api import ChatRequest

    served = api_client(tmp_path).get("/openapi.json").json()
    models = {"AskRequest": AskRequest, "ChatRequest": ChatRequest}
    found: list[Any] = []
    for name, component in served["components"]["schemas"].items():
        for example in component.get("examples", []):
            jsonschema.validate(example, {**component, "components": served["components"]})
            if name in models:
                models[name].model_validate(example)
            found.append(example)
    assert {"AskRequest", "ChatRequest"} <= {
        n for n, c in served["components"]["schemas"].items() if c.get("examples")}
    text = json.dumps(found)
    shipped = [p for p in [*SEEDS.iterdir(), *(SEEDS.parent / "eval" / "docs").rglob("*.txt")]
               if p.is_file() and not p.name.startswith(".")]
    assert len(shipped) > 3 and not [p.stem for p in shipped if p.stem in text]
    seeds = " ".join(p.read_text("utf-8") for p in SEEDS.iterdir() if p.is_file())
    names = set(re.findall(r"(?<![.?!] )(?<!^)\b[A-Z][a-z]{3,}", seeds)) - {"What", "When"}
    assert not [w for w in re.findall(r"\b[A-Z][a-z]{3,}", text) if w in names]
    asked = " ".join(p.read_text("utf-8") for p in (SEEDS.parent / "eval").glob("*.jsonl"))
    questions = [m["content"] for e in found for m in e.get("messages", [])] + [
        q for e in found for q in [e.get("question"), *e.get("history", [])] if q]
    assert not [q for q in questions if q != "…" and q in asked]  # no test set's question


@pytest.mark.parametrize("error", [ModelError("the model cannot be loaded"),
                                   IndexCorrupt("the index is corrupt: rebuild it")])
def test_a_removal_the_server_cannot_make_now_is_a_503_as_an_upload_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: QAError) -> None:
    """DELETE /api/documents/{id} answered any library error 500 ("internal"), though the
    same error on an upload or a question (the model or index cannot be loaded) is a 503:
    the server's state, to retry later."""
    client = api_client(tmp_path)
    pipeline = client.app.state.pipeline  # type: ignore[attr-defined]

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(pipeline, "remove_documents", fail)
    monkeypatch.setattr(pipeline, "add_documents", fail)
    posted = client.post("/api/documents", files={"file": ("n.txt", b"A note.\n")})
    deleted = client.delete("/api/documents/n")
    assert posted.status_code == deleted.status_code == 503, (posted.text, deleted.text)
    assert deleted.json() == {"detail": str(error)}


def test_a_model_that_cannot_load_is_reported_once(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa serve --model no-such-model`: every request that needs the index (503, right)
    tried the load again and logged "no index yet …; building it" and the note "documents
    are embedded in float32: …" each time, never that the build failed. The failure is said
    once, as the warm-up meets it; later requests fail at once and log nothing."""
    from qa import embedding

    monkeypatch.setattr(embedding, "native_int8", lambda: True)  # the note's path (auto)
    shutil.copytree(SEEDS, tmp_path / "seeds")
    settings = Settings(model="no-such-model", seeds_dir=tmp_path / "seeds",
                        index_dir=tmp_path / "index", spacy="none")
    # QA_EMBED_RUNTIME=onnx: a model that is no plain BERT fails before any import
    embedder = embedding.SentenceTransformerEmbedder(
        "no-such-model", runtime="onnx", document_precision="auto")
    opened = []
    monkeypatch.setattr(embedder, "_onnx", lambda *a: opened.append(a) or
                        embedding.SentenceTransformerEmbedder._onnx(embedder, *a))
    with TestClient(create_api(Pipeline(settings, embedder)), base_url=LOCAL) as client:
        deadline = time.monotonic() + 10
        while client.get("/healthz").json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for _ in range(3):
            r = client.get("/api/documents")
            assert r.status_code == 503 and "runs only plain" in r.json()["detail"]
    err = capsys.readouterr().err
    assert err.count("runs only plain mean-pooled BERT") == 1, err  # the warm-up's error
    assert "building it" not in err and "embedded in float32" not in err, err
    assert len(opened) == 1  # loaded once, not once a request


@pytest.mark.usefixtures("fake_cli")
def test_retrieved_passages_of_a_pdf_say_their_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`POST /api/ask` (and `qa ask --json`, MCP, /v1) cite a PDF by page, but `POST
    /api/retrieve` and `qa retrieve --json` gave a PDF passage only its character offsets in
    the extracted text, which no reader can find in the PDF. A passage of a document with
    pages has `page` (1-based, of its start; its sentence's in `sentence.page`), as
    `with_pages` adds to an answer's citations; others are unchanged."""
    client = api_client(tmp_path)
    pdf = Path(__file__).resolve().parent / "data" / "docs" / "water-report.pdf"
    r = client.post("/api/documents", files=[("file", (pdf.name, pdf.read_bytes()))])
    assert r.status_code == 201, r.text
    text = client.get("/api/documents/water-report").json()["text"]
    pages = client.app.state.pipeline.index.documents["water-report"]
    hits = client.post("/api/retrieve", json={"question": "water quality report", "k": 10,
                                             "doc_ids": ["water-report"]}).json()
    assert hits and {h["page"] for h in hits} != {1}
    for hit in hits:
        assert text[hit["start"]:hit["end"]] == hit["text"]
        assert hit["page"] == pages.page_of(hit["start"])
        assert hit["sentence"]["page"] == pages.page_of(hit["sentence"]["start"])
    article = client.post("/api/retrieve", json={"question": "Who is the Pentagon spokesman?",
                                                "doc_ids": ["politico-us-iraq-advisory-"
                                                            "transition"]}).json()
    assert "page" not in article[0] and "page" not in article[0]["sentence"]
    from qa import cli

    capsys.readouterr()
    assert cli.main(["retrieve", "water quality report", "--doc", "water-report", "-k", "10",
                     "--json", "--seeds", str(tmp_path / "seeds"), "--index",
                     str(tmp_path / "index"), "--model", "fake-hashing"]) == 0
    assert json.loads(capsys.readouterr().out) == hits  # the JSON of `qa retrieve --json`


def test_a_json_body_is_read_in_the_charset_its_content_type_declares(
        tmp_path: Path) -> None:
    """A body sent with `Content-Type: application/json; charset=latin-1` (Java's and
    others' clients encode as they label) was read as UTF-8 whatever it said: "café" was
    422 "not UTF-8 text" (and a body that happened to be valid UTF-8 was misread). The
    declared charset is honoured on every JSON route; a body not valid in it is one 400
    in the route's shape; a charset no codec has is read as UTF-8, as before."""
    client = api_client(tmp_path)
    ask = '{"question": "Who is the Pentagon spokesman, café?"}'
    for charset in ("latin-1", "ISO-8859-1", '"windows-1252"', "utf-16"):
        r = client.post("/api/ask", content=ask.encode(charset.strip('"')),
                        headers={"content-type": f"application/json; charset={charset}"})
        assert r.status_code == 200, (charset, r.text)
        assert "café" in r.json()["text"], charset
    chat = {"model": "qa", "messages": [{"role": "user", "content": "Who is Kirby, café?"}]}
    r = client.post("/v1/chat/completions", content=json.dumps(chat, ensure_ascii=False)
                    .encode("latin-1"),
                    headers={"content-type": "application/json; charset=iso-8859-1"})
    assert r.status_code == 200, r.text
    r = client.post("/v1/chat/completions", content=b'{"model": "qa\x81"}',
                    headers={"content-type": "application/json; charset=windows-1252"})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ("the body is not valid 'windows-1252' text, the "
                                            "charset its Content-Type names")
    r = client.post("/api/ask", content=ask.encode("latin-1"),
                    headers={"content-type": "application/json"})  # no charset: UTF-8
    assert r.status_code == 422 and r.json()["detail"] == (
        "the body is not valid JSON: it is not UTF-8 text (send UTF-8, or name its charset: "
        "Content-Type: application/json; charset=...)")
    r = client.post("/api/ask", content=ask.encode(),
                    headers={"content-type": "application/json; charset=no-such-charset"})
    assert r.status_code == 200 and "café" in r.json()["text"]
    r = client.post("/api/ask", content=ask.encode(),
                    headers={"content-type": "application/json; charset=rot13"})  # no text
    assert r.status_code == 200 and "café" in r.json()["text"]
