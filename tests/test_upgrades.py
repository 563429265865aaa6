"""Upgrades strand no run: a run's application version names the core's step sequence and
each installed workflow's version, not shipyard's release. A run left on another version is
listed as stranded and moved with `shipyard migrate`, its finished steps and the decision
sent to it kept; a run whose workflow's steps changed is refused, with what to do."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from shipyard import RunState, load_config
from shipyard._engine import COMPATIBILITY, application_version
from shipyard._version import __version__
from tests.conftest import fresh_database
from tests.project import kill_group, make_project

pytestmark = pytest.mark.slow

PINNED = 'application_version = "shipyard-old"\n'


def test_the_version_names_the_steps_not_the_release(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("")
    config = load_config(tmp_path / "shipyard.toml")
    version = application_version(config)
    assert version.startswith(f"shipyard-c{COMPATIBILITY}:")
    assert "paper-to-podcast@" in version and __version__ not in version
    (tmp_path / "shipyard.toml").write_text(f"[engine]\n{PINNED}")
    assert application_version(load_config(tmp_path / "shipyard.toml")) == "shipyard-old"


def _run_id(text: str) -> str:
    found = re.search(r"run-[0-9a-f]{12}", text)
    assert found, text
    return found.group(0)


def _unpin(root: Path) -> None:
    """The upgrade: this project's processes are now of the current version."""
    file = root / "shipyard.toml"
    file.write_text(file.read_text().replace(PINNED, ""))


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_stranded_run_is_listed_and_migrated_with_its_steps_and_decision(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    engine = f"[engine]\n{PINNED}"
    if database == "postgres":
        url = fresh_database(request.getfixturevalue("postgres_url"), "upgrades")
        engine += f'database_url = "{url}"\n'
    with make_project(tmp_path / "p", auto_approve=False, extra=engine) as project:
        detached = project.run("run", "paper-to-podcast", str(project.paper), "--detach")
        assert detached.returncode == 4, detached.stdout + detached.stderr
        run_id = _run_id(detached.stdout)
        _unpin(project.root)

        listed = project.run("runs", "--stranded", "--json")
        assert listed.returncode == 0, listed.stderr
        [stranded] = json.loads(listed.stdout)
        assert stranded["run_id"] == run_id and stranded["state"] == "awaiting_review"
        assert stranded["version"] == "shipyard-old" and stranded["movable"] is True

        # decided while stranded: a worker of the new version does not take it up
        approved = project.run("review", "approve", run_id, "--as", "editor")
        assert approved.returncode == 0, approved.stderr
        worker = project.start("worker")
        project.wait_for_output(worker, "ready")
        time.sleep(3)  # a few of the queue's polls (each second)
        ledger = project.ledger()
        untouched = ledger.get(run_id)
        ledger.close()
        kill_group(worker, signal.SIGTERM)
        assert untouched.state is RunState.AWAITING_REVIEW
        moved = project.run("migrate", run_id)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "no stranded runs" in project.run("runs", "--stranded").stdout
        again = project.run("migrate", run_id)
        assert again.returncode == 3 and "not stranded" in again.stderr

        run, out = project.recover(run_id)
    assert run.state is RunState.VERIFIED, out
    assert [s.step for s in run.steps].count("extract") == 1  # its finished steps went along
    assert [e["kind"] for e in run.events].count("migrated") == 1
    decisions = [e for e in run.events if e["kind"] == "review-decided"]
    assert decisions and decisions[-1]["data"]["reviewer"] == "editor"


def test_a_run_whose_workflow_changed_is_not_moved(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=False, extra=f"[engine]\n{PINNED}") as project:
        detached = project.run("run", "paper-to-podcast", str(project.paper), "--detach")
        run_id = _run_id(detached.stdout)
        _unpin(project.root)
        # as if it had begun under an older paper-to-podcast, with other steps
        with sqlite3.connect(project.root / "state" / "shipyard.sqlite") as db:
            db.execute("UPDATE shipyard_runs SET version = '0' WHERE run_id = ?", (run_id,))
        [stranded] = json.loads(project.run("runs", "--stranded", "--json").stdout)
        assert stranded["movable"] is False and "v0" in stranded["why"]
        refused = project.run("migrate", run_id)
    assert refused.returncode == 3
    assert "cannot move to this version" in refused.stderr
    assert f"shipyard cancel {run_id}" in refused.stderr and "--force" in refused.stderr
