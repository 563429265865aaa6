"""Logs: human lines by default, or one JSON object a line for the log tools operators run.

`configure_logging(settings)` sets up the root logger on stderr, once per process (the engine
calls it when it launches). Each line says when, how bad, which logger, and, inside a run,
the run id, the step and the attempt; a JSON line adds the trace id when tracing is on. Every
line is redacted (`redact`) before it is written, its traceback included.

`SHIPYARD_LOG_FORMAT` and `SHIPYARD_LOG_LEVEL` (what `shipyard --log-format` sets) override
`[logs]` in shipyard.toml, so a worker started by a script logs as the script asks.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import sys
from typing import Any

from dbos import DBOS

from shipyard._config import LogsConfig
from shipyard._redact import redact

__all__ = ["STEP", "WORKFLOW", "JsonFormatter", "configure_logging", "run_context"]

# The step attempt now running in this context: (step, attempt, owner), set by the step wrapper.
STEP: contextvars.ContextVar[tuple[str, int, str] | None] = contextvars.ContextVar(
    "shipyard_step", default=None
)
# The workflow whose body runs in this context, set by the workflow wrapper.
WORKFLOW: contextvars.ContextVar[str] = contextvars.ContextVar("shipyard_workflow", default="")
HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "shipyard"


def run_context() -> dict[str, Any]:
    """The run, workflow, step, attempt and owner of the code running now ({} outside a
    run): what every log line and span carries."""
    context: dict[str, Any] = {}
    try:
        run_id = DBOS.workflow_id
    except Exception:  # noqa: BLE001 - outside DBOS's context: no run
        run_id = None
    if run_id:
        context["run_id"] = run_id
    if workflow := WORKFLOW.get():
        context["workflow"] = workflow
    step = STEP.get()
    if step is not None:
        context["step"], context["attempt"], context["owner"] = step
    trace_id = _trace_id()
    if trace_id:
        context["trace_id"] = trace_id
    return context


def _trace_id() -> str:
    try:
        from opentelemetry import trace
    except ImportError:
        return ""
    span = trace.get_current_span().get_span_context()
    return f"{span.trace_id:032x}" if span.is_valid else ""


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, run id, step, attempt, trace id
    (and the traceback as `exception`), redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **getattr(record, "shipyard", {}),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = getattr(record, "shipyard", {})
        where = " ".join(f"{k}={v}" for k, v in context.items() if k != "trace_id")
        text = super().format(record)
        return redact(f"{text} [{where}]" if where else text)


def _with_context(record: logging.LogRecord) -> bool:
    record.shipyard = run_context()
    return True


def configure_logging(settings: LogsConfig) -> None:
    """Log to stderr in the configured format (the environment's, if it says): once per
    process; a second call changes the format and level."""
    fmt = os.environ.get("SHIPYARD_LOG_FORMAT") or settings.format
    level = (
        os.environ.get("SHIPYARD_LOG_LEVEL")
        or settings.level
        or ("INFO" if fmt == "json" else "WARNING")
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.addFilter(_with_context)
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _HumanFormatter(HUMAN))
    root.setLevel(level.upper())
    # DBOS logs through a handler of its own: it writes in the same format, or not at all.
    dbos = logging.getLogger("dbos")
    for own in list(dbos.handlers):
        dbos.removeHandler(own)
    dbos.propagate = True
