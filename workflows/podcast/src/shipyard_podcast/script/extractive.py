"""The extractive writer: no model, same paper and settings, same script. The paper's most
informative sentences, made speakable and framed as a conversation between the two hosts, so
the flow always ends on a writer that works offline."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from shipyard_podcast.language import (
    Phrasebook,
    base_language,
    identify_languages,
    language_name,
    phrasebook,
    wording,
    written_languages,
)
from shipyard_podcast.models import Paper, Script, Turn
from shipyard_podcast.script.checks import (
    LENGTH_TOLERANCE,
    PADDING_ALLOWANCE,
    injection_spans,
    listener_spans,
    measured_words,
    split_sentences,
    target_words,
    unspeakable_spans,
)
from shipyard_podcast.script.writing import Feedback, Usage, WriterFailed, assemble_script
from shipyard_podcast.settings import PodcastSettings

__all__ = [
    "EXTRACTIVE",
    "MAX_PAPER_SHARE",
    "ExtractiveWriter",
    "extractive_phrasebook",
    "write_extractive",
]

EXTRACTIVE = "extractive"


class ExtractiveWriter:
    name = EXTRACTIVE

    def __init__(self, settings: PodcastSettings) -> None:
        self.settings = settings
        self.excluded: set[str] = set()  # grows with every retry of this chain

    def cost(self, usage: Usage) -> float:
        return 0.0

    async def write(self, paper: Paper, feedback: Feedback | None, usage: Usage) -> Script:
        book = extractive_phrasebook(paper, self.settings.show.language)
        if feedback is not None:  # leave out every sentence that holds what a flag points at
            for flag in feedback.errors:
                if flag.turn is None:
                    continue
                for sentence in split_sentences(feedback.script.turns[flag.turn].text, book.code):
                    if not flag.span or flag.span in sentence:
                        self.excluded.add(_key(sentence))
                if flag.span:
                    self.excluded |= {
                        _key(s)
                        for section in (paper.abstract, *(x.text for x in paper.sections))
                        for s in split_sentences(section, book.code)
                        if flag.span in (_voiceable(s, book) or "")
                    }
        return write_extractive(paper, self.settings, exclude=frozenset(self.excluded))


def extractive_phrasebook(paper: Paper, wanted: str) -> Phrasebook:
    """The phrasebook the extractive writer writes `paper`'s episode in language `wanted`
    with: it writes in the paper's own language only (it voices the paper's sentences), and
    only in a language with a phrasebook (WriterFailed, with what would write it, otherwise)."""
    book = phrasebook(wanted)
    if base_language(paper.language) != base_language(wanted):
        raise WriterFailed(
            f"the extractive writer voices the paper's own sentences, so it writes only in "
            f"the paper's language, {language_name(paper.language)}, not "
            f"{language_name(wanted)}: add a model writer to podcast.script.writers to "
            "translate"
        )
    if book is None:
        raise WriterFailed(
            f"the extractive writer has no phrasebook for {language_name(wanted)} (it writes "
            f"{', '.join(written_languages())}): add a model writer to "
            "podcast.script.writers, or a phrasebook (docs/languages.md)"
        )
    return book


# A script never voices more than this share of a short paper's words: it is a conversation
# about the paper, not a reading of it, and it is never padded to reach the target.
MAX_PAPER_SHARE = 0.5
_MIN_WORDS, _MAX_WORDS = 8, 40

# Universal: holes left by formulas, numbered equations, lists cut at a colon.
_HOLES = re.compile(r":$|;\s*\d+\.$|\.\.$|\(\d+\)")
_FORMULA = re.compile(r"[=<>~∼_·…]")
_WORD = r"[^\W\d_](?:[^\W\d_]|-)+"


@functools.cache
def _citation(code: str) -> re.Pattern[str]:
    """Bracketed and author-year citations ("[3]", "(Smith and Lee, 2020)"), in the language
    `code` (its "and")."""
    book = wording(code)
    name = r"[A-Z][^\W\d_'-]*(?:['-][^\W\d_]+)*"
    return re.compile(
        rf"\s*\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\]|\s*\((?:{name}(?: et al\.?"
        rf"| (?:and|{re.escape(book.conjunction)}) {name})?,? \d{{4}}[a-z]?(?:; ?)?)+\)"
    )


@functools.cache
def _variable(code: str) -> re.Pattern[str]:
    """A formula's variables ("d1", "x"): a lone letter that is not a word of the language
    `code`."""
    book = wording(code)
    words = "".join(sorted(book.one_letter_words))
    lone = rf"(?![{re.escape(words)}])[^\W\d_]" if words else r"[^\W\d_]"
    return re.compile(rf"\b[^\W\d_]\d+\b|(?<![\w.]){lone}(?![\w.'’])")


def _key(sentence: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", sentence.lower()))


def _content_words(sentence: str, book: Phrasebook) -> list[str]:
    stop = book.writer.stopwords
    return [w for w in re.findall(_WORD, sentence.lower()) if w not in stop]


def _voiceable(raw: str, book: Phrasebook) -> str | None:
    """The sentence as a host would say it, or None when it cannot be said well."""
    sentence = _citation(book.code).sub("", raw)
    sentence = re.sub(r"\s+([,.;:!?])", r"\1", sentence).strip()
    for pattern, replacement in book.writer.first_person:
        sentence = pattern.sub(replacement, sentence)
    words = sentence.split()
    if not (_MIN_WORDS <= len(words) <= _MAX_WORDS):
        return None
    if not sentence[0].isupper() or sentence[-1] not in ".!?":
        return None
    if book.writer.pointers.search(sentence) or _HOLES.search(sentence):
        return None
    if re.match(r"[^\W\d_][\w -]{0,24}: ", sentence):
        return None  # "Sequential: each task ...": an item of a list, not a sentence
    if unspeakable_spans(sentence) or injection_spans(sentence) or _FORMULA.search(sentence):
        return None
    if listener_spans(sentence, book.code):
        return None  # a doubled word, a sentence cut off, debris: a listener hears it broken
    if len(_variable(book.code).findall(sentence)) >= 2:
        return None  # "d1, d2", "x and y": the variables of a formula
    if sentence.count("(") != sentence.count(")") or sentence.count('"') % 2:
        return None
    letters = sum(c.isalpha() for c in sentence)
    if letters < 0.7 * len(sentence.replace(" ", "")):
        return None  # formulas, tables, numbers run together
    if sum(any(c.isdigit() for c in w) for w in words) > len(words) / 4:
        return None
    if any(len(w) > 30 for w in words):
        return None  # glued words from extraction
    return sentence


@dataclass
class _Candidate:
    text: str
    section: int  # index into the segments; -1 for the abstract
    position: int
    score: float
    source: str  # the sentence as the paper has it
    book: Phrasebook
    words: int = field(init=False)
    bag: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.words = len(self.text.split())
        self.bag = frozenset(_content_words(self.text, self.book))


def _candidates(
    paper: Paper, book: Phrasebook, exclude: frozenset[str], focus: frozenset[str] = frozenset()
) -> list[_Candidate]:
    frequency = Counter(_content_words(paper.body, book))
    title_words = set(_content_words(paper.title, book))
    unvoiced = book.writer.unvoiced_sections
    sources = [
        (-1, paper.abstract),
        *((i, s.text) for i, s in enumerate(paper.sections) if not unvoiced.search(s.heading)),
    ]
    found: list[_Candidate] = []
    seen: set[str] = set()
    for section, text in sources:
        for position, raw in enumerate(split_sentences(text, book.code)):
            sentence = _voiceable(raw, book)
            if sentence is None or _key(sentence) in exclude or _key(sentence) in seen:
                continue
            seen.add(_key(sentence))
            bag = set(_content_words(sentence, book))
            weight = sum(math.log1p(frequency[w]) for w in bag) / math.sqrt(len(sentence.split()))
            cues = len(book.writer.cues.findall(sentence))
            weight *= 1 + 0.25 * cues + 0.2 * len(bag & title_words)
            weight *= 1 + 0.6 * len(bag & focus)  # what the profile asks the episode to dwell on
            if book.writer.dangling.match(sentence):
                weight *= 0.55
            if position == 0:
                weight *= 1.15
            found.append(_Candidate(sentence, section, position, weight, raw, book))
    return _in_language(found, book)


# How sure the classifier must be that a sentence is in another language to leave it out.
_OTHER_LANGUAGE = 0.9


def _in_language(candidates: list[_Candidate], book: Phrasebook) -> list[_Candidate]:
    """The candidates in the episode's language: many papers carry an abstract in a second
    language (an English one beside a Spanish paper's), which the episode must not read out."""
    found = identify_languages([c.text for c in candidates]) if candidates else []
    return [
        c
        for c, (language, confidence) in zip(candidates, found, strict=True)
        if language == book.code or confidence < _OTHER_LANGUAGE
    ]


def _select(pool: list[_Candidate], budget: int, chosen: list[_Candidate]) -> list[_Candidate]:
    """The best sentences of `pool` within `budget` words, none too like one already chosen."""
    picked: list[_Candidate] = []
    used = 0
    for candidate in sorted(pool, key=lambda c: -c.score):
        if used + candidate.words > (budget if picked else budget * 2):
            continue
        if any(_overlap(candidate, other) > 0.5 for other in (*chosen, *picked)):
            continue
        picked.append(candidate)
        used += candidate.words
    return sorted(picked, key=lambda c: c.position)


def _overlap(a: _Candidate, b: _Candidate) -> float:
    if not a.bag or not b.bag:
        return 0.0
    return len(a.bag & b.bag) / min(len(a.bag), len(b.bag))


def write_extractive(
    paper: Paper, settings: PodcastSettings, *, exclude: frozenset[str] = frozenset()
) -> Script:
    """The deterministic two-host script: no model, same paper and settings, same script.

    It picks the most informative sentences of each section (word weights from the whole paper,
    cue phrases, no near-duplicates) and frames them as a conversation: an opening, a question
    or transition per topic, the other host's reactions, a recap and a goodbye. It aims at the
    target duration and never voices more than MAX_PAPER_SHARE of the paper, so a very short
    paper gives a short episode. `exclude` holds sentences (normalised) it must leave out.
    """
    settings = settings.for_language(settings.language_for(paper))
    book = extractive_phrasebook(paper, settings.show.language)
    focus = frozenset(_content_words(settings.script.focus, book))
    candidates = _candidates(paper, book, exclude, focus)
    paper_words = len(paper.body.split())
    target = target_words(settings)
    goal = min(target, paper_words)  # a short paper gives a short episode
    limit = min(target * (1 + LENGTH_TOLERANCE), paper_words + PADDING_ALLOWANCE)
    high = min(goal, max(int(paper_words * MAX_PAPER_SHARE), 1))
    low = 0
    best = _frame(paper, settings, book, candidates, high)

    def words(script: Script) -> int:
        return measured_words(script, settings)

    # Search the content budget so the whole script, framing included, lands on the goal.
    for _ in range(8):
        if abs(words(best) - goal) <= goal * 0.04 or low >= high:
            break
        content = (low + high) // 2
        script = _frame(paper, settings, book, candidates, content)
        if words(script) > goal:
            high = content - 1
        else:
            low = content + 1
        fits = words(script) <= limit and (
            words(best) > limit or abs(words(script) - goal) < abs(words(best) - goal)
        )
        if fits or (words(best) > limit and words(script) < words(best)):  # else: the shortest
            best = script
    return best


def _frame(
    paper: Paper,
    settings: PodcastSettings,
    book: Phrasebook,
    candidates: list[_Candidate],
    content: int,
) -> Script:
    segments = _plan(paper, candidates, content, settings.script.format)
    return _Conversation(paper, settings, book).build(segments, candidates)


def _plan(
    paper: Paper, candidates: list[_Candidate], content: int, form: str
) -> list[tuple[int, list[_Candidate]]]:
    """Sentences per section, in paper order, within `content` words in all."""
    by_section: dict[int, list[_Candidate]] = {}
    for c in candidates:
        by_section.setdefault(c.section, []).append(c)
    lead_pool = by_section.pop(-1, [])
    chosen: list[_Candidate] = []
    lead_budget = min(60, content // 4) if by_section else content
    lead = _select(lead_pool, lead_budget, chosen) if lead_pool else []
    chosen += lead
    remaining = content - sum(c.words for c in lead)
    sections = sorted(by_section)
    max_segments = max(1, remaining // 40)
    if form == "brief":
        max_segments = min(max_segments, 3)
    if len(sections) > max_segments:  # too many topics for the time: keep the richest
        ranked = sorted(sections, key=lambda s: -max(c.score for c in by_section[s]))
        sections = sorted(ranked[:max_segments])
    weights = {s: math.sqrt(len(paper.sections[s].text.split())) for s in sections}
    total = sum(weights.values()) or 1.0
    plan: list[tuple[int, list[_Candidate]]] = [(-1, lead)] if lead else []
    for s in sections:
        share = max(int(remaining * weights[s] / total), 20)
        picked = _select(by_section[s], share, chosen)
        if picked:
            chosen += picked
            plan.append((s, picked))
    if not lead and not plan and lead_pool:
        plan.append((-1, lead_pool[:1]))
    return plan


def _topic(heading: str, conversation: _Conversation) -> str | None:
    """A section heading as a host would say it, or None when it is not sayable.

    Ordinary words are lower-cased ("Conclusion and Outlook" -> "conclusion and outlook"),
    acronyms and names keep their case ("GADR", "The Buchert scheme" -> "the Buchert scheme").
    The conversation knows the paper's lower-case words (`vocabulary`), its acronyms
    (`capitals`) and the words it capitalises inside a sentence (`names`). A word the text
    never uses is a name only if the text writes it as one (German's nouns among them).
    """
    book = conversation.book
    text = re.sub(r"^\s*(?:[0-9]+(?:\.[0-9]+)*|[IVXLC]+|[A-Z])[.)]?\s+", "", heading).strip(" .:")
    if (
        not text
        or len(text.split()) > 7
        or not re.fullmatch(r"[^\W\d_](?:[^\W\d_]|[ ,'’-])*", text)
    ):
        return None
    shouted = text.isupper()  # "RELATED WORK": every word in capitals, acronyms or not
    spoken = []
    for word in text.split():
        core = word.strip(",'’-")
        ordinary = (
            core.lower() in conversation.vocabulary
            or core.lower() in book.writer.stopwords
            or any(p.match(core.lower()) for p in book.writer.categories.values())
        )
        acronym = (
            core.isupper() and len(core) > 1 and (core in conversation.capitals or not shouted)
        )
        names = conversation.names
        keep = acronym or not (ordinary or shouted or (names and core not in names))
        spoken.append(word if keep else word.lower())
    topic = " ".join(spoken)
    for pattern, replacement in book.writer.first_person:  # "Our approach": the authors'
        topic = pattern.sub(replacement.lower(), topic)
    return topic


class _Conversation:
    """Frames chosen sentences as a two-host exchange; no line of framing is used twice."""

    def __init__(self, paper: Paper, settings: PodcastSettings, book: Phrasebook) -> None:
        self.paper = paper
        self.settings = settings
        self.book = book
        self.framing = book.writer.framing
        hosts = [h.name for h in settings.show.hosts]
        # The first host asks and frames; the others explain, one section each in turn. A
        # single host does both: a solo presentation, one paragraph a turn.
        self.asker, self.explainers = hosts[0], hosts[1:] or hosts[:1]
        self.explainer = self.explainers[0]
        self.solo = len(hosts) == 1
        self.debate = settings.script.format in ("debate", "critique")
        self.turns: list[Turn] = []
        self.used: set[str] = set()
        words = re.findall(r"\b[^\W\d_]+(?:-[^\W\d_]+)*\b", paper.body)
        self.vocabulary = frozenset(w for w in words if w.islower())
        self.capitals = frozenset(re.findall(r"\b[A-Z][A-Z0-9]+\b", paper.body))
        after_a_word = re.findall(r"(?:(?<=[,;] )|(?<=[a-zß-ÿ] ))([^\W\d_]+)\b", paper.body)
        # words capitalised inside a sentence: after a lower-case word, a comma or a semicolon
        self.names = frozenset(
            w for w in after_a_word if w[0].isupper() and w[1:].islower() and len(w) > 1
        )

    def say(
        self,
        speaker: str,
        text: str,
        sections: Sequence[str] = (),
        chapter: str | None = None,
        spans: Sequence[str] = (),
    ) -> None:
        text = text.strip()
        if not text:
            return
        if not self.solo and self.turns and self.turns[-1].speaker == speaker:  # turn-taking
            last = self.turns[-1]
            self.turns[-1] = Turn(
                speaker=speaker,
                text=f"{last.text} {text}",
                sections=list(dict.fromkeys([*last.sections, *sections])),
                chapter=last.chapter,
                spans=[*last.spans, *spans],
            )
            return
        self.turns.append(
            Turn(
                speaker=speaker,
                text=text,
                sections=list(sections),
                chapter=chapter,
                spans=list(spans),
            )
        )

    def pick(self, options: Sequence[str], **values: str) -> str | None:
        """The first option not used yet (a template counts as used once, whatever it fills)."""
        for option in options:
            if option not in self.used:
                self.used.add(option)
                return option.format(**values)
        return None

    def build(
        self, plan: list[tuple[int, list[_Candidate]]], candidates: list[_Candidate]
    ) -> Script:
        show, paper, framing = self.settings.show, self.paper, self.framing
        title = paper.title.strip()
        opening = [show.intro] if show.intro else []
        opening.append(f"{framing['welcome'].format(show=show.title)} {self._introductions()}")
        opening.append(show.ai_disclosure)
        if title:
            by = ""
            if paper.authors:
                many = "by_many" if len(paper.authors) > 1 else "by_one"
                by = framing[many].format(author=paper.authors[0])
            opening.append(framing["paper"].format(title=title, by=by))
        else:
            opening.append(framing["no_title"])
        self.say(self.asker, " ".join(opening), chapter=framing["opening_chapter"])
        covered: list[str] = []
        for k, (section, sentences) in enumerate(plan):
            if section == -1:
                self._answer(
                    sentences,
                    ["Abstract"] if paper.abstract else [],
                    lead_in=f"{self._thanks()}{framing['short_version']}",
                )
                continue
            heading = paper.sections[section].heading
            topic = _topic(heading, self)
            self.explainer = self.explainers[k % len(self.explainers)]
            if k == 0:
                self.say(self.explainer, f"{self._thanks()}{framing['get_into_it']}")
            question = self._question(topic)
            if question:  # with none left, the explainer simply carries on
                self.say(self.asker, question, chapter=self._chapter(heading, topic))
            if topic:
                covered.append(topic)
            self._answer(sentences, [heading])
        self._close(covered, candidates, {c.text for _, cs in plan for c in cs})
        return assemble_script(paper, self.settings, self.turns, EXTRACTIVE, title)

    def _introductions(self) -> str:
        others = [h for h in self.explainers if h != self.asker]
        if not others:
            return self.framing["alone"].format(asker=self.asker)
        if len(others) == 1:
            return self.framing["with_one"].format(asker=self.asker, other=others[0])
        return self.framing["with_many"].format(
            asker=self.asker, others=", ".join(others[:-1]), last=others[-1]
        )

    def _thanks(self) -> str:
        return "" if self.solo else self.framing["thanks"].format(asker=self.asker) + " "

    def _question(self, topic: str | None) -> str | None:
        writer = self.book.writer
        if topic:
            category = next(
                (c for c, pattern in writer.categories.items() if pattern.search(topic)), ""
            )
            pools = [writer.debate_questions.get(category, [])] if self.debate else []
            pools.append(writer.questions.get(category, []))
            for pool in pools:
                if line := self.pick(pool):
                    return line
            if line := self.pick(writer.lines["topic_questions"], topic=topic):
                return line
        return self.pick(writer.lines["plain_questions"])  # None when every one is used

    def _answer(self, sentences: list[_Candidate], sections: list[str], lead_in: str = "") -> None:
        """The explainer answers in short stretches; between them the asker joins in."""
        lines = self.book.writer.lines
        groups: list[list[_Candidate]] = [[]]
        for sentence in sentences:  # consecutive sentences, about 70 words a stretch
            if groups[-1] and sum(c.words for c in groups[-1]) + sentence.words > 70:
                groups.append([])
            groups[-1].append(sentence)
        for k, group in enumerate(groups):
            texts, spans = [c.text for c in group], [c.source for c in group]
            if self.solo:  # one voice: a paragraph a turn, no one to join in
                said = " ".join([lead_in, *texts] if k == 0 else texts).strip()
                self.say(self.asker, said, sections, spans=spans)
                continue
            if k == 0:
                self.say(self.explainer, " ".join([lead_in, *texts]).strip(), sections, spans=spans)
                continue
            aside = self.pick(lines["asides"]) if len(group) >= 2 else None
            ack = self.pick(lines["debate_acks" if self.debate else "acks"]) if aside else None
            if aside and ack:  # the asker reads a line out, the explainer picks it up
                self.say(self.asker, f"{aside} {texts[0]}", sections, spans=spans[:1])
                self.say(self.explainer, f"{ack} {' '.join(texts[1:])}", sections, spans=spans[1:])
                continue
            follow_up = self.pick(lines["follow_ups"])
            if not follow_up:
                break  # no fresh way left to join in: stop here rather than run on alone
            self.say(self.asker, follow_up)
            self.say(self.explainer, " ".join(texts), sections, spans=spans)

    def _close(self, covered: list[str], candidates: list[_Candidate], said: set[str]) -> None:
        show, framing, writer = self.settings.show, self.framing, self.book.writer
        if len(covered) >= 2:
            named = covered[:5]
            listed = ", ".join(named[:-1]) + f" {self.book.conjunction} {named[-1]}"
            more = framing["among_others"] if len(covered) > len(named) else ""
            recap = framing["recap"].format(topics=listed + more)
            self.say(self.asker, recap, chapter=framing["recap_chapter"])
        else:
            self.say(self.asker, framing["wrap_up"], chapter=framing["recap_chapter"])
        closing = writer.categories.get("conclusion")
        closing_pool = [
            c
            for c in candidates
            if c.text not in said
            and (
                c.section == -1
                or (closing is not None and closing.search(self.paper.sections[c.section].heading))
                or (
                    (discussion := writer.categories.get("discussion")) is not None
                    and discussion.search(self.paper.sections[c.section].heading)
                )
            )
        ]
        spoken = {t.speaker for t in self.turns}  # the closing line: a host not heard yet
        self.explainer = next((h for h in self.explainers if h not in spoken), self.explainer)
        if closing_pool:  # out of context, a line that starts "It" or "However" makes no sense
            best = max(closing_pool, key=lambda c: (not writer.dangling.match(c.text), c.score))
            self.say(self.explainer, f"{framing['keep_one']} {best.text}", spans=[best.source])
        else:
            self.say(self.explainer, framing["worth_reading"])
        goodbye = [framing["goodbye"].format(show=show.title)]
        if show.outro:
            goodbye.append(show.outro)
        self.say(self.asker, " ".join(goodbye))

    def _chapter(self, heading: str, topic: str | None) -> str:
        if topic:
            return topic[:1].upper() + topic[1:]
        return re.sub(r"\s+", " ", heading).strip()[:60] or self.framing["next_chapter"]
