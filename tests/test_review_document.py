"""A script edited as a document and compared by its turns' identity: insert, delete, split,
merge, move and change a turn's speaker (declared hosts only), each a new payload that the
guardrails check; and diffs that name a dropped, inserted, moved, merged or split turn as
such, numbered from 1, with the changed words marked."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import ImmutableMultiDict

from shipyard._diff import part_changes, word_changes
from shipyard.console._editing import edited, labels
from shipyard_podcast.models import Script
from shipyard_podcast.review.gate import script_review
from shipyard_podcast.script.checks import check_script
from shipyard_podcast.script.extractive import write_extractive
from tests.test_script import make_config, make_paper


@pytest.fixture(scope="module")
def draft() -> dict[str, Any]:
    return write_extractive(make_paper(), make_config()).model_dump(mode="json")


def apply(draft: dict[str, Any], **fields: str) -> tuple[dict[str, Any] | None, str]:
    form = ImmutableMultiDict([("action", "save"), *fields.items()])
    payload, _, problem = edited(script_review, {"payload": draft}, form)
    if payload is not None:
        Script.model_validate(payload)  # still a script
    return payload, problem


def texts(payload: dict[str, Any]) -> list[str]:
    return [t["text"] for t in payload["turns"]]


def test_every_document_operation_makes_a_valid_script(draft: dict[str, Any]) -> None:
    turns = texts(draft)
    hosts = labels(script_review, draft)
    assert hosts == [h["name"] for h in draft["hosts"]] and len(hosts) == 2

    cursor = turns[1].index(" ", len(turns[1]) // 2)  # between two words
    split, _ = apply(draft, segment="1", text=turns[1], op="split", at=str(cursor))
    assert split is not None and len(split["turns"]) == len(turns) + 1
    assert " ".join(texts(split)[1:3]).split() == turns[1].split()
    assert split["turns"][2]["chapter"] is None  # the first half keeps the chapter

    merged, _ = apply(draft, segment="2", op="merge")
    assert merged is not None and texts(merged)[2] == f"{turns[2]} {turns[3]}"
    assert len(merged["turns"]) == len(turns) - 1

    moved, _ = apply(draft, segment="2", op="up")
    assert moved is not None and texts(moved)[1:3] == [turns[2], turns[1]]

    inserted, _ = apply(draft, segment="0", op="insert")
    assert inserted is not None and inserted["turns"][1]["text"] == ""
    assert inserted["turns"][1]["speaker"] != inserted["turns"][0]["speaker"]  # next in turn

    deleted, _ = apply(draft, segment="3", op="delete")
    assert deleted is not None and texts(deleted) == turns[:3] + turns[4:]

    other = next(h for h in hosts if h != draft["turns"][0]["speaker"])
    spoken, _ = apply(draft, segment="0", op="label", label=other)
    assert spoken is not None and spoken["turns"][0]["speaker"] == other
    # the speakers check holds the change for what it is: two turns of one host in a row
    flags = check_script(Script.model_validate(spoken), make_paper(), make_config())
    assert any(f.check == "speakers" for f in flags)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"segment": "0", "op": "label", "label": "Mallory"}, "not one of this payload's labels"),
        ({"segment": "99", "op": "delete"}, "no part 99"),
        ({"op": "merge"}, "no part (none named)"),
        ({"segment": "0", "op": "split", "at": "0"}, "where the part should split"),
        ({"segment": "0", "op": "up"}, "cannot move up"),
        ({"segment": "0", "op": "rewrite"}, "not an operation"),
    ],
)
def test_an_operation_that_cannot_apply_says_why(
    draft: dict[str, Any], fields: dict[str, str], says: str
) -> None:
    payload, problem = apply(draft, **fields)
    assert payload is None and says in problem


def test_diffs_follow_the_turns_not_the_lines(draft: dict[str, Any]) -> None:
    parts = script_review.parts_of(draft)
    dropped = parts[:1] + parts[2:]
    changes = [c for c in part_changes(parts, dropped) if c.kind != "same"]
    assert [(c.kind, c.before) for c in changes] == [("dropped", (2,))]  # nothing else moved

    label, text = parts[3]
    edited_one = [*parts[:3], (label, text.replace(text.split()[2], "remarkably")), *parts[4:]]
    [change] = [c for c in part_changes(parts, edited_one) if c.kind != "same"]
    assert change.kind == "changed" and change.after == (4,)
    assert ("+", "remarkably") in change.words and ("-", text.split()[2]) in change.words

    swapped = [parts[0], parts[2], parts[1], *parts[3:]]
    kinds = {c.kind for c in part_changes(parts, swapped)} - {"same"}
    assert kinds == {"moved"}

    joined = [parts[0], (parts[1][0], f"{parts[1][1]} {parts[2][1]}"), *parts[3:]]
    [merge] = [c for c in part_changes(parts, joined) if c.kind != "same"]
    assert merge.kind == "merged" and merge.before == (2, 3) and merge.after == (2,)

    # a turn dropped between two turns of one host, who are joined: a merge and a drop
    around = [parts[0], (parts[1][0], f"{parts[1][1]} {parts[3][1]}"), *parts[4:]]
    kinds = [(c.kind, c.before) for c in part_changes(parts, around) if c.kind != "same"]
    assert kinds == [("merged", (2, 4)), ("dropped", (3,))]

    added = [*parts[:2], (parts[2][0], "A brand new remark about the method."), *parts[2:]]
    [insert] = [c for c in part_changes(parts, added) if c.kind != "same"]
    assert insert.kind == "inserted" and insert.after == (3,)

    text = script_review.diff(draft, {**draft, "turns": draft["turns"][:1] + draft["turns"][2:]})
    assert text.splitlines()[0].startswith("- 2 dropped")  # numbered from 1, one line


def test_changed_words_are_marked_within_a_turn() -> None:
    assert word_changes("the model is fast", "the model is very fast") == (
        ("=", "the model is"),
        ("+", "very"),
        ("=", "fast"),
    )
