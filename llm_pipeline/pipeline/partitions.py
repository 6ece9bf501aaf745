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

from datetime import timedelta

import dagster as dg

__all__ = [
    "ANTHROPIC_POOL",
    "NIGHTLY_HOUR_UTC",
    "REPORT_DEADLINE_HOUR_UTC",
    "daily_backfill_policy",
    "daily_partitions",
    "report_freshness",
]

daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01")

daily_backfill_policy: dg.BackfillPolicy | None = None

#: Concurrency pool of every step that calls the API (limit set in the instance's dagster.yaml).
ANTHROPIC_POOL = "anthropic_api"

#: The nightly schedule materializes yesterday's partition at this hour (UTC).
NIGHTLY_HOUR_UTC = 2
#: Yesterday's report is expected by this hour (UTC). A real-time day takes minutes and batch mode
#: usually under an hour (most batches end within one), so six hours after the schedule fires
#: leave room for a failed run to be retried (by hand or by the next attempt) before anyone who
#: reads the report in the morning notices.
REPORT_DEADLINE_HOUR_UTC = 8

#: `corpus_report` must have been materialized between the nightly start and the deadline each day;
#: otherwise the UI marks it as failing its freshness policy until it is materialized again.
report_freshness = dg.FreshnessPolicy.cron(
    deadline_cron=f"0 {REPORT_DEADLINE_HOUR_UTC} * * *",
    lower_bound_delta=timedelta(hours=REPORT_DEADLINE_HOUR_UTC - NIGHTLY_HOUR_UTC),
    timezone="UTC",
)
