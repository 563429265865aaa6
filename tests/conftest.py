"""Fixtures shared by the whole suite: the corpus in ../shared/corpus, a fresh config."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"


def corpus_files(kind: str) -> list[Path]:
    """The corpus PDFs of one kind ("papers" or "bad"), or [] where the corpus is absent."""
    folder = CORPUS / kind
    return sorted(folder.glob("*.pdf")) if folder.is_dir() else []


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}: check out shared/ beside the repository")
    return CORPUS


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on loopback for the session (Debian's packages; started here,
    stopped at the end). Skips, saying why, where the server binaries are absent."""
    if not postgres_installed():
        pytest.skip(
            "PostgreSQL is not installed: `make test` installs it (apt-get install postgresql)"
        )
    with postgres_server() as url:
        yield url


def postgres_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server of Debian's on loopback, in a folder of its own, for as long as
    the with-block lasts; yields its URL (the `postgres` database)."""
    bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
    # Its own folder under /tmp: the server's user cannot enter pytest's root-only folders.
    data = Path(tempfile.mkdtemp(prefix="shipyard-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=120)
    run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"]
    )
    run(
        [
            *as_user,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data / "db"),
            "-w",
            "-l",
            str(data / "log"),
            "-o",
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
            "start",
        ]
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"])
        shutil.rmtree(data, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """A new, empty database on the test server, named after `name`."""
    import psycopg

    database = "t_" + "".join(c for c in name.lower() if c.isalnum())[:40]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')
    return server_url.rsplit("/", 1)[0] + "/" + database
