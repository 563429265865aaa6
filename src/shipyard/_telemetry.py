"""Traces (OpenTelemetry), when asked for: one trace per run, exported by OTLP/HTTP.

`setup_tracing(settings)` registers shipyard's tracer provider before DBOS launches, so that
DBOS's workflow and step spans, pydantic-ai's model spans (GenAI semantic conventions; the
prompts and completions left out unless `telemetry.include_content`) and shipyard's own
spans (`span(...)`: each step attempt, each check, each turn spoken, mastering, each git
push, each verification poll) nest into one trace. Every span carries the run id, the
workflow, the step, the attempt and the step's owner (`run_context`).

Tracing is on when `[telemetry] endpoint` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` say where to send it (`OTEL_SDK_DISABLED=true` turns it
off). Off, `span()` is a no-op that imports nothing. The packages are the `telemetry` extra.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shipyard._config import TelemetryConfig
from shipyard._errors import ConfigError
from shipyard._logs import run_context

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["setup_tracing", "shutdown_tracing", "span", "tracing_wanted"]

_provider: TracerProvider | None = None


def tracing_wanted(settings: TelemetryConfig) -> bool:
    """Whether the configuration or the environment asks for traces."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        settings.endpoint
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def setup_tracing(settings: TelemetryConfig) -> bool:
    """Register the tracer provider and instrument pydantic-ai, if traces are wanted (once
    per process). Returns whether tracing is on."""
    global _provider
    if _provider is not None:
        return True
    if not tracing_wanted(settings):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError(
            "traces are asked for, but OpenTelemetry is not installed",
            key="telemetry.endpoint",
            hint="pip install -e '.[telemetry]' in shipyard's checkout "
            "(or unset OTEL_EXPORTER_OTLP_ENDPOINT)",
        ) from None

    class RunAttributes(SpanProcessor):
        """Stamps every span, whoever starts it, with the run it is in."""

        def on_start(self, span: Any, parent_context: Any = None) -> None:
            for key, value in run_context().items():
                if key != "trace_id":
                    span.set_attribute(f"shipyard.{key}", value)

    provider = TracerProvider(resource=Resource({SERVICE_NAME: settings.service_name}))
    provider.add_span_processor(RunAttributes())
    exporter = (
        OTLPSpanExporter(endpoint=settings.endpoint) if settings.endpoint else (OTLPSpanExporter())
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from pydantic_ai import Agent, InstrumentationSettings

    Agent.instrument_all(
        InstrumentationSettings(tracer_provider=provider, include_content=settings.include_content)
    )
    _provider = provider
    return True


def shutdown_tracing() -> None:
    """Send what is buffered (a CLI process is about to exit)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=10_000)


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """A span of shipyard's own around the block, nested in the current one (no-op when
    tracing is off)."""
    if _provider is None:
        yield
        return
    tracer = _provider.get_tracer("shipyard")
    given = {f"shipyard.{k}": v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, attributes=given):
        yield
