"""How an OpenAI-compatible server takes structured output, and how much it reads, found by
asking it.

Servers that speak OpenAI's chat API differ in how they hold an answer to a JSON schema:

    json_schema    `response_format: {type: json_schema, json_schema: {name, schema}}`: OpenAI,
                   llama.cpp's llama-server, vLLM, Ollama 0.5+ (their docs' "structured outputs")
    json_object    `response_format: {type: json_object, schema}`: llama-cpp-python's server,
                   whose `response_format.type` is only "text" or "json_object" (it answers
                   500 to json_schema), with the schema beside it (llama_cpp/server/types.py)
    guided_json    `guided_json: schema` beside the request: vLLM's guided decoding
    format         `format: schema`: Ollama's own field for a schema
    prompted       the schema in the prompt only, for a server that holds the answer to none

Before a writer's first request, one short probe per form, in that order, asks for a
one-field object; the first form answered with JSON that fits is the one used (a server that
ignores a field it does not know answers in prose, and the next form is tried). What a server
accepted is remembered for the process, so every attempt after costs one request.

The output cap goes in `max_tokens`, which these servers read (pydantic-ai sends OpenAI's newer
`max_completion_tokens`, which llama-cpp-python ignores). The server's context is read where it
says it: llama.cpp's `/props` (`default_generation_settings.n_ctx`), vLLM's `/v1/models`
(`max_model_len`), Ollama's `/api/show` (`num_ctx`, when the model is run with one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx2

__all__ = ["DIALECTS", "Dialect", "Server", "ServerTraits"]

PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
}
PROBE_TOKENS = 24
PROBE_TIMEOUT_S = 60.0  # a CPU server may load its model on the first request


@dataclass(frozen=True)
class Dialect:
    """One way of asking for an answer held to a JSON schema."""

    name: str
    native: bool  # pydantic-ai's NativeOutput sends it (json_schema); else PromptedOutput

    def extra_body(self, schema: dict[str, Any], name: str = "answer") -> dict[str, Any]:
        """The request fields that carry `schema` in this dialect (json_schema: none, since
        pydantic-ai's native output sends them)."""
        return {
            "json_schema": {},
            "json_object": {"response_format": {"type": "json_object", "schema": schema}},
            "guided_json": {"guided_json": schema},
            "format": {"format": schema},
            "prompted": {},
        }[self.name]

    def probe(self) -> dict[str, Any]:
        if self.name == "json_schema":
            asked = {"name": "probe", "schema": PROBE_SCHEMA}
            return {"response_format": {"type": "json_schema", "json_schema": asked}}
        return self.extra_body(PROBE_SCHEMA)


DIALECTS = tuple(
    Dialect(name, native=name == "json_schema")
    for name in ("json_schema", "json_object", "guided_json", "format", "prompted")
)


@dataclass(frozen=True)
class ServerTraits:
    """What a server showed: the form of structured output it holds answers to, and its
    context in tokens (None where it does not say)."""

    dialect: Dialect
    context_tokens: int | None
    probes: int  # requests the finding cost


_KNOWN: dict[tuple[str, str], ServerTraits] = {}  # (base URL, model): what it showed


class Server:
    """An OpenAI-compatible server at `base_url` (…/v1) serving `model`."""

    def __init__(self, base_url: str, model: str, api_key: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @property
    def root(self) -> str:
        """The server's root, where llama.cpp and Ollama answer their own endpoints."""
        return re.sub(r"/v1$", "", self.base_url)

    async def traits(self) -> ServerTraits:
        """What this server accepts (asked once per process; remembered after)."""
        key = (self.base_url, self.model)
        if key not in _KNOWN:
            async with httpx2.AsyncClient(timeout=PROBE_TIMEOUT_S, headers=self.headers) as http:
                dialect, probes = await self._dialect(http)
                context = await self._context(http)
            _KNOWN[key] = ServerTraits(dialect, context, probes)
        return _KNOWN[key]

    async def _dialect(self, http: httpx2.AsyncClient) -> tuple[Dialect, int]:
        probes = 0
        for dialect in DIALECTS[:-1]:
            probes += 1
            body = {
                "model": self.model,
                "messages": [{"role": "user", "content": 'Answer with the JSON {"ok": true}.'}],
                "max_tokens": PROBE_TOKENS,
                **dialect.probe(),
            }
            try:
                answer = await http.post(f"{self.base_url}/chat/completions", json=body)
            except httpx2.HTTPError:
                continue
            if answer.status_code == 200 and _fits(answer):
                return dialect, probes
        return DIALECTS[-1], probes

    async def _context(self, http: httpx2.AsyncClient) -> int | None:
        """The context the server runs with, where it says (None: it does not)."""
        asks = [
            ("GET", f"{self.root}/props", None),
            ("GET", f"{self.base_url}/models", None),
            ("POST", f"{self.root}/api/show", {"model": self.model}),
        ]
        for method, url, body in asks:
            try:
                answer = await http.request(method, url, json=body)
                found = _context_in(answer.json(), self.model) if answer.status_code == 200 else 0
            except (httpx2.HTTPError, ValueError):
                continue
            if found:
                return found
        return None


def _fits(answer: httpx2.Response) -> bool:
    """Whether a probe's answer is the one-field object it asked for."""
    try:
        content = answer.json()["choices"][0]["message"]["content"] or ""
        found = json.loads(content)
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return isinstance(found, dict) and isinstance(found.get("ok"), bool)


def _context_in(document: Any, model: str) -> int:
    """A context size in the answer of /props, /v1/models or /api/show (0: none)."""
    if not isinstance(document, dict):
        return 0
    settings = document.get("default_generation_settings")
    if isinstance(settings, dict) and isinstance(settings.get("n_ctx"), int):
        return int(settings["n_ctx"])  # llama.cpp
    for entry in document.get("data", []) if isinstance(document.get("data"), list) else []:
        if isinstance(entry, dict) and entry.get("id") == model:
            length = entry.get("max_model_len")  # vLLM
            return int(length) if isinstance(length, int) else 0
    # Ollama: the num_ctx it runs the model with (its model_info gives the model's own
    # length, which Ollama does not run at unless told: not a context it will read)
    found = re.search(r"\bnum_ctx\s+(\d+)", str(document.get("parameters", "")))
    return int(found.group(1)) if found else 0
