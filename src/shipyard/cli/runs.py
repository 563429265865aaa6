"""Commands for projects and runs: init, run, runs, status, cancel, metrics, review, verify,
unpublish, show, worker, serve, doctor, demo."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shipyard._config import Config, load_config
from shipyard._errors import ShipyardError
from shipyard._project import DEFAULT_PORT, init_project, production_root
from shipyard._runs import Ledger, RunRecord, RunState, StepRecord
from shipyard.cli import ConfigOption, JsonOption, app
from shipyard.podcast.models import Release

if TYPE_CHECKING:
    from shipyard._runner import StartedRun

console = Console(highlight=False, soft_wrap=True)  # never break a URL across lines
ReviewerOption = Annotated[
    str,
    typer.Option(
        "--as",
        envvar="SHIPYARD_REVIEWER",
        show_envvar=True,
        help="Who decides (one of review.reviewers).",
    ),
]
review_app = typer.Typer(help="Decide the runs that wait at a review gate.", no_args_is_help=True)
app.add_typer(review_app, name="review")


_STATUS_MARK = {
    "ok": "[green]✓[/]",
    "running": "[cyan]…[/]",
    "retrying": "[yellow]↻[/]",
    "failed": "[red]✗[/]",
    "interrupted": "[yellow]⚡[/]",
}
_STATE_STYLE = {
    RunState.VERIFIED: "green",
    RunState.FAILED: "red",
    RunState.UNVERIFIED: "red",
    RunState.REJECTED: "yellow",
    RunState.AWAITING_REVIEW: "yellow",
}


# --- project ------------------------------------------------------------------------------


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="The project folder.")] = Path("."),
    local_production: Annotated[
        bool,
        typer.Option(
            help="Also create a local production: a bare git remote with a deploy hook and a "
            "web root that `shipyard serve` serves on loopback."
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the local production's server.")] = (
        DEFAULT_PORT
    ),
) -> None:
    """Set up a project: shipyard.toml, the state folder, and (optionally) local production."""
    config = init_project(folder, local_production=local_production, port=port)
    console.print(f"project ready in {config.root} (config: {config.root / 'shipyard.toml'})")
    if local_production:
        console.print(
            f"local production: remote {config.publish.remote}, "
            f"served by `shipyard serve` at {config.publish.base_url}"
        )


# --- runs ---------------------------------------------------------------------------------


@app.command()
def run(
    workflow: Annotated[str, typer.Argument(help="The workflow, e.g. paper-to-podcast.")],
    source: Annotated[Path, typer.Argument(help="The input file, e.g. a paper's PDF.")],
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
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a workflow on an input and follow it until it is verified (or stops)."""
    from shipyard import _engine
    from shipyard._runner import start_run, submit_run

    config = load_config(config_file)
    if auto_approve:
        config = config.model_copy(
            update={"review": config.review.model_copy(update={"auto_approve": True})}
        )
    try:
        if queue:
            started = submit_run(config, workflow, source, force=force)
            ledger = _ledger(config)
        else:
            ledger = _engine.launch(config).ledger
            started = start_run(workflow, source, force=force)
        record = _follow(
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
    _finish(record, as_json)


@app.command()
def runs(
    state: Annotated[list[RunState] | None, typer.Option(help="Only runs in this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    records = _ledger(load_config(config_file)).runs(states=state or [], limit=limit)
    if as_json:
        _print_json([r.to_json() for r in records])
        return
    table = Table("run", "workflow", "state", "step", "started", "took", box=None)
    for r in records:
        took = (r.finished_at or time.time()) - r.created_at
        table.add_row(
            r.run_id, r.workflow, _state(r.state), r.step, _when(r.created_at), f"{took:.1f} s"
        )
    console.print(table if records else "no runs yet: `shipyard run paper-to-podcast PAPER.pdf`")


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="The run (a unique part of its id will do).")],
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's state and timeline: every step attempt with its time, cost and error."""
    ledger = _ledger(load_config(config_file))
    record = ledger.get(run_id)
    artifacts = ledger.lineage(record.run_id)
    if as_json:
        _print_json(record.to_json() | {"artifacts": artifacts})
        return
    console.print(
        f"[bold]{record.run_id}[/]  {record.workflow} v{record.version}  "
        f"{_state(record.state)}" + (f"  ({record.reason})" if record.reason else "")
    )
    table = Table("step", "try", "", "started", "seconds", "cost", "error", box=None)
    for s in record.steps:
        table.add_row(
            s.step,
            str(s.attempt),
            _STATUS_MARK.get(s.status, s.status),
            _when(s.started_at),
            "" if s.seconds is None else f"{s.seconds:.2f}",
            f"${s.cost_usd:.4f}" if s.cost_usd else "",
            s.error[:80],
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
    for key in ("episode_url", "feed_url", "commit"):
        if key in record.result:
            console.print(f"{key.replace('_', ' ')}: {record.result[key]}")


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(help="The run (a unique part of its id will do).")],
    config_file: ConfigOption = None,
) -> None:
    """Cancel a run that has not finished: it stops at its next step."""
    from shipyard._runner import cancel as cancel_run

    record = cancel_run(load_config(config_file), run_id)
    console.print(f"run {record.run_id}: {_state(record.state)}")


@app.command()
def metrics(
    workflow: Annotated[str | None, typer.Option(help="Only this workflow.")] = None,
    days: Annotated[float | None, typer.Option(help="Only runs started in the last N days.")] = (
        None
    ),
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure each workflow: resolution time, error rate, throughput, cost per case,
    review turnaround, retries."""
    from shipyard._metrics import measure

    since = time.time() - days * 86_400 if days is not None else None
    measured = measure(_ledger(load_config(config_file)), since=since, workflow=workflow)
    if as_json:
        _print_json([m.to_json() for m in measured])
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


# --- review -------------------------------------------------------------------------------


@review_app.command("list")
def review_list(config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The runs waiting for a review decision."""
    ledger = _ledger(load_config(config_file))
    waiting = [ledger.get(r.run_id) for r in ledger.runs(states=[RunState.AWAITING_REVIEW])]
    rows = [_review_request(r) | {"run_id": r.run_id} for r in waiting]
    if as_json:
        _print_json(rows)
        return
    table = Table("run", "reviewers", "deadline", "flags", "title", box=None)
    for row in rows:
        table.add_row(
            row["run_id"],
            ", ".join(row["reviewers"]),
            _when(row["deadline"]),
            str(len(row["flags"])),
            row["script"]["title"],
        )
    console.print(table if rows else "nothing waits for review")


@review_app.command("show")
def review_show(run_id: str, config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show the script waiting for review, with the checks' flags."""
    request = _review_request(_ledger(load_config(config_file)).get(run_id))
    if as_json:
        _print_json(request)
        return
    script = request["script"]
    console.print(
        f"[bold]{script['title']}[/] — {script['show']} "
        f"(writer: {script['writer']}, ~{script['estimated_seconds'] / 60:.1f} min)"
    )
    for i, turn in enumerate(script["turns"]):
        console.print(f"[dim]{i:3}[/] [bold]{turn['speaker']}:[/] {turn['text']}")
    for flag in request["flags"]:
        where = f" (turn {flag['turn']})" if flag.get("turn") is not None else ""
        console.print(f"[yellow]{flag['severity']}[/] {flag['check']}{where}: {flag['message']}")
    console.print(f"decide: shipyard review approve {run_id} --as {request['reviewers'][0]}")


@review_app.command("approve")
def review_approve(
    run_id: str,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="A note kept with the decision.")] = "",
    edited: Annotated[
        Path | None,
        typer.Option(
            "--script",
            help="Approve this edited script (JSON, as `review show --json` "
            "prints under 'script') instead of the written one.",
        ),
    ] = None,
    config_file: ConfigOption = None,
) -> None:
    """Approve a run's script (optionally an edited version); the run goes on."""
    decision: dict[str, Any] = {
        "action": "edit" if edited else "approve",
        "reviewer": reviewer,
        "comment": comment,
    }
    if edited is not None:
        decision["script"] = json.loads(edited.read_text(encoding="utf-8"))
    _decide(config_file, run_id, decision)


@review_app.command("reject")
def review_reject(
    run_id: str,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="Why: kept with the decision.")] = "",
    config_file: ConfigOption = None,
) -> None:
    """Reject a run's script; the run ends `rejected` and nothing is published."""
    _decide(config_file, run_id, {"action": "reject", "reviewer": reviewer, "comment": comment})


def _decide(config_file: Path | None, run_id: str, decision: dict[str, Any]) -> None:
    from shipyard._runner import decide

    record = decide(load_config(config_file), run_id, decision)
    console.print(
        f"{decision['action']} sent to {record.run_id}; it goes on in the process "
        "that runs it (or the next `shipyard worker`)"
    )


def _review_request(record: RunRecord) -> dict[str, Any]:
    requests = [e for e in record.events if e["kind"] == "review-requested"]
    if not requests:
        raise ShipyardError(
            f"run {record.run_id} has not asked for a review",
            code="no-review",
            hint="`shipyard review list` shows those that did",
        )
    return dict(requests[-1]["data"])


# --- production ---------------------------------------------------------------------------


@app.command()
def verify(
    run_ids: Annotated[list[str] | None, typer.Argument(help="Runs to re-check.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Re-check every verified run.")] = False,
    deadline: Annotated[float, typer.Option(help="Seconds to poll each release.")] = 10.0,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-check that production still serves what verified runs shipped (for cron or CI):
    exits 1 when any release drifted."""
    from shipyard.podcast.release import verify_episode

    config = load_config(config_file)
    ledger = _ledger(config)
    if not run_ids and not every:
        raise ShipyardError(
            "name the runs to re-check, or pass --all",
            code="usage",
            hint="`shipyard verify --all` re-checks every verified run",
        )
    records = (
        [ledger.get(r) for r in run_ids or []]
        if run_ids
        else ledger.runs(states=[RunState.VERIFIED], limit=1_000_000)
    )
    outcomes = []
    for record in records:
        verification = verify_episode(_release(record), config, deadline_seconds=deadline)
        message = (
            "production still serves the release"
            if verification.verified
            else f"drift: {verification.problem}"
        )
        ledger.event(record.run_id, "drift-check", message, verification.model_dump(mode="json"))
        outcomes.append(
            {
                "run_id": record.run_id,
                "verified": verification.verified,
                "problem": verification.problem,
            }
        )
        if not as_json:
            mark = "[green]✓[/]" if verification.verified else "[red]✗[/]"
            console.print(f"{mark} {record.run_id}: {message}")
    if as_json:
        _print_json(outcomes)
    elif not outcomes:
        console.print("no verified runs to re-check")
    if not all(o["verified"] for o in outcomes):
        raise typer.Exit(1)


@app.command()
def unpublish(
    run_id: Annotated[str, typer.Argument(help="The run whose episode comes down.")],
    config_file: ConfigOption = None,
) -> None:
    """Take a run's episode down: a new commit removes its files and feed entry, then
    production is polled until it no longer serves them."""
    from shipyard.podcast.release import unpublish_episode, verify_unpublished

    config = load_config(config_file)
    ledger = _ledger(config)
    record = ledger.get(run_id)
    release = _release(record)
    if not release.feed_url.startswith(config.publish.base_url or "\0"):
        raise ShipyardError(
            f"run {record.run_id} was published to {release.feed_url}, not to this "
            f"configuration's publish.base_url ({config.publish.base_url or 'unset'})",
            code="other-site",
            hint="pass -c with the configuration the run published with",
        )
    gone = unpublish_episode(release.guid, config, run_id=record.run_id)
    absent = verify_unpublished(gone, config)
    if not absent.verified:
        ledger.event(record.run_id, "unpublish-unverified", absent.problem)
        raise ShipyardError(
            f"removed in commit {gone.commit[:12]}, but production still "
            f"serves the episode: {absent.problem}",
            code="unverified",
            hint="check the site's deployment, then run unpublish again",
        )
    ledger.set_state(
        record.run_id,
        RunState.UNPUBLISHED,
        step="unpublish",
        reason=f"removed in commit {gone.commit[:12]}; production no longer serves it",
    )
    console.print(
        f"run {record.run_id}: unpublished (commit {gone.commit[:12]}); "
        "production no longer lists or serves the episode"
    )


def _release(record: RunRecord) -> Release:
    if "release" not in record.result:
        raise ShipyardError(
            f"run {record.run_id} has published nothing ({record.state.value})",
            code="not-published",
            run_id=record.run_id,
            hint="`shipyard runs --state verified` lists published runs",
        )
    return Release.model_validate(record.result["release"])


# --- process ------------------------------------------------------------------------------


@app.command()
def show(
    workflow: Annotated[str, typer.Argument(help="The workflow.")] = "paper-to-podcast",
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a workflow's process from its code: steps, owners, retries, gates, checks,
    reviewers and the production it publishes to."""
    from shipyard._workflow import get_workflow

    spec = get_workflow(workflow)
    config = load_config(config_file)
    steps = [
        {
            "step": s.name,
            "kind": s.kind,
            "owner": s.owner,
            "attempts": s.retry.attempts,
            "timeout": s.timeout,
            "does": s.description,
        }
        for s in spec.steps
    ]
    targets = {
        "reviewers": config.review.reviewers,
        "review_deadline_hours": config.review.deadline_hours,
        "auto_approve": config.review.auto_approve,
        "writers": config.script.writers,
        "checks": _check_names(),
        "voices": {h.name: h.voice for h in config.show.hosts},
        "publish_remote": config.publish.remote or "(not set: publish.remote)",
        "production_url": config.publish.base_url or "(not set: publish.base_url)",
        "verify_deadline_seconds": config.verify.deadline_seconds,
    }
    if as_json:
        _print_json(
            {
                "workflow": spec.name,
                "version": spec.version,
                "owner": spec.owner,
                "description": spec.description,
                "steps": steps,
                "targets": targets,
            }
        )
        return
    console.print(
        f"[bold]{spec.name}[/] v{spec.version} — {spec.description} (owner: {spec.owner})"
    )
    table = Table("#", "step", "kind", "owner", "tries", "does", box=None)
    for i, s in enumerate(spec.steps, 1):
        table.add_row(str(i), s.name, s.kind, s.owner, str(s.retry.attempts), s.description)
    console.print(table)
    for key, value in targets.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        if isinstance(value, dict):
            shown = ", ".join(f"{k}: {v}" for k, v in value.items())
        console.print(f"{key.replace('_', ' ')}: {shown}")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Runs this worker works on at once.")] = 2,
    config_file: ConfigOption = None,
) -> None:
    """Run as a worker: recover this executor's pending runs (crashed, or waiting for
    review) and take queued runs, until stopped with Ctrl-C or SIGTERM."""
    from shipyard import _engine

    runtime = _engine.launch(load_config(config_file), concurrency=concurrency)
    console.print(
        f"worker {runtime.executor_id} ready (database: {_redacted(runtime.config.database_url)})"
    )
    try:
        _wait_for_stop()
    finally:
        _engine.shutdown()
    console.print("worker stopped")


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: publish.base_url's).")] = None,
    config_file: ConfigOption = None,
) -> None:
    """Serve the local production's web root on loopback until stopped."""
    from urllib.parse import urlparse

    from shipyard._localprod import LocalProduction

    config = load_config(config_file)
    production = LocalProduction(production_root(config), branch=config.publish.branch)
    if not production.remote.is_dir():
        raise ShipyardError(
            "this project has no local production",
            hint="create it with `shipyard init --local-production`",
        )
    chosen = port or urlparse(config.publish.base_url).port or DEFAULT_PORT
    with production.serve(port=chosen) as server:
        console.print(f"serving {production.webroot} at {server.url} (Ctrl-C stops)")
        _wait_for_stop()


@app.command()
def doctor(config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check what shipyard needs: tools, voices, config, database, publishing target."""
    from shipyard._doctor import diagnose

    checks = diagnose(config_file)
    if as_json:
        _print_json([c.__dict__ for c in checks])
    else:
        for c in checks:
            mark = (
                "[green]ok[/]     "
                if c.ok
                else ("[red]missing[/]" if c.required else "[yellow]optional[/]")
            )
            console.print(
                f"{mark} {c.name}: {c.detail}"
                + ("" if c.ok or not c.fix else f"\n         fix: {c.fix}")
            )
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="Where the demo project goes.")] = Path("demo"),
    port: Annotated[int, typer.Option(help="Port of the local production's server.")] = (
        DEFAULT_PORT
    ),
    keep_serving: Annotated[
        bool, typer.Option(help="Keep the local production serving after the run, until Ctrl-C.")
    ] = False,
) -> None:
    """Run the flagship end to end on the embedded defaults: the demo paper to a verified
    episode in a local production (git remote, deploy hook, HTTP server on loopback)."""
    from shipyard import _engine
    from shipyard._localprod import LocalProduction
    from shipyard._runner import start_run
    from shipyard.podcast.demo_paper import make_demo_paper

    config = init_project(folder, local_production=True, port=port, auto_approve=True)
    paper = make_demo_paper(config.root / "paper.pdf")
    console.print(f"demo paper: {_here(paper)} (written for the demo, typeset in two columns)")
    production = LocalProduction(production_root(config), branch=config.publish.branch)
    with production.serve(port=port) as server:
        console.print(f"local production: git remote {production.remote}, served at {server.url}")
        runtime = _engine.launch(config)
        try:
            record = _follow(runtime.ledger, start_run("paper-to-podcast", paper))
        finally:
            _engine.shutdown()
        _summarise_demo(record, config)
        if keep_serving and record.state is RunState.VERIFIED:
            console.print("serving until Ctrl-C")
            _wait_for_stop()
    if record.state is not RunState.VERIFIED:
        raise typer.Exit(1)


def _summarise_demo(record: RunRecord, config: Config) -> None:
    _finish(record, as_json=False, exit_on_failure=False)
    if record.state is not RunState.VERIFIED:
        return
    me = _here(Path(sys.argv[0]))
    config_file = _here(config.root / "shipyard.toml")
    looks = [
        (f"{me} status {record.run_id} -c {config_file}", "the run's timeline"),
        (f"git -C {_here(production_root(config) / 'remote.git')} log", "the site's commits"),
        (f"{me} serve -c {config_file}", "serve the site again"),
    ]
    width = max(len(command) for command, _ in looks)
    console.print("\nwhere to look:")
    for command, what in looks:
        console.print(f"  {command:{width}}   # {what}")


def _here(path: Path) -> Path:
    """A path as short as it can be from the current folder (for commands to copy)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


# --- helpers ------------------------------------------------------------------------------


def _follow(
    ledger: Ledger,
    started: StartedRun,
    *,
    queued: bool = False,
    quiet: bool = False,
    until: Callable[[RunRecord], bool] | None = None,
) -> RunRecord:
    """Say which run this is, then print its progress until `until` (or its end)."""
    from shipyard._runner import wait_for

    if not quiet:
        verb = "started" if started.created else "found (same input and config)"
        where = " on the workers' queue" if queued and started.created else ""
        console.print(f"run [bold]{started.run_id}[/] {verb}{where}")
    return wait_for(ledger, started.run_id, on_change=_ProgressPrinter(quiet=quiet), until=until)


class _ProgressPrinter:
    """Prints each step attempt once when it starts and once when it ends."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.printed: dict[int, str] = {}
        self.state: RunState | None = None

    def __call__(self, record: RunRecord) -> None:
        if self.quiet:
            return
        for i, s in enumerate(record.steps):
            if self.printed.get(i) != s.status:
                self.printed[i] = s.status
                console.print(_step_line(s))
        if record.state is not self.state:
            self.state = record.state
            if record.state is RunState.AWAITING_REVIEW:
                console.print(
                    f"  [yellow]awaiting review[/]: {record.reason}; decide with "
                    f"`shipyard review show {record.run_id}`"
                )


def _step_line(s: StepRecord) -> str:
    took = "" if s.seconds is None else f" {s.seconds:.2f} s"
    attempt = f" (try {s.attempt})" if s.attempt > 1 else ""
    error = f" — {s.error}" if s.error and s.status != "ok" else ""
    return f"  {_STATUS_MARK.get(s.status, s.status)} {s.step}{attempt}{took}{error}"


def _finish(record: RunRecord, as_json: bool, *, exit_on_failure: bool = True) -> None:
    if as_json:
        _print_json(record.to_json())
    else:
        console.print(
            f"run {record.run_id}: {_state(record.state)}"
            + (f" — {record.reason}" if record.reason else "")
        )
        if "episode_url" in record.result:
            console.print(f"episode: {record.result['episode_url']}")
            console.print(f"feed:    {record.result['feed_url']}")
    ok = record.state in (RunState.VERIFIED, RunState.AWAITING_REVIEW, RunState.QUEUED)
    if exit_on_failure and not ok:
        raise typer.Exit(1)


def _ledger(config: Config) -> Ledger:
    return Ledger.existing(config.database_url)


def _state(state: RunState) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state.value}[/]" if style else state.value


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _redacted(url: str) -> str:
    from shipyard._publish import redact

    return redact(url)


def _check_names() -> list[str]:
    """The guardrail checks, read from the code: the `_check_NAME` calls in check_script."""
    import ast
    import inspect

    from shipyard.podcast import checks

    tree = ast.parse(inspect.getsource(checks.check_script))
    return [
        node.func.id.removeprefix("_check_")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.startswith("_check_")
    ]


def _wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM arrives."""
    stopped = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stopped.wait(0.2):  # wakes now and then, so the handler gets to run
        pass
