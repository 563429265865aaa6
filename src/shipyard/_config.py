"""Project configuration: one TOML file (`shipyard.toml`), validated once at start-up.

A missing or wrong setting is a ConfigError naming the key and the file. Every setting has a
working default, so a project needs only the file `shipyard init` writes. Paths in the file
are relative to the file's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard._errors import ConfigError

__all__ = ["CONFIG_FILE", "Config", "load_config"]

CONFIG_FILE = "shipyard.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EngineConfig(_Section):
    database_url: str = ""  # empty: SQLite file in the state folder
    executor_id: str = "local"  # stable per worker process; env SHIPYARD_EXECUTOR_ID wins
    application_version: str = ""  # empty: derived from shipyard's version


class HostConfig(_Section):
    name: str
    voice: str
    persona: str = ""


class ShowConfig(_Section):
    title: str = "Paper to Podcast"
    description: str = "Research papers, read and discussed by two hosts."
    author: str = "shipyard"
    owner_name: str = "shipyard"
    owner_email: str = "podcast@example.org"
    language: str = "en"
    category: str = "Science"
    explicit: bool = False
    image: str = ""  # path to a square PNG/JPEG 1400-3000 px; empty: a generated cover
    hosts: list[HostConfig] = [
        HostConfig(name="Alex", voice="piper:en_US-joe-medium", persona="curious host"),
        HostConfig(
            name="Sam", voice="festival:cmu_us_slt_arctic_hts", persona="explains the paper"
        ),
    ]
    banned_phrases: list[str] = []
    pronunciations: dict[str, str] = {}
    intro: str = ""  # a line the script must open with (in its first turns); empty: none
    outro: str = ""  # a line the script must close with (in its last turns); empty: none


class SourceConfig(_Section):
    max_pages: int = Field(default=60, ge=1)
    max_bytes: int = Field(default=50_000_000, ge=1)
    languages: list[str] = ["en"]
    not_a_paper: Literal["refuse", "flag"] = "refuse"


class ModelPrice(_Section):
    """What one model costs, in USD per million tokens (0 for a local model)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class ScriptConfig(_Section):
    target_minutes: float = Field(default=4.0, gt=0)
    writers: list[str] = ["extractive"]  # tried in order; "extractive" needs no model
    max_attempts_per_writer: int = Field(default=2, ge=1)
    max_tokens: int = Field(default=200_000, ge=0)
    max_cost_usd: float = Field(default=1.0, ge=0)
    prices: dict[str, ModelPrice] = {}  # writer string -> price; required for each LLM writer
    format: Literal["deep-dive", "brief", "debate"] = "deep-dive"
    request_timeout_seconds: float = Field(default=120.0, gt=0)  # per model request
    context_tokens: int = Field(default=24_000, ge=2_000)  # above: outline, then segments


class ReviewConfig(_Section):
    reviewers: list[str] = ["editor"]
    deadline_hours: float = Field(default=72.0, gt=0)
    escalate_to: str = ""
    auto_approve: bool = False


class AudioConfig(_Section):
    concurrency: int = Field(default=2, ge=1)
    bitrate_kbps: int = Field(default=128, ge=32, le=320)
    sample_rate: Literal[44100, 48000] = 44100
    target_lufs: float = -16.0
    max_true_peak_dbtp: float = -1.0
    intro: str = ""  # audio file played before the first turn (relative: to this file); "" none
    outro: str = ""  # audio file played after the last turn; "" none
    max_silence_seconds: float = Field(default=3.0, gt=0)  # integrity gate: longest silence
    duration_tolerance: float = Field(default=0.5, gt=0, lt=1)  # vs the script's estimate


class PublishConfig(_Section):
    remote: str = ""  # git URL or path of the site repository's remote
    branch: str = "main"
    base_url: str = ""  # where production serves the site, e.g. https://example.org/podcast/
    audio_path: str = "episodes/{slug}.mp3"
    page_path: str = "episodes/{slug}.html"
    transcript_path: str = "episodes/{slug}.vtt"
    chapters_path: str = "episodes/{slug}.chapters.json"
    feed_path: str = "feed.xml"
    index_path: str = "index.html"
    image_path: str = "cover.{ext}"  # the show's artwork; {ext} is png or jpg
    max_file_bytes: int = Field(default=100_000_000, ge=1)
    author_name: str = "shipyard"
    author_email: str = "shipyard@localhost"


class VerifyConfig(_Section):
    deadline_seconds: float = Field(default=120.0, gt=0)
    first_delay_seconds: float = Field(default=0.5, ge=0)
    max_delay_seconds: float = Field(default=10.0, gt=0)
    webhook: str = ""  # notified when a run ends unverified


class Config(_Section):
    """The whole configuration. `root` is the folder the file is in."""

    root: Path = Path(".")
    state_dir: Path = Path(".shipyard")
    engine: EngineConfig = EngineConfig()
    show: ShowConfig = ShowConfig()
    source: SourceConfig = SourceConfig()
    script: ScriptConfig = ScriptConfig()
    review: ReviewConfig = ReviewConfig()
    audio: AudioConfig = AudioConfig()
    publish: PublishConfig = PublishConfig()
    verify: VerifyConfig = VerifyConfig()

    @property
    def state(self) -> Path:
        """The state folder: system database, artifacts, workspaces."""
        return self.state_dir if self.state_dir.is_absolute() else self.root / self.state_dir

    @property
    def database_url(self) -> str:
        return self.engine.database_url or f"sqlite:///{(self.state / 'shipyard.sqlite').resolve()}"

    @property
    def executor_id(self) -> str:
        return os.environ.get("SHIPYARD_EXECUTOR_ID") or self.engine.executor_id

    def resolve(self, path: str | Path) -> Path:
        """A path from the file, made absolute against the file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.root / p).resolve()

    def fingerprint(self) -> str:
        """A hash of every setting that shapes a run's output (part of the run id)."""
        data = self.model_dump(mode="json", exclude={"root", "state_dir", "engine"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate `shipyard.toml`.

    With no path, looks in the current folder and its parents, and falls back to the defaults
    rooted in the current folder when there is no file at all.
    """
    file = Path(path) if path is not None else _find_config(Path.cwd())
    if file is None:
        return Config(root=Path.cwd().resolve())
    if not file.is_file():
        raise ConfigError("no such file", file=str(file), hint="run `shipyard init` to create one")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(file)) from None
    try:
        return Config.model_validate({**data, "root": file.parent.resolve()})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(
            first["msg"],
            key=key,
            file=str(file),
            hint=f"{len(exc.errors())} problem(s); see docs/configuration.md",
        ) from None


def _find_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None
