"""Write the two-host script: a chain of writers, checked, retried with feedback, budgeted.

The chain is `settings.script.writers`, tried in order, with "extractive" appended when it is not
listed, so the flow always ends on a writer that needs no model:

    "extractive"                              deterministic, offline: the paper's most
                                              informative sentences, framed as a conversation
    "openai:gpt-4o-mini", "anthropic:..."     any pydantic-ai model string (provider:model)
    "openai-compatible:MODEL@BASE_URL"        an OpenAI-compatible server: Ollama, vLLM,
                                              llama.cpp, e.g. "openai-compatible:llama3.1:8b@
                                              http://127.0.0.1:11434/v1"

Policy, per writer: write, run every check; an error-severity flag sends the script back to the
same writer with the failures as feedback (up to `max_attempts_per_writer` attempts); a writer
that raises (HTTP error, timeout, invalid structured output) or keeps failing hands over to the
next. When no script passes, the one with the fewest errors is returned with its flags, for the
review gate to show. The token and money budget is checked before every model request and
enforced during it; spending it raises BudgetExceeded and stops the chain.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from shipyard import BudgetExceeded, ConfigError, Quota, ShipyardError, record_event
from shipyard_podcast.errors import ScriptRejected, SourceRejected
from shipyard_podcast.language import language_name
from shipyard_podcast.models import (
    Attempt,
    Flag,
    Paper,
    Script,
    ScriptOutcome,
)
from shipyard_podcast.script.checks import (
    PAPER_CHECKS,
    check_script,
)
from shipyard_podcast.script.extractive import (
    EXTRACTIVE,
    ExtractiveWriter,
    extractive_phrasebook,
    write_extractive,
)
from shipyard_podcast.script.writing import (
    Budget,
    Feedback,
    Usage,
    Writer,
    WriterFailed,
    cost_of,
)
from shipyard_podcast.settings import ModelPrice, PodcastSettings

if TYPE_CHECKING:  # pydantic-ai (0.3 s, 20 MB) is imported where a model writer is built
    from pydantic_ai.messages import ModelResponse
    from pydantic_ai.models import Model

    from shipyard_podcast.script.journal import RequestJournal

__all__ = [
    "EXTRACTIVE",
    "Attempt",
    "ScriptOutcome",
    "build_writers",
    "episode_settings",
    "write_extractive",
    "write_script",
    "write_script_async",
    "writer_chain",
]

# --- the chain and its policy ---------------------------------------------------------------


def write_script(
    paper: Paper,
    settings: PodcastSettings,
    *,
    models: Mapping[str, Model] | None = None,
    journal: RequestJournal | None = None,
    quotas: Mapping[str, Quota] | None = None,
) -> ScriptOutcome:
    """Write and check a script for `paper` (see the module docstring for the policy).

    `models` replaces the model of a writer by its name in `settings.script.writers`; tests pass
    pydantic-ai's FunctionModel or TestModel here. With a `journal`, every model answer is
    written down as it arrives, and a request asked again (the step retried after a crash) is
    answered from it, not paid for twice. A writer in `quotas` holds its provider's limits
    (`provider_quotas`). Otherwise it has no side effects.
    """
    return run_sync(
        write_script_async(paper, settings, models=models, journal=journal, quotas=quotas)
    )


async def write_script_async(
    paper: Paper,
    settings: PodcastSettings,
    *,
    models: Mapping[str, Model] | None = None,
    journal: RequestJournal | None = None,
    quotas: Mapping[str, Quota] | None = None,
) -> ScriptOutcome:
    """`write_script` for callers already inside an event loop."""
    settings = episode_settings(paper, settings)
    budget = Budget(settings.script.max_tokens, settings.script.max_cost_usd)
    writers = build_writers(settings, models or {}, budget, journal, quotas)
    attempts: list[Attempt] = []
    drafts: list[tuple[Script, list[Flag]]] = []
    for writer in writers:
        feedback: Feedback | None = None
        for number in range(1, settings.script.max_attempts_per_writer + 1):
            usage = Usage()
            started = time.perf_counter()
            script: Script | None = None
            error: str | None = None
            flags: list[Flag] = []
            try:
                script = await writer.write(paper, feedback, usage)
            except WriterFailed as exc:
                error = str(exc)
            except BudgetExceeded as exc:
                attempts.append(_attempt(writer, number, usage, started, [], str(exc)))
                exc.message += f" (after {_spent(attempts)})"
                raise
            if script is not None:
                flags = check_script(script, paper, settings)
                drafts.append((script, flags))
            attempts.append(_attempt(writer, number, usage, started, flags, error))
            if script is None:
                break  # a model failure: the next writer, not the same one again
            errors = [f for f in flags if f.severity == "error" and f.check not in PAPER_CHECKS]
            if not errors:
                return ScriptOutcome(script=script, flags=flags, attempts=attempts)
            if feedback is not None and script == feedback.script:
                break  # the retry changed nothing: more of the same will not help
            feedback = Feedback(script, errors)
    # A script in another language than the episode's is no draft to review: it would be
    # that language's audio under this one's label.
    drafts = [(s, f) for s, f in drafts if not any(x.check == "language" for x in _errors(f))]
    if not drafts:  # the extractive writer cannot write this language, and no model wrote it
        reasons = [
            f"{a.writer}: "
            + (a.error or next(f.message for f in _errors(a.flags) if f.check == "language"))
            for a in attempts
        ]
        raise ScriptRejected(
            f"no writer wrote a script in {language_name(settings.show.language)}: "
            + "; ".join(dict.fromkeys(reasons)),
            code="no-script",
            hint="see each writer's reason; podcast.script.writers lists the writers tried",
        )
    best, best_flags = min(drafts, key=lambda d: (_count(d[1], "error"), _count(d[1], "warning")))
    return ScriptOutcome(script=best, flags=best_flags, attempts=attempts)


def episode_settings(
    paper: Paper, settings: PodcastSettings, name: str = "the paper"
) -> PodcastSettings:
    """The settings for `paper`'s episode, in its language (the show's, else the paper's):
    refused (SourceRejected, before any writing) where no writer of the chain writes that
    language or a host has no voice for it; never English audio under another label. A
    model writer writes any language; the extractive writer only the paper's own, and only
    with a phrasebook. `name` is what the refusal calls the paper."""
    language = settings.language_for(paper)
    said = f"{name} is in {language_name(paper.language)}" + (
        f" and its episode in {language_name(language)}" if language != paper.language else ""
    )
    if all(writer == EXTRACTIVE for writer in writer_chain(settings)):
        try:
            extractive_phrasebook(paper, language)
        except WriterFailed as exc:
            raise SourceRejected(
                f"{said}, which no writer can write", code="language", hint=str(exc)
            ) from None
    try:
        return settings.for_language(language)
    except ConfigError as exc:
        raise SourceRejected(f"{said}: {exc.message}", code="language", hint=exc.hint) from None


def writer_chain(settings: PodcastSettings) -> list[str]:
    """The writers in the order they are tried: the configured ones, then "extractive"."""
    chain = list(dict.fromkeys(w.strip() for w in settings.script.writers))
    return chain if EXTRACTIVE in chain else [*chain, EXTRACTIVE]


def _errors(flags: Sequence[Flag]) -> list[Flag]:
    return [f for f in flags if f.severity == "error"]


def _count(flags: Sequence[Flag], severity: str) -> int:
    return sum(f.severity == severity for f in flags)


def _spent(attempts: Sequence[Attempt]) -> str:
    tokens = sum(a.input_tokens + a.output_tokens for a in attempts)
    cost = sum(a.cost_usd for a in attempts)
    return f"{len(attempts)} attempt(s), {tokens} tokens, ${cost:.4f} spent"


def _attempt(
    writer: Writer,
    number: int,
    usage: Usage,
    started: float,
    flags: list[Flag],
    error: str | None,
) -> Attempt:
    return Attempt(
        writer=writer.name,
        attempt=number,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        requests=usage.requests,
        cost_usd=round(writer.cost(usage), 6),
        seconds=round(time.perf_counter() - started, 3),
        flags=flags,
        error=error,
    )


_T = TypeVar("_T")


def run_sync(coroutine: Coroutine[Any, Any, _T]) -> _T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from inside an event loop (an async caller using the sync API): run it beside.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def build_writers(
    settings: PodcastSettings,
    models: Mapping[str, Model],
    budget: Budget,
    journal: RequestJournal | None = None,
    quotas: Mapping[str, Quota] | None = None,
) -> list[Writer]:
    """Every writer of the chain, built and priced now, so a wrong setting fails at once.
    A writer that names a provider (`podcast.providers`) needs its quota in `quotas`."""
    writers: list[Writer] = []
    quotas = quotas or {}
    for name in writer_chain(settings):
        if name == EXTRACTIVE:
            writers.append(ExtractiveWriter(settings))
            continue
        from shipyard_podcast.script.llm_writer import (
            OPENAI_COMPATIBLE,
            JournaledModel,
            LLMWriter,
            model_for,
            openai_compatible_server,
            output_mode,
        )

        price = settings.script.prices[name]  # every model writer has one (ScriptConfig)
        if name in settings.providers and name not in quotas and name not in models:
            raise ShipyardError(
                f"writer {name!r} must hold provider {settings.providers[name]!r}'s limits, "
                "but no quota was given for it",
                code="no-quota",
                hint="pass quotas=provider_quotas(settings, config)",
            )
        model = models[name] if name in models else model_for(name, quotas.get(name))
        if journal is not None:
            writer = {
                "writer": name,
                "model": model.model_name,
                "base_url": str(model.base_url or ""),
                "mode": output_mode(name, settings),
            }
            seen, failed = _on_the_timeline(name, price)
            model = JournaledModel(model, journal, writer, seen, failed)
        server = (
            openai_compatible_server(name)
            if name.startswith(OPENAI_COMPATIBLE) and name not in models
            else None
        )
        writers.append(LLMWriter(name, model, price, settings, budget, server))
    return writers


def _on_the_timeline(
    writer: str, price: ModelPrice
) -> tuple[Callable[[ModelResponse, bool], None], Callable[[BaseException, int], None]]:
    """Puts each model request on the run's timeline, with its tokens and cost, and each one
    that failed, with its error and how many of this writer's have failed so far."""

    def seen(response: ModelResponse, replayed: bool) -> None:
        used = response.usage
        cost = cost_of(price, used.input_tokens, used.output_tokens)
        record_event(
            "model-request",
            f"{writer}: {used.input_tokens} tokens in, {used.output_tokens} out, ${cost:.4f}"
            + (" (answered from the journal: not asked again)" if replayed else ""),
            {
                "writer": writer,
                "input_tokens": used.input_tokens,
                "output_tokens": used.output_tokens,
                "cost_usd": cost,
                "replayed": replayed,
            },
        )

    def failed(error: BaseException, count: int) -> None:
        record_event(
            "model-request-failed",
            f"{writer}: request failed ({count} so far): {type(error).__name__}: {error}"[:500],
            {"writer": writer, "error": f"{type(error).__name__}: {error}"[:2000], "count": count},
        )

    return seen, failed
