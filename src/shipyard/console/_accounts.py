"""The console's people: users with roles, sessions that expire, and slowed-down guessing.

Passwords are hashed with scrypt (memory-hard: 16 MiB per guess) and a random salt; a
session is a random token whose SHA-256 is stored, so the table alone signs nobody in. Each
session carries its own CSRF token.

Guessing is throttled by where it comes from, so that a stranger cannot lock a reviewer out:
after `MAX_FAILURES` wrong passwords from one client address within `FAILURE_WINDOW_S`, that
address waits for a while that doubles with each further failure. A name has a ceiling too,
`NAME_CEILING` failures from anywhere: past it, addresses that never signed in as that name
wait as above, while one that did (a known client) is only slowed, to a try every
`KNOWN_CLIENT_WAIT_S`, and never barred. The tables live in the run ledger's database, so every
console of a project shares them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from shipyard._errors import ShipyardError

__all__ = ["Accounts", "Role", "Session", "User"]

Role = Literal["reviewer", "admin"]
ROLES: tuple[Role, ...] = ("reviewer", "admin")
MAX_FAILURES = 5  # wrong passwords from one address before it waits
NAME_CEILING = 20  # wrong passwords for one name, from anywhere, before strangers wait
KNOWN_CLIENT_WAIT_S = 10.0  # past the ceiling, a known client's pace
FAILURE_WINDOW_S = 15 * 60
KNOWN_FOR_S = 90 * 86400  # a client that signed in as a name is known to it this long
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
MIN_PASSWORD = 10

_meta = sa.MetaData()
users_table = sa.Table(
    "shipyard_console_users",
    _meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("password", sa.String(200), nullable=False),  # scrypt$salt$hash, hex
    sa.Column("created_at", sa.Float, nullable=False),
)
sessions_table = sa.Table(
    "shipyard_console_sessions",
    _meta,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
attempts_table = sa.Table(  # sign-ins: failures, and the last success of each client
    "shipyard_console_attempts",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, index=True),
    sa.Column("address", sa.String(100), nullable=False, index=True),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class User:
    name: str
    role: Role


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str  # the token every state-changing request must carry
    expires_at: float


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def _backoff(failures: list[float], allowed: int, now: float) -> float:
    """Seconds to wait after `failures` (times, in order) when `allowed` are let through:
    30 s, doubling with each failure past it, at most the failure window."""
    if len(failures) < allowed:
        return 0.0
    wait = min(2.0 ** (len(failures) - allowed) * 30, FAILURE_WINDOW_S)
    return failures[-1] + wait - now


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users and sessions, in the tables of the database `engine` points at."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        _meta.create_all(engine, checkfirst=True)

    # --- users ----------------------------------------------------------------------------

    def add(self, name: str, role: Role | str, password: str) -> User:
        """Add a user, or give an existing one a new role and password."""
        if not _NAME.fullmatch(name):
            raise ShipyardError(
                f"{name!r} is not a user name",
                code="bad-user",
                hint="letters, digits and . _ @ -, starting with a letter or digit, at most 64",
            )
        if role not in ROLES:  # narrows `role` to a Role
            raise ShipyardError(
                f"{role!r} is not a role", code="bad-user", hint=f"one of: {', '.join(ROLES)}"
            )
        if len(password) < MIN_PASSWORD:
            raise ShipyardError(
                f"the password is shorter than {MIN_PASSWORD} characters",
                code="bad-user",
                hint="choose a longer one (a passphrase of a few words will do)",
            )
        salt = secrets.token_bytes(16)
        stored = f"scrypt${salt.hex()}${_hash(password, salt).hex()}"
        row = {"role": role, "password": stored}
        with self.engine.begin() as conn:
            done = conn.execute(users_table.update().where(users_table.c.name == name).values(row))
            if done.rowcount == 0:
                conn.execute(users_table.insert().values(name=name, created_at=time.time(), **row))
            conn.execute(sessions_table.delete().where(sessions_table.c.name == name))
        return User(name, role)

    def users(self) -> list[User]:
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(users_table).order_by(users_table.c.name)).all()
        return [User(r.name, r.role) for r in rows]

    def remove(self, name: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(sessions_table.delete().where(sessions_table.c.name == name))
            return conn.execute(users_table.delete().where(users_table.c.name == name)).rowcount > 0

    # --- signing in -----------------------------------------------------------------------

    def retry_after(self, name: str, address: str) -> float:
        """Seconds until `address` may try a password for `name` again (0: now)."""
        now = time.time()
        table = attempts_table
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(table.c.name, table.c.address, table.c.ok, table.c.at).where(
                    sa.or_(table.c.name == name, table.c.address == address),
                    sa.or_(table.c.at > now - FAILURE_WINDOW_S, table.c.ok),
                )
            ).all()
        failures = [r for r in rows if not r.ok and r.at > now - FAILURE_WINDOW_S]
        mine = sorted(r.at for r in failures if r.address == address)
        wait = _backoff(mine, MAX_FAILURES, now)
        for_name = sorted(r.at for r in failures if r.name == name)
        if len(for_name) >= NAME_CEILING:
            known = any(
                r.ok and r.name == name and r.address == address and r.at > now - KNOWN_FOR_S
                for r in rows
            )
            slowed = for_name[-1] + KNOWN_CLIENT_WAIT_S - now
            wait = max(wait, slowed if known else _backoff(for_name, NAME_CEILING, now))
        return max(0.0, wait)

    def sign_in(
        self, name: str, password: str, *, hours: float, address: str = ""
    ) -> tuple[str, Session] | None:
        """A new session for the right password (its token, for the cookie); None, recorded
        as a failure of `address` (the client's), for a wrong one or an unknown name."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users_table).where(users_table.c.name == name)).first()
        stored = row.password if row is not None else f"scrypt${'00' * 16}${'00' * 32}"
        _, salt, expected = stored.split("$")
        given = _hash(password, bytes.fromhex(salt))  # as slow for an unknown name
        now, table = time.time(), attempts_table
        attempt = {"name": name[:200], "address": address[:100], "at": now}
        if row is None or not hmac.compare_digest(given, bytes.fromhex(expected)):
            with self.engine.begin() as conn:
                conn.execute(table.insert().values(ok=False, **attempt))
            return None
        with self.engine.begin() as conn:  # this client is known; its own failures forgiven
            conn.execute(
                table.delete().where(table.c.address == attempt["address"], table.c.name == name)
            )
            conn.execute(table.insert().values(ok=True, **attempt))
            conn.execute(table.delete().where(~table.c.ok, table.c.at < now - FAILURE_WINDOW_S))
            conn.execute(sessions_table.delete().where(sessions_table.c.expires_at < now))
        return self._new_session(User(row.name, row.role), hours)

    def session(self, token: str) -> Session | None:
        """The live session a cookie's token names (None: none, or expired)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(sessions_table, users_table.c.role)
                .join(users_table, users_table.c.name == sessions_table.c.name)
                .where(sessions_table.c.token_sha256 == _token_sha256(token))
            ).first()
        if row is None or row.expires_at < time.time():
            return None
        return Session(User(row.name, row.role), row.csrf, row.expires_at)

    def session_for(self, name: str, *, hours: float) -> tuple[str, Session] | None:
        """A session for a user a trusted proxy vouches for (single sign-on)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users_table).where(users_table.c.name == name)).first()
        return None if row is None else self._new_session(User(row.name, row.role), hours)

    def _new_session(self, user: User, hours: float) -> tuple[str, Session]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = time.time() + hours * 3600
        with self.engine.begin() as conn:
            conn.execute(
                sessions_table.insert().values(
                    token_sha256=_token_sha256(token), name=user.name, csrf=csrf, expires_at=expires
                )
            )
        return token, Session(user, csrf, expires)

    def sign_out(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sessions_table.delete().where(sessions_table.c.token_sha256 == _token_sha256(token))
            )
