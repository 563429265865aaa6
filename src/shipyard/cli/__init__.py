"""The `shipyard` command: a thin layer over the library.

Each command group lives in its own module and registers itself on `app`. The library raises;
this layer turns a ShipyardError into one clear line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard._errors import ShipyardError

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
PasswordOption = Annotated[
    str | None,
    typer.Option(
        envvar="SHIPYARD_PDF_PASSWORD", show_envvar=True, help="Password of a protected PDF."
    ),
]

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


@app.callback()
def _root() -> None:
    """AI workflows that ship: durable, reviewed, published and verified."""


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
            # A run that waits (for a review, say) holds a DBOS thread that shutdown cannot
            # wake, and Python would join it at exit. Its wait is durable in the database, so
            # end the process here, as a crash would, after the output is out.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 1)
    sys.exit(code)
