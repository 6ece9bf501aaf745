"""Where the data lives: a local path or an fsspec URL, one code path for every store (issue 18).

`memory://` is fsspec's in-process filesystem: not local, so it takes exactly the code path of
s3:// (upload of the staged file, pyarrow through fsspec, buffered line reads) without a server;
the S3 tests run the same code against a real S3 server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from upath import UPath

from llm_pipeline.settings import SettingError, resolve_data_dir
from llm_pipeline.warehouse.documents import read_documents
from llm_pipeline.warehouse.files import PartitionTable, TableWriter, partition_path, write_atomically
from llm_pipeline.warehouse.store import StoreError, check_reachable, data_root, is_local, open_binary

SCHEMA = pa.schema([pa.field("doc_id", pa.string()), pa.field("status", pa.string())])


@pytest.fixture
def memory_root() -> Iterator[UPath]:
    root = UPath("memory://bucket/prefix")
    yield root
    memory = fsspec.filesystem("memory")
    if memory.exists("/bucket"):
        memory.rm("/bucket", recursive=True)


@pytest.mark.parametrize(
    ("value", "local", "shown"),
    [
        ("data", True, "data"),
        ("/srv/llm/data", True, "/srv/llm/data"),
        ("file:///srv/llm/data", True, "/srv/llm/data"),
        ("s3://bucket/prefix", False, "s3://bucket/prefix"),
        ("memory://bucket/prefix", False, "memory://bucket/prefix"),
        ("gs://bucket/prefix", False, "gs://bucket/prefix"),
        ("az://container/prefix", False, "az://container/prefix"),
    ],
)
def test_a_data_root_is_a_local_path_or_a_url(value: str, local: bool, shown: str) -> None:
    root = data_root(value)
    assert (is_local(root), str(root)) == (local, shown)
    assert str(partition_path(root, ["raw_documents"], "2026-11-20")) == (
        f"{shown}/warehouse/raw_documents/2026-11-20.parquet"
    )


def test_an_unknown_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="'nosuch://bucket/prefix' cannot be opened: Unsupported filesystem"):
        data_root("nosuch://bucket/prefix")


@pytest.mark.parametrize(
    ("value", "package", "message"),
    [
        (
            "gs://bucket/prefix",
            "gcsfs",
            "'gs://bucket/prefix' cannot be opened: Please install gcsfs to access Google Storage (install "
            "the extra: pip install 'llm-pipeline[gcs]', or uv sync --extra gcs)",
        ),
        (
            "az://container/prefix",
            "adlfs",
            "'az://container/prefix' cannot be opened: Install adlfs to access Azure Datalake Gen2 and Azure "
            "Blob Storage (install the extra: pip install 'llm-pipeline[azure]', or uv sync --extra azure)",
        ),
    ],
)
def test_a_store_without_its_package_is_refused_naming_the_extra(
    value: str, package: str, message: str
) -> None:
    """A fresh interpreter in which the store's package cannot be imported, as in an install without the
    extra (the suite's own environment has both)."""
    script = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "from llm_pipeline.warehouse.store import data_root\n"
        f"try:\n    data_root({value!r})\nexcept ValueError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == message, result.stderr


def test_credentials_in_the_url_are_refused_without_being_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PIPELINE_DATA_DIR", "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/prefix")
    with pytest.raises(SettingError) as info:
        resolve_data_dir()
    assert str(info.value).startswith("LLM_PIPELINE_DATA_DIR: 's3://***@bucket/prefix' carries credentials")
    assert "AKIAEXAMPLE" not in str(info.value)
    assert "wJalrXUtnFEMI" not in str(info.value)


def test_config_wins_over_the_environment_for_urls_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PIPELINE_DATA_DIR", "s3://from-env/prefix")
    assert str(resolve_data_dir()) == "s3://from-env/prefix"
    assert str(resolve_data_dir("s3://from-config/x")) == "s3://from-config/x"


def test_a_partition_on_a_store_is_staged_locally_then_uploaded_whole(memory_root: UPath) -> None:
    final = partition_path(memory_root, ["t"], "2026-11-20")
    write_atomically(pa.Table.from_pylist([{"doc_id": "old", "status": "ok"}], schema=SCHEMA), final)
    with TableWriter(SCHEMA, final, row_group_size=10) as writer:
        writer.extend({"doc_id": f"d{i}", "status": "ok"} for i in range(25))
        staged = writer.close()
    assert is_local(staged.path)
    assert staged.path.exists()
    assert PartitionTable(final).num_rows == 1  # staged is not committed: readers see the old one

    assert staged.commit() == final
    assert not staged.path.exists()
    assert [p.name for p in final.parent.iterdir()] == ["2026-11-20.parquet"]
    table = PartitionTable(final)
    assert table.num_rows == 25
    assert [len(batch) for batch in table.iter_batches(batch_size=10)] == [10, 10, 5]
    assert list(table.iter_column("doc_id"))[-1] == "d24"
    assert table.read(["doc_id"]).column_names == ["doc_id"]


def test_a_failed_write_to_a_store_uploads_nothing(memory_root: UPath) -> None:
    final = partition_path(memory_root, ["t"], "2026-11-20")
    writer = TableWriter(SCHEMA, final, row_group_size=2)

    def fail_midway() -> None:
        with writer:
            writer.extend({"doc_id": f"d{i}", "status": "ok"} for i in range(5))  # two row groups staged
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert not final.exists()
    assert not writer.temp_path.exists()


def test_jsonl_on_a_store_is_read_line_by_line_through_a_buffer(memory_root: UPath) -> None:
    raw = memory_root / "raw" / "2026-11-20.jsonl"
    raw.write_bytes(b"".join(b'{"id": "d%d", "text": "t"}\n' % i for i in range(5000)) + b"not json")
    with open_binary(raw) as lines:
        assert lines.readline() == b'{"id": "d0", "text": "t"}\n'
    documents = list(read_documents(raw))
    assert len(documents) == 5001
    assert documents[-1].reason == "not_json"
    assert {d.status for d in documents[:-1]} == {"ok"}


def test_arrow_reads_a_local_file_natively(tmp_path: Path) -> None:
    final = partition_path(data_root(str(tmp_path)), ["t"], "2026-11-20")
    write_atomically(pa.Table.from_pylist([{"doc_id": "a", "status": "ok"}], schema=SCHEMA), final)
    assert pq.read_table(str(final)).num_rows == PartitionTable(final).num_rows == 1


def test_local_and_bucketless_roots_pass_the_reachability_check(tmp_path: Path, memory_root: UPath) -> None:
    check_reachable(data_root(str(tmp_path / "not-yet-created")))  # a fresh local data dir is fine
    check_reachable(memory_root)


def test_an_unknown_bucket_fails_the_check_naming_the_url(s3: object) -> None:
    with pytest.raises(StoreError, match=r"^s3://llm-no-such-bucket/x: the bucket 'llm-no-such-bucket'"):
        check_reachable(data_root("s3://llm-no-such-bucket/x"))
