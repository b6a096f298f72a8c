"""Loading and chunking: exact offsets, boilerplate removal, the article's quirks."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.chunking import chunk_documents, split_sentences
from qa.documents import is_boilerplate, load_document, load_documents
from qa.errors import SeedError
from tests.conftest import ARTICLE, SEEDS


def test_every_chunk_and_sentence_slices_the_source_exactly() -> None:
    docs = load_documents(SEEDS)
    sources = {d.id: d.text for d in docs}
    for chunk_chars, min_chars in [(600, 120), (200, 50), (1000, 0), (80, 10)]:
        chunks = chunk_documents(docs, chunk_chars, min_chars)
        assert chunks
        for chunk in chunks:
            source = sources[chunk.doc_id]
            assert source[chunk.start : chunk.end] == chunk.text
            assert chunk.id == f"{chunk.doc_id}_{chunk.id.rsplit('_', 1)[1]}"
            assert chunk.sentences[0].start == chunk.start
            assert chunk.sentences[-1].end == chunk.end
            for sentence in chunk.sentences:
                assert source[sentence.start : sentence.end] == sentence.text
                assert sentence.text == sentence.text.strip()


def test_document_keeps_raw_text_and_title() -> None:
    doc = load_document(ARTICLE)
    assert doc.text == ARTICLE.read_text(encoding="utf-8")
    assert doc.id == "politico-us-iraq-advisory-transition"
    assert doc.title.startswith("politico – US, Iraqi officials to announce")


def test_boilerplate_is_not_indexed() -> None:
    doc = load_document(ARTICLE)
    indexed = " ".join(p.text for p in doc.paragraphs)
    assert "Source link" not in indexed
    assert "Back to top button" not in indexed
    assert "Source link" in doc.text  # still in the raw text: offsets stay true
    assert is_boilerplate("  Back to top button ")
    assert not is_boilerplate("The source linked the attacks to Iran.")


def test_sentence_splitter_handles_the_articles_quirks() -> None:
    doc = load_document(ARTICLE)
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    # "U.S." does not end a sentence; "2,500" stays whole; ”Kadhimi (no space) stays inside.
    assert any(s.startswith("The change, which is being discussed as U.S. and Iraqi officials")
               and s.endswith("past 18 years.") for s in sentences)
    assert any("around 2,500 American troops in Iraq today" in s for s in sentences)
    assert any(s.startswith("We don’t need US combat troops anymore, ”Kadhimi told")
               for s in sentences)
    # a stray opening quote after the last full stop belongs to the sentence before it
    assert not any(s.strip("“”\"' ") == "" for s in sentences)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("He met Gen. Smith. Then he left.", ["He met Gen. Smith.", "Then he left."]),
        ("John F. Kennedy spoke. It rained.", ["John F. Kennedy spoke.", "It rained."]),
        # a lone small letter abbreviates ("reigned", "circa", "died", "versus", "floruit")
        ("The Hongwu Emperor (r. 1368–1398). It ended. Songtsän Gampo (c. 605–649) ruled.",
         ["The Hongwu Emperor (r. 1368–1398).", "It ended.",
          "Songtsän Gampo (c. 605–649) ruled."]),
        ("Roe v. Wade stood. Zhi Guang (d. 1435) and Hou Xian (fl. 1403) went. In the 1990s. "
         "Next.", ["Roe v. Wade stood.", "Zhi Guang (d. 1435) and Hou Xian (fl. 1403) went.",
                   "In the 1990s.", "Next."]),
        ("It cost $2.5 billion. “Too much,” he said.", ["It cost $2.5 billion.",
                                                        "“Too much,” he said."]),
        ("Is it over? Yes! 2019 was the year.", ["Is it over?", "Yes!", "2019 was the year."]),
        # a short attribution after a quotation is part of it; a longer sentence is not
        ("“And the numbers?” Ilse asked. She waited.", ["“And the numbers?” Ilse asked.",
                                                        "She waited."]),
        ("He said “go.” She went home quickly.", ["He said “go.”", "She went home quickly."]),
        # Markdown emphasis: an FAQ's bold question and its answer on the next line
        ("**How do I rent a bike?**\nDownload the app. Scan the code.",
         ["**How do I rent a bike?**", "Download the app.", "Scan the code."]),
        ("It opens at nine. **Closed** on Mondays. _Note._ Free entry.",
         ["It opens at nine.", "**Closed** on Mondays.", "_Note._", "Free entry."]),
        # each row of a table is a sentence: Markdown (its rule row joins the header), rows
        # with " | " cells (as the Word and HTML loaders write them), tab-separated rows
        ("Settings:\n| Name | Default |\n|---|---|\n| retries | 25 |\n| port | 7420 |\nDone.",
         ["Settings:", "| Name | Default |\n|---|---|", "| retries | 25 |", "| port | 7420 |",
          "Done."]),
        ("Fruit | Tons | Buyer\nPears | 85 | Riverside", ["Fruit | Tons | Buyer",
                                                         "Pears | 85 | Riverside"]),
        ("a\tb\tc\nd\te\tf", ["a\tb\tc", "d\te\tf"]),
        # two columns: a row with one " | " is a row when the line beside it is one too
        ("Contact | Email\nPeople Team | people@example.org\nIT Helpdesk | it@example.org",
         ["Contact | Email", "People Team | people@example.org", "IT Helpdesk | it@example.org"]),
        ("Use a | pipe in prose\nand go on.", ["Use a | pipe in prose\nand go on."]),
        ("|---|---|", []), ("* * *", []),  # a rule alone says nothing
        # a number that opens a line or a sentence numbers it ("1." was a sentence alone)
        ("4. How to apply", ["4. How to apply"]),
        ("Steps:\n1. Download it.\n2. Run it. 3. Check it.\nIV. Results",
         ["Steps:", "1. Download it.", "2. Run it.", "3. Check it.", "IV. Results"]),
        ("He scored 4. Then he left. In 2019. The end.",
         ["He scored 4.", "Then he left.", "In 2019.", "The end."]),
        ("It opened to the public in\n1990. It closed.",  # a hard-wrapped year: no list item
         ["It opened to the public in\n1990.", "It closed."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    spans = split_sentences(text, offset=10)
    assert [s.text for s in spans] == expected
    for s in spans:
        assert text[s.start - 10 : s.end - 10] == s.text


def test_long_sentence_is_wrapped_within_chunk_size(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text("Title\n\n" + "word " * 400 + "end.\n", encoding="utf-8")
    docs = load_documents(tmp_path)
    chunks = chunk_documents(docs, chunk_chars=200, min_chunk_chars=0)
    assert len(chunks) > 5
    for c in chunks:
        assert docs[0].text[c.start : c.end] == c.text
        assert len(c.text) <= 200


@pytest.mark.parametrize(("gap", "repeats"), [("\n\n", 2), ("\n", 3)])
def test_a_sentence_ending_in_a_colon_opens_the_passage_of_what_it_introduces(
        tmp_path: Path, gap: str, repeats: int) -> None:
    """"Invoices come in these formats:" ended one passage and its list opened the next,
    where an answer quoting it could not reach the list: at a paragraph's end (the list a
    paragraph of its own) or where the passage is full (the list's lines under the colon)."""
    text = ("Billing\n\n" + "We send an invoice at the end of each month by email. " * repeats
            + "Invoices come in these formats:" + gap + "- PDF\n- CSV\n- XML\n")
    (tmp_path / "billing.md").write_text(text, encoding="utf-8")
    docs = load_documents(tmp_path)
    chunks = chunk_documents(docs, chunk_chars=205, min_chunk_chars=100)
    holding = [c for c in chunks if "these formats:" in c.text]
    assert len(holding) == 1 and "- XML" in holding[0].text, [c.text for c in chunks]
    for c in chunks:
        assert docs[0].text[c.start:c.end] == c.text


def test_bad_seeds_are_skipped_and_only_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="does not exist"):
        load_documents(tmp_path / "nope")
    with pytest.raises(SeedError, match="holds no readable documents"):
        load_documents(tmp_path)
    (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 latin-1\n")
    with pytest.raises(SeedError, match="holds no readable documents"):
        load_documents(tmp_path)
    (tmp_path / "good.txt").write_text("Good\n\nIt reads.\n", encoding="utf-8")
    assert [d.id for d in load_documents(tmp_path)] == ["good"]
    with pytest.raises(SeedError, match="not UTF-8"):
        load_document(tmp_path / "latin.txt")


def test_markdown_seed_title(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("# My Notes\n\nFirst point. Second point.\n",
                                       encoding="utf-8")
    doc = load_documents(tmp_path)[0]
    assert doc.id == "notes" and doc.title == "My Notes"
