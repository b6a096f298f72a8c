"""The index on disk: round trip, staleness, damage, atomic builds (fake embedder: fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qa.store as store
from qa.errors import IndexCorrupt, IndexMissing, IndexStale
from qa.pipeline import Pipeline
from qa.store import build_index, load_index, open_index


def _data_dir(index_dir: Path) -> Path:
    manifest = json.loads((index_dir / "manifest.json").read_text())
    return index_dir / manifest["data"]


def test_round_trip(fake_pipeline: Pipeline) -> None:
    built = build_index(fake_pipeline.settings, fake_pipeline.embedder)
    loaded = load_index(fake_pipeline.settings)
    assert [c.id for c in loaded.chunks] == [c.id for c in built.chunks]
    spans = [(s.start, s.end) for s in built.sentences]
    assert [(s.start, s.end) for s in loaded.sentences] == spans
    np.testing.assert_allclose(loaded.chunk_vectors, built.chunk_vectors)
    np.testing.assert_allclose(loaded.sentence_vectors, built.sentence_vectors)
    assert loaded.chunk_bm25 == built.chunk_bm25
    manifest = loaded.manifest
    assert manifest["model"] == "fake-hashing" and manifest["dimension"] == 64
    assert manifest["chunking"] == fake_pipeline.settings.chunking()
    assert len(manifest["documents"][0]["sha256"]) == 64
    files = sorted(p.name for p in _data_dir(fake_pipeline.settings.index_dir).iterdir())
    assert files == sorted(store.DATA_FILES)  # FAISS + JSON only, nothing pickled


def test_missing_index_is_built(
    fake_pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(IndexMissing):
        load_index(fake_pipeline.settings)
    assert fake_pipeline.retrieve("troops in Iraq", 3)
    assert "no index yet" in capsys.readouterr().err


def test_changed_seed_triggers_rebuild(
    fake_pipeline: Pipeline, seeds_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    build_index(settings, embedder)
    (seeds_copy / "extra.txt").write_text("Extra\n\nThe zebra count is 77 in the zoo.\n",
                                          encoding="utf-8")
    with pytest.raises(IndexStale, match="seeds changed"):
        load_index(settings)
    index = open_index(settings, embedder)
    assert "rebuilding" in capsys.readouterr().err
    assert "extra" in index.documents
    assert load_index(settings).manifest["counts"]["documents"] == 2


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
    target = _data_dir(settings.index_dir) / "chunks.faiss"
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


def test_interrupted_build_leaves_previous_index_in_use(
    fake_pipeline: Pipeline, seeds_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, embedder = fake_pipeline.settings, fake_pipeline.embedder
    first = build_index(settings, embedder)
    manifest_before = (settings.index_dir / "manifest.json").read_text()

    def explode(*args: object) -> None:
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    monkeypatch.setattr(store, "_remove_old_builds", explode)
    monkeypatch.setattr(store.faiss, "write_index", explode)
    with pytest.raises(KeyboardInterrupt):
        build_index(settings, embedder)
    assert (settings.index_dir / "manifest.json").read_text() == manifest_before
    again = load_index(settings)
    assert [c.id for c in again.chunks] == [c.id for c in first.chunks]
    leftovers = [p for p in settings.index_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_old_builds_are_removed(fake_pipeline: Pipeline) -> None:
    build_index(fake_pipeline.settings, fake_pipeline.embedder)
    build_index(fake_pipeline.settings, fake_pipeline.embedder)
    builds = [p for p in fake_pipeline.settings.index_dir.iterdir() if p.is_dir()]
    assert len(builds) == 1
