"""Synthesis: one clip per turn, cached so that an edited script re-speaks only what changed.

A turn's clip is cached under the SHA-256 of (normalised text, voice spec, engine, engine
version): a cache entry is a small JSON file naming the clip's artifact, written only after the
clip passed its integrity check. Turns are spoken in parallel up to `AudioConfig.concurrency`,
and each engine also keeps to its own concurrency and rate limits.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from shipyard import ArtifactStore, Quota, span
from shipyard_podcast.audio.dsp import check_clip
from shipyard_podcast.audio.samples import Audio, encode_wav
from shipyard_podcast.audio.speakable import normalise_text
from shipyard_podcast.audio.voices import (
    VoiceEngine,
    joined,
    load_voice,
    speak,
    speak_pieces,
)
from shipyard_podcast.errors import ScriptRejected
from shipyard_podcast.models import Clip, Script
from shipyard_podcast.settings import AudioConfig

__all__ = ["SynthesisResult", "TurnSpeech", "cache_key", "synthesize", "turn_speech"]


class SynthesisResult(BaseModel):
    """The clips in turn order, and which turns were spoken now and which came from cache."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clips: list[Clip]
    synthesized: list[int]
    cached: list[int]


def cache_key(text: str, engine: VoiceEngine) -> str:
    """The cache key of a turn's (already normalised) text in one voice."""
    identity = {
        "text": text,
        "voice": engine.spec,
        "engine": engine.engine,
        "version": engine.version,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def synthesize(
    script: Script,
    store: ArtifactStore,
    cache_dir: Path,
    settings: AudioConfig,
    pronunciations: Mapping[str, str],
    quotas: Mapping[str, Quota] | None = None,
) -> SynthesisResult:
    """Speak every turn of the script; reuse cached clips of unchanged turns. A voice in
    `quotas` holds its provider's limits (`provider_quotas`)."""
    engines = _engines(script, quotas)
    jobs = [_job(script, index, engines, pronunciations) for index in range(len(script.turns))]

    clips: dict[int, Clip] = {}
    missing = []
    for index, text, engine, key in jobs:
        clip = _cached(cache_dir, key, index, store)
        if clip is None:
            missing.append((index, text, engine, key))
        else:
            clips[index] = clip

    with (
        _closing(engines.values()),  # after the pool, which waits for every turn
        ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix="shipyard-tts"
        ) as pool,
    ):
        futures: list[Future[Clip]] = [
            # each in a copy of this context: its spans join the run's trace
            pool.submit(
                contextvars.copy_context().run,
                _speak_turn,
                index,
                text,
                engine,
                key,
                store,
                cache_dir,
            )
            for index, text, engine, key in missing
        ]
        for future in futures:  # in turn order, so the first failing turn is the one raised
            clip = future.result()
            clips[clip.turn] = clip
    spoken = [index for index, *_ in missing]
    return SynthesisResult(
        clips=[clips[i] for i in range(len(script.turns))],
        synthesized=spoken,
        cached=[i for i in range(len(script.turns)) if i not in set(spoken)],
    )


def turn_speech(
    script: Script,
    index: int,
    store: ArtifactStore,
    cache_dir: Path,
    pronunciations: Mapping[str, str],
    quotas: Mapping[str, Quota] | None = None,
) -> Clip | TurnSpeech:
    """Turn `index` for a reviewer's preview: its clip when the cache `synthesize` reads has
    it, else the turn to be spoken piece by piece (`TurnSpeech`)."""
    if not 0 <= index < len(script.turns):
        raise ScriptRejected(f"the script has no turn {index + 1}", code="no-such-turn")
    _, text, engine, key = _job(script, index, _engines(script, quotas), pronunciations)
    keep = functools.partial(_keep, index, text, engine, key, store, cache_dir)
    return _cached(cache_dir, key, index, store) or TurnSpeech(text, engine, keep)


class TurnSpeech:
    """A turn spoken as it is heard: iterating gives its pieces as the engine says them
    (`speak_pieces`); once the last is out, the whole turn is checked and cached as
    `synthesize` would have spoken it (`clip`), so a turn heard in review is not spoken again
    when the run goes on."""

    def __init__(self, text: str, engine: VoiceEngine, keep: Callable[[Audio], Clip]) -> None:
        self.text, self.engine, self._keep = text, engine, keep
        self.clip: Clip | None = None

    def __iter__(self) -> Iterator[Audio]:
        pieces = []
        for piece in speak_pieces(self.engine, self.text):
            pieces.append(piece)
            yield piece
        self.clip = self._keep(joined(pieces))


@contextmanager
def _closing(engines: Iterable[VoiceEngine]) -> Iterator[None]:
    """The engines' processes end with the stage (a voice loads again for the next run)."""
    try:
        yield
    finally:
        for engine in set(engines):
            engine.close()


def _engines(script: Script, quotas: Mapping[str, Quota] | None) -> dict[str, VoiceEngine]:
    """Each host's voice engine, by host name, holding its provider's quota if it has one."""
    specs = {host.name: host.voice for host in script.hosts}
    loaded = {spec: load_voice(spec) for spec in sorted(set(specs.values()))}
    for spec, engine in loaded.items():
        if quotas and spec in quotas:
            engine.hold_to(quotas[spec])
    return {name: loaded[spec] for name, spec in specs.items()}


def _job(
    script: Script,
    index: int,
    engines: Mapping[str, VoiceEngine],
    pronunciations: Mapping[str, str],
) -> tuple[int, str, VoiceEngine, str]:
    """What turn `index` says, in which voice, under which cache key."""
    turn = script.turns[index]
    if turn.speaker not in engines:
        raise ScriptRejected(
            f"turn {index + 1} is spoken by {turn.speaker!r}, who is not a host "
            f"({', '.join(engines)})",
            code="unknown-speaker",
            hint="give the turn to one of the script's hosts",
        )
    text = normalise_text(turn.text, pronunciations, script.language)
    if not text.strip(" .,;:!?"):
        raise ScriptRejected(
            f"turn {index + 1} has nothing to say: {turn.text!r}",
            code="empty-turn",
            hint="remove the turn or give it words",
        )
    engine = engines[turn.speaker]
    return index, text, engine, cache_key(text, engine)


def _entry_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.json"


def _cached(cache_dir: Path, key: str, index: int, store: ArtifactStore) -> Clip | None:
    path = _entry_path(cache_dir, key)
    if not path.is_file():
        return None
    entry = json.loads(path.read_text(encoding="utf-8"))
    if not store.has(entry["sha256"]):  # the store was cleaned: speak it again
        return None
    return Clip(turn=index, sha256=entry["sha256"], seconds=entry["seconds"])


def _speak_turn(
    index: int, text: str, engine: VoiceEngine, key: str, store: ArtifactStore, cache_dir: Path
) -> Clip:
    with span("speak turn", turn=index, voice=engine.spec):
        audio = speak(engine, text)
    return _keep(index, text, engine, key, store, cache_dir, audio)


def _keep(
    index: int,
    text: str,
    engine: VoiceEngine,
    key: str,
    store: ArtifactStore,
    cache_dir: Path,
    audio: Audio,
) -> Clip:
    """A turn's spoken audio, checked, stored and entered in the cache under `key`."""
    check_clip(audio, text, source=f"turn {index + 1} ({engine.spec})")
    artifact = store.put_bytes(encode_wav(audio), suffix=".wav")
    seconds = round(audio.seconds, 3)
    path = _entry_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "sha256": artifact.sha256,
        "seconds": seconds,
        "voice": engine.spec,
        "version": engine.version,
        "text": text,
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(entry, f)
    os.replace(tmp, path)
    return Clip(turn=index, sha256=artifact.sha256, seconds=seconds)
