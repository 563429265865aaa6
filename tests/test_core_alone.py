"""The core is a distribution of its own: a fresh virtual environment with only `shipyard`
installed (from this checkout, as a user would) holds none of the flagship's packages, and runs
examples/note-to-page end to end to `verified`. It installs from the package index, so it
takes a minute or two (pip's cache makes it quicker)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard import RunState
from shipyard.testing import workflow_project

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "note-to-page"
FLAGSHIPS = {"shipyard-podcast", "piper-tts", "pypdfium2", "reportlab", "scipy", "numpy"}


def test_the_core_alone_runs_a_workflow_to_verified(tmp_path: Path) -> None:
    venv = tmp_path / "core"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    installed = subprocess.run(
        [*pip, "install", "--quiet", str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr
    listed = subprocess.run(
        [*pip, "list", "--format", "json"], env=env, capture_output=True, text=True, timeout=120
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "shipyard" in names and "dbos" in names
    assert not names & FLAGSHIPS, names & FLAGSHIPS

    settings = "[note]\nsummary_sentences = 3\n"
    with workflow_project(
        tmp_path / "p",
        workflows=[EXAMPLE / "note_to_page.py"],
        settings=settings,
        auto_approve=True,
    ) as p:
        shipyard = str(venv / "bin" / "shipyard")
        helped = subprocess.run(
            [shipyard, "--help"], cwd=p.root, env=env, capture_output=True, text=True, timeout=60
        )
        assert helped.returncode == 0 and "extract" not in helped.stdout  # no flagship here
        done = subprocess.run(
            [shipyard, "run", "note-to-page", str(EXAMPLE / "note.md"), "-c", str(p.config_file)],
            cwd=p.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        run = p.latest()
        assert run.state is RunState.VERIFIED
        served = p.served(run.result["page_url"])
        assert hashlib.sha256(served).hexdigest() == run.result["page"]["page_sha256"]
