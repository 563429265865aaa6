"""Audio stage: real-time factor per voice engine; mastering seconds per audio minute beside a
plain ffmpeg decode + LAME encode of the same audio; the whole stage (synthesis with a cold
cache, then mastering) for a 10-minute episode, pinned to 2 cores.

    python -m benchmarks audio
    SHIPYARD_BENCH_AUDIO_MINUTES=2 python -m benchmarks audio    # a shorter episode
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pypdfium2

from shipyard._artifacts import ArtifactStore
from shipyard.podcast.checks import WORDS_PER_MINUTE
from shipyard.podcast.master import master
from shipyard.podcast.models import Host, Script, Turn
from shipyard.podcast.settings import AudioConfig, ShowConfig
from shipyard.podcast.speakable import normalise_text
from shipyard.podcast.synthesize import synthesize
from shipyard.podcast.voices import load_voice, speak

ENGINES = ["piper:en_US-joe-medium", "festival:cmu_us_slt_arctic_hts", "espeak:en-us+f3"]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "papers"
WORDS_PER_SECOND = WORDS_PER_MINUTE / 60


def _sentences() -> list[str]:
    """Plain sentences from the corpus papers (or the demo paper where there is no corpus)."""
    texts = []
    pdfs = sorted(CORPUS.glob("*.pdf")) if CORPUS.is_dir() else []
    if not pdfs:
        from shipyard.podcast.demo_paper import demo_paper_bytes

        pdfs = [demo_paper_bytes()]  # type: ignore[list-item]
    for pdf in pdfs:
        document = pypdfium2.PdfDocument(pdf)
        try:
            texts += [document[i].get_textpage().get_text_range() for i in range(len(document))]
        finally:
            document.close()
    text = re.sub(r"-\s*\n\s*", "", " ".join(texts))
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [
        s for s in sentences if 8 <= len(s.split()) <= 35 and re.fullmatch(r"[\w ,.;:'()%-]+", s)
    ]


def _script(minutes: float, show: ShowConfig) -> Script:
    hosts = [Host(name=h.name, voice=h.voice) for h in show.hosts]
    sentences, turns, words = _sentences(), [], 0
    target = minutes * 60 * WORDS_PER_SECOND
    i = 0
    while words < target:
        text = " ".join(sentences[i % len(sentences) : i % len(sentences) + 2])
        i += 2
        chapter = f"Part {len(turns) // 8 + 1}" if len(turns) % 8 == 0 else None
        turns.append(Turn(speaker=hosts[len(turns) % 2].name, text=text, chapter=chapter))
        words += len(text.split())
    return Script(
        show=show.title,
        title="Benchmark episode",
        hosts=hosts,
        turns=turns,
        writer="benchmark",
        estimated_seconds=words / WORDS_PER_SECOND,
    )


def _cpu() -> float:
    """CPU seconds used so far by this process and the programs it ran (ffmpeg, festival)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _rtf() -> None:
    paragraph = (
        "The authors propose a scheduling algorithm for parallel jobs on a cluster. "
        "It balances two goals, the time the last job ends and the average time each "
        "job waits, and it was tested in simulation against a lower bound."
    )
    print(f"{'engine':34} {'audio s':>8} {'wall s':>7} {'RTF':>6} {'CPU RTF':>8}")
    for spec in ENGINES:
        engine = load_voice(spec)
        speak(engine, "Warm up.")
        start, cpu = time.perf_counter(), _cpu()
        audio_seconds = sum(speak(engine, normalise_text(paragraph)).seconds for _ in range(3))
        took, cpu = time.perf_counter() - start, _cpu() - cpu
        print(
            f"{spec:34} {audio_seconds:8.1f} {took:7.2f} {took / audio_seconds:6.3f} "
            f"{cpu / audio_seconds:8.3f}"
        )


def _baseline(mp3: Path) -> tuple[float, float]:
    """A plain ffmpeg decode of the episode and LAME encode to CBR MP3, no levelling at all:
    wall and CPU seconds."""
    start, cpu = time.perf_counter(), _cpu()
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(mp3),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            str(mp3.with_name("baseline.mp3")),
        ],
        check=True,
        timeout=600,
    )
    return time.perf_counter() - start, _cpu() - cpu


def main() -> None:
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    print(f"cores: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")
    _rtf()

    minutes = float(os.environ.get("SHIPYARD_BENCH_AUDIO_MINUTES", "10"))
    show, settings = ShowConfig(), AudioConfig()
    script = _script(minutes, show)
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-audio-") as tmp:
        root = Path(tmp)
        store = ArtifactStore(root / "artifacts")
        start, cpu = time.perf_counter(), _cpu()
        result = synthesize(script, store, root / "cache", settings, show.pronunciations)
        synth_s, synth_cpu = time.perf_counter() - start, _cpu() - cpu
        start, cpu = time.perf_counter(), _cpu()
        episode = master(
            script,
            result.clips,
            store,
            show,
            settings,
            episode_title=script.title,
            description="Benchmark.",
            date=datetime.date(2026, 1, 1),
            cover=None,
        )
        master_s, master_cpu = time.perf_counter() - start, _cpu() - cpu
        start, cpu = time.perf_counter(), _cpu()
        again = synthesize(script, store, root / "cache", settings, show.pronunciations)
        cached_s, cached_cpu = time.perf_counter() - start, _cpu() - cpu
        assert not again.synthesized
        baseline_s, baseline_cpu = _baseline(
            store.export(episode.audio_sha256, root / "episode.mp3")
        )

    minutes = episode.seconds / 60
    print(
        f"\nepisode: {len(script.turns)} turns, {script.words} words, {episode.seconds:.0f} s, "
        f"{episode.loudness_lufs:.1f} LUFS, {episode.true_peak_dbtp:.1f} dBTP, "
        f"{episode.audio_bytes / 1e6:.1f} MB"
    )
    rows = [
        ("synthesis, cold cache", synth_s, synth_cpu),
        ("synthesis, warm cache", cached_s, cached_cpu),
        ("mastering", master_s, master_cpu),
        ("baseline: ffmpeg decode+encode", baseline_s, baseline_cpu),
        ("whole audio stage (cold)", synth_s + master_s, synth_cpu + master_cpu),
    ]
    print(f"{'':31} {'wall s':>7} {'CPU s':>7} {'wall s/min':>10} {'CPU s/min':>9}")
    for name, wall, cpu_s in rows:
        print(f"{name:31} {wall:7.1f} {cpu_s:7.1f} {wall / minutes:10.2f} {cpu_s / minutes:9.2f}")
    print(
        f"mastering / baseline: {master_s / baseline_s:.1f}x wall, "
        f"{master_cpu / baseline_cpu:.1f}x CPU"
    )
