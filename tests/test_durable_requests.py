"""Every model request is durable: a run killed between the outline and its last segment
resumes, and the model server is not asked again for what it already answered."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from shipyard import RunState
from tests.modelserver import Draft, Held, Reply, model_server
from tests.project import Project, kill_group, make_project

pytestmark = pytest.mark.slow


def headings(project: Project) -> list[str]:
    done = project.run("extract", "--json", str(project.paper))
    assert done.returncode == 0, done.stderr
    return [s["heading"] for s in json.loads(done.stdout)["sections"]]


def outline(sections: list[str]) -> Draft:
    half = len(sections) // 2
    parts = [
        {"title": "How it works", "sections": sections[:half], "minutes": 0.5},
        {"title": "What it shows", "sections": sections[half:], "minutes": 0.5},
    ]
    return Draft(json.dumps({"title": "The demo paper", "parts": parts}))


def segment(first: str) -> Draft:
    other = "Sam" if first == "Alex" else "Alex"
    turns = [
        {"speaker": first, "text": "So what does the paper set out to do?"},
        {"speaker": other, "text": "It asks how generated work reaches production."},
    ]
    return Draft(json.dumps({"title": "unused", "turns": turns}))


def kind(request: dict[str, Any]) -> str:
    prompt = str(request["messages"])
    if "Plan the episode" in prompt:
        return "outline"
    return "segment 1" if "part 1 of 2" in prompt else "segment 2"


def test_kill_9_between_the_outline_and_the_last_segment_repeats_no_paid_request(
    tmp_path: Path,
) -> None:
    release = threading.Event()
    held = Held(segment("Alex"), release)

    answers: dict[str, Reply] = {"segment 1": segment("Alex"), "segment 2": held}

    def answer(request: dict[str, Any]) -> Reply:
        return answers[kind(request)]

    with model_server(*[answer] * 12) as server:
        writer = f"openai-compatible:tiny@{server.url}"
        script = (
            f'writers = ["{writer}"]\ncontext_tokens = 2000\nmax_attempts_per_writer = 1\n'
            f'[podcast.script.prices."{writer}"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n'
        )
        with make_project(tmp_path / "p", auto_approve=True, script=script) as project:
            answers["outline"] = outline(headings(project))
            first = project.start("run", "paper-to-podcast", str(project.paper))
            try:
                assert held.arrived.wait(120), "the last segment was never asked for"
                run = project.wait_until(None, lambda r: r.state is RunState.RUNNING)
            finally:
                kill_group(first, signal.SIGKILL)  # mid-request: the answer never arrives
            release.set()
            asked_before = [kind(r) for r in server.requests]
            assert asked_before == ["outline", "segment 1", "segment 2"]

            run, out = project.recover(run.run_id)
            assert run.state is RunState.VERIFIED, out
            # On recovery only the unanswered request went out again.
            assert [kind(r) for r in server.requests] == [*asked_before, "segment 2"]
            requests = [e for e in run.events if e["kind"] == "model-request"]
            # The timeline: two answers before the crash; after it, both from the journal,
            # and the last segment asked anew.
            replayed = [e["data"]["replayed"] for e in requests]
            assert replayed == [False, False, True, True, False]
            assert all(e["data"]["input_tokens"] == 1000 for e in requests)
            assert "$0.0020" in requests[-1]["message"]  # 1,000 in at $1/M, 500 out at $2/M


def prices(*writers: str) -> str:
    return "".join(
        f'[podcast.script.prices."{w}"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n'
        for w in writers
    )


def test_an_answer_past_a_bound_hands_over_and_the_run_ends_verified(tmp_path: Path) -> None:
    too_long = Draft(
        json.dumps({"title": "t", "turns": [{"speaker": "Alex", "text": "so " * 2100}]})
    )
    with model_server(too_long, too_long, too_long) as server:
        writer = f"openai-compatible:tiny@{server.url}"
        script = f'writers = ["{writer}"]\nmax_attempts_per_writer = 1\n' + prices(writer)
        with make_project(tmp_path / "p", auto_approve=True, script=script) as project:
            done = project.run("run", "paper-to-podcast", str(project.paper))
            run = project.ledger().get(project.ledger().runs(limit=1)[0].run_id)
            assert run.state is RunState.VERIFIED, done.stdout + done.stderr
            attempts = [e for e in run.events if e["kind"] == "script-attempt"]
            assert attempts[0]["data"]["writer"] == writer and attempts[0]["data"]["error"]
            assert attempts[-1]["data"]["writer"] == "extractive"


def test_kill_9_during_a_revision_request_sends_no_answered_request_again(
    tmp_path: Path,
) -> None:
    """Request changes: the first writer's revision is answered (and fails the checks), the
    second writer's is in flight when the run is killed. On recovery the answered request is
    read from the journal and only the unanswered one goes out again."""
    release = threading.Event()
    draft = segment("Alex")
    invented = Draft(
        json.dumps(
            {
                "title": "t",
                "turns": [
                    {"speaker": "Alex", "text": "So what does the paper set out to do?"},
                    {"speaker": "Sam", "text": "It made pipelines 93.7 times faster."},
                ],
            }
        )
    )

    def first(request: dict[str, Any]) -> Reply:
        return invented if "A reviewer asked" in str(request["messages"]) else draft

    held = Held(segment("Alex"), release)
    with model_server(*[first] * 6) as one, model_server(held, segment("Alex")) as two:
        writers = [f"openai-compatible:tiny@{one.url}", f"openai-compatible:tiny@{two.url}"]
        script = f"writers = {json.dumps(writers)}\n" + prices(*writers)
        with make_project(  # a target the two-turn answers meet: the draft passes its checks
            tmp_path / "p", auto_approve=False, script=script, target_minutes=0.1
        ) as project:
            running = project.start("run", "paper-to-podcast", str(project.paper))
            try:
                run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
                asked = project.run(
                    "review",
                    "request-changes",
                    run.run_id,
                    "--as",
                    "editor",
                    "--comment",
                    "Say it in fewer words.",
                )
                assert asked.returncode == 0, asked.stderr
                assert held.arrived.wait(120), "the second writer was never asked"
            finally:
                kill_group(running, signal.SIGKILL)  # the second writer's answer never lands
            release.set()
            answered = len(one.requests)
            assert answered == 2  # the draft, and the revision that failed the checks
            assert len(two.requests) == 1  # the revision, in flight

            worker = project.start("worker")
            try:
                run = project.wait_until(
                    run.run_id,
                    lambda r: (
                        r.state is RunState.AWAITING_REVIEW
                        and any(e["kind"] == "script-revised" for e in r.events)
                    ),
                )
            finally:
                kill_group(worker, signal.SIGTERM)
            assert len(one.requests) == answered  # read from the journal, not asked again
            assert len(two.requests) == 2  # the unanswered request, sent once more
            replayed = [
                e["data"]["replayed"]
                for e in run.events
                if e["kind"] == "model-request" and e["data"]["writer"] == writers[0]
            ]
            assert replayed[-1] is True
