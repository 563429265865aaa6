"""`@workflow` and `@step`: shipyard's durable-execution API over DBOS Transact.

A step is a unit of work whose result is checkpointed: after a crash the workflow is replayed
and every finished step returns its recorded result without running again. On top of DBOS,
a shipyard step adds:

- a retry policy that knows which errors are permanent (PermanentError is never retried);
- a timeout for synchronous code (the step raises StepTimeout, a transient error);
- an owner, a kind and a description, so `shipyard show` can print the process from the code;
- a ledger record of every attempt (start, end, error, cost), so `shipyard status` can show
  a timeline and metrics can be computed;
- results stored as JSON and validated back into the annotated return type, so a replayed
  step returns exactly what a fresh one does.
"""

from __future__ import annotations

import ast
import contextvars
import functools
import inspect
import logging
import re
import textwrap
import threading
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from dbos import DBOS
from pydantic import BaseModel, TypeAdapter

from shipyard._config import Config
from shipyard._engine import current, current_or_none
from shipyard._errors import (
    ConfigError,
    PermanentError,
    RunNotFound,
    ShipyardError,
    StepFailed,
    StepTimeout,
)
from shipyard._inputs import RUN_INPUT, InputKind, summary
from shipyard._ledger import RunState
from shipyard._logs import STEP, WORKFLOW
from shipyard._notify import Notice, notify_owner
from shipyard._plugins import claim_table, claim_version, import_workflows, installed_plugins
from shipyard._record import CURRENT_ATTEMPT
from shipyard._telemetry import span
from shipyard._verify import Verification

if TYPE_CHECKING:
    from shipyard._doctor import Check

__all__ = [
    "RetryPolicy",
    "Run",
    "StepSpec",
    "WorkflowSpec",
    "get_workflow",
    "set_run_state",
    "step",
    "workflow",
    "workflows",
]

log = logging.getLogger("shipyard.steps")
_STEP_OWNERS: dict[str, str] = {}  # step name -> its owner, who is told when it fails for good

P = ParamSpec("P")
R = TypeVar("R")
I = TypeVar("I")  # noqa: E741  (a run's input type)
S = TypeVar("S")  # a workflow's settings type
Recheck = Callable[[dict[str, Any], Config, float], Verification]


StepKind = Literal["step", "check", "gate", "publish", "verify"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step is tried, and how long to wait between tries (exponential backoff)."""

    attempts: int = 3
    backoff_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_backoff_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(
            self.backoff_seconds * self.backoff_rate ** (attempt - 1), self.max_backoff_seconds
        )


@dataclass(frozen=True)
class StepSpec:
    name: str
    owner: str
    kind: StepKind
    retry: RetryPolicy
    timeout: float | None
    description: str


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    version: str
    owner: str
    description: str
    function: Callable[..., Any]  # the durable function DBOS runs: (input, config) as JSON
    source: Callable[..., Any]  # the author's function, read by `steps`
    requires: tuple[str, ...]  # settings that must be set before a run starts
    accepts: InputKind | tuple[InputKind, ...]
    input_model: type[BaseModel] | None  # the JSON input's model (`accepts=Model`), if any
    input_help: str  # what to give `shipyard run`, in words ("a paper's PDF")
    url_for: Callable[[str], str | None] | None  # a link, from what users type for one
    settings: type[BaseModel] | None  # the model of the workflow's own table
    table: str  # the name of that table in shipyard.toml
    recheck: Recheck | None
    describe: Callable[[Config], dict[str, Any]] | None
    doctor: Callable[[Config], list[Check]] | None = None  # its own needs, for `doctor`
    init_table: str = ""  # its table, commented, as `shipyard init` writes it
    options: Mapping[str, str] = field(default_factory=dict)  # `--NAME`: its setting's key

    @property
    def steps(self) -> list[StepSpec]:
        """The steps the workflow calls, in source order, read from its code."""
        return _steps_called_by(self.source)


@dataclass(frozen=True)
class Run(Generic[I, S]):
    """What a workflow's body receives: its run id, its input, its settings (from its own
    table) and the core configuration. Rebuilt from the run's stored arguments on replay."""

    id: str
    input: I
    settings: S
    config: Config
    workflow: str = ""  # the workflow's name


_WORKFLOWS: dict[str, WorkflowSpec] = {}


def step(
    *,
    name: str | None = None,
    owner: str = "shipyard",
    kind: StepKind = "step",
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    timeout: float | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make a function a durable step of a workflow."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        spec = StepSpec(
            name=name or fn.__name__.replace("_", "-"),
            owner=owner,
            kind=kind,
            retry=RetryPolicy(attempts=attempts, backoff_seconds=backoff_seconds),
            timeout=timeout,
            description=_first_line(fn.__doc__),
        )
        _STEP_OWNERS[spec.name] = owner
        adapter: TypeAdapter[Any] | None = None

        def result_adapter() -> TypeAdapter[Any]:
            nonlocal adapter
            if adapter is None:
                adapter = TypeAdapter(typing.get_type_hints(fn).get("return", Any))
            return adapter

        # DBOS knows the step by a name unique in the process (two workflows may each have a
        # step called "publish"); people see `spec.name` on the timeline.
        @DBOS.step(name=f"{fn.__module__}.{fn.__qualname__}")
        def durable(*args: Any, **kwargs: Any) -> Any:
            result = _attempts(spec, fn, args, kwargs)
            return result_adapter().dump_python(result, mode="json")

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return typing.cast(R, result_adapter().validate_python(durable(*args, **kwargs)))

        call.__shipyard_step__ = spec  # type: ignore[attr-defined]
        return call

    return decorate


def workflow(
    *,
    name: str,
    version: str = "1",
    owner: str = "shipyard",
    requires: tuple[str, ...] = (),
    accepts: InputKind | tuple[InputKind, ...] | type[BaseModel] = "file",
    input_help: str = "",
    url_for: Callable[[str], str | None] | None = None,
    settings: type[BaseModel] | None = None,
    table: str | None = None,
    recheck: Recheck | None = None,
    describe: Callable[[Config], dict[str, Any]] | None = None,
    publishes: bool = False,
    doctor: Callable[[Config], list[Check]] | None = None,
    init_table: str = "",
    options: Mapping[str, str] | None = None,
) -> Callable[[Callable[[Run[Any, Any]], R]], Callable[..., R]]:
    """Make a function a durable workflow: `fn(run: Run[InputType, SettingsType])`.

    Its body is replayed on recovery, so all I/O and nondeterminism belongs in steps, called
    in a stable order.

    - `accepts`: the input it takes (`"file"`, `"text"`, `"url"` or `"json"`), several of
      them (`("file", "url")`: a path that names a file, else a link), or a pydantic model:
      JSON that must fit it before a run exists (`run.input.data` is that JSON);
      `input_help` says what, in words, for error messages ("a paper's PDF");
    - `url_for(given)`: for a workflow that takes links, the canonical URL of what a user
      typed (an arXiv id -> its abstract page), or None to take it as typed; the run's id
      follows the URL, so every way of naming one paper makes the same run;
    - `settings`: the pydantic model of its own table in shipyard.toml, named `table`
      (default: the workflow's name), validated when the file is read;
    - `requires`: settings (`publish.remote`) that must be set for a run to start;
    - `recheck(result, config, deadline_seconds)`: re-verifies a finished run's result
      against production (`shipyard verify`, drift checks);
    - `describe(config)`: what `shipyard show` lists besides the steps (checks, voices...);
    - `doctor(config)`: the `Check`s of what it needs (tools, modules, settings), which
      `shipyard doctor` lists after the core's;
    - `init_table`: its table in shipyard.toml, commented, which `shipyard init` writes;
    - `options`: settings of its table that a run may set (`shipyard run WF INPUT --NAME
      VALUE`), as {NAME: "key.in.table"}; part of the run's input and of its id.

    The run's ledger record follows the body: `running` when it starts, `failed` with the
    step and the reason when it raises; the body sets richer states with `set_run_state`.
    A body that returns without a final state ends `succeeded` (its return value, when a
    dict, is the run's result); with `publishes=True` it must end `verified` or
    `unverified`, and returning without either fails the run, saying so.
    """

    def decorate(fn: Callable[[Run[Any, Any]], R]) -> Callable[..., R]:
        def body(run_input: dict[str, Any], config_json: dict[str, Any]) -> R:
            run_id = DBOS.workflow_id
            assert run_id is not None
            given = RUN_INPUT.validate_python(run_input)
            WORKFLOW.set(name)
            _begin_run(name, version, summary(given))
            try:
                config = Config.model_validate(config_json)
                chosen = config.settings(settings, spec.table) if settings is not None else None
                returned = fn(
                    Run(id=run_id, input=given, settings=chosen, config=config, workflow=name)
                )
                _end_run(publishes, returned if isinstance(returned, dict) else None)
                return returned
            except Exception as exc:  # recorded, then re-raised: a failure never looks done
                step_name = exc.step if isinstance(exc, ShipyardError) else ""
                try:  # the owner is told before the run ends, as whoever follows it sees
                    if step_name and "config" in locals():
                        hint = exc.hint if isinstance(exc, ShipyardError) else None
                        notice = Notice(
                            event="step-failed",
                            run_id=run_id,
                            workflow=name,
                            step=step_name,
                            message=f"step {step_name} failed for good: {_describe(exc)}",
                            todo=hint
                            or f"see `shipyard status {run_id}`; fix the cause, then run "
                            "again (with --force when the input is unchanged)",
                        )
                        notify_owner(config, _STEP_OWNERS.get(step_name, owner), notice)
                finally:
                    set_run_state("failed", step_name or "", _describe(exc))
                raise

        _refuse_a_second(name, fn)
        body.__name__ = body.__qualname__ = fn.__name__
        body.__module__ = fn.__module__
        body.__doc__ = fn.__doc__
        durable = DBOS.workflow(name=name)(body)
        if options and settings is None:
            raise ConfigError(f"workflow {name!r} has options but no settings for them to set")
        spec = WorkflowSpec(
            name=name,
            version=version,
            owner=owner,
            description=_first_line(fn.__doc__),
            function=durable,
            source=fn,
            requires=requires,
            accepts="json" if isinstance(accepts, type) else accepts,
            input_model=accepts if isinstance(accepts, type) else None,
            input_help=input_help,
            url_for=url_for,
            settings=settings,
            table=table or name,
            recheck=recheck,
            describe=describe,
            doctor=doctor,
            init_table=init_table,
            options=dict(options or {}),
        )
        _WORKFLOWS[name] = spec
        claim_version(name, version)
        if settings is not None:
            claim_table(spec.table, name, settings)
        return durable

    return decorate


def _refuse_a_second(name: str, fn: Callable[..., Any]) -> None:
    """Two workflows may not share a name (the engine would run one of them for both):
    refused when the second is defined, naming both."""
    earlier = _WORKFLOWS.get(name)
    if earlier is None:
        return
    if (earlier.source.__module__, earlier.source.__qualname__) == (fn.__module__, fn.__qualname__):
        return  # the same function, its module imported again

    def where(f: Callable[..., Any]) -> str:
        return f"{f.__module__}.{f.__qualname__} ({inspect.getsourcefile(f) or '?'})"

    raise ConfigError(
        f"two workflows are named {name!r}: {where(earlier.source)} and {where(fn)}",
        key="workflows",
        hint="rename one (@workflow(name=...)), or uninstall or unlist one of them",
    )


@DBOS.step(name="shipyard-begin-run")
def _begin_run(workflow_name: str, version: str, inputs: dict[str, Any]) -> None:
    ledger = current().ledger
    run_id = DBOS.workflow_id
    assert run_id is not None
    ledger.create_run(run_id, workflow_name, version, inputs)
    ledger.set_state(run_id, RunState.RUNNING)


@DBOS.step(name="shipyard-end-run")
def _end_run(publishes: bool, result: dict[str, Any] | None) -> None:
    """The body returned: a run it left unfinished ends `succeeded`, or, for a workflow that
    publishes, `failed` (it never said whether production serves what it published)."""
    ledger = current().ledger
    run_id = DBOS.workflow_id
    assert run_id is not None
    try:
        if ledger.get(run_id, detail=False).state.finished:
            return
    except RunNotFound:  # a fork of a run, replayed past its beginning: nothing to end
        return
    if publishes:
        why = "the workflow returned without verifying what it published (set_run_state)"
        ledger.set_state(run_id, RunState.FAILED, reason=why)
        return
    ledger.set_state(run_id, RunState.SUCCEEDED, result=result)


@DBOS.step(name="shipyard-run-state")
def set_run_state(
    state: str, step_name: str = "", reason: str = "", result: dict[str, Any] | None = None
) -> None:
    """Record the run's state (a durable step: replay does not write it again)."""
    run_id = DBOS.workflow_id
    assert run_id is not None
    current().ledger.set_state(
        run_id, RunState(state), step=step_name, reason=reason, result=result
    )


def workflows() -> dict[str, WorkflowSpec]:
    return dict(_WORKFLOWS)


def get_workflow(name: str, config: Config | None = None) -> WorkflowSpec:
    """The workflow named `name`, among the installed ones and `config`'s own modules."""
    if config is None:
        import_workflows()
    else:
        config.import_workflows()
    try:
        return _WORKFLOWS[name]
    except KeyError:
        known = ", ".join(sorted(_WORKFLOWS)) or "none"
        if config is not None and name in config.missing_plugins:
            raise ShipyardError(
                f"workflow {name!r} is enabled in shipyard.toml but not installed",
                code="workflow-not-installed",
                hint="install its plugin (its runs wait until it is back), or take it out "
                "of workflows.enabled",
            ) from None
        if name in installed_plugins() and config is not None:
            raise ShipyardError(
                f"workflow {name!r} is installed but this project does not enable it",
                code="workflow-not-enabled",
                hint=f"add {name!r} to workflows.enabled in shipyard.toml",
            ) from None
        raise ShipyardError(
            f"no workflow is named {name!r}",
            code="no-such-workflow",
            hint=f"known workflows: {known} (others are installed as plugins, or named in "
            "workflows.modules of shipyard.toml)",
        ) from None


# --- attempts -----------------------------------------------------------------------------


def _attempts(
    spec: StepSpec, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    runtime = current_or_none()
    run_id = DBOS.workflow_id
    ledger = runtime.ledger if runtime is not None and run_id is not None else None
    seq = DBOS.step_id or 0
    for attempt in range(1, spec.retry.attempts + 1):
        row = (
            ledger.step_started(run_id, seq, spec.name, attempt, runtime.executor_id)
            if ledger is not None and run_id is not None and runtime is not None
            else None
        )
        token, step_token = CURRENT_ATTEMPT.set(row), STEP.set((spec.name, attempt, spec.owner))
        started = time.monotonic()
        log.info("step %s started (attempt %d)", spec.name, attempt)
        try:
            with span(f"step {spec.name}", kind=spec.kind):
                result = _call_with_timeout(fn, args, kwargs, spec.timeout)
        except BaseException as exc:
            permanent = not isinstance(exc, Exception) or _is_permanent(exc)
            last = permanent or attempt == spec.retry.attempts
            if row is not None and ledger is not None:
                ledger.step_ended(row, "failed" if last else "retrying", error=_describe(exc))
            log.log(
                logging.ERROR if last else logging.WARNING,
                "step %s %s after %.2f s: %s",
                spec.name,
                "failed" if last else "will be retried",
                time.monotonic() - started,
                _describe(exc),
            )
            if last:
                raise _as_step_error(exc, spec, run_id, attempt) from exc
        else:
            if row is not None and ledger is not None:
                ledger.step_ended(row, "ok")
            log.info("step %s ok in %.2f s", spec.name, time.monotonic() - started)
            return result
        finally:
            CURRENT_ATTEMPT.reset(token)
            STEP.reset(step_token)
        time.sleep(spec.retry.delay(attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _is_permanent(exc: Exception) -> bool:
    return isinstance(exc, PermanentError) or (
        isinstance(exc, ShipyardError) and not isinstance(exc, StepFailed)
    )


def _as_step_error(
    exc: BaseException, spec: StepSpec, run_id: str | None, attempts: int
) -> BaseException:
    if not isinstance(exc, Exception):
        return exc  # cancellation and interpreter exits pass through untouched
    if isinstance(exc, ShipyardError):
        exc.step = exc.step or spec.name
        exc.run_id = exc.run_id or run_id
        return exc
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return StepFailed(
        f"step {spec.name} failed{tries}: {_describe(exc)}",
        step=spec.name,
        run_id=run_id,
        code="step-failed",
    )


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"


def _call_with_timeout(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
) -> Any:
    if timeout is None:
        return fn(*args, **kwargs)
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(fn, *args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            outcome["error"] = exc

    # A daemon thread: a step that overruns is abandoned, not joined, so it cannot hold the
    # process open; the step itself reports StepTimeout and is retried.
    worker = threading.Thread(target=target, name=f"shipyard-step-{fn.__name__}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise StepTimeout(
            f"{fn.__name__} ran past its timeout of {timeout:g} s",
            hint="raise the step's timeout, or check what it waits on",
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --- reading the process from the code ----------------------------------------------------


def _steps_called_by(fn: Callable[..., Any], depth: int = 0) -> list[StepSpec]:
    """The steps a function calls, in source order: review gates list their own steps, and
    plain functions of the same module that it calls are followed one level down."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError):
        return []
    module = inspect.getmodule(fn)
    calls = sorted(
        (
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        ),
        key=lambda node: (node.lineno, node.col_offset),
    )
    found: list[StepSpec] = []
    for node in calls:
        assert isinstance(node.func, ast.Name)
        target = getattr(module, node.func.id, None)
        spec = getattr(target, "__shipyard_step__", None)
        if isinstance(spec, StepSpec):
            nested = [spec]
        elif isinstance(gate_steps := getattr(target, "shipyard_steps", None), list):
            nested = gate_steps  # a review gate: its own steps
        elif (
            depth == 0
            and inspect.isfunction(target)
            and inspect.getmodule(target) is module
            and target is not fn
        ):
            nested = _steps_called_by(target, depth + 1)
        else:
            nested = []
        found.extend(s for s in nested if s not in found)
    return found


def _first_line(doc: str | None) -> str:
    """A docstring's first sentence, whole, however many lines it runs over."""
    if not doc:
        return ""
    paragraph = " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())
    found = re.search(r"^.+?[.!?](?=\s|$)", paragraph)
    return found.group(0) if found else paragraph
