"""The web chat's document parts without a browser: the list escapes everything, uploads
report each file, the document panel names the cited page, and with a token set the add and
remove handlers do nothing without it."""

from __future__ import annotations

import html
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from qa.config import Settings
from qa.pipeline import Pipeline
from qa.ui import add_files, document_html, documents_html, remove_document, respond
from tests.conftest import SEEDS, HashingEmbedder

DOCS = Path(__file__).resolve().parent / "data" / "docs"


def _pipeline(tmp_path: Path, token: str | None = None) -> Pipeline:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return Pipeline(Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                             index_dir=tmp_path / "index", spacy="none", api_token=token),
                    HashingEmbedder())


def test_upload_list_and_panel(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    hostile = tmp_path / "<img src=x onerror=alert(1)>.html"
    hostile.write_text("<html><head><title><script>alert(1)</script></title></head><body>"
                       "<p>The harbor <b>master</b> keeps the tide tables in the office by "
                       "the pier.</p></body></html>", encoding="utf-8")
    steps: list[str] = []
    status = add_files(pipeline, [str(DOCS / "water-report.pdf"), str(hostile),
                                  str(DOCS / "scanned.pdf")],
                       lambda fraction, desc: steps.append(desc))
    assert steps[-1] == "Done" and "Indexing…" in steps
    assert "Added “Harbor Town Water Report” (PDF, 3 pages)" in status
    assert "scanned PDF with no text layer" in status and 'class="qa-bad"' in status
    assert "<script>" not in status and "<img" not in status
    listing = documents_html(pipeline.list_documents(), pipeline.problems())
    assert "<script>" not in listing and "&lt;script&gt;" in listing
    assert 'data-doc="water-report"' in listing and "<td>3</td>" in listing
    assert 'title="Harbor Town Water Report · water-report.pdf"' in html.unescape(listing)
    assert "<img" not in listing and "&lt;img src=x onerror=alert" in listing

    answer = pipeline.ask("When was the treatment plant opened?", doc_ids=["water-report"])
    assert answer.citations
    panel = document_html(pipeline.index, answer, 1)
    page = pipeline.index.documents["water-report"].page_of(answer.citations[0].quote.start)
    assert f'data-page="page {page}"' in panel and f"[1] page {page}" in panel
    *_, (messages, _) = respond("When was the treatment plant opened?", [], pipeline, delay=0,
                                doc_ids=["water-report"])
    assert f"page {page} · chars" in messages[-1]["content"]


def test_add_and_remove_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, token="s3cret")
    kestrel = str(DOCS / "kestrel-lighthouse.html")
    for token in (None, "", "  ", "wrong", "s3cret!", "S3CRET"):
        status = add_files(pipeline, [kestrel], token=token)
        assert 'class="qa-bad"' in status and "Nothing was added" in status, token
        assert ("not right" in status) == bool(token and token.strip())
    assert pipeline._index is None, "a refused upload reads and indexes nothing"
    assert not pipeline.settings.documents_dir.exists() or not any(
        pipeline.settings.documents_dir.iterdir())

    assert "Added “The Kestrel Point Lighthouse”" in add_files(pipeline, [kestrel],
                                                                token=" s3cret ")
    for token in (None, "wrong"):
        status = remove_document(pipeline, "kestrel-lighthouse", token)
        assert 'class="qa-bad"' in status and "Nothing was removed" in status
    assert "kestrel-lighthouse" in pipeline.index.documents
    assert "Removed kestrel" in remove_document(pipeline, "kestrel-lighthouse", "s3cret")
    assert "kestrel-lighthouse" not in pipeline.index.documents

    pipeline.settings = replace(pipeline.settings, api_token=None)  # loopback: no token
    assert 'class="qa-ok"' in add_files(pipeline, [kestrel])
    assert 'class="qa-ok"' in remove_document(pipeline, "kestrel-lighthouse-2")  # not reused


def test_add_and_remove_refuse_a_client_that_sent_too_many_wrong_tokens(tmp_path: Path) -> None:
    """The web chat counts wrong tokens per client as the HTTP API does: once a client is
    refused, even the right token adds nothing until the window passes; another client
    (or no known address: one shared bucket) is judged on its own."""
    from qa.security import FAILED_TOKEN_WINDOW, FAILED_TOKENS_ALLOWED, TokenThrottle

    now = [0.0]
    throttle = TokenThrottle(clock=lambda: now[0])
    pipeline = _pipeline(tmp_path, token="s3cret")
    kestrel = str(DOCS / "kestrel-lighthouse.html")
    guesser = "203.0.113.7"
    for _ in range(FAILED_TOKENS_ALLOWED):
        status = add_files(pipeline, [kestrel], token="wrong", throttle=throttle,
                           client=guesser)
        assert "not right" in status
    for token in ("wrong", "s3cret"):
        status = html.unescape(add_files(pipeline, [kestrel], token=token, throttle=throttle,
                                         client=guesser))
        assert "Too many wrong access tokens from this address: try again in " \
            f"{int(FAILED_TOKEN_WINDOW)} s. Nothing was added." in status, status
        assert 'class="qa-bad"' in status
    assert pipeline._index is None, "a refused upload reads and indexes nothing"
    status = remove_document(pipeline, "anything", "s3cret", throttle, guesser)
    assert "Too many wrong access tokens" in status and "Nothing was removed" in status

    assert "Added" in add_files(pipeline, [kestrel], token="s3cret", throttle=throttle,
                                client=None)  # the shared bucket of unknown addresses
    assert "Too many" in remove_document(pipeline, "kestrel-lighthouse", "s3cret", throttle,
                                         guesser)
    now[0] += FAILED_TOKEN_WINDOW
    assert "Removed kestrel" in remove_document(pipeline, "kestrel-lighthouse", "s3cret",
                                                throttle, guesser)


@pytest.mark.slow  # imports Gradio
def test_the_remove_button_says_what_is_missing_and_keeps_a_refused_pick(tmp_path: Path) -> None:
    """Remove with nothing picked says so (it used to answer with an empty status, wiping the
    last one); a removal refused for want of the token keeps the document picked, so typing
    the token and clicking again removes it (the pick used to be reset: a second click then
    did nothing at all); once removed, the pick is gone."""
    from qa.ui import build_ui

    pipeline = _pipeline(tmp_path, token="s3cret")
    add_files(pipeline, [str(DOCS / "kestrel-lighthouse.html")], token="s3cret")
    [remove] = [fn.fn for fn in build_ui(pipeline).fns.values() if fn.name == "remove"]

    status, _, _, doomed = remove(None, [], None, "s3cret")
    assert 'class="qa-bad"' in status and "Pick the uploaded document to remove" in status
    assert doomed["value"] is None

    status, _, _, doomed = remove("kestrel-lighthouse", [], None, None)
    assert "needs the access token" in status and doomed["value"] == "kestrel-lighthouse"
    assert "kestrel-lighthouse" in pipeline.index.documents

    status, _, _, doomed = remove(doomed["value"], [], None, "s3cret")
    assert "Removed kestrel" in status and doomed["value"] is None
    assert "kestrel-lighthouse" not in pipeline.index.documents


@pytest.mark.slow  # imports Gradio
def test_an_upload_the_index_skipped_can_be_removed_in_the_chat(tmp_path: Path) -> None:
    """An upload stored but skipped by the build (its original replaced by hand with a seed
    file's text) is listed under the problems; the chat's remove control offered indexed
    uploads only, so only the CLI or HTTP could remove it."""
    from qa.ui import build_ui

    pipeline = _pipeline(tmp_path)
    seed = pipeline.settings.seeds_dir / "bell-seed.txt"
    seed.write_text("The harbor is quiet at night.\n", encoding="utf-8")
    (tmp_path / "bell.txt").write_text("The harbor bell rings at noon every day.\n",
                                       encoding="utf-8")
    assert "Added" in add_files(pipeline, [str(tmp_path / "bell.txt")])
    shutil.copy(seed, pipeline.settings.documents_dir / "bell" / "original.txt")
    pipeline.rebuild()
    assert [Path(p.file).name for p in pipeline.problems()] == ["bell"]
    (pipeline.settings.documents_dir / "someone-elses").mkdir()  # not qa's: never offered
    pipeline.rebuild()
    fns = {fn.name: fn.fn for fn in build_ui(pipeline).fns.values()}
    _, _, doomed = fns["listing"]([], None)
    assert ("bell (not indexed)", "bell") in doomed["choices"]
    assert "someone-elses" not in {doc_id for _, doc_id in doomed["choices"]}
    status, _, _, doomed = fns["remove"]("bell", [], None, None)
    assert "Removed" in status and doomed["value"] is None, status
    assert [Path(p.file).name for p in pipeline.problems()] == ["someone-elses"]
    assert not (pipeline.settings.documents_dir / "bell").exists()


def test_a_file_name_keeps_its_quotes(tmp_path: Path) -> None:
    """A browser sends `"` in a file name as %22 (and CR, LF as %0D, %0A); the chat shows
    the name the file had (it showed `notes %22draft%22.html`). Other `%` stay as they are."""
    pipeline = _pipeline(tmp_path)
    upload = tmp_path / "gradio" / "notes %22draft%22 ünï 100%25.html"
    upload.parent.mkdir()
    shutil.copy(DOCS / "kestrel-lighthouse.html", upload)
    assert "Added" in add_files(pipeline, [str(upload)])
    [entry] = [e for e in pipeline.list_documents() if e.source == "upload"]
    assert entry.original_name == 'notes "draft" ünï 100%25.html'
    listing = html.unescape(documents_html(pipeline.list_documents()))
    assert '· notes "draft" ünï 100%25.html"' in listing


def test_the_panel_does_not_call_an_abstention_s_closest_sentence_a_quote(tmp_path: Path) -> None:
    """An abstention cites the closest passage so the reader can check it; the document panel
    says it is the closest the documents come, not what 'the answer quotes'."""
    from qa.types import Answer, Citation, Span

    pipeline = _pipeline(tmp_path)
    doc_id, document = next(iter(pipeline.index.documents.items()))
    sentence = Span(0, 40, document.text[:40])
    cited = Citation(1, doc_id, f"{doc_id}_0", sentence, sentence)
    no = Answer("What is the capital of France?", "The document doesn't say [1].", True, 0.1,
                (cited,))
    panel = document_html(pipeline.index, no, 1)
    assert "closest the documents come" in panel and "answer quotes" not in panel
    assert 'data-cite="1"' in panel  # its [1] still points at the sentence
    yes = replace(no, text="… [1]", abstained=False, confidence=0.9)
    assert "the latest answer quotes are highlighted" in document_html(pipeline.index, yes, 1)


def test_the_upload_status_lists_the_files_in_the_order_they_came(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    status = add_files(pipeline, [str(DOCS / "water-report.pdf"), str(DOCS / "scanned.pdf"),
                                  str(DOCS / "orchard-summary.docx"),
                                  str(DOCS / "kestrel-lighthouse.html")])
    added = [status.index(title) for title in ("Harbor Town Water Report",
                                                "Orchard Cooperative Annual Summary",
                                                "The Kestrel Point Lighthouse")]
    assert added == sorted(added), status
    assert status.index("Kestrel") < status.index("scanned PDF")  # then what was not added


def test_asking_a_document_removed_since_the_page_listed_it_says_so(tmp_path: Path) -> None:
    """'Limit questions to' a document another tab has removed: the chat says the document
    is gone and what to do (it said "unknown document id 'kestrel-lighthouse'")."""
    pipeline = _pipeline(tmp_path)
    add_files(pipeline, [str(DOCS / "kestrel-lighthouse.html")])
    pipeline.remove_documents(["kestrel-lighthouse"])
    *_, (messages, panel) = respond("When was the lighthouse built?", [], pipeline, delay=0,
                                    doc_ids=["kestrel-lighthouse"])
    shown = html.unescape(messages[-1]["content"])
    assert "qa-error" in shown and "No longer in the library" in shown
    assert "kestrel-lighthouse" in shown and "Limit questions to" in shown


@pytest.mark.slow  # imports Gradio
def test_the_library_is_listed_again_after_each_answer(tmp_path: Path) -> None:
    """Another tab (or the HTTP API) may add or remove documents: after each question the
    page lists the library again (its table, 'Limit questions to', the remove choices)."""
    from qa.ui import build_ui

    fns = build_ui(_pipeline(tmp_path)).fns
    [chat] = [i for i, fn in fns.items() if fn.api_name == "chat"]
    after = [fn for fn in fns.values() if fn.trigger_after == chat]
    assert any(fn.name == "listing" and [b.elem_id for b in fn.outputs]
               == ["qa-doc-list", "qa-select", "qa-remove-choice"] for fn in after)
