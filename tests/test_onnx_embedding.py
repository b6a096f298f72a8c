"""The ONNX Runtime path: same vectors as torch, a cached graph that is validated by hash, and
clear behaviour when onnxruntime is missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa import onnx_model
from qa.config import Settings, load_settings
from qa.embedding import SentenceTransformerEmbedder, make_embedder, token_batches
from qa.errors import BadSetting, ModelError

SQUAD = Path("/work/shared/data/squad2-train-10-articles.json")


def _weights(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return folder


def _cache(cache: Path, folder: Path, data: bytes) -> Path:
    """Write a cache entry as `onnx_graph` would, without exporting a real model."""
    import hashlib

    where = onnx_model.cache_folder(cache, folder)
    where.mkdir(parents=True)
    digest = hashlib.sha256(data).hexdigest()
    (where / "model-x.onnx").write_bytes(data)
    (where / onnx_model.META).write_text(json.dumps({
        "export": onnx_model.EXPORT_VERSION, "source": onnx_model.source_key(folder),
        "file": "model-x.onnx", "sha256": digest}), encoding="utf-8")
    return where / "model-x.onnx"


def test_cached_graph_is_used_only_when_its_hash_matches(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "model")
    path = _cache(tmp_path / "cache", folder, b"graph bytes")
    assert onnx_model.cached_graph(tmp_path / "cache", folder) == path
    path.write_bytes(b"graph bytez")  # same size, other bytes: a damaged file
    assert onnx_model.cached_graph(tmp_path / "cache", folder) is None
    path.write_bytes(b"graph")  # truncated
    assert onnx_model.cached_graph(tmp_path / "cache", folder) is None


def test_cached_graph_is_ignored_after_the_weights_change(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "model")
    _cache(tmp_path / "cache", folder, b"graph bytes")
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert onnx_model.cached_graph(tmp_path / "cache", folder) is None


def test_cached_graph_refuses_a_file_outside_its_folder(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "model")
    path = _cache(tmp_path / "cache", folder, b"graph bytes")
    meta = json.loads((path.parent / onnx_model.META).read_text(encoding="utf-8"))
    (tmp_path / "elsewhere.onnx").write_bytes(b"graph bytes")
    meta["file"] = "../../elsewhere.onnx"
    (path.parent / onnx_model.META).write_text(json.dumps(meta), encoding="utf-8")
    assert onnx_model.cached_graph(tmp_path / "cache", folder) is None


def test_cached_graph_survives_garbage_metadata(tmp_path: Path) -> None:
    folder = _weights(tmp_path / "model")
    path = _cache(tmp_path / "cache", folder, b"graph bytes")
    for junk in ("", "[]", "{", '{"file": 3}'):
        (path.parent / onnx_model.META).write_text(junk, encoding="utf-8")
        assert onnx_model.cached_graph(tmp_path / "cache", folder) is None


def test_missing_onnxruntime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Asked for explicitly: one clear error. On `auto`: torch instead (same vectors)."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    plain = {"max_seq_length": 256}
    explicit = SentenceTransformerEmbedder(runtime="onnx", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="needs the package onnxruntime"):
        explicit._onnx(tmp_path, plain)
    assert SentenceTransformerEmbedder(runtime="auto", cache_dir=tmp_path)._onnx(
        tmp_path, plain) is None
    assert list(tmp_path.iterdir()) == []  # nothing exported


def test_onnx_refuses_a_model_it_cannot_run(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="plain mean-pooled BERT"):
        SentenceTransformerEmbedder(runtime="onnx", cache_dir=tmp_path)._onnx(tmp_path, None)
    assert SentenceTransformerEmbedder(runtime="auto")._onnx(tmp_path, None) is None


def test_runtime_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QA_EMBED_RUNTIME", "torch")
    assert load_settings().embed_runtime == "torch"
    monkeypatch.setenv("QA_EMBED_RUNTIME", "tensorflow")
    with pytest.raises(BadSetting, match="QA_EMBED_RUNTIME.*'tensorflow'"):
        load_settings()
    embedder = make_embedder(Settings(embed_runtime="onnx", cache_dir=tmp_path))
    assert (embedder.runtime, embedder.cache_dir, embedder._backend) == ("onnx", tmp_path, None)


def _real_sentences(n: int) -> list[str]:
    from qa.chunking import split_sentences

    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    out = [p["context"][s.start:s.end] for a in data["data"] for p in a["paragraphs"]
           for s in split_sentences(p["context"])]
    return out[::max(1, len(out) // n)][:n]


def test_token_batches_cut_by_padded_tokens() -> None:
    lengths = [40, 3, 3, 300, 5, 40, 3]
    batches = token_batches(lengths, tokens=100, most=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # each once
    assert [[lengths[i] for i in b] for b in batches] == [[3, 3, 3], [5, 40], [40], [300]]
    for b in batches:  # shortest first; padded size within the budget unless alone
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 100
    assert token_batches([], tokens=100, most=3) == []


@pytest.mark.slow
def test_torch_path_cuts_calls_by_tokens_and_keeps_its_vectors() -> None:
    """The torch path embedded 16 texts a call whatever their length, where ONNX cuts calls
    by padded tokens (`token_batches`). It now cuts them alike, and each vector is the one
    the text gets on its own (cosine ≥ 0.9999)."""
    from qa.embedding import TORCH_TOKENS, _BertBackend, padded_feed

    embedder = SentenceTransformerEmbedder(runtime="torch")
    embedder.warm_up()
    bert = embedder._backend
    assert isinstance(bert, _BertBackend)
    texts = _real_sentences(200) + ["x", "", "word " * 400, "How many troops are in Iraq?"]
    shapes: list[tuple[int, int]] = []
    run = bert.run

    def counted(feed: dict[str, np.ndarray]) -> np.ndarray:
        shapes.append(feed["input_ids"].shape)
        return run(feed)

    bert.run = counted  # type: ignore[method-assign]
    got = embedder.embed(texts)
    bert.run = run  # type: ignore[method-assign]
    assert sum(rows for rows, _ in shapes) == len(texts)
    assert all(rows == 1 or rows * width <= TORCH_TOKENS for rows, width in shapes), shapes
    assert max(rows for rows, _ in shapes) > 16  # short texts share a call: not 16 a call
    alone = np.concatenate([bert.run(padded_feed(bert.tokenizer.encode_batch([t]), bert.pad_id))
                            for t in texts])
    assert np.sum(got * alone, axis=1).min() >= 0.9999
    assert embedder.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_onnx_vectors_equal_torch_vectors(tmp_path: Path) -> None:
    """The exported graph computes the model's vectors: cosine ≥ 0.9999 on real sentences,
    short and overlong texts included; the export is cached and reused."""
    texts = _real_sentences(300) + ["x", "", "word " * 400, "How many troops are in Iraq?"]
    torch_path = SentenceTransformerEmbedder(runtime="torch")
    onnx_path = SentenceTransformerEmbedder(runtime="onnx", cache_dir=tmp_path)
    a, b = torch_path.embed(texts), onnx_path.embed(texts)
    assert (torch_path.runtime_used, onnx_path.runtime_used) == ("torch", "onnx")
    assert a.shape == b.shape == (len(texts), 384)
    cosine = np.sum(a * b, axis=1)
    assert cosine.min() >= 0.9999, cosine.min()
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert set(onnx_path.vocabulary()) == set(torch_path.vocabulary())
    assert onnx_path.embed([]).shape == (0, 384)
    graphs = list(tmp_path.rglob("*.onnx"))
    assert len(graphs) == 1
    again = SentenceTransformerEmbedder(runtime="onnx", cache_dir=tmp_path)
    mtime = graphs[0].stat().st_mtime_ns
    np.testing.assert_allclose(again.embed(texts[:20]), b[:20], atol=1e-5)
    assert graphs[0].stat().st_mtime_ns == mtime  # reused, not exported again
    assert list(tmp_path.rglob("*.tmp")) == []



def test_document_precision_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().document_precision == "auto"
    monkeypatch.setenv("QA_DOCUMENT_PRECISION", "bfloat16")
    assert load_settings().document_precision == "bfloat16"
    monkeypatch.setenv("QA_DOCUMENT_PRECISION", "int8")
    assert load_settings().document_precision == "int8"
    monkeypatch.setenv("QA_DOCUMENT_PRECISION", "int4")
    with pytest.raises(BadSetting, match="QA_DOCUMENT_PRECISION.*'int4'"):
        load_settings()
    embedder = make_embedder(Settings(document_precision="auto", cache_dir=tmp_path))
    assert (embedder.document_precision, embedder._documents) == ("auto", None)
    with pytest.raises(ValueError, match="document_precision"):
        SentenceTransformerEmbedder(document_precision="int4")


def test_float32_documents_take_the_question_path(tmp_path: Path) -> None:
    """Documents in float32 (asked for, or "auto" on a CPU without VNNI) are embedded by the
    same backend as questions: one model in memory."""
    embedder = SentenceTransformerEmbedder(document_precision="float32", cache_dir=tmp_path)

    class Backend:
        def encode(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float32)

    backend = Backend()
    embedder._backend = backend  # type: ignore[assignment]
    assert embedder.embed_documents(["a", "b"]).shape == (2, 2)
    assert (embedder._documents, embedder.document_precision_used) == (backend, "float32")


def test_auto_embeds_documents_in_int8_only_where_it_runs_well(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """"auto" (the default) takes int8 on a CPU with VNNI; float32 without VNNI (slow and
    saturating int8 products), and float32 with a one-line notice where int8 cannot run (a
    model that is no plain BERT); never bfloat16, which costs the build ~430 MB."""
    from qa import embedding

    class Backend:
        def __init__(self, precision: str) -> None:
            self.precision = precision

        def encode(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float32)

    def auto(vnni: bool, int8: Any) -> SentenceTransformerEmbedder:
        monkeypatch.setattr(embedding, "native_int8", lambda: vnni)
        monkeypatch.setattr(embedding, "native_bfloat16", lambda: True)
        monkeypatch.setattr(SentenceTransformerEmbedder, "_int8", int8)
        embedder = SentenceTransformerEmbedder(document_precision="auto", cache_dir=tmp_path)
        embedder._backend = Backend("float32")  # type: ignore[assignment]
        embedder.embed_documents(["a"])
        return embedder

    def int8(self: SentenceTransformerEmbedder) -> Backend:
        return Backend("int8")

    assert auto(True, int8)._documents.precision == "int8"  # type: ignore[union-attr]
    assert auto(False, int8).document_precision_used == "float32"

    def cannot(self: SentenceTransformerEmbedder) -> Backend:
        raise ModelError("QA_DOCUMENT_PRECISION=int8 runs only plain mean-pooled BERT models")

    assert auto(True, cannot).document_precision_used == "float32"
    assert "documents are embedded in float32" in capsys.readouterr().err
    monkeypatch.setattr(SentenceTransformerEmbedder, "_int8", cannot)
    asked = SentenceTransformerEmbedder(document_precision="int8", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="plain mean-pooled"):
        asked.embed_documents(["a"])  # asked for by name: the error, not a silent fallback


def test_native_bfloat16_reads_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import io

    from qa import embedding

    real_open = builtins.open

    def cpuinfo(flags: str) -> object:
        def fake(path: object, *args: object, **kwargs: object) -> object:
            if path == "/proc/cpuinfo":
                return io.StringIO(f"processor\t: 0\nflags\t\t: {flags}\n")
            return real_open(path, *args, **kwargs)  # type: ignore[call-overload]
        return fake

    monkeypatch.setattr(builtins, "open", cpuinfo("fpu avx2 avx512f avx512_bf16"))
    assert embedding.native_bfloat16()
    monkeypatch.setattr(builtins, "open", cpuinfo("fpu avx2 amx_bf16 amx_tile"))
    assert embedding.native_bfloat16()
    monkeypatch.setattr(builtins, "open", cpuinfo("fpu avx2 avx512f avx512_vnni"))
    assert not embedding.native_bfloat16() and embedding.native_int8()
    monkeypatch.setattr(builtins, "open", cpuinfo("fpu avx2 avx_vnni"))
    assert embedding.native_int8()
    monkeypatch.setattr(builtins, "open", cpuinfo("fpu avx2 fma"))
    assert not embedding.native_int8()


@pytest.mark.slow
def test_bfloat16_document_vectors() -> None:
    """`QA_DOCUMENT_PRECISION=bfloat16`: documents through torch in bfloat16, the same
    vectors as float32 to cosine >= 0.9999 and the same whatever their batch; questions keep
    the float path."""
    texts = _real_sentences(300) + ["x", "", "word " * 400]
    embedder = SentenceTransformerEmbedder(runtime="onnx", document_precision="bfloat16")
    exact = embedder.embed(texts)
    approx = embedder.embed_documents(texts)
    assert (embedder.runtime_used, embedder.document_precision_used) == ("onnx", "bfloat16")
    assert approx.shape == exact.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(approx, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(exact * approx, axis=1)
    assert cosine.min() >= 0.9999, cosine.min()
    assert not np.allclose(exact, approx, atol=1e-6)  # really computed otherwise
    alone = np.concatenate([embedder.embed_documents([t]) for t in texts[:40]])
    assert np.sum(alone * approx[:40], axis=1).min() >= 0.9999
    assert embedder.embed_documents([]).shape == (0, 384)


def test_int8_documents_need_a_plain_bert_on_the_cpu(tmp_path: Path) -> None:
    (tmp_path / "no-model").mkdir()  # a folder, but of no plain BERT
    embedder = SentenceTransformerEmbedder(str(tmp_path / "no-model"), fast=False,
                                           document_precision="int8", cache_dir=tmp_path)
    with pytest.raises(ModelError, match="int8 runs only plain mean-pooled BERT"):
        embedder.embed_documents(["a"])


@pytest.mark.slow
def test_int8_document_vectors(tmp_path: Path) -> None:
    """`QA_DOCUMENT_PRECISION=int8`: documents through the int8 graph, one text a call, so a
    text's vector is the same whatever else is embedded with it (per-call activation scales
    made them differ); close to float32; the graph is made once, validated and re-made when
    damaged; questions keep the float path."""
    import logging

    texts = _real_sentences(300) + ["x", "", "word " * 400]
    embedder = SentenceTransformerEmbedder(runtime="onnx", document_precision="int8",
                                           cache_dir=tmp_path)
    exact = embedder.embed(texts)
    handlers, disabled = list(logging.getLogger().handlers), logging.root.manager.disable
    approx = embedder.embed_documents(texts)  # quantises the graph: its logging is silenced
    assert (list(logging.getLogger().handlers), logging.root.manager.disable) == (
        handlers, disabled)  # and the process's logging left as it was
    assert (embedder.runtime_used, embedder.document_precision_used) == ("onnx", "int8")
    assert approx.shape == exact.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(approx, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(exact * approx, axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.95, (cosine.mean(), cosine.min())
    assert not np.allclose(exact, approx, atol=1e-4)  # really computed otherwise
    alone = np.concatenate([embedder.embed_documents([t]) for t in texts[:40]])
    np.testing.assert_array_equal(alone, approx[:40])  # not a bit moved by its company
    np.testing.assert_array_equal(embedder.embed(texts[:5]), exact[:5])
    graphs = list(tmp_path.rglob("model-int8-*.onnx"))
    assert len(graphs) == 1
    graphs[0].write_bytes(graphs[0].read_bytes()[:-10])  # damaged: made again, never run
    again = SentenceTransformerEmbedder(runtime="onnx", document_precision="int8",
                                        cache_dir=tmp_path)
    np.testing.assert_array_equal(again.embed_documents(texts[:5]), approx[:5])
    assert len(list(tmp_path.rglob("model-int8-*.onnx"))) == 1


def test_a_model_folder_that_does_not_exist_is_named_as_one(tmp_path: Path) -> None:
    """`--model /models/minilm` (a folder mistyped, or not yet copied) was taken for a hub
    name, after seconds of importing torch: "cannot load embedding model '/models/minilm'
    (offline? give a local path): OSError: Repo id must use alphanumeric chars...", of a
    local path. A name that is a path (absolute, ./, ../ or ~) and names no folder is one
    line saying so, before anything is imported."""
    from qa.embedding import resolve_model
    from qa.errors import ModelError

    for name in ("/nonexistent/minilm", "./minilm", "../models/minilm", "~/no-such-model"):
        with pytest.raises(ModelError) as err:
            resolve_model(name)
        assert str(err.value) == (f"the embedding model {name!r} is a path, but no such "
                                  "folder exists")
    assert resolve_model("sentence-transformers/all-mpnet-base-v2") == \
        "sentence-transformers/all-mpnet-base-v2"  # a hub name: passed through
    assert resolve_model(str(tmp_path)) == str(tmp_path)
