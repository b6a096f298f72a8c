"""The edges under misuse: lock and claim files of the index and data folders, the CLI's
bad arguments and broken destinations. Fast: the hashing embedder, in this process or in a
child process (`_fake_qa`) where a second process or a hang is the point."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import Client

from qa import cli
from qa.config import Settings
from qa.pipeline import Pipeline
from tests.conftest import ROOT, SEEDS, HashingEmbedder, cli_argv

# `qa` in a child process on the hashing embedder, without spaCy (see `fake_cli`)
_FAKE_QA = (
    "import sys\n"
    "from qa import cli\n"
    "from qa.pipeline import Pipeline\n"
    "from tests.conftest import HashingEmbedder\n"
    "real = Pipeline.__init__\n"
    "Pipeline.__init__ = lambda self, settings=None, embedder=None: "
    "real(self, settings, HashingEmbedder())\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


# the HTTP API (no chat: Gradio takes seconds to import) on the hashing embedder, served
# as `qa serve` serves it: python -c _FAKE_API SEEDS INDEX PORT
_FAKE_API = (
    "import sys\n"
    "from qa.api import create_api, server_config\n"
    "from qa.config import Settings\n"
    "from qa.pipeline import Pipeline\n"
    "from tests.conftest import HashingEmbedder\n"
    "import uvicorn\n"
    "settings = Settings(model='fake-hashing', seeds_dir=sys.argv[1], index_dir=sys.argv[2], "
    "spacy='none')\n"
    "app = create_api(Pipeline(settings, HashingEmbedder()))\n"
    "uvicorn.Server(server_config(app, '127.0.0.1', int(sys.argv[3]))).run()\n"
)


def _fake_qa(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QA_SPACY": "none",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", _FAKE_QA, *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


@pytest.fixture
def library(tmp_path: Path) -> Settings:
    """A seeds folder of the article, an index folder and a data folder not made yet."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                    index_dir=tmp_path / "index", data_dir=tmp_path / "data", spacy="none")


def _argv(settings: Settings, *args: str) -> list[str]:
    return [*cli_argv(settings, *args), "--data", str(settings.documents_dir)]


def _until_healthy(server: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    """Wait until the server on `port` says it is ready; fail if it ends or `deadline` (a
    `time.monotonic()` reading) passes first."""
    while True:
        assert server.poll() is None and time.monotonic() < deadline
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok":
                return
        time.sleep(0.2)


def _edit_a_seed(settings: Settings) -> None:
    # the article, not the hidden .examples.txt beside it (which glob may list first)
    seed = next(p for p in sorted(settings.seeds_dir.glob("*.txt")) if not p.name.startswith("."))
    with seed.open("a", encoding="utf-8") as fh:
        fh.write("\nThe harbour master is Anna Berg.\n")


# -- lock files that are not files -------------------------------------------------------------


@pytest.mark.slow  # a real `qa` process each (about a second): out of the fast tier
@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_non_file_lock_in_the_data_folder_does_not_block_reading(
        library: Settings, kind: str, fake_cli: None) -> None:
    """A `.lock` folder in the data folder made `qa ask` on a changed seed fail ('cannot
    open the lock file …: Is a directory'), and a FIFO there hung it for ever: a read
    never needs the data folder's lock (a read-only data folder is read the same way).
    It answers, with one warning naming the file; `qa add` is refused in one line."""
    assert cli.main(_argv(library, "index")) == 0
    lock = library.documents_dir / ".lock"
    lock.parent.mkdir(exist_ok=True)
    if lock.exists():
        lock.unlink()
    lock.mkdir() if kind == "folder" else os.mkfifo(lock)
    _edit_a_seed(library)
    asked = _fake_qa(*_argv(library, "ask", "Who is the harbour master?"), timeout=60)
    assert asked.returncode == 0, asked.stderr
    assert "Anna Berg" in asked.stdout
    assert f"the lock file {str(lock)!r} is " in asked.stderr
    note = library.seeds_dir.parent / "note.txt"
    note.write_text("The pier opens at six.\n", encoding="utf-8")
    added = _fake_qa(*_argv(library, "add", str(note)))
    assert added.returncode == 1
    assert added.stderr.count("\n") == 1 and "remove or rename it" in added.stderr, added.stderr
    assert sorted(p.name for p in library.documents_dir.iterdir()) == [".lock"]


def test_a_folder_in_place_of_the_index_lock_is_one_clear_line(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    assert cli.main(_argv(library, "index")) == 0
    lock = library.index_dir / ".lock"
    lock.unlink()
    lock.mkdir()
    _edit_a_seed(library)  # the index must be rebuilt, under its lock
    capsys.readouterr()
    assert cli.main(_argv(library, "ask", "Who is the harbour master?")) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"qa: error: the lock file {str(lock)!r} is a folder: qa keeps its "
                       "lock there; remove or rename it")


# -- the index folder's claims ------------------------------------------------------------------


@pytest.mark.slow  # a second process: kept out of the fast tier
def test_two_commands_building_a_new_index_folder_from_other_folders_are_refused(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa index --index NEW --data D1` and `qa index --index NEW --data D2` at once: a
    command claimed only an index folder that existed already, so neither claimed the new
    one and both built it, each for its own documents. The first claims it (creating it);
    the second is refused in one line, exit 2."""
    other = library.documents_dir.parent / "d2"
    seen: list[subprocess.CompletedProcess[str]] = []
    real = Pipeline.rebuild

    def rebuild(self: Pipeline) -> object:  # the second command starts while this one builds
        seen.append(_fake_qa(*cli_argv(library, "index"), "--data", str(other)))
        return real(self)

    monkeypatch.setattr(Pipeline, "rebuild", rebuild)
    assert not library.index_dir.exists()
    assert cli.main(_argv(library, "index")) == 0
    assert seen[0].returncode == 2, seen[0].stderr
    assert seen[0].stderr.count("\n") == 1 and "in use by another qa process" in seen[0].stderr
    assert not other.exists()


@contextlib.contextmanager
def _held_claim(settings: Settings) -> Iterator[None]:
    """Another live process claims `settings`' index folder (with its folders)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from qa.config import load_settings; "
         "from qa.store import claim_index; claim_index(load_settings(seeds_dir=sys.argv[1], "
         "index_dir=sys.argv[2], data_dir=sys.argv[3])); print('held', flush=True); "
         "sys.stdin.read()", str(settings.seeds_dir), str(settings.index_dir),
         str(settings.documents_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


@pytest.mark.slow  # a second process: kept out of the fast tier
def test_eval_is_refused_an_index_folder_in_use_from_other_folders(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    """`qa eval` claimed nothing: run with other folders on an index folder a server was
    using, it rebuilt that index for its own documents under the server. It is refused,
    as every other command is, in one line (exit 2), and builds nothing."""
    other = library.documents_dir.parent / "d2"
    with _held_claim(library):
        code = cli.main([*cli_argv(library, "eval", str(ROOT / "eval" / "article_qa.jsonl")),
                         "--limit", "1", "--data", str(other)])
        err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "in use by another qa process" in err
    assert not (library.index_dir / "manifest.json").exists()


def _claims(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.index_dir.glob(".server-*"))


@pytest.mark.slow  # a second process: kept out of the fast tier
def test_a_killed_process_s_claim_is_removed_and_never_blocks(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    """A process killed (kill -9) while it used the index folder left its claim file there
    for good, and every ended one too: one file per set of folders ever used, each read by
    every later claim. A claim file whose process is gone (its lock is free) is removed by
    the next claim and never refuses it; a claim ends with its file. A live holder is named
    by its process id."""
    other = library.documents_dir.parent / "d2"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from qa.config import load_settings; "
         "from qa.store import claim_index; claim_index(load_settings(seeds_dir=sys.argv[1], "
         "index_dir=sys.argv[2], data_dir=sys.argv[3])); print('held', flush=True); "
         "sys.stdin.read()", str(library.seeds_dir), str(library.index_dir), str(other)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    assert cli.main(_argv(library, "list")) == 2
    assert f"(process {holder.pid})" in capsys.readouterr().err
    holder.kill()
    holder.wait(timeout=30)
    assert len(_claims(library)) == 1  # what the killed process left
    assert cli.main(_argv(library, "list")) == 0, capsys.readouterr().err
    assert _claims(library) == []  # the dead claim went, and this one ended with its command
    assert cli.main(_argv(library, "list")) == 0


def test_a_command_that_fails_leaves_no_new_index_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "empty.txt").write_text("", encoding="utf-8")
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                        index_dir=tmp_path / "new" / "index", spacy="none")
    assert cli.main(cli_argv(settings, "index")) == 1
    assert "no documents to index" in capsys.readouterr().err
    assert not (tmp_path / "new" / "index").exists()


# -- the HTTP API on a real server (the hashing embedder) -------------------------------------


@pytest.fixture
def web(library: Settings) -> Iterator[tuple[httpx.Client, Pipeline]]:
    """`qa serve`'s app on a real uvicorn server on loopback, configured as `qa serve`
    configures it: a client for it and its pipeline."""
    from qa.api import create_api
    from tests.test_documents_api import served

    pipeline = Pipeline(library, HashingEmbedder())
    with served(create_api(pipeline), qa_config=True) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        yield client, pipeline


@pytest.mark.parametrize("cut", [b"The pier opens at six.", b"The pier opens at six.\r\n--XYZ"])
def test_an_upload_cut_short_is_refused_not_stored(
        web: tuple[httpx.Client, Pipeline], cut: bytes) -> None:
    """A multipart body that ends before its closing boundary (a client or proxy that cut
    the upload short) was stored and indexed as the whole file: a 201 for a document of
    whatever part had arrived. It is a 422 saying the upload is incomplete, and nothing
    is added."""
    client, pipeline = web
    body = (b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"pier.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\n" + cut)
    r = client.post("/api/documents", content=body,
                    headers={"content-type": "multipart/form-data; boundary=XYZ"})
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": "the multipart body is incomplete: it ends before its "
                                  "closing boundary (the upload was cut short?)"}
    assert [d["id"] for d in client.get("/api/documents").json()["documents"]] == [
        "politico-us-iraq-advisory-transition"]
    data = pipeline.settings.documents_dir
    assert not data.exists() or [p.name for p in data.iterdir() if p.name != ".lock"] == []


def run(client: Client, check: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with client:
            await check(client)

    anyio.run(main)


def _jsonrpc_error(r: httpx.Response) -> str:
    """The message of the JSON-RPC error `r` carries (id null: the request was not read)."""
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and set(body) == {
        "jsonrpc", "id", "error"}, body
    assert isinstance(body["error"]["code"], int)
    return str(body["error"]["message"])


def test_mcp_http_errors_are_json_rpc_errors_an_mcp_client_reads(
        web: tuple[httpx.Client, Pipeline], monkeypatch: pytest.MonkeyPatch) -> None:
    """/mcp answered the errors of the server around it (413 body too large, 405, 401 and
    429 for the token, 503 shutting down, 500) as `{"detail": ...}`, where its own are
    JSON-RPC errors: MCP clients read a JSON-RPC error in a non-2xx body, and the SDK's
    told the agent only 'Server returned an error response'. They are JSON-RPC errors
    (id null) with the same one-line message, and the SDK's client says it."""
    client, pipeline = web
    accept = {"accept": "application/json, text/event-stream"}
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "ask", "arguments": {"question": "x" * (pipeline.settings.max_body_bytes + 1)}}}
    r = client.post("/mcp", json=call, headers=accept)
    assert r.status_code == 413
    assert _jsonrpc_error(r) == f"the body is over {pipeline.settings.max_body_bytes:,} bytes"
    r = client.get("/mcp", headers=accept)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert _jsonrpc_error(r) == "method GET is not allowed here; use POST"

    monkeypatch.setattr(pipeline, "settings", replace(pipeline.settings, api_token="t" * 32))
    r = client.post("/mcp", json={**call, "params": {"name": "list_documents"}}, headers=accept)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert _jsonrpc_error(r) == "this request needs 'Authorization: Bearer <QA_API_TOKEN>'"

    async def list_documents(mcp: Client) -> None:
        await mcp.call_tool("list_documents", {})

    with pytest.raises(BaseException) as raised:  # the SDK's client, without the token
        run(Client(f"{client.base_url}/mcp"), list_documents)
    assert "needs 'Authorization: Bearer <QA_API_TOKEN>'" in repr(raised.value)
    r = client.post("/api/ask", json={"question": "Who?"}, headers={"authorization": "x"})
    assert r.status_code != 401 or r.json().get("detail")  # the rest of the API as it was


# -- folders that overlap ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [["list"], ["add", "NOTE"], ["ask", "Who is the keeper?"]])
@pytest.mark.parametrize(("index", "data", "message"), [
    ("index", "seeds", "the data folder {data!r} must not be inside the seeds folder"),
    ("index", "seeds/uploads", "the data folder {data!r} must not be inside the seeds folder"),
    ("data/index", "data", "the index folder {index!r} must not be the data folder {data!r} "
                           "(QA_DATA) nor inside it"),
])
def test_overlapping_folders_are_refused_before_anything_is_built(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None,
        command: list[str], index: str, data: str, message: str) -> None:
    """`qa add --data SEEDS` built an index reading the seeds folder as the data folder (and
    left its lock file among the documents) before it said the data folder must not be
    there; `qa add --index D/index --data D` indexed the index folder as an upload ('skipped
    D/index: unreadable metadata') before it refused; `qa list` and `qa ask` never refused
    either. Every command refuses both in one line (exit 2) and creates nothing."""
    root = library.seeds_dir.parent
    note = root / "note.txt"
    note.write_text("The keeper is Ada.\n", encoding="utf-8")
    argv = [str(note) if a == "NOTE" else a for a in command]
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    code = cli.main([*argv, "--seeds", str(library.seeds_dir), "--index", str(root / index),
                     "--data", str(root / data), "--model", "fake-hashing"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err == "qa: error: " + message.format(index=str(root / index),
                                                  data=str(root / data)) + "\n"
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize("command", [["list"], ["index"], ["ask", "Who is the keeper?"]])
def test_a_seeds_folder_that_is_a_file_is_a_bad_setting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_cli: None,
        command: list[str]) -> None:
    """`--seeds FILE` said "no index yet …; building it" and then failed with exit 1, where
    an index or data folder that is a file is a bad setting (exit 2) said before anything."""
    seeds = tmp_path / "notes.txt"
    seeds.write_text("The keeper is Ada.\n", encoding="utf-8")
    code = cli.main([*command, "--seeds", str(seeds), "--index", str(tmp_path / "index"),
                     "--model", "fake-hashing"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"qa: error: the seeds folder {str(seeds)!r} is not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_manifest_that_is_a_folder_is_refused_before_a_build(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    """An index folder whose manifest.json is a folder: the command built every document,
    then failed writing the manifest ("Is a directory"), its build folder left behind. It is
    refused first, in one line, and nothing is built."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    manifest = tmp_path / "index" / "manifest.json"
    manifest.mkdir(parents=True)
    code = cli.main(["index", "--seeds", str(tmp_path / "seeds"), "--index",
                     str(tmp_path / "index"), "--model", "fake-hashing"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{str(manifest)!r} is not a file" in err, err
    assert [p.name for p in (tmp_path / "index").iterdir() if not p.name.startswith(".")] \
        == ["manifest.json"]


@pytest.mark.slow  # real servers, one killed: out of the fast tier
def test_a_killed_server_s_streaming_upload_is_removed_by_the_next_upload(
        library: Settings) -> None:
    """A server killed (kill -9) while an upload streamed left its parts in the data folder
    (up to 20 files of QA_MAX_UPLOAD_BYTES) for an hour: an upload folder's age was the
    only sign that its server was gone. The server holds a lock in it while the upload
    streams; the next upload removes one whose lock is free at once, and leaves one that
    another server is still streaming (its lock held)."""
    import fcntl
    import socket

    from tests.conftest_web import free_port

    port = free_port()
    env = {**os.environ, "QA_SPACY": "none",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    server = subprocess.Popen([sys.executable, "-c", _FAKE_API, str(library.seeds_dir),
                               str(library.index_dir), str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = library.documents_dir
    try:
        deadline = time.monotonic() + 60
        _until_healthy(server, port, deadline)
        head = (b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; "
                b"filename=\"tides.txt\"\r\n\r\n" + b"The tide rose at dawn. " * 2000)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /api/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=XYZ\r\n"
                         b"Content-Length: 10000000\r\n\r\n" + head)
            while not any((p / "part-0").exists() and (p / "part-0").stat().st_size
                          for p in data.glob(".upload-*")):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            server.kill()
            server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    [left] = data.glob(".upload-*")
    live = data / ".upload-live"  # another server's, streaming now
    live.mkdir()
    with open(live / ".streaming", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        pier = library.seeds_dir.parent / "pier.txt"
        pier.write_text("The pier opens at six.\n", encoding="utf-8")
        Pipeline(library, HashingEmbedder()).add_documents([pier])  # sweeps first
        assert not left.exists()
        assert live.is_dir()


# -- a full disk -------------------------------------------------------------------------------


def test_a_build_cut_short_by_a_full_disk_is_one_line_and_changes_nothing(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a full disk numpy's writers raise OSError('6399 requested and 4064 written'),
    without an errno (seen on a 700 KB tmpfs): `qa add` said 'qa: internal error: OSError:
    6399 requested and 4064 written'. It is the index folder's full disk, in one line
    (exit 1; HTTP 507), and the index and the library are as they were."""
    import numpy as np

    assert cli.main(_argv(library, "index")) == 0
    manifest = (library.index_dir / "manifest.json").read_bytes()
    real_save = np.save

    def short_write(file: object, arr: object, *args: object, **kwargs: object) -> None:
        if str(file).endswith("_bm25.data.npy"):  # part way through the build
            raise OSError("6399 requested and 4064 written")
        real_save(file, arr, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(np, "save", short_write)
    note = library.seeds_dir.parent / "note.txt"
    note.write_text("The pier opens at six.\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(_argv(library, "add", str(note))) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"qa: error: cannot write the index in {str(library.index_dir)!r}: No "
                       "space left on device (a write was cut short)"), err
    assert (library.index_dir / "manifest.json").read_bytes() == manifest
    assert not list(library.index_dir.glob(".build-*"))
    assert not [p.name for p in library.documents_dir.iterdir()
                if p.name.startswith(("note", ".incoming-", ".pending-"))]
    monkeypatch.setattr(np, "save", real_save)
    assert cli.main(_argv(library, "list")) == 0
    assert "note" not in capsys.readouterr().out


def test_an_add_or_a_removal_does_not_call_its_own_change_a_stale_index(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    """Every `qa add` (and upload, in the server's log) said "the documents changed since
    the index was built (note); rebuilding the index", as if something had gone wrong
    behind its back: the change is the command's own. It says what it is doing."""
    assert cli.main(_argv(library, "index")) == 0
    note = library.seeds_dir.parent / "note.txt"
    note.write_text("The pier opens at six.\n", encoding="utf-8")
    for command, said in ((["add", str(note)], "adding note"), (["remove", "note"],
                                                                "removing note")):
        capsys.readouterr()
        assert cli.main(_argv(library, *command)) == 0
        err = capsys.readouterr().err.splitlines()
        assert err[0] == f"qa: updating the index: {said}", err
        assert err[1].startswith("qa: indexed ") and len(err) == 2, err


# -- the token rule, whatever starts the server ---------------------------------------------


def _own_address() -> str | None:
    """A non-loopback IPv4 address of this machine (Linux), else None."""
    import fcntl
    import ipaddress
    import socket
    import struct

    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                raw = fcntl.ioctl(probe.fileno(), 0x8915,  # SIOCGIFADDR
                                  struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue
        address = socket.inet_ntoa(raw[20:24])
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None


def _raw_request(address: str, port: int, request: bytes) -> bytes:
    """`request` sent to this machine's `address` (the test's network guard lets only
    loopback through: this address is this machine's own) and the reply."""
    import _socket
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        _socket.socket.connect(sock, (address, port))
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        return reply


def test_a_server_reached_beyond_loopback_without_a_token_refuses(library: Settings) -> None:
    """`qa serve --host 0.0.0.0` refuses to start without QA_API_TOKEN, but the app run by
    another launcher (`uvicorn app:app --host 0.0.0.0`, as app.py offers) listened beyond
    loopback with no token: anyone on the network could upload and delete documents by
    sending `Host: 127.0.0.1`. A request that reaches the server on an address beyond
    loopback, with no token set, is refused (403, one line); over loopback all works."""
    import threading

    import uvicorn

    from qa.api import create_api
    from tests.conftest_web import free_port

    address = _own_address()
    if address is None:
        pytest.skip("this machine has no address beyond loopback")
    pipeline = Pipeline(library, HashingEmbedder())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_api(pipeline), host="0.0.0.0", port=port,
                                           log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        body = (b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"pier.txt\""
                b"\r\n\r\nThe pier opens at six.\r\n--XYZ--\r\n")
        upload = (b"POST /api/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                  b"Content-Type: multipart/form-data; boundary=XYZ\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        reply = _raw_request(address, port, upload)
        assert reply.startswith(b"HTTP/1.1 403 "), reply
        assert b"without QA_API_TOKEN" in reply
        delete = (b"DELETE /api/documents/politico-us-iraq-advisory-transition HTTP/1.1\r\n"
                  b"Host: localhost\r\nConnection: close\r\n\r\n")
        assert _raw_request(address, port, delete).startswith(b"HTTP/1.1 403 ")
        assert not library.documents_dir.exists() or not list(
            library.documents_dir.glob("pier*"))
        local = _raw_request("127.0.0.1", port, upload)
        assert local.startswith(b"HTTP/1.1 201 "), local
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# -- a build killed half way ---------------------------------------------------------------------


@pytest.mark.slow  # a real process killed mid-build, then the add again: seconds, no model
def test_an_add_killed_mid_build_loses_nothing_and_leaves_nothing(
        library: Settings, capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    """`qa add` killed (kill -9) while its build writes the new index: the next command
    answers from the index as it was (never a half-written build), the upload its client
    never saw added is gone, nothing of the killed build is left, and the same file can be
    added again."""
    assert cli.main(_argv(library, "index")) == 0
    manifest = (library.index_dir / "manifest.json").read_bytes()
    big = library.seeds_dir.parent / "reports.txt"
    big.write_text("\n\n".join(f"Report {n}. The tide at berth {n} rose {n % 7} metres at "
                               f"dawn, and pilot {n} brought the ship in." for n in range(8_000)),
                   encoding="utf-8")
    env = {**os.environ, "QA_SPACY": "none",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    child = subprocess.Popen([sys.executable, "-c", _FAKE_QA, *_argv(library, "add", str(big))],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(library.index_dir.glob(".build-*.tmp/chunks.npy")):
            assert child.poll() is None, "the add ended before its build was caught"
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert (library.index_dir / "manifest.json").read_bytes() == manifest
    capsys.readouterr()
    assert cli.main([*_argv(library, "list"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in listed["documents"]] == ["politico-us-iraq-advisory-transition"]
    assert not list(library.index_dir.glob(".build-*"))
    assert not [p.name for p in library.documents_dir.iterdir()
                if p.name.startswith(("reports", ".incoming-", ".pending-"))]
    assert cli.main(_argv(library, "add", str(big))) == 0
    capsys.readouterr()
    assert cli.main([*_argv(library, "list"), "--json"]) == 0
    assert "reports" in [d["id"] for d in json.loads(capsys.readouterr().out)["documents"]]


@pytest.mark.slow  # imports Gradio (app.py builds the chat)
def test_app_py_is_refused_an_index_folder_in_use_from_other_folders(library: Settings) -> None:
    """`uvicorn app:app` (or `python app.py`) claimed nothing: started with other seeds or
    data folders on an index folder a `qa serve` was using, each rebuilt it for its own
    documents. Importing app.py claims the index folder as `qa serve` does, and a refusal
    is one line, exit 2, before anything loads."""
    other = library.documents_dir.parent / "d2"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "QA_SEEDS": str(library.seeds_dir),
           "QA_INDEX": str(library.index_dir), "QA_DATA": str(other), "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    with _held_claim(library):
        done = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "in use by another qa process" in done.stderr
    assert not other.exists()


def test_a_claim_survives_its_new_folder_being_removed_under_it(
        library: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between making a new index folder and writing its claim there, another process that
    had made the same folder for a command that failed removed it (empty, as it left it):
    the claim failed silently, and the command ran unclaimed. It makes the folder again."""
    from qa import store

    real_open = os.open
    removed: list[Path] = []

    def racing_open(path: object, flags: int, mode: int = 0o777) -> int:
        if Path(str(path)).name.startswith(".server-tmp-") and not removed:
            Path(str(path)).parent.rmdir()  # the other process's `_end_claim`
            removed.append(Path(str(path)).parent)
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(store.os, "open", racing_open)
    store.claim_index(library)
    try:
        assert removed == [library.index_dir]
        assert len(list(library.index_dir.glob(".server-*.lock"))) == 1
    finally:
        store.release_index(library)


@pytest.mark.slow  # a real `qa serve` (it imports Gradio): seconds, no model
def test_a_server_stopped_by_sigterm_leaves_no_claim(library: Settings) -> None:
    """`qa serve` stopped by SIGTERM (systemd, `docker stop`) shut down gracefully, then
    uvicorn raised the signal again and the process ended by it, before its claim of the
    index folder was given up: every stop left a claim file for the next start to find
    and remove. The claim ends with the server's shutdown; the exit is still SIGTERM's."""
    import signal

    from tests.conftest_web import free_port

    port = free_port()
    env = {**os.environ, "QA_SPACY": "none",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    server = subprocess.Popen([sys.executable, "-c", _FAKE_QA, *_argv(library, "serve"),
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        _until_healthy(server, port, deadline)
        assert len(_claims(library)) == 1
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == -signal.SIGTERM
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)
    assert _claims(library) == []


# -- an index folder that cannot be written -----------------------------------------------------


ARTICLE_ID = "politico-us-iraq-advisory-transition"


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path, how: str) -> None:
    """Make writes under `folder` fail as they do there on a read-only file system ("erofs":
    no file opens for writing, the index's lock file neither) or in a folder of another
    user's ("eacces": its files open, nothing new can be made in it). Root (as tests may
    run) writes through a folder's permission bits, so they are not enough."""
    import errno

    inside = str(folder.resolve()) + os.sep
    code = errno.EROFS if how == "erofs" else errno.EACCES
    real_open, real_mkdir = os.open, os.mkdir

    def refused(path: object) -> bool:
        return str(Path(os.fsdecode(path)).resolve()).startswith(inside)  # type: ignore[arg-type]

    def guarded_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writes and refused(path) and (how == "erofs" or not os.path.exists(path)):  # type: ignore[arg-type]
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    def guarded_mkdir(path: object, *args: object, **kwargs: object) -> None:
        if refused(path):
            raise OSError(code, os.strerror(code), str(path))
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)


@pytest.mark.parametrize("how", ["erofs", "eacces"])
def test_a_stale_index_that_cannot_be_rebuilt_answers_on_every_edge_with_a_warning(
        library: Settings, how: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], fake_cli: None) -> None:
    """A read-only index folder and a changed seed: `qa ask` failed (exit 1, 'cannot open
    the lock file …: Read-only file system'), and a server failed to start on it (every
    question a 500), where a server that had started before the change answered from the
    index it had. Every edge answers from the index on disk, with one warning line that it
    is stale and cannot be rebuilt; the changed seed is withheld (its indexed text is no
    longer its file's: a quote of it could not be checked against the file), the others
    answered and cited exactly. `qa eval` refuses it: its figures would leave them out."""
    from fastapi.testclient import TestClient

    from qa.api import create_api

    (library.seeds_dir / "pier.txt").write_text(
        "Pier notes\n\nThe pier opens at six every morning.\n", encoding="utf-8")
    assert cli.main(_argv(library, "index")) == 0
    with (library.seeds_dir / f"{ARTICLE_ID}.txt").open("a", encoding="utf-8") as fh:
        fh.write("\nThe harbour master is Anna Berg.\n")
    _read_only(monkeypatch, library.index_dir, how)
    capsys.readouterr()
    assert cli.main(_argv(library, "ask", "When does the pier open?", "--json")) == 0
    out, err = capsys.readouterr()
    answer = json.loads(out)
    assert answer["citations"] and {c["doc_id"] for c in answer["citations"]} == {"pier"}, err
    source = (library.seeds_dir / "pier.txt").read_text(encoding="utf-8")
    for c in answer["citations"]:
        assert source[c["quote"]["start"]:c["quote"]["end"]] == c["quote"]["text"]
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "stale" in warnings[0] and "cannot be rebuilt" in warnings[0]
    assert ARTICLE_ID in warnings[0], err
    assert cli.main(_argv(library, "retrieve", "Who is the harbour master?", "--json")) == 0
    hits = json.loads(capsys.readouterr().out)
    assert {h["doc_id"] for h in hits} == {"pier"}  # the changed seed is withheld

    questions = library.seeds_dir.parent / "questions.jsonl"
    questions.write_text('{"question": "When does the pier open?", "answers": ["six"]}\n',
                         encoding="utf-8")
    assert cli.main(_argv(library, "eval", str(questions))) == 1  # it would measure less
    assert "is stale and cannot be rebuilt" in capsys.readouterr().err.splitlines()[-1]

    pipeline = Pipeline(library, HashingEmbedder())
    with TestClient(create_api(pipeline), base_url="http://127.0.0.1") as client:
        reply = client.post("/api/ask", json={"question": "When does the pier open?"})
        assert reply.status_code == 200, reply.text
        assert {c["doc_id"] for c in reply.json()["citations"]} == {"pier"}
        deadline = time.monotonic() + 30
        while (health := client.get("/healthz").json())["status"] in ("loading", "reindexing"):
            assert time.monotonic() < deadline, health
            time.sleep(0.05)
    assert health["status"] == "stale" and health["withheld"] == [ARTICLE_ID], health
    assert "cannot" in health.get("reindex_error", ""), health


def test_stale_says_why_only_while_the_stale_index_is_served(
        library: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Pipeline.stale` (why the index served could not be rebuilt) went on saying so after
    the index was rebuilt (the folder writable again: a server's reload, `rebuild`)."""
    pipeline = Pipeline(library, HashingEmbedder())
    pipeline.index  # noqa: B018 - built
    with (library.seeds_dir / f"{ARTICLE_ID}.txt").open("a", encoding="utf-8") as fh:
        fh.write("\nThe harbour master is Anna Berg.\n")
    with monkeypatch.context() as patched:
        _read_only(patched, library.index_dir, "erofs")
        stale = Pipeline(library, HashingEmbedder())
        assert stale.index.documents and "Read-only file system" in stale.stale
    stale.rebuild()
    assert stale.stale == "" and "Anna Berg" in stale.index.source(ARTICLE_ID)


def test_a_body_read_ahead_is_replayed_once_then_the_client_is_heard() -> None:
    """`qa.api` (a body in another charset, recoded) and `qa.mcp_server` (a body checked
    before the SDK reads it) each read a request's body whole, then hand it to the app
    once: one helper of a module that is no edge (edges never import each other). After
    the body, `receive` is the client's again: a disconnect the app waits for arrives."""
    from qa.asgi import read_body, replaying

    messages = [{"type": "http.request", "body": b'{"a": ', "more_body": True},
                {"type": "http.request", "body": b"1}", "more_body": False},
                {"type": "http.disconnect"}]

    async def check() -> None:
        queue = iter(messages)

        async def receive() -> dict[str, object]:
            return next(queue)

        body = await read_body(receive)
        assert body == b'{"a": 1}'
        again = replaying(body, receive)
        assert await again() == {"type": "http.request", "body": body, "more_body": False}
        assert await again() == {"type": "http.disconnect"}
        gone = iter([{"type": "http.request", "body": b"{", "more_body": True},
                     {"type": "http.disconnect"}])

        async def leaves() -> dict[str, object]:
            return next(gone)

        assert await read_body(leaves) is None  # the client left before its body ended

    anyio.run(check)
