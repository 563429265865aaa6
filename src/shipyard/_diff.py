"""What changed between two revisions of a payload, as a reviewer reads it.

A payload shown part by part (a gate's `Segments`) is compared part by part, by identity:
a part kept, moved, dropped, inserted, merged with the next or split in two is shown as such,
and within a part that changed, the changed words are marked. Parts are numbered as people
count, from 1. Any other payload is compared line by line (a unified diff).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PartChange", "part_changes", "parts_diff", "text_diff", "word_changes"]

ChangeKind = Literal["same", "changed", "moved", "dropped", "inserted", "merged", "split"]
SIMILAR = 0.5  # word overlap (difflib's ratio) at which a part counts as the same part edited
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


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()


def part_changes(before: list[Part], after: list[Part]) -> list[PartChange]:
    """Each part of `after` (and each dropped part of `before`) with what became of it, in
    the order `after` reads, a dropped part where it stood."""
    texts_a, texts_b = [t for _, t in before], [t for _, t in after]
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
    for j, text in enumerate(texts_b):  # two parts now one (those between maybe dropped)
        if j in matched_b:
            continue
        pairs = [
            (i, k)
            for i in range(len(texts_a))
            for k in range(i + 1, min(i + 1 + MERGE_REACH, len(texts_a)))
            if not {i, k} & used_a
        ]
        for i, k in pairs:
            if _similarity(f"{texts_a[i]} {texts_a[k]}", text) >= 0.8:
                matched_b[j], used_a = ("merged", (i, k)), used_a | {i, k}
                break
    for i, text in enumerate(texts_a):
        if i in used_a:
            continue
        for j in range(len(texts_b) - 1):
            if j in matched_b or j + 1 in matched_b:
                continue
            if _similarity(text, f"{texts_b[j]} {texts_b[j + 1]}") >= 0.8:
                matched_b[j] = matched_b[j + 1] = ("split", (i,))
                used_a.add(i)
                break
    for j, text in enumerate(texts_b):  # the same part, edited: the most alike, in order
        if j in matched_b:
            continue
        earlier = max((a[-1] for _, a in (matched_b[k] for k in matched_b if k < j)), default=-1)
        candidates = [i for i in range(len(texts_a)) if i not in used_a]
        scored = [(_similarity(texts_a[i], text), -abs(i - earlier - 1), i) for i in candidates]
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
        if kind == "split":
            piece = word_changes(texts_a[sources[0]], text)
            words = tuple(w for w in piece if w[0] != "-") or words
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
