"""A show's site in a local production, for the publish and verify tests: a bare remote with
the deploy hook, a web root served on loopback, a config pointing at both, and small fake
episodes (the audio content does not matter to publishing, only its bytes)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard._config import Config, PublishConfig, VerifyConfig
from shipyard._git_target import GitTarget
from shipyard._localprod import LocalProduction, LocalServer
from shipyard_podcast.release.publish import EpisodeFiles

# Short deadlines: a failing verify gives up after this long.
FAST_VERIFY = VerifyConfig(deadline_seconds=1.5, first_delay_seconds=0.05, max_delay_seconds=0.5)
PATIENT_VERIFY = VerifyConfig(deadline_seconds=20.0, first_delay_seconds=0.1, max_delay_seconds=0.5)


def fake_mp3(seed: str, size: int = 6000) -> bytes:
    """Deterministic bytes that start like an MP3 (ID3 header); not playable, not needed."""
    stream = b""
    counter = 0
    while len(stream) < size:
        stream += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + stream[: size - 10]


@dataclass
class Site:
    root: Path
    production: LocalProduction
    server: LocalServer
    config: Config

    def target(
        self,
        name: str = "site",
        *,
        before_push: Callable[[str], None] | None = None,
        max_file_bytes: int = 100_000_000,
    ) -> GitTarget:
        """A publisher with its own workspace (two names: two independent publishers)."""
        return GitTarget(
            self.production.remote_url,
            "main",
            self.root / "work" / name,
            backoff_seconds=0.05,
            timeout=30,
            before_push=before_push,
            max_file_bytes=max_file_bytes,
        )

    def episode(
        self,
        number: int,
        *,
        audio: bytes | None = None,
        run_id: str | None = None,
        title: str | None = None,
    ) -> EpisodeFiles:
        """Episode `number`'s files, written under the site's scratch folder."""
        folder = self.root / "artifacts" / str(number)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "audio.mp3").write_bytes(audio if audio is not None else fake_mp3(str(number)))
        (folder / "transcript.vtt").write_text(
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n<v Alex>Welcome to episode "
            f"{number}.\n\n00:00:02.500 --> 00:00:05.000\n<v Sam>Today: <b>paper</b> "
            f"{number} & friends.\n",
            encoding="utf-8",
        )
        (folder / "chapters.json").write_text(
            json.dumps(
                {
                    "version": "1.2.0",
                    "chapters": [
                        {"startTime": 0, "title": "Introduction"},
                        {"startTime": 2.5, "title": "Results"},
                    ],
                }
            ),
            encoding="utf-8",
        )
        return EpisodeFiles(
            run_id=run_id or f"run-{number}",
            guid=f"urn:shipyard:test:{number}",
            title=title or f"Paper {number}: what it found",
            description=f"Show notes for episode {number}.",
            published=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=number),
            duration_seconds=5.0,
            audio=folder / "audio.mp3",
            transcript=folder / "transcript.vtt",
            chapters=folder / "chapters.json",
            paper_title=f"Paper {number}",
            paper_sha256="ab" * 32,
        )

    def commits(self) -> list[str]:
        return self.production.log()

    def commit_body(self, ref: str = "main") -> str:
        return subprocess.run(
            ["git", "log", "-1", "--format=%B", ref],
            cwd=self.production.remote,
            capture_output=True,
            text=True,
            check=True,
        ).stdout


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    production = LocalProduction(tmp_path / "production").create()
    with production.serve() as server:
        config = Config(
            root=tmp_path,
            state_dir=Path("state"),
            verify=FAST_VERIFY,
            publish=PublishConfig(remote=production.remote_url, base_url=server.url),
        )
        yield Site(tmp_path, production, server, config)


def someone_else_pushes(site: Site, path: str, content: bytes, message: str) -> str:
    """Another person's commit on the site's branch, through their own clone."""
    clone = site.root / "someone-else"
    if not clone.exists():
        subprocess.run(
            ["git", "clone", "--quiet", site.production.remote_url, str(clone)],
            check=True,
            capture_output=True,
        )
    git = ["git", "-C", str(clone), "-c", "user.name=Someone", "-c", "user.email=s@example.org"]
    subprocess.run([*git, "pull", "--quiet", "--ff-only"], check=True, capture_output=True)
    (clone / path).parent.mkdir(parents=True, exist_ok=True)
    (clone / path).write_bytes(content)
    subprocess.run([*git, "add", path], check=True, capture_output=True)
    subprocess.run([*git, "commit", "--quiet", "-m", message], check=True, capture_output=True)
    subprocess.run(
        [*git, "push", "--quiet", "origin", "HEAD:main"], check=True, capture_output=True
    )
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
