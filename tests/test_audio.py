"""Synthesis and mastering with real voices and real ffmpeg, on short scripts.

The episode is checked by independent tools: ffmpeg's ebur128 meter, ffprobe, mutagen, and a
WebVTT reading written here. Bad engine output comes from real engine classes registered for
these tests, each made to produce one kind of bad audio.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pypdfium2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mutagen.id3 import ID3
from mutagen.mp3 import MP3, BitrateMode

from shipyard._artifacts import ArtifactStore
from shipyard._errors import ConfigError
from shipyard_podcast.artwork import make_cover
from shipyard_podcast.audio.dsp import decode_file, inspect_episode, stream_mp3
from shipyard_podcast.audio.master import _webvtt, master
from shipyard_podcast.audio.samples import Audio, decode_wav, encode_wav
from shipyard_podcast.audio.speakable import normalise_text
from shipyard_podcast.audio.synthesize import SynthesisResult, TurnSpeech, synthesize, turn_speech
from shipyard_podcast.audio.voices import (
    EspeakEngine,
    VoiceEngine,
    load_voice,
    register_engine,
    speak,
)
from shipyard_podcast.errors import AudioRejected, ScriptRejected
from shipyard_podcast.models import Clip, Episode, Host, Script, Turn
from shipyard_podcast.settings import AudioConfig, ShowConfig
from tests.conftest import corpus_files

SHOW = ShowConfig()
SETTINGS = AudioConfig()
DATE = datetime.date(2026, 11, 21)


def _script(
    texts: list[str],
    *,
    chapters: dict[int, str],
    hosts: list[Host] | None = None,
    estimate_factor: float = 1.0,
) -> Script:
    hosts = hosts or [Host(name=h.name, voice=h.voice) for h in SHOW.hosts]
    turns = [
        Turn(speaker=hosts[i % 2].name, text=text, chapter=chapters.get(i))
        for i, text in enumerate(texts)
    ]
    words = sum(len(text.split()) for text in texts)
    return Script(
        show=SHOW.title,
        title="Test episode",
        hosts=hosts,
        turns=turns,
        writer="test",
        estimated_seconds=words / 2.5 * estimate_factor,
    )


def _master(
    script: Script,
    clips: list[Clip],
    store: ArtifactStore,
    settings: AudioConfig = SETTINGS,
    **options: Any,
) -> Episode:
    """`master` with a throwaway title, description and date, a drawn cover unless given."""
    defaults: dict[str, Any] = {
        "episode_title": "x",
        "description": "x",
        "date": DATE,
        "cover": None,
    }
    return master(script, clips, store, SHOW, settings, **{**defaults, **options})


def _paper_sentences() -> tuple[str, list[str]]:
    """A corpus paper's title and the first sentences of its abstract."""
    pdf = next(p for p in corpus_files("papers") if p.name == "grobid__sample.pdf")
    document = pypdfium2.PdfDocument(pdf)
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    title = " ".join(text.splitlines()[:2]).replace("∗", "").strip()
    abstract = text[text.index("ABSTRACT") + len("ABSTRACT") : text.index("Categories")]
    abstract = re.sub(r"[\ufffe\u00ad]\s*", "", abstract)
    sentences = re.split(r"(?<=\.)\s+", " ".join(abstract.split()))
    return title, sentences[:4]


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return result.stdout + result.stderr


def _generate(source: str, target: Path, *options: str) -> None:
    """Write an audio file from one of ffmpeg's generators (a tone, silence)."""
    _run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, *options, str(target)])


@dataclass
class Made:
    script: Script
    store: ArtifactStore
    synthesis: SynthesisResult
    episode: Episode
    mp3: Path


@pytest.fixture(scope="module")
def paper_episode(tmp_path_factory: pytest.TempPathFactory) -> Made:
    if not corpus_files("papers"):
        pytest.skip("corpus not found")
    title, sentences = _paper_sentences()
    script = _script(
        [f"Today: {title}. {sentences[0]}", *sentences[1:]],
        chapters={0: "The problem", 2: "The algorithm"},
    )
    root = tmp_path_factory.mktemp("paper")
    store = ArtifactStore(root / "artifacts")
    synthesis = synthesize(script, store, root / "cache", SETTINGS, SHOW.pronunciations)
    episode = master(
        script,
        synthesis.clips,
        store,
        SHOW,
        SETTINGS,
        episode_title=title,
        description="A scheduling paper, discussed.",
        date=DATE,
        cover=None,
    )
    return Made(script, store, synthesis, episode, store.path(episode.audio_sha256))


# --- the episode, measured by independent tools -----------------------------------------


@pytest.mark.corpus
def test_episode_meets_loudness_and_true_peak_by_ffmpeg_ebur128(paper_episode: Made) -> None:
    out = _run(
        [
            "ffmpeg",
            "-nostats",
            "-hide_banner",
            "-i",
            str(paper_episode.mp3),
            "-filter_complex",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ]
    )
    summary = out[out.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary)[1])  # type: ignore[index]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary)[1])  # type: ignore[index]
    assert -17.0 <= integrated <= -15.0
    assert peak <= -1.0
    assert paper_episode.episode.loudness_lufs == pytest.approx(integrated, abs=0.1)
    assert paper_episode.episode.true_peak_dbtp == pytest.approx(peak, abs=0.2)


@pytest.mark.corpus
def test_episode_is_cbr_mp3_at_44100_with_chapters_ffprobe_lists(paper_episode: Made) -> None:
    probe = json.loads(
        _run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_chapters",
                "-show_streams",
                "-show_format",
                "-of",
                "json",
                str(paper_episode.mp3),
            ]
        )
    )
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert audio["codec_name"] == "mp3" and audio["sample_rate"] == "44100"
    assert audio["bit_rate"] == "128000"
    assert MP3(paper_episode.mp3).info.bitrate_mode == BitrateMode.CBR
    chapters = sorted(probe["chapters"], key=lambda c: float(c["start_time"]))
    assert [c["tags"]["title"] for c in chapters] == ["The problem", "The algorithm"]
    assert float(chapters[0]["start_time"]) == 0.0
    assert float(chapters[-1]["end_time"]) == pytest.approx(
        float(probe["format"]["duration"]), abs=0.1
    )
    chapters_json = json.loads(paper_episode.store.read_text(paper_episode.episode.chapters_sha256))
    assert [c["title"] for c in chapters_json["chapters"]] == ["The problem", "The algorithm"]
    assert [c["startTime"] for c in chapters_json["chapters"]] == pytest.approx(
        [float(c["start_time"]) for c in chapters], abs=0.002
    )


@pytest.mark.corpus
def test_tags_read_back_with_mutagen(paper_episode: Made) -> None:
    tags = ID3(paper_episode.mp3)
    assert tags.version[:2] == (2, 3)
    title, _ = _paper_sentences()
    assert str(tags["TIT2"]) == title
    assert str(tags["TALB"]) == SHOW.title
    assert str(tags["TPE1"]) == SHOW.author
    assert str(tags["TDRC"]) == "2026-11-21"
    assert tags.getall("COMM")[0].text == ["A scheduling paper, discussed."]
    cover = tags.getall("APIC")[0]
    assert cover.mime == "image/png" and cover.type == 3
    assert cover.data == paper_episode.store.read_bytes(paper_episode.episode.cover_sha256)
    assert int.from_bytes(cover.data[16:20], "big") == int.from_bytes(cover.data[20:24], "big")
    assert int.from_bytes(cover.data[16:20], "big") >= 1400
    toc = tags.getall("CTOC")[0]
    chapters = [tags[f"CHAP:{element}"] for element in toc.child_element_ids]
    assert [str(c.sub_frames["TIT2"]) for c in chapters] == ["The problem", "The algorithm"]
    assert chapters[0].start_time == 0 and chapters[0].end_time == chapters[1].start_time


_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})")


def _parse_vtt(text: str) -> list[tuple[float, float, str, str]]:
    """(start, end, speaker, text) of each cue; raises on anything that is not WebVTT."""
    lines = text.split("\n")
    assert lines[0] == "WEBVTT"
    cues = []
    for block in "\n".join(lines[1:]).strip().split("\n\n"):
        rows = block.split("\n")
        timing = next(i for i, row in enumerate(rows) if "-->" in row)
        match = _CUE.fullmatch(rows[timing])
        assert match, rows[timing]
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
        voice = re.fullmatch(r"<v ([^>]+)>(.*)</v>", " ".join(rows[timing + 1 :]))
        assert voice, rows
        cues.append(
            (
                h1 * 3600 + m1 * 60 + s1 + ms1 / 1000,
                h2 * 3600 + m2 * 60 + s2 + ms2 / 1000,
                voice[1],
                voice[2],
            )
        )
    return cues


@pytest.mark.corpus
def test_transcript_parses_and_its_cues_span_the_audio(paper_episode: Made) -> None:
    cues = _parse_vtt(paper_episode.store.read_text(paper_episode.episode.transcript_sha256))
    seconds = paper_episode.episode.seconds
    assert {speaker for _, _, speaker, _ in cues} == {"Alex", "Sam"}
    assert all(start < end for start, end, _, _ in cues)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(cues))
    assert cues[0][0] < 1.0
    assert seconds - 2.0 < cues[-1][1] <= seconds
    spoken = " ".join(text for *_, text in cues)
    assert spoken.split() == " ".join(t.text for t in paper_episode.script.turns).split()


@pytest.mark.corpus
def test_mastering_again_gives_the_same_bytes(paper_episode: Made) -> None:
    again = master(
        paper_episode.script,
        paper_episode.synthesis.clips,
        paper_episode.store,
        SHOW,
        SETTINGS,
        episode_title=str(ID3(paper_episode.mp3)["TIT2"]),
        description="A scheduling paper, discussed.",
        date=DATE,
        cover=None,
    )
    assert again == paper_episode.episode


# --- the per-turn cache ----------------------------------------------------------------


class CountingEspeak(EspeakEngine):
    """espeak-ng that counts the texts it is asked to speak."""

    engine = "counting-espeak"
    spoken: ClassVar[list[str]] = []

    def synthesize(self, text: str) -> bytes:
        self.spoken.append(text)
        return super().synthesize(text)


@pytest.fixture(scope="module", autouse=True)
def _test_engines() -> None:
    for engine in (
        CountingEspeak,
        SilentEngine,
        CutShortEngine,
        GarbageEngine,
        NoiseEngine,
        TooShortEngine,
    ):
        register_engine(engine.engine, engine)


TEXTS = [
    "Welcome to the show, where we read papers aloud.",
    "Thanks. This paper trains a model on 8 GPUs.",
    "How much faster is it than before?",
    "About 3.5x faster, at the same accuracy.",
]


def test_editing_one_turn_resynthesizes_exactly_one_clip(tmp_path: Path) -> None:
    hosts = [
        Host(name="Ann", voice="counting-espeak:en-us"),
        Host(name="Bob", voice="counting-espeak:en-us+m3"),
    ]
    store, cache = ArtifactStore(tmp_path / "artifacts"), tmp_path / "cache"
    CountingEspeak.spoken.clear()
    first = synthesize(_script(TEXTS, chapters={}, hosts=hosts), store, cache, SETTINGS, {})
    assert first.synthesized == [0, 1, 2, 3] and first.cached == []
    assert len(CountingEspeak.spoken) == 4
    assert [clip.turn for clip in first.clips] == [0, 1, 2, 3]

    edited = [*TEXTS]
    edited[2] = "How much faster is it, really?"
    CountingEspeak.spoken.clear()
    second = synthesize(_script(edited, chapters={}, hosts=hosts), store, cache, SETTINGS, {})
    assert CountingEspeak.spoken == ["How much faster is it, really?"]
    assert second.synthesized == [2] and second.cached == [0, 1, 3]
    assert [c.sha256 for i, c in enumerate(second.clips) if i != 2] == [
        c.sha256 for i, c in enumerate(first.clips) if i != 2
    ]

    CountingEspeak.spoken.clear()  # a new pronunciation changes the words spoken: re-speak
    third = synthesize(
        _script(edited, chapters={}, hosts=hosts),
        store,
        cache,
        SETTINGS,
        {"GPUs": "graphics cards"},
    )
    assert third.synthesized == [1] and len(CountingEspeak.spoken) == 1
    assert "graphics cards" in CountingEspeak.spoken[0]


def test_cache_entry_whose_clip_left_the_store_is_spoken_again(tmp_path: Path) -> None:
    hosts = [
        Host(name="Ann", voice="counting-espeak:en-us"),
        Host(name="Bob", voice="counting-espeak:en-us+m3"),
    ]
    script = _script(TEXTS[:2], chapters={}, hosts=hosts)
    synthesize(script, ArtifactStore(tmp_path / "a"), tmp_path / "cache", SETTINGS, {})
    again = synthesize(script, ArtifactStore(tmp_path / "b"), tmp_path / "cache", SETTINGS, {})
    assert again.synthesized == [0, 1]


class PiecewiseEspeak(CountingEspeak):
    """espeak-ng that takes 40 characters at a time: a turn is spoken in several pieces."""

    engine = "piecewise-espeak"
    max_chars = 40


def test_a_preview_is_heard_while_the_rest_of_its_turn_is_spoken_and_lands_in_the_cache(
    tmp_path: Path,
) -> None:
    register_engine(PiecewiseEspeak.engine, PiecewiseEspeak)
    hosts = [Host(name="Ann", voice="piecewise-espeak:en-us"), Host(name="Bob", voice="espeak:en")]
    text = "We trained it on eight papers. Then we tested it on the rest. It held up well."
    script = _script([text, TEXTS[1]], chapters={}, hosts=hosts)
    store, cache = ArtifactStore(tmp_path / "artifacts"), tmp_path / "cache"
    speech = turn_speech(script, 0, store, cache, {})
    assert isinstance(speech, TurnSpeech)

    heard = threading.Event()  # the listener has the first MP3 frames
    made_after_heard: list[bool] = []

    def pieces() -> Iterator[np.ndarray]:
        for n, piece in enumerate(speech):
            if n == 1:  # the second piece waits (30 s at most) until the first is heard
                made_after_heard.append(heard.wait(timeout=30))
            yield piece.samples

    CountingEspeak.spoken.clear()
    chunks = []
    for chunk in stream_mp3(pieces(), 22_050, 24_000, 48, quality=2, seconds=30):
        chunks.append(chunk)
        heard.set()
    assert made_after_heard == [True]
    assert len(CountingEspeak.spoken) >= 3  # spoken in pieces, each once
    streamed = decode_file(b"".join(chunks), 24_000, what="the stream")
    assert speech.clip is not None
    assert abs(len(streamed) / 24_000 - speech.clip.seconds) < 0.2

    # the turn heard is the turn the run would speak, and the run finds it in the cache
    again = turn_speech(script, 0, store, cache, {})
    assert again == speech.clip
    whole = decode_wav(store.path(speech.clip.sha256).read_bytes(), source="the clip")
    said = speak(load_voice("piecewise-espeak:en-us"), normalise_text(text, {}, "en"))
    assert np.array_equal(whole.samples, decode_wav(encode_wav(said), source="speak").samples)
    result = synthesize(script, store, cache, SETTINGS, {})
    assert result.cached == [0] and result.synthesized == [1]


def test_turn_by_someone_not_a_host_is_rejected(tmp_path: Path) -> None:
    script = _script(TEXTS[:1], chapters={})
    bad = script.model_copy(update={"turns": [Turn(speaker="Eve", text="Hello.")]})
    with pytest.raises(ScriptRejected, match="Eve"):
        synthesize(bad, ArtifactStore(tmp_path), tmp_path / "cache", SETTINGS, {})


# --- the integrity gate against engines made to fail ------------------------------------


class _Made(VoiceEngine):
    """A test engine: espeak-ng's real speech, spoiled in one way by `spoil`."""

    version = "test"
    concurrency = 2

    def synthesize(self, text: str) -> bytes:
        return self.spoil(load_voice("espeak:en-us").synthesize(text))

    def spoil(self, wav: bytes) -> bytes:
        raise NotImplementedError


class SilentEngine(_Made):
    engine = "silent"

    def spoil(self, wav: bytes) -> bytes:  # as long as the speech, all zeros
        return wav[:44] + bytes(len(wav) - 44)


class CutShortEngine(_Made):
    engine = "cut-short"

    def spoil(self, wav: bytes) -> bytes:  # the connection dropped mid-file
        return wav[: len(wav) // 3]


class GarbageEngine(_Made):
    engine = "garbage"

    def spoil(self, wav: bytes) -> bytes:  # an error page instead of audio
        return b'{"error": "upstream timeout"}' + wav[:100]


class NoiseEngine(_Made):
    engine = "noise"

    def spoil(self, wav: bytes) -> bytes:  # a well-formed WAV of hiss
        noise = np.random.default_rng(7).uniform(-0.5, 0.5, (len(wav) - 44) // 2)
        return encode_wav(Audio(noise.astype(np.float32), 22050))


class TooShortEngine(_Made):
    engine = "too-short"

    def spoil(self, wav: bytes) -> bytes:  # well-formed, but a blip for a whole sentence
        return encode_wav(Audio(np.zeros(2205, dtype=np.float32), 22050))


@pytest.mark.parametrize(
    ("engine", "code", "measured"),
    [
        ("silent", "silent", r"0% active"),
        ("cut-short", "truncated", r"announces \d+ frames .* holds \d+"),
        ("garbage", "undecodable", r"not a WAV file .*starting b'\{\"error"),
        ("noise", "not-speech", r"flatness 0\.\d\d"),
        ("too-short", "truncated", r"0\.10 s for \d+ words"),
    ],
)
def test_bad_engine_output_is_caught_by_the_integrity_gate(
    tmp_path: Path, engine: str, code: str, measured: str
) -> None:
    hosts = [Host(name="Ann", voice="espeak:en-us"), Host(name="Bob", voice=f"{engine}:x")]
    script = _script(TEXTS[:2], chapters={}, hosts=hosts)
    with pytest.raises(AudioRejected, match=measured) as caught:
        synthesize(script, ArtifactStore(tmp_path), tmp_path / "cache", SETTINGS, {})
    assert caught.value.code == code
    # nothing bad was cached: the good turn is, the bad one is not
    entries = list((tmp_path / "cache").rglob("*.json"))
    assert len(entries) == 1 and "Welcome" in entries[0].read_text()


def test_master_rechecks_clips_it_is_given(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    good = store.put_bytes(load_voice("espeak:en-us").synthesize(TEXTS[0]), suffix=".wav")
    silent = store.put_bytes(
        encode_wav(Audio(np.zeros(22050 * 3, np.float32), 22050)), suffix=".wav"
    )
    script = _script(TEXTS[:2], chapters={})
    clips = [
        Clip(turn=0, sha256=good.sha256, seconds=3.0),
        Clip(turn=1, sha256=silent.sha256, seconds=3.0),
    ]
    with pytest.raises(AudioRejected, match=r"turn 2 .*silent") as caught:
        _master(script, clips, store)
    assert caught.value.code == "silent"


@pytest.fixture(scope="module")
def short_episode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[bytes, float]]:
    root = tmp_path_factory.mktemp("short")
    store = ArtifactStore(root)
    script = _script(TEXTS, chapters={0: "Hello"})
    clips = synthesize(script, store, root / "cache", SETTINGS, {}).clips
    episode = _master(script, clips, store)
    yield store.read_bytes(episode.audio_sha256), episode.seconds


def test_episode_gate_passes_the_good_file_and_catches_damaged_ones(
    short_episode: tuple[bytes, float], tmp_path: Path
) -> None:
    mp3, seconds = short_episode
    found = inspect_episode(
        mp3, expected_seconds=seconds, estimated_seconds=seconds, settings=SETTINGS
    )
    assert found.seconds == pytest.approx(seconds, abs=0.05)

    # Cut anywhere: it decodes short, or (cut mid-frame) it does not decode cleanly.
    with pytest.raises(
        AudioRejected, match=r"decodes to \d+\.\d+ s of the|does not decode cleanly"
    ) as cut:
        inspect_episode(
            mp3[: len(mp3) // 2],
            expected_seconds=seconds,
            estimated_seconds=seconds,
            settings=SETTINGS,
        )
    assert cut.value.code in ("undecodable", "integrity")

    with pytest.raises(AudioRejected) as garbage:
        inspect_episode(
            b"\xff\xfb" + bytes(range(256)) * 40,
            expected_seconds=seconds,
            estimated_seconds=seconds,
            settings=SETTINGS,
        )
    assert garbage.value.code in ("undecodable", "integrity")

    silent = tmp_path / "silent.mp3"
    _generate("anullsrc=r=44100:cl=mono", silent, "-t", "8", "-c:a", "libmp3lame", "-b:a", "128k")
    with pytest.raises(AudioRejected, match=r"8\.0 s of silence") as quiet:
        inspect_episode(
            silent.read_bytes(), expected_seconds=8.0, estimated_seconds=8.0, settings=SETTINGS
        )
    assert quiet.value.code == "integrity"


def test_duration_far_from_the_estimate_is_rejected(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    script = _script(TEXTS[:2], chapters={}, estimate_factor=4.0)
    clips = synthesize(script, store, tmp_path / "cache", SETTINGS, {}).clips
    with pytest.raises(AudioRejected, match=r"outside .* \(estimate \d+\.\d s ±50%\)"):
        _master(script, clips, store)


# --- intro, outro, cover -----------------------------------------------------------------


def test_intro_and_outro_from_config_frame_the_speech(tmp_path: Path) -> None:
    for name, hz in (("intro.wav", 440), ("outro.wav", 660)):
        _generate(f"sine=frequency={hz}:duration=2", tmp_path / name, "-af", "volume=0.2")
    settings = AudioConfig(intro="intro.wav", outro=str(tmp_path / "outro.wav"))
    store = ArtifactStore(tmp_path / "artifacts")
    script = _script(TEXTS[:2], chapters={0: "Start"})
    clips = synthesize(script, store, tmp_path / "cache", settings, {}).clips
    with pytest.raises(ConfigError, match="assets_root"):
        _master(script, clips, store, settings)
    episode = _master(script, clips, store, settings, assets_root=tmp_path)
    plain = _master(script, clips, store)
    assert episode.seconds - plain.seconds == pytest.approx(4.0 + 2 * 0.6 - 0.4, abs=0.1)
    assert -17.0 <= episode.loudness_lufs <= -15.0 and episode.true_peak_dbtp <= -1.0
    cues = _parse_vtt(store.read_text(episode.transcript_sha256))
    assert cues[0][0] > 2.5  # the first words come after the intro
    chapters = json.loads(store.read_text(episode.chapters_sha256))["chapters"]
    assert chapters == [{"startTime": 0.0, "title": "Start"}]


def test_cover_given_must_be_square_and_large_enough(tmp_path: Path) -> None:
    png = make_cover("A show", size=1400)
    assert png.startswith(b"\x89PNG") and int.from_bytes(png[16:20], "big") == 1400
    store = ArtifactStore(tmp_path)
    script = _script(TEXTS[:2], chapters={})
    clips = synthesize(script, store, tmp_path / "cache", SETTINGS, {}).clips
    with pytest.raises(ConfigError, match="800x800"):
        _master(script, clips, store, cover=make_cover("small", size=800))
    with pytest.raises(ConfigError, match="neither a PNG nor a JPEG"):
        _master(script, clips, store, cover=b"GIF89a")


def test_48khz_and_another_bitrate(tmp_path: Path) -> None:
    settings = AudioConfig(sample_rate=48000, bitrate_kbps=64)
    store = ArtifactStore(tmp_path)
    script = _script(TEXTS[:2], chapters={})
    clips = synthesize(script, store, tmp_path / "cache", settings, {}).clips
    episode = _master(script, clips, store, settings)
    probe = json.loads(
        _run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_streams",
                "-of",
                "json",
                str(store.path(episode.audio_sha256)),
            ]
        )
    )
    assert probe["streams"][0]["sample_rate"] == "48000"
    assert probe["streams"][0]["bit_rate"] == "64000"
    assert -17.0 <= episode.loudness_lufs <= -15.0 and episode.true_peak_dbtp <= -1.0
    assert ID3(store.path(episode.audio_sha256)).getall("CTOC") == []  # no chapters, no table


def test_the_python_example_in_docs_audio_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "audio.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "docs/audio.md", "exec"), {})
    exec(compile(blocks[0], "docs/audio.md", "exec"), {})
    assert capsys.readouterr().out == "[0, 1] -16 True\n[] -16 True\n"


# --- properties, limits, levels ---------------------------------------------------------

_cue_text = st.text(
    alphabet=st.sampled_from(list("abc XYZ.!?<>&-\n\"'")), min_size=1, max_size=400
).filter(lambda t: t.strip())


@given(st.lists(_cue_text, min_size=1, max_size=6), st.floats(min_value=0.5, max_value=30))
def test_transcript_round_trips_any_text(texts: list[str], turn_seconds: float) -> None:
    hosts = [Host(name="Ann", voice="espeak:en-us"), Host(name="Bob <B>", voice="espeak:en-us")]
    script = _script(texts, chapters={}, hosts=hosts)
    spans = [
        (i * (turn_seconds + 0.5), i * (turn_seconds + 0.5) + turn_seconds)
        for i in range(len(texts))
    ]
    cues = _parse_vtt(_webvtt(script, spans))
    unescape = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
    spoken = [re.sub(r"&(lt|gt|amp);", lambda m: unescape[m[0]], text) for *_, text in cues]
    assert " ".join(spoken).split() == " ".join(texts).split()
    assert all("-->" not in text for *_, text in cues)
    assert {speaker for _, _, speaker, _ in cues} <= {"Ann", "Bob &lt;B&gt;"}
    assert all(a[1] <= b[0] + 0.001 for a, b in itertools.pairwise(cues))
    assert cues[0][0] == 0.0 and cues[-1][1] == pytest.approx(spans[-1][1], abs=0.002)


class OverlapProbe(EspeakEngine):
    """espeak-ng that records how many of its requests run at the same time."""

    engine = "overlap-probe"
    concurrency = 2
    running: ClassVar[int] = 0
    most: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        with self.lock:
            type(self).running += 1
            type(self).most = max(type(self).most, type(self).running)
        try:
            return super().synthesize(text)
        finally:
            with self.lock:
                type(self).running -= 1


@pytest.mark.parametrize(("stage_limit", "bound"), [(1, 1), (4, 2)])
def test_turns_run_in_parallel_within_the_stage_and_engine_limits(
    tmp_path: Path, stage_limit: int, bound: int
) -> None:
    register_engine("overlap-probe", OverlapProbe)
    OverlapProbe.most = 0
    hosts = [
        Host(name="Ann", voice="overlap-probe:en-us"),
        Host(name="Bob", voice="overlap-probe:en-us"),
    ]
    texts = [f"{text} Turn {i}." for i, text in enumerate(TEXTS * 2)]
    result = synthesize(
        _script(texts, chapters={}, hosts=hosts),
        ArtifactStore(tmp_path),
        tmp_path / "cache",
        AudioConfig(concurrency=stage_limit),
        {},
    )
    assert [clip.turn for clip in result.clips] == list(range(8))
    assert 1 <= OverlapProbe.most <= bound


class QuietEspeak(EspeakEngine):
    """espeak-ng at a twentieth of its level (-26 dB): a host recorded far too quietly."""

    engine = "quiet-espeak"

    def synthesize(self, text: str) -> bytes:
        audio = decode_wav(super().synthesize(text))
        return encode_wav(Audio(audio.samples * 0.05, audio.sample_rate))


def test_speakers_are_levelled_to_match(tmp_path: Path) -> None:
    register_engine("quiet-espeak", QuietEspeak)
    hosts = [Host(name="Ann", voice="espeak:en-us"), Host(name="Bob", voice="quiet-espeak:en-us")]
    texts = [f"{text} And that is all I wanted to say about it." for text in TEXTS]
    store = ArtifactStore(tmp_path)
    script = _script(texts, chapters={}, hosts=hosts)
    clips = synthesize(script, store, tmp_path / "cache", SETTINGS, {}).clips
    episode = _master(script, clips, store)
    decoded = _run_bytes(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(store.path(episode.audio_sha256)),
            "-f",
            "f32le",
            "-ac",
            "1",
            "-ar",
            "44100",
            "-",
        ]
    )
    samples = np.frombuffer(decoded, dtype="<f4")
    levels: dict[str, list[float]] = {"Ann": [], "Bob": []}
    for start, end, speaker, _ in _parse_vtt(store.read_text(episode.transcript_sha256)):
        piece = samples[int(start * 44100) : int(end * 44100)]
        levels[speaker].append(20 * np.log10(np.sqrt(np.mean(piece.astype(np.float64) ** 2))))
    ann, bob = np.mean(levels["Ann"]), np.mean(levels["Bob"])
    assert abs(ann - bob) < 1.5, levels  # 26 dB apart before mastering


def _run_bytes(command: list[str]) -> bytes:
    return subprocess.run(command, capture_output=True, timeout=120, check=True).stdout
