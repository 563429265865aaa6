"""The site repository is untrusted: a commit with a symbolic link (to a folder or a system
file) or a hard link gives publishing no way to write or read outside its workspace, and the
local production serves no linked file. The artifact store and the state folder are confined
the same way. Nothing outside the roots changes."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from shipyard import (
    ArtifactStore,
    Config,
    GitTarget,
    LocalProduction,
    PublishFailed,
    ShipyardError,
)

pytestmark = pytest.mark.hostile


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, timeout=60)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("the host's own file\n")
    return folder


def push_links(production: LocalProduction, tmp_path: Path, outside: Path) -> None:
    """Someone with push access commits links into the site."""
    clone = tmp_path / "attacker"
    subprocess.run(
        ["git", "clone", "--quiet", production.remote_url, str(clone)], check=True, timeout=60
    )
    (clone / "episodes").symlink_to(outside, target_is_directory=True)
    (clone / "passwd.txt").symlink_to(outside / "secret.txt")
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "--quiet", "-m", "links")
    git(clone, "push", "--quiet", "origin", "HEAD:main")


def test_publish_refuses_a_site_with_links_before_writing_anything(
    tmp_path: Path, outside: Path
) -> None:
    production = LocalProduction(tmp_path / "site").create()
    push_links(production, tmp_path, outside)
    before = snapshot(outside)
    target = GitTarget(production.remote_url, "main", tmp_path / "work")
    with pytest.raises(PublishFailed) as caught:
        target.publish({"episodes/new.mp3": b"ID3 audio"}, run_id="run-1", message="Publish")
    assert caught.value.code == "link-in-site"
    assert "a symbolic link at episodes" in caught.value.message
    with pytest.raises(PublishFailed, match=r"passwd\.txt|episodes"):
        target.checkout()  # reading the site (a manifest, a feed) is refused the same way
    assert snapshot(outside) == before


def test_a_hard_link_in_the_workspace_is_never_written_through(
    tmp_path: Path, outside: Path
) -> None:
    production = LocalProduction(tmp_path / "site").create()
    target = GitTarget(production.remote_url, "main", tmp_path / "work")
    target.publish({"feed.xml": b"the host's own file\n"}, run_id="run-1", message="Publish")
    feed = tmp_path / "work" / "feed.xml"
    feed.unlink()
    os.link(outside / "secret.txt", feed)  # the same bytes, linked to a file outside
    target.publish({"feed.xml": b"changed\n"}, run_id="run-2", message="Publish")
    assert (outside / "secret.txt").read_text() == "the host's own file\n"
    assert feed.stat().st_nlink == 1 and feed.read_text() == "changed\n"


def test_the_local_production_serves_no_linked_file(tmp_path: Path, outside: Path) -> None:
    production = LocalProduction(tmp_path / "site").create()
    push_links(production, tmp_path, outside)
    os.link(outside / "secret.txt", production.webroot / "hard.txt")
    (production.webroot / "plain.txt").write_text("fine\n")
    with production.serve() as server:
        assert httpx.get(server.url + "plain.txt", timeout=10).status_code == 200
        for linked in ("passwd.txt", "episodes/secret.txt", "hard.txt"):
            answer = httpx.get(server.url + linked, timeout=10)
            assert answer.status_code == 404, linked
            assert "the host's own file" not in answer.text


def test_the_artifact_store_reads_and_writes_through_no_link(tmp_path: Path, outside: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    kept = store.put_bytes(b"an episode", suffix=".mp3")
    before = snapshot(outside)
    # a link planted as an artifact would leak the host's file into a release
    planted = store.root / "ab" / ("ab" + "0" * 62 + ".mp3")
    planted.parent.mkdir()
    planted.symlink_to(outside / "secret.txt")
    with pytest.raises(ShipyardError, match="leads out of") as caught:
        store.path("ab" + "0" * 62)
    assert caught.value.code == "link-in-state"
    # a linked folder would take the next write elsewhere
    data = b"the next artifact"
    folder = store.root / hashlib.sha256(data).hexdigest()[:2]
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ShipyardError, match="leads out of"):
        store.put_bytes(data, suffix=".json")
    # an id or a suffix that is a path is not one
    with pytest.raises(ShipyardError, match="not an artifact id"):
        store.path("../../outside/secret")
    with pytest.raises(ShipyardError, match="not an artifact suffix"):
        store.put_bytes(b"x", suffix="/../../x")
    assert store.read_bytes(kept.sha256) == b"an episode"
    assert snapshot(outside) == before


def test_a_linked_folder_in_the_state_folder_is_refused(tmp_path: Path, outside: Path) -> None:
    config = Config(root=tmp_path, state_dir=Path("state"))
    assert config.state_folder("cache", "tts").is_dir()
    (config.state / "journal").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ShipyardError, match="journal") as caught:
        config.state_folder("journal")
    assert "remove the link" in (caught.value.hint or "")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
