"""Per-workflow measures from a real ledger (SQLite file) holding runs of known outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard._ledger import Ledger, RunState, runs_table
from shipyard._metrics import measure


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    outcomes = [  # run, state, seconds it took, cost, review
        ("a", RunState.VERIFIED, 60.0, 0.02, "person"),
        ("b", RunState.VERIFIED, 120.0, 0.04, "policy"),
        ("c", RunState.FAILED, 30.0, 0.00, None),
        ("d", RunState.UNVERIFIED, 300.0, 0.06, "person"),
    ]
    for run_id, state, seconds, cost, review in outcomes:
        ledger.create_run(run_id, "paper-to-podcast", "1", {})
        row = ledger.step_started(run_id, 1, "write-script", 1, "local")
        ledger.add_cost(row, usd=cost, tokens=100)
        ledger.step_ended(row, "ok")
        if review:
            ledger.event(run_id, "review-requested", "review requested", {})
            ledger.event(run_id, "review-decided", "approve", {"automatic": review == "policy"})
        ledger.set_state(run_id, state)
        with ledger.engine.begin() as conn:  # pin the times the test measures
            conn.execute(
                sa.update(runs_table)
                .where(runs_table.c.run_id == run_id)
                .values(created_at=1_000_000.0, finished_at=1_000_000.0 + seconds)
            )
    retried = ledger.step_started("c", 2, "extract", 1, "local")
    ledger.step_ended(retried, "retrying")
    ledger.step_ended(ledger.step_started("c", 2, "extract", 2, "local"), "failed")
    ledger.create_run("e", "paper-to-podcast", "1", {})  # still running: not ended
    return ledger


def test_each_measure_of_a_workflow(ledger: Ledger) -> None:
    [m] = measure(ledger)
    assert (m.workflow, m.runs, m.ended) == ("paper-to-podcast", 5, 4)
    assert m.states == {"failed": 1, "queued": 1, "unverified": 1, "verified": 2}
    assert m.resolution_median_s == pytest.approx(90.0)
    assert m.resolution_p90_s == pytest.approx(300.0)
    assert (m.error_rate, m.unverified_rate) == (0.25, 0.25)
    assert m.cost_per_case_usd == pytest.approx(0.03)
    assert m.throughput_per_day == pytest.approx(4.0)  # four ended within one day
    assert m.automatic_approvals == 1  # the policy's decision is not a person's
    assert m.review_turnaround_median_s is not None and m.review_turnaround_median_s >= 0
    assert m.retries_per_run == pytest.approx(0.25)


def test_filters_and_an_empty_ledger(ledger: Ledger, tmp_path: Path) -> None:
    assert measure(ledger, workflow="other") == []
    assert measure(ledger, since=2_000_000_000.0) == []
    assert measure(Ledger(f"sqlite:///{tmp_path / 'empty.sqlite'}")) == []
