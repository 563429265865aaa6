"""Extract and validate: a research paper PDF in, a clean structured `Paper` out.

    extract_paper(pdf, settings) -> Paper
    extract_paper_isolated(pdf, settings) -> Paper   # in a child process, memory and time bounded

Validation runs cheapest first and stops at the first problem, each a `SourceRejected` (a
permanent error: retrying cannot help) with a stable `code`:

    empty        zero bytes, or a PDF with no pages
    not-pdf      the bytes are something else (HTML, an image, a Word file...): says which
    damaged      truncated or corrupt
    encrypted    password-protected (pass `password=`), or an unsupported security handler
    no-text      no text layer, or one that is all extraction garbage: needs OCR
    too-long     more pages than `podcast.source.max_pages` (or bytes than `max_bytes`)
    too-large    its text streams inflate past `podcast.source.max_inflated_bytes` (a
                 compression bomb), or extraction ran past `max_memory_mb`
    not-a-paper  no abstract, references, sections or citations (`podcast.source.not_a_paper`),
                 in a language whose headings it reads (a phrasebook's)
    language     written in a language that `podcast.source.languages` does not list (when
                 it lists any)

The work is split in three private modules: `_pdftext` (pdfium lines with geometry, columns,
running headers), `_textclean` (ligatures, accents, garbage, hyphenation) and `_structure`
(title, authors, abstract, sections, captions, references). This module validates, runs them
and decides language and paper-likeness.

The file is read once into memory, so the hash and the text always describe the same bytes,
even when the file changes while it is read. Extraction is a pure function of those bytes and
the settings: calling it twice gives the same Paper.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import threading
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from shipyard import StepTimeout
from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.language import detect_language, language_name, phrasebook
from shipyard_podcast.models import Paper, PaperStats
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source._frontmatter import read_front_matter
from shipyard_podcast.source._pdftext import PageLines, read_page, strip_page_furniture
from shipyard_podcast.source._structure import Layout, paper_signals, structure
from shipyard_podcast.source._textclean import clean_line

__all__ = ["extract_paper", "extract_paper_isolated", "sniff_format"]

SHORT_PAPER_WORDS = 1500  # fewer words: short research, accepted and flagged for the reviewer
_LEADERS = re.compile(r"[_.·…\-–—]{3,}")
_PLACEHOLDER = re.compile(r"\blorem ipsum\b|\bdolor sit amet\b", re.I)
_CONFIG_FILE = "shipyard.toml"
# pdfium is not thread-safe: one document at a time per process (steps may run in threads)
_PDFIUM = threading.Lock()

# --- validation ---------------------------------------------------------------------------


def _reject(message: str, code: str, hint: str) -> SourceRejected:
    return SourceRejected(message, code=code, hint=hint)


def sniff_format(head: bytes) -> str:
    """What a file that is not a PDF looks like, from its first bytes, in words."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    signatures = [
        (b"<!doctype html", "an HTML web page"),
        (b"<html", "an HTML web page"),
        (b"<head", "an HTML web page"),
        (b"<body", "an HTML web page"),
        (b"<?xml", "an XML document"),
        (b"\x89png", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"gif8", "a GIF image"),
        (b"ii*\x00", "a TIFF image"),
        (b"mm\x00*", "a TIFF image"),
        (b"%!ps", "a PostScript file"),
        (b"{\\rtf", "an RTF document"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file"),
        (b"\\documentclass", "LaTeX source"),
        (b"{", "JSON or other text data"),
    ]
    for signature, kind in signatures:
        if text.startswith(signature):
            return kind
    if text.startswith(b"pk\x03\x04"):
        if b"word/" in head:
            return "a Word document (.docx)"
        if b"epub" in head:
            return "an EPUB e-book"
        return "a ZIP archive"
    if b"<html" in text[:1024]:
        return "an HTML web page"
    try:
        sample = head[:2048].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "plain text" if sample.isprintable() or sample.strip() else "binary data"


def _read_bytes(pdf: Path, settings: SourceConfig, name: str) -> bytes:
    try:
        size = pdf.stat().st_size
        if size > settings.max_bytes:
            raise _reject(
                f"{name} is {size:,} bytes, over the limit of {settings.max_bytes:,}",
                "too-long",
                f"raise podcast.source.max_bytes in {_CONFIG_FILE} to accept it",
            )
        with pdf.open("rb") as f:
            data = f.read(settings.max_bytes + 1)
    except FileNotFoundError:
        raise _reject(f"{pdf} does not exist", "not-found", "check the path") from None
    except IsADirectoryError:
        raise _reject(f"{pdf} is a folder, not a file", "not-pdf", "give a PDF file") from None
    except OSError as exc:
        raise _reject(
            f"{pdf} cannot be read: {exc.strerror}", "unreadable", "check the file's permissions"
        ) from None
    if not data:
        raise _reject(
            f"{name} is empty (0 bytes)",
            "empty",
            "the download or copy failed; fetch the PDF again",
        )
    if len(data) > settings.max_bytes:
        raise _reject(
            f"{name} grew past {settings.max_bytes:,} bytes while being read",
            "too-long",
            f"raise podcast.source.max_bytes in {_CONFIG_FILE} to accept it",
        )
    if b"%PDF-" not in data[:1024]:
        kind = sniff_format(data[:4096])
        hint = (
            "download the PDF itself, not the page that links to it"
            if "HTML" in kind
            else "convert it to PDF first, or give the paper's PDF"
        )
        raise _reject(f"{name} is not a PDF: it looks like {kind}", "not-pdf", hint)
    return data


_NESTING = re.compile(rb"<<|>>|\[|\]|\((?:\\.|[^\\()])*\)|%[^\r\n]*")
MAX_NESTING = 64  # pdfium's own parser gives up deeper; real papers stay under ten
_INFLATE_CHUNK = 1 << 16


def _check_structure(data: bytes, settings: SourceConfig, name: str) -> None:
    """Refuse what would make pdfium use unbounded memory, or read garbage, before it opens
    the file: text streams that inflate past `max_inflated_bytes` (a compression bomb; images
    are decoded only when drawn, which extraction never does) and objects nested deeper than
    any real paper's. Each stream is inflated piecewise, so this check's memory is bounded."""
    inflated = 0
    syntax = []  # the object syntax between streams, where nesting is counted
    position = 0
    for start, body, end in _streams(data):
        syntax.append(data[position:start])
        position = end
        head = data[max(0, start - 4096) : start]
        if b"/Image" in head[head.rfind(b" obj") + 1 :]:
            continue
        inflated += _inflated_size(data, body, settings.max_inflated_bytes - inflated)
        if inflated > settings.max_inflated_bytes:
            raise _reject(
                f"{name} is too large to decompress: its text streams inflate past "
                f"{settings.max_inflated_bytes:,} bytes from a {len(data):,}-byte file "
                "(a compression bomb, or a document far larger than a paper)",
                "too-large",
                f"if it is a real paper, raise podcast.source.max_inflated_bytes in {_CONFIG_FILE}",
            )
    syntax.append(data[position:])
    depth = deepest = 0
    for token in _NESTING.finditer(b"".join(syntax)):
        mark = token.group()
        if mark in (b"<<", b"["):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_NESTING:
                raise _reject(
                    f"{name} is malformed: its objects nest more than {MAX_NESTING} levels "
                    "deep, which no real paper does (a damaged or hostile file)",
                    "damaged",
                    "download it again from the publisher, or re-save it with a PDF tool",
                )
        elif mark in (b">>", b"]"):
            depth = max(0, depth - 1)


def _streams(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Each stream's keyword ("stream" at a line's end, not "endstream"), body and end (past
    its "endstream", or the file's end), found with `bytes.find`, which skips a stream's body
    at memchr's speed (a regex scanning every byte cost more than inflating them)."""
    at = 0
    while (start := data.find(b"stream", at)) >= 0:
        at = start + len(b"stream")
        newline = 2 if data.startswith(b"\r\n", at) else 1 if data.startswith(b"\n", at) else 0
        if newline and data[max(0, start - 3) : start] != b"end":
            body = at + newline
            found = data.find(b"endstream", body)
            at = found + len(b"endstream") if found >= 0 else len(data)
            yield start, body, at


def _inflated_size(data: bytes, start: int, budget: int) -> int:
    """How many bytes the Flate stream at `start` inflates to, counted up to `budget` + 1
    (0 where it is not a Flate stream)."""
    inflater = zlib.decompressobj()
    size = 0
    try:
        for offset in range(start, len(data), _INFLATE_CHUNK):
            piece = data[offset : offset + _INFLATE_CHUNK]
            while piece and size <= budget and not inflater.eof:
                size += len(inflater.decompress(piece, _INFLATE_CHUNK))
                piece = inflater.unconsumed_tail
            if size > budget or inflater.eof:
                break
    except zlib.error:
        pass  # another filter, or the stream's garbage: pdfium's to judge
    return size


_NO_PAGES = re.compile(rb"/Count\s*0\b")
_SOME_PAGES = re.compile(rb"/Count\s*[1-9]")


def _open(data: bytes, name: str, password: str | None) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        # pdfium's last-error is process-wide and not always reset: trust it only where the
        # bytes agree (an encrypted file has an /Encrypt dictionary)
        code = getattr(exc, "err_code", None) if b"/Encrypt" in data else None
        if code is None and _NO_PAGES.search(data) and not _SOME_PAGES.search(data):
            raise _reject(
                f"{name} is a PDF with no pages",
                "empty",
                "export the paper again; this file has nothing in it",
            ) from None
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            if password:
                raise _reject(
                    f"{name} is password-protected and the password given is wrong",
                    "encrypted",
                    "check the password",
                ) from None
            raise _reject(
                f"{name} is password-protected",
                "encrypted",
                "pass its password (`shipyard extract --password`, or the "
                "SHIPYARD_PDF_PASSWORD environment variable), or save an "
                "unprotected copy (qpdf --decrypt)",
            ) from None
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise _reject(
                f"{name} uses an encryption scheme that cannot be opened",
                "encrypted",
                "save an unprotected copy (qpdf --decrypt)",
            ) from None
        raise _reject(
            f"{name} is damaged or incomplete: it cannot be opened as a PDF",
            "damaged",
            "download it again; if it persists, re-save it with a PDF tool (qpdf, or print to PDF)",
        ) from None


# --- language and paper-likeness ----------------------------------------------------------

# --- the stage ----------------------------------------------------------------------------


def _pages(document: pdfium.PdfDocument, name: str) -> Iterator[PageLines]:
    for index in range(len(document)):
        try:
            page = document[index]
            try:
                lines = read_page(page, index + 1)
            finally:
                page.close()
        except pdfium.PdfiumError:
            raise _reject(
                f"{name} is damaged: page {index + 1} cannot be read",
                "damaged",
                "download it again, or re-save it with a PDF tool",
            ) from None
        yield lines


def extract_paper(
    pdf: Path, settings: SourceConfig, *, password: str | None = None, name: str | None = None
) -> Paper:
    """Read a paper PDF into a `Paper`, or raise `SourceRejected` saying why it cannot be used.

    `name` is what messages call the file (default: the path's name), for a file read from
    the artifact store under its hash.
    """
    name = name or pdf.name
    data = _read_bytes(pdf, settings, name)
    sha256 = hashlib.sha256(data).hexdigest()
    if data.rfind(b"%%EOF") < 0:
        raise _reject(
            f"{name} is damaged or incomplete: it ends before the PDF's end marker "
            "(%%EOF), so pages are missing",
            "damaged",
            "download it again; the copy was cut short",
        )
    _check_structure(data, settings, name)
    with _PDFIUM:
        document = _open(data, name, password)
        try:
            page_count = len(document)
            if page_count == 0:
                raise _reject(
                    f"{name} is a PDF with no pages",
                    "empty",
                    "export the paper again; this file has nothing in it",
                )
            if page_count > settings.max_pages:
                raise _reject(
                    f"{name} has {page_count} pages, over the limit of {settings.max_pages}",
                    "too-long",
                    f"raise podcast.source.max_pages in {_CONFIG_FILE} to accept it",
                )
            raw_pages = list(_pages(document, name))
            metadata = {
                key: str(document.get_metadata_value(key) or "").strip()
                for key in ("Title", "Author")
            }
        finally:
            document.close()
    return _paper_from_pages(raw_pages, settings, sha256=sha256, name=name, metadata=metadata)


def _paper_from_pages(
    raw_pages: list[PageLines],
    settings: SourceConfig,
    *,
    sha256: str,
    name: str,
    metadata: dict[str, str],
) -> Paper:
    # Characters that carry text: leaders and form blanks ("Name: ______") are not garbage.
    raw_chars = sum(
        len(_LEADERS.sub("", ln.text)) - ln.text.count(" ") for p in raw_pages for ln in p.lines
    )
    if raw_chars < 20:
        raise _reject(
            f"{name} has no extractable text: its pages are images (a scan)",
            "no-text",
            "run OCR on it first (e.g. `ocrmypdf in.pdf out.pdf`)",
        )
    garbage = 0
    pages: list[PageLines] = []
    for page in raw_pages:
        lines = []
        for line in page.lines:
            text, dropped = clean_line(line.text)
            garbage += dropped
            if text:
                marked = clean_line(line.marked)[0] if line.marked else ""
                if text != line.text or marked != line.marked:
                    line = replace(line, text=text, marked=marked)
                lines.append(line)
        pages.append(replace(page, lines=lines))
    letters = sum(map(str.isalpha, "".join(ln.text for p in pages for ln in p.lines)))
    if letters < 0.3 * raw_chars or letters < 100:
        raise _reject(
            f"{name}'s text layer is unreadable: {100 - 100 * letters // raw_chars}% of it is "
            "extraction garbage (fonts without a character map)",
            "no-text",
            "run OCR on it (e.g. `ocrmypdf --force-ocr in.pdf out.pdf`) to rebuild the text",
        )
    layout = Layout(pages)
    pages, furniture = strip_page_furniture(pages, layout.body_size)
    front = read_front_matter(pages, layout, metadata, furniture, name)
    extracted = structure(pages, layout, front.title_lines)
    body = "\n\n".join([extracted.abstract, *(s.text for s in extracted.sections)])
    warnings = list(extracted.warnings)
    if not front.title_lines:
        warnings.append(
            f"no title on the first page; using {front.title!r} from {front.matter.title_source}"
        )
    if garbage > 0.02 * raw_chars:
        warnings.append(
            f"{garbage} characters of extraction garbage removed "
            "((cid:N) codes, U+FFFD, private-use glyphs)"
        )

    placeholder = _PLACEHOLDER.search(body)
    if placeholder is not None:
        raise _reject(
            f"{name} is placeholder text ({placeholder.group(0)!r}), not a paper",
            "not-a-paper",
            "give the paper itself; a template's filler text has nothing to discuss",
        )
    language, unclear = paper_language(
        body or " ".join(ln.text for p in pages for ln in p.lines), settings, name
    )
    warnings += unclear

    signals = paper_signals(extracted, body)
    if len(signals) < 2:
        found = ", ".join(signals) or "none of them"
        message = (
            f"{name} does not look like a research paper: it lacks an abstract, "
            f"references, section headings and citations (found: {found})"
        )
        # Headings are read in the languages with a phrasebook; in another, a missing heading
        # says nothing, so the language decides (the flow refuses what no writer writes).
        if settings.not_a_paper == "refuse" and phrasebook(language) is not None:
            raise _reject(
                message,
                "not-a-paper",
                f'set podcast.source.not_a_paper = "flag" in {_CONFIG_FILE} to go on and '
                "leave the call to the reviewer",
            )
        warnings.append(message)

    words = len(body.split())
    if words < SHORT_PAPER_WORDS:
        warnings.append(
            f"short: {words} words (an extended abstract or a note): the episode will be "
            "short too, not padded"
        )
    return Paper(
        source_sha256=sha256,
        title=front.title,
        authors=front.authors,
        abstract=extracted.abstract,
        sections=extracted.sections,
        captions=extracted.captions,
        references=extracted.references,
        language=language,
        stats=PaperStats(pages=len(raw_pages), words=words),
        warnings=warnings,
        front=front.matter,
    )


def paper_language(text: str, settings: SourceConfig, name: str) -> tuple[str, list[str]]:
    """The language a paper is written in, and a warning when that is unclear; refused
    (code "language") when `podcast.source.languages` lists others."""
    language, confidence = detect_language(text)
    taken = settings.languages
    if taken and language not in taken and confidence >= 0.9:
        supported = ", ".join(language_name(c) for c in taken)
        raise _reject(
            f"{name} is written in {language_name(language)}; this show takes {supported}",
            "language",
            f"add '{language}' to podcast.source.languages in {_CONFIG_FILE}, or leave the "
            "list empty to take papers in any language",
        )
    if confidence >= 0.9:
        return language, []
    unclear = [f"language unclear (best guess {language}, {confidence:.0%})"]
    return (taken[0] if taken and language not in taken else language), unclear


# --- isolation ----------------------------------------------------------------------------


def _child_main(request: dict[str, Any]) -> None:
    """The isolated child's work (`extract_paper_isolated`): its answer is one JSON line on
    the descriptor that was its stdout; what C code prints goes to stderr instead."""
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    with answer:
        json.dump(_extracted(request), answer)


def _extracted(request: dict[str, Any]) -> tuple[str, Any]:
    source = SourceConfig.model_validate(request["settings"])
    limit = source.max_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    pdf, name = Path(request["pdf"]), request["name"]
    try:
        if request["latex"]:
            from shipyard_podcast.source.latex import paper_from_latex

            # fetched within [fetch]'s limits; read in memory within max_inflated_bytes
            paper = paper_from_latex(pdf.read_bytes(), source, name=name or pdf.name)
        else:
            paper = extract_paper(pdf, source, password=request["password"], name=name)
        return "paper", paper.model_dump_json()
    except SourceRejected as rejected:
        return "rejected", (rejected.message, rejected.code, rejected.hint or "")
    except MemoryError:
        return "memory", ""
    except Exception:  # noqa: BLE001 - a bug: carried to the parent with its traceback
        return "bug", traceback.format_exc()


# The child's whole program: the parent's import path, then `_child_main` on its request.
# Not multiprocessing's spawn, which runs the parent's main script again in the child (for
# `shipyard`, its command line: 0.35 s a paper), and a library user's unguarded one with it.
_CHILD = (
    "import json, sys\n"
    "request = json.loads(sys.stdin.readline())\n"
    "sys.path[:] = request['path']\n"
    "from shipyard_podcast.source.extract import _child_main\n"
    "_child_main(request)\n"
)


def extract_paper_isolated(
    pdf: Path,
    settings: SourceConfig,
    *,
    password: str | None = None,
    name: str | None = None,
    latex: bool = False,
) -> Paper:
    """`extract_paper` (`paper_from_latex` with `latex`: the file is a LaTeX source) in a
    child process, for input nobody vouches for.

    pdfium is C code: a file crafted to crash, hang or exhaust it would take the caller down
    with it. The child's address space is capped at `settings.max_memory_mb`: running out
    becomes `SourceRejected` (code "too-large"), a crash one with code "damaged", and a run
    past `settings.timeout_seconds` a `StepTimeout`; the parent is never at risk. Starting
    the child costs about a third of a second.
    """
    request = {
        "path": sys.path,
        "pdf": str(pdf),
        "settings": settings.model_dump(mode="json"),
        "password": password,  # on a pipe, never on the command line
        "name": name,
        "latex": latex,
    }
    label = name or pdf.name
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as child:
        try:
            answer, _ = child.communicate(
                json.dumps(request).encode() + b"\n", timeout=settings.timeout_seconds
            )
        except subprocess.TimeoutExpired:
            raise StepTimeout(
                f"extracting {label} ran past {settings.timeout_seconds:g} s",
                hint="a very large or malformed PDF; raise podcast.source.timeout_seconds "
                "or lower podcast.source.max_pages",
            ) from None
        finally:
            if child.poll() is None:
                child.kill()
    if child.returncode != 0 or not answer:
        raise _reject(
            f"{label} crashed the PDF engine (exit code {child.returncode}); it may have "
            f"run out of its {settings.max_memory_mb} MB",
            "damaged",
            "re-save it with a PDF tool (qpdf, or print to PDF); if it is a large real paper, "
            "raise podcast.source.max_memory_mb",
        )
    kind, payload = json.loads(answer)
    if kind == "paper":
        return Paper.model_validate_json(payload)
    if kind == "rejected":
        message, code, hint = payload
        raise _reject(message, code, hint)
    if kind == "memory":
        raise _reject(
            f"{label} is too large to extract within {settings.max_memory_mb} MB of memory",
            "too-large",
            f"if it is a real paper, raise podcast.source.max_memory_mb in {_CONFIG_FILE}",
        )
    raise RuntimeError(f"extracting {label} failed in the child process:\n{payload}")
