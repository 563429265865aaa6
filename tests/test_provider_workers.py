"""Workers on PostgreSQL share a provider's limits and keep their own concurrency: three
workers never exceed the fake provider's calls at once or per window, as the provider itself
measures, and wait out its 429 without failing a step; a worker of concurrency 1 stays at one
run at a time when another registers the queue with 3."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shipyard import RunRecord, RunState, load_config, submit_run
from tests.conftest import REPO, fresh_database
from tests.fakeprovider import fake_provider
from tests.project import Project, kill_group, make_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@contextmanager
def _project(tmp_path: Path, database: str, limits: str) -> Iterator[Project]:
    # The version pinned: this test process may have other workflows registered than the
    # workers have, and runs are queued for the version of the process that queues them.
    extra = f"""
[engine]
database_url = "{database}"
application_version = "provider-test"

[workflows]
modules = ["tests.provider_workflow"]

[providers.fake]
{limits}
"""
    with make_project(tmp_path / "p", auto_approve=True, extra=extra) as project:
        yield project


def _start_worker(project: Project, name: str, concurrency: int) -> None:
    worker = project.start(
        "worker",
        "--concurrency",
        str(concurrency),
        env={"SHIPYARD_EXECUTOR_ID": name, "PYTHONPATH": str(REPO)},
    )
    project.wait_for_output(worker, "ready")


def _run_all(project: Project, url: str, runs: int, calls: int) -> list[RunRecord]:
    config = load_config(project.config_file)
    run_ids = [
        submit_run(
            config, "provider-calls", json.dumps({"url": url, "calls": calls, "n": n})
        ).run_id
        for n in range(runs)
    ]
    try:
        return [project.wait_until(r, lambda run: run.state.finished) for r in run_ids]
    finally:
        for worker in project.started:
            kill_group(worker, signal.SIGTERM)


def test_three_workers_hold_a_providers_limits_together(tmp_path: Path, postgres_url: str) -> None:
    database = fresh_database(postgres_url, "providers")
    limits = "concurrency = 2\nrequests = 10\nperiod_seconds = 2\n"
    with (
        fake_provider(seconds=0.15, refuse={5: 1.5}) as provider,
        _project(tmp_path, database, limits) as project,
    ):
        for n in range(3):
            _start_worker(project, f"worker-{n}", concurrency=2)
        runs = _run_all(project, provider.url, runs=9, calls=3)

    assert [r.state for r in runs] == [RunState.VERIFIED] * 9, [(r.run_id, r.reason) for r in runs]
    assert len({s.executor for r in runs for s in r.steps}) == 3  # all three took runs
    # measured by the provider: never more than 2 at once, nor 10 in any 2 s, less the time a
    # request takes from its slot to the provider (a commit, a connection, the server's thread:
    # beyond 50 ms on a loaded 2-core machine). The calls come in bursts, so an eleventh let
    # through would arrive well inside the shortened window.
    assert provider.most_at_once == 2
    assert provider.most_in_any_window(1.75) <= 10
    assert len(provider.arrivals) == 9 * 3 + 1  # the refused call, asked again once
    # the 429 paused every worker: only a call already under way may arrive in the pause
    refused_at = next(start for start, _, status in provider.answered if status == 429)
    assert len([t for t in provider.requests_after(refused_at) if t < refused_at + 1.5]) <= 1
    # and it failed nothing: every step's first attempt succeeded, the pause on the timeline
    assert all(s.status == "ok" and s.attempt == 1 for r in runs for s in r.steps)
    paused = [e for r in runs for e in r.events if e["kind"] == "provider-paused"]
    assert len(paused) == 1 and "429" in paused[0]["message"]


def _most_runs_at_once(runs: list[RunRecord], executor: str) -> tuple[int, int]:
    """How many runs `executor` worked on, and the most at one moment."""
    spans = [
        (min(s.started_at for s in mine), max(s.ended_at or s.started_at for s in mine))
        for r in runs
        if (mine := [s for s in r.steps if s.executor == executor])
    ]
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    at_once = most = 0
    for _, change in edges:
        at_once += change
        most = max(most, at_once)
    return len(spans), most


def test_each_worker_keeps_its_own_concurrency(tmp_path: Path, postgres_url: str) -> None:
    database = fresh_database(postgres_url, "concurrency")
    with (
        fake_provider(seconds=0.3) as provider,
        _project(tmp_path, database, "") as project,
    ):
        _start_worker(project, "small", concurrency=1)
        _start_worker(project, "large", concurrency=3)  # registers the queue after "small"
        runs = _run_all(project, provider.url, runs=12, calls=3)

    assert [r.state for r in runs] == [RunState.VERIFIED] * 12
    taken, most = _most_runs_at_once(runs, "small")
    assert taken >= 2 and most == 1
    assert _most_runs_at_once(runs, "large")[1] >= 2
