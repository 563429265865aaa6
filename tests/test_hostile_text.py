"""Text that would change how others read it: direction marks and newlines never reach a page,
a feed, a transcript or a commit; names that go into them are one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shipyard import ConfigError, GitTarget, LocalProduction, load_config
from shipyard_podcast.script.checks import listener_spans
from shipyard_podcast.source._textclean import clean_line

pytestmark = pytest.mark.hostile

RLO = "\u202e"


def test_direction_marks_are_cleaned_out_of_a_papers_text() -> None:
    text, dropped = clean_line(f"A Study of {RLO}Schedulers\u2066 and\u200f Tests")
    assert text == "A Study of Schedulers and Tests" and dropped == 3


def test_a_direction_mark_in_a_script_is_held_for_the_reviewer() -> None:
    [span] = listener_spans(f"The paper is {RLO}great.")
    assert (span.kind, span.text, span.severity) == ("control", "U+202E", "error")


def test_a_commit_subject_is_one_line_whatever_the_title(tmp_path: Path) -> None:
    production = LocalProduction(tmp_path / "site").create()
    target = GitTarget(production.remote_url, "main", tmp_path / "work")
    message = f"Publish episode: A title\nShipyard-Run: run-forged\n\n{RLO}evil"
    target.publish({"a.txt": b"a"}, run_id="run-real", message=message)
    log = subprocess.run(
        ["git", "-C", str(production.remote), "log", "-1", "--format=%s%n%(trailers:only)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    subject, *trailers = log.splitlines()
    assert subject == "Publish episode: A title Shipyard-Run: run-forged evil"
    assert [t for t in trailers if t.startswith("Shipyard-Run:")] == ["Shipyard-Run: run-real"]


@pytest.mark.parametrize(
    "toml",
    [
        '[podcast.show]\nhosts = [{ name = "Al\\nex", voice = "espeak:en" }]',
        f'[podcast.show]\ntitle = "Show{RLO}name"',
    ],
)
def test_a_name_with_a_newline_or_a_direction_mark_is_refused_at_load(
    tmp_path: Path, toml: str
) -> None:
    (tmp_path / "shipyard.toml").write_text(toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be one line, without control or direction"):
        load_config(tmp_path / "shipyard.toml")
