"""Commands for production: verify (drift checks), serve."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from shipyard._config import Config, load_config
from shipyard._errors import ShipyardError
from shipyard._ledger import Ledger, RunRecord, RunState
from shipyard._project import DEFAULT_PORT, production_root
from shipyard.cli import ConfigOption, JsonOption, app
from shipyard.cli._output import (
    console,
    ledger_for,
    print_json,
)


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
    from shipyard._runner import recheck

    config = load_config(config_file)
    ledger = ledger_for(config)
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
        verification = recheck(config, record, deadline)
        message = (
            "production still serves the release"
            if verification.verified
            else f"drift: {verification.problem}"
        )
        ledger.event(record.run_id, "drift-check", message, verification.model_dump(mode="json"))
        if not verification.verified:
            _tell_of_drift(config, ledger, record, verification.problem)
        outcomes.append(
            {
                "run_id": record.run_id,
                "verified": verification.verified,
                "problem": verification.problem,
            }
        )
        if not as_json:
            mark = "[green]✓[/]" if verification.verified else "[red]✗[/]"
            console.print(f"{mark} {record.run_id}: {escape(message)}")
    if as_json:
        print_json(outcomes)
    elif not outcomes:
        console.print("no verified runs to re-check")
    if not all(o["verified"] for o in outcomes):
        raise typer.Exit(1)


def _tell_of_drift(config: Config, ledger: Ledger, record: RunRecord, problem: str) -> None:
    """The workflow's owner is told, once per run and problem, however often cron checks."""
    from shipyard._notify import Notice, tell_owner
    from shipyard._workflow import get_workflow

    notice = Notice(
        event="drift",
        run_id=record.run_id,
        workflow=record.workflow,
        message=f"production no longer serves what run {record.run_id} verified: {problem}",
        todo="see what changed on the site; publish again, or `shipyard unpublish` it",
    )
    sent = tell_owner(config, ledger, get_workflow(record.workflow, config).owner, notice)
    if sent:
        ledger.event(record.run_id, "owner-notified", f"drift told ({', '.join(sent)})")


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: publish.base_url's).")] = None,
    console_port: Annotated[
        int | None, typer.Option(help="The console's port (default: console.port; 0: any).")
    ] = None,
    config_file: ConfigOption = None,
) -> None:
    """Serve the local production's web root with the Prometheus metrics at /metrics, and the
    review console on a port of its own, on loopback until stopped. The site's files are
    untrusted (anyone who can push to the site repository writes them), so they never share
    an origin with the console, whose pages hold a reviewer's session."""
    from urllib.parse import urlparse

    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    from shipyard._localprod import LocalProduction, site_app
    from shipyard._prometheus import metrics_endpoint
    from shipyard._serving import listen, serve_in_thread
    from shipyard._serving import serve as serve_app
    from shipyard.console import create_app

    config = load_config(config_file)
    production = LocalProduction(production_root(config), branch=config.publish.branch)
    if not production.remote.is_dir():
        raise ShipyardError(
            "this project has no local production",
            hint="create it with `shipyard init --local-production`",
        )
    chosen = urlparse(config.publish.base_url).port or DEFAULT_PORT if port is None else port
    listener = listen("127.0.0.1", chosen)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    console_app = create_app(config)
    wanted = config.console.port if console_port is None else console_port
    *_, bound = serve_in_thread(console_app, "127.0.0.1", wanted)
    app = Starlette(
        routes=[
            Route("/metrics", metrics_endpoint(console_app.state.console.ledger)),
            Mount("/", site_app(production.serving_root)),
        ]
    )
    console.print(
        f"serving {production.webroot} at {url}, metrics at {url}metrics, "
        f"the console at http://127.0.0.1:{bound}/"
    )
    console.print("(Ctrl-C stops)")
    sys.stdout.flush()
    serve_app(app, listener)
