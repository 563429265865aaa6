"""The object-store target against moto's S3 server on loopback (and Debian's nginx as the
CDN in front of it): files uploaded in order with their SHA-256 checksum, nothing uploaded
twice, earlier versions kept, removals proven, one release at a time; verification through a
CDN that serves stale copies until it is purged."""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

import shipyard
from shipyard import PublishFailed, RunState, VerifyConfig, poll_until_served
from shipyard._bucket_target import BucketTarget
from shipyard._verify import Probe
from shipyard_podcast.release.feed import parse_feed
from tests.objectstore import PURGE_COMMAND, Cdn, HeldUploads, caching_proxy, s3_server
from tests.project import Project, kill_group, make_project

BUCKET = "show-site"
PURGE = f"purge_command = {json.dumps(PURGE_COMMAND)}"  # [verify]: the CDN's purge


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with s3_server(monkeypatch, BUCKET, public=True) as endpoint:
        yield endpoint


def target(endpoint: str, **options: Any) -> BucketTarget:
    return BucketTarget(f"s3://{BUCKET}/pod", endpoint_url=endpoint, **options)


def uploads(bucket: BucketTarget) -> list[tuple[str, str]]:
    """Every PutObject the target sends from now on: (key, its x-amz-checksum-sha256)."""
    sent: list[tuple[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        key = request.url.split(f"/{BUCKET}/", 1)[1].split("?")[0]
        sent.append((key, request.headers.get("x-amz-checksum-sha256", b"").decode()))

    bucket._client.meta.events.register("before-send.s3.PutObject", record)
    return sent


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_files_go_up_in_order_with_their_checksum_and_a_repeat_uploads_nothing(s3: str) -> None:
    bucket = target(s3)
    sent = uploads(bucket)
    files = {"episodes/a.mp3": b"ID3 audio", "episodes/a.html": b"<p>a</p>", "feed.xml": b"<rss/>"}
    first = bucket.publish(files, run_id="run-1", message="Publish a")
    assert first.pushed and not first.already_published
    objects = [(k, c) for k, c in sent if not k.startswith("pod/_shipyard/")]
    assert objects == [(f"pod/{path}", b64sha(data)) for path, data in files.items()]

    sent.clear()
    again = bucket.publish(files, run_id="run-1", message="Publish a")  # a recovered step
    assert again.already_published and again.commit == first.commit and sent == []
    other = bucket.publish(files, run_id="run-2", message="Publish a")  # the same bytes
    assert other.already_published and not other.pushed
    written = [k for k, _ in sent if k != "pod/_shipyard/lock"]
    assert written == ["pod/_shipyard/runs/run-2.json"]  # its record alone

    served = httpx.get(f"{s3}/{BUCKET}/pod/episodes/a.mp3")
    assert served.content == b"ID3 audio" and served.headers["content-type"] == "audio/mpeg"
    assert bucket.missing({p: hashlib.sha256(d).hexdigest() for p, d in files.items()}) == []


def test_a_replaced_file_keeps_its_version_and_a_removed_one_is_proven_gone(s3: str) -> None:
    bucket = target(s3)
    bucket.publish({"feed.xml": b"v1", "old.mp3": b"old"}, run_id="run-1", message="one")
    bucket.publish({"feed.xml": b"v2"}, run_id="run-2", message="two", remove=["old.mp3"])
    assert bucket.site().read("feed.xml") == b"v2" and bucket.site().read("old.mp3") is None
    assert bucket.versions("feed.xml") == [hashlib.sha256(b"v1").hexdigest()]
    assert bucket.missing({"old.mp3": hashlib.sha256(b"old").hexdigest()}) == [
        f"old.mp3: not in s3://{BUCKET}/pod"
    ]
    boto3.client("s3", endpoint_url=s3).put_object(Bucket=BUCKET, Key="pod/feed.xml", Body=b"x")
    [drift] = bucket.missing({"feed.xml": hashlib.sha256(b"v2").hexdigest()})
    assert drift.startswith("feed.xml: holds sha256 2d711642b726")


def test_releases_at_once_never_lose_each_others_entry(s3: str) -> None:
    def append(name: str) -> None:
        def files(site: shipyard.Site) -> dict[str, bytes | Path]:
            return {"list.txt": (site.read("list.txt") or b"") + f"{name}\n".encode()}

        target(s3).publish(files, run_id=f"run-{name}", message=name)

    threads = [threading.Thread(target=append, args=(str(i),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    listed = (target(s3).site().read("list.txt") or b"").decode().split()
    assert sorted(listed) == ["0", "1", "2", "3"]


def test_paths_outside_the_site_and_a_missing_bucket_are_refused(s3: str) -> None:
    with pytest.raises(shipyard.ConfigError, match="not a safe site path"):
        target(s3).publish({"../escape.txt": b"x"}, run_id="run-1", message="x")
    with pytest.raises(shipyard.ConfigError, match="not a safe site path"):
        target(s3).publish({"_shipyard/runs/run-2.json": b"{}"}, run_id="run-1", message="x")
    elsewhere = BucketTarget("s3://no-such-bucket/pod", endpoint_url=s3)
    with pytest.raises(PublishFailed, match="NoSuchBucket") as caught:
        elsewhere.publish({"a.txt": b"a"}, run_id="run-1", message="x")
    assert "publish.remote" in (caught.value.hint or "")


def test_a_cdns_stale_copy_holds_verification_until_it_is_purged(tmp_path: Path, s3: str) -> None:
    bucket = target(s3)
    bucket.publish({"feed.xml": b"old feed"}, run_id="run-1", message="one")
    with caching_proxy(s3, tmp_path / "cdn") as cdn:
        url = f"{cdn.url}/{BUCKET}/pod/feed.xml"
        assert httpx.get(url).content == b"old feed"  # now in the CDN's cache
        bucket.publish({"feed.xml": b"new feed"}, run_id="run-2", message="two")

        def serves_the_new_feed(probe: Probe) -> None:
            if probe.fetch(url).content != b"new feed":
                probe.fail(f"{url} serves the old feed")
            probe.ok("the new feed")

        quick = VerifyConfig(deadline_seconds=1.5, first_delay_seconds=0.1, max_delay_seconds=0.2)
        stale = poll_until_served(serves_the_new_feed, quick, what="feed")
        assert not stale.verified and stale.attempts > 1
        assert (
            "a CDN served cached copies" in stale.problem and "X-Cache-Status HIT" in stale.problem
        )

        broken = quick.model_copy(update={"purge_command": ["false"]})
        failed = poll_until_served(serves_the_new_feed, broken, what="feed")
        assert not failed.verified
        assert "3 purges: the CDN's purge failed: purge command 'false' exited 1" in failed.problem

        purging = quick.model_copy(update={"purge_command": PURGE_COMMAND})
        fresh = poll_until_served(serves_the_new_feed, purging, what="feed")
        assert fresh.verified and fresh.attempts == 2  # stale, purged, then the new bytes
        assert httpx.get(url).content == b"new feed"


def bucket_project(
    root: Path, cdn: Cdn, endpoint: str, verify: str = ""
) -> AbstractContextManager[Project]:
    """A project that publishes to the bucket through `endpoint`, served through `cdn`."""
    return make_project(
        root,
        auto_approve=True,
        remote=f"s3://{BUCKET}/pod",
        base_url=f"{cdn.url}/{BUCKET}/pod/",
        publish=f'endpoint_url = "{endpoint}"',
        verify=verify,
    )


@pytest.mark.slow
def test_papers_are_published_to_a_bucket_behind_a_cdn_verified_and_drift_is_caught(
    tmp_path: Path, s3: str
) -> None:
    with (
        caching_proxy(s3, tmp_path / "cdn") as cdn,
        bucket_project(
            tmp_path / "p", cdn, s3, f"purge_command = {json.dumps(PURGE_COMMAND)}"
        ) as p,
    ):
        done = p.run("run", "paper-to-podcast", str(p.paper))
        assert done.returncode == 0, done.stdout + done.stderr
        first = p.latest()
        assert first.state is RunState.VERIFIED and not p.events(first.run_id, "cache-purged")

        # Another paper: the feed changes under the copy the CDN cached when the first was
        # verified, so the second run verifies only once its purge has run.
        second_pdf = p.root / "second.pdf"
        second_pdf.write_bytes(p.paper.read_bytes() + b"\n% a second paper\n")
        done = p.run("run", "paper-to-podcast", str(second_pdf))
        assert done.returncode == 0, done.stdout + done.stderr
        second = p.latest()
        assert second.state is RunState.VERIFIED
        [purged] = p.events(second.run_id, "cache-purged")
        assert purged["data"]["urls"] == [second.result["release"]["feed_url"]]
        feed = parse_feed(httpx.get(second.result["release"]["feed_url"]).content)
        assert {i.guid for i in feed.items} == {
            first.result["release"]["guid"],
            second.result["release"]["guid"],
        }

        # The first episode's audio changed in the bucket: the CDN still serves its cached
        # copy, and the drift check reads the origin.
        [audio] = [f for f in first.result["release"]["files"] if f.endswith(".mp3")]
        boto3.client("s3", endpoint_url=s3).put_object(
            Bucket=BUCKET, Key=f"pod/{audio}", Body=b"ID3 not the episode"
        )
        drift = p.run("verify", "--all")
        assert drift.returncode == 1
        assert f"{first.run_id}: drift: the site no longer holds what was shipped: {audio}" in (
            " ".join(drift.stdout.split())
        )
        assert f"✓ {second.run_id}" in drift.stdout

        # Taken down: the feed stops naming it first, then its objects go, proven gone at
        # the origin and through the CDN (whose copies are purged).
        gone = p.run("unpublish", second.run_id)
        assert gone.returncode == 0, gone.stdout + gone.stderr
        for path in second.result["release"]["files"]:
            if path.startswith("episodes/"):
                assert httpx.get(f"{s3}/{BUCKET}/pod/{path}").status_code in (403, 404)
        feed = parse_feed(httpx.get(second.result["release"]["feed_url"]).content)
        assert [i.guid for i in feed.items] == [first.result["release"]["guid"]]


@pytest.mark.slow
def test_kill_9_mid_upload_then_a_worker_publishes_each_object_once(
    tmp_path: Path, s3: str
) -> None:
    held = HeldUploads(s3)
    origin = f"{s3}/{BUCKET}/pod/"  # what the CDN fetches on a miss
    named_but_missing: list[str] = []
    stop = threading.Event()

    def watch_the_feed() -> None:  # at no moment may the feed name an object not there
        while not stop.is_set():
            served = httpx.get(origin + "feed.xml")
            if served.status_code == 200:
                for item in parse_feed(served.content).items:
                    for url in (item.enclosure_url, item.link, item.transcript_url):
                        if httpx.get(url, headers={"Range": "bytes=0-0"}).status_code >= 400:
                            named_but_missing.append(url)
            time.sleep(0.05)

    with (
        held.serve() as proxy,
        caching_proxy(s3, tmp_path / "cdn") as cdn,
        bucket_project(tmp_path / "p", cdn, proxy) as p,
    ):
        watcher = threading.Thread(target=watch_the_feed, daemon=True)
        watcher.start()
        held.hold("/feed.xml")  # the media and the page are up; the feed is on its way
        first = p.start("run", "paper-to-podcast", str(p.paper))
        try:
            assert held.waiting.wait(timeout=240), "the run never reached the feed's upload"
            run = p.latest()
        finally:
            kill_group(first, signal.SIGKILL)
        held.release(drop=True)  # the feed's upload died with the run
        assert httpx.get(origin + "feed.xml").status_code != 200  # not a feed yet

        run, out = p.recover(run.run_id)
        stop.set()
        watcher.join(timeout=30)
        assert run.state is RunState.VERIFIED, out
        assert [s.status for s in run.steps if s.step == "publish"] == ["interrupted", "ok"]
        feed = parse_feed(httpx.get(origin + "feed.xml").content)
        assert [i.guid for i in feed.items] == [run.result["release"]["guid"]]
        assert named_but_missing == []
        listed = boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket=BUCKET)
        keys = sorted(o["Key"] for o in listed["Contents"])
        site = [k for k in keys if not k.startswith("pod/_shipyard/")]
        assert site == sorted(f"pod/{path}" for path in run.result["release"]["files"])
        assert [k for k in keys if k.startswith("pod/_shipyard/")] == [
            f"pod/_shipyard/runs/{run.run_id}.json"
        ]
