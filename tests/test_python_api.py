"""The library's own edge: `Settings`, `Pipeline.ask/retrieve` and the document calls, used
from Python with wrong types, get a one-line QAError, never a TypeError from deep inside."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import BadQuestion, BadSetting, Pipeline, Settings, Turn, load_settings

ARTICLE_QUESTION = "Who is the Pentagon spokesman?"


@pytest.mark.parametrize(("values", "message"), [
    ({"k": "5"}, "k must be an integer, got '5'"),
    ({"k": True}, "k must be an integer, got True"),
    ({"chunk_chars": None}, "chunk_chars must be an integer, got None"),
    ({"hnsw_above": 1.5}, "hnsw_above must be an integer, got 1.5"),
    ({"model": None}, "model must be a string, got None"),
    ({"backend": 1}, "backend must be a string, got 1"),
    ({"refresh_seconds": "1"}, "refresh_seconds must be a number, got '1'"),
    ({"index_dir": None}, "index_dir must be a folder path, got None"),
    ({"seeds_dir": ""}, "seeds_dir must be a folder path, got ''"),
    ({"allowed_hosts": "localhost"}, "allowed_hosts must be a tuple of host names"),
    ({"allowed_hosts": ("a", 5)}, "allowed_hosts must be a tuple of host names"),
])
def test_settings_of_the_wrong_type_are_a_bad_setting(values: dict, message: str) -> None:
    with pytest.raises(BadSetting) as err:
        Settings(**values)
    assert message in str(err.value)


@pytest.mark.parametrize("name", ["index_dir", "seeds_dir", "data_dir", "cache_dir"])
def test_load_settings_refuses_an_empty_folder(name: str) -> None:
    """`load_settings(index_dir="")` (a value read from an empty variable) was the current
    folder, where Settings(index_dir="") is refused: refused the same way."""
    with pytest.raises(BadSetting, match=f"{name} must be a folder path, got ''"):
        load_settings(**{name: ""})


def test_settings_take_folders_as_strings(tmp_path: Path) -> None:
    s = Settings(index_dir=str(tmp_path / "i"), seeds_dir=str(tmp_path), data_dir=str(tmp_path))
    assert s.index_dir == tmp_path / "i" and isinstance(s.seeds_dir, Path)
    assert s.documents_dir == tmp_path
    assert Settings(allowed_hosts=["a.example"]).allowed_hosts == ("a.example",)
    import numpy as np

    assert Settings(k=np.int64(3)).k == 3 and type(Settings(k=np.int64(3)).k) is int
    with pytest.raises(BadSetting, match="k must be an integer, got '3'"):
        load_settings(k="3")


@pytest.mark.parametrize(("history", "message"), [
    ("Who is the Pentagon spokesman?", "history must be a list of earlier questions or Turns"),
    (5, "history must be a list of earlier questions or Turns, got int"),
    ([None], "history turn 1 must be a question or a Turn, got NoneType"),
    (["Who?", {"question": "x"}], "history turn 2 must be a question or a Turn, got dict"),
    ([Turn(None)], "history turn 1 must be text"),  # type: ignore[arg-type]
    ([Turn("  ")], "history turn 1 is empty"),
    (["x" * 3000], "history turn 1 is too long"),
    ([Turn("Who?", 5)], "the answer of history turn 1 must be text"),  # type: ignore[arg-type]
])
def test_bad_history_is_a_bad_question(fake_pipeline: Pipeline, history: object,
                                       message: str) -> None:
    with pytest.raises(BadQuestion) as err:
        fake_pipeline.ask("When did he say it?", history)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_history_none_and_turns_with_answers_are_fine(fake_pipeline: Pipeline) -> None:
    assert fake_pipeline.ask(ARTICLE_QUESTION, None).question == ARTICLE_QUESTION  # type: ignore[arg-type]
    answer = fake_pipeline.ask("What did he say?", [" Who is the Pentagon spokesman? ",
                                                    Turn(ARTICLE_QUESTION, "John Kirby.")])
    assert answer.question == "What did he say?"


@pytest.mark.parametrize(("said", "kept"), [
    (None, None), ("", None), ("   ", None), ("...", None), ("…", None), ("—", None),
    ("?", None), ("N/A", None), ("[…]", None), ("5", "5"), ("John Kirby.", "John Kirby."),
    ("Kirby", "Kirby")])
def test_an_earlier_answer_that_says_nothing_is_no_answer(said: str | None,
                                                          kept: str | None) -> None:
    """A client that has no earlier reply sends a placeholder ("", "...", "N/A"): it was
    taken as what was said, so a follow-up was searched with the earlier question and
    nothing, never with the answer qa would give it. An answer without a word (no digit, no
    two letters in a row) is read as no answer (None): qa answers that question again."""
    from qa.pipeline import check_history

    assert check_history([Turn(ARTICLE_QUESTION, said)]) == [Turn(ARTICLE_QUESTION, kept)]


@pytest.mark.parametrize("k", [0, -1, "3", 2.0, 21])
def test_k_out_of_range_is_refused_not_replaced_by_the_default(fake_pipeline: Pipeline,
                                                               k: object) -> None:
    with pytest.raises(BadQuestion, match="k must be an integer from 1 to 20"):
        fake_pipeline.ask(ARTICLE_QUESTION, k=k)  # type: ignore[arg-type]
    with pytest.raises(BadQuestion, match="k must be an integer from 1 to 20"):
        fake_pipeline.retrieve(ARTICLE_QUESTION, k=k)  # type: ignore[arg-type]


def test_k_as_a_numpy_integer_is_an_integer(fake_pipeline: Pipeline) -> None:
    """`Settings(k=np.int64(3))` is taken, but `retrieve(q, k=np.int64(3))` (k computed with
    numpy, or read from a DataFrame) was refused: "k must be an integer from 1 to 20, got
    np.int64(3)", of an integer from 1 to 20."""
    import numpy as np

    assert len(fake_pipeline.retrieve(ARTICLE_QUESTION, k=np.int64(3))) == 3  # type: ignore[arg-type]
    assert len(fake_pipeline.ask(ARTICLE_QUESTION, k=np.int32(2)).passages) == 2  # type: ignore[arg-type]
    with pytest.raises(BadQuestion, match="k must be an integer from 1 to 20, got 0"):
        fake_pipeline.retrieve(ARTICLE_QUESTION, k=np.int64(0))  # type: ignore[arg-type]


def test_doc_ids_that_are_not_a_list_are_a_bad_question(fake_pipeline: Pipeline) -> None:
    with pytest.raises(BadQuestion, match="doc_ids must be a list of document ids, got 5"):
        fake_pipeline.retrieve(ARTICLE_QUESTION, doc_ids=5)  # type: ignore[arg-type]


def test_one_path_or_one_id_as_a_string_is_one_document(fake_pipeline: Pipeline,
                                                        tmp_path: Path) -> None:
    doc = tmp_path / "orchard.txt"
    doc.write_text("The orchard of Brindle grows forty kinds of apple. It opened in 1911.\n")
    added = fake_pipeline.add_documents(str(doc))
    assert [d.id for d in added] == ["orchard"]
    assert fake_pipeline.remove_documents("orchard") == ["orchard"]
    assert "orchard" not in fake_pipeline.index.documents


@pytest.mark.slow  # threads or an ANN build: over the fast tier's budget
def test_langchain_retriever_titles_come_from_the_index_its_hits_came_from(
        fake_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread removing a document between the search and the title lookup made
    `invoke` raise KeyError (seen with 3 threads asking during add/remove)."""
    from qa.langchain_retriever import QARetriever

    doc = tmp_path / "orchard.txt"
    doc.write_text("The orchard of Brindle grows forty kinds of apple. It opened in 1911.\n")
    fake_pipeline.add_documents([doc])
    search = fake_pipeline.retrieve

    def search_then_remove(*args: object, **kwargs: object) -> object:
        hits = search(*args, **kwargs)  # type: ignore[arg-type]
        fake_pipeline.remove_documents(["orchard"])  # as another thread would, meanwhile
        return hits

    monkeypatch.setattr(fake_pipeline, "retrieve", search_then_remove)
    found = QARetriever(pipeline=fake_pipeline, k=3).invoke("orchard of Brindle apple kinds")
    assert found[0].metadata["doc_id"] == "orchard"
    assert found[0].metadata["title"].startswith("The orchard of Brindle")
    assert "orchard" not in fake_pipeline.index.documents


def test_the_first_document_can_be_added_to_an_empty_library(tmp_path: Path) -> None:
    """With an empty seeds folder and no index, add_documents raised 'no documents to
    index' (it built the index from the seeds before storing the upload): a new user's
    library could never start."""
    from tests.conftest import HashingEmbedder

    (tmp_path / "seeds").mkdir()
    pipeline = Pipeline(Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                                 index_dir=tmp_path / "index", spacy="none"),
                        HashingEmbedder())
    doc = tmp_path / "orchard.txt"
    doc.write_text("The orchard of Brindle grows forty kinds of apple. It opened in 1911.\n")
    assert [d.id for d in pipeline.add_documents([doc])] == ["orchard"]
    hit = pipeline.retrieve("orchard apple kinds", k=1)[0]
    assert pipeline.index.source("orchard")[hit.sentence.start:hit.sentence.end] == \
        hit.sentence.text
    # another index beside it has its own data folder (`other-data`, not this one's `data`):
    # an empty library, which finds nothing
    assert Pipeline(Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                             index_dir=tmp_path / "other", spacy="none"),
                    HashingEmbedder()).retrieve("apple") == []


@pytest.mark.parametrize(("call", "message"), [
    (lambda p, f: p.add_documents(None), "paths must be a list of file paths, got None"),
    (lambda p, f: p.add_documents([5]), "paths must be a list of file paths, got [5]"),
    (lambda p, f: p.add_documents([f, f], names=["a.txt"]),
     "names must give one name per path: 1 names for 2 paths"),
    (lambda p, f: p.remove_documents(None), "doc_ids must be a list of document ids, got None"),
    (lambda p, f: p.remove_documents([5]), "doc_ids must be a list of document ids, got [5]"),
])
def test_document_calls_with_the_wrong_types_are_one_line_errors(
        fake_pipeline: Pipeline, tmp_path: Path, call: object, message: str) -> None:
    """These raised TypeError / IndexError from inside (names shorter than paths: an
    IndexError after the first file was already checked)."""
    from qa import QAError

    doc = tmp_path / "orchard.txt"
    doc.write_text("The orchard of Brindle grows forty kinds of apple. It opened in 1911.\n")
    with pytest.raises(QAError) as err:
        call(fake_pipeline, doc)  # type: ignore[operator]
    assert str(err.value) == message


@pytest.mark.slow  # (kept out of the fast tier: under 15 s)
@pytest.mark.parametrize("k", [0, 21, "3"])
def test_langchain_retriever_checks_k_when_made(k: object) -> None:
    """QARetriever(k=0) was accepted and returned the default 5 passages; k=50 or '3'
    failed only at the first query."""
    from pydantic import ValidationError

    from qa.langchain_retriever import QARetriever

    with pytest.raises(ValidationError):
        QARetriever(k=k)


@pytest.mark.slow  # (langchain: kept out of the fast tier)
@pytest.mark.parametrize("pipeline", ["index", Settings(), 5])
def test_langchain_retriever_checks_its_pipeline_when_made(pipeline: object) -> None:
    """QARetriever(pipeline="index") was accepted and failed at the first query with
    AttributeError: 'str' object has no attribute 'pinned'."""
    from pydantic import ValidationError

    from qa.langchain_retriever import QARetriever

    with pytest.raises(ValidationError, match="pipeline must be a qa Pipeline"):
        QARetriever(pipeline=pipeline)


def test_a_seeds_folder_that_is_a_file_is_named_as_such(tmp_path: Path) -> None:
    """It was reported as 'does not exist', sending the user looking for a missing folder."""
    from qa.errors import SeedError
    from tests.conftest import HashingEmbedder

    (tmp_path / "seeds").write_text("not a folder")
    pipeline = Pipeline(Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                                 index_dir=tmp_path / "index", spacy="none"),
                        HashingEmbedder())
    with pytest.raises(SeedError, match=r"seeds folder '.*seeds' is not a folder$"):
        pipeline.retrieve("apple")


def test_an_empty_doc_ids_list_is_refused_not_widened_to_every_document(
        fake_pipeline: Pipeline) -> None:
    """`doc_ids=[]` searched every document, as if no restriction had been given: a client
    that filtered its selection down to nothing got answers from documents it had excluded."""
    message = "doc_ids is empty: name at least one document, or leave doc_ids out"
    with pytest.raises(BadQuestion, match=message):
        fake_pipeline.retrieve(ARTICLE_QUESTION, doc_ids=[])
    with pytest.raises(BadQuestion, match=message):
        fake_pipeline.ask(ARTICLE_QUESTION, doc_ids=[])
    assert fake_pipeline.retrieve(ARTICLE_QUESTION, doc_ids=None)  # None: every document


def test_an_empty_doc_ids_list_over_http_is_422_with_one_line(fake_pipeline: Pipeline) -> None:
    from fastapi.testclient import TestClient

    from qa.api import create_api

    with TestClient(create_api(fake_pipeline), base_url="http://127.0.0.1:7860") as client:
        for route in ("/api/ask", "/api/retrieve"):
            r = client.post(route, json={"question": ARTICLE_QUESTION, "doc_ids": []})
            assert r.status_code == 422, r.text
            assert r.json()["detail"].startswith("doc_ids is empty")
            r = client.post(route, json={"question": ARTICLE_QUESTION, "doc_ids": None})
            assert r.status_code == 200, r.text


@pytest.mark.parametrize("earlier", ["?", "👍", "...", "a"])
def test_an_earlier_turn_that_asked_nothing_does_not_refuse_the_question(
        fake_pipeline: Pipeline, earlier: str) -> None:
    """A chat whose history holds "?" or "👍" (a /v1 client keeps every message) had every
    later follow-up refused with "'👍' is not a question" (400 on /v1, 422 on /api/ask, a
    tool error over MCP): the earlier turn, which has no answer, was asked again to find
    what the conversation was about. Such a turn adds nothing: the question is answered
    as if it came first."""
    from fastapi.testclient import TestClient

    from qa.api import create_api

    question = "What did he say next?"
    alone = fake_pipeline.ask(question)
    assert fake_pipeline.ask(question, [earlier]).text == alone.text
    web = TestClient(create_api(fake_pipeline), base_url="http://127.0.0.1:7860")
    r = web.post("/v1/chat/completions", json={"model": "qa", "messages": [
        {"role": "user", "content": earlier}, {"role": "user", "content": question}]})
    assert r.status_code == 200, r.text


@pytest.mark.slow  # (langchain: kept out of the fast tier)
def test_langchain_retriever_takes_k_and_doc_ids_per_call(fake_pipeline: Pipeline,
                                                          tmp_path: Path) -> None:
    """LangChain's own vector-store retriever takes search settings per call
    (`retriever.invoke(question, k=2)`); QARetriever dropped them without a word (LangChain
    passes a retriever only the keywords its `_get_relevant_documents` names) and returned
    its own k passages from every document. Now `k` and `doc_ids` (the document filter of
    the CLI's --doc, the HTTP API and MCP) are taken per call, sync and async, and when made;
    a keyword it does not take is refused, not ignored."""
    import asyncio

    from qa.langchain_retriever import QARetriever

    doc = tmp_path / "orchard.txt"
    doc.write_text("The orchard of Brindle grows forty kinds of apple. It opened in 1911.\n")
    fake_pipeline.add_documents([doc])
    question = "orchard of Brindle apple kinds"
    retriever = QARetriever(pipeline=fake_pipeline, k=4)
    assert len(retriever.invoke(question)) == 4
    assert len(retriever.invoke(question, k=1)) == 1
    assert len(asyncio.run(retriever.ainvoke(question, k=2))) == 2
    assert len(retriever.batch([question, question], k=3)[1]) == 3
    only = retriever.invoke(question, doc_ids=["orchard"])
    assert only and {d.metadata["doc_id"] for d in only} == {"orchard"}
    made = QARetriever(pipeline=fake_pipeline, doc_ids=["orchard"])
    assert {d.metadata["doc_id"] for d in asyncio.run(made.ainvoke(question))} == {"orchard"}
    with pytest.raises(BadQuestion, match="k must be an integer from 1 to 20, got 0"):
        retriever.invoke(question, k=0)
    with pytest.raises(BadQuestion, match="unknown document id 'nope'"):
        retriever.invoke(question, doc_ids=["nope"])
    with pytest.raises(TypeError, match="top_k"):
        retriever.invoke(question, top_k=2)


@pytest.mark.slow  # (langchain: kept out of the fast tier)
def test_langchain_documents_of_a_pdf_say_their_page(fake_pipeline: Pipeline) -> None:
    """The HTTP API, the OpenAI API, MCP and the CLI cite a PDF by page; a LangChain
    Document of a PDF passage said only its character offsets in the extracted text, which
    no reader can find in the PDF. Its metadata has `page` (1-based, of the passage's start
    and of its best sentence's), as LangChain's own PDF loaders set it; a document without
    pages has none."""
    from qa.langchain_retriever import QARetriever

    root = Path(__file__).resolve().parent
    fake_pipeline.add_documents([root / "data" / "docs" / "water-report.pdf"])
    document = fake_pipeline.index.documents["water-report"]
    assert len(document.pages) > 1
    found = QARetriever(pipeline=fake_pipeline, k=10).invoke(
        "water quality report", doc_ids=["water-report"])
    assert found
    for doc in found:
        meta = doc.metadata
        assert meta["page"] == document.page_of(meta["start"]) and meta["page"] >= 1
        assert meta["sentence"]["page"] == document.page_of(meta["sentence"]["start"])
    assert {doc.metadata["page"] for doc in found} != {1}  # not page 1 for all
    article = QARetriever(pipeline=fake_pipeline, k=1).invoke(
        ARTICLE_QUESTION, doc_ids=["politico-us-iraq-advisory-transition"])
    assert "page" not in article[0].metadata and "page" not in article[0].metadata["sentence"]


def _readme_python(heading: str) -> str:
    """The first ```python block under `### heading` of the README."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n### {heading}\n", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


@pytest.mark.slow  # (langchain: kept out of the fast tier)
def test_the_readme_python_examples_run(fake_pipeline: Pipeline, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python and LangChain examples, copied as they are, stopped with
    NameError: `Path` was never imported, and `format_docs` and `RunnablePassthrough` were
    used but not defined or imported (only the prompt and the model are the reader's own)."""
    import dataclasses

    from langchain_core.runnables import RunnableLambda

    import qa
    import qa.langchain_retriever
    from tests.conftest import HashingEmbedder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "lease.txt").write_text("The lease was signed by Ada Brown in 2019.\n",
                                                 encoding="utf-8")
    monkeypatch.setattr(qa, "default_pipeline", lambda: fake_pipeline)
    monkeypatch.setattr(qa.langchain_retriever, "default_pipeline", lambda: fake_pipeline)
    monkeypatch.setattr(qa, "Pipeline", lambda settings: Pipeline(dataclasses.replace(
        settings, model="fake-hashing", spacy="none"), HashingEmbedder()))
    exec(compile(_readme_python("Python"), "README.md (Python)", "exec"), {})
    seen: list[dict[str, str]] = []
    yours = {"prompt": RunnableLambda(lambda x: seen.append(x) or x),
             "llm": RunnableLambda(lambda x: x)}
    exec(compile(_readme_python("LangChain"), "README.md (LangChain)", "exec"), yours)
    yours["chain"].invoke("Who is the Pentagon spokesman?")
    assert "Pentagon" in seen[0]["context"] and seen[0]["question"] == ARTICLE_QUESTION
