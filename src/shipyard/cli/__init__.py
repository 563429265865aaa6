"""The `shipyard` command: a thin layer over the library.

Each command group lives in its own module and registers itself on `app`; a workflow plugin
adds its own commands the same way, from a module named by an entry point in the
`shipyard.commands` group (the flagship's: `extract`, `script`, `check`, `validate-feed`,
`unpublish`, `demo`). The library raises; this layer turns a ShipyardError into one clear
line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import importlib
import os
import sys
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from shipyard._errors import ShipyardError
from shipyard.cli._output import (
    console,
    finish,
    follow,
    here,
    ledger_for,
    print_json,
    wait_for_stop,
)

__all__ = [
    "COMMANDS_GROUP",
    "ConfigOption",
    "JsonOption",
    "app",
    "console",
    "finish",
    "follow",
    "here",
    "ledger_for",
    "main",
    "print_json",
    "wait_for_stop",
]

COMMANDS_GROUP = "shipyard.commands"  # modules of plugins' commands

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="SHIPYARD_CONFIG",
        show_envvar=True,
        help="The project's shipyard.toml (default: found in this folder or a parent).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]

app = typer.Typer(
    name="shipyard",
    help="AI workflows that ship: durable, reviewed, published and verified.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from shipyard.cli import _commands  # noqa: F401

    for entry in entry_points(group=COMMANDS_GROUP):
        importlib.import_module(entry.module)


class LogFormat(StrEnum):
    human = "human"
    json = "json"


@app.callback()
def _root(
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            help="How logs on stderr look: human lines, or one JSON object a line (with the "
            "run id, step and attempt). Overrides [logs] format; processes started by this "
            "one inherit it.",
        ),
    ] = None,
) -> None:
    """AI workflows that ship: durable, reviewed, published and verified."""
    if log_format is not None:
        os.environ["SHIPYARD_LOG_FORMAT"] = log_format.value


def main() -> None:
    _register()
    code: int | str | None = 0
    try:
        app()
    except ShipyardError as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            typer.echo(f"  fix: {exc.hint}", err=True)
        code = 2 if exc.code == "config" else 1
    except SystemExit as exc:
        code = exc.code
    finally:
        from shipyard import _engine

        if _engine.launched_in_this_process():
            from shipyard._telemetry import shutdown_tracing

            shutdown_tracing()  # spans still buffered go out before the process ends
            # A run that waits (for a review, say) holds a DBOS thread that shutdown cannot
            # wake, and Python would join it at exit. Its wait is durable in the database, so
            # end the process here, as a crash would, after the output is out.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 1)
    sys.exit(code)
