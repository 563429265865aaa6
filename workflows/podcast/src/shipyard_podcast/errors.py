"""The flagship's rejections: permanent failures of its own stages, under the core's
`PermanentError` (retrying cannot help; the run fails at once, naming the problem and the fix).
"""

from __future__ import annotations

from shipyard import PermanentError

__all__ = ["AudioRejected", "ScriptRejected", "SourceRejected"]


class SourceRejected(PermanentError):
    """The input cannot be used: encrypted, scanned, empty, damaged, not a paper, too long..."""

    code = "source-rejected"


class ScriptRejected(PermanentError):
    """Every writer's script failed an error-severity check, and policy forbids sending it on."""

    code = "script-rejected"


class AudioRejected(PermanentError):
    """The mastered episode failed the integrity gate (silent, truncated, clipped, undecodable)."""

    code = "audio-rejected"
