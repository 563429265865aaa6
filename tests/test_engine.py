"""The durable engine on a real SQLite file: retries, permanent errors, timeouts, JSON results
validated back into their types (also when replayed), the ledger's timeline, and `show`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dbos import DBOS, SetWorkflowID
from pydantic import BaseModel

from shipyard import (
    Config,
    JsonInput,
    PermanentError,
    Run,
    ShipyardError,
    StepFailed,
    StepTimeout,
    _engine,
    step,
    workflow,
)
from shipyard._ledger import Ledger
from shipyard._workflow import workflows
from tests.conftest import fresh_database

CALLS: dict[str, int] = {}


class Measure(BaseModel):
    name: str
    value: float


@step(owner="tester", attempts=3, backoff_seconds=0.01)
def flaky(name: str, failures: int) -> Measure:
    """Fails `failures` times, then measures."""
    CALLS[name] = CALLS.get(name, 0) + 1
    if CALLS[name] <= failures:
        raise ConnectionError(f"provider busy ({CALLS[name]})")
    return Measure(name=name, value=CALLS[name] * 1.5)


@step(owner="tester", attempts=3, backoff_seconds=0.01)
def refuse(name: str) -> None:
    """Always refuses, permanently."""
    CALLS[name] = CALLS.get(name, 0) + 1
    raise PermanentError("the input is unusable", code="unusable", hint="give another input")


@step(owner="tester", attempts=1, timeout=0.2)
def slow() -> int:
    import time

    time.sleep(5)
    return 1


def helper_gate(name: str) -> Measure:
    return flaky(name + "-gate", 0)


@workflow(name="toy-measure", version="7", owner="qa", accepts="json")
def toy_measure(run: Run[JsonInput, None]) -> dict[str, object]:
    """A toy workflow for the engine's tests."""
    name = run.input.data["name"]
    first = flaky(name, run.input.data["failures"])
    second = helper_gate(name)
    return {"first": first.value, "second": second.value, "type": type(first).__name__}


@workflow(name="toy-refuse", accepts="json")
def toy_refuse(run: Run[JsonInput, None]) -> None:
    refuse(run.input.data["name"])


@workflow(name="toy-slow", accepts="json")
def toy_slow(run: Run[JsonInput, None]) -> int:
    return slow()


def arguments(runtime: _engine.Runtime, **data: object) -> tuple[dict[str, object], ...]:
    """A workflow's arguments, as `shipyard run` stores them: the input, the configuration."""
    given = JsonInput(data=data, sha256="0" * 64)
    return given.model_dump(mode="json"), runtime.config.model_dump(mode="json")


@pytest.fixture(autouse=True)
def _count_afresh() -> None:
    CALLS.clear()


@pytest.fixture(params=["sqlite", "postgres"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_engine.Runtime]:
    """The same engine contract on both system databases."""
    url = ""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_url")
        url = fresh_database(server, tmp_path.name)
    config = Config.model_validate(
        {"root": tmp_path, "state_dir": tmp_path / "state", "engine": {"database_url": url}}
    )
    rt = _engine.launch(config)
    yield rt
    _engine.shutdown()


def test_transient_failures_are_retried_and_recorded(runtime: _engine.Runtime) -> None:
    with SetWorkflowID("wf-retry"):
        result = toy_measure(*arguments(runtime, name="retry", failures=2))
    assert result == {"first": 4.5, "second": 1.5, "type": "Measure"}
    statuses = [(s.step, s.attempt, s.status) for s in runtime.ledger.get("wf-retry").steps]
    assert statuses == [
        ("flaky", 1, "retrying"),
        ("flaky", 2, "retrying"),
        ("flaky", 3, "ok"),
        ("flaky", 1, "ok"),
    ]
    assert "provider busy (1)" in runtime.ledger.get("wf-retry").steps[0].error


def test_permanent_errors_are_not_retried(runtime: _engine.Runtime) -> None:
    with SetWorkflowID("wf-refuse"), pytest.raises(PermanentError) as caught:
        toy_refuse(*arguments(runtime, name="refuse"))
    assert CALLS["refuse"] == 1
    assert caught.value.step == "refuse" and caught.value.run_id == "wf-refuse"
    assert caught.value.hint == "give another input"


def test_a_step_past_its_timeout_fails_with_step_timeout(runtime: _engine.Runtime) -> None:
    with SetWorkflowID("wf-slow"), pytest.raises(StepTimeout, match=r"timeout of 0\.2 s"):
        toy_slow(*arguments(runtime))


def test_exhausted_retries_fail_with_the_last_error_named(runtime: _engine.Runtime) -> None:
    with SetWorkflowID("wf-exhaust"), pytest.raises(StepFailed) as caught:
        toy_measure(*arguments(runtime, name="exhaust", failures=5))
    assert "after 3 attempts" in str(caught.value)
    assert "ConnectionError: provider busy (3)" in str(caught.value)


def test_replayed_steps_return_their_recorded_result_as_the_declared_type(
    runtime: _engine.Runtime,
) -> None:
    with SetWorkflowID("wf-replay"):
        toy_measure(*arguments(runtime, name="replay", failures=0))
    calls_before = CALLS["replay"]
    # Fork from the third step (after begin-run and the first measure): the first measure is
    # replayed from its JSON record, not run again; the gate's measure runs anew.
    handle = DBOS.fork_workflow("wf-replay", 3)
    assert handle.get_result() == {"first": 1.5, "second": 3.0, "type": "Measure"}
    assert CALLS["replay"] == calls_before


def test_show_reads_the_steps_from_the_workflow_code() -> None:
    spec = workflows()["toy-measure"]
    assert (spec.version, spec.owner) == ("7", "qa")
    assert spec.description == "A toy workflow for the engine's tests."
    # flaky directly, then flaky again through helper_gate (listed once).
    assert [s.name for s in spec.steps] == ["flaky"]
    assert spec.steps[0].retry.attempts == 3


def test_one_executor_id_cannot_be_launched_twice(tmp_path: Path) -> None:
    config = Config(root=tmp_path, state_dir=tmp_path / "state")
    config.state.mkdir(parents=True)
    lock = _engine._lock_executor(config.state, "local")
    try:
        with pytest.raises(ShipyardError, match="already running") as caught:
            _engine.launch(config)
        assert caught.value.code == "executor-busy"
    finally:
        lock.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_attempts_are_numbered_across_a_crash_and_the_cut_off_one_marked(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A step's attempts in the ledger, as two processes leave them: the first numbered 1
    and left running by a crash, the next (asked for as attempt 1 again by a fresh process)
    numbered 2, with the first marked interrupted and itself still running."""
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    else:
        url = fresh_database(request.getfixturevalue("postgres_url"), request.node.name)
    ledger = Ledger(url)
    try:
        ledger.create_run("r", "w", "1", {})
        ledger.step_started("r", 1, "extract", 1, "a")
        assert [(s.attempt, s.status) for s in ledger.get("r").steps] == [(1, "running")]
        second = ledger.step_started("r", 1, "extract", 1, "b")  # after the crash
        ledger.step_started("r", 2, "write", 1, "b")  # another step's first: marks nothing
        ledger.step_ended(second, "ok")
        assert [(s.seq, s.attempt, s.status, s.executor) for s in ledger.get("r").steps] == [
            (1, 1, "interrupted", "a"),
            (1, 2, "ok", "b"),
            (2, 1, "running", "b"),
        ]
    finally:
        ledger.close()
