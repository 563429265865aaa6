"""The `shipyard` command: a thin layer over the library.

Each command group lives in its own module and registers itself on `app`; a workflow plugin
adds its own commands the same way, from a module named by an entry point in the
`shipyard.commands` group (the flagship's: `extract`, `script`, `check`, `validate-feed`,
`unpublish`, `demo`). The library raises; this layer turns a ShipyardError into one clear
line on stderr, and every command exits with a code from one table (`ExitCode`): a script
can trust it, and no exception ever ends in 0.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from shipyard._errors import ShipyardError
from shipyard.cli._output import (
    ExitCode,
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
    "ExitCode",
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


def _register(argv: Sequence[str] = ()) -> None:
    """Add the core's commands and those of the plugins the project enables."""
    from shipyard._config import enabled_plugins
    from shipyard.cli import _commands  # noqa: F401  (imported to add its commands to `app`)

    enabled = enabled_plugins(_config_named(argv))
    for entry in entry_points(group=COMMANDS_GROUP):
        if enabled is None or entry.name in enabled:
            importlib.import_module(entry.module)


def _config_named(argv: Sequence[str]) -> Path | None:
    """The file `--config`/`-c` or SHIPYARD_CONFIG names, before typer parses the line."""
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.removeprefix("--config="))
    named = os.environ.get("SHIPYARD_CONFIG")
    return Path(named) if named else None


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
    code: int | str | None = ExitCode.OK
    try:
        _register(sys.argv[1:])
        returned = app(standalone_mode=False)  # a command's typer.Exit(code) comes back here
        code = returned if isinstance(returned, int) else ExitCode.OK
    except ShipyardError as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            typer.echo(f"  fix: {exc.hint}", err=True)
        code = ExitCode.CONFIG if exc.code == "config" else ExitCode.REFUSED  # ConfigError's
    except SystemExit as exc:
        code = exc.code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("\ninterrupted", err=True)
        code = ExitCode.INTERRUPTED
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:  # a usage mistake: an unknown option, a bad value
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            typer.secho(f"error: {exc}", fg="red", err=True)
        code = ExitCode.REFUSED
    except Exception as exc:  # noqa: BLE001  (a bug, or what nobody foresaw: said, logged, never 0)
        typer.secho(f"internal error: {_unexpected(exc)}", fg="red", err=True)
        code = ExitCode.INTERNAL
    finally:
        engine = sys.modules.get("shipyard._engine")  # None: this command launched none
        if engine is not None and engine.launched_in_this_process():
            from shipyard._telemetry import shutdown_tracing

            shutdown_tracing()  # spans still buffered go out before the process ends
            # A run that waits (for a review, say) holds a DBOS thread that shutdown cannot
            # wake, and Python would join it at exit. Its wait is durable in the database, so
            # end the process here, as a crash would, after the output is out.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else ExitCode.REFUSED)
    sys.exit(code)


def _unexpected(exc: BaseException) -> str:
    """One line for an unexpected exception: what, where, and the file its traceback went to."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" in {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    folder = Path(tempfile.gettempdir())
    logged = folder / f"shipyard-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    logged.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    return f"{type(exc).__name__}: {exc}{where}; the traceback is in {logged} (please report it)"
