"""The linguistic layer's parallel annotation: a large build's sentences (batched across
documents) are analysed by this process and helper processes (JSON lines, nothing pickled),
with the same result as one process; helpers stop when the build ends, and a helper that dies
is replaced by this process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa import nlp
from qa.config import Settings, load_settings, spacy_processes
from qa.errors import BadSetting
from qa.pipeline import Pipeline
from tests.conftest import HashingEmbedder

DOCS = Path(__file__).resolve().parents[1] / "eval" / "docs"


def test_split_keeps_order_and_balances_characters() -> None:
    texts = [f"{i} " + "x" * (i % 7) * 10 for i in range(101)]
    parts = nlp._split(texts, 3)
    assert [t for part in parts for t in part] == texts  # contiguous, in order
    sizes = [sum(map(len, part)) for part in parts]
    assert max(sizes) - min(sizes) <= 2 * max(map(len, texts))
    assert nlp._split(["only"], 2) == [["only"], []]


class _FakeHelper:
    """A helper process that finds no mentions, recording what it was sent."""

    def __init__(self, events: list[str]) -> None:
        self.events, self.part = events, []

    def send(self, texts: list[str]) -> bool:
        self.events.append(f"sent {len(texts)}")
        self.part = texts
        return True

    def receive(self) -> list[list[list[object]]]:
        return [[] for _ in self.part]

    def close(self) -> None:
        self.events.append("closed")


def _fake_start(monkeypatch: pytest.MonkeyPatch, load: object = None) -> list[str]:
    """Helpers and this process's pipeline replaced by fakes that log what happens."""
    events: list[str] = []

    def start(name: str, count: int) -> list[_FakeHelper]:
        events.append(f"started {count}")
        return [_FakeHelper(events) for _ in range(count)]

    def pipeline(self: nlp.SpacyAnalyzer) -> object:
        events.append("loaded here")
        if isinstance(load, Exception):
            raise load
        return None

    def annotate(self: nlp.SpacyAnalyzer, texts: list[str]) -> list[list[object]]:
        events.append(f"annotated here {len(texts)}")
        return [[] for _ in texts]

    monkeypatch.setattr(nlp, "_start_helpers", start)
    monkeypatch.setattr(nlp.SpacyAnalyzer, "nlp", pipeline)
    monkeypatch.setattr(nlp.SpacyAnalyzer, "_annotate", annotate)
    monkeypatch.setattr(nlp, "PARALLEL_START", 8)
    monkeypatch.setattr(nlp, "PARALLEL_MIN", 4)
    return events


def test_helpers_load_while_this_process_loads_and_share_the_first_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The helpers start before this process loads its pipeline (the loads run side by side,
    not one after the other) and take their part of the very first call."""
    events = _fake_start(monkeypatch)
    analyzer = nlp.SpacyAnalyzer(processes=2)
    texts = [f"Sentence {i}." for i in range(8)]
    assert analyzer.passages(texts) == [[] for _ in texts]
    assert events == ["started 1", "loaded here", "sent 4", "annotated here 4"]
    analyzer.close()
    assert events[-1] == "closed"
    events.clear()
    assert nlp.SpacyAnalyzer(processes=2).passages(texts[:7]) == [[]] * 7  # small: alone
    assert events == ["annotated here 7"]


def test_a_pipeline_that_cannot_load_stops_the_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _fake_start(monkeypatch, load=nlp.ModelError("spaCy pipeline 'x' is not installed"))
    analyzer = nlp.SpacyAnalyzer(processes=3)
    with pytest.raises(nlp.ModelError, match="not installed"):
        analyzer.passages([f"Sentence {i}." for i in range(8)])
    assert events == ["started 2", "loaded here", "closed", "closed"]
    assert analyzer._helpers is None


def test_spacy_processes_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_SPACY_PROCESSES", "3")
    assert spacy_processes(load_settings()) == 3
    assert 1 <= spacy_processes(Settings()) <= 4  # 0: one per usable core, at most 4
    with pytest.raises(BadSetting, match="spacy_processes"):
        Settings(spacy_processes=-1)
    monkeypatch.setenv("QA_SPACY_PROCESSES", "two")
    with pytest.raises(BadSetting, match="QA_SPACY_PROCESSES must be an integer"):
        load_settings()


def _build(tmp_path: Path, name: str, processes: int) -> tuple[Pipeline, str]:
    seeds = tmp_path / f"seeds-{name}"
    for kind in ("manual", "report", "story"):  # three documents: batches span documents
        shutil.copytree(DOCS / kind, seeds, dirs_exist_ok=True)
    settings = Settings(model="fake-hashing", seeds_dir=seeds, index_dir=tmp_path / name,
                        spacy_processes=processes)
    pipeline = Pipeline(settings, HashingEmbedder())
    index = pipeline.index
    return pipeline, (index.folder / "annotations.jsonl").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_build_in_two_processes_annotates_as_one_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[nlp._Helper] = []
    real_start = nlp._start_helpers

    def start(name: str, count: int) -> list[nlp._Helper]:
        started.extend(real_start(name, count))
        return started

    monkeypatch.setattr(nlp, "_start_helpers", start)
    shared: list[int] = []
    real_shared = nlp.SpacyAnalyzer._shared

    def share(self: nlp.SpacyAnalyzer, texts: list[str], helpers: list[nlp._Helper]) -> list:
        shared.append(len(texts))
        return real_shared(self, texts, helpers)

    monkeypatch.setattr(nlp.SpacyAnalyzer, "_shared", share)
    monkeypatch.setattr(nlp, "PARALLEL_START", 64)  # 333 sentences in three documents
    monkeypatch.setattr("qa.store.ANNOTATE_BATCH", 64)  # each over 64 sentences: per...
    _, one = _build(tmp_path, "one", 1)
    assert not started and not shared
    pipeline, two = _build(tmp_path, "two", 2)
    assert len(started) == 1
    assert shared and set(shared[:-1]) == {64}  # ...document, batches would end short
    assert two == one
    assert one.count("\n") == 333 and '"ORG"' in one and '"NP"' in one
    assert started[0].process.poll() == 0  # stopped when the build ended
    assert pipeline.analyzer._helpers is None  # type: ignore[attr-defined]


@pytest.mark.slow
def test_a_helper_that_dies_is_replaced_by_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlp, "PARALLEL_START", 4)
    texts = [f"Ada Lowe opened the museum in {1900 + i} in Paris." for i in range(40)]
    alone = nlp.SpacyAnalyzer(processes=1).passages(texts)
    analyzer = nlp.SpacyAnalyzer(processes=2)
    try:
        assert analyzer.passages(texts) == alone  # starts the helper, shares the call
        helpers = analyzer._helpers
        assert helpers and len(helpers) == 1
        assert analyzer.passages(texts) == alone  # shared with the helper
        helpers[0].process.kill()
        helpers[0].process.wait()
        assert analyzer.passages(texts) == alone  # its part done here instead
        assert analyzer._helpers == []
        assert analyzer.passages(texts) == alone
    finally:
        analyzer.close()
    assert analyzer._helpers is None
    labels = {m.label for m in alone[0]}
    assert {"PERSON", "DATE", "GPE"} <= labels


@pytest.mark.slow
def test_only_the_building_thread_stops_its_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A load that ends in another thread (a server's request) leaves a running build's
    helpers alone; the build's own thread stops them."""
    import threading

    monkeypatch.setattr(nlp, "PARALLEL_START", 4)
    analyzer = nlp.SpacyAnalyzer(processes=2)
    texts = [f"The bridge opened in {1900 + i}." for i in range(8)]
    try:
        analyzer.passages(texts)
        helpers = analyzer._helpers
        assert helpers
        other = threading.Thread(target=analyzer.close)
        other.start()
        other.join()
        assert analyzer._helpers is helpers and helpers[0].process.poll() is None
    finally:
        analyzer.close()
    assert analyzer._helpers is None and helpers[0].process.poll() == 0


@pytest.mark.slow
def test_numpy_products_find_what_spacys_own_pipeline_finds() -> None:
    """`load_spacy` swaps thinc's BLIS products for numpy's (faster here): the entities,
    noun chunks and parses of real documents' sentences stay those of the stock pipeline."""
    import spacy
    from thinc.api import NumpyOps

    ours = nlp.load_spacy(nlp.DEFAULT_SPACY)
    stock = spacy.load(nlp.DEFAULT_SPACY, exclude=["senter"])
    swapped = [n for _, p in ours.pipeline if getattr(p, "model", None) is not None
               for n in p.model.walk()]
    assert swapped and all(isinstance(n.ops, NumpyOps) and not n.ops.use_blis for n in swapped)
    assert all(n.ops.use_blis for _, p in stock.pipeline if getattr(p, "model", None)
               is not None for n in p.model.walk())
    texts = [line for kind in ("manual", "report", "story")
             for path in sorted((DOCS / kind).iterdir())
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(texts) > 100

    def found(pipeline: object, text: str) -> object:
        doc = pipeline(text)  # type: ignore[operator]
        return ([(e.label_, e.start_char, e.end_char) for e in doc.ents],
                [(c.start_char, c.end_char) for c in doc.noun_chunks],
                [(t.dep_, t.head.i, t.tag_, t.lemma_) for t in doc])

    with nlp._one_blas_thread():
        assert [found(ours, t) for t in texts] == [found(stock, t) for t in texts]


@pytest.mark.slow
def test_a_passage_lemmatizes_only_its_mentions_heads() -> None:
    """A build's analysis asks the lemmatizer for the head of each mention, not for every
    word of every sentence; the heads' lemmas are those the whole pipeline gives."""
    texts = [line for kind in ("manual", "report", "story")
             for path in sorted((DOCS / kind).iterdir())
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    analyzer = nlp.SpacyAnalyzer(processes=1)
    pipeline = analyzer.nlp()
    lemmatizer = pipeline.get_pipe("lemmatizer")
    asked: list[str] = []
    real = lemmatizer.lemmatize

    def counting(token: object) -> list[str]:
        asked.append(str(token))
        return real(token)  # type: ignore[no-any-return]

    lemmatizer.lemmatize = counting
    try:
        found = analyzer.passages(texts)
    finally:
        lemmatizer.lemmatize = real
    mentions = sum(len(m) for m in found)
    words = sum(len(pipeline.make_doc(t)) for t in texts)
    assert mentions > 300 and len(asked) <= mentions < words / 2
    with nlp._one_blas_thread():
        whole = [[(e.label_, e.start_char, e.end_char, e.root.lemma_.lower()) for e in doc.ents]
                 + [("NP", c.start_char, c.end_char, c.root.lemma_.lower())
                    for c in doc.noun_chunks] for doc in pipeline.pipe(texts)]
    assert [[(m.label, m.start, m.end, m.head) for m in ms] for ms in found] == whole
    assert any(m.head != m.text.lower() for ms in found for m in ms if m.label == "NP")


def test_without_spacy_a_lone_function_word_is_not_a_question() -> None:
    """With QA_SPACY=none, "a" had a subject (any word but "what" or "who"): it was answered,
    and as an earlier turn it made the next question a follow-up of that answer. spaCy
    reads it as a determiner alone; so does the fallback now."""
    from qa.errors import BadQuestion
    from qa.pipeline import check_question

    analyzer = nlp.NullAnalyzer()
    for text in ("a", "the?", "of the"):
        with pytest.raises(BadQuestion, match="is not a question"):
            check_question(text, analyzer)
    assert check_question("What is the museum?", analyzer) == "What is the museum?"
