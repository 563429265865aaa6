"""Owners who are told: a loopback webhook and a loopback SMTP server (aiosmtpd) each get
exactly one notice per event, across a kill -9 and the worker's recovery; a notice says
what happened, what to do, and links to the run."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from shipyard import ConfigError, Notice, RunState, load_config
from shipyard._ledger import Ledger
from shipyard._notify import tell_owner
from tests.loopback import free_port, loopback_server
from tests.project import Project, kill_group, make_project

pytestmark = pytest.mark.slow


@dataclass
class Inbox:
    """What the loopback receivers got: webhook bodies (with their keys) and e-mails."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    mails: list[Message] = field(default_factory=list)

    def events(self) -> list[tuple[str, str]]:
        return sorted((p["owner"], p["event"]) for p in self.posts)


@contextmanager
def receivers() -> Iterator[tuple[Inbox, str, int]]:
    """A webhook receiver and an SMTP server on loopback: (inbox, webhook URL, SMTP port)."""
    inbox = Inbox()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            inbox.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            inbox.keys.append(self.headers.get("Idempotency-Key", ""))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    class Mail:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            inbox.mails.append(message_from_bytes(envelope.content))
            return "250 OK"

    port = free_port()
    smtp = Controller(Mail(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        with loopback_server(Hook) as base:
            yield inbox, f"{base}/hook", port
    finally:
        smtp.stop()


def owners_toml(hook: str, smtp_port: int) -> str:
    return f"""
[owners.site-publisher]
webhook = "{hook}"
email = ["publisher@example.org"]

[owners.podcast-producer]
webhook = "{hook}"

[owners.script-editor]
webhook = "{hook}"

[owners.chief]
email = ["chief@example.org"]

[smtp]
host = "127.0.0.1"
port = {smtp_port}
sender = "shipyard@example.org"
"""


def test_a_notice_goes_out_once_per_channel_with_its_key(tmp_path: Path) -> None:
    with receivers() as (inbox, hook, port):
        (tmp_path / "shipyard.toml").write_text(owners_toml(hook, port))
        config = load_config(tmp_path / "shipyard.toml")
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
        notice = Notice("unverified", "run-1", "paper-to-podcast", "not served", "check deploy")
        assert tell_owner(config, ledger, "site-publisher", notice) == [
            "webhook",
            "email:publisher@example.org",
        ]
        assert tell_owner(config, ledger, "site-publisher", notice) == []  # already told
        assert tell_owner(config, ledger, "nobody", notice) == []  # no contact, no channel
        ledger.close()
    [post] = inbox.posts
    assert post["link"] == "http://127.0.0.1:8765/runs/run-1" and post["todo"] == "check deploy"
    [mail] = inbox.mails
    assert mail["Subject"] == "[shipyard] unverified: run run-1 (paper-to-podcast)"
    assert mail["Message-ID"].endswith("@shipyard>") and len(inbox.keys[0]) == 64
    assert "What to do: check deploy" in mail.get_payload()


def test_mail_without_a_server_and_a_written_out_password_are_refused_at_load(
    tmp_path: Path,
) -> None:
    file = tmp_path / "shipyard.toml"
    file.write_text('[owners.ops]\nemail = ["ops@example.org"]\n')
    with pytest.raises(ConfigError, match=r"\[smtp\] names no host"):
        load_config(file)
    file.write_text('[smtp]\nhost = "mail"\npassword = "hunter2-plain"\n')
    with pytest.raises(ConfigError, match=r"'smtp\.password'") as caught:
        load_config(file)
    assert "hunter2" not in str(caught.value)


def _run_id(project: Project) -> str:
    return project.ledger().runs(limit=1)[0].run_id


def test_each_event_is_told_exactly_once_across_a_kill_and_recovery(tmp_path: Path) -> None:
    with (
        receivers() as (inbox, hook, port),
        make_project(
            tmp_path / "p", auto_approve=True, verify_seconds=2, extra=owners_toml(hook, port)
        ) as project,
    ):
        # unverified, with the process killed half-way and a worker finishing the run
        project.production.set_deploy(False)
        first = project.start("run", "paper-to-podcast", str(project.paper))
        project.wait_until(None, lambda r: any(s.step == "synthesize" for s in r.steps))
        kill_group(first, signal.SIGKILL)
        run, _ = project.recover(_run_id(project))
        assert run.state is RunState.UNVERIFIED
        # a step that fails for good: its owner (extract's: podcast-producer) is told
        junk = project.root / "junk.pdf"
        junk.write_text("<html>not a paper</html>")
        assert project.run("run", "paper-to-podcast", str(junk)).returncode == 1
        failed = project.ledger().get(_run_id(project))
        # the worker recovers nothing more, and tells nobody again
        again, _ = project.recover(run.run_id)
        assert again.state is RunState.UNVERIFIED
    assert inbox.events() == [("podcast-producer", "step-failed"), ("site-publisher", "unverified")]
    assert len(inbox.mails) == 1 and inbox.mails[0]["To"] == "publisher@example.org"
    told = {p["event"]: p for p in inbox.posts}
    assert (
        told["step-failed"]["run_id"] == failed.run_id and told["step-failed"]["step"] == "extract"
    )
    assert "not a PDF" in told["step-failed"]["message"]
    assert told["unverified"]["link"].endswith(f"/runs/{run.run_id}")


def test_an_overdue_review_tells_the_gate_owner_and_the_escalation(tmp_path: Path) -> None:
    review = 'deadline_hours = 0.0008\nescalate_to = "chief"'  # about three seconds each
    with (
        receivers() as (inbox, hook, port),
        make_project(
            tmp_path / "p", auto_approve=False, review=review, extra=owners_toml(hook, port)
        ) as project,
    ):
        done = project.run("run", "paper-to-podcast", str(project.paper))
        assert done.returncode == 1
        assert project.ledger().get(_run_id(project)).state is RunState.REJECTED
    assert inbox.events() == [
        ("script-editor", "review-escalated"),
        ("script-editor", "review-overdue"),
    ]
    assert sorted(m["Subject"].split(":")[0] for m in inbox.mails) == [
        "[shipyard] review-escalated",
        "[shipyard] review-overdue",
    ]
    assert all(m["To"] == "chief@example.org" for m in inbox.mails)
