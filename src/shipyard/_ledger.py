"""The run ledger: what every run did, step by step, readable while it runs and after.

DBOS keeps what it needs to resume a workflow; the ledger keeps what people and metrics need:
the run's state and reason, a timeline of step attempts (start, end, error, cost), events, and
artifact lineage. It lives in the same database as DBOS's system tables (SQLite file or
PostgreSQL), in tables of its own, so one URL locates everything about a run.

Writes come from inside durable steps or from the CLI; every write is idempotent or
append-only, so a step that runs again after a crash leaves a truthful record (the first
attempt shows as `interrupted`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shipyard._errors import RunNotFound
from shipyard._redact import redact

__all__ = ["Ledger", "RunRecord", "RunState", "StepRecord"]


class RunState(StrEnum):
    """Where a run stands; `finished` says whether it has ended."""

    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_REVIEW = "awaiting_review"
    PUBLISHING = "publishing"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    SUCCEEDED = "succeeded"  # ended well, with nothing published to verify
    FAILED = "failed"
    REJECTED = "rejected"
    UNVERIFIED = "unverified"
    CANCELLED = "cancelled"
    UNPUBLISHED = "unpublished"  # verified once, then taken down on purpose

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = {
    RunState.VERIFIED,
    RunState.SUCCEEDED,
    RunState.FAILED,
    RunState.REJECTED,
    RunState.UNVERIFIED,
    RunState.CANCELLED,
    RunState.UNPUBLISHED,
}

_meta = sa.MetaData()

runs_table = sa.Table(
    "shipyard_runs",
    _meta,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("workflow", sa.String(200), nullable=False),
    sa.Column("version", sa.String(50), nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("state", sa.String(30), nullable=False),
    sa.Column("step", sa.String(200), nullable=False, default=""),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("result", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)

steps_table = sa.Table(
    "shipyard_steps",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("step", sa.String(200), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # running|ok|retrying|failed|interrupted
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("cost_usd", sa.Float, nullable=False, default=0.0),
    sa.Column("tokens", sa.Integer, nullable=False, default=0),
    sa.Column("executor", sa.String(200), nullable=False, default=""),
)

# A step attempt's writes, built once (a step's ledger cost is mostly building statements).
_ATTEMPTS_OF = (
    steps_table.c.run_id == sa.bindparam("the_run"),
    steps_table.c.seq == sa.bindparam("the_seq"),
)
_INTERRUPT_ATTEMPTS = (
    steps_table.update()
    .where(
        *_ATTEMPTS_OF,
        steps_table.c.status == "running",
        steps_table.c.id != sa.bindparam("newest"),
    )
    .values(
        status="interrupted",
        ended_at=sa.bindparam("now"),
        error="the process stopped during this attempt",
    )
)
_EARLIER = sa.func.count() + 1  # attempts before this one, in any process, plus one
_START_ATTEMPT = (
    steps_table.insert()
    .from_select(
        [
            "run_id",
            "seq",
            "step",
            "attempt",
            "status",
            "started_at",
            "error",
            "cost_usd",
            "tokens",
            "executor",
        ],
        sa.select(
            sa.bindparam("the_run", type_=sa.String),
            sa.bindparam("the_seq", type_=sa.Integer),
            sa.bindparam("the_step", type_=sa.String),
            sa.case(
                (sa.bindparam("least", type_=sa.Integer) < _EARLIER, _EARLIER),
                else_=sa.bindparam("least"),
            ),
            sa.literal("running"),
            sa.bindparam("now", type_=sa.Float),
            sa.literal(""),
            sa.literal(0.0),
            sa.literal(0),
            sa.bindparam("by", type_=sa.String),
        ).where(*_ATTEMPTS_OF),
    )
    .returning(steps_table.c.id, steps_table.c.attempt)
)
_END_ATTEMPT = (
    steps_table.update()
    .where(steps_table.c.id == sa.bindparam("row"))
    .values(
        status=sa.bindparam("the_status"), ended_at=sa.bindparam("now"), error=sa.bindparam("why")
    )
)

events_table = sa.Table(
    "shipyard_events",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False, default="{}"),
)

artifacts_table = sa.Table(
    "shipyard_artifacts",
    _meta,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("step", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("parents", sa.Text, nullable=False, default="[]"),
)


notifications_table = sa.Table(
    "shipyard_notifications",
    _meta,
    sa.Column("key", sa.String(64), primary_key=True),  # SHA-256 of the notice and channel
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class StepRecord:
    seq: int
    step: str
    attempt: int
    status: str
    started_at: float
    ended_at: float | None
    error: str
    cost_usd: float
    tokens: int
    executor: str

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    workflow: str
    version: str
    input: dict[str, Any]
    state: RunState
    step: str
    reason: str
    result: dict[str, Any]
    created_at: float
    updated_at: float
    finished_at: float | None
    steps: list[StepRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "version": self.version,
            "input": self.input,
            "state": self.state.value,
            "step": self.step,
            "reason": self.reason,
            "result": self.result,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "cost_usd": self.cost_usd,
            "steps": [s.__dict__ | {"seconds": s.seconds} for s in self.steps],
            "events": self.events,
        }


def engine_url(database_url: str) -> str:
    """SQLAlchemy URL for a DBOS database URL (PostgreSQL through psycopg 3)."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url.removeprefix(prefix)
    return database_url


def database_engine(database_url: str) -> sa.Engine:
    """An engine for the system database, set up as the ledger's is (SQLite: WAL, waits)."""
    url = engine_url(database_url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_tables(engine: sa.Engine, meta: sa.MetaData) -> None:
    """Create `meta`'s tables where missing. Workers that start together on a new PostgreSQL
    database take turns (an advisory lock), or all but one would fail on the same CREATE."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('shipyard-schema'))"))
        meta.create_all(conn, checkfirst=True)


class Ledger:
    def __init__(self, database_url: str) -> None:
        self.engine = database_engine(database_url)
        create_tables(self.engine, _meta)

    @classmethod
    def existing(cls, database_url: str) -> Ledger:
        """The ledger of a project that has run before; for commands that only read or
        decide, which must not create an empty database where none was meant to be."""
        url = engine_url(database_url)
        if url.startswith("sqlite:///"):
            file = Path(url.removeprefix("sqlite:///"))
            if not file.exists():
                raise RunNotFound(
                    f"no runs here: {file} does not exist",
                    code="no-database",
                    hint="run from the project's folder, or pass -c path/to/shipyard.toml",
                )
        return cls(database_url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _attempt_writes(self) -> Iterator[sa.Connection]:
        """A connection for a step attempt's writes. Each stands alone (a crash between the
        start's two leaves an earlier attempt marked running, for the next start to mark),
        so on PostgreSQL each runs in a transaction of its own, without BEGIN and COMMIT:
        two round trips more for every write. SQLite's statements are local; there one
        commit is less."""
        if self.engine.dialect.name != "postgresql":
            with self._tx() as conn:
                yield conn
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    # --- runs -----------------------------------------------------------------------------

    def create_run(self, run_id: str, workflow: str, version: str, inputs: dict[str, Any]) -> bool:
        """Record a new run as queued. False when the run id exists already."""
        now = time.time()
        with self._tx() as conn:
            exists = conn.execute(
                sa.select(runs_table.c.run_id).where(runs_table.c.run_id == run_id)
            ).first()
            if exists:
                return False
            conn.execute(
                runs_table.insert().values(
                    run_id=run_id,
                    workflow=workflow,
                    version=version,
                    input=redact(json.dumps(inputs)),
                    state=RunState.QUEUED.value,
                    step="",
                    reason="",
                    result="{}",
                    created_at=now,
                    updated_at=now,
                )
            )
            return True

    def set_state(
        self,
        run_id: str,
        state: RunState,
        *,
        step: str = "",
        reason: str = "",
        result: dict[str, Any] | None = None,
    ) -> None:
        now = time.time()
        values: dict[str, Any] = {
            "state": state.value,
            "step": step,
            "reason": redact(reason),
            "updated_at": now,
            "finished_at": now if state.finished else None,
        }
        if result is not None:
            values["result"] = redact(json.dumps(result))
        with self._tx() as conn:
            conn.execute(runs_table.update().where(runs_table.c.run_id == run_id).values(**values))
        self.event(
            run_id,
            "state",
            f"{state.value}" + (f": {reason}" if reason else ""),
            {"state": state.value, "step": step},
        )

    def get(self, run_id: str, *, detail: bool = True) -> RunRecord:
        with self._tx() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.run_id == run_id)).first()
            if row is None:
                candidates = conn.execute(
                    sa.select(runs_table.c.run_id).where(runs_table.c.run_id.like(f"%{run_id}%"))
                ).all()
                if len(candidates) != 1:
                    raise RunNotFound(
                        f"no run has the id {run_id!r}", hint="`shipyard runs` lists the runs"
                    )
                row = conn.execute(
                    sa.select(runs_table).where(runs_table.c.run_id == candidates[0][0])
                ).one()
            record = _run_from_row(row)
            if not detail:
                return record
            steps = [
                StepRecord(
                    seq=s.seq,
                    step=s.step,
                    attempt=s.attempt,
                    status=s.status,
                    started_at=s.started_at,
                    ended_at=s.ended_at,
                    error=s.error,
                    cost_usd=s.cost_usd,
                    tokens=s.tokens,
                    executor=s.executor,
                )
                for s in conn.execute(
                    sa.select(steps_table)
                    .where(steps_table.c.run_id == record.run_id)
                    .order_by(steps_table.c.id)
                )
            ]
            events = [
                {"at": e.at, "kind": e.kind, "message": e.message, "data": json.loads(e.data)}
                for e in conn.execute(
                    sa.select(events_table)
                    .where(events_table.c.run_id == record.run_id)
                    .order_by(events_table.c.id)
                )
            ]
        return RunRecord(**{**record.__dict__, "steps": steps, "events": events})

    def runs(
        self, *, workflow: str | None = None, states: Sequence[RunState] = (), limit: int = 50
    ) -> list[RunRecord]:
        query = sa.select(runs_table).order_by(runs_table.c.created_at.desc()).limit(limit)
        if workflow:
            query = query.where(runs_table.c.workflow == workflow)
        if states:
            query = query.where(runs_table.c.state.in_([s.value for s in states]))
        with self._tx() as conn:
            return [_run_from_row(r) for r in conn.execute(query)]

    # --- steps ----------------------------------------------------------------------------

    def step_started(self, run_id: str, seq: int, step: str, attempt: int, executor: str) -> int:
        """Record an attempt of a step as running. Attempts are numbered across processes:
        one taken up after a crash follows the attempts made before it, and an earlier one
        still marked running was cut off by the crash. A first attempt, the usual one, has
        none before it to mark: one statement."""
        now = time.time()
        where = {"the_run": run_id, "the_seq": seq}
        with self._attempt_writes() as conn:
            row = {**where, "the_step": step, "least": attempt, "now": now, "by": executor}
            started, number = conn.execute(_START_ATTEMPT, row).one()
            if number > 1:
                conn.execute(_INTERRUPT_ATTEMPTS, {**where, "now": now, "newest": started})
            return int(started)

    def step_ended(self, row_id: int, status: str, *, error: str = "") -> None:
        with self._attempt_writes() as conn:
            conn.execute(
                _END_ATTEMPT,
                {"row": row_id, "the_status": status, "now": time.time(), "why": redact(error)},
            )

    def add_cost(self, row_id: int, *, usd: float = 0.0, tokens: int = 0) -> None:
        with self._tx() as conn:
            conn.execute(
                steps_table.update()
                .where(steps_table.c.id == row_id)
                .values(cost_usd=steps_table.c.cost_usd + usd, tokens=steps_table.c.tokens + tokens)
            )

    def step_runs(self, run_id: str, step: str) -> int:
        """How many attempts of a step have started for a run (a crash test's witness)."""
        with self._tx() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(steps_table)
                    .where(steps_table.c.run_id == run_id, steps_table.c.step == step)
                ).scalar_one()
            )

    # --- events and lineage ---------------------------------------------------------------

    def event(
        self, run_id: str, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                events_table.insert().values(
                    run_id=run_id,
                    at=time.time(),
                    kind=kind,
                    message=redact(message),
                    data=redact(json.dumps(data or {})),
                )
            )

    # --- notifications ---------------------------------------------------------------------

    def notified(self, key: str) -> bool:
        """Whether the notice with this key went out already (on this channel)."""
        with self._tx() as conn:
            found = conn.execute(
                sa.select(notifications_table.c.key).where(notifications_table.c.key == key)
            ).first()
        return found is not None

    def mark_notified(self, key: str, run_id: str) -> None:
        with self._tx() as conn:
            if not conn.execute(
                sa.select(notifications_table.c.key).where(notifications_table.c.key == key)
            ).first():
                conn.execute(
                    notifications_table.insert().values(key=key, run_id=run_id, at=time.time())
                )

    def artifact(
        self,
        sha256: str,
        *,
        run_id: str,
        step: str,
        kind: str,
        size: int,
        parents: Sequence[str] = (),
    ) -> None:
        with self._tx() as conn:
            exists = conn.execute(
                sa.select(artifacts_table.c.sha256).where(
                    artifacts_table.c.sha256 == sha256,
                    artifacts_table.c.run_id == run_id,
                    artifacts_table.c.step == step,
                )
            ).first()
            if not exists:
                conn.execute(
                    artifacts_table.insert().values(
                        sha256=sha256,
                        run_id=run_id,
                        step=step,
                        kind=kind,
                        size=size,
                        parents=json.dumps(list(parents)),
                    )
                )

    def lineage(self, run_id: str) -> list[dict[str, Any]]:
        with self._tx() as conn:
            return [
                {
                    "sha256": a.sha256,
                    "step": a.step,
                    "kind": a.kind,
                    "size": a.size,
                    "parents": json.loads(a.parents),
                }
                for a in conn.execute(
                    sa.select(artifacts_table).where(artifacts_table.c.run_id == run_id)
                )
            ]


def _run_from_row(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        workflow=row.workflow,
        version=row.version,
        input=json.loads(row.input),
        state=RunState(row.state),
        step=row.step,
        reason=row.reason,
        result=json.loads(row.result),
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # WAL with NORMAL sync survives any process crash; only a power cut can lose the last
    # ledger writes (DBOS's own connections keep their own, stricter setting).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
