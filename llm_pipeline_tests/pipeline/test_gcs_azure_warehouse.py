"""The warehouse on GCS and Azure Blob (issue 18): the code and contracts of `s3://` on `gs://`, `az://`.

Each test runs once per store against an emulator on 127.0.0.1 (`fixtures/object_stores.py`):
gcp-storage-emulator for `gs://` (reached through STORAGE_EMULATOR_HOST, credentials from
GOOGLE_APPLICATION_CREDENTIALS) and Azurite for `az://` (AZURE_STORAGE_CONNECTION_STRING), the
variables each store's own client reads and nothing of ours.
"""

from __future__ import annotations

import dagster as dg
import pytest

from llm_pipeline.simulator import Simulator
from llm_pipeline_tests.fixtures.object_stores import Credentials, EmulatedStore
from llm_pipeline_tests.fixtures.pipeline import (
    PARTITION,
    PipelineHarness,
    assert_a_missing_day_names_its_url,
    assert_the_day_landed,
    run_errors,
)


def test_the_four_assets_run_end_to_end(
    store_pipeline: PipelineHarness,
    object_store: EmulatedStore,
    store_credentials: Credentials,
    capfd: pytest.CaptureFixture[str],
) -> None:
    result = store_pipeline.materialize()
    expected = assert_the_day_landed(store_pipeline, result, object_store)
    _assert_no_credentials(store_pipeline, result, object_store, capfd)
    stored = b"".join(object_store.read(key) for key in expected)
    assert not [secret for secret in object_store.secrets if secret.encode() in stored]
    # The credentials were used: on gs:// the token endpoint granted a token for the service account;
    # on az:// Azurite refuses a request not signed with the account's key, so a run that succeeded did.
    if object_store.scheme == "gs":
        assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in store_credentials.gcs_grants


def test_a_missing_raw_file_fails_the_partition_naming_its_url(
    store_pipeline: PipelineHarness, object_store: EmulatedStore
) -> None:
    assert_a_missing_day_names_its_url(store_pipeline, object_store.url)
    assert object_store.objects() == [object_store.key("raw", f"{PARTITION}.jsonl")]


def test_a_wrong_bucket_fails_at_once_naming_the_url_and_not_the_credentials(
    pipeline: PipelineHarness,
    object_store: EmulatedStore,
    simulator: Simulator,
    capfd: pytest.CaptureFixture[str],
) -> None:
    missing = object_store.elsewhere("no-such-bucket-here")
    pipeline.data_dir = missing.root
    result = pipeline.materialize()
    assert not result.success
    messages = " ".join(run_errors(result))
    assert f"{missing.url}: the bucket 'no-such-bucket-here' does not exist" in messages
    _assert_no_credentials(pipeline, result, object_store, capfd)
    assert simulator.control.stats()["attempts"] == 0  # failed before any work, not after paying for it
    assert not object_store.fs().exists("no-such-bucket-here")


def _assert_no_credentials(
    pipeline: PipelineHarness,
    result: dg.ExecuteInProcessResult,
    store: EmulatedStore,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """No credential in any log line, error or event record of the run, nor in what it printed."""
    printed = capfd.readouterr()
    texts = [*pipeline.log_messages(result), *run_errors(result), printed.out, printed.err]
    texts += [repr(record) for record in pipeline.instance.all_logs(result.run_id)]
    assert len(texts) > 4, "the run's log was searched (it has records)"
    for secret in store.secrets:
        assert not [text for text in texts if secret in text]
