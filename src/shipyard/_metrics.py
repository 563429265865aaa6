"""Did it help? Per-workflow measures computed from the run ledger.

- resolution time: from a run's start to its end (median and 90th percentile);
- error rate: the share of ended runs that failed, and the share that ended unverified;
- throughput: ended runs per day over the period the runs span;
- cost per case: model and API cost per ended run;
- review turnaround: from a review request to a person's decision (policy decisions are
  counted apart, never as a person's);
- retries: step attempts beyond the first, per ended run.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from shipyard._ledger import Ledger, RunRecord, RunState

__all__ = ["WorkflowMetrics", "measure"]

_DAY = 86_400.0


@dataclass(frozen=True)
class WorkflowMetrics:
    workflow: str
    runs: int
    ended: int
    states: dict[str, int]
    resolution_median_s: float | None
    resolution_p90_s: float | None
    error_rate: float | None  # failed / ended
    unverified_rate: float | None  # unverified / ended
    throughput_per_day: float | None
    cost_per_case_usd: float | None
    review_turnaround_median_s: float | None
    automatic_approvals: int
    retries_per_run: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    ledger: Ledger, *, since: float | None = None, workflow: str | None = None
) -> list[WorkflowMetrics]:
    """The measures of every workflow (or one) over the runs created since `since`."""
    records = [
        ledger.get(r.run_id)
        for r in ledger.runs(workflow=workflow, limit=1_000_000)
        if since is None or r.created_at >= since
    ]
    by_workflow: dict[str, list[RunRecord]] = {}
    for record in records:
        by_workflow.setdefault(record.workflow, []).append(record)
    return [_measure(name, runs) for name, runs in sorted(by_workflow.items())]


def _measure(workflow: str, runs: list[RunRecord]) -> WorkflowMetrics:
    ended = [r for r in runs if r.state.finished and r.finished_at is not None]
    states = Counter(r.state.value for r in runs)
    durations = sorted(r.finished_at - r.created_at for r in ended if r.finished_at)
    turnarounds, automatic = _reviews(runs)
    span = (
        (max(r.finished_at for r in ended if r.finished_at) - min(r.created_at for r in ended))
        if ended
        else 0.0
    )
    return WorkflowMetrics(
        workflow=workflow,
        runs=len(runs),
        ended=len(ended),
        states=dict(sorted(states.items())),
        resolution_median_s=statistics.median(durations) if durations else None,
        resolution_p90_s=_percentile(durations, 0.9),
        error_rate=_share(ended, RunState.FAILED),
        unverified_rate=_share(ended, RunState.UNVERIFIED),
        throughput_per_day=len(ended) / max(span / _DAY, 1.0) if ended else None,
        cost_per_case_usd=(sum(r.cost_usd for r in ended) / len(ended)) if ended else None,
        review_turnaround_median_s=statistics.median(turnarounds) if turnarounds else None,
        automatic_approvals=automatic,
        retries_per_run=(sum(max(s.attempt - 1, 0) for r in ended for s in r.steps) / len(ended))
        if ended
        else None,
    )


def _reviews(runs: list[RunRecord]) -> tuple[list[float], int]:
    """Seconds from each review request to a person's decision; automatic decisions apart."""
    turnarounds: list[float] = []
    automatic = 0
    for run in runs:
        requested = next((e["at"] for e in run.events if e["kind"] == "review-requested"), None)
        for event in run.events:
            if event["kind"] != "review-decided":
                continue
            if event["data"].get("automatic"):
                automatic += 1
            elif requested is not None:
                turnarounds.append(event["at"] - requested)
    return turnarounds, automatic


def _share(runs: list[RunRecord], state: RunState) -> float | None:
    return sum(r.state is state for r in runs) / len(runs) if runs else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]
