"""How soon a reviewer hears a turn: ▶ pressed in the console, in Debian's Chromium (through
Playwright), on turns of about 40 words that nobody has heard yet (a cold cache).

    python -m benchmarks preview

For each turn, from the browser's own clocks: the time from the request to the answer's first
byte (Resource Timing: responseStart - requestStart), and from the click to the audio playing
(the element's `playing` event). The baseline, in the same run and for the same turns, is the
time to the answer's last byte: the whole turn spoken and encoded, which is when the first byte
came before previews streamed. The console starts loading the show's voices when a reviewer
opens the review; the first turn of each voice is pressed as soon as the page is shown, so it
still waits for the rest of that load: those are shown apart.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "papers"
PAPER = "grobid__0807.3577.pdf"
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "a long enough password"
TURNS_PER_HOST = 4


def _hear(page: object, index: int, url: str) -> dict[str, float]:
    """Press turn `index`'s ▶ and wait until it plays and its answer has ended (60 s at most)."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    button, audio = page.locator(f"#part-{index} button.play"), page.locator(f"#part-{index} audio")
    button.evaluate(
        "b => b.addEventListener('click', () => b.dataset.t = performance.now(), {once: true})"
    )
    audio.evaluate(
        "a => a.addEventListener('playing', () => a.dataset.t = performance.now(), {once: true})"
    )
    button.click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        timing = page.evaluate(
            "u => { const e = performance.getEntriesByName(u).pop();"
            " return e ? [e.requestStart, e.responseStart, e.responseEnd] : null; }",
            url,
        )
        playing = audio.evaluate("a => Number(a.dataset.t || 0)")
        if timing and timing[2] > 0 and playing:
            clicked = button.evaluate("b => Number(b.dataset.t)")
            start, first, last = timing
            return {"first": first - start, "last": last - start, "playing": playing - clicked}
        page.wait_for_timeout(50)
    raise RuntimeError(f"turn {index + 1}'s preview never played")


def main() -> None:
    from playwright.sync_api import sync_playwright

    from shipyard import RunState
    from shipyard.testing import kill_group, workflow_project

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-preview-") as tmp:
        settings = "[podcast.script]\ntarget_minutes = 4\n"
        with workflow_project(Path(tmp), settings=settings) as project, sync_playwright() as pw:
            added = project.run("user", "add", "editor", "--password-stdin", stdin=PASSWORD + "\n")
            assert added.returncode == 0, added.stderr
            project.start("run", "paper-to-podcast", str(CORPUS / PAPER))
            console = project.start("console", "--port", "0")
            found = re.search(r"http://\S+/", project.wait_for_output(console, "console at "))
            assert found is not None
            base = found.group()
            run = project.wait_for_state(None, RunState.AWAITING_REVIEW)
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{base}runs/{run.run_id}/review")
            page.fill("input[name=name]", "editor")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:text('Sign in')")
            page.wait_for_url(f"{base}runs/{run.run_id}/review")

            texts = page.locator(".segment .text").all_inner_texts()
            hosts = page.locator(".segment .label").all_inner_texts()
            # per host, its turns nearest 40 words; its first is heard while its voice loads
            chosen: dict[str, list[int]] = {}
            for i in sorted(range(len(texts)), key=lambda i: abs(len(texts[i].split()) - 40)):
                if len(chosen.setdefault(hosts[i], [])) < TURNS_PER_HOST + 1:
                    chosen[hosts[i]].append(i)
            rows = []
            for host, turns in sorted(chosen.items()):
                for n, i in enumerate(turns):
                    url = f"{base}runs/{run.run_id}/review/preview/{i}"
                    heard = _hear(page, i, url)
                    rows.append((host, n == 0, len(texts[i].split()), heard))
                    page.locator(f"#part-{i} audio").evaluate("a => a.pause()")
            browser.close()
            kill_group(console)

    print(f"{PAPER}, target 4 min: turns of about 40 words, cold cache, Chromium\n")
    print("| host | turn | words | first byte ms | playing ms | last byte ms (baseline) |")
    print("|---|---|---:|---:|---:|---:|")
    for host, loading, words, t in rows:
        when = "first, at once (its voice still loading)" if loading else "later"
        print(
            f"| {host} | {when} | {words} | {t['first']:.0f} | {t['playing']:.0f} "
            f"| {t['last']:.0f} |"
        )
    warm = [t for _, loading, _, t in rows if not loading]
    first, last = (statistics.median(t[k] for t in warm) for k in ("first", "last"))
    playing = statistics.median(t["playing"] for t in warm)
    print(
        f"\nlater turns, median: first byte {first:.0f} ms, playing {playing:.0f} ms, "
        f"last byte {last:.0f} ms; ratio first to last byte {first / last:.2f}"
    )
