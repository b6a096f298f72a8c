"""Round trips with the real model: upload a PDF, a DOCX and an HTML page, ask about each,
and check every citation against the file itself (re-extracted from the stored original) and
the PDF's own page text."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.embedding import Embedder
from qa.loaders import load
from qa.pipeline import Pipeline
from qa.schema import answer_json, with_pages
from tests.conftest import SEEDS

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parent / "data" / "docs"

QUESTIONS = [
    ("When was the treatment plant opened?", "water-report", "1987", 3),
    ("How much water does the Lindqvist reservoir hold?", "water-report", "4.2 million", 2),
    ("Who is the main buyer of the pears?", "orchard-summary", "Riverside Cannery", None),
    ("How tall is the Kestrel Point lighthouse?", "kestrel-lighthouse", "34 meters", None),
    ("Who was the first keeper of the lighthouse?", "kestrel-lighthouse", "Tomás Ferreira",
     None),
]


class CountingEmbedder:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)

    def embed_documents(self, texts: list[str]) -> np.ndarray:  # what a build embeds with
        self.texts.extend(texts)
        return np.asarray(getattr(self.inner, "embed_documents", self.inner.embed)(texts))

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def library(real_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    base = tmp_path_factory.mktemp("library")
    shutil.copytree(SEEDS, base / "seeds")
    settings = Settings(seeds_dir=base / "seeds", index_dir=base / "index",
                        cache_dir=real_pipeline.settings.cache_dir)
    pipeline = Pipeline(settings, real_pipeline.embedder)
    pipeline.add_documents([DOCS / "water-report.pdf", DOCS / "orchard-summary.docx",
                            DOCS / "kestrel-lighthouse.html"])
    return pipeline


@pytest.mark.parametrize(("question", "doc_id", "needle", "page"), QUESTIONS)
def test_answers_cite_the_uploaded_document_exactly(
        library: Pipeline, question: str, doc_id: str, needle: str, page: int | None) -> None:
    from pypdf import PdfReader

    answer = library.ask(question)
    assert not answer.abstained, answer.text
    first = answer.citations[0]
    assert first.doc_id == doc_id, answer.text
    assert needle in " ".join(c.passage.text for c in answer.citations if c.doc_id == doc_id)
    for citation in answer.citations:
        document = library.index.documents[citation.doc_id]
        original = Path(document.path)
        stored = original.parent / "text.txt"
        source = stored.read_text("utf-8") if stored.exists() else original.read_text("utf-8")
        assert source[citation.quote.start:citation.quote.end] == citation.quote.text
        assert source[citation.passage.start:citation.passage.end] == citation.passage.text
        if stored.exists():  # the stored text is what the original extracts to
            assert load(original).text == source
    wire = with_pages(answer_json(answer), library.index.documents)
    assert wire["citations"][0].get("page") == page
    if page is not None:
        own = PdfReader(Path(library.index.documents[doc_id].path)).pages[page - 1]
        flat = " ".join(own.extract_text().split())
        assert " ".join(first.quote.text.split()) in flat


def test_questions_limited_to_one_document(library: Pipeline) -> None:
    answer = library.ask("When was it built?", doc_ids=["kestrel-lighthouse"])
    assert answer.citations and {c.doc_id for c in answer.citations} == {"kestrel-lighthouse"}
    assert "1871" in " ".join(c.passage.text for c in answer.citations)


def test_adding_one_document_embeds_only_that_document(real_pipeline: Pipeline,
                                                       tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    counting = CountingEmbedder(real_pipeline.embedder)
    pipeline = Pipeline(Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index",
                                 cache_dir=real_pipeline.settings.cache_dir), counting)
    pipeline.index  # noqa: B018 - the seeds, indexed first
    counting.texts.clear()
    (added,) = pipeline.add_documents([DOCS / "kestrel-lighthouse.html"])
    new_chunks = [c for c in pipeline.index.chunks if c.doc_id == added.id]
    new_texts = {s.text for c in new_chunks for s in c.sentences}  # passages: their mean
    embedded = set(counting.texts)
    seed_texts = {s.text for c in pipeline.index.chunks if c.doc_id != added.id
                  for s in c.sentences} | {c.text for c in pipeline.index.chunks
                                           if c.doc_id != added.id}
    assert not embedded & seed_texts  # nothing of an unchanged document re-embedded
    assert new_texts <= embedded


TABLE_DOC = """# Rivet settings

Rivet is a job queue. Its worker reads these settings at start-up.

| Setting | Default | Meaning |
|---|---|---|
| `max_workers` | 10 | Jobs run at the same time by one worker process |
| `retry_limit` | 25 | Attempts before a job is marked dead |
| `poll_interval` | 2 seconds | How often an idle worker checks for new jobs |

Jobs that fail are retried with exponential backoff.
"""


def test_a_table_row_is_quoted_as_its_own_sentence(real_pipeline: Pipeline,
                                                   tmp_path: Path) -> None:
    """A Markdown table was one "sentence": every answer about a setting quoted the whole
    table. Each row is now a sentence, so the quote is the row that answers."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "rivet.md").write_text(TABLE_DOC, encoding="utf-8")
    pipeline = Pipeline(Settings(seeds_dir=seeds, index_dir=tmp_path / "index",
                                 cache_dir=real_pipeline.settings.cache_dir),
                        real_pipeline.embedder)
    for question, row in (
            ("How many attempts before a job is marked dead?", "`retry_limit` | 25"),
            ("How often does an idle worker check for new jobs?", "`poll_interval` | 2 seconds")):
        answer = pipeline.ask(question)
        assert not answer.abstained, answer.text
        source = (seeds / "rivet.md").read_text(encoding="utf-8")
        quotes = [c.quote for c in answer.citations]
        assert all(source[q.start:q.end] == q.text and "\n" not in q.text for q in quotes)
        # the row that answers, after its header row (which column is which)
        assert [q.text for q in quotes[:2]] == ["| Setting | Default | Meaning |",
                                                next(q.text for q in quotes if row in q.text)]
        assert quotes[1].text.startswith("| ")


def test_a_word_list_item_is_answered_not_withheld(real_pipeline: Pipeline,
                                                   tmp_path: Path) -> None:
    """A bulleted Word list item ("Bikes travel free", no full stop) was a bare line, taken
    for a heading, so the answer was withheld though the passage ranked first."""
    import docx

    document = docx.Document()
    document.add_heading("Luggage on the ferry", 1)
    document.add_paragraph("Passengers may bring the following items on board at no extra "
                           "cost:")
    document.add_paragraph("Bikes travel free", style="List Bullet")
    document.add_paragraph("Prams travel free", style="List Bullet")
    document.add_paragraph("Dogs must stay on a lead at all times.")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    document.save(str(seeds / "luggage.docx"))
    pipeline = Pipeline(Settings(seeds_dir=seeds, index_dir=tmp_path / "index",
                                 cache_dir=real_pipeline.settings.cache_dir),
                        real_pipeline.embedder)
    answer = pipeline.ask("Do bikes travel free?")
    assert not answer.abstained and not answer.tentative, answer.text
    assert answer.citations[0].quote.text == "Bikes travel free"  # quoted without its bullet
