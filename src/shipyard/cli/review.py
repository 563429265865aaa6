"""Commands for review: review list, show, approve, save, request-changes, reject."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from shipyard._config import load_config
from shipyard._errors import ShipyardError
from shipyard._ledger import RunState
from shipyard.cli import ConfigOption, JsonOption, app
from shipyard.cli._output import (
    console,
    ledger_for,
    print_json,
    when,
    whole,
)

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


@review_app.command("list")
def review_list(config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The runs waiting for a review decision."""
    from shipyard._runner import review_request

    ledger = ledger_for(load_config(config_file))
    waiting = [ledger.get(r.run_id) for r in ledger.runs(states=[RunState.AWAITING_REVIEW])]
    rows = [review_request(r) | {"run_id": r.run_id, "workflow": r.workflow} for r in waiting]
    if as_json:
        print_json(rows)
        return
    ids = whole("run", [row["run_id"] for row in rows])
    table = Table(ids, "workflow", "gate", "reviewers", "deadline", "flags", "title", box=None)
    for row in rows:
        table.add_row(
            row["run_id"],
            row["workflow"],
            row["gate"],
            ", ".join(row["reviewers"]),
            when(row["deadline"]),
            str(len(row["flags"])),
            escape(str(row["payload"].get("title", ""))),
        )
    console.print(table if rows else "nothing waits for review")


@review_app.command("show")
def review_show(run_id: str, config_file: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show what waits for review (as its workflow presents it), with the checks' flags."""
    from shipyard._runner import review_request

    request = review_request(ledger_for(load_config(config_file)).get(run_id))
    if as_json:
        print_json(request)
        return
    round_ = f"round {request.get('round', 1)} of at most {request.get('max_rounds', '?')}"
    console.print(f"[bold]{request['gate']}[/] review, {round_}")
    console.print(request["text"] or json.dumps(request["payload"], indent=2), markup=False)
    if request.get("diff"):
        console.print("changes since the last round:")
        console.print(request["diff"], markup=False)
    for flag in request["flags"]:
        where = f" (turn {flag['turn'] + 1})" if flag.get("turn") is not None else ""
        console.print(
            f"[yellow]{flag['severity']}[/] {flag['check']}{where}: {escape(flag['message'])}"
        )
    console.print(f"decide: shipyard review approve {run_id} --as {request['reviewers'][0]}")


@review_app.command("approve")
def review_approve(
    run_id: str,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="A note kept with the decision.")] = "",
    edited: Annotated[
        Path | None,
        typer.Option(
            "--edited",
            help="Approve this edited payload instead (JSON, as `review show --json` prints "
            "under 'payload'); the workflow's checks run on it again before it counts.",
        ),
    ] = None,
    override: Annotated[
        str,
        typer.Option(help="A written reason to go on although error flags remain."),
    ] = "",
    config_file: ConfigOption = None,
) -> None:
    """Approve what waits for review (optionally an edited version); the run goes on."""
    decision: dict[str, Any] = {
        "action": "edit" if edited else "approve",
        "reviewer": reviewer,
        "comment": comment,
        "override": override,
    }
    if edited is not None:
        limit = load_config(config_file).review.max_edit_bytes
        decision["payload"] = _read_json(edited, limit)
    _decide(config_file, run_id, decision)


@review_app.command("save")
def review_save(
    run_id: str,
    reviewer: ReviewerOption,
    edited: Annotated[
        Path,
        typer.Option(
            "--edited", help="The edited payload (JSON, as `review show --json` prints it)."
        ),
    ],
    revision: Annotated[
        int | None,
        typer.Option(help="The revision you edited; refused if another came since."),
    ] = None,
    config_file: ConfigOption = None,
) -> None:
    """Save an edited payload as a new revision: checked again; the run stays in review."""
    limit = load_config(config_file).review.max_edit_bytes
    decision = {
        "action": "save",
        "reviewer": reviewer,
        "payload": _read_json(edited, limit),
        "revision": revision,
    }
    _decide(config_file, run_id, decision)


@review_app.command("request-changes")
def review_request_changes(
    run_id: str,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="What to change.")],
    config_file: ConfigOption = None,
) -> None:
    """Ask the workflow to revise what waits for review; the revision comes back to review."""
    decision = {"action": "request_changes", "reviewer": reviewer, "comment": comment}
    _decide(config_file, run_id, decision)


@review_app.command("reject")
def review_reject(
    run_id: str,
    reviewer: ReviewerOption,
    comment: Annotated[str, typer.Option(help="Why: kept with the decision.")] = "",
    config_file: ConfigOption = None,
) -> None:
    """Reject what waits for review; the run ends `rejected` and nothing is published."""
    _decide(config_file, run_id, {"action": "reject", "reviewer": reviewer, "comment": comment})


def _decide(config_file: Path | None, run_id: str, decision: dict[str, Any]) -> None:
    from shipyard._runner import decide, review_request

    record = decide(load_config(config_file), run_id, decision)
    if decision["action"] in ("save", "edit"):
        checked = review_request(record)
        flags = checked["flags"] if decision["action"] == "save" else []
        for flag in flags:
            console.print(f"  {flag['severity']} {flag['check']}: {flag['message']}", markup=False)
        if decision["action"] == "save":
            errors = sum(f["severity"] == "error" for f in flags)
            console.print(
                f"revision {checked['revision']} saved and checked: {errors} error flag(s)"
            )
    console.print(
        f"{decision['action'].replace('_', ' ')} sent to {record.run_id}; it goes on in the "
        "process that runs it (or the next `shipyard worker`)"
    )


def _read_json(path: Path, limit: int) -> Any:
    """The edit in `path`, refused unread when it is larger than `limit` bytes."""
    try:
        if (size := path.stat().st_size) > limit:
            raise ShipyardError(
                f"{path} is {size:,} bytes, over review.max_edit_bytes ({limit:,})",
                code="bad-edit",
                hint="edit less, or raise review.max_edit_bytes in shipyard.toml",
            )
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ShipyardError(
            f"cannot read {path} as JSON: {exc}",
            code="bad-edit",
            hint="`shipyard review show RUN --json` prints the payload to start from",
        ) from None
