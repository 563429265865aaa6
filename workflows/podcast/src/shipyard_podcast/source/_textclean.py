"""Character-level repair of extracted text: ligatures, TeX accents, garbage, hyphenation."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from shipyard import INVISIBLE_MARKS

__all__ = [
    "HyphenJoiner",
    "clean_line",
    "is_symbol_soup",
    "letter_share",
]

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
    "\u0132": "IJ",
    "\u0133": "ij",
    "\u01c7": "LJ",
    "\u01c8": "Lj",
    "\u01c9": "lj",
    "\u01ca": "NJ",
    "\u01cb": "Nj",
    "\u01cc": "nj",
    "\ua732": "AA",
    "\ua733": "aa",
}
_LIGATURE_TABLE = str.maketrans(LIGATURES)

# TeX sets accents as separate spacing glyphs: before the letter (´e), except the cedilla and
# ogonek, which follow it (c¸). Each maps to the combining mark that NFC can compose.
_ACCENT_BEFORE = {
    "\u00b4": "\u0301",
    "\u02cb": "\u0300",
    "\u02c6": "\u0302",
    "\u02dc": "\u0303",
    "\u00a8": "\u0308",
    "\u02d8": "\u0306",
    "\u02c7": "\u030c",
    "\u02da": "\u030a",
    "\u02dd": "\u030b",
    "\u00af": "\u0304",
    "\u02d9": "\u0307",
}
_ACCENT_AFTER = {"\u00b8": "\u0327", "\u02db": "\u0328"}
# "M ´ exico": the accent glyph may sit between spaces; the spaces go with it
_BEFORE_RE = re.compile(
    r"(?:(?<=[^\W\d_]) )?([" + re.escape("".join(_ACCENT_BEFORE)) + r"]) ?([A-Za-zıȷ])"
)
_AFTER_RE = re.compile("([A-Za-z])\\s?([" + re.escape("".join(_ACCENT_AFTER)) + "])")
_ORPHAN_ACCENT = re.compile(
    r"(?<!\w)[" + re.escape("".join(_ACCENT_BEFORE) + "".join(_ACCENT_AFTER)) + r"](?!\w)"
)

_CID = re.compile(r"\(cid:\d+\)")
_GARBAGE_CHARS = re.compile("[\ufffd\ue000-\uf8ff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
# pdfium marks a hyphen it saw at the end of a line as U+FFFE; U+00AD is a soft hyphen.
SOFT_HYPHEN = "\ufffe"


def _compose(letter: str, mark: str) -> str:
    base = {"ı": "i", "ȷ": "j"}.get(letter, letter)
    return unicodedata.normalize("NFC", base + mark)


def clean_line(text: str) -> tuple[str, int]:
    """A line with ligatures expanded, accents composed and garbage removed.

    Returns the text and how many garbage characters were dropped.
    """
    garbage = 0
    if text.isascii():  # no ligatures, accents or soft hyphens to repair
        if "(cid:" in text:
            text, n = _CID.subn("", text)
            garbage += n * 6
        text, n = _GARBAGE_CHARS.subn("", text)
        return _SPACES.sub(" ", text).strip(), garbage + n
    text = text.translate(_LIGATURE_TABLE).replace("\u00ad", SOFT_HYPHEN)
    if "(cid:" in text:
        text, n = _CID.subn("", text)
        garbage += n * 6
    text, n = _GARBAGE_CHARS.subn("", text)
    garbage += n
    text, n = INVISIBLE_MARKS.subn("", text)  # they would change how a title reads
    garbage += n
    if any(ch in text for ch in _ACCENT_BEFORE) or any(ch in text for ch in _ACCENT_AFTER):
        text = _BEFORE_RE.sub(lambda m: _compose(m.group(2), _ACCENT_BEFORE[m.group(1)]), text)
        text = _AFTER_RE.sub(lambda m: _compose(m.group(1), _ACCENT_AFTER[m.group(2)]), text)
        text = _ORPHAN_ACCENT.sub("", text)
    text = unicodedata.normalize("NFC", text)
    return _SPACES.sub(" ", text).strip(), garbage


def letter_share(text: str) -> float:
    """The share of letters among the non-space characters."""
    visible = len(text) - sum(map(str.isspace, text))
    return sum(map(str.isalpha, text)) / visible if visible else 0.0


_WORD = re.compile(r"[^\W\d_]{2,}")
_RELATION = re.compile("[=<>≤≥∝≈∼≡→∈⊂]")


def is_symbol_soup(text: str) -> bool:
    """True for lines that are mostly math, numbers or extraction noise, not prose."""
    visible = len(text) - text.count(" ")
    if visible == 0:
        return True
    words = _WORD.findall(text)
    word_chars = sum(len(w) for w in words)
    tokens = len(text.split())
    if words and text[-1] in ".,;:)" and tokens <= 4 and letter_share(text) > 0.3:
        return False  # the short end of a sentence: "Guo et al. (2016))."
    if tokens <= 2 and len(text) <= 12 and text[-1] not in ".,;:?!":
        return True  # a fragment between display equations ("TB", "∂ lnq")
    if tokens <= 4 and _RELATION.search(text) and text[-1] not in ".:;?!":
        return True  # a short display equation ("ds2 = c2dt", "σαβ = 1")
    if word_chars < 0.5 * visible:
        return True
    # prose has words of several letters; math has runs of one-letter symbols
    return len(words) <= 2 and visible > 12 and word_chars < 0.7 * visible


_TAIL_WORD = re.compile(r"([^\W\d_][\w'’]*)$")
_HEAD_WORD = re.compile(r"^([^\W\d_][\w'’]*)")
_WORD_TOKEN = re.compile(r"[^\W\d_][\w'’-]*[^\W\d_]|[^\W\d_]")
# first halves that normally keep their hyphen when a compound breaks across lines
_KEEP_PREFIXES = frozenset(
    {
        "non",
        "self",
        "well",
        "cross",
        "state",
        "end",
        "high",
        "low",
        "long",
        "short",
        "large",
        "small",
        "two",
        "three",
        "one",
        "multi",
        "semi",
        "quasi",
        "anti",
        "real",
        "open",
        "data",
        "task",
        "domain",
        "user",
        "time",
        "case",
        "so",
        "ill",
        "all",
        "half",
        "co",
    }
)


class HyphenJoiner:
    """Decides, for a word split at a line end, whether the hyphen was the typesetter's.

    Evidence comes from the document itself: a form seen elsewhere (joined, or hyphenated in
    the middle of a line) wins; otherwise a capitalised or numeric second half and the usual
    compound prefixes and one-letter first halves ("d-dimensional") keep the hyphen, and
    everything else is joined.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._words = set(_WORD_TOKEN.findall("\n".join(lines).lower()))

    def join(self, left: str, right: str) -> str:
        """Join `left` (ending in a hyphen mark) with the next line `right`."""
        head = left[:-1]
        tail_match = _TAIL_WORD.search(head)
        head_match = _HEAD_WORD.match(right)
        if not tail_match or not head_match:
            return head + "-" + right
        first, second = tail_match.group(1), head_match.group(1)
        joined, hyphenated = (first + second).lower(), f"{first}-{second}".lower()
        if hyphenated in self._words:
            return head + "-" + right
        if joined in self._words:
            return head + right
        if second[0].isupper() or len(first) == 1 or first.lower() in _KEEP_PREFIXES:
            return head + "-" + right
        return head + right
