"""Provider quotas: limits on calls to one service (a model server, a speech API) that every
process sharing the database holds together (`[providers.NAME]`): how many calls at once, how
many start in any window of time, and the pause a 429's `Retry-After` puts on all of them.

The quota lives in the system database beside the ledger. Each call holds a row while it runs
(its slot); the rows started within the window are its rate. Taking a slot is one short
transaction that locks the provider's row first, so processes on several machines take turns
and never exceed the limits together; the time is the database's, so their clocks need not
agree. A process killed mid-call holds its slot until the lease ends (`lease_seconds`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
import httpx2
import sqlalchemy as sa

from shipyard._config import Config, ProviderConfig
from shipyard._errors import ConfigError, TransientError
from shipyard._ledger import create_tables, database_engine
from shipyard._record import record_event

__all__ = ["Quota", "provider_quota"]

_meta = sa.MetaData()

calls_table = sa.Table(
    "shipyard_provider_calls",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(200), nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
)

providers_table = sa.Table(  # one row a provider: locked to take turns, and its pause
    "shipyard_providers",
    _meta,
    sa.Column("provider", sa.String(200), primary_key=True),
    sa.Column("paused_until", sa.Float, nullable=False, default=0.0),
)

_POLL_S = (0.03, 0.12)  # between looks for a free slot: short, jittered
_BACKOFF_MAX_S = 60.0  # a 429 without Retry-After waits 1, 2, 4... s, at most this

_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()


def provider_quota(name: str, config: Config) -> Quota:
    """The quota of `[providers.NAME]`, held in the configuration's database."""
    if name not in config.providers:
        known = ", ".join(sorted(config.providers)) or "none"
        raise ConfigError(
            f"names provider {name!r}, which is not configured (configured: {known})",
            key=f"providers.{name}",
            hint=f"add [providers.{name}] with its limits (docs/configuration.md)",
        )
    config.state.mkdir(parents=True, exist_ok=True)  # where SQLite keeps the database
    return Quota(name, config.providers[name], _engine(config.database_url))


class Quota:
    """One provider's limits, held across every process that shares the database."""

    def __init__(self, name: str, limits: ProviderConfig, engine: sa.Engine) -> None:
        self.name, self.limits, self._engine = name, limits, engine
        self._postgres = engine.dialect.name == "postgresql"
        with engine.begin() as conn:
            present = conn.scalar(
                sa.select(sa.func.count()).where(providers_table.c.provider == name)
            )
        if not present:
            try:
                with engine.begin() as conn:
                    conn.execute(providers_table.insert().values(provider=name, paused_until=0.0))
            except sa.exc.IntegrityError:
                pass  # another process made it first

    @contextmanager
    def slot(self, deadline: float | None = None) -> Iterator[None]:
        """Hold one call's slot: wait, as long as `max_wait_seconds` or until `deadline`
        (time.monotonic), for the limits to allow a call; free it when the call ends."""
        call = self._take(self._deadline(deadline))
        try:
            yield
        finally:
            self._give_back(call)

    def pause(self, seconds: float, why: str) -> None:
        """No process starts a call for `seconds` (the provider asked: 429, `Retry-After`)."""
        with self._engine.begin() as conn:
            until = self._now(conn) + seconds
            conn.execute(
                providers_table.update()
                .where(providers_table.c.provider == self.name)
                .where(providers_table.c.paused_until < until)
                .values(paused_until=until)
            )
        record_event(
            "provider-paused",
            f"{self.name} asked every worker to wait {seconds:.1f} s ({why}); not a failure",
            {"provider": self.name, "seconds": seconds},
        )

    def http_client(self, **options: Any) -> httpx.Client:
        """An httpx client whose every request holds a slot and waits out 429s."""
        return httpx.Client(transport=_Limited(self, httpx.HTTPTransport()), **options)

    def async_http_client(self, **options: Any) -> httpx2.AsyncClient:
        """The same, async, in httpx2 (what pydantic-ai's providers take)."""
        return httpx2.AsyncClient(
            transport=_AsyncLimited(self, httpx2.AsyncHTTPTransport()), **options
        )

    # --- the database's side -------------------------------------------------------------

    def _deadline(self, deadline: float | None) -> float:
        return time.monotonic() + self.limits.max_wait_seconds if deadline is None else deadline

    def _take(self, deadline: float) -> int:
        while True:
            call, wait = self._try_take()
            if call is not None:
                return call
            self._check_wait(wait, deadline)
            time.sleep(wait)

    async def _take_async(self, deadline: float) -> int:
        while True:
            call, wait = await anyio.to_thread.run_sync(self._try_take)
            if call is not None:
                return call
            self._check_wait(wait, deadline)
            await anyio.sleep(wait)

    def _check_wait(self, wait: float, deadline: float) -> None:
        if time.monotonic() + wait > deadline:
            raise TransientError(
                f"provider {self.name!r} had no free call within "
                f"{self.limits.max_wait_seconds:.0f} s (its limits, or its own request to wait)",
                hint=f"the step tries again; if this repeats, raise [providers.{self.name}] "
                "limits or max_wait_seconds, or add workers' capacity at the provider",
            )

    def _try_take(self) -> tuple[int | None, float]:
        """A slot taken now (its row), or how long to wait before looking again."""
        limits, name, calls = self.limits, self.name, calls_table
        with self._engine.begin() as conn:
            # Lock the provider's row: every process taking a slot takes turns here.
            conn.execute(
                providers_table.update()
                .where(providers_table.c.provider == name)
                .values(paused_until=providers_table.c.paused_until)
            )
            now = self._now(conn)
            paused_until = conn.scalar(
                sa.select(providers_table.c.paused_until).where(providers_table.c.provider == name)
            )
            if paused_until is not None and paused_until > now:
                return None, paused_until - now
            running = (calls.c.ended_at.is_(None)) & (calls.c.lease_until > now)
            conn.execute(  # forget calls that count for nothing any more
                calls.delete()
                .where(calls.c.provider == name)
                .where(calls.c.started_at <= now - limits.period_seconds)
                .where(~running)
            )
            if limits.concurrency:
                busy = conn.scalar(
                    sa.select(sa.func.count()).where(calls.c.provider == name).where(running)
                )
                if (busy or 0) >= limits.concurrency:
                    return None, random.uniform(*_POLL_S)
            if limits.requests:
                recent = conn.scalars(
                    sa.select(calls.c.started_at)
                    .where(calls.c.provider == name)
                    .where(calls.c.started_at > now - limits.period_seconds)
                    .order_by(calls.c.started_at.desc())
                    .limit(limits.requests)
                ).all()
                if len(recent) >= limits.requests:  # free when the oldest leaves the window
                    return None, recent[-1] + limits.period_seconds - now + 0.001
            call = conn.execute(
                calls.insert().values(
                    provider=name, started_at=now, lease_until=now + limits.lease_seconds
                )
            ).inserted_primary_key
            assert call is not None
            return int(call[0]), 0.0

    def _give_back(self, call: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                calls_table.update()
                .where(calls_table.c.id == call)
                .values(ended_at=self._now(conn))
            )

    def _now(self, conn: sa.Connection) -> float:
        """The database's clock on PostgreSQL (shared by every machine), else this one's."""
        if self._postgres:
            return float(conn.scalar(sa.text("SELECT extract(epoch FROM clock_timestamp())")))
        return time.time()


def retry_after(response: httpx.Response | httpx2.Response, tries: int) -> float:
    """How long a 429 asks to wait: `Retry-After` in seconds or as a date, else 1, 2, 4... s."""
    given = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(given))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(given).timestamp() - time.time())
    except (TypeError, ValueError):
        return min(_BACKOFF_MAX_S, 2.0**tries)


class _Limited(httpx.BaseTransport):
    """Each request holds a slot until its answer is read; a 429 pauses every process for
    its `Retry-After` and the request is sent again, all within the quota's wait."""

    def __init__(self, quota: Quota, inner: httpx.BaseTransport) -> None:
        self.quota, self.inner = quota, inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = self.quota._deadline(None)
        tries = 0
        while True:
            with self.quota.slot(deadline):  # paused before the slot is free for another
                response = self.inner.handle_request(request)
                if response.status_code != 429:
                    response.read()
                    return response
                response.close()
                self.quota.pause(retry_after(response, tries), f"429 from {request.url.host}")
            tries += 1

    def close(self) -> None:
        self.inner.close()


class _AsyncLimited(httpx2.AsyncBaseTransport):
    def __init__(self, quota: Quota, inner: httpx2.AsyncBaseTransport) -> None:
        self.quota, self.inner = quota, inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        quota = self.quota
        deadline = quota._deadline(None)
        tries = 0
        while True:
            call = await quota._take_async(deadline)
            try:
                response = await self.inner.handle_async_request(request)
                if response.status_code != 429:
                    await response.aread()
                    return response
                await response.aclose()
                why = f"429 from {request.url.host}"
                await anyio.to_thread.run_sync(quota.pause, retry_after(response, tries), why)
            finally:
                await anyio.to_thread.run_sync(quota._give_back, call)
            tries += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def _engine(database_url: str) -> sa.Engine:
    """One engine a database for this process's quotas, with their tables made."""
    with _engines_lock:
        if database_url not in _engines:
            engine = database_engine(database_url)
            create_tables(engine, _meta)
            _engines[database_url] = engine
        return _engines[database_url]
