"""Measuring and shaping audio: speech statistics and the per-clip check, BS.1770-4 loudness
(K-weighting, gating), true peak by 4x oversampling and the true-peak limiter, ffmpeg decoding
and MP3 encoding, and the integrity gate every mastered episode must pass.

Each works on a stream of blocks as well as on an array, so an episode of any length is
mastered and checked in the memory of a few blocks."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shipyard import ConfigError, StepTimeout, TransientError
from shipyard_podcast.audio.samples import Audio, Samples
from shipyard_podcast.errors import AudioRejected
from shipyard_podcast.settings import AudioConfig

__all__ = [
    "LIMITER_MARGIN_DB",
    "LOUDNESS_TOLERANCE_LU",
    "SILENCE_DBFS",
    "EpisodeMeasurements",
    "LoudnessMeter",
    "Mp3Encoder",
    "SpeechMeter",
    "StreamLimiter",
    "TruePeakMeter",
    "check_clip",
    "decode_file",
    "decode_stream",
    "encode_mp3",
    "gate_episode",
    "inspect_episode",
    "limit",
    "limit_stream",
    "loudness",
    "measure_episode",
    "true_peak_db",
]

SILENCE_DBFS = -50.0  # a 20 ms frame quieter than this is silence
FRAME_S = 0.02
NOISE_FLATNESS = 0.25  # median spectral flatness above: noise (white ~0.56, speech < 0.01)
CLIP_LEVEL = 0.999  # a sample at or above this (of full scale) is at the rail
MIN_ACTIVE_FRACTION = 0.25  # a clip with less speech than this is silent
LIMITER_MARGIN_DB = 0.5  # headroom below the true-peak ceiling for the MP3 encoder's overshoot
LOUDNESS_TOLERANCE_LU = 0.2  # how close the encoded file must come (LAME costs ~0.4 LU)
# Audio limited at a time. A block's largest array, 4x oversampled for the true peak, stays
# under the 4 MiB above which malloc maps memory afresh (tune_allocator): 10 s blocks made
# mastering 25% slower with that setting.
LIMITER_BLOCK_S = 2.5
LIMITER_CONTEXT_S = 0.5  # and on either side of it (a gain decision reaches under 0.3 s)


# --- measuring --------------------------------------------------------------------------
# Every meter takes audio in pieces of any size and keeps only a number or two per frame, so
# an hour of audio is measured in the memory of one block; fed all at once they give the
# figures of the whole array.


@dataclass(frozen=True, slots=True)
class _SpeechStats:
    seconds: float
    active_fraction: float
    longest_silence_s: float
    clipped_fraction: float
    flatness: float  # median spectral flatness of the active frames: ~0.56 for white noise


class SpeechMeter:
    """Speech statistics: 20 ms frames active or silent, the longest silence, the share of
    samples clipped (in runs of 3 or more at the rail: one full-scale peak is not clipping),
    and the median spectral flatness of the active frames."""

    def __init__(self, rate: int) -> None:
        self._rate, self._frame = rate, max(1, int(rate * FRAME_S))
        self._rest = np.empty(0, dtype=np.float32)  # samples short of a whole frame
        self._rail = np.zeros(2, dtype=bool)  # the last two samples: at the rail?
        self._samples = self._clipped = 0
        self._active: list[npt.NDArray[np.bool_]] = []
        self._flatness: list[npt.NDArray[np.float64]] = []

    def add(self, samples: Samples) -> None:
        if len(samples) == 0:
            return
        self._samples += len(samples)
        rail = np.concatenate((self._rail, np.abs(samples) >= CLIP_LEVEL))
        self._clipped += int((rail[2:] & rail[1:-1] & rail[:-2]).sum())
        self._rail = rail[-2:]
        data = np.concatenate((self._rest, samples))
        n = self._frame
        count = len(data) // n
        frames = data[: count * n].reshape(count, n).astype(np.float64)
        self._rest = data[count * n :]
        rms_db = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-20))
        active = rms_db > SILENCE_DBFS
        self._active.append(active)
        if active.any():
            power = np.abs(np.fft.rfft(frames[active] * np.hanning(n), axis=1)) ** 2 + 1e-12
            self._flatness.append(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1))

    def stats(self) -> _SpeechStats:
        seconds = self._samples / self._rate
        active = np.concatenate(self._active) if self._active else np.zeros(0, dtype=bool)
        if len(active) == 0:
            return _SpeechStats(seconds, 0.0, seconds, 0.0, 0.0)
        flatness = float(np.median(np.concatenate(self._flatness))) if self._flatness else 0.0
        clipped = self._clipped / self._samples if self._samples >= 3 else 0.0
        longest = _longest_run(~active) * FRAME_S
        return _SpeechStats(seconds, float(active.mean()), longest, clipped, flatness)


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max())


def _speech_stats(samples: Samples, rate: int) -> _SpeechStats:
    meter = SpeechMeter(rate)
    meter.add(samples)
    return meter.stats()


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


class LoudnessMeter:
    """Integrated loudness by BS.1770-4 (LUFS): K-weighted 400 ms blocks, 75% overlap, gated
    at -70 LUFS and 10 LU below the mean. The filter's state carries from piece to piece, and
    each 100 ms keeps one number (an hour: 36,000)."""

    def __init__(self, rate: int) -> None:
        from scipy.signal import sosfilt  # scipy: imported once mastering needs it

        self._filter = sosfilt
        self._rate, self._sos = rate, _k_weighting(rate).astype(np.float32)
        self._state = np.zeros((len(self._sos), 2), dtype=np.float32)
        self._step = round(rate * 0.1)
        self._rest = np.empty(0, dtype=np.float32)  # weighted samples short of 100 ms
        self._quarters: list[npt.NDArray[np.float64]] = []
        self._head = np.empty(0, dtype=np.float32)  # the input, while it is under one block

    def add(self, samples: Samples) -> None:
        if len(samples) == 0:
            return
        if len(self._head) < 4 * self._step:
            self._head = np.concatenate((self._head, samples[: 4 * self._step]))
        weighted, self._state = self._filter(
            self._sos, samples.astype(np.float32, copy=False), zi=self._state
        )
        data = np.concatenate((self._rest, weighted.astype(np.float32, copy=False)))
        count = len(data) // self._step
        self._quarters.append(
            np.mean(
                np.square(data[: count * self._step].reshape(count, self._step)),
                axis=1,
                dtype=np.float64,
            )
        )
        self._rest = data[count * self._step :]

    def lufs(self) -> float:
        if 0 < len(self._head) < 4 * self._step:  # under one block: repeated to fill one
            again = LoudnessMeter(self._rate)
            again.add(np.tile(self._head, math.ceil(4 * self._step / len(self._head))))
            return again.lufs()
        quarters = np.concatenate(self._quarters) if self._quarters else np.zeros(0)
        blocks = (quarters[:-3] + quarters[1:-2] + quarters[2:-1] + quarters[3:]) / 4
        if len(blocks) == 0:
            return -math.inf

        def level(power: npt.NDArray[np.float64]) -> float:
            return float(-0.691 + 10 * np.log10(np.mean(power))) if len(power) else -math.inf

        loud = blocks[-0.691 + 10 * np.log10(np.maximum(blocks, 1e-20)) > -70.0]
        gate = level(loud) - 10.0
        return level(loud[-0.691 + 10 * np.log10(np.maximum(loud, 1e-20)) > gate])


def loudness(samples: Samples, rate: int) -> float:
    """Integrated loudness (LUFS) of audio in memory (`LoudnessMeter`)."""
    meter = LoudnessMeter(rate)
    meter.add(samples)
    return meter.lufs()


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
    envelope[candidates] = np.maximum(envelope[candidates], _between(samples, first))
    return envelope


def _between(samples: Samples, starts: npt.NDArray[np.intp]) -> Samples:
    """For each window of 12 samples starting at `starts`, the highest magnitude of the three
    points between its middle two (computed a bounded number of windows at a time)."""
    windows = np.lib.stride_tricks.sliding_window_view(samples, len(_INTERPOLATORS))
    out = np.empty(len(starts), dtype=np.float32)
    for at in range(0, len(starts), 1 << 16):
        chunk = starts[at : at + (1 << 16)]
        out[at : at + len(chunk)] = np.abs(windows[chunk] @ _INTERPOLATORS).max(axis=1)
    return out


class TruePeakMeter:
    """True peak (dBTP) by 4x oversampling, from audio in pieces: each piece is oversampled
    with the last samples of the one before it, so every point between two samples is seen
    once, as in the whole array (whose ends are padded with their edge samples)."""

    _BEFORE, _AFTER = len(_INTERPOLATORS) // 2 - 1, len(_INTERPOLATORS) // 2

    def __init__(self) -> None:
        self._carry: Samples | None = None  # the samples a next piece's first points need
        self._peak = 0.0

    def add(self, samples: Samples) -> None:
        if len(samples) == 0:
            return
        if self._carry is None:
            self._carry = np.full(self._BEFORE, samples[0], dtype=np.float32)
        data = np.concatenate((self._carry, samples))
        self._measure(data)
        self._carry = data[max(0, len(data) - self._BEFORE - self._AFTER) :]

    def dbtp(self) -> float:
        if self._carry is None:
            return -math.inf
        self._measure(np.concatenate((self._carry, np.full(self._AFTER, self._carry[-1]))))
        self._carry = None
        return float(20 * np.log10(max(self._peak, 1e-10)))

    def _measure(self, data: Samples) -> None:
        """The highest point of `data` between its first and last few samples."""
        inner = data[self._BEFORE : len(data) - self._AFTER]
        if len(inner) == 0:
            return
        top = float(np.abs(inner).max())
        floor = top * 10 ** (-TRUE_PEAK_SEARCH_DB / 20)
        candidates = np.flatnonzero(np.abs(inner) > floor)
        between = _between(data, candidates).max() if len(candidates) else 0
        self._peak = max(self._peak, top, float(between))


def true_peak_db(samples: Samples) -> float:
    """True peak (dBTP) of audio in memory (`TruePeakMeter`)."""
    meter = TruePeakMeter()
    meter.add(samples)
    return meter.dbtp()


def limit(samples: Samples, rate: int, ceiling_db: float) -> Samples:
    """Look-ahead true-peak limiter. Around each run of peaks over the ceiling, the gain curve
    is a min filter (hold, 20 ms each side) then a moving average (smooth, 10 ms) no wider
    than it, so the gain never rises above what a peak needs; elsewhere it is 1."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

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


class StreamLimiter:
    """`limit` on audio that arrives in pieces, in blocks with look-ahead: each block is
    limited with `LIMITER_CONTEXT_S` of the audio on either side, further than a gain
    decision reaches in all of `limit`'s passes, so the result equals limiting the whole."""

    def __init__(self, rate: int, ceiling_db: float) -> None:
        self._rate, self._ceiling_db = rate, ceiling_db
        self._margin = round(LIMITER_CONTEXT_S * rate)
        self._before = np.empty(0, dtype=np.float32)  # input already limited: context behind
        self._pending: list[Samples] = []
        self._held = 0

    def push(self, piece: Samples) -> list[Samples]:
        """The limited audio that `piece` completes: none yet, or a block."""
        self._pending.append(piece)
        self._held += len(piece)
        if self._held < LIMITER_BLOCK_S * self._rate + self._margin:
            return []
        ahead = np.concatenate(self._pending)
        ready = len(ahead) - self._margin
        window = np.concatenate((self._before, ahead))
        done = limit(window, self._rate, self._ceiling_db)[len(self._before) :][:ready]
        self._before = window[: len(self._before) + ready][-self._margin :].copy()
        self._pending, self._held = [ahead[ready:]], self._margin
        return [done]

    def close(self) -> list[Samples]:
        """The rest of the limited audio."""
        if not self._held:
            return []
        window = np.concatenate((self._before, *self._pending))
        self._pending, self._held = [], 0
        return [limit(window, self._rate, self._ceiling_db)[len(self._before) :]]


def limit_stream(pieces: Iterable[Samples], rate: int, ceiling_db: float) -> Iterator[Samples]:
    """`StreamLimiter` over an iterable of pieces."""
    limiter = StreamLimiter(rate, ceiling_db)
    for piece in pieces:
        yield from limiter.push(piece)
    yield from limiter.close()


# --- ffmpeg -----------------------------------------------------------------------------


FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"]
DECODE_BLOCK_S = 2.5  # as LIMITER_BLOCK_S
PIPE_BYTES = 1 << 20  # Linux's default most for a pipe: 6 s of audio in flight


def _timeout_for(seconds: float) -> float:
    return 60.0 + seconds


@dataclass(slots=True)
class _Program:
    process: subprocess.Popen[bytes]
    returncode: int | None = None
    errors: str = ""  # what it wrote to stderr
    expired: bool = False

    def expire(self) -> None:
        self.expired = True
        self.process.kill()


@contextlib.contextmanager
def _ffmpeg(args: list[str], *, timeout: float, **pipes: Any) -> Iterator[_Program]:
    """ffmpeg running beside us, its errors in a file (a pipe could fill and stall it), killed
    at the timeout (a StepTimeout) or when the caller leaves early."""
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen([*FFMPEG, *args], stderr=errors, **pipes)
        except FileNotFoundError:
            raise ConfigError(
                "ffmpeg is not installed", hint="run scripts/install-system-deps"
            ) from None
        for pipe in (process.stdin, process.stdout):
            if pipe is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
                with contextlib.suppress(OSError):  # a wide pipe: ffmpeg and we work at once
                    fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        program = _Program(process)
        timer = threading.Timer(timeout, program.expire)
        timer.start()
        with process:  # closes the pipes
            try:
                yield program
                if process.stdin:
                    process.stdin.close()
                program.returncode = process.wait()
            finally:
                timer.cancel()
                if process.poll() is None:
                    process.kill()
                    process.wait()
        errors.seek(0)
        program.errors = errors.read().decode(errors="replace").strip()
    if program.expired:
        raise StepTimeout(
            f"ffmpeg ran past {timeout:.0f} s: {' '.join(args[:6])}",
            code="timeout",
            hint="retry; free the machine if it recurs",
        )


def decode_stream(source: Path, rate: int, *, what: str) -> Iterator[Samples]:
    """An audio file decoded by ffmpeg to mono float samples, `DECODE_BLOCK_S` at a time; a
    file that does not decode cleanly is rejected once its audio has been read."""
    args = ["-i", str(source), "-f", "f32le", "-ac", "1", "-ar", str(rate), "-"]
    size = round(DECODE_BLOCK_S * rate) * 4
    timeout = _timeout_for(source.stat().st_size / 4000)
    with _ffmpeg(args, timeout=timeout, stdout=subprocess.PIPE) as ffmpeg:
        assert ffmpeg.process.stdout is not None
        while chunk := ffmpeg.process.stdout.read(size):
            yield np.frombuffer(chunk[: len(chunk) // 4 * 4], dtype="<f4")
    if ffmpeg.returncode != 0 or ffmpeg.errors:
        raise AudioRejected(
            f"{what} does not decode cleanly: {ffmpeg.errors[-400:] or ffmpeg.returncode}",
            code="undecodable",
            hint="the file is damaged; re-run mastering",
        )


@contextlib.contextmanager
def _on_disk(source: Path | bytes) -> Iterator[Path]:
    """`source` as a file ffmpeg can open: the file itself, or the bytes in a temporary one."""
    if isinstance(source, Path):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="shipyard-audio-") as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(source)
        yield path


def decode_file(source: Path | bytes, rate: int, *, what: str) -> Samples:
    """A short audio file (music, an excerpt) decoded whole (`decode_stream`)."""
    with _on_disk(source) as path:
        pieces = list(decode_stream(path, rate, what=what))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


class Mp3Encoder:
    """CBR MP3 written by ffmpeg's LAME to `target`, fed block by block through a pipe; the
    file gets a LAME Info header (exact length, gapless), which is why it is a file."""

    def __init__(self, target: Path, rate: int, kbps: int, *, quality: int, seconds: float) -> None:
        self.target = target
        self._args = [*_lame(rate, rate, kbps, quality), "-f", "mp3", "-y", str(target)]
        self._timeout = _timeout_for(seconds)

    def encode(self, pieces: Iterable[Samples]) -> Path:
        with _ffmpeg(self._args, timeout=self._timeout, stdin=subprocess.PIPE) as ffmpeg:
            assert ffmpeg.process.stdin is not None
            try:
                for piece in pieces:
                    ffmpeg.process.stdin.write(piece.astype("<f4", copy=False).tobytes())
            except BrokenPipeError:
                pass  # ffmpeg stopped: its exit status and errors say why
        if ffmpeg.returncode != 0 or not self.target.is_file():
            raise _not_encoded(ffmpeg)
        return self.target


def _lame(rate: int, out_rate: int, kbps: int, quality: int) -> list[str]:
    """ffmpeg's arguments from float samples on its input to CBR LAME at `out_rate`, untagged."""
    return [
        *("-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0"),
        *("-c:a", "libmp3lame", "-b:a", f"{kbps}k", "-ar", str(out_rate)),
        *("-compression_level", str(quality)),
        *("-map_metadata", "-1", "-id3v2_version", "0", "-write_id3v1", "0"),
    ]


def _not_encoded(ffmpeg: _Program) -> TransientError:
    return TransientError(
        f"ffmpeg could not encode MP3: {ffmpeg.errors[-400:]}",
        code="encode-failed",
        hint="check ffmpeg has libmp3lame",
    )


def stream_mp3(
    pieces: Iterable[Samples], rate: int, out_rate: int, kbps: int, *, quality: int, seconds: float
) -> Iterator[bytes]:
    """Audio as MP3 while it is made: the pieces (at `rate`) are pulled in a thread of their
    own and fed to ffmpeg's LAME as they come, and its frames (at `out_rate`) are given as soon
    as each is encoded, so that the first can be heard while the rest is still being made. No
    Info header (the length is not known until the end); a failure while making the pieces is
    raised once the frames before it are out. Leaving early ends ffmpeg, and so the feeding."""
    args = [
        # no probing: ffmpeg would otherwise read seconds of input before it encodes any
        *("-probesize", "32", "-analyzeduration", "0", "-fflags", "nobuffer"),
        *_lame(rate, out_rate, kbps, quality),
        *("-write_xing", "0", "-flush_packets", "1", "-f", "mp3", "-"),
    ]
    failed: list[BaseException] = []
    with _ffmpeg(
        args, timeout=_timeout_for(seconds), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as ffmpeg:
        stdin, stdout = ffmpeg.process.stdin, ffmpeg.process.stdout
        assert stdin is not None and stdout is not None

        def feed() -> None:
            try:
                for piece in pieces:
                    stdin.write(piece.astype("<f4", copy=False).tobytes())
                    stdin.flush()
            except (BrokenPipeError, ValueError):
                pass  # ffmpeg ended, or we left early: its status says which
            except BaseException as exc:  # noqa: BLE001  (raised below, in the caller's thread)
                failed.append(exc)
            finally:
                with contextlib.suppress(OSError, ValueError):
                    stdin.close()

        feeder = threading.Thread(target=feed, name="shipyard-mp3-feed", daemon=True)
        feeder.start()
        while chunk := os.read(stdout.fileno(), 1 << 16):
            yield chunk
        feeder.join()
    if failed:
        raise failed[0]
    if ffmpeg.returncode != 0:
        raise _not_encoded(ffmpeg)


def encode_mp3(samples: Samples, rate: int, kbps: int, *, quality: int) -> bytes:
    """Audio in memory (an excerpt) as MP3 bytes (`Mp3Encoder`)."""
    with tempfile.TemporaryDirectory(prefix="shipyard-encode-") as tmp:
        target = Path(tmp) / "excerpt.mp3"
        encoder = Mp3Encoder(target, rate, kbps, quality=quality, seconds=len(samples) / rate)
        return encoder.encode([samples]).read_bytes()


# --- the integrity gate -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpisodeMeasurements:
    seconds: float
    loudness_lufs: float
    true_peak_dbtp: float
    longest_silence_s: float
    clipped_fraction: float
    flatness: float


def measure_episode(source: Path, rate: int) -> EpisodeMeasurements:
    """An audio file measured in one streaming decode: its length, loudness, true peak and
    speech statistics."""
    speech, level, peak = SpeechMeter(rate), LoudnessMeter(rate), TruePeakMeter()
    for block in decode_stream(source, rate, what="the episode MP3"):
        speech.add(block)
        level.add(block)
        peak.add(block)
    stats = speech.stats()
    return EpisodeMeasurements(
        stats.seconds,
        round(level.lufs(), 2),
        round(peak.dbtp(), 2),
        stats.longest_silence_s,
        stats.clipped_fraction,
        stats.flatness,
    )


def inspect_episode(
    source: Path | bytes,
    *,
    expected_seconds: float,
    estimated_seconds: float,
    settings: AudioConfig,
) -> EpisodeMeasurements:
    """The integrity gate for a finished file (`gate_episode` on `measure_episode`)."""
    with _on_disk(source) as path:
        found = measure_episode(path, settings.sample_rate)
    return gate_episode(
        found,
        expected_seconds=expected_seconds,
        estimated_seconds=estimated_seconds,
        settings=settings,
    )


def gate_episode(
    found: EpisodeMeasurements,
    *,
    expected_seconds: float,
    estimated_seconds: float,
    settings: AudioConfig,
) -> EpisodeMeasurements:
    """The integrity gate on a file's measurements: it decoded, is as long as what was encoded
    (`expected_seconds`) and within tolerance of the script's estimate, has no long silence,
    no clipping, is speech, and meets the loudness and true-peak targets (BS.1770)."""
    lufs, peak = found.loudness_lufs, found.true_peak_dbtp
    tolerance = settings.duration_tolerance
    low, high = estimated_seconds * (1 - tolerance), estimated_seconds * (1 + tolerance)
    problems = []
    if abs(found.seconds - expected_seconds) > 0.25:
        problems.append(f"decodes to {found.seconds:.2f} s of the {expected_seconds:.2f} s encoded")
    if not low <= found.seconds <= high:
        problems.append(
            f"lasts {found.seconds:.1f} s, outside {low:.1f}-{high:.1f} s "
            f"(estimate {estimated_seconds:.1f} s ±{tolerance:.0%})"
        )
    if found.longest_silence_s > settings.max_silence_seconds:
        problems.append(
            f"has {found.longest_silence_s:.1f} s of silence "
            f"(at most {settings.max_silence_seconds:.1f} s)"
        )
    if found.clipped_fraction > 0.0001:
        problems.append(f"clips ({found.clipped_fraction:.3%} of samples at full scale)")
    if found.flatness > NOISE_FLATNESS:
        problems.append(f"sounds like noise (spectral flatness {found.flatness:.2f})")
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
