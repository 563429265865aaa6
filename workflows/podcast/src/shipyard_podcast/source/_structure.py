"""A paper's structure from its lines: title, authors, abstract, sections, captions,
references, and what is left out of the voiced text.

The input is the pages' lines in reading order with running headers removed (`_pdftext`);
the rules read typography (size, weight, position) and wording (numbering, usual section
names, "Abstract", "[1]"), never a model.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field, replace

from shipyard_podcast.models import Section
from shipyard_podcast.source._pdftext import Line, PageLines
from shipyard_podcast.source._textclean import (
    SOFT_HYPHEN,
    HyphenJoiner,
    is_symbol_soup,
    letter_share,
)

__all__ = ["AFFILIATION", "Extracted", "Layout", "paper_signals", "structure"]

_NUMBERED = re.compile(
    r"^(?:(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?)|(?:[IVX]{1,6}\.)|(?:[A-H]\.(?:\d{1,2}\.?)?))\s+"
    r"(?=[A-Z])"
)
_KNOWN_HEADINGS = frozenset(
    {
        "abstract",
        "introduction",
        "related work",
        "related works",
        "background",
        "method",
        "methods",
        "methodology",
        "approach",
        "results",
        "discussion",
        "conclusion",
        "conclusions",
        "future work",
        "conclusions and future work",
        "conclusion and future work",
        "summary",
        "evaluation",
        "experiments",
        "experimental results",
        "experimental setup",
        "acknowledgments",
        "acknowledgements",
        "acknowledgment",
        "acknowledgement",
        "references",
        "bibliography",
        "literature cited",
        "works cited",
        "appendix",
        "appendices",
        "limitations",
        "contents",
        "table of contents",
        "materials and methods",
        "data",
        "implementation",
        "analysis",
        "preliminaries",
        "motivation",
        "overview",
        "references and notes",
        "supplementary material",
        "supplemental material",
    }
)
_REFERENCES = re.compile(
    r"^(?:references|bibliography|literature cited|works cited|references and notes)$"
)
_APPENDIX = re.compile(r"^(?:appendix|appendices|supplementary material|supplemental material)\b")
_ABSTRACT_LABEL = re.compile(r"^\s*(?:abstract|summary)\b\s*[.:—–-]?\s*", re.I)
_FRONT_STOP = re.compile(
    r"^(?:keywords?|key\s*words|index terms|categories and subject descriptors|ccs concepts|"
    r"general terms|acm reference format|arxiv e-?print|pacs|jel|msc)\b",
    re.I,
)
_CAPTION_WORD = (
    r"^(?:Fig\.?|FIG\.?|Figure|FIGURE|Table|TABLE|Tab\.|Algorithm|Listing)"
    r"\s*[\dIVX]+[a-z]?"
)
_CAPTION = re.compile(_CAPTION_WORD + r"\s*[.:|]")
_CAPTION_BARE = re.compile(_CAPTION_WORD + r"\s+[A-Z]")  # "Figure 1 Steps in...": set apart
_REF_MARKER = re.compile(r"^\s*(?:\[\d{1,3}\]|\d{1,3}\.\s)")
_NUMBERED_LIST_START = re.compile(r"^\s*\[1\]")
_BRACKET_MARKER = re.compile(r"^\s*\[\d{1,3}\]")
_TOC_LINE = re.compile(r"\s\.?\s*\d{1,3}$")
# Words that mark a line as an institution, an address or a date stamp, not prose or names.
AFFILIATION = re.compile(
    r"universi|institut|d[eé]part[ae]?ment|dept\b|laborat|\blab\b|school|college|facult|hospital|"
    r"clinic|cent(?:er|re|ro)\b|academ|\binc\b|\bltd\b|gmbh|corporation|company|research|"
    r"ministr|fachbereich|google|microsoft|facebook|e-?mail|@|http|www\.|received|accepted|"
    r"published|\bdoi\b|street|avenue|road|\bstr\.|\bp\.?o\.? box|\bcedex\b",
    re.I,
)
_CITATION = re.compile(
    r"\[\d{1,3}(?:\s*[,–-]\s*\d{1,3})*\]|\([A-Z][\w'-]+(?: et al\.)?,? (?:19|20)\d\d[a-z]?\)|"
    r"\bet al\.",
)


@dataclass
class _Block:
    """A heading and the lines under it, before they become a Section."""

    heading: str
    kind: str  # "front", "body", "references", "appendix", "contents"
    lines: list[Line] = field(default_factory=list)
    style: str = ""  # how the heading was recognised: "numbered", "named", "styled"
    heading_line: Line | None = None


def _continues_heading(block: _Block, line: Line, layout: Layout) -> bool:
    """A heading set over two lines: the same type, close below, not ended by punctuation."""
    first = block.heading_line
    if first is None or block.heading[-1:] in ".:!?" or len(line.text.split()) > 10:
        return False
    same_type = (
        abs(first.size - line.size) < 0.3
        and first.bold == line.bold
        and first.text.isupper() == line.text.isupper()
    )
    return (
        same_type
        and (first.bold or first.text.isupper() or first.size > layout.body_size)
        and _same_paragraph_pitch(first, line)
        and line.page == first.page
    )


def _normal_heading(text: str) -> str:
    text = _NUMBERED.sub("", text + " ").strip() if _NUMBERED.match(text + " ") else text
    return re.sub(r"[\s.:]+$", "", text).strip().lower()


class Layout:
    """Document-wide measurements that decide what a line is."""

    def __init__(self, pages: list[PageLines]) -> None:
        sizes: dict[float, int] = {}
        for page in pages:
            for line in page.lines:
                key = round(line.size * 2) / 2
                sizes[key] = sizes.get(key, 0) + len(line.text)
        self.body_size = max(sizes, key=lambda s: sizes[s]) if sizes else 10.0
        self.right_edge: dict[tuple[int, int], float] = {}
        self.left_edge: dict[tuple[int, int], float] = {}
        for page in pages:
            for column in (0, 1, 2):
                lines = [ln for ln in page.lines if ln.column == column]
                if len(lines) >= 3:
                    self.right_edge[page.number, column] = statistics.median_high(
                        sorted(ln.x1 for ln in lines)[len(lines) // 2 :]
                    )
                    self.left_edge[page.number, column] = min(ln.x0 for ln in lines)

    def heading_kind(self, line: Line) -> str | None:
        """ "numbered", "named" (a usual section name), "styled" (bold or large), or None."""
        text = line.text
        if len(text) > 90:
            return None
        words = text.split()
        if not words or len(words) > 12 or text[-1] in ",;-" + SOFT_HYPHEN:
            return None
        if (
            line.size < self.body_size * 0.85
            or _CAPTION.match(text)
            or _CAPTION_BARE.match(text)
            or not text[0].isalnum()
        ):
            return None
        if letter_share(text) < 0.55:
            return None
        styled = (
            line.bold or line.size >= self.body_size * 1.08 or (text.isupper() and len(text) > 3)
        )
        name = _normal_heading(text)
        known = name in _KNOWN_HEADINGS or bool(_REFERENCES.match(name) or _APPENDIX.match(name))
        if _NUMBERED.match(text + " "):
            if (text.endswith(".") and len(words) >= 5) or AFFILIATION.search(text):
                return None  # a numbered sentence, not a heading
            short = line.x1 < self.right_edge.get((line.page, line.column), 1e9) - 20
            if styled or known or (short and len(words) <= 8):
                return "numbered"
            return None
        if known and text[0].isupper() and (styled or not text.endswith(".")):
            return "named"
        left = self.left_edge.get((line.page, line.column), 0)
        at_margin = line.x0 <= left + line.size
        right = self.right_edge.get((line.page, line.column))
        centred = (
            right is not None
            and line.x1 - line.x0 < 0.6 * (right - left)
            and abs((line.x0 + line.x1) / 2 - (left + right) / 2) < 2 * line.size
        )
        if (
            styled
            and (at_margin or centred)
            and not text.endswith(".")
            and text[0].isupper()
            and len(words) <= 10
        ):
            return "styled"
        return None

    def ends_short(self, line: Line) -> bool:
        edge = self.right_edge.get((line.page, line.column))
        return edge is not None and line.x1 < edge - 2.5 * max(line.size, 4.0)

    def indented(self, line: Line) -> bool:
        edge = self.left_edge.get((line.page, line.column))
        return edge is not None and line.x0 > edge + 0.7 * max(line.size, 4.0)


def _same_flow(prev: Line, line: Line) -> bool:
    """Same page and column; a full-width paragraph's short last line counts as a column
    line, so it may also just start where the line above started."""
    return prev.page == line.page and (
        prev.column == line.column or abs(prev.x0 - line.x0) < 1.5 * max(line.size, 4.0)
    )


def _same_paragraph_pitch(prev: Line, line: Line) -> bool:
    """Whether the baseline distance is ordinary leading (a paragraph gap or a display
    equation is larger; a line that goes back up is another column or block)."""
    pitch = prev.bottom - line.bottom
    return 0 < pitch <= 1.5 * max(prev.size, line.size, 4.0)


def _paragraphs(lines: list[Line], layout: Layout, joiner: HyphenJoiner) -> list[str]:
    """Lines joined into paragraphs, hyphenation repaired."""
    paragraphs: list[str] = []
    current = ""
    prev: Line | None = None
    for line in lines:
        text = line.text
        new_paragraph = prev is None
        if prev is not None and _same_flow(prev, line):
            new_paragraph = not _same_paragraph_pitch(prev, line)
        if (
            prev is not None
            and prev.text[-1:] in ".!?:"
            and (layout.ends_short(prev) or layout.indented(line))
        ):
            new_paragraph = True
        if new_paragraph and current:
            paragraphs.append(current)
            current = ""
        if not current:
            current = text
        elif current[-1] in (SOFT_HYPHEN, "-") and current[-2:-1].isalpha():
            current = joiner.join(current, text)
        else:
            current = f"{current} {text}"
        prev = line
    if current:
        paragraphs.append(current)
    return [p.replace(SOFT_HYPHEN, "-") for p in paragraphs]


def _split_references(lines: list[Line]) -> list[str]:
    entries: list[list[str]] = []
    bracketed = sum(bool(_BRACKET_MARKER.match(ln.text)) for ln in lines)
    marker = _BRACKET_MARKER if bracketed >= 2 else _REF_MARKER  # "[n]" wins over "n."
    marked = sum(bool(marker.match(ln.text)) for ln in lines) >= max(2, len(lines) // 6)
    lefts: dict[tuple[int, int], float] = {}
    for line in lines:
        key = (line.page, line.column)
        lefts[key] = min(lefts.get(key, 1e9), line.x0)
    hanging = any(ln.x0 > lefts[ln.page, ln.column] + 5 for ln in lines)
    for line in lines:
        if marked:
            starts = bool(marker.match(line.text))
        elif hanging:
            starts = line.x0 <= lefts[line.page, line.column] + 2
        else:
            starts = not entries or entries[-1][-1].endswith(".")
        if starts or not entries:
            entries.append([line.text])
        else:
            entries[-1].append(line.text)
    joined = []
    for parts in entries:
        text = ""
        for part in parts:
            if text.endswith((SOFT_HYPHEN, "-")):
                text = text[:-1] + ("-" if text.endswith("-") else "") + part
            else:
                text = f"{text} {part}".strip()
        joined.append(text.replace(SOFT_HYPHEN, "-"))
    return [e for e in joined if len(e) > 3]


@dataclass
class Extracted:
    abstract: str
    sections: list[Section]
    captions: list[str]
    references: list[str]
    warnings: list[str]
    headings: int  # body headings: numbered, conventionally named, or one recurring style
    abstract_labelled: bool
    heading_names: list[str] = field(default_factory=list)  # the body's, normalised
    equations: int = 0  # display equations left out of the voiced text


def _heading_block(line: Line, style: str, current: _Block) -> _Block | None:
    """The block a heading opens, or None where it only repeats the references heading."""
    name = _normal_heading(line.text)
    if _REFERENCES.match(name):
        if current.kind == "references":
            return None
        kind = "references"
    elif _APPENDIX.match(name) or current.kind in ("references", "appendix"):
        kind = "appendix"  # whatever follows the references is not voiced either
    elif name in ("contents", "table of contents"):
        kind = "contents"
    elif name == "abstract" or _FRONT_STOP.match(name):
        kind = "front"  # abstract, keywords, subject categories: not the body
    else:
        kind = "body"
    return _Block(line.text, kind, style=style, heading_line=line)


def _follow_the_type(blocks: list[_Block], current: _Block, line: Line, body_size: float) -> _Block:
    """Where a reference list set in small type sits beside the body (the list starts at the
    foot of one column, the text goes on in the next), a line goes with the block whose type
    it shares: body-size prose resumes the last body block, a small `[n]` entry the
    references. The block taken up moves to the end of the list."""
    references = next((b for b in reversed(blocks) if b.kind == "references" and b.lines), None)
    if references is None:
        return current
    sizes = sorted(ln.size for ln in references.lines)
    reference_size = sizes[len(sizes) // 2]
    if reference_size > body_size - 0.6:
        return current  # references in body type: nothing to tell them apart by
    target = None
    last = current.lines[-1] if current.lines else None
    if (
        current is references
        and last is not None
        and abs(line.size - body_size) < 0.3
        and (line.page, line.column) != (last.page, last.column)
        and not _BRACKET_MARKER.match(line.text)
    ):
        target = next((b for b in reversed(blocks) if b.kind == "body"), None)
    elif (
        current is not references
        and _BRACKET_MARKER.match(line.text)
        and abs(line.size - reference_size) < 0.3
    ):
        target = references
    if target is None:
        return current
    blocks.remove(target)
    blocks.append(target)
    return target


_EQUATION = re.compile("[=<>≤≥∝≈∼≡]")
# A table row: text ending in two or more numbers ("Path mismatch 38 0 2").
_TABLE_ROW = re.compile(r"\S\s+[-+−]?\d[\d.,%]*(?:\s+[-+−]?\d[\d.,%]*)+\s*$")


def _in_table(line: Line, style: str | None, stream: list[Line], index: int) -> bool:
    """Whether a line belongs to a table: a row next to another row, or a styled (bold)
    header line with a row under it."""

    def row(at: int) -> bool:
        return 0 <= at < len(stream) and bool(_TABLE_ROW.search(stream[at].text))

    if style == "styled":
        return row(index + 1)
    return row(index) and (row(index - 1) or row(index + 1))


def _blocks(stream: list[Line], title_lines: list[Line], layout: Layout) -> list[_Block]:
    """The line stream cut at headings into front matter, body, references and the rest."""
    blocks: list[_Block] = [_Block("", "front")]
    titles = {id(ln) for ln in title_lines}  # the stream's own lines: by identity, not value
    in_front = True
    unheaded_references = False
    label = next(
        (ln for ln in stream[:80] if ln.page == 1 and _ABSTRACT_LABEL.match(ln.text)), None
    )
    for index, line in enumerate(stream):
        if id(line) in titles:
            continue
        if (
            label is not None
            and line.page == 1
            and line.middle > label.top
            and line.column != label.column
            and abs(line.size - layout.body_size) > 0.6
        ):
            blocks[0].lines.append(line)  # names and affiliations beside the abstract
            continue
        current = blocks[-1]
        if current.kind == "contents":
            if _TOC_LINE.search(line.text):
                continue
            current = _Block("", "body")
            blocks.append(current)
        style = layout.heading_kind(line)
        if style == "styled" and in_front:
            style = None  # before the first real heading, large type is names and titles
        following = stream[index + 1] if index + 1 < len(stream) else None
        if (
            style
            and style != "named"
            and following is not None
            and (
                following.page == line.page
                and following.column == line.column
                and following.text[:1].islower()
                and _same_paragraph_pitch(line, following)
            )
        ):
            style = None  # a bold or numbered sentence start ("2. No dependencies: ...")
        if current.kind == "body" and _in_table(line, style, stream, index):
            continue  # a table's header row and its rows of numbers are not prose
        if (
            current.heading
            and not current.lines
            and style in (None, "styled")
            and _continues_heading(current, line, layout)
        ):
            current.heading += " " + line.text
            continue
        if style is None:
            current = _follow_the_type(blocks, current, line, layout.body_size)
        if style and not (current.kind == "references" and _REF_MARKER.match(line.text)):
            in_front = False
            opened = _heading_block(line, style, current)
            if opened is not None:
                blocks.append(opened)
            continue
        if (
            current.kind == "body"
            and not unheaded_references
            and _NUMBERED_LIST_START.match(line.text)
            and any(re.match(r"^\s*\[2\]", ln.text) for ln in stream[index + 1 : index + 8])
        ):
            current = _Block("References", "references")  # a list with no heading
            blocks.append(current)
            unheaded_references = True
        if current.kind == "appendix" and _BRACKET_MARKER.match(line.text):
            references = [b for b in blocks if b.kind == "references"]
            if references:  # the reference list resumes after a heading read out of order
                references[-1].lines.append(line)
                continue
        current.lines.append(line)
    return blocks


def _abstract(blocks: list[_Block], layout: Layout) -> tuple[list[Line], bool]:
    """The abstract's lines and whether a label said so.

    A labelled abstract (an "Abstract" heading, or a line that starts with the word) runs to
    the keywords or the first section. Without a label, the first long prose paragraph of
    the front matter is taken; a paper with no headings at all then gets the rest of its
    front matter as its one body block.
    """
    front = blocks[0].lines
    heading = next(
        (b for b in blocks if b.kind == "front" and _normal_heading(b.heading) == "abstract"), None
    )
    at = next(
        (
            i
            for i, ln in enumerate(front)
            if _ABSTRACT_LABEL.match(ln.text)
            and (len(ln.text) > 12 or ln.text.strip(" .:").lower() == "abstract")
        ),
        None,
    )
    if heading is not None or at is not None:
        if heading is not None:
            lines = heading.lines
        else:
            assert at is not None
            rest = _ABSTRACT_LABEL.sub("", front[at].text, count=1)
            lines = [replace(front[at], text=rest)] if rest else []
            lines += front[at + 1 :]
        kept: list[Line] = []
        for line in lines:
            if _FRONT_STOP.match(line.text):
                break
            if line.size >= layout.body_size - 1.6 and not is_symbol_soup(line.text):
                kept.append(line)
        return kept, True
    has_body = any(b.kind == "body" for b in blocks)
    paragraphs = _paragraph_lines(front, layout)
    for i, group in enumerate(paragraphs):
        text = " ".join(ln.text for ln in group)
        if len(text.split()) >= 40 and not AFFILIATION.search(text[:80]):
            after = [ln for g in paragraphs[i + 1 :] for ln in g]
            if not has_body and after:
                blocks.insert(1, _Block("", "body", after))
            return group, False
    if not has_body and front:
        blocks.insert(1, _Block("", "body", front))
    return [], False


def _is_caption_start(line: Line, layout: Layout) -> bool:
    return bool(_CAPTION.match(line.text)) or (
        bool(_CAPTION_BARE.match(line.text))
        and (line.bold or abs(line.size - layout.body_size) > 0.6)
    )


def _section(
    block: _Block, layout: Layout, joiner: HyphenJoiner, captions: list[str]
) -> tuple[Section | None, int, int]:
    """A body block's voiced text as a Section (None when nothing is left to voice), and how
    many words of math, tables and footnotes were left out, and how many of those lines were
    display equations. Captions go to `captions`."""
    voiced: list[Line] = []
    caption: list[Line] = []
    dropped = equations = 0
    for line in block.lines:
        if caption:
            prev = caption[-1]
            if (
                line.page == prev.page
                and line.column == prev.column
                and _same_paragraph_pitch(prev, line)
                and not layout.ends_short(prev)
            ):
                caption.append(line)
                continue
            captions.append(" ".join(_paragraphs(caption, layout, joiner)))
            caption = []
        if _is_caption_start(line, layout):
            caption = [line]
        elif line.size < layout.body_size - 1.6 or is_symbol_soup(line.text):
            dropped += len(line.text.split())
            equations += bool(_EQUATION.search(line.text)) and is_symbol_soup(line.text)
        else:
            voiced.append(line)
    if caption:
        captions.append(" ".join(_paragraphs(caption, layout, joiner)))
    text = "\n\n".join(_paragraphs(voiced, layout, joiner))
    if not text:
        return None, dropped, equations
    heading = _NUMBERED.sub("", block.heading + " ").strip() if block.heading else ""
    return (
        Section(
            heading=heading or "Main text",
            text=text,
            first_page=min(ln.page for ln in voiced),
            last_page=max(ln.page for ln in voiced),
        ),
        dropped,
        equations,
    )


def structure(pages: list[PageLines], layout: Layout, title_lines: list[Line]) -> Extracted:
    """The body's structure; the title's lines (read by `_frontmatter`) are skipped."""
    warnings: list[str] = []
    stream = [ln for page in pages for ln in page.lines]
    joiner = HyphenJoiner(ln.text for ln in stream)
    blocks = _blocks(stream, title_lines, layout)
    _find_unnamed_references(blocks)
    abstract_lines, labelled = _abstract(blocks, layout)
    abstract = " ".join(_paragraphs(abstract_lines, layout, joiner))

    sections: list[Section] = []
    captions: list[str] = []
    references: list[str] = []
    dropped_words = appendix_words = equations = 0
    for block in blocks:
        if block.kind == "references":
            references += _split_references(block.lines)
        elif block.kind == "appendix":
            appendix_words += sum(len(ln.text.split()) for ln in block.lines)
        elif block.kind == "body":
            section, dropped, shown = _section(block, layout, joiner, captions)
            dropped_words += dropped
            equations += shown
            if section is not None:
                sections.append(section)
    if appendix_words:
        warnings.append(
            f"appendix and other text after the references cut from the voiced "
            f"text ({appendix_words} words)"
        )
    voiced_words = sum(len(s.text.split()) for s in sections)
    if dropped_words > 0.25 * max(voiced_words, 1):
        warnings.append(
            f"{dropped_words} words of math, tables or footnotes left out of the voiced text"
        )
    body = [b for b in blocks if b.kind in ("body", "references") and b.heading_line]
    headings = sum(1 for b in body if b.style in ("numbered", "named"))
    styles = Counter(
        (round(b.heading_line.size), b.heading_line.bold)
        for b in body
        if b.heading_line and b.style == "styled"
    )
    headings += max((n for n in styles.values() if n >= 3), default=0)
    return Extracted(
        abstract,
        sections,
        captions,
        references,
        warnings,
        headings,
        abstract_labelled=labelled,
        heading_names=[_normal_heading(b.heading) for b in blocks if b.heading],
        equations=equations,
    )


# A reference entry in any language: a year, and an author's initials or "et al."
_ENTRY_YEAR = re.compile(r"(?<!\d)(?:1[89]|20)\d\d[a-z]?(?!\d)")
_ENTRY_NAME = re.compile(r"\b[A-ZÀ-Þ][\w'’-]+,? (?:[A-ZÀ-Þ]\.\s?)+|\bet al\b|\b[A-ZÀ-Þ]{2,}[,;] ")


def _looks_like_references(lines: list[Line]) -> bool:
    """Whether a block's lines read as a reference list: most entries name authors by
    initials and carry a year, whatever the language of its heading."""
    entries = _split_references(lines[:60])
    if len(entries) < 3:
        return False
    cited = sum(bool(_ENTRY_YEAR.search(e) and _ENTRY_NAME.search(e)) for e in entries)
    return cited >= 0.6 * len(entries)


def _find_unnamed_references(blocks: list[_Block]) -> None:
    """A styled heading in another language ("Referencias", "Literatur") over a list that
    reads as references opens the references; what follows is not voiced either."""
    if any(b.kind == "references" for b in blocks):
        return
    for index, block in enumerate(blocks):
        if block.kind == "body" and block.style == "styled" and _looks_like_references(block.lines):
            block.kind = "references"
            for later in blocks[index + 1 :]:
                later.kind = "appendix"
            return


def _paragraph_lines(lines: list[Line], layout: Layout) -> list[list[Line]]:
    """Lines grouped into paragraphs by vertical gaps and short final lines."""
    groups: list[list[Line]] = []
    for line in lines:
        if groups:
            prev = groups[-1][-1]
            if (
                _same_flow(prev, line)
                and _same_paragraph_pitch(prev, line)
                and abs(prev.size - line.size) < 1.0
                and not (prev.text[-1:] in ".!?" and layout.ends_short(prev))
            ):
                groups[-1].append(line)
                continue
        groups.append([line])
    return groups


# The labels of a structured abstract, in the usual heading sets.
_STRUCTURED_WORDS = (
    r"aims?|objectives?|purpose|background|introduction|methods?|methodology|design|"
    r"materials and methods|setting|participants|results|findings|conclusions?|discussion|"
    r"interpretation|limitations"
)
# ... as paragraphs that open with a label ("Aim. ...", "Results: ...")
_STRUCTURED_LABEL = re.compile(r"(?:^|\n)\s*(" + _STRUCTURED_WORDS + r")\s*[.:]\s+[A-Z]", re.I)
_STRUCTURED_HEADING = re.compile(r"(" + _STRUCTURED_WORDS + r")", re.I)
# What research says of itself: "we propose", "this study tested", "our results show".
_CLAIM = re.compile(
    r"\b(?:we|this (?:paper|study|work|note|article|pilot(?: study)?)|our (?:study|results|"
    r"method|approach|analysis|experiments?))\s+(?:propose|present|show|shows|compare|compared|"
    r"find|found|measure|measured|test|tested|evaluate|evaluated|report|reported|ask|"
    r"introduce|describe|analy[sz]e|analy[sz]ed|demonstrate|investigate|investigated|"
    r"examine|examined|study|studied)\b",
    re.I,
)


def paper_signals(extracted: Extracted, body: str) -> list[str]:
    """What marks a text as research; a paper needs two. Short research (an extended abstract,
    a note, a structured abstract) has few of the classic ones, so the way a structured
    abstract is laid out and what research says of itself count too."""
    signals = []
    if extracted.abstract_labelled:
        signals.append("an abstract")
    if extracted.references:
        signals.append("references")
    if len(_CITATION.findall(body)) >= 3:
        signals.append("citations")
    if extracted.headings >= 2:
        signals.append("section headings")
    if extracted.captions:
        signals.append("figure or table captions")
    labels = {m.group(1).lower().rstrip("s") for m in _STRUCTURED_LABEL.finditer(body)}
    labels |= {
        name.rstrip("s") for name in extracted.heading_names if _STRUCTURED_HEADING.fullmatch(name)
    }
    if len(labels) >= 3:
        signals.append("a structured abstract")
    if _CLAIM.search(body):
        signals.append("research claims")
    if extracted.equations >= 2:
        signals.append("display equations")
    return signals
