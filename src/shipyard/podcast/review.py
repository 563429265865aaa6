"""The flagship's review gate: a person reviews the script, and every edit is checked again
against the paper with the same guardrails the writers face."""

from __future__ import annotations

from collections.abc import Sequence

from shipyard import Flag, ReviewGate
from shipyard.podcast.models import Paper, Script
from shipyard.podcast.settings import PodcastSettings

__all__ = ["script_review"]


def _recheck(script: Script, context: tuple[Paper, PodcastSettings]) -> Sequence[Flag]:
    from shipyard.podcast.checks import check_script

    paper, settings = context
    return check_script(script, paper, settings)


def _present(script: Script) -> str:
    """The script as a reviewer reads it: one numbered line a turn."""
    minutes = script.estimated_seconds / 60
    lines = [f"{script.title} — {script.show} (writer: {script.writer}, ~{minutes:.1f} min)"]
    lines += [f"{i:3} {turn.speaker}: {turn.text}" for i, turn in enumerate(script.turns)]
    return "\n".join(lines)


script_review: ReviewGate[Script] = ReviewGate(
    "script", Script, owner="script-editor", recheck=_recheck, present=_present
)
