"""What changed between two revisions of a payload, as a reviewer reads it.

A payload shown part by part (a gate's `Segments`) is compared part by part, by identity:
a part kept, moved, dropped, inserted, merged with the next or split in two is shown as such,
and within a part that changed, the changed words are marked. Parts are numbered as people
count, from 1. Any other payload is compared line by line (a unified diff).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PartChange", "part_changes", "parts_diff", "text_diff", "word_changes"]

ChangeKind = Literal["same", "changed", "moved", "dropped", "inserted", "merged", "split"]
SIMILAR = 0.5  # word overlap (difflib's ratio) at which a part counts as the same part edited
JOINED = 0.8  # ... at which two parts joined count as one part (a merge, a split)
MERGE_REACH = 3  # parts merged may have had up to two dropped parts between them
Part = tuple[str, str]  # (label, text)


@dataclass(frozen=True)
class PartChange:
    """One part's fate: its numbers before and after (from 1; several for a merge or a
    split), its label now (and before, when it changed), and its words marked: "=" kept,
    "-" removed, "+" added."""

    kind: ChangeKind
    before: tuple[int, ...]
    after: tuple[int, ...]
    label: str
    was_label: str = ""
    words: tuple[tuple[str, str], ...] = field(default=())

    def describe(self, noun: str = "part") -> str:
        """One line, as `shipyard review show` prints it (`noun`: what a part is called)."""
        was = "+".join(map(str, self.before))
        now = "+".join(map(str, self.after))
        who = f"{self.was_label} → {self.label}" if self.was_label else self.label
        marked = " ".join(
            text if op == "=" else f"[-{text}-]" if op == "-" else f"{{+{text}+}}"
            for op, text in self.words
        )
        heading = {
            "same": f"  {now}",
            "changed": f"~ {now}",
            "moved": f"↕ {now} (was {was})",
            "dropped": f"- {was} dropped",
            "inserted": f"+ {now} inserted",
            "merged": f"⊕ {now} ({noun}s {was} merged)",
            "split": f"⊘ {now} ({noun} {was} split)",
        }[self.kind]
        return f"{heading} {who}: {marked}"


def word_changes(before: str, after: str) -> tuple[tuple[str, str], ...]:
    """`after`'s words against `before`'s: runs of kept, removed and added words."""
    old, new = before.split(), after.split()
    marked: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            marked.append(("=", " ".join(old[i1:i2])))
            continue
        if i2 > i1:
            marked.append(("-", " ".join(old[i1:i2])))
        if j2 > j1:
            marked.append(("+", " ".join(new[j1:j2])))
    return tuple(marked)


class _Words:
    """A part's words, and their counts, for comparing it with many others quickly."""

    def __init__(self, text: str) -> None:
        self.words = text.split()
        self.counts = Counter(self.words)


def _similarity(a: Sequence[_Words], b: Sequence[_Words], at_least: float) -> float:
    """How alike two runs of parts are, word by word (difflib's ratio); 0 for a pair whose
    upper bounds (their lengths, then the words they share) are already below `at_least`,
    so comparing every part with every part stays quick on a script rewritten throughout."""
    size_a, size_b = sum(len(p.words) for p in a), sum(len(p.words) for p in b)
    if not size_a + size_b:
        return 1.0
    if 2 * min(size_a, size_b) < at_least * (size_a + size_b):
        return 0.0
    counts_a = a[0].counts if len(a) == 1 else sum((p.counts for p in a), Counter())
    counts_b = b[0].counts if len(b) == 1 else sum((p.counts for p in b), Counter())
    if 2 * sum((counts_a & counts_b).values()) < at_least * (size_a + size_b):
        return 0.0
    words_a = [w for p in a for w in p.words]
    words_b = [w for p in b for w in p.words]
    return difflib.SequenceMatcher(None, words_a, words_b, autojunk=False).ratio()


def part_changes(before: list[Part], after: list[Part]) -> list[PartChange]:
    """Each part of `after` (and each dropped part of `before`) with what became of it, in
    the order `after` reads, a dropped part where it stood."""
    texts_a, texts_b = [t for _, t in before], [t for _, t in after]
    words_a, words_b = [_Words(t) for t in texts_a], [_Words(t) for t in texts_b]
    matched_b: dict[int, tuple[ChangeKind, tuple[int, ...]]] = {}  # after -> (kind, before)
    used_a: set[int] = set()
    matcher = difflib.SequenceMatcher(None, texts_a, texts_b, autojunk=False)
    for block in matcher.get_matching_blocks():  # kept in place, in order
        for k in range(block.size):
            matched_b[block.b + k] = ("same", (block.a + k,))
            used_a.add(block.a + k)
    for j, text in enumerate(texts_b):  # the same words elsewhere: moved
        if j in matched_b:
            continue
        found = next((i for i, t in enumerate(texts_a) if i not in used_a and t == text), None)
        if found is not None:
            matched_b[j], used_a = ("moved", (found,)), used_a | {found}
    for j in range(len(texts_b)):  # two parts now one (those between maybe dropped)
        if j in matched_b:
            continue
        pairs = [
            (i, k)
            for i in range(len(texts_a))
            for k in range(i + 1, min(i + 1 + MERGE_REACH, len(texts_a)))
            if not {i, k} & used_a
        ]
        for i, k in pairs:
            if _similarity([words_a[i], words_a[k]], [words_b[j]], JOINED) >= JOINED:
                matched_b[j], used_a = ("merged", (i, k)), used_a | {i, k}
                break
    for i in range(len(texts_a)):
        if i in used_a:
            continue
        for j in range(len(texts_b) - 1):
            if j in matched_b or j + 1 in matched_b:
                continue
            if _similarity([words_a[i]], [words_b[j], words_b[j + 1]], JOINED) >= JOINED:
                matched_b[j] = matched_b[j + 1] = ("split", (i,))
                used_a.add(i)
                break
    for j in range(len(texts_b)):  # the same part, edited: the most alike, in order
        if j in matched_b:
            continue
        earlier = max((a[-1] for _, a in (matched_b[k] for k in matched_b if k < j)), default=-1)
        candidates = [i for i in range(len(texts_a)) if i not in used_a]
        scored = [
            (_similarity([words_a[i]], [words_b[j]], SIMILAR), -abs(i - earlier - 1), i)
            for i in candidates
        ]
        best = max(scored, default=None)
        if best is not None and best[0] >= SIMILAR:
            matched_b[j], used_a = ("changed", (best[2],)), used_a | {best[2]}

    rows: list[tuple[float, PartChange]] = []
    for j, (label, text) in enumerate(after):
        kind, sources = matched_b.get(j, ("inserted", ()))
        old = " ".join(texts_a[i] for i in sources)
        was_labels = {before[i][0] for i in sources}
        was_label = next(iter(was_labels)) if was_labels and label not in was_labels else ""
        if kind == "same" and was_label:
            kind = "changed"
        words = word_changes(old, text) if kind in ("changed", "merged", "split") else ()
        if kind == "split":  # this half's words, not the other half's marked as removed
            words = tuple(w for w in words if w[0] != "-") or words
        rows.append(
            (
                j,
                PartChange(
                    kind,
                    tuple(i + 1 for i in sources),
                    (j + 1,),
                    label,
                    was_label,
                    words or (("=", text),),
                ),
            )
        )
    where = {i: j for j, (_, sources) in matched_b.items() for i in sources}
    for i, (label, text) in enumerate(before):
        if i in used_a:
            continue
        placed = max((where[k] for k in where if k < i), default=-1) + 0.5
        rows.append((placed, PartChange("dropped", (i + 1,), (), label, words=(("-", text),))))
    rows.sort(key=lambda row: row[0])
    return [change for _, change in rows]


def parts_diff(before: list[Part], after: list[Part], noun: str = "part") -> str:
    """The changes, one line a part that changed ("" when none did)."""
    changes = [c for c in part_changes(before, after) if c.kind != "same"]
    return "\n".join(c.describe(noun) for c in changes)


def text_diff(before: str, after: str) -> str:
    """What changed between two texts, line by line, as a unified diff."""
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "before", "after", lineterm=""
    )
    return "\n".join(lines)
