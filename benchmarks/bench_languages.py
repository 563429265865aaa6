"""Episodes in each paper's language, over the whole corpus: is the language read right, is
every turn of the episode in it, and what writing it costs beside extracting the paper.

    .venv/bin/python -m benchmarks languages

Every corpus paper with a person-written language (tests/truth.py: `papers/` and
`papers-more/`), and the Korean file of `bad/`. "detected" is extraction's language; "episode"
what the default chain (the extractive writer, offline) wrote, "turns in it" how many of the
script's turns of 12 words or more the language identifier puts in the episode's language,
"errors" the error flags left. "extract" (the baseline) and "script" are one run each, in
seconds of this process's CPU.
"""

from __future__ import annotations

import time
from pathlib import Path

from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.language import identify_languages
from shipyard_podcast.script.chain import episode_settings, write_script
from shipyard_podcast.settings import PodcastSettings
from shipyard_podcast.source.extract import extract_paper
from tests.conftest import CORPUS
from tests.truth import read_truth


def main() -> None:
    settings = PodcastSettings()
    papers: list[tuple[Path, str]] = [(t.path, t.language) for t in read_truth()]
    papers.append((CORPUS / "bad" / "docling__normal_4pages.pdf", "ko"))
    print(
        "| paper | truth | detected | episode | turns in it | errors | extract | script |\n"
        "|---|---|---|---|---:|---:|---:|---:|"
    )
    right = in_language = turns = 0
    spent = {"extract": 0.0, "script": 0.0}
    for path, truth in papers:
        started = time.process_time()
        paper = extract_paper(path, settings.source)
        extracted = time.process_time() - started
        right += paper.language == truth
        started = time.process_time()
        try:
            episode_settings(paper, settings, path.name)
        except SourceRejected as refused:
            said = f"refused: {refused.message.split(', ')[-1]}"
            print(f"| {path.stem} | {truth} | {paper.language} | {said} | | | {extracted:.2f} | |")
            continue
        outcome = write_script(paper, settings)
        written = time.process_time() - started
        spent["extract"] += extracted
        spent["script"] += written
        script = outcome.script
        long_turns = [t.text for t in script.turns if len(t.text.split()) >= 12]
        found = identify_languages(long_turns)
        said = sum(language == script.language for language, _ in found)
        in_language += said
        turns += len(found)
        errors = sum(f.severity == "error" for f in outcome.flags)
        print(
            f"| {path.stem} | {truth} | {paper.language} | {script.language} "
            f"| {said}/{len(found)} | {errors} | {extracted:.2f} | {written:.2f} |"
        )
    print(
        f"| **all {len(papers)}** | | **{right}/{len(papers)} right** | | "
        f"**{in_language}/{turns}** | | **{spent['extract']:.1f}** | **{spent['script']:.1f}** |"
    )
