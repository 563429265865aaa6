"""Deterministic guardrails on a script: each finding is a `Flag` with its evidence.

    length        the estimated duration against the target (±15%); a short paper may give a
                  shorter script, never a padded one
    speakers      known hosts only, alternating turns, every host speaks, no "Name:" labels
    unspeakable   markup, URLs, e-mail addresses, LaTeX, bracketed citations, stray symbols
    grounding     every number, percentage, acronym and proper name occurs in the paper (or is
                  a host or show name), and so does every passage a turn quotes; the flag
                  carries the closest thing the paper does say
    repetition    a sentence said twice, or nearly twice
    brand         show and host names spelled right, banned phrases, required intro and outro
                  lines, spellings that the pronunciation lexicon can match
    injection     text in the paper addressed to a model (a warning: the reviewer sees it), and
                  such text carried into the script (an error)
    language      every turn is in the episode's language (identified turn by turn)
    credits       the paper's title and authors were read with confidence (an unsure reading
                  is a warning, an unreadable one an error); the reviewer corrects them

Error-severity flags make the writer chain retry or fall back; warnings go to the reviewer.
The estimated duration of any script comes from `words_per_minute`, here and nowhere else.
Whatever depends on the language (sentence ends, what a listener hears as broken, which
capitalised words are names, the speaking rate) comes from the episode language's phrasebook.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shipyard import INVISIBLE_MARKS, Severity
from shipyard import span as traced
from shipyard_podcast.language import (
    Phrasebook,
    base_language,
    identify_languages,
    language_name,
    number_pattern,
    phrasebook,
    plain_number,
    wording,
)
from shipyard_podcast.models import Flag, Paper, Script, Turn
from shipyard_podcast.settings import PodcastSettings

__all__ = [
    "CHECKS",
    "LENGTH_TOLERANCE",
    "PADDING_ALLOWANCE",
    "PAPER_CHECKS",
    "SHORT_PAPER_FACTOR",
    "check_script",
    "estimated_seconds",
    "injection_spans",
    "listener_spans",
    "measured_words",
    "says_line",
    "split_sentences",
    "target_words",
    "unspeakable_spans",
    "words_per_minute",
]

# A conversational speaking rate where a language has no phrasebook to say its own.
WORDS_PER_MINUTE = 150
LENGTH_TOLERANCE = 0.15  # a script may miss its target duration by this share either way
# A paper with fewer voiced words than this many times the target's words is "short": its
# script may fall short of the target, because filling it would mean padding.
SHORT_PAPER_FACTOR = 2.0
# A script about a short paper is padded when it is longer than the paper itself plus this many
# words for the opening, the questions and the goodbye.
PADDING_ALLOWANCE = 100


def words_per_minute(language: str) -> int:
    """How many words a host says in a minute in `language`: its phrasebook's rate."""
    book = phrasebook(language)
    return book.words_per_minute if book else WORDS_PER_MINUTE


def estimated_seconds(words: int, language: str = "en") -> float:
    """How long `words` words take to say in `language`."""
    return round(words * 60.0 / words_per_minute(language), 1)


def target_words(settings: PodcastSettings) -> int:
    """The number of words that fill the configured target duration in the episode's language."""
    return round(settings.script.target_minutes * words_per_minute(settings.show.language))


@dataclass(frozen=True)
class _Subject:
    """What every check looks at: the script, the paper it was written from, the settings."""

    script: Script
    paper: Paper
    index: _PaperIndex
    settings: PodcastSettings


# The guardrails, by name (`shipyard show` lists them from here).
CHECKS: dict[str, Callable[[_Subject], Iterable[Flag]]] = {
    "length": lambda s: _check_length(s.script, s.index, s.settings),
    "speakers": lambda s: _check_speakers(s.script),
    "unspeakable": lambda s: _check_unspeakable(s.script),
    "grounding": lambda s: _check_grounding(s.script, s.index, s.settings),
    "repetition": lambda s: _check_repetition(s.script),
    "brand": lambda s: _check_brand(s.script, s.settings),
    "injection": lambda s: _check_injection(s.script, s.paper),
    "language": lambda s: _check_language(s.script, s.settings),
    "listener": lambda s: _check_listener(s.script, s.settings.show.language),
    "paper": lambda s: _check_paper(s.paper),
    "credits": lambda s: _check_credits(s.script, s.paper),
}
# Checks about the paper, not the script: no writer can fix them, so they never make the
# writer chain retry; they hold the run for the reviewer.
PAPER_CHECKS = frozenset({"paper", "credits"})
# Below this confidence a title or author list is an error, below SURE a warning.
UNREADABLE = 0.3
SURE = 0.8


def check_script(script: Script, paper: Paper, settings: PodcastSettings) -> list[Flag]:
    """Every check's flags for `script` written from `paper`, errors first, in turn order;
    held to the settings for the script's language (its AI disclosure, its speaking rate)."""
    settings = settings.for_language(script.language)
    subject = _Subject(script, paper, _PaperIndex.build(paper, script), settings)
    flags: list[Flag] = []
    for name, check in CHECKS.items():
        with traced(f"check {name}"):
            flags += check(subject)
    order = {"error": 0, "warning": 1}
    return sorted(flags, key=lambda f: (order[f.severity], -1 if f.turn is None else f.turn))


# --- text helpers shared with the writers ---------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_BOUNDARY = re.compile(r"(?<=[.!?])[\"”’»)\]]*\s+(?=[\"“„«(\[¿¡]?(\w))")


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Split prose into sentences, keeping abbreviations ("et al.", "Fig.", "z. B.") and
    initials whole. A paragraph's end always ends a sentence: a heading or a label set on a
    line of its own never runs into the sentence after it ("Security A key selling point...")."""
    paragraphs = re.split(r"\n\s*\n", text)
    if len(paragraphs) > 1:
        return [s for paragraph in paragraphs for s in split_sentences(paragraph, language)]
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return []
    abbreviations = wording(language).abbreviations
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        following = match.group(1)
        if not (following.isupper() or following.isdigit()):
            continue  # a sentence starts with a capital or a number
        before = text[start : match.start()].rstrip('"”’»)]')
        last_word = before.rsplit(" ", 1)[-1].rstrip(".!?").lower()
        if last_word in abbreviations or re.fullmatch(r"[^\W\d_]", last_word):
            continue  # "et al. Smith", "J. Smith": not a boundary
        sentences.append(text[start : match.start()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


@dataclass(frozen=True, slots=True)
class Span:
    kind: str
    text: str
    severity: Severity
    why: str


_UNSPEAKABLE: list[tuple[str, re.Pattern[str], Severity, str]] = [
    (
        "url",
        re.compile(r"\bhttps?://\S+|\bwww\.\S+|\b[\w.-]+\.(?:com|org|net|io|edu|gov|ai)/\S*"),
        "error",
        "a URL would be read out character by character",
    ),
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "error", "an e-mail address"),
    ("latex", re.compile(r"\\[A-Za-z]+|\$[^$\n]{1,80}\$|[_^]\{|[{}]"), "error", "LaTeX"),
    ("markup", re.compile(r"<\/?[A-Za-z][^>]{0,40}>|&[a-z]+;|&#\d+;"), "error", "HTML"),
    (
        "markup",
        re.compile(r"\*\*|__|`|^\s*#{1,6}\s|\[[^\]]*\]\([^)]*\)|^\s*[-*•]\s", re.M),
        "error",
        "Markdown",
    ),
    ("markup", re.compile(r"\|"), "error", "a table or pipe character"),
    (
        "citation",
        re.compile(r"\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\]|\[[^\]]{0,60}\]"),
        "error",
        "bracketed text (a citation or stage direction) would be read aloud",
    ),
    (
        "citation",
        re.compile(r"\([A-Z][A-Za-z'-]+(?: et al\.?| and [A-Z][A-Za-z'-]+)?,? \d{4}[a-z]?\)"),
        "warning",
        "an author-year citation",
    ),
    (
        "symbol",
        re.compile(r"[→←↔⇒≤≥±×÷∑∏∫√∞≈≠≡∈∉∀∃∂∇†‡§¶※✓✗\u0370-\u03ff]+"),
        "warning",
        "a symbol or Greek letter that text-to-speech cannot say reliably",
    ),
]


def unspeakable_spans(text: str) -> list[Span]:
    """Everything in `text` that text-to-speech would read badly."""
    found: list[Span] = []
    for kind, pattern, severity, why in _UNSPEAKABLE:
        found.extend(Span(kind, m.group(0), severity, why) for m in pattern.finditer(text))
    return found


# --- what a listener would hear as broken -----------------------------------------------------

MONOLOGUE_WORDS = 150  # about a minute of one voice: longer, and a listener stops following
_FOOTNOTE_GLUED = re.compile(r"\b[^\W\d_]{3,}\d{1,2}\b")  # "model6": a footnote marker
_ODD = re.compile(r"[\ufffd\ue000-\uf8ff\u0000-\u0008\u000b\u000c\u000e-\u001f]")


@dataclass(frozen=True, slots=True)
class _ListenerRules:
    """What a listener hears as broken, in one language."""

    doubled: re.Pattern[str]
    doubled_ok: frozenset[str]
    cut_off: re.Pattern[str]
    function_words: frozenset[str]
    accented_letters: frozenset[str]  # the letters with a mark the language writes


@functools.cache
def _listener_rules(language: str) -> _ListenerRules:
    book = wording(language)
    rules = book.listener
    return _ListenerRules(
        doubled=re.compile(r"\b([^\W\d_]{3,})[ ,]+(\1)(?:\b|-)", re.I),
        doubled_ok=frozenset(rules["doubled"].split()),
        cut_off=re.compile(rules["cut_off"], re.I),
        function_words=frozenset(rules["function_words"].split()),
        accented_letters=frozenset(rules["accented_letters"]),
    )


def listener_spans(text: str, language: str = "en") -> list[Span]:
    """What a listener would hear as broken in `text`: a word said twice ("object
    object-oriented"), a sentence cut off where a citation was removed ("is available in."),
    font or math debris read as words ("vectoránd", "uî", "model6")."""
    rules = _listener_rules(language)
    found = [
        Span("doubled", m.group(0), "error", "a word said twice in a row")
        for m in rules.doubled.finditer(text)
        if m.group(1).lower() not in rules.doubled_ok
    ]
    found += [
        Span("cut-off", sentence[-40:], "error", "a sentence that stops mid-thought")
        for sentence in split_sentences(text, language)
        if rules.cut_off.search(sentence)
    ]
    found += [
        Span("control", f"U+{ord(m.group(0)):04X}", "error", "an invisible direction mark")
        for m in INVISIBLE_MARKS.finditer(text)
    ]
    words = [(t, t.strip(".,;:!?()\"'“”‘’«»„¿¡")) for t in re.findall(r"\S+", text)]
    found += [  # a mark alone ("« ", " ?" in French typography) is no debris
        Span("garbled", token, "error", "a token that is extraction debris, not a word")
        for token, word in words
        if word and _garbled(word, rules)
    ]
    return found


def _garbled(token: str, rules: _ListenerRules) -> bool:
    if not token or _ODD.search(token) or _FOOTNOTE_GLUED.fullmatch(token):
        return True
    plain = unicodedata.normalize("NFKD", token)
    marks = [i for i, c in enumerate(plain) if unicodedata.combining(c)]
    if not marks:
        return False
    letters = "".join(c for c in plain if not unicodedata.combining(c))
    foreign = any(not c.isascii() and c not in rules.accented_letters for c in token.lower())
    if len(letters) <= 2 and letters.isalpha() and letters.islower() and foreign:
        return True  # "uî", "é" in English: a lone accented letter from a formula's font
    if rules.accented_letters:
        return False  # accents belong to the language's words
    # "vectoránd": a word and a function word run together through a stray accent
    first = len(plain[: marks[0]].rstrip("\u0300\u0301\u0302\u0303\u0308")) - 1
    head, tail = letters[:first], letters[first:]
    return len(head) >= 3 and head.islower() and tail.lower() in rules.function_words


_INJECTION = [
    re.compile(
        r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}?\b(?:previous|prior|above|"
        r"earlier|all|any|other|your)\b[^.\n]{0,25}?\b(?:instructions?|prompts?|"
        r"directions|rules|guidelines)\b",
        re.I,
    ),
    re.compile(
        r"\bif you are (?:an? |the )?(?:ai|llm|large language model|language model|"
        r"assistant|chatbot|automated (?:system|reviewer|summari[sz]er)|podcast (?:writer|"
        r"host))\b",
        re.I,
    ),
    re.compile(
        r"\b(?:note|message|instructions?|attention)\s+(?:to|for)\s+(?:any |the |all )?"
        r"(?:ai|llms?|language models?|models?|assistants?|chatbots?|automated reviewers?|"
        r"podcast (?:writers?|hosts?))\b",
        re.I,
    ),
    re.compile(
        r"\b(?:give|write|provide|output|respond with|recommend)\b[^.\n]{0,30}\b(?:a |an )?"
        r"(?:positive review|only positive|glowing review|high score|strong accept)",
        re.I,
    ),
    re.compile(
        r"<\|im_start\|>|<\|system\|>|\[/?INST\]|<<SYS>>|#{2,}\s*(?:instruction|system)\b|"
        r"</?system>",
        re.I,
    ),
    re.compile(r"\b(?:new|updated|hidden) instructions?\s*:", re.I),
    re.compile(
        r"\b(?:you|the assistant|the model) (?:must|should|shall) (?:now |instead |always |"
        r"never )?(?:say|tell|write|respond|reply|praise|claim|state|mention)\b",
        re.I,
    ),
]


def injection_spans(text: str) -> list[str]:
    """Passages of `text` addressed to a model rather than to a reader."""
    ranges = sorted((m.start(), m.end()) for p in _INJECTION for m in p.finditer(text))
    merged: list[tuple[int, int]] = []
    for start, end in ranges:  # matches close together make one finding
        if merged and start <= merged[-1][1] + 80:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return [_context(text, start, end, 60) for start, end in merged]


# --- the paper, indexed once per call --------------------------------------------------------

_TOKEN = re.compile(r"[^\W_][\w'’\-.%/]*")
# Every number of a text, its groups read apart too: "12 100" may be twelve and a hundred.
_UNGROUPED = {".": r"\d+(?:\.\d+)?", ",": r"\d+(?:,\d+)?"}


def _canonical_number(raw: str, mark: str = ".") -> str | None:
    text = plain_number(raw.rstrip("."), mark)
    if not text or not any(c.isdigit() for c in text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    normal = value.normalize()
    return format(normal, "f")


@dataclass(frozen=True, slots=True)
class _PaperIndex:
    text: str  # everything the script may draw on
    words: int  # voiced words
    numbers: dict[str, int]  # canonical number -> offset of its first occurrence
    tokens: frozenset[str]  # every token as written
    lower_tokens: frozenset[str]
    capitalised: tuple[str, ...]  # capitalised tokens, for "did you mean"
    normalised: str  # the text as lower-case words, for finding quoted passages

    @classmethod
    def build(cls, paper: Paper, script: Script | None = None) -> _PaperIndex:
        """What `paper` says, with the names `script` credits (a reviewer's correction of a
        misread name is grounded by the reviewer, not by the text layer)."""
        credits = script.credits_for(paper) if script is not None else None
        parts = [paper.title, *paper.authors, paper.abstract]
        if credits is not None:
            parts += [credits.title, *credits.authors]
        for section in paper.sections:
            parts += [section.heading, section.text]
        parts += paper.captions
        text = "\n".join(p for p in parts if p)
        mark = wording(paper.language).decimal_mark  # "3,5" in a German paper is 3.5
        numbers: dict[str, int] = {}
        for pattern in (number_pattern(mark), _UNGROUPED[mark]):
            for match in re.finditer(pattern, text):
                canonical = _canonical_number(match.group(0), mark)
                if canonical is not None:
                    numbers.setdefault(canonical, match.start())
        tokens = {_strip_token(t) for t in _TOKEN.findall(text)}
        tokens |= {p for t in tokens for p in re.split(r"[-/]", t) if p}
        return cls(
            text=text,
            words=len(paper.body.split()),
            numbers=numbers,
            tokens=frozenset(tokens),
            lower_tokens=frozenset(t.lower() for t in tokens),
            capitalised=tuple(sorted({t for t in tokens if t[:1].isupper()})),
            normalised=f" {_normalise(text)} ",
        )


def _strip_token(token: str) -> str:
    token = token.rstrip(".%'’-/")
    for suffix in ("'s", "’s"):
        token = token.removesuffix(suffix)
    return token


def _context(text: str, start: int, end: int, width: int = 50) -> str:
    left = max(0, start - width)
    right = min(len(text), end + width)
    snippet = re.sub(r"\s+", " ", text[left:right]).strip()
    return ("…" if left else "") + snippet + ("…" if right < len(text) else "")


# --- length ---------------------------------------------------------------------------------


def measured_words(script: Script, settings: PodcastSettings) -> int:
    """The words a script's length is measured by: all but the AI disclosure, a fixed line
    the show requires (like its music, it is not the conversation the target is for)."""
    disclosure = settings.show.ai_disclosure
    said = bool(script.turns) and says_line(script.turns, disclosure, opening=True)
    return script.words - (len(disclosure.split()) if said else 0)


def _check_length(script: Script, index: _PaperIndex, settings: PodcastSettings) -> Iterator[Flag]:
    words = measured_words(script, settings)
    target = target_words(settings)
    minutes = words / words_per_minute(settings.show.language)
    said = f"{words} words, about {minutes:.1f} min against a target of {target} words"
    low, high = target * (1 - LENGTH_TOLERANCE), target * (1 + LENGTH_TOLERANCE)
    short_paper = index.words < target * SHORT_PAPER_FACTOR
    if words > high:
        yield Flag(
            check="length",
            severity="error",
            message=f"too long: {said} ({settings.script.target_minutes:g} min ±15%)",
        )
    if short_paper and words > index.words + PADDING_ALLOWANCE:
        yield Flag(
            check="length",
            severity="error",
            message=f"padded: {said}, but the paper has only {index.words} words",
        )
    elif words < low:
        if short_paper:
            yield Flag(
                check="length",
                severity="warning",
                message=f"short: {said}; the paper has only {index.words} words",
            )
        else:
            yield Flag(
                check="length",
                severity="error",
                message=f"too short: {said}; the writer found about {minutes:.1f} min to say "
                f"about this paper: set podcast.script.target_minutes to {minutes:.0f} or "
                "less (or approve it shorter, with a reason)",
            )


# --- speakers and turn-taking --------------------------------------------------------------


def _check_speakers(script: Script) -> Iterator[Flag]:
    names = [h.name for h in script.hosts]
    if not 1 <= len(names) <= 4 or len(set(names)) != len(names):
        yield Flag(
            check="speakers",
            severity="error",
            message=f"a show needs one to four hosts with distinct names, got {names}",
        )
    spoken: set[str] = set()
    for i, turn in enumerate(script.turns):
        if turn.speaker not in names:
            yield Flag(
                check="speakers",
                severity="error",
                turn=i,
                span=turn.speaker,
                message=f"turn {i + 1} is spoken by {turn.speaker!r}, not one of {names}",
            )
        spoken.add(turn.speaker)
        if not turn.text.strip():
            yield Flag(check="speakers", severity="error", turn=i, message=f"turn {i + 1} is empty")
        if i and len(names) > 1 and turn.speaker == script.turns[i - 1].speaker:
            yield Flag(
                check="speakers",
                severity="error",
                turn=i,
                span=turn.text[:60],
                message=f"turn {i + 1} has {turn.speaker} speaking twice in a row",
            )
        label = re.match(r"\s*([A-Z][\w .'-]{0,30}):\s", turn.text)
        if label and label.group(1).strip() in names:
            yield Flag(
                check="speakers",
                severity="error",
                turn=i,
                span=label.group(0).strip(),
                message=f"turn {i + 1} starts with a speaker label, which would be read aloud",
            )
    silent = [n for n in names if n not in spoken]
    if script.turns and silent:
        yield Flag(check="speakers", severity="error", message=f"{silent} never speak")
    if not script.turns:
        yield Flag(check="speakers", severity="error", message="the script has no turns")


# --- unspeakable content --------------------------------------------------------------------


def _check_paper(paper: Paper) -> Iterator[Flag]:
    """What extraction noticed about the paper (short, not quite a paper, garbage removed),
    shown to the reviewer beside the script."""
    for warning in paper.warnings:
        yield Flag(check="paper", severity="warning", message=f"the paper: {warning}")


def _check_credits(script: Script, paper: Paper) -> Iterator[Flag]:
    """Whether the episode names the paper and its authors with confidence: a reading that
    extraction was unsure of is flagged until a reviewer corrects it."""
    credits = script.credits_for(paper)
    if not credits.title.strip():
        yield Flag(check="credits", severity="error", message="the episode names no title")
    if credits.title != paper.title or credits.authors != paper.authors:
        return  # a reviewer's correction: they read the first page
    front = paper.front
    doubts = f" ({'; '.join(front.doubts)})" if front.doubts else ""
    for what, value, source, confidence in (
        ("title", repr(paper.title), front.title_source, front.title_confidence),
        (
            "authors",
            ", ".join(paper.authors) or "no author",
            front.authors_source,
            front.authors_confidence,
        ),
    ):
        if confidence >= SURE:
            continue
        unreadable = confidence < UNREADABLE and front.title_page  # no title page: no names
        severity: Severity = "error" if unreadable else "warning"
        yield Flag(
            check="credits",
            severity=severity,
            message=f"the {what} may be misread: {value}, from {source or 'nowhere'}, "
            f"{confidence:.0%} sure{doubts}; check the paper's first page and correct it",
        )


def _span_flags(
    script: Script, check: str, spans_of: Callable[[str], list[Span]], verb: str
) -> Iterator[Flag]:
    """A flag for each span a finder reports in each turn."""
    for i, turn in enumerate(script.turns):
        for span in spans_of(turn.text):
            yield Flag(
                check=check,
                severity=span.severity,
                turn=i,
                span=span.text,
                message=f"turn {i + 1} {verb} {span.why}: {span.text!r}",
            )


def _check_listener(script: Script, language: str) -> Iterator[Flag]:
    yield from _span_flags(script, "listener", lambda t: listener_spans(t, language), "has")
    for i, turn in enumerate(script.turns):
        words = len(turn.text.split())
        if words > MONOLOGUE_WORDS:
            yield Flag(
                check="listener",
                severity="warning",
                turn=i,
                message=f"turn {i + 1} is a monologue of {words} words (more than "
                f"{MONOLOGUE_WORDS}): a listener stops following one voice that long",
            )


def _check_unspeakable(script: Script) -> Iterator[Flag]:
    return _span_flags(script, "unspeakable", unspeakable_spans, "contains")


# --- grounding ------------------------------------------------------------------------------

# Words a script may capitalise without them being names: sentence openers of ordinary talk.
_COMMON = frozenset(
    _words("""
a about above actually after again against all also although always an and another any anyway
are around as at back be because before being below besides between both but by can could did
do does doing done down during each either else even ever every exactly first for from further
good got great had has have having he her here hers him his how however i if in indeed instead
interesting into is it its just last later let let's like maybe me meanwhile might more moreover
most much must my next no nor not now of off often ok okay on once one only or other otherwise
our out over perhaps please quite rather really right same second she should since so some
still such sure than thank thanks that the their them then there therefore these they third
this those though through thus to today together too true under until up us very was we well
were what whatever when where whether which while who whom whose why will with within without
would yes yet you your yours absolutely agreed alright before hello hi welcome fine nice
fascinating good-bye goodbye bye great wow hmm huh indeed clearly sounds that's it's i'm we're
you're they're there's here's what's how's let's don't doesn't didn't isn't aren't wasn't
can't won't wouldn't couldn't shouldn't i've we've you've i'd we'd you'd i'll we'll you'll
speaking overall finally lastly to recap summing sum short put big one two three four five six
seven eight nine ten listeners listen thanks today's episode show podcast paper papers study
authors author researchers section part question questions answer point points idea ideas
go tell anything fair catch either neither everything something nothing someone
""")
)

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
            "fifteen sixteen seventeen eighteen nineteen"
        )
    )
} | {
    w: 10 * (i + 2)
    for i, w in enumerate(_words("twenty thirty forty fifty sixty seventy eighty ninety"))
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_SPELLED = re.compile(
    r"\b(?:(?:"
    + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
    + "|"
    + "|".join(_SCALES)
    + r")(?:[\s-]+(?:and\s+)?)?)+(?:\s*(?:percent|per cent))?",
    re.I,
)


def _spelled_value(phrase: str) -> int | None:
    words = re.findall(r"[a-z]+", phrase.lower())
    if not any(w in _NUMBER_WORDS or w in _SCALES for w in words):
        return None
    total, current = 0, 0
    for word in words:
        if word in _NUMBER_WORDS:
            current += _NUMBER_WORDS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def _allowed_words(settings: PodcastSettings) -> frozenset[str]:
    show = settings.show
    texts = [
        show.title,
        show.author,
        show.intro,
        show.outro,
        show.ai_disclosure,
        *(h.name for h in show.hosts),
        *show.pronunciations,
    ]
    return frozenset(_strip_token(t) for text in texts for t in _TOKEN.findall(text))


def _check_grounding(
    script: Script, index: _PaperIndex, settings: PodcastSettings
) -> Iterator[Flag]:
    language = settings.show.language
    allowed = _allowed_words(settings) | {h.name for h in script.hosts}
    book = wording(language)
    for i, turn in enumerate(script.turns):
        yield from _ground_numbers(i, turn.text, index, allowed, book)
        yield from _ground_names(i, turn.text, index, allowed, book)
        for span in turn.spans:
            if f" {_normalise(span)} " not in index.normalised:
                sentences = [
                    s for part in index.text.split("\n") for s in split_sentences(part, language)
                ]
                close = difflib.get_close_matches(span, sentences, n=1, cutoff=0.6)
                yield Flag(
                    check="grounding",
                    severity="error",
                    turn=i,
                    span=span,
                    evidence=f"closest in the paper: {close[0]!r}"
                    if close
                    else "nothing like it in the paper",
                    message=f"turn {i + 1} quotes a passage that is not in the paper",
                )


def _ground_numbers(
    i: int, text: str, index: _PaperIndex, allowed: frozenset[str], book: Phrasebook
) -> Iterator[Flag]:
    mark = book.decimal_mark  # the script's numbers as its language writes them
    for match in re.finditer(rf"(?<![\w.,-])({number_pattern(mark)})(\s?%|\s?percent)?", text):
        raw = match.group(0)
        token_end = text[match.end() : match.end() + 1]
        if token_end and (token_end.isalpha() and token_end not in "xX"):
            continue  # "3D", "2nd": a term, grounded as a token below
        canonical = _canonical_number(match.group(1), mark)
        if canonical is None or canonical in index.numbers or match.group(1) in allowed:
            continue  # in the paper, or in the show's own lines ("Episode 42")
        yield Flag(
            check="grounding",
            severity="error",
            turn=i,
            span=raw.strip(),
            message=f"turn {i + 1} says {raw.strip()!r}, a number that does not occur in the paper",
            evidence=_closest_number(canonical, index),
        )
    for match in _SPELLED.finditer(text) if book.code == "en" else ():  # English number words
        phrase = match.group(0).strip(" -")
        value = _spelled_value(phrase)
        percent = "percent" in phrase.lower() or "per cent" in phrase.lower()
        if value is None or (value <= 12 and not percent):
            continue  # "one thing", "two hosts": ordinary speech
        words_only = re.sub(r"\s*(percent|per cent)$", "", phrase, flags=re.I)
        if str(value) in index.numbers or words_only.lower() in index.text.lower():
            continue
        yield Flag(
            check="grounding",
            severity="error",
            turn=i,
            span=phrase,
            message=f"turn {i + 1} says {phrase!r} ({value}), a number that does not occur "
            "in the paper",
            evidence=_closest_number(str(value), index),
        )


def _closest_number(canonical: str, index: _PaperIndex) -> str:
    if not index.numbers:
        return "the paper has no numbers"
    target = Decimal(canonical)
    best = min(index.numbers, key=lambda n: abs(Decimal(n) - target))
    offset = index.numbers[best]
    return f"closest in the paper: {best!r} in {_context(index.text, offset, offset + len(best))!r}"


def _ground_names(
    i: int, text: str, index: _PaperIndex, allowed: frozenset[str], book: Phrasebook
) -> Iterator[Flag]:
    pending: list[tuple[str, Severity]] = []
    for sentence in split_sentences(text, book.code):
        for position, raw in enumerate(_TOKEN.findall(sentence)):
            token = _strip_token(raw)
            verdict = _name_verdict(token, position == 0, index, allowed, book)
            if verdict is None:
                yield from _flush_names(i, pending, index)
                pending = []
            else:
                pending.append((token, verdict))
        yield from _flush_names(i, pending, index)
        pending = []


def _name_verdict(
    token: str, sentence_start: bool, index: _PaperIndex, allowed: frozenset[str], book: Phrasebook
) -> Severity | None:
    """None when `token` is grounded or not a name; otherwise how bad its absence is."""
    if not token or token in allowed or token in index.tokens:
        return None
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    if has_digit and not has_alpha:
        return None  # numbers are grounded by _ground_numbers
    if has_digit:  # "GPT-4", "F1", "3D", "2nd", "10x"
        if re.fullmatch(r"\d+(?:st|nd|rd|th|x|s)", token, re.I):
            return None
        return None if token.lower() in index.lower_tokens else "error"
    upper = sum(c.isupper() for c in token)
    if upper >= 2:  # an acronym: "NLP", "LLMs", "LaTeX"
        stem = token[:-1] if token.endswith("s") and token[:-1].isupper() else token
        return None if stem in index.tokens or stem in allowed else "error"
    if upper == 0:
        return None
    if token.lower() in _COMMON or token.lower() in book.common_words:
        return None
    if token.lower() in index.lower_tokens:  # "Transformer" where the paper says "transformer"
        return None
    if book.capitalised_nouns:  # a German noun the paper does not use: the reviewer judges
        return "warning"
    return "warning" if sentence_start else "error"


def _flush_names(i: int, pending: list[tuple[str, Severity]], index: _PaperIndex) -> Iterator[Flag]:
    if not pending:
        return
    span = " ".join(token for token, _ in pending)
    severity: Severity = "error" if any(s == "error" for _, s in pending) else "warning"
    close = difflib.get_close_matches(pending[0][0], index.capitalised, n=1, cutoff=0.75)
    evidence = f"closest in the paper: {close[0]!r}" if close else "nothing like it in the paper"
    what = (
        "an acronym or term"
        if any(sum(c.isupper() for c in t) >= 2 for t, _ in pending)
        else "a name"
    )
    yield Flag(
        check="grounding",
        severity=severity,
        turn=i,
        span=span,
        evidence=evidence,
        message=f"turn {i + 1} mentions {span!r}, {what} that does not occur in the paper",
    )


# --- repetition -----------------------------------------------------------------------------


def _normalise(sentence: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", sentence.lower()))


def _check_repetition(script: Script) -> Iterator[Flag]:
    seen: dict[str, int] = {}
    bags: list[tuple[frozenset[str], int, str]] = []
    for i, turn in enumerate(script.turns):
        for sentence in split_sentences(turn.text):
            key = _normalise(sentence)
            words = key.split()
            if len(words) < 4:
                continue
            if key in seen:
                yield Flag(
                    check="repetition",
                    severity="error",
                    turn=i,
                    span=sentence,
                    message=f"turn {i + 1} repeats a sentence first said in turn {seen[key] + 1}",
                )
                continue
            seen[key] = i
            bag = frozenset(words)
            if len(words) >= 8:
                for other, j, first in bags:
                    if len(bag & other) / len(bag | other) >= 0.8:
                        yield Flag(
                            check="repetition",
                            severity="warning",
                            turn=i,
                            span=sentence,
                            evidence=first,
                            message=f"turn {i + 1} nearly repeats a sentence from turn {j + 1}",
                        )
                        break
                bags.append((bag, i, sentence))


# --- brand rules ----------------------------------------------------------------------------


def _windows(words: list[str], size: int) -> Iterable[str]:
    return (" ".join(words[k : k + size]) for k in range(max(0, len(words) - size + 1)))


def _check_brand(script: Script, settings: PodcastSettings) -> Iterator[Flag]:
    show = settings.show
    names = [show.title, *(h.name for h in script.hosts)]
    for i, turn in enumerate(script.turns):
        lowered = turn.text.lower()
        words = re.findall(r"[\w'’-]+", turn.text)
        for name in names:
            size = len(name.split())
            for window in _windows(words, size):
                if window == name or (size == 1 and not window[:1].isupper()):
                    continue
                if window.lower() == name.lower():
                    yield Flag(
                        check="brand",
                        severity="warning",
                        turn=i,
                        span=window,
                        message=f"turn {i + 1} writes {window!r}; the name is {name!r}",
                    )
                elif (
                    len(name) >= 4
                    and window.lower() not in _COMMON
                    and _similar(window.lower(), name.lower())
                ):
                    yield Flag(
                        check="brand",
                        severity="error",
                        turn=i,
                        span=window,
                        message=f"turn {i + 1} misspells {name!r} as {window!r}",
                    )
        for phrase in show.banned_phrases:
            at = lowered.find(phrase.lower())
            if phrase and at >= 0:
                yield Flag(
                    check="brand",
                    severity="error",
                    turn=i,
                    span=turn.text[at : at + len(phrase)],
                    message=f"turn {i + 1} uses the banned phrase {phrase!r}",
                )
        for written, spoken in show.pronunciations.items():
            yield from _check_pronunciation(i, turn.text, written, spoken)
    yield from _check_required_line(script, show.intro, "intro")
    yield from _check_required_line(script, show.ai_disclosure, "AI disclosure")
    yield from _check_required_line(script, show.outro, "outro")


def _similar(a: str, b: str) -> bool:
    """A near miss: at least 80% alike (the cheap upper bounds first, as this runs a lot)."""
    if abs(len(a) - len(b)) > len(b) // 4 + 1:
        return False
    matcher = difflib.SequenceMatcher(None, a, b)
    return (
        matcher.real_quick_ratio() >= 0.8
        and matcher.quick_ratio() >= 0.8
        and matcher.ratio() >= 0.8
    )


def _check_pronunciation(i: int, text: str, written: str, spoken: str) -> Iterator[Flag]:
    pattern = re.compile(rf"(?<!\w){re.escape(written)}(?!\w)", re.I)
    for match in pattern.finditer(text):
        if match.group(0) != written:
            yield Flag(
                check="brand",
                severity="warning",
                turn=i,
                span=match.group(0),
                message=f"turn {i + 1} writes {match.group(0)!r}; the pronunciation lexicon "
                f"has {written!r}, so spell it that way for it to apply",
            )
    if spoken.lower() != written.lower() and re.search(
        rf"(?<!\w){re.escape(spoken)}(?!\w)", text, re.I
    ):
        yield Flag(
            check="brand",
            severity="warning",
            turn=i,
            span=spoken,
            message=f"turn {i + 1} spells out the pronunciation {spoken!r}; write {written!r} "
            "and let the lexicon say it",
        )


def says_line(turns: Sequence[Turn], line: str, *, opening: bool) -> bool:
    """Whether the first (or last) two turns say `line`, spacing and case aside."""
    wanted = _normalise(line)
    chosen = turns[:2] if opening else turns[-2:]
    return any(wanted in _normalise(t.text) for t in chosen)


def _check_required_line(script: Script, line: str, what: str) -> Iterator[Flag]:
    if not line or not script.turns:
        return
    opening = what != "outro"
    if not says_line(script.turns, line, opening=opening):
        where = "first" if opening else "last"
        yield Flag(
            check="brand",
            severity="error",
            span=line,
            turn=0 if opening else len(script.turns) - 1,
            message=f"the required {what} line is missing from the {where} two turns",
        )


# --- injection ------------------------------------------------------------------------------


def _check_injection(script: Script, paper: Paper) -> Iterator[Flag]:
    places = [("the abstract", paper.abstract), ("the title", paper.title)]
    places += [(f"section {s.heading!r}", s.text) for s in paper.sections]
    places += [("a caption", c) for c in paper.captions]
    places += [("the references", r) for r in paper.references]
    for where, text in places:
        for span in injection_spans(text):
            yield Flag(
                check="injection",
                severity="warning",
                span=span,
                evidence=where,
                message=f"{where} contains text addressed to a model; no writer follows "
                "it, but a reviewer should know it is there",
            )
    for i, turn in enumerate(script.turns):
        for span in injection_spans(turn.text):
            yield Flag(
                check="injection",
                severity="error",
                turn=i,
                span=span,
                message=f"turn {i + 1} carries an instruction addressed to a model",
            )


# --- language -------------------------------------------------------------------------------


# A turn shorter than this is not judged on its own (a classifier needs words to go on); it
# is judged with the whole script.
_LANGUAGE_MIN_WORDS = 12
# How sure the classifier must be that a turn is in another language to flag it: a turn
# full of the paper's English terms is still the episode's language.
_LANGUAGE_CONFIDENCE = 0.9


def _check_language(script: Script, settings: PodcastSettings) -> Iterator[Flag]:
    """Every turn in the episode's language: each turn long enough to tell is identified on
    its own, and the whole script too."""
    wanted = base_language(settings.show.language)
    long_turns = [
        (i, t.text)
        for i, t in enumerate(script.turns)
        if len(t.text.split()) >= _LANGUAGE_MIN_WORDS
    ]
    whole = " ".join(t.text for t in script.turns)
    texts = [text for _, text in long_turns]
    if len(whole.split()) >= 40:
        texts.append(whole)
    if not texts:
        return
    found = identify_languages(texts)
    for (i, text), (detected, confidence) in zip(long_turns, found, strict=False):
        if detected != wanted and confidence >= _LANGUAGE_CONFIDENCE:
            yield Flag(
                check="language",
                severity="error",
                turn=i,
                span=text[:80],
                message=f"turn {i + 1} reads as {language_name(detected)} "
                f"({confidence:.0%} sure), but the episode is in {language_name(wanted)}",
            )
    if len(texts) > len(long_turns):
        detected, confidence = found[-1]
        if detected != wanted:
            yield Flag(
                check="language",
                severity="error",
                span=whole[:80],
                message=f"the script reads as {language_name(detected)}, but the episode "
                f"is in {language_name(settings.show.language)}",
            )
