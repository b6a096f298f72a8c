"""The index on disk: round trip, staleness, damage, atomic and incremental builds,
concurrent readers, the sparse BM25 against the reference one, HNSW recall."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

import qa.lexical as lexical
import qa.store as store
from qa.config import Settings
from qa.errors import IndexCorrupt, IndexMissing, IndexStale, SeedError
from qa.lexical import (
    BM25,
    DENSE_SHARE,
    SparseBM25,
    bm25_weights,
    rank_matches,
    term_counts,
    tokenize,
)
from qa.loaders.library import UnknownDocument
from qa.pipeline import Pipeline
from qa.retrieval import Query, search
from qa.store import Index, build_index, load_index, open_index
from qa.vectors import GRAPH, RERANK, RERANK_MIN, FaissVectors, quantized, top_k
from tests.conftest import ARTICLE, HashingEmbedder


def _data_dir(index_dir: Path) -> Path:
    manifest = json.loads((index_dir / "manifest.json").read_text())
    return index_dir / manifest["data"]


class CountingEmbedder:
    """Wraps an embedder and records every text it was asked to embed."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.texts: list[str] = []

    @property
    def dimension(self) -> int:
        return self.inner.dimension  # type: ignore[attr-defined,no-any-return]

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)  # type: ignore[attr-defined,no-any-return]


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def test_round_trip(fake_pipeline: Pipeline) -> None:
    built = build_index(fake_pipeline.settings, fake_pipeline.embedder)
    loaded = load_index(fake_pipeline.settings)
    assert [c.id for c in loaded.chunks] == [c.id for c in built.chunks]
    spans = [(s.start, s.end) for s in built.sentences]
    assert [(s.start, s.end) for s in loaded.sentences] == spans
    every = np.arange(len(built.chunks))
    np.testing.assert_allclose(loaded.chunk_vectors(every), built.chunk_vectors(every))
    sentences = np.arange(len(built.sentences))
    np.testing.assert_allclose(loaded.sentence_vectors(sentences),
                               built.sentence_vectors(sentences))
    assert loaded.terms == built.terms
    manifest = loaded.manifest
    assert manifest["model"] == "fake-hashing" and manifest["dimension"] == 64
    assert manifest["chunking"] == fake_pipeline.settings.chunking()
    assert len(manifest["documents"][0]["sha256"]) == 64
    files = sorted(p.name for p in _data_dir(fake_pipeline.settings.index_dir).iterdir())
    assert files == sorted(manifest["files"])  # every file hashed in the manifest
    assert all(f.endswith((".npy", ".txt", ".bin", ".json", ".faiss")) for f in files)
    for f in files:  # .npy arrays hold plain numbers: loadable without pickle
        if f.endswith(".npy"):
            np.load(_data_dir(fake_pipeline.settings.index_dir) / f, allow_pickle=False)


def test_offsets_point_into_the_seed_file(fake_pipeline: Pipeline) -> None:
    """The stored text is the file's text: every passage and sentence slices the file."""
    index = build_index(fake_pipeline.settings, fake_pipeline.embedder)
    index = load_index(fake_pipeline.settings)
    for chunk in index.chunks:
        source = Path(index.documents[chunk.doc_id].path).read_text(encoding="utf-8")
        assert source[chunk.start : chunk.end] == chunk.text
        for s in chunk.sentences:
            assert source[s.start : s.end] == s.text
            assert index.chunk_of(s.index) == chunk.index
            assert index.sentence_at(s.doc_id, s.start) == s.index


def test_load_does_not_reread_documents(fake_pipeline: Pipeline,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    build_index(fake_pipeline.settings, fake_pipeline.embedder)

    def forbidden(*args: object) -> None:
        raise AssertionError("load_corpus called while loading")

    monkeypatch.setattr(store, "load_corpus", forbidden)
    index = load_index(fake_pipeline.settings)
    doc_id = next(iter(index.documents))
    assert index.source(doc_id) == ARTICLE.read_text(encoding="utf-8")


def test_missing_index_is_built(
    fake_pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(IndexMissing):
        load_index(fake_pipeline.settings)
    assert fake_pipeline.retrieve("troops in Iraq", 3)
    assert "no index yet" in capsys.readouterr().err


def test_a_missing_seeds_folder_is_an_empty_library_named_as_a_problem(
        tmp_path: Path) -> None:
    """The uploads are the library too: a missing seeds folder is reported, not fatal."""
    counting = CountingEmbedder(HashingEmbedder())
    settings = store.Settings(model="fake-hashing", seeds_dir=tmp_path / "nope",
                              index_dir=tmp_path / "index")
    index = open_index(settings, counting, rebuild=True,
                       words=lambda: pytest.fail("word table loaded"))  # type: ignore[arg-type]
    assert not index.documents and counting.texts == []  # an empty library: no model
    assert [(p.file, p.reason) for p in index.manifest_record.problems] == [
        (str(tmp_path / "nope"), "the seeds folder does not exist")]
    assert load_index(settings).manifest_record.data == index.manifest_record.data  # fresh


def test_a_seeds_path_that_is_a_file_fails_before_any_embedding(tmp_path: Path) -> None:
    counting = CountingEmbedder(HashingEmbedder())
    (tmp_path / "seeds").write_text("not a folder")
    settings = store.Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                              index_dir=tmp_path / "index")
    with pytest.raises(SeedError, match="is not a folder"):
        open_index(settings, counting, rebuild=True,
                   words=lambda: pytest.fail("word table loaded"))  # type: ignore[arg-type]
    assert counting.texts == []


def test_changed_seed_triggers_rebuild(
    fake_pipeline: Pipeline, seeds_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    build_index(settings, embedder)
    _write(seeds_copy, "extra.txt", "Extra\n\nThe zebra count is 77 in the zoo.\n")
    with pytest.raises(IndexStale, match="documents changed"):
        load_index(settings)
    index = open_index(settings, embedder)
    assert "rebuilding" in capsys.readouterr().err
    assert "extra" in index.documents
    assert load_index(settings).manifest["counts"]["documents"] == 2


def test_skipped_and_same_named_seeds_do_not_make_the_index_stale(
    fake_pipeline: Pipeline, seeds_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check names and skips files exactly as loading does: an empty file and two seeds
    sharing a stem once made every command rebuild. Skipped files are still reported, and
    one that becomes readable is indexed under the id it had all along."""
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    _write(seeds_copy, "empty.txt", "")
    _write(seeds_copy, "dup.md", "")  # unreadable, yet it keeps the id "dup"
    _write(seeds_copy, "dup.txt", "Dup\n\nThe ferry leaves the harbour at noon.\n")
    built = fake_pipeline.index
    assert set(built.documents) == {ARTICLE.stem, "dup-txt"}
    for _ in range(2):
        assert load_index(settings).manifest["data"] == built.manifest["data"]
    capsys.readouterr()
    fresh = Pipeline(settings, embedder)
    assert fresh.index.manifest["data"] == built.manifest["data"]
    assert sorted(Path(p.file).name for p in fresh.problems()) == ["dup.md", "empty.txt"]
    assert "rebuilding" not in capsys.readouterr().err
    _write(seeds_copy, "dup.md", "Dup\n\nThe markdown twin is about rivers.\n")
    with pytest.raises(IndexStale, match=r"\(dup\)"):
        load_index(settings)
    index = open_index(settings, embedder)
    assert {"dup", "dup-txt"} <= set(index.documents)
    assert load_index(settings).manifest["data"] == index.manifest["data"]


def _seed_ids(index: store.Index) -> dict[str, str]:
    """File name -> id of every seed the build saw, loaded or skipped."""
    record = index.manifest_record
    return {Path(e.path).name: e.id for e in [*record.documents, *record.skipped]}


def test_a_seed_keeps_its_id_while_a_file_of_the_same_stem_comes_and_goes(
        fake_pipeline: Pipeline, seeds_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed ids came from the file names alone: an empty `dup.html` beside `dup.md` renamed
    it `dup-md`, and deleting that file renamed it `dup` again, breaking citations and links
    by id. A file keeps the id its last build gave it; only a new file gets a new one."""
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    dup_md = str(seeds_copy / "dup.md")
    _write(seeds_copy, "dup.md", "Dup\n\nThe ferry leaves the harbour at noon.\n")
    assert open_index(settings, embedder).documents["dup"].path == dup_md
    for html in ("", "<html><body><p>The html twin is about rivers.</p></body></html>"):
        _write(seeds_copy, "dup.html", html)  # empty (skipped), then readable
        index = open_index(settings, embedder)
        assert index.documents["dup"].path == dup_md
        assert _seed_ids(index) == {ARTICLE.name: ARTICLE.stem, "dup.md": "dup",
                                    "dup.html": "dup-html"}
        assert load_index(settings).manifest["data"] == index.manifest["data"]  # not stale
        monkeypatch.chdir(seeds_copy.parent)  # the seeds folder named another way: the same
        relative = settings.with_overrides(seeds_dir="seeds", index_dir="index")
        assert load_index(relative).manifest["data"] == index.manifest["data"]
    (seeds_copy / "dup.html").unlink()
    index = open_index(settings, embedder)
    assert index.documents["dup"].path == dup_md
    assert _seed_ids(index) == {ARTICLE.name: ARTICLE.stem, "dup.md": "dup"}


def test_a_fresh_index_names_seeds_by_their_file_names_alone(
        fake_pipeline: Pipeline, seeds_copy: Path) -> None:
    """Without a previous build, ids follow the file names in name order, as they always
    did: the first file of a stem has the stem, the next `stem-suffix`, numbered if taken.
    Removing the index and building again gives the same ids."""
    import shutil

    for name in ("a.md", "a.txt", "a-txt.md", "b.html", "c.txt"):
        _write(seeds_copy, name, f"{name}\n\nThe file {name} is about rivers and ferries.\n")
    expected = {ARTICLE.name: ARTICLE.stem, "a-txt.md": "a-txt", "a.md": "a",
                "a.txt": "a-txt-2", "b.html": "b", "c.txt": "c"}
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    assert _seed_ids(open_index(settings, embedder)) == expected
    shutil.rmtree(settings.index_dir)
    assert _seed_ids(open_index(settings, embedder)) == expected


def test_a_new_seed_file_does_not_take_an_uploads_id_nor_an_upload_a_seeds(
        fake_pipeline: Pipeline, seeds_copy: Path, tmp_path: Path) -> None:
    """A seed file dropped in beside an upload of the same name took the upload's id, and
    the upload dropped out of the index; and an upload checked its id against the seeds'
    ids as a fresh index would give them, not as the index gave them."""
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    upload = _write(tmp_path, "report.txt", "Report\n\nThe upload is about kestrels.\n")
    assert [d.id for d in fake_pipeline.add_documents([upload])] == ["report"]
    _write(seeds_copy, "report.txt", "Report\n\nThe seed is about lighthouses.\n")
    index = open_index(settings, embedder)
    assert "kestrels" in index.documents["report"].text
    assert "lighthouses" in index.documents["report-txt"].text
    _write(seeds_copy, "a.md", "A\n\nThe markdown file is about otters.\n")
    pipeline = Pipeline(settings, embedder)
    pipeline.index  # noqa: B018 - index a.md as `a`
    _write(seeds_copy, "a.html", "<html><body><p>The page is about voles.</p></body></html>")
    pipeline = Pipeline(settings, embedder)
    assert pipeline.index.documents["a-html"].path == str(seeds_copy / "a.html")
    other = _write(tmp_path, "a-html.txt", "A html\n\nThis upload is about badgers.\n")
    assert [d.id for d in pipeline.add_documents([other])] == ["a-html-2"]
    with pytest.raises(UnknownDocument, match="'a-html' is a shipped seed document"):
        pipeline.remove_documents(["a-html"])


SCANNED = Path(__file__).resolve().parent / "data" / "docs" / "scanned.pdf"


def test_a_skipped_file_is_retried_when_its_extractor_changes(
        fake_pipeline: Pipeline, seeds_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest records which extractor failed on a skipped file: a skipped PDF was
    retried only when its bytes changed, never after a pypdf upgrade that might read it."""
    import shutil

    import qa.loaders.pdf as pdf_module
    from qa.loaders import Extracted, extractor_for_name

    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    shutil.copy(SCANNED, seeds_copy / "scan.pdf")  # no text layer: skipped
    built = build_index(settings, embedder)
    assert "scan" not in built.documents
    [skipped] = built.manifest["skipped"]
    assert skipped["id"] == "scan" and skipped["extractor"] == extractor_for_name("scan.pdf")
    assert skipped["extractor"].startswith("pypdf-")
    assert load_index(settings).manifest["data"] == built.manifest["data"]  # unchanged: fresh

    real_version = pdf_module.version
    monkeypatch.setattr(pdf_module, "version",
                        lambda name: "99.0" if name == "pypdf" else real_version(name))
    with pytest.raises(IndexStale, match=r"\(scan\)"):
        load_index(settings)
    tried: list[str] = []

    def reads_it_now(self: object, raw: bytes, name: str) -> Extracted:
        tried.append(name)  # the upgraded extractor finds a text layer
        return Extracted(text="Scan\n\nThe scanned page reads well now.", title="Scan")

    monkeypatch.setattr(pdf_module.PdfLoader, "extract", reads_it_now)
    index = open_index(settings, embedder)
    assert tried == ["scan.pdf"] and "scan" in index.documents
    assert index.manifest["skipped"] == []
    assert load_index(settings).manifest["data"] == index.manifest["data"]


def test_a_skipped_entry_of_an_older_index_loads_and_is_retried_once(
        fake_pipeline: Pipeline, seeds_copy: Path) -> None:
    """A manifest written before skipped entries named their extractor still validates; the
    file is tried once more (which extractor failed on it is unknown), then the index stays."""
    import shutil

    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    shutil.copy(SCANNED, seeds_copy / "scan.pdf")
    build_index(settings, embedder)
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["skipped"]:
        del entry["extractor"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStale, match=r"\(scan\)"):
        load_index(settings)
    rebuilt = open_index(settings, embedder)
    assert "scan" not in rebuilt.documents and rebuilt.manifest["skipped"][0]["extractor"]
    assert load_index(settings).manifest["data"] == rebuilt.manifest["data"]


def test_touched_seed_is_not_stale(fake_pipeline: Pipeline, seeds_copy: Path) -> None:
    """A new mtime with the same bytes is checked by hash and found unchanged."""
    build_index(fake_pipeline.settings, fake_pipeline.embedder)
    seed = next(p for p in seeds_copy.iterdir() if not p.name.startswith("."))  # a document
    later = time.time() + 60
    os.utime(seed, (later, later))
    load_index(fake_pipeline.settings)
    seed.write_text(seed.read_text(encoding="utf-8") + "\nOne more line of text here.\n",
                    encoding="utf-8")
    with pytest.raises(IndexStale):
        load_index(fake_pipeline.settings)


def test_changed_settings_trigger_rebuild(fake_pipeline: Pipeline) -> None:
    build_index(fake_pipeline.settings, fake_pipeline.embedder)
    other = fake_pipeline.settings.with_overrides(chunk_chars=300)
    with pytest.raises(IndexStale, match="chunking"):
        load_index(other)
    other_model = fake_pipeline.settings.with_overrides(model="another-model")
    with pytest.raises(IndexStale, match="model"):
        load_index(other_model)


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "garbage_manifest"])
def test_damaged_index_is_detected_and_rebuilt(
    fake_pipeline: Pipeline, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    build_index(settings, embedder)
    target = _data_dir(settings.index_dir) / "chunk_vectors.npy"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(target.read_bytes())
        data[-5] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    else:
        (settings.index_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorrupt):
        load_index(settings)
    index = open_index(settings, embedder)
    assert "rebuilding the index" in capsys.readouterr().err
    assert len(index.chunks) > 5
    load_index(settings)  # the rebuilt index is whole again


def test_intact_files_are_hashed_once_and_a_later_change_is_still_found(
        fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fake_pipeline.settings
    build_index(settings, fake_pipeline.embedder)
    folder = _data_dir(settings.index_dir)
    load_index(settings)
    assert not (folder / store.VERIFIED).exists()  # files just written: not stamped yet
    monkeypatch.setattr(store, "RACY_SECONDS", 0.0)
    load_index(settings)
    assert (folder / store.VERIFIED).exists()
    hashed: list[str] = []
    real_sha = store.file_sha256
    monkeypatch.setattr(store, "file_sha256", lambda p: hashed.append(p.name) or real_sha(p))
    load_index(settings)
    assert hashed == []  # same stat, same hashes: nothing re-read
    time.sleep(0.05)  # past the file clock's tick
    target = folder / "sentence_vectors.npy"
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF  # same size, same inode
    target.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt):
        load_index(settings)
    assert "sentence_vectors.npy" in hashed


@pytest.mark.parametrize("manifest", [
    [], {"data": 3, "files": []}, {"format": 3}, "text",
    {"format": 3, "model": "fake-hashing", "dimension": 64, "chunking": {}, "documents": {},
     "counts": {}, "data": "../../etc", "files": {}},
])
def test_manifest_of_the_wrong_shape_is_rebuilt(
    fake_pipeline: Pipeline, manifest: object, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fake_pipeline.settings
    build_index(settings, fake_pipeline.embedder)
    (settings.index_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexCorrupt):
        load_index(settings)
    assert fake_pipeline.retrieve("troops in Iraq", 3)
    assert "rebuilding the index" in capsys.readouterr().err


def test_leftover_temporary_files_are_cleaned(fake_pipeline: Pipeline) -> None:
    settings = fake_pipeline.settings
    build_index(settings, fake_pipeline.embedder)
    (settings.index_dir / ".manifest.json.abc123.tmp").write_text("{", encoding="utf-8")
    (settings.index_dir / ".build-20260101T000000-deadbeef.tmp").mkdir()
    build_index(settings, fake_pipeline.embedder)
    assert [p for p in settings.index_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_interrupted_build_leaves_previous_index_in_use(
    fake_pipeline: Pipeline, seeds_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    first = build_index(settings, embedder)
    manifest_before = (settings.index_dir / "manifest.json").read_text()

    def explode(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    monkeypatch.setattr(store, "_remove_old_builds", explode)
    monkeypatch.setattr(store.SparseBM25, "save", explode)
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, embedder)
    assert (settings.index_dir / "manifest.json").read_text() == manifest_before
    again = load_index(settings)
    assert [c.id for c in again.chunks] == [c.id for c in first.chunks]
    leftovers = [p for p in settings.index_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_old_builds_are_removed_after_a_grace_build(fake_pipeline: Pipeline) -> None:
    """The build a swap replaced stays (a reader may be opening it); older ones go."""
    settings = fake_pipeline.settings
    first = build_index(settings, fake_pipeline.embedder).folder.name
    second = build_index(settings, fake_pipeline.embedder).folder.name
    third = build_index(settings, fake_pipeline.embedder).folder.name
    builds = {p.name for p in settings.index_dir.iterdir() if p.is_dir()}
    assert builds == {second, third} and first not in builds


# -- incremental builds ------------------------------------------------------------------------


@pytest.mark.parametrize("passage_vectors", ["mean", "embed"])
def test_incremental_add_change_remove_embeds_only_what_changed(
    fake_pipeline: Pipeline, seeds_copy: Path, passage_vectors: str
) -> None:
    settings = fake_pipeline.settings.with_overrides(passage_vectors=passage_vectors)
    counting = CountingEmbedder(HashingEmbedder())
    _write(seeds_copy, "b.txt", "Bees\n\nBees make honey in the summer. They dance to talk.\n")
    build_index(settings, counting)
    article = [s.text for c in load_index(settings).chunks for s in c.sentences
               if c.doc_id.startswith("politico")]
    assert set(article) <= set(counting.texts)
    embeds_passages = passage_vectors == "embed"

    def rebuild_and_check(doc_id: str | None) -> list[str]:
        """Build; assert that exactly doc_id's passages and sentences were embedded."""
        counting.texts.clear()
        index = build_index(settings, counting)
        expected: set[str] = set()
        if doc_id is not None:
            source = (seeds_copy / f"{doc_id}.txt").read_text(encoding="utf-8")
            for chunk in index.chunks:
                if chunk.doc_id == doc_id:
                    expected |= {s.text for s in chunk.sentences}
                    expected |= {chunk.text} if embeds_passages else set()
            # anything else embedded is a new vocabulary word of that document
            extra = set(counting.texts) - expected
            assert all(w.lower() in source.lower() and " " not in w for w in extra), extra
        assert expected <= set(counting.texts)
        assert sum(t in expected for t in counting.texts) == len(expected)  # each once
        return counting.texts

    # add: only the new document's passages and sentences are embedded
    _write(seeds_copy, "c.txt", "Cats\n\nCats sleep most of the day. The zebra count is 77.\n")
    rebuild_and_check("c")
    index = load_index(settings)
    assert index.manifest["embedded"]["documents"] == 1
    assert "c" in index.documents and "b" in index.documents and index.knows("zebra")

    # change: only the changed document
    _write(seeds_copy, "b.txt", "Bees\n\nBees make honey in the spring.\n")
    rebuild_and_check("b")
    assert "summer" not in load_index(settings).source("b")

    # remove: nothing is embedded, the document is gone from every structure
    (seeds_copy / "c.txt").unlink()
    assert rebuild_and_check(None) == []
    index = load_index(settings)
    assert "c" not in index.documents and not index.knows("zebra")
    assert all(c.doc_id != "c" for c in index.chunks)
    hits, _ = search(index, HashingEmbedder().embed(["Cats sleep"])[0],
                     Query.of("Cats sleep"), 3)
    assert all(h.chunk.doc_id != "c" for h in hits)


def test_incremental_build_equals_full_build(fake_pipeline: Pipeline, seeds_copy: Path,
                                            tmp_path: Path) -> None:
    """Reused pieces give the same index as building everything afresh."""
    settings = fake_pipeline.settings
    build_index(settings, fake_pipeline.embedder)
    _write(seeds_copy, "zoo.txt", "Zoo\n\nThe zebra count is 77 in the zoo. Lions roar.\n")
    incremental = build_index(settings, fake_pipeline.embedder)
    fresh = build_index(settings.with_overrides(index_dir=tmp_path / "fresh"),
                        fake_pipeline.embedder)
    assert sorted(c.id for c in incremental.chunks) == sorted(c.id for c in fresh.chunks)
    assert incremental.terms == fresh.terms
    terms = {"zebra": 1.0, "iraq": 1.0, "troop": 0.5}
    by_id_inc = dict(zip((c.id for c in incremental.chunks),
                         incremental.chunk_scores(terms), strict=True))
    by_id_fresh = dict(zip((c.id for c in fresh.chunks), fresh.chunk_scores(terms),
                           strict=True))
    for cid, score in by_id_fresh.items():
        assert by_id_inc[cid] == pytest.approx(score, rel=1e-6)
    np.testing.assert_allclose(incremental.term_vectors, fresh.term_vectors, atol=1e-6)


def test_annotations_are_stored_aligned_and_reused(fake_pipeline: Pipeline, seeds_copy: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fake_pipeline.settings
    seen: list[str] = []
    batches: list[int] = []
    monkeypatch.setattr(store, "ANNOTATE_BATCH", 3)  # many batches: alignment across them

    def annotate(sentences: list[store.Sentence]) -> list[dict[str, object]]:
        seen.extend(s.text for s in sentences)
        batches.append(len(sentences))
        return [{"length": len(s.text), "first": s.text.split()[0], "index": s.index}
                for s in sentences]

    build_index(settings, fake_pipeline.embedder, annotate=annotate)
    assert max(batches) == 3 and len(batches) > 3
    index = load_index(settings)
    assert index.annotations is not None
    assert len(index.annotations) == len(index.sentences)
    for s, note in zip(index.sentences, index.annotations, strict=True):
        assert note == {"length": len(s.text), "first": s.text.split()[0], "index": s.index}
    last = len(index.sentences) - 1
    assert index.annotation(last) == index.annotations[last]  # one line, read alone
    assert "annotations.jsonl" in index.manifest["files"]
    seen.clear()
    _write(seeds_copy, "zoo.txt", "Zoo\n\nThe zebra count is 77 in the zoo.\n")
    build_index(settings, fake_pipeline.embedder, annotate=annotate)
    assert seen == ["Zoo", "The zebra count is 77 in the zoo."]
    assert len(load_index(settings).annotations or []) == len(load_index(settings).sentences)


# -- concurrent readers ------------------------------------------------------------------------


@pytest.mark.slow  # threads or an ANN build: over the fast tier's budget
def test_readers_never_see_a_half_replaced_index(fake_pipeline: Pipeline,
                                                 seeds_copy: Path) -> None:
    settings = fake_pipeline.settings
    _write(seeds_copy, "flip.txt", "Flip\n\nThis is the first build.\n")
    build_index(settings, fake_pipeline.embedder)
    stop = threading.Event()
    builds = 0
    errors: list[BaseException] = []

    def rebuild_forever() -> None:
        nonlocal builds
        try:
            while not stop.is_set():
                _write(seeds_copy, "flip.txt", f"Flip\n\nThis is build number {builds}.\n")
                build_index(settings, fake_pipeline.embedder)
                builds += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=rebuild_forever)
    thread.start()
    loads = 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and not errors and (builds < 4 or loads < 20):
            index = load_index(settings, check_seeds=False)  # never IndexCorrupt
            assert len(index.chunks) > 5
            assert index.source("flip").startswith("Flip")
            flip = index.chunks[int(index.chunks_of({"flip"})[0])]
            assert flip.text.startswith("Flip") and flip.doc_id == "flip"
            loads += 1
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    enough = builds >= 4 and loads >= 20
    assert enough, f"{builds} builds, {loads} loads"


def test_load_retries_once_on_a_vanished_build(fake_pipeline: Pipeline,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    settings = fake_pipeline.settings
    old = build_index(settings, fake_pipeline.embedder)
    stale_manifest = store._read_manifest(settings.index_dir)
    build_index(settings, fake_pipeline.embedder)
    build_index(settings, fake_pipeline.embedder)  # the first build folder is now gone
    assert not old.folder.exists()
    real_read = store._read_manifest
    calls = 0

    def first_stale(index_dir: Path) -> store.Manifest:
        nonlocal calls
        calls += 1
        return stale_manifest if calls == 1 else real_read(index_dir)

    monkeypatch.setattr(store, "_read_manifest", first_stale)
    index = load_index(settings)  # no IndexCorrupt, no rebuild
    assert index.folder.exists() and calls == 2


# -- lexical and vector pieces -----------------------------------------------------------------


@pytest.mark.parametrize("forms", [
    "speed speeds speeding", "need needs needed needing", "agree agreed agreeing agrees",
    "exceed exceeded exceeding", "guarantee guaranteed", "plan plans planned planning",
    "announce announced announcing", "troop troops", "marry married marries marrying",
    "study studied studies", "die died dies", "try tried tries",
    # a short verb that loses its "e" before "-ing" or "-ed": "How much notice must the tenant
    # give?" missed "by giving one month's notice" ("give" and "giv")
    "give gives giving", "make makes making", "take takes taking", "move moves moved moving",
    "note notes noted", "hope hoped hoping", "fix fixed fixing", "hop hopped hopping",
])
def test_inflections_meet_at_one_stem(forms: str) -> None:
    stems = set(tokenize(forms))
    assert len(stems) == 1, stems
    assert stems != {"spe"}  # "speed" is not the past tense of "spe"


def test_a_word_with_marks_is_one_word_typed_with_or_without_them() -> None:
    """"Deréon" was cut at its "é" into "der" and "on", so "Dereon" (as people type it)
    matched nothing; "ł", "ß" and "æ" are letters of their own."""
    assert tokenize("Deréon Gładkowska straße Æsir naïve") == tokenize(
        "Dereon Gladkowska strasse aesir naive") == ["dereon", "gladkowska", "strass", "aesir",
                                                     "naiv"]
    reference = BM25.build(["The label House of Deréon.", "Another shop."])
    assert reference.scores(tokenize("Dereon"))[0] > 0


def test_a_word_with_an_invisible_character_in_it_is_one_word() -> None:
    """PDFs and web pages put soft hyphens and zero-width spaces inside words: "fer\u00adry"
    was two words ("fer", "ry"), and a question for the ferry found nothing."""
    assert tokenize("fer\u00adry fer\u200bry fer\u2060ry \ufeffferry") == ["ferry"] * 4
    reference = BM25.build(["The fer\u200bry leaves at nine.", "Another boat."])
    assert reference.scores(tokenize("ferry"))[0] > 0


def test_whose_is_a_question_word_like_who_and_whom() -> None:
    """"Whose idea was it?" asked for a word no document uses ("whose") and was withheld."""
    assert tokenize("Who, whom or whose idea?") == ["idea"]


def test_different_words_keep_different_stems() -> None:
    assert len(set(tokenize("speed spend seed see feed fee"))) == 6
    assert len(set(tokenize("hop hope rat rate pin pine fix"))) == 7


def test_sparse_bm25_matches_the_reference_on_real_text() -> None:
    text = ARTICLE.read_text(encoding="utf-8")
    sentences = [s for s in text.replace("\n", " ").split(". ") if s.strip()]
    reference = BM25.build(sentences)
    vocabulary: dict[str, int] = {}
    sparse_index = SparseBM25.of(bm25_weights(term_counts(sentences, vocabulary)), vocabulary)
    queries = [{t: 1.0 for t in tokenize("How many American troops are in Iraq?")},
               {"troop": 1.0, "iraq": 0.5, "kirby": 0.8, "unknownword": 1.0},
               {t: 1.0 for t in tokenize(sentences[3])}]
    for terms in queries:
        expected = reference.scores(terms, terms)
        np.testing.assert_allclose(sparse_index.scores(terms), expected, rtol=1e-5, atol=1e-6)
        rows = np.array([7, 3, 3, 0, len(sentences) - 1])
        np.testing.assert_allclose(sparse_index.scores(terms, rows), expected[rows],
                                   rtol=1e-5, atol=1e-6)
    for term in ("troop", "iraq", "unknownword"):
        assert sparse_index.idf(term) == pytest.approx(reference.idf(term))
        assert sparse_index.knows(term) == (term in reference.postings)


def test_top_k_is_a_stable_partial_sort() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=1000).astype(np.float32)
    for k in (1, 7, 50, 999, 1000, 2000):
        np.testing.assert_array_equal(top_k(scores, k),
                                      np.argsort(-scores, kind="stable")[:k])


@pytest.mark.slow  # threads or an ANN build: over the fast tier's budget
def test_hnsw_recall_at_10_against_exact_search() -> None:
    rng = np.random.default_rng(1)
    dim, n = 48, 5_000
    centres = rng.normal(size=(200, dim))
    points = centres[rng.integers(0, 200, n)] + 0.6 * rng.normal(size=(n, dim))
    matrix = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    exact, approx = FaissVectors(matrix, hnsw_above=n + 1), FaissVectors(matrix, hnsw_above=1_000)
    assert exact.kind == "flat" and approx.kind == "hnsw"
    queries = matrix[rng.integers(0, n, 100)] + 0.05 * rng.normal(size=(100, dim)).astype(
        np.float32)
    recall = np.mean([
        len(set(exact.search(q, 10)[1]) & set(approx.search(q, 10)[1])) / 10 for q in queries
    ])
    assert recall >= 0.95, recall


def test_ivf_above_its_size_reaches_its_recall_and_keeps_nprobe(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    dim, n = 48, 20_000
    centres = rng.normal(size=(400, dim))
    points = centres[rng.integers(0, 400, n)] + 0.6 * rng.normal(size=(n, dim))
    matrix = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    exact = FaissVectors(matrix, hnsw_above=n + 1)
    approx = FaissVectors(matrix, hnsw_above=1_000, ivf_above=10_000)
    assert approx.kind == "ivf" and approx.graph.nlist == int(np.sqrt(n))
    assert 1 < approx.graph.nprobe < approx.graph.nlist  # chosen, neither trivial nor a scan
    queries = matrix[rng.integers(0, n, 200)] + 0.05 * rng.normal(size=(200, dim)).astype(
        np.float32)
    recall = np.mean([
        len(set(exact.search(q, 10)[1]) & set(approx.search(q, 10)[1])) / 10 for q in queries
    ])
    assert recall >= 0.95, recall
    approx.save(tmp_path)
    loaded = FaissVectors.load(tmp_path)
    assert loaded.kind == "ivf" and loaded.graph.nprobe == approx.graph.nprobe
    np.testing.assert_array_equal(loaded.search(queries[0], 10)[1],
                                  approx.search(queries[0], 10)[1])


def test_8bit_ivf_returns_exact_scores_and_the_exact_top_k_it_finds(tmp_path: Path) -> None:
    """The IVF index scans 8-bit codes, then re-scores what it found exactly: whenever the
    true top k is among the rows its scan found, it returns exactly the true top k, with
    exact scores, as an exact scan would; an IVF-flat index of an older build still loads
    and searches."""
    rng = np.random.default_rng(5)
    dim, n, k = 32, 6_000, 10
    centres = rng.normal(size=(80, dim))
    points = centres[rng.integers(0, 80, n)] + 0.6 * rng.normal(size=(n, dim))
    matrix = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    approx = FaissVectors(matrix, hnsw_above=1_000, ivf_above=5_000)
    assert approx.kind == "ivf" and quantized(approx.graph)
    queries = (matrix[rng.integers(0, n, 100)]
               + 0.3 * rng.normal(size=(100, dim))).astype(np.float32)
    found_all = 0
    for q in queries:
        scores, ids = approx.search(q, k)
        np.testing.assert_allclose(scores, matrix[ids] @ q, rtol=1e-6, atol=1e-6)
        exact = np.argsort(-(matrix @ q), kind="stable")[:k]
        scanned = approx.graph.search(q[None, :], max(RERANK * k, RERANK_MIN))[1][0]
        if set(exact) <= set(scanned):
            found_all += 1
            np.testing.assert_array_equal(ids, exact)
    assert found_all >= 50  # the condition holds for most questions: the test tests
    approx.save(tmp_path)
    loaded = FaissVectors.load(tmp_path)
    assert quantized(loaded.graph) and loaded.graph.nprobe == approx.graph.nprobe
    np.testing.assert_array_equal(loaded.search(queries[0], k)[1],
                                  approx.search(queries[0], k)[1])

    flat = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, 16, faiss.METRIC_INNER_PRODUCT)
    flat.train(matrix)
    flat.add(matrix)
    flat.nprobe = 16  # every list: exact
    faiss.write_index(flat, str(tmp_path / GRAPH))
    old = FaissVectors.load(tmp_path)
    assert old.kind == "ivf" and not quantized(old.graph)
    np.testing.assert_array_equal(old.search(queries[0], k)[1],
                                  np.argsort(-(matrix @ queries[0]), kind="stable")[:k])


def test_larger_index_uses_ivf_and_a_smaller_rebuild_goes_back_to_hnsw(
        fake_pipeline: Pipeline) -> None:
    settings = fake_pipeline.settings.with_overrides(hnsw_above=5, ivf_above=10)
    index = build_index(settings, fake_pipeline.embedder)
    assert index.manifest["vectors"] == "ivf" and load_index(settings).vectors.kind == "ivf"
    vector = HashingEmbedder().embed(["troops in Iraq"])[0]
    hits, _ = search(load_index(settings), vector, Query.of("troops in Iraq"), 3)
    assert len(hits) == 3
    settings = settings.with_overrides(ivf_above=len(index.chunks) + 1)
    index = build_index(settings, fake_pipeline.embedder)  # nothing appended: not reused
    assert index.manifest["vectors"] == "hnsw" and load_index(settings).vectors.kind == "hnsw"


def test_large_index_uses_hnsw_and_search_still_filters(fake_pipeline: Pipeline) -> None:
    settings = fake_pipeline.settings.with_overrides(hnsw_above=5)
    index = build_index(settings, fake_pipeline.embedder)
    assert index.manifest["vectors"] == "hnsw" and index.vectors.kind == "hnsw"
    index = load_index(settings)
    assert index.vectors.kind == "hnsw"
    vector = HashingEmbedder().embed(["troops in Iraq"])[0]
    hits, _ = search(index, vector, Query.of("troops in Iraq"), 3)
    assert len(hits) == 3
    assert search(index, vector, Query.of("troops"), 3, doc_ids=frozenset({"nope"}))[0] == []
    doc = next(iter(index.documents))
    limited, _ = search(index, vector, Query.of("troops in Iraq"), 3,
                        doc_ids=frozenset({doc}))
    assert [h.chunk.id for h in limited] == [h.chunk.id for h in hits]


@pytest.mark.slow
def test_incremental_add_with_the_real_model(real_pipeline: Pipeline, seeds_copy: Path,
                                             tmp_path: Path) -> None:
    """Adding a document to an index built with the real model embeds exactly its passages
    and sentences, and the new document answers at once with exact offsets."""
    settings = store.Settings(seeds_dir=seeds_copy, index_dir=tmp_path / "index")
    counting = CountingEmbedder(real_pipeline.embedder)
    build_index(settings, counting, words=real_pipeline.words)
    body = ("Zebras\n\nThe Lisbon zoo counted 77 zebras in its spring census. "
            "Keepers said the herd had grown after two births in March.\n")
    path = _write(seeds_copy, "zebras.txt", body)
    counting.texts.clear()
    index = open_index(settings, counting, words=real_pipeline.words)
    new = [c for c in index.chunks if c.doc_id == "zebras"]
    expected = {s.text for c in new for s in c.sentences}  # passages: mean of sentences
    passages_and_sentences = [t for t in counting.texts if t in expected]
    assert sorted(passages_and_sentences) == sorted(expected)
    assert not any("Iraq" in t for t in counting.texts)
    vector = real_pipeline.embedder.embed(["How many zebras did the zoo count?"])[0]
    hits, _ = search(index, vector, Query.of("How many zebras did the zoo count?"), 3)
    assert hits[0].chunk.doc_id == "zebras"
    source = path.read_text(encoding="utf-8")
    assert source[hits[0].sentence.start : hits[0].sentence.end] == hits[0].sentence.text
    assert "77 zebras" in hits[0].sentence.text


def test_rank_matches_equals_a_stable_sort_of_all_scores() -> None:
    rng = np.random.default_rng(2)
    scores = np.where(rng.random(500) < 0.1, rng.integers(1, 4, 500), 0).astype(np.float32)
    rows = np.flatnonzero(scores > 0)
    for k in (1, 10, 50, 60, 500, 600):
        np.testing.assert_array_equal(rank_matches(rows, scores[rows], k, len(scores)),
                                      np.argsort(-scores, kind="stable")[:k])
    np.testing.assert_array_equal(rank_matches(rows[:0], scores[:0], 3, 500), [0, 1, 2])


def test_bm25_top_equals_ranking_every_row_by_its_summed_weights(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`SparseBM25.top` sums only the query's postings (or, for common terms, one array of
    all rows); its ranking must be the one of every row's BM25 score, summed in float32
    term by term from the weight matrix, ties and unmatched rows in row order."""
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(300)]
    p = 1.0 / np.arange(1, 301)
    texts = [" ".join(rng.choice(vocab, size=rng.integers(1, 6), p=p / p.sum()))
             for _ in range(2_000)]
    vocabulary: dict[str, int] = {}
    weights = bm25_weights(term_counts(texts, vocabulary))
    matrix = weights.toarray()
    bm25 = SparseBM25.of(weights, vocabulary)
    queries = [{"w0": 1.0}, {"w0": 1.0, "w7": 0.5},  # common: one array of all rows
               {"w150": 1.0, "w299": 0.7, "w200": 1.0},  # rare: the postings only
               {"w0": 1.0, "w1": 1.0, "w20": 1.0}, {"w0": 1.0, "w40": 1.0},  # common + rarer:
               {"w0": 1.0, "w1": 0.5, "w10": 1.0},  # the rarer's postings when they decide
               {"w0": 1.0, "w30": 1.0, "w4": 1.0},
               {"w120": 1.0, "nosuchword": 1.0}, {"nosuchword": 1.0}, {}]
    assert len(bm25._column("w150")[0]) * DENSE_SHARE < len(texts)  # the postings only
    assert len(bm25._column("w7")[0]) * DENSE_SHARE >= len(texts)  # one array of all rows
    columns = [(*bm25._column(t), np.float32(w), t) for t, w in queries[3].items()]
    assert bm25._top_pruned(columns, 5) is not None  # pruned: the test covers that way
    assert bm25._top_pruned(columns, 50) is None  # the common words could decide the 50th
    columns = [(*bm25._column(t), np.float32(w), t) for t, w in queries[6].items()]
    assert bm25._top_pruned(columns, 10) is not None  # proved by the rows' full scores ...
    monkeypatch.setattr(lexical, "PRUNE_EXACT_ROWS", 0)
    assert bm25._top_pruned(columns, 10) is None  # ... not by their partial ones
    monkeypatch.undo()
    for terms in queries:
        expected = np.zeros(len(texts), dtype=np.float32)
        for term, weight in terms.items():
            if term in vocabulary:
                expected += matrix[:, vocabulary[term]] * np.float32(weight)
        for k in (1, 5, 10, 50, 2_000):
            np.testing.assert_array_equal(bm25.top(terms, k),
                                          np.argsort(-expected, kind="stable")[:k])


def test_a_passage_is_shown_with_its_best_sentence_not_its_heading(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    source = ("The Old Harbor Lighthouse\n\nThe Old Harbor Lighthouse was built in 1872. "
              "It stands 43 meters tall on the harbor rocks.\n")
    (seeds / "harbor.txt").write_text(source, encoding="utf-8")
    settings = Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                        spacy="none")
    hits = Pipeline(settings, HashingEmbedder()).retrieve("Old Harbor Lighthouse", 1)
    text = (seeds / "harbor.txt").read_text(encoding="utf-8")
    assert hits[0].chunk.text.startswith("The Old Harbor Lighthouse\n")  # one passage
    assert hits[0].sentence.text == "The Old Harbor Lighthouse was built in 1872."
    assert text[hits[0].sentence.start : hits[0].sentence.end] == hits[0].sentence.text


def test_decoded_document_texts_are_bounded(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Index kept every document's decoded text (and its Document) for its whole life: a
    large library ended up wholly in memory, beside its memory map. Now a small LRU,
    bounded by entries and by characters, and texts read back exactly after eviction."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    texts = {f"doc{n}": f"Document {n} is about the river number {n}. " * (n + 1)
             for n in range(6)}
    for doc_id, text in texts.items():
        (seeds / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    monkeypatch.setattr(store, "CACHE_DOCUMENTS", 3)
    monkeypatch.setattr(store, "CACHE_CHARS", len(texts["doc5"]) + len(texts["doc4"]))
    index = build_index(Settings(model="fake-hashing", seeds_dir=seeds,
                                 index_dir=tmp_path / "index"), HashingEmbedder())
    for _ in range(2):
        for doc_id, text in texts.items():
            assert index.source(doc_id) == text and index.documents[doc_id].text == text
            assert len(index._source_cache) <= 3 and len(index._document_cache) <= 3
    assert len(index._source_cache) == 2  # doc4 and doc5: the characters' bound
    assert index._source_cache.get("doc5") == texts["doc5"]  # the most recent stays
    assert all(index.chunks[i].text == index.source(c.doc_id)[c.start:c.end]
               for i, c in enumerate(index.chunks))
    big = store._Recent(len, entries=3, chars=4)
    big.put("a", "longer than four")  # one entry over the bound is still kept (just used)
    assert big.get("a") == "longer than four"
    big.put("b", "xy")
    assert big.get("a") is None and big.get("b") == "xy"


def test_a_seeds_folder_made_or_removed_since_the_build_makes_it_stale(tmp_path: Path) -> None:
    """With no file in it either way, the index stayed 'fresh': `qa list` kept saying 'the
    seeds folder does not exist' after it was made (and nothing once it was removed)."""
    settings = store.Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                              index_dir=tmp_path / "index")
    build_index(settings, HashingEmbedder())
    (tmp_path / "seeds").mkdir()
    with pytest.raises(IndexStale, match="seeds"):
        load_index(settings)
    assert build_index(settings, HashingEmbedder()).manifest_record.problems == []
    load_index(settings)  # fresh
    (tmp_path / "seeds").rmdir()
    with pytest.raises(IndexStale, match="seeds"):
        load_index(settings)


def test_a_listing_reads_each_texts_hash_from_the_build(fake_pipeline: Pipeline,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the text caches bounded, every document list (GET /api/documents, qa list, the
    chat's list after each upload) would hash every evicted document's text again."""
    index = fake_pipeline.index
    import qa.types

    def no_hashing(*args: object) -> object:
        raise AssertionError("a document's text was hashed again")

    monkeypatch.setattr(qa.types.hashlib, "sha256", no_hashing)
    for document in index.documents.values():
        record = next(d for d in index.manifest_record.documents if d.id == document.id)
        assert document.text_sha256 == record.text_sha256


def test_asking_whether_a_document_is_indexed_decodes_no_text(
        fake_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """`doc_id in index.documents` (every doc_ids filter, removal and upload) went through
    Mapping's __contains__, which builds the whole Document: its text decoded and cached."""
    fake_pipeline.index  # noqa: B018 - built
    index = Pipeline(fake_pipeline.settings, HashingEmbedder()).index  # loaded: none decoded

    def no_text(self: Index, doc_id: str) -> str:
        raise AssertionError(f"the text of {doc_id!r} was decoded")

    monkeypatch.setattr(Index, "source", no_text)
    assert "politico-us-iraq-advisory-transition" in index.documents
    assert "nope" not in index.documents and 3 not in index.documents


def test_documents_go_through_the_embedders_document_path(tmp_path: Path) -> None:
    """A build embeds passages and sentences with `embed_documents` where the embedder has
    one (bfloat16, `QA_DOCUMENT_PRECISION`), records the precision it reports, and keeps the
    recorded one when a later build embeds nothing new."""

    class TwoPaths(HashingEmbedder):
        def __init__(self) -> None:
            self.documents: list[str] = []
            self.questions: list[str] = []
            self.document_precision_used: str | None = None

        def embed(self, texts: list[str]) -> np.ndarray:
            self.questions.extend(texts)
            return super().embed(texts)

        def embed_documents(self, texts: list[str]) -> np.ndarray:
            self.documents.extend(texts)
            self.document_precision_used = "bfloat16"
            return super().embed(texts)

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    _write(seeds, "a.txt", "The ferry leaves at nine. It carries forty cars.")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index", spacy="none")
    embedder = TwoPaths()
    built = build_index(settings, embedder)
    assert "The ferry leaves at nine." in embedder.documents
    assert "The ferry leaves at nine." not in embedder.questions  # (index terms may be)
    assert built.manifest["document_precision"] == "bfloat16"
    _write(seeds, "b.txt", "The museum opens at ten.")
    kept = build_index(settings, HashingEmbedder())  # a.txt reused, b.txt embedded by `embed`
    assert kept.manifest["document_precision"] == "float32"
    (seeds / "b.txt").unlink()
    assert build_index(settings, TwoPaths()).manifest["document_precision"] == "float32"


def test_what_a_killed_build_left_goes_when_the_index_is_next_opened(tmp_path: Path) -> None:
    """A build killed (kill -9, a crash) left its `.build-*.tmp` folder, the vectors of
    everything it embedded, until the next build: an index found fresh kept it for good.
    It goes when the index is opened and no build runs; never while one does."""
    import fcntl

    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "note.txt").write_text("The mill stood by the river.\n", "utf-8")
    settings = store.Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                              index_dir=tmp_path / "index")
    open_index(settings, HashingEmbedder())
    left = settings.index_dir / ".build-20260101T000000-deadbeef.tmp"
    left.mkdir()
    (left / "chunk_vectors.npy").write_bytes(b"\0" * 1000)
    with (settings.index_dir / ".lock").open("a") as fh:  # a build in progress
        fcntl.flock(fh, fcntl.LOCK_EX)
        open_index(settings, HashingEmbedder())
        assert left.is_dir()
        fcntl.flock(fh, fcntl.LOCK_UN)
    open_index(settings, HashingEmbedder())
    assert not left.exists()


def test_a_build_removes_only_its_own_folders(seeds_copy: Path, tmp_path: Path) -> None:
    """An index folder that already held the user's own folders ('qa index --index .' in a
    project) lost every one whose name began with 'build-' or '.build-' (build-tools,
    .build-cache: removed with their files) as 'old builds'. Only folders named as qa names
    its builds (build-<time>-<hex>) are qa's to remove; a leftover of a killed build still
    goes."""
    index_dir = tmp_path / "project"
    mine = [index_dir / "build-tools", index_dir / ".build-cache", index_dir / "build-1.tmp"]
    for folder in mine:
        folder.mkdir(parents=True)
        (folder / "keep.txt").write_text("precious\n", encoding="utf-8")
    left = index_dir / ".build-20250101T000000-0123abcd.tmp"  # a killed build's
    left.mkdir()
    settings = Settings(model="fake-hashing", seeds_dir=seeds_copy, index_dir=index_dir,
                        spacy="none")
    first = build_index(settings, HashingEmbedder()).manifest["data"]
    (seeds_copy / "pier.txt").write_text("The pier opens at six.\n", encoding="utf-8")
    second = build_index(settings, HashingEmbedder()).manifest["data"]
    (seeds_copy / "tide.txt").write_text("High tide is at noon.\n", encoding="utf-8")
    third = build_index(settings, HashingEmbedder()).manifest["data"]
    for folder in mine:
        assert (folder / "keep.txt").read_text(encoding="utf-8") == "precious\n", folder
    assert not left.exists()
    builds = sorted(p.name for p in index_dir.iterdir() if p.name.startswith("build-2"))
    assert first not in builds and builds == sorted([second, third])


def test_terms_of_one_surface_word_embed_it_once() -> None:
    """Terms that share a surface word ('african-american' for both "african" and
    "american", 128 of the 3,463 words a 484 kB build embedded) embed it once; each term
    still gets that word's vector, with or without a word table."""
    from qa.expansion import WordVectors, term_vectors

    class Recording(HashingEmbedder):
        texts: list[str] = []

        def embed(self, texts: list[str]) -> np.ndarray:
            Recording.texts += texts
            return super().embed(texts)

    surfaces = {"african": "african-american", "american": "african-american",
                "cost": "cost", "e": "e-mail", "mail": "e-mail"}
    terms = ["african", "american", "cost", "e", "mail", "zebra"]
    expected = HashingEmbedder().embed([surfaces.get(t, t) for t in terms])
    table = WordVectors.of(["cost"], HashingEmbedder().embed(["cost"]))
    for words in (table, None):
        Recording.texts = []
        vectors = term_vectors(terms, surfaces, words, Recording())
        np.testing.assert_allclose(vectors, expected, atol=1e-6)
        assert sorted(Recording.texts) == sorted(
            {"african-american", "e-mail", "zebra"} | ({"cost"} if words is None else set()))


def test_a_file_of_values_without_spaces_embeds_its_terms_as_words(tmp_path: Path) -> None:
    """A line of values with no space ('item0,item1,...', a CSV export, a log, minified
    data) gave each of its terms that whole run of text as its surface word, so the build
    embedded ~20,000 strings of 600 characters for query expansion: qa index ran for over
    20 minutes on a 250 KB file (30 s for a file of prose as long). A run of text that holds
    many terms gives each term its own piece ('item7'); an ordinary word is kept whole."""
    from qa.expansion import surface_forms

    forms = surface_forms(["Stock: " + ",".join(f"item{i}" for i in range(300)),
                           "The e-mail desk is state-of-the-art, said U.S. officials."])
    assert forms["item7"] == "item7" and forms[tokenize("item123")[0]] == "item123"
    assert all(len(form) <= 40 for form in forms.values())
    assert forms["mail"] == "e-mail" and forms["us"] == "u.s"
    assert forms["art"] == "state-of-the-art"

    class Counting(HashingEmbedder):
        chars = 0

        def embed(self, texts: list[str]) -> np.ndarray:
            Counting.chars += sum(len(t) for t in texts)
            return super().embed(texts)

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "stock.txt").write_text(
        "Stock list\n\n" + ",".join(f"item{i}" for i in range(3000)) + "\n", encoding="utf-8")
    build_index(Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / "index",
                         spacy="none"), Counting())
    text = (seeds / "stock.txt").read_text(encoding="utf-8")
    assert Counting.chars < 4 * len(text)  # passages, sentences and terms, each once or so
