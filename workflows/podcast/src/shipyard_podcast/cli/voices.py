"""`shipyard voices`: the voices installed, by language, and how to add more."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shipyard import ShipyardError, load_config
from shipyard.cli import ConfigOption, JsonOption, app, console, print_json

_HOW_TO_ADD = (
    "More voices: a Piper voice file (piper:/path/to/voice.onnx, its .onnx.json beside it), "
    "a Festival voice (apt-get install festvox-…), a Kokoro or OpenAI-compatible speech "
    "server (kokoro:VOICE, openai-tts:MODEL/VOICE); give a host one per language with "
    '[[podcast.show.hosts]] voices = { es = "piper:/voices/es_ES-davefx-medium.onnx" } '
    "(docs/languages.md)."
)


@app.command()
def voices(
    language: Annotated[
        str | None,
        typer.Option(help="Only this language (BCP-47, e.g. es), with the hosts' voices in it."),
    ] = None,
    config_file: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the voices installed on this machine by language, which languages the
    extractive writer writes, and which voice each host speaks a language with."""
    from shipyard_podcast.audio.voices import installed_voices
    from shipyard_podcast.language import base_language, language_name, written_languages
    from shipyard_podcast.settings import podcast_settings

    found = installed_voices()
    if language:
        found = {t: v for t, v in found.items() if base_language(t) == base_language(language)}
    hosts: dict[str, str] = {}
    if language:
        settings = podcast_settings(load_config(config_file))
        try:
            hosts = {h.name: h.voice for h in settings.for_language(language).show.hosts}
        except ShipyardError as exc:
            hosts = {"(none)": f"{exc.message} ({exc.hint})"}
    written = written_languages()
    if as_json:
        print_json(
            {
                "voices": found,
                "extractive_writer": written,
                **({"hosts": hosts} if language else {}),
                "add": _HOW_TO_ADD,
            }
        )
        return
    table = Table("language", "voices", "extractive writer", box=None)
    for tag, specs in found.items():
        writes = "yes" if base_language(tag) in written else ""
        table.add_row(language_name(tag), ", ".join(specs), writes)
    console.print(table)
    for name, voice in hosts.items():
        console.print(f"{name} speaks {language_name(language or '')} with {voice}", markup=False)
    console.print(_HOW_TO_ADD, markup=False)
