"""What a listener hears of every corpus paper is whole: no heading run into the sentence after
it, no running header, no page number (the extractive script over both corpus folders)."""

from __future__ import annotations

import re
from dataclasses import replace

import pypdfium2 as pdfium
import pytest

from shipyard_podcast.script.extractive import write_extractive
from shipyard_podcast.settings import PodcastSettings, SourceConfig
from shipyard_podcast.source._pdftext import PageLines, read_page, strip_page_furniture
from shipyard_podcast.source._structure import Layout
from shipyard_podcast.source._textclean import clean_line
from shipyard_podcast.source.extract import extract_paper
from tests.truth import LANGUAGES, Truth, read_truth

pytestmark = [pytest.mark.corpus, pytest.mark.usefixtures("corpus")]
SETTINGS = PodcastSettings()


def _pages(truth: Truth) -> list[PageLines]:
    document = pdfium.PdfDocument(truth.path)
    try:
        pages = [read_page(document[i], i + 1) for i in range(len(document))]
    finally:
        document.close()
    return [
        replace(p, lines=[replace(ln, text=clean_line(ln.text)[0]) for ln in p.lines])
        for p in pages
    ]


def _set_apart(pages: list[PageLines], layout: Layout) -> list[str]:
    """Short lines in bold or larger type, without a closing stop, above a line of prose:
    headings and labels, each with the first word of the sentence under it."""
    found = []
    for page in pages:
        for line, below in zip(page.lines, page.lines[1:], strict=False):
            words = line.text.split()
            if (
                1 <= len(words) <= 6
                and (line.bold or line.size > layout.body_size + 0.8)
                and line.text[:1].isupper()
                and line.text[-1:].isalnum()
                and below.text[:1].isupper()
                and len(below.text.split()) >= 6
                and abs(below.size - layout.body_size) < 0.6
            ):
                found.append(f"{line.text} {below.text.split()[0]}")
    return found


@pytest.mark.parametrize("truth", read_truth(), ids=lambda t: t.file)
def test_the_script_voices_no_heading_run_in_header_or_page_number(truth: Truth) -> None:
    paper = extract_paper(truth.path, SourceConfig(languages=LANGUAGES, max_pages=100))
    pages = _pages(truth)
    layout = Layout(pages)
    _, furniture = strip_page_furniture(pages, layout.body_size)
    script = write_extractive(paper, SETTINGS.model_copy(update={"language": paper.language}))
    said = [re.sub(r"\s+", " ", turn.text) for turn in script.turns]
    for run_in in _set_apart(pages, layout):
        assert not any(run_in in text for text in said), (
            f"a heading run into a sentence: {run_in!r}"
        )
    spoken_anyway = {paper.title, *paper.authors}  # a running header may repeat the title
    headers = {h for h in furniture if len(h) >= 15 and sum(c.isalpha() for c in h) >= 10}
    for header in headers - spoken_anyway:
        assert not any(header in text for text in said), f"a running header voiced: {header!r}"
    kept = {
        (ln.page, ln.text)
        for page in strip_page_furniture(pages, layout.body_size)[0]
        for ln in page.lines
    }
    for page in pages:
        for line in page.lines:
            at_edge = line.middle < 0.08 * page.height or line.middle > 0.92 * page.height
            if at_edge and re.fullmatch(r"\d{1,4}", line.text.strip()):
                assert (page.number, line.text) not in kept, f"page {page.number}'s number kept"
