"""The warehouse on S3 (issue 18): the same pipeline, contracts and failures with `s3://bucket/prefix`.

Everything runs against moto's S3 server on 127.0.0.1 (`fixtures/s3.py`), reached only through the
standard chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL in the environment.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from llm_pipeline.simulator import Simulator
from llm_pipeline_tests.fixtures.pipeline import (
    PARTITION,
    PipelineHarness,
    assert_a_missing_day_names_its_url,
    assert_the_day_landed,
    run_errors,
)
from llm_pipeline_tests.fixtures.s3 import S3Store, fresh_filesystems
from llm_pipeline_tests.fixtures.servers import free_port


def test_the_four_assets_run_end_to_end_on_s3(s3_pipeline: PipelineHarness, s3: S3Store) -> None:
    assert_the_day_landed(s3_pipeline, s3_pipeline.materialize(), s3)


def test_a_rerun_replaces_each_partition_whole_and_pays_nothing(
    s3_pipeline: PipelineHarness, s3: S3Store
) -> None:
    assert s3_pipeline.materialize().success
    first = s3.get(s3.key("warehouse", "extracted_entities", f"{PARTITION}.parquet"))
    calls = s3_pipeline.simulator.control.stats()["attempts"]

    assert s3_pipeline.materialize().success
    second = s3.get(s3.key("warehouse", "extracted_entities", f"{PARTITION}.parquet"))
    assert second["ETag"] != first["ETag"]  # a new object (every row now cached=True), not an append
    entities = s3_pipeline.table("extracted_entities")
    assert len(entities) == 320
    assert entities[entities.status == "ok"].cached.all()
    assert s3_pipeline.simulator.control.stats()["attempts"] == calls


def test_a_missing_raw_file_fails_the_partition_naming_its_url(
    s3_pipeline: PipelineHarness, s3: S3Store
) -> None:
    assert_a_missing_day_names_its_url(s3_pipeline, s3.url)
    assert s3.objects() == [s3.key("raw", f"{PARTITION}.jsonl")]


def test_a_wrong_bucket_fails_at_once_naming_the_url(
    pipeline: PipelineHarness, s3: S3Store, simulator: Simulator
) -> None:
    pipeline.data_dir = S3Store(endpoint=s3.endpoint, bucket="no-such-bucket-here").root
    result = pipeline.materialize()
    assert not result.success
    messages = " ".join(run_errors(result))
    assert "s3://no-such-bucket-here/pipeline: the bucket 'no-such-bucket-here' does not exist" in messages
    _assert_no_credentials(pipeline, result, s3)
    assert simulator.control.stats()["attempts"] == 0  # failed before any work, not after paying for it
    assert "no-such-bucket-here" not in {b["Name"] for b in s3.client().list_buckets()["Buckets"]}


def test_an_unreachable_endpoint_fails_naming_the_url_and_not_the_credentials(
    s3_pipeline: PipelineHarness, s3: S3Store, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", nowhere)
    fresh_filesystems()
    result = s3_pipeline.materialize(selection=["raw_documents"])
    assert not result.success
    messages = " ".join(run_errors(result))
    assert f"{s3.url}: the store cannot be reached" in messages
    assert nowhere in messages  # which endpoint it tried
    _assert_no_credentials(s3_pipeline, result, s3)
    assert simulator.control.stats()["attempts"] == 0


def _assert_no_credentials(pipeline: PipelineHarness, result: dg.ExecuteInProcessResult, s3: S3Store) -> None:
    """Neither the access key id nor the secret in any log line, error or event of the run."""
    texts = [*pipeline.log_messages(result), *run_errors(result)]
    texts += [repr(record) for record in pipeline.instance.all_logs(result.run_id)]
    assert run_errors(result), "the run recorded its failure"
    for secret in (s3.access_key, s3.secret_key):
        assert not [text for text in texts if secret in text]


def test_s3_tables_read_back_with_pandas_through_the_same_url(s3_pipeline: PipelineHarness) -> None:
    """What a user downstream does: `pd.read_parquet("s3://...")` with the same environment."""
    assert s3_pipeline.materialize(selection=["raw_documents"]).success
    frame = pd.read_parquet(str(s3_pipeline.path("raw_documents")))
    assert len(frame) == 320
