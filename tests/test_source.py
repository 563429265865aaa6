"""The extract-and-validate stage on the real corpus, and on bad input made here."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from typer.testing import CliRunner

from shipyard._errors import PermanentError, StepTimeout
from shipyard.cli import _register, app
from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.models import Paper
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source._textclean import HyphenJoiner, clean_line, is_symbol_soup
from shipyard_podcast.source.extract import extract_paper, extract_paper_isolated, sniff_format
from tests.conftest import corpus_files

pytestmark = pytest.mark.corpus
needs_corpus = pytest.mark.usefixtures("corpus")  # skips where ../shared/corpus is absent
DEFAULTS = SourceConfig()
PAPERS = {p.name: p for p in corpus_files("papers")}
BAD = {p.name: p for p in corpus_files("bad")}

# file -> (title, how the abstract begins, has references); None: the paper has no such part
EXPECTED = {
    "docling__2305.03393v1-pg9.pdf": (None, None, False),
    "grobid__0807.3577.pdf": (
        "Apparent and average accelerations of the Universe",
        "In this paper we consider the relation between the volume deceleration parameter",
        True,
    ),
    "grobid__1001._0908.0054.pdf": (
        "Ultra light bosonic dark matter and CMB",
        "In this work we report the cosmological effects that a species of Ultra Light",
        True,
    ),
    "grobid__Wang-paperAVE2008.pdf": (
        "Information Synthesis for Answer Validation",
        "This report is about our participation in the Answer Validation Exercise",
        True,
    ),
    "grobid__gadr.pdf": (
        "Generalized Markdown Architectural Decision Records: Capturing the Essence of Decisions",
        "Documenting design decisions in a project fosters understanding while",
        True,
    ),
    "grobid__sample.pdf": (
        "Bi-criteria Algorithm for Scheduling Jobs on Cluster Platforms",
        "We describe in this paper a new method for building an efficient algorithm",
        True,
    ),
    "grobid__submission_161.pdf": (
        "MAGNETO-PHOTOLUMINESCENCE AS A PROBE OF PHASES IN QUANTUM HALL MULTI-LAYERS",
        "A variety of quantum phases due to the strong interlayer electronic correlations",
        True,
    ),
    "grobid__test_Grobid_1_05452615.pdf": (
        "A New Requirement Prioritization Model for Market Driven Products Using Analytical "
        "Hierarchical Process",
        "As compared to bespoke software development, in market driven",
        True,
    ),
    "unstructured__layout-parser-paper-fast.pdf": (
        "LayoutParser: A Unified Toolkit for Deep Learning Based Document Image Analysis",
        "Recent advances in document image analysis (DIA) have been primarily driven",
        False,
    ),
    "unstructured__multi-column-2p.pdf": (
        "Dense Passage Retrieval for Open-Domain Question Answering",
        "Open-domain question answering relies on efficient passage retrieval",
        False,
    ),
}

# Sentences that cross a line break with hyphenation, a column break or a page break in
# two-column papers: they read whole only when the columns are read one after the other.
CROSSING = {
    "unstructured__multi-column-2p.pdf": [
        # page 1 right column -> page 2 left column
        "setting new state-of-the-art results on multiple open-domain QA datasets, it also "
        "suffers from two weaknesses.",
        # page 2 left column -> right column, with "pas-sages" split across lines
        "More specifically, we assume the extractive QA setting, in which the answer is "
        "restricted to a span appearing in one or more passages in the corpus.",
        # abstract, "ef-ficient" and "us-ing" split across lines
        "Open-domain question answering relies on efficient passage retrieval to select "
        "candidate contexts",
        "retrieval can be practically implemented using dense representations alone",
    ],
    "grobid__1001._0908.0054.pdf": [
        # the full-width abstract's last line is short enough to look like a column line
        "It is also noted the mass-to-temperature ratio necessary for being still a Dark "
        "Matter candidate. And it is needed a non-zero optical depth of Reionization.",
        # page 2 left column -> right column, past a figure and its caption
        "Once the species is decoupled from the rest of matter, its phase-space distribution "
        "function is “freezed-out”",
        # page 4: the reference list starts at the foot of the left column, the conclusions
        # go on at the top of the right one
        "To get in concordance between the model and the observations, it is needed at least "
        "a value of τ & 0.07.",
        # "in-teraction" split across lines in the right column of page 1
        "neutrinos just free-stream due to the negligible interaction with the rest of the matter.",
    ],
    "grobid__sample.pdf": [
        "The last few years have been characterized by huge technological changes in the area "
        "of parallel and distributed computing.",
    ],
    "grobid__test_Grobid_1_05452615.pdf": [
        "Due to the emergence of markets for off-the-shelf or packaged software [1], "
        "market-driven software development is gaining increased significance",
    ],
}
LIGATURES = re.compile("[\ufb00-\ufb06\u0132\u0133\u01c7-\u01cc]")
# a letter pair split by a hyphen and a space, other than "first- and second-order"
LEFT_SPLIT = re.compile(r"[a-z]{2}- (?!(?:and|or|to|as|nor)\b)[a-z]")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def papers(corpus: Path) -> dict[str, Paper]:
    return {name: extract_paper(path, DEFAULTS) for name, path in PAPERS.items()}


def _raw_running_lines(pdf: Path) -> list[str]:
    """Lines the raw engine repeats on a quarter of the pages (at least two), among the first
    or last lines it gives for a page (where running headers and footers come out)."""
    document = pdfium.PdfDocument(pdf)
    pages = len(document)
    seen: Counter[str] = Counter()
    at_edge: Counter[str] = Counter()
    originals: dict[str, str] = {}
    for index in range(pages):
        lines = [
            ln.strip()
            for ln in document[index].get_textpage().get_text_range().splitlines()
            if ln.strip()
        ]
        shapes = {}
        for position, line in enumerate(lines):
            if len(line) >= 15 and sum(ch.isalpha() for ch in line) >= 10:
                shape = re.sub(r"\d+", "#", line)
                shapes[shape] = line
                if position < 4 or position >= len(lines) - 4:
                    at_edge[shape] += 1
        seen.update(shapes.keys())
        originals.update(shapes)
    document.close()
    floor = max(2, math.ceil(pages / 4))
    return [
        originals[shape] for shape, count in seen.items() if count >= floor and at_edge[shape] >= 2
    ]


@needs_corpus
def test_every_paper_in_the_corpus_is_covered() -> None:
    assert set(PAPERS) == set(EXPECTED), "a corpus paper has no expectations here"


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_title_and_abstract(papers: dict[str, Paper], name: str) -> None:
    title, abstract, _ = EXPECTED[name]
    paper = papers[name]
    if title is not None:
        assert paper.title == title
        assert not any("no title" in w for w in paper.warnings)
    else:
        assert paper.title, "a paper always gets a title, from wherever it can be found"
        assert any("no title" in w for w in paper.warnings)
    if abstract is not None:
        assert _squash(paper.abstract).startswith(abstract)
        assert len(paper.abstract.split()) >= 40
    else:
        assert paper.abstract == ""
    assert paper.sections or name == "grobid__submission_161.pdf"
    assert paper.language == "en"
    assert paper.stats.words == len(paper.body.split())


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_running_header_footer_or_page_number(papers: dict[str, Paper], name: str) -> None:
    body = _squash(papers[name].body)
    for line in _raw_running_lines(PAPERS[name]):
        assert _squash(line) not in body, f"running line left in: {line!r}"
    assert not re.search(r"(?m)^\s*\d{1,3}\s*$", papers[name].body), "a bare page number"


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_ligatures_or_split_words(papers: dict[str, Paper], name: str) -> None:
    paper = papers[name]
    everything = "\n".join([paper.title, paper.body, *paper.captions, *paper.references])
    assert not LIGATURES.search(everything)
    assert "\ufffe" not in everything and "\u00ad" not in everything
    assert "(cid:" not in everything and "\ufffd" not in everything
    assert not LEFT_SPLIT.findall(paper.body)


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_references_are_kept_apart(papers: dict[str, Paper], name: str) -> None:
    paper = papers[name]
    _, _, has_references = EXPECTED[name]
    assert bool(paper.references) == has_references
    body = _squash(paper.body)
    for entry in paper.references:
        middle = _squash(entry)[len(entry) // 3 :][:45]
        if len(middle) >= 30:
            assert middle not in body, f"reference text voiced: {middle!r}"
    assert not re.search(r"(?im)^(references|bibliography)$", paper.body)


@needs_corpus
@pytest.mark.parametrize("name", sorted(CROSSING))
def test_two_columns_read_column_by_column(papers: dict[str, Paper], name: str) -> None:
    body = _squash(papers[name].body)
    for sentence in CROSSING[name]:
        assert sentence in body


def test_references_split_into_entries(papers: dict[str, Paper]) -> None:
    references = papers["grobid__1001._0908.0054.pdf"].references
    assert [r.split("]")[0] + "]" for r in references] == [f"[{n}]" for n in range(1, 20)]
    assert references[13].startswith("[14] Lesgourgues J. and Pastor S. Physics Reports 429")
    wang = papers["grobid__Wang-paperAVE2008.pdf"].references
    assert len(wang) == 12 and wang[0].startswith("1. Bar-Haim, R., Dagan, I.")


def test_accents_typeset_by_tex_are_composed(papers: dict[str, Paper]) -> None:
    assert "Pierre-François Dutot" in papers["grobid__sample.pdf"].authors
    assert "Grégory Mounié" in papers["grobid__sample.pdf"].authors
    assert "Lemaître–Tolman" in papers["grobid__0807.3577.pdf"].body


def test_genuine_hyphens_survive_a_line_break(papers: dict[str, Paper]) -> None:
    # "Market-driven" breaks after its hyphen in the keywords; the word is hyphenated elsewhere
    body = papers["grobid__test_Grobid_1_05452615.pdf"].body
    assert "market-driven" in body.lower() and "marketdriven" not in body.lower()
    # "Bose-Einstein" keeps its hyphen: the second half is capitalised
    assert "Bose-Einstein" in papers["grobid__1001._0908.0054.pdf"].body


def test_sections_carry_page_spans(papers: dict[str, Paper]) -> None:
    paper = papers["grobid__0807.3577.pdf"]
    headings = [s.heading for s in paper.sections]
    assert headings[:2] == ["Introduction", "The Buchert scheme"]
    assert "Conclusions" in headings
    assert all(1 <= s.first_page <= s.last_page <= paper.stats.pages for s in paper.sections)
    assert any("appendix and other text after the references cut" in w for w in paper.warnings)
    assert "Model specification" not in " ".join(headings), "the appendix is not voiced"


def test_captions_are_kept_out_of_the_voiced_text(papers: dict[str, Paper]) -> None:
    paper = papers["grobid__sample.pdf"]
    assert "Figure 1: Job submission in clusters." in paper.captions
    assert "Figure 1: Job submission in clusters." not in paper.body


def test_headings_captions_and_short_sentence_ends(papers: dict[str, Paper]) -> None:
    ieee = papers["grobid__test_Grobid_1_05452615.pdf"]
    headings = [s.heading for s in ieee.sections]
    # a heading set over two lines is one heading
    assert "MDRPM (MARKET DRIVEN REQUIREMENT PRIORITIZATION MODEL)" in headings
    # a bold numbered list item that runs on in lowercase is not a heading
    assert not any(h.startswith("No Requirements dependencies") for h in headings)
    # "Figure 1 Steps ..." is a caption, not a heading
    assert "Figure 1 Steps involved in making of MDRPM" in ieee.captions
    assert not any(h.startswith("Figure") for h in headings)
    dpr = _squash(papers["unstructured__multi-column-2p.pdf"].body)
    assert "(e.g., Shrivastava and Li (2014); Guo et al. (2016))." in dpr
    assert "a d-dimensional real-valued" in dpr  # one-letter first halves keep the hyphen


@needs_corpus
def test_extraction_is_repeatable() -> None:
    path = PAPERS["grobid__gadr.pdf"]
    assert extract_paper(path, DEFAULTS) == extract_paper(path, DEFAULTS)


def test_extraction_from_several_threads_at_once(papers: dict[str, Paper]) -> None:
    names = sorted(PAPERS)[:5] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: extract_paper(PAPERS[n], DEFAULTS), names))
    assert results == [papers[n] for n in names]


@needs_corpus
def test_isolated_extraction_gives_the_same_paper_and_the_same_refusals() -> None:
    path = PAPERS["grobid__gadr.pdf"]
    assert extract_paper_isolated(path, DEFAULTS) == extract_paper(path, DEFAULTS)
    with pytest.raises(SourceRejected) as caught:
        extract_paper_isolated(BAD["not-a-pdf.pdf"], DEFAULTS, name="download.pdf")
    assert caught.value.code == "not-pdf"
    assert caught.value.message.startswith("download.pdf is not a PDF")


@needs_corpus
def test_isolated_extraction_runs_nothing_of_the_callers_script(tmp_path: Path) -> None:
    """A script that calls it with no `__main__` guard runs once: the child imports
    extraction, not the script that started it."""
    ran = tmp_path / "ran"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import pathlib\n"
        f"with pathlib.Path({str(ran)!r}).open('a') as f:\n"
        "    f.write('ran\\n')\n"
        "from shipyard_podcast.settings import SourceConfig\n"
        "from shipyard_podcast.source.extract import extract_paper_isolated\n"
        f"paper = extract_paper_isolated(pathlib.Path({str(PAPERS['grobid__gadr.pdf'])!r}),"
        " SourceConfig())\n"
        "print(paper.title)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == extract_paper(PAPERS["grobid__gadr.pdf"], DEFAULTS).title
    assert ran.read_text() == "ran\n"


@needs_corpus
def test_isolated_extraction_stops_a_child_that_runs_too_long() -> None:
    # no child process starts, imports pdfium and reads a paper in a millisecond
    with pytest.raises(StepTimeout):
        extract_paper_isolated(
            PAPERS["grobid__0807.3577.pdf"], DEFAULTS.model_copy(update={"timeout_seconds": 0.001})
        )


# --- character repairs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Pierre-Franc¸ois", "Pierre-François"),
        ("Departamento de F´ısica, M ´ exico", "Departamento de Física, México"),
        ("Lemaˆıtre–Tolman, M¨uhlenberg", "Lemaître–Tolman, Mühlenberg"),
        ("ef\ufb01cient \ufb02ow of o\ufb03ces", "efficient flow of offices"),
        ("text (cid:12)(cid:7) with \ufffd garbage \ue000", "text with garbage"),
    ],
)
def test_clean_line(raw: str, clean: str) -> None:
    assert clean_line(raw)[0] == clean


@pytest.mark.parametrize(
    ("line", "soup"),
    [
        ("ds2 = c2dt", True),
        ("σαβ = 1", True),
        ("0.2 0.4 0.6 0.8", True),
        ("TB", True),
        ("HTML 0.969 0.927 0.955 0.857 5.39", True),
        ("Guo et al. (2016)).", False),
        ("of the platform.", False),
        ("where the tensor and vector degrees of freedom are eliminated", False),
    ],
)
def test_symbol_soup(line: str, soup: bool) -> None:
    assert is_symbol_soup(line) is soup


@pytest.mark.parametrize(
    ("left", "right", "joined"),
    [
        ("imple\ufffe", "mented using", "implemented using"),  # no evidence: joined
        ("Market\ufffe", "driven", "Market-driven"),  # "market-driven" occurs mid-line
        ("Bose-", "Einstein statistics", "Bose-Einstein statistics"),  # capital: a compound
        ("a d\ufffe", "dimensional space", "a d-dimensional space"),  # one letter: a compound
        ("non\ufffe", "relativistic", "non-relativistic"),  # a usual compound prefix
        ("COVID-", "19 cases", "COVID-19 cases"),  # a number: kept
    ],
)
def test_hyphen_joiner(left: str, right: str, joined: str) -> None:
    joiner = HyphenJoiner(["the market-driven model", "implemented elsewhere"])
    assert joiner.join(left, right) == joined


# --- the bad corpus -----------------------------------------------------------------------

# file -> (code, words the message must contain, words the hint must contain)
REFUSALS = {
    "unstructured__password.pdf": ("encrypted", ["password-protected"], ["password"]),
    "docling__ocr_test.pdf": ("no-text", ["no extractable text"], ["OCR"]),
    "empty.pdf": ("empty", ["empty"], ["again"]),
    "truncated.pdf": ("damaged", ["damaged or incomplete"], ["again"]),
    "not-a-pdf.pdf": ("not-pdf", ["not a PDF", "HTML"], ["PDF itself"]),
    "unstructured__pdf2image-memory-error-test-400p.pdf": (
        "too-long",
        ["400 pages", "limit of 60"],
        ["source.max_pages", "shipyard.toml"],
    ),
    "unstructured__failure-after-repair.pdf": ("too-long", ["76 pages"], ["source.max_pages"]),
}
# Extracted, then refused by the flow where no writer or voice makes its language's episode
# (tests/test_languages.py).
REFUSED_BY_LANGUAGE = {"docling__normal_4pages.pdf"}


@needs_corpus
def test_every_bad_file_in_the_corpus_is_covered() -> None:
    assert set(BAD) == set(REFUSALS) | REFUSED_BY_LANGUAGE


@needs_corpus
@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_bad_input_is_refused_with_a_specific_message(name: str) -> None:
    code, message_words, hint_words = REFUSALS[name]
    with pytest.raises(SourceRejected) as caught:
        extract_paper(BAD[name], DEFAULTS)
    error = caught.value
    assert error.code == code
    assert isinstance(error, PermanentError), "never retried"
    for word in message_words:
        assert word in error.message
    assert error.hint is not None
    for word in hint_words:
        assert word in error.hint


@needs_corpus
def test_a_brochure_is_not_a_paper_once_it_is_short_enough() -> None:
    brochure = BAD["unstructured__failure-after-repair.pdf"]
    settings = SourceConfig(max_pages=100)
    with pytest.raises(SourceRejected) as caught:
        extract_paper(brochure, settings)
    assert caught.value.code == "not-a-paper"
    assert "does not look like a research paper" in caught.value.message
    assert caught.value.hint and "source.not_a_paper" in caught.value.hint

    flagged = extract_paper(brochure, SourceConfig(max_pages=100, not_a_paper="flag"))
    assert any("does not look like a research paper" in w for w in flagged.warnings)


@needs_corpus
def test_a_language_can_be_allowed_by_setting() -> None:
    korean = extract_paper(
        BAD["docling__normal_4pages.pdf"], SourceConfig(languages=["en", "ko"], not_a_paper="flag")
    )
    assert korean.language == "ko"


@needs_corpus
def test_english_is_refused_by_name_where_only_german_is_supported() -> None:
    with pytest.raises(SourceRejected) as caught:
        extract_paper(PAPERS["grobid__gadr.pdf"], SourceConfig(languages=["de"]))
    assert caught.value.code == "language"
    assert "English (en)" in caught.value.message and "German (de)" in caught.value.message


# --- bad input made here ------------------------------------------------------------------


def _pdf_with_text(lines: list[str], *, encrypt: str | None = None) -> bytes:
    out = BytesIO()
    page = canvas.Canvas(out, pagesize=A4, encrypt=encrypt)
    y = 800.0
    for line in lines:
        page.drawString(60, y, line)
        y -= 14
    page.showPage()
    page.save()
    return out.getvalue()


def _refusal(tmp_path: Path, data: bytes, **settings: object) -> SourceRejected:
    path = tmp_path / "input.pdf"
    path.write_bytes(data)
    with pytest.raises(SourceRejected) as caught:
        extract_paper(path, SourceConfig.model_validate(settings))
    return caught.value


def test_a_pdf_with_no_pages(tmp_path: Path) -> None:
    out = BytesIO()
    pdfium.PdfDocument.new().save(out)
    error = _refusal(tmp_path, out.getvalue())
    assert error.code == "empty" and "no pages" in error.message


def test_text_that_is_all_cid_garbage(tmp_path: Path) -> None:
    garbage = ["".join(f"(cid:{n})" for n in range(i, i + 12)) for i in range(40)]
    error = _refusal(tmp_path, _pdf_with_text(garbage))
    assert error.code == "no-text" and "garbage" in error.message
    assert error.hint and "OCR" in error.hint


def test_text_that_is_all_private_use_glyphs(tmp_path: Path) -> None:
    # a font whose character map sends every code to the private-use area: what a PDF
    # with ligature and symbol glyphs but no usable Unicode mapping extracts to
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap "
        b"/CMapName /Garbage def 1 begincodespacerange <00> <FF> endcodespacerange "
        b"1 beginbfrange <20> <7E> <E000> endbfrange endcmap CMapName currentdict "
        b"/CMap defineresource pop end end"
    )
    text = (
        b"BT /F1 11 Tf 60 780 Td "
        + b" ".join(b"(Lorem ipsum dolor sit amet consectetur) Tj 0 -14 Td" for _ in range(30))
        + b" ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap),
    ]
    body = BytesIO()
    body.write(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(body.tell())
        body.write(b"%d 0 obj\n%s\nendobj\n" % (number, obj))
    xref = body.tell()
    body.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        body.write(b"%010d 00000 n \n" % offset)
    body.write(
        b"trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    error = _refusal(tmp_path, body.getvalue())
    assert error.code == "no-text"


def test_a_password_opens_a_protected_pdf(tmp_path: Path) -> None:
    path = tmp_path / "protected.pdf"
    path.write_bytes(_pdf_with_text(["Abstract. A short protected note."] * 30, encrypt="s3cret"))
    with pytest.raises(SourceRejected) as caught:
        extract_paper(path, DEFAULTS)
    assert caught.value.code == "encrypted"
    with pytest.raises(SourceRejected) as caught:
        extract_paper(path, DEFAULTS, password="wrong")
    assert caught.value.code == "encrypted" and "wrong" in caught.value.message
    flagged = extract_paper(path, SourceConfig(not_a_paper="flag"), password="s3cret")
    assert "short protected note" in flagged.body


@pytest.mark.parametrize(
    ("head", "looks_like"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"),
        (b"\xff\xd8\xff\xe0" + bytes(64), "a JPEG image"),
        (b"  <!DOCTYPE html><html>", "an HTML web page"),
        (b"\\documentclass{article}", "LaTeX source"),
        (b"just some notes about a paper\n", "plain text"),
    ],
)
def test_what_a_non_pdf_looks_like(head: bytes, looks_like: str) -> None:
    assert sniff_format(head) == looks_like


def test_a_word_document_is_named_as_such(tmp_path: Path) -> None:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    error = _refusal(tmp_path, out.getvalue())
    assert error.code == "not-pdf" and "Word document" in error.message


def test_a_file_over_the_byte_limit(tmp_path: Path) -> None:
    error = _refusal(tmp_path, _pdf_with_text(["x"]), max_bytes=100)
    assert error.code == "too-long" and "source.max_bytes" in (error.hint or "")


@needs_corpus
def test_no_list_of_languages_takes_a_paper_in_any() -> None:
    korean = extract_paper(BAD["docling__normal_4pages.pdf"], SourceConfig(languages=[]))
    assert korean.language == "ko"
    # its headings are not read in Korean, so whether it is a paper is left to the reviewer
    assert any("does not look like a research paper" in w for w in korean.warnings)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceRejected) as caught:
        extract_paper(tmp_path / "nowhere.pdf", DEFAULTS)
    assert caught.value.code == "not-found"


# --- the command --------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no shipyard.toml here: the defaults apply
    _register()
    return CliRunner()


@needs_corpus
def test_extract_prints_the_paper(runner: CliRunner) -> None:
    result = runner.invoke(app, ["extract", str(PAPERS["grobid__gadr.pdf"])])
    assert result.exit_code == 0, result.output
    assert "Generalized Markdown Architectural Decision Records" in result.output
    assert "Authors: 1. Oliver Kopp (IAAS, University of Stuttgart); 2. Anita Armbruster" in (
        " ".join(result.output.split())
    )
    assert "from layout: the lines under the title, 90% sure" in " ".join(result.output.split())
    assert re.search(r"Introduction\s+\(pp\. 1-2, \d+ words\)", result.output)


@needs_corpus
def test_extract_json_is_a_paper(runner: CliRunner) -> None:
    result = runner.invoke(app, ["extract", "--json", str(PAPERS["grobid__gadr.pdf"])])
    assert result.exit_code == 0
    paper = Paper.model_validate_json(result.output)
    assert paper.references and paper.sections


@needs_corpus
def test_extract_refuses_bad_input_with_a_non_zero_exit(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shipyard.cli import main; main()",
            "extract",
            str(BAD["not-a-pdf.pdf"]),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3
    assert "error: not-a-pdf.pdf is not a PDF: it looks like an HTML web page" in result.stderr
    assert "fix: download the PDF itself" in result.stderr


@needs_corpus
def test_the_examples_in_docs_extraction_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "extraction.md").read_text(encoding="utf-8")
    (tmp_path / "paper.pdf").symlink_to(PAPERS["grobid__gadr.pdf"])
    (tmp_path / "protected.pdf").write_bytes(
        _pdf_with_text(["A short protected note."] * 30, encrypt="s3cret")
    )
    (tmp_path / "shipyard.toml").write_text('[podcast.source]\nnot_a_paper = "flag"\n')
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/extraction.md", "exec"), {})
    assert "Generalized Markdown Architectural Decision Records" in capsys.readouterr().out
    _register()
    commands = re.findall(r"^\$ shipyard (extract [^#\n]*?)\s*(?:#.*)?$", doc, flags=re.M)
    assert len(commands) == 3
    for command in commands:
        result = CliRunner().invoke(app, command.split())
        assert result.exit_code == 0, result.output
