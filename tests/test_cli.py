"""The command line and the configuration, as a user meets them: complete help, loud config
errors that name the key and the file, JSON for programs, the process shown from the code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from shipyard._config import load_config
from shipyard._errors import ConfigError
from shipyard.cli import _register, app
from shipyard_podcast.settings import podcast_settings

SHIPYARD = [sys.executable, "-m", "shipyard"]


def shipyard_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHIPYARD, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _commands() -> list[tuple[str, typer.models.CommandInfo]]:
    _register()
    found = [
        (c.name or c.callback.__name__, c)
        for c in app.registered_commands
        if c.callback is not None
    ]
    for group in app.registered_groups:
        assert group.typer_instance is not None
        found += [
            (f"{group.name} {c.name or c.callback.__name__}", c)
            for c in group.typer_instance.registered_commands
            if c.callback is not None
        ]
    return found


def test_every_command_and_option_has_help() -> None:
    import inspect

    commands = _commands()
    assert {
        "init",
        "run",
        "runs",
        "status",
        "review approve",
        "review reject",
        "review list",
        "review show",
        "review save",
        "console",
        "user add",
        "show",
        "worker",
        "serve",
        "doctor",
        "demo",
    } <= {n for n, _ in commands}
    for name, command in commands:
        assert command.callback is not None
        assert inspect.getdoc(command.callback), f"`shipyard {name}` has no help"
        for param in inspect.signature(command.callback).parameters.values():
            annotation = param.annotation
            metadata = getattr(annotation, "__metadata__", ())
            infos = [m for m in metadata if isinstance(m, typer.models.OptionInfo)]
            for info in infos:
                assert info.help, f"`shipyard {name}` option {param.name} has no help"


def test_a_wrong_setting_is_an_error_naming_the_key_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("[review]\ndeadline_hours = -3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "shipyard.toml")
    assert "'review.deadline_hours'" in str(caught.value)
    assert str(tmp_path / "shipyard.toml") in str(caught.value)

    done = shipyard_cmd("runs", cwd=tmp_path)
    assert done.returncode == 2
    assert "review.deadline_hours" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_setting_is_refused_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("[publish]\nremtoe = 'x'\n")
    with pytest.raises(ConfigError, match=r"publish\.remtoe"):
        load_config(tmp_path / "shipyard.toml")


def test_init_writes_a_config_that_loads_and_a_local_production(tmp_path: Path) -> None:
    done = shipyard_cmd(
        "init", str(tmp_path / "show"), "--local-production", "--port", "9999", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    config = load_config(tmp_path / "show" / "shipyard.toml")
    assert config.publish.base_url == "http://127.0.0.1:9999/"
    assert (config.resolve(config.publish.remote) / "HEAD").is_file()
    # Run twice: nothing is overwritten, nothing fails.
    assert (
        shipyard_cmd("init", str(tmp_path / "show"), "--local-production", cwd=tmp_path).returncode
        == 0
    )


def test_show_prints_the_process_from_the_code(tmp_path: Path) -> None:
    done = shipyard_cmd("show", "paper-to-podcast", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    process = json.loads(done.stdout)
    steps = [s["step"] for s in process["steps"]]
    assert steps == [
        "ingest",
        "extract",
        "write-script",
        "review-open",
        "review-recheck",
        "review-revise",
        "review-escalate",
        "review-decided",
        "synthesize",
        "master",
        "publish",
        "verify",
        "notify-unverified",
    ]
    gates = {s["step"]: s["owner"] for s in process["steps"] if s["kind"] == "gate"}
    assert gates["review-open"] == "script-editor"
    assert process["targets"]["reviewers"] == ["editor"]
    assert process["targets"]["checks"], "the guardrail checks are listed"


def test_an_unknown_workflow_or_run_is_a_clear_error(tmp_path: Path) -> None:
    unknown = shipyard_cmd("show", "paper-to-poem", cwd=tmp_path)
    assert unknown.returncode == 3 and "known workflows: paper-to-podcast" in unknown.stderr
    nowhere = shipyard_cmd("status", "run-000", cwd=tmp_path)
    assert nowhere.returncode == 3 and "no runs here" in nowhere.stderr
    assert "pass -c" in nowhere.stderr and "Traceback" not in nowhere.stderr
    (tmp_path / "shipyard.toml").write_text("")
    assert shipyard_cmd("runs", cwd=tmp_path).returncode == 3
    from shipyard._ledger import Ledger

    (tmp_path / ".shipyard").mkdir()
    Ledger(load_config(tmp_path / "shipyard.toml").database_url).close()
    missing = shipyard_cmd("status", "run-000", cwd=tmp_path)
    assert missing.returncode == 3 and "no run has the id 'run-000'" in missing.stderr


def test_doctor_reports_each_requirement(tmp_path: Path) -> None:
    done = shipyard_cmd("doctor", "--json", cwd=tmp_path)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert {"ffmpeg", "espeak-ng", "git", "piper", "config", "publish.remote"} <= set(checks)
    assert checks["ffmpeg"]["ok"] is True
    assert checks["publish.remote"]["ok"] is False and checks["publish.remote"]["fix"]
    assert done.returncode == 0  # publishing targets are optional until a run publishes


def test_every_setting_is_documented() -> None:
    from pydantic import BaseModel

    from shipyard import Config
    from shipyard_podcast.settings import TABLE, PodcastSettings

    docs = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()

    def keys(model: type[BaseModel], prefix: str = "") -> list[str]:
        found = []
        for name, field in model.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                found += keys(kind, f"{prefix}{name}.")
            elif name not in ("root", "tables"):
                found.append(prefix + name)
        return found

    settings = [*keys(Config), *keys(PodcastSettings, f"{TABLE}.")]
    missing = [k for k in settings if f"| `{k}` |" not in docs]
    assert not missing, f"docs/configuration.md does not document {missing}"


def test_a_file_from_before_the_podcast_table_says_how_to_move_each_key(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('[show]\ntitle = "Old"\n[script]\nwriters = []\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "shipyard.toml")
    assert "'show'" in str(caught.value)
    assert "rename [show] to [podcast.show], [script] to [podcast.script]" in (
        caught.value.hint or ""
    )
    (tmp_path / "shipyard.toml").write_text('[publish]\naudio_path = "a/{slug}.mp3"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "shipyard.toml")
    assert "'publish.audio_path'" in str(caught.value)
    assert "[podcast.site]" in (caught.value.hint or "")
    (tmp_path / "shipyard.toml").write_text("[podcast.show]\ntitle = 3\n")
    with pytest.raises(ConfigError, match=r"podcast\.show\.title"):
        load_config(tmp_path / "shipyard.toml")
    (tmp_path / "shipyard.toml").write_text("[nonsense]\nx = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "shipyard.toml")
    assert "known sections:" in (caught.value.hint or "") and "podcast" in caught.value.hint


def test_the_documented_example_configuration_loads(tmp_path: Path) -> None:
    import re

    docs = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    example = re.search(r"```toml\n(.*?)```", docs, re.S)
    assert example is not None
    (tmp_path / "shipyard.toml").write_text(example.group(1))
    config = load_config(tmp_path / "shipyard.toml")
    assert config.publish.base_url.startswith("https://")
    assert [h.name for h in podcast_settings(config).show.hosts] == ["Alex", "Sam"]


def test_the_readme_lists_every_command_and_only_real_ones() -> None:
    import re

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    documented = set(re.findall(r"`shipyard ([a-z-]+)", readme))
    real = {name.split()[0] for name, _ in _commands()} - {"version"}
    assert documented == real


def test_a_run_missing_a_required_setting_stops_before_anything_runs(tmp_path: Path) -> None:
    from shipyard_podcast.source.demo_paper import make_demo_paper

    (tmp_path / "shipyard.toml").write_text("[review]\nauto_approve = true\n")
    paper = make_demo_paper(tmp_path / "paper.pdf")
    done = shipyard_cmd("run", "paper-to-podcast", str(paper), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'publish.remote'" in done.stderr and "paper-to-podcast needs it" in done.stderr
    assert "init --local-production" in done.stderr and "Traceback" not in done.stderr
    assert "started" not in done.stdout  # no run, no step, nothing synthesized


@pytest.mark.hostile
@pytest.mark.parametrize(
    ("toml", "key", "says"),
    [
        ('state_dir = "/"', "state_dir", "a whole filesystem"),
        ('state_dir = "shipyard.toml"', "state_dir", "is a file, not a folder"),
        ('[publish]\nbranch = "-x"', "publish.branch", "not a git branch name"),
        ('[podcast.site]\naudio_path = "episodes/{0}.mp3"', "podcast.site", "may use {slug}"),
        ('[podcast.site]\npage_path = "episodes/{slug}.mp3"', "podcast.site", "the same file"),
        ('[podcast.site]\nfeed_path = "../feed.xml"', "podcast.site", "a relative path"),
        ('[podcast.site]\naudio_path = "episode.mp3"', "podcast.site", "must contain {slug}"),
        ("[podcast.show]\nhosts = []", "podcast.show.hosts", "at least 1 item"),
    ],
)
def test_a_setting_that_would_fail_a_run_late_is_refused_when_the_file_is_read(
    tmp_path: Path, toml: str, key: str, says: str
) -> None:
    (tmp_path / "shipyard.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "shipyard.toml")
    assert f"'{key}'" in str(caught.value) and says in str(caught.value)
