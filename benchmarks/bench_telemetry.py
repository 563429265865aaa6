"""What tracing costs: `span()` with tracing off beside a bare `nullcontext()` (the baseline),
and with tracing on (spans recorded in memory, no export), per call, in the same process.

    python -m benchmarks telemetry
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from shipyard import _telemetry

CALLS = 20_000
ROUNDS = 5


def _per_call_us(make: Callable[[], AbstractContextManager[object]]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            with make():
                pass
        times.append((time.perf_counter() - started) * 1e6 / CALLS)
    return statistics.median(times)


def main() -> None:
    bare = _per_call_us(contextlib.nullcontext)
    off = _per_call_us(lambda: _telemetry.span("check grounding", turn=3))
    print(
        f"bare nullcontext: {bare:.2f} us; span() with tracing off: {off:.2f} us "
        f"({off / bare:.1f}x, {off - bare:.2f} us more a call)"
    )
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        print("tracing on: not measured (pip install 'shipyard[telemetry]')")
        return
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _telemetry._provider = provider  # as setup_tracing leaves it, without an exporter
    try:
        on = _per_call_us(lambda: _telemetry.span("check grounding", turn=3))
    finally:
        _telemetry._provider = None
    print(f"span() with tracing on (in memory): {on:.2f} us ({on / bare:.0f}x bare)")
