"""The flagship's commands, added to `shipyard` through the `shipyard.commands` entry point:
extract, script, check, validate-feed, unpublish, demo, eval, voices."""

from shipyard_podcast.cli import demo, evaluate, publish, script, site, source, voices

__all__ = ["demo", "evaluate", "publish", "script", "site", "source", "voices"]
