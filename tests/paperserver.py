"""A loopback server that answers as arXiv, doi.org and a publisher do, for the pasted-inputs
tests, from their public documentation:

- arXiv (https://info.arxiv.org/help/view.html, /help/mimetypes.html): `/abs/ID`, the abstract
  page, whose `citation_*` meta tags give the title and authors (`citation_author` as "Family,
  Given"); `/pdf/ID`, the PDF; `/e-print/ID`, the source as submitted: a gzip'd tar
  (`application/x-eprint-tar`), a gzip'd single TeX file (`application/x-eprint`), or, for a
  PDF-only submission, the PDF (`application/pdf`). An unknown id is a 404.
- doi.org's content negotiation (https://citation.crosscite.org/docs.html): `/doi/DOI` with
  `Accept: application/vnd.citationstyles.csl+json` redirects (302) to the registration
  agency, which answers CSL JSON: `title`, `author` ([{given, family}]), `URL`, and `link`
  ([{URL, content-type}]) where the work is open.
- a publisher: `/files/NAME.pdf`, `/page/NAME` (a landing page with `citation_pdf_url`), and
  `/paywall/NAME.pdf` (a sign-in page, HTML, where a PDF was promised).

It also misbehaves on purpose: `/redirect-private` (to a private address), `/huge` (a
Content-Length past any limit), `/endless` (a chunked body without end), `/not-a-pdf`
(HTML labelled application/pdf) and `/slow` (a byte a second for a minute). Every request
is counted by path; `served` is set when a path is answered, so a test can act right after.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from xml.sax.saxutils import quoteattr

from shipyard_podcast.source import demo_paper
from tests.loopback import loopback_server


def demo_latex(title: str = demo_paper.TITLE) -> bytes:
    """The demo paper as its authors would have written it in LaTeX."""

    def esc(text: str) -> str:
        return text.replace("%", r"\%").replace("&", r"\&").replace("#", r"\#")

    authors = r" \and ".join(
        f"{name}$^{{{n}}}$\\thanks{{Equal contribution.}} \\\\ {demo_paper.AFFILIATIONS[n - 1]}"
        for name, n in demo_paper.AUTHORS
    )
    lines = [
        r"\documentclass{article}",
        r"\newcommand{\system}{verified publishing}",
        f"\\title{{{esc(title)}}}",
        f"\\author{{{authors}}}",
        r"\begin{document}",
        r"\maketitle",
        r"\begin{abstract}",
        esc(demo_paper.ABSTRACT),
        r"\end{abstract}",
    ]
    for heading, paragraphs in demo_paper.SECTIONS:
        lines.append(f"\\section{{{heading.split(' ', 1)[1]}}}\\label{{s}}")
        lines += [f"{esc(p)}~\\cite{{x}}\n" for p in paragraphs if isinstance(p, str)]
    lines += [
        r"\begin{figure}\centering\includegraphics{flow.pdf}",
        r"\caption{The stages of \system{}.}\end{figure}",
        r"\begin{equation} L = \sum_i \ell_i \end{equation}",
        r"\begin{thebibliography}{9}",
        *(f"\\bibitem{{r{n}}} {esc(r)}" for n, r in enumerate(demo_paper.REFERENCES)),
        r"\end{thebibliography}",
        r"\end{document}",
    ]
    return "\n".join(lines).encode()


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


@dataclass
class ArxivPaper:
    title: str
    authors: list[str]  # "Given Family"
    pdf: bytes
    eprint: bytes  # as /e-print/ID answers: gzip'd tar, gzip'd file, or the PDF


@dataclass
class Works:
    """What the server holds: arXiv papers by id, DOIs' CSL JSON, publishers' files."""

    arxiv: dict[str, ArxivPaper] = field(default_factory=dict)
    dois: dict[str, dict[str, object]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    agents: set[str] = field(default_factory=set)  # the User-Agents that asked
    served: dict[str, threading.Event] = field(default_factory=dict)

    def answered(self, path: str) -> threading.Event:
        return self.served.setdefault(path, threading.Event())


@contextmanager
def paper_server(works: Works) -> Iterator[str]:
    """Serve `works`; yields the base URL (arXiv at it, doi.org at BASE/doi)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            works.requests[path] = works.requests[path] + 1
            works.agents.add(self.headers.get("User-Agent", ""))
            try:
                self._answer(path)
            finally:
                works.answered(path).set()

        def _send(self, status: int, data: bytes, kind: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, path: str) -> None:
            part, _, rest = path.lstrip("/").partition("/")
            paper = works.arxiv.get(rest)
            if part == "abs" and paper:
                tags = [f'<meta name="citation_title" content={quoteattr(paper.title)}>']
                for author in paper.authors:
                    given, family = author.rsplit(" ", 1)
                    tags.append(
                        f'<meta name="citation_author" content={quoteattr(f"{family}, {given}")}>'
                    )
                tags.append(f'<meta name="citation_pdf_url" content="/pdf/{rest}">')
                head = "".join(tags)
                page = f"<!DOCTYPE html><html><head>{head}</head><body>{paper.title}</body></html>"
                self._send(200, page.encode(), "text/html; charset=utf-8")
            elif part == "pdf" and paper:
                self._send(200, paper.pdf, "application/pdf")
            elif part == "e-print" and paper:
                kind = (
                    "application/pdf"
                    if paper.eprint.startswith(b"%PDF")
                    else "application/x-eprint-tar"
                    if gzip.decompress(paper.eprint)[257:262] == b"ustar"
                    else "application/x-eprint"
                )
                self._send(200, paper.eprint, kind)
            elif part == "doi" and rest in works.dois:
                if "citationstyles.csl+json" not in self.headers.get("Accept", ""):
                    self._send(302, b"", "text/plain", Location=f"/page/{rest.replace('/', '-')}")
                else:
                    self._send(302, b"", "text/plain", Location=f"/agency/{rest}")
            elif part == "agency" and rest in works.dois:
                self._send(
                    200,
                    json.dumps(works.dois[rest]).encode(),
                    "application/vnd.citationstyles.csl+json",
                )
            elif part == "files" and rest in works.files:
                self._send(200, works.files[rest], "application/pdf")
            elif part == "page" and f"{rest}.pdf" in works.files:
                tag = f'<meta name="citation_pdf_url" content="/files/{rest}.pdf">'
                page = f"<html><head>{tag}</head></html>"
                self._send(200, page.encode(), "text/html")
            elif part == "paywall":
                self._send(
                    200, b"<!DOCTYPE html><html><body>Sign in to read</body></html>", "text/html"
                )
            elif part == "redirect-private":
                self._send(302, b"", "text/plain", Location="http://10.255.255.1/paper.pdf")
            elif part == "redirect-loop":
                self._send(302, b"", "text/plain", Location=f"/redirect-loop/{int(rest or 0) + 1}")
            elif part == "huge":
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.wfile.write(b"%PDF-1.7\n")
            elif part == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                block = b"%PDF-1.7\n" + b"0" * 65536
                for _ in range(4096):  # 256 MB at most, bounded
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                    except OSError:
                        return
            elif part == "not-a-pdf":
                self._send(
                    200, b"<!DOCTYPE html><html><body>Not here</body></html>", "application/pdf"
                )
            elif part == "slow":
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", "60")
                self.end_headers()
                for _ in range(60):  # a byte a second, a minute at most
                    try:
                        self.wfile.write(b"%")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(1)
            else:
                self._send(404, b"not found", "text/plain")

    with loopback_server(Handler) as base:
        yield base
