"""Verification: ask production whether it serves exactly what was shipped.

`poll_until_served` runs a workflow's check against production with backoff until it passes
or a deadline. The check says what "served" means for that workflow; it is given a `Probe`,
which makes the requests (no caches), records what production answered, and offers the
checks most releases need:

- `expect_file(url, sha256, size, content_type)`: HEAD answers 200 with the type and the
  exact Content-Length; a byte-range request answers 206 over the exact length; the bytes
  served hash to the shipped SHA-256;
- `expect_ok(url)`: the URL answers 200; `expect_gone(url)`: it answers 404 or 410;
- `fetch(url)`: a 200 response, for the check to read (a feed, a page).

A check raises `NotServed` (through `probe.fail`) at the first thing that is wrong. The last
attempt's findings are returned, and recorded on the run as a `verification` event: the checks
that passed and, when not verified, what production served instead, in words ("served file
sha256 abcd… (1,024 bytes) ≠ shipped 1234… (2,048 bytes)").

Production is often a CDN. A response it served from its cache (an `Age`, or `X-Cache`,
`X-Cache-Status`, `CF-Cache-Status` saying HIT) is noted; when an attempt fails on such a
copy and `[verify]` names a purge (`purge_url`, POSTed the URLs; or `purge_command`, run with
them), the CDN is asked to drop them (at most `max_purges` times) and polling goes on until it
serves the shipped bytes. Without one, the problem says a cached copy was served. Apart from
that purge, nothing here writes to production: verification is safe to run at any time
(drift checks).
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

import httpx
from pydantic import BaseModel, ConfigDict

from shipyard._config import VerifyConfig
from shipyard._errors import TransientError
from shipyard._record import record_event
from shipyard._redact import redact
from shipyard._secrets import expand_secrets
from shipyard._telemetry import span

__all__ = [
    "NotServed",
    "Probe",
    "Verification",
    "notify_webhook",
    "poll_until_served",
    "purge_cache",
]

log = logging.getLogger("shipyard.verify")

RANGE_PROBE_BYTES = 1024
_HTTP_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
_NO_CACHE = {"Cache-Control": "no-cache", "Pragma": "no-cache"}
_CACHE_STATUS = ("X-Cache", "X-Cache-Status", "CF-Cache-Status")  # CloudFront, nginx, Cloudflare


class Verification(BaseModel):
    """What verification asked production and what it answered."""

    model_config = ConfigDict(frozen=True)

    verified: bool
    checks: list[str]  # each check that passed, in words
    problem: str = ""  # what production serves instead, when not verified
    attempts: int = 0
    seen: list[str] = []  # what production answered on the last attempt, request by request
    seconds: float = 0.0  # from the first request to the verdict


class NotServed(Exception):
    """One check failed on this attempt; the message says what production served."""


class Probe:
    """One attempt's requests to production, and what they found."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.passed: list[str] = []
        self.seen: list[str] = []
        self.cached: dict[str, str] = {}  # URL -> how a CDN said it answered from its cache

    def fail(self, problem: str) -> NoReturn:
        raise NotServed(problem)

    def ok(self, finding: str) -> None:
        """Record a check that passed, in words."""
        self.passed.append(finding)

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = self.http.request(method, url, headers={**_NO_CACHE, **(headers or {})})
        except httpx.HTTPError as exc:
            self.fail(f"could not reach {redact(url)}: {type(exc).__name__}: {exc}")
        cached = self._note_cache(url, response)
        self.seen.append(
            f"{method} {redact(url)} -> {response.status_code} "
            f"{response.headers.get('content-type', '-')} "
            f"{response.headers.get('content-length', '-')} bytes" + cached
        )
        return response

    def _note_cache(self, url: str, response: httpx.Response) -> str:
        """How the response says it came from a cache (" (cached: Age 30 s)"), noted by URL."""
        said = [
            f"{name} {response.headers[name]}"
            for name in _CACHE_STATUS
            if "hit" in response.headers.get(name, "").lower()
        ]
        age = response.headers.get("age", "")
        if age.isdigit() and int(age) > 0:
            said.append(f"Age {age} s")
        if not said:
            return ""
        self.cached[url] = ", ".join(said)
        return f" (cached: {self.cached[url]})"

    def fetch(self, url: str, label: str = "") -> httpx.Response:
        """GET a URL that must answer 200."""
        response = self.request("GET", url)
        if response.status_code != 200:
            self.fail(f"{label or 'GET'} {url} answered {response.status_code}")
        return response

    def expect_ok(self, url: str, label: str) -> None:
        self.fetch(url, label)
        self.ok(f"{label} {url}: 200")

    def expect_gone(self, url: str) -> None:
        response = self.request("HEAD", url)
        if response.status_code not in (404, 410):
            self.fail(f"{url} still answers {response.status_code}")
        self.ok(f"{url}: {response.status_code}")

    def expect_file(
        self, url: str, *, sha256: str, size: int, content_type: str, label: str = "file"
    ) -> None:
        """Production serves exactly these bytes at `url`: HEAD, a byte range, the hash."""
        head = self.request("HEAD", url)
        kind = head.headers.get("content-type", "")
        length = head.headers.get("content-length", "")
        if head.status_code != 200:
            self.fail(f"HEAD {url} answered {head.status_code}")
        if kind.split(";")[0].strip() != content_type:
            self.fail(f"HEAD {url} gives Content-Type {kind!r}, not {content_type}")
        if length != str(size):
            self.fail(f"HEAD {url} gives Content-Length {length or 'none'}, shipped {size}")
        self.ok(f"HEAD {label}: 200 {content_type}, {size} bytes")

        last = min(RANGE_PROBE_BYTES, size) - 1
        ranged = self.request("GET", url, {"Range": f"bytes=0-{last}"})
        expected_range = f"bytes 0-{last}/{size}"
        if ranged.status_code != 206:
            self.fail(f"range request on {url} answered {ranged.status_code}, not 206")
        if ranged.headers.get("content-range") != expected_range:
            self.fail(
                f"range request gave Content-Range {ranged.headers.get('content-range')!r},"
                f" expected {expected_range!r}"
            )
        if len(ranged.content) != last + 1:
            self.fail(f"range request returned {len(ranged.content)} bytes, not {last + 1}")
        self.ok(f"range request: 206 {expected_range}")

        digest, served = self._stream_hash(url)
        if digest != sha256:
            self.fail(
                f"served {label} sha256 {digest[:12]}… ({served:,} bytes) ≠ shipped "
                f"{sha256[:12]}… ({size:,} bytes)"
            )
        self.ok(f"served {label} sha256 {digest[:12]}… equals the shipped artifact")

    def _stream_hash(self, url: str) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        try:
            with self.http.stream("GET", url, headers=_NO_CACHE) as response:
                self._note_cache(url, response)
                if response.status_code != 200:
                    self.fail(f"GET {url} answered {response.status_code}")
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
        except httpx.HTTPError as exc:
            self.fail(f"could not download {redact(url)}: {type(exc).__name__}: {exc}")
        self.seen.append(f"GET {redact(url)} -> sha256 {digest.hexdigest()[:12]}…, {size} bytes")
        return digest.hexdigest(), size


def poll_until_served(
    check: Callable[[Probe], None],
    settings: VerifyConfig,
    *,
    what: str,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Verification:
    """Run `check` against production until it passes or `settings.deadline_seconds` pass,
    waiting longer between attempts (from `first_delay_seconds` up to `max_delay_seconds`),
    and purging a CDN's stale copies where `settings` names how."""
    http = client or httpx.Client(timeout=_HTTP_TIMEOUT, follow_redirects=True)
    started = time.monotonic()
    deadline = started + settings.deadline_seconds
    delay = settings.first_delay_seconds
    attempts = purges = 0
    purged = ""  # what the last purge did
    try:
        while True:
            attempts += 1
            probe = Probe(http)
            try:
                with span("verify poll", attempt=attempts, what=what):
                    check(probe)
            except NotServed as exc:
                problem = str(exc)
            else:
                log.info("verify: %s verified on attempt %d", what, attempts)
                return _verdict(probe, "", attempts, started, what)
            if probe.cached:
                copies = "; ".join(f"{redact(u)} ({how})" for u, how in probe.cached.items())
                if not (settings.purge_url or settings.purge_command):
                    problem += (
                        f" (a CDN served cached copies: {copies}; set verify.purge_url or "
                        "verify.purge_command to purge them)"
                    )
                elif purges < settings.max_purges:
                    purges += 1
                    purged = _purge(sorted(probe.cached), settings, what)
                    problem += f" ({purged})"
                else:  # the verdict says what the purges did
                    problem += f" (a CDN served cached copies: {copies}; {purges} purges: {purged})"
            left = deadline - time.monotonic()
            log.info("verify: %s not yet (attempt %d): %s", what, attempts, problem)
            if left <= 0:
                return _verdict(probe, problem, attempts, started, what)
            sleep(min(delay, left))
            delay = min(max(delay * 2, 0.05), settings.max_delay_seconds)
    finally:
        if client is None:
            http.close()


def purge_cache(urls: Sequence[str], settings: VerifyConfig, *, timeout: float = 30.0) -> None:
    """Ask the CDN to drop its copies of `urls`: POST {"urls": [...]} to `purge_url`, and/or
    run `purge_command` with the URLs as its last arguments. TransientError when it fails."""
    if settings.purge_url:
        _post_json(
            settings.purge_url,
            {"urls": list(urls)},
            what="purge",
            key="verify.purge_url",
            code="purge-failed",
            timeout=timeout,
        )
    if settings.purge_command:
        command = [expand_secrets(part) for part in settings.purge_command]
        try:
            done = subprocess.run(
                [*command, *urls], capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TransientError(
                f"purge command {settings.purge_command[0]!r} failed: {exc}",
                code="purge-failed",
                hint="check verify.purge_command in shipyard.toml",
            ) from None
        if done.returncode != 0:
            raise TransientError(
                f"purge command {settings.purge_command[0]!r} exited {done.returncode}: "
                + redact(done.stderr.strip()[-300:]),
                code="purge-failed",
                hint="check verify.purge_command in shipyard.toml",
            )


def _purge(urls: list[str], settings: VerifyConfig, what: str) -> str:
    """Purge the stale copies and record it on the run; what it did, in words."""
    try:
        purge_cache(urls, settings)
    except TransientError as exc:
        record_event("cache-purge-failed", f"{what}: {exc.message}", {"urls": urls})
        return f"the CDN's purge failed: {exc.message}"
    record_event(
        "cache-purged", f"{what}: the CDN dropped {len(urls)} cached copies", {"urls": urls}
    )
    log.info("verify: %s: purged %d cached URLs", what, len(urls))
    return "cached copies purged"


def _verdict(probe: Probe, problem: str, attempts: int, started: float, what: str) -> Verification:
    """The last attempt's findings, recorded on the run as the evidence (inside a run)."""
    verification = Verification(
        verified=not problem,
        checks=probe.passed,
        problem=problem,
        attempts=attempts,
        seen=probe.seen,
        seconds=round(time.monotonic() - started, 3),
    )
    said = f"{what}: served" if not problem else f"{what}: not served: {problem}"
    record_event("verification", said, verification.model_dump(mode="json"))
    return verification


def notify_webhook(
    url: str,
    payload: Mapping[str, object],
    *,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> None:
    """POST `payload` as JSON to `url` (e.g. when a run ends unverified); `${NAME}`s in the
    URL are filled from the secrets (see `expand_secrets`).

    Raises TransientError when the hook cannot be reached or does not answer 2xx, so the
    caller's retry policy decides; nothing is swallowed here."""
    _post_json(
        url,
        payload,
        what="webhook",
        key="verify.webhook",
        code="webhook-failed",
        timeout=timeout,
        client=client,
    )


def _post_json(
    url: str,
    payload: Mapping[str, object],
    *,
    what: str,
    key: str,
    code: str,
    timeout: float,
    client: httpx.Client | None = None,
) -> None:
    """POST `payload` as JSON to `url` (its `${NAME}`s filled from the secrets); a
    TransientError naming `what` and the setting `key` when it cannot be reached or does not
    answer 2xx."""
    http = client or httpx.Client(timeout=timeout)
    try:
        response = http.post(expand_secrets(url), json=dict(payload), timeout=timeout)
    except httpx.HTTPError as exc:
        raise TransientError(
            f"{what} {redact(url)} unreachable: {type(exc).__name__}: {exc}",
            code=code,
            hint=f"check {key} in shipyard.toml",
        ) from None
    finally:
        if client is None:
            http.close()
    if not response.is_success:
        raise TransientError(
            f"{what} {redact(url)} answered {response.status_code}",
            code=code,
            hint=f"check {key} in shipyard.toml",
        )
