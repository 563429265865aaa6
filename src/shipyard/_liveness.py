"""Which processes are alive, where runs are shared through PostgreSQL.

Every launched process holds a lease: a session-level advisory lock named by its executor id,
on a connection of its own with TCP keepalives, so the lock ends with the process, or with
its host's session when the host vanishes. A process that loses that connection stops at
once (it fences itself): another worker may already be taking its runs. Workers look, every
`engine.adopt_seconds`, for unfinished runs of executors whose lease they can take: those
executors are dead. Holding the dead one's lease, a worker puts its runs back on the queue,
where any live worker of the same version takes them up from their last finished step. Two
workers racing for the same dead executor take turns on its lease; the second finds nothing
left to adopt.

SQLite is one machine's database: there the executor's lock file does this work (`_engine`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard._errors import ShipyardError

__all__ = [
    "Adoption",
    "ExecutorLease",
    "adopt_dead_executors",
    "executor_alive",
    "on_postgresql",
]

log = logging.getLogger("shipyard.liveness")

HEARTBEAT_S = 2.0  # how often a process checks that its lease's connection is alive
TAKE_LEASE_S = 10.0  # how long launching waits for a lease another worker holds to adopt
# TCP keepalives on the lease's connection: probe after 10 s idle, every 3 s; 3 unanswered
# probes end the session (on both sides), and with it the lease
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
}
LEASE_KEY = "hashtextextended('shipyard-executor:' || %s, 0)"


def on_postgresql(database_url: str) -> bool:
    return database_url.startswith(("postgresql:", "postgresql+", "postgres:"))


def executor_alive(database_url: str, state: Path, executor_id: str) -> bool:
    """Whether a process of executor `executor_id` runs now: on PostgreSQL, someone holds its
    lease; on SQLite, the process its lock file names is alive."""
    if on_postgresql(database_url):
        with contextlib.closing(_connect(database_url)) as connection:
            free = connection.execute(
                f"SELECT pg_try_advisory_lock({LEASE_KEY})", (executor_id,)
            ).fetchone()[0]
            if free:  # taken for a moment only: a process launching now waits for it
                connection.execute(f"SELECT pg_advisory_unlock({LEASE_KEY})", (executor_id,))
            return not free
    try:
        pid = int((state / f"executor-{executor_id}.lock").read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's
        return True
    return True


def _connect(database_url: str) -> Any:
    import psycopg
    from psycopg.conninfo import make_conninfo

    rest = database_url.split("://", 1)[1]  # without SQLAlchemy's driver name
    return psycopg.connect(make_conninfo(f"postgresql://{rest}", **KEEPALIVES), autocommit=True)


class ExecutorLease:
    """The lease that says executor `executor_id` is alive, held until `close`. If its
    connection is lost, `on_lost` is called (by default: the process stops at once)."""

    def __init__(
        self,
        database_url: str,
        executor_id: str,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.executor_id = executor_id
        self._connection = _connect(database_url)
        self._on_lost = on_lost or _stop_at_once
        deadline = time.monotonic() + TAKE_LEASE_S
        while not self._connection.execute(
            f"SELECT pg_try_advisory_lock({LEASE_KEY})", (executor_id,)
        ).fetchone()[0]:
            if time.monotonic() > deadline:
                self._connection.close()
                raise ShipyardError(
                    f"executor {executor_id!r} is alive in another process (it holds the "
                    "executor's lease in the database)",
                    code="executor-busy",
                    hint="give every worker its own SHIPYARD_EXECUTOR_ID",
                )
            time.sleep(0.5)  # a worker adopting this executor's runs holds it for a moment
        self._closed = threading.Event()
        self._last_heartbeat = time.monotonic()
        self._watch = threading.Thread(target=self._heartbeat, name="shipyard-lease", daemon=True)
        self._watch.start()

    def _heartbeat(self) -> None:
        while not self._closed.wait(HEARTBEAT_S):
            try:
                self._connection.execute("SELECT 1")
            except Exception as exc:  # noqa: BLE001  (any loss of the connection is the end)
                if not self._closed.is_set():
                    self._on_lost(f"{type(exc).__name__}: {exc}")
                return
            self._last_heartbeat = time.monotonic()

    @property
    def heartbeat_age(self) -> float:
        """Seconds since the lease's connection last answered."""
        return time.monotonic() - self._last_heartbeat

    def close(self) -> None:
        self._closed.set()
        self._watch.join(timeout=HEARTBEAT_S + 5)
        self._connection.close()  # the session ends, and the lock with it


def _stop_at_once(why: str) -> None:
    message = (
        "shipyard: this process lost the database connection that holds its executor's "
        f"lease ({why}); it stops at once, as another worker may now take its runs\n"
    )
    sys.stderr.write(message)
    sys.stderr.flush()
    os._exit(75)  # EX_TEMPFAIL: its supervisor starts it again


def adopt_dead_executors(database_url: str, application_version: str, queue: str) -> list[str]:
    """Put the unfinished runs of dead executors (whose lease nobody holds) of this
    application version back on `queue`; the runs adopted."""
    from dbos import DBOS

    def pending() -> list[Any]:
        return DBOS.list_workflows(
            status="PENDING",
            app_version=application_version,
            load_input=False,
            load_output=False,
        )

    executors = sorted({w.executor_id for w in pending() if w.executor_id})
    if not executors:
        return []
    adopted: list[str] = []
    with _connect(database_url) as connection:
        for executor in executors:
            if not connection.execute(
                f"SELECT pg_try_advisory_lock({LEASE_KEY})", (executor,)
            ).fetchone()[0]:
                continue  # alive (or being adopted by another worker)
            try:
                runs = [r.workflow_id for r in pending() if r.executor_id == executor]
                for run_id in runs:
                    DBOS.resume_workflow(run_id, queue_name=queue)
            finally:
                connection.execute(f"SELECT pg_advisory_unlock({LEASE_KEY})", (executor,))
            if runs:
                log.warning(
                    "executor %s is dead: its runs %s are back on the queue",
                    executor,
                    ", ".join(runs),
                )
                _record_adoption(executor, runs)
            adopted += runs
    return adopted


def _record_adoption(executor: str, runs: list[str]) -> None:
    """Each adopted run's timeline says so (and /metrics counts it)."""
    from shipyard._engine import current_or_none

    runtime = current_or_none()
    if runtime is None:
        return
    for run_id in runs:
        message = f"adopted from dead executor {executor} by {runtime.executor_id}"
        runtime.ledger.event(run_id, "adopted", message, {"from": executor})


class Adoption:
    """Adopts dead executors' runs every `every` seconds on a thread, until `stop`."""

    def __init__(
        self, database_url: str, application_version: str, queue: str, every: float
    ) -> None:
        self._stopped = threading.Event()

        def loop() -> None:
            while not self._stopped.wait(every):
                try:
                    adopt_dead_executors(database_url, application_version, queue)
                except Exception:  # the next round tries again
                    log.exception("looking for dead executors' runs failed")

        self._thread = threading.Thread(target=loop, name="shipyard-adoption", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)
