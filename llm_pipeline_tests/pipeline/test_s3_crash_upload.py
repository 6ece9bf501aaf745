"""A process SIGKILLed while it uploads a partition to S3 leaves the previous object whole (issue 18).

The clients reach moto's S3 server through `UploadHold` (`fixtures/upload_hold.py`), a relay that
stops one chosen request part-way: the server holds a request it has not fully received when the
real signal kills the real process. Two uploads are covered, the two ways a partition reaches S3
(`warehouse/store.py`): a PutObject (a partition under 100 MiB) cut off half-way through its body,
and a multipart upload whose parts are all stored but whose CompleteMultipartUpload never arrives.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_pipeline.simulator import Simulator
from llm_pipeline.warehouse.files import PartitionTable
from llm_pipeline_tests.fixtures.pipeline import PARTITION, REPO
from llm_pipeline_tests.fixtures.processes import dagster, wait_until
from llm_pipeline_tests.fixtures.s3 import S3Store
from llm_pipeline_tests.fixtures.upload_hold import UploadHold, upload_hold

pytestmark = pytest.mark.slow

ENTITIES = f"warehouse/extracted_entities/{PARTITION}.parquet"
#: Above twice s3fs's 50 MiB part size, the size from which `put_file` uploads in parts.
MULTIPART_BYTES = 101 * 2**20
_COMMIT = (
    "import sys; from pathlib import Path; from upath import UPath; "
    "from llm_pipeline.warehouse.files import StagedTable; "
    "StagedTable(Path(sys.argv[1]), UPath(sys.argv[2]), num_rows=0).commit()"
)


@pytest.fixture
def relay(s3: S3Store) -> Iterator[UploadHold]:
    with upload_hold(s3.endpoint) as hold:
        yield hold


def _env(tmp_path: Path, s3: S3Store, relay: UploadHold, simulator: Simulator) -> dict[str, str]:
    (tmp_path / "home").mkdir(exist_ok=True)
    return {
        **os.environ,
        **s3.env(endpoint=relay.url),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "LLM_PIPELINE_DATA_DIR": s3.url,
        "LLM_PIPELINE_STATE": str(tmp_path / "state"),
        "LLM_PIPELINE_RPM": "1000000",
        "LLM_PIPELINE_ITPM": "1000000000",
        "LLM_PIPELINE_OTPM": "100000000",
        "ANTHROPIC_API_KEY": "sk-sim-test",
        "ANTHROPIC_BASE_URL": simulator.base_url,
    }


def _materialize(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        dagster(), "asset", "materialize", "-m", "llm_pipeline.definitions",
        "--select", "raw_documents,extracted_entities", "--partition", PARTITION,
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def _succeeds(process: subprocess.Popen[bytes]) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()[-3000:]


def _kill_when_held(process: subprocess.Popen[bytes], relay: UploadHold, what: str) -> None:
    try:
        wait_until(lambda: relay.held.is_set() or process.poll() is not None, 180, what)
        assert relay.held.is_set(), f"the process ended first: {relay.requests[-5:]}"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def test_sigkill_mid_put_leaves_the_previous_partition_and_the_rerun_pays_nothing(
    tmp_path: Path, s3: S3Store, relay: UploadHold, simulator: Simulator
) -> None:
    env = _env(tmp_path, s3, relay, simulator)
    day = (REPO / "data" / "raw" / f"{PARTITION}.jsonl").read_bytes().splitlines(keepends=True)
    smaller = tmp_path / "smaller.jsonl"
    smaller.write_bytes(b"".join(day[:40]))
    s3.upload(smaller, "raw", f"{PARTITION}.jsonl")
    _succeeds(_materialize(env))  # the previous partition: the day as it was (40 lines)
    previous = s3.get(s3.key(ENTITIES))

    s3.upload(REPO / "data" / "raw" / f"{PARTITION}.jsonl", "raw", f"{PARTITION}.jsonl")  # 320 lines
    relay.hold("PUT", f"/{s3.bucket}/{s3.key(ENTITIES)}")
    run = _materialize(env)
    try:
        wait_until(lambda: relay.held.is_set() or run.poll() is not None, 180, "the partition's upload")
        assert relay.held.is_set(), f"the run ended before its upload: {relay.requests[-5:]}"
        # Half of the new object's body is at the server: readers still get the previous one.
        assert s3.get(s3.key(ENTITIES))["ETag"] == previous["ETag"]
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    wait_until(lambda: simulator.control.stats()["in_flight"] == 0, 30, "the killed run's calls to end")
    paid = simulator.control.stats()
    assert paid["successes"] > 250  # the new documents were answered before the upload started

    after_kill = s3.get(s3.key(ENTITIES))
    assert (after_kill["ETag"], after_kill["Body"]) == (previous["ETag"], previous["Body"])
    assert [k for k in s3.objects() if "extracted_entities" in k] == [s3.key(ENTITIES)]
    assert s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []

    relay.release()
    _succeeds(_materialize(env))
    assert simulator.control.stats()["attempts"] == paid["attempts"], "the re-run called the API"
    entities = PartitionTable(s3.root / ENTITIES).to_pandas()
    assert len(entities) == 320
    assert entities[entities.status == "ok"].cached.all()


def test_sigkill_before_a_multipart_upload_completes_leaves_the_previous_object(
    tmp_path: Path, s3: S3Store, relay: UploadHold
) -> None:
    key = s3.key(ENTITIES)
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=b"the previous partition")
    staged = tmp_path / "staged.tmp"
    staged.write_bytes(os.urandom(MULTIPART_BYTES))
    digest = hashlib.md5(staged.read_bytes()).hexdigest()
    env = {**os.environ, **s3.env(endpoint=relay.url)}
    command = [sys.executable, "-c", _COMMIT, str(staged), f"s3://{s3.bucket}/{key}"]

    relay.hold("POST", f"/{s3.bucket}/{key}?uploadId=")  # CompleteMultipartUpload
    child = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True, stderr=subprocess.PIPE)
    _kill_when_held(child, relay, "the upload's CompleteMultipartUpload")

    (upload,) = s3.client().list_multipart_uploads(Bucket=s3.bucket)["Uploads"]
    parts = s3.client().list_parts(Bucket=s3.bucket, Key=key, UploadId=upload["UploadId"])["Parts"]
    assert sum(part["Size"] for part in parts) == MULTIPART_BYTES  # every byte was at the server ...
    assert s3.get(key)["Body"] == b"the previous partition"  # ... and the object is the previous one
    assert staged.exists()

    relay.release()
    subprocess.run(command, env=env, cwd=REPO, check=True, timeout=120)
    assert hashlib.md5(s3.get(key)["Body"]).hexdigest() == digest
    assert not staged.exists()
