"""Front matter against person-written truth: the title, the first author and every author of
each corpus paper (tests/truth.py), and the `credits` check that flags an unsure reading."""

from __future__ import annotations

import pytest

from shipyard_podcast.models import Credits, FrontMatter, Paper
from shipyard_podcast.release.publish import show_notes
from shipyard_podcast.review.gate import script_review
from shipyard_podcast.script.checks import check_script
from shipyard_podcast.script.extractive import write_extractive
from shipyard_podcast.settings import PodcastSettings, SourceConfig
from shipyard_podcast.source.extract import extract_paper
from tests.truth import LANGUAGES, Score, Truth, f1, read_truth, score

pytestmark = [pytest.mark.corpus, pytest.mark.usefixtures("corpus")]
TRUTH = read_truth()
SOURCE = SourceConfig(languages=LANGUAGES, max_pages=100)
SETTINGS = PodcastSettings()


@pytest.fixture(scope="module")
def scored() -> dict[str, tuple[Paper, Score]]:
    out = {}
    for truth in TRUTH:
        paper = extract_paper(truth.path, SOURCE)
        out[truth.file] = (paper, score(truth, paper.title, paper.authors))
    return out


def test_every_corpus_paper_has_truth() -> None:
    named = {t.file for t in TRUTH}
    for folder in ("papers", "papers-more"):
        folder_files = {p.name for p in (TRUTH[0].path.parents[1] / folder).glob("*.pdf")}
        assert folder_files <= named, f"papers in {folder} without truth"


@pytest.mark.parametrize("truth", TRUTH, ids=lambda t: t.file)
def test_title_first_author_and_no_stranger(
    scored: dict[str, tuple[Paper, Score]], truth: Truth
) -> None:
    paper, result = scored[truth.file]
    assert result.title_right, (paper.title, truth.title)
    assert result.first_author_right, (paper.authors[:1], truth.authors[:1])
    assert result.strangers == (), "listed as authors, but not in the truth"
    assert paper.language == truth.language


def test_author_lists_over_the_whole_corpus(scored: dict[str, tuple[Paper, Score]]) -> None:
    precision, recall, both = f1([s for _, s in scored.values()])
    assert both >= 0.95, f"precision {precision:.3f}, recall {recall:.3f}"


def test_every_reading_says_where_it_came_from(scored: dict[str, tuple[Paper, Score]]) -> None:
    for paper, _ in scored.values():
        assert paper.front.title_source and paper.front.authors_source
        assert len(paper.front.affiliations) == len(paper.authors)


def test_identifiers_where_printed(scored: dict[str, tuple[Paper, Score]]) -> None:
    dpr = scored["unstructured__multi-column-2p.pdf"][0].front
    assert (dpr.arxiv_id, dpr.year) == ("2004.04906", 2020)  # from the rotated arXiv stamp
    chem = scored["grobid__1060._fulltext3.pdf"][0].front
    assert chem.doi == "10.1002/zaac.200700576" and chem.year == 2008
    physics = scored["grobid__0807.3577.pdf"][0].front
    assert physics.affiliations[0][0].startswith("School of Physics, University of Melbourne")
    acm = scored["science-parse__c0690a1d74ab781bd54f9fa7e67267cce656.pdf"][0].front
    assert acm.affiliations[0] == [  # no markers: the block under the name
        "Department of Computer Science, University of Southern California, Los Angeles"
    ]
    assert "University of Maryland, College Park" in acm.affiliations[2][0]
    grid = scored["grobid__sample.pdf"][0].front  # 2 x 2, read across
    assert grid.affiliations[3] == [
        "ID-IMAG, 51 avenue Jean Kuntzmann, 38330 Montbonnot Saint-Martin, France"
    ]


def _credits(paper: Paper) -> list[str]:
    script = write_extractive(paper, SETTINGS)
    flags = [f for f in check_script(script, paper, SETTINGS) if f.check == "credits"]
    return [f"{f.severity}: {f.message}" for f in flags]


def test_sure_credits_raise_no_flag(scored: dict[str, tuple[Paper, Score]]) -> None:
    assert _credits(scored["grobid__1060._fulltext3.pdf"][0]) == []


def test_unsure_credits_are_flagged(scored: dict[str, tuple[Paper, Score]]) -> None:
    paper = scored["grobid__1060._fulltext3.pdf"][0]
    unsure = paper.model_copy(
        update={
            "front": FrontMatter(
                authors_source="layout: lines beside or above the title",
                authors_confidence=0.6,
                doubts=["not read as names: 'Spectroscopic Measurements'"],
            )
        }
    )
    (flag,) = _credits(unsure)
    assert flag.startswith("warning:") and "Spectroscopic Measurements" in flag
    nobody = paper.model_copy(
        update={
            "authors": [],
            "front": FrontMatter(authors_confidence=0.0, authors_source="nowhere"),
        }
    )
    assert any(f.startswith("error:") and "no author" in f for f in _credits(nobody))


def test_a_page_with_no_title_page_is_a_warning_not_an_error(
    scored: dict[str, tuple[Paper, Score]],
) -> None:
    flags = _credits(scored["docling__2305.03393v1-pg9.pdf"][0])
    assert flags and all(f.startswith("warning:") for f in flags), flags


def test_a_reviewers_correction_reaches_the_turns_and_clears_the_flag(
    scored: dict[str, tuple[Paper, Score]],
) -> None:
    paper = scored["grobid__File1.pdf"][0].model_copy(
        update={"front": FrontMatter(authors_confidence=0.6, authors_source="layout")}
    )
    script = write_extractive(paper, SETTINGS)
    assert _credits(paper) and any("Anne Focke" in t.text for t in script.turns)
    corrected = Credits(title=script.credits.title, authors=["Anne K. Focke", *paper.authors[1:]])
    edited = script.model_copy(update={"credits": corrected})
    assert script_review.amend is not None
    amended = script_review.amend(script, edited)
    said = " ".join(t.text for t in amended.turns)
    assert "Anne K. Focke" in said and "Anne Focke" not in said
    flags = check_script(amended, paper, SETTINGS)
    assert not [f for f in flags if f.check == "credits"]
    assert not [f for f in flags if f.severity == "error"], flags  # the new name is grounded
    assert "by Anne K. Focke, Christian Stockinger" in show_notes(amended, paper, "")


def test_a_script_without_credits_gives_the_papers(
    scored: dict[str, tuple[Paper, Score]],
) -> None:
    """Scripts written before credits were kept (waiting runs) credit what the paper says."""
    paper = scored["grobid__File1.pdf"][0]
    script = write_extractive(paper, SETTINGS).model_copy(update={"credits": Credits()})
    assert script.credits_for(paper) == Credits(title=paper.title, authors=paper.authors)
