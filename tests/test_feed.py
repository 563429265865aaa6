"""The feed, the manifest and the pages: the checklist validator, round trips (Hypothesis),
artwork, transcripts, and `shipyard validate-feed`."""

from __future__ import annotations

import io
import json
import re
import struct
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import podcastparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from shipyard import ConfigError, load_config
from shipyard._localprod import LocalServer
from shipyard.cli import _register, app
from shipyard_podcast.artwork import artwork_problems, image_size, make_cover
from shipyard_podcast.release.feed import (
    PODCAST,
    ManifestEpisode,
    ShowInfo,
    SiteManifest,
    parse_feed,
    parse_vtt,
    render_episode_page,
    render_feed,
    render_index,
    validate_feed,
)
from shipyard_podcast.release.publish import episode_slug

SHOW = ShowInfo(
    title="Papers & Pods",
    description="Research, discussed.",
    author="shipyard",
    owner_name="Ed",
    owner_email="ed@example.org",
    language="en",
    category="Science",
    explicit=False,
    link="https://example.org/pod/",
    image_url="https://example.org/pod/cover.png",
    feed_url="https://example.org/pod/feed.xml",
    ai_disclosure="Made with AI.",
)


def _episode(number: int, **changes: object) -> ManifestEpisode:
    data: dict[str, object] = {
        "guid": f"urn:test:{number}",
        "slug": f"ep-{number}",
        "title": f"Episode <{number}>",
        "description": "Notes & more",
        "published": datetime(2026, 3, number, 12, tzinfo=UTC),
        "duration_seconds": 61.4,
        "audio_path": f"episodes/ep-{number}.mp3",
        "audio_bytes": 1234 + number,
        "audio_sha256": "0" * 64,
        "page_path": f"episodes/ep-{number}.html",
        "transcript_path": f"episodes/ep-{number}.vtt",
        "chapters_path": f"episodes/ep-{number}.chapters.json",
    }
    return ManifestEpisode.model_validate({**data, **changes})


FEED = render_feed(SHOW, [_episode(1), _episode(2)])


def test_the_rendered_feed_passes_the_checklist() -> None:
    assert validate_feed(FEED) == []
    parsed = parse_feed(FEED)
    assert [i.guid for i in parsed.items] == ["urn:test:2", "urn:test:1"]  # newest first
    assert parsed.items[0].title == "Episode <2>"
    assert b"<pubDate>Mon, 02 Mar 2026 12:00:00 GMT</pubDate>" in FEED
    assert b"<itunes:duration>61</itunes:duration>" in FEED


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        (
            r"<itunes:explicit>false</itunes:explicit>(?=\n<itunes:type>)",
            "channel: missing <itunes:explicit>",
        ),
        (r"<itunes:image [^>]*/>", "channel: missing <itunes:image href=...>"),
        (r"<itunes:category [^>]*/>", "channel: missing <itunes:category text=...>"),
        (r"<language>en</language>", "channel: missing <language>"),
        (r"<itunes:owner>.*?</itunes:owner>", "channel: missing <itunes:owner>"),
        (
            r"<enclosure url=\"[^\"]*ep-1.mp3\"[^>]*/>",
            "item 2 (guid urn:test:1): missing <enclosure>",
        ),
        (r"<guid[^>]*>urn:test:2</guid>", "item 1: missing <guid>"),
        (r"<pubDate>Sun, 01 Mar[^<]*</pubDate>", "item 2 (guid urn:test:1): missing <pubDate>"),
        (
            r"<podcast:transcript url=\"[^\"]*ep-2.vtt\"[^>]*/>",
            "item 1 (guid urn:test:2): missing <podcast:transcript>",
        ),
        (
            r"<podcast:chapters url=\"[^\"]*ep-1.chapters.json\"[^>]*/>",
            "item 2 (guid urn:test:1): missing <podcast:chapters>",
        ),
        (
            r"<itunes:duration>61</itunes:duration>",
            "item 1 (guid urn:test:2): missing <itunes:duration>",
        ),
    ],
)
def test_a_feed_missing_a_required_tag_fails_naming_it(pattern: str, named: str) -> None:
    broken, count = re.subn(pattern.encode(), b"", FEED, count=1, flags=re.S)
    assert count == 1, pattern
    assert named in validate_feed(broken)


@pytest.mark.parametrize(
    ("find", "replace", "named"),
    [
        (
            b"<itunes:explicit>false</itunes:explicit>\n<itunes:type>",
            b"<itunes:explicit>no</itunes:explicit>\n<itunes:type>",
            "channel: <itunes:explicit> is 'no', expected 'true' or 'false'",
        ),
        (
            b'length="1236"',
            b'length="0"',
            "item 1 (guid urn:test:2): <enclosure> length '0' is not a positive byte count",
        ),
        (
            b'length="1236" type="audio/mpeg"',
            b'length="1236" type="audio/wav"',
            "item 1 (guid urn:test:2): <enclosure> type is 'audio/wav', expected audio/mpeg",
        ),
        (
            b"Mon, 02 Mar 2026 12:00:00 GMT</pubDate>",
            b"2026-03-02</pubDate>",
            "item 1 (guid urn:test:2): <pubDate> '2026-03-02' is not an RFC 2822 date with a zone",
        ),
        (
            b"urn:test:1</guid>",
            b"urn:test:2</guid>",
            "item 2 (guid urn:test:2): <guid> repeats item 1's",
        ),
        (
            b"ep-1.mp3",
            b"ep-2.mp3",
            "item 2 (guid urn:test:1): <enclosure> url is shared with item 1",
        ),
        (
            b' xmlns:podcast="' + PODCAST.encode() + b'"',
            b"",
            f"<rss>: the podcast namespace ({PODCAST}) is not declared",
        ),
        (b'version="2.0"', b'version="0.91"', "<rss>: version is '0.91', expected '2.0'"),
    ],
)
def test_wrong_values_are_named(find: bytes, replace: bytes, named: str) -> None:
    assert find in FEED
    problems = validate_feed(FEED.replace(find, replace, 1))
    assert named in problems, problems


def test_a_long_channel_description_and_garbage_are_refused() -> None:
    long = render_feed(SHOW.model_copy(update={"description": "é" * 2001}), [])
    assert validate_feed(long) == ["channel: <description> is 4002 bytes, over 4000"]
    assert validate_feed(b"<html>")[0].startswith("<rss>: not well-formed XML")
    assert validate_feed(b"<html/>")[0] == "<rss>: the root element is <html>"
    undeclared = FEED.replace(b' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"', b"")
    assert validate_feed(undeclared)[1] == (
        "<rss>: the itunes namespace (http://www.itunes.com/dtds/podcast-1.0.dtd) is not declared"
    )


# --- round trips --------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40)
_when = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@st.composite
def _episodes(draw: st.DrawFn) -> list[ManifestEpisode]:
    count = draw(st.integers(0, 4))
    return [
        _episode(
            n + 1,
            guid=f"urn:{draw(st.uuids())}",
            title=draw(_text).strip() or "x",
            description=draw(_text),
            published=draw(_when),
            duration_seconds=draw(st.floats(0, 36_000, allow_nan=False)),
            audio_bytes=draw(st.integers(1, 2**40)),
            paper_title=draw(_text),
            run_id=draw(_text),
        )
        for n in range(count)
    ]


def _clean(text: str) -> str:  # what XML 1.0 can carry: no control characters, \n line ends
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", "", text)


@settings(max_examples=60, deadline=None)
@given(_episodes())
def test_manifest_round_trips_through_json(episodes: list[ManifestEpisode]) -> None:
    manifest = SiteManifest(episodes=episodes)
    assert SiteManifest.from_json(manifest.to_json()) == manifest
    for episode in episodes:
        assert manifest.upsert(episode).episodes.count(episode) == 1


@settings(max_examples=60, deadline=None)
@given(_episodes(), _text)
def test_feed_round_trips_and_always_passes_the_checklist(
    episodes: list[ManifestEpisode], show_title: str
) -> None:
    show = SHOW.model_copy(update={"title": show_title.strip() or "x"})
    xml = render_feed(show, episodes)
    assert render_feed(show, list(reversed(episodes))) == xml  # deterministic, order-free
    titles = [show.title, *(e.title for e in episodes)]
    blank = any(not _clean(title).strip() for title in titles)
    assert bool(validate_feed(xml)) == blank  # an empty title is the only way to fail
    parsed = parse_feed(xml)
    assert parsed.title == _clean(show.title)
    by_guid = {e.guid: e for e in episodes}
    assert sorted(i.guid for i in parsed.items) == sorted(by_guid)
    for item in parsed.items:
        episode = by_guid[item.guid]
        assert item.title == _clean(episode.title)
        assert item.description == _clean(episode.description or episode.title)
        assert item.pub_date == episode.published
        assert item.enclosure_length == episode.audio_bytes
        assert item.enclosure_url == SHOW.link + episode.audio_path
        assert item.duration_seconds == round(episode.duration_seconds)
        assert item.transcript_url.endswith(episode.transcript_path)
        assert item.chapters_url.endswith(episode.chapters_path)


# --- pages, transcript, artwork -----------------------------------------------------------


def test_episode_page_has_player_notes_chapters_transcript_and_paper() -> None:
    episode = _episode(1, paper_title="On <Things>", paper_url="https://arxiv.org/abs/1")
    vtt = (
        "WEBVTT\n\nNOTE made by shipyard\n\n1\n00:00:00.000 --> 00:00:01.000\n"
        "<v Alex>Hi <i>there</i>.</v>\n\n00:00:01.000 --> 00:00:02.000\n<v.loud Sam>Yes.\n"
    )
    page = render_episode_page(
        SHOW, episode, transcript_vtt=vtt, chapters=[(0.0, "Intro"), (65.0, "Results")]
    ).decode()
    assert (
        '<audio controls preload="metadata" src="https://example.org/pod/episodes/ep-1.mp3">'
        in page
    )
    assert "<h1>Episode &lt;1&gt;</h1>" in page and "<p>Notes &amp; more</p>" in page
    assert '<a href="https://arxiv.org/abs/1">On &lt;Things&gt;</a>' in page
    assert "<li><time>1:05</time> Results</li>" in page
    assert "<b>Alex:</b> Hi there." in page and "<b>Sam:</b> Yes." in page
    assert "NOTE" not in page.split("<body>")[1]


def test_index_lists_every_episode_newest_first() -> None:
    page = render_index(SHOW, [_episode(1), _episode(2)]).decode()
    assert page.index("Episode &lt;2&gt;") < page.index("Episode &lt;1&gt;")
    assert "No episodes yet." in render_index(SHOW, []).decode()


def test_parse_vtt_reads_speakers_and_strips_markup() -> None:
    cues = parse_vtt(
        "WEBVTT\r\n\r\n00:00:01.500 --> 00:00:03.000\r\n<v Sam>one <b>two</b>\r\nthree\r\n"
    )
    assert [(c.start, c.speaker, c.text) for c in cues] == [
        ("00:00:01.500", "Sam", "one two three")
    ]


def _jpeg_header(width: int, height: int, components: int = 3) -> bytes:
    app0 = (
        b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    )
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 8 + 3 * components, 8, height, width, components)
    sof0 += b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def test_artwork_must_be_a_square_png_or_jpeg_of_1400_to_3000_px() -> None:
    cover = make_cover("Papers & Pods")
    assert image_size(cover) == ("png", 1400, 1400)
    assert artwork_problems(cover) == []
    assert image_size(_jpeg_header(3000, 3000)) == ("jpeg", 3000, 3000)
    assert artwork_problems(_jpeg_header(3000, 3000)) == []
    assert artwork_problems(_jpeg_header(1400, 1000)) == ["artwork is 1400x1000 px, not square"]
    assert artwork_problems(make_cover("x", size=600)) == [
        "artwork is 600 px wide, outside 1400-3000 px"
    ]
    assert artwork_problems(b"GIF89a") == ["artwork is not a PNG or JPEG image"]
    assert artwork_problems(_jpeg_header(2000, 2000, components=4)) == [
        "artwork is in cmyk, not RGB"
    ]
    assert artwork_problems(_jpeg_header(2000, 2000, components=1)) == [
        "artwork is in grayscale, not RGB"
    ]
    gray_png = cover[:25] + b"\x00" + cover[26:]  # IHDR colour type 0
    assert artwork_problems(gray_png) == ["artwork is in grayscale, not RGB"]


def test_slugs_are_url_safe_stable_and_distinct() -> None:
    assert episode_slug("Attention Is All You Need!", "g1") == episode_slug(
        "Attention Is All You Need!", "g1"
    )
    assert episode_slug("Attention Is All You Need!", "g1").startswith("attention-is-all-you-need-")
    assert episode_slug("Same", "g1") != episode_slug("Same", "g2")
    assert re.fullmatch(r"[0-9a-f]{8}", episode_slug("日本語", "g1"))


# --- the command --------------------------------------------------------------------------


def test_validate_feed_command_on_files_and_urls(tmp_path: Path) -> None:
    _register()
    runner = CliRunner()
    good = tmp_path / "feed.xml"
    good.write_bytes(FEED)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(FEED.replace(b"<language>en</language>", b""))

    ok = runner.invoke(app, ["validate-feed", str(good), "--skip-artwork"])
    assert ok.exit_code == 0 and "valid (2 episode(s))" in ok.output

    failed = runner.invoke(app, ["validate-feed", str(bad), "--json", "--skip-artwork"])
    assert failed.exit_code == 1
    report = json.loads(failed.output)
    assert report["valid"] is False and report["problems"] == ["channel: missing <language>"]

    with LocalServer(tmp_path) as server:
        served = runner.invoke(app, ["validate-feed", server.url + "bad.xml", "--skip-artwork"])
        assert served.exit_code == 1 and "channel: missing <language>" in served.output
        missing = runner.invoke(app, ["validate-feed", server.url + "nope.xml"])
        assert missing.exit_code == 1 and "answered 404" in str(missing.exception)


def test_validate_feed_fetches_the_artwork_and_holds_it_to_apples_rules(tmp_path: Path) -> None:
    _register()
    runner = CliRunner()
    with LocalServer(tmp_path) as server:
        show = SHOW.model_copy(update={"image_url": server.url + "cover.png"})
        (tmp_path / "feed.xml").write_bytes(render_feed(show, [_episode(1)]))
        (tmp_path / "cover.png").write_bytes(make_cover("Papers & Pods"))
        ok = runner.invoke(app, ["validate-feed", server.url + "feed.xml"])
        assert ok.exit_code == 0, ok.output
        (tmp_path / "cover.png").write_bytes(make_cover("Papers & Pods", size=600))
        small = runner.invoke(app, ["validate-feed", server.url + "feed.xml", "--json"])
        assert small.exit_code == 1
        assert json.loads(small.output)["problems"] == [
            "<itunes:image>: artwork is 600 px wide, outside 1400-3000 px"
        ]


def test_podcast_apps_read_the_ai_disclosure_and_the_people() -> None:
    """gPodder's parser (podcastparser) reads the item's persons and its description; the
    disclosure is in both the description and `podcast:txt purpose="ai-content"`."""
    episode = _episode(
        1,
        description="A conversation.\n\nMade with AI.",
        hosts=["Alex", "Sam"],
        authors=["Lena Ortiz", "Jörg Müller"],
        ai_disclosure="Made with AI.",
    )
    feed = render_feed(SHOW, [episode])
    parsed = podcastparser.parse(SHOW.feed_url, io.BytesIO(feed))
    [item] = parsed["episodes"]
    assert "Made with AI." in item["description"]
    people = {(p["name"], p.get("role"), p.get("group")) for p in item["persons"]}
    assert people == {
        ("Alex", "host", "cast"),  # the spec's default group
        ("Sam", "host", "cast"),
        ("Lena Ortiz", "author", "writing"),
        ("Jörg Müller", "author", "writing"),
    }
    [txt] = ElementTree.fromstring(feed).iter(f"{{{PODCAST}}}txt")
    assert (txt.get("purpose"), txt.text) == ("ai-content", "Made with AI.")
    assert validate_feed(feed) == []
    other_uri = feed.replace(PODCAST.encode(), b"https://podcastindex.org/namespace/1.0", 1)
    assert validate_feed(other_uri) == []  # the spec's other URI is read the same
    undisclosed = render_feed(SHOW.model_copy(update={"ai_disclosure": ""}), [_episode(2)])
    assert validate_feed(undisclosed) == [
        'item 1 (guid urn:test:2): missing <podcast:txt purpose="ai-content">: the AI disclosure'
    ]


def test_the_shows_artwork_is_held_to_apples_rules_when_the_file_is_read(tmp_path: Path) -> None:
    cover = make_cover("Papers & Pods")
    (tmp_path / "gray.png").write_bytes(cover[:25] + b"\x00" + cover[26:])
    (tmp_path / "cover.png").write_bytes(cover)
    file = tmp_path / "shipyard.toml"
    file.write_text('[podcast.show]\nimage = "gray.png"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="grayscale, not RGB") as caught:
        load_config(file)
    assert caught.value.key == "podcast.show.image"
    file.write_text('[podcast.show]\nimage = "cover.png"\n', encoding="utf-8")
    assert load_config(file).table("podcast")["show"]["image"] == "cover.png"
