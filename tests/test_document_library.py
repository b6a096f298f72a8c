"""Adding, removing and listing documents: the data folder, the index, the CLI, citations.

Plumbing tests use the fake embedder; the round trips with exact citations and pages use the
real model (slow).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa import cli
from qa.config import Settings, load_settings
from qa.errors import BadQuestion, IndexStale
from qa.loaders import BadDocument, load
from qa.loaders import library as lib
from qa.loaders.library import UnknownDocument, load_corpus
from qa.pipeline import Pipeline
from tests.conftest import ARTICLE, SEEDS, HashingEmbedder, cli_argv

DOCS = Path(__file__).resolve().parent / "data" / "docs"
PDF, DOCX, HTML = DOCS / "water-report.pdf", DOCS / "orchard-summary.docx", \
    DOCS / "kestrel-lighthouse.html"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                    index_dir=tmp_path / "index", spacy="none")


@pytest.fixture
def pipeline(settings: Settings) -> Pipeline:
    return Pipeline(settings, HashingEmbedder())


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_add_stores_original_text_and_metadata_and_indexes(pipeline: Pipeline) -> None:
    added = pipeline.add_documents([PDF, DOCX, HTML])
    assert [d.id for d in added] == ["water-report", "orchard-summary", "kestrel-lighthouse"]
    data = pipeline.settings.documents_dir
    assert data == pipeline.settings.index_dir.parent / "data"
    folder = data / "water-report"
    assert (folder / "original.pdf").read_bytes() == PDF.read_bytes()
    meta = json.loads((folder / "meta.json").read_text("utf-8"))
    assert meta["kind"] == "pdf" and len(meta["pages"]) == 3
    assert meta["pages"] == [[p.start, p.end] for p in load(PDF).pages]
    assert meta["extractor"].startswith("pypdf-") and len(meta["file_sha256"]) == 64
    text = (folder / "text.txt").read_text("utf-8")
    assert text == load(PDF).text  # re-extracting the original gives the stored text
    index = pipeline.index
    assert {"water-report", "orchard-summary", "kestrel-lighthouse"} <= set(index.documents)
    for chunk in index.chunks:  # every passage slices the text kept in the data folder
        source = index.documents[chunk.doc_id]
        stored = Path(source.path).parent / "text.txt"
        if stored.exists():
            assert stored.read_text("utf-8")[chunk.start:chunk.end] == chunk.text
    entries = {e.document.id: e for e in pipeline.list_documents()}
    assert entries["water-report"].source == "upload" and entries["water-report"].size > 0
    assert entries["politico-us-iraq-advisory-transition"].source == "seed"
    assert not list(data.glob(".*-*"))  # no temporary folders left behind


def test_an_html_upload_s_sentences_are_whole_and_slice_its_stored_text(
        pipeline: Pipeline, tmp_path: Path) -> None:
    """A short page's inline elements made sentences of their own ('bold', '.'), quoted
    as they were; every sentence is whole and exactly where its offsets say."""
    page = tmp_path / "hours.html"
    page.write_text("<html><head><title>Hours</title></head><body><main><h2>Opening hours</h2>"
                    "<p>The museum is open six days a week; it is <em>closed on Mondays</em>.</p>"
                    "<table><tr><th>Day</th><th>Hours</th></tr><tr><td>Tuesday to Friday</td>"
                    "<td>10:00 to <b>17:00</b></td></tr></table><h2>What to bring</h2>"
                    "<ul><li>A <strong>valid ticket</strong>, printed or on your phone.</li>"
                    "<li>Photo ID for the <a href='/a'>archive room</a>.</li></ul></main>"
                    "</body></html>", encoding="utf-8")
    (added,) = pipeline.add_documents([page])
    index = pipeline.index
    stored = (pipeline.settings.documents_dir / added.id / "text.txt").read_text("utf-8")
    sentences = [s for s in index.sentences if s.doc_id == added.id]
    assert sentences
    for sentence in sentences:
        assert stored[sentence.start:sentence.end] == sentence.text
        assert index.source(added.id)[sentence.start:sentence.end] == sentence.text
    texts = {s.text for s in sentences}
    assert "The museum is open six days a week; it is closed on Mondays." in texts
    assert not texts & {"closed on Mondays", ".", "valid ticket", "archive room"}, texts


class GatedEmbedder(HashingEmbedder):
    """Blocks the embedding calls of the thread named "adding" until `gate` opens."""

    def __init__(self) -> None:
        self.gate, self.waiting = threading.Event(), threading.Event()

    def embed(self, texts: list[str]) -> np.ndarray:
        if threading.current_thread().name == "adding":
            self.waiting.set()
            assert self.gate.wait(30)
        return super().embed(texts)


def test_questions_are_answered_from_the_current_index_while_an_upload_is_indexed(
        settings: Settings) -> None:
    """A large upload takes minutes to embed: the chat and /healthz must not wait for it."""
    embedder = GatedEmbedder()
    pipeline = Pipeline(settings, embedder)
    before = pipeline.index
    adding = threading.Thread(target=pipeline.add_documents, args=([HTML],), name="adding")
    adding.start()
    try:
        assert embedder.waiting.wait(30)
        started = time.monotonic()
        hits = pipeline.retrieve("How many US troops are in Iraq?")
        assert time.monotonic() - started < 5 and pipeline.index is before
        assert hits and "kestrel-lighthouse" not in pipeline.index.documents
    finally:
        embedder.gate.set()
        adding.join(30)
    assert "kestrel-lighthouse" in pipeline.index.documents


def test_duplicate_names_get_fresh_ids_and_nothing_escapes(pipeline: Pipeline,
                                                           tmp_path: Path) -> None:
    pipeline.add_documents([HTML])
    evil = [tmp_path / "upload-1.html", tmp_path / "upload-2.html"]
    for n, path in enumerate(evil):  # other text: the same text would be refused as a copy
        path.write_text(HTML.read_text("utf-8").replace("1871", f"187{n + 2}"), "utf-8")
    added = pipeline.add_documents(evil, names=["../../kestrel-lighthouse.html",
                                                "../seeds/politico-us-iraq-advisory-"
                                                "transition.html"])
    assert [d.id for d in added] == ["kestrel-lighthouse-2",
                                     "politico-us-iraq-advisory-transition-2"]
    data = pipeline.settings.documents_dir
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == [
        "kestrel-lighthouse", "kestrel-lighthouse-2", "politico-us-iraq-advisory-transition-2"]
    assert sorted(p.name for p in pipeline.settings.seeds_dir.iterdir()) == sorted(
        p.name for p in SEEDS.iterdir())  # as copied: nothing escaped into it


def test_a_bad_file_changes_nothing(pipeline: Pipeline) -> None:
    before = set(pipeline.index.documents)
    built = pipeline.index.manifest["data"]
    for bad in ("encrypted.pdf", "scanned.pdf", "truncated.pdf"):
        with pytest.raises(BadDocument):
            pipeline.add_documents([PDF, DOCS / bad])  # all or nothing
    assert set(pipeline.index.documents) == before
    assert pipeline.index.manifest["data"] == built
    assert not any(pipeline.settings.documents_dir.glob("[!.]*"))


def test_a_copy_of_a_document_is_refused_naming_it(pipeline: Pipeline,
                                                   tmp_path: Path) -> None:
    """The same text under another name (or twice in one batch) is not a second document:
    answers would quote the same sentence twice. Different text with the same name is."""
    pipeline.add_documents([HTML])
    built = pipeline.index.manifest["data"]
    copy = tmp_path / "water.html"
    shutil.copy(HTML, copy)
    with pytest.raises(BadDocument) as info:
        pipeline.add_documents([PDF, copy])  # all or nothing, as for a bad file
    assert info.value.status == 409
    assert str(info.value) == (f"{copy}: the same text as the document "
                               "'kestrel-lighthouse'; not added again")
    assert pipeline.index.manifest["data"] == built
    assert not (pipeline.settings.documents_dir / "water-report").exists()
    refused: list[str] = []
    added = pipeline.add_documents([PDF, copy, PDF],
                                   on_error=lambda name, exc: refused.append(str(exc)))
    assert [d.id for d in added] == ["water-report"]
    assert refused == [
        f"{copy}: the same text as the document 'kestrel-lighthouse'; not added again",
        f"{PDF}: the same text as {PDF} (file 1 of 3), also being added; not added again"]
    with pytest.raises(BadDocument, match="the document 'politico-us-iraq-advisory-"):
        pipeline.add_documents([ARTICLE])  # a seed's text too
    copy.write_text(HTML.read_text("utf-8").replace("1871", "1872"), "utf-8")
    assert [d.id for d in pipeline.add_documents([copy])] == ["water"]


@pytest.mark.usefixtures("fake_cli")
def test_qa_add_names_each_file_by_the_path_it_was_given(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`qa add a/x.txt b/x.txt`: two files of one name. Its refusals named only `x.txt`
    ("x.txt: the same text as x.txt, also being added"): which of the two? Each is named by
    the path it was given; an upload (which has only a name) is still named by its name."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "x.txt", tmp_path / "b" / "x.txt"
    for path in (first, second):
        path.write_text("The ferry to the island leaves at noon on Sundays.\n", "utf-8")
    assert cli.main(cli_argv(settings, "add", str(first), str(second))) == 1
    out, err = capsys.readouterr()
    assert "added x " in out
    errors = [line for line in err.splitlines() if line.startswith("qa: error")]
    assert errors == [f"qa: error: {second}: the same text as {first}, also being added; "
                      "not added again"]
    (tmp_path / "c").mkdir()
    empty = tmp_path / "c" / "x.txt"
    empty.write_bytes(b"")
    assert cli.main(cli_argv(settings, "add", str(empty))) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"qa: error: {empty}: "), err
    for path in (first, second):
        path.write_text("The bridge closes for repairs every winter.\n", "utf-8")
    refused: list[str] = []  # uploads: names only, the other file told apart by its place
    added = Pipeline(settings, HashingEmbedder()).add_documents(
        [first, second], ["x.txt", "x.txt"], on_error=lambda name, exc: refused.append(str(exc)))
    assert [d.id for d in added] == ["x-2"]
    assert refused == ["x.txt: the same text as x.txt (file 1 of 2), also being added; not "
                       "added again"]


def test_the_upload_cap_skips_a_larger_seed_file_and_names_the_setting(
        settings: Settings, tmp_path: Path) -> None:
    """QA_MAX_UPLOAD_BYTES is the largest file qa reads: an upload or a `qa add` file over it
    is refused, a seed file skipped and reported (the rest indexed). The reason said only
    "at most 1,024" bytes, which for a seed names no setting to change."""
    settings = replace(settings, max_upload_bytes=8192)
    big = settings.seeds_dir / "big.txt"
    big.write_text("Sea otters hold hands while they sleep. " * 240, "utf-8")
    pipeline = Pipeline(settings, HashingEmbedder())
    assert "big" not in pipeline.index.documents and pipeline.index.documents
    [problem] = [p for p in pipeline.problems() if Path(p.file).name == "big.txt"]
    assert problem.reason == ("the file is too large (9,600 bytes; at most 8,192, "
                              "QA_MAX_UPLOAD_BYTES)")
    other = tmp_path / "owls.txt"
    other.write_text("Owls turn their heads far around. " * 250, "utf-8")
    with pytest.raises(BadDocument) as info:
        pipeline.add_documents([other])
    assert info.value.status == 413
    assert str(info.value) == (f"{other}: the file is too large (8,500 bytes; at most 8,192, "
                               "QA_MAX_UPLOAD_BYTES)")


def test_a_failed_index_update_rolls_the_new_files_back(pipeline: Pipeline,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    before = set(pipeline.index.documents)

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("out of memory while embedding")

    monkeypatch.setattr(pipeline.embedder, "embed", broken)
    with pytest.raises(RuntimeError):
        pipeline.add_documents([PDF])
    monkeypatch.undo()
    assert not (pipeline.settings.documents_dir / "water-report").exists()
    assert set(pipeline.index.documents) == before
    assert set(Pipeline(pipeline.settings, HashingEmbedder()).index.documents) == before


def test_a_file_that_cannot_be_stored_leaves_none_of_its_upload(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second file of an upload failing to be written (a full disk) left the first
    stored but not indexed, with an error for the whole upload: the next load (or another
    process's rebuild) indexed it, though its client had been told the upload failed."""
    from qa.errors import WriteError

    before = set(pipeline.index.documents)
    written = lib.write_text_atomic

    def full(path: Path, text: str) -> None:
        if path.name == "meta.json" and list(pipeline.settings.documents_dir.glob("[!.]*")):
            raise WriteError(f"cannot write {str(path)!r}: No space left on device")
        written(path, text)

    with monkeypatch.context() as patch:
        patch.setattr(lib, "write_text_atomic", full)
        with pytest.raises(WriteError, match="No space left"):
            pipeline.add_documents([PDF, HTML])
    data = pipeline.settings.documents_dir
    assert sorted(p.name for p in data.iterdir()) == [".lock"]  # nothing left, no marks
    assert set(Pipeline(pipeline.settings, HashingEmbedder()).index.documents) == before


def test_remove_updates_the_index_and_refuses_seeds_and_unknown_ids(pipeline: Pipeline) -> None:
    pipeline.add_documents([PDF, HTML])
    assert pipeline.remove_documents(["water-report"]) == ["water-report"]
    assert "water-report" not in pipeline.index.documents
    assert not (pipeline.settings.documents_dir / "water-report").exists()
    assert all(c.doc_id != "water-report" for c in pipeline.index.chunks)
    with pytest.raises(UnknownDocument, match="seed") as info:
        pipeline.remove_documents(["politico-us-iraq-advisory-transition"])
    assert info.value.status == 409
    with pytest.raises(UnknownDocument, match="no uploaded document") as info:
        pipeline.remove_documents(["../seeds"])
    assert info.value.status == 404
    assert "kestrel-lighthouse" in pipeline.index.documents


def _report(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.txt").write_text(text, encoding="utf-8")
    return folder / "report.txt"


def test_a_removed_id_is_never_given_again(pipeline: Pipeline, tmp_path: Path) -> None:
    """`report-2` removed, then another `report.txt` added: it was `report-2` again, so a
    citation saved before (an id and offsets) silently pointed into another document. It
    is `report-3`; the record survives a restart and a seed file named after the removed
    id gets another id too."""
    texts = ["The annual report says revenue grew by ten percent.\n",
             "The weather report says it rained for three days in March.\n",
             "A third report tells of the harbour opening in June.\n",
             "A fourth report lists the new ferry times.\n"]
    first, second, third, fourth = (_report(tmp_path / f"u{n}", t) for n, t in enumerate(texts))
    assert [d.id for d in pipeline.add_documents([first, second])] == ["report", "report-2"]
    assert pipeline.remove_documents(["report-2"]) == ["report-2"]
    assert [d.id for d in pipeline.add_documents([third])] == ["report-3"]
    assert pipeline.remove_documents(["report"]) == ["report"]
    restarted = Pipeline(pipeline.settings, HashingEmbedder())
    assert [d.id for d in restarted.add_documents([fourth])] == ["report-4"]
    assert sorted(lib.retired_ids(pipeline.settings.documents_dir)) == ["report", "report-2"]
    seed = pipeline.settings.seeds_dir / "report.txt"
    seed.write_text("A seed file named like the removed upload.\n", encoding="utf-8")
    ids = set(Pipeline(pipeline.settings, HashingEmbedder()).index.documents)
    assert "report" not in ids and "report-txt" in ids
    shutil.rmtree(pipeline.settings.index_dir)  # a fresh index names seeds by file name, but
    ids = set(Pipeline(pipeline.settings, HashingEmbedder()).index.documents)
    assert "report" not in ids and "report-txt" in ids  # never by a removed upload's id


@pytest.mark.usefixtures("fake_cli")
def test_a_file_deleted_by_hand_never_lends_its_id_to_an_upload(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`seeds/tides.txt` indexed as 'tides', deleted by hand, then an upload tides.txt was
    'added tides': only a removed upload's id was retired, so a citation saved before
    silently pointed into another document. The build that sees a seed file gone retires
    its id; an add before that build takes no id the committed index holds."""
    seeds = settings.seeds_dir
    (seeds / "tides.txt").write_text("High tide at the north pier is at six.\n", "utf-8")
    (seeds / "pier.txt").write_text("The pier was rebuilt in the winter of 2021.\n", "utf-8")
    upload = tmp_path / "up" / "tides.txt"
    upload.parent.mkdir()
    upload.write_text("Low water exposes the sandbar for two hours.\n", encoding="utf-8")
    assert cli.main(cli_argv(settings, "index")) == 0
    (seeds / "tides.txt").unlink()
    assert cli.main(cli_argv(settings, "index")) == 0  # the build sees it gone: retired
    assert lib.retired_ids(settings.documents_dir) == {"tides"}
    capsys.readouterr()
    assert cli.main(cli_argv(settings, "add", str(upload))) == 0
    assert "added tides-2 " in capsys.readouterr().out
    # a server whose index still holds the seed when the upload comes (no build between)
    server = Pipeline(settings, HashingEmbedder())
    assert "pier" in server.index.documents
    (seeds / "pier.txt").unlink()
    other = tmp_path / "up2" / "pier.txt"
    other.parent.mkdir()
    other.write_text("The pier café opens at nine.\n", encoding="utf-8")
    assert [d.id for d in server.add_documents([other])] == ["pier-2"]
    assert lib.retired_ids(settings.documents_dir) == {"tides", "pier"}
    assert "pier" not in server.index.documents
    # an index pointed at another seeds folder, and an upload's folder deleted by hand:
    # the ids they had are retired too
    article = next(p.stem for p in seeds.iterdir() if not p.name.startswith("."))
    other_seeds = tmp_path / "other-seeds"
    other_seeds.mkdir()
    (other_seeds / "notes.txt").write_text("The harbour office opens at eight.\n", "utf-8")
    shutil.rmtree(settings.documents_dir / "pier-2")
    moved = replace(settings, seeds_dir=other_seeds)
    assert cli.main(cli_argv(moved, "index")) == 0
    assert lib.retired_ids(settings.documents_dir) == {"tides", "pier", "pier-2", article}
    third = tmp_path / "up3" / "pier.txt"
    third.parent.mkdir()
    third.write_text("A new pier timetable starts in May.\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(cli_argv(moved, "add", str(third))) == 0
    assert "added pier-3 " in capsys.readouterr().out
    other_seeds.rename(tmp_path / "unmounted")  # a missing seeds folder retires nothing
    assert cli.main(cli_argv(moved, "index")) == 0
    assert lib.retired_ids(settings.documents_dir) == {"tides", "pier", "pier-2", article}


@pytest.mark.usefixtures("fake_cli")
def test_a_file_deleted_while_another_process_writes_is_retired_once_the_lock_is_free(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A build takes the data lock without waiting (readers never block): a seed file
    deleted by hand while another process held it (an upload in progress) was only logged
    ("the ids of removed files (tides) are not recorded"), and the index that build
    committed no longer named it, so no later build saw it gone: 'tides' was never
    retired and the next upload tides.txt took it. It is kept until the lock is free:
    the build under the held lock takes nothing (it does not wait), the next write that
    takes the lock, or the next build, records it."""
    import subprocess
    import sys

    seeds, data = settings.seeds_dir, settings.documents_dir
    (seeds / "tides.txt").write_text("High tide at the north pier is at six.\n", "utf-8")
    assert cli.main(cli_argv(settings, "index")) == 0
    (seeds / "tides.txt").unlink()
    data.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(  # another process's write in progress: it holds the lock
        [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'w'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
         str(data / ".lock")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        started = time.monotonic()
        assert cli.main(cli_argv(settings, "index")) == 0  # never waits for the writer
        assert time.monotonic() - started < 10
        assert "tides" not in Pipeline(settings, HashingEmbedder()).index.documents
        assert "tides" in lib.retired_ids(data)  # no later build can see it gone: kept
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    upload = tmp_path / "up" / "tides.txt"
    upload.parent.mkdir()
    upload.write_text("Low water exposes the sandbar for two hours.\n", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(cli_argv(settings, "add", str(upload))) == 0  # the next write
    assert "added tides-2 " in capsys.readouterr().out
    record = json.loads((data / lib.RETIRED).read_text("utf-8"))
    assert "tides" in record["retired"]
    assert [p.name for p in data.iterdir() if p.name.startswith(".retired-ids")] == [
        lib.RETIRED]  # what was kept is in the record now


def test_a_removal_finished_by_the_next_load_retires_its_id(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = pipeline.settings
    pipeline.add_documents([PDF])
    monkeypatch.setattr(lib, "finish", _dies)
    with pytest.raises(Killed):
        pipeline.remove_documents(["water-report"])
    monkeypatch.undo()
    restarted = Pipeline(settings, HashingEmbedder())  # settles: the removal stands
    assert "water-report" not in restarted.index.documents
    other = tmp_path / "new" / "water-report.txt"
    other.parent.mkdir()
    other.write_text("Another water report, about the river.\n", encoding="utf-8")
    assert [d.id for d in restarted.add_documents([other])] == ["water-report-2"]


def test_an_unreadable_record_of_removed_ids_is_reported_not_fatal(
        pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A data folder from before the record (none) or with a broken one adds as before."""
    data = pipeline.settings.documents_dir
    data.mkdir(parents=True, exist_ok=True)
    (data / lib.RETIRED).write_text("{not json", encoding="utf-8")
    first = _report(tmp_path / "a", "The annual report says revenue grew by ten percent.\n")
    assert [d.id for d in pipeline.add_documents([first])] == ["report"]
    assert "unreadable record of removed document ids" in capsys.readouterr().err
    assert pipeline.remove_documents(["report"]) == ["report"]
    assert lib.retired_ids(data) == {"report"}  # recording starts again


class Killed(BaseException):
    """The process dying where it is raised: no handler of qa's runs after it (the
    undo or clean-up those handlers do is patched out)."""


def _dies(*args: object, **kwargs: object) -> None:
    raise Killed


def _set_aside(settings: Settings) -> list[str]:
    return sorted(p.name for p in settings.documents_dir.glob(".removed-*"))


def test_a_removal_killed_before_the_index_was_updated_is_undone(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """A removal killed after setting the upload aside but before the rebuilt index was
    committed: the client never heard 'removed', yet the next load dropped the document
    as changed (and the next upload's sweep deleted its files). It is put back instead."""
    settings = pipeline.settings
    pipeline.add_documents([PDF, HTML])
    build = pipeline.index.manifest["data"]
    monkeypatch.setattr(Pipeline, "_reload", _dies)
    monkeypatch.setattr(lib, "undo", lambda moves: None)
    with pytest.raises(Killed):
        pipeline.remove_documents(["water-report"])
    monkeypatch.undo()
    assert not (settings.documents_dir / "water-report").exists()
    assert _set_aside(settings)  # what the killed removal left

    restarted = Pipeline(settings, HashingEmbedder())
    assert "water-report" in restarted.index.documents
    assert restarted.index.manifest["data"] == build  # put back before the check: fresh
    assert (settings.documents_dir / "water-report" / "original.pdf").read_bytes() == \
        PDF.read_bytes()
    assert not _set_aside(settings)

    # a process whose index was loaded before: its upload's sweep and its removal's
    # rebuild settle it too, instead of deleting it or dropping it as changed
    for write in (lambda: restarted.add_documents([DOCX]),
                  lambda: restarted.remove_documents(["orchard-summary"])):
        lib.withdraw(settings, ["kestrel-lighthouse"])  # killed there, by another process
        write()
        assert "kestrel-lighthouse" in restarted.index.documents
        assert (settings.documents_dir / "kestrel-lighthouse" / "meta.json").is_file()
        assert not _set_aside(settings)


def test_a_removal_killed_after_the_index_was_updated_is_finished(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the index without it was committed, before its files were deleted:
    the removal stands, and the files go at the next load."""
    settings = pipeline.settings
    pipeline.add_documents([PDF, HTML])
    monkeypatch.setattr(lib, "finish", _dies)
    with pytest.raises(Killed):
        pipeline.remove_documents(["water-report"])
    monkeypatch.undo()
    assert _set_aside(settings)
    restarted = Pipeline(settings, HashingEmbedder())
    assert "water-report" not in restarted.index.documents
    assert "kestrel-lighthouse" in restarted.index.documents
    assert not _set_aside(settings)
    assert not (settings.documents_dir / "water-report").exists()


def test_an_upload_killed_before_the_index_was_updated_is_not_added(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload killed after its files were stored but before the index with it was
    committed: the client got no reply (or an error), yet the next load indexed it as a
    new file, and the client's retry was refused as a copy of it. It is deleted instead;
    killed after the commit, it stays."""
    settings = pipeline.settings
    build = pipeline.index.manifest["data"]
    with monkeypatch.context() as patch:
        patch.setattr(Pipeline, "_reload", _dies)
        patch.setattr(lib, "discard", lambda settings, ids: None)
        with pytest.raises(Killed):
            pipeline.add_documents([PDF])
    assert (settings.documents_dir / "water-report").is_dir()  # what the kill left

    restarted = Pipeline(settings, HashingEmbedder())
    assert "water-report" not in restarted.index.documents
    assert restarted.index.manifest["data"] == build  # settled before the check: fresh
    assert not (settings.documents_dir / "water-report").exists()
    assert not list(settings.documents_dir.glob(".pending-*"))
    assert [d.id for d in restarted.add_documents([PDF])] == ["water-report"]  # the retry

    with monkeypatch.context() as patch:  # killed once the index with it was committed
        patch.setattr(lib, "confirm", _dies)
        with pytest.raises(Killed):
            restarted.add_documents([HTML])
    again = Pipeline(settings, HashingEmbedder())
    assert {"water-report", "kestrel-lighthouse"} <= set(again.index.documents)
    assert not list(settings.documents_dir.glob(".pending-*"))

    # a process whose index was loaded before: its own add settles another's first
    with monkeypatch.context() as patch:
        patch.setattr(Pipeline, "_reload", _dies)
        patch.setattr(lib, "discard", lambda settings, ids: None)
        with pytest.raises(Killed):
            Pipeline(settings, HashingEmbedder()).add_documents([DOCX])
    again.remove_documents(["kestrel-lighthouse"])
    assert "orchard-summary" not in again.index.documents
    assert not (settings.documents_dir / "orchard-summary").exists()


def test_an_upload_whose_metadata_is_lost_can_be_removed(pipeline: Pipeline) -> None:
    """An upload folder without its meta.json is listed under the problems (and the web
    chat offers it for removal), but removing it said 'no uploaded document has the id'
    on every edge: it could only be deleted by hand."""
    pipeline.add_documents([HTML])
    folder = pipeline.settings.documents_dir / "kestrel-lighthouse"
    (folder / "meta.json").unlink()
    pipeline = Pipeline(pipeline.settings, HashingEmbedder())
    assert [p.file for p in pipeline.problems()] == [str(folder)]
    assert pipeline.remove_documents(["kestrel-lighthouse"]) == ["kestrel-lighthouse"]
    assert not folder.exists() and pipeline.problems() == []
    with pytest.raises(UnknownDocument, match="no uploaded document"):
        pipeline.remove_documents(["kestrel-lighthouse"])


@pytest.mark.parametrize("files", [[], ["notes.txt"], ["text.txt", "draft.md"],
                                   ["original.pdf", "sub/"]])
def test_a_folder_qa_did_not_store_is_never_removed(pipeline: Pipeline,
                                                    files: list[str]) -> None:
    """`qa remove NAME` deleted any folder of the data folder: an empty one, or a user's own
    (the `--data` help invites `--data ~/papers`). Only a folder laid out as qa stores an
    upload is removed; any other is refused (409) and left as it was, the rest still go."""
    pipeline.add_documents([HTML])
    folder = pipeline.settings.documents_dir / "papers"
    folder.mkdir()
    for name in files:
        (folder / name).mkdir() if name.endswith("/") else (folder / name).write_text("mine")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(UnknownDocument, match="not a document qa stored") as info:
        pipeline.remove_documents(["kestrel-lighthouse", "papers"])
    assert info.value.status == 409
    assert sorted(p.name for p in folder.iterdir()) == before
    assert "kestrel-lighthouse" in pipeline.index.documents  # all or none, as for a seed
    refused: list[str] = []
    assert pipeline.remove_documents(["papers", "kestrel-lighthouse"],
                                     on_error=lambda doc_id, exc: refused.append(doc_id)
                                     ) == ["kestrel-lighthouse"]
    assert refused == ["papers"] and sorted(p.name for p in folder.iterdir()) == before


def test_a_removal_that_cannot_move_a_folder_puts_the_others_back(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Removing several documents, one whose folder cannot be moved (permissions) failed
    the call but left the ones before it set aside: gone from the data folder, still in the
    index, until a later load put them back."""
    pipeline.add_documents([PDF, HTML])
    withdraw = lib.withdraw

    def stuck(settings: Settings, ids: list[str]) -> list[tuple[Path, Path]]:
        if ids == ["kestrel-lighthouse"]:
            raise PermissionError(13, "Permission denied")
        return withdraw(settings, ids)

    monkeypatch.setattr(lib, "withdraw", stuck)
    with pytest.raises(PermissionError):
        pipeline.remove_documents(["water-report", "kestrel-lighthouse"],
                                  on_error=lambda doc_id, exc: None)
    assert (pipeline.settings.documents_dir / "water-report" / "meta.json").is_file()
    assert not _set_aside(pipeline.settings)
    assert {"water-report", "kestrel-lighthouse"} <= set(pipeline.index.documents)


def test_retrieval_limited_to_selected_documents(pipeline: Pipeline) -> None:
    pipeline.add_documents([PDF, HTML])
    hits = pipeline.retrieve("lighthouse keeper", k=5, doc_ids=["water-report"])
    assert hits and {h.chunk.doc_id for h in hits} == {"water-report"}
    answer = pipeline.ask("How tall is the lighthouse?", doc_ids=["kestrel-lighthouse"])
    assert all(c.doc_id == "kestrel-lighthouse" for c in answer.citations)
    assert all(h.chunk.doc_id == "kestrel-lighthouse" for h in answer.passages)
    with pytest.raises(BadQuestion, match="unknown document id"):
        pipeline.retrieve("anything", doc_ids=["nope"])


def test_extractor_upgrade_that_changes_the_text_reindexes(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A new extractor version re-extracts; changed text means a re-indexed document and
    citations into the new text, never offsets into the old one."""
    import qa.loaders.pdf as pdf_module

    pipeline.add_documents([PDF])
    old_build = pipeline.index.manifest["data"]
    old_text = pipeline.index.documents["water-report"].text
    real_extract = pdf_module.PdfLoader.extract

    def upgraded(self: pdf_module.PdfLoader, raw: bytes, name: str):  # type: ignore[no-untyped-def]
        extracted = real_extract(self, raw, name)
        shift = "Preface added by the new extractor.\n\n"
        return type(extracted)(shift + extracted.text, extracted.title,
                               tuple((s + len(shift), e + len(shift))
                                     for s, e in extracted.pages))

    monkeypatch.setattr(pdf_module, "REVISION", pdf_module.REVISION + 1)
    monkeypatch.setattr(pdf_module.PdfLoader, "extract", upgraded)
    capsys.readouterr()
    fresh = Pipeline(pipeline.settings, HashingEmbedder())
    document = fresh.index.documents["water-report"]
    assert document.text != old_text and document.text.startswith("Preface")
    assert "the extractor changed (pypdf-" in capsys.readouterr().err
    assert fresh.index.manifest["data"] != old_build  # re-indexed, not reused
    folder = pipeline.settings.documents_dir / "water-report"
    meta = json.loads((folder / "meta.json").read_text("utf-8"))
    assert meta["extractor"].endswith(f"/{pdf_module.REVISION}")
    stored = (folder / "text.txt").read_text("utf-8")
    assert stored == document.text
    for chunk in fresh.index.chunks:
        if chunk.doc_id == "water-report":
            assert stored[chunk.start:chunk.end] == chunk.text
    assert document.page_of(document.text.index("opened in 1987")) == 3


def test_the_original_name_survives_re_extraction_and_older_uploads_have_none(
        pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.loaders.pdf as pdf_module

    upload = tmp_path / "part-0"  # a temporary name, as the HTTP upload stores it
    shutil.copy(PDF, upload)
    pipeline.add_documents([upload, HTML], ["Water Report (2024).pdf", "kestrel.html"])
    meta_of = {d: pipeline.settings.documents_dir / d / "meta.json"
               for d in ("water-report-2024", "kestrel")}
    monkeypatch.setattr(pdf_module, "REVISION", pdf_module.REVISION + 1)  # re-extracts
    older = json.loads(meta_of["kestrel"].read_text("utf-8"))
    del older["original_name"]  # stored before the name was kept
    meta_of["kestrel"].write_text(json.dumps(older), "utf-8")
    fresh = Pipeline(pipeline.settings, HashingEmbedder())
    names = {e.document.id: e.original_name for e in fresh.list_documents()}
    assert names["water-report-2024"] == "Water Report (2024).pdf"
    assert names["kestrel"] is None  # unknown, not made up; the document still loads
    meta = json.loads(meta_of["water-report-2024"].read_text("utf-8"))
    assert meta["extractor"].endswith(f"/{pdf_module.REVISION}")  # rewritten, name kept
    assert meta["original_name"] == "Water Report (2024).pdf"


@pytest.mark.parametrize(("name", "shown"), [
    ("Annual Report (final).pdf", "Annual Report (final).pdf"),
    ("C:\\Users\\me\\Q3  report.docx", "Q3 report.docx"), ("../../etc/passwd", "passwd"),
    ("photo\u202egpj.exe", "photogpj.exe"), ("red\x1b[31m.txt", "red[31m.txt"),
    ("\udcffbytes.txt", "bytes.txt"), ("e\u0301clair.md", "\u00e9clair.md"), ("\u200b", ""),
    ("x" * 300 + ".pdf", "x" * 250 + "….pdf"),
])
def test_display_name(name: str, shown: str) -> None:
    from qa.loaders.library import MAX_NAME, display_name

    assert display_name(name) == shown and len(shown) <= MAX_NAME


def test_a_replaced_original_is_logged_as_a_changed_file(
        pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    """The log says what changed: the file, not the (same) extractor."""
    pipeline.add_documents([HTML])
    original = pipeline.settings.documents_dir / "kestrel-lighthouse" / "original.html"
    original.write_text(HTML.read_text("utf-8").replace("lighthouse", "beacon"), "utf-8")
    capsys.readouterr()
    document = Pipeline(pipeline.settings, HashingEmbedder()).index.documents[
        "kestrel-lighthouse"]
    assert "beacon" in document.text
    logged = [line for line in capsys.readouterr().err.splitlines() if "kestrel" in line]
    assert "qa: kestrel-lighthouse: its original file changed, and so did its text; it will be " \
        "re-indexed" in logged
    assert not any("extractor" in line or "->" in line for line in logged)


def test_a_hand_edited_stored_text_is_restored_from_the_original(
        pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    """text.txt is what citations index: an edit by hand makes the index stale, and the
    next load extracts it again from the original (nothing to re-embed), then stays put."""
    from qa.store import load_index

    pipeline.add_documents([HTML])
    stored = pipeline.settings.documents_dir / "kestrel-lighthouse" / "text.txt"
    indexed = stored.read_text("utf-8")
    stored.write_text(indexed.replace("granite", "marble"), "utf-8")
    with pytest.raises(IndexStale, match="kestrel-lighthouse"):
        load_index(pipeline.settings)
    capsys.readouterr()
    fresh = Pipeline(pipeline.settings, HashingEmbedder())
    assert fresh.index.documents["kestrel-lighthouse"].text == indexed
    assert fresh.index.manifest["embedded"]["documents"] == 0
    assert stored.read_text("utf-8") == indexed
    assert "kestrel-lighthouse: its text.txt no longer held the text extracted from its " \
        "original (edited by hand?); extracting it again" in capsys.readouterr().err
    assert load_index(pipeline.settings).manifest["data"] == fresh.index.manifest["data"]


def test_a_read_only_data_folder_still_serves_the_fresh_extraction(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import qa.loaders.library as lib
    from qa.errors import WriteError

    pipeline.add_documents([HTML])
    stored = pipeline.settings.documents_dir / "kestrel-lighthouse" / "text.txt"
    indexed = stored.read_text("utf-8")
    stored.write_text("edited", "utf-8")

    def read_only(path: Path, text: str) -> None:
        raise WriteError(f"cannot write {str(path)!r}: Read-only file system")

    monkeypatch.setattr(lib, "write_text_atomic", read_only)
    corpus = load_corpus(pipeline.settings)  # a WriteError here was a crash
    assert {d.id: d.text for d in corpus.documents}["kestrel-lighthouse"] == indexed
    assert "cannot update" in capsys.readouterr().err


def test_same_extractor_reuses_the_stored_text(pipeline: Pipeline,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.loaders.pdf as pdf_module

    pipeline.add_documents([PDF])

    def fail(*_: object) -> None:
        raise AssertionError("re-extracted although nothing changed")

    monkeypatch.setattr(pdf_module.PdfLoader, "extract", fail)
    corpus = load_corpus(pipeline.settings)
    assert "water-report" in {d.id for d in corpus.documents}


def test_an_upload_that_can_no_longer_be_read_is_skipped_once(pipeline: Pipeline) -> None:
    """A damaged original is re-indexed once (without it), then the index stays fresh and
    the problem is still listed."""
    from qa.store import load_index

    pipeline.add_documents([PDF])
    (pipeline.settings.documents_dir / "water-report" / "original.pdf").write_bytes(
        b"%PDF-1.4 damaged")
    fresh = Pipeline(pipeline.settings, HashingEmbedder())
    assert "water-report" not in fresh.index.documents
    build = fresh.index.manifest["data"]
    assert load_index(pipeline.settings).manifest["data"] == build
    again = Pipeline(pipeline.settings, HashingEmbedder())
    assert again.index.manifest["data"] == build
    assert [Path(p.file).name for p in again.problems()] == ["water-report"]


def test_a_crlf_upload_reuses_its_stored_text(pipeline: Pipeline, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """text.txt is read as bytes: read as text, its CRLFs became LFs, it never matched its
    hash, and every load extracted it again (and rewrote it)."""
    crlf = tmp_path / "ferry.txt"
    crlf.write_bytes(b"Ferry\r\n\r\nThe ferry leaves the harbour at noon.\r\n")
    pipeline.add_documents([crlf])
    stored = pipeline.settings.documents_dir / "ferry" / "text.txt"
    inode = stored.stat().st_ino
    capsys.readouterr()
    corpus = load_corpus(pipeline.settings)
    assert {d.id: d.text for d in corpus.documents}["ferry"].endswith("noon.\r\n")
    assert stored.stat().st_ino == inode  # not rewritten
    assert "ferry" not in capsys.readouterr().err


def test_data_folder_inside_seeds_is_refused(settings: Settings) -> None:
    from qa.errors import BadSetting

    bad = Pipeline(replace(settings, data_dir=settings.seeds_dir / "uploads"), HashingEmbedder())
    with pytest.raises(BadSetting, match="must not be inside the seeds folder"):
        bad.add_documents([HTML])


@pytest.mark.parametrize("data", ["index", "."])
def test_a_data_folder_holding_the_index_is_refused(settings: Settings, data: str) -> None:
    """QA_DATA naming the index folder itself: the add took the data lock, then its build
    waited for the index's lock, the same `.lock` file: `qa add` hung for ever. The index
    inside the data folder looked like an upload of its own. Both are refused at once."""
    from qa.errors import BadSetting

    bad = Pipeline(replace(settings, data_dir=settings.index_dir.parent / data),
                   HashingEmbedder())
    outcome: list[BaseException] = []

    def add() -> None:
        try:
            bad.add_documents([HTML])
        except BaseException as exc:  # noqa: BLE001 - what the add raised, for the test
            outcome.append(exc)

    adding = threading.Thread(target=add, daemon=True)
    adding.start()
    adding.join(10)
    assert not adding.is_alive(), "the add hung"
    assert isinstance(outcome[0], BadSetting)
    assert "must not be the data folder" in str(outcome[0])


# -- where uploads live ----------------------------------------------------------------------


def test_the_data_folder_is_named_after_its_index(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().documents_dir == Path("data")  # the default layout keeps its uploads
    assert Settings(index_dir=tmp_path / "index").documents_dir == tmp_path / "data"
    assert Settings(index_dir=tmp_path / "x-idx").documents_dir == tmp_path / "x-idx-data"
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert Settings(index_dir=Path(".")).documents_dir == tmp_path.resolve() / "here-data"


def test_qa_data_and_the_flag_still_name_the_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_DATA", str(tmp_path / "mine"))
    assert load_settings(index_dir=tmp_path / "x-idx").documents_dir == tmp_path / "mine"
    assert load_settings(index_dir=tmp_path / "x-idx", data_dir=tmp_path / "flag"
                         ).documents_dir == tmp_path / "flag"
    assert load_settings(index_dir=tmp_path / "x-idx").legacy_documents_dir is None


def test_uploads_in_the_old_shared_folder_are_named_once_and_left_alone(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every index in a folder used to keep its uploads in `data` there: an index with
    another name than `index` now has its own, and when its last build read uploads from the
    old place, it says once where they are and how to keep them."""
    old = tmp_path / "data"
    custom = replace(settings, index_dir=tmp_path / "x-idx")
    Pipeline(replace(custom, data_dir=old), HashingEmbedder()).add_documents([HTML])  # before
    assert (old / "kestrel-lighthouse" / "meta.json").is_file()
    capsys.readouterr()
    upgraded = Pipeline(custom, HashingEmbedder())
    assert "kestrel-lighthouse" not in upgraded.index.documents
    upgraded.add_documents([PDF])
    fresh = Pipeline(replace(custom, index_dir=tmp_path / "y-idx"), HashingEmbedder())
    assert "kestrel-lighthouse" not in fresh.index.documents  # a new index: nothing to say
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if repr(str(old)) in line]
    assert len(warnings) == 1, err
    assert warnings[0].startswith("qa: ") and "set QA_DATA (or --data) to" in warnings[0]
    assert repr(str(custom.index_dir)) in warnings[0]
    assert (old / "kestrel-lighthouse" / "meta.json").is_file()  # nothing moved
    assert (tmp_path / "x-idx-data" / "water-report" / "meta.json").is_file()
    named = Pipeline(replace(custom, index_dir=tmp_path / "z-idx", data_dir=old),
                     HashingEmbedder())
    assert "kestrel-lighthouse" in named.index.documents
    assert repr(str(old)) not in capsys.readouterr().err  # named: nothing to say


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
@pytest.mark.usefixtures("fake_cli")
def test_where_the_old_uploads_went_is_still_said_after_the_upgrade(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The warning was one log line at the upgrade load (often a server's log), gone from
    every later run: `qa list` and the build report never said where the uploads went."""
    from qa.loaders import library

    old = tmp_path / "data"
    custom = replace(settings, index_dir=tmp_path / "x-idx")
    Pipeline(replace(custom, data_dir=old), HashingEmbedder()).add_documents([HTML])
    Pipeline(custom, HashingEmbedder()).add_documents([PDF])  # the upgrade, then a build
    capsys.readouterr()
    monkeypatch.setattr(library, "_reported", set())  # a later process

    def argv(*args: str) -> list[str]:
        return [*args, "--seeds", str(settings.seeds_dir), "--index", str(custom.index_dir),
                "--model", "fake-hashing"]

    assert cli.main(argv("list")) == 0
    err = capsys.readouterr().err
    assert f"qa: skipped {old}: its uploads are no longer read with the index" in err
    assert f"set QA_DATA (or --data) to {str(old)!r}" in err
    assert cli.main(argv("list", "--json")) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [p["file"] for p in problems] == [str(old)]
    assert cli.main(argv("remove", "water-report")) == 0  # later builds keep saying it
    capsys.readouterr()
    assert [p.file for p in Pipeline(custom, HashingEmbedder()).problems()] == [str(old)]
    shutil.rmtree(old / "kestrel-lighthouse")  # moved away by the user: nothing to say
    assert cli.main(argv("add", str(PDF))) == 0
    assert Pipeline(custom, HashingEmbedder()).problems() == []


@pytest.mark.usefixtures("fake_cli")
def test_two_indexes_in_one_folder_do_not_share_uploads(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`qa add --index /tmp/x-idx` stored into /tmp/data, which `qa eval` or `qa serve` with
    any other index under /tmp then indexed as its own documents."""
    def run(index: str, *args: str) -> int:
        return cli.main([*args, "--seeds", str(settings.seeds_dir), "--index",
                         str(tmp_path / index), "--model", "fake-hashing"])

    assert run("x-idx", "add", str(HTML)) == 0
    assert (tmp_path / "x-idx-data" / "kestrel-lighthouse" / "meta.json").is_file()
    capsys.readouterr()
    assert run("y-idx", "list", "--json") == 0
    listed = {d["id"] for d in json.loads(capsys.readouterr().out)["documents"]}
    assert listed and "kestrel-lighthouse" not in listed
    assert run("x-idx", "list", "--json") == 0
    assert "kestrel-lighthouse" in {
        d["id"] for d in json.loads(capsys.readouterr().out)["documents"]}


def test_a_listing_decodes_no_document_text_and_older_indexes_still_list(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every document list (qa list, GET /api/documents, the chat's list after each
    question and upload) decoded every document's text to count its characters (and read
    each upload's meta.json, and stat'ed each seed file): 15-19 ms for 300 documents. The
    build records what the list shows; an index built before it did still lists alike."""
    from qa.schema import documents_json
    from qa.store import Index

    Pipeline(settings, HashingEmbedder()).add_documents([PDF, HTML])
    pipeline = Pipeline(settings, HashingEmbedder())  # a fresh load: nothing decoded yet
    index = pipeline.index
    expected = {d: (len(index.source(d)), len(index.documents[d].pages))
                for d in index.documents}
    pipeline = Pipeline(settings, HashingEmbedder())

    def no_text(self: Index, doc_id: str) -> str:
        raise AssertionError(f"the text of {doc_id!r} was decoded")

    def no_meta(settings: Settings, doc_id: str) -> None:
        raise AssertionError(f"the metadata of {doc_id!r} was read")

    with monkeypatch.context() as patch:
        patch.setattr(Index, "source", no_text)
        patch.setattr(lib, "read_meta", no_meta)
        listing = documents_json(pipeline.list_documents(), pipeline.problems())
    by_id = {d["id"]: d for d in listing["documents"]}
    assert {d: (by_id[d]["chars"], by_id[d]["pages"]) for d in by_id} == expected
    assert by_id["water-report"]["pages"] == 3 and by_id["water-report"]["source"] == "upload"
    assert by_id["water-report"]["original_name"] == "water-report.pdf"
    assert by_id["water-report"]["size"] == PDF.stat().st_size
    seed = by_id["politico-us-iraq-advisory-transition"]
    assert seed["source"] == "seed" and seed["size"] == ARTICLE.stat().st_size

    # an index built before the build kept them: the same list, from the files
    for record in pipeline.index._doc_meta:
        del record["chars"], record["listed"]
    assert documents_json(pipeline.list_documents(), pipeline.problems()) == listing


# -- CLI -------------------------------------------------------------------------------------


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
@pytest.mark.usefixtures("fake_cli")
def test_cli_add_list_remove(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(cli_argv(settings, "add", str(PDF), str(DOCS / "encrypted.pdf"), str(HTML)))
    out, err = capsys.readouterr()
    assert code == 1  # one file refused, the others added
    assert "added water-report (pdf, 3 pages" in out and "added kestrel-lighthouse" in out
    errors = [line for line in err.splitlines() if line.startswith("qa: error")]
    assert len(errors) == 1 and "encrypted.pdf: the PDF is encrypted" in errors[0]
    assert cli.main(cli_argv(settings, "list", "--json")) == 0
    listing = json.loads(capsys.readouterr().out)
    by_id = {d["id"]: d for d in listing["documents"]}
    assert by_id["water-report"]["pages"] == 3 and by_id["water-report"]["kind"] == "pdf"
    assert listing["problems"] == []
    assert by_id["water-report"]["original_name"] == "water-report.pdf"
    assert cli.main(cli_argv(settings, "list")) == 0
    out = capsys.readouterr().out
    assert "water-report\tpdf\t3 p." in out and "\tupload\twater-report.pdf\t" in out
    assert cli.main(cli_argv(settings, "remove", "water-report", "nope")) == 1
    out, err = capsys.readouterr()
    assert "removed water-report" in out and "'nope'" in err
    assert cli.main(cli_argv(settings, "add", "/no/such/file.pdf")) == 1
    assert "cannot read the file" in capsys.readouterr().err
    assert cli.main(cli_argv(settings, "add", str(PDF), str(DOCX))) == 0
    assert "added water-report-2 " in capsys.readouterr().out  # a removed id is not reused
    # several ids: one index update (one per id made removing n documents n builds), the
    # refused ones named, the rest removed
    assert cli.main(cli_argv(settings, "remove", "water-report-2", "nope", "orchard-summary",
                          "politico-us-iraq-advisory-transition")) == 1
    out, err = capsys.readouterr()
    assert "removed water-report-2" in out and "removed orchard-summary" in out
    assert "'nope'" in err and "shipped seed document" in err
    assert err.count("qa: indexed ") == 1, err
    assert cli.main(cli_argv(settings, "add", str(HTML))) == 1  # a copy of kestrel-lighthouse
    out, err = capsys.readouterr()
    assert "added" not in out and err.count("\n") == 1 and err.startswith(
        f"qa: error: {HTML}: the same text as the document "
        "'kestrel-lighthouse'; not added again")
    with pytest.raises(SystemExit) as info:
        cli.main(cli_argv(settings, "add"))
    assert info.value.code == 2


@pytest.mark.usefixtures("fake_cli")
def test_cli_list_names_each_skipped_file_once(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """'qa list' that (re)built the index printed every skipped file twice: once as the
    build read it, once in the list."""
    (settings.seeds_dir / "zz-copy.txt").write_bytes(ARTICLE.read_bytes())
    (settings.seeds_dir / "notes.rtf").write_text("{\\rtf1 hi}", encoding="utf-8")
    capsys.readouterr()
    assert cli.main(cli_argv(settings, "list")) == 0
    err = capsys.readouterr().err
    assert err.count("skipped ") == 2, err
    assert err.count(f"skipped {settings.seeds_dir / 'zz-copy.txt'}: the same text") == 1
    assert cli.main(cli_argv(settings, "list")) == 0  # a list that only loads: still said
    assert capsys.readouterr().err.count("skipped ") == 2
    assert cli.main(cli_argv(settings, "list", "--json")) == 0
    assert len(json.loads(capsys.readouterr().out)["problems"]) == 2


@pytest.mark.usefixtures("fake_cli")
def test_cli_add_has_no_character_cap(settings: Settings, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """QA_MAX_UPLOAD_CHARS is for the server's uploads: `qa add` is a local command that
    shows its progress and stops on Ctrl-C."""
    monkeypatch.setenv("QA_MAX_UPLOAD_CHARS", "1000")
    long = tmp_path / "tides.txt"
    long.write_text("Tides\n\n" + "The tide rose at dawn. " * 100, encoding="utf-8")
    assert cli.main(cli_argv(settings, "add", str(long))) == 0, capsys.readouterr().err
    assert "added tides (txt, 2,307 characters)" in capsys.readouterr().out


@pytest.mark.usefixtures("fake_cli")
def test_cli_never_prints_terminal_escapes(settings: Settings, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    hostile = tmp_path / "hostile.txt"
    hostile.write_text("Escapes\n\nThe \x1b]0;pwned\x07 title \x1b[2J was set by the harbor "
                       "master \u202eof the port.\n", encoding="utf-8")
    assert cli.main(cli_argv(settings, "add", str(hostile))) == 0
    assert cli.main(cli_argv(settings, "retrieve", "harbor master title", "--doc", "hostile")) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07" in out and "\\u202eof" in out  # a right-to-left override


@pytest.mark.usefixtures("fake_cli")
def test_cli_prints_a_windows_text_file_s_line_ends_as_line_ends(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sentence of a CRLF text file wrapped across lines was printed 'the new\\x0d' and
    'ferry timetable': every quote from a Windows text file showed an escape. A lone
    carriage return (it would overwrite the line) is still escaped."""
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"Harbour news\r\n\r\nThe harbour board approved the new\r\nferry "
                      b"timetable on Monday.\r\nA lone\rreturn stays visible.\r\n")
    assert cli.main(cli_argv(settings, "add", str(notes))) == 0
    assert cli.main(cli_argv(settings, "retrieve", "harbour board ferry timetable",
                             "--doc", "notes")) == 0
    out = capsys.readouterr().out
    assert "the new\nferry timetable" in out and "\\x0d\n" not in out, out
    assert "\r" not in out and "lone\\x0dreturn" in out


def test_a_seed_file_with_another_documents_text_is_indexed_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two seed files with one text were both indexed: the same quote cited twice, from two
    files. The copy is skipped, named with the document it copies (as an upload of a copy
    is refused), and indexed again once the original goes."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    text = "The museum is closed on Mondays for maintenance. It opens at nine.\n"
    (seeds / "museum.txt").write_text(text, encoding="utf-8")
    (seeds / "museum-copy.txt").write_text(text, encoding="utf-8")
    settings = Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                        spacy="none")
    pipeline = Pipeline(settings, HashingEmbedder())
    # the shorter name is kept, though 'museum-copy.txt' sorts first ('-' < '.')
    assert list(pipeline.index.documents) == ["museum"]
    reason = "the same text as the document 'museum' (museum.txt); not indexed twice"
    assert [(p.file, p.reason) for p in pipeline.problems()] == [
        (str(seeds / "museum-copy.txt"), reason)]
    assert reason in capsys.readouterr().err
    hits = pipeline.retrieve("When is the museum closed?", k=5)
    assert [h.chunk.doc_id for h in hits] == ["museum"]
    build = pipeline.index.manifest["data"]
    restarted = Pipeline(settings, HashingEmbedder())
    assert restarted.index.manifest["data"] == build  # the skipped copy is not "new"
    # Removing the skipped copy says what it is (it said "no uploaded document has the id")
    with pytest.raises(UnknownDocument, match="'museum-copy' is a file of the seeds folder "
                                              "that was not indexed") as refused:
        restarted.remove_documents(["museum-copy"])
    assert refused.value.status == 409 and (seeds / "museum-copy.txt").exists()

    (seeds / "museum.txt").unlink()
    assert list(Pipeline(settings, HashingEmbedder()).index.documents) == ["museum-copy"]
    # museum.txt back: the document indexed meanwhile keeps its id (and its citations)
    (seeds / "museum.txt").write_text(text, encoding="utf-8")
    assert list(Pipeline(settings, HashingEmbedder()).index.documents) == ["museum-copy"]


def test_a_seed_file_with_an_uploads_text_never_takes_its_place(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A seed file added later with an upload's text won: the upload, its id and every
    citation of it went (listed as 'the same text as the document 'hours-seed''). The
    upload the user made stays; the seed file is the copy, skipped and named like any."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "museum.txt").write_text("The museum is closed on Mondays.\n", encoding="utf-8")
    settings = Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                        spacy="none")
    upload = tmp_path / "hours.txt"
    upload.write_text("The garden opens at dawn and closes at dusk.\n", encoding="utf-8")
    Pipeline(settings, HashingEmbedder()).add_documents([upload])
    shutil.copy(upload, seeds / "hours-seed.txt")  # a seed added later with an upload's text
    skip = (str(seeds / "hours-seed.txt"),
            "the same text as the document 'hours'; not indexed twice")
    capsys.readouterr()
    pipeline = Pipeline(settings, HashingEmbedder())
    assert sorted(pipeline.index.documents) == ["hours", "museum"]
    assert [(p.file, p.reason) for p in pipeline.problems()] == [skip]
    assert f"skipped {skip[0]}: {skip[1]}" in capsys.readouterr().err
    build = pipeline.index.manifest["data"]
    assert Pipeline(settings, HashingEmbedder()).index.manifest["data"] == build  # fresh
    shutil.rmtree(settings.index_dir)  # a fresh index (another model): the upload still
    pipeline = Pipeline(settings, HashingEmbedder())
    assert sorted(pipeline.index.documents) == ["hours", "museum"]
    assert [(p.file, p.reason) for p in pipeline.problems()] == [skip]
    assert pipeline.remove_documents(["hours"]) == ["hours"]  # the copy is indexed then
    assert sorted(pipeline.index.documents) == ["hours-seed", "museum"]
    assert pipeline.problems() == []


def _racing_seed(monkeypatch: pytest.MonkeyPatch, name: str, text: str,
                 after: str = "commit", build: bool = False) -> None:
    """A seed file `name` written while add_documents runs: after the upload is stored
    (`commit`: before the rebuild) or after it was checked for copies (`copies`); with
    `build`, another process then indexes it."""
    step = getattr(lib, after)

    def racing(settings: Settings, *args: object) -> object:
        result = step(settings, *args)
        (settings.seeds_dir / name).write_text(text, encoding="utf-8")
        if build:
            Pipeline(settings, HashingEmbedder()).rebuild()
        return result

    monkeypatch.setattr(lib, after, racing)


@pytest.mark.parametrize("errors", [True, False])
def test_a_seed_file_arriving_during_an_upload_never_leaves_it_half_added(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errors: bool) -> None:
    """A seed file with the upload's text (or its id) written after the upload was checked
    but before the index was rebuilt left the upload stored but skipped, and add_documents
    returned nothing (or the seed file's document under the upload's id), with no message.
    A new or edited seed file is the copy (or takes another id); one that another process
    indexed meanwhile stays, and the upload is refused as any copy is (409), its files
    gone, the index as if it never came."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "museum.txt").write_text("The museum is closed on Mondays.\n", encoding="utf-8")
    settings = Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                        spacy="none")
    pipeline = Pipeline(settings, HashingEmbedder())
    pipeline.index  # noqa: B018 - built before the upload
    refused: list[tuple[str, BadDocument]] = []
    on_error = (lambda name, exc: refused.append((name, exc))) if errors else None

    def add(name: str, text: str) -> list[str]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        return [d.id for d in pipeline.add_documents([tmp_path / name], on_error=on_error)]

    def problems() -> list[tuple[str, str]]:
        return [(Path(p.file).name, p.reason) for p in pipeline.problems()]

    text = "The garden opens at dawn and closes at dusk.\n"
    with monkeypatch.context() as patch:  # a new seed file with the upload's text
        _racing_seed(patch, "hours-seed.txt", text)
        assert add("hours.txt", text) == ["hours"]
    assert problems() == [("hours-seed.txt", "the same text as the document 'hours'; not "
                                             "indexed twice")]
    with monkeypatch.context() as patch:  # an indexed seed file edited to it
        _racing_seed(patch, "museum.txt", "The cafe serves tea until five.\n")
        assert add("cafe.txt", "The cafe serves tea until five.\n") == ["cafe"]
    assert ("museum.txt", "the same text as the document 'cafe'; not indexed twice"
            ) in problems()
    with monkeypatch.context() as patch:  # a new seed file named like the upload
        _racing_seed(patch, "garden.txt", "The greenhouse is warm all year.\n")
        assert add("garden.txt", "The garden is closed in winter.\n") == ["garden"]
    assert pipeline.index.documents["garden"].text == "The garden is closed in winter.\n"
    assert "garden-txt" in pipeline.index.documents
    assert not refused

    before = sorted(pipeline.index.documents)
    late = "The ferry leaves at noon.\n"
    with monkeypatch.context() as patch:  # indexed by another process meanwhile
        _racing_seed(patch, "ferry.txt", late, after="copies", build=True)
        if errors:
            assert add("boat.txt", late) == []
            [(name, exc)] = refused
            assert name == str(tmp_path / "boat.txt")
        else:
            with pytest.raises(BadDocument) as info:
                add("boat.txt", late)
            exc = info.value
    assert exc.status == 409
    assert str(exc) == (f"{tmp_path / 'boat.txt'}: the same text as the document 'ferry'; "
                        "not added again")
    assert not (settings.documents_dir / "boat").exists()
    assert sorted(pipeline.index.documents) == sorted([*before, "ferry"])
    assert all(name != "boat" for name, _ in problems())
    build = pipeline.index.manifest["data"]
    assert Pipeline(settings, HashingEmbedder()).index.manifest["data"] == build  # fresh


def test_a_seed_file_named_like_an_upload_never_hides_it_in_a_fresh_index(
        tmp_path: Path) -> None:
    """A seed file 'orchard.txt' beside an upload 'orchard' took the id in a fresh index
    (deleted, rebuilt for another model): the upload was skipped ('a seed file has the id
    'orchard'') and could not be removed either ('a shipped seed document')."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    settings = Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                        spacy="none")
    upload = tmp_path / "orchard.txt"
    upload.write_text("The orchard of Brindle grows forty kinds of apple.\n", encoding="utf-8")
    Pipeline(settings, HashingEmbedder()).add_documents([upload])
    (seeds / "orchard.txt").write_text("The pear grove is older than the orchard.\n",
                                       encoding="utf-8")
    shutil.rmtree(tmp_path / "index")
    pipeline = Pipeline(settings, HashingEmbedder())
    assert sorted(pipeline.index.documents) == ["orchard", "orchard-txt"]
    assert pipeline.problems() == []
    assert pipeline.index.documents["orchard"].text.startswith("The orchard of Brindle")
    build = pipeline.index.manifest["data"]  # and the check names them alike: still fresh
    assert Pipeline(settings, HashingEmbedder()).index.manifest["data"] == build
    assert pipeline.remove_documents(["orchard"]) == ["orchard"]
    assert list(pipeline.index.documents) == ["orchard-txt"]
    with pytest.raises(UnknownDocument, match="seed"):
        pipeline.remove_documents(["orchard-txt"])


def test_two_indexes_sharing_a_data_folder_settle_each_others_changes_by_the_owner(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two indexes with one data folder (QA_DATA): an add or a removal killed in one was
    settled by whichever opened next, by its own manifest. Index B deleted an upload that
    index A had committed (only its confirmation was lost), and put back one whose removal
    A had committed. The change is settled by the index that made it."""
    shared = replace(settings, data_dir=tmp_path / "shared-data")
    a = replace(shared, index_dir=tmp_path / "a-idx")
    b = replace(shared, index_dir=tmp_path / "b-idx")
    assert "kestrel-lighthouse" not in Pipeline(b, HashingEmbedder()).index.documents
    first = Pipeline(a, HashingEmbedder())
    with monkeypatch.context() as patch:  # killed once A's index with it was committed
        patch.setattr(lib, "confirm", _dies)
        with pytest.raises(Killed):
            first.add_documents([HTML])
    assert list(shared.documents_dir.glob(".pending-*"))

    other = Pipeline(b, HashingEmbedder())
    assert "kestrel-lighthouse" in other.index.documents  # A's add stands, for B too
    assert (shared.documents_dir / "kestrel-lighthouse" / "meta.json").is_file()
    assert not list(shared.documents_dir.glob(".pending-*"))

    with monkeypatch.context() as patch:  # A's removal killed after its index committed
        patch.setattr(lib, "finish", _dies)
        with pytest.raises(Killed):
            Pipeline(a, HashingEmbedder()).remove_documents(["kestrel-lighthouse"])
    assert _set_aside(shared)
    again = Pipeline(b, HashingEmbedder())  # B still indexed it: not a reason to keep it
    assert "kestrel-lighthouse" not in again.index.documents
    assert not (shared.documents_dir / "kestrel-lighthouse").exists()
    assert not _set_aside(shared)  # nor the mark naming its index
    assert "kestrel-lighthouse" not in Pipeline(a, HashingEmbedder()).index.documents


class FailingGate(GatedEmbedder):
    """`GatedEmbedder` whose gated call fails once the gate opens: the upload's build dies."""

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = super().embed(texts)
        if threading.current_thread().name == "adding":
            raise RuntimeError("out of memory while embedding")
        return vectors


def test_a_build_elsewhere_never_indexes_an_upload_still_in_progress(
        settings: Settings, tmp_path: Path) -> None:
    """`qa index` (another process, here another index on the same QA_DATA) while `qa serve`
    indexed an upload: its build took no data lock and indexed the upload, whose own build
    then failed and removed it again: that index cited a document that was never added. And a
    reader (`qa ask`) saw the unconfirmed upload as a new file and rebuilt. Neither now."""
    from qa.store import build_index, load_index

    shared = replace(settings, data_dir=tmp_path / "shared-data")
    other = replace(shared, index_dir=tmp_path / "other-idx")
    embedder = FailingGate()
    writer = Pipeline(shared, embedder)
    assert writer.index.documents
    failed: list[BaseException] = []

    def add() -> None:
        try:
            writer.add_documents([HTML])
        except RuntimeError as exc:
            failed.append(exc)

    adding = threading.Thread(target=add, name="adding")
    adding.start()
    try:
        assert embedder.waiting.wait(30)  # stored, pending, being embedded
        assert (shared.documents_dir / "kestrel-lighthouse").is_dir()
        built = build_index(other, HashingEmbedder())
        assert "kestrel-lighthouse" not in built.documents
        assert "kestrel-lighthouse" not in load_index(shared).documents  # fresh: no rebuild
    finally:
        embedder.gate.set()
        adding.join(30)
    assert failed and not (shared.documents_dir / "kestrel-lighthouse").exists()
    assert "kestrel-lighthouse" not in Pipeline(other, HashingEmbedder()).index.documents


def test_a_full_disk_during_a_build_is_an_error_not_a_crash(
        pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """The vector files are memory maps of sparse files: on a full disk (a tmpfs) writing
    into one killed the process with SIGBUS ('Bus error', exit 135): `qa serve` died on an
    upload. Their blocks are allocated first, so a full disk is a WriteError naming the index
    folder, the upload is rolled back and the index is as it was."""
    import errno
    import os

    from qa import store
    from qa.errors import WriteError

    before = set(pipeline.index.documents)

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "posix_fallocate", full)
    with pytest.raises(WriteError, match=r"^cannot write the index in '.*index': No space "
                                         r"left on device$") as raised:
        pipeline.add_documents([HTML])
    assert raised.value.status == 507
    monkeypatch.undo()
    assert not (pipeline.settings.documents_dir / "kestrel-lighthouse").exists()
    assert set(Pipeline(pipeline.settings, HashingEmbedder()).index.documents) == before
    assert not list(pipeline.settings.index_dir.glob(".build-*"))


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_a_seed_file_changed_during_a_build_is_seen_as_changed(
        settings: Settings, change: str) -> None:
    """An HTML seed file edited while the build embedded it: the manifest recorded the hash
    of the new bytes beside the old text, so every later check called the index fresh and
    answers quoted text the file no longer held. Deleted meanwhile, the build failed
    (FileNotFoundError: 'internal error'). Both now build, and the next check rebuilds."""
    from qa.store import load_index

    seed = settings.seeds_dir / HTML.name
    shutil.copy(HTML, seed)

    class Editing(HashingEmbedder):
        def embed(self, texts: list[str]) -> np.ndarray:
            if seed.exists():
                if change == "edit":
                    seed.write_text(HTML.read_text("utf-8").replace("1871", "1999"), "utf-8")
                else:
                    seed.unlink()
            return super().embed(texts)

    index = Pipeline(settings, Editing()).index
    assert "kestrel-lighthouse" in index.documents and "1871" in index.documents[
        "kestrel-lighthouse"].text
    with pytest.raises(IndexStale, match="kestrel-lighthouse"):
        load_index(settings)
    rebuilt = Pipeline(settings, HashingEmbedder()).index
    if change == "edit":
        assert "1999" in rebuilt.documents["kestrel-lighthouse"].text
    else:
        assert "kestrel-lighthouse" not in rebuilt.documents


def test_a_seed_file_whose_name_is_not_utf8_is_skipped_not_fatal(settings: Settings) -> None:
    """A seed file named in Latin-1 (`caf\\xe9.txt`, from an old archive): its path could not
    be written into the build's documents.json, and the whole build failed ('internal error:
    UnicodeEncodeError'): one file's name blocked the library. It is skipped, named with the
    byte shown."""
    import os

    name = os.fsencode(settings.seeds_dir) + b"/caf\xe9.txt"
    with open(name, "wb") as fh:
        fh.write(b"The keeper of the lighthouse was Anna Holt.\n")
    pipeline = Pipeline(settings, HashingEmbedder())
    assert list(pipeline.index.documents) == ["politico-us-iraq-advisory-transition"]
    assert [(p.file, p.reason) for p in pipeline.problems()] == [
        (f"{settings.seeds_dir}/caf\\xe9.txt",
         "its name is not UTF-8 (written in another encoding?): rename it to index it")]
    assert list(Pipeline(settings, HashingEmbedder()).index.documents) == [
        "politico-us-iraq-advisory-transition"]


def test_a_build_that_waited_for_an_upload_s_build_keeps_the_upload(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build by another process (here another thread: `qa index`, or a server's background
    reload) read the library while an upload was being indexed, leaving the unconfirmed
    upload out, then waited for that upload's build: committed after it, its index dropped
    the upload the client had just been told was added. A build whose wait saw another
    build committed reads the library again."""
    from qa import store

    embedder = GatedEmbedder()
    writer = Pipeline(settings, embedder)
    assert writer.index.documents
    waiting = threading.Event()
    locking = store._build_lock

    def spy(index_dir: Path) -> object:
        if threading.current_thread().name == "other":
            waiting.set()
        return locking(index_dir)

    monkeypatch.setattr(store, "_build_lock", spy)
    adding = threading.Thread(target=writer.add_documents, args=([HTML],), name="adding")
    adding.start()
    built: list[store.Index] = []
    other = threading.Thread(name="other", target=lambda: built.append(
        store.build_index(settings, HashingEmbedder())))
    try:
        assert embedder.waiting.wait(30)  # the upload is being embedded, holding the locks
        other.start()
        assert waiting.wait(30)  # the other build has read the library and waits
    finally:
        embedder.gate.set()
        adding.join(30)
        other.join(30)
    assert "kestrel-lighthouse" in writer.index.documents
    assert "kestrel-lighthouse" in built[0].documents
    assert "kestrel-lighthouse" in store.load_index(settings).documents


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_an_upload_of_many_files_holds_their_text_not_their_bytes(
        pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa add *.pdf` read every file whole and kept the bytes of all of them until the last
    was stored: memory grew with the files' total size (100 PDFs of 20 MB: 2 GB), not their
    text. The bytes are read again, a block at a time, when each is stored; a file changed
    in between is refused (409), none of the upload is kept."""
    import tracemalloc

    files = []
    for i in range(10):  # 10 x 250 KB of script around a sentence of text
        path = tmp_path / f"page-{i}.html"
        path.write_text(f"<html><head><title>Page {i}</title><script>{'x' * 250_000}</script>"
                        f"</head><body><p>Page {i} says mill {i} stood by the river.</p>"
                        "</body></html>", "utf-8")
        files.append(path)
    assert pipeline.index.documents
    lib.prepare(files[0], None, 1 << 20)  # the HTML extractor imported and warmed up
    from qa import store

    building = store.build_index
    held: list[int] = []

    def spy(*args: Any, **kwargs: Any) -> store.Index:
        held.append(tracemalloc.get_traced_memory()[0])  # all checked, the first stored
        return building(*args, **kwargs)

    monkeypatch.setattr(store, "build_index", spy)
    tracemalloc.start()
    try:
        added = pipeline.add_documents(files)
    finally:
        tracemalloc.stop()
    monkeypatch.undo()
    assert len(added) == 10
    assert held[0] < 10 * 250_000 / 4, f"{held[0]:,} bytes held"
    assert (pipeline.settings.documents_dir / "page-0" / "original.html").read_bytes() == \
        files[0].read_bytes()

    item = lib.prepare(files[0], "again.html", 1 << 20)
    files[0].write_text(files[0].read_text("utf-8").replace("mill 0", "mill 9"), "utf-8")
    with pytest.raises(BadDocument, match="^again.html: the file changed while it was being "
                                          "added; add it again$") as raised:
        lib.commit(pipeline.settings, [item], set())
    assert raised.value.status == 409
    assert not (pipeline.settings.documents_dir / "again").exists()
    assert not list(pipeline.settings.documents_dir.glob(".*-*"))


def test_a_utf16_text_without_a_mark_is_indexed_and_cited_exactly(
        settings: Settings, tmp_path: Path) -> None:
    """A UTF-16 text file without a byte-order mark (seeded, or uploaded) was refused as
    binary. It is indexed; every passage and quote slices its text, which is the file
    decoded: read again from the file (and from the copy the data folder keeps)."""
    text = ("Village hall rota\r\n\r\nThe café opens at 9 on Saturdays and costs 5 € an hour "
            "to hire.\r\nBookings close on Friday at noon.\r\n")
    (settings.seeds_dir / "rota.txt").write_bytes(text.encode("utf-16-le"))
    upload = tmp_path / "notice.txt"
    upload.write_bytes("Notice\n\nThe boiler is serviced every March.\n".encode("utf-16-be"))
    pipeline = Pipeline(settings, HashingEmbedder())
    (added,) = pipeline.add_documents([upload])
    index = pipeline.index
    sources = {
        "rota": (settings.seeds_dir / "rota.txt").read_bytes().decode("utf-16-le"),
        added.id: upload.read_bytes().decode("utf-16-be"),
    }
    stored = (settings.documents_dir / added.id / "text.txt").read_bytes().decode("utf-8")
    assert stored == sources[added.id]
    for doc_id, source in sources.items():
        assert index.source(doc_id) == source
        chunks = [c for c in index.chunks if c.doc_id == doc_id]
        assert chunks and all(source[c.start:c.end] == c.text for c in chunks)
    for question, doc_id, words in (("When does the café open?", "rota", "opens at 9"),
                                    ("When is the boiler serviced?", added.id, "every March")):
        answer = pipeline.ask(question)
        quoted = [c for c in answer.citations if c.doc_id == doc_id]
        assert quoted and words in quoted[0].quote.text
        for c in quoted:
            source = sources[doc_id]
            assert source[c.quote.start:c.quote.end] == c.quote.text
            assert source[c.passage.start:c.passage.end] == c.passage.text


@pytest.mark.usefixtures("fake_cli")
def test_cli_add_a_folder_adds_its_documents_as_the_seeds_folder_is_read(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`qa add notes/` said "notes: cannot read the file: Is a directory", though the seeds
    folder's own hint for a sub-folder is to add its files with 'qa add'. A folder adds its
    documents as the seeds folder is read: its files in name order, not its hidden files nor
    its sub-folders, the entries it cannot add said on stderr as skipped; a folder with no
    document to add is one error line (exit 1)."""
    notes = tmp_path / "notes"
    (notes / "deeper").mkdir(parents=True)
    (notes / "b-orchard.txt").write_text("The orchard of Brindle grows forty kinds of apple.\n")
    (notes / "a-lighthouse.md").write_text("# Lighthouse\n\nThe lighthouse was built in 1911.\n")
    (notes / ".hidden.txt").write_text("Not for the index.\n")
    (notes / "table.xyz").write_text("nothing\n")
    assert cli.main(cli_argv(settings, "add", str(notes))) == 0
    out, err = capsys.readouterr()
    assert [line.split()[1] for line in out.splitlines()] == ["a-lighthouse", "b-orchard"]
    assert f"qa: skipped {notes / 'table.xyz'}: unsupported file type '.xyz'" in err
    assert f"qa: skipped {notes / 'deeper'}: a folder" in err
    assert "qa: error" not in err and "hidden" not in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(cli_argv(settings, "add", str(empty))) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"qa: error: {empty}: the folder holds no document to add "
                                "(.docx .htm .html .markdown .md .pdf .txt)"], err


def test_adding_a_folder_through_the_python_api_is_one_clear_refusal(
        pipeline: Pipeline, tmp_path: Path) -> None:
    """`Pipeline.add_documents(folder)` said "cannot read the file: Is a directory" (the
    OS's words); it now says the path is a folder and how its documents are added."""
    from qa.loaders import BadDocument

    (tmp_path / "notes").mkdir()
    with pytest.raises(BadDocument, match=r"/notes: a folder, not a file: add its files "
                                          r"\(qa add takes a folder\)$"):
        pipeline.add_documents(tmp_path / "notes")
