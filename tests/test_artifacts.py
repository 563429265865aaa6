"""The content-addressed artifact store, on real files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard._artifacts import ArtifactStore, sha256_file
from shipyard._errors import ShipyardError


def test_artifacts_are_named_by_their_sha256_and_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    first = store.put_bytes(b"episode", suffix=".mp3")
    again = store.put_bytes(b"episode", suffix=".mp3")
    assert first == again
    assert first.sha256 == hashlib.sha256(b"episode").hexdigest()
    assert first.path == tmp_path / "artifacts" / first.sha256[:2] / f"{first.sha256}.mp3"
    assert store.path(first.sha256) == first.path and store.has(first.sha256)
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no leftovers


def test_a_copied_file_is_named_by_the_bytes_actually_read(tmp_path: Path) -> None:
    source = tmp_path / "paper.PDF"
    source.write_bytes(b"%PDF-1.7 body")
    stored = ArtifactStore(tmp_path / "artifacts").put_file(source)
    assert stored.sha256 == sha256_file(source) and stored.size == source.stat().st_size
    assert stored.path.suffix == ".pdf"
    assert not list((tmp_path / "artifacts").glob(".incoming-*"))


def test_a_missing_artifact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ShipyardError, match="is not in the store") as caught:
        ArtifactStore(tmp_path).path("ab" * 32)
    assert caught.value.code == "artifact-missing" and caught.value.hint


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=4096))
def test_whatever_goes_in_comes_back_under_its_hash(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    store = ArtifactStore(tmp_path_factory.mktemp("store"))
    artifact = store.put_bytes(data)
    assert store.read_bytes(artifact.sha256) == data
    assert sha256_file(artifact.path) == artifact.sha256
