"""shipyard's exceptions: one tree, so callers can tell misuse, failure and signals apart.

    ShipyardError                 every error shipyard raises; carries run, step, artifact, hint
    ├── ConfigError               misuse: a setting is missing or wrong (names the key and the file)
    ├── StepFailed                a step could not do its work
    │   ├── TransientError        worth retrying (a timeout, a busy provider, a moved git remote)
    │   │   └── StepTimeout       the step ran past its timeout
    │   └── PermanentError        retrying cannot help; the run fails at once (a workflow's own
    │       │                     rejections derive from it: the flagship's SourceRejected, ...)
    │       ├── PublishFailed     the release could not be committed or pushed
    │       └── BudgetExceeded    the run's token or money budget is spent
    ├── ReviewRejected            a reviewer rejected the run (an outcome, not a fault)
    └── RunNotFound               no run has that id

Every message says what is wrong; `hint` says what to do about it. The CLI prints both on one
line and exits non-zero; nothing catches these to carry on as if the step had worked. Both are
redacted when the error is made, so no credential travels with it (into logs, the ledger or
the engine's stored step outputs).
"""

from __future__ import annotations

from shipyard._redact import redact

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "PermanentError",
    "PublishFailed",
    "ReviewRejected",
    "RunNotFound",
    "ShipyardError",
    "StepFailed",
    "StepTimeout",
    "TransientError",
]


class ShipyardError(Exception):
    """Base of every shipyard error.

    `code` is a short stable identifier (`encrypted`, `push-rejected`, ...) that tests and
    programs can match on; the message is for people.
    """

    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        run_id: str | None = None,
        step: str | None = None,
        artifact: str | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(hint) if hint else hint
        if code is not None:
            self.code = code
        self.run_id = run_id
        self.step = step
        self.artifact = artifact

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __reduce__(self) -> tuple[object, ...]:  # keep errors picklable across processes
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[ShipyardError], message: str, state: dict[str, object]) -> ShipyardError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigError(ShipyardError):
    """A setting is missing or wrong. Raised at start-up, before any run begins."""

    code = "config"

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        file: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = " in ".join(part for part in (key and f"'{key}'", file) if part)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.key = key
        self.file = file


class StepFailed(ShipyardError):
    """A step could not do its work."""

    code = "step-failed"


class TransientError(StepFailed):
    """A failure that may pass: the step is retried with backoff."""

    code = "transient"


class StepTimeout(TransientError):
    """The step ran past its timeout."""

    code = "timeout"


class PermanentError(StepFailed):
    """A failure that retrying cannot fix: the run fails at once."""

    code = "permanent"


class PublishFailed(PermanentError):
    """The release could not be committed or pushed (and retrying will not help)."""

    code = "publish-failed"


class BudgetExceeded(PermanentError):
    """The run's token or money budget is spent."""

    code = "budget-exceeded"


class ReviewRejected(ShipyardError):
    """A reviewer rejected the run."""

    code = "rejected"


class RunNotFound(ShipyardError):
    """No run has the given id."""

    code = "run-not-found"
