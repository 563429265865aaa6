"""Who may sign in to the console: users with roles, memory-hard password hashes, sessions
that end, guessing that is slowed down, and a single sign-on header believed only from the
proxies the configuration names."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from shipyard import Config, ShipyardError
from shipyard.console import Accounts, create_app
from shipyard.console._accounts import (
    KNOWN_CLIENT_WAIT_S,
    MAX_FAILURES,
    NAME_CEILING,
    sessions_table,
    users_table,
)
from tests.project import SHIPYARD

PASSWORD = "a long enough passphrase"


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(sa.create_engine(f"sqlite:///{tmp_path / 'accounts.sqlite'}"))


def test_passwords_are_stored_as_scrypt_hashes_and_checked(accounts: Accounts) -> None:
    accounts.add("editor", "reviewer", PASSWORD)
    with accounts.engine.begin() as conn:
        stored = conn.execute(sa.select(users_table.c.password)).scalar_one()
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert accounts.sign_in("editor", "not the password", hours=1) is None
    token, session = accounts.sign_in("editor", PASSWORD, hours=1) or ("", None)
    assert session is not None and session.user.name == "editor"
    assert accounts.session(token) == session
    with accounts.engine.begin() as conn:  # only the token's hash is kept
        assert token not in str(conn.execute(sa.select(sessions_table)).all())


def test_a_session_ends_when_it_expires_or_the_user_signs_out(accounts: Accounts) -> None:
    accounts.add("editor", "reviewer", PASSWORD)
    short = accounts.sign_in("editor", PASSWORD, hours=0.5 / 3600)
    assert short is not None
    time.sleep(0.6)
    assert accounts.session(short[0]) is None
    kept = accounts.sign_in("editor", PASSWORD, hours=1)
    assert kept is not None
    accounts.sign_out(kept[0])
    assert accounts.session(kept[0]) is None


def test_a_new_password_or_removal_ends_every_session(accounts: Accounts) -> None:
    accounts.add("editor", "reviewer", PASSWORD)
    signed = accounts.sign_in("editor", PASSWORD, hours=1)
    assert signed is not None
    accounts.add("editor", "admin", "another long passphrase")
    assert accounts.session(signed[0]) is None
    assert accounts.users()[0].role == "admin"
    assert accounts.remove("editor") and accounts.users() == []


@pytest.mark.parametrize(
    ("name", "role", "password", "says"),
    [
        ("ed itor", "reviewer", PASSWORD, "not a user name"),
        ("editor", "owner", PASSWORD, "not a role"),
        ("editor", "reviewer", "short", "shorter than 10"),
    ],
)
def test_a_bad_user_is_refused_with_the_rule(
    accounts: Accounts, name: str, role: str, password: str, says: str
) -> None:
    with pytest.raises(ShipyardError, match=says):
        accounts.add(name, role, password)


def test_guessing_waits_by_address_so_a_stranger_cannot_lock_a_reviewer_out(
    accounts: Accounts,
) -> None:
    accounts.add("editor", "reviewer", PASSWORD)
    home, stranger = "10.0.0.1", "203.0.113.9"
    assert accounts.sign_in("editor", PASSWORD, hours=1, address=home)  # a known client
    for _ in range(MAX_FAILURES):
        assert accounts.retry_after("editor", stranger) == 0
        assert accounts.sign_in("editor", "wrong", hours=1, address=stranger) is None
    assert accounts.retry_after("editor", stranger) > 20  # the guesser waits
    assert accounts.retry_after("anyone", stranger) > 20  # whatever name it tries next
    assert accounts.retry_after("editor", home) == 0  # the reviewer does not
    assert accounts.sign_in("editor", PASSWORD, hours=1, address=home)

    # guesses from many addresses reach the name's ceiling: strangers wait, the known
    # client is slowed (a try every few seconds) and its right password still works
    for n in range(NAME_CEILING):
        accounts.sign_in("editor", "wrong", hours=1, address=f"198.51.100.{n}")
    assert accounts.retry_after("editor", "192.0.2.1") > 20
    assert 0 < accounts.retry_after("editor", home) <= KNOWN_CLIENT_WAIT_S
    assert accounts.sign_in("editor", PASSWORD, hours=1, address=home)
    assert accounts.retry_after("someone-else", "192.0.2.1") == 0


def test_single_sign_on_is_believed_only_from_a_configured_proxy(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "root": tmp_path,
            "state_dir": "state",
            "console": {"sso_header": "X-Forwarded-User", "proxy_addresses": ["10.9.8.7"]},
        }
    )
    config.state.mkdir()
    app = create_app(config)
    app.state.console.accounts.add("editor", "reviewer", PASSWORD)
    vouched = {"X-Forwarded-User": "editor"}
    with TestClient(app, base_url="http://127.0.0.1", client=("10.9.8.7", 5000)) as proxy:
        page = proxy.get("/", headers=vouched, follow_redirects=False)
        assert page.status_code == 200 and "editor (reviewer)" in page.text
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 5000)) as other:
        forged = other.get("/", headers=vouched, follow_redirects=False)
        assert forged.status_code == 303 and forged.headers["location"].startswith("/login")


def test_behind_a_proxy_its_origin_counts_and_the_cookie_is_secure(tmp_path: Path) -> None:
    config = Config.model_validate(
        {"root": tmp_path, "state_dir": "state", "console": {"proxy_addresses": ["10.9.8.7"]}}
    )
    config.state.mkdir()
    app = create_app(config)
    app.state.console.accounts.add("editor", "reviewer", PASSWORD)
    public = "https://review.example.org"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "review.example.org"}
    for client, accepted in ((("10.9.8.7", 5000), True), (("127.0.0.1", 5000), False)):
        with TestClient(app, base_url="http://127.0.0.1:8765", client=client) as http:
            token = http.get("/login").cookies["shipyard_login"]
            signed = http.post(
                "/login",
                data={"name": "editor", "password": PASSWORD, "login_token": token},
                headers={**forwarded, "Origin": public},
                follow_redirects=False,
            )
            # the public origin is the console's own only when a known proxy says so
            assert (signed.status_code == 303) is accepted, signed.text
            if accepted:
                assert "secure" in signed.headers["set-cookie"].lower()


def test_user_add_reads_the_password_from_stdin_and_never_echoes_it(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "shipyard.toml").write_text('state_dir = "state"\n')
    added = subprocess.run(
        [*SHIPYARD, "user", "add", "editor", "--role", "reviewer", "--password-stdin"],
        cwd=tmp_path,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert PASSWORD not in added.stdout + added.stderr
    listed = subprocess.run(
        [*SHIPYARD, "user", "list"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "editor\treviewer" in listed.stdout
