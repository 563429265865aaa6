"""A payload edited as a document, the way the review page edits it: its parts (a gate's
`Segments`) and the fields beside them, changed in place, and its parts inserted, deleted,
split, merged, moved and given another label (a turn's speaker, among the labels the payload
declares). Every change makes a new payload, which is saved and checked like any edit."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import ImmutableMultiDict

from shipyard._review import ReviewGate, value_at

__all__ = ["OPERATIONS", "Form", "edited", "fields", "labels", "parts"]

Form = ImmutableMultiDict[str, str]  # a form's fields, a name possibly repeated
OPERATIONS = ("insert", "delete", "split", "merge", "up", "down", "label")


def parts(
    gate: ReviewGate[Any], payload: dict[str, Any], flags: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The payload part by part, each with its flags (the gate's `segments` say which)."""
    if gate.segments is None:
        return []
    shape = gate.segments
    shown = []
    for index, item in enumerate(payload.get(shape.items, [])):
        shown.append(
            {
                "index": index,
                "label": str(item.get(shape.label, "")) if shape.label else "",
                "text": str(item.get(shape.text, "")),
                "sources": [str(s) for s in item.get(shape.sources, [])] if shape.sources else [],
                "flags": [f for f in flags if f.get(shape.flag_index) == index],
            }
        )
    return shown


def labels(gate: ReviewGate[Any], payload: dict[str, Any]) -> list[str]:
    """The labels a part may be given (`segments.labels`: the hosts' names), in order."""
    if gate.segments is None or not gate.segments.labels:
        return []
    listed, _, key = gate.segments.labels.rpartition(".")
    found = value_at(payload, listed) if listed else None
    return [str(i.get(key, "")) for i in found or [] if isinstance(i, dict) and i.get(key)]


def _complete(gate: ReviewGate[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with its model's defaults filled in (a run that waited through an
    upgrade has a payload written before a field existed)."""
    try:
        completed: dict[str, Any] = gate.payload.model_validate(payload).model_dump(mode="json")
    except ValueError:
        return payload
    return completed


def fields(gate: ReviewGate[Any], payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The values a reviewer edits beside the parts (the gate's `segments.fields`)."""
    if gate.segments is None or not gate.segments.fields:
        return []
    payload = _complete(gate, payload)
    shown = []
    for path, label in gate.segments.fields:
        value = value_at(payload, path)
        many = isinstance(value, list)
        text = "\n".join(map(str, value)) if many else str(value or "")
        shown.append({"path": path, "label": label, "text": text, "many": many})
    return shown


def _set_field(gate: ReviewGate[Any], payload: dict[str, Any], path: str, text: str) -> str:
    """Put a reviewer's value at `path`; what is wrong with the request, or ""."""
    if gate.segments is None or path not in dict(gate.segments.fields):
        return f"{path!r} is not a field a reviewer edits here"
    *parents, last = path.split(".")
    holder: Any = payload
    for key in parents:
        holder = holder.setdefault(key, {}) if isinstance(holder, dict) else None
    if not isinstance(holder, dict):
        return f"{path!r} is not in this payload"
    text = text.replace("\r\n", "\n")
    if isinstance(holder.get(last), list):
        holder[last] = [line.strip() for line in text.split("\n") if line.strip()]
    else:
        holder[last] = text.strip()
    return ""


def edited(
    gate: ReviewGate[Any], current: dict[str, Any], form: Form, prefix: str = ""
) -> tuple[dict[str, Any] | None, dict[str, str], str]:
    """The current payload with the parts and fields a form edits, and the operation it asks
    for (`op`, on the part it names) applied after (`prefix` for edits that travel with a
    decision): the payload (None when the form edits nothing), what was typed (shown again
    if the save is refused), and what is wrong with the form, if anything."""
    segments = list(
        zip(form.getlist(prefix + "segment"), form.getlist(prefix + "text"), strict=False)
    )
    values = list(zip(form.getlist(prefix + "field"), form.getlist(prefix + "value"), strict=False))
    op = str(form.get(prefix + "op", ""))
    if not segments and not values and not op:
        return None, {}, ""
    payload = _complete(gate, json.loads(json.dumps(current["payload"])))
    kept: dict[str, str] = {}
    for path, text in values:
        kept = {"field": str(path), "value": str(text)}
        if problem := _set_field(gate, payload, str(path), str(text)):
            return None, kept, problem
    shape = gate.segments
    items: list[Any] = payload.get(shape.items, []) if shape is not None else []
    for index, text in segments:
        kept = {"segment": str(index), "text": str(text)}
        if not str(index).isdigit() or not 0 <= int(str(index)) < len(items):
            return None, kept, f"there is no part {index}"
        assert shape is not None
        items[int(str(index))][shape.text] = str(text).replace("\r\n", "\n").strip()
    if op:
        where = str(form.get(prefix + "segment", ""))
        if not where.isdigit() or not 0 <= int(where) < len(items):
            return None, kept, f"there is no part {where or '(none named)'}"
        problem = _operate(gate, payload, op, int(where), form, prefix)
        if problem:
            return None, kept, problem
        kept = {}
    return payload, kept, ""


def _operate(
    gate: ReviewGate[Any], payload: dict[str, Any], op: str, index: int, form: Form, prefix: str
) -> str:
    """Apply a document operation to part `index` (from 0); what is wrong, or ""."""
    assert gate.segments is not None
    shape = gate.segments
    items: list[dict[str, Any]] = payload[shape.items]
    item = items[index]
    if op == "insert":  # an empty part after this one, with the next label in turn
        names = labels(gate, payload)
        label = str(form.get(prefix + "label", ""))
        new: dict[str, Any] = {shape.text: ""}
        if shape.label:
            following = (
                names[(names.index(item[shape.label]) + 1) % len(names)]
                if (item.get(shape.label) in names)
                else item.get(shape.label, "")
            )
            new[shape.label] = label if label in names else following
        items.insert(index + 1, new)
    elif op == "delete":
        if len(items) == 1:
            return "the last part cannot be deleted: reject the run instead"
        del items[index]
    elif op == "split":
        text = str(item[shape.text])
        at = str(form.get(prefix + "at", ""))
        cut = int(at) if at.isdigit() else _middle(text)
        first, second = text[:cut].strip(), text[cut:].strip()
        if not first or not second:
            return "put the cursor where the part should split (not at its start or end)"
        items[index] = {**item, shape.text: first}
        rest = {k: v for k, v in item.items() if k != shape.sources}  # sources stay with 1
        opens = {shape.opens: None} if shape.opens in item else {}  # the first half opens it
        items.insert(index + 1, {**rest, shape.text: second, **opens})
    elif op == "merge":
        if index + 1 >= len(items):
            return "the last part has no next part to merge with"
        items[index] = _merged(item, items.pop(index + 1), shape.text)
    elif op in ("up", "down"):
        other = index - 1 if op == "up" else index + 1
        if not 0 <= other < len(items):
            return f"part {index + 1} cannot move {op}"
        items[index], items[other] = items[other], items[index]
    elif op == "label":
        label = str(form.get(prefix + "label", ""))
        if not shape.label or label not in labels(gate, payload):
            allowed = ", ".join(labels(gate, payload)) or "none"
            return f"{label!r} is not one of this payload's labels ({allowed})"
        item[shape.label] = label
    else:
        return f"{op!r} is not an operation (one of: {', '.join(OPERATIONS)})"
    return ""


def _middle(text: str) -> int:
    """Where to split a text with no cursor given: the sentence end nearest its middle."""
    ends = [m.end() for m in re.finditer(r"[.!?…]\s", text)]
    return min(ends, key=lambda e: abs(e - len(text) / 2)) if ends else len(text) // 2


def _merged(first: dict[str, Any], second: dict[str, Any], text: str) -> dict[str, Any]:
    """Two parts as one: the texts joined, lists joined, the first's other values kept."""
    merged = dict(first)
    for key, value in second.items():
        if key == text:
            merged[key] = f"{first.get(key, '')} {value}".strip()
        elif isinstance(value, list) and isinstance(first.get(key), list):
            merged[key] = [*first[key], *(v for v in value if v not in first[key])]
        elif first.get(key) in (None, "", []):
            merged[key] = value
    return merged
