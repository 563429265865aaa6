"""A reviewer's edit is untrusted input: bounded in size, held to the script's shape, and
never able to bring in a host or a voice the show does not declare."""

from __future__ import annotations

from typing import Any

from shipyard import Decision, Flag
from shipyard.podcast.extractive import write_extractive
from shipyard.podcast.models import Script
from shipyard.podcast.review import script_review
from tests.test_script import make_config, make_paper

ROUND = {"gate": "script", "round": 1, "max_rounds": 5, "max_edit_bytes": 1_000_000, "flags": []}


def refused(payload: dict[str, Any]) -> list[str]:
    decision = Decision(action="edit", reviewer="editor", payload=payload)
    return script_review.check_decision(decision, ROUND)


def written() -> dict[str, Any]:
    return write_extractive(make_paper(), make_config()).model_dump(mode="json")


def test_an_edit_over_the_size_limit_is_refused_unread() -> None:
    script = written()
    script["turns"][1]["text"] = "word " * 250_000  # a 1.25 MB turn
    [problem] = refused(script)
    assert "over review.max_edit_bytes (1,000,000)" in problem


def test_a_script_of_ten_thousand_turns_or_a_giant_turn_is_not_a_script() -> None:
    script = written()
    script["turns"] = [{"speaker": "Alex", "text": "Hi."}] * 10_000
    assert "at most 2000 items" in refused(script)[0]
    script = written()
    script["turns"][0]["text"] = "x" * 6_000
    assert "at most 5000 characters" in refused(script)[0]


def test_an_edit_may_not_bring_in_a_host_or_a_voice() -> None:
    settings, paper = make_config(), make_paper()
    script = write_extractive(paper, settings)
    recheck = script_review.recheck
    assert recheck is not None

    def speakers(checked: Script) -> list[Flag]:
        return [f for f in recheck(checked, (paper, settings)) if f.check == "speakers"]

    assert speakers(script) == []
    whisper = [h.model_copy(update={"voice": "espeak:en+whisper"}) for h in script.hosts]
    [flag] = speakers(script.model_copy(update={"hosts": whisper}))
    assert flag.severity == "error" and "come from podcast.show.hosts" in flag.message
