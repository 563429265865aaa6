"""The local production: bare remote, deploy hook, switches, and the loopback HTTP server."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from shipyard._localprod import LocalProduction, LocalServer


def _push(
    production: LocalProduction, clone: Path, files: dict[str, bytes], message: str
) -> subprocess.CompletedProcess[str]:
    if not clone.exists():
        subprocess.run(
            ["git", "clone", "--quiet", production.remote_url, str(clone)],
            check=True,
            capture_output=True,
        )
    git = ["git", "-C", str(clone), "-c", "user.name=T", "-c", "user.email=t@example.org"]
    for path, content in files.items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_bytes(content)
        subprocess.run([*git, "add", path], check=True, capture_output=True)
    subprocess.run([*git, "commit", "--quiet", "-m", message], check=True, capture_output=True)
    return subprocess.run(
        [*git, "push", "origin", "HEAD:main"], capture_output=True, text=True, check=False
    )


def _head(clone: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def production(tmp_path: Path) -> LocalProduction:
    return LocalProduction(tmp_path / "production").create()


def test_create_makes_a_remote_with_main_and_deploys_it(production: LocalProduction) -> None:
    head = production.head()
    assert head is not None
    assert production.deployed() == head
    assert (production.webroot / "README.md").is_file()
    assert production.create().head() == head  # idempotent: history kept
    assert production.log() == ["Start the site"]


def test_a_push_is_checked_out_into_the_web_root(
    production: LocalProduction, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    pushed = _push(production, clone, {"a/one.txt": b"one", "two.txt": b"two"}, "add")
    assert pushed.returncode == 0, pushed.stderr
    assert "is live" in pushed.stderr  # the hook reports through git
    assert production.deployed() == production.head() == _head(clone)
    assert (production.webroot / "a" / "one.txt").read_bytes() == b"one"
    subprocess.run(["git", "-C", str(clone), "rm", "--quiet", "two.txt"], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(clone),
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@e.org",
            "commit",
            "--quiet",
            "-m",
            "remove",
        ],
        check=True,
    )
    subprocess.run(
        ["git", "-C", str(clone), "push", "--quiet", "origin", "HEAD:main"],
        check=True,
        capture_output=True,
    )
    assert not (production.webroot / "two.txt").exists()  # deletions are deployed too


def test_deploy_off_leaves_the_push_undeployed(production: LocalProduction, tmp_path: Path) -> None:
    before = production.deployed()
    production.set_deploy(False)
    pushed = _push(production, tmp_path / "clone", {"new.txt": b"new"}, "add")
    assert pushed.returncode == 0
    assert "was not deployed" in pushed.stderr
    assert production.head() != before
    assert production.deployed() == before
    assert not (production.webroot / "new.txt").exists()
    production.set_deploy(True)
    production.deploy()
    assert (production.webroot / "new.txt").read_bytes() == b"new"


def test_refusing_remote_rejects_pushes_with_its_message(
    production: LocalProduction, tmp_path: Path
) -> None:
    before = production.head()
    production.refuse_pushes("site frozen for the holidays")
    pushed = _push(production, tmp_path / "clone", {"x.txt": b"x"}, "add")
    assert pushed.returncode != 0
    assert "site frozen for the holidays" in pushed.stderr
    assert production.head() == before


def test_delayed_deploy_lands_later(production: LocalProduction, tmp_path: Path) -> None:
    production.set_deploy_delay(3)
    pushed = _push(production, tmp_path / "clone", {"late.txt": b"late"}, "add")
    assert "goes live in 3s" in pushed.stderr
    assert production.deployed() != production.head()  # 3 s is far longer than this line
    deadline = time.monotonic() + 30
    while production.deployed() != production.head() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert production.deployed() == production.head()
    assert (production.webroot / "late.txt").read_bytes() == b"late"


@pytest.fixture
def server(production: LocalProduction, tmp_path: Path) -> LocalServer:
    _push(
        production,
        tmp_path / "clone",
        {
            "episodes/a.mp3": bytes(range(256)) * 8,
            "feed.xml": b"<rss/>",
            "a.vtt": b"WEBVTT\n",
            "a.json": b"{}",
            "index.html": b"<p>hi</p>",
            "docs/index.html": b"docs",
        },
        "site",
    )
    return production.serve()


def test_server_answers_with_types_lengths_and_head(server: LocalServer) -> None:
    with server, httpx.Client(base_url=server.url) as http:
        for path, kind in (
            ("episodes/a.mp3", "audio/mpeg"),
            ("feed.xml", "application/rss+xml"),
            ("a.vtt", "text/vtt"),
            ("a.json", "application/json"),
            ("", "text/html"),
            ("docs/", "text/html"),
        ):
            response = http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].split(";")[0] == kind
            assert int(response.headers["content-length"]) == len(response.content)
        head = http.head("episodes/a.mp3")
        assert head.status_code == 200
        assert head.headers["content-length"] == "2048"
        assert head.content == b""
        assert http.get("missing.mp3").status_code == 404
        assert http.get("/../production/remote.git/HEAD").status_code == 404


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=0-9", 206, "bytes 0-9/2048", bytes(range(10))),
        ("bytes=2040-", 206, "bytes 2040-2047/2048", bytes(range(248, 256))),
        ("bytes=-4", 206, "bytes 2044-2047/2048", bytes(range(252, 256))),
        ("bytes=2000-9999", 206, "bytes 2000-2047/2048", bytes(range(208, 256))),
        ("bytes=4096-", 416, "bytes */2048", b""),
        ("bytes=0-1,5-6", 200, None, bytes(range(256)) * 8),  # several ranges: the whole file
    ],
)
def test_server_answers_byte_ranges(
    server: LocalServer, header: str, status: int, content_range: str | None, body: bytes
) -> None:
    with server:
        response = httpx.get(server.url + "episodes/a.mp3", headers={"Range": header})
    assert response.status_code == status
    assert response.headers.get("content-range") == content_range
    assert response.content == body


def test_frozen_server_keeps_serving_the_old_checkout(
    production: LocalProduction, tmp_path: Path
) -> None:
    _push(production, tmp_path / "clone", {"page.html": b"old"}, "v1")
    production.freeze()
    _push(production, tmp_path / "clone", {"page.html": b"new"}, "v2")
    assert (production.webroot / "page.html").read_bytes() == b"new"  # deployed...
    with production.serve() as server:
        assert httpx.get(server.url + "page.html").content == b"old"  # ...but not served
        production.thaw()
        assert httpx.get(server.url + "page.html").content == b"new"


def test_server_on_a_given_port_and_close_frees_it(production: LocalProduction) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with production.serve(port=port) as server:
        assert server.url == f"http://127.0.0.1:{port}/"
        assert httpx.get(server.url + "README.md").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/README.md")
