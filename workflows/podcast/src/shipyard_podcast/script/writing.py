"""What every script writer shares: the writer's interface, the feedback a retry gets, the
run's token and money budget, and how a list of turns becomes a Script."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from shipyard import BudgetExceeded
from shipyard_podcast.models import (
    MAX_TURN_CHARS,
    Credits,
    Flag,
    Host,
    Paper,
    Script,
    Turn,
)
from shipyard_podcast.script.checks import estimated_seconds, says_line
from shipyard_podcast.settings import ModelPrice, PodcastSettings

if TYPE_CHECKING:  # pydantic-ai is imported where a model writer is built (0.3 s)
    from pydantic_ai.usage import UsageLimits

__all__ = ["Budget", "Feedback", "Usage", "Writer", "WriterFailed", "assemble_script", "cost_of"]


@dataclass(frozen=True, slots=True)
class Feedback:
    script: Script  # the script to revise: the previous attempt's, or the one under review
    errors: list[Flag]  # the flags to fix (the error-severity ones of a failed attempt)
    comment: str = ""  # a reviewer's request for changes, in their words


@dataclass
class Usage:
    """What a writer's attempt spent: tokens and requests (none, for a writer without a
    model)."""

    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0


class WriterFailed(Exception):
    """A writer produced no script (provider error, timeout, invalid output): try the next."""


class Writer(Protocol):
    name: str

    async def write(self, paper: Paper, feedback: Feedback | None, usage: Usage) -> Script: ...

    def cost(self, usage: Usage) -> float: ...


@dataclass
class Budget:
    """The run's token and money budget, shared by every model writer of the chain."""

    max_tokens: int
    max_cost_usd: float
    tokens: int = 0
    cost_usd: float = 0.0

    def before(
        self, writer: str, price: ModelPrice, input_tokens: int, output_tokens: int
    ) -> UsageLimits:
        """Refuse a request that cannot fit; otherwise the limits to hold it to while it runs."""
        from pydantic_ai.usage import UsageLimits

        tokens_left = self.max_tokens - self.tokens
        cost_left = self.max_cost_usd - self.cost_usd
        needed = input_tokens + output_tokens
        needed_cost = cost_of(price, input_tokens, output_tokens)
        if needed > tokens_left or needed_cost > cost_left:
            raise BudgetExceeded(
                f"the script budget is spent: {writer} needs about {needed} tokens "
                f"(${needed_cost:.4f}), and {max(tokens_left, 0)} tokens "
                f"(${max(cost_left, 0):.4f}) are left of {self.max_tokens} "
                f"(${self.max_cost_usd:.2f})",
                hint="raise podcast.script.max_tokens or podcast.script.max_cost_usd, or put a "
                "cheaper writer first in podcast.script.writers",
            )
        dearest = max(price.input_per_mtok, price.output_per_mtok) / 1e6
        affordable = math.floor(cost_left / dearest) if dearest else tokens_left
        return UsageLimits(total_tokens_limit=min(tokens_left, affordable), request_limit=4)

    def charge(self, price: ModelPrice, input_tokens: int, output_tokens: int) -> None:
        self.tokens += input_tokens + output_tokens
        self.cost_usd += cost_of(price, input_tokens, output_tokens)


def cost_of(price: ModelPrice, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1e6


def assemble_script(
    paper: Paper, settings: PodcastSettings, turns: list[Turn], writer: str, title: str
) -> Script:
    """A writer's turns as a Script. The AI disclosure is not left to a model: where the
    opening does not say it, it is put at the start of the first turn (WriterFailed where that
    turn has no room left for it)."""
    settings = settings.for_language(settings.language_for(paper))
    disclosure = settings.show.ai_disclosure
    if turns and not says_line(turns, disclosure, opening=True):
        first = turns[0]
        text = f"{disclosure} {first.text}"
        if len(text) > MAX_TURN_CHARS:
            raise WriterFailed("the first turn has no room left for the AI disclosure")
        turns = [first.model_copy(update={"text": text}), *turns[1:]]
    words = sum(len(t.text.split()) for t in turns)
    return Script(
        show=settings.show.title,
        title=title or paper.title.strip() or "An untitled paper",
        hosts=[Host(name=h.name, persona=h.persona, voice=h.voice) for h in settings.show.hosts],
        turns=turns,
        writer=writer,
        estimated_seconds=estimated_seconds(words, settings.show.language),
        language=settings.show.language,
        credits=Credits(title=paper.title, authors=paper.authors),
    )
