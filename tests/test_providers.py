"""Provider quotas: calls at once and per window held by every caller sharing the database, a
429's Retry-After waited out by all of them, a dead caller's slot freed by its lease, and
every mistake in naming a provider caught when the file is read."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from shipyard import (
    Config,
    ConfigError,
    ProviderConfig,
    TransientError,
    load_config,
    provider_quota,
)
from shipyard._providers import Quota
from shipyard._workflow import get_workflow
from shipyard_podcast.settings import podcast_settings, provider_quotas
from tests.conftest import fresh_database
from tests.fakeprovider import FakeProvider, fake_provider


def _config(tmp_path: Path, database_url: str = "", **limits: float) -> Config:
    return Config(
        root=tmp_path,
        state_dir=tmp_path / "state",
        engine={"database_url": database_url},  # type: ignore[arg-type]
        providers={"fake": ProviderConfig(**limits)},  # type: ignore[arg-type]
    )


def _hammer(config: Config, provider: FakeProvider, callers: int, calls: int) -> list[int]:
    """`callers` threads, each with its own quota and client, making `calls` requests."""
    statuses: list[int] = []

    def caller() -> None:
        with provider_quota("fake", config).http_client(timeout=30) as client:
            for _ in range(calls):
                statuses.append(client.post(provider.url, json={}).status_code)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_calls_at_once_and_per_window_are_never_exceeded(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    url = ""
    if database == "postgresql":
        url = fresh_database(request.getfixturevalue("postgres_url"), "quota")
    config = _config(tmp_path, url, concurrency=2, requests=6, period_seconds=1.0)
    with fake_provider(seconds=0.1) as provider:
        statuses = _hammer(config, provider, callers=5, calls=3)
    assert statuses == [200] * 15
    assert provider.most_at_once == 2
    # six at most in any window, less the time a request takes from its slot to the provider
    # (tens of ms on a loaded machine); a seventh let through would come in the same burst
    assert provider.most_in_any_window(0.8) <= 6
    assert max(provider.arrivals) - min(provider.arrivals) >= 2.0  # 15 calls, 6 a second


def test_a_429_pauses_every_caller_for_its_retry_after(tmp_path: Path) -> None:
    config = _config(tmp_path, concurrency=1)
    with fake_provider(seconds=0.05, refuse={1: 1.0}) as provider:
        statuses = _hammer(config, provider, callers=3, calls=2)
    assert statuses == [200] * 6  # the refused request was sent again, not failed
    refused_at = next(start for start, _, status in provider.answered if status == 429)
    later = provider.requests_after(refused_at)
    assert len(later) == 5 and min(later) >= refused_at + 1.0  # nobody called in the pause


def test_a_wait_past_max_wait_fails_the_call_as_transient(tmp_path: Path) -> None:
    config = _config(tmp_path, max_wait_seconds=0.5)
    with (
        fake_provider(refuse={0: 30}) as provider,
        provider_quota("fake", config).http_client() as client,
        pytest.raises(TransientError, match="no free call within"),
    ):
        client.post(provider.url, json={})
    assert len(provider.arrivals) == 1  # not asked again while it asked for quiet


def test_a_slot_of_a_caller_that_died_is_freed_by_its_lease(tmp_path: Path) -> None:
    config = _config(tmp_path, concurrency=1, lease_seconds=0.5, max_wait_seconds=10)
    quota = provider_quota("fake", config)
    before = time.monotonic()
    call, _ = quota._try_take()  # taken, never given back: its process was killed
    assert call is not None
    assert quota._try_take()[0] is None  # held
    with quota.slot():  # free once its lease has run out, however long the takes took
        held = time.monotonic() - before
    assert 0.45 < held < 5


def test_async_requests_hold_the_same_quota(tmp_path: Path) -> None:
    import asyncio

    config = _config(tmp_path, concurrency=1)

    async def main(url: str) -> list[int]:
        async with provider_quota("fake", config).async_http_client() as client:
            answers = await asyncio.gather(*(client.post(url, json={}) for _ in range(4)))
        return [a.status_code for a in answers]

    with fake_provider(seconds=0.1, refuse={0: 0.3}) as provider:
        assert asyncio.run(main(provider.url)) == [200] * 4
    assert provider.most_at_once == 1


# --- naming providers, checked when the file is read -----------------------------------------

WRITER = "openai-compatible:tiny@http://127.0.0.1:9/v1"


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "shipyard.toml"
    file.write_text(text, encoding="utf-8")
    return file


def _writer_naming(tmp_path: Path, provider: str) -> Path:
    """A config whose LLM writer names `provider`; `[providers.local]` allows 1 call at once."""
    return _write(
        tmp_path,
        f"""
[providers.local]
concurrency = 1

[podcast.script]
writers = ["{WRITER}", "extractive"]
prices."{WRITER}" = {{ input_per_mtok = 0, output_per_mtok = 0 }}

[podcast.providers]
"{WRITER}" = "{provider}"
""",
    )


def test_a_writer_naming_an_unconfigured_provider_is_refused_at_load(tmp_path: Path) -> None:
    file = _writer_naming(tmp_path, "locla")
    with pytest.raises(ConfigError, match="provider 'locla', which is not configured") as err:
        load_config(file)
    assert "podcast.providers" in str(err.value) and "local" in str(err.value)


def test_a_provider_for_what_is_neither_writer_nor_voice_is_refused(tmp_path: Path) -> None:
    file = _write(tmp_path, '[providers.local]\n[podcast.providers]\n"gpt-9" = "local"\n')
    with pytest.raises(ConfigError, match="neither a model writer"):
        load_config(file)


def test_provider_names_and_limits_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="provider name"):
        load_config(_write(tmp_path, '[providers."a b"]\n'))
    with pytest.raises(ConfigError, match=r"providers\.x\.concurrency"):
        load_config(_write(tmp_path, "[providers.x]\nconcurrency = -1\n"))


def test_a_configured_writer_and_voice_get_their_quotas(tmp_path: Path) -> None:
    file = _writer_naming(tmp_path, "local")
    config = load_config(file)
    quotas = provider_quotas(podcast_settings(config), config)
    assert list(quotas) == [WRITER] and isinstance(quotas[WRITER], Quota)
    assert quotas[WRITER].limits.concurrency == 1
    described = get_workflow("paper-to-podcast", config).describe
    assert described is not None  # what `shipyard show` prints
    assert described(config)["providers"] == {WRITER: "local: 1 at once"}


def test_a_voice_spoken_on_this_machine_takes_no_provider(tmp_path: Path) -> None:
    hosts = '[[podcast.show.hosts]]\nname = "Alex"\nvoice = "{}"\n'
    local = _write(
        tmp_path,
        "[providers.tts]\n"
        + hosts.format("espeak:en-us")
        + '[podcast.providers]\n"espeak:en-us" = "tts"\n',
    )
    with pytest.raises(ConfigError, match="spoken on this machine"):
        load_config(local)
    service = _write(
        tmp_path,
        "[providers.tts]\n"
        + hosts.format("kokoro:af_heart")
        + '[podcast.providers]\n"kokoro:af_heart" = "tts"\n',
    )
    config = load_config(service)
    assert list(provider_quotas(podcast_settings(config), config)) == ["kokoro:af_heart"]


def test_calls_in_flight_and_pauses_are_metrics(tmp_path: Path) -> None:
    from shipyard._ledger import Ledger
    from shipyard._prometheus import prometheus_text

    config = _config(tmp_path)
    quota = provider_quota("fake", config)
    ledger = Ledger(config.database_url)
    try:
        with quota.slot():
            held = prometheus_text(ledger).decode()
        after = prometheus_text(ledger).decode()
    finally:
        ledger.close()
    assert 'shipyard_provider_calls_in_flight{provider="fake"} 1.0' in held
    assert 'shipyard_provider_calls_in_flight{provider="fake"} 0.0' in after
