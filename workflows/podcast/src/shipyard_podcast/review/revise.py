"""Revising a script as a reviewer asked ("request changes").

The LLM writers of the chain get the script under review, the reviewer's words and the flags it
has, and return it revised; the first revision that passes every check is taken. When none
does (or no LLM writer is configured), the request is applied deterministically, clause by
clause, as far as it can be:

    drop turn 3            (also: remove, cut, delete; "turns 3 and 5", "the second turn",
                           "the last turn")
    shorten turn 4         keep its first half, at least one sentence
    focus on Results       write the script again from the sections whose headings match

Turns are numbered as people count, from 1: the numbers the console and `shipyard review
show` print. What could not be applied is reported with the revision, never silently ignored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard import BudgetExceeded, Quota
from shipyard_podcast.models import Flag, Paper, Script, Turn
from shipyard_podcast.script.chain import build_writers, run_sync
from shipyard_podcast.script.checks import check_script, estimated_seconds, split_sentences
from shipyard_podcast.script.extractive import EXTRACTIVE, write_extractive
from shipyard_podcast.script.journal import RequestJournal
from shipyard_podcast.script.writing import Budget, Feedback, Usage, Writer, WriterFailed
from shipyard_podcast.settings import PodcastSettings

if TYPE_CHECKING:
    from pydantic_ai.models import Model

__all__ = ["Revision", "read_request", "revise_script"]

_TURNS = re.compile(r"\bturns?\s+((?:\d+)(?:\s*(?:,|and|&)\s*\d+)*)", re.I)
_ORDINALS = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
]
_ORDINAL_TURN = re.compile(
    r"\b(" + "|".join([*_ORDINALS, "last", r"\d+(?:st|nd|rd|th)"]) + r")\s+turn\b", re.I
)
_DROP = re.compile(r"\b(drop|remove|cut|delete)\b", re.I)
_SHORTEN = re.compile(r"\b(shorten|trim|tighten)\b", re.I)
_FOCUS = re.compile(r"\bfocus(?:\s+more)?\s+on\s+(?:the\s+)?(.+)", re.I)


@dataclass
class Revision:
    script: Script
    writer: str  # who revised it
    applied: list[str] = field(default_factory=list)  # what was done, in words
    not_applied: list[str] = field(default_factory=list)  # what could not be, and why
    cost_usd: float = 0.0
    tokens: int = 0


def revise_script(
    script: Script,
    comment: str,
    paper: Paper,
    settings: PodcastSettings,
    *,
    models: Mapping[str, Model] | None = None,
    quotas: Mapping[str, Quota] | None = None,
    journal: RequestJournal | None = None,
) -> Revision:
    """Revise `script` as `comment` asks: an LLM writer first, else the deterministic edits.
    A writer in `quotas` holds its provider's limits (`provider_quotas`); with a `journal`,
    an answered request is not sent again when the step is retried (as in `write_script`)."""
    flags = check_script(script, paper, settings)
    budget = Budget(settings.script.max_tokens, settings.script.max_cost_usd)
    problems: list[str] = []
    for writer in build_writers(settings, models or {}, budget, journal, quotas):
        if writer.name == EXTRACTIVE:
            continue
        revised = _revise_with_model(writer, script, comment, flags, paper, settings)
        if isinstance(revised, Revision):
            return revised
        problems.append(revised)
    revision = read_request(script, comment, paper, settings)
    revision.not_applied = problems + revision.not_applied
    revision.tokens, revision.cost_usd = budget.tokens, round(budget.cost_usd, 6)
    return revision


def _revise_with_model(
    writer: Writer,
    script: Script,
    comment: str,
    flags: Sequence[Flag],
    paper: Paper,
    settings: PodcastSettings,
) -> Revision | str:
    """The writer's revision when it passes every check; otherwise why not, in words."""
    name = writer.name
    usage = Usage()
    started = time.perf_counter()
    try:
        revised = run_sync(writer.write(paper, Feedback(script, list(flags), comment), usage))
    except WriterFailed as exc:
        return f"{name} could not revise it: {exc}"
    except BudgetExceeded as exc:
        return f"{name} could not revise it: {exc.message}"
    errors = [f for f in check_script(revised, paper, settings) if f.severity == "error"]
    if errors:
        return f"{name}'s revision failed {len(errors)} check(s): {errors[0].message}"
    took = time.perf_counter() - started
    return Revision(
        revised,
        writer=name,
        applied=[f"revised by {name} in {took:.1f} s"],
        cost_usd=round(writer.cost(usage), 6),
        tokens=usage.input_tokens + usage.output_tokens,
    )


def read_request(script: Script, comment: str, paper: Paper, settings: PodcastSettings) -> Revision:
    """The request applied clause by clause, without a model (what the review page shows
    before a request is sent, and what is done when no model revises it)."""
    revision = Revision(script, writer=EXTRACTIVE)
    drop: set[int] = set()
    shorten: set[int] = set()
    focus: list[str] = []
    for clause in (c.strip() for c in re.split(r"[.;\n]+", comment) if c.strip()):
        wanted = _FOCUS.search(clause)
        turns = _turn_numbers(clause, len(script.turns))
        if wanted is not None:
            focus.append(wanted.group(1).strip(" ,"))
        elif turns and _DROP.search(clause):
            drop |= _valid(turns, script, revision, clause)
        elif turns and _SHORTEN.search(clause):
            shorten |= _valid(turns, script, revision, clause)
        else:
            revision.not_applied.append(
                f"{clause!r}: not understood without a model (say: drop turn N, "
                "shorten turn N, focus on SECTION)"
            )
    if focus and _focus(revision, " ".join(focus), paper, settings):
        if drop or shorten:
            revision.not_applied.append("turn edits: the script was written again, new turns")
        return revision
    if drop or shorten:
        revision.script = _edited(script, drop, shorten)
        revision.applied += [f"dropped turn {i + 1}" for i in sorted(drop)]
        revision.applied += [f"shortened turn {i + 1}" for i in sorted(shorten - drop)]
    return revision


def _turn_numbers(clause: str, turns: int) -> list[int]:
    """The turns a clause names, as people count them (from 1): "turns 3 and 5", "the
    second turn", "the last turn"."""
    found = _TURNS.search(clause)
    if found:
        return [int(n) for n in re.findall(r"\d+", found.group(1))]
    named = [m.group(1).lower() for m in _ORDINAL_TURN.finditer(clause)]
    return [
        turns
        if word == "last"
        else _ORDINALS.index(word) + 1
        if word in _ORDINALS
        else int(re.sub(r"\D", "", word))
        for word in named
    ]


def _valid(turns: list[int], script: Script, revision: Revision, clause: str) -> set[int]:
    """The 0-based indices of the turns numbered in `turns` (from 1); others are reported."""
    wrong = [n for n in turns if not 1 <= n <= len(script.turns)]
    if wrong:
        revision.not_applied.append(
            f"{clause!r}: the script has turns 1-{len(script.turns)}, not {wrong}"
        )
    return {n - 1 for n in turns if n not in wrong}


def _focus(revision: Revision, wanted: str, paper: Paper, settings: PodcastSettings) -> bool:
    """Write the script again from the sections whose headings share a word with `wanted`."""
    words = {w for w in re.findall(r"\w+", wanted.lower()) if len(w) > 2}
    chosen = [s for s in paper.sections if words & set(re.findall(r"\w+", s.heading.lower()))]
    if not chosen:
        headings = ", ".join(s.heading for s in paper.sections[:8])
        revision.not_applied.append(f"no section matches {wanted!r} (sections: {headings})")
        return False
    focused = paper.model_copy(update={"sections": chosen})
    revision.script = write_extractive(focused, settings)
    revision.applied.append("written again from " + ", ".join(s.heading for s in chosen))
    return True


def _edited(script: Script, drop: set[int], shorten: set[int]) -> Script:
    turns: list[Turn] = []
    chapter: str | None = None
    for i, turn in enumerate(script.turns):
        if i in drop:
            chapter = chapter or turn.chapter  # a dropped turn's chapter moves to the next
            continue
        if i in shorten:
            sentences = split_sentences(turn.text, script.language)
            turn = turn.model_copy(
                update={"text": " ".join(sentences[: max(1, len(sentences) // 2)])}
            )
        if chapter and not turn.chapter:
            turn = turn.model_copy(update={"chapter": chapter})
        chapter = None
        if turns and turns[-1].speaker == turn.speaker:
            turns[-1] = _joined(turns[-1], turn)  # a host never speaks twice in a row
        else:
            turns.append(turn)
    words = sum(len(t.text.split()) for t in turns)
    seconds = estimated_seconds(words, script.language)
    return script.model_copy(update={"turns": turns, "estimated_seconds": seconds})


def _joined(first: Turn, second: Turn) -> Turn:
    return first.model_copy(
        update={
            "text": f"{first.text} {second.text}",
            "sections": list(dict.fromkeys([*first.sections, *second.sections])),
            "spans": [*first.spans, *second.spans],
            "chapter": first.chapter or second.chapter,
        }
    )
