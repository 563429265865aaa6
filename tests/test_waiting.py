"""Waiting costs nothing: runs waiting at a review gate hold none of their worker's slots, so
a worker of concurrency 1 whose three runs all wait for a person still takes a fourth and
finishes it; the three go on once decided."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from shipyard import RunState
from tests.conftest import corpus_files
from tests.project import kill_group, make_project

pytestmark = pytest.mark.slow


def _run_id(text: str) -> str:
    found = re.search(r"run-[0-9a-f]{12}", text)
    assert found, text
    return found.group(0)


def test_runs_waiting_for_review_leave_the_worker_free(tmp_path: Path, corpus: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        worker = project.start("worker", "--concurrency", "1")
        project.wait_for_output(worker, "ready")
        try:
            waiting = []
            for paper in corpus_files("papers")[:3]:
                queued = project.run("run", "paper-to-podcast", str(paper), "--queue", "--detach")
                assert queued.returncode == 4, queued.stderr
                waiting.append(_run_id(queued.stdout))
            for run_id in waiting:
                project.wait_until(run_id, lambda r: r.state is RunState.AWAITING_REVIEW)

            fourth = project.run(
                "run", "paper-to-podcast", str(project.paper), "--queue", "--auto-approve"
            )
            assert fourth.returncode == 0, fourth.stdout + fourth.stderr
            done = project.wait_until(_run_id(fourth.stdout), lambda r: r.state.finished)
            assert done.state is RunState.VERIFIED
            ledger = project.ledger()
            try:
                states = [ledger.get(r, detail=False).state for r in waiting]
            finally:
                ledger.close()
            assert states == [RunState.AWAITING_REVIEW] * 3

            # decided, the waiting runs take their slots again, one at a time
            approved = project.run("review", "approve", waiting[0], "--as", "editor")
            assert approved.returncode == 0, approved.stderr
            run = project.wait_until(waiting[0], lambda r: r.state.finished)
        finally:
            out = kill_group(worker, signal.SIGTERM)
    assert run.state is RunState.VERIFIED, out
