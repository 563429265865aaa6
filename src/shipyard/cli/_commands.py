"""Every command module, imported so that each registers its commands on the app."""

from shipyard.cli import publish, runs, script, source

__all__ = ["publish", "runs", "script", "source"]
