"""Person-written truth about the corpus papers (title, authors in order, language), and how
an extraction is scored against it. The truth for ../shared/corpus/papers/ lives here, in
tests/data/truth-papers.tsv; papers-more/ brings its own truth.tsv.

Titles and names are compared without case, accents, spacing or punctuation, as the truth
files say: a title printed in capitals is right when its words are.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import CORPUS

TRUTH_FILES = {
    "papers": Path(__file__).parent / "data" / "truth-papers.tsv",
    "papers-more": CORPUS / "papers-more" / "truth.tsv",
}
LANGUAGES = ["en", "de", "es", "pt"]  # every language the truth files name


@dataclass(frozen=True)
class Truth:
    folder: str
    file: str
    title: str
    authors: tuple[str, ...]
    language: str

    @property
    def path(self) -> Path:
        return CORPUS / self.folder / self.file


def comparable(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", "", text).lower()


def read_truth() -> list[Truth]:
    """Every truth row of every folder whose truth file is there."""
    rows = []
    for folder, path in TRUTH_FILES.items():
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                authors = tuple(a.strip() for a in row["authors"].split(";") if a.strip())
                rows.append(Truth(folder, row["file"], row["title"], authors, row["language"]))
    return rows


@dataclass(frozen=True)
class Score:
    """One paper's front matter against its truth."""

    title_right: bool
    first_author_right: bool
    found: int  # authors extracted
    right: int  # of those, in the truth
    expected: int  # authors in the truth
    strangers: tuple[str, ...]  # extracted names the truth does not hold


def score(truth: Truth, title: str, authors: list[str]) -> Score:
    expected = {comparable(a) for a in truth.authors}
    first = comparable(authors[0]) if authors else ""
    strangers = tuple(a for a in authors if comparable(a) not in expected)
    return Score(
        title_right=comparable(title) == comparable(truth.title),
        first_author_right=first == (comparable(truth.authors[0]) if truth.authors else ""),
        found=len(authors),
        right=len(authors) - len(strangers),
        expected=len(truth.authors),
        strangers=strangers,
    )


def f1(scores: list[Score]) -> tuple[float, float, float]:
    """Author-list precision, recall and F1 over a set of papers (micro-averaged)."""
    found = sum(s.found for s in scores)
    right = sum(s.right for s in scores)
    expected = sum(s.expected for s in scores)
    precision = right / found if found else 1.0
    recall = right / expected if expected else 1.0
    both = precision + recall
    return precision, recall, (2 * precision * recall / both if both else 0.0)
