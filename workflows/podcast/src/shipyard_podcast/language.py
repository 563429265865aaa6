"""Languages: which language a text is in, what each language is called, and each written
language's phrasebook (`phrasebooks/CODE.toml`): what the extractive writer says, what the checks
recognise, how numbers and units are read aloud and what an episode's page says, in that
language. A language with a phrasebook is one the extractive writer can write; any language can
be written by a model writer and spoken by a voice of that language."""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "LANGUAGE_NAMES",
    "Phrasebook",
    "base_language",
    "detect_language",
    "identify_languages",
    "language_name",
    "number_pattern",
    "phrasebook",
    "plain_number",
    "wording",
    "written_languages",
]

LANGUAGE_NAMES = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "cy": "Welsh",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "eo": "Esperanto",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "ga": "Irish",
    "gl": "Galician",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "is": "Icelandic",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "la": "Latin",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "ms": "Malay",
    "nb": "Norwegian Bokmål",
    "nl": "Dutch",
    "nn": "Norwegian Nynorsk",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


def base_language(tag: str) -> str:
    """The language of a BCP-47 tag, without its region or script: "pt-BR" -> "pt"."""
    return re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()


def language_name(tag: str) -> str:
    """A language's English name and tag, as messages say it: "German (de)"; the tag alone
    where the name is not known here."""
    name = LANGUAGE_NAMES.get(base_language(tag))
    return f"{name} ({tag})" if name else tag


_WORD = re.compile(r"[^\W\d_]+")


@functools.cache
def _language_identifier() -> Any:
    """py3langid's model, loaded once a process and kept until `release_language_model`:
    from the user's cache, unpacked (`_unpacked_model`), where it can be."""
    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    packed = MODEL_DIR / MODEL_FILE
    try:
        arrays = _unpacked_model(packed)
    except (OSError, ValueError):
        return LanguageIdentifier.from_model_file(packed, norm_probs=True)  # no cache, or a bad one
    nextmove, rows = (_unsigned(arrays[name]) for name in ("nextmove", "nextmove_row"))
    return LanguageIdentifier(
        np.asarray(arrays["ptc"]),
        np.asarray(arrays["pc"]),
        arrays["classes"].tolist(),
        nextmove,
        arrays["out_feat"].tolist(),
        norm_probs=True,
        tk_row=rows,
    )


_MODEL_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")


def _unpacked_model(packed: Path) -> dict[str, Any]:
    """The arrays of py3langid's model (an LZMA'd npz) as .npy files in the user's cache,
    unpacked the first time: a load cost 0.5 CPU-s with the LZMA, twice a run (the extraction
    child's, the script checks'), and 0.05 from here. Mapped, not read: a process keeps
    resident only the pages it touches."""
    import lzma
    import zipfile

    import numpy as np

    found = packed.stat()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shipyard"
    folder = cache / f"py3langid-{found.st_size}-{found.st_mtime_ns}"
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=folder.parent))
        try:
            with lzma.open(packed) as source, (staging / "model.npz").open("w+b") as npz:
                shutil.copyfileobj(source, npz, length=1 << 20)  # a zip file is read by seeking
                with zipfile.ZipFile(npz) as members:
                    for name in _MODEL_ARRAYS:  # the arrays named, nothing else, in this folder
                        (staging / f"{name}.npy").write_bytes(members.read(f"{name}.npy"))
            (staging / "model.npz").unlink()
            staging.rename(folder)  # whole, or (another process was first) not at all
        except OSError:
            if not folder.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {
        name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        for name in _MODEL_ARRAYS
    }


_UNSIGNED: dict[int, Literal["H", "I", "Q"]] = {2: "H", 4: "I", 8: "Q"}  # by size in bytes


def _unsigned(values: Any) -> memoryview[int]:
    """A mapped array of unsigned integers as a flat view, which py3langid's DFA indexes as it
    would its own stdlib array, without copying it (40 MB) out of the mapping."""
    return memoryview(values).cast("B").cast(_UNSIGNED[values.dtype.itemsize])


def release_language_model() -> None:
    """Let the language model go (the pages of it a process touched): a worker does so before
    synthesis, the run's memory peak. Extraction's child process ends with it anyway."""
    _language_identifier.cache_clear()


def detect_language(text: str) -> tuple[str, float]:
    """The language of a text (ISO 639-1) and the classifier's confidence in it.

    The sample is drawn from across the whole text, not its start: many papers open with an
    abstract in a second language (a Portuguese "Resumo" before an English body)."""
    step = max(len(text) // 10, 300)
    sample = " ".join(
        " ".join(_WORD.findall(text[at : at + 300])) for at in range(0, len(text), step)
    )[:3000]
    if len(sample) < 20:
        return "und", 0.0
    language, probability = _language_identifier().classify(sample)
    return str(language), float(probability)


def identify_languages(texts: list[str]) -> list[tuple[str, float]]:
    """The language of each text and the classifier's confidence (a script's turns, its
    sentences)."""
    identifier = _language_identifier()
    found = []
    for text in texts:
        language, probability = identifier.classify(" ".join(_WORD.findall(text)))
        found.append((str(language), float(probability)))
    return found


# --- numbers as a language writes them ------------------------------------------------------

_GROUP_SPACE = "[ \u00a0\u2009\u202f]"  # digits grouped by a space: "1 000"


def number_pattern(mark: str) -> str:
    """A number as a language with `mark` for its decimal mark writes it (a regex): "2,000
    37.5 .5" with a point; "2.000 2 000 37,5 ,5" with a comma."""
    if mark == ".":
        return r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
    return rf"\d{{1,3}}(?:(?:\.|{_GROUP_SPACE})\d{{3}})+(?:,\d+)?|\d+(?:,\d+)?|,\d+"


def plain_number(literal: str, mark: str) -> str:
    """A number written with `mark` as plain digits and a point: "1.000,5" -> "1000.5"."""
    group = "," if mark == "." else "."
    return re.sub(rf"[{group}]|{_GROUP_SPACE}", "", literal).replace(mark, ".")


# --- phrasebooks ---------------------------------------------------------------------------

_PHRASEBOOKS = Path(__file__).parent / "phrasebooks"


@dataclass(frozen=True)
class Writer:
    """What the extractive writer recognises and says."""

    stopwords: frozenset[str]
    cues: re.Pattern[str]  # words that mark a finding ("propose", "zeigen")
    dangling: re.Pattern[str]  # openers that need the sentence before ("However", "Dies")
    pointers: re.Pattern[str]  # what a listener cannot see ("Fig. 2", "siehe unten")
    unvoiced_sections: re.Pattern[str]  # acknowledgements, funding
    first_person: tuple[tuple[re.Pattern[str], str], ...]  # the authors' "we", as the hosts say it
    categories: dict[str, re.Pattern[str]]  # a section's kind, from its heading
    questions: dict[str, list[str]]
    debate_questions: dict[str, list[str]]
    lines: dict[str, list[str]]  # topic_questions, plain_questions, follow_ups, asides, acks...
    framing: dict[str, str]  # the opening, the hand-overs, the recap, the goodbye


@dataclass(frozen=True)
class Phrasebook:
    """One language's words, as `phrasebooks/CODE.toml` gives them."""

    code: str  # its English name is LANGUAGE_NAMES's
    iso639_2: str  # the three-letter code (ID3's tags)
    words_per_minute: int
    decimal_mark: str  # "." or ","; the other one groups thousands
    capitalised_nouns: bool  # every noun has a capital, so a capital does not mark a name
    ai_disclosure: str
    abbreviations: frozenset[str]  # end in a full stop without ending a sentence
    one_letter_words: frozenset[str]
    conjunction: str  # "and"
    writer: Writer
    listener: dict[str, Any]  # cut_off, function_words, doubled, accented_letters
    speech: dict[str, Any] | None  # None: English, read by speakable's own reader
    page: dict[str, Any]

    @functools.cached_property
    def common_words(self) -> frozenset[str]:
        """Every word of this language's framing and stopwords, lower-cased: words a script
        may capitalise without them being names."""
        texts = [*self.writer.framing.values(), *(x for v in self.writer.lines.values() for x in v)]
        texts += [x for pool in self.writer.questions.values() for x in pool]
        texts += [x for pool in self.writer.debate_questions.values() for x in pool]
        words = [w for text in texts for w in re.findall(r"[^\W\d_]+(?:[-’'][^\W\d_]+)*", text)]
        said = {part.lower() for w in words for part in (w, *re.split(r"[-’']", w))}
        return frozenset(said | self.writer.stopwords)

    def month(self, number: int) -> str:
        return str(self.page["months"][number - 1])


def written_languages() -> list[str]:
    """The languages the extractive writer writes: one phrasebook each."""
    return sorted(p.stem for p in _PHRASEBOOKS.glob("*.toml"))


@functools.cache
def phrasebook(tag: str) -> Phrasebook | None:
    """The phrasebook of a language (of "pt" for "pt-BR"), or None when there is none."""
    code = base_language(tag)
    path = _PHRASEBOOKS / f"{code}.toml"
    if not re.fullmatch(r"[a-z]{2,3}", code) or not path.is_file():
        return None
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    text, writer = data["text"], data["writer"]

    def pattern(source: str) -> re.Pattern[str]:
        return re.compile(source, re.I)

    return Phrasebook(
        code=code,
        iso639_2=data["iso639_2"],
        words_per_minute=int(data["words_per_minute"]),
        decimal_mark=data["decimal_mark"],
        capitalised_nouns=bool(data["capitalised_nouns"]),
        ai_disclosure=data["ai_disclosure"],
        abbreviations=frozenset(text["abbreviations"].split()),
        one_letter_words=frozenset(text["one_letter_words"].split()),
        conjunction=text["and"],
        writer=Writer(
            stopwords=frozenset(writer["stopwords"].split()),
            cues=pattern(writer["cues"]),
            dangling=re.compile(writer["dangling"]),
            pointers=pattern(writer["pointers"]),
            unvoiced_sections=pattern(writer["unvoiced_sections"]),
            first_person=tuple((re.compile(a), b) for a, b in writer["first_person"]),
            categories={k: pattern(v) for k, v in writer["categories"].items()},
            questions=writer["questions"],
            debate_questions=writer["debate_questions"],
            lines=writer["lines"],
            framing=writer["framing"],
        ),
        listener=data["listener"],
        speech=data.get("speech"),
        page=data["page"],
    )


def wording(tag: str) -> Phrasebook:
    """The phrasebook that words what `tag`'s episode shows (its page, its notes) and how its
    text is checked: its language's, or English's where that has none."""
    book = phrasebook(tag) or phrasebook("en")
    assert book is not None  # English's ships with the package
    return book
