"""The layering contracts: the core never imports a workflow, and the flagship's stages
import only the stages below them. import-linter checks them (as `make lint` does), and a copy
of the code with one forbidden import proves each check bites."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
FLAGSHIP = ROOT / "workflows" / "podcast" / "src"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path, *sources: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, sources))}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_core_imports_no_workflow() -> None:
    done = lint_imports(ROOT, ROOT / "src", FLAGSHIP)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def with_import(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """import-linter's verdict on a copy of both packages where `module` (a path under either
    source folder) has one more import."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__")
    shutil.copytree(ROOT / "src", tmp_path / "core", ignore=ignore)
    shutil.copytree(FLAGSHIP, tmp_path / "flagship", ignore=ignore)
    (target,) = [p for p in (tmp_path / "core", tmp_path / "flagship") if (p / module).exists()]
    (target / module).write_text((target / module).read_text() + f"\n{line}\n")
    return lint_imports(tmp_path, tmp_path / "core", tmp_path / "flagship")


def test_a_core_module_that_imports_the_flagship_breaks_the_contract(tmp_path: Path) -> None:
    done = with_import(
        tmp_path, "shipyard/_runner.py", "from shipyard_podcast.models import Script"
    )
    assert done.returncode == 1, done.stdout
    assert "shipyard._runner -> shipyard_podcast.models" in done.stdout


def test_a_stage_that_imports_a_later_one_breaks_the_contract(tmp_path: Path) -> None:
    done = with_import(
        tmp_path,
        "shipyard_podcast/source/extract.py",
        "from shipyard_podcast.release.feed import site_url",
    )
    assert done.returncode == 1, done.stdout
    assert "shipyard_podcast.source is not allowed to import shipyard_podcast.release" in (
        done.stdout
    )
