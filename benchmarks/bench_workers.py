"""Throughput of 1, 2 and 3 `shipyard worker` processes on one queue, on PostgreSQL (Debian's,
started here), against a fake provider on loopback that takes 0.5 s to answer each call.

Each run of `provider-calls` (tests/provider_workflow.py) calls the provider 4 times, one
after another, each call a durable step holding the quota of `[providers.fake]`; each worker
works on one run at a time. The work waits on the provider, not on the CPU, so workers scale
on 2 cores. Run twice: with the provider's limit above what three workers ask (6 at once),
and at 2 calls at once, where the quota, not the workers, sets the pace. The baseline is one
worker in the same run: throughput is given as a ratio to it.

    python -m benchmarks workers
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard import load_config, submit_run
from shipyard._ledger import Ledger
from tests.conftest import REPO, fresh_database, postgres_installed, postgres_server
from tests.fakeprovider import FakeProvider, fake_provider

RUNS = 12
CALLS = 4
SECONDS = 0.5  # the provider's answer time


def _round(server: str, provider: FakeProvider, workers: int, concurrency: int) -> float:
    """Seconds from queueing RUNS runs until all have ended, with `workers` workers."""
    database = fresh_database(server, f"bench_{workers}_{concurrency}")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "shipyard.toml").write_text(
            f"""\
state_dir = "state"

[engine]
database_url = "{database}"
application_version = "bench"  # as the workers, whatever this process has imported

[workflows]
modules = ["tests.provider_workflow"]

[providers.fake]
concurrency = {concurrency}
""",
            encoding="utf-8",
        )
        config = load_config(root / "shipyard.toml")
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "shipyard", "worker", "--concurrency", "1"],
                cwd=root,
                env={**env, "SHIPYARD_EXECUTOR_ID": f"bench-{n}"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            for n in range(workers)
        ]
        try:
            for worker in started:  # ready before the clock starts
                assert worker.stdout is not None
                while not (line := worker.stdout.readline()).startswith("worker "):
                    if not line:
                        raise RuntimeError("a worker stopped before it was ready")
            clock = time.perf_counter()
            run_ids = [
                submit_run(
                    config,
                    "provider-calls",
                    json.dumps({"url": provider.url, "calls": CALLS, "n": n}),
                ).run_id
                for n in range(RUNS)
            ]
            ledger = Ledger(config.database_url)
            try:
                deadline = time.monotonic() + 300
                while not all(ledger.get(r, detail=False).state.finished for r in run_ids):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the runs did not end within 300 s")
                    time.sleep(0.05)
                elapsed = time.perf_counter() - clock
                states = {ledger.get(r, detail=False).state.value for r in run_ids}
            finally:
                ledger.close()
            if states != {"verified"}:
                raise RuntimeError(f"runs ended {states}")
            return elapsed
        finally:
            for worker in started:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.communicate(timeout=60)


def main() -> None:
    if not postgres_installed():
        print("PostgreSQL is not installed: apt-get install postgresql (make test does)")
        return
    print(
        f"{RUNS} runs of {CALLS} calls each, the provider answering in {SECONDS} s; "
        "each worker one run at a time"
    )
    with postgres_server() as server, fake_provider(seconds=SECONDS) as provider:
        for limit in (6, 2):
            print(f"[providers.fake] concurrency = {limit}")
            baseline = 0.0
            for workers in (1, 2, 3):
                provider.most_at_once = 0
                seconds = _round(server, provider, workers, limit)
                per_minute = RUNS / seconds * 60
                baseline = baseline or per_minute
                print(
                    f"  {workers} worker(s): {seconds:5.1f} s, {per_minute:5.1f} runs/min "
                    f"({per_minute / baseline:.2f}x one worker); the provider saw at most "
                    f"{provider.most_at_once} calls at once"
                )
