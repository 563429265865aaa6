"""Artifacts on an S3-compatible object store (moto's server on loopback): written once under
their content's name, fetched into another machine's folder when asked for, and a run begun by
a worker with one state folder finished by a worker with another."""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from shipyard import ArtifactStore, ConfigError, RunState, load_config
from shipyard._artifacts import ObjectStore
from shipyard._errors import TransientError
from tests.conftest import fresh_database
from tests.objectstore import s3_server
from tests.project import Project, kill_group, make_project

BUCKET = "shipyard-artifacts"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3-compatible server on loopback with one bucket; its endpoint URL."""
    with s3_server(monkeypatch, BUCKET) as endpoint:
        yield endpoint


def test_an_artifact_is_shared_once_and_fetched_where_it_is_missing(
    tmp_path: Path, s3: str
) -> None:
    mirror = ObjectStore(f"s3://{BUCKET}/runs", endpoint_url=s3)
    here = ArtifactStore(tmp_path / "a", mirror)
    stored = here.put_bytes(b'{"turns": []}', suffix=".json")
    again = here.put_bytes(b'{"turns": []}', suffix=".json")  # the same content: no upload
    assert again.sha256 == stored.sha256
    keys = boto3.client("s3", endpoint_url=s3).list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [k["Key"] for k in keys] == [f"runs/{stored.sha256[:2]}/{stored.sha256}.json"]

    there = ArtifactStore(tmp_path / "b", mirror)  # another machine's empty folder
    assert there.has(stored.sha256)
    fetched = there.path(stored.sha256)
    assert fetched == tmp_path / "b" / stored.sha256[:2] / f"{stored.sha256}.json"
    assert fetched.read_bytes() == b'{"turns": []}'
    with pytest.raises(Exception, match="not in the store") as missing:
        there.path("0" * 64)
    assert "s3://shipyard-artifacts/runs" in str(missing.value)


def test_an_unreachable_store_is_a_transient_error_naming_it(tmp_path: Path, s3: str) -> None:
    store = ArtifactStore(tmp_path, ObjectStore("s3://no-such-bucket", endpoint_url=s3))
    with pytest.raises(TransientError, match="no-such-bucket") as caught:
        store.put_bytes(b"bytes")
    assert "[artifacts]" in (caught.value.hint or "")


def test_a_bad_store_url_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    file = tmp_path / "shipyard.toml"
    file.write_text('[artifacts]\nurl = "https://bucket.example.org"\n')
    with pytest.raises(ConfigError, match="s3://BUCKET"):
        load_config(file)
    file.write_text('[artifacts]\nurl = "s3://bkt"\nendpoint_url = "ftp://h:9000"\n')
    with pytest.raises(ConfigError, match="not an http"):
        load_config(file)
    file.write_text('[artifacts]\nurl = "s3://bkt"\nendpoint_url = "http://k:s@h:9000"\n')
    with pytest.raises(ConfigError, match="holds a password in a URL"):
        load_config(file)


def _run_id(text: str) -> str:
    found = re.search(r"run-[0-9a-f]{12}", text)
    assert found, text
    return found.group(0)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_run_begun_on_one_machine_finishes_on_another_through_the_store(
    tmp_path: Path, postgres_url: str, s3: str
) -> None:
    database = fresh_database(postgres_url, "objectstore")
    shared = (
        f'[engine]\ndatabase_url = "{database}"\nadopt_seconds = 1\n\n'
        f'[artifacts]\nurl = "s3://{BUCKET}/shared"\nendpoint_url = "{s3}"\n'
    )
    with make_project(tmp_path / "a", auto_approve=True, extra=shared) as first:
        # machine B: the same configuration, its own folder and state folder
        (tmp_path / "b").mkdir()
        shutil.copyfile(first.config_file, tmp_path / "b" / "shipyard.toml")
        second = Project(
            root=tmp_path / "b", production=first.production, server=first.server, paper=first.paper
        )
        worker_a = first.start("worker", env={"SHIPYARD_EXECUTOR_ID": "machine-a"})
        first.wait_for_output(worker_a, "ready")
        queued = first.run("run", "paper-to-podcast", str(first.paper), "--queue", "--detach")
        assert queued.returncode == 4, queued.stderr
        run_id = _run_id(queued.stdout)
        first.wait_until(
            run_id, lambda r: any(s.step == "synthesize" and s.status == "ok" for s in r.steps)
        )
        kill_group(worker_a, signal.SIGKILL)  # machine A is gone, and its disk with it
        shutil.rmtree(tmp_path / "a" / "state" / "artifacts")

        worker_b = second.start("worker", env={"SHIPYARD_EXECUTOR_ID": "machine-b"})
        try:
            run = second.wait_until(run_id, lambda r: r.state.finished)
        finally:
            out = kill_group(worker_b, signal.SIGTERM)
    assert run.state is RunState.VERIFIED, out
    ran = {(s.step, s.executor) for s in run.steps if s.status == "ok"}
    assert ("synthesize", "machine-a") in ran and ("master", "machine-b") in ran
    assert ("synthesize", "machine-b") not in ran
    # B mastered the clips A spoke: fetched from the store into B's own folder
    fetched = list((tmp_path / "b" / "state" / "artifacts").glob("*/*.wav"))
    assert fetched
