"""Publishing targets: where a release goes, and how any workflow puts files there.

A target holds a site: files by relative POSIX path, served to the public at
`publish.base_url` (through a CDN or not). Two kinds come with the core, chosen by
`publish.remote` in shipyard.toml (`_publish.publish_target`):

- `GitTarget` (`_git_target`): a branch of a git repository, one commit per release;
- `BucketTarget` (`_bucket_target`): an S3-compatible bucket (AWS, R2, B2, MinIO), one
  checksummed upload per file, the feed last.

Both keep the same promises, so a workflow is written once against `PublishTarget`:

- `publish` may run again after a crash (a durable step repeats): it finds the run's earlier
  publication, or changes nothing that already holds the same bytes;
- `files` may be a function of the site as published now (`Site.read`), called afresh
  whenever the target moved under a concurrent release, so content derived from what is
  there (a feed, a manifest) never loses another release's entry;
- every path is confined to the site (`site_path`): nothing a paper, a model or a site's
  files contain can write outside it;
- `missing` says which shipped files the target no longer holds with the shipped bytes (the
  origin's side of `shipyard verify --all`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from shipyard._errors import ConfigError

__all__ = [
    "BUCKET_RECORDS",
    "FileSet",
    "PublishResult",
    "PublishTarget",
    "Site",
    "mismatches",
    "site_path",
]

BUCKET_RECORDS = "_shipyard"  # a bucket target's own folder: publication records, versions

FileSet = Mapping[str, bytes | Path]
"""Site path (POSIX, relative) -> the new content, as bytes or a file to copy. Targets that
upload one file at a time (a bucket) upload in this order: put the feed last."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    commit: str  # the target's id of the publication: a git commit, a bucket's record
    pushed: bool  # this call published it
    already_published: bool  # the target already had it; nothing was written


class Site(Protocol):
    """The site as a target holds it now."""

    def read(self, path: str) -> bytes | None:
        """The file at `path`, or None where there is none."""
        ...


class PublishTarget(Protocol):
    """Where releases go: a git branch, a bucket, or a target of a workflow's own."""

    def publish(
        self,
        files: FileSet | Callable[[Site], FileSet],
        *,
        run_id: str,
        message: str,
        trailers: Mapping[str, str] | None = None,
        remove: Sequence[str] = (),
    ) -> PublishResult:
        """Put `files` on the site as the publication of `run_id`, and take `remove` off."""
        ...

    def site(self) -> Site:
        """The site as published now, to read."""
        ...

    def find_run_commit(self, run_id: str) -> str | None:
        """The id of `run_id`'s publication, if the target has one."""
        ...

    def missing(self, files: Mapping[str, str]) -> list[str]:
        """Of `files` (path -> SHA-256), those the target does not hold with those bytes, each
        with what it holds instead."""
        ...


def mismatches(
    files: Mapping[str, str], held: Callable[[str], str | None], where: str
) -> list[str]:
    """Of `files` (path -> SHA-256), those a target does not hold with those bytes, in words:
    `held(path)` is the SHA-256 of what it holds there (None: nothing), `where` names it."""
    wrong = []
    for path, sha256 in sorted(files.items()):
        found = held(site_path(path))
        if found is None:
            wrong.append(f"{path}: not in {where}")
        elif found != sha256:
            wrong.append(f"{path}: holds sha256 {found[:12]}…, shipped {sha256[:12]}…")
    return wrong


def site_path(raw: str) -> str:
    """A path inside the site, or ConfigError: relative, POSIX, no `..`, nothing git owns."""
    path = PurePosixPath(raw)
    if (
        path.is_absolute()
        or not path.parts
        or any(p in ("..", ".", "") for p in path.parts)
        or path.parts[0] in (".git", BUCKET_RECORDS)
        or "\\" in raw
    ):
        raise ConfigError(
            f"not a safe site path: {raw!r}",
            hint="publish paths are relative POSIX paths inside the site",
        )
    return str(path)
