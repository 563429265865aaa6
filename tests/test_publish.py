"""Publishing to git against the local production: trailers, idempotency, a moved remote,
refusals, size limits, crash leftovers, redaction; and the podcast release on top of it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard import GitTarget, redact
from shipyard._errors import ConfigError, PublishFailed, TransientError
from shipyard_podcast.release.feed import SiteManifest, parse_feed, validate_feed
from shipyard_podcast.release.publish import release_episode, unpublish_episode, verify_unpublished
from shipyard_podcast.settings import TABLE, PodcastSettings, ShowConfig
from tests.localsite import Site, fake_mp3, site, someone_else_pushes

__all__ = ["site"]  # the fixture, imported for pytest


def _trailers(site: Site, ref: str = "main") -> list[str]:
    return [line for line in site.commit_body(ref).splitlines() if line.startswith("Shipyard-")]


def test_publish_commits_with_trailers_pushes_and_deploys(site: Site) -> None:
    result = site.target().publish(
        {"a/b.mp3": b"audio", "feed.xml": b"<rss/>"},
        run_id="run-1",
        message="Publish b",
        trailers={"Shipyard-Guid": "g-1"},
    )
    assert result.pushed and not result.already_published
    assert site.production.head() == result.commit == site.production.deployed()
    assert site.commits() == ["Publish b", "Start the site"]
    assert _trailers(site) == [
        "Shipyard-Run: run-1",
        "Shipyard-File: a/b.mp3 sha256:" + hashlib.sha256(b"audio").hexdigest(),
        "Shipyard-File: feed.xml sha256:" + hashlib.sha256(b"<rss/>").hexdigest(),
        "Shipyard-Guid: g-1",
    ]
    assert (site.production.webroot / "a" / "b.mp3").read_bytes() == b"audio"


def test_publishing_the_same_files_twice_makes_one_commit(site: Site) -> None:
    files = {"x.txt": b"x"}
    first = site.target().publish(files, run_id="run-1", message="x")
    again = site.target().publish(files, run_id="run-1", message="x")
    other_workspace = site.target("elsewhere").publish(files, run_id="run-1", message="x")
    assert again.already_published and not again.pushed
    assert again.commit == first.commit == other_workspace.commit
    assert site.commits() == ["x", "Start the site"]


def test_a_repeat_after_others_moved_the_branch_finds_the_run_commit(site: Site) -> None:
    first = site.target().publish({"x.txt": b"x"}, run_id="run-1", message="x")
    someone_else_pushes(site, "other.txt", b"theirs", "Their change")
    again = site.target().publish({"x.txt": b"x"}, run_id="run-1", message="x")
    assert again.already_published and again.commit == first.commit
    assert site.commits() == ["Their change", "x", "Start the site"]


def test_an_unpushed_commit_left_by_a_crash_is_replaced_by_one_pushed_commit(site: Site) -> None:
    def die_before_push(commit: str) -> None:
        raise KeyboardInterrupt("killed between commit and push")

    with pytest.raises(KeyboardInterrupt):
        site.target(before_push=die_before_push).publish(
            {"x.txt": b"x"}, run_id="run-1", message="x"
        )
    assert site.commits() == ["Start the site"]  # committed locally, never pushed
    workspace = site.root / "work" / "site"
    (workspace / ".git" / "index.lock").write_text("")  # and a lock a killed git left behind
    result = site.target().publish({"x.txt": b"x"}, run_id="run-1", message="x")
    assert result.pushed
    assert site.commits() == ["x", "Start the site"]


def test_remote_moved_before_the_push_is_rebased(site: Site) -> None:
    moved: list[str] = []

    def someone_pushes_first(commit: str) -> None:
        if not moved:
            moved.append(someone_else_pushes(site, "their.txt", b"theirs", "Their change"))

    result = site.target(before_push=someone_pushes_first).publish(
        {"mine.txt": b"mine"}, run_id="run-1", message="Mine"
    )
    assert result.pushed
    assert site.commits() == ["Mine", "Their change", "Start the site"]
    parent = subprocess.run(
        ["git", "rev-parse", "main^"],
        cwd=site.production.remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert parent == moved[0]
    assert {p.name for p in site.production.webroot.iterdir()} >= {"mine.txt", "their.txt"}


def test_conflicting_move_restages_content_derived_from_the_new_tip(site: Site) -> None:
    moved: list[str] = []

    def someone_pushes_first(commit: str) -> None:
        if not moved:
            moved.append(someone_else_pushes(site, "list.txt", b"theirs\n", "Their entry"))

    def append_mine(published: shipyard.Site) -> dict[str, bytes | Path]:
        return {"list.txt": (published.read("list.txt") or b"") + b"mine\n"}

    result = site.target(before_push=someone_pushes_first).publish(
        append_mine, run_id="run-1", message="Add mine"
    )
    assert result.pushed
    assert site.commits() == ["Add mine", "Their entry", "Start the site"]
    assert (site.production.webroot / "list.txt").read_bytes() == b"theirs\nmine\n"


def test_a_refusing_remote_fails_for_good_with_gits_message(site: Site) -> None:
    site.production.refuse_pushes("this site is read-only today")
    with pytest.raises(PublishFailed) as caught:
        site.target().publish({"x.txt": b"x"}, run_id="run-1", message="x")
    assert caught.value.code == "push-rejected"
    assert "this site is read-only today" in caught.value.message
    assert "pre-receive hook declined" in caught.value.message
    assert site.commits() == ["Start the site"]


def test_files_over_the_hosts_limit_are_refused_before_committing(
    site: Site, tmp_path: Path
) -> None:
    big = tmp_path / "big.mp3"
    big.write_bytes(b"\0" * 2048)
    with pytest.raises(PublishFailed) as caught:
        site.target(max_file_bytes=1000).publish(
            {"episodes/big.mp3": big, "ok.txt": b"ok"}, run_id="run-1", message="big"
        )
    assert caught.value.code == "file-too-large"
    assert "episodes/big.mp3" in caught.value.message and "1,000" in caught.value.message
    assert site.commits() == ["Start the site"]


def test_removing_files(site: Site) -> None:
    target = site.target()
    target.publish({"a.txt": b"a", "b.txt": b"b"}, run_id="run-1", message="add")
    result = target.publish({"b.txt": b"b2"}, run_id="run-2", message="drop a", remove=["a.txt"])
    assert result.pushed
    assert not (site.production.webroot / "a.txt").exists()
    assert "Shipyard-Removed: a.txt" in _trailers(site)


def test_the_first_commit_on_an_empty_remote_starts_the_branch(tmp_path: Path) -> None:
    remote = tmp_path / "empty.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    target = GitTarget(str(remote), "main", tmp_path / "work")
    result = target.publish({"index.html": b"hi"}, run_id="run-1", message="first")
    assert result.pushed
    log = subprocess.run(
        ["git", "log", "--format=%s", "main"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert log == ["first"]


def test_a_hostile_global_git_config_cannot_break_publishing(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = tmp_path / "evil-hooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(
        f"[commit]\n\tgpgsign = true\n[core]\n\thooksPath = {hooks}\n\tautocrlf = true\n"
        "[push]\n\tdefault = nothing\n[user]\n\tuseConfigOnly = true\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    result = site.target().publish({"a.txt": b"line\n"}, run_id="run-1", message="a")
    assert result.pushed
    assert (site.production.webroot / "a.txt").read_bytes() == b"line\n"


def test_credentials_in_the_remote_url_are_never_shown_or_kept(tmp_path: Path) -> None:
    url = "http://publisher:s3cret-token@127.0.0.1:9/site.git"
    target = GitTarget(url, "main", tmp_path / "work", timeout=10)
    assert "s3cret" not in repr(target)
    with pytest.raises(TransientError) as caught:
        target.publish({"a.txt": b"a"}, run_id="run-1", message="a")
    assert "s3cret" not in str(caught.value) and "http://127.0.0.1:9/site.git" in str(caught.value)
    # the clone knows the remote without them: git would keep them in .git/config
    assert b"s3cret" not in (tmp_path / "work" / ".git" / "config").read_bytes()
    assert redact("push to https://x:y@github.com/o/r.git failed") == (
        "push to https://***@github.com/o/r.git failed"
    )


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", ".git/config", "a/../../b", ""])
def test_unsafe_paths_are_refused(site: Site, path: str) -> None:
    with pytest.raises(ConfigError):
        site.target().publish({path: b"x"}, run_id="run-1", message="x")


# --- the podcast release ------------------------------------------------------------------


def test_release_puts_episode_page_feed_and_index_in_one_commit(site: Site) -> None:
    episode = site.episode(1)
    outcome = release_episode(episode, site.config, site.target())
    release = outcome.release
    assert outcome.pushed and release.commit == site.production.head()
    assert site.commits() == [f"Publish episode: {episode.title}", "Start the site"]
    slug = re.search(r"episodes/(.+)\.mp3", release.episode_url)
    assert slug is not None
    assert set(release.files) == {
        f"episodes/{slug.group(1)}.{ext}" for ext in ("mp3", "html", "vtt", "chapters.json")
    } | {"feed.xml", "index.html", "episodes.json", "cover.png"}
    web = site.production.webroot
    feed = (web / "feed.xml").read_bytes()
    assert validate_feed(feed) == []
    item = parse_feed(feed).item(episode.guid)
    assert item is not None and item.enclosure_url == release.episode_url
    assert item.enclosure_length == len(fake_mp3("1"))
    page = (web / f"episodes/{slug.group(1)}.html").read_text()
    assert "<audio controls" in page and "Welcome to episode 1." in page
    assert "Paper 1" in page and "&amp; friends" in page
    assert "Shipyard-Run: run-1" in _trailers(site)
    assert f"Shipyard-Audio-Sha256: {release.audio_sha256}" in _trailers(site)


def test_releasing_the_same_episode_twice_makes_exactly_one_commit(site: Site) -> None:
    first = release_episode(site.episode(1), site.config, site.target())
    again = release_episode(site.episode(1), site.config, site.target())
    assert again.already_published and not again.pushed
    assert again.release == first.release
    assert len(site.commits()) == 2
    manifest = SiteManifest.from_json((site.production.webroot / "episodes.json").read_bytes())
    assert [e.guid for e in manifest.episodes] == ["urn:shipyard:test:1"]


def test_a_second_episode_joins_the_feed_and_a_new_release_replaces_by_guid(site: Site) -> None:
    release_episode(site.episode(1), site.config, site.target())
    release_episode(site.episode(2), site.config, site.target("other-publisher"))
    feed = parse_feed((site.production.webroot / "feed.xml").read_bytes())
    assert [i.guid for i in feed.items] == ["urn:shipyard:test:2", "urn:shipyard:test:1"]
    first_date = feed.items[1].pub_date

    redo = site.episode(1, audio=fake_mp3("better audio", 7000), run_id="run-1-forced")
    release_episode(redo, site.config, site.target())
    feed = parse_feed((site.production.webroot / "feed.xml").read_bytes())
    assert [i.guid for i in feed.items] == ["urn:shipyard:test:2", "urn:shipyard:test:1"]
    assert feed.items[1].enclosure_length == 7000
    assert feed.items[1].pub_date == first_date  # a replaced episode keeps its date
    index = (site.production.webroot / "index.html").read_text()
    assert "Paper 1: what it found" in index and "Paper 2: what it found" in index


def test_concurrent_release_of_another_episode_is_merged_not_lost(site: Site) -> None:
    raced: list[bool] = []

    def other_episode_lands_first(commit: str) -> None:
        if not raced:
            raced.append(True)
            release_episode(site.episode(2), site.config, site.target("other-publisher"))

    release_episode(
        site.episode(1), site.config, site.target(before_push=other_episode_lands_first)
    )
    manifest = json.loads((site.production.webroot / "episodes.json").read_bytes())
    assert sorted(e["guid"] for e in manifest["episodes"]) == [
        "urn:shipyard:test:1",
        "urn:shipyard:test:2",
    ]
    assert len(parse_feed((site.production.webroot / "feed.xml").read_bytes()).items) == 2


def test_invalid_artwork_stops_the_release_before_committing(site: Site) -> None:
    episode = site.episode(1)
    bad = dataclasses.replace(episode, cover=b"not an image")
    with pytest.raises(PublishFailed) as caught:
        release_episode(bad, site.config, site.target())
    assert caught.value.code == "artwork-invalid"
    assert site.commits() == ["Start the site"]


def test_an_invalid_feed_stops_the_release_naming_the_tag(site: Site) -> None:
    config = site.config.with_table(TABLE, PodcastSettings(show=ShowConfig(description="x" * 4001)))
    with pytest.raises(PublishFailed) as caught:
        release_episode(site.episode(1), config, site.target())
    assert caught.value.code == "feed-invalid" and "<description>" in caught.value.message
    assert site.commits() == ["Start the site"]


def test_unpublish_removes_the_episode_and_verifies_its_absence(site: Site) -> None:
    release_episode(site.episode(1), site.config, site.target())
    kept = release_episode(site.episode(2), site.config, site.target()).release
    gone = unpublish_episode("urn:shipyard:test:1", site.config, site.target(), run_id="run-1")
    assert not gone.already and gone.commit == site.production.head()
    absence = verify_unpublished(gone, site.config)
    assert absence.verified, absence.problem
    assert len(absence.checks) == 5  # the feed and the four files
    assert all((site.production.webroot / path).is_file() for path in kept.files)
    feed = parse_feed((site.production.webroot / "feed.xml").read_bytes())
    assert [i.guid for i in feed.items] == ["urn:shipyard:test:2"]
    again = unpublish_episode("urn:shipyard:test:1", site.config, site.target(), run_id="run-1")
    assert again.already and again.commit == gone.commit
    assert len(site.commits()) == 4


def test_the_python_example_in_docs_publishing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "publishing.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/publishing.md", "exec"), {})
    assert re.fullmatch(
        r"False feed http://127\.0\.0\.1:\d+/feed\.xml is not a feed: .*\n", capsys.readouterr().out
    )


# --- kill -9 at the worst moments ---------------------------------------------------------

_PUBLISHER = """
import os, signal, sys
from pathlib import Path
from shipyard._git_target import GitTarget

remote, workspace, moment = sys.argv[1:4]
die = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
target = GitTarget(remote, "main", Path(workspace),
                   before_push=die if moment == "before-push" else None)
result = target.publish({"episodes/one.mp3": b"audio", "feed.xml": b"<rss/>"},
                        run_id="run-1", message="Publish one")
if moment == "after-push":
    die()
print(result.pushed, result.already_published)
"""


@pytest.mark.parametrize("moment", ["before-push", "after-push"])
def test_killed_mid_publish_a_rerun_leaves_exactly_one_commit(site: Site, moment: str) -> None:
    def publisher(when: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-c",
                _PUBLISHER,
                site.production.remote_url,
                str(site.root / "work" / "site"),
                when,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    killed = publisher(moment)
    assert killed.returncode == -signal.SIGKILL
    assert len(site.commits()) == (1 if moment == "before-push" else 2)
    rerun = publisher("to-the-end")
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.split() == (
        ["True", "False"] if moment == "before-push" else ["False", "True"]
    )
    assert site.commits() == ["Publish one", "Start the site"]
    assert (site.production.webroot / "episodes" / "one.mp3").read_bytes() == b"audio"


def test_the_target_says_which_shipped_files_the_branch_no_longer_holds(site: Site) -> None:
    site.target().publish({"a.txt": b"a", "b.txt": b"b"}, run_id="run-1", message="x")
    shipped = {"a.txt": hashlib.sha256(b"a").hexdigest(), "b.txt": hashlib.sha256(b"b").hexdigest()}
    assert site.target().missing(shipped) == []
    someone_else_pushes(site, "a.txt", b"changed", "Their change")
    [changed] = site.target().missing(shipped)
    assert changed.startswith(f"a.txt: holds sha256 {hashlib.sha256(b'changed').hexdigest()[:12]}")
    assert site.target().missing({"gone.txt": shipped["a.txt"]}) == ["gone.txt: not in main"]
