"""The Parquet IO manager inside real Dagster runs: exact paths, both output and input kinds.

No `from __future__ import annotations` here: Dagster reads the asset annotations as real types.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_pipeline.pipeline.io_manager import (
    ParquetIOManager,
    PartitionTable,
    StagedTable,
    TableWriter,
    staging_writer,
)
from llm_pipeline.pipeline.partitions import daily_partitions
from llm_pipeline.warehouse.tables import CLASSIFICATIONS, RAW_DOCUMENTS, make_row

DAY = "2026-11-20"


def _raw_frame(n: int) -> pd.DataFrame:
    rows = [
        make_row(RAW_DOCUMENTS, doc_id=f"d{i}", line_no=i + 1, text=f"text {i}", status="ok", metadata="{}")
        for i in range(n)
    ]
    rows[-1]["status"] = "rejected"
    return pd.DataFrame(rows)


@dg.asset(partitions_def=daily_partitions)
def raw_documents() -> pd.DataFrame:
    return _raw_frame(5)


@dg.asset(partitions_def=daily_partitions)
def classifications(context: dg.AssetExecutionContext, raw_documents: PartitionTable) -> StagedTable:
    with staging_writer(context) as writer:
        for batch in raw_documents.iter_batches(batch_size=2, columns=["doc_id"]):
            writer.extend(make_row(CLASSIFICATIONS, doc_id=row["doc_id"], status="skipped") for row in batch)
        return writer.close()


@dg.asset(partitions_def=daily_partitions)
def row_counts(raw_documents: pd.DataFrame, classifications) -> pd.DataFrame:  # unannotated: the default kind
    assert isinstance(classifications, pd.DataFrame)
    return pd.DataFrame(
        {"doc_id": ["all"], "status": ["ok"], "n": [len(raw_documents) + len(classifications)]}
    )


def _materialize(
    assets: list[dg.AssetsDefinition], io_manager: ParquetIOManager
) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, partition_key=DAY, resources={"io_manager": io_manager})


def test_a_dataframe_output_lands_at_the_exact_path_with_the_asset_schema(tmp_path: Path) -> None:
    result = _materialize([raw_documents], ParquetIOManager(data_dir=str(tmp_path)))
    path = tmp_path / "warehouse" / "raw_documents" / f"{DAY}.parquet"
    table = pq.read_table(path)
    assert table.schema == RAW_DOCUMENTS
    assert table.column("doc_id").to_pylist() == ["d0", "d1", "d2", "d3", "d4"]
    metadata = result.asset_materializations_for_node("raw_documents")[0].metadata
    assert metadata["row_count"] == dg.IntMetadataValue(5)
    assert metadata["path"] == dg.MetadataValue.path(str(path))
    assert metadata["status_counts"] == dg.MetadataValue.json({"ok": 4, "rejected": 1})


def test_a_staged_table_is_committed_and_inputs_stream_or_load_as_asked(tmp_path: Path) -> None:
    result = _materialize(
        [raw_documents, classifications, row_counts], ParquetIOManager(data_dir=str(tmp_path))
    )
    warehouse = tmp_path / "warehouse"
    staged = pq.read_table(warehouse / "classifications" / f"{DAY}.parquet")
    assert staged.schema == CLASSIFICATIONS
    assert staged.column("doc_id").to_pylist() == ["d0", "d1", "d2", "d3", "d4"]
    assert sorted(p.name for p in (warehouse / "classifications").iterdir()) == [f"{DAY}.parquet"]
    metadata = result.asset_materializations_for_node("classifications")[0].metadata
    assert metadata["status_counts"] == dg.MetadataValue.json({"skipped": 5})
    assert metadata["row_count"] == dg.IntMetadataValue(5)
    assert pq.read_table(warehouse / "row_counts" / f"{DAY}.parquet").column("n").to_pylist() == [10]


def test_the_data_dir_comes_from_the_environment_at_run_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = ParquetIOManager()
    monkeypatch.setenv("LLM_PIPELINE_DATA_DIR", str(tmp_path / "from-env"))
    _materialize([raw_documents], manager)
    assert (tmp_path / "from-env" / "warehouse" / "raw_documents" / f"{DAY}.parquet").exists()


def test_rematerializing_replaces_the_partition(tmp_path: Path) -> None:
    manager = ParquetIOManager(data_dir=str(tmp_path))
    _materialize([raw_documents], manager)

    @dg.asset(name="raw_documents", partitions_def=daily_partitions)
    def smaller() -> pd.DataFrame:
        return _raw_frame(2)

    _materialize([smaller], manager)
    folder = tmp_path / "warehouse" / "raw_documents"
    assert pq.read_table(folder / f"{DAY}.parquet").num_rows == 2
    assert [p.name for p in folder.iterdir()] == [f"{DAY}.parquet"]


def test_a_missing_upstream_partition_names_the_path_and_the_asset(tmp_path: Path) -> None:
    upstream = dg.AssetSpec("raw_documents", partitions_def=daily_partitions)
    with pytest.raises(dg.Failure) as info:
        _materialize([upstream, classifications], ParquetIOManager(data_dir=str(tmp_path)))
    expected = tmp_path / "warehouse" / "raw_documents" / f"{DAY}.parquet"
    assert (
        info.value.description
        == f"{expected} does not exist: materialize raw_documents for partition {DAY} first"
    )


def test_a_dataframe_with_the_wrong_columns_is_refused(tmp_path: Path) -> None:
    @dg.asset(name="raw_documents", partitions_def=daily_partitions)
    def wrong() -> pd.DataFrame:
        return _raw_frame(2).drop(columns=["flags"]).assign(oops=1)

    with pytest.raises(ValueError, match=r"missing \['flags'\], unexpected \['oops'\]"):
        _materialize([wrong], ParquetIOManager(data_dir=str(tmp_path)))
    assert not (tmp_path / "warehouse" / "raw_documents" / f"{DAY}.parquet").exists()


def test_an_unsupported_output_type_is_refused(tmp_path: Path) -> None:
    @dg.asset(partitions_def=daily_partitions)
    def numbers() -> list[int]:
        return [1, 2]

    with pytest.raises(
        TypeError, match="numbers returned list; return a pandas DataFrame or the StagedTable"
    ):
        _materialize([numbers], ParquetIOManager(data_dir=str(tmp_path)))


def test_unpartitioned_assets_are_refused(tmp_path: Path) -> None:
    @dg.asset
    def unpartitioned() -> pd.DataFrame:
        return pd.DataFrame({"x": [1]})

    with pytest.raises(ValueError, match="unpartitioned is not partitioned"):
        dg.materialize([unpartitioned], resources={"io_manager": ParquetIOManager(data_dir=str(tmp_path))})


def test_staging_writer_needs_the_parquet_io_manager(tmp_path: Path) -> None:
    @dg.asset(partitions_def=daily_partitions)
    def classifications(context: dg.AssetExecutionContext) -> StagedTable:
        return staging_writer(context).close()

    with pytest.raises(TypeError, match="staging_writer needs a ParquetIOManager as 'io_manager'"):
        dg.materialize(
            [classifications],
            partition_key=DAY,
            resources={"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path))},
        )


def test_staging_writer_takes_an_explicit_schema_for_tables_it_does_not_know(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("doc_id", pa.string())])

    @dg.asset(partitions_def=daily_partitions)
    def mystery(context: dg.AssetExecutionContext) -> StagedTable:
        with pytest.raises(ValueError, match="no schema for mystery; pass one"):
            staging_writer(context)
        with staging_writer(context, schema) as writer:
            writer.append({"doc_id": "x"})
            return writer.close()

    _materialize([mystery], ParquetIOManager(data_dir=str(tmp_path)))
    assert pq.read_table(tmp_path / "warehouse" / "mystery" / f"{DAY}.parquet").schema == schema


def test_a_staged_table_aimed_elsewhere_is_refused_and_discarded(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / f"{DAY}.parquet"

    @dg.asset(partitions_def=daily_partitions)
    def classifications() -> StagedTable:
        return TableWriter(CLASSIFICATIONS, elsewhere).close()

    with pytest.raises(ValueError, match=r"staged table was written for .*elsewhere"):
        _materialize([classifications], ParquetIOManager(data_dir=str(tmp_path / "data")))
    assert list(elsewhere.parent.iterdir()) == []
    assert not (tmp_path / "data").exists()
