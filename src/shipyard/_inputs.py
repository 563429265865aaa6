"""What a run takes: a file, a URL or a JSON document, each named by a SHA-256.

A workflow declares the kind it accepts (`@workflow(accepts="file")`), or kinds
(`accepts=("file", "url")`: a path when it names a file, else a link); `shipyard run` turns
what the user typed into that kind, and refuses what does not fit before any run exists: a
"text" file that is not UTF-8, JSON that does not parse, or JSON that does not fit the
workflow's pydantic model (`accepts=MyModel`; the error names the field). A workflow that
takes links may read what users type for one (`url_for`: an arXiv id as its abstract page's
URL). The SHA-256 is of the content (the file's bytes, the URL's canonical text, the
document's canonical JSON), so the same input makes the same run id.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

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

InputKind = Literal["file", "text", "url", "json"]
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
    """An http(s) URL; a step fetches it (`shipyard._fetch`), through `expand_secrets(url)`
    where it names a `${NAME}` (a credential written out is refused: the input is stored with
    the run). `given` is what the user typed, when the workflow read it as this URL."""

    kind: Literal["url"] = "url"
    url: str
    given: str = ""


class JsonInput(_Input):
    """A JSON document, carried in the run's input itself."""

    kind: Literal["json"] = "json"
    data: Any


RunInput = Annotated[FileInput | UrlInput | JsonInput, Field(discriminator="kind")]
RUN_INPUT: TypeAdapter[FileInput | UrlInput | JsonInput] = TypeAdapter(RunInput)


def read_input(
    kind: InputKind | tuple[InputKind, ...],
    given: str,
    *,
    described: str = "",
    model: type[BaseModel] | None = None,
    url_for: Callable[[str], str | None] | None = None,
) -> FileInput | UrlInput | JsonInput:
    """Turn what a user gave (`shipyard run W GIVEN`) into the input kind a workflow takes.

    A file is a path (its bytes are the workflow's to read; "text": a path to a UTF-8 text
    file, checked here); a URL is http(s), or what `url_for` reads as one; a JSON document is
    a path to a .json file or the JSON text itself, and fits `model` when one is given. Of
    several kinds, a path that names a file is a file, and anything else a link."""
    not_a_link = f"{given!r} is not an http(s) URL"
    if isinstance(kind, tuple):
        if "url" not in kind or Path(given).is_file():
            other = next(k for k in kind if k != "url")
            return read_input(other, given, described=described, model=model)
        kind, not_a_link = "url", f"{given!r} names no file and is no http(s) link"
    what = (
        described
        or {
            "file": "a file",
            "text": "a UTF-8 text file",
            "url": "an http(s) URL",
            "json": "a JSON document",
        }[kind]
    )
    if kind == "url":
        url = (url_for(given) if url_for is not None else None) or given
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise _rejected(not_a_link, what)
        if found := literal_credential(url):
            raise ShipyardError(
                f"the URL holds {found}, which would be stored with the run",
                code="bad-input",
                hint="name it as a secret instead, e.g. '...?token=${PAPER_TOKEN}' with "
                "PAPER_TOKEN in the environment or the credentials file",
            )
        typed = given if given != url else ""
        return UrlInput(url=url, given=typed, sha256=hashlib.sha256(url.encode()).hexdigest())
    if kind == "json":
        text = given
        if not given.lstrip().startswith(("{", "[")):
            path = Path(given)
            if not path.is_file():
                raise _rejected(f"{given} is neither JSON text nor a JSON file", what)
            if path.stat().st_size > MAX_JSON_BYTES:
                raise _rejected(f"{given} is larger than {MAX_JSON_BYTES:,} bytes", what)
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise _rejected(f"{given} is not UTF-8 text (byte {exc.start})", what) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _rejected(f"not valid JSON: {exc}", what) from None
        if model is not None:
            try:
                model.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "the document"
                problem = f"the input does not fit: {where}: {first['msg']}"
                fields = ", ".join(model.model_fields)
                raise _rejected(problem, f"{what} with the fields {fields}") from None
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return JsonInput(data=data, sha256=hashlib.sha256(canonical.encode()).hexdigest())
    path = Path(given)
    if not path.is_file():
        raise _rejected(f"{given} does not exist or is not a file", what)
    resolved = path.resolve()
    if kind == "text":
        _utf8(resolved, what)
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
        typed = {"given": given.given} if given.given else {}
        return {"source": given.url, **typed, "source_sha256": given.sha256}
    return {"source": "a JSON document", "source_sha256": given.sha256}


def _utf8(path: Path, what: str) -> None:
    """Refuse a file that is not UTF-8 text, naming where it stops being so (read in blocks:
    any size, little memory)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                where = offset + exc.start
                raise _rejected(f"{path.name} is not UTF-8 text (byte {where:,})", what) from None
            offset += len(block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _rejected(f"{path.name} ends inside a UTF-8 character", what) from None


def _rejected(problem: str, what: str) -> ShipyardError:
    return ShipyardError(problem, code="bad-input", hint=f"give {what}")
