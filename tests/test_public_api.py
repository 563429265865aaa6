"""The public API: what `shipyard` exports is exactly its public names, each is documented in
docs/workflows.md, and importing it loads no workflow."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import shipyard

DOC = (Path(__file__).parents[1] / "docs" / "workflows.md").read_text(encoding="utf-8")


def public_names() -> set[str]:
    """The names `shipyard` defines for its users, read from the package, not from a list."""
    return {
        name
        for name, value in vars(shipyard).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    } | {"__version__"}


def test_all_is_exactly_the_public_names() -> None:
    assert sorted(shipyard.__all__) == sorted(public_names())


def test_every_exported_name_is_documented() -> None:
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", DOC))
    missing = sorted(public_names() - documented)
    assert not missing, f"docs/workflows.md does not document {missing}"


def test_every_exported_class_and_function_says_what_it_is() -> None:
    undocumented = [
        name
        for name in public_names()
        if (inspect.isclass(value := getattr(shipyard, name)) or inspect.isfunction(value))
        and value.__module__.startswith("shipyard")
        and not (value.__doc__ or "").strip()
    ]
    assert not undocumented, f"no docstring: {sorted(undocumented)}"


def test_importing_shipyard_loads_no_workflow() -> None:
    code = "import sys, shipyard; print(any(m.startswith('shipyard_podcast') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
