"""Where workflows come from: installed plugins, and a project's own modules.

A plugin names its module in the `shipyard.workflows` entry-point group; a project names its
own in `workflows.modules` of shipyard.toml (imported from the file's folder first), and may
list the plugins it enables in `workflows.enabled` (unset: every installed one). Importing
such a module registers its workflows (`@workflow`); each records its version here (the
application version names them), and a workflow with settings claims its table of
shipyard.toml here, so the configuration can be checked against it when it is read.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from pydantic import BaseModel

from shipyard._errors import ConfigError

__all__ = [
    "ENTRY_POINT_GROUP",
    "SettingsTable",
    "claim_table",
    "claim_version",
    "claimed_tables",
    "import_workflows",
    "installed_plugins",
    "workflow_versions",
]

ENTRY_POINT_GROUP = "shipyard.workflows"


@dataclass(frozen=True)
class SettingsTable:
    """A table of shipyard.toml that a workflow reads through its settings model."""

    workflow: str
    model: type[BaseModel]


_TABLES: dict[str, SettingsTable] = {}
_VERSIONS: dict[str, str] = {}  # each installed workflow's version


def claim_version(workflow: str, version: str) -> None:
    _VERSIONS[workflow] = version


def workflow_versions() -> dict[str, str]:
    return dict(_VERSIONS)


def claim_table(table: str, workflow: str, model: type[BaseModel]) -> None:
    _TABLES[table] = SettingsTable(workflow, model)


def claimed_tables() -> dict[str, SettingsTable]:
    return dict(_TABLES)


def installed_plugins() -> list[str]:
    """The names of the installed workflow plugins (their entry points)."""
    return sorted({entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)})


def import_workflows(
    root: Path | None = None,
    modules: Sequence[str] = (),
    enabled: Sequence[str] | None = None,
) -> None:
    """Import the installed workflow plugins (only those `enabled`, when it is given), then the
    project's own `modules` (from `root`, the configuration's folder, first)."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if enabled is None or entry.name in enabled:
            _import(entry.module, f"entry point {entry.name!r}")
    if modules and root is not None and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    for module in modules:
        _import(module, "workflows.modules")


def _import(module: str, named_by: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import workflow module {module!r}: {exc}",
            key=named_by,
            hint="install the package that provides it, or correct the module's name",
        ) from None
