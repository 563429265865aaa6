"""`shipyard doctor`: what is installed and configured, what is missing, and the fix. The core
checks its own needs; each installed workflow adds its own (`@workflow(doctor=...)`), built
with `Check.command` and `Check.module`."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from shipyard._config import Config, load_config
from shipyard._errors import ConfigError
from shipyard._plugins import installed_plugins
from shipyard._redact import redact
from shipyard._secrets import credentials_file, expand_secrets, secret_names
from shipyard._workflow import workflows

__all__ = ["Check", "diagnose"]

_APT = "apt-get install -y"


@dataclass(frozen=True)
class Check:
    """One thing `shipyard doctor` looked at: whether it is as needed, what was found, and
    the fix; `required=False` for what only some uses need."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    @classmethod
    def command(cls, name: str, why: str, fix: str, *, required: bool = True) -> Check:
        """Whether a command is on the PATH."""
        path = shutil.which(name)
        found = f"{path} ({why})" if path else f"not found ({why})"
        return cls(name, path is not None, found, fix, required)

    @classmethod
    def module(cls, name: str, why: str, fix: str, *, required: bool = True) -> Check:
        """Whether a Python module can be imported."""
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # its parent package is missing
            found = False
        return cls(name, found, why if found else f"not installed ({why})", fix, required)


def diagnose(config_file: Path | None = None) -> list[Check]:
    checks = [
        Check(
            "python",
            sys.version_info >= (3, 11),
            sys.version.split()[0],
            "install Python 3.11 or newer",
        ),
        Check.command("git", "publishes to the site repository", f"{_APT} git"),
        Check.module(
            "opentelemetry.sdk",
            "traces by OTLP (optional: [telemetry])",
            "pip install -e '.[telemetry]' in shipyard's checkout",
            required=False,
        ),
    ]
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        return [*checks, Check("config", False, str(exc), exc.hint or "fix the file")]
    own = [c for spec in workflows().values() if spec.doctor for c in spec.doctor(config)]
    return [*checks, *own, *_project(config)]


def _project(config: Config) -> list[Check]:
    file = config.root / "shipyard.toml"
    found = file.is_file()
    checks = [
        Check(
            "config",
            True,
            str(file) if found else "no shipyard.toml: built-in defaults",
            "" if found else "`shipyard init` writes one",
            required=False,
        ),
        Check("database", True, redact(config.engine.database_url) or "SQLite in the state folder"),
        _plugins(config),
        Check(
            "publish.remote",
            bool(config.publish.remote),
            redact(config.publish.remote) or "not set: runs can be written but not published",
            "set publish.remote in shipyard.toml, or `shipyard init --local-production`",
            required=False,
        ),
        Check(
            "publish.base_url",
            bool(config.publish.base_url),
            config.publish.base_url or "not set: releases cannot be verified",
            "set publish.base_url to where production serves the site",
            required=False,
        ),
        *_secrets(config),
    ]
    return checks


def _plugins(config: Config) -> Check:
    """The workflow plugins installed here, and whether each one the project enables is."""
    installed = ", ".join(installed_plugins()) or "none"
    if config.workflows.enabled is None:
        return Check("workflows", True, f"every installed plugin: {installed}")
    enabled = ", ".join(config.workflows.enabled) or "none"
    missing = config.missing_plugins
    return Check(
        "workflows",
        not missing,
        f"enabled: {enabled} (installed: {installed})",
        f"install the {', '.join(missing)} plugin (its runs wait until then), or take it out "
        "of workflows.enabled"
        if missing
        else "",
    )


def _secrets(config: Config) -> list[Check]:
    """Whether each `${NAME}` the configuration names can be read here (never its value)."""
    text = config.model_dump_json()
    checks = []
    for name in sorted(set(secret_names(text))):
        try:
            expand_secrets(f"${{{name}}}")
        except ConfigError as missing:
            checks.append(Check(f"secret {name}", False, missing.message, missing.hint or ""))
        else:
            checks.append(Check(f"secret {name}", True, "set (environment or credentials file)"))
    if not checks:
        return []
    return [*checks, Check("credentials file", True, str(credentials_file()), required=False)]
