"""Script writing and checks: time per corpus paper, beside the time to extract it.

    .venv/bin/python -m benchmarks script

"extract" is `extract_paper` on the PDF: the stage before, and the baseline. "script+checks"
is `write_script` with the default chain (the extractive writer, then every check), which is
what the workflow step runs offline. "checks" is `check_script` alone on that script. "model
path" is `write_script` through a pydantic-ai FunctionModel that answers at once with the same
script: what the chain itself costs around a model (agent, structured output, checks), without
the model's own time. Each figure is the median of ROUNDS runs, after one warm-up run.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from shipyard_podcast.models import Script
from shipyard_podcast.script.chain import write_script
from shipyard_podcast.script.checks import check_script
from shipyard_podcast.settings import ModelPrice, PodcastSettings, ScriptConfig
from shipyard_podcast.source.extract import extract_paper

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "papers"
ROUNDS = 5
MODEL = "openai:instant"


def _median_ms(run: Callable[[], object]) -> float:
    run()  # warm-up: imports, language model, caches
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _instant_model(script: Script) -> FunctionModel:
    payload = json.dumps(
        {
            "title": script.title,
            "turns": [
                {"speaker": t.speaker, "text": t.text, "sections": t.sections} for t in script.turns
            ],
        }
    )

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(
            parts=[ToolCallPart(info.output_tools[0].name, payload)],
            usage=RequestUsage(input_tokens=1, output_tokens=1),
        )

    return FunctionModel(respond, model_name="instant")


def main() -> None:
    papers = sorted(CORPUS.glob("*.pdf"))
    if not papers:
        print(f"corpus not found at {CORPUS}")
        return
    config = PodcastSettings()
    with_model = PodcastSettings(
        script=ScriptConfig(
            writers=[MODEL], prices={MODEL: ModelPrice(input_per_mtok=0, output_per_mtok=0)}
        )
    )
    print(
        f"{'paper':<44} {'words':>6} {'extract':>9} {'script+checks':>14} {'ratio':>6} "
        f"{'checks':>8} {'model path':>11} {'script':>7} {'errors':>6}"
    )
    totals = [0.0, 0.0, 0.0, 0.0]
    for pdf in papers:
        paper = extract_paper(pdf, config.source)
        extract_ms = _median_ms(partial(extract_paper, pdf, config.source))
        outcome = write_script(paper, config)
        script_ms = _median_ms(partial(write_script, paper, config))
        checks_ms = _median_ms(partial(check_script, outcome.script, paper, config))
        model = {MODEL: _instant_model(outcome.script)}
        model_ms = _median_ms(partial(write_script, paper, with_model, models=model))
        errors = sum(f.severity == "error" for f in outcome.flags)
        for i, value in enumerate((extract_ms, script_ms, checks_ms, model_ms)):
            totals[i] += value
        print(
            f"{pdf.stem[:44]:<44} {len(paper.body.split()):>6} {extract_ms:>7.1f}ms "
            f"{script_ms:>12.1f}ms {script_ms / extract_ms:>6.2f} {checks_ms:>6.1f}ms "
            f"{model_ms:>9.1f}ms {outcome.script.words:>7} {errors:>6}"
        )
    extract_ms, script_ms, checks_ms, model_ms = totals
    print(
        f"{'all ' + str(len(papers)) + ' papers':<44} {'':>6} {extract_ms:>7.1f}ms "
        f"{script_ms:>12.1f}ms {script_ms / extract_ms:>6.2f} {checks_ms:>6.1f}ms "
        f"{model_ms:>9.1f}ms"
    )
