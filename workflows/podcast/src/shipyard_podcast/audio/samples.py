"""Audio primitives shared by the voices and mastering: samples with their rate, WAV bytes in
and out, and running an audio program (ffmpeg, a TTS engine) with a timeout."""

from __future__ import annotations

import io
import subprocess
import wave
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shipyard import ConfigError, StepTimeout
from shipyard_podcast.errors import AudioRejected

__all__ = ["SUBPROCESS_TIMEOUT_S", "Audio", "Samples", "decode_wav", "encode_wav", "run_command"]

Samples = npt.NDArray[np.float32]
SUBPROCESS_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Audio:
    """Mono samples in [-1, 1] at a sample rate."""

    samples: Samples
    sample_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def encode_wav(audio: Audio) -> bytes:
    """16-bit PCM mono WAV."""
    pcm = np.clip(np.round(audio.samples * 32767.0), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def decode_wav(data: bytes, *, source: str = "engine") -> Audio:
    """Decode a PCM WAV file (8/16/32-bit, any channel count, mixed down to mono).

    Raises AudioRejected when the bytes are not a WAV file, or when the file is truncated
    (its header announces more frames than it holds).
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            announced = wav.getnframes()
            frames = wav.readframes(announced)
    except (wave.Error, EOFError) as exc:
        raise AudioRejected(
            f"{source} output is not a WAV file ({exc}; {len(data)} bytes, starting {data[:12]!r})",
            code="undecodable",
            hint="check the voice engine; its output cannot be played",
        ) from None
    held = len(frames) // (width * channels)
    if held < announced:
        raise AudioRejected(
            f"{source} output is truncated: the WAV header announces {announced} frames "
            f"({announced / rate:.2f} s) but the file holds {held} ({held / rate:.2f} s)",
            code="truncated",
            hint="the engine's output was cut short; re-run the step",
        )
    if width not in (1, 2, 4) or rate <= 0:
        raise AudioRejected(
            f"{source} output has an unsupported WAV format ({width * 8}-bit, {rate} Hz)",
            code="undecodable",
            hint="use an engine that writes 8, 16 or 32-bit PCM",
        )
    dtype = np.dtype({1: "u1", 2: "<i2", 4: "<i4"}[width])
    raw = np.frombuffer(frames[: held * width * channels], dtype=dtype).astype(np.float32)
    if width == 1:
        raw = (raw - 128.0) / 128.0
    else:
        raw /= float(2 ** (8 * width - 1))
    mono = raw.reshape(-1, channels).mean(axis=1) if channels > 1 else raw
    return Audio(np.ascontiguousarray(mono, dtype=np.float32), rate)


def run_command(
    command: list[str], *, input_bytes: bytes | None = None, timeout: float
) -> subprocess.CompletedProcess[bytes]:
    """Run a program with a timeout, capturing its output. Running past the timeout is a
    StepTimeout (retried); a program that is not installed is a ConfigError."""
    try:
        return subprocess.run(
            command, input=input_bytes, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise StepTimeout(
            f"{command[0]} ran past {timeout:.0f} s: {' '.join(command[1:7])}",
            code="timeout",
            hint="retry; shorten the turn or free the machine if it recurs",
        ) from None
    except FileNotFoundError:
        raise ConfigError(
            f"{command[0]} is not installed", hint="run scripts/install-system-deps"
        ) from None
