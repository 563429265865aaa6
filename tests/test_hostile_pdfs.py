"""PDFs made to exhaust the machine: a compression bomb and objects nested thousands deep are
refused with their real reason, in a child whose peak memory stays small; what slips past the
checks meets the child's memory cap, not the worker's."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source.extract import extract_paper_isolated

pytestmark = pytest.mark.hostile

PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R %s>>"


def pdf(page_extra: bytes, content: bytes, content_dict: bytes = b"") -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        PAGE % page_extra,
        b"<< /Length %d %s>>\nstream\n" % (len(content), content_dict) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def compression_bomb(inflated_mb: int) -> bytes:
    """A page whose 1 MB content stream inflates to `inflated_mb` MB of blanks."""
    deflate = zlib.compressobj(9)
    blanks = b" " * (1 << 20)
    stream = b"".join(deflate.compress(blanks) for _ in range(inflated_mb)) + deflate.flush()
    return pdf(b"", stream, b"/Filter /FlateDecode ")


def deeply_nested(depth: int) -> bytes:
    nested = b"[" * depth + b"]" * depth
    return pdf(b"/Junk " + nested + b" ", b"BT /F1 12 Tf (x) Tj ET " + nested)


def extract_in_fresh_process(path: Path, **settings: object) -> dict[str, object]:
    """Extract `path` from a new interpreter, returning the refusal and the peak memory of
    the extraction child (the only child that interpreter has)."""
    script = f"""
import json, resource, sys
from pathlib import Path
from shipyard_podcast.errors import SourceRejected
from shipyard_podcast.settings import SourceConfig
from shipyard_podcast.source.extract import extract_paper_isolated
try:
    extract_paper_isolated(Path({str(path)!r}), SourceConfig(**{settings!r}))
    outcome = {{"code": None, "message": "accepted"}}
except SourceRejected as rejected:
    outcome = {{"code": rejected.code, "message": rejected.message, "hint": rejected.hint}}
outcome["child_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(outcome))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_compression_bomb_is_too_large_to_decompress_not_a_scan(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(compression_bomb(1024))  # 1 MB on disk, 1 GB inflated
    assert bomb.stat().st_size < 2_000_000
    outcome = extract_in_fresh_process(bomb)
    assert outcome["code"] == "too-large"
    assert "too large to decompress" in str(outcome["message"])
    assert "podcast.source.max_inflated_bytes" in str(outcome["hint"])
    assert float(str(outcome["child_peak_mb"])) < 512


def test_a_bomb_past_the_inflation_check_meets_the_childs_memory_cap(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(compression_bomb(1024))
    outcome = extract_in_fresh_process(bomb, max_inflated_bytes=10**12, max_memory_mb=384)
    # pdfium aborts when an allocation fails: the child dies, the caller is told, unharmed
    assert outcome["code"] in {"damaged", "too-large"}
    assert "384 MB" in str(outcome["message"])
    assert float(str(outcome["child_peak_mb"])) < 512


def test_objects_nested_thousands_deep_are_refused_as_malformed(tmp_path: Path) -> None:
    nested = tmp_path / "nested.pdf"
    nested.write_bytes(deeply_nested(100_000))
    outcome = extract_in_fresh_process(nested)
    assert outcome["code"] == "damaged"
    assert "nest more than 64 levels" in str(outcome["message"])
    assert float(str(outcome["child_peak_mb"])) < 512


def test_the_inflation_limit_is_a_setting_that_names_itself(tmp_path: Path) -> None:
    small = tmp_path / "small-bomb.pdf"
    small.write_bytes(compression_bomb(8))
    with pytest.raises(SourceRejected) as caught:
        extract_paper_isolated(small, SourceConfig(max_inflated_bytes=4_000_000))
    assert caught.value.code == "too-large"
    assert "4,000,000 bytes" in caught.value.message
