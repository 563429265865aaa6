"""Mastering: clips in, one episode out, at the podcast standard, with proof of its integrity.

    clips ─▶ check each ─▶ resample, trim, spool ─▶ level each speaker ─▶ pauses, intro, outro
          ─▶ measure what the limiter (at two gains) and the encoder (on an excerpt) take away
          ─▶ gain ─▶ true-peak limiter ─▶ MP3 (LAME, CBR, through a pipe) ─▶ ID3v2.3, CHAP/CTOC
          ─▶ decode the tagged file once: confirm the loudness (else correct and encode again)
             and pass the integrity gate ─▶ transcript (WebVTT), chapters (JSON)

The episode is never in memory whole: the prepared clips wait in a spool file and every stage
reads, measures and writes it in blocks of 2.5 s (docs/audio.md, "Memory"). A limiter lowers
integrated loudness and LAME's CBR mode takes away about 0.4 LU more, so both are measured
before the one full pass: the limiter's in a measuring pass at two trial gains, the
encoder's on a 30-second excerpt beside it. The meter is BS.1770-4 (K-weighting, gating)
and the true peak is found by 4x oversampling; tests check both against ffmpeg's ebur128
filter. Everything is deterministic, so mastering the same clips twice gives the same bytes.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import mutagen.id3
import numpy as np

from shipyard import ArtifactStore, ConfigError, PermanentError, span
from shipyard_podcast.artwork import ARTWORK_MAX, ARTWORK_MIN, image_size, make_cover
from shipyard_podcast.audio.dsp import (
    LIMITER_MARGIN_DB,
    LOUDNESS_TOLERANCE_LU,
    SILENCE_DBFS,
    EpisodeMeasurements,
    LoudnessMeter,
    Mp3Encoder,
    StreamLimiter,
    check_clip,
    decode_file,
    encode_mp3,
    gate_episode,
    limit_stream,
    loudness,
    measure_episode,
)
from shipyard_podcast.audio.samples import Audio, Samples, decode_wav
from shipyard_podcast.errors import AudioRejected
from shipyard_podcast.language import phrasebook, wording
from shipyard_podcast.models import Clip, Episode, Script, Turn
from shipyard_podcast.script.checks import estimated_seconds
from shipyard_podcast.settings import AudioConfig, ShowConfig

__all__ = ["master"]


PAUSE_BETWEEN_SPEAKERS_S = 0.45
PAUSE_AFTER_QUESTION_S = 0.3
PAUSE_SAME_SPEAKER_S = 0.25
PAUSE_BEFORE_CHAPTER_S = 1.0
PAUSE_AROUND_MUSIC_S = 0.6
LEAD_IN_S = 0.3
TAIL_S = 0.8
EDGE_KEEP_S = 0.03  # silence kept at each end of a trimmed clip
BLOCK_S = 2.5  # the most audio read at a time (see dsp.LIMITER_BLOCK_S)


# --- assembling -------------------------------------------------------------------------


def _trim(samples: Samples, rate: int) -> Samples:
    """Cut the engine's leading and trailing silence, keeping a few milliseconds."""
    loud = np.flatnonzero(np.abs(samples) > 10 ** (SILENCE_DBFS / 20))
    if len(loud) == 0:
        return samples
    keep = int(EDGE_KEEP_S * rate)
    return samples[max(0, int(loud[0]) - keep) : int(loud[-1]) + keep]


def _resample(audio: Audio, rate: int) -> Samples:
    if audio.sample_rate == rate:
        return audio.samples
    from scipy.signal import resample_poly  # scipy: imported once mastering needs it

    g = math.gcd(audio.sample_rate, rate)
    resampled: Samples = resample_poly(audio.samples, rate // g, audio.sample_rate // g)
    return resampled.astype(np.float32)


def _gain(samples: Samples, rate: int, target_lufs: float) -> Samples:
    level = loudness(samples, rate)
    if not math.isfinite(level):
        return samples
    return (samples * 10 ** ((target_lufs - level) / 20)).astype(np.float32)


def _pause_before(script: Script, index: int) -> float:
    turn, previous = script.turns[index], script.turns[index - 1]
    if turn.chapter:
        return PAUSE_BEFORE_CHAPTER_S
    if turn.speaker == previous.speaker:
        return PAUSE_SAME_SPEAKER_S
    if previous.text.rstrip().endswith("?"):
        return PAUSE_AFTER_QUESTION_S
    return PAUSE_BETWEEN_SPEAKERS_S


def _load_music(
    path_text: str, rate: int, target_lufs: float, assets_root: Path | None, key: str
) -> Samples:
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        if assets_root is None:
            raise ConfigError(
                f"relative path {path_text!r} needs a folder to resolve against",
                key=key,
                hint="pass assets_root= (the config file's folder)",
            )
        path = assets_root / path
    if not path.is_file():
        raise ConfigError(f"no such file: {path}", key=key, hint="fix the path or leave it empty")
    samples = decode_file(path, rate, what=str(path))
    return _gain(samples, rate, target_lufs)


@dataclass(slots=True)
class _Piece:
    """A stretch of the episode: silence, music in memory, or a prepared clip in the spool."""

    length: int
    samples: Samples | None = None
    offset: int = -1  # in the spool, in samples
    gain: float = 1.0


class _Timeline:
    """The episode as pieces in order, with where each turn starts and ends. The prepared
    clips wait in a spool file, so the episode is read block by block, never held whole."""

    def __init__(self, spool: BinaryIO, rate: int) -> None:
        self.rate = rate
        self.length = 0
        self.turns: list[tuple[float, float]] = []  # each turn's start and end, seconds
        self.music_seconds = 0.0  # intro plus outro
        self._spool = spool
        self._pieces: list[_Piece] = []
        self._spooled = 0

    def silence(self, seconds: float) -> None:
        self._add(_Piece(round(seconds * self.rate)))

    def music(self, samples: Samples) -> None:
        self._add(_Piece(len(samples), samples=samples))
        self.music_seconds += len(samples) / self.rate

    def turn(self, samples: Samples) -> _Piece:
        self._spool.write(samples.astype("<f4", copy=False).tobytes())
        piece = _Piece(len(samples), offset=self._spooled)
        self._spooled += len(samples)
        self.turns.append((self.length / self.rate, (self.length + len(samples)) / self.rate))
        self._add(piece)
        return piece

    def _add(self, piece: _Piece) -> None:
        self._pieces.append(piece)
        self.length += piece.length

    @property
    def seconds(self) -> float:
        return self.length / self.rate

    def blocks(self, gain_db: float = 0.0) -> Iterator[Samples]:
        """The episode in order, at most `BLOCK_S` at a time, `gain_db` louder."""
        block = round(BLOCK_S * self.rate)
        for piece in self._pieces:
            for start in range(0, piece.length, block):
                yield self._read(piece, start, min(start + block, piece.length), gain_db)

    def excerpt(self, start: int, stop: int) -> Samples:
        """Samples `start` to `stop` of the episode."""
        parts, at = [], 0
        for piece in self._pieces:
            low, high = max(start - at, 0), min(stop - at, piece.length)
            if low < high:
                parts.append(self._read(piece, low, high, 0.0))
            at += piece.length
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def _read(self, piece: _Piece, start: int, stop: int, gain_db: float) -> Samples:
        if piece.samples is not None:
            samples = piece.samples[start:stop]
        elif piece.offset >= 0:
            data = os.pread(self._spool.fileno(), 4 * (stop - start), 4 * (piece.offset + start))
            samples = np.frombuffer(data, dtype="<f4")  # pread: readers on threads do not race
        else:
            return np.zeros(stop - start, dtype=np.float32)
        gain = piece.gain * 10 ** (gain_db / 20)
        return samples if gain == 1.0 else (samples * gain).astype(np.float32)


def _assemble(
    script: Script,
    voiced: Iterable[Samples],
    spool: BinaryIO,
    settings: AudioConfig,
    assets_root: Path | None,
) -> _Timeline:
    """Each turn's prepared clip (`_prepared`) spooled in turn order, with the pauses, intro
    and outro between; each speaker levelled to the target on their own, so they match."""
    rate = settings.sample_rate
    timeline = _Timeline(spool, rate)
    if settings.intro:
        timeline.music(
            _load_music(
                settings.intro, rate, settings.target_lufs, assets_root, "podcast.audio.intro"
            )
        )
        timeline.silence(PAUSE_AROUND_MUSIC_S)
    timeline.silence(LEAD_IN_S)
    meters = {turn.speaker: LoudnessMeter(rate) for turn in script.turns}
    spoken: dict[str, list[_Piece]] = {speaker: [] for speaker in meters}
    for i, (turn, samples) in enumerate(zip(script.turns, voiced, strict=True)):
        if i:
            timeline.silence(_pause_before(script, i))
        meters[turn.speaker].add(samples)
        spoken[turn.speaker].append(timeline.turn(samples))
    timeline.silence(TAIL_S)
    if settings.outro:
        timeline.silence(PAUSE_AROUND_MUSIC_S - TAIL_S / 2)
        timeline.music(
            _load_music(
                settings.outro, rate, settings.target_lufs, assets_root, "podcast.audio.outro"
            )
        )
    for speaker, meter in meters.items():
        level = meter.lufs()
        if math.isfinite(level):
            for piece in spoken[speaker]:
                piece.gain = 10 ** ((settings.target_lufs - level) / 20)
    spool.flush()  # the timeline reads it by file descriptor
    return timeline


def _encoder_loss(timeline: _Timeline, settings: AudioConfig) -> float:
    """How many LU the MP3 encoder takes away (LAME's CBR mode: about 0.4), measured on a
    30-second excerpt so that the full encode is usually right the first time."""
    rate, excerpt_s = timeline.rate, 30
    if timeline.length < 2 * excerpt_s * rate:
        return 0.0  # short: a second encode is cheap
    middle = timeline.length // 2
    excerpt = timeline.excerpt(middle - excerpt_s * rate // 2, middle + excerpt_s * rate // 2)
    mp3 = encode_mp3(excerpt, rate, settings.bitrate_kbps, quality=settings.mp3_quality)
    decoded = decode_file(mp3, rate, what="an MP3 excerpt")
    loss = loudness(excerpt, rate) - loudness(decoded, rate)
    return loss if math.isfinite(loss) else 0.0


LIMITER_TRIALS_DB = (1.0, 2.5)  # gains tried with the limiter: on speech levelled to the
# target, it takes 0.3-1.5 LU back, and the encoder ~0.4 more, so the gain needed lies between


@dataclass(frozen=True, slots=True)
class _Levels:
    """The episode's loudness after the limiter at two gains."""

    trials: tuple[tuple[float, float], tuple[float, float]]  # (gain, loudness once limited)

    @property
    def silent(self) -> bool:
        return not all(math.isfinite(lufs) for _, lufs in self.trials)

    def gain_for(self, lufs: float) -> tuple[float, float]:
        """The gain that puts the limited episode on `lufs` (on the line through the trials),
        and the slope there: LU gained per dB."""
        (g0, l0), (g1, l1) = self.trials
        slope = min(1.0, max(0.3, (l1 - l0) / (g1 - g0)))
        return g0 + (lufs - l0) / slope, slope


class _Trial:
    """The episode through the limiter at one gain, measured."""

    def __init__(self, gain_db: float, rate: int, ceiling_db: float) -> None:
        self.gain_db, self.meter = gain_db, LoudnessMeter(rate)
        self._limiter = StreamLimiter(rate, ceiling_db)

    def add(self, block: Samples | None) -> None:
        """Another block, or None at the end."""
        if block is None:
            limited = self._limiter.close()
        else:
            limited = self._limiter.push((block * 10 ** (self.gain_db / 20)).astype(np.float32))
        for piece in limited:
            self.meter.add(piece)


def _levels(timeline: _Timeline, ceiling_db: float) -> _Levels:
    """The episode's loudness after the limiter at each trial gain: a pass over it for each,
    side by side on threads (numpy and scipy let go of the GIL: 0.9 -> 0.56 s wall for ten
    minutes, the same numbers)."""

    def trial(gain_db: float) -> tuple[float, float]:
        measured = _Trial(gain_db, timeline.rate, ceiling_db)
        for block in itertools.chain(timeline.blocks(), [None]):
            measured.add(block)
        return gain_db, measured.meter.lufs()

    with ThreadPoolExecutor(len(LIMITER_TRIALS_DB), thread_name_prefix="shipyard-level") as pool:
        first, second = pool.map(trial, LIMITER_TRIALS_DB)
    return _Levels((first, second))


def _encode(
    timeline: _Timeline, settings: AudioConfig, target: Path, *, tags: Callable[[Path], None]
) -> EpisodeMeasurements:
    """The episode as a tagged MP3 at `target` whose decoded audio is on the loudness target
    under the true-peak limit: one pass of gain, limiter and encoder (what both take away
    measured beforehand), the tagged file decoded once to confirm, and corrected if not."""
    rate = settings.sample_rate
    ceiling = settings.max_true_peak_dbtp - LIMITER_MARGIN_DB
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-encoder-loss") as pool:
        encoder_loss = pool.submit(_encoder_loss, timeline, settings)
        levels = _levels(timeline, ceiling)
    aim = settings.target_lufs + encoder_loss.result()
    if levels.silent:
        raise AudioRejected(
            "the episode is silent (no measurable loudness)",
            code="silent",
            hint="check the voice engines' output",
        )
    gain_db, slope = levels.gain_for(aim)
    encoder = Mp3Encoder(
        target,
        rate,
        settings.bitrate_kbps,
        quality=settings.mp3_quality,
        seconds=timeline.seconds,
    )
    for _ in range(3):
        encoder.encode(limit_stream(timeline.blocks(gain_db), rate, ceiling))
        tags(target)
        found = measure_episode(target, rate)
        miss = settings.target_lufs - found.loudness_lufs
        over = found.true_peak_dbtp - settings.max_true_peak_dbtp
        if over <= 0 and abs(miss) <= LOUDNESS_TOLERANCE_LU:
            break
        gain_db += miss / slope
        ceiling -= max(0.0, over + 0.2)
    return found  # on a miss after three tries the gate reports the numbers


# --- companions -------------------------------------------------------------------------


def _timestamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SENTENCE = re.compile(r"(?<=[.!?])\s+")
CUE_MAX_CHARS = 160


def _cues(text: str) -> list[str]:
    """A turn's text in caption-sized pieces, at sentence ends."""
    cues: list[str] = []
    for sentence in _SENTENCE.split(" ".join(text.split())):
        if cues and len(cues[-1]) + 1 + len(sentence) <= CUE_MAX_CHARS:
            cues[-1] = f"{cues[-1]} {sentence}"
        elif sentence:
            cues.append(sentence)
    return cues


def _webvtt(script: Script, spans: Sequence[tuple[float, float]]) -> str:
    """One cue per sentence group, timed within its turn by its share of the characters."""
    blocks = ["WEBVTT", ""]
    number = 0
    for turn, (start, end) in zip(script.turns, spans, strict=True):
        pieces = _cues(turn.text)
        total = sum(len(p) for p in pieces)
        cursor = start
        for piece in pieces:
            stop = cursor + (end - start) * len(piece) / total
            number += 1
            blocks += [
                str(number),
                f"{_timestamp(cursor)} --> {_timestamp(stop)}",
                f"<v {_vtt_escape(turn.speaker)}>{_vtt_escape(piece)}</v>",
                "",
            ]
            cursor = stop
    return "\n".join(blocks)


def _chapters(
    script: Script, spans: Sequence[tuple[float, float]], episode_title: str
) -> list[tuple[float, str]]:
    marks = [(spans[i][0], turn.chapter) for i, turn in enumerate(script.turns) if turn.chapter]
    if not marks:
        return []
    if script.turns[0].chapter:
        marks[0] = (0.0, marks[0][1])  # the first chapter includes the intro and lead-in
    else:
        marks.insert(0, (0.0, episode_title))
    return marks


def _chapters_json(marks: Sequence[tuple[float, str]]) -> str:
    return json.dumps(
        {
            "version": "1.2.0",
            "chapters": [{"startTime": round(t, 3), "title": title} for t, title in marks],
        },
        indent=2,
        ensure_ascii=False,
    )


def _tag(
    mp3: Path,
    *,
    title: str,
    show: ShowConfig,
    description: str,
    date: datetime.date,
    cover: bytes,
    cover_mime: str,
    marks: Sequence[tuple[float, str]],
    seconds: float,
) -> None:
    """Tag the MP3 in place: ID3v2.3 with the cover, and chapters (CHAP, CTOC)."""
    id3: Any = mutagen.id3  # mutagen's frames are untyped
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=3, text=[title]))
    tags.add(id3.TALB(encoding=3, text=[show.title]))
    tags.add(id3.TPE1(encoding=3, text=[show.author]))
    tags.add(id3.TPE2(encoding=3, text=[show.author]))
    tags.add(id3.TCON(encoding=3, text=["Podcast"]))
    tags.add(id3.TDRC(encoding=3, text=[date.isoformat()]))
    tags.add(id3.TLEN(encoding=3, text=[str(int(seconds * 1000))]))
    book = phrasebook(show.language)
    language = book.iso639_2 if book else "und"  # ISO 639-2; "und": undetermined
    tags.add(id3.TLAN(encoding=3, text=[language]))
    tags.add(id3.COMM(encoding=3, lang=language, desc="", text=[description]))
    tags.add(id3.TXXX(encoding=3, desc="AI disclosure", text=[show.ai_disclosure]))
    tags.add(id3.APIC(encoding=3, mime=cover_mime, type=3, desc="Cover", data=cover))
    ends = [t for t, _ in marks[1:]] + ([seconds] if marks else [])
    ids = [f"chp{i}" for i in range(len(marks))]
    for element, (start, name), end in zip(ids, marks, ends, strict=True):
        tags.add(
            id3.CHAP(
                element_id=element,
                start_time=int(start * 1000),
                end_time=int(end * 1000),
                start_offset=0xFFFFFFFF,
                end_offset=0xFFFFFFFF,
                sub_frames=[id3.TIT2(encoding=3, text=[name])],
            )
        )
    if marks:
        tags.add(
            id3.CTOC(
                element_id="toc",
                flags=id3.CTOCFlags.TOP_LEVEL | id3.CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[id3.TIT2(encoding=3, text=[wording(show.language).page["chapters"]])],
            )
        )
    tags.save(str(mp3), v2_version=3)


# --- the stage --------------------------------------------------------------------------


def master(
    script: Script,
    clips: Sequence[Clip],
    store: ArtifactStore,
    show: ShowConfig,
    settings: AudioConfig,
    *,
    episode_title: str,
    description: str,
    date: datetime.date,
    cover: bytes | None,
    assets_root: Path | None = None,
) -> Episode:
    """Master the clips of a script into an episode; raise AudioRejected when it fails the
    integrity gate. `assets_root` resolves relative intro/outro paths (the config's folder).
    Deterministic: the same inputs give the same artifacts, so running it twice is safe."""
    if [clip.turn for clip in clips] != list(range(len(script.turns))):
        raise PermanentError(
            f"mastering needs one clip per turn in order: {len(script.turns)} turns, clips for "
            f"turns {[clip.turn + 1 for clip in clips]}",
            code="clips-mismatch",
            hint="synthesize the script again",
        )
    cover = make_cover(f"{show.title}\n{episode_title}") if cover is None else cover
    cover_mime, width, height = _cover_info(cover)
    if width != height or not ARTWORK_MIN <= width <= ARTWORK_MAX:
        raise ConfigError(
            f"the cover is {width}x{height} px",
            key="podcast.show.image",
            hint="podcast directories need a square image of 1400-3000 px",
        )
    estimate = script.estimated_seconds or estimated_seconds(script.words, script.language)
    with tempfile.TemporaryDirectory(prefix="shipyard-master-") as tmp:
        folder = Path(tmp)
        with (folder / "turns.f32").open("w+b") as spool:
            with span("mix turns", turns=len(clips)):
                timeline = _assemble(
                    script,
                    _prepared(script, clips, store, settings.sample_rate),
                    spool,
                    settings,
                    assets_root,
                )
            marks = _chapters(script, timeline.turns, episode_title)

            def tag(mp3: Path) -> None:
                _tag(
                    mp3,
                    title=episode_title,
                    show=show,
                    description=description,
                    date=date,
                    cover=cover,
                    cover_mime=cover_mime,
                    marks=marks,
                    seconds=timeline.seconds,
                )

            with span("level and encode"):
                found = _encode(timeline, settings, folder / "episode.mp3", tags=tag)
        with span("integrity gate"):
            gate_episode(
                found,
                expected_seconds=timeline.seconds,
                estimated_seconds=estimate + timeline.music_seconds,
                settings=settings,
            )
        audio_artifact = store.put_file(folder / "episode.mp3", suffix=".mp3")
    transcript = store.put_bytes(_webvtt(script, timeline.turns).encode(), suffix=".vtt")
    chapters = store.put_bytes(_chapters_json(marks).encode(), suffix=".json")
    cover_artifact = store.put_bytes(cover, suffix=".png" if cover_mime == "image/png" else ".jpg")
    return Episode(
        audio_sha256=audio_artifact.sha256,
        audio_bytes=audio_artifact.size,
        seconds=round(found.seconds, 3),
        transcript_sha256=transcript.sha256,
        chapters_sha256=chapters.sha256,
        loudness_lufs=found.loudness_lufs,
        true_peak_dbtp=found.true_peak_dbtp,
        cover_sha256=cover_artifact.sha256,
    )


PREPARED_AHEAD = 4  # clips prepared ahead of the one being spooled: a few seconds each


def _prepared(
    script: Script, clips: Sequence[Clip], store: ArtifactStore, rate: int
) -> Iterator[Samples]:
    """Each clip read from the store, checked again, resampled and trimmed, given in turn
    order: prepared on two threads (numpy and scipy let go of the GIL), at most
    `PREPARED_AHEAD` ahead, so memory stays that of a few clips at any length. The first turn
    in order whose clip fails is the one raised."""

    def prepare(clip: Clip, turn: Turn) -> Samples:
        decoded = decode_wav(store.read_bytes(clip.sha256), source=f"clip of turn {clip.turn}")
        check_clip(decoded, turn.text, source=f"turn {clip.turn + 1} ({turn.speaker})")
        return _trim(_resample(decoded, rate), rate)

    with ThreadPoolExecutor(2, thread_name_prefix="shipyard-mix") as pool:
        pending: collections.deque[Future[Samples]] = collections.deque()
        for clip, turn in zip(clips, script.turns, strict=True):
            pending.append(pool.submit(prepare, clip, turn))
            if len(pending) > PREPARED_AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _cover_info(data: bytes) -> tuple[str, int, int]:
    """MIME type, width and height of the cover to embed."""
    found = image_size(data)
    if found is None:
        raise ConfigError(
            "the cover is neither a PNG nor a JPEG",
            key="podcast.show.image",
            hint="give a square PNG or JPEG of 1400-3000 px",
        )
    kind, width, height = found
    return f"image/{kind}", width, height
