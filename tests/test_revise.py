"""Request changes: the LLM writers revise with the reviewer's words and the current flags;
without a model, the request is applied clause by clause and what cannot be is reported."""

from __future__ import annotations

import itertools

from shipyard_podcast.models import Script
from shipyard_podcast.review.revise import revise_script
from shipyard_podcast.script.extractive import write_extractive
from tests.test_script import (
    GOOD_TURNS,
    PRIMARY,
    good_model,
    make_config,
    make_paper,
    no_real_model_requests,  # noqa: F401  (autouse: no request leaves this machine)
)


def written() -> Script:
    return write_extractive(make_paper(), make_config())


def test_an_llm_writer_revises_with_the_reviewers_words() -> None:
    calls: list[str] = []
    settings = make_config(PRIMARY)
    revision = revise_script(
        written(),
        "Say who wrote the paper in the second turn.",
        make_paper(),
        settings,
        models={PRIMARY: good_model(calls)},
    )
    assert revision.writer == PRIMARY and revision.applied
    assert [t.text for t in revision.script.turns] == GOOD_TURNS
    assert len(calls) == 1 and "Say who wrote the paper in the second turn." in calls[0]
    assert "<request>" in calls[0]  # the reviewer's words are quoted, not obeyed as a role


def test_a_dropped_turn_is_gone_and_a_shortened_one_shorter() -> None:
    script = written()
    revision = revise_script(script, "Drop turn 2. Shorten turn 3", make_paper(), make_config())
    texts = " ".join(t.text for t in revision.script.turns)
    assert script.turns[1].text not in texts  # turns are numbered as people count, from 1
    speakers = [t.speaker for t in revision.script.turns]
    assert all(a != b for a, b in itertools.pairwise(speakers))  # joined, not twice
    assert revision.script.words < script.words
    assert revision.applied == ["dropped turn 2", "shortened turn 3"]
    assert revision.script.estimated_seconds < script.estimated_seconds
    assert not revision.not_applied


def test_focus_writes_again_from_the_named_sections() -> None:
    revision = revise_script(written(), "focus on the evaluation", make_paper(), make_config())
    assert revision.applied == ["written again from Evaluation"]
    assert {h for t in revision.script.turns for h in t.sections} <= {"Evaluation", ""}


def test_what_cannot_be_applied_is_reported_not_ignored() -> None:
    script = written()
    revision = revise_script(
        script, "make it wittier; drop turn 99; focus on zebras", make_paper(), make_config()
    )
    assert revision.script == script
    said = " ".join(revision.not_applied)
    assert "'make it wittier': not understood without a model" in said
    assert "not [99]" in said and "no section matches 'zebras'" in said


def test_turns_named_in_words_count_from_one() -> None:
    script = written()
    revision = revise_script(script, "drop the second turn", make_paper(), make_config())
    assert revision.applied == ["dropped turn 2"]
    texts = [t.text for t in revision.script.turns]
    assert script.turns[1].text not in texts and texts[0].startswith(script.turns[0].text)
    last = revise_script(script, "remove the last turn", make_paper(), make_config())
    assert last.applied == [f"dropped turn {len(script.turns)}"]
