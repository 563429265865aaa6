"""The public API: what `shipyard` exports is exactly its public names, each is documented in
docs/workflows.md, and importing it loads no workflow."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import shipyard

DOC = (Path(__file__).parents[1] / "docs" / "workflows.md").read_text(encoding="utf-8")


def public_names() -> set[str]:
    """The names `shipyard` offers its users, read from the package: what it holds and what
    it loads when asked (each loaded here, so a name that leads nowhere fails)."""
    return {
        name
        for name in dir(shipyard)
        if not name.startswith("_") and not inspect.ismodule(getattr(shipyard, name))
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


def test_a_process_that_needs_errors_and_flags_does_not_load_the_engine() -> None:
    """What an extraction child imports (an error, a flag, the configuration's types) loads
    neither DBOS nor SQLAlchemy: the core's names are loaded from their modules when asked."""
    code = (
        "import sys\n"
        "from shipyard import Config, ConfigError, Flag, StepTimeout, INVISIBLE_MARKS\n"
        "import shipyard_podcast.source.extract\n"
        "print(sorted(m for m in ('dbos', 'sqlalchemy', 'shipyard._engine') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert shipyard.Flag.__module__ == "shipyard._flag"  # and a name asked for is the real one


def test_the_names_type_checkers_see_are_the_names_loaded() -> None:
    """`shipyard/__init__.py` names each public name twice: imported for type checkers, and in
    the table its `__getattr__` loads from. The two agree."""
    tree = ast.parse(Path(shipyard.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    typed = {a.name: node.module for node in block.body for a in node.names}
    assert typed == shipyard._HOMES
