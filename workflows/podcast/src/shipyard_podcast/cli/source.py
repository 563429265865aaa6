"""`shipyard extract PAPER`: run the extract-and-validate stage on one paper and show it."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import ConfigOption, JsonOption, app

PaperArgument = Annotated[
    str,
    typer.Argument(
        metavar="PAPER",
        help="The paper: a PDF's path, an arXiv id or link, a DOI, or a link to its PDF or page.",
        show_default=False,
    ),
]
PasswordOption = Annotated[
    str | None,
    typer.Option(
        envvar="SHIPYARD_PDF_PASSWORD", show_envvar=True, help="Password of a protected PDF."
    ),
]


@app.command()
def extract(
    paper: PaperArgument,
    as_json: JsonOption = False,
    password: PasswordOption = None,
    config: ConfigOption = None,
) -> None:
    """Extract and validate a paper: its front matter (title, authors with affiliations,
    venue, year, DOI, arXiv id, each with its source and certainty), abstract, sections and
    warnings.

    A file the workflow would refuse (encrypted, scanned, not a paper...) exits 1, saying why.
    """
    from rich.console import Console

    from shipyard import load_config
    from shipyard_podcast.review.facts import front_matter_facts
    from shipyard_podcast.settings import podcast_settings
    from shipyard_podcast.source.remote import read_paper

    loaded = load_config(config)
    result = read_paper(paper, loaded, podcast_settings(loaded).source, password=password)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    console = Console(highlight=False)
    console.print(result.title, style="bold", markup=False)
    for fact in front_matter_facts(result):  # each with where it came from, how sure
        console.print(f"{fact['label']}: {fact['value']}", markup=False)
    console.print(
        f"{result.stats.pages} pages, {result.stats.words} voiced words, "
        f"language {result.language}, {len(result.references)} references, "
        f"{len(result.captions)} captions"
    )
    if result.abstract:
        console.print("\n[bold]Abstract[/]")
        console.print(result.abstract, markup=False)
    console.print("\n[bold]Sections[/]")
    for section in result.sections:
        pages = (
            f"p. {section.first_page}"
            if section.first_page == section.last_page
            else f"pp. {section.first_page}-{section.last_page}"
        )
        console.print(
            f"  {section.heading}  ({pages}, {len(section.text.split())} words)", markup=False
        )
    for warning in result.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False)
