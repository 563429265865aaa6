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
    skip_artwork: Annotated[
        bool,
        typer.Option(
            "--skip-artwork", help="Do not fetch the show's artwork to check Apple's rules."
        ),
    ] = False,
) -> None:
    """Check a podcast feed against the publishing checklist (RSS 2.0, itunes, Podcasting
    2.0, the AI disclosure) and its artwork against Apple's rules (a square PNG or JPEG of
    1400-3000 px in RGB): every problem names its tag. Exits 1 when there are problems."""
    from shipyard import redact
    from shipyard_podcast.artwork import artwork_problems
    from shipyard_podcast.release.feed import parse_feed, validate_feed

    data = _read(source, timeout)
    problems = validate_feed(data)
    episodes = 0
    if not problems:
        feed = parse_feed(data)
        episodes = len(feed.items)
        if not skip_artwork:
            image = _read(feed.image_url, timeout, what="artwork", limit=_ARTWORK_BYTES)
            problems += [f"<itunes:image>: {p}" for p in artwork_problems(image)]
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


_ARTWORK_BYTES = 20_000_000  # Apple asks for well under this; more is refused unread


def _read(source: str, timeout: float, *, what: str = "feed", limit: int = 0) -> bytes:
    from shipyard import redact

    if source.startswith(("http://", "https://")):
        import httpx

        try:
            with httpx.stream("GET", source, timeout=timeout, follow_redirects=True) as response:
                if response.status_code != 200:
                    raise ShipyardError(
                        f"the {what} at {redact(source)} answered {response.status_code}",
                        code="fetch-failed",
                        hint=f"check the {what}'s URL",
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if limit and len(body) > limit:
                        raise ShipyardError(
                            f"the {what} at {redact(source)} is over {limit} bytes",
                            code="too-large",
                            hint=f"serve a smaller {what}",
                        )
                return bytes(body)
        except httpx.HTTPError as exc:
            raise ShipyardError(
                f"could not fetch the {what} at {redact(source)}: {exc}",
                code="fetch-failed",
                hint="check the URL and that the server is up, or pass --skip-artwork",
            ) from None
    path = Path(source)
    if not path.is_file():
        raise ShipyardError(
            f"no such file: {source}",
            code="no-such-file",
            hint="give a feed file's path or an http(s) URL",
        )
    return path.read_bytes()
