"""docs/workflows.md's workflow, exactly as printed, as a package outside shipyard: registered
by an entry point, importing only `from shipyard import ...`, run by the real CLI to verified;
and the page's test of it, exactly as printed, passing on the testing kit."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shipyard import RunRecord, RunState
from tests.project import Project, make_project

pytestmark = pytest.mark.slow
DOC = Path(__file__).parents[1] / "docs" / "workflows.md"


def blocks() -> list[str]:
    found = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(found) == 2, "docs/workflows.md has one complete example, and its test"
    return found


def the_example() -> str:
    return blocks()[0]


def its_test() -> str:
    return blocks()[1]


def install_as_plugin(site: Path, module: str, code: str) -> None:
    """A package outside shipyard, found through the `shipyard.workflows` entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(code, encoding="utf-8")
    meta = site / f"{module}-0.1.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text(f"[shipyard.workflows]\n{module} = {module}\n")


def test_the_example_imports_nothing_but_the_public_api() -> None:
    tree = ast.parse(the_example())
    modules = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert {m for m in modules if m and m.startswith("shipyard")} == {"shipyard"}


@pytest.fixture
def greeting_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site-packages"
    install_as_plugin(site, "greeting", the_example())
    monkeypatch.setenv("PYTHONPATH", str(site))  # for the CLI in its subprocesses
    monkeypatch.syspath_prepend(str(site))  # for this process, which reads the config too


def test_a_plugin_workflow_runs_to_verified(tmp_path: Path, greeting_plugin: None) -> None:
    with make_project(tmp_path / "p", auto_approve=True, extra='[greeting]\nfolder = "hi"\n') as p:
        shown = p.run("show", "greeting", "--json")
        assert shown.returncode == 0, shown.stderr
        steps = [s["step"] for s in json.loads(shown.stdout)["steps"]]
        assert steps == ["review-open", "review-escalate", "review-decided", "publish", "verify"]

        document = json.dumps({"title": "Hello", "text": "Shipped, and proven served."})
        done = p.run("run", "greeting", document)
        assert done.returncode == 0, done.stdout + done.stderr
        run = latest(p)
        assert run.state is RunState.VERIFIED, run.reason
        served = httpx.get(run.result["url"], timeout=10)
        assert served.text == "Hello\n\nShipped, and proven served.\n"
        assert "/hi/" in run.result["url"]
        again = p.run("run", "greeting", document)  # the same input is found, not redone
        assert "found (same input and config)" in again.stdout
        assert len([c for c in p.site_commits() if run.run_id in c]) == 1

        bad = p.run("run", "greeting", "{not json")
        assert bad.returncode == 3 and "not valid JSON" in bad.stderr
        shapeless = p.run("run", "greeting", '{"title": "Hello", "text": 7}')
        assert shapeless.returncode == 3 and "text: Input should be a valid string" in (
            shapeless.stderr
        )
        unknown = p.run("run", "greetings", document)
        assert "known workflows:" in unknown.stderr and "greeting" in unknown.stderr


def test_a_wrong_setting_of_a_plugin_is_caught_when_the_file_is_read(
    tmp_path: Path, greeting_plugin: None
) -> None:
    with make_project(tmp_path / "p", auto_approve=True, extra="[greeting]\nfoldr = 'x'\n") as p:
        done = p.run("runs")
        assert done.returncode == 2
        assert "greeting.foldr" in done.stderr and "Traceback" not in done.stderr


def latest(project: Project) -> RunRecord:
    ledger = project.ledger()
    try:
        return ledger.get(ledger.runs(limit=1)[0].run_id)
    finally:
        ledger.close()


def test_the_pages_test_passes_on_the_testing_kit(tmp_path: Path) -> None:
    """Saved beside greeting.py as test_greeting.py and run with pytest, as the page says."""
    (tmp_path / "greeting.py").write_text(the_example(), encoding="utf-8")
    (tmp_path / "test_greeting.py").write_text(its_test(), encoding="utf-8")
    assert len(its_test().strip().splitlines()) <= 30  # a workflow's test, short
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_greeting.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
