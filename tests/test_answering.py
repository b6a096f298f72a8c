"""Answers: exact citations, follow-ups, abstention (real model, real article)."""

from __future__ import annotations

import re

import pytest

from qa.answering import is_follow_up, lead_phrase, question_kind
from qa.evaluation import contains_gold
from qa.pipeline import Pipeline
from qa.schema import answer_markdown
from qa.types import Answer, Sentence, Turn
from tests.conftest import load_questions


def _check_exact(pipeline: Pipeline, answer: Answer) -> None:
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers == {c.n for c in answer.citations}
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations:
        source = pipeline.index.source(c.doc_id)
        assert source[c.passage.start : c.passage.end] == c.passage.text
        assert source[c.quote.start : c.quote.end] == c.quote.text
        assert c.passage.start <= c.quote.start and c.quote.end <= c.passage.end


def _body_sentences_are_in_document(pipeline: Pipeline, answer: Answer) -> None:
    """Everything after the bold lead is quoted document text followed by markers."""
    body = answer.text
    quoted = re.split(r" ?\[\d+\] ?", body)
    sentences = {s.text for s in pipeline.index.sentences}
    for piece in filter(None, quoted):
        assert piece in sentences, piece
    if answer.lead:
        cited = answer.citations[answer.lead.n - 1].quote
        assert cited.start <= answer.lead.span.start < answer.lead.span.end <= cited.end


# -- fast unit tests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When was the joint statement issued?", "when"),
        ("In what year was ISIS’s caliphate defeated?", "when"),
        ("How many American troops are in Iraq today?", "count"),
        ("Who is the Pentagon spokesman?", "who"),
        ("Where was Soleimani killed?", "where"),
        ("Why are officials seeking a partnership?", "other"),
    ],
)
def test_question_kind(question: str, kind: str) -> None:
    assert question_kind(question).kind == kind


def test_lead_phrase_picks_the_answering_span() -> None:
    text = "That fall, the Pentagon announced a plan; by January 2021, it had 2,500 troops left."
    sentence = Sentence("d", 0, 100, 100 + len(text), text)
    lead = lead_phrase(sentence, "How many troops were left?", question_kind("How many troops?"))
    assert lead is not None and lead.text == "2,500"
    assert text[lead.start - 100 : lead.end - 100] == lead.text
    when = lead_phrase(sentence, "When did it have 2,500 troops?", question_kind("When?"))
    assert when is not None and "January 2021" in when.text


@pytest.mark.parametrize(
    ("question", "follow"),
    [
        ("What does he say Iraq will still need?", True),
        ("And in Syria?", True),
        ("Under which operation?", True),
        ("What is the name of the Washington Post columnist who interviewed Kadhimi?", False),
        ("How many American troops are in Iraq today?", False),
    ],
)
def test_is_follow_up(question: str, follow: bool) -> None:
    assert is_follow_up(question) is follow


# -- the real thing --------------------------------------------------------------------------


@pytest.mark.slow
def test_every_answer_on_the_dev_set_cites_exactly(real_pipeline: Pipeline) -> None:
    for row in load_questions():
        answer = real_pipeline.ask(row["question"], row.get("history") or [])
        _check_exact(real_pipeline, answer)
        if not answer.abstained:
            _body_sentences_are_in_document(real_pipeline, answer)
        else:
            assert not answer.citations and answer.passages
            assert answer.text.startswith("The document doesn't say")
        assert 0.0 <= answer.confidence <= 1.0


@pytest.mark.slow
def test_answer_quality_on_dev_set(real_pipeline: Pipeline) -> None:
    rows = [r for r in load_questions() if r["answers"]]
    contains = refused = 0
    for row in rows:
        answer = real_pipeline.ask(row["question"], row.get("history") or [])
        contains += (not answer.abstained) and contains_gold(answer.text, row["answers"])
        refused += answer.abstained
    print(f"contains gold {contains / len(rows):.3f}, wrongly abstained {refused / len(rows):.3f}")
    assert contains / len(rows) >= 0.80
    assert refused / len(rows) <= 0.06


@pytest.mark.slow
def test_abstains_on_unanswerable_dev_questions(real_pipeline: Pipeline) -> None:
    rows = [r for r in load_questions() if not r["answers"]]
    assert len(rows) >= 20
    abstained = [real_pipeline.ask(r["question"]).abstained for r in rows]
    print(f"abstained on {sum(abstained)}/{len(rows)} unanswerable")
    assert sum(abstained) / len(rows) >= 0.45
    for off_topic in ("What is the capital of France?", "Who wrote Romeo and Juliet?"):
        answer = real_pipeline.ask(off_topic)
        assert answer.abstained and not answer.citations and answer.passages


@pytest.mark.slow
def test_leads_with_the_short_answer(real_pipeline: Pipeline) -> None:
    answer = real_pipeline.ask("How many American troops are in Iraq today?")
    assert answer_markdown(answer).startswith("**around 2,500** — ")
    assert answer.lead is not None and answer.lead.span.text == "around 2,500"
    who = real_pipeline.ask("Who is the Pentagon spokesman?")
    assert who.lead is not None and "John Kirby" in who.lead.span.text


@pytest.mark.slow
def test_follow_up_conversations(real_pipeline: Pipeline) -> None:
    conversations = [r for r in load_questions() if r["kind"] == "followup"]
    assert len(conversations) >= 8
    right = 0
    for row in conversations:
        answer = real_pipeline.ask(row["question"], row["history"])
        _check_exact(real_pipeline, answer)
        right += (not answer.abstained) and contains_gold(answer.text, row["answers"])
    print(f"follow-ups answered {right}/{len(conversations)}")
    assert right / len(conversations) >= 0.7


@pytest.mark.slow
def test_history_changes_the_answer_only_when_needed(real_pipeline: Pipeline) -> None:
    alone = real_pipeline.ask("What does he say Iraq still needs?")
    followed = real_pipeline.ask(
        "What does he say Iraq still needs?",
        [Turn("What did Kadhimi tell the Washington Post?")],
    )
    assert contains_gold(followed.text, ["intelligence support"])
    standalone = "How many American troops are in Iraq today?"
    assert (real_pipeline.ask(standalone, ["Who is the Pentagon spokesman?"]).text
            == real_pipeline.ask(standalone).text)
    assert alone.text != followed.text or contains_gold(alone.text, ["intelligence support"])


def test_who_leads_are_names_not_places_or_months() -> None:
    text = ("The conflict escalated with the January 3 assassination of Iranian Major General "
            "Qassem Soleimani in Baghdad.")
    sentence = Sentence("d", 0, 0, len(text), text)
    lead = lead_phrase(sentence, "Who was assassinated?", question_kind("Who was killed?"))
    assert lead is not None and lead.text == "Major General Qassem Soleimani"
    plain = Sentence("d", 0, 0, 24, "In January 3 it rained.")
    assert lead_phrase(plain, "Who ordered it?", question_kind("Who ordered it?")) is None
