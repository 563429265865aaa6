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
import hashlib
import json
import math
import re
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen.id3
import numpy as np
import numpy.typing as npt
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly, sosfilt

from shipyard import ArtifactStore, AudioRejected, ConfigError, PermanentError, TransientError
from shipyard.podcast.models import Clip, Episode, Script
from shipyard.podcast.settings import AudioConfig, ShowConfig
from shipyard.podcast.voices import Audio, Samples, decode_wav, run_command

__all__ = [
    "EpisodeMeasurements",
    "check_clip",
    "inspect_episode",
    "make_cover",
    "master",
    "true_peak_db",
]

SILENCE_DBFS = -50.0  # a 20 ms frame quieter than this is silence
FRAME_S = 0.02
NOISE_FLATNESS = 0.25  # median spectral flatness above: noise (white ~0.56, speech < 0.01)
CLIP_LEVEL = 0.999  # a sample at or above this (of full scale) is at the rail
MIN_ACTIVE_FRACTION = 0.25  # a clip with less speech than this is silent
WORDS_PER_SECOND = 2.5  # 150 words a minute
LIMITER_MARGIN_DB = 0.5  # headroom below the true-peak ceiling for the MP3 encoder's overshoot
LOUDNESS_TOLERANCE_LU = 0.2  # how close the encoded file must come (LAME costs ~0.4 LU)
COVER_PIXELS = 1400

PAUSE_BETWEEN_SPEAKERS_S = 0.45
PAUSE_AFTER_QUESTION_S = 0.3
PAUSE_SAME_SPEAKER_S = 0.25
PAUSE_BEFORE_CHAPTER_S = 1.0
PAUSE_AROUND_MUSIC_S = 0.6
LEAD_IN_S = 0.3
TAIL_S = 0.8
EDGE_KEEP_S = 0.03  # silence kept at each end of a trimmed clip


# --- measuring --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SpeechStats:
    seconds: float
    active_fraction: float
    longest_silence_s: float
    clipped_fraction: float
    flatness: float  # median spectral flatness of the active frames: ~0.56 for white noise


def _speech_stats(samples: Samples, rate: int) -> _SpeechStats:
    n = max(1, int(rate * FRAME_S))
    count = len(samples) // n
    seconds = len(samples) / rate
    if count == 0:
        return _SpeechStats(seconds, 0.0, seconds, 0.0, 0.0)
    frames = samples[: count * n].reshape(count, n).astype(np.float64)
    rms_db = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-20))
    active = rms_db > SILENCE_DBFS
    longest = _longest_run(~active) * FRAME_S
    flatness = 0.0
    if active.any():
        voiced = frames[active][:: max(1, int(active.sum()) // 3000)]
        power = np.abs(np.fft.rfft(voiced * np.hanning(n), axis=1)) ** 2 + 1e-12
        flat = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
        flatness = float(np.median(flat))
    return _SpeechStats(
        seconds, float(active.mean()), longest, _clipped_fraction(samples), flatness
    )


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def _clipped_fraction(samples: Samples) -> float:
    """Share of samples in runs of 3 or more at the rail (one full-scale peak is not clipping)."""
    rail = np.abs(samples) >= CLIP_LEVEL
    if len(samples) < 3 or not rail.any():
        return 0.0
    in_run = rail[2:] & rail[1:-1] & rail[:-2]
    return float(in_run.sum()) / len(samples)


def check_clip(audio: Audio, text: str, *, source: str) -> None:
    """The integrity gate for one turn's audio: long enough for its words, not silent, not
    clipped, speech rather than noise. Raises AudioRejected with the measured numbers."""
    words = max(1, len(text.split()))
    stats = _speech_stats(audio.samples, audio.sample_rate)
    shortest = max(0.2, words / 8.0)  # faster than 8 words a second is not speech
    longest = 3.0 + words * 1.5
    measured = (
        f"{stats.seconds:.2f} s for {words} words, {stats.active_fraction:.0%} active, "
        f"{stats.clipped_fraction:.3%} clipped, flatness {stats.flatness:.2f}"
    )
    problem = ""
    if stats.seconds < shortest:
        problem, code = f"too short (under {shortest:.2f} s)", "truncated"
    elif stats.seconds > longest:
        problem, code = f"too long (over {longest:.1f} s)", "too-long"
    elif stats.active_fraction < MIN_ACTIVE_FRACTION:
        problem, code = (
            f"silent (under {MIN_ACTIVE_FRACTION:.0%} above {SILENCE_DBFS} dBFS)",
            "silent",
        )
    elif stats.clipped_fraction > 0.001:
        problem, code = "clipped (over 0.1% of samples at full scale)", "clipped"
    elif stats.flatness > NOISE_FLATNESS:
        problem, code = f"noise, not speech (flatness over {NOISE_FLATNESS})", "not-speech"
    if problem:
        raise AudioRejected(
            f"{source}: audio is {problem}: {measured}",
            code=code,
            hint="the voice engine produced bad audio; check it and re-run",
        )


def _k_weighting(rate: int) -> npt.NDArray[np.float64]:
    """BS.1770's K-weighting (high shelf, then high pass) as second-order sections."""
    k = math.tan(math.pi * 1681.974450955533 / rate)
    q, vh = 0.7071752369554196, 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2 * (k * k - 1) / a0,
        (1 - k / q + k * k) / a0,
    ]
    k, q = math.tan(math.pi * 38.13547087602444 / rate), 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, high_pass])


def _loudness(samples: Samples, rate: int) -> float:
    """Integrated loudness by BS.1770-4 (LUFS): K-weighted 400 ms blocks, 75% overlap, gated
    at -70 LUFS and 10 LU below the mean. Short audio is repeated to fill one block."""
    if len(samples) == 0:
        return -math.inf
    reps = math.ceil(rate * 0.4 / len(samples))
    data = np.tile(samples, reps) if reps > 1 else samples
    weighted = sosfilt(_k_weighting(rate).astype(np.float32), data.astype(np.float32))
    step = round(rate * 0.1)
    count = len(weighted) // step
    quarters: npt.NDArray[np.float64] = np.asarray(
        np.mean(np.square(weighted[: count * step].reshape(count, step)), axis=1, dtype=np.float64)
    )
    blocks = (quarters[:-3] + quarters[1:-2] + quarters[2:-1] + quarters[3:]) / 4
    if len(blocks) == 0:
        return -math.inf

    def level(power: npt.NDArray[np.float64]) -> float:
        return float(-0.691 + 10 * np.log10(np.mean(power))) if len(power) else -math.inf

    loud = blocks[-0.691 + 10 * np.log10(np.maximum(blocks, 1e-20)) > -70.0]
    gate = level(loud) - 10.0
    return level(loud[-0.691 + 10 * np.log10(np.maximum(loud, 1e-20)) > gate])


def _interpolators(taps: int = 12, phases: int = 4) -> npt.NDArray[np.float32]:
    """Windowed-sinc coefficients for the points 1/4, 2/4, 3/4 of the way to the next sample,
    from the `taps` samples around them (offsets -5..6)."""
    offsets = np.arange(-(taps // 2) + 1, taps // 2 + 1)[:, None]
    fractions = (np.arange(1, phases) / phases)[None, :]
    x = offsets - fractions
    weights = np.sinc(x) * (0.5 + 0.5 * np.cos(np.pi * x / (taps // 2 + 1)))
    normalised: npt.NDArray[np.float32] = (weights / weights.sum(axis=0)).astype(np.float32)
    return normalised


_INTERPOLATORS = _interpolators()
TRUE_PEAK_SEARCH_DB = 3.0  # inter-sample peaks are looked for only this close to the ceiling


def _true_peak_envelope(samples: Samples, floor: float) -> Samples:
    """Per sample, the highest magnitude between it and the next (4x oversampling, 12 taps
    a phase, as BS.1770 suggests). Only samples above `floor` are oversampled: an inter-sample
    peak more than a few dB above both neighbours does not occur in speech."""
    envelope = np.abs(samples)
    candidates = np.flatnonzero(envelope > floor)
    if len(candidates) == 0:
        return envelope
    taps = len(_INTERPOLATORS)
    before, after = taps // 2 - 1, taps // 2
    if candidates[0] < before or candidates[-1] >= len(samples) - after:  # pad only if needed
        samples, first = np.pad(samples, (before, after), mode="edge"), candidates
    else:
        first = candidates - before
    around = np.lib.stride_tricks.sliding_window_view(samples, taps)[first]
    between = np.abs(around @ _INTERPOLATORS).max(axis=1)
    envelope[candidates] = np.maximum(envelope[candidates], between)
    return envelope


def true_peak_db(samples: Samples) -> float:
    """True peak (dBTP) by 4x oversampling."""
    if len(samples) == 0:
        return -math.inf
    floor = float(np.abs(samples).max()) * 10 ** (-TRUE_PEAK_SEARCH_DB / 20)
    return float(20 * np.log10(max(float(_true_peak_envelope(samples, floor).max()), 1e-10)))


def _limit(samples: Samples, rate: int, ceiling_db: float) -> Samples:
    """Look-ahead true-peak limiter. Around each run of peaks over the ceiling, the gain curve
    is a min filter (hold, 20 ms each side) then a moving average (smooth, 10 ms) no wider
    than it, so the gain never rises above what a peak needs; elsewhere it is 1."""
    ceiling = 10 ** (ceiling_db / 20)
    aim = ceiling * 10 ** (-0.1 / 20)  # a little under, so one pass is nearly always enough
    floor = ceiling * 10 ** (-TRUE_PEAK_SEARCH_DB / 20)
    hold, smooth = 2 * int(0.02 * rate) + 1, int(0.01 * rate) | 1
    reach = hold // 2 + smooth // 2 + 1
    out = samples.copy()
    for _ in range(4):  # another pass catches overshoot between the gain curve's samples
        envelope = _true_peak_envelope(out, floor)
        over = np.flatnonzero(envelope > ceiling)
        if len(over) == 0:
            break
        # Only the stretches within `reach` of a peak can change. Each begins and ends with
        # `reach` samples that need no gain, so filtering them end to end is exact.
        starts = over[np.concatenate(([0], np.flatnonzero(np.diff(over) > 2 * reach) + 1))]
        ends = over[np.concatenate((np.flatnonzero(np.diff(over) > 2 * reach), [len(over) - 1]))]
        lows = np.maximum(starts - reach, 0)
        highs = np.minimum(ends + reach + 1, len(out))
        lengths = highs - lows
        offsets = np.repeat(lows - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        index = np.arange(int(lengths.sum())) + offsets
        needed = np.minimum(1.0, aim / np.maximum(envelope[index], 1e-12))
        held = minimum_filter1d(needed, size=hold, mode="nearest")
        gain = uniform_filter1d(held, size=smooth, mode="nearest")
        out[index] *= np.minimum(gain, needed)
    return out


# --- ffmpeg -----------------------------------------------------------------------------


def _ffmpeg(
    args: list[str], *, input_bytes: bytes | None = None, timeout: float
) -> subprocess.CompletedProcess[bytes]:
    command = ["ffmpeg", "-nostdin", "-hide_banner", *args]
    return run_command(command, input_bytes=input_bytes, timeout=timeout)


def _timeout_for(seconds: float) -> float:
    return 60.0 + seconds


def _decode_file(data: bytes, rate: int, *, what: str) -> Samples:
    """Any audio file decoded by ffmpeg to mono float samples; decode errors are rejections."""
    with tempfile.TemporaryDirectory(prefix="shipyard-decode-") as tmp:
        source = Path(tmp) / "input"
        source.write_bytes(data)
        result = _ffmpeg(
            ["-v", "error", "-i", str(source), "-f", "f32le", "-ac", "1", "-ar", str(rate), "-"],
            timeout=_timeout_for(len(data) / 4000),
        )
    errors = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0 or errors:
        raise AudioRejected(
            f"{what} does not decode cleanly: {errors[-400:] or result.returncode}",
            code="undecodable",
            hint="the file is damaged; re-run mastering",
        )
    return np.frombuffer(result.stdout, dtype="<f4").copy()


def _encode_mp3(samples: Samples, rate: int, kbps: int) -> bytes:
    """CBR MP3 with a LAME Info header (exact length, gapless), which needs a seekable file."""
    with tempfile.TemporaryDirectory(prefix="shipyard-encode-") as tmp:
        target = Path(tmp) / "episode.mp3"
        result = _ffmpeg(
            [
                "-v",
                "error",
                "-f",
                "f32le",
                "-ar",
                str(rate),
                "-ac",
                "1",
                "-i",
                "pipe:0",
                "-c:a",
                "libmp3lame",
                "-b:a",
                f"{kbps}k",
                "-ar",
                str(rate),
                "-map_metadata",
                "-1",
                "-id3v2_version",
                "0",
                "-write_id3v1",
                "0",
                "-f",
                "mp3",
                str(target),
            ],
            input_bytes=samples.astype("<f4").tobytes(),
            timeout=_timeout_for(len(samples) / rate),
        )
        if result.returncode != 0 or not target.is_file():
            raise TransientError(
                f"ffmpeg could not encode MP3: {result.stderr.decode()[-400:]}",
                code="encode-failed",
                hint="check ffmpeg has libmp3lame",
            )
        return target.read_bytes()


# --- the integrity gate -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpisodeMeasurements:
    seconds: float
    loudness_lufs: float
    true_peak_dbtp: float
    longest_silence_s: float
    clipped_fraction: float
    flatness: float


def inspect_episode(
    data: bytes, *, expected_seconds: float, estimated_seconds: float, settings: AudioConfig
) -> EpisodeMeasurements:
    """The integrity gate for the finished file: it decodes, is as long as what was encoded
    (`expected_seconds`) and within tolerance of the script's estimate, has no long silence,
    no clipping, is speech, and meets the loudness and true-peak targets (BS.1770)."""
    samples = _decode_file(data, settings.sample_rate, what="the episode MP3")
    stats = _speech_stats(samples, settings.sample_rate)
    lufs = round(_loudness(samples, settings.sample_rate), 2)
    peak = round(true_peak_db(samples), 2)
    found = EpisodeMeasurements(
        stats.seconds, lufs, peak, stats.longest_silence_s, stats.clipped_fraction, stats.flatness
    )
    tolerance = settings.duration_tolerance
    low, high = estimated_seconds * (1 - tolerance), estimated_seconds * (1 + tolerance)
    problems = []
    if abs(stats.seconds - expected_seconds) > 0.25:
        problems.append(f"decodes to {stats.seconds:.2f} s of the {expected_seconds:.2f} s encoded")
    if not low <= stats.seconds <= high:
        problems.append(
            f"lasts {stats.seconds:.1f} s, outside {low:.1f}-{high:.1f} s "
            f"(estimate {estimated_seconds:.1f} s ±{tolerance:.0%})"
        )
    if stats.longest_silence_s > settings.max_silence_seconds:
        problems.append(
            f"has {stats.longest_silence_s:.1f} s of silence "
            f"(at most {settings.max_silence_seconds:.1f} s)"
        )
    if stats.clipped_fraction > 0.0001:
        problems.append(f"clips ({stats.clipped_fraction:.3%} of samples at full scale)")
    if stats.flatness > NOISE_FLATNESS:
        problems.append(f"sounds like noise (spectral flatness {stats.flatness:.2f})")
    if not abs(lufs - settings.target_lufs) <= 1.0:
        problems.append(f"measures {lufs:.1f} LUFS (target {settings.target_lufs:.1f} ±1)")
    if peak > settings.max_true_peak_dbtp:
        problems.append(f"peaks at {peak:.1f} dBTP (limit {settings.max_true_peak_dbtp:.1f})")
    if problems:
        raise AudioRejected(
            f"the episode failed its integrity gate: it {'; it '.join(problems)}",
            code="integrity",
            hint="listen to the clips; re-synthesize bad turns",
        )
    return found


# --- cover art --------------------------------------------------------------------------


def make_cover(title: str, size: int = COVER_PIXELS) -> bytes:
    """A square PNG: a two-colour gradient drawn from the title's hash, with a row of bars."""
    seed = hashlib.sha256(title.encode()).digest()
    top, bottom = np.array(list(seed[0:3]), float), np.array(list(seed[3:6]), float) * 0.4
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    image = (top * 0.55 + 40) * (1 - ramp) + bottom * ramp + np.zeros((1, size, 3))
    bars, width = 24, size // 40
    for i in range(bars):
        height = int(size * (0.08 + 0.3 * seed[(6 + i) % 32] / 255))
        x = size // 2 + (i - bars // 2) * width * 3 // 2
        image[size // 2 - height // 2 : size // 2 + height // 2, x : x + width] = 235
    return _png(np.clip(image, 0, 255).astype(np.uint8))


def _png(pixels: np.ndarray) -> bytes:
    height, width, _ = pixels.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def _image_info(data: bytes) -> tuple[str, int, int]:
    """MIME type, width and height of a PNG or JPEG."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                break
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return "image/jpeg", width, height
            i += 2 + length
    raise ConfigError(
        "the cover is neither a PNG nor a JPEG",
        key="podcast.show.image",
        hint="give a square PNG or JPEG of 1400-3000 px",
    )


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
    level = _loudness(samples, rate)
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
    samples = _decode_file(path.read_bytes(), rate, what=str(path))
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
        level = _loudness(np.concatenate([voiced[i] for i in mine]), rate)
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
        out = _limit((samples * 10 ** (gain_db / 20)).astype(np.float32), rate, ceiling_db)
        level = _loudness(out, rate)
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
    decoded = _decode_file(_encode_mp3(excerpt, rate, kbps), rate, what="an MP3 excerpt")
    loss = _loudness(excerpt, rate) - _loudness(decoded, rate)
    return loss if math.isfinite(loss) else 0.0


def _loud_mp3(samples: Samples, settings: AudioConfig) -> tuple[bytes, float, float]:
    """Encode to MP3 so that the encoded file itself, decoded and measured, is on target."""
    rate = settings.sample_rate
    gain_db = settings.target_lufs - _loudness(samples, rate)
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
        mp3 = _encode_mp3(leveled, rate, settings.bitrate_kbps)
        decoded = _decode_file(mp3, rate, what="the encoded episode")
        lufs, peak = _loudness(decoded, rate), true_peak_db(decoded)
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
    cover_mime, width, height = _image_info(cover)
    if width != height or not COVER_PIXELS <= width <= 3000:
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
    timeline = _assemble(script, audio, rate, settings, assets_root)
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
    estimate = script.estimated_seconds or script.words / WORDS_PER_SECOND
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
