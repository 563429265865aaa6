"""Commands for the review console: `console` serves it; `user add|list|remove` manage who
may sign in to it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard._config import Config, load_config
from shipyard._errors import ShipyardError
from shipyard._ledger import Ledger
from shipyard.cli import ConfigOption, app
from shipyard.cli._output import console

if TYPE_CHECKING:
    from shipyard.console import Accounts

user_app = typer.Typer(help="People who may sign in to the console.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@app.command("console")
def console_command(
    port: Annotated[int | None, typer.Option(help="Port (default: console.port; 0: any).")] = None,
    host: Annotated[str | None, typer.Option(help="Address (default: console.host).")] = None,
    config_file: ConfigOption = None,
) -> None:
    """Serve the review console (runs, reviews, decisions) until stopped."""
    config = load_config(config_file)
    serve_console(
        config, host or config.console.host, config.console.port if port is None else port
    )


def serve_console(config: Config, host: str, port: int) -> None:
    from shipyard._serving import listen, serve
    from shipyard.console import create_app

    listener = listen(host, port)
    where = f"[{host}]" if ":" in host else host
    console.print(f"console at http://{where}:{listener.getsockname()[1]}/ (Ctrl-C stops)")
    sys.stdout.flush()
    serve(create_app(config), listener)


@contextmanager
def _accounts(config_file: Path | None) -> Iterator[Accounts]:
    """The project's accounts (in the run ledger's database, made if need be)."""
    from shipyard.console import Accounts

    config = load_config(config_file)
    config.state_folder()  # a SQLite database needs its folder
    ledger = Ledger(config.database_url)
    try:
        yield Accounts(ledger.engine)
    finally:
        ledger.close()


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[
        str, typer.Option(help="reviewer (decides the runs whose gate names them) or admin.")
    ] = "reviewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    config_file: ConfigOption = None,
) -> None:
    """Add a person who may sign in (or give one a new password and role)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with _accounts(config_file) as accounts:
        user = accounts.add(name, role, password)
    console.print(f"{user.name} ({user.role}) may sign in to the console", markup=False)


@user_app.command("list")
def user_list(config_file: ConfigOption = None) -> None:
    """Who may sign in, and as what."""
    with _accounts(config_file) as accounts:
        users = accounts.users()
    for user in users:
        typer.echo(f"{user.name}\t{user.role}")
    if not users:
        console.print("nobody yet: `shipyard user add NAME --role reviewer`")


@user_app.command("remove")
def user_remove(name: str, config_file: ConfigOption = None) -> None:
    """Take away a person's sign-in (and end their sessions)."""
    with _accounts(config_file) as accounts:
        removed = accounts.remove(name)
    if not removed:
        raise ShipyardError(f"no user is named {name!r}", hint="`shipyard user list` shows them")
    console.print(f"{name} may no longer sign in", markup=False)
