"""Make the documents the loader tests read (tests/data/docs/), so they can be regenerated.

    python scripts/make_test_documents.py [OUT_DIR]

Good files: a three-page PDF (fpdf2), a Word document with a table (python-docx) and an HTML
page with navigation, scripts and a footer. Bad files: an encrypted PDF, a PDF with no text
layer (drawn shapes only, like a scan), a truncated PDF. `zip_bomb(path)` writes a .docx-named
zip bomb on demand (tests make it in a temporary folder rather than committing it).
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "docs"

PDF_PAGES = (
    ("Harbor Town Water Report",
     "This report describes the water supply of Harbor Town for the year 2023. "
     "It was prepared by the municipal utilities office and the harbor café owners' guild. "
     "The town draws its water from the Lindqvist reservoir in the northern hills."),
    ("Storage",
     "The Lindqvist reservoir holds 4.2 million cubic meters of water when full. "
     "Its dam is 38 meters high and was last inspected in March 2022. "
     "During the dry summer of 2023 the reservoir fell to 61 percent of capacity."),
    ("Treatment",
     "The treatment plant on Mill Road was opened in 1987 by mayor Elena Voss. "
     "It filters and disinfects about 9,000 cubic meters of water per day. "
     "A second ultraviolet stage was added in 2019 to meet the new national standard."),
)

DOCX_PARAGRAPHS = (
    "Orchard Cooperative Annual Summary",
    "The Valley Orchard Cooperative has 46 member farms spread over three villages.",
    "Frost in late April damaged about a fifth of the cherry blossoms.",
)
DOCX_TABLE = (
    ("Fruit", "Tons harvested", "Main buyer"),
    ("Apples", "320", "Northfield Market"),
    ("Pears", "85", "Riverside Cannery"),
    ("Cherries", "12", "Café Zoë in Brightwater"),
)
DOCX_AFTER = "The cooperative’s board meets on the first Monday of every month."

HTML = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>The Kestrel Point Lighthouse</title>
  <script>var trackingId = "UA-NAVIGATION-SCRIPT"; function track() { return trackingId; }</script>
  <style>body { font-family: serif; } .nav { color: red; }</style>
</head>
<body>
  <header><nav class="nav"><a href="/">Home</a> | <a href="/towers">Lighthouses</a> |
    <a href="/shop">Gift shop</a> | <a href="/contact">Contact us</a></nav></header>
  <main>
    <article>
      <h1>The Kestrel Point Lighthouse</h1>
      <p>The Kestrel Point lighthouse was built in 1871 and stands 34 meters tall on the
        granite cliffs above the bay.</p>
      <p>Its first keeper, Tomás Ferreira, kept the lamp burning for twenty-six years and
        recorded every passing ship in a leather logbook.</p>
      <p>The lamp was electrified in 1936, and the light has been fully automatic since 1989,
        when the last keeper retired.</p>
      <p>Visitors can climb the 141 steps to the gallery from May to September; the tower is
        closed in winter because of the storms.</p>
    </article>
  </main>
  <aside>Related: <a href="/other">Other towers</a> · Subscribe to our newsletter</aside>
  <footer><p>Copyright 2024 Coastal Heritage Trust. All rights reserved. Privacy policy.</p>
    <script>document.write("FOOTER-SCRIPT-TEXT");</script></footer>
</body>
</html>
"""


def make_pdf(path: Path, pages: tuple[tuple[str, str], ...] = PDF_PAGES) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(pages[0][0])
    for heading, body in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 7, body)
    pdf.output(str(path))


def make_scanned_pdf(path: Path) -> None:
    """Two pages of drawn shapes and no text at all: what a scan without OCR looks like."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        for row in range(20):
            pdf.rect(20, 20 + row * 12, 170 - (row % 5) * 20, 6, style="F")
    pdf.output(str(path))


def make_encrypted_pdf(source: Path, path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with path.open("wb") as fh:
        writer.write(fh)


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = DOCX_PARAGRAPHS[0]
    document.add_heading(DOCX_PARAGRAPHS[0], level=1)
    for text in DOCX_PARAGRAPHS[1:]:
        document.add_paragraph(text)
    table = document.add_table(rows=len(DOCX_TABLE), cols=len(DOCX_TABLE[0]))
    for r, row in enumerate(DOCX_TABLE):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph(DOCX_AFTER)
    document.save(str(path))


def zip_bomb(path: Path, unpacked: int = 8 * 1024 * 1024) -> None:
    """A zip named like a Word document whose document.xml inflates to `unpacked` bytes."""
    block = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as fh:
            for _ in range(unpacked // len(block)):
                fh.write(block)


def corrupt_docx_bytes() -> bytes:
    """A zip with a Word document's name inside but broken XML."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document><w:body><w:p>broken")
    return buffer.getvalue()


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    make_pdf(out / "water-report.pdf")
    make_docx(out / "orchard-summary.docx")
    (out / "kestrel-lighthouse.html").write_text(HTML, encoding="utf-8")
    make_scanned_pdf(out / "scanned.pdf")
    make_encrypted_pdf(out / "water-report.pdf", out / "encrypted.pdf")
    raw = (out / "water-report.pdf").read_bytes()
    (out / "truncated.pdf").write_bytes(raw[: len(raw) // 3])
    print(f"wrote test documents to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
