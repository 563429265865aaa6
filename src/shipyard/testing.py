"""A kit for testing workflows end to end, the way they run: a temporary project with a local
production (a bare git remote that deploys on push, served over HTTP on loopback), the real
`shipyard` command in subprocesses, runs driven to a state, decisions, kill -9 and recovery,
and what production serves.

    from shipyard import RunState
    from shipyard.testing import workflow_project

    def test_a_greeting_is_published(tmp_path):
        with workflow_project(tmp_path, settings='[workflows]\\nmodules = ["greeting"]\\n') as p:
            done = p.run("run", "greeting", '{"title": "Hi", "text": "Shipped."}')
            run = p.latest()
            assert run.state is RunState.VERIFIED, done.stdout
            assert p.served(run.result["url"]) == b"Hi\\n\\nShipped.\\n"

Every process the project starts is stopped when its block ends, whether the test passed or
not; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shipyard._config import Config, load_config
from shipyard._ledger import Ledger, RunRecord, RunState
from shipyard._localprod import LocalProduction, LocalServer
from shipyard._runner import decide

__all__ = ["SHIPYARD", "WorkflowProject", "kill_group", "workflow_project"]

SHIPYARD = [sys.executable, "-m", "shipyard"]  # the real command, in this environment


@dataclass
class WorkflowProject:
    """A project in a temporary folder: its `shipyard.toml`, its state, its local production
    and the server that serves it."""

    root: Path
    production: LocalProduction
    server: LocalServer
    started: list[subprocess.Popen[str]] = field(default_factory=list)  # stopped at the end

    @property
    def config_file(self) -> Path:
        return self.root / "shipyard.toml"

    def config(self) -> Config:
        return load_config(self.config_file)

    def ledger(self) -> Ledger:
        return Ledger(self.config().database_url)

    # --- the command ------------------------------------------------------------------------

    def run(
        self, *args: str, timeout: float = 240, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `shipyard ARGS` to completion (bounded by `timeout`), as a user would."""
        return subprocess.run(
            [*SHIPYARD, *args, "-c", str(self.config_file)],
            cwd=self.root,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(),
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `shipyard ARGS` in the background (stopped, at the latest, when the
        project's block ends)."""
        process = subprocess.Popen(
            [*SHIPYARD, *args, "-c", str(self.config_file)],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**_env(), **(env or {})},
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def wait_for_output(
        self, process: subprocess.Popen[str], text: str, timeout: float = 60
    ) -> str:
        """Read a background command's output until `text` appears (bounded); the line."""
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.2)
            if ready:
                line = process.stdout.readline()
                seen += line
                if text in line:
                    return line
                if not line and process.poll() is not None:
                    break
        raise AssertionError(f"{text!r} not printed within {timeout} s; got:\n{seen}")

    # --- runs -------------------------------------------------------------------------------

    def latest(self) -> RunRecord:
        """The run started last, with its steps and events."""
        ledger = self.ledger()
        try:
            [newest] = ledger.runs(limit=1)
            return ledger.get(newest.run_id)
        finally:
            ledger.close()

    def wait_until(
        self, run_id: str | None, holds: Callable[[RunRecord], bool], *, timeout: float = 180
    ) -> RunRecord:
        """Poll the ledger until `holds(run)` for run `run_id` (None: the latest run);
        fails after `timeout` seconds."""
        ledger = self.ledger()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                records = ledger.runs(limit=1) if run_id is None else [ledger.get(run_id)]
                if records and holds(full := ledger.get(records[0].run_id)):
                    return full
                time.sleep(0.1)
        finally:
            ledger.close()
        raise AssertionError(f"condition not reached within {timeout} s")

    def wait_for_state(
        self, run_id: str | None, state: RunState, *, timeout: float = 180
    ) -> RunRecord:
        return self.wait_until(run_id, lambda r: r.state is state, timeout=timeout)

    def events(self, run_id: str, kind: str) -> list[dict[str, Any]]:
        """The run's events of one kind (review-requested, review-decided...), oldest first."""
        ledger = self.ledger()
        try:
            return [e for e in ledger.get(run_id).events if e["kind"] == kind]
        finally:
            ledger.close()

    def decide(self, run_id: str, action: str, reviewer: str, **fields: Any) -> RunRecord:
        """A review decision, as the CLI and the console send it (`comment=`, `payload=`,
        `override=`...); refused the same way (a ShipyardError)."""
        return decide(self.config(), run_id, {"action": action, "reviewer": reviewer, **fields})

    def recover(self, run_id: str, *, timeout: float = 180) -> tuple[RunRecord, str]:
        """Start `shipyard worker`, wait until the run ends, stop the worker: the run and
        what the worker printed. After `kill_group(process)` this is recovery from a crash."""
        worker = self.start("worker")
        try:
            run = self.wait_until(run_id, lambda r: r.state.finished, timeout=timeout)
        finally:
            out = kill_group(worker, signal.SIGTERM)
        return run, out

    # --- production -------------------------------------------------------------------------

    def served(self, url: str) -> bytes:
        """What production serves at `url` now."""
        return httpx.get(url, timeout=10).content

    def site_commits(self) -> list[str]:
        """Subjects and trailers of the site repository's commits, newest first."""
        out = subprocess.run(
            [
                "git",
                "-C",
                str(self.production.remote),
                "log",
                "--format=%s%n%(trailers:only)%x00",
                self.production.branch,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        return [c.strip() for c in out.split("\0") if c.strip()]


@contextmanager
def workflow_project(
    root: Path,
    *,
    workflows: Sequence[Path] = (),
    settings: str = "",
    reviewers: Sequence[str] = ("editor",),
    auto_approve: bool = False,
    review: str = "",
    verify_seconds: float = 20,
    remote: str = "",
    base_url: str = "",
    publish: str = "",
    verify: str = "",
) -> Iterator[WorkflowProject]:
    """A project under `root` whose `shipyard.toml` publishes to a fresh local production
    (or to `remote`, served at `base_url`, with `publish`'s and `verify`'s lines in those
    tables), with `[review]` naming `reviewers` (and `review`'s lines), quick
    verification, and `settings` (TOML) after. `workflows` are modules of workflows (.py
    files) copied into the project and named in `workflows.modules`. The production serves
    until the block ends, and every process started is stopped then."""
    root.mkdir(parents=True, exist_ok=True)
    for module in workflows:
        shutil.copy(module, root / module.name)
    named = [m.stem for m in workflows]
    modules = f"[workflows]\nmodules = {json.dumps(named)}\n" if named else ""
    production = LocalProduction(root / "production").create()
    with production.serve() as server:
        (root / "state").mkdir(exist_ok=True)
        (root / "shipyard.toml").write_text(
            f"""\
state_dir = "state"
{modules}
[review]
reviewers = {json.dumps(list(reviewers))}
auto_approve = {str(auto_approve).lower()}
{review}

[publish]
remote = "{remote or production.remote}"
base_url = "{base_url or server.url}"
{publish}

[verify]
deadline_seconds = {verify_seconds}
first_delay_seconds = 0.1
max_delay_seconds = 1
{verify}
{settings}""",
            encoding="utf-8",
        )
        project = WorkflowProject(root=root, production=production, server=server)
        try:
            yield project
        finally:
            for process in project.started:
                kill_group(process)


def kill_group(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> str:
    """Signal a process started by `WorkflowProject.start` and whatever it started (its
    group, even after the process itself has ended); what it printed. Safe to call twice."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    out, _ = process.communicate(timeout=30)
    return out or ""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}
