"""The evaluation gate over the shared corpus: the unchanged writers pass it against the
committed baseline; switching off one of the extractive writer's filters makes first drafts
worse, and the gate names the cases and the scores that fell."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import shipyard_podcast.script.extractive as extractive
from shipyard_podcast.script.evaluation import compare, evaluate, read_report
from shipyard_podcast.settings import PodcastSettings
from tests.conftest import REPO
from tests.project import SHIPYARD

pytestmark = [pytest.mark.usefixtures("corpus"), pytest.mark.slow]

DATASET = REPO / "evals" / "corpus.yaml"
BASELINE = REPO / "evals" / "baseline.json"


def test_the_unchanged_writers_pass_the_gate(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [*SHIPYARD, "eval", str(DATASET), "--baseline", str(BASELINE), "--report", str(report)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no case got worse" in done.stdout
    written = read_report(report)
    assert written["passed"] == len(written["cases"]) == 18
    assert written["cases"]["refuses-encrypted"]["scores"] == {"refusal": 1.0}


def test_a_writer_with_a_filter_switched_off_fails_the_gate_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The extractive writer keeps sentences a listener would hear broken out of its drafts;
    # without that filter its first drafts carry them, and only retries clean them up.
    monkeypatch.setattr(extractive, "listener_spans", lambda sentence, language: [])
    worse = compare(evaluate(DATASET, PodcastSettings()), read_report(BASELINE), max_drop=0.02)
    assert worse, "the gate let a worse writer through"
    assert any(
        line.startswith("cosmic-acceleration: passed, now fails (first_draft 0.00)")
        for line in worse
    ), worse
    assert any("listener 1.00 ->" in line for line in worse), worse


def test_compare_names_a_case_that_is_gone_and_ignores_the_judge() -> None:
    baseline = {
        "cases": {
            "a": {"scores": {"coverage": 1.0, "judge": 0.9}, "passed": True},
            "b": {"scores": {"coverage": 1.0}, "passed": True},
        }
    }
    report = {"cases": {"a": {"scores": {"coverage": 1.0, "judge": 0.1}, "passed": True}}}
    assert compare(json.loads(json.dumps(report)), baseline, 0.0) == [
        "b: the case is gone from the report"
    ]
