"""Extraction: pages per second end to end on the corpus papers, beside the raw engine, and
how right the front matter is against person-written truth.

    .venv/bin/python -m benchmarks extract

"raw pdfium" opens each PDF and asks pdfium for every page's text, nothing more: the floor
any pdfium-based extractor pays. "shipyard" is `extract_paper` end to end (read, validate,
geometry, columns, cleanup, structure, language). The ratio is the cost of our cleanup.
PyMuPDF and poppler's pdftotext are timed too where installed, and every engine's raw text is
scored on what the voiced text needs: ligatures left, words split at line ends, and sentences
that cross a column or page break read whole (docs/extraction.md).

Front matter is scored per corpus folder against tests/truth.py: the share of papers whose
title and first author are right, and author-list precision, recall and F1 over all names.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium

from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.language import detect_language
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source.extract import extract_paper
from tests.test_source import CROSSING  # sentences that cross line, column and page breaks
from tests.truth import LANGUAGES, Score, f1, read_truth, score

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "papers"
ROUNDS = 7
LIGATURES = re.compile("[\ufb00-\ufb06]")
SPLIT = re.compile(r"[a-z][-\u00ad\ufffe]\s*\n\s*[a-z]")


def _pdfium_text(path: Path) -> list[str]:
    document = pdfium.PdfDocument(path)
    try:
        pages = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            pages.append(textpage.get_text_range().replace("\ufffe", "-\n"))
            textpage.close()
            page.close()
        return pages
    finally:
        document.close()


def _pymupdf_text(path: Path) -> list[str]:
    import pymupdf  # AGPL: measured here only, never a dependency

    with pymupdf.open(path) as document:
        return [page.get_text(sort=False) for page in document]


def _pdftotext_text(path: Path) -> list[str]:
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, timeout=60, check=True
    ).stdout.decode("utf-8", errors="replace")
    return out.split("\f")


def _shipyard_text(path: Path) -> list[str]:
    return [extract_paper(path, SourceConfig(max_pages=1000)).body]


def _engines() -> dict[str, Callable[[Path], list[str]]]:
    engines: dict[str, Callable[[Path], list[str]]] = {"raw pdfium": _pdfium_text}
    if importlib.util.find_spec("pymupdf") is not None:
        engines["raw PyMuPDF"] = _pymupdf_text
    if shutil.which("pdftotext"):
        engines["raw pdftotext"] = _pdftotext_text
    engines["shipyard"] = _shipyard_text
    return engines


def _pages_per_second(
    engines: dict[str, Callable[[Path], list[str]]], papers: list[Path], pages: int
) -> dict[str, tuple[float, float]]:
    """Pages per wall-clock second and per CPU second of this process, best of ROUNDS, the
    engines taking turns so that a busy machine slows them alike. CPU time moves less than
    wall time on a shared machine; pdftotext's CPU is spent in its own process, so it has
    none here."""
    wall = dict.fromkeys(engines, float("inf"))
    cpu = dict.fromkeys(engines, float("inf"))
    for _ in range(ROUNDS):
        for name, read in engines.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for paper in papers:
                read(paper)
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    return {name: (pages / wall[name], pages / max(cpu[name], 1e-9)) for name in engines}


def _squash(text: str) -> str:
    text = re.sub(r"(?<=[a-z])-\n(?=[a-z])", "", text)  # naive dehyphenation for all engines
    return re.sub(r"\s+", " ", text)


def _quality(read: Callable[[Path], list[str]], papers: list[Path]) -> tuple[int, int, str]:
    ligatures = splits = 0
    found = total = 0
    for paper in papers:
        text = "\n".join(read(paper))
        ligatures += len(LIGATURES.findall(text))
        splits += len(SPLIT.findall(text))
        flat = _squash(text)
        for sentence in CROSSING.get(paper.name, [])[:2]:
            total += 1
            found += sentence in flat
    return ligatures, splits, f"{found}/{total}"


def _front_matter() -> None:
    """Title, first-author and author-list accuracy per corpus folder, against the truth."""
    source = SourceConfig(languages=LANGUAGES, max_pages=1000)
    by_folder: dict[str, list[Score]] = {}
    refused: dict[str, int] = {}
    for truth in read_truth():
        try:
            paper = extract_paper(truth.path, source)
        except SourceRejected:
            refused[truth.folder] = refused.get(truth.folder, 0) + 1
            continue
        by_folder.setdefault(truth.folder, []).append(score(truth, paper.title, paper.authors))
    print(
        f"{'folder':<14}{'accepted':>10}{'title':>8}{'1st author':>12}"
        f"{'precision':>11}{'recall':>8}{'F1':>7}"
    )
    everything = []
    for folder, scores in [*by_folder.items(), ("all", None)]:
        scores = scores if scores is not None else everything
        if folder != "all":
            everything += scores
        total = len(scores) + (sum(refused.values()) if folder == "all" else refused.get(folder, 0))
        precision, recall, both = f1(scores)
        print(
            f"{folder:<14}{f'{len(scores)}/{total}':>10}"
            f"{sum(s.title_right for s in scores):>5}/{len(scores):<2}"
            f"{sum(s.first_author_right for s in scores):>9}/{len(scores):<2}"
            f"{precision:>11.3f}{recall:>8.3f}{both:>7.3f}"
        )


def main() -> None:
    papers = sorted(CORPUS.glob("*.pdf"))
    if not papers:
        print(f"corpus not found at {CORPUS}")
        return
    pages = sum(len(pdfium.PdfDocument(p)) for p in papers)
    detect_language("warm the language model up once, as a long-running worker would")
    print(f"{len(papers)} papers, {pages} pages, best of {ROUNDS} rounds, one process")
    print(
        f"{'engine':<16}{'pages/s':>9}{'pages/cpu-s':>13}{'ligatures':>11}"
        f"{'split words':>13}{'crossing sentences':>20}"
    )
    engines = _engines()
    speeds = _pages_per_second(engines, papers, pages)
    for name, read in engines.items():
        ligatures, splits, crossing = _quality(read, papers)
        per_wall, per_cpu = speeds[name]
        cpu_column = "-" if name == "raw pdftotext" else f"{per_cpu:.0f}"
        print(
            f"{name:<16}{per_wall:>9.0f}{cpu_column:>13}{ligatures:>11}{splits:>13}{crossing:>20}"
        )
    for label, column in (("wall", 0), ("CPU", 1)):
        ratio = speeds["raw pdfium"][column] / speeds["shipyard"][column]
        print(
            f"{label} time: shipyard end to end takes {ratio:.1f}x raw pdfium "
            f"(cleanup and structure cost {ratio - 1:.1f}x the engine's own work)"
        )
    _front_matter()
