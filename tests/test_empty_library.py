"""An empty library (every upload removed, or nothing added yet) is a state, not an error:
the last document can be removed through every edge, questions then say plainly that there
are no documents, the list is empty, the empty index loads again after a restart, and adding
a document afterwards works. Fake embedder, no model (fast)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qa import cli
from qa.config import Settings
from qa.documents_api import router
from qa.errors import BadQuestion
from qa.loaders.library import UnknownDocument
from qa.mcp_server import build_server
from qa.openai_api import openai_router
from qa.pipeline import EMPTY_LIBRARY, Pipeline
from tests.conftest import HashingEmbedder, cli_argv

ORCHARD = "The orchard of Brindle grows forty kinds of apple. It opened in 1911.\n"
QUESTION = "How many kinds of apple grow in the orchard?"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "seeds").mkdir()
    return Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                    index_dir=tmp_path / "index", spacy="none")


@pytest.fixture
def orchard(tmp_path: Path) -> Path:
    doc = tmp_path / "orchard.txt"
    doc.write_text(ORCHARD, encoding="utf-8")
    return doc


def _pipeline(settings: Settings) -> Pipeline:
    return Pipeline(settings, HashingEmbedder())


def test_the_last_document_can_be_removed_and_the_empty_library_persists(
        settings: Settings, orchard: Path) -> None:
    """It was refused: 'cannot remove every document: the index would be empty' (409)."""
    pipeline = _pipeline(settings)
    pipeline.add_documents([orchard])
    assert pipeline.remove_documents(["orchard"]) == ["orchard"]
    assert not pipeline.index.documents and pipeline.list_documents() == []
    answer = pipeline.ask(QUESTION)
    assert answer.text == EMPTY_LIBRARY and answer.abstained and not answer.citations
    assert pipeline.retrieve(QUESTION) == []
    with pytest.raises(BadQuestion, match="unknown document id 'orchard'"):
        pipeline.ask(QUESTION, doc_ids=["orchard"])

    restarted = _pipeline(settings)  # the empty index loads as it is, no rebuild
    assert restarted.list_documents() == [] and restarted.ask(QUESTION).text == EMPTY_LIBRARY
    assert [d.id for d in restarted.add_documents([orchard])] == ["orchard-2"]  # not reused
    hit = restarted.retrieve("orchard apple kinds", k=1)[0]
    assert hit.chunk.doc_id == "orchard-2"
    assert restarted.index.source("orchard-2")[hit.sentence.start:hit.sentence.end] == \
        hit.sentence.text


def test_a_new_empty_library_answers_that_it_is_empty(settings: Settings) -> None:
    """An empty seeds folder and no uploads: 'no documents to index' was an error."""
    pipeline = _pipeline(settings)
    assert pipeline.ask(QUESTION).text == EMPTY_LIBRARY
    assert pipeline.list_documents() == []


@pytest.mark.usefixtures("fake_cli")
def test_an_empty_library_s_ask_and_retrieve_say_why(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped --seeds: the first command said 'skipped .../seds: the seeds folder does
    not exist', but every 'qa ask' and 'qa retrieve' after it (the index fresh) said only
    that the library is empty, with no word of the folder ('qa list' said it). An empty
    library's ask and retrieve say on stderr, as list does, which files were skipped."""
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "seds",
                        index_dir=tmp_path / "index", spacy="none")
    for command in ("ask", "ask", "retrieve"):
        assert cli.main(cli_argv(settings, command, QUESTION)) == 0
        out, err = capsys.readouterr()
        assert EMPTY_LIBRARY in out or command == "retrieve"
        assert f"skipped {settings.seeds_dir}: the seeds folder does not exist" in err, err
    assert cli.main(cli_argv(settings, "ask", QUESTION, "--json")) == 0
    assert json.loads(capsys.readouterr().out)["text"] == EMPTY_LIBRARY


@pytest.mark.usefixtures("fake_cli")
def test_cli_empties_the_library(settings: Settings, orchard: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(cli_argv(settings, "add", str(orchard))) == 0
    capsys.readouterr()
    assert cli.main(cli_argv(settings, "remove", "orchard")) == 0
    out, err = capsys.readouterr()
    assert "removed orchard" in out and "error" not in err
    assert cli.main(cli_argv(settings, "list")) == 0
    out, err = capsys.readouterr()
    assert out == "" and "the library is empty" in err
    assert cli.main(cli_argv(settings, "list", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == []
    assert cli.main(cli_argv(settings, "ask", QUESTION)) == 0
    assert EMPTY_LIBRARY in capsys.readouterr().out
    assert cli.main(cli_argv(settings, "ask", QUESTION, "--json")) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["text"] == EMPTY_LIBRARY and said["abstained"] and said["citations"] == []
    assert cli.main(cli_argv(settings, "add", str(orchard))) == 0
    assert "added orchard" in capsys.readouterr().out


@pytest.mark.usefixtures("fake_cli")
def test_eval_refuses_an_empty_library(settings: Settings, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """All-zero metrics over no document would pass for a result: one line, exit 1."""
    testset = tmp_path / "t.jsonl"
    testset.write_text(json.dumps({"id": "1", "question": QUESTION, "answers": ["forty"]})
                       + "\n", encoding="utf-8")
    assert cli.main(cli_argv(settings, "eval", str(testset))) == 1
    err = capsys.readouterr().err
    assert "the library is empty" in err and "Traceback" not in err


def test_http_openai_and_mcp_on_an_empty_library(settings: Settings, orchard: Path) -> None:
    pipeline = _pipeline(settings)
    pipeline.add_documents([orchard])
    app = FastAPI()
    app.state.pipeline = pipeline
    app.include_router(router)
    app.include_router(openai_router(pipeline))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.delete("/api/documents/orchard")
        assert r.status_code == 200, r.text
        assert r.json() == {"removed": ["orchard"]}
        assert client.get("/api/documents").json()["documents"] == []
        r = client.post("/v1/chat/completions",
                        json={"messages": [{"role": "user", "content": QUESTION}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].startswith(EMPTY_LIBRARY)
        r = client.post("/api/documents", files={"file": ("orchard.txt", ORCHARD.encode())})
        assert r.status_code == 201, r.text
    pipeline.remove_documents(["orchard-2"])  # a removed id is never given again

    async def check() -> None:
        from mcp import Client

        async with Client(build_server(pipeline)) as mcp:
            said = (await mcp.call_tool("ask", {"question": QUESTION})).structured_content
            assert said is not None and said["text"] == EMPTY_LIBRARY
            listed: Any = (await mcp.call_tool("list_documents", {})).structured_content
            assert listed["documents"] == []

    anyio.run(check)


@pytest.mark.slow  # imports LangChain (~1 s): the fast tier stays under 15 s
def test_langchain_retriever_on_an_empty_library(settings: Settings) -> None:
    from qa.langchain_retriever import QARetriever

    assert QARetriever(pipeline=_pipeline(settings), k=3).invoke(QUESTION) == []


def test_the_web_chats_list_says_the_library_is_empty() -> None:
    from qa.ui import documents_html

    assert "No documents yet" in documents_html([])


@pytest.mark.usefixtures("fake_cli")
def test_add_works_without_a_seeds_folder(tmp_path: Path, orchard: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`qa add FILE --seeds <missing>` failed: "seeds folder ... does not exist"."""
    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "no-seeds",
                        index_dir=tmp_path / "index", spacy="none")
    assert cli.main(cli_argv(settings, "add", str(orchard))) == 0
    out, err = capsys.readouterr()
    assert "added orchard" in out and "error" not in err
    assert cli.main(cli_argv(settings, "ask", QUESTION, "--json")) == 0
    said = json.loads(capsys.readouterr().out)
    assert [c["doc_id"] for c in said["citations"]] == ["orchard"]
    assert cli.main(cli_argv(settings, "list")) == 0
    out, err = capsys.readouterr()
    assert out.startswith("orchard\t") and "the seeds folder does not exist" in err


def test_the_web_chat_removes_the_last_document_then_says_the_library_is_empty(
        settings: Settings, orchard: Path) -> None:
    from qa.ui import remove_document, respond

    pipeline = _pipeline(settings)
    pipeline.add_documents([orchard])
    assert "Removed orchard" in remove_document(pipeline, "orchard")
    *_, (messages, _) = respond(QUESTION, [], pipeline, delay=0)
    assert EMPTY_LIBRARY.split(":")[0] in messages[-1]["content"]
    assert "qa-error" not in messages[-1]["content"]


def test_the_last_upload_can_be_removed_beside_an_unreadable_seed(
        settings: Settings, orchard: Path) -> None:
    """A seeds folder holding only a file that cannot be read (here not UTF-8): the first
    upload builds the index, and removing it leaves an empty library, not an error. A
    rebuild that finds no readable file is still refused (the index it has stays)."""
    (settings.seeds_dir / "latin1.txt").write_bytes(b"Caf\xe9 au lait\n")
    pipeline = _pipeline(settings)
    assert [d.id for d in pipeline.add_documents([orchard])] == ["orchard"]
    assert pipeline.remove_documents(["orchard"]) == ["orchard"]
    assert not pipeline.index.documents and pipeline.ask(QUESTION).text == EMPTY_LIBRARY
    restarted = _pipeline(settings)
    assert not restarted.index.documents
    [problem] = restarted.problems()
    assert problem.file.endswith("latin1.txt") and "UTF-8" in problem.reason


def test_an_upload_whose_file_broke_can_be_removed_when_nothing_else_can_be_read(
        settings: Settings, orchard: Path) -> None:
    """Only an unreadable seed and an upload whose stored original went missing: loading
    the index failed ('no documents to index'), and so did removing the broken upload,
    the user's way out."""
    (settings.seeds_dir / "latin1.txt").write_bytes(b"Caf\xe9 au lait\n")
    _pipeline(settings).add_documents([orchard])
    (settings.documents_dir / "orchard" / "original.txt").unlink()
    pipeline = _pipeline(settings)
    assert pipeline.remove_documents(["orchard"]) == ["orchard"]
    assert not pipeline.index.documents
    assert not (settings.documents_dir / "orchard").exists()
    with pytest.raises(UnknownDocument, match="'latin1' is a file of the seeds folder that "
                                              "was not indexed") as refused:
        pipeline.remove_documents(["latin1"])  # a (skipped) seed is no upload
    assert refused.value.status == 409
    assert (settings.seeds_dir / "latin1.txt").exists()


def test_servers_reusing_an_index_say_the_files_its_build_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`qa serve` and `qa mcp` on an index built from a mistyped `--seeds` said nothing of
    it: only the build that made the index reported the missing folder, so every restart
    served an empty library without a word (the CLI's `ask` and `retrieve` say it). Both
    now say the skipped files the index records when they load it, once per process."""
    from qa import api, mcp_server
    from qa.loaders import library

    settings = Settings(model="fake-hashing", seeds_dir=tmp_path / "seedz",
                        index_dir=tmp_path / "index", spacy="none")
    Pipeline(settings, HashingEmbedder()).index  # noqa: B018 - the first build (it says it)
    said = f"qa: skipped {tmp_path / 'seedz'}: the seeds folder does not exist"
    assert said in capsys.readouterr().err
    for warm in (lambda p: api.warm(p, api.Readiness()), mcp_server.warm):
        monkeypatch.setattr(library, "_reported", set())  # a new process
        warm(Pipeline(settings, HashingEmbedder()))  # reused, not built
        err = capsys.readouterr().err
        assert said in err and "building" not in err, err
