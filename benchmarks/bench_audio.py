"""Audio stage, pinned to 2 cores: real-time factor per voice engine; synthesis at each stage
concurrency; mastering seconds per audio minute beside a plain ffmpeg decode + LAME encode of
the same audio; peak memory (the OS's accounting) of the whole audio stage in a fresh process
for 10-, 30- and 60-minute episodes; the whole pipeline (extract, write, review, synthesize,
master, publish, verify) for a 10-minute episode from a paper, wall and CPU.

    python -m benchmarks audio
    SHIPYARD_BENCH_AUDIO_MINUTES=2 python -m benchmarks audio    # shorter episodes throughout
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import mutagen.mp3
import pypdfium2

from shipyard import _engine
from shipyard._artifacts import ArtifactStore
from shipyard_podcast.audio.master import master
from shipyard_podcast.audio.speakable import normalise_text
from shipyard_podcast.audio.synthesize import synthesize
from shipyard_podcast.audio.voices import FestivalEngine, load_voice, speak
from shipyard_podcast.models import Host, Script, Turn
from shipyard_podcast.script.checks import WORDS_PER_MINUTE
from shipyard_podcast.settings import AudioConfig, ShowConfig

ENGINES = ["piper:en_US-joe-medium", "festival:cmu_us_slt_arctic_hts", "espeak:en-us+f3"]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "papers"
WORDS_PER_SECOND = WORDS_PER_MINUTE / 60


def _sentences() -> list[str]:
    """Plain sentences from the corpus papers (or the demo paper where there is no corpus)."""
    texts = []
    pdfs = sorted(CORPUS.glob("*.pdf")) if CORPUS.is_dir() else []
    if not pdfs:
        from shipyard_podcast.source.demo_paper import demo_paper_bytes

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
        engine.close()  # a session's CPU is counted when it ends: this one's before the clock
        start, cpu = time.perf_counter(), _cpu()
        audio_seconds = sum(speak(engine, normalise_text(paragraph)).seconds for _ in range(3))
        engine.close()
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


def _festival_sessions() -> None:
    """Festival's voice loaded once per session (the engine) against once per turn
    (text2wave, the baseline), the same 40 turns one after another; CPU includes the
    festival processes (the sessions are ended, and so counted, before the clock stops)."""
    sentences = _sentences()
    turns = [
        unicodedata.normalize("NFKD", " ".join(sentences[i : i + 2])).encode("ascii", "ignore")
        for i in range(0, 80, 2)
    ]
    text2wave = shutil.which("text2wave") or "text2wave"
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), _cpu()
        for text in turns:
            subprocess.run(
                [text2wave, "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", f"{tmp}/t.wav"],
                input=text,
                check=True,
            )
        base = time.perf_counter() - start, _cpu() - cpu
    engine = FestivalEngine("cmu_us_slt_arctic_hts")
    start, cpu = time.perf_counter(), _cpu()
    for text in turns:
        engine.synthesize(text.decode())
    engine.close()
    now = time.perf_counter() - start, _cpu() - cpu
    print(f"\nFestival, {len(turns)} turns one after another")
    print(f"{'':26} {'wall s':>7} {'CPU s':>7}")
    print(f"{'text2wave per turn':26} {base[0]:7.2f} {base[1]:7.2f}")
    print(f"{'one session (the engine)':26} {now[0]:7.2f} {now[1]:7.2f}")
    print(f"{'ratio':26} {now[0] / base[0]:7.2f} {now[1] / base[1]:7.2f}")


def _stage(minutes: float) -> dict[str, float]:
    """The audio stage (cold synthesis, then mastering) of a `minutes` episode, in this process:
    times, and the episode's measurements."""
    show, settings = ShowConfig(), AudioConfig()
    script = _script(minutes, show)
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-audio-") as tmp:
        root = Path(tmp)
        store = ArtifactStore(root / "artifacts")
        start, cpu = time.perf_counter(), _cpu()
        result = synthesize(script, store, root / "cache", settings, show.pronunciations)
        synth_s, synth_cpu = time.perf_counter() - start, _cpu() - cpu
        synthesis_peak = _status_mb("VmHWM")
        resident = _reset_peak()
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
        master_peak = _status_mb("VmHWM")
        baseline_s, baseline_cpu = _baseline(
            store.export(episode.audio_sha256, root / "episode.mp3")
        )
    return {
        "turns": len(script.turns),
        "words": script.words,
        "seconds": episode.seconds,
        "lufs": episode.loudness_lufs,
        "dbtp": episode.true_peak_dbtp,
        "mb": episode.audio_bytes / 1e6,
        "synth_s": synth_s,
        "synth_cpu": synth_cpu,
        "master_s": master_s,
        "master_cpu": master_cpu,
        "master_grew_mb": master_peak - resident,
        "peak_mb": max(synthesis_peak, master_peak),
        "baseline_s": baseline_s,
        "baseline_cpu": baseline_cpu,
    }


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MB. Not
    getrusage: a child's peak there starts at its parent's size when it was forked."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> float:
    """Start this process's peak resident memory (VmHWM) again from now; the resident MB now."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def _in_a_child(what: str, *args: str) -> dict[str, float]:
    """Run `what` in a fresh process (so its peak memory is its own) and read its report."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_audio", what, *args],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{what} {args} failed: {out.stderr[-2000:]}")
    report: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return report


def _concurrency() -> None:
    show = ShowConfig()
    script = _script(3, show)
    print(f"\nsynthesis of {script.words} words by stage concurrency (podcast.audio.concurrency)")
    print(f"{'concurrency':>11} {'wall s':>7} {'CPU s':>7} {'cores busy':>10}")
    warm = script.model_copy(update={"turns": script.turns[:2]})
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-audio-") as tmp:
        synthesize(warm, ArtifactStore(Path(tmp)), Path(tmp) / "c", AudioConfig(), {})
    for concurrency in (1, 2, 3, 4):
        with tempfile.TemporaryDirectory(prefix="shipyard-bench-audio-") as tmp:
            start, cpu = time.perf_counter(), _cpu()
            settings = AudioConfig(concurrency=concurrency)
            synthesize(script, ArtifactStore(Path(tmp)), Path(tmp) / "c", settings, {})
            wall, cpu = time.perf_counter() - start, _cpu() - cpu
        print(f"{concurrency:11} {wall:7.1f} {cpu:7.1f} {cpu / wall:10.2f}")


PIPELINE_PAPER = "grobid__0807.3577.pdf"


def _pipeline(minutes: float) -> dict[str, float]:
    """The flagship end to end, as `shipyard demo` runs it (local production, auto-approve),
    on a corpus paper with a `minutes` target."""
    from shipyard import (
        LocalProduction,
        init_project,
        launch,
        load_config,
        production_root,
        shutdown,
        start_run,
    )
    from shipyard.cli import follow

    pdf = CORPUS / PIPELINE_PAPER
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-pipeline-") as tmp:
        folder = Path(tmp)
        port = 18000 + os.getpid() % 1000
        init_project(folder, local_production=True, port=port, auto_approve=True)
        with (folder / "shipyard.toml").open("a") as f:
            f.write(f"\n[podcast.script]\ntarget_minutes = {minutes}\n")
        config = load_config(folder / "shipyard.toml")
        production = LocalProduction(production_root(config), branch=config.publish.branch)
        with production.serve(port=port):
            start, cpu = time.perf_counter(), _cpu()
            runtime = launch(config)
            try:
                record = follow(runtime.ledger, start_run("paper-to-podcast", pdf))
            finally:
                shutdown()
            wall, cpu = time.perf_counter() - start, _cpu() - cpu
        if record.state.value != "verified":
            raise RuntimeError(f"the run ended {record.state.value}: {record.result}")
        audio = ArtifactStore(config.state_folder("artifacts")).path(record.result["audio_sha256"])
        seconds = float(mutagen.mp3.MP3(audio).info.length)
    document = pypdfium2.PdfDocument(pdf)
    pages = len(document)
    document.close()
    return {
        "state": record.state.value,
        "pages": pages,
        "seconds": seconds,
        "wall": wall,
        "cpu": cpu,
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] in ("stage", "pipeline"):  # a child's part
        if sys.argv[3:] == ["untuned"]:  # the C library's malloc as it comes: the baseline
            _engine.tune_allocator = lambda: None
        _engine.tune_allocator()  # as `shipyard run` and `shipyard worker` set their process
        report = (
            _stage(float(sys.argv[2])) if sys.argv[1] == "stage" else _pipeline(float(sys.argv[2]))
        )
        print(json.dumps({"peak_mb": _status_mb("VmHWM"), **report}))
        return
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    print(f"cores: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")
    _rtf()
    _festival_sessions()
    _concurrency()

    scale = float(os.environ.get("SHIPYARD_BENCH_AUDIO_MINUTES", "10")) / 10
    runs = {minutes: _in_a_child("stage", str(minutes * scale)) for minutes in (10, 30, 60)}
    ten = runs[10]
    print(
        f"\n10-minute episode: {ten['turns']:.0f} turns, {ten['words']:.0f} words, "
        f"{ten['seconds']:.0f} s, {ten['lufs']:.1f} LUFS, {ten['dbtp']:.1f} dBTP, "
        f"{ten['mb']:.1f} MB"
    )
    minutes = ten["seconds"] / 60
    rows = [
        ("synthesis, cold cache", ten["synth_s"], ten["synth_cpu"]),
        ("mastering", ten["master_s"], ten["master_cpu"]),
        ("baseline: ffmpeg decode+encode", ten["baseline_s"], ten["baseline_cpu"]),
        (
            "whole audio stage (cold)",
            ten["synth_s"] + ten["master_s"],
            ten["synth_cpu"] + ten["master_cpu"],
        ),
    ]
    print(f"{'':31} {'wall s':>7} {'CPU s':>7} {'wall s/min':>10} {'CPU s/min':>9}")
    for name, wall, cpu_s in rows:
        print(f"{name:31} {wall:7.1f} {cpu_s:7.1f} {wall / minutes:10.2f} {cpu_s / minutes:9.2f}")
    print(
        f"mastering / baseline: {ten['master_s'] / ten['baseline_s']:.2f}x wall, "
        f"{ten['master_cpu'] / ten['baseline_cpu']:.2f}x CPU"
    )

    print("\npeak resident memory (MB) of the audio stage, each in a fresh process; mastering: its")
    print("own peak over what was resident when it began (Piper and the libraries stay resident)")
    print(f"{'episode':>9} {'MP3 MB':>7} {'mastering s':>11} {'stage peak':>10} {'mastering':>9}")
    for run in runs.values():
        print(
            f"{run['seconds'] / 60:7.1f} m {run['mb']:7.1f} {run['master_s']:11.1f} "
            f"{run['peak_mb']:10.0f} {run['master_grew_mb']:+9.0f}"
        )

    # The corpus paper makes about 9 minutes whatever the target: the 30- and 60-minute
    # runs are the stage's, above.
    whole = _in_a_child("pipeline", str(10 * scale))
    untuned = _in_a_child("pipeline", str(10 * scale), "untuned")
    print(
        f"\nwhole pipeline, {PIPELINE_PAPER} ({whole['pages']:.0f} pages) to a verified "
        f"{whole['seconds'] / 60:.1f}-minute episode: {whole['state']}, "
        f"{whole['wall']:.1f} s wall, {whole['cpu']:.1f} s CPU, peak {whole['peak_mb']:.0f} MB "
        f"({whole['wall'] / ten['baseline_s']:.1f}x the plain transcode of a 10-minute "
        f"episode); with malloc as it comes (no tune_allocator): {untuned['cpu']:.1f} s CPU, "
        f"peak {untuned['peak_mb']:.0f} MB ({whole['peak_mb'] / untuned['peak_mb']:.2f}x)"
    )


if __name__ == "__main__":
    main()
