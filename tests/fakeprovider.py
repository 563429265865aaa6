"""A provider on loopback that measures what it is asked: when each request arrived and ended,
and how many were in flight at once. It takes `seconds` to answer each, like a model server,
and answers 429 with `Retry-After` to the requests `refuse` names (by their arrival number)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.loopback import loopback_server


@dataclass
class FakeProvider:
    seconds: float = 0.2
    refuse: dict[int, float] = field(default_factory=dict)  # arrival number -> Retry-After
    url: str = ""
    arrivals: list[float] = field(default_factory=list)  # time.time() of each, in order
    answered: list[tuple[float, float, int]] = field(default_factory=list)  # start, end, status
    most_at_once: int = 0
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def most_in_any_window(self, seconds: float) -> int:
        """The most requests that arrived within any `seconds`-long window."""
        times = sorted(self.arrivals)
        return max(
            (sum(1 for t in times[i:] if t < start + seconds) for i, start in enumerate(times)),
            default=0,
        )

    def requests_after(self, at: float) -> list[float]:
        return [t for t in self.arrivals if t > at]


@contextmanager
def fake_provider(
    seconds: float = 0.2, refuse: dict[int, float] | None = None
) -> Iterator[FakeProvider]:
    provider = FakeProvider(seconds=seconds, refuse=dict(refuse or {}))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            started = time.time()
            with provider._lock:
                number = len(provider.arrivals)
                provider.arrivals.append(started)
                provider._in_flight += 1
                provider.most_at_once = max(provider.most_at_once, provider._in_flight)
            refused = number in provider.refuse
            if not refused:
                time.sleep(provider.seconds)
            with provider._lock:
                provider._in_flight -= 1
                status = 429 if refused else 200
                provider.answered.append((started, time.time(), status))
            body = json.dumps({"n": number} if not refused else {"error": "slow down"}).encode()
            self.send_response(status)
            if refused:
                self.send_header("Retry-After", f"{provider.refuse[number]:g}")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with loopback_server(Handler) as base:
        provider.url = base
        yield provider
