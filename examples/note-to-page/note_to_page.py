"""note-to-page: a Markdown note becomes a reviewed summary page on the site, with an Atom entry,
and the run is done only when production serves both.

    note.md ─▶ read ─▶ summarize ─▶ review gate ─▶ publish ─▶ verify

A second workflow built on shipyard's public API alone (`from shipyard import ...`): its own
settings table (`[note]`), its own review gate with guardrails that re-check every edit and a
revision path for "request changes", publishing through the core's git target, and its own
definition of "served". Named in a project's shipyard.toml:

    [workflows]
    modules = ["note_to_page"]
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from pydantic import BaseModel, ConfigDict, Field

from shipyard import (
    Config,
    FileInput,
    FileSet,
    Flag,
    PermanentError,
    Probe,
    ReviewGate,
    Run,
    RunState,
    Site,
    Verification,
    VerifyConfig,
    artifact_store,
    poll_until_served,
    publish_target,
    record_artifact,
    set_run_state,
    step,
    workflow,
)

WORKFLOW = "note-to-page"
MANIFEST = "notes/index.json"  # the site's list of notes, read back at each publish
FEED = "notes/feed.xml"
ATOM = "{http://www.w3.org/2005/Atom}"


class NoteSettings(BaseModel):
    """The `[note]` table of shipyard.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_title: str = "Notes"
    summary_sentences: int = Field(default=3, ge=1, le=20)
    max_bytes: int = Field(default=1_000_000, ge=1)


class Note(BaseModel):
    model_config = ConfigDict(frozen=True)

    sha256: str
    title: str
    sentences: list[str]


class Summary(BaseModel):
    """What the reviewer reads, edits and approves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    sentences: list[str]


class Page(BaseModel):
    """What was published, and where production must serve it."""

    model_config = ConfigDict(frozen=True)

    entry_id: str
    page_url: str
    page_sha256: str
    page_bytes: int
    feed_url: str
    commit: str


# --- guardrails and revision: the review gate's hooks ---------------------------------------


def check_summary(summary: Summary, context: tuple[Note, NoteSettings]) -> Sequence[Flag]:
    """Every sentence must be the note's own; a title; not much longer than asked."""
    note, settings = context
    flags = []
    if not summary.title.strip():
        flags.append(Flag(check="title", severity="error", message="the summary has no title"))
    known = {_normal(s) for s in note.sentences}
    for sentence in summary.sentences:
        if _normal(sentence) not in known:
            flags.append(
                Flag(
                    check="grounded",
                    severity="error",
                    message=f"not a sentence of the note: {sentence[:80]!r}",
                )
            )
    if len(summary.sentences) > 2 * settings.summary_sentences:
        flags.append(
            Flag(
                check="length",
                severity="warning",
                message=f"{len(summary.sentences)} sentences; "
                f"note.summary_sentences asks for {settings.summary_sentences}",
            )
        )
    return flags


def revise_summary(summary: Summary, comment: str, context: tuple[Note, NoteSettings]) -> Summary:
    """Choose the note's sentences again, preferring those that share words with the
    reviewer's comment ("shorter" asks for one sentence fewer)."""
    note, settings = context
    count = settings.summary_sentences
    if "shorter" in comment.lower():
        count = max(1, len(summary.sentences) - 1)
    return Summary(title=summary.title, sentences=_pick(note.sentences, count, _words(comment)))


def present_summary(summary: Summary) -> str:
    return "\n".join([summary.title, *(f"{i:3} {s}" for i, s in enumerate(summary.sentences))])


summary_review: ReviewGate[Summary] = ReviewGate(
    "summary",
    Summary,
    owner="note-editor",
    recheck=check_summary,
    revise=revise_summary,
    present=present_summary,
)


# --- the workflow ---------------------------------------------------------------------------


def recheck_page(result: dict[str, Any], config: Config, deadline: float) -> Verification:
    page = Page.model_validate(result["page"])
    verify_settings = config.verify.model_copy(update={"deadline_seconds": deadline})
    return _poll(page, verify_settings)


@workflow(
    name=WORKFLOW,
    owner="note-editor",
    requires=("publish.remote", "publish.base_url"),
    accepts="text",
    input_help="the path of a Markdown note",
    settings=NoteSettings,
    table="note",
    recheck=recheck_page,
    publishes=True,
)
def note_to_page(run: Run[FileInput, NoteSettings]) -> dict[str, Any]:
    """Publish a reviewed summary of a Markdown note as a page and an Atom entry, verified."""
    note = read_note(run.input, run.settings)
    draft = summarize(note, run.settings)
    flags = check_summary(draft, (note, run.settings))
    reviewed = summary_review(run, draft, flags=flags, context=(note, run.settings))
    if not reviewed.approved:
        reason = f"rejected by {reviewed.decision.reviewer}: {reviewed.decision.comment}"
        set_run_state(RunState.REJECTED, "review", reason)
        return {"state": RunState.REJECTED.value, "reason": reason}
    set_run_state(RunState.PUBLISHING, "publish")
    page = publish(run.id, note, reviewed.payload, run.settings, run.config)
    set_run_state(RunState.VERIFYING, "verify")
    verification = verify(page, run.config)
    result = {"page_url": page.page_url, "commit": page.commit, "page": page.model_dump()}
    if not verification.verified:
        set_run_state(RunState.UNVERIFIED, "verify", verification.problem, result)
        return {"state": RunState.UNVERIFIED.value, **result}
    set_run_state(RunState.VERIFIED, "verify", "", result)
    return {"state": RunState.VERIFIED.value, **result}


@step(owner="note-editor", attempts=1)
def read_note(source: FileInput, settings: NoteSettings) -> Note:
    """Copy the note into the artifact store and split it into its title and sentences."""
    path = Path(source.path)
    if source.size > settings.max_bytes:
        raise PermanentError(
            f"{source.name} is {source.size:,} bytes, more than note.max_bytes",
            code="too-long",
            hint="raise note.max_bytes in shipyard.toml, or shorten the note",
        )
    stored = artifact_store().put_file(path, suffix=".md")
    if stored.sha256 != source.sha256:
        raise PermanentError(f"{source.name} changed after it was submitted", code="changed")
    try:
        text = stored.path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PermanentError(
            f"{source.name} is not UTF-8 text", code="not-text", hint="give a Markdown file"
        ) from None
    record_artifact(stored, "note")
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), "")
    sentences = _sentences(text)
    if not sentences:
        raise PermanentError(
            f"{source.name} has no sentences to summarize", code="empty", hint="write some"
        )
    return Note(sha256=stored.sha256, title=title or path.stem, sentences=sentences)


@step(owner="note-editor", attempts=1)
def summarize(note: Note, settings: NoteSettings) -> Summary:
    """The note's most central sentences, in their order (an extractive summary)."""
    central = {w for s in note.sentences for w in _words(s)}
    return Summary(
        title=note.title, sentences=_pick(note.sentences, settings.summary_sentences, central)
    )


@step(owner="site-publisher", kind="publish", attempts=4, backoff_seconds=1.0)
def publish(
    run_id: str, note: Note, summary: Summary, settings: NoteSettings, config: Config
) -> Page:
    """Put the page and the Atom feed on the site (`[publish]`: a git repository or a bucket)."""
    entry_id = f"urn:shipyard:note:{note.sha256}"
    path = f"notes/{_slug(summary.title)}-{note.sha256[:8]}.html"
    page = _render_page(summary, settings).encode()

    def files(site: Site) -> FileSet:
        held = site.read(MANIFEST)
        entries = json.loads(held) if held is not None else []
        # A repeated step keeps the first publication's date: same files, no second commit.
        updated = next(
            (e["updated"] for e in entries if e["id"] == entry_id),
            datetime.now(UTC).replace(microsecond=0).isoformat(),
        )
        entries = [e for e in entries if e["id"] != entry_id]
        entries.append({"id": entry_id, "title": summary.title, "path": path, "updated": updated})
        return {  # the feed last: a bucket uploads in this order
            path: page,
            MANIFEST: json.dumps(entries, indent=2).encode(),
            FEED: _render_feed(entries, settings, config.publish.base_url),
        }

    target = publish_target(config, workspace=config.state / "note-site")
    published = target.publish(
        files,
        run_id=run_id,
        message=f"Publish note: {_one_line(summary.title)}",
        trailers={"Shipyard-Note": entry_id},
    )
    return Page(
        entry_id=entry_id,
        page_url=_url(config.publish.base_url, path),
        page_sha256=hashlib.sha256(page).hexdigest(),
        page_bytes=len(page),
        feed_url=_url(config.publish.base_url, FEED),
        commit=published.commit,
    )


@step(owner="site-publisher", kind="verify", attempts=1)
def verify(page: Page, config: Config) -> Verification:
    """Poll production until it serves the page's exact bytes and the feed lists it."""
    return _poll(page, config.verify)


def _poll(page: Page, settings: VerifyConfig) -> Verification:
    def served(probe: Probe) -> None:
        probe.expect_file(
            page.page_url,
            sha256=page.page_sha256,
            size=page.page_bytes,
            content_type="text/html",
            label="page",
        )
        feed = probe.fetch(page.feed_url, "feed")
        try:
            root = ElementTree.fromstring(feed.content)
        except ElementTree.ParseError as exc:
            probe.fail(f"feed {page.feed_url} is not XML: {exc}")
        for entry in root.iter(f"{ATOM}entry"):
            link = entry.find(f"{ATOM}link")
            if entry.findtext(f"{ATOM}id") == page.entry_id:
                if link is None or link.get("href") != page.page_url:
                    probe.fail(f"feed entry {page.entry_id} does not link to {page.page_url}")
                probe.ok(f"feed lists {page.entry_id}, linking to the page")
                return
        probe.fail(f"feed {page.feed_url} has no entry {page.entry_id}")

    return poll_until_served(served, settings, what=f"note {page.entry_id}")


# --- text and rendering ---------------------------------------------------------------------


def _sentences(markdown: str) -> list[str]:
    prose = " ".join(
        line.strip().lstrip("-*> ").strip()
        for line in markdown.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "```", "|"))
    )
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", prose) if len(s.split()) >= 3]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text.lower())}


def _normal(sentence: str) -> str:
    return " ".join(sentence.split())


def _pick(sentences: list[str], count: int, wanted: set[str]) -> list[str]:
    ranked = sorted(range(len(sentences)), key=lambda i: (-len(_words(sentences[i]) & wanted), i))
    return [sentences[i] for i in sorted(ranked[:count])]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "note"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:120]


def _url(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path


def _render_page(summary: Summary, settings: NoteSettings) -> str:
    body = "".join(f"<p>{escape(s)}</p>\n" for s in summary.sentences)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(summary.title)} — {escape(settings.site_title)}</title></head>\n"
        f"<body><h1>{escape(summary.title)}</h1>\n{body}</body></html>\n"
    )


def _render_feed(entries: list[dict[str, str]], settings: NoteSettings, base: str) -> bytes:
    ElementTree.register_namespace("", ATOM[1:-1])
    feed = ElementTree.Element(f"{ATOM}feed")
    ElementTree.SubElement(feed, f"{ATOM}title").text = settings.site_title
    ElementTree.SubElement(feed, f"{ATOM}id").text = _url(base, FEED)
    newest = max(e["updated"] for e in entries)
    ElementTree.SubElement(feed, f"{ATOM}updated").text = newest
    for e in sorted(entries, key=lambda e: e["updated"], reverse=True):
        entry = ElementTree.SubElement(feed, f"{ATOM}entry")
        ElementTree.SubElement(entry, f"{ATOM}id").text = e["id"]
        ElementTree.SubElement(entry, f"{ATOM}title").text = e["title"]
        ElementTree.SubElement(entry, f"{ATOM}updated").text = e["updated"]
        ElementTree.SubElement(entry, f"{ATOM}link", href=_url(base, e["path"]))
    rendered: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)
    return rendered
