"""`shipyard demo`: the flagship end to end on the embedded defaults, in a local production."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlparse

import typer

from shipyard import DEFAULT_PORT, RunState, ShipyardError, production_root
from shipyard.cli import app, console, finish, follow, here, wait_for_stop

if TYPE_CHECKING:
    from shipyard import Config, RunRecord


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
    # the engine (DBOS) loads when the demo runs, not with every command
    from shipyard import LocalProduction, init_project, launch, load_config, shutdown, start_run
    from shipyard_podcast.source.demo_paper import make_demo_paper

    config = init_project(folder, local_production=True, port=port, auto_approve=True)
    if urlparse(config.publish.base_url).port != port:  # the demo's own project, moved
        file = config.root / "shipyard.toml"
        text = re.sub(
            r'(?m)^base_url = ".*"$', f'base_url = "http://127.0.0.1:{port}/"', file.read_text()
        )
        file.write_text(text, encoding="utf-8")
        config = load_config(file)
    paper = make_demo_paper(config.root / "paper.pdf")
    console.print(f"demo paper: {here(paper)} (written for the demo, typeset in two columns)")
    production = LocalProduction(production_root(config), branch=config.publish.branch)
    try:
        serving = production.serve(port=port)
    except ShipyardError as exc:
        if exc.code != "port-busy":
            raise
        raise ShipyardError(
            f"port {port} is taken: the demo's site cannot be served there",
            code="port-busy",
            hint="choose another: `make demo PORT=8800` (or `shipyard demo --port 8800`)",
        ) from None
    with serving as server:
        console.print(f"local production: git remote {production.remote}, served at {server.url}")
        runtime = launch(config)
        try:
            record = follow(runtime.ledger, start_run("paper-to-podcast", paper))
        finally:
            shutdown()
        _summarise_demo(record, config)
        if keep_serving and record.state is RunState.VERIFIED:
            console.print("serving until Ctrl-C")
            wait_for_stop()
    if record.state is not RunState.VERIFIED:
        raise typer.Exit(1)


def _summarise_demo(record: RunRecord, config: Config) -> None:
    finish(record, as_json=False, exit_on_failure=False)
    if record.state is not RunState.VERIFIED:
        return
    me = here(Path(sys.argv[0]))
    config_file = here(config.root / "shipyard.toml")
    looks = [
        (f"{me} status {record.run_id} -c {config_file}", "the run's timeline"),
        (f"git -C {here(production_root(config) / 'remote.git')} log", "the site's commits"),
        (f"{me} serve -c {config_file}", "serve the site again"),
    ]
    width = max(len(command) for command, _ in looks)
    console.print("\nwhere to look:")
    for command, what in looks:
        console.print(f"  {command:{width}}   # {what}")
