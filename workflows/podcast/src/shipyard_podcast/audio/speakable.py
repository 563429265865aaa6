"""Speakable text: numbers, units, symbols, abbreviations and acronyms written out as a voice
should say them (with the show's pronunciation lexicon), and long text split at sentence and
clause boundaries to fit an engine's input limit."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from num2words import num2words

from shipyard_podcast.language import Phrasebook, number_pattern, phrasebook, plain_number

__all__ = ["normalise_text", "number_words", "split_text"]


# --- splitting --------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?;])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,:;\u2014])\s+")


def split_text(text: str, max_chars: int) -> list[str]:
    """Pieces of at most `max_chars`, cut at sentence ends, else at clause ends, else at
    spaces (and only as a last resort inside a word)."""
    text = " ".join(text.split())
    if not text:
        return []
    if len(text) <= max_chars:
        return [text]
    units: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if len(sentence) <= max_chars:
            units.append(sentence)
            continue
        for clause in _CLAUSE_END.split(sentence):
            units.extend(_split_words(clause, max_chars))
    pieces: list[str] = []
    for unit in units:
        if pieces and len(pieces[-1]) + 1 + len(unit) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {unit}"
        else:
            pieces.append(unit)
    return pieces


def _split_words(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    for word in text.split():
        while len(word) > max_chars:
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        if pieces and len(pieces[-1]) + 1 + len(word) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {word}"
        elif word:
            pieces.append(word)
    return pieces


# --- normalisation ----------------------------------------------------------------------

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["-", "-", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_words(n: int) -> str:
    """An integer in words: 1024 -> 'one thousand twenty-four'."""
    if n < 0:
        return f"minus {number_words(-n)}"
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for scale, word in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{number_words(high)} {word}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _ordinal_words(n: int) -> str:
    words = number_words(n)
    head, sep, last = words.rpartition(" ")
    tail_head, dash, tail = last.rpartition("-")
    if tail in _ORDINAL_WORDS:
        tail = _ORDINAL_WORDS[tail]
    elif tail.endswith("y"):
        tail = f"{tail[:-1]}ieth"
    else:
        tail = f"{tail}th"
    return f"{head}{sep}{tail_head}{dash}{tail}"


def _year_words(n: int) -> str:
    high, low = divmod(n, 100)
    if low == 0:
        return number_words(n) if n % 1000 == 0 else f"{number_words(high)} hundred"
    if high == 20 and low < 10:
        return number_words(n)
    return f"{number_words(high)} " + (f"oh {_ONES[low]}" if low < 10 else number_words(low))


def _decade_words(n: int) -> str:
    """1990 -> 'nineteen nineties'."""
    words = _year_words(n)
    return f"{words[:-1]}ies" if words.endswith("y") else f"{words}s"


def _decimal_words(literal: str) -> str:
    """'1,024' -> 'one thousand twenty-four'; '3.14' -> 'three point one four'."""
    whole, _, fraction = literal.replace(",", "").partition(".")
    words = number_words(int(whole or "0"))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return words


_ABBREVIATIONS = {
    "e.g.": "for example",
    "i.e.": "that is",
    "et al.": "and colleagues",
    "etc.": "et cetera",
    "vs.": "versus",
    "cf.": "compare",
    "approx.": "approximately",
    "Fig.": "Figure",
    "Figs.": "Figures",
    "Eq.": "Equation",
    "Eqs.": "Equations",
    "Sec.": "Section",
    "Tab.": "Table",
    "Dr.": "Doctor",
    "Prof.": "Professor",
}
_UNITS = {
    "ms": "millisecond",
    "µs": "microsecond",
    "us": "microsecond",
    "ns": "nanosecond",
    "s": "second",
    "sec": "second",
    "min": "minute",
    "h": "hour",
    "hrs": "hour",
    "Hz": "hertz",
    "kHz": "kilohertz",
    "MHz": "megahertz",
    "GHz": "gigahertz",
    "KB": "kilobyte",
    "kB": "kilobyte",
    "MB": "megabyte",
    "GB": "gigabyte",
    "TB": "terabyte",
    "bit": "bit",
    "Mbps": "megabit per second",
    "km": "kilometre",
    "m": "metre",
    "cm": "centimetre",
    "mm": "millimetre",
    "µm": "micrometre",
    "nm": "nanometre",
    "kg": "kilogram",
    "g": "gram",
    "mg": "milligram",
    "dB": "decibel",
    "W": "watt",
    "kW": "kilowatt",
    "V": "volt",
    "°C": "degrees Celsius",
    "°F": "degrees Fahrenheit",
    "km/h": "kilometres per hour",
    "m/s": "metres per second",
    "fps": "frames per second",
    "FLOPs": "flops",
}
_MAGNITUDES = {"k": "thousand", "K": "thousand", "M": "million", "B": "billion", "T": "trillion"}
_SYMBOLS = {
    "&": " and ",
    "+": " plus ",
    "=": " equals ",
    "≤": " less than or equal to ",
    "≥": " greater than or equal to ",
    "<": " less than ",
    ">": " greater than ",
    "±": " plus or minus ",
    "≈": " approximately ",
    "→": " to ",
    "×": " times ",
    "@": " at ",
    "§": " section ",
    "°": " degrees ",
    "µ": " micro ",
    "π": " pi ",
    "∞": " infinity ",
    "–": ", ",
    "—": ", ",
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_PRONOUNCED_ACRONYM_MIN = 4  # 4+ capitals with a vowel are read as a word: NASA, BERT
_VOWELS = set("AEIOUY")


def _plural(unit: str, amount: str) -> str:
    if amount in ("1", "one") or unit.endswith(("s", "hertz", "Celsius", "Fahrenheit")):
        return unit
    if " per " in unit:
        head, _, tail = unit.partition(" per ")
        return f"{head}s per {tail}"
    return f"{unit}s"


def _lexicon_pattern(terms: list[str]) -> re.Pattern[str]:
    alternatives = []
    for term in sorted(terms, key=len, reverse=True):
        left = r"(?<!\w)" if term[:1].isalnum() else ""
        right = r"(?!\w)" if term[-1:].isalnum() else ""
        alternatives.append(f"{left}{re.escape(term)}{right}")
    return re.compile("|".join(alternatives))


def normalise_text(
    text: str, pronunciations: Mapping[str, str] | None = None, language: str = "en"
) -> str:
    """Make text speakable in `language`: the lexicon first, then abbreviations, money,
    percentages, numbers with units or magnitudes, ranges, ordinals, years, numbers, symbols,
    acronyms. English has a reader of its own; another language is read with its phrasebook's
    words and num2words' numbers; one with neither is left to its voice."""
    text = unicodedata.normalize("NFKC", text)
    book = phrasebook(language)
    if pronunciations:
        lexicon = dict(pronunciations)
        text = _lexicon_pattern(list(lexicon)).sub(lambda m: lexicon[m.group(0)], text)
    if book is None:  # no phrasebook: the voice reads numbers and symbols in its language
        text = re.sub(r"https?://\S+|[*_`#\[\]{}|\\^~]", " ", text)
        return " ".join(text.split())
    if book.speech is not None:
        return _read_in(text, book, book.speech)
    text = re.sub(r"https?://\S+", " a link ", text)
    text = re.sub(r"(?<!\w)No\.\s?(?=\d)", "number ", text)
    for short, long in _ABBREVIATIONS.items():
        text = re.sub(rf"(?<!\w){re.escape(short)}(?=\s|$)", long, text)
    text = re.sub(rf"([$€£])\s?({_NUMBER})\s?([kKMBT])?\b", _money, text)
    text = re.sub(r"~\s?(?=\d)", "about ", text)
    text = re.sub(r"(?<![\w.,])(1[89]\d\d|20\d\d)s\b", lambda m: _decade_words(int(m[1])), text)
    text = re.sub(rf"({_NUMBER})\s?%", lambda m: f"{_decimal_words(m[1])} percent", text)
    text = re.sub(rf"({_NUMBER})\s?[x×](?!\w)", lambda m: f"{_decimal_words(m[1])} times", text)
    units = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    text = re.sub(rf"(?<![\w.])({_NUMBER})\s?({units})(?![\w/])", _with_unit, text)
    text = re.sub(
        rf"(?<![\w.])({_NUMBER})([kKMBT])(?!\w)",
        lambda m: f"{_decimal_words(m[1])} {_MAGNITUDES[m[2]]}",
        text,
    )
    text = re.sub(r"([A-Za-z])-(\d)", r"\1 \2", text)  # GPT-4, ResNet-50
    text = re.sub(rf"(?<![\w.])({_NUMBER})\s?[-–]\s?({_NUMBER})(?![\w.])", _range, text)
    text = re.sub(r"(?<!\w)(\d+)(st|nd|rd|th)\b", lambda m: _ordinal_words(int(m[1])), text)
    text = re.sub(
        r"(?<![\w.,])(1[89]\d\d|20\d\d)(?![\w]|[.,]\d)", lambda m: _year_words(int(m[1])), text
    )
    text = re.sub(r"(?<![\w.])-(\d)", r"minus \1", text)
    text = re.sub(_NUMBER, lambda m: _decimal_words(m[0]), text)
    text = re.sub(r"(\w)/s\b", r"\1 per second", text)
    text = re.sub(r"(\w)/(\w)", r"\1 or \2", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = re.sub(r"\b([A-Z]{2,})(s?)\b", _acronym, text)
    text = re.sub(r"[*_`#\[\]{}|\\^~]", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return " ".join(text.split())


def _money(match: re.Match[str]) -> str:
    currency = {"$": "dollars", "€": "euros", "£": "pounds"}[match[1]]
    magnitude = f" {_MAGNITUDES[match[3]]}" if match[3] else ""
    if match[2] == "1" and not magnitude:
        currency = currency[:-1]
    return f"{_decimal_words(match[2])}{magnitude} {currency}"


def _range(match: re.Match[str]) -> str:
    ends = (match[1], match[2])
    if all(re.fullmatch(r"1[89]\d\d|20\d\d", end) for end in ends):
        return " to ".join(_year_words(int(end)) for end in ends)
    return " to ".join(_decimal_words(end) for end in ends)


def _with_unit(match: re.Match[str]) -> str:
    return f"{_decimal_words(match[1])} {_plural(_UNITS[match[2]], match[1])}"


# Short words a writer may put in capitals for emphasis: read as words, not spelled.
_SHOUTED_WORDS = frozenset(
    re.findall(
        r"\w+",
        "A AN AND ARE AS AT BE BUT BY CAN DO FOR GO HAS HE HOW IF IN IS ITS MY NEW NO NOT NOW "
        "OF OFF OH ON ONE OR OUR OUT SO THE TO TOO TWO UP WAS WE WHO WHY YES YOU",
    )
)


def _acronym(match: re.Match[str]) -> str:
    letters, plural = match[1], match[2]
    if letters in _SHOUTED_WORDS and not plural:
        return letters.lower()
    if len(letters) >= _PRONOUNCED_ACRONYM_MIN and _VOWELS & set(letters):
        return match[0]
    spelled = " ".join(letters)
    return f"{spelled}'s" if plural else spelled


# --- other languages ----------------------------------------------------------------------


def _read_in(text: str, book: Phrasebook, speech: Mapping[str, Any]) -> str:
    """Text made speakable in a language with a phrasebook's [speech] table: numbers with
    that language's decimal mark and thousands separators (3,5 and 1.000 and 1 000), units,
    money, percentages, ranges, years and symbols in its words."""
    mark = re.escape(book.decimal_mark)
    number = number_pattern(book.decimal_mark)
    code = book.code  # num2words' regional variants add commas ("cinco mil, quinhentos")

    def say(literal: str) -> str:
        whole, _, fraction = plain_number(literal, book.decimal_mark).partition(".")
        words = str(num2words(int(whole or "0"), lang=code))
        if fraction:
            if speech["fraction"] == "digits":
                read = " ".join(str(num2words(int(d), lang=code)) for d in fraction)
            else:  # leading zeros one by one, then the rest as a number: "0,05" -> zero zero five
                zeros = len(fraction) - len(fraction.lstrip("0"))
                read = " ".join(
                    [str(num2words(0, lang=code))] * zeros
                    + ([str(num2words(int(fraction), lang=code))] if fraction.strip("0") else [])
                )
            words += f" {speech['decimal']} {read}"
        return words

    def year_or_number(literal: str) -> str:
        if re.fullmatch(r"1[89]\d\d|20\d\d", literal):
            return str(num2words(int(literal), lang=code, to="year"))
        return say(literal)

    def amount(literal: str, forms: list[str]) -> str:
        if re.fullmatch(r"0*1", literal):
            return f"{speech['one']} {forms[0]}"
        return f"{say(literal)} {forms[1]}"

    def span(match: re.Match[str]) -> str:
        low, high, unit = match[1], match[2], match[3]
        said = f"{year_or_number(low)} {speech['to']} {year_or_number(high)}"
        return f"{said} {units[unit][1]}" if unit else said

    text = re.sub(r"https?://\S+", f" {speech['link']} ", text)
    for short, long in speech["abbreviations"].items():
        text = re.sub(rf"(?<!\w){re.escape(short)}(?=\s|$|[,;:])", long, text)
    units: dict[str, list[str]] = speech["units"]
    names = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))
    money = [u for u in units if any(unicodedata.category(c) == "Sc" for c in u)]  # € R$
    if money:  # "€ 5", "R$ 10,50": the currency before the amount
        signs = "|".join(re.escape(u) for u in sorted(money, key=len, reverse=True))
        text = re.sub(rf"({signs})\s?({number})", lambda m: amount(m[2], units[m[1]]), text)
    text = re.sub(rf"({number})\s?%", lambda m: f"{say(m[1])} {speech['percent']}", text)
    text = re.sub(
        rf"(?<![\w.,])({number})\s?[-–]\s?({number})(?:\s?({names}))?(?![\w/]|{mark}\d)",
        span,
        text,
    )
    text = re.sub(
        rf"(?<![\w.,])({number})\s?({names})(?![\w/])", lambda m: amount(m[1], units[m[2]]), text
    )
    text = re.sub(
        r"(?<![\w.,])(1[89]\d\d|20\d\d)(?![\w]|[.,]\d)",
        lambda m: str(num2words(int(m[1]), lang=code, to="year")),
        text,
    )
    text = re.sub(rf"(?<![\w.])-(?={number})", f"{speech['minus']} ", text)
    text = re.sub(number, lambda m: say(m[0]), text)
    for symbol, words in speech["symbols"].items():
        text = text.replace(symbol, words)
    text = re.sub(r"[*_`#\[\]{}|\\^]", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return " ".join(text.split())
