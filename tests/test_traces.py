"""Traces: a loopback OTLP/HTTP receiver gets one trace per run, with the step spans in
order, the model's spans nested under the script step (a loopback OpenAI-compatible server),
shipyard's own spans (checks, turns spoken, mixing and encoding, the push, verification
polls), and the run id on every span; with tracing off, nothing is set up."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shipyard._config import TelemetryConfig
from shipyard._telemetry import tracing_wanted
from tests.loopback import loopback_server
from tests.modelserver import Status, model_server
from tests.project import make_project


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    start: int
    attributes: dict[str, Any]


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[Span]]]:
    """An OTLP/HTTP traces endpoint on loopback; yields its URL and the spans it got."""
    spans: list[Span] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    for s in scope.spans:
                        attributes = {a.key: _value(a.value) for a in s.attributes}
                        spans.append(
                            Span(
                                s.name,
                                s.trace_id.hex(),
                                s.span_id.hex(),
                                s.parent_span_id.hex(),
                                s.start_time_unix_nano,
                                attributes,
                            )
                        )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    with loopback_server(Receiver) as base:
        yield f"{base}/v1/traces", spans


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def test_no_endpoint_no_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing_wanted(TelemetryConfig())
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing_wanted(TelemetryConfig())
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing_wanted(TelemetryConfig())


@pytest.mark.slow
def test_one_trace_per_run_with_its_steps_its_model_calls_and_its_run_id(tmp_path: Path) -> None:
    with otlp_receiver() as (endpoint, spans), model_server(*[Status(503)] * 12) as server:
        writer = f"openai-compatible:tiny@{server.url}"
        script = (
            f'writers = ["{writer}", "extractive"]\n'
            f'prices = {{ "{writer}" = {{ input_per_mtok = 0, output_per_mtok = 0 }} }}'
        )
        extra = f'[telemetry]\nendpoint = "{endpoint}"\n'
        with make_project(tmp_path / "p", auto_approve=True, script=script, extra=extra) as p:
            done = p.run("run", "paper-to-podcast", str(p.paper))
            assert done.returncode == 0, done.stdout + done.stderr
            run_id = p.ledger().runs(limit=1)[0].run_id
    assert spans, "no span reached the receiver"
    assert {s.trace_id for s in spans} == {spans[0].trace_id}  # one trace for the run
    assert all(s.attributes.get("shipyard.run_id") == run_id for s in spans), [
        (s.name, s.attributes) for s in spans if s.attributes.get("shipyard.run_id") != run_id
    ]
    steps = [s for s in sorted(spans, key=lambda s: s.start) if s.name.startswith("step ")]
    order = list(dict.fromkeys(s.name.removeprefix("step ") for s in steps))
    expected = ["ingest", "extract", "write-script", "synthesize", "master", "publish", "verify"]
    assert [name for name in order if name in expected] == expected
    by_id = {s.span_id: s for s in spans}

    def ancestors(span: Span) -> list[str]:
        found = []
        while span.parent_id in by_id:
            span = by_id[span.parent_id]
            found.append(span.name)
        return found

    model = [s for s in spans if s.name.startswith("chat ")]
    assert model and all("step write-script" in ancestors(s) for s in model)
    assert all(s.attributes["shipyard.step"] == "write-script" for s in model)
    assert "gen_ai.input.messages" not in model[0].attributes  # content off by default
    names = {s.name for s in spans}
    expected_own = {"check grounding", "speak turn", "mix turns", "level and encode", "git push"}
    assert expected_own <= names, names
    assert any(n.startswith("verify poll") for n in names)
    step = next(s for s in steps if s.name == "step publish")
    assert step.attributes["shipyard.owner"] == "site-publisher"
    assert step.attributes["shipyard.workflow"] == "paper-to-podcast"
