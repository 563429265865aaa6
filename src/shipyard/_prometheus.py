"""Prometheus metrics, computed from the run ledger at scrape time by a custom collector of
the official client library: every process that ever ran a step (a CLI run, a worker on
another machine) is counted, even after it exited. No label is a run id.

    shipyard_runs_total{workflow,state}                 runs that ended, by final state
    shipyard_runs_in_progress{workflow,state}           runs not ended (queued, running, ...)
    shipyard_runs_awaiting_review{workflow}             runs a person must decide
    shipyard_step_duration_seconds{workflow,step}       histogram of step attempts' durations
    shipyard_step_attempts{workflow,step}               histogram: attempts a step took in a run
    shipyard_step_outcomes_total{workflow,step,status}  attempts by outcome (ok, failed, ...)
    shipyard_review_wait_seconds{workflow}              histogram: request to a person's decision
    shipyard_model_tokens_total{workflow}               tokens the steps recorded
    shipyard_cost_usd_total{workflow}                   model and API cost the steps recorded
    shipyard_last_verified_timestamp_seconds{workflow}  when the newest verified run ended
    shipyard_drift_detected_total{workflow}             drift checks that found production changed
    shipyard_provider_calls_in_flight{provider}         calls to a provider under way, all processes
    shipyard_provider_pauses_total{provider}            429s that paused every call to a provider

`prometheus_text(ledger)` is the exposition text (for `shipyard metrics --prometheus-file`, a
node_exporter textfile collector's input); `metrics_endpoint(ledger)` answers `/metrics` (the
console mounts it, and so does `shipyard serve`).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard._ledger import Ledger, RunState, events_table, runs_table, steps_table
from shipyard._providers import calls_table, providers_table

__all__ = ["LedgerCollector", "metrics_endpoint", "prometheus_text"]

STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 5, 10)
REVIEW_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_ENDED = sorted(s.value for s in RunState if s.finished)


def _histogram(
    name: str,
    documentation: str,
    labels: Sequence[str],
    samples: dict[tuple[str, ...], list[float]],
    buckets: Sequence[float],
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    for key, values in sorted(samples.items()):
        counts = [sum(v <= bound for v in values) for bound in buckets]
        family.add_metric(
            list(key),
            [(f"{b:g}", c) for b, c in zip(buckets, counts, strict=True)] + [("+Inf", len(values))],
            sum(values),
        )
    return family


class LedgerCollector(Collector):
    """Reads the ledger on every scrape; holds nothing between scrapes."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        with self.ledger.engine.connect() as conn:
            yield from self._runs(conn)
            yield from self._steps(conn)
            yield from self._events(conn)
            yield from self._providers(conn)

    def _runs(self, conn: sa.Connection) -> Iterator[Metric]:
        rows = conn.execute(
            sa.select(runs_table.c.workflow, runs_table.c.state, sa.func.count()).group_by(
                runs_table.c.workflow, runs_table.c.state
            )
        ).all()
        ended = CounterMetricFamily(
            "shipyard_runs", "Runs that ended, by final state", labels=["workflow", "state"]
        )
        going = GaugeMetricFamily(
            "shipyard_runs_in_progress", "Runs not ended yet", labels=["workflow", "state"]
        )
        waiting = GaugeMetricFamily(
            "shipyard_runs_awaiting_review", "Runs a person must decide", labels=["workflow"]
        )
        workflows = sorted({w for w, _, _ in rows})
        counts = {(w, s): n for w, s, n in rows}
        for workflow in workflows:
            for state in _ENDED:  # every final state, 0 included: rates need the series
                ended.add_metric([workflow, state], counts.get((workflow, state), 0))
            for (w, state), n in counts.items():
                if w == workflow and state not in _ENDED:
                    going.add_metric([workflow, state], n)
            waiting.add_metric(
                [workflow], counts.get((workflow, RunState.AWAITING_REVIEW.value), 0)
            )
        last = GaugeMetricFamily(
            "shipyard_last_verified_timestamp_seconds",
            "When the newest verified run of each workflow ended (Unix time)",
            labels=["workflow"],
        )
        for workflow, at in conn.execute(
            sa.select(runs_table.c.workflow, sa.func.max(runs_table.c.finished_at))
            .where(runs_table.c.state == RunState.VERIFIED.value)
            .group_by(runs_table.c.workflow)
        ):
            if at is not None:
                last.add_metric([workflow], at)
        yield from (ended, going, waiting, last)

    def _steps(self, conn: sa.Connection) -> Iterator[Metric]:
        rows = conn.execute(
            sa.select(
                runs_table.c.workflow,
                steps_table.c.run_id,
                steps_table.c.step,
                steps_table.c.status,
                steps_table.c.started_at,
                steps_table.c.ended_at,
                steps_table.c.tokens,
                steps_table.c.cost_usd,
            ).join(runs_table, runs_table.c.run_id == steps_table.c.run_id)
        ).all()
        durations: dict[tuple[str, ...], list[float]] = defaultdict(list)
        outcomes: dict[tuple[str, str, str], int] = defaultdict(int)
        per_run: dict[tuple[str, str, str], int] = defaultdict(int)  # (workflow, step, run)
        tokens: dict[str, float] = defaultdict(float)
        cost: dict[str, float] = defaultdict(float)
        for workflow, run_id, step, status, started, ended, used, usd in rows:
            outcomes[(workflow, step, status)] += 1
            per_run[(workflow, step, run_id)] += 1
            if ended is not None:
                durations[(workflow, step)].append(max(0.0, ended - started))
            tokens[workflow] += used
            cost[workflow] += usd
        yield _histogram(
            "shipyard_step_duration_seconds",
            "How long step attempts took",
            ["workflow", "step"],
            durations,
            STEP_BUCKETS,
        )
        attempts: dict[tuple[str, ...], list[float]] = defaultdict(list)
        for (workflow, step, _), n in per_run.items():
            attempts[(workflow, step)].append(n)
        yield _histogram(
            "shipyard_step_attempts",
            "How many attempts a step took in a run",
            ["workflow", "step"],
            attempts,
            ATTEMPT_BUCKETS,
        )
        family = CounterMetricFamily(
            "shipyard_step_outcomes",
            "Step attempts, by outcome",
            labels=["workflow", "step", "status"],
        )
        for key, n in sorted(outcomes.items()):
            family.add_metric(list(key), n)
        yield family
        used_family = CounterMetricFamily(
            "shipyard_model_tokens", "Model tokens the steps recorded", labels=["workflow"]
        )
        cost_family = CounterMetricFamily(
            "shipyard_cost_usd", "Model and API cost the steps recorded", labels=["workflow"]
        )
        for workflow in sorted(tokens):
            used_family.add_metric([workflow], tokens[workflow])
            cost_family.add_metric([workflow], cost[workflow])
        yield from (used_family, cost_family)

    def _events(self, conn: sa.Connection) -> Iterator[Metric]:
        rows = conn.execute(
            sa.select(
                runs_table.c.workflow,
                events_table.c.run_id,
                events_table.c.kind,
                events_table.c.at,
                events_table.c.data,
            )
            .join(runs_table, runs_table.c.run_id == events_table.c.run_id)
            .where(
                events_table.c.kind.in_(
                    [
                        "review-requested",
                        "review-decided",
                        "drift-check",
                        "provider-paused",
                        "recovered",
                        "adopted",
                    ]
                )
            )
            .order_by(events_table.c.id)
        ).all()
        asked: dict[str, float] = {}
        waits: dict[tuple[str, ...], list[float]] = defaultdict(list)
        drift: dict[str, int] = defaultdict(int)
        pauses: dict[str, int] = defaultdict(int)
        taken_up: dict[tuple[str, str], int] = defaultdict(int)
        for workflow, run_id, kind, at, data in rows:
            details = json.loads(data)
            if kind == "review-requested":
                asked.setdefault(run_id, at)  # waiting since the first request of a round
            elif kind == "review-decided" and run_id in asked:
                if not details.get("automatic"):  # a policy's decision is no one's wait
                    waits[(workflow,)].append(at - asked[run_id])
                asked.pop(run_id)
            elif kind == "drift-check" and not details.get("verified", True):
                drift[workflow] += 1
            elif kind == "provider-paused":
                pauses[details.get("provider", "")] += 1
            elif kind in ("recovered", "adopted"):
                taken_up[(workflow, kind)] += 1
        yield _histogram(
            "shipyard_review_wait_seconds",
            "From a review request to a person's decision",
            ["workflow"],
            waits,
            REVIEW_BUCKETS,
        )
        family = CounterMetricFamily(
            "shipyard_drift_detected",
            "Drift checks that found production no longer serving a release",
            labels=["workflow"],
        )
        for workflow, n in sorted(drift.items()):
            family.add_metric([workflow], n)
        yield family
        paused = CounterMetricFamily(
            "shipyard_provider_pauses",
            "429s from a provider that paused every call to it for its Retry-After",
            labels=["provider"],
        )
        for provider, n in sorted(pauses.items()):
            paused.add_metric([provider], n)
        yield paused
        again = CounterMetricFamily(
            "shipyard_runs_taken_up",
            "Unfinished runs a process took up again: its own after a restart (recovered), "
            "or a dead worker's (adopted)",
            labels=["workflow", "how"],
        )
        for (workflow, how), n in sorted(taken_up.items()):
            again.add_metric([workflow, how], n)
        yield again

    def _providers(self, conn: sa.Connection) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "shipyard_provider_calls_in_flight",
            "Calls to each provider under way now, across every process",
            labels=["provider"],
        )
        if sa.inspect(conn).has_table(providers_table.name):  # made when first used
            calls = calls_table.c
            counts: dict[str, int] = {
                provider: n
                for provider, n in conn.execute(
                    sa.select(calls.provider, sa.func.count())
                    .where(calls.ended_at.is_(None), calls.lease_until > time.time())
                    .group_by(calls.provider)
                )
            }
            for (provider,) in conn.execute(sa.select(providers_table.c.provider)):
                family.add_metric([provider], counts.get(provider, 0))
        yield family


def prometheus_text(ledger: Ledger) -> bytes:
    """The metrics in Prometheus's text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(ledger))
    return generate_latest(registry)


def metrics_endpoint(ledger: Ledger) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint answering `/metrics` from `ledger` (read in a worker thread)."""

    async def endpoint(request: Request) -> Response:
        body = await run_in_threadpool(prometheus_text, ledger)
        return Response(body, media_type=CONTENT_TYPE)

    return endpoint
