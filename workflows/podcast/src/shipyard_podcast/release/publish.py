"""Releasing an episode to the show's site repository, and taking one back.

`publish_episode` reads the site's manifest (`episodes.json`) as the target holds it, adds or
replaces the episode by GUID, regenerates the feed and the index from it, validates the feed,
and publishes the episode's files with them through the project's target (`[publish]`: a git
repository, one commit; or a bucket, the media first and the feed last). Where each file
goes is declared once, in `[podcast.site]` (`audio_path = "episodes/{slug}.mp3"`, ...).

Both functions may run again after a crash: the manifest is read afresh from the target each
time and rendering is deterministic, so a repeat finds its publication (or nothing to change)
and makes no second one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shipyard import (
    ArtifactStore,
    Config,
    ConfigError,
    FileSet,
    PublishFailed,
    PublishTarget,
    Site,
    Verification,
    publish_target,
    sha256_file,
)
from shipyard_podcast.artwork import artwork_problems, image_size
from shipyard_podcast.language import wording
from shipyard_podcast.models import Episode, Paper, Release, Script
from shipyard_podcast.release.feed import (
    MANIFEST_PATH,
    ManifestEpisode,
    ShowInfo,
    SiteManifest,
    chapters_from_json,
    render_episode_page,
    render_feed,
    render_index,
    site_url,
    validate_feed,
)
from shipyard_podcast.release.served import ReleaseExpectation, verify_absent, verify_release
from shipyard_podcast.settings import PodcastSettings, SiteConfig, podcast_settings

__all__ = [
    "EpisodeFiles",
    "Released",
    "Unpublished",
    "episode_guid",
    "episode_slug",
    "publish_episode",
    "recheck_episode",
    "release_episode",
    "show_notes",
    "unpublish_episode",
    "verify_episode",
    "verify_unpublished",
]


@dataclass(frozen=True, slots=True)
class EpisodeFiles:
    """An episode ready to release: its files (in the artifact store) and what to say about it."""

    run_id: str
    guid: str
    title: str
    description: str
    published: datetime  # timezone-aware; kept from the first release when re-released
    duration_seconds: float
    audio: Path  # MP3
    transcript: Path  # WebVTT
    chapters: Path  # Podcasting 2.0 chapters JSON
    cover: bytes | None = None  # the show's artwork; None: keep the site's, or generate one
    paper_title: str = ""
    paper_sha256: str = ""
    paper_url: str = ""
    slug: str = ""  # empty: derived from the title and the GUID
    hosts: tuple[str, ...] = ()  # who is heard
    authors: tuple[str, ...] = ()  # the paper's, as the script credits them
    language: str = ""  # BCP-47; empty: the show's
    ai_disclosure: str = ""  # empty: the show's (its language's phrasebook's line)


@dataclass(frozen=True, slots=True)
class Released:
    release: Release
    pushed: bool  # this call pushed the commit
    already_published: bool  # the site already had it; nothing was committed


@dataclass(frozen=True, slots=True)
class Unpublished:
    guid: str
    commit: str
    already: bool  # the site had no such episode (any more): nothing was committed
    feed_url: str
    gone_urls: list[str]  # URLs that must stop answering 200


def episode_slug(title: str, guid: str) -> str:
    """A URL-safe, stable name: the title's words and a hash of the GUID (so it is unique)."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")
    tag = hashlib.sha256(guid.encode()).hexdigest()[:8]
    return f"{words}-{tag}" if words else tag


def _paths(site: SiteConfig, slug: str) -> dict[str, str]:
    keys = ("audio_path", "page_path", "transcript_path", "chapters_path")
    return {key: str(getattr(site, key)).format(slug=slug) for key in keys}


def _show(config: Config, settings: PodcastSettings, image_path: str) -> ShowInfo:
    if not config.publish.base_url:
        raise ConfigError(
            "no production URL configured",
            key="publish.base_url",
            hint="set it to where the site is served, e.g. http://127.0.0.1:8000/",
        )
    return ShowInfo.from_config(
        settings.show,
        base_url=config.publish.base_url,
        feed_path=settings.site.feed_path,
        image_path=image_path,
    )


def _artwork(settings: PodcastSettings, cover: bytes | None, site: Site) -> tuple[str, bytes]:
    """(site path, bytes): the given cover, else the site's own, else a generated one."""
    template = settings.site.image_path
    if cover is not None:
        problems = artwork_problems(cover)
        if problems:
            raise PublishFailed(
                "the show's artwork is unusable: " + "; ".join(problems),
                code="artwork-invalid",
                hint="use a square PNG or JPEG of 1400-3000 px (podcast.show.image)",
            )
        kind = image_size(cover)
        ext = "jpg" if kind is not None and kind[0] == "jpeg" else "png"
        return template.format(ext=ext), cover
    for ext in ("png", "jpg"):
        if (held := site.read(template.format(ext=ext))) is not None:
            return template.format(ext=ext), held
    from shipyard_podcast.artwork import make_cover  # numpy: only when a cover is drawn

    return template.format(ext="png"), make_cover(settings.show.title)


def release_episode(episode: EpisodeFiles, config: Config, target: PublishTarget) -> Released:
    """Put the episode, its page, the feed and the index on the site: the media first, the
    feed and the manifest last (the order a bucket uploads in)."""
    settings = podcast_settings(config)
    slug = episode.slug or episode_slug(episode.title, episode.guid)
    paths = _paths(settings.site, slug)
    audio_sha = sha256_file(episode.audio)
    audio_bytes = episode.audio.stat().st_size
    transcript = episode.transcript.read_text(encoding="utf-8")
    chapters = episode.chapters.read_bytes()
    chapter_list = chapters_from_json(chapters)
    if episode.published.tzinfo is None:
        raise ConfigError("the episode's publication time has no timezone")
    shipped: dict[str, str] = {}
    show_seen: list[ShowInfo] = []

    def files(site: Site) -> FileSet:
        image_path, image = _artwork(settings, episode.cover, site)
        show = _show(config, settings, image_path)
        manifest = _read_manifest(site)
        earlier = manifest.get(episode.guid)
        entry = ManifestEpisode(
            guid=episode.guid,
            slug=slug,
            title=episode.title,
            description=episode.description,
            published=earlier.published if earlier else episode.published,
            duration_seconds=episode.duration_seconds,
            audio_path=paths["audio_path"],
            audio_bytes=audio_bytes,
            audio_sha256=audio_sha,
            page_path=paths["page_path"],
            transcript_path=paths["transcript_path"],
            chapters_path=paths["chapters_path"],
            paper_title=episode.paper_title,
            paper_sha256=episode.paper_sha256,
            paper_url=episode.paper_url,
            run_id=episode.run_id,
            hosts=list(episode.hosts),
            authors=list(episode.authors),
            ai_disclosure=episode.ai_disclosure or show.ai_disclosure,
            language=episode.language,
        )
        clash = next(
            (
                e
                for e in manifest.episodes
                if e.guid != entry.guid and e.audio_path == entry.audio_path
            ),
            None,
        )
        if clash is not None:
            raise PublishFailed(
                f"{entry.audio_path} already belongs to episode {clash.guid}",
                code="enclosure-taken",
                hint="give the episode another slug",
            )
        manifest = manifest.upsert(entry)
        feed = render_feed(show, manifest.episodes)
        problems = validate_feed(feed)
        if problems:
            raise PublishFailed(
                "the feed would not be valid: " + "; ".join(problems),
                code="feed-invalid",
                hint="fix the [podcast.show] settings in shipyard.toml",
            )
        out: dict[str, bytes | Path] = {
            paths["audio_path"]: episode.audio,
            image_path: image,
            paths["transcript_path"]: transcript.encode("utf-8"),
            paths["chapters_path"]: chapters,
            paths["page_path"]: render_episode_page(
                show, entry, transcript_vtt=transcript, chapters=chapter_list
            ),
            settings.site.index_path: render_index(show, manifest.episodes),
            settings.site.feed_path: feed,
            MANIFEST_PATH: manifest.to_json(),
        }
        shipped.clear()
        shipped.update({path: _sha(data) for path, data in out.items()})
        show_seen[:] = [show]
        return out

    result = target.publish(
        files,
        run_id=episode.run_id,
        message=f"Publish episode: {episode.title}",
        trailers={"Shipyard-Guid": episode.guid, "Shipyard-Audio-Sha256": audio_sha},
    )
    show = show_seen[-1]
    release = Release(
        run_id=episode.run_id,
        guid=episode.guid,
        commit=result.commit,
        files=shipped,
        episode_url=site_url(show.link, paths["audio_path"]),
        feed_url=show.feed_url,
        page_url=site_url(show.link, paths["page_path"]),
        audio_sha256=audio_sha,
        audio_bytes=audio_bytes,
        image_url=show.image_url,
    )
    return Released(release, pushed=result.pushed, already_published=result.already_published)


def publish_episode(
    *,
    run_id: str,
    paper: Paper,
    script: Script,
    episode: Episode,
    config: Config,
    store: ArtifactStore,
    published: datetime | None = None,
) -> tuple[Release, bool]:
    """The workflow's publish step: release a mastered episode from the artifact store to
    the site that `config.publish` names. Returns the Release and whether the site already
    had it (a repeated step)."""
    show = podcast_settings(config).for_language(script.language).show
    cover = config.resolve(show.image).read_bytes() if show.image else None
    files = EpisodeFiles(
        run_id=run_id,
        guid=episode_guid(paper.source_sha256),
        title=script.title,
        description=show_notes(script, paper, show.ai_disclosure),
        published=published or datetime.now(UTC),
        duration_seconds=episode.seconds,
        audio=store.path(episode.audio_sha256),
        transcript=store.path(episode.transcript_sha256),
        chapters=store.path(episode.chapters_sha256),
        cover=cover,
        paper_title=script.credits_for(paper).title,
        paper_sha256=paper.source_sha256,
        hosts=tuple(h.name for h in script.hosts),
        authors=tuple(script.credits_for(paper).authors),
        language=script.language,
        ai_disclosure=show.ai_disclosure,
    )
    outcome = release_episode(files, config, publish_target(config))
    return outcome.release, outcome.already_published


def verify_episode(
    release: Release, config: Config, *, deadline_seconds: float | None = None
) -> Verification:
    """The workflow's verify step (and the drift check): does production serve `release`?"""
    settings = config.verify
    if deadline_seconds is not None:
        settings = settings.model_copy(update={"deadline_seconds": deadline_seconds})
    return verify_release(ReleaseExpectation.from_release(release), settings)


def recheck_episode(release: Release, config: Config, *, deadline_seconds: float) -> Verification:
    """The drift check: the target still holds the episode's own files with the shipped bytes
    (a CDN may hide a changed origin), and production serves the release."""
    site = podcast_settings(config).site
    shared = {site.feed_path, site.index_path, MANIFEST_PATH}
    shared |= {site.image_path.format(ext=ext) for ext in ("png", "jpg")}
    owned = {path: sha for path, sha in release.files.items() if path not in shared}
    changed = publish_target(config).missing(owned)
    if changed:
        return Verification(
            verified=False,
            checks=[],
            problem="the site no longer holds what was shipped: " + "; ".join(changed),
        )
    return verify_episode(release, config, deadline_seconds=deadline_seconds)


def verify_unpublished(unpublished: Unpublished, config: Config) -> Verification:
    """After an unpublish: production no longer lists the episode nor serves its files."""
    return verify_absent(
        unpublished.guid, unpublished.feed_url, unpublished.gone_urls, config.verify
    )


def episode_guid(paper_sha256: str) -> str:
    """One episode per paper: releasing the same paper again replaces its episode."""
    return f"urn:shipyard:paper:{paper_sha256}"


def show_notes(script: Script, paper: Paper, disclosure: str) -> str:
    """The episode's description (the page, the feed item, the MP3's comment), in its
    language: which paper, by whom, as the script credits them, the paper's abstract, and the
    AI disclosure."""
    page = wording(script.language).page
    credits = script.credits_for(paper)
    authors = ", ".join(credits.authors[:6])
    if len(credits.authors) > 6:
        authors += f" {page['et_al']}"
    intro = page["about"].format(title=credits.title)
    intro += page["by"].format(authors=authors) if authors else "."
    return "\n\n".join(part for part in (intro, paper.abstract, disclosure) if part)


def unpublish_episode(
    guid: str, config: Config, target: PublishTarget | None = None, *, run_id: str
) -> Unpublished:
    """Take an episode's feed entry off, then its files (idempotent)."""
    target = target or publish_target(config)
    entry = _read_manifest(target.site()).get(guid)
    settings = podcast_settings(config)
    feed_url = site_url(config.publish.base_url, settings.site.feed_path)
    if entry is None:
        head = target.find_run_commit(f"{run_id}/unpublish") or ""
        return Unpublished(guid, head, already=True, feed_url=feed_url, gone_urls=[])
    removed = [entry.audio_path, entry.page_path, entry.transcript_path, entry.chapters_path]

    def files(site: Site) -> FileSet:
        image_path, image = _artwork(settings, None, site)
        show = _show(config, settings, image_path)
        manifest = _read_manifest(site).without(guid)
        return {
            image_path: image,
            settings.site.index_path: render_index(show, manifest.episodes),
            settings.site.feed_path: render_feed(show, manifest.episodes),
            MANIFEST_PATH: manifest.to_json(),
        }

    result = target.publish(
        files,
        run_id=f"{run_id}/unpublish",
        message=f"Unpublish episode: {entry.title}",
        trailers={"Shipyard-Guid": guid, "Shipyard-Action": "unpublish"},
        remove=removed,
    )
    return Unpublished(
        guid,
        result.commit,
        already=result.already_published,
        feed_url=feed_url,
        gone_urls=[site_url(config.publish.base_url, p) for p in removed],
    )


def _read_manifest(site: Site) -> SiteManifest:
    held = site.read(MANIFEST_PATH)
    return SiteManifest.from_json(held) if held is not None else SiteManifest()


def _sha(data: bytes | Path) -> str:
    return sha256_file(data) if isinstance(data, Path) else hashlib.sha256(data).hexdigest()
