"""Structured logs: with `--log-format json` every line on stderr is one JSON object, those
from inside a run carry its run id, step and attempt, and no planted secret appears in any."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from shipyard._config import LogsConfig
from shipyard._logs import STEP, JsonFormatter, configure_logging
from tests.project import make_project

HOOK_TOKEN = "hook-tok-5d1e9a7c33"


def test_a_json_line_carries_the_step_and_no_credential() -> None:
    record = logging.LogRecord(
        "shipyard.publish",
        logging.WARNING,
        __file__,
        1,
        "push to %s failed",
        ("https://bot:s3cret-token-1@git.example.org/site.git",),
        None,
    )
    token = STEP.set(("publish", 2, "site-publisher"))
    try:
        from shipyard._logs import run_context

        record.shipyard = run_context()
    finally:
        STEP.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["logger"] == "shipyard.publish"
    assert (line["step"], line["attempt"]) == ("publish", 2)
    assert line["message"] == "push to https://***@git.example.org/site.git failed"


def test_the_environment_chooses_the_format_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    root, level = logging.getLogger(), logging.getLogger().level
    monkeypatch.setenv("SHIPYARD_LOG_FORMAT", "json")
    configure_logging(LogsConfig(format="human"))
    [handler] = [h for h in root.handlers if h.get_name() == "shipyard"]
    try:
        assert isinstance(handler.formatter, JsonFormatter)
        assert root.level == logging.INFO
        monkeypatch.delenv("SHIPYARD_LOG_FORMAT")
        configure_logging(LogsConfig())
        assert not isinstance(handler.formatter, JsonFormatter)
        assert root.level == logging.WARNING
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.mark.slow
def test_a_run_logs_json_lines_with_its_run_id_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    hook = 'webhook = "http://127.0.0.1:9/hook?token=${HOOK_TOKEN}"'  # nothing listens there
    with make_project(tmp_path / "p", auto_approve=True, verify_seconds=2, extra="") as project:
        text = project.config_file.read_text().replace("[verify]", f"[verify]\n{hook}")
        project.config_file.write_text(text)
        project.production.set_deploy(False)  # unverified: the webhook is tried, and fails
        done = project.run("--log-format", "json", "run", "paper-to-podcast", str(project.paper))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines, done.stderr
    run_id = project.ledger().runs(limit=1)[0].run_id
    steps = {(line.get("run_id"), line.get("step")) for line in lines}
    assert {(run_id, "extract"), (run_id, "synthesize"), (run_id, "publish")} <= steps
    ok = next(line for line in lines if line["message"].startswith("step master ok"))
    assert ok["attempt"] == 1 and ok["level"] == "info" and ok["time"].endswith("+00:00")
    assert any("webhook" in line["message"] for line in lines)  # the failure, logged ...
    assert HOOK_TOKEN not in done.stderr + done.stdout  # ... without the credential
