"""The demo's own paper: a real two-column PDF, the same bytes every time."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source.demo_paper import (
    ABSTRACT,
    AUTHORS,
    REFERENCES,
    SECTIONS,
    TITLE,
    VENUE,
    demo_paper_bytes,
    make_demo_paper,
)
from shipyard_podcast.source.extract import extract_paper


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_paper(tmp_path_factory.mktemp("demo") / "nested" / "paper.pdf")


@pytest.fixture(scope="module")
def page_texts(paper: Path) -> list[str]:
    document = pdfium.PdfDocument(paper)
    try:
        return [page.get_textpage().get_text_range() for page in document]
    finally:
        document.close()


def test_is_a_three_to_four_page_pdf(paper: Path, page_texts: list[str]) -> None:
    assert paper.read_bytes().startswith(b"%PDF-")
    assert 3 <= len(page_texts) <= 4


def test_text_layer_holds_title_abstract_and_every_section(page_texts: list[str]) -> None:
    first_page = _words(page_texts[0])
    assert TITLE in first_page
    assert "Abstract" in first_page
    sentence = "We argue that verifying the served result should be a first-class step"
    assert sentence in ABSTRACT
    assert sentence in first_page
    everything = _words(" ".join(page_texts))
    for heading, _ in SECTIONS:
        assert heading in everything
    assert "References" in everything
    assert "Table 1:" in everything


def test_the_body_is_long_enough_to_be_a_paper() -> None:
    body = [block for _, blocks in SECTIONS for block in blocks if isinstance(block, str)]
    assert 5 <= len(SECTIONS) <= 6
    assert 1400 <= sum(len(paragraph.split()) for paragraph in body) <= 1800


def test_running_header_after_the_first_page_and_page_numbers_in_the_footer(
    page_texts: list[str],
) -> None:
    for number, text in enumerate(page_texts, start=1):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        assert lines[-1] == str(number)
        has_header = lines[0] == f"Verified Publishing {VENUE}"
        assert has_header == (number > 1)


def test_body_pages_are_set_in_two_columns(paper: Path) -> None:
    layout = subprocess.run(
        ["pdftotext", "-layout", "-f", "2", "-l", "2", str(paper), "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    # A line of text, a gap of several spaces, then a second block of text.
    side_by_side = [
        match
        for line in layout.splitlines()
        if (match := re.match(r"^(\S.*?\S)( {4,})(\S.*)$", line))
    ]
    assert len(side_by_side) >= 30, layout
    right_column_starts = collections.Counter(match.start(3) for match in side_by_side)
    column, count = right_column_starts.most_common(1)[0]
    assert count >= 20, right_column_starts
    # The second column starts near the middle of the page, not at a table's number column.
    width = max(len(line) for line in layout.splitlines())
    assert 0.35 * width < column < 0.65 * width


def test_every_call_produces_the_same_bytes(paper: Path) -> None:
    assert demo_paper_bytes() == demo_paper_bytes() == paper.read_bytes()


def test_bytes_do_not_depend_on_the_process(paper: Path) -> None:
    program = (
        "import sys; from shipyard_podcast.source.demo_paper import demo_paper_bytes; "
        "sys.stdout.buffer.write(demo_paper_bytes())"
    )
    other = subprocess.run(
        [sys.executable, "-c", program],
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Auckland"},
    ).stdout
    assert other == paper.read_bytes()


def test_making_it_again_leaves_the_file_alone(paper: Path) -> None:
    before = paper.stat()
    assert make_demo_paper(paper) == paper
    after = paper.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in paper.parent.iterdir()] == ["paper.pdf"]


def test_a_changed_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "paper.pdf"
    target.write_bytes(b"not the paper")
    make_demo_paper(target)
    assert target.read_bytes() == demo_paper_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["paper.pdf"]


def test_the_source_stage_reads_it_as_a_paper(paper: Path, page_texts: list[str]) -> None:
    extracted = extract_paper(paper, SourceConfig())
    assert extracted.title == TITLE
    assert extracted.authors == [name for name, _ in AUTHORS]
    assert _words(extracted.abstract) == ABSTRACT
    assert len(extracted.references) == len(REFERENCES)
    assert extracted.captions and extracted.captions[0].startswith("Table 1:")
    assert extracted.stats.pages == len(page_texts)
    assert extracted.warnings == []
    assert VENUE not in extracted.body  # the running header is not voiced
    # Every numbered section, and nothing else: not the bold run-in paragraph headings, not
    # Table 1's bold header row.
    assert [s.heading for s in extracted.sections] == [
        heading.split(" ", 1)[1] for heading, _ in SECTIONS
    ]  # "1 Introduction" -> "Introduction"
    assert "Path mismatch" not in extracted.body  # Table 1's rows are not voiced
