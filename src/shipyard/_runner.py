"""Starting runs, following them, and deciding reviews: the library behind the CLI.

A run's id is derived from what determines its output: the workflow and its version, the
input's SHA-256, and the configuration's fingerprint. Running the same input again finds the
same run (DBOS starts a workflow id at most once), so nothing is written or published twice;
`force=True` makes a new run.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, EnqueueOptions, SetWorkflowID
from dbos._serialization import DBOSPortableJSON

from shipyard._config import CONFIG_FILE, Config
from shipyard._diff import text_diff
from shipyard._engine import QUEUE, application_version, current
from shipyard._errors import ConfigError, RunNotFound, ShipyardError
from shipyard._inputs import read_input, summary
from shipyard._ledger import Ledger, RunRecord, RunState
from shipyard._liveness import executor_alive
from shipyard._review import REVIEW_TOPIC, Decision, gate_named
from shipyard._verify import Verification
from shipyard._workflow import WorkflowSpec, get_workflow, workflows

__all__ = [
    "StartedRun",
    "StrandedRun",
    "cancel",
    "claim_review",
    "comment_on_review",
    "decide",
    "migrate",
    "recheck",
    "review_claim",
    "review_comments",
    "review_context",
    "review_open",
    "review_request",
    "review_revisions",
    "run_id_for",
    "start_run",
    "stranded_runs",
    "submit_run",
    "wait_for",
]


MAX_COMMENT_CHARS = 4000


@dataclass(frozen=True)
class StartedRun:
    run_id: str
    created: bool  # False: the same input and config ran before; this is that run


def run_id_for(spec: WorkflowSpec, input_sha256: str, config: Config) -> str:
    key = f"{spec.name}\0{spec.version}\0{input_sha256}\0{config.fingerprint(spec.table)}"
    return "run-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def start_run(
    workflow: str,
    source: str | Path,
    *,
    force: bool = False,
    profile: str | None = None,
    options: Mapping[str, str] | None = None,
) -> StartedRun:
    """Start (or find) the run of `workflow` on `source` (what the workflow accepts: a file's
    path, a URL, a JSON document) in this process's runtime, with one of the workflow's
    profiles laid over its settings when `profile` names one, and its `options` ({NAME:
    value}, as the workflow declares them) over both."""
    runtime = current()
    run = _new_run(
        runtime.ledger,
        runtime.config,
        workflow,
        source,
        force=force,
        profile=profile,
        options=options,
    )
    if run.start:
        with SetWorkflowID(run.run_id):
            DBOS.start_workflow(run.spec.function, *run.arguments)
    return StartedRun(run.run_id, created=run.created)


def submit_run(
    config: Config,
    workflow: str,
    source: str | Path,
    *,
    force: bool = False,
    profile: str | None = None,
    options: Mapping[str, str] | None = None,
) -> StartedRun:
    """Put a run on the queue that `shipyard worker` processes take runs from, on this
    machine or any other that shares the database (and the files: the input and the state
    folder). Nothing runs in this process."""
    with _ledger(config, create=True) as ledger:
        run = _new_run(
            ledger, config, workflow, source, force=force, profile=profile, options=options
        )
    if run.start:
        enqueued: EnqueueOptions = {
            "queue_name": QUEUE,
            "workflow_name": run.spec.name,
            "workflow_id": run.run_id,
            "app_version": application_version(config),
            "application_name": "shipyard",
        }
        with _client(config) as client:
            try:
                client.enqueue(enqueued, *run.arguments)
            except sa.exc.DBAPIError as exc:  # the queue's tables are not there
                if not _missing_table(exc):
                    raise
                raise ShipyardError(
                    "no worker has prepared this database yet, so it has no queue",
                    code="no-workers",
                    run_id=run.run_id,
                    hint="start `shipyard worker` with this configuration, then submit again",
                ) from None
    return StartedRun(run.run_id, created=run.created)


def _missing_table(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "does not exist" in text or "no such table" in text


@dataclass(frozen=True)
class _NewRun:
    spec: WorkflowSpec
    run_id: str
    created: bool
    start: bool  # False: the run ended before; it is found, not started again
    arguments: tuple[dict[str, Any], dict[str, Any]]  # the workflow's: input, config


def _new_run(
    ledger: Ledger,
    config: Config,
    workflow: str,
    source: str | Path,
    *,
    force: bool,
    profile: str | None = None,
    options: Mapping[str, str] | None = None,
) -> _NewRun:
    spec = get_workflow(workflow, config)
    if profile is not None:  # part of the run's input and of its id
        config = config.with_profile(spec.table, profile)
    options = dict(options or {})
    if options:  # so are the options
        config = _with_options(spec, config, options)
    _check_requirements(spec, config)
    given = read_input(
        spec.accepts,
        str(source),
        described=spec.input_help,
        model=spec.input_model,
        url_for=spec.url_for,
    )
    run_id = run_id_for(spec, given.sha256, config)
    if force:
        run_id += f"-{int(time.time() * 1000):x}"
    recorded = (
        summary(given) | {"profile": profile or ""} | ({"options": options} if options else {})
    )
    created = ledger.create_run(run_id, spec.name, spec.version, recorded)
    ended = not created and ledger.get(run_id, detail=False).state.finished
    return _NewRun(
        spec,
        run_id,
        created,
        start=not ended,
        arguments=(given.model_dump(mode="json"), config.model_dump(mode="json")),
    )


def wait_for(
    ledger: Ledger,
    run_id: str,
    *,
    until: Callable[[RunRecord], bool] | None = None,
    on_change: Callable[[RunRecord], None] | None = None,
    poll_seconds: float = 0.2,
    timeout: float | None = None,
) -> RunRecord:
    """Follow a run until it finishes (or `until` holds), calling `on_change` on every
    new step attempt or state."""
    stop = until or (lambda record: record.state.finished)
    seen: tuple[Any, ...] = ()
    started = time.monotonic()
    while True:
        record = ledger.get(run_id)
        fingerprint = (record.state, len(record.steps), *(s.status for s in record.steps))
        if fingerprint != seen:
            seen = fingerprint
            if on_change is not None:
                on_change(record)
        if stop(record):
            return record
        if timeout is not None and time.monotonic() - started > timeout:
            raise ShipyardError(
                f"run {run_id} is still {record.state.value} after {timeout:g} s",
                code="wait-timeout",
                run_id=run_id,
                hint=f"follow it with `shipyard status {run_id}`",
            )
        time.sleep(poll_seconds)


def decide(config: Config, run_id: str, decision: dict[str, Any]) -> RunRecord:
    """Send a reviewer's decision to a run waiting at its review gate, from any process.

    The decision is checked here first, as the gate will check it: the reviewer must be one
    the gate names (or its escalation owner), an edit must be a valid payload and pass the
    workflow's guardrails, and error flags need a written override reason."""
    checked = Decision.model_validate(decision)
    with _ledger(config) as ledger:
        record = ledger.get(run_id)
        if not review_open(record):
            raise ShipyardError(
                f"run {record.run_id} is {record.state.value}, not awaiting review",
                code="not-awaiting-review",
                run_id=record.run_id,
                hint="`shipyard review list` shows the runs that wait for a decision",
            )
        request = review_request(record)
        _a_reviewer(record, request, checked.reviewer)
        get_workflow(record.workflow, config)  # registers the run's gates in this process
        gate = gate_named(request["gate"])
        problems = gate.check_decision(checked, request)
        unresolved = [c for c in review_comments(record) if not c["resolved"]]
        if checked.action == "approve" and request.get("resolve_comments") and unresolved:
            problems.append(
                f"{len(unresolved)} comment(s) are not resolved (review.resolve_comments): "
                + "; ".join(f"{c['reviewer']}: {c['text']}" for c in unresolved)
            )
        if problems:
            raise ShipyardError(
                f"{checked.action.replace('_', ' ')} refused: " + "; ".join(problems),
                code="decision-refused",
                run_id=record.run_id,
                hint=_what_to_do(problems[0], record.run_id),
            )
        saved: dict[str, Any] | None = None
        kept = review_context(record)
        if checked.action in ("edit", "save") and kept is not None:
            payload, flags = gate.checked_here(checked, request, kept, config)
            errors = [f for f in flags if f.get("severity") == "error"]
            if checked.action == "edit" and errors and not checked.override:
                raise ShipyardError(
                    f"edit held: {len(errors)} error flag(s); nothing was sent: "
                    + "; ".join(f"{f['check']}: {f['message']}" for f in errors),
                    code="edit-held",
                    run_id=record.run_id,
                    hint="fix them and send the edit again, or give a written reason to "
                    "override them",
                )
            revision = int(request.get("revision", 1)) + 1
            saved = {
                "revision": revision,
                "author": checked.reviewer,
                "payload": payload,
                "flags": flags,
                "text": gate.text_of(payload),
                "diff": gate.diff(request["payload"], payload),
            }
        with _client(config) as client:
            client.send(record.run_id, checked.model_dump(mode="json"), REVIEW_TOPIC)
        ledger.event(
            record.run_id,
            "review-sent",
            f"{checked.action} sent by {checked.reviewer}",
            {"action": checked.action},
        )
        if saved is not None and checked.action == "save":
            errors = sum(f.get("severity") == "error" for f in saved["flags"])
            ledger.event(
                record.run_id,
                "review-saved",
                f"revision {saved['revision']} saved by {checked.reviewer} and checked: "
                f"{errors} error flag(s)",
                saved,
            )
        return ledger.get(run_id)


def _what_to_do(problem: str, run_id: str) -> str:
    """The fix line for a refused decision, about that refusal."""
    show = f"`shipyard review show {run_id}`"
    if "error flag" in problem:
        return f"{show} shows the flags"
    if problem.startswith("stale"):
        return f"{show} shows the latest revision: make your change on it"
    if "comment(s) are not resolved" in problem:
        return "resolve them in the console, then approve"
    if "rounds" in problem or "revisions already" in problem:
        return "approve or reject"
    return f"{show} shows what waits for the decision"


def _a_reviewer(record: RunRecord, request: dict[str, Any], name: str) -> None:
    """Refuse anyone the run's review gate does not name (its escalation owner included)."""
    allowed = {*request["reviewers"], request.get("escalate_to", "")} - {""}
    if name not in allowed:
        raise ShipyardError(
            f"{name!r} is not a reviewer of this run",
            code="not-a-reviewer",
            run_id=record.run_id,
            hint=f"its gate names {', '.join(sorted(allowed))} (review.reviewers)",
        )


def comment_on_review(
    config: Config,
    run_id: str,
    reviewer: str,
    text: str,
    *,
    part: int | None = None,
    resolves: str = "",
) -> RunRecord:
    """A reviewer's comment on a run's review (on one part, from 0, or on the whole), or,
    with `resolves`, the resolution of comment `resolves`. Comments change nothing; with
    `review.resolve_comments` on, approval waits until every one is resolved."""
    with _ledger(config) as ledger:
        record = ledger.get(run_id)
        _a_reviewer(record, review_request(record), reviewer)
        if resolves:
            if resolves not in {c["id"] for c in review_comments(record)}:
                raise ShipyardError(
                    f"run {run_id} has no comment {resolves!r}",
                    code="no-such-comment",
                    run_id=run_id,
                    hint="the review page lists its comments",
                )
            ledger.event(
                run_id,
                "review-comment-resolved",
                f"comment {resolves} resolved by {reviewer}",
                {"id": resolves, "reviewer": reviewer},
            )
            return ledger.get(run_id)
        text = text.strip()
        if not text or len(text) > MAX_COMMENT_CHARS:
            raise ShipyardError(
                "a comment needs words" if not text else "the comment is too long",
                code="bad-comment",
                run_id=run_id,
                hint=f"between 1 and {MAX_COMMENT_CHARS:,} characters",
            )
        where = f" on part {part + 1}" if part is not None else ""
        ledger.event(
            run_id,
            "review-comment",
            f"{reviewer} commented{where}: {text[:80]}",
            {"id": secrets.token_hex(4), "reviewer": reviewer, "part": part, "text": text},
        )
        return ledger.get(run_id)


def claim_review(config: Config, run_id: str, by: str, reviewer: str = "") -> RunRecord:
    """`by` takes a run's review (or, with `reviewer`, hands it to that reviewer): the page
    and the queue say who is on it. A claim is a courtesy, not a lock: anyone the gate names
    may still decide."""
    reviewer = reviewer or by
    with _ledger(config) as ledger:
        record = ledger.get(run_id)
        request = review_request(record)
        _a_reviewer(record, request, by)
        _a_reviewer(record, request, reviewer)
        said = f"claimed by {by}" if reviewer == by else f"assigned to {reviewer} by {by}"
        ledger.event(run_id, "review-claimed", said, {"reviewer": reviewer, "by": by})
        return ledger.get(run_id)


def review_comments(record: RunRecord) -> list[dict[str, Any]]:
    """A run's review comments, oldest first: reviewers' comments (with `resolved`) and
    every request for changes, whose comment stays in the run's history."""
    comments: list[dict[str, Any]] = []
    resolved = {
        e["data"].get("id"): e["data"].get("reviewer")
        for e in record.events
        if e["kind"] == "review-comment-resolved"
    }
    for event in record.events:
        data = event["data"]
        if event["kind"] == "review-comment":
            comments.append(
                {
                    **data,
                    "at": event["at"],
                    "resolved": data["id"] in resolved,
                    "resolved_by": resolved.get(data["id"], ""),
                    "request": False,
                }
            )
        elif event["kind"] == "review-decided" and data.get("action") == "request_changes":
            comments.append(
                {
                    "id": f"request-{len(comments)}",
                    "reviewer": data.get("reviewer", ""),
                    "part": None,
                    "text": data.get("comment", ""),
                    "at": event["at"],
                    "resolved": True,  # answered by the revision (or by its flag)
                    "resolved_by": str(data.get("outcome", "")),
                    "request": True,
                }
            )
    return comments


def review_context(record: RunRecord) -> dict[str, Any] | None:
    """What a run's review gate kept of its context (`keep_context`), for checking edits and
    reading requests where the reviewer is; None if it kept nothing."""
    return _latest_data(record, "review-context")


def review_claim(record: RunRecord) -> str:
    """Who has claimed a run's review ("" for nobody)."""
    claims = [e["data"]["reviewer"] for e in record.events if e["kind"] == "review-claimed"]
    return str(claims[-1]) if claims else ""


def review_revisions(record: RunRecord) -> list[dict[str, Any]]:
    """Every revision a run's review has shown, oldest first, each with its time: the rounds
    the run asked for, and after the latest one the revisions saved and checked by reviewers
    that the run has not taken up yet (no worker had it, or it is busy). A round the run
    opens for an earlier save leaves the later saves pending, after it."""
    rounds: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for event in record.events:
        data = event["data"]
        if event["kind"] == "review-requested":
            rounds.append({**data, "at": event["at"], "pending": False})
            pending = [p for p in pending if p.get("revision", 1) > data.get("revision", 1)]
        elif event["kind"] == "review-saved" and rounds:
            latest = (pending or rounds)[-1]
            if data.get("revision", 0) > latest.get("revision", 1):
                diff = data.get("diff") or text_diff(
                    latest.get("text", ""), str(data.get("text", ""))
                )
                pending.append({**latest, **data, "diff": diff, "at": event["at"], "pending": True})
    return rounds + pending


def review_request(record: RunRecord) -> dict[str, Any]:
    """The latest round of review a run asked for (or the revision a reviewer saved since):
    gate, reviewers, deadline, revision, payload, flags."""
    revisions = review_revisions(record)
    if not revisions:
        raise ShipyardError(
            f"run {record.run_id} has not asked for a review",
            code="no-review",
            run_id=record.run_id,
            hint="`shipyard review list` shows those that did",
        )
    return revisions[-1]


def review_open(record: RunRecord) -> bool:
    """Whether a run takes review decisions now: it waits for one, or it is taking up a
    revision a reviewer saved (its review stays open: a decision sent meanwhile waits)."""
    if record.state is RunState.AWAITING_REVIEW:
        return True
    sent = _latest_data(record, "review-sent")
    return (
        record.state is RunState.RUNNING
        and record.step == "review"
        and sent is not None
        and sent.get("action") == "save"
    )


def _latest_data(record: RunRecord, kind: str) -> dict[str, Any] | None:
    found = [e["data"] for e in record.events if e["kind"] == kind]
    return dict(found[-1]) if found else None


def recheck(config: Config, record: RunRecord, deadline_seconds: float) -> Verification:
    """Ask production again whether it serves what a finished run shipped (a drift check),
    as the run's workflow defines "served"."""
    spec = get_workflow(record.workflow, config)
    if not record.result:
        raise ShipyardError(
            f"run {record.run_id} has published nothing ({record.state.value})",
            code="not-published",
            run_id=record.run_id,
            hint="`shipyard runs --state verified` lists published runs",
        )
    if spec.recheck is None:
        raise ShipyardError(
            f"workflow {spec.name} does not say how to re-check what it published",
            code="no-recheck",
            run_id=record.run_id,
            hint="its author can pass recheck= to @workflow",
        )
    return spec.recheck(record.result, config, deadline_seconds)


def cancel(config: Config, run_id: str) -> RunRecord:
    """Cancel a run that has not finished; it stops at its next step and publishes nothing
    more (a step already under way completes)."""
    with _ledger(config) as ledger:
        record = ledger.get(run_id, detail=False)
        if record.state.finished:
            raise ShipyardError(
                f"run {record.run_id} already ended {record.state.value}",
                code="finished",
                run_id=record.run_id,
                hint="what it published is taken back by its workflow's own command, where it "
                "has one (the flagship's: `shipyard unpublish`)",
            )
        with _client(config) as client:
            client.cancel_workflow(record.run_id)
        ledger.set_state(
            record.run_id, RunState.CANCELLED, step=record.step, reason="cancelled by a user"
        )
        return ledger.get(record.run_id, detail=False)


_UNFINISHED = ["PENDING", "ENQUEUED"]  # DBOS's states of a run that has yet to end


@dataclass(frozen=True)
class StrandedRun:
    """A run recorded under another application version than this configuration's: no
    worker of this version recovers or dequeues it."""

    run: RunRecord
    version: str  # the application version it is recorded under
    movable: bool  # its workflow's steps are those installed: `migrate` can move it
    why: str


def run_holder(config: Config, run_id: str) -> tuple[str, bool]:
    """The executor a run belongs to ("" for none), and whether a process of it runs now:
    if not, the run waits (a decision sent to it included) until one starts."""
    with _client(config) as client:
        found = client.list_workflows(workflow_ids=[run_id], load_input=False, load_output=False)
    executor = str(found[0].executor_id or "") if found else ""
    alive = bool(executor) and executor_alive(config.database_url, config.state, executor)
    return executor, alive


def stranded_runs(config: Config) -> list[StrandedRun]:
    """The unfinished runs that no worker of this configuration's version would take."""
    current_version = application_version(config)
    installed = workflows()
    with _client(config) as client:
        unfinished = client.list_workflows(status=_UNFINISHED, load_input=False, load_output=False)
    stranded = []
    with _ledger(config) as ledger:
        for status in unfinished:
            if status.app_version in (None, current_version):
                continue
            try:
                record = ledger.get(status.workflow_id, detail=False)
            except RunNotFound:  # not a run of shipyard's
                continue
            spec = installed.get(record.workflow)
            if spec is None:
                movable, why = False, f"no installed workflow is named {record.workflow!r}"
            elif spec.version != record.version:
                movable, why = (
                    False,
                    f"it began under {record.workflow} v{record.version}, whose steps "
                    f"differ from the installed v{spec.version}",
                )
            else:
                movable, why = True, f"{record.workflow} v{record.version} is still installed"
            stranded.append(StrandedRun(record, str(status.app_version), movable, why))
    return stranded


def migrate(config: Config, run_id: str) -> RunRecord:
    """Move a stranded run onto this configuration's version, as it is: its finished steps,
    a decision already sent and the rest of its input go with it, and a worker of this
    version takes it from the queue. Its workflow's steps must be unchanged."""
    with _ledger(config) as ledger:
        record = ledger.get(run_id, detail=False)
    version = application_version(config)
    found = [s for s in stranded_runs(config) if s.run.run_id == record.run_id]
    if not found:
        raise ShipyardError(
            f"run {record.run_id} is not stranded: it is {record.state.value}, and "
            "this version's workers take it as it is",
            code="not-stranded",
            run_id=record.run_id,
            hint="`shipyard runs --stranded` lists the runs that need moving",
        )
    if not found[0].movable:
        raise ShipyardError(
            f"run {record.run_id} cannot move to this version: {found[0].why}",
            code="incompatible",
            run_id=record.run_id,
            hint=f"end it with `shipyard cancel {record.run_id}` and start it again with "
            "`shipyard run WORKFLOW INPUT --force`; or run a worker of its version, "
            f"{found[0].version!r} (engine.application_version)",
        )
    with _client(config) as client:
        # DBOS has no public call that changes a run's version and keeps its id (a fork
        # would give it a new one), so the version is set in its table; then the run is put
        # on the queue as DBOS does for a run it resumes.
        system = client._sys_db
        table = system.tables.workflow_status
        with system.engine.begin() as connection:
            connection.execute(
                sa.update(table)
                .where(table.c.workflow_uuid == record.run_id, table.c.status.in_(_UNFINISHED))
                .values(application_version=version)
            )
        client.resume_workflow(record.run_id, queue_name=QUEUE)
    with _ledger(config) as ledger:
        ledger.event(
            record.run_id,
            "migrated",
            f"moved from version {found[0].version} to {version}",
            {"from": found[0].version, "to": version},
        )
        return ledger.get(record.run_id, detail=False)


def _with_options(spec: WorkflowSpec, config: Config, options: dict[str, str]) -> Config:
    """The run's options laid over the workflow's settings; refused (before the run exists)
    where the workflow has no such option or its value does not hold."""
    unknown = [name for name in options if name not in spec.options]
    if unknown:
        known = ", ".join(f"--{name}" for name in spec.options) or "none"
        raise ShipyardError(
            f"{spec.name} has no option --{unknown[0]}",
            code="no-such-option",
            hint=f"its options: {known} (`shipyard show {spec.name}`)",
        )
    assert spec.settings is not None  # a workflow with options has a table (`workflow`)
    keyed = {spec.options[name]: value for name, value in options.items()}
    try:
        return config.with_options(spec.table, spec.settings, keyed)
    except ConfigError as exc:
        given = " ".join(f"--{name} {value}" for name, value in options.items())
        raise ShipyardError(f"{given}: {exc.message}", code="bad-option", hint=exc.hint) from None


def _check_requirements(spec: WorkflowSpec, config: Config) -> None:
    for key in spec.requires:
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        if not value:
            raise ConfigError(
                f"is not set, and {spec.name} needs it",
                key=key,
                file=str(config.root / CONFIG_FILE),
                hint="`shipyard init --local-production` sets up a local site to publish to",
            )


@contextmanager
def _ledger(config: Config, *, create: bool = False) -> Iterator[Ledger]:
    ledger = Ledger(config.database_url) if create else Ledger.existing(config.database_url)
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def _client(config: Config) -> Iterator[DBOSClient]:
    """DBOS's client: talks to runs through the database, without launching DBOS here."""
    client = DBOSClient(system_database_url=config.database_url, serializer=DBOSPortableJSON)
    try:
        yield client
    finally:
        client.destroy()
