"""Audio in blocks: every meter and the limiter give, piece by piece, what they give on the
whole array; mastering's memory does not grow with the episode; ffmpeg behind a pipe fails
loudly and is stopped at its timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard._errors import StepTimeout, TransientError
from shipyard_podcast.audio import dsp

RATE = 44100


def _speechlike(seconds: float, seed: int = 7) -> np.ndarray:
    """Noise shaped into syllables and pauses, with a few loud bursts for the limiter."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    syllables = np.clip(np.sin(2 * np.pi * 4 * t) + rng.normal(0, 0.3, n), 0, None)
    pauses = (np.sin(2 * np.pi * 0.3 * t) > -0.6).astype(np.float64)
    voice = np.sin(2 * np.pi * 140 * t) + 0.5 * np.sin(2 * np.pi * 280 * t + 1)
    samples = 0.25 * syllables * pauses * voice + 0.02 * rng.normal(0, 1, n) * pauses
    for start in rng.integers(0, n - RATE // 10, 12):
        samples[start : start + RATE // 20] *= 4.0
    return samples.astype(np.float32)


SIGNAL = _speechlike(40.0)


def _pieces(samples: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """`samples` cut into pieces of the given sizes, over and over, to the end."""
    pieces, at, i = [], 0, 0
    while at < len(samples):
        pieces.append(samples[at : at + sizes[i % len(sizes)]])
        at += sizes[i % len(sizes)]
        i += 1
    return pieces


piece_sizes = st.lists(
    st.one_of(st.integers(0, 12), st.integers(1, 5000), st.integers(20_000, 600_000)),
    min_size=1,
    max_size=6,
).filter(lambda sizes: sum(sizes) >= 1000 * len(sizes))  # some tiny, not all


@settings(max_examples=15, deadline=None)
@given(sizes=piece_sizes)
def test_meters_fed_in_pieces_measure_what_the_whole_measures(sizes: list[int]) -> None:
    level, peak, speech = dsp.LoudnessMeter(RATE), dsp.TruePeakMeter(), dsp.SpeechMeter(RATE)
    for piece in _pieces(SIGNAL, sizes):
        level.add(piece)
        peak.add(piece)
        speech.add(piece)
    assert level.lufs() == pytest.approx(dsp.loudness(SIGNAL, RATE), abs=1e-6)
    assert peak.dbtp() == pytest.approx(dsp.true_peak_db(SIGNAL), abs=1e-6)
    assert speech.stats() == dsp._speech_stats(SIGNAL, RATE)


@settings(max_examples=10, deadline=None)
@given(sizes=piece_sizes)
def test_the_limiter_in_blocks_equals_limiting_the_whole(sizes: list[int]) -> None:
    whole = dsp.limit(SIGNAL, RATE, -1.5)
    streamed = np.concatenate(list(dsp.limit_stream(_pieces(SIGNAL, sizes), RATE, -1.5)))
    # equal but for the last bit: the smoothing filter's running sum starts elsewhere
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-6)
    assert dsp.true_peak_db(whole) <= -1.5 + 0.01
    assert dsp.true_peak_db(SIGNAL) > 0  # it had work to do


def test_audio_under_one_block_is_measured_as_if_repeated() -> None:
    short = SIGNAL[RATE : RATE + RATE // 5]
    assert dsp.loudness(short, RATE) == pytest.approx(
        dsp.loudness(np.tile(short, 2), RATE), abs=1e-6
    )
    assert dsp.loudness(np.zeros(RATE, dtype=np.float32), RATE) == -np.inf


MASTER_IN_A_CHILD = """
import datetime, json, sys, tempfile
from pathlib import Path
from shipyard._artifacts import ArtifactStore
from shipyard_podcast.audio.master import master
from shipyard_podcast.models import Clip, Host, Script, Turn
from shipyard_podcast.settings import AudioConfig, ShowConfig
from shipyard_podcast.audio.synthesize import synthesize

minutes = float(sys.argv[1])
show = ShowConfig(hosts=[{"name": "Ann", "voice": "espeak:en-us"},
                         {"name": "Bob", "voice": "espeak:en-us+f3"}])
hosts = [Host(name=h.name, voice=h.voice) for h in show.hosts]
text = ("The authors propose a way to schedule parallel jobs on a cluster. It balances the "
        "time the last job ends against the time each job waits, and it was tested well.")
with tempfile.TemporaryDirectory() as tmp:
    store = ArtifactStore(Path(tmp))
    two = Script(show="s", title="t", hosts=hosts, writer="x", estimated_seconds=20,
                 turns=[Turn(speaker=h.name, text=text) for h in hosts])
    spoken = synthesize(two, store, Path(tmp) / "cache", AudioConfig(), {}).clips
    each = sum(clip.seconds for clip in spoken) / 2 + 0.4
    count = int(minutes * 60 / each)
    script = Script(show="s", title="t", hosts=hosts, writer="x", estimated_seconds=count * each,
                    turns=[Turn(speaker=hosts[i % 2].name, text=text) for i in range(count)])
    clips = [Clip(turn=i, sha256=spoken[i % 2].sha256, seconds=1.0) for i in range(count)]
    def kib(field):  # this process's own figures (getrusage's peak starts at the parent's)
        status = Path("/proc/self/status").read_text()
        return int(status.split(field + ":")[1].split()[0])
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    before = kib("VmRSS")
    episode = master(script, clips, store, show, AudioConfig(), episode_title="t",
                     description="d", date=datetime.date(2026, 1, 1), cover=None)
    after = kib("VmHWM")
print(json.dumps({"seconds": episode.seconds, "grew_kib": after - before}))
"""


@pytest.mark.slow
def test_mastering_memory_does_not_grow_with_the_episode() -> None:
    grew = {}
    for minutes in (4, 16):
        out = subprocess.run(
            [sys.executable, "-c", MASTER_IN_A_CHILD, str(minutes)],
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
        found = json.loads(out.stdout)
        assert found["seconds"] == pytest.approx(minutes * 60, rel=0.1)
        grew[minutes] = found["grew_kib"] / 1024
    # in memory whole, 12 minutes more audio cost over 1 GB more; in blocks, nothing to speak of
    assert grew[16] - grew[4] < 40, grew


def test_ffmpeg_past_its_timeout_is_stopped_and_a_step_timeout() -> None:
    forever = ["-f", "lavfi", "-i", "sine=duration=100000", "-f", "null", "-"]
    with pytest.raises(StepTimeout, match="ffmpeg ran past 1 s"), dsp._ffmpeg(forever, timeout=1):
        pass


def test_an_encoder_that_fails_says_why(tmp_path: Path) -> None:
    encoder = dsp.Mp3Encoder(
        tmp_path / "x.mp3", 1000, 128, quality=7, seconds=1.0
    )  # MP3 has no 1 kHz
    with pytest.raises(TransientError, match="sample rate 1000 is not supported") as failed:
        encoder.encode([SIGNAL[:1000]])
    assert failed.value.code == "encode-failed"


def test_decoding_stopped_early_leaves_no_ffmpeg_behind(tmp_path: Path) -> None:
    mp3 = tmp_path / "x.mp3"
    mp3.write_bytes(dsp.encode_mp3(_speechlike(25.0), RATE, 128, quality=7))
    blocks = dsp.decode_stream(mp3, RATE, what="x")
    first = next(blocks)
    assert len(first) == int(dsp.DECODE_BLOCK_S * RATE)
    blocks.close()
    children = subprocess.run(
        ["pgrep", "-P", str(os.getpid()), "ffmpeg"],
        capture_output=True,
        check=False,
    )
    assert children.stdout == b""
