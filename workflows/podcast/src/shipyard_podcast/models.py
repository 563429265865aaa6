"""What each stage of paper-to-podcast hands to the next.

Pydantic models, because every one of them crosses a durable step boundary as JSON and is
read back on recovery; they are frozen so a stage cannot change what an earlier one produced.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, computed_field

from shipyard import Flag as CoreFlag


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- source -------------------------------------------------------------------------------


class Section(_Frozen):
    """One section of a paper's body, in reading order."""

    heading: str
    text: str
    first_page: int = Field(ge=1)
    last_page: int = Field(ge=1)


class PaperStats(_Frozen):
    pages: int = Field(ge=0)
    words: int = Field(ge=0)


class FrontMatter(_Frozen):
    """What page one says about the paper beyond its title and authors, and how sure the
    reading of each is: a source in words and a confidence from 0 to 1.

    `affiliations` runs beside `Paper.authors` (one list per author, empty where none was
    tied to the name). `doubts` says, for the reviewer, what made a reading less sure.
    `title_page` is False for a paper whose first page has no title block (a note, an
    abstract alone): it names no authors, and that is not a misreading.
    """

    subtitle: str = ""
    affiliations: list[list[str]] = []
    venue: str = ""
    year: int | None = None
    doi: str = ""
    arxiv_id: str = ""
    title_source: str = ""
    title_confidence: float = Field(default=1.0, ge=0, le=1)
    authors_source: str = ""
    authors_confidence: float = Field(default=1.0, ge=0, le=1)
    doubts: list[str] = []
    title_page: bool = True


class Paper(_Frozen):
    """A paper's text, cleaned and structured: what the script may draw on.

    `sections` hold only voiced text; references, appendices and extraction garbage are kept
    out of them (`references` are kept apart, never voiced).
    """

    source_sha256: str
    title: str
    authors: list[str] = []
    abstract: str = ""
    sections: list[Section] = []
    captions: list[str] = []
    references: list[str] = []
    language: str = "en"
    stats: PaperStats
    warnings: list[str] = []
    front: FrontMatter = FrontMatter()

    @property
    def body(self) -> str:
        """All voiced text: abstract and sections, in order."""
        parts = [self.abstract, *(s.text for s in self.sections)]
        return "\n\n".join(p for p in parts if p)


# --- script -------------------------------------------------------------------------------


class Host(_Frozen):
    name: str
    persona: str = ""
    voice: str  # a voice spec, e.g. "piper:en_US-joe-medium" or "espeak:en-us+f3"


MAX_TURNS = 2_000  # a script past this is not one to voice (a two-hour episode has ~1,200)
MAX_TURN_CHARS = 5_000  # about six minutes of one voice


class Turn(_Frozen):
    speaker: str  # a Host.name
    text: str = Field(max_length=MAX_TURN_CHARS)
    sections: list[str] = []  # headings of the paper sections this turn draws on
    chapter: str | None = None  # a turn that opens a chapter carries its title
    spans: list[str] = []  # passages of the paper, verbatim, that this turn draws on


class Credits(_Frozen):
    """Who and what an episode names: the paper's title and its authors in printed order, as
    the introduction, the episode's page, the feed and the MP3's tags say them. Taken from
    the paper when the script is written (never from a model's output); a reviewer may
    correct them."""

    title: str = Field(default="", max_length=500)
    authors: list[str] = Field(default=[], max_length=200)


class Script(_Frozen):
    """A conversation (or a solo presentation) about one paper, by one to four hosts."""

    show: str
    title: str
    hosts: list[Host] = Field(min_length=1, max_length=4)
    turns: list[Turn] = Field(max_length=MAX_TURNS)
    writer: str  # which writer produced it: "extractive", or a model name
    estimated_seconds: float = Field(ge=0)
    language: str = "en"  # the episode's language (BCP-47): what its turns are written in
    credits: Credits = Credits()  # empty in scripts written before credits were kept

    @property
    def words(self) -> int:
        return sum(len(t.text.split()) for t in self.turns)

    def credits_for(self, paper: Paper) -> Credits:
        """The credits this script gives `paper`: its own, or the paper's where it has none."""
        if self.credits.title or self.credits.authors:
            return self.credits
        return Credits(title=paper.title, authors=paper.authors)


class Flag(CoreFlag):
    """One check's finding about a script: what, how bad, and where."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    turn: int | None = None  # index into Script.turns
    span: str | None = None  # the offending text
    evidence: str | None = None  # where in the paper it was (or was not) found


class Attempt(_Frozen):
    """One writer's attempt: what it cost and what the checks said."""

    writer: str
    attempt: int  # 1-based, per writer
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    flags: list[Flag] = []
    error: str | None = None  # why the writer produced no script


class ScriptOutcome(_Frozen):
    """The script the chain settled on, its flags, and every attempt that led there."""

    # Its JSON carries the computed totals too; reading it back recomputes them.
    model_config = ConfigDict(frozen=True, extra="ignore")

    script: Script
    flags: list[Flag]
    attempts: list[Attempt]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """No error-severity flag remains."""
        return not any(f.severity == "error" for f in self.flags)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def input_tokens(self) -> int:
        return sum(a.input_tokens for a in self.attempts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def output_tokens(self) -> int:
        return sum(a.output_tokens for a in self.attempts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float:
        return round(sum(a.cost_usd for a in self.attempts), 6)


# --- audio --------------------------------------------------------------------------------


class Clip(_Frozen):
    """One synthesized turn."""

    turn: int
    sha256: str  # the WAV clip in the artifact store
    seconds: float


class Episode(_Frozen):
    """The mastered episode and its companions, all in the artifact store."""

    audio_sha256: str  # MP3
    audio_bytes: int
    seconds: float
    transcript_sha256: str  # WebVTT
    chapters_sha256: str  # Podcasting 2.0 chapters JSON
    loudness_lufs: float
    true_peak_dbtp: float
    cover_sha256: str = ""  # the cover art embedded in the MP3 (PNG or JPEG)
    mastered_at: AwareDatetime | None = None  # the episode's date: its release's `published`


# --- publish and verify -------------------------------------------------------------------


class Release(_Frozen):
    """What publish put into the site repository, and where production should serve it."""

    run_id: str
    guid: str
    commit: str
    files: dict[str, str]  # repository path -> sha256
    episode_url: str
    feed_url: str
    page_url: str
    audio_sha256: str
    audio_bytes: int
    image_url: str = ""  # the show's artwork, checked by verify when set
