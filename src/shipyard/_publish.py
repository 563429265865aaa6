"""The target a project publishes to: the kind `publish.remote` names (see `_targets`)."""

from __future__ import annotations

from pathlib import Path

from shipyard._bucket_target import BucketTarget
from shipyard._config import Config
from shipyard._git_target import GitTarget
from shipyard._targets import PublishTarget

__all__ = ["publish_target"]


def publish_target(config: Config, *, workspace: Path | None = None) -> PublishTarget:
    """The target `[publish]` names: a bucket for an `s3://` remote, else a git remote.
    `workspace` is a git target's private clone (default: the state folder's `site`)."""
    if config.publish.remote.startswith("s3://"):
        return BucketTarget.from_config(config)
    return GitTarget.from_config(config, workspace=workspace)
