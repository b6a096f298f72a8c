"""The chat in a real browser: Debian's Chromium driven by Playwright (never a downloaded one).

Asks a question, waits for the streamed answer, checks its citation and the highlighted
sentence in the document panel, asks a follow-up, checks that HTML in a question shows as
text (and that no dialog ever opens), and clears. Screenshots go to artifacts/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from qa.pipeline import Pipeline

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

    from tests.conftest_web import Server

pytest_plugins = ["tests.conftest_web"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ANSWER_TIMEOUT = 30_000  # ms

KADHIMI = "What did Kadhimi tell the Washington Post?"
FOLLOW_UP = "What does he say Iraq will still need?"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)> who?"

# Records every distinct length of the newest answer's text, to see it arrive in pieces.
WATCH_STREAM = """() => {
  window.qaLengths = [];
  const chat = document.querySelector('#qa-chat');
  const seen = () => {
    const texts = chat.querySelectorAll('.qa-text');
    const n = texts.length ? texts[texts.length - 1].textContent.length : -1;
    if (window.qaLengths[window.qaLengths.length - 1] !== n) window.qaLengths.push(n);
  };
  window.qaObserver?.disconnect();
  window.qaObserver = new MutationObserver(seen);
  window.qaObserver.observe(chat, {subtree: true, childList: true, characterData: true});
}"""


@dataclass
class Chat:
    page: Page
    dialogs: list[str] = field(default_factory=list)

    @property
    def answers(self) -> Locator:
        return self.page.locator("#qa-chat [data-testid='bot']")

    def ask(self, question: str) -> Locator:
        """Send `question`; the new answer, once complete (its sources are shown)."""
        from playwright.sync_api import expect

        before = self.answers.count()
        box = self.page.locator("#qa-question textarea")
        box.fill(question)
        self.page.evaluate(WATCH_STREAM)
        box.press("Enter")
        expect(self.answers).to_have_count(before + 1, timeout=ANSWER_TIMEOUT)
        latest = self.answers.nth(before)
        expect(latest.locator(".qa-sources, .qa-error").first).to_be_visible(
            timeout=ANSWER_TIMEOUT)
        expect(box).to_have_value("")
        return latest

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = (f"Debian's Chromium is not installed at {CHROMIUM} "
                  "(apt-get install chromium, or `make browser`)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def chat(browser: Browser, server: Server) -> Iterator[Chat]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    opened = Chat(page)

    def on_dialog(dialog: Any) -> None:
        opened.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(server.url)
    page.locator("#qa-question textarea").wait_for(timeout=ANSWER_TIMEOUT)
    yield opened
    context.close()


def _inside(inner: Locator, outer: Locator) -> bool:
    a, b = inner.bounding_box(), outer.bounding_box()
    assert a is not None and b is not None
    return b["y"] - 1 <= a["y"] and a["y"] + min(a["height"], 20) <= b["y"] + b["height"] + 1


def test_answer_citation_highlight_follow_up_and_escaping(
    chat: Chat, real_pipeline: Pipeline
) -> None:
    from playwright.sync_api import expect

    page = chat.page
    expect(page.get_by_text("What did Kadhimi tell the Washington Post?").first).to_be_visible()
    chat.shot("start")

    # A question: the answer streams in, cites [1], lists its source, highlights the quote.
    first = chat.ask(KADHIMI)
    lengths = page.evaluate("window.qaLengths")
    assert len([n for n in lengths if n > 0]) >= 3, f"answer did not stream: {lengths}"
    expect(first.locator("sup.qa-cite").first).to_have_text("[1]")
    expect(first.locator(".qa-sources mark").first).to_be_visible()
    quote = real_pipeline.ask(KADHIMI).citations[0].quote.text
    mark = page.locator('#qa-document mark[data-cite="1"]')
    expect(mark).to_have_text(quote)
    panel = page.locator("#qa-document .qa-doc")
    expect(panel).to_have_attribute("data-turn", "1")
    page.wait_for_function(
        "() => { const m = document.querySelector('#qa-document mark[data-cite=\"1\"]');"
        " const p = document.querySelector('#qa-document .qa-doc');"
        " const a = m.getBoundingClientRect(), b = p.getBoundingClientRect();"
        " return a.top >= b.top - 1 && a.top + 10 <= b.bottom + 1; }",
        timeout=5_000,
    )
    assert _inside(mark, panel), "the cited sentence is scrolled into view"
    chat.shot("answer")

    # Clicking the marker points at the sentence in the document.
    first.locator("sup.qa-cite").first.click()
    expect(mark).to_have_class(re.compile(r"\bqa-flash\b"))

    # A follow-up uses the conversation and gets its own citations and highlights.
    second = chat.ask(FOLLOW_UP)
    expect(second.locator("sup.qa-cite").first).to_be_visible()
    expect(panel).to_have_attribute("data-turn", "2")
    expect(page.locator("#qa-document mark[data-cite]").first).to_be_visible()
    chat.shot("follow-up")

    # HTML in a question is text: shown literally, never run.
    for attack in (SCRIPT, IMG):
        answer = chat.ask(attack)
        expect(page.locator("#qa-chat [data-testid='user']").last).to_have_text(attack)
        expect(answer.locator(".qa-abstained, .qa-sources").first).to_be_visible()
    page.wait_for_timeout(500)  # give a smuggled onerror/onload the chance to fire
    assert page.locator("#qa-chat script, #qa-chat img, #qa-document img").count() == 0
    assert chat.dialogs == [], f"a dialog opened: {chat.dialogs}"
    chat.shot("escaped")

    # Clear starts over.
    page.locator("#qa-clear").click()
    expect(chat.answers).to_have_count(0)
    expect(page.locator("#qa-document .qa-doc-empty")).to_be_visible()
    chat.shot("cleared")
    assert chat.dialogs == []


def test_abstention_is_styled_apart(chat: Chat) -> None:
    from playwright.sync_api import expect

    answer = chat.ask("What is the capital of France?")
    expect(answer.locator(".qa-abstained .qa-badge")).to_have_text("No answer in the documents")
    expect(answer.get_by_text("Not an answer, but related")).to_be_visible()
    assert answer.locator("strong").count() == 0  # nothing presented as the answer
    expect(chat.page.locator("#qa-document mark").first).to_be_visible()
    chat.shot("abstention")
    assert chat.dialogs == []


def test_an_over_long_question_is_refused_not_cut(chat: Chat) -> None:
    """The box cut a pasted question at 2,000 characters and the cut one was answered; the
    whole question now reaches the server, which says it is too long."""
    from playwright.sync_api import expect

    box = chat.page.locator("#qa-question textarea")
    box.fill("Who is the Pentagon spokesman? " + "x" * 2100)
    box.press("Enter")
    error = chat.page.locator("#qa-chat .qa-error").last
    expect(error).to_contain_text("too long", timeout=ANSWER_TIMEOUT)
    assert chat.dialogs == []


def test_typing_the_next_question_while_an_answer_arrives_keeps_it(chat: Chat) -> None:
    """The box is emptied once, when the question is taken; what the person types while the
    answer is worked out and streamed stays there (it used to be wiped at every step)."""
    from playwright.sync_api import expect

    page = chat.page
    box = page.locator("#qa-question textarea")
    box.fill(KADHIMI)
    box.press("Enter")
    expect(page.locator("#qa-chat [data-testid='user']")).to_have_count(1, timeout=ANSWER_TIMEOUT)
    expect(box).to_have_value("")
    box.fill(FOLLOW_UP)
    expect(chat.answers.first.locator(".qa-sources").first).to_be_visible(timeout=ANSWER_TIMEOUT)
    page.wait_for_timeout(300)
    expect(box).to_have_value(FOLLOW_UP)
    latest = chat.ask(FOLLOW_UP)  # and it can be sent as it is
    expect(latest.locator("sup.qa-cite").first).to_be_visible()
    assert chat.dialogs == []


def test_clear_while_an_answer_arrives_stays_cleared(chat: Chat) -> None:
    """Clear during an answer empties the conversation for good: the answer's later steps
    used to put the whole conversation back. A question asked after it is answered."""
    from playwright.sync_api import expect

    page = chat.page
    chat.ask(KADHIMI)
    box = page.locator("#qa-question textarea")
    box.fill(FOLLOW_UP)
    box.press("Enter")
    expect(page.locator("#qa-chat [data-testid='user']")).to_have_count(2,
                                                                         timeout=ANSWER_TIMEOUT)
    page.locator("#qa-clear").click()
    expect(chat.answers).to_have_count(0)
    page.wait_for_timeout(2_000)  # past the streaming of the answer that was on its way
    expect(page.locator("#qa-chat [data-testid='user']")).to_have_count(0)
    expect(chat.answers).to_have_count(0)
    expect(page.locator("#qa-document .qa-doc-empty")).to_be_visible()
    latest = chat.ask(KADHIMI)
    expect(latest.locator("sup.qa-cite").first).to_be_visible()
    assert chat.dialogs == []


def test_a_citation_marker_works_from_the_keyboard(chat: Chat) -> None:
    """A [n] is reached with Tab and shown with Enter, as a click shows it (it could not
    take the focus at all)."""
    from playwright.sync_api import expect

    answer = chat.ask(KADHIMI)
    cite = answer.locator("sup.qa-cite").first
    expect(cite).to_have_attribute("tabindex", "0")
    cite.focus()
    assert chat.page.evaluate("() => document.activeElement.matches('sup.qa-cite')")
    chat.page.keyboard.press("Enter")
    expect(chat.page.locator('#qa-document mark[data-cite="1"]')).to_have_class(
        re.compile(r"\bqa-flash\b"))
    assert chat.dialogs == []


def test_an_earlier_answer_s_citation_points_at_its_passage(chat: Chat) -> None:
    """The panel shows the latest answer's documents; a [n] of an earlier answer points at
    the passage listed under that answer (a click on it used to do nothing)."""
    from playwright.sync_api import expect

    first = chat.ask(KADHIMI)
    chat.ask("Who is the Pentagon spokesman?")
    expect(chat.page.locator("#qa-document .qa-doc")).to_have_attribute("data-turn", "2")
    first.locator(".qa-text sup.qa-cite-1").first.click()
    expect(first.locator(".qa-source").first).to_have_class(re.compile(r"\bqa-flash\b"))
    assert chat.dialogs == []
