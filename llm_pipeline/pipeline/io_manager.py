"""The Parquet IO manager: one file per asset and partition, written atomically, read lazily.

Path: `<data_dir>/warehouse/<asset>/<partition>.parquet`, where `data_dir` is the resource config,
else `$LLM_PIPELINE_DATA_DIR` read when the file is written or read, else `data`: a local path or an
fsspec URL such as `s3://bucket/prefix` (`warehouse/store.py`; credentials from the store's chain).

Built on Dagster's `UPathIOManager` (`PartitionFiles`), which places a partition on any fsspec
store; what it writes and reads is ours. Outputs: a `pd.DataFrame` is written with the asset's
schema from `tables.SCHEMAS`; a `StagedTable` (written row by row through `staging_writer`) is only
committed. Either way the partition is replaced atomically (a rename on a local disk, one upload of
the complete file on a store) and the materialization gets `path`, `row_count` and `status_counts`.

Inputs: a `pd.DataFrame` by default; an input annotated `PartitionTable` gets a lazy handle, so an
asset can stream 100,000 rows (`context.dagster_type.typing_type` says which was asked for).

Each step checks the store once when the resource starts, so a wrong bucket or an unreachable
endpoint fails the step before it reads, calls or writes anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa
from pydantic import Field
from upath import UPath

from llm_pipeline.settings import resolve_data_dir
from llm_pipeline.warehouse.files import (
    PartitionTable,
    StagedTable,
    TableWriter,
    partition_path,
    status_counts,
    write_atomically,
)
from llm_pipeline.warehouse.store import Location, check_reachable
from llm_pipeline.warehouse.tables import schema_for

if TYPE_CHECKING:
    # Imported where a DataFrame is written: loading the definitions (code servers, the daemon)
    # must not pay pandas' ~1.5 s import for outputs only a run produces.
    import pandas as pd

__all__ = [
    "ParquetIOManager",
    "PartitionFiles",
    "PartitionTable",
    "StagedTable",
    "TableWriter",
    "staging_writer",
]


class ParquetIOManager(dg.ConfigurableIOManager):
    """Daily partitions as Parquet files under `<data_dir>/warehouse/`, on a local disk or a store."""

    data_dir: str | None = Field(
        default=None,
        description=(
            "Root of warehouse/: a local path or an fsspec URL (s3://bucket/prefix, gs://, az://, "
            "file://); env LLM_PIPELINE_DATA_DIR at run time, default 'data'. Credentials come from "
            "the store's standard chain (e.g. AWS_* environment variables), never from here."
        ),
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Ask the store once, before any step reads, calls the API or writes: a wrong bucket or an
        unreachable endpoint then costs nothing and names the URL."""
        check_reachable(resolve_data_dir(self.data_dir))

    def files(self) -> PartitionFiles:
        """The UPathIOManager over this run's data root (resolved now, so env set at launch counts)."""
        return PartitionFiles(resolve_data_dir(self.data_dir))

    def path_for(self, asset_key: dg.AssetKey, partition_key: str) -> Location:
        """Where one partition of one asset lives."""
        return partition_path(resolve_data_dir(self.data_dir), asset_key.path, partition_key)

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | StagedTable) -> None:
        _partition_of(context)
        self.files().handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | PartitionTable:
        _partition_of(context)
        return self.files().load_input(context)


class PartitionFiles(dg.UPathIOManager):
    """Dagster's UPathIOManager decides where a partition goes (`<base>/<asset>/<partition>.parquet`);
    this class decides how it is written (staged, then committed in one step) and read (lazily)."""

    extension = ".parquet"

    def __init__(self, data_dir: UPath) -> None:
        super().__init__(base_path=data_dir / "warehouse")

    def make_directory(self, path: UPath) -> None:
        """Nothing: a local write makes its own folder, and a store has none (s3fs's mkdir would
        even create a missing bucket, hiding a typo in the URL)."""

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, StagedTable):
            if str(obj.final_path) != str(path):
                obj.discard()
                raise ValueError(
                    f"staged table was written for {obj.final_path}, but this output goes to {path}"
                )
            try:
                obj.commit()
            finally:
                obj.discard()
            return
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            write_atomically(_to_arrow(obj, schema_for(context.asset_key.path[-1])), path)
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "return a pandas DataFrame or the StagedTable of a staging_writer"
            )

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        if isinstance(obj, StagedTable):
            rows, counts = obj.num_rows, dict(obj.status_counts)
        else:
            rows, counts = len(obj), status_counts(obj["status"]) if "status" in obj.columns else {}
        return {"row_count": dg.MetadataValue.int(rows), "status_counts": dg.MetadataValue.json(counts)}

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pd.DataFrame | PartitionTable:
        if not path.exists():
            asset, partition = context.asset_key.to_user_string(), context.asset_partition_key
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
