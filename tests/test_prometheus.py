"""Prometheus metrics from the ledger: the exposition a scrape gets (no run-id label), the
textfile for node_exporter, and Debian's real Prometheus server scraping `/metrics` on
loopback, asked by PromQL how many runs were verified and how many failed."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipyard._ledger import Ledger, RunState
from shipyard._prometheus import prometheus_text
from tests.loopback import free_port
from tests.project import SHIPYARD, Project, kill_group, make_project

PROMETHEUS = Path("/usr/bin/prometheus")


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_exposition_counts_runs_steps_reviews_and_drift(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    for run_id, state in (("run-a", RunState.VERIFIED), ("run-b", RunState.FAILED)):
        ledger.create_run(run_id, "paper-to-podcast", "1", {})
        row = ledger.step_started(run_id, 1, "extract", 1, "local")
        ledger.add_cost(row, usd=0.25, tokens=1000)
        ledger.step_ended(row, "ok" if state is RunState.VERIFIED else "failed", error="x")
        ledger.set_state(run_id, state)
    ledger.create_run("run-c", "paper-to-podcast", "1", {})
    ledger.set_state("run-c", RunState.AWAITING_REVIEW)
    ledger.event("run-a", "review-requested", "asked", {})
    ledger.event("run-a", "review-decided", "approved", {"automatic": False})
    ledger.event("run-a", "drift-check", "drift: gone", {"verified": False})
    text = prometheus_text(ledger)
    found = samples(text)
    wf = ("workflow", "paper-to-podcast")
    assert found[("shipyard_runs_total", (("state", "verified"), wf))] == 1
    assert found[("shipyard_runs_total", (("state", "failed"), wf))] == 1
    assert found[("shipyard_runs_total", (("state", "rejected"), wf))] == 0
    assert found[("shipyard_runs_awaiting_review", (wf,))] == 1
    failed = (("status", "failed"), ("step", "extract"), wf)
    assert found[("shipyard_step_outcomes_total", failed)] == 1
    assert found[("shipyard_step_attempts_count", (("step", "extract"), wf))] == 2
    assert found[("shipyard_step_attempts_bucket", (("le", "1"), ("step", "extract"), wf))] == 2
    assert found[("shipyard_step_duration_seconds_count", (("step", "extract"), wf))] == 2
    assert found[("shipyard_model_tokens_total", (wf,))] == 2000
    assert found[("shipyard_cost_usd_total", (wf,))] == 0.5
    assert found[("shipyard_review_wait_seconds_count", (wf,))] == 1
    assert found[("shipyard_drift_detected_total", (wf,))] == 1
    assert found[("shipyard_last_verified_timestamp_seconds", (wf,))] > 0
    assert b"run-a" not in text and b"run_id" not in text  # no label per run
    ledger.close()


def test_metrics_writes_a_textfile_for_node_exporter(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('state_dir = "state"\n')
    (tmp_path / "state").mkdir()
    Ledger(f"sqlite:///{tmp_path / 'state' / 'shipyard.sqlite'}").close()
    target = tmp_path / "textfile" / "shipyard.prom"
    done = subprocess.run(
        [*SHIPYARD, "metrics", "--prometheus-file", str(target)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "# TYPE shipyard_runs_total counter" in target.read_text()


def _query(prometheus: str, promql: str) -> float | None:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_console_and_counts_the_runs(tmp_path: Path) -> None:
    assert PROMETHEUS.exists(), "Debian's prometheus is needed: scripts/install-system-deps"
    with make_project(tmp_path / "p", auto_approve=True) as project:
        verified = project.run("run", "paper-to-podcast", str(project.paper))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        junk = project.root / "junk.pdf"
        junk.write_text("<html>not a paper</html>")
        assert project.run("run", "paper-to-podcast", str(junk)).returncode == 1
        scrapes = _console(project)
        try:
            assert _counted(tmp_path, scrapes) == (1.0, 1.0)
        finally:
            for process in project.started:
                kill_group(process, signal.SIGTERM)


def _console(project: Project) -> str:
    console = project.start("console", "--port", "0")
    line = project.wait_for_output(console, "console at ")
    return line.split("console at ")[1].split()[0].removesuffix("/")


def _counted(tmp_path: Path, console: str) -> tuple[float | None, float | None]:
    """Start Prometheus scraping `console`/metrics every second; the verified and failed runs
    it counts, by PromQL, once it has them (at most a minute)."""
    target = console.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: shipyard\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    server = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    prometheus = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                found = (
                    _query(prometheus, 'sum(shipyard_runs_total{state="verified"})'),
                    _query(prometheus, 'sum(shipyard_runs_total{state="failed"})'),
                )
            except (httpx.HTTPError, ValueError):  # not up yet, or not ready: no JSON yet
                found = (None, None)
            if None not in found:
                return found
            time.sleep(0.5)
        return (None, None)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
