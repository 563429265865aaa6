"""Measuring and shaping audio: speech statistics and the per-clip check, BS.1770-4 loudness
(K-weighting, gating), true peak by 4x oversampling and the true-peak limiter, ffmpeg decoding
and MP3 encoding, and the integrity gate every mastered episode must pass."""

from __future__ import annotations

import math
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import sosfilt

from shipyard import AudioRejected, TransientError
from shipyard.podcast.audio import Audio, Samples, run_command
from shipyard.podcast.settings import AudioConfig

__all__ = [
    "LIMITER_MARGIN_DB",
    "LOUDNESS_TOLERANCE_LU",
    "SILENCE_DBFS",
    "EpisodeMeasurements",
    "check_clip",
    "decode_file",
    "encode_mp3",
    "inspect_episode",
    "limit",
    "loudness",
    "true_peak_db",
]

SILENCE_DBFS = -50.0  # a 20 ms frame quieter than this is silence
FRAME_S = 0.02
NOISE_FLATNESS = 0.25  # median spectral flatness above: noise (white ~0.56, speech < 0.01)
CLIP_LEVEL = 0.999  # a sample at or above this (of full scale) is at the rail
MIN_ACTIVE_FRACTION = 0.25  # a clip with less speech than this is silent
LIMITER_MARGIN_DB = 0.5  # headroom below the true-peak ceiling for the MP3 encoder's overshoot
LOUDNESS_TOLERANCE_LU = 0.2  # how close the encoded file must come (LAME costs ~0.4 LU)


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


def loudness(samples: Samples, rate: int) -> float:
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


def limit(samples: Samples, rate: int, ceiling_db: float) -> Samples:
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


def decode_file(data: bytes, rate: int, *, what: str) -> Samples:
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


def encode_mp3(samples: Samples, rate: int, kbps: int) -> bytes:
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
    samples = decode_file(data, settings.sample_rate, what="the episode MP3")
    stats = _speech_stats(samples, settings.sample_rate)
    lufs = round(loudness(samples, settings.sample_rate), 2)
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
