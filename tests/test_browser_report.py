"""The HTML report of `qa eval`, opened in a real Chromium: it renders, shows both plots, and
shows hostile test-set text as text (no script runs)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from qa import eval_report, evaluation
from qa.metrics import Scored

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EVIL = "<img src=x onerror=alert(1)> who?"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        reason = f"Debian's Chromium is not installed at {CHROMIUM}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    pytest.importorskip("matplotlib")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_html_report_renders_with_its_plots_and_escapes(tmp_path: Path, browser: object) -> None:
    """Before the plots were linked by a quoted URL, a report named "r #1 50%.html" showed no
    plot (the browser read "#1" as a fragment)."""
    records = [
        {"id": "a", "question": EVIL, "gold": ["<b>x</b>"], "abstained": False,
         "answer": "<script>alert(2)</script>", "passages": [{"text": "<iframe src=x>"}]},
        {"id": "b", "question": "fine?", "gold": [], "abstained": True, "answer": "",
         "passages": []},
    ]
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    outcomes = [
        evaluation.Outcome("k<i>", True, False, 0.8, 12.0, None, False, False, False,
                           Scored(True, True, 0, 0.0, 0.2), 2, 2),
        evaluation.Outcome(None, False, True, 0.1, 30.0, None, False, False, False,
                           Scored(False, False, 1, 1.0, 0.9), 0, 0),
    ]
    report = tmp_path / "r #1 50%.html"
    eval_report.write_report(report, {"exact": 50.0}, outcomes, predictions, "Run <t>")

    page = browser.new_page()  # type: ignore[attr-defined]
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(report.parent.as_uri() + "/" + quote(report.name))
    sizes = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.naturalWidth])")
    assert dict(sizes) == {"latency histogram": 600, "reliability plot": 600}
    assert page.title() == "Run <t>"
    assert EVIL in page.inner_text("body") and "<script>alert(2)</script>" in page.inner_text(
        "body")
    assert page.locator("script, iframe, b, img[src=x]").count() == 0
    assert page.locator("h2").all_inner_texts()[-1] == "Misses (1 of 2)"
    assert dialogs == []
    page.close()
