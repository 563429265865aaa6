"""What the commands print, and how they follow a run: shared by every command module, and
by the commands a workflow plugin contributes."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column

from shipyard._config import Config
from shipyard._errors import ShipyardError
from shipyard._ledger import Ledger, RunRecord, RunState, StepRecord

if TYPE_CHECKING:
    from shipyard._runner import StartedRun

__all__ = [
    "STATUS_MARK",
    "ExitCode",
    "console",
    "exit_code_for",
    "finish",
    "follow",
    "here",
    "ledger_for",
    "print_json",
    "state_text",
    "wait_for_stop",
    "when",
    "whole",
]

console = Console(highlight=False, soft_wrap=True)  # never break a URL across lines
STATUS_MARK = {
    "ok": "[green]✓[/]",
    "running": "[cyan]…[/]",
    "retrying": "[yellow]↻[/]",
    "failed": "[red]✗[/]",
    "interrupted": "[yellow]⚡[/]",
}
_STATE_STYLE = {
    RunState.VERIFIED: "green",
    RunState.SUCCEEDED: "green",
    RunState.FAILED: "red",
    RunState.UNVERIFIED: "red",
    RunState.REJECTED: "yellow",
    RunState.AWAITING_REVIEW: "yellow",
}


def follow(
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
                    f"  [yellow]awaiting review[/]: {escape(record.reason)}; decide with "
                    f"`shipyard review show {record.run_id}`"
                )
                _why_held(record)


def _why_held(record: RunRecord) -> None:
    """The error flags that hold a run at its review, and what can be done about them."""
    from shipyard._runner import review_request

    try:
        flags = review_request(record)["flags"]
    except ShipyardError:
        return
    errors = [f for f in flags if f.get("severity") == "error"]
    if not errors:
        return
    for flag in errors:
        console.print(f"  [red]error[/] {escape(flag['check'])}: {escape(flag['message'])}")
    console.print(
        "  a person decides now: in the console, or `shipyard review approve "
        f"{record.run_id} --as NAME --override REASON`; or fix what the flags say (settings "
        "included) and run again"
    )


def _step_line(s: StepRecord) -> str:
    took = "" if s.seconds is None else f" {s.seconds:.2f} s"
    attempt = f" (try {s.attempt})" if s.attempt > 1 else ""
    error = f" — {escape(s.error)}" if s.error and s.status != "ok" else ""
    return f"  {STATUS_MARK.get(s.status, s.status)} {escape(s.step)}{attempt}{took}{error}"


class ExitCode(IntEnum):
    """What every command's exit status means (docs/cli.md#exit-codes)."""

    OK = 0  # done: the run ended verified (or succeeded), or the command did what it was asked
    RUN_ENDED_BADLY = 1  # the run ended failed, rejected, unverified or cancelled
    CONFIG = 2  # the configuration (shipyard.toml, the environment) is wrong
    REFUSED = 3  # refused: bad input, a run or option that does not exist, a decision refused
    WAITING = 4  # the run has not ended: it waits for a review or a worker (--detach)
    INTERNAL = 70  # an unexpected error (a bug): one line, the traceback in a file
    INTERRUPTED = 130  # stopped with Ctrl-C


def exit_code_for(state: RunState) -> ExitCode:
    if state in (RunState.VERIFIED, RunState.SUCCEEDED):
        return ExitCode.OK
    return ExitCode.RUN_ENDED_BADLY if state.finished else ExitCode.WAITING


def finish(record: RunRecord, as_json: bool, *, exit_on_failure: bool = True) -> None:
    if as_json:
        print_json(record.to_json())
    else:
        console.print(
            f"run {record.run_id}: {state_text(record.state)}"
            + (f" — {escape(record.reason)}" if record.reason else "")
        )
        for key, value in record.result.items():  # where production serves the result
            if key.endswith("_url") and isinstance(value, str):
                console.print(
                    f"{key.removesuffix('_url').replace('_', ' ')}: {value}", markup=False
                )
    code = exit_code_for(record.state)
    if exit_on_failure and code is not ExitCode.OK:
        raise typer.Exit(code)


def whole(header: str, values: list[str]) -> Column:
    """A table column whose values are never cut: ids people copy."""
    return Column(header, no_wrap=True, min_width=max([len(header), *map(len, values)]))


def ledger_for(config: Config) -> Ledger:
    return Ledger.existing(config.database_url)


def state_text(state: RunState) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state.value}[/]" if style else state.value


def workflow_text(name: str, version: str = "") -> str:
    """A run's workflow (and version), marked when no workflow of that name is installed and
    enabled here: its runs are still listed and shown, and go on once it is back."""
    from shipyard._workflow import workflows

    shown = f"{name} v{version}" if version else name
    return shown if name in workflows() else f"{shown} [yellow](not installed)[/]"


def when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def here(path: Path) -> Path:
    """A path as short as it can be from the current folder (for commands to copy)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM arrives."""
    stopped = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stopped.wait(0.2):  # wakes now and then, so the handler gets to run
        pass
