"""The paper `shipyard demo` turns into an episode: written for the project, typeset here.

The demo must run from a bare clone, so it cannot borrow someone else's PDF. This module holds
the text of a short workshop paper and typesets it with reportlab into a two-column PDF like
the ones users bring: a title block across the page, numbered sections in two columns, a
running header after the first page, page numbers, a table and a references list.

The output is byte-for-byte the same on every call (reportlab's invariant mode fixes the
creation date and document id), so the demo's input hash, and with it the run id, is stable.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    FrameBreak,
    KeepTogether,
    NextPageTemplate,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from shipyard import write_atomically

__all__ = [
    "ABSTRACT",
    "AUTHORS",
    "REFERENCES",
    "SECTIONS",
    "TITLE",
    "VENUE",
    "DemoTable",
    "demo_paper_bytes",
    "make_demo_paper",
]


@dataclass(frozen=True, slots=True)
class DemoTable:
    """A small table set inside one column, with its caption above it."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    groups: tuple[tuple[str, int], ...] = ()  # a header row above `header`: (label, columns)


TITLE = "Verified Publishing: Closing the Last Mile of AI Content Pipelines"
SHORT_TITLE = "Verified Publishing"
VENUE = "Shipyard Workshop 2026"

AFFILIATIONS = (
    "Department of Computer Science, Northgate University",
    "Lantern Media Lab",
)
AUTHORS: tuple[tuple[str, int], ...] = (  # (name, 1-based index into AFFILIATIONS)
    ("Maren Lindqvist", 1),
    ("Tomás Okafor", 2),
    ("Priya Raman", 1),
)

ABSTRACT = (
    "Generative pipelines that turn documents into articles, summaries or audio are usually "
    "judged by the quality of what the model writes. In production, however, much of the loss "
    "happens after generation: outputs that are produced but never committed, deployed from a "
    "stale revision, written to the wrong path, or left waiting for a review that nobody owns. "
    "We audited 1,184 runs of four content pipelines at three organisations over 14 weeks and "
    "found that 236 of them (19.9%) produced an accepted artifact that never reached its "
    "audience; 175 of these losses went unnoticed until our audit. We then rebuilt the same "
    "pipelines around three ideas: durable steps that resume after a failure without repeating "
    "finished work, review gates with a named owner and a deadline, and a verification step "
    "that declares a run done only when production serves the exact bytes that were shipped. "
    "Over 968 subsequent runs, silent losses fell to zero, 11 runs were reported as unverified "
    "within minutes, and the median end-to-end time rose by 0.7 minutes. We argue that "
    "verifying the served result should be a first-class step of every AI content pipeline."
)

LOSS_TABLE = DemoTable(
    caption=(
        "Table 1: Runs whose accepted output was not served by production, by primary cause. "
        "Audit: 14 weeks, 1,184 runs. Verified: 8 weeks of verified publishing, 968 runs; "
        "caught counts the runs in which the cause occurred and the workflow handled or "
        "reported it."
    ),
    groups=(("", 1), ("Audit", 1), ("Verified", 2)),
    header=("Primary cause", "lost", "lost", "caught"),
    rows=(
        ("Not committed or pushed", "71", "0", "12"),
        ("Deploy stale or missed", "54", "0", "9"),
        ("Path mismatch", "38", "0", "2"),
        ("Review never decided", "45", "0", "17"),
        ("Provider failure", "28", "0", "101"),
        ("Total", "236", "0", "141"),
    ),
)

SECTIONS: tuple[tuple[str, tuple[str | DemoTable, ...]], ...] = (
    (
        "1 Introduction",
        (
            "Most of the effort in building an AI content pipeline goes into the model call: "
            "prompt design, output validation, and evaluation of faithfulness and style. A "
            "demonstration optimises the happy path from input to generated text and stops "
            "there. Production has a longer path. The generated artifact has to be reviewed, "
            "stored, committed to the repository that backs a website or a feed, deployed, and "
            "finally served to readers or listeners. Each of these steps is ordinary "
            "engineering, and each is easy to get subtly wrong. Studies of machine learning in "
            "production have long observed that the model is a small part of the system that "
            "surrounds it [1, 3, 4].",
            "In our experience the failures that hurt are rarely the model. A script writes an "
            "episode into a working copy, but the commit is never pushed. A path is changed in "
            "the generator and not in the deploy configuration, so the new file lands where "
            "nothing serves it. A deploy job runs, reports success, and serves the previous "
            "revision from a cache. A draft waits for approval in a shared channel where every "
            "member assumes that someone else will look at it. None of these failures shows up "
            "in a model evaluation, and most of them produce no error message at all.",
            "This paper makes three contributions. First, we report an audit of 1,184 runs of "
            "four production content pipelines and classify every run whose output failed to "
            "reach its audience (Section 2). Second, we describe verified publishing, a small "
            "set of design rules that make the last mile explicit: durable steps, owned review "
            "gates, publishing as an idempotent step, and verification against production "
            "(Section 3). Third, we measure the effect of these rules on the same pipelines "
            "over eight weeks and 968 runs (Section 4), and we discuss what they cost and where "
            "they fall short (Section 5).",
        ),
    ),
    (
        "2 Where Generated Artifacts Get Lost",
        (
            "We studied four pipelines maintained by three organisations: a research group "
            "that turns preprints into a weekly audio digest, a newsroom that drafts summaries "
            "of public meeting records, and a documentation team that runs two pipelines, one "
            "for release notes and one for API changelogs. All four used a hosted language "
            "model for generation, a git repository as the source of truth for the published "
            "site, and a static host that deploys on every push.",
            "For 14 weeks we recorded every run: its input, the artifacts it produced, the "
            "commits it created, and what the production site served at the corresponding "
            "address 24 hours later. A run counted as a loss when it produced an artifact that "
            "an editor had accepted, or would have accepted on inspection, and production did "
            "not serve that artifact a day later. Two authors labelled every loss "
            "independently and agreed on the primary cause in 221 of 236 cases (Cohen's kappa "
            "0.92); the remaining 15 were settled by discussion.",
            "Of the 1,184 runs, 236 (19.9%) were losses. Table 1 gives the breakdown by cause. "
            "The largest group, 71 runs, produced files that were never committed or never "
            "pushed, usually because a script ran in a working copy that a later job reset. "
            "Another 54 runs were committed and pushed, but the deploy did not pick them up or "
            "deployed an older revision. In 38 runs the generator and the site disagreed about "
            "a path. A further 45 runs waited for a review that never happened, and 28 were "
            "stopped by a provider error part-way through and never restarted.",
            "The most troubling number is not the loss rate but its visibility. Only 61 of the "
            "236 losses were noticed by anyone before our audit, with a median time to "
            "detection of 3.2 days. The other 175 were found only by comparing what had been "
            "generated with what was served.",
        ),
    ),
    (
        "3 Verified Publishing",
        (
            "We rebuilt each pipeline as a workflow of explicit steps: ingest, generate, check, "
            "review, render, publish and verify. The four rules below are independent of the "
            "model and of the hosting provider.",
            "Durable steps. Every step records its result in a local database before the next "
            "one begins. When a process crashes or a provider call fails, the workflow resumes "
            "from the last recorded step instead of starting again, so a finished generation "
            "is never paid for twice and a half-finished run is never silently dropped, much "
            "as a saga completes or compensates a long transaction [5]. Transient failures such "
            "as timeouts and rate limits are retried with exponential backoff; permanent "
            "failures such as an encrypted or empty input stop the run at once with a specific "
            "reason. Because a step may run again after a crash, every step with a side effect "
            "is written to be idempotent.",
            "Owned review gates. A run that needs human approval waits durably, across "
            "restarts, for a decision from a named reviewer. Each gate has a deadline; when it "
            "passes, the request escalates to a second named person instead of expiring. The "
            "decision, the reviewer and any edits are recorded with the run. Automatic approval "
            "is allowed, but as an explicit policy that is recorded as such, never as a "
            "default.",
            "Publishing as a step. The artifact and its index pages are written into the site "
            "repository at paths declared once, in configuration that the generator and the "
            "deploy share. The step commits with the run identifier in the commit message and "
            "pushes, retrying when the remote has moved, in the spirit of continuous delivery "
            "[6]. Before pushing it checks whether the remote already holds a commit for this "
            "run, so running a publish again changes nothing.",
            "Verification against production. A run is not done when the push succeeds. The "
            "verify step polls the production addresses until the feed lists the new item and "
            "the served file has the same SHA-256 digest as the file that was committed, a "
            "black-box probe of the kind site reliability teams use to judge a service from "
            "the outside [7]. If that does not happen within a configured window, 15 minutes "
            "in our deployment, the run ends in an unverified state that is reported loudly, "
            "together with what production served instead. Verification is read-only, so it "
            "can be repeated at any time.",
            "Together these rules turn each of the five causes of Section 2 into an explicit "
            "outcome: a retried or resumed step, an escalated review, an idempotent commit, or "
            "an unverified run with a reason.",
        ),
    ),
    (
        "4 Experiments",
        (
            "We ported all four pipelines to the design of Section 3 without changing their "
            "prompts, models or hosting, and ran them in production for eight weeks. Workflow "
            "state was kept in SQLite on the machine that ran each pipeline. We compare with "
            "the 14-week audit. Volume grew between the two periods, from a median of 21 runs "
            "per pipeline per week to 30, so we report rates where counts would mislead.",
            LOSS_TABLE,
            "Losses. Of the 968 runs, 951 (98.2%) ended verified, 11 (1.1%) ended unverified "
            "and 6 (0.6%) failed permanently on unusable input, each with a specific message. "
            "No run produced an accepted artifact that production did not serve without the "
            "run saying so. Of the 11 unverified runs, 9 were deploys that served a stale "
            "revision from a cache and 2 were a path that a site redesign had moved. All 11 "
            "were reported by the verify step a median of 14 minutes after the push, against "
            "3.2 days for the losses that were noticed at all during the audit.",
            "Resilience. Providers failed as often as before. The workflows retried 143 calls "
            "after transient errors, spread over 97 runs that all went on to complete, and 4 "
            "runs resumed after the host process was killed during an upgrade of the pipeline "
            "itself; none of them repeated a finished generation. Another 12 pushes were "
            "retried after the remote had moved.",
            "Reviews. With named reviewers and a 24-hour deadline, the median review "
            "turnaround fell from 5.6 hours to 2.3 hours, and the 90th percentile from 61 hours "
            "to 9.5 hours. Seventeen reviews escalated after their deadline, and the second "
            "reviewer decided all of them.",
            "Overhead. Recording a step cost a median of 2.1 milliseconds. The verify step "
            "added a median of 38 seconds, most of it spent waiting for the static host to "
            "deploy. Excluding time spent waiting for review, the median end-to-end run time "
            "rose from 11.4 to 12.1 minutes. Model cost per run was unchanged at 0.41 US "
            "dollars, since no finished generation was ever repeated.",
        ),
    ),
    (
        "5 Discussion",
        (
            "Where the gains come from. None of the rules improves the model. The gains come "
            "from making the last steps of a pipeline explicit and observable, which is the "
            "same argument that rubrics for production readiness make for training and serving "
            "[2]. Verification carries the most weight. Two of the five causes, stale deploys "
            "and path mismatches, cannot be prevented inside the pipeline at all, because they "
            "happen in systems it does not control; they can only be detected, and detection "
            "is exactly what verification provides.",
            "Costs. The overhead is small in time but not zero in engineering. Idempotent "
            "publishing needed care: the first version of the publish step created a second "
            "commit when it was retried after a push that had in fact succeeded, a bug we found "
            "only by killing the process between the push and the record of its result. Review "
            "gates also moved work onto people. The reviewers on the newsroom pipeline said "
            "that deadlines helped them plan their day, but 11 of the 17 escalations landed on "
            "the same two people.",
            "Limitations. Our study covers four pipelines at three organisations, all of them "
            "publishing through git to a static host; a pipeline that publishes through the API "
            "of a content management system needs a different publish step, though the same "
            "verification. The two periods differ in length and season. Verification checks "
            "that production serves the shipped bytes, not that the bytes are good: a fluent "
            "summary that misstates a result passes every step described here, which is why "
            "the checks and the review gate stay in front of it. Finally, the authors built "
            "the workflows under study, which may have made the second period more careful "
            "than a typical deployment would be.",
        ),
    ),
    (
        "6 Conclusion",
        (
            "A generated artifact that is never served has no value, and in the pipelines we "
            "audited one run in five ended that way, mostly without anyone noticing. Treating "
            "publishing and verification as steps of the workflow, with durable state and "
            "owned reviews around them, removed silent losses in our deployment at a cost of "
            "about 40 seconds per run. We believe that the served result, not the generated "
            "one, is the right definition of done for AI content pipelines, and that the tools "
            "for building them should make that definition the default.",
        ),
    ),
)

REFERENCES = (
    "[1] D. Sculley, G. Holt, D. Golovin, E. Davydov, T. Phillips, D. Ebner, V. Chaudhary, "
    "M. Young, J.-F. Crespo, and D. Dennison. 2015. Hidden technical debt in machine learning "
    "systems. In Advances in Neural Information Processing Systems 28.",
    "[2] E. Breck, S. Cai, E. Nielsen, M. Salib, and D. Sculley. 2017. The ML test score: A "
    "rubric for ML production readiness and technical debt reduction. In Proceedings of the "
    "IEEE International Conference on Big Data.",
    "[3] S. Amershi, A. Begel, C. Bird, R. DeLine, H. Gall, E. Kamar, N. Nagappan, B. Nushi, "
    "and T. Zimmermann. 2019. Software engineering for machine learning: A case study. In "
    "Proceedings of the 41st International Conference on Software Engineering: Software "
    "Engineering in Practice.",
    "[4] A. Paleyes, R.-G. Urma, and N. D. Lawrence. 2022. Challenges in deploying machine "
    "learning: A survey of case studies. ACM Computing Surveys 55(6).",
    "[5] H. Garcia-Molina and K. Salem. 1987. Sagas. In Proceedings of the ACM SIGMOD "
    "International Conference on Management of Data.",
    "[6] J. Humble and D. Farley. 2010. Continuous Delivery: Reliable Software Releases through "
    "Build, Test, and Deployment Automation. Addison-Wesley.",
    "[7] B. Beyer, C. Jones, J. Petoff, and N. R. Murphy. 2016. Site Reliability Engineering: "
    "How Google Runs Production Systems. O'Reilly Media.",
)

# --- typesetting ---------------------------------------------------------------------------

_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN_X = 62.0
_MARGIN_TOP = 64.0
_MARGIN_BOTTOM = 62.0
_GUTTER = 20.0
_TITLE_BLOCK_HEIGHT = 128.0
_COLUMN_WIDTH = (_PAGE_WIDTH - 2 * _MARGIN_X - _GUTTER) / 2
_BODY_HEIGHT = _PAGE_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM


def _style(
    name: str, font: str, size: float, leading: float, align: int, **extra: float
) -> ParagraphStyle:
    return ParagraphStyle(
        name, fontName=font, fontSize=size, leading=leading, alignment=align, **extra
    )


_TITLE_STYLE = _style("title", "Times-Bold", 16, 20, TA_CENTER, spaceAfter=10)
_AUTHOR_STYLE = _style("authors", "Times-Roman", 11.5, 14, TA_CENTER)
_AFFILIATION_STYLE = _style("affiliation", "Times-Italic", 9.5, 11.5, TA_CENTER)
_ABSTRACT_HEADING_STYLE = _style("abstract-heading", "Times-Bold", 11, 14, TA_CENTER, spaceAfter=3)
_ABSTRACT_STYLE = _style(
    "abstract", "Times-Roman", 9.5, 11.5, TA_JUSTIFY, leftIndent=10, rightIndent=10, spaceAfter=12
)
_HEADING_STYLE = _style("heading", "Times-Bold", 11.5, 14, TA_LEFT, spaceBefore=9, spaceAfter=5)
_BODY_STYLE = _style("body", "Times-Roman", 10, 12.4, TA_JUSTIFY, firstLineIndent=12)
_FIRST_PARAGRAPH_STYLE = _style("body-first", "Times-Roman", 10, 12.4, TA_JUSTIFY)
_CAPTION_STYLE = _style("caption", "Times-Roman", 8.8, 10.5, TA_JUSTIFY, spaceAfter=5)
_REFERENCE_STYLE = _style(
    "reference", "Times-Roman", 8.8, 10.5, TA_LEFT, leftIndent=12, firstLineIndent=-12, spaceAfter=3
)
# Paragraphs that open with a run-in heading ("Losses. ...") set it in bold.
_RUN_IN_HEADINGS = (
    "Durable steps.",
    "Owned review gates.",
    "Publishing as a step.",
    "Verification against production.",
    "Losses.",
    "Resilience.",
    "Reviews.",
    "Overhead.",
    "Where the gains come from.",
    "Costs.",
    "Limitations.",
)


def demo_paper_bytes() -> bytes:
    """The typeset paper: a 3-4 page two-column PDF, the same bytes on every call."""
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN_X,
        rightMargin=_MARGIN_X,
        topMargin=_MARGIN_TOP,
        bottomMargin=_MARGIN_BOTTOM,
        title=TITLE,
        author=", ".join(name for name, _ in AUTHORS),
        subject=VENUE,
        creator="shipyard demo",
        producer="shipyard demo",
        invariant=1,
    )
    doc.addPageTemplates(
        [
            # The footer is drawn last, so it ends each page's text, as it does in TeX output.
            PageTemplate("first", frames=_first_page_frames(), onPageEnd=_draw_footer),
            PageTemplate(
                "later",
                frames=_column_frames(_BODY_HEIGHT),
                onPage=_draw_header,
                onPageEnd=_draw_footer,
            ),
        ]
    )
    doc.build(_story())
    return buffer.getvalue()


def make_demo_paper(path: Path) -> Path:
    """Write the demo paper to `path` (folders created; the write is atomic) and return it.

    Calling it again leaves an existing identical file untouched, so its mtime and hash hold.
    """
    data = demo_paper_bytes()
    if path.is_file() and path.read_bytes() == data:
        return path
    write_atomically(path, lambda out: out.write(data))
    return path


def _first_page_frames() -> list[Frame]:
    title = Frame(
        _MARGIN_X,
        _PAGE_HEIGHT - _MARGIN_TOP - _TITLE_BLOCK_HEIGHT,
        _PAGE_WIDTH - 2 * _MARGIN_X,
        _TITLE_BLOCK_HEIGHT,
        id="title",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    return [title, *_column_frames(_BODY_HEIGHT - _TITLE_BLOCK_HEIGHT)]


def _column_frames(height: float) -> list[Frame]:
    return [
        Frame(
            _MARGIN_X + index * (_COLUMN_WIDTH + _GUTTER),
            _MARGIN_BOTTOM,
            _COLUMN_WIDTH,
            height,
            id=f"column-{index + 1}",
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )
        for index in range(2)
    ]


def _draw_footer(canvas: Canvas, doc: BaseDocTemplate) -> None:
    canvas.saveState()
    canvas.setFont("Times-Roman", 9.5)
    canvas.drawCentredString(_PAGE_WIDTH / 2, _MARGIN_BOTTOM - 30, str(doc.page))
    canvas.restoreState()


def _draw_header(canvas: Canvas, doc: BaseDocTemplate) -> None:
    canvas.saveState()
    baseline = _PAGE_HEIGHT - _MARGIN_TOP + 16
    canvas.setFont("Times-Italic", 9)
    canvas.drawString(_MARGIN_X, baseline, SHORT_TITLE)
    canvas.drawRightString(_PAGE_WIDTH - _MARGIN_X, baseline, VENUE)
    canvas.setLineWidth(0.4)
    canvas.line(_MARGIN_X, baseline - 4, _PAGE_WIDTH - _MARGIN_X, baseline - 4)
    canvas.restoreState()


def _story() -> list[Flowable]:
    authors = ",&nbsp;&nbsp;&nbsp;".join(
        f"{escape(name)}<super>{affiliation}</super>" for name, affiliation in AUTHORS
    )
    story: list[Flowable] = [
        NextPageTemplate("later"),
        Paragraph(escape(TITLE), _TITLE_STYLE),
        Paragraph(authors, _AUTHOR_STYLE),
        Spacer(1, 4),
        *(
            Paragraph(f"<super>{number}</super>{escape(text)}", _AFFILIATION_STYLE)
            for number, text in enumerate(AFFILIATIONS, start=1)
        ),
        Spacer(1, 6),
        Paragraph(f"Accepted to {escape(VENUE)}", _AFFILIATION_STYLE),
        FrameBreak(),
        Paragraph("Abstract", _ABSTRACT_HEADING_STYLE),
        Paragraph(escape(ABSTRACT), _ABSTRACT_STYLE),
    ]
    for heading, blocks in SECTIONS:
        story.append(CondPageBreak(60))  # never strand a heading at the foot of a column
        story.append(Paragraph(escape(heading), _HEADING_STYLE))
        for index, block in enumerate(blocks):
            if isinstance(block, DemoTable):
                story.append(Spacer(1, 6))
                story.append(_table(block))
                story.append(Spacer(1, 8))
            else:
                style = _BODY_STYLE if index else _FIRST_PARAGRAPH_STYLE
                story.append(Paragraph(_with_run_in_heading(block), style))
    story.append(CondPageBreak(60))
    story.append(Paragraph("References", _HEADING_STYLE))
    story.extend(Paragraph(escape(reference), _REFERENCE_STYLE) for reference in REFERENCES)
    return story


def _with_run_in_heading(text: str) -> str:
    for heading in _RUN_IN_HEADINGS:
        if text.startswith(heading + " "):
            return f"<b>{escape(heading)}</b>{escape(text[len(heading) :])}"
    return escape(text)


def _table(table: DemoTable) -> KeepTogether:
    """A three-rule table: label column left, number columns right-aligned."""
    columns = len(table.header)
    first_width = _COLUMN_WIDTH * 0.49
    other_width = (_COLUMN_WIDTH - first_width) / (columns - 1)
    head_rows: list[list[str]] = []
    spans: list[tuple[object, ...]] = []  # a group over several columns: centred, ruled below
    if table.groups:
        group_row: list[str] = []
        for label, width in table.groups:
            start, end = len(group_row), len(group_row) + width - 1
            group_row.extend([label] + [""] * (width - 1))
            if width > 1:
                spans.append(("SPAN", (start, 0), (end, 0)))
                spans.append(("ALIGN", (start, 0), (end, 0), "CENTER"))
                spans.append(("LINEBELOW", (start, 0), (end, 0), 0.4, colors.black))
        head_rows.append(group_row)
    head_rows.append(list(table.header))
    header_count = len(head_rows)
    grid = Table(
        [*head_rows, *(list(row) for row in table.rows)],
        colWidths=[first_width, *[other_width] * (columns - 1)],
        style=TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), "Times-Roman", 8.8, 10.2),
                ("FONT", (0, 0), (-1, header_count - 1), "Times-Bold", 8.8, 10.2),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                *spans,
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, header_count - 1), (-1, header_count - 1), 0.4, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.4, colors.black),
                ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ]
        ),
    )
    return KeepTogether([Paragraph(escape(table.caption), _CAPTION_STYLE), grid])
