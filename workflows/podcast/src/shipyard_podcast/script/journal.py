"""Every model request of a run, durable: the answer is written down before the writer uses it.

The write-script step makes several paid requests (an outline, then a segment per part; a
retry with the flags). A crash in the middle retries the whole step, and without this every
finished request would be paid for again. A model writer's model is wrapped
(`llm_writer.JournaledModel`): each request is keyed by who is asked (the writer: its
provider, base URL, model and output mode) and what is asked (the messages without their
timestamps, the settings), and an answer already in the run's journal is returned without
asking the server. Two writers serving one model name never answer for each other. Each
request made, each one replayed and each one that failed is an event on the run's timeline,
with its tokens and cost or its error.

pydantic-ai is imported only when a request is journaled: a chain without a model writer
(the default) never loads it (0.3 s, 20 MB).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import write_atomically

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelMessage, ModelResponse
    from pydantic_ai.settings import ModelSettings

__all__ = ["RequestJournal"]

# What differs between two sends of the same request: when, and which agent run sent it.
_VOLATILE = frozenset({"timestamp", "run_id", "conversation_id"})


class RequestJournal:
    """A run's model answers, one file per request, under a folder of the state folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(
        self, writer: dict[str, str], messages: list[ModelMessage], settings: ModelSettings | None
    ) -> str:
        from pydantic_ai.messages import ModelMessagesTypeAdapter

        asked = {
            "writer": writer,
            "messages": _stable(ModelMessagesTypeAdapter.dump_python(messages, mode="json")),
            "settings": dict(settings or {}),
        }
        encoded = json.dumps(asked, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()

    def get(self, key: str) -> ModelResponse | None:
        from pydantic_ai.messages import ModelMessagesTypeAdapter, ModelResponse

        path = self.folder / f"{key}.json"
        if not path.is_file():
            return None
        (response,) = ModelMessagesTypeAdapter.validate_json(path.read_bytes())
        return response if isinstance(response, ModelResponse) else None

    def put(self, key: str, response: ModelResponse) -> None:
        from pydantic_ai.messages import ModelMessagesTypeAdapter

        self.folder.mkdir(parents=True, exist_ok=True)
        data = ModelMessagesTypeAdapter.dump_json([response])
        write_atomically(self.folder / f"{key}.json", lambda out: out.write(data))


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value
