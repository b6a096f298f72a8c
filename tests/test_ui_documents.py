"""The web chat's document parts without a browser: the list escapes everything, uploads
report each file, and the document panel names the cited page."""

from __future__ import annotations

import shutil
from pathlib import Path

from qa.config import Settings
from qa.pipeline import Pipeline
from qa.ui import add_files, document_html, documents_html, respond
from tests.conftest import SEEDS, HashingEmbedder

DOCS = Path(__file__).resolve().parent / "data" / "docs"


def _pipeline(tmp_path: Path) -> Pipeline:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    return Pipeline(Settings(model="fake-hashing", seeds_dir=tmp_path / "seeds",
                             index_dir=tmp_path / "index", spacy="none"), HashingEmbedder())


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

    answer = pipeline.ask("When was the treatment plant opened?", doc_ids=["water-report"])
    assert answer.citations
    panel = document_html(pipeline.index, answer, 1)
    page = pipeline.index.documents["water-report"].page_of(answer.citations[0].quote.start)
    assert f'data-page="page {page}"' in panel and f"[1] page {page}" in panel
    *_, (messages, _) = respond("When was the treatment plant opened?", [], pipeline, delay=0,
                                doc_ids=["water-report"])
    assert f"page {page} · chars" in messages[-1]["content"]
