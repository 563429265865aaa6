"""Where a whole run's CPU goes: the flagship end to end on a corpus paper, 10-minute target,
cold caches, as a user runs it (`shipyard init --local-production`, `shipyard run ...
--auto-approve`), and the same run in one process with every stage's CPU taken apart.

    python -m benchmarks run
    SHIPYARD_BENCH_RUN_MINUTES=4 python -m benchmarks run

"the command" is `shipyard run` in a child process, measured as a user waits for it: wall
time from the command line to its exit, and the CPU of the command and of everything it ran
(the extraction child, Festival, espeak-ng, ffmpeg), from the OS's accounting of reaped
children; its memory twice: the largest single process (that accounting's figure) and the
most the command and all its processes held at once. "by stage" runs the same workflow in
this process and samples its CPU (its own threads, and its reaped children's) every 20 ms,
putting each slice on the step that ran then; what ran between steps (the workflow body, the
engine, start-up is outside) is "between steps". The baseline is the voices alone: the same
script's turns spoken by their engines, one at a time, in a fresh process, without
mastering, checks or the engine around them.
"""

from __future__ import annotations

import itertools
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from tests.processes import processes

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "papers"
PAPER = "grobid__0807.3577.pdf"
SHIPYARD = Path(sys.executable).with_name("shipyard")


def _cpu() -> tuple[float, float]:
    """CPU seconds so far: this process's, and its reaped children's."""
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def _project(folder: Path, minutes: float, port: int) -> Path:
    from shipyard import init_project

    init_project(folder, local_production=True, port=port, auto_approve=True)
    with (folder / "shipyard.toml").open("a") as f:
        f.write(f"\n[podcast.script]\ntarget_minutes = {minutes}\n")
    return folder / "shipyard.toml"


def _the_command(minutes: float) -> dict[str, float]:
    """`shipyard run` as a user waits for it, its children included."""
    from shipyard import LocalProduction, load_config, production_root

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-run-") as tmp:
        port = 18500 + os.getpid() % 400
        config_file = _project(Path(tmp), minutes, port)
        config = load_config(config_file)
        production = LocalProduction(production_root(config), branch=config.publish.branch)
        with production.serve(port=port):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            command = subprocess.Popen(
                [
                    str(SHIPYARD),
                    "run",
                    "paper-to-podcast",
                    str(CORPUS / PAPER),
                    "-c",
                    str(config_file),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            tree_peak = _TreePeak(command.pid)
            stdout, stderr = command.communicate()
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            tree_peak.stop()
        if command.returncode != 0:
            raise RuntimeError(f"the run did not verify:\n{stdout}\n{stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "peak_mb": after.ru_maxrss / 1024, "tree_mb": tree_peak.mb}


class _TreePeak(threading.Thread):
    """The most memory a process and its descendants held at once: their proportional set
    sizes (a shared page counted once, split among its sharers), summed ten times a second.
    The OS's accounting of reaped children gives only the largest single process."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.mb, self._ended = root, 0.0, threading.Event()
        self.start()

    def stop(self) -> None:
        self._ended.set()
        self.join()

    def run(self) -> None:
        while not self._ended.wait(0.1):
            self.mb = max(self.mb, sum(map(_pss_kb, self._tree())) / 1024)

    def _tree(self) -> list[int]:
        now = processes()
        tree = [self.root]
        for pid in tree:
            tree.extend(child for child, (_, parent) in now.items() if parent == pid)
        return tree


def _pss_kb(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0  # ended
    pss = (line for line in rollup.splitlines() if line.startswith("Pss:"))
    return int(next(pss, "Pss: 0").split()[1])


def _by_stage(minutes: float) -> tuple[dict[str, list[float]], float, float]:
    """The run in this process, its CPU sampled and put on the step that ran."""
    from shipyard import LocalProduction, launch, load_config, production_root, shutdown, start_run
    from shipyard.cli import follow

    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), *_cpu()))
            stop.wait(0.02)

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-run-") as tmp:
        port = 18900 + os.getpid() % 400
        config = load_config(_project(Path(tmp), minutes, port))
        production = LocalProduction(production_root(config), branch=config.publish.branch)
        with production.serve(port=port):
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started, cpu = time.perf_counter(), sum(_cpu())
            runtime = launch(config)
            try:
                record = follow(runtime.ledger, start_run("paper-to-podcast", CORPUS / PAPER))
                steps = runtime.ledger.get(record.run_id).steps
            finally:
                shutdown()
            wall, cpu = time.perf_counter() - started, sum(_cpu()) - cpu
            stop.set()
            sampler.join()
    if record.state.value != "verified":
        raise RuntimeError(f"the run ended {record.state.value}")
    stages: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # wall, own, children
    for step in steps:
        stages[step.step][0] += step.seconds or 0.0
    for (t0, own0, kids0), (t1, own1, kids1) in itertools.pairwise(samples):
        middle = (t0 + t1) / 2
        step = next(
            (s.step for s in steps if s.started_at <= middle <= (s.ended_at or t1)),
            "between steps",
        )
        stages[step][1] += own1 - own0
        stages[step][2] += kids1 - kids0
    return dict(stages), wall, cpu


def _voices_alone(minutes: float) -> dict[str, float]:
    """The baseline: the run's turns said by their voices, nothing else, in a fresh process."""
    code = (
        "import os, sys, time\n"
        "from benchmarks.bench_run import _script_turns\n"
        "from shipyard_podcast.audio.speakable import normalise_text\n"
        "from shipyard_podcast.audio.voices import load_voice, speak\n"
        "turns = _script_turns(float(sys.argv[1]))\n"
        "t = time.perf_counter()\n"
        "engines = {}\n"
        "for voice, text in turns:\n"
        "    engine = engines.setdefault(voice, load_voice(voice))\n"
        "    speak(engine, normalise_text(text))\n"
        "for engine in engines.values(): engine.close()\n"
        "print(time.perf_counter() - t)\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", code, str(minutes)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": float(done.stdout.strip().splitlines()[-1]), "cpu": cpu}


def _script_turns(minutes: float) -> list[tuple[str, str]]:
    """The turns the run speaks, with their voices: the default chain's script of the paper."""
    from shipyard_podcast.script.chain import write_script
    from shipyard_podcast.settings import PodcastSettings, ScriptConfig
    from shipyard_podcast.source.extract import extract_paper

    settings = PodcastSettings(script=ScriptConfig(target_minutes=minutes))
    script = write_script(extract_paper(CORPUS / PAPER, settings.source), settings).script
    voices = {h.name: h.voice for h in script.hosts}
    return [(voices[t.speaker], t.text) for t in script.turns]


def main() -> None:
    minutes = float(os.environ.get("SHIPYARD_BENCH_RUN_MINUTES", "10"))
    command = _the_command(minutes)
    stages, wall, cpu = _by_stage(minutes)
    voices = _voices_alone(minutes)
    print(f"{PAPER}, target {minutes:g} min, cold caches\n")
    print("| | wall s | CPU s | largest process MB | all processes at once MB |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| `shipyard run`, as a user waits | {command['wall']:.1f} | {command['cpu']:.1f} "
        f"| {command['peak_mb']:.0f} | {command['tree_mb']:.0f} |"
    )
    print(f"| the run in one process | {wall:.1f} | {cpu:.1f} | | |")
    print(f"| baseline: the voices alone | {voices['wall']:.1f} | {voices['cpu']:.1f} | | |")
    print(
        f"| ratio, the command to the voices | {command['wall'] / voices['wall']:.2f} "
        f"| {command['cpu'] / voices['cpu']:.2f} | | |"
    )
    print("\n| stage | wall s | CPU s, this process | CPU s, its children | share of CPU |")
    print("|---|---:|---:|---:|---:|")
    total = sum(own + kids for _, own, kids in stages.values()) or 1.0
    for name, (seconds, own, kids) in sorted(stages.items(), key=lambda s: -(s[1][1] + s[1][2])):
        print(f"| {name} | {seconds:.2f} | {own:.2f} | {kids:.2f} | {(own + kids) / total:.0%} |")
