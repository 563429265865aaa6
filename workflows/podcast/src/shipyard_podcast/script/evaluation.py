"""Did scripts get worse? An evaluation over a set of papers, run on pydantic-evals, and a gate
against a committed baseline.

A dataset is a YAML file of cases, each a paper and what its script must (and must not) do:

    root: ../../shared/corpus          # the papers' folder, relative to this file
    cases:
      - name: scheduling
        paper: papers/grobid__sample.pdf
        mention: [scheduling, clusters]   # facts the script must mention
        avoid: [we guarantee]             # claims it must not make
        words: [150, 900]                 # length bounds
      - name: password
        paper: bad/unstructured__password.pdf
        refused: encrypted                # the refusal this input must get

Each case is extracted and written as a run would (`extract_paper_isolated`, the writer
chain of the configuration: the offline extractive writer by default), then scored 0 to 1:

    guardrails   no error flag from the script checks on the script the chain settled on
    first_draft  the writer's first draft passed every check (retries hide a writer that
                 got worse; this shows it)
    grounding    the share of turns with no grounding flag (numbers, names, quotes)
    coverage     the share of `mention` facts the script says
    claims       none of the `avoid` claims is made
    length       the script's words within `words`
    listener     the share of the first draft's turns a listener hears whole (no doubled
                 words, sentences cut off, math or font debris)
    refusal      the input was refused with the expected code (cases with `refused`)

A case passes when guardrails, first_draft, coverage, claims, length and refusal are all 1.
The report is a table and a JSON file; `compare(report, baseline, max_drop)` names every case
whose score fell by more than `max_drop` or that passed and now fails. An LLM judge
(`judge=MODEL`) adds a `judge` score from a configured model; it is never part of the gate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_evals import Case, Dataset
from pydantic_evals.evaluators import Evaluator, EvaluatorContext

from shipyard import Quota, ShipyardError
from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.settings import PodcastSettings

__all__ = [
    "GATED",
    "SCORES",
    "EvalCase",
    "EvalDataset",
    "compare",
    "evaluate",
    "load_dataset",
    "read_report",
]

SCORES = (
    "guardrails",
    "first_draft",
    "grounding",
    "coverage",
    "claims",
    "length",
    "listener",
    "refusal",
)
GATED = ("guardrails", "first_draft", "coverage", "claims", "length", "refusal")  # all 1: passed


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    paper: str
    mention: list[str] = []
    avoid: list[str] = []
    words: tuple[int, int] = (0, 1_000_000)
    refused: str = ""  # the SourceRejected code this input must get


class EvalDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: str = "."
    cases: list[EvalCase] = Field(min_length=1)


def load_dataset(path: Path) -> tuple[EvalDataset, Path]:
    """The dataset in `path`, and the folder its papers are found in."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        dataset = EvalDataset.model_validate(data)
    except OSError as exc:
        raise ShipyardError(f"cannot read {path}: {exc.strerror}", code="bad-dataset") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ShipyardError(
            f"{path} is not an evaluation dataset: {exc}",
            code="bad-dataset",
            hint="see docs/evaluation.md for its format",
        ) from None
    root = (path.parent / dataset.root).resolve()
    missing = [c.paper for c in dataset.cases if not (root / c.paper).is_file()]
    if missing:
        raise ShipyardError(
            f"{len(missing)} paper(s) of {path.name} are not in {root}: {missing[0]}",
            code="bad-dataset",
            hint="fix `root` or the cases' `paper` paths",
        )
    return dataset, root


@dataclass(frozen=True)
class _Written:
    """A case's outcome: the refusal, or the script with its flags."""

    refused: str = ""
    turns: tuple[str, ...] = ()
    flags: tuple[tuple[str, str, int | None], ...] = ()  # (check, severity, turn)
    first_flags: tuple[tuple[str, str, int | None], ...] = ()  # the first draft's
    first_turns: int = 0  # how many turns the first draft had

    @property
    def text(self) -> str:
        return " ".join(self.turns)


@dataclass
class _Scores(Evaluator[dict[str, Any], _Written, dict[str, Any]]):
    """Every score of a case (see the module's docstring)."""

    def evaluate(
        self, ctx: EvaluatorContext[dict[str, Any], _Written, dict[str, Any]]
    ) -> dict[str, float]:
        case, out = EvalCase.model_validate(ctx.metadata), ctx.output
        if case.refused or out.refused:
            return {"refusal": float(out.refused == case.refused)}
        turns = max(1, len(out.turns))
        said = out.text.lower()
        words = len(out.text.split())
        grounded = {t for c, _, t in out.flags if c == "grounding" and t is not None}
        broken = {t for c, _, t in out.first_flags if c == "listener" and t is not None}
        return {
            "guardrails": float(not any(s == "error" for _, s, _ in out.flags)),
            "first_draft": float(not any(s == "error" for _, s, _ in out.first_flags)),
            "grounding": 1 - len(grounded) / turns,
            "coverage": (
                sum(f.lower() in said for f in case.mention) / len(case.mention)
                if case.mention
                else 1.0
            ),
            "claims": float(not any(a.lower() in said for a in case.avoid)),
            "length": float(case.words[0] <= words <= case.words[1]),
            "listener": 1 - len(broken) / max(1, out.first_turns),
        }


def _task(settings: PodcastSettings, root: Path, quotas: Mapping[str, Quota]) -> Any:
    def write(inputs: dict[str, Any]) -> _Written:
        from shipyard_podcast.script.chain import write_script
        from shipyard_podcast.source.extract import extract_paper_isolated

        try:  # refused as a run is: by extraction, or for a language no writer or voice serves
            paper = extract_paper_isolated(root / inputs["paper"], settings.source)
            outcome = write_script(paper, settings, quotas=quotas)
        except SourceRejected as rejected:
            return _Written(refused=rejected.code)
        first = outcome.attempts[0]
        return _Written(
            turns=tuple(t.text for t in outcome.script.turns),
            flags=tuple((f.check, f.severity, f.turn) for f in outcome.flags),
            first_flags=tuple((f.check, f.severity, f.turn) for f in first.flags),
            first_turns=len(outcome.script.turns) if first.error is None else 0,
        )

    return write


def evaluate(
    dataset_file: Path,
    settings: PodcastSettings,
    *,
    judge: str = "",
    quotas: Mapping[str, Quota] | None = None,
) -> dict[str, Any]:
    """Run every case; the report: each case's scores and whether it passed, and averages."""
    dataset, root = load_dataset(dataset_file)
    evaluators: list[Any] = [_Scores()]
    if judge:
        from pydantic_evals.evaluators import LLMJudge

        evaluators.append(
            LLMJudge(
                rubric="A podcast script that is faithful to the paper, clear when heard, "
                "and makes no claim the paper does not support",
                model=judge,
                include_input=True,
                score={"evaluation_name": "judge"},
                assertion=False,
            )
        )
    experiment = Dataset[dict[str, Any], _Written, dict[str, Any]](
        name=dataset_file.stem,
        cases=[
            Case(name=c.name, inputs={"paper": c.paper}, metadata=c.model_dump())
            for c in dataset.cases
        ],
        evaluators=evaluators,
    )
    # asyncio.run closes the event loop it makes (evaluate_sync would leave one behind)
    report = asyncio.run(
        experiment.evaluate(_task(settings, root, quotas or {}), max_concurrency=1, progress=False)
    )
    cases: dict[str, Any] = {}
    for failure in report.failures:
        cases[failure.name] = {"scores": {}, "passed": False, "error": failure.error_message}
    for case in report.cases:
        scores = {name: round(float(result.value), 4) for name, result in case.scores.items()}
        passed = all(scores.get(g, 1.0) == 1.0 for g in GATED)
        cases[case.name] = {"scores": scores, "passed": passed}
    averages = {
        name: round(sum(vals) / len(vals), 4)
        for name in (*SCORES, "judge")
        if (vals := [c["scores"][name] for c in cases.values() if name in c["scores"]])
    }
    return {
        "dataset": dataset_file.name,
        "writers": settings.script.writers,
        "cases": dict(sorted(cases.items())),
        "averages": averages,
        "passed": sum(c["passed"] for c in cases.values()),
    }


def compare(report: dict[str, Any], baseline: dict[str, Any], max_drop: float) -> list[str]:
    """What got worse than the baseline, in words: each case that passed and now fails, and
    each score that fell by more than `max_drop` (the judge's score is not gated)."""
    worse = []
    for name, was in baseline["cases"].items():
        now = report["cases"].get(name)
        if now is None:
            worse.append(f"{name}: the case is gone from the report")
            continue
        if was["passed"] and not now["passed"]:
            failing = [g for g in GATED if now["scores"].get(g, 1.0) < 1.0]
            why = now.get("error") or ", ".join(f"{g} {now['scores'][g]:.2f}" for g in failing)
            worse.append(f"{name}: passed, now fails ({why})")
        for score, before in was["scores"].items():
            after = now["scores"].get(score)
            if score != "judge" and after is not None and before - after > max_drop:
                worse.append(f"{name}: {score} {before:.2f} -> {after:.2f} ({after - before:+.2f})")
    return worse


def read_report(path: Path) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ShipyardError(
            f"{path} is not an evaluation report: {exc}",
            code="bad-report",
            hint="give a report `shipyard eval` wrote (--report)",
        ) from None
    return report
