"""The LLM writer against a real OpenAI-compatible HTTP server on loopback (the real client
library over real HTTP), in each structured-output mode, and with the faults local and hosted
servers have: 429 with Retry-After, 500/503, a timeout, truncated JSON, a refusal, an answer
that fails the checks; the budget held before a request leaves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shipyard import BudgetExceeded, Config, ProviderConfig, ShipyardError
from shipyard._providers import providers_table
from shipyard_podcast.models import ScriptOutcome
from shipyard_podcast.script.chain import write_script
from shipyard_podcast.script.journal import RequestJournal
from shipyard_podcast.settings import (
    ModelPrice,
    PodcastSettings,
    ScriptConfig,
    provider_quotas,
)
from tests.modelserver import Draft, Hang, ModelServer, Raw, Refusal, Reply, Status, model_server
from tests.test_script import GOOD_TURNS, WORDS_PER_MINUTE, draft, make_paper

GOOD = Draft(draft(GOOD_TURNS))
INVENTED = Draft(draft([*GOOD_TURNS[:5], "It cut the completion time by 47.5%.", GOOD_TURNS[6]]))


def writer(server: ModelServer) -> str:
    return f"openai-compatible:tiny@{server.url}"


def settings_for(server: ModelServer, **script: Any) -> PodcastSettings:
    name = writer(server)
    given: dict[str, Any] = {
        "target_minutes": 90 / WORDS_PER_MINUTE,
        "writers": [name],
        "prices": {name: ModelPrice(input_per_mtok=0, output_per_mtok=0)},
        "request_timeout_seconds": 5,
        **script,
    }
    return PodcastSettings(script=ScriptConfig(**given))


def write(server: ModelServer, **script: Any) -> ScriptOutcome:
    return write_script(make_paper(), settings_for(server, **script))


@pytest.mark.parametrize("mode", ["tool", "native", "prompted"])
def test_a_valid_script_in_each_output_mode(mode: str) -> None:
    with model_server(GOOD) as server:
        outcome = write(server, output_modes={f"openai-compatible:tiny@{server.url}": mode})
    assert outcome.passed and outcome.script.writer == writer(server), outcome.attempts
    assert [t.text for t in outcome.script.turns] == GOOD_TURNS
    assert [server.mode_of(r) for r in server.requests] == [mode]


def test_a_local_server_is_asked_for_schema_constrained_json_by_default() -> None:
    with model_server(GOOD) as server:
        outcome = write(server)
    assert outcome.passed
    (request,) = server.requests
    assert request["response_format"]["type"] == "json_schema"
    assert "turns" in str(request["response_format"]["json_schema"]["schema"])


def test_429_with_retry_after_is_waited_out() -> None:
    with model_server(Status(429, {"Retry-After": "1"}), GOOD) as server:
        outcome = write(server)
    assert outcome.passed and outcome.script.writer == writer(server)
    assert len(server.requests) == 2


@pytest.mark.parametrize("code", [500, 503])
def test_a_server_that_keeps_failing_hands_over_to_the_extractive_writer(code: int) -> None:
    with model_server(*[Status(code)] * 6) as server:
        outcome = write(server)
    assert outcome.script.writer == "extractive"
    assert str(code) in (outcome.attempts[0].error or "")
    assert 1 <= len(server.requests) <= 6  # the client's own retries, bounded


def test_a_server_that_does_not_answer_in_time_hands_over() -> None:
    with model_server(*[Hang(2.5)] * 3) as server:
        outcome = write(server, request_timeout_seconds=1)
    assert outcome.script.writer == "extractive"
    assert "timed out" in (outcome.attempts[0].error or "").lower()


def test_truncated_json_is_asked_again_then_handed_over() -> None:
    cut = Draft(GOOD.payload[: len(GOOD.payload) // 2])
    with model_server(cut, cut, cut, cut) as server:
        outcome = write(server)
    assert outcome.script.writer == "extractive"
    assert "invalid output" in (outcome.attempts[0].error or "")
    assert len(server.requests) == 2  # one retry of the output, then the next writer


def test_a_refusal_hands_over() -> None:
    with model_server(Refusal("I can't help with that."), Refusal("No.")) as server:
        outcome = write(server)
    assert outcome.script.writer == "extractive"
    assert outcome.attempts[0].error


def test_an_answer_that_fails_the_checks_is_retried_with_the_flags() -> None:
    with model_server(INVENTED, GOOD) as server:
        outcome = write(server)
    assert outcome.passed and outcome.script.writer == writer(server)
    assert [a.attempt for a in outcome.attempts] == [1, 2]
    retry = str(server.requests[1]["messages"])
    assert "failed these checks" in retry and "47.5%" in retry


def test_an_answer_that_keeps_failing_goes_to_the_next_writer() -> None:
    with model_server(INVENTED, INVENTED) as server:
        outcome = write(server)
    assert outcome.script.writer == "extractive"
    assert [a.writer for a in outcome.attempts][:2] == [writer(server)] * 2


def test_the_budget_stops_a_request_before_it_leaves() -> None:
    with model_server(GOOD) as server:
        name = writer(server)
        dear = {name: ModelPrice(input_per_mtok=10_000, output_per_mtok=10_000)}
        with pytest.raises(BudgetExceeded, match="budget is spent"):
            write(server, prices=dear, max_cost_usd=0.01)
    assert server.requests == []


def test_the_cost_is_charged_to_the_cent() -> None:
    with model_server(GOOD) as server:
        name = writer(server)
        price = {name: ModelPrice(input_per_mtok=2.5, output_per_mtok=10)}
        outcome = write(server, prices=price)
    # 1,000 tokens in at $2.50/M and 500 out at $10/M: $0.0075, as the server counted them.
    assert outcome.cost_usd == pytest.approx(0.0075)
    assert (outcome.input_tokens, outcome.output_tokens) == (1000, 500)


def test_a_writer_with_a_provider_holds_its_quota_and_waits_out_its_429(tmp_path: Path) -> None:
    with model_server(Status(429, {"Retry-After": "0.5"}), GOOD) as server:
        config = Config(
            root=tmp_path,
            providers={"local": ProviderConfig(concurrency=1)},  # type: ignore[dict-item]
        )
        settings = settings_for(server).model_copy(update={"providers": {writer(server): "local"}})
        quotas = provider_quotas(settings, config)
        outcome = write_script(make_paper(), settings, quotas=quotas)
        quota = quotas[writer(server)]
        with quota._engine.connect() as conn:
            paused_until = conn.scalar(
                sa.select(providers_table.c.paused_until).where(
                    providers_table.c.provider == "local"
                )
            )
    assert outcome.passed and outcome.script.writer == writer(server)
    assert len(server.requests) == 2
    assert paused_until > 0  # the 429 paused the provider, for every worker
    with pytest.raises(ShipyardError, match="no quota was given"):  # a caller that forgot
        write_script(make_paper(), settings)


def test_a_writer_whose_provider_stays_busy_hands_over(tmp_path: Path) -> None:
    with model_server(Status(429, {"Retry-After": "60"})) as server:
        config = Config(
            root=tmp_path,
            providers={"local": ProviderConfig(max_wait_seconds=1)},  # type: ignore[dict-item]
        )
        settings = settings_for(server).model_copy(update={"providers": {writer(server): "local"}})
        settings = settings.model_copy(
            update={
                "script": settings.script.model_copy(
                    update={"writers": [writer(server), "extractive"]}
                )
            }
        )
        outcome = write_script(make_paper(), settings, quotas=provider_quotas(settings, config))
    assert outcome.script.writer == "extractive"
    assert "no free call within 1 s" in (outcome.attempts[0].error or "")
    assert len(server.requests) == 1  # asked once, then left alone for the minute it asked


def test_a_server_that_refuses_json_schema_gets_the_form_it_takes_in_one_request() -> None:
    """llama-cpp-python's server answers 500 to json_schema; it holds an answer to a schema
    given as json_object + schema, and reads max_tokens. Found by probing, once."""
    with model_server(GOOD, GOOD, dialect="llama-cpp-python") as server:
        first, second = write(server), write(server)
    assert first.passed and second.passed and first.script.writer == writer(server)
    assert len(server.requests) == 2  # one request an attempt
    for request in server.requests:
        assert server.mode_of(request) == "json_object"
        assert "turns" in str(request["response_format"]["schema"])
        assert 0 < request["max_tokens"] < 20_000  # the cap, where this server reads it
    # asked how it takes a schema once (json_schema refused, json_object taken), remembered
    assert [server.mode_of(p) for p in server.probes] == ["native", "json_object"]


def test_a_server_that_holds_answers_to_no_schema_gets_it_in_the_prompt() -> None:
    with model_server(GOOD, dialect="prose") as server:
        outcome = write(server)
    assert outcome.passed, outcome.attempts
    (request,) = server.requests
    assert server.mode_of(request) == "prompted" and "turns" in str(request["messages"])
    assert len(server.probes) == 4  # every form tried once: none held


def test_the_context_a_server_reads_is_taken_from_it_and_a_long_paper_goes_in_parts() -> None:
    with model_server(dialect="vllm", context=300) as server:  # no answers: 500s after
        write(server, max_attempts_per_writer=1)
    assert "Plan the episode" in str(server.requests[0]["messages"])  # outline first


def test_a_request_past_the_servers_context_says_how_to_fit() -> None:
    refusal = Status(400, body="the request exceeds the available context size")
    with model_server(refusal, refusal, refusal) as server:
        outcome = write(server, max_attempts_per_writer=1)
    assert outcome.script.writer == "extractive"
    error = outcome.attempts[0].error or ""
    assert "more than the server reads" in error and "context_tokens" in error


LONG_TURN = Draft(
    json.dumps({"title": "t", "turns": [{"speaker": "Alex", "text": "word " * 1200}]})
)
MANY_TURNS = Draft(
    json.dumps(
        {
            "title": "t",
            "turns": [{"speaker": ("Alex", "Sam")[i % 2], "text": "Yes."} for i in range(2500)],
        }
    ),
    (1000, 20_000),
)
NO_CHOICES = Raw(
    {"id": "x", "object": "chat.completion", "created": 0, "model": "tiny", "choices": []}
)


@pytest.mark.parametrize(
    "bad", [LONG_TURN, MANY_TURNS, NO_CHOICES], ids=["6000-chars", "2500-turns", "no-choices"]
)
def test_an_answer_past_any_bound_is_a_failed_attempt_and_a_hand_over(bad: Reply) -> None:
    with model_server(bad, bad, bad) as server:
        outcome = write(server)
    assert outcome.script.writer == "extractive", outcome.attempts
    failed = outcome.attempts[0]
    assert failed.writer == writer(server) and failed.error, failed


def test_two_writers_of_one_model_name_are_each_asked_never_for_each_other(
    tmp_path: Path,
) -> None:
    with model_server(INVENTED) as primary, model_server(INVENTED) as backup:
        names = [writer(primary), writer(backup)]  # "tiny" on two servers
        settings = PodcastSettings(
            script=ScriptConfig(
                target_minutes=90 / WORDS_PER_MINUTE,
                writers=names,
                prices={n: ModelPrice(input_per_mtok=0, output_per_mtok=0) for n in names},
                max_attempts_per_writer=1,
                request_timeout_seconds=5,
            )
        )
        outcome = write_script(make_paper(), settings, journal=RequestJournal(tmp_path / "j"))
    assert [a.writer for a in outcome.attempts][:2] == names
    assert len(primary.requests) == 1 and len(backup.requests) == 1  # each asked itself


def test_an_output_mode_for_no_writer_of_the_chain_is_refused_when_read() -> None:
    name = "openai-compatible:tiny@http://127.0.0.1:9/v1"
    with pytest.raises(ValueError, match=r"not a model writer of podcast\.script\.writers"):
        ScriptConfig(
            writers=[name],
            prices={name: ModelPrice(input_per_mtok=0, output_per_mtok=0)},
            output_modes={f"{name}/": "tool"},  # a trailing slash: not the writer
        )
