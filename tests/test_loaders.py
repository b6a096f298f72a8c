"""Loaders: each format from a real file, exact pages, type by content, every bad input."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any

import pytest

from qa.config import Settings
from qa.errors import SeedError
from qa.loaders import BadDocument, load, loader_for
from qa.loaders.library import load_corpus, safe_id
from scripts.make_test_documents import (
    DOCX_TABLE,
    PDF_PAGES,
    corrupt_docx_bytes,
    zip_bomb,
)
from tests.conftest import SEEDS

DOCS = Path(__file__).resolve().parent / "data" / "docs"


def test_pdf_pages_are_spans_of_the_text_and_match_the_pdfs_own_pages() -> None:
    from pypdf import PdfReader

    doc = load(DOCS / "water-report.pdf")
    assert doc.kind == "pdf" and doc.title == "Harbor Town Water Report"
    assert len(doc.pages) == len(PDF_PAGES) == 3
    own = [p.extract_text() for p in PdfReader(DOCS / "water-report.pdf").pages]
    for number, (page, (heading, _)) in enumerate(zip(doc.pages, PDF_PAGES, strict=True), 1):
        assert doc.text[page.start:page.end] == page.text
        assert page.text.startswith(heading)
        assert " ".join(page.text.split()) == " ".join(own[number - 1].split())
        assert doc.page_of(page.start) == number
    at = doc.text.index("opened in 1987")
    assert doc.page_of(at) == 3
    assert "Lindqvist reservoir holds" in doc.text[doc.pages[1].start:doc.pages[1].end]
    # a heading is its own paragraph, never the start of the sentence under it
    assert any(p.text == "Treatment" for p in doc.paragraphs)
    assert any(p.text.startswith("The treatment plant on Mill Road") for p in doc.paragraphs)


_MINUTES = ("On day {n} the harbour board met to discuss the {topic}, which the members debated "
            "at length before they voted on it. The chair said that the decision on the {topic} "
            "would be published within {n} weeks, and that the public could comment on it. ")
_TOPICS = ("ferry timetable", "pier repairs", "winter fees", "mooring rules", "dredging plan",
           "fish market", "lighthouse lease", "harbour lights", "boat ramp", "wharf cranes")


def _minutes_pdf(path: Path) -> None:
    """Three pages of minutes with a running header, a page-number footer, and one long
    paragraph that runs from the first page onto the second."""
    from fpdf import FPDF

    class Minutes(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=8)
            self.cell(0, 5, "Harbour Board Minutes - Internal", align="C")
            self.ln(8)

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("Helvetica", size=8)
            self.cell(0, 5, f"Page {self.page_no()}", align="C")

    pdf = Minutes()
    pdf.set_auto_page_break(True, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Minutes of the spring meeting", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 6, "".join(_MINUTES.format(n=n + 2, topic=t) for n, t in
                                 enumerate(_TOPICS * 3)), new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def test_pdf_running_heads_are_dropped_and_sentences_run_across_pages(tmp_path: Path) -> None:
    """The header and the page number of every page were text: quoted as answers ('Page 2'),
    glued to the sentence above the footer ('...debated at\nPage 2'), and the header was
    the document's title; a sentence running onto the next page was cut in two paragraphs."""
    from qa.chunking import chunk_documents

    _minutes_pdf(tmp_path / "minutes.pdf")
    doc = load(tmp_path / "minutes.pdf")
    assert len(doc.pages) >= 2
    assert "Harbour Board Minutes" not in doc.text and "Page " not in doc.text
    assert doc.title == "Minutes of the spring meeting"
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    assert sentences[0] == "Minutes of the spring meeting"
    for sentence in sentences[1:]:  # each whole: a capital at the start, a stop at the end
        assert sentence[0].isupper() and sentence.endswith("."), sentence
    crossing = next(s for s in sentences if doc.text.index(s) < doc.pages[1].start
                    < doc.text.index(s) + len(s))
    assert doc.page_of(doc.text.index(crossing)) == 1
    for page in doc.pages:
        assert doc.text[page.start:page.end] == page.text


def test_pdf_narrow_columns_and_hyphenated_words(tmp_path: Path) -> None:
    """In a narrow column the first line of a paragraph, short and without a full stop, was
    taken for a heading and cut from its sentence; a word hyphenated at a line break stayed
    in two pieces ('pub-' / 'lish'), which neither search nor a reader expects; every quote
    held the column's line breaks ('the new ferry\ntimetable')."""
    from fpdf import FPDF

    from qa.chunking import chunk_documents

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    column = ("The harbour board approved the new ferry timetable after a long debate about "
              "the cost of the winter service. Tickets stay at four pounds.")
    pdf.set_xy(10, 20)
    pdf.multi_cell(80, 5, column)
    pdf.set_xy(110, 20)
    pdf.multi_cell(80, 5, column.replace("ferry", "bus"))
    pdf.set_xy(10, 80)
    for line in ("Storage", "The office will pub-", "lish the timetable, with a well-",
                 "known map, on its web-", "site in June; the map is well-known."):
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "columns.pdf"))
    doc = load(tmp_path / "columns.pdf")
    sentences = [" ".join(s.text.split()) for c in chunk_documents([doc]) for s in c.sentences]
    for vehicle in ("ferry", "bus"):  # whole, and read as a sentence: no line breaks in it
        assert f"The harbour board approved the new {vehicle} timetable after a long debate " \
               "about the cost of the winter service." in doc.text, sentences
    paragraphs = [p.text for p in doc.paragraphs]
    assert "Storage" in paragraphs  # a heading is still a heading
    assert "The office will publish the timetable, with a well-known map, on its website in " \
           "June; the map is well-known." in paragraphs, paragraphs


def test_pdf_a_column_s_first_line_is_not_a_heading(tmp_path: Path) -> None:
    """In a two-column page a column's first line ('The north pier was rebuilt between
    November 2024 and', short, the next line opening with a capital) was taken for a
    heading: the sentence was cut in two by a blank line, and its first half quoted alone."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Annual Report 2025")
    pdf.ln(14)
    pdf.set_font("Helvetica", size=10)
    top = pdf.get_y()
    pdf.set_xy(10, top)
    pdf.multi_cell(90, 5, "Passenger numbers rose to 412,000 in 2025, an increase of 8 percent "
                          "on the previous year. The busiest month was August.")
    pdf.set_xy(110, top)
    pdf.multi_cell(90, 5, "The north pier was rebuilt between November 2024 and March 2025 at "
                          "a cost of 2.3 million pounds. Work finished two weeks early.")
    pdf.output(str(tmp_path / "report.pdf"))
    doc = load(tmp_path / "report.pdf")
    assert doc.paragraphs[0].text == "Annual Report 2025"  # a heading stays one
    sentence = ("The north pier was rebuilt between November 2024 and March 2025 at a cost of "
                "2.3 million pounds.")
    assert any(sentence in p.text for p in doc.paragraphs), doc.text


def test_pdf_a_heading_after_a_list_is_a_heading(tmp_path: Path) -> None:
    """A section's heading right under a list ('- Wheelchairs on request' / '1. Opening
    hours') was glued to the sentence under it ('1. Opening hours\nThe museum opens at
    ten...'): only a line ending a sentence let the next one be a heading."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in ("The museum offers these services to every visitor:", "- Free cloakroom",
                 "- Wheelchairs on request", "1. Opening hours",
                 "The museum opens at ten every day except Monday."):
        pdf.set_x(10)
        pdf.multi_cell(0, 6, line)
    pdf.output(str(tmp_path / "guide.pdf"))
    doc = load(tmp_path / "guide.pdf")
    assert [p.text for p in doc.paragraphs] == [
        "The museum offers these services to every visitor:\n- Free cloakroom\n"
        "- Wheelchairs on request", "1. Opening hours",
        "The museum opens at ten every day except Monday."]
    assert _headings(doc) == ["1. Opening hours"]


@pytest.mark.parametrize(("meta", "title"), [
    ("Microsoft Word - remote-work-policy.docx", "Remote Work Policy"),
    ("C:\\Users\\ann\\draft3.doc", "Remote Work Policy"), ("Untitled", "Remote Work Policy"),
    ("Remote working at Northwind", "Remote working at Northwind"),
])
def test_a_pdf_converter_s_file_name_is_not_its_title(tmp_path: Path, meta: str,
                                                     title: str) -> None:
    """A PDF saved from Word says 'Microsoft Word - report.docx' in its metadata title, which
    was shown as the document's title in qa list, the library and citations."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.set_title(meta)
    pdf.multi_cell(0, 6, "Remote Work Policy\n\nStaff may work from home two days a week.")
    pdf.output(str(tmp_path / "policy.pdf"))
    assert load(tmp_path / "policy.pdf").title == title


def test_pdf_a_table_s_rows_are_not_headings(tmp_path: Path) -> None:
    """Each row of a table in a PDF ('BrewMaster Mini 0.8 litres 15 bar': short, no full
    stop, after a line that ends a sentence) was taken for a heading, so no row could ever
    be quoted. Three or more heading-like lines in a row are a block of one paragraph."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "Product range\nThe table lists the tank size and pump pressure of "
                         "each model we sell.")
    with pdf.table() as table:
        for cells in (("Model", "Tank", "Pressure"), ("BrewMaster 3000", "1.2 litres", "19 bar"),
                      ("BrewMaster Mini", "0.8 litres", "15 bar")):
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.set_x(10)
    pdf.multi_cell(0, 6, "All models ship with a two-year warranty.")
    pdf.output(str(tmp_path / "range.pdf"))
    doc = load(tmp_path / "range.pdf")
    assert [p.text for p in doc.paragraphs] == [
        "Product range", "The table lists the tank size and pump pressure of each model we "
        "sell.", "Model | Tank | Pressure\nBrewMaster 3000 | 1.2 litres | 19 bar\n"
        "BrewMaster Mini | 0.8 litres | 15 bar", "All models ship with a two-year warranty."]
    assert _headings(doc) == ["Product range", "Model | Tank | Pressure"]  # its first row


def test_pdf_a_table_row_s_cells_are_apart_and_prose_stays_whole(tmp_path: Path) -> None:
    """A PDF table's row came out as its cells' words run together ('Under 8 metres 12
    pounds 70 pounds'), read as one sentence, and a table of two rows was two headings.
    Where the layout shows cells (pieces of a line drawn at x positions that the rows
    above or below share) they are joined by " | ", as the Word and HTML loaders write a
    row, each row a sentence of one block; prose with bold words in it, and a justified
    paragraph, stay as they are."""
    from fpdf import FPDF

    from qa.chunking import chunk_documents

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    prose = ("The harbour **board** set these fees for the **summer** season of 2025, and they "
             "apply to **all** berths on the **north** and the **south** pier alike, whatever "
             "the **size** of the boat and the **length** of the stay at the marina.")
    pdf.multi_cell(0, 6, prose, new_x="LMARGIN", new_y="NEXT", markdown=True, align="J")
    pdf.ln(4)
    with pdf.table() as table:
        for cells in (("Boat length", "Daily fee"), ("under 8 metres", "12 pounds")):
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.ln(4)
    pdf.multi_cell(0, 6, "Payment is due on arrival at the harbour office.",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "fees.pdf"))
    doc = load(tmp_path / "fees.pdf")
    assert [p.text for p in doc.paragraphs] == [
        prose.replace("**", ""), "Boat length | Daily fee\nunder 8 metres | 12 pounds",
        "Payment is due on arrival at the harbour office."]
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    assert "under 8 metres | 12 pounds" in sentences
    assert _headings(doc) == ["Boat length | Daily fee"]


def test_pdf_a_font_whose_widths_cannot_be_read_is_measured_by_estimate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cells are told by the widths of the text drawn, read from the font by pypdf (its
    private Font class). A width table it fails on mid-page (a malformed font, another
    pypdf) raised out of the loader, so the PDF could not be read at all; the text's width
    is then estimated, and the table still read."""
    from fpdf import FPDF
    from pypdf.generic._font import Font

    def failing(self: Any, text: str = "") -> float:
        if len(text) > 1:
            raise RuntimeError("unreadable width table")
        return 500.0

    monkeypatch.setattr(Font, "get_text_width", failing)
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    with pdf.table() as table:
        for cells in (("Boat length", "Daily fee"), ("Under 8 metres", "12 pounds")):
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.output(str(tmp_path / "fees.pdf"))
    assert [p.text for p in load(tmp_path / "fees.pdf").paragraphs] == [
        "Boat length | Daily fee\nUnder 8 metres | 12 pounds"]


def test_pdf_list_marks_and_labels_drawn_apart_are_no_table(tmp_path: Path) -> None:
    """A list's marks drawn apart from their items ('•', '1.' in a cell of their own) and
    labels apart from their values ('Date:' / '4 to 6 July 2025') line up as columns do,
    and were read as a table of four columns ('• | A water bottle |  |', 'Date: |  |  | 4
    to 6 July 2025'). A list's mark or a label is no cell: the lines read as they did."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, "What to bring to the camp:", new_x="LMARGIN", new_y="NEXT")
    for item in ("A sleeping bag and a warm jumper", "Walking boots", "A water bottle"):
        pdf.cell(8, 6, "-")
        pdf.multi_cell(0, 6, item, new_x="LMARGIN", new_y="NEXT")
    for n, item in enumerate(("Arrive by 10 am.", "Sign in at the lodge."), 1):
        pdf.cell(10, 6, f"{n}.")
        pdf.multi_cell(0, 6, item, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for label, value in (("Date:", "4 to 6 July 2025"), ("Place:", "Oak Lodge, Fernhill"),
                         ("Cost:", "85 pounds a child")):
        pdf.cell(30, 6, label)
        pdf.multi_cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "camp.pdf"))
    assert [p.text for p in load(tmp_path / "camp.pdf").paragraphs] == [
        "What to bring to the camp:\n- A sleeping bag and a warm jumper\n- Walking boots\n- A "
        "water bottle\n1. Arrive by 10 am.\n2. Sign in at the lodge.",
        "Date: 4 to 6 July 2025\nPlace: Oak Lodge, Fernhill\nCost: 85 pounds a child"]


def test_pdf_a_row_with_a_wrapped_cell_is_one_row_and_columns_read_in_turn(
        tmp_path: Path) -> None:
    """A PDF table row whose cell wraps onto two lines, the other cells centred beside it,
    is drawn cell by cell on lines of its own: it came out as four lines ('Day rover',
    'Unlimited travel ... on the', 'day of purchase', '£5.20'), the first two read as
    headings, and the header row over it was not told for one. It is one row again, cells
    in column order. Two columns of prose drawn across the page line by line (a line of
    the left column, then the line beside it) read as rows of a table ('The council voted
    on Tuesday to close | Traders on the east bank said the'): each column is read in
    turn."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, "Ticket types. The table below lists each ticket and what it has.",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    with pdf.table(col_widths=(30, 110, 30)) as table:
        for cells in (("Ticket", "What it includes", "Price"),
                      ("Day rover", "Unlimited travel on all buses and trams in the city zone "
                       "until midnight on the day of purchase", "£5.20"),
                      ("Weekly pass", "Seven days of travel from the first day of use",
                       "£21.00"),
                      ("Student", "As the weekly pass, with a student card", "£15.00")):
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.ln(3)
    pdf.multi_cell(0, 5, "Tickets can be bought on the bus.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "tickets.pdf"))
    doc = load(tmp_path / "tickets.pdf")
    assert [p.text for p in doc.paragraphs] == [
        "Ticket types. The table below lists each ticket and what it has.",
        "Ticket | What it includes | Price\nDay rover | Unlimited travel on all buses and trams "
        "in the city zone until midnight on the day of purchase | £5.20\nWeekly pass | Seven "
        "days of travel from the first day of use | £21.00\nStudent | As the weekly pass, with "
        "a student card | £15.00", "Tickets can be bought on the bus."]
    left = ("The council voted on Tuesday to close the old bridge to cars from the first of "
            "March. Buses and bicycles may still cross it, and a new footpath will open beside "
            "it in the summer.")
    right = ("Traders on the east bank said the closure would cost them customers, and asked "
             "the council to pay for more parking near the market hall before it closes.")
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    words = [text.split() for text in (left, right)]
    for n in range(0, max(len(w) for w in words), 7):
        pdf.text(10, 20 + n, " ".join(words[0][n:n + 7]))
        pdf.text(110, 20 + n, " ".join(words[1][n:n + 7]))
    pdf.output(str(tmp_path / "bridge.pdf"))
    assert [p.text for p in load(tmp_path / "bridge.pdf").paragraphs] == [f"{left}\n{right}"]


def test_pdf_headings_set_large_are_headings_beside_a_table_or_a_subtitle(
        tmp_path: Path) -> None:
    """Three heading-like lines in a row are read as a table's rows, so a manual's title,
    subtitle and first heading were one 'sentence', quoted as the answer ('How do I reset
    the boiler?' -> 'ThermaHeat 24C Combi Boiler\nUser guide\nResetting the boiler', at
    0.91), and the headings over and under a table were rows of it. A line set larger than
    the body text is a heading, in such a run too; the rows stay one block."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()

    def line(text: str, size: int, style: str = "") -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")

    line("ThermaHeat 24C Combi Boiler", 16, "B")
    line("User guide", 11)
    line("Resetting the boiler", 13, "B")
    line("If the display shows fault code F28, the boiler did not detect a flame. Press and "
         "hold the reset button for five seconds.", 11)
    line("Fault codes", 13, "B")
    for code, meaning in (("F22", "Low water pressure"), ("F28", "No flame detected"),
                          ("F75", "Pressure sensor fault")):
        pdf.set_font("Helvetica", "", 11)
        pdf.cell(30, 6, code)
        pdf.cell(0, 6, meaning, new_x="LMARGIN", new_y="NEXT")
    line("Servicing", 13, "B")
    line("Have the boiler serviced once a year by a qualified engineer.", 11)
    pdf.output(str(tmp_path / "boiler.pdf"))
    doc = load(tmp_path / "boiler.pdf")
    assert [p.text for p in doc.paragraphs] == [
        "ThermaHeat 24C Combi Boiler", "User guide", "Resetting the boiler",
        "If the display shows fault code F28, the boiler did not detect a flame. Press and "
        "hold the reset button for five seconds.", "Fault codes",
        "F22 | Low water pressure\nF28 | No flame detected\nF75 | Pressure sensor fault",
        "Servicing", "Have the boiler serviced once a year by a qualified engineer."]
    assert _headings(doc) == ["ThermaHeat 24C Combi Boiler", "User guide",
                              "Resetting the boiler", "Fault codes", "F22 | Low water pressure",
                              "Servicing"]  # a table's first row is read as its header


def test_pdf_ligatures_are_letters(tmp_path: Path) -> None:
    """A PDF typeset with ligatures gave `ﬁrst oﬃce` (U+FB01, U+FB03): to search, the words
    'rst', 'o' and 'ce'."""
    from fpdf import FPDF

    from qa.lexical import tokenize

    pdf = FPDF()
    pdf.add_page()
    font = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not font.is_file():
        pytest.skip("no DejaVu font to typeset ligatures with")
    pdf.add_font("dejavu", "", str(font))
    pdf.set_font("dejavu", size=12)
    pdf.multi_cell(0, 7, "The \ufb01rst o\ufb03ce \ufb02oor was \ufb01nished by the sta\ufb00.")
    pdf.output(str(tmp_path / "office.pdf"))
    text = load(tmp_path / "office.pdf").text
    assert text == "The first office floor was finished by the staff."
    assert set(tokenize("first office floor")) <= set(tokenize(text))


def test_pdf_a_word_drawn_in_pieces_a_little_apart_is_one_word(tmp_path: Path) -> None:
    """pypdf puts a space between two pieces of text drawn apart by half a space or more:
    a word drawn in pieces (kerning, or a layout program placing its syllables) a little
    apart read 'custo mers', 'invo ices'. But a justified line set tight draws words as
    close, so the gap alone cannot tell: two pieces drawn less than three quarters of a
    space apart are one word where the document writes that word whole elsewhere and never
    writes its pieces as words. Words drawn a space apart stay words, and so do 'the
    packages' ('thepackages' is no word of it) and 'in to' ('into' is, but so are 'in' and
    'to'); a piece that opens with a space character keeps it."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    space = pdf.get_string_width(" ")
    lines = [  # (piece, the gap before it in spaces)
        [("Our", 0), ("custo", 1.0), ("mers", 0.55), ("asked", 1.0), ("for", 1.0),
         ("clearer", 1.1), ("invo", 1.0), ("ices.", 0.6)],
        [("Customers get their invoices by email.", 0)],
        [("Log", 0), ("in", 1.0), ("to", 0.55), ("the", 1.0), ("packages", 0.55),
         ("page.", 1.0)],
        [("Then", 0), (" go", 0.0), (" into", 0.0), ("the", 1.0), ("pages", 0.9),
         ("to", 1.3), ("look", 1.0), ("in.", 1.0)],
    ]
    for n, line in enumerate(lines):
        x = 72.0
        for piece, gap in line:
            x += gap * space
            pdf.text(x, 100 + 20 * n, piece)
            x += pdf.get_string_width(piece)
    pdf.output(str(tmp_path / "invoices.pdf"))
    doc = load(tmp_path / "invoices.pdf")
    assert doc.text.splitlines() == [
        "Our customers asked for clearer invoices.", "Customers get their invoices by email.",
        "Log in to the packages page.", "Then go into the pages to look in."], doc.text


def test_docx_paragraphs_and_table_rows_in_order() -> None:
    """A table's rows were paragraphs apart: a passage could begin mid-table and a one-column
    row alone read as a heading. A table is one paragraph, a line per row."""
    doc = load(DOCS / "orchard-summary.docx")
    assert doc.kind == "docx" and doc.title == "Orchard Cooperative Annual Summary"
    rows = [" | ".join(r) for r in DOCX_TABLE]
    positions = [doc.text.index(r) for r in rows]
    assert positions == sorted(positions)
    assert doc.text.index("Frost in late April") < positions[0]
    assert doc.text.index("board meets") > positions[-1]
    assert "Café Zoë" in doc.text
    table = next(p.text for p in doc.paragraphs if "Pears | 85 | Riverside Cannery" in p.text)
    assert table.splitlines() == rows  # a table is one paragraph, a line per row
    assert _headings(doc)[-1] == rows[0]  # its first row names the columns


def test_docx_a_cell_s_paragraphs_are_not_run_together(tmp_path: Path) -> None:
    """A cell holding several paragraphs ran them into one ('Annual leave | 25 days Unused
    days lapse on 31 March', 'Name: Laura Chen Title: Finance Director'; a one-column box
    'Important Book leave...'). A cell's paragraphs are joined by '; ' (a space after one
    that punctuation ends), its row still one line and one sentence, the table one
    paragraph whose first row names the columns; a one-column table (a box) gives its
    paragraphs as paragraphs."""
    import docx

    from qa.chunking import chunk_documents

    document = docx.Document()
    document.add_paragraph("Leave policy for all staff.")
    table = document.add_table(rows=4, cols=2)
    for r, (kind, days) in enumerate((("Leave type", "Allowance"), ("Annual leave", "25 days"),
                                      ("Sick leave", "10 days"), ("Signed", "Name: Laura Chen"))):
        table.cell(r, 0).text, table.cell(r, 1).text = kind, days
    table.cell(1, 1).add_paragraph("Unused days lapse on 31 March")
    table.cell(2, 1).text = "10 days a year."
    table.cell(2, 1).add_paragraph("A note from a doctor after three days")
    table.cell(3, 1).add_paragraph("Title: Finance Director")
    box = document.add_table(rows=1, cols=1).cell(0, 0)
    box.text = "Important"
    box.add_paragraph("Book leave through the HR portal at least two weeks ahead")
    document.save(str(tmp_path / "leave.docx"))
    doc = load(tmp_path / "leave.docx")
    rows = ["Leave type | Allowance", "Annual leave | 25 days; Unused days lapse on 31 March",
            "Sick leave | 10 days a year. A note from a doctor after three days",
            "Signed | Name: Laura Chen; Title: Finance Director"]
    assert [p.text for p in doc.paragraphs] == [
        "Leave policy for all staff.", "\n".join(rows),
        "Important", "Book leave through the HR portal at least two weeks ahead"]
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    assert sentences[1:3] == rows[:2] and sentences[-3] == rows[3]
    assert _headings(doc) == ["Leave type | Allowance", "Important"]


def test_docx_a_row_keeps_its_columns_empty_and_equal_cells_too(tmp_path: Path) -> None:
    """A row's cells were read without the empty ones and without a cell equal to the one
    before it (meant for merged cells, which python-docx repeats): 'Support |  | Email'
    read 'Support | Email', Basic's answer under Pro's column taken for Basic's, and
    'Backups | Yes | Yes' read 'Backups | Yes', Pro's backups gone. A row keeps every
    column up to its last with text (an empty corner cell too); a cell merged across
    columns is read once."""
    import docx

    document = docx.Document()
    document.add_paragraph("What each plan includes, for all customers.")
    table = document.add_table(rows=5, cols=3)
    rows = [["", "Basic", "Pro"], ["Backups", "Yes", "Yes"], ["Support", "", "Email"],
            ["Phone line", "Yes", ""], ["Storage", "10 GB", ""]]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(4, 1).merge(table.cell(4, 2))  # one cell across both plans' columns
    document.save(str(tmp_path / "plans.docx"))
    doc = load(tmp_path / "plans.docx")
    assert doc.paragraphs[1].text.splitlines() == [
        "| Basic | Pro", "Backups | Yes | Yes", "Support |  | Email", "Phone line | Yes",
        "Storage | 10 GB"], doc.text


def test_docx_soft_hyphens_do_not_split_words(tmp_path: Path) -> None:
    """A soft hyphen (U+00AD, invisible) stayed in the text: `infor\u00admation` was two
    words for search and an invisible character in quotes."""
    import docx

    document = docx.Document()
    document.add_paragraph("The infor\u00admation desk opens at nine on week\u00addays.")
    document.save(str(tmp_path / "desk.docx"))
    assert load(tmp_path / "desk.docx").text == "The information desk opens at nine on weekdays."


def test_docx_content_controls_and_tracked_changes_are_read_as_word_shows_them(
        tmp_path: Path) -> None:
    """A paragraph inside a content control (w:sdt, common in documents made from templates)
    was dropped, and so were the words of a tracked insertion (w:ins): Word shows both."""
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def run(text: str, tag: str = "w:t") -> Any:
        r, t = OxmlElement("w:r"), OxmlElement(tag)
        t.text = text
        r.append(t)
        return r

    document = docx.Document()
    document.add_paragraph("Before the control.")
    inside = document.add_paragraph("The ferry leaves at seven from the north pier.")
    control, content = OxmlElement("w:sdt"), OxmlElement("w:sdtContent")
    control.append(content)
    inside._p.addprevious(control)
    content.append(inside._p)
    tracked = document.add_paragraph("Tickets cost")
    for tag, text in (("w:ins", " four pounds"), ("w:del", " three pounds")):
        change = OxmlElement(tag)
        change.set(qn("w:id"), "1")
        change.set(qn("w:author"), "Editor")
        change.append(run(text, "w:delText" if tag == "w:del" else "w:t"))
        tracked._p.append(change)
    tracked._p.append(run(" for adults."))
    document.add_paragraph("After the control.")
    document.save(str(tmp_path / "template.docx"))
    assert [p.text for p in load(tmp_path / "template.docx").paragraphs] == [
        "Before the control.", "The ferry leaves at seven from the north pier.",
        "Tickets cost four pounds for adults.", "After the control."]


def _headings(doc: Any) -> list[str]:
    """The sentences of `doc` that the chunker takes for headings."""
    from qa.chunking import chunk_documents, is_heading

    return [s.text for c in chunk_documents([doc]) for s in c.sentences if is_heading(s, c)]


def test_docx_columns_set_by_tab_stops_are_a_table_s_rows(tmp_path: Path) -> None:
    """A price list or a contact list typed with tab stops ('Adult<tab>£7.50<tab>£13.00')
    read as its words run together ('Adult £7.50 £13.00', 'Harbour office 01632 960001'),
    each row a paragraph alone, the header row a heading. Two or more such paragraphs in a
    row are a table's rows, cells joined by " | " as a Word table's are; a list numbered by
    hand ('1.<tab>Scope') and a single 'Date:<tab>4 March' stay as they were."""
    import docx

    from qa.chunking import chunk_documents

    document = docx.Document()
    document.add_paragraph("Prices from 1 April 2025.")
    for line in ("Ticket\tSingle\tReturn", "Adult\t£7.50\t£13.00", "\tChild\t\t£3.75\t£6.50"):
        document.add_paragraph(line)
    document.add_paragraph("Call us on these numbers.")
    for line in ("Harbour office\t01632 960001", "Lifeboat station\t01632 960002"):
        document.add_paragraph(line)
    for line in ("1.\tScope of the rules", "2.\tWho may moor here", "Date:\t4 March 2025"):
        document.add_paragraph(line)
    document.save(str(tmp_path / "prices.docx"))
    doc = load(tmp_path / "prices.docx")
    assert [p.text for p in doc.paragraphs] == [
        "Prices from 1 April 2025.",
        "Ticket | Single | Return\nAdult | £7.50 | £13.00\nChild | £3.75 | £6.50",
        "Call us on these numbers.",
        "Harbour office | 01632 960001\nLifeboat station | 01632 960002",
        "1. Scope of the rules", "2. Who may moor here", "Date: 4 March 2025"]
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    assert "Adult | £7.50 | £13.00" in sentences
    assert "Lifeboat station | 01632 960002" in sentences


def test_docx_list_items_are_list_items_not_headings(tmp_path: Path) -> None:
    """A bulleted or numbered Word list item ("Bikes travel free", no full stop) was a bare
    line, which the chunker took for a heading (and the answer was withheld). Items carry
    the mark Word shows ("- ", "1. "), a list is one paragraph, and a numbered heading keeps
    its number and stays a heading."""
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    document = docx.Document()
    heading = document.add_heading("Luggage", 1)
    document.add_paragraph("Passengers may bring these items at no extra cost:")
    document.add_paragraph("Bikes travel free", style="List Bullet")
    document.add_paragraph("Prams travel free", style="List Bullet")
    document.add_paragraph("To board the ferry:")
    document.add_paragraph("Buy a ticket", style="List Number")
    document.add_paragraph("Show it at the gate", style="List Number")
    direct = document.add_paragraph("Find a seat", style="List Paragraph")
    for paragraph, num_id in ((direct, "5"), (heading, "5")):  # numbering set on the paragraph
        numbering, level, number = (OxmlElement(t) for t in ("w:numPr", "w:ilvl", "w:numId"))
        level.set(qn("w:val"), "0")
        number.set(qn("w:val"), num_id)
        numbering.extend([level, number])
        paragraph._p.get_or_add_pPr().append(numbering)
    document.add_paragraph("Dogs must stay on a lead.")
    document.save(str(tmp_path / "ferry.docx"))
    doc = load(tmp_path / "ferry.docx")
    assert [p.text for p in doc.paragraphs] == [
        "1. Luggage", "Passengers may bring these items at no extra cost:",
        "- Bikes travel free\n- Prams travel free", "To board the ferry:",
        "2. Buy a ticket\n3. Show it at the gate\n4. Find a seat", "Dogs must stay on a lead."]
    assert _headings(doc) == ["1. Luggage"]


def test_docx_short_paragraphs_under_a_colon_are_lines_of_its_paragraph(
        tmp_path: Path) -> None:
    """'Opening hours:' then 'Saturday 8am to 2pm' as Word paragraphs: each short one alone
    read as a heading, so the hours could not be quoted. They are lines of the colon's
    paragraph; a heading, a list and a sentence after them stay apart."""
    import docx

    document = docx.Document()
    document.add_paragraph("We bake bread every morning on Mill Lane.")
    document.add_paragraph("Opening hours:")
    document.add_paragraph("Monday to Friday 7am to 6pm")
    document.add_paragraph("Saturday 8am to 2pm")
    document.add_heading("Prices", 2)
    document.add_paragraph("We sell:")
    document.add_paragraph("Sourdough loaves", style="List Bullet")
    document.add_paragraph("Contact:")
    document.add_paragraph("Write to the manager, who answers every letter within a week.")
    document.save(str(tmp_path / "bakery.docx"))
    doc = load(tmp_path / "bakery.docx")
    assert [p.text for p in doc.paragraphs] == [
        "We bake bread every morning on Mill Lane.",
        "Opening hours:\nMonday to Friday 7am to 6pm\nSaturday 8am to 2pm", "Prices",
        "We sell:", "- Sourdough loaves", "Contact:",
        "Write to the manager, who answers every letter within a week."]
    assert _headings(doc) == ["Prices"]


@pytest.mark.parametrize("fallback", [False, True], ids=["trafilatura", "fallback"])
def test_html_list_items_are_lines_of_one_paragraph(fallback: bool) -> None:
    """<li> items were paragraphs of their own (trafilatura's "- Bikes travel free" with blank
    lines around it; the fallback's without a mark), so a short item read as a heading."""
    from qa.loaders.html import HtmlLoader

    article = ("<h1>Luggage</h1><p>" + "Passengers may bring these items on board. " * 7
               + "</p><p>What travels free:</p><ul><li>Bikes travel free</li><li></li>"
               "<li>Prams <b>travel</b> free</li></ul><p>To board:</p><ol><li>Buy a ticket</li>"
               "<li><p>Board the ferry</p></li></ol><p>Dogs must stay on a lead.</p>")
    page = (f"<html><body>{'<div>' * 300}{article}{'</div>' * 300}</body></html>" if fallback
            else f"<html><body><article>{article}</article></body></html>")
    doc = HtmlLoader().extract(page.encode(), "ferry.html")
    assert "- Bikes travel free\n- Prams travel free" in doc.text.split("\n\n")
    assert "1. Buy a ticket\n2. Board the ferry" in doc.text.split("\n\n")
    from qa.loaders import document_of

    assert _headings(document_of("ferry", "ferry.html", "html", doc, "")) == ["Luggage"]


@pytest.mark.parametrize("fallback", [False, True], ids=["trafilatura", "fallback"])
def test_html_ordered_list_items_are_numbered_as_a_reader_sees_them(fallback: bool) -> None:
    """An <ol>'s items were written "- " as a <ul>'s are: 'What is step 4?' had no "4" to
    find, and a quote lost its place in the steps. They are numbered as a browser shows
    them: from `start`, down for `reversed`, an item's `value` resetting the count, in the
    `type`'s letters or Roman numerals; a <ul> in an <ol>'s item keeps its marks. A list
    whose items write their own numbers ('1. Install', a book's contents) or whose style
    hides them is not numbered again ('1. 1. Install')."""
    from qa.loaders.html import HtmlLoader

    article = ("<h1>Printer setup</h1><p>" + "Set up the office printer as follows. " * 7
               + "</p><ol><li>Unpack the printer.</li><li>Plug it in.</li></ol><p>Then:</p>"
               '<ol start="4"><li>Connect it to the network.</li><li>Print a test page.'
               '</li></ol><p>Countdown:</p><ol reversed><li>Three left.</li><li>Two left.</li>'
               '<li>One left.</li></ol><p>Parts:</p><ol type="a"><li>Tray</li><li value="5">'
               'Drum<ul><li>Keep it dry.</li></ul></li><li>Belt</li></ol><p>Appendices:</p>'
               '<ol type="I" start="3"><li>Warranty</li><li>Safety</li></ol><p>Before:</p>'
               '<ol start="-1"><li>Check the cable.</li><li><p>Check the fuse.</p></li></ol>'
               '<p>Contents:</p><ol class="toc"><li><a href="#i"><strong>1.</strong> Install</a>'
               '</li><li>2. Configure<ol><li>2.1. Network</li></ol></li></ol><p>Items:</p>'
               '<ol style="list-style: none"><li>One</li><li>Two</li></ol>')
    page = (f"<html><body>{'<div>' * 300}{article}{'</div>' * 300}</body></html>" if fallback
            else f"<html><body><article>{article}</article></body></html>")
    doc = HtmlLoader().extract(page.encode(), "printer.html")
    paragraphs = doc.text.split("\n\n")
    assert "1. Unpack the printer.\n2. Plug it in." in paragraphs
    assert "4. Connect it to the network.\n5. Print a test page." in paragraphs
    assert "3. Three left.\n2. Two left.\n1. One left." in paragraphs
    assert "III. Warranty\nIV. Safety" in paragraphs
    assert "-1. Check the cable.\n0. Check the fuse." in paragraphs
    assert "QAITEM" not in doc.text
    assert "1. Install\n2. Configure\n2.1. Network" in paragraphs  # numbers of their own
    assert "- One\n- Two" in paragraphs
    parts = next(p for p in paragraphs if p.startswith("a. Tray"))
    assert parts.replace("e. Drum Keep", "e. Drum\n- Keep") == (
        "a. Tray\ne. Drum\n- Keep it dry.\nf. Belt"), parts
    assert "- Unpack" not in doc.text


@pytest.mark.parametrize("fallback", [False, True], ids=["trafilatura", "fallback"])
def test_an_html_template_is_never_text(fallback: bool) -> None:
    """A <template> (markup a script copies into the page, never shown as it is: 'NAME
    costs PRICE.') was read as a paragraph of the page by trafilatura."""
    from qa.loaders.html import HtmlLoader

    article = ("<h1>Shop</h1><p>Our shop sells bread and cakes every day from early morning "
               "until late afternoon.</p><template id='row'><p>Template row: NAME costs PRICE."
               "</p></template><p>We bake everything on site in our own ovens.</p>")
    page = (f"<html><body>{'<div>' * 300}{article}{'</div>' * 300}</body></html>" if fallback
            else f"<html><body><article>{article}</article></body></html>")
    text = HtmlLoader().extract(page.encode(), "shop.html").text
    assert "NAME" not in text and "We bake everything on site" in text, text


@pytest.mark.parametrize("fallback", [False, True], ids=["trafilatura", "fallback"])
def test_html_footnote_references_are_not_run_into_the_text(fallback: bool) -> None:
    """A footnote or citation mark (Wikipedia's <sup><a href="#cite_note-1">[1]</a></sup>,
    a Markdown converter's <sup><a href="#fn:2">2</a></sup>, pandoc's <a href="#fn3"><sup>
    3</sup></a>) was run into the text: 'opened in 1911[1] and was rebuilt in 1950.2',
    a year read as 1950.2 and a '[1]' like qa's own citation marks in a quote. A mark that
    only links to a note of the page is left out; a superscript of the text (mc<sup>2
    </sup>) stays."""
    from qa.loaders.html import HtmlLoader

    article = ("<h1>Pier</h1><p>The pier opened in 1911<sup class='reference'><a href="
               "'#cite_note-1'>[1]</a></sup> and was rebuilt in 1950.<sup id='fnref:2'><a "
               "href='#fn:2'>2</a></sup> Its lamps use E = mc<sup>2</sup> as every lamp "
               "does.<a href='#fn3' class='footnote-ref'><sup>3</sup></a> It is the longest "
               "pier on the coast, stretching out to sea for over a kilometre.</p>")
    page = (f"<html><body>{'<div>' * 300}{article}{'</div>' * 300}</body></html>" if fallback
            else f"<html><body><article>{article}</article></body></html>")
    text = HtmlLoader().extract(page.encode(), "pier.html").text
    assert ("The pier opened in 1911 and was rebuilt in 1950. Its lamps use E = mc2 as every "
            "lamp does. It is the longest pier") in text, text


@pytest.mark.parametrize("fallback", [False, True], ids=["trafilatura", "fallback"])
def test_an_html_table_s_rows_are_lines_on_both_paths(fallback: bool) -> None:
    """The fallback (a short page, or one trafilatura cannot read) made each table cell a
    paragraph of its own ('Child', '2', 'free under 5'): the price was no longer on the row
    it prices. A table's rows are lines of one paragraph, cells in order, a cell's
    paragraphs joined as the Word loader joins them; a table laying the page out (one
    row, or tables in it) is still read as blocks."""
    from qa.loaders.html import HtmlLoader

    article = ("<h2>Fees</h2><p>Entry to the museum costs as follows for each visitor.</p>"
               "<table><tr><th>Visitor</th><th>Fee</th></tr><tr><td>Adult</td><td>5 pounds"
               "</td></tr><tr><td>Child</td><td><p>2 pounds</p><p>free under 5</p></td></tr>"
               "</table><table role='presentation'><tr><td>Open daily.</td></tr><tr><td>"
               "Closed on 25 December.</td></tr></table>")
    page = (f"<html><body>{'<div>' * 300}{article}{'</div>' * 300}</body></html>" if fallback
            else f"<html><body><article>{article}</article></body></html>")
    text = HtmlLoader().extract(page.encode(), "fees.html").text
    rows = next(p for p in text.split("\n\n") if "Adult" in p).splitlines()
    assert [r for r in rows if "---" not in r] == [
        "| Visitor | Fee |", "| Adult | 5 pounds |", "| Child | 2 pounds; free under 5 |"], text
    assert "Open daily." in text.split("\n\n") or fallback is False


@pytest.mark.parametrize("fallback", [False, True], ids=["trafilatura", "fallback"])
def test_a_definition_list_s_terms_name_what_their_definitions_answer(fallback: bool) -> None:
    """trafilatura wrote a <dl>'s terms and definitions alike as list items ("- The red light
    blinks three times", "- The water tank is empty."), so the term alone was quoted as the
    answer to 'What does it mean when the red light blinks three times?'. A term and its
    definitions are lines of one paragraph: the definition is quoted with what it defines."""
    from qa.loaders import document_of
    from qa.loaders.html import HtmlLoader

    article = ("<p>" + "Our machines are built in Leeds and tested by hand before they ship. " * 4
               + "</p><h2>Troubleshooting</h2><dl><dt>The red light blinks three times</dt>"
               "<dd>The water tank is empty or not seated properly.</dd><dt>Coffee is "
               "lukewarm?</dt><dd>Run the descaling cycle.</dd></dl><ul><li>Keep the receipt"
               "</li><li>Register online</li></ul>")
    page = (f"<html><body>{'<div>' * 300}{article}{'</div>' * 300}</body></html>" if fallback
            else f"<html><body><article>{article}</article></body></html>")
    doc = document_of("faq", "faq.html", "html", HtmlLoader().extract(page.encode(), "faq.html"),
                      "")
    assert {"The red light blinks three times\nThe water tank is empty or not seated "
            "properly.", "Coffee is lukewarm?\nRun the descaling cycle.",
            "- Keep the receipt\n- Register online"} <= {p.text for p in doc.paragraphs}
    assert _headings(doc) == ["Troubleshooting", "Coffee is lukewarm?"]


def test_html_lines_under_a_colon_are_one_paragraph_with_it(tmp_path: Path) -> None:
    """'Opening hours:<br>Saturday 8am to 2pm<br>...' became a paragraph per line: each short
    line alone read as a heading, so 'When does the bakery open on Saturday?' was answered
    'Opening hours: [1]'. The colon's line and the short lines under it are one paragraph;
    the page's headings and a new colon's line stay apart."""
    page = tmp_path / "bakery.html"
    page.write_text(
        "<html><body><article><h1>Corner Bakery</h1><p>We bake bread every morning in our "
        "shop on Mill Lane. Our sourdough takes two days to make.</p><p>Opening hours:<br>"
        "Monday to Friday 7am to 6pm<br>Saturday 8am to 2pm<br>Closed on Sundays</p><p>Find "
        "us at:<br>12 Mill Lane<br>Holt</p><p>Our cakes:</p><h2>Seasonal cakes</h2><p>In "
        "autumn we bake apple cake.</p></article></body></html>", encoding="utf-8")
    doc = load(page)
    assert [p.text for p in doc.paragraphs][2:] == [
        "Opening hours:\nMonday to Friday 7am to 6pm\nSaturday 8am to 2pm\nClosed on Sundays",
        "Find us at:\n12 Mill Lane\nHolt", "Our cakes:", "Seasonal cakes",
        "In autumn we bake apple cake."]
    assert _headings(doc) == ["Corner Bakery", "Seasonal cakes"]


def test_an_html_table_is_one_paragraph_whose_first_row_is_its_heading() -> None:
    """Each row of an HTML table was a paragraph alone: its first row (the column names) was
    not told from data, and its first data row, under the |---| rule, was taken for a
    heading instead."""
    doc = load(PAGES / "table-and-list.html")
    headings = _headings(doc)
    assert "| Day | Hours |\n|---|---|" in headings
    assert not [h for h in headings if "Tuesday" in h or "Saturday" in h]


def test_headings_of_a_page_with_no_main_container_are_kept() -> None:
    """A hand-written page (its text straight in <body>, no <main>, <article> or a div
    named content) lost every heading and every <summary>: trafilatura reads such a page
    without them, so an FAQ's questions ('How long does delivery take?') and its sections
    ('Contact') were gone, each answer alone. They are read as when the page names its main
    part; its menu, header and footer are still left out, and nothing else is added."""
    from qa.loaders.html import HtmlLoader

    body = ("<header><a href='/'>Home</a> <a href='/shop'>Shop</a></header><nav><ul><li><a "
            "href='/a'>Products</a></li><li><a href='/b'>Support</a></li></ul></nav><h1>FAQ"
            "</h1><p>Answers to the questions our customers ask most often about their orders "
            "and deliveries, updated every week by the support team.</p><details><summary>"
            "How long does delivery take?</summary><p>Delivery takes three to five working "
            "days within the country.</p></details><h2>Contact</h2><p>Write to us any time at "
            "the address below, and we answer within two days.</p><footer><p>Copyright 2024 "
            "Shop Ltd. All rights reserved.</p></footer>")
    text = HtmlLoader().extract(f"<html><body>{body}</body></html>".encode(), "faq.html").text
    assert text.split("\n\n") == [
        "FAQ", "Answers to the questions our customers ask most often about their orders and "
        "deliveries, updated every week by the support team.", "How long does delivery take?",
        "Delivery takes three to five working days within the country.", "Contact",
        "Write to us any time at the address below, and we answer within two days."], text


def test_html_text_that_reads_like_a_share_button_is_kept_unless_it_is_a_link() -> None:
    """trafilatura's filter of share bars dropped content too: 'Download formats:' over a
    list of PDF, EPUB and Print kept only EPUB, and 'Contact the secretary by:' over Email
    and Phone only Phone. Such words are kept where they are text; as links (a share bar's
    'Twitter', 'Email'), buttons or in the page's furniture they still go."""
    from qa.loaders.html import HtmlLoader

    page = ("<html><body><nav><a href='/'>Home</a> <span>Print</span></nav><article><h1>Annual"
            " report</h1><p>The annual report of the harbour board for last year is now "
            "available to all members and the public.</p><p>Download formats:</p><ul><li>PDF"
            "</li><li>EPUB</li><li>Print</li></ul><p>Contact the secretary by:</p><ul><li>"
            "Email</li><li>Phone</li></ul><ul class='links'><li><a href='https://twitter.com/"
            "intent/tweet'>Twitter</a></li><li><a href='mailto:?body=x'>Email</a></li></ul>"
            "<p>Questions? Ask at the harbour office on weekdays between nine and five.</p>"
            "</article></body></html>")
    text = HtmlLoader().extract(page.encode(), "report.html").text
    paragraphs = text.split("\n\n")
    assert "- PDF\n- EPUB\n- Print" in paragraphs and "- Email\n- Phone" in paragraphs, text
    assert "Twitter" not in text and text.count("Email") == 1 and text.count("Print") == 1


def test_an_html_table_cell_that_reads_like_a_share_button_is_kept() -> None:
    """trafilatura drops any text that is one of the words of share bars and print links
    (its RE_FILTER: Email, PDF, Print, Google, Twitter...), table cells too: '<td>Support
    </td><td></td><td>Email</td>' was written '| Support | | |', and a 'Format | PDF' row
    lost its format, so 'Which plan has email support?' had nothing to quote. A data
    table's cells are kept whole; empty cells stay empty."""
    from qa.loaders.html import HtmlLoader

    page = ("<html><body><article><p>What each plan includes, for all of our customers, as "
            "of this year, in every region we serve.</p><table><tr><th></th><th>Basic</th>"
            "<th>Pro</th></tr><tr><td>Backups</td><td>Yes</td><td>Yes</td></tr><tr><td>"
            "Support</td><td> </td><td>Email</td></tr><tr><td>Invoices</td><td>PDF</td><td>"
            "<a href='/print'>Print</a>, PDF</td></tr><tr><td>Sign-in</td><td>Google</td>"
            "<td></td></tr></table></article></body></html>")
    text = HtmlLoader().extract(page.encode(), "plans.html").text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows == ["| | Basic | Pro |", "|---|---|---|", "| Backups | Yes | Yes |",
                    "| Support | | Email |", "| Invoices | PDF | Print, PDF |",
                    "| Sign-in | Google | |"], text
    assert "QA" not in text


_NOTES = ('<w:{kind}s xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
          '<w:{kind} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p>'
          '</w:{kind}><w:{kind} w:id="1"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:{kind}>'
          "</w:{kind}s>")


def _with_parts(docx_file: Path, out: Path, parts: dict[str, str]) -> Path:
    """A copy of a Word file with these parts (their paths in the zip) replaced or added."""
    import zipfile

    with zipfile.ZipFile(docx_file) as src, zipfile.ZipFile(out, "w") as dest:
        for item in src.infolist():
            if item.filename not in parts:
                dest.writestr(item, src.read(item))
        for name, xml in parts.items():
            dest.writestr(name, xml)
    return out


def test_docx_footnotes_and_endnotes_follow_the_body(tmp_path: Path) -> None:
    """Footnotes and endnotes (word/footnotes.xml, word/endnotes.xml) were never read: a
    fact given only in a note could not be found or quoted."""
    import docx

    document = docx.Document()
    document.add_paragraph("The ferry carried a record number of passengers.")
    document.save(str(tmp_path / "plain.docx"))
    notes = _with_parts(tmp_path / "plain.docx", tmp_path / "notes.docx", {
        "word/footnotes.xml": _NOTES.format(
            kind="footnote", text="The record was 12,400 passengers in 2024."),
        "word/endnotes.xml": _NOTES.format(
            kind="endnote", text="Figures from the harbour board.")})
    assert [p.text for p in load(notes).paragraphs] == [
        "The ferry carried a record number of passengers.",
        "The record was 12,400 passengers in 2024.", "Figures from the harbour board."]


def test_html_main_text_without_navigation_scripts_or_footer() -> None:
    doc = load(DOCS / "kestrel-lighthouse.html")
    assert doc.kind == "html" and doc.title == "The Kestrel Point Lighthouse"
    assert "built in 1871 and stands 34 meters tall" in doc.text
    assert "Tomás Ferreira" in doc.text
    for furniture in ("Gift shop", "UA-NAVIGATION-SCRIPT", "FOOTER-SCRIPT-TEXT", "Copyright",
                      "trackingId", "font-family", "newsletter"):
        assert furniture not in doc.text


PAGES = Path(__file__).resolve().parent / "data" / "html"
_NEWS, _DOCS_PAGE, _TABLE = (
    (PAGES / f"{name}.html").read_text("utf-8") for name in ("news", "docs-page", "table-and-list"))
_SHORT = ("<html><body><article><h1>Title here</h1><p>This is a sentence with <b>bold</b> words."
          "</p><p>Another has <i>italic</i>, <em>emphasis</em>, <strong>strong</strong>, a <a "
          "href='/x'>link</a>, a <span>span</span>, <code>code()</code> and a note<sup>1</sup>."
          "</p><p>Line one.<br>Line two.</p></article></body></html>")
_FRAGMENTS = {"bold", ".", "italic", "emphasis", "strong", "link", "span", "code()", "1",
              "closed on Mondays", "17:00", "valid ticket", "archive room", "12 May", "£4.50"}


@pytest.mark.parametrize(("page", "blocks", "furniture"), [
    ("<html><body><article><h1>Title here</h1><p>This is a sentence with <b>bold</b> words.</p>"
     "<p>More <i>italic</i> text follows <span>here</span>.</p></article></body></html>",
     ["Title here", "This is a sentence with bold words.", "More italic text follows here."],
     []),
    ("<html><body><article><p>The harbour board approved<br>the new ferry timetable on Monday."
     "</p><p>Write to us at:<br>1 Quay Street<br>Kestrel</p></article></body></html>",
     ["The harbour board approved the new ferry timetable on Monday.",
      "Write to us at:\n1 Quay Street\nKestrel"], []),
    (_SHORT, ["Title here", "This is a sentence with bold words.", "Line one.\nLine two.",
              "Another has italic, emphasis, strong, a link, a span, code() and a note1."], []),
    (_NEWS, ["Ferry service to resume in May",
             "The Kestrel Island ferry will run again from 12 May, the harbour board said on "
             "Monday, after a winter in which the old pier was rebuilt.",
             "Tickets cost £4.50 for adults; children under 12 travel free."],
     ["Facebook", "Log in", "Related stories", "Pier rebuild", "All rights reserved"]),
    (_DOCS_PAGE, ["Run pip install tool to install the latest release; see the release notes "
                  "for details.", "```\n$ pip install tool\n$ tool --help\n```",
                  "The --verbose flag prints each step as it runs, and --quiet prints nothing "
                  "but errors.", "Python 3.10 or newer is required."],
     ["API reference", "Sphinx", "Copyright"]),
    (_TABLE, ["The museum is open six days a week; it is closed on Mondays.", "Opening hours",
              "| Day | Hours |\n|---|---|\n| Tuesday to Friday | 10:00 to 17:00 |\n"
              "| Saturday and Sunday | 09:00 to 18:00 |",
              "What to bring",
              "- A valid ticket, printed or on your phone.\n- Photo ID for the archive room."],
     []),
], ids=["tiny", "br", "short", "news", "docs", "table-and-list"])
def test_html_inline_elements_stay_in_their_sentence(
        tmp_path: Path, page: str, blocks: list[str], furniture: list[str]) -> None:
    """On a short page trafilatura's rescue joined every text node with a line break:
    `<p>a sentence with <b>bold</b> words.</p>` became three paragraphs, so sentences (and
    quotes) broke at every b, i, a, span, code and sup; a short news page ran its heading,
    byline and text into one paragraph. Each block is a paragraph; inline text stays in it."""
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    doc = load(path)
    assert set(blocks) <= {p.text for p in doc.paragraphs}, doc.text
    assert not {p.text for p in doc.paragraphs} & _FRAGMENTS, doc.text
    for span in doc.paragraphs:
        assert doc.text[span.start:span.end] == span.text
    for word in furniture:
        assert word not in doc.text


def test_a_page_trafilatura_cannot_read_keeps_its_blocks_without_menus() -> None:
    """The fallback (trafilatura finds no text: here, a page nested too deeply for it) ran
    every block into one paragraph, with a space before each inline element's text and a
    menu of links kept."""
    from qa.loaders.html import HtmlLoader

    page = ('<html><body><div class="menu"><a href="/">Home</a> <a href="/a">About us</a></div>'
            + "<div>" * 300 + "<p>We bake <b>bread</b>, every <i>morning</i>.</p><p>The shop "
            "opens at <a href='/h'>nine</a>.</p>" + "</div>" * 300 + "</body></html>")
    text = HtmlLoader().extract(page.encode(), "bakery.html").text
    assert text == "We bake bread, every morning.\n\nThe shop opens at nine."
    # blocks the site names as furniture go too, unless they hold the page (a wrapper)
    page = ('<html><body><div class="layout-with-sidebar">' + "<div>" * 300 +
            '<div id="cookie-banner">We use cookies to improve your visit.</div>'
            "<p>We bake bread.</p>" + '<div class="share-bar">Tell your friends about us!</div>'
            '<div class="site-footer">Registered in England, company 01234.</div>'
            + "</div>" * 300 + "</div></body></html>")
    assert HtmlLoader().extract(page.encode(), "bakery.html").text == "We bake bread."


_HOURS = "<p>The library opens at nine on weekdays.</p>"
_ROOMS = "".join(f"<p>The reading room on floor {n} holds the local history collection and "
                 "maps of the harbour.</p>" for n in range(1, 5))


@pytest.mark.parametrize(("content", "aside", "kept"), [
    (f"<div><h1>Opening hours</h1>{_HOURS}</div>",
     '<div class="promo">Join the friends club for twelve pounds a year.</div>', False),
    (f"<div>{_HOURS}</div>",
     '<div class="ads">Great deals on garden furniture this week only.</div>', False),
    # a normal page: its banner goes, but a block named like furniture may hold its text
    (f'<div class="article">{_ROOMS}', '<div class="promo">Members borrow up to ten books '
     "at a time, free of charge.</div></div>", True),
], ids=["short-promo", "short-ads", "normal"])
def test_a_page_s_banner_and_furniture_are_not_its_text(content: str, aside: str,
                                                         kept: bool) -> None:
    """trafilatura kept a consent banner held in a plain div as a page's first paragraph
    ('We use cookies. Settings', then quoted), and on a short page an ad or a promotion too;
    the names the site gives them were looked at only when trafilatura found nothing."""
    from qa.loaders.html import HtmlLoader

    page = (f'<html><head><title>Library</title></head><body><div id="gdpr-consent">We use '
            f'cookies. <a href="/s">Settings</a></div>{content}{aside}</body></html>')
    text = HtmlLoader().extract(page.encode(), "library.html").text
    assert "cookies" not in text and "Settings" not in text
    assert "opens at nine" in text or "floor 4" in text
    assert (("borrow up to ten" in text) if kept
            else ("friends club" not in text and "garden" not in text)), text


def test_text_held_in_a_div_is_read() -> None:
    """trafilatura drops the text of a <div> holding no <p> when the page has paragraphs
    besides: an accordion FAQ's answer (<div class="faq-a">We refund unused months...</div>)
    was never indexed, so 'Do you offer refunds?' had no answer."""
    from qa.loaders.html import HtmlLoader

    page = ('<html><body><main><h1>Help centre</h1><p>Answers to common questions about your '
            "account and billing, and how to reach us when they do not help.</p>"
            '<div class="faq-item"><button class="faq-q">Do you offer refunds?</button>'
            '<div class="faq-a">We refund unused months within 14 days of payment.</div></div>'
            "<div><div>Can I pause my plan?</div><div>Yes, for up to three months a year."
            '</div></div></main><div class="footer"><a href="/p">Privacy</a></div>'
            "</body></html>")
    text = HtmlLoader().extract(page.encode(), "help.html").text
    assert "We refund unused months within 14 days of payment." in text.split("\n\n")
    assert "Can I pause my plan?\n\nYes, for up to three months a year." in text
    assert "Privacy" not in text


def test_a_page_of_navigation_only_holds_no_text(tmp_path: Path) -> None:
    """A page with nothing but its menu was indexed as a document whose text was 'Home'."""
    page = tmp_path / "menu.html"
    page.write_text('<html><body><nav><a href="/">Home</a> <a href="/news">News</a></nav>'
                    "<footer>© 2025 Example Ltd.</footer></body></html>", encoding="utf-8")
    with pytest.raises(BadDocument, match="holds no main text") as info:
        load(page)
    assert info.value.status == 422


def test_an_html_page_in_its_declared_encoding_is_read(tmp_path: Path) -> None:
    """A page saved from an older site (ISO-8859-1, windows-1252, as its <meta charset> says)
    was refused as 'not UTF-8 text'; the declared encoding is no guess. One that is not what
    it declares, or declares an unknown one, is still refused in one line."""
    pages = {
        "latin1.html": b'<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head>'
                       b"<body><p>The caf\xe9 on the pier sells cr\xeapes on Sundays.</p>"
                       b"</body></html>",
        "cp1252.html": b'<html><head><meta http-equiv="Content-Type" content="text/html; '
                       b'charset=windows-1252"></head><body><p>He said \x93hello\x94 to the '
                       b"ferryman \x96 twice.</p></body></html>",
    }
    for name, raw in pages.items():
        (tmp_path / name).write_bytes(raw)
    latin1 = load(tmp_path / "latin1.html")
    assert latin1.title == "Café" and latin1.text == "The café on the pier sells crêpes on Sundays."
    assert load(tmp_path / "cp1252.html").text == "He said “hello” to the ferryman – twice."
    for charset, message in (("utf-8", "not valid utf-8 text, as its <meta charset> says"),
                             ("klingon", "names an unknown encoding 'klingon'")):
        (tmp_path / "bad.html").write_bytes(f'<html><head><meta charset="{charset}"></head>'
                                            "<body><p>caf".encode() + b"\xe9.</p></body></html>")
        with pytest.raises(BadDocument, match=message) as info:
            load(tmp_path / "bad.html")
        assert info.value.status == 422 and "\n" not in str(info.value)


def test_paragraph_spans_slice_the_text_for_every_format() -> None:
    for name in ("water-report.pdf", "orchard-summary.docx", "kestrel-lighthouse.html"):
        doc = load(DOCS / name)
        assert doc.paragraphs
        for span in doc.paragraphs:
            assert doc.text[span.start:span.end] == span.text


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("encrypted.pdf", 422, "encrypted"),
        ("scanned.pdf", 422, "scanned PDF with no text layer"),
        ("truncated.pdf", 422, "corrupt"),
    ],
)
def test_bad_pdfs(name: str, status: int, message: str) -> None:
    with pytest.raises(BadDocument, match=message) as info:
        load(DOCS / name)
    assert info.value.status == status
    assert "\n" not in str(info.value)


def test_zip_bomb_is_refused_from_the_directory(tmp_path: Path) -> None:
    bomb = tmp_path / "report.docx"
    zip_bomb(bomb)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(BadDocument, match="zip bomb") as info:
        load(bomb)
    assert info.value.status == 413


def test_old_office_files_and_other_zips_are_named_for_what_they_are(tmp_path: Path) -> None:
    """An old Word file (.doc: an OLE2 compound file) was refused as 'binary data' when
    named .docx and as an 'unsupported file type' when named .doc, and any zip named .txt
    as 'a DOCX file': each refusal names what the file is and, for an old Office file, what
    to do (save it as .docx)."""
    import io
    import zipfile

    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024)
    for name, raw, said in (
            ("minutes.docx", ole, "it is an old Office file (.doc, .xls, .ppt), not DOCX: "
                                  "save it as .docx"),
            ("minutes.doc", ole, "unsupported file type '.doc' (save it as .docx; supported: "),
            ("minutes.txt", ole, "it is an old Office file (.doc, .xls, .ppt), not TXT")):
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(BadDocument) as info:
            load(tmp_path / name)
        assert said in str(info.value) and info.value.status == 415, str(info.value)
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("notes.txt", "hello")
    (tmp_path / "notes.txt").write_bytes(packed.getvalue())
    with pytest.raises(BadDocument, match="it is a zip archive, not TXT$"):
        load(tmp_path / "notes.txt")


def test_corrupt_and_mislabelled_files(tmp_path: Path) -> None:
    (tmp_path / "broken.docx").write_bytes(corrupt_docx_bytes())
    with pytest.raises(BadDocument, match="corrupt"):
        load(tmp_path / "broken.docx")
    (tmp_path / "notes.docx").write_text("just text", encoding="utf-8")
    with pytest.raises(BadDocument, match="content does not match the name") as info:
        load(tmp_path / "notes.docx")
    assert info.value.status == 415
    (tmp_path / "report.txt").write_bytes((DOCS / "water-report.pdf").read_bytes())
    with pytest.raises(BadDocument, match="it is a PDF file, not TXT"):
        load(tmp_path / "report.txt")
    (tmp_path / "saved-page.txt").write_bytes(  # a page saved as text: tags in every quote
        b"\xef\xbb\xbf<!-- saved -->\n<!DOCTYPE html><html><body><p>Hours</p></body></html>")
    with pytest.raises(BadDocument, match="it is an HTML page, not TXT [(]save it as .html[)]$"):
        load(tmp_path / "saved-page.txt")
    (tmp_path / "notes.md").write_text("# Notes\n\n<b>Bold</b> text in <html> tags.\n",
                                       encoding="utf-8")
    assert load(tmp_path / "notes.md").kind == "md"  # Markdown may hold tags
    (tmp_path / "tool.exe").write_bytes(b"MZ\x90\x00")
    with pytest.raises(BadDocument, match="unsupported file type '.exe'"):
        load(tmp_path / "tool.exe")
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(BadDocument, match="empty"):
        load(tmp_path / "empty.pdf")
    (tmp_path / "blank.md").write_text(" \n\n\t\n", encoding="utf-8")
    with pytest.raises(BadDocument, match="empty"):
        load(tmp_path / "blank.md")


def test_type_is_decided_by_content_not_suffix_case(tmp_path: Path) -> None:
    raw = (DOCS / "water-report.pdf").read_bytes()
    assert loader_for("REPORT.PDF", raw).kind == "pdf"
    with pytest.raises(BadDocument):
        loader_for("report.html", raw)


def test_too_large_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("Title\n\n" + "word " * 1000, encoding="utf-8")
    with pytest.raises(BadDocument, match="too large") as info:
        load(big, max_bytes=100)
    assert info.value.status == 413


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32", "utf-16-be"])
def test_text_with_a_byte_order_mark_is_decoded(tmp_path: Path, encoding: str) -> None:
    text = "Café notes\n\nThe naïve plan costs 5 €.\n"
    raw = text.encode(encoding)
    if encoding == "utf-16-be":
        raw = codecs.BOM_UTF16_BE + raw
    (tmp_path / "notes.txt").write_bytes(raw)
    doc = load(tmp_path / "notes.txt")
    assert doc.text == text and doc.title == "Café notes"


def test_latin1_is_refused_with_the_offset(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("Caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(BadDocument, match="not UTF-8 text \\(bad byte at offset 3\\)"):
        load(tmp_path / "latin.txt")


def test_one_bad_seed_does_not_block_the_rest(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "good.txt").write_text("Good\n\nThe good file is indexed.\n", encoding="utf-8")
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "latin.txt").write_bytes(b"caf\xe9\n")
    (seeds / "utf16.txt").write_bytes("UTF sixteen\n\nIt has a mark.\n".encode("utf-16"))
    (seeds / "scan.pdf").write_bytes((DOCS / "scanned.pdf").read_bytes())
    (seeds / "\x1b[2Jwipe.txt").write_bytes(b"")  # a hostile name: logged escaped
    os.symlink(seeds / "missing.txt", seeds / "dangling.txt")
    os.symlink(seeds / "loop-b.txt", seeds / "loop-a.txt")
    os.symlink(seeds / "loop-a.txt", seeds / "loop-b.txt")
    settings = Settings(seeds_dir=seeds, index_dir=tmp_path / "index")
    corpus = load_corpus(settings)
    assert [d.id for d in corpus.documents] == ["good", "utf16"]
    reasons = {Path(p.file).name: p.reason for p in corpus.problems}
    assert "empty" in reasons["empty.txt"]
    assert "not UTF-8" in reasons["latin.txt"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "dangling" in reasons["dangling.txt"]
    assert "loop" in reasons["loop-a.txt"] and "loop" in reasons["loop-b.txt"]
    err = capsys.readouterr().err
    assert "skipped" in err and "dangling.txt" in err
    assert "\x1b" not in err and "\\x1b[2Jwipe.txt" in err
    load_corpus(settings)  # reported once per process, not on every load
    assert "dangling.txt" not in capsys.readouterr().err


def test_a_folder_in_the_seeds_folder_is_reported_not_silently_skipped(tmp_path: Path) -> None:
    """People bring a folder of documents with folders in it ('2023/report.pdf'): qa reads
    only the files of the seeds folder itself, and skipped the folders without a word, so
    their documents were silently missing from every answer. Each is reported as skipped,
    with why; a hidden one ('.git') is not."""
    seeds = tmp_path / "seeds"
    (seeds / "2023").mkdir(parents=True)
    (seeds / "2023" / "report.txt").write_text("Report\n\nThe pier opened.\n", encoding="utf-8")
    (seeds / ".git").mkdir()
    (seeds / "notes.txt").write_text("Notes\n\nThe pier opens at six.\n", encoding="utf-8")
    corpus = load_corpus(Settings(seeds_dir=seeds, index_dir=tmp_path / "index"))
    assert [d.id for d in corpus.documents] == ["notes"]
    assert [(Path(p.file).name, p.reason) for p in corpus.problems] == [
        ("2023", "a folder: qa reads only the files in the seeds folder itself (move its "
                 "files there, or add them with 'qa add')")]


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    """(unless the caller removed the last readable document: then an empty library)"""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "bad.txt").write_bytes(b"\xff\xfe\xfd")
    settings = Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")
    with pytest.raises(SeedError, match="no documents to index"):
        load_corpus(settings)
    corpus = load_corpus(settings, empty_ok=True)
    assert corpus.documents == []
    assert [Path(p.file).name for p in corpus.problems] == ["bad.txt"]


def test_no_file_at_all_is_an_empty_library(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    corpus = load_corpus(Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index"))
    assert corpus.documents == [] and corpus.problems == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/passwd", "passwd"), ("..\\..\\win.ini", "win"), ("My Report (final).PDF",
     "my-report-final"), (".hidden.txt", "hidden"), ("Résumé.docx", "resume"),
     ("....", "document"), ("a/b/c.md", "c"), ("\x1b[31mred.txt", "31mred")],
)
def test_ids_are_safe(name: str, expected: str) -> None:
    assert safe_id(name) == expected


def test_seed_article_still_loads_unchanged() -> None:
    doc = load(SEEDS / "politico-us-iraq-advisory-transition.txt")
    assert doc.text == (SEEDS / "politico-us-iraq-advisory-transition.txt").read_text("utf-8")


def test_a_pdf_locked_only_by_an_owner_password_opens(tmp_path: Path) -> None:
    """An empty user password (an owner password only restricts printing or copying) opens
    in every reader without asking; it is not refused as encrypted."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(DOCS / "water-report.pdf").pages:
        writer.add_page(page)
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    locked = tmp_path / "owner-only.pdf"
    with locked.open("wb") as fh:
        writer.write(fh)
    assert PdfReader(locked).is_encrypted
    doc, plain = load(locked), load(DOCS / "water-report.pdf")
    assert doc.text == plain.text and doc.pages == plain.pages


def test_a_fifo_or_a_device_is_refused_at_once_not_read(tmp_path: Path) -> None:
    """`qa add` of a named pipe waited forever for a writer (the read blocks); a device was
    read to the size cap. Neither is a document: refused before it is opened."""
    import threading

    from qa.loaders import read_capped

    fifo = tmp_path / "notes.txt"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_capped(fifo, 1000)
        except BaseException as exc:  # noqa: BLE001 - what the reader raised, for the test
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the old code's open() so the test can end
        with open(fifo, "wb"):
            pass
        reader.join(5)
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], BadDocument) and str(outcome[0]) == \
        "notes.txt: not a regular file"
    with pytest.raises(BadDocument, match="^zero: not a regular file$"):
        read_capped(Path("/dev/zero"), 1000)


@pytest.mark.parametrize(("text", "title"), [
    ("---\ntitle: Deploy guide\nauthor: Ops team\n---\n\n# Deploying the app\n\nRun it.\n",
     "Deploy guide"),
    ('---\ntitle: "Release notes: 2.0"\n---\nText.\n', "Release notes: 2.0"),
    ("---\nlayout: post\n---\n\n## Release notes\n\nText.\n", "Release notes"),
    ("# Plain heading\n\n---\n\nText.\n", "Plain heading"),
])
def test_a_markdown_file_s_title_is_its_front_matter_s(tmp_path: Path, text: str,
                                                       title: str) -> None:
    """A Markdown file with YAML front matter (Jekyll, Hugo, MkDocs) was titled '---'."""
    path = tmp_path / "guide.md"
    path.write_text(text, encoding="utf-8")
    doc = load(path)
    assert doc.title == title and doc.text == text


def test_a_markdown_file_s_front_matter_is_no_passage(tmp_path: Path) -> None:
    """The front matter ('---' / 'title: Beacon API' / 'version: 3.2' / '---') was a
    paragraph and a sentence of prose: embedded, indexed and quotable as an answer ('Which
    version is the API?'). It stays in the text (offsets are the file's) and in no passage;
    a .txt that opens with such lines keeps them."""
    from qa.chunking import chunk_documents

    text = ("---\ntitle: Beacon API\nversion: 3.2\n---\n\n# Beacon API\n\n"
            "Beacon collects uptime checks.\n\n---\n\nEach key may make 600 requests.\n")
    (tmp_path / "api.md").write_text(text, encoding="utf-8")
    (tmp_path / "api.txt").write_text(text, encoding="utf-8")
    doc = load(tmp_path / "api.md")
    assert doc.text == text and doc.title == "Beacon API"
    assert [p.text for p in doc.paragraphs] == [
        "# Beacon API", "Beacon collects uptime checks.", "---",
        "Each key may make 600 requests."]
    assert "version" not in " ".join(c.text for c in chunk_documents([doc]))
    assert load(tmp_path / "api.txt").paragraphs[0].text.startswith("---\ntitle: Beacon API")


def test_a_markdown_block_of_html_tags_alone_is_in_no_paragraph(tmp_path: Path) -> None:
    """A README centres its logo and folds a section with HTML ('<p align="center">', '<img
    src="docs/logo.png" width="200">', '</p>', '</details>'): blocks that show no text,
    yet were paragraphs of their own, indexed and quotable ('<p align="center">', '<img
    src=...'). A block of lines of tags alone is in no paragraph; in a block with text
    among its tags, the block tags around the text are in none either ('<details>' over
    its '<summary>', a raw HTML table: `test_markdown_block_tags_around_text_are_never_
    quoted`); an autolink ('<https://rivet.dev>') and a code fence's lines are text."""
    text = ('<p align="center">\n  <img src="docs/logo.png" width="200" alt="">\n</p>\n\n'
            '<h1 align="center">Rivet</h1>\n\nRivet joins data files into one table.\n\n'
            '<details>\n<summary>Why not pandas?</summary>\n\nPandas loads it all; Rivet '
            'streams.\n\n</details>\n\nDocs: <br>\n<https://rivet.dev>\n\n```html\n<br>\n'
            '```\n\n<table>\n<tr><td>Fast</td></tr>\n</table>\n')
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    doc = load(tmp_path / "README.md")
    assert doc.title == "Rivet"
    assert [p.text for p in doc.paragraphs] == [
        "Rivet", "Rivet joins data files into one table.",
        "Why not pandas?", "Pandas loads it all; Rivet streams.",
        "Docs: <br>\n<https://rivet.dev>", "```html\n<br>\n```",
        "Fast"]
    for p in doc.paragraphs:
        assert text[p.start:p.end] == p.text


def test_markdown_block_tags_around_text_are_never_quoted(tmp_path: Path) -> None:
    """A README folds a section in <details> (GitHub shows its <summary> as a line of
    text): the block '<details>' over '<summary>Install</summary>' was a paragraph, its
    tags quoted. The tags of HTML blocks (CommonMark's names: details, summary, p, div,
    h1-h6, li, td...) that open or close a line are in no paragraph, their text is, and
    so are those inside such a line ('<details><summary>Remove</summary>Run ...'); a
    line of a table's cells ('<tr><td>Rows</td><td>10 million</td></tr>') stays whole, inline
    tags (<b>, <kbd>) stay in their sentence, and tags in code are code (a fence, an
    inline code span, a line indented as code is: a fence in a list item)."""
    from qa.chunking import chunk_documents

    text = ("# Rivet\n\n<details>\n<summary>Install</summary>\n\nRun pip install rivet "
            "to get it.\n\n</details>\n\n<details><summary>Upgrade <b>safely</b></summary>"
            "\nRun pip install -U rivet.</details>\n\n<details><summary>Remove</summary>Run "
            "pip uninstall rivet.</details>\n\n<p align=\"center\">Rivet is "
            "<kbd>fast</kbd>.</p>\n\n<table>\n<tr><td>Rows</td><td>10 million</td></tr>\n"
            "</table>\n\nWrite `<summary>Text</summary>` to fold.\n\n```html\n"
            "<summary>Kept</summary>\n```\n\n- In a list:\n\n    ```rust\n    let page = html! "
            "{ <div>\n    Hello</div>\n    };\n    ```\n")
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    doc = load(tmp_path / "README.md")
    assert [p.text for p in doc.paragraphs] == [
        "# Rivet", "Install", "Run pip install rivet to get it.", "Upgrade <b>safely</b>",
        "Run pip install -U rivet.", "Remove", "Run pip uninstall rivet.",
        "Rivet is <kbd>fast</kbd>.",
        "<tr><td>Rows</td><td>10 million</td></tr>",
        "Write `<summary>Text</summary>` to fold.", "```html\n<summary>Kept</summary>\n```",
        "- In a list:", "```rust\n    let page = html! { <div>\n    Hello</div>\n    };\n    ```"]
    chunks = chunk_documents([doc])
    quoted = " ".join(s.text for c in chunks for s in c.sentences)
    assert "Install" in quoted and "<details>" not in quoted
    assert "<summary>Install" not in quoted and "</summary>" not in quoted.replace(
        "`<summary>Text</summary>`", "").replace("<summary>Kept</summary>", "")
    for p in doc.paragraphs:
        assert text[p.start:p.end] == p.text
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert all(text[s.start:s.end] == s.text for s in c.sentences)


def test_a_markdown_comment_inside_a_line_is_never_quoted(tmp_path: Path) -> None:
    """A comment inside a paragraph's line ('a day <!-- was 4 pounds, ask Sam --> and must',
    'free. <!-- TODO photo -->'), never shown by a renderer, was text of its paragraph:
    indexed and quoted. It is in no paragraph (what is left of the line on either side is
    text), nor the title; one in an inline code span (`<!-- x -->`) or a code fence is
    text a reader sees; a '<!--' never closed is text too."""
    from qa.chunking import chunk_documents

    text = ("# Bike hire <!-- draft -->\n\nBikes cost 5 pounds a day <!-- was 4 pounds, ask "
            "Sam --> and must be back by 6 pm.\n\nHelmets are free. <!-- TODO: a photo\nof "
            "one -->\nWrite `<!-- x -->` for a comment.\n\n```\nkeep <!-- this -->\n```\n\n"
            "Tip: <!-- is how a comment opens.\n")
    (tmp_path / "bikes.md").write_text(text, encoding="utf-8")
    doc = load(tmp_path / "bikes.md")
    assert doc.title == "Bike hire"
    assert [p.text for p in doc.paragraphs] == [
        "# Bike hire", "Bikes cost 5 pounds a day", "and must be back by 6 pm.",
        "Helmets are free.", "Write `<!-- x -->` for a comment.", "```\nkeep <!-- this -->\n```",
        "Tip: <!-- is how a comment opens."]
    for p in doc.paragraphs:
        assert text[p.start:p.end] == p.text
    quoted = " ".join(s.text for c in chunk_documents([doc]) for s in c.sentences)
    assert "Sam" not in quoted and "photo" not in quoted and "draft" not in quoted


def test_a_markdown_file_s_comments_are_never_quoted(tmp_path: Path) -> None:
    """An HTML comment in Markdown ('<!-- TODO: internal note: the staging password is
    hunter2 -->'), never shown by a renderer, was a paragraph of sentences: indexed and
    quotable. Comments (outside code fences) are in no paragraph, nor the title; with CRLF
    line ends the front matter's title is read too (it was '---')."""
    from qa.chunking import chunk_documents

    text = ("<!-- draft -->\n---\n\n# Deploy guide\n\n<!-- TODO: internal note: the staging "
            "password is hunter2 -->\nDeploy with the orbit tool.\n\n"
            "```html\n<!-- kept: it is code -->\n```\n")
    (tmp_path / "deploy.md").write_text(text, encoding="utf-8")
    doc = load(tmp_path / "deploy.md")
    assert doc.text == text and doc.title == "Deploy guide"
    assert [p.text for p in doc.paragraphs] == [
        "---", "# Deploy guide", "Deploy with the orbit tool.",
        "```html\n<!-- kept: it is code -->\n```"]
    assert "hunter2" not in " ".join(c.text for c in chunk_documents([doc]))
    (tmp_path / "notes.md").write_bytes(b'---\r\ntitle: "Release notes"\r\n---\r\n\r\nText.\r\n')
    notes = load(tmp_path / "notes.md")
    assert notes.title == "Release notes" and [p.text for p in notes.paragraphs] == ["Text."]


def test_a_passage_never_spans_a_line_left_out_as_furniture(tmp_path: Path) -> None:
    """A line left out of every paragraph as page furniture ('Share this article',
    'Advertisement') was still inside the passage that spanned it (a passage is the slice
    from its first sentence to its last): embedded, searched and shown with it. A passage
    ends before such a line."""
    from qa.chunking import chunk_documents

    (tmp_path / "news.txt").write_text(
        "The ferry resumes on Monday.\n\nAdvertisement\n\nTickets cost four pounds.\n",
        encoding="utf-8")
    chunks = chunk_documents([load(tmp_path / "news.txt")])
    assert [c.text for c in chunks] == ["The ferry resumes on Monday.",
                                        "Tickets cost four pounds."]


def test_docx_nonsense_numbering_still_loads(tmp_path: Path) -> None:
    """A numbering part naming a missing list, levels that are not numbers, a start of 'q':
    the text still loads, its items marked as bullets (never a traceback or a refusal)."""

    import docx

    document = docx.Document()
    document.add_paragraph("Intro:")
    document.add_paragraph("Bikes travel free", style="List Bullet")
    document.save(str(tmp_path / "plain.docx"))
    numbering = ("<w:numbering xmlns:w='http://schemas.openxmlformats.org/wordprocessingml/2006/"
                 "main'><w:num w:numId='1'><w:abstractNumId w:val='99'/><w:lvlOverride "
                 "w:ilvl='zz'><w:startOverride w:val='q'/></w:lvlOverride></w:num><w:abstractNum "
                 "w:abstractNumId='x'><w:lvl w:ilvl='zz'><w:start w:val='q'/><w:lvlText "
                 "w:val='%9%1.'/></w:lvl></w:abstractNum></w:numbering>")
    odd = _with_parts(tmp_path / "plain.docx", tmp_path / "odd.docx",
                      {"word/numbering.xml": numbering})
    assert load(odd).text == "Intro:\n\n- Bikes travel free"


def test_docx_text_boxes_are_read_once(tmp_path: Path) -> None:
    """A text box's paragraphs (a sidebar, a callout) were left out: 'Tickets cost four
    pounds.' in a box could not be found. They follow the paragraph that anchors the box,
    once, though Word writes each box twice (drawing and VML fallback)."""
    import docx
    from docx.oxml import parse_xml

    namespaces = " ".join(f'xmlns:{k}="{v}"' for k, v in {
        "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
        "wps": "http://schemas.microsoft.com/office/word/2010/wordprocessingShape",
        "v": "urn:schemas-microsoft-com:vml"}.items())
    content = ("<w:txbxContent><w:p><w:r><w:t>Tickets cost four pounds.</w:t></w:r></w:p>"
               "</w:txbxContent>")
    document = docx.Document()
    document.add_paragraph("The ferry runs daily.")
    anchor = document.add_paragraph("See the box.")
    anchor._p.append(parse_xml(
        f"<w:r {namespaces}><mc:AlternateContent><mc:Choice Requires=\"wps\"><w:drawing>"
        f"<wps:txbx>{content}</wps:txbx></w:drawing></mc:Choice><mc:Fallback><w:pict>"
        f"<v:textbox>{content}</v:textbox></w:pict></mc:Fallback></mc:AlternateContent></w:r>"))
    document.add_paragraph("Dogs travel free.")
    document.save(str(tmp_path / "box.docx"))
    assert [p.text for p in load(tmp_path / "box.docx").paragraphs] == [
        "The ferry runs daily.", "See the box.", "Tickets cost four pounds.",
        "Dogs travel free."]


_API_MD = """# Rivet API reference

Rivet is a small job queue for Python services.

## Installation

Install it with pip:

```bash
# install the client
pip install rivet-client

# check the version. It prints 2.1
rivet --version | grep 2.
```

## Authentication

Every request needs a token. Send it in the Authorization header.
~~~python
client = Rivet(token="abc")

client.ping()
~~~

```
never closed

Tokens expire after one hour.
"""


def test_a_markdown_fenced_code_block_is_one_unit_and_no_answer(tmp_path: Path) -> None:
    """A blank line inside a fenced code block (``` or ~~~) split it into two paragraphs,
    so half a program began a passage, its '# comments' read as headings and its lines as
    sentences, and a fence could be quoted as the answer. A fence is one paragraph and one
    sentence, fences included (a fence right under a line of prose too), exact in the file,
    and the chunker takes it for no prose that answers; a fence never closed is text."""
    from qa.chunking import chunk_documents

    path = tmp_path / "api.md"
    path.write_text(_API_MD, encoding="utf-8")
    doc = load(path)
    blocks = [p.text for p in doc.paragraphs]
    bash = _API_MD[_API_MD.index("```bash"):_API_MD.index("```\n\n## Auth") + 3]
    python = _API_MD[_API_MD.index("~~~python"):_API_MD.rindex("~~~") + 3]
    assert blocks[4] == bash and blocks[7] == python
    assert blocks[6] == "Every request needs a token. Send it in the Authorization header."
    assert blocks[8:] == ["```\nnever closed", "Tokens expire after one hour."]
    raw = path.read_bytes().decode()
    sentences = [(s, c) for c in chunk_documents([doc]) for s in c.sentences]
    for sentence, _ in sentences:
        assert raw[sentence.start:sentence.end] == sentence.text
    code = [s.text for s, _ in sentences if s.text.lstrip().startswith(
        ("```bash", "~~~", "# install", "# check", "pip", "client"))]
    assert code == [bash, python]
    headings = _headings(doc)
    assert {"## Installation", "## Authentication", bash, python} <= set(headings)
    assert not {"Install it with pip:", "Every request needs a token."} & set(headings)


def test_a_windows_file_s_headings_are_headings(tmp_path: Path) -> None:
    """A .txt or .md keeps its bytes, so a file saved on Windows holds CRLF line ends, and
    the chunker, which looked for '\\n' after a heading, took none of its headings and FAQ
    questions for one ('# Opening hours', 'How do I book a tour?'): they were quoted as
    answers. Its headings are those of the same file with LF line ends, fences included."""
    text = ("# Opening hours\n\nThe museum opens at ten every day.\n\nHow do I book a tour?\n"
            "\nBook a tour at the front desk.\n\n4. Prices\n\n- Adults pay eight pounds\n"
            "- Children go free\n\n```\ncurl https://museum.example/api\n\nexit 0\n```\n\n"
            "Tickets are sold at the door.\n")
    (tmp_path / "unix.md").write_text(text, encoding="utf-8")
    (tmp_path / "windows.md").write_bytes(text.replace("\n", "\r\n").encode())
    unix, windows = _headings(load(tmp_path / "unix.md")), _headings(load(tmp_path / "windows.md"))
    assert unix[:3] == ["# Opening hours", "How do I book a tour?", "4. Prices"]
    assert [h.replace("\r\n", "\n") for h in windows] == unix


_ACCORDIONS = """<!doctype html><html><head><title>Help Centre</title></head><body>
<header><button class="menu-toggle" aria-expanded="false" aria-controls="nav">Menu</button>
<nav id="nav"><a href="/">Home</a> <a href="/help">Help</a></nav></header>
<main><h1>Account questions</h1>
<p>Answers to the questions our support team hears most often about your account.</p>
<h3><button aria-expanded="false" aria-controls="a1">How do I reset my password?</button></h3>
<div id="a1" hidden><p>Go to Settings, choose Security and press Reset password.</p></div>
<h3><button aria-expanded="false" aria-controls="a2">Deleting your account</button></h3>
<div id="a2" hidden><p>Write to privacy@example.com from the address on the account.</p></div>
<button class="accordion">Do you ship abroad?</button>
<div class="panel"><p>We ship to the EU and the United States by courier.</p></div>
<button class="accordion">Returns</button>
<div class="panel"><p>You can return an item within 30 days for a full refund.</p></div>
<button aria-expanded="false" aria-controls="more">Useful links</button>
<ul id="more"><li><a href="/a">Billing help and invoices</a></li><li><a href="/b">Privacy
and data protection</a></li></ul>
<form><input name="email"><button type="submit">Subscribe</button></form>
<button class="cta">Accept</button> <button onclick="print()">Print</button>
<p>Our help desk answers within a working day.</p><button class="chat">Need help?</button>
</main></body></html>"""


def test_an_accordion_s_questions_are_headings_and_other_buttons_are_dropped(
        tmp_path: Path) -> None:
    """An accordion or FAQ page holds each question in a <button> (in an <h3>, the WAI-ARIA
    pattern, or a <button class="accordion"> before its panel): buttons were dropped as
    controls, so the answers were indexed and their questions lost. Such a button's text is
    a heading before its answer; a button that opens no panel of text ('Menu' over links,
    'Useful links' over a list of links, 'Subscribe', 'Accept', 'Print', a chat widget's
    'Need help?') is still no text."""
    (tmp_path / "faq.html").write_text(_ACCORDIONS, encoding="utf-8")
    doc = load(tmp_path / "faq.html")
    assert [p.text for p in doc.paragraphs] == [
        "Account questions",
        "Answers to the questions our support team hears most often about your account.",
        "How do I reset my password?",
        "Go to Settings, choose Security and press Reset password.",
        "Deleting your account",
        "Write to privacy@example.com from the address on the account.",
        "Do you ship abroad?", "We ship to the EU and the United States by courier.",
        "Returns", "You can return an item within 30 days for a full refund.",
        "Our help desk answers within a working day."]
    assert doc.title == "Help Centre"
    assert _headings(doc) == ["Account questions", "How do I reset my password?",
                              "Deleting your account", "Do you ship abroad?", "Returns"]


_MINUTES_TXT = """RIVERSIDE ALLOTMENT SOCIETY
Committee meeting minutes
Date: Tuesday 4 March 2025, 7.30pm
Venue: Riverside Community Hall, Room 2

Present: J. Patel (Chair), M. O'Neill (Secretary), S. Kowalski (Treasurer)
Apologies: T. Hughes

3. Water supply
The water will be turned on on 1 April. A. Boateng said the tap near plot 23 is
leaking. ACTION: A. Boateng to repair the tap.

4. Waiting list
There are 14 people on the waiting list.

Steps:
1. Open the gate
2. Lock it again

Chapter 5: The Return
"""


def test_plain_text_sections_and_records_are_told_apart(tmp_path: Path) -> None:
    """In plain text (minutes, notes) a numbered section's heading sits on the line over its
    prose, and it was glued to the first sentence ('4. Waiting list\\nThere are 14 people on
    the waiting list.': quoted so, and the section's number taken for the answer's '4');
    the lines of a record ('Present: ...' / 'Apologies: T. Hughes') were one sentence, and
    alone each short one read as a heading. The heading is a sentence and a heading of its
    own; each line of a record is a sentence and none a heading; a numbered list, a line
    under a colon and a lone 'Chapter 5: The Return' are as before."""
    from qa.chunking import chunk_documents

    (tmp_path / "minutes.txt").write_text(_MINUTES_TXT, encoding="utf-8")
    doc = load(tmp_path / "minutes.txt")
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    assert sentences == [
        "RIVERSIDE ALLOTMENT SOCIETY\nCommittee meeting minutes",
        "Date: Tuesday 4 March 2025, 7.30pm", "Venue: Riverside Community Hall, Room 2",
        "Present: J. Patel (Chair), M. O'Neill (Secretary), S. Kowalski (Treasurer)",
        "Apologies: T. Hughes", "3. Water supply", "The water will be turned on on 1 April.",
        "A. Boateng said the tap near plot 23 is\nleaking.",
        "ACTION: A. Boateng to repair the tap.", "4. Waiting list",
        "There are 14 people on the waiting list.", "Steps:", "1. Open the gate",
        "2. Lock it again", "Chapter 5: The Return"]
    assert _headings(doc) == ["3. Water supply", "4. Waiting list", "Chapter 5: The Return"]


def test_lines_under_a_table_s_rows_are_sentences_of_the_table(tmp_path: Path) -> None:
    """Lines under a table's rows in its paragraph (GitHub's Markdown reads them as rows;
    a cell's lines) were one sentence ('Finance Director\nManaging Partner') unless a row
    stood beside each, and a short one alone read as a heading. Every line from a table's
    first row down is a sentence of the table, and none a heading."""
    from qa.chunking import chunk_documents

    (tmp_path / "signed.md").write_text(
        "Governed by the law of England and Wales.\n\n| Client | Consultant |\n|---|---|\n"
        "| Laura Chen | Omar Haddad |\nFinance Director\nManaging Partner\n", encoding="utf-8")
    doc = load(tmp_path / "signed.md")
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    assert sentences[1:] == ["| Client | Consultant |\n|---|---|", "| Laura Chen | Omar Haddad |",
                             "Finance Director", "Managing Partner"]
    assert _headings(doc) == ["| Client | Consultant |\n|---|---|"]


def test_a_tab_s_name_heads_its_panel(tmp_path: Path) -> None:
    """Tabs (<button role="tab" aria-controls="p-mac">macOS</button> in a row, each panel
    further down) gave their names as one line where the buttons were ('Windows macOS',
    then 'Linux'), no panel under its name. Each name is a heading before its panel."""
    (tmp_path / "install.html").write_text(
        '<html><body><main><h1>Installing the agent</h1><p>The agent runs on every server you '
        'want to monitor. Pick your system below.</p><div role="tablist">'
        '<button role="tab" aria-controls="p-win">Windows</button><button role="tab" '
        'aria-controls="p-mac">macOS</button><button role="tab" aria-controls="p-lin">Linux'
        '</button></div><div id="p-win" role="tabpanel"><p>Run the MSI installer as an '
        'administrator.</p></div><div id="p-mac" role="tabpanel" hidden><p>Install it with '
        'Homebrew. It needs macOS 12 or later.</p></div><div id="p-lin" role="tabpanel" hidden>'
        '<p>Install the deb or rpm package.</p></div></main></body></html>', encoding="utf-8")
    doc = load(tmp_path / "install.html")
    assert [p.text for p in doc.paragraphs][2:] == [
        "Windows", "Run the MSI installer as an administrator.", "macOS",
        "Install it with Homebrew. It needs macOS 12 or later.", "Linux",
        "Install the deb or rpm package."]


def test_a_long_code_block_is_one_passage_and_no_answer(tmp_path: Path) -> None:
    """A code block longer than a passage was wrapped into pieces, each in a passage of its
    own and, but for the first, prose to the ranker (quotable as an answer). Its pieces,
    cut at line ends, stay in one passage, where each is seen inside the fences."""
    from qa.chunking import chunk_documents

    code = "\n".join(f'    step_{i} = run("task-{i}", retries=3)  # step {i}' for i in range(40))
    text = f"# Deploy\n\nRun the deploy script.\n\n```python\n{code}\n```\n\nIt takes a minute.\n"
    (tmp_path / "deploy.md").write_text(text, encoding="utf-8")
    chunks = chunk_documents([load(tmp_path / "deploy.md")])
    pieces = [(c, s) for c in chunks for s in c.sentences if "step_" in s.text]
    assert len(pieces) > 2 and len({c.id for c, _ in pieces}) == 1
    assert all(s.text.endswith(("```", ")  # step " + s.text.rpartition(" ")[2]))
               for _, s in pieces)  # cut at line ends
    assert _headings(load(tmp_path / "deploy.md")) == ["# Deploy"] + [s.text for _, s in pieces]


def test_a_code_block_longer_than_a_passage_cap_stays_code(tmp_path: Path) -> None:
    """A code block over 4,000 characters (CODE_CHARS) was cut into passages of their own,
    and in each passage but the first and the last no fence was in sight: its lines were
    prose to the ranker, quotable as answers. Every piece of it is code, in the chunker and
    in the index that is built (each passage still bounded in size)."""
    from qa.chunking import CODE_CHARS, chunk_documents, is_heading
    from qa.store import build_index
    from tests.conftest import HashingEmbedder

    code = "\n".join(f'step_{i} = run("task-{i}", retries=3)  # Step {i} of the deploy.'
                     for i in range(400))
    assert len(code) > 4 * CODE_CHARS
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "deploy.md").write_text(
        f"# Deploy\n\nRun the deploy script.\n\n```python\n{code}\n```\n\nIt takes a "
        "minute.\n", encoding="utf-8")
    chunks = chunk_documents([load(seeds / "deploy.md")])
    pieces = [(c, s) for c in chunks for s in c.sentences if "step_" in s.text]
    assert len({c.id for c, _ in pieces}) > 2 and max(len(c.text) for c in chunks) <= CODE_CHARS
    assert all(is_heading(s, c) for c, s in pieces)
    index = build_index(Settings(model="fake-hashing", seeds_dir=seeds,
                                 index_dir=tmp_path / "index", spacy="none"), HashingEmbedder())
    stored = list(index.chunks)
    assert [(c.start, c.end) for c in stored] == [(c.start, c.end) for c in chunks]
    assert all(is_heading(s, c) == ("step_" in s.text or s.text == "# Deploy")
               for c in stored for s in c.sentences)


def test_many_code_blocks_are_found_in_linear_time() -> None:
    """The passages' code blocks (`chunking.code_blocks`) were matched to their closing
    fences by a search of all the closing fences at each line: 20,000 small code blocks
    took 33 s here before the document was chunked. One sweep: well under a second."""
    import time

    from qa.chunking import code_blocks

    text = "".join(f"Part {n} text.\n\n```\ncode {n}\n```\n\n" for n in range(20_000))
    started = time.perf_counter()
    blocks = code_blocks(text)
    assert len(blocks) == 20_000 and time.perf_counter() - started < 3.0
    assert text[blocks[7][0]:blocks[7][1]] == "```\ncode 7\n```"


def test_an_html_code_block_is_one_paragraph_apart_from_the_prose(tmp_path: Path) -> None:
    """trafilatura writes a <pre> block as bare lines, so 'Install the tool from PyPI:' and
    the commands under it ran into one sentence of prose ('Install the tool from PyPI: pip
    install orbit-cli orbit --version'), quoted as such. A <pre> block is a fenced block of
    its own (its lines and indentation as they are), which the chunker knows for code."""
    (tmp_path / "guide.html").write_text(
        "<html><body><article><h1>Orbit CLI guide</h1><p>The Orbit command line tool deploys "
        "services to the Orbit platform. It needs Python 3.10 or later.</p><h2>Install</h2>"
        "<p>Install the tool from PyPI:</p><pre><code>pip install orbit-cli\n\nif [ -x orbit ]"
        "; then\n    orbit --version\nfi\n</code></pre><p>The version must be 2.4 or later to "
        "use workspaces.</p></article></body></html>", encoding="utf-8")
    doc = load(tmp_path / "guide.html")
    assert [p.text for p in doc.paragraphs][3:] == [
        "Install the tool from PyPI:",
        "```\npip install orbit-cli\nif [ -x orbit ]; then\n    orbit --version\nfi\n```",
        "The version must be 2.4 or later to use workspaces."]
    assert "Install the tool from PyPI:" not in _headings(doc)
    assert "```\npip install orbit-cli" in _headings(doc)[-1]


def test_an_html_page_is_parsed_once_for_trafilatura(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loader parsed a page with lxml three times (accordion headings, marks for
    trafilatura, divs of text as paragraphs), writing it out between passes. One tree takes
    the three edits now; the text is the same as the three passes gave, byte for byte, on a
    page that has what each pass edits (an accordion whose button and inline panel are in a
    paragraph, where a heading ends up inside a <p>; a cell of two paragraphs; a div of text
    with a <br>; a figure's caption; a <pre>)."""
    import sys

    import lxml.html

    from qa.loaders.html import HtmlLoader

    page = ('<html><head><title>Marina guide</title></head><body><article><h1>Marina guide'
            '</h1><p>Before you come <button class="accordion">Can I bring a dog?</button>'
            '<span>Dogs are welcome on a lead everywhere but the café.</span> Ask at the '
            'office.</p><table><tr><th>Berth</th><th>Fee</th></tr><tr><td>Pontoon</td><td><p>'
            '12 pounds</p><p>Water included</p></td></tr></table><div>The office opens at 8 am'
            '<br>and shuts at 6 pm.</div><figure><img src="m.png"><figcaption>Figure 1: the '
            'north pier.</figcaption></figure><pre>call 555 0100\nask for Sam</pre></article>'
            '</body></html>')
    parses = []
    parse = lxml.html.fromstring

    def counted(*args: Any, **kwargs: Any) -> Any:
        if sys._getframe(1).f_globals["__name__"] == "qa.loaders.html":
            parses.append(1)
        return parse(*args, **kwargs)

    monkeypatch.setattr(lxml.html, "fromstring", counted)
    assert HtmlLoader().extract(page.encode(), "guide.html").text == (
        "Marina guide\n\nBefore you come\n\nCan I bring a dog?\n\nDogs are welcome on a "
        "lead everywhere but the café. Ask at the office.\n\n| Berth | Fee |\n|---|---|\n| "
        "Pontoon | 12 pounds; Water included |\n\nThe office opens at 8 am and shuts at 6 pm."
        "\n\nFigure 1: the north pier.\n\n```\ncall 555 0100\nask for Sam\n```")
    assert len(parses) == 1


def test_an_html_layout_table_is_read_as_the_page_s_blocks(tmp_path: Path) -> None:
    """An older site lays its page out in a table: one row, the menu's links in one cell and
    the page's text in the next. It was read as a table's row, one 'sentence' of the menu
    and every paragraph ('| Home; Hire; Events | Village Hall hire; The main hall seats 120
    ...'), quoted whole. A table of one row, one holding a table, or one marked as
    presentation is read as the blocks it holds; a cell of it that is all links goes. A
    table of data (rows under a header) is still a table, also beside loose text in a
    block, where trafilatura read it as one line of its cells' words ('Room Seats Main hall
    120 Small room 20')."""
    from qa.chunking import chunk_documents

    (tmp_path / "hall.html").write_text(
        '<html><head><title>Village Hall</title></head><body><table width="100%"><tr>'
        '<td width="20%"><a href="/">Home</a><br><a href="/hire">Hire</a><br><a href="/events">'
        'Events</a></td><td><b>Village Hall hire</b><br><br>The main hall seats 120 people and '
        'costs £25 an hour to hire.<br>The small room seats 20 and costs £10 an hour.<br><br>'
        '<table><tr><th>Room</th><th>Seats</th></tr><tr><td>Main hall</td><td>120</td></tr>'
        '<tr><td>Small room</td><td>20</td></tr></table>Call Jean on 01234 567890 to book.'
        '</td></tr></table></body></html>', encoding="utf-8")
    doc = load(tmp_path / "hall.html")
    text = " ".join(p.text for p in doc.paragraphs)
    assert "Home" not in text and "Events" not in text
    assert "| Room | Seats |\n|---|---|\n| Main hall | 120 |\n| Small room | 20 |" in text
    sentences = [s.text for c in chunk_documents([doc]) for s in c.sentences]
    hall = next(s for s in sentences if "main hall seats" in s)
    assert hall.endswith("The main hall seats 120 people and costs £25 an hour to hire.")
    assert "|" not in hall and "Call Jean on 01234 567890 to book." in sentences


def test_an_html_table_cell_s_lines_are_not_run_together(tmp_path: Path) -> None:
    """trafilatura runs a cell's lines (<br>, or its <p>s) together: 'Parallel deploy
    workers Raise it for large projects', 'Hire costs £20 an hour'. They are joined as the
    Word loader joins a cell's paragraphs ('; '), the row one line; other rows as before."""
    (tmp_path / "config.html").write_text(
        "<html><body><article><h1>Configuration</h1><p>The Orbit tool reads its settings from "
        "a file in your home folder when it starts.</p><table><tr><th>Key</th><th>Default</th>"
        "<th>Meaning</th></tr><tr><td>region</td><td>eu-west-1</td><td>Where services run</td>"
        "</tr><tr><td>workers</td><td>4</td><td><p>Parallel deploy workers</p><p>Raise it for "
        "large projects</p></td></tr><tr><td>Hire costs<br>per hour</td><td>£20</td><td>Paid "
        "in advance.<br>No refunds</td></tr></table></article></body></html>", encoding="utf-8")
    table = next(p.text for p in load(tmp_path / "config.html").paragraphs if "|" in p.text)
    assert table.splitlines()[2:] == [
        "| region | eu-west-1 | Where services run |",
        "| workers | 4 | Parallel deploy workers; Raise it for large projects |",
        "| Hire costs; per hour | £20 | Paid in advance. No refunds |"]


def test_an_html_figure_s_caption_is_read(tmp_path: Path) -> None:
    """trafilatura drops a <figure>, its <figcaption> with it, so 'Figure 1: the deploy
    pipeline has three stages.' was never indexed. A caption is a paragraph where it
    stands; a figure without one still gives nothing."""
    (tmp_path / "pipeline.html").write_text(
        "<html><body><article><h1>Deploying</h1><p>Every release goes through the same "
        "pipeline before it reaches production.</p><figure><img src='a.png' alt='Pipeline'>"
        "<figcaption>Figure 1: the deploy pipeline has three stages.</figcaption></figure>"
        "<figure><img src='b.png' alt='Logo'></figure><p>Each stage must pass before the next "
        "one starts.</p></article></body></html>", encoding="utf-8")
    assert [p.text for p in load(tmp_path / "pipeline.html").paragraphs] == [
        "Deploying", "Every release goes through the same pipeline before it reaches "
        "production.", "Figure 1: the deploy pipeline has three stages.",
        "Each stage must pass before the next one starts."]


def test_an_html_table_s_caption_is_no_row_of_it(tmp_path: Path) -> None:
    """trafilatura writes a table's <caption> as its first row ('| Configuration keys | | |'
    over a |---| rule), so the caption was taken for the column names and the real ones
    ('| Key | Default | Meaning |') for data: quoted as the answer to 'What is the default
    region?'. The caption is a paragraph before its table; the column names head it."""
    (tmp_path / "config.html").write_text(
        "<html><body><article><h1>Configure</h1><p>The tool reads its settings from a file in "
        "your home folder each time it starts up.</p><table><caption>Configuration keys"
        "</caption><tr><th>Key</th><th>Default</th></tr><tr><td>region</td><td>eu-west-1</td>"
        "</tr><tr><td>workers</td><td>4</td></tr></table></article></body></html>",
        encoding="utf-8")
    doc = load(tmp_path / "config.html")
    assert [p.text for p in doc.paragraphs][2:] == [
        "Configuration keys",
        "| Key | Default |\n|---|---|\n| region | eu-west-1 |\n| workers | 4 |"]
    assert _headings(doc) == ["Configure", "Configuration keys", "| Key | Default |\n|---|---|"]


def test_a_block_quote_is_quoted_without_its_marks(tmp_path: Path) -> None:
    """A Markdown (or e-mail) block quote was quoted with its marks: 'When are deployments
    frozen?' -> '> **Note:** deployments are frozen on Fridays after 2pm.' The sentence
    starts after them, still an exact slice of the file."""
    from qa.chunking import chunk_documents

    text = ("# Deploying\n\nShip from the main branch only.\n\n> **Note:** deployments are "
            "frozen on Fridays after 2pm.\n\n>> On Monday Ann wrote: the pipeline is green.\n")
    (tmp_path / "deploy.md").write_text(text, encoding="utf-8")
    sentences = [s for c in chunk_documents([load(tmp_path / "deploy.md")]) for s in c.sentences]
    assert [s.text for s in sentences][2:] == [
        "**Note:** deployments are frozen on Fridays after 2pm.",
        "On Monday Ann wrote: the pipeline is green."]
    assert all(text[s.start:s.end] == s.text for s in sentences)


def test_docx_line_breaks_are_lines_and_a_block_of_lines_is_no_heading(tmp_path: Path) -> None:
    """A line break in a Word paragraph (Shift+Enter: an address, the lines under 'Opening
    hours:', a cell's name over its e-mail) was a space, so the lines ran together ('Write
    to us at 12 Mill Lane Holt'), and six words with no full stop read as a heading: the
    address was never quoted. A break is a line break (in a cell, '; '), and a sentence of
    several lines is no heading (a Markdown heading underlined with '===' still is)."""
    import docx

    document = docx.Document()
    document.add_paragraph("Visit the village hall for the summer fair this year.")
    for first, *rest in (("Opening hours:", "Monday to Friday 9am to 5pm", "Saturday 10am"),
                         ("Write to us at", "12 Mill Lane", "Holt")):
        paragraph = document.add_paragraph(first)
        for line in rest:
            paragraph.runs[-1].add_break()
            paragraph.add_run(line)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text, table.cell(1, 0).text = "Room", "Contact", "Hall"
    cell = table.cell(1, 1).paragraphs[0]
    cell.add_run("Ann Lee").add_break()
    cell.add_run("ann@example.com")
    document.save(str(tmp_path / "hall.docx"))
    doc = load(tmp_path / "hall.docx")
    assert [p.text for p in doc.paragraphs][1:] == [
        "Opening hours:\nMonday to Friday 9am to 5pm\nSaturday 10am",
        "Write to us at\n12 Mill Lane\nHolt", "Room | Contact\nHall | Ann Lee; ann@example.com"]
    assert _headings(doc) == ["Room | Contact"]
    (tmp_path / "guide.md").write_text("Deploy guide\n============\n\nRun it.\n", encoding="utf-8")
    assert _headings(load(tmp_path / "guide.md")) == ["Deploy guide\n============"]


@pytest.mark.parametrize("fallback", [False, True], ids=["trafilatura", "fallback"])
def test_an_html_block_of_br_lines_is_one_paragraph(fallback: bool) -> None:
    """trafilatura writes a <br> as it writes a paragraph's end, so 'Write to us at<br>Acme
    Supplies Ltd<br>12 Mill Lane' and 'Phone<br>01263 555 0199' were a paragraph per line,
    each short line a heading: 'What is the phone number?' had nothing to quote. The lines
    of a <br> block are lines of one paragraph (a line going on in lower case after no full
    stop still joins its sentence with a space), in the fallback too."""
    from qa.loaders import document_of
    from qa.loaders.html import HtmlLoader

    article = ("<h1>Contact us</h1><p>Our office is open to visitors on weekdays and we are happy "
               "to help with any question about your order.</p><p>Write to us at<br>Acme "
               "Supplies Ltd<br>12 Mill Lane</p><p>Phone<br>01263 555 0199</p><p>The board "
               "approved<br>the new opening hours.</p>")
    page = (f"<html><body>{'<div>' * 300}{article}{'</div>' * 300}</body></html>" if fallback
            else f"<html><body><article>{article}</article></body></html>")
    doc = document_of("contact", "contact.html", "html",
                      HtmlLoader().extract(page.encode(), "contact.html"), "")
    assert [p.text for p in doc.paragraphs][2:] == [
        "Write to us at\nAcme Supplies Ltd\n12 Mill Lane", "Phone\n01263 555 0199",
        "The board approved the new opening hours."]
    assert _headings(doc) == ["Contact us"]


def test_a_heading_heads_the_passage_of_what_follows_it(tmp_path: Path) -> None:
    """Passages close at a paragraph's end once long enough, so a FAQ's question (or a
    section's heading) under a short answer closed the passage before its own answer:
    'How do I reset my password?' ended the passage about usernames, and the passage
    holding its answer lacked its words. Headings that would end a passage open the next."""
    from qa.chunking import chunk_documents

    (tmp_path / "faq.md").write_text(
        "# Account questions\n\nAnswers to the questions our support team hears most often "
        "about your account.\n\n## Sign-in\n\nHow do I reset my password?\n\nGo to Settings, "
        "choose Security and press Reset password. The link works for one hour.\n\nCan I "
        "change my username?\n\nUsernames are permanent once the account is created.\n",
        encoding="utf-8")
    chunks = chunk_documents([load(tmp_path / "faq.md")])
    assert [[s.text for s in c.sentences][:3] for c in chunks] == [
        ["# Account questions", "Answers to the questions our support team hears most often "
         "about your account."],
        ["## Sign-in", "How do I reset my password?", "Go to Settings, choose Security and "
         "press Reset password."],
        ["Can I change my username?", "Usernames are permanent once the account is created."]]


@pytest.mark.parametrize(("text", "title"), [
    ("[![Build](https://ci.example/b.svg)](https://ci.example) [![PyPI](https://x/p.svg)]"
     "(https://pypi.org/p/rivet)\n\n# Rivet\n\nA small job queue.\n", "Rivet"),
    ('<p align="center"><img src="logo.png" alt=""></p>\n<h1 align="center">Rivet</h1>\n\n'
     "A small job queue.\n", "Rivet"),
    ("[Docs](https://docs.example) | [Chat](https://chat.example)\n\n# Rivet **2**\n\nText.\n",
     "Rivet 2"),
    ("A small job queue for Python services.\n\n## Install\n\nText.\n",
     "A small job queue for Python services."),
])
def test_a_markdown_file_s_title_is_what_a_reader_sees(tmp_path: Path, text: str,
                                                      title: str) -> None:
    """A README opening with badges or an HTML banner was titled with its markup ('[![Build]
    (https://ci...)](...)', '<p align="center"><img ...></p>') in qa list, the library and
    citations. The title is the first level-one heading near the top, else the first line
    with a word, without markup."""
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    assert load(tmp_path / "README.md").title == title


def test_docx_clause_numbers_are_kept(tmp_path: Path) -> None:
    """A Word list numbered on two levels ('%1.%2', a contract's clauses 1.1, 1.2, 2.1) was
    written with bullets ('- The Supplier shall deliver...'): the clause numbers a reader
    cites were lost. A clause keeps its number, and is a sentence of its own after a
    heading with no full stop ('1. Delivery'), as a numbered item is; a wrapped line
    opening with a decimal ('2.5 litres') is not one."""

    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    from qa.chunking import chunk_documents, split_sentences

    document = docx.Document()
    document.add_paragraph("Supply agreement between Greenfield Farms and Urban Grocer.")
    for text, level in (("Delivery", 0), ("The Supplier shall deliver every Monday.", 1),
                        ("Late deliveries may be refused.", 1), ("Prices", 0),
                        ("Prices are fixed for six months.", 1)):
        properties = document.add_paragraph(text)._p.get_or_add_pPr()
        numbering = OxmlElement("w:numPr")
        for tag, value in (("w:ilvl", str(level)), ("w:numId", "7")):
            element = OxmlElement(tag)
            element.set(qn("w:val"), value)
            numbering.append(element)
        properties.append(numbering)
    document.save(str(tmp_path / "plain.docx"))
    levels = ("<w:numbering xmlns:w='http://schemas.openxmlformats.org/wordprocessingml/2006/"
              "main'><w:abstractNum w:abstractNumId='3'><w:lvl w:ilvl='0'><w:start w:val='1'/>"
              "<w:numFmt w:val='decimal'/><w:lvlText w:val='%1.'/></w:lvl><w:lvl w:ilvl='1'>"
              "<w:start w:val='1'/><w:numFmt w:val='decimal'/><w:lvlText w:val='%1.%2'/>"
              "</w:lvl></w:abstractNum><w:num w:numId='7'><w:abstractNumId w:val='3'/></w:num>"
              "</w:numbering>")
    doc = load(_with_parts(tmp_path / "plain.docx", tmp_path / "supply.docx",
                           {"word/numbering.xml": levels}))
    clauses = ["1. Delivery", "1.1 The Supplier shall deliver every Monday.",
               "1.2 Late deliveries may be refused.", "2. Prices",
               "2.1 Prices are fixed for six months."]
    assert doc.paragraphs[1].text == "\n".join(clauses)
    assert [s.text for c in chunk_documents([doc]) for s in c.sentences][1:] == clauses
    assert [s.text for s in split_sentences("The tank holds\n2.5 litres of water.")] == [
        "The tank holds\n2.5 litres of water."]


def test_an_accordion_question_s_icon_is_no_part_of_it(tmp_path: Path) -> None:
    """An accordion's button holds an icon beside its question (<span aria-hidden="true">+
    </span>), which ran into it: 'Do you deliver on Sundays?+'. What the button hides from
    screen readers is no part of its heading."""
    (tmp_path / "faq.html").write_text(
        "<html><body><main><h1>Delivery questions</h1><p>Here are the answers to the questions "
        "our customers ask most often about deliveries.</p><h3><button aria-expanded='false' "
        "aria-controls='f1'><span>Do you deliver on Sundays?</span><span aria-hidden='true'>+"
        "</span></button></h3><div id='f1' aria-hidden='true'><p>No, we deliver from Monday to "
        "Saturday only.</p></div></main></body></html>", encoding="utf-8")
    assert [p.text for p in load(tmp_path / "faq.html").paragraphs][2:] == [
        "Do you deliver on Sundays?", "No, we deliver from Monday to Saturday only."]


@pytest.mark.parametrize("hidden", ["aria-hidden='true'", "style='display: none;'", "hidden",
                                    "class='panel hidden'"])
def test_an_accordion_s_closed_answers_are_read(tmp_path: Path, hidden: str) -> None:
    """A closed accordion panel is marked hidden (aria-hidden, display: none, hidden, a
    'hidden' class: jQuery UI and others do so for every panel but the open one), and
    trafilatura drops hidden elements, so the answers were lost with their questions. A
    panel a button opens is read as shown open."""
    (tmp_path / "faq.html").write_text(
        "<html><body><main><h1>Delivery questions</h1><p>Here are the answers to the "
        "questions our customers ask most often about deliveries.</p><h3><button "
        f"aria-expanded='false' aria-controls='f1'>Do you deliver on Sundays?</button></h3>"
        f"<div id='f1' {hidden}><p>No, we deliver from Monday to Saturday only.</p></div>"
        "</main></body></html>",
        encoding="utf-8")
    assert [p.text for p in load(tmp_path / "faq.html").paragraphs][2:] == [
        "Do you deliver on Sundays?", "No, we deliver from Monday to Saturday only."]


def test_a_jquery_ui_accordion_s_questions_and_answers_are_read(tmp_path: Path) -> None:
    """A jQuery UI accordion (<h3 role="tab" aria-controls="ui-id-4" class=
    "ui-accordion-header">Do you ship abroad?</h3>, its panel hidden with display: none,
    their holder a 'ui-widget') was dropped whole by trafilatura, which takes such names
    for page furniture and hidden text for none: every question and answer of the FAQ was
    lost. A header that controls a panel, the panel and their holder are read as plain
    headings and text; a menu's links stay out."""
    intro = "".join(f"<p>Note {n}: our warehouse in Leeds packs every order by hand and checks "
                    "each parcel before it leaves the building.</p>" for n in range(8))
    pairs = [("How long does delivery take?", "Standard delivery takes three to five days."),
             ("Do you ship abroad?", "We ship to the EU and the United States.")]
    items = "".join(
        f'<h3 class="ui-accordion-header" role="tab" aria-controls="p{n}" aria-expanded="false">'
        f'{q}</h3><div class="ui-accordion-content" id="p{n}" role="tabpanel" aria-hidden="true"'
        f' style="display: none;"><p>{a}</p></div>' for n, (q, a) in enumerate(pairs))
    (tmp_path / "faq.html").write_text(
        '<html><body><a aria-controls="menu" href="#">Menu</a><ul id="menu"><li><a href="/">'
        'Home</a></li><li><a href="/shop">Shop</a></li></ul><div id="content"><h1>Shipping '
        f'FAQ</h1>{intro}<div class="ui-accordion ui-widget" role="tablist">{items}</div></div>'
        "</body></html>", encoding="utf-8")
    paragraphs = [p.text for p in load(tmp_path / "faq.html").paragraphs]
    assert paragraphs[-4:] == [text for pair in pairs for text in pair]
    assert not {"Menu", "Home", "Shop"} & set(paragraphs)


def test_accordion_panels_are_measured_once_and_the_work_is_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each button's panel was measured by its whole text, so 1,990 buttons naming one
    half-megabyte panel took 17.6 s to read (a page anyone may upload), and 1,900 buttons
    naming nested panels 12.6 s. A panel is measured once, no more text is measured than
    a few times the page's, and a page with more buttons and controls than
    MAX_MENU_CHECKS is read without the accordion rules."""
    from qa.loaders import html

    measured: list[object] = []
    real = html._text_panel
    monkeypatch.setattr(html, "_text_panel", lambda panel: measured.append(panel) or real(panel))
    buttons = "".join(f'<button aria-controls="x">Question {n}?</button>' for n in range(50))
    page = (f"<html><body><main><h1>FAQ</h1>{buttons}<div id='x'><p>One answer for them all."
            "</p></div></main></body></html>")
    assert html._disclosures(page).count("<h3>") == 50 and len(measured) == 1
    monkeypatch.setattr(html, "MAX_MENU_CHECKS", 40)
    assert html._disclosures(page) == page
    monkeypatch.setattr(html, "MAX_MENU_CHECKS", 2000)
    nested = "".join(f'<div id="d{n}">' for n in range(30)) + "<p>" + "word " * 2000 + "</p>"
    buttons = "".join(f"<button aria-controls=d{n}>Q{n}</button>" for n in range(30))
    page = f"<html><body><main>{buttons}{nested}{'</div>' * 30}</main></body></html>"
    measured.clear()
    html._disclosures(page)
    assert 0 < len(measured) < 30  # the nested panels' text measured until the budget ran out


def test_a_page_of_many_short_lines_is_read_in_linear_time() -> None:
    """Lines that go on in lower case are joined into the paragraph before them, whose whole
    text was searched for a full stop at each line: a page of 20,000 short lines ('<p>word
    word word</p>') took 11 s to read here (a 700 KB upload, 24 s). Only its end is read."""
    import time

    from qa.loaders.html import _paragraph_text

    started = time.perf_counter()
    text = _paragraph_text(["word word word"] * 20_000)
    assert len(text) == 299_999 and time.perf_counter() - started < 2.0


def test_many_markdown_comments_are_left_out_in_linear_time(tmp_path: Path) -> None:
    """Each paragraph of a Markdown file was checked against every comment of the file (and
    each comment against every code block): 5,000 of each took 53 s here. Both are swept
    in text order."""
    import time

    from qa.loaders import document_of
    from qa.loaders.base import Extracted
    from qa.loaders.text import hidden_spans

    text = "".join(f"Part {n} text here.\n\n<!-- note {n} -->\n\n```\ncode {n}\n<!-- kept -->\n"
                   "```\n\n" for n in range(5_000))
    started = time.perf_counter()
    assert len(hidden_spans(text)) == 5_000
    doc = document_of("many", "many.md", "md", Extracted(text=text, title="Many"), "")
    assert len(doc.paragraphs) == 10_000 and time.perf_counter() - started < 3.0


def test_a_markdown_paragraph_of_many_hidden_tags_is_read_in_linear_time() -> None:
    """One paragraph of many lines of HTML blocks ('<p>line 1 text</p>' on each, or many
    comments inside its lines) had its paragraphs cut out of it one hidden span at a time,
    every piece so far split again for each: 8,000 such lines took 50 s here. A block is
    swept once."""
    import time

    from qa.loaders import document_of
    from qa.loaders.base import Extracted

    text = "# Lines\n\n" + "".join(f"<p>line {n} text</p>\n" for n in range(20_000))
    started = time.perf_counter()
    doc = document_of("many", "many.md", "md", Extracted(text=text, title="Lines"), "")
    assert len(doc.paragraphs) == 20_001 and time.perf_counter() - started < 3.0
    assert doc.paragraphs[-1].text == "line 19999 text"


def test_a_page_of_nested_blocks_is_read_in_bounded_time() -> None:
    """The fallback (a page trafilatura reads little of) measured the text of every block
    that might be a menu, each nested block reading again all that it holds: 1,000 nested
    <div>s around 250 KB of text took 4 s here (1,900 around 500 KB, 14 s). No more text
    is measured than a few times the page's."""
    import time

    from qa.loaders.html import HtmlLoader

    page = ("<html><body><main><h1>Big</h1>" + '<div id="d">' * 1000 + "<p>" + "word " * 50_000
            + "</p>" + "</div>" * 1000 + "</main></body></html>")
    started = time.perf_counter()
    assert len(HtmlLoader().extract(page.encode(), "nested.html").text) == 250_003
    assert time.perf_counter() - started < 2.0


def test_a_long_first_line_makes_a_title_cut_at_a_word(tmp_path: Path) -> None:
    """A logbook's first line of 300 characters was its title cut at 200 characters in the
    middle of a word; it is cut at a word, and says so."""
    line = " ".join(["Harbour log, entry of the morning watch, wind north-westerly"] * 6)
    (tmp_path / "log.txt").write_text(line + "\n\nAll boats in by six.\n", encoding="utf-8")
    title = load(tmp_path / "log.txt").title
    assert len(title) <= 200 and title.endswith("…")
    assert line.startswith(title[:-1]) and not line[len(title) - 1].isalnum()  # a word's end
    short = "Harbour log, 4 March"
    (tmp_path / "short.txt").write_text(short + "\n\nCalm.\n", encoding="utf-8")
    assert load(tmp_path / "short.txt").title == short


def test_markdown_link_definitions_are_in_no_paragraph(tmp_path: Path) -> None:
    """'[drv]: https://example.org/driver "Driver page"' tells where a link points; a reader
    never sees it, and it was indexed and quotable. A definition-like line in a code fence,
    or inside a paragraph, is text."""
    text = ("# Driver guide\n\nSee the [driver page][drv] for downloads.\n"
            "[note]: this line is part of the paragraph\n\n"
            "[drv]: https://example.org/driver \"Driver page\"\n[faq]: <https://example.org/faq>\n"
            "\n```\n[x]: https://example.org/x\n```\n")
    (tmp_path / "guide.md").write_text(text, encoding="utf-8")
    doc = load(tmp_path / "guide.md")
    shown = [p.text for p in doc.paragraphs]
    assert shown == ["# Driver guide", "See the [driver page][drv] for downloads.\n"
                     "[note]: this line is part of the paragraph",
                     "```\n[x]: https://example.org/x\n```"]
    assert all(text[p.start:p.end] == p.text for p in doc.paragraphs)


_WIDE_TEXT = ("Café rota\n\nThe naïve plan: the hall opens at 9 and costs 5 € an hour.\r\n"
              "Bookings close on Friday — 日本語 speakers welcome.\n")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_text_without_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    """A UTF-16 text file without a mark (as some Windows tools save "Unicode" text) was
    refused as binary for its NUL bytes. It is text: decoded, as a .txt, .md or .html."""
    for name in ("rota.txt", "rota.md"):
        (tmp_path / name).write_bytes(_WIDE_TEXT.encode(encoding))
        doc = load(tmp_path / name)
        assert doc.text == _WIDE_TEXT and doc.title == "Café rota"
        assert all(doc.text[p.start:p.end] == p.text for p in doc.paragraphs)
    page = "<html><body><p>The hall opens at 9 and costs 5 € an hour.</p></body></html>"
    (tmp_path / "rota.html").write_bytes(page.encode(encoding))
    assert "costs 5 € an hour" in load(tmp_path / "rota.html").text


@pytest.mark.parametrize("raw", [
    bytes(range(256)) * 8,  # every byte value
    b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56 + b"\x01\x02\x03\x04" * 100,  # an executable
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(300),  # an image
    "Hello there\n".encode("utf-16-le")[:-1],  # odd length: no UTF-16
    "Hi\x00there\x01\x02 and more text here\n".encode("utf-16-le"),  # control characters
    b"The pier opens at six \x00every morning in summer",  # UTF-8 text, a stray NUL: it
    b"Mi\x00nutes of the meeting held on Tuesday evening.",  # decodes as UTF-16 to CJK
], ids=["bytes", "elf", "png", "odd", "controls", "stray-nul", "stray-nul-2"])
def test_binary_data_named_txt_is_still_refused(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / "data.txt").write_bytes(raw)
    with pytest.raises(BadDocument, match="binary data") as info:
        load(tmp_path / "data.txt")
    assert info.value.status == 415 and "\n" not in str(info.value)
