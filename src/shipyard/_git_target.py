"""The git target: stage, commit with trailers, push; idempotently (see `_targets`).

`GitTarget.publish` is a side effect that a durable step may run more than once (a crash
between commit and push, or between push and the step's checkpoint), so it is written to be
repeated safely:

1. the workspace is brought to the remote branch's tip (fetch, hard reset, clean), which
   throws away anything a crashed attempt left behind;
2. if the branch already has a commit whose `Shipyard-Run` trailer is this run's id and whose
   `Shipyard-File` trailers name the same files and hashes, nothing is done;
3. the files are written (each replaced atomically), and if that changes nothing, nothing is
   committed;
4. otherwise one commit is made and pushed. A push refused because the remote moved is
   followed by fetch + rebase (or, on a conflict, by staging the files again on the new tip)
   and another push, with backoff; a push the remote rejects for good raises PublishFailed
   with git's own words.

Every git call runs with a timeout and with `-c` settings that a user's global config cannot
override in ways that matter here (signing, hooks, line endings, prompts). Credentials in an
http(s) remote's URL (from `${NAME}` secrets) reach git in a header, never the clone's
configuration or a message.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

from shipyard._artifacts import sha256_file, write_atomically
from shipyard._config import Config
from shipyard._errors import ConfigError, PublishFailed, TransientError
from shipyard._secrets import expand_secrets
from shipyard._targets import FileSet, PublishResult, Site, mismatches, site_path
from shipyard._telemetry import span
from shipyard._text import one_line

__all__ = ["GitTarget"]

log = logging.getLogger("shipyard.publish")

RUN_TRAILER = "Shipyard-Run"
FILE_TRAILER = "Shipyard-File"
REMOVED_TRAILER = "Shipyard-Removed"


_TRAILER_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_GIT_SETTINGS = (
    "commit.gpgsign=false",
    "tag.gpgsign=false",
    "core.hooksPath=/dev/null",
    "core.autocrlf=false",
    "core.safecrlf=false",
    "core.fsmonitor=false",
    "core.quotePath=false",
    "advice.detachedHead=false",
    "rebase.autoStash=false",
    "rebase.autoSquash=false",
    "rebase.updateRefs=false",
    "pull.rebase=false",
    "fetch.prune=true",
    "push.default=nothing",
    "gc.auto=0",
    "protocol.file.allow=always",
    # Objects stored and sent without zlib: what a site holds is mostly media that does not
    # compress, and deflating it cost each publish 0.5 CPU-s for a 10 MB episode (#26).
    "core.compression=0",
)


def _without_credentials(remote: str) -> tuple[str, str]:
    """An http(s) remote without its `user:password@`, and the header that carries them."""
    parts = urlsplit(remote)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return remote, ""
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), f"Authorization: Basic {token}"


class GitTarget:
    """One branch of one git remote, staged through a private clone in `workspace`."""

    def __init__(
        self,
        remote: str,
        branch: str,
        workspace: Path,
        *,
        author_name: str = "shipyard",
        author_email: str = "shipyard@localhost",
        max_file_bytes: int = 100_000_000,
        timeout: float = 60.0,
        push_attempts: int = 5,
        backoff_seconds: float = 0.5,
        before_push: Callable[[str], None] | None = None,
    ) -> None:
        if not remote:
            raise ConfigError(
                "no remote given",
                key="publish.remote",
                hint="set publish.remote to the site repository's git URL or path",
            )
        if not branch or branch.startswith("-"):
            raise ConfigError(f"not a branch name: {branch!r}", key="publish.branch")
        # Credentials in an http(s) URL travel in a header given to each git process, never
        # in the clone's configuration (where git would keep them on disk).
        self.remote, self._authorization = _without_credentials(remote)
        self.branch = branch
        self.workspace = workspace
        self.author_name = author_name
        self.author_email = author_email
        self.max_file_bytes = max_file_bytes
        self.timeout = timeout
        self.push_attempts = push_attempts
        self.backoff_seconds = backoff_seconds
        # Called with the local commit before each push attempt: a seam for instrumentation
        # and for tests that make the remote move, or the process die, at exactly that point.
        self.before_push = before_push

    @classmethod
    def from_config(cls, config: Config, *, workspace: Path | None = None) -> GitTarget:
        """The target `[publish]` describes, staged in the state folder's `site` clone."""
        publish = config.publish
        if not publish.remote:
            raise ConfigError(
                "no site repository configured",
                key="publish.remote",
                hint="set it in shipyard.toml, or run `shipyard init --local-production`",
            )
        remote = expand_secrets(publish.remote, key="publish.remote")
        if "://" not in remote and not remote.startswith("git@"):
            remote = str(config.resolve(remote))
        return cls(
            remote,
            publish.branch,
            workspace or config.state_folder("site"),
            author_name=publish.author_name,
            author_email=publish.author_email,
            max_file_bytes=publish.max_file_bytes,
        )

    def __repr__(self) -> str:
        return f"GitTarget({self.remote!r}, {self.branch!r})"

    # --- public API ----------------------------------------------------------------------

    def publish(
        self,
        files: FileSet | Callable[[Site], FileSet],
        *,
        run_id: str,
        message: str,
        trailers: Mapping[str, str] | None = None,
        remove: Sequence[str] = (),
    ) -> PublishResult:
        """Put `files` on the remote branch in one commit carrying `run_id`; remove `remove`.

        `files` may be a function of the site (checked out at the remote tip) returning the
        files: it is called again whenever the remote moved under a conflicting change, so
        content derived from what is already there (a feed, a manifest) is derived afresh.
        """
        _check_trailer_value(RUN_TRAILER, run_id)
        extra = dict(trailers or {})
        for key, value in extra.items():
            if not _TRAILER_KEY.match(key):
                raise ConfigError(f"not a valid git trailer key: {key!r}")
            _check_trailer_value(key, value)
        removals = sorted({site_path(p) for p in remove})
        with self._locked():
            self._sync()
            staged = self._stage(files, removals)
            mine = _file_trailers(staged, removals)
            found = self.find_run_commit(run_id, mine)
            if found is not None:
                log.info("publish: %s already carries run %s (%s)", self, run_id, found[:12])
                return PublishResult(found, pushed=False, already_published=True)
            if not self._has_changes():
                tip = self._rev("HEAD")
                log.info("publish: %s already serves these files at %s", self, tip[:12])
                return PublishResult(tip, pushed=False, already_published=True)
            body = _commit_message(message, [(RUN_TRAILER, run_id), *mine, *extra.items()])
            self._commit(body)
            return self._push(files, removals, body, run_id, mine)

    def checkout(self) -> Path:
        """Bring the workspace to the remote branch's tip and return it (for reading)."""
        with self._locked():
            self._sync()
        return self.workspace

    def site(self) -> Site:
        """The site at the remote branch's tip."""
        return _Checkout(self.checkout())

    def missing(self, files: Mapping[str, str]) -> list[str]:
        """Of `files` (path -> SHA-256), those the branch's tip does not hold with those bytes."""
        tip = self.checkout()

        def held(path: str) -> str | None:
            return sha256_file(tip / path) if (tip / path).is_file() else None

        return mismatches(files, held, self.branch)

    def find_run_commit(
        self, run_id: str, file_trailers: Sequence[tuple[str, str]] | None = None
    ) -> str | None:
        """The newest commit on the fetched remote branch whose trailers carry `run_id` (and,
        when given, exactly these file trailers)."""
        if not self._remote_branch_exists():
            return None
        out = self._git(
            "log",
            "--fixed-strings",
            f"--grep={RUN_TRAILER}: {run_id}",
            "--format=%H%x00%(trailers:only,unfold)%x1e",
            f"refs/remotes/origin/{self.branch}",
        ).stdout
        wanted = sorted(file_trailers) if file_trailers is not None else None
        for record in out.split("\x1e"):
            if "\x00" not in record:
                continue
            commit, block = record.strip().split("\x00", 1)
            pairs = _parse_trailers(block)
            if (RUN_TRAILER, run_id) not in pairs:
                continue
            files = sorted(p for p in pairs if p[0] in (FILE_TRAILER, REMOVED_TRAILER))
            if wanted is None or files == wanted:
                return commit
        return None

    # --- staging -------------------------------------------------------------------------

    def _sync(self) -> None:
        """Make the workspace an exact copy of the remote branch's tip."""
        ws = self.workspace
        if not (ws / ".git").is_dir():
            if ws.exists() and any(ws.iterdir()):
                raise ConfigError(
                    f"publish workspace {ws} exists and is not a git clone",
                    hint="point it at an empty folder or delete it; shipyard owns that folder",
                )
            ws.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet", f"--initial-branch={self.branch}")
            self._git("remote", "add", "origin", self.remote)
        self._recover_from_crash()
        self._git("remote", "set-url", "origin", self.remote)
        self._fetch()
        if self._remote_branch_exists():
            self._git(
                "checkout",
                "--quiet",
                "--force",
                "-B",
                self.branch,
                f"refs/remotes/origin/{self.branch}",
            )
            self._git("reset", "--quiet", "--hard", f"refs/remotes/origin/{self.branch}")
        else:  # an empty remote: the first commit starts the branch
            self._git("checkout", "--quiet", "--force", "--orphan", self.branch)
            self._git("rm", "-r", "--quiet", "--cached", "--ignore-unmatch", ".")
        self._git("clean", "-ffdxq")
        self._refuse_links()

    def _refuse_links(self) -> None:
        """The site repository is untrusted: a symbolic link (or a hard link) in it would let a
        commit make publishing write, or read, outside the workspace. Refused before anything
        is read or written."""
        for folder, dirs, files in os.walk(self.workspace):
            here = Path(folder)
            dirs[:] = [d for d in dirs if not (here == self.workspace and d == ".git")]
            for name in [*dirs, *files]:
                path = here / name
                linked = path.is_symlink() or (path.is_file() and path.stat().st_nlink > 1)
                if linked:
                    kind = "a symbolic link" if path.is_symlink() else "a hard link"
                    raise PublishFailed(
                        f"the site repository has {kind} at "
                        f"{path.relative_to(self.workspace)}; publishing never writes or reads "
                        "through links",
                        code="link-in-site",
                        hint="replace the link with a real file or folder in the site "
                        "repository, then run again",
                    )

    def _recover_from_crash(self) -> None:
        git_dir = self.workspace / ".git"
        (git_dir / "index.lock").unlink(missing_ok=True)  # we hold the workspace lock
        if (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists():
            self._git("rebase", "--abort", check=False)

    def _fetch(self) -> None:
        result = self._git(
            "fetch",
            "--quiet",
            "--no-tags",
            "origin",
            f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}",
            check=False,
        )
        if result.returncode == 0:
            return
        if "couldn't find remote ref" in result.stderr:
            self._git("update-ref", "-d", f"refs/remotes/origin/{self.branch}", check=False)
            return
        raise TransientError(
            f"could not fetch {self.remote}: {_tail(result.stderr)}",
            code="fetch-failed",
            hint="check the remote URL, the network and the credentials",
        )

    def _stage(
        self, files: FileSet | Callable[[Site], FileSet], removals: Sequence[str]
    ) -> dict[str, str]:
        """Write the files into the worktree; return path -> sha256 of what was written."""
        chosen = files(_Checkout(self.workspace)) if callable(files) else files
        staged: dict[str, str] = {}
        for raw_path, content in sorted(chosen.items()):
            path = site_path(raw_path)
            size = content.stat().st_size if isinstance(content, Path) else len(content)
            if size > self.max_file_bytes:
                raise PublishFailed(
                    f"{path} is {size:,} bytes, over the host's limit of "
                    f"{self.max_file_bytes:,} bytes",
                    code="file-too-large",
                    hint="lower the audio bitrate or raise publish.max_file_bytes if the host "
                    "allows it (GitHub rejects files over 100 MB)",
                )
            staged[path] = self._write(path, content)
        for path in removals:
            if path in staged:
                raise ConfigError(f"{path} is both published and removed in one commit")
            (self.workspace / path).unlink(missing_ok=True)
        if staged:
            self._git("add", "--all", "--", *staged)
        if removals:
            self._git("rm", "--quiet", "--cached", "--ignore-unmatch", "--", *removals)
        return staged

    def _write(self, path: str, content: bytes | Path) -> str:
        digest = hashlib.sha256()

        def write(out: BinaryIO) -> None:
            if isinstance(content, Path):
                with content.open("rb") as src:
                    while chunk := src.read(1 << 20):
                        digest.update(chunk)
                        out.write(chunk)
            else:
                digest.update(content)
                out.write(content)

        write_atomically(self.workspace / path, write)
        return digest.hexdigest()

    def _has_changes(self) -> bool:
        return self._git("diff", "--cached", "--quiet", check=False).returncode != 0

    def _commit(self, body: str) -> None:
        self._git("commit", "--quiet", "--no-verify", "--file=-", input=body)

    # --- pushing -------------------------------------------------------------------------

    def _push(
        self,
        files: FileSet | Callable[[Site], FileSet],
        removals: Sequence[str],
        body: str,
        run_id: str,
        mine: Sequence[tuple[str, str]],
    ) -> PublishResult:
        delay = self.backoff_seconds
        last = ""
        for attempt in range(1, self.push_attempts + 1):
            if self.before_push is not None:
                self.before_push(self._rev("HEAD"))
            with span("git push", attempt=attempt, branch=self.branch):
                result = self._git(
                    "push", "--porcelain", "origin", f"HEAD:refs/heads/{self.branch}", check=False
                )
            if result.returncode == 0:
                commit = self._rev("HEAD")
                log.info("publish: pushed %s to %s", commit[:12], self)
                return PublishResult(commit, pushed=True, already_published=False)
            status = _push_status(result.stdout)
            last = _tail(f"{status}\n{result.stderr}")
            if _rejected_for_good(status, result.stderr):
                raise PublishFailed(
                    f"{self.remote} rejected the push of run {run_id}: {last}",
                    code="push-rejected",
                    hint="the remote refuses this change (a hook, branch protection or "
                    "permissions); fix that on the host, then resume the run",
                )
            log.info("publish: push attempt %d to %s failed: %s", attempt, self, last)
            if attempt == self.push_attempts:
                break
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
            self._fetch()
            found = self.find_run_commit(run_id, mine)
            if found is not None:  # an earlier attempt landed after all
                return PublishResult(found, pushed=True, already_published=False)
            moved = self._remote_branch_exists() and not self._is_ancestor(
                f"refs/remotes/origin/{self.branch}", "HEAD"
            )
            if moved and not self._catch_up(files, removals, body):
                tip = self._rev("HEAD")
                return PublishResult(tip, pushed=False, already_published=True)
        raise TransientError(
            f"could not push run {run_id} to {self.remote} after "
            f"{self.push_attempts} attempts: {last}",
            code="push-failed",
            hint="the remote kept moving or was unreachable; retry later",
        )

    def _catch_up(
        self, files: FileSet | Callable[[Site], FileSet], removals: Sequence[str], body: str
    ) -> bool:
        """The remote moved: put our commit on its new tip (rebase, or stage afresh).

        False when the new tip already holds our files, so there is nothing left to push."""
        upstream = f"refs/remotes/origin/{self.branch}"
        rebased = self._git("rebase", "--quiet", upstream, check=False)
        if rebased.returncode == 0:
            log.info("publish: rebased onto %s", self._rev(upstream)[:12])
            if not callable(files):
                return True
            # Content derived from the tree (a feed from a manifest) must still hold on it.
            self._stage(files, removals)
            if not self._has_changes():
                return True
        else:
            self._git("rebase", "--abort", check=False)
        # A conflicting change, or derived content that moved: stage afresh on the new tip.
        self._git("reset", "--quiet", "--hard", upstream)
        self._git("clean", "-ffdxq")
        self._stage(files, removals)
        if not self._has_changes():
            return False
        self._commit(body)
        return True

    # --- git -----------------------------------------------------------------------------

    def _remote_branch_exists(self) -> bool:
        ref = f"refs/remotes/origin/{self.branch}"
        result = self._git("rev-parse", "--verify", "--quiet", ref, check=False)
        return result.returncode == 0

    def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        result = self._git("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        return result.returncode == 0

    def _rev(self, ref: str) -> str:
        return self._git("rev-parse", ref).stdout.strip()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One publisher per workspace at a time (across processes)."""
        self.workspace.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.workspace.parent / f".{self.workspace.name}.lock"
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _git(self, *args: str, check: bool = True, input: str | None = None) -> _Completed:
        command = ["git"]
        for setting in (
            *_GIT_SETTINGS,
            f"user.name={self.author_name}",
            f"user.email={self.author_email}",
        ):
            command += ["-c", setting]
        command += args
        env = {
            **os.environ,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "LANG": "C",
            "GIT_EDITOR": "true",
            "GIT_SEQUENCE_EDITOR": "true",
            "GIT_AUTHOR_NAME": self.author_name,
            "GIT_AUTHOR_EMAIL": self.author_email,
            "GIT_COMMITTER_NAME": self.author_name,
            "GIT_COMMITTER_EMAIL": self.author_email,
        }
        for leaked in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            env.pop(leaked, None)
        if self._authorization:
            env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": self._authorization,
            }
        try:
            done = subprocess.run(
                command,
                cwd=self.workspace,
                input=input,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TransientError(
                f"git {args[0]} on {self.remote} ran past {self.timeout:g}s",
                code="git-timeout",
                hint="the remote is slow or unreachable; retry later",
            ) from None
        except FileNotFoundError:
            raise PublishFailed(
                "git is not installed",
                code="git-missing",
                hint="install git (scripts/install-system-deps)",
            ) from None
        result = _Completed(done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise PublishFailed(
                f"git {args[0]} failed: {_tail(done.stderr or done.stdout)}",
                code="git-failed",
                hint="see the git message; the workspace is reset next time",
            )
        return result


@dataclass(frozen=True, slots=True)
class _Checkout:
    """The site as the workspace holds it (links were refused when it was synced)."""

    workspace: Path

    def read(self, path: str) -> bytes | None:
        file = self.workspace / site_path(path)
        return file.read_bytes() if file.is_file() else None


@dataclass(frozen=True, slots=True)
class _Completed:
    returncode: int
    stdout: str
    stderr: str


def _check_trailer_value(key: str, value: str) -> None:
    if not value or "\n" in value or "\r" in value:
        raise ConfigError(f"trailer {key} needs a one-line, non-empty value, got {value!r}")


def _file_trailers(staged: Mapping[str, str], removals: Sequence[str]) -> list[tuple[str, str]]:
    pairs = [(FILE_TRAILER, f"{path} sha256:{sha}") for path, sha in staged.items()]
    pairs += [(REMOVED_TRAILER, path) for path in removals]
    return sorted(pairs)


def _commit_message(message: str, trailers: Sequence[tuple[str, str]]) -> str:
    # One line, whatever the message held: a title with a newline must not become trailers.
    subject = one_line(message) or "Publish"
    return subject + "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers) + "\n"


def _parse_trailers(block: str) -> list[tuple[str, str]]:
    pairs = []
    for line in block.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


def _rejected_for_good(status: str, stderr: str) -> bool:
    """The remote refused the change itself (a hook, protection, permissions), as opposed
    to a race with another push or an unreachable host."""
    if "[remote rejected]" not in status and "pre-receive hook declined" not in stderr:
        refusals = ("Permission denied", "returned error: 403", "Authentication failed")
        return any(refusal in stderr for refusal in refusals)
    races = ("failed to update ref", "failed to lock", "cannot lock ref", "incorrect old value")
    return not any(race in status or race in stderr for race in races)


def _push_status(porcelain: str) -> str:
    """The ref status lines of `git push --porcelain`."""
    return "\n".join(line for line in porcelain.splitlines() if line[:1] in ("!", "=", " ", "*"))


def _tail(text: str, limit: int = 1500) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]
