"""Partition files: streamed writes with bounded buffers, atomic commits, lazy reads."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llm_pipeline.warehouse.files import PartitionTable, TableWriter, partition_path, write_atomically
from llm_pipeline.warehouse.tables import EXTRACTED_ENTITIES, make_row

SCHEMA = pa.schema(
    [pa.field("doc_id", pa.string()), pa.field("status", pa.string()), pa.field("n", pa.int64())]
)


def _rows(n: int) -> list[dict[str, object]]:
    return [{"doc_id": f"d{i}", "status": "ok" if i % 3 else "error", "n": i} for i in range(n)]


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize(
    ("asset_path", "expected"),
    [
        (["raw_documents"], "data/warehouse/raw_documents/2026-11-20.parquet"),
        (["team", "classifications"], "data/warehouse/team/classifications/2026-11-20.parquet"),
    ],
)
def test_partition_path_depends_on_asset_and_partition_only(asset_path: list[str], expected: str) -> None:
    assert partition_path(Path("data"), asset_path, "2026-11-20") == Path(expected)


def test_writer_flushes_a_row_group_every_row_group_size_rows(tmp_path: Path) -> None:
    final = tmp_path / "t" / "2026-11-20.parquet"
    with TableWriter(SCHEMA, final, row_group_size=1000) as writer:
        writer.extend(_rows(2500))
        staged = writer.close()
    assert not final.exists()  # nothing is final until the IO manager commits
    assert staged.path.parent == final.parent
    assert staged.path.name.startswith(".2026-11-20.parquet.")
    assert (staged.num_rows, staged.status_counts) == (2500, {"error": 834, "ok": 1666})
    metadata = pq.ParquetFile(staged.path).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [1000, 1000, 500]
    assert staged.commit() == final
    assert _files(final.parent) == ["2026-11-20.parquet"]
    assert pq.read_table(final).to_pylist() == _rows(2500)


def test_writer_buffers_at_most_one_row_group(tmp_path: Path) -> None:
    writer = TableWriter(SCHEMA, tmp_path / "p.parquet", row_group_size=10)
    for i, row in enumerate(_rows(35), start=1):
        writer.append(row)
        assert len(writer._buffer) == i % 10
    writer.abort()


def test_an_empty_writer_gives_a_valid_empty_file_with_the_schema(tmp_path: Path) -> None:
    staged = TableWriter(EXTRACTED_ENTITIES, tmp_path / "e.parquet").close()
    table = pq.read_table(staged.commit())
    assert (table.num_rows, table.schema) == (0, EXTRACTED_ENTITIES)


def test_an_exception_inside_the_with_block_removes_the_temp_file_and_keeps_the_old_partition(
    tmp_path: Path,
) -> None:
    final = tmp_path / "2026-11-20.parquet"
    write_atomically(pa.Table.from_pylist(_rows(3), schema=SCHEMA), final)

    def fail_midway() -> None:
        with TableWriter(SCHEMA, final, row_group_size=2) as writer:
            writer.extend(_rows(5))  # two row groups already on disk
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert _files(tmp_path) == ["2026-11-20.parquet"]
    assert pq.read_table(final).num_rows == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"doc_id": "a", "status": "ok"}, r"missing \['n'\], unexpected \[\]"),
        ({"doc_id": "a", "status": "ok", "n": 1, "extra": 2}, r"missing \[\], unexpected \['extra'\]"),
    ],
)
def test_rows_must_have_exactly_the_schema_columns(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    writer = TableWriter(SCHEMA, tmp_path / "p.parquet")
    with pytest.raises(ValueError, match=message):
        writer.append(row)
    writer.abort()


def test_a_closed_writer_refuses_more_rows(tmp_path: Path) -> None:
    writer = TableWriter(SCHEMA, tmp_path / "p.parquet")
    writer.close().discard()
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(_rows(1)[0])
    with pytest.raises(RuntimeError, match="already closed"):
        writer.close()


def test_write_atomically_replaces_the_whole_partition_and_leaves_no_temp_files(tmp_path: Path) -> None:
    final = tmp_path / "w" / "2026-11-20.parquet"
    write_atomically(pa.Table.from_pylist(_rows(10), schema=SCHEMA), final)
    write_atomically(pa.Table.from_pylist(_rows(4), schema=SCHEMA), final)
    assert pq.read_table(final).num_rows == 4
    assert _files(final.parent) == ["2026-11-20.parquet"]


def test_a_failed_atomic_write_leaves_the_previous_file(tmp_path: Path) -> None:
    final = tmp_path / "2026-11-20.parquet"
    write_atomically(pa.Table.from_pylist(_rows(2), schema=SCHEMA), final)
    with pytest.raises(AttributeError):
        write_atomically("not a table", final)  # type: ignore[arg-type]
    assert (pq.read_table(final).num_rows, _files(tmp_path)) == (2, ["2026-11-20.parquet"])


def test_partition_table_streams_rows_and_columns_lazily(tmp_path: Path) -> None:
    final = tmp_path / "p.parquet"
    write_atomically(pa.Table.from_pylist(_rows(25), schema=SCHEMA), final, row_group_size=10)
    table = PartitionTable(final)
    assert table.num_rows == 25
    batches = list(table.iter_batches(batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[0][0] == {"doc_id": "d0", "status": "error", "n": 0}
    assert next(table.iter_batches(batch_size=100, columns=["doc_id"]))[:2] == [
        {"doc_id": "d0"},
        {"doc_id": "d1"},
    ]
    assert list(table.iter_column("doc_id", batch_size=7)) == [f"d{i}" for i in range(25)]
    assert list(table.to_pandas(columns=["n"]).columns) == ["n"]


def test_nested_columns_round_trip(tmp_path: Path) -> None:
    row = make_row(
        EXTRACTED_ENTITIES,
        doc_id="d",
        status="ok",
        topics=["a", "東京"],
        entities=[{"name": "Zoë", "type": "person"}],
    )
    with TableWriter(EXTRACTED_ENTITIES, tmp_path / "e.parquet") as writer:
        writer.append(row)
        path = writer.close().commit()
    assert next(PartitionTable(path).iter_batches()) == [row]
