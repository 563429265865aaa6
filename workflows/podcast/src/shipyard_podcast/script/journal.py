"""Every model request of a run, durable: the answer is written down before the writer uses it.

The write-script step makes several paid requests (an outline, then a segment per part; a
retry with the flags). A crash in the middle retries the whole step, and without this every
finished request would be paid for again. `JournaledModel` wraps a writer's model: each
request is keyed by who is asked (the writer: its provider, base URL, model and output mode)
and what is asked (the messages without their timestamps, the settings), and an answer
already in the run's journal is returned without asking the server. Two writers serving one
model name never answer for each other. Each request made, each one replayed and each one that
failed is an event on the run's timeline, with its tokens and cost or its error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from shipyard import write_atomically

__all__ = ["JournaledModel", "RequestJournal"]

# What differs between two sends of the same request: when, and which agent run sent it.
_VOLATILE = frozenset({"timestamp", "run_id", "conversation_id"})


class RequestJournal:
    """A run's model answers, one file per request, under a folder of the state folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(
        self, writer: dict[str, str], messages: list[ModelMessage], settings: ModelSettings | None
    ) -> str:
        asked = {
            "writer": writer,
            "messages": _stable(ModelMessagesTypeAdapter.dump_python(messages, mode="json")),
            "settings": dict(settings or {}),
        }
        encoded = json.dumps(asked, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()

    def get(self, key: str) -> ModelResponse | None:
        path = self.folder / f"{key}.json"
        if not path.is_file():
            return None
        (response,) = ModelMessagesTypeAdapter.validate_json(path.read_bytes())
        return response if isinstance(response, ModelResponse) else None

    def put(self, key: str, response: ModelResponse) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = ModelMessagesTypeAdapter.dump_json([response])
        write_atomically(self.folder / f"{key}.json", lambda out: out.write(data))


class JournaledModel(WrapperModel):
    """A model whose answers are journaled: a request `writer` asked before is answered from
    the journal. `seen(response, replayed)` is told of every answer, `failed(error, count)` of
    every request that got none (`count`: how many have failed so far)."""

    def __init__(
        self,
        wrapped: Any,
        journal: RequestJournal,
        writer: dict[str, str],
        seen: Callable[[ModelResponse, bool], None],
        failed: Callable[[BaseException, int], None] = lambda error, count: None,
    ) -> None:
        super().__init__(wrapped)
        self.journal = journal
        self.writer = writer
        self.seen = seen
        self.failed = failed
        self.failures = 0

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        key = self.journal.key(self.writer, messages, model_settings)
        found = self.journal.get(key)
        if found is not None:
            self.seen(found, True)
            return found
        try:
            response = await super().request(messages, model_settings, model_request_parameters)
        except Exception as exc:
            self.failures += 1
            self.failed(exc, self.failures)
            raise
        self.journal.put(key, response)
        self.seen(response, False)
        return response


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value
