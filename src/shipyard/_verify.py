"""Verification: ask production whether it serves exactly what was shipped.

`verify_release` polls with backoff until a deadline. One attempt checks, in order:

1. the feed answers 200 and lists an item with the episode's GUID, whose enclosure is the
   episode's URL with the exact byte length;
2. the enclosure answers HEAD with 200, `audio/mpeg` and the exact Content-Length;
3. a byte-range request answers 206 with a Content-Range over the exact length;
4. the bytes served hash to the shipped SHA-256;
5. the episode page and the artwork answer 200.

An attempt stops at the first check that fails; the last attempt's findings are returned: the
checks that passed and, when not verified, what production served instead, in words
("served audio sha256 abcd… (1,024 bytes) ≠ shipped 1234… (2,048 bytes)"). Nothing here
writes anywhere: verify is read-only and safe to run again at any time (drift checks).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
from pydantic import BaseModel, ConfigDict

from shipyard._config import VerifyConfig
from shipyard._errors import TransientError
from shipyard._publish import redact
from shipyard.podcast.feed import ParsedFeed, parse_feed
from shipyard.podcast.models import Release, Verification

__all__ = ["ReleaseExpectation", "notify_webhook", "verify_absent", "verify_release"]

log = logging.getLogger("shipyard.verify")

RANGE_PROBE_BYTES = 1024
_HTTP_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
_NO_CACHE = {"Cache-Control": "no-cache", "Pragma": "no-cache"}


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


class _NotYet(Exception):
    """One check failed on this attempt; the message says what production served."""


@dataclass
class _Attempt:
    passed: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)


def verify_release(
    checks: ReleaseExpectation,
    settings: VerifyConfig,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Poll production until it serves the release, or the deadline passes."""
    return _poll(
        lambda http, attempt: _check_release(checks, http, attempt),
        settings,
        client,
        sleep,
        what=f"release {checks.guid}",
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
    return _poll(
        lambda http, attempt: _check_absent(guid, feed_url, gone_urls, http, attempt),
        settings,
        client,
        sleep,
        what=f"removal of {guid}",
    )


def _poll(
    attempt_once: Callable[[httpx.Client, _Attempt], None],
    settings: VerifyConfig,
    client: httpx.Client | None,
    sleep: Callable[[float], None],
    *,
    what: str,
) -> Verification:
    http = client or httpx.Client(timeout=_HTTP_TIMEOUT, follow_redirects=True)
    started = time.monotonic()
    deadline = started + settings.deadline_seconds
    delay = settings.first_delay_seconds
    attempts = 0
    try:
        while True:
            attempts += 1
            attempt = _Attempt()
            try:
                attempt_once(http, attempt)
            except _NotYet as exc:
                problem = str(exc)
            else:
                log.info("verify: %s verified on attempt %d", what, attempts)
                return Verification(
                    verified=True,
                    checks=attempt.passed,
                    attempts=attempts,
                    seen=attempt.seen,
                    seconds=round(time.monotonic() - started, 3),
                )
            left = deadline - time.monotonic()
            log.info("verify: %s not yet (attempt %d): %s", what, attempts, problem)
            if left <= 0:
                return Verification(
                    verified=False,
                    checks=attempt.passed,
                    problem=problem,
                    attempts=attempts,
                    seen=attempt.seen,
                    seconds=round(time.monotonic() - started, 3),
                )
            sleep(min(delay, left))
            delay = min(max(delay * 2, 0.05), settings.max_delay_seconds)
    finally:
        if client is None:
            http.close()


def _get(
    http: httpx.Client,
    method: str,
    url: str,
    attempt: _Attempt,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    try:
        response = http.request(method, url, headers={**_NO_CACHE, **(headers or {})})
    except httpx.HTTPError as exc:
        raise _NotYet(f"could not reach {redact(url)}: {type(exc).__name__}: {exc}") from None
    attempt.seen.append(
        f"{method} {redact(url)} -> {response.status_code} "
        f"{response.headers.get('content-type', '-')} "
        f"{response.headers.get('content-length', '-')} bytes"
    )
    return response


def _feed(http: httpx.Client, url: str, attempt: _Attempt) -> ParsedFeed:
    response = _get(http, "GET", url, attempt)
    if response.status_code != 200:
        raise _NotYet(f"feed {url} answered {response.status_code}")
    try:
        return parse_feed(response.content)
    except ValueError as exc:
        raise _NotYet(f"feed {url} is not a feed: {exc}") from None


def _check_release(want: ReleaseExpectation, http: httpx.Client, attempt: _Attempt) -> None:
    # 1. the feed lists the episode, pointing at the shipped file
    parsed = _feed(http, want.feed_url, attempt)
    item = parsed.item(want.guid)
    if item is None:
        others = ", ".join(repr(i.title) for i in parsed.items[:3])
        raise _NotYet(
            f"feed has no item with guid {want.guid}; it lists "
            f"{len(parsed.items)} other episode(s)" + (f": {others}" if others else "")
        )
    if item.enclosure_url != want.audio_url:
        raise _NotYet(f"feed item {want.guid} points at {item.enclosure_url}, not {want.audio_url}")
    if item.enclosure_length != want.audio_bytes:
        raise _NotYet(
            f"feed item {want.guid} gives length {item.enclosure_length}, "
            f"shipped {want.audio_bytes}"
        )
    attempt.passed.append(
        f"feed lists guid {want.guid} with enclosure {want.audio_url} ({want.audio_bytes} bytes)"
    )

    # 2. HEAD on the enclosure
    head = _get(http, "HEAD", want.audio_url, attempt)
    kind = head.headers.get("content-type", "")
    length = head.headers.get("content-length", "")
    if head.status_code != 200:
        raise _NotYet(f"HEAD {want.audio_url} answered {head.status_code}")
    if kind.split(";")[0].strip() != "audio/mpeg":
        raise _NotYet(f"HEAD {want.audio_url} gives Content-Type {kind!r}, not audio/mpeg")
    if length != str(want.audio_bytes):
        raise _NotYet(
            f"HEAD {want.audio_url} gives Content-Length {length or 'none'}, "
            f"shipped {want.audio_bytes}"
        )
    attempt.passed.append(f"HEAD audio: 200 audio/mpeg, {want.audio_bytes} bytes")

    # 3. a byte range
    last = min(RANGE_PROBE_BYTES, want.audio_bytes) - 1
    ranged = _get(http, "GET", want.audio_url, attempt, {"Range": f"bytes=0-{last}"})
    expected_range = f"bytes 0-{last}/{want.audio_bytes}"
    if ranged.status_code != 206:
        raise _NotYet(f"range request on {want.audio_url} answered {ranged.status_code}, not 206")
    if ranged.headers.get("content-range") != expected_range:
        raise _NotYet(
            f"range request gave Content-Range {ranged.headers.get('content-range')!r},"
            f" expected {expected_range!r}"
        )
    if len(ranged.content) != last + 1:
        raise _NotYet(f"range request returned {len(ranged.content)} bytes, not {last + 1}")
    attempt.passed.append(f"range request: 206 {expected_range}")

    # 4. the bytes themselves
    digest, size = _stream_hash(http, want.audio_url, attempt)
    if digest != want.audio_sha256:
        raise _NotYet(
            f"served audio sha256 {digest[:12]}… ({size:,} bytes) ≠ shipped "
            f"{want.audio_sha256[:12]}… ({want.audio_bytes:,} bytes)"
        )
    attempt.passed.append(f"served audio sha256 {digest[:12]}… equals the shipped artifact")

    # 5. the page and the artwork
    for label, url in (("episode page", want.page_url), ("artwork", want.image_url)):
        if not url:
            continue
        response = _get(http, "GET", url, attempt)
        if response.status_code != 200:
            raise _NotYet(f"{label} {url} answered {response.status_code}")
        attempt.passed.append(f"{label} {url}: 200")


def _stream_hash(http: httpx.Client, url: str, attempt: _Attempt) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with http.stream("GET", url, headers=_NO_CACHE) as response:
            if response.status_code != 200:
                raise _NotYet(f"GET {url} answered {response.status_code}")
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
    except httpx.HTTPError as exc:
        raise _NotYet(f"could not download {redact(url)}: {type(exc).__name__}: {exc}") from None
    attempt.seen.append(f"GET {redact(url)} -> sha256 {digest.hexdigest()[:12]}…, {size} bytes")
    return digest.hexdigest(), size


def _check_absent(
    guid: str, feed_url: str, gone_urls: list[str], http: httpx.Client, attempt: _Attempt
) -> None:
    parsed = _feed(http, feed_url, attempt)
    if parsed.item(guid) is not None:
        raise _NotYet(f"feed still lists guid {guid}")
    attempt.passed.append(f"feed no longer lists guid {guid} ({len(parsed.items)} episode(s))")
    for url in gone_urls:
        response = _get(http, "HEAD", url, attempt)
        if response.status_code not in (404, 410):
            raise _NotYet(f"{url} still answers {response.status_code}")
        attempt.passed.append(f"{url}: {response.status_code}")


def notify_webhook(
    url: str,
    payload: Mapping[str, object],
    *,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> None:
    """POST `payload` as JSON to `url` (e.g. when a run ends unverified).

    Raises TransientError when the hook cannot be reached or does not answer 2xx, so the
    caller's retry policy decides; nothing is swallowed here."""
    http = client or httpx.Client(timeout=timeout)
    try:
        response = http.post(url, json=dict(payload), timeout=timeout)
    except httpx.HTTPError as exc:
        raise TransientError(
            f"webhook {redact(url)} unreachable: {type(exc).__name__}: {exc}",
            code="webhook-failed",
            hint="check verify.webhook in shipyard.toml",
        ) from None
    finally:
        if client is None:
            http.close()
    if not response.is_success:
        raise TransientError(
            f"webhook {redact(url)} answered {response.status_code}",
            code="webhook-failed",
            hint="check verify.webhook in shipyard.toml",
        )
