"""The inputs people paste (issue #27): an arXiv id or link, a DOI, a link to a PDF or to a
paper's page, each fetched within `[fetch]`'s limits from loopback servers that answer as
arXiv, doi.org and a publisher do (tests/paperserver.py), and a run that is recovered reads
what was fetched, never fetching again."""

from __future__ import annotations

import gzip
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import shipyard
from shipyard import Config, FetchRefused, RunState, fetch
from shipyard._inputs import UrlInput, read_input
from shipyard.testing import WorkflowProject, kill_group
from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source import demo_paper
from shipyard_podcast.source.latex import paper_from_latex
from shipyard_podcast.source.remote import FetchedPaper, fetch_paper, paper_url
from tests.paperserver import ArxivPaper, Works, demo_latex, paper_server, tar_gz
from tests.project import make_project

ARXIV_ID = "2612.01234v2"
AUTHORS = [name for name, _ in demo_paper.AUTHORS]
LOOPBACK = "[fetch]\nallow_http = true\nallow_networks = ['127.0.0.0/8']\n"


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("2103.15348", "https://arxiv.org/abs/2103.15348"),
        ("2103.15348v2", "https://arxiv.org/abs/2103.15348v2"),
        ("arXiv:2103.15348", "https://arxiv.org/abs/2103.15348"),
        ("hep-th/9901001", "https://arxiv.org/abs/hep-th/9901001"),
        ("math.GT/0309136v1", "https://arxiv.org/abs/math.GT/0309136v1"),
        ("https://arxiv.org/abs/2103.15348v2", "https://arxiv.org/abs/2103.15348v2"),
        ("https://arxiv.org/pdf/2103.15348v2.pdf", "https://arxiv.org/abs/2103.15348v2"),
        ("http://export.arxiv.org/pdf/2103.15348", "https://arxiv.org/abs/2103.15348"),
        ("10.1145/3442188.3445922", "https://doi.org/10.1145/3442188.3445922"),
        ("doi:10.1145/3442188.3445922", "https://doi.org/10.1145/3442188.3445922"),
        ("https://doi.org/10.1145/3442188.3445922", "https://doi.org/10.1145/3442188.3445922"),
        ("https://dx.doi.org/10.1000/xyz%20123", "https://doi.org/10.1000/xyz%20123"),
        ("10.48550/arXiv.2103.15348", "https://arxiv.org/abs/2103.15348"),
        ("https://example.org/papers/a.pdf", None),
        ("https://arxiv.org/list/cs.CL/recent", None),
        ("not a paper", None),
    ],
)
def test_what_people_paste_is_read_as_one_canonical_link(given: str, url: str | None) -> None:
    assert paper_url(given) == url


def test_every_way_of_naming_a_paper_makes_the_same_input_and_nonsense_is_refused() -> None:
    forms = ["2103.15348v2", "arXiv:2103.15348v2", "https://arxiv.org/pdf/2103.15348v2"]
    inputs = [read_input(("file", "url"), f, url_for=paper_url) for f in forms]
    assert all(isinstance(i, UrlInput) for i in inputs)
    assert len({i.sha256 for i in inputs}) == 1  # one run id, whatever the form
    assert next(i.given for i in inputs if isinstance(i, UrlInput)) == "2103.15348v2"
    with pytest.raises(Exception, match="names no file and is no http"):
        read_input(("file", "url"), "no-such-file.pdf", url_for=paper_url)


def _config(tmp_path: Path, fetch_table: str = LOOPBACK) -> Config:
    return Config.model_validate(
        {"root": tmp_path, "state_dir": tmp_path / "state", "fetch": _toml(fetch_table)}
    )


def _toml(table: str) -> dict[str, object]:
    import tomllib

    return dict(tomllib.loads(table).get("fetch", {}))


@pytest.fixture
def works() -> Works:
    pdf = demo_paper.demo_paper_bytes()
    return Works(
        arxiv={
            ARXIV_ID: ArxivPaper(
                demo_paper.TITLE, AUTHORS, pdf, tar_gz({"paper/ms.tex": demo_latex()})
            ),
            "2612.00003": ArxivPaper(  # a single file, gzip'd
                demo_paper.TITLE, AUTHORS, pdf, gzip.compress(demo_latex(), mtime=0)
            ),
            "2612.00001": ArxivPaper(demo_paper.TITLE, AUTHORS, pdf, pdf),  # PDF-only
            "2612.00002": ArxivPaper(  # a single file, gzip'd, that is not a document
                demo_paper.TITLE, AUTHORS, pdf, gzip.compress(b"\\relax just macros", mtime=0)
            ),
        },
        dois={
            "10.5555/open": {
                "title": demo_paper.TITLE,
                "author": [{"given": n.split()[0], "family": n.split()[1]} for n in AUTHORS],
                "URL": "https://publisher.example/open",
                "link": [{"URL": "/files/open.pdf", "content-type": "application/pdf"}],
            },
            "10.5555/closed": {"title": "A Closed Paper", "URL": "https://publisher.example/c"},
            "10.5555/paywalled": {
                "title": "A Paywalled Paper",
                "link": [{"URL": "/paywall/p.pdf", "content-type": "application/pdf"}],
            },
        },
        files={"open.pdf": pdf},
    )


@pytest.fixture
def server(works: Works) -> Iterator[str]:
    with paper_server(works) as base:
        yield base


# --- fetching, as untrusted input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/redirect-private", "fetch-address"),
        ("/redirect-loop/0", "fetch-redirects"),
        ("/huge", "fetch-too-large"),
        ("/endless", "fetch-too-large"),
        ("/not-a-pdf", "fetch-kind"),
        ("/slow", "fetch-timeout"),
        ("/nothing-here", "fetch-status"),
    ],
)
def test_a_fetch_is_refused_with_its_reason_within_its_limit(
    tmp_path: Path, server: str, works: Works, path: str, code: str
) -> None:
    limits = LOOPBACK + "max_bytes = 5_000_000\ntimeout_seconds = 3\nmax_redirects = 3\n"
    with pytest.raises(FetchRefused) as refused:
        fetch(server + path, _config(tmp_path, limits), expect=("pdf",))
    assert refused.value.code == code, refused.value
    assert refused.value.hint
    if path == "/slow":  # cut off at its limit, long before the server's minute was up
        assert works.requests["/slow"] == 1


def test_plain_http_and_loopback_are_refused_unless_configured(tmp_path: Path, server: str) -> None:
    with pytest.raises(FetchRefused, match="not an https link"):
        fetch(server + "/files/open.pdf", _config(tmp_path, ""), expect=("pdf",))
    with pytest.raises(FetchRefused, match="private, loopback or reserved") as refused:
        fetch(
            server + "/files/open.pdf",
            _config(tmp_path, "[fetch]\nallow_http = true\n"),
            expect=("pdf",),
        )
    assert "fetch.allow_networks" in (refused.value.hint or "")
    got = fetch(server + "/files/open.pdf", _config(tmp_path), expect=("pdf",))
    assert got.kind == "pdf" and got.data.startswith(b"%PDF")


def test_a_fetch_says_what_is_fetching_and_keeps_to_its_hosts_quota(
    tmp_path: Path, server: str, works: Works
) -> None:
    table = LOOPBACK + "contact = 'ops@example.org'\nproviders = { '127.0.0.1' = 'paced' }\n"
    config = Config.model_validate(
        {
            "root": tmp_path,
            "state_dir": tmp_path / "state",
            "fetch": _toml(table),
            "providers": {"paced": {"requests": 100, "period_seconds": 60}},
        },
        context={"providers": {"paced"}},
    )
    fetch(server + "/files/open.pdf", config, expect=("pdf",))
    assert works.agents == {f"shipyard/{shipyard.__version__} (+ops@example.org)"}
    engine = sa.create_engine(config.database_url)
    with engine.connect() as conn:  # the call held a slot of the provider's quota
        taken = conn.execute(sa.text("SELECT provider FROM shipyard_provider_calls")).all()
    engine.dispose()
    assert [row[0] for row in taken] == ["paced"]
    with pytest.raises(ValueError, match="is not a network"):
        _config(tmp_path, "[fetch]\nallow_networks = ['loopback']\n")


# --- papers from each source ----------------------------------------------------------------


def _settings(server: str) -> SourceConfig:
    return SourceConfig(arxiv_url=server, doi_url=f"{server}/doi")


def _fetch_paper(url: str, server: str, tmp_path: Path) -> FetchedPaper:
    """`fetch_paper` as a command runs it: its bytes kept in a folder, LaTeX read in a child."""

    def keep(data: bytes, suffix: str) -> Path:
        kept = tmp_path / f"kept{suffix}"
        kept.write_bytes(data)
        return kept

    return fetch_paper(url, _settings(server), _config(tmp_path), keep)


@pytest.mark.parametrize("arxiv_id", [ARXIV_ID, "2612.00003"])  # a tar, a single file
def test_an_arxiv_paper_is_read_from_its_latex_source(
    tmp_path: Path, server: str, arxiv_id: str
) -> None:
    got = _fetch_paper(paper_url(arxiv_id) or "", server, tmp_path)
    assert got.form == "latex" and got.source == "arXiv's LaTeX source" and not got.reason
    assert got.registered is not None and got.registered.authors == AUTHORS
    paper = paper_from_latex(got.data, SourceConfig(), name=got.name)
    assert paper.title == demo_paper.TITLE
    assert paper.authors == AUTHORS  # the affiliations, notes and markers left out
    assert paper.abstract.startswith("Generative pipelines")
    assert [s.heading for s in paper.sections][:2] == [
        "Introduction",
        "Where Generated Artifacts Get Lost",
    ]
    body = paper.body
    assert "cite" not in body and "\\" not in body and "L = " not in body  # no equation
    assert "verified publishing" in paper.captions[0]  # a macro expanded, in a caption
    assert len(paper.references) == len(demo_paper.REFERENCES)
    assert "1,184 runs" in body  # numbers as the checks read them


@pytest.mark.parametrize(
    "block",
    [
        r"\author{Ana Ruiz\thanks{Equal.} \\ Department of Physics\\ University X\\ "
        r"\texttt{ana@x.edu} \And Ben Okoro \\ Company Inc. \\ \texttt{ben@y.com}}",  # NeurIPS
        r"\author{Ana Ruiz}\email{a@x.org}\affiliation{University X}\author{Ben Okoro}"
        r"\affiliation{Lab Y}",  # revtex
        r"\author{Ana Ruiz\inst{1}\orcidID{0000-0001-2345-6789} \and Ben Okoro\inst{2}}",  # LNCS
        r"\author{\IEEEauthorblockN{Ana Ruiz}\IEEEauthorblockA{University X\\ Email: a@x.org}"
        r"\and\IEEEauthorblockN{Ben Okoro}\IEEEauthorblockA{Company Y}}",  # IEEE
        r"\author{Ana Ruiz}\affiliation{\institution{University X}\country{Land}}"
        r"\email{a@x.org}\author{Ben Okoro}",  # acmart
        r"\author{Ana Ruiz$^{1}$ and Ben Okoro$^{1,2}$\\ $^1$University X, $^2$Company Y}",
        r"\author[1]{Ana Ruiz}\author[2]{Ben Okoro}\affil[1]{University X}",  # authblk
        r"\author[a]{Ana Ruiz\corref{c1}}\author[b]{Ben Okoro}\address[a]{University X}"
        r"\cortext[c1]{Corresponding author}",  # elsarticle
        r"\begin{icmlauthorlist}\icmlauthor{Ana Ruiz}{x}\icmlauthor{Ben Okoro}{y}"
        r"\end{icmlauthorlist}",  # ICML
    ],
)
def test_authors_are_read_from_each_common_class_s_author_block(block: str) -> None:
    source = (
        r"\documentclass{article}\title{On Tides}" + block + r"\begin{document}"
        r"\section{Tides}" + "The sea rises and falls twice a day, as the moon pulls it. " * 5
    ).encode()
    paper = paper_from_latex(source, SourceConfig(), name="authors")
    assert paper.authors == ["Ana Ruiz", "Ben Okoro"]


def test_accented_names_are_read_as_written() -> None:
    source = (
        r"\documentclass{article}\title{Mar\'{e}es}\author{Jos\'e Garc\'{\i}a \and "
        r"Fran\c{c}ois M\"uller \and Zoë van der Berg}\begin{document}\section{Marées}"
        + "La mer monte et descend deux fois par jour, tirée par la lune. "
        * 5
    ).encode()
    paper = paper_from_latex(source, SourceConfig(), name="accents")
    assert paper.authors == ["José García", "François Müller", "Zoë van der Berg"]
    assert paper.title == "Marées" and paper.language == "fr"


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (  # a file that includes itself twice doubles at every depth
            {"ms.tex": b"\\begin{document}" + b"words " * 2000 + b"\\input{ms}\\input{ms}"},
            "too-large",
        ),
        (  # macros that expand each other: three rounds at most, then nothing to read
            {
                "ms.tex": b"\\documentclass{article}\\newcommand{\\a}{\\b\\b\\b\\b}"
                + b"\\newcommand{\\b}{\\a\\a\\a\\a}\\title{\\a}\\begin{document}\\a\\a"
            },
            "not-latex",
        ),
        (
            {"../../outside.tex": b"\\begin{document}\\input{/etc/passwd}\\end{document}"},
            "not-latex",
        ),
        ({"figure.png": b"\\x89PNG"}, "not-latex"),
    ],
)
def test_a_hostile_latex_source_is_refused_and_nothing_is_written(
    tmp_path: Path, files: dict[str, bytes], code: str
) -> None:
    before = set(tmp_path.parent.iterdir())
    settings = SourceConfig(max_inflated_bytes=2_000_000)
    with pytest.raises(SourceRejected) as refused:
        paper_from_latex(tar_gz(files), settings, name="hostile")
    assert refused.value.code == code, refused.value
    assert set(tmp_path.parent.iterdir()) == before  # read in memory: nothing unpacked


@pytest.mark.parametrize(
    ("arxiv_id", "reason"),
    [
        ("2612.00001", "arXiv keeps only a PDF of it (no LaTeX source)"),
        ("2612.00002", "its LaTeX source could not be read"),
    ],
)
def test_an_arxiv_paper_without_a_readable_source_is_read_from_its_pdf(
    tmp_path: Path, server: str, arxiv_id: str, reason: str
) -> None:
    got = _fetch_paper(paper_url(arxiv_id) or "", server, tmp_path)
    assert got.form == "pdf" and got.data.startswith(b"%PDF") and reason in got.reason


def test_a_doi_gives_its_registered_metadata_and_its_open_pdf(tmp_path: Path, server: str) -> None:
    got = _fetch_paper(paper_url("10.5555/open") or "", server, tmp_path)
    assert got.form == "pdf" and got.source == "the DOI's open PDF"
    assert got.registered is not None
    assert (got.registered.title, got.registered.authors) == (demo_paper.TITLE, AUTHORS)


@pytest.mark.parametrize("doi", ["10.5555/closed", "10.5555/paywalled"])
def test_a_doi_without_an_open_pdf_is_refused_naming_what_to_do(
    tmp_path: Path, server: str, doi: str
) -> None:
    with pytest.raises(SourceRejected, match="download the PDF yourself") as refused:
        _fetch_paper(paper_url(doi) or "", server, tmp_path)
    assert refused.value.code == "not-open"


def test_a_page_is_read_by_the_pdf_it_names(tmp_path: Path, server: str) -> None:
    got = _fetch_paper(f"{server}/page/open", server, tmp_path)
    assert got.form == "pdf" and got.fetched == [f"{server}/page/open", f"{server}/files/open.pdf"]


# --- whole runs --------------------------------------------------------------------------------


def _paper(project: WorkflowProject, run_id: str) -> dict[str, Any]:
    """The paper a run extracted, as it stored it."""
    ledger = project.ledger()
    try:
        [sha256] = [a["sha256"] for a in ledger.lineage(run_id) if a["kind"] == "paper"]
    finally:
        ledger.close()
    found: dict[str, Any] = json.loads(project.config().artifact_store().path(sha256).read_bytes())
    return found


def test_an_arxiv_id_becomes_a_verified_episode_from_its_latex_source(
    tmp_path: Path, server: str, works: Works
) -> None:
    extra = LOOPBACK + f'\n[podcast.source]\narxiv_url = "{server}"\n'
    with make_project(tmp_path / "p", auto_approve=True, extra=extra) as project:
        done = project.run("run", "paper-to-podcast", f"arXiv:{ARXIV_ID}")
        run = project.latest()
        assert run.state is RunState.VERIFIED, done.stdout + done.stderr
        [fetched] = project.events(run.run_id, "paper-fetched")
        assert fetched["data"]["form"] == "latex"
        assert fetched["data"]["given"] == f"arXiv:{ARXIV_ID}"
        paper = _paper(project, run.run_id)
        assert paper["title"] == demo_paper.TITLE and paper["authors"] == AUTHORS
        assert paper["front"]["title_source"].startswith("the LaTeX source")
        assert "arXiv's metadata agrees" in paper["front"]["authors_source"]
        assert works.requests[f"/e-print/{ARXIV_ID}"] == 1
        assert works.requests[f"/pdf/{ARXIV_ID}"] == 0  # the source was enough
        kept = [f.name.split(".")[0] for f in project.config().artifact_store().root.glob("*/*")]
        assert len(kept) == len(set(kept))  # each artifact once, whichever step kept it


def test_the_commands_take_what_people_paste_too(tmp_path: Path, server: str) -> None:
    extra = LOOPBACK + f'\n[podcast.source]\narxiv_url = "{server}"\n'
    with make_project(tmp_path / "p", auto_approve=True, extra=extra) as project:
        shown = project.run("extract", ARXIV_ID, "--json")
        assert shown.returncode == 0, shown.stderr
        paper = json.loads(shown.stdout)
        assert (paper["title"], paper["authors"]) == (demo_paper.TITLE, AUTHORS)
        assert "arXiv's metadata agrees" in paper["front"]["authors_source"]
        nothing = project.run("extract", "no-such-paper")
        assert nothing.returncode == 3 and "names no file and is no link" in nothing.stderr


def test_a_doi_becomes_a_verified_episode_from_its_open_pdf(tmp_path: Path, server: str) -> None:
    extra = LOOPBACK + f'\n[podcast.source]\ndoi_url = "{server}/doi"\n'
    with make_project(tmp_path / "p", auto_approve=True, extra=extra) as project:
        done = project.run("run", "paper-to-podcast", "doi:10.5555/open")
        run = project.latest()
        assert run.state is RunState.VERIFIED, done.stdout + done.stderr
        [fetched] = project.events(run.run_id, "paper-fetched")
        assert fetched["data"]["source"] == "the DOI's open PDF"
        refused = project.run("run", "paper-to-podcast", "10.5555/closed")
        assert (
            refused.returncode != 0
            and "download the PDF yourself" in refused.stdout + refused.stderr
        )


def test_a_run_killed_after_its_fetch_reads_what_was_fetched_when_recovered(
    tmp_path: Path, server: str, works: Works
) -> None:
    extra = LOOPBACK + f'\n[podcast.source]\narxiv_url = "{server}"\n'
    with make_project(tmp_path / "p", auto_approve=True, extra=extra) as project:
        running = project.start("run", "paper-to-podcast", "2612.00001")  # PDF-only
        # Extraction has begun once DBOS has recorded the ingest step (the fetch) as done: a
        # kill between the fetch's event and that record would repeat the step, and its event.
        ingested = project.wait_until(
            None, lambda r: any(s.step == "extract" for s in r.steps), timeout=120
        )
        assert any(e["kind"] == "paper-fetched" for e in ingested.events)
        kill_group(running, signal.SIGKILL)  # after the fetch, before extraction is done
        run = project.latest()
        assert not run.state.finished and not any(
            s.step == "extract" and s.status == "ok" for s in ingested.steps
        )
        recovered, said = project.recover(run.run_id)
        assert recovered.state is RunState.VERIFIED, said
        [fetched] = project.events(run.run_id, "paper-fetched")
        assert "arXiv keeps only a PDF" in fetched["data"]["reason"]
        assert works.requests["/abs/2612.00001"] == 1  # one fetch each, the crash included
        assert works.requests["/e-print/2612.00001"] == 1
