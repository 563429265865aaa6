"""Lines of text with their geometry, in reading order, from pdfium.

pdfium gives a page's text in content-stream order with its own line breaks; we split that text
into lines, look up a few character boxes per line (never every character: that costs ~1 µs a
call), merge the pieces of one visual line (superscripts break pdfium's lines), decide whether
the page is set in one or two columns, and order the lines band by band, column by column.
Running headers, footers and page numbers are removed across pages by `strip_page_furniture`.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

__all__ = ["Line", "PageLines", "read_page", "strip_page_furniture"]

# Only the font's name is trusted: pdfium's weights and flags are guesses for Type 3 fonts.
_BOLD_NAME = re.compile(r"bold|black|heavy|demi|-medi|cmbx|cmssbx|[-,.]b\b|bd\b", re.I)
# pdfium joins a word hyphenated across lines into one run, marking the break with U+FFFE:
# split there too, so each piece keeps its own geometry.
_LINE_RUN = re.compile("[^\r\n\ufffe]+\ufffe?")
_PAGE_NUMBER = re.compile(
    r"^(?:page\s+)?(?:\d{1,4}|[ivxlc]{1,7})(?:\s*(?:/|of)\s*\d{1,4})?$|^[-–—]\s*\d{1,4}\s*[-–—]$",
    re.I,
)
_EDGE_NUMBER = re.compile(r"^\d{1,4}\s+\S|\S\s+\d{1,4}$")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Line:
    """One visual line: its text and where it sits (PDF points, y grows upwards)."""

    text: str
    page: int  # 1-based
    x0: float
    x1: float
    bottom: float
    top: float
    size: float  # printed font size: the median of its first, middle and last characters
    bold: bool
    column: int = 0  # 0: spans the page or single column; 1: left; 2: right
    # Page one's short lines only: the text with each raised run (an affiliation or footnote
    # marker, "Salem^b^") set off by carets, so names can be told from their markers.
    marked: str = ""

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 0.1)

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


@dataclass(frozen=True, slots=True)
class PageLines:
    number: int
    width: float
    height: float
    lines: list[Line]
    two_columns: bool
    aside: tuple[str, ...] = ()  # rotated text left out of the flow (an arXiv stamp)


def _page_text(textpage: pdfium.PdfTextPage) -> tuple[str, int]:
    count = int(pdfium_c.FPDFText_CountChars(textpage))
    if count <= 0:
        return "", 0
    buffer = (ctypes.c_ushort * (2 * count + 2))()
    written = int(pdfium_c.FPDFText_GetText(textpage, 0, count, buffer))
    raw = memoryview(buffer).cast("B")[: max(written - 1, 0) * 2]
    return bytes(raw).decode("utf-16-le", errors="replace"), count


def _by_address(function: Any, restype: Any, *argtypes: Any) -> Any:
    """pdfium's `function` declared again to take plain addresses: checking pypdfium2's typed
    pointers took longer than pdfium's own work (a character's box: 1.0 -> 0.5 µs a call)."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    assert address is not None
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


_P, _INT = ctypes.c_void_p, ctypes.c_int
_CHAR_BOX = _by_address(pdfium_c.FPDFText_GetCharBox, _INT, _P, _INT, _P, _P, _P, _P)
_MATRIX = _by_address(pdfium_c.FPDFText_GetMatrix, _INT, _P, _INT, _P)
_FONT_SIZE = _by_address(pdfium_c.FPDFText_GetFontSize, ctypes.c_double, _P, _INT)
_FONT_INFO = _by_address(
    pdfium_c.FPDFText_GetFontInfo, ctypes.c_ulong, _P, _INT, _P, ctypes.c_ulong, _P
)
_CHAR_INDEX = _by_address(pdfium_c.FPDFText_GetCharIndexFromTextIndex, _INT, _P, _INT)


class _CharProbe:
    """Per-character lookups on one text page, reusing the out-parameters."""

    def __init__(self, textpage: pdfium.PdfTextPage) -> None:
        self.handle = ctypes.cast(textpage.raw, ctypes.c_void_p).value
        self._box = (ctypes.c_double * 4)()
        at = ctypes.addressof(self._box)
        self._box_at = (at, at + 8, at + 16, at + 24)  # left, right, bottom, top
        self._matrix = pdfium_c.FS_MATRIX()
        self._matrix_at = ctypes.addressof(self._matrix)
        self._flags = ctypes.c_int()
        self._flags_at = ctypes.addressof(self._flags)
        self._name = ctypes.create_string_buffer(128)
        self._name_at = ctypes.addressof(self._name)

    def box(self, index: int) -> tuple[float, float, float, float]:
        """left, right, bottom, top"""
        _CHAR_BOX(self.handle, index, *self._box_at)
        left, right, bottom, top = self._box
        return left, right, bottom, top

    def size(self, index: int) -> float:
        """The size in points as printed: the font size scaled by the text matrix (many
        PDFs set a 1-point font and scale it)."""
        _MATRIX(self.handle, index, self._matrix_at)
        scale = math.hypot(self._matrix.c, self._matrix.d) or 1.0
        return round(float(_FONT_SIZE(self.handle, index)) * scale, 1)

    def line_size(self, indices: list[int]) -> float:
        """The upper median of the characters' sizes (one to three): the middle character's
        is asked for only where the first's and the last's differ."""
        first, last = self.size(indices[0]), self.size(indices[-1])
        if first == last or len(indices) < 3:
            return max(first, last)
        return sorted((first, self.size(indices[1]), last))[1]

    def bold(self, index: int) -> bool:
        length = _FONT_INFO(self.handle, index, self._name_at, 128, self._flags_at)
        if length <= 0:
            return False
        return bool(_BOLD_NAME.search(self._name.value.decode("latin-1", errors="replace")))

    def raised(self, text_indices: range) -> tuple[list[bool], float]:
        """Which characters sit above the line's baseline in smaller type (superscript
        markers), and the size of the line's ordinary characters (the median of a sample:
        markers are few)."""
        indices = [self.char_index(t) for t in text_indices]
        known = [i for i in indices if i >= 0]
        if not known:
            return [False] * len(indices), 0.0
        bottoms = {i: self.box(i)[2] for i in known}
        baseline = sorted(bottoms.values())[len(known) // 2]
        sample = sorted(self.size(i) for i in known[::3])
        size = sample[len(sample) // 2]
        flags = [
            i >= 0 and bottoms[i] > baseline + 0.2 * size and self.size(i) < 0.85 * size
            for i in indices
        ]
        return flags, size

    def char_index(self, text_index: int) -> int:
        return int(_CHAR_INDEX(self.handle, text_index))


_CAPITALISED = re.compile(r"(?:^|\s)[A-ZÀ-ÞĀ-Ž]")


def _may_name_people(text: str) -> bool:
    """A short line of mostly capitalised words (as names are): worth reading character by
    character for markers (only page one's, so the cost stays at a few hundred characters a
    paper)."""
    if len(text) > 200:
        return False
    capitalised = len(_CAPITALISED.findall(text))
    return capitalised >= 2 and capitalised * 5 >= 2 * (text.count(" ") + 1)


def _mark_raised(text: str, raised: list[bool]) -> str:
    """`text` with each run of raised characters wrapped in carets. pdfium's text and its
    characters line up one to one (a generated space has no character: never raised)."""
    if not any(raised):
        return ""
    out: list[str] = []
    up = False
    for char, flag in zip(text, raised, strict=True):
        if flag != up and not char.isspace():
            out.append("^")
            up = flag
        out.append(char)
    if up:
        out.append("^")
    return "".join(out).replace("\ufffe", "")


def _raw_lines(textpage: pdfium.PdfTextPage, page: int, aside: list[str]) -> list[Line]:
    text, count = _page_text(textpage)
    probe = _CharProbe(textpage)
    lines: list[Line] = []
    for match in _LINE_RUN.finditer(text):
        start, end = match.span()
        body = match.group()
        stripped = body.strip()
        if not stripped:
            continue
        start += len(body) - len(body.lstrip())
        end -= len(body) - len(body.rstrip(" \ufffe"))  # the hyphen mark has no real box
        middle = (start + end - 1) // 2
        if text[middle] == " ":
            middle += 1  # generated spaces have no font
        indices = [probe.char_index(t) for t in (start, middle, end - 1)]
        indices = [i for i in indices if 0 <= i < count]
        if not indices:
            continue
        boxes = [probe.box(i) for i in indices]
        first, last = boxes[0], boxes[-1]
        bottoms = sorted(b[2] for b in boxes)
        tops = sorted(b[3] for b in boxes)
        middle_index = indices[len(indices) // 2]
        x0, x1 = min(first[0], last[0]), max(first[1], last[1])
        char_height = max(tops[len(tops) // 2] - bottoms[len(bottoms) // 2], 1.0)
        centres_apart = abs((first[2] + first[3]) - (last[2] + last[3])) / 2
        if len(stripped) >= 3 and centres_apart > 2 * char_height and x1 - x0 < centres_apart:
            aside.append(stripped)  # rotated text (arXiv stamps, margin notes): not in the flow
            continue
        words = stripped.count(" ") + 1
        line_size = probe.line_size(indices)
        baseline = bottoms[len(bottoms) // 2]
        marked = ""
        if page == 1 and _may_name_people(stripped):
            raised, all_size = probe.raised(range(start, end))
            line_size = all_size or line_size
            marked = _mark_raised(text[start:end], raised)
        lines.append(
            Line(
                text=stripped,
                page=page,
                x0=x0,
                x1=x1,
                bottom=baseline,
                top=tops[len(tops) // 2],
                size=line_size,
                bold=words <= 14 and probe.bold(middle_index),
                marked=marked,
            )
        )
    return lines


def _joins(prev: Line, line: Line) -> bool:
    overlap = min(prev.top, line.top) - max(prev.bottom, line.bottom)
    gap = line.x0 - prev.x1
    return overlap >= 0.45 * min(prev.height, line.height) and -2.0 <= gap <= 1.5 * max(
        prev.size, line.size, 4.0
    )


def _join(prev: Line, line: Line) -> Line:
    """One visual line from two pieces. Its size and baseline are the longer piece's (a drop
    capital, a marker or a tall bracket does not move the line); a small raised piece is
    marked as such."""
    joiner = "" if line.x0 - prev.x1 < 0.15 * max(prev.size, 4.0) else " "
    long = prev if len(prev.text) >= len(line.text) else line
    marked = ""
    if prev.page == 1 and (prev.marked or line.marked or _may_name_people(prev.text)):
        raised = line.bottom > prev.bottom + 0.2 * prev.size and line.size < 0.85 * prev.size
        marked = (
            (prev.marked or prev.text)
            + joiner
            + (f"^{line.text}^" if raised else line.marked or line.text)
        )
    return replace(
        prev,
        text=prev.text + joiner + line.text,
        x1=max(prev.x1, line.x1),
        bottom=long.bottom,
        top=long.top,
        size=long.size,
        bold=prev.bold and line.bold,
        marked=marked,
    )


def _merge_visual_lines(lines: list[Line]) -> list[Line]:
    """Join pieces that pdfium split but that sit on one visual line (superscripts, markers).

    A short raised or lowered piece ("−1" in "a−1") may overlap neither neighbour enough;
    the piece after it still joins the line before it, taking the short piece along.
    """
    merged: list[Line] = []
    for line in lines:
        if merged and _joins(merged[-1], line):
            merged[-1] = _join(merged[-1], line)
        elif (
            len(merged) >= 2
            and len(merged[-1].text) <= 4
            and _joins(merged[-2], replace(line, x0=merged[-1].x1))
        ):
            piece = merged.pop()
            merged[-1] = _join(_join(merged[-1], piece), line)
        else:
            merged.append(line)
    return merged


def _assign_columns(lines: list[Line], width: float) -> tuple[list[Line], bool]:
    if len(lines) < 8:
        return lines, False
    left = min(line.x0 for line in lines)
    right = max(line.x1 for line in lines)
    mid = (left + right) / 2
    slack = 0.02 * width
    left_chars = sum(len(ln.text) for ln in lines if ln.x1 <= mid + slack)
    right_chars = sum(len(ln.text) for ln in lines if ln.x0 >= mid - slack)
    total = sum(len(ln.text) for ln in lines)
    if left_chars < 0.25 * total or right_chars < 0.2 * total:
        return lines, False
    placed = []
    for ln in lines:
        column = 1 if ln.x1 <= mid + slack else 2 if ln.x0 >= mid - slack else 0
        placed.append(ln if column == ln.column else replace(ln, column=column))
    return placed, True


def _reading_order(lines: list[Line]) -> list[Line]:
    """Bands separated by lines that span both columns; in each band, left then right."""
    ordered: list[Line] = []
    band: list[Line] = []

    def flush() -> None:
        ordered.extend(sorted((ln for ln in band if ln.column == 1), key=lambda ln: -ln.middle))
        ordered.extend(sorted((ln for ln in band if ln.column == 2), key=lambda ln: -ln.middle))
        band.clear()

    for line in sorted(lines, key=lambda ln: -ln.top):
        if line.column == 0:
            flush()
            ordered.append(line)
        else:
            band.append(line)
    flush()
    return ordered


_LEADING_NUMBER = re.compile(r"^(\d{1,5})(?:\s+|$)")


def _without_line_numbers(lines: list[Line]) -> list[Line]:
    """A manuscript's line numbers gone: integers that start lines at one left edge (a column
    of their own in the margin, or run into the line by pdfium), counting down the page in a
    fixed step, on at least five lines and a third of the page's. A lone page number or a
    short numbered list is no such column."""
    numbered = [ln for ln in lines if _LEADING_NUMBER.match(ln.text)]
    if len(numbered) < 5:
        return lines
    edge = sorted(ln.x0 for ln in numbered)[len(numbered) // 2]
    column = sorted(  # right-aligned numbers start further right as they get shorter
        (ln for ln in numbered if abs(ln.x0 - edge) < 1.5 * max(ln.size, 4.0)),
        key=lambda ln: -ln.middle,
    )
    values = [int(_LEADING_NUMBER.match(ln.text).group(1)) for ln in column]  # type: ignore[union-attr]
    steps = Counter(b - a for a, b in itertools.pairwise(values))
    step, count = steps.most_common(1)[0] if steps else (0, 0)
    if len(column) < max(5, len(lines) // 3) or step <= 0 or count < 0.8 * (len(column) - 1):
        return lines
    in_column = {id(ln) for ln in column}
    kept = []
    for line in lines:
        if id(line) in in_column:
            text = _LEADING_NUMBER.sub("", line.text, count=1)
            if not text:
                continue
            line = replace(line, text=text, marked="")
        kept.append(line)
    return kept


def read_page(page: pdfium.PdfPage, number: int) -> PageLines:
    """The page's lines in reading order, with geometry."""
    width, height = (float(v) for v in page.get_size())
    textpage = page.get_textpage()
    aside: list[str] = []
    try:
        lines = _merge_visual_lines(_without_line_numbers(_raw_lines(textpage, number, aside)))
    finally:
        textpage.close()
    lines, two_columns = _assign_columns(lines, width)
    if two_columns:
        lines = _reading_order(lines)
    return PageLines(number, width, height, lines, two_columns, tuple(aside))


def _shape(text: str) -> str:
    return _DIGITS.sub("#", text.lower()).strip()


def _edge_lines(page: PageLines, *, depth: int = 3) -> set[int]:
    """Indices of lines near the top or bottom edge of the page (by position, not order)."""
    if not page.lines:
        return set()
    by_height = sorted(range(len(page.lines)), key=lambda i: -page.lines[i].middle)
    top_zone = page.height * 0.9
    bottom_zone = page.height * 0.1
    picked = {i for i in by_height[:depth] if page.lines[i].middle >= top_zone}
    picked |= {i for i in by_height[-depth:] if page.lines[i].middle <= bottom_zone}
    picked.add(by_height[0])
    picked.add(by_height[-1])
    return picked


def _edge_numbers(line: Line) -> set[int]:
    """The integers a line starts or ends with: where a running header puts a page number."""
    words = line.text.split()
    return {int(w) for w in (words[0], words[-1]) if w.isdigit() and len(w) <= 4}


def _isolated(page: PageLines, line: Line) -> bool:
    """Whether a line stands apart from all others by more than ordinary leading."""
    gaps = [
        max(other.bottom - line.top, line.bottom - other.top)
        for other in page.lines
        if other is not line
    ]
    return bool(gaps) and min(gaps) > 1.2 * max(line.size, 4.0)


def strip_page_furniture(
    pages: Sequence[PageLines],
    body_size: float,
) -> tuple[list[PageLines], list[str]]:
    """Remove running headers, footers and page numbers; return the pages and what was removed.

    A line at a page's edge goes when it is a bare page number, when its shape (digits
    ignored) recurs at an edge of another page, or when it is a small-print edge line that
    carries a page number. Any short line that recurs on half the pages (three or more) goes
    too, wherever it sits.
    """
    edge_shapes: Counter[str] = Counter()
    everywhere: Counter[str] = Counter()
    offsets: Counter[int] = Counter()  # printed page number minus position in the file
    for page in pages:
        edges = _edge_lines(page)
        edge_shapes.update({_shape(page.lines[i].text) for i in edges})
        offsets.update({n - page.number for i in edges for n in _edge_numbers(page.lines[i])})
        everywhere.update({_shape(ln.text) for ln in page.lines if len(ln.text) <= 120})
    numbering = [o for o, n in offsets.most_common(1) if n >= 2]
    removed: list[str] = []
    cleaned: list[PageLines] = []
    many = max(3, (len(pages) + 1) // 2)
    for page in pages:
        edges = _edge_lines(page)
        keep: list[Line] = []
        for i, line in enumerate(page.lines):
            shape = _shape(line.text)
            furniture = everywhere[shape] >= many and len(line.text) <= 120
            if i in edges:
                furniture = furniture or bool(_PAGE_NUMBER.match(line.text.strip()))
                furniture = furniture or (len(pages) > 1 and edge_shapes[shape] >= 2)
                furniture = furniture or any(
                    n - page.number in numbering for n in _edge_numbers(line)
                )
                small = line.size < body_size - 0.4
                furniture = furniture or (small and bool(_EDGE_NUMBER.search(line.text)))
                furniture = furniture or (
                    small and len(line.text.split()) <= 15 and _isolated(page, line)
                )
            if furniture:
                removed.append(line.text)
            else:
                keep.append(line)
        cleaned.append(replace(page, lines=keep))
    return cleaned, removed
