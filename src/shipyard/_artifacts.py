"""Content-addressed artifact store.

Every file a run produces or consumes is stored once, under its SHA-256:
`<root>/ab/abcdef....<suffix>`. Writing is atomic (a temporary file renamed into place), so a
crash never leaves a half-written artifact under a valid name, and writing the same bytes twice
is a no-op. Lineage (which run and step produced an artifact, from which parents) is recorded
by the run ledger, not here: the store only knows bytes.

Where workers on several machines share runs, the store also lives on an S3-compatible object
store (`[artifacts] url`): every artifact written is uploaded under the same name (once: a
name is its content), and one missing from the folder is fetched into it, so the folder is a
read cache and a run begun on one machine reads its artifacts on another.

The store is confined to its folder: an artifact id is a SHA-256 and nothing else, and no
read or write goes through a symbolic link (`confined`), so a link planted in the store can
neither leak a file from elsewhere into a release nor redirect a write.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from shipyard._errors import ShipyardError, TransientError

__all__ = [
    "Artifact",
    "ArtifactStore",
    "ObjectStore",
    "confined",
    "sha256_file",
    "write_atomically",
]

_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"(\.[A-Za-z0-9]{1,16})?")


def confined(root: Path, path: Path) -> Path:
    """`path`, which must lie inside `root` with no symbolic link on the way (`root` itself
    may be reached through links): what a write or read there touches stays inside."""
    base = root.resolve()
    relative = path.absolute().relative_to(root.absolute())  # ValueError: not under root
    current = base
    for part in relative.parts:
        current = current / part
        if part == ".." or current.is_symlink():
            raise ShipyardError(
                f"{path} leads out of {root} (through {current.name!r}); shipyard never reads "
                "or writes through links in its folders",
                code="link-in-state",
                hint=f"remove the link {current} (a real folder or file is created in its place)",
            )
    return base / relative


@dataclass(frozen=True, slots=True)
class Artifact:
    sha256: str
    size: int
    path: Path


def write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file whole or not at all: into a temporary file beside it, renamed into place
    (readable by all, like any published file). Folders are created."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ObjectStore:
    """An S3-compatible bucket (through boto3) holding artifacts under `<prefix>ab/<name>`.
    Credentials come from boto3's usual places (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    in the environment, a profile), never from shipyard.toml."""

    def __init__(self, url: str, *, endpoint_url: str = "", region: str = "") -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.bucket, self.prefix = bucket, f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.where = f"{url} ({endpoint_url or 'AWS'})"
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def find(self, sha256: str) -> str | None:
        """The name (`ab/<sha256><suffix>`) the artifact is stored under, if it is."""
        found = self._call(
            "list",
            lambda: self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=f"{self.prefix}{sha256[:2]}/{sha256}", MaxKeys=1
            ),
        )
        contents = found.get("Contents", [])
        return str(contents[0]["Key"]).removeprefix(self.prefix) if contents else None

    def upload(self, source: Path, sha256: str) -> None:
        """Store `source`, the artifact `sha256`, under its name (`ab/` and its file name),
        unless it is there already (a name is its content)."""
        name = f"{sha256[:2]}/{source.name}"
        if self.find(sha256) != name:
            self._call(
                "upload",
                lambda: self._client.upload_file(str(source), self.bucket, self._key(name)),
            )

    def download(self, name: str, target: Path) -> None:
        def fetch(f: BinaryIO) -> None:
            self._call(
                "download", lambda: self._client.download_fileobj(self.bucket, self._key(name), f)
            )

        write_atomically(target, fetch)

    def _key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except (BotoCoreError, ClientError) as exc:
            raise TransientError(
                f"the object store {self.where} failed to {what}: {type(exc).__name__}: {exc}",
                code="object-store",
                hint="check [artifacts] in shipyard.toml, the bucket, and the credentials "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) in the environment",
            ) from None


class ArtifactStore:
    """Files named by their SHA-256 under one folder: written once, atomically, and read by
    hash from any step (`put_file`, `put_bytes`, `path`, `read_bytes`); with a `mirror`,
    also on an object store every machine shares, the folder being a cache of it."""

    def __init__(self, root: Path, mirror: ObjectStore | None = None) -> None:
        self.root = root
        self.mirror = mirror

    def path(self, sha256: str) -> Path:
        """Where the artifact with this hash lives (whatever its suffix), fetched from the
        mirror into the folder if it is only there."""
        folder = confined(self.root, self.root / _checked(sha256)[:2])
        matches = sorted(folder.glob(f"{sha256}*")) if folder.is_dir() else []
        if matches:
            return confined(self.root, matches[0])
        name = self.mirror.find(sha256) if self.mirror is not None else None
        if name is None:
            where = f"{self.root}" + (f" or {self.mirror.where}" if self.mirror else "")
            raise ShipyardError(
                f"artifact {sha256[:12]} is not in the store at {where}",
                code="artifact-missing",
                artifact=sha256,
                hint="the state folder was moved or cleaned; re-run with --force",
            )
        target = self._target(sha256, name.removeprefix(f"{sha256[:2]}/{sha256}"))
        assert self.mirror is not None
        self.mirror.download(name, target)
        return target

    def has(self, sha256: str) -> bool:
        folder = confined(self.root, self.root / _checked(sha256)[:2])
        if folder.is_dir() and any(folder.glob(f"{sha256}*")):
            return True
        return self.mirror is not None and self.mirror.find(sha256) is not None

    def put_bytes(self, data: bytes, *, suffix: str = "") -> Artifact:
        sha = hashlib.sha256(data).hexdigest()
        target = self._target(sha, suffix)
        if not target.exists():
            write_atomically(target, lambda f: f.write(data))
        self._share(target, sha)
        return Artifact(sha, len(data), target)

    def _share(self, target: Path, sha256: str) -> None:
        if self.mirror is not None:
            self.mirror.upload(target, sha256)

    def put_file(self, source: Path, *, suffix: str | None = None) -> Artifact:
        """Copy a file in. The hash is of the bytes copied, so a file that changes while it
        is read is stored under the hash of what was actually read."""
        if suffix is None:  # the source's own, where it is a plain one
            suffix = source.suffix.lower() if _SUFFIX.fullmatch(source.suffix) else ""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            target = self._target(sha, suffix)
            if target.exists():
                os.unlink(tmp)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._share(target, sha)
        return Artifact(sha, size, target)

    def read_bytes(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def read_text(self, sha256: str) -> str:
        return self.path(sha256).read_text(encoding="utf-8")

    def export(self, sha256: str, destination: Path) -> Path:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path(sha256), destination)
        return destination

    def _target(self, sha: str, suffix: str) -> Path:
        if not _SUFFIX.fullmatch(suffix):
            raise ShipyardError(
                f"{suffix!r} is not an artifact suffix", hint="a dot and up to 16 letters or digits"
            )
        return confined(self.root, self.root / sha[:2] / f"{sha}{suffix}")


def _checked(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise ShipyardError(
            f"{sha256[:80]!r} is not an artifact id (a SHA-256 in hex)",
            code="artifact-missing",
            hint="artifacts are named by the SHA-256 of their bytes",
        )
    return sha256
