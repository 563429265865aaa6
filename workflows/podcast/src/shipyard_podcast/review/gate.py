"""The flagship's review gate: a person reviews the script; every edit is checked again against
the paper with the same guardrails the writers face, and a request for changes goes back to
the writers (`revise.py`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import (
    Config,
    Preview,
    ReviewGate,
    Segments,
    current_run_id,
    record_cost,
    record_event,
    write_atomically,
)
from shipyard_podcast.errors import ScriptRejected
from shipyard_podcast.models import Flag, Paper, Script
from shipyard_podcast.review.facts import front_matter_facts
from shipyard_podcast.settings import PodcastSettings, podcast_settings, provider_quotas

if TYPE_CHECKING:
    from shipyard_podcast.audio.synthesize import TurnSpeech

__all__ = ["script_review"]


def _recheck(script: Script, context: tuple[Paper, PodcastSettings, Config]) -> Sequence[Flag]:
    from shipyard_podcast.script.checks import check_script

    paper, settings, _ = context
    declared = [(h.name, h.voice) for h in settings.for_language(script.language).show.hosts]
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
    from shipyard_podcast.review.revise import revise_script
    from shipyard_podcast.script.journal import RequestJournal

    paper, settings, config = context
    run_id = current_run_id()
    revision = revise_script(
        script,
        comment,
        paper,
        settings,
        quotas=provider_quotas(settings, config),
        journal=RequestJournal(config.state_folder("journal") / run_id) if run_id else None,
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


def _plan(
    script: Script, comment: str, context: tuple[Paper, PodcastSettings, Config]
) -> tuple[list[str], list[str]]:
    from shipyard_podcast.review.revise import read_request

    paper, settings, _ = context
    reading = read_request(script, comment, paper, settings)
    return reading.applied, reading.not_applied


def _present(script: Script) -> str:
    """The script as a reviewer reads it: one line a turn, numbered as people count (from 1;
    request-changes commands use these numbers)."""
    minutes = script.estimated_seconds / 60
    lines = [f"{script.title} — {script.show} (writer: {script.writer}, ~{minutes:.1f} min)"]
    lines += [f"{i:3} {turn.speaker}: {turn.text}" for i, turn in enumerate(script.turns, 1)]
    return "\n".join(lines)


def _reference(context: tuple[Paper, PodcastSettings, Config]) -> dict[str, Any]:
    """The paper beside the script: its front matter as read (with where each part came
    from and how sure the reading is), its abstract and its sections."""
    paper, *_ = context
    sections = [{"heading": s.heading, "text": s.text} for s in paper.sections]
    if paper.abstract:
        sections.insert(0, {"heading": "Abstract", "text": paper.abstract})
    return {"title": paper.title, "sections": sections, "facts": front_matter_facts(paper)}


def _amend(before: Script, edited: Script) -> Script:
    """A correction of the credits reaches everything that says them: each name or title
    the reviewer changed is replaced in the turns (the spoken introduction), and an episode
    titled after the paper takes the corrected title."""
    old, new = before.credits, edited.credits
    if old == new:
        return edited
    changes = [(old.title, new.title)] if old.title and new.title else []
    changes += list(zip(old.authors, new.authors, strict=False))
    changes = [(a, b) for a, b in changes if a and b and a != b]
    turns = []
    for turn in edited.turns:
        text = turn.text
        for was, now in changes:
            text = text.replace(was, now)
        turns.append(turn if text == turn.text else turn.model_copy(update={"text": text}))
    title = new.title if old.title and edited.title == old.title and new.title else edited.title
    return edited.model_copy(update={"turns": turns, "title": title})


PREVIEW_RATE, PREVIEW_KBPS = 24_000, 48  # speech, compressed: a minute is about 350 kB


def _preview(script: Script, index: int, config: Config) -> Path | Preview:
    """One turn as an MP3: from the preview cache, or heard while it is spoken (`_streamed`);
    the whole turn lands in the cache the synthesize step reads."""
    from shipyard_podcast.audio.dsp import decode_file, encode_mp3
    from shipyard_podcast.audio.synthesize import TurnSpeech, turn_speech

    store = config.artifact_store()
    settings = podcast_settings(config).for_language(script.language)
    declared = {h.name: h.voice for h in settings.show.hosts}
    undeclared = [f"{h.name}: {h.voice}" for h in script.hosts if declared.get(h.name) != h.voice]
    if undeclared:  # a revision may name any voice; only the configuration's may be called
        raise ScriptRejected(
            f"this revision names voices the show does not declare ({'; '.join(undeclared)})",
            code="undeclared-voice",
            hint="previews speak with podcast.show.hosts only; fix the revision's hosts",
        )
    previews = config.state_folder("cache", "previews")
    speech = turn_speech(
        script,
        index,
        store,
        config.state_folder("cache", "tts"),
        settings.show.pronunciations,
        provider_quotas(settings, config),
    )
    if isinstance(speech, TurnSpeech):
        return Preview("audio/mpeg", _streamed(speech, previews))
    compressed = previews / f"{speech.sha256}.mp3"
    if not compressed.is_file():
        samples = decode_file(store.path(speech.sha256), PREVIEW_RATE, what="a preview")
        data = encode_mp3(samples, PREVIEW_RATE, PREVIEW_KBPS, quality=2)
        write_atomically(compressed, lambda f: f.write(data))
    return compressed


def _warm(script: Script, config: Config) -> None:
    """The show's voices for the script's language loaded before a reviewer plays a turn: a
    Piper model, a Festival session (about 0.8 s of the first preview); a service's voices
    load nothing."""
    from shipyard_podcast.audio.voices import load_voice

    for host in podcast_settings(config).for_language(script.language).show.hosts:
        load_voice(host.voice).warm()


def _streamed(speech: TurnSpeech, previews: Path) -> Iterator[bytes]:
    """A turn's MP3 frames as it is spoken, kept whole in the preview cache at the end. The
    first piece is spoken now, before the answer starts, so that a turn that cannot be
    spoken is refused, not cut off."""
    from shipyard_podcast.audio.dsp import stream_mp3

    pieces = iter(speech)
    first = next(pieces)

    def frames() -> Iterator[bytes]:
        made = []
        for chunk in stream_mp3(
            itertools.chain([first.samples], (p.samples for p in pieces)),
            first.sample_rate,
            PREVIEW_RATE,
            PREVIEW_KBPS,
            quality=2,
            seconds=len(speech.text) / 5,  # far more than it takes to say
        ):
            made.append(chunk)
            yield chunk
        assert speech.clip is not None  # the pieces ran out: the turn is checked and kept
        write_atomically(previews / f"{speech.clip.sha256}.mp3", lambda f: f.write(b"".join(made)))

    return frames()


def _keep_context(context: tuple[Paper, PodcastSettings, Config]) -> dict[str, Any]:
    paper, *_ = context
    return {"paper": paper.model_dump(mode="json")}


def _restore_context(kept: dict[str, Any], config: Config) -> tuple[Paper, PodcastSettings, Config]:
    return Paper.model_validate(kept["paper"]), podcast_settings(config), config


script_review: ReviewGate[Script] = ReviewGate(
    "script",
    Script,
    owner="script-editor",
    recheck=_recheck,
    revise=_revise,
    present=_present,
    segments=Segments(
        items="turns",
        text="text",
        label="speaker",
        sources="spans",
        noun="turn",
        labels="hosts.name",
        opens="chapter",
        fields=(("credits.title", "Title of the paper"), ("credits.authors", "Authors")),
    ),
    reference=_reference,
    preview=_preview,
    warm=_warm,
    amend=_amend,
    keep_context=_keep_context,
    restore_context=_restore_context,
    plan=_plan,
)
