"""The flagship's commands, added to `shipyard` through the `shipyard.commands` entry point:
extract, script, check, validate-feed, unpublish, demo."""

from shipyard.podcast.cli import demo, publish, script, site, source

__all__ = ["demo", "publish", "script", "site", "source"]
