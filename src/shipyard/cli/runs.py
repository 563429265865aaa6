"""Commands for runs: init, run, runs, status, review, show, demo, doctor, worker."""

from __future__ import annotations

from shipyard.cli import app


@app.command()
def version() -> None:
    """Print shipyard's version."""
    import shipyard

    print(shipyard.__version__)
