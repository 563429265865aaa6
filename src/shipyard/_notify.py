"""Owners who are told: a notice to the owner named on a step, a gate or a workflow, through
the channels `[owners.NAME]` gives (a webhook, e-mail through `[smtp]`).

Notices go out when a step fails for good, when a run ends unverified, when a review passes
its deadline (escalated, or rejected by it), and when a drift check finds production changed.
Each says what happened, to which run, what to do, and links to the run in the console.

Exactly once: inside a run the notice is a durable step (`notify_owner`), so a replay after a
crash finds it done; and each channel's delivery is recorded in the ledger under a key made
from the notice, so a step that runs again after a crash mid-way sends only what had not
gone. The key also travels with the notice (the webhook's `Idempotency-Key` header, the
e-mail's `Message-ID`) for receivers that deduplicate themselves.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate

import httpx
from dbos import DBOS

from shipyard._config import Config, OwnerConfig
from shipyard._errors import TransientError
from shipyard._ledger import Ledger
from shipyard._record import record_event
from shipyard._secrets import expand_secrets

__all__ = ["Notice", "notify_owner", "tell_owner"]

_Sender = Callable[[str, "Notice", str, str], None]  # (owner, notice, link, key)
ATTEMPTS = 3


@dataclass(frozen=True)
class Notice:
    """What an owner is told."""

    event: str  # step-failed, unverified, review-escalated, review-overdue, drift
    run_id: str
    workflow: str
    message: str  # what happened
    todo: str  # what to do about it
    step: str = ""

    def key(self, owner: str, channel: str) -> str:
        identity = json.dumps([owner, channel, asdict(self)], sort_keys=True)
        return hashlib.sha256(identity.encode()).hexdigest()


def tell_owner(config: Config, ledger: Ledger, owner: str, notice: Notice) -> list[str]:
    """Send `notice` to `owner` on every channel not yet used for it; the channels used now.
    An owner without an entry in `[owners]` has no channel (nothing is sent)."""
    contacts = config.owners.get(owner)
    if contacts is None:
        return []
    link = f"{config.console_url}runs/{notice.run_id}"
    sent = []
    for channel, send in _channels(config, contacts):
        key = notice.key(owner, channel)
        if ledger.notified(key):
            continue
        send(owner, notice, link, key)
        ledger.mark_notified(key, notice.run_id)
        sent.append(channel)
    return sent


def _channels(config: Config, contacts: OwnerConfig) -> list[tuple[str, _Sender]]:
    channels: list[tuple[str, _Sender]] = []
    if contacts.webhook:
        channels.append(("webhook", lambda *a: _post(contacts.webhook, *a)))
    for address in contacts.email:
        channels.append((f"email:{address}", lambda *a, to=address: _mail(config, to, *a)))
    return channels


def _post(url: str, owner: str, notice: Notice, link: str, key: str) -> None:
    payload = {**asdict(notice), "owner": owner, "link": link}
    try:
        response = httpx.post(
            expand_secrets(url, key="owners.webhook"),
            json=payload,
            headers={"Idempotency-Key": key},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        raise TransientError(
            f"owner {owner}'s webhook is unreachable: {type(exc).__name__}: {exc}",
            code="notify-failed",
            hint=f"check owners.{owner}.webhook in shipyard.toml",
        ) from None
    if not response.is_success:
        raise TransientError(
            f"owner {owner}'s webhook answered {response.status_code}",
            code="notify-failed",
            hint=f"check owners.{owner}.webhook in shipyard.toml",
        )


def _mail(config: Config, to: str, owner: str, notice: Notice, link: str, key: str) -> None:
    smtp = config.smtp
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = to
    message["Subject"] = f"[shipyard] {notice.event}: run {notice.run_id} ({notice.workflow})"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{key}@shipyard>"
    message.set_content(
        f"{notice.message}\n\nWhat to do: {notice.todo}\n\nThe run: {link}\n"
        f"(you are told as the owner {owner!r}: [owners.{owner}] in shipyard.toml)\n"
    )
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.username:
                server.login(smtp.username, expand_secrets(smtp.password, key="smtp.password"))
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientError(
            f"mail to owner {owner} ({to}) failed: {type(exc).__name__}: {exc}",
            code="notify-failed",
            hint="check [smtp] in shipyard.toml",
        ) from None


@DBOS.step(name="shipyard-notify-owner")
def notify_owner(config: Config, owner: str, notice: Notice) -> list[str]:
    """Tell an owner what happened to the run: a durable step, so once even across a crash.
    A channel that keeps failing is recorded on the run; the run itself goes on as it was."""
    from shipyard._engine import current

    for attempt in range(1, ATTEMPTS + 1):
        try:
            sent = tell_owner(config, current().ledger, owner, notice)
        except TransientError as exc:
            if attempt == ATTEMPTS:
                record_event(
                    "owner-notify-failed",
                    f"{owner} could not be told of {notice.event}: {exc.message}",
                    {"owner": owner, "event": notice.event},
                )
                return []
            time.sleep(2.0 * attempt)
            continue
        if sent:
            record_event(
                "owner-notified",
                f"{owner} told of {notice.event} ({', '.join(sent)})",
                {"owner": owner, "event": notice.event, "channels": sent},
            )
        return sent
    return []
