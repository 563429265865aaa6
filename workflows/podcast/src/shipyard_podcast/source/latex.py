"""A paper from its LaTeX source (arXiv's e-print), where the authors state the front matter
exactly: `\\title`, `\\author` and the `abstract` environment, with the body's sections.

    paper_from_latex(source: bytes, settings, name=...) -> Paper

The source is a gzip'd tar of the submission's files, a gzip'd single file, or a plain tar;
it is read in memory, never unpacked to disk, within `podcast.source.max_inflated_bytes`
(a name in it cannot point anywhere). The main file is the one that begins a document;
`\\input` and `\\include` are followed within the archive; macros defined without arguments
(`\\newcommand{\\name}{text}`, `\\def\\name{text}`) are expanded; pylatexenc turns the rest to
text: inline mathematics kept as text as the checks read it (`$n=5$` -> "n=5"), displayed
equations left out, figures and tables as their captions, citations and cross-references
dropped. A source that cannot be read this way is refused (`SourceRejected`, code
"not-latex"), and the caller falls back to the PDF, saying why.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

from pylatexenc import latex2text, latexwalker, macrospec

from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.models import FrontMatter, Paper, PaperStats, Section
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source.extract import SHORT_PAPER_WORDS, paper_language

__all__ = ["paper_from_latex"]

_MAX_FILES = 2_000  # members of an archive read at most
_MAX_DEPTH = 8  # \input within \input...

_COMMENT = re.compile(r"(?<!\\)%[^\n]*")
_INPUT = re.compile(r"\\(?:input|include)\s*\{([^{}]+)\}|\\input\s+([^\s{}\\]+)")
_DEFINITION = re.compile(
    r"\\(?:(?:re)?newcommand|providecommand)\*?\s*\{?\\([A-Za-z]+)\}?\s*(?=\{)"
    r"|\\def\s*\\([A-Za-z]+)\s*(?=\{)"
)
_DISPLAY_MATH = re.compile(
    r"\\\[.*?\\\]|\$\$.*?\$\$"
    r"|\\begin\{(equation|align|eqnarray|gather|multline|displaymath|flalign)(\*?)\}"
    r".*?\\end\{\1\2\}",
    re.S,
)
_SECTION = re.compile(r"\\section\*?\s*(?:\[[^\]]*\])?\s*(?=\{)")
_SUBSECTION = re.compile(r"\\(?:sub)+section\*?\s*(?:\[[^\]]*\])?\s*(?=\{)|\\paragraph\*?\s*(?=\{)")
_END_OF_BODY = re.compile(
    r"\\appendix\b|\\bibliography\s*\{|\\begin\{thebibliography\}|\\printbibliography"
    r"|\\begin\{acks?\}|\\section\*?\s*\{\s*(?:acknowledge?ments?|references)\s*\}",
    re.I,
)
_FLOATS = re.compile(r"\\begin\{(figure|table|wrapfigure|algorithm)(\*?)\}(.*?)\\end\{\1\2\}", re.S)
_BIBITEM = re.compile(r"\\bibitem\s*(?:\[[^\]]*\])?\s*\{[^{}]*\}")

# Macros whose arguments are no part of the spoken text (their specs: the walker reads their
# arguments, the text leaves them out).
_DROPPED = {
    "cite": "*[[{",
    "citep": "*[[{",
    "citet": "*[[{",
    "citealp": "*[[{",
    "citeauthor": "*[[{",
    "citeyear": "*[[{",
    "nocite": "{",
    "ref": "{",
    "eqref": "{",
    "autoref": "{",
    "cref": "*{",
    "Cref": "*{",
    "pageref": "{",
    "label": "{",
    "footnote": "[{",
    "thanks": "{",
    "inst": "{",
    "orcidID": "{",
    "orcid": "{",
    "email": "{",
    "affiliation": "[{",
    "affil": "[{",
    "institute": "{",
    "address": "{",
    "IEEEauthorblockA": "{",
    "textsuperscript": "{",
    "footnotemark": "[",
    "corref": "{",
    "fnref": "{",
    "tnoteref": "{",
    "ead": "[{",
    "includegraphics": "*[{",
    "vspace": "*{",
    "hspace": "*{",
    "url": "{",
    "keywords": "{",
    "bibliographystyle": "{",
}
_DROPPED_ENVIRONMENTS = (
    "equation",
    "equation*",
    "align",
    "align*",
    "eqnarray",
    "eqnarray*",
    "gather",
    "gather*",
    "multline",
    "multline*",
    "displaymath",
    "figure",
    "figure*",
    "table",
    "table*",
    "tabular",
    "algorithm",
    "lstlisting",
    "verbatim",
    "thebibliography",
)
# Words that mark a line of an author block as an affiliation or an address, not a name.
_NOT_A_NAME = re.compile(
    r"\b(univ|institut|department|dept|laborator|lab\b|school|college|center|centre|"
    r"faculty|inc\b|ltd|gmbh|corporation|research|academy|hospital|@|www\.)",
    re.I,
)
_NAME_WORD = re.compile(r"[A-ZÀ-ÖØ-ÞĀ-Ž][\w'’.\-]*|(?:van|von|de|der|den|da|di|del|du|dos|la|le)")


def paper_from_latex(source: bytes, settings: SourceConfig, *, name: str) -> Paper:
    """The `Paper` of a LaTeX source (arXiv's e-print bytes), or `SourceRejected` (code
    "not-latex", "too-large") saying why it cannot be read."""
    files = _files(source, settings, name)
    main = _main_file(files, name)
    whole = _with_inputs(files[main], files, 0, settings.max_inflated_bytes, name)
    text = _expand_macros(whole, settings, name)
    stated = _argument_of("title", text) or _argument_of("icmltitle", text) or ""
    title = " ".join(_text(stated).split())  # a title broken over lines (\\) is one line
    authors = _authors(text)
    abstract_source = _environment("abstract", text) or _argument_of("abstract", text) or ""
    begun = text.find("\\begin{document}")
    body = text[begun + len("\\begin{document}") :] if begun >= 0 else text
    body = body.split("\\end{document}")[0]
    captions = [_text(c) for f in _FLOATS.finditer(body) if (c := _argument_of("caption", f[3]))]
    body = _FLOATS.sub("\n\n", _DISPLAY_MATH.sub(" ", body))
    body = re.sub(r"\\begin\{abstract\}.*?\\end\{abstract\}", "", body, flags=re.S)
    ending = _END_OF_BODY.search(body)
    voiced = body[: ending.start()] if ending else body
    sections = _sections(voiced)
    abstract = _paragraphs(abstract_source)
    references = _references(body, files)
    spoken = "\n\n".join([abstract, *(s.text for s in sections)])
    if not any(map(str.isalpha, title)) or sum(map(str.isalpha, spoken)) < 100:
        missing = "\\title" if not any(map(str.isalpha, title)) else "abstract or \\section"
        raise _not_latex(f"{name}'s LaTeX source has no {missing} with words in it")
    language, warnings = paper_language(spoken, settings, name)
    words = len(spoken.split())
    if words < SHORT_PAPER_WORDS:
        warnings.append(
            f"short: {words} words (an extended abstract or a note): the episode will be "
            "short too, not padded"
        )
    return Paper(
        source_sha256=hashlib.sha256(source).hexdigest(),
        title=title,
        authors=authors,
        abstract=abstract,
        sections=sections,
        captions=captions,
        references=references,
        language=language,
        stats=PaperStats(pages=0, words=words),
        warnings=warnings,
        front=FrontMatter(
            title_source="the LaTeX source (\\title)",
            authors_source="the LaTeX source (\\author)" if authors else "",
            authors_confidence=1.0 if authors else 0.0,
            doubts=[] if authors else ["the LaTeX source names no authors that could be read"],
        ),
    )


# --- the archive ---------------------------------------------------------------------------


def _files(source: bytes, settings: SourceConfig, name: str) -> dict[str, str]:
    """The source's TeX files by name (a single file is "main.tex"), decoded, in memory."""
    limit = settings.max_inflated_bytes
    data = source
    if data[:2] == b"\x1f\x8b":
        reader = gzip.GzipFile(fileobj=io.BytesIO(data))
        try:
            data = reader.read(limit + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise _not_latex(f"{name}'s source is a damaged gzip file ({exc})") from None
        if len(data) > limit:
            raise _too_large(name, limit)
    if data[257:262] != b"ustar":
        if data.startswith(b"%PDF-") or b"\\" not in data[:65536]:
            raise _not_latex(f"{name}'s source is not LaTeX (arXiv keeps only a PDF of it)")
        return {"main.tex": _decoded(data)}
    files: dict[str, str] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for n, member in enumerate(archive):
                if n >= _MAX_FILES:
                    break
                if not member.isfile() or not member.name.endswith((".tex", ".bbl", ".ltx")):
                    continue
                total += member.size
                if total > limit:
                    raise _too_large(name, limit)
                handle = archive.extractfile(member)
                if handle is not None:
                    files[_normal(member.name)] = _decoded(handle.read())
    except tarfile.TarError as exc:
        raise _not_latex(f"{name}'s source is a damaged tar archive ({exc})") from None
    if not files:
        raise _not_latex(f"{name}'s source holds no .tex file")
    return files


def _normal(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def _decoded(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _main_file(files: dict[str, str], name: str) -> str:
    """The file that begins the document (the largest, if several do)."""
    begins = [f for f, text in files.items() if "\\begin{document}" in _COMMENT.sub("", text)]
    if not begins:
        raise _not_latex(f"{name}'s source has no file that begins a document")
    return max(begins, key=lambda f: (len(files[f]), f))


def _with_inputs(text: str, files: dict[str, str], depth: int, limit: int, name: str) -> str:
    """`text` without comments, each `\\input`/`\\include` replaced by that file of the
    archive (a name that is not in it is dropped), `_MAX_DEPTH` deep and `limit` long at
    most (a file that includes itself twice would double at every depth)."""
    text = _COMMENT.sub("", text)
    if depth >= _MAX_DEPTH:
        return text

    def included(match: re.Match[str]) -> str:
        wanted = _normal((match[1] or match[2] or "").strip())
        for candidate in (wanted, f"{wanted}.tex"):
            if candidate in files:
                return _with_inputs(files[candidate], files, depth + 1, limit, name)
        return ""

    whole = _INPUT.sub(included, text)
    if len(whole) > limit:
        raise _too_large(name, limit)
    return whole


def _expand_macros(text: str, settings: SourceConfig, name: str) -> str:
    """Macros defined without arguments, expanded (three rounds: a macro may use another)."""
    definitions: dict[str, str] = {}
    for match in _DEFINITION.finditer(text):
        body, _ = _group(text, match.end())
        if body is not None and "#" not in body:
            definitions[match[1] or match[2]] = body
    if not definitions:
        return text
    pattern = re.compile(
        r"\\(" + "|".join(re.escape(d) for d in sorted(definitions, key=len, reverse=True)) + ")"
        r"(?![A-Za-z])"
    )
    for _ in range(3):
        expanded = pattern.sub(lambda m: definitions[m[1]], text)
        if expanded == text:
            break
        if len(expanded) > settings.max_inflated_bytes:
            raise _too_large(name, settings.max_inflated_bytes)
        text = expanded
    return text


# --- reading the parts ---------------------------------------------------------------------


def _group(text: str, start: int) -> tuple[str | None, int]:
    """The brace group at `start` (spaces skipped): its content and where it ends."""
    i = start
    while i < len(text) and text[i] in " \t\n":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None, start
    depth, j = 0, i
    while j < len(text):
        char = text[j]
        if char == "\\":
            j += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    return None, start


def _arguments_of(macro: str, text: str) -> list[str]:
    """Every `\\macro[optional]{argument}`'s argument."""
    found = []
    for match in re.finditer(rf"\\{macro}\*?\s*(?:\[[^\]]*\])?", text):
        argument, _ = _group(text, match.end())
        if argument is not None:
            found.append(argument)
    return found


def _argument_of(macro: str, text: str) -> str | None:
    arguments = _arguments_of(macro, text)
    return arguments[0] if arguments else None


def _environment(name: str, text: str) -> str | None:
    found = re.search(rf"\\begin\{{{name}\}}(.*?)\\end\{{{name}\}}", text, re.S)
    return found[1] if found else None


def _sections(voiced: str) -> list[Section]:
    """The body cut at each `\\section`: its heading and its paragraphs (a subsection's
    heading is left out, its text kept)."""
    voiced = _SUBSECTION.sub(lambda m: "\\shipyardheading", voiced)
    voiced = re.sub(r"\\shipyardheading\s*\{", "\n\n\\\\shipyarddrop{", voiced)
    cuts = list(_SECTION.finditer(voiced))
    pieces: list[tuple[str, str]] = []
    lead = voiced[: cuts[0].start()] if cuts else voiced
    lead = lead.replace("\\maketitle", "")
    if (lead_text := _paragraphs(lead)).strip():
        pieces.append(("", lead_text))
    for n, cut in enumerate(cuts):
        heading, after = _group(voiced, cut.end())
        end = cuts[n + 1].start() if n + 1 < len(cuts) else len(voiced)
        text = _paragraphs(voiced[after:end])
        if text.strip():
            pieces.append((_text(heading or ""), text))
    return [Section(heading=h, text=t, first_page=1, last_page=1) for h, t in pieces]


def _paragraphs(latex: str) -> str:
    """LaTeX as spoken paragraphs: its blank-line paragraphs, each on one line."""
    paragraphs = (re.sub(r"\s+", " ", _text(p)).strip() for p in re.split(r"\n\s*\n", latex))
    return "\n\n".join(p for p in paragraphs if len(p) > 1)


def _references(body: str, files: dict[str, str]) -> list[str]:
    bibliography = _environment("thebibliography", body)
    if bibliography is None:
        bbl = next((t for f, t in sorted(files.items()) if f.endswith(".bbl")), "")
        bibliography = _environment("thebibliography", bbl) or ""
    items = _BIBITEM.split(bibliography)[1:]
    return [text for item in items if (text := re.sub(r"\s+", " ", _text(item)).strip())]


def _authors(text: str) -> list[str]:
    """The names in `\\author` (and ICML's `\\icmlauthor`): affiliations, addresses, notes
    and markers left out."""
    names: list[str] = []
    for block in _arguments_of("author", text):
        block = re.sub(r"\$[^$]*\$", " ", block)
        for piece in re.split(r"\\(?:and|AND|And)\b", block):
            first_line = re.split(r"\\\\|\\newline\b", piece)[0]
            names += _names(_text(first_line))
    for block in _arguments_of("icmlauthor", text):
        names += _names(_text(block))
    return list(dict.fromkeys(names))


def _names(line: str) -> list[str]:
    found = []
    for part in re.split(r",|;|\band\b|&|\n", line):
        name = re.sub(r"[\d*†‡§¶∗]+", "", part).strip(" .")
        words = name.split()
        if (
            1 <= len(words) <= 6
            and not _NOT_A_NAME.search(name)
            and all(_NAME_WORD.fullmatch(w) for w in words)
            and any(w[0].isupper() for w in words)
        ):
            found.append(" ".join(words))
    return found


# --- LaTeX to text -------------------------------------------------------------------------


@cache
def _converter() -> tuple[Any, Callable[[Any], str]]:
    walker_context = latexwalker.get_default_latex_context_db()
    walker_context.add_context_category(
        "shipyard",
        prepend=True,
        macros=[macrospec.MacroSpec(m, args) for m, args in _DROPPED.items()]
        + [macrospec.MacroSpec("shipyarddrop", "{")],
    )
    text_context = latex2text.get_default_latex_context_db()
    text_context.add_context_category(
        "shipyard",
        prepend=True,
        macros=[latex2text.MacroTextSpec(m, simplify_repl="") for m in [*_DROPPED, "shipyarddrop"]],
        environments=[
            latex2text.EnvironmentTextSpec(e, simplify_repl="") for e in _DROPPED_ENVIRONMENTS
        ],
    )
    converter = latex2text.LatexNodes2Text(latex_context=text_context, math_mode="text")
    return walker_context, converter.nodelist_to_text


def _text(latex: str) -> str:
    """LaTeX as plain text (pylatexenc), spaces as a reader would say them."""
    context, to_text = _converter()
    try:
        nodes, _, _ = latexwalker.LatexWalker(
            latex, latex_context=context, tolerant_parsing=True
        ).get_latex_nodes()
        said = to_text(nodes)
    except (latexwalker.LatexWalkerError, RecursionError, IndexError):
        said = re.sub(r"\\[A-Za-z]+\*?|[{}]", " ", latex)
    said = re.sub(r"[ \t\u00a0]+", " ", said.replace("~", " "))
    return re.sub(r" +(?=[.,;:!?)])", "", said).strip()  # where a citation was


def _not_latex(message: str) -> SourceRejected:
    return SourceRejected(message, code="not-latex", hint="the PDF is read instead; nothing to do")


def _too_large(name: str, limit: int) -> SourceRejected:
    return SourceRejected(
        f"{name}'s source inflates past {limit:,} bytes",
        code="too-large",
        hint="raise podcast.source.max_inflated_bytes if it is a real paper",
    )
