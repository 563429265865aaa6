"""A paper named the way people paste it: an arXiv id or link, a DOI, a link to a PDF or to a
paper's web page (docs/inputs.md).

    paper_url(given) -> the canonical URL, or None       # the workflow's `url_for`
    fetch_paper(url, settings, config, keep) -> FetchedPaper   # in the ingest step
    read_paper(given, config, settings) -> Paper         # the commands' way, outside a run

- **arXiv** (`2103.15348`, `2103.15348v2`, `hep-th/9901001`, `arXiv:…`, an abs, pdf or html
  link): the abstract page (its registered title and authors, a witness of the front matter),
  then the e-print. Its LaTeX is read where it is LaTeX; where arXiv keeps only a PDF, or the
  source cannot be read, the PDF is fetched instead, and the reason kept.
- **A DOI** (`10.…`, `doi:10.…`, a doi.org link) resolves through doi.org's content
  negotiation to CSL JSON: the title and authors as the publisher registered them (a witness)
  and, where the work is open, a PDF link. A DOI with no open PDF is refused, naming what to do.
- **Any other https link**: a PDF as it is; a web page by the PDF its `citation_pdf_url` meta
  tag names (the tag publishers and repositories give scholarly pages), its `citation_title`
  and `citation_author` the witness.

Every fetch goes through `fetch` (the core's, within `[fetch]`'s limits, journaled per run by
the caller so that a recovered run never fetches again).
"""

from __future__ import annotations

import json
import re
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote, urljoin, urlsplit

from pydantic import BaseModel, ConfigDict

from shipyard import Config, Fetched, FetchRefused, expand_secrets, fetch, redact
from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.models import Paper
from shipyard_podcast.settings import SourceConfig

__all__ = [
    "FetchedPaper",
    "Registered",
    "confirm_front",
    "fetch_paper",
    "paper_url",
    "read_paper",
]

Fetch = Callable[..., Fetched]  # (url, expect=(kinds), headers=None) -> Fetched

_ARXIV_ID = r"(\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(v\d+)?"
_ARXIV_HOSTS = {"arxiv.org", "www.arxiv.org", "export.arxiv.org"}
_DOI = r"10\.\d{4,9}/\S+"
_DOI_HOSTS = {"doi.org", "dx.doi.org", "www.doi.org"}
_ARXIV_DOI = re.compile(rf"10\.48550/arxiv\.{_ARXIV_ID}", re.I)
CSL_JSON = "application/vnd.citationstyles.csl+json"


def paper_url(given: str) -> str | None:
    """The canonical URL of a paper as people paste it: an arXiv id or link ->
    `https://arxiv.org/abs/ID`, a DOI or doi.org link -> `https://doi.org/DOI` (arXiv's own
    DOIs -> arXiv); None for anything else (a link is taken as it is)."""
    text = given.strip()
    if found := re.fullmatch(rf"(?:arxiv:\s*)?{_ARXIV_ID}", text, re.I):
        return _arxiv_abs(found[1] + (found[2] or ""))
    if found := re.fullmatch(rf"(?:doi:\s*)?({_DOI})", text, re.I):
        return _doi_url(found[1])
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if parts.scheme in ("http", "https") and host in _ARXIV_HOSTS:
        path = re.fullmatch(rf"/(?:abs|pdf|html|e-print)/{_ARXIV_ID}(?:\.pdf)?/?", parts.path)
        return _arxiv_abs(path[1] + (path[2] or "")) if path else None
    if parts.scheme in ("http", "https") and host in _DOI_HOSTS and parts.path.strip("/"):
        return _doi_url(unquote(parts.path.strip("/")))
    return None


def _arxiv_abs(arxiv_id: str) -> str:
    return f"https://arxiv.org/abs/{arxiv_id}"


def _doi_url(doi: str) -> str:
    if found := _ARXIV_DOI.fullmatch(doi):
        return _arxiv_abs(found[1] + (found[2] or ""))
    return f"https://doi.org/{quote(doi, safe='/:;()._-')}"


class Registered(BaseModel):
    """A paper's title and authors as a registry has them (arXiv, a DOI's publisher, a page's
    citation tags): a witness of the front matter the paper itself states."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    title: str = ""
    authors: list[str] = []
    source: str  # in words: "arXiv's metadata", "the DOI's registered metadata"


@dataclass(frozen=True)
class FetchedPaper:
    form: Literal["pdf", "latex"]
    data: bytes
    kind: str  # what the bytes are (`shipyard.fetch`'s kinds: pdf, gzip, tar, text)
    name: str  # what messages call it: "arXiv 2103.15348v2", "10.1234/abc", "paper.pdf"
    source: str  # where its text comes from, in words
    reason: str = ""  # why that form, where another was tried first
    registered: Registered | None = None
    fetched: list[str] = field(default_factory=list)  # the URLs fetched, in order


def fetch_paper(
    url: str, settings: SourceConfig, config: Config, keep: Callable[[bytes, str], Path]
) -> FetchedPaper:
    """The paper at a canonical URL (`paper_url`; a `${SECRET}` it names is expanded), fetched
    with the core's `fetch`. `keep(data, suffix)` puts bytes where a child process reads them
    (a run's artifact store, a command's temporary folder): a LaTeX source is read there, in
    the child as any untrusted source, and where it cannot be read the PDF is fetched."""
    from shipyard_podcast.source.extract import extract_paper_isolated

    def get(link: str, **how: Any) -> Fetched:
        return fetch(link, config, **how)

    def read_latex(source: Fetched, name: str) -> None:
        kept = keep(source.data, f".{source.kind}")
        extract_paper_isolated(kept, settings, name=name, latex=True)

    link = expand_secrets(url)
    parts = urlsplit(link)
    host = (parts.hostname or "").lower()
    if host == "arxiv.org" and parts.path.startswith("/abs/"):
        return _from_arxiv(parts.path.removeprefix("/abs/"), settings, get, read_latex)
    if host == "doi.org":
        return _from_doi(unquote(parts.path.lstrip("/")), settings, get)
    return _from_page(link, get)


def read_paper(
    given: str, config: Config, settings: SourceConfig, *, password: str | None = None
) -> Paper:
    """The paper a person names on the command line (`shipyard extract`, `script`, `check`):
    a PDF's path, or what people paste for one, fetched now and read in a child process as
    the run would read it (a run fetches in its ingest step instead, once)."""
    from shipyard_podcast.source.extract import extract_paper_isolated

    if Path(given).is_file():
        return extract_paper_isolated(Path(given), settings, password=password)
    url = paper_url(given) or given
    if urlsplit(url).scheme not in ("http", "https"):
        raise SourceRejected(
            f"{given!r} names no file and is no link",
            code="missing",
            hint="give a PDF's path, an arXiv id or link, a DOI, or a link to a paper's PDF "
            "or page",
        )
    with tempfile.TemporaryDirectory(prefix="shipyard-paper-") as folder:

        def keep(data: bytes, suffix: str) -> Path:
            kept = Path(folder) / f"paper{suffix}"
            kept.write_bytes(data)
            return kept

        got = fetch_paper(url, settings, config, keep)
        paper = extract_paper_isolated(
            keep(got.data, f".{got.kind}"), settings, name=got.name, latex=got.form == "latex"
        )
    return confirm_front(paper, got.registered)


def _from_arxiv(
    arxiv_id: str,
    settings: SourceConfig,
    fetch: Fetch,
    read_latex: Callable[[Fetched, str], None],
) -> FetchedPaper:
    base, name = settings.arxiv_url.rstrip("/"), f"arXiv {arxiv_id}"
    page = _refused_as_source(lambda: fetch(f"{base}/abs/{arxiv_id}", expect=("html",)), name)
    meta = _meta_tags(page.data)
    registered = Registered(
        title=_one_line(meta.get("citation_title", [""])[0]),
        authors=[_first_last(a) for a in meta.get("citation_author", [])],
        source="arXiv's metadata",
    )
    urls = [page.final_url]
    source = _refused_as_source(
        lambda: fetch(f"{base}/e-print/{arxiv_id}", expect=("gzip", "tar", "pdf", "text")), name
    )
    urls.append(source.final_url)
    if source.kind == "pdf":
        why = "arXiv keeps only a PDF of it (no LaTeX source)"
        return FetchedPaper("pdf", source.data, "pdf", name, "arXiv's PDF", why, registered, urls)
    try:
        read_latex(source, name)
    except SourceRejected as exc:
        why = f"its LaTeX source could not be read: {exc.message}"
    else:
        return FetchedPaper(
            "latex", source.data, source.kind, name, "arXiv's LaTeX source", "", registered, urls
        )
    pdf = _refused_as_source(lambda: fetch(f"{base}/pdf/{arxiv_id}", expect=("pdf",)), name)
    urls.append(pdf.final_url)
    return FetchedPaper("pdf", pdf.data, "pdf", name, "arXiv's PDF", why, registered, urls)


def _from_doi(doi: str, settings: SourceConfig, fetch: Fetch) -> FetchedPaper:
    base = settings.doi_url.rstrip("/")
    answer = _refused_as_source(
        lambda: fetch(
            f"{base}/{quote(doi, safe='/:;()._-')}", expect=("json",), headers={"Accept": CSL_JSON}
        ),
        f"DOI {doi}",
    )
    try:
        record = json.loads(answer.data)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise SourceRejected(
            f"doi.org's answer for {doi} is not CSL JSON",
            code="doi",
            hint="check the DOI; or download the paper and pass the file",
        )
    title = record.get("title", "")
    registered = Registered(
        title=_one_line(title[0] if isinstance(title, list) and title else str(title or "")),
        authors=[
            n for a in record.get("author", []) if isinstance(a, dict) and (n := _csl_name(a))
        ],
        source="the DOI's registered metadata",
    )
    links = [
        str(link.get("URL", ""))
        for link in record.get("link", [])
        if isinstance(link, dict)
        and (
            link.get("content-type") == "application/pdf"
            or str(link.get("URL", "")).lower().endswith(".pdf")
        )
    ]
    landing = str(record.get("URL", "")) or f"https://doi.org/{doi}"
    if not links:
        raise SourceRejected(
            f"DOI {doi} ({registered.title or 'untitled'}) lists no open PDF",
            code="not-open",
            hint=f"download the PDF yourself (from {landing}) and pass the file's path",
        )
    try:
        pdf = fetch(urljoin(answer.final_url, links[0]), expect=("pdf",))
    except FetchRefused as exc:
        raise SourceRejected(
            f"DOI {doi}'s PDF could not be fetched: {exc.message}",
            code="not-open",
            hint=f"it may be paywalled: download the PDF yourself (from {landing}) and pass "
            "the file's path",
        ) from None
    return FetchedPaper(
        "pdf",
        pdf.data,
        "pdf",
        doi,
        "the DOI's open PDF",
        "",
        registered,
        [answer.final_url, pdf.final_url],
    )


def _from_page(url: str, fetch: Fetch) -> FetchedPaper:
    name = _file_name(url)
    got = _refused_as_source(lambda: fetch(url, expect=("pdf", "html")), name)
    if got.kind == "pdf":
        return FetchedPaper("pdf", got.data, "pdf", name, "the link's PDF", fetched=[got.final_url])
    meta = _meta_tags(got.data)
    pdf_url = next(iter(meta.get("citation_pdf_url", [])), "")
    if not pdf_url:
        raise SourceRejected(
            f"the page at {redact(url)} names no PDF (it has no citation_pdf_url tag)",
            code="no-pdf",
            hint="give the link of the PDF itself, or download it and pass the file",
        )
    registered = Registered(
        title=_one_line(next(iter(meta.get("citation_title", [])), "")),
        authors=[_first_last(a) for a in meta.get("citation_author", [])],
        source="the page's citation tags",
    )
    pdf = _refused_as_source(lambda: fetch(urljoin(got.final_url, pdf_url), expect=("pdf",)), name)
    return FetchedPaper(
        "pdf",
        pdf.data,
        "pdf",
        name,
        "the PDF the page names",
        "",
        registered,
        [got.final_url, pdf.final_url],
    )


def _refused_as_source(call: Callable[[], Fetched], name: str) -> Fetched:
    """A fetch whose refusal is the paper's: `SourceRejected`, with the fetch's reason."""
    try:
        return call()
    except FetchRefused as exc:
        raise SourceRejected(
            f"{name}: {exc.message}", code=exc.code or "fetch", hint=exc.hint or ""
        ) from None


def confirm_front(paper: Paper, registered: Registered | None) -> Paper:
    """The paper's title and authors held against what a registry has: where they agree the
    reading is sure; where they differ the reviewer is told what the registry says, and the
    reading is marked unsure; where the paper names no authors, the registry's are taken."""
    if registered is None:
        return paper
    front = paper.front
    update: dict[str, Any] = {}
    doubts = list(front.doubts)
    if registered.title:
        if _same(paper.title, registered.title):
            update["title_confidence"] = 1.0
            update["title_source"] = f"{front.title_source}; {registered.source} agrees"
        else:
            update["title_confidence"] = min(front.title_confidence, 0.5)
            doubts.append(f"{registered.source} gives the title as {registered.title!r}")
    authors = paper.authors
    if registered.authors:
        if not paper.authors:
            authors = registered.authors
            update["authors_source"] = registered.source
            update["authors_confidence"] = 0.9
        elif [_family(a) for a in paper.authors] == [_family(a) for a in registered.authors]:
            update["authors_confidence"] = 1.0
            update["authors_source"] = f"{front.authors_source}; {registered.source} agrees"
        else:
            update["authors_confidence"] = min(front.authors_confidence, 0.5)
            doubts.append(
                f"{registered.source} lists the authors as {', '.join(registered.authors)}"
            )
    return paper.model_copy(
        update={"authors": authors, "front": front.model_copy(update={**update, "doubts": doubts})}
    )


# --- small readers ---------------------------------------------------------------------------


class _MetaReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = {k.lower(): v or "" for k, v in attrs}
        name = values.get("name", "").lower()
        if name.startswith("citation_"):
            self.found.setdefault(name, []).append(values.get("content", ""))


def _meta_tags(html: bytes) -> Mapping[str, list[str]]:
    """A page's `citation_*` meta tags (Highwire Press's, which Google Scholar reads)."""
    reader = _MetaReader()
    reader.feed(html[:2_000_000].decode("utf-8", errors="replace"))
    return reader.found


def _first_last(name: str) -> str:
    """ "Lindqvist, Maren" -> "Maren Lindqvist"."""
    family, comma, given = name.partition(",")
    return _one_line(f"{given} {family}" if comma else name)


def _csl_name(author: Mapping[str, Any]) -> str:
    if author.get("literal"):
        return _one_line(str(author["literal"]))
    return _one_line(f"{author.get('given', '')} {author.get('family', '')}")


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _plain(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in folded if c.isalnum())


def _same(a: str, b: str) -> bool:
    return _plain(a) == _plain(b)


def _family(name: str) -> str:
    words = name.split()
    return _plain(words[-1]) if words else ""


def _file_name(url: str) -> str:
    path = unquote(urlsplit(url).path.rstrip("/"))
    return path.rsplit("/", 1)[-1] or urlsplit(url).hostname or url
