"""The API key (and the object store's credentials) never land in logs, metadata, Parquet, exceptions
or Dagster's storage (issues 5 and 18).

Two real `dagster asset materialize` runs use a canary key: one the simulator rejects (so the key's
path through errors and the failure message is exercised), one it accepts. Afterwards every byte
the runs left behind (the instance's run and event storage, compute logs, the warehouse, the ledger
and limiter state) and everything they printed is searched for the canary.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_pipeline.simulator import Simulator
from llm_pipeline_tests.fixtures.s3 import S3Store

REPO = Path(__file__).resolve().parents[2]
PARTITION = "2026-11-20"

pytestmark = pytest.mark.slow


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_the_api_key_appears_nowhere_after_a_failed_and_a_successful_run(
    tmp_path: Path, simulator: Simulator
) -> None:
    canary = f"sk-ant-api03-canary-{secrets.token_hex(16)}"
    data, home, state = tmp_path / "data", tmp_path / "dagster_home", tmp_path / "state"
    (data / "raw").mkdir(parents=True)
    home.mkdir()
    shutil.copy(REPO / "data" / "raw" / f"{PARTITION}.jsonl", data / "raw")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LLM_PIPELINE_DATA_DIR": str(data),
        "LLM_PIPELINE_STATE": str(state),
        "LLM_PIPELINE_RPM": "1000000",
        "LLM_PIPELINE_ITPM": "1000000000",
        "LLM_PIPELINE_OTPM": "100000000",
        "ANTHROPIC_API_KEY": canary,
        "ANTHROPIC_BASE_URL": simulator.base_url,
    }
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "asset", "materialize", "-m", "llm_pipeline.definitions", "--select", "*", "--partition", PARTITION,
    ]  # fmt: skip

    simulator.control.configure(api_key="sk-ant-some-other-key")
    rejected = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=300)
    assert rejected.returncode != 0
    assert b"rejected the credentials" in rejected.stderr + rejected.stdout

    simulator.control.configure(api_key=canary)
    accepted = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=300)
    assert accepted.returncode == 0, accepted.stderr.decode()[-3000:]
    assert (data / "warehouse" / "corpus_report" / f"{PARTITION}.parquet").exists()

    needle = canary.encode()
    for output in (rejected.stdout, rejected.stderr, accepted.stdout, accepted.stderr):
        assert needle not in output
    for root in (home, data, state):
        assert _files_containing(root, needle) == [], f"the API key was written under {root}"
    assert list(home.rglob("*.db")), "the instance storage was searched (it exists)"


def test_the_store_credentials_appear_nowhere_after_a_failed_and_a_successful_run(
    tmp_path: Path, simulator: Simulator, s3: S3Store
) -> None:
    """The same search for the object store's credentials, with the warehouse on S3 (issue 18).

    They reach the runs only through the standard chain (AWS_* variables, set by the `s3` fixture);
    the first run names a bucket that does not exist, the second one the real one.
    """
    s3.upload(REPO / "data" / "raw" / f"{PARTITION}.jsonl", "raw", f"{PARTITION}.jsonl")
    home, state = tmp_path / "dagster_home", tmp_path / "state"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LLM_PIPELINE_STATE": str(state),
        "LLM_PIPELINE_RPM": "1000000",
        "LLM_PIPELINE_ITPM": "1000000000",
        "LLM_PIPELINE_OTPM": "100000000",
        "ANTHROPIC_API_KEY": "sk-sim-test",
        "ANTHROPIC_BASE_URL": simulator.base_url,
    }
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "asset", "materialize", "-m", "llm_pipeline.definitions", "--select", "*", "--partition", PARTITION,
    ]  # fmt: skip

    wrong = f"s3://{s3.bucket}-missing/pipeline"
    rejected = subprocess.run(
        command, cwd=REPO, env={**env, "LLM_PIPELINE_DATA_DIR": wrong}, capture_output=True, timeout=300
    )
    assert rejected.returncode != 0
    assert f"{wrong}: the bucket '{s3.bucket}-missing' does not exist".encode() in rejected.stderr

    accepted = subprocess.run(
        command, cwd=REPO, env={**env, "LLM_PIPELINE_DATA_DIR": s3.url}, capture_output=True, timeout=300
    )
    assert accepted.returncode == 0, accepted.stderr.decode()[-3000:]
    objects = {key: s3.get(key)["Body"] for key in s3.objects()}
    assert s3.key("warehouse", "corpus_report", f"{PARTITION}.parquet") in objects

    for needle in (s3.access_key.encode(), s3.secret_key.encode()):
        for output in (rejected.stdout, rejected.stderr, accepted.stdout, accepted.stderr):
            assert needle not in output
        for root in (home, state):
            assert _files_containing(root, needle) == [], f"a store credential was written under {root}"
        assert [key for key, body in objects.items() if needle in body] == []
    assert list(home.rglob("*.db")), "the instance storage was searched (it exists)"
