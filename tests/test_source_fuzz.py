"""Mutated and truncated PDFs: the source stage returns a Paper or raises SourceRejected,
never anything else, and always comes back (pytest-timeout turns a hang into a failure)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reportlab.pdfgen import canvas

from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.models import Paper
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source.extract import extract_paper
from tests.conftest import CORPUS

SEED = CORPUS / "papers" / "grobid__gadr.pdf"  # three real pages with headings and references
LENIENT = SourceConfig(not_a_paper="flag", languages=["en"])

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not SEED.is_file(), reason=f"corpus not found at {CORPUS}"),
    pytest.mark.timeout(240),
]


def _extract(data: bytes, folder: Path) -> Paper | SourceRejected:
    path = folder / "mutant.pdf"
    path.write_bytes(data)
    try:
        return extract_paper(path, LENIENT)
    except SourceRejected as rejected:
        assert rejected.code in {
            "empty",
            "not-pdf",
            "damaged",
            "encrypted",
            "no-text",
            "too-long",
            "not-a-paper",
            "language",
        }
        assert rejected.hint
        return rejected


@pytest.fixture(scope="module")
def seed() -> bytes:
    return SEED.read_bytes()


@pytest.fixture(scope="module")
def plain_seed() -> bytes:
    """A paper-like PDF with uncompressed content streams, so that mutations hit operators."""
    out = BytesIO()
    page = canvas.Canvas(out, pageCompression=0)
    for number in range(3):
        y = 780.0
        for line in [
            f"{number + 1} Section",
            "Abstract. We study efﬁcient extraction of text from mutated documents [1].",
            *["Body text of the paper, with hyphen-", "ated words and citations [2, 3]."] * 20,
            "References",
            "[1] A. Author. A paper. 2020.",
        ]:
            page.drawString(60, y, line)
            y -= 14
        page.showPage()
    page.save()
    return out.getvalue()


mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(b"")),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=256)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.binary(min_size=1, max_size=4096)),
)


def _mutate(data: bytes, steps: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, payload in steps:
        at = int(where * len(data))
        if kind == "flip":
            data = data[:at] + payload + data[at + len(payload) :]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + payload + data[at:]
        else:
            data = data[:at] + data[at + len(payload) :]
    return data


@pytest.mark.parametrize("seed_name", ["seed", "plain_seed"])
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_pdfs_give_a_paper_or_a_documented_refusal(
    request: pytest.FixtureRequest,
    seed_name: str,
    tmp_path: Path,
    steps: list[tuple[str, float, bytes]],
) -> None:
    original: bytes = request.getfixturevalue(seed_name)
    result = _extract(_mutate(original, steps), tmp_path)
    assert isinstance(result, Paper | SourceRejected)


def test_every_truncation_point_is_refused_as_damaged_or_read(
    seed: bytes,
    tmp_path: Path,
) -> None:
    for cut in range(0, len(seed), len(seed) // 40):
        result = _extract(seed[:cut], tmp_path)
        assert isinstance(result, SourceRejected)
        assert result.code in {"empty", "damaged"}


def test_damaged_streams_inside_a_whole_file(seed: bytes, tmp_path: Path) -> None:
    # overwrite the inside of every compressed stream, keeping the file's structure
    mutated = bytearray(seed)
    start = 0
    while (start := seed.find(b"stream\n", start)) >= 0:
        for offset in range(start + 20, min(start + 200, len(seed))):
            mutated[offset] = (mutated[offset] * 7 + 13) % 256
        start += 7
    result = _extract(bytes(mutated), tmp_path)
    assert isinstance(result, Paper | SourceRejected)
