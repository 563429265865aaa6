"""What a run takes: a file, a URL or a JSON document, each named by a SHA-256.

A workflow declares the kind it accepts (`@workflow(accepts="file")`); `shipyard run` turns
what the user typed into that kind. The SHA-256 is of the content (the file's bytes, the URL's
text, the document's canonical JSON), so the same input makes the same run id.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from shipyard._artifacts import sha256_file
from shipyard._errors import ShipyardError
from shipyard._secrets import literal_credential

__all__ = [
    "FileInput",
    "InputKind",
    "JsonInput",
    "RunInput",
    "UrlInput",
    "read_input",
    "summary",
]

InputKind = Literal["file", "url", "json"]
MAX_JSON_BYTES = 10_000_000


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sha256: str


class FileInput(_Input):
    """A file on a disk the workers share; a step copies it into the artifact store."""

    kind: Literal["file"] = "file"
    path: str
    name: str
    size: int


class UrlInput(_Input):
    """An http(s) URL; a step fetches it, through `expand_secrets(url)` where it names a
    `${NAME}` (a credential written out is refused: the input is stored with the run)."""

    kind: Literal["url"] = "url"
    url: str


class JsonInput(_Input):
    """A JSON document, carried in the run's input itself."""

    kind: Literal["json"] = "json"
    data: Any


RunInput = Annotated[FileInput | UrlInput | JsonInput, Field(discriminator="kind")]
RUN_INPUT: TypeAdapter[FileInput | UrlInput | JsonInput] = TypeAdapter(RunInput)


def read_input(
    kind: InputKind, given: str, *, described: str = ""
) -> FileInput | UrlInput | JsonInput:
    """Turn what a user gave (`shipyard run W GIVEN`) into the input kind a workflow takes.

    A file is a path; a URL is http(s); a JSON document is a path to a .json file or the
    JSON text itself."""
    what = described or {"file": "a file", "url": "an http(s) URL", "json": "a JSON document"}[kind]
    if kind == "url":
        parsed = urlparse(given)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise _rejected(f"{given!r} is not an http(s) URL", what)
        if found := literal_credential(given):
            raise ShipyardError(
                f"the URL holds {found}, which would be stored with the run",
                code="bad-input",
                hint="name it as a secret instead, e.g. '...?token=${PAPER_TOKEN}' with "
                "PAPER_TOKEN in the environment or the credentials file",
            )
        return UrlInput(url=given, sha256=hashlib.sha256(given.encode()).hexdigest())
    if kind == "json":
        text = given
        if not given.lstrip().startswith(("{", "[")):
            path = Path(given)
            if not path.is_file():
                raise _rejected(f"{given} is neither JSON text nor a JSON file", what)
            if path.stat().st_size > MAX_JSON_BYTES:
                raise _rejected(f"{given} is larger than {MAX_JSON_BYTES:,} bytes", what)
            text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _rejected(f"not valid JSON: {exc}", what) from None
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return JsonInput(data=data, sha256=hashlib.sha256(canonical.encode()).hexdigest())
    path = Path(given)
    if not path.is_file():
        raise _rejected(f"{given} does not exist or is not a file", what)
    resolved = path.resolve()
    return FileInput(
        path=str(resolved),
        name=path.name,
        size=resolved.stat().st_size,
        sha256=sha256_file(resolved),
    )


def summary(given: FileInput | UrlInput | JsonInput) -> dict[str, Any]:
    """What the run's record keeps of its input: where it came from and its SHA-256."""
    if isinstance(given, FileInput):
        return {"source": given.path, "source_sha256": given.sha256}
    if isinstance(given, UrlInput):
        return {"source": given.url, "source_sha256": given.sha256}
    return {"source": "a JSON document", "source_sha256": given.sha256}


def _rejected(problem: str, what: str) -> ShipyardError:
    return ShipyardError(problem, code="bad-input", hint=f"give {what}")
