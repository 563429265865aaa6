"""What shipyard's step layer costs over DBOS's: a workflow of N no-op steps, timed with
shipyard's @step (retry policy, ledger record of every attempt, JSON validation) and with a
bare DBOS step, in the same process, on SQLite and (when a server is given) PostgreSQL.

    python -m benchmarks engine                 # SQLite in a temporary folder
    SHIPYARD_BENCH_PG=postgresql://... python -m benchmarks engine
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from dbos import DBOS, SetWorkflowID

from shipyard import _engine
from shipyard._config import Config
from shipyard._workflow import step

STEPS = 50
ROUNDS = 15


@step(attempts=3)
def shipyard_noop(i: int) -> int:
    return i


@DBOS.step()
def dbos_noop(i: int) -> int:
    return i


@DBOS.workflow(name="bench-shipyard-steps")  # the same workflow: only the steps differ
def shipyard_steps(n: int) -> int:
    return sum(shipyard_noop(i) for i in range(n))


@DBOS.workflow(name="bench-dbos-steps")
def dbos_steps(n: int) -> int:
    return sum(dbos_noop(i) for i in range(n))


def _per_step_ms(fn: object, label: str) -> float:
    started = time.perf_counter()
    with SetWorkflowID(f"{label}-{time.time_ns()}"):
        fn(STEPS)  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000 / STEPS


def _measure(database_url: str, label: str) -> None:
    """Rounds of the two workflows in turn, so that whatever drifts (the database growing,
    a checkpoint, the machine) falls on both; the ratio is the median of each pair's."""
    with tempfile.TemporaryDirectory() as folder:
        config = Config.model_validate(
            {
                "root": folder,
                "state_dir": Path(folder) / "state",
                "engine": {"database_url": database_url},
            }
        )
        _engine.launch(config)
        try:
            _per_step_ms(dbos_steps, "warm")  # first-use costs out of the measurement
            _per_step_ms(shipyard_steps, "warm")
            pairs = [
                (_per_step_ms(dbos_steps, "dbos"), _per_step_ms(shipyard_steps, "shipyard"))
                for _ in range(ROUNDS)
            ]
        finally:
            _engine.shutdown()
    bare = statistics.median(b for b, _ in pairs)
    ours = statistics.median(o for _, o in pairs)
    ratio = statistics.median(o / b for b, o in pairs)
    print(
        f"{label:10} DBOS step {bare:6.2f} ms   shipyard @step {ours:6.2f} ms   "
        f"ratio {ratio:4.2f}x   ({STEPS} steps x {ROUNDS} rounds each, in turn; medians)"
    )


def main() -> None:
    _measure("", "sqlite")
    if url := os.environ.get("SHIPYARD_BENCH_PG"):
        _measure(url, "postgresql")
