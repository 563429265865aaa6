"""The review console in a real browser (Debian's Chromium, driven by Playwright) against the
real app on loopback, with a real run waiting at its review gate: sign in, hear a turn, edit
it, see the checks run again, override an error flag with a reason, approve, and find the edit
in what production serves; two reviewers and a stale save; who may decide; CSRF; guessing."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import mutagen.id3
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

from shipyard import RunState
from shipyard._localprod import LocalProduction
from tests.fakeprovider import fake_provider
from tests.modelserver import Draft, Reply, Status, model_server
from tests.processes import processes
from tests.project import SHIPYARD, Project, kill_group, make_project

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parents[1] / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is needed: scripts/install-system-deps"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def console_project(
    root: Path,
    reviewers: tuple[str, ...],
    *,
    script: str = "",
    review: str = "",
    paper: Path | None = None,
) -> Iterator[tuple[Project, str, str]]:
    """A project with a run waiting for review, its reviewers signed up, and the console
    serving it: (project, the console's URL, the run's id)."""
    with make_project(
        root, auto_approve=False, reviewers=reviewers, script=script, review=review
    ) as project:
        for name in (*reviewers, "mallory"):
            added = project.run("user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
            assert added.returncode == 0, added.stderr
        running = project.start("run", "paper-to-podcast", str(paper or project.paper))
        console = project.start("console", "--port", "0")
        line = project.wait_for_output(console, "console at ")
        url = re.search(r"http://\S+/", line)
        assert url is not None, line
        try:
            run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
            yield project, url.group(), run.run_id
        finally:
            kill_group(running, signal.SIGTERM)


def sign_in(page: Page, url: str, name: str, where: str) -> None:
    page.goto(url + where)
    assert "/login" in page.url  # signed out: sent to sign in, and back after
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:text('Sign in')")
    page.wait_for_url(url + where)


def play(page: Page, part: int) -> float:
    """Press a part's ▶ and wait (90 s at most) until its audio has loaded; its duration in
    seconds. Polled from here: the console's CSP rightly forbids evaluating strings."""
    page.click(f"#part-{part} button.play")
    audio = page.locator(f"#part-{part} audio")
    for _ in range(900):
        duration: float = audio.evaluate("audio => audio.duration") or 0.0
        if duration > 0:
            return duration
        page.wait_for_timeout(100)
    raise AssertionError(f"part {part}'s preview never loaded")


def children(pid: int) -> list[str]:
    """The names of the processes `pid` started."""
    return [name for name, parent in processes().values() if parent == pid]


def edit(page: Page, part: int, text: str) -> None:
    page.click(f"#part-{part} button.edit")
    page.fill(f"#part-{part} form.save textarea", text)
    page.click(f"#part-{part} form.save > button[type=submit]")


def serious_violations(page: Page) -> list[str]:
    """What axe-core (from npm, run in the page) finds serious or critical on it. The page's
    context must bypass its CSP, which rightly refuses a script injected so."""
    assert AXE.exists(), "axe-core is installed by `make setup` (npm ci)"
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes'][0]['target']}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def events(project: Project, run_id: str, kind: str) -> list[dict[str, Any]]:
    return project.events(run_id, kind)


def test_review_hear_edit_override_approve_and_production_serves_the_edit(
    tmp_path: Path, browser: Browser
) -> None:
    with console_project(tmp_path / "p", ("editor",)) as (project, url, run_id):
        page = browser.new_page()
        sign_in(page, url, "editor", f"runs/{run_id}/review")
        expect(page.locator(".holder")).to_contain_text("A running process holds this run")
        # opening the review got the voices ready before anything was played: the second
        # host's Festival session runs under the console (started last)
        console = project.started[-1]
        for _ in range(300):
            if "festival" in children(console.pid):
                break
            page.wait_for_timeout(100)
        assert "festival" in children(console.pid)
        assert play(page, 0) > 0.5

        said = page.inner_text("#part-1 .text")
        edit(page, 1, said + " It was downloaded 4,000 times in its first week.")
        expect(page.locator(".notice")).to_contain_text("revision 2 saved and checked")
        # the number the paper never states is flagged beside its turn, and marked in it
        expect(page.locator("#part-1 .flag.error")).to_contain_text("grounding")
        expect(page.locator("#part-1 mark")).to_contain_text("4,000")
        expect(page.locator("#part-1")).to_be_focused()  # back at the turn just saved
        assert play(page, 1) > 0.5  # the edited turn, heard before approving

        page.click("form.decide button[value=approve]")
        expect(page.locator(".refusal")).to_contain_text("error flag(s) remain")
        reason = "the download count is from the authors' own announcement"
        page.fill("form.decide textarea[name=override]", reason)
        page.click("form.decide button[value=approve]")
        expect(page.locator(".notice")).to_contain_text("approve sent")

        run = project.wait_until(run_id, lambda r: r.state.finished, timeout=240)
        assert run.state is RunState.VERIFIED, run.reason
        decided = events(project, run_id, "review-decided")
        assert decided[-1]["data"]["override"] == reason
        assert decided[-1]["data"]["reviewer"] == "editor"
        assert "error flags overridden" in project.run("status", run_id).stdout
        page_html = httpx.get(run.result["page_url"], timeout=10).text
        assert "downloaded 4,000 times" in page_html  # the edit, not the draft, went out
        # both turns heard in review were not spoken again
        [synthesis] = events(project, run_id, "synthesis")
        assert {0, 1} <= set(synthesis["data"]["cached"])

        # the run's page: the steps, what production served, the episode, the commit
        page.goto(f"{url}runs/{run_id}")
        expect(page.locator("h1 .state")).to_have_text("verified")
        expect(page.locator("table.steps")).to_contain_text("publish")
        expect(page.locator("ul.evidence").first).to_contain_text("sha256")
        expect(page.locator("audio")).to_have_attribute("src", run.result["episode_url"])
        expect(page.locator("body")).to_contain_text(run.result["commit"])
        expect(page.locator("table.artifacts")).to_contain_text("episode")
        chapters = page.locator(".chapters button")  # the episode's chapters, to jump to
        expect(chapters.first).to_be_visible()
        assert chapters.count() == len(run.result["chapters"]) >= 2
        chapters.nth(1).click()
        start = run.result["chapters"][1]["start"]
        audio = page.locator(".media audio")
        assert abs(audio.evaluate("audio => audio.currentTime") - start) < 1.5


def test_with_no_worker_a_save_is_checked_at_once_and_a_worker_later_finishes_the_run(
    tmp_path: Path, browser: Browser
) -> None:
    with make_project(tmp_path / "p", auto_approve=False) as project:
        added = project.run("user", "add", "editor", "--password-stdin", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        first = project.start("run", "paper-to-podcast", str(project.paper))
        run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
        kill_group(first, signal.SIGKILL)  # no process runs the run now
        console = project.start("console", "--port", "0")
        found = re.search(r"http://\S+/", project.wait_for_output(console, "console at "))
        assert found is not None
        url, worker = found.group(), None
        try:
            page = browser.new_page()
            sign_in(page, url, "editor", f"runs/{run.run_id}/review")
            expect(page.locator(".holder")).to_contain_text("No process runs this run now")
            said = page.inner_text("#part-1 .text")
            edit(page, 1, said + " It was downloaded 4,000 times in its first week.")
            # checked in the console's own process, with the run's own guardrails
            expect(page.locator(".notice")).to_contain_text(
                "revision 2 saved and checked: 1 error flag(s)", timeout=5_000
            )
            expect(page.locator("#part-1 .flag.error")).to_contain_text("4,000")
            expect(page.locator(".pending")).to_contain_text("takes it up when it goes on")
            page.fill("form.decide textarea[name=override]", "the count is from the authors")
            page.click("form.decide button[value=approve]")
            expect(page.locator(".notice")).to_contain_text("approve sent")

            worker = project.start("worker")  # the saved revision, then the approval
            run = project.wait_until(run.run_id, lambda r: r.state.finished, timeout=240)
            assert run.state is RunState.VERIFIED, run.reason
            assert "downloaded 4,000 times" in httpx.get(run.result["page_url"], timeout=10).text
        finally:
            kill_group(console, signal.SIGTERM)
            if worker is not None:
                kill_group(worker, signal.SIGTERM)


def test_unsaved_text_comes_back_after_a_reload_and_goes_out_with_the_approval(
    tmp_path: Path, browser: Browser
) -> None:
    with console_project(tmp_path / "p", ("editor",)) as (project, url, run_id):
        page = browser.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?": yes
        sign_in(page, url, "editor", f"runs/{run_id}/review")
        typed = page.inner_text("#part-2 .text") + " Kept through a reload."
        page.click("#part-2 button.edit")
        page.locator("#part-2 form.save textarea").press_sequentially(" Kept through a reload.")
        page.reload()
        expect(page.locator("#part-2 form.save textarea")).to_have_value(typed)  # the draft is back
        expect(page.locator("#part-2 .draft-note")).to_be_visible()

        page.click("form.decide button[value=approve]")  # with the draft still unsaved
        expect(page.locator("dialog.unsent")).to_be_visible()
        expect(page.locator("dialog.unsent .count")).to_have_text("1")
        page.click("dialog.unsent button[value=save]")
        expect(page.locator(".notice")).to_contain_text(
            "revision 2 saved and checked; approve sent"
        )
        run = project.wait_until(run_id, lambda r: r.state.finished, timeout=240)
        assert run.state is RunState.VERIFIED, run.reason
        assert "Kept through a reload." in httpx.get(run.result["page_url"], timeout=10).text
        page.goto(f"{url}runs/{run_id}/review")
        assert page.evaluate("localStorage.length") == 0  # sent: no draft left behind


def _signed_in(url: str, name: str, next_page: str = "") -> tuple[httpx.Client, str]:
    """A client signed in over HTTP, and where the sign-in sent it."""
    http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    form = http.get("login", params={"next": next_page} if next_page else None).text
    token = re.search(r'name="login_token" value="([^"]+)"', form)
    nxt = re.search(r'name="next" value="([^"]*)"', form)
    assert token is not None and nxt is not None
    fields = {"name": name, "password": PASSWORD, "login_token": token[1], "next": nxt[1]}
    signed = http.post("login", data=fields, headers={"Origin": url.rstrip("/")})
    assert signed.status_code == 303, signed.text
    return http, signed.headers["location"]


def test_console_answers_with_security_headers_safe_redirects_and_400s(
    tmp_path: Path,
) -> None:
    with console_project(tmp_path / "p", ("editor",)) as (_, url, run_id):
        for page in ("login", "static/console.js", "nowhere"):
            headers = httpx.get(url + page, timeout=30).headers
            policy = headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "same-origin"
            assert headers["x-frame-options"] == "DENY"

        # after signing in, only a console page: not a site's file, not another site
        for elsewhere in ("/episodes/page.html", "//evil.example/", "https://evil.example/"):
            http, went = _signed_in(url, "editor", elsewhere)
            assert went == "/", (elsewhere, went)
            http.close()
        http, went = _signed_in(url, "editor", f"/runs/{run_id}/review")
        assert went == f"/runs/{run_id}/review"

        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get(went).text)
        assert csrf is not None
        origin = {"Origin": url.rstrip("/")}
        for malformed, says in (
            ({"action": "approve", "revision": "two"}, "not a number"),
            ({"action": "save", "revision": "1", "payload": "[" * 100_000}, "nested too deep"),
            ({"action": "save", "revision": "1", "payload": "[1, 2]"}, "not an object"),
            ({"action": "save", "revision": "1", "segment": "x", "text": "hi"}, "no part x"),
            ({"action": "publish", "revision": "1"}, "not a review action"),
        ):
            answer = http.post(went, data={**malformed, "csrf": csrf[1]}, headers=origin)
            assert answer.status_code == 400 and says in answer.text, (malformed, answer.text)
        http.close()


def test_turns_count_from_one_and_a_request_that_changes_nothing_uses_no_round(
    tmp_path: Path, browser: Browser
) -> None:
    with console_project(tmp_path / "p", ("editor",)) as (_, url, run_id):
        page = browser.new_page()
        sign_in(page, url, "editor", f"runs/{run_id}/review")
        expect(page.locator(".segment .number").first).to_have_text("1")
        deadline = re.compile(r"deadline \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]{2,5}\b")
        expect(page.locator(".meta")).to_contain_text(deadline)  # with its time zone
        second = page.inner_text("#part-1 .text")  # shown as turn 2

        page.fill("form.decide textarea[name=comment] >> nth=0", "Drop the second turn.")
        page.click("form.decide button[value=request_changes]")
        expect(page.locator(".notice")).to_contain_text("revision 2 saved and checked")
        expect(page.locator(".segment .text", has_text=second)).to_have_count(0)  # gone
        expect(page.locator(".meta")).to_contain_text("round 2")

        page.fill("form.decide textarea[name=comment] >> nth=0", "Make it wittier.")
        page.click("form.decide button[value=request_changes]")
        expect(page.locator(".notice")).to_contain_text("the request changed nothing")
        page.goto(f"{url}runs/{run_id}/review")
        expect(page.locator("ul.flags li", has_text="request")).to_contain_text(
            "'Make it wittier.': nothing in it could be applied"
        )
        expect(page.locator(".meta")).to_contain_text("round 2")  # no round used


def test_previews_speak_only_declared_voices_for_reviewers_within_their_bound(
    tmp_path: Path,
) -> None:
    bound = "[console]\npreviews_per_hour = 3\n"
    with (
        fake_provider(seconds=0.0) as provider,
        make_project(tmp_path / "p", auto_approve=False, extra=bound) as project,
    ):
        for name in ("editor", "mallory"):
            added = project.run("user", "add", name, "--password-stdin", stdin=PASSWORD + "\n")
            assert added.returncode == 0, added.stderr
        running = project.start("run", "paper-to-podcast", str(project.paper))
        console = project.start(
            "console", "--port", "0", env={"OPENAI_BASE_URL": provider.url, "OPENAI_API_KEY": "k"}
        )
        try:
            run = project.wait_until(None, lambda r: r.state is RunState.AWAITING_REVIEW)
            found = re.search(r"http://\S+/", project.wait_for_output(console, "console at "))
            assert found is not None
            url = found.group()
            script = project.events(run.run_id, "review-requested")[-1]["data"]["payload"]
            script["hosts"][0]["voice"] = "openai-tts:gpt-4o-mini-tts/alloy"  # the operator's key
            edited = project.root / "edited.json"
            edited.write_text(json.dumps(script))
            saved = project.run(
                "review", "save", run.run_id, "--as", "editor", "--edited", str(edited)
            )
            assert saved.returncode == 0 and "speakers" in saved.stdout, saved.stdout

            stranger, _ = _signed_in(url, "mallory")
            assert stranger.get(f"runs/{run.run_id}/review/preview/0").status_code == 403
            stranger.close()
            http, _ = _signed_in(url, "editor")
            answers = [http.get(f"runs/{run.run_id}/review/preview/0") for _ in range(4)]
            http.close()
            assert [a.status_code for a in answers] == [422, 422, 422, 429]
            assert "does not declare" in answers[0].text
            assert "console.previews_per_hour is 3" in answers[3].text
            assert provider.arrivals == []  # the undeclared voice was never called
        finally:
            kill_group(console, signal.SIGTERM)
            kill_group(running, signal.SIGTERM)


def unsure_credits_paper(path: Path) -> Path:
    """A short paper whose authors stand above its title, as in a sidebar: read, not surely."""
    styles = getSampleStyleSheet()
    story: list[Flowable] = [
        Paragraph("Ana Ferreira and Rui Costa", styles["Normal"]),
        Spacer(1, 6),
        Paragraph("Coastal Sea Level from Tide Gauges and Satellites", styles["Title"]),
        Paragraph("Abstract", styles["Heading2"]),
        Paragraph(
            "We compare twelve years of tide gauge records on a northern coast with satellite "
            "altimetry and find that the two agree within four centimetres once the land "
            "motion at each gauge is removed.",
            styles["BodyText"],
        ),
    ]
    sections = {
        "1 Introduction": "Sea level is measured in two ways that rarely meet. Tide gauges sit "
        "on piers and measure the water against the land, which itself rises or sinks. "
        "Satellites measure the sea surface from orbit, far from any coast. Planners need "
        "one answer for harbours, dikes and marshes, so the two records must agree. ",
        "2 Methods": "Nine gauges recorded the water level every six minutes from 2008 to "
        "2020. We averaged each record by month and removed the tides. Satellite passes "
        "within forty kilometres of a gauge gave the matching sea surface. Receivers on "
        "the piers measured how the land moved under each gauge over the same years. ",
        "3 Results": "Before the land motion was removed, the gauges and the satellites "
        "disagreed by up to eleven centimetres. After it was removed, every gauge agreed "
        "with the satellites within four centimetres. The largest gap remained at the "
        "gauge nearest the river mouth, where fresh water piles up after storms. ",
        "4 Conclusions": "Tide gauges and satellites tell the same story once the land is "
        "accounted for. Harbour authorities can combine both records with confidence. "
        "Gauges near river mouths need a correction for fresh water, which we leave to "
        "future work. A longer record would show whether the rise is speeding up. ",
    }
    for heading, text in sections.items():
        story += [Paragraph(heading, styles["Heading2"]), Paragraph(text, styles["BodyText"])]
    story.append(Paragraph("References", styles["Heading2"]))
    for entry in (
        "[1] Smith, J. (2019). Tide gauges and the sea. Journal of Coasts, 4, 1-10.",
        "[2] Lee, K. (2020). Altimetry for all. Remote Sensing Letters, 7, 22-30.",
    ):
        story.append(Paragraph(entry, styles["BodyText"]))
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def test_a_reviewer_corrects_the_credits_and_everything_published_carries_them(
    tmp_path: Path, browser: Browser
) -> None:
    paper = unsure_credits_paper(tmp_path / "sea-level.pdf")
    with console_project(tmp_path / "p", ("editor",), paper=paper) as (project, url, run_id):
        page = browser.new_page()
        sign_in(page, url, "editor", f"runs/{run_id}/review")
        # the unsure reading is flagged, and the front matter as read stands beside the script
        credits = page.locator("ul.flags li.flag.warning", has_text="credits")
        expect(credits).to_contain_text("Ana Ferreira")
        expect(page.locator("dl.facts")).to_contain_text("lines beside or above the title")
        assert "Ana Ferreira" in page.inner_text("section.payload")

        authors = page.locator("#field-credits-authors")
        authors.locator("textarea").fill("Ana M. Ferreira\nRui Costa")
        authors.locator("button[type=submit]").click()
        expect(page.locator(".notice")).to_contain_text("revision 2 saved and checked")
        expect(page.locator("#field-credits-authors textarea")).to_have_value(
            "Ana M. Ferreira\nRui Costa"
        )
        expect(credits).to_have_count(0)  # corrected by a person: no doubt left
        intro = page.locator(".segment .text", has_text="Ana M. Ferreira")
        expect(intro.first).to_be_visible()  # the spoken introduction says the corrected name

        page.click("form.decide button[value=approve]")
        expect(page.locator(".notice")).to_contain_text("approve sent")
        run = project.wait_until(run_id, lambda r: r.state.finished, timeout=240)
        assert run.state is RunState.VERIFIED, run.reason

        release = run.result
        page_html = httpx.get(release["page_url"], timeout=10).text
        feed = httpx.get(release["feed_url"], timeout=10).text
        assert "Ana M. Ferreira" in page_html and "Ana M. Ferreira" in feed
        audio = tmp_path / "episode.mp3"
        audio.write_bytes(httpx.get(release["episode_url"], timeout=10).content)
        tags = mutagen.id3.ID3(audio)
        assert "Ana M. Ferreira" in str(tags.getall("COMM")[0])
        transcript_url = re.search(r'<podcast:transcript url="([^"]+)"', feed)
        assert transcript_url is not None, feed
        vtt = httpx.get(transcript_url.group(1), timeout=10).text
        cues = [ln for ln in vtt.splitlines() if ln.startswith("<v ")]  # the words said
        assert "Ana M. Ferreira" in " ".join(re.sub(r"</?v[^>]*>", "", c) for c in cues)


def test_two_reviewers_a_stale_save_request_changes_and_who_may_decide(
    tmp_path: Path, browser: Browser
) -> None:
    with console_project(tmp_path / "p", ("editor", "chief")) as (project, url, run_id):
        editor = browser.new_context().new_page()
        chief = browser.new_context().new_page()
        sign_in(editor, url, "editor", "")
        expect(editor.locator(".yours")).to_contain_text(run_id)  # the runs that wait for you
        expect(editor.locator(".yours a")).to_contain_text("Verified Publishing")  # its paper
        editor.goto(f"{url}?state=awaiting_review&workflow=paper-to-podcast")
        expect(editor.locator("table.runs")).to_contain_text(run_id)
        editor.goto(f"{url}?state=verified")
        expect(editor.locator("main")).to_contain_text("No runs match")
        editor.goto(f"{url}runs/{run_id}/review")
        sign_in(chief, url, "chief", f"runs/{run_id}/review")

        edit(editor, 2, "A shorter turn, by the editor.")
        expect(editor.locator(".notice")).to_contain_text("revision 2 saved")
        mine = "The chief's version of this turn, typed on revision one."
        edit(chief, 2, mine)  # still showing revision 1
        expect(chief.locator(".refusal")).to_contain_text("stale")
        expect(chief.locator("#part-2 form.save textarea")).to_have_value(mine)  # nothing is lost
        merge = chief.locator("#part-2 .merge")  # theirs beside mine, to merge
        expect(merge).to_contain_text("A shorter turn, by the editor.")
        expect(merge.locator("ins").first).to_contain_text("chief's")
        chief.fill("#part-2 form.save textarea", "A shorter turn, by the editor and the chief.")
        chief.click("#part-2 form.save > button[type=submit]")
        expect(chief.locator(".notice")).to_contain_text("revision 3 saved")
        expect(chief.locator("#part-2 .text")).to_contain_text("by the editor and the chief")

        chief.fill("form.decide textarea[name=comment] >> nth=0", "Drop turn 3.")
        chief.click("form.decide button[value=request_changes]")
        expect(chief.locator(".notice")).to_contain_text("revision 4 saved and checked")
        expect(chief.locator("details.since-last li.change.dropped")).to_contain_text(
            "turn 3 dropped"
        )
        revised = events(project, run_id, "review-requested")[-1]["data"]
        assert revised["author"] == "writer, as chief asked" and revised["diff"]

        # someone the gate does not name may look, but not decide
        mallory = browser.new_context().new_page()
        sign_in(mallory, url, "mallory", f"runs/{run_id}/review")
        mallory.click("form.decide button[value=approve]")
        expect(mallory.locator(".refusal")).to_contain_text("not a reviewer of this run")

        origin = {"Origin": url.rstrip("/")}
        with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as http:
            assert http.get(f"runs/{run_id}").status_code == 303  # signed out: to sign in
            for cookie in editor.context.cookies():
                http.cookies.set(cookie["name"], cookie["value"])
            forged = http.post(
                f"runs/{run_id}/review", data={"action": "approve", "revision": "4"}, headers=origin
            )
            assert forged.status_code == 403 and "security token" in forged.text
        assert project.ledger().get(run_id).state is RunState.AWAITING_REVIEW

        with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as http:
            token = re.search(r'name="login_token" value="([^"]+)"', http.get("login").text)
            assert token is not None
            tries = [
                http.post(
                    "login",
                    data={"name": "chief", "password": f"wrong {n}", "login_token": token[1]},
                    headers=origin,
                ).status_code
                for n in range(6)
            ]
        assert tries == [401] * 5 + [429]  # slowed down after five wrong passwords


def test_request_changes_reaches_an_llm_writer_with_the_reviewers_words(
    tmp_path: Path, browser: Browser
) -> None:
    comment = "Open with a warmer welcome."
    seen: list[str] = []
    waiting: list[tuple[Project, str]] = []  # the project and its run, once it waits

    def answer(request: dict[str, Any]) -> Reply:
        asked = json.dumps(request["messages"])
        if comment not in asked:
            return Status(503)  # the first draft: this server is down, the extractive writer writes
        seen.append(asked)
        [(project, run_id)] = waiting
        script = events(project, run_id, "review-requested")[-1]["data"]["payload"]
        turns = [
            {
                "speaker": t["speaker"],
                "text": ("Hello, and a warm welcome! " if i == 0 else "") + t["text"],
                "sections": t["sections"],
                "chapter": t["chapter"],
                "quotes": t["spans"],
            }
            for i, t in enumerate(script["turns"])
        ]
        return Draft(json.dumps({"title": script["title"], "turns": turns}))

    with model_server(*[answer] * 20) as server:
        writer = f"openai-compatible:tiny@{server.url}"
        script_settings = (
            f'writers = ["{writer}", "extractive"]\n'
            f'prices = {{ "{writer}" = {{ input_per_mtok = 0, output_per_mtok = 0 }} }}'
        )
        with console_project(tmp_path / "p", ("editor",), script=script_settings) as (
            project,
            url,
            run_id,
        ):
            waiting.append((project, run_id))
            page = browser.new_page()
            sign_in(page, url, "editor", f"runs/{run_id}/review")
            page.fill("form.decide textarea[name=comment] >> nth=0", comment)
            page.click("form.decide button[value=request_changes]")
            expect(page.locator(".notice")).to_contain_text("revision 2 saved and checked")
            revised = events(project, run_id, "review-requested")[-1]["data"]
            assert revised["payload"]["turns"][0]["text"].startswith("Hello, and a warm welcome!")
            assert revised["author"] == "writer, as editor asked"
            changed = page.locator("details.since-last li.change").first
            expect(changed.locator("ins").first).to_contain_text("a warm welcome")
            expect(page.locator("#part-0 .text")).to_contain_text("a warm welcome")
            # what the model received carried the reviewer's words, quoted as a request
            assert len(seen) == 1 and "<request>" in seen[0]
            revision_event = events(project, run_id, "script-revised")[-1]
            assert revision_event["message"].startswith(f"{writer}: revised by")


def test_serve_answers_the_site_and_the_console_on_separate_origins(tmp_path: Path) -> None:
    project = tmp_path / "show"
    made = subprocess.run(
        [*SHIPYARD, "init", str(project), "--local-production"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    serving = subprocess.Popen(
        [*SHIPYARD, "serve", "--port", "0", "--console-port", "0"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert serving.stdout is not None
        line = serving.stdout.readline()
        found = re.search(r"at (http://\S+/),.*the console at (http://\S+/)", line)
        assert found is not None, line
        url, console_url = found[1], found[2]
        assert urlsplit(url).port != urlsplit(console_url).port  # two origins
        with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as http:
            readme = http.get("README.md")  # what a fresh local production serves
            assert readme.status_code == 200 and readme.content
            part = http.get("README.md", headers={"Range": "bytes=0-9"})
            assert part.status_code == 206 and part.content == readme.content[:10]
            assert http.head("README.md").headers["content-length"] == str(len(readme.content))
            assert http.get("no-such-file").status_code == 404
            assert http.get("console/").status_code == 404  # not on the site's origin
            metrics = http.get("metrics")  # for Prometheus, beside the site
            assert metrics.status_code == 200 and "shipyard_runs_total" in metrics.text
        with httpx.Client(base_url=console_url, timeout=30, follow_redirects=False) as http:
            signed_out = http.get("")
            assert signed_out.status_code == 303
            assert signed_out.headers["location"] == "/login?next=/"
    finally:
        kill_group(serving, signal.SIGTERM)


ATTACK = """<!doctype html><title>attack</title><body>
<form method="post" action="CONSOLE/runs/RUN/review"><input name="action" value="reject">
<input name="comment" value="rejected by a page on the site"><input name="revision" value="1">
</form><script>
(async () => {
  let said = "read nothing";
  try {  // read the review page, with its CSRF token, as the signed-in reviewer
    const page = await (await fetch("CONSOLE/runs/RUN/review", {credentials: "include"})).text();
    const csrf = page.match(/name="csrf" value="([^"]+)"/)[1];
    await fetch("CONSOLE/runs/RUN/review", {method: "POST", credentials: "include",
      body: new URLSearchParams({csrf, action: "reject", comment: "gone", revision: "1"})});
    said = "read the token";
  } catch (e) { said = "refused: " + e; }
  document.title = said;
  document.forms[0].submit();  // and a plain cross-site form, without the token
})();
</script>"""


def test_a_page_pushed_to_the_site_cannot_act_for_a_signed_in_reviewer(
    tmp_path: Path, browser: Browser
) -> None:
    with console_project(tmp_path / "p", ("editor",)) as (project, url, run_id):
        page = browser.new_page()
        sign_in(page, url, "editor", f"runs/{run_id}/review")
        site = LocalProduction(project.root / "production")
        attack = ATTACK.replace("CONSOLE/", url).replace("RUN", run_id)
        (site.webroot / "attack.html").write_text(attack, encoding="utf-8")
        site_url = project.config().publish.base_url
        page.goto(site_url + "attack.html")
        page.wait_for_load_state()
        for _ in range(100):  # the page's script runs, then its form leaves
            if page.url != site_url + "attack.html" or page.title().startswith("refused"):
                break
            page.wait_for_timeout(100)
        page.wait_for_timeout(1000)
        assert events(project, run_id, "review-decided") == []
        assert project.ledger().get(run_id).state is RunState.AWAITING_REVIEW


def test_a_reviewers_desk_document_edits_comments_claims_shortcuts_playback_and_axe(
    tmp_path: Path, browser: Browser
) -> None:
    with console_project(tmp_path / "p", ("editor", "chief"), review="resolve_comments = true") as (
        project,
        url,
        run_id,
    ):
        chief = browser.new_context(bypass_csp=True).new_page()  # axe is injected here
        sign_in(chief, url, "chief", "")
        assert serious_violations(chief) == [], "the runs page"
        editor = browser.new_context().new_page()
        sign_in(editor, url, "editor", f"runs/{run_id}/review")
        chief.goto(f"{url}runs/{run_id}/review")
        assert serious_violations(chief) == [], "the review page"
        expect(chief.locator(".presence")).to_contain_text("editor")  # who else is here

        # the chief hands the review to the editor; the page says who is on it
        chief.select_option("form.claim select", "editor")
        chief.click("form.claim button")
        expect(chief.locator(".claimed")).to_have_text("editor")
        editor.goto(url)  # the queue: the deadline with its zone, who is on it, who is in it
        waiting = editor.locator(".yours li").first
        expect(waiting).to_contain_text("claimed by editor")
        expect(waiting).to_contain_text("open now by chief")
        expect(waiting).to_contain_text("deadline 20")
        editor.goto(f"{url}runs/{run_id}/review")

        # the keyboard: next turns, then a comment on the turn in focus
        chief.locator("#part-0").focus()
        chief.keyboard.press("j")
        expect(chief.locator("#part-1")).to_be_focused()
        chief.keyboard.press("c")
        chief.fill("#part-1 form.part-comment textarea", "Is this number in the paper?")
        chief.keyboard.press("Control+Enter")
        expect(chief.locator("ol.comments li.open")).to_contain_text("on turn 2")

        # approval waits for the comment (review.resolve_comments); resolved, it goes on
        editor.reload()
        editor.click("form.decide button[value=approve]")
        expect(editor.locator(".refusal")).to_contain_text("not resolved")

        # a request for changes, read before it is sent
        editor.fill("form.request textarea", "Drop the second turn. Make it funnier.")
        plan = editor.locator("output.plan")
        expect(plan.locator("li.will")).to_contain_text("dropped turn 2")
        expect(plan.locator("li.cannot")).to_contain_text("Make it funnier")
        editor.fill("form.request textarea", "")

        # the script as a document: split a turn at the cursor, give the second half to
        # the other host and merge it with the next (the hosts alternate again); each
        # change is saved, checked and named for what it is
        said = editor.locator(".segment .text").all_inner_texts()
        n = next(i for i, t in enumerate(said) if 0 < t.find(". ") < len(t) - 2 and i > 0)
        editor.click(f"#part-{n} button.edit")
        text = editor.locator(f"#part-{n} form.save textarea")
        cut = text.input_value().index(". ") + 1  # after the first sentence
        text.evaluate(f"(box) => box.setSelectionRange({cut}, {cut})")
        editor.click(f"#part-{n} button[value=split]")
        expect(editor.locator(".notice")).to_contain_text("saved and checked")
        assert editor.locator(".segment").count() == len(said) + 1
        expect(editor.locator("details.since-last li.change.split").first).to_contain_text(
            f"from turn {n + 1}, split"
        )
        host = editor.inner_text(f"#part-{n + 1} .label")
        other = next(h for h in editor.locator(".segment .label").all_inner_texts() if h != host)
        editor.click(f"#part-{n + 1} button.edit")
        editor.select_option(f"#part-{n + 1} select[name=label]", other)
        editor.click(f"#part-{n + 1} button[value=label]")
        expect(editor.locator(f"#part-{n + 1} .label")).to_have_text(other)
        editor.click(f"#part-{n + 1} button.edit")
        editor.click(f"#part-{n + 1} button[value=merge]")
        expect(editor.locator(".notice")).to_contain_text("saved and checked")
        assert editor.locator(".segment").count() == len(said)
        expect(editor.locator("details.since-last li.change.merged")).to_contain_text("merged")
        expect(editor.locator("h2 .errors")).to_have_count(0)  # no error flag: hosts alternate

        # the whole script heard from a turn: compressed, streamed while a turn nobody heard
        # is spoken, then a file from the cache; the turn being heard is marked
        streamed = editor.request.get(f"{url}runs/{run_id}/review/preview/0")
        assert streamed.headers["content-type"] == "audio/mpeg"
        assert streamed.body()[0] == 0xFF and "content-length" not in streamed.headers
        kept = editor.request.get(f"{url}runs/{run_id}/review/preview/0")
        assert kept.body() == streamed.body()
        assert kept.headers["content-length"] == str(len(streamed.body()))
        editor.click("button.play-all")
        expect(editor.locator("#part-0")).to_have_class(re.compile(r"\bplaying\b"))
        editor.click("#part-1 .text")  # jump to turn 2 while playing
        expect(editor.locator("#part-1")).to_have_class(re.compile(r"\bplaying\b"))
        editor.click("button.stop")

        editor.click("ol.comments li.open button")  # resolve it
        expect(editor.locator("ol.comments li.resolved")).to_contain_text("resolved by editor")
        editor.keyboard.press("d")
        expect(editor.locator("#decide")).to_be_focused()
        editor.click("form.decide button[value=approve]")
        expect(editor.locator(".refusal")).to_have_count(0)
        run = project.wait_until(run_id, lambda r: r.state.finished, timeout=240)
        assert run.state is RunState.VERIFIED, run.reason
        chief.goto(f"{url}runs/{run_id}")
        assert serious_violations(chief) == [], "the run page"
