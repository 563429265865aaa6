"""Plugins a project enables (`workflows.enabled`): an installed one that is not enabled
adds no command; one that is enabled but uninstalled leaves its runs listed and its table
unchecked while everything else works, and its runs go on once it is installed again. The
plugin is a real one: examples/note-to-page with an entry point, as pip installs it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shipyard import RunState
from shipyard.testing import SHIPYARD, workflow_project

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).parents[1] / "examples" / "note-to-page"
SETTINGS = '[note]\nsummary_sentences = 3\n\n[workflows]\nenabled = ["note-to-page"]\n'


def install(site: Path) -> Path:
    """note-to-page installed into `site` as a plugin: its module and its dist-info."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "note_to_page.py", site / "note_to_page.py")
    info = site / "note_to_page-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: note-to-page\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[shipyard.workflows]\nnote-to-page = note_to_page\n")
    return info


def uninstall(site: Path) -> None:
    shutil.rmtree(site)


def test_an_uninstalled_plugins_runs_are_listed_and_go_on_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install(site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    with workflow_project(tmp_path / "p", settings=SETTINGS) as p:
        started = p.run("run", "note-to-page", str(EXAMPLE / "note.md"), "--detach")
        assert started.returncode in (0, 4), started.stderr
        run = p.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)

        uninstall(site)
        listed = p.run("runs")
        assert listed.returncode == 0, listed.stderr
        assert run.run_id in listed.stdout and "(not installed)" in listed.stdout
        assert "[note] left unchecked: enabled workflow note-to-page is not installed" in (
            listed.stderr
        )
        shown = p.run("status", run.run_id)
        assert shown.returncode == 0 and "(not installed)" in shown.stdout
        doctor = p.run("doctor")
        assert doctor.returncode != 0
        assert "install the note-to-page plugin" in doctor.stdout
        refused = p.run("run", "note-to-page", str(EXAMPLE / "note.md"))
        assert refused.returncode == 3
        assert "enabled in shipyard.toml but not installed" in refused.stderr

        install(site)
        approved = p.run("review", "approve", run.run_id, "--as", "editor")
        assert approved.returncode == 0, approved.stderr
        finished, _ = p.recover(run.run_id)
        assert finished.state is RunState.VERIFIED


def test_a_plugin_the_project_does_not_enable_adds_nothing(tmp_path: Path) -> None:
    with workflow_project(tmp_path / "p", settings="[workflows]\nenabled = []\n") as p:
        helped = shipyard_help(p.root)  # the project's file is found from its folder
        assert "extract" not in helped and "demo" not in helped
        doctor = p.run("doctor")
        assert "piper" not in doctor.stdout and "ffmpeg" not in doctor.stdout
        assert "workflows: enabled: none (installed: paper-to-podcast)" in doctor.stdout
        p.config_file.write_text(
            p.config_file.read_text() + "\n[podcast.script]\nformat = 'brief'\n"
        )
        refused = p.run("runs")
        assert refused.returncode == 2
        assert (
            "[podcast] is the paper-to-podcast workflow's, which workflows.enabled leaves out"
            in (refused.stderr)
        )
    assert "extract" in shipyard_help(tmp_path)  # no file: every installed plugin


def shipyard_help(folder: Path) -> str:
    done = subprocess.run(
        [*SHIPYARD, "--help"], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
