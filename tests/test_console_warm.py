"""A review's previews got ready when it is opened (`ReviewGate(warm=...)`): on a thread of
the console's own, one at a time, and a warm-up that fails is logged and tried again at the
next opening, never in the reviewer's way."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from pydantic import BaseModel

from shipyard import Config, ReviewGate
from shipyard.console._app import Console


class Note(BaseModel):
    text: str


def _console(tmp_path: Path) -> Console:
    return Console(Config.model_validate({"root": tmp_path, "state_dir": "state"}))


def test_one_warm_up_at_a_time_and_a_failed_one_is_logged_and_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    console = _console(tmp_path)
    release, entered, seen = threading.Event(), threading.Event(), []

    def warm(note: Note, config: Config) -> None:
        seen.append(note.text)
        entered.set()
        release.wait(10)
        if note.text == "broken":
            raise RuntimeError("the voice is not installed")

    gate = ReviewGate("warm-test", Note, warm=warm)
    console.warm(gate, {"text": "broken"})
    assert entered.wait(10)
    console.warm(gate, {"text": "meanwhile"})  # one is under way: not started again
    with caplog.at_level(logging.WARNING, logger="shipyard.console"):
        release.set()
        for _ in range(100):  # the failed one lets go of its turn
            if console._warming.acquire(timeout=0.1):
                console._warming.release()
                break
    assert seen == ["broken"]
    assert "previews ready failed: the voice is not installed" in caplog.text
    entered.clear()
    console.warm(gate, {"text": "again"})  # the next opening warms again
    assert entered.wait(10) and seen == ["broken", "again"]
