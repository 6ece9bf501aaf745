"""The one partitioning every asset shares: a day of documents, `raw/YYYY-MM-DD.jsonl`.

All four assets also share one backfill policy, because Dagster splits a backfill wherever the
policies of a chain differ. One partition per run: a day is one Parquet file per asset, runs of
different days proceed in parallel (bounded by the run queue and the `anthropic_api` pool), and the
call stack's shared limiter keeps their combined rate within the account's limits.
"""

from __future__ import annotations

import dagster as dg

__all__ = ["ANTHROPIC_POOL", "daily_backfill_policy", "daily_partitions"]

daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01")

daily_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)

#: Concurrency pool of every step that calls the API (limit set in the instance's dagster.yaml).
ANTHROPIC_POOL = "anthropic_api"
