"""Documents in a real browser (Debian's Chromium via Playwright): upload a PDF by the file
picker, see the progress bar and the document in the list, ask about it, see the cited span
highlighted with its page number, limit a question to one document, remove it. And on a
server beyond loopback with a token: no upload without the *Access token* (Gradio's upload
route refuses the file, and the page says why), then with it.

Their own `qa serve` on a copy of the session's index, so uploads never touch other tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from qa.pipeline import Pipeline
from tests.conftest_web import Server, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "tests" / "data" / "docs"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT = 60_000  # ms: indexing on a busy two-core machine
TOKEN = "s3cret-token-for-tests"


def _env(real_pipeline: Pipeline, base: Path) -> dict[str, str]:
    settings = real_pipeline.settings
    shutil.copytree(settings.seeds_dir, base / "seeds")
    shutil.copytree(settings.index_dir, base / "index")
    env = {**os.environ, "QA_SEEDS": str(base / "seeds"), "QA_INDEX": str(base / "index"),
           "QA_MODEL": settings.model, "QA_CACHE_DIR": str(settings.cache_dir),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    env.pop("QA_API_TOKEN", None)
    env.pop("GRADIO_TEMP_DIR", None)
    return env


@pytest.fixture(scope="module")
def doc_server(real_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("docserver")
    with serving(_env(real_pipeline, base), base / "serve.log") as running:
        yield running


@pytest.fixture(scope="module")
def token_server(real_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[Server]:
    """Listening beyond loopback (0.0.0.0), so with a token."""
    base = tmp_path_factory.mktemp("tokenserver")
    env = {**_env(real_pipeline, base), "QA_API_TOKEN": TOKEN}
    with serving(env, base / "serve.log", host="0.0.0.0") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield launched
        launched.close()


def test_upload_ask_highlight_page_and_remove(browser: Browser, doc_server: Server) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(doc_server.url)
    listing = page.locator("#qa-doc-list")
    expect(listing.locator("tr[data-doc='politico-us-iraq-advisory-transition']")).to_have_count(
        1, timeout=TIMEOUT)

    expect(page.locator("#qa-token")).to_have_count(0)  # loopback: no token, no field

    # Upload through the file picker: a progress bar while it is indexed, then the list.
    page.locator("#qa-upload input[type=file]").set_input_files(
        [str(DOCS / "water-report.pdf")])
    expect(page.locator("#qa-upload-status .progress-text, #qa-upload-status .eta-bar, "
                        "#qa-upload-status .progress-level"
                        ).first).to_be_attached(timeout=TIMEOUT)
    expect(page.locator("#qa-upload-status .qa-ok")).to_contain_text(
        "Added “Harbor Town Water Report” (PDF, 3 pages)", timeout=TIMEOUT)
    row = listing.locator("tr[data-doc='water-report']")
    expect(row).to_contain_text("PDF")
    expect(row.locator("td").nth(3)).to_have_text("3")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-documents-uploaded.png"))

    # Ask about the new document: the cited span is highlighted with its page number.
    box = page.locator("#qa-question textarea")
    box.fill("When was the treatment plant on Mill Road opened?")
    box.press("Enter")
    answer = page.locator("#qa-chat [data-testid='bot']").last
    expect(answer.locator(".qa-sources")).to_be_visible(timeout=TIMEOUT)
    expect(answer.locator(".qa-where").first).to_contain_text("page 3")
    mark = page.locator("#qa-document article[data-doc='water-report'] mark.qa-quote").first
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("1987")
    assert mark.get_attribute("data-page") == "page 3"
    expect(page.locator("#qa-document .qa-doc-pages")).to_contain_text("page 3")
    page.screenshot(path=str(ARTIFACTS / "browser-documents-cited.png"))

    # Limit questions to the seed article: the water report is no longer cited.
    page.locator("#qa-select input").click()
    page.get_by_role("option", name="politico").first.click()
    page.keyboard.press("Escape")
    box.fill("When was the treatment plant on Mill Road opened?")
    box.press("Enter")
    latest = page.locator("#qa-chat [data-testid='bot']").nth(1)
    expect(latest.locator(".qa-sources, .qa-error").first).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#qa-document article[data-doc='water-report']")).to_have_count(0)

    # Remove it again.
    page.locator("#qa-remove-choice input").click()
    page.get_by_role("option", name="Harbor Town Water Report").first.click()
    page.locator("#qa-remove").click()
    expect(page.locator("#qa-upload-status .qa-ok")).to_contain_text("Removed water-report",
                                                                      timeout=TIMEOUT)
    expect(listing.locator("tr[data-doc='water-report']")).to_have_count(0)
    assert not dialogs
    context.close()


NOTE = "Tide Table Notes\n\nThe harbour gate at Kestrel Point opens two hours before high tide.\n"


def test_uploads_and_removals_need_the_access_token(browser: Browser, token_server: Server,
                                                    tmp_path: Path) -> None:
    """Gradio's upload route wants the token too (the `qa_token` cookie the Access token field
    sets): before it is typed, or with a wrong one, the file is refused before it is stored,
    and the page says why in Gradio's error toast; typed, the file is uploaded and added."""
    from playwright.sync_api import expect

    note = tmp_path / "tide-notes.txt"
    note.write_text(NOTE, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.goto(token_server.url)
    listing = page.locator("#qa-doc-list")
    expect(listing.locator("tr")).not_to_have_count(0, timeout=TIMEOUT)
    token = page.locator("#qa-token input")
    expect(token).to_have_attribute("type", "password")
    picker = page.locator("#qa-upload input[type=file]")
    status = page.locator("#qa-upload-status")
    toasts = page.locator(".toast-wrap")
    uploads: list[int] = []
    page.on("response", lambda r: uploads.append(r.status)
            if r.url.split("?")[0].endswith("/gradio_api/upload") else None)

    picker.set_input_files([str(note)])
    refused = toasts.locator(".toast-body", has_text="uploads need the access token")
    expect(refused).to_be_visible(timeout=TIMEOUT)
    expect(refused).to_contain_text("HTTP 401: {\"detail\": \"uploads need the access token: "
                                    "type it in 'Access token' first\"}")
    expect(page.locator("#qa-upload")).to_contain_text("Error")
    page.wait_for_timeout(500)  # the toast slides in
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-documents-upload-refused.png"))
    assert uploads == [401]
    expect(status.locator("li")).to_have_count(0)  # refused before the add handler ran
    assert not [c for c in context.cookies() if c["name"] == "qa_token"]

    token.fill("wrong")
    picker.set_input_files([str(note)])
    expect(toasts).to_contain_text("the access token is not right: nothing was uploaded",
                                   timeout=TIMEOUT)
    assert uploads == [401, 401]
    expect(listing.locator("tr[data-doc='tide-notes']")).to_have_count(0)

    token.fill(TOKEN)
    picker.set_input_files([str(note)])
    expect(status.locator(".qa-ok")).to_contain_text("Added “Tide Table Notes” (TXT)",
                                                     timeout=TIMEOUT)
    expect(listing.locator("tr[data-doc='tide-notes']")).to_have_count(1)
    assert uploads == [401, 401, 200]
    cookie, = (c for c in context.cookies() if c["name"] == "qa_token")
    assert (cookie["value"], cookie["path"], cookie["sameSite"], cookie["secure"]) == (
        TOKEN, "/", "Strict", False)  # Secure only on https
    page.screenshot(path=str(ARTIFACTS / "browser-documents-token.png"))

    page.locator("#qa-remove-choice input").click()
    page.get_by_role("option", name="Tide Table Notes").first.click()
    token.fill("")
    page.locator("#qa-remove").click()
    expect(status.locator(".qa-bad")).to_contain_text("Nothing was removed", timeout=TIMEOUT)
    expect(listing.locator("tr[data-doc='tide-notes']")).to_have_count(1)
    assert not [c for c in context.cookies() if c["name"] == "qa_token"]  # emptied: gone
    page.locator("#qa-remove-choice input").click()
    page.get_by_role("option", name="Tide Table Notes").first.click()
    token.fill(TOKEN)
    page.locator("#qa-remove").click()
    expect(status.locator(".qa-ok")).to_contain_text("Removed tide-notes", timeout=TIMEOUT)
    expect(listing.locator("tr[data-doc='tide-notes']")).to_have_count(0)
    context.close()
