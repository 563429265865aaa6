"""The console's web app: runs, a run's record, and the review page, for signed-in people.

Server-rendered pages (Jinja2, autoescaped) with one small script of our own; nothing is
fetched from elsewhere. Every state change is a POST that carries the session's CSRF token and
an Origin the console trusts; the decisions go through `decide`, the CLI's own path, so the
gate's rules (who may decide, error flags, stale revisions) are the same everywhere.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from shipyard._config import Config
from shipyard._diff import text_diff, word_changes
from shipyard._errors import ShipyardError
from shipyard._ledger import Ledger, RunRecord, RunState
from shipyard._prometheus import metrics_endpoint
from shipyard._review import Preview, ReviewGate, gate_named
from shipyard._runner import (
    claim_review,
    comment_on_review,
    decide,
    review_claim,
    review_comments,
    review_context,
    review_open,
    review_request,
    review_revisions,
    run_holder,
)
from shipyard._workflow import get_workflow
from shipyard.console._accounts import Accounts, Session
from shipyard.console._editing import Form, edited, fields, labels, parts

__all__ = ["create_app"]

HERE = Path(__file__).parent
SESSION_COOKIE = "shipyard_session"
LOGIN_COOKIE = "shipyard_login"  # double-submit token for the sign-in form
SAVE_WAIT_S = 60.0  # how long a save waits for the run to check the new revision
PRESENCE_S = 20  # how often an open review page says it is still open
Page = Callable[["Console", Request, Session, Form], Response]  # runs in a worker thread


def _when(epoch: float | None) -> str:
    """A time as people read it, with its time zone (a deadline means nothing without one)."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch)) if epoch else ""


def _title(record: RunRecord) -> str:
    """What a run is about, as its review showed it (a paper's title), where it has one."""
    shown = [e["data"].get("title", "") for e in record.events if e["kind"] == "review-reference"]
    return str(shown[-1]) if shown else ""


def _age(epoch: float) -> str:
    seconds = max(0, int(time.time() - epoch))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _highlight(text: str, spans: list[str | None]) -> Markup:
    """`text`, escaped, with each flagged span marked."""
    marked = str(escape(text))
    for span in sorted({s for s in spans if s}, key=len, reverse=True):
        found = str(escape(span))
        marked = marked.replace(found, f"<mark>{found}</mark>")
    return Markup(marked)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(when=_when, age=_age, highlight=_highlight)


log = logging.getLogger("shipyard.console")


class Console:
    """The app's state: the project's configuration, its ledger and its accounts."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = config.console
        config.state_folder()  # a SQLite database needs its folder
        self.ledger = Ledger(config.database_url)
        self.accounts = Accounts(self.ledger.engine)
        self.previews: dict[str, list[tuple[float, int]]] = {}  # (when, characters) by whom
        self.presence: dict[str, dict[str, float]] = {}  # run -> who -> last seen
        self._previews_lock = threading.Lock()
        self._warming = threading.Lock()  # one warm-up at a time

    def preview_allowed(self, keys: list[str], characters: int) -> str:
        """Count a preview against each bound (a person, a run) for the past hour: "" when
        it may go ahead, else why not. Held in this process (each console its own)."""
        now = time.time()
        limits = self.settings
        with self._previews_lock:
            for key in keys:
                recent = [(t, n) for t, n in self.previews.get(key, []) if now - t < 3600]
                self.previews[key] = recent
                if len(recent) >= limits.previews_per_hour:
                    return f"{len(recent)} previews in the past hour ({key}); " + (
                        f"console.previews_per_hour is {limits.previews_per_hour}"
                    )
                if sum(n for _, n in recent) + characters > limits.preview_chars_per_hour:
                    return f"over {limits.preview_chars_per_hour:,} characters spoken in the " + (
                        f"past hour ({key}); console.preview_chars_per_hour sets it"
                    )
            for key in keys:
                self.previews[key].append((now, characters))
        return ""

    def warm(self, gate: ReviewGate[Any], payload: dict[str, Any]) -> None:
        """Get `gate`'s previews of `payload` ready (its `warm` hook) on a thread of its own,
        one warm-up at a time: the first part a reviewer plays need not wait for a voice to
        load."""
        warm = gate.warm
        if warm is None or not self._warming.acquire(blocking=False):
            return

        def run() -> None:
            try:
                warm(gate.payload.model_validate(payload), self.config)
            except Exception as exc:  # noqa: BLE001  (the preview itself reports what fails)
                log.warning("getting %s previews ready failed: %s", gate.name, exc)
            finally:
                self._warming.release()

        threading.Thread(target=run, name="shipyard-warm", daemon=True).start()

    def here(self, run_id: str, name: str) -> list[str]:
        """Note that `name` has run `run_id`'s review open; the others who have."""
        with self._previews_lock:
            self.presence.setdefault(run_id, {})[name] = time.time()
        return self.seen(run_id, name)

    def seen(self, run_id: str, name: str) -> list[str]:
        """Who other than `name` has run `run_id`'s review open (seen within two of
        `PRESENCE_S` by this console)."""
        now = time.time()
        with self._previews_lock:
            seen = self.presence.get(run_id, {})
            for who in [w for w, t in seen.items() if now - t > 2 * PRESENCE_S]:
                del seen[who]
            return sorted(w for w in seen if w != name)

    # --- who is asking -------------------------------------------------------------------

    def session(self, request: Request) -> tuple[Session | None, str]:
        """The request's session, and a new cookie token when single sign-on made one."""
        token = request.cookies.get(SESSION_COOKIE, "")
        found = self.accounts.session(token) if token else None
        if found is not None or not self.settings.sso_header:
            return found, ""
        vouched = request.headers.get(self.settings.sso_header, "")
        if not vouched or not self.from_proxy(request):
            return None, ""  # the header counts only from the configured proxies
        made = self.accounts.session_for(vouched, hours=self.settings.session_hours)
        return (made[1], made[0]) if made else (None, "")

    def from_proxy(self, request: Request) -> bool:
        """Whether the request came straight from one of `console.proxy_addresses`."""
        peer = request.client.host if request.client else ""
        return peer in self.settings.proxy_addresses

    def client_address(self, request: Request) -> str:
        """Who is asking, as an address: the nearest one a configured proxy forwarded for
        (X-Forwarded-For), else the peer's. Sign-in throttling counts by it."""
        peer = request.client.host if request.client else ""
        if not self.from_proxy(request):
            return peer
        chain = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
        outside = [a for a in chain if a and a not in self.settings.proxy_addresses]
        return outside[-1] if outside else peer

    def scheme(self, request: Request) -> str:
        """The scheme people use: a configured proxy's X-Forwarded-Proto, else the request's."""
        forwarded = request.headers.get("x-forwarded-proto", "") if self.from_proxy(request) else ""
        return forwarded.split(",")[0].strip() or request.url.scheme

    def origin_ok(self, request: Request) -> bool:
        """A state change must come from the console's own pages (or a trusted origin)."""
        origin = request.headers.get("origin") or request.headers.get("referer", "")
        if not origin:
            return False
        parts = urlsplit(origin)
        seen = f"{parts.scheme}://{parts.netloc}"
        host = request.headers.get("x-forwarded-host", "") if self.from_proxy(request) else ""
        own = f"{self.scheme(request)}://{host.split(',')[0].strip() or request.url.netloc}"
        return seen == own or seen in self.settings.trusted_origins

    def guarded(self, request: Request, session: Session, form: Form) -> Response | None:
        """403 unless the POST carries the session's CSRF token from a trusted origin."""
        given = str(form.get("csrf") or request.headers.get("x-csrf-token", ""))
        if not hmac.compare_digest(given.encode(), session.csrf.encode()):
            return self.problem(
                request,
                session,
                403,
                "the form's security token is missing or stale: reload the page and try again",
            )
        if not self.origin_ok(request):
            return self.problem(
                request,
                session,
                403,
                "this request did not come from the "
                "console's own pages (Origin); see console.trusted_origins",
            )
        return None

    def page(
        self,
        request: Request,
        session: Session | None,
        name: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        return templates.TemplateResponse(
            request,
            name,
            {"session": session, "base": _base(request), **context},
            status_code=status,
        )

    def problem(
        self, request: Request, session: Session | None, status: int, message: str
    ) -> Response:
        return self.page(request, session, "problem.html", status, message=message)


def _set_session_cookie(console: Console, request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(console.settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=console.scheme(request) == "https",
    )


# --- signing in and out ----------------------------------------------------------------


def login_page(console: Console, request: Request, form: Form) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = console.page(
        request, None, "login.html", login_token=token, next=_next(request, request.query_params)
    )
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict")
    return response


def _base(request: Request) -> str:
    """Where the console is mounted ("" at the root; "/console" inside `shipyard serve`)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


_CONSOLE_PATH = re.compile(r"/(?:runs/[\w.-]+(?:/review)?)?(?:\?[^#]*)?")


def _next(request: Request, params: Any) -> str:
    """Where to go after signing in: a page of the console, never another site's, nor
    anything else a proxy may serve beside it on the same host."""
    base, where = _base(request), str(params.get("next") or "")
    inside = where[len(base) :] if where.startswith(base + "/") else ""
    return where if _CONSOLE_PATH.fullmatch(inside) else base + "/"


# Every console response: no script but the console's own file, no framing, no sniffing, no
# referrer to other sites. Media may come from the site that serves the episodes.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"media-src 'self' http: https:; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'; object-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class _SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every HTTP response of the console."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def login(console: Console, request: Request, form: Form) -> Response:
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not token or not hmac.compare_digest(str(form.get("login_token", "")), token):
        return console.problem(request, None, 403, "the sign-in form is stale: reload it")
    if not console.origin_ok(request):
        return console.problem(request, None, 403, "sign in from the console's own page")
    address = console.client_address(request)
    wait = console.accounts.retry_after(name, address)
    if wait > 0:
        response = console.page(
            request,
            None,
            "login.html",
            429,
            login_token=token,
            next=_next(request, form),
            error=f"too many wrong passwords: try again in {wait:.0f} s",
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    signed = console.accounts.sign_in(
        name, password, hours=console.settings.session_hours, address=address
    )
    if signed is None:
        return console.page(
            request,
            None,
            "login.html",
            401,
            login_token=token,
            next=_next(request, form),
            error="wrong name or password",
        )
    response = RedirectResponse(_next(request, form), status_code=303)
    _set_session_cookie(console, request, response, signed[0])
    response.delete_cookie(LOGIN_COOKIE)
    return response


def logout(console: Console, request: Request, session: Session, form: Form) -> Response:
    if (refused := console.guarded(request, session, form)) is not None:
        return refused
    console.accounts.sign_out(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(f"{_base(request)}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- runs ------------------------------------------------------------------------------


def runs_page(console: Console, request: Request, session: Session, form: Form) -> Response:
    state = request.query_params.get("state", "")
    workflow = request.query_params.get("workflow", "")
    states = [RunState(state)] if state in {s.value for s in RunState} else []
    records = [
        console.ledger.get(r.run_id)
        for r in console.ledger.runs(workflow=workflow or None, states=states, limit=200)
    ]
    owners = {r.workflow: _owner(console.config, r.workflow) for r in records}
    waiting = console.ledger.runs(states=[RunState.AWAITING_REVIEW], limit=200)
    yours = [
        r
        for r in (console.ledger.get(w.run_id) for w in waiting)
        if any(e["kind"] == "review-requested" for e in r.events)
        and session.user.name in review_request(r)["reviewers"]  # escalation included
    ]
    return console.page(
        request,
        session,
        "runs.html",
        runs=records,
        owners=owners,
        state=state,
        workflow=workflow,
        states=[s.value for s in RunState],
        yours=yours,
        queue={
            r.run_id: {
                "deadline": review_request(r).get("deadline"),
                "claimed": review_claim(r),
                "open": console.seen(r.run_id, session.user.name),
            }
            for r in yours
        },
        titles={r.run_id: _title(r) for r in [*records, *yours]},
    )


def _owner(config: Config, workflow: str) -> str:
    try:
        return get_workflow(workflow, config).owner
    except ShipyardError:
        return ""


def _record(console: Console, run_id: str) -> RunRecord | None:
    try:
        return console.ledger.get(run_id)
    except ShipyardError:
        return None


def run_page(console: Console, request: Request, session: Session, form: Form) -> Response:
    record = _record(console, request.path_params["run_id"])
    if record is None:
        return console.problem(request, session, 404, "no such run")
    verifications = [e for e in record.events if e["kind"] == "verification"]
    urls = {k: v for k, v in record.result.items() if k.endswith("_url") and isinstance(v, str)}
    audio = [u for u in urls.values() if u.lower().endswith((".mp3", ".m4a", ".ogg", ".wav"))]
    return console.page(
        request,
        session,
        "run.html",
        run=record,
        lineage=console.ledger.lineage(record.run_id),
        verifications=verifications,
        urls=urls,
        audio=audio,
        chapters=[c for c in record.result.get("chapters", []) if isinstance(c, dict)],
        reviewable=any(e["kind"] == "review-requested" for e in record.events),
    )


# --- review ----------------------------------------------------------------------------


def _gate(console: Console, record: RunRecord, request: dict[str, Any]) -> ReviewGate[Any]:
    get_workflow(record.workflow, console.config)  # registers the run's gates here
    return gate_named(request["gate"])


def _review_view(
    console: Console, record: RunRecord, gate: ReviewGate[Any], **extra: Any
) -> dict[str, Any]:
    revisions = review_revisions(record)
    current = revisions[-1]
    previous = revisions[-2]["payload"] if len(revisions) > 1 else current["payload"]
    awaiting = review_open(record)
    references = [e["data"] for e in record.events if e["kind"] == "review-reference"]
    flags: list[dict[str, Any]] = current["flags"]
    shape = gate.segments
    return {
        "run": record,
        "review": current,
        "revisions": revisions,
        "segments": parts(gate, current["payload"], flags),
        "fields": fields(gate, current["payload"]),
        "labels": labels(gate, current["payload"]),
        "noun": shape.noun if shape is not None else "part",
        "label_name": shape.label if shape is not None else "",
        "loose_flags": [f for f in flags if shape is None or f.get(shape.flag_index) is None],
        "errors": sum(f.get("severity") == "error" for f in flags),
        "since_last": _changes(gate, previous, current["payload"]),
        "since_draft": _changes(gate, revisions[0]["payload"], current["payload"]),
        "reference": references[-1] if references else None,
        "payload_json": json.dumps(current["payload"], indent=2, ensure_ascii=False),
        "can_preview": gate.preview is not None,
        "can_revise": gate.revise is not None,
        "awaiting": awaiting,
        "held": run_holder(console.config, record.run_id) if awaiting else ("", False),
        "deciders": {*current["reviewers"], current.get("escalate_to", "")} - {""},
        "comments": review_comments(record),
        "claimed": review_claim(record),
        "presence_s": PRESENCE_S,
        **extra,
    }


def _changes(
    gate: ReviewGate[Any], before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    """What changed between two revisions, for the page: part by part where the gate shows
    parts (the unchanged ones left out), else as a text diff; and the fields that changed."""
    if gate.segments is None:
        return {"parts": [], "text": text_diff(gate.text_of(before), gate.text_of(after))}
    return {
        "parts": [c for c in gate.changes(before, after) if c.kind != "same"],
        "fields": [
            {"label": label, "was": was, "now": now}
            for label, was, now in gate.field_changes(before, after)
        ],
        "text": "",
    }


def _reviewed(
    console: Console, run_id: str
) -> tuple[RunRecord, dict[str, Any], ReviewGate[Any]] | None:
    record = _record(console, run_id)
    if record is None:
        return None
    try:
        request = review_request(record)
        return record, request, _gate(console, record, request)
    except ShipyardError:  # no review asked for, or its workflow is not installed here
        return None


def review_page(console: Console, request: Request, session: Session, form: Form) -> Response:
    found = _reviewed(console, request.path_params["run_id"])
    if found is None:
        return console.problem(request, session, 404, "this run has nothing to review")
    record, current, gate = found
    notice = request.query_params.get("notice", "")
    others = console.here(record.run_id, session.user.name)
    view = _review_view(console, record, gate, notice=notice, others=others)
    if view["awaiting"] and view["can_preview"] and session.user.name in view["deciders"]:
        console.warm(gate, current["payload"])
    return console.page(request, session, "review.html", **view)


def _posted(
    console: Console, request: Request, session: Session, form: Form
) -> Response | tuple[RunRecord, dict[str, Any], ReviewGate[Any]]:
    """A POST on a run's review: refused (CSRF, Origin, nothing to review), or the run, its
    latest round and its gate."""
    if (refused := console.guarded(request, session, form)) is not None:
        return refused
    found = _reviewed(console, request.path_params["run_id"])
    if found is None:
        return console.problem(request, session, 404, "this run has nothing to review")
    return found


def review_post(console: Console, request: Request, session: Session, form: Form) -> Response:
    found = _posted(console, request, session, form)
    if isinstance(found, Response):
        return found
    record, current, gate = found
    action = str(form.get("action", ""))
    if action in ("comment", "resolve", "claim"):
        return _note(console, request, session, record, gate, form)
    revision = str(form.get("revision") or "0")
    if not revision.isdigit():
        return console.problem(request, session, 400, f"revision {revision!r} is not a number")
    decision: dict[str, Any] = {
        "action": action,
        "reviewer": session.user.name,
        "comment": str(form.get("comment", "")).strip(),
        "override": str(form.get("override", "")).strip(),
        "revision": int(revision) or None,
    }
    if action not in ("save", "approve", "reject", "request_changes"):
        return console.problem(request, session, 400, f"{action!r} is not a review action")
    kept: dict[str, str] = {}  # what the reviewer typed, shown again if the save is refused
    if action == "save":
        payload, kept, problem = edited(gate, current, form)
        if problem:
            return console.problem(request, session, 400, problem)
        if payload is None:  # the whole payload, as JSON
            kept = {"payload": str(form.get("payload", ""))}
            try:
                payload = json.loads(kept["payload"])
            except (ValueError, RecursionError) as exc:  # a payload nested past reason
                why = f"not JSON: {exc}" if isinstance(exc, ValueError) else "nested too deep"
                return console.problem(request, session, 400, f"the payload is {why}")
            if not isinstance(payload, dict):
                return console.problem(request, session, 400, "the payload is not an object")
        decision["payload"] = payload
    else:  # unsaved edits sent with a decision: saved and checked first, then decided on
        payload, kept, problem = edited(gate, current, form, prefix="edit_")
        if problem:
            return console.problem(request, session, 400, problem)
        if payload is not None:
            save = {**decision, "action": "save", "payload": payload, "comment": ""}
            try:
                saved = review_revisions(decide(console.config, record.run_id, save))[-1]
            except ShipyardError as exc:
                status = 403 if exc.code == "not-a-reviewer" else 409
                return _refused(console, request, session, record, gate, str(exc), kept, status)
            decision["revision"] = saved.get("revision")
            current, kept = saved, {}  # saved: nothing typed is left to keep
    try:
        after = decide(console.config, record.run_id, decision)
    except ShipyardError as exc:
        status = 403 if exc.code == "not-a-reviewer" else 409
        made_on = int(revision)
        return _refused(console, request, session, record, gate, str(exc), kept, status, made_on)
    sent_at = time.time()
    latest = review_revisions(after)[-1]
    if action == "save" and latest.get("revision", 1) > current.get("revision", 1):
        errors = sum(f.get("severity") == "error" for f in latest["flags"])
        notice = f"revision {latest['revision']} saved and checked: {errors} error flag(s)"
    elif action in ("save", "request_changes"):
        notice = _wait_for_revision(console, record.run_id, current, sent_at)
    else:
        edits = f"revision {current['revision']} saved and checked; " if payload else ""
        notice = f"{edits}{action.replace('_', ' ')} sent; the run goes on"
    where = _landing(form) if action == "save" else ""
    return RedirectResponse(  # back to the turn just saved, which the page focuses
        f"{_base(request)}/runs/{quote(record.run_id)}/review?notice={quote(notice)}{where}",
        status_code=303,
    )


def _note(
    console: Console,
    request: Request,
    session: Session,
    record: RunRecord,
    gate: ReviewGate[Any],
    form: Form,
) -> Response:
    """What changes nothing in the payload: a comment (on a part or the whole), a comment
    resolved, the review claimed or handed to another reviewer."""
    action, me = str(form["action"]), session.user.name
    part = str(form.get("segment", ""))
    try:
        if action == "claim":
            claim_review(console.config, record.run_id, me, str(form.get("reviewer", "")))
            notice = "the review is " + (
                "yours" if form.get("reviewer", me) == me else f"{form['reviewer']}'s"
            )
        else:
            comment_on_review(
                console.config,
                record.run_id,
                me,
                str(form.get("comment", "")),
                part=int(part) if part.isdigit() else None,
                resolves=str(form.get("comment_id", "")) if action == "resolve" else "",
            )
            notice = "comment resolved" if action == "resolve" else "comment added"
    except ShipyardError as exc:
        status = 403 if exc.code == "not-a-reviewer" else 400
        return _refused(console, request, session, record, gate, str(exc), {}, status)
    where = f"#part-{part}" if part.isdigit() else "#comments"
    return RedirectResponse(
        f"{_base(request)}/runs/{quote(record.run_id)}/review?notice={quote(notice)}{where}",
        status_code=303,
    )


def presence(console: Console, request: Request, session: Session, form: Form) -> Response:
    """Who else has this review open (a page says so every `PRESENCE_S` seconds)."""
    if request.method == "POST" and (refused := console.guarded(request, session, form)):
        return refused
    run_id = request.path_params["run_id"]
    return JSONResponse({"others": console.here(run_id, session.user.name)})


def request_plan(console: Console, request: Request, session: Session, form: Form) -> Response:
    """How the reviser reads a request for changes, before it is sent: what it would do,
    and what it could not apply (JSON, for the page)."""
    found = _posted(console, request, session, form)
    if isinstance(found, Response):
        return found
    record, current, gate = found
    kept = review_context(record)
    if gate.plan is None or gate.restore_context is None or kept is None:
        return JSONResponse({"applied": [], "not_applied": [], "known": False})
    comment = str(form.get("comment", ""))[:4000]
    payload = gate.payload.model_validate(current["payload"])
    context = gate.restore_context(kept, console.config)
    applied, not_applied = gate.plan(payload, comment, context)
    return JSONResponse({"applied": applied, "not_applied": not_applied, "known": True})


def _landing(form: Form) -> str:
    """The part a save lands on, which the page focuses: the one edited, or where an
    operation left it (an inserted part, the half after a split...)."""
    index = str(form.get("segment", ""))
    if not index.isdigit():
        return ""
    moved = {"insert": 1, "down": 1, "up": -1}.get(str(form.get("op", "")), 0)
    return f"#part-{max(0, int(index) + moved)}"


def _refused(
    console: Console,
    request: Request,
    session: Session,
    record: RunRecord,
    gate: ReviewGate[Any],
    message: str,
    kept: dict[str, str],
    status: int = 409,
    made_on: int = 0,
) -> Response:
    """The page again with the refusal, and what was typed kept in its editor; a save made
    on an older revision is shown beside the part as it is now, to merge."""
    view = _review_view(console, record, gate, refusal=message, kept=kept)
    now = view["segments"]
    index = int(kept["segment"]) if kept.get("segment", "").isdigit() else -1
    if made_on and made_on != view["review"].get("revision", 1) and 0 <= index < len(now):
        theirs = now[index]["text"]
        view["merge"] = {
            "segment": index,
            "made_on": made_on,
            "theirs": theirs,
            "words": word_changes(theirs, kept.get("text", "")),
        }
    return console.page(request, session, "review.html", status, **view)


def _wait_for_revision(
    console: Console, run_id: str, before: dict[str, Any], sent_at: float
) -> str:
    """Wait (bounded) until the run has checked what was sent: a new revision with its
    flags, or a refusal; say which."""
    deadline = time.monotonic() + SAVE_WAIT_S
    while time.monotonic() < deadline:
        record = console.ledger.get(run_id)
        refusals = [
            e
            for e in record.events
            if e["kind"] == "review-decided"
            and e["at"] >= sent_at - 1
            and str(e["data"].get("outcome", "")).startswith("refused")
        ]
        if refusals:
            return f"not saved: {refusals[-1]['data']['outcome']}"
        latest = review_revisions(record)[-1]
        if latest.get("revision", 1) > before.get("revision", 1):
            errors = sum(f.get("severity") == "error" for f in latest["flags"])
            return f"revision {latest['revision']} saved and checked: {errors} error flag(s)"
        if record.state.finished:
            return f"the run ended {record.state.value}"
        time.sleep(0.2)
    return "sent; the run has not checked it yet (is a worker running?)"


def preview(console: Console, request: Request, session: Session, form: Form) -> Response:
    found = _reviewed(console, request.path_params["run_id"])
    if found is None:
        return console.problem(request, session, 404, "this run has nothing to review")
    record, current, gate = found
    if gate.preview is None:
        return console.problem(request, session, 404, "this review has no audio preview")
    if session.user.name not in {*current["reviewers"], current.get("escalate_to", "")} - {""}:
        return console.problem(request, session, 403, "previews are for the run's reviewers")
    index = int(request.path_params["index"])
    payload = gate.payload.model_validate(current["payload"])
    shown = parts(gate, current["payload"], [])
    characters = len(shown[index]["text"]) if 0 <= index < len(shown) else 0
    keys = [f"reviewer {session.user.name}", f"run {record.run_id}"]
    if refused := console.preview_allowed(keys, characters):
        return console.problem(request, session, 429, f"no more previews for now: {refused}")
    try:
        made = gate.preview(payload, index, console.config)
    except (ShipyardError, IndexError) as exc:
        return console.problem(request, session, 422, f"no preview of part {index}: {exc}")
    if isinstance(made, Preview):  # heard while the rest is made
        return StreamingResponse(
            made.chunks, media_type=made.media_type, headers={"Cache-Control": "no-store"}
        )
    return FileResponse(made)  # its type from its name: the gate's choice of format


def _text_fields(form: FormData) -> Form:
    return ImmutableMultiDict([(key, str(value)) for key, value in form.multi_items()])


def create_app(config: Config) -> Starlette:
    """The console as an ASGI app (`shipyard console` serves it with uvicorn)."""
    console = Console(config)

    def signed_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
        """Pages for people who signed in; others are sent to sign in (and back). The work,
        which reads the database and may wait for a run, runs in a worker thread."""

        async def endpoint(request: Request) -> Response:
            form = _text_fields(await request.form())
            return await run_in_threadpool(dispatch, page, request, form)

        return endpoint

    def dispatch(page: Page, request: Request, form: Form) -> Response:
        session, new_token = console.session(request)
        if session is None:
            if request.method != "GET":
                return console.problem(request, None, 401, "sign in first")
            where = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{_base(request)}/login?next={quote(where)}", status_code=303)
        response = page(console, request, session, form)
        if new_token:
            _set_session_cookie(console, request, response, new_token)
        return response

    def open_page(
        page: Callable[[Console, Request, Form], Response],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            form = _text_fields(await request.form())
            return await run_in_threadpool(page, console, request, form)

        return endpoint

    routes = [
        Route("/", signed_in(runs_page)),
        Route("/login", open_page(login_page), methods=["GET"]),
        Route("/login", open_page(login), methods=["POST"]),
        Route("/logout", signed_in(logout), methods=["POST"]),
        Route("/runs/{run_id}", signed_in(run_page)),
        Route("/runs/{run_id}/review", signed_in(review_page), methods=["GET"]),
        Route("/runs/{run_id}/review", signed_in(review_post), methods=["POST"]),
        Route("/runs/{run_id}/review/preview/{index:int}", signed_in(preview)),
        Route("/runs/{run_id}/review/presence", signed_in(presence), methods=["POST"]),
        Route("/runs/{run_id}/review/plan", signed_in(request_plan), methods=["POST"]),
        Route("/metrics", metrics_endpoint(console.ledger)),  # for Prometheus: no run ids
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        console.ledger.close()

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(_SecurityHeaders)])
    app.state.console = console
    return app
