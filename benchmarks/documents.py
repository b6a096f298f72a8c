"""Document figures (issue 11): extraction and indexing throughput for PDF and HTML, the time
to add one document to a 1,000-document index, and peak memory.

    PYTHONPATH=src python -m benchmarks.documents [--docs 40] [--library 1000]

Synthetic documents are made here (fpdf2 PDFs of three pages, HTML pages with navigation and
scripts) from sentences of varied words, so nothing is downloaded. Each figure is one run on
whatever machine runs it: on a shared two-core machine they are noisy.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from qa.config import Settings
from qa.loaders import load
from qa.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
WORDS = sorted(set(
    (ROOT / "seeds" / "politico-us-iraq-advisory-transition.txt").read_text("utf-8")
    .replace("\n", " ").split()) | {"river", "harbor", "orchard", "lighthouse", "council"})


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS).strip("“”\"'.,;:()") or "the" for _ in range(rng.randint(8, 20))]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, n: int) -> str:
    return " ".join(sentence(rng) for _ in range(n))


def make_pdfs(folder: Path, count: int, rng: random.Random) -> list[Path]:
    from fpdf import FPDF

    paths = []
    for i in range(count):
        pdf = FPDF()
        for page in range(3):
            pdf.add_page()
            pdf.set_font("Helvetica", size=11)
            text = f"Report {i} page {page + 1}. " + paragraph(rng, 14)
            pdf.multi_cell(0, 6, text.encode("latin-1", "replace").decode("latin-1"))
        path = folder / f"report-{i:04d}.pdf"
        pdf.output(str(path))
        paths.append(path)
    return paths


def make_html(folder: Path, count: int, rng: random.Random) -> list[Path]:
    paths = []
    for i in range(count):
        body = "".join(f"<p>{paragraph(rng, 5)}</p>" for _ in range(6))
        page = (f"<!DOCTYPE html><html><head><title>Page {i}</title><script>var x={i};"
                "</script></head><body><nav><a href='/'>Home</a> | <a href='/a'>About</a>"
                f"</nav><main><article><h1>Page {i}</h1>{body}</article></main>"
                "<footer>Copyright. All rights reserved.</footer></body></html>")
        path = folder / f"page-{i:04d}.html"
        path.write_text(page, encoding="utf-8")
        paths.append(path)
    return paths


def make_texts(folder: Path, count: int, rng: random.Random) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"note-{i:04d}.txt"
        path.write_text(f"Note {i}\n\n{paragraph(rng, 4)}\n", encoding="utf-8")
        paths.append(path)
    return paths


def fresh_pipeline(base: Path, embedder: object | None) -> Pipeline:
    if base.exists():
        shutil.rmtree(base)
    shutil.copytree(ROOT / "seeds", base / "seeds")
    return Pipeline(Settings(seeds_dir=base / "seeds", index_dir=base / "index"),
                    embedder)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=40, help="PDFs and HTML pages each")
    parser.add_argument("--library", type=int, default=1000,
                        help="documents already indexed (0: skip that figure)")
    args = parser.parse_args()
    rng = random.Random(11)
    work = Path(tempfile.mkdtemp(prefix="qa-bench-docs-"))
    try:
        sources = work / "sources"
        sources.mkdir()
        kinds = {"PDF": make_pdfs(sources, args.docs, rng),
                 "HTML": make_html(sources, args.docs, rng)}
        embedder = None
        print("| kind | docs | text MB | extract docs/s | extract MB/s | add+index s "
              "| add+index docs/s | add+index MB/s |", flush=True)
        print("|---|---|---|---|---|---|---|---|", flush=True)
        for kind, paths in kinds.items():
            started = time.perf_counter()
            mb = sum(len(load(p).text.encode("utf-8")) for p in paths) / 1e6
            extract_s = time.perf_counter() - started
            pipeline = fresh_pipeline(work / f"lib-{kind}", embedder)
            pipeline.index  # noqa: B018 - the seed index first, and the model loaded
            embedder = pipeline.embedder
            started = time.perf_counter()
            pipeline.add_documents(paths)
            index_s = time.perf_counter() - started
            n = len(paths)
            print(f"| {kind} | {n} | {mb:.3f} | {n / extract_s:.1f} | {mb / extract_s:.2f} | "
                  f"{index_s:.1f} | {n / index_s:.2f} | {mb / index_s:.4f} |", flush=True)
        if args.library:
            library = fresh_pipeline(work / "lib-many", embedder)
            library.index  # noqa: B018
            notes = make_texts(sources, args.library + 1, rng)
            started = time.perf_counter()
            library.add_documents(notes[:-1])
            print(f"\nlibrary of {args.library} text documents (+ the seed) built in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
            started = time.perf_counter()
            library.add_documents(notes[-1:])
            print(f"adding one more document: {time.perf_counter() - started:.1f} s",
                  flush=True)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory (max RSS of this process, model included): {peak_mb:.0f} MB",
              flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
