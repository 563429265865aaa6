"""A real production on this machine, for the demo and the tests.

    <root>/remote.git    bare repository: the site's remote (branch `main`)
    <root>/www           web root: what the deploy hook last checked out
    <root>/www-frozen    snapshot served instead of www while the server is frozen (stale server)
    <root>/control/      switches read by the hooks and the server on every push and request

Pushing to `remote.git` runs a post-receive hook that checks the pushed commit out into `www`;
`serve()` answers HTTP on 127.0.0.1 from that folder (HEAD and byte ranges included). The
switches produce, on purpose, the failures verify must catch: a deploy that never happens,
a server stuck on an old checkout, a remote that refuses pushes, and a deploy that lands late
(as a CDN's does).
"""

from __future__ import annotations

import mimetypes
import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from types import TracebackType
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from shipyard._errors import ShipyardError

__all__ = ["CONTENT_TYPES", "LocalProduction", "LocalServer"]

GIT_TIMEOUT = 30.0
CONTENT_TYPES = {
    ".mp3": "audio/mpeg",
    ".xml": "application/rss+xml",
    ".rss": "application/rss+xml",
    ".vtt": "text/vtt; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain; charset=utf-8",
    ".pdf": "application/pdf",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 16

_POST_RECEIVE = """#!/bin/sh
# Deploy each push to {branch} into the web root (shipyard local production).
ROOT={root}
while read -r old new ref; do
  [ "$ref" = "refs/heads/{branch}" ] || continue
  if [ -e "$ROOT/control/deploy-off" ]; then
    echo "deploy: switched off; $new was not deployed"
    continue
  fi
  delay=0
  [ -f "$ROOT/control/delay" ] && delay=$(cat "$ROOT/control/delay")
  if [ "$delay" = 0 ]; then
    sh "$ROOT/deploy.sh" "$new" 0 && echo "deploy: $new is live"
  else
    nohup sh "$ROOT/deploy.sh" "$new" "$delay" >/dev/null 2>&1 &
    echo "deploy: $new goes live in ${{delay}}s"
  fi
done
"""

_PRE_RECEIVE = """#!/bin/sh
# Hold pushes while the hold switch is on; refuse every push while the refuse switch is on
# (shipyard local production).
ROOT={root}
while [ -f "$ROOT/control/hold" ]; do
  touch "$ROOT/control/held"
  sleep 0.1
done
rm -f "$ROOT/control/held"
if [ -f "$ROOT/control/refuse" ]; then
  cat "$ROOT/control/refuse" >&2
  exit 1
fi
"""

# Checks a commit out into the web root with a private index, so the bare repository's HEAD
# and branches are never touched and files deleted by the commit leave the web root too.
_DEPLOY = """#!/bin/sh
set -eu
ROOT={root}
sleep "$2"
exec 9>"$ROOT/deploy.lock"
flock 9
GIT_DIR="$ROOT/remote.git" GIT_INDEX_FILE="$ROOT/deploy.index" GIT_WORK_TREE="$ROOT/www" \\
  git read-tree --reset -u "$1"
echo "$1" > "$ROOT/deployed.tmp"
mv "$ROOT/deployed.tmp" "$ROOT/deployed"
"""


class LocalProduction:
    """A bare remote, a deploy hook and a web root under one folder.

    `LocalProduction(root).create()` sets it up (idempotent: an existing remote keeps its
    history, the hooks are rewritten). The switch methods take effect at the next push or
    request; they persist in `<root>/control`, so another process sees them too.
    """

    def __init__(self, root: Path, *, branch: str = "main") -> None:
        self.root = root.resolve()
        self.branch = branch

    @property
    def remote(self) -> Path:
        return self.root / "remote.git"

    @property
    def webroot(self) -> Path:
        return self.root / "www"

    @property
    def frozen_root(self) -> Path:
        return self.root / "www-frozen"

    @property
    def control(self) -> Path:
        return self.root / "control"

    @property
    def remote_url(self) -> str:
        """What a GitTarget pushes to."""
        return str(self.remote)

    def create(self) -> LocalProduction:
        self.webroot.mkdir(parents=True, exist_ok=True)
        self.control.mkdir(exist_ok=True)
        if not (self.remote / "HEAD").is_file():
            _git(["init", "--quiet", "--bare", f"--initial-branch={self.branch}", str(self.remote)])
        root = shlex.quote(str(self.root))
        hooks = self.remote / "hooks"
        hooks.mkdir(exist_ok=True)
        for name, body in (
            ("post-receive", _POST_RECEIVE.format(root=root, branch=self.branch)),
            ("pre-receive", _PRE_RECEIVE.format(root=root)),
        ):
            (hooks / name).write_text(body, encoding="utf-8")
            (hooks / name).chmod(0o755)
        # A hooks path in the user's global config would silence these hooks: pin ours.
        _git(["config", "core.hooksPath", str(hooks)], cwd=self.remote)
        _git(["config", "core.autocrlf", "false"], cwd=self.remote)  # deploy bytes as pushed
        (self.root / "deploy.sh").write_text(_DEPLOY.format(root=root), encoding="utf-8")
        if self.head() is None:
            self._initial_commit()
        return self

    def _initial_commit(self) -> None:
        readme = b"# Podcast site\n\nPublished by shipyard.\n"
        blob = _git(["hash-object", "-w", "--stdin"], cwd=self.remote, input=readme)
        tree = _git(["mktree"], cwd=self.remote, input=f"100644 blob {blob}\tREADME.md\n".encode())
        commit = _git(
            ["commit-tree", tree, "-m", "Start the site"],
            cwd=self.remote,
            env={
                "GIT_AUTHOR_NAME": "shipyard",
                "GIT_AUTHOR_EMAIL": "shipyard@localhost",
                "GIT_COMMITTER_NAME": "shipyard",
                "GIT_COMMITTER_EMAIL": "shipyard@localhost",
            },
        )
        _git(["update-ref", f"refs/heads/{self.branch}", commit], cwd=self.remote)
        self.deploy(commit)

    # --- state ---------------------------------------------------------------------------

    def head(self) -> str | None:
        """The commit the remote's branch points at (None before the first commit)."""
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{self.branch}"],
            cwd=self.remote,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        return result.stdout.strip() or None

    def deployed(self) -> str | None:
        """The commit the web root holds (None before any deploy)."""
        marker = self.root / "deployed"
        return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None

    def log(self) -> list[str]:
        """Subjects of the remote branch's commits, newest first."""
        out = _git(["log", "--format=%s", self.branch], cwd=self.remote)
        return out.splitlines()

    def deploy(self, commit: str | None = None) -> None:
        """Check a commit (default: the branch tip) out into the web root now."""
        target = commit or self.head()
        if target is None:
            raise ShipyardError("the remote has no commit to deploy", code="nothing-to-deploy")
        done = subprocess.run(
            ["sh", str(self.root / "deploy.sh"), target, "0"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise ShipyardError(
                f"deploying {target[:12]} into {self.webroot} failed: {done.stderr.strip()}",
                code="deploy-failed",
                hint="is `flock` (util-linux) installed? see `shipyard doctor`",
            )

    # --- switches ------------------------------------------------------------------------

    def set_deploy(self, enabled: bool) -> None:
        """Off: pushes land in the remote but never reach the web root."""
        self._switch("deploy-off", None if enabled else "off\n")

    def set_deploy_delay(self, seconds: float) -> None:
        """Deploy each push only after `seconds` (0: at once), in the background."""
        self._switch("delay", f"{seconds:g}\n" if seconds > 0 else None)

    def refuse_pushes(self, message: str | None = "pushes to this site are closed") -> None:
        """Make the remote reject every push with `message` (None: accept again)."""
        self._switch("refuse", f"{message}\n" if message is not None else None)

    def hold_pushes(self, held: bool) -> None:
        """Keep pushes waiting in the remote's pre-receive hook until released (a push
        under way that a test can interrupt)."""
        self._switch("hold", "hold\n" if held else None)

    def push_waiting(self) -> bool:
        """Whether a push is waiting at the hold."""
        return (self.control / "held").exists()

    def freeze(self) -> None:
        """Serve a snapshot of the web root as it is now, whatever is deployed later."""
        shutil.rmtree(self.frozen_root, ignore_errors=True)
        shutil.copytree(self.webroot, self.frozen_root)
        self._switch("frozen", "frozen\n")

    def thaw(self) -> None:
        self._switch("frozen", None)
        shutil.rmtree(self.frozen_root, ignore_errors=True)

    def _switch(self, name: str, content: str | None) -> None:
        path = self.control / name
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(content, encoding="utf-8")

    def serving_root(self) -> Path:
        """The folder the server answers from right now."""
        return self.frozen_root if (self.control / "frozen").exists() else self.webroot

    # --- HTTP ----------------------------------------------------------------------------

    def serve(self, *, port: int = 0, host: str = "127.0.0.1") -> LocalServer:
        """Start an HTTP server for the web root in a thread; port 0 picks a free one."""
        return LocalServer(self.serving_root, host=host, port=port)


class LocalServer:
    """A static file server on loopback: Content-Type, Content-Length, HEAD, byte ranges."""

    def __init__(
        self, root: Path | Callable[[], Path], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._server = _Server((host, port), _StaticHandler)
        self._server.resolve_root = root if callable(root) else (lambda: root)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="shipyard-serve", daemon=True
        )
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}/"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    resolve_root: Callable[[], Path]  # the folder to serve, looked up on every request


class _StaticHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shipyard-localprod"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests and demo
        return

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def _answer(self, *, send_body: bool) -> None:
        path = self._file()
        if path is None:
            self._plain(HTTPStatus.NOT_FOUND, b"not found\n", send_body)
            return
        size = path.stat().st_size
        content_type = CONTENT_TYPES.get(path.suffix.lower()) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        start, end = 0, size - 1
        status = HTTPStatus.OK
        header = self.headers.get("Range")
        if header is not None:
            wanted = _parse_range(header, size)
            if isinstance(wanted, str):
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if wanted is not None:
                start, end = wanted
                status = HTTPStatus.PARTIAL_CONTENT
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "no-cache")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if send_body and length:
            with path.open("rb") as f:
                f.seek(start)
                _copy(f, self.wfile, length)

    def _file(self) -> Path | None:
        root = self.server.resolve_root()
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        if ".." in parts or any(p.startswith(".git") for p in parts):
            return None
        candidate = root.joinpath(*parts)
        if candidate.is_dir():
            candidate = candidate / "index.html"
            parts.append("index.html")
        if not candidate.is_file():
            return None
        # The site is untrusted: a link in the web root never leads anywhere, in or out.
        if any(root.joinpath(*parts[: i + 1]).is_symlink() for i in range(len(parts))):
            return None
        return None if candidate.stat().st_nlink > 1 else candidate

    def _plain(self, status: HTTPStatus, body: bytes, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """A single `bytes=` range as (start, end), "unsatisfiable", or None to ignore it."""
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # malformed or several ranges: answer the whole file (RFC 9110 allows it)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "unsatisfiable"
    return start, end


def _copy(source: BinaryIO, sink: BufferedIOBase, length: int) -> None:
    remaining = length
    while remaining > 0:
        chunk = source.read(min(_CHUNK, remaining))
        if not chunk:
            break
        sink.write(chunk)
        remaining -= len(chunk)


def _git(
    args: list[str],
    *,
    cwd: Path | None = None,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        timeout=GIT_TIMEOUT,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise ShipyardError(
            f"git {args[0]} failed in local production: "
            f"{result.stderr.decode(errors='replace').strip()}",
            code="localprod-git",
            hint="is git installed? see `shipyard doctor`",
        )
    return result.stdout.decode().strip()
