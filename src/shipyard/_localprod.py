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
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard._errors import ShipyardError
from shipyard._serving import serve_in_thread

__all__ = ["CONTENT_TYPES", "LocalProduction", "LocalServer", "site_app"]

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
        readme = b"# Site\n\nPublished by shipyard.\n"
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
    """The web root served on loopback by uvicorn in a thread (`site_app`); port 0 picks a
    free one. `url` is where it answers."""

    def __init__(
        self, root: Path | Callable[[], Path], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._server, self._thread, bound = serve_in_thread(
            site_app(root if callable(root) else (lambda: root)), host, port
        )
        self.url = f"http://{host}:{bound}/"
        self.port = bound

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def site_app(resolve_root: Callable[[], Path]) -> ASGIApp:
    """A static site as an ASGI app: Content-Type, Content-Length, HEAD, single byte ranges,
    no caching; the folder is looked up on every request. The site is untrusted: a path
    through a link, a hard-linked file or anything under `.git` is not found."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            response: Response = PlainTextResponse("method not allowed\n", status_code=405)
        else:
            path = _file(resolve_root(), scope.get("path", "/"))
            headers = dict(
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
            )
            response = (
                PlainTextResponse("not found\n", status_code=404)
                if path is None
                else _file_response(path, headers.get("range"), send_body=method == "GET")
            )
        await response(scope, receive, send)

    return app


def _file(root: Path, request_path: str) -> Path | None:
    relative = unquote(request_path).lstrip("/")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts or any(p.startswith(".git") for p in parts):
        return None
    candidate = root.joinpath(*parts)
    if candidate.is_dir():
        candidate = candidate / "index.html"
        parts.append("index.html")
    if not candidate.is_file():
        return None
    # A link in the web root never leads anywhere, in or out.
    if any(root.joinpath(*parts[: i + 1]).is_symlink() for i in range(len(parts))):
        return None
    return None if candidate.stat().st_nlink > 1 else candidate


def _file_response(path: Path, range_header: str | None, *, send_body: bool) -> Response:
    size = path.stat().st_size
    content_type = CONTENT_TYPES.get(path.suffix.lower()) or (
        mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    start, end, status = 0, size - 1, 200
    wanted = _parse_range(range_header, size) if range_header is not None else None
    if wanted == "unsatisfiable":
        return Response(b"", status_code=416, headers={"Content-Range": f"bytes */{size}"})
    if isinstance(wanted, tuple):
        (start, end), status = wanted, 206
    length = max(0, end - start + 1)
    headers = {
        "Content-Length": str(length),
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-cache",
    }
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    async def body() -> AsyncIterator[bytes]:
        if not send_body:
            return
        with path.open("rb") as f:
            f.seek(start)
            remaining = length
            while remaining > 0 and (chunk := f.read(min(_CHUNK, remaining))):
                remaining -= len(chunk)
                yield chunk

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=content_type)


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
