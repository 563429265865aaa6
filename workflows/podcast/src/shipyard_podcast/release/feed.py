"""The show's site: the episode manifest, the RSS feed, an HTML page per episode, the index.

The site repository keeps one manifest, `episodes.json` (`SiteManifest`), listing every
published episode with its paths relative to the site root. The feed and the index are always
regenerated from it, so they never disagree with it, and rendering is deterministic: the
same manifest gives the same bytes (a re-run publish step then finds nothing to commit).

The feed follows RSS 2.0 with the `itunes` and Podcasting 2.0 (`podcast`) namespaces, to the
checklist in ARCHITECTURE.md; `validate_feed` checks that checklist and names the tag in each
problem. It runs before anything is committed, and as `shipyard validate-feed`.
"""

from __future__ import annotations

import html
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape, quoteattr

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shipyard import PublishFailed
from shipyard_podcast.language import Phrasebook, wording
from shipyard_podcast.settings import ShowConfig

__all__ = [
    "MANIFEST_PATH",
    "Cue",
    "FeedItem",
    "ManifestEpisode",
    "ParsedFeed",
    "ShowInfo",
    "SiteManifest",
    "chapters_from_json",
    "normalize_base_url",
    "parse_feed",
    "parse_vtt",
    "render_episode_page",
    "render_feed",
    "render_index",
    "site_url",
    "validate_feed",
]

MANIFEST_PATH = "episodes.json"
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
# Podcasting 2.0's namespace. Its spec takes two URIs; gPodder's parser (podcastparser) knows
# only this one, so our feeds declare it, and feeds that declare the other are read the same.
PODCAST = "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"
_PODCAST_ALIAS = re.compile(rb"""(xmlns:\w+=["'])https://podcastindex\.org/namespace/1\.0(["'])""")


def _one_podcast_namespace(xml: bytes) -> bytes:
    return _PODCAST_ALIAS.sub(rb"\g<1>" + PODCAST.encode() + rb"\g<2>", xml)


ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
_PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")  # Podcasting 2.0
DESCRIPTION_LIMIT = 4000  # bytes, channel description (Apple)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ShowInfo(_Model):
    """The channel: what the show is, where its site and artwork live."""

    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    author: str
    owner_name: str
    owner_email: str
    language: str  # BCP-47; empty: the newest episode's (a show in its papers' languages)
    category: str
    explicit: bool
    link: str  # the site's base URL (ends with "/")
    image_url: str
    feed_url: str
    ai_disclosure: str = ""  # said of every episode that has none of its own

    def speaking(self, episodes: Sequence[ManifestEpisode]) -> ShowInfo:
        """The show with its language said: its own, else its newest episode's, else English."""
        if self.language:
            return self
        said = next((e.language for e in _newest_first(episodes) if e.language), "en")
        return self.model_copy(update={"language": said})

    @classmethod
    def from_config(
        cls, show: ShowConfig, *, base_url: str, feed_path: str, image_path: str
    ) -> ShowInfo:
        base = normalize_base_url(base_url)
        return cls(
            title=show.title,
            description=show.description,
            author=show.author,
            owner_name=show.owner_name,
            owner_email=show.owner_email,
            language=show.language,
            category=show.category,
            explicit=show.explicit,
            link=base,
            image_url=site_url(base, image_path),
            feed_url=site_url(base, feed_path),
            # unset: the line of the show's language (English for a show of many languages)
            ai_disclosure=show.ai_disclosure or wording(show.language or "en").ai_disclosure,
        )


class ManifestEpisode(_Model):
    """One published episode, as the site's manifest records it (paths relative to the site)."""

    guid: str = Field(min_length=1)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    description: str = ""
    published: AwareDatetime
    duration_seconds: float = Field(ge=0)
    audio_path: str
    audio_bytes: int = Field(gt=0)
    audio_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    page_path: str
    transcript_path: str
    chapters_path: str
    paper_title: str = ""
    paper_sha256: str = ""
    paper_url: str = ""
    run_id: str = ""
    # Who is heard and who wrote the paper (`podcast:person`), and the AI disclosure
    # (`podcast:txt purpose="ai-content"`); empty in episodes released before they were kept.
    hosts: list[str] = []
    authors: list[str] = []
    ai_disclosure: str = ""
    language: str = ""  # BCP-47; empty in episodes released before it was kept: the show's


class SiteManifest(_Model):
    """`episodes.json`: every published episode, newest first."""

    version: int = 1
    episodes: list[ManifestEpisode] = []

    @classmethod
    def from_json(cls, data: bytes | str) -> SiteManifest:
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise PublishFailed(
                f"{MANIFEST_PATH} in the site repository is not a valid manifest: "
                f"{exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}",
                code="manifest-invalid",
                hint=f"fix or delete {MANIFEST_PATH} in the site repository",
            ) from None

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()

    def upsert(self, episode: ManifestEpisode) -> SiteManifest:
        """This manifest with `episode` added, or replacing the one with its GUID."""
        others = [e for e in self.episodes if e.guid != episode.guid]
        return SiteManifest(version=self.version, episodes=_newest_first([*others, episode]))

    def without(self, guid: str) -> SiteManifest:
        return SiteManifest(
            version=self.version, episodes=[e for e in self.episodes if e.guid != guid]
        )

    def get(self, guid: str) -> ManifestEpisode | None:
        return next((e for e in self.episodes if e.guid == guid), None)


def _newest_first(episodes: Sequence[ManifestEpisode]) -> list[ManifestEpisode]:
    return sorted(episodes, key=lambda e: (e.published, e.guid), reverse=True)


def normalize_base_url(base_url: str) -> str:
    if not urlsplit(base_url).scheme:
        raise PublishFailed(
            f"not an absolute base URL: {base_url!r}",
            code="base-url",
            hint="set publish.base_url to where production serves the site, e.g. "
            "https://example.org/podcast/",
        )
    return base_url if base_url.endswith("/") else base_url + "/"


def site_url(base_url: str, path: str) -> str:
    """The public URL of a repository path."""
    return urljoin(normalize_base_url(base_url), path.lstrip("/"))


# --- feed ---------------------------------------------------------------------------------


def _text(value: str) -> str:
    """Text that survives XML 1.0: control characters dropped, line ends normalized."""
    return _XML_INVALID.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _el(tag: str, value: str, **attrs: str) -> str:
    attributes = "".join(f" {k.replace('_', ':')}={quoteattr(_text(v))}" for k, v in attrs.items())
    return f"<{tag}{attributes}>{escape(_text(value))}</{tag}>"


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def render_feed(show: ShowInfo, episodes: Sequence[ManifestEpisode]) -> bytes:
    """The RSS feed for `episodes` (newest first), deterministic for the same input."""
    show = show.speaking(episodes)
    ordered = _newest_first(episodes)
    podcast_guid = uuid.uuid5(_PODCAST_GUID_NAMESPACE, re.sub(r"^\w+://", "", show.feed_url))
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<rss version="2.0" xmlns:itunes="{ITUNES}" xmlns:podcast="{PODCAST}" '
        f'xmlns:atom="{ATOM}" xmlns:content="{CONTENT}">',
        "<channel>",
        _el("title", show.title),
        _el("link", show.link),
        _el("description", show.description),
        _el("language", show.language),
        f'<atom:link href={quoteattr(show.feed_url)} rel="self" type="application/rss+xml"/>',
        _el("podcast:guid", str(podcast_guid)),
        _el("podcast:locked", "no"),
        _el("itunes:author", show.author),
        f"<itunes:image href={quoteattr(show.image_url)}/>",
        "<image>"
        + _el("url", show.image_url)
        + _el("title", show.title)
        + _el("link", show.link)
        + "</image>",
        f"<itunes:category text={quoteattr(_text(show.category))}/>",
        _el("itunes:explicit", "true" if show.explicit else "false"),
        _el("itunes:type", "episodic"),
        "<itunes:owner>"
        + _el("itunes:name", show.owner_name)
        + _el("itunes:email", show.owner_email)
        + "</itunes:owner>",
    ]
    if ordered:
        lines.append(_el("lastBuildDate", _rfc2822(ordered[0].published)))
    for ep in ordered:
        base = show.link
        lines += [
            "<item>",
            _el("title", ep.title),
            _el("description", ep.description or ep.title),
            _el("link", site_url(base, ep.page_path)),
            _el("guid", ep.guid, isPermaLink="false"),
            _el("pubDate", _rfc2822(ep.published)),
            f"<enclosure url={quoteattr(site_url(base, ep.audio_path))} "
            f'length="{ep.audio_bytes}" type="audio/mpeg"/>',
            _el("itunes:duration", str(round(ep.duration_seconds))),
            _el("itunes:episodeType", "full"),
            _el("itunes:explicit", "true" if show.explicit else "false"),
            f"<podcast:transcript url={quoteattr(site_url(base, ep.transcript_path))} "
            'type="text/vtt" language='
            + quoteattr(_text(ep.language or show.language))
            + ' rel="captions"/>',
            f"<podcast:chapters url={quoteattr(site_url(base, ep.chapters_path))} "
            'type="application/json+chapters"/>',
        ]
        disclosure = ep.ai_disclosure or show.ai_disclosure
        if disclosure:
            lines.append(_el("podcast:txt", disclosure, purpose="ai-content"))
        lines += [_el("podcast:person", name, role="host") for name in ep.hosts]
        lines += [
            _el("podcast:person", name, group="writing", role="author") for name in ep.authors
        ]
        lines.append("</item>")
    lines += ["</channel>", "</rss>", ""]
    return "\n".join(lines).encode("utf-8")


class FeedItem(_Model):
    """One `<item>` as read back from a feed; empty strings and None where a tag is absent."""

    guid: str
    title: str
    description: str
    link: str
    pub_date: datetime | None
    enclosure_url: str
    enclosure_length: int | None
    enclosure_type: str
    duration_seconds: int | None
    transcript_url: str
    chapters_url: str


class ParsedFeed(_Model):
    title: str
    description: str
    link: str
    language: str
    image_url: str
    items: list[FeedItem]

    def item(self, guid: str) -> FeedItem | None:
        return next((i for i in self.items if i.guid == guid), None)


def _find_text(parent: ET.Element, tag: str) -> str:
    found = parent.find(tag)
    return (found.text or "") if found is not None else ""


def _attr(parent: ET.Element, tag: str, name: str) -> str:
    found = parent.find(tag)
    return found.get(name, "") if found is not None else ""


def _int_or_none(value: str) -> int | None:
    return int(value) if re.fullmatch(r"\d+", value.strip()) else None


def _duration(value: str) -> int | None:
    """itunes:duration as seconds: "75", "1:15" or "0:01:15"."""
    parts = value.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+", p) for p in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds


def _date_or_none(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_feed(xml: bytes) -> ParsedFeed:
    """Read a feed's channel and items. Raises ValueError when it is not an RSS document."""
    try:
        root = ET.fromstring(_one_podcast_namespace(xml))
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise ValueError(f"not an RSS feed: the root is <{root.tag}>, expected <rss><channel>")
    items = [
        FeedItem(
            guid=_find_text(item, "guid").strip(),
            title=_find_text(item, "title"),
            description=_find_text(item, "description"),
            link=_find_text(item, "link").strip(),
            pub_date=_date_or_none(_find_text(item, "pubDate")),
            enclosure_url=_attr(item, "enclosure", "url"),
            enclosure_length=_int_or_none(_attr(item, "enclosure", "length")),
            enclosure_type=_attr(item, "enclosure", "type"),
            duration_seconds=_duration(_find_text(item, f"{{{ITUNES}}}duration")),
            transcript_url=_attr(item, f"{{{PODCAST}}}transcript", "url"),
            chapters_url=_attr(item, f"{{{PODCAST}}}chapters", "url"),
        )
        for item in channel.findall("item")
    ]
    return ParsedFeed(
        title=_find_text(channel, "title"),
        description=_find_text(channel, "description"),
        link=_find_text(channel, "link").strip(),
        language=_find_text(channel, "language").strip(),
        image_url=_attr(channel, f"{{{ITUNES}}}image", "href"),
        items=items,
    )


def validate_feed(xml: bytes) -> list[str]:
    """Every way the feed misses the publishing checklist; each problem names the tag."""
    xml = _one_podcast_namespace(xml)
    declared = set(re.findall(rb'xmlns:(\w+)=["\']([^"\']*)["\']', xml))
    problems = [
        f"<rss>: the {prefix} namespace ({uri}) is not declared"
        for prefix, uri in (("itunes", ITUNES), ("podcast", PODCAST))
        if (prefix.encode(), uri.encode()) not in declared
    ]
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return [f"<rss>: not well-formed XML: {exc}", *problems]
    if root.tag != "rss":
        return [f"<rss>: the root element is <{root.tag}>", *problems]
    if root.get("version") != "2.0":
        problems.append(f"<rss>: version is {root.get('version')!r}, expected '2.0'")
    channel = root.find("channel")
    if channel is None:
        return [*problems, "<channel>: missing"]
    problems += _channel_problems(channel)
    guids: dict[str, int] = {}
    enclosures: dict[str, int] = {}
    for number, item in enumerate(channel.findall("item"), start=1):
        guid = _find_text(item, "guid").strip()
        where = f"item {number}" + (f" (guid {guid})" if guid else "")
        problems += [f"{where}: {p}" for p in _item_problems(item)]
        if guid:
            if guid in guids:
                problems.append(f"{where}: <guid> repeats item {guids[guid]}'s")
            guids.setdefault(guid, number)
        url = _attr(item, "enclosure", "url")
        if url:
            if url in enclosures:
                problems.append(f"{where}: <enclosure> url is shared with item {enclosures[url]}")
            enclosures.setdefault(url, number)
    return problems


def _required_text(parent: ET.Element, tag: str, label: str) -> tuple[str, list[str]]:
    found = parent.find(tag)
    if found is None:
        return "", [f"missing <{label}>"]
    value = (found.text or "").strip()
    return value, ([] if value else [f"<{label}> is empty"])


def _channel_problems(channel: ET.Element) -> list[str]:
    problems: list[str] = []
    for tag in ("title", "link", "language"):
        problems += _required_text(channel, tag, tag)[1]
    description, missing = _required_text(channel, "description", "description")
    problems += missing
    if len(description.encode()) > DESCRIPTION_LIMIT:
        problems.append(
            f"<description> is {len(description.encode())} bytes, over {DESCRIPTION_LIMIT}"
        )
    if not _attr(channel, f"{{{ITUNES}}}image", "href"):
        problems.append("missing <itunes:image href=...>")
    if not _attr(channel, f"{{{ITUNES}}}category", "text"):
        problems.append("missing <itunes:category text=...>")
    explicit, missing = _required_text(channel, f"{{{ITUNES}}}explicit", "itunes:explicit")
    problems += missing
    if explicit and explicit not in ("true", "false"):
        problems.append(f"<itunes:explicit> is {explicit!r}, expected 'true' or 'false'")
    owner = channel.find(f"{{{ITUNES}}}owner")
    if owner is None:
        problems.append("missing <itunes:owner>")
    else:
        problems += _required_text(owner, f"{{{ITUNES}}}email", "itunes:email")[1]
    return [f"channel: {p}" for p in problems]


def _item_problems(item: ET.Element) -> list[str]:
    problems: list[str] = []
    problems += _required_text(item, "title", "title")[1]
    problems += _required_text(item, "guid", "guid")[1]
    enclosure = item.find("enclosure")
    if enclosure is None:
        problems.append("missing <enclosure>")
    else:
        if not urlsplit(enclosure.get("url", "")).scheme:
            problems.append(f"<enclosure> url {enclosure.get('url', '')!r} is not absolute")
        length = enclosure.get("length", "")
        if (_int_or_none(length) or 0) <= 0:
            problems.append(f"<enclosure> length {length!r} is not a positive byte count")
        if enclosure.get("type") != "audio/mpeg":
            problems.append(f"<enclosure> type is {enclosure.get('type')!r}, expected audio/mpeg")
    date, missing = _required_text(item, "pubDate", "pubDate")
    problems += missing
    if date and _date_or_none(date) is None:
        problems.append(f"<pubDate> {date!r} is not an RFC 2822 date with a zone")
    duration, missing = _required_text(item, f"{{{ITUNES}}}duration", "itunes:duration")
    problems += missing
    if duration and _duration(duration) is None:
        problems.append(f"<itunes:duration> {duration!r} is not seconds or [HH:]MM:SS")
    for tag, kind in (("transcript", "text/vtt"), ("chapters", "application/json+chapters")):
        found = item.find(f"{{{PODCAST}}}{tag}")
        if found is None:
            problems.append(f"missing <podcast:{tag}>")
            continue
        if not found.get("url"):
            problems.append(f"<podcast:{tag}> has no url")
        if found.get("type") != kind:
            problems.append(f"<podcast:{tag}> type is {found.get('type')!r}, expected {kind}")
    disclosed = [t for t in item.findall(f"{{{PODCAST}}}txt") if t.get("purpose") == "ai-content"]
    if not disclosed or not (disclosed[0].text or "").strip():
        problems.append('missing <podcast:txt purpose="ai-content">: the AI disclosure')
    return problems


# --- pages --------------------------------------------------------------------------------


class Cue(_Model):
    start: str  # "00:00:01.000"
    speaker: str
    text: str


_CUE_TIME = re.compile(r"^(\S+)\s+-->\s+\S+")
_VOICE = re.compile(r"^<v(?:\.[\w.-]+)?\s+([^>]+)>(.*?)(?:</v>)?$")


def parse_vtt(vtt: str) -> list[Cue]:
    """The cues of a WebVTT transcript, with the speaker from `<v Name>` voice tags."""
    cues: list[Cue] = []
    for block in re.split(r"\n\s*\n", vtt.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        timing = next((i for i, line in enumerate(lines) if _CUE_TIME.match(line)), None)
        if timing is None:
            continue  # the header, NOTE and STYLE blocks
        start = _CUE_TIME.match(lines[timing])
        assert start is not None
        speaker, texts = "", []
        for line in lines[timing + 1 :]:
            voice = _VOICE.match(line.strip())
            if voice:
                speaker, line = voice.group(1).strip(), voice.group(2)
            texts.append(re.sub(r"<[^>]+>", "", line).strip())
        cues.append(
            Cue(start=start.group(1), speaker=speaker, text=" ".join(t for t in texts if t))
        )
    return cues


_PAGE = """<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {show}</title>
<link rel="alternate" type="application/rss+xml" title="{show}" href="{feed}">
<style>
body {{ font: 17px/1.55 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }}
header img {{ width: 8rem; height: 8rem; border-radius: .5rem; float: right; margin-left: 1rem; }}
audio {{ width: 100%; margin: 1rem 0; }}
.cue {{ margin: .4rem 0; }} .cue b {{ color: #3b5bdb; }} .cue time {{ color: #868e96; font-size: .8em; margin-right: .4rem; }}
footer {{ margin-top: 3rem; font-size: .85em; color: #868e96; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""  # noqa: E501


def _page(show: ShowInfo, title: str, body: str, language: str) -> bytes:
    return _PAGE.format(
        lang=html.escape(language),
        title=html.escape(title),
        show=html.escape(show.title),
        feed=html.escape(show.feed_url),
        body=body,
    ).encode("utf-8")


def _date(moment: datetime, book: Phrasebook) -> str:
    day = moment.astimezone(UTC)
    return str(book.page["date"]).format(day=day.day, month=book.month(day.month), year=day.year)


def render_episode_page(
    show: ShowInfo,
    episode: ManifestEpisode,
    *,
    transcript_vtt: str,
    chapters: Sequence[tuple[float, str]] = (),
) -> bytes:
    """An episode's page, in its language: player, show notes, chapters, transcript, and
    the paper."""
    e = html.escape
    base = show.link
    language = episode.language or show.speaking([episode]).language
    words = wording(language).page
    audio = site_url(base, episode.audio_path)
    named = e(episode.paper_title or words["the_paper"])
    if episode.paper_url:
        paper = f'<a href="{e(episode.paper_url)}">{named}</a>'
    else:
        paper = f"<cite>{named}</cite>"
    if episode.paper_sha256:
        paper += f" <small>(PDF SHA-256 <code>{e(episode.paper_sha256[:16])}…</code>)</small>"
    parts = [
        f'<header><img src="{e(show.image_url)}" alt="{e(show.title)} artwork">',
        f'<p><a href="{e(base)}">{e(show.title)}</a></p>',
        f"<h1>{e(episode.title)}</h1>",
        f'<p><time datetime="{episode.published.isoformat()}">'
        f"{_date(episode.published, wording(language))}</time> · "
        f"{_clock(episode.duration_seconds)}</p></header>",
        f'<audio controls preload="metadata" src="{e(audio)}"></audio>',
        f'<p><a href="{e(audio)}" download>{e(words["download"])}</a> · '
        f'<a href="{e(show.feed_url)}">{e(words["subscribe"])}</a></p>',
        f"<section><h2>{e(words['show_notes'])}</h2>",
        *(f"<p>{e(p)}</p>" for p in (episode.description or episode.title).split("\n\n")),
        f"<p>{e(words['based_on']).format(paper=paper)}</p></section>",
    ]
    if chapters:
        parts.append(f"<section><h2>{e(words['chapters'])}</h2><ol>")
        parts += [f"<li><time>{_clock(start)}</time> {e(title)}</li>" for start, title in chapters]
        parts.append("</ol></section>")
    parts.append(
        f'<section><h2>{e(words["transcript"])}</h2><p><a href="'
        f'{e(site_url(base, episode.transcript_path))}">WebVTT</a></p>'
    )
    for cue in parse_vtt(transcript_vtt):
        who = f"<b>{e(cue.speaker)}:</b> " if cue.speaker else ""
        parts.append(
            f'<p class="cue"><time>{e(cue.start.split(".")[0])}</time>{who}{e(cue.text)}</p>'
        )
    parts.append("</section>")
    parts.append(f"<footer>GUID <code>{e(episode.guid)}</code></footer>")
    return _page(show, episode.title, "\n".join(parts), language)


def render_index(show: ShowInfo, episodes: Sequence[ManifestEpisode]) -> bytes:
    """The show's front page, in its language: artwork, description, every episode newest
    first."""
    e = html.escape
    show = show.speaking(episodes)
    book = wording(show.language)
    parts = [
        f'<header><img src="{e(show.image_url)}" alt="{e(show.title)} artwork">',
        f"<h1>{e(show.title)}</h1><p>{e(show.description)}</p>",
        f'<p><a href="{e(show.feed_url)}">{e(book.page["subscribe"])}</a></p></header>',
        "<main>",
    ]
    if not episodes:
        parts.append(f"<p>{e(book.page['no_episodes'])}</p>")
    for ep in _newest_first(episodes):
        parts.append(
            f'<article><h2><a href="{e(site_url(show.link, ep.page_path))}">{e(ep.title)}</a>'
            f"</h2><p><time>{_date(ep.published, book)}</time> · "
            f"{_clock(ep.duration_seconds)}</p></article>"
        )
    parts.append("</main>")
    return _page(show, show.title, "\n".join(parts), show.language)


def _clock(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def chapters_from_json(data: bytes) -> list[tuple[float, str]]:
    """(start seconds, title) from a Podcasting 2.0 chapters file."""
    try:
        document = json.loads(data)
        return [(float(c["startTime"]), str(c.get("title", ""))) for c in document["chapters"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishFailed(
            f"the chapters file is not Podcasting 2.0 chapters JSON: {exc!r}",
            code="chapters-invalid",
            hint="the master step writes it; re-run from master",
        ) from None
