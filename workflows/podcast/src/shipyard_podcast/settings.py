"""The flagship's settings: the `[podcast]` table of shipyard.toml and its subtables
(`[podcast.show]`, `[podcast.source]`, `[podcast.script]`, `[podcast.audio]`)."""

from __future__ import annotations

import re
import string
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shipyard import Config, ConfigError, ProviderName
from shipyard_podcast.artwork import artwork_problems
from shipyard_podcast.language import base_language, language_name, phrasebook, written_languages
from shipyard_podcast.models import Paper

if TYPE_CHECKING:
    from shipyard import Quota

__all__ = [
    "TABLE",
    "AudioConfig",
    "HostConfig",
    "ModelPrice",
    "PodcastSettings",
    "ScriptConfig",
    "ShowConfig",
    "SiteConfig",
    "SourceConfig",
    "podcast_settings",
    "provider_quotas",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_line(value: str) -> str:
    """A name said in transcripts, tags and commits: one line, no invisible marks."""
    if not value.isprintable():  # a line break, a control character, an invisible mark
        raise ValueError(f"{value!r} must be one line, without control or direction characters")
    return value


_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")


def _language_tag(tag: str) -> str:
    if tag and not _LANGUAGE_TAG.fullmatch(tag):
        raise ValueError(f"{tag!r} is not a language tag: write a BCP-47 tag such as de or pt-BR")
    return tag


class HostConfig(_Section):
    name: str
    voice: str  # the host's voice in its own language
    # the host's voice in other languages, by language tag ({ de = "piper:/v/de.onnx" }); a
    # language with none here, which `voice` does not speak, falls back on espeak-ng's voice
    voices: dict[str, str] = {}
    persona: str = ""

    _name_is_one_line = field_validator("name")(_one_line)

    @field_validator("voices")
    @classmethod
    def _voices_speak_their_language(cls, voices: dict[str, str]) -> dict[str, str]:
        from shipyard_podcast.audio.voices import speaks, voice_language

        for tag, voice in voices.items():
            _language_tag(tag)
            if not speaks(voice, tag):
                raise ValueError(
                    f"voices.{tag}: {voice} speaks {language_name(voice_language(voice) or '?')}"
                    f", not {language_name(tag)}: name a voice of that language"
                )
        return voices


_ARTWORK_READ = 4 * 1024 * 1024  # the checks read headers: past EXIF and ICC profiles


class ShowConfig(_Section):
    title: str = "Paper to Podcast"
    description: str = "Research papers, read and discussed by two hosts."
    author: str = "shipyard"
    owner_name: str = "shipyard"
    owner_email: str = "podcast@example.org"
    # The episodes' language (BCP-47, e.g. "de", "pt-BR"); empty: each paper's own. A run may
    # ask for another (`shipyard run ... --language es`).
    language: str = ""
    category: str = "Science"
    explicit: bool = False
    image: str = ""  # path to a square PNG/JPEG 1400-3000 px; empty: a generated cover
    # One to four hosts: the first asks and frames, the others explain in turn; one host
    # presents alone (the "brief" format's natural shape).
    hosts: list[HostConfig] = Field(
        default=[
            HostConfig(name="Alex", voice="piper:en_US-joe-medium", persona="curious host"),
            HostConfig(
                name="Sam", voice="festival:cmu_us_slt_arctic_hts", persona="explains the paper"
            ),
        ],
        min_length=1,
        max_length=4,
    )
    banned_phrases: list[str] = []
    pronunciations: dict[str, str] = {}  # written -> spoken, in every language
    # more of them for one language, by its tag: { de = { "LaTeX" = "Lah-tech" } }
    language_pronunciations: dict[str, dict[str, str]] = {}
    intro: str = ""  # a line the script must open with (in its first turns); empty: none
    outro: str = ""  # a line the script must close with (in its last turns); empty: none
    # Said in the opening (a required line, like `intro`), and written in the feed
    # (`podcast:txt purpose="ai-content"`), the show notes, the page and the MP3's tags.
    # Empty: the line of the episode's language's phrasebook ("This episode was made with AI,
    # and our voices are synthetic.").
    ai_disclosure: str = ""

    _names_are_one_line = field_validator("title", "author", "owner_name", "owner_email")(_one_line)
    _disclosure_is_one_line = field_validator("ai_disclosure")(_one_line)
    _language_is_a_tag = field_validator("language")(_language_tag)

    @field_validator("language_pronunciations")
    @classmethod
    def _by_language_tag(cls, tables: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for tag in tables:
            _language_tag(tag)
        return tables

    @field_validator("image")
    @classmethod
    def _usable_artwork(cls, image: str, info: ValidationInfo) -> str:
        """The artwork is checked when the file is read, against Apple's rules."""
        root = (info.context or {}).get("root")
        if not image or root is None:
            return image
        path = Path(image).expanduser()
        path = path if path.is_absolute() else Path(root) / path
        try:
            with path.open("rb") as f:
                data = f.read(_ARTWORK_READ)
        except OSError as exc:
            raise ValueError(f"cannot read the artwork {str(path)!r}: {exc.strerror}") from None
        problems = artwork_problems(data)
        if problems:
            raise ValueError(
                "; ".join(problems) + ": use a square PNG or JPEG of 1400-3000 px in RGB"
            )
        return image

    @field_validator("hosts")
    @classmethod
    def _distinct_names(cls, hosts: list[HostConfig]) -> list[HostConfig]:
        names = [h.name.strip() for h in hosts]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"the hosts need distinct, non-empty names, got {names}")
        return hosts


class SourceConfig(_Section):
    max_pages: int = Field(default=60, ge=1)
    max_bytes: int = Field(default=50_000_000, ge=1)
    # What extraction may use: text streams inflated (a compression bomb is refused before
    # pdfium sees it), the extracting child's address space, and its time.
    max_inflated_bytes: int = Field(default=100_000_000, ge=1)
    max_memory_mb: int = Field(default=1024, ge=256)
    timeout_seconds: float = Field(default=120.0, gt=0)
    languages: list[str] = []  # the papers' languages a show takes; empty: any language
    not_a_paper: Literal["refuse", "flag"] = "refuse"
    # where papers named by an arXiv id or a DOI are fetched from (docs/inputs.md)
    arxiv_url: str = "https://arxiv.org"
    doi_url: str = "https://doi.org"


class ModelPrice(_Section):
    """What one model costs, in USD per million tokens (0 for a local model)."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


OutputMode = Literal["tool", "native", "prompted"]


class ScriptConfig(_Section):
    target_minutes: float = Field(default=4.0, gt=0)
    writers: list[str] = ["extractive"]  # tried in order; "extractive" needs no model
    max_attempts_per_writer: int = Field(default=2, ge=1)
    max_tokens: int = Field(default=200_000, ge=0)
    max_cost_usd: float = Field(default=1.0, ge=0)
    prices: dict[str, ModelPrice] = {}  # writer string -> price; required for each LLM writer
    # writer string -> how it returns structured output: "tool" (tool calls), "native" (the
    # server constrains its answer to a JSON schema) or "prompted" (the schema in the prompt).
    # Unset: "native" for openai-compatible servers (llama.cpp, Ollama, vLLM), else "tool".
    output_modes: dict[str, OutputMode] = {}
    format: Literal["deep-dive", "brief", "debate", "critique"] = "deep-dive"
    focus: str = ""  # what the writers should dwell on, in words ("the evaluation's limits")
    request_timeout_seconds: float = Field(default=120.0, gt=0)  # per model request
    context_tokens: int = Field(default=24_000, ge=2_000)  # above: outline, then segments

    @model_validator(mode="after")
    def _every_model_writer_priced(self) -> ScriptConfig:
        priced = {"extractive", *self.prices}
        unpriced = [w.strip() for w in self.writers if w.strip() not in priced]
        if unpriced:
            raise ValueError(
                f"writer {unpriced[0]!r} has no price, so its cost cannot be held to the budget: "
                f'add [podcast.script.prices."{unpriced[0]}"] with input_per_mtok and '
                "output_per_mtok (USD per million tokens; 0 for a local model)"
            )
        chain = {w.strip() for w in self.writers} - {"extractive"}
        stray = [w for w in self.output_modes if w not in chain]
        if stray:
            raise ValueError(
                f"output_modes names {stray[0]!r}, which is not a model writer of "
                f"podcast.script.writers ({', '.join(sorted(chain)) or 'none'}): "
                "write the key exactly as the writer is written there"
            )
        return self


class AudioConfig(_Section):
    # turns spoken at once: 4 keeps every default engine busy (Piper one, Festival two, and a
    # turn waiting for each); measured 4-8% faster than 2 on 2 cores (docs/benchmarks.md)
    concurrency: int = Field(default=4, ge=1)
    bitrate_kbps: int = Field(default=128, ge=32, le=320)
    # LAME's algorithm quality, 0 (slowest) to 9: on speech at 128 kbps, 7 measured the same
    # signal-to-noise as 3 in half the time (docs/audio.md)
    mp3_quality: int = Field(default=7, ge=0, le=9)
    sample_rate: Literal[44100, 48000] = 44100
    target_lufs: float = -16.0
    max_true_peak_dbtp: float = -1.0
    intro: str = ""  # audio file played before the first turn (relative: to this file); "" none
    outro: str = ""  # audio file played after the last turn; "" none
    max_silence_seconds: float = Field(default=3.0, gt=0)  # integrity gate: longest silence
    duration_tolerance: float = Field(default=0.5, gt=0, lt=1)  # vs the script's estimate


class SiteConfig(_Section):
    """Where each file goes in the site repository ({slug}: the episode's slug)."""

    audio_path: str = "episodes/{slug}.mp3"
    page_path: str = "episodes/{slug}.html"
    transcript_path: str = "episodes/{slug}.vtt"
    chapters_path: str = "episodes/{slug}.chapters.json"
    feed_path: str = "feed.xml"
    index_path: str = "index.html"
    image_path: str = "cover.{ext}"  # the show's artwork; {ext} is png or jpg

    @model_validator(mode="after")
    def _paths_fit_the_repository(self) -> SiteConfig:
        """Each template uses only its documented field, stays inside the repository, and
        no two name the same file (checked when the file is read, not after synthesis)."""
        fields = {
            "audio_path": {"slug"},
            "page_path": {"slug"},
            "transcript_path": {"slug"},
            "chapters_path": {"slug"},
            "feed_path": set(),
            "index_path": set(),
            "image_path": {"ext"},
        }
        made: dict[str, str] = {}
        for name, allowed in fields.items():
            template: str = getattr(self, name)
            try:
                used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            except ValueError as exc:
                raise ValueError(f"{name}: {exc} in {template!r}") from None
            if used - allowed:
                fields_named = ", ".join("{" + f + "}" for f in sorted(allowed)) or "no field"
                raise ValueError(
                    f"{name} may use {fields_named}, not {', '.join(sorted(used - allowed))!r}"
                )
            if allowed == {"slug"} and "slug" not in used:
                raise ValueError(
                    f"{name} must contain {{slug}}, or every episode overwrites the last"
                )
            path = PurePosixPath(template.format(slug="x", ext="png"))
            if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in template:
                raise ValueError(f"{name} {template!r} must be a relative path in the repository")
            if str(path) in made:
                raise ValueError(f"{name} and {made[str(path)]} name the same file: {template!r}")
            made[str(path)] = name
        return self


class PodcastSettings(_Section):
    """Everything paper-to-podcast reads from its own table."""

    show: ShowConfig = ShowConfig()
    source: SourceConfig = SourceConfig()
    script: ScriptConfig = ScriptConfig()
    audio: AudioConfig = AudioConfig()
    site: SiteConfig = SiteConfig()
    # a model writer's or a host voice's string -> the provider ([providers.NAME]) whose
    # limits its calls hold, across every worker
    providers: dict[str, ProviderName] = {}

    @model_validator(mode="after")
    def _voices_speak_the_language(self, info: ValidationInfo) -> PodcastSettings:
        """A show with a language has a voice in it for every host, checked when the file is
        read (and when a run asks for a language); a paper's own language, when the paper is."""
        if self.show.language and (info.context or {}).get("root") is not None:
            try:
                self.for_language(self.show.language)
            except ConfigError as exc:
                raise ValueError(f"{exc.message} ({exc.hint})") from None
        return self

    def language_for(self, paper: Paper) -> str:
        """The language of `paper`'s episode: the show's, or else the paper's own."""
        return self.show.language or paper.language

    def for_language(self, language: str) -> PodcastSettings:
        """These settings for an episode in `language`: the show's language, its AI disclosure
        said in that language, each host's voice for it and its pronunciations (ConfigError
        where a host has no voice, or the disclosure no line, in it)."""
        from shipyard_podcast.audio.voices import host_voice

        show = self.show
        hosts = [
            h.model_copy(update={"voice": host_voice(h.name, h.voice, h.voices, language, i)})
            for i, h in enumerate(show.hosts)
        ]
        book = phrasebook(language)
        disclosure = show.ai_disclosure or (book.ai_disclosure if book else "")
        if not disclosure:
            raise ConfigError(
                f"the show has no AI disclosure in {language_name(language)}",
                key="podcast.show.ai_disclosure",
                hint="set it to the line in that language (a profile can hold one per "
                "language); phrasebooks with one: " + ", ".join(written_languages()),
            )
        lexicon = (
            show.pronunciations
            | show.language_pronunciations.get(base_language(language), {})
            | show.language_pronunciations.get(language, {})
        )
        update = {
            "language": language,
            "ai_disclosure": disclosure,
            "hosts": hosts,
            "pronunciations": lexicon,
        }
        if all(getattr(show, key) == value for key, value in update.items()):
            return self
        return self.model_copy(update={"show": show.model_copy(update=update)})

    @model_validator(mode="after")
    def _providers_are_for_writers_and_voices(self) -> PodcastSettings:
        writers = {w.strip() for w in self.script.writers} - {"extractive"}
        voices = {h.voice for h in self.show.hosts}
        for key in self.providers:
            if key not in writers | voices:
                raise ValueError(
                    f"providers: {key!r} is neither a model writer of script.writers nor a "
                    "host's voice: name one of them exactly as written there"
                )
            if key in voices:
                from shipyard_podcast.audio.voices import calls_a_service

                if not calls_a_service(key):
                    raise ValueError(
                        f"providers: voice {key!r} is spoken on this machine and calls no "
                        "provider: name providers only for voices of a service (openai-tts, "
                        "kokoro, elevenlabs)"
                    )
        return self


TABLE = "podcast"  # the flagship's table in shipyard.toml


def podcast_settings(config: Config) -> PodcastSettings:
    """The flagship's settings from a project's configuration."""
    return config.settings(PodcastSettings, TABLE)


def provider_quotas(settings: PodcastSettings, config: Config) -> dict[str, Quota]:
    """Each writer's and voice's provider quota (`podcast.providers`), by its string."""
    from shipyard import provider_quota  # the ledger's database: not for an extraction child

    return {spec: provider_quota(name, config) for spec, name in settings.providers.items()}
