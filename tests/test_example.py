"""examples/note-to-page end to end, through the real CLI against a local production: a person
reviews (an ungrounded edit is held, "request changes" revises), the page and its Atom entry
are published once and verified served; and a kill -9 mid-publish resumes to one commit. It
tests itself with the kit any workflow's author has (`shipyard.testing`)."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from shipyard import RunState
from shipyard.testing import WorkflowProject, kill_group, workflow_project

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[1] / "examples" / "note-to-page"
NOTE = EXAMPLE / "note.md"
WORKFLOW = EXAMPLE / "note_to_page.py"
SETTINGS = "[note]\nsummary_sentences = 3\n"


@pytest.fixture
def reviewed(tmp_path: Path) -> Iterator[WorkflowProject]:
    with workflow_project(tmp_path / "p", workflows=[WORKFLOW], settings=SETTINGS) as p:
        yield p


def test_a_note_is_reviewed_published_and_verified(reviewed: WorkflowProject) -> None:
    p = reviewed
    running = p.start("run", "note-to-page", str(NOTE))
    try:
        run = p.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
        shown = p.run("review", "show", run.run_id)
        assert shown.returncode == 0 and "Why releases fail" in shown.stdout

        # An edit that adds a sentence the note never says is checked again and held.
        edited = p.root / "edited.json"
        edited.write_text(
            '{"title": "Why releases fail", "sentences": ["Releases never fail at all."]}'
        )
        sent = p.run("review", "approve", run.run_id, "--as", "editor", "--edited", str(edited))
        assert sent.returncode == 0, sent.stderr
        p.wait_until(run.run_id, lambda r: len(p.events(r.run_id, "review-requested")) == 2)
        assert p.ledger().get(run.run_id).state is RunState.AWAITING_REVIEW
        held = p.events(run.run_id, "review-decided")[-1]
        assert "held: 1 error flag(s)" in str(held["message"])

        # Approving the held edit as it is needs a written reason; a revision fixes it.
        refused = p.run("review", "approve", run.run_id, "--as", "editor")
        assert refused.returncode == 3 and "grounded" in refused.stderr
        asked = p.run(
            "review", "request-changes", run.run_id, "--as", "editor", "--comment", "shorter"
        )
        assert asked.returncode == 0, asked.stderr
        p.wait_until(run.run_id, lambda r: len(p.events(r.run_id, "review-requested")) == 3)
        approved = p.run("review", "approve", run.run_id, "--as", "editor")
        assert approved.returncode == 0, approved.stderr
        run = p.wait_until(run.run_id, lambda r: r.state.finished)
    finally:
        kill_group(running, signal.SIGTERM)
    assert run.state is RunState.VERIFIED, run.reason

    page = httpx.get(run.result["page_url"], timeout=10)
    assert hashlib.sha256(page.content).hexdigest() == run.result["page"]["page_sha256"]
    assert "Releases never fail" not in page.text and page.text.count("<p>") == 1
    feed = ElementTree.fromstring(httpx.get(run.result["page"]["feed_url"], timeout=10).content)
    ids = [e.text for e in feed.iter("{http://www.w3.org/2005/Atom}id")]
    assert run.result["page"]["entry_id"] in ids
    assert len([c for c in p.site_commits() if run.run_id in c]) == 1
    assert p.run("verify", run.run_id).returncode == 0  # the workflow's own drift check


def test_kill_9_mid_publish_resumes_with_exactly_one_commit(tmp_path: Path) -> None:
    with workflow_project(
        tmp_path / "p", workflows=[WORKFLOW], settings=SETTINGS, auto_approve=True
    ) as p:
        p.production.hold_pushes(True)
        first = p.start("run", "note-to-page", str(NOTE))
        try:
            run = p.wait_until(None, lambda r: p.production.push_waiting())
        finally:
            kill_group(first, signal.SIGKILL)  # the run and its `git push` with it
        p.production.hold_pushes(False)
        assert not [c for c in p.site_commits() if "Shipyard-Run:" in c]

        run, out = p.recover(run.run_id)
        assert run.state is RunState.VERIFIED, out
        assert [s.status for s in run.steps if s.step == "publish"] == ["interrupted", "ok"]
        assert p.ledger().step_runs(run.run_id, "summarize") == 1
        assert len([c for c in p.site_commits() if run.run_id in c]) == 1
