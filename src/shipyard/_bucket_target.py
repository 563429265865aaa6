"""The object-store target: a site in an S3-compatible bucket (AWS S3, Cloudflare R2,
Backblaze B2, MinIO, Ceph), usually served through a CDN (see `_targets` for the promises).

`publish` holds the site's lock (an object created only if absent), reads what the site holds,
derives the files, then uploads them one by one in the order given (media first, the feed
last: the feed never names an object that is not there yet), and removes what is taken off
only after the feed stopped naming it. Each object goes up with its SHA-256 as the store's
checksum (`x-amz-checksum-sha256`), so the store refuses bytes corrupted on the way, and in
its metadata, so an object that already holds the same bytes is not uploaded again. An
object about to be replaced is first copied to `_shipyard/versions/PATH/SHA256` (a feed can
be rolled back), and the publication ends with a record, `_shipyard/runs/RUN.json`, whose
SHA-256 is the publication's id: a recovered run finds it and writes nothing twice.

Credentials come from boto3's usual places (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in
the environment, a profile), never from shipyard.toml.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import mimetypes
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from shipyard._artifacts import sha256_file
from shipyard._config import Config
from shipyard._errors import ConfigError, PublishFailed, TransientError
from shipyard._targets import (
    BUCKET_RECORDS,
    FileSet,
    PublishResult,
    Site,
    mismatches,
    site_path,
)
from shipyard._telemetry import span

__all__ = ["BucketTarget"]

log = logging.getLogger("shipyard.publish")

LOCK_SECONDS = 300.0  # a lock older than this was left by a process that died
_TYPES = {".vtt": "text/vtt", ".xml": "application/rss+xml", ".md": "text/markdown"}
_TEXT = ("text/", "application/rss+xml", "application/json", "application/xml")
# The store's answers that no retry will change: the configuration or the credentials.
_FOR_GOOD = {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
# A conditional write that lost a race for the lock (or found it gone): look again.
_CONTENDED = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")


class BucketTarget:
    """A site under `prefix` in one bucket, named by an `s3://BUCKET[/PREFIX]` URL."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str = "",
        region: str = "",
        max_file_bytes: int = 100_000_000,
        lock_seconds: float = LOCK_SECONDS,
        before_upload: Callable[[str], None] | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.url = url
        self.bucket, self.prefix = bucket, f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.where = f"{url} ({endpoint_url or 'AWS'})"
        self.max_file_bytes = max_file_bytes
        self.lock_seconds = lock_seconds
        # Called with each path before it is uploaded: a seam for instrumentation and for
        # tests that make the process die at exactly that point.
        self.before_upload = before_upload
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}),
        )

    @classmethod
    def from_config(cls, config: Config) -> BucketTarget:
        publish = config.publish
        return cls(
            publish.remote,
            endpoint_url=publish.endpoint_url,
            region=publish.region,
            max_file_bytes=publish.max_file_bytes,
        )

    def __repr__(self) -> str:
        return f"BucketTarget({self.url!r})"

    # --- the target ------------------------------------------------------------------------

    def publish(
        self,
        files: FileSet | Callable[[Site], FileSet],
        *,
        run_id: str,
        message: str,
        trailers: Mapping[str, str] | None = None,
        remove: Sequence[str] = (),
    ) -> PublishResult:
        """Upload `files` (in their order) and delete `remove`, as the publication of `run_id`."""
        removals = sorted({site_path(p) for p in remove})
        found = self.find_run_commit(run_id)
        if found is not None:
            log.info("publish: %s already has run %s's publication", self, run_id)
            return PublishResult(found, pushed=False, already_published=True)
        with self._locked(run_id):
            chosen = files(_BucketSite(self)) if callable(files) else files
            paths = [site_path(p) for p in chosen]
            if overlap := set(paths) & set(removals):
                raise ConfigError(f"{sorted(overlap)[0]} is both published and removed")
            shipped, wrote = {}, False
            for path, content in zip(paths, chosen.values(), strict=True):
                shipped[path], uploaded = self._put(path, content)
                wrote = wrote or uploaded
            for path in removals:
                wrote = self._delete(path) or wrote
            record = {
                "run": run_id,
                "message": message,
                "trailers": dict(trailers or {}),
                "files": shipped,
                "removed": removals,
            }
            body = json.dumps(record, sort_keys=True, indent=1).encode()
            digest = hashlib.sha256(body).hexdigest()  # the publication's id
            key = self._record_key(run_id)
            self._call(
                "record",
                lambda: self._client.put_object(
                    **self._object(key, body, "application/json", digest)
                ),
            )
            return PublishResult(digest, pushed=wrote, already_published=not wrote)

    def site(self) -> Site:
        return _BucketSite(self)

    def find_run_commit(self, run_id: str) -> str | None:
        body = self._get(self._record_key(run_id))
        return hashlib.sha256(body).hexdigest() if body is not None else None

    def missing(self, files: Mapping[str, str]) -> list[str]:
        """Of `files` (path -> SHA-256), those the bucket does not hold with those bytes: each
        object is read back through the store's API (not the CDN) and hashed."""
        return mismatches(files, lambda path: self._hash(self._key(path)), self.url)

    def versions(self, path: str) -> list[str]:
        """The SHA-256s of the earlier contents kept of `path` (to roll back to)."""
        prefix = f"{self._key(BUCKET_RECORDS)}/versions/{site_path(path)}/"
        listed = self._call(
            "list", lambda: self._client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        )
        return sorted(str(o["Key"]).removeprefix(prefix) for o in listed.get("Contents", []))

    # --- objects ---------------------------------------------------------------------------

    def _put(self, path: str, content: bytes | Path) -> tuple[str, bool]:
        """Upload one file unless the bucket holds it already: (its SHA-256, uploaded?)."""
        size = content.stat().st_size if isinstance(content, Path) else len(content)
        if size > self.max_file_bytes:
            raise PublishFailed(
                f"{path} is {size:,} bytes, over publish.max_file_bytes ({self.max_file_bytes:,})",
                code="file-too-large",
                hint="lower the audio bitrate, or raise publish.max_file_bytes",
            )
        digest = (
            sha256_file(content)
            if isinstance(content, Path)
            else hashlib.sha256(content).hexdigest()
        )
        key = self._key(path)
        held = self._head(key)
        if held is not None and held.get("Metadata", {}).get("sha256") == digest:
            return digest, False
        if held is not None:  # kept, so the site can be rolled back
            earlier = held.get("Metadata", {}).get("sha256") or self._hash(key) or "unknown"
            version = f"{self._key(BUCKET_RECORDS)}/versions/{path}/{earlier}"
            self._call(
                "keep a version",
                lambda: self._client.copy_object(
                    Bucket=self.bucket, Key=version, CopySource={"Bucket": self.bucket, "Key": key}
                ),
            )
        if self.before_upload is not None:
            self.before_upload(path)
        kind = _TYPES.get(Path(path).suffix) or mimetypes.guess_type(path)[0]
        kind = kind or "application/octet-stream"
        if kind.startswith(_TEXT):
            kind += "; charset=utf-8"
        opened = content.open("rb") if isinstance(content, Path) else nullcontext(content)
        with span("publish upload", path=path, bytes=size), opened as body:  # streamed
            self._call(
                f"upload {path}",
                lambda: self._client.put_object(**self._object(key, body, kind, digest)),
            )
        log.info("publish: %s holds %s (%d bytes)", self, path, size)
        return digest, True

    def _object(self, key: str, body: bytes | BinaryIO, kind: str, digest: str) -> dict[str, Any]:
        return {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": kind,
            # The store recomputes it and refuses the upload when the bytes differ.
            "ChecksumSHA256": base64.b64encode(bytes.fromhex(digest)).decode(),
            "Metadata": {"sha256": digest},
        }

    def _delete(self, path: str) -> bool:
        key = self._key(path)
        if self._head(key) is None:
            return False
        self._call(
            f"delete {path}", lambda: self._client.delete_object(Bucket=self.bucket, Key=key)
        )
        if self._head(key) is not None:
            raise TransientError(f"{path} is still in {self.url} after its deletion")
        return True

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(
                self._call(
                    "read",
                    lambda: self._client.head_object(Bucket=self.bucket, Key=key),
                    absent_ok=True,
                )
            )
        except _Absent:
            return None

    def _get(self, key: str) -> bytes | None:
        body = self._body(key)
        return bytes(body.read()) if body is not None else None

    def _hash(self, key: str) -> str | None:
        body = self._body(key)
        if body is None:
            return None
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()

    def _body(self, key: str) -> Any:
        """The object's content as a stream (botocore's), or None where there is none."""
        try:
            answer = self._call(
                "read", lambda: self._client.get_object(Bucket=self.bucket, Key=key), absent_ok=True
            )
        except _Absent:
            return None
        return answer["Body"]

    def _key(self, path: str) -> str:
        return f"{self.prefix}{path}"

    def _record_key(self, run_id: str) -> str:
        return f"{self._key(BUCKET_RECORDS)}/runs/{quote(run_id, safe='')}.json"

    # --- the lock --------------------------------------------------------------------------

    @contextmanager
    def _locked(self, run_id: str) -> Iterator[None]:
        """One publication at a time on this site, across processes and machines: the lock is
        an object written only where there is none. One left by a dead process is taken over
        once it is `lock_seconds` old, or at once by the same run (its recovery)."""
        from botocore.exceptions import ClientError

        key = f"{self._key(BUCKET_RECORDS)}/lock"
        mine = json.dumps({"run": run_id, "at": time.time()}).encode()
        deadline = time.monotonic() + self.lock_seconds + 60
        while True:
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=mine, IfNoneMatch="*")
                break
            except ClientError as exc:
                if _code(exc) not in _CONTENDED:
                    raise self._error("lock the site", exc) from None
            held = self._head(key)
            holder = json.loads(self._get(key) or b"{}") if held is not None else {}
            stale = time.time() - float(holder.get("at", 0)) > self.lock_seconds
            if held is not None and (holder.get("run") == run_id or stale):
                try:  # taken over only if nobody else took it meanwhile
                    self._client.put_object(
                        Bucket=self.bucket, Key=key, Body=mine, IfMatch=held["ETag"]
                    )
                    break
                except ClientError as exc:
                    if _code(exc) not in _CONTENDED:
                        raise self._error("lock the site", exc) from None
            if time.monotonic() > deadline:
                raise TransientError(
                    f"{self.url} stayed locked by run {holder.get('run', '?')}",
                    code="site-locked",
                    hint="another release is under way; the step retries",
                )
            time.sleep(0.5)
        try:
            yield
        finally:
            self._call(
                "unlock the site", lambda: self._client.delete_object(Bucket=self.bucket, Key=key)
            )

    # --- errors ----------------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], Any], *, absent_ok: bool = False) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as exc:
            if absent_ok and _code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise _Absent from None
            raise self._error(what, exc) from None
        except BotoCoreError as exc:
            raise self._error(what, exc) from None

    def _error(self, what: str, exc: Exception) -> Exception:
        code = _code(exc)
        if code in _FOR_GOOD:
            return PublishFailed(
                f"{self.where} refused to {what}: {code}",
                code="bucket-refused",
                hint="check publish.remote, publish.endpoint_url and the credentials "
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile)",
            )
        return TransientError(
            f"{self.where} failed to {what}: {type(exc).__name__}: {exc}",
            code="bucket-failed",
            hint="the step retries; check the store's status if it keeps failing",
        )


@dataclass(frozen=True, slots=True)
class _BucketSite:
    target: BucketTarget

    def read(self, path: str) -> bytes | None:
        return self.target._get(self.target._key(site_path(path)))


class _Absent(Exception):
    """The object is not there (404)."""


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
