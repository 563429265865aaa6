"""The paper-to-podcast workflow: every stage a durable step, done only when verified.

    pdf ─▶ ingest ─▶ extract ─▶ write-script ─▶ review gate ─▶ synthesize ─▶ master
        ─▶ publish ─▶ verify

The workflow body only decides; every stage does its I/O inside a step, so recovery after a
crash replays the body and skips the steps that finished. The run's configuration travels in
its input, so a run recovered by another process behaves as it began.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from dbos import DBOS
from pydantic import BaseModel, ConfigDict

from shipyard._config import Config
from shipyard._engine import current
from shipyard._errors import SourceRejected
from shipyard._runs import RunState
from shipyard._workflow import record_cost, set_run_state, step, workflow
from shipyard.podcast.models import (
    Clip,
    Decision,
    Episode,
    Paper,
    Release,
    Script,
    ScriptOutcome,
    Verification,
)

__all__ = ["REVIEW_TOPIC", "WORKFLOW", "Ingested", "paper_to_podcast"]

WORKFLOW = "paper-to-podcast"
REVIEW_TOPIC = "review"


class Ingested(BaseModel):
    model_config = ConfigDict(frozen=True)
    sha256: str
    size: int
    name: str


class Published(BaseModel):
    model_config = ConfigDict(frozen=True)
    release: Release
    already_published: bool


@workflow(
    name=WORKFLOW,
    version="1",
    owner="podcast-producer",
    requires=("publish.remote", "publish.base_url"),
)
def paper_to_podcast(source: str, source_sha256: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Turn a research paper (PDF) into a published podcast episode, verified in production."""
    config = Config.model_validate(settings)
    run_id = DBOS.workflow_id
    assert run_id is not None
    pdf = ingest(source, source_sha256)
    paper = extract(pdf, config)
    drafted = write_script(paper, config)
    decision = review_gate(run_id, drafted, config)
    if decision.action == "reject":
        reason = f"rejected by {decision.reviewer}" + (
            f": {decision.comment}" if decision.comment else ""
        )
        set_run_state(RunState.REJECTED, "review", reason)
        return {"state": RunState.REJECTED.value, "reason": reason}
    script = decision.script or drafted.script
    clips = synthesize(script, config)
    episode = master(script, clips, paper, config)
    set_run_state(RunState.PUBLISHING, "publish")
    published = publish(run_id, paper, script, episode, config)
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
    }
    if verification.verified:
        set_run_state(RunState.VERIFIED, "verify", "", result)
        return {"state": RunState.VERIFIED.value, **result}
    notify_unverified(run_id, verification.problem, config)
    set_run_state(RunState.UNVERIFIED, "verify", verification.problem, result)
    return {"state": RunState.UNVERIFIED.value, "reason": verification.problem, **result}


# --- stages -------------------------------------------------------------------------------


@step(owner="podcast-producer", attempts=1)
def ingest(source: str, expected_sha256: str) -> Ingested:
    """Copy the input into the artifact store, named by its SHA-256."""
    runtime = current()
    path = Path(source)
    if not path.is_file():
        raise SourceRejected(
            f"{source} does not exist or is not a file",
            code="missing",
            hint="check the path; the file must stay readable until ingest",
        )
    artifact = runtime.store.put_file(path, suffix=".pdf")
    if artifact.sha256 != expected_sha256:
        raise SourceRejected(
            f"{path.name} changed while it was being read (its SHA-256 is now "
            f"{artifact.sha256[:12]}, was {expected_sha256[:12]})",
            code="changed",
            hint="wait until the file is completely written, then run again",
        )
    _lineage(artifact.sha256, "source", artifact.size)
    return Ingested(sha256=artifact.sha256, size=artifact.size, name=path.name)


@step(owner="podcast-producer", attempts=1)
def extract(pdf: Ingested, config: Config) -> Paper:
    """Extract and validate the paper: text in reading order, title, abstract, sections."""
    from shipyard.podcast.source import extract_paper_isolated

    runtime = current()
    # In a child process: a PDF that crashes pdfium must not take the worker down with it
    # (recovery would run the same step, and crash, again).
    paper = extract_paper_isolated(runtime.store.path(pdf.sha256), config.source, name=pdf.name)
    stored = runtime.store.put_bytes(paper.model_dump_json(indent=2).encode(), suffix=".json")
    _lineage(stored.sha256, "paper", stored.size, [pdf.sha256])
    return paper


@step(owner="script-editor", kind="check", attempts=2)
def write_script(paper: Paper, config: Config) -> ScriptOutcome:
    """Write the two-host script (writer chain) and run the guardrail checks on it."""
    from shipyard.podcast.script import write_script as write

    runtime = current()
    outcome = write(paper, config)
    record_cost(usd=outcome.cost_usd, tokens=outcome.input_tokens + outcome.output_tokens)
    for attempt in outcome.attempts:
        errors = sum(f.severity == "error" for f in attempt.flags)
        _event(
            "script-attempt",
            f"{attempt.writer} #{attempt.attempt}: " + (attempt.error or f"{errors} error flag(s)"),
            attempt.model_dump(mode="json"),
        )
    stored = runtime.store.put_bytes(
        outcome.script.model_dump_json(indent=2).encode(), suffix=".json"
    )
    _lineage(stored.sha256, "script", stored.size, [paper.source_sha256])
    return outcome


def review_gate(run_id: str, drafted: ScriptOutcome, config: Config) -> Decision:
    """Wait, durably, for a named reviewer's decision, or record the auto-approve policy's
    (which never approves a script that still fails an error-severity check)."""
    if config.review.auto_approve and drafted.passed:
        decision = Decision(
            action="approve",
            reviewer="auto-approve policy",
            automatic=True,
            comment="review.auto_approve is on",
        )
    else:
        wait = open_review(run_id, drafted, config)
        message = DBOS.recv(REVIEW_TOPIC, timeout_seconds=max(wait, 0.0))
        if message is None and config.review.escalate_to:
            escalate_review(config)
            message = DBOS.recv(REVIEW_TOPIC, timeout_seconds=config.review.deadline_hours * 3600)
        if message is None:
            decision = Decision(
                action="reject",
                reviewer="deadline",
                automatic=True,
                comment=f"no review decision within {config.review.deadline_hours:g} h",
            )
        else:
            decision = Decision.model_validate(message)
            set_run_state(RunState.RUNNING, "review")
    return record_decision(decision)


@step(owner="script-editor", kind="gate", attempts=1)
def open_review(run_id: str, drafted: ScriptOutcome, config: Config) -> float:
    """Open the review: who must decide, by when; the run waits in awaiting_review."""
    runtime = current()
    deadline = time.time() + config.review.deadline_hours * 3600
    withheld = (
        " (auto-approve withheld: the script fails an error-severity check)"
        if config.review.auto_approve
        else ""
    )
    runtime.ledger.set_state(
        run_id,
        RunState.AWAITING_REVIEW,
        step="review",
        reason=f"waiting for {', '.join(config.review.reviewers)}" + withheld,
    )
    _event(
        "review-requested",
        "review requested",
        {
            "reviewers": config.review.reviewers,
            "deadline": deadline,
            "flags": [f.model_dump(mode="json") for f in drafted.flags],
            "script": drafted.script.model_dump(mode="json"),
        },
    )
    return deadline - time.time()


@step(owner="script-editor", kind="gate", attempts=1)
def escalate_review(config: Config) -> None:
    """The review deadline passed: hand the review to the escalation owner."""
    _event(
        "review-escalated",
        f"review deadline passed; escalated to {config.review.escalate_to}",
        {"to": config.review.escalate_to},
    )


@step(owner="script-editor", kind="gate", attempts=1)
def record_decision(decision: Decision) -> Decision:
    """Record who decided what, and whether a person or a policy did."""
    who = "policy" if decision.automatic else "reviewer"
    _event(
        "review-decided",
        f"{decision.action} by {who} {decision.reviewer}",
        decision.model_dump(mode="json", exclude={"script"}),
    )
    return decision


@step(owner="audio-producer", attempts=3, backoff_seconds=2.0)
def synthesize(script: Script, config: Config) -> list[Clip]:
    """Speak every turn with its host's voice (cached per turn)."""
    from shipyard.podcast.synthesize import synthesize as speak

    runtime = current()
    result = speak(
        script,
        runtime.store,
        config.state / "cache" / "tts",
        config.audio,
        config.show.pronunciations,
    )
    return list(result.clips)


@step(owner="audio-producer", attempts=2)
def master(script: Script, clips: list[Clip], paper: Paper, config: Config) -> Episode:
    """Mix, level and encode the episode; tags, chapters, transcript; integrity gate."""
    from shipyard.podcast.master import master as mix

    runtime = current()
    cover = config.resolve(config.show.image).read_bytes() if config.show.image else None
    episode = mix(
        script,
        clips,
        runtime.store,
        config.show,
        config.audio,
        episode_title=script.title,
        description=paper.abstract or script.title,
        date=dt.datetime.now(dt.UTC).date(),
        cover=cover,
        assets_root=config.root,
    )
    _lineage(episode.audio_sha256, "episode", episode.audio_bytes, [c.sha256 for c in clips])
    return episode


@step(owner="site-publisher", kind="publish", attempts=4, backoff_seconds=2.0)
def publish(
    run_id: str, paper: Paper, script: Script, episode: Episode, config: Config
) -> Published:
    """Commit the episode, its page and the feed to the site repository, and push."""
    from shipyard.podcast.release import publish_episode

    release, already = publish_episode(
        run_id=run_id,
        paper=paper,
        script=script,
        episode=episode,
        config=config,
        store=current().store,
    )
    return Published(release=release, already_published=already)


@step(owner="site-publisher", kind="verify", attempts=1)
def verify(release: Release, config: Config) -> Verification:
    """Poll production until it serves exactly the shipped bytes, or the deadline passes."""
    from shipyard.podcast.release import verify_episode

    return verify_episode(release, config)


@step(owner="site-publisher", attempts=2)
def notify_unverified(run_id: str, problem: str, config: Config) -> None:
    """Tell the owners that production does not serve the release (webhook from config)."""
    from shipyard._verify import notify_webhook

    _event("unverified", problem)
    if config.verify.webhook:
        notify_webhook(
            config.verify.webhook, {"run_id": run_id, "state": "unverified", "problem": problem}
        )


# --- bookkeeping --------------------------------------------------------------------------


def _event(kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    """Record an event on the run this step belongs to."""
    run_id = DBOS.workflow_id
    if run_id is not None:
        current().ledger.event(run_id, kind, message, data)


def _lineage(sha256: str, kind: str, size: int, parents: list[str] | None = None) -> None:
    run_id = DBOS.workflow_id
    if run_id is not None:
        current().ledger.artifact(
            sha256, run_id=run_id, step=kind, kind=kind, size=size, parents=parents or []
        )
