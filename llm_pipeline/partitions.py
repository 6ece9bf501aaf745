"""The one partitioning every asset shares: a day of documents, `raw/YYYY-MM-DD.jsonl`.

All four assets also share one backfill policy, because Dagster splits a backfill wherever the
policies of a chain differ. One partition per run: a day is one Parquet file per asset, runs of
different days proceed in parallel (bounded by the run queue and the `anthropic_api` pool), and the
call stack's shared limiter keeps their combined rate within the account's limits.

That shared policy is "none", deliberately. With any `BackfillPolicy` (even `multi_run(1)`) Dagster
1.13 launches each backfill run for a partition *range* (tags `dagster/asset_partition_range_start`
and `_end`, no `dagster/partition`), and a partitioned asset check in such a run records its result
with no partition: the web UI then shows every check of every backfilled day as "Skipped". Without a
policy the backfill daemon runs one day per run, all four assets together, tagged with the day, and
each check result lands on its day (`llm_pipeline_tests/e2e/test_backfill.py` pins both).
"""

from __future__ import annotations

import dagster as dg

__all__ = ["ANTHROPIC_POOL", "daily_backfill_policy", "daily_partitions"]

daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01")

daily_backfill_policy: dg.BackfillPolicy | None = None

#: Concurrency pool of every step that calls the API (limit set in the instance's dagster.yaml).
ANTHROPIC_POOL = "anthropic_api"
