"""The Parquet IO manager: one file per asset and partition, written atomically, read lazily.

Path: `<data_dir>/warehouse/<asset>/<partition>.parquet`, where `data_dir` is the resource config,
else `$LLM_PIPELINE_DATA_DIR` read when the file is written or read, else `data`.

Outputs: a `pd.DataFrame` is written with the asset's schema from `tables.SCHEMAS`; a `StagedTable`
(written row by row through `staging_writer`) is only committed. Either way the partition is
replaced atomically and the materialization gets `row_count`, `path` and `status_counts`.

Inputs: a `pd.DataFrame` by default; an input annotated `PartitionTable` gets a lazy handle, so an
asset can stream 100,000 rows (`context.dagster_type.typing_type` says which was asked for).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
from pydantic import Field

from llm_pipeline.settings import resolve_data_dir
from llm_pipeline.warehouse.files import (
    PartitionTable,
    StagedTable,
    TableWriter,
    partition_path,
    status_counts,
    write_atomically,
)
from llm_pipeline.warehouse.tables import schema_for

__all__ = ["ParquetIOManager", "PartitionTable", "StagedTable", "TableWriter", "staging_writer"]


class ParquetIOManager(dg.ConfigurableIOManager):
    """Daily partitions as Parquet files under `<data_dir>/warehouse/`."""

    data_dir: str | None = Field(
        default=None, description="Root of warehouse/; env LLM_PIPELINE_DATA_DIR at run time, default 'data'."
    )

    def path_for(self, asset_key: dg.AssetKey, partition_key: str) -> Path:
        """Where one partition of one asset lives."""
        return partition_path(resolve_data_dir(self.data_dir), asset_key.path, partition_key)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | StagedTable) -> None:
        path = self.path_for(context.asset_key, _partition_of(context))
        if isinstance(obj, StagedTable):
            if obj.final_path != path:
                obj.discard()
                raise ValueError(
                    f"staged table was written for {obj.final_path}, but this output goes to {path}"
                )
            try:
                obj.commit()
            finally:
                obj.discard()
            rows, counts = obj.num_rows, dict(obj.status_counts)
        elif isinstance(obj, pd.DataFrame):
            table = _to_arrow(obj, schema_for(context.asset_key.path[-1]))
            write_atomically(table, path)
            rows = table.num_rows
            counts = status_counts(obj["status"]) if "status" in obj.columns else {}
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "return a pandas DataFrame or the StagedTable of a staging_writer"
            )
        context.add_output_metadata(
            {
                "row_count": dg.MetadataValue.int(rows),
                "path": dg.MetadataValue.path(str(path)),
                "status_counts": dg.MetadataValue.json(counts),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | PartitionTable:
        partition = _partition_of(context)
        path = self.path_for(context.asset_key, partition)
        if not path.exists():
            asset = context.asset_key.to_user_string()
            raise dg.Failure(
                description=f"{path} does not exist: materialize {asset} for partition {partition} first",
                metadata={"path": dg.MetadataValue.path(str(path)), "asset": asset, "partition": partition},
            )
        if context.dagster_type.typing_type is PartitionTable:
            return PartitionTable(path)
        return PartitionTable(path).to_pandas()


def _partition_of(context: dg.OutputContext | dg.InputContext) -> str:
    if not context.has_asset_partitions:
        asset = context.asset_key.to_user_string()
        raise ValueError(f"{asset} is not partitioned; every pipeline asset uses the daily partitions")
    return context.asset_partition_key


def _to_arrow(frame: pd.DataFrame, schema: pa.Schema | None) -> pa.Table:
    """The frame as an Arrow table with the asset's schema; columns must match it exactly."""
    if schema is None:
        return pa.Table.from_pandas(frame, preserve_index=False)
    if set(frame.columns) != set(schema.names):
        missing = sorted(set(schema.names) - set(frame.columns))
        extra = sorted(set(frame.columns) - set(schema.names))
        raise ValueError(f"DataFrame does not match the table schema: missing {missing}, unexpected {extra}")
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def staging_writer(context: dg.AssetExecutionContext, schema: pa.Schema | None = None) -> TableWriter:
    """A `TableWriter` aimed at this asset's partition file, as this run's IO manager places it.

    Use it as a context manager and return `writer.close()`; the asset never builds a path.
    `schema` defaults to the asset's schema in `tables.SCHEMAS`.
    """
    manager = _parquet_io_manager(context)
    schema = schema or schema_for(context.asset_key.path[-1])
    if schema is None:
        raise ValueError(f"no schema for {context.asset_key.to_user_string()}; pass one")
    return TableWriter(schema, manager.path_for(context.asset_key, context.partition_key))


def _parquet_io_manager(context: dg.AssetExecutionContext) -> ParquetIOManager:
    output_name = context.assets_def.get_output_name_for_asset_key(context.asset_key)
    key = context.op_def.output_def_named(output_name).io_manager_key
    manager = getattr(context.resources, key)
    if not isinstance(manager, ParquetIOManager):
        raise TypeError(f"staging_writer needs a ParquetIOManager as {key!r}, found {type(manager).__name__}")
    return manager
