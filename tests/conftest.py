"""Fixtures shared by the whole suite: the corpus in ../shared/corpus, a fresh config."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"


def corpus_files(kind: str) -> list[Path]:
    """The corpus PDFs of one kind ("papers" or "bad"), or [] where the corpus is absent."""
    folder = CORPUS / kind
    return sorted(folder.glob("*.pdf")) if folder.is_dir() else []


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}: check out shared/ beside the repository")
    return CORPUS
