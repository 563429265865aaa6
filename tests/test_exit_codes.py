"""Exit codes a script can trust (docs/cli.md#exit-codes): every command family through
success, bad input, a configuration error and an unexpected exception injected into it, and
runs that always end: a body that returns without a state ends `succeeded`, and input of the
wrong shape is refused before any run exists."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from shipyard.cli import ExitCode
from tests.project import SHIPYARD

TOY = '''
"""Toy workflows for the exit-code table."""
from pydantic import BaseModel
from shipyard import Check, PermanentError, Run, JsonInput, step, workflow


class Note(BaseModel):
    title: str
    words: int


@step(kind="check")
def count(note: Note) -> int:
    if note.words < 0:
        raise PermanentError("a note cannot have fewer than no words", code="negative")
    return note.words


def needs(config):
    return [Check.module("json", "the toy reads JSON", "it comes with Python")]


@workflow(name="toy-note", accepts=Note, input_help="a note as JSON", doctor=needs)
def toy_note(run: Run[JsonInput, None]) -> dict[str, int]:
    """Counts a note's words: it publishes nothing, so it ends succeeded."""
    return {"words": count(Note.model_validate(run.input.data))}


@workflow(name="toy-publisher", accepts="json", publishes=True)
def toy_publisher(run: Run[JsonInput, None]) -> None:
    """Says it publishes, then returns without verifying anything."""
'''

# Injected into the CLI's process (PYTHONPATH): the named function raises a plain exception,
# as a bug would. `after-launch` breaks what `run` calls once the engine is running.
INJECT = """
import os
target = os.environ.get("SHIPYARD_TEST_BREAK", "")
if target:
    import functools, importlib
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest prefix that is a module
        try:
            holder = importlib.import_module(".".join(parts[:cut]))
            break
        except ImportError:
            continue
    holder = functools.reduce(getattr, parts[cut:-1], holder)
    def broken(*args, **kwargs):
        raise RuntimeError("injected for the exit-code table")
    setattr(holder, parts[-1], broken)
"""

NOTE = '{"title": "A note", "words": 12}'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "toy.py").write_text(TOY, encoding="utf-8")
    (root / "shipyard.toml").write_text(
        'state_dir = "state"\n[workflows]\nmodules = ["toy"]\n', encoding="utf-8"
    )
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(INJECT, encoding="utf-8")
    return root


def shipyard(project: Path, *args: str, broken: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(project.parent / "inject")}
    if broken:
        env["SHIPYARD_TEST_BREAK"] = broken
    return subprocess.run(
        [*SHIPYARD, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_command_family_exits_by_the_table(project: Path) -> None:
    ran = shipyard(project, "run", "toy-note", NOTE)
    assert ran.returncode == ExitCode.OK, ran.stdout + ran.stderr
    assert "succeeded" in ran.stdout  # it returned without a state: it ended
    run_id = next(w for w in ran.stdout.split() if w.startswith("run-"))

    table = [  # (arguments, what is broken, exit code)
        (("run", "toy-note", NOTE), "", ExitCode.OK),
        (("run", "toy-note", '{"title": "A note", "words": -1}', "--force"), "", 1),
        (("run", "toy-note", '{"title": "A note"}'), "", ExitCode.REFUSED),
        (("run", "toy-nope", NOTE), "", ExitCode.REFUSED),
        (("run", "toy-note", NOTE, "--force"), "shipyard._runner.start_run", 70),
        (("runs",), "", ExitCode.OK),
        (("runs", "--state", "nonsense"), "", ExitCode.REFUSED),
        (("runs",), "shipyard._ledger.Ledger.runs", ExitCode.INTERNAL),
        (("status", run_id), "", ExitCode.OK),
        (("status", "run-nonesuch"), "", ExitCode.REFUSED),
        (("status", run_id), "shipyard._ledger.Ledger.get", ExitCode.INTERNAL),
        (("show", "toy-note"), "", ExitCode.OK),
        (("show", "toy-nope"), "", ExitCode.REFUSED),
        (("review", "list"), "", ExitCode.OK),
        (("review", "show", run_id), "", ExitCode.REFUSED),  # it asked for no review
        (("verify", run_id), "", ExitCode.REFUSED),  # it published nothing to re-check
        (("user", "list"), "", ExitCode.OK),
        (("user", "add", "x y", "--password-stdin"), "", ExitCode.REFUSED),
        (("user", "list"), "shipyard._config.load_config", ExitCode.INTERNAL),
    ]
    for args, broken, expected in table:
        done = shipyard(project, *args, broken=broken)
        said = done.stdout + done.stderr
        assert done.returncode == expected, (args, broken, said)
        if expected == ExitCode.INTERNAL:  # one line: what, where, and the traceback's file
            assert "internal error: RuntimeError: injected" in done.stderr, said
            assert "the traceback is in" in done.stderr and "Traceback" not in said

    (project / "shipyard.toml").write_text('state_dir = "state"\nnonsense = 1\n')
    for args in (("runs",), ("status", run_id), ("run", "toy-note", NOTE), ("user", "list")):
        done = shipyard(project, *args)
        assert done.returncode == ExitCode.CONFIG, (args, done.stdout + done.stderr)


def test_a_body_that_publishes_must_say_what_production_serves(project: Path) -> None:
    done = shipyard(project, "run", "toy-publisher", "{}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "returned without verifying what it published" in done.stdout


def test_input_of_the_wrong_shape_is_refused_before_any_run_exists(project: Path) -> None:
    refused = shipyard(project, "run", "toy-note", '{"title": "A note", "words": "many"}')
    assert refused.returncode == ExitCode.REFUSED
    assert "words: Input should be a valid integer" in refused.stderr
    assert "title, words" in refused.stderr  # what to give
    listed = shipyard(project, "runs")
    assert "no runs yet" in listed.stdout  # nothing was created

    (project / "latin1.json").write_bytes('{"title": "caf\xe9", "words": 1}'.encode("latin-1"))
    refused = shipyard(project, "run", "toy-note", "latin1.json")
    assert refused.returncode == ExitCode.REFUSED and "not UTF-8" in refused.stderr


def test_the_table_is_documented() -> None:
    documented = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {code.value} |" in documented, code
    assert textwrap.dedent("## Exit codes") in documented


def test_two_workflows_of_one_name_are_refused_naming_both(project: Path) -> None:
    (project / "toy2.py").write_text(
        "from shipyard import JsonInput, Run, workflow\n\n\n"
        '@workflow(name="toy-note", accepts="json")\n'
        "def another(run: Run[JsonInput, None]) -> None:\n"
        '    """A second toy-note."""\n',
        encoding="utf-8",
    )
    (project / "shipyard.toml").write_text(
        'state_dir = "state"\n[workflows]\nmodules = ["toy", "toy2"]\n', encoding="utf-8"
    )
    done = shipyard(project, "runs")
    assert done.returncode == ExitCode.CONFIG, done.stdout + done.stderr
    assert "two workflows are named 'toy-note'" in done.stderr
    assert "toy.toy_note" in done.stderr and "toy2.another" in done.stderr


def test_a_workflow_adds_its_own_needs_to_doctor(project: Path) -> None:
    done = shipyard(project, "doctor", "--json")
    found = {c["name"]: c for c in json.loads(done.stdout)}
    assert found["json"]["ok"] and found["json"]["detail"] == "the toy reads JSON"
    assert "git" in found  # the core's own, first
