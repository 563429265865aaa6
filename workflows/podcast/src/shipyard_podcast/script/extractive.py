"""The extractive writer: no model, same paper and settings, same script. The paper's most
informative sentences, made speakable and framed as a conversation between the two hosts, so
the flow always ends on a writer that works offline."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic_ai.usage import RunUsage

from shipyard_podcast.models import (
    Paper,
    Script,
    Turn,
)
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
from shipyard_podcast.script.writing import Feedback, assemble_script
from shipyard_podcast.settings import PodcastSettings

__all__ = ["EXTRACTIVE", "MAX_PAPER_SHARE", "ExtractiveWriter", "write_extractive"]

EXTRACTIVE = "extractive"


class ExtractiveWriter:
    name = EXTRACTIVE

    def __init__(self, settings: PodcastSettings) -> None:
        self.settings = settings
        self.excluded: set[str] = set()  # grows with every retry of this chain

    def cost(self, usage: RunUsage) -> float:
        return 0.0

    async def write(self, paper: Paper, feedback: Feedback | None, usage: RunUsage) -> Script:
        if feedback is not None:  # leave out every sentence that holds what a flag points at
            for flag in feedback.errors:
                if flag.turn is None:
                    continue
                for sentence in split_sentences(feedback.script.turns[flag.turn].text):
                    if not flag.span or flag.span in sentence:
                        self.excluded.add(_key(sentence))
                if flag.span:
                    self.excluded |= {
                        _key(s)
                        for section in (paper.abstract, *(x.text for x in paper.sections))
                        for s in split_sentences(section)
                        if flag.span in (_voiceable(s) or "")
                    }
        return write_extractive(paper, self.settings, exclude=frozenset(self.excluded))


# A script never voices more than this share of a short paper's words: it is a conversation
# about the paper, not a reading of it, and it is never padded to reach the target.
MAX_PAPER_SHARE = 0.5
_MIN_WORDS, _MAX_WORDS = 8, 40

_STOP = frozenset(
    str.split(
        "a about above after again against all also an and any are as at be because been before "
        "being between both but by can could did do does doing each few for from further had has "
        "have having he her here hers him his how however i if in into is it its itself just may "
        "me might more most must my no nor not now of off on once only or other our out over own "
        "same she should so some such than that the their them then there these they this those "
        "through thus to too under until up upon us very via was we were what when where which "
        "while who whom why will with within without would yet you your one two use used using "
        "based also paper show shows shown et al e.g i.e"
    )
)
_CUES = re.compile(
    r"\b(?:propos|present|introduc|show(?:s|ed|n)? that|find|found|result|"
    r"outperform|improv|achiev|conclu|demonstrat|contribut|novel|significant|"
    r"key|main|first|better|faster|accura|effective|new)",
    re.I,
)
_DANGLING = re.compile(
    r"^(?:However|Therefore|Thus|Hence|This|These|That|Those|It|They|Such|"
    r"Also|And|But|Or|Moreover|Furthermore|In addition|Additionally|Finally|"
    r"Similarly|Here|Then|On the other hand|As a result|In contrast)\b"
)
_POINTERS = re.compile(
    r"\b(?:Fig(?:ure)?s?|Tables?|Tab|Eqs?|Equations?|Sections?|Sec|Appendix|"
    r"Algorithm|Listing|Line)\.?\s*(?:\d|[IVX]+\b)|\babove\b|\bbelow\b|"
    r"\bfollowing\b|\bas follows\b|\bRefs?\.|:$|;\s*\d+\.$|\.\.$|"
    r"\(\d+\)|\(see\b|\blet us\b|\bas where\b|\b(?:is|as|by|of)\s*[.,;]",
    re.I,
)  # pointers to what a listener cannot see, and holes left by formulas
_CITATION = re.compile(
    r"\s*\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\]|\s*\((?:[A-Z][A-Za-z'-]+(?: et al\.?"
    r"| and [A-Z][A-Za-z'-]+)?,? \d{4}[a-z]?(?:; ?)?)+\)"
)
_FORMULA = re.compile(r"[=<>~∼_·…]")
_VARIABLE = re.compile(r"\b[A-Za-z]\d+\b|(?<![\w.])[b-zB-HJ-Z](?![\w.'’])")
_FIRST_PERSON = [
    (re.compile(r"\bWe\b"), "The authors"),
    (re.compile(r"\bwe\b"), "the authors"),
    (re.compile(r"\bOur\b"), "Their"),
    (re.compile(r"\bour\b"), "their"),
    (re.compile(r"\bours\b"), "theirs"),
    (re.compile(r"\bus\b"), "them"),
]


# Sections a listener does not need: thanks to funders, author notes.
_UNVOICED = re.compile(r"acknowledg|funding|author contributions|conflicts? of interest", re.I)


def _key(sentence: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", sentence.lower()))


def _content_words(sentence: str) -> list[str]:
    return [w for w in re.findall(r"[a-z][a-z-]+", sentence.lower()) if w not in _STOP]


def _voiceable(raw: str) -> str | None:
    """The sentence as a host would say it, or None when it cannot be said well."""
    sentence = _CITATION.sub("", raw)
    sentence = re.sub(r"\s+([,.;:!?])", r"\1", sentence).strip()
    for pattern, replacement in _FIRST_PERSON:
        sentence = pattern.sub(replacement, sentence)
    words = sentence.split()
    if not (_MIN_WORDS <= len(words) <= _MAX_WORDS):
        return None
    if not sentence[0].isupper() or sentence[-1] not in ".!?" or _POINTERS.search(sentence):
        return None
    if re.match(r"[A-Z][\w -]{0,24}: ", sentence):
        return None  # "Sequential: each task ...": an item of a list, not a sentence
    if unspeakable_spans(sentence) or injection_spans(sentence) or _FORMULA.search(sentence):
        return None
    if listener_spans(sentence):
        return None  # a doubled word, a sentence cut off, debris: a listener hears it broken
    if len(_VARIABLE.findall(sentence)) >= 2:
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
    words: int = field(init=False)
    bag: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.words = len(self.text.split())
        self.bag = frozenset(_content_words(self.text))


def _candidates(
    paper: Paper, exclude: frozenset[str], focus: frozenset[str] = frozenset()
) -> list[_Candidate]:
    frequency = Counter(_content_words(paper.body))
    title_words = set(_content_words(paper.title))
    sources = [
        (-1, paper.abstract),
        *((i, s.text) for i, s in enumerate(paper.sections) if not _UNVOICED.search(s.heading)),
    ]
    found: list[_Candidate] = []
    seen: set[str] = set()
    for section, text in sources:
        for position, raw in enumerate(split_sentences(text)):
            sentence = _voiceable(raw)
            if sentence is None or _key(sentence) in exclude or _key(sentence) in seen:
                continue
            seen.add(_key(sentence))
            bag = set(_content_words(sentence))
            weight = sum(math.log1p(frequency[w]) for w in bag) / math.sqrt(len(sentence.split()))
            weight *= 1 + 0.25 * len(_CUES.findall(sentence)) + 0.2 * len(bag & title_words)
            weight *= 1 + 0.6 * len(bag & focus)  # what the profile asks the episode to dwell on
            if _DANGLING.match(sentence):
                weight *= 0.55
            if position == 0:
                weight *= 1.15
            found.append(_Candidate(sentence, section, position, weight, raw))
    return found


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
    focus = frozenset(_content_words(settings.script.focus))
    candidates = _candidates(paper, exclude, focus)
    paper_words = len(paper.body.split())
    target = target_words(settings)
    goal = min(target, paper_words)  # a short paper gives a short episode
    limit = min(target * (1 + LENGTH_TOLERANCE), paper_words + PADDING_ALLOWANCE)
    high = min(goal, max(int(paper_words * MAX_PAPER_SHARE), 1))
    low = 0
    best = _frame(paper, settings, candidates, high)

    def words(script: Script) -> int:
        return measured_words(script, settings)

    # Search the content budget so the whole script, framing included, lands on the goal.
    for _ in range(8):
        if abs(words(best) - goal) <= goal * 0.04 or low >= high:
            break
        content = (low + high) // 2
        script = _frame(paper, settings, candidates, content)
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
    paper: Paper, settings: PodcastSettings, candidates: list[_Candidate], content: int
) -> Script:
    segments = _plan(paper, candidates, content, settings.script.format)
    return _Conversation(paper, settings).build(segments, candidates)


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


_QUESTIONS = {
    "intro": ["What problem is this paper trying to solve?", "So why does this problem matter?"],
    "related": ["How does this fit with earlier work?", "What came before this work?"],
    "method": ["So how does their approach work?", "How is the method put together?"],
    "experiment": ["How did they test it?", "What did the evaluation look like?"],
    "result": ["And what did they find?", "So what do the results say?"],
    "discussion": ["What are the caveats?", "How do the authors read their own results?"],
    "conclusion": ["So what is the bottom line?", "Where do the authors land in the end?"],
}
_DEBATE_QUESTIONS = {
    "intro": ["Let me push back first. Is this problem really worth solving?"],
    "method": ["I'm not sold yet. How exactly does the method work?"],
    "experiment": ["Fine, but how did they test it, and is the test fair?"],
    "result": ["So do the results actually back that up?"],
    "conclusion": ["So what is really settled here, and what isn't?"],
}
_CATEGORIES = [
    ("intro", r"intro|background|motivation|overview|problem"),
    ("related", r"related|prior|previous|literature|state of the art"),
    (
        "method",
        r"method|approach|model|architecture|framework|system|design|algorithm|propos|"
        r"technique|formulation|implementation",
    ),
    ("experiment", r"experiment|evaluat|setup|set-up|dataset|data|benchmark|study"),
    ("result", r"result|finding|performance|analys|comparison"),
    ("discussion", r"discussion|limitation|threat|future"),
    ("conclusion", r"conclu|summary|remarks"),
]
# One sentence each, so that no sentence of framing is ever said twice.
_TOPIC_QUESTIONS = [
    "Let's turn to {topic}: what is going on there?",
    "What does the paper say about {topic}?",
    "Next up is {topic}, so can you walk me through it?",
    "Tell me about {topic}.",
    "And how about {topic}?",
    "What should listeners know about {topic}?",
]
_PLAIN_QUESTIONS = [
    "What comes next in the paper?",
    "And what else stands out?",
    "Where does the paper go from there?",
    "Anything else worth knowing here?",
    "What else does the paper say?",
    "Is there more to it?",
    "What's the next piece of the puzzle?",
    "Where do they take it from there?",
]
_FOLLOW_UPS = [
    "Go on, I want to hear the rest.",
    "And there's more to it, right?",
    "How does that play out?",
    "Okay, and then?",
    "Interesting. What else?",
    "So where does that lead?",
    "Can you unpack that a little?",
    "That makes sense so far. Keep going.",
    "And why does that matter?",
    "Right. What follows from it?",
    "I'm with you. What's the next step?",
    "Hold on, say a bit more about that.",
    "That's a lot to take in. What comes after?",
    "And how do they back that up?",
]
_ASIDES = [
    "And here's a line I noticed while reading.",
    "I marked this part too.",
    "There's one more detail worth reading out.",
    "This next bit caught my eye.",
]
_ACKS = [
    "Exactly, that's a key point.",
    "Right, that matters for everything that follows.",
    "Yes, and it's easy to miss on a first read.",
    "Good catch, that's an important detail.",
    "Agreed, that's worth keeping in mind.",
]
_DEBATE_ACKS = [
    "Fair, though I'd want to see more evidence.",
    "I'll grant that, but keep the limits in mind.",
    "Okay, that is more convincing than I expected.",
    "Maybe, but that's a strong claim.",
]


def _topic(
    heading: str, vocabulary: frozenset[str], capitals: frozenset[str], names: frozenset[str]
) -> str | None:
    """A section heading as a host would say it, or None when it is not sayable.

    Ordinary words are lower-cased ("Conclusion and Outlook" -> "conclusion and outlook"),
    acronyms and names keep their case ("GADR", "The Buchert scheme" -> "the Buchert scheme").
    `vocabulary` holds the lower-case words of the paper's text, `capitals` its acronyms,
    `names` the words it capitalises inside a sentence. A word the text never uses is a name
    only if the text writes it as one.
    """
    text = re.sub(r"^\s*(?:[0-9]+(?:\.[0-9]+)*|[IVXLC]+|[A-Z])[.)]?\s+", "", heading).strip(" .:")
    if not text or len(text.split()) > 7 or not re.fullmatch(r"[A-Za-z][A-Za-z ,'-]*", text):
        return None
    shouted = text.isupper()  # "RELATED WORK": every word in capitals, acronyms or not
    spoken = []
    for word in text.split():
        core = word.strip(",'-")
        ordinary = (
            core.lower() in vocabulary
            or core.lower() in _STOP
            or any(re.match(pattern, core.lower()) for _, pattern in _CATEGORIES)
        )
        acronym = core.isupper() and len(core) > 1 and (core in capitals or not shouted)
        keep = acronym or not (ordinary or shouted or (names and core not in names))
        spoken.append(word if keep else word.lower())
    topic = " ".join(spoken)
    for pattern, replacement in _FIRST_PERSON:  # "Our approach": the authors', not the hosts'
        topic = pattern.sub(replacement.lower(), topic)
    return topic


class _Conversation:
    """Frames chosen sentences as a two-host exchange; no line of framing is used twice."""

    def __init__(self, paper: Paper, settings: PodcastSettings) -> None:
        self.paper = paper
        self.settings = settings
        hosts = [h.name for h in settings.show.hosts]
        # The first host asks and frames; the others explain, one section each in turn. A
        # single host does both: a solo presentation, one paragraph a turn.
        self.asker, self.explainers = hosts[0], hosts[1:] or hosts[:1]
        self.explainer = self.explainers[0]
        self.solo = len(hosts) == 1
        self.debate = settings.script.format in ("debate", "critique")
        self.turns: list[Turn] = []
        self.used: set[str] = set()
        self.vocabulary = frozenset(re.findall(r"\b[a-z][a-z-]+\b", paper.body))
        self.capitals = frozenset(re.findall(r"\b[A-Z][A-Z0-9]+\b", paper.body))
        self.names = frozenset(re.findall(r"(?<=[a-z,;] )[A-Z][a-z]+\b", paper.body))

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
        show, paper = self.settings.show, self.paper
        title = paper.title.strip()
        opening = [show.intro] if show.intro else []
        opening.append(f"Welcome to {show.title}. {self._introductions()}")
        opening.append(show.ai_disclosure)
        if title:
            by = ""
            if paper.authors:
                first = paper.authors[0]
                by = f", by {first}" + (" and colleagues" if len(paper.authors) > 1 else "")
            opening.append(f'Today we are looking at a paper called "{title}"{by}.')
        else:
            opening.append("Today we are looking at a research paper.")
        self.say(self.asker, " ".join(opening), chapter="Opening")
        covered: list[str] = []
        for k, (section, sentences) in enumerate(plan):
            if section == -1:
                self._answer(
                    sentences,
                    ["Abstract"] if paper.abstract else [],
                    lead_in=f"{self._thanks()}Here is the short version.",
                )
                continue
            heading = paper.sections[section].heading
            topic = _topic(heading, self.vocabulary, self.capitals, self.names)
            self.explainer = self.explainers[k % len(self.explainers)]
            if k == 0:
                self.say(self.explainer, f"{self._thanks()}Let's get into it.")
            question = self._question(topic)
            if question:  # with none left, the explainer simply carries on
                self.say(self.asker, question, chapter=_chapter(heading, topic))
            if topic:
                covered.append(topic)
            self._answer(sentences, [heading])
        self._close(covered, candidates, {c.text for _, cs in plan for c in cs})
        return assemble_script(paper, self.settings, self.turns, EXTRACTIVE, title)

    def _introductions(self) -> str:
        others = [h for h in self.explainers if h != self.asker]
        if not others:
            return f"I'm {self.asker}."
        if len(others) == 1:
            return f"I'm {self.asker}, and with me is {others[0]}."
        return f"I'm {self.asker}, and with me are {', '.join(others[:-1])} and {others[-1]}."

    def _thanks(self) -> str:
        return "" if self.solo else f"Thanks, {self.asker}. "

    def _question(self, topic: str | None) -> str | None:
        if topic:
            category = next(
                (c for c, pattern in _CATEGORIES if re.search(pattern, topic, re.I)), None
            )
            pools = [_DEBATE_QUESTIONS.get(category or "", [])] if self.debate else []
            pools.append(_QUESTIONS.get(category or "", []))
            for pool in pools:
                if line := self.pick(pool):
                    return line
            if line := self.pick(_TOPIC_QUESTIONS, topic=topic):
                return line
        return self.pick(_PLAIN_QUESTIONS)  # None when every plain question is used

    def _answer(self, sentences: list[_Candidate], sections: list[str], lead_in: str = "") -> None:
        """The explainer answers in short stretches; between them the asker joins in."""
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
            aside = self.pick(_ASIDES) if len(group) >= 2 else None
            ack = self.pick(_DEBATE_ACKS if self.debate else _ACKS) if aside else None
            if aside and ack:  # the asker reads a line out, the explainer picks it up
                self.say(self.asker, f"{aside} {texts[0]}", sections, spans=spans[:1])
                self.say(self.explainer, f"{ack} {' '.join(texts[1:])}", sections, spans=spans[1:])
                continue
            follow_up = self.pick(_FOLLOW_UPS)
            if not follow_up:
                break  # no fresh way left to join in: stop here rather than run on alone
            self.say(self.asker, follow_up)
            self.say(self.explainer, " ".join(texts), sections, spans=spans)

    def _close(self, covered: list[str], candidates: list[_Candidate], said: set[str]) -> None:
        show = self.settings.show
        if len(covered) >= 2:
            named = covered[:5]
            listed = ", ".join(named[:-1]) + f" and {named[-1]}"
            more = ", among other things" if len(covered) > len(named) else ""
            self.say(self.asker, f"So, to recap, we went through {listed}{more}.", chapter="Recap")
        else:
            self.say(self.asker, "That's a good place to wrap up.", chapter="Recap")
        closing_pool = [
            c
            for c in candidates
            if c.text not in said
            and (
                c.section == -1
                or re.search(
                    r"conclu|summary|discussion", self.paper.sections[c.section].heading, re.I
                )
            )
        ]
        spoken = {t.speaker for t in self.turns}  # the closing line: a host not heard yet
        self.explainer = next((h for h in self.explainers if h not in spoken), self.explainer)
        if closing_pool:  # out of context, a line that starts "It" or "However" makes no sense
            best = max(closing_pool, key=lambda c: (not _DANGLING.match(c.text), c.score))
            self.say(
                self.explainer,
                f"If I had to keep one line from the paper, it would be this one. {best.text}",
                spans=[best.source],
            )
        else:
            self.say(self.explainer, "It's a paper worth reading in full.")
        goodbye = [f"That's all for this episode of {show.title}. Thanks for listening."]
        if show.outro:
            goodbye.append(show.outro)
        self.say(self.asker, " ".join(goodbye))


def _chapter(heading: str, topic: str | None) -> str:
    if topic:
        return topic[:1].upper() + topic[1:]
    return re.sub(r"\s+", " ", heading).strip()[:60] or "Next"
