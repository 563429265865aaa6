"""Commands for publishing: validate-feed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard import ShipyardError
from shipyard.cli import JsonOption, app


@app.command("validate-feed")
def validate_feed_command(
    source: Annotated[
        str, typer.Argument(help="A feed file, or its http(s) URL.", metavar="FILE|URL")
    ],
    as_json: JsonOption = False,
    timeout: Annotated[
        float,
        typer.Option(
            envvar="SHIPYARD_HTTP_TIMEOUT", show_envvar=True, help="Seconds to wait for a URL."
        ),
    ] = 15.0,
) -> None:
    """Check a podcast feed against the publishing checklist (RSS 2.0, itunes, Podcasting
    2.0): every problem names its tag. Exits 1 when there are problems."""
    from shipyard import redact
    from shipyard_podcast.release.feed import parse_feed, validate_feed

    data = _read(source, timeout)
    problems = validate_feed(data)
    episodes = 0
    if not problems:
        episodes = len(parse_feed(data).items)
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "source": redact(source),
                    "valid": not problems,
                    "episodes": episodes,
                    "problems": problems,
                },
                indent=2,
            )
            + "\n"
        )
    elif problems:
        typer.echo(f"{redact(source)}: {len(problems)} problem(s)")
        for problem in problems:
            typer.echo(f"  - {problem}")
    else:
        typer.echo(f"{redact(source)}: valid ({episodes} episode(s))")
    if problems:
        raise typer.Exit(1)


def _read(source: str, timeout: float) -> bytes:
    from shipyard import redact

    if source.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(source, timeout=timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise ShipyardError(
                f"could not fetch {redact(source)}: {exc}",
                code="fetch-failed",
                hint="check the URL and that the server is up",
            ) from None
        if response.status_code != 200:
            raise ShipyardError(
                f"{redact(source)} answered {response.status_code}",
                code="fetch-failed",
                hint="check the feed's URL",
            )
        return response.content
    path = Path(source)
    if not path.is_file():
        raise ShipyardError(
            f"no such file: {source}",
            code="no-such-file",
            hint="give a feed file's path or an http(s) URL",
        )
    return path.read_bytes()
