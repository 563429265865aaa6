"""Every core command module, imported so that each registers its commands on the app."""

from shipyard.cli import production, project, review, runs, web

__all__ = ["production", "project", "review", "runs", "web"]
