"""Fetching what a user pasted (a paper's link): untrusted input from an untrusted server.

`fetch(url, config, expect=...)` GETs one URL within `[fetch]`'s limits and gives its bytes,
or refuses with the reason:

- **HTTPS only** (`allow_http` lets plain HTTP in);
- **public addresses only**: every address a host resolves to is checked before connecting,
  and the address actually connected to is checked again (a name that resolves differently
  the second time gains nothing); loopback, private, link-local and reserved addresses are
  refused unless `allow_networks` names them (tests name 127.0.0.0/8);
- **redirects** followed one at a time, each checked as above, at most `max_redirects`;
- **size**: a `Content-Length` over `max_bytes` is refused before the body is read, and a
  body is read no further than `max_bytes`;
- **time**: the whole fetch, redirects and a slow body included, ends at `timeout_seconds`
  (a server that trickles bytes is cut off there);
- **what it is**: the answer's type must be one `expect` names, by its first bytes as well
  as by its `Content-Type` (an HTML page where a PDF was promised is refused);
- it says what is fetching (`User-Agent: shipyard/VERSION (+contact)`), and a host named in
  `providers` is paced by that provider's quota, which every worker shares.

Within a run, a URL is fetched once: its bytes go to the artifact store and a journal entry
(`state/journal/RUN/fetched/`) names them, so a step that is retried, or a run recovered
after a crash, reads what was fetched before and never fetches again; each fetch is an event
on the run (`fetched`: the URL, where it led, the kind, the bytes' SHA-256).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx

from shipyard._artifacts import write_atomically
from shipyard._config import Config, FetchConfig
from shipyard._errors import PermanentError, TransientError
from shipyard._record import current_run_id, record_event
from shipyard._redact import redact
from shipyard._version import __version__

if TYPE_CHECKING:
    from shipyard._providers import Quota

__all__ = ["KINDS", "FetchRefused", "Fetched", "fetch", "kind_of"]


class FetchRefused(PermanentError):
    """A fetch refused for what the server or its answer is: trying again will not help."""


# What a body is, by its first bytes: the only evidence a server cannot misstate.
KINDS: Mapping[str, str] = {
    "pdf": "a PDF",
    "gzip": "a gzip file",
    "tar": "a tar archive",
    "html": "a web page",
    "json": "JSON",
    "text": "text",
}


def kind_of(data: bytes) -> str:
    """What `data` is by its first bytes: one of `KINDS`, or "" when none fits."""
    head = data[:1024]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if data[257:262] == b"ustar":
        return "tar"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start[:512]:
        return "html"
    if start.startswith((b"{", b"[")):
        return "json"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return ""
    return "text"


@dataclass(frozen=True)
class Fetched:
    url: str  # as asked
    final_url: str  # after redirects
    content_type: str  # as the server said (its media type, lower case)
    kind: str  # as its first bytes say (`KINDS`)
    data: bytes


def fetch(
    url: str,
    config: Config,
    *,
    expect: tuple[str, ...],
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """GET `url` within `[fetch]`'s limits; its bytes, which `expect` (kinds of `KINDS`)
    must name. `FetchRefused` for an answer that will not change (a refused address, a 404,
    too large, the wrong kind), `TransientError` for one that may (a timeout, a 5xx). In a
    run, what the run fetched before is read back instead."""
    run_id = current_run_id()
    if run_id is None:
        return _fetch(url, config, expect, headers)
    store = config.artifact_store()
    asked = json.dumps([url, sorted((headers or {}).items())])
    entry = config.state_folder("journal", run_id, "fetched") / (
        hashlib.sha256(asked.encode()).hexdigest()[:32] + ".json"
    )
    if entry.is_file():
        kept = json.loads(entry.read_text(encoding="utf-8"))
        if store.has(kept["sha256"]) and kept["kind"] in expect:
            data = store.path(kept["sha256"]).read_bytes()
            return Fetched(url, kept["final_url"], kept["content_type"], kept["kind"], data)
    got = _fetch(url, config, expect, headers)
    sha256 = store.put_bytes(got.data, suffix=f".{got.kind}").sha256
    kept = {  # what is stored names no credential a link held
        "url": redact(url),
        "final_url": redact(got.final_url),
        "content_type": got.content_type,
        "kind": got.kind,
        "sha256": sha256,
        "bytes": len(got.data),
    }
    write_atomically(entry, lambda f: f.write(json.dumps(kept).encode()))
    record_event(
        "fetched",
        f"{redact(url)}: {KINDS[got.kind]}, {len(got.data):,} bytes"
        + (f" (from {redact(got.final_url)})" if got.final_url != url else ""),
        kept,
    )
    return got


def _fetch(
    url: str, config: Config, expect: tuple[str, ...], headers: Mapping[str, str] | None
) -> Fetched:
    limits = config.fetch
    deadline = time.monotonic() + limits.timeout_seconds
    asked, hops = url, 0
    agent = f"shipyard/{__version__}" + (f" (+{limits.contact})" if limits.contact else "")
    sent = {"User-Agent": agent, "Accept-Encoding": "identity", **(headers or {})}
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        while True:
            host = _checked(url, limits)
            quota = _quota(host, config)
            with quota.slot() if quota is not None else contextlib.nullcontext():
                answer = _get(client, url, sent, limits, deadline)
            if answer.location is None:
                break
            hops += 1
            if hops > limits.max_redirects:
                raise FetchRefused(
                    f"{redact(asked)} redirects more than {limits.max_redirects} times",
                    code="fetch-redirects",
                    hint="give the final link, or raise fetch.max_redirects",
                )
            url = urljoin(url, answer.location)
    found = kind_of(answer.data)
    if found not in expect:
        wanted = " or ".join(KINDS[k] for k in expect)
        what = KINDS.get(found, "something else")
        raise FetchRefused(
            f"{redact(url)} gave {what} ({answer.content_type or 'no Content-Type'}), not {wanted}",
            code="fetch-kind",
            hint="check the link; a page that asks you to sign in or pay gives HTML: "
            "download the file yourself and pass its path",
        )
    return Fetched(asked, url, answer.content_type, found, answer.data)


@dataclass(frozen=True)
class _Answer:
    location: str | None  # a redirect's target
    content_type: str
    data: bytes


def _get(
    client: httpx.Client,
    url: str,
    headers: Mapping[str, str],
    limits: FetchConfig,
    deadline: float,
) -> _Answer:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _too_slow(url, limits)
    timeout = httpx.Timeout(min(left, 30.0), connect=min(left, 10.0))
    try:
        with client.stream("GET", url, headers=dict(headers), timeout=timeout) as response:
            _check_peer(response, url, limits)
            if response.is_redirect and "location" in response.headers:
                return _Answer(response.headers["location"], "", b"")
            _check_status(response, url)
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > limits.max_bytes:
                raise _too_large(url, limits)
            body = bytearray()
            for chunk in response.iter_bytes():  # decoded, where a server encodes anyway
                body += chunk
                if len(body) > limits.max_bytes:
                    raise _too_large(url, limits)
                if time.monotonic() > deadline:
                    raise _too_slow(url, limits)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return _Answer(None, kind, bytes(body))
    except httpx.TimeoutException:
        raise _too_slow(url, limits) from None
    except httpx.HTTPError as exc:
        raise TransientError(
            f"could not fetch {redact(url)}: {type(exc).__name__}: {exc}",
            code="fetch-failed",
            hint="check the link and the network; the step tries again",
        ) from None


def _checked(url: str, limits: FetchConfig) -> str:
    """The URL's host, once its scheme and every address it resolves to are allowed."""
    parts = urlsplit(url)
    allowed = ("https", "http") if limits.allow_http else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise FetchRefused(
            f"{redact(url)} is not an {' or '.join(allowed)} link",
            code="fetch-scheme",
            hint="give an https:// link"
            + ("" if limits.allow_http else " (fetch.allow_http lets plain http in)"),
        )
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientError(
            f"could not find {parts.hostname}: {exc}",
            code="fetch-failed",
            hint="check the link and the network",
        ) from None
    for *_, address in found:
        _check_address(str(address[0]), url, limits)
    return parts.hostname


def _check_peer(response: httpx.Response, url: str, limits: FetchConfig) -> None:
    """The address actually connected to is allowed (its name may have resolved anew)."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if peer:
        _check_address(str(peer[0]), url, limits)


def _check_address(address: str, url: str, limits: FetchConfig) -> None:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return
    if any(ip in ipaddress.ip_network(n, strict=False) for n in limits.allow_networks):
        return
    raise FetchRefused(
        f"{redact(url)} leads to {ip}, a private, loopback or reserved address",
        code="fetch-address",
        hint="only public addresses are fetched; fetch.allow_networks names networks to "
        "allow (for a server on your own network)",
    )


def _check_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status == 200:
        return
    message = f"{redact(url)} answered {status} {response.reason_phrase}"
    if status == 429 or status >= 500:
        raise TransientError(message, code="fetch-failed", hint="the step tries again")
    hint = {
        401: "it asks to sign in: download the file yourself and pass its path",
        402: "it asks for payment: download the file yourself and pass its path",
        403: "it refuses access: download the file yourself and pass its path",
        404: "check the link: nothing is there",
        410: "it is gone: check the link",
    }.get(status, "check the link")
    raise FetchRefused(message, code="fetch-status", hint=hint)


def _too_large(url: str, limits: FetchConfig) -> FetchRefused:
    return FetchRefused(
        f"{redact(url)} is larger than fetch.max_bytes ({limits.max_bytes:,} bytes)",
        code="fetch-too-large",
        hint="raise fetch.max_bytes if it is a real paper, or download it and pass the file",
    )


def _too_slow(url: str, limits: FetchConfig) -> FetchRefused:
    return FetchRefused(
        f"{redact(url)} did not finish within fetch.timeout_seconds ({limits.timeout_seconds:g} s)",
        code="fetch-timeout",
        hint="try again later, raise fetch.timeout_seconds, or download it and pass the file",
    )


def _quota(host: str, config: Config) -> Quota | None:
    from shipyard._providers import provider_quota

    name = next(
        (p for h, p in config.fetch.providers.items() if host == h or host.endswith(f".{h}")),
        None,
    )
    return provider_quota(name, config) if name else None
