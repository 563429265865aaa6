"""What a guardrail finds: the flags a workflow's checks raise on a payload, which the review
gate shows to people and holds the run on. A module of its own, light to import: a process
that only reads or checks (the flagship's extraction child) loads no engine."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Flag", "Severity"]

Severity = Literal["error", "warning"]


class Flag(BaseModel):
    """One guardrail's finding about a payload: which check, how bad, and what. Workflows
    may subclass it to say where (the flagship adds the turn, the span and the evidence)."""

    model_config = ConfigDict(frozen=True)

    check: str
    severity: Severity
    message: str
