"""Commands for runs: run, runs, status, cancel, migrate, metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from shipyard._config import Config, load_config
from shipyard._ledger import RunState
from shipyard.cli import ConfigOption, JsonOption, app
from shipyard.cli._output import (
    STATUS_MARK,
    console,
    finish,
    follow,
    ledger_for,
    print_json,
    state_text,
    when,
    whole,
    workflow_text,
)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog="A workflow's own options follow the input, as --NAME VALUE; "
    "`shipyard show WORKFLOW` lists them.",
)
def run(
    context: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow, e.g. paper-to-podcast.")],
    source: Annotated[
        str,
        typer.Argument(
            help="The input, as the workflow takes it: a file's path, a URL or a JSON document.",
            metavar="INPUT",
        ),
    ],
    auto_approve: Annotated[
        bool,
        typer.Option(
            "--auto-approve",
            help="Approve the review automatically (recorded as a policy "
            "decision, not a person's).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run again even if this input and config already ran.")
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Return once the run waits for review (with --queue: once it is queued); "
            "`shipyard worker` goes on with it.",
        ),
    ] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="Hand the run to `shipyard worker` processes (on any machine sharing the "
            "database) instead of running it here.",
        ),
    ] = False,
    profile: Annotated[
        str | None,
        typer.Option(
            help="Run with one of the workflow's profiles ([TABLE.profiles.NAME] in "
            "shipyard.toml) laid over its settings.",
        ),
    ] = None,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a workflow on an input and follow it until it is verified (or stops)."""
    from shipyard import _engine
    from shipyard._runner import start_run, submit_run

    options = _workflow_options(context.args)
    config = load_config(config_file)
    if auto_approve:
        config = config.model_copy(
            update={"review": config.review.model_copy(update={"auto_approve": True})}
        )
    try:
        if queue:
            started = submit_run(
                config, workflow, source, force=force, profile=profile, options=options
            )
            ledger = ledger_for(config)
        else:
            ledger = _engine.launch(config).ledger
            started = start_run(workflow, source, force=force, profile=profile, options=options)
        record = follow(
            ledger,
            started,
            queued=queue,
            quiet=as_json,
            until=lambda r: (
                r.state.finished or (detach and (r.state is RunState.AWAITING_REVIEW or queue))
            ),
        )
    except KeyboardInterrupt:
        console.print(
            "\ninterrupted: the run is kept and goes on when `shipyard worker` "
            "(or the next `shipyard run`) starts"
        )
        raise typer.Exit(130) from None
    finally:
        _engine.shutdown()
    finish(record, as_json)


def _workflow_options(args: list[str]) -> dict[str, str]:
    """A workflow's own options from what follows the input: `--NAME VALUE` or
    `--NAME=VALUE` (the workflow checks the names when the run starts)."""
    options: dict[str, str] = {}
    rest = list(args)
    while rest:
        given = rest.pop(0)
        name, equals, value = given.removeprefix("--").partition("=")
        if not given.startswith("--") or not name:
            raise typer.BadParameter(f"unexpected {given!r}: options are written --NAME VALUE")
        if not equals:
            if not rest:
                raise typer.BadParameter(f"--{name} needs a value")
            value = rest.pop(0)
        options[name] = value
    return options


@app.command()
def runs(
    state: Annotated[list[RunState] | None, typer.Option(help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    stranded: Annotated[
        bool,
        typer.Option(
            "--stranded",
            help="Only unfinished runs recorded under another application version, which "
            "no worker of this one takes (`shipyard migrate` moves them).",
        ),
    ] = False,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    config = load_config(config_file)
    if stranded:
        _stranded(config, as_json)
        return
    records = ledger_for(config).runs(states=state or [], limit=limit)
    if as_json:
        print_json([r.to_json() for r in records])
        return
    ids = whole("run", [r.run_id for r in records])
    table = Table(
        ids,
        Column("workflow", no_wrap=True),
        Column("state", no_wrap=True),
        "step",
        "started",
        "took",
        box=None,
    )
    for r in records:
        took = (r.finished_at or time.time()) - r.created_at
        table.add_row(
            r.run_id,
            workflow_text(r.workflow),
            state_text(r.state),
            r.step,
            when(r.created_at),
            f"{took:.1f} s",
        )
    console.print(table if records else "no runs yet: `shipyard run WORKFLOW INPUT`")


def _stranded(config: Config, as_json: bool) -> None:
    from shipyard._engine import application_version
    from shipyard._runner import stranded_runs

    found = stranded_runs(config)
    if as_json:
        print_json(
            [
                s.run.to_json() | {"version": s.version, "movable": s.movable, "why": s.why}
                for s in found
            ]
        )
        return
    if not found:
        console.print(f"no stranded runs: every unfinished run is {application_version(config)}")
        return
    ids = whole("run", [s.run.run_id for s in found])
    table = Table(ids, "workflow", "state", "its version", "can move", "why", box=None)
    for s in found:
        table.add_row(
            s.run.run_id,
            s.run.workflow,
            state_text(s.run.state),
            escape(s.version),
            "yes" if s.movable else "no",
            escape(s.why),
        )
    console.print(table)
    console.print(f"this version: {escape(application_version(config))}")


@app.command()
def migrate(
    run_id: Annotated[str, typer.Argument(help="The run (a unique part of its id will do).")],
    config_file: ConfigOption = None,
) -> None:
    """Move a stranded run onto this version with its finished steps and any decision sent;
    a worker of this version then takes it. Stop the old version's workers first."""
    from shipyard._runner import migrate as move

    record = move(load_config(config_file), run_id)
    console.print(f"run {record.run_id}: moved to this version; a worker goes on with it")


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="The run (a unique part of its id will do).")],
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's state and timeline: every step attempt with its time, cost and error."""
    ledger = ledger_for(load_config(config_file))
    record = ledger.get(run_id)
    artifacts = ledger.lineage(record.run_id)
    if as_json:
        print_json(record.to_json() | {"artifacts": artifacts})
        return
    console.print(
        f"[bold]{record.run_id}[/]  {workflow_text(record.workflow, record.version)}  "
        f"{state_text(record.state)}" + (f"  ({escape(record.reason)})" if record.reason else "")
    )
    table = Table("step", "try", "", "started", "seconds", "cost", "error", box=None)
    for s in record.steps:
        table.add_row(
            s.step,
            str(s.attempt),
            STATUS_MARK.get(s.status, s.status),
            when(s.started_at),
            "" if s.seconds is None else f"{s.seconds:.2f}",
            f"${s.cost_usd:.4f}" if s.cost_usd else "",
            escape(s.error[:80]),
        )
    console.print(table)
    for artifact in artifacts:
        parents = (
            ", ".join(p[:12] for p in artifact["parents"])
            if len(artifact["parents"]) <= 3
            else f"{len(artifact['parents'])} artifacts"
        )
        console.print(
            f"artifact {artifact['kind']:8} {artifact['sha256'][:12]} "
            f"{artifact['size']:>10} bytes" + (f"  from {parents}" if parents else "")
        )
    given = record.input.get("source", "")
    profile = record.input.get("profile")
    options = " ".join(f"--{k} {v}" for k, v in record.input.get("options", {}).items())
    console.print(
        f"input: {given}"
        + (f"  (profile {profile})" if profile else "")
        + (f"  ({options})" if options else ""),
        markup=False,
    )
    for event in record.events:  # what happened besides the steps: reviews, revisions...
        console.print(f"{when(event['at'])} {event['kind']}: {event['message']}", markup=False)
    for key, value in record.result.items():
        if isinstance(value, str | int | float) and key not in ("state", "reason"):
            console.print(f"{key.replace('_', ' ')}: {value}", markup=False)


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run (a unique part of its id will do).")],
    config_file: ConfigOption = None,
) -> None:
    """Cancel a run that has not finished: it stops at its next step."""
    from shipyard._runner import cancel as cancel_run

    record = cancel_run(load_config(config_file), run_id)
    console.print(f"run {record.run_id}: {state_text(record.state)}")


@app.command()
def metrics(
    workflow: Annotated[str | None, typer.Option(help="Only this workflow.")] = None,
    days: Annotated[float | None, typer.Option(help="Only runs started in the last N days.")] = (
        None
    ),
    prometheus_file: Annotated[
        Path | None,
        typer.Option(
            help="Write the Prometheus metrics to this file instead (atomically: for "
            "node_exporter's textfile collector, under cron)."
        ),
    ] = None,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure each workflow: resolution time, error rate, throughput, cost per case,
    review turnaround, retries."""
    from shipyard._metrics import measure

    if prometheus_file is not None:
        from shipyard._artifacts import write_atomically
        from shipyard._prometheus import prometheus_text

        text = prometheus_text(ledger_for(load_config(config_file)))
        write_atomically(prometheus_file, lambda f: f.write(text))
        return
    since = time.time() - days * 86_400 if days is not None else None
    measured = measure(ledger_for(load_config(config_file)), since=since, workflow=workflow)
    if as_json:
        print_json([m.to_json() for m in measured])
        return
    if not measured:
        console.print("no runs to measure yet")
    for m in measured:
        states = ", ".join(f"{n} {state}" for state, n in m.states.items())
        console.print(f"[bold]{m.workflow}[/]: {m.runs} runs ({states})")
        for label, value in (
            ("resolution time, median", _seconds(m.resolution_median_s)),
            ("resolution time, p90", _seconds(m.resolution_p90_s)),
            ("error rate (failed)", _percent(m.error_rate)),
            ("unverified", _percent(m.unverified_rate)),
            (
                "throughput",
                "" if m.throughput_per_day is None else f"{m.throughput_per_day:.1f} runs/day",
            ),
            ("cost per case", "" if m.cost_per_case_usd is None else f"${m.cost_per_case_usd:.4f}"),
            ("review turnaround, median", _seconds(m.review_turnaround_median_s)),
            ("approved by policy", str(m.automatic_approvals)),
            ("retries per run", "" if m.retries_per_run is None else f"{m.retries_per_run:.2f}"),
        ):
            console.print(f"  {label:26} {value or '—'}")


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"
