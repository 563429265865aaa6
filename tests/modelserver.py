"""An OpenAI-compatible chat-completions server on loopback, answering from a script: what a
local llama.cpp, Ollama or vLLM server looks like to shipyard's writers, with the faults they
have. Bounded: it answers only the answers it was given, then 500s."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import loopback_server


@dataclass(frozen=True)
class Draft:
    """A structured answer, given the way the request asked for it: as a tool call when the
    request offers tools, else as the message's JSON content (native or prompted output)."""

    payload: str
    tokens: tuple[int, int] = (1000, 500)


@dataclass(frozen=True)
class Status:
    """An HTTP error, e.g. 429 with Retry-After, or 503."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hang:
    """Answer nothing for `seconds` (longer than the client waits), then a 504."""

    seconds: float


@dataclass(frozen=True)
class Refusal:
    text: str


@dataclass(frozen=True)
class Held:
    """Hold the request until `release` is set (bounded by `seconds`), then give `answer`:
    a test kills the client while it waits."""

    answer: Draft
    release: threading.Event
    arrived: threading.Event = field(default_factory=threading.Event)
    seconds: float = 120.0


Reply = Draft | Status | Hang | Refusal | Held
Answer = Reply | Callable[[dict[str, Any]], Reply]  # a function of the request


@dataclass
class ModelServer:
    answers: list[Answer]
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)  # the bodies received
    headers: list[dict[str, str]] = field(default_factory=list)  # and their headers

    def mode_of(self, request: dict[str, Any]) -> str:
        """How the request asked for structured output: tool, native or prompted."""
        if request.get("tools"):
            return "tool"
        asked = request.get("response_format") or {}
        return "native" if asked.get("type") == "json_schema" else "prompted"

    def answer(self, request: dict[str, Any]) -> Reply:
        answer = self.answers.pop(0) if self.answers else Status(500)
        return answer(request) if callable(answer) else answer


def completion(request: dict[str, Any], answer: Draft | Refusal) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if isinstance(answer, Refusal):
        message["refusal"] = answer.text
    elif request.get("tools"):
        name = request["tools"][0]["function"]["name"]
        message["tool_calls"] = [
            {
                "id": "call-1",
                "type": "function",
                "function": {"name": name, "arguments": answer.payload},
            }
        ]
        finish = "tool_calls"
    else:
        message["content"] = answer.payload
    tokens = answer.tokens if isinstance(answer, Draft) else (100, 10)
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "tiny"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": tokens[0],
            "completion_tokens": tokens[1],
            "total_tokens": sum(tokens),
        },
    }


@contextmanager
def model_server(*answers: Answer) -> Iterator[ModelServer]:
    server_state = ModelServer(list(answers))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server_state.requests.append(body)
            server_state.headers.append(dict(self.headers))
            answer = server_state.answer(body)
            if isinstance(answer, Held):
                answer.arrived.set()
                answer.release.wait(answer.seconds)
                answer = answer.answer
            if isinstance(answer, Hang):
                time.sleep(answer.seconds)
                answer = Status(504)
            if isinstance(answer, Status):
                data = json.dumps({"error": {"message": f"status {answer.code}"}}).encode()
                self.send_response(answer.code)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
            else:
                data = json.dumps(completion(body, answer)).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may be gone (killed, timed out)
                self.wfile.write(data)

    with loopback_server(Handler) as base:
        server_state.url = f"{base}/v1"
        yield server_state
