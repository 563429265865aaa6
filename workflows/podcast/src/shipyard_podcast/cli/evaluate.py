"""`shipyard eval DATASET`: score the writers' scripts over a set of papers, and gate a change
against the accepted baseline; `shipyard eval accept REPORT` makes a report the baseline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import ConfigOption, JsonOption, app, console

DEFAULT_BASELINE = Path("evals/baseline.json")


@app.command("eval")
def evaluate_command(
    dataset: Annotated[
        str,
        typer.Argument(
            help="The dataset (YAML, see docs/evaluation.md); or `accept` to make REPORT the "
            "baseline.",
            show_default=False,
        ),
    ],
    report_file: Annotated[
        Path | None,
        typer.Argument(help="With `accept`: the report to accept.", show_default=False),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="Compare with this report; exit 1 when a case got worse."),
    ] = None,
    max_drop: Annotated[
        float, typer.Option(help="How far a score may fall below the baseline's.")
    ] = 0.02,
    report: Annotated[
        Path | None,
        typer.Option(help="Where the report goes (default: the state folder's evals/)."),
    ] = None,
    to: Annotated[
        Path, typer.Option(help="With `accept`: the baseline file to write.")
    ] = DEFAULT_BASELINE,
    judge: Annotated[
        str,
        typer.Option(help="Add an LLM judge's score from this model (costs money; not gated)."),
    ] = "",
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate the script writers over a dataset of papers: guardrails, first drafts,
    grounding, coverage of expected facts, claims, length, listener defects, refusals."""
    from shipyard import ShipyardError, load_config
    from shipyard_podcast.script.evaluation import compare, evaluate, read_report
    from shipyard_podcast.settings import podcast_settings, provider_quotas

    if dataset == "accept":
        if report_file is None:
            raise ShipyardError(
                "accept needs the report to accept", hint="shipyard eval accept REPORT.json"
            )
        read_report(report_file)  # it must be one
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report_file, to)
        console.print(f"{report_file} is the baseline now: {to} (commit it)", markup=False)
        return
    config = load_config(config_file)
    settings = podcast_settings(config)
    result = evaluate(
        Path(dataset), settings, judge=judge, quotas=provider_quotas(settings, config)
    )
    target = report or config.state_folder("evals") / f"{Path(dataset).stem}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    worse = compare(result, read_report(baseline), max_drop) if baseline else []
    if as_json:
        typer.echo(json.dumps({**result, "worse_than_baseline": worse}, indent=2))
    else:
        _table(result)
        console.print(f"report: {target}", markup=False)
        if baseline:
            console.print(
                f"against {baseline}: "
                + ("no case got worse" if not worse else f"{len(worse)} regression(s)"),
                markup=False,
            )
            for line in worse:
                console.print(f"  worse: {line}", markup=False)
    if worse:
        raise typer.Exit(1)


def _table(result: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    from shipyard_podcast.script.evaluation import SCORES

    cases = result["cases"]
    assert isinstance(cases, dict)
    shown = [s for s in SCORES if any(s in c["scores"] for c in cases.values())]
    table = Table("case", *(s.replace("_", " ") for s in shown), "passed", box=None)
    for name, case in cases.items():
        scores = case["scores"]
        table.add_row(
            name,
            *(f"{scores[s]:.2f}" if s in scores else "" for s in shown),
            "yes" if case["passed"] else f"NO {case.get('error', '')}".strip(),
        )
    # whole even in a log or a pipe, where the terminal's width is not known
    Console(width=max(console.width, 150), highlight=False).print(table)
    console.print(f"{result['passed']} of {len(cases)} cases passed", markup=False)
