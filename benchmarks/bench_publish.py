"""Publishing and verification: what shipyard's release and proof cost beside a bare
`git add && git commit && git push` of the same files, against the local production (bare
remote, deploy hook, HTTP server on loopback).

    .venv/bin/python -m benchmarks publish

"bare git" copies the files into a clone, commits and pushes: the floor any git-based
publisher pays (it includes the deploy hook's checkout). "shipyard publish" is
`release_episode` end to end: fetch and reset the workspace, read the manifest, render and
validate the feed, page and index, check for the run's commit, commit with trailers, push.
"repeat" is the same call again (the idempotent no-op a recovered step makes). "verify" is
`verify_release`: feed, HEAD, range, full download and SHA-256, page and artwork.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard._config import Config, PublishConfig, VerifyConfig
from shipyard._git_target import GitTarget
from shipyard._localprod import LocalProduction
from shipyard_podcast.release.publish import EpisodeFiles, release_episode
from shipyard_podcast.release.served import ReleaseExpectation, verify_release

ROUNDS = 5
AUDIO_BYTES = 8_000_000  # about 8 minutes at 128 kbit/s


def _episode(folder: Path, number: int, audio: bytes) -> EpisodeFiles:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.mp3").write_bytes(audio)
    (folder / "a.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v A>Hi.\n")
    (folder / "a.json").write_text(
        json.dumps({"version": "1.2.0", "chapters": [{"startTime": 0, "title": "Intro"}]})
    )
    return EpisodeFiles(
        run_id=f"bench-{number}",
        guid=f"urn:bench:{number}",
        title=f"Episode {number}",
        description="Benchmark episode.",
        published=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=number),
        duration_seconds=480,
        audio=folder / "a.mp3",
        transcript=folder / "a.vtt",
        chapters=folder / "a.json",
    )


def _bare_git(clone: Path, remote: str, files: dict[str, Path], number: int) -> None:
    if not clone.exists():
        subprocess.run(["git", "clone", "--quiet", remote, str(clone)], check=True)
    git = ["git", "-C", str(clone), "-c", "user.name=b", "-c", "user.email=b@e.org"]
    for path, source in files.items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, clone / path)
    subprocess.run([*git, "add", "--all"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", f"bare {number}"], check=True)
    subprocess.run(
        [*git, "push", "--quiet", "origin", "HEAD:main"], check=True, capture_output=True
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bare_prod = LocalProduction(root / "bare").create()
        prod = LocalProduction(root / "shipyard").create()
        with prod.serve() as server:
            config = Config(
                root=root, publish=PublishConfig(remote=prod.remote_url, base_url=server.url)
            )
            target = GitTarget(prod.remote_url, "main", root / "work")
            bare: list[float] = []
            ours: list[float] = []
            repeat: list[float] = []
            proof: list[float] = []
            for n in range(ROUNDS):
                audio = bytes([n]) * 16 + (n.to_bytes(4, "big") * (AUDIO_BYTES // 4))[16:]
                episode = _episode(root / "eps" / str(n), n, audio)
                files = {
                    f"episodes/{n}.mp3": episode.audio,
                    f"episodes/{n}.vtt": episode.transcript,
                    "feed.xml": episode.chapters,
                }
                started = time.perf_counter()
                _bare_git(root / "clone", bare_prod.remote_url, files, n)
                bare.append(time.perf_counter() - started)
                started = time.perf_counter()
                release = release_episode(episode, config, target).release
                ours.append(time.perf_counter() - started)
                started = time.perf_counter()
                release_episode(episode, config, target)
                repeat.append(time.perf_counter() - started)
                started = time.perf_counter()
                verify_release(
                    ReleaseExpectation.from_release(release), VerifyConfig(deadline_seconds=5)
                )
                proof.append(time.perf_counter() - started)
    base = statistics.median(bare)
    print(f"episode of {AUDIO_BYTES / 1e6:.0f} MB, {ROUNDS} rounds, medians:")
    print(f"  bare git add+commit+push   {base * 1000:7.0f} ms")
    for label, times in (
        ("shipyard publish", ours),
        ("shipyard repeat (no-op)", repeat),
        ("shipyard verify", proof),
    ):
        median = statistics.median(times)
        print(f"  {label:<26} {median * 1000:7.0f} ms  ({median / base:.2f}x bare git)")
