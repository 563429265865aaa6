"""An OpenAI-compatible chat-completions server on loopback, answering from a script: what a
local llama.cpp, Ollama or vLLM server looks like to shipyard's writers, with the faults they
have. Bounded: it answers only the answers it was given, then 500s.

`dialect` is the request dialect it speaks (each as its server documents or codes it):

    openai            `response_format` json_schema (OpenAI, llama-server, vLLM, Ollama 0.5+)
    llama-cpp-python  `response_format.type` only "text" or "json_object", with an optional
                      `schema`; json_schema answers 500 "Input should be 'text' or
                      'json_object'" (llama_cpp/server/types.py, its request's
                      response_format); reads `max_tokens`, not `max_completion_tokens`;
                      a schema with a maxLength or maxItems in the thousands is refused
                      (llama.cpp unrolls each repetition into a grammar rule; seen on the
                      real server by `make test-llm`)
    vllm              json_schema, and `guided_json` beside the request; `/v1/models` gives
                      `max_model_len` (vLLM's OpenAI-compatible server docs)
    prose             holds answers to no schema: it ignores the fields and answers in prose

The writers' short probes (a one-field object, `max_tokens` 24) are answered as the dialect
would, kept apart in `probes`, and never use up the scripted answers. `context` is what the
server says it reads, on llama.cpp's `/props` (or vLLM's `/v1/models`)."""

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
    body: str = ""  # the error's message (default: "status CODE")


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


@dataclass(frozen=True)
class Raw:
    """A 200 answer with this body, whatever shape it has (`{"choices": []}`...)."""

    body: dict[str, Any]


Reply = Draft | Status | Hang | Refusal | Held | Raw
Answer = Reply | Callable[[dict[str, Any]], Reply]  # a function of the request


PROBE = 'Answer with the JSON {"ok": true}.'


@dataclass
class ModelServer:
    answers: list[Answer]
    dialect: str = "openai"
    context: int | None = None
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)  # the bodies received
    headers: list[dict[str, str]] = field(default_factory=list)  # and their headers
    probes: list[dict[str, Any]] = field(default_factory=list)  # the writers' probes

    def mode_of(self, request: dict[str, Any]) -> str:
        """How the request asked for structured output: tool, native (json_schema),
        json_object (with a schema), guided_json or prompted."""
        if request.get("tools"):
            return "tool"
        asked = request.get("response_format") or {}
        if asked.get("type") == "json_schema":
            return "native"
        if asked.get("type") == "json_object" and asked.get("schema"):
            return "json_object"
        return "guided_json" if request.get("guided_json") else "prompted"

    def refuses(self, request: dict[str, Any]) -> Status | None:
        """The error this dialect answers a request it cannot take with, if any."""
        asked = request.get("response_format") or {}
        kind = asked.get("type", "text")
        if self.dialect == "llama-cpp-python" and kind not in ("text", "json_object"):
            return Status(500, body="Input should be 'text' or 'json_object'")
        if self.dialect == "llama-cpp-python" and _unrolled(asked.get("schema", {})) > 1000:
            # llama.cpp writes a bounded repetition out rule by rule, and refuses the result
            return Status(500, body="failed to parse grammar: number of rules ... exceeds sane")
        return None

    def probe_answer(self, request: dict[str, Any]) -> Reply:
        """A probe, answered as the dialect would: JSON where it holds the answer to the
        schema in the form asked, prose where it ignores the form."""
        held = {
            "openai": {"native"},
            "llama-cpp-python": {"json_object"},
            "vllm": {"native", "guided_json"},
            "prose": set(),
        }[self.dialect]
        return self.refuses(request) or Draft(
            '{"ok": true}' if self.mode_of(request) in held else "Sure! Here it is: ok.", (20, 5)
        )

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


def _unrolled(schema: Any) -> int:
    """The largest maxLength or maxItems anywhere in a JSON schema (0: none)."""
    if isinstance(schema, dict):
        own = [
            v for k, v in schema.items() if k in ("maxLength", "maxItems") and isinstance(v, int)
        ]
        return max([*own, *(_unrolled(v) for v in schema.values())], default=0)
    if isinstance(schema, list):
        return max((_unrolled(v) for v in schema), default=0)
    return 0


@contextmanager
def model_server(
    *answers: Answer, dialect: str = "openai", context: int | None = None
) -> Iterator[ModelServer]:
    server_state = ModelServer(list(answers), dialect=dialect, context=context)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            found: dict[str, Any] | None = None
            if self.path == "/props" and server_state.context and dialect != "vllm":
                found = {"default_generation_settings": {"n_ctx": server_state.context}}
            elif self.path == "/v1/models" and server_state.context and dialect == "vllm":
                found = {"data": [{"id": "tiny", "max_model_len": server_state.context}]}
            data = json.dumps(found or {"error": "not found"}).encode()
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not self.path.endswith("/chat/completions"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            messages = body.get("messages") or [{}]
            if messages[-1].get("content") == PROBE:
                server_state.probes.append(body)
                answer: Reply = server_state.probe_answer(body)
            else:
                server_state.requests.append(body)
                server_state.headers.append(dict(self.headers))
                answer = server_state.refuses(body) or server_state.answer(body)
            if isinstance(answer, Held):
                answer.arrived.set()
                answer.release.wait(answer.seconds)
                answer = answer.answer
            if isinstance(answer, Hang):
                time.sleep(answer.seconds)
                answer = Status(504)
            if isinstance(answer, Status):
                said = answer.body or f"status {answer.code}"
                data = json.dumps({"error": {"message": said}}).encode()
                self.send_response(answer.code)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
            elif isinstance(answer, Raw):
                data = json.dumps(answer.body).encode()
                self.send_response(200)
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
