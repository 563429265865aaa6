"""Front matter: what a paper is called and who wrote it, read from page one's layout.

The approach follows GROBID's header model, as rules rather than a trained model: page one's
lines above the body are read in printed order (rows top to bottom, left to right within a
row), and each is judged by typography and shape: the title is the block in the largest
type; an author line is one whose parts, split at commas and "and", all read as people's
names once markers are set apart (superscripts seen in the glyphs' geometry, footnote
symbols, "Member, IEEE"); an affiliation line names an institution or an e-mail. The PDF's
own metadata is a second witness, never the first: it is wrong on many real files.

Every field says where it came from and how sure the reading is (`FrontMatter`), so that an
uncertain one is flagged to the reviewer rather than spoken as fact.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shipyard_podcast.models import FrontMatter
from shipyard_podcast.source._pdftext import Line, PageLines
from shipyard_podcast.source._structure import AFFILIATION, Layout
from shipyard_podcast.source._textclean import letter_share

__all__ = ["Front", "read_front_matter"]

_ABSTRACT_START = re.compile(r"^\s*(?:abstract|summary)\b", re.I)
_HONORIFIC = re.compile(r"^(?:dr|prof|mr|ms|mrs|professor)\.?\s+", re.I)
_MEMBERSHIP = re.compile(
    r",?\s*\b(?:(?:senior|student|life|graduate student)\s+)?(?:member|fellow)\b"
    r"(?:\s*,?\s*(?:IEEE|ACM|SIAM|AAAI|OSA|APS))?",
    re.I,
)
# Degrees after a name ("Jane Roe, MD, PhD"): only where a separator or the line's end follows.
_DEGREES = re.compile(r",\s*(?:Ph\.?\s?D|M\.?D|M\.?Sc|B\.?Sc|MPH|RN|FRCS\w*)\.?(?=\s*(?:[,;^]|$))")
_SEPARATORS = re.compile(r"\^[^^]*\^|,|;|\band\b|\bAND\b|&|\bund\b|\bet\b|\s{3,}")
_MARK_SYMBOLS = re.compile(r"[∗*†‡§¶#⋆✉⊥♯♮]+|\(\s*\)|\s\(\w\)|\d+")
# Lower-case words inside a name ("Igor do Vale", "Ludwig van Beethoven").
_PARTICLES = frozenset(
    {"van", "von", "de", "der", "den", "da", "do", "dos", "das", "del", "della", "di", "du"}
    | {"la", "le", "ter", "ten", "zu", "af", "al", "bin", "ibn"}
)
_INITIAL = re.compile(r"^(?:[A-Z]\.(?:-?[A-Z]\.)*|[A-Z]\.?-[A-Z]\.?)$")
_DOI = re.compile(r"\b10\.\d{4,9}/[^\s\"<>]+")
_ARXIV = re.compile(r"\barXiv:\s?(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(v\d+)?", re.I)
_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20[0-4]\d)(?!\d)")
_COPYRIGHT = re.compile(r"©|\(c\)|^c \d{4}|copyright|licen[cs]e", re.I)
_DATE_LINE = re.compile(r"received|accepted|published|revised|recebido|aprovado|recibido", re.I)


@dataclass
class Front:
    """What the layout says, with the lines it used (the body skips the title's)."""

    title: str
    authors: list[str]
    matter: FrontMatter
    title_lines: list[Line] = field(default_factory=list)


def _normal(text: str) -> str:
    """For comparing: no case, accents, spacing or punctuation."""
    text = unicodedata.normalize("NFKD", text)
    return re.sub(r"[\W_]+", "", "".join(c for c in text if not unicodedata.combining(c))).lower()


def _rows(lines: list[Line]) -> list[Line]:
    """Lines in printed order: rows from the top, left to right within a row (an author
    grid reads across, while the body's reading order goes down each column)."""
    ordered: list[Line] = []
    row: list[Line] = []
    for line in sorted(lines, key=lambda ln: -ln.top):
        if row and line.middle < row[0].bottom:
            ordered += sorted(row, key=lambda ln: ln.x0)
            row = []
        row.append(line)
    return ordered + sorted(row, key=lambda ln: ln.x0)


# --- title --------------------------------------------------------------------------------


def _title_blocks(lines: list[Line], height: float) -> list[list[Line]]:
    """Runs of lines in one type (size and weight) set close together, in the upper part of
    the page; a wider gap or a change of type ends a run."""
    blocks: list[list[Line]] = []
    for line in lines:
        if line.middle < height * 0.4 or letter_share(line.text) < 0.6 or len(line.text) <= 3:
            if blocks and blocks[-1]:
                blocks.append([])
            continue
        if blocks and blocks[-1]:
            prev = blocks[-1][-1]
            if (
                abs(line.size - prev.size) <= 0.6
                and line.bold == prev.bold
                and 0 < prev.bottom - line.bottom <= 2.0 * max(prev.size, 4.0)
            ):
                blocks[-1].append(line)
                continue
        blocks.append([line])
    return [b for b in blocks if b]


def _block_text(block: list[Line]) -> str:
    text = " ".join((ln.marked or ln.text) for ln in block)
    text = re.sub(r"\^[^^]*\^", "", text)  # footnote markers on the title
    text = re.sub(r"\s*(?:\[\d{1,3}\]|[∗*†‡§¶]+)\s*$", "", text)
    return re.sub(r"\s+", " ", text).replace("\ufffe", "-").strip()


def _plausible_metadata_title(title: str) -> bool:
    lowered = title.lower()
    return (
        len(title.split()) >= 3
        and not re.search(r"\.(?:dvi|docx?|tex|pdf|ps|indb|indd)\b", lowered)
        and not lowered.startswith(("microsoft", "untitled", "doi"))
    )


def _agrees(layout_title: str, metadata_title: str) -> bool:
    """The metadata names the same title (publishers append the journal: a prefix counts)."""
    a, b = _normal(layout_title), _normal(metadata_title)
    return bool(a) and len(a) >= 12 and (b.startswith(a) or (a.startswith(b) and len(b) >= 12))


def _title(
    first: PageLines, layout: Layout, metadata_title: str, furniture: list[str], name: str
) -> tuple[list[Line], str, str, float, list[str]]:
    """The title's lines, its text, where it came from, how sure, and any doubt."""
    blocks = _title_blocks(first.lines[:40], first.height)
    plausible_meta = _plausible_metadata_title(metadata_title)
    chosen: list[Line] = []
    if blocks:
        biggest = max(ln.size for b in blocks for ln in b)
        if biggest >= layout.body_size + 1.0:
            chosen = next(b for b in blocks if max(ln.size for ln in b) == biggest)
        else:  # a title in body type: the first bold or capitalised block that is no heading
            chosen = next(
                (
                    b
                    for b in blocks[:5]
                    if (b[0].bold or b[0].text.isupper()) and layout.heading_kind(b[0]) is None
                ),
                [],
            )
        if plausible_meta and chosen and not _agrees(_block_text(chosen), metadata_title):
            witnessed = [b for b in blocks if _agrees(_block_text(b), metadata_title)]
            if witnessed and max(ln.size for ln in witnessed[0]) > layout.body_size:
                chosen = witnessed[0]
    if chosen:
        title = _block_text(chosen)
        if plausible_meta and _agrees(title, metadata_title):
            return chosen, title, "layout, confirmed by the PDF's metadata", 0.95, []
        doubts = []
        confidence = 0.85
        if plausible_meta:
            doubts.append(f"the PDF's metadata names another title: {metadata_title!r}")
            confidence = 0.75
        return chosen, title, "layout", confidence, doubts
    headers = [re.sub(r"^\d+\s+|\s+\d+$", "", t) for t in furniture]
    headers = [t for t in headers if len(t.split()) >= 3 and letter_share(t) > 0.8]
    if plausible_meta:
        return [], metadata_title, "the PDF's metadata", 0.6, ["no title on the first page"]
    if headers:
        return [], headers[0], "a running header", 0.5, ["no title on the first page"]
    stem = Path(name).stem.replace("_", " ")
    return [], stem, "the file name", 0.1, ["no title anywhere in the file"]


# --- authors ------------------------------------------------------------------------------


def _name_case(word: str) -> str:
    """A surname printed in capitals (DIAS, PACHE-DURÁN), in normal case."""
    if len(word) < 2 or not word.isupper() or _INITIAL.match(word):
        return word
    return "-".join(part.capitalize() for part in word.split("-"))


def _person(part: str) -> str | None:
    """The name a part of an author line holds, or None when it is not a person's name."""
    if re.search(r"\d{3}", part):
        return None  # a postal code, a year, a phone number: an address
    part = _HONORIFIC.sub("", _MARK_SYMBOLS.sub(" ", part).strip())
    part = re.sub(r"\s+", " ", part).strip(" .:")
    if not part or len(part) > 50:
        return None
    words = re.sub(r"\.(?=[^\s.-])", ". ", part).split()
    if not 2 <= len(words) <= 6:
        return None
    capitals = 0
    for word in words:
        if word.lower() in _PARTICLES and word.islower():
            continue
        if _INITIAL.match(word):
            capitals += 1
            continue
        if not word[0].isupper() or not all(ch.isalpha() or ch in "-'’." for ch in word):
            return None
        capitals += 1
    if capitals < 2:
        return None
    return " ".join(_name_case(w) for w in part.split())


@dataclass
class _NameLine:
    line: Line
    names: list[str]
    keys: list[list[str]]  # each name's affiliation markers
    rejected: list[str]  # parts that read as no name
    open_end: bool  # ends without a separator: the last name may go on below
    place: str = ""  # an institution on the names' own line


def _keys(marker: str) -> list[str]:
    return [k for k in re.split(r"[,\s]+", marker) if k and k not in "∗*†‡§¶"]


def _read_names(line: Line) -> _NameLine | None:
    """The names a line holds, with their markers; None when it is no author line. An
    institution may share the line ("Maria Lopez, Department of Nursing, University of
    Leeds"): from the first part that names one, what is not a name is its address."""
    text = line.marked or line.text
    text = _DEGREES.sub("", _MEMBERSHIP.sub("", text))
    if sum(ch.isdigit() for ch in text) > 40:
        return None
    names: list[str] = []
    keys: list[list[str]] = []
    rejected: list[str] = []
    places: list[str] = []
    position = 0
    for match in [*_SEPARATORS.finditer(text), None]:
        end = match.start() if match else len(text)
        chunk = text[position:end]
        if _MARK_SYMBOLS.sub("", chunk).strip(" ,;.:"):
            person = None if places or AFFILIATION.search(chunk) else _person(chunk)
            if person:
                names.append(person)
                keys.append([])
            elif places or AFFILIATION.search(chunk):
                places.append(chunk.strip(" ,;"))
            else:
                rejected.append(chunk.strip())
        if match is not None and match.group().startswith("^") and keys:
            keys[-1] += _keys(match.group().strip("^"))
        position = match.end() if match else len(text)
    if not names or len(rejected) > len(names) or any(len(r.split()) >= 7 for r in rejected):
        return None
    stripped = text.rstrip()
    open_end = not places and not re.search(r"(?:[,;&^]|\band)$", stripped)
    return _NameLine(line, names, keys, rejected, open_end, ", ".join(places))


def _is_prose(line: Line) -> bool:
    words = line.text.split()
    return len(words) >= 10 and letter_share(line.text) > 0.7 and not AFFILIATION.search(line.text)


def _stops_front(line: Line, layout: Layout) -> bool:
    """Where the front matter ends: the abstract, the first section or the first prose."""
    return (
        bool(_ABSTRACT_START.match(line.text))
        or layout.heading_kind(line) in ("named", "numbered")
        or (_is_prose(line) and _read_names(line) is None)
    )


def _join_wrapped(lines: list[_NameLine]) -> list[_NameLine]:
    """A name cut at a line's end ("Benjamin Charles Germain" / "Lee, Jacob ..."): the next
    line's first part alone is one word, so it finishes the name above."""
    joined: list[_NameLine] = []
    for current in lines:
        if joined and joined[-1].open_end and current.rejected:
            head = current.rejected[0]
            first_text = re.split(r"[,;^]|\band\b", current.line.marked or current.line.text)[0]
            if head.strip() and first_text.strip() == head.strip() and len(head.split()) == 1:
                word = _MARK_SYMBOLS.sub("", head).strip()
                if word[:1].isupper():
                    joined[-1].names[-1] += " " + _name_case(word)
                    current.rejected.pop(0)
        joined.append(current)
    return joined


def _affiliations(lines: list[Line]) -> dict[str, str]:
    """Affiliation lines that start with a marker ("^1^ Saarland University"), by marker."""
    found: dict[str, str] = {}
    for line in lines:
        text = line.marked or line.text
        match = re.match(r"^\s*\^?\s*([0-9a-zA-Z*†‡§]{1,4})\s*\^?\s*(?=[A-Z])", text)
        keyed = match is not None and (
            line.marked.startswith("^") or match.group(1).isdigit() or len(match.group(1)) == 1
        )
        if match is not None and keyed and (AFFILIATION.search(text) or "," in text):
            found.setdefault(match.group(1), text[match.end() :].strip())
    return found


def _affiliations_beneath(lines: list[Line], found: list[_NameLine]) -> dict[str, list[str]]:
    """Where names carry no markers, the block under a row of name lines, up to the next row
    of names, belongs to the names above it (in a grid, the same column), when it names an
    institution: "ID-IMAG, 51 avenue Jean Kuntzmann, 38330 Montbonnot Saint-Martin, France".
    E-mail addresses and date stamps are left out."""
    name_lines = {id(r.line): r for r in found}
    blocks: dict[int, list[str]] = {}
    above: list[_NameLine] = []  # the latest row of name lines
    in_names = False
    for line in lines:
        if id(line) in name_lines:
            above = [*above, name_lines[id(line)]] if in_names else [name_lines[id(line)]]
            in_names = True
            continue
        in_names = False
        if (
            "@" in line.text
            or _DATE_LINE.search(line.text)
            or letter_share(line.text) < 0.5
            or _SEPARATORS.fullmatch(line.text.strip())  # the "and" between two authors
        ):
            continue
        overlaps = [(min(line.x1, r.line.x1) - max(line.x0, r.line.x0), r) for r in above]
        overlap, owner = max(overlaps, key=lambda o: o[0], default=(0.0, None))
        if owner is not None and overlap > 0:
            blocks.setdefault(id(owner), []).append(line.text.strip(" ,;"))
    owned: dict[str, list[str]] = {}
    for reading in found:
        block = blocks.get(id(reading), [])
        if any(AFFILIATION.search(text) for text in block):
            for person in reading.names:
                owned[person] = [", ".join(block)]
    return owned


def _authors(
    first: PageLines, title_lines: list[Line], layout: Layout, metadata_author: str
) -> tuple[list[str], list[list[str]], str, float, list[str]]:
    """The authors in printed order, their affiliations, where they were read, how sure."""
    if not title_lines:
        return [], [], "nowhere", 0.0, ["no title page, so no author names to read"]
    rows = _rows([ln for ln in first.lines if ln not in title_lines])
    title_bottom = min(ln.bottom for ln in title_lines)
    below: list[Line] = []
    beside: list[Line] = []  # beside or above the title: banners, sidebars
    for line in rows:
        if line.middle >= title_bottom:
            beside.append(line)
        elif _stops_front(line, layout):
            break
        else:
            below.append(line)
    source, confidence = "layout: the lines under the title", 0.9
    found = [r for r in map(_read_names, below) if r is not None]
    used = below
    if not found:
        found = [r for r in map(_read_names, beside) if r is not None and not _is_prose(r.line)]
        source, confidence, used = "layout: lines beside or above the title", 0.6, beside
    doubts: list[str] = []
    if not found:
        return [], [], "nowhere", 0.0, ["no author names found on the first page"]
    # one author group, in one type: the type that most names share (a banner or a sidebar
    # of editors is set in another)
    groups = [[r for r in found if abs(r.line.size - lead.line.size) <= 1.0] for lead in found]
    found = max(groups, key=lambda group: sum(len(r.names) for r in group))
    found = _join_wrapped(found)
    names: list[str] = []
    keys: list[list[str]] = []
    for reading in found:
        for person, marks in zip(reading.names, reading.keys, strict=True):
            if person not in names:
                names.append(person)
                keys.append(marks)
        if reading.rejected:
            doubts.append(f"not read as names: {', '.join(repr(r) for r in reading.rejected)}")
            confidence -= 0.25
    by_marker = _affiliations(used)
    affiliations = [[by_marker[k] for k in marks if k in by_marker] for marks in keys]
    if not any(affiliations):  # no markers: the institution on or under each name line
        beneath = _affiliations_beneath(used, found)
        on_line = {person: r.place for r in found for person in r.names if r.place}
        affiliations = [
            [on_line[name]] if name in on_line else beneath.get(name, []) for name in names
        ]
    if (
        metadata_author
        and len(metadata_author.split()) >= 2
        and letter_share(metadata_author) > 0.8
    ):
        surnames = {_normal(n.split()[-1]) for n in names}
        if any(_normal(w) in surnames for w in metadata_author.replace(",", " ").split()):
            confidence = min(1.0, confidence + 0.1)
            source += ", confirmed by the PDF's metadata"
    return names[:40], affiliations[:40], source, round(max(confidence, 0.05), 2), doubts


# --- identifiers --------------------------------------------------------------------------


def _identifiers(
    first: PageLines, furniture: list[str], title: str, title_top: float | None
) -> tuple[str, int | None, str, str]:
    """Venue, year, DOI and arXiv id where page one (or a running header) prints them."""
    texts = [ln.text for ln in first.lines] + list(first.aside) + furniture
    joined = "\n".join(texts)
    doi = next((m.group().rstrip(".,;)") for m in _DOI.finditer(joined)), "")
    arxiv_match = _ARXIV.search(joined)
    arxiv = arxiv_match.group(1) if arxiv_match else ""
    venue = ""
    years: list[int] = []
    title_key = _normal(title)[:20]
    above = [ln.text for ln in first.lines if title_top is not None and ln.bottom > title_top]
    shapes = Counter(re.sub(r"\d+", "#", t) for t in furniture)
    running = [t for t in furniture if shapes[re.sub(r"\d+", "#", t)] >= 2]
    for text in [*above, *running]:  # a banner over the title, or a running header
        if (
            _YEAR.search(text)
            and letter_share(text) > 0.4
            and not _DATE_LINE.search(text)
            and not _COPYRIGHT.search(text)
            and (not title_key or title_key not in _normal(text))
            and len(text) <= 160
            and sum(w[:1].islower() for w in text.split()) * 2 < len(text.split())
        ):
            venue = re.sub(r"\s*(?:doi:?\s*)?10\.\d{4,9}/\S+", "", text)
            venue = re.sub(r"^\d{1,5}\s+|\s+\d{1,5}$", "", venue).strip(" .,;")
            years = [int(y) for y in _YEAR.findall(text)]
            break
    else:
        printed = [t for t in [*above, *furniture] if _COPYRIGHT.search(t)]
        years = [int(y) for t in printed for y in _YEAR.findall(t)]
    if not years and arxiv and arxiv[:2].isdigit():
        years = [2000 + int(arxiv[:2])]
    return venue, (years[0] if years else None), doi, arxiv


def read_front_matter(
    pages: list[PageLines],
    layout: Layout,
    metadata: dict[str, str],
    furniture: list[str],
    name: str,
) -> Front:
    """Title, authors and the rest of the front matter, each with its source and certainty."""
    if not pages:
        stem = Path(name).stem
        return Front(stem, [], FrontMatter(title_source="the file name", title_confidence=0.1))
    first = pages[0]
    title_lines, title, title_source, title_confidence, doubts = _title(
        first, layout, metadata.get("Title", "").strip(), furniture, name
    )
    authors, affiliations, authors_source, authors_confidence, author_doubts = _authors(
        first, title_lines, layout, metadata.get("Author", "").strip()
    )
    title_top = max((ln.top for ln in title_lines), default=None)
    venue, year, doi, arxiv = _identifiers(first, furniture, title, title_top)
    subtitle = title.split(": ", 1)[1] if ": " in title else ""
    matter = FrontMatter(
        subtitle=subtitle,
        affiliations=affiliations,
        venue=venue,
        year=year,
        doi=doi,
        arxiv_id=arxiv,
        title_source=title_source,
        title_confidence=title_confidence,
        authors_source=authors_source,
        authors_confidence=authors_confidence,
        doubts=doubts + author_doubts,
        title_page=bool(title_lines),
    )
    return Front(title, authors, matter, title_lines)
