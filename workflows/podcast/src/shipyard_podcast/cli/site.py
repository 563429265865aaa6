"""`shipyard unpublish RUN`: take an episode down, and prove production no longer serves it."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard import RunRecord, RunState, ShipyardError, load_config
from shipyard.cli import ConfigOption, app, console, ledger_for
from shipyard_podcast.models import Release


@app.command()
def unpublish(
    run_id: Annotated[str, typer.Argument(help="The run whose episode comes down.")],
    config_file: ConfigOption = None,
) -> None:
    """Take a run's episode down: a new commit removes its files and feed entry, then
    production is polled until it no longer serves them."""
    from shipyard_podcast.release.publish import unpublish_episode, verify_unpublished

    config = load_config(config_file)
    ledger = ledger_for(config)
    record = ledger.get(run_id)
    release = _release(record)
    if not release.feed_url.startswith(config.publish.base_url or "\0"):
        raise ShipyardError(
            f"run {record.run_id} was published to {release.feed_url}, not to this "
            f"configuration's publish.base_url ({config.publish.base_url or 'unset'})",
            code="other-site",
            hint="pass -c with the configuration the run published with",
        )
    gone = unpublish_episode(release.guid, config, run_id=record.run_id)
    absent = verify_unpublished(gone, config)
    if not absent.verified:
        ledger.event(record.run_id, "unpublish-unverified", absent.problem)
        raise ShipyardError(
            f"removed in commit {gone.commit[:12]}, but production still "
            f"serves the episode: {absent.problem}",
            code="unverified",
            hint="check the site's deployment, then run unpublish again",
        )
    ledger.set_state(
        record.run_id,
        RunState.UNPUBLISHED,
        step="unpublish",
        reason=f"removed in commit {gone.commit[:12]}; production no longer serves it",
    )
    console.print(
        f"run {record.run_id}: unpublished (commit {gone.commit[:12]}); "
        "production no longer lists or serves the episode"
    )


def _release(record: RunRecord) -> Release:
    if "release" not in record.result:
        raise ShipyardError(
            f"run {record.run_id} has published nothing ({record.state.value})",
            code="not-published",
            run_id=record.run_id,
            hint="`shipyard runs --state verified` lists published runs",
        )
    return Release.model_validate(record.result["release"])
