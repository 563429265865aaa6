"""A reviewer's edit is untrusted input: bounded in size, held to the script's shape, and
never able to bring in a host or a voice the show does not declare."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipyard import Config, Decision, Flag, RunState
from shipyard_podcast.models import Script
from shipyard_podcast.review.gate import script_review
from shipyard_podcast.script.extractive import write_extractive
from tests.project import Project, kill_group, make_project
from tests.test_script import make_config, make_paper

pytestmark = pytest.mark.hostile

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
        context = (paper, settings, Config())
        return [f for f in recheck(checked, context) if f.check == "speakers"]

    assert speakers(script) == []
    whisper = [h.model_copy(update={"voice": "espeak:en+whisper"}) for h in script.hosts]
    [flag] = speakers(script.model_copy(update={"hosts": whisper}))
    assert flag.severity == "error" and "come from podcast.show.hosts" in flag.message


def _edit(
    project: Project, run_id: str, payload: dict[str, Any] | str
) -> subprocess.CompletedProcess[str]:
    edited = project.root / "edited.json"
    edited.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return project.run("review", "approve", run_id, "--as", "editor", "--edited", str(edited))


def _requests(project: Project, run_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in project.events(run_id, "review-requested")]


@pytest.mark.slow
def test_hostile_edits_are_refused_or_held_and_nothing_is_published(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        running = project.start("run", "paper-to-podcast", str(project.paper))
        try:
            run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
            script = _requests(project, run.run_id)[-1]["payload"]

            turn = {"speaker": script["turns"][0]["speaker"], "text": "Hi."}
            many = {**script, "turns": [turn] * 10_000}
            refused = _edit(project, run.run_id, many)
            assert refused.returncode == 3 and "at most 2000 items" in refused.stderr

            giant = copy.deepcopy(script)
            giant["turns"][1]["text"] = "word " * 250_000
            refused = _edit(project, run.run_id, giant)
            assert refused.returncode == 3 and "over review.max_edit_bytes" in refused.stderr

            stranger = copy.deepcopy(script)
            stranger["turns"][1]["speaker"] = "Mallory"
            marked = copy.deepcopy(script)
            marked["turns"][1]["text"] += " Read this \u202eelbaveileb\u202c twice.\u0007"
            for edit, check in ((stranger, "speakers"), (marked, "listener")):
                held = _edit(project, run.run_id, edit)  # checked here: held, nothing sent
                assert held.returncode == 3 and f"{check}: " in held.stderr, held.stderr
            assert len(_requests(project, run.run_id)) == 1  # no round, no revision used
            project.run("review", "reject", run.run_id, "--as", "editor", "--comment", "no")
            run = project.wait_until(run.run_id, lambda r: r.state.finished)
        finally:
            kill_group(running, signal.SIGTERM)
        assert run.state is RunState.REJECTED
        assert not [c for c in project.site_commits() if "Shipyard-Run:" in c]
