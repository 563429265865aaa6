"""The paper-to-podcast workflow: every stage a durable step, done only when verified.

    paper ─▶ ingest ─▶ extract ─▶ write-script ─▶ review gate ─▶ synthesize ─▶ master
        ─▶ publish ─▶ verify

The paper is a PDF's path, or what people paste for one (an arXiv id or link, a DOI, a link
to a PDF or a paper's page: `source.remote`), fetched by the ingest step. The workflow body
only decides; every stage does its I/O inside a step, so recovery after a
crash replays the body and skips the steps that finished. The run's configuration travels in
its input, so a run recovered by another process behaves as it began.
"""

from __future__ import annotations

import datetime as dt
import importlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shipyard import (
    Artifact,
    Config,
    FileInput,
    Notice,
    ProviderConfig,
    Run,
    RunState,
    UrlInput,
    Verification,
    artifact_store,
    notify_owner,
    notify_webhook,
    record_artifact,
    record_cost,
    record_event,
    redact,
    set_run_state,
    step,
    workflow,
)
from shipyard_podcast import needs
from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.models import (
    Clip,
    Episode,
    Paper,
    Release,
    Script,
    ScriptOutcome,
)
from shipyard_podcast.release.feed import chapters_from_json
from shipyard_podcast.review.gate import script_review
from shipyard_podcast.settings import (
    TABLE,
    PodcastSettings,
    podcast_settings,
    provider_quotas,
)
from shipyard_podcast.source.remote import Registered, paper_url

__all__ = ["WORKFLOW", "Ingested", "paper_to_podcast"]

WORKFLOW = "paper-to-podcast"


class Ingested(BaseModel):
    """The paper's bytes in the artifact store: a PDF, or a LaTeX source (arXiv's e-print),
    where they came from and why that form, and what a registry says of its front matter."""

    model_config = ConfigDict(frozen=True)
    sha256: str
    size: int
    name: str
    form: Literal["pdf", "latex"] = "pdf"
    source: str = ""  # where its text comes from, in words ("arXiv's LaTeX source")
    reason: str = ""  # why that form, where another was tried first
    registered: Registered | None = None


class Published(BaseModel):
    model_config = ConfigDict(frozen=True)
    release: Release
    already_published: bool


def _recheck_release(result: dict[str, Any], config: Config, deadline: float) -> Verification:
    from shipyard_podcast.release.publish import recheck_episode

    release = Release.model_validate(result["release"])
    return recheck_episode(release, config, deadline_seconds=deadline)


def _describe(config: Config) -> dict[str, Any]:
    from shipyard_podcast.script.checks import CHECKS

    settings = podcast_settings(config)
    return {
        "writers": settings.script.writers,
        "checks": list(CHECKS),
        "language": settings.show.language or "each paper's own",
        "voices": {h.name: h.voice for h in settings.show.hosts},
        "providers": {
            spec: f"{name}: " + _limits(config.providers[name])
            for spec, name in settings.providers.items()
        }
        or "(none named in podcast.providers)",
    }


def _limits(limits: ProviderConfig) -> str:
    """A provider's limits in words, as `shipyard show` prints them."""
    said = [
        *([f"{limits.concurrency} at once"] if limits.concurrency else []),
        *([f"{limits.requests} per {limits.period_seconds:g} s"] if limits.requests else []),
    ]
    return ", ".join(said) or "no limit set"


@workflow(
    name=WORKFLOW,
    version="1",
    owner="podcast-producer",
    requires=("publish.remote", "publish.base_url"),
    accepts=("file", "url"),
    url_for=paper_url,
    input_help="a paper: its PDF's path, an arXiv id or link, a DOI, or a link to its PDF "
    "or its page",
    settings=PodcastSettings,
    table=TABLE,
    recheck=_recheck_release,
    describe=_describe,
    publishes=True,
    doctor=needs.checks,
    init_table=needs.INIT_TABLE,
    options={"language": "show.language"},  # --language es: the episode in Spanish
)
def paper_to_podcast(run: Run[FileInput | UrlInput, PodcastSettings]) -> dict[str, Any]:
    """Turn a research paper (PDF) into a published podcast episode, verified in production."""
    config, settings = run.config, run.settings
    pdf = ingest(run.input, settings, config)
    paper = extract(pdf, settings)
    drafted = write_script(paper, settings, str(config.state_folder("journal") / run.id), config)
    reviewed = script_review(
        run, drafted.script, flags=drafted.flags, context=(paper, settings, config)
    )
    decision = reviewed.decision
    if not reviewed.approved:
        reason = f"rejected by {decision.reviewer}" + (
            f": {decision.comment}" if decision.comment else ""
        )
        set_run_state(RunState.REJECTED, "review", reason)
        return {"state": RunState.REJECTED.value, "reason": reason}
    script = reviewed.payload
    clips = synthesize(script, settings, config)
    episode = master(script, clips, paper, settings, config)
    set_run_state(RunState.PUBLISHING, "publish")
    published = publish(run.id, paper, script, episode, config)
    set_run_state(RunState.VERIFYING, "verify")
    verification = verify(published.release, config)
    release = published.release
    result = {
        "episode_url": release.episode_url,
        "feed_url": release.feed_url,
        "page_url": release.page_url,
        "audio_sha256": release.audio_sha256,
        "commit": release.commit,
        "checks": verification.checks,
        "release": release.model_dump(mode="json"),
        "chapters": [  # for players: the run's page in the console lists them
            {"start": start, "title": title}
            for start, title in chapters_from_json(
                config.artifact_store().path(episode.chapters_sha256).read_bytes()
            )
        ],
    }
    if verification.verified:
        set_run_state(RunState.VERIFIED, "verify", "", result)
        return {"state": RunState.VERIFIED.value, **result}
    notify_unverified(run.id, verification.problem, config)
    unverified = Notice(
        event="unverified",
        run_id=run.id,
        workflow=run.workflow,
        step="verify",
        message=f"production does not serve the release: {verification.problem}",
        todo="check the site's deploy (the commit is pushed); `shipyard verify "
        f"{run.id}` checks again",
    )
    notify_owner(config, "site-publisher", unverified)
    set_run_state(RunState.UNVERIFIED, "verify", verification.problem, result)
    return {"state": RunState.UNVERIFIED.value, "reason": verification.problem, **result}


# --- stages -------------------------------------------------------------------------------


@step(owner="podcast-producer", attempts=3, backoff_seconds=2.0)
def ingest(source: FileInput | UrlInput, settings: PodcastSettings, config: Config) -> Ingested:
    """Copy the paper into the artifact store, named by its SHA-256: the file given, or what
    its link leads to, fetched (once a run: a retry or a recovery reads what was fetched)."""
    if isinstance(source, UrlInput):
        return _fetched(source, settings, config)
    path, expected_sha256 = Path(source.path), source.sha256
    if not path.is_file():
        raise SourceRejected(
            f"{source.path} does not exist or is not a file",
            code="missing",
            hint="check the path; the file must stay readable until ingest",
        )
    artifact = artifact_store().put_file(path, suffix=".pdf")
    if artifact.sha256 != expected_sha256:
        raise SourceRejected(
            f"{path.name} changed while it was being read (its SHA-256 is now "
            f"{artifact.sha256[:12]}, was {expected_sha256[:12]})",
            code="changed",
            hint="wait until the file is completely written, then run again",
        )
    record_artifact(artifact, "source")
    return Ingested(sha256=artifact.sha256, size=artifact.size, name=path.name)


def _fetched(source: UrlInput, settings: PodcastSettings, config: Config) -> Ingested:
    from shipyard_podcast.source.remote import fetch_paper

    store = artifact_store()

    def keep(data: bytes, suffix: str) -> Path:  # named as the fetch kept it: one copy
        return store.path(store.put_bytes(data, suffix=suffix).sha256)

    got = fetch_paper(source.url, settings.source, config, keep)
    artifact = store.put_bytes(got.data, suffix=f".{got.kind}")
    record_artifact(artifact, "source")
    record_event(
        "paper-fetched",
        f"{got.name}: {got.source}" + (f" ({got.reason})" if got.reason else ""),
        {
            "given": source.given or source.url,
            "url": source.url,
            "form": got.form,
            "source": got.source,
            "reason": got.reason,
            "fetched": [redact(url) for url in got.fetched],
            "sha256": artifact.sha256,
        },
    )
    return Ingested(
        sha256=artifact.sha256,
        size=artifact.size,
        name=got.name,
        form=got.form,
        source=got.source,
        reason=got.reason,
        registered=got.registered,
    )


@step(owner="podcast-producer", attempts=1)
def extract(pdf: Ingested, settings: PodcastSettings) -> Paper:
    """Extract and validate the paper: text in reading order, title, abstract, sections."""
    from shipyard_podcast.source.extract import extract_paper_isolated
    from shipyard_podcast.source.remote import confirm_front

    store = artifact_store()
    with ThreadPoolExecutor(1, thread_name_prefix="shipyard-import") as pool:
        # The writer chain is loaded on one core while the child reads the paper on the
        # other; a failure to load it is raised below. (pydantic-ai, 0.3 s more, is loaded
        # only where the chain has a model writer.)
        pool.submit(importlib.import_module, "shipyard_podcast.script.chain")
        # In a child process: a PDF that crashes pdfium must not take the worker down with it
        # (recovery would run the same step, and crash, again).
        paper = extract_paper_isolated(
            store.path(pdf.sha256), settings.source, name=pdf.name, latex=pdf.form == "latex"
        )
    from shipyard_podcast.script.chain import episode_settings

    paper = confirm_front(paper, pdf.registered)  # a registry's title and authors, a witness
    stored = store.put_bytes(paper.model_dump_json(indent=2).encode(), suffix=".json")
    record_artifact(stored, "paper", [pdf.sha256])
    episode_settings(paper, settings, pdf.name)  # a language no writer or voice serves
    return paper


@step(owner="script-editor", kind="check", attempts=2)
def write_script(
    paper: Paper, settings: PodcastSettings, journal: str, config: Config
) -> ScriptOutcome:
    """Write the two-host script (writer chain) and run the guardrail checks on it; every
    model answer is journaled, so a retried step pays for no request twice."""
    from shipyard_podcast.script.chain import write_script as write
    from shipyard_podcast.script.journal import RequestJournal

    outcome = write(
        paper,
        settings,
        journal=RequestJournal(Path(journal)),
        quotas=provider_quotas(settings, config),
    )
    record_cost(usd=outcome.cost_usd, tokens=outcome.input_tokens + outcome.output_tokens)
    for attempt in outcome.attempts:
        errors = sum(f.severity == "error" for f in attempt.flags)
        record_event(
            "script-attempt",
            f"{attempt.writer} #{attempt.attempt}: " + (attempt.error or f"{errors} error flag(s)"),
            attempt.model_dump(mode="json"),
        )
    stored = artifact_store().put_bytes(
        outcome.script.model_dump_json(indent=2).encode(), suffix=".json"
    )
    record_artifact(stored, "script", [paper.source_sha256])
    return outcome


@step(owner="audio-producer", attempts=3, backoff_seconds=2.0)
def synthesize(script: Script, settings: PodcastSettings, config: Config) -> list[Clip]:
    """Speak every turn with its host's voice (cached per turn)."""
    from shipyard_podcast.audio.synthesize import synthesize as speak
    from shipyard_podcast.language import release_language_model

    release_language_model()  # the checks' model is not needed at the run's memory peak

    result = speak(
        script,
        artifact_store(),
        config.state_folder("cache", "tts"),
        settings.audio,
        settings.for_language(script.language).show.pronunciations,
        provider_quotas(settings, config),
    )
    record_event(
        "synthesis",
        f"{len(result.synthesized)} turn(s) spoken, {len(result.cached)} from the cache",
        {"synthesized": result.synthesized, "cached": result.cached},
    )
    return list(result.clips)


@step(owner="audio-producer", attempts=2)
def master(
    script: Script, clips: list[Clip], paper: Paper, settings: PodcastSettings, config: Config
) -> Episode:
    """Mix, level and encode the episode; tags, chapters, transcript; integrity gate."""
    from shipyard_podcast.audio.master import master as mix
    from shipyard_podcast.release.publish import show_notes

    show = settings.for_language(script.language).show
    cover = config.resolve(show.image).read_bytes() if show.image else None
    store = artifact_store()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    episode = mix(
        script,
        clips,
        store,
        show,
        settings.audio,
        episode_title=script.title,
        description=show_notes(script, paper, show.ai_disclosure),
        date=now.date(),
        cover=cover,
        assets_root=config.root,
    )
    episode = episode.model_copy(update={"mastered_at": now})
    audio = Artifact(episode.audio_sha256, episode.audio_bytes, store.path(episode.audio_sha256))
    record_artifact(audio, "episode", [c.sha256 for c in clips])
    return episode


@step(owner="site-publisher", kind="publish", attempts=4, backoff_seconds=2.0)
def publish(
    run_id: str,
    paper: Paper,
    script: Script,
    episode: Episode,
    config: Config,
) -> Published:
    """Commit the episode, its page and the feed to the site repository, and push."""
    from shipyard_podcast.release.publish import publish_episode

    release, already = publish_episode(
        run_id=run_id,
        paper=paper,
        script=script,
        episode=episode,
        config=config,
        store=artifact_store(),
        published=episode.mastered_at,  # the same after a crash: a repeat writes the same files
    )
    return Published(release=release, already_published=already)


@step(owner="site-publisher", kind="verify", attempts=1)
def verify(release: Release, config: Config) -> Verification:
    """Poll production until it serves exactly the shipped bytes, or the deadline passes."""
    from shipyard_podcast.release.publish import verify_episode

    return verify_episode(release, config)


@step(owner="site-publisher", attempts=2)
def notify_unverified(run_id: str, problem: str, config: Config) -> None:
    """Tell the operators' webhook (verify.webhook) that production does not serve the release."""
    record_event("unverified", problem)
    if config.verify.webhook:
        notify_webhook(
            config.verify.webhook, {"run_id": run_id, "state": "unverified", "problem": problem}
        )
