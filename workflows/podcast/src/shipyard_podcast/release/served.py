"""What "served" means for an episode: the checks verify runs against production.

1. the feed answers 200 and lists an item with the episode's GUID, whose enclosure is the
   episode's URL with the exact byte length;
2. the enclosure is served exactly: `audio/mpeg`, the exact length, byte ranges, the
   shipped SHA-256 (the core's `Probe.expect_file`);
3. the episode page and the artwork answer 200.

After an unpublish, the opposite: the feed no longer lists the GUID and the episode's files
answer 404 or 410.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from pydantic import BaseModel, ConfigDict

from shipyard import Probe, Verification, VerifyConfig, poll_until_served
from shipyard_podcast.models import Release
from shipyard_podcast.release.feed import ParsedFeed, parse_feed

__all__ = ["ReleaseExpectation", "verify_absent", "verify_release"]


class ReleaseExpectation(BaseModel):
    """What production must serve for a release to count as shipped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    guid: str
    feed_url: str
    audio_url: str
    audio_sha256: str
    audio_bytes: int
    page_url: str = ""
    image_url: str = ""

    @classmethod
    def from_release(cls, release: Release) -> ReleaseExpectation:
        return cls(
            guid=release.guid,
            feed_url=release.feed_url,
            audio_url=release.episode_url,
            audio_sha256=release.audio_sha256,
            audio_bytes=release.audio_bytes,
            page_url=release.page_url,
            image_url=release.image_url,
        )


def verify_release(
    want: ReleaseExpectation,
    settings: VerifyConfig,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Poll production until it serves the release, or the deadline passes."""

    def check(probe: Probe) -> None:
        parsed = _feed(probe, want.feed_url)
        item = parsed.item(want.guid)
        if item is None:
            others = ", ".join(repr(i.title) for i in parsed.items[:3])
            probe.fail(
                f"feed has no item with guid {want.guid}; it lists "
                f"{len(parsed.items)} other episode(s)" + (f": {others}" if others else "")
            )
        if item.enclosure_url != want.audio_url:
            probe.fail(
                f"feed item {want.guid} points at {item.enclosure_url}, not {want.audio_url}"
            )
        if item.enclosure_length != want.audio_bytes:
            probe.fail(
                f"feed item {want.guid} gives length {item.enclosure_length}, "
                f"shipped {want.audio_bytes}"
            )
        probe.ok(
            f"feed lists guid {want.guid} with enclosure {want.audio_url} "
            f"({want.audio_bytes} bytes)"
        )
        probe.expect_file(
            want.audio_url,
            sha256=want.audio_sha256,
            size=want.audio_bytes,
            content_type="audio/mpeg",
            label="audio",
        )
        for label, url in (("episode page", want.page_url), ("artwork", want.image_url)):
            if url:
                probe.expect_ok(url, label)

    return poll_until_served(
        check, settings, what=f"release {want.guid}", client=client, sleep=sleep
    )


def verify_absent(
    guid: str,
    feed_url: str,
    gone_urls: list[str],
    settings: VerifyConfig,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Poll production until the feed no longer lists `guid` and every URL in `gone_urls`
    answers 404 or 410 (after an unpublish). `verified` means: it is gone."""

    def check(probe: Probe) -> None:
        parsed = _feed(probe, feed_url)
        if parsed.item(guid) is not None:
            probe.fail(f"feed still lists guid {guid}")
        probe.ok(f"feed no longer lists guid {guid} ({len(parsed.items)} episode(s))")
        for url in gone_urls:
            probe.expect_gone(url)

    return poll_until_served(check, settings, what=f"removal of {guid}", client=client, sleep=sleep)


def _feed(probe: Probe, url: str) -> ParsedFeed:
    response = probe.fetch(url, "feed")
    try:
        return parse_feed(response.content)
    except ValueError as exc:
        probe.fail(f"feed {url} is not a feed: {exc}")
