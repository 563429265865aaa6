"""Mastering: clips in, one episode out, at the podcast standard, with proof of its integrity.

    clips ─▶ check each ─▶ resample, trim ─▶ level each speaker ─▶ pauses, intro, outro
          ─▶ gain to target ─▶ true-peak limiter ─▶ re-measure, correct ─▶ MP3 (LAME, CBR)
          ─▶ decode the MP3 and measure it, correct again if needed ─▶ ID3v2.3 tags, CHAP/CTOC
          ─▶ integrity gate on the tagged file ─▶ transcript (WebVTT), chapters (JSON)

Loudness is measured after limiting and again on the decoded MP3, because a limiter lowers
integrated loudness and LAME's CBR mode takes away about 0.4 LU more: one pass of gain then
limit missed the target by 1.2 LU. The meter is BS.1770-4 (K-weighting, gating) and the true
peak is found by 4x oversampling; tests check both against ffmpeg's ebur128 filter.
Everything is deterministic, so mastering the same clips twice gives the same bytes.
"""

from __future__ import annotations

import datetime
import json
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen.id3
import numpy as np
from scipy.signal import resample_poly

from shipyard import ArtifactStore, AudioRejected, ConfigError, PermanentError, span
from shipyard.podcast.artwork import ARTWORK_MAX, ARTWORK_MIN, image_size, make_cover
from shipyard.podcast.audio import Audio, Samples, decode_wav
from shipyard.podcast.checks import estimated_seconds
from shipyard.podcast.dsp import (
    LIMITER_MARGIN_DB,
    LOUDNESS_TOLERANCE_LU,
    SILENCE_DBFS,
    check_clip,
    decode_file,
    encode_mp3,
    inspect_episode,
    limit,
    loudness,
    true_peak_db,
)
from shipyard.podcast.models import Clip, Episode, Script
from shipyard.podcast.settings import AudioConfig, ShowConfig

__all__ = ["master"]


PAUSE_BETWEEN_SPEAKERS_S = 0.45
PAUSE_AFTER_QUESTION_S = 0.3
PAUSE_SAME_SPEAKER_S = 0.25
PAUSE_BEFORE_CHAPTER_S = 1.0
PAUSE_AROUND_MUSIC_S = 0.6
LEAD_IN_S = 0.3
TAIL_S = 0.8
EDGE_KEEP_S = 0.03  # silence kept at each end of a trimmed clip


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
    samples = decode_file(path.read_bytes(), rate, what=str(path))
    return _gain(samples, rate, target_lufs)


@dataclass(frozen=True, slots=True)
class _Timeline:
    samples: Samples
    turns: list[tuple[float, float]]  # each turn's start and end, seconds
    music_seconds: float  # intro plus outro


def _assemble(
    script: Script,
    clips: Sequence[Audio],
    rate: int,
    settings: AudioConfig,
    assets_root: Path | None,
) -> _Timeline:
    speakers = [turn.speaker for turn in script.turns]
    voiced = [_trim(_resample(clip, rate), rate) for clip in clips]
    for speaker in set(speakers):  # each speaker to the target on their own, so they match
        mine = [i for i, who in enumerate(speakers) if who == speaker]
        level = loudness(np.concatenate([voiced[i] for i in mine]), rate)
        if math.isfinite(level):
            for i in mine:
                voiced[i] = (voiced[i] * 10 ** ((settings.target_lufs - level) / 20)).astype(
                    np.float32
                )

    def silence(seconds: float) -> Samples:
        return np.zeros(round(seconds * rate), dtype=np.float32)

    parts: list[Samples] = []
    music = 0.0
    if settings.intro:
        intro = _load_music(
            settings.intro, rate, settings.target_lufs, assets_root, "podcast.audio.intro"
        )
        parts += [intro, silence(PAUSE_AROUND_MUSIC_S)]
        music += len(intro) / rate
    parts.append(silence(LEAD_IN_S))
    cursor = sum(len(p) for p in parts)
    spans = []
    for i, clip in enumerate(voiced):
        if i:
            gap = silence(_pause_before(script, i))
            parts.append(gap)
            cursor += len(gap)
        spans.append((cursor / rate, (cursor + len(clip)) / rate))
        parts.append(clip)
        cursor += len(clip)
    parts.append(silence(TAIL_S))
    if settings.outro:
        outro = _load_music(
            settings.outro, rate, settings.target_lufs, assets_root, "podcast.audio.outro"
        )
        parts += [silence(PAUSE_AROUND_MUSIC_S - TAIL_S / 2), outro]
        music += len(outro) / rate
    return _Timeline(np.concatenate(parts).astype(np.float32), spans, music)


def _to_target(
    samples: Samples, rate: int, aim_lufs: float, ceiling_db: float, gain_db: float
) -> tuple[Samples, float]:
    """Gain then limit, re-measured and corrected until the limited audio is on `aim_lufs`.
    Returns the audio and the gain that got it there."""
    out = samples
    previous: tuple[float, float] | None = None
    for _ in range(6):
        out = limit((samples * 10 ** (gain_db / 20)).astype(np.float32), rate, ceiling_db)
        level = loudness(out, rate)
        if abs(aim_lufs - level) <= 0.05:
            break
        # The limiter takes back part of each step: estimate how much from the last two tries.
        slope = 1.0
        if previous is not None and gain_db != previous[0]:
            slope = min(1.0, max(0.3, (level - previous[1]) / (gain_db - previous[0])))
        previous = (gain_db, level)
        gain_db += (aim_lufs - level) / slope
    return out, gain_db


def _encoder_loss(samples: Samples, rate: int, kbps: int) -> float:
    """How many LU the MP3 encoder takes away (LAME's CBR mode: about 0.4), measured on a
    30-second excerpt so that the full encode is usually right the first time."""
    excerpt_s = 30
    if len(samples) < 2 * excerpt_s * rate:
        return 0.0  # short: the correction loop's second encode is cheap
    middle = len(samples) // 2
    excerpt = samples[middle - excerpt_s * rate // 2 : middle + excerpt_s * rate // 2]
    decoded = decode_file(encode_mp3(excerpt, rate, kbps), rate, what="an MP3 excerpt")
    loss = loudness(excerpt, rate) - loudness(decoded, rate)
    return loss if math.isfinite(loss) else 0.0


def _loud_mp3(samples: Samples, settings: AudioConfig) -> tuple[bytes, float, float]:
    """Encode to MP3 so that the encoded file itself, decoded and measured, is on target."""
    rate = settings.sample_rate
    gain_db = settings.target_lufs - loudness(samples, rate)
    if not math.isfinite(gain_db):
        raise AudioRejected(
            "the episode is silent (no measurable loudness)",
            code="silent",
            hint="check the voice engines' output",
        )
    aim = settings.target_lufs + _encoder_loss(samples, rate, settings.bitrate_kbps)
    ceiling = settings.max_true_peak_dbtp - LIMITER_MARGIN_DB
    for _ in range(3):
        leveled, gain_db = _to_target(samples, rate, aim, ceiling, gain_db)
        mp3 = encode_mp3(leveled, rate, settings.bitrate_kbps)
        decoded = decode_file(mp3, rate, what="the encoded episode")
        lufs, peak = loudness(decoded, rate), true_peak_db(decoded)
        over = peak - settings.max_true_peak_dbtp
        miss = settings.target_lufs - lufs
        if over <= 0 and abs(miss) <= LOUDNESS_TOLERANCE_LU:
            break
        aim += miss  # what the encoder takes away, asked for up front next time
        ceiling -= max(0.0, over + 0.2)
    return mp3, lufs, peak  # on a miss after three tries the gate reports the numbers


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
    mp3: bytes,
    *,
    title: str,
    show: ShowConfig,
    description: str,
    date: datetime.date,
    cover: bytes,
    cover_mime: str,
    marks: Sequence[tuple[float, str]],
    seconds: float,
) -> bytes:
    id3: Any = mutagen.id3  # mutagen's frames are untyped
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=3, text=[title]))
    tags.add(id3.TALB(encoding=3, text=[show.title]))
    tags.add(id3.TPE1(encoding=3, text=[show.author]))
    tags.add(id3.TPE2(encoding=3, text=[show.author]))
    tags.add(id3.TCON(encoding=3, text=["Podcast"]))
    tags.add(id3.TDRC(encoding=3, text=[date.isoformat()]))
    tags.add(id3.TLEN(encoding=3, text=[str(int(seconds * 1000))]))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=[description]))
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
                sub_frames=[id3.TIT2(encoding=3, text=["Chapters"])],
            )
        )
    with tempfile.TemporaryDirectory(prefix="shipyard-tag-") as tmp:
        path = Path(tmp) / "episode.mp3"
        path.write_bytes(mp3)
        tags.save(str(path), v2_version=3)
        return path.read_bytes()


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
            f"turns {[clip.turn for clip in clips]}",
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
    rate = settings.sample_rate
    audio: list[Audio] = []
    for clip, turn in zip(clips, script.turns, strict=True):
        decoded = decode_wav(store.read_bytes(clip.sha256), source=f"clip of turn {clip.turn}")
        check_clip(decoded, turn.text, source=f"turn {clip.turn} ({turn.speaker})")
        audio.append(decoded)
    with span("mix turns", turns=len(audio)):
        timeline = _assemble(script, audio, rate, settings, assets_root)
    with span("level and encode"):
        mp3, _, _ = _loud_mp3(timeline.samples, settings)

    seconds = len(timeline.samples) / rate
    marks = _chapters(script, timeline.turns, episode_title)
    tagged = _tag(
        mp3,
        title=episode_title,
        show=show,
        description=description,
        date=date,
        cover=cover,
        cover_mime=cover_mime,
        marks=marks,
        seconds=seconds,
    )
    estimate = script.estimated_seconds or estimated_seconds(script.words)
    with span("integrity gate"):
        found = inspect_episode(
            tagged,
            expected_seconds=seconds,
            estimated_seconds=estimate + timeline.music_seconds,
            settings=settings,
        )

    audio_artifact = store.put_bytes(tagged, suffix=".mp3")
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
