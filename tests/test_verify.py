"""Verify against the local production: verified only when production serves the shipped
bytes; pushed-but-not-deployed, a stale server, a late deploy, drift, and the webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from shipyard import notify_webhook
from shipyard._errors import TransientError
from shipyard_podcast.models import Release
from shipyard_podcast.release.publish import release_episode, verify_episode
from shipyard_podcast.release.served import ReleaseExpectation, verify_release
from tests.localsite import FAST_VERIFY, PATIENT_VERIFY, Site, fake_mp3, site

__all__ = ["site"]  # the fixture, imported for pytest


def _publish(site: Site, number: int = 1) -> Release:
    return release_episode(site.episode(number), site.config, site.target()).release


def test_the_happy_path_is_verified_with_every_check_recorded(site: Site) -> None:
    release = _publish(site)
    result = verify_release(ReleaseExpectation.from_release(release), FAST_VERIFY)
    assert result.verified, result.problem
    assert result.problem == ""
    assert len(result.checks) == 6
    assert any("HEAD audio: 200 audio/mpeg" in c for c in result.checks)
    assert any(c.startswith("range request: 206") for c in result.checks)
    assert any(release.audio_sha256[:12] in c for c in result.checks)
    assert any(c.startswith("episode page") for c in result.checks)
    assert any(c.startswith("artwork") for c in result.checks)
    assert any("feed.xml -> 200 application/rss+xml" in s for s in result.seen)


def test_pushed_but_not_deployed_is_unverified_saying_what_is_served(site: Site) -> None:
    _publish(site, 1)
    site.production.set_deploy(False)
    release = _publish(site, 2)
    assert site.production.head() == release.commit  # the push did land in the remote
    result = verify_episode(release, site.config)
    assert not result.verified
    assert result.attempts > 1  # it kept asking until the deadline
    assert result.problem.startswith(f"feed has no item with guid {release.guid}")
    assert "it lists 1 other episode(s): 'Paper 1: what it found'" in result.problem
    assert result.checks == []


def test_a_server_stuck_on_an_old_checkout_is_unverified(site: Site) -> None:
    _publish(site, 1)
    site.production.freeze()
    release = _publish(site, 2)
    assert site.production.deployed() == release.commit  # deployed, yet not what is served
    result = verify_episode(release, site.config)
    assert not result.verified
    assert f"feed has no item with guid {release.guid}" in result.problem


def test_stale_audio_under_the_same_url_is_caught_by_its_hash(site: Site) -> None:
    first = _publish(site, 1)
    site.production.freeze()
    same_size = fake_mp3("re-mastered", first.audio_bytes)
    redo = release_episode(
        site.episode(1, audio=same_size, run_id="run-1b"), site.config, site.target()
    ).release
    assert redo.episode_url == first.episode_url
    result = verify_episode(redo, site.config)
    assert not result.verified
    assert result.problem == (
        f"served audio sha256 {first.audio_sha256[:12]}… ({first.audio_bytes:,} bytes) ≠ "
        f"shipped {redo.audio_sha256[:12]}… ({redo.audio_bytes:,} bytes)"
    )
    assert len(result.checks) == 3  # feed, HEAD and range passed: only the bytes differ


def test_a_late_deploy_is_verified_after_retries(site: Site) -> None:
    site.production.set_deploy_delay(1.5)
    release = _publish(site)
    result = verify_release(ReleaseExpectation.from_release(release), PATIENT_VERIFY)
    assert result.verified, result.problem
    assert result.attempts > 1


def test_changing_the_served_mp3_after_verification_is_detected(site: Site) -> None:
    release = _publish(site)
    expectation = ReleaseExpectation.from_release(release)
    assert verify_release(expectation, FAST_VERIFY).verified
    served = site.production.webroot / release.episode_url.removeprefix(site.server.url)
    served.write_bytes(fake_mp3("tampered", release.audio_bytes))
    drift = verify_release(expectation, FAST_VERIFY)
    assert not drift.verified
    assert drift.problem.startswith("served audio sha256 ")
    served.write_bytes(b"short")
    drift = verify_release(expectation, FAST_VERIFY)
    assert drift.problem == (
        f"HEAD {release.episode_url} gives Content-Length 5, shipped {release.audio_bytes}"
    )


def test_a_server_without_byte_ranges_is_unverified(site: Site) -> None:
    # Python's own static server answers HEAD and lengths, but ignores Range headers.
    handler = partial(_QuietStaticHandler, directory=str(site.production.webroot))
    with _serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as base:
        publish = site.config.publish.model_copy(update={"base_url": base})
        config = site.config.model_copy(update={"publish": publish})
        release = release_episode(site.episode(1), config, site.target()).release
        result = verify_episode(release, config)
    assert not result.verified
    assert result.problem == f"range request on {release.episode_url} answered 200, not 206"
    assert len(result.checks) == 2


def test_unreachable_production_is_unverified_not_an_exception(site: Site) -> None:
    release = _publish(site)
    site.server.close()
    result = verify_release(ReleaseExpectation.from_release(release), FAST_VERIFY)
    assert not result.verified
    assert result.problem.startswith(f"could not reach {release.feed_url}: ConnectError")


class _QuietStaticHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


class _Recorder(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []
    status = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Hook", (_Recorder,), {"received": [], "status": 204})
    with _serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as base:
        yield base + "hook", handler


def test_the_webhook_is_told_about_an_unverified_run(recorder: tuple[str, type[_Recorder]]) -> None:
    url, handler = recorder
    notify_webhook(url, {"run_id": "run-1", "state": "unverified", "problem": "stale"})
    assert handler.received == [{"run_id": "run-1", "state": "unverified", "problem": "stale"}]
    handler.status = 500
    with pytest.raises(TransientError) as caught:
        notify_webhook(url, {"run_id": "run-1"})
    assert "answered 500" in caught.value.message


def test_an_unreachable_webhook_raises_with_the_url_redacted(tmp_path: Path) -> None:
    with pytest.raises(TransientError) as caught:
        notify_webhook("http://ops:hunter2@127.0.0.1:9/hook", {"x": 1}, timeout=5)
    assert "hunter2" not in str(caught.value)
    assert caught.value.code == "webhook-failed"


class _serving:
    """Run an HTTP server in a thread for the duration of a with-block; yields its base URL."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
