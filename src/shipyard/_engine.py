"""The runtime: DBOS Transact launched for one process, with the ledger and artifact store.

One runtime per process (DBOS allows one instance). It is what steps reach through
`current()`. Launching it recovers the runs this executor left pending: a run that was
interrupted by a crash, or that waits for a review, goes on in the process that launches
next with the same executor id. Two live processes must not share an executor id (both would
recover the same runs), so launching takes an exclusive lock on it.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dbos import DBOS, DBOSConfig
from dbos._serialization import DBOSPortableJSON

from shipyard._artifacts import ArtifactStore
from shipyard._config import Config
from shipyard._errors import RunNotFound, ShipyardError
from shipyard._ledger import Ledger, RunState
from shipyard._liveness import HEARTBEAT_S, Adoption, ExecutorLease, on_postgresql
from shipyard._logs import configure_logging
from shipyard._plugins import workflow_versions
from shipyard._redact import redact_log_record
from shipyard._telemetry import setup_tracing, shutdown_tracing

log = logging.getLogger("shipyard.engine")

__all__ = [
    "COMPATIBILITY",
    "QUEUE",
    "Runtime",
    "application_version",
    "artifact_store",
    "current",
    "current_or_none",
    "health",
    "launch",
    "launched_in_this_process",
    "shutdown",
    "tune_allocator",
    "waiting_for_a_person",
]

QUEUE = "shipyard"  # the queue workers pull runs from
NOTIFICATION_POLL_S = 0.1  # how often DBOS looks for messages a run waits on, where it polls

_runtime: Runtime | None = None
_launched = False


@dataclass
class Runtime:
    config: Config
    ledger: Ledger
    store: ArtifactStore
    executor_id: str
    version: str  # the application version DBOS runs under (`application_version`)
    _lock: IO[str]
    _lease: ExecutorLease | None = None  # on PostgreSQL: this executor is alive
    _adoption: Adoption | None = None  # a worker's: adopting dead executors' runs
    recovered: list[str] = field(default_factory=list)  # unfinished runs taken up at launch


def launch(config: Config, *, concurrency: int = 1, adopt: bool = False) -> Runtime:
    """Start DBOS for this process and recover this executor's pending runs. On PostgreSQL
    the process holds its executor's lease while launched, and with `adopt` (a worker)
    puts dead executors' runs back on the queue (`_liveness`)."""
    global _runtime, _launched
    if _runtime is not None:
        raise ShipyardError(
            "shipyard is already launched in this process",
            hint="call shipyard._engine.shutdown() first",
        )
    tune_allocator()
    # Recovery needs every workflow this process may find pending.
    config.import_workflows()
    config.state.mkdir(parents=True, exist_ok=True)
    executor_id, version = config.executor_id, application_version(config)
    lock = _lock_executor(config.state, executor_id)
    lease = None
    try:
        if on_postgresql(config.database_url):
            lease = ExecutorLease(config.database_url, executor_id)
        ledger = Ledger(config.database_url)
        log_level = os.environ.get("SHIPYARD_DBOS_LOG_LEVEL", "WARNING")
        dbos_config: DBOSConfig = {
            "name": "shipyard",
            "system_database_url": config.database_url,
            "serializer": DBOSPortableJSON,
            "executor_id": executor_id,
            "application_version": version,
            "log_level": log_level,
            "enable_otlp": setup_tracing(config.telemetry),  # DBOS's spans join the trace
            # Where notifications are polled for (SQLite), DBOS's listener sleeps this long
            # between looks, and shutdown waits out its sleep: at DBOS's default (1 s) every
            # command that ran an engine ended half a second late on average.
            "notification_listener_polling_interval_sec": NOTIFICATION_POLL_S,
        }
        _launched = True
        DBOS(config=dbos_config)
        configure_logging(config.logs)
        dbos_logger = logging.getLogger("dbos")
        dbos_logger.setLevel(log_level)
        dbos_logger.addFilter(_drop_reported_workflow_errors)
        dbos_logger.addFilter(redact_log_record)
        _own_queue(concurrency)
        DBOS.launch()
        DBOS.register_queue(QUEUE)  # its row, the same from every process: no shared limit
        recovered = _recovered(ledger, executor_id, version)
    except BaseException:
        if lease is not None:
            lease.close()
        lock.close()
        raise
    adoption = (
        Adoption(config.database_url, version, QUEUE, config.engine.adopt_seconds)
        if adopt and lease is not None
        else None
    )
    _runtime = Runtime(
        config=config,
        ledger=ledger,
        store=config.artifact_store(),
        executor_id=executor_id,
        version=version,
        _lock=lock,
        _lease=lease,
        _adoption=adoption,
        recovered=recovered,
    )
    return _runtime


def _own_queue(concurrency: int) -> None:
    """Dequeue QUEUE with this process's own concurrency. A registered queue keeps its limits
    in the database, where the last process to register sets them for every worker (and each
    poll rereads them); a queue held in this process's memory answers only to it. DBOS keeps
    such queues for its own use and has no public call for them: dbos is pinned to 3.4, and
    tests/test_provider_workers.py fails if this stops working."""
    from dbos._dbos import _get_dbos_instance

    registry = _get_dbos_instance()._registry
    registry.internal_queue_map.pop(QUEUE, None)  # a relaunch in this process sets it anew
    registry._register_internal_queue(QUEUE, worker_concurrency=concurrency)


def health() -> tuple[bool, dict[str, Any]]:
    """Whether this launched process is alive and well (`shipyard worker --health-port`):
    its database answers, its lease's connection answered lately (PostgreSQL), and its
    adoption thread runs. A hung process answers nothing at all, which probes count too."""
    runtime = current()
    problems = []
    try:
        runtime.ledger.runs(limit=1)
    except Exception as exc:  # noqa: BLE001  (reported, not raised: this is the probe)
        problems.append(f"the database does not answer: {type(exc).__name__}")
    lease = runtime._lease
    if lease is not None and lease.heartbeat_age > 3 * HEARTBEAT_S:
        problems.append(f"the lease's connection has not answered for {lease.heartbeat_age:.0f} s")
    if runtime._adoption is not None and not runtime._adoption.running:
        problems.append("the thread adopting dead workers' runs has stopped")
    report = {
        "executor": runtime.executor_id,
        "version": runtime.version,
        "lease": "none (SQLite: the executor's lock file)" if lease is None else "held",
        "problems": problems,
    }
    return not problems, report


_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # glibc's mallopt parameters


def tune_allocator() -> None:
    """Set glibc's malloc for a long-lived process that handles large, short-lived buffers
    (a voice model's activations): a buffer over 4 MiB is mapped, and given back to the
    system the moment it is freed, instead of leaving holes in the heap; threads share two
    arenas instead of each keeping what it freed. A 10-minute episode's run peaked at 443 MB
    instead of 629 MB, for 4% more CPU time (docs/audio.md). Where the C library is not
    glibc nothing changes."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 4 << 20)
    mallopt(_M_ARENA_MAX, 2)


# The core's own part of every run's steps (beginning, state changes, notices): bumped only
# when a run begun under the old sequence could not be replayed by this code.
COMPATIBILITY = 1


@contextmanager
def waiting_for_a_person() -> Iterator[None]:
    """While the run in this thread waits for a person, it holds none of its worker's slots
    (`shipyard worker --concurrency`), so a worker whose runs all wait at review gates still
    takes new ones. DBOS counts a worker's runs of a queue from its set of active workflows;
    the run is set aside there, as a workflow of no queue, until the wait ends. DBOS has no
    public call for this: dbos is pinned to 3.4, and tests/test_waiting.py fails if it stops
    working."""
    from dbos._dbos import _get_dbos_instance

    active = _get_dbos_instance()._active_workflows_set
    with active._lock:
        buckets = active._m.get(DBOS.workflow_id or "", [])
        held = [b for b in buckets if b is not None and b[0] == QUEUE]
        for bucket in held:
            buckets[buckets.index(bucket)] = None
    try:
        yield
    finally:
        with active._lock:
            for bucket in held:  # counted again: the run works once more
                buckets[buckets.index(None)] = bucket


def application_version(config: Config) -> str:
    """The version runs are recorded under: DBOS recovers and dequeues only runs of its own.
    `engine.application_version` pins it; otherwise it names what a run's replay depends on,
    the core's step sequence and each installed workflow's version, and not shipyard's
    release, so an upgrade strands a waiting run only when one of those changed
    (`shipyard runs --stranded` lists such runs, `shipyard migrate` moves them)."""
    if config.engine.application_version:
        return config.engine.application_version
    config.import_workflows()
    installed = ",".join(f"{name}@{v}" for name, v in sorted(workflow_versions().items()))
    return f"shipyard-c{COMPATIBILITY}:{installed}"


def shutdown() -> None:
    """Stop DBOS and release the executor id. Safe to call when not launched."""
    global _runtime
    if _runtime is None:
        return
    runtime, _runtime = _runtime, None
    try:
        if runtime._adoption is not None:
            runtime._adoption.stop()
        shutdown_tracing()
        DBOS.destroy(destroy_registry=False)
    finally:
        runtime.ledger.close()
        if runtime._lease is not None:
            runtime._lease.close()
        runtime._lock.close()


def launched_in_this_process() -> bool:
    """Whether DBOS was launched here at some point (its threads may outlive shutdown)."""
    return _launched


def current() -> Runtime:
    if _runtime is None:
        raise ShipyardError(
            "shipyard is not launched in this process",
            hint="steps run inside `shipyard run` or `shipyard worker`",
        )
    return _runtime


def current_or_none() -> Runtime | None:
    return _runtime


def artifact_store() -> ArtifactStore:
    """The artifact store of the runtime this step runs in: content-addressed files."""
    return current().store


def _recovered(ledger: Ledger, executor_id: str, version: str) -> list[str]:
    """The unfinished runs of this executor that launching takes up again (after a crash, a
    restart; a run that waits for review), each said in the log and on its timeline."""
    taken: list[str] = []
    unfinished = DBOS.list_workflows(
        status=["PENDING", "ENQUEUED"],  # a run started here waits on the local queue
        executor_id=executor_id,
        app_version=version,
        load_input=False,
        load_output=False,
    )
    for status in unfinished:
        try:
            record = ledger.get(status.workflow_id, detail=False)
        except RunNotFound:  # not a run of shipyard's
            continue
        if record.state is RunState.QUEUED or record.state.finished:
            continue  # never begun: taken, not recovered
        log.info("recovering run %s (executor %s)", status.workflow_id, executor_id)
        ledger.event(status.workflow_id, "recovered", f"taken up again by executor {executor_id}")
        taken.append(status.workflow_id)
    return taken


def _drop_reported_workflow_errors(record: logging.LogRecord) -> bool:
    """DBOS logs a failed run's exception with its traceback; the ledger records the same
    failure (step and reason) and the CLI reports it, so the duplicate is left out."""
    return not record.getMessage().startswith("Exception encountered in background workflow")


def _lock_executor(state: Path, executor_id: str) -> IO[str]:
    path = state / f"executor-{executor_id}.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ShipyardError(
            f"executor {executor_id!r} is already running (process {holder})",
            code="executor-busy",
            hint="wait for it, stop it, or give this process its own SHIPYARD_EXECUTOR_ID",
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
