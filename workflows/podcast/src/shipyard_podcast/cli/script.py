"""`shipyard script PAPER` and `shipyard check SCRIPT.json PAPER`: write and check a
script without making audio. Both exit 1 while an error-severity flag remains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli import ConfigOption, JsonOption, app
from shipyard_podcast.cli.source import PaperArgument, PasswordOption

if TYPE_CHECKING:
    from shipyard_podcast.models import Flag, Script
    from shipyard_podcast.script.chain import ScriptOutcome


@app.command()
def script(
    paper: PaperArgument,
    as_json: JsonOption = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Also write the script as JSON to this file (for `shipyard check`).",
            show_default=False,
        ),
    ] = None,
    password: PasswordOption = None,
    language: Annotated[
        str | None,
        typer.Option(help="The episode's language (BCP-47); default: the show's, or the paper's."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Extract a paper, write its two-host script through the writer chain, and check it.

    No audio is made. Prints the dialogue, every flag and every writer's attempt with its
    tokens and cost (--json: the whole outcome). Exits 1 when an error-severity flag remains.
    """
    from shipyard import load_config
    from shipyard_podcast.script.chain import write_script
    from shipyard_podcast.settings import (
        TABLE,
        PodcastSettings,
        podcast_settings,
        provider_quotas,
    )
    from shipyard_podcast.source.remote import read_paper

    loaded = load_config(config)
    if language:
        loaded = loaded.with_options(TABLE, PodcastSettings, {"show.language": language})
    settings = podcast_settings(loaded)
    outcome = write_script(
        read_paper(paper, loaded, settings.source, password=password),
        settings,
        quotas=provider_quotas(settings, loaded),
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(outcome.script.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if as_json:
        typer.echo(outcome.model_dump_json(indent=2))
    else:
        _print_script(outcome.script)
        _print_flags(outcome.flags)
        _print_attempts(outcome)
    _exit_on_errors(outcome.flags)


@app.command()
def check(
    script_file: Annotated[
        Path,
        typer.Argument(
            metavar="SCRIPT",
            help="A script as JSON (from `shipyard script --out`).",
            show_default=False,
        ),
    ],
    paper: PaperArgument,
    as_json: JsonOption = False,
    password: PasswordOption = None,
    config: ConfigOption = None,
) -> None:
    """Run every script check on a script (an edited one, say) against its paper.

    Prints each flag with its check, severity, turn, span and evidence. Exits 1 when an
    error-severity flag is found.
    """
    from shipyard import load_config
    from shipyard_podcast.script.checks import check_script
    from shipyard_podcast.settings import podcast_settings
    from shipyard_podcast.source.remote import read_paper

    loaded = load_config(config)
    settings = podcast_settings(loaded)
    written = _read_script(script_file)
    flags = check_script(
        written, read_paper(paper, loaded, settings.source, password=password), settings
    )
    if as_json:
        typer.echo(json.dumps([f.model_dump(mode="json") for f in flags], indent=2))
    else:
        _print_flags(flags)
    _exit_on_errors(flags)


def _read_script(path: Path) -> Script:
    from pydantic import ValidationError

    from shipyard import ShipyardError
    from shipyard_podcast.models import Script

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShipyardError(
            f"no such script file: {path}",
            code="script-file",
            hint="write one with `shipyard script PAPER.pdf --out FILE`",
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ShipyardError(
            f"{path} is not JSON: {exc}",
            code="script-file",
            hint="give the file `shipyard script --out` wrote",
        ) from None
    if isinstance(data, dict) and isinstance(data.get("script"), dict):
        data = data["script"]  # the whole outcome of `shipyard script --json`
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ShipyardError(
            f"{path} is not a script: {where}: {first['msg']}",
            code="script-file",
            hint="give the file `shipyard script --out` wrote",
        ) from None


def _exit_on_errors(flags: list[Flag]) -> None:
    if any(f.severity == "error" for f in flags):
        raise typer.Exit(1)


def _print_script(written: Script) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    minutes = written.estimated_seconds / 60
    console.print(f"{written.title}", style="bold", markup=False)
    console.print(
        f"{written.show} · written by {written.writer} · {written.words} words, "
        f"about {minutes:.1f} min",
        markup=False,
    )
    for turn in written.turns:
        if turn.chapter:
            console.print(f"\n## {turn.chapter}", style="bold cyan", markup=False)
        console.print(f"{turn.speaker}: ", style="bold", end="", markup=False)
        console.print(turn.text, markup=False)


def _print_flags(flags: list[Flag]) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if not flags:
        console.print("\nchecks: all passed", style="green")
        return
    errors = sum(f.severity == "error" for f in flags)
    console.print(f"\nchecks: {errors} error(s), {len(flags) - errors} warning(s)", style="bold")
    for f in flags:
        where = f"turn {f.turn}" if f.turn is not None else "script"
        style = "red" if f.severity == "error" else "yellow"
        console.print(
            f"  {f.severity:<7} {f.check:<12} {where:<8} {f.message}", style=style, markup=False
        )
        if f.span and f.span not in f.message:
            console.print(f"          span: {f.span}", markup=False)
        if f.evidence:
            console.print(f"          evidence: {f.evidence}", markup=False)


def _print_attempts(outcome: ScriptOutcome) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    console.print("\nattempts:", style="bold")
    for a in outcome.attempts:
        errors = sum(f.severity == "error" for f in a.flags)
        result = f"failed: {a.error}" if a.error else f"{errors} error flag(s)"
        console.print(
            f"  {a.writer} #{a.attempt}: {a.input_tokens}+{a.output_tokens} tokens, "
            f"${a.cost_usd:.4f}, {a.seconds:.2f} s, {result}",
            markup=False,
        )
    console.print(
        f"  total: {outcome.input_tokens}+{outcome.output_tokens} tokens, ${outcome.cost_usd:.4f}",
        markup=False,
    )
