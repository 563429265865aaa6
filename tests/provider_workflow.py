"""`provider-calls`: a workflow that only calls a provider, each call a step holding the quota
of `[providers.fake]`. Its input is {"url": ..., "calls": N}. For the tests and the benchmark
of workers that share a provider's limits; a project names it in `workflows.modules`."""

from __future__ import annotations

from typing import Any

from shipyard import (
    Config,
    JsonInput,
    Run,
    RunState,
    TransientError,
    provider_quota,
    set_run_state,
    step,
    workflow,
)

PROVIDER = "fake"


@step(attempts=3)
def call(url: str, number: int, config: Config) -> int:
    """One request to the provider, within its quota; a 5xx is tried again."""
    with provider_quota(PROVIDER, config).http_client(timeout=60) as client:
        answer = client.post(url, json={"call": number})
    if answer.status_code >= 500:
        raise TransientError(f"the provider answered {answer.status_code}")
    answer.raise_for_status()
    return int(answer.json()["n"])


@workflow(name="provider-calls", accepts="json", input_help='{"url": URL, "calls": N}')
def provider_calls(run: Run[JsonInput, None]) -> dict[str, Any]:
    """Call the provider N times, one after another."""
    given = run.input.data
    answers = [call(given["url"], number, run.config) for number in range(int(given["calls"]))]
    result = {"answers": answers}
    set_run_state(RunState.VERIFIED.value, "", "", result)
    return result
