"""Episode profiles: format (deep-dive, brief, debate, critique), length, a focus for the
writers and one to four hosts, named in shipyard.toml and chosen per run (`--profile`),
recorded on the run and in its id."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard import ConfigError, RunState, load_config
from shipyard_podcast.script.checks import check_script
from shipyard_podcast.script.extractive import write_extractive
from shipyard_podcast.script.llm_writer import _instructions
from shipyard_podcast.settings import (
    TABLE,
    HostConfig,
    PodcastSettings,
    ScriptConfig,
    ShowConfig,
    podcast_settings,
)
from tests.project import make_project
from tests.test_script import make_paper

HOSTS = [HostConfig(name=n, voice="espeak:en-us") for n in ("Alex", "Sam", "Kim", "Noor")]
PROFILES = """
[podcast.profiles.solo]
script = { format = "brief", target_minutes = 1, focus = "the evaluation" }
show = { hosts = [{ name = "Alex", voice = "espeak:en-us" }] }

[podcast.profiles.panel]
script = { format = "critique" }
show = { hosts = [
    { name = "Alex", voice = "espeak:en-us" },
    { name = "Sam", voice = "espeak:en-us" },
    { name = "Kim", voice = "espeak:en-us" },
] }
"""


def test_a_profile_lays_its_settings_over_the_table(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text("[podcast.script]\ntarget_minutes = 3\n" + PROFILES)
    config = load_config(tmp_path / "shipyard.toml")
    base = podcast_settings(config)
    solo = podcast_settings(config.with_profile(TABLE, "solo"))
    assert (base.script.format, base.script.target_minutes, len(base.show.hosts)) == (
        "deep-dive",
        3,
        2,
    )
    assert (solo.script.format, solo.script.focus, len(solo.show.hosts)) == (
        "brief",
        "the evaluation",
        1,
    )
    assert config.fingerprint(TABLE) != config.with_profile(TABLE, "solo").fingerprint(TABLE)
    with pytest.raises(ConfigError, match="no profile 'duo'") as caught:
        config.with_profile(TABLE, "duo")
    assert "panel, solo" in (caught.value.hint or "")


def test_a_wrong_profile_is_caught_when_the_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(
        '[podcast.profiles.loud]\nscript = { format = "shouting" }\n'
    )
    with pytest.raises(ConfigError, match=r"podcast\.profiles\.loud\.script\.format"):
        load_config(tmp_path / "shipyard.toml")
    (tmp_path / "shipyard.toml").write_text("[podcast.show]\nhosts = []\n")
    with pytest.raises(ConfigError, match=r"podcast\.show\.hosts"):
        load_config(tmp_path / "shipyard.toml")


@pytest.mark.parametrize(("hosts", "form"), [(1, "brief"), (3, "deep-dive"), (4, "critique")])
def test_one_to_four_hosts_all_speak_and_pass_the_checks(hosts: int, form: str) -> None:
    settings = PodcastSettings(
        show=ShowConfig(hosts=HOSTS[:hosts]), script=ScriptConfig(format=form, target_minutes=1)
    )
    script = write_extractive(make_paper(), settings)
    errors = [f for f in check_script(script, make_paper(), settings) if f.severity == "error"]
    assert errors == []
    assert {t.speaker for t in script.turns} == {h.name for h in HOSTS[:hosts]}
    if hosts == 1:
        assert "I'm Alex." in script.turns[0].text and "with me" not in script.turns[0].text


def test_the_focus_steers_what_the_writers_dwell_on() -> None:
    plain = PodcastSettings(script=ScriptConfig(target_minutes=1.0))
    focused = PodcastSettings(
        script=ScriptConfig(
            target_minutes=1.0, focus="the percentile tail and mispredicted lengths"
        )
    )
    said = " ".join(t.text for t in write_extractive(make_paper(), focused).turns)
    before = " ".join(t.text for t in write_extractive(make_paper(), plain).turns)
    assert "percentile" in said and "percentile" not in before
    prompt = _instructions(focused, 300)
    assert "Dwell on this above all: the percentile tail and mispredicted lengths" in prompt


def test_the_writers_are_told_the_hosts_and_the_format() -> None:
    three = PodcastSettings(
        show=ShowConfig(hosts=HOSTS[:3]), script=ScriptConfig(format="critique")
    )
    prompt = _instructions(three, 300)
    assert "3 hosts discuss" in prompt and "- Kim:" in prompt and "a critique" in prompt
    assert "one host presents" in _instructions(
        PodcastSettings(show=ShowConfig(hosts=HOSTS[:1])), 300
    )


@pytest.mark.slow
def test_a_run_with_a_profile_records_it_and_is_its_own_run(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=True, extra=PROFILES) as project:
        done = project.run("run", "paper-to-podcast", str(project.paper), "--profile", "solo")
        assert done.returncode == 0, done.stdout + done.stderr
        ledger = project.ledger()
        solo = ledger.get(ledger.runs(limit=1)[0].run_id)
        assert solo.state is RunState.VERIFIED, solo.reason
        assert solo.input["profile"] == "solo"
        shown = project.run("status", solo.run_id)
        assert "(profile solo)" in shown.stdout
        episode = project.run("status", solo.run_id, "--json")
        assert '"profile": "solo"' in episode.stdout
        unknown = project.run("run", "paper-to-podcast", str(project.paper), "--profile", "duo")
        assert unknown.returncode == 2 and "no profile 'duo'" in unknown.stderr
