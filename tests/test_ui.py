"""The chat function `qa.ui.respond`, called directly (no server), and the UI's building blocks.

The slow tests use the real model and article; they check the shape of what is shown
(citations, sources, highlights, styling, escaping), not the exact wording of answers.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qa.pipeline import Pipeline
from qa.types import Answer, Turn
from qa.ui import (
    DOC_PLACEHOLDER,
    build_ui,
    earlier_turns,
    highlight,
    message_text,
    respond,
    text_html,
)

ROOT = Path(__file__).resolve().parents[1]
KADHIMI = "What did Kadhimi tell the Washington Post?"
FOLLOW_UP = "What does he say Iraq will still need?"
FRANCE = "What is the capital of France?"
ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)> Who is the Pentagon spokesman?",
    '"><svg onload=alert(1)> [link](javascript:alert(1)) **bold** $x$',
]


def final(message: str, history: list[dict[str, Any]], pipeline: Pipeline) -> tuple[list, str]:
    *_, last = respond(message, history, pipeline, delay=0)
    return last


# -- fast: rendering helpers -----------------------------------------------------------------


@pytest.mark.parametrize("text", [*ATTACKS, "a & b &amp; c &#60; \\ ` * _ # | ~ ! [1]", "é – “x”"])
def test_text_html_is_inert_and_reversible(text: str) -> None:
    shown = text_html(text)
    assert "<" not in shown and ">" not in shown and "*" not in shown and "[" not in shown
    assert message_text(shown) == text


def test_highlight_marks_spans_without_nesting() -> None:
    text = "One <b>. Two & two. Three."
    out = highlight(text, [(15, 26, 'data-cite="2"'), (0, 8, 'data-cite="1"'), (5, 20, "x")])
    assert out.startswith('<mark data-cite="1">One &lt;b&gt;.</mark><mark x>')
    assert out.endswith('<mark data-cite="2">Three.</mark>') and out.count("<mark") == 3
    stripped = out
    for tag in ('<mark data-cite="1">', '<mark data-cite="2">', "<mark x>", "</mark>"):
        stripped = stripped.replace(tag, "")
    assert html.unescape(stripped) == text


def test_earlier_turns_reads_both_message_shapes() -> None:
    history = [
        {"role": "user", "content": text_html("<b>first</b>")},
        {"role": "assistant", "content": "<div>the &lt;answer&gt;</div><sup>[1]</sup>"},
        {"role": "user", "content": [{"type": "text", "text": "second &amp; more"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
    ]
    expected = [Turn("<b>first</b>", "the <answer> [1]"), Turn("second & more", "x")]
    assert earlier_turns(history) == expected
    rejected = [{"role": "user", "content": "x" * 2001}, {"role": "assistant", "content": "no"}]
    assert earlier_turns(rejected + history) == expected


def test_blank_message_changes_nothing(fake_pipeline: Pipeline) -> None:
    history = [{"role": "user", "content": "hi"}]
    assert list(respond("   ", history, fake_pipeline)) == [(history, DOC_PLACEHOLDER)]


def test_bad_question_is_shown_as_an_error(fake_pipeline: Pipeline) -> None:
    messages, panel = final("x" * 2001, [], fake_pipeline)
    assert "qa-error" in messages[-1]["content"] and "too long" in messages[-1]["content"]
    assert panel == DOC_PLACEHOLDER


def test_the_question_is_shown_as_it_is_answered(fake_pipeline: Pipeline) -> None:
    """Control characters and bidirectional overrides are dropped from the question before
    it is answered: the chat shows it without them ("who\u202e is" showed reversed)."""
    messages, _ = final("Who\u202e is\x00 the Pentagon spokesman?", [], fake_pipeline)
    assert message_text(messages[0]["content"]) == "Who is the Pentagon spokesman?"


HARBOUR = ("Harbour notes\n\nThe harbour master of Port Ellen rang the tide bell at noon every "
           "day. The bell was cast in 1820 by the Whitby foundry.\n")


def test_the_highlight_comes_from_the_index_the_answer_came_from(
        fake_pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cited document is removed (another tab, the HTTP API) while the answer is being
    composed: the document panel still shows and highlights the quote from the index the
    answer came from, not from the index that replaced it (where the document is gone)."""
    import threading

    import qa.pipeline

    upload = tmp_path / "harbour.txt"
    upload.write_text(HARBOUR, encoding="utf-8")
    assert [d.id for d in fake_pipeline.add_documents([upload])] == ["harbour"]
    compose = qa.pipeline.compose

    def compose_while_removed(*args: Any, **kwargs: Any) -> Any:
        remover = threading.Thread(target=fake_pipeline.remove_documents, args=(["harbour"],))
        remover.start()
        remover.join()  # the index is swapped under this answer
        return compose(*args, **kwargs)

    monkeypatch.setattr(qa.pipeline, "compose", compose_while_removed)
    messages, panel = final("Who rang the tide bell at noon?", [], fake_pipeline)
    assert "harbour" not in fake_pipeline.index.documents  # the swap happened
    assert '<span class="qa-title" title="Harbour notes">' in messages[-1]["content"]
    assert 'data-doc="harbour"' in panel
    assert ('class="qa-quote">The harbour master of Port Ellen rang the tide bell at noon '
            'every day.</mark>') in panel


@pytest.mark.slow  # imports Gradio (~4 s of CPU), which the fast tier never does
def test_build_ui_loads_nothing(fake_pipeline: Pipeline) -> None:
    demo = build_ui(fake_pipeline)
    assert "chat" in {fn.api_name for fn in demo.fns.values()}
    assert fake_pipeline._index is None


@pytest.mark.slow  # imports Gradio
def test_access_token_field_only_when_a_token_is_set(fake_pipeline: Pipeline) -> None:
    """On loopback (no token) the documents panel is as it always was; with a token it has a
    password field, sent with both writes (the handlers check it: test_ui_documents)."""
    from dataclasses import replace

    import gradio as gr

    def token_fields(demo: gr.Blocks) -> list[gr.Textbox]:
        return [b for b in demo.blocks.values()
                if isinstance(b, gr.Textbox) and b.elem_id == "qa-token"]

    demo = build_ui(fake_pipeline)
    assert not token_fields(demo)
    assert all("Access token" not in str(getattr(b, "label", "")) for b in demo.blocks.values())
    fake_pipeline.settings = replace(fake_pipeline.settings, api_token="s3cret")
    demo = build_ui(fake_pipeline)
    [field] = token_fields(demo)
    assert field.type == "password" and field.label == "Access token"
    writes = [fn for fn in demo.fns.values() if fn.name in ("upload", "remove")]
    assert len(writes) == 2 and all(field in fn.inputs for fn in writes)
    assert fake_pipeline._index is None


@pytest.mark.slow  # a subprocess or a server: seconds, not a unit test
def test_importing_app_loads_no_model() -> None:
    code = "import sys, app; assert 'torch' not in sys.modules, 'torch imported'"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


# -- slow: the real model and article --------------------------------------------------------


@pytest.mark.slow
def test_answer_streams_with_citations_sources_and_document(real_pipeline: Pipeline) -> None:
    steps = list(respond(KADHIMI, [], real_pipeline, delay=0))
    assert len(steps) > 2, "the answer streams in pieces"
    lengths = [len(messages[-1]["content"]) for messages, _ in steps]
    assert lengths == sorted(lengths)
    messages, panel = steps[-1]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    content = messages[-1]["content"]
    assert "qa-cite-1" in content and "&#91;1&#93;" in content
    assert "Sources" in content and "qa-abstained" not in content
    answer = real_pipeline.ask(KADHIMI)
    quote = answer.citations[0].quote
    title = real_pipeline.index.documents[answer.citations[0].doc_id].title
    assert f"<mark>{text_html(quote.text)}</mark>" in content
    assert text_html(title) in content
    assert f'<mark data-cite="1" class="qa-quote">{html.escape(quote.text)}</mark>' in panel
    source = real_pipeline.index.documents[answer.citations[0].doc_id].text
    assert source[quote.start:quote.end] == quote.text


@pytest.mark.slow
def test_follow_up_uses_the_conversation(real_pipeline: Pipeline) -> None:
    history, _ = final(KADHIMI, [], real_pipeline)
    messages, panel = final(FOLLOW_UP, history, real_pipeline)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    content = messages[-1]["content"]
    assert "qa-cite-1" in content and "qa-turn-2" in content
    assert 'data-turn="2"' in panel and "<mark data-cite=" in panel
    expected = real_pipeline.ask(FOLLOW_UP, [KADHIMI])
    assert text_html(expected.citations[0].quote.text) in content


@pytest.mark.slow
def test_gradio_shaped_history_works_too(real_pipeline: Pipeline) -> None:
    history = [
        {"role": "user", "content": [{"type": "text", "text": KADHIMI}]},
        {"role": "assistant", "content": [{"type": "text", "text": "…"}]},
    ]
    messages, _ = final(FOLLOW_UP, history, real_pipeline)
    assert "qa-cite-1" in messages[-1]["content"]


@pytest.mark.slow
def test_abstention_looks_different(real_pipeline: Pipeline) -> None:
    messages, panel = final(FRANCE, [], real_pipeline)
    content = messages[-1]["content"]
    assert "qa-abstained" in content and "No answer in the documents" in content
    assert "Not an answer, but related" in content  # the closest passage, cited to check
    assert "<strong>" not in content  # no lead: nothing is presented as the answer
    assert 'class="qa-near"' in panel or "data-cite" in panel


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS)
def test_user_and_document_text_is_escaped(real_pipeline: Pipeline, attack: str) -> None:
    for messages, panel in respond(attack, [], real_pipeline, delay=0):
        for message in messages:
            for tag in ("<script", "<img", "<svg", "javascript:"):
                assert tag not in message["content"].lower()
        assert "<script" not in panel and "<img" not in panel
    assert messages[0]["content"] == text_html(attack)
    assert message_text(messages[0]["content"]) == attack


def test_clears_are_counted_per_session_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.ui import Clears

    monkeypatch.setattr(Clears, "MAX_SESSIONS", 3)
    clears = Clears()
    clears.add(None)
    assert clears.count(None) == 0  # no session known: nothing to stop
    for session in ("a", "b", "a", "c", "d"):
        clears.add(session)
    assert [clears.count(s) for s in "abcd"] == [2, 0, 1, 1]  # "b", the oldest, was dropped


def test_a_refused_question_is_not_part_of_the_conversation() -> None:
    """A question the chat refused ("'🚀' is not a question") got no answer: it is not
    conversation for the next question (the refusal's words were searched as if they were an
    answer: 'x' * 2000 after two emoji questions was answered 'Treatment [1]')."""
    from qa.ui import error_html

    history = [
        {"role": "user", "content": text_html("Who opened the plant?")},
        {"role": "assistant", "content": '<div class="qa-answer">Elena Voss [1]</div>'},
        {"role": "user", "content": text_html("🚀")},
        {"role": "assistant", "content": error_html("'🚀' is not a question: ask about the "
                                                    "documents in words")},
        {"role": "user", "content": "when?"},
        {"role": "assistant", "content": [{"type": "text", "text": error_html("busy")}]},
    ]
    assert earlier_turns(history) == [Turn("Who opened the plant?", "Elena Voss [1]")]


def test_an_earlier_answer_is_what_qa_said_without_the_chat_labels() -> None:
    """The chat shows a withheld answer under a badge ("No answer in the documents") and a
    follow-up with how it was read; neither is what qa said, and with them the earlier
    answer no longer opened "The document doesn't say" (`found_nothing`), so a follow-up
    about what the documents lack was answered from the closest sentence."""
    from qa.answering import found_nothing
    from qa.ui import answer_html

    withheld = Answer("When was he elected?", "The document doesn't say. It never mentions "
                      "“mayor” [1].", True, 0.1, read_as="When was the mayor elected?")
    history = [{"role": "user", "content": text_html("When was he elected?")},
               {"role": "assistant", "content": answer_html(None, withheld, 0, done=False)}]  # type: ignore[arg-type]
    said = earlier_turns(history)[0].answer
    assert said == "The document doesn't say. It never mentions “mayor” [1]."
    assert said is not None and found_nothing(said)


def test_the_example_questions_come_with_the_documents(tmp_path: Path) -> None:
    """The first page's examples are the seeds folder's `.examples.txt`, not questions about
    the shipped article written into the code: other documents, other examples (or none)."""
    from qa.ui import EXAMPLES_FILE, examples

    assert examples(tmp_path) == ([], "Examples")  # no file: none
    shipped, label = examples(ROOT / "seeds")
    assert "What did Kadhimi tell the Washington Post?" in shipped and "follow-up" in label
    (tmp_path / EXAMPLES_FILE).write_text(
        "# a comment\n# label: Try these\n\n  When was the lighthouse built?  \n🚀\n"
        + "Who keeps the bees?\n" * 20, encoding="utf-8")
    questions, label = examples(tmp_path)
    assert label == "Try these" and questions[0] == "When was the lighthouse built?"
    assert len(questions) == 10 and "🚀" in questions  # as many as are shown, as written
    (tmp_path / EXAMPLES_FILE).write_bytes(b"\xff\xfe not UTF-8")
    assert examples(tmp_path) == ([], "Examples")
    # over MAX_EXAMPLES_BYTES, cut inside a character (and a question): every example was
    # lost; the whole lines before the cut are read
    from qa.ui import MAX_EXAMPLES_BYTES

    head = "Where is the lighthouse?\n"
    filler = "# " + "x" * (MAX_EXAMPLES_BYTES - len(head) - 11) + "\n"
    (tmp_path / EXAMPLES_FILE).write_text(head + filler + "Wie heißt der Leuchtturm?\n" * 9,
                                          encoding="utf-8")
    assert len(head + filler + "Wie hei") == MAX_EXAMPLES_BYTES - 1  # the cut splits "ß"
    assert examples(tmp_path) == (["Where is the lighthouse?"], "Examples")
    import qa.ui

    assert "Kadhimi" not in Path(qa.ui.__file__).read_text(encoding="utf-8")


BIDI_NOTE = ("Lamp notes\n\nThe keeper of the lamp was Ada Brown \u202e and she lit it every "
             "night at nine.\n")


def test_a_documents_bidi_override_does_not_reverse_the_answer(fake_pipeline: Pipeline) -> None:
    """A right-to-left override (U+202E) in a document's sentence went into the chat's
    HTML (and the Markdown of /v1 and MCP) as it was, left open: the rest of the answer
    line, its [n] marker and any later quote, rendered reversed. It is not shown; the
    citation still quotes the document exactly."""
    from fastapi.testclient import TestClient

    from qa.api import create_api

    (fake_pipeline.settings.seeds_dir / "lamp.txt").write_text(BIDI_NOTE, encoding="utf-8")
    question = "Who was the keeper of the lamp?"
    messages, panel = final(question, [], fake_pipeline)
    assert "lamp" in messages[-1]["content"]
    for shown in (messages[-1]["content"], panel):
        assert "\u202e" not in shown
    web = TestClient(create_api(fake_pipeline), base_url="http://127.0.0.1:7860")
    r = web.post("/v1/chat/completions", json={"model": "qa", "messages": [
        {"role": "user", "content": question}]})
    content = r.json()["choices"][0]["message"]["content"]
    assert "lamp" in content and "\u202e" not in content
    quotes = [c["quote"]["text"] for c in r.json()["qa"]["citations"]]
    assert any("\u202e" in q for q in quotes), quotes  # the data: exactly as written


def test_a_long_conversation_is_not_sent_back_at_every_streamed_step(
        fake_pipeline: Pipeline) -> None:
    """Every streamed step carries the whole conversation (Gradio's /call/ API sends it
    whole each time): a history of 8,000 messages, an 840 KB request, came back as 18 MB
    over 40 steps, with 10 s of work. A long conversation streams in fewer steps: at most
    STREAM_MESSAGES messages in all; a short one word by word as before."""
    from qa.ui import MAX_STREAM_STEPS

    question = "Who is the Pentagon spokesman?"
    short = list(respond(question, [], fake_pipeline, delay=0))
    assert len(short) > 5
    history = [{"role": role, "content": f"{role} {n}"}
               for n in range(2000) for role in ("user", "assistant")]
    steps = list(respond(question, history, fake_pipeline, delay=0))
    assert len(steps) == 1 < MAX_STREAM_STEPS  # the answer whole (40 steps before)
    assert message_text(steps[-1][0][-1]["content"]).startswith(
        message_text(short[-1][0][-1]["content"])[:40])  # the same answer, whole


def test_example_questions_saved_with_a_byte_order_mark(tmp_path: Path) -> None:
    """A `.examples.txt` saved by an editor that starts UTF-8 with a byte order mark (Windows
    Notepad, Excel's "CSV UTF-8"): its first line kept the mark, so a `# label:` line there
    was no label but an example question, shown as "\\ufeff# label: …"."""
    from qa.ui import EXAMPLES_FILE, examples

    (tmp_path / EXAMPLES_FILE).write_text("# label: Try these\r\nWho keeps the bees?\r\n",
                                          encoding="utf-8-sig")
    assert examples(tmp_path) == (["Who keeps the bees?"], "Try these")
    (tmp_path / EXAMPLES_FILE).write_text("Who keeps the bees?\n", encoding="utf-8-sig")
    assert examples(tmp_path) == (["Who keeps the bees?"], "Examples")
