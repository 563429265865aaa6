"""Liveness on PostgreSQL: a worker holds its executor's lease (an advisory lock) while it
lives; one that loses the lease's connection stops at once; a dead worker's runs are adopted
by a live worker with another executor id, and finish exactly once."""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from shipyard import Config, RunState, ShipyardError, _engine, _liveness
from shipyard._liveness import ExecutorLease
from tests.conftest import corpus_files, fresh_database
from tests.project import kill_group, make_project

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

END_LEASES = """
SELECT pg_terminate_backend(pid) FROM pg_locks
WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database
                                            WHERE datname = current_database())
"""


def test_an_executor_id_is_leased_to_one_process_at_a_time(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = fresh_database(postgres_url, "lease")
    monkeypatch.setattr(_liveness, "TAKE_LEASE_S", 1.0)
    first = ExecutorLease(database, "worker-1")
    try:
        with pytest.raises(ShipyardError, match="alive in another process"):
            ExecutorLease(database, "worker-1")
        ExecutorLease(database, "worker-2").close()  # another id is another lease
    finally:
        first.close()
    ExecutorLease(database, "worker-1").close()  # free once its holder let go


def test_a_process_that_loses_its_lease_is_told_at_once(postgres_url: str) -> None:
    database = fresh_database(postgres_url, "fence")
    lost = threading.Event()
    lease = ExecutorLease(database, "worker-1", on_lost=lambda why: lost.set())
    try:
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute(END_LEASES)
        assert lost.wait(timeout=30)
    finally:
        lease.close()


def _run_id(text: str) -> str:
    found = re.search(r"run-[0-9a-f]{12}", text)
    assert found, text
    return found.group(0)


def test_a_worker_reports_its_health_and_stops_when_it_loses_its_lease(
    tmp_path: Path, postgres_url: str
) -> None:
    database = fresh_database(postgres_url, "fenceworker")
    with make_project(
        tmp_path / "p", auto_approve=True, extra=f'[engine]\ndatabase_url = "{database}"\n'
    ) as project:
        worker = project.start(
            "worker", "--health-port", "0", env={"SHIPYARD_EXECUTOR_ID": "worker-1"}
        )
        ready = project.wait_for_output(worker, "ready")
        found = re.search(r"health: (\S+/healthz)", ready)
        assert found, ready
        well = httpx.get(found.group(1), timeout=30)
        assert well.status_code == 200, well.text
        assert well.json() == {
            "executor": "worker-1",
            "version": well.json()["version"],
            "lease": "held",
            "problems": [],
        }
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute(END_LEASES)
        assert worker.wait(timeout=60) == 75
        out = kill_group(worker)
        with pytest.raises(httpx.ConnectError):  # gone: the probe fails, its supervisor acts
            httpx.get(found.group(1), timeout=5)
    assert "lost the database connection that holds its executor's lease" in out


def test_a_dead_workers_run_is_adopted_by_a_live_worker(tmp_path: Path, postgres_url: str) -> None:
    database = fresh_database(postgres_url, "adoption")
    engine = f'[engine]\ndatabase_url = "{database}"\nadopt_seconds = 1\n'
    with make_project(tmp_path / "p", auto_approve=True, extra=engine) as project:
        doomed = project.start("worker", env={"SHIPYARD_EXECUTOR_ID": "worker-a"})
        project.wait_for_output(doomed, "ready")
        queued = project.run("run", "paper-to-podcast", str(project.paper), "--queue", "--detach")
        assert queued.returncode == 4, queued.stderr
        run_id = _run_id(queued.stdout)
        project.wait_until(run_id, lambda r: any(s.step == "synthesize" for s in r.steps))
        kill_group(doomed, signal.SIGKILL)
        survivor = project.start("worker", env={"SHIPYARD_EXECUTOR_ID": "worker-b"})
        try:
            run = project.wait_until(run_id, lambda r: r.state.finished)
        finally:
            out = kill_group(survivor, signal.SIGTERM)
        commits = [c for c in project.site_commits() if "Shipyard-Run:" in c]
    assert run.state is RunState.VERIFIED, out
    assert {s.executor for s in run.steps} == {"worker-a", "worker-b"}
    assert [s.step for s in run.steps if s.status == "ok"].count("extract") == 1
    assert len(commits) == 1
    assert "executor worker-a is dead" in out


def test_health_names_a_lease_that_stopped_answering(tmp_path: Path, postgres_url: str) -> None:
    url = fresh_database(postgres_url, "health")
    config = Config.model_validate(
        {"root": tmp_path, "state_dir": tmp_path / "state", "engine": {"database_url": url}}
    )
    runtime = _engine.launch(config, adopt=True)
    try:
        ok, report = _engine.health()
        assert ok and report["lease"] == "held", report
        lease = runtime._lease
        assert lease is not None
        lease._last_heartbeat -= 60  # as if its connection had hung for a minute
        ok, report = _engine.health()
    finally:
        _engine.shutdown()
    assert not ok
    [problem] = report["problems"]  # a second may pass on a busy machine: 60 or 61 s
    assert re.fullmatch(r"the lease's connection has not answered for 6[01] s", problem), problem


def test_chaos_workers_killed_at_random_lose_and_repeat_no_run(
    tmp_path: Path, postgres_url: str, corpus: Path
) -> None:
    """Three workers, twelve queued runs: a random worker is killed -9 every few seconds (at
    most five times) and a replacement starts under a new executor id. Every run ends
    verified with exactly one commit and one feed item, and no dead id ever comes back."""
    database = fresh_database(postgres_url, "chaos")
    engine = f'[engine]\ndatabase_url = "{database}"\nadopt_seconds = 1\n'
    chance = random.Random(7)
    with make_project(tmp_path / "p", auto_approve=True, extra=engine) as project:
        ids = iter(f"worker-{n}" for n in range(1, 100))
        workers = {}
        for _ in range(3):
            name = next(ids)
            workers[name] = project.start("worker", env={"SHIPYARD_EXECUTOR_ID": name})
        for worker in workers.values():
            project.wait_for_output(worker, "ready")
        copy = project.root / "paper-copy.pdf"  # other bytes, so another episode
        copy.write_bytes(project.paper.read_bytes() + b"\n% a copy\n")
        inputs = [*corpus_files("papers"), project.paper, copy]
        queued = [
            project.run("run", "paper-to-podcast", str(p), "--queue", "--detach") for p in inputs
        ]
        assert all(q.returncode == 4 for q in queued), [q.stderr[-2000:] for q in queued]
        run_ids = [_run_id(q.stdout) for q in queued]
        assert len(set(run_ids)) == 12

        killed: list[str] = []
        ledger = project.ledger()
        deadline = time.monotonic() + 600
        try:
            while time.monotonic() < deadline:
                if all(ledger.get(r, detail=False).state.finished for r in run_ids):
                    break
                time.sleep(4)
                if len(killed) < 5:
                    victim = chance.choice(sorted(workers))
                    kill_group(workers.pop(victim), signal.SIGKILL)
                    killed.append(victim)
                    name = next(ids)
                    workers[name] = project.start("worker", env={"SHIPYARD_EXECUTOR_ID": name})
            runs = [ledger.get(r) for r in run_ids]
        finally:
            ledger.close()
            for worker in workers.values():
                kill_group(worker, signal.SIGTERM)
        commits = project.site_commits()
        feed = httpx.get(project.server.url + "feed.xml", timeout=10).text
    assert [r.state for r in runs] == [RunState.VERIFIED] * 12, [
        (r.run_id, r.state, r.reason) for r in runs
    ]
    for run in runs:
        trailer = re.compile(rf"^Shipyard-Run: {re.escape(run.run_id)}$", re.MULTILINE)
        assert sum(bool(trailer.search(c)) for c in commits) == 1, run.run_id
        assert feed.count(run.result["episode_url"]) >= 1
    assert feed.count("<item>") == 12
    assert killed
    executors = {s.executor for r in runs for s in r.steps}
    assert {f"worker-{n}" for n in range(4, 9)} & executors  # replacements took work up
    # runs a victim had begun, which other workers finished: adopted, not waited for
    hands = {r.run_id: {s.executor for s in r.steps} for r in runs}
    adopted = [r for r, who in hands.items() if who & set(killed) and who - set(killed)]
    assert adopted, hands


def test_processes_starting_together_on_a_new_database_all_start(postgres_url: str) -> None:
    """Each makes the tables it lacks; at the same moment on PostgreSQL, they take turns."""
    from concurrent.futures import ThreadPoolExecutor

    from shipyard._ledger import Ledger

    database = fresh_database(postgres_url, "together")
    with ThreadPoolExecutor(max_workers=6) as pool:
        ledgers = list(pool.map(lambda _: Ledger(database), range(6)))
    for ledger in ledgers:
        assert ledger.runs() == []
        ledger.close()
