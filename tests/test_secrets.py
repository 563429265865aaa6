"""No secret is stored or shown. Credentials written into shipyard.toml are refused when it is
read; named as `${NAME}` they are read from the environment or the credentials file where they
are used. A run whose site remote, writer endpoint and webhook all carry credentials (and
whose environment holds API keys) leaves none in any output, database row, file or artifact."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from shipyard import (
    ConfigError,
    GitTarget,
    RunState,
    ShipyardError,
    UrlInput,
    expand_secrets,
    load_config,
    redact,
)
from shipyard._doctor import diagnose
from shipyard._inputs import read_input
from tests.githttp import git_http_server
from tests.loopback import loopback_server
from tests.modelserver import Status, model_server
from tests.project import make_project

pytestmark = pytest.mark.hostile

SITE_TOKEN = "site-tok-7f3a9c2e51"
WRITER_PASSWORD = "writer-pw-0b8d4e6a"
HOOK_TOKEN = "hook-tok-92c1f07d"
API_KEY = "sk-planted-3e5d7c9b1a"
COMPATIBLE_KEY = "compat-key-6a4f2e8d"
PLANTED = (SITE_TOKEN, WRITER_PASSWORD, HOOK_TOKEN, API_KEY, COMPATIBLE_KEY)


def write_config(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "shipyard.toml"
    file.write_text(text, encoding="utf-8")
    return file


@pytest.mark.parametrize(
    ("table", "line", "key"),
    [
        ("publish", f'remote = "https://bot:{SITE_TOKEN}@git.example.org/site.git"', "remote"),
        ("publish", f'remote = "https://{SITE_TOKEN}@git.example.org/site.git"', "remote"),
        ("engine", f'database_url = "postgresql://app:{SITE_TOKEN}@db/shipyard"', "database_url"),
        ("verify", f'webhook = "https://hooks.example.org/x?token={HOOK_TOKEN}"', "webhook"),
        (
            "podcast.script",
            f'writers = ["openai-compatible:m@https://u:{WRITER_PASSWORD}@llm.example/v1"]',
            "writers[0]",
        ),
    ],
)
def test_a_credential_written_into_the_file_is_refused_naming_the_key(
    tmp_path: Path, table: str, line: str, key: str
) -> None:
    file = write_config(tmp_path, f"[{table}]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert f"'{table}.{key}'" in caught.value.message
    assert "${" in (caught.value.hint or "")
    assert not any(secret in str(caught.value) for secret in PLANTED)


def test_ssh_users_and_secret_names_are_not_credentials(tmp_path: Path) -> None:
    file = write_config(
        tmp_path,
        '[publish]\nremote = "https://bot:${SITE_TOKEN}@git.example.org/site.git"\n'
        '[verify]\nwebhook = "https://hooks.example.org/x?token=${HOOK_TOKEN}"\n'
        '[engine]\ndatabase_url = "postgresql://app:${DB_PASSWORD}@db/shipyard"\n',
    )
    config = load_config(file)
    assert config.publish.remote.endswith("${SITE_TOKEN}@git.example.org/site.git")
    ssh = write_config(tmp_path, '[publish]\nremote = "ssh://git@git.example.org/site.git"\n')
    assert load_config(ssh).publish.remote == "ssh://git@git.example.org/site.git"


def test_a_url_input_with_a_credential_written_out_is_refused() -> None:
    with pytest.raises(ShipyardError, match="would be stored with the run") as caught:
        read_input("url", f"https://papers.example/p.pdf?token={HOOK_TOKEN}")
    assert HOOK_TOKEN not in str(caught.value) and "${" in (caught.value.hint or "")
    named = read_input("url", "https://papers.example/p.pdf?token=${PAPER_TOKEN}")
    assert isinstance(named, UrlInput) and named.url.endswith("${PAPER_TOKEN}")


def test_a_secret_set_nowhere_is_named_with_where_to_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_CREDENTIALS_FILE", str(tmp_path / "none.toml"))
    monkeypatch.delenv("SITE_TOKEN", raising=False)
    file = write_config(tmp_path, '[publish]\nremote = "https://bot:${SITE_TOKEN}@h/site.git"\n')
    with pytest.raises(ConfigError) as caught:
        GitTarget.from_config(load_config(file))
    assert "'publish.remote'" in caught.value.message
    assert "${SITE_TOKEN}" in caught.value.message
    assert "export SITE_TOKEN" in (caught.value.hint or "")
    doctor = {check.name: check for check in diagnose(file)}
    assert not doctor["secret SITE_TOKEN"].ok


def test_the_credentials_file_is_read_only_when_its_owner_alone_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials.toml"
    credentials.write_text(f'SITE_TOKEN = "{SITE_TOKEN}"\n', encoding="utf-8")
    monkeypatch.setenv("SHIPYARD_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("SITE_TOKEN", raising=False)
    credentials.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        expand_secrets("https://bot:${SITE_TOKEN}@h/", key="publish.remote")
    assert f"chmod 600 {credentials}" in (caught.value.hint or "")
    credentials.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert expand_secrets("https://bot:${SITE_TOKEN}@h/") == f"https://bot:{SITE_TOKEN}@h/"
    # from now on the value is redacted wherever it appears, in any form of text
    assert redact(f"push to h failed: token {SITE_TOKEN} refused") == (
        "push to h failed: token *** refused"
    )


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[str]]]:
    """A loopback webhook that records the query strings it is called with."""
    calls: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            calls.append(self.path)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    with loopback_server(Hook) as base:
        yield f"{base}/hook", calls


def files_holding(folder: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.slow
def test_planted_credentials_appear_in_no_output_row_file_or_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITE_TOKEN", SITE_TOKEN)
    monkeypatch.setenv("WRITER_PASSWORD", WRITER_PASSWORD)
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("SHIPYARD_OPENAI_COMPATIBLE_API_KEY", COMPATIBLE_KEY)
    root = tmp_path / "p"
    with (
        model_server(Status(401), Status(401), Status(401)) as writer,
        webhook_receiver() as (hook, calls),
        make_project(root, auto_approve=True, verify_seconds=3) as probe,
    ):
        # the site remote as a hosting service shows it: smart HTTP behind Basic auth
        with git_http_server(probe.production.root, "bot", SITE_TOKEN) as site:
            remote = f"http://bot:${{SITE_TOKEN}}@{site.url.removeprefix('http://')}/remote.git"
            llm = "openai-compatible:tiny@" + writer.url.replace(
                "http://", "http://writer:${WRITER_PASSWORD}@"
            )
            config = probe.config_file.read_text(encoding="utf-8")
            probe.config_file.write_text(
                config.replace(f'remote = "{probe.production.remote}"', f'remote = "{remote}"')
                .replace(
                    "[podcast.script]",
                    f'[podcast.script]\nwriters = ["{llm}", "extractive"]\n'
                    f'prices = {{ "{llm}" = {{ input_per_mtok = 0, output_per_mtok = 0 }} }}',
                )
                .replace("[verify]", f'[verify]\nwebhook = "{hook}?token=${{HOOK_TOKEN}}"'),
                encoding="utf-8",
            )
            probe.production.set_deploy(False)  # unverified: the webhook is called too
            outputs = [probe.run("run", "paper-to-podcast", str(probe.paper))]
            run_id = probe.ledger().runs(limit=1)[0].run_id
            for command in (
                ("status", run_id),
                ("status", run_id, "--json"),
                ("show", "paper-to-podcast"),
                ("doctor",),
                ("metrics",),
            ):
                outputs.append(probe.run(*command))

        # each credential was used where it belongs ...
        run = probe.ledger().get(run_id)
        assert run.state is RunState.UNVERIFIED, outputs[0].stdout + outputs[0].stderr
        assert site.refused == 0 and any("git-receive-pack" in p for p in site.authorized)
        basic = base64.b64encode(f"writer:{WRITER_PASSWORD}".encode()).decode()
        assert writer.headers and writer.headers[0]["Authorization"] == f"Basic {basic}"
        assert calls == [f"/hook?token={HOOK_TOKEN}"]
        # ... and is found nowhere else
        printed = "".join(done.stdout + done.stderr for done in outputs)
        assert "secret SITE_TOKEN" in printed  # doctor names it, and says it is set
        assert not [s for s in PLANTED if s in printed]
        assert not files_holding(root / "state", PLANTED)  # database, artifacts, clone
        assert not files_holding(probe.production.root, PLANTED)  # the site and its history
        stored = json.dumps([run.to_json(), run.events], default=str)
        assert not [s for s in PLANTED if s in stored]
        assert os.environ["SITE_TOKEN"] == SITE_TOKEN
