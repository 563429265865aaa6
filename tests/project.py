"""A real shipyard project for end-to-end tests: config file, state folder, local production
(bare git remote with deploy hook, web root, HTTP server on loopback), the demo paper, and
helpers to run the real `shipyard` command in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard._config import Config, load_config
from shipyard._ledger import Ledger, RunRecord
from shipyard._localprod import LocalProduction, LocalServer
from shipyard.podcast.demo_paper import make_demo_paper

SHIPYARD = [sys.executable, "-m", "shipyard"]


@dataclass
class Project:
    root: Path
    production: LocalProduction
    server: LocalServer
    paper: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)  # stopped at the end

    @property
    def config_file(self) -> Path:
        return self.root / "shipyard.toml"

    def config(self) -> Config:
        return load_config(self.config_file)

    def ledger(self) -> Ledger:
        return Ledger(self.config().database_url)

    def events(self, run_id: str, kind: str) -> list[dict[str, Any]]:
        """The run's events of one kind (review-requested, review-decided...), oldest first."""
        ledger = self.ledger()
        try:
            return [e for e in ledger.get(run_id).events if e["kind"] == kind]
        finally:
            ledger.close()

    def run(
        self, *args: str, timeout: float = 240, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `shipyard ARGS` to completion in a subprocess."""
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
        project's context ends, whether the test passed or not)."""
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
        """Read a background command's output until `text` appears (bounded); return the
        line it is on."""
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

    def wait_until(
        self, run_id: str | None, holds: Callable[[RunRecord], bool], *, timeout: float = 180
    ) -> RunRecord:
        """Poll the ledger until `holds(run)` (bounded: fails after `timeout` seconds)."""
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

    def finish_with_worker(self, run_id: str) -> tuple[RunRecord, str]:
        """Start `shipyard worker`, wait until the run ends, stop the worker; return the run
        and what the worker printed."""
        worker = self.start("worker")
        try:
            run = self.wait_until(run_id, lambda r: r.state.finished)
        finally:
            out = kill_group(worker, signal.SIGTERM)
        return run, out

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


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@contextmanager
def make_project(
    root: Path,
    *,
    auto_approve: bool,
    target_minutes: float = 1.0,
    verify_seconds: float = 20,
    review: str = "",
    reviewers: Sequence[str] = ("editor",),
    script: str = "",
    extra: str = "",
    remote: str = "",
) -> Iterator[Project]:
    production = LocalProduction(root / "production").create()
    with production.serve() as server:
        (root / "state").mkdir(parents=True, exist_ok=True)  # the tests poll its database
        (root / "shipyard.toml").write_text(
            f"""\
state_dir = "state"

[podcast.script]
target_minutes = {target_minutes}
{script}

[review]
reviewers = {json.dumps(list(reviewers))}
auto_approve = {str(auto_approve).lower()}
{review}

[publish]
remote = "{remote or production.remote}"
base_url = "{server.url}"

[verify]
deadline_seconds = {verify_seconds}
first_delay_seconds = 0.1
max_delay_seconds = 1
{extra}""",
            encoding="utf-8",
        )
        project = Project(
            root=root,
            production=production,
            server=server,
            paper=make_demo_paper(root / "paper.pdf"),
        )
        try:
            yield project
        finally:
            for process in project.started:
                kill_group(process)


def kill_group(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> str:
    """Signal a process started by Project.start and whatever it started (its group, even
    after the process itself has ended); return what it printed. Safe to call twice."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    out, _ = process.communicate(timeout=30)
    return out or ""
