"""One materialization in a fresh process, for scenario 5: its peak RSS is the figure.

    python -m benchmarks.memory_child --data-dir D --partition 2026-11-20 --base-url URL \
        --state S --asset raw_documents|extracted_entities

`D` is a local folder or an object store's URL (`s3://bucket/prefix`, credentials from AWS_*).

`raw_documents` is materialized by one child, `extracted_entities` by another (which reads the
first one's Parquet), so the peak belongs to the extraction step alone. The last line printed is
JSON: peak RSS (`ru_maxrss`, the process's lifetime high-water mark), wall seconds of the
materialization, and the row counts by status.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence

import dagster as dg

from llm_pipeline.pipeline.assets.documents import raw_documents
from llm_pipeline.pipeline.assets.entities import extracted_entities
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import ParquetIOManager
from llm_pipeline.pipeline.resources import ClaudeResource
from llm_pipeline.warehouse.files import PartitionTable, partition_path
from llm_pipeline.warehouse.store import data_root

__all__ = ["main"]

#: Far above what a zero-latency simulator serves: the client's own pacing stays out of the way.
_OPEN = {"rpm": 100_000_000, "itpm": 10_000_000_000, "otpm": 1_000_000_000}


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--partition", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--asset", choices=("raw_documents", "extracted_entities"), required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    claude = ClaudeResource(
        backend="anthropic",
        api_key="sk-sim-bench",
        base_url=args.base_url,
        state=args.state,
        max_concurrency=args.concurrency,
        **_OPEN,
    )
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [raw_documents, extracted_entities],
            selection=[args.asset],
            partition_key=args.partition,
            resources={
                "io_manager": ParquetIOManager(data_dir=args.data_dir),
                "pipeline_config": PipelineConfig(data_dir=args.data_dir),
                "claude": claude,
            },
            instance=instance,
            raise_on_error=True,
        )
    wall = time.perf_counter() - started
    path = partition_path(data_root(args.data_dir), [args.asset], args.partition)
    table = PartitionTable(path).read(["status"])
    statuses: dict[str, int] = {}
    for status in table.column("status").to_pylist():
        statuses[status] = statuses.get(status, 0) + 1
    summary = {
        "asset": args.asset,
        "success": result.success,
        "rows": table.num_rows,
        "statuses": statuses,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "partition_mb": round(path.stat().st_size / 2**20, 1),
    }
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
