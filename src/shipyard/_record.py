"""The run's record, written from inside its steps: events on its timeline, the lineage of
the artifacts it makes, and the cost of the step attempt now running. Outside a run each is a
no-op, so the same code serves tools and tests."""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

from dbos import DBOS

from shipyard._artifacts import Artifact
from shipyard._engine import current_or_none

__all__ = ["CURRENT_ATTEMPT", "current_run_id", "record_artifact", "record_cost", "record_event"]

# The ledger row of the step attempt now running (set by the step wrapper).
CURRENT_ATTEMPT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "shipyard_current_attempt", default=None
)


def current_run_id() -> str | None:
    """The id of the run whose step runs now (None outside a run): for what a step keeps
    per run, such as a journal of its model requests."""
    return DBOS.workflow_id if current_or_none() is not None else None


def record_cost(*, usd: float = 0.0, tokens: int = 0) -> None:
    """Add model or API cost to the step attempt now running (no-op outside a run)."""
    row, runtime = CURRENT_ATTEMPT.get(), current_or_none()
    if row is not None and runtime is not None:
        runtime.ledger.add_cost(row, usd=usd, tokens=tokens)


def record_event(kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    """Record an event on the run of the step now running (no-op outside a run)."""
    runtime, run_id = current_or_none(), DBOS.workflow_id
    if runtime is not None and run_id is not None:
        runtime.ledger.event(run_id, kind, message, data)


def record_artifact(artifact: Artifact, kind: str, parents: Sequence[str] = ()) -> None:
    """Record an artifact's lineage on the run: what it is and which artifacts it came from."""
    runtime, run_id = current_or_none(), DBOS.workflow_id
    if runtime is not None and run_id is not None:
        runtime.ledger.artifact(
            artifact.sha256,
            run_id=run_id,
            step=kind,
            kind=kind,
            size=artifact.size,
            parents=list(parents),
        )
