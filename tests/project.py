"""A real flagship project for end-to-end tests: the testing kit's (`shipyard.testing`: config
file, state folder, local production, the real `shipyard` command in subprocesses) with the
podcast's settings and the demo paper."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.testing import SHIPYARD, WorkflowProject, kill_group, workflow_project
from shipyard_podcast.source.demo_paper import make_demo_paper

__all__ = ["SHIPYARD", "Project", "kill_group", "make_project"]


@dataclass
class Project(WorkflowProject):
    """A flagship project: the kit's, with the demo paper to run on."""

    paper: Path = field(kw_only=True)


@contextmanager
def make_project(
    root: Path,
    *,
    auto_approve: bool,
    target_minutes: float = 1.0,
    verify_seconds: float = 20,
    review: str = "",
    reviewers: Sequence[str] = ("editor",),
    script: str = "",
    extra: str = "",
    remote: str = "",
    base_url: str = "",
    publish: str = "",
    verify: str = "",
) -> Iterator[Project]:
    settings = f"{extra}\n\n[podcast.script]\ntarget_minutes = {target_minutes}\n{script}\n"
    with workflow_project(
        root,
        settings=settings,
        reviewers=reviewers,
        auto_approve=auto_approve,
        review=review,
        verify_seconds=verify_seconds,
        remote=remote,
        base_url=base_url,
        publish=publish,
        verify=verify,
    ) as base:
        yield Project(
            root=base.root,
            production=base.production,
            server=base.server,
            started=base.started,  # stopped by the kit when the block ends
            paper=make_demo_paper(root / "paper.pdf"),
        )
