"""Commands for projects and processes: init, doctor, show, worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from shipyard._config import load_config
from shipyard._project import DEFAULT_PORT, init_project
from shipyard._redact import redact
from shipyard.cli import ConfigOption, JsonOption, app
from shipyard.cli._output import (
    console,
    print_json,
    wait_for_stop,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette


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


@app.command()
def doctor(config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Check what shipyard needs: its tools, each enabled workflow's, the config, the database
    and the publishing target."""
    from shipyard._doctor import diagnose

    checks = diagnose(config_file)
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        for c in checks:
            mark = (
                "[green]ok[/]     "
                if c.ok
                else ("[red]missing[/]" if c.required else "[yellow]optional[/]")
            )
            console.print(
                f"{mark} {escape(c.name)}: {escape(c.detail)}"
                + ("" if c.ok or not c.fix else f"\n         fix: {escape(c.fix)}")
            )
    if any(c.required and not c.ok for c in checks):
        raise typer.Exit(1)


@app.command()
def show(
    workflow: Annotated[str, typer.Argument(help="The workflow, e.g. paper-to-podcast.")],
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Print a workflow's process from its code: steps, owners, retries, gates, checks,
    reviewers and the production it publishes to."""
    from shipyard._workflow import get_workflow

    config = load_config(config_file)
    spec = get_workflow(workflow, config)
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
    owners = sorted({spec.owner, *(s.owner for s in spec.steps)})
    contacts = {
        name: [
            *([f"webhook {redact(c.webhook)}"] if c.webhook else []),
            *(f"e-mail {a}" for a in c.email),
        ]
        for name in owners
        if (c := config.owners.get(name)) is not None
    }
    targets = {
        "input": spec.input_help or spec.accepts,
        "settings_table": spec.table if spec.settings is not None else "(none)",
        "run_options": {f"--{name}": f"{spec.table}.{key}" for name, key in spec.options.items()}
        or "(none)",
        "reviewers": config.review.reviewers,
        "review_deadline_hours": config.review.deadline_hours,
        "auto_approve": config.review.auto_approve,
        **(spec.describe(config) if spec.describe is not None else {}),
        "publish_remote": config.publish.remote or "(not set: publish.remote)",
        "production_url": config.publish.base_url or "(not set: publish.base_url)",
        "verify_deadline_seconds": config.verify.deadline_seconds,
    }
    if as_json:
        print_json(
            {
                "workflow": spec.name,
                "version": spec.version,
                "owner": spec.owner,
                "description": spec.description,
                "steps": steps,
                "owners": {name: contacts.get(name, []) for name in owners},
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
    for name in owners:
        reach = ", ".join(contacts.get(name, [])) or "no contact: add [owners." + name + "]"
        console.print(f"owner {name}: {reach}", markup=False)
    for key, value in targets.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        if isinstance(value, dict):
            shown = ", ".join(f"{k}: {v}" for k, v in value.items())
        console.print(f"{key.replace('_', ' ')}: {shown}")


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Runs this worker works on at once.")] = 2,
    health_port: Annotated[
        int | None,
        typer.Option(
            help="Serve GET /healthz on this port (0: any free one) for a supervisor's "
            "liveness probe: 200 while the worker is well, 503 with its problems otherwise.",
        ),
    ] = None,
    health_host: Annotated[str, typer.Option(help="Where /healthz listens.")] = "127.0.0.1",
    config_file: ConfigOption = None,
) -> None:
    """Run as a worker: recover this executor's pending runs (crashed, or waiting for
    review), adopt dead workers' runs (PostgreSQL) and take queued runs, until stopped with
    Ctrl-C or SIGTERM."""
    from shipyard import _engine
    from shipyard._serving import serve_in_thread

    runtime = _engine.launch(load_config(config_file), concurrency=concurrency, adopt=True)
    health = ""
    if health_port is not None:
        server, _thread, port = serve_in_thread(_health_app(), health_host, health_port)
        health = f", health: http://{health_host}:{port}/healthz"
    console.print(
        f"worker {runtime.executor_id} ready (database: {redact(runtime.config.database_url)}"
        f"{health})"
    )
    for run_id in runtime.recovered:
        console.print(f"recovering run {run_id}: it goes on from its last finished step")
    try:
        wait_for_stop()
    finally:
        if health_port is not None:
            server.should_exit = True
        _engine.shutdown()
    console.print("worker stopped")


def _health_app() -> Starlette:
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from shipyard import _engine

    async def healthz(request: Request) -> JSONResponse:
        ok, report = await run_in_threadpool(_engine.health)
        return JSONResponse(report, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/healthz", healthz)])
