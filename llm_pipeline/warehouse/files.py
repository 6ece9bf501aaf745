"""Partition files of the warehouse: streamed in, committed atomically, streamed out.

A partition of an LLM table can hold 100,000 rows, so neither side holds it in memory:

- `TableWriter` appends row dicts to a hidden local temp file, flushing a Parquet row group every
  `row_group_size` rows; `close()` returns a `StagedTable`, and the IO manager commits it. Leaving
  the `with` block by an exception deletes the temp file.
- `PartitionTable` is a lazy handle on a committed file: `num_rows` from the footer, rows in batches.

The final path is local or on an object store (`store.py`); the temp file is always local: next to
the final file on a local disk, in the temp directory (`$TMPDIR`) for a store. A commit is atomic
either way: locally fsync, then rename in the same directory; on a store, one upload of the complete
file, which the store makes visible in one step. So the final path holds either the previous
complete partition or the new complete one: a re-run or an overlapping backfill replaces a partition
wholesale, and a crash never leaves a file that looks finished. Temp files of a killed run stay
behind as `.<name>.<random>.tmp`; they never match `*.parquet`.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from llm_pipeline.warehouse.store import Location, arrow_source, is_local, upload

if TYPE_CHECKING:
    # Only `to_pandas` returns a DataFrame (Arrow builds it): pandas costs ~1.5 s to import, which
    # every code server and daemon loading the definitions would pay without needing it.
    import pandas as pd

__all__ = [
    "PartitionTable",
    "StagedTable",
    "TableWriter",
    "partition_path",
    "status_counts",
    "write_atomically",
]

DEFAULT_ROW_GROUP_SIZE = 1000


def partition_path(data_dir: Location, asset_path: Sequence[str], partition_key: str) -> Location:
    """`<data_dir>/warehouse/<asset>/<partition>.parquet`: asset key and partition, nothing else."""
    return data_dir.joinpath("warehouse", *asset_path, f"{partition_key}.parquet")


def _temp_path(final_path: Location) -> Path:
    """A local staging file: beside a local final path (so a rename commits it), else in $TMPDIR."""
    name = f".{final_path.name}.{uuid.uuid4().hex}.tmp"
    if is_local(final_path):
        return final_path.with_name(name)
    return Path(tempfile.gettempdir()) / name


def _make_parent(final_path: Location) -> None:
    """A local final path needs its folder (the staging file goes there); a store has no folders."""
    if is_local(final_path):
        final_path.parent.mkdir(parents=True, exist_ok=True)


def _commit(temp_path: Path, final_path: Location) -> None:
    """Put the complete file `temp_path` at `final_path` in one step: a durable rename or an upload."""
    if not is_local(final_path):
        upload(temp_path, final_path)
        temp_path.unlink()
        return
    with temp_path.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp_path, final_path)
    directory = os.open(final_path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_atomically(
    table: pa.Table, final_path: Location, *, row_group_size: int = DEFAULT_ROW_GROUP_SIZE
) -> None:
    """Write a whole (small) table to `final_path`, replacing any previous file atomically."""
    _make_parent(final_path)
    temp = _temp_path(final_path)
    try:
        pq.write_table(table, temp, row_group_size=row_group_size)
        _commit(temp, final_path)
    finally:
        temp.unlink(missing_ok=True)


def status_counts(statuses: Iterable[Any]) -> dict[str, int]:
    """How many rows have each status, in a stable order."""
    return dict(sorted(Counter(str(s) for s in statuses).items()))


@dataclass(frozen=True, slots=True)
class StagedTable:
    """A fully written, not yet committed partition file: what an asset returns to the IO manager."""

    path: Path
    final_path: Location
    num_rows: int
    status_counts: Mapping[str, int] = field(default_factory=dict)

    def commit(self) -> Location:
        """Atomically replace `final_path` with the staged file."""
        _commit(self.path, self.final_path)
        return self.final_path

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class TableWriter:
    """Append rows to a staged Parquet file with bounded memory; see the module docstring."""

    def __init__(
        self, schema: pa.Schema, final_path: Location, *, row_group_size: int = DEFAULT_ROW_GROUP_SIZE
    ) -> None:
        self.schema = schema
        self.final_path = final_path
        self.temp_path = _temp_path(final_path)
        self.row_group_size = row_group_size
        self._names = set(schema.names)
        self._buffer: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0
        self._statuses: Counter[str] = Counter()
        self._closed = False

    @property
    def num_rows(self) -> int:
        """Rows appended so far."""
        return self._rows

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one row; it must have exactly the schema's columns (use `tables.make_row`)."""
        if self._closed:
            raise RuntimeError(f"writer for {self.final_path} is closed")
        if row.keys() != self._names:
            missing, extra = sorted(self._names - row.keys()), sorted(row.keys() - self._names)
            raise ValueError(f"row does not match the table schema: missing {missing}, unexpected {extra}")
        self._buffer.append(dict(row))
        self._rows += 1
        if "status" in row:
            self._statuses[str(row["status"])] += 1
        if len(self._buffer) >= self.row_group_size:
            self._flush()

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def _flush(self) -> None:
        if self._writer is None:
            _make_parent(self.final_path)
            self._writer = pq.ParquetWriter(self.temp_path, self.schema)
        if self._buffer:
            self._writer.write_table(pa.Table.from_pylist(self._buffer, schema=self.schema))
            self._buffer.clear()

    def close(self) -> StagedTable:
        """Finish the file (an empty table is a valid file with the schema) and hand it over."""
        if self._closed:
            raise RuntimeError(f"writer for {self.final_path} is already closed")
        self._flush()
        assert self._writer is not None
        self._writer.close()
        self._closed = True
        return StagedTable(self.temp_path, self.final_path, self._rows, dict(sorted(self._statuses.items())))

    def abort(self) -> None:
        """Drop everything written so far; the final path is untouched."""
        if self._writer is not None:
            self._writer.close()
        self._closed = True
        self._buffer.clear()
        self.temp_path.unlink(missing_ok=True)

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()


class PartitionTable:
    """A lazy handle on one committed partition: stream it instead of loading it."""

    def __init__(self, path: Location) -> None:
        self.path = path

    def _open(self) -> pq.ParquetFile:
        source, filesystem = arrow_source(self.path)
        return pq.ParquetFile(source, filesystem=filesystem)

    @property
    def num_rows(self) -> int:
        """Row count from the Parquet footer; reads no data."""
        with self._open() as parquet:
            return parquet.metadata.num_rows

    def iter_batches(
        self, batch_size: int = DEFAULT_ROW_GROUP_SIZE, columns: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows in file order, as lists of at most `batch_size` row dicts."""
        with self._open() as parquet:
            for batch in parquet.iter_batches(
                batch_size=batch_size, columns=list(columns) if columns else None
            ):
                yield batch.to_pylist()

    def iter_column(self, column: str, batch_size: int = 10_000) -> Iterator[Any]:
        """One column's values in file order (e.g. `doc_id` for the accounting check)."""
        with self._open() as parquet:
            for batch in parquet.iter_batches(batch_size=batch_size, columns=[column]):
                yield from batch.column(0).to_pylist()

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole partition (or some columns) as one Arrow table: compact, but all in memory."""
        source, filesystem = arrow_source(self.path)
        return pq.read_table(source, columns=list(columns) if columns else None, filesystem=filesystem)

    def to_pandas(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The whole partition (or some columns) in memory, for small tables and tests."""
        return self.read(columns).to_pandas()

    def __repr__(self) -> str:
        return f"PartitionTable({str(self.path)!r})"
