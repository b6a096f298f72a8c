"""The web chat's writes need the token, on a real `qa serve` listening beyond loopback.

The attack replayed: Gradio's queue runs the chat's add and remove handlers for any client
that names them (`/gradio_api/queue/join` with their `fn_index`, "private" or not), and its
upload route stored a file for anyone. Without the token nothing is stored, added or
removed; with it, all three work. The server is `qa serve --host 0.0.0.0` with
QA_API_TOKEN set, on a copy of the session's index (the real model: slow), reached over
127.0.0.1.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.pipeline import Pipeline
from tests.conftest_web import Server, serving

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token-for-tests"
DOCS = Path(__file__).resolve().parent / "data" / "docs"
PLANTED = "kestrel-lighthouse.html"  # becomes the document "kestrel-lighthouse"
PLANTED_ID = "kestrel-lighthouse"


@pytest.fixture(scope="module")
def public_server(real_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[Server, Path, Path]]:
    """The server, the folder of its index and data, and Gradio's upload folder."""
    base = tmp_path_factory.mktemp("public")
    uploads = tmp_path_factory.mktemp("qa-uploads-public")  # the server's own (the prefix)
    settings = real_pipeline.settings
    shutil.copytree(settings.seeds_dir, base / "seeds")
    shutil.copytree(settings.index_dir, base / "index")
    env = {**os.environ, "QA_SEEDS": str(base / "seeds"), "QA_INDEX": str(base / "index"),
           "QA_MODEL": settings.model, "QA_CACHE_DIR": str(settings.cache_dir),
           "QA_API_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    env["GRADIO_TEMP_DIR"] = str(uploads)
    with serving(env, base / "serve.log", host="0.0.0.0") as running:
        yield running, base, uploads


def _handlers(client: httpx.Client) -> dict[str, int]:
    """The fn_index of the chat's upload, remove and page-load (listing) events, read from
    Gradio's /config as any client can; also checks that the Access token field is there, a
    password field, and an input of both writes."""
    config = client.get("/config").json()
    by_elem = {c.get("props", {}).get("elem_id"): c for c in config["components"]}
    assert by_elem["qa-token"]["props"]["type"] == "password"
    found = {}
    for dep in config["dependencies"]:
        for target, event in dep["targets"]:
            for name, elem, wanted in (("add", "qa-upload", "upload"),
                                       ("remove", "qa-remove", "click")):
                if target == by_elem[elem]["id"] and event == wanted:
                    found[name] = dep["id"]
                    assert by_elem["qa-token"]["id"] in dep["inputs"]
            if event == "load" and by_elem["qa-remove-choice"]["id"] in dep["outputs"]:
                found["listing"] = dep["id"]
    assert set(found) == {"add", "remove", "listing"}, found
    return found


def _queue(client: httpx.Client, fn_index: int, data: list[Any], session: str = ""
           ) -> dict[str, Any]:
    """Run one event through Gradio's queue as the tester's probe did; its last message."""
    session = session or uuid.uuid4().hex[:10]
    joined = client.post("/gradio_api/queue/join", json={
        "data": data, "fn_index": fn_index, "trigger_id": None, "session_hash": session,
        "event_data": None})
    if joined.status_code != 200:
        return {"msg": "refused", "status": joined.status_code, "success": False}
    with client.stream("GET", "/gradio_api/queue/data",
                       params={"session_hash": session}) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line.removeprefix("data:"))
                if message.get("msg") == "process_completed":
                    return dict(message)
    raise AssertionError("the queue closed without completing the event")


def _status(reply: dict[str, Any]) -> str:
    """The status a handler returned (its first output, as text), or '' if it failed."""
    output = reply.get("output") or {}
    return html.unescape(str((output.get("data") or [""])[0])) if reply.get("success") else ""


def _documents(client: httpx.Client) -> set[str]:
    return {d["id"] for d in client.get("/api/documents").json()["documents"]}


def test_web_chat_writes_need_the_token(public_server: tuple[Server, Path, Path]) -> None:
    server, base, uploads = public_server
    with httpx.Client(base_url=server.url, timeout=120) as client:
        handlers = _handlers(client)
        before = _documents(client)
        assert PLANTED_ID not in before

        # Gradio's upload route stores nothing without the token (the chat's page sends it
        # as the qa_token cookie, a program as a Bearer header) ...
        planted = {"files": (PLANTED, (DOCS / PLANTED).read_bytes())}
        for headers in ({}, {"cookie": "qa_token=wrong"}):
            refused = client.post("/gradio_api/upload", files=planted, headers=headers)
            assert refused.status_code == 401, refused.text
            assert "access token" in refused.json()["detail"]
        assert not [p for p in uploads.rglob("*") if p.is_file()], "refused: nothing stored"
        stored = client.post("/gradio_api/upload", files=planted,
                             headers={"cookie": f"qa_token={TOKEN}"})
        assert stored.status_code == 200, stored.text
        file = {"path": stored.json()[0], "orig_name": PLANTED,
                "meta": {"_type": "gradio.FileData"}}

        # ... and the add handler indexes it only with the token too.
        for token in ([], [None], [""], ["wrong"], [TOKEN + "x"], [TOKEN[:-1]]):
            reply = _queue(client, handlers["add"], [[file], [], *token])
            if token and token[0]:
                assert "The access token is not right" in _status(reply), reply
            elif token:
                assert "needs the access token" in _status(reply), reply
            assert _documents(client) == before, token
        assert not list(base.rglob(f"*{PLANTED_ID}*")), "nothing of it is stored"

        added = _queue(client, handlers["add"], [[file], [], TOKEN])
        assert "Added “The Kestrel Point Lighthouse” (HTML)" in _status(added), added
        assert _documents(client) == before | {PLANTED_ID}

        # The remove handler, in a session whose page has loaded (the remove dropdown then
        # offers the document): nothing without the token, then it goes with it.
        session = uuid.uuid4().hex[:10]
        assert _queue(client, handlers["listing"], [[]], session)["success"]
        for token in ([], [None], [""], ["wrong"]):
            reply = _queue(client, handlers["remove"], [PLANTED_ID, [], *token], session)
            if token:
                assert "Nothing was removed" in _status(reply), reply
            assert PLANTED_ID in _documents(client), token
        removed = _queue(client, handlers["remove"], [PLANTED_ID, [], TOKEN], session)
        assert f"Removed {PLANTED_ID}" in _status(removed), removed
        assert _documents(client) == before

        # The HTTP API agrees (the same check).
        upload = {"file": (PLANTED, (DOCS / PLANTED).read_bytes())}
        assert client.post("/api/documents", files=upload).status_code == 401
        assert client.post("/api/documents", files=upload,
                           headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_wrong_tokens_in_the_chat_count_against_the_address_over_http_too(
        public_server: tuple[Server, Path, Path]) -> None:
    """The chat hands Gradio's request (the client's address) to the server's one throttle:
    once 127.0.0.1 has sent FAILED_TOKENS_ALLOWED wrong tokens (some may come from the test
    before), the chat refuses even the right token, and so does the HTTP API (429)."""
    from qa.security import FAILED_TOKENS_ALLOWED

    server, _, _ = public_server
    with httpx.Client(base_url=server.url, timeout=120) as client:
        handlers = _handlers(client)
        before = _documents(client)
        stored = client.post("/gradio_api/upload", files={
            "files": (PLANTED, (DOCS / PLANTED).read_bytes())},
            headers={"authorization": f"Bearer {TOKEN}"})
        file = {"path": stored.json()[0], "orig_name": PLANTED,
                "meta": {"_type": "gradio.FileData"}}
        statuses = [_status(_queue(client, handlers["add"], [[file], [], "wrong"]))
                    for _ in range(FAILED_TOKENS_ALLOWED + 1)]
        assert "The access token is not right" in statuses[0], statuses
        assert "Too many wrong access tokens from this address" in statuses[-1], statuses
        right = _status(_queue(client, handlers["add"], [[file], [], TOKEN]))
        assert "Too many wrong access tokens" in right and "Nothing was added" in right
        upload = {"file": (PLANTED, (DOCS / PLANTED).read_bytes())}
        r = client.post("/api/documents", files=upload,
                        headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 60, r.text
        assert _documents(client) == before
