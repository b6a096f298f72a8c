"""The Milvus backend (`QA_BACKEND=milvus`) on a real Milvus Lite, in this process.

Fast: BM25 score handling, filter expressions, settings, an unreachable Milvus. Slow (a
Milvus Lite server, and the real model where said): the article indexed into Milvus,
answers with offsets re-read from the file, the doc_ids filter, add and remove kept in
sync, and `qa eval` on the article's test set against the embedded default. One Milvus
Lite file per module: its start-up is paid once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa import cli, milvus_index
from qa.config import Settings, load_settings
from qa.errors import BadSetting
from qa.milvus_index import Layout, MilvusLexical, MilvusVectors, bm25_score, doc_key
from qa.pipeline import Pipeline
from qa.retrieval import Query
from tests.conftest import ARTICLE, ROOT, SEEDS, HashingEmbedder

ARTICLE_QA = ROOT / "eval" / "article_qa.jsonl"
OTHER = ("The Kestrel lighthouse stands on a granite point north of Harwick. Its lamp was "
         "first lit in 1871 by the keeper Ada Morrow, who kept it burning for forty-two years.\n\n"
         "In 1958 the light was automated and the keeper's cottage became a small museum of "
         "shipwrecks on the northern coast.\n")


# -- fast: no server -----------------------------------------------------------------------


def test_bm25_score_is_the_magnitude_whatever_the_sign() -> None:
    # Milvus Lite reports -score (best first = most negative); a server reports +score.
    assert bm25_score(-0.7857) == pytest.approx(0.7857)
    assert bm25_score(0.7857) == pytest.approx(0.7857)
    assert bm25_score(-0.0) == 0.0
    lite = [-1.57, -1.11, -0.97]  # a Lite result, in its order
    assert [bm25_score(d) for d in lite] == sorted((bm25_score(d) for d in lite), reverse=True)


def test_filter_expression_selects_whole_documents_by_key_and_the_rest_by_row() -> None:
    # two documents: passages 0-2 and 3-4; sentences 0-5 and 6-8
    layout = Layout(["a", "b"], ["ka", "kb"], np.array([0, 3, 5]),
                    np.array([0, 2, 4, 6, 7, 9]))
    assert layout.expression("passages", np.array([4, 3, 1])) == \
        'doc_key in ["kb"] or pk in ["ka:1"]'
    assert layout.expression("sentences", np.arange(6)) == 'doc_key in ["ka"]'
    assert layout.expression("sentences", np.array([8])) == 'pk in ["kb:2"]'
    rows, kept = layout.rows("sentences", [{"entity": {"doc_key": "kb", "n": 1}},
                                           {"entity": {"doc_key": "gone", "n": 0}},
                                           {"entity": {"doc_key": "ka", "n": 5}}])
    assert rows.tolist() == [7, 5] and kept.tolist() == [0, 2]  # unknown documents dropped


def test_backend_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadSetting, match="backend must be"):
        Settings(backend="qdrant")
    with pytest.raises(BadSetting, match="QA_MILVUS_URI"):
        Settings(milvus_uri="/tmp/not-a-db-file")
    # checked with the settings, not after a build has embedded the whole corpus
    with pytest.raises(BadSetting, match="QA_MILVUS_COLLECTION must be a letter"):
        Settings(milvus_collection="bad name")
    monkeypatch.setenv("QA_BACKEND", "milvus")
    monkeypatch.setenv("QA_MILVUS_URI", "http://milvus.internal:19530")
    monkeypatch.setenv("QA_MILVUS_TOKEN", "root:secret")
    settings = load_settings()
    assert (settings.backend, settings.milvus_uri, settings.milvus_token) == (
        "milvus", "http://milvus.internal:19530", "root:secret")
    assert "secret" not in repr(settings)
    assert milvus_index.milvus_uri(Settings(index_dir=Path("x"))) == "x/milvus.db"


@pytest.mark.slow  # threads or an ANN build: over the fast tier's budget
def test_unreachable_milvus_is_one_line_and_exit_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.setenv("QA_MILVUS_URI", "http://127.0.0.1:1")
    monkeypatch.setenv("QA_MILVUS_TOKEN", "root:secret")
    code = cli.main(["ask", "Who met at the Pentagon?", "--backend", "milvus",
                     "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index")])
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("qa: error: cannot use Milvus at 'http://127.0.0.1:1'")
    assert "Traceback" not in err and "secret" not in err
    assert not (tmp_path / "index" / "manifest.json").exists()  # failed before building


@pytest.mark.slow  # imports pymilvus and Milvus Lite: a second of the fast tier
def test_a_lite_file_held_by_another_process_is_one_line_without_a_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Milvus Lite logged its lock failure with a 20-line traceback before qa's one line."""
    import fcntl
    import logging
    import os

    shutil.copytree(SEEDS, tmp_path / "seeds")
    db = tmp_path / "index" / "milvus.db"
    db.mkdir(parents=True)
    fd = os.open(db / "LOCK", os.O_CREAT | os.O_RDWR, 0o644)  # what the other process holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with caplog.at_level(logging.DEBUG):
            code = cli.main(["ask", "Who met at the Pentagon?", "--backend", "milvus",
                             "--seeds", str(tmp_path / "seeds"),
                             "--index", str(tmp_path / "index")])
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines() == [
        f"qa: error: cannot use Milvus at {str(db)!r}: Open local milvus failed (a Milvus Lite "
        "file serves one process at a time)"]
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not logged, [r.getMessage() for r in logged]


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
def test_a_file_where_the_lite_folder_belongs_is_named_not_blamed_on_another_process(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file at index/milvus.db (an older Milvus Lite's single file, or anything else) was
    reported as '(a Milvus Lite file serves one process at a time)', with no other process."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    db = tmp_path / "index" / "milvus.db"
    db.parent.mkdir()
    db.write_bytes(b"SQLite format 3\x00 not a Milvus Lite 3 folder")
    code = cli.main(["ask", "Who met at the Pentagon?", "--backend", "milvus",
                     "--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index")])
    err = capsys.readouterr().err
    assert code == 1
    # (only the error lines: a server warmed by an earlier test in this worker may still
    # print its "qa: ready" from its own thread)
    assert [line for line in err.splitlines() if line.startswith("qa: error")] == [
        f"qa: error: cannot use Milvus at {str(db)!r}: Open local milvus failed (it is a file, "
        "not a Milvus Lite folder: move it away and the index is copied into a new one)"]
    assert "another process" not in err


def test_bad_backend_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["ask", "q", "--backend", "qdrant"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# -- slow: a Milvus Lite server in this process ----------------------------------------------


@pytest.fixture(scope="module")
def milvus_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("milvus")
    shutil.copytree(SEEDS, base / "seeds")
    yield base
    milvus_index.close_clients()


def _milvus_rows(settings: Settings, index: object, collection: str, key: str) -> int:
    target = milvus_index.Target(settings, index.manifest)  # type: ignore[attr-defined]
    name = getattr(target, collection)
    rows = target.call("query", name, filter=f'doc_key == "{key}"', output_fields=["count(*)"])
    return int(rows[0]["count(*)"])


@pytest.mark.slow
def test_plumbing_matches_the_embedded_index_and_follows_add_and_remove(
        milvus_base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake embedder: Milvus answers the dense and BM25 questions like the local index."""
    base = milvus_base / "fake"
    shutil.copytree(SEEDS, base / "seeds")
    local = Settings(model="fake-hashing", seeds_dir=base / "seeds", index_dir=base / "index",
                     spacy="none")
    remote = local.with_overrides(backend="milvus")
    embedded, milvus = Pipeline(local, HashingEmbedder()), Pipeline(remote, HashingEmbedder())
    index = milvus.index
    assert isinstance(index.vectors, MilvusVectors)
    assert isinstance(index.chunk_lexical, MilvusLexical)
    assert (base / "index" / "milvus.db").exists()  # Milvus Lite under the index folder
    reference = embedded.index
    question = "When will the US military transition to an advisory role in Iraq?"
    vector = HashingEmbedder().embed([question])[0]
    ids_local = reference.search_chunks(vector, 5)[1]
    scores, ids = index.search_chunks(vector, 5)
    assert ids.tolist() == ids_local.tolist()
    np.testing.assert_allclose(scores, reference.chunk_vectors(ids) @ vector, atol=1e-5)
    terms = Query.of(question).terms
    weighted = {t: (0.5 if i % 2 else 1.0) for i, t in enumerate(terms)}
    # Milvus's own BM25 finds the same matches (positive scores, best first, whatever sign
    # Milvus Lite reports); its values differ (per-segment statistics), so qa rescores
    found, raw = index.chunk_lexical.milvus_scores(terms)
    theirs = reference.chunk_scores(terms)
    assert sorted(found.tolist()) == np.flatnonzero(theirs > 0).tolist()
    assert (raw > 0).all() and (np.diff(raw) <= 0).all()
    assert np.corrcoef(raw, theirs[found])[0, 1] > 0.95
    np.testing.assert_allclose(index.chunk_scores(weighted), reference.chunk_scores(weighted),
                               rtol=1e-6)
    for k in (3, len(index.chunks)):  # Milvus's matches ranked by qa's BM25, then the rest
        np.testing.assert_array_equal(
            index.chunk_top(weighted, k),
            np.argsort(-reference.chunk_scores(weighted), kind="stable")[:k])
    rows = np.array([5, 1, 9, 1, 30, 0, 2])
    exact = reference.sentence_scores(weighted, rows)
    assert (exact > 0).sum() > 3
    np.testing.assert_allclose(index.sentence_scores(weighted, rows), exact, rtol=1e-6)
    monkeypatch.setattr(milvus_index, "LEXICAL_TOP", 3)  # more rows: a Milvus filter on them
    mine = index.sentence_scores(weighted, rows)
    assert mine[1] == mine[3] and 0 < (np.unique(rows[mine > 0])).size <= 3
    np.testing.assert_allclose(mine[mine > 0], exact[mine > 0], rtol=1e-6)

    monkeypatch.setattr(milvus_index, "LEXICAL_TOP", 1024)

    # add a document: Milvus gets its rows, the doc_ids filter is a Milvus expression
    other = base / "other.txt"
    other.write_text(OTHER, encoding="utf-8")
    before = milvus.index
    [added] = milvus.add_documents([other])
    index = milvus.index
    # a reader of the previous build never sees rows of documents it does not hold
    lamp = HashingEmbedder().embed(["Who first lit the lamp of the lighthouse?"])[0]
    assert set(before.search_chunks(lamp, 50)[1]) <= set(range(len(before.chunks)))
    assert len(before.chunk_scores(Query.of("lamp lighthouse keeper").terms)) == len(
        before.chunks)
    assert set(index.search_chunks(lamp, 50)[1]) == set(range(len(index.chunks)))
    key = doc_key(added.id, added.text_sha256)
    assert _milvus_rows(remote, index, "passages", key) == len(index.chunks_of({added.id}))
    hits = milvus.retrieve("Who first lit the lamp of the lighthouse?", 3, doc_ids=[added.id])
    assert hits and {h.chunk.doc_id for h in hits} == {added.id}
    hits = milvus.retrieve("Who first lit the lamp of the lighthouse?", 3)
    assert hits[0].chunk.doc_id == added.id

    # remove it: its rows leave Milvus, the article's stay
    milvus.remove_documents([added.id])
    index = milvus.index
    assert added.id not in index.documents
    assert _milvus_rows(remote, index, "passages", key) == 0
    assert _milvus_rows(remote, index, "sentences", key) == 0
    article = index.documents[ARTICLE.stem]
    assert _milvus_rows(remote, index, "passages", doc_key(article.id, article.text_sha256)) \
        == len(index.chunks)

    # a fresh client (as in a new process) finds the collections released, loads them
    milvus_index.close_clients()
    fresh = Pipeline(remote, HashingEmbedder())
    assert fresh.retrieve(question, 3)[0].chunk.id == embedded.retrieve(question, 3)[0].chunk.id


@pytest.fixture(scope="module")
def milvus_pipeline(milvus_base: Path) -> Pipeline:
    """The real model, the article indexed into Milvus Lite (built once per module)."""
    settings = Settings(seeds_dir=milvus_base / "seeds", index_dir=milvus_base / "index",
                        backend="milvus")
    pipeline = Pipeline(settings)
    pipeline.index  # noqa: B018 - build now
    return pipeline


@pytest.mark.slow
def test_answers_cite_exact_offsets_of_the_file(milvus_pipeline: Pipeline) -> None:
    assert isinstance(milvus_pipeline.index.vectors, MilvusVectors)
    source = ARTICLE.read_text(encoding="utf-8")
    answered = 0
    for question in ("On what day of the week did U.S. and Iraqi officials meet at the Pentagon?",
                     "According to Kadhimi, what are the Iraqis now ready to do?",
                     "Are the overall US troop numbers in Iraq likely to change much?"):
        answer = milvus_pipeline.ask(question)
        for citation in answer.citations:
            assert citation.doc_id == ARTICLE.stem
            assert source[citation.quote.start:citation.quote.end] == citation.quote.text
        answered += not answer.abstained
    assert answered == 3
    answer = milvus_pipeline.ask("On what day of the week did U.S. and Iraqi officials meet "
                                 "at the Pentagon?")
    assert "Thursday" in answer.text
    assert milvus_pipeline.ask("What is the boiling point of mercury on Jupiter?").abstained


@pytest.mark.slow
def test_retrieval_agrees_with_the_embedded_backend(milvus_pipeline: Pipeline,
                                                    real_pipeline: Pipeline) -> None:
    questions = [json.loads(line)["question"] for line in
                 ARTICLE_QA.read_text(encoding="utf-8").splitlines() if line.strip()][:40]
    same_top = 0
    for question in questions:
        mine = milvus_pipeline.retrieve(question, 5)
        theirs = real_pipeline.retrieve(question, 5)
        same_top += mine[0].chunk.id == theirs[0].chunk.id
        assert {h.chunk.id for h in mine[:3]} & {h.chunk.id for h in theirs[:3]}
    assert same_top >= 0.9 * len(questions)


@pytest.mark.slow
def test_eval_on_the_article_test_set_matches_the_default(
        milvus_pipeline: Pipeline, real_pipeline: Pipeline, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    metrics = {}
    for backend, pipeline in (("embedded", real_pipeline), ("milvus", milvus_pipeline)):
        out = tmp_path / f"{backend}.json"
        code = cli.main(["eval", str(ARTICLE_QA), "--backend", backend,
                         "--seeds", str(pipeline.settings.seeds_dir),
                         "--index", str(pipeline.settings.index_dir),
                         "--metrics-out", str(out)])
        assert code == 0, capsys.readouterr().err
        metrics[backend] = json.loads(out.read_text(encoding="utf-8"))
    a, b = metrics["embedded"], metrics["milvus"]
    assert a["questions"] == b["questions"] == 119 and a["errors"] == b["errors"] == 0
    for name in ("hit@1", "mrr", "sentence_hit@1", "answer_contains_gold",
                 "citation_supports_gold", "abstention_f1"):  # fractions
        assert abs(a[name] - b[name]) <= 0.05, (name, a[name], b[name])
    assert abs(a["f1"] - b["f1"]) <= 5.0  # SQuAD F1, in percent
    assert b["citation_exact"] == 1.0


class CountingEmbedder(HashingEmbedder):
    texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        CountingEmbedder.texts += len(texts)
        return super().embed(texts)


@pytest.mark.slow
def test_an_embedded_index_moves_to_milvus_without_embedding_again(milvus_base: Path) -> None:
    base = milvus_base / "switch"
    shutil.copytree(SEEDS, base / "seeds")
    local = Settings(model="fake-hashing", seeds_dir=base / "seeds", index_dir=base / "index",
                     spacy="none")
    Pipeline(local, CountingEmbedder()).index  # noqa: B018 - the embedded build
    embedded = CountingEmbedder.texts
    assert embedded > 0
    remote = local.with_overrides(backend="milvus", milvus_uri=str(base / "elsewhere.db"),
                                  milvus_collection="other_prefix")
    index = Pipeline(remote, CountingEmbedder()).index  # stale for Milvus: copies, no model
    assert isinstance(index.vectors, MilvusVectors)
    assert CountingEmbedder.texts == embedded
    assert (base / "elsewhere.db").exists()
    target = milvus_index.Target(remote, index.manifest)
    assert target.passages.startswith("other_prefix_")
