"""The review gate: a run waits, durably, for a named person's decision on a payload.

A workflow creates one gate per thing it asks people to review, at module level:

    script_review = ReviewGate("script", Script, recheck=check_edit, present=as_text)

and calls it in its body: `reviewed = script_review(run, draft, flags=flags)`. The run moves
to `awaiting_review`; reviewers (from `[review]`) decide from any process, by the CLI or the
library's `decide`:

- **approve** the payload as it is;
- **edit**: replace it with an edited payload, which is checked again by the workflow's
  `recheck` hook (its guardrails) before it counts; an edit with error flags goes back to
  the reviewers with those flags and is not approved;
- **save** an edited payload as a new revision, checked the same way, and stay in review
  (the console saves each change so; the reviewer decides later);
- **request changes** with a comment: the workflow's `revise` hook rewrites the payload (a
  gate without one refuses the request), which is checked again and reviewed again;
- **reject** with a comment: the run ends `rejected`.

Error flags hold the run: approving a payload that has any needs a written `override`
reason. Every payload shown is a revision (the writer's draft is revision 1), with its author;
a decision made on an older revision than the current one is refused as stale, so two
reviewers never overwrite each other unseen. Past the deadline the review goes to
`review.escalate_to` (when set), then, past that deadline too, is rejected by the deadline.
Auto-approval is a policy, recorded as one, and never passes a payload with error flags.
Every round and decision is an event on the run: who, what, when, and whether a person or a
policy decided.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from dbos import DBOS
from pydantic import BaseModel, ConfigDict, ValidationError

from shipyard._config import Config, ReviewConfig
from shipyard._diff import PartChange, part_changes, text_diff
from shipyard._engine import current, waiting_for_a_person
from shipyard._errors import ShipyardError
from shipyard._flag import Flag
from shipyard._ledger import RunState
from shipyard._notify import Notice, notify_owner
from shipyard._record import record_event
from shipyard._workflow import Run, StepSpec, set_run_state, step

__all__ = [
    "REVIEW_TOPIC",
    "Decision",
    "Preview",
    "ReviewAction",
    "ReviewGate",
    "Reviewed",
    "Segments",
    "gate_named",
    "value_at",
]

REVIEW_TOPIC = "review"
ReviewAction = Literal["approve", "edit", "save", "request_changes", "reject"]
P = TypeVar("P", bound=BaseModel)


class Decision(BaseModel):
    """A review decision, as sent and as recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: ReviewAction
    reviewer: str
    comment: str = ""
    automatic: bool = False  # True when a policy (auto-approve, the deadline) decided
    override: str = ""  # a written reason to go on although error flags remain
    payload: dict[str, Any] | None = None  # edit, save: the edited payload, as JSON
    revision: int | None = None  # the revision the reviewer saw (None: whatever is current)


@dataclass(frozen=True)
class Segments:
    """How a payload is shown and edited part by part (the console's review page): the
    field holding the list of parts, each part's editable text field, its label field, the
    field listing what it draws on, and the flags' field naming a part's index.

    `fields` are values a reviewer edits beside the parts, each a dotted path into the
    payload with its label (`("credits.title", "Title")`); a list is edited one item a line.
    `labels` is the dotted path to the labels a part may be given (`"hosts.name"`: each
    host's name); `opens` a part's field that marks it as opening a section (a chapter),
    which the first half keeps when the part is split.
    """

    items: str
    text: str
    label: str = ""
    sources: str = ""
    flag_index: str = "turn"
    fields: tuple[tuple[str, str], ...] = ()
    noun: str = "part"  # what people call a part ("turn"), in diffs and on the page
    labels: str = ""
    opens: str = ""


@dataclass(frozen=True)
class Reviewed(Generic[P]):
    """The gate's outcome: the decision, and the payload it applies to (edited or revised,
    and checked again), with the flags that payload has."""

    decision: Decision
    payload: P
    flags: list[dict[str, Any]]

    @property
    def approved(self) -> bool:
        return self.decision.action != "reject"


_GATES: dict[str, ReviewGate[Any]] = {}


def gate_named(name: str) -> ReviewGate[Any]:
    try:
        return _GATES[name]
    except KeyError:
        raise ShipyardError(
            f"no review gate is named {name!r} in the workflows loaded here",
            code="no-such-gate",
            hint="decide with the configuration (and workflows.modules) the run started with",
        ) from None


@dataclass(frozen=True, slots=True)
class Preview:
    """A part's audio while it is being made: `chunks` of `media_type`, each sent as soon as it
    comes, so that a reviewer hears the start while the rest is made. A preview that is made
    already is a file (a `Path`), sent whole."""

    media_type: str
    chunks: Iterator[bytes]


class ReviewGate(Generic[P]):
    """A named review gate for payloads of type `payload` (a pydantic model)."""

    def __init__(
        self,
        name: str,
        payload: type[P],
        *,
        owner: str = "reviewer",
        recheck: Callable[[P, Any], Sequence[Flag]] | None = None,
        revise: Callable[[P, str, Any], P] | None = None,
        present: Callable[[P], str] | None = None,
        segments: Segments | None = None,
        reference: Callable[[Any], dict[str, Any]] | None = None,
        preview: Callable[[P, int, Config], Path | Preview] | None = None,
        warm: Callable[[P, Config], None] | None = None,
        amend: Callable[[P, P], P] | None = None,
        keep_context: Callable[[Any], dict[str, Any]] | None = None,
        restore_context: Callable[[dict[str, Any], Config], Any] | None = None,
        plan: Callable[[P, str, Any], tuple[list[str], list[str]]] | None = None,
    ) -> None:
        """`recheck(payload, context)`: the guardrails on a changed payload. `revise(payload,
        comment, context)`: a new payload as a reviewer asked. `present(payload)`: it as text
        (for diffs). `segments`: its parts, for part-by-part editing. `reference(context)`:
        what reviewers read beside it (`{"title": ..., "sections": [{"heading", "text"}],
        "facts": [{"label", "value"}]}`, facts optional).
        `preview(payload, index, config)`: the audio of one part, made on demand: a file, or
        a `Preview` that streams it while it is made. `warm(payload, config)`: load what the
        first preview would wait for (a voice's model), speaking nothing; the console calls it
        in the background when a reviewer opens the review, and what it cannot load, the
        preview reports.
        `amend(before, edited)`: what else an edit changes, before it is checked (the
        flagship carries a corrected name into the turns that say it); pure and
        deterministic, since it runs in the workflow's body. `keep_context(context)` and
        `restore_context(kept, config)`: the context as JSON and back, so that an edit is
        checked where the reviewer is (the console's or the CLI's process) before it is sent,
        the same way the run checks it, even while no worker runs the run.
        `plan(payload, comment, context)`: how a request for changes reads before it is sent,
        without a model: what would be done, and what could not be applied."""
        self.name = name
        self.payload = payload
        self.owner = owner
        self.recheck = recheck
        self.revise = revise
        self.present = present
        self.segments = segments
        self.reference = reference
        self.preview = preview
        self.warm = warm
        self.amend = amend
        self.keep_context = keep_context
        self.restore_context = restore_context
        self.plan = plan
        _GATES[name] = self

    def __call__(
        self,
        run: Run[Any, Any],
        draft: P,
        *,
        flags: Sequence[Flag] = (),
        context: Any = None,
        review: ReviewConfig | None = None,
    ) -> Reviewed[P]:
        """Wait for the decision on `draft` (call from a workflow's body, not a step).

        `flags` are the draft's findings; `context` is what the workflow's hooks check and
        revise against (the flagship's: the paper and its settings); `review` (who decides,
        by when) defaults to the configuration's `[review]`."""
        review = review or run.config.review
        payload, found = draft, [f.model_dump(mode="json") for f in flags]
        if review.auto_approve and not _errors(found):
            decision = Decision(
                action="approve",
                reviewer="auto-approve policy",
                automatic=True,
                comment="review.auto_approve is on",
            )
            return Reviewed(_record_decision(self.name, decision), payload, found)
        deadline: float | None = None
        escalated = False
        shown: dict[str, Any] | None = None  # the payload the previous round showed
        rounds, revision, author = 1, 1, "writer"
        reference = self.reference(context) if self.reference is not None else None
        kept = self.keep_context(context) if self.keep_context is not None else None
        while True:
            deciders = [*review.reviewers, review.escalate_to] if escalated else review.reviewers
            current = payload.model_dump(mode="json")
            round_ = _Round(
                self.name,
                rounds,
                revision,
                author,
                current,
                shown,
                found,
                deciders,
                reference if shown is None else None,
                kept if shown is None else None,
            )
            deadline, wait = _open_review(round_, review, deadline)
            shown = current
            with waiting_for_a_person():
                message = DBOS.recv(REVIEW_TOPIC, timeout_seconds=max(wait, 0.0))
            if message is None and review.escalate_to and not escalated:
                escalated = True
                deadline = _escalate_review(self.name, review)
                self._tell(run, "review-escalated", f"escalated to {review.escalate_to}")
                continue
            if message is None:
                decision = Decision(
                    action="reject",
                    reviewer="deadline",
                    automatic=True,
                    comment=f"no review decision within {review.deadline_hours:g} h",
                )
                self._tell(run, "review-overdue", "rejected by the deadline; nothing published")
                return Reviewed(_record_decision(self.name, decision), payload, found)
            decision = Decision.model_validate(message)
            set_run_state(RunState.RUNNING, "review")
            stale = decision.revision is not None and decision.revision != revision
            if stale and decision.action != "reject":
                outcome = f"refused: stale (made on revision {decision.revision}; now {revision})"
                _record_decision(self.name, decision, outcome)
                continue
            if decision.action in ("edit", "request_changes") and rounds >= review.max_rounds:
                _record_decision(self.name, decision, f"refused: {rounds} rounds already")
                continue
            if decision.action == "save" and revision >= review.max_revisions:
                _record_decision(self.name, decision, f"refused: {revision} revisions already")
                continue
            if decision.action in ("edit", "save"):
                size = len(json.dumps(decision.payload or {}))
                if size > review.max_edit_bytes:  # never parsed: the run holds its memory
                    _record_decision(self.name, decision, f"refused: {size:,} bytes")
                    continue
                try:
                    edited = self.payload.model_validate(decision.payload or {})
                    if self.amend is not None:
                        edited = self.amend(payload, edited)
                except ValidationError as exc:
                    _record_decision(self.name, decision, f"refused: {_first_problem(exc)}")
                    continue
                found = _recheck(self.name, edited.model_dump(mode="json"), context)
                payload, revision, author = edited, revision + 1, decision.reviewer
                if decision.action == "save":
                    _record_decision(self.name, decision, f"saved as revision {revision}")
                    continue
                if _errors(found) and not decision.override:  # held: it uses no round
                    held = f"held: {_errors(found)} error flag(s) remain; back to review"
                    _record_decision(self.name, decision, held)
                    continue
                rounds += 1
            elif decision.action == "request_changes":
                revised = _revise(
                    self.name, payload.model_dump(mode="json"), decision.comment, context
                )
                if revised == payload.model_dump(mode="json"):  # nothing it could apply
                    unapplied = Flag(
                        check="request",
                        severity="warning",
                        message=f"{decision.reviewer} asked {decision.comment!r}: nothing in "
                        "it could be applied, so nothing changed and no round was used; edit "
                        "the turns instead, or ask in other words",
                    )
                    found = [*found, unapplied.model_dump(mode="json")]
                    outcome = "refused: the request changed nothing; no round used"
                    _record_decision(self.name, decision, outcome)
                    continue
                payload = self.payload.model_validate(revised)
                found = _recheck(self.name, revised, context)
                rounds, revision = rounds + 1, revision + 1
                author = f"writer, as {decision.reviewer} asked"
                _record_decision(self.name, decision, "revised; back to review")
                continue
            errors = _errors(found) if decision.action != "reject" else 0
            if errors and not decision.override:
                held = f"held: {errors} error flag(s) remain; back to review"
                _record_decision(self.name, decision, held)
                continue
            return Reviewed(_record_decision(self.name, decision), payload, found)

    def checked_here(
        self, decision: Decision, request: dict[str, Any], kept: dict[str, Any], config: Config
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """An edit amended and checked in this process, as the run will check it: the payload
        the run would hold, and its flags. `kept` is what `keep_context` recorded."""
        before = self.payload.model_validate(request["payload"])
        edited = self.payload.model_validate(decision.payload or {})
        if self.amend is not None:
            edited = self.amend(before, edited)
        flags: list[dict[str, Any]] = []
        if self.recheck is not None and self.restore_context is not None:
            context = self.restore_context(kept, config)
            flags = [f.model_dump(mode="json") for f in self.recheck(edited, context)]
        return edited.model_dump(mode="json"), flags

    def parts_of(self, payload: dict[str, Any]) -> list[tuple[str, str]]:
        """A payload's parts (its `segments`), each as (label, text)."""
        if self.segments is None:
            return []
        shape = self.segments
        return [
            (str(item.get(shape.label, "")) if shape.label else "", str(item.get(shape.text, "")))
            for item in payload.get(shape.items, [])
            if isinstance(item, dict)
        ]

    def changes(self, before: dict[str, Any], after: dict[str, Any]) -> list[PartChange]:
        """What became of each part between two payloads (as JSON), by the parts' identity."""
        return part_changes(self.parts_of(before), self.parts_of(after))

    def field_changes(
        self, before: dict[str, Any], after: dict[str, Any]
    ) -> list[tuple[str, Any, Any]]:
        """The `segments.fields` two payloads hold differently: (label, before, after)."""
        fields = self.segments.fields if self.segments is not None else ()
        return [
            (label, value_at(before, path), value_at(after, path))
            for path, label in fields
            if value_at(before, path) != value_at(after, path)
        ]

    def diff(self, before: dict[str, Any], after: dict[str, Any]) -> str:
        """What changed between two payloads as text: part by part, numbered from 1, with
        the changed words marked (a gate without `segments`: line by line)."""
        if self.segments is None:
            return text_diff(self.text_of(before), self.text_of(after))
        noun = self.segments.noun
        lines = [c.describe(noun) for c in self.changes(before, after) if c.kind != "same"]
        lines += [
            f"~ {label}: {was} → {now}" for label, was, now in self.field_changes(before, after)
        ]
        rest = {k: v for k, v in after.items() if k != self.segments.items}
        if not lines and rest != {k: v for k, v in before.items() if k != self.segments.items}:
            lines.append(text_diff(self.text_of(before), self.text_of(after)))
        return "\n".join(lines)

    def text_of(self, payload: dict[str, Any]) -> str:
        """A payload (as JSON) as a reviewer reads it: `present`, else indented JSON."""
        if self.present is not None:
            return self.present(self.payload.model_validate(payload))
        return json.dumps(payload, indent=2, ensure_ascii=False)

    def _tell(self, run: Run[Any, Any], event: str, what: str) -> None:
        """The review went past its deadline: tell the gate's owner, and whoever it went to."""
        review = run.config.review
        notice = Notice(
            event=event,
            run_id=run.id,
            workflow=run.workflow,
            step="review",
            message=f"the {self.name} review had no decision within {review.deadline_hours:g} h: "
            f"{what}",
            todo=f"decide it in the console, or `shipyard review show {run.id}`",
        )
        for owner in dict.fromkeys([self.owner, review.escalate_to]):
            if owner:
                notify_owner(run.config, owner, notice)

    @property
    def shipyard_steps(self) -> list[StepSpec]:
        """The gate's durable steps, owned by the gate's owner (`shipyard show` lists them)."""
        steps = [_open_review, _recheck, _revise, _escalate_review, _record_decision]
        if self.recheck is None:
            steps.remove(_recheck)
        if self.revise is None:
            steps.remove(_revise)
        specs: list[StepSpec] = [s.__shipyard_step__ for s in steps]  # type: ignore[attr-defined]
        return [dataclasses.replace(spec, owner=self.owner) for spec in specs]

    # --- used by `decide`, outside the run ---------------------------------------------

    def check_decision(self, decision: Decision, request: dict[str, Any]) -> list[str]:
        """What is wrong with a decision on a round of review (the `review-requested` event's
        data) before it is sent, in words (empty: nothing)."""
        flags: list[dict[str, Any]] = request["flags"]
        current = request.get("revision", 1)
        if decision.revision not in (None, current) and decision.action != "reject":
            return [
                f"stale: revision {current} (by {request.get('author', 'the writer')}) came "
                f"after the revision {decision.revision} you worked on; nothing was changed: "
                "reload it, then make your change again"
            ]
        changes = decision.action in ("edit", "request_changes")
        if changes and request.get("round", 1) >= request.get("max_rounds", 1_000):
            return [
                f"{request['round']} rounds of changes already (review.max_rounds): "
                "approve or reject"
            ]
        if decision.action == "save" and current >= request.get("max_revisions", 1_000):
            return [f"{current} revisions already (review.max_revisions): approve or reject"]
        if decision.action == "request_changes":
            if self.revise is None:
                return [f"the {self.name} gate cannot revise: edit, approve or reject instead"]
            if not decision.comment.strip():
                return ["say what to change: a request for changes needs a comment"]
        if decision.action in ("edit", "save"):
            size = len(json.dumps(decision.payload or {}))
            limit = request.get("max_edit_bytes", size)
            if size > limit:
                return [f"the edit is {size:,} bytes, over review.max_edit_bytes ({limit:,})"]
            try:
                self.payload.model_validate(decision.payload or {})
            except ValidationError as exc:
                return [f"the edited {self.name} is not valid: {_first_problem(exc)}"]
            return []  # its guardrails run in the run, against the run's context
        if decision.action == "approve" and _errors(flags) and not decision.override:
            problems = [f"{f['check']}: {f['message']}" for f in flags if f["severity"] == "error"]
            return [
                f"{len(problems)} error flag(s) remain; fix them with an edit, or give a "
                "written reason to override them",
                *problems,
            ]
        return []


def value_at(payload: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a payload (None where there is none)."""
    value: Any = payload
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _errors(flags: Sequence[dict[str, Any]]) -> int:
    return sum(f.get("severity") == "error" for f in flags)


def _first_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


# --- the gate's durable steps -------------------------------------------------------------


@dataclass(frozen=True)
class _Round:
    """One round of review: what is shown, to whom, and how it differs from the last."""

    gate: str
    number: int  # rounds of changes (edits, revisions); saves are revisions of one round
    revision: int  # every payload shown is one; the writer's draft is 1
    author: str  # who made this revision
    payload: dict[str, Any]
    previous: dict[str, Any] | None
    flags: list[dict[str, Any]]
    deciders: list[str]
    reference: dict[str, Any] | None = None  # what reviewers read beside it (first round)
    context: dict[str, Any] | None = None  # the context kept as JSON (first round)

    def text(self, payload: dict[str, Any]) -> str:
        chosen = _GATES.get(self.gate)
        if chosen is None:
            return json.dumps(payload, indent=2, ensure_ascii=False)
        return chosen.text_of(payload)

    def diff(self) -> str:
        if self.previous is None or self.previous == self.payload:
            return ""
        chosen = _GATES.get(self.gate)
        if chosen is None:
            return text_diff(self.text(self.previous), self.text(self.payload))
        return chosen.diff(self.previous, self.payload)


@step(name="review-open", owner="reviewer", kind="gate", attempts=1)
def _open_review(
    round_: _Round, review: ReviewConfig, deadline: float | None
) -> tuple[float, float]:
    """Open a round of review: who must decide, by when; the run waits in awaiting_review.
    Returns the deadline and the seconds left until it."""
    deadline = deadline or time.time() + review.deadline_hours * 3600
    run_id = DBOS.workflow_id
    assert run_id is not None
    withheld = (
        " (auto-approve withheld: error flags remain)"
        if review.auto_approve and _errors(round_.flags)
        else ""
    )
    # What reviewers read is on the record before the run says it waits for them: a process
    # that sees `awaiting_review` always finds the review it asks for.
    if round_.reference is not None:
        title = str(round_.reference.get("title", ""))
        record_event("review-reference", f"{round_.gate} review: {title}", round_.reference)
    if round_.context is not None:
        record_event(
            "review-context",
            f"{round_.gate} review: what edits are checked against",
            round_.context,
        )
    record_event(
        "review-requested",
        f"{round_.gate} review requested (round {round_.number}, revision {round_.revision})",
        {
            "gate": round_.gate,
            "round": round_.number,
            "revision": round_.revision,
            "author": round_.author,
            "max_rounds": review.max_rounds,
            "max_revisions": review.max_revisions,
            "max_edit_bytes": review.max_edit_bytes,
            "resolve_comments": review.resolve_comments,
            "reviewers": round_.deciders,
            "escalate_to": review.escalate_to,
            "deadline": deadline,
            "flags": round_.flags,
            "payload": round_.payload,
            "text": round_.text(round_.payload),
            "diff": round_.diff(),
        },
    )
    current().ledger.set_state(
        run_id,
        RunState.AWAITING_REVIEW,
        step="review",
        reason=f"waiting for {', '.join(round_.deciders)}" + withheld,
    )
    return deadline, deadline - time.time()


@step(name="review-escalate", owner="reviewer", kind="gate", attempts=1)
def _escalate_review(gate: str, review: ReviewConfig) -> float:
    """The review deadline passed: hand the review to the escalation owner, with a new one."""
    record_event(
        "review-escalated",
        f"{gate} review deadline passed; escalated to {review.escalate_to}",
        {"gate": gate, "to": review.escalate_to},
    )
    return time.time() + review.deadline_hours * 3600


@step(name="review-recheck", owner="reviewer", kind="check", attempts=2)
def _recheck(gate: str, payload: dict[str, Any], context: Any) -> list[dict[str, Any]]:
    """Run the workflow's guardrails on a changed payload: an edit is never taken unchecked."""
    chosen = gate_named(gate)
    found = (
        chosen.recheck(chosen.payload.model_validate(payload), context)
        if chosen.recheck is not None
        else []
    )
    flags = [f.model_dump(mode="json") for f in found]
    errors = _errors(flags)
    record_event(
        "review-rechecked",
        f"changed {gate}: {errors} error flag(s), {len(flags) - errors} other",
        {"gate": gate, "flags": flags},
    )
    return flags


@step(name="review-revise", owner="reviewer", kind="gate", attempts=2)
def _revise(gate: str, payload: dict[str, Any], comment: str, context: Any) -> dict[str, Any]:
    """Have the workflow revise the payload as the reviewer asked."""
    chosen = gate_named(gate)
    if chosen.revise is None:
        raise ShipyardError(f"the {gate} gate cannot revise", code="cannot-revise")
    revised: BaseModel = chosen.revise(chosen.payload.model_validate(payload), comment, context)
    return revised.model_dump(mode="json")


@step(name="review-decided", owner="reviewer", kind="gate", attempts=1)
def _record_decision(gate: str, decision: Decision, outcome: str = "") -> Decision:
    """Record who decided what, whether a person or a policy did, and what came of it."""
    who = "policy" if decision.automatic else "reviewer"
    message = f"{decision.action.replace('_', ' ')} by {who} {decision.reviewer}"
    if outcome:
        message += f"; {outcome}"
    elif decision.override:
        message += f"; error flags overridden: {decision.override}"
    record_event(
        "review-decided",
        message,
        {
            "gate": gate,
            "outcome": outcome or "final",
            **decision.model_dump(mode="json", exclude={"payload"}),
        },
    )
    return decision
