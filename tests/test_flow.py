"""paper-to-podcast end to end, through the real `shipyard` command: a real SQLite file, the
real TTS voices and ffmpeg, a real git remote with a deploy hook, and a real HTTP server on
loopback. Each test is one of the promises of the foundation issue."""

from __future__ import annotations

import hashlib
import html
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard._ledger import RunState
from tests.conftest import corpus_files, fresh_database
from tests.project import Project, kill_group, make_project

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Project:
    with make_project(tmp_path / "p", auto_approve=True) as p:
        yield p  # type: ignore[misc]


def _run_id(output: str) -> str:
    for word in output.split():
        if word.startswith("run-"):
            return word.rstrip(":")
    raise AssertionError(f"no run id in output:\n{output}")


def test_a_run_ends_verified_and_production_serves_the_shipped_bytes(project: Project) -> None:
    done = project.run("run", "paper-to-podcast", str(project.paper))
    assert done.returncode == 0, done.stdout + done.stderr
    run = project.ledger().get(_run_id(done.stdout))
    assert run.state is RunState.VERIFIED
    assert "episode:" in done.stdout and run.result["episode_url"] in done.stdout

    served = httpx.get(run.result["episode_url"], timeout=10)
    assert served.status_code == 200 and served.headers["content-type"] == "audio/mpeg"
    shipped = hashlib.sha256(served.content).hexdigest()
    assert shipped == run.result["audio_sha256"]
    assert project.config().state.joinpath("artifacts", shipped[:2]).is_dir()

    # The timeline names every stage once, each finished.
    steps = [s.step for s in run.steps if s.status == "ok"]
    for stage in (
        "ingest",
        "extract",
        "write-script",
        "review-decided",
        "synthesize",
        "master",
        "publish",
        "verify",
    ):
        assert steps.count(stage) == 1, (stage, steps)
    decision = next(e for e in run.events if e["kind"] == "review-decided")
    assert decision["data"]["automatic"] is True  # auto-approval is recorded as a policy


def test_running_the_same_input_twice_publishes_once(project: Project) -> None:
    first = project.run("run", "paper-to-podcast", str(project.paper))
    second = project.run("run", "paper-to-podcast", str(project.paper))
    assert first.returncode == 0 and second.returncode == 0, second.stdout + second.stderr
    assert _run_id(first.stdout) == _run_id(second.stdout)
    assert "found (same input and config)" in second.stdout
    run_commits = [c for c in project.site_commits() if "Shipyard-Run:" in c]
    assert len(run_commits) == 1
    feed = httpx.get(project.server.url + "feed.xml", timeout=10).text
    assert feed.count("<item>") == 1


def test_pushed_but_not_deployed_ends_unverified_never_verified(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=True, verify_seconds=3) as project:
        project.production.set_deploy(False)
        done = project.run("run", "paper-to-podcast", str(project.paper))
        assert done.returncode == 1
        run = project.ledger().get(_run_id(done.stdout))
        assert run.state is RunState.UNVERIFIED
        assert "unverified" in done.stdout
        # The reason says what production serves instead of the release.
        assert run.reason and run.reason in done.stdout
        assert any(e["kind"] == "unverified" for e in run.events)
        assert len([c for c in project.site_commits() if "Shipyard-Run:" in c]) == 1


@pytest.mark.parametrize("bad", corpus_files("bad"), ids=lambda p: p.name)
def test_bad_input_fails_at_extract_and_publishes_nothing(project: Project, bad: Path) -> None:
    done = project.run("run", "paper-to-podcast", str(bad))
    assert done.returncode == 1
    assert "error" in done.stdout + done.stderr or "failed" in done.stdout
    run = project.ledger().runs(limit=1)[0]
    assert run.state is RunState.FAILED and run.step == "extract", (run.state, run.step)
    assert run.reason  # a specific message, shown to the user
    assert run.reason in done.stdout
    assert not [c for c in project.site_commits() if "Shipyard-Run:" in c]


def test_kill_9_during_synthesis_resumes_without_redoing_finished_steps(
    project: Project,
) -> None:
    first = project.start("run", "paper-to-podcast", str(project.paper))
    run = project.wait_until(
        None, lambda r: any(s.step == "synthesize" and s.status == "running" for s in r.steps)
    )
    kill_group(first, signal.SIGKILL)

    run, out = project.recover(run.run_id)
    assert run.state is RunState.VERIFIED, out
    assert f"recovering run {run.run_id}" in out  # the worker says what it took up
    ledger = project.ledger()
    for finished_before_the_crash in ("ingest", "extract", "write-script", "review-decided"):
        assert ledger.step_runs(run.run_id, finished_before_the_crash) == 1
    synth = [s for s in run.steps if s.step == "synthesize"]
    assert [s.status for s in synth] == ["interrupted", "ok"]
    assert [s.attempt for s in synth] == [1, 2]  # numbered across the crash
    assert any(e["kind"] == "recovered" for e in run.events)  # the worker said it took it up
    assert len([c for c in project.site_commits() if run.run_id in c]) == 1


def test_a_run_waits_for_review_across_a_restart_and_goes_on_when_approved(
    tmp_path: Path,
) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        first = project.start("run", "paper-to-podcast", str(project.paper))
        run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
        kill_group(first, signal.SIGKILL)

        listed = project.run("review", "list", "--json")
        assert run.run_id in listed.stdout
        shown = project.run("review", "show", run.run_id)
        assert shown.returncode == 0 and "Alex:" in shown.stdout

        worker = project.start("worker")
        try:
            stranger = project.run("review", "approve", run.run_id, "--as", "mallory")
            assert stranger.returncode == 3 and "not a reviewer" in stranger.stderr
            approved = project.run("review", "approve", run.run_id, "--as", "editor")
            assert approved.returncode == 0, approved.stderr
            run = project.wait_until(run.run_id, lambda r: r.state.finished)
        finally:
            out = kill_group(worker, signal.SIGTERM)
        assert run.state is RunState.VERIFIED, out
        decision = next(e for e in run.events if e["kind"] == "review-decided")
        assert decision["data"]["reviewer"] == "editor"
        assert decision["data"]["automatic"] is False


def test_a_rejected_run_publishes_nothing(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        running = project.start("run", "paper-to-podcast", str(project.paper))
        try:
            run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
            rejected = project.run(
                "review", "reject", run.run_id, "--as", "editor", "--comment", "numbers look off"
            )
            assert rejected.returncode == 0, rejected.stderr
            run = project.wait_until(run.run_id, lambda r: r.state.finished)
        finally:
            kill_group(running, signal.SIGTERM)
        assert run.state is RunState.REJECTED
        assert "numbers look off" in run.reason
        assert not [c for c in project.site_commits() if "Shipyard-Run:" in c]


def test_a_cancelled_run_stops_and_publishes_nothing(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        running = project.start("run", "paper-to-podcast", str(project.paper))
        try:
            run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
            cancelled = project.run("cancel", run.run_id)
            assert cancelled.returncode == 0, cancelled.stderr
            assert running.wait(timeout=60) == 1  # the following `run` reports it and exits
        finally:
            kill_group(running, signal.SIGTERM)
        assert project.ledger().get(run.run_id).state is RunState.CANCELLED
        again = project.run("cancel", run.run_id)
        assert again.returncode == 3 and "already ended cancelled" in again.stderr
        assert not [c for c in project.site_commits() if "Shipyard-Run:" in c]


def test_kill_9_between_commit_and_push_resumes_with_exactly_one_commit(
    project: Project,
) -> None:
    project.production.hold_pushes(True)
    first = project.start("run", "paper-to-podcast", str(project.paper))
    try:
        run = project.wait_until(None, lambda r: project.production.push_waiting())
    finally:
        kill_group(first, signal.SIGKILL)  # the run and its `git push` with it
    project.production.hold_pushes(False)
    assert not [c for c in project.site_commits() if "Shipyard-Run:" in c]  # never arrived

    run, out = project.recover(run.run_id)
    assert run.state is RunState.VERIFIED, out
    assert [s.status for s in run.steps if s.step == "publish"] == ["interrupted", "ok"]
    assert project.ledger().step_runs(run.run_id, "master") == 1
    assert len([c for c in project.site_commits() if run.run_id in c]) == 1


def test_kill_9_between_push_and_verification_resumes_and_verifies(project: Project) -> None:
    project.production.set_deploy_delay(4)  # production catches up later, as a CDN does
    first = project.start("run", "paper-to-podcast", str(project.paper))
    run = project.wait_until(
        None, lambda r: any(s.step == "verify" and s.status == "running" for s in r.steps)
    )
    first.kill()  # the worker alone: the site's own deploy goes on, as on a real server
    first.communicate(timeout=30)

    run, out = project.recover(run.run_id)
    assert run.state is RunState.VERIFIED, out
    assert project.ledger().step_runs(run.run_id, "publish") == 1
    assert [s.status for s in run.steps if s.step == "verify"] == ["interrupted", "ok"]
    assert len([c for c in project.site_commits() if run.run_id in c]) == 1


def test_drift_is_caught_by_verify_all_and_unpublish_takes_the_episode_down(
    project: Project,
) -> None:
    done = project.run("run", "paper-to-podcast", str(project.paper))
    run = project.ledger().get(_run_id(done.stdout))
    assert run.state is RunState.VERIFIED
    assert project.run("verify", "--all").returncode == 0

    audio = next(p for p in project.production.webroot.rglob("*.mp3"))
    audio.write_bytes(audio.read_bytes()[:-1000])  # someone replaced the file in production
    drift = project.run("verify", "--all", "--deadline", "1")
    assert drift.returncode == 1 and "drift:" in drift.stdout, drift.stdout + drift.stderr

    down = project.run("unpublish", run.run_id)
    assert down.returncode == 0, down.stdout + down.stderr
    assert project.ledger().get(run.run_id).state is RunState.UNPUBLISHED
    assert "<item>" not in httpx.get(project.server.url + "feed.xml", timeout=10).text
    assert httpx.get(run.result["episode_url"], timeout=10).status_code == 404
    assert project.site_commits()[0].startswith("Unpublish episode:")
    assert project.run("verify", "--all").returncode == 0  # nothing verified is left to drift


def test_a_push_refused_for_good_fails_the_run_with_gits_message(project: Project) -> None:
    project.production.refuse_pushes("site frozen for the audit")
    done = project.run("run", "paper-to-podcast", str(project.paper))
    assert done.returncode == 1
    run = project.ledger().get(_run_id(done.stdout))
    assert (run.state, run.step) == (RunState.FAILED, "publish")
    assert "site frozen for the audit" in run.reason
    assert [s.status for s in run.steps if s.step == "publish"] == ["failed"]  # not retried
    assert not [c for c in project.site_commits() if "Shipyard-Run:" in c]


def test_run_detach_returns_at_the_review_gate_and_a_worker_finishes_the_run(
    tmp_path: Path,
) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        detached = project.run("run", "paper-to-podcast", str(project.paper), "--detach")
        assert detached.returncode == 4, detached.stdout + detached.stderr
        assert "awaiting_review" in detached.stdout
        run_id = _run_id(detached.stdout)
        approved = project.run("review", "approve", run_id, "--as", "editor")
        assert approved.returncode == 0, approved.stderr
        run, out = project.recover(run_id)
        assert run.state is RunState.VERIFIED, out


@pytest.mark.postgres
def test_two_workers_share_the_queue_on_postgresql(
    tmp_path: Path, postgres_url: str, corpus: Path
) -> None:
    """Scale-out: runs handed to the queue by `run --queue` (which runs nothing itself) are
    taken by two workers with their own executor ids, over one PostgreSQL database."""
    database = fresh_database(postgres_url, "scaleout")
    with make_project(
        tmp_path / "p", auto_approve=True, extra=f'[engine]\ndatabase_url = "{database}"\n'
    ) as project:
        early = project.run("run", "paper-to-podcast", str(project.paper), "--queue")
        assert early.returncode == 3 and "no worker has prepared" in early.stderr
        workers = [
            project.start("worker", "--concurrency", "1", env={"SHIPYARD_EXECUTOR_ID": w})
            for w in ("worker-1", "worker-2")
        ]
        try:
            for worker in workers:
                project.wait_for_output(worker, "ready")
            second = corpus / "papers" / "grobid__submission_161.pdf"
            queued = [
                project.run("run", "paper-to-podcast", str(p), "--queue", "--detach")
                for p in (project.paper, second)
            ]
            assert all(q.returncode == 4 for q in queued), [q.stderr[-3000:] for q in queued]
            runs = [
                project.wait_until(_run_id(q.stdout), lambda r: r.state.finished) for q in queued
            ]
        finally:
            outs = [kill_group(w, signal.SIGTERM) for w in workers]
        assert [r.state for r in runs] == [RunState.VERIFIED] * 2, outs
        executors = {s.executor for r in runs for s in r.steps}
        assert executors == {"worker-1", "worker-2"}  # each worker took one run
        assert len([c for c in project.site_commits() if "Shipyard-Run:" in c]) == 2


def test_a_review_past_its_deadline_is_escalated_and_the_owner_decides(tmp_path: Path) -> None:
    review = 'deadline_hours = 0.001\nescalate_to = "chief"'  # 3.6 s
    with make_project(tmp_path / "p", auto_approve=False, review=review) as project:
        running = project.start("run", "paper-to-podcast", str(project.paper))
        try:
            run = project.wait_until(
                None, lambda r: any(e["kind"] == "review-escalated" for e in r.events)
            )
            approved = project.run("review", "approve", run.run_id, "--as", "chief")
            assert approved.returncode == 0, approved.stderr
            run = project.wait_until(run.run_id, lambda r: r.state.finished)
        finally:
            kill_group(running, signal.SIGTERM)
        assert run.state is RunState.VERIFIED
        decision = next(e for e in run.events if e["kind"] == "review-decided")
        assert decision["data"]["reviewer"] == "chief"


def test_a_review_nobody_decides_ends_rejected_by_the_deadline(tmp_path: Path) -> None:
    with make_project(
        tmp_path / "p", auto_approve=False, review="deadline_hours = 0.001"
    ) as project:
        done = project.run("run", "paper-to-podcast", str(project.paper))
        run = project.ledger().get(_run_id(done.stdout))
        assert run.state is RunState.REJECTED and done.returncode == 1
        assert "no review decision within" in run.reason
        decision = next(e for e in run.events if e["kind"] == "review-decided")
        assert decision["data"]["automatic"] is True  # the deadline decided, not a person
        assert not [c for c in project.site_commits() if "Shipyard-Run:" in c]


def _reviews(project: Project, run_id: str) -> list[dict[str, Any]]:
    return [e["data"] for e in project.events(run_id, "review-requested")]


def test_an_edit_the_paper_does_not_support_is_held_until_overridden_with_a_reason(
    tmp_path: Path,
) -> None:
    banned = '[podcast.show]\nbanned_phrases = ["game changer"]\n'
    with make_project(tmp_path / "p", auto_approve=False, extra=banned) as project:
        running = project.start("run", "paper-to-podcast", str(project.paper))
        try:
            run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
            script = _reviews(project, run.run_id)[-1]["payload"]
            script["turns"][1]["text"] += (
                " It was downloaded 4,000 times in its first week, said Professor Zorblat,"
                " a <b>game changer</b>."
            )
            edited = project.root / "edited.json"
            edited.write_text(json.dumps(script))
            # approving the edit checks it here first: held, its flags printed, nothing sent
            held = project.run(
                "review", "approve", run.run_id, "--as", "editor", "--edited", str(edited)
            )
            assert held.returncode != 0 and "edit held: " in held.stderr, held.stderr
            for said in ("'4,000'", "'Professor Zorblat'", "HTML: '<b>'", "'game changer'"):
                assert said in held.stderr
            assert not [e for e in project.events(run.run_id, "review-sent")]
            # saved instead: checked here at once, and the run takes it up (no round used)
            saved = project.run(
                "review", "save", run.run_id, "--as", "editor", "--edited", str(edited)
            )
            assert saved.returncode == 0, saved.stderr
            assert "revision 2 saved and checked: 6 error flag(s)" in saved.stdout
            project.wait_until(run.run_id, lambda r: len(_reviews(project, r.run_id)) == 2)
            shown = _reviews(project, run.run_id)[-1]
            assert shown["round"] == 1 and "4,000" in shown["diff"]
            errors = {(f["check"], f["span"]) for f in shown["flags"] if f["severity"] == "error"}
            assert {c for c, _ in errors} >= {"grounding", "unspeakable", "brand"}, errors
            assert ("grounding", "4,000") in errors and ("grounding", "Professor Zorblat") in errors

            refused = project.run("review", "approve", run.run_id, "--as", "editor")
            assert refused.returncode == 3 and "error flag(s) remain" in refused.stderr
            reason = "the download count is from the authors' blog, checked by hand"
            overridden = project.run(
                "review", "approve", run.run_id, "--as", "editor", "--override", reason
            )
            assert overridden.returncode == 0, overridden.stderr
            run = project.wait_until(run.run_id, lambda r: r.state.finished)
        finally:
            kill_group(running, signal.SIGTERM)
        assert run.state is RunState.VERIFIED, run.reason
        decided = [e for e in run.events if e["kind"] == "review-decided"]
        assert "saved as revision 2" in decided[0]["message"]
        assert decided[-1]["data"]["override"] == reason
        transcript = httpx.get(run.result["page_url"], timeout=10).text
        assert "4,000 times" in transcript  # the edit, not the draft, was published
        shown = project.run("status", run.run_id)
        assert reason in shown.stdout  # the override is on the record


def test_request_changes_revises_the_script_and_the_run_goes_on(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        running = project.start("run", "paper-to-podcast", str(project.paper))
        try:
            run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
            dropped = _reviews(project, run.run_id)[-1]["payload"]["turns"][1]["text"]
            asked = project.run(
                "review", "request-changes", run.run_id, "--as", "editor",
                "--comment", "drop turn 2",
            )  # fmt: skip
            assert asked.returncode == 0, asked.stderr
            project.wait_until(run.run_id, lambda r: len(_reviews(project, r.run_id)) == 2)
            revised = _reviews(project, run.run_id)[-1]
            assert dropped not in [t["text"] for t in revised["payload"]["turns"]]
            assert revised["round"] == 2 and revised["diff"].count("\n-") >= 1
            shown = project.run("review", "show", run.run_id)
            assert "round 2" in shown.stdout and "changes since the last round" in shown.stdout
            approved = project.run("review", "approve", run.run_id, "--as", "editor")
            assert approved.returncode == 0, approved.stderr
            run = project.wait_until(run.run_id, lambda r: r.state.finished)
        finally:
            kill_group(running, signal.SIGTERM)
        assert run.state is RunState.VERIFIED, run.reason
        revised_event = next(e for e in run.events if e["kind"] == "script-revised")
        assert revised_event["data"]["applied"] == ["dropped turn 2"]
        page = httpx.get(run.result["page_url"], timeout=10).text
        assert html.escape(dropped[:40]) not in page and "Welcome" in page


def test_auto_approval_withheld_says_why_and_what_to_do(tmp_path: Path, corpus: Path) -> None:
    """A 25-minute target on a paper that supports less: the run is held for a person
    (never failed), and `run --auto-approve` says why and what can be done."""
    from tests.test_paper_shapes import longest_paper

    paper, _ = longest_paper(corpus)
    with make_project(tmp_path / "p", auto_approve=False, target_minutes=25) as project:
        held = project.run("run", "paper-to-podcast", str(paper), "--auto-approve", "--detach")
        assert held.returncode == 4, held.stdout + held.stderr
        said = " ".join(held.stdout.split())
        assert "auto-approve withheld" in said
        assert "too short" in said and "target_minutes" in said  # why, and the setting
        assert "--override" in said  # and how a person goes on with it
        run = project.ledger().get(_run_id(held.stdout))
        assert run.state is RunState.AWAITING_REVIEW
