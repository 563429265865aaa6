"""The flagship's review gate: a person reviews the script; every edit is checked again against
the paper with the same guardrails the writers face, and a request for changes goes back to
the writers (`revise.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipyard import Config, ReviewGate, Segments, record_cost, record_event
from shipyard.podcast.models import Flag, Paper, Script
from shipyard.podcast.settings import PodcastSettings, podcast_settings, provider_quotas

__all__ = ["script_review"]


def _recheck(script: Script, context: tuple[Paper, PodcastSettings, Config]) -> Sequence[Flag]:
    from shipyard.podcast.checks import check_script

    paper, settings, _ = context
    declared = [(h.name, h.voice) for h in settings.show.hosts]
    used = [(h.name, h.voice) for h in script.hosts]
    changed = (
        []
        if used == declared
        else [
            Flag(
                check="speakers",
                severity="error",
                message=f"the script's hosts and voices {used} are not the show's {declared}; "
                "hosts and voices come from podcast.show.hosts, not from an edit",
            )
        ]
    )
    return [*changed, *check_script(script, paper, settings)]


def _revise(script: Script, comment: str, context: tuple[Paper, PodcastSettings, Config]) -> Script:
    from shipyard.podcast.revise import revise_script

    paper, settings, config = context
    revision = revise_script(
        script, comment, paper, settings, quotas=provider_quotas(settings, config)
    )
    record_cost(usd=revision.cost_usd, tokens=revision.tokens)
    done = "; ".join(revision.applied) or "nothing changed"
    record_event(
        "script-revised",
        f"{revision.writer}: {done}"
        + (f"; not applied: {len(revision.not_applied)}" if revision.not_applied else ""),
        {"applied": revision.applied, "not_applied": revision.not_applied},
    )
    return revision.script


def _present(script: Script) -> str:
    """The script as a reviewer reads it: one numbered line a turn."""
    minutes = script.estimated_seconds / 60
    lines = [f"{script.title} — {script.show} (writer: {script.writer}, ~{minutes:.1f} min)"]
    lines += [f"{i:3} {turn.speaker}: {turn.text}" for i, turn in enumerate(script.turns)]
    return "\n".join(lines)


def _reference(context: tuple[Paper, PodcastSettings, Config]) -> dict[str, Any]:
    """The paper beside the script: its title, abstract and sections."""
    paper, *_ = context
    sections = [{"heading": s.heading, "text": s.text} for s in paper.sections]
    if paper.abstract:
        sections.insert(0, {"heading": "Abstract", "text": paper.abstract})
    return {"title": paper.title, "sections": sections}


def _preview(script: Script, index: int, config: Config) -> Path:
    """One turn, spoken now (or found in the cache the synthesize step reads)."""
    from shipyard.podcast.synthesize import synthesize_turn

    store = config.artifact_store()
    settings = podcast_settings(config)
    clip = synthesize_turn(
        script,
        index,
        store,
        config.state_folder("cache", "tts"),
        settings.show.pronunciations,
        provider_quotas(settings, config),
    )
    return store.path(clip.sha256)


script_review: ReviewGate[Script] = ReviewGate(
    "script",
    Script,
    owner="script-editor",
    recheck=_recheck,
    revise=_revise,
    present=_present,
    segments=Segments(items="turns", text="text", label="speaker", sources="spans"),
    reference=_reference,
    preview=_preview,
)
